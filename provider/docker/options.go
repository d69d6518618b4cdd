package docker

import "github.com/dockroute/dockroute/provider/contract"

// Options are how dockroute follows its engines: which containers it
// considers, whether it follows swarm services, and the operator's choices
// every verdict is decided with (contract.Options).
type Options struct {
	contract.Options
	// Scope limits which containers are considered at all; the others are
	// not listed, counted or shown.
	Scope Scope
	// Swarm is auto (follow a manager's services), on (require it) or
	// off.
	Swarm string
}

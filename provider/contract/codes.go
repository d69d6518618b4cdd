package contract

// Code names why a container or service is (not) routed, in a word: the
// label of dockroute_containers{state=...}, and what scripts match in
// explain's output. The set is closed: a new reason gets a constant here,
// so the compiler checks every use.
type Code string

const (
	// CodeRouted is a verdict with routes ("": no reason to give).
	CodeRouted Code = ""

	// Not asking: nothing to fix.
	CodeNotOptedIn  Code = "not_opted_in" // no dockroute.host, VIRTUALHOST or VIRTUAL_HOST
	CodeDisabled    Code = "disabled"     // dockroute.enable=false
	CodeSwarmTask   Code = "swarm_task"   // routed through its service
	CodeOutOfScope  Code = "out_of_scope" // outside --filter or --network auto (explain only)
	CodeNoContainer Code = "no_such_container"

	// The request itself: the container's settings to fix.
	CodeInvalidRequest    Code = "invalid_request"
	CodeSettingTooLarge   Code = "setting_too_large"  // a routing label or variable over MaxSettingLen
	CodeTooManyRoutes     Code = "too_many_routes"    // over --max-routes-per-container
	CodeTCPUnsupported    Code = "tcp_unsupported"    // dockroute.tcp with --output caddy
	CodeUnknownMiddleware Code = "unknown_middleware" // a set the operator's file does not define
	CodeUnknownAuthGroup  Code = "unknown_auth_group" // a group the operator's auth file does not define

	// The operator's names: claims the operator keeps or gives to others.
	CodeReservedHost   Code = "reserved_host"   // a top-level name, the default host, the routes file's, the policy's reserved names
	CodeOutsideDomains Code = "outside_domains" // outside the policy file's domains
	CodeNotOwner       Code = "not_owner"       // a name the policy file binds to other owners
	CodeClaimConflict  Code = "claim_conflict"  // every route it asked for is another container's (see settleHost)

	// Lifecycle: the container's state, routine (Verdict.Lifecycle).
	CodePaused         Code = "paused"
	CodeNotRunning     Code = "not_running"
	CodeStopping       Code = "stopping"
	CodeHealthStarting Code = "health_starting"
	CodeUnhealthy      Code = "unhealthy"
	CodeNoTasks        Code = "no_tasks" // a service with no running task

	// Reaching it: the container's networking to fix.
	CodeHostNetwork      Code = "host_network"
	CodeNoNetwork        Code = "no_network"
	CodeSharedNetwork    Code = "shared_network"
	CodeNetworkAmbiguous Code = "network_ambiguous"
	CodeNetworkMissing   Code = "network_missing"
	CodeNoAddress        Code = "no_address"
	CodePortNotExposed   Code = "port_not_exposed"
	CodePortNotPublished Code = "port_not_published"

	// Docker's side.
	CodeInspectFailed Code = "inspect_failed"
)

// Codes lists every code, for metrics to pre-register and tests to check
// that nothing outside this file invents one.
var Codes = []Code{
	CodeNotOptedIn, CodeDisabled, CodeSwarmTask, CodeOutOfScope, CodeNoContainer,
	CodeInvalidRequest, CodeSettingTooLarge, CodeTooManyRoutes, CodeTCPUnsupported, CodeUnknownMiddleware, CodeUnknownAuthGroup,
	CodeReservedHost, CodeOutsideDomains, CodeNotOwner, CodeClaimConflict,
	CodePaused, CodeNotRunning, CodeStopping, CodeHealthStarting, CodeUnhealthy, CodeNoTasks,
	CodeHostNetwork, CodeNoNetwork, CodeSharedNetwork, CodeNetworkAmbiguous, CodeNetworkMissing, CodeNoAddress, CodePortNotExposed, CodePortNotPublished,
	CodeInspectFailed,
}

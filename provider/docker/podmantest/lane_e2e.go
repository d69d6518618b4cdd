//go:build e2e

package podmantest

// e2e is true in the end-to-end lane (-tags e2e, as make test builds).
const e2e = true

const unitLane = ""

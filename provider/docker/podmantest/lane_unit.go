//go:build !e2e

package podmantest

// e2e is false in the unit lane (go test ./...): what needs the Docker
// Engine or a real proxy is skipped there, and runs in the end-to-end lane
// (make test, which builds with -tags e2e).
const e2e = false

const unitLane = "the end-to-end lane runs this (make test, or go test -tags e2e); go test ./... is the unit lane"

// Package runtimetest drives a runc-compatible runtime binary from tests:
// berth-runtime by default (BERTH_RUNTIME, or built from ./cmd/berth-runtime
// once per test binary), each test with its own --root, and everything it
// created deleted when the test ends.
//
// Importers: tests under test/.
package runtimetest

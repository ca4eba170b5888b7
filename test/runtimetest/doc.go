// Package runtimetest drives a runc-compatible runtime binary from tests:
// berth-runtime by default (BERTH_RUNTIME, or built from ./cmd/berth-runtime
// once per test binary), each test with its own --root, and everything it
// created deleted when the test ends. With BERTH_TEST_SYSTEMD_CGROUP=1 it
// passes --systemd-cgroup, and CgroupsPath and CgroupDir give the tests
// cgroup paths of the driver in use.
//
// Importers: tests under test/.
package runtimetest

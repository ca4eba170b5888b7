// Package runtime_test holds berth-runtime's root integration tests: real
// containers from the busybox fixture, asserting on what the probe inside
// them reports. They skip without root.
package runtime_test

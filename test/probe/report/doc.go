// Package report holds the JSON shapes printed by the probe binary
// (test/probe), so that tests can unmarshal what a container saw.
//
// The probe is a static binary that runs inside containers built by the
// tests; it prints one JSON document on stdout per sub-command. Every type
// here is a plain struct with json tags and no behaviour beyond a few
// lookups, so both sides (the probe writing, the test reading) agree by
// construction.
//
// Conventions:
//   - Resource limits use -1 for RLIM_INFINITY (see Unlimited): JSON numbers
//     are float64 in many decoders, so the all-ones uint64 would not survive
//     a round trip through them.
//   - Capability sets are sorted lists of names such as "CAP_CHOWN"; a bit
//     the probe has no name for appears as "CAP_<n>".
//   - Namespaces always carry every kind in NamespaceKinds; 0 means the
//     kernel has no such namespace (or /proc/self/ns/<kind> is unreadable).
//
// Imported by the probe and by integration tests under test/; it imports
// only the standard library.
package report

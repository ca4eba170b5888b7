// Package nsenter joins user, mount and time namespaces before the Go runtime
// starts.
//
// The kernel refuses setns(2) into a user or mount namespace from a
// multi-threaded process (EINVAL), and into a time namespace as well (EUSERS);
// a Go program has several threads before main runs. So a small C constructor,
// linked into every binary that imports this package, runs while the process
// is still single-threaded. It acts only when the environment variable
// _BERTH_NSENTER is set, in the form "fd:type,fd:type,...", joins each
// namespace in the order given, closes each descriptor and removes the
// variable. If a setns fails it writes a framed error message to the
// descriptor named by _BERTH_SYNCFD (the runtime's sync socket, see
// internal/runtime/syncmsg) and exits with status 1.
//
// The constructor does nothing else: no allocation of Go state, no parsing of
// the container's configuration. Everything else happens in Go.
//
// Importers: the runtime binary (cmd/berth-runtime via internal/runtime/initproc).
package nsenter

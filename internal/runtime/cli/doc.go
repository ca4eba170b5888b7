// Package cli is berth-runtime's command line: runc's commands, flags,
// output formats and exit codes, so that containerd, podman and dockerd can
// drive berth-runtime exactly as they drive runc.
//
// Errors are mapped to messages and exit codes here, once. With --log, each
// error is also written to the log file (as JSON with --log-format json),
// where containerd's shim looks for the last error of a failed command.
//
// Importers: cmd/berth-runtime.
package cli

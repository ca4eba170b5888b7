// Package syncmsg is the wire protocol between the runtime's parent process
// (create, run, exec) and the process it starts inside the container.
//
//	parent                                   init / exec child
//	  |  [nsenter constructor may send error]  |
//	  | ---------------- config -------------> |  spec, options
//	  | <--------------- hooks --------------- |  init only: mounts done, before pivot_root
//	  | ------------- hooks-done ------------> |  prestart + createRuntime hooks ran
//	  | <--------------- ready --------------- |  set-up done; init then waits on exec.fifo
//	  | <--------------- error --------------- |  at any point: step + message, then exit
//
// Each message is a 4-byte big-endian length followed by one JSON object on a
// SOCK_STREAM socketpair. EOF means the peer is gone. The nsenter constructor
// (C) writes an error frame in the same format.
//
// The parent need not be the binary the child runs: berth-shim drives the
// runtime as a library and starts the init from berth-runtime's binary. So
// the parent names its protocol version in the child's environment
// (VersionEnv) and the child refuses any other: JSON would otherwise drop a
// field one side does not know, silently.
//
// Importers: internal/runtime and internal/runtime/initproc.
package syncmsg

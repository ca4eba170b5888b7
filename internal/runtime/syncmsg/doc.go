// Package syncmsg is the wire protocol between the runtime's parent process
// (create, run, exec) and the process it starts inside the container.
//
//	parent                                   init / exec child
//	  |  [nsenter constructor may send error]  |
//	  | ----------------- plan --------------> |  initstage.Plan, binary
//	  | <--------------- hooks --------------- |  init only: mounts done, before pivot_root
//	  | ------------- hooks-done ------------> |  prestart + createRuntime hooks ran
//	  | <--------------- ready --------------- |  set-up done; init then waits on exec.fifo
//	  | <--------------- error --------------- |  at any point: step + message, then exit
//
// Each frame is a 4-byte big-endian length followed by its body on a
// SOCK_STREAM socketpair: the plan (internal/runtime/initstage) in its own
// binary encoding, every other message one JSON object. EOF means the peer
// is gone. The child is C (the initstage and nsenter constructors), which
// writes and reads these frames by hand.
//
// The parent need not be the binary the child runs: berth-shim drives the
// runtime as a library and starts the init from berth-runtime's binary. So
// the parent names its protocol version in the child's environment
// (VersionEnv) and the child refuses any other.
//
// Importers: internal/runtime.
package syncmsg

// Package runtime is one container's OCI lifecycle, on the runtime's side
// of the namespaces: creating the container's init, the create/start
// handshake, state under --root, kill, delete, exec and queries.
//
// Each verb is its own file. The process inside the container is the C
// stage of internal/runtime/initstage, which executes the plan initplan.go
// compiles from the spec; the two talk through internal/runtime/syncmsg.
// docs/runtime.md draws the whole sequence.
//
// Invariants:
//   - The stage decides only what it sees at run time (what the rootfs
//     holds, what the kernel answers): every name, option and value of
//     the spec is resolved and validated here, into the plan.
//   - state.json is written atomically (temp file, rename) while
//     holding the flock of the container's directory; every verb that
//     changes a container holds that lock.
//   - Status is derived from the kernel, never trusted from disk: the init's
//     pid and start time identify it across pid reuse.
//   - A failed create leaves nothing: the init is killed, its cgroups and
//     the state directory removed.
//
// Importers: internal/runtime/cli.
package runtime

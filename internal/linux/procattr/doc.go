// Package procattr turns the spec's per-process kernel attributes that are
// neither credentials nor resources into the raw values the kernel takes:
// personality, I/O priority, the scheduling policy (struct sched_attr), CPU
// affinity masks and the NUMA memory policy. The runtime validates them
// with these functions and puts the values in the container stage's plan;
// the stage (internal/runtime/initstage) applies them to the thread that
// executes the user's program, which keeps them across execve.
//
// Importers: internal/runtime.
package procattr

// Package procattr applies the spec's per-process kernel attributes that
// are neither credentials nor resources: personality, I/O priority, the
// scheduling policy (sched_setattr), CPU affinity and the NUMA memory
// policy.
//
// Scheduling attributes, affinity and the memory policy belong to the
// calling thread, and execve keeps that thread's; the caller must hold its
// OS thread locked and exec from it (internal/runtime/initproc does).
//
// Importers: internal/runtime (validation) and internal/runtime/initproc.
package procattr

// Package rlimit maps the runtime-spec's POSIX resource limit names to the
// kernel's resource numbers and checks a spec's process.rlimits. It sets no
// limit itself.
//
// The runtime (internal/runtime) turns each rlimit into its resource number
// with Parse and puts the list into the plan of the container-side stage
// (internal/runtime/initstage, C). The stage sets the limits with
// prlimit(2) on its own process, in the spec's order, stopping at the first
// failure; limits belong to the process, not to a thread, and survive
// execve. The stage explains an EPERM: a hard limit above fs.nr_open
// (refused even with CAP_SYS_RESOURCE), or above the host's hard limit
// without CAP_SYS_RESOURCE, which root on some hosts lacks.
//
// Invariants:
//   - An unknown name is an error naming it; names are matched exactly, as
//     getrlimit(2) spells them ("RLIMIT_NOFILE").
//   - Validate checks the whole list (names, duplicates, which the spec
//     requires to be an error, and soft <= hard) without changing anything,
//     so a bad spec can be refused before anything is created.
//
// Importers: internal/runtime and internal/specconv. It imports only the
// standard library, golang.org/x/sys/unix and the runtime-spec types.
package rlimit

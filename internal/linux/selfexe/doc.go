// Package selfexe gives the runtime a copy of its own binary that a
// container cannot overwrite.
//
// CVE-2019-5736: a process inside a container opened /proc/PID/exe of the
// runtime while the runtime was executing in the container's namespaces and
// rewrote the host's runtime binary through it. The runtime therefore never
// enters a container as the file on disk: it re-executes itself from a
// memfd holding a copy of the binary, sealed against every write, so
// /proc/PID/exe of anything the runtime runs in a container points at an
// immutable anonymous file.
//
// Importers: internal/runtime (the parent side of create and exec).
package selfexe

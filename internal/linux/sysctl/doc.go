// Package sysctl validates a container's sysctls and names their files.
//
// Only sysctls that belong to a namespace the container owns may be set:
// writing kernel.core_pattern, or net.* while sharing the host's network
// namespace, would change the host. The container's stage
// (internal/runtime/initstage) writes each value to exactly one file under
// the container's own procfs (Path), opened beneath a descriptor of /proc
// without following any link and checked to be procfs, so neither a value
// ("1+kernel.core_pattern=...", CVE-2022-0811) nor a symlinked /proc/sys
// (CVE-2025-52881) can redirect the write.
//
// Importers: internal/runtime.
package sysctl

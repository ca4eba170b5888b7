// Package caps names Linux capabilities, parses the capability sets of an
// OCI process, and reads the kernel's last capability and the calling
// thread's sets. It changes no credentials itself.
//
// The runtime (internal/runtime) parses process.capabilities with FromSpec
// into five Sets and puts them, as 64-bit masks, into the plan of the
// container-side stage (internal/runtime/initstage, C), which applies them
// to the container's init or exec'd process shortly before execve. The
// engine's spec conversion (internal/specconv) uses the names for
// --cap-add/--cap-drop and Current to learn which capabilities the host can
// grant; the runtime's `features` command lists All.
//
// Importers: internal/runtime, internal/runtime/cli and internal/specconv.
// It imports only the standard library, golang.org/x/sys/unix and the
// runtime-spec types.
//
// # Order (the stage's)
//
// The kernel checks each step against the credentials left by the previous
// one, so the stage applies the sets in this order (process.c):
//
//  1. Drop the bounding set to Sets.Bounding: PR_CAPBSET_DROP needs
//     CAP_SETPCAP in the effective set, which a switch to a non-zero uid
//     clears. Only capabilities present are dropped, and every number the
//     kernel knows is considered, including numbers newer than this table.
//  2. Switch user: PR_SET_KEEPCAPS=1 so permitted survives the uid change,
//     setgroups (unless the user namespace denies it), setresgid,
//     setresuid, PR_SET_KEEPCAPS=0.
//  3. capset(2) sets effective, permitted and inheritable exactly (a subset
//     of the permitted set kept by step 2), then the ambient set is cleared
//     and each ambient capability raised.
//
// then no_new_privs, the seccomp filter and execve.
//
// # Invariants
//
//   - Inheritable and ambient are exactly what the spec says, never what the
//     runtime happened to have (CVE-2022-29162): the stage overwrites
//     inheritable with capset and clears ambient before raising.
//   - A nil *specs.LinuxCapabilities means every set is empty, as runc does.
//   - A name that is not in the table below is an error naming it. A name in
//     the table whose number is above the running kernel's last capability
//     (LastCap) is ignored and reported to the caller, who may warn, as
//     runc does.
//   - An ambient capability that is not in both permitted and inheritable is
//     not raised: the kernel would refuse it with EPERM, and runc skips it
//     too.
package caps

// Package specconv turns an image config and a docker user's options into
// an OCI runtime spec: the container `docker create` / `docker run` would
// make, with Docker's defaults (SECURITY.md) wherever the user asked for
// nothing.
//
// Spec is the one entry point. It takes three inputs and touches nothing:
//
//   - the image config (dockerspec.DockerOCIImage): the defaults the image
//     brings (Entrypoint, Cmd, Env, WorkingDir, User);
//   - Options: what the user asked for, in docker's own terms (docker run's
//     flags, the Engine API's HostConfig), with everything that names
//     another object (a volume, another container's namespace, a network
//     namespace made by CNI) already resolved by the engine to a host path;
//   - Host: what the host offers (cgroup layout, capabilities the engine
//     holds, AppArmor and SELinux, rlimit ceilings), detected once by
//     DetectHost and passed in so that tests can describe other hosts.
//
// The only filesystem reads are the container's /etc/passwd and /etc/group
// (user and group names), the host devices a --device or --privileged
// container is given, and the kernel version the seccomp profile's
// conditions look at.
//
// Invariants (SECURITY.md):
//   - /etc/passwd and /etc/group are read through openat2(RESOLVE_IN_ROOT)
//     from a descriptor of the rootfs, and only when they are regular files
//     of bounded size: a hostile image that links them to the host's files,
//     to a FIFO or to /dev/zero reads its own files, fails, or is refused,
//     never the host's (CVE-2024-40635 and relatives).
//   - Every user input is validated here and errors wrap ErrInvalid, naming
//     the option and the value; nothing that reaches the spec can smuggle a
//     second value (sysctl values, mount options, env entries with NUL).
//   - Inheritable and ambient capabilities are always empty
//     (CVE-2022-24769).
//   - Privileged containers get what docker gives them (every capability the
//     engine holds, every host device, no seccomp, no masked paths, rw /sys
//     and cgroup); nothing else relaxes a default unless the user asked.
//
// Importers: the engine (internal/engine), which builds `docker run` on it.
package specconv

// Package peers_test runs berth-runtime under the real clients that drive
// runc in the field: containerd (through ctr and containerd-shim-runc-v2,
// with --runc-binary) and podman (through conmon, with --runtime); and
// under the OCI's own conformance suite, runtime-tools' validation
// programs, beside runc on the same host (TestRuntimeToolsValidation). Each test
// starts the client on private state, runs the busybox image from
// test/fixture (fixture.Image, with /bin/probe inside) and asserts on what
// the probe reports and on the exit codes the client passes back: a
// foreground run, a run on a terminal, a detached container with execs, and
// the teardown. The runtime under test is runtimetest.Binary
// (BERTH_RUNTIME, else built from ./cmd/berth-runtime); BERTH_RUNTIME=runc
// runs the same tests against runc, which tells a client quirk from a
// berth-runtime bug.
//
// Isolation from the host:
//   - containerd runs with root, state, sockets and the opt plugin's path
//     under the test's temporary directory, the CRI plugin disabled, and in
//     a private mount namespace with a tmpfs on /run, so that what it and
//     its shims put under /run/containerd (shim sockets, the runtime's
//     --root /run/containerd/runc/<namespace>) never reaches the host. ctr
//     is given --fifo-dir under the temporary directory, and containerd,
//     its shims and ctr a TMPDIR there (ctr mounts the image's rootfs
//     under it for a moment to read its users). Containers live in
//     a containerd namespace of the test's own, so their cgroups
//     (/<namespace>/<id>) cannot meet anyone else's.
//   - podman runs with --root, --runroot, --tmpdir, TMPDIR and private
//     containers.conf, storage.conf and registries.conf (CONTAINERS_CONF,
//     CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF), cgroupfs (see
//     below for systemd), the
//     file events backend and --network none. "podman load" also runs in
//     a private mount namespace with tmpfs on /var/lib/containers and
//     /var/tmp: copying an image writes containers/image's blob info cache
//     (for root always /var/lib/containers/cache) and unpacks the archive
//     under /var/tmp whatever TMPDIR says. conmon passes no --root to
//     the runtime, so the runtime's state is under its default root
//     (/run/berth-runtime for berth-runtime); podman's --runtime-flag would
//     move it but podman 4.3 leaves it out of the exit command, which then
//     cannot delete the container, with runc as with berth-runtime.
//   - This host's root lacks CAP_SYS_RESOURCE, so podman's default
//     RLIMIT_NOFILE (1048576) cannot be set in the container: the runs pass
//     host-sized --ulimit values, as ../shared/bench/engine-run.sh does.
//
// Leaks are test failures: after each container is removed, its
// directory under the runtime's state root, its cgroups and its rootfs
// mount must be gone. At clean-up the tests remove what a failed test left
// (containers, then the client), kill the shims and conmons started for
// their own socket or storage root (found by their command lines), detach
// any mount under the temporary directory, and remove the empty
// /<namespace> cgroup parents the runtime created.
//
// With BERTH_TEST_SYSTEMD_CGROUP=1 (test/runtimetest; cmd/berth-vm sets it
// for a second pass where systemd is PID 1) both clients use the systemd
// cgroup driver: ctr runs with --runc-systemd-cgroup and a
// "slice:prefix:name" --cgroup, podman with --cgroup-manager systemd, and
// the runtime gets --systemd-cgroup from the shim or conmon.
//
// The tests skip without root. A missing client (containerd, ctr,
// containerd-shim-runc-v2, podman) skips with the reason, unless
// BERTH_TEST_REQUIRE_PEERS is set to a value other than "" or "0", when it
// fails the test: CI installs the clients with hack/deps.sh and sets it, so
// that a broken machine cannot pass by skipping (with
// BERTH_TEST_REQUIRE_FIXTURES, which does the same for the image).
// BERTH_TEST_PEERS_DEBUG=1 adds --log-level debug to podman; containerd
// always logs at debug level, and its log, which carries the shims' and
// through them the runtime's errors, is printed when a test fails.
package peers_test

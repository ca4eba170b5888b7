// Joins namespaces and makes a new time namespace before the Go runtime
// starts; see doc.go for why.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int nstype(const char *name, size_t len)
{
	static const struct { const char *name; int flag; } types[] = {
		{ "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS }, { "time", CLONE_NEWTIME },
		{ "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET },
		{ "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP },
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i].name) == len && memcmp(types[i].name, name, len) == 0)
			return types[i].flag;
	return -1;
}

// fail reports through the sync socket as one framed JSON message
// (4-byte big-endian length, then the object) and exits.
static void fail(const char *step, const char *what, int err)
{
	char body[256], frame[260];
	const char *fdenv = getenv("_BERTH_SYNCFD");
	int n = snprintf(body, sizeof(body),
			 "{\"type\":\"error\",\"step\":\"%s\",\"message\":\"%s: %s\"}",
			 step, what, strerror(err));
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	if (fdenv != NULL) {
		int fd = atoi(fdenv);
		uint32_t len = (uint32_t)n;
		frame[0] = (char)(len >> 24); frame[1] = (char)(len >> 16);
		frame[2] = (char)(len >> 8); frame[3] = (char)len;
		memcpy(frame + 4, body, (size_t)n);
		if (write(fd, frame, (size_t)n + 4) < 0)
			fprintf(stderr, "berth nsenter: %s\n", body);
	} else {
		fprintf(stderr, "berth nsenter: %s\n", body);
	}
	_exit(1);
}

static void join(const char *spec)
{
	const char *p = spec;
	while (*p != '\0') {
		char *end;
		long fd = strtol(p, &end, 10);
		if (end == p || *end != ':' || fd < 0)
			fail("join namespaces", "malformed _BERTH_NSENTER", EINVAL);
		const char *name = end + 1;
		size_t len = strcspn(name, ",");
		int flag = nstype(name, len);
		if (flag < 0)
			fail("join namespaces", "unknown namespace type in _BERTH_NSENTER", EINVAL);
		if (setns((int)fd, flag) < 0) {
			char what[64];
			snprintf(what, sizeof(what), "setns %.*s", (int)len, name);
			fail("join namespaces", what, errno);
		}
		close((int)fd);
		p = name + len;
		if (*p == ',')
			p++;
	}
}

// newtime makes a time namespace, sets its offsets (the kernel takes them
// only before any process is in it) and moves this process into it.
// unshare alone would change the namespace of later children only, and
// older kernels (6.1 is one) refuse to clone a child that shares memory
// with its parent (every thread, and Go's CLONE_VM|CLONE_VFORK process
// start) into a time namespace other than the parent's: the Go runtime
// could not even start its threads. Entering the namespace makes it both
// this process's and its children's. setns into a time namespace needs a
// single-threaded caller, which the process still is.
static void newtime(const char *offsets)
{
	static const char *step = "new time namespace";
	if (unshare(CLONE_NEWTIME) < 0)
		fail(step, "unshare", errno);
	size_t n = strlen(offsets);
	if (n > 0) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			fail(step, "open /proc/self/timens_offsets", errno);
		ssize_t w = write(fd, offsets, n);
		if (w < 0)
			fail(step, "set offsets", errno);
		if ((size_t)w != n)
			fail(step, "set offsets: short write", EIO);
		close(fd);
	}
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(step, "open /proc/self/ns/time_for_children", errno);
	if (setns(fd, CLONE_NEWTIME) < 0)
		fail(step, "enter it", errno);
	close(fd);
}

void berth_nsenter(void)
{
	const char *spec = getenv("_BERTH_NSENTER");
	if (spec != NULL && *spec != '\0') {
		// Not dumpable before the first join: from then on processes of
		// the container can see this one (its pid namespace was joined
		// by the thread that started it), and once it is in their user
		// namespace a CAP_SYS_PTRACE there would let them attach to a
		// process that still has the host's root directory, uid and
		// descriptors (CVE-2016-9962). The init stage keeps it so until
		// execve resets it for the user's program.
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		join(spec);
	}
	unsetenv("_BERTH_NSENTER");
	// After the joins: a time namespace made in a joined user namespace
	// belongs to it.
	const char *offsets = getenv("_BERTH_NEWTIME");
	if (offsets != NULL) {
		newtime(offsets);
		unsetenv("_BERTH_NEWTIME");
	}
}

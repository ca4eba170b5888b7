// Joins namespaces before the Go runtime starts; see doc.go for why.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nstype(const char *name, size_t len)
{
	static const struct { const char *name; int flag; } types[] = {
		{ "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS }, { "time", 0x00000080 /* CLONE_NEWTIME */ },
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
static void fail(const char *what, int err)
{
	char body[256], frame[260];
	const char *fdenv = getenv("_BERTH_SYNCFD");
	int n = snprintf(body, sizeof(body),
			 "{\"type\":\"error\",\"step\":\"join namespaces\",\"message\":\"%s: %s\"}",
			 what, strerror(err));
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

void berth_nsenter(void)
{
	const char *spec = getenv("_BERTH_NSENTER");
	if (spec == NULL || *spec == '\0')
		return;

	const char *p = spec;
	while (*p != '\0') {
		char *end;
		long fd = strtol(p, &end, 10);
		if (end == p || *end != ':' || fd < 0)
			fail("malformed _BERTH_NSENTER", EINVAL);
		const char *name = end + 1;
		size_t len = strcspn(name, ",");
		int flag = nstype(name, len);
		if (flag < 0)
			fail("unknown namespace type in _BERTH_NSENTER", EINVAL);
		if (setns((int)fd, flag) < 0) {
			char what[64];
			snprintf(what, sizeof(what), "setns %.*s", (int)len, name);
			fail(what, errno);
		}
		close((int)fd);
		p = name + len;
		if (*p == ',')
			p++;
	}
	unsetenv("_BERTH_NSENTER");
}

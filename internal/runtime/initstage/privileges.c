// What the user's program is allowed, set by proc_finalize just before the
// execve: its seccomp filter (and the listener's hand-off), its bounding
// set, its user and groups, its capabilities, and the descriptors it
// inherits. A port of what initproc called in internal/linux/{caps,seccomp}
// (DropBounding, SwitchUser, Apply, Filter.Load, SendNotify) and of
// initproc's setgroupsAllowed and descriptor closing, with the same steps,
// order and error wording. The order in which they run, and why, is
// proc_finalize's (process.c).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "privileges.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

// The id changes are raw syscalls, as Go's RawSyscall were: glibc's
// wrappers propagate them to other threads with an internal signal whose
// handler reset_signals has just removed. The stage has no other thread,
// so the raw call is the whole job. 32-bit architectures have the 32-bit
// id variants under other names.
#ifdef SYS_setresuid32
#define SYS_SETRESUID SYS_setresuid32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETGROUPS SYS_setgroups32
#else
#define SYS_SETRESUID SYS_setresuid
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETGROUPS SYS_setgroups
#endif

// ---- formatting for errors -------------------------------------------------

static const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

// cap_name is caps.Name: numbers past the table get the kernel's spelling.
static const char *cap_name(int n, char *buf, size_t size)
{
	if (n >= 0 && (size_t)n < sizeof(cap_names) / sizeof(cap_names[0]))
		return cap_names[n];
	snprintf(buf, size, "cap_%d", n);
	return buf;
}

// cap_set is caps.Set.String: the names joined by commas, or "none".
static const char *cap_set(uint64_t set, char *buf, size_t size)
{
	if (set == 0)
		return "none";
	size_t off = 0;
	buf[0] = '\0';
	for (int n = 0; n < 64 && off < size; n++) {
		if (!(set & (1ULL << n)))
			continue;
		char tmp[16];
		int w = snprintf(buf + off, size - off, "%s%s", off ? "," : "", cap_name(n, tmp, sizeof(tmp)));
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

// id_list is Go's %v of a []uint32: "[1 2 3]", cut short when it is long.
static const char *id_list(const uint32_t *ids, uint32_t n, char *buf, size_t size)
{
	size_t off = (size_t)snprintf(buf, size, "[");
	for (uint32_t i = 0; i < n && off < size; i++) {
		if (off + 16 >= size) {
			snprintf(buf + off, size - off, " ...");
			return buf;
		}
		off += (size_t)snprintf(buf + off, size - off, "%s%u", i ? " " : "", ids[i]);
	}
	if (off < size)
		snprintf(buf + off, size - off, "]");
	return buf;
}

// ---- seccomp ---------------------------------------------------------------

// load_seccomp is seccomp.Filter.Load followed by SendNotify: the filter
// installed on this (the only) thread, without TSYNC, and a listener's
// descriptor sent with the state over s->seccompfd, then both closed.
// After it every syscall of the process is filtered; the runtime refuses
// filters that notify on what the stage still has to do (seccomp
// Compile).
int priv_load_seccomp(struct stage *s, struct process *p)
{
	if (p->seccomp_len == 0)
		return 0;
	s->step = "seccomp";
	if (p->seccomp_len > 0xffff)
		return fail(s, "load seccomp filter: program of %u instructions is too long", p->seccomp_len);
	struct sock_fprog prog = {
		.len = (unsigned short)p->seccomp_len,
		.filter = (struct sock_filter *)p->seccomp_prog,
	};
	// seccomp(2) does not sleep, so it cannot fail with EINTR.
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned long)p->seccomp_flags, &prog);
	if (r < 0) {
		if (errno == EACCES)
			return fail(s, "load seccomp filter: seccomp: %s (the thread needs no_new_privs or CAP_SYS_ADMIN)",
				    strerror(errno));
		return failerr(s, errno, "load seccomp filter: seccomp");
	}
	if (!(p->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER))
		return 0;
	int fd = (int)r; // O_CLOEXEC from the kernel
	int ret = 0;
	if (s->seccompfd < 0) {
		ret = fail(s, "send notify descriptor to the listener: no connection to the seccomp listener");
	} else if (p->seccomp_state_len == 0) {
		ret = fail(s, "send notify descriptor to the listener: send seccomp listener: empty state");
	} else {
		// The descriptor rides with the first bytes; should the socket
		// take only part of a large state, the rest follows without it.
		// MSG_NOSIGNAL: an agent that went away is an error to report
		// (Go ignores SIGPIPE on such sockets), not a silent death.
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		memset(&ctl, 0, sizeof(ctl));
		const char *data = p->seccomp_state;
		size_t left = p->seccomp_state_len;
		bool first = true;
		while (left > 0) {
			struct iovec iov = { .iov_base = (void *)data, .iov_len = left };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
			if (first) {
				msg.msg_control = ctl.buf;
				msg.msg_controllen = sizeof(ctl.buf);
				struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
				c->cmsg_level = SOL_SOCKET;
				c->cmsg_type = SCM_RIGHTS;
				c->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(c), &fd, sizeof(int));
			}
			ssize_t n = sendmsg(s->seccompfd, &msg, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = failerr(s, errno, "send notify descriptor to the listener: send seccomp listener: sendmsg");
				break;
			}
			if (n == 0) {
				ret = fail(s, "send notify descriptor to the listener: send seccomp listener: sendmsg took nothing");
				break;
			}
			data += n;
			left -= (size_t)n;
			first = false;
		}
	}
	close(fd);
	if (s->seccompfd >= 0) {
		close(s->seccompfd);
		s->seccompfd = -1;
	}
	return ret;
}

// ---- identity and capabilities ---------------------------------------------

// drop_bounding is caps.DropBounding: every capability the kernel knows
// (PR_CAPBSET_READ fails with EINVAL past the last) that keep lacks leaves
// the bounding set. Only what is present is dropped, so a process without
// CAP_SETPCAP passes when there is nothing to do. Runs before the user
// switch, which may take CAP_SETPCAP away.
int priv_drop_bounding(struct stage *s, uint64_t keep)
{
	char tmp[16];
	for (int n = 0; n < 64; n++) {
		int in = prctl(PR_CAPBSET_READ, (unsigned long)n, 0, 0, 0);
		if (in < 0 && errno == EINVAL)
			break;
		if (in < 0)
			return failerr(s, errno, "read bounding capability %s: prctl", cap_name(n, tmp, sizeof(tmp)));
		if (in == 0 || (keep & (1ULL << n)))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)n, 0, 0, 0) < 0)
			return failerr(s, errno, "drop %s from the bounding set: prctl", cap_name(n, tmp, sizeof(tmp)));
	}
	return 0;
}

// setgroups_allowed is initproc.setgroupsAllowed: false only when the user
// namespace's setgroups file says "deny" (the kernel then refuses
// setgroups(2)). It is read from the container's detached procfs when
// there is one, which the image cannot fake, and an unreadable file means
// allowed: setgroups itself then fails loudly if it was not.
bool priv_setgroups_allowed(struct stage *s)
{
	char buf[16];
	int r = s->procfd >= 0 ? proc_read_small(s->procfd, "self/setgroups", buf, sizeof(buf))
			       : proc_read_small(AT_FDCWD, "/proc/self/setgroups", buf, sizeof(buf));
	if (r < 0)
		return true;
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	const char *b = buf;
	while (*b == ' ' || *b == '\t' || *b == '\n')
		b++;
	return strcmp(b, "deny") != 0;
}

// switch_ids does the work of switch_user between the keepcaps changes.
static int switch_ids(struct stage *s, const struct process *p, bool setgroups)
{
	char list[256];
	if (setgroups) {
		if (syscall(SYS_SETGROUPS, (unsigned long)p->ngroups, p->ngroups ? p->groups : NULL) < 0)
			return failerr(s, errno, "set additional groups %s: setgroups",
				       id_list(p->groups, p->ngroups, list, sizeof(list)));
	}
	// Group before user: after setresuid to a non-zero uid the process
	// may no longer hold CAP_SETGID in its effective set.
	if (syscall(SYS_SETRESGID, p->gid, p->gid, p->gid) < 0)
		return failerr(s, errno, "set gid %u: setresgid", p->gid);
	if (syscall(SYS_SETRESUID, p->uid, p->uid, p->uid) < 0)
		return failerr(s, errno, "set uid %u: setresuid", p->uid);
	return 0;
}

// switch_user is caps.SwitchUser: uid and gid (real, effective, saved,
// filesystem) and, when allowed, exactly the spec's supplementary groups
// (none when it lists none, dropping the runtime's own). The permitted
// set survives through PR_SET_KEEPCAPS, which is back to 0 afterwards, on
// success and on failure; the kernel clears the effective set when the uid
// leaves 0 and apply_caps sets it again.
int priv_switch_user(struct stage *s, const struct process *p, bool setgroups)
{
	char list[256];
	// (uid_t)-1 means "leave unchanged" to setresuid(2): a spec asking
	// for it would silently keep the runtime's root.
	if (p->uid == UINT32_MAX || p->gid == UINT32_MAX)
		return failerr(s, EINVAL, "switch to uid %u gid %u: %u is not a valid id",
			       p->uid, p->gid, UINT32_MAX);
	for (uint32_t i = 0; i < p->ngroups; i++)
		if (p->groups[i] == UINT32_MAX)
			return failerr(s, EINVAL, "set additional groups %s: %u is not a valid id",
				       id_list(p->groups, p->ngroups, list, sizeof(list)), UINT32_MAX);
	if (!setgroups && p->ngroups > 0)
		return failerr(s, EPERM, "set additional groups %s: setgroups is denied in this user namespace",
			       id_list(p->groups, p->ngroups, list, sizeof(list)));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return failerr(s, errno, "set keepcaps: prctl");
	int ret = switch_ids(s, p, setgroups);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 && ret == 0)
		ret = failerr(s, errno, "clear keepcaps: prctl");
	return ret;
}

// apply_caps is caps.Apply: effective, permitted and inheritable set to
// exactly the spec's, then the ambient set to exactly its ambient
// capabilities that are both permitted and inheritable (the kernel refuses
// the others; the runtime warned about them). Nothing of the runtime's own
// inheritable or ambient sets survives (CVE-2022-29162).
int priv_apply_caps(struct stage *s, const struct process *p)
{
	char e[1024], pm[1024], in[1024], tmp[16];
	uint64_t extra = p->cap_effective & ~p->cap_permitted;
	if (extra != 0)
		return failerr(s, EINVAL, "set capabilities: effective %s not in the permitted set",
			       cap_set(extra, e, sizeof(e)));
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)p->cap_effective, .permitted = (uint32_t)p->cap_permitted,
		  .inheritable = (uint32_t)p->cap_inheritable },
		{ .effective = (uint32_t)(p->cap_effective >> 32), .permitted = (uint32_t)(p->cap_permitted >> 32),
		  .inheritable = (uint32_t)(p->cap_inheritable >> 32) },
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		return failerr(s, errno, "set capabilities effective=%s permitted=%s inheritable=%s: capset",
			       cap_set(p->cap_effective, e, sizeof(e)), cap_set(p->cap_permitted, pm, sizeof(pm)),
			       cap_set(p->cap_inheritable, in, sizeof(in)));
	// Clear first: capset does not touch the ambient set, and whatever the
	// runtime had must not reach the container.
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return failerr(s, errno, "clear ambient capabilities: prctl");
	uint64_t ambient = p->cap_ambient & p->cap_permitted & p->cap_inheritable;
	for (int n = 0; n < 64; n++) {
		if (!(ambient & (1ULL << n)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)n, 0, 0) < 0)
			return failerr(s, errno, "raise ambient capability %s: prctl", cap_name(n, tmp, sizeof(tmp)));
	}
	return 0;
}

// ---- descriptors -----------------------------------------------------------

// cloexec_from marks every descriptor from first on close-on-exec, so the
// program starts with stdio and the preserved descriptors only: a leaked
// descriptor of the host's filesystem is a way out of the container
// (CVE-2024-21626). Marked rather than closed, so the stage's own
// descriptors stay usable to report an execve failure. Without
// close_range (Linux 5.11 for CLOSE_RANGE_CLOEXEC) the descriptors are
// listed in procfs, the container's detached one when there is one, and
// what is listed must really be a procfs.
int priv_cloexec_from(struct stage *s, unsigned first)
{
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	const char *name = "/proc/self/fd";
	int dfd = s->procfd >= 0 ? openat(s->procfd, "self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				 : open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return failerr(s, errno, "open %s", name);
	struct statfs fs;
	if (fstatfs(dfd, &fs) < 0 || (unsigned long)fs.f_type != PROC_SUPER_MAGIC) {
		close(dfd);
		return fail(s, "open %s: not a procfs", name);
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int err = errno;
		close(dfd);
		return failerr(s, err, "open %s", name);
	}
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		char *end;
		errno = 0;
		long fd = strtol(ent->d_name, &end, 10);
		if (errno == 0 && end != ent->d_name && *end == '\0' && fd >= (long)first && fd <= INT32_MAX)
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

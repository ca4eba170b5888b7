// The user's program: what can fail is resolved before the container is
// reported ready (proc_prepare), then the process drops to the user's
// identity and privileges and executes it (proc_finalize). A port of
// internal/runtime/initproc (process.go, signals.go) and of the helpers it
// calls in internal/linux/{caps,rlimit,seccomp,procattr}, with the same
// steps, order and error wording.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"

#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif
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

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_SHIFT 13

// bufio.Scanner's default token limit, which homeDir inherits: a longer
// line ends the search.
#define PASSWD_LINE_MAX (64 * 1024)
// The container's /etc/passwd is read at most this far: a huge (or sparse)
// file must not hold up the start.
#define PASSWD_READ_MAX (16 * 1024 * 1024)

// Step names that carry a path, like Go's dynamic ones; the stage runs
// once per process, so static storage is enough.
static char chdir_step[4200];
static char exec_step[4200];

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

// quote is Go's %q for the strings it quotes here (program names): ASCII
// escapes as Go writes them, other bytes passed through (Go would escape
// invalid UTF-8 as \x.. too; names in error messages stay readable
// either way). Cut short to fit buf.
static const char *quote(const char *str, char *buf, size_t size)
{
	size_t off = 0;
	buf[off++] = '"';
	for (const unsigned char *c = (const unsigned char *)str; *c != '\0'; c++) {
		if (off + 8 >= size) {
			memcpy(buf + off, "...", 3);
			off += 3;
			break;
		}
		const char *esc = NULL;
		switch (*c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\a': esc = "\\a"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\v': esc = "\\v"; break;
		}
		if (esc != NULL) {
			memcpy(buf + off, esc, 2);
			off += 2;
		} else if (*c < 0x20 || *c == 0x7f) {
			off += (size_t)snprintf(buf + off, size - off, "\\x%02x", *c);
		} else {
			buf[off++] = (char)*c;
		}
	}
	buf[off++] = '"';
	buf[off] = '\0';
	return buf;
}

// cpu_list spells a CPU mask the way the spec's list does ("0-3,7"):
// procattr.Affinity's error names the list it was given.
static const char *cpu_list(const uint64_t *mask, uint32_t words, char *buf, size_t size)
{
	size_t off = 0;
	uint32_t bits = words * 64;
	buf[0] = '\0';
	for (uint32_t c = 0; c < bits && off < size; c++) {
		if (!(mask[c / 64] & (1ULL << (c % 64))))
			continue;
		uint32_t end = c;
		while (end + 1 < bits && (mask[(end + 1) / 64] & (1ULL << ((end + 1) % 64))))
			end++;
		int w = end == c ? snprintf(buf + off, size - off, "%s%u", off ? "," : "", c)
				 : snprintf(buf + off, size - off, "%s%u-%u", off ? "," : "", c, end);
		if (w < 0)
			break;
		off += (size_t)w;
		c = end;
	}
	return buf;
}

// limit is rlimit.limit: as ulimit(1) spells it.
static const char *limit(uint64_t v, char *buf, size_t size)
{
	if (v == (uint64_t)RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

// read_small reads a small file of the kernel's (a /proc value) into buf,
// NUL-terminated; -1 when it cannot.
static int read_small(int dirfd, const char *path, char *buf, size_t size)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

// ---- proc_prepare ----------------------------------------------------------

// rlimit_explain is rlimit.explain: a failed prlimit turned into an error a
// user can act on.
static int rlimit_explain(struct stage *s, const struct rlimit_entry *l, int err)
{
	char a[32], b[32], op[256];
	snprintf(op, sizeof(op), "set %s to %s/%s", l->name,
		 limit(l->soft, a, sizeof(a)), limit(l->hard, b, sizeof(b)));
	if (err != EPERM)
		return failerr(s, err, "%s: prlimit", op);
	// EPERM for RLIMIT_NOFILE above fs.nr_open comes even with
	// CAP_SYS_RESOURCE (kernel/sys.c do_prlimit), so check it first.
	if (l->resource == RLIMIT_NOFILE) {
		char buf[32], *end;
		if (read_small(AT_FDCWD, "/proc/sys/fs/nr_open", buf, sizeof(buf)) == 0) {
			errno = 0;
			unsigned long long nr = strtoull(buf, &end, 10);
			while (*end == '\n' || *end == ' ')
				end++;
			if (errno == 0 && end != buf && *end == '\0' && l->hard > nr)
				return failerr(s, err, "%s: above the kernel's fs.nr_open of %llu", op, nr);
		}
	}
	struct rlimit cur;
	if (prlimit(0, (__rlimit_resource_t)l->resource, NULL, &cur) == 0 && l->hard > (uint64_t)cur.rlim_max)
		return failerr(s, err, "%s: hard limit above the host's %s needs CAP_SYS_RESOURCE",
			       op, limit(cur.rlim_max, a, sizeof(a)));
	return failerr(s, err, "%s", op);
}

// apply_rlimits sets each limit in order and stops at the first failure;
// the runtime has validated them (rlimit.Validate).
static int apply_rlimits(struct stage *s, const struct process *p)
{
	for (uint32_t i = 0; i < p->nrlimits; i++) {
		const struct rlimit_entry *l = &p->rlimits[i];
		struct rlimit want = { .rlim_cur = l->soft, .rlim_max = l->hard };
		int r;
		do
			r = prlimit(0, (__rlimit_resource_t)l->resource, &want, NULL);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return rlimit_explain(s, l, errno);
	}
	return 0;
}

// passwd_match looks at one line of /etc/passwd: the home directory
// (field 6) when the uid (field 3) is want and the directory is not empty.
static bool passwd_match(char *line, size_t len, const char *want, const char **home)
{
	if (len > 0 && line[len - 1] == '\r') // bufio.ScanLines drops it
		len--;
	line[len] = '\0';
	char *field[6];
	size_t nf = 0;
	char *p = line;
	while (nf < 6) {
		field[nf++] = p;
		char *colon = memchr(p, ':', len - (size_t)(p - line));
		if (colon == NULL)
			break;
		*colon = '\0';
		p = colon + 1;
	}
	if (nf < 6 || strcmp(field[2], want) != 0)
		return false;
	// Cut the sixth field at the next colon (the shell follows).
	char *end = strchr(field[5], ':');
	if (end != NULL)
		*end = '\0';
	if (field[5][0] == '\0')
		return false;
	*home = field[5];
	return true;
}

// home_dir looks uid up in the container's /etc/passwd, as runc does when
// the spec sets no HOME, and returns "/" when it is not there. The file is
// the container's: anything that is not a regular file is not read (a
// fifo would block the start forever, a device could be endless), lines
// are bounded like bufio.Scanner's and so is the whole read.
static const char *home_dir(uint32_t uid)
{
	static char buf[PASSWD_LINE_MAX + 1];
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return "/";
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return "/";
	}
	char want[16];
	snprintf(want, sizeof(want), "%u", uid);
	const char *home = "/";
	size_t start = 0, len = 0, total = 0;
	bool eof = false;
	for (;;) {
		char *nl = memchr(buf + start, '\n', len - start);
		if (nl != NULL) {
			size_t n = (size_t)(nl - (buf + start));
			if (passwd_match(buf + start, n, want, &home))
				break;
			start += n + 1;
			continue;
		}
		if (eof) {
			if (len > start)
				passwd_match(buf + start, len - start, want, &home);
			break;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
		start = 0;
		if (len == PASSWD_LINE_MAX || total >= PASSWD_READ_MAX)
			break; // a line too long for bufio.Scanner ends the search
		ssize_t r;
		do
			r = read(fd, buf + len, PASSWD_LINE_MAX - len);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			break;
		if (r == 0)
			eof = true;
		len += (size_t)r;
		total += (size_t)r;
	}
	close(fd);
	return home;
}

// executable is initproc.executable: p exists (following symlinks), is not
// a directory and has an execute bit. On failure it formats the reason
// into why (Go's literal texts for the common cases, else "stat p: errno")
// and returns the errno, or 0 when p is executable.
static int executable(const char *p, char *why, size_t size)
{
	struct stat st;
	if (stat(p, &st) < 0) {
		int err = errno;
		if (err == ENOENT)
			snprintf(why, size, "no such file or directory");
		else
			snprintf(why, size, "stat %s: %s", p, strerror(err));
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, size, "is a directory");
		return EISDIR;
	}
	if ((st.st_mode & 0111) == 0) {
		snprintf(why, size, "permission denied");
		return EACCES;
	}
	return 0;
}

// clean_join is filepath.Join(dir, name) for a name without '/': the
// lexical clean of dir/name (Go's filepath.Clean), which is the path the
// program is executed by.
static int clean_join(const char *dir, const char *name, char *out, size_t size)
{
	char in[4096 + 1];
	int n = snprintf(in, sizeof(in), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(in) || (size_t)n >= size)
		return -1;
	bool rooted = in[0] == '/';
	size_t w = 0, r = 0, dotdot = 0, len = (size_t)n;
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < len) {
		if (in[r] == '/') {
			r++;
		} else if (in[r] == '.' && (r + 1 == len || in[r + 1] == '/')) {
			r++;
		} else if (in[r] == '.' && in[r + 1] == '.' && (r + 2 == len || in[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				// Back up to the previous separator.
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				// A relative path keeps its leading "..".
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < len && in[r] != '/')
				out[w++] = in[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
	return 0;
}

// look_path is initproc.lookPath: the program found the way execvp would,
// with the container's PATH (the last PATH= in env wins, as in Go), so a
// missing binary fails at create with a clear message. An empty PATH
// searches nothing (filepath.SplitList("") is empty); an empty component
// of a non-empty one is the working directory.
static int look_path(struct stage *s, struct process *p, const char *const *env)
{
	const char *name = p->argv[0];
	char q[1024], why[4300];
	if (name == NULL)
		return fail(s, "no program to run");
	if (strchr(name, '/') != NULL) {
		if (executable(name, why, sizeof(why)) != 0)
			return fail(s, "%s: %s", quote(name, q, sizeof(q)), why);
		if (strlen(name) >= sizeof(p->path))
			return failerr(s, ENAMETOOLONG, "%s", quote(name, q, sizeof(q)));
		strcpy(p->path, name);
		return 0;
	}
	const char *path = "";
	for (const char *const *e = env; *e != NULL; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	if (*path != '\0') {
		const char *dir = path;
		for (;;) {
			size_t n = strcspn(dir, ":");
			char d[4096], cand[4096];
			if (n == 0) {
				strcpy(d, ".");
			} else if (n < sizeof(d)) {
				memcpy(d, dir, n);
				d[n] = '\0';
			} else {
				d[0] = '\0';
			}
			if (d[0] != '\0' && clean_join(d, name, cand, sizeof(cand)) == 0 &&
			    executable(cand, why, sizeof(why)) == 0) {
				strcpy(p->path, cand);
				return 0;
			}
			if (dir[n] == '\0')
				break;
			dir += n + 1;
		}
	}
	return fail(s, "%s: executable file not found in $PATH", quote(name, q, sizeof(q)));
}

// with_home returns envp plus "HOME=<home>", allocated (and never freed:
// execve follows).
static const char **with_home(struct stage *s, const char **envp, const char *home)
{
	size_t n = 0;
	while (envp[n] != NULL)
		n++;
	const char **out = calloc(n + 2, sizeof(*out));
	size_t hlen = strlen(home);
	char *h = malloc(hlen + sizeof("HOME="));
	if (out == NULL || h == NULL) {
		free(out);
		free(h);
		failerr(s, ENOMEM, "add HOME to the environment");
		return NULL;
	}
	memcpy(h, "HOME=", 5);
	memcpy(h + 5, home, hlen + 1);
	memcpy(out, envp, n * sizeof(*out));
	out[n] = h;
	out[n + 1] = NULL;
	return out;
}

int proc_prepare(struct stage *s, struct process *p)
{
	snprintf(chdir_step, sizeof(chdir_step), "chdir to %s", p->cwd);
	s->step = chdir_step;
	if (chdir(p->cwd) < 0)
		return failerr(s, errno, "chdir");

	s->step = "set rlimits";
	if (apply_rlimits(s, p) < 0)
		return -1;

	// Before the program is looked up, as in Go (the lookup sees the same
	// environment the program will).
	p->final_envp = p->envp;
	if (p->need_home) {
		p->final_envp = with_home(s, p->envp, home_dir(p->uid));
		if (p->final_envp == NULL) {
			s->step = "find program";
			return -1;
		}
	}

	s->step = "find program";
	if (look_path(s, p, p->final_envp) < 0)
		return -1;

	// A notifying filter's listener must have somewhere to go; the
	// connection is made before pivot_root, while its path is reachable.
	if (p->seccomp_len > 0 && p->seccomp_notify && s->seccompfd < 0) {
		s->step = "seccomp";
		return fail(s, "no connection to the seccomp listener");
	}
	return 0;
}

// ---- proc_finalize -----------------------------------------------------------

// reset_signals gives the program the signal state a fresh process has:
// every disposition the default and nothing blocked. execve resets caught
// signals but keeps ignored ones and the mask, so a container would
// otherwise inherit whatever its ancestors ignored (a nohup'd daemon's
// SIGHUP, a supervisor's SIGPIPE, a real-time signal a CI harness set
// aside), and a shell in it could not be interrupted. Raw calls: glibc's
// refuse its own reserved signals (32, 33). It runs before the spec's
// seccomp filter is loaded, so no profile can refuse it; errors (there are
// none for valid signals) are ignored as in Go.
static void reset_signals(void)
{
	// struct kernel_sigaction {handler, flags, restorer, mask}, all zero:
	// handler SIG_DFL, whatever the architecture's field order.
	uint64_t dfl[4] = { 0 };
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		syscall(SYS_rt_sigaction, sig, dfl, NULL, 8);
	}
	uint64_t empty = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, 8);
}

// load_seccomp is seccomp.Filter.Load followed by SendNotify: the filter
// installed on this (the only) thread, without TSYNC, and a listener's
// descriptor sent with the state over s->seccompfd, then both closed.
// After it every syscall of the process is filtered; the runtime refuses
// filters that notify on what the stage still has to do (seccomp
// Compile).
static int load_seccomp(struct stage *s, struct process *p)
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

// drop_bounding is caps.DropBounding: every capability the kernel knows
// (PR_CAPBSET_READ fails with EINVAL past the last) that keep lacks leaves
// the bounding set. Only what is present is dropped, so a process without
// CAP_SETPCAP passes when there is nothing to do. Runs before the user
// switch, which may take CAP_SETPCAP away.
static int drop_bounding(struct stage *s, uint64_t keep)
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
static bool setgroups_allowed(struct stage *s)
{
	char buf[16];
	int r = s->procfd >= 0 ? read_small(s->procfd, "self/setgroups", buf, sizeof(buf))
			       : read_small(AT_FDCWD, "/proc/self/setgroups", buf, sizeof(buf));
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
static int switch_user(struct stage *s, const struct process *p, bool setgroups)
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
static int apply_caps(struct stage *s, const struct process *p)
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

// cloexec_from marks every descriptor from first on close-on-exec, so the
// program starts with stdio and the preserved descriptors only: a leaked
// descriptor of the host's filesystem is a way out of the container
// (CVE-2024-21626). Marked rather than closed, so the stage's own
// descriptors stay usable to report an execve failure. Without
// close_range (Linux 5.11 for CLOSE_RANGE_CLOEXEC) the descriptors are
// listed in procfs, the container's detached one when there is one, and
// what is listed must really be a procfs.
static int cloexec_from(struct stage *s, unsigned first)
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

// The spec's names of the raw values the runtime computed, for errors
// worded like procattr's; a value without a name is printed as a number.
#define NAMES(...) ((const char *const[]){ __VA_ARGS__ }), \
	sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)
static const char *spec_name(const char *const *names, size_t n, uint64_t v, char *buf, size_t size)
{
	if (v < n && names[v] != NULL)
		return names[v];
	snprintf(buf, size, "%#llx", (unsigned long long)v);
	return buf;
}
#define PERSONALITIES NAMES("LINUX", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "LINUX32")
#define IOPRIO_CLASSES NAMES(NULL, "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
#define SCHED_POLICIES NAMES("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", \
			     "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE")
#define MPOL_MODES NAMES("MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE", \
			 "MPOL_LOCAL", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE")

int proc_finalize(struct stage *s, struct process *p)
{
	char buf[1100];
	// Read while nothing is filtered yet; the answer is fixed once the
	// user namespace's maps are written.
	bool setgroups = setgroups_allowed(s);

	if (p->has_personality) {
		s->step = "personality";
		if (personality((unsigned long)p->personality) < 0)
			return failerr(s, errno, "set personality %s: personality",
				       spec_name(PERSONALITIES, p->personality, buf, sizeof(buf)));
	}
	if (p->has_ioprio) {
		s->step = "ioPriority";
		if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, p->ioprio) < 0)
			return failerr(s, errno, "set ioPriority %s/%u: ioprio_set",
				       spec_name(IOPRIO_CLASSES, p->ioprio >> IOPRIO_CLASS_SHIFT, buf, sizeof(buf)),
				       p->ioprio & ((1U << IOPRIO_CLASS_SHIFT) - 1));
	}
	if (p->sched_attr_len > 0) {
		s->step = "scheduler";
		// struct sched_attr opens with u32 size, u32 sched_policy. The
		// kernel reads as many bytes as size says (at least
		// SCHED_ATTR_SIZE_VER0, 48): never past what the plan holds.
		uint32_t head[2] = { 0, UINT32_MAX };
		memcpy(head, p->sched_attr, p->sched_attr_len < 8 ? p->sched_attr_len : 8);
		if (head[0] < 48 || head[0] > p->sched_attr_len)
			return fail(s, "set scheduler: attribute of %u bytes claims %u", p->sched_attr_len, head[0]);
		if (syscall(SYS_sched_setattr, 0, p->sched_attr, 0) < 0)
			return failerr(s, errno, "set scheduler %s: sched_setattr",
				       spec_name(SCHED_POLICIES, head[1], buf, sizeof(buf)));
	}
	if (p->has_mempolicy) {
		s->step = "memory policy";
		if (syscall(SYS_set_mempolicy, (long)p->mempolicy_mode,
			    p->nodemask_len > 0 ? p->nodemask : NULL, (unsigned long)p->maxnode) < 0)
			return failerr(s, errno, "set memory policy %s: set_mempolicy",
				       // named without the MPOL_F_* flags (bits 13-15)
				       spec_name(MPOL_MODES, p->mempolicy_mode & ~(7U << 13), buf, sizeof(buf)));
	}
	// Before any seccomp filter, which may refuse rt_sigaction or prctl.
	reset_signals();
	// The host's transparent huge page policy for the program: a
	// berth-shim that runs the runtime in-process disables THP for its own
	// memory (cmd/berth-shim/thp.go), and the flag is inherited by forks
	// and kept across execve.
	s->step = "transparent huge pages";
	if (prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) < 0)
		return failerr(s, errno, "prctl");
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
	// while the capabilities are still there. The rest of the set-up then
	// runs under the filter.
	if (!p->no_new_privs && load_seccomp(s, p) < 0)
		return -1;
	// The bounding set first: dropping needs CAP_SETPCAP, which the user
	// switch may take away.
	if (p->has_caps) {
		s->step = "drop bounding capabilities";
		if (drop_bounding(s, p->cap_bounding) < 0)
			return -1;
	}
	s->step = "switch user";
	if (switch_user(s, p, setgroups) < 0)
		return -1;
	if (p->has_caps) {
		s->step = "set capabilities";
		if (apply_caps(s, p) < 0)
			return -1;
	}
	if (p->has_umask)
		umask((mode_t)p->umask);
	if (p->no_new_privs) {
		s->step = "set no_new_privs";
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return failerr(s, errno, "prctl");
		// As late as possible: only execve of the program follows.
		if (load_seccomp(s, p) < 0)
			return -1;
	}
	if (p->affinity_len > 0) {
		s->step = "exec CPU affinity";
		if (sched_setaffinity(0, (size_t)p->affinity_len * sizeof(uint64_t), (const cpu_set_t *)p->affinity) < 0)
			return failerr(s, errno, "set CPU affinity %s: sched_setaffinity",
				       cpu_list(p->affinity, p->affinity_len, buf, sizeof(buf)));
	}
	s->step = "close descriptors";
	if (cloexec_from(s, 3 + p->preserve_fds) < 0)
		return -1;
	snprintf(exec_step, sizeof(exec_step), "exec %s", p->path);
	s->step = exec_step;
	execve(p->path, (char *const *)p->argv, (char *const *)p->final_envp);
	// Go reports the bare errno under the step "exec <path>".
	return fail(s, "%s", strerror(errno));
}

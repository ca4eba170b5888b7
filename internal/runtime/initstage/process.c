// The user's program: what can fail is resolved before the container is
// reported ready (proc_prepare), then the process drops to the user's
// identity and privileges and executes it (proc_finalize). A port of
// internal/runtime/initproc (process.go, signals.go) and of the helpers it
// calls in internal/linux/{rlimit,procattr}, with the same steps, order and
// error wording. What the program is allowed (seccomp, bounding set, user
// and groups, capabilities, inherited descriptors) is set through
// privileges.c.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "privileges.h"
#include "resolve.h"

#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
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
int proc_read_small(int dirfd, const char *path, char *buf, size_t size)
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
		if (proc_read_small(AT_FDCWD, "/proc/sys/fs/nr_open", buf, sizeof(buf)) == 0) {
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

// enter_cwd changes into cwd resolved beneath the process's root with no
// magic link, through a descriptor: chdir(2) by name would follow a
// /proc/self/fd/N (or a link to one) into whatever the stage holds open,
// and the name was checked (rfs_mkdir) in another call that a writer of
// the rootfs can race. An exec'd process gets the same: the container
// owns every name on the way. Returns -1 with errno set.
static int enter_cwd(const char *cwd)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = res_openat2(root, cwd, O_PATH | O_DIRECTORY, IN_ROOT);
	int err = errno;
	close(root);
	if (fd < 0) {
		errno = err;
		return -1;
	}
	int r = fchdir(fd);
	err = errno;
	close(fd);
	errno = err;
	return r;
}

int proc_prepare(struct stage *s, struct process *p)
{
	snprintf(chdir_step, sizeof(chdir_step), "chdir to %s", p->cwd);
	s->step = chdir_step;
	if (enter_cwd(p->cwd) < 0)
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

// drop_privileges is the part of proc_finalize a startContainer hook
// shares (proc_drop): bounding set, user and groups, capabilities, umask,
// no_new_privs, in that order.
static int drop_privileges(struct stage *s, const struct process *p, bool setgroups)
{
	// The bounding set first: dropping needs CAP_SETPCAP, which the user
	// switch may take away.
	if (p->has_caps) {
		s->step = "drop bounding capabilities";
		if (priv_drop_bounding(s, p->cap_bounding) < 0)
			return -1;
	}
	s->step = "switch user";
	if (priv_switch_user(s, p, setgroups) < 0)
		return -1;
	if (p->has_caps) {
		s->step = "set capabilities";
		if (priv_apply_caps(s, p) < 0)
			return -1;
	}
	if (p->has_umask)
		umask((mode_t)p->umask);
	if (p->no_new_privs) {
		s->step = "set no_new_privs";
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return failerr(s, errno, "prctl");
	}
	return 0;
}

int proc_drop(struct stage *s, const struct process *p)
{
	return drop_privileges(s, p, priv_setgroups_allowed(s));
}

int proc_finalize(struct stage *s, struct process *p)
{
	char buf[1100];
	// Read while nothing is filtered yet; the answer is fixed once the
	// user namespace's maps are written.
	bool setgroups = priv_setgroups_allowed(s);

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
	if (!p->no_new_privs && priv_load_seccomp(s, p) < 0)
		return -1;
	if (drop_privileges(s, p, setgroups) < 0)
		return -1;
	// As late as possible: only execve of the program follows.
	if (p->no_new_privs && priv_load_seccomp(s, p) < 0)
		return -1;
	if (p->affinity_len > 0) {
		s->step = "exec CPU affinity";
		if (sched_setaffinity(0, (size_t)p->affinity_len * sizeof(uint64_t), (const cpu_set_t *)p->affinity) < 0)
			return failerr(s, errno, "set CPU affinity %s: sched_setaffinity",
				       cpu_list(p->affinity, p->affinity_len, buf, sizeof(buf)));
	}
	s->step = "close descriptors";
	if (priv_cloexec_from(s, 3 + p->preserve_fds) < 0)
		return -1;
	snprintf(exec_step, sizeof(exec_step), "exec %s", p->path);
	s->step = exec_step;
	execve(p->path, (char *const *)p->argv, (char *const *)p->final_envp);
	// Go reports the bare errno under the step "exec <path>".
	return fail(s, "%s", strerror(errno));
}

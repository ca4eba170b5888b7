// The stage's entry, its conversation with the runtime, and the plan's
// decoder and interpreter. The wire format is written by plan.go; the two
// change together (planVersion).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "resolve.h"

#define PLAN_MAGIC 0x4e4c5042u /* "BPLN" little-endian */
#define PLAN_VERSION 1u
#define MAX_FRAME (16u << 20)
#define SYNC_VERSION "2"

// Operation codes: plan.go's op* constants.
enum {
	OP_CGROUPNS = 1,
	OP_OOM,
	OP_ROOT,
	OP_MOUNT,
	OP_BIND,
	OP_REMOUNT,
	OP_DEVICE,
	OP_SYMLINK,
	OP_CONSOLE,
	OP_HOOKS_SYNC,
	OP_HOOK,
	OP_SYSCTL,
	OP_MASK,
	OP_READONLY,
	OP_MKDIR,
	OP_PIVOT,
	OP_MOVEROOT,
	OP_FINISH_ROOT,
	OP_HOSTNAME,
	OP_DOMAINNAME,
	OP_TTY,
	OP_SETSID,
	OP_KEYRING,
	OP_PROCESS,
	OP_EXEC_CONSOLE,
	OP_AFFINITY,
	OP_READY,
	OP_FIFO,
	OP_FINALIZE,
};

// ---- errors -------------------------------------------------------------

int fail(struct stage *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int failerr(struct stage *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(s->msg))
		snprintf(s->msg + n, sizeof(s->msg) - (size_t)n, ": %s", strerror(err));
	return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

// json_str appends s to buf as a JSON string (quoted, escaped).
static size_t json_str(char *buf, size_t off, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (off < cap)
		buf[off] = '"';
	off++;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		char esc[7];
		size_t n = 0;
		switch (*p) {
		case '"': esc[0] = '\\'; esc[1] = '"'; n = 2; break;
		case '\\': esc[0] = '\\'; esc[1] = '\\'; n = 2; break;
		case '\n': esc[0] = '\\'; esc[1] = 'n'; n = 2; break;
		case '\t': esc[0] = '\\'; esc[1] = 't'; n = 2; break;
		default:
			if (*p < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				n = 6;
			} else {
				esc[0] = (char)*p;
				n = 1;
			}
		}
		for (size_t i = 0; i < n; i++, off++)
			if (off < cap)
				buf[off] = esc[i];
	}
	if (off < cap)
		buf[off] = '"';
	return off + 1;
}

// send_frame writes one syncmsg frame: 4-byte big-endian length, body.
static int send_frame(int fd, const char *body, size_t n)
{
	char hdr[4] = { (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n };
	if (write_all(fd, hdr, 4) < 0)
		return -1;
	return write_all(fd, body, n);
}

static int send_type(struct stage *s, const char *type)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"type\":\"%s\"}", type);
	return send_frame(s->syncfd, body, (size_t)n);
}

// die reports the failed step and exits: to the runtime as an error
// message before the exec fifo, into the fifo (where `start` reads it)
// after.
static void __attribute__((noreturn)) die(struct stage *s)
{
	static char buf[8192];
	const char *step = s->step != NULL ? s->step : "init";
	if (s->errfd >= 0) {
		int n = snprintf(buf, sizeof(buf), "%s: %s", step, s->msg);
		if (n > 0)
			write_all(s->errfd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	} else if (s->syncfd >= 0) {
		size_t off = 0, cap = sizeof(buf);
		off += (size_t)snprintf(buf, cap, "{\"type\":\"error\",\"step\":");
		off = json_str(buf, off, cap, step);
		if (off < cap)
			off += (size_t)snprintf(buf + off, cap - off, ",\"message\":");
		off = json_str(buf, off, cap, s->msg);
		int sent;
		if (off + 1 < cap) {
			buf[off++] = '}';
			sent = send_frame(s->syncfd, buf, off);
		} else {
			// Too long to escape here: the step alone still names it.
			int n = snprintf(buf, cap, "{\"type\":\"error\",\"step\":\"%s\",\"message\":\"(message too long)\"}", step);
			sent = send_frame(s->syncfd, buf, (size_t)n);
		}
		// Nobody listens on the socket (not started by the runtime, or it
		// is gone): stderr is the last place left to say it.
		if (sent < 0)
			fprintf(stderr, "berth-runtime init: %s: %s\n", step, s->msg);
	} else {
		fprintf(stderr, "berth-runtime init: %s: %s\n", step, s->msg);
	}
	_exit(1);
}

// ---- decoding ---------------------------------------------------------------

struct cursor {
	const unsigned char *p, *end;
	int bad;
};

static uint32_t rd_u32(struct cursor *c)
{
	if (c->end - c->p < 4) {
		c->bad = 1;
		return 0;
	}
	uint32_t v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
	c->p += 4;
	return v;
}

static uint64_t rd_u64(struct cursor *c)
{
	uint64_t lo = rd_u32(c);
	uint64_t hi = rd_u32(c);
	return lo | hi << 32;
}

// rd_bytes returns n bytes in place, 8-byte aligned by the encoder's padding.
static const void *rd_bytes(struct cursor *c, uint64_t n)
{
	// 64-bit: a length near 2^32 must not wrap to a small padded size.
	uint64_t padded = (n + 7u) & ~(uint64_t)7u;
	if ((uint64_t)(c->end - c->p) < padded) {
		c->bad = 1;
		return NULL;
	}
	const void *v = c->p;
	c->p += padded;
	return v;
}

// rd_str returns a string in place: its length, then its bytes and a NUL.
static const char *rd_str(struct cursor *c)
{
	uint32_t n = rd_u32(c);
	if (c->bad || n == UINT32_MAX)
		return (c->bad = 1, "");
	const char *v = rd_bytes(c, (uint64_t)n + 1);
	if (v == NULL || v[n] != '\0' || memchr(v, '\0', n) != NULL)
		return (c->bad = 1, "");
	return v;
}

static const char **rd_strs(struct cursor *c)
{
	uint32_t n = rd_u32(c);
	if (c->bad || n > (uint32_t)(c->end - c->p))
		return (c->bad = 1, NULL);
	const char **v = calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL)
		return (c->bad = 1, NULL);
	for (uint32_t i = 0; i < n; i++)
		v[i] = rd_str(c);
	return v;
}

static uint64_t *rd_u64s(struct cursor *c, uint32_t *n)
{
	*n = rd_u32(c);
	if (c->bad || *n > (uint32_t)(c->end - c->p) / 8)
		return (c->bad = 1, NULL);
	uint64_t *v = calloc((size_t)*n + 1, sizeof(*v));
	if (v == NULL)
		return (c->bad = 1, NULL);
	for (uint32_t i = 0; i < *n; i++)
		v[i] = rd_u64(c);
	return v;
}

static void rd_process(struct cursor *c, struct process *p)
{
	p->cwd = rd_str(c);
	p->argv = rd_strs(c);
	p->envp = rd_strs(c);
	p->need_home = rd_u32(c);
	p->uid = rd_u32(c);
	p->gid = rd_u32(c);
	uint32_t n;
	uint64_t *groups = rd_u64s(c, &n);
	p->ngroups = n;
	p->groups = calloc((size_t)n + 1, sizeof(uint32_t));
	if (groups == NULL || p->groups == NULL)
		c->bad = 1;
	for (uint32_t i = 0; groups != NULL && p->groups != NULL && i < n; i++)
		p->groups[i] = (uint32_t)groups[i];
	p->has_umask = rd_u32(c);
	p->umask = rd_u32(c);
	p->no_new_privs = rd_u32(c);
	p->has_caps = rd_u32(c);
	p->cap_bounding = rd_u64(c);
	p->cap_effective = rd_u64(c);
	p->cap_inheritable = rd_u64(c);
	p->cap_permitted = rd_u64(c);
	p->cap_ambient = rd_u64(c);
	p->nrlimits = rd_u32(c);
	if (!c->bad && p->nrlimits <= 64) {
		p->rlimits = calloc((size_t)p->nrlimits + 1, sizeof(*p->rlimits));
		if (p->rlimits == NULL)
			c->bad = 1;
		for (uint32_t i = 0; p->rlimits != NULL && i < p->nrlimits; i++) {
			p->rlimits[i].resource = rd_u32(c);
			p->rlimits[i].soft = rd_u64(c);
			p->rlimits[i].hard = rd_u64(c);
			p->rlimits[i].name = rd_str(c);
		}
	} else {
		c->bad = 1;
	}
	p->seccomp_len = rd_u32(c);
	p->seccomp_prog = rd_bytes(c, (uint64_t)p->seccomp_len * 8u);
	p->seccomp_flags = rd_u64(c);
	p->seccomp_notify = rd_u32(c);
	p->seccomp_state_len = rd_u32(c);
	p->seccomp_state = rd_bytes(c, p->seccomp_state_len);
	p->has_personality = rd_u32(c);
	p->personality = rd_u64(c);
	p->has_ioprio = rd_u32(c);
	p->ioprio = rd_u32(c);
	p->sched_attr_len = rd_u32(c);
	p->sched_attr = rd_bytes(c, p->sched_attr_len);
	p->has_mempolicy = rd_u32(c);
	p->mempolicy_mode = rd_u32(c);
	p->maxnode = rd_u64(c);
	p->nodemask = rd_u64s(c, &p->nodemask_len);
	p->affinity = rd_u64s(c, &p->affinity_len);
	p->preserve_fds = rd_u32(c);
	if (p->seccomp_len > 0xffff)
		c->bad = 1;
}

// ---- steps that are not the filesystem's or the process's -------------------

static int write_file(struct stage *s, const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return failerr(s, errno, "open %s", path);
	size_t n = strlen(value);
	ssize_t w = write(fd, value, n);
	int err = errno;
	close(fd);
	if (w < 0)
		return failerr(s, err, "write %s", path);
	if ((size_t)w != n)
		return fail(s, "write %s: short write", path);
	return 0;
}

// private_procfs makes a procfs of the container's pid namespace that is
// attached nowhere (fsopen/fsmount) and shows pid directories only: through
// it the init reopens its own descriptors and reaches nothing of the host,
// whatever the container's /proc turns out to be (CVE-2024-21626).
static int private_procfs(struct stage *s)
{
	int fs = (int)syscall(SYS_fsopen, "proc", 1 /* FSOPEN_CLOEXEC */);
	if (fs < 0)
		return failerr(s, errno, "fsopen");
	if (syscall(SYS_fsconfig, fs, 1 /* FSCONFIG_SET_STRING */, "subset", "pid", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) {
		int err = errno;
		close(fs);
		return failerr(s, err, "fsconfig");
	}
	int m = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */,
			     0x2 | 0x4 | 0x8 /* MOUNT_ATTR_NOSUID|NODEV|NOEXEC */);
	int err = errno;
	close(fs);
	if (m < 0)
		return failerr(s, err, "fsmount");
	s->procfd = m;
	return 0;
}

// fifo_wait reports ready and blocks until `start` opens the exec fifo for
// reading. From then on errors go into the fifo.
static int fifo_wait(struct stage *s)
{
	char name[32];
	snprintf(name, sizeof(name), "self/fd/%d", s->fifofd);
	// A trial open that cannot block: ENXIO (no reader yet) proves the
	// blocking open below can work, where no error can be reported any
	// more but through the fifo itself.
	int w = openat(s->procfd, name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (w >= 0)
		close(w);
	else if (errno != ENXIO)
		return failerr(s, errno, "open %s", name);
	if (send_type(s, "ready") < 0)
		_exit(1);
	close(s->syncfd);
	s->syncfd = -1;
	do
		w = openat(s->procfd, name, O_WRONLY | O_CLOEXEC);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		_exit(1);
	close(s->fifofd);
	close(s->procfd);
	s->fifofd = s->procfd = -1;
	if (write_all(w, "0", 1) < 0)
		_exit(1);
	s->errfd = w;
	return 0;
}

// hooks_sync lets the runtime run prestart and createRuntime hooks while
// the init waits, its mounts made and the root not yet switched.
static int hooks_sync(struct stage *s)
{
	static const char done[] = "{\"type\":\"hooks-done\"}";
	char hdr[4], body[sizeof(done)];
	if (send_type(s, "hooks") < 0)
		return failerr(s, errno, "ask for hooks");
	if (read_all(s->syncfd, hdr, 4) < 0)
		return failerr(s, errno, "wait for hooks");
	uint32_t n = (uint32_t)(unsigned char)hdr[0] << 24 | (uint32_t)(unsigned char)hdr[1] << 16 |
		     (uint32_t)(unsigned char)hdr[2] << 8 | (uint32_t)(unsigned char)hdr[3];
	if (n != sizeof(done) - 1 || read_all(s->syncfd, body, n) < 0 || memcmp(body, done, n) != 0)
		return fail(s, "protocol: expected the runtime's hooks-done message");
	return 0;
}

static int exec_console(struct stage *s, struct cursor *c)
{
	uint32_t has_size = rd_u32(c), rows = rd_u32(c), cols = rd_u32(c);
	if (c->bad)
		return fail(s, "malformed plan");
	if (s->consolefd < 0)
		return fail(s, "no console socket");
	// The container's /dev/ptmx, a name the container owns: resolved in
	// its root with no magic link (a /proc/self/fd/N would reach this
	// process's own descriptors), opened without waiting (a tty that
	// waits for carrier would hold the exec), and checked to be the pty
	// multiplexer before anything is asked of it; pty_open_fd checks that
	// the slave it leads to is a pty on devpts.
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return failerr(s, errno, "open pty multiplexer /dev/ptmx: open /");
	int mfd = res_openat2(root, "dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK, IN_ROOT);
	int err = errno;
	close(root);
	if (mfd < 0)
		return failerr(s, err, "open pty multiplexer /dev/ptmx: open /dev/ptmx");
	struct stat st;
	if (fstat(mfd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2)) {
		close(mfd);
		return fail(s, "open pty multiplexer /dev/ptmx: not the pty multiplexer (device 5:2)");
	}
	int fl = fcntl(mfd, F_GETFL);
	if (fl < 0 || fcntl(mfd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		err = errno;
		close(mfd);
		return failerr(s, err, "open pty multiplexer /dev/ptmx: fcntl");
	}
	int master, slave;
	if (pty_open_fd(s, mfd, "/dev/ptmx", &master, &slave) < 0)
		return -1;
	if (has_size && pty_set_size(s, master, (uint16_t)rows, (uint16_t)cols) < 0)
		return -1;
	if (pty_send(s, s->consolefd, "/dev/ptmx", master) < 0)
		return -1;
	close(master);
	close(s->consolefd);
	s->consolefd = -1;
	s->step = "set up terminal";
	return pty_setup_slave(s, slave);
}

static int set_affinity(struct stage *s, struct cursor *c)
{
	uint32_t n;
	uint64_t *mask = rd_u64s(c, &n);
	if (c->bad)
		return fail(s, "malformed plan");
	if (n > 0 && sched_setaffinity(0, n * 8, (cpu_set_t *)mask) < 0)
		return failerr(s, errno, "sched_setaffinity");
	return 0;
}

// ---- the interpreter ----------------------------------------------------------

static int run_op(struct stage *s, uint32_t op, struct cursor *c, struct process *proc)
{
	switch (op) {
	case OP_CGROUPNS:
		// The runtime has placed the init in its cgroup: the namespace's
		// root is the container's cgroup.
		if (unshare(CLONE_NEWCGROUP) < 0)
			return failerr(s, errno, "unshare");
		return 0;
	case OP_OOM: {
		const char *v = rd_str(c);
		return c->bad ? -2 : write_file(s, "/proc/self/oom_score_adj", v);
	}
	case OP_ROOT: {
		uint64_t prop = rd_u64(c);
		const char *rootfs = rd_str(c);
		return c->bad ? -2 : rfs_prepare_root(s, prop, rootfs);
	}
	case OP_MOUNT: {
		struct op_mount m = { 0 };
		m.source = rd_str(c);
		m.fstype = rd_str(c);
		m.data = rd_str(c);
		m.dest = rd_str(c);
		m.flags = rd_u64(c);
		m.resolve = rd_u32(c);
		m.mkdir_mode = rd_u32(c);
		m.magic = rd_u64(c);
		m.rec_set = rd_u64(c);
		m.rec_clr = rd_u64(c);
		m.prop = rd_u64s(c, &m.nprop);
		return c->bad ? -2 : rfs_mount(s, &m);
	}
	case OP_BIND: {
		struct op_bind b = { 0 };
		b.source = rd_str(c);
		b.dest = rd_str(c);
		b.resolve = rd_u32(c);
		b.recursive = rd_u32(c);
		b.attr_set = rd_u64(c);
		b.attr_clr = rd_u64(c);
		b.rec_set = rd_u64(c);
		b.rec_clr = rd_u64(c);
		b.idmap_fd = (int32_t)rd_u32(c);
		b.idmap_recursive = rd_u32(c);
		b.prop = rd_u64s(c, &b.nprop);
		if (c->bad)
			return -2;
		if (b.idmap_fd != -2)
			return rfs_bind(s, &b);
		// The mapping of the container's own user namespace.
		b.idmap_fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
		if (b.idmap_fd < 0)
			return failerr(s, errno, "open /proc/self/ns/user");
		int r = rfs_bind(s, &b);
		close(b.idmap_fd);
		return r;
	}
	case OP_REMOUNT: {
		struct op_remount r = { 0 };
		r.dest = rd_str(c);
		r.fstype = rd_str(c);
		r.data = rd_str(c);
		r.flags = rd_u64(c);
		r.resolve = rd_u32(c);
		return c->bad ? -2 : rfs_remount(s, &r);
	}
	case OP_DEVICE: {
		struct op_device d = { 0 };
		d.path = rd_str(c);
		d.type = rd_u32(c);
		d.mode = rd_u32(c);
		d.major = rd_u32(c);
		d.minor = rd_u32(c);
		d.uid = (int64_t)rd_u64(c);
		d.gid = (int64_t)rd_u64(c);
		d.bind = rd_u32(c);
		return c->bad ? -2 : rfs_device(s, &d);
	}
	case OP_SYMLINK: {
		struct op_symlink l = { 0 };
		l.target = rd_str(c);
		l.name = rd_str(c);
		l.replace = rd_u32(c);
		return c->bad ? -2 : rfs_symlink(s, &l);
	}
	case OP_CONSOLE: {
		struct op_console cn = { 0 };
		cn.has_size = rd_u32(c);
		cn.rows = (uint16_t)rd_u32(c);
		cn.cols = (uint16_t)rd_u32(c);
		if (c->bad)
			return -2;
		if (s->consolefd < 0)
			return fail(s, "no console socket");
		return rfs_console(s, &cn);
	}
	case OP_HOOKS_SYNC:
		return hooks_sync(s);
	case OP_HOOK: {
		struct hook h = { 0 };
		h.path = rd_str(c);
		h.argv = rd_strs(c);
		h.envp = rd_strs(c);
		h.timeout_ms = (int64_t)rd_u64(c);
		h.state = rd_str(c);
		h.name = rd_str(c);
		// Hooks after the process was prepared are startContainer's:
		// they run as the process (hooks.c).
		h.as = proc->argv != NULL ? proc : NULL;
		return c->bad ? -2 : run_hook(s, &h);
	}
	case OP_SYSCTL: {
		const char *key = rd_str(c), *value = rd_str(c);
		return c->bad ? -2 : rfs_sysctl(s, key, value);
	}
	case OP_MASK:
	case OP_READONLY:
	case OP_MKDIR: {
		const char *path = rd_str(c);
		if (c->bad)
			return -2;
		if (op == OP_MASK)
			return rfs_mask(s, path);
		return op == OP_READONLY ? rfs_readonly(s, path) : rfs_mkdir(s, path);
	}
	case OP_PIVOT:
		return rfs_pivot(s);
	case OP_MOVEROOT:
		return rfs_moveroot(s);
	case OP_FINISH_ROOT: {
		uint32_t ro = rd_u32(c);
		uint64_t prop = rd_u64(c);
		return c->bad ? -2 : rfs_finish_root(s, ro, prop);
	}
	case OP_HOSTNAME: {
		const char *n = rd_str(c);
		if (!c->bad && sethostname(n, strlen(n)) < 0)
			return failerr(s, errno, "sethostname");
		return c->bad ? -2 : 0;
	}
	case OP_DOMAINNAME: {
		const char *n = rd_str(c);
		if (!c->bad && setdomainname(n, strlen(n)) < 0)
			return failerr(s, errno, "setdomainname");
		return c->bad ? -2 : 0;
	}
	case OP_TTY:
		if (s->slave < 0)
			return fail(s, "no terminal was made");
		if (pty_setup_slave(s, s->slave) < 0)
			return -1;
		s->slave = -1;
		return 0;
	case OP_SETSID:
		if (setsid() < 0)
			return failerr(s, errno, "setsid");
		return 0;
	case OP_KEYRING: {
		// A session keyring of its own, so the container cannot read the
		// keys of the runtime's session. Kernels without keyrings, or a
		// seccomp profile that denies keyctl to the runtime, are fine.
		const char *name = rd_str(c);
		if (c->bad)
			return -2;
		if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name) < 0 &&
		    errno != ENOSYS && errno != EACCES && errno != EPERM)
			return failerr(s, errno, "keyctl");
		return 0;
	}
	case OP_PROCESS:
		rd_process(c, proc);
		return c->bad ? -2 : proc_prepare(s, proc);
	case OP_EXEC_CONSOLE:
		return exec_console(s, c);
	case OP_AFFINITY:
		return set_affinity(s, c);
	case OP_READY:
		if (send_type(s, "ready") < 0)
			_exit(1);
		return 0;
	case OP_FIFO:
		return fifo_wait(s);
	case OP_FINALIZE:
		return proc_finalize(s, proc);
	}
	return fail(s, "unknown operation %u in the plan", op);
}

static int env_fd(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		return -1;
	char *end;
	long fd = strtol(v, &end, 10);
	unsetenv(name);
	if (*end != '\0' || fd < 3 || fd > 1 << 20)
		return -1;
	// Nothing the runtime passes may survive into the user's program.
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

static void stage_main(const char *kind)
{
	static struct stage st;
	static struct process proc;
	struct stage *s = &st;
	memset(s, 0, sizeof(*s));
	s->step = "init";
	s->syncfd = s->errfd = s->rootfd = s->procfd = s->fifofd = -1;
	s->consolefd = s->seccompfd = s->slave = s->nullfd = -1;

	// No core dumps and no /proc/self access for anything in the
	// container while this process still is the runtime (CVE-2016-9962);
	// execve resets it for the user's program.
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	s->syncfd = env_fd("_BERTH_SYNCFD");
	if (s->syncfd < 0) {
		fprintf(stderr, "berth-runtime %s: not started by the runtime\n", kind);
		_exit(1);
	}
	const char *v = getenv("_BERTH_SYNC_VERSION");
	if (v == NULL || strcmp(v, SYNC_VERSION) != 0) {
		fail(s, "sync protocol version %s of the caller, this runtime binary speaks %s: use berth-runtime and the program that drives it (berth-shim) from one build",
		     v != NULL ? v : "none", SYNC_VERSION);
		die(s);
	}
	unsetenv("_BERTH_SYNC_VERSION");
	s->fifofd = env_fd("_BERTH_FIFOFD");
	s->consolefd = env_fd("_BERTH_CONSOLEFD");
	s->seccompfd = env_fd("_BERTH_SECCOMPFD");

	char hdr[4];
	if (read_all(s->syncfd, hdr, 4) < 0) {
		// The runtime is gone: nothing to set up, nobody to tell.
		_exit(1);
	}
	uint32_t n = (uint32_t)(unsigned char)hdr[0] << 24 | (uint32_t)(unsigned char)hdr[1] << 16 |
		     (uint32_t)(unsigned char)hdr[2] << 8 | (uint32_t)(unsigned char)hdr[3];
	s->step = "receive plan";
	if (n > MAX_FRAME) {
		fail(s, "plan of %u bytes exceeds %u", n, MAX_FRAME);
		die(s);
	}
	// 8-byte aligned, for the seccomp program and masks read in place.
	unsigned char *buf = aligned_alloc(8, ((size_t)n + 7) & ~(size_t)7);
	if (buf == NULL || read_all(s->syncfd, (char *)buf, n) < 0) {
		failerr(s, errno, "read");
		die(s);
	}
	struct cursor c = { buf, buf + n, 0 };
	if (rd_u32(&c) != PLAN_MAGIC || rd_u32(&c) != PLAN_VERSION || c.bad) {
		fail(s, "not a plan of this runtime binary's version");
		die(s);
	}
	if (strcmp(kind, "init") == 0) {
		s->step = "private procfs";
		if (s->fifofd < 0) {
			s->step = "exec fifo";
			fail(s, "not passed");
			die(s);
		}
		if (private_procfs(s) < 0)
			die(s);
	}
	while (c.p < c.end) {
		uint32_t op = rd_u32(&c);
		s->step = rd_str(&c);
		const char *what = rd_str(&c);
		if (c.bad) {
			s->step = "receive plan";
			fail(s, "malformed plan");
			die(s);
		}
		s->msg[0] = '\0';
		int r = run_op(s, op, &c, &proc);
		if (r == -2 || c.bad) {
			fail(s, "malformed plan (operation %u)", op);
			die(s);
		}
		if (r < 0) {
			if (*what != '\0') {
				static char m[sizeof(s->msg)];
				snprintf(m, sizeof(m), "%s: %s", what, s->msg);
				memcpy(s->msg, m, sizeof(m));
			}
			die(s);
		}
	}
	s->step = "init";
	fail(s, "the plan ended before the program was executed");
	die(s);
}

// berth_stage runs from the binary's constructor, after nsenter's joins:
// the processes the runtime starts as "init" or "exec-child" never reach
// the Go runtime.
void berth_stage(int argc, char **argv)
{
	if (argc < 2 || argv == NULL || argv[1] == NULL)
		return;
	if (strcmp(argv[1], "init") == 0 || strcmp(argv[1], "exec-child") == 0)
		stage_main(argv[1]);
}

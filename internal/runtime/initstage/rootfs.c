// The container's filesystem, built by the C stage before the Go runtime
// starts: the spec's mounts, /dev, masked and read-only paths, sysctls,
// the console, and the switch to the new root. It is the C form of
// internal/linux/rootfs (and of sysctl.Write and initproc's openConsole),
// with the same invariants against a hostile image (SECURITY.md):
//
//   - Every path inside the rootfs is resolved with openat2(2) from
//     s->rootfd, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, or with
//     RESOLVE_NO_SYMLINKS where no link may be on the way (proc, sysfs,
//     masked and read-only paths, the targets PrepareTarget creates), so
//     a symlink in the image can never lead a mount, a mkdir or a mknod out
//     of the rootfs (CVE-2021-30465, CVE-2024-45310).
//   - Mounts land on the descriptor that was resolved, through
//     /proc/self/fd/N for mount(2) or directly for move_mount(2), never on a
//     path looked up again, so a path swapped between resolution and mount
//     cannot redirect them.
//   - What a proc, sysfs, devpts or sysctl path turned out to be is checked
//     with fstatfs(2) before it is trusted (CVE-2019-19921, CVE-2019-16884,
//     CVE-2023-27561, CVE-2025-52881).
//   - Masked files are covered with the host's /dev/null, opened before the
//     switch of root and checked to be the character device 1:3
//     (CVE-2025-31133); /dev/console is the pty slave bound by descriptor
//     (CVE-2025-52565).
//   - Every descriptor is O_CLOEXEC and closed on every path: the process
//     ends in the execve of the user's program (CVE-2024-21626).
//
// Everything but rfs_pivot, rfs_moveroot and rfs_finish_root runs before
// the switch of root, while the host's /proc is still there for the
// /proc/self/fd/N names.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stage.h"

// The new mount API and openat2(2) have no wrappers in every libc the
// stage is built with (glibc 2.36 lacks openat2, musl lacks them all), so
// they are called through syscall(2) with the kernel's ABI spelled out
// here. The structs carry names of our own so that no libc header that
// does define them can clash.
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_BENEATH 0x08
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef SYSFS_MAGIC
#define SYSFS_MAGIC 0x62656572
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif

struct rfs_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

struct rfs_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

// How paths inside the rootfs are resolved. (Not to be confused with
// stage.h's RESOLVE_NOSYMLINKS, the plan's name for when to use the second.)
#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define NO_SYMLINKS (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

// The kernel's limit on nested symlinks in one lookup.
#define MAX_SYMLINKS 40

// ---- system calls -------------------------------------------------------

// sys_openat2 retries EINTR and EAGAIN: the kernel returns EAGAIN when a
// rename raced a RESOLVE_IN_ROOT lookup, and a retry is the documented
// answer. Bounded so that a rename storm cannot hold the stage forever.
static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct rfs_open_how how = { .flags = flags | O_CLOEXEC, .resolve = resolve };
	for (int i = 0;; i++) {
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if ((errno != EINTR && errno != EAGAIN) || i >= 128)
			return -1;
	}
}

static int sys_open_tree(int dirfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

// sys_move_mount attaches the detached tree from onto the object to; both
// are descriptors, so nothing is looked up by name.
static int sys_move_mount(int from, int to)
{
	return (int)syscall(SYS_move_mount, from, "", to, "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int sys_mount_setattr(int dirfd, const char *path, unsigned int flags,
			     uint64_t set, uint64_t clr, int userns)
{
	struct rfs_mount_attr attr = {
		.attr_set = set, .attr_clr = clr,
		.userns_fd = userns >= 0 ? (uint64_t)userns : 0,
	};
	return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

// fd_path names an open descriptor for mount(2), which takes only paths:
// the kernel follows /proc/self/fd/N to exactly the object the descriptor
// refers to, whatever has happened to its name since.
struct fd_path { char s[32]; };

static struct fd_path fd_path(int fd)
{
	struct fd_path p;
	snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d", fd);
	return p;
}

// mount_fd calls mount(2) on the object fd refers to, retrying EINTR. An
// empty data string is passed as NULL, as filesystems with no options
// expect.
static int mount_fd(const char *source, int fd, const char *fstype, uint64_t flags, const char *data)
{
	struct fd_path p = fd_path(fd);
	if (data != NULL && *data == '\0')
		data = NULL;
	for (;;) {
		if (mount(source, p.s, fstype, (unsigned long)flags, data) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

// wrap puts a prefix before the message a callee has set, for errors that
// name the item being worked on ("mask /proc/kcore: ...").
__attribute__((format(printf, 2, 3)))
static int wrap(struct stage *s, const char *fmt, ...)
{
	char head[512], msg[sizeof(s->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	// Truncation is acceptable: the message's start says most.
	if (snprintf(msg, sizeof(msg), "%s: %s", head, s->msg) >= 0)
		memcpy(s->msg, msg, sizeof(s->msg));
	return -1;
}

static const char *str(const char *p)
{
	return p != NULL ? p : "";
}

// ---- names --------------------------------------------------------------

// clean_rel writes path as a name relative to the root descriptor:
// lexically cleaned as Go's filepath.Clean("/" + path) would, without the
// leading slash, "." for the root itself. A ".." can therefore never climb
// above the root by name; what symlinks do is the kernel's business under
// RESOLVE_IN_ROOT.
static int clean_rel(const char *path, char *out, size_t size)
{
	size_t n = 0;
	const char *p = path;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
		} else if (!(len == 1 && p[0] == '.')) {
			if (n + (n > 0) + len + 2 > size) {
				errno = ENAMETOOLONG;
				return -1;
			}
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return 0;
}

static int rel(struct stage *s, const char *path, char out[PATH_MAX])
{
	if (path == NULL || clean_rel(path, out, PATH_MAX) < 0)
		return failerr(s, path == NULL ? EINVAL : ENAMETOOLONG, "path %.256s", str(path));
	return 0;
}

// shown turns a relative name back into the container's absolute path for
// messages. It keeps errno: it is evaluated in the same argument list as
// failerr's errno, in an order C leaves open.
static const char *shown(const char *relpath)
{
	static char buf[PATH_MAX + 1];
	int err = errno;
	if (strcmp(relpath, ".") == 0)
		return "/";
	snprintf(buf, sizeof(buf), "/%s", relpath);
	errno = err;
	return buf;
}

// split cuts a relative name into its parent (written to dir) and returns
// its last component.
static const char *split(const char *relpath, char dir[PATH_MAX])
{
	const char *slash = strrchr(relpath, '/');
	if (slash == NULL) {
		strcpy(dir, ".");
		return relpath;
	}
	size_t n = (size_t)(slash - relpath);
	memcpy(dir, relpath, n);
	dir[n] = '\0';
	return slash + 1;
}

// ---- resolution ---------------------------------------------------------

// open_in opens relpath beneath the rootfs with the given resolution.
static int open_in(struct stage *s, const char *relpath, uint64_t flags, uint64_t resolve)
{
	int fd = sys_openat2(s->rootfd, relpath, flags, resolve);
	if (fd < 0)
		return failerr(s, errno, "openat2 %s", shown(relpath));
	return fd;
}

// mkdir_all resolves relpath beneath the rootfs, creating missing
// directories with mode, and returns an O_PATH descriptor of the last one.
//
// Each missing component is made with mkdirat(2) beneath the descriptor of
// its resolved parent, then the whole prefix is resolved again from the
// root: a component swapped for a symlink between the two calls is still
// confined to the root (IN_ROOT) or refused (NO_SYMLINKS), never followed
// out of it.
static int mkdir_all(struct stage *s, const char *relpath, uint32_t mode, uint64_t resolve)
{
	int fd = sys_openat2(s->rootfd, relpath, O_PATH | O_DIRECTORY, resolve);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return failerr(s, errno, "openat2 %s", shown(relpath));
	if (strcmp(relpath, ".") == 0)
		return failerr(s, ENOENT, "open rootfs");

	char prefix[PATH_MAX];
	int parent = -1;
	size_t start = 0;
	for (;;) {
		size_t len = strcspn(relpath + start, "/");
		size_t end = start + len;
		memcpy(prefix, relpath, end);
		prefix[end] = '\0';
		fd = sys_openat2(s->rootfd, prefix, O_PATH | O_DIRECTORY, resolve);
		if (fd < 0 && errno == ENOENT) {
			// prefix + start is the component alone: clean_rel left no
			// "..", "." or empty ones.
			if (mkdirat(parent >= 0 ? parent : s->rootfd, prefix + start, mode & 07777) < 0 &&
			    errno != EEXIST) {
				failerr(s, errno, "mkdir %s", shown(prefix));
				close_fd(&parent);
				return -1;
			}
			// Ours or a racing creator's: resolve it from the root again.
			fd = sys_openat2(s->rootfd, prefix, O_PATH | O_DIRECTORY, resolve);
		}
		if (fd < 0) {
			failerr(s, errno, "openat2 %s", shown(prefix));
			close_fd(&parent);
			return -1;
		}
		close_fd(&parent);
		parent = fd;
		if (relpath[end] == '\0')
			return parent;
		start = end + 1;
	}
}

// expand rewrites relpath with every symlink on the way replaced by its
// target, confined to the root as RESOLVE_IN_ROOT would, and writes the
// result to out (relative, cleaned). Components that do not exist are kept
// as written. The result is only a name: callers create and open it with
// NO_SYMLINKS, so a symlink planted after expand makes them fail rather
// than escape.
//
// It exists for mount targets whose last component is a dangling symlink
// in the image, such as Debian's /etc/resolv.conf: the target must be
// created where the symlink points, inside the rootfs.
static int expand(struct stage *s, const char *relpath, char out[PATH_MAX])
{
	char rest[PATH_MAX], res[PATH_MAX], tmp[PATH_MAX], link[PATH_MAX];
	size_t pos = 0, rlen = 0;
	int links = 0;
	snprintf(rest, sizeof(rest), "%s", relpath);
	res[0] = '\0';
	for (;;) {
		while (rest[pos] == '/')
			pos++;
		if (rest[pos] == '\0')
			break;
		const char *c = rest + pos;
		size_t clen = strcspn(c, "/");
		size_t next = pos + clen;
		if (clen == 1 && c[0] == '.') {
			pos = next;
			continue;
		}
		if (clen == 2 && c[0] == '.' && c[1] == '.') {
			while (rlen > 0 && res[rlen - 1] != '/')
				rlen--;
			if (rlen > 0)
				rlen--;
			res[rlen] = '\0';
			pos = next;
			continue;
		}
		size_t prev = rlen;
		if (rlen + 1 + clen + 1 > sizeof(res))
			return failerr(s, ENAMETOOLONG, "resolve %s", shown(relpath));
		if (rlen > 0)
			res[rlen++] = '/';
		memcpy(res + rlen, c, clen);
		rlen += clen;
		res[rlen] = '\0';

		struct stat st;
		if (fstatat(s->rootfd, res, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && errno != ENOTDIR)
				return failerr(s, errno, "lstat /%s", res);
			// The rest does not exist yet: keep it as written.
			if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", res, rest + next) >= sizeof(tmp) ||
			    clean_rel(tmp, out, PATH_MAX) < 0)
				return failerr(s, ENAMETOOLONG, "resolve %s", shown(relpath));
			return 0;
		}
		if (!S_ISLNK(st.st_mode)) {
			pos = next;
			continue;
		}
		if (++links > MAX_SYMLINKS)
			return failerr(s, ELOOP, "resolve %s", shown(relpath));
		ssize_t n = readlinkat(s->rootfd, res, link, sizeof(link));
		if (n < 0)
			return failerr(s, errno, "readlink /%s", res);
		if ((size_t)n >= sizeof(link))
			return failerr(s, ENAMETOOLONG, "readlink /%s", res);
		link[n] = '\0';
		// The link replaces its own component; an absolute target
		// starts again from the root, never from the host's /.
		rlen = link[0] == '/' ? 0 : prev;
		res[rlen] = '\0';
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", link, rest + next) >= sizeof(tmp))
			return failerr(s, ENAMETOOLONG, "resolve %s", shown(relpath));
		memcpy(rest, tmp, sizeof(rest));
		pos = 0;
	}
	if (rlen == 0)
		strcpy(out, ".");
	else
		memcpy(out, res, rlen + 1);
	return 0;
}

// create_file makes an empty file at relpath, which must be reached with
// no symlink, creating its parents with mode, and returns an O_PATH
// descriptor of what is there: a file the image left is used as is.
static int create_file(struct stage *s, const char *relpath, uint32_t mode)
{
	int fd = sys_openat2(s->rootfd, relpath, O_PATH, NO_SYMLINKS);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return failerr(s, errno, "openat2 %s", shown(relpath));
	char dir[PATH_MAX];
	const char *name = split(relpath, dir);
	int parent = mkdir_all(s, dir, mode, NO_SYMLINKS);
	if (parent < 0)
		return -1;
	// O_EXCL|O_NOFOLLOW: whatever appeared meanwhile is neither opened
	// (a fifo would block, a device would be opened) nor followed.
	fd = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
	int err = errno;
	close(parent);
	if (fd < 0 && err != EEXIST)
		return failerr(s, err, "create %s", shown(relpath));
	if (fd >= 0)
		close(fd);
	return open_in(s, relpath, O_PATH, NO_SYMLINKS);
}

// prepare_target creates a mount target, a directory or an empty file,
// following the image's symlinks only within the root, and returns an
// O_PATH descriptor of it that refers to no symlink (rootfs.PrepareTarget).
static int prepare_target(struct stage *s, const char *path, int dir, uint32_t mode)
{
	char r[PATH_MAX], p[PATH_MAX];
	if (rel(s, path, r) < 0 || expand(s, r, p) < 0)
		return -1;
	if (dir)
		return mkdir_all(s, p, mode, NO_SYMLINKS);
	return create_file(s, p, mode);
}

// target resolves a mount destination as the plan's mode says.
static int target(struct stage *s, const char *dest, uint32_t how, int dir, uint32_t mode)
{
	char r[PATH_MAX];
	// A zero mode is a plan that did not say; 0755 is what Go's
	// PrepareTarget always used.
	if ((mode & 07777) == 0)
		mode = 0755;
	switch (how) {
	case RESOLVE_EXPAND:
		return prepare_target(s, dest, dir, mode);
	case RESOLVE_NOSYMLINKS:
		if (rel(s, dest, r) < 0)
			return -1;
		return dir ? mkdir_all(s, r, mode, NO_SYMLINKS) : create_file(s, r, mode);
	case RESOLVE_EXISTING:
		if (rel(s, dest, r) < 0)
			return -1;
		return open_in(s, r, O_PATH, IN_ROOT);
	}
	return fail(s, "unknown resolve mode %u", how);
}

static const char *fs_name(uint64_t magic)
{
	switch (magic) {
	case PROC_SUPER_MAGIC:
		return "procfs";
	case SYSFS_MAGIC:
		return "sysfs";
	case DEVPTS_SUPER_MAGIC:
		return "devpts";
	}
	return "the expected filesystem";
}

// check_fs verifies that fd is on a filesystem of type magic; name is what
// the error calls it.
static int check_fs(struct stage *s, int fd, uint64_t magic, const char *name)
{
	struct statfs st;
	if (fstatfs(fd, &st) < 0)
		return failerr(s, errno, "fstatfs %s", name);
	if ((uint64_t)st.f_type != magic)
		return fail(s, "%s is not on %s (filesystem type 0x%llx)", name, fs_name(magic),
			    (unsigned long long)st.f_type);
	return 0;
}

static int propagate(struct stage *s, int fd, uint32_t n, const uint64_t *prop)
{
	for (uint32_t i = 0; i < n; i++)
		if (mount_fd("", fd, NULL, prop[i], NULL) < 0)
			return failerr(s, errno, "set propagation: mount");
	return 0;
}

// ---- the root -----------------------------------------------------------

// rfs_prepare_root makes the whole mount tree non-shared (MS_SLAVE|MS_REC
// unless the spec says otherwise, so nothing the container mounts reaches
// the host) and binds rootfs onto itself so that it is a mount point, as
// pivot_root(2) requires.
int rfs_prepare_root(struct stage *s, uint64_t propagation, const char *rootfs)
{
	if (propagation == 0)
		propagation = MS_SLAVE | MS_REC;
	if (mount("", "/", NULL, (unsigned long)propagation, NULL) < 0)
		return failerr(s, errno, "set propagation of /: mount");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return failerr(s, errno, "bind rootfs %s onto itself: mount", rootfs);
	int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return failerr(s, errno, "open rootfs: open %s", rootfs);
	if (s->rootfd >= 0)
		close(s->rootfd);
	s->rootfd = fd;
	return 0;
}

// rfs_pivot makes the rootfs the process's / and detaches the old root.
//
// pivot_root(".", ".") stacks the old root on top of the new one at the
// same place; once it is a slave (so the detach does not propagate to the
// host) it is unmounted lazily, leaving the new root visible. No directory
// inside the rootfs is needed to hold the old root.
int rfs_pivot(struct stage *s)
{
	int ret = -1, newroot = -1;
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		return failerr(s, errno, "open old root: open /");
	struct fd_path p = fd_path(s->rootfd);
	newroot = open(p.s, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0) {
		failerr(s, errno, "open new root: open %s", p.s);
		goto out;
	}
	if (fchdir(newroot) < 0) {
		failerr(s, errno, "chdir to new root: fchdir");
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		failerr(s, errno, "pivot_root: pivot_root");
		goto out;
	}
	if (fchdir(oldroot) < 0) {
		failerr(s, errno, "chdir to old root: fchdir");
		goto out;
	}
	if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		failerr(s, errno, "make old root a slave: mount");
		goto out;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		failerr(s, errno, "detach old root: umount2");
		goto out;
	}
	if (chdir("/") < 0) {
		failerr(s, errno, "chdir to /: chdir");
		goto out;
	}
	ret = 0;
out:
	close_fd(&newroot);
	close_fd(&oldroot);
	return ret;
}

// rfs_moveroot is the --no-pivot variant for roots where pivot_root is
// impossible (an initramfs): the rootfs is moved over / and chrooted into.
// It leaves the old root reachable to a process that can escape a chroot,
// so the runtime asks for it only when the user did.
int rfs_moveroot(struct stage *s)
{
	if (fchdir(s->rootfd) < 0)
		return failerr(s, errno, "chdir to new root: fchdir");
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return failerr(s, errno, "move rootfs to /: mount");
	if (chroot(".") < 0)
		return failerr(s, errno, "chroot: chroot");
	if (chdir("/") < 0)
		return failerr(s, errno, "chdir");
	return 0;
}

// rfs_finish_root applies, after the switch, the root's read-only flag
// (mount_setattr keeps every other flag, including those a user namespace
// locks) and the spec's rootfsPropagation.
int rfs_finish_root(struct stage *s, uint32_t readonly, uint64_t propagation)
{
	if (readonly && sys_mount_setattr(AT_FDCWD, "/", 0, MOUNT_ATTR_RDONLY, 0, -1) < 0)
		return failerr(s, errno, "make / read-only: mount_setattr");
	if (propagation != 0 && mount("", "/", NULL, (unsigned long)propagation, NULL) < 0)
		return failerr(s, errno, "set propagation of /: mount");
	return 0;
}

// ---- mounts -------------------------------------------------------------

// finish re-opens a new mount and applies what mount(2) could not take in
// one call: the filesystem check, recursive attributes, propagation. The
// descriptor mount(2) was given refers to the directory beneath the new
// mount, so the destination is resolved again; with no symlink first, in
// the root when the destination was reached through the image's links.
static int finish(struct stage *s, const struct op_mount *m)
{
	if (m->rec_set == 0 && m->rec_clr == 0 && m->nprop == 0 && m->magic == 0)
		return 0;
	char r[PATH_MAX];
	if (rel(s, m->dest, r) < 0)
		return -1;
	int top = sys_openat2(s->rootfd, r, O_PATH | O_DIRECTORY, NO_SYMLINKS);
	if (top < 0 && (top = open_in(s, r, O_PATH, IN_ROOT)) < 0)
		return -1;
	int ret = -1;
	if (m->magic != 0 && check_fs(s, top, m->magic, m->dest) < 0)
		goto out;
	if ((m->rec_set != 0 || m->rec_clr != 0) &&
	    sys_mount_setattr(top, "", AT_EMPTY_PATH | AT_RECURSIVE, m->rec_set, m->rec_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if (propagate(s, top, m->nprop, m->prop) < 0)
		goto out;
	ret = 0;
out:
	close(top);
	return ret;
}

// rfs_mount mounts a filesystem (tmpfs, proc, sysfs, devpts, mqueue, a
// step of the cgroup mount) on its resolved destination. proc and sysfs
// come with RESOLVE_NOSYMLINKS and their magic: a /proc that leads
// elsewhere would put the real procfs where masks don't apply.
int rfs_mount(struct stage *s, const struct op_mount *m)
{
	int fd = target(s, m->dest, m->resolve, 1, m->mkdir_mode);
	if (fd < 0)
		return -1;
	int ret = mount_fd(m->source, fd, m->fstype, m->flags, m->data);
	if (ret < 0)
		failerr(s, errno, "mount");
	close(fd);
	if (ret < 0)
		return -1;
	return finish(s, m);
}

// rfs_bind clones the source tree with open_tree(2), sets its attributes
// while it is still detached (no one can see it with the wrong ones), and
// attaches it to the resolved target with move_mount(2): nothing is looked
// up by path inside the rootfs after the target was resolved.
int rfs_bind(struct stage *s, const struct op_bind *b)
{
	if (b->source == NULL || b->source[0] != '/')
		return fail(s, "bind source %s is not an absolute path", str(b->source));
	unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
	if (b->recursive)
		flags |= AT_RECURSIVE;
	int tree = sys_open_tree(AT_FDCWD, b->source, flags);
	if (tree < 0)
		return failerr(s, errno, "open_tree %s", b->source);
	int ret = -1, dst = -1;
	struct stat st;
	if (fstat(tree, &st) < 0) {
		failerr(s, errno, "fstat %s", b->source);
		goto out;
	}
	dst = target(s, b->dest, b->resolve, S_ISDIR(st.st_mode), 0755);
	if (dst < 0)
		goto out;
	if ((b->attr_set != 0 || b->attr_clr != 0) &&
	    sys_mount_setattr(tree, "", AT_EMPTY_PATH, b->attr_set, b->attr_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if ((b->rec_set != 0 || b->rec_clr != 0) &&
	    sys_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, b->rec_set, b->rec_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if (b->idmap_fd >= 0) {
		unsigned int f = AT_EMPTY_PATH;
		if (b->idmap_recursive || b->recursive)
			f |= AT_RECURSIVE;
		if (sys_mount_setattr(tree, "", f, MOUNT_ATTR_IDMAP, 0, b->idmap_fd) < 0) {
			failerr(s, errno, "idmap: mount_setattr");
			goto out;
		}
	}
	if (sys_move_mount(tree, dst) < 0) {
		failerr(s, errno, "move_mount");
		goto out;
	}
	// After move_mount the tree's descriptor refers to the root of the
	// attached mount: propagation is set on it, not on a name resolved
	// again.
	if (propagate(s, tree, b->nprop, b->prop) < 0)
		goto out;
	ret = 0;
out:
	close_fd(&dst);
	close_fd(&tree);
	return ret;
}

// rfs_remount changes the flags of a mount that already exists in the
// rootfs.
int rfs_remount(struct stage *s, const struct op_remount *r)
{
	char p[PATH_MAX];
	uint64_t resolve;
	switch (r->resolve) {
	case RESOLVE_EXISTING:
		resolve = IN_ROOT;
		break;
	case RESOLVE_NOSYMLINKS:
		resolve = NO_SYMLINKS;
		break;
	default:
		return fail(s, "unknown resolve mode %u for a remount", r->resolve);
	}
	if (rel(s, r->dest, p) < 0)
		return -1;
	int fd = open_in(s, p, O_PATH, resolve);
	if (fd < 0)
		return -1;
	int ret = mount_fd("", fd, r->fstype, r->flags, r->data);
	if (ret < 0)
		failerr(s, errno, "mount");
	close(fd);
	return ret;
}

// ---- /dev ---------------------------------------------------------------

// bind_device covers name in parent with the host's node of the same type
// and numbers, for user namespaces where mknod(2) is refused.
static int bind_device(struct stage *s, const struct op_device *d, int parent, const char *name)
{
	int ret = -1, dst = -1, tree = -1;
	int host = open(d->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (host < 0)
		return failerr(s, errno, "host node for bind mount: open %s", d->path);
	struct stat st;
	if (fstat(host, &st) < 0) {
		failerr(s, errno, "fstat %s", d->path);
		goto out;
	}
	if ((st.st_mode & S_IFMT) != d->type || st.st_rdev != makedev(d->major, d->minor)) {
		fail(s, "host node %s is not the device asked for", d->path);
		goto out;
	}
	// O_EXCL: a node or fifo the image left there is not opened (a fifo
	// would block the stage); it is covered like an empty file.
	int fd = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 && errno != EEXIST) {
		failerr(s, errno, "create %s", name);
		goto out;
	}
	if (fd >= 0)
		close(fd);
	// name is one component beneath a descriptor resolved with no
	// symlinks; O_NOFOLLOW keeps a link there from being followed.
	dst = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (dst < 0) {
		failerr(s, errno, "open %s", name);
		goto out;
	}
	if (fstat(dst, &st) < 0) {
		failerr(s, errno, "fstat %s", name);
		goto out;
	}
	if (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)) {
		fail(s, "%s is not a file to cover", name);
		goto out;
	}
	tree = sys_open_tree(host, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0) {
		failerr(s, errno, "open_tree");
		goto out;
	}
	if (sys_move_mount(tree, dst) < 0) {
		failerr(s, errno, "move_mount");
		goto out;
	}
	ret = 0;
out:
	close_fd(&tree);
	close_fd(&dst);
	close_fd(&host);
	return ret;
}

static int make_device(struct stage *s, const struct op_device *d)
{
	char r[PATH_MAX], p[PATH_MAX], dir[PATH_MAX];
	if (d->type != S_IFCHR && d->type != S_IFBLK && d->type != S_IFIFO)
		return fail(s, "unknown device type 0%o", d->type);
	if (rel(s, d->path, r) < 0 || expand(s, r, p) < 0)
		return -1;
	if (strcmp(p, ".") == 0)
		return fail(s, "the path names the root");
	const char *name = split(p, dir);
	int parent = mkdir_all(s, dir, 0755, NO_SYMLINKS);
	if (parent < 0)
		return -1;
	int ret = -1;
	uint32_t mode = d->mode & 07777;
	if (d->bind && d->type != S_IFIFO) {
		ret = bind_device(s, d, parent, name);
		goto out;
	}
	// A node the image left is replaced: its type or numbers may differ.
	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT) {
		failerr(s, errno, "unlink %s", shown(p));
		goto out;
	}
	if (mknodat(parent, name, d->type | mode, makedev(d->major, d->minor)) < 0) {
		failerr(s, errno, "mknod %s", shown(p));
		goto out;
	}
	if (fchownat(parent, name, (uid_t)d->uid, (gid_t)d->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		failerr(s, errno, "chown %s", shown(p));
		goto out;
	}
	// mknod applies the umask; set the mode exactly.
	if (fchmodat(parent, name, mode, 0) < 0) {
		failerr(s, errno, "chmod %s", shown(p));
		goto out;
	}
	ret = 0;
out:
	close(parent);
	return ret;
}

// rfs_device makes one device node beneath the rootfs. The node's path
// follows the image's symlinks within the root; its parent is then opened
// with no symlink, and the node is made beneath that descriptor.
int rfs_device(struct stage *s, const struct op_device *d)
{
	if (make_device(s, d) < 0)
		return wrap(s, "create device %s", str(d->path));
	return 0;
}

// rfs_symlink makes a link in the rootfs's /dev (/dev/fd, /dev/stdin,
// /dev/ptmx -> pts/ptmx). /dev is found as the devices' parents are: the
// image's symlinks followed inside the rootfs, then opened with none.
int rfs_symlink(struct stage *s, const struct op_symlink *l)
{
	// A name with a slash or a dot-dot would leave the /dev descriptor;
	// ".." at the root of the rootfs mount crosses into the host's tree.
	if (l->name == NULL || l->target == NULL || l->name[0] == '\0' || strchr(l->name, '/') != NULL ||
	    strcmp(l->name, ".") == 0 || strcmp(l->name, "..") == 0)
		return fail(s, "invalid /dev link name %s", str(l->name));
	int dev = prepare_target(s, "/dev", 1, 0755);
	if (dev < 0)
		return -1;
	int ret = -1;
	// The image or a device may have left something there; the link must
	// win where the plan says so.
	if (l->replace && unlinkat(dev, l->name, 0) < 0 && errno != ENOENT) {
		failerr(s, errno, "unlink /dev/%s", l->name);
		goto out;
	}
	if (symlinkat(l->target, dev, l->name) < 0 && errno != EEXIST) {
		failerr(s, errno, "symlink /dev/%s", l->name);
		goto out;
	}
	ret = 0;
out:
	close(dev);
	return ret;
}

// ---- masked and read-only paths -----------------------------------------

// null_fd opens the host's /dev/null once, before anything of the
// container's can stand in its place, and checks it is the character
// device 1:3.
static int null_fd(struct stage *s)
{
	if (s->nullfd >= 0)
		return s->nullfd;
	int fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return failerr(s, errno, "open /dev/null");
	struct stat st;
	if (fstat(fd, &st) < 0) {
		failerr(s, errno, "fstat /dev/null");
		close(fd);
		return -1;
	}
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
		close(fd);
		return fail(s, "/dev/null is not the null device");
	}
	s->nullfd = fd;
	return fd;
}

// open_existing opens path beneath the root with no symlink on the way;
// it returns -2, with nothing set, when there is nothing there.
static int open_existing(struct stage *s, const char *path)
{
	char r[PATH_MAX];
	if (rel(s, path, r) < 0)
		return -1;
	int fd = sys_openat2(s->rootfd, r, O_PATH, NO_SYMLINKS);
	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0)
		return failerr(s, errno, "openat2 %s", shown(r));
	return fd;
}

static int mask(struct stage *s, const char *path)
{
	int fd = open_existing(s, path);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	int ret = -1, tree = -1, null;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		failerr(s, errno, "fstat");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "size=0,mode=0555") < 0) {
			failerr(s, errno, "mount");
			goto out;
		}
		ret = 0;
		goto out;
	}
	if ((null = null_fd(s)) < 0)
		goto out;
	tree = sys_open_tree(null, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0) {
		failerr(s, errno, "open_tree");
		goto out;
	}
	if (sys_move_mount(tree, fd) < 0) {
		failerr(s, errno, "move_mount");
		goto out;
	}
	ret = 0;
out:
	close_fd(&tree);
	close(fd);
	return ret;
}

// rfs_mask hides path: a directory under an empty read-only tmpfs,
// anything else under the host's verified /dev/null. A path that does not
// exist is skipped; one reached through a symlink is an error, never
// followed.
int rfs_mask(struct stage *s, const char *path)
{
	if (mask(s, path) < 0)
		return wrap(s, "mask %s", str(path));
	return 0;
}

static int readonly(struct stage *s, const char *path)
{
	int fd = open_existing(s, path);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	int ret = -1;
	// A detached recursive clone of the path itself, made read-only with
	// mount_setattr (which keeps every other flag, including those a user
	// namespace locks) and attached back on top of the original.
	int tree = sys_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (tree < 0) {
		failerr(s, errno, "open_tree");
		goto out;
	}
	if (sys_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if (sys_move_mount(tree, fd) < 0) {
		failerr(s, errno, "move_mount");
		goto out;
	}
	ret = 0;
out:
	close_fd(&tree);
	close(fd);
	return ret;
}

// rfs_readonly binds path onto itself read-only. A path that does not
// exist is skipped; symlinks are refused.
int rfs_readonly(struct stage *s, const char *path)
{
	if (readonly(s, path) < 0)
		return wrap(s, "make %s read-only", str(path));
	return 0;
}

// rfs_mkdir creates the working directory inside the rootfs if it is
// missing, following the image's symlinks within the root but no magic
// link: the process later changes into it by name, and a cwd through
// /proc/self/fd/N would otherwise land in a descriptor of the stage's,
// outside the root (CVE-2024-21626). A dangling symlink on the way is an
// error here, not a directory made where it points.
int rfs_mkdir(struct stage *s, const char *path)
{
	char r[PATH_MAX];
	if (rel(s, path, r) < 0)
		return -1;
	int fd = mkdir_all(s, r, 0755, IN_ROOT);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

// ---- the console --------------------------------------------------------

// bind_console mounts the pty slave over /dev/console, creating the file
// first; the spec asks for it whenever the process has a terminal.
static int bind_console(struct stage *s, int slave)
{
	int dst = prepare_target(s, "/dev/console", 0, 0755);
	if (dst < 0)
		return wrap(s, "create /dev/console");
	int ret = -1;
	int tree = sys_open_tree(slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0) {
		failerr(s, errno, "bind /dev/console: open_tree");
		goto out;
	}
	if (sys_move_mount(tree, dst) < 0) {
		failerr(s, errno, "bind /dev/console: move_mount");
		goto out;
	}
	ret = 0;
out:
	close_fd(&tree);
	close(dst);
	return ret;
}

int rfs_console(struct stage *s, const struct op_console *c)
{
	if (s->consolefd < 0)
		return fail(s, "no console socket");
	// The multiplexer of the container's own devpts instance, reached with
	// no symlink and checked to be devpts: the pty must not come from the
	// host's instance or a file the image planted.
	int ptmx = sys_openat2(s->rootfd, "dev/pts/ptmx", O_PATH, NO_SYMLINKS);
	if (ptmx < 0)
		return failerr(s, errno, "the container has no devpts at /dev/pts: openat2 /dev/pts/ptmx");
	if (check_fs(s, ptmx, DEVPTS_SUPER_MAGIC, "/dev/pts/ptmx") < 0) {
		close(ptmx);
		return -1;
	}
	int master = -1, slave = -1;
	struct fd_path p = fd_path(ptmx);
	int ret = pty_open(s, p.s, &master, &slave);
	close(ptmx);
	if (ret < 0)
		goto bad;
	if (c->has_size && pty_set_size(s, master, c->rows, c->cols) < 0)
		goto bad;
	if (bind_console(s, slave) < 0)
		goto bad;
	if (pty_send(s, s->consolefd, "/dev/ptmx", master) < 0) {
		wrap(s, "send pty master");
		goto bad;
	}
	close_fd(&master);
	close_fd(&s->consolefd);
	s->slave = slave;
	return 0;
bad:
	close_fd(&master);
	close_fd(&slave);
	return -1;
}

// ---- sysctls ------------------------------------------------------------

// rfs_sysctl writes value to exactly one file under the container's own
// procfs: /proc reached with no symlink and checked to be procfs, the key's
// file opened beneath it with no link of any kind and no mount crossing,
// and checked again. Neither a value ("1+kernel.core_pattern=...",
// CVE-2022-0811; the runtime refuses NULs and newlines) nor a symlinked
// /proc/sys (CVE-2025-52881) can redirect the write.
int rfs_sysctl(struct stage *s, const char *key_path, const char *value)
{
	char name[PATH_MAX];
	if (key_path == NULL || value == NULL)
		return fail(s, "sysctl without a name or value");
	if ((size_t)snprintf(name, sizeof(name), "sys/%s", key_path) >= sizeof(name))
		return failerr(s, ENAMETOOLONG, "set sysctl %.256s", key_path);
	int proc = open_in(s, "proc", O_PATH | O_DIRECTORY, NO_SYMLINKS);
	if (proc < 0)
		return -1;
	int ret = -1;
	if (check_fs(s, proc, PROC_SUPER_MAGIC, "/proc") < 0) {
		close(proc);
		return -1;
	}
	int fd = sys_openat2(proc, name, O_WRONLY | O_TRUNC,
			     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
	int err = errno;
	close(proc);
	if (fd < 0)
		return failerr(s, err, "set sysctl %s: open /proc/%s", key_path, name);
	struct statfs st;
	if (fstatfs(fd, &st) < 0 || (uint64_t)st.f_type != PROC_SUPER_MAGIC) {
		fail(s, "set sysctl %s: /proc/%s is not on procfs", key_path, name);
		goto out;
	}
	size_t len = strlen(value), off = 0;
	while (off < len) {
		ssize_t n = write(fd, value + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			failerr(s, n < 0 ? errno : EIO, "set sysctl %s to \"%s\": write /proc/%s",
				key_path, value, name);
			goto out;
		}
		off += (size_t)n;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

// Path resolution beneath the rootfs and the mount plumbing the operations
// of rootfs.c are built from: the openat2(2) and new-mount-API system
// calls, names relative to the root descriptor, targets created and opened
// with no symlink on the way, filesystem checks and propagation. It is how
// the first invariants of rootfs.c (every path resolved from s->rootfd, every
// mount on the resolved descriptor) are kept; resolve.h is its interface.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "resolve.h"

// The new mount API and openat2(2) have no wrappers in every libc the
// stage is built with (glibc 2.36 lacks openat2, musl lacks them all), so
// they are called through syscall(2) with the kernel's ABI spelled out
// here (and, for the flags callers pass, in resolve.h). The structs carry
// names of our own so that no libc header that does define them can clash.
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

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
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

// The kernel's limit on nested symlinks in one lookup.
#define MAX_SYMLINKS 40

// ---- system calls -------------------------------------------------------

// sys_openat2 retries EINTR and EAGAIN: the kernel returns EAGAIN when a
// rename raced a RESOLVE_IN_ROOT lookup, and a retry is the documented
// answer. Bounded so that a rename storm cannot hold the stage forever.
int res_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
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

int res_open_tree(int dirfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

// sys_move_mount attaches the detached tree from onto the object to; both
// are descriptors, so nothing is looked up by name.
int res_move_mount(int from, int to)
{
	return (int)syscall(SYS_move_mount, from, "", to, "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

int res_mount_setattr(int dirfd, const char *path, unsigned int flags,
		      uint64_t set, uint64_t clr, int userns)
{
	struct rfs_mount_attr attr = {
		.attr_set = set, .attr_clr = clr,
		.userns_fd = userns >= 0 ? (uint64_t)userns : 0,
	};
	return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

// res_bind_onto attaches a detached clone of what src refers to (the whole
// tree beneath it with AT_RECURSIVE in recursive) on dst, a target already
// resolved, with attr_set applied to the clone first (0: none): the bind
// mount done by descriptor, with nothing looked up by name in between.
// Errors say which call failed after prefix.
int res_bind_onto(struct stage *s, int src, unsigned int recursive, uint64_t attr_set, int dst,
		  const char *prefix)
{
	int tree = res_open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | recursive);
	if (tree < 0)
		return failerr(s, errno, "%sopen_tree", prefix);
	int ret = -1;
	if (attr_set != 0 && res_mount_setattr(tree, "", AT_EMPTY_PATH | recursive, attr_set, 0, -1) < 0)
		failerr(s, errno, "%smount_setattr", prefix);
	else if (res_move_mount(tree, dst) < 0)
		failerr(s, errno, "%smove_mount", prefix);
	else
		ret = 0;
	close(tree);
	return ret;
}

// fd_path names an open descriptor for mount(2), which takes only paths:
// the kernel follows /proc/self/fd/N to exactly the object the descriptor
// refers to, whatever has happened to its name since.
struct fd_path res_fd_path(int fd)
{
	struct fd_path p;
	snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d", fd);
	return p;
}

// mount_fd calls mount(2) on the object fd refers to, retrying EINTR. An
// empty data string is passed as NULL, as filesystems with no options
// expect.
int res_mount_fd(const char *source, int fd, const char *fstype, uint64_t flags, const char *data)
{
	struct fd_path p = res_fd_path(fd);
	if (data != NULL && *data == '\0')
		data = NULL;
	for (;;) {
		if (mount(source, p.s, fstype, (unsigned long)flags, data) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

void res_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

const char *res_str(const char *p)
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

int res_rel(struct stage *s, const char *path, char out[PATH_MAX])
{
	if (path == NULL || clean_rel(path, out, PATH_MAX) < 0)
		return failerr(s, path == NULL ? EINVAL : ENAMETOOLONG, "path %.256s", res_str(path));
	return 0;
}

// shown turns a relative name back into the container's absolute path for
// messages. It keeps errno: it is evaluated in the same argument list as
// failerr's errno, in an order C leaves open.
const char *res_shown(const char *relpath)
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
const char *res_split(const char *relpath, char dir[PATH_MAX])
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
int res_open_in(struct stage *s, const char *relpath, uint64_t flags, uint64_t resolve)
{
	int fd = res_openat2(s->rootfd, relpath, flags, resolve);
	if (fd < 0)
		return failerr(s, errno, "openat2 %s", res_shown(relpath));
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
int res_mkdir_all(struct stage *s, const char *relpath, uint32_t mode, uint64_t resolve)
{
	int fd = res_openat2(s->rootfd, relpath, O_PATH | O_DIRECTORY, resolve);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return failerr(s, errno, "openat2 %s", res_shown(relpath));
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
		fd = res_openat2(s->rootfd, prefix, O_PATH | O_DIRECTORY, resolve);
		if (fd < 0 && errno == ENOENT) {
			// prefix + start is the component alone: clean_rel left no
			// "..", "." or empty ones.
			if (mkdirat(parent >= 0 ? parent : s->rootfd, prefix + start, mode & 07777) < 0 &&
			    errno != EEXIST) {
				failerr(s, errno, "mkdir %s", res_shown(prefix));
				res_close(&parent);
				return -1;
			}
			// Ours or a racing creator's: resolve it from the root again.
			fd = res_openat2(s->rootfd, prefix, O_PATH | O_DIRECTORY, resolve);
		}
		if (fd < 0) {
			failerr(s, errno, "openat2 %s", res_shown(prefix));
			res_close(&parent);
			return -1;
		}
		res_close(&parent);
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
int res_expand(struct stage *s, const char *relpath, char out[PATH_MAX])
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
			return failerr(s, ENAMETOOLONG, "resolve %s", res_shown(relpath));
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
				return failerr(s, ENAMETOOLONG, "resolve %s", res_shown(relpath));
			return 0;
		}
		if (!S_ISLNK(st.st_mode)) {
			pos = next;
			continue;
		}
		if (++links > MAX_SYMLINKS)
			return failerr(s, ELOOP, "resolve %s", res_shown(relpath));
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
			return failerr(s, ENAMETOOLONG, "resolve %s", res_shown(relpath));
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
	int fd = res_openat2(s->rootfd, relpath, O_PATH, NO_SYMLINKS);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return failerr(s, errno, "openat2 %s", res_shown(relpath));
	char dir[PATH_MAX];
	const char *name = res_split(relpath, dir);
	int parent = res_mkdir_all(s, dir, mode, NO_SYMLINKS);
	if (parent < 0)
		return -1;
	// O_EXCL|O_NOFOLLOW: whatever appeared meanwhile is neither opened
	// (a fifo would block, a device would be opened) nor followed.
	fd = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
	int err = errno;
	close(parent);
	if (fd < 0 && err != EEXIST)
		return failerr(s, err, "create %s", res_shown(relpath));
	if (fd >= 0)
		close(fd);
	return res_open_in(s, relpath, O_PATH, NO_SYMLINKS);
}

// prepare_target creates a mount target, a directory or an empty file,
// following the image's symlinks only within the root, and returns an
// O_PATH descriptor of it that refers to no symlink (rootfs.PrepareTarget).
int res_prepare_target(struct stage *s, const char *path, int dir, uint32_t mode)
{
	char r[PATH_MAX], p[PATH_MAX];
	if (res_rel(s, path, r) < 0 || res_expand(s, r, p) < 0)
		return -1;
	if (dir)
		return res_mkdir_all(s, p, mode, NO_SYMLINKS);
	return create_file(s, p, mode);
}

// target resolves a mount destination as the plan's mode says.
int res_target(struct stage *s, const char *dest, uint32_t how, int dir, uint32_t mode)
{
	char r[PATH_MAX];
	// A zero mode is a plan that did not say; 0755 is what Go's
	// PrepareTarget always used.
	if ((mode & 07777) == 0)
		mode = 0755;
	switch (how) {
	case RESOLVE_EXPAND:
		return res_prepare_target(s, dest, dir, mode);
	case RESOLVE_NOSYMLINKS:
		if (res_rel(s, dest, r) < 0)
			return -1;
		return dir ? res_mkdir_all(s, r, mode, NO_SYMLINKS) : create_file(s, r, mode);
	case RESOLVE_EXISTING:
		if (res_rel(s, dest, r) < 0)
			return -1;
		return res_open_in(s, r, O_PATH, IN_ROOT);
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
int res_check_fs(struct stage *s, int fd, uint64_t magic, const char *name)
{
	struct statfs st;
	if (fstatfs(fd, &st) < 0)
		return failerr(s, errno, "fstatfs %s", name);
	if ((uint64_t)st.f_type != magic)
		return fail(s, "%s is not on %s (filesystem type 0x%llx)", name, fs_name(magic),
			    (unsigned long long)st.f_type);
	return 0;
}

int res_propagate(struct stage *s, int fd, uint32_t n, const uint64_t *prop)
{
	for (uint32_t i = 0; i < n; i++)
		if (res_mount_fd("", fd, NULL, prop[i], NULL) < 0)
			return failerr(s, errno, "set propagation: mount");
	return 0;
}

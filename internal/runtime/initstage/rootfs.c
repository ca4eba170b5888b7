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
//
// The resolution beneath the rootfs and the mount plumbing these operations
// use are in resolve.c.
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
#include "resolve.h"

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
	struct fd_path p = res_fd_path(s->rootfd);
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
	res_close(&newroot);
	res_close(&oldroot);
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
	if (readonly && res_mount_setattr(AT_FDCWD, "/", 0, MOUNT_ATTR_RDONLY, 0, -1) < 0)
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
	if (res_rel(s, m->dest, r) < 0)
		return -1;
	int top = res_openat2(s->rootfd, r, O_PATH | O_DIRECTORY, NO_SYMLINKS);
	if (top < 0 && (top = res_open_in(s, r, O_PATH, IN_ROOT)) < 0)
		return -1;
	int ret = -1;
	if (m->magic != 0 && res_check_fs(s, top, m->magic, m->dest) < 0)
		goto out;
	if ((m->rec_set != 0 || m->rec_clr != 0) &&
	    res_mount_setattr(top, "", AT_EMPTY_PATH | AT_RECURSIVE, m->rec_set, m->rec_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if (res_propagate(s, top, m->nprop, m->prop) < 0)
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
	int fd = res_target(s, m->dest, m->resolve, 1, m->mkdir_mode);
	if (fd < 0)
		return -1;
	int ret = res_mount_fd(m->source, fd, m->fstype, m->flags, m->data);
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
		return fail(s, "bind source %s is not an absolute path", res_str(b->source));
	unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
	if (b->recursive)
		flags |= AT_RECURSIVE;
	int tree = res_open_tree(AT_FDCWD, b->source, flags);
	if (tree < 0)
		return failerr(s, errno, "open_tree %s", b->source);
	int ret = -1, dst = -1;
	struct stat st;
	if (fstat(tree, &st) < 0) {
		failerr(s, errno, "fstat %s", b->source);
		goto out;
	}
	dst = res_target(s, b->dest, b->resolve, S_ISDIR(st.st_mode), 0755);
	if (dst < 0)
		goto out;
	if ((b->attr_set != 0 || b->attr_clr != 0) &&
	    res_mount_setattr(tree, "", AT_EMPTY_PATH, b->attr_set, b->attr_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if ((b->rec_set != 0 || b->rec_clr != 0) &&
	    res_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, b->rec_set, b->rec_clr, -1) < 0) {
		failerr(s, errno, "mount_setattr");
		goto out;
	}
	if (b->idmap_fd >= 0) {
		unsigned int f = AT_EMPTY_PATH;
		if (b->idmap_recursive || b->recursive)
			f |= AT_RECURSIVE;
		if (res_mount_setattr(tree, "", f, MOUNT_ATTR_IDMAP, 0, b->idmap_fd) < 0) {
			failerr(s, errno, "idmap: mount_setattr");
			goto out;
		}
	}
	if (res_move_mount(tree, dst) < 0) {
		failerr(s, errno, "move_mount");
		goto out;
	}
	// After move_mount the tree's descriptor refers to the root of the
	// attached mount: propagation is set on it, not on a name resolved
	// again.
	if (res_propagate(s, tree, b->nprop, b->prop) < 0)
		goto out;
	ret = 0;
out:
	res_close(&dst);
	res_close(&tree);
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
	if (res_rel(s, r->dest, p) < 0)
		return -1;
	int fd = res_open_in(s, p, O_PATH, resolve);
	if (fd < 0)
		return -1;
	int ret = res_mount_fd("", fd, r->fstype, r->flags, r->data);
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
	int ret = -1, dst = -1;
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
	ret = res_bind_onto(s, host, 0, 0, dst, "");
out:
	res_close(&dst);
	res_close(&host);
	return ret;
}

static int make_device(struct stage *s, const struct op_device *d)
{
	char r[PATH_MAX], p[PATH_MAX], dir[PATH_MAX];
	if (d->type != S_IFCHR && d->type != S_IFBLK && d->type != S_IFIFO)
		return fail(s, "unknown device type 0%o", d->type);
	if (res_rel(s, d->path, r) < 0 || res_expand(s, r, p) < 0)
		return -1;
	if (strcmp(p, ".") == 0)
		return fail(s, "the path names the root");
	const char *name = res_split(p, dir);
	int parent = res_mkdir_all(s, dir, 0755, NO_SYMLINKS);
	if (parent < 0)
		return -1;
	int ret = -1, node = -1;
	uint32_t mode = d->mode & 07777;
	if (d->bind && d->type != S_IFIFO) {
		ret = bind_device(s, d, parent, name);
		goto out;
	}
	// A node the image left is replaced: its type or numbers may differ.
	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT) {
		failerr(s, errno, "unlink %s", res_shown(p));
		goto out;
	}
	if (mknodat(parent, name, d->type | mode, makedev(d->major, d->minor)) < 0) {
		failerr(s, errno, "mknod %s", res_shown(p));
		goto out;
	}
	// Owner and mode are set on a descriptor of the node, checked to be
	// what mknod made: by name, a node swapped for a symlink meanwhile
	// (the directory may be one another container writes) would have its
	// target changed, and pre-pivot an absolute target is the host's.
	node = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (node < 0) {
		failerr(s, errno, "open %s", res_shown(p));
		goto out;
	}
	struct stat st;
	if (fstat(node, &st) < 0) {
		failerr(s, errno, "fstat %s", res_shown(p));
		goto out;
	}
	if ((st.st_mode & S_IFMT) != d->type || (d->type != S_IFIFO && st.st_rdev != makedev(d->major, d->minor))) {
		fail(s, "%s was replaced while it was made", res_shown(p));
		goto out;
	}
	if (fchownat(node, "", (uid_t)d->uid, (gid_t)d->gid, AT_EMPTY_PATH) < 0) {
		failerr(s, errno, "chown %s", res_shown(p));
		goto out;
	}
	// mknod applies the umask; set the mode exactly. fchmod refuses an
	// O_PATH descriptor, its /proc/self/fd name does not (the host's
	// /proc: this runs before the switch of root).
	struct fd_path fp = res_fd_path(node);
	if (chmod(fp.s, mode) < 0) {
		failerr(s, errno, "chmod %s", res_shown(p));
		goto out;
	}
	ret = 0;
out:
	res_close(&node);
	close(parent);
	return ret;
}

// rfs_device makes one device node beneath the rootfs. The node's path
// follows the image's symlinks within the root; its parent is then opened
// with no symlink, and the node is made beneath that descriptor.
int rfs_device(struct stage *s, const struct op_device *d)
{
	if (make_device(s, d) < 0)
		return wrap(s, "create device %s", res_str(d->path));
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
		return fail(s, "invalid /dev link name %s", res_str(l->name));
	int dev = res_prepare_target(s, "/dev", 1, 0755);
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
	if (res_rel(s, path, r) < 0)
		return -1;
	int fd = res_openat2(s->rootfd, r, O_PATH, NO_SYMLINKS);
	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0)
		return failerr(s, errno, "openat2 %s", res_shown(r));
	return fd;
}

static int mask(struct stage *s, const char *path)
{
	int fd = open_existing(s, path);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	int ret = -1, null;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		failerr(s, errno, "fstat");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (res_mount_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "size=0,mode=0555") < 0) {
			failerr(s, errno, "mount");
			goto out;
		}
		ret = 0;
		goto out;
	}
	if ((null = null_fd(s)) < 0)
		goto out;
	ret = res_bind_onto(s, null, 0, 0, fd, "");
out:
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
		return wrap(s, "mask %s", res_str(path));
	return 0;
}

static int readonly(struct stage *s, const char *path)
{
	int fd = open_existing(s, path);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	// A detached recursive clone of the path itself, made read-only with
	// mount_setattr (which keeps every other flag, including those a user
	// namespace locks) and attached back on top of the original.
	int ret = res_bind_onto(s, fd, AT_RECURSIVE, MOUNT_ATTR_RDONLY, fd, "");
	close(fd);
	return ret;
}

// rfs_readonly binds path onto itself read-only. A path that does not
// exist is skipped; symlinks are refused.
int rfs_readonly(struct stage *s, const char *path)
{
	if (readonly(s, path) < 0)
		return wrap(s, "make %s read-only", res_str(path));
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
	if (res_rel(s, path, r) < 0)
		return -1;
	int fd = res_mkdir_all(s, r, 0755, IN_ROOT);
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
	int dst = res_prepare_target(s, "/dev/console", 0, 0755);
	if (dst < 0)
		return wrap(s, "create /dev/console");
	int ret = res_bind_onto(s, slave, 0, 0, dst, "bind /dev/console: ");
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
	int ptmx = res_openat2(s->rootfd, "dev/pts/ptmx", O_PATH, NO_SYMLINKS);
	if (ptmx < 0)
		return failerr(s, errno, "the container has no devpts at /dev/pts: openat2 /dev/pts/ptmx");
	if (res_check_fs(s, ptmx, DEVPTS_SUPER_MAGIC, "/dev/pts/ptmx") < 0) {
		close(ptmx);
		return -1;
	}
	int master = -1, slave = -1;
	struct fd_path p = res_fd_path(ptmx);
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
	res_close(&master);
	res_close(&s->consolefd);
	s->slave = slave;
	return 0;
bad:
	res_close(&master);
	res_close(&slave);
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
	int proc = res_open_in(s, "proc", O_PATH | O_DIRECTORY, NO_SYMLINKS);
	if (proc < 0)
		return -1;
	int ret = -1;
	if (res_check_fs(s, proc, PROC_SUPER_MAGIC, "/proc") < 0) {
		close(proc);
		return -1;
	}
	int fd = res_openat2(proc, name, O_WRONLY | O_TRUNC,
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

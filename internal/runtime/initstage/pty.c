// Terminals: the pty of a container's process, opened in the container's
// own devpts, its master handed to whoever holds the console socket, its
// slave made the process's controlling terminal. A port of
// internal/linux/console (pty.go, socket.go) with the same checks and
// error wording.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stage.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif

// Slave majors of Unix98 ptys: UNIX98_PTY_SLAVE_MAJOR (136) and the
// UNIX98_PTY_MAJOR_COUNT-1 majors after it, 256 minors each
// (include/uapi/linux/major.h, drivers/tty/pty.c).
#define PTY_SLAVE_MAJOR 136
#define PTY_SLAVE_MAJOR_COUNT 8

// go-runc's ReceiveMaster and runc's RecvFile read the name into a 4096-byte
// buffer and reject a message that fills it.
#define MAX_NAME_LEN 4096

// A /proc/self/fd/N name of the multiplexer has no directory of its own:
// its "directory" is /proc/self/fd, where slave n would be descriptor n.
static const char fd_prefix[] = "/proc/self/fd/";

static int open_retry(const char *path, int flags)
{
	int fd;
	do
		fd = open(path, flags);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static int fstatfs_retry(int fd, struct statfs *st)
{
	int r;
	do
		r = fstatfs(fd, st);
	while (r < 0 && errno == EINTR);
	return r;
}

// slave_dir finds the directory holding the slaves of the pty whose master
// is mfd, for kernels without TIOCGPTPEER. If the master is a devpts "ptmx"
// node, its directory is the devpts mount; otherwise (the /dev/ptmx device
// node) the kernel finds the devpts instance at "pts" next to it (Linux
// 4.7). The directory is taken from the resolved path: console.slaveDir
// takes it from the name as given, which sends a /dev/ptmx that is a
// symlink to pts/ptmx (Docker's layout) to /dev. The result is only a
// guess the caller verifies, so the container's symlinks cannot make it
// open anything but slave n.
static int slave_dir(struct stage *s, int mfd, const char *ptmx, char *dir, size_t size)
{
	struct statfs st;
	if (fstatfs_retry(mfd, &st) < 0)
		return failerr(s, errno, "statfs %s: fstatfs", ptmx);
	char *real = realpath(ptmx, NULL);
	if (real == NULL)
		return failerr(s, errno, "resolve %s", ptmx);
	char *slash = strrchr(real, '/');
	size_t len = slash == NULL ? 0 : (size_t)(slash - real);
	int n;
	if ((unsigned long)st.f_type == DEVPTS_SUPER_MAGIC)
		n = snprintf(dir, size, "%.*s", (int)len, real);
	else
		n = snprintf(dir, size, "%.*s/pts", (int)len, real);
	free(real);
	if (n < 0 || (size_t)n >= size)
		return fail(s, "find the slaves of %s: path too long", ptmx);
	return 0;
}

// check_slave verifies that fd, opened by a path in a directory the
// container controls, is slave n of a devpts instance.
static int check_slave(struct stage *s, int fd, const char *path, unsigned n)
{
	struct statfs fs;
	if (fstatfs_retry(fd, &fs) < 0)
		return failerr(s, errno, "statfs pty slave %s: fstatfs", path);
	if ((unsigned long)fs.f_type != DEVPTS_SUPER_MAGIC)
		return fail(s, "check pty slave %s: not on a devpts filesystem (type %#lx)",
			    path, (unsigned long)fs.f_type);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return failerr(s, errno, "stat pty slave %s: fstat", path);
	unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
	if (!S_ISCHR(st.st_mode) || maj < PTY_SLAVE_MAJOR ||
	    maj >= PTY_SLAVE_MAJOR + PTY_SLAVE_MAJOR_COUNT ||
	    (maj - PTY_SLAVE_MAJOR) * 256 + min != n)
		return fail(s, "check pty slave %s: device %u:%u is not slave %u", path, maj, min, n);
	return 0;
}

// open_slave_by_path is the fallback for kernels before 4.13. The final
// component is not followed if it is a symlink, and what was opened must be
// the devpts character device of slave n.
static int open_slave_by_path(struct stage *s, int mfd, const char *ptmx, unsigned n)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	if (slave_dir(s, mfd, ptmx, dir, sizeof(dir)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%u", dir, n);
	int fd = open_retry(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return failerr(s, errno, "open pty slave %s: open %s", path, path);
	if (check_slave(s, fd, path, n) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pty_open(struct stage *s, const char *ptmx, int *master, int *slave)
{
	*master = *slave = -1;
	int mfd = open_retry(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (mfd < 0)
		return failerr(s, errno, "open pty multiplexer %s: open %s", ptmx, ptmx);
	return pty_open_fd(s, mfd, ptmx, master, slave);
}

int pty_open_fd(struct stage *s, int mfd, const char *ptmx, int *master, int *slave)
{
	*master = *slave = -1;
	// TIOCGPTN answers only on a pty master, so it also proves that ptmx
	// really was a pty multiplexer and not some other node in its place.
	unsigned n;
	if (ioctl(mfd, TIOCGPTN, &n) < 0) {
		failerr(s, errno, "get pty number from %s: ioctl TIOCGPTN", ptmx);
		goto fail;
	}
	int unlock = 0;
	if (ioctl(mfd, TIOCSPTLCK, &unlock) < 0) {
		failerr(s, errno, "unlock pty %u: ioctl TIOCSPTLCK", n);
		goto fail;
	}

	// TIOCGPTPEER opens the master's own slave, so no path in the
	// container's /dev/pts is trusted. Its argument is the open flags,
	// passed by value.
	int sfd;
	do
		sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	while (sfd < 0 && errno == EINTR);
	if (sfd < 0) {
		int err = errno;
		if (err != EINVAL && err != ENOTTY) {
			failerr(s, err, "open pty slave %u from its master: ioctl TIOCGPTPEER", n);
			goto fail;
		}
		// The kernel predates TIOCGPTPEER (4.13). A multiplexer reached
		// through /proc/self/fd has no directory its slaves could be
		// found in by name, and such kernels cannot run the rest of the
		// stage (open_tree, mount_setattr) anyway: only /dev/ptmx gets
		// the fallback.
		if (strncmp(ptmx, fd_prefix, sizeof(fd_prefix) - 1) == 0) {
			failerr(s, err, "open pty slave %u from its master: ioctl TIOCGPTPEER "
				"(needed for a multiplexer opened through %s)", n, ptmx);
			goto fail;
		}
		sfd = open_slave_by_path(s, mfd, ptmx, n);
		if (sfd < 0)
			goto fail;
	}
	*master = mfd;
	*slave = sfd;
	return 0;
fail:
	close(mfd);
	return -1;
}

int pty_set_size(struct stage *s, int master, uint16_t rows, uint16_t cols)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	int r;
	do
		r = ioctl(master, TIOCSWINSZ, &ws);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return failerr(s, errno, "set window size of descriptor %d: ioctl TIOCSWINSZ", master);
	return 0;
}

// pty_send is console.SendFd: one message whose data is name and whose
// SCM_RIGHTS control message holds fd and nothing else, the console-socket
// contract containerd's shim and podman's conmon read. A stream socket
// drops control data sent with no bytes, hence no empty name.
// MSG_NOSIGNAL: a receiver that went away is an error, not a SIGPIPE that
// kills the stage before it can report.
int pty_send(struct stage *s, int sock, const char *name, int fd)
{
	size_t len = name == NULL ? 0 : strlen(name);
	if (len == 0)
		return fail(s, "send descriptor: empty name");
	if (len >= MAX_NAME_LEN)
		return fail(s, "send descriptor \"%.40s\"...: name longer than %d bytes",
			    name, MAX_NAME_LEN - 1);

	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = { .iov_base = (void *)name, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));

	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			// A non-blocking socket: wait for room, as Go's poller does.
			struct pollfd pfd = { .fd = sock, .events = POLLOUT };
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return failerr(s, errno, "send descriptor %s: poll", name);
			continue;
		}
		if (n < 0)
			return failerr(s, errno, "send descriptor %s: sendmsg", name);
		if ((size_t)n != len)
			return fail(s, "send descriptor %s: short write: %zd of %zu bytes", name, n, len);
		return 0;
	}
}

// slave_name names the slave in errors the way users know it. The
// descriptor may have been opened through TIOCGPTPEER or a /proc/self/fd
// name, so the name comes from its device number.
static void slave_name(int fd, char *buf, size_t size)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	    major(st.st_rdev) >= PTY_SLAVE_MAJOR &&
	    major(st.st_rdev) < PTY_SLAVE_MAJOR + PTY_SLAVE_MAJOR_COUNT)
		snprintf(buf, size, "/dev/pts/%u",
			 (major(st.st_rdev) - PTY_SLAVE_MAJOR) * 256 + minor(st.st_rdev));
	else
		snprintf(buf, size, "descriptor %d", fd);
}

// pty_setup_slave is console.SetupSlave: a new session unless the process
// already leads one (the runtime may have started it with setsid), the
// slave as its controlling terminal, and the slave on 0, 1 and 2 without
// close-on-exec so they survive execve. The slave's own descriptor is
// closed when it is not one of them; s->slave forgets it then.
//
// Preconditions: the process is not a process-group leader that does not
// lead its session (setsid would fail with EPERM).
int pty_setup_slave(struct stage *s, int slave)
{
	char name[64];
	slave_name(slave, name, sizeof(name));

	pid_t sid = getsid(0);
	if (sid < 0)
		return failerr(s, errno, "get session id: getsid");
	if (sid != getpid() && setsid() < 0)
		return failerr(s, errno, "start a new session: setsid");
	// Argument 0: never steal a terminal that is already some other
	// session's controlling terminal (that needs CAP_SYS_ADMIN and 1).
	int r;
	do
		r = ioctl(slave, TIOCSCTTY, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return failerr(s, errno, "make %s the controlling terminal: ioctl TIOCSCTTY", name);
	for (int target = 0; target <= 2; target++) {
		if (target == slave) {
			// dup3 refuses equal descriptors; clear close-on-exec instead.
			if (fcntl(slave, F_SETFD, 0) < 0)
				return failerr(s, errno, "keep %s open across exec: fcntl", name);
			continue;
		}
		do
			r = dup3(slave, target, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return failerr(s, errno, "dup %s onto descriptor %d: dup3", name, target);
	}
	if (slave > 2) {
		close(slave);
		if (s->slave == slave)
			s->slave = -1;
	}
	return 0;
}

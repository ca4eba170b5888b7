// Hooks the init runs itself (createContainer before the switch to the
// container's root, startContainer after `start`), with what
// internal/runtime/hooks does for the hooks the runtime runs: the state on
// stdin, the hook's own argv and environment only, its own process group
// killed at the timeout, and the tail of its output in the error. A
// startContainer hook runs with the user's process's identity and
// privileges (struct hook's as), a createContainer hook with the stage's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stage.h"

#define OUTPUT_LIMIT 4096
// How long a hook that exited may leave a descendant holding its output.
#define WAIT_DELAY_MS 1000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// tail keeps the last OUTPUT_LIMIT bytes of the hook's output.
struct tail {
	char buf[OUTPUT_LIMIT];
	size_t len;
	int truncated;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
	if (n >= OUTPUT_LIMIT) {
		t->truncated = t->truncated || t->len > 0 || n > OUTPUT_LIMIT;
		memcpy(t->buf, p + n - OUTPUT_LIMIT, OUTPUT_LIMIT);
		t->len = OUTPUT_LIMIT;
		return;
	}
	if (t->len + n > OUTPUT_LIMIT) {
		size_t over = t->len + n - OUTPUT_LIMIT;
		t->truncated = 1;
		memmove(t->buf, t->buf + over, t->len - over);
		t->len -= over;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

// tail_str returns the kept output trimmed, marked when its start was cut.
static const char *tail_str(struct tail *t, char *out, size_t cap)
{
	size_t a = 0, b = t->len;
	while (a < b && strchr(" \t\r\n\v\f", t->buf[a]) != NULL)
		a++;
	while (b > a && strchr(" \t\r\n\v\f", t->buf[b - 1]) != NULL)
		b--;
	if (a == b)
		return "";
	snprintf(out, cap, "%s%.*s", t->truncated ? "..." : "", (int)(b - a), t->buf + a);
	return out;
}

static void child(struct stage *s, const struct hook *h, int in, int out)
{
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	syscall(SYS_close_range, 3, ~0U, 0);
	// A startContainer hook is a program of the container's (its path is
	// resolved in the container's root): it gets what the container's
	// process gets, as runc runs it after finalizing the process, never
	// the stage's full privileges over the host. The seccomp filter is
	// the process's alone (a notifying one would hand its listener a
	// descriptor per hook).
	if (h->as != NULL && proc_drop(s, h->as) < 0) {
		dprintf(2, "%s: %s", s->step, s->msg);
		_exit(127);
	}
	static const char *empty[] = { NULL };
	const char *const *envp = h->envp != NULL ? h->envp : empty;
	const char *argv0[] = { h->path, NULL };
	const char *const *argv = (h->argv != NULL && h->argv[0] != NULL) ? h->argv : argv0;
	execve(h->path, (char *const *)argv, (char *const *)envp);
	dprintf(2, "exec: %s: %s", h->path, strerror(errno));
	_exit(127);
}

int run_hook(struct stage *s, const struct hook *h)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return failerr(s, errno, "%s: pipe", h->name);
	if (pipe2(out, O_CLOEXEC) < 0) {
		int err = errno;
		close(in[0]);
		close(in[1]);
		return failerr(s, err, "%s: pipe", h->name);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(in[0]); close(in[1]); close(out[0]); close(out[1]);
		return failerr(s, err, "%s: fork", h->name);
	}
	if (pid == 0)
		child(s, h, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	// A hook that exits without reading its stdin must not kill us.
	signal(SIGPIPE, SIG_IGN);

	struct tail t = { .len = 0 };
	const char *state = h->state;
	size_t left = strlen(state);
	int wfd = in[1], rfd = out[0], status = 0, exited = 0, timed_out = 0;
	// The hook's exit wakes the poll below through its pidfd.
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t deadline = h->timeout_ms > 0 ? now_ms() + h->timeout_ms : -1;
	int64_t drain_until = -1;
	if (left == 0) {
		close(wfd);
		wfd = -1;
	}
	for (;;) {
		if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
			exited = 1;
			drain_until = now_ms() + WAIT_DELAY_MS;
		}
		if (exited && rfd < 0)
			break;
		int64_t now = now_ms();
		if (!exited && deadline >= 0 && now >= deadline) {
			// The hook leads its own group: kill the group, so a shell
			// script's children die with it and release the pipes.
			kill(-pid, SIGKILL);
			timed_out = 1;
			deadline = -1;
		}
		if (exited && now >= drain_until)
			break; // a descendant holds the output: the hook itself is done
		struct pollfd fds[3];
		int nfds = 0;
		if (rfd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = rfd, .events = POLLIN };
		if (wfd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = wfd, .events = POLLOUT };
		if (!exited && pfd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
		int64_t until = exited ? drain_until : deadline;
		int wait = until < 0 ? -1 : (int)(until > now ? until - now : 0);
		if (pfd < 0 && !exited && (wait < 0 || wait > 10))
			wait = 10; // no pidfd: look at the hook now and then
		if (poll(fds, (nfds_t)nfds, wait) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nfds; i++) {
			if (fds[i].fd == rfd && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				char buf[4096];
				ssize_t r = read(rfd, buf, sizeof(buf));
				if (r > 0)
					tail_add(&t, buf, (size_t)r);
				else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
					close(rfd);
					rfd = -1;
				}
			} else if (fds[i].fd == wfd && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
				ssize_t w = write(wfd, state, left);
				if (w > 0) {
					state += w;
					left -= (size_t)w;
				}
				if (left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
					close(wfd);
					wfd = -1;
				}
			}
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (wfd >= 0)
		close(wfd);
	if (rfd >= 0)
		close(rfd);
	if (!exited) {
		// Only a failed poll leaves the loop before the hook exits: the
		// hook cannot be watched any more, so it is not waited for.
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
	}

	char why[128], outbuf[OUTPUT_LIMIT + 8];
	if (timed_out)
		snprintf(why, sizeof(why), "timed out after %llds: context deadline exceeded",
			 (long long)(h->timeout_ms / 1000));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	else if (WIFEXITED(status))
		snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "signal: %s", strsignal(WTERMSIG(status)));
	else
		snprintf(why, sizeof(why), "ended with status %#x", status);
	const char *o = tail_str(&t, outbuf, sizeof(outbuf));
	if (*o != '\0')
		return fail(s, "%s: %s: %s", h->name, why, o);
	return fail(s, "%s: %s", h->name, why);
}

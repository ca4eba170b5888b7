// The container-side stage of berth-runtime, in C: it runs in the sealed
// runtime binary's constructor, before the Go runtime exists, executes the
// plan the Go runtime computed (plan.go), and ends in the execve of the
// user's program. See doc.go for why it is C and what stays in Go.
#ifndef BERTH_STAGE_H
#define BERTH_STAGE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// ---- errors -------------------------------------------------------------

// stage is the state of one run of the stage. Every function that can fail
// returns -1 with s->msg set (fail, failerr) and leaves s->step alone; the
// dispatcher reports step and msg to the runtime and exits.
struct stage {
	const char *step;   // the set-up step under way ("mount", "switch root", ...)
	char msg[2048];     // what failed, for the user
	int syncfd;         // the socket to the runtime; -1 once closed
	int errfd;          // where errors go after the fifo wait (the fifo); -1 before
	int rootfd;         // O_PATH of the rootfs bind mount; -1 before ROOT_PREPARE
	int procfd;         // detached procfs of the container's pid namespace (subset=pid)
	int fifofd;         // O_PATH of the exec fifo (init only)
	int consolefd;      // the console socket; -1 without a terminal
	int seccompfd;      // the connection to the seccomp listener; -1 without one
	int slave;          // the pty slave once made; -1 without a terminal
	int nullfd;         // O_PATH of the host's verified /dev/null; -1 until needed
	int userns;         // the process is in a user namespace other than the initial one
};

// fail formats msg and returns -1.
int fail(struct stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// failerr formats msg, appends ": " and strerror(err), and returns -1.
int failerr(struct stage *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// ---- the plan, decoded ---------------------------------------------------
// Strings point into the received plan and are NUL-terminated; arrays are
// allocated once while decoding. The Go side (plan.go) has done all
// validation of names and values: the stage checks only what it can see at
// run time (what the filesystem holds, what the kernel says).

// How a mount target is resolved inside the rootfs.
enum resolve_mode {
	// Follow the image's symlinks, confined to the rootfs (the target is
	// created where a dangling symlink points), then create and open the
	// result with no symlink allowed (rootfs.PrepareTarget).
	RESOLVE_EXPAND = 0,
	// Refuse any symlink on the way (proc, sysfs, cgroup hierarchies).
	RESOLVE_NOSYMLINKS = 1,
	// Existing target only, symlinks followed inside the rootfs (remount).
	RESOLVE_EXISTING = 2,
};

struct op_mount {             // a filesystem mount(2) (tmpfs, proc, devpts, ...)
	const char *source, *fstype, *data, *dest;
	uint64_t flags;           // MS_* for mount(2)
	uint32_t resolve;         // enum resolve_mode (a directory is created)
	uint32_t mkdir_mode;      // mode of directories created for the target
	uint64_t magic;           // statfs type the new mount must have; 0: any
	uint64_t rec_set, rec_clr;// MOUNT_ATTR_* applied recursively afterwards
	uint32_t nprop;
	uint64_t *prop;           // MS_SHARED|MS_REC ... applied in order afterwards
};

struct op_bind {              // open_tree + mount_setattr + move_mount
	const char *source;       // absolute path in the runtime's view of the host
	const char *dest;
	uint32_t resolve;         // RESOLVE_EXPAND (file or directory like the source) or RESOLVE_NOSYMLINKS (directory)
	uint32_t recursive;
	uint64_t attr_set, attr_clr;   // MOUNT_ATTR_* on the top mount
	uint64_t rec_set, rec_clr;     // MOUNT_ATTR_* on the whole tree
	int32_t idmap_fd;              // user namespace for MOUNT_ATTR_IDMAP; -1 none
	uint32_t idmap_recursive;
	uint32_t nprop;
	uint64_t *prop;
};

struct op_remount {           // mount(2) with MS_REMOUNT on an existing target
	const char *dest, *fstype, *data;
	uint64_t flags;
	uint32_t resolve;         // RESOLVE_EXISTING or RESOLVE_NOSYMLINKS
};

struct op_device {
	const char *path;         // absolute, inside the rootfs
	uint32_t type;            // S_IFCHR, S_IFBLK or S_IFIFO
	uint32_t mode;            // permission bits
	uint32_t major, minor;
	int64_t uid, gid;         // -1: unchanged
	uint32_t bind;            // bind-mount the host's node instead of mknod (user namespaces)
};

struct op_symlink {           // a link in the rootfs's /dev
	const char *target, *name;
	uint32_t replace;         // remove what is there first
};

struct op_console {
	uint32_t has_size;
	uint16_t rows, cols;
};

struct hook {
	const char *path;
	const char **argv;        // NULL-terminated
	const char **envp;        // NULL-terminated
	int64_t timeout_ms;       // 0: none
	const char *state;        // the state JSON for stdin
	const char *name;         // "createContainer hook #0 (/path)" for errors
	const struct process *as; // run with the process's identity and privileges; NULL: the stage's
};

struct rlimit_entry { uint32_t resource; uint64_t soft, hard; const char *name; };

struct process {
	const char *cwd;
	const char **argv, **envp; // NULL-terminated
	uint32_t need_home;        // no HOME in envp: add the user's from /etc/passwd
	uint32_t uid, gid;
	uint32_t ngroups;
	uint32_t *groups;
	uint32_t has_umask, umask;
	uint32_t no_new_privs;
	uint32_t has_caps;
	uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;
	uint32_t nrlimits;
	struct rlimit_entry *rlimits;
	// seccomp
	uint32_t seccomp_len;      // instructions; 0: no filter
	const void *seccomp_prog;  // struct sock_filter[seccomp_len]
	uint64_t seccomp_flags;
	uint32_t seccomp_notify;   // the filter has a listener: send it to s->seccompfd
	uint32_t seccomp_state_len;
	const char *seccomp_state; // what the listener receives with the descriptor
	// process attributes, raw values computed by the runtime
	uint32_t has_personality; uint64_t personality;
	uint32_t has_ioprio; uint32_t ioprio;
	uint32_t sched_attr_len; const void *sched_attr; // struct sched_attr; 0: none
	uint32_t has_mempolicy; uint32_t mempolicy_mode;
	uint32_t nodemask_len; const uint64_t *nodemask; uint64_t maxnode;
	uint32_t affinity_len; const uint64_t *affinity; // final exec affinity; 0: none
	uint32_t preserve_fds;
	// resolved by proc_prepare
	char path[4096];           // the program
	const char **final_envp;
};

// ---- rootfs.c: the container's filesystem ---------------------------------

int rfs_prepare_root(struct stage *s, uint64_t propagation, const char *rootfs);
int rfs_mount(struct stage *s, const struct op_mount *m);
int rfs_bind(struct stage *s, const struct op_bind *b);
int rfs_remount(struct stage *s, const struct op_remount *r);
int rfs_device(struct stage *s, const struct op_device *d);
int rfs_symlink(struct stage *s, const struct op_symlink *l);
// rfs_console makes the pty in the container's devpts, binds its slave
// over /dev/console, sends the master to s->consolefd, and keeps the slave
// in s->slave.
int rfs_console(struct stage *s, const struct op_console *c);
int rfs_sysctl(struct stage *s, const char *key_path, const char *value); // key_path: "net/ipv4/ip_forward"
int rfs_mask(struct stage *s, const char *path);
int rfs_readonly(struct stage *s, const char *path);
int rfs_mkdir(struct stage *s, const char *path);
int rfs_pivot(struct stage *s);
int rfs_moveroot(struct stage *s);
int rfs_finish_root(struct stage *s, uint32_t readonly, uint64_t propagation);

// ---- pty.c: terminals -----------------------------------------------------

// pty_open opens the pty multiplexer at path (a /proc/self/fd/N name or
// /dev/ptmx), unlocks a new pty and opens its slave, checked to be that
// pty's slave on devpts.
int pty_open(struct stage *s, const char *ptmx, int *master, int *slave);
// pty_open_fd is pty_open with the multiplexer already open as mfd (named
// ptmx in errors), which it takes over: closed on failure.
int pty_open_fd(struct stage *s, int mfd, const char *ptmx, int *master, int *slave);
int pty_set_size(struct stage *s, int master, uint16_t rows, uint16_t cols);
// pty_send sends fd over the unix socket sock as SCM_RIGHTS, with name as data.
int pty_send(struct stage *s, int sock, const char *name, int fd);
// pty_setup_slave makes slave the controlling terminal of a new session
// and the process's stdio.
int pty_setup_slave(struct stage *s, int slave);

// ---- process.c: the user's program ----------------------------------------

// proc_prepare resolves what can fail before the container reports ready:
// chdir to cwd, rlimits, the program in PATH, HOME.
int proc_prepare(struct stage *s, struct process *p);
// proc_finalize drops to the user's identity and privileges and executes
// the program; it returns (-1) only on failure.
int proc_finalize(struct stage *s, struct process *p);
// proc_drop gives the calling process p's bounding set, user, groups,
// capabilities, umask and no_new_privs, as proc_finalize does, without
// the seccomp filter: for a hook that runs as the process (hooks.c).
int proc_drop(struct stage *s, const struct process *p);

// ---- hooks.c ----------------------------------------------------------------

int run_hook(struct stage *s, const struct hook *h);

#endif

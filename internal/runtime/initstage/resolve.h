// The private interface of resolve.c for rootfs.c: the kernel's flags the
// operations pass to the new mount API and openat2(2), the two ways a path
// beneath the rootfs is resolved, and the resolution and mount helpers.
// Every function that can fail sets s->msg as stage.h says.
#ifndef BERTH_RESOLVE_H
#define BERTH_RESOLVE_H

// Headers that may define the constants below come first, so that a libc
// which has them keeps its own definitions.
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mount.h>

#include "stage.h"

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

// How paths inside the rootfs are resolved. (Not to be confused with
// stage.h's RESOLVE_NOSYMLINKS, the plan's name for when to use the second.)
#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define NO_SYMLINKS (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

// ---- system calls -----------------------------------------------------------
// They return -1 with errno set, as libc's wrappers do.

int res_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
int res_open_tree(int dirfd, const char *path, unsigned int flags);
int res_move_mount(int from, int to);
int res_mount_setattr(int dirfd, const char *path, unsigned int flags,
		      uint64_t set, uint64_t clr, int userns);
int res_bind_onto(struct stage *s, int src, unsigned int recursive, uint64_t attr_set, int dst,
		  const char *prefix);

// fd_path is the /proc/self/fd/N name of a descriptor, for mount(2).
struct fd_path { char s[32]; };
struct fd_path res_fd_path(int fd);
int res_mount_fd(const char *source, int fd, const char *fstype, uint64_t flags, const char *data);

// close_fd closes *fd unless it is -1 and sets it to -1.
void res_close(int *fd);
// str is p, or "" for NULL, for messages.
const char *res_str(const char *p);

// ---- names ------------------------------------------------------------------

int res_rel(struct stage *s, const char *path, char out[PATH_MAX]);
const char *res_shown(const char *relpath);
const char *res_split(const char *relpath, char dir[PATH_MAX]);

// ---- resolution -------------------------------------------------------------

int res_open_in(struct stage *s, const char *relpath, uint64_t flags, uint64_t resolve);
int res_mkdir_all(struct stage *s, const char *relpath, uint32_t mode, uint64_t resolve);
int res_expand(struct stage *s, const char *relpath, char out[PATH_MAX]);
int res_prepare_target(struct stage *s, const char *path, int dir, uint32_t mode);
int res_target(struct stage *s, const char *dest, uint32_t how, int dir, uint32_t mode);
int res_check_fs(struct stage *s, int fd, uint64_t magic, const char *name);
int res_propagate(struct stage *s, int fd, uint32_t n, const uint64_t *prop);

#endif

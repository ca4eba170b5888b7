// The private interface between process.c and privileges.c: the steps of
// proc_finalize that set what the program is allowed, each returning -1
// with s->msg set on failure (stage.h), and the one helper they share.
#ifndef BERTH_PRIVILEGES_H
#define BERTH_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stage.h"

// ---- privileges.c -----------------------------------------------------------

// load_seccomp installs p's filter, if any, and hands a listener's
// descriptor to s->seccompfd.
int priv_load_seccomp(struct stage *s, struct process *p);
// drop_bounding removes every capability keep lacks from the bounding set.
int priv_drop_bounding(struct stage *s, uint64_t keep);
// setgroups_allowed says whether the user namespace allows setgroups(2).
bool priv_setgroups_allowed(struct stage *s);
// switch_user sets p's uid, gid and (when setgroups) supplementary groups,
// keeping the permitted capabilities.
int priv_switch_user(struct stage *s, const struct process *p, bool setgroups);
// apply_caps sets the effective, permitted, inheritable and ambient sets.
int priv_apply_caps(struct stage *s, const struct process *p);
// cloexec_from marks every descriptor from first on close-on-exec.
int priv_cloexec_from(struct stage *s, unsigned first);

// ---- process.c --------------------------------------------------------------

// read_small reads a small file of the kernel's into buf, NUL-terminated;
// -1 when it cannot.
int proc_read_small(int dirfd, const char *path, char *buf, size_t size);

#endif

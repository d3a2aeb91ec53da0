/* Privilege handling for keyturnd: hardening that applies to every start
 * (not dumpable, no core files, a locked arena for secrets, no_new_privs)
 * and the drop from root to the service user in chrony's order, each step
 * checked. */
#ifndef KT_PRIVDROP_H
#define KT_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* PR_SET_DUMPABLE 0, RLIMIT_CORE 0, PR_SET_NO_NEW_PRIVS 1, and, when
 * locked_memory is not 0, the locked arena for secret values
 * (kt_secure_init) of that many bytes, after checking that it fits under
 * RLIMIT_MEMLOCK (the soft limit is raised towards the hard one if that is
 * enough). Nothing else is locked. Returns 0 or a negative errno with err
 * set: -ENOMEM when locked_memory is over the limit, and kt_secure_init's
 * errors; every failure is meant to end the start. */
int kt_harden_process(size_t locked_memory, char *err, size_t errlen);

/* Looks up the service user. Returns 0, -ENOENT for an unknown user. */
int kt_lookup_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/* As root: keep-caps off, ambient and bounding sets emptied, setgroups to
 * the user's groups (only gid when user is NULL), setgid, setuid (real,
 * effective and saved), then clears every capability set (checked with
 * libcap), sets no_new_privs and non-dumpable again, and verifies that root
 * cannot be regained. Must run before any thread starts (-EBUSY otherwise);
 * uid 0 is refused (-EINVAL), a caller that is not root gets -EPERM, and a
 * privilege found still held afterwards is -EPERM too. Any failed step
 * returns a negative errno with err naming it ("setresuid(1001): Operation
 * not permitted"); the caller must treat that as fatal. */
int kt_drop_privileges(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen);

#endif

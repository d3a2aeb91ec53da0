/* Privilege handling for keyturnd: hardening that applies to every start
 * (not dumpable, no core files, memory locked, no_new_privs) and the drop
 * from root to the service user in chrony's order, each step checked. */
#ifndef KT_PRIVDROP_H
#define KT_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

/* PR_SET_DUMPABLE 0, RLIMIT_CORE 0, PR_SET_NO_NEW_PRIVS 1, and
 * mlockall(MCL_CURRENT|MCL_FUTURE). RLIMIT_MEMLOCK is lifted first (to no
 * limit with CAP_SYS_RESOURCE, else the soft limit to the hard one); under a
 * finite limit memory is not locked at all, because MCL_FUTURE would cap the
 * daemon at that size once it has dropped CAP_IPC_LOCK. Failing to lock is
 * an error only with require_lock; otherwise 0 comes back with the reason in
 * err, for a warning (err is "" when there is nothing to say). Returns 0 or
 * a negative errno with err set; -ENOMEM for a limit that cannot be lifted. */
int kt_harden_process(bool require_lock, char *err, size_t errlen);

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

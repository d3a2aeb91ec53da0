/* Logins: the `verify` op. A user's [login:] section maps it to a secret;
 * the password is compared with that secret's AWSCURRENT value (and with
 * AWSPREVIOUS during its grace); a failed password may start one
 * rate-limited check with AWS; non-root callers have a strict failure
 * limit; offline verifiers in state_dir answer when no value can be had. */
#ifndef KT_LOGIN_H
#define KT_LOGIN_H

#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "acl.h"
#include "ops.h"

struct kt_daemon;
struct kt_entry;
struct kt_login_state;

/* Allocates d->login (with a random key for comparisons). 0 or -errno. */
int kt_login_init(struct kt_daemon *d);
void kt_login_free(struct kt_daemon *d);

/* The hashing thread's eventfd, and what the loop calls when it is
 * readable: writes the verifiers hashed, answers the offline checks made. */
int kt_login_fd(struct kt_daemon *d);
void kt_login_hashed(struct kt_daemon *d);

/* Called once a second by the loop: makes the checks that failed passwords
 * wait for when they are due (see login_budget.c). */
void kt_login_tick(struct kt_daemon *d);

/* After the configuration was loaded or reloaded and the cache synced:
 * adds entries for the logins whose secret does not depend on the user
 * (so they are fetched at start), drops login entries no mapping needs
 * any more, and removes offline verifiers no mapping uses. */
void kt_login_sync(struct kt_daemon *d);

/* Handles a verify request. waited is the kt_wait_kind it was parked on
 * when it is handled again, 0 the first time. */
enum kt_op_result kt_login_verify(struct kt_daemon *d, uint64_t conn_id, const struct kt_peer *peer,
				  struct json_object *req, int waited, time_t now,
				  struct json_object **answer);

/* The daemon's hooks: a new AWSCURRENT value arrived; a check confirmed the
 * value in hand; AWS says the secret is gone. */
void kt_login_value_changed(struct kt_daemon *d, struct kt_entry *e, time_t now);
void kt_login_confirmed(struct kt_daemon *d, struct kt_entry *e, time_t now);
void kt_login_gone(struct kt_daemon *d, struct kt_entry *e);
/* A check says AWSCURRENT is now version (not fetched yet): offline
 * verifiers of another version are removed at once (login_offline.c). */
void kt_login_superseded(struct kt_daemon *d, struct kt_entry *e, const char *version);
/* Once a second: tries again to write the offline verifiers that could
 * not be written (10 s, then twice as long each time, at most 5 min). */
void kt_login_offline_tick(struct kt_daemon *d);

#endif

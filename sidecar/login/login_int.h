/* What login.c, map.c and offline.c share; not a public face. */
#ifndef KT_LOGIN_INT_H
#define KT_LOGIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "conf.h"
#include "engine.h"
#include "login.h"

struct kt_login;
struct kt_login_budget;
struct kt_login_hasher;

/* A non-root caller may fail this many times per window, then waits. */
#define KT_LOGIN_NONROOT_FAILURES 5
#define KT_LOGIN_NONROOT_WINDOW 60
#define KT_LOGIN_FAIL_SLOTS 32

struct kt_login_fail_slot {
	uid_t uid;
	int failures;
	time_t since;
};

/* What the login files keep between requests. */
struct kt_login {
	struct kt_engine *eng;       /* the values, and the checks failed passwords ask for */
	struct kt_cache *cache;      /* eng's cache */
	const struct kt_config *cfg; /* the configuration in effect (kt_login_configure) */
	unsigned char key[32];       /* HMAC key for comparisons; never leaves memory */
	struct kt_login_fail_slot fails[KT_LOGIN_FAIL_SLOTS];
	struct kt_login_budget *budget; /* budget.c */
	struct kt_login_hasher *hasher; /* offline.c */
	uid_t uid_min, uid_max;         /* [login:*] serves these uids (/etc/login.defs) */
	kt_login_used_fn *on_use;       /* told of every matching password */
	void *on_use_ctx;
};

/* map.c: from accounts to secrets. */
bool kt_login_pattern_has_user(const char *p);
/* The account a mapping writes its verifiers for: its own name, or for
 * [login:*] with %u the last account that used the entry (or NULL). */
const char *kt_login_mapping_user(const struct kt_login_cfg *l, const struct kt_entry *e);
bool kt_login_maps_to(const struct kt_login_cfg *l, const char *user, const char *id);
bool kt_login_maps_entry(struct kt_login *lg, const struct kt_login_cfg *l, const char *user,
			 const struct kt_entry *e);
/* Maps user to its section and entry. -ENOENT when the account has no
 * mapping ([login:*] serves only local accounts with a uid from UID_MIN to
 * UID_MAX), -ENODATA when its secret is known not to exist (the negative
 * cache), -EAGAIN when no entry can be made (or paid for); msg says why. */
int kt_login_resolve(struct kt_login *lg, const char *user, const struct kt_login_cfg **lp,
		     struct kt_entry **ep, char *msg, size_t msglen);
/* The password a value holds: one JSON key's string, or the whole value.
 * *out is a copy to free with kt_free_wiped(*out, *len). */
int kt_login_password(const struct kt_entry *e, const struct kt_value *v, const char *key,
		      char **out, size_t *len, char *msg, size_t msglen);
/* After a configuration: drops login entries no mapping needs any more and
 * adds those of the logins whose secret does not depend on the user. */
void kt_login_map_sync(struct kt_login *lg);
bool kt_login_previous_in_grace(const struct kt_entry *e, const struct kt_login_cfg *l, time_t now);

/* map.c: the range of uids [login:*] serves, from /etc/login.defs. */
#define KT_LOGIN_DEFS "/etc/login.defs"
void kt_login_read_login_defs(struct kt_login *st, const char *path);

/* budget.c: the AWS calls that failed passwords may cause. A call is
 * allowed when the secret's own back-off has run out and the daemon-wide
 * budget holds a token; see the top of budget.c. */
enum kt_recheck_plan {
	KT_RECHECK_NO,    /* not now: answer from what is in hand */
	KT_RECHECK_NOW,   /* make the call now (a token was taken) */
	KT_RECHECK_LATER, /* park: kt_login_budget_tick makes it within a few s */
};
int kt_login_budget_new(struct kt_login_budget **out);
void kt_login_budget_free(struct kt_login_budget *b);
/* For a failed password (fetch false: may be deferred) or a value not in
 * hand (fetch true: now or never). why, when not NULL, says a refusal's
 * reason for the answer. */
enum kt_recheck_plan kt_login_budget_plan(struct kt_login *lg, struct kt_entry *e, bool fetch,
					  const char **why);
/* Whether a deferred call for e is still to be made. */
bool kt_login_budget_deferred(struct kt_login *lg, const struct kt_entry *e);
/* Whether a new entry (first fetch) could be paid for now. */
bool kt_login_budget_can_pay(struct kt_login *lg);
/* A wrong password was answered: earns part of a token, and keeps the
 * secret's back-off (e may be NULL). */
void kt_login_budget_failed(struct kt_login *lg, const struct kt_entry *e);
/* A match, or a rotation seen: the secret's back-off starts over. */
void kt_login_budget_reset(struct kt_login *lg, const struct kt_entry *e);
/* The secret of [login:*] account id is known not to exist (for
 * check_interval), or forgotten again. */
void kt_login_absent_add(struct kt_login *lg, const char *id);
bool kt_login_absent(struct kt_login *lg, const char *id);
/* Once a second: makes the deferred calls that are due. */
void kt_login_budget_tick(struct kt_login *lg);

/* offline.c: the verifiers in state_dir, hashed and checked on the
 * hashing thread (hasher.c). Offline checks waiting on it, at most: for
 * every caller together, and for each uid but root. */
#define KT_LOGIN_OFFLINE_CHECKS 64
#define KT_LOGIN_OFFLINE_PER_UID 8
int kt_login_offline_start(struct kt_login *lg);
/* Joins the thread; jobs still queued are freed wiped. */
void kt_login_offline_stop(struct kt_login *lg);
/* Starts the offline check of pw for the verify of connection conn_id:
 * 0 when it was queued (the request parks as KT_WAIT_VERIFY_OFFLINE until
 * kt_login_hashed answers it), 1 when pw cannot match (it holds a NUL),
 * -ENOENT when there is no verifier (or offline is off), -ESTALE when it
 * is too old, -EBUSY when too many checks wait; msg says why. */
int kt_login_offline_check(struct kt_login *lg, const struct kt_entry *e,
			   const struct kt_login_cfg *l, uint64_t conn_id, uid_t uid,
			   const char *pw, size_t len, time_t now, char *msg, size_t msglen);
/* For a verify handled again as KT_WAIT_VERIFY_OFFLINE: 1 on a match
 * (*stage set), 0 on none, -EINPROGRESS while its check still waits, another
 * negative errno (msg set) when it could not be made. */
int kt_login_offline_result(struct kt_login *lg, const struct kt_entry *e, uint64_t conn_id,
			    const char **stage, char *msg, size_t msglen);
/* The connection asks something else: a check it started answers nothing. */
void kt_login_offline_detach(struct kt_login *lg, uint64_t conn_id);
/* Removes the verifiers no mapping uses any more. */
void kt_login_offline_prune(struct kt_login *lg);
/* Once a second: tries again to write the offline verifiers that could
 * not be written (10 s, then twice as long each time, at most 5 min). */
void kt_login_offline_tick(struct kt_login *lg);
/* The engine's news, as login.c hands them on: a new AWSCURRENT value
 * (now: wall clock); a check confirmed the value in hand; AWS moved
 * AWSCURRENT to version, not fetched yet (verifiers of another version are
 * removed at once); the secret is gone. */
void kt_login_offline_changed(struct kt_login *lg, struct kt_entry *e, time_t now);
void kt_login_offline_confirmed(struct kt_login *lg, struct kt_entry *e, time_t now);
void kt_login_offline_superseded(struct kt_login *lg, struct kt_entry *e, const char *version);
void kt_login_offline_gone(struct kt_login *lg, struct kt_entry *e);

#endif

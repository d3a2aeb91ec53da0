/* Logins: the `verify` op. A user's [login:] section maps it to a secret;
 * the password is compared with that secret's AWSCURRENT value (and with
 * AWSPREVIOUS during its grace); a failed password may start one
 * rate-limited check with AWS; non-root callers have a strict failure
 * limit; offline verifiers in state_dir answer when no value can be had.
 *
 * The login module's face. It uses the engine (values, checks, parking)
 * and hears from it through a subscription; nothing below calls it. */
#ifndef KT_LOGIN_H
#define KT_LOGIN_H

#include <json-c/json.h>

#include "conf.h"
#include "engine.h"
#include "request.h"

struct kt_login;

/* A password matched: user's section l mapped it to entry e (online or
 * offline). The rotation after use hears of it here. */
typedef void kt_login_used_fn(void *ctx, const char *user, const struct kt_login_cfg *l,
			      const struct kt_entry *e);

/* Makes the login state for eng (with a random key for comparisons),
 * starts the hashing thread and subscribes to eng's news. cfg as for
 * kt_login_configure. 0 or -errno. */
int kt_login_new(struct kt_engine *eng, const struct kt_config *cfg, struct kt_login **out);
/* Joins the hashing thread and frees everything, wiped. NULL is allowed. */
void kt_login_free(struct kt_login *lg);

/* Whom to tell of each matching password (one listener; fn NULL: none). */
void kt_login_on_use(struct kt_login *lg, kt_login_used_fn *fn, void *ctx);

/* The hashing thread's eventfd, and what the loop calls when it is
 * readable: writes the verifiers hashed, answers the offline checks made. */
int kt_login_fd(struct kt_login *lg);
void kt_login_hashed(struct kt_login *lg);

/* Once a second: makes the checks that failed passwords wait for when they
 * are due (budget.c), drops [login:*] entries of secrets AWS does not have
 * into the negative cache, and retries offline verifiers that could not be
 * written (offline.c). */
void kt_login_tick(struct kt_login *lg);

/* After the engine took a configuration (start or reload); cfg must stay
 * valid until the next call: adds entries for the logins whose secret does
 * not depend on the user (so they are fetched at start), drops login entries
 * no mapping needs any more, and removes offline verifiers no mapping uses. */
void kt_login_configure(struct kt_login *lg, const struct kt_config *cfg);

/* Handles a verify request (r->waited: the kt_wait_kind it was parked on
 * when it is handled again, 0 the first time). */
enum kt_op_result kt_login_verify(struct kt_login *lg, const struct kt_request *r,
				  struct json_object **answer);

#endif

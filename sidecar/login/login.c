/* Password checks for logins: the `verify` op. The mapping from accounts
 * to secrets is in map.c, the offline verifiers in offline.c.
 * Runs on the loop thread, like the rest of the cache's users; only the
 * offline checks' yescrypt runs on the hashing thread. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cache.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "login.h"
#include "login_int.h"
#include "common/proto.h"
#include "common/secmem.h"

/* What an attempt's audit line says. */
struct attempt {
	const struct kt_request *r; /* the verify request */
	const struct kt_peer *peer;
	const char *user, *service, *rhost, *tty;
	const char *secret;
};
/* What the engine says changes the login side: a new value gets offline
 * verifiers (and failed passwords' checks start over), a confirmed one
 * keeps them fresh, a superseded one loses them, a gone secret loses
 * them all. */
static void news(void *ctx, enum kt_news what, struct kt_entry *e, const char *version)
{
	struct kt_login *lg = ctx;

	switch (what) {
	case KT_NEWS_CHANGED:
		kt_login_budget_reset(lg, e);
		kt_login_offline_changed(lg, e, time(NULL));
		break;
	case KT_NEWS_CONFIRMED:
		kt_login_offline_confirmed(lg, e, time(NULL));
		break;
	case KT_NEWS_SUPERSEDED:
		kt_login_offline_superseded(lg, e, version);
		break;
	case KT_NEWS_GONE:
		kt_login_offline_gone(lg, e);
		break;
	case KT_NEWS_FAILED:
	case KT_NEWS_RECOVERED:
		break;
	}
}

int kt_login_new(struct kt_engine *eng, const struct kt_config *cfg, struct kt_login **out)
{
	struct kt_login *lg = calloc(1, sizeof(*lg));

	if (lg == NULL)
		return -ENOMEM;
	lg->eng = eng;
	lg->cache = kt_engine_cache(eng);
	lg->cfg = cfg;
	if (getrandom(lg->key, sizeof(lg->key), 0) != (ssize_t)sizeof(lg->key)) {
		free(lg);
		return -EIO;
	}
	if (kt_login_budget_new(&lg->budget) < 0) {
		kt_free_wiped(lg, sizeof(*lg));
		return -ENOMEM;
	}
	kt_login_read_login_defs(lg, KT_LOGIN_DEFS);
	if (kt_login_offline_start(lg) < 0 || kt_engine_subscribe(eng, news, lg) < 0) {
		kt_login_free(lg);
		return -ENOMEM;
	}
	*out = lg;
	return 0;
}

void kt_login_free(struct kt_login *lg)
{
	if (lg == NULL)
		return;
	kt_login_offline_stop(lg);
	kt_login_budget_free(lg->budget);
	kt_free_wiped(lg, sizeof(*lg));
}

void kt_login_configure(struct kt_login *lg, const struct kt_config *cfg)
{
	lg->cfg = cfg;
	kt_login_map_sync(lg);
	kt_login_offline_prune(lg);
	kt_login_read_login_defs(lg, KT_LOGIN_DEFS);
}

/* Whether a section other than [login:*] with %u maps to SecretId id. */
static bool fixed_mapping(const struct kt_login *lg, const char *id)
{
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];

		if (strcmp(l->user, "*") == 0 && kt_login_pattern_has_user(l->secret))
			continue;
		if (kt_login_maps_to(l, l->user, id))
			return true;
	}
	return false;
}

/* [login:*] entries of secrets AWS says do not exist are dropped into the
 * negative cache: no scheduled check keeps asking about them, and the slot
 * is free for another account. */
static void drop_absent(struct kt_login *lg)
{
	for (size_t i = lg->cache->n; i-- > 0;) {
		struct kt_entry *e = lg->cache->entries[i];

		if (!e->login_only || e->login_user == NULL || !e->gone || e->in_flight ||
		    kt_engine_has_waiter(lg->eng, e->id) || fixed_mapping(lg, e->cfg->id))
			continue;
		kt_login_absent_add(lg, e->cfg->id);
		log_info("login: %s does not exist in AWS; not asking again for %ld s", e->name,
			 lg->cfg->check_interval);
		kt_engine_remove(lg->eng, e);
	}
}

void kt_login_tick(struct kt_login *lg)
{
	kt_login_budget_tick(lg);
	drop_absent(lg);
	kt_login_offline_tick(lg);
}

/* Compares through an HMAC under a random key, so the time taken says
 * nothing about where the two differ or how long the stored one is. An
 * empty password never matches. */
static bool same_password(const struct kt_login *st, const void *a, size_t alen, const void *b,
			  size_t blen)
{
	unsigned char ma[EVP_MAX_MD_SIZE], mb[EVP_MAX_MD_SIZE];
	unsigned int la = 0, lb = 0;
	bool same;

	if (HMAC(EVP_sha256(), st->key, sizeof(st->key), a, alen, ma, &la) == NULL ||
	    HMAC(EVP_sha256(), st->key, sizeof(st->key), b, blen, mb, &lb) == NULL)
		return false;
	same = la == lb && CRYPTO_memcmp(ma, mb, la) == 0 && alen > 0 && blen > 0;
	kt_wipe(ma, sizeof(ma));
	kt_wipe(mb, sizeof(mb));
	return same;
}

/* 1 on a match (*stage set), 0 on none, a negative errno (msg set) when the
 * value holds no password. */
static int compare_cached(const struct kt_login *st, const struct kt_entry *e,
			  const struct kt_login_cfg *l, const char *pw, size_t len, time_t now,
			  const char **stage, char *msg, size_t msglen)
{
	const struct kt_value *prev;
	char *want = NULL;
	size_t wlen = 0;
	int rc;

	rc = kt_login_password(e, &e->cur, l->key, &want, &wlen, msg, msglen);
	if (rc < 0)
		return rc;
	if (same_password(st, pw, len, want, wlen)) {
		/* AWS moved AWSCURRENT past the value in hand (its new version
		 * could not be fetched): the old password is a previous one now,
		 * accepted only within previous_grace of when a check saw it move. */
		if (!e->superseded) {
			*stage = "AWSCURRENT";
			rc = 1;
		} else if (l->previous_grace > 0 && now - e->superseded_at < l->previous_grace) {
			*stage = "AWSPREVIOUS";
			rc = 1;
		}
		goto out;
	}
	kt_free_wiped(want, wlen);
	want = NULL;
	if (!kt_login_previous_in_grace(e, l, now) ||
	    (prev = kt_cache_value(e, e->prev_version)) == NULL)
		goto out;
	if (kt_login_password(e, prev, l->key, &want, &wlen, msg, msglen) == 0 &&
	    same_password(st, pw, len, want, wlen)) {
		*stage = "AWSPREVIOUS";
		rc = 1;
	}
out:
	kt_free_wiped(want, wlen);
	return rc;
}

static struct kt_login_fail_slot *fail_slot(struct kt_login *st, uid_t uid, time_t now)
{
	struct kt_login_fail_slot *oldest = &st->fails[0];

	for (size_t i = 0; i < KT_LOGIN_FAIL_SLOTS; i++) {
		if (st->fails[i].failures > 0 && st->fails[i].uid == uid)
			return &st->fails[i];
	}
	for (size_t i = 0; i < KT_LOGIN_FAIL_SLOTS; i++) {
		if (st->fails[i].failures == 0 ||
		    now - st->fails[i].since >= KT_LOGIN_NONROOT_WINDOW)
			return &st->fails[i];
		if (st->fails[i].since < oldest->since)
			oldest = &st->fails[i];
	}
	return oldest;
}

static void audit(const struct attempt *a, const char *result, const char *stage,
		  const char *source)
{
	char user[96], service[64], rhost[96], tty[64];

	kt_json_printable(a->user, user, sizeof(user));
	kt_json_printable(a->service != NULL ? a->service : "-", service, sizeof(service));
	kt_json_printable(a->rhost != NULL ? a->rhost : "-", rhost, sizeof(rhost));
	kt_json_printable(a->tty != NULL ? a->tty : "-", tty, sizeof(tty));
	if (strcmp(result, "match") == 0)
		log_audit("login", true,
			  "user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld secret=%s "
			  "result=match stage=%s source=%s",
			  user, service, rhost, tty, (unsigned long)a->peer->uid,
			  (long)a->peer->pid, a->secret, stage, source);
	else
		log_audit("login", false,
			  "user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld "
			  "secret=%s result=%s",
			  user, service, rhost, tty, (unsigned long)a->peer->uid,
			  (long)a->peer->pid, a->secret, result);
}

/* The answer to a checked password, audited; failures of non-root
 * callers count towards their limit, and every failure towards the budget
 * of AWS calls (a match starts the secret's back-off over). */
static struct json_object *verdict(struct kt_login *lg, const struct attempt *a,
				   const struct kt_entry *e, bool match, const char *stage,
				   const char *source, time_t now)
{
	struct json_object *o = json_object_new_object();

	if (match) {
		/* The section is looked up only when someone listens (a
		 * rotation after use is configured). */
		const struct kt_login_cfg *l =
			lg->on_use != NULL ? kt_config_login(lg->cfg, a->user) : NULL;

		kt_login_budget_reset(lg, e);
		if (l != NULL)
			lg->on_use(lg->on_use_ctx, a->user, l, e);
	} else
		kt_login_budget_failed(lg, e);
	if (a->peer->uid != 0) {
		struct kt_login_fail_slot *s = fail_slot(lg, a->peer->uid, now);

		if (match) {
			if (s->uid == a->peer->uid)
				s->failures = 0;
		} else {
			if (s->uid != a->peer->uid || now - s->since >= KT_LOGIN_NONROOT_WINDOW) {
				s->uid = a->peer->uid;
				s->failures = 0;
				s->since = now;
			}
			s->failures++;
		}
	}
	audit(a, match ? "match" : "mismatch", stage, source);
	if (o == NULL)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	json_object_object_add(o, "match", json_object_new_boolean(match));
	json_object_object_add(o, "stage", match ? json_object_new_string(stage) : NULL);
	json_object_object_add(o, "source", json_object_new_string(source));
	return o;
}

void kt_login_on_use(struct kt_login *lg, kt_login_used_fn *fn, void *ctx)
{
	lg->on_use = fn;
	lg->on_use_ctx = ctx;
}

/* Whether a non-root caller used up its failures; *wait says for how long. */
static bool over_limit(struct kt_login *st, uid_t uid, time_t now, long *wait)
{
	for (size_t i = 0; i < KT_LOGIN_FAIL_SLOTS; i++) {
		const struct kt_login_fail_slot *s = &st->fails[i];

		if (s->uid == uid && s->failures >= KT_LOGIN_NONROOT_FAILURES &&
		    now - s->since < KT_LOGIN_NONROOT_WINDOW) {
			*wait = (long)(s->since + KT_LOGIN_NONROOT_WINDOW - now);
			return true;
		}
	}
	return false;
}

static enum kt_op_result park(struct kt_login *lg, const struct attempt *a, struct kt_entry *e,
			      enum kt_wait_kind kind, struct json_object **answer)
{
	if (kt_engine_wait(lg->eng, e, a->r->conn_id, a->peer, kind, a->r->req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

/* The answer to an offline check: rc 1 a match, 0 none, else why not. */
static enum kt_op_result offline_answer(struct kt_login *lg, const struct attempt *a,
					struct kt_entry *e, int rc, const char *stage,
					const char *why, const char *msg, time_t now,
					struct json_object **answer)
{
	if (rc >= 0) {
		*answer = verdict(lg, a, e, rc == 1, stage, "offline", now);
		return KT_OP_ANSWER;
	}
	audit(a, "unavailable", NULL, NULL);
	*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "%s: no value from AWS (%s); %s", e->name,
				 why != NULL       ? why
				 : e->failures > 0 ? e->last_error
						   : "not fetched yet",
				 msg);
	return KT_OP_ANSWER;
}

/* No value in hand: wait for a fetch when one can start (the first time
 * round, within the budget of AWS calls), else answer from the offline
 * verifier: the request parks while the hashing thread compares, and is
 * handled again (waited KT_WAIT_VERIFY_OFFLINE) with the result. */
static enum kt_op_result without_value(struct kt_login *lg, const struct attempt *a,
				       const struct kt_login_cfg *l, struct kt_entry *e,
				       const char *pw, size_t len, struct json_object **answer)
{
	int waited = a->r->waited;
	uint64_t conn_id = a->r->conn_id;
	time_t now = a->r->now;
	const char *stage = NULL, *why = NULL;
	char msg[400];
	int rc;

	/* An offline check started answers this request, whatever else
	 * happened to the secret meanwhile. */
	if (waited == KT_WAIT_VERIFY_OFFLINE) {
		rc = kt_login_offline_result(lg, e, conn_id, &stage, msg, sizeof(msg));
		if (rc == -EINPROGRESS)
			return park(lg, a, e, KT_WAIT_VERIFY_OFFLINE, answer);
		return offline_answer(lg, a, e, rc, stage, NULL, msg, now, answer);
	}
	/* A job for the secret still runs (this request was woken early):
	 * its end answers. */
	if (e->in_flight)
		return park(lg, a, e, KT_WAIT_VERIFY_VALUE, answer);
	if (waited != KT_WAIT_VERIFY_VALUE && (e->failures == 0 || now >= e->next_check) &&
	    kt_login_budget_plan(lg, e, true, &why) == KT_RECHECK_NOW) {
		kt_engine_fetch_current(lg->eng, e, KT_WHY_LOGIN);
		return park(lg, a, e, KT_WAIT_VERIFY_VALUE, answer);
	}
	/* Offline verifiers keep wall-clock times: they outlive the process. */
	rc = kt_login_offline_check(lg, e, l, conn_id, a->peer->uid, pw, len, time(NULL), msg,
				    sizeof(msg));
	if (rc == 0)
		return park(lg, a, e, KT_WAIT_VERIFY_OFFLINE, answer);
	/* 1: the password cannot match, no check needed. */
	return offline_answer(lg, a, e, rc == 1 ? 0 : rc, stage, why, msg, now, answer);
}

/* A password that did not match the value in hand: the user may already
 * type a new password that keyturnd has not seen, so it waits for a check
 * with AWS when one is allowed now or within a few seconds (see
 * budget.c); else the mismatch is answered at once. */
static bool recheck(struct kt_login *lg, const struct attempt *a, struct kt_entry *e,
		    enum kt_op_result *res, struct json_object **answer)
{
	int waited = a->r->waited;
	bool deferred = kt_login_budget_deferred(lg, e);

	if (waited == KT_WAIT_VERIFY_VALUE)
		return false;
	/* A job for the secret runs: its end answers (a check, or the fetch
	 * a check led to, tells whether the password changed). */
	if (e->in_flight) {
		*res = park(lg, a, e, deferred ? KT_WAIT_VERIFY_DEFER : KT_WAIT_VERIFY_RECHECK,
			    answer);
		return true;
	}
	if (waited == KT_WAIT_VERIFY_DEFER && deferred) {
		*res = park(lg, a, e, KT_WAIT_VERIFY_DEFER, answer);
		return true;
	}
	if (waited != 0)
		return false;
	switch (kt_login_budget_plan(lg, e, false, NULL)) {
	case KT_RECHECK_NOW:
		log_info("login: %s: password did not match; checking %s with AWS", a->user,
			 e->name);
		kt_engine_check(lg->eng, e, KT_WHY_LOGIN);
		*res = park(lg, a, e, KT_WAIT_VERIFY_RECHECK, answer);
		return true;
	case KT_RECHECK_LATER:
		*res = park(lg, a, e, KT_WAIT_VERIFY_DEFER, answer);
		return true;
	case KT_RECHECK_NO:
		break;
	}
	return false;
}

enum kt_op_result kt_login_verify(struct kt_login *lg, const struct kt_request *r,
				  struct json_object **answer)
{
	struct attempt a = { .r = r, .peer = r->peer, .secret = "-" };
	const struct kt_peer *peer = r->peer;
	struct json_object *req = r->req;
	time_t now = r->now;
	const struct kt_login_cfg *l = NULL;
	struct kt_entry *e = NULL;
	struct json_object *pwo;
	const char *pw, *stage = NULL;
	enum kt_op_result res;
	char msg[400];
	size_t len;
	long wait;
	int rc;

	a.user = kt_json_str(req, "user");
	if (a.user == NULL || a.user[0] == '\0' ||
	    !json_object_object_get_ex(req, "password", &pwo) ||
	    !json_object_is_type(pwo, json_type_string)) {
		*answer = kt_proto_error(
			KT_PERR_BAD_REQUEST,
			"verify needs \"user\" (a non-empty string) and \"password\" (a string)");
		return KT_OP_ANSWER;
	}
	if (!kt_json_opt_str(req, "service", true, &a.service) ||
	    !kt_json_opt_str(req, "rhost", true, &a.rhost) ||
	    !kt_json_opt_str(req, "tty", true, &a.tty)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"service\", \"rhost\" and \"tty\" must be strings");
		return KT_OP_ANSWER;
	}
	pw = json_object_get_string(pwo);
	len = (size_t)json_object_get_string_len(pwo);
	/* A new request, or one woken for another reason: an offline check
	 * this connection started earlier answers nothing now. */
	if (r->waited != KT_WAIT_VERIFY_OFFLINE)
		kt_login_offline_detach(lg, r->conn_id);
	if (peer->uid != 0 && over_limit(lg, peer->uid, now, &wait)) {
		audit(&a, "throttled", NULL, NULL);
		*answer =
			kt_proto_error(KT_PERR_THROTTLED,
				       "too many failed passwords from uid %lu; try again in %ld s",
				       (unsigned long)peer->uid, wait);
		return KT_OP_ANSWER;
	}
	rc = kt_login_resolve(lg, a.user, &l, &e, msg, sizeof(msg));
	if (rc == -ENODATA) {
		/* Known not to exist in AWS: a wrong password like any other. */
		kt_login_budget_failed(lg, NULL);
		audit(&a, "unknown_user", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s", msg);
		return KT_OP_ANSWER;
	}
	if (rc < 0) {
		audit(&a, rc == -ENOENT ? "unknown_user" : "unavailable", NULL, NULL);
		*answer = kt_proto_error(rc == -ENOENT ? KT_PERR_NOT_FOUND : KT_PERR_UNAVAILABLE,
					 "%s", msg);
		return KT_OP_ANSWER;
	}
	a.secret = e->name;
	if (e->gone) {
		kt_login_budget_failed(lg, e);
		audit(&a, "unknown_user", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s no longer exists in AWS", e->name);
		return KT_OP_ANSWER;
	}
	if (r->waited == KT_WAIT_VERIFY_OFFLINE || e->cur.data == NULL ||
	    !kt_entry_servable(e, now, lg->cfg->max_stale))
		return without_value(lg, &a, l, e, pw, len, answer);
	rc = compare_cached(lg, e, l, pw, len, now, &stage, msg, sizeof(msg));
	if (rc < 0) {
		log_warn("login: %s", msg);
		audit(&a, "unavailable", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "%s", msg);
		return KT_OP_ANSWER;
	}
	if (rc == 0 && recheck(lg, &a, e, &res, answer))
		return res;
	*answer = verdict(lg, &a, e, rc == 1, stage, "cache", now);
	return KT_OP_ANSWER;
}

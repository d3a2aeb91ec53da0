/* Password checks for logins: the `verify` op. The mapping from accounts
 * to secrets is in login_map.c, the offline verifiers in login_offline.c.
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
#include "daemon.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "login.h"
#include "login_int.h"
#include "common/proto.h"
#include "common/secmem.h"

/* What an attempt's audit line says. */
struct attempt {
	const struct kt_peer *peer;
	const char *user, *service, *rhost, *tty;
	const char *secret;
};
int kt_login_init(struct kt_daemon *d)
{
	struct kt_login_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return -ENOMEM;
	if (getrandom(st->key, sizeof(st->key), 0) != (ssize_t)sizeof(st->key)) {
		free(st);
		return -EIO;
	}
	if (kt_login_budget_new(&st->budget) < 0) {
		kt_free_wiped(st, sizeof(*st));
		return -ENOMEM;
	}
	kt_login_read_login_defs(st, KT_LOGIN_DEFS);
	d->login = st;
	if (kt_login_offline_start(d) < 0) {
		kt_login_free(d);
		return -ENOMEM;
	}
	return 0;
}

void kt_login_free(struct kt_daemon *d)
{
	if (d->login == NULL)
		return;
	kt_login_offline_stop(d);
	kt_login_budget_free(d->login->budget);
	kt_free_wiped(d->login, sizeof(*d->login));
	d->login = NULL;
}

void kt_login_tick(struct kt_daemon *d)
{
	if (d->login != NULL)
		kt_login_budget_tick(d);
}

/* Compares through an HMAC under a random key, so the time taken says
 * nothing about where the two differ or how long the stored one is. An
 * empty password never matches. */
static bool same_password(const struct kt_login_state *st, const void *a, size_t alen,
			  const void *b, size_t blen)
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
static int compare_cached(const struct kt_login_state *st, const struct kt_entry *e,
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
	if (!kt_login_previous_in_grace(e, l, now) || (prev = kt_cache_value(e, e->prev_version)) == NULL)
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

static struct kt_login_fail_slot *fail_slot(struct kt_login_state *st, uid_t uid, time_t now)
{
	struct kt_login_fail_slot *oldest = &st->fails[0];

	for (size_t i = 0; i < KT_LOGIN_FAIL_SLOTS; i++) {
		if (st->fails[i].failures > 0 && st->fails[i].uid == uid)
			return &st->fails[i];
	}
	for (size_t i = 0; i < KT_LOGIN_FAIL_SLOTS; i++) {
		if (st->fails[i].failures == 0 || now - st->fails[i].since >= KT_LOGIN_NONROOT_WINDOW)
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
		log_info("login: user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld secret=%s "
			 "result=match stage=%s source=%s", user, service, rhost, tty,
			 (unsigned long)a->peer->uid, (long)a->peer->pid, a->secret, stage, source);
	else
		log_warn("login: user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld secret=%s "
			 "result=%s", user, service, rhost, tty, (unsigned long)a->peer->uid,
			 (long)a->peer->pid, a->secret, result);
}

/* The answer to a checked password, audited; failures of non-root
 * callers count towards their limit, and every failure towards the budget
 * of AWS calls (a match starts the secret's back-off over). */
static struct json_object *verdict(struct kt_daemon *d, const struct attempt *a,
				   const struct kt_entry *e, bool match, const char *stage,
				   const char *source, time_t now)
{
	struct json_object *o = json_object_new_object();

	if (match)
		kt_login_budget_reset(d, e);
	else
		kt_login_budget_failed(d, e);
	if (a->peer->uid != 0) {
		struct kt_login_fail_slot *s = fail_slot(d->login, a->peer->uid, now);

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

/* Whether a non-root caller used up its failures; *wait says for how long. */
static bool over_limit(struct kt_login_state *st, uid_t uid, time_t now, long *wait)
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

static bool opt_string(struct json_object *req, const char *key, const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null))
		return true;
	*out = kt_json_str(req, key);
	return *out != NULL;
}

static enum kt_op_result park(struct kt_daemon *d, struct kt_entry *e, uint64_t conn_id,
			      const struct kt_peer *peer, enum kt_wait_kind kind,
			      struct json_object *req, struct json_object **answer)
{
	if (kt_daemon_park(d, e, conn_id, peer, kind, req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

/* The answer to an offline check: rc 1 a match, 0 none, else why not. */
static enum kt_op_result offline_answer(struct kt_daemon *d, const struct attempt *a,
					struct kt_entry *e, int rc, const char *stage, const char *why,
					const char *msg, time_t now, struct json_object **answer)
{
	if (rc >= 0) {
		*answer = verdict(d, a, e, rc == 1, stage, "offline", now);
		return KT_OP_ANSWER;
	}
	audit(a, "unavailable", NULL, NULL);
	*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "%s: no value from AWS (%s); %s", e->name,
				 why != NULL ? why : e->failures > 0 ? e->last_error : "not fetched yet",
				 msg);
	return KT_OP_ANSWER;
}

/* No value in hand: wait for a fetch when one can start (the first time
 * round, within the budget of AWS calls), else answer from the offline
 * verifier: the request parks while the hashing thread compares, and is
 * handled again (waited KT_WAIT_VERIFY_OFFLINE) with the result. */
static enum kt_op_result without_value(struct kt_daemon *d, uint64_t conn_id, struct json_object *req,
				       const struct attempt *a, const struct kt_login_cfg *l,
				       struct kt_entry *e, const char *pw, size_t len, int waited,
				       time_t now, struct json_object **answer)
{
	const char *stage = NULL, *why = NULL;
	char msg[400];
	int rc;

	/* An offline check started answers this request, whatever else
	 * happened to the secret meanwhile. */
	if (waited == KT_WAIT_VERIFY_OFFLINE) {
		rc = kt_login_offline_result(d, e, conn_id, &stage, msg, sizeof(msg));
		if (rc == -EINPROGRESS)
			return park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_OFFLINE, req, answer);
		return offline_answer(d, a, e, rc, stage, NULL, msg, now, answer);
	}
	/* A job for the secret still runs (this request was woken early):
	 * its end answers. */
	if (e->in_flight)
		return park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_VALUE, req, answer);
	if (waited != KT_WAIT_VERIFY_VALUE && (e->failures == 0 || now >= e->next_check) &&
	    kt_login_budget_plan(d, e, true, &why) == KT_RECHECK_NOW) {
		kt_daemon_fetch_current(d, e);
		return park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_VALUE, req, answer);
	}
	/* Offline verifiers keep wall-clock times: they outlive the process. */
	rc = kt_login_offline_check(d, e, l, conn_id, a->peer->uid, pw, len, time(NULL), msg,
				    sizeof(msg));
	if (rc == 0)
		return park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_OFFLINE, req, answer);
	/* 1: the password cannot match, no check needed. */
	return offline_answer(d, a, e, rc == 1 ? 0 : rc, stage, why, msg, now, answer);
}

/* A password that did not match the value in hand: the user may already
 * type a new password that keyturnd has not seen, so it waits for a check
 * with AWS when one is allowed now or within a few seconds (see
 * login_budget.c); else the mismatch is answered at once. */
static bool recheck(struct kt_daemon *d, uint64_t conn_id, struct json_object *req,
		    const struct attempt *a, struct kt_entry *e, int waited,
		    enum kt_op_result *res, struct json_object **answer)
{
	bool deferred = kt_login_budget_deferred(d, e);

	if (waited == KT_WAIT_VERIFY_VALUE)
		return false;
	/* A job for the secret runs: its end answers (a check, or the fetch
	 * a check led to, tells whether the password changed). */
	if (e->in_flight) {
		*res = park(d, e, conn_id, a->peer,
			    deferred ? KT_WAIT_VERIFY_DEFER : KT_WAIT_VERIFY_RECHECK, req, answer);
		return true;
	}
	if (waited == KT_WAIT_VERIFY_DEFER && deferred) {
		*res = park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_DEFER, req, answer);
		return true;
	}
	if (waited != 0)
		return false;
	switch (kt_login_budget_plan(d, e, false, NULL)) {
	case KT_RECHECK_NOW:
		log_info("login: %s: password did not match; checking %s with AWS", a->user, e->name);
		kt_daemon_check(d, e);
		*res = park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_RECHECK, req, answer);
		return true;
	case KT_RECHECK_LATER:
		*res = park(d, e, conn_id, a->peer, KT_WAIT_VERIFY_DEFER, req, answer);
		return true;
	case KT_RECHECK_NO:
		break;
	}
	return false;
}

enum kt_op_result kt_login_verify(struct kt_daemon *d, uint64_t conn_id, const struct kt_peer *peer,
				  struct json_object *req, int waited, time_t now,
				  struct json_object **answer)
{
	struct attempt a = { .peer = peer, .secret = "-" };
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
	if (a.user == NULL || a.user[0] == '\0' || !json_object_object_get_ex(req, "password", &pwo) ||
	    !json_object_is_type(pwo, json_type_string)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "verify needs \"user\" (a non-empty string) and \"password\" (a string)");
		return KT_OP_ANSWER;
	}
	if (!opt_string(req, "service", &a.service) || !opt_string(req, "rhost", &a.rhost) ||
	    !opt_string(req, "tty", &a.tty)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"service\", \"rhost\" and \"tty\" must be strings");
		return KT_OP_ANSWER;
	}
	pw = json_object_get_string(pwo);
	len = (size_t)json_object_get_string_len(pwo);
	/* A new request, or one woken for another reason: an offline check
	 * this connection started earlier answers nothing now. */
	if (waited != KT_WAIT_VERIFY_OFFLINE)
		kt_login_offline_detach(d, conn_id);
	if (peer->uid != 0 && over_limit(d->login, peer->uid, now, &wait)) {
		audit(&a, "throttled", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_THROTTLED,
					 "too many failed passwords from uid %lu; try again in %ld s",
					 (unsigned long)peer->uid, wait);
		return KT_OP_ANSWER;
	}
	rc = kt_login_resolve(d, a.user, &l, &e, msg, sizeof(msg));
	if (rc == -ENODATA) {
		/* Known not to exist in AWS: a wrong password like any other. */
		kt_login_budget_failed(d, NULL);
		audit(&a, "unknown_user", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s", msg);
		return KT_OP_ANSWER;
	}
	if (rc < 0) {
		audit(&a, rc == -ENOENT ? "unknown_user" : "unavailable", NULL, NULL);
		*answer = kt_proto_error(rc == -ENOENT ? KT_PERR_NOT_FOUND : KT_PERR_UNAVAILABLE, "%s", msg);
		return KT_OP_ANSWER;
	}
	a.secret = e->name;
	if (e->gone) {
		kt_login_budget_failed(d, e);
		audit(&a, "unknown_user", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s no longer exists in AWS", e->name);
		return KT_OP_ANSWER;
	}
	if (waited == KT_WAIT_VERIFY_OFFLINE || e->cur.data == NULL ||
	    !kt_entry_servable(e, now, d->cfg->max_stale))
		return without_value(d, conn_id, req, &a, l, e, pw, len, waited, now, answer);
	rc = compare_cached(d->login, e, l, pw, len, now, &stage, msg, sizeof(msg));
	if (rc < 0) {
		log_warn("login: %s", msg);
		audit(&a, "unavailable", NULL, NULL);
		*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "%s", msg);
		return KT_OP_ANSWER;
	}
	if (rc == 0 && recheck(d, conn_id, req, &a, e, waited, &res, answer))
		return res;
	*answer = verdict(d, &a, e, rc == 1, stage, "cache", now);
	return KT_OP_ANSWER;
}

/* Offline verifiers kept in step with the values: written (hashed on the
 * hashing thread first) when a login's value arrives, refreshed when AWS
 * confirms it, removed when superseded or when their mapping or secret goes
 * away, and written again after a failure with a growing delay. offline.c
 * runs the hashing thread and hands the hashes that come back to
 * kt_login_offline_made (offline_int.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "engine.h"
#include "hasher.h"
#include "common/log.h"
#include "login.h"
#include "login_int.h"
#include "offline_int.h"
#include "common/secmem.h"
#include "verifier.h"

/* How often a confirmed value's offline verifiers are written again (so
 * their age says when AWS last confirmed them), at most. */
#define OFFLINE_REFRESH 3600
/* A verifier that could not be written is tried again after 10 s, then
 * twice as long each time, at most every 5 minutes (monotonic). */
#define OFFLINE_RETRY_FIRST 10
#define OFFLINE_RETRY_MAX 300

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Offline logins through e are unavailable from now (msg says why) until
 * a verifier is written: status shows it. After a failed write (failed),
 * kt_login_offline_tick tries again, sooner at first. */
static void unavailable(struct kt_login *lg, struct kt_entry *e, const char *msg, bool failed)
{
	time_t delay = OFFLINE_RETRY_FIRST;

	for (int i = 0; i < e->offline_tries && delay < OFFLINE_RETRY_MAX; i++)
		delay *= 2;
	if (delay > OFFLINE_RETRY_MAX)
		delay = OFFLINE_RETRY_MAX;
	if (e->offline_failed_at == 0) {
		e->offline_failed_at = time(NULL);
		lg->hasher->unwritten++;
	}
	snprintf(e->offline_error, sizeof(e->offline_error), "%s", msg);
	if (!failed)
		return;
	e->offline_tries++;
	e->offline_retry_at = mono_now() + delay;
	e->offline_written = 0;
}

/* The verifier of (secret id, key) could not be written for the value in
 * hand: the old one may hold a password that is no longer current, so it
 * goes at once (a login then needs AWS, never an outdated password). */
static void not_written(struct kt_login *lg, struct kt_entry *e, const char *user,
			const char *secret_id, const char *key, const char *why)
{
	int rc = kt_verifier_remove(lg->cfg->state_dir, secret_id, key);
	char msg[300];

	snprintf(msg, sizeof(msg), "offline verifier for %s not written: %s", user, why);
	unavailable(lg, e, msg, true);
	if (rc < 0)
		log_err("login: %s; removing the old one failed: %s; offline logins for %s are "
			"unavailable until a write succeeds (next try in %lld s)",
			msg, strerror(-rc), user, (long long)(e->offline_retry_at - mono_now()));
	else
		log_err("login: %s; the old one (if any) is removed: offline logins for %s are "
			"unavailable until a write succeeds (next try in %lld s)",
			msg, user, (long long)(e->offline_retry_at - mono_now()));
}

/* Removes the verifier of (e, l) for user when it holds a version other
 * than version (or cannot be read): that password was superseded. Unlink
 * needs no room on the disk, so this works when writing does not. */
static void drop_superseded(struct kt_login *lg, struct kt_entry *e, const struct kt_login_cfg *l,
			    const char *user, const char *version)
{
	struct kt_verifier v = { 0 };
	char err[512], msg[300];
	int rc = kt_verifier_read(lg->cfg->state_dir, e->cfg->id, l->key, &v, err, sizeof(err));

	if (rc == -ENOENT || (rc == 0 && kt_str_eq(v.cur_version, version)))
		goto out;
	rc = kt_verifier_remove(lg->cfg->state_dir, e->cfg->id, l->key);
	snprintf(msg, sizeof(msg),
		 "offline verifier for %s removed: AWSCURRENT of %s is now "
		 "version %s",
		 user, e->name, version);
	if (rc < 0)
		log_err("login: the offline verifier for %s holds a superseded version and cannot "
			"be removed: %s; offline checks refuse it",
			user, strerror(-rc));
	else
		log_info("login: %s; offline logins for %s wait for its new verifier", msg, user);
	unavailable(lg, e, msg, false);
out:
	kt_verifier_clear(&v);
}

void kt_login_offline_superseded(struct kt_login *lg, struct kt_entry *e, const char *version)
{
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (l->offline && user != NULL && kt_login_maps_entry(lg, l, user, e))
			drop_superseded(lg, e, l, user, version);
	}
}

static bool same_file(const struct kt_hash_job *j, void *arg)
{
	const struct kt_hash_job *n = arg;

	return j->kind == KT_HASH_MAKE && strcmp(j->v.secret_id, n->v.secret_id) == 0 &&
	       kt_str_eq(j->v.key, n->v.key);
}

static int copy_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = kt_strdup(src);
	return *dst != NULL ? 0 : -ENOMEM;
}

/* Queues the hashing of the offline verifier of (e, l) for account user;
 * the loop writes it when the hashes come back (kt_login_offline_made). A
 * job still queued for the same file is replaced by this newer one. */
static void write_verifier(struct kt_login *lg, struct kt_entry *e, const struct kt_login_cfg *l,
			   const char *user, time_t now)
{
	struct kt_login_hasher *lh = lg->hasher;
	struct kt_hash_job *j = kt_hash_job_new(KT_HASH_MAKE);
	const struct kt_value *prev;
	char msg[400];

	if (j == NULL || copy_str(&j->v.secret_id, e->cfg->id) < 0 ||
	    copy_str(&j->v.key, l->key) < 0 || copy_str(&j->v.user, user) < 0 ||
	    copy_str(&j->v.cur_version, e->cur.version_id) < 0) {
		kt_errf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	/* The old verifier goes now if it holds another version, not when
	 * the new one is written: that may fail, or never come. */
	drop_superseded(lg, e, l, user, e->cur.version_id);
	if (kt_login_password(e, &e->cur, l->key, &j->pw[0], &j->pwlen[0], msg, sizeof(msg)) < 0)
		goto fail;
	j->v.confirmed_at = e->checked_at != 0 ? e->checked_at : now;
	if (kt_login_previous_in_grace(e, l, kt_sched_now()) &&
	    (prev = kt_cache_value(e, e->prev_version)) != NULL &&
	    kt_login_password(e, prev, l->key, &j->pw[1], &j->pwlen[1], msg, sizeof(msg)) == 0) {
		if (copy_str(&j->v.prev_version, e->prev_version) < 0) {
			kt_errf(msg, sizeof(msg), "out of memory");
			goto fail;
		}
		/* rotated_at is on the schedule clock; the file keeps wall-clock time. */
		j->v.prev_until =
			kt_sched_to_wall(e->rotated_at + l->previous_grace, kt_sched_now(), now);
	}
	j->id = lh->next_id++;
	j->entry_id = e->id;
	kt_hash_job_free_list(kt_hasher_cancel(lh->h, same_file, j));
	kt_hasher_submit(lh->h, j);
	return;
fail:
	not_written(lg, e, user, e->cfg->id, l->key, msg);
	kt_hash_job_free(j);
}

/* Whether AWS said (at the last check) that AWSCURRENT is a version other
 * than the value in hand: no verifier is written for that value. */
static bool value_superseded(const struct kt_entry *e)
{
	const char *cur = kt_cache_version_for_stage(e, "AWSCURRENT");

	return cur != NULL && !kt_str_eq(cur, e->cur.version_id);
}

/* The mapping a verifier was hashed for, if it still stands. */
static const struct kt_login_cfg *mapping_of(struct kt_login *lg, const struct kt_entry *e,
					     const struct kt_verifier *v)
{
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];

		if (l->offline && kt_str_eq(l->key, v->key) &&
		    kt_str_eq(kt_login_mapping_user(l, e), v->user) &&
		    kt_login_maps_entry(lg, l, v->user, e))
			return l;
	}
	return NULL;
}

void kt_login_offline_made(struct kt_login *lg, struct kt_hash_job *j, time_t now)
{
	struct kt_entry *e = kt_cache_by_id(lg->cache, j->entry_id);
	char err[512];

	if (e == NULL || e->cur.data == NULL || value_superseded(e) ||
	    !kt_str_eq(e->cur.version_id, j->v.cur_version) || mapping_of(lg, e, &j->v) == NULL) {
		log_debug(
			"login: offline verifier for %s not written: its value or mapping changed",
			j->v.user);
		return;
	}
	if (j->rc < 0) {
		not_written(lg, e, j->v.user, j->v.secret_id, j->v.key, j->err);
		return;
	}
	if (kt_verifier_write(lg->cfg->state_dir, &j->v, err, sizeof(err)) < 0) {
		not_written(lg, e, j->v.user, j->v.secret_id, j->v.key, err);
		return;
	}
	e->offline_written = now;
	if (e->offline_failed_at != 0) {
		log_info("login: offline logins for %s are available again", j->v.user);
		e->offline_failed_at = 0;
		e->offline_tries = 0;
		e->offline_error[0] = '\0';
	}
	log_info("login: offline verifier for %s written (%s, version %s)", j->v.user, e->name,
		 j->v.cur_version);
}

/* Writes the offline verifiers of every mapping that leads to e. */
static void write_verifiers(struct kt_login *lg, struct kt_entry *e, time_t now)
{
	if (e->cur.data == NULL || value_superseded(e))
		return;
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (l->offline && user != NULL && kt_login_maps_entry(lg, l, user, e))
			write_verifier(lg, e, l, user, now);
	}
}

void kt_login_offline_tick(struct kt_login *lg)
{
	struct kt_login_hasher *lh = lg->hasher;
	time_t mono = mono_now(), now = kt_sched_now();
	size_t n = 0;

	/* A walk only while some verifier is unwritten; it also recounts
	 * them, since entries come and go with reloads. */
	if (lh == NULL || lh->unwritten == 0)
		return;
	for (size_t i = 0; i < lg->cache->n; i++) {
		struct kt_entry *e = lg->cache->entries[i];

		if (e->offline_failed_at == 0)
			continue;
		n++;
		if (e->cur.data != NULL && !e->gone && mono >= e->offline_retry_at) {
			/* The next failure (if any) sets the next try. */
			e->offline_retry_at = mono + OFFLINE_RETRY_MAX;
			write_verifiers(lg, e, now);
		}
	}
	lh->unwritten = n;
}

void kt_login_offline_changed(struct kt_login *lg, struct kt_entry *e, time_t now)
{
	write_verifiers(lg, e, now);
}

/* Whether the verifier of (e, l) holds e's current version: then a
 * confirmation only needs a new confirmed_at, not new hashes. */
static bool refresh_confirmed(struct kt_login *lg, struct kt_entry *e, const struct kt_login_cfg *l,
			      time_t now)
{
	struct kt_verifier v = { 0 };
	char err[512];
	bool done = false;

	if (kt_verifier_read(lg->cfg->state_dir, e->cfg->id, l->key, &v, err, sizeof(err)) == 0 &&
	    kt_str_eq(v.cur_version, e->cur.version_id)) {
		v.confirmed_at = e->checked_at != 0 ? e->checked_at : now;
		done = kt_verifier_write(lg->cfg->state_dir, &v, err, sizeof(err)) == 0;
		if (!done)
			log_warn("login: offline verifier not refreshed: %s", err);
	}
	kt_verifier_clear(&v);
	return done;
}

void kt_login_offline_confirmed(struct kt_login *lg, struct kt_entry *e, time_t now)
{
	long every = OFFLINE_REFRESH;
	bool stale = false;

	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		if (lg->cfg->logins[i].offline && lg->cfg->logins[i].offline_max_age / 2 < every)
			every = lg->cfg->logins[i].offline_max_age / 2;
	}
	if (e->cur.data == NULL || (e->offline_written != 0 && now - e->offline_written < every))
		return;
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (l->offline && user != NULL && kt_login_maps_entry(lg, l, user, e) &&
		    !refresh_confirmed(lg, e, l, now))
			stale = true;
	}
	if (stale)
		write_verifiers(lg, e, now);
	else
		e->offline_written = now;
}

static bool keep_other_secret(const struct kt_verifier *v, void *arg)
{
	return strcmp(v->secret_id, (const char *)arg) != 0;
}

void kt_login_offline_gone(struct kt_login *lg, struct kt_entry *e)
{
	int n = kt_verifier_prune(lg->cfg->state_dir, keep_other_secret, e->cfg->id);

	if (n > 0)
		log_info("login: %s is gone; %d offline verifier(s) removed", e->name, n);
}

/* A verifier stays while its account still maps, with offline = yes, to
 * the same secret and key. */
static bool keep_mapped(const struct kt_verifier *v, void *arg)
{
	const struct kt_login *lg = arg;
	const struct kt_login_cfg *l = v->user != NULL ? kt_config_login(lg->cfg, v->user) : NULL;

	return l != NULL && l->offline && kt_str_eq(l->key, v->key) &&
	       kt_login_maps_to(l, v->user, v->secret_id);
}

void kt_login_offline_prune(struct kt_login *lg)
{
	int n = kt_verifier_prune(lg->cfg->state_dir, keep_mapped, lg);

	if (n > 0)
		log_info("login: %d offline verifier(s) no mapping uses were removed", n);
}

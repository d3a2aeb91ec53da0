/* Offline verifiers: written when a login's value arrives or is confirmed,
 * removed when their mapping or secret goes away, and checked when no value
 * can be had. yescrypt costs about 80 ms of the loop thread per hash, so
 * a confirmation rewrites confirmed_at and keeps the hashes. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "daemon.h"
#include "log.h"
#include "login.h"
#include "login_int.h"
#include "secmem.h"
#include "verifier.h"

/* How often a confirmed value's offline verifiers are written again (so
 * their age says when AWS last confirmed them), at most. */
#define OFFLINE_REFRESH 3600

int kt_login_offline_check(struct kt_daemon *d, const struct kt_entry *e,
			   const struct kt_login_cfg *l, const char *pw, size_t len, time_t now,
			   const char **stage, char *msg, size_t msglen)
{
	struct kt_verifier v = { 0 };
	char err[512];
	int rc;

	if (!l->offline) {
		kt_errf(msg, msglen, "offline verifiers are off for this login");
		return -ENOENT;
	}
	/* crypt(3) takes C strings: a password holding a NUL can match nothing
	 * there (and must not reach it cut short). */
	if (memchr(pw, '\0', len) != NULL)
		return 0;
	rc = kt_verifier_read(d->cfg->state_dir, e->cfg->id, l->key, &v, err, sizeof(err));
	if (rc == -ENOENT) {
		kt_errf(msg, msglen, "no offline verifier is kept for %s", e->cfg->id);
		return rc;
	}
	if (rc < 0) {
		log_warn("login: %s", err);
		kt_errf(msg, msglen, "the offline verifier of %s is unusable", e->cfg->id);
		return rc;
	}
	if (now - v.confirmed_at > l->offline_max_age) {
		kt_errf(msg, msglen, "the offline verifier of %s is %lld s old (offline_max_age %ld)",
			e->cfg->id, (long long)(now - v.confirmed_at), l->offline_max_age);
		rc = -ESTALE;
		goto out;
	}
	rc = kt_verifier_check(v.cur_hash, pw, len);
	if (rc == 1) {
		*stage = "AWSCURRENT";
	} else if (rc == 0 && l->previous_grace > 0 && v.prev_version != NULL && now < v.prev_until) {
		rc = kt_verifier_check(v.prev_hash, pw, len);
		if (rc == 1)
			*stage = "AWSPREVIOUS";
	}
	if (rc < 0)
		kt_errf(msg, msglen, "the offline verifier of %s is unusable", e->cfg->id);
out:
	kt_verifier_clear(&v);
	return rc;
}

/* Writes the offline verifier of (e, l) for account user. */
static void write_verifier(struct kt_daemon *d, struct kt_entry *e, const struct kt_login_cfg *l,
			   const char *user, time_t now)
{
	struct kt_verifier v = { 0 };
	const struct kt_value *prev;
	char *pw = NULL, msg[400], err[512];
	size_t len = 0;

	if (kt_login_password(e, &e->cur, l->key, &pw, &len, msg, sizeof(msg)) < 0) {
		log_warn("login: offline verifier for %s not written: %s", user, msg);
		return;
	}
	v.secret_id = e->cfg->id;
	v.key = l->key;
	v.user = (char *)user;
	v.cur_version = e->cur.version_id;
	v.confirmed_at = e->last_ok != 0 ? e->last_ok : now;
	if (kt_verifier_hash(pw, len, v.cur_hash, err, sizeof(err)) < 0)
		goto fail;
	kt_free_wiped(pw, len);
	pw = NULL;
	if (kt_login_previous_in_grace(e, l, now) && (prev = kt_cache_value(e, e->prev_version)) != NULL &&
	    kt_login_password(e, prev, l->key, &pw, &len, msg, sizeof(msg)) == 0) {
		if (kt_verifier_hash(pw, len, v.prev_hash, err, sizeof(err)) < 0)
			goto fail;
		v.prev_version = e->prev_version;
		v.prev_until = e->rotated_at + l->previous_grace;
	}
	if (kt_verifier_write(d->cfg->state_dir, &v, err, sizeof(err)) < 0)
		goto fail;
	e->offline_written = now;
	log_info("login: offline verifier for %s written (%s, version %s)", user, e->name,
		 e->cur.version_id);
	goto out;
fail:
	log_warn("login: offline verifier for %s not written: %s", user, err);
out:
	kt_free_wiped(pw, len);
	kt_wipe(v.cur_hash, sizeof(v.cur_hash));
	kt_wipe(v.prev_hash, sizeof(v.prev_hash));
}

void kt_login_value_changed(struct kt_daemon *d, struct kt_entry *e, time_t now)
{
	if (e->cur.data == NULL)
		return;
	for (size_t i = 0; i < d->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &d->cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (l->offline && user != NULL && kt_login_maps_entry(d, l, user, e))
			write_verifier(d, e, l, user, now);
	}
}

/* Whether the verifier of (e, l) holds e's current version: then a
 * confirmation only needs a new confirmed_at, not new hashes (yescrypt
 * costs about 80 ms of the loop thread each). */
static bool refresh_confirmed(struct kt_daemon *d, struct kt_entry *e, const struct kt_login_cfg *l,
			      time_t now)
{
	struct kt_verifier v = { 0 };
	char err[512];
	bool done = false;

	if (kt_verifier_read(d->cfg->state_dir, e->cfg->id, l->key, &v, err, sizeof(err)) == 0 &&
	    kt_login_same_str(v.cur_version, e->cur.version_id)) {
		v.confirmed_at = e->last_ok != 0 ? e->last_ok : now;
		done = kt_verifier_write(d->cfg->state_dir, &v, err, sizeof(err)) == 0;
		if (!done)
			log_warn("login: offline verifier not refreshed: %s", err);
	}
	kt_verifier_clear(&v);
	return done;
}

void kt_login_confirmed(struct kt_daemon *d, struct kt_entry *e, time_t now)
{
	long every = OFFLINE_REFRESH;
	bool stale = false;

	for (size_t i = 0; i < d->cfg->nlogins; i++) {
		if (d->cfg->logins[i].offline && d->cfg->logins[i].offline_max_age / 2 < every)
			every = d->cfg->logins[i].offline_max_age / 2;
	}
	if (e->cur.data == NULL || (e->offline_written != 0 && now - e->offline_written < every))
		return;
	for (size_t i = 0; i < d->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &d->cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (l->offline && user != NULL && kt_login_maps_entry(d, l, user, e) &&
		    !refresh_confirmed(d, e, l, now))
			stale = true;
	}
	if (stale)
		kt_login_value_changed(d, e, now);
	else
		e->offline_written = now;
}

static bool keep_other_secret(const struct kt_verifier *v, void *arg)
{
	return strcmp(v->secret_id, (const char *)arg) != 0;
}

void kt_login_gone(struct kt_daemon *d, struct kt_entry *e)
{
	int n = kt_verifier_prune(d->cfg->state_dir, keep_other_secret, e->cfg->id);

	if (n > 0)
		log_info("login: %s is gone; %d offline verifier(s) removed", e->name, n);
}

/* A verifier stays while its account still maps, with offline = yes, to
 * the same secret and key. */
static bool keep_mapped(const struct kt_verifier *v, void *arg)
{
	const struct kt_config *cfg = arg;
	const struct kt_login_cfg *l = v->user != NULL ? kt_config_login(cfg, v->user) : NULL;

	return l != NULL && l->offline && kt_login_same_str(l->key, v->key) &&
	       kt_login_maps_to(l, v->user, v->secret_id);
}

void kt_login_offline_prune(struct kt_daemon *d)
{
	int n = kt_verifier_prune(d->cfg->state_dir, keep_mapped, d->cfg);

	if (n > 0)
		log_info("login: %d offline verifier(s) no mapping uses were removed", n);
}

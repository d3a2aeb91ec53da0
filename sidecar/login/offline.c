/* Offline verifiers: written when a login's value arrives or is confirmed,
 * removed when their mapping or secret goes away, and checked when no value
 * can be had. yescrypt (about 80 ms and 16 MiB each) runs on the hashing
 * thread (hasher.c), never on the loop: new verifiers are hashed there and
 * written by the loop when the hashes come back, and a verify that needs an
 * offline check parks until the thread has compared its password. A
 * confirmation rewrites confirmed_at and keeps the hashes. This file is the
 * loop's side of the thread and the check; the writing side is
 * offline_write.c (offline_int.h). */
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
#include "common/secmem.h"
#include "offline_int.h"
#include "verifier.h"

int kt_login_offline_start(struct kt_login *lg)
{
	struct kt_login_hasher *lh = calloc(1, sizeof(*lh));
	int rc;

	if (lh == NULL)
		return -ENOMEM;
	rc = kt_hasher_start(&lh->h);
	if (rc < 0) {
		free(lh);
		return rc;
	}
	lh->next_id = 1;
	lg->hasher = lh;
	return 0;
}

void kt_login_offline_stop(struct kt_login *lg)
{
	struct kt_login_hasher *lh = lg->hasher;

	if (lh == NULL)
		return;
	kt_hasher_stop(lh->h);
	free(lh);
	lg->hasher = NULL;
}

int kt_login_fd(struct kt_login *lg)
{
	return kt_hasher_fd(lg->hasher->h);
}

static struct pending *pending_by_job(struct kt_login_hasher *lh, uint64_t job_id)
{
	for (size_t i = 0; i < lh->nchecks; i++) {
		if (lh->checks[i].job_id == job_id)
			return &lh->checks[i];
	}
	return NULL;
}

static void pending_remove(struct kt_login_hasher *lh, struct pending *p)
{
	*p = lh->checks[--lh->nchecks];
}

void kt_login_offline_detach(struct kt_login *lg, uint64_t conn_id)
{
	struct kt_login_hasher *lh = lg->hasher;

	for (size_t i = 0; i < lh->nchecks; i++) {
		if (lh->checks[i].conn_id == conn_id)
			lh->checks[i].conn_id = 0;
	}
}

/* A queued check nobody waits for any more: its connection closed (and
 * kt_engine_drop_waiters forgot the request) or asked something else. */
static bool unwanted(const struct kt_hash_job *j, void *arg)
{
	struct kt_login *lg = arg;
	const struct pending *p;

	if (j->kind != KT_HASH_CHECK)
		return false;
	p = pending_by_job(lg->hasher, j->id);
	return p == NULL || p->conn_id == 0 ||
	       !kt_engine_waits(lg->eng, p->conn_id, KT_WAIT_VERIFY_OFFLINE);
}

static size_t checks_of(const struct kt_login_hasher *lh, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < lh->nchecks; i++)
		n += lh->checks[i].uid == uid;
	return n;
}

/* Whether uid may queue another check: KT_LOGIN_OFFLINE_CHECKS for every
 * caller together, KT_LOGIN_OFFLINE_PER_UID for each uid but root. When
 * full, the checks nobody waits for are dropped from the queue first. */
static bool room_for(struct kt_login *lg, uid_t uid)
{
	struct kt_login_hasher *lh = lg->hasher;
	struct kt_hash_job *gone, *next;

	for (int pass = 0; pass < 2; pass++) {
		if (lh->nchecks < KT_LOGIN_OFFLINE_CHECKS &&
		    (uid == 0 || checks_of(lh, uid) < KT_LOGIN_OFFLINE_PER_UID))
			return true;
		if (pass == 1)
			break;
		for (gone = kt_hasher_cancel(lh->h, unwanted, lg); gone != NULL; gone = next) {
			struct pending *p = pending_by_job(lh, gone->id);

			next = gone->next;
			if (p != NULL)
				pending_remove(lh, p);
			kt_hash_job_free(gone);
		}
	}
	return false;
}

int kt_login_offline_check(struct kt_login *lg, const struct kt_entry *e,
			   const struct kt_login_cfg *l, uint64_t conn_id, uid_t uid,
			   const char *pw, size_t len, time_t now, char *msg, size_t msglen)
{
	struct kt_login_hasher *lh = lg->hasher;
	struct kt_hash_job *j = NULL;
	const char *cur;
	char err[512];
	int rc;

	if (!l->offline) {
		kt_errf(msg, msglen, "offline verifiers are off for this login");
		return -ENOENT;
	}
	/* crypt(3) takes C strings: a password holding a NUL can match nothing
	 * there (and must not reach it cut short). */
	if (memchr(pw, '\0', len) != NULL)
		return 1;
	if (!room_for(lg, uid)) {
		kt_errf(msg, msglen,
			"busy: %zu offline checks wait already (at most %d, and %d for "
			"each uid but root)",
			lh->nchecks, KT_LOGIN_OFFLINE_CHECKS, KT_LOGIN_OFFLINE_PER_UID);
		return -EBUSY;
	}
	j = kt_hash_job_new(KT_HASH_CHECK);
	if (j == NULL) {
		kt_errf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	rc = kt_verifier_read(lg->cfg->state_dir, e->cfg->id, l->key, &j->v, err, sizeof(err));
	if (rc == -ENOENT) {
		kt_errf(msg, msglen, "no offline verifier is kept for %s", e->cfg->id);
		goto out;
	}
	if (rc < 0) {
		log_warn("login: %s", err);
		kt_errf(msg, msglen, "the offline verifier of %s is unusable", e->cfg->id);
		goto out;
	}
	/* Never a value this daemon has seen superseded, even when removing
	 * its file failed (kt_login_superseded). */
	cur = kt_cache_version_for_stage(e, "AWSCURRENT");
	if (cur == NULL)
		cur = e->cur.version_id;
	if (cur != NULL && !kt_str_eq(cur, j->v.cur_version)) {
		kt_errf(msg, msglen,
			"the offline verifier of %s holds version %s, no longer AWSCURRENT",
			e->cfg->id, j->v.cur_version != NULL ? j->v.cur_version : "(none)");
		rc = -ESTALE;
		goto out;
	}
	if (now - j->v.confirmed_at > l->offline_max_age) {
		kt_errf(msg, msglen,
			"the offline verifier of %s is %lld s old (offline_max_age %ld)",
			e->cfg->id, (long long)(now - j->v.confirmed_at), l->offline_max_age);
		rc = -ESTALE;
		goto out;
	}
	j->pw[0] = kt_memdup(pw, len);
	if (j->pw[0] == NULL && len > 0) {
		kt_errf(msg, msglen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	j->pwlen[0] = len;
	j->check_prev = l->previous_grace > 0 && j->v.prev_version != NULL && now < j->v.prev_until;
	j->id = lh->next_id++;
	j->conn_id = conn_id;
	j->entry_id = e->id;
	j->uid = uid;
	/* An earlier check of this connection answers nothing now. */
	kt_login_offline_detach(lg, conn_id);
	lh->checks[lh->nchecks++] = (struct pending){ j->id, conn_id, uid };
	kt_hasher_submit(lh->h, j);
	j = NULL;
	rc = 0;
out:
	kt_hash_job_free(j);
	return rc;
}

int kt_login_offline_result(struct kt_login *lg, const struct kt_entry *e, uint64_t conn_id,
			    const char **stage, char *msg, size_t msglen)
{
	struct kt_login_hasher *lh = lg->hasher;
	const struct kt_hash_job *j = lh->answering;

	if (j == NULL || j->conn_id != conn_id) {
		for (size_t i = 0; i < lh->nchecks; i++) {
			if (lh->checks[i].conn_id == conn_id)
				return -EINPROGRESS;
		}
		kt_errf(msg, msglen, "the offline check of %s was lost", e->cfg->id);
		return -EIO;
	}
	if (j->rc < 0) {
		kt_errf(msg, msglen, "the offline verifier of %s is unusable", e->cfg->id);
		return j->rc;
	}
	if (j->rc > 0)
		*stage = j->rc == 1 ? "AWSCURRENT" : "AWSPREVIOUS";
	return j->rc > 0 ? 1 : 0;
}

void kt_login_hashed(struct kt_login *lg)
{
	struct kt_login_hasher *lh = lg->hasher;
	struct kt_hash_job *j = kt_hasher_take_done(lh->h), *next;
	time_t now = time(NULL);

	for (; j != NULL; j = next) {
		struct pending *p;
		uint64_t conn_id;

		next = j->next;
		if (j->kind == KT_HASH_MAKE) {
			kt_login_offline_made(lg, j, now);
		} else if ((p = pending_by_job(lh, j->id)) != NULL) {
			conn_id = p->conn_id;
			pending_remove(lh, p);
			/* The request that waits is handled again and takes the
			 * result (kt_login_offline_result). A connection that went
			 * away has no parked request: nothing is answered. */
			if (conn_id != 0) {
				lh->answering = j;
				kt_engine_resume_conn(lg->eng, conn_id, KT_WAIT_VERIFY_OFFLINE);
				lh->answering = NULL;
			}
		}
		kt_hash_job_free(j);
	}
}

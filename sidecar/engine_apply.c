/* The engine's side of finished jobs: what an answer from AWS (or a
 * failure) does to a cache entry, its schedule and back-off, the throttle,
 * and the news told; then the entry's waiters are resumed. */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "engine_int.h"

static void entry_failed(struct kt_engine *eng, struct kt_entry *e, const struct aws_error *err,
			 time_t now)
{
	if (e->failures++ == 0)
		kt_engine_tell(eng, KT_NEWS_FAILED, e, NULL);
	snprintf(e->last_error, sizeof(e->last_error), "%s (%.64s): %.300s",
		 aws_errc_name(err->code), err->type, err->message);
	e->last_aws_code = err->code;
	snprintf(e->last_aws_type, sizeof(e->last_aws_type), "%.63s", err->type);
	e->last_aws_status = err->http_status;
	e->last_error_at = kt_engine_wall_now(eng);
	e->next_check = kt_sched_backoff(&eng->sched, e->failures, now, kt_engine_rnd(eng));
	kt_engine_note_error(eng, e->name, "%s", e->last_error);
	log_warn("%s: %s; next attempt in %lld s", e->name, e->last_error,
		 (long long)(e->next_check - now));
}

/* AWS throttles: every call waits, and longer each time. Once per answer,
 * however many secrets it was about (a batch holds twenty). */
static void throttled(struct kt_engine *eng, const struct aws_error *err, time_t now)
{
	if (err->code != AWS_ERR_THROTTLED)
		return;
	eng->throttle_failures++;
	eng->throttled_until =
		kt_sched_backoff(&eng->sched, eng->throttle_failures, now, kt_engine_rnd(eng));
	log_warn("AWS is throttling keyturnd: no calls for %lld s",
		 (long long)(eng->throttled_until - now));
}

/* AWS says the secret does not exist or is deleted: told once, however many
 * checks say it again. */
static void entry_gone(struct kt_engine *eng, struct kt_entry *e, const char *why, time_t now)
{
	bool news = !e->gone;

	if (news)
		log_warn("%s: %s; its cached values are wiped", e->name, why);
	e->gone = true;
	kt_cache_forget(e);
	e->failures = 0;
	e->last_ok = now;
	e->checked_at = kt_engine_wall_now(eng);
	snprintf(e->last_error, sizeof(e->last_error), "%s", why);
	e->last_aws_code = AWS_ERR_NOT_FOUND;
	snprintf(e->last_aws_type, sizeof(e->last_aws_type), "ResourceNotFoundException");
	e->last_aws_status = 400;
	kt_engine_note_error(eng, e->name, "%s", why);
	e->next_check = kt_sched_next_check(&eng->sched, &e->rot, now, kt_engine_rnd(eng));
	if (news)
		kt_engine_tell(eng, KT_NEWS_GONE, e, NULL);
}

/* No room in locked memory for a fetched value (the cache logged why and
 * set last_error): back off as after a failed fetch, so that waiting
 * callers get an error instead of the same value fetched again at once. */
static void entry_refused(struct kt_engine *eng, struct kt_entry *e, time_t now)
{
	if (e->failures++ == 0)
		kt_engine_tell(eng, KT_NEWS_FAILED, e, NULL);
	e->next_check = kt_sched_backoff(&eng->sched, e->failures, now, kt_engine_rnd(eng));
	kt_engine_note_error(eng, e->name, "%s", e->last_error);
}

static void entry_ok(struct kt_engine *eng, struct kt_entry *e, time_t now)
{
	bool recovered = e->failures > 0;

	e->failures = 0;
	e->last_ok = now;
	e->checked_at = kt_engine_wall_now(eng);
	e->gone = false;
	e->last_aws_code = AWS_OK;
	eng->throttle_failures = 0;
	if (recovered)
		kt_engine_tell(eng, KT_NEWS_RECOVERED, e, NULL);
}

/* Whether taking v as AWSCURRENT moves it from a value in hand to another
 * version (the first value, or the same version again, does not). */
static bool moves_current(const struct kt_entry *e, const struct sm_value *v)
{
	return e->cur.data != NULL && e->cur.version_id != NULL && v->version_id != NULL &&
	       strcmp(e->cur.version_id, v->version_id) != 0;
}

/* A fetched value became AWSCURRENT (moved: from another version in hand).
 * If a check had seen AWSCURRENT move before this fetch could be made, the
 * rotation dates from then: the old value's previous_grace started when it
 * was superseded, not now. */
static void value_current(struct kt_engine *eng, struct kt_entry *e, time_t now, bool first,
			  bool moved)
{
	if (moved)
		e->version_changes++;
	if (e->superseded && e->rotated_at != 0 && e->superseded_at < e->rotated_at)
		e->rotated_at = e->superseded_at;
	e->superseded = false;
	e->superseded_by[0] = '\0';
	e->fetch_alone = false;
	entry_ok(eng, e, now);
	/* The first value arrived: check rotation details soon, then on
	 * schedule. */
	if (first && e->stages_map == NULL)
		e->next_check = kt_sched_first_check(&eng->sched, now, kt_engine_rnd(eng));
	kt_engine_tell(eng, KT_NEWS_CHANGED, e, e->cur.version_id);
}

static void batch_done(struct kt_engine *eng, struct kt_job *job, time_t now)
{
	/* Without BatchGetSecretValue permission, fetch one by one: every
	 * secret of a denied batch is due again now, none has failed. */
	bool denied = job->rc < 0 && job->err.code == AWS_ERR_ACCESS_DENIED;

	if (denied && !eng->batch_denied) {
		log_info("BatchGetSecretValue is denied; fetching secrets one by one");
		eng->batch_denied = true;
	}
	/* Before the secrets, whose waiters are answered "throttled" then. */
	if (job->rc < 0)
		throttled(eng, &job->err, now);
	for (size_t i = 0; job->rc == 0 && i < job->batch.nerrors; i++) {
		if (job->batch.errors[i].err.code == AWS_ERR_THROTTLED) {
			throttled(eng, &job->batch.errors[i].err, now);
			break;
		}
	}
	for (size_t k = 0; k < eng->cache.n; k++) {
		struct kt_entry *e = eng->cache.entries[k];
		bool mine = false, answered = false;

		for (size_t i = 0; i < job->nids && !mine; i++)
			mine = e->in_flight && strcmp(e->cfg->id, job->ids[i]) == 0;
		if (!mine)
			continue;
		e->in_flight = false;
		if (job->rc < 0) {
			if (denied)
				e->next_check = now;
			else
				entry_failed(eng, e, &job->err, now);
			kt_engine_resume_id(eng, e->id, e, job);
			continue;
		}
		for (size_t i = 0; i < job->batch.nvalues && !answered; i++) {
			struct sm_value *v = &job->batch.values[i];
			bool moved;

			if (v->data == NULL ||
			    (strcmp(e->cfg->id, v->name) != 0 && strcmp(e->cfg->id, v->arn) != 0))
				continue;
			moved = moves_current(e, v);
			answered = true;
			if (kt_cache_set_current(e, v, now) < 0)
				entry_refused(eng, e, now);
			else
				value_current(eng, e, now, true, moved);
		}
		for (size_t i = 0; i < job->batch.nerrors && !answered; i++) {
			if (strcmp(e->cfg->id, job->batch.errors[i].secret_id) != 0)
				continue;
			if (job->batch.errors[i].err.code == AWS_ERR_NOT_FOUND)
				entry_gone(eng, e, "the secret does not exist in AWS", now);
			else
				entry_failed(eng, e, &job->batch.errors[i].err, now);
			answered = true;
		}
		/* Not in the answer at all: ask for it on its own. */
		if (!answered) {
			e->fetch_alone = true;
			e->next_check = now;
		}
		kt_engine_resume_id(eng, e->id, e, NULL);
	}
}

static void check_done(struct kt_engine *eng, struct kt_entry *e, struct kt_job *job, time_t now)
{
	const char *cur;
	int failures;

	if (job->rc < 0) {
		e->in_flight = false;
		if (job->err.code == AWS_ERR_NOT_FOUND)
			entry_gone(eng, e, "the secret does not exist in AWS", now);
		else
			entry_failed(eng, e, &job->err, now);
		throttled(eng, &job->err, now);
		kt_engine_resume_id(eng, e->id, e, job);
		return;
	}
	/* While AWSCURRENT is a version that could not be fetched, a check that
	 * works does not end the back-off: the fetch it leads to fails again. */
	failures = e->failures;
	e->rot.enabled = job->desc.rotation_enabled;
	e->rot.rotation_date = job->desc.next_rotation;
	kt_sched_anchor(&e->rot, now, kt_engine_wall_now(eng));
	e->rot.schedule_days = job->desc.rotation_days;
	e->rot.window_s = 0;
	if (job->desc.rotation_duration != NULL &&
	    kt_sched_parse_duration(job->desc.rotation_duration, &e->rot.window_s) < 0)
		e->rot.window_s = 0;
	e->next_check = kt_sched_next_check(&eng->sched, &e->rot, now, kt_engine_rnd(eng));
	if (job->desc.deleted != 0) {
		e->in_flight = false;
		eng->throttle_failures = 0;
		entry_gone(eng, e, "the secret is scheduled for deletion in AWS", now);
		kt_engine_resume_id(eng, e->id, e, job);
		return;
	}
	kt_cache_set_stages(e, &job->desc);
	cur = kt_cache_version_for_stage(e, "AWSCURRENT");
	/* Only a moved AWSCURRENT costs a GetSecretValue, by VersionId. */
	if (cur != NULL && (e->cur.version_id == NULL || strcmp(cur, e->cur.version_id) != 0)) {
		/* The value in hand is superseded from this moment: stale, and
		 * served for max_stale from now at most, whatever later checks
		 * say, until the new version is fetched. */
		if (e->cur.data != NULL && !e->superseded) {
			entry_ok(eng, e, now);
			e->superseded = true;
			e->superseded_at = now;
		} else if (e->superseded) {
			/* Still failing to fetch it: the failure count stays. */
			e->last_ok = now;
			e->checked_at = kt_engine_wall_now(eng);
			e->gone = false;
			e->failures = failures;
			eng->throttle_failures = 0;
		} else {
			entry_ok(eng, e, now);
		}
		/* Told once per move: again only when AWSCURRENT moves on to
		 * yet another version before this one could be fetched. */
		if (e->superseded && strcmp(cur, e->superseded_by) != 0) {
			snprintf(e->superseded_by, sizeof(e->superseded_by), "%s", cur);
			kt_engine_tell(eng, KT_NEWS_SUPERSEDED, e, cur);
		}
		if (eng->stopping) {
			e->in_flight = false;
			kt_engine_resume_id(eng, e->id, e, job);
			return;
		}
		log_info("%s: AWSCURRENT is now version %s; fetching it", e->name, cur);
		kt_engine_submit_for(eng, e, KT_JOB_GET, PURPOSE_CURRENT, cur, NULL,
				     KT_WHY_SCHEDULE);
		return;
	}
	entry_ok(eng, e, now);
	/* AWSCURRENT is the version in hand again (a rotation undone). */
	e->superseded = false;
	e->superseded_by[0] = '\0';
	e->in_flight = false;
	kt_engine_tell(eng, KT_NEWS_CONFIRMED, e, e->cur.version_id);
	kt_engine_resume_id(eng, e->id, e, job);
}

static void get_done(struct kt_engine *eng, struct kt_entry *e, struct kt_job *job, time_t now)
{
	e->in_flight = false;
	if (job->purpose == PURPOSE_VERSION) {
		if (job->rc == 0)
			kt_cache_add_other(e, &job->value, now);
		kt_engine_resume_id(eng, e->id, e, job);
		return;
	}
	if (job->rc < 0) {
		if (job->err.code == AWS_ERR_NOT_FOUND && job->version_id == NULL)
			entry_gone(eng, e, "the secret does not exist in AWS", now);
		else
			entry_failed(eng, e, &job->err, now);
		throttled(eng, &job->err, now);
	} else {
		bool moved = moves_current(e, &job->value);

		if (kt_cache_set_current(e, &job->value, now) < 0)
			entry_refused(eng, e, now);
		else
			value_current(eng, e, now, job->version_id == NULL, moved);
	}
	kt_engine_resume_id(eng, e->id, e, job);
}

void kt_engine_jobs_done(struct kt_engine *eng, struct kt_job *job)
{
	time_t now = kt_engine_sched_now(eng);
	bool batches = false;
	struct kt_job *next;

	for (; job != NULL; job = next) {
		struct kt_entry *e;

		next = job->next;
		if (job->purpose == PURPOSE_PREFETCH) {
			batch_done(eng, job, now);
			batches = true;
		} else if ((e = kt_cache_by_id(&eng->cache, job->tag)) == NULL) {
			/* The section was removed by a reload while AWS answered. */
			kt_engine_resume_id(eng, job->tag, NULL, job);
		} else if (strcmp(job->ids[0], e->cfg->id) != 0) {
			/* A reload made the section name another secret while AWS
			 * answered about the old one (the cache cleared in_flight
			 * then): the answer is not this entry's. */
		} else if (job->kind == KT_JOB_DESCRIBE) {
			check_done(eng, e, job, now);
		} else {
			get_done(eng, e, job, now);
		}
		kt_job_free(job);
	}
	/* A batch answer is parsed in a worker's malloc arena and freed here;
	 * hand those pages back rather than keep them for the daemon's life. */
	if (batches)
		malloc_trim(0);
	/* Room in the queue again for background work that was left due. */
	if (eng->sched_more)
		kt_engine_schedule(eng, now);
}

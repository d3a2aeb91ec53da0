/* keyturnd's engine: the cache and the decisions about AWS calls for it
 * (see engine.h). Jobs go out through the backend and come back through
 * kt_engine_jobs_done(); requests wait on the parked list; what changed is
 * told to subscribers. Nothing here calls up into a front door. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/kt_json.h"
#include "common/log.h"
#include "engine_int.h"

/* Background work (checks, first fetches) queued or running per worker at
 * most, so that a caller's own fetch never waits behind more than that. */
#define SCHED_JOBS_PER_WORKER 2

/* --- clocks ------------------------------------------------------------- */

time_t kt_engine_sched_now(const struct kt_engine *eng)
{
	return eng->clock.sched_now != NULL ? eng->clock.sched_now(eng->clock.ctx) : kt_sched_now();
}

time_t kt_engine_wall_now(const struct kt_engine *eng)
{
	return eng->clock.wall_now != NULL ? eng->clock.wall_now(eng->clock.ctx) : time(NULL);
}

int64_t kt_engine_ms_now(const struct kt_engine *eng)
{
	struct timespec ts;

	if (eng->clock.ms_now != NULL)
		return eng->clock.ms_now(eng->clock.ctx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t kt_engine_rnd(const struct kt_engine *eng)
{
	uint32_t r = 0;

	if (eng->clock.rnd != NULL)
		return eng->clock.rnd(eng->clock.ctx);
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)random();
	return r;
}

/* --- life --------------------------------------------------------------- */

int kt_engine_new(const struct kt_config *cfg, const struct kt_engine_backend *backend,
		  const struct kt_engine_clock *clock, struct kt_engine **out)
{
	struct kt_engine *eng = calloc(1, sizeof(*eng));

	if (eng == NULL)
		return -ENOMEM;
	eng->cfg = cfg;
	eng->backend = *backend;
	if (clock != NULL)
		eng->clock = *clock;
	kt_cache_init(&eng->cache);
	eng->sched = kt_sched_cfg_from(cfg->check_interval, cfg->window_interval);
	*out = eng;
	return 0;
}

static void parked_free(struct kt_parked *p)
{
	kt_json_put_wiped(p->req);
	free(p);
}

void kt_engine_free(struct kt_engine *eng)
{
	if (eng == NULL)
		return;
	while (eng->parked != NULL) {
		struct kt_parked *p = eng->parked;

		eng->parked = p->next;
		parked_free(p);
	}
	kt_cache_free(&eng->cache);
	free(eng);
}

void kt_engine_on_resume(struct kt_engine *eng, kt_engine_resume_fn *fn, void *ctx)
{
	eng->resume_fn = fn;
	eng->resume_ctx = ctx;
}

int kt_engine_subscribe(struct kt_engine *eng, kt_engine_news_fn *fn, void *ctx)
{
	if (eng->nsubs == MAX_SUBSCRIBERS)
		return -ENOSPC;
	eng->subs[eng->nsubs].fn = fn;
	eng->subs[eng->nsubs].ctx = ctx;
	eng->nsubs++;
	return 0;
}

void kt_engine_tell(struct kt_engine *eng, enum kt_news what, struct kt_entry *e,
		    const char *version)
{
	for (size_t i = 0; i < eng->nsubs; i++)
		eng->subs[i].fn(eng->subs[i].ctx, what, e, version);
}

struct kt_cache *kt_engine_cache(struct kt_engine *eng)
{
	return &eng->cache;
}

bool kt_engine_stopping(const struct kt_engine *eng)
{
	return eng->stopping;
}

time_t kt_engine_throttled_until(const struct kt_engine *eng)
{
	return eng->throttled_until;
}

unsigned long kt_engine_jobs(const struct kt_engine *eng, enum kt_check_reason why)
{
	return (unsigned)why < KT_WHY_COUNT ? eng->jobs[why] : 0;
}

size_t kt_engine_unfetched(const struct kt_engine *eng)
{
	size_t waiting = 0;

	for (size_t i = 0; i < eng->cache.n; i++) {
		const struct kt_entry *e = eng->cache.entries[i];

		waiting += e->cur.data == NULL && e->failures == 0 && !e->gone;
	}
	return waiting;
}

void kt_engine_note_error(struct kt_engine *eng, const char *secret, const char *fmt, ...)
{
	size_t i = eng->error_next;
	va_list ap;

	snprintf(eng->errors[i].secret, sizeof(eng->errors[i].secret), "%s", secret);
	va_start(ap, fmt);
	vsnprintf(eng->errors[i].message, sizeof(eng->errors[i].message), fmt, ap);
	va_end(ap);
	eng->errors[i].at = kt_engine_wall_now(eng);
	eng->error_next = (i + 1) % KT_LAST_ERRORS;
}

void kt_engine_errors(const struct kt_engine *eng,
		      void (*fn)(void *ctx, const char *secret, const char *message, time_t at),
		      void *ctx)
{
	for (size_t k = 0; k < KT_LAST_ERRORS; k++) {
		size_t i = (eng->error_next + k) % KT_LAST_ERRORS;

		if (eng->errors[i].at != 0)
			fn(ctx, eng->errors[i].secret, eng->errors[i].message, eng->errors[i].at);
	}
}

/* --- jobs out ----------------------------------------------------------- */

static void submit(struct kt_engine *eng, struct kt_job *job, unsigned purpose,
		   enum kt_check_reason why)
{
	if (job == NULL) {
		log_err("out of memory: cannot queue an AWS call");
		return;
	}
	job->purpose = purpose;
	eng->jobs[why]++;
	eng->backend.submit(eng->backend.ctx, job);
}

void kt_engine_submit_for(struct kt_engine *eng, struct kt_entry *e, enum kt_job_kind kind,
			  unsigned purpose, const char *vid, const char *stage,
			  enum kt_check_reason why)
{
	const char *id = e->cfg->id;
	struct kt_job *job = kt_job_new(kind, e->id, &id, 1, vid, stage);

	/* Without memory for the job, nothing is in flight: the entry stays
	 * due and its waiters are answered by max_wait. */
	e->in_flight = job != NULL;
	submit(eng, job, purpose, why);
}

void kt_engine_fetch_current(struct kt_engine *eng, struct kt_entry *e, enum kt_check_reason why)
{
	if (!e->in_flight && !eng->stopping)
		kt_engine_submit_for(eng, e, KT_JOB_GET, PURPOSE_CURRENT, NULL, "AWSCURRENT", why);
}

void kt_engine_fetch_version(struct kt_engine *eng, struct kt_entry *e, const char *version_id,
			     const char *stage)
{
	if (!e->in_flight && !eng->stopping)
		kt_engine_submit_for(eng, e, KT_JOB_GET, PURPOSE_VERSION, version_id,
				     version_id != NULL ? NULL : stage, KT_WHY_READ);
}

void kt_engine_check(struct kt_engine *eng, struct kt_entry *e, enum kt_check_reason why)
{
	if (!e->in_flight && !eng->stopping)
		kt_engine_submit_for(eng, e, KT_JOB_DESCRIBE, PURPOSE_CHECK, NULL, NULL, why);
}

/* --- parked requests ---------------------------------------------------- */

int kt_engine_wait(struct kt_engine *eng, struct kt_entry *e, uint64_t conn_id,
		   const struct kt_peer *peer, enum kt_wait_kind kind, struct json_object *req)
{
	struct kt_parked *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	p->entry_id = e->id;
	p->conn_id = conn_id;
	p->kind = kind;
	p->peer = *peer;
	p->req = json_object_get(req);
	p->since_ms = kt_engine_ms_now(eng);
	p->next = eng->parked;
	eng->parked = p;
	return 0;
}

void kt_engine_drop_waiters(struct kt_engine *eng, uint64_t conn_id)
{
	struct kt_parked **pp = &eng->parked, *p;

	while ((p = *pp) != NULL) {
		if (p->conn_id == conn_id) {
			*pp = p->next;
			parked_free(p);
		} else {
			pp = &p->next;
		}
	}
}

bool kt_engine_has_waiter(const struct kt_engine *eng, uint64_t entry_id)
{
	for (const struct kt_parked *p = eng->parked; p != NULL; p = p->next) {
		if (p->entry_id == entry_id)
			return true;
	}
	return false;
}

bool kt_engine_waits(const struct kt_engine *eng, uint64_t conn_id, enum kt_wait_kind kind)
{
	for (const struct kt_parked *p = eng->parked; p != NULL; p = p->next) {
		if (p->conn_id == conn_id && p->kind == kind)
			return true;
	}
	return false;
}

/* Hands one request taken off the list back, and frees it. When the callee
 * parks it again, the new waiter's wait counts from when the request first
 * parked. */
static void resume_one(struct kt_engine *eng, struct kt_parked *p, struct kt_entry *e,
		       const struct kt_job *job, enum kt_resume_why why)
{
	eng->resume_fn(eng->resume_ctx, p, e, job, why);
	if (eng->parked != NULL && eng->parked->req == p->req)
		eng->parked->since_ms = p->since_ms;
	free(p);
}

void kt_engine_resume_conn(struct kt_engine *eng, uint64_t conn_id, enum kt_wait_kind kind)
{
	struct kt_parked **pp = &eng->parked, *p;

	while ((p = *pp) != NULL && (p->conn_id != conn_id || p->kind != kind))
		pp = &p->next;
	if (p == NULL)
		return;
	*pp = p->next;
	resume_one(eng, p, kt_cache_by_id(&eng->cache, p->entry_id), NULL, KT_RESUME_DONE);
}

/* Resumes every request waiting on entry_id (e is NULL when the entry is
 * gone: why is KT_RESUME_GONE then). */
void kt_engine_resume_id(struct kt_engine *eng, uint64_t entry_id, struct kt_entry *e,
			 const struct kt_job *job)
{
	struct kt_parked *mine = NULL, **pp = &eng->parked, *p;

	while ((p = *pp) != NULL) {
		if (p->entry_id == entry_id) {
			*pp = p->next;
			p->next = mine;
			mine = p;
		} else {
			pp = &p->next;
		}
	}
	while ((p = mine) != NULL) {
		mine = p->next;
		resume_one(eng, p, e, job, e != NULL ? KT_RESUME_DONE : KT_RESUME_GONE);
	}
}

void kt_engine_resume(struct kt_engine *eng, struct kt_entry *e)
{
	kt_engine_resume_id(eng, e->id, e, NULL);
}

/* Answers the gets and refreshes that have waited on AWS for max_wait
 * (default 3 s; the once-a-second tick makes that 3 to 4 s, inside
 * libkeyturn's default 5 s timeout): a slow or failing AWS (retries, a long
 * queue after a reload) must not outlast the caller's timeout, after which
 * the answer would be lost. The AWS call goes on and fills the cache for
 * the next try. */
static void expire_parked(struct kt_engine *eng)
{
	struct kt_parked **pp = &eng->parked, *p, *late = NULL;
	int64_t now = kt_engine_ms_now(eng), max_ms = (int64_t)eng->cfg->max_wait * 1000;

	while ((p = *pp) != NULL) {
		if ((p->kind == KT_WAIT_CURRENT || p->kind == KT_WAIT_VERSION ||
		     p->kind == KT_WAIT_REFRESH) &&
		    now - p->since_ms >= max_ms) {
			*pp = p->next;
			p->next = late;
			late = p;
		} else {
			pp = &p->next;
		}
	}
	while ((p = late) != NULL) {
		late = p->next;
		p->since_ms = now - p->since_ms; /* the wait, for the answer */
		eng->resume_fn(eng->resume_ctx, p, kt_cache_by_id(&eng->cache, p->entry_id), NULL,
			       KT_RESUME_EXPIRED);
		free(p);
	}
}

void kt_engine_stop(struct kt_engine *eng)
{
	eng->stopping = true;
	while (eng->parked != NULL) {
		struct kt_parked *p = eng->parked;

		eng->parked = p->next;
		eng->resume_fn(eng->resume_ctx, p, kt_cache_by_id(&eng->cache, p->entry_id), NULL,
			       KT_RESUME_STOPPING);
		free(p);
	}
}

/* --- the schedule ------------------------------------------------------- */

/* Submits one first-fetch batch. Without memory for the job, its secrets
 * are due again at the next turn rather than waiting on a job that never
 * runs. */
static void submit_batch(struct kt_engine *eng, struct kt_entry **batch, size_t n)
{
	const char *ids[SM_BATCH_MAX] = { NULL };
	struct kt_job *job;

	for (size_t i = 0; i < n; i++)
		ids[i] = batch[i]->cfg->id;
	job = kt_job_new(KT_JOB_BATCH_GET, 0, ids, n, NULL, NULL);
	for (size_t i = 0; job == NULL && i < n; i++)
		batch[i]->in_flight = false;
	submit(eng, job, PURPOSE_PREFETCH, KT_WHY_SCHEDULE);
}

/* Starts the checks and first fetches that are due. Secrets without a value
 * are fetched twenty at a time with BatchGetSecretValue where allowed.
 *
 * The workers' queue is first come, first served, so background work is
 * fed to it SCHED_JOBS_PER_WORKER per worker at a time: thousands of due
 * checks or first fetches (a start, a reload that adds sections) never
 * stand in front of a caller's own fetch for long. First fetches go before
 * checks (a secret without a value cannot be served at all), and what does
 * not fit waits for the next call: jobs_done calls again as jobs end. */
void kt_engine_schedule(struct kt_engine *eng, time_t now)
{
	struct kt_entry *batch[SM_BATCH_MAX];
	size_t nbatch = 0, room, busy;

	eng->sched_more = false;
	if (eng->throttled_until > now || eng->stopping)
		return;
	room = (size_t)eng->cfg->workers * SCHED_JOBS_PER_WORKER;
	busy = eng->backend.busy(eng->backend.ctx);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < eng->cache.n; i++) {
			struct kt_entry *e = eng->cache.entries[i];
			bool first = e->cur.data == NULL && !e->gone && e->stages_map == NULL;

			if (e->in_flight || now < e->next_check || first != (pass == 0))
				continue;
			if (busy >= room) {
				eng->sched_more = true;
				break;
			}
			if (!first) {
				kt_engine_check(eng, e, KT_WHY_SCHEDULE);
				busy++;
			} else if (eng->batch_denied || e->failures > 0 || e->fetch_alone) {
				kt_engine_fetch_current(eng, e, KT_WHY_SCHEDULE);
				busy++;
			} else {
				e->in_flight = true;
				batch[nbatch++] = e;
				if (nbatch == SM_BATCH_MAX) {
					submit_batch(eng, batch, nbatch);
					nbatch = 0;
					busy++;
				}
			}
		}
		if (nbatch > 0) {
			submit_batch(eng, batch, nbatch);
			nbatch = 0;
			busy++;
		}
	}
}

void kt_engine_tick(struct kt_engine *eng)
{
	kt_engine_schedule(eng, kt_engine_sched_now(eng));
	expire_parked(eng);
}

int kt_engine_configure(struct kt_engine *eng, const struct kt_config *cfg)
{
	if (kt_cache_sync(&eng->cache, cfg) < 0)
		return -ENOMEM;
	eng->cfg = cfg;
	eng->sched = kt_sched_cfg_from(eng->quiet_interval > 0 ? eng->quiet_interval
							       : cfg->check_interval,
				       cfg->window_interval);
	/* Requests waiting on removed sections are answered now. */
	for (;;) {
		struct kt_parked *p = eng->parked;

		while (p != NULL && kt_cache_by_id(&eng->cache, p->entry_id) != NULL)
			p = p->next;
		if (p == NULL)
			break;
		kt_engine_resume_id(eng, p->entry_id, NULL, NULL);
	}
	return 0;
}

void kt_engine_set_quiet_interval(struct kt_engine *eng, long interval)
{
	time_t now = kt_engine_sched_now(eng);

	eng->quiet_interval = interval;
	eng->sched = kt_sched_cfg_from(interval > 0 ? interval : eng->cfg->check_interval,
				       eng->cfg->window_interval);
	for (size_t i = 0; i < eng->cache.n; i++) {
		struct kt_entry *e = eng->cache.entries[i];

		if (!e->in_flight && e->failures == 0 &&
		    e->next_check > now + eng->sched.check_interval)
			e->next_check =
				kt_sched_next_check(&eng->sched, &e->rot, now, kt_engine_rnd(eng));
	}
}

void kt_engine_remove(struct kt_engine *eng, struct kt_entry *e)
{
	uint64_t id = e->id;

	kt_cache_remove(&eng->cache, e);
	kt_engine_resume_id(eng, id, NULL, NULL);
}

/* NextRotationDate is a wall-clock date: after a step of the wall clock,
 * each rotation window is anchored to the schedule clock anew, and a check
 * that the new anchor makes due sooner (a window now open, or opening
 * before the check) is brought forward. Checks are never put off by a step. */
void kt_engine_clock_stepped(struct kt_engine *eng, time_t step)
{
	time_t now = kt_engine_sched_now(eng), wall = kt_engine_wall_now(eng);
	size_t n = 0;

	for (size_t i = 0; i < eng->cache.n; i++) {
		struct kt_entry *e = eng->cache.entries[i];
		time_t next;

		if (e->rot.rotation_date == 0)
			continue;
		kt_sched_anchor(&e->rot, now, wall);
		n++;
		if (e->failures > 0)
			continue;
		next = kt_sched_next_check(&eng->sched, &e->rot, now, kt_engine_rnd(eng));
		if (next < e->next_check)
			e->next_check = next;
	}
	log_warn("the wall clock stepped by %+lld s; checks keep their schedule, %zu rotation "
		 "date(s) re-anchored",
		 (long long)step, n);
}

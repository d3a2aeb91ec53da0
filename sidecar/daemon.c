/* keyturnd's start-up and event loop. Start-up does what needs root (read
 * the configuration, bind the socket, make the state directory), drops to
 * the service user, then starts the AWS workers. The loop thread owns the
 * cache: it schedules checks, hands jobs to workers, takes their results and
 * answers requests that waited on them. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <limits.h>
#include <malloc.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "login.h"
#include "notify.h"
#include "ops.h"
#include "privdrop.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "server.h"

#define READY_WAIT 10      /* s to wait for the first fetches before READY=1 */
#define FIRST_CHECK_MIN 5  /* s: first DescribeSecret comes this soon ... */
#define FIRST_CHECK_SPAN 55 /* ... plus up to this much jitter */
/* Background work (checks, first fetches) queued or running per worker at
 * most, so that a caller's own fetch never waits behind more than that. */
#define SCHED_JOBS_PER_WORKER 2

static unsigned ev_signal = 1, ev_tick = 2, ev_workers = 3, ev_hasher = 4, ev_clock = 5;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)random();
	return r;
}

void kt_daemon_note_error(struct kt_daemon *d, const char *secret, const char *fmt, ...)
{
	size_t i = d->error_next;
	va_list ap;

	snprintf(d->errors[i].secret, sizeof(d->errors[i].secret), "%s", secret);
	va_start(ap, fmt);
	vsnprintf(d->errors[i].message, sizeof(d->errors[i].message), fmt, ap);
	va_end(ap);
	d->errors[i].at = time(NULL);
	d->error_next = (i + 1) % KT_LAST_ERRORS;
}

static void submit(struct kt_daemon *d, struct kt_job *job, unsigned purpose)
{
	if (job == NULL) {
		log_err("out of memory: cannot queue an AWS call");
		return;
	}
	job->purpose = purpose;
	d->aws_jobs++;
	kt_workers_submit(d->workers, job);
}

static void submit_for(struct kt_daemon *d, struct kt_entry *e, enum kt_job_kind kind,
		       unsigned purpose, const char *vid, const char *stage)
{
	const char *id = e->cfg->id;

	e->in_flight = true;
	submit(d, kt_job_new(kind, e->id, &id, 1, vid, stage), purpose);
}

void kt_daemon_fetch_current(struct kt_daemon *d, struct kt_entry *e)
{
	submit_for(d, e, KT_JOB_GET, PURPOSE_CURRENT, NULL, "AWSCURRENT");
}

void kt_daemon_fetch_version(struct kt_daemon *d, struct kt_entry *e, const char *version_id,
			     const char *stage)
{
	submit_for(d, e, KT_JOB_GET, PURPOSE_VERSION, version_id, version_id ? NULL : stage);
}

void kt_daemon_check(struct kt_daemon *d, struct kt_entry *e)
{
	submit_for(d, e, KT_JOB_DESCRIBE, PURPOSE_CHECK, NULL, NULL);
}

int kt_daemon_park(struct kt_daemon *d, struct kt_entry *e, uint64_t conn_id,
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
	p->since_ms = mono_ms();
	p->next = d->parked;
	d->parked = p;
	return 0;
}

void kt_daemon_drop_parked(struct kt_daemon *d, uint64_t conn_id)
{
	struct kt_parked **pp = &d->parked, *p;

	while ((p = *pp) != NULL) {
		if (p->conn_id == conn_id) {
			*pp = p->next;
			kt_json_put_wiped(p->req);
			free(p);
		} else {
			pp = &p->next;
		}
	}
}

/* Answers or re-parks one request taken off the list, and frees it. */
static void resume_one(struct kt_daemon *d, struct kt_parked *p, struct kt_entry *e,
		       const struct kt_job *job)
{
	struct json_object *answer = NULL;

	if (kt_ops_resume(d, p, e, job, &answer) == KT_OP_ANSWER) {
		kt_server_reply(d->server, p->conn_id, answer);
		kt_json_put_wiped(p->req);
	} else {
		/* Parked again: the new waiter holds the request now, and its
		 * wait counts from when the request first parked. */
		if (d->parked != NULL && d->parked->req == p->req)
			d->parked->since_ms = p->since_ms;
		json_object_put(p->req);
	}
	free(p);
}

void kt_daemon_resume_conn(struct kt_daemon *d, uint64_t conn_id, enum kt_wait_kind kind)
{
	struct kt_parked **pp = &d->parked, *p;

	while ((p = *pp) != NULL && (p->conn_id != conn_id || p->kind != kind))
		pp = &p->next;
	if (p == NULL)
		return;
	*pp = p->next;
	resume_one(d, p, kt_cache_by_id(&d->cache, p->entry_id), NULL);
}

/* Answers or re-parks every request waiting on entry_id (e may be NULL when
 * the entry is gone). */
static void resume(struct kt_daemon *d, uint64_t entry_id, struct kt_entry *e,
		   const struct kt_job *job)
{
	struct kt_parked *mine = NULL, **pp = &d->parked, *p;

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
		resume_one(d, p, e, job);
	}
}

void kt_daemon_resume(struct kt_daemon *d, struct kt_entry *e)
{
	resume(d, e->id, e, NULL);
}

static void entry_failed(struct kt_daemon *d, struct kt_entry *e, const struct aws_error *err,
			 time_t now)
{
	e->failures++;
	snprintf(e->last_error, sizeof(e->last_error), "%s (%.64s): %.300s",
		 aws_errc_name(err->code), err->type, err->message);
	e->last_error_at = time(NULL);
	e->next_check = kt_sched_backoff(&d->sched, e->failures, now, rnd32());
	kt_daemon_note_error(d, e->name, "%s", e->last_error);
	log_warn("%s: %s; next attempt in %lld s", e->name, e->last_error,
		 (long long)(e->next_check - now));
	if (err->code == AWS_ERR_THROTTLED) {
		d->throttle_failures++;
		d->throttled_until = kt_sched_backoff(&d->sched, d->throttle_failures, now, rnd32());
		log_warn("AWS is throttling keyturnd: no calls for %lld s",
			 (long long)(d->throttled_until - now));
	}
}

static void entry_gone(struct kt_daemon *d, struct kt_entry *e, const char *why, time_t now)
{
	if (!e->gone)
		log_warn("%s: %s; its cached values are wiped", e->name, why);
	e->gone = true;
	kt_cache_forget(e);
	e->failures = 0;
	e->last_ok = now;
	e->checked_at = time(NULL);
	snprintf(e->last_error, sizeof(e->last_error), "%s", why);
	kt_daemon_note_error(d, e->name, "%s", why);
	e->next_check = kt_sched_next_check(&d->sched, &e->rot, now, rnd32());
	kt_login_gone(d, e);
}

/* No room in locked memory for a fetched value (the cache logged why and
 * set last_error): back off as after a failed fetch, so that waiting
 * callers get an error instead of the same value fetched again at once. */
static void entry_refused(struct kt_daemon *d, struct kt_entry *e, time_t now)
{
	e->failures++;
	e->next_check = kt_sched_backoff(&d->sched, e->failures, now, rnd32());
	kt_daemon_note_error(d, e->name, "%s", e->last_error);
}

static void entry_ok(struct kt_daemon *d, struct kt_entry *e, time_t now)
{
	e->failures = 0;
	e->last_ok = now;
	e->checked_at = time(NULL);
	e->gone = false;
	d->throttle_failures = 0;
}

/* A fetched value became AWSCURRENT. If a check had seen AWSCURRENT move
 * before this fetch could be made, the rotation dates from then: the old
 * value's previous_grace started when it was superseded, not now. */
static void value_current(struct kt_entry *e)
{
	if (e->superseded && e->rotated_at != 0 && e->superseded_at < e->rotated_at)
		e->rotated_at = e->superseded_at;
	e->superseded = false;
}

/* The first value arrived: check rotation details soon (spread out, so a
 * fleet started together does not check together), never later than one
 * check_interval, then on schedule. */
static void first_check_soon(const struct kt_daemon *d, struct kt_entry *e, time_t now)
{
	time_t delay = FIRST_CHECK_MIN + (time_t)(rnd32() % FIRST_CHECK_SPAN);

	if (delay > d->cfg->check_interval)
		delay = d->cfg->check_interval;
	if (e->stages_map == NULL)
		e->next_check = now + delay;
}

static void batch_done(struct kt_daemon *d, struct kt_job *job, time_t now)
{
	for (size_t k = 0; k < d->cache.n; k++) {
		struct kt_entry *e = d->cache.entries[k];
		bool mine = false, answered = false;

		for (size_t i = 0; i < job->nids && !mine; i++)
			mine = e->in_flight && strcmp(e->cfg->id, job->ids[i]) == 0;
		if (!mine)
			continue;
		e->in_flight = false;
		if (job->rc < 0) {
			/* Without BatchGetSecretValue permission, fetch one by one. */
			if (job->err.code == AWS_ERR_ACCESS_DENIED && !d->batch_denied) {
				log_info("BatchGetSecretValue is denied; fetching secrets one by one");
				d->batch_denied = true;
				e->next_check = now;
			} else {
				entry_failed(d, e, &job->err, now);
			}
			resume(d, e->id, e, job);
			continue;
		}
		for (size_t i = 0; i < job->batch.nvalues && !answered; i++) {
			struct sm_value *v = &job->batch.values[i];

			if (v->data == NULL || (strcmp(e->cfg->id, v->name) != 0 &&
						strcmp(e->cfg->id, v->arn) != 0))
				continue;
			answered = true;
			if (kt_cache_set_current(e, v, now) < 0) {
				entry_refused(d, e, now);
				continue;
			}
			value_current(e);
			entry_ok(d, e, now);
			first_check_soon(d, e, now);
			kt_login_value_changed(d, e, time(NULL));
		}
		for (size_t i = 0; i < job->batch.nerrors && !answered; i++) {
			if (strcmp(e->cfg->id, job->batch.errors[i].secret_id) != 0)
				continue;
			if (job->batch.errors[i].err.code == AWS_ERR_NOT_FOUND)
				entry_gone(d, e, "the secret does not exist in AWS", now);
			else
				entry_failed(d, e, &job->batch.errors[i].err, now);
			answered = true;
		}
		/* Not in the answer at all: ask for it on its own. */
		if (!answered)
			e->next_check = now;
		resume(d, e->id, e, NULL);
	}
}

static void check_done(struct kt_daemon *d, struct kt_entry *e, struct kt_job *job, time_t now)
{
	const char *cur;
	int failures;

	if (job->rc < 0) {
		e->in_flight = false;
		if (job->err.code == AWS_ERR_NOT_FOUND)
			entry_gone(d, e, "the secret does not exist in AWS", now);
		else
			entry_failed(d, e, &job->err, now);
		resume(d, e->id, e, job);
		return;
	}
	/* While AWSCURRENT is a version that could not be fetched, a check that
	 * works does not end the back-off: the fetch it leads to fails again. */
	failures = e->failures;
	entry_ok(d, e, now);
	e->rot.enabled = job->desc.rotation_enabled;
	e->rot.rotation_date = job->desc.next_rotation;
	kt_sched_anchor(&e->rot, now, time(NULL));
	e->rot.schedule_days = job->desc.rotation_days;
	e->rot.window_s = 0;
	if (job->desc.rotation_duration != NULL &&
	    kt_sched_parse_duration(job->desc.rotation_duration, &e->rot.window_s) < 0)
		e->rot.window_s = 0;
	e->next_check = kt_sched_next_check(&d->sched, &e->rot, now, rnd32());
	if (job->desc.deleted != 0) {
		e->in_flight = false;
		entry_gone(d, e, "the secret is scheduled for deletion in AWS", now);
		resume(d, e->id, e, job);
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
			e->superseded = true;
			e->superseded_at = now;
		} else if (e->superseded) {
			e->failures = failures;
		}
		log_info("%s: AWSCURRENT is now version %s; fetching it", e->name, cur);
		kt_login_superseded(d, e, cur);
		submit_for(d, e, KT_JOB_GET, PURPOSE_CURRENT, cur, NULL);
		return;
	}
	/* AWSCURRENT is the version in hand again (a rotation undone). */
	e->superseded = false;
	e->in_flight = false;
	kt_login_confirmed(d, e, time(NULL));
	resume(d, e->id, e, job);
}

static void get_done(struct kt_daemon *d, struct kt_entry *e, struct kt_job *job, time_t now)
{
	e->in_flight = false;
	if (job->purpose == PURPOSE_VERSION) {
		if (job->rc == 0)
			kt_cache_add_other(e, &job->value, now);
		resume(d, e->id, e, job);
		return;
	}
	if (job->rc < 0) {
		if (job->err.code == AWS_ERR_NOT_FOUND && job->version_id == NULL)
			entry_gone(d, e, "the secret does not exist in AWS", now);
		else
			entry_failed(d, e, &job->err, now);
	} else if (kt_cache_set_current(e, &job->value, now) < 0) {
		entry_refused(d, e, now);
	} else {
		value_current(e);
		entry_ok(d, e, now);
		if (job->version_id == NULL)
			first_check_soon(d, e, now);
		kt_login_value_changed(d, e, time(NULL));
	}
	resume(d, e->id, e, job);
}

static void schedule(struct kt_daemon *d, time_t now);

static void jobs_done(struct kt_daemon *d)
{
	struct kt_job *job = kt_workers_take_done(d->workers), *next;
	time_t now = kt_sched_now();
	bool batches = false;

	for (; job != NULL; job = next) {
		struct kt_entry *e;

		next = job->next;
		if (job->purpose == PURPOSE_PREFETCH) {
			batch_done(d, job, now);
			batches = true;
		} else if ((e = kt_cache_by_id(&d->cache, job->tag)) == NULL) {
			/* The section was removed by a reload while AWS answered. */
			resume(d, job->tag, NULL, job);
		} else if (job->kind == KT_JOB_DESCRIBE) {
			check_done(d, e, job, now);
		} else {
			get_done(d, e, job, now);
		}
		kt_job_free(job);
	}
	/* A batch answer is parsed in a worker's malloc arena and freed here;
	 * hand those pages back rather than keep them for the daemon's life. */
	if (batches)
		malloc_trim(0);
	/* Room in the queue again for background work that was left due. */
	if (d->sched_more)
		schedule(d, now);
}

/* Submits one first-fetch batch. Without memory for the job, its secrets
 * are due again at the next turn rather than waiting on a job that never
 * runs. */
static void submit_batch(struct kt_daemon *d, struct kt_entry **batch, size_t n)
{
	const char *ids[SM_BATCH_MAX] = { NULL };
	struct kt_job *job;

	for (size_t i = 0; i < n; i++)
		ids[i] = batch[i]->cfg->id;
	job = kt_job_new(KT_JOB_BATCH_GET, 0, ids, n, NULL, NULL);
	for (size_t i = 0; job == NULL && i < n; i++)
		batch[i]->in_flight = false;
	submit(d, job, PURPOSE_PREFETCH);
}

/* Starts the checks and first fetches that are due. Secrets without a value
 * are fetched twenty at a time with BatchGetSecretValue where allowed.
 *
 * The workers' queue is first come, first served, so background work is
 * fed to it SCHED_JOBS_PER_WORKER per worker at a time: thousands of due
 * checks or first fetches (a start, a reload that adds sections) never
 * stand in front of a caller's own fetch for long. First fetches go before
 * checks (a secret without a value cannot be served at all), and what does
 * not fit waits for the next call: jobs_done() calls again as jobs end. */
static void schedule(struct kt_daemon *d, time_t now)
{
	struct kt_entry *batch[SM_BATCH_MAX];
	size_t nbatch = 0, room, busy;

	d->sched_more = false;
	if (d->throttled_until > now || d->stopping)
		return;
	room = (size_t)d->cfg->workers * SCHED_JOBS_PER_WORKER;
	busy = kt_workers_busy(d->workers);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < d->cache.n; i++) {
			struct kt_entry *e = d->cache.entries[i];
			bool first = e->cur.data == NULL && !e->gone && e->stages_map == NULL;

			if (e->in_flight || now < e->next_check || first != (pass == 0))
				continue;
			if (busy >= room) {
				d->sched_more = true;
				break;
			}
			if (!first) {
				kt_daemon_check(d, e);
				busy++;
			} else if (d->batch_denied || e->failures > 0) {
				kt_daemon_fetch_current(d, e);
				busy++;
			} else {
				e->in_flight = true;
				batch[nbatch++] = e;
				if (nbatch == SM_BATCH_MAX) {
					submit_batch(d, batch, nbatch);
					nbatch = 0;
					busy++;
				}
			}
		}
		if (nbatch > 0) {
			submit_batch(d, batch, nbatch);
			nbatch = 0;
			busy++;
		}
	}
}

static void maybe_ready(struct kt_daemon *d, time_t now)
{
	size_t waiting = 0;

	if (d->ready)
		return;
	for (size_t i = 0; i < d->cache.n; i++) {
		const struct kt_entry *e = d->cache.entries[i];

		waiting += e->cur.data == NULL && e->failures == 0 && !e->gone;
	}
	if (waiting > 0 && now < d->ready_deadline)
		return;
	d->ready = true;
	log_info("ready: %zu secrets configured, %zu not fetched yet", d->cache.n, waiting);
	kt_notify_ready(waiting == 0 ? "serving" : "serving; some secrets not fetched yet");
}

/* NextRotationDate is a wall-clock date: after a step of the wall clock,
 * each rotation window is anchored to the schedule clock anew, and a check
 * that the new anchor makes due sooner (a window now open, or opening
 * before the check) is brought forward. Checks are never put off by a step. */
static void reanchor(struct kt_daemon *d, time_t now, time_t step)
{
	time_t wall = time(NULL);
	size_t n = 0;

	for (size_t i = 0; i < d->cache.n; i++) {
		struct kt_entry *e = d->cache.entries[i];
		time_t next;

		if (e->rot.rotation_date == 0)
			continue;
		kt_sched_anchor(&e->rot, now, wall);
		n++;
		if (e->failures > 0)
			continue;
		next = kt_sched_next_check(&d->sched, &e->rot, now, rnd32());
		if (next < e->next_check)
			e->next_check = next;
	}
	log_warn("the wall clock stepped by %+lld s; checks keep their schedule, %zu rotation "
		 "date(s) re-anchored", (long long)step, n);
}

/* The wall clock is watched two ways: a CLOCK_REALTIME timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET is cancelled by the kernel at any settimeofday or
 * clock_settime (an NTP step, a VM's clock sync), and each tick compares the
 * wall clock with the schedule clock, which also sees what the timerfd
 * cannot (a resume from suspend, or a wall clock that only this process sees
 * differently, as under libfaketime). */
static void arm_clock_watch(struct kt_daemon *d)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	/* Far enough away never to fire; only the cancellation matters. */
	its.it_value.tv_sec = time(NULL) + 10L * 366 * 86400;
	if (timerfd_settime(d->clockfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		log_warn("the wall clock is watched once a second only: timerfd: %s", strerror(errno));
}

static void clock_watch(struct kt_daemon *d, bool cancelled)
{
	time_t now = kt_sched_now(), step = 0;
	uint64_t expirations;

	if (cancelled) {
		while (read(d->clockfd, &expirations, sizeof(expirations)) > 0)
			;
		arm_clock_watch(d);
	}
	if (kt_sched_clock_stepped(&d->clock_offset, now, time(NULL), &step))
		reanchor(d, now, step);
}

/* Answers the gets and refreshes that have waited on AWS for max_wait
 * (default 3 s; the once-a-second tick makes that 3 to 4 s, inside
 * libkeyturn's default 5 s timeout):
 * a slow or failing AWS (retries, a long queue after a reload) must not
 * outlast the caller's timeout, after which the answer would be lost. The
 * AWS call goes on and fills the cache for the next try. */
static void expire_parked(struct kt_daemon *d)
{
	struct kt_parked **pp = &d->parked, *p, *late = NULL;
	int64_t now = mono_ms(), max_ms = (int64_t)d->cfg->max_wait * 1000;

	while ((p = *pp) != NULL) {
		if ((p->kind == KT_WAIT_CURRENT || p->kind == KT_WAIT_VERSION ||
		     p->kind == KT_WAIT_REFRESH) && now - p->since_ms >= max_ms) {
			*pp = p->next;
			p->next = late;
			late = p;
		} else {
			pp = &p->next;
		}
	}
	while ((p = late) != NULL) {
		const char *name = kt_json_str(p->req, "secret");
		char shown[160];

		late = p->next;
		kt_json_printable(name != NULL ? name : "?", shown, sizeof(shown));
		kt_server_reply(d->server, p->conn_id,
				kt_proto_error(KT_PERR_UNAVAILABLE,
					       p->kind == KT_WAIT_REFRESH
					       ? "%s: still being checked with AWS after %lld ms; try again"
					       : "%s: still being fetched from AWS after %lld ms; try again",
					       shown, (long long)(now - p->since_ms)));
		kt_json_put_wiped(p->req);
		free(p);
	}
}

static void tick(struct kt_daemon *d)
{
	uint64_t expirations;
	time_t now = kt_sched_now();

	while (read(d->tickfd, &expirations, sizeof(expirations)) > 0)
		;
	clock_watch(d, false);
	schedule(d, now);
	expire_parked(d);
	kt_login_tick(d);
	kt_login_offline_tick(d);
	kt_server_tick(d->server);
	maybe_ready(d, now);
	if (d->watchdog_usec > 0)
		kt_notify_watchdog();
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void swap_str(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/* Settings that only a restart applies stay as they are in effect, so the
 * next reload compares the file with what runs, not with the last file. */
static void keep_running_settings(struct kt_config *next, struct kt_config *running)
{
	swap_str(&next->socket_path, &running->socket_path);
	swap_str(&next->user, &running->user);
	swap_str(&next->state_dir, &running->state_dir);
	swap_str(&next->region, &running->region);
	swap_str(&next->endpoint, &running->endpoint);
	swap_str(&next->ca_file, &running->ca_file);
	next->workers = running->workers;
	next->fips = running->fips;
	next->locked_memory = running->locked_memory;
}

/* Each connection costs a descriptor; so do the workers' HTTPS connections
 * and a few files. Raises the soft limit to the hard one and keeps
 * max_connections under it, so accept never runs out in normal service. */
static long connection_limit(long wanted)
{
	struct rlimit rl;
	long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return wanted;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX)
		return wanted;
	room = (long)rl.rlim_cur - 64;
	if (room < 16)
		room = 16;
	if (wanted > room) {
		log_warn("max_connections = %ld is more than the open-file limit (%ld) allows; "
			 "using %ld", wanted, (long)rl.rlim_cur, room);
		return room;
	}
	return wanted;
}

/* The socket server's limits from a configuration. The reserve, for root
 * and uids that may read a secret, is an eighth of max_connections (at
 * least 16) on top of it. */
static void server_limits(const struct kt_config *cfg, struct kt_server_limits *lim)
{
	long reserve = cfg->max_connections / 8 < 16 ? 16 : cfg->max_connections / 8;

	lim->max_conns = connection_limit(cfg->max_connections + reserve) - reserve;
	if (lim->max_conns < 1)
		lim->max_conns = 1;
	lim->reserve = reserve;
	lim->per_uid = cfg->max_connections_per_uid;
	lim->idle_timeout = cfg->idle_timeout;
	lim->request_timeout = cfg->request_timeout;
}

static void reload(struct kt_daemon *d)
{
	struct kt_server_limits lim;
	struct kt_config *cfg = NULL;
	char err[512];
	time_t now = kt_sched_now();
	int64_t began = mono_ms();

	kt_notify_reloading();
	if (kt_config_load(d->config_path, &cfg, err, sizeof(err)) < 0) {
		log_err("reload: %s; keeping the configuration in use", err);
		kt_notify_ready("reload failed; old configuration kept");
		return;
	}
	if (strcmp(cfg->socket_path, d->cfg->socket_path) != 0 || strcmp(cfg->user, d->cfg->user) != 0 ||
	    strcmp(cfg->state_dir, d->cfg->state_dir) != 0 || !same_str(cfg->region, d->cfg->region) ||
	    !same_str(cfg->endpoint, d->cfg->endpoint))
		log_warn("reload: socket, user, state_dir, region and endpoint changes take effect "
			 "at the next restart");
	if (kt_cache_sync(&d->cache, cfg) < 0) {
		log_err("reload: out of memory; keeping the configuration in use");
		kt_config_free(cfg);
		kt_notify_ready("reload failed; old configuration kept");
		return;
	}
	if (cfg->workers != d->cfg->workers || cfg->fips != d->cfg->fips ||
	    !same_str(cfg->ca_file, d->cfg->ca_file) || cfg->locked_memory != d->cfg->locked_memory)
		log_warn("reload: workers, fips, ca_file and locked_memory changes take effect at "
			 "the next restart");
	server_limits(cfg, &lim);
	kt_server_set_limits(d->server, &lim);
	keep_running_settings(cfg, d->cfg);
	kt_config_free(d->cfg);
	d->cfg = cfg;
	log_set_level(cfg->log_level);
	d->sched.check_interval = cfg->check_interval;
	d->sched.window_interval = cfg->window_interval;
	kt_login_sync(d);
	/* Requests waiting on removed sections are answered now. */
	for (;;) {
		struct kt_parked *p = d->parked;

		while (p != NULL && kt_cache_by_id(&d->cache, p->entry_id) != NULL)
			p = p->next;
		if (p == NULL)
			break;
		resume(d, p->entry_id, NULL, NULL);
	}
	schedule(d, now);
	/* The whole reload holds the loop: its cost is worth a figure. */
	log_info("reloaded %s: %zu secrets, %zu logins, in %lld ms", d->config_path, cfg->nsecrets,
		 cfg->nlogins, (long long)(mono_ms() - began));
	kt_notify_ready("serving");
}

/* Handles queued signals; returns false when the daemon must stop. */
static bool signals(struct kt_daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: reloading %s", d->config_path);
			reload(d);
		} else {
			log_info("%s: stopping", strsignal((int)si.ssi_signo));
			return false;
		}
	}
	return true;
}

/* Answers what waits, cancels AWS calls, sends what is queued (for two
 * seconds at most); kt_daemon_main then joins the workers. */
static void stop(struct kt_daemon *d)
{
	struct epoll_event evs[64];
	time_t until = kt_sched_now() + 2;

	d->stopping = true;
	kt_notify_stopping();
	kt_server_stop_accepting(d->server);
	while (d->parked != NULL) {
		struct kt_parked *p = d->parked;

		d->parked = p->next;
		kt_server_reply(d->server, p->conn_id,
				kt_proto_error(KT_PERR_UNAVAILABLE, "keyturnd is stopping"));
		kt_json_put_wiped(p->req);
		free(p);
	}
	/* Parked callers are answered first; then the AWS calls in flight are
	 * cancelled, so the workers are joined within about a second. */
	kt_workers_abort(d->workers);
	while (kt_server_flushing(d->server) && kt_sched_now() < until) {
		int n = epoll_wait(d->epfd, evs, 64, kt_server_run_ready(d->server) ? 0 : 200);

		for (int i = 0; i < n; i++) {
			if (kt_server_owns(d->server, evs[i].data.ptr))
				kt_server_event(d->server, evs[i].data.ptr, evs[i].events);
		}
		kt_server_reap(d->server);
	}
}

static int loop(struct kt_daemon *d)
{
	struct epoll_event evs[64];
	bool more = false;

	for (;;) {
		int n = epoll_wait(d->epfd, evs, 64, more ? 0 : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;

			if (ptr == &ev_signal) {
				if (!signals(d)) {
					stop(d);
					return 0;
				}
			} else if (ptr == &ev_tick) {
				tick(d);
			} else if (ptr == &ev_workers) {
				jobs_done(d);
				maybe_ready(d, kt_sched_now());
			} else if (ptr == &ev_clock) {
				clock_watch(d, true);
			} else if (ptr == &ev_hasher) {
				kt_login_hashed(d);
			} else {
				kt_server_event(d->server, ptr, evs[i].events);
			}
		}
		/* Work left from this turn, then the frees it deferred. */
		more = kt_server_run_ready(d->server);
		kt_server_reap(d->server);
	}
}

static int add_fd(struct kt_daemon *d, int fd, unsigned *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* What must happen as root, then the drop; or, started unprivileged, the
 * same without it. */
static int start_privileged(struct kt_daemon *d, int *listen_fd)
{
	char err[512];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	bool root = uid == 0;
	int rc;

	if (root && kt_lookup_user(d->cfg->user, &uid, &gid, err, sizeof(err)) < 0) {
		log_err("user = %s: %s", d->cfg->user, err);
		return -1;
	}
	*listen_fd = kt_server_listen(d->cfg->socket_path, uid, gid, err, sizeof(err));
	if (*listen_fd < 0) {
		log_err("socket = %s: %s", d->cfg->socket_path, err);
		return -1;
	}
	if (mkdir(d->cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		log_err("state_dir = %s: %s", d->cfg->state_dir, strerror(errno));
		return -1;
	}
	if (root && chown(d->cfg->state_dir, uid, gid) < 0) {
		log_err("state_dir = %s: cannot give it to %s: %s", d->cfg->state_dir, d->cfg->user,
			strerror(errno));
		return -1;
	}
	if (!root) {
		log_info("running as uid %lu: no privileges to drop", (unsigned long)uid);
		return 0;
	}
	if (uid == 0) {
		log_warn("user = %s is root: keyturnd keeps every privilege; use a service user",
			 d->cfg->user);
		return 0;
	}
	rc = kt_drop_privileges(d->cfg->user, uid, gid, err, sizeof(err));
	if (rc < 0) {
		log_err("dropping privileges to %s: %s", d->cfg->user, err);
		return -1;
	}
	log_info("dropped privileges to %s (uid %lu, gid %lu)", d->cfg->user, (unsigned long)uid,
		 (unsigned long)gid);
	return 0;
}

static int start_aws(struct kt_daemon *d)
{
	struct aws_client_opts o = { 0 };
	struct aws_error err;

	o.region = d->cfg->region;
	o.endpoint = d->cfg->endpoint;
	o.ca_file = d->cfg->ca_file;
	o.fips = d->cfg->fips;
	o.use_imds_region = true;
	if (aws_client_new(&o, &d->aws, &err) < 0) {
		log_err("AWS client: %s", err.message);
		return -1;
	}
	log_info("AWS: region %s, endpoint %s", aws_client_region(d->aws), aws_client_endpoint(d->aws));
	if (kt_workers_start(d->aws, (int)d->cfg->workers, &d->workers) < 0) {
		log_err("cannot start %ld worker threads", d->cfg->workers);
		return -1;
	}
	return 0;
}

int kt_daemon_main(const char *config_path, bool foreground)
{
	struct kt_daemon d = { .epfd = -1, .sigfd = -1, .tickfd = -1, .clockfd = -1 };
	struct kt_server_limits lim;
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	char err[512];
	sigset_t mask;
	int listen_fd = -1, rc = 1;

	d.config_path = config_path;
	/* One malloc arena: the workers allocate little, and per-thread arenas
	 * would each keep their own free pages of parsed AWS answers. */
	mallopt(M_ARENA_MAX, 1);
	kt_cache_init(&d.cache);
	log_init("keyturnd", foreground, KT_LOG_INFO);
	if (kt_config_load(config_path, &d.cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	log_set_level(d.cfg->log_level);
	/* Values are kept only in locked memory, so a locked_memory that does
	 * not fit RLIMIT_MEMLOCK ends the start here, before anything runs. */
	if (kt_harden_process((size_t)d.cfg->locked_memory, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	/* Signals are read from a signalfd by the loop; workers inherit the
	 * blocked mask, so none lands on them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_err("signalfd: %s", strerror(errno));
		goto out;
	}
	if (kt_notify_init() < 0)
		log_warn("NOTIFY_SOCKET is set but unusable; systemd will not hear from keyturnd");
	d.watchdog_usec = kt_notify_watchdog_usec();
	if (start_privileged(&d, &listen_fd) < 0 || start_aws(&d) < 0)
		goto out;
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	d.tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d.clockfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d.epfd < 0 || d.tickfd < 0 || d.clockfd < 0 ||
	    timerfd_settime(d.tickfd, 0, &its, NULL) < 0 ||
	    add_fd(&d, d.sigfd, &ev_signal) < 0 || add_fd(&d, d.tickfd, &ev_tick) < 0 ||
	    add_fd(&d, d.clockfd, &ev_clock) < 0 ||
	    add_fd(&d, kt_workers_fd(d.workers), &ev_workers) < 0) {
		log_err("event loop set-up: %s", strerror(errno));
		goto out;
	}
	server_limits(d.cfg, &lim);
	if (kt_server_new(&d, listen_fd, d.cfg->socket_path, &lim, &d.server) < 0) {
		log_err("socket server set-up failed");
		goto out;
	}
	listen_fd = -1;
	if (kt_cache_sync(&d.cache, d.cfg) < 0 || kt_login_init(&d) < 0) {
		log_err("out of memory");
		goto out;
	}
	if (add_fd(&d, kt_login_fd(&d), &ev_hasher) < 0) {
		log_err("event loop set-up: %s", strerror(errno));
		goto out;
	}
	kt_login_sync(&d);
	d.sched.check_interval = d.cfg->check_interval;
	d.sched.window_interval = d.cfg->window_interval;
	d.started = kt_sched_now();
	d.ready_deadline = d.started + READY_WAIT;
	d.clock_offset = time(NULL) - d.started;
	arm_clock_watch(&d);
	log_info("keyturnd %s serving %s with %zu secrets", PACKAGE_VERSION, d.cfg->socket_path,
		 d.cache.n);
	schedule(&d, d.started);
	maybe_ready(&d, d.started);
	rc = loop(&d);
out:
	if (d.workers != NULL)
		kt_workers_stop(d.workers);
	kt_server_free(d.server, d.server != NULL);
	if (listen_fd >= 0)
		close(listen_fd);
	while (d.parked != NULL) {
		struct kt_parked *p = d.parked;

		d.parked = p->next;
		kt_json_put_wiped(p->req);
		free(p);
	}
	kt_cache_free(&d.cache);
	kt_login_free(&d);
	aws_client_free(d.aws);
	kt_config_free(d.cfg);
	kt_notify_close();
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.tickfd >= 0)
		close(d.tickfd);
	if (d.clockfd >= 0)
		close(d.clockfd);
	if (d.sigfd >= 0)
		close(d.sigfd);
	log_info("stopped");
	return rc;
}

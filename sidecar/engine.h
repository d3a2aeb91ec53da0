/* keyturnd's engine: the cache of secret values and every decision about
 * talking to AWS for them. It schedules checks (DescribeSecret) and fetches
 * (GetSecretValue, BatchGetSecretValue for first values), keeps one job in
 * flight per secret (single-flight), backs off after failures and while AWS
 * throttles, parks requests that wait for a job, and tells subscribers what
 * changed. It owns its state behind an opaque struct: front doors (ops.c,
 * login/) and the daemon reach it only through this API, and it calls
 * nothing above it: waiting requests come back through the resume callback,
 * news through subscriptions.
 *
 * One thread (the event loop's) calls every function here. The engine
 * never blocks: jobs go to a backend (the worker threads in keyturnd, a fake
 * in tests) and come back through kt_engine_jobs_done(). */
#ifndef KT_ENGINE_H
#define KT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "acl.h"
#include "cache.h"
#include "conf.h"
#include "sched.h"
#include "worker.h"

struct kt_engine;

/* Why a check or fetch was asked for: it decides nothing yet but the count
 * of jobs; every reason goes through the same single-flight. While AWS
 * throttles, the schedule holds back; a front door that asks anyway
 * decides for itself (kt_engine_throttled_until). */
enum kt_check_reason {
	KT_WHY_SCHEDULE, /* due by the schedule (first value, check_interval, window) */
	KT_WHY_READ,     /* a reader needs a value not in the cache */
	KT_WHY_REFRESH,  /* a `refresh` request */
	KT_WHY_LOGIN,    /* a failed password, or a login without a value */
	KT_WHY_EVENT,    /* a rotation event said the secret changed */
	KT_WHY_ROTATION, /* this host rotated the secret */
};
#define KT_WHY_COUNT 6

/* Why the engine asked a worker for something (struct kt_job's purpose). */
enum kt_job_purpose {
	PURPOSE_PREFETCH = 1, /* the first value of secrets not yet fetched */
	PURPOSE_CURRENT,      /* the AWSCURRENT value (first, or after a rotation) */
	PURPOSE_VERSION,      /* another version a caller asked for */
	PURPOSE_CHECK,        /* DescribeSecret */
};

/* What a parked request waits for. */
enum kt_wait_kind {
	KT_WAIT_CURRENT = 1,    /* get of AWSCURRENT, no value yet */
	KT_WAIT_VERSION,        /* get of another version or stage */
	KT_WAIT_REFRESH,        /* refresh: waits for the whole check */
	KT_WAIT_VERIFY_VALUE,   /* verify: no value yet, waits for its fetch */
	KT_WAIT_VERIFY_RECHECK, /* verify: a failed password, waits for a check */
	KT_WAIT_VERIFY_DEFER,   /* verify: a failed password, waits for a check not due yet */
	KT_WAIT_VERIFY_OFFLINE, /* verify: no value, waits for the hashing thread's check */
};

/* A request waiting on a secret. The engine keeps it and hands it back to
 * the resume callback; req is a reference the waiter holds. */
struct kt_parked {
	struct kt_parked *next;
	uint64_t entry_id;
	uint64_t conn_id;
	enum kt_wait_kind kind;
	struct kt_peer peer;
	struct json_object *req;
	int64_t since_ms; /* engine clock (ms) when the request first parked; for
			   * KT_RESUME_EXPIRED, how long it waited */
};

/* Why a parked request comes back. */
enum kt_resume_why {
	KT_RESUME_DONE,     /* its entry's job ended (job may be NULL: woken without one) */
	KT_RESUME_GONE,     /* its entry was removed by a reload (e is NULL) */
	KT_RESUME_EXPIRED,  /* a get or refresh waited max_wait */
	KT_RESUME_STOPPING, /* the daemon stops */
};

/* Called for each request taken off the parked list. The callee answers it
 * (and then drops its reference to p->req) or, for KT_RESUME_DONE only,
 * parks it again with kt_engine_wait() (which takes its own reference); the
 * other reasons must be answered. p is freed after the call. */
typedef void kt_engine_resume_fn(void *ctx, struct kt_parked *p, struct kt_entry *e,
				 const struct kt_job *job, enum kt_resume_why why);

/* News for subscribers, each fired once per change. */
enum kt_news {
	KT_NEWS_CHANGED,    /* a new AWSCURRENT value is in the cache */
	KT_NEWS_CONFIRMED,  /* a check found AWSCURRENT still the value in hand */
	KT_NEWS_SUPERSEDED, /* a check saw AWSCURRENT move to version (not fetched yet) */
	KT_NEWS_GONE,       /* AWS says the secret does not exist or is deleted */
	KT_NEWS_FAILED,     /* a check or fetch failed after the last success */
	KT_NEWS_RECOVERED,  /* AWS answered again after failures */
};
typedef void kt_engine_news_fn(void *ctx, enum kt_news what, struct kt_entry *e,
			       const char *version);

/* Where jobs go. submit takes the job (NULL is not passed); busy says how
 * many are queued or running. keyturnd's are the worker threads. */
struct kt_engine_backend {
	void (*submit)(void *ctx, struct kt_job *job);
	size_t (*busy)(void *ctx);
	void *ctx;
};

/* The engine's clocks and dice; NULL members use the real ones
 * (kt_sched_now, time(NULL), CLOCK_MONOTONIC ms, getrandom). Tests drive
 * them by hand. */
struct kt_engine_clock {
	time_t (*sched_now)(void *ctx); /* schedule clock (s) */
	time_t (*wall_now)(void *ctx);  /* wall clock (s) */
	int64_t (*ms_now)(void *ctx);   /* monotonic (ms): waits of parked requests */
	uint32_t (*rnd)(void *ctx);     /* jitter */
	void *ctx;
};

/* Makes an empty engine for cfg (not copied: it must outlive the engine or
 * the next kt_engine_configure). clock may be NULL. 0 or -ENOMEM. */
int kt_engine_new(const struct kt_config *cfg, const struct kt_engine_backend *backend,
		  const struct kt_engine_clock *clock, struct kt_engine **out);
/* Frees the engine, its cache (wiped) and what is still parked (dropped,
 * unanswered: call kt_engine_stop first to answer them). */
void kt_engine_free(struct kt_engine *eng);

void kt_engine_on_resume(struct kt_engine *eng, kt_engine_resume_fn *fn, void *ctx);
/* Up to 4 subscribers, called in the order subscribed. 0 or -ENOSPC. */
int kt_engine_subscribe(struct kt_engine *eng, kt_engine_news_fn *fn, void *ctx);

/* Takes a new configuration (start or reload): the cache follows its
 * sections (kt_cache_sync), the schedule its intervals. Requests parked on
 * removed sections are resumed with KT_RESUME_GONE. 0 or -ENOMEM (nothing
 * changed then). */
int kt_engine_configure(struct kt_engine *eng, const struct kt_config *cfg);

/* Removes one entry (a login entry no mapping needs any more): requests
 * parked on it are resumed with KT_RESUME_GONE first. */
/* Quiet-time checks every interval seconds instead of check_interval (the
 * safety net while rotation events keep the cache current); 0 goes back to
 * check_interval. Checks planned further out than the interval now in
 * force are brought in; inside rotation windows window_interval applies
 * either way. */
void kt_engine_set_quiet_interval(struct kt_engine *eng, long interval);

void kt_engine_remove(struct kt_engine *eng, struct kt_entry *e);

/* The cache, for lookups and walks. Entries may be read and their
 * request-side fields (rate limits of readers) written; the engine's own
 * fields (in_flight, failures, next_check, values) only through this API. */
struct kt_cache *kt_engine_cache(struct kt_engine *eng);

/* Asks AWS about e now, unless a job for it runs already (then that job's
 * end serves). check: DescribeSecret, then GetSecretValue only if AWSCURRENT
 * moved. fetch_current: GetSecretValue of AWSCURRENT. fetch_version: of
 * version_id, or of stage when version_id is NULL. */
void kt_engine_check(struct kt_engine *eng, struct kt_entry *e, enum kt_check_reason why);
void kt_engine_fetch_current(struct kt_engine *eng, struct kt_entry *e, enum kt_check_reason why);
void kt_engine_fetch_version(struct kt_engine *eng, struct kt_entry *e, const char *version_id,
			     const char *stage);

/* Parks a request on e (a reference to req is taken) until e's job ends,
 * max_wait passes (get and refresh only) or the daemon stops. 0 or -ENOMEM. */
int kt_engine_wait(struct kt_engine *eng, struct kt_entry *e, uint64_t conn_id,
		   const struct kt_peer *peer, enum kt_wait_kind kind, struct json_object *req);
/* Resumes now every request parked on e, without a job (a check a login
 * deferred and then could not make). */
void kt_engine_resume(struct kt_engine *eng, struct kt_entry *e);
/* Resumes the request conn_id parked as kind, if it still waits. */
void kt_engine_resume_conn(struct kt_engine *eng, uint64_t conn_id, enum kt_wait_kind kind);
/* Forgets, unanswered, what conn_id parked: it went away. */
void kt_engine_drop_waiters(struct kt_engine *eng, uint64_t conn_id);
/* Whether anything waits on entry_id; whether conn_id waits as kind. */
bool kt_engine_has_waiter(const struct kt_engine *eng, uint64_t entry_id);
bool kt_engine_waits(const struct kt_engine *eng, uint64_t conn_id, enum kt_wait_kind kind);

/* Takes finished jobs (a list linked by ->next, as kt_workers_take_done
 * returns it), applies them to the cache and resumes their waiters. */
void kt_engine_jobs_done(struct kt_engine *eng, struct kt_job *jobs);

/* Once a second: starts the checks and first fetches that are due (at most
 * two background jobs per worker queued at once) and answers the gets and
 * refreshes that waited max_wait. */
void kt_engine_tick(struct kt_engine *eng);

/* The wall clock stepped by step seconds: rotation dates are anchored to the
 * schedule clock anew and checks the new anchor makes due sooner are
 * brought forward. */
void kt_engine_clock_stepped(struct kt_engine *eng, time_t step);

/* Stops: no job is started any more; every parked request is resumed with
 * KT_RESUME_STOPPING. */
void kt_engine_stop(struct kt_engine *eng);
bool kt_engine_stopping(const struct kt_engine *eng);

/* Until when AWS throttling holds every call (schedule clock; past: none). */
time_t kt_engine_throttled_until(const struct kt_engine *eng);
/* Secrets without a first value that may still get one (no failure yet). */
size_t kt_engine_unfetched(const struct kt_engine *eng);
/* Jobs submitted since start, by reason (jobs made by the schedule count as
 * KT_WHY_SCHEDULE). */
unsigned long kt_engine_jobs(const struct kt_engine *eng, enum kt_check_reason why);

/* Records a failure for status (never a value). */
void kt_engine_note_error(struct kt_engine *eng, const char *secret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The last errors, oldest first: calls fn for each (at most KT_LAST_ERRORS). */
#define KT_LAST_ERRORS 8
void kt_engine_errors(const struct kt_engine *eng,
		      void (*fn)(void *ctx, const char *secret, const char *message, time_t at),
		      void *ctx);

#endif

/* Unit tests for the engine (engine.c, engine_apply.c), with no AWS, no
 * threads and no daemon: a fake backend keeps the submitted jobs in a list
 * the test owns, a fake clock is read from variables the test sets, and the
 * test plays AWS by filling a job's results and handing it back through
 * kt_engine_jobs_done(). What the engine resumes and tells is recorded. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/secmem.h"
#include "engine.h"

#define MAX_SECRETS 48
#define MAX_JOBS 64
#define MAX_RESUMED 64
#define MAX_HEARD 256

/* Where the clocks start: any time but 0, which is "due at once". */
#define T0 100000
#define WALL0 1700000000
#define MS0 5000000

/* A request the engine handed back. The job is freed once jobs_done
 * returns, so it is kept by identity and purpose only. */
struct resumed {
	uint64_t conn_id;
	uint64_t entry_id;
	enum kt_wait_kind kind;
	enum kt_resume_why why;
	struct kt_entry *e;
	uintptr_t job;
	unsigned purpose;
	int64_t since_ms;
};

/* News one subscriber heard. */
struct heard {
	int sub;
	enum kt_news what;
	struct kt_entry *e;
	char version[64];
};

/* Everything the fakes share with the tests; cleared before each test. */
static struct world {
	struct kt_engine *eng;
	/* Jobs submitted and not handed back yet: what the backend is busy with. */
	struct kt_job *jobs[MAX_JOBS];
	size_t njobs;
	size_t submitted;
	/* The clocks and dice. */
	time_t sched, wall;
	int64_t ms;
	uint32_t rnd;
	struct resumed res[MAX_RESUMED];
	size_t nres;
	/* The resume callback parks a request handed back with KT_RESUME_DONE
	 * again (as ops.c does when it still has no answer). */
	bool repark;
	struct heard heard[MAX_HEARD];
	size_t nheard;
	/* Two configurations: a reload compares the new one with the old, which
	 * must still be alive then. */
	struct kt_config cfg[2];
	struct kt_secret_cfg secs[2][MAX_SECRETS];
	char names[2][MAX_SECRETS][24];
	struct kt_peer peer;
} w;

/* --- the fake backend and clock ---------------------------------------- */

static void fake_submit(void *ctx, struct kt_job *job)
{
	struct world *wd = ctx;

	assert_non_null(job);
	assert_true(wd->njobs < MAX_JOBS);
	wd->jobs[wd->njobs++] = job;
	wd->submitted++;
}

static size_t fake_busy(void *ctx)
{
	return ((struct world *)ctx)->njobs;
}

static time_t fake_sched_now(void *ctx)
{
	return ((struct world *)ctx)->sched;
}

static time_t fake_wall_now(void *ctx)
{
	return ((struct world *)ctx)->wall;
}

static int64_t fake_ms_now(void *ctx)
{
	return ((struct world *)ctx)->ms;
}

static uint32_t fake_rnd(void *ctx)
{
	return ((struct world *)ctx)->rnd;
}

/* Follows the contract in engine.h: a request handed back is answered
 * (the reference to p->req dropped) or parked again with kt_engine_wait(),
 * which takes its own reference. */
static void on_resume(void *ctx, struct kt_parked *p, struct kt_entry *e, const struct kt_job *job,
		      enum kt_resume_why why)
{
	struct world *wd = ctx;
	struct resumed *r;

	assert_true(wd->nres < MAX_RESUMED);
	r = &wd->res[wd->nres++];
	r->conn_id = p->conn_id;
	r->entry_id = p->entry_id;
	r->kind = p->kind;
	r->why = why;
	r->e = e;
	r->job = (uintptr_t)job;
	r->purpose = job != NULL ? job->purpose : 0;
	r->since_ms = p->since_ms;
	if (wd->repark && why == KT_RESUME_DONE && e != NULL)
		assert_int_equal(kt_engine_wait(wd->eng, e, p->conn_id, &p->peer, p->kind, p->req),
				 0);
	json_object_put(p->req);
}

static void on_news(void *ctx, enum kt_news what, struct kt_entry *e, const char *version)
{
	struct heard *h;

	assert_true(w.nheard < MAX_HEARD);
	h = &w.heard[w.nheard++];
	h->sub = (int)(intptr_t)ctx;
	h->what = what;
	h->e = e;
	snprintf(h->version, sizeof(h->version), "%s", version != NULL ? version : "");
}

/* --- configurations, the engine, and playing AWS ------------------------ */

/* Configuration `which` with n sections named by names (ids: the same). */
static struct kt_config *config(int which, size_t n, const char *const *names)
{
	struct kt_config *cfg = &w.cfg[which];

	assert_true(n <= MAX_SECRETS);
	memset(cfg, 0, sizeof(*cfg));
	memset(w.secs[which], 0, sizeof(w.secs[which]));
	for (size_t i = 0; i < n; i++) {
		snprintf(w.names[which][i], sizeof(w.names[which][i]), "%s", names[i]);
		w.secs[which][i].name = w.names[which][i];
		w.secs[which][i].id = w.names[which][i];
	}
	cfg->secrets = w.secs[which];
	cfg->nsecrets = n;
	cfg->check_interval = 3600;
	cfg->window_interval = 30;
	cfg->max_stale = 86400;
	cfg->max_wait = 3;
	cfg->workers = 1;
	return cfg;
}

/* Makes the engine for cfg, subscribed once (subscriber 0) and configured. */
static void start(struct kt_config *cfg)
{
	const struct kt_engine_backend backend = { fake_submit, fake_busy, &w };
	const struct kt_engine_clock clock = { fake_sched_now, fake_wall_now, fake_ms_now, fake_rnd,
					       &w };

	assert_int_equal(kt_engine_new(cfg, &backend, &clock, &w.eng), 0);
	kt_engine_on_resume(w.eng, on_resume, &w);
	assert_int_equal(kt_engine_subscribe(w.eng, on_news, (void *)(intptr_t)0), 0);
	assert_int_equal(kt_engine_configure(w.eng, cfg), 0);
}

static struct kt_entry *entry(const char *name)
{
	struct kt_entry *e = kt_cache_find(kt_engine_cache(w.eng), name);

	assert_non_null(e);
	return e;
}

/* Takes submitted job i off the backend's list (the worker is done). */
static struct kt_job *take(size_t i)
{
	struct kt_job *job;

	assert_true(i < w.njobs);
	job = w.jobs[i];
	memmove(&w.jobs[i], &w.jobs[i + 1], (w.njobs - i - 1) * sizeof(w.jobs[0]));
	w.njobs--;
	return job;
}

/* The one job submitted. */
static struct kt_job *take_only(void)
{
	assert_int_equal(w.njobs, 1);
	return take(0);
}

/* The submitted job for entry e (not a batch). */
static struct kt_job *take_for(const struct kt_entry *e)
{
	for (size_t i = 0; i < w.njobs; i++) {
		if (w.jobs[i]->kind != KT_JOB_BATCH_GET && w.jobs[i]->tag == e->id)
			return take(i);
	}
	fail_msg("no job for %s", e->name);
	return NULL;
}

static size_t jobs_for(const struct kt_entry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < w.njobs; i++)
		n += w.jobs[i]->kind != KT_JOB_BATCH_GET && w.jobs[i]->tag == e->id;
	return n;
}

/* Hands one finished job back to the engine, which frees it. */
static void finish(struct kt_job *job)
{
	job->next = NULL;
	kt_engine_jobs_done(w.eng, job);
}

static char *dup_str(const char *s)
{
	char *d = kt_strdup(s);

	assert_non_null(d);
	return d;
}

static void fill_value(struct sm_value *v, const char *id, const char *vid)
{
	char arn[128], data[64];

	snprintf(arn, sizeof(arn), "arn:aws:secretsmanager:us-east-1:1:secret:%s-x", id);
	snprintf(data, sizeof(data), "value of %s at %s", id, vid);
	memset(v, 0, sizeof(*v));
	v->arn = dup_str(arn);
	v->name = dup_str(id);
	v->version_id = dup_str(vid);
	v->stages = calloc(1, sizeof(char *));
	assert_non_null(v->stages);
	v->stages[0] = dup_str("AWSCURRENT");
	v->nstages = 1;
	v->data = (unsigned char *)dup_str(data);
	v->len = strlen(data);
}

/* A GetSecretValue that worked. */
static void answer_value(struct kt_job *job, const char *vid)
{
	assert_int_equal(job->kind, KT_JOB_GET);
	job->rc = 0;
	fill_value(&job->value, job->ids[0], vid);
}

/* A BatchGetSecretValue that answered every id with version vid. */
static void answer_batch(struct kt_job *job, const char *vid)
{
	assert_int_equal(job->kind, KT_JOB_BATCH_GET);
	job->rc = 0;
	job->batch.values = calloc(job->nids, sizeof(*job->batch.values));
	assert_non_null(job->batch.values);
	job->batch.nvalues = job->nids;
	for (size_t i = 0; i < job->nids; i++)
		fill_value(&job->batch.values[i], job->ids[i], vid);
}

static void add_version(struct sm_description *d, const char *vid, const char *stage)
{
	struct sm_version *v = &d->versions[d->nversions++];

	v->version_id = dup_str(vid);
	v->stages = calloc(1, sizeof(char *));
	assert_non_null(v->stages);
	v->stages[0] = dup_str(stage);
	v->nstages = 1;
}

/* A DescribeSecret that worked: AWSCURRENT is cur, AWSPREVIOUS prev (or
 * none); deleted is the DeletedDate (0: not deleted). */
static void answer_describe(struct kt_job *job, const char *cur, const char *prev, time_t deleted)
{
	assert_int_equal(job->kind, KT_JOB_DESCRIBE);
	job->rc = 0;
	job->desc.name = dup_str(job->ids[0]);
	job->desc.deleted = deleted;
	job->desc.versions = calloc(2, sizeof(*job->desc.versions));
	assert_non_null(job->desc.versions);
	add_version(&job->desc, cur, "AWSCURRENT");
	if (prev != NULL)
		add_version(&job->desc, prev, "AWSPREVIOUS");
}

/* A call that failed as a whole. */
static void answer_error(struct kt_job *job, enum aws_errc code)
{
	job->rc = -EIO;
	aws_error_set(&job->err, code, "TestError", "made up by the test");
}

/* Fetches every first value (by batches, v1) and forgets what was heard. */
static void prime(void)
{
	kt_engine_tick(w.eng);
	assert_true(w.njobs > 0);
	while (w.njobs > 0) {
		struct kt_job *job = take(0);

		answer_batch(job, "v1");
		finish(job);
	}
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
	w.nheard = 0;
}

/* Parks a request for conn on e, as a front door would. */
static void park(struct kt_entry *e, uint64_t conn, enum kt_wait_kind kind)
{
	struct json_object *req = json_object_new_object();

	assert_non_null(req);
	json_object_object_add(req, "secret", json_object_new_string(e->name));
	assert_int_equal(kt_engine_wait(w.eng, e, conn, &w.peer, kind, req), 0);
	json_object_put(req);
}

static size_t heard(int sub, enum kt_news what, const struct kt_entry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < w.nheard; i++)
		n += w.heard[i].sub == sub && w.heard[i].what == what &&
		     (e == NULL || w.heard[i].e == e);
	return n;
}

/* The one time conn was resumed. */
static const struct resumed *resumed_once(uint64_t conn)
{
	const struct resumed *r = NULL;

	for (size_t i = 0; i < w.nres; i++) {
		if (w.res[i].conn_id != conn)
			continue;
		assert_null(r);
		r = &w.res[i];
	}
	assert_non_null(r);
	return r;
}

static size_t times_resumed(uint64_t conn)
{
	size_t n = 0;

	for (size_t i = 0; i < w.nres; i++)
		n += w.res[i].conn_id == conn;
	return n;
}

static struct kt_sched_cfg sched_of(const struct kt_config *cfg)
{
	return kt_sched_cfg_from(cfg->check_interval, cfg->window_interval);
}

static int setup(void **state)
{
	(void)state;
	memset(&w, 0, sizeof(w));
	w.sched = T0;
	w.wall = WALL0;
	w.ms = MS0;
	/* The top of every jitter range: back-off and first checks come as
	 * late as their rules allow, which the tests compute the same way. */
	w.rnd = UINT32_MAX;
	w.peer.uid = 1000;
	w.peer.gid = 1000;
	snprintf(w.peer.name, sizeof(w.peer.name), "alice");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	while (w.njobs > 0)
		kt_job_free(take(0));
	kt_engine_free(w.eng);
	w.eng = NULL;
	return 0;
}

/* --- the tests ---------------------------------------------------------- */

/* A start fetches the first values by batches of SM_BATCH_MAX, two
 * background jobs per worker at a time, and more as jobs end; then the
 * first checks come when kt_sched_first_check says. */
static void test_start(void **state)
{
	const char *names[45];
	char buf[45][8];
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	time_t first;

	(void)state;
	for (int i = 0; i < 45; i++) {
		snprintf(buf[i], sizeof(buf[i]), "s%02d", i);
		names[i] = buf[i];
	}
	cfg = config(0, 45, names);
	start(cfg);
	assert_int_equal(w.njobs, 0); /* configure alone calls nothing */
	assert_int_equal(kt_engine_unfetched(w.eng), 45);

	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2); /* workers (1) * 2 */
	for (size_t j = 0; j < 2; j++) {
		assert_int_equal(w.jobs[j]->kind, KT_JOB_BATCH_GET);
		assert_int_equal(w.jobs[j]->purpose, PURPOSE_PREFETCH);
		assert_int_equal(w.jobs[j]->nids, SM_BATCH_MAX);
		for (size_t i = 0; i < SM_BATCH_MAX; i++)
			assert_string_equal(w.jobs[j]->ids[i], names[j * SM_BATCH_MAX + i]);
	}
	for (int i = 0; i < 45; i++)
		assert_int_equal(entry(names[i])->in_flight, i < 40);
	assert_int_equal(kt_engine_jobs(w.eng, KT_WHY_SCHEDULE), 2);

	/* The queue is full: neither the next tick nor a reader adds to it. */
	kt_engine_tick(w.eng);
	kt_engine_fetch_current(w.eng, entry("s00"), KT_WHY_READ);
	assert_int_equal(w.njobs, 2);

	/* One batch ends: its room goes to the five left. */
	{
		struct kt_job *job = take(0);

		answer_batch(job, "v1");
		finish(job);
	}
	assert_int_equal(heard(0, KT_NEWS_CHANGED, NULL), 20);
	assert_int_equal(kt_engine_unfetched(w.eng), 25);
	assert_int_equal(w.njobs, 2);
	assert_int_equal(w.jobs[1]->kind, KT_JOB_BATCH_GET);
	assert_int_equal(w.jobs[1]->nids, 5);
	assert_string_equal(w.jobs[1]->ids[0], "s40");
	assert_string_equal(w.jobs[1]->ids[4], "s44");

	/* Both at once, as kt_workers_take_done hands them over. */
	{
		struct kt_job *a = take(0), *b = take(0);

		answer_batch(a, "v1");
		answer_batch(b, "v1");
		a->next = b;
		b->next = NULL;
		kt_engine_jobs_done(w.eng, a);
	}
	assert_int_equal(w.njobs, 0);
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, NULL), 45);
	assert_int_equal(kt_engine_jobs(w.eng, KT_WHY_SCHEDULE), 3);
	assert_string_equal(entry("s44")->cur.version_id, "v1");
	assert_memory_equal(entry("s44")->cur.data, "value of s44 at v1", 18);

	/* Every first check is due at kt_sched_first_check, not before. */
	sc = sched_of(cfg);
	first = kt_sched_first_check(&sc, T0, w.rnd);
	assert_true(first > T0);
	for (int i = 0; i < 45; i++)
		assert_int_equal(entry(names[i])->next_check, first);
	w.sched = first - 1;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 0);
	w.sched = first;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2);
	assert_int_equal(w.jobs[0]->kind, KT_JOB_DESCRIBE);
	assert_int_equal(w.jobs[0]->purpose, PURPOSE_CHECK);
	assert_string_equal(w.jobs[0]->ids[0], "s00");
	assert_string_equal(w.jobs[1]->ids[0], "s01");

	/* A check that ends makes room for the next one due. */
	{
		struct kt_job *job = take(0);

		answer_describe(job, "v1", NULL, 0);
		finish(job);
	}
	assert_int_equal(w.njobs, 2);
	assert_string_equal(w.jobs[1]->ids[0], "s02");
	assert_int_equal(heard(0, KT_NEWS_CONFIRMED, entry("s00")), 1);
}

/* One job per secret: while it runs, checks and fetches of that secret
 * submit nothing, and every request parked on it is resumed once, by that
 * job. */
static void test_single_flight(void **state)
{
	const char *names[] = { "a", "b", "c" };
	struct kt_config *cfg;
	struct kt_entry *a, *b, *c;
	struct kt_job *job;
	uintptr_t job_id;

	(void)state;
	cfg = config(0, 3, names);
	cfg->workers = 2; /* room for every check at once */
	start(cfg);
	kt_engine_tick(w.eng);
	/* A first fetch in a batch counts: no GetSecretValue besides it. */
	c = entry("c");
	assert_true(c->in_flight);
	kt_engine_fetch_current(w.eng, c, KT_WHY_READ);
	kt_engine_check(w.eng, c, KT_WHY_LOGIN);
	assert_int_equal(w.njobs, 1);
	park(c, 9, KT_WAIT_CURRENT);
	park(c, 10, KT_WAIT_VERIFY_VALUE);
	job = take_only();
	answer_batch(job, "v1");
	finish(job);
	/* A batch wakes its waiters without a job (engine.h allows it): the
	 * value is in the cache. */
	assert_int_equal(w.nres, 2);
	assert_int_equal(resumed_once(9)->why, KT_RESUME_DONE);
	assert_int_equal(resumed_once(10)->why, KT_RESUME_DONE);
	assert_ptr_equal(resumed_once(9)->e, c);
	assert_non_null(c->cur.data);
	w.nres = 0;
	w.nheard = 0;

	a = entry("a");
	b = entry("b");
	kt_engine_check(w.eng, a, KT_WHY_READ);
	assert_int_equal(w.njobs, 1);
	assert_int_equal(w.jobs[0]->kind, KT_JOB_DESCRIBE);
	assert_int_equal(w.jobs[0]->tag, a->id);
	assert_true(a->in_flight);

	kt_engine_check(w.eng, a, KT_WHY_REFRESH);
	kt_engine_check(w.eng, a, KT_WHY_EVENT);
	kt_engine_fetch_current(w.eng, a, KT_WHY_READ);
	kt_engine_fetch_version(w.eng, a, "v0", NULL);
	kt_engine_fetch_version(w.eng, a, NULL, "AWSPENDING");
	assert_int_equal(w.njobs, 1);
	assert_int_equal(kt_engine_jobs(w.eng, KT_WHY_READ), 1);
	assert_int_equal(kt_engine_jobs(w.eng, KT_WHY_REFRESH), 0);

	/* The schedule skips it too, though its first check is due. */
	w.sched = a->next_check + 1;
	kt_engine_tick(w.eng);
	assert_int_equal(jobs_for(a), 1);
	assert_int_equal(jobs_for(b), 1);
	assert_int_equal(jobs_for(c), 1);

	park(a, 1, KT_WAIT_CURRENT);
	park(a, 2, KT_WAIT_REFRESH);
	park(a, 3, KT_WAIT_VERIFY_RECHECK);
	park(b, 4, KT_WAIT_CURRENT);
	assert_true(kt_engine_has_waiter(w.eng, a->id));
	assert_true(kt_engine_waits(w.eng, 2, KT_WAIT_REFRESH));
	assert_false(kt_engine_waits(w.eng, 2, KT_WAIT_CURRENT));

	job = take_for(a);
	job_id = (uintptr_t)job;
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(w.nres, 3);
	for (uint64_t conn = 1; conn <= 3; conn++) {
		const struct resumed *r = resumed_once(conn);

		assert_int_equal(r->why, KT_RESUME_DONE);
		assert_int_equal(r->job, job_id);
		assert_int_equal(r->purpose, PURPOSE_CHECK);
		assert_ptr_equal(r->e, a);
		assert_int_equal(r->entry_id, a->id);
	}
	assert_int_equal(times_resumed(4), 0);
	assert_false(kt_engine_has_waiter(w.eng, a->id));
	assert_true(kt_engine_has_waiter(w.eng, b->id));
	assert_false(a->in_flight);

	job = take_for(b);
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(resumed_once(4)->why, KT_RESUME_DONE);
	assert_int_equal(w.nres, 4);

	/* The job ended: the next check goes out. */
	kt_engine_check(w.eng, a, KT_WHY_READ);
	assert_int_equal(jobs_for(a), 1);
}

/* A check that sees AWSCURRENT move costs one GetSecretValue by VersionId:
 * SUPERSEDED, then CHANGED once the value is in; a later check that finds
 * the same AWSCURRENT fetches nothing and says CONFIRMED. */
static void test_rotation_seen_once(void **state)
{
	const char *names[] = { "a" };
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	struct kt_entry *a;
	struct kt_job *job;
	time_t due;

	(void)state;
	cfg = config(0, 1, names);
	start(cfg);
	prime();
	a = entry("a");
	sc = sched_of(cfg);
	w.sched = a->next_check;
	kt_engine_tick(w.eng);
	job = take_only();
	assert_int_equal(job->kind, KT_JOB_DESCRIBE);
	park(a, 1, KT_WAIT_REFRESH);
	answer_describe(job, "v2", "v1", 0);
	finish(job);

	/* One GetSecretValue of v2, by VersionId, and nothing else. */
	job = take_only();
	assert_int_equal(job->kind, KT_JOB_GET);
	assert_int_equal(job->purpose, PURPOSE_CURRENT);
	assert_int_equal(job->tag, a->id);
	assert_string_equal(job->version_id, "v2");
	assert_null(job->stage);
	assert_int_equal(heard(0, KT_NEWS_SUPERSEDED, a), 1);
	assert_string_equal(w.heard[0].version, "v2");
	assert_int_equal(heard(0, KT_NEWS_CHANGED, NULL), 0);
	assert_true(a->superseded);
	assert_int_equal(a->superseded_at, w.sched);
	assert_true(a->in_flight);
	/* The refresh waits for the value, not for the check alone. */
	assert_int_equal(w.nres, 0);
	due = kt_sched_next_check(&sc, &a->rot, w.sched, w.rnd);
	assert_int_equal(a->next_check, due);

	/* Still one job while it runs. */
	kt_engine_check(w.eng, a, KT_WHY_READ);
	kt_engine_fetch_current(w.eng, a, KT_WHY_READ);
	assert_int_equal(w.njobs, 0);

	w.sched += 2;
	answer_value(job, "v2");
	finish(job);
	assert_int_equal(w.njobs, 0);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, a), 1);
	assert_int_equal(heard(0, KT_NEWS_SUPERSEDED, a), 1);
	assert_int_equal(w.heard[1].what, KT_NEWS_CHANGED);
	assert_string_equal(w.heard[1].version, "v2");
	assert_string_equal(a->cur.version_id, "v2");
	assert_memory_equal(a->cur.data, "value of a at v2", 16);
	assert_false(a->superseded);
	assert_string_equal(a->prev_version, "v1");
	/* The rotation dates from when the check saw it. */
	assert_int_equal(a->rotated_at, w.sched - 2);
	/* Not a first value: the schedule the check set stands. */
	assert_int_equal(a->next_check, due);
	assert_int_equal(resumed_once(1)->purpose, PURPOSE_CURRENT);
	assert_int_equal(resumed_once(1)->why, KT_RESUME_DONE);

	/* The same AWSCURRENT again: no fetch, CONFIRMED, no CHANGED. */
	for (int round = 0; round < 2; round++) {
		kt_engine_check(w.eng, a, KT_WHY_EVENT);
		job = take_only();
		answer_describe(job, "v2", "v1", 0);
		finish(job);
		assert_int_equal(w.njobs, 0);
	}
	assert_int_equal(heard(0, KT_NEWS_CONFIRMED, a), 2);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, a), 1);
	assert_int_equal(heard(0, KT_NEWS_SUPERSEDED, a), 1);
	assert_int_equal(w.nheard, 4);
	assert_int_equal(kt_engine_jobs(w.eng, KT_WHY_SCHEDULE), 3); /* batch, check, fetch */
}

/* A failed check backs off by kt_sched_backoff's rules, and nothing is
 * asked before then; FAILED once for a run of failures, RECOVERED once
 * when AWS answers again. */
static void test_backoff(void **state)
{
	const char *names[] = { "a" };
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	struct kt_entry *a;
	struct kt_job *job;
	time_t at;

	(void)state;
	cfg = config(0, 1, names);
	start(cfg);
	prime();
	a = entry("a");
	sc = sched_of(cfg);

	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_TRANSPORT);
	park(a, 1, KT_WAIT_REFRESH);
	finish(job);
	assert_int_equal(a->failures, 1);
	assert_int_equal(heard(0, KT_NEWS_FAILED, a), 1);
	assert_int_equal(a->next_check, kt_sched_backoff(&sc, 1, w.sched, w.rnd));
	assert_true(a->next_check > w.sched);
	assert_non_null(strstr(a->last_error, "made up by the test"));
	/* Its waiter learns from the failed job itself. */
	assert_int_equal(resumed_once(1)->why, KT_RESUME_DONE);
	assert_int_equal(resumed_once(1)->purpose, PURPOSE_CHECK);
	/* The value in hand stays. */
	assert_non_null(a->cur.data);

	at = a->next_check;
	for (w.sched = T0; w.sched < at; w.sched++) {
		kt_engine_tick(w.eng);
		assert_int_equal(w.njobs, 0);
	}
	kt_engine_tick(w.eng);
	job = take_only();
	assert_int_equal(job->kind, KT_JOB_DESCRIBE);
	answer_error(job, AWS_ERR_TIMEOUT);
	finish(job);
	assert_int_equal(a->failures, 2);
	assert_int_equal(heard(0, KT_NEWS_FAILED, a), 1);
	assert_int_equal(a->next_check, kt_sched_backoff(&sc, 2, w.sched, w.rnd));
	assert_true(a->next_check - w.sched > at - T0); /* it grows */

	at = a->next_check;
	w.sched = at - 1;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 0);
	w.sched = at;
	kt_engine_tick(w.eng);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(a->failures, 0);
	assert_int_equal(heard(0, KT_NEWS_RECOVERED, a), 1);
	assert_int_equal(heard(0, KT_NEWS_CONFIRMED, a), 1);
	assert_int_equal(heard(0, KT_NEWS_FAILED, a), 1);
	assert_int_equal(a->next_check, kt_sched_next_check(&sc, &a->rot, w.sched, w.rnd));

	/* A later failure starts a new run: FAILED again, once, and the
	 * back-off from its start. */
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_SERVER);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_FAILED, a), 2);
	assert_int_equal(a->next_check, kt_sched_backoff(&sc, 1, w.sched, w.rnd));
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_RECOVERED, a), 2);
}

/* Rotation events set a quiet-time interval of their own: a check then
 * plans the next one that far out; going back to check_interval brings
 * in what was planned further. */
static void test_quiet_interval(void **state)
{
	const char *names[] = { "a" };
	struct kt_config *cfg;
	struct kt_sched_cfg quiet, normal;
	struct kt_entry *a;
	struct kt_job *job;

	(void)state;
	cfg = config(0, 1, names);
	start(cfg);
	prime();
	a = entry("a");
	normal = sched_of(cfg);
	quiet = kt_sched_cfg_from(6 * cfg->check_interval, cfg->window_interval);

	kt_engine_set_quiet_interval(w.eng, quiet.check_interval);
	kt_engine_check(w.eng, a, KT_WHY_EVENT);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(a->next_check, kt_sched_next_check(&quiet, &a->rot, w.sched, w.rnd));
	assert_true(a->next_check - w.sched > cfg->check_interval);

	/* A reload keeps the events' interval. */
	assert_int_equal(kt_engine_configure(w.eng, cfg), 0);
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(a->next_check, kt_sched_next_check(&quiet, &a->rot, w.sched, w.rnd));

	/* The queue fails: back to check_interval, at once. */
	kt_engine_set_quiet_interval(w.eng, 0);
	assert_int_equal(a->next_check, kt_sched_next_check(&normal, &a->rot, w.sched, w.rnd));
	assert_true(a->next_check - w.sched < quiet.check_interval);
	assert_int_equal(w.njobs, 0);
}

/* A first fetch that fails backs off too, and is then tried on its own
 * (GetSecretValue of AWSCURRENT), not in a batch. */
static void test_first_fetch_backoff(void **state)
{
	const char *names[] = { "a", "b" };
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	struct kt_entry *a;
	struct kt_job *job;
	time_t at;

	(void)state;
	cfg = config(0, 2, names);
	start(cfg);
	sc = sched_of(cfg);
	kt_engine_tick(w.eng);
	job = take_only();
	answer_error(job, AWS_ERR_TRANSPORT);
	finish(job);
	a = entry("a");
	assert_int_equal(a->failures, 1);
	assert_int_equal(entry("b")->failures, 1);
	assert_int_equal(heard(0, KT_NEWS_FAILED, NULL), 2);
	assert_int_equal(kt_engine_unfetched(w.eng), 0); /* none that may still come */
	at = kt_sched_backoff(&sc, 1, T0, w.rnd);
	assert_int_equal(a->next_check, at);
	w.sched = at - 1;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 0);
	w.sched = at;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2);
	job = take_for(a);
	assert_int_equal(job->kind, KT_JOB_GET);
	assert_int_equal(job->purpose, PURPOSE_CURRENT);
	assert_null(job->version_id);
	assert_string_equal(job->stage, "AWSCURRENT");
	answer_value(job, "v1");
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_RECOVERED, a), 1);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, a), 1);
	/* A first value: the first check comes soon. */
	assert_int_equal(a->next_check, kt_sched_first_check(&sc, w.sched, w.rnd));
}

/* Throttling holds every scheduled job until kt_engine_throttled_until,
 * even of secrets due for their own reasons; then they go. */
static void test_throttle(void **state)
{
	const char *names[] = { "a", "b", "c" };
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	struct kt_entry *a, *c;
	struct kt_job *job;
	time_t t, until;

	(void)state;
	cfg = config(0, 3, names);
	cfg->workers = 2;
	start(cfg);
	prime();
	sc = sched_of(cfg);
	a = entry("a");
	c = entry("c");
	t = a->next_check;
	w.sched = t;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 3);

	job = take_for(entry("b"));
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	/* c fails on its own and is due again one second later. */
	w.rnd = 0;
	job = take_for(c);
	answer_error(job, AWS_ERR_TRANSPORT);
	finish(job);
	assert_int_equal(c->next_check, t + 1);
	assert_int_equal(kt_engine_throttled_until(w.eng), 0);
	/* a is throttled: nothing goes out for up to five seconds. */
	w.rnd = UINT32_MAX;
	job = take_for(a);
	answer_error(job, AWS_ERR_THROTTLED);
	finish(job);
	until = kt_engine_throttled_until(w.eng);
	assert_int_equal(until, kt_sched_backoff(&sc, 1, t, w.rnd));
	assert_true(until > t + 1);
	assert_int_equal(w.njobs, 0);

	for (w.sched = t; w.sched < until; w.sched++) {
		kt_engine_tick(w.eng);
		assert_int_equal(w.njobs, 0);
	}
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2);
	assert_int_equal(jobs_for(a), 1);
	assert_int_equal(jobs_for(c), 1);

	/* An answer ends the throttle's run: the next one starts afresh. */
	job = take_for(a);
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	job = take_for(c);
	answer_error(job, AWS_ERR_THROTTLED);
	finish(job);
	assert_int_equal(kt_engine_throttled_until(w.eng),
			 kt_sched_backoff(&sc, 1, w.sched, w.rnd));
}

/* A get or refresh parked for max_wait is answered as expired; a verify is
 * not. A request parked again keeps the time it first parked. */
static void test_max_wait(void **state)
{
	const char *names[] = { "a" };
	struct kt_config *cfg;
	struct kt_entry *a;
	struct kt_job *job;
	const struct resumed *r;
	int64_t max_ms;

	(void)state;
	cfg = config(0, 1, names);
	start(cfg);
	max_ms = cfg->max_wait * 1000;
	a = entry("a");
	kt_engine_tick(w.eng);
	assert_true(a->in_flight);
	park(a, 1, KT_WAIT_CURRENT);
	park(a, 2, KT_WAIT_VERIFY_VALUE);
	park(a, 4, KT_WAIT_VERIFY_OFFLINE);
	w.ms += 1000;
	park(a, 3, KT_WAIT_REFRESH);

	w.ms = MS0 + max_ms - 1;
	kt_engine_tick(w.eng);
	assert_int_equal(w.nres, 0);
	w.ms = MS0 + max_ms;
	kt_engine_tick(w.eng);
	assert_int_equal(w.nres, 1);
	r = resumed_once(1);
	assert_int_equal(r->why, KT_RESUME_EXPIRED);
	assert_ptr_equal(r->e, a);
	assert_int_equal(r->job, 0);
	assert_int_equal(r->since_ms, max_ms); /* the wait, for the answer */
	assert_false(kt_engine_waits(w.eng, 1, KT_WAIT_CURRENT));

	w.ms = MS0 + 1000 + max_ms;
	kt_engine_tick(w.eng);
	assert_int_equal(resumed_once(3)->why, KT_RESUME_EXPIRED);

	/* Verifies wait for their job however long it takes. */
	w.ms += 3600 * 1000;
	kt_engine_tick(w.eng);
	assert_int_equal(w.nres, 2);
	assert_true(kt_engine_waits(w.eng, 2, KT_WAIT_VERIFY_VALUE));
	assert_true(kt_engine_waits(w.eng, 4, KT_WAIT_VERIFY_OFFLINE));
	/* The AWS call went on, and fills the cache. */
	assert_true(a->in_flight);
	job = take_only();
	answer_batch(job, "v1");
	finish(job);
	assert_int_equal(resumed_once(2)->why, KT_RESUME_DONE);
	assert_int_equal(resumed_once(4)->why, KT_RESUME_DONE);
	assert_int_equal(times_resumed(1), 1);
	assert_int_equal(times_resumed(3), 1);
	assert_non_null(a->cur.data);

	/* Parked again when its job ended: the wait counts from the start. */
	w.nres = 0;
	w.repark = true;
	kt_engine_check(w.eng, a, KT_WHY_READ);
	park(a, 5, KT_WAIT_CURRENT);
	w.ms += max_ms - 1000;
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(resumed_once(5)->why, KT_RESUME_DONE);
	assert_true(kt_engine_waits(w.eng, 5, KT_WAIT_CURRENT));
	w.ms += 999;
	kt_engine_tick(w.eng);
	assert_int_equal(w.nres, 1);
	w.ms += 1;
	kt_engine_tick(w.eng);
	assert_int_equal(w.nres, 2);
	assert_int_equal(w.res[1].conn_id, 5);
	assert_int_equal(w.res[1].why, KT_RESUME_EXPIRED);
	assert_int_equal(w.res[1].since_ms, max_ms);
	assert_false(kt_engine_has_waiter(w.eng, a->id));
}

/* A reload without a section answers what waits on it as GONE (e NULL);
 * its job, coming back later, finds nothing and breaks nothing. */
static void test_reconfigure(void **state)
{
	const char *both[] = { "a", "b" }, *only_b[] = { "b" }, *again[] = { "a", "b", "c" };
	struct kt_entry *b;
	struct kt_job *job, *batch;
	uint64_t a_id;
	const struct resumed *r;

	(void)state;
	start(config(0, 2, both));
	prime();
	b = entry("b");
	a_id = entry("a")->id;
	kt_engine_check(w.eng, entry("a"), KT_WHY_READ);
	park(entry("a"), 1, KT_WAIT_CURRENT);
	park(entry("a"), 2, KT_WAIT_VERIFY_RECHECK);
	park(b, 3, KT_WAIT_REFRESH);

	assert_int_equal(kt_engine_configure(w.eng, config(1, 1, only_b)), 0);
	assert_null(kt_cache_find(kt_engine_cache(w.eng), "a"));
	assert_ptr_equal(entry("b"), b); /* kept, with its value */
	assert_non_null(b->cur.data);
	assert_int_equal(w.nres, 2);
	for (uint64_t conn = 1; conn <= 2; conn++) {
		r = resumed_once(conn);
		assert_int_equal(r->why, KT_RESUME_GONE);
		assert_null(r->e);
		assert_int_equal(r->job, 0);
		assert_int_equal(r->entry_id, a_id);
	}
	assert_true(kt_engine_waits(w.eng, 3, KT_WAIT_REFRESH));
	assert_false(kt_engine_has_waiter(w.eng, a_id));

	/* a's check answers after the reload: nothing to apply it to. */
	job = take_only();
	assert_int_equal(job->tag, a_id);
	answer_describe(job, "v9", "v1", 0);
	finish(job);
	assert_int_equal(w.nres, 2);
	assert_int_equal(w.nheard, 0);
	assert_int_equal(w.njobs, 0);

	/* A section added and removed while its first fetch runs in a batch. */
	assert_int_equal(kt_engine_configure(w.eng, config(0, 3, again)), 0);
	kt_engine_tick(w.eng);
	batch = take_only();
	assert_int_equal(batch->kind, KT_JOB_BATCH_GET);
	assert_int_equal(batch->nids, 2);
	park(entry("c"), 4, KT_WAIT_CURRENT);
	assert_int_equal(kt_engine_configure(w.eng, config(1, 1, only_b)), 0);
	assert_int_equal(resumed_once(4)->why, KT_RESUME_GONE);
	w.nheard = 0;
	answer_batch(batch, "v1");
	finish(batch);
	assert_int_equal(w.nheard, 0);
	assert_int_equal(w.nres, 3);
	assert_int_equal(kt_engine_cache(w.eng)->n, 1);
	assert_ptr_equal(entry("b"), b);
	assert_string_equal(b->cur.version_id, "v1");
	assert_true(kt_engine_waits(w.eng, 3, KT_WAIT_REFRESH));
}

/* A stop answers everything parked as STOPPING and starts nothing more. */
static void test_stop(void **state)
{
	const char *names[] = { "a", "b" };
	struct kt_entry *a, *b;
	struct kt_job *job;

	(void)state;
	start(config(0, 2, names));
	prime();
	a = entry("a");
	b = entry("b");
	kt_engine_check(w.eng, a, KT_WHY_READ);
	park(a, 1, KT_WAIT_CURRENT);
	park(a, 2, KT_WAIT_VERIFY_RECHECK);
	park(b, 3, KT_WAIT_VERIFY_DEFER);
	assert_false(kt_engine_stopping(w.eng));

	kt_engine_stop(w.eng);
	assert_true(kt_engine_stopping(w.eng));
	assert_int_equal(w.nres, 3);
	for (uint64_t conn = 1; conn <= 3; conn++) {
		const struct resumed *r = resumed_once(conn);

		assert_int_equal(r->why, KT_RESUME_STOPPING);
		assert_ptr_equal(r->e, conn == 3 ? b : a);
		assert_int_equal(r->job, 0);
	}
	assert_false(kt_engine_has_waiter(w.eng, a->id));
	assert_false(kt_engine_has_waiter(w.eng, b->id));

	kt_engine_check(w.eng, b, KT_WHY_READ);
	kt_engine_fetch_current(w.eng, b, KT_WHY_READ);
	kt_engine_fetch_version(w.eng, b, "v0", NULL);
	w.sched += 10 * 3600;
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 1); /* a's check, from before */
	assert_int_equal(w.submitted, 2);

	/* The job that ran on answers into the cache; nothing follows it. */
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(w.njobs, 0);
	assert_false(a->in_flight);
	assert_int_equal(w.nres, 3);
	kt_engine_check(w.eng, a, KT_WHY_READ);
	assert_int_equal(w.njobs, 0);
}

/* Every subscriber hears every news, in the order subscribed; there is
 * room for four. */
static void test_subscriptions(void **state)
{
	const char *names[] = { "a" };
	static const enum kt_news order[] = { KT_NEWS_CHANGED, KT_NEWS_FAILED, KT_NEWS_RECOVERED,
					      KT_NEWS_CONFIRMED };
	struct kt_entry *a;
	struct kt_job *job;

	(void)state;
	start(config(0, 1, names));
	assert_int_equal(kt_engine_subscribe(w.eng, on_news, (void *)(intptr_t)1), 0);
	a = entry("a");
	kt_engine_tick(w.eng);
	job = take_only();
	answer_batch(job, "v1");
	finish(job);
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_SERVER);
	finish(job);
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);

	assert_int_equal(w.nheard, 2 * 4);
	for (size_t i = 0; i < 4; i++) {
		for (int sub = 0; sub < 2; sub++) {
			const struct heard *h = &w.heard[2 * i + (size_t)sub];

			assert_int_equal(h->sub, sub);
			assert_int_equal(h->what, order[i]);
			assert_ptr_equal(h->e, a);
		}
	}
	assert_string_equal(w.heard[0].version, "v1");
	assert_string_equal(w.heard[7].version, "v1");

	assert_int_equal(kt_engine_subscribe(w.eng, on_news, (void *)(intptr_t)2), 0);
	assert_int_equal(kt_engine_subscribe(w.eng, on_news, (void *)(intptr_t)3), 0);
	assert_int_equal(kt_engine_subscribe(w.eng, on_news, (void *)(intptr_t)4), -ENOSPC);
	w.nheard = 0;
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	assert_int_equal(w.nheard, 4);
	for (int sub = 0; sub < 4; sub++)
		assert_int_equal(w.heard[sub].sub, sub);
}

/* Deleted in AWS (DeletedDate, or ResourceNotFound from any call): GONE
 * once, and every value of the secret wiped. */
static void test_deletion(void **state)
{
	const char *names[] = { "a", "b", "c", "d" };
	struct kt_entry *e[4];
	struct kt_job *job;

	(void)state;
	start(config(0, 4, names));
	for (int i = 0; i < 4; i++)
		e[i] = entry(names[i]);
	/* d does not exist from the start: the batch says so for it alone. */
	kt_engine_tick(w.eng);
	job = take_only();
	answer_batch(job, "v1");
	sm_value_free(&job->batch.values[3]);
	job->batch.nvalues = 3;
	job->batch.errors = calloc(1, sizeof(*job->batch.errors));
	assert_non_null(job->batch.errors);
	job->batch.nerrors = 1;
	job->batch.errors[0].secret_id = dup_str("d");
	aws_error_set(&job->batch.errors[0].err, AWS_ERR_NOT_FOUND, "ResourceNotFoundException",
		      "no such secret");
	park(e[3], 4, KT_WAIT_CURRENT);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_GONE, e[3]), 1);
	assert_true(e[3]->gone);
	assert_null(e[3]->cur.data);
	assert_int_equal(e[3]->failures, 0);
	assert_int_equal(resumed_once(4)->why, KT_RESUME_DONE);
	for (int i = 0; i < 3; i++)
		assert_non_null(e[i]->cur.data);

	/* a: DescribeSecret says it is scheduled for deletion. Its other
	 * versions and stage map go too. */
	kt_engine_fetch_version(w.eng, e[0], "v0", NULL);
	job = take_only();
	answer_value(job, "v0");
	finish(job);
	assert_non_null(kt_cache_value(e[0], "v0"));
	kt_engine_check(w.eng, e[0], KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", "v0", WALL0 - 60);
	park(e[0], 1, KT_WAIT_REFRESH);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_GONE, e[0]), 1);
	assert_true(e[0]->gone);
	assert_null(e[0]->cur.data);
	assert_null(kt_cache_value(e[0], "v0"));
	assert_null(kt_cache_value(e[0], "v1"));
	assert_null(e[0]->stages_map);
	assert_int_equal(w.njobs, 0); /* nothing fetched for it */
	assert_int_equal(resumed_once(1)->why, KT_RESUME_DONE);

	/* b: DescribeSecret fails with ResourceNotFound. */
	kt_engine_check(w.eng, e[1], KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_NOT_FOUND);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_GONE, e[1]), 1);
	assert_null(e[1]->cur.data);
	assert_int_equal(heard(0, KT_NEWS_FAILED, e[1]), 0);

	/* c: GetSecretValue of AWSCURRENT fails with ResourceNotFound. */
	kt_engine_fetch_current(w.eng, e[2], KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_NOT_FOUND);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_GONE, e[2]), 1);
	assert_null(e[2]->cur.data);

	assert_int_equal(heard(0, KT_NEWS_GONE, NULL), 4);
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
	/* Gone secrets are checked on schedule, not fetched again at once. */
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 0);
}

/* Without BatchGetSecretValue permission, first values are fetched one by
 * one; that refusal is no failure of the secrets. */
static void test_batch_denied(void **state)
{
	const char *names[] = { "a" }, *both[] = { "a", "b" };
	struct kt_job *job;

	(void)state;
	start(config(0, 1, names));
	kt_engine_tick(w.eng);
	job = take_only();
	answer_error(job, AWS_ERR_ACCESS_DENIED);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_FAILED, NULL), 0);
	assert_int_equal(entry("a")->failures, 0);
	assert_int_equal(kt_engine_unfetched(w.eng), 1);
	kt_engine_tick(w.eng);
	job = take_only();
	assert_int_equal(job->kind, KT_JOB_GET);
	assert_int_equal(job->purpose, PURPOSE_CURRENT);
	assert_string_equal(job->stage, "AWSCURRENT");
	answer_value(job, "v1");
	finish(job);
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, NULL), 1);

	/* Later first values (a reload adds a section) go one by one too. */
	assert_int_equal(kt_engine_configure(w.eng, config(1, 2, both)), 0);
	kt_engine_tick(w.eng);
	job = take_only();
	assert_int_equal(job->kind, KT_JOB_GET);
	assert_string_equal(job->ids[0], "b");
	answer_value(job, "v1");
	finish(job);
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
}

/* --- the fixed bugs: each test below failed against the engine before --- */

/* A denied BatchGetSecretValue makes every secret of the batch due again,
 * not only the first, none of them failed; each is then fetched alone. */
static void test_batch_denied_all(void **state)
{
	const char *names[] = { "a", "b", "c" };
	struct kt_config *cfg;
	struct kt_job *job;

	(void)state;
	cfg = config(0, 3, names);
	cfg->workers = 2; /* room for the three fetches at once */
	start(cfg);
	kt_engine_tick(w.eng);
	job = take_only();
	assert_int_equal(job->nids, 3);
	answer_error(job, AWS_ERR_ACCESS_DENIED);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_FAILED, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(entry(names[i])->failures, 0);
		assert_int_equal(entry(names[i])->next_check, T0);
	}
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 3);
	for (size_t i = 0; i < 3; i++) {
		job = take_for(entry(names[i]));
		assert_int_equal(job->kind, KT_JOB_GET);
		assert_string_equal(job->stage, "AWSCURRENT");
		answer_value(job, "v1");
		finish(job);
	}
	assert_int_equal(kt_engine_unfetched(w.eng), 0);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, NULL), 3);
}

/* A reload that points a section at another SecretId while a job about the
 * old one runs (a first-fetch batch, then a GetSecretValue): the new secret
 * is fetched at once, and the old answer never lands in the entry. */
static void test_repointed_section(void **state)
{
	const char *names[] = { "x" };
	struct kt_entry *x;
	struct kt_job *old, *job;

	(void)state;
	start(config(0, 1, names));
	x = entry("x");
	kt_engine_tick(w.eng);
	assert_string_equal(w.jobs[0]->ids[0], "x");
	config(1, 1, names);
	w.secs[1][0].id = (char *)"B";
	assert_int_equal(kt_engine_configure(w.eng, &w.cfg[1]), 0);
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2);
	job = take(1);
	old = take(0);
	assert_string_equal(job->ids[0], "B");
	answer_batch(old, "v1");
	finish(old);
	assert_null(x->cur.data);
	assert_true(x->in_flight); /* B's batch still runs */
	answer_batch(job, "v1");
	finish(job);
	assert_memory_equal(x->cur.data, "value of B at v1", 16);

	kt_engine_fetch_current(w.eng, x, KT_WHY_READ);
	config(0, 1, names);
	w.secs[0][0].id = (char *)"C";
	assert_int_equal(kt_engine_configure(w.eng, &w.cfg[0]), 0);
	park(x, 1, KT_WAIT_CURRENT);
	old = take_only();
	answer_value(old, "v2");
	finish(old);
	assert_null(x->cur.data);
	assert_int_equal(w.nres, 0); /* its reader waits for C's value */
	kt_engine_tick(w.eng);
	job = take_only();
	assert_string_equal(job->ids[0], "C");
	answer_batch(job, "v1");
	finish(job);
	assert_memory_equal(x->cur.data, "value of C at v1", 16);
	assert_int_equal(resumed_once(1)->why, KT_RESUME_DONE);
	assert_int_equal(heard(0, KT_NEWS_CHANGED, x), 2);
}

/* A throttled answer raises the throttle once, however many secrets it was
 * about: a batch of twenty refused whole, then a batch whose secrets each
 * came back throttled. */
static void test_throttled_batch(void **state)
{
	const char *names[SM_BATCH_MAX + 2];
	char buf[SM_BATCH_MAX + 2][8];
	struct kt_config *cfg;
	struct kt_sched_cfg sc;
	struct kt_job *job;

	(void)state;
	for (size_t i = 0; i < SM_BATCH_MAX + 2; i++) {
		snprintf(buf[i], sizeof(buf[i]), "s%02zu", i);
		names[i] = buf[i];
	}
	cfg = config(0, SM_BATCH_MAX + 2, names);
	start(cfg);
	sc = sched_of(cfg);
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 2);
	job = take(0);
	assert_int_equal(job->nids, SM_BATCH_MAX);
	answer_error(job, AWS_ERR_THROTTLED);
	finish(job);
	assert_int_equal(kt_engine_throttled_until(w.eng), kt_sched_backoff(&sc, 1, T0, w.rnd));

	job = take_only();
	job->rc = 0;
	job->batch.errors = calloc(job->nids, sizeof(*job->batch.errors));
	assert_non_null(job->batch.errors);
	for (size_t i = 0; i < job->nids; i++) {
		job->batch.errors[i].secret_id = dup_str(job->ids[i]);
		aws_error_set(&job->batch.errors[i].err, AWS_ERR_THROTTLED, "ThrottlingException",
			      "rate exceeded");
	}
	job->batch.nerrors = job->nids;
	finish(job);
	assert_int_equal(kt_engine_throttled_until(w.eng), kt_sched_backoff(&sc, 2, T0, w.rnd));
	assert_int_equal(heard(0, KT_NEWS_FAILED, NULL), SM_BATCH_MAX + 2);
}

/* GONE is told once per disappearance, not at every later check that says
 * so again (DeletedDate or ResourceNotFound); a secret that came back and
 * goes again is told again. */
static void test_gone_once(void **state)
{
	const char *names[] = { "a" };
	struct kt_entry *a;
	struct kt_job *job;

	(void)state;
	start(config(0, 1, names));
	prime();
	a = entry("a");
	for (int i = 0; i < 3; i++) {
		kt_engine_check(w.eng, a, KT_WHY_READ);
		job = take_only();
		if (i < 2)
			answer_describe(job, "v1", NULL, WALL0 - 60);
		else
			answer_error(job, AWS_ERR_NOT_FOUND);
		finish(job);
		assert_true(a->gone);
		assert_int_equal(heard(0, KT_NEWS_GONE, a), 1);
	}
	/* Restored in AWS: the check fetches its value again. */
	kt_engine_check(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_describe(job, "v1", NULL, 0);
	finish(job);
	job = take_only();
	answer_value(job, "v1");
	finish(job);
	assert_false(a->gone);
	assert_non_null(a->cur.data);
	kt_engine_fetch_current(w.eng, a, KT_WHY_READ);
	job = take_only();
	answer_error(job, AWS_ERR_NOT_FOUND);
	finish(job);
	assert_int_equal(heard(0, KT_NEWS_GONE, a), 2);
}

/* SUPERSEDED is told once per move of AWSCURRENT: the checks that find it
 * moved while its fetch keeps failing fetch it again, and tell nothing more;
 * the next move is told again. */
static void test_superseded_once(void **state)
{
	const char *names[] = { "a" };
	struct kt_entry *a;
	struct kt_job *job;

	(void)state;
	start(config(0, 1, names));
	prime();
	a = entry("a");
	for (int i = 0; i < 4; i++) {
		kt_engine_check(w.eng, a, KT_WHY_READ);
		job = take_only();
		answer_describe(job, i < 3 ? "v2" : "v3", "v1", 0);
		finish(job);
		assert_int_equal(heard(0, KT_NEWS_SUPERSEDED, a), i < 3 ? 1 : 2);
		job = take_only();
		assert_string_equal(job->version_id, i < 3 ? "v2" : "v3");
		if (i < 2)
			answer_error(job, AWS_ERR_DECRYPTION);
		else
			answer_value(job, i < 3 ? "v2" : "v3");
		finish(job);
	}
	assert_string_equal(w.heard[w.nheard - 2].version, "v3");
	assert_string_equal(a->cur.version_id, "v3");
	assert_int_equal(heard(0, KT_NEWS_CHANGED, a), 2);
}

/* A secret a batch answer leaves out is fetched on its own (a batch would
 * likely leave it out again); a section added later still goes by batch. */
static void test_batch_left_out(void **state)
{
	const char *names[] = { "a", "b" }, *three[] = { "a", "b", "c" };
	struct kt_entry *b;
	struct kt_job *job;

	(void)state;
	start(config(0, 2, names));
	b = entry("b");
	kt_engine_tick(w.eng);
	job = take_only();
	answer_batch(job, "v1");
	sm_value_free(&job->batch.values[1]);
	job->batch.nvalues = 1;
	finish(job);
	assert_null(b->cur.data);
	assert_int_equal(b->failures, 0);
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 1);
	assert_int_equal(w.jobs[0]->kind, KT_JOB_GET);
	job = take_for(b);
	assert_string_equal(job->stage, "AWSCURRENT");
	answer_value(job, "v1");
	finish(job);
	assert_int_equal(kt_engine_unfetched(w.eng), 0);

	assert_int_equal(kt_engine_configure(w.eng, config(1, 3, three)), 0);
	kt_engine_tick(w.eng);
	assert_int_equal(w.njobs, 1);
	assert_int_equal(w.jobs[0]->kind, KT_JOB_BATCH_GET);
}

/* After a stop, a check that comes back with AWSCURRENT moved starts no
 * GetSecretValue: the value in hand is only marked superseded. */
static void test_stop_moved(void **state)
{
	const char *names[] = { "a" };
	struct kt_entry *a;
	struct kt_job *job;

	(void)state;
	start(config(0, 1, names));
	prime();
	a = entry("a");
	kt_engine_check(w.eng, a, KT_WHY_READ);
	kt_engine_stop(w.eng);
	job = take_only();
	answer_describe(job, "v2", "v1", 0);
	finish(job);
	assert_int_equal(w.njobs, 0);
	assert_int_equal(w.submitted, 2);
	assert_false(a->in_flight);
	assert_true(a->superseded);
	assert_string_equal(a->cur.version_id, "v1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_seen_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiet_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_fetch_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deletion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_denied_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repointed_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttled_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_superseded_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_moved, setup, teardown),
	};
	char err[256];

	log_init("test_engine", true, KT_LOG_ERR);
	if (kt_secure_init(65536, err, sizeof(err)) < 0) {
		fprintf(stderr, "kt_secure_init: %s\n", err);
		return 1;
	}
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}

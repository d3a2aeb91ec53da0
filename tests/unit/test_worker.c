/* Unit tests for the worker pool. The Secrets Manager calls are faked here,
 * so worker.c links without an AWS client: the fakes answer from the ids,
 * can be held at a gate, and record which thread ran them and its mask. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker.h"

/* The workers never look inside the client; any distinct pointer will do. */
static int fake_client_storage;
#define FAKE_CLIENT ((struct aws_client *)(void *)&fake_client_storage)

#define MAX_THREADS_SEEN 16

/* The fakes run on worker threads, where a cmocka assertion would longjmp
 * into the main thread's stack; a broken expectation there aborts instead. */
#define FAKE_CHECK(cond)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: fake: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Everything the fakes share with the tests, under one lock. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool gate_closed;       /* fakes wait while this is true */
	long sleep_us;          /* each fake call sleeps this long */
	unsigned long requests; /* what aws_client_requests_sent reports */
	int calls;              /* fake sm_* calls begun */
	int live;               /* result structs filled and not yet freed */
	bool mask_ok;           /* every call ran with the loop's signals blocked */
	int cancels;            /* aws_client_cancel calls */
	bool cancelled;         /* calls at the gate end at once, with -ECANCELED */
	pthread_t threads[MAX_THREADS_SEEN];
	int nthreads;
} fake = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};

static void fake_reset(void)
{
	pthread_mutex_lock(&fake.lock);
	fake.gate_closed = false;
	fake.sleep_us = 0;
	fake.calls = 0;
	fake.live = 0;
	fake.mask_ok = true;
	fake.nthreads = 0;
	fake.cancels = 0;
	fake.cancelled = false;
	pthread_mutex_unlock(&fake.lock);
}

static void gate_set(bool closed)
{
	pthread_mutex_lock(&fake.lock);
	fake.gate_closed = closed;
	pthread_cond_broadcast(&fake.changed);
	pthread_mutex_unlock(&fake.lock);
}

/* Waits until at least n fake calls have begun. */
static void wait_calls(int n)
{
	pthread_mutex_lock(&fake.lock);
	while (fake.calls < n)
		pthread_cond_wait(&fake.changed, &fake.lock);
	pthread_mutex_unlock(&fake.lock);
}

static int fake_get(int *field)
{
	int v;

	pthread_mutex_lock(&fake.lock);
	v = *field;
	pthread_mutex_unlock(&fake.lock);
	return v;
}

static bool signals_blocked_here(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGUSR1, SIGCHLD, SIGALRM };
	sigset_t cur;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!sigismember(&cur, sigs[i]))
			return false;
	/* Fault signals stay deliverable so that crashes are reported. */
	return !sigismember(&cur, SIGSEGV);
}

/* Stands in for the client's cancel: a call held at the gate ends, as a
 * cancelled HTTP request would, and later ones do not wait there. */
void aws_client_cancel(struct aws_client *c)
{
	FAKE_CHECK(c == FAKE_CLIENT);
	pthread_mutex_lock(&fake.lock);
	fake.cancels++;
	fake.cancelled = true;
	pthread_cond_broadcast(&fake.changed);
	pthread_mutex_unlock(&fake.lock);
}

/* The common part of every fake call: count it, note the thread and its
 * mask, wait at the gate, sleep, and count one HTTP request. Returns true
 * when the call was cancelled at the gate. */
static bool fake_enter(void)
{
	pthread_t self = pthread_self();
	bool blocked = signals_blocked_here();
	bool known = false;
	long us;

	pthread_mutex_lock(&fake.lock);
	fake.calls++;
	if (!blocked)
		fake.mask_ok = false;
	for (int i = 0; i < fake.nthreads; i++)
		if (pthread_equal(fake.threads[i], self))
			known = true;
	if (!known && fake.nthreads < MAX_THREADS_SEEN)
		fake.threads[fake.nthreads++] = self;
	pthread_cond_broadcast(&fake.changed);
	while (fake.gate_closed && !fake.cancelled)
		pthread_cond_wait(&fake.changed, &fake.lock);
	if (fake.cancelled) {
		pthread_mutex_unlock(&fake.lock);
		return true;
	}
	us = fake.sleep_us;
	pthread_mutex_unlock(&fake.lock);
	if (us > 0)
		usleep((useconds_t)us);
	pthread_mutex_lock(&fake.lock);
	fake.requests++;
	pthread_mutex_unlock(&fake.lock);
	return false;
}

static void live_add(int d)
{
	pthread_mutex_lock(&fake.lock);
	fake.live += d;
	pthread_mutex_unlock(&fake.lock);
}

unsigned long aws_client_requests_sent(struct aws_client *c)
{
	unsigned long n;

	FAKE_CHECK(c == FAKE_CLIENT);
	pthread_mutex_lock(&fake.lock);
	n = fake.requests;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);

	FAKE_CHECK(d != NULL);
	return d;
}

static void fill_value(struct sm_value *v, const char *id, const char *version_id,
		       const char *stage)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "value-of-%s", id);

	FAKE_CHECK(n > 0 && (size_t)n < sizeof(buf));
	v->name = dup_or_die(id);
	v->arn = dup_or_die("arn:aws:secretsmanager:us-east-1:123456789012:secret:x");
	v->version_id = dup_or_die(version_id != NULL ? version_id : "v-current");
	v->stages = calloc(1, sizeof(*v->stages));
	FAKE_CHECK(v->stages != NULL);
	v->stages[0] = dup_or_die(stage != NULL ? stage : "AWSCURRENT");
	v->nstages = 1;
	v->data = (unsigned char *)dup_or_die(buf);
	v->len = (size_t)n;
}

int sm_get_secret_value(struct aws_client *c, const char *id, const char *version_id,
			const char *stage, struct sm_value *out, struct aws_error *err)
{
	FAKE_CHECK(c == FAKE_CLIENT);
	memset(out, 0, sizeof(*out));
	if (fake_enter()) {
		aws_error_set(err, AWS_ERR_TRANSPORT, "Cancelled", "the call was cancelled");
		return -ECANCELED;
	}
	if (strcmp(id, "missing") == 0) {
		aws_error_set(err, AWS_ERR_NOT_FOUND, "ResourceNotFoundException",
			      "Secrets Manager can't find the specified secret.");
		return -ENOENT;
	}
	fill_value(out, id, version_id, stage);
	live_add(1);
	return 0;
}

int sm_batch_get_secret_value(struct aws_client *c, const char *const *ids, size_t n,
			      struct sm_batch *out, struct aws_error *err)
{
	(void)err;
	FAKE_CHECK(c == FAKE_CLIENT);
	memset(out, 0, sizeof(*out));
	if (fake_enter())
		return -ECANCELED;
	out->values = calloc(n, sizeof(*out->values));
	FAKE_CHECK(out->values != NULL);
	for (size_t i = 0; i < n; i++)
		fill_value(&out->values[i], ids[i], NULL, NULL);
	out->nvalues = n;
	live_add(1);
	return 0;
}

int sm_describe_secret(struct aws_client *c, const char *id, struct sm_description *out,
		       struct aws_error *err)
{
	(void)err;
	FAKE_CHECK(c == FAKE_CLIENT);
	memset(out, 0, sizeof(*out));
	if (fake_enter())
		return -ECANCELED;
	out->name = dup_or_die(id);
	out->arn = dup_or_die("arn:aws:secretsmanager:us-east-1:123456789012:secret:x");
	out->rotation_enabled = true;
	out->rotation_duration = dup_or_die("3h");
	live_add(1);
	return 0;
}

static void value_release(struct sm_value *v)
{
	free(v->arn);
	free(v->name);
	free(v->version_id);
	for (size_t i = 0; i < v->nstages; i++)
		free(v->stages[i]);
	free(v->stages);
	free(v->data);
	memset(v, 0, sizeof(*v));
}

void sm_value_free(struct sm_value *v)
{
	if (v == NULL || v->name == NULL)
		return;
	value_release(v);
	live_add(-1);
}

void sm_batch_free(struct sm_batch *b)
{
	if (b == NULL || b->values == NULL)
		return;
	for (size_t i = 0; i < b->nvalues; i++)
		value_release(&b->values[i]);
	free(b->values);
	memset(b, 0, sizeof(*b));
	live_add(-1);
}

void sm_description_free(struct sm_description *d)
{
	if (d == NULL || d->name == NULL)
		return;
	free(d->arn);
	free(d->name);
	free(d->rotation_duration);
	memset(d, 0, sizeof(*d));
	live_add(-1);
}

static int setup(void **state)
{
	(void)state;
	fake_reset();
	return 0;
}

static bool fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	assert_true(n >= 0);
	return n == 1 && (p.revents & POLLIN) != 0;
}

/* Collects n finished jobs the way the loop would: poll, then take. */
static struct kt_job **collect(struct kt_workers *w, size_t n)
{
	struct kt_job **got = calloc(n, sizeof(*got));
	size_t have = 0;

	assert_non_null(got);
	while (have < n) {
		struct kt_job *job;

		assert_true(fd_readable(kt_workers_fd(w), 10000));
		job = kt_workers_take_done(w);
		while (job != NULL) {
			struct kt_job *next = job->next;

			assert_true(have < n);
			job->next = NULL;
			got[have++] = job;
			job = next;
		}
	}
	return got;
}

static void test_job_new_copies(void **state)
{
	char id[] = "app/db";
	char ver[] = "v-123";
	char stage[] = "AWSPENDING";
	const char *ids[] = { id };
	struct kt_job *job;

	(void)state;
	job = kt_job_new(KT_JOB_GET, 42, ids, 1, ver, stage);
	assert_non_null(job);
	id[0] = 'X';
	ver[0] = 'X';
	stage[0] = 'X';
	assert_string_equal(job->ids[0], "app/db");
	assert_string_equal(job->version_id, "v-123");
	assert_string_equal(job->stage, "AWSPENDING");
	assert_int_equal(job->nids, 1);
	assert_int_equal(job->tag, 42);
	assert_int_equal(job->kind, KT_JOB_GET);
	assert_int_equal(job->err.code, AWS_OK);
	kt_job_free(job);

	job = kt_job_new(KT_JOB_DESCRIBE, 1, ids, 1, NULL, NULL);
	assert_non_null(job);
	assert_null(job->version_id);
	assert_null(job->stage);
	kt_job_free(job);
	kt_job_free(NULL);
}

static void test_job_new_bad_shapes(void **state)
{
	const char *ids[SM_BATCH_MAX + 1];
	const char *with_null[] = { "a", NULL };

	(void)state;
	for (size_t i = 0; i < SM_BATCH_MAX + 1; i++)
		ids[i] = "s";
	errno = 0;
	assert_null(kt_job_new(KT_JOB_GET, 0, ids, 2, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(kt_job_new(KT_JOB_GET, 0, ids, 0, NULL, NULL));
	assert_null(kt_job_new(KT_JOB_DESCRIBE, 0, ids, 2, NULL, NULL));
	assert_null(kt_job_new(KT_JOB_BATCH_GET, 0, ids, 0, NULL, NULL));
	assert_null(kt_job_new(KT_JOB_BATCH_GET, 0, ids, SM_BATCH_MAX + 1, NULL, NULL));
	assert_null(kt_job_new(KT_JOB_BATCH_GET, 0, with_null, 2, NULL, NULL));
	assert_null(kt_job_new(KT_JOB_GET, 0, NULL, 1, NULL, NULL));
	assert_null(kt_job_new((enum kt_job_kind)99, 0, ids, 1, NULL, NULL));
	assert_int_equal(errno, EINVAL);
}

static void test_start_bad_args(void **state)
{
	struct kt_workers *w = NULL;

	(void)state;
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 0, &w), -EINVAL);
	assert_null(w);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 1000, &w), -EINVAL);
	assert_int_equal(kt_workers_start(NULL, 2, &w), -EINVAL);
	assert_null(w);
	kt_workers_stop(NULL);
}

/* One job: the eventfd wakes the loop, take_done hands the job back and
 * leaves the eventfd quiet again. */
static void test_eventfd_wakes_and_drains(void **state)
{
	const char *ids[] = { "app/db" };
	struct kt_workers *w = NULL;
	struct kt_job *job, *done;

	(void)state;
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 1, &w), 0);
	assert_false(fd_readable(kt_workers_fd(w), 0));
	assert_null(kt_workers_take_done(w));

	job = kt_job_new(KT_JOB_GET, 7, ids, 1, "v-9", NULL);
	assert_non_null(job);
	kt_workers_submit(w, job);
	assert_true(fd_readable(kt_workers_fd(w), 10000));
	done = kt_workers_take_done(w);
	assert_ptr_equal(done, job);
	assert_null(done->next);
	assert_false(fd_readable(kt_workers_fd(w), 0));

	assert_int_equal(done->rc, 0);
	assert_int_equal(done->err.code, AWS_OK);
	assert_string_equal(done->value.name, "app/db");
	assert_string_equal(done->value.version_id, "v-9");
	assert_string_equal(done->value.stages[0], "AWSCURRENT");
	assert_int_equal(done->value.len, strlen("value-of-app/db"));
	assert_memory_equal(done->value.data, "value-of-app/db", done->value.len);
	assert_int_equal(done->requests, 1);
	assert_int_equal(fake_get(&fake.live), 1);
	kt_job_free(done);
	assert_int_equal(fake_get(&fake.live), 0);
	kt_workers_stop(w);
}

static void check_result(const struct kt_job *job)
{
	char want[256];

	assert_true(job->requests >= 1);
	switch (job->kind) {
	case KT_JOB_GET:
		if (strcmp(job->ids[0], "missing") == 0) {
			assert_int_equal(job->rc, -ENOENT);
			assert_int_equal(job->err.code, AWS_ERR_NOT_FOUND);
			assert_null(job->value.data);
			break;
		}
		assert_int_equal(job->rc, 0);
		assert_string_equal(job->value.name, job->ids[0]);
		assert_string_equal(job->value.stages[0], job->stage);
		snprintf(want, sizeof(want), "value-of-%s", job->ids[0]);
		assert_string_equal((const char *)job->value.data, want);
		break;
	case KT_JOB_BATCH_GET:
		assert_int_equal(job->rc, 0);
		assert_int_equal(job->batch.nvalues, job->nids);
		for (size_t i = 0; i < job->nids; i++)
			assert_string_equal(job->batch.values[i].name, job->ids[i]);
		break;
	case KT_JOB_DESCRIBE:
		assert_int_equal(job->rc, 0);
		assert_string_equal(job->desc.name, job->ids[0]);
		assert_string_equal(job->desc.rotation_duration, "3h");
		break;
	}
}

/* Many jobs of every kind over four threads: each comes back exactly once,
 * with its own result, and no thread is left with a loop signal unblocked. */
static void test_many_jobs_four_threads(void **state)
{
	enum { NJOBS = 300 };
	struct kt_workers *w = NULL;
	struct kt_job **got;
	bool seen[NJOBS] = { false };
	sigset_t before, after;

	(void)state;
	pthread_mutex_lock(&fake.lock);
	fake.sleep_us = 500;
	pthread_mutex_unlock(&fake.lock);
	pthread_sigmask(SIG_BLOCK, NULL, &before);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 4, &w), 0);
	/* The caller's own mask is left as it was. */
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	assert_int_equal(sigismember(&before, SIGTERM), sigismember(&after, SIGTERM));
	assert_int_equal(sigismember(&before, SIGHUP), sigismember(&after, SIGHUP));

	for (int i = 0; i < NJOBS; i++) {
		char id[64], id2[64];
		const char *ids[] = { id, id2 };
		struct kt_job *job;

		snprintf(id, sizeof(id), "secret/%d", i);
		snprintf(id2, sizeof(id2), "secret/%d-b", i);
		switch (i % 4) {
		case 0:
			job = kt_job_new(KT_JOB_GET, (uint64_t)i, ids, 1, NULL, "AWSPREVIOUS");
			break;
		case 1:
			job = kt_job_new(KT_JOB_BATCH_GET, (uint64_t)i, ids, 2, NULL, NULL);
			break;
		case 2:
			job = kt_job_new(KT_JOB_DESCRIBE, (uint64_t)i, ids, 1, NULL, NULL);
			break;
		default:
			ids[0] = "missing";
			job = kt_job_new(KT_JOB_GET, (uint64_t)i, ids, 1, NULL, "AWSCURRENT");
			break;
		}
		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	got = collect(w, NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		assert_true(got[i]->tag < NJOBS);
		assert_false(seen[got[i]->tag]);
		seen[got[i]->tag] = true;
		check_result(got[i]);
	}
	/* Nothing more comes back. */
	assert_false(fd_readable(kt_workers_fd(w), 50));
	assert_null(kt_workers_take_done(w));
	assert_int_equal(kt_workers_busy(w), 0);

	assert_int_equal(fake_get(&fake.calls), NJOBS);
	assert_true(fake_get(&fake.nthreads) >= 2);
	assert_true(fake_get(&fake.nthreads) <= 4);
	for (int i = 0; i < fake.nthreads; i++)
		assert_false(pthread_equal(fake.threads[i], pthread_self()));
	assert_true(fake.mask_ok);

	for (int i = 0; i < NJOBS; i++)
		kt_job_free(got[i]);
	free(got);
	assert_int_equal(fake_get(&fake.live), 0);
	kt_workers_stop(w);
}

/* One thread takes jobs in the order they were queued. */
static void test_fifo_order(void **state)
{
	enum { NJOBS = 20 };
	const char *ids[] = { "s" };
	struct kt_workers *w = NULL;
	struct kt_job **got;

	(void)state;
	gate_set(true);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 1, &w), 0);
	for (int i = 0; i < NJOBS; i++) {
		struct kt_job *job = kt_job_new(KT_JOB_DESCRIBE, (uint64_t)i, ids, 1, NULL, NULL);

		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	gate_set(false);
	got = collect(w, NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(got[i]->tag, i);
		kt_job_free(got[i]);
	}
	free(got);
	kt_workers_stop(w);
}

/* Busy counts jobs queued and running, not jobs waiting to be taken. */
static void test_busy_count(void **state)
{
	const char *ids[] = { "s" };
	struct kt_workers *w = NULL;
	struct kt_job **got;

	(void)state;
	gate_set(true);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 2, &w), 0);
	assert_int_equal(kt_workers_busy(w), 0);
	for (int i = 0; i < 5; i++) {
		struct kt_job *job = kt_job_new(KT_JOB_DESCRIBE, (uint64_t)i, ids, 1, NULL, NULL);

		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	wait_calls(2);
	/* Two running at the gate, three queued. */
	assert_int_equal(kt_workers_busy(w), 5);
	assert_int_equal(fake_get(&fake.calls), 2);
	gate_set(false);
	got = collect(w, 5);
	assert_int_equal(kt_workers_busy(w), 0);
	for (int i = 0; i < 5; i++)
		kt_job_free(got[i]);
	free(got);
	kt_workers_stop(w);
}

static void *open_gate_later(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	gate_set(false);
	return NULL;
}

/* Stopping with a job running and many queued: the running one finishes,
 * the queued ones never start, and every job and result is freed (ASan's
 * leak check would report any that is not). Each call after the gate takes
 * 50 ms, so more than a few running would mean the stop flag was ignored. */
static void test_stop_frees_queued(void **state)
{
	enum { NJOBS = 20 };
	const char *ids[] = { "s" };
	struct kt_workers *w = NULL;
	pthread_t opener;

	(void)state;
	gate_set(true);
	pthread_mutex_lock(&fake.lock);
	fake.sleep_us = 50 * 1000;
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 1, &w), 0);
	for (int i = 0; i < NJOBS; i++) {
		struct kt_job *job = kt_job_new(KT_JOB_GET, (uint64_t)i, ids, 1, "v", "AWSCURRENT");

		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	wait_calls(1);
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
	kt_workers_stop(w);
	assert_int_equal(pthread_join(opener, NULL), 0);
	assert_true(fake_get(&fake.calls) >= 1);
	assert_true(fake_get(&fake.calls) < NJOBS);
	assert_int_equal(fake_get(&fake.live), 0);
}

/* kt_workers_abort returns at once with a call held in flight (only the
 * client's cancel ends it), cancels the client once, starts no queued job;
 * kt_workers_stop then joins without waiting for the gate. */
static void test_abort_cancels_in_flight(void **state)
{
	enum { NJOBS = 5 };
	const char *ids[] = { "s" };
	struct kt_workers *w = NULL;
	struct kt_job *done;
	int ndone = 0;

	(void)state;
	gate_set(true);
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 1, &w), 0);
	for (int i = 0; i < NJOBS; i++) {
		struct kt_job *job = kt_job_new(KT_JOB_DESCRIBE, (uint64_t)i, ids, 1, NULL, NULL);

		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	wait_calls(1);
	assert_int_equal(fake_get(&fake.cancels), 0);
	kt_workers_abort(w);
	assert_int_equal(fake_get(&fake.cancels), 1);
	/* The cancelled job comes back, with its error, and nothing after it. */
	assert_true(fd_readable(kt_workers_fd(w), 10000));
	done = kt_workers_take_done(w);
	for (struct kt_job *j = done; j != NULL; j = j->next) {
		assert_int_equal(j->rc, -ECANCELED);
		ndone++;
	}
	assert_int_equal(ndone, 1);
	while (done != NULL) {
		struct kt_job *next = done->next;

		kt_job_free(done);
		done = next;
	}
	kt_workers_stop(w);
	assert_int_equal(fake_get(&fake.calls), 1);
	assert_int_equal(fake_get(&fake.live), 0);
	gate_set(false);
}

/* Stopping idle threads, and stopping with finished jobs never taken. */
static void test_stop_with_done_untaken(void **state)
{
	const char *ids[] = { "a", "b", "c" };
	struct kt_workers *w = NULL;

	(void)state;
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 3, &w), 0);
	kt_workers_stop(w);
	assert_int_equal(fake_get(&fake.cancels), 1);
	/* A stop cancels the client for good; the fake's next pool gets a fresh one. */
	fake_reset();

	w = NULL;
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 2, &w), 0);
	for (int i = 0; i < 4; i++) {
		struct kt_job *job = kt_job_new(KT_JOB_BATCH_GET, (uint64_t)i, ids, 3, NULL, NULL);

		assert_non_null(job);
		kt_workers_submit(w, job);
	}
	while (kt_workers_busy(w) > 0)
		usleep(1000);
	assert_true(fd_readable(kt_workers_fd(w), 0));
	assert_int_equal(fake_get(&fake.live), 4);
	kt_workers_stop(w);
	assert_int_equal(fake_get(&fake.live), 0);
}

/* A job sent again drops its old results before it runs, so a retry by the
 * loop leaks nothing; kt_job_free then frees the new ones. */
static void test_resubmit_and_free_results(void **state)
{
	const char *ids[] = { "app/db" };
	struct kt_workers *w = NULL;
	struct kt_job *job, *done;

	(void)state;
	assert_int_equal(kt_workers_start(FAKE_CLIENT, 2, &w), 0);
	job = kt_job_new(KT_JOB_GET, 1, ids, 1, NULL, NULL);
	assert_non_null(job);
	for (int round = 0; round < 3; round++) {
		kt_workers_submit(w, job);
		assert_true(fd_readable(kt_workers_fd(w), 10000));
		done = kt_workers_take_done(w);
		assert_ptr_equal(done, job);
		assert_int_equal(done->rc, 0);
		assert_int_equal(fake_get(&fake.live), 1);
	}
	kt_job_free(job);
	assert_int_equal(fake_get(&fake.live), 0);
	kt_workers_stop(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_job_new_copies, setup),
		cmocka_unit_test_setup(test_job_new_bad_shapes, setup),
		cmocka_unit_test_setup(test_start_bad_args, setup),
		cmocka_unit_test_setup(test_eventfd_wakes_and_drains, setup),
		cmocka_unit_test_setup(test_many_jobs_four_threads, setup),
		cmocka_unit_test_setup(test_fifo_order, setup),
		cmocka_unit_test_setup(test_busy_count, setup),
		cmocka_unit_test_setup(test_stop_frees_queued, setup),
		cmocka_unit_test_setup(test_abort_cancels_in_flight, setup),
		cmocka_unit_test_setup(test_stop_with_done_untaken, setup),
		cmocka_unit_test_setup(test_resubmit_and_free_results, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

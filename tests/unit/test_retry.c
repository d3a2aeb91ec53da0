/* Unit tests for the "standard" retry mode: which codes are retried, the
 * attempt limit and AWS_MAX_ATTEMPTS, the backoff's bounds, and the quota. */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "aws/retry.h"

/* The largest double below 1: the top of rnd's range [0,1). */
#define ALMOST_ONE (1.0 - DBL_EPSILON / 2)

static void test_retryable_codes(void **state)
{
	enum aws_errc c;

	(void)state;
	for (c = AWS_OK; c <= AWS_ERR_OTHER; c++) {
		bool want = c == AWS_ERR_THROTTLED || c == AWS_ERR_SERVER ||
			    c == AWS_ERR_TRANSPORT || c == AWS_ERR_TIMEOUT ||
			    c == AWS_ERR_CLOCK_SKEW;
		assert_int_equal(aws_retry_is_retryable(c), want);
	}
}

/* A code that is not retryable is refused at once and costs nothing. */
static void test_should_retry_refuses_permanent(void **state)
{
	static const enum aws_errc codes[] = {
		AWS_ERR_NOT_FOUND,      AWS_ERR_ACCESS_DENIED,   AWS_ERR_AUTH,
		AWS_ERR_EXPIRED_TOKEN,  AWS_ERR_INVALID_REQUEST, AWS_ERR_DECRYPTION,
		AWS_ERR_EXISTS,         AWS_ERR_LIMIT,           AWS_ERR_MALFORMED,
		AWS_ERR_NO_CREDENTIALS, AWS_ERR_CONFIG,          AWS_ERR_OTHER,
	};
	struct aws_retry r;
	uint64_t cost = 77;
	long delay = -5;
	size_t i;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 5), 0);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_false(aws_retry_should_retry(&r, codes[i], 1, &delay, &cost));
		assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	}
	/* Outputs are left alone when the answer is no. */
	assert_int_equal(cost, 77);
	assert_int_equal(delay, -5);
	aws_retry_destroy(&r);
}

static void test_should_retry_accepts_transient(void **state)
{
	static const enum aws_errc codes[] = {
		AWS_ERR_THROTTLED, AWS_ERR_SERVER,     AWS_ERR_TRANSPORT,
		AWS_ERR_TIMEOUT,   AWS_ERR_CLOCK_SKEW,
	};
	struct aws_retry r;
	uint64_t cost;
	long delay;
	size_t i;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cost = 0;
		delay = -1;
		assert_true(aws_retry_should_retry(&r, codes[i], 1, &delay, &cost));
		assert_int_equal(cost, codes[i] == AWS_ERR_TIMEOUT ? 10 : 5);
		assert_in_range(delay, 0, AWS_RETRY_BASE_MS - 1);
		aws_retry_on_success(&r, cost);
		assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	}
	aws_retry_destroy(&r);
}

static void test_default_attempts(void **state)
{
	struct aws_retry r;

	(void)state;
	unsetenv("AWS_MAX_ATTEMPTS");
	assert_int_equal(aws_retry_init(&r, 0), 0);
	assert_int_equal(r.max_attempts, AWS_RETRY_DEFAULT_ATTEMPTS);
	assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	assert_int_equal(r.base_ms, AWS_RETRY_BASE_MS);
	assert_int_equal(r.cap_ms, AWS_RETRY_CAP_MS);
	aws_retry_destroy(&r);

	/* A negative argument means "not given", like 0. */
	assert_int_equal(aws_retry_init(&r, -4), 0);
	assert_int_equal(r.max_attempts, AWS_RETRY_DEFAULT_ATTEMPTS);
	aws_retry_destroy(&r);
}

static void test_env_attempts(void **state)
{
	static const struct {
		const char *value;
		int rc;
		int attempts;
	} cases[] = {
		{ "5", 0, 5 },
		{ "1", 0, 1 },
		{ "12", 0, 12 },
		{ "2147483647", 0, INT_MAX },
		{ "", 0, AWS_RETRY_DEFAULT_ATTEMPTS },
		{ "0", -EINVAL, 0 },
		{ "-2", -EINVAL, 0 },
		{ "+4", -EINVAL, 0 },
		{ " 4", -EINVAL, 0 },
		{ "4 ", -EINVAL, 0 },
		{ "3x", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "2.5", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "2147483648", -EINVAL, 0 },
		{ "99999999999999999999999", -EINVAL, 0 },
	};
	struct aws_retry r;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(setenv("AWS_MAX_ATTEMPTS", cases[i].value, 1), 0);
		rc = aws_retry_init(&r, 0);
		if (rc != cases[i].rc)
			fail_msg("AWS_MAX_ATTEMPTS='%s': rc %d, want %d", cases[i].value, rc,
				 cases[i].rc);
		if (rc == 0) {
			assert_int_equal(r.max_attempts, cases[i].attempts);
			aws_retry_destroy(&r);
		}
	}

	/* An explicit argument wins over the environment, even a bad one. */
	assert_int_equal(setenv("AWS_MAX_ATTEMPTS", "junk", 1), 0);
	assert_int_equal(aws_retry_init(&r, 4), 0);
	assert_int_equal(r.max_attempts, 4);
	aws_retry_destroy(&r);
	assert_int_equal(setenv("AWS_MAX_ATTEMPTS", "7", 1), 0);
	assert_int_equal(aws_retry_init(&r, 2), 0);
	assert_int_equal(r.max_attempts, 2);
	aws_retry_destroy(&r);
	unsetenv("AWS_MAX_ATTEMPTS");
}

/* After attempt n fails, a retry is allowed only while n < max_attempts. */
static void test_attempt_limit(void **state)
{
	struct aws_retry r;
	uint64_t cost;
	long delay;
	int max, n;

	(void)state;
	for (max = 1; max <= 6; max++) {
		assert_int_equal(aws_retry_init(&r, max), 0);
		for (n = 1; n <= max + 2; n++)
			assert_int_equal(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, n, &delay,
								&cost),
					 n < max);
		/* Only the granted retries were paid for. */
		assert_int_equal(r.quota, AWS_RETRY_QUOTA - (unsigned)(max - 1) * 5);
		/* An attempt number below 1 is a caller's bug: no retry. */
		assert_false(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 0, &delay, &cost));
		aws_retry_destroy(&r);
	}
}

/* The limit for attempt n is min(cap, base * 2^(n-1)). */
static long expected_limit(long base, long cap, int n)
{
	long v = base;
	int i;

	for (i = 1; i < n && v < cap; i++)
		v *= 2;
	return v < cap ? v : cap;
}

static void test_backoff_bounds(void **state)
{
	static const long want[] = { 1000,  2000,  4000,  8000,  16000,
				     20000, 20000, 20000, 20000, 20000 };
	struct aws_retry r;
	long prev = 0, hi;
	int n;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (n = 1; n <= 10; n++) {
		assert_int_equal(aws_retry_backoff_ms(&r, n, 0.0), 0);
		hi = aws_retry_backoff_ms(&r, n, ALMOST_ONE);
		/* With rnd just below 1 the delay is just below the limit. */
		assert_int_equal(hi, want[n - 1] - 1);
		assert_true(hi >= 0 && hi < AWS_RETRY_CAP_MS);
		/* It doubles until the cap, then stays there. */
		if (n > 1 && want[n - 1] < AWS_RETRY_CAP_MS)
			assert_int_equal(hi + 1, 2 * (prev + 1));
		assert_true(hi >= prev);
		prev = hi;
		assert_int_equal(aws_retry_backoff_ms(&r, n, 0.5), want[n - 1] / 2);
	}
	aws_retry_destroy(&r);
}

/* Small or odd settings, absurd attempt numbers and out-of-range fractions
 * must neither overflow (UBSan watches) nor leave [0, limit). */
static void test_backoff_edges(void **state)
{
	struct aws_retry r;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	r.base_ms = 10;
	r.cap_ms = 100;
	assert_int_equal(aws_retry_backoff_ms(&r, 1, 0.5), 5);
	assert_int_equal(aws_retry_backoff_ms(&r, 4, 0.5), 40);
	assert_int_equal(aws_retry_backoff_ms(&r, 5, 0.5), 50);
	assert_int_equal(aws_retry_backoff_ms(&r, 5, ALMOST_ONE), 99);
	assert_int_equal(aws_retry_backoff_ms(&r, INT_MAX, ALMOST_ONE), 99);
	assert_int_equal(aws_retry_backoff_ms(&r, 0, 0.5), 5);
	assert_int_equal(aws_retry_backoff_ms(&r, -3, 0.5), 5);
	assert_int_equal(aws_retry_backoff_ms(&r, 3, 1.0), 39);
	assert_int_equal(aws_retry_backoff_ms(&r, 3, 7.5), 39);
	assert_int_equal(aws_retry_backoff_ms(&r, 3, -0.5), 0);
	assert_int_equal(aws_retry_backoff_ms(&r, 3, NAN), 0);

	/* A cap below the base wins. */
	r.base_ms = 500;
	r.cap_ms = 300;
	assert_int_equal(aws_retry_backoff_ms(&r, 1, 0.5), 150);
	assert_int_equal(aws_retry_backoff_ms(&r, 1, ALMOST_ONE), 299);

	/* Huge settings: doubling stops at the cap without overflowing. */
	r.base_ms = LONG_MAX / 3;
	r.cap_ms = LONG_MAX;
	assert_true(aws_retry_backoff_ms(&r, 64, 0.5) >= 0);
	assert_true(aws_retry_backoff_ms(&r, INT_MAX, 0.999) >= 0);

	/* Zero means no wait at all (a caller that wants instant retries). */
	r.base_ms = 0;
	r.cap_ms = 100;
	assert_int_equal(aws_retry_backoff_ms(&r, 3, 0.5), 0);
	r.base_ms = 10;
	r.cap_ms = 0;
	assert_int_equal(aws_retry_backoff_ms(&r, 3, 0.5), 0);
	aws_retry_destroy(&r);
}

/* Real draws through should_retry stay in [0, limit) and are spread out. */
static void test_random_draws(void **state)
{
	struct aws_retry r;
	uint64_t cost;
	long delay, limit;
	int i, n, low = 0, high = 0;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 11), 0);
	for (i = 0; i < 5000; i++) {
		n = 1 + i % 10;
		delay = -1;
		assert_true(aws_retry_should_retry(&r, AWS_ERR_SERVER, n, &delay, &cost));
		limit = expected_limit(AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, n);
		if (delay < 0 || delay >= limit)
			fail_msg("attempt %d: delay %ld outside [0, %ld)", n, delay, limit);
		if (delay < limit / 2)
			low++;
		else
			high++;
		/* Refill so that the quota never gets in the way here. */
		aws_retry_on_success(&r, cost);
	}
	/* 5000 fair coin flips: far from 1000 either way only if broken. */
	assert_true(low > 1000 && high > 1000);

	/* The same with the small settings the system tests use. */
	r.base_ms = 10;
	r.cap_ms = 200;
	for (i = 0; i < 2000; i++) {
		n = 1 + i % 10;
		assert_true(aws_retry_should_retry(&r, AWS_ERR_TRANSPORT, n, &delay, &cost));
		limit = expected_limit(10, 200, n);
		if (delay < 0 || delay >= limit)
			fail_msg("attempt %d: delay %ld outside [0, %ld)", n, delay, limit);
		aws_retry_on_success(&r, cost);
	}
	aws_retry_destroy(&r);
}

static void test_quota_exhausted_by_retries(void **state)
{
	struct aws_retry r;
	uint64_t cost = 0;
	long delay;
	int i;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (i = 0; i < 100; i++) {
		if (!aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost))
			fail_msg("retry %d refused with quota %u", i, r.quota);
		assert_int_equal(cost, AWS_RETRY_COST);
	}
	assert_int_equal(r.quota, 0);
	/* Nothing left: every retryable code is now refused. */
	assert_false(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));
	assert_false(aws_retry_should_retry(&r, AWS_ERR_SERVER, 1, &delay, &cost));
	assert_false(aws_retry_should_retry(&r, AWS_ERR_TIMEOUT, 1, &delay, &cost));
	assert_int_equal(r.quota, 0);

	/* A success after a retry gives back that retry's cost: one more. */
	aws_retry_on_success(&r, AWS_RETRY_COST);
	assert_int_equal(r.quota, 5);
	assert_true(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));
	assert_false(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));

	/* A first-try success gives back 1: five of them pay for one retry. */
	for (i = 0; i < 4; i++)
		aws_retry_on_success(&r, 0);
	assert_int_equal(r.quota, 4);
	assert_false(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));
	aws_retry_on_success(&r, 0);
	assert_true(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));
	assert_int_equal(r.quota, 0);
	aws_retry_destroy(&r);
}

static void test_quota_timeouts_cost_more(void **state)
{
	struct aws_retry r;
	uint64_t cost = 0;
	long delay;
	int i;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (i = 0; i < 50; i++) {
		assert_true(aws_retry_should_retry(&r, AWS_ERR_TIMEOUT, 2, &delay, &cost));
		assert_int_equal(cost, AWS_RETRY_TIMEOUT_COST);
	}
	assert_int_equal(r.quota, 0);
	assert_false(aws_retry_should_retry(&r, AWS_ERR_TIMEOUT, 1, &delay, &cost));

	/* With 7 left a timeout (10) cannot be paid for, a throttle (5) can. */
	r.quota = 7;
	assert_false(aws_retry_should_retry(&r, AWS_ERR_TIMEOUT, 1, &delay, &cost));
	assert_int_equal(r.quota, 7);
	assert_true(aws_retry_should_retry(&r, AWS_ERR_THROTTLED, 1, &delay, &cost));
	assert_int_equal(r.quota, 2);

	/* A timeout's retry refunds its full cost. */
	aws_retry_on_success(&r, AWS_RETRY_TIMEOUT_COST);
	assert_int_equal(r.quota, 12);
	aws_retry_destroy(&r);
}

static void test_quota_never_above_max(void **state)
{
	struct aws_retry r;
	uint64_t cost = 0;
	long delay;
	int i;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (i = 0; i < 10; i++)
		aws_retry_on_success(&r, 0);
	assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	aws_retry_on_success(&r, AWS_RETRY_TIMEOUT_COST);
	assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	aws_retry_on_success(&r, UINT64_MAX);
	assert_int_equal(r.quota, AWS_RETRY_QUOTA);

	assert_true(aws_retry_should_retry(&r, AWS_ERR_SERVER, 1, &delay, &cost));
	assert_int_equal(r.quota, 495);
	aws_retry_on_success(&r, 0);
	assert_int_equal(r.quota, 496);
	aws_retry_on_success(&r, 10);
	assert_int_equal(r.quota, AWS_RETRY_QUOTA);
	aws_retry_destroy(&r);
}

/* The out-parameters are optional. */
static void test_null_outputs(void **state)
{
	struct aws_retry r;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	assert_true(aws_retry_should_retry(&r, AWS_ERR_SERVER, 1, NULL, NULL));
	assert_int_equal(r.quota, 495);
	aws_retry_destroy(&r);
}

struct quota_race {
	struct aws_retry *r;
	int granted;
};

static void *quota_thread(void *arg)
{
	struct quota_race *q = arg;
	uint64_t cost;
	long delay;
	int i;

	for (i = 0; i < 200; i++)
		if (aws_retry_should_retry(q->r, AWS_ERR_THROTTLED, 1, &delay, &cost))
			q->granted++;
	return NULL;
}

/* Threads sharing one client share one quota: exactly 100 retries of 5 are
 * granted in all, however the threads interleave. */
static void test_quota_shared_by_threads(void **state)
{
	struct aws_retry r;
	struct quota_race q[4];
	pthread_t t[4];
	int i, total = 0;

	(void)state;
	assert_int_equal(aws_retry_init(&r, 3), 0);
	for (i = 0; i < 4; i++) {
		q[i].r = &r;
		q[i].granted = 0;
		assert_int_equal(pthread_create(&t[i], NULL, quota_thread, &q[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		total += q[i].granted;
	}
	assert_int_equal(total, 100);
	assert_int_equal(r.quota, 0);
	aws_retry_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retryable_codes),
		cmocka_unit_test(test_should_retry_refuses_permanent),
		cmocka_unit_test(test_should_retry_accepts_transient),
		cmocka_unit_test(test_default_attempts),
		cmocka_unit_test(test_env_attempts),
		cmocka_unit_test(test_attempt_limit),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_backoff_edges),
		cmocka_unit_test(test_random_draws),
		cmocka_unit_test(test_quota_exhausted_by_retries),
		cmocka_unit_test(test_quota_timeouts_cost_more),
		cmocka_unit_test(test_quota_never_above_max),
		cmocka_unit_test(test_null_outputs),
		cmocka_unit_test(test_quota_shared_by_threads),
	};

	unsetenv("AWS_MAX_ATTEMPTS");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for sidecar/login/budget.c, included here and built with
 * KT_UNIT_TEST so that the test sets its monotonic clock: the per-secret
 * back-off (doubling from refresh_min_interval up to check_interval, reset
 * by a match or a rotation), the daemon-wide budget (3 calls, one more per
 * 200 wrong passwords and per check_interval), the deferred check made by
 * the tick, and the negative cache of [login:*] secrets. The engine's
 * functions it calls are fakes that count their calls or say what the test
 * set, so that the test links neither the engine nor the maps. */
#include "login/budget.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#define REFRESH 10    /* refresh_min_interval, s */
#define CHECK 120     /* check_interval, s */
#define START 1000000 /* ms on the test clock at the start */

static int checks, resumes;
static uint64_t waiting_on;    /* the entry a request waits on (0: none) */
static time_t throttled_until; /* the engine's throttle */

void kt_engine_check(struct kt_engine *eng, struct kt_entry *e, enum kt_check_reason why)
{
	(void)eng;
	(void)e;
	assert_int_equal(why, KT_WHY_LOGIN);
	checks++;
}

void kt_engine_resume(struct kt_engine *eng, struct kt_entry *e)
{
	(void)eng;
	(void)e;
	resumes++;
}

bool kt_engine_has_waiter(const struct kt_engine *eng, uint64_t entry_id)
{
	(void)eng;
	return waiting_on != 0 && waiting_on == entry_id;
}

time_t kt_engine_throttled_until(const struct kt_engine *eng)
{
	(void)eng;
	return throttled_until;
}

bool kt_engine_stopping(const struct kt_engine *eng)
{
	(void)eng;
	return false;
}

struct fixture {
	struct kt_login d;
	struct kt_config cfg;
	struct kt_cache cache;
	struct kt_entry e[2];
	struct kt_entry *entries[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	kt_test_mono_ms = START;
	checks = resumes = 0;
	waiting_on = 0;
	throttled_until = 0;
	f->cfg.refresh_min_interval = REFRESH;
	f->cfg.check_interval = CHECK;
	f->d.cfg = &f->cfg;
	f->d.cache = &f->cache;
	assert_int_equal(kt_login_budget_new(&f->d.budget), 0);
	for (size_t i = 0; i < 2; i++) {
		f->e[i].id = i + 1;
		f->e[i].name = (char *)(i == 0 ? "login:a" : "login:b");
		f->entries[i] = &f->e[i];
	}
	f->cache.entries = f->entries;
	/* Sorted by name and by id alike: one array serves as both indexes. */
	f->cache.by_id = f->entries;
	f->cache.n = 2;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kt_login_budget_free(f->d.budget);
	free(f);
	return 0;
}

static void at(int64_t ms_from_start)
{
	kt_test_mono_ms = START + ms_from_start;
}

/* Fills the budget back to its 3 calls with wrong passwords for no secret
 * (200 earn one call), so that only the back-off decides. */
static void refill_budget(struct fixture *f)
{
	for (int i = 0; i < 3 * FAILURES_PER_TOKEN; i++)
		kt_login_budget_failed(&f->d, NULL);
}

static enum kt_recheck_plan plan(struct fixture *f, struct kt_entry *e, bool fetch)
{
	return kt_login_budget_plan(&f->d, e, fetch, NULL);
}

/* A call, then none until the interval is over; each call doubles the
 * interval, up to check_interval. */
static void test_backoff_doubles_to_check_interval(void **state)
{
	struct fixture *f = *state;
	const int64_t waits[] = { 10000, 20000, 40000, 80000, 120000, 120000 };
	int64_t t = 0;
	const char *why = NULL;

	at(t);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		refill_budget(f);
		at(t + waits[i] - 1);
		assert_int_equal(kt_login_budget_plan(&f->d, &f->e[0], true, &why), KT_RECHECK_NO);
		assert_string_equal(why, "a verify checked it with AWS a moment ago");
		at(t + waits[i]);
		assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
		t += waits[i];
	}
	/* Another secret has its own back-off. */
	refill_budget(f);
	assert_int_equal(plan(f, &f->e[1], true), KT_RECHECK_NOW);
}

/* A match (or a rotation seen) starts the back-off over: the next call
 * waits refresh_min_interval after the last one, and then intervals double
 * from refresh_min_interval again. */
static void test_reset_on_match(void **state)
{
	struct fixture *f = *state;

	at(0);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	at(10000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	at(30000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	/* Next due at 70 s; a match brings it to 40 s, the interval to 10 s. */
	refill_budget(f);
	at(35000);
	kt_login_budget_reset(&f->d, &f->e[0]);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NO);
	at(40000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	at(49999);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NO);
	at(50000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
}

/* check_interval without a wrong password for the secret also starts the
 * interval over. */
static void test_reset_after_quiet_check_interval(void **state)
{
	struct fixture *f = *state;

	at(0);
	kt_login_budget_failed(&f->d, &f->e[0]);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW); /* next 10 s, then 20 */
	at(10000);
	kt_login_budget_failed(&f->d, &f->e[0]);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW); /* next 30 s, then 40 */
	refill_budget(f);
	at(10000 + CHECK * 1000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW); /* interval back to 10 s */
	refill_budget(f);
	at(10000 + CHECK * 1000 + 9999);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NO);
	at(10000 + CHECK * 1000 + 10000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
}

/* 3 calls at start, however they are spread over secrets; then one per
 * 200 wrong passwords. */
static void test_budget_burst_and_failures(void **state)
{
	struct fixture *f = *state;
	struct kt_entry more[4];
	const char *why = NULL;

	at(0);
	memset(more, 0, sizeof(more));
	for (size_t i = 0; i < 4; i++) {
		more[i].id = 100 + i;
		more[i].name = (char *)"login:more";
	}
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(plan(f, &more[i], true), KT_RECHECK_NOW);
	assert_false(kt_login_budget_can_pay(&f->d));
	assert_int_equal(kt_login_budget_plan(&f->d, &more[3], true, &why), KT_RECHECK_NO);
	assert_string_equal(why, "AWS calls caused by failed passwords are over budget");
	for (int i = 0; i < FAILURES_PER_TOKEN - 1; i++)
		kt_login_budget_failed(&f->d, NULL);
	assert_int_equal(plan(f, &more[3], true), KT_RECHECK_NO);
	kt_login_budget_failed(&f->d, NULL);
	assert_true(kt_login_budget_can_pay(&f->d));
	assert_int_equal(plan(f, &more[3], true), KT_RECHECK_NOW);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NO);
	/* The budget never holds more than 3 calls. */
	for (int i = 0; i < 10 * FAILURES_PER_TOKEN; i++)
		kt_login_budget_failed(&f->d, NULL);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(plan(f, &f->e[i], true), KT_RECHECK_NOW);
	assert_int_equal(plan(f, &more[0], false), KT_RECHECK_NO); /* back-off: 10 s */
	at(10000);
	assert_int_equal(plan(f, &more[0], true), KT_RECHECK_NOW);
	assert_false(kt_login_budget_can_pay(&f->d));
}

/* One call more per check_interval of time, and never more than 3. */
static void test_budget_refills_with_time(void **state)
{
	struct fixture *f = *state;

	struct kt_entry third = { .id = 3, .name = (char *)"login:c" };

	at(0);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	assert_int_equal(plan(f, &f->e[1], true), KT_RECHECK_NOW);
	assert_int_equal(plan(f, &third, true), KT_RECHECK_NOW);
	assert_false(kt_login_budget_can_pay(&f->d));
	at(CHECK * 1000 - 1000);
	assert_false(kt_login_budget_can_pay(&f->d));
	at(CHECK * 1000 + 1000);
	assert_true(kt_login_budget_can_pay(&f->d));
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
	assert_false(kt_login_budget_can_pay(&f->d));
	/* A long quiet time fills it to 3, no more. */
	at(100 * CHECK * 1000);
	for (size_t i = 0; i < 3; i++) {
		struct kt_entry e = { .id = 200 + i, .name = (char *)"login:quiet" };

		assert_int_equal(plan(f, &e, true), KT_RECHECK_NOW);
	}
	assert_false(kt_login_budget_can_pay(&f->d));
}

/* A failed password whose check is due within a few seconds waits for it:
 * the token is taken once, and the tick makes the call when it is due and
 * someone still waits. */
static void test_deferred_check_made_by_tick(void **state)
{
	struct fixture *f = *state;

	at(0);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_NOW);
	at(REFRESH * 1000 - DEFER_MAX_MS - 1);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_NO); /* too far off */
	at(REFRESH * 1000 - DEFER_MAX_MS);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_LATER);
	assert_true(kt_login_budget_deferred(&f->d, &f->e[0]));
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_LATER);
	/* Two tokens taken in all: one left. */
	assert_int_equal(plan(f, &f->e[1], true), KT_RECHECK_NOW);
	assert_false(kt_login_budget_can_pay(&f->d));

	waiting_on = f->e[0].id;
	at(REFRESH * 1000 - 1);
	kt_login_budget_tick(&f->d);
	assert_int_equal(checks, 0);
	at(REFRESH * 1000);
	kt_login_budget_tick(&f->d);
	assert_int_equal(checks, 1);
	assert_false(kt_login_budget_deferred(&f->d, &f->e[0]));
	/* The call doubled the interval: next one 20 s later. */
	refill_budget(f);
	at(REFRESH * 1000 + 19999);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NO);
	at(REFRESH * 1000 + 20000);
	assert_int_equal(plan(f, &f->e[0], true), KT_RECHECK_NOW);
}

/* Nobody waits any more when the check is due (they hung up): no call,
 * and the token goes back into the budget. A throttled daemon resumes the
 * waiters without a call. */
static void test_deferred_check_dropped_or_resumed(void **state)
{
	struct fixture *f = *state;

	at(0);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_NOW);
	at(REFRESH * 1000 - 1000);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_LATER);
	at(REFRESH * 1000);
	kt_login_budget_tick(&f->d);
	assert_int_equal(checks, 0);
	assert_false(kt_login_budget_deferred(&f->d, &f->e[0]));
	/* 3 - 2 + 1 refunded: 2 calls left. */
	assert_int_equal(plan(f, &f->e[1], true), KT_RECHECK_NOW);
	assert_true(kt_login_budget_can_pay(&f->d));

	/* The dropped call was not made: the next one is due at once. */
	refill_budget(f);
	at(29000);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_NOW); /* next at 49 s */
	at(48000);
	assert_int_equal(plan(f, &f->e[0], false), KT_RECHECK_LATER);
	waiting_on = f->e[0].id;
	throttled_until = time(NULL) + 60;
	at(49000);
	kt_login_budget_tick(&f->d);
	assert_int_equal(checks, 0);
	assert_int_equal(resumes, 1);
	assert_true(kt_login_budget_can_pay(&f->d));
}

/* Records of secrets no longer in the cache are dropped by the tick. */
static void test_tick_forgets_removed_entries(void **state)
{
	struct fixture *f = *state;

	at(0);
	assert_int_equal(plan(f, &f->e[1], true), KT_RECHECK_NOW);
	assert_int_equal(f->d.budget->n, 1);
	f->cache.n = 1; /* e[1] removed by a reload */
	kt_login_budget_tick(&f->d);
	assert_int_equal(f->d.budget->n, 0);
}

/* [login:*] secrets known not to exist are remembered for check_interval. */
static void test_absent(void **state)
{
	struct fixture *f = *state;

	at(0);
	assert_false(kt_login_absent(&f->d, "users/nobody"));
	kt_login_absent_add(&f->d, "users/nobody");
	assert_true(kt_login_absent(&f->d, "users/nobody"));
	assert_false(kt_login_absent(&f->d, "users/other"));
	at(CHECK * 1000 - 1);
	assert_true(kt_login_absent(&f->d, "users/nobody"));
	at(CHECK * 1000);
	assert_false(kt_login_absent(&f->d, "users/nobody"));
	/* The table is bounded: the oldest slot makes room. */
	for (int i = 0; i < ABSENT_MAX + 10; i++) {
		char id[32];

		snprintf(id, sizeof(id), "users/u%d", i);
		at(CHECK * 1000 + i);
		kt_login_absent_add(&f->d, id);
	}
	assert_true(kt_login_absent(&f->d, "users/u1033"));
	assert_false(kt_login_absent(&f->d, "users/u0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backoff_doubles_to_check_interval, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_on_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_after_quiet_check_interval, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_budget_burst_and_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_refills_with_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_check_made_by_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_check_dropped_or_resumed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tick_forgets_removed_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

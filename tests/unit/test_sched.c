/* Unit tests for the check schedule: Duration parsing, the rotation window's
 * edges, the jittered next check and the backoff, NextRotationDate anchored
 * to the schedule clock across wall-clock steps, and staleness, run on a
 * simulated clock with chosen and pseudo-random values for the 32 random bits. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "sched.h"

/* A fixed, plausible "now": 2024-05-01T00:00:00Z. */
#define T0 ((time_t)1714521600)

/* xorshift32: a reproducible stream, so a failing run can be replayed. */
static uint32_t next_rnd(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static void test_duration_good(void **state)
{
	static const struct {
		const char *s;
		long want;
	} cases[] = {
		{ "3h", 3 * 3600 },
		{ "90m", 90 * 60 },
		{ "1d", 86400 },
		{ "2h30m", 2 * 3600 + 1800 },
		{ "45s", 45 },
		{ "1d2h3m4s", 93784 },
		{ "0h30m", 1800 },
		{ "24h", 86400 },
		{ "30d", 30L * 86400 },
		{ "007m", 420 },
		{ "2592000s", 30L * 86400 },
		{ "1h0m", 3600 },
	};
	long got;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = -1;
		assert_int_equal(kt_sched_parse_duration(cases[i].s, &got), 0);
		assert_int_equal(got, cases[i].want);
	}
}

static void test_duration_bad(void **state)
{
	static const char *const bad[] = {
		"",         "h",        "3",
		"3x",       "3H",       " 3h",
		"3h ",      "+3h",      "-3h",
		"1.5h",     "0h",       "0s",
		"0d0h0m0s", "30m2h",    "1h1h",
		"3hh",      "h3",       "31d",
		"30d1s",    "2592001s", "99999999999999999999999h",
		"3h\n",     "1 h",      "9223372036854775807s",
	};
	long got = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kt_sched_parse_duration(bad[i], &got), -EINVAL);
		/* A failed parse leaves the output alone. */
		assert_int_equal(got, 12345);
	}
	assert_int_equal(kt_sched_parse_duration(NULL, &got), -EINVAL);
}

static void test_window_edges(void **state)
{
	struct kt_rotation_info r = { .enabled = true, .next_rotation = T0, .window_s = 3 * 3600 };
	time_t start = T0 - 3 * 3600, end = T0 + 3600;

	(void)state;
	assert_false(kt_sched_in_window(&r, start - 1));
	assert_true(kt_sched_in_window(&r, start));
	assert_true(kt_sched_in_window(&r, start + 1));
	assert_true(kt_sched_in_window(&r, T0));
	assert_true(kt_sched_in_window(&r, end));
	assert_false(kt_sched_in_window(&r, end + 1));
	assert_false(kt_sched_in_window(&r, T0 + 86400));
}

/* Without a Duration the window opens a day ahead. */
static void test_window_default_lead(void **state)
{
	struct kt_rotation_info r = { .enabled = true, .next_rotation = T0 };

	(void)state;
	assert_false(kt_sched_in_window(&r, T0 - 86400 - 1));
	assert_true(kt_sched_in_window(&r, T0 - 86400));
	assert_true(kt_sched_in_window(&r, T0 + 3600));
	assert_false(kt_sched_in_window(&r, T0 + 3601));
}

static void test_window_none(void **state)
{
	struct kt_rotation_info off = { .enabled = false, .next_rotation = T0, .window_s = 3600 };
	struct kt_rotation_info unknown = { .enabled = true, .next_rotation = 0, .window_s = 3600 };

	(void)state;
	assert_false(kt_sched_in_window(&off, T0));
	assert_false(kt_sched_in_window(&unknown, 0));
	assert_false(kt_sched_in_window(&unknown, T0));
	assert_false(kt_sched_in_window(NULL, T0));
}

/* Times near the ends of time_t must neither wrap nor trip UBSan. */
static void test_window_extreme_times(void **state)
{
	const time_t tmax = (time_t)(((uint64_t)1 << (sizeof(time_t) * 8 - 1)) - 1);
	const time_t tmin = -tmax - 1;
	struct kt_rotation_info r = { .enabled = true,
				      .next_rotation = tmax - 10,
				      .window_s = 3600 };
	struct kt_rotation_info low = { .enabled = true, .next_rotation = tmin + 10 };

	(void)state;
	assert_true(kt_sched_in_window(&r, tmax));
	assert_false(kt_sched_in_window(&r, tmax - 3611));
	assert_true(kt_sched_in_window(&low, tmin));
	assert_true(kt_sched_next_check(NULL, &r, tmax, 0) == tmax);
	assert_true(kt_sched_backoff(NULL, 5, tmax - 1, UINT32_MAX) == tmax);
}

/* Quiet times: within [0.9, 1.1] of check_interval for every rnd, both ends
 * reached, and 0 and UINT32_MAX map to the ends exactly. */
static void test_next_check_quiet_bounds(void **state)
{
	struct kt_sched_cfg c = { .check_interval = 3600, .window_interval = 30 };
	time_t lo = T0 + 3240, hi = T0 + 3960, min = hi, max = lo;
	uint32_t s = 0x9e3779b9u;

	(void)state;
	assert_true(kt_sched_next_check(&c, NULL, T0, 0) == lo);
	assert_true(kt_sched_next_check(&c, NULL, T0, UINT32_MAX) == hi);
	for (int i = 0; i < 100000; i++) {
		time_t t = kt_sched_next_check(&c, NULL, T0, next_rnd(&s));

		assert_true(t >= lo && t <= hi);
		if (t < min)
			min = t;
		if (t > max)
			max = t;
	}
	/* The jitter really spreads: the stream gets close to both ends. */
	assert_true(min < lo + 20);
	assert_true(max > hi - 20);
}

/* Zero fields take the defaults; a NULL config does too. */
static void test_next_check_defaults(void **state)
{
	struct kt_sched_cfg zero = { 0 };
	struct kt_rotation_info in = { .enabled = true, .next_rotation = T0, .window_s = 3600 };

	(void)state;
	assert_true(kt_sched_next_check(&zero, NULL, T0, 0) == T0 + 3240);
	assert_true(kt_sched_next_check(NULL, NULL, T0, UINT32_MAX) == T0 + 3960);
	assert_true(kt_sched_next_check(&zero, &in, T0, 0) == T0 + 27);
	assert_true(kt_sched_next_check(NULL, &in, T0, UINT32_MAX) == T0 + 33);
}

/* A tiny interval still moves the clock forward. */
static void test_next_check_at_least_one_second(void **state)
{
	struct kt_sched_cfg c = { .check_interval = 1, .window_interval = 1 };
	struct kt_rotation_info in = { .enabled = true, .next_rotation = T0, .window_s = 60 };

	(void)state;
	assert_true(kt_sched_next_check(&c, NULL, T0, 0) == T0 + 1);
	assert_true(kt_sched_next_check(&c, NULL, T0, UINT32_MAX) == T0 + 1);
	assert_true(kt_sched_next_check(&c, &in, T0, 0) == T0 + 1);
}

/* Inside a window the short interval applies, whatever rnd says. */
static void test_next_check_inside_window(void **state)
{
	struct kt_sched_cfg c = { .check_interval = 3600, .window_interval = 30 };
	struct kt_rotation_info r = { .enabled = true, .next_rotation = T0, .window_s = 2 * 3600 };
	const time_t nows[] = { T0 - 2 * 3600, T0 - 1, T0, T0 + 3600 };
	uint32_t s = 12345;

	(void)state;
	for (size_t k = 0; k < sizeof(nows) / sizeof(nows[0]); k++) {
		assert_true(kt_sched_next_check(&c, &r, nows[k], 0) == nows[k] + 27);
		assert_true(kt_sched_next_check(&c, &r, nows[k], UINT32_MAX) == nows[k] + 33);
		for (int i = 0; i < 10000; i++) {
			time_t t = kt_sched_next_check(&c, &r, nows[k], next_rnd(&s));

			assert_true(t >= nows[k] + 27 && t <= nows[k] + 33);
		}
	}
	/* Just after the window the quiet interval is back. */
	assert_true(kt_sched_next_check(&c, &r, T0 + 3601, 0) == T0 + 3601 + 3240);
}

/* A window opening before the quiet-time check pulls the check to its start. */
static void test_next_check_not_beyond_window_start(void **state)
{
	struct kt_sched_cfg c = { .check_interval = 3600 };
	struct kt_rotation_info r = { .enabled = true, .next_rotation = T0, .window_s = 3600 };
	time_t start = T0 - 3600;
	uint32_t s = 777;

	(void)state;
	/* Start 10 min ahead: always the start. */
	assert_true(kt_sched_next_check(&c, &r, start - 600, 0) == start);
	assert_true(kt_sched_next_check(&c, &r, start - 600, UINT32_MAX) == start);
	/* Start 1 s ahead. */
	assert_true(kt_sched_next_check(&c, &r, start - 1, UINT32_MAX) == start);
	/* Start far ahead: the ordinary jittered check. */
	assert_true(kt_sched_next_check(&c, &r, start - 86400, 0) == start - 86400 + 3240);
	/* Start between the two ends of the jitter: never beyond it. */
	for (int i = 0; i < 100000; i++) {
		time_t now = start - 3600;
		time_t t = kt_sched_next_check(&c, &r, now, next_rnd(&s));

		assert_true(t <= start);
		assert_true(t >= now + 3240);
	}
	/* Rotation disabled: no window to wait for. */
	r.enabled = false;
	assert_true(kt_sched_next_check(&c, &r, start - 600, 0) == start - 600 + 3240);
}

/* Walking the schedule through a window: every check is at most one quiet
 * interval apart before it, lands on its start, then comes every ~30 s. */
static void test_next_check_walk_through_window(void **state)
{
	struct kt_sched_cfg c = { 0 };
	struct kt_rotation_info r = { .enabled = true, .next_rotation = T0, .window_s = 2 * 3600 };
	time_t now = T0 - 3 * 86400, start = T0 - 2 * 3600, end = T0 + 3600;
	uint32_t s = 4242;
	bool hit_start = false;
	long in_window = 0;

	(void)state;
	while (now <= end + 86400) {
		time_t t = kt_sched_next_check(&c, &r, now, next_rnd(&s));

		assert_true(t > now);
		if (now < start)
			assert_true(t <= start);
		if (t == start)
			hit_start = true;
		if (kt_sched_in_window(&r, now)) {
			in_window++;
			assert_true(t - now <= 33);
		}
		now = t;
	}
	assert_true(hit_start);
	/* 3 h of window at 27..33 s: roughly 330 to 400 checks. */
	assert_in_range(in_window, 3 * 3600 / 33, 3 * 3600 / 27 + 1);
}

/* A quiet day with the defaults: about one check an hour, never more than 30. */
static void test_quiet_day(void **state)
{
	struct kt_rotation_info none = { 0 };
	uint32_t s = 0xdeadbeefu;

	(void)state;
	for (int day = 0; day < 200; day++) {
		time_t now = T0, stop = T0 + 86400;
		int checks = 0;

		while (now < stop) {
			now = kt_sched_next_check(NULL, &none, now, next_rnd(&s));
			if (now < stop)
				checks++;
		}
		assert_true(checks >= 20);
		assert_true(checks <= 30);
	}
}

static void test_backoff_growth_and_cap(void **state)
{
	struct kt_sched_cfg c = { .check_interval = 3600, .backoff_base = 5, .backoff_cap = 900 };
	static const long ceil[] = { 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900 };

	(void)state;
	for (int f = 1; f <= (int)(sizeof(ceil) / sizeof(ceil[0])); f++) {
		/* The largest rnd gives the ceiling exactly, the smallest the 1 s floor. */
		assert_true(kt_sched_backoff(&c, f, T0, UINT32_MAX) == T0 + ceil[f - 1]);
		assert_true(kt_sched_backoff(&c, f, T0, 0) == T0 + 1);
		assert_in_range(kt_sched_backoff(&c, f, T0, UINT32_MAX / 2) - T0,
				(ceil[f - 1] - 1) / 2, (ceil[f - 1] + 1) / 2);
	}
}

/* Full jitter: every value from the floor to the ceiling, never outside. */
static void test_backoff_bounds_random(void **state)
{
	struct kt_sched_cfg c = { 0 };
	uint32_t s = 99;

	(void)state;
	for (int f = 1; f <= 12; f++) {
		long ceiling = f >= 9 ? 900 : 5L << (f - 1);
		time_t max = T0;

		for (int i = 0; i < 20000; i++) {
			time_t t = kt_sched_backoff(&c, f, T0, next_rnd(&s));

			assert_true(t >= T0 + 1 && t <= T0 + ceiling);
			if (t > max)
				max = t;
		}
		assert_true(max >= T0 + ceiling - ceiling / 10);
	}
}

/* Defaults: base 5 s, cap 900 s or check_interval when that is shorter. */
static void test_backoff_defaults(void **state)
{
	struct kt_sched_cfg short_check = { .check_interval = 120 };

	(void)state;
	assert_true(kt_sched_backoff(NULL, 1, T0, UINT32_MAX) == T0 + 5);
	assert_true(kt_sched_backoff(NULL, 20, T0, UINT32_MAX) == T0 + 900);
	assert_true(kt_sched_backoff(&short_check, 20, T0, UINT32_MAX) == T0 + 120);
	assert_true(kt_sched_backoff(&short_check, 5, T0, UINT32_MAX) == T0 + 80);
}

/* Counts far beyond any real run, and nonsense ones, still give the cap or
 * the first step, without undefined shifts. */
static void test_backoff_huge_failures(void **state)
{
	struct kt_sched_cfg c = { .backoff_base = 7, .backoff_cap = 600 };
	const int counts[] = { 31, 32, 33, 62, 63, 64, 65, 1000, INT32_MAX };

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		assert_true(kt_sched_backoff(&c, counts[i], T0, UINT32_MAX) == T0 + 600);
		assert_true(kt_sched_backoff(&c, counts[i], T0, 0) == T0 + 1);
	}
	assert_true(kt_sched_backoff(&c, 0, T0, UINT32_MAX) == T0 + 7);
	assert_true(kt_sched_backoff(&c, -5, T0, UINT32_MAX) == T0 + 7);
}

/* A base above the cap is held to the cap from the first failure on. */
static void test_backoff_base_above_cap(void **state)
{
	struct kt_sched_cfg c = { .backoff_base = 1000, .backoff_cap = 60 };
	struct kt_sched_cfg huge = { .check_interval = 0x7fffffffffffffffL,
				     .backoff_base = 0x7fffffffffffffffL,
				     .backoff_cap = 0x7fffffffffffffffL };

	(void)state;
	assert_true(kt_sched_backoff(&c, 1, T0, UINT32_MAX) == T0 + 60);
	/* Absurd settings are clamped to a year, not overflowed. */
	assert_true(kt_sched_backoff(&huge, 1, T0, UINT32_MAX) == T0 + 365L * 86400);
	assert_true(kt_sched_next_check(&huge, NULL, T0, UINT32_MAX) > T0);
}

/* A monotonic "now" far from the wall clock, as after a long uptime. */
#define M0 ((time_t)123456)

/* NextRotationDate lands as far ahead on the schedule clock as on the wall
 * clock, and moves with the wall clock when it steps. */
static void test_anchor(void **state)
{
	struct kt_rotation_info r = { .enabled = true,
				      .rotation_date = T0 + 7200,
				      .window_s = 3600 };

	(void)state;
	kt_sched_anchor(&r, M0, T0);
	assert_true(r.next_rotation == M0 + 7200);
	assert_true(r.rotation_date == T0 + 7200);
	/* The window is one hour ahead: not in it, and the quiet check lands on its start. */
	assert_false(kt_sched_in_window(&r, M0));
	assert_true(kt_sched_next_check(NULL, &r, M0, UINT32_MAX) == M0 + 3600);
	/* The wall clock steps back an hour (it was an hour fast): the date is
	 * two hours away again, seen from the same schedule-clock moment. */
	kt_sched_anchor(&r, M0, T0 - 3600);
	assert_true(r.next_rotation == M0 + 3 * 3600);
	/* It steps forward two days: the window is behind, and so is the date. */
	kt_sched_anchor(&r, M0, T0 + 2 * 86400);
	assert_true(r.next_rotation == M0 + 7200 - 2 * 86400);
	assert_false(kt_sched_in_window(&r, M0));
	/* Forward into the window: checks every window_interval from now on. */
	kt_sched_anchor(&r, M0, T0 + 5400);
	assert_true(kt_sched_in_window(&r, M0));
	assert_true(kt_sched_next_check(NULL, &r, M0, 0) == M0 + 27);
}

/* Unknown dates stay unknown; a date that would anchor at 0 does not read
 * as unknown; extreme dates stick at the ends instead of wrapping. */
static void test_anchor_edges(void **state)
{
	const time_t tmax = (time_t)(((uint64_t)1 << (sizeof(time_t) * 8 - 1)) - 1);
	const time_t tmin = -tmax - 1;
	struct kt_rotation_info r = { .enabled = true, .rotation_date = 0, .next_rotation = 99 };

	(void)state;
	kt_sched_anchor(&r, M0, T0);
	assert_true(r.next_rotation == 0);
	assert_false(kt_sched_in_window(&r, M0));
	r.rotation_date = T0 - M0;
	kt_sched_anchor(&r, M0, T0);
	assert_true(r.next_rotation == -1);
	r.rotation_date = tmax;
	kt_sched_anchor(&r, M0, tmin + 5);
	assert_true(r.next_rotation == tmax);
	r.rotation_date = tmin + 1;
	kt_sched_anchor(&r, M0, tmax);
	/* The difference sticks at tmin; added to M0 it is still far in the past. */
	assert_true(r.next_rotation == tmin + M0);
	assert_false(kt_sched_in_window(&r, M0));
}

static void test_to_wall(void **state)
{
	(void)state;
	assert_true(kt_sched_to_wall(M0 + 30, M0, T0) == T0 + 30);
	assert_true(kt_sched_to_wall(M0 - 30, M0, T0) == T0 - 30);
	assert_true(kt_sched_to_wall(0, M0, T0) == 0);
	/* A deadline keeps its distance from now whatever the wall clock says. */
	assert_true(kt_sched_to_wall(M0 + 30, M0, T0 - 3600) == T0 - 3600 + 30);
}

/* Steps beyond the slack are reported once, with their size and sign;
 * drift within it is not. */
static void test_clock_stepped(void **state)
{
	time_t off = T0 - M0, step = 0;

	(void)state;
	assert_false(kt_sched_clock_stepped(&off, M0 + 10, T0 + 10, &step));
	assert_false(kt_sched_clock_stepped(&off, M0 + 10, T0 + 10 + KT_SCHED_STEP_SLACK, &step));
	assert_false(kt_sched_clock_stepped(&off, M0 + 10, T0 + 10 - KT_SCHED_STEP_SLACK, &step));
	assert_int_equal(step, 0);
	assert_true(kt_sched_clock_stepped(&off, M0 + 20, T0 + 20 - 3600, &step));
	assert_true(step == -3600);
	assert_true(off == T0 - M0 - 3600);
	/* The new offset is the reference from now on. */
	assert_false(kt_sched_clock_stepped(&off, M0 + 30, T0 + 30 - 3600, &step));
	assert_true(kt_sched_clock_stepped(&off, M0 + 40, T0 + 40 + 2 * 86400, &step));
	assert_true(step == 3600 + 2 * 86400);
}

/* Stale from the last answer while AWS fails; from the move once AWSCURRENT
 * moved past the value, whatever later answers say; servable for max_stale. */
static void test_staleness(void **state)
{
	struct kt_staleness fresh = { .last_ok = M0 };
	struct kt_staleness failing = { .failing = true, .last_ok = M0 };
	struct kt_staleness moved = { .last_ok = M0 + 500,
				      .superseded = true,
				      .superseded_at = M0 };
	struct kt_staleness both = {
		.failing = true, .last_ok = M0 + 500, .superseded = true, .superseded_at = M0
	};
	time_t since = 0;

	(void)state;
	assert_false(kt_sched_stale_since(&fresh, &since));
	assert_true(kt_sched_servable(&fresh, M0 + 10 * 86400, 60));
	assert_true(kt_sched_stale_since(&failing, &since));
	assert_true(since == M0);
	assert_true(kt_sched_servable(&failing, M0 + 60, 60));
	assert_false(kt_sched_servable(&failing, M0 + 61, 60));
	/* Checks that work after the move (last_ok later) do not reset the clock. */
	assert_true(kt_sched_stale_since(&moved, &since));
	assert_true(since == M0);
	assert_true(kt_sched_servable(&moved, M0 + 60, 60));
	assert_false(kt_sched_servable(&moved, M0 + 61, 60));
	assert_false(kt_sched_servable(&moved, M0 + 500, 60));
	assert_true(kt_sched_stale_since(&both, &since));
	assert_true(since == M0);
	/* max_stale 0: a stale value is served only within its first second. */
	assert_true(kt_sched_servable(&failing, M0, 0));
	assert_false(kt_sched_servable(&failing, M0 + 1, 0));
}

/* The schedule clock moves forward with real time and never jumps. */
static void test_now(void **state)
{
	time_t a = kt_sched_now(), b;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)state;
	nanosleep(&ts, NULL);
	b = kt_sched_now();
	assert_true(a >= 0);
	assert_true(b >= a && b - a <= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_window_default_lead),
		cmocka_unit_test(test_window_none),
		cmocka_unit_test(test_window_extreme_times),
		cmocka_unit_test(test_next_check_quiet_bounds),
		cmocka_unit_test(test_next_check_defaults),
		cmocka_unit_test(test_next_check_at_least_one_second),
		cmocka_unit_test(test_next_check_inside_window),
		cmocka_unit_test(test_next_check_not_beyond_window_start),
		cmocka_unit_test(test_next_check_walk_through_window),
		cmocka_unit_test(test_quiet_day),
		cmocka_unit_test(test_backoff_growth_and_cap),
		cmocka_unit_test(test_backoff_bounds_random),
		cmocka_unit_test(test_backoff_defaults),
		cmocka_unit_test(test_backoff_huge_failures),
		cmocka_unit_test(test_backoff_base_above_cap),
		cmocka_unit_test(test_anchor),
		cmocka_unit_test(test_anchor_edges),
		cmocka_unit_test(test_to_wall),
		cmocka_unit_test(test_clock_stepped),
		cmocka_unit_test(test_staleness),
		cmocka_unit_test(test_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

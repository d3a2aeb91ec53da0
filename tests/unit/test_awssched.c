/* Unit tests for common/awssched.c: Secrets Manager's rate() and cron()
 * rotation schedules (AWS's documented examples, the calendar's corners,
 * what AWS refuses), Durations and the window rules. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/awssched.h"

/* "YYYY-MM-DDTHH:MM:SS" (UTC) as Unix time. */
static time_t utc(const char *iso)
{
	struct tm tm = { 0 };

	assert_int_equal(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
			 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static struct kt_awssched parsed(const char *expr)
{
	struct kt_awssched s;
	char err[300] = "";

	if (kt_awssched_parse(expr, &s, err, sizeof(err)) != 0)
		fail_msg("%s refused: %s", expr, err);
	return s;
}

/* The windows after `from`, one by one, are `want` (NULL-terminated). */
static void expect_windows(const char *expr, const char *from, ...)
{
	struct kt_awssched s = parsed(expr);
	time_t t = utc(from);
	const char *want;
	va_list ap;

	va_start(ap, from);
	while ((want = va_arg(ap, const char *)) != NULL) {
		time_t got = kt_awssched_next(&s, t);

		if (got != utc(want)) {
			struct tm tm;
			char buf[32] = "0";

			if (got != 0 && gmtime_r(&got, &tm) != NULL)
				strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
			fail_msg("%s after %s: want %s, got %s", expr, from, want, buf);
		}
		t = got;
	}
	va_end(ap);
}

/* expr is refused, and the message has `part` in it. */
static void expect_refused(const char *expr, const char *part)
{
	struct kt_awssched s;
	char err[300] = "";

	if (kt_awssched_parse(expr, &s, err, sizeof(err)) != -EINVAL)
		fail_msg("%s was accepted", expr);
	if (strstr(err, part) == NULL)
		fail_msg("%s: the message \"%s\" does not say \"%s\"", expr, err, part);
}

static void test_rate(void **state)
{
	struct kt_awssched s;

	(void)state;
	s = parsed("rate(10 days)");
	assert_true(s.is_rate);
	assert_false(s.rate_hours);
	assert_int_equal(s.rate_n, 10);
	assert_int_equal(kt_awssched_next(&s, utc("2026-12-05T10:00:00")),
			 utc("2026-12-15T10:00:00"));
	s = parsed("rate(4 hours)");
	assert_true(s.is_rate && s.rate_hours);
	assert_int_equal(s.rate_n, 4);
	assert_int_equal(kt_awssched_next(&s, utc("2026-12-05T22:30:00")),
			 utc("2026-12-06T02:30:00"));
	s = parsed("rate(1 day)");
	assert_int_equal(kt_awssched_next(&s, utc("2024-02-28T12:00:00")),
			 utc("2024-02-29T12:00:00"));
	s = parsed("rate(23 hours)");
	assert_int_equal(s.rate_n, 23);
	s = parsed("rate(999 days)");
	assert_int_equal(s.rate_n, 999);
}

/* The examples in Secrets Manager's and EventBridge's documentation. */
static void test_documented_examples(void **state)
{
	(void)state;
	/* The first day of every month at 8:00; strictly after `from`. */
	expect_windows("cron(0 8 1 * ? *)", "2026-03-15T00:00:00", "2026-04-01T08:00:00",
		       "2026-05-01T08:00:00", NULL);
	expect_windows("cron(0 8 1 * ? *)", "2026-04-01T07:59:59", "2026-04-01T08:00:00", NULL);
	expect_windows("cron(0 8 1 * ? *)", "2026-04-01T08:00:00", "2026-05-01T08:00:00", NULL);
	/* The second Sunday of every month at 4:00. */
	expect_windows("cron(0 4 ? * SUN#2 *)", "2026-12-01T00:00:00", "2026-12-13T04:00:00",
		       "2027-01-10T04:00:00", "2027-02-14T04:00:00", NULL);
	/* The last day of every month at 16:00, leap years included. */
	expect_windows("cron(0 16 L * ? *)", "2024-02-01T00:00:00", "2024-02-29T16:00:00",
		       "2024-03-31T16:00:00", "2024-04-30T16:00:00", NULL);
	expect_windows("cron(0 16 L * ? *)", "2023-02-01T00:00:00", "2023-02-28T16:00:00", NULL);
	expect_windows("cron(0 16 L * ? *)", "2100-02-01T00:00:00", "2100-02-28T16:00:00", NULL);
	/* Monday to Friday at 10:00: Friday's is followed by Monday's. */
	expect_windows("cron(0 10 ? * MON-FRI *)", "2026-12-04T10:00:00", "2026-12-07T10:00:00",
		       "2026-12-08T10:00:00", NULL);
	/* Every Saturday at 18:00; the first and 15th at 16:00. */
	expect_windows("cron(0 18 ? * SAT *)", "2026-12-01T00:00:00", "2026-12-05T18:00:00",
		       "2026-12-12T18:00:00", NULL);
	expect_windows("cron(0 16 1,15 * ? *)", "2026-12-01T16:00:00", "2026-12-15T16:00:00",
		       "2027-01-01T16:00:00", NULL);
	/* Increments of hours restart each day. */
	expect_windows("cron(0 4/12 * * ? *)", "2026-01-01T04:00:00", "2026-01-01T16:00:00",
		       "2026-01-02T04:00:00", NULL);
	expect_windows("cron(0 0/4 * * ? *)", "2026-01-01T21:00:00", "2026-01-02T00:00:00",
		       "2026-01-02T04:00:00", NULL);
	expect_windows("cron(0 2/10 * * ? *)", "2026-01-01T12:00:00", "2026-01-01T22:00:00",
		       "2026-01-02T02:00:00", NULL);
	/* Every three months: Month's step. */
	expect_windows("cron(0 1 1 1/3 ? *)", "2026-02-01T00:00:00", "2026-04-01T01:00:00",
		       "2026-07-01T01:00:00", "2026-10-01T01:00:00", "2027-01-01T01:00:00", NULL);
}

static void test_weekday_rules(void **state)
{
	(void)state;
	/* 15W: 2026-08-15 is a Saturday (Friday 14th), 2026-02-15 a Sunday
	 * (Monday 16th). */
	expect_windows("cron(0 9 15W * ? *)", "2026-08-01T00:00:00", "2026-08-14T09:00:00", NULL);
	expect_windows("cron(0 9 15W * ? *)", "2026-02-01T00:00:00", "2026-02-16T09:00:00", NULL);
	/* 1W never goes back into the month before: Saturday 2026-08-01 gives
	 * Monday the 3rd. */
	expect_windows("cron(0 9 1W * ? *)", "2026-07-31T12:00:00", "2026-08-03T09:00:00", NULL);
	/* 31W: April has no 31st; Sunday 2026-05-31 gives Friday the 29th. */
	expect_windows("cron(0 9 31W * ? *)", "2026-04-01T00:00:00", "2026-05-29T09:00:00", NULL);
	/* LW: the last Monday..Friday. */
	expect_windows("cron(0 23 LW * ? *)", "2026-01-01T00:00:00", "2026-01-30T23:00:00",
		       "2026-02-27T23:00:00", "2026-03-31T23:00:00", NULL);
	expect_windows("cron(0 23 LW * ? *)", "2026-05-01T00:00:00", "2026-05-29T23:00:00", NULL);
	/* 6L and FRIL: the last Friday. */
	expect_windows("cron(0 17 ? * 6L *)", "2026-12-01T00:00:00", "2026-12-25T17:00:00",
		       "2027-01-29T17:00:00", NULL);
	expect_windows("cron(0 17 ? * FRIL *)", "2026-12-01T00:00:00", "2026-12-25T17:00:00", NULL);
	/* SUN#5 skips the months without a fifth Sunday. */
	expect_windows("cron(0 0 ? * SUN#5 *)", "2026-02-01T00:00:00", "2026-03-29T00:00:00",
		       "2026-05-31T00:00:00", NULL);
	/* L alone in Day-of-week is Saturday; names in any case. */
	expect_windows("cron(0 0 ? * L *)", "2026-12-01T00:00:00", "2026-12-05T00:00:00", NULL);
	expect_windows("cron(0 6 ? jul mon *)", "2026-01-01T00:00:00", "2026-07-06T06:00:00",
		       "2026-07-13T06:00:00", NULL);
	expect_windows("cron(0 6 ? JAN,JUL 2#1 *)", "2026-02-01T00:00:00", "2026-07-06T06:00:00",
		       "2027-01-04T06:00:00", NULL);
}

static void test_calendar_corners(void **state)
{
	struct kt_awssched s;

	(void)state;
	/* 29 February: leap years only, and 2100 is not one. */
	expect_windows("cron(0 0 29 2 ? *)", "2025-01-01T00:00:00", "2028-02-29T00:00:00",
		       "2032-02-29T00:00:00", NULL);
	expect_windows("cron(0 0 29 2 ? *)", "2096-03-01T00:00:00", "2104-02-29T00:00:00", NULL);
	/* Year ends and month ends. */
	expect_windows("cron(0 20 * * ? *)", "2026-12-31T20:00:00", "2027-01-01T20:00:00", NULL);
	expect_windows("cron(0 0 31 * ? *)", "2026-04-01T00:00:00", "2026-05-31T00:00:00",
		       "2026-07-31T00:00:00", NULL);
	/* The years end in 2199, EventBridge's last: then there is none. */
	s = parsed("cron(0 0 1 1 ? *)");
	assert_int_equal(kt_awssched_next(&s, utc("2198-06-01T00:00:00")),
			 utc("2199-01-01T00:00:00"));
	assert_int_equal(kt_awssched_next(&s, utc("2199-06-01T00:00:00")), 0);
	/* Seconds and minutes of `from` do not leak into the result. */
	s = parsed("cron(0 5 * * ? *)");
	assert_int_equal(kt_awssched_next(&s, utc("2026-06-01T04:59:59")),
			 utc("2026-06-01T05:00:00"));
	assert_int_equal(kt_awssched_next(&s, utc("2026-06-01T05:00:01")),
			 utc("2026-06-02T05:00:00"));
}

static void test_refused_cron(void **state)
{
	(void)state;
	expect_refused("cron(0 4 1 * MON *)", "one of them must be ?");
	expect_refused("cron(0 4 * * * *)", "one of them must be ?");
	expect_refused("cron(0 1 * 1/3 SUN *)", "one of them must be ?");
	expect_refused("cron(0 4 ? * ? *)", "both ?");
	expect_refused("cron(0 24 * * ? *)", "Hours: 24 is not in 0-23");
	expect_refused("cron(0 4 32 * ? *)", "Day-of-month: 32");
	expect_refused("cron(0 4 0 * ? *)", "Day-of-month: 0");
	expect_refused("cron(0 4 1 13 ? *)", "Month: 13");
	expect_refused("cron(0 4 ? * 8 *)", "Day-of-week: 8");
	expect_refused("cron(0 4 ? * 0 *)", "Day-of-week: 0");
	expect_refused("cron(0 4 5-2 * ? *)", "Day-of-month: the range 5-2 runs backwards");
	expect_refused("cron(0 4 ? * FRI-MON *)", "Day-of-week: the range 6-2");
	expect_refused("cron(0 4 1/0 * ? *)", "Day-of-month: the step");
	expect_refused("cron(0 0/24 * * ? *)", "Hours: the step");
	expect_refused("cron(30 4 * * ? *)", "Minutes must be 0");
	expect_refused("cron(0/15 4 * * ? *)", "Minutes must be 0");
	expect_refused("cron(0 4 * * ? 2027)", "Year must be *");
	expect_refused("cron(0 4 ? * SUN#6 *)", "Day-of-week: after #");
	expect_refused("cron(0 4 ? * 3#1,6#3 *)", "Day-of-week: #, L and ? stand alone");
	expect_refused("cron(0 4 ? * 5L,6 *)", "Day-of-week: #, L and ? stand alone");
	expect_refused("cron(0 4 L,15 * ? *)", "Day-of-month: L, LW, dW and ? stand alone");
	expect_refused("cron(0 4 1-15W * ? *)", "Day-of-month: L, LW, dW and ? stand alone");
	expect_refused("cron(0 ? * * ? *)", "Hours: ? is only for");
	expect_refused("cron(0 4 ? JANX MON *)", "Month: unexpected 'JANX'");
	expect_refused("cron(0 4 1, * ? *)", "Day-of-month: a value is missing");
	/* Dates that never come. */
	expect_refused("cron(0 4 30 2 ? *)", "no date matches");
	expect_refused("cron(0 4 31 APR,JUN,SEP,NOV ? *)", "no date matches");
}

/* Secrets Manager rotates at most every four hours, across midnight too. */
static void test_refused_too_often(void **state)
{
	struct kt_awssched s;

	(void)state;
	expect_refused("cron(0 0/2 * * ? *)", "2 hours apart");
	expect_refused("cron(0 0,1 * * ? *)", "1 hour apart");
	expect_refused("cron(0 1,22 * * ? *)", "3 hours apart");
	expect_refused("cron(0 1,23 ? * SAT,SUN *)", "2 hours apart");
	/* The 31st, then the 1st of the next month: two days in a row. */
	expect_refused("cron(0 2,23 1,31 * ? *)", "3 hours apart");
	expect_refused("cron(0 0,23 1,L * ? *)", "stand alone");
	/* Never two days in a row: the gap over midnight does not count. */
	s = parsed("cron(0 1,22 ? * MON,WED *)");
	assert_true(s.in_hours);
	assert_int_equal(s.gap, 21 * 3600);
	s = parsed("cron(0 0,20 * * ? *)");
	assert_int_equal(s.gap, 4 * 3600);
	s = parsed("cron(0 4 ? * SUN#2 *)");
	assert_false(s.in_hours);
}

static void test_refused_rate_and_text(void **state)
{
	char longer[KT_AWSSCHED_MAX + 16];

	(void)state;
	expect_refused("rate(0 days)", "rate(N days): N must be between 1 and 999");
	expect_refused("rate(1000 days)", "rate(N days): N must be between 1 and 999");
	expect_refused("rate(3 hours)", "rate(N hours): N must be between 4 and 23");
	expect_refused("rate(1 hour)", "rate(N hours): N must be between 4 and 23");
	expect_refused("rate(24 hours)", "rate(N hours): N must be between 4 and 23");
	expect_refused("rate(30 minutes)", "not minutes");
	expect_refused("rate(1 days)", "rate(1 day)");
	expect_refused("rate(5 day)", "rate(5 days)");
	expect_refused("rate(2 weeks)", "unknown unit");
	expect_refused("rate(-1 days)", "whole number");
	expect_refused("rate(ten days)", "whole number");
	expect_refused("rate(10days)", "space");
	expect_refused("rate(10 days", "write rate(N hours|days) or cron(");
	expect_refused("cron(0 4 * * ?)", "5 fields; cron() takes 6");
	expect_refused("cron(0 4 * * ? * *)", "7 fields");
	expect_refused("cron()", "0 fields");
	expect_refused("CRON(0 4 * * ? *)", "write rate(");
	expect_refused("every day", "write rate(");
	expect_refused("", "empty");
	expect_refused("cron(0 4 * * ? *);", "';' is not allowed");
	expect_refused("cron(0\t4 * * ? *)", "\\x09 is not allowed");
	expect_refused("cron((0 4 * * ? *))", "parenthesis");
	memset(longer, ' ', sizeof(longer));
	memcpy(longer, "cron(0 4 * * ? *", 16);
	longer[KT_AWSSCHED_MAX] = ')';
	longer[KT_AWSSCHED_MAX + 1] = '\0';
	expect_refused(longer, "longer than 256");
	/* 256 characters in all is still taken. */
	longer[KT_AWSSCHED_MAX - 1] = ')';
	longer[KT_AWSSCHED_MAX] = '\0';
	parsed(longer);
}

static void test_duration(void **state)
{
	static const char *const bad[] = { "0h", "25h", "100h", "3",    "h",  "3 h", "3m",
					   "3H", "-1h", "",     "1.5h", "h3", "03m" };
	char err[200];
	long sec = -1;

	(void)state;
	assert_int_equal(kt_awssched_parse_duration("1h", &sec, err, sizeof(err)), 0);
	assert_int_equal(sec, 3600);
	assert_int_equal(kt_awssched_parse_duration("3h", &sec, err, sizeof(err)), 0);
	assert_int_equal(sec, 3 * 3600);
	assert_int_equal(kt_awssched_parse_duration("24h", &sec, err, sizeof(err)), 0);
	assert_int_equal(sec, 86400);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		sec = -1;
		if (kt_awssched_parse_duration(bad[i], &sec, err, sizeof(err)) != -EINVAL)
			fail_msg("Duration '%s' was accepted", bad[i]);
		assert_int_equal(sec, -1);
		assert_non_null(strstr(err, "Duration"));
	}
}

static void window_ok(const char *expr, long hours)
{
	struct kt_awssched s = parsed(expr);
	char err[200] = "";

	if (kt_awssched_check_window(&s, hours * 3600, err, sizeof(err)) != 0)
		fail_msg("%s with %ldh refused: %s", expr, hours, err);
}

static void window_refused(const char *expr, long hours, const char *part)
{
	struct kt_awssched s = parsed(expr);
	char err[200] = "";

	if (kt_awssched_check_window(&s, hours * 3600, err, sizeof(err)) != -EINVAL)
		fail_msg("%s with %ldh accepted", expr, hours);
	if (strstr(err, part) == NULL)
		fail_msg("%s with %ldh: \"%s\" does not say \"%s\"", expr, hours, err, part);
}

static void test_windows(void **state)
{
	(void)state;
	/* A rate in hours: no longer than the rate. */
	window_ok("rate(4 hours)", 4);
	window_refused("rate(4 hours)", 5, "next rotation window");
	/* A rate in days opens at midnight: a whole day fits. */
	window_ok("rate(10 days)", 24);
	/* A cron in days: the start hour plus the window is at most 24. */
	window_ok("cron(0 22 * * ? *)", 2);
	window_refused("cron(0 22 * * ? *)", 3, "next UTC day");
	window_ok("cron(0 0 ? * SUN#2 *)", 24);
	/* A cron in hours: no longer than the gap to the next start. */
	window_ok("cron(0 0/4 * * ? *)", 4);
	window_refused("cron(0 0/4 * * ? *)", 5, "next rotation window, 4h later");
	window_ok("cron(0 0,20 * * ? *)", 4);
	window_ok("cron(0 2/10 * * ? *)", 2);
	window_refused("cron(0 2/10 * * ? *)", 3, "from 22:00 reaches into the next UTC day");
	window_refused("cron(0 2/10 * * ? *)", 5, "next rotation window");
	window_refused("rate(10 days)", 0, "from 1h to 24h");
	window_refused("rate(10 days)", 25, "from 1h to 24h");
}

static void test_default_window(void **state)
{
	struct kt_awssched s;

	(void)state;
	s = parsed("rate(4 hours)");
	assert_int_equal(kt_awssched_default_window(&s, utc("2026-12-05T15:00:00")), 3600);
	s = parsed("cron(0 0/4 * * ? *)");
	assert_int_equal(kt_awssched_default_window(&s, utc("2026-12-05T20:00:00")), 3600);
	/* Schedules in days: to the end of the UTC day. */
	s = parsed("rate(10 days)");
	assert_int_equal(kt_awssched_default_window(&s, utc("2026-12-05T15:00:00")), 9 * 3600);
	assert_int_equal(kt_awssched_default_window(&s, utc("2026-12-05T00:00:00")), 86400);
	s = parsed("cron(0 4 ? * SUN#2 *)");
	assert_int_equal(kt_awssched_default_window(&s, utc("2026-12-13T04:00:00")), 20 * 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_documented_examples),
		cmocka_unit_test(test_weekday_rules),
		cmocka_unit_test(test_calendar_corners),
		cmocka_unit_test(test_refused_cron),
		cmocka_unit_test(test_refused_too_often),
		cmocka_unit_test(test_refused_rate_and_text),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_default_window),
	};

	return cmocka_run_group_tests_name("awssched", tests, NULL, NULL);
}

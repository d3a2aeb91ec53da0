/* AWS Secrets Manager's rotation schedules (awssched.h): rate() and cron()
 * expressions and the rotation window's Duration, parsed with the rules AWS
 * documents and evaluated in UTC with calendar arithmetic, never local time.
 *
 * The rules implemented, and where they come from:
 *
 * Secrets Manager User Guide, "Rotation schedules"
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html):
 *  - rate(Value Unit): Value a positive integer, Unit hour, hours, day or
 *    days; a secret rotates at most every four hours; the longest period
 *    is 999 days. Minutes are not a unit Secrets Manager takes.
 *  - cron(Minutes Hours Day-of-month Month Day-of-week Year): Minutes must
 *    be 0 (windows open on the hour); Year must be * (no schedule more than
 *    a year apart); Day-of-month 1-31 with , - * ? / L; Month 1-12 or
 *    JAN-DEC with , - * /; Day-of-week 1-7 or SUN-SAT with # , - * ? / L.
 *    One of Day-of-month and Day-of-week must be ?. Increments of hours
 *    restart each day: cron(0 4/12 * * ? *) is 04:00 and 16:00 every day.
 *  - Windows: at least one hour; by default one hour for a schedule in
 *    hours and to the end of the UTC day for a schedule in days; a window
 *    must not reach into the next window, and for a schedule in days the
 *    start hour plus the window is at most 24 hours.
 * Secrets Manager API Reference, RotationRulesType
 * (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html):
 *  - ScheduleExpression: 1 to 256 characters of [0-9A-Za-z()#?*-/, ].
 *  - Duration: "3h", 2 or 3 characters; the window must not extend into
 *    the next rotation window or the next UTC day (applied here to every
 *    cron() schedule).
 * Where those say nothing, EventBridge's cron and rate rules
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html):
 *  - Hours 0-23 with , - * /; W in Day-of-month (3W: the weekday nearest
 *    the 3rd); L alone in Day-of-week is the week's last day, Saturday;
 *    wL the month's last weekday w; w#n the n-th weekday w of the month;
 *    a # stands alone in Day-of-week; * or a value in one of the day
 *    fields and ? in the other.
 *  - rate(1 hour) and rate(2 hours): singular for 1, plural otherwise.
 * Documented by none of them and decided here, mostly as Quartz (where
 * this cron syntax comes from) does: W never reaches into another month
 * (1W on a Saturday is Monday the 3rd; 31W in a 30-day month is no
 * window); LW is the month's last Monday..Friday; L, LW, dW and wL stand
 * alone in their field like #; names are read in any case; a range must
 * not run backwards; a step is 1 up to the field's largest value. A
 * schedule that no date satisfies (day 30 of February) is refused rather
 * than never rotating, and rate(N hours) takes N up to 23 (24 hours and
 * more are rate(N days)). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "awssched_int.h"

static int parse_rate(const char *body, struct kt_awssched *s, char *err, size_t errlen)
{
	const char *p = body, *unit;
	long n = 0;
	size_t len;

	if (!isdigit((unsigned char)*p))
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: write rate(N hours) or rate(N days) with N a whole number");
	while (isdigit((unsigned char)*p)) {
		if (n <= 99999)
			n = n * 10 + (*p - '0');
		p++;
	}
	if (*p != ' ')
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: write rate(N hours) or rate(N days), with a space before the unit");
	while (*p == ' ')
		p++;
	unit = p;
	len = strlen(unit);
	if (len == 0)
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: the unit (hours or days) is missing");
	if (strncmp(unit, "minute", 6) == 0)
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: Secrets Manager rotates at most every four hours: use hours or days, not minutes");
	if (strcmp(unit, "hour") == 0 || strcmp(unit, "hours") == 0) {
		s->rate_hours = true;
		if (n < 4 || n > RATE_HOURS_MAX)
			return kt_awssched_fail(
				err, errlen,
				"Invalid rate expression: rate(N hours): N must be between 4 and %d (Secrets Manager rotates at most every four hours; use days beyond)",
				RATE_HOURS_MAX);
	} else if (strcmp(unit, "day") == 0 || strcmp(unit, "days") == 0) {
		s->rate_hours = false;
		if (n < 1 || n > RATE_DAYS_MAX)
			return kt_awssched_fail(
				err, errlen,
				"Invalid rate expression: rate(N days): N must be between 1 and %d",
				RATE_DAYS_MAX);
	} else {
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: unknown unit '%.16s': hour, hours, day or days",
			unit);
	}
	if ((n == 1) != (unit[len - 1] != 's'))
		return kt_awssched_fail(
			err, errlen,
			"Invalid rate expression: the unit is singular for 1 and plural otherwise: rate(%ld %s%s)",
			n, s->rate_hours ? "hour" : "day", n == 1 ? "" : "s");
	s->is_rate = true;
	s->rate_n = n;
	s->in_hours = s->rate_hours;
	s->gap = n * (s->rate_hours ? 3600 : DAY);
	return 0;
}

int kt_awssched_parse(const char *expr, struct kt_awssched *out, char *err, size_t errlen)
{
	static const char allowed[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "abcdefghijklmnopqrstuvwxyz()#?*-/, ";
	struct kt_awssched s = { 0 };
	char body[KT_AWSSCHED_MAX + 1];
	size_t len, bad;
	int rc;

	if (expr == NULL || *expr == '\0')
		return kt_awssched_fail(err, errlen, "Invalid schedule expression: it is empty");
	len = strlen(expr);
	if (len > KT_AWSSCHED_MAX)
		return kt_awssched_fail(err, errlen,
					"Invalid schedule expression: longer than %d characters",
					KT_AWSSCHED_MAX);
	bad = strspn(expr, allowed);
	if (bad < len) {
		unsigned char c = (unsigned char)expr[bad];

		if (isprint(c))
			return kt_awssched_fail(
				err, errlen,
				"Invalid schedule expression: the character '%c' is not allowed",
				c);
		return kt_awssched_fail(
			err, errlen,
			"Invalid schedule expression: the character \\x%02x is not allowed", c);
	}
	if ((strncmp(expr, "rate(", 5) != 0 && strncmp(expr, "cron(", 5) != 0) ||
	    expr[len - 1] != ')')
		return kt_awssched_fail(
			err, errlen,
			"Invalid schedule expression: write rate(N hours|days) or cron(Minutes Hours Day-of-month Month Day-of-week Year)");
	memcpy(body, expr + 5, len - 6);
	body[len - 6] = '\0';
	if (strchr(body, '(') != NULL || strchr(body, ')') != NULL)
		return kt_awssched_fail(err, errlen,
					"Invalid schedule expression: unexpected parenthesis");
	rc = expr[0] == 'r' ? parse_rate(body, &s, err, errlen)
			    : kt_awssched_parse_cron(body, &s, err, errlen);
	if (rc < 0)
		return rc;
	*out = s;
	return 0;
}

/* The first (hour, minute) at or after (*h, *m) that the schedule takes. */
static bool time_in_day(const struct kt_awssched *s, int *h, int *m)
{
	for (int hh = *h; hh < 24; hh++) {
		if (!(s->hours & (1u << hh)))
			continue;
		for (int mm = hh == *h ? *m : 0; mm < 60; mm++) {
			if (s->minutes & ((uint64_t)1 << mm)) {
				*h = hh;
				*m = mm;
				return true;
			}
		}
	}
	return false;
}

time_t kt_awssched_next(const struct kt_awssched *s, time_t after)
{
	struct tm tm;
	time_t t;
	int y, mo, d, h, mi;

	if (s->is_rate) {
		uintmax_t max = sizeof(time_t) == 8 ? INT64_MAX : INT32_MAX;

		if (after > 0 && (uintmax_t)after + (uintmax_t)s->gap > max)
			return 0;
		return after + s->gap;
	}
	/* Past EventBridge's last year there is none. */
	if (after >= YEAR_END)
		return 0;
	/* The first whole minute strictly after `after` (EventBridge's years
	 * start in 1970). */
	t = after < 0 ? 0 : after - after % 60 + 60;
	if (gmtime_r(&t, &tm) == NULL)
		return 0;
	y = tm.tm_year + 1900;
	mo = tm.tm_mon + 1;
	d = tm.tm_mday;
	h = tm.tm_hour;
	mi = tm.tm_min;
	/* Month by month, then day by day within the days the month takes:
	 * a few thousand steps at most, however far the next window. */
	for (; y <= YEAR_LAST; y++, mo = 1) {
		for (; mo <= 12; mo++, d = 1, h = 0, mi = 0) {
			uint32_t mask = kt_awssched_day_mask(s, y, mo) & (0xffffffffu << d);

			for (int dd = d; dd <= 31 && mask != 0; dd++) {
				if (!(mask & (1u << dd)))
					continue;
				mask &= ~(1u << dd);
				if (dd != d) {
					h = 0;
					mi = 0;
				}
				if (!time_in_day(s, &h, &mi))
					continue;
				memset(&tm, 0, sizeof(tm));
				tm.tm_year = y - 1900;
				tm.tm_mon = mo - 1;
				tm.tm_mday = dd;
				tm.tm_hour = h;
				tm.tm_min = mi;
				return timegm(&tm);
			}
		}
	}
	return 0;
}

long kt_awssched_default_window(const struct kt_awssched *s, time_t start)
{
	long into_day = (long)(start % DAY);

	if (into_day < 0)
		into_day += DAY;
	if (s->in_hours)
		return 3600;
	return DAY - into_day;
}

int kt_awssched_parse_duration(const char *text, long *seconds, char *err, size_t errlen)
{
	size_t len = text != NULL ? strlen(text) : 0;
	long h = 0;

	if (len < 2 || len > 3 || text[len - 1] != 'h' || strspn(text, "0123456789") != len - 1)
		return kt_awssched_fail(
			err, errlen,
			"Invalid Duration '%.8s': write whole hours like 3h, from 1h to 24h",
			text != NULL ? text : "");
	for (size_t i = 0; i + 1 < len; i++)
		h = h * 10 + (text[i] - '0');
	if (h < 1 || h > 24)
		return kt_awssched_fail(err, errlen,
					"Invalid Duration '%s': the window is from 1h to 24h",
					text);
	*seconds = h * 3600;
	return 0;
}

const char *kt_awssched_show_len(long sec, char *buf, size_t len)
{
	if (sec % 3600 == 0)
		snprintf(buf, len, "%ldh", sec / 3600);
	else
		snprintf(buf, len, "%ldh %ldmin", sec / 3600, sec % 3600 / 60);
	return buf;
}

int kt_awssched_check_window(const struct kt_awssched *s, long window, char *err, size_t errlen)
{
	char a[32], b[32];

	if (window < 3600 || window > DAY)
		return kt_awssched_fail(err, errlen,
					"Invalid Duration: the window is from 1h to 24h");
	if (s->is_rate) {
		/* A rate in days opens at midnight (AWS), so any window up to
		 * 24 hours stays in its day. */
		if (s->rate_hours && window > s->rate_n * 3600)
			return kt_awssched_fail(
				err, errlen,
				"Invalid Duration: a %s window reaches into the next rotation window: rate(%ld hours) opens one every %ld hours",
				kt_awssched_show_len(window, a, sizeof(a)), s->rate_n, s->rate_n);
		return 0;
	}
	if (window > s->gap)
		return kt_awssched_fail(
			err, errlen,
			"Invalid Duration: a %s window reaches into the next rotation window, %s later",
			kt_awssched_show_len(window, a, sizeof(a)),
			kt_awssched_show_len(s->gap, b, sizeof(b)));
	if (s->last_start + window > DAY)
		return kt_awssched_fail(
			err, errlen,
			"Invalid Duration: a %s window from %02ld:%02ld reaches into the next UTC day",
			kt_awssched_show_len(window, a, sizeof(a)), s->last_start / 3600,
			s->last_start % 3600 / 60);
	return 0;
}

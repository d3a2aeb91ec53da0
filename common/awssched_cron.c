/* cron() expressions of AWS Secrets Manager's rotation schedules: the six
 * fields read into sets, with the rules awssched.c's opening comment lists
 * (and where they come from), and what the schedule's windows imply
 * (their shortest gap, whether it is a schedule in hours). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "awssched_int.h"

enum field { F_MINUTES, F_HOURS, F_DOM, F_MONTH, F_DOW, F_YEAR, F_COUNT };

static const struct {
	const char *name;
	int min, max;
} fields[F_COUNT] = {
	[F_MINUTES] = { "Minutes", 0, 59 },  [F_HOURS] = { "Hours", 0, 23 },
	[F_DOM] = { "Day-of-month", 1, 31 }, [F_MONTH] = { "Month", 1, 12 },
	[F_DOW] = { "Day-of-week", 1, 7 },   [F_YEAR] = { "Year", 1970, YEAR_LAST },
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const day_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

/* A number or (Month, Day-of-week) a three-letter name at *p, advancing it. */
static int read_value(const char **p, enum field f, int *v, char *err, size_t errlen)
{
	const char *const *names = f == F_MONTH ? month_names : f == F_DOW ? day_names : NULL;
	int n = f == F_MONTH ? 12 : 7;
	const char *q = *p;
	long x = 0;

	if (isdigit((unsigned char)*q)) {
		while (isdigit((unsigned char)*q)) {
			x = x * 10 + (*q - '0');
			if (x > 9999)
				return kt_awssched_fail(
					err, errlen,
					"Invalid cron expression: %s: number too large",
					fields[f].name);
			q++;
		}
		if (x < fields[f].min || x > fields[f].max)
			return kt_awssched_fail(
				err, errlen, "Invalid cron expression: %s: %ld is not in %d-%d%s",
				fields[f].name, x, fields[f].min, fields[f].max,
				f == F_MONTH ? " (or JAN-DEC)"
				: f == F_DOW ? " (or SUN-SAT)"
					     : "");
		*v = (int)x;
		*p = q;
		return 0;
	}
	for (int i = 0; names != NULL && i < n; i++) {
		/* A weekday's name may have L after it: FRIL, the last Friday. */
		if (strncasecmp(q, names[i], 3) == 0 &&
		    (!isalpha((unsigned char)q[3]) || (f == F_DOW && (q[3] == 'L' || q[3] == 'l') &&
						       !isalpha((unsigned char)q[4])))) {
			*v = i + 1;
			*p = q + 3;
			return 0;
		}
	}
	if (*q == '\0' || *q == ',')
		return kt_awssched_fail(err, errlen,
					"Invalid cron expression: %s: a value is missing",
					fields[f].name);
	return kt_awssched_fail(err, errlen, "Invalid cron expression: %s: unexpected '%.8s'",
				fields[f].name, q);
}

/* A list of *, values, ranges and steps: bit v of *set for each value v. */
static int parse_list(const char *text, enum field f, uint64_t *set, char *err, size_t errlen)
{
	const char *p = text;
	const char *name = fields[f].name;
	int lo, hi, step, rc;

	*set = 0;
	for (;;) {
		step = 0;
		if (*p == '*' || *p == '/') {
			lo = fields[f].min;
			hi = fields[f].max;
			if (*p == '*')
				p++;
		} else {
			if ((rc = read_value(&p, f, &lo, err, errlen)) < 0)
				return rc;
			hi = lo;
			if (*p == '-') {
				p++;
				if ((rc = read_value(&p, f, &hi, err, errlen)) < 0)
					return rc;
				if (hi < lo)
					return kt_awssched_fail(
						err, errlen,
						"Invalid cron expression: %s: the range %d-%d runs backwards",
						name, lo, hi);
			}
		}
		if (*p == '/') {
			long x = 0;

			p++;
			if (!isdigit((unsigned char)*p))
				return kt_awssched_fail(
					err, errlen,
					"Invalid cron expression: %s: '/' must be followed by a step",
					name);
			while (isdigit((unsigned char)*p) && x <= 9999)
				x = x * 10 + (*p++ - '0');
			if (x < 1 || x > fields[f].max)
				return kt_awssched_fail(
					err, errlen,
					"Invalid cron expression: %s: the step must be from 1 to %d",
					name, fields[f].max);
			step = (int)x;
			/* "4/12" runs from 4 to the field's end, as "4-23/12". */
			if (hi == lo)
				hi = fields[f].max;
		}
		for (int v = lo; v <= hi; v += step > 0 ? step : 1)
			*set |= (uint64_t)1 << v;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return kt_awssched_fail(err, errlen,
						"Invalid cron expression: %s: unexpected '%.8s'",
						name, p);
		p++;
	}
}

static int parse_dom(const char *t, struct kt_awssched *s, char *err, size_t errlen)
{
	uint64_t set;
	size_t n = strlen(t);
	int rc;

	if (strcmp(t, "?") == 0) {
		s->dom = KT_AWSSCHED_DOM_ANY;
		return 0;
	}
	if (strcasecmp(t, "L") == 0 || strcasecmp(t, "LW") == 0) {
		s->dom = t[1] == '\0' ? KT_AWSSCHED_DOM_LAST : KT_AWSSCHED_DOM_LAST_WEEKDAY;
		return 0;
	}
	if (n >= 2 && toupper((unsigned char)t[n - 1]) == 'W' && strspn(t, "0123456789") == n - 1) {
		char num[8];
		const char *p = num;
		int d;

		if (n - 1 >= sizeof(num))
			return kt_awssched_fail(
				err, errlen,
				"Invalid cron expression: Day-of-month: number too large");
		memcpy(num, t, n - 1);
		num[n - 1] = '\0';
		if ((rc = read_value(&p, F_DOM, &d, err, errlen)) < 0)
			return rc;
		s->dom = KT_AWSSCHED_DOM_NEAREST;
		s->dom_day = d;
		return 0;
	}
	if (strpbrk(t, "LlWw?#") != NULL)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Day-of-month: L, LW, dW and ? stand alone, not in a list or range");
	if ((rc = parse_list(t, F_DOM, &set, err, errlen)) < 0)
		return rc;
	s->dom = KT_AWSSCHED_DOM_SET;
	s->mdays = (uint32_t)set;
	return 0;
}

static int parse_dow(const char *t, struct kt_awssched *s, char *err, size_t errlen)
{
	const char *p = t;
	uint64_t set;
	int rc, w;

	if (strcmp(t, "?") == 0) {
		s->dow = KT_AWSSCHED_DOW_ANY;
		return 0;
	}
	if (strcasecmp(t, "L") == 0) {
		/* The last day of the week: Saturday. */
		s->dow = KT_AWSSCHED_DOW_SET;
		s->wdays = 1u << 6;
		return 0;
	}
	/* No weekday's name has an L: an L here is wL. */
	if (strpbrk(t, "#Ll?") == NULL) {
		if ((rc = parse_list(t, F_DOW, &set, err, errlen)) < 0)
			return rc;
		s->dow = KT_AWSSCHED_DOW_SET;
		s->wdays = (uint8_t)(set >> 1);
		return 0;
	}
	if (strpbrk(t, ",-/*?") != NULL)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Day-of-week: #, L and ? stand alone: one expression, not in a list or range");
	if ((rc = read_value(&p, F_DOW, &w, err, errlen)) < 0)
		return rc;
	s->dow_day = w - 1;
	if ((*p == 'L' || *p == 'l') && p[1] == '\0') {
		s->dow = KT_AWSSCHED_DOW_LAST;
		return 0;
	}
	if (*p == '#' && p[1] >= '1' && p[1] <= '5' && p[2] == '\0') {
		s->dow = KT_AWSSCHED_DOW_NTH;
		s->dow_nth = p[1] - '0';
		return 0;
	}
	if (*p == '#')
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Day-of-week: after # comes the week of the month, 1 to 5");
	return kt_awssched_fail(err, errlen,
				"Invalid cron expression: Day-of-week: unexpected '%.8s'", p);
}

/* The starts in a day (seconds after midnight, rising) and whether two
 * days in a row can both have windows, over Gregorian's 400-year cycle
 * (whose weekdays repeat too): what the four-hour rule and the window
 * rules need. */
static int plan(struct kt_awssched *s, char *err, size_t errlen)
{
	long first = -1, prev = -1, in_day_gap = 0;
	bool any = false, in_a_row = false, last_was_taken = false;
	int per_day = 0;

	for (int h = 0; h < 24; h++) {
		for (int m = 0; m < 60; m++) {
			long t = h * 3600L + m * 60L;

			if (!(s->hours & (1u << h)) || !(s->minutes & ((uint64_t)1 << m)))
				continue;
			if (first < 0)
				first = t;
			if (prev >= 0 && (in_day_gap == 0 || t - prev < in_day_gap))
				in_day_gap = t - prev;
			prev = t;
			per_day++;
		}
	}
	for (int i = 0; i <= 400 * 12; i++) {
		int y = 2000 + i / 12, m = 1 + i % 12;
		uint32_t mask = kt_awssched_day_mask(s, y, m);

		any = any || mask != 0;
		if ((mask & (mask >> 1)) || (last_was_taken && (mask & 2u)))
			in_a_row = true;
		last_was_taken = (mask >> kt_awssched_days_in_month(y, m)) & 1u;
	}
	if (!any)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: no date matches Day-of-month, Month and Day-of-week");
	s->in_hours = per_day > 1;
	s->last_start = prev;
	s->gap = per_day > 1 ? in_day_gap : 0;
	if (in_a_row && (s->gap == 0 || DAY - prev + first < s->gap))
		s->gap = DAY - prev + first;
	if (s->gap == 0)
		s->gap = 2 * DAY; /* one window a day, never on two days in a row */
	if (s->gap < MIN_GAP)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Hours: windows start %ld hour%s apart; Secrets Manager rotates at most every four hours",
			s->gap / 3600, s->gap == 3600 ? "" : "s");
	return 0;
}

int kt_awssched_parse_cron(const char *body, struct kt_awssched *s, char *err, size_t errlen)
{
	char buf[KT_AWSSCHED_MAX + 1];
	char *f[F_COUNT + 1];
	char *p = buf;
	uint64_t set;
	int n = 0, rc;

	snprintf(buf, sizeof(buf), "%s", body);
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (n <= F_COUNT)
			f[n] = p;
		n++;
		while (*p != ' ' && *p != '\0')
			p++;
		if (*p == ' ')
			*p++ = '\0';
	}
	if (n != F_COUNT)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: %d field%s; cron() takes 6: Minutes Hours Day-of-month Month Day-of-week Year",
			n, n == 1 ? "" : "s");
	if (strchr(f[F_MINUTES], '?') || strchr(f[F_HOURS], '?') || strchr(f[F_MONTH], '?'))
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: %s: ? is only for Day-of-month or Day-of-week",
			strchr(f[F_MINUTES], '?') ? "Minutes"
			: strchr(f[F_HOURS], '?') ? "Hours"
						  : "Month");
	if ((rc = parse_list(f[F_MINUTES], F_MINUTES, &set, err, errlen)) < 0)
		return rc;
	if (set != 1)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Minutes must be 0: Secrets Manager's rotation windows open on the hour");
	s->minutes = set;
	if ((rc = parse_list(f[F_HOURS], F_HOURS, &set, err, errlen)) < 0)
		return rc;
	s->hours = (uint32_t)set;
	if ((rc = parse_dom(f[F_DOM], s, err, errlen)) < 0)
		return rc;
	if ((rc = parse_list(f[F_MONTH], F_MONTH, &set, err, errlen)) < 0)
		return rc;
	s->months = (uint16_t)set;
	if ((rc = parse_dow(f[F_DOW], s, err, errlen)) < 0)
		return rc;
	if (strcmp(f[F_YEAR], "*") != 0)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Year must be *: Secrets Manager does not support rotation schedules more than a year apart");
	if (s->dom == KT_AWSSCHED_DOM_ANY && s->dow == KT_AWSSCHED_DOW_ANY)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Day-of-month and Day-of-week are both ?: give one of them");
	if (s->dom != KT_AWSSCHED_DOM_ANY && s->dow != KT_AWSSCHED_DOW_ANY)
		return kt_awssched_fail(
			err, errlen,
			"Invalid cron expression: Day-of-month and Day-of-week are both given: one of them must be ?");
	return plan(s, err, errlen);
}

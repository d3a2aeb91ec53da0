/* The calendar under AWS rotation schedules (awssched_int.h): UTC days,
 * months and weekdays, the days of a month a cron() schedule takes, and
 * the error record both awssched.c and awssched_cron.c write. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "awssched_int.h"

int kt_awssched_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int kt_awssched_days_in_month(int y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* 0 Sunday .. 6 Saturday (Sakamoto's method). */
static int weekday(int y, int m, int d)
{
	static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

	if (m < 3)
		y--;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

/* The days of month m of year y that the schedule takes: bit d for day d. */
uint32_t kt_awssched_day_mask(const struct kt_awssched *s, int y, int m)
{
	int dim, wd1, wdl, d;
	uint32_t mask = 0;

	if (!(s->months & (1u << m)))
		return 0;
	dim = kt_awssched_days_in_month(y, m);
	wd1 = weekday(y, m, 1);
	wdl = (wd1 + dim - 1) % 7;
	switch (s->dom) {
	case KT_AWSSCHED_DOM_SET:
		return s->mdays & ((0xffffffffu >> (31 - dim)) & ~1u);
	case KT_AWSSCHED_DOM_LAST:
		return 1u << dim;
	case KT_AWSSCHED_DOM_LAST_WEEKDAY:
		d = wdl == 6 ? dim - 1 : wdl == 0 ? dim - 2 : dim;
		return 1u << d;
	case KT_AWSSCHED_DOM_NEAREST:
		d = s->dom_day;
		if (d > dim)
			return 0;
		switch ((wd1 + d - 1) % 7) {
		case 6: /* Saturday: the Friday before, or Monday the 3rd */
			d = d == 1 ? 3 : d - 1;
			break;
		case 0: /* Sunday: the Monday after, or the Friday before */
			d = d == dim ? d - 2 : d + 1;
			break;
		}
		return 1u << d;
	case KT_AWSSCHED_DOM_ANY:
		break;
	}
	switch (s->dow) {
	case KT_AWSSCHED_DOW_SET:
		for (d = 1; d <= dim; d++) {
			if (s->wdays & (1u << ((wd1 + d - 1) % 7)))
				mask |= 1u << d;
		}
		return mask;
	case KT_AWSSCHED_DOW_LAST:
		return 1u << (dim - (wdl - s->dow_day + 7) % 7);
	case KT_AWSSCHED_DOW_NTH:
		d = 1 + (s->dow_day - wd1 + 7) % 7 + 7 * (s->dow_nth - 1);
		return d <= dim ? 1u << d : 0;
	case KT_AWSSCHED_DOW_ANY:
		break;
	}
	return 0;
}

/* What awssched.c and awssched_cron.c share; not a public face
 * (awssched.h is). awssched_cron.c reads cron() expressions; awssched.c
 * the rest, and the calendar both use. */
#ifndef KT_AWSSCHED_INT_H
#define KT_AWSSCHED_INT_H

#include <stddef.h>
#include <stdint.h>

#include "awssched.h"

#define MIN_GAP (4 * 3600L)
#define RATE_HOURS_MAX 23
#define RATE_DAYS_MAX 999
#define YEAR_LAST 2199
#define YEAR_END ((time_t)7258118400LL) /* 2200-01-01T00:00:00Z */
#define DAY 86400L

/* Writes the message to err (when not NULL) and returns -EINVAL. */
int kt_awssched_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The days in month m (1..12) of year y. */
int kt_awssched_days_in_month(int y, int m);

/* The days of month m of year y that s takes: bit d for day d. */
uint32_t kt_awssched_day_mask(const struct kt_awssched *s, int y, int m);

/* Reads the body of cron(...) (the six fields) into s, with AWS's rules:
 * 0, or -EINVAL with err saying why. */
int kt_awssched_parse_cron(const char *body, struct kt_awssched *s, char *err, size_t errlen);

#endif

/* AWS Secrets Manager's rotation schedules (RotationRules: ScheduleExpression
 * and Duration), parsed with AWS's rules and evaluated in UTC: rate(N hours|
 * days) and cron(Minutes Hours Day-of-month Month Day-of-week Year). Pure
 * code, no clock of its own: keyturnd's configuration and rotation and
 * keyturnctl schedule share it. */
#ifndef KT_AWSSCHED_H
#define KT_AWSSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The longest expression accepted (ScheduleExpression's length limit). */
#define KT_AWSSCHED_MAX 256

/* How cron()'s Day-of-month field picks days. */
enum kt_awssched_dom {
	KT_AWSSCHED_DOM_ANY = 0,      /* ?: Day-of-week decides */
	KT_AWSSCHED_DOM_SET,          /* the days in mdays */
	KT_AWSSCHED_DOM_LAST,         /* L: the month's last day */
	KT_AWSSCHED_DOM_LAST_WEEKDAY, /* LW: the month's last Monday..Friday */
	KT_AWSSCHED_DOM_NEAREST,      /* dW: the Monday..Friday nearest day d */
};

/* How cron()'s Day-of-week field picks days. */
enum kt_awssched_dow {
	KT_AWSSCHED_DOW_ANY = 0, /* ?: Day-of-month decides */
	KT_AWSSCHED_DOW_SET,     /* the weekdays in wdays */
	KT_AWSSCHED_DOW_LAST,    /* wL: the month's last weekday w */
	KT_AWSSCHED_DOW_NTH,     /* w#n: the month's n-th weekday w */
};

struct kt_awssched {
	bool is_rate;
	long rate_n;     /* rate(): N */
	bool rate_hours; /* rate(): N hours (else days) */
	/* cron(): the fields as sets. */
	uint64_t minutes; /* bit m: minute m (Secrets Manager allows only 0) */
	uint32_t hours;   /* bit h: hour h */
	uint32_t mdays;   /* DOM_SET: bit d: day d of the month (1..31) */
	uint16_t months;  /* bit m: month m (1..12) */
	uint8_t wdays;    /* DOW_SET: bit w: weekday w (0 Sunday .. 6 Saturday) */
	enum kt_awssched_dom dom;
	enum kt_awssched_dow dow;
	int dom_day; /* DOM_NEAREST: d */
	int dow_day; /* DOW_LAST, DOW_NTH: w (0 Sunday .. 6 Saturday) */
	int dow_nth; /* DOW_NTH: n (1..5) */
	/* What parsing worked out once, for the window's rules: whether it is
	 * AWS's "schedule in hours" (rate(N hours), or a cron() with more
	 * than one window a day), the shortest time between two windows'
	 * starts (s; for rate(), N hours or days) and cron()'s latest start
	 * in a day (s after midnight). */
	bool in_hours;
	long gap;
	long last_start;
};

/* Parses expr. 0, or -EINVAL with err saying what AWS would refuse and why. */
int kt_awssched_parse(const char *expr, struct kt_awssched *out, char *err, size_t errlen);

/* The start of the first window strictly after `after` (Unix time, UTC):
 * rate(): after + N hours or days; cron(): the next matching minute.
 * 0 when there is none (a cron whose years are over). */
time_t kt_awssched_next(const struct kt_awssched *s, time_t after);

/* AWS's window length when no Duration is given, for the window that starts
 * at start: 1 h for schedules in hours, else to the end of that UTC day. */
long kt_awssched_default_window(const struct kt_awssched *s, time_t start);

/* A Duration as RotationRules takes it ("3h": whole hours, 1..24): seconds.
 * 0, or -EINVAL with err saying why. */
int kt_awssched_parse_duration(const char *text, long *seconds, char *err, size_t errlen);

/* Whether a window of `window` seconds fits the schedule as AWS demands (it
 * must not reach into the next window, nor past the UTC day for schedules
 * in days). 0, or -EINVAL with err saying why. */
int kt_awssched_check_window(const struct kt_awssched *s, long window, char *err, size_t errlen);

/* A window's length for people: "3h", or "3h 20min" when not whole hours.
 * Returns buf. */
const char *kt_awssched_show_len(long sec, char *buf, size_t len);

#endif

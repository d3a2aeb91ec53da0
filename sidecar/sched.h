/* When to check a secret again: pure functions of the secret's state and the
 * clock, so the daemon's timing can be tested without waiting. Quiet times
 * check every check_interval (jittered), rotation windows every
 * window_interval, and failures back off exponentially. */
#ifndef KT_SCHED_H
#define KT_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Used when a kt_sched_cfg field is 0 (or negative). */
#define KT_SCHED_DEFAULT_CHECK        3600L /* s between quiet-time checks */
#define KT_SCHED_DEFAULT_WINDOW       30L   /* s between checks inside a window */
#define KT_SCHED_DEFAULT_BACKOFF_BASE 5L    /* s after the first failure */
#define KT_SCHED_DEFAULT_BACKOFF_CAP  900L  /* s, or check_interval when shorter */

struct kt_sched_cfg {
	long check_interval;  /* s */
	long window_interval; /* s */
	long backoff_base;    /* s; default 5 */
	long backoff_cap;     /* s; default min(check_interval, 900) */
};

/* What the last DescribeSecret said about rotation. */
struct kt_rotation_info {
	bool enabled;
	time_t next_rotation; /* NextRotationDate, 0 when unknown */
	long window_s;        /* RotationRules.Duration in s, 0 when absent */
	long schedule_days;   /* AutomaticallyAfterDays, 0 when absent */
};

/* Parses a RotationRules Duration ("3h", "90m", "1d", "2h30m"). Returns 0 and
 * seconds, or -EINVAL. */
int kt_sched_parse_duration(const char *s, long *seconds);

/* Whether now falls inside the rotation window around next_rotation (from
 * window_s before it, or a default of 24 h when no Duration is known, to one
 * hour after it, since rotations may finish late). */
bool kt_sched_in_window(const struct kt_rotation_info *r, time_t now);

/* The next check after a successful one at now. rnd is 32 random bits:
 * jitter of up to +-10%, so a fleet does not check in step. Never later than
 * the start of the next window. c and r may be NULL (defaults, no rotation). */
time_t kt_sched_next_check(const struct kt_sched_cfg *c, const struct kt_rotation_info *r,
                           time_t now, uint32_t rnd);

/* The next attempt after `failures` consecutive failures (>= 1; less counts
 * as 1): full jitter on min(cap, base * 2^(failures-1)), at least 1 s. */
time_t kt_sched_backoff(const struct kt_sched_cfg *c, int failures, time_t now, uint32_t rnd);

#endif

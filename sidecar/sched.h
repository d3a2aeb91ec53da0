/* When to check a secret again: pure functions of the secret's state and the
 * clock, so the daemon's timing can be tested without waiting. Quiet times
 * check every check_interval (jittered), rotation windows every
 * window_interval, and failures back off exponentially.
 *
 * Every time here is on one clock, the schedule clock (kt_sched_now(),
 * CLOCK_BOOTTIME), except what AWS dates and what is shown: NextRotationDate
 * is wall-clock time and is anchored to the schedule clock (kt_sched_anchor)
 * when it arrives and again whenever the wall clock steps. */
#ifndef KT_SCHED_H
#define KT_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Used when a kt_sched_cfg field is 0 (or negative). */
#define KT_SCHED_DEFAULT_CHECK 3600L      /* s between quiet-time checks */
#define KT_SCHED_DEFAULT_WINDOW 30L       /* s between checks inside a window */
#define KT_SCHED_DEFAULT_BACKOFF_BASE 5L  /* s after the first failure */
#define KT_SCHED_DEFAULT_BACKOFF_CAP 900L /* s, or check_interval when shorter */

struct kt_sched_cfg {
	long check_interval;  /* s */
	long window_interval; /* s */
	long backoff_base;    /* s; default 5 */
	long backoff_cap;     /* s; default min(check_interval, 900) */
};

/* A wall-clock step larger than this (s) re-anchors NextRotationDate; NTP
 * slewing and the second boundaries of two clock reads stay below it. */
#define KT_SCHED_STEP_SLACK 2L

/* What the last DescribeSecret said about rotation. */
struct kt_rotation_info {
	bool enabled;
	time_t rotation_date; /* NextRotationDate (wall clock, as AWS says), 0 when unknown */
	time_t next_rotation; /* the same instant on the schedule clock (kt_sched_anchor);
			       * 0 when unknown. The functions below use this one. */
	long window_s;        /* RotationRules.Duration in s, 0 when absent */
	long schedule_days;   /* AutomaticallyAfterDays, 0 when absent */
};

/* What makes a cached AWSCURRENT value stale. */
struct kt_staleness {
	bool failing;         /* the last check or fetch failed */
	time_t last_ok;       /* the last answer from AWS (schedule clock) */
	bool superseded;      /* AWS moved AWSCURRENT to a version not fetched */
	time_t superseded_at; /* when this daemon first saw that (schedule clock) */
};

/* The schedule clock, in seconds: CLOCK_BOOTTIME, which never steps and
 * keeps counting while the host or VM is suspended, so that a value ages,
 * a grace period ends and a due check runs after a resume as they would
 * have without the suspend. */
time_t kt_sched_now(void);

/* Anchors r->rotation_date to the schedule clock: r->next_rotation becomes
 * the schedule-clock time as far ahead of (or behind) now as rotation_date
 * is of wall_now. Call it when a DescribeSecret answers and after a step. */
void kt_sched_anchor(struct kt_rotation_info *r, time_t now, time_t wall_now);

/* The wall-clock time of schedule-clock time t, for display; 0 stays 0. */
time_t kt_sched_to_wall(time_t t, time_t now, time_t wall_now);

/* Whether the wall clock stepped since *offset (wall minus schedule clock)
 * was taken: true when it moved by more than KT_SCHED_STEP_SLACK, and then
 * *offset is taken anew and *step says by how much it moved. */
bool kt_sched_clock_stepped(time_t *offset, time_t now, time_t wall_now, time_t *step);

/* Whether the value is stale, and since when: from superseded_at once AWS
 * moved AWSCURRENT away from it (whatever later checks say), else from the
 * last answer from AWS while checks fail. */
bool kt_sched_stale_since(const struct kt_staleness *s, time_t *since);

/* Whether the value may still be served: fresh, or stale for at most
 * max_stale seconds. */
bool kt_sched_servable(const struct kt_staleness *s, time_t now, long max_stale);

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

/* The first check after a secret's first value arrived at now: soon (5 s
 * plus up to 55 s of jitter, so a fleet started together does not check
 * together), never later than one check_interval. */
time_t kt_sched_first_check(const struct kt_sched_cfg *c, time_t now, uint32_t rnd);

/* The schedule's settings from check_interval and window_interval (s) of a
 * configuration; the rest take their defaults. The one place a
 * configuration becomes a kt_sched_cfg. */
struct kt_sched_cfg kt_sched_cfg_from(long check_interval, long window_interval);

#endif

/* When keyturnd checks a secret again: rotation windows from DescribeSecret,
 * jittered quiet-time checks and jittered exponential backoff, and how long
 * a stale value may be served. Everything but kt_sched_now() is a pure
 * function of its arguments, so tests can run a simulated clock. */

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "sched.h"

/* Longest RotationRules Duration taken as meaningful. AWS itself keeps a
 * window within one UTC day; 30 days leaves room for any future schedule
 * while still refusing numbers that are plainly garbage. */
#define SCHED_MAX_DURATION (30L * 86400)

/* Intervals and backoff bounds are clamped to a year. Nobody means more, and
 * the clamp keeps every product below in 64 bits (a year times 2^32 is far
 * below 2^63), so no arithmetic can overflow whatever the configuration. */
#define SCHED_MAX_INTERVAL (365L * 86400)

/* How long after NextRotationDate a window stays open: the four rotation
 * steps run in a Lambda that may start late or retry, so AWSCURRENT can move
 * well after the nominal time. */
#define SCHED_WINDOW_TAIL 3600L

/* The lead used when RotationRules has no Duration: for a schedule in days
 * AWS may rotate at any time of the UTC day the rotation is due. */
#define SCHED_DEFAULT_WINDOW 86400L

static long clamp_interval(long v, long dflt)
{
	if (v <= 0)
		return dflt;
	if (v > SCHED_MAX_INTERVAL)
		return SCHED_MAX_INTERVAL;
	return v;
}

/* time_t addition that sticks at the ends instead of wrapping, so a
 * next_rotation or clock near the limits cannot produce a time in the past. */
static time_t time_add(time_t t, long d)
{
	const time_t tmax = (time_t)(((uint64_t)1 << (sizeof(time_t) * CHAR_BIT - 1)) - 1);
	const time_t tmin = -tmax - 1;

	if (d > 0 && t > tmax - d)
		return tmax;
	if (d < 0 && t < tmin - d)
		return tmin;
	return t + d;
}

/* t - u for two times that may be anywhere in time_t, stuck at the ends;
 * a NextRotationDate of year 9999 against a clock of 1970 must not wrap. */
static time_t time_diff(time_t t, time_t u)
{
	const time_t tmax = (time_t)(((uint64_t)1 << (sizeof(time_t) * CHAR_BIT - 1)) - 1);
	const time_t tmin = -tmax - 1;

	if (u < 0 && t > tmax + u)
		return tmax;
	if (u > 0 && t < tmin + u)
		return tmin;
	return t - u;
}

/* d may be as wide as time_t; time_add takes a long, which is as wide on
 * every platform keyturnd builds for (LP64), but say so rather than assume. */
_Static_assert(sizeof(long) >= sizeof(time_t), "time_add takes time_t differences as long");

time_t kt_sched_now(void)
{
	struct timespec ts;

	/* CLOCK_BOOTTIME exists since Linux 2.6.39; a failure here means the
	 * process is broken beyond repair, and CLOCK_MONOTONIC is the next
	 * best answer. */
	if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void kt_sched_anchor(struct kt_rotation_info *r, time_t now, time_t wall_now)
{
	if (r->rotation_date == 0) {
		r->next_rotation = 0;
		return;
	}
	r->next_rotation = time_add(now, (long)time_diff(r->rotation_date, wall_now));
	/* 0 means "unknown"; a real date that lands there is a second off. */
	if (r->next_rotation == 0)
		r->next_rotation = -1;
}

time_t kt_sched_to_wall(time_t t, time_t now, time_t wall_now)
{
	if (t == 0)
		return 0;
	return time_add(wall_now, (long)time_diff(t, now));
}

bool kt_sched_clock_stepped(time_t *offset, time_t now, time_t wall_now, time_t *step)
{
	time_t cur = time_diff(wall_now, now);
	time_t d = time_diff(cur, *offset);

	if (d >= -KT_SCHED_STEP_SLACK && d <= KT_SCHED_STEP_SLACK)
		return false;
	*offset = cur;
	*step = d;
	return true;
}

bool kt_sched_stale_since(const struct kt_staleness *s, time_t *since)
{
	if (s->superseded) {
		*since = s->superseded_at;
		return true;
	}
	if (s->failing) {
		*since = s->last_ok;
		return true;
	}
	return false;
}

bool kt_sched_servable(const struct kt_staleness *s, time_t now, long max_stale)
{
	time_t since;

	if (!kt_sched_stale_since(s, &since))
		return true;
	return max_stale >= 0 && time_diff(now, since) <= max_stale;
}

/* Maps rnd evenly onto the whole seconds 0..v: 0 gives 0 and UINT32_MAX
 * gives v. v is at most SCHED_MAX_INTERVAL, so the product fits in 64 bits. */
static long scale(long v, uint32_t rnd)
{
	return (long)((((uint64_t)v + 1) * rnd) >> 32);
}

/* interval jittered evenly over [0.9, 1.1] times itself, and at least 1 s. */
static long jitter(long interval, uint32_t rnd)
{
	long spread = interval / 10;
	long d = interval - spread + scale(2 * spread, rnd);

	return d < 1 ? 1 : d;
}

/* One rule for the unit suffixes; a unit's rank makes them descend. */
static int unit_seconds(char u, int *rank, long *secs)
{
	switch (u) {
	case 'd':
		*rank = 4;
		*secs = 86400;
		return 0;
	case 'h':
		*rank = 3;
		*secs = 3600;
		return 0;
	case 'm':
		*rank = 2;
		*secs = 60;
		return 0;
	case 's':
		*rank = 1;
		*secs = 1;
		return 0;
	default:
		return -EINVAL;
	}
}

/* AWS writes Durations as "3h"; we also take d/h/m/s groups ("2h30m", "1d").
 * Units must come in descending order without repeats, so that "30m2h" or
 * "1h1h" (surely typos) are refused rather than summed. Signs, blanks,
 * fractions and upper case are refused too: AWS never sends them. */
int kt_sched_parse_duration(const char *s, long *seconds)
{
	const char *p = s;
	long total = 0;
	int last_rank = 5;
	int rc = -EINVAL;

	if (s == NULL || *s == '\0')
		goto out;
	while (*p != '\0') {
		char *end = NULL;
		long n, unit;
		int rank;

		/* strtol would skip blanks and take a sign; only digits may start a group. */
		if (*p < '0' || *p > '9')
			goto out;
		errno = 0;
		n = strtol(p, &end, 10);
		if (errno != 0 || end == p)
			goto out;
		if (unit_seconds(*end, &rank, &unit) < 0 || rank >= last_rank)
			goto out;
		/* Checked before multiplying, so a long run of digits cannot overflow. */
		if (n > SCHED_MAX_DURATION / unit || total > SCHED_MAX_DURATION - n * unit)
			goto out;
		total += n * unit;
		last_rank = rank;
		p = end + 1;
	}
	if (total <= 0)
		goto out;
	*seconds = total;
	rc = 0;
out:
	return rc;
}

/* NextRotationDate is documented as "on or before" the time it names, so the
 * window ends there and opens Duration earlier; rotations that finish late
 * are still caught during SCHED_WINDOW_TAIL after it. */
static bool window_bounds(const struct kt_rotation_info *r, time_t *start, time_t *end)
{
	long lead;

	if (r == NULL || !r->enabled || r->next_rotation == 0)
		return false;
	lead = r->window_s > 0 ? r->window_s : SCHED_DEFAULT_WINDOW;
	if (lead > SCHED_MAX_DURATION)
		lead = SCHED_MAX_DURATION;
	*start = time_add(r->next_rotation, -lead);
	*end = time_add(r->next_rotation, SCHED_WINDOW_TAIL);
	return true;
}

bool kt_sched_in_window(const struct kt_rotation_info *r, time_t now)
{
	time_t start, end;

	if (!window_bounds(r, &start, &end))
		return false;
	return now >= start && now <= end;
}

/* Inside a window the short interval is jittered too: hosts that share a
 * secret would otherwise keep calling in step once a window opens for all of
 * them at the same moment. */
time_t kt_sched_next_check(const struct kt_sched_cfg *c, const struct kt_rotation_info *r,
			   time_t now, uint32_t rnd)
{
	long check = clamp_interval(c != NULL ? c->check_interval : 0, KT_SCHED_DEFAULT_CHECK);
	long win = clamp_interval(c != NULL ? c->window_interval : 0, KT_SCHED_DEFAULT_WINDOW);
	time_t next, start, end;

	if (kt_sched_in_window(r, now))
		return time_add(now, jitter(win, rnd));
	next = time_add(now, jitter(check, rnd));
	/* A window that opens before the quiet-time check would be half missed;
	 * check at its start instead, where the short interval takes over. */
	if (window_bounds(r, &start, &end) && start > now && start < next)
		next = start;
	return next;
}

/* Full jitter (a uniform delay between 0 and the exponential ceiling) spreads
 * a fleet's retries best when they all failed together, e.g. on throttling. */
time_t kt_sched_backoff(const struct kt_sched_cfg *c, int failures, time_t now, uint32_t rnd)
{
	long check = clamp_interval(c != NULL ? c->check_interval : 0, KT_SCHED_DEFAULT_CHECK);
	long base = clamp_interval(c != NULL ? c->backoff_base : 0, KT_SCHED_DEFAULT_BACKOFF_BASE);
	long cap =
		clamp_interval(c != NULL ? c->backoff_cap : 0,
			       check < KT_SCHED_DEFAULT_BACKOFF_CAP ? check
								    : KT_SCHED_DEFAULT_BACKOFF_CAP);
	long ceiling = cap;
	long delay;
	int shift = failures < 1 ? 0 : failures - 1;

	/* base << shift only when it stays below the cap; a large failure count
	 * would otherwise shift past the width of a long. */
	if (shift < 62 && base <= (cap >> shift))
		ceiling = base << shift;
	delay = scale(ceiling, rnd);
	return time_add(now, delay < 1 ? 1 : delay);
}

#define FIRST_CHECK_MIN 5   /* s: the first DescribeSecret comes this soon ... */
#define FIRST_CHECK_SPAN 55 /* ... plus up to this much jitter */

time_t kt_sched_first_check(const struct kt_sched_cfg *c, time_t now, uint32_t rnd)
{
	long check = clamp_interval(c != NULL ? c->check_interval : 0, KT_SCHED_DEFAULT_CHECK);
	long delay = FIRST_CHECK_MIN + (long)(rnd % FIRST_CHECK_SPAN);

	return time_add(now, delay < check ? delay : check);
}

struct kt_sched_cfg kt_sched_cfg_from(long check_interval, long window_interval)
{
	struct kt_sched_cfg c = { .check_interval = check_interval,
				  .window_interval = window_interval };

	return c;
}

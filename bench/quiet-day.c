/* The "quiet day" figure: how many AWS calls keyturnd makes for one secret in
 * a day when nothing rotates, computed with the scheduling code the daemon
 * runs (kt_sched_next_check), over many simulated days. Prints figures only.
 *
 *   bench/quiet-day [--runs N] [--days N] [--seed N] [--check-interval S]
 *                   [--rotation-days N [--duration SPEC]]
 *
 * Each run is one daemon start followed by --days days. At the start the
 * daemon makes one BatchGetSecretValue (shared by up to 20 secrets; counted
 * here as a whole call for the one secret), then its first DescribeSecret
 * 5 to 59 s later; after every successful DescribeSecret the next one is
 * due at kt_sched_next_check(), exactly as daemon.c's check_done() asks.
 * A check is taken to happen at the second it is due (the daemon's one-second
 * tick may start it up to a second later, which only lowers the count).
 *
 * With --rotation-days the secret also rotates every N days (the
 * DescribeSecret answers carry RotationEnabled and NextRotationDate, and
 * RotationRules.Duration when --duration is given). The rotation is modelled
 * as happening at a uniformly random time inside the window sched.c assumes
 * (Duration, or 24 h, before NextRotationDate); the first check after it
 * costs one GetSecretValue as well, and its answer names the next
 * NextRotationDate. This is a model of AWS, not a measurement. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sched.h"

#define DAY 86400L
#define T_START ((time_t)1714521600) /* 2024-05-01T00:00:00Z, any time would do */
/* As in daemon.c: the first DescribeSecret comes FIRST_CHECK_MIN s after the
 * first value, plus rnd % FIRST_CHECK_SPAN. */
#define FIRST_CHECK_MIN 5
#define FIRST_CHECK_SPAN 55
/* The lead sched.c takes when RotationRules has no Duration. */
#define DEFAULT_LEAD DAY

struct opts {
	long runs;
	long days;
	uint64_t seed;
	long check_interval;
	long rotation_days;
	long duration_s;
};

/* A running summary of one quantity. */
struct stat {
	long n;
	double sum;
	long min, max;
};

static uint64_t rng_state;

/* splitmix64: reproducible from --seed, and good enough for jitter. */
static uint32_t rnd32(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void stat_add(struct stat *s, long v)
{
	if (s->n == 0 || v < s->min)
		s->min = v;
	if (s->n == 0 || v > s->max)
		s->max = v;
	s->n++;
	s->sum += (double)v;
}

static void stat_print(const char *what, const struct stat *s)
{
	if (s->n == 0) {
		printf("%s: none\n", what);
		return;
	}
	printf("%s: n=%ld min=%ld mean=%.2f max=%ld\n", what, s->n, s->min, s->sum / (double)s->n,
	       s->max);
}

/* A whole decimal number in [lo, hi]; nothing may trail. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: quiet-day [--runs N] [--days N] [--seed N] [--check-interval S]\n"
		   "                 [--rotation-days N [--duration SPEC]]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "days", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "check-interval", required_argument, NULL, 'c' },
		{ "rotation-days", required_argument, NULL, 'R' },
		{ "duration", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	int ch, rc = 0;

	*o = (struct opts){ .runs = 1000, .days = 30, .check_interval = KT_SCHED_DEFAULT_CHECK };
	while (rc == 0 && (ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			rc = parse_long(optarg, 1, 1000000, &o->runs);
			break;
		case 'd':
			rc = parse_long(optarg, 2, 100000, &o->days);
			break;
		case 's':
			rc = parse_u64(optarg, &o->seed);
			seeded = true;
			break;
		case 'c':
			rc = parse_long(optarg, 1, 604800, &o->check_interval);
			break;
		case 'R':
			rc = parse_long(optarg, 1, 1000, &o->rotation_days);
			break;
		case 'D':
			rc = kt_sched_parse_duration(optarg, &o->duration_s);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			rc = -EINVAL;
			break;
		}
	}
	if (rc == 0 && optind != argc)
		rc = -EINVAL;
	if (rc == 0 && o->duration_s > 0 && o->rotation_days == 0)
		rc = -EINVAL;
	if (rc == 0 && !seeded &&
	    getrandom(&o->seed, sizeof(o->seed), 0) != (ssize_t)sizeof(o->seed))
		o->seed = (uint64_t)time(NULL);
	if (rc < 0)
		usage(stderr);
	return rc;
}

/* The simulated AWS side of one secret that may rotate. */
struct aws_model {
	bool rotates;
	time_t next_rotation; /* what DescribeSecret says now */
	time_t rotates_at;    /* when the modelled rotation really happens */
};

static void schedule_rotation(struct aws_model *m, const struct opts *o, time_t next_rotation)
{
	long lead = o->duration_s > 0 ? o->duration_s : DEFAULT_LEAD;

	m->next_rotation = next_rotation;
	m->rotates_at = next_rotation - lead + (time_t)(((uint64_t)lead * rnd32()) >> 32);
}

/* Per-run results, added into the summaries. */
struct totals {
	struct stat first_day;   /* calls on day 0, one-offs included */
	struct stat later_days;  /* calls on each later day */
	struct stat rot_checks;  /* in-window DescribeSecrets before a rotation was seen */
	struct stat rot_latency; /* s from a rotation to the check that saw it */
	long describes, gets, batch_gets;
};

static int run_once(const struct opts *o, struct totals *t)
{
	const time_t end = T_START + o->days * DAY;
	struct kt_sched_cfg sched = { .check_interval = o->check_interval,
				      .window_interval = KT_SCHED_DEFAULT_WINDOW };
	struct kt_rotation_info rot = { 0 };
	struct aws_model aws = { .rotates = o->rotation_days > 0 };
	long *calls = calloc((size_t)o->days, sizeof(*calls));
	long in_window = 0;
	time_t now;
	int rc = -ENOMEM;

	if (calls == NULL)
		goto out;
	if (aws.rotates)
		schedule_rotation(&aws, o,
				  T_START +
					  (time_t)(((uint64_t)o->rotation_days * DAY * rnd32()) >>
						   32) +
					  DAY);
	/* Start-up: one BatchGetSecretValue, then the first DescribeSecret soon. */
	calls[0]++;
	t->batch_gets++;
	now = T_START + FIRST_CHECK_MIN + (time_t)(rnd32() % FIRST_CHECK_SPAN);
	while (now < end) {
		long day = (long)((now - T_START) / DAY);

		calls[day]++;
		t->describes++;
		if (kt_sched_in_window(&rot, now))
			in_window++;
		if (aws.rotates && now >= aws.rotates_at) {
			/* AWSCURRENT moved: one GetSecretValue by VersionId, and
			 * DescribeSecret already names the next rotation. */
			calls[day]++;
			t->gets++;
			stat_add(&t->rot_checks, in_window);
			stat_add(&t->rot_latency, (long)(now - aws.rotates_at));
			in_window = 0;
			schedule_rotation(&aws, o, aws.next_rotation + o->rotation_days * DAY);
		}
		/* What check_done() takes from the DescribeSecret answer. */
		rot.enabled = aws.rotates;
		rot.next_rotation = aws.rotates ? aws.next_rotation : 0;
		rot.window_s = aws.rotates ? o->duration_s : 0;
		rot.schedule_days = o->rotation_days;
		now = kt_sched_next_check(&sched, &rot, now, rnd32());
	}
	stat_add(&t->first_day, calls[0]);
	for (long d = 1; d < o->days; d++)
		stat_add(&t->later_days, calls[d]);
	rc = 0;
out:
	free(calls);
	return rc;
}

int main(int argc, char **argv)
{
	struct totals t = { 0 };
	struct opts o;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	rng_state = o.seed;
	for (long r = 0; r < o.runs; r++) {
		if (run_once(&o, &t) < 0) {
			fprintf(stderr, "quiet-day: out of memory\n");
			return 1;
		}
	}
	printf("quiet-day: check_interval=%ld s window_interval=%ld s, %ld runs x %ld days, seed=%" PRIu64
	       "\n",
	       o.check_interval, (long)KT_SCHED_DEFAULT_WINDOW, o.runs, o.days, o.seed);
	if (o.rotation_days > 0)
		printf("rotation every %ld days, Duration %s (window lead %ld s)\n",
		       o.rotation_days, o.duration_s > 0 ? "given" : "absent",
		       o.duration_s > 0 ? o.duration_s : DEFAULT_LEAD);
	else
		printf("no rotation: every day is a quiet day\n");
	stat_print(
		"calls per day, first day (1 BatchGetSecretValue + first DescribeSecret included)",
		&t.first_day);
	stat_print("calls per day, later days", &t.later_days);
	if (o.rotation_days > 0) {
		stat_print("in-window DescribeSecret calls per rotation", &t.rot_checks);
		stat_print("seconds from a rotation to the check that saw it", &t.rot_latency);
	}
	printf("totals: DescribeSecret=%ld GetSecretValue=%ld BatchGetSecretValue=%ld "
	       "(%.3f calls per secret per day overall)\n",
	       t.describes, t.gets, t.batch_gets,
	       (double)(t.describes + t.gets + t.batch_gets) / ((double)o.runs * (double)o.days));
	return 0;
}

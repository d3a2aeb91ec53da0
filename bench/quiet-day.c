/* The "quiet day" figure: how many AWS calls keyturnd makes for one secret in
 * a day when nothing rotates, computed with the scheduling code the daemon
 * runs (kt_sched_next_check), over many simulated days. Prints figures only.
 *
 *   bench/quiet-day [--runs N] [--days N] [--seed N] [--check-interval S]
 *                   [--rotation-days N [--duration SPEC]]
 *                   [--events] [--quiet-interval S] [--event-delay S]
 *                   [--secrets-per-host N]
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
 * NextRotationDate. This is a model of AWS, not a measurement.
 *
 * With --events (or --quiet-interval) the runs are made twice from the
 * same seed, without and with rotation events ([events] in keyturnd.conf),
 * and both are printed. With events the engine schedules with
 * kt_sched_cfg_from(quiet_interval, window_interval), as
 * kt_engine_set_quiet_interval() does once the queue answers: quiet-time
 * checks are safety-net checks every quiet_interval (default 21600 s),
 * rotation windows are still polled every window_interval. The queue is taken
 * to answer its first long poll QUEUE_FIRST_ANSWER s after the start (an idle
 * queue answers when the poll's 20 s are up); until then check_interval
 * applies, as in the daemon. A rotation's events are modelled as one check
 * (the events.c settle coalescing them) --event-delay s after AWSCURRENT moved
 * (default 1, the settle alone: CloudTrail's and EventBridge's delivery are
 * not modelled); it costs a DescribeSecret, and the GetSecretValue when no
 * window check saw the change first. Like any check, it restarts the
 * safety-net interval. SQS requests are per host, not per secret: an idle
 * long poll of 20 s is 4320 ReceiveMessage a day, and each message adds at
 * most two (the ReceiveMessage it ends early, its DeleteMessageBatch); the
 * share of one secret assumes --secrets-per-host (default 20) secrets share
 * the host's queue, and each rotation of a served secret is taken to make
 * SQS_MSGS_PER_ROTATION messages (docs/PERFORMANCE.md, "Rotation events"). */
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

#include "bench/bench.h"

#include "sched.h"

#define DAY 86400L
#define T_START ((time_t)1714521600) /* 2024-05-01T00:00:00Z, any time would do */
/* As in daemon.c: the first DescribeSecret comes FIRST_CHECK_MIN s after the
 * first value, plus rnd % FIRST_CHECK_SPAN. */
#define FIRST_CHECK_MIN 5
#define FIRST_CHECK_SPAN 55
/* The lead sched.c takes when RotationRules has no Duration. */
#define DEFAULT_LEAD DAY
/* [events]: conf.c's default quiet_interval, events_poll.c's long poll. */
#define DEFAULT_QUIET_INTERVAL 21600L
#define POLL_WAIT_S 20L
#define QUEUE_FIRST_ANSWER POLL_WAIT_S
#define RECEIVES_PER_DAY (DAY / POLL_WAIT_S)
/* Matched messages per rotation (RotateSecret, PutSecretValue,
 * UpdateSecretVersionStage, RotationSucceeded), as the fleet estimate in docs/PERFORMANCE.md
 * assumes. */
#define SQS_MSGS_PER_ROTATION 4L

struct opts {
	long runs;
	long days;
	uint64_t seed;
	long check_interval;
	long rotation_days;
	long duration_s;
	bool events;         /* compare without and with rotation events */
	long quiet_interval; /* s, with events */
	long event_delay;    /* s from AWSCURRENT moving to the check an event asks for */
	long secrets_per_host;
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
		   "                 [--rotation-days N [--duration SPEC]]\n"
		   "                 [--events] [--quiet-interval S] [--event-delay S]\n"
		   "                 [--secrets-per-host N]\n");
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
		{ "events", no_argument, NULL, 'e' },
		{ "quiet-interval", required_argument, NULL, 'q' },
		{ "event-delay", required_argument, NULL, 'E' },
		{ "secrets-per-host", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	int ch, rc = 0;

	*o = (struct opts){ .runs = 1000,
			    .days = 30,
			    .check_interval = KT_SCHED_DEFAULT_CHECK,
			    .quiet_interval = DEFAULT_QUIET_INTERVAL,
			    .event_delay = 1,
			    .secrets_per_host = 20 };
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
		case 'e':
			o->events = true;
			break;
		case 'q':
			/* conf_keys.c's bounds for quiet_interval: 60 s to a week. */
			rc = parse_long(optarg, 60, 604800, &o->quiet_interval);
			o->events = true;
			break;
		case 'E':
			rc = parse_long(optarg, 0, 86400, &o->event_delay);
			break;
		case 'S':
			rc = parse_long(optarg, 1, 1000000, &o->secrets_per_host);
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
	long event_checks; /* DescribeSecrets an event asked for (included in describes) */
	long rotations;    /* rotations seen */
};

/* One DescribeSecret at now (and the GetSecretValue when AWSCURRENT moved
 * since the last one saw it); returns the next scheduled check. */
static time_t check(const struct opts *o, struct totals *t, const struct kt_sched_cfg *sched,
		    struct kt_rotation_info *rot, struct aws_model *aws, long *calls,
		    long *in_window, time_t now)
{
	long day = (long)((now - T_START) / DAY);

	calls[day]++;
	t->describes++;
	if (kt_sched_in_window(rot, now))
		(*in_window)++;
	if (aws->rotates && now >= aws->rotates_at) {
		/* AWSCURRENT moved: one GetSecretValue by VersionId, and
		 * DescribeSecret already names the next rotation. */
		calls[day]++;
		t->gets++;
		t->rotations++;
		stat_add(&t->rot_checks, *in_window);
		stat_add(&t->rot_latency, (long)(now - aws->rotates_at));
		*in_window = 0;
		schedule_rotation(aws, o, aws->next_rotation + o->rotation_days * DAY);
	}
	/* What check_done() takes from the DescribeSecret answer. */
	rot->enabled = aws->rotates;
	rot->next_rotation = aws->rotates ? aws->next_rotation : 0;
	rot->window_s = aws->rotates ? o->duration_s : 0;
	rot->schedule_days = o->rotation_days;
	return kt_sched_next_check(sched, rot, now, rnd32());
}

/* One daemon start and o->days days; with events, [events] is configured and
 * the queue answers. */
static int run_once(const struct opts *o, bool events, struct totals *t)
{
	const time_t end = T_START + o->days * DAY;
	/* engine.c: kt_sched_cfg_from(check_interval, window_interval), and
	 * quiet_interval in place of check_interval once the queue answers. */
	const struct kt_sched_cfg plain =
		kt_sched_cfg_from(o->check_interval, KT_SCHED_DEFAULT_WINDOW);
	const struct kt_sched_cfg quiet =
		kt_sched_cfg_from(o->quiet_interval, KT_SCHED_DEFAULT_WINDOW);
	const struct kt_sched_cfg *sched = &plain;
	struct kt_rotation_info rot = { 0 };
	struct aws_model aws = { .rotates = o->rotation_days > 0 };
	long *calls = calloc((size_t)o->days, sizeof(*calls));
	long in_window = 0;
	time_t next, queue_ok_at = events ? T_START + QUEUE_FIRST_ANSWER : end;
	time_t event_at = end; /* when the check an event asks for starts */
	int rc = -ENOMEM;

	if (calls == NULL)
		goto out;
	if (aws.rotates)
		schedule_rotation(&aws, o,
				  T_START +
					  (time_t)(((uint64_t)o->rotation_days * DAY * rnd32()) >>
						   32) +
					  DAY);
	if (events && aws.rotates)
		event_at = aws.rotates_at + o->event_delay;
	/* Start-up: one BatchGetSecretValue, then the first DescribeSecret soon. */
	calls[0]++;
	t->batch_gets++;
	next = T_START + FIRST_CHECK_MIN + (time_t)(rnd32() % FIRST_CHECK_SPAN);
	for (;;) {
		if (queue_ok_at < end && queue_ok_at <= next && queue_ok_at <= event_at) {
			/* kt_engine_set_quiet_interval(): a check due later
			 * than one quiet_interval from now is brought forward. */
			sched = &quiet;
			if (next > queue_ok_at + sched->check_interval)
				next = kt_sched_next_check(sched, &rot, queue_ok_at, rnd32());
			queue_ok_at = end;
		} else if (event_at < end && event_at < next) {
			/* The rotation's events, coalesced into one check; it
			 * reschedules like any check. A window check that saw
			 * the change first leaves it a DescribeSecret alone. */
			next = check(o, t, sched, &rot, &aws, calls, &in_window, event_at);
			t->event_checks++;
			event_at = aws.rotates_at + o->event_delay;
		} else if (next < end) {
			next = check(o, t, sched, &rot, &aws, calls, &in_window, next);
		} else {
			break;
		}
	}
	stat_add(&t->first_day, calls[0]);
	for (long d = 1; d < o->days; d++)
		stat_add(&t->later_days, calls[d]);
	rc = 0;
out:
	free(calls);
	return rc;
}

/* All runs from the seed. Without and with events start from the same
 * draws, but part ways at the first draw one makes and the other does not
 * (an event check's jitter), so they are the same model, not the same days:
 * compare means, not single days. */
static int run_all(const struct opts *o, bool events, struct totals *t)
{
	*t = (struct totals){ 0 };
	rng_state = o->seed;
	for (long r = 0; r < o->runs; r++)
		if (run_once(o, events, t) < 0)
			return -ENOMEM;
	return 0;
}

/* Secrets Manager calls per secret per day, averaged over every day. */
static double sm_per_day(const struct opts *o, const struct totals *t)
{
	return (double)(t->describes + t->gets + t->batch_gets) /
	       ((double)o->runs * (double)o->days);
}

static void print_totals(const struct opts *o, const struct totals *t, bool events)
{
	stat_print(
		"calls per day, first day (1 BatchGetSecretValue + first DescribeSecret included)",
		&t->first_day);
	stat_print("calls per day, later days", &t->later_days);
	if (o->rotation_days > 0) {
		stat_print("in-window DescribeSecret calls per rotation", &t->rot_checks);
		stat_print("seconds from a rotation to the check that saw it", &t->rot_latency);
	}
	printf("totals: DescribeSecret=%ld GetSecretValue=%ld BatchGetSecretValue=%ld "
	       "(%.3f calls per secret per day overall)\n",
	       t->describes, t->gets, t->batch_gets, sm_per_day(o, t));
	if (events && o->rotation_days > 0)
		printf("of the DescribeSecret calls, %ld were asked for by events (%.2f per "
		       "rotation seen)\n",
		       t->event_checks,
		       t->rotations > 0 ? (double)t->event_checks / (double)t->rotations : 0.0);
}

/* SQS is per host: the long poll runs whatever the host serves. */
static void print_sqs(const struct opts *o, const struct totals *t)
{
	double msgs = (double)t->rotations * SQS_MSGS_PER_ROTATION / ((double)o->runs * o->days);
	double share = (double)RECEIVES_PER_DAY / (double)o->secrets_per_host + 2.0 * msgs;

	printf("SQS, per host and day: %ld ReceiveMessage while idle (%ld s / %ld s long polls), "
	       "plus at most 2 requests per message (the ReceiveMessage it ends early, one "
	       "DeleteMessageBatch)\n",
	       (long)RECEIVES_PER_DAY, DAY, POLL_WAIT_S);
	if (o->rotation_days > 0)
		printf("messages per served secret and day: %.3f (%ld per rotation seen); every "
		       "secret under the queue's prefix, served here or not, adds as many\n",
		       msgs, SQS_MSGS_PER_ROTATION);
	printf("SQS requests per secret per day, %ld secrets sharing the host's queue: at most "
	       "%.2f (%ld / %ld%s)\n",
	       o->secrets_per_host, share, (long)RECEIVES_PER_DAY, o->secrets_per_host,
	       o->rotation_days > 0 ? " + 2 x messages" : "");
	printf("all AWS requests per secret per day with events: at most %.2f (Secrets Manager "
	       "%.3f + SQS %.2f)\n",
	       sm_per_day(o, t) + share, sm_per_day(o, t), share);
}

int main(int argc, char **argv)
{
	struct totals without, with;
	struct opts o;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (run_all(&o, false, &without) < 0 || (o.events && run_all(&o, true, &with) < 0)) {
		fprintf(stderr, "quiet-day: out of memory\n");
		return 1;
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
	if (!o.events) {
		print_totals(&o, &without, false);
		return 0;
	}
	printf("\n-- without events: quiet-time checks every check_interval (%ld s)\n",
	       o.check_interval);
	print_totals(&o, &without, false);
	printf("\n-- with events: safety-net checks every quiet_interval (%ld s), windows every "
	       "%ld s; a rotation's events make one check %ld s after it\n",
	       o.quiet_interval, (long)KT_SCHED_DEFAULT_WINDOW, o.event_delay);
	print_totals(&o, &with, true);
	print_sqs(&o, &with);
	printf("\nSecrets Manager calls per secret per day: without events %.3f, with events %.3f "
	       "(%.3f fewer)\n",
	       sm_per_day(&o, &without), sm_per_day(&o, &with),
	       sm_per_day(&o, &without) - sm_per_day(&o, &with));
	return 0;
}

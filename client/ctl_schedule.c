/* keyturnctl schedule (ctl_schedule.h): the next windows of a rotation
 * schedule, computed here with common/awssched.c, in UTC. The layout is
 * systemd-analyze calendar's:
 *
 *   Original form: cron(0 4 ? * SUN#2 *)
 *     Next window: 2026-12-13T04:00:00Z
 *          Window: 20h (AWS's default for a schedule in days: to the end of the UTC day)
 *        Iter. #2: 2027-01-10T04:00:00Z
 *
 * one "Iter. #N" line for each window after the first, up to --count. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/awssched.h"
#include "ctl_say.h"
#include "ctl_schedule.h"

#define EXIT_DONE 0
#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define COUNT_DEFAULT 5
#define COUNT_MAX 1000

static const char usage_text[] =
	"Usage: keyturnctl schedule EXPR [--from TIME] [--count N]\n"
	"\n"
	"Prints the next rotation windows of an AWS Secrets Manager schedule\n"
	"expression, rate(N hours|days) or cron(Minutes Hours Day-of-month Month\n"
	"Day-of-week Year), in UTC. No daemon is needed.\n"
	"\n"
	"  --from TIME   count from TIME (exclusive): 2026-12-05T10:00:00Z,\n"
	"                '2026-12-05 10:00:00', 2026-12-05 or now (the default); UTC\n"
	"  --count N     how many windows, 1 to 1000 (default 5)\n"
	"  -h, --help    this text\n"
	"\n"
	"Exit status: 0 done, 2 usage or an expression AWS would refuse.\n";

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* --from's TIME, in UTC: YYYY-MM-DDTHH:MM:SSZ, "YYYY-MM-DD HH:MM:SS",
 * YYYY-MM-DD (midnight) or now. 0, or -EINVAL. */
static int parse_time(const char *s, time_t *out)
{
	size_t len = strlen(s);
	struct tm tm = { 0 }, back;
	time_t t;

	if (strcmp(s, "now") == 0) {
		*out = time(NULL);
		return 0;
	}
	if (len != 10 && len != 19 && len != 20)
		return -EINVAL;
	if (s[4] != '-' || s[7] != '-')
		return -EINVAL;
	tm.tm_year = digits(s, 4) - 1900;
	tm.tm_mon = digits(s + 5, 2) - 1;
	tm.tm_mday = digits(s + 8, 2);
	if (len > 10) {
		if ((len == 19 && s[10] != ' ') || (len == 20 && (s[10] != 'T' || s[19] != 'Z')) ||
		    s[13] != ':' || s[16] != ':')
			return -EINVAL;
		tm.tm_hour = digits(s + 11, 2);
		tm.tm_min = digits(s + 14, 2);
		tm.tm_sec = digits(s + 17, 2);
	}
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_hour < 0 || tm.tm_min < 0 ||
	    tm.tm_sec < 0)
		return -EINVAL;
	back = tm;
	t = timegm(&tm);
	/* timegm normalises 2026-02-30 to March: such a date is refused. */
	if (t == (time_t)-1 || tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour || tm.tm_min != back.tm_min ||
	    tm.tm_sec != back.tm_sec)
		return -EINVAL;
	*out = t;
	return 0;
}

static const char *iso(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "@%lld", (long long)t);
	return buf;
}

static void print_windows(const char *expr, const struct kt_awssched *s, time_t from, long count)
{
	char when[40], len[32], label[32];
	time_t t = kt_awssched_next(s, from);

	printf("  Original form: %s\n", expr);
	if (t == 0) {
		printf("    Next window: never\n");
		return;
	}
	printf("    Next window: %s\n", iso(t, when, sizeof(when)));
	printf("         Window: %s (AWS's default %s)\n",
	       kt_awssched_show_len(kt_awssched_default_window(s, t), len, sizeof(len)),
	       s->in_hours ? "for a schedule in hours"
			   : "for a schedule in days: to the end of the UTC day");
	for (long i = 2; i <= count; i++) {
		t = kt_awssched_next(s, t);
		if (t == 0)
			break;
		snprintf(label, sizeof(label), "Iter. #%ld", i);
		printf("%15s: %s\n", label, iso(t, when, sizeof(when)));
	}
}

int kt_ctl_schedule(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_awssched s;
	const char *expr = NULL, *from_text = "now";
	char err[300];
	time_t from;
	long count = COUNT_DEFAULT;
	int c, words = 0;

	/* "-" first: EXPR comes back as option 1, so that options may follow
	 * it whatever POSIXLY_CORRECT says; 0 restarts getopt for this argv. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:h", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 1:
			expr = optarg;
			words++;
			break;
		case 'f':
			from_text = optarg;
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || count < 1 ||
			    count > COUNT_MAX)
				return kt_ctl_usage("schedule",
						    "--count wants a whole number from 1 to %d",
						    COUNT_MAX);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_DONE;
		case ':':
			return kt_ctl_usage("schedule", "option '%s' needs a value",
					    argv[optind - 1]);
		default:
			if (optopt != 0)
				return kt_ctl_usage("schedule", "unknown option '-%c'", optopt);
			return kt_ctl_usage("schedule", "unknown option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		expr = argv[optind];
		words++;
	}
	if (words == 0)
		return kt_ctl_usage("schedule", "no schedule expression given");
	if (words > 1)
		return kt_ctl_usage(
			"schedule",
			"give the expression as one word, in quotes: 'cron(0 4 ? * SUN *)'");
	if (parse_time(from_text, &from) < 0)
		return kt_ctl_usage(
			"schedule",
			"--from: cannot read '%s': give YYYY-MM-DDTHH:MM:SSZ, 'YYYY-MM-DD HH:MM:SS', YYYY-MM-DD or now (UTC)",
			from_text);
	if (kt_awssched_parse(expr, &s, err, sizeof(err)) < 0) {
		kt_ctl_say("schedule", "%s", err);
		return EXIT_USAGE;
	}
	print_windows(expr, &s, from, count);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		kt_ctl_say("schedule", "cannot write the windows: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_DONE;
}

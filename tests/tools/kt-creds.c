/* Runs the AWS credential chain and prints one JSON line per lookup, for the
 * provider system tests: where the credentials came from, the key id, whether
 * a session token came along, and the expiration. Never the secret key. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "aws/awserr.h"
#include "aws/creds.h"
#include "common/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kt-creds [options]\n"
		"  --repeat N            look the credentials up N times (default 1)\n"
		"  --sleep-ms MS         wait this long between lookups\n"
		"  --refresh-ahead S     renew temporary credentials S seconds before they expire\n"
		"  --renew-interval S    renew at most every S seconds while they work (default 60)\n"
		"  --no-expiry-refetch S fetch metadata credentials without Expiration every S s\n"
		"  --keep-going          print an error line and go on to the next lookup\n"
		"  --imds-v1-fallback    allow IMDSv1 when the token PUT is refused\n"
		"  --imds-timeout-ms MS  instance metadata timeout\n"
		"  --region R            region for the STS endpoint\n"
		"  --ca-file FILE        CA bundle for HTTPS providers\n"
		"  --invalidate          drop the cache before every lookup\n"
		"  --region-from-imds    print the region from instance metadata instead\n"
		"  --debug               debug logging on stderr\n");
}

/* A whole non-negative number, nothing trailing. */
static int parse_long(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void print_obj(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

static void print_error(const struct aws_error *err)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(aws_errc_name(err->code)));
	json_object_object_add(o, "message", json_object_new_string(err->message));
	print_obj(o);
	json_object_put(o);
}

static void print_creds(const struct aws_creds *cr)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "source", json_object_new_string(cr->source));
	json_object_object_add(o, "access_key_id", json_object_new_string(cr->access_key));
	json_object_object_add(o, "has_session_token",
			       json_object_new_boolean(cr->session_token != NULL));
	json_object_object_add(o, "expiration", json_object_new_int64((int64_t)cr->expiration));
	print_obj(o);
	json_object_put(o);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repeat", required_argument, NULL, 'n' },
		{ "sleep-ms", required_argument, NULL, 's' },
		{ "refresh-ahead", required_argument, NULL, 'a' },
		{ "renew-interval", required_argument, NULL, 'I' },
		{ "no-expiry-refetch", required_argument, NULL, 'E' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "imds-v1-fallback", no_argument, NULL, '1' },
		{ "imds-timeout-ms", required_argument, NULL, 't' },
		{ "region", required_argument, NULL, 'r' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "invalidate", no_argument, NULL, 'i' },
		{ "region-from-imds", no_argument, NULL, 'R' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct aws_creds_opts opts = { 0 };
	struct aws_creds_chain *chain = NULL;
	struct aws_creds cr = { 0 };
	struct aws_error err;
	bool region_from_imds = false, invalidate = false, keep_going = false;
	int failures = 0;
	long repeat = 1, sleep = 0;
	int c, rc, status = 1;

	log_init("kt-creds", true, KT_LOG_WARN);
	aws_error_clear(&err);
	/* http.h: libcurl runs without its own SIGPIPE guard. */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_long(optarg, 100000, &repeat) < 0 || repeat < 1)
				goto bad;
			break;
		case 's':
			if (parse_long(optarg, 3600000, &sleep) < 0)
				goto bad;
			break;
		case 'a':
			if (parse_long(optarg, LONG_MAX / 2, &opts.refresh_ahead_s) < 0)
				goto bad;
			break;
		case 't':
			if (parse_long(optarg, 600000, &opts.imds_timeout_ms) < 0)
				goto bad;
			break;
		case 'I':
			if (parse_long(optarg, 86400, &opts.renew_min_interval_s) < 0)
				goto bad;
			break;
		case 'E':
			if (parse_long(optarg, 86400, &opts.no_expiry_refetch_s) < 0)
				goto bad;
			break;
		case 'k':
			keep_going = true;
			break;
		case '1':
			opts.imds_v1_fallback = true;
			break;
		case 'r':
			opts.region = optarg;
			break;
		case 'c':
			opts.ca_file = optarg;
			break;
		case 'i':
			invalidate = true;
			break;
		case 'R':
			region_from_imds = true;
			break;
		case 'd':
			log_set_level(KT_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	if (region_from_imds) {
		char *region = NULL;
		struct json_object *o;

		if (aws_imds_region(&opts, &region, &err) < 0) {
			print_error(&err);
			goto out;
		}
		o = json_object_new_object();
		json_object_object_add(o, "region", json_object_new_string(region));
		print_obj(o);
		json_object_put(o);
		free(region);
		status = 0;
		goto out;
	}

	rc = aws_creds_chain_new(&opts, &chain);
	if (rc < 0) {
		aws_error_set(&err, AWS_ERR_OTHER, "Setup", "cannot set up the chain: %s",
			      strerror(-rc));
		print_error(&err);
		goto out;
	}
	for (long i = 0; i < repeat; i++) {
		if (i > 0 && sleep > 0)
			sleep_ms(sleep);
		if (invalidate)
			aws_creds_invalidate(chain);
		if (aws_creds_get(chain, &cr, &err) < 0) {
			print_error(&err);
			failures++;
			if (!keep_going)
				goto out;
			continue;
		}
		print_creds(&cr);
		aws_creds_clear(&cr);
	}
	status = failures > 0 ? 1 : 0;
out:
	aws_creds_clear(&cr);
	aws_creds_chain_free(chain);
	return status;
bad:
	usage(stderr);
	return 2;
}

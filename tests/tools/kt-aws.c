/* kt-aws: a small command line over keyturn's internal AWS client, so system
 * tests (and people debugging a host) can run each Secrets Manager and SQS
 * operation exactly as the daemon does. Output is one JSON object on stdout
 * (sqs-receive: one per message). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "aws/client.h"
#include "common/kt_base64.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/secmem.h"
#include "aws/sm.h"
#include "aws/sqs.h"

static unsigned long attempts_seen;

static void usage(void)
{
	fputs("usage: kt-aws [--region R] [--endpoint URL] [--ca-file F] [--timeout MS]\n"
	      "              [--connect-timeout MS] [--max-attempts N] [--retry-base-ms MS]\n"
	      "              [--retry-cap-ms MS] [--max-body BYTES] [--debug] OPERATION [ARGS]\n"
	      "operations: get-secret-value ID [--version-id V] [--stage S]\n"
	      "            batch-get-secret-value ID...\n"
	      "            describe-secret ID\n"
	      "            list-secret-version-ids ID [--include-deprecated]\n"
	      "            put-secret-value ID --value-file F [--binary] [--stage S]...\n"
	      "            update-secret-version-stage ID STAGE [--move-to V] [--remove-from V]\n"
	      "            get-random-password [--length N] [--exclude-punctuation]\n"
	      "            create-secret NAME --value-file F [--binary] [--description D]\n"
	      "            resolve\n"
	      "            sqs-receive QUEUE_URL [--max N] [--wait S]\n"
	      "            sqs-delete QUEUE_URL RECEIPT...\n"
	      "The sqs- operations take their endpoint (unless --endpoint) and region\n"
	      "(unless --region) from the queue URL.\n",
	      stderr);
	exit(2);
}

static long parse_num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0) {
		fprintf(stderr, "kt-aws: %s: not a whole number: %s\n", what, s);
		exit(2);
	}
	return v;
}

/* Reads a whole file ("-" for stdin) into a buffer; values never go on argv. */
static int read_value(const char *path, struct kt_buf *b)
{
	char chunk[4096];
	ssize_t n;
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		rc = kt_buf_append(b, chunk, (size_t)n);
		if (rc < 0)
			break;
	}
	kt_wipe(chunk, sizeof(chunk));
	if (fd != 0)
		close(fd);
	return rc;
}

static struct json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static struct json_object *stages_json(char **stages, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(stages[i]));
	return a;
}

static struct json_object *value_json(const struct sm_value *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "arn", str_or_null(v->arn));
	json_object_object_add(o, "name", str_or_null(v->name));
	json_object_object_add(o, "version_id", str_or_null(v->version_id));
	json_object_object_add(o, "stages", stages_json(v->stages, v->nstages));
	if (v->binary) {
		char *b64 = kt_base64_encode(v->data, v->len);

		json_object_object_add(o, "binary", str_or_null(b64));
		kt_str_free_wiped(b64);
	} else {
		json_object_object_add(o, "string",
				       json_object_new_string_len((const char *)v->data,
								  (int)v->len));
	}
	json_object_object_add(o, "created", json_object_new_int64(v->created));
	return o;
}

static struct json_object *error_json(const struct aws_error *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(aws_errc_name(e->code)));
	json_object_object_add(o, "type", json_object_new_string(e->type));
	json_object_object_add(o, "message", json_object_new_string(e->message));
	json_object_object_add(o, "http_status", json_object_new_int64(e->http_status));
	return o;
}

static int emit(struct json_object *o)
{
	size_t len;
	char *s = kt_json_dump(o, &len);

	if (s != NULL) {
		fwrite(s, 1, len, stdout);
		fputc('\n', stdout);
	}
	kt_str_free_wiped(s);
	kt_json_put_wiped(o);
	return s != NULL ? 0 : 1;
}

static struct json_object *describe_json(const struct sm_description *d)
{
	struct json_object *o = json_object_new_object(), *m = json_object_new_object();

	json_object_object_add(o, "arn", str_or_null(d->arn));
	json_object_object_add(o, "name", str_or_null(d->name));
	json_object_object_add(o, "rotation_enabled", json_object_new_boolean(d->rotation_enabled));
	json_object_object_add(o, "rotation_days", json_object_new_int64(d->rotation_days));
	json_object_object_add(o, "rotation_schedule", str_or_null(d->rotation_schedule));
	json_object_object_add(o, "rotation_duration", str_or_null(d->rotation_duration));
	json_object_object_add(o, "next_rotation", json_object_new_int64(d->next_rotation));
	json_object_object_add(o, "last_rotated", json_object_new_int64(d->last_rotated));
	json_object_object_add(o, "last_changed", json_object_new_int64(d->last_changed));
	json_object_object_add(o, "deleted", json_object_new_int64(d->deleted));
	for (size_t i = 0; i < d->nversions; i++)
		json_object_object_add(m, d->versions[i].version_id,
				       stages_json(d->versions[i].stages, d->versions[i].nstages));
	json_object_object_add(o, "versions", m);
	return o;
}

/* Options shared by the operations that take them, parsed after OPERATION. */
struct op_args {
	const char *version_id, *stage, *value_file, *description, *move_to, *remove_from;
	const char *stages[8];
	size_t nstages;
	bool binary, include_deprecated, exclude_punct;
	long length;
	long max_messages, wait_s; /* sqs-receive */
	char **pos;
	int npos;
};

static void parse_op_args(int argc, char **argv, struct op_args *a)
{
	static const struct option opts[] = {
		{ "version-id", required_argument, NULL, 'v' },
		{ "stage", required_argument, NULL, 's' },
		{ "value-file", required_argument, NULL, 'f' },
		{ "binary", no_argument, NULL, 'b' },
		{ "description", required_argument, NULL, 'd' },
		{ "move-to", required_argument, NULL, 'm' },
		{ "remove-from", required_argument, NULL, 'r' },
		{ "include-deprecated", no_argument, NULL, 'i' },
		{ "length", required_argument, NULL, 'l' },
		{ "exclude-punctuation", no_argument, NULL, 'p' },
		{ "max", required_argument, NULL, 'x' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	/* 0, not 1: GNU getopt then also forgets the "+" of the first pass. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'v':
			a->version_id = optarg;
			break;
		case 's':
			a->stage = optarg;
			if (a->nstages < 8)
				a->stages[a->nstages++] = optarg;
			break;
		case 'f':
			a->value_file = optarg;
			break;
		case 'b':
			a->binary = true;
			break;
		case 'd':
			a->description = optarg;
			break;
		case 'm':
			a->move_to = optarg;
			break;
		case 'r':
			a->remove_from = optarg;
			break;
		case 'i':
			a->include_deprecated = true;
			break;
		case 'l':
			a->length = parse_num(optarg, "--length");
			break;
		case 'p':
			a->exclude_punct = true;
			break;
		case 'x':
			a->max_messages = parse_num(optarg, "--max");
			break;
		case 'w':
			a->wait_s = parse_num(optarg, "--wait");
			break;
		default:
			usage();
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
}

static int run_op(struct aws_client *c, const char *op, struct op_args *a, struct aws_error *err)
{
	struct kt_buf val = KT_BUF_INIT(65536);
	int rc = -EINVAL;

	if (a->value_file != NULL && (rc = read_value(a->value_file, &val)) < 0) {
		fprintf(stderr, "kt-aws: %s: %s\n", a->value_file, strerror(-rc));
		exit(2);
	}
	if (strcmp(op, "get-secret-value") == 0 && a->npos == 1) {
		struct sm_value v;

		rc = sm_get_secret_value(c, a->pos[0], a->version_id, a->stage, &v, err);
		if (rc == 0)
			emit(value_json(&v));
		sm_value_free(&v);
	} else if (strcmp(op, "batch-get-secret-value") == 0 && a->npos >= 1) {
		struct sm_batch b;

		rc = sm_batch_get_secret_value(c, (const char *const *)a->pos, (size_t)a->npos, &b,
					       err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object(),
					   *vals = json_object_new_array(),
					   *errs = json_object_new_array();

			for (size_t i = 0; i < b.nvalues; i++)
				json_object_array_add(vals, value_json(&b.values[i]));
			for (size_t i = 0; i < b.nerrors; i++) {
				struct json_object *e = error_json(&b.errors[i].err);

				json_object_object_add(e, "secret_id",
						       json_object_new_string(
							       b.errors[i].secret_id));
				json_object_array_add(errs, e);
			}
			json_object_object_add(o, "values", vals);
			json_object_object_add(o, "errors", errs);
			emit(o);
		}
		sm_batch_free(&b);
	} else if (strcmp(op, "describe-secret") == 0 && a->npos == 1) {
		struct sm_description d;

		rc = sm_describe_secret(c, a->pos[0], &d, err);
		if (rc == 0)
			emit(describe_json(&d));
		sm_description_free(&d);
	} else if (strcmp(op, "list-secret-version-ids") == 0 && a->npos == 1) {
		struct sm_version *v = NULL;
		size_t n = 0;

		rc = sm_list_secret_version_ids(c, a->pos[0], a->include_deprecated, &v, &n, err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object(),
					   *arr = json_object_new_array();

			for (size_t i = 0; i < n; i++) {
				struct json_object *e = json_object_new_object();

				json_object_object_add(e, "version_id",
						       json_object_new_string(v[i].version_id));
				json_object_object_add(e, "stages",
						       stages_json(v[i].stages, v[i].nstages));
				json_object_array_add(arr, e);
			}
			json_object_object_add(o, "versions", arr);
			emit(o);
		}
		sm_versions_free(v, n);
	} else if (strcmp(op, "put-secret-value") == 0 && a->npos == 1 && a->value_file != NULL) {
		char *vid = NULL;

		rc = sm_put_secret_value(c, a->pos[0], val.data, val.len, a->binary, a->stages,
					 a->nstages, &vid, err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "version_id", str_or_null(vid));
			emit(o);
		}
		free(vid);
	} else if (strcmp(op, "update-secret-version-stage") == 0 && a->npos == 2) {
		rc = sm_update_secret_version_stage(c, a->pos[0], a->pos[1], a->move_to,
						    a->remove_from, err);
		if (rc == 0)
			emit(json_object_new_object());
	} else if (strcmp(op, "get-random-password") == 0 && a->npos == 0) {
		struct sm_random_opts ro = { .length = a->length,
					     .exclude_punctuation = a->exclude_punct };
		char *pw = NULL;

		rc = sm_get_random_password(c, &ro, &pw, err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "password", str_or_null(pw));
			emit(o);
		}
		kt_str_free_wiped(pw);
	} else if (strcmp(op, "create-secret") == 0 && a->npos == 1 && a->value_file != NULL) {
		char *arn = NULL, *vid = NULL;

		rc = sm_create_secret(c, a->pos[0], val.data, val.len, a->binary, a->description,
				      &arn, &vid, err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "arn", str_or_null(arn));
			json_object_object_add(o, "version_id", str_or_null(vid));
			emit(o);
		}
		free(arn);
		free(vid);
	} else if (strcmp(op, "sqs-receive") == 0 && a->npos == 1) {
		struct sqs_batch b;

		/* Out-of-range numbers are the library's to refuse, as they
		 * would be for the daemon. */
		rc = sqs_receive_message(c, a->pos[0],
					 (int)(a->max_messages > 100 ? 100 : a->max_messages),
					 (int)(a->wait_s > 100 ? 100 : a->wait_s), &b, err);
		for (size_t i = 0; rc == 0 && i < b.n; i++) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "id",
					       json_object_new_string(b.msgs[i].message_id));
			json_object_object_add(o, "receipt",
					       json_object_new_string(b.msgs[i].receipt_handle));
			json_object_object_add(o, "body",
					       json_object_new_string_len(b.msgs[i].body,
									  (int)b.msgs[i].body_len));
			emit(o);
		}
		sqs_batch_free(&b);
	} else if (strcmp(op, "sqs-delete") == 0 && a->npos >= 2) {
		size_t failed = 0, n = (size_t)a->npos - 1;

		rc = sqs_delete_message_batch(c, a->pos[0], (const char *const *)a->pos + 1, n,
					      &failed, err);
		if (rc == 0) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "deleted",
					       json_object_new_int64((int64_t)(n - failed)));
			json_object_object_add(o, "failed", json_object_new_int64((int64_t)failed));
			emit(o);
		}
	} else if (strcmp(op, "resolve") == 0 && a->npos == 0) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "region", json_object_new_string(aws_client_region(c)));
		json_object_object_add(o, "endpoint",
				       json_object_new_string(aws_client_endpoint(c)));
		emit(o);
		rc = 0;
	} else {
		kt_buf_free(&val);
		usage();
	}
	kt_buf_free(&val);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "region", required_argument, NULL, 'R' },
		{ "endpoint", required_argument, NULL, 'E' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "connect-timeout", required_argument, NULL, 'c' },
		{ "max-attempts", required_argument, NULL, 'a' },
		{ "retry-base-ms", required_argument, NULL, 'B' },
		{ "retry-cap-ms", required_argument, NULL, 'P' },
		{ "max-body", required_argument, NULL, 'M' },
		{ "debug", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	struct aws_client_opts co = { 0 };
	struct aws_client *c = NULL;
	struct aws_error err;
	struct op_args a = { .max_messages = SQS_MAX_MESSAGES };
	char sqs_endpoint[1100], sqs_region[72];
	const char *op;
	bool debug = false;
	int ch, rc;

	/* http.h: libcurl runs without its own SIGPIPE guard. */
	signal(SIGPIPE, SIG_IGN);
	/* Stop at the operation name: its own options come after it. */
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'R':
			co.region = optarg;
			break;
		case 'E':
			co.endpoint = optarg;
			break;
		case 'C':
			co.ca_file = optarg;
			break;
		case 'T':
			co.timeout_ms = parse_num(optarg, "--timeout");
			break;
		case 'c':
			co.connect_timeout_ms = parse_num(optarg, "--connect-timeout");
			break;
		case 'a':
			co.max_attempts = (int)parse_num(optarg, "--max-attempts");
			break;
		case 'B':
			co.retry_base_ms = parse_num(optarg, "--retry-base-ms");
			break;
		case 'P':
			co.retry_cap_ms = parse_num(optarg, "--retry-cap-ms");
			break;
		case 'M':
			co.max_body = (size_t)parse_num(optarg, "--max-body");
			break;
		case 'D':
			debug = true;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	log_init("kt-aws", true, debug ? KT_LOG_DEBUG : KT_LOG_WARN);
	op = argv[optind];
	parse_op_args(argc - optind, argv + optind, &a);

	/* An SQS client talks JSON 1.0 to the queue's own endpoint, signs for
	 * the queue's region, and waits longer than the poll. */
	aws_error_clear(&err);
	rc = 0;
	if (strncmp(op, "sqs-", 4) == 0) {
		char msg[512];

		if (a.npos < 1)
			usage();
		rc = sqs_endpoint_for_queue(a.pos[0], sqs_endpoint, sizeof(sqs_endpoint),
					    sqs_region, sizeof(sqs_region), msg, sizeof(msg));
		if (rc < 0) {
			aws_error_set(&err, AWS_ERR_CONFIG, "BadQueueUrl", "%s", msg);
		} else {
			co.service = "sqs";
			co.json_version = "1.0";
			if (co.endpoint == NULL)
				co.endpoint = sqs_endpoint;
			if (co.region == NULL && sqs_region[0] != '\0')
				co.region = sqs_region;
			if (co.timeout_ms == 0 && a.wait_s >= 0 && a.wait_s <= SQS_MAX_WAIT_S)
				co.timeout_ms = SQS_CLIENT_TIMEOUT_MS(a.wait_s);
		}
	}
	if (rc == 0)
		rc = aws_client_new(&co, &c, &err);
	if (rc == 0) {
		rc = run_op(c, op, &a, &err);
		attempts_seen = aws_client_requests_sent(c);
	}
	if (rc < 0)
		emit(error_json(&err));
	aws_client_free(c);
	fprintf(stderr, "kt-aws: attempts=%lu\n", attempts_seen);
	return rc < 0 ? 1 : 0;
}

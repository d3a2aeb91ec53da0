/* Unit tests for GET /metrics: the text format's writers (metrics.c), the
 * request counters by door, op and result, the AWS request counters
 * (aws/client.c, against a small scripted HTTP server on the loopback),
 * and the exposition of an ops set-up over an engine with a fake backend
 * (ops_metrics.c), read back with the Prometheus client library's own
 * parser where /usr/bin/python3 has it. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/secmem.h"
#include "engine.h"
#include "kt_tmp.h"
#include "metrics.h"
#include "ops_int.h"

#define PYTHON "/usr/bin/python3"

/* Prints each sample the parser found as one line, NAME LABELS VALUE, with
 * label values escaped by Python (unicode_escape) so that one sample stays
 * one line, and each family as TYPE NAME TYPE. */
static const char parse_py[] =
	"import sys\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"text = open(sys.argv[1]).read()\n"
	"for f in text_string_to_metric_families(text):\n"
	"    print('TYPE %s %s' % (f.name, f.type))\n"
	"    for s in f.samples:\n"
	"        ls = ','.join('%s=%s' % (k, v.encode('unicode_escape').decode())\n"
	"                      for k, v in sorted(s.labels.items()))\n"
	"        print('%s %s %g' % (s.name, ls, s.value))\n";

/* --- the writers --------------------------------------------------------- */

static void test_escape(void **state)
{
	struct kt_buf b = KT_BUF_INIT(4096);
	const struct kt_metrics_label l[] = { { "secret", "a\\b\"c\nd" }, { "door", "http" } };

	(void)state;
	assert_int_equal(kt_metrics_escape(&b, "plain"), 0);
	assert_string_equal(kt_buf_str(&b), "plain");
	kt_buf_reset(&b);
	b.len = 0;
	assert_int_equal(kt_metrics_escape(&b, "\\\"\n\\"), 0);
	assert_string_equal(kt_buf_str(&b), "\\\\\\\"\\n\\\\");
	kt_buf_free(&b);

	/* HELP keeps a double quote as it is; backslash and newline are escaped. */
	assert_int_equal(kt_metrics_family(&b, "x_total", "counter", "say \"hi\"\\ then\nbye"), 0);
	assert_string_equal(kt_buf_str(&b), "# HELP x_total say \"hi\"\\\\ then\\nbye\n"
					    "# TYPE x_total counter\n");
	kt_buf_free(&b);

	assert_int_equal(kt_metrics_sample(&b, "x_total", l, 2, 42), 0);
	assert_int_equal(kt_metrics_sample(&b, "y", NULL, 0, -3), 0);
	assert_string_equal(kt_buf_str(&b), "x_total{secret=\"a\\\\b\\\"c\\nd\",door=\"http\"} 42\n"
					    "y -3\n");
	kt_buf_free(&b);

	/* A buffer at its limit says so, and nothing is written past it. */
	kt_buf_init(&b, 8);
	assert_int_equal(kt_metrics_sample(&b, "a_long_name", NULL, 0, 1), -E2BIG);
	assert_true(b.len <= 8);
	kt_buf_free(&b);
}

/* --- the counters -------------------------------------------------------- */

static struct json_object *parse(const char *s)
{
	struct json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

static void answered(struct kt_metrics *m, enum kt_door door, const char *op, const char *json)
{
	struct json_object *o = json != NULL ? parse(json) : NULL;

	kt_metrics_answered(m, door, op, o);
	json_object_put(o);
}

static void test_counting(void **state)
{
	struct kt_metrics m = { 0 };
	struct kt_buf b = KT_BUF_INIT(1 << 20);
	const char *s;

	(void)state;
	kt_metrics_count(&m, KT_DOOR_SOCKET, "get", "ok");
	kt_metrics_count(&m, KT_DOOR_SOCKET, "get", "ok");
	kt_metrics_count(&m, KT_DOOR_HTTP, "get", "denied");
	/* Names outside the tables cannot make series of their own. */
	kt_metrics_count(&m, KT_DOOR_SOCKET, "frobnicate", "ok");
	kt_metrics_count(&m, KT_DOOR_SOCKET, NULL, "bad_request");
	kt_metrics_count(&m, KT_DOOR_HTTP, "get", "made-up");
	kt_metrics_count(&m, KT_DOOR_HTTP, "other", "bad_token");
	kt_metrics_count(&m, KT_DOOR_HTTP, "other", "parameters");
	kt_metrics_count(&m, KT_DOOR_N, "get", "ok");
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_GET][KT_MRES_OK], 2);
	assert_int_equal(m.requests[KT_DOOR_HTTP][KT_MOP_GET][KT_MRES_DENIED], 1);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_OTHER][KT_MRES_OK], 1);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_OTHER][KT_MRES_BAD_REQUEST], 1);
	assert_int_equal(m.requests[KT_DOOR_HTTP][KT_MOP_GET][KT_MRES_OTHER], 1);
	assert_int_equal(m.requests[KT_DOOR_HTTP][KT_MOP_OTHER][KT_MRES_BAD_TOKEN], 1);
	assert_int_equal(m.requests[KT_DOOR_HTTP][KT_MOP_OTHER][KT_MRES_PARAMETERS], 1);

	/* Answers: ok, the error's name, internal for none; verify counts
	 * logins too. */
	answered(&m, KT_DOOR_SOCKET, "list", "{\"ok\":true,\"secrets\":[]}");
	answered(&m, KT_DOOR_SOCKET, "refresh", "{\"ok\":false,\"error\":\"throttled\"}");
	answered(&m, KT_DOOR_SOCKET, "status", NULL);
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":true,\"match\":true}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":true,\"match\":true}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":true,\"match\":false}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":false,\"error\":\"not_found\"}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":false,\"error\":\"unavailable\"}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":false,\"error\":\"throttled\"}");
	answered(&m, KT_DOOR_SOCKET, "verify", "{\"ok\":false,\"error\":\"denied\"}");
	answered(&m, KT_DOOR_SOCKET, "verify", NULL);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_LIST][KT_MRES_OK], 1);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_REFRESH][KT_MRES_THROTTLED], 1);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_STATUS][KT_MRES_INTERNAL], 1);
	assert_int_equal(m.requests[KT_DOOR_SOCKET][KT_MOP_VERIFY][KT_MRES_OK], 3);
	assert_int_equal(m.logins[KT_MLOGIN_SUCCESS], 2);
	assert_int_equal(m.logins[KT_MLOGIN_FAILURE], 1);
	assert_int_equal(m.logins[KT_MLOGIN_UNKNOWN_USER], 1);
	assert_int_equal(m.logins[KT_MLOGIN_UNAVAILABLE], 1);
	assert_int_equal(m.logins[KT_MLOGIN_THROTTLED], 1);
	assert_int_equal(m.logins[KT_MLOGIN_ERROR], 2);

	m.cache_hits = 5;
	m.cache_misses = 2;
	assert_int_equal(kt_metrics_write(&m, &b), 0);
	s = kt_buf_str(&b);
	assert_non_null(strstr(s, "# TYPE keyturn_requests_total counter\n"));
	assert_non_null(
		strstr(s, "keyturn_requests_total{door=\"socket\",op=\"get\",result=\"ok\"} 2\n"));
	assert_non_null(strstr(
		s, "keyturn_requests_total{door=\"http\",op=\"other\",result=\"bad_token\"} 1\n"));
	assert_non_null(
		strstr(s,
		       "keyturn_requests_total{door=\"socket\",op=\"other\",result=\"ok\"} 1\n"));
	/* Series that counted nothing are left out. */
	assert_null(strstr(s, "op=\"reload\""));
	assert_null(strstr(s, "frobnicate"));
	assert_null(strstr(s, "made-up"));
	assert_non_null(strstr(s, "keyturn_cache_hits_total 5\n"));
	assert_non_null(strstr(s, "keyturn_cache_misses_total 2\n"));
	assert_non_null(strstr(s, "keyturn_logins_total{result=\"success\"} 2\n"));
	assert_non_null(strstr(s, "keyturn_logins_total{result=\"error\"} 2\n"));
	kt_buf_free(&b);

	/* Nothing counted: the family's header all the same. */
	memset(&m, 0, sizeof(m));
	assert_int_equal(kt_metrics_write(&m, &b), 0);
	s = kt_buf_str(&b);
	assert_non_null(strstr(s, "# HELP keyturn_requests_total "));
	assert_null(strstr(s, "keyturn_requests_total{"));
	assert_non_null(strstr(s, "keyturn_logins_total{result=\"failure\"} 0\n"));
	kt_buf_free(&b);

	assert_string_equal(kt_metrics_op_name(kt_metrics_op_of("ping")), "ping");
	assert_string_equal(kt_metrics_result_name(kt_metrics_result_of("path")), "path");
	assert_string_equal(kt_metrics_door_name(KT_DOOR_HTTP), "http");
}

/* --- AWS requests, against a scripted server ----------------------------- */

struct scripted {
	int status;
	const char *body;
};

struct fake_aws {
	int lfd;
	const struct scripted *answers;
	size_t n;
	char targets[8][64]; /* X-Amz-Target of each request served */
};

/* Reads one request (headers and a Content-Length body) from fd. */
static int read_request(int fd, char *buf, size_t len, size_t *got)
{
	size_t have = 0, need = 0;
	char *end = NULL;

	for (;;) {
		ssize_t r;

		if (end != NULL && have >= need)
			break;
		if (have + 1 >= len)
			return -1;
		r = read(fd, buf + have, len - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");

			need = (size_t)(end + 4 - buf);
			if (cl != NULL)
				need += strtoul(cl + 17, NULL, 10);
		}
	}
	*got = have;
	return 0;
}

static void header_value(const char *req, const char *name, char *out, size_t len)
{
	const char *h = strcasestr(req, name);
	size_t n;

	out[0] = '\0';
	if (h == NULL)
		return;
	h += strlen(name);
	while (*h == ' ')
		h++;
	n = strcspn(h, "\r\n");
	snprintf(out, len, "%.*s", (int)n, h);
}

/* Serves the scripted answers in order, one per request, over as many
 * connections as the client opens; returns when all are served. */
static void *fake_aws_run(void *arg)
{
	struct fake_aws *f = arg;
	size_t served = 0;

	while (served < f->n) {
		int fd = accept(f->lfd, NULL, NULL);
		char req[16384];
		size_t got;

		if (fd < 0)
			break;
		while (served < f->n && read_request(fd, req, sizeof(req), &got) == 0) {
			const struct scripted *a = &f->answers[served];
			char head[256];
			int hl;

			header_value(req, "\r\nX-Amz-Target:", f->targets[served],
				     sizeof(f->targets[served]));
			hl = snprintf(
				head, sizeof(head),
				"HTTP/1.1 %d X\r\nContent-Type: application/x-amz-json-1.1\r\n"
				"Content-Length: %zu\r\n\r\n",
				a->status, strlen(a->body));
			if (write(fd, head, (size_t)hl) != hl ||
			    write(fd, a->body, strlen(a->body)) != (ssize_t)strlen(a->body))
				break;
			served++;
		}
		close(fd);
	}
	return NULL;
}

struct aws_seen {
	char lines[64][96];
	size_t n;
};

static void aws_count(void *ctx, const char *op, const char *result, unsigned long n)
{
	struct aws_seen *s = ctx;

	assert_true(s->n < 64);
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s %lu", op, result, n);
}

static bool aws_seen_has(const struct aws_seen *s, const char *line)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->lines[i], line) == 0)
			return true;
	}
	return false;
}

/* A client for the fake server on the loopback (retries without waiting
 * long); port 0 makes one that is never called. */
static struct aws_client *loopback_client(int port)
{
	struct aws_client_opts o = { 0 };
	struct aws_client *c = NULL;
	struct aws_error err;
	char endpoint[64];

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port != 0 ? port : 9);
	o.region = "us-east-1";
	o.endpoint = endpoint;
	o.max_attempts = 3;
	o.retry_base_ms = 1;
	o.retry_cap_ms = 5;
	assert_int_equal(setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1), 0);
	assert_int_equal(setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-key", 1), 0);
	assert_int_equal(aws_client_new(&o, &c, &err), 0);
	return c;
}

/* Every HTTP request is counted once by operation and result, retries
 * too; an operation outside the list is "other". */
static void test_aws_counts(void **state)
{
	static const struct scripted answers[] = {
		{ 400, "{\"__type\":\"ThrottlingException\",\"message\":\"slow down\"}" },
		{ 200, "{\"Name\":\"db\"}" },
		{ 200, "{}" },
		{ 400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"no such\"}" },
	};
	struct fake_aws f = { -1, answers, 4, { { 0 } } };
	struct sockaddr_in sa = { 0 };
	socklen_t salen = sizeof(sa);
	struct aws_seen seen = { { { 0 } }, 0 };
	struct json_object *resp = NULL;
	struct aws_error err;
	struct aws_client *c;
	pthread_t th;

	(void)state;
	f.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f.lfd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f.lfd, 4), 0);
	assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sa, &salen), 0);
	assert_int_equal(pthread_create(&th, NULL, fake_aws_run, &f), 0);
	c = loopback_client(ntohs(sa.sin_port));

	assert_int_equal(aws_client_call(c, "secretsmanager.GetSecretValue", "{}", 2, &resp, &err,
					 NULL),
			 0);
	json_object_put(resp);
	assert_int_equal(aws_client_call(c, "secretsmanager.FrobSecret", "{}", 2, &resp, &err,
					 NULL),
			 0);
	json_object_put(resp);
	assert_int_equal(aws_client_call(c, "secretsmanager.DescribeSecret", "{}", 2, &resp, &err,
					 NULL),
			 -EIO);
	assert_int_equal(err.code, AWS_ERR_NOT_FOUND);
	assert_int_equal(aws_client_requests_sent(c), 4);
	aws_client_free(c);
	pthread_join(th, NULL);
	close(f.lfd);
	assert_string_equal(f.targets[0], "secretsmanager.GetSecretValue");
	assert_string_equal(f.targets[1], "secretsmanager.GetSecretValue");

	aws_client_counts_walk(aws_count, &seen);
	assert_int_equal(seen.n, 4);
	assert_true(aws_seen_has(&seen, "GetSecretValue throttled 1"));
	assert_true(aws_seen_has(&seen, "GetSecretValue ok 1"));
	assert_true(aws_seen_has(&seen, "other ok 1"));
	assert_true(aws_seen_has(&seen, "DescribeSecret not_found 1"));
}

/* --- an ops set-up over a fake engine backend ---------------------------- */

#define MAX_JOBS 16
#define AGE_BACK 1000
#define MAX_REPLIES 8

static struct world {
	struct kt_engine *eng;
	struct kt_ops *ops;
	struct aws_client *aws;
	struct kt_job *jobs[MAX_JOBS];
	size_t njobs;
	time_t sched;
	struct kt_config cfg;
	struct kt_secret_cfg secs[3];
	uid_t db_uids[1];
	struct json_object *replies[MAX_REPLIES];
	uint64_t reply_conn[MAX_REPLIES];
	size_t nreplies;
} w;

static void fake_submit(void *ctx, struct kt_job *job)
{
	(void)ctx;
	assert_true(w.njobs < MAX_JOBS);
	w.jobs[w.njobs++] = job;
}

static size_t fake_busy(void *ctx)
{
	(void)ctx;
	return w.njobs;
}

static time_t fake_sched_now(void *ctx)
{
	(void)ctx;
	return w.sched;
}

static void fake_reply(void *ctx, uint64_t conn_id, struct json_object *answer)
{
	(void)ctx;
	assert_true(w.nreplies < MAX_REPLIES);
	w.reply_conn[w.nreplies] = conn_id;
	w.replies[w.nreplies++] = answer;
}

static void socket_stats(void *ctx, struct kt_door_stats *out)
{
	(void)ctx;
	out->connections = 3;
	out->requests = 9;
	out->socket = json_object_new_object();
}

static void http_stats(void *ctx, struct kt_door_stats *out)
{
	struct json_object *listen = json_object_new_array();

	(void)ctx;
	out->connections = 2;
	out->refused = 4;
	out->requests = 5;
	out->socket = json_object_new_object();
	json_object_array_add(listen, json_object_new_string("127.0.0.1:2773"));
	json_object_object_add(out->socket, "listen", listen);
}

static struct json_object *events_status(void *ctx)
{
	struct json_object *o = json_object_new_object();

	(void)ctx;
	json_object_object_add(o, "state", json_object_new_string("ok"));
	json_object_object_add(o, "received", json_object_new_int64(7));
	return o;
}

static struct kt_job *take_job(void)
{
	struct kt_job *job;

	assert_true(w.njobs > 0);
	job = w.jobs[0];
	memmove(&w.jobs[0], &w.jobs[1], (w.njobs - 1) * sizeof(w.jobs[0]));
	w.njobs--;
	return job;
}

static char *dup_str(const char *s)
{
	char *d = kt_strdup(s);

	assert_non_null(d);
	return d;
}

static void fill_value(struct sm_value *v, const char *id, const char *vid)
{
	char arn[128];

	snprintf(arn, sizeof(arn), "arn:aws:secretsmanager:us-east-1:1:secret:%s-Ab12Cd", id);
	memset(v, 0, sizeof(*v));
	v->arn = dup_str(arn);
	v->name = dup_str(id);
	v->version_id = dup_str(vid);
	v->stages = calloc(1, sizeof(char *));
	assert_non_null(v->stages);
	v->stages[0] = dup_str("AWSCURRENT");
	v->nstages = 1;
	v->data = (unsigned char *)dup_str("{\"password\":\"hunter2\"}");
	v->len = strlen((char *)v->data);
}

/* Plays AWS for every job queued: values at version vid, descriptions
 * with AWSCURRENT at vid. */
static void answer_jobs(const char *vid)
{
	while (w.njobs > 0) {
		struct kt_job *job = take_job();

		job->rc = 0;
		if (job->kind == KT_JOB_BATCH_GET) {
			job->batch.values = calloc(job->nids, sizeof(*job->batch.values));
			assert_non_null(job->batch.values);
			job->batch.nvalues = job->nids;
			for (size_t i = 0; i < job->nids; i++)
				fill_value(&job->batch.values[i], job->ids[i], vid);
		} else if (job->kind == KT_JOB_GET) {
			fill_value(&job->value, job->ids[0], vid);
		} else {
			struct sm_version *v;

			job->desc.name = dup_str(job->ids[0]);
			job->desc.versions = calloc(1, sizeof(*job->desc.versions));
			assert_non_null(job->desc.versions);
			v = &job->desc.versions[job->desc.nversions++];
			v->version_id = dup_str(vid);
			v->stages = calloc(1, sizeof(char *));
			assert_non_null(v->stages);
			v->stages[0] = dup_str("AWSCURRENT");
			v->nstages = 1;
		}
		job->next = NULL;
		kt_engine_jobs_done(w.eng, job);
	}
}

/* The engine over the fake backend, and the ops over it; doors: with the
 * HTTP door and rotation events. */
static void make_ops(bool doors)
{
	static const char *const names[] = { "api", "db", "odd\"na\\me" };
	const struct kt_engine_backend backend = { fake_submit, fake_busy, NULL };
	const struct kt_engine_clock clock = { fake_sched_now, NULL, NULL, NULL, NULL };
	struct kt_ops_env env = { 0 };

	memset(&w, 0, sizeof(w));
	/* The engine's clock runs AGE_BACK s behind the ops' (kt_sched_now),
	 * so that what AWS answers now is AGE_BACK s old on /metrics. */
	w.sched = kt_sched_now() - AGE_BACK;
	for (size_t i = 0; i < 3; i++) {
		w.secs[i].name = (char *)names[i];
		w.secs[i].id = (char *)names[i];
	}
	/* db: uid 1000 may read it; the others are root's only. */
	w.db_uids[0] = 1000;
	w.secs[1].allow_uids = w.db_uids;
	w.secs[1].nallow_users = 1;
	w.cfg.secrets = w.secs;
	w.cfg.nsecrets = 3;
	w.cfg.check_interval = 3600;
	w.cfg.window_interval = 30;
	w.cfg.max_stale = 86400;
	w.cfg.max_wait = 3;
	w.cfg.refresh_min_interval = 10;
	w.cfg.workers = 1;
	assert_int_equal(kt_engine_new(&w.cfg, &backend, &clock, &w.eng), 0);
	assert_int_equal(kt_engine_configure(w.eng, &w.cfg), 0);
	w.aws = loopback_client(0);
	env.eng = w.eng;
	env.aws = w.aws;
	env.started = w.sched;
	env.door_stats = socket_stats;
	env.http_stats = doors ? http_stats : NULL;
	env.events_status = doors ? events_status : NULL;
	env.reply = fake_reply;
	assert_int_equal(kt_ops_new(&env, &w.cfg, &w.ops), 0);
}

static int ops_setup(void **state)
{
	(void)state;
	make_ops(false);
	return 0;
}

static int ops_setup_doors(void **state)
{
	(void)state;
	make_ops(true);
	return 0;
}

static int ops_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < w.nreplies; i++)
		json_object_put(w.replies[i]);
	while (w.njobs > 0)
		kt_job_free(take_job());
	kt_ops_free(w.ops);
	kt_engine_free(w.eng);
	aws_client_free(w.aws);
	return 0;
}

static struct kt_peer peer_of(uid_t uid)
{
	struct kt_peer p = { 0 };

	p.uid = uid;
	p.gid = uid;
	snprintf(p.name, sizeof(p.name), "%s", uid == 0 ? "root" : "alice");
	return p;
}

/* Sends one request through kt_ops_handle; the answer (NULL when parked)
 * is returned to be released, and its error name is checked. */
static enum kt_op_result request(uint64_t conn, uid_t uid, const char *json, const char *want)
{
	struct kt_peer p = peer_of(uid);
	struct json_object *req = parse(json), *answer = NULL;
	struct kt_request r = { conn, &p, req, 0, NULL, false, 0 };
	enum kt_op_result res = kt_ops_handle(w.ops, &r, &answer);

	if (res == KT_OP_ANSWER) {
		const char *err = kt_json_str(answer, "error");

		assert_string_equal(err != NULL ? err : "ok", want);
	}
	json_object_put(answer);
	json_object_put(req);
	return res;
}

/* Writes text to a scratch file and has Python's parser read it; returns
 * its dump (to free) with a newline before the first line, or NULL with a
 * reason printed when /usr/bin/python3 has no prometheus_client. */
static char *python_dump(const char *text)
{
	char path[64], cmd[512];
	struct kt_buf out = KT_BUF_INIT(1 << 20);
	FILE *f, *p;
	int fd, st;

	if (system(PYTHON " -c 'import prometheus_client' 2>/dev/null") != 0) {
		print_message("skipped: %s cannot import prometheus_client "
			      "(python3-prometheus-client)\n",
			      PYTHON);
		return NULL;
	}
	kt_tmp_name(path, sizeof(path), "/tmp/test_metrics.");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$KT_METRICS_PY\" %s", path);
	assert_int_equal(setenv("KT_METRICS_PY", parse_py, 1), 0);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(kt_buf_append_str(&out, "\n"), 0);
	for (;;) {
		char chunk[4096];
		size_t n = fread(chunk, 1, sizeof(chunk), p);

		if (n == 0)
			break;
		assert_int_equal(kt_buf_append(&out, chunk, n), 0);
	}
	st = pclose(p);
	unlink(path);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "# the text:\n%s\n# the parser's output:%s", text,
			kt_buf_str(&out));
		fail_msg("the parser refused the exposition");
	}
	return kt_buf_steal(&out, NULL);
}

static void assert_line(const char *dump, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(dump, want) == NULL) {
		fprintf(stderr, "# the parsed exposition:%s", dump);
		fail_msg("no line \"%s\" in the parsed exposition", line);
	}
}

static void assert_has(const char *text, const char *part)
{
	if (strstr(text, part) == NULL) {
		fprintf(stderr, "# the text:\n%s", text);
		fail_msg("no \"%s\" in the text", part);
	}
}

/* The age shown for secret (as escaped in the text) is AGE_BACK s, or a
 * second or two more on a slow machine. */
static void assert_age(const char *text, const char *secret)
{
	char want[160];
	const char *at;
	long age;

	snprintf(want, sizeof(want), "\nkeyturn_secret_age_seconds{secret=\"%s\"} ", secret);
	at = strstr(text, want);
	if (at == NULL) {
		fprintf(stderr, "# the text:\n%s", text);
		fail_msg("no age for %s in the text", secret);
	}
	age = strtol(at + strlen(want), NULL, 10);
	assert_in_range(age, AGE_BACK, AGE_BACK + 5);
}

static char *render(uid_t uid)
{
	struct kt_peer p = peer_of(uid);
	struct kt_buf b = KT_BUF_INIT(1 << 20);

	assert_int_equal(kt_ops_metrics(w.ops, &p, &b), 0);
	/* The text format ends each line, the last one too. */
	assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
	return kt_buf_steal(&b, NULL);
}

/* A small day of requests by both doors, then the exposition as root and
 * as a user who may read one secret. */
static void test_ops_render(void **state)
{
	struct kt_entry *db, *odd;
	struct kt_buf b = KT_BUF_INIT(4096);
	char *text, *dump;

	(void)state;
	db = kt_cache_find(kt_engine_cache(w.eng), "db");
	odd = kt_cache_find(kt_engine_cache(w.eng), "odd\"na\\me");
	assert_non_null(db);
	assert_non_null(odd);
	assert_non_null(kt_cache_add_login(kt_engine_cache(w.eng), "hosts/web1/root"));

	/* Before any value: a get over HTTP waits for the fetch (a miss)
	 * and is counted when its answer comes. */
	assert_int_equal(request(KT_CONN_HTTP | 1, 0, "{\"v\":1,\"op\":\"get\",\"secret\":\"db\"}",
				 NULL),
			 KT_OP_PARKED);
	assert_int_equal(w.ops->metrics.cache_misses, 1);
	answer_jobs("v1");
	assert_int_equal(w.nreplies, 1);
	assert_true(w.reply_conn[0] == (KT_CONN_HTTP | 1));
	assert_true(kt_json_str(w.replies[0], "error") == NULL);
	/* The first value is not a change. */
	assert_int_equal(db->version_changes, 0);
	kt_engine_tick(w.eng);
	answer_jobs("v1");

	/* Hits on the socket door, a refusal, an unknown op, a bad request. */
	request(1, 1000, "{\"v\":1,\"op\":\"get\",\"secret\":\"db\"}", "ok");
	request(1, 0, "{\"v\":1,\"op\":\"get\",\"secret\":\"api\"}", "ok");
	request(2, 1000, "{\"v\":1,\"op\":\"get\",\"secret\":\"api\"}", "denied");
	request(2, 1000, "{\"v\":1,\"op\":\"frobnicate\"}", "bad_request");
	request(2, 1000, "{\"v\":1}", "bad_request");
	assert_int_equal(w.ops->metrics.cache_hits, 2);
	/* The HTTP door's own answers. */
	kt_ops_count_door(w.ops, KT_DOOR_HTTP, "ping", "ok");
	kt_ops_count_door(w.ops, KT_DOOR_HTTP, "other", "bad_token");

	/* AWSCURRENT moves: a check, then the fetch of the new version. */
	kt_engine_check(w.eng, odd, KT_WHY_REFRESH);
	answer_jobs("v2");
	answer_jobs("v2");
	assert_int_equal(odd->version_changes, 1);
	assert_int_equal(db->version_changes, 0);

	text = render(0);
	/* Never a value. */
	assert_null(strstr(text, "hunter2"));
	assert_age(text, "db");
	assert_age(text, "odd\\\"na\\\\me");
	dump = python_dump(text);
	if (dump != NULL) {
		assert_line(dump, "TYPE keyturn_requests counter");
		assert_line(dump, "keyturn_requests_total door=http,op=get,result=ok 1");
		assert_line(dump, "keyturn_requests_total door=socket,op=get,result=ok 2");
		assert_line(dump, "keyturn_requests_total door=socket,op=get,result=denied 1");
		assert_line(dump,
			    "keyturn_requests_total door=socket,op=other,result=bad_request 2");
		assert_line(dump, "keyturn_requests_total door=http,op=ping,result=ok 1");
		assert_line(dump, "keyturn_requests_total door=http,op=other,result=bad_token 1");
		assert_line(dump, "keyturn_cache_hits_total  2");
		assert_line(dump, "keyturn_cache_misses_total  1");
		assert_line(dump, "TYPE keyturn_secret_age_seconds gauge");
		assert_has(dump, "\nkeyturn_secret_age_seconds secret=db ");
		assert_has(dump, "\nkeyturn_secret_age_seconds secret=api ");
		assert_line(dump, "keyturn_secret_version_changes_total secret=odd\"na\\\\me 1");
		assert_line(dump, "keyturn_secret_version_changes_total secret=db 0");
		assert_line(dump, "keyturn_logins_total result=success 0");
		assert_line(dump, "keyturn_events_received_total  0");
		assert_line(dump, "keyturn_connections door=socket 3");
		assert_line(dump, "keyturn_connections door=http 0");
		assert_line(dump, "keyturn_connections door=credentials 0");
		assert_line(dump, "TYPE keyturn_up gauge");
		assert_line(dump, "keyturn_up  1");
		assert_line(dump, "TYPE keyturn_aws_requests counter");
		/* Secrets only logins use are not shown. */
		assert_null(strstr(dump, "hosts/web1"));
		free(dump);
	}
	free(text);

	/* uid 1000 sees its one secret, and every count that names none. */
	text = render(1000);
	assert_age(text, "db");
	assert_null(strstr(text, "secret=\"api\""));
	assert_null(strstr(text, "secret=\"odd"));
	assert_non_null(strstr(text, "keyturn_up 1\n"));
	dump = python_dump(text);
	free(dump);
	free(text);

	/* A buffer too small: an error, and nothing half-written left in it. */
	{
		struct kt_peer p = peer_of(0);

		kt_buf_init(&b, 64);
		assert_int_equal(kt_buf_append_str(&b, "before"), 0);
		assert_true(kt_ops_metrics(w.ops, &p, &b) < 0);
		assert_string_equal(kt_buf_str(&b), "before");
		kt_buf_free(&b);
	}
}

/* With the HTTP door and events: their figures in the exposition and in
 * status's "http" object. */
static void test_ops_doors(void **state)
{
	struct kt_peer p = peer_of(0);
	struct json_object *st, *http, *v;
	char *text, *dump;

	(void)state;
	text = render(0);
	assert_non_null(strstr(text, "keyturn_connections{door=\"http\"} 2\n"));
	assert_non_null(strstr(text, "keyturn_events_received_total 7\n"));
	/* Nothing checked yet: no ages. */
	assert_null(strstr(text, "keyturn_secret_age_seconds{"));
	dump = python_dump(text);
	if (dump != NULL) {
		assert_line(dump, "keyturn_connections door=http 2");
		assert_line(dump, "keyturn_events_received_total  7");
		free(dump);
	}
	free(text);

	st = kt_ops_status(w.ops, &p, kt_sched_now());
	assert_non_null(st);
	assert_true(json_object_object_get_ex(st, "http", &http));
	assert_true(json_object_object_get_ex(http, "listen", &v));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)),
			    "127.0.0.1:2773");
	assert_true(json_object_object_get_ex(http, "connections", &v));
	assert_int_equal(json_object_get_int64(v), 2);
	assert_true(json_object_object_get_ex(http, "refused", &v));
	assert_int_equal(json_object_get_int64(v), 4);
	assert_true(json_object_object_get_ex(http, "requests", &v));
	assert_int_equal(json_object_get_int64(v), 5);
	json_object_put(st);
}

/* Without an HTTP door, status says so. */
static void test_status_http_off(void **state)
{
	struct kt_peer p = peer_of(0);
	struct json_object *st, *http;

	(void)state;
	st = kt_ops_status(w.ops, &p, kt_sched_now());
	assert_non_null(st);
	assert_true(json_object_object_get_ex(st, "http", &http));
	assert_string_equal(kt_json_str(http, "state"), "off");
	json_object_put(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_counting),
		cmocka_unit_test(test_aws_counts),
		cmocka_unit_test_setup_teardown(test_ops_render, ops_setup, ops_teardown),
		cmocka_unit_test_setup_teardown(test_ops_doors, ops_setup_doors, ops_teardown),
		cmocka_unit_test_setup_teardown(test_status_http_off, ops_setup, ops_teardown),
	};
	char err[256];

	log_init("test_metrics", true, KT_LOG_ERR);
	if (kt_secure_init(65536, err, sizeof(err)) < 0) {
		fprintf(stderr, "kt_secure_init: %s\n", err);
		return 1;
	}
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

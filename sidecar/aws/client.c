/* The AWS JSON-protocol client: each call is signed with SigV4 for the
 * current credentials and corrected clock, sent over a pooled HTTPS handle,
 * and retried in the AWS "standard" mode. Answers are parsed here once, so a
 * malformed body is caught before any operation looks at it. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "creds.h"
#include "endpoint.h"
#include "http.h"
#include "common/kt_json.h"
#include "common/kt_time.h"
#include "common/log.h"
#include "retry.h"
#include "common/secmem.h"
#include "sigv4.h"

#define CLIENT_POOL_MAX 4
#define CLIENT_DEFAULT_SERVICE "secretsmanager"
#define CLIENT_DEFAULT_JSON_VERSION "1.1"
#define CLIENT_SERVICE_MAX 32
/* http.c's default total timeout, kept here so that aws_client_timeout_ms()
 * can report the value in force. */
#define CLIENT_DEFAULT_TIMEOUT_MS 10000

struct aws_client {
	char service[CLIENT_SERVICE_MAX]; /* SigV4 service name: "secretsmanager", "sqs" */
	char ctype[40];                   /* Content-Type: application/x-amz-json-1.1 or -1.0 */
	char *region;
	char *endpoint;
	char *url;      /* endpoint + "/" */
	char host[256]; /* Host header and SigV4 host */
	char *ca_file;
	struct kt_http_opts http_opts;
	struct aws_creds_chain *creds;
	struct aws_retry retry;
	bool retry_ready;

	pthread_mutex_t lock; /* guards pool and skew */
	struct kt_http *pool[CLIENT_POOL_MAX];
	size_t npool;
	long skew_s;        /* server clock minus ours */
	unsigned long sent; /* HTTP requests sent */

	/* aws_client_cancel: the flag is read by libcurl's progress callback
	 * and the credential providers; the condition wakes backoff sleeps. */
	atomic_bool cancel;
	pthread_mutex_t sleep_lock;
	pthread_cond_t sleep_cond; /* on CLOCK_MONOTONIC */
	bool sleep_ready;
};

/* The operations counted by name for aws_client_counts_walk (the ones
 * sm.c and sqs.c call); any other target is counted as "other", so the
 * table stays this size. */
static const char *const counted_ops[] = {
	"GetSecretValue",
	"BatchGetSecretValue",
	"DescribeSecret",
	"ListSecretVersionIds",
	"PutSecretValue",
	"UpdateSecretVersionStage",
	"GetRandomPassword",
	"CreateSecret",
	"ReceiveMessage",
	"DeleteMessageBatch",
	"other",
};
#define COUNTED_OPS (sizeof(counted_ops) / sizeof(counted_ops[0]))
#define COUNTED_RESULTS (AWS_ERR_OTHER + 1)

/* Requests sent, for the whole process: workers count from their own
 * threads, /metrics reads from the loop's. */
static atomic_ulong request_counts[COUNTED_OPS][COUNTED_RESULTS];

static void count_request(const char *target, enum aws_errc code)
{
	const char *dot = strrchr(target, '.');
	const char *op = dot != NULL ? dot + 1 : target;
	size_t i;

	for (i = 0; i < COUNTED_OPS - 1; i++) {
		if (strcmp(counted_ops[i], op) == 0)
			break;
	}
	if ((unsigned)code >= COUNTED_RESULTS)
		code = AWS_ERR_OTHER;
	atomic_fetch_add_explicit(&request_counts[i][code], 1, memory_order_relaxed);
}

void aws_client_counts_walk(void (*fn)(void *ctx, const char *op, const char *result,
				       unsigned long n),
			    void *ctx)
{
	for (size_t i = 0; i < COUNTED_OPS; i++) {
		for (size_t r = 0; r < COUNTED_RESULTS; r++) {
			unsigned long n =
				atomic_load_explicit(&request_counts[i][r], memory_order_relaxed);

			if (n != 0)
				fn(ctx, counted_ops[i], aws_errc_name((enum aws_errc)r), n);
		}
	}
}

/* A service name goes into the credential scope and a host name: lower-case
 * letters, digits and dashes only. */
static bool service_valid(const char *s)
{
	if (s[0] == '\0' || strlen(s) >= CLIENT_SERVICE_MAX)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return true;
}

/* Takes the service and its JSON protocol version from opts; NULL keeps the
 * Secrets Manager client every existing caller expects. */
static int client_set_protocol(struct aws_client *c, const struct aws_client_opts *opts,
			       struct aws_error *err)
{
	const char *svc = opts->service != NULL ? opts->service : CLIENT_DEFAULT_SERVICE;
	const char *ver =
		opts->json_version != NULL ? opts->json_version : CLIENT_DEFAULT_JSON_VERSION;

	if (!service_valid(svc)) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadService",
			      "AWS service name \"%.40s\" is not lower-case letters, digits and "
			      "dashes",
			      svc);
		return -EINVAL;
	}
	if (strcmp(ver, "1.0") != 0 && strcmp(ver, "1.1") != 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadJsonVersion",
			      "AWS JSON protocol version \"%.16s\" for %s is neither 1.0 nor 1.1",
			      ver, svc);
		return -EINVAL;
	}
	snprintf(c->service, sizeof(c->service), "%s", svc);
	snprintf(c->ctype, sizeof(c->ctype), "application/x-amz-json-%s", ver);
	return 0;
}

int aws_client_new(const struct aws_client_opts *opts, struct aws_client **out,
		   struct aws_error *err)
{
	struct aws_creds_opts copts = { 0 };
	struct aws_client *c;
	enum aws_source rsrc, esrc;
	int rc = -ENOMEM;

	aws_error_clear(err);
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->cancel, false);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_mutex_init(&c->sleep_lock, NULL);
		rc = -pthread_cond_init(&c->sleep_cond, &ca);
		pthread_condattr_destroy(&ca);
		if (rc < 0) {
			pthread_mutex_destroy(&c->sleep_lock);
			goto out;
		}
		c->sleep_ready = true;
	}
	rc = client_set_protocol(c, opts, err);
	if (rc < 0)
		goto out;
	rc = aws_resolve_region(opts->region, opts->use_imds_region, &c->region, &rsrc, err);
	if (rc < 0)
		goto out;
	rc = aws_resolve_endpoint(c->service, opts->endpoint, c->region, opts->fips, &c->endpoint,
				  &esrc, err);
	if (rc < 0)
		goto out;
	rc = aws_endpoint_host(c->endpoint, c->host, sizeof(c->host));
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	if (asprintf(&c->url, "%s/", c->endpoint) < 0) {
		c->url = NULL;
		goto out;
	}
	if (opts->ca_file != NULL && (c->ca_file = kt_strdup(opts->ca_file)) == NULL)
		goto out;
	c->http_opts.ca_file = c->ca_file;
	c->http_opts.connect_timeout_ms = opts->connect_timeout_ms;
	c->http_opts.timeout_ms =
		opts->timeout_ms > 0 ? opts->timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->http_opts.max_body = opts->max_body;
	c->http_opts.cancel = &c->cancel;

	rc = aws_retry_init(&c->retry, opts->max_attempts);
	if (rc < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadMaxAttempts",
			      "AWS_MAX_ATTEMPTS must be a whole number of at least 1");
		goto out;
	}
	c->retry_ready = true;
	if (opts->retry_base_ms > 0)
		c->retry.base_ms = opts->retry_base_ms;
	if (opts->retry_cap_ms > 0)
		c->retry.cap_ms = opts->retry_cap_ms;

	copts.region = c->region;
	copts.ca_file = c->ca_file;
	copts.cancel = &c->cancel;
	rc = aws_creds_chain_new(&copts, &c->creds);
	if (rc < 0)
		goto out;
	log_debug("aws: %s: region %s (from the %s), endpoint %s (from the %s)", c->service,
		  c->region, aws_source_name(rsrc), c->endpoint, aws_source_name(esrc));
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
	else if (rc < 0 && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_CONFIG, "BadEndpoint", "endpoint is not usable");
	aws_client_free(c);
	return rc;
}

void aws_client_free(struct aws_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->npool; i++)
		kt_http_free(c->pool[i]);
	aws_creds_chain_free(c->creds);
	if (c->retry_ready)
		aws_retry_destroy(&c->retry);
	pthread_mutex_destroy(&c->lock);
	if (c->sleep_ready) {
		pthread_cond_destroy(&c->sleep_cond);
		pthread_mutex_destroy(&c->sleep_lock);
	}
	free(c->region);
	free(c->endpoint);
	free(c->url);
	free(c->ca_file);
	free(c);
}

const char *aws_client_region(const struct aws_client *c)
{
	return c->region;
}

const char *aws_client_endpoint(const struct aws_client *c)
{
	return c->endpoint;
}

long aws_client_timeout_ms(const struct aws_client *c)
{
	return c->http_opts.timeout_ms;
}

/* Takes an idle HTTP handle from the pool, or makes one. Keeping a few
 * handles keeps their connections alive between calls. */
static int client_take_http(struct aws_client *c, struct kt_http **h)
{
	pthread_mutex_lock(&c->lock);
	*h = c->npool > 0 ? c->pool[--c->npool] : NULL;
	pthread_mutex_unlock(&c->lock);
	return *h != NULL ? 0 : kt_http_new(&c->http_opts, h);
}

static void client_give_http(struct aws_client *c, struct kt_http *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->npool < CLIENT_POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	kt_http_free(h);
}

unsigned long aws_client_requests_sent(struct aws_client *c)
{
	unsigned long n;

	pthread_mutex_lock(&c->lock);
	n = c->sent;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void client_count_request(struct aws_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->sent++;
	pthread_mutex_unlock(&c->lock);
}

static long client_skew(struct aws_client *c)
{
	long s;

	pthread_mutex_lock(&c->lock);
	s = c->skew_s;
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* Learns the server's clock from an HTTP Date header, so that the next
 * signature carries a time the service accepts. */
static void client_adjust_skew(struct aws_client *c, const char *date)
{
	struct tm tm = { 0 };
	const char *end;
	time_t server;

	if (date == NULL)
		return;
	end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL)
		return;
	server = timegm(&tm);
	if (server == (time_t)-1)
		return;
	pthread_mutex_lock(&c->lock);
	c->skew_s = (long)(server - time(NULL));
	pthread_mutex_unlock(&c->lock);
	log_warn("aws: local clock differs from the service's by %ld s; correcting signatures",
		 (long)(server - time(NULL)));
}

/* Describes a request that got no usable HTTP answer. */
static void client_transport_error(struct aws_client *c, struct kt_http *h, int rc,
				   struct aws_error *err)
{
	enum aws_errc code = AWS_ERR_TRANSPORT;
	const char *type = "Transport";

	if (rc == -ETIMEDOUT) {
		code = AWS_ERR_TIMEOUT;
		type = "Timeout";
	} else if (rc == -EMSGSIZE) {
		code = AWS_ERR_MALFORMED;
		type = "AnswerTooLarge";
	} else if (rc == -EKEYREJECTED) {
		code = AWS_ERR_TLS;
		type = "CertificateRefused";
	}
	aws_error_set(err, code, type, "%s: %s", c->endpoint, kt_http_last_error(h));
}

/* Builds, signs and sends one attempt. Returns 0 with *resp filled when an
 * HTTP answer came, or a transport error with err set; *sent says whether
 * the request went out (it did not when credentials or signing failed). */
static int client_send(struct aws_client *c, struct kt_http *h, const char *target,
		       const char *json, size_t json_len, struct kt_http_resp *resp,
		       struct aws_error *err, bool *sent)
{
	const char *ctype = c->ctype;
	struct aws_creds cr = { 0 };
	struct sigv4_result sig = { 0 };
	struct kt_buf lines[6];
	const char *hv[6];
	size_t nh = 0;
	int rc;

	for (size_t i = 0; i < 6; i++)
		kt_buf_init(&lines[i], 16384);
	rc = aws_creds_get(c->creds, &cr, err);
	if (rc < 0) {
		/* The status was a credential endpoint's (IMDS, STS, a
		 * container's), not the service's: callers that pass AWS's
		 * answers on (the HTTP door) must not take it for one. */
		err->http_status = 0;
		goto out;
	}
	{
		struct sigv4_header sh[] = {
			{ "Host", c->host },
			{ "Content-Type", ctype },
			{ "X-Amz-Target", target },
		};
		struct sigv4_request sr = { "POST", "/", NULL, sh, 3, json, json_len };
		struct sigv4_key key = { cr.access_key, cr.secret_key, cr.session_token };
		struct sigv4_params sp = { c->region, c->service, time(NULL) + client_skew(c),
					   true,      false,      false };

		rc = sigv4_sign(&sr, &key, &sp, &sig);
		if (rc < 0) {
			aws_error_set(err, AWS_ERR_OTHER, "SigningFailed",
				      "could not sign the request: %s", strerror(-rc));
			goto out;
		}
	}
	rc = -ENOMEM;
	if (kt_buf_printf(&lines[nh++], "Host: %s", c->host) < 0 ||
	    kt_buf_printf(&lines[nh++], "Content-Type: %s", ctype) < 0 ||
	    kt_buf_printf(&lines[nh++], "X-Amz-Target: %s", target) < 0 ||
	    kt_buf_printf(&lines[nh++], "X-Amz-Date: %s", sig.amz_date) < 0 ||
	    kt_buf_printf(&lines[nh++], "Authorization: %s", sig.authorization) < 0)
		goto out;
	if (cr.session_token != NULL && cr.session_token[0] != '\0' &&
	    kt_buf_printf(&lines[nh++], "X-Amz-Security-Token: %s", cr.session_token) < 0)
		goto out;
	for (size_t i = 0; i < nh; i++)
		hv[i] = kt_buf_str(&lines[i]);
	{
		struct kt_http_req req = { "POST", c->url, hv, nh, json, json_len, 0 };

		client_count_request(c);
		*sent = true;
		rc = kt_http_do(h, &req, resp);
	}
	if (rc < 0)
		client_transport_error(c, h, rc, err);
out:
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
	for (size_t i = 0; i < 6; i++)
		kt_buf_free(&lines[i]);
	sigv4_result_free(&sig);
	aws_creds_clear(&cr);
	return rc;
}

void aws_client_cancel(struct aws_client *c)
{
	pthread_mutex_lock(&c->sleep_lock);
	atomic_store(&c->cancel, true);
	pthread_cond_broadcast(&c->sleep_cond);
	pthread_mutex_unlock(&c->sleep_lock);
}

static bool client_cancelled(struct aws_client *c, struct aws_error *err)
{
	if (!atomic_load(&c->cancel))
		return false;
	aws_error_set(err, AWS_ERR_TRANSPORT, "Cancelled", "%s: the call was cancelled",
		      c->endpoint);
	return true;
}

/* The backoff before a retry: a wait on the monotonic clock that
 * aws_client_cancel cuts short. */
static void client_backoff(struct aws_client *c, long ms)
{
	struct timespec until = kt_mono_after_ms(ms);

	pthread_mutex_lock(&c->sleep_lock);
	while (!atomic_load(&c->cancel) &&
	       pthread_cond_timedwait(&c->sleep_cond, &c->sleep_lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->sleep_lock);
}

int aws_client_call(struct aws_client *c, const char *target, const char *json, size_t json_len,
		    struct json_object **resp, struct aws_error *err, struct aws_call_stats *stats)
{
	struct kt_http *h = NULL;
	struct kt_http_resp hr = { 0 };
	uint64_t cost = 0;
	unsigned long sent_before = aws_client_requests_sent(c);
	bool renewed = false;
	int attempt, rc;

	*resp = NULL;
	aws_error_clear(err);
	rc = client_take_http(c, &h);
	if (rc < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "HttpSetup",
			      rc == -EINVAL ? "the CA file cannot be read" : "out of memory");
		goto out;
	}
	for (attempt = 1;; attempt++) {
		long delay = 0;
		bool sent = false;

		aws_error_clear(err);
		kt_http_resp_free(&hr);
		if (client_cancelled(c, err)) {
			rc = -ECANCELED;
			break;
		}
		rc = client_send(c, h, target, json, json_len, &hr, err, &sent);
		if (rc == 0 && hr.status == 200) {
			*resp = kt_json_parse(kt_buf_str(&hr.body), hr.body.len);
			if (*resp == NULL || !json_object_is_type(*resp, json_type_object)) {
				kt_json_put_wiped(*resp);
				*resp = NULL;
				aws_error_set(
					err, AWS_ERR_MALFORMED, "MalformedAnswer",
					"%s answered %s with a body that is not a JSON object",
					c->endpoint, target);
				err->http_status = hr.status;
				rc = -EBADMSG;
			} else {
				aws_retry_on_success(&c->retry, cost);
			}
			count_request(target, err->code);
			break;
		}
		if (rc == 0) {
			aws_error_parse(hr.status, kt_buf_str(&hr.body), hr.body.len,
					hr.amzn_errortype, err);
			rc = -EIO;
			if (err->code == AWS_ERR_CLOCK_SKEW)
				client_adjust_skew(c, hr.date);
		}
		if (sent)
			count_request(target, err->code);
		else if (err->code == AWS_ERR_NO_CREDENTIALS || err->code == AWS_ERR_CONFIG)
			break;
		/* A call cancelled in flight (or whose credential fetch was) is
		 * not retried, whatever it failed with. */
		if (client_cancelled(c, err)) {
			rc = -ECANCELED;
			break;
		}
		log_debug("aws: %s attempt %d: %s (%s)", target, attempt, aws_errc_name(err->code),
			  err->type);
		/* Expired temporary credentials are renewed and the call tried once
		 * more; it is our state that was stale, not the service failing. */
		if (err->code == AWS_ERR_EXPIRED_TOKEN && !renewed) {
			renewed = true;
			aws_creds_invalidate(c->creds);
			continue;
		}
		if (!aws_retry_should_retry(&c->retry, err->code, attempt, &delay, &cost))
			break;
		client_backoff(c, delay);
	}
	if (stats != NULL) {
		/* Counted from the requests really sent: a call that failed for
		 * want of credentials sent none. Other threads' calls may add to
		 * the count, so this is exact only for a client used by one. */
		stats->attempts = (int)(aws_client_requests_sent(c) - sent_before);
		stats->skew_s = client_skew(c);
	}
out:
	kt_http_resp_free(&hr);
	if (h != NULL)
		client_give_http(c, h);
	return rc;
}

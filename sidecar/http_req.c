/* One HTTP request at the HTTP door: the Agent's checks (http_agent.c),
 * the request handed to the ops as a get (or a refresh, then a get), a
 * parked request's connection suspended until its answer comes, and the
 * response. A response holding a value is sent from its own buffer, which
 * is wiped when libmicrohttpd lets go of it. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "http_agent.h"
#include "http_int.h"

#define MAX_ARGS 16
#define METRICS_MAX (64u * 1024 * 1024)

static const char CT_TEXT[] = "text/plain; charset=utf-8";
static const char CT_JSON[] = "application/json";
static const char CT_METRICS[] = "text/plain; version=0.0.4; charset=utf-8";

time_t kt_hdoor_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct http_conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

void *kt_hdoor_uri_log(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct kt_hdoor *d = cls;
	struct http_req *r = calloc(1, sizeof(*r));

	(void)uri;
	if (r == NULL)
		return NULL;
	r->c = conn_of(mc);
	r->mc = mc;
	r->id = KT_CONN_HTTP | d->next_id++;
	r->started = kt_hdoor_now();
	kt_buf_init(&r->body, KT_PROTO_MAX_FRAME);
	if (r->c != NULL)
		r->c->cur = r;
	d->requests++;
	return r;
}

static void unpark(struct kt_hdoor *d, struct http_req *r)
{
	for (struct http_req **pp = &d->parked; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			r->next = NULL;
			return;
		}
	}
}

void kt_hdoor_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			enum MHD_RequestTerminationCode toe)
{
	struct kt_hdoor *d = cls;
	struct http_req *r = *req_cls;

	(void)mc;
	(void)toe;
	if (r == NULL)
		return;
	if (r->state == REQ_PARKED) {
		unpark(d, r);
		d->h.gone(d->h.ctx, r->id);
	}
	if (r->c != NULL && r->c->cur == r) {
		r->c->cur = NULL;
		r->c->since = kt_hdoor_now();
	}
	kt_json_put_wiped(r->get);
	kt_buf_free(&r->body);
	free(r);
	*req_cls = NULL;
}

/* The response is made: queued at once when libmicrohttpd is asking for
 * it, else when it asks again after the connection is resumed. */
static void ready(struct http_req *r, int status, const char *ctype)
{
	r->status = status;
	r->ctype = ctype;
	r->state = REQ_READY;
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->mc);
	}
}

static void ready_text(struct http_req *r, int status, const char *text)
{
	kt_buf_reset(&r->body);
	if (kt_buf_append_str(&r->body, text) < 0)
		status = 500;
	ready(r, status, CT_TEXT);
}

struct body_ref {
	char *data;
	size_t len;
};

static void body_free(void *cls)
{
	struct body_ref *b = cls;

	kt_free_wiped(b->data, b->len + 1);
	free(b);
}

static enum MHD_Result queue(struct http_req *r)
{
	struct body_ref *b = calloc(1, sizeof(*b));
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret;

	r->state = REQ_DONE;
	if (b != NULL && (b->data = kt_buf_steal(&r->body, &b->len)) == NULL)
		b->data = kt_strdup("");
	if (b != NULL && b->data != NULL)
		resp = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data,
									      body_free, b);
	if (resp == NULL) {
		if (b != NULL)
			kt_free_wiped(b->data, b->len + 1);
		free(b);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	ret = MHD_queue_response(r->mc, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void finish(struct kt_hdoor *d, struct http_req *r, struct json_object *answer);

/* Hands req (taken) to the ops; parks, or finishes with the answer. */
static void handle(struct kt_hdoor *d, struct http_req *r, struct json_object *req)
{
	struct kt_request kr = { 0 };
	struct json_object *answer = NULL;

	kr.conn_id = r->id;
	kr.peer = &r->c->peer;
	kr.req = req;
	if (d->h.request(d->h.ctx, &kr, &answer) == KT_OP_PARKED) {
		r->state = REQ_PARKED;
		r->next = d->parked;
		d->parked = r;
		json_object_put(req);
		return;
	}
	json_object_put(req);
	finish(d, r, answer);
}

static void finish(struct kt_hdoor *d, struct http_req *r, struct json_object *answer)
{
	const char *error = kt_json_str(answer, "error");
	struct json_object *aws, *get;
	bool ok = false;
	int status = 500;

	/* A refresh answered: then the value. keyturnd's own rate limit on
	 * refresh means the value was checked a moment ago: serve it. */
	if (r->refreshing) {
		r->refreshing = false;
		if ((kt_json_bool(answer, "ok", &ok) && ok) ||
		    (error != NULL && strcmp(error, "throttled") == 0 &&
		     !json_object_object_get_ex(answer, "aws", &aws))) {
			json_object_put(answer);
			get = r->get;
			r->get = NULL;
			r->state = REQ_READING;
			handle(d, r, get);
			return;
		}
	}
	kt_buf_reset(&r->body);
	if (answer == NULL || kt_agent_answer(answer, &status, &r->body) < 0) {
		kt_buf_reset(&r->body);
		status = 500;
		kt_agent_error_body(&r->body, "InternalFailure", "out of memory");
	}
	kt_json_put_wiped(answer);
	ready(r, status, CT_JSON);
}

void kt_hdoor_reply(struct kt_hdoor *d, uint64_t conn_id, struct json_object *answer)
{
	for (struct http_req *r = d->parked; r != NULL; r = r->next) {
		if (r->id == conn_id) {
			unpark(d, r);
			finish(d, r, answer);
			return;
		}
	}
	kt_json_put_wiped(answer);
}

void kt_hdoor_release_parked(struct kt_hdoor *d)
{
	while (d->parked != NULL) {
		struct http_req *r = d->parked;

		unpark(d, r);
		d->h.gone(d->h.ctx, r->id);
		ready_text(r, 503, "keyturnd is stopping");
	}
}

struct args {
	struct kt_agent_arg a[MAX_ARGS];
	size_t n;
	bool too_many;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct args *g = cls;

	(void)kind;
	if (g->n == MAX_ARGS) {
		g->too_many = true;
		return MHD_NO;
	}
	g->a[g->n].key = key;
	g->a[g->n].value = value;
	g->n++;
	return MHD_YES;
}

/* Whether a header holds the token: compared in constant time. */
static bool token_in(struct kt_hdoor *d, struct MHD_Connection *mc, const char *header)
{
	const char *v = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, header);
	size_t len = strlen(d->token);

	return v != NULL && strlen(v) == len && CRYPTO_memcmp(v, d->token, len) == 0;
}

/* The request as the ops' get (or refresh) JSON. */
static struct json_object *get_request(const struct kt_agent_req *q, bool refresh)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "v", json_object_new_int(KT_PROTO_VERSION));
	json_object_object_add(o, "op", json_object_new_string(refresh ? "refresh" : "get"));
	json_object_object_add(o, "secret", json_object_new_string(q->secret));
	if (refresh)
		return o;
	if (q->version_id != NULL)
		json_object_object_add(o, "version_id", json_object_new_string(q->version_id));
	if (q->stage != NULL)
		json_object_object_add(o, "stage", json_object_new_string(q->stage));
	json_object_object_add(o, "whole", json_object_new_boolean(true));
	return o;
}

/* A request's first call: decide, then answer or hand it on. */
static void start(struct kt_hdoor *d, struct http_req *r, const char *url, const char *method)
{
	struct kt_agent_in in = { 0 };
	struct kt_agent_req q;
	struct args g = { 0 };
	struct json_object *req;

	MHD_get_connection_values(r->mc, MHD_GET_ARGUMENT_KIND, collect_arg, &g);
	in.method = method;
	in.path = url;
	in.prefix = d->prefix;
	in.forwarded =
		MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, "X-Forwarded-For") != NULL;
	in.token_ok = token_in(d, r->mc, "X-Aws-Parameters-Secrets-Token") ||
		      token_in(d, r->mc, "X-Vault-Token");
	in.metrics = d->metrics;
	in.args = g.a;
	in.nargs = g.n;
	kt_agent_route(&in, &q);
	if (g.too_many && q.route == KT_AGENT_GET) {
		q.route = KT_AGENT_ERROR;
		q.status = 400;
		q.why = "parameters";
		snprintf(q.message, sizeof(q.message), "more than %d parameters", MAX_ARGS);
	}
	switch (q.route) {
	case KT_AGENT_ERROR:
		d->h.answered(d->h.ctx, "other", q.why);
		ready_text(r, q.status, q.message);
		return;
	case KT_AGENT_PING:
		d->h.answered(d->h.ctx, "ping", "ok");
		ready_text(r, 200, "healthy");
		return;
	case KT_AGENT_METRICS:
		/* Thousands of secrets make more text than one value's answer. */
		kt_buf_reset(&r->body);
		r->body.max = METRICS_MAX;
		if (d->h.metrics(d->h.ctx, &r->c->peer, &r->body) < 0) {
			ready_text(r, 500, "out of memory");
			return;
		}
		d->h.answered(d->h.ctx, "metrics", "ok");
		ready(r, 200, CT_METRICS);
		return;
	case KT_AGENT_GET:
		break;
	}
	req = get_request(&q, q.refresh);
	if (q.refresh && (r->get = get_request(&q, false)) == NULL) {
		json_object_put(req);
		req = NULL;
	}
	if (req == NULL) {
		ready_text(r, 500, "out of memory");
		return;
	}
	r->refreshing = q.refresh;
	handle(d, r, req);
}

enum MHD_Result kt_hdoor_access(void *cls, struct MHD_Connection *mc, const char *url,
				const char *method, const char *version, const char *upload,
				size_t *upload_size, void **req_cls)
{
	struct kt_hdoor *d = cls;
	struct http_req *r = *req_cls;

	(void)version;
	(void)upload;
	if (r == NULL || r->c == NULL)
		return MHD_NO;
	switch (r->state) {
	case REQ_READING:
		/* libmicrohttpd closes a connection whose response is queued in
		 * the first call (it cannot know the body was read): the first
		 * call only says the headers are in; a body is read and dropped;
		 * the request is handled at the last call. */
		if (!r->headers) {
			r->headers = true;
			return MHD_YES;
		}
		if (*upload_size != 0) {
			*upload_size = 0;
			return MHD_YES;
		}
		start(d, r, url, method);
		break;
	case REQ_PARKED:
	case REQ_DONE:
		*upload_size = 0;
		return MHD_YES;
	case REQ_READY:
		break;
	}
	if (r->state == REQ_PARKED) {
		r->suspended = true;
		MHD_suspend_connection(mc);
		return MHD_YES;
	}
	if (r->state == REQ_READY)
		return queue(r);
	*upload_size = 0;
	return MHD_YES;
}

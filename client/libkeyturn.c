/* libkeyturn: the API of keyturn.h on top of transport.c. Builds each
 * request, checks each answer member by member (a garbled answer is never a
 * success), and keeps every copy of a value or a password in wiped memory. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "keyturn.h"
#include "common/kt_base64.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "private.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "transport.h"
#include "value.h"

/* The same default as keyturnd's (sidecar/conf.h): /run/keyturn/keyturnd.sock
 * when built with --runstatedir=/run, as packages are. */

struct keyturn {
	struct kt_transport tr;
	struct kt_buf answer; /* the last answer as it came; wiped at the next call */
	char msg[512];        /* the last error's message; never a secret */
	char **watch;         /* the names watched on the connection, or NULL */
	size_t nwatch;
};

/* A request under construction; the first failure sticks. */
struct req {
	struct kt_buf b;
	int rc;
};

static const char *const messages[] = {
	[KEYTURN_OK] = "success",
	[KEYTURN_E_BAD_REQUEST] = "the daemon refused the request as malformed",
	[KEYTURN_E_NOT_FOUND] = "no such secret, version, stage or key",
	[KEYTURN_E_DENIED] = "permission denied",
	[KEYTURN_E_UNAVAILABLE] = "the value is not available now",
	[KEYTURN_E_THROTTLED] = "too many requests; try again later",
	[KEYTURN_E_INTERNAL] = "the daemon failed",
	[KEYTURN_E_CONNECT] = "cannot reach the daemon",
	[KEYTURN_E_UNTRUSTED] = "the socket or its peer is not root's or keyturn's",
	[KEYTURN_E_PROTOCOL] = "garbled answer from the daemon",
	[KEYTURN_E_TIMEOUT] = "no answer from the daemon in time",
	[KEYTURN_E_NOMEM] = "out of memory",
	[KEYTURN_E_INVALID] = "invalid argument",
};

const char *keyturn_strerror(int err)
{
	if (err < 0 || (size_t)err >= sizeof(messages) / sizeof(messages[0]))
		return "unknown error";
	return messages[err];
}

static int set_msg(keyturn_t *kt, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_msg(keyturn_t *kt, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kt->msg, sizeof(kt->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* A garbled answer: the daemon (or whatever answers in its place) is not
 * speaking the protocol, so the connection is not used again. */
static int garbled(keyturn_t *kt, const char *what, const char *key)
{
	kt_transport_disconnect(&kt->tr);
	if (key != NULL)
		return set_msg(kt, KEYTURN_E_PROTOCOL, "unexpected answer from keyturnd: \"%s\" %s",
			       key, what);
	return set_msg(kt, KEYTURN_E_PROTOCOL, "unexpected answer from keyturnd: %s", what);
}

/* Copies the daemon's message, cut at a UTF-8 character boundary. */
static void copy_message(keyturn_t *kt, const char *m)
{
	size_t n = strlen(m), max = sizeof(kt->msg) - 4;

	if (n < sizeof(kt->msg)) {
		memcpy(kt->msg, m, n + 1);
		return;
	}
	n = max;
	while (n > 0 && ((unsigned char)m[n] & 0xc0) == 0x80)
		n--;
	memcpy(kt->msg, m, n);
	memcpy(kt->msg + n, "...", 4);
}

static int from_transport(keyturn_t *kt, int rc)
{
	copy_message(kt, kt->tr.msg);
	switch (rc) {
	case 0:
		return KEYTURN_OK;
	case -EPERM:
		return KEYTURN_E_UNTRUSTED;
	case -EPROTO:
		return KEYTURN_E_PROTOCOL;
	case -ETIMEDOUT:
		return KEYTURN_E_TIMEOUT;
	case -ENOMEM:
		return KEYTURN_E_NOMEM;
	case -EMSGSIZE:
	case -EINVAL:
	case -ENAMETOOLONG:
		return KEYTURN_E_INVALID;
	default:
		return KEYTURN_E_CONNECT;
	}
}

static int from_proto_err(enum kt_proto_err e)
{
	switch (e) {
	case KT_PERR_BAD_REQUEST:
		return KEYTURN_E_BAD_REQUEST;
	case KT_PERR_NOT_FOUND:
		return KEYTURN_E_NOT_FOUND;
	case KT_PERR_DENIED:
		return KEYTURN_E_DENIED;
	case KT_PERR_UNAVAILABLE:
		return KEYTURN_E_UNAVAILABLE;
	case KT_PERR_THROTTLED:
		return KEYTURN_E_THROTTLED;
	case KT_PERR_INTERNAL:
		return KEYTURN_E_INTERNAL;
	}
	return KEYTURN_E_PROTOCOL;
}

/* Requests are written straight into a wiped buffer rather than built with
 * json-c: json-c's serialisation grows with realloc(), which would leave
 * unwiped pieces of a password behind in freed memory. */
static void req_begin(struct req *r, const char *op)
{
	kt_buf_init(&r->b, KT_PROTO_MAX_FRAME);
	r->rc = kt_buf_printf(&r->b, "{\"v\":%d,\"op\":\"%s\"", KT_PROTO_VERSION, op);
}

static void req_str(struct req *r, const char *key, const char *val, size_t len)
{
	if (r->rc == 0)
		r->rc = kt_buf_printf(&r->b, ",\"%s\":", key);
	if (r->rc == 0)
		r->rc = kt_json_append_string(&r->b, val, len);
}

static void req_opt(struct req *r, const char *key, const char *val)
{
	if (val != NULL)
		req_str(r, key, val, strlen(val));
}

static void req_end(struct req *r)
{
	if (r->rc == 0)
		r->rc = kt_buf_append(&r->b, "}", 1);
}

/* Checks the envelope of the answer in kt->answer. Returns KEYTURN_OK
 * with *out, the parsed answer of "ok":true, or an error code with kt->msg
 * set. */
static int envelope(keyturn_t *kt, struct json_object **out)
{
	struct json_object *obj = NULL, *ok;
	enum kt_proto_err perr;
	const char *code, *message;
	char esc[64];
	int rc = KEYTURN_OK;

	*out = NULL;
	/* Valid JSON never holds a raw NUL; json-c might read past it quietly. */
	if (memchr(kt->answer.data, '\0', kt->answer.len) != NULL) {
		rc = garbled(kt, "a NUL byte in the answer", NULL);
		goto out;
	}
	obj = kt_json_parse(kt->answer.data, kt->answer.len);
	if (obj == NULL) {
		rc = garbled(kt, "the answer is not JSON", NULL);
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = garbled(kt, "the answer is not a JSON object", NULL);
		goto out;
	}
	if (!json_object_object_get_ex(obj, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		rc = garbled(kt, "is missing or not a boolean", "ok");
		goto out;
	}
	if (json_object_get_boolean(ok)) {
		*out = obj;
		obj = NULL;
		goto out;
	}
	code = kt_json_str(obj, "error");
	message = kt_json_str(obj, "message");
	if (code == NULL) {
		rc = garbled(kt, "is missing or not a string", "error");
		goto out;
	}
	if (message == NULL) {
		rc = garbled(kt, "is missing or not a string", "message");
		goto out;
	}
	/* An error code this library does not know is never taken for
	 * success, nor guessed at. */
	if (kt_proto_err_parse(code, &perr) < 0) {
		kt_json_printable(code, esc, sizeof(esc));
		rc = garbled(kt, "is an unknown error code", esc);
		goto out;
	}
	copy_message(kt, message);
	rc = from_proto_err(perr);
out:
	kt_json_put_wiped(obj);
	return rc;
}

/* Sends the request and checks the envelope of the answer (envelope()).
 * The request is wiped. */
static int call(keyturn_t *kt, struct req *r, struct json_object **out)
{
	int rc;

	*out = NULL;
	if (r->rc == -ENOMEM)
		rc = set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
	else if (r->rc < 0)
		rc = set_msg(kt, KEYTURN_E_INVALID, "the request is larger than %u bytes",
			     KT_PROTO_MAX_FRAME);
	else
		rc = from_transport(kt,
				    kt_transport_call(&kt->tr, r->b.data, r->b.len, &kt->answer));
	if (rc == KEYTURN_OK)
		rc = envelope(kt, out);
	kt_buf_free(&r->b);
	return rc;
}

/* Member checks for "ok":true answers. Each returns true when the member
 * has the right type; otherwise it has set the PROTOCOL error in kt. */
static bool member(keyturn_t *kt, struct json_object *o, const char *key, enum json_type type,
		   bool nullable, struct json_object **out, int *rc)
{
	static const char *const kinds[] = {
		[json_type_boolean] = "a boolean", [json_type_int] = "an integer",
		[json_type_string] = "a string",   [json_type_array] = "an array",
		[json_type_object] = "an object",
	};
	char what[64];

	*out = NULL;
	if (json_object_object_get_ex(o, key, out) &&
	    (json_object_is_type(*out, type) || (nullable && *out == NULL)))
		return true;
	snprintf(what, sizeof(what), "is missing or not %s%s", kinds[type],
		 nullable ? " or null" : "");
	*rc = garbled(kt, what, key);
	return false;
}

/* A string member that C can read whole (no NUL inside). */
static bool str_member(keyturn_t *kt, struct json_object *o, const char *key, bool nullable,
		       const char **out, int *rc)
{
	struct json_object *s;

	*out = NULL;
	if (!member(kt, o, key, json_type_string, nullable, &s, rc))
		return false;
	if (s == NULL)
		return true;
	*out = json_object_get_string(s);
	if (strlen(*out) == (size_t)json_object_get_string_len(s))
		return true;
	*rc = garbled(kt, "holds a NUL byte", key);
	return false;
}

/* A member that may be absent; when present it must be a string or null. */
static bool opt_str_member(keyturn_t *kt, struct json_object *o, const char *key, int *rc)
{
	const char *s;

	if (!json_object_object_get_ex(o, key, NULL))
		return true;
	return str_member(kt, o, key, true, &s, rc);
}

static int copy_str(keyturn_t *kt, const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return KEYTURN_OK;
	*out = kt_strdup(s);
	return *out != NULL ? KEYTURN_OK : set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
}

/* Copies len bytes and a NUL into v->data. */
static int set_data(keyturn_t *kt, keyturn_value_t *v, const void *p, size_t len)
{
	v->data = malloc(len + 1);
	if (v->data == NULL)
		return set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
	memcpy(v->data, p, len);
	v->data[len] = '\0';
	v->len = len;
	return KEYTURN_OK;
}

static int get_value(keyturn_t *kt, struct json_object *o, keyturn_value_t *v)
{
	struct json_object *str = NULL, *bin = NULL, *m;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	bool has_str, has_bin;
	int rc = KEYTURN_OK, drc;

	has_str = json_object_object_get_ex(o, "string", &str);
	has_bin = json_object_object_get_ex(o, "binary", &bin);
	if (has_str == has_bin)
		return garbled(kt, "has neither or both of \"string\" and \"binary\"", NULL);
	if (has_str) {
		if (!member(kt, o, "string", json_type_string, false, &m, &rc))
			return rc;
		/* A value may hold any character, NUL included: its length says. */
		return set_data(kt, v, json_object_get_string(m),
				(size_t)json_object_get_string_len(m));
	}
	if (!member(kt, o, "binary", json_type_string, false, &m, &rc))
		return rc;
	drc = kt_base64_decode(json_object_get_string(m), (size_t)json_object_get_string_len(m),
			       &raw, &rawlen);
	if (drc == -ENOMEM)
		return set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
	if (drc < 0)
		return garbled(kt, "is not canonical base64", "binary");
	v->binary = 1;
	rc = set_data(kt, v, raw, rawlen);
	kt_free_wiped(raw, rawlen);
	return rc;
}

static int get_answer(keyturn_t *kt, struct json_object *o, keyturn_value_t *v)
{
	struct json_object *stages, *fetched, *stale;
	const char *name, *arn, *vid, *s;
	int rc = KEYTURN_OK;
	size_t n;
	int64_t t;

	if (!str_member(kt, o, "name", false, &name, &rc) ||
	    !str_member(kt, o, "arn", true, &arn, &rc) ||
	    !str_member(kt, o, "version_id", false, &vid, &rc) ||
	    !member(kt, o, "stages", json_type_array, false, &stages, &rc) ||
	    !member(kt, o, "fetched_at", json_type_int, false, &fetched, &rc) ||
	    !member(kt, o, "stale", json_type_boolean, false, &stale, &rc))
		return rc;
	t = json_object_get_int64(fetched);
	if (t < 0 || t == INT64_MAX)
		return garbled(kt, "is out of range", "fetched_at");
	n = json_object_array_length(stages);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(stages, i);

		s = json_object_get_string(e);
		if (!json_object_is_type(e, json_type_string) ||
		    strlen(s) != (size_t)json_object_get_string_len(e))
			return garbled(kt, "is not an array of strings", "stages");
	}
	rc = get_value(kt, o, v);
	if (rc != KEYTURN_OK)
		return rc;
	if ((rc = copy_str(kt, name, &v->name)) != KEYTURN_OK ||
	    (rc = copy_str(kt, arn, &v->arn)) != KEYTURN_OK ||
	    (rc = copy_str(kt, vid, &v->version_id)) != KEYTURN_OK)
		return rc;
	v->stages = calloc(n > 0 ? n : 1, sizeof(*v->stages));
	if (v->stages == NULL)
		return set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
	for (; v->nstages < n; v->nstages++) {
		s = json_object_get_string(json_object_array_get_idx(stages, v->nstages));
		if ((rc = copy_str(kt, s, &v->stages[v->nstages])) != KEYTURN_OK)
			return rc;
	}
	v->fetched_at = t;
	v->stale = json_object_get_boolean(stale) ? 1 : 0;
	return KEYTURN_OK;
}

/* Ends a watch: its connection carries nothing but news, so it is closed. */
static void watch_end(keyturn_t *kt)
{
	if (kt->watch == NULL)
		return;
	kt_transport_disconnect(&kt->tr);
	for (size_t i = 0; i < kt->nwatch; i++)
		free(kt->watch[i]);
	free(kt->watch);
	kt->watch = NULL;
	kt->nwatch = 0;
}

/* Starts a call on kt: ends a watch, forgets the last answer and message. */
static int begin(keyturn_t *kt)
{
	if (kt == NULL)
		return KEYTURN_E_INVALID;
	watch_end(kt);
	kt_buf_reset(&kt->answer);
	kt->msg[0] = '\0';
	return KEYTURN_OK;
}

keyturn_t *keyturn_open(const char *socket_path, int *err)
{
	keyturn_t *kt = NULL;
	bool no_env = err != NULL && *err == KT_OPEN_NO_ENV;
	int rc = KEYTURN_OK;

	socket_path = kt_transport_path(socket_path, !no_env);
	kt = calloc(1, sizeof(*kt));
	if (kt == NULL) {
		rc = KEYTURN_E_NOMEM;
		goto out;
	}
	kt_buf_init(&kt->answer, KT_PROTO_MAX_FRAME);
	if (kt_transport_init(&kt->tr, socket_path) < 0) {
		rc = KEYTURN_E_INVALID;
		free(kt);
		kt = NULL;
		goto out;
	}
	kt->tr.no_env = no_env;
out:
	if (err != NULL)
		*err = rc;
	return kt;
}

void keyturn_close(keyturn_t *kt)
{
	if (kt == NULL)
		return;
	watch_end(kt);
	kt_transport_disconnect(&kt->tr);
	kt_buf_free(&kt->answer);
	kt_free_wiped(kt, sizeof(*kt));
}

int keyturn_set_timeout(keyturn_t *kt, int timeout_ms)
{
	if (kt == NULL || timeout_ms <= 0)
		return KEYTURN_E_INVALID;
	kt->tr.timeout_ms = timeout_ms;
	return KEYTURN_OK;
}

const char *keyturn_last_message(const keyturn_t *kt)
{
	return kt != NULL ? kt->msg : "";
}

const char *keyturn_last_answer(const keyturn_t *kt, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (kt == NULL || kt->answer.len == 0)
		return NULL;
	if (len != NULL)
		*len = kt->answer.len;
	return kt->answer.data;
}

/* NULL is "not given"; an empty string is a mistake of the caller's. */
static bool bad_opt(const char *s)
{
	return s != NULL && *s == '\0';
}

int keyturn_get(keyturn_t *kt, const char *name, const char *stage, const char *version_id,
		const char *key, keyturn_value_t **out)
{
	struct json_object *ans = NULL;
	keyturn_value_t *v = NULL;
	struct req r;
	int rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (out == NULL || name == NULL || *name == '\0' || bad_opt(stage) || bad_opt(version_id) ||
	    bad_opt(key))
		return set_msg(kt, KEYTURN_E_INVALID,
			       "keyturn_get: a name and an output are "
			       "required; stage, version_id and key are NULL or not empty");
	req_begin(&r, "get");
	req_opt(&r, "secret", name);
	req_opt(&r, "stage", stage);
	req_opt(&r, "version_id", version_id);
	req_opt(&r, "key", key);
	req_end(&r);
	rc = call(kt, &r, &ans);
	if (rc != KEYTURN_OK)
		goto out;
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		rc = set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
		goto out;
	}
	rc = get_answer(kt, ans, v);
	if (rc == KEYTURN_OK) {
		*out = v;
		v = NULL;
	}
out:
	keyturn_value_free(v);
	kt_json_put_wiped(ans);
	return rc;
}

/* An answer handed to the caller whole, as the daemon sent it. */
static int json_copy(keyturn_t *kt, char **json)
{
	if (json == NULL)
		return KEYTURN_OK;
	*json = kt_strndup(kt->answer.data, kt->answer.len);
	return *json != NULL ? KEYTURN_OK : set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
}

int keyturn_refresh(keyturn_t *kt, const char *name, char **json)
{
	struct json_object *ans = NULL;
	const char *s;
	struct req r;
	int rc;

	if (json != NULL)
		*json = NULL;
	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (name == NULL || *name == '\0')
		return set_msg(kt, KEYTURN_E_INVALID, "keyturn_refresh: a name is required");
	req_begin(&r, "refresh");
	req_opt(&r, "secret", name);
	req_end(&r);
	rc = call(kt, &r, &ans);
	if (rc == KEYTURN_OK && str_member(kt, ans, "name", false, &s, &rc))
		rc = json_copy(kt, json);
	kt_json_put_wiped(ans);
	return rc;
}

/* An op without arguments whose whole answer goes back to the caller as
 * JSON (list, status): sends it and returns the parsed answer. */
static int plain_call(keyturn_t *kt, const char *op, char **json, struct json_object **ans)
{
	struct req r;
	int rc;

	*ans = NULL;
	if (json != NULL)
		*json = NULL;
	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (json == NULL)
		return set_msg(kt, KEYTURN_E_INVALID, "keyturn_%s: no place for the answer", op);
	req_begin(&r, op);
	req_end(&r);
	return call(kt, &r, ans);
}

/* The most secrets keyturn_list() gathers over pages: a daemon that never
 * stops handing out pages is garbled, not followed for ever. */
#define LIST_MAX_SECRETS 1000000

/* Checks one page of list: "secrets" an array of objects with a name, and
 * "next", when present, a token after the previous one on a page that is
 * not empty. *next is NULL on the last page. */
static int list_page(keyturn_t *kt, struct json_object *ans, const char *prev,
		     struct json_object **secrets, const char **next)
{
	struct json_object *n;
	const char *s;
	int rc = KEYTURN_OK;

	*next = NULL;
	if (!member(kt, ans, "secrets", json_type_array, false, secrets, &rc))
		return rc;
	for (size_t i = 0; i < json_object_array_length(*secrets); i++) {
		struct json_object *e = json_object_array_get_idx(*secrets, i);

		if (!json_object_is_type(e, json_type_object))
			return garbled(kt, "is not an array of objects", "secrets");
		if (!str_member(kt, e, "name", false, &s, &rc))
			return rc;
	}
	if (!json_object_object_get_ex(ans, "next", &n))
		return KEYTURN_OK;
	if (!str_member(kt, ans, "next", false, next, &rc))
		return rc;
	/* Tokens are opaque, but each page must move on: a page with a token
	 * holds something, and the token is never one seen before. */
	if (**next == '\0' || json_object_array_length(*secrets) == 0 ||
	    (prev != NULL && strcmp(*next, prev) <= 0))
		return garbled(kt, "does not move on to a new page", "next");
	return KEYTURN_OK;
}

/* Follows the daemon's pages ("next") and hands back one answer with every
 * secret: a single page as it came, several pages joined. */
int keyturn_list(keyturn_t *kt, char **json)
{
	struct json_object *ans = NULL, *secrets, *all = NULL, *o = NULL;
	const char *next = NULL, *s;
	char *token = NULL;
	struct req r;
	int rc;

	if (json != NULL)
		*json = NULL;
	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (json == NULL)
		return set_msg(kt, KEYTURN_E_INVALID, "keyturn_list: no place for the answer");
	for (;;) {
		req_begin(&r, "list");
		req_opt(&r, "next", token);
		req_end(&r);
		rc = call(kt, &r, &ans);
		if (rc != KEYTURN_OK ||
		    (rc = list_page(kt, ans, token, &secrets, &next)) != KEYTURN_OK)
			goto out;
		if (all == NULL && next == NULL) {
			rc = json_copy(kt, json);
			goto out;
		}
		if (all == NULL && (all = json_object_new_array()) == NULL)
			goto nomem;
		for (size_t i = 0; i < json_object_array_length(secrets); i++) {
			struct json_object *e = json_object_array_get_idx(secrets, i);

			if (json_object_array_add(all, json_object_get(e)) < 0) {
				json_object_put(e);
				goto nomem;
			}
		}
		if (json_object_array_length(all) > LIST_MAX_SECRETS) {
			rc = garbled(kt, "holds more than a million secrets", "secrets");
			goto out;
		}
		if (next == NULL)
			break;
		free(token);
		if ((token = kt_strdup(next)) == NULL)
			goto nomem;
		/* Not wiped: a list holds no value, and the entries taken from
		 * this page are shared with it. */
		json_object_put(ans);
		ans = NULL;
	}
	o = json_object_new_object();
	if (o == NULL || json_object_object_add(o, "ok", json_object_new_boolean(1)) < 0 ||
	    json_object_object_add(o, "secrets", all) < 0)
		goto nomem;
	all = NULL;
	s = json_object_to_json_string_ext(o,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL || (*json = kt_strdup(s)) == NULL)
		goto nomem;
	rc = KEYTURN_OK;
	goto out;
nomem:
	rc = set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
out:
	json_object_put(all);
	json_object_put(o);
	free(token);
	json_object_put(ans);
	return rc;
}

int keyturn_status(keyturn_t *kt, char **json)
{
	struct json_object *ans = NULL;
	const char *s;
	int rc;

	rc = plain_call(kt, "status", json, &ans);
	if (rc == KEYTURN_OK && str_member(kt, ans, "version", false, &s, &rc))
		rc = json_copy(kt, json);
	kt_json_put_wiped(ans);
	return rc;
}

int keyturn_verify(keyturn_t *kt, const char *user, const char *password, size_t password_len,
		   const char *service, const char *rhost, const char *tty, int *match)
{
	struct json_object *ans = NULL, *m;
	struct req r;
	int rc;

	if (match != NULL)
		*match = 0;
	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (match == NULL || user == NULL || *user == '\0' ||
	    (password == NULL && password_len > 0))
		return set_msg(kt, KEYTURN_E_INVALID,
			       "keyturn_verify: a user, a password and a "
			       "place for the result are required");
	if (password_len > 0 && memchr(password, '\0', password_len) != NULL)
		return set_msg(kt, KEYTURN_E_INVALID,
			       "keyturn_verify: the password holds a NUL "
			       "byte");
	req_begin(&r, "verify");
	req_opt(&r, "user", user);
	req_str(&r, "password", password != NULL ? password : "", password_len);
	req_opt(&r, "service", service);
	req_opt(&r, "rhost", rhost);
	req_opt(&r, "tty", tty);
	req_end(&r);
	rc = call(kt, &r, &ans);
	/* Only a real boolean is a verdict; anything else fails closed. */
	if (rc == KEYTURN_OK && member(kt, ans, "match", json_type_boolean, false, &m, &rc) &&
	    opt_str_member(kt, ans, "stage", &rc) && opt_str_member(kt, ans, "source", &rc))
		*match = json_object_get_boolean(m) ? 1 : 0;
	kt_json_put_wiped(ans);
	return rc;
}

void keyturn_free_string(char *s)
{
	kt_str_free_wiped(s);
}

int keyturn_watch(keyturn_t *kt, const char *const *names, size_t n)
{
	struct json_object *ans = NULL, *list;
	struct req r;
	int rc;

	if ((rc = begin(kt)) != KEYTURN_OK)
		return rc;
	if (names == NULL || n == 0 || n > KEYTURN_WATCH_MAX)
		return set_msg(kt, KEYTURN_E_INVALID, "keyturn_watch: give 1 to %d names",
			       KEYTURN_WATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		if (names[i] == NULL || *names[i] == '\0')
			return set_msg(kt, KEYTURN_E_INVALID, "keyturn_watch: a name is empty");
	}
	/* The watch gets a connection of its own: one that carried earlier
	 * answers may be closed as idle at any moment. */
	kt_transport_disconnect(&kt->tr);
	req_begin(&r, "watch");
	if (r.rc == 0)
		r.rc = kt_buf_append(&r.b, ",\"secrets\":[", 12);
	for (size_t i = 0; i < n && r.rc == 0; i++) {
		if (i > 0)
			r.rc = kt_buf_append(&r.b, ",", 1);
		if (r.rc == 0)
			r.rc = kt_json_append_string(&r.b, names[i], strlen(names[i]));
	}
	if (r.rc == 0)
		r.rc = kt_buf_append(&r.b, "]", 1);
	req_end(&r);
	rc = call(kt, &r, &ans);
	if (rc != KEYTURN_OK || !member(kt, ans, "watching", json_type_array, false, &list, &rc))
		goto out;
	/* The daemon watches exactly what was asked, in that order. */
	if (json_object_array_length(list) != n) {
		rc = garbled(kt, "does not list the names asked for", "watching");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i);

		if (!json_object_is_type(e, json_type_string) ||
		    strcmp(json_object_get_string(e), names[i]) != 0) {
			rc = garbled(kt, "does not list the names asked for", "watching");
			goto out;
		}
	}
	kt->watch = calloc(n, sizeof(char *));
	if (kt->watch == NULL)
		goto nomem;
	for (; kt->nwatch < n; kt->nwatch++) {
		if ((kt->watch[kt->nwatch] = kt_strdup(names[kt->nwatch])) == NULL)
			goto nomem;
	}
	goto out;
nomem:
	watch_end(kt);
	rc = set_msg(kt, KEYTURN_E_NOMEM, "out of memory");
out:
	if (rc != KEYTURN_OK)
		kt_transport_disconnect(&kt->tr);
	kt_json_put_wiped(ans);
	return rc;
}

/* Checks one news frame of a watch: a change of a name being watched. */
static int watch_event(keyturn_t *kt, struct json_object *o, const char **name, const char **vid,
		       int64_t *at)
{
	struct json_object *t;
	const char *ev;
	int rc = KEYTURN_OK;
	size_t i;

	if (!str_member(kt, o, "event", false, &ev, &rc) ||
	    !str_member(kt, o, "name", false, name, &rc) ||
	    !str_member(kt, o, "version_id", false, vid, &rc) ||
	    !member(kt, o, "fetched_at", json_type_int, false, &t, &rc))
		return rc;
	if (strcmp(ev, "changed") != 0)
		return garbled(kt, "is not an event this library knows", "event");
	for (i = 0; i < kt->nwatch && strcmp(kt->watch[i], *name) != 0; i++)
		;
	if (i == kt->nwatch)
		return garbled(kt, "is not a name being watched", "name");
	*at = json_object_get_int64(t);
	if (*at < 0 || *at == INT64_MAX)
		return garbled(kt, "is out of range", "fetched_at");
	return KEYTURN_OK;
}

int keyturn_watch_next(keyturn_t *kt, int timeout_ms, char **name, char **version_id,
		       int64_t *fetched_at)
{
	struct json_object *ans = NULL;
	const char *n = NULL, *v = NULL;
	int64_t at = 0;
	int rc;

	if (name != NULL)
		*name = NULL;
	if (version_id != NULL)
		*version_id = NULL;
	if (fetched_at != NULL)
		*fetched_at = 0;
	if (kt == NULL)
		return KEYTURN_E_INVALID;
	kt_buf_reset(&kt->answer);
	kt->msg[0] = '\0';
	if (kt->watch == NULL)
		return set_msg(kt, KEYTURN_E_INVALID,
			       "keyturn_watch_next: no watch on this handle");
	rc = from_transport(kt, kt_transport_recv(&kt->tr, timeout_ms, &kt->answer));
	if (rc == KEYTURN_E_TIMEOUT)
		return rc;
	if (rc == KEYTURN_OK)
		rc = envelope(kt, &ans);
	if (rc == KEYTURN_OK)
		rc = watch_event(kt, ans, &n, &v, &at);
	if (rc == KEYTURN_OK &&
	    ((name != NULL && (rc = copy_str(kt, n, name)) != KEYTURN_OK) ||
	     (version_id != NULL && (rc = copy_str(kt, v, version_id)) != KEYTURN_OK))) {
		if (name != NULL) {
			free(*name);
			*name = NULL;
		}
	}
	if (rc == KEYTURN_OK && fetched_at != NULL)
		*fetched_at = at;
	/* Whatever else came (a last frame, a close, a garbled frame) ends
	 * the watch. */
	if (rc != KEYTURN_OK)
		watch_end(kt);
	kt_json_put_wiped(ans);
	return rc;
}

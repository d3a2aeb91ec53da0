/* The requests keyturnd answers. Each op is a row of one table: its name,
 * who may call it, and its handler. Handlers answer from the cache, or park
 * the request on its secret while a worker asks AWS; they never block. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "daemon.h"
#include "common/kt_base64.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "login.h"
#include "ops.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "server.h"

/* Fetches of uncached versions allowed per secret per refresh_min_interval. */
#define VERSION_FETCHES_PER_WINDOW 5

/* The most secrets, and about the most bytes of them, in one list answer
 * (a frame holds 1 MiB). */
#define LIST_PAGE_MAX 500
#define LIST_PAGE_BYTES (768u * 1024u)

enum op_who {
	WHO_ANY,          /* every local user; per-secret rules apply inside */
	WHO_ROOT_OR_SELF, /* root, or a caller asking about its own account */
};

struct op_ctx {
	struct kt_daemon *d;
	uint64_t conn_id;
	const struct kt_peer *peer;
	struct json_object *req;
	time_t now;         /* schedule clock (kt_sched_now) */
	struct kt_buf *out; /* where a cache hit may be written, or NULL */
	bool replay;        /* handled again after waiting: already audited */
	int waited;         /* the kt_wait_kind it waited on, 0 the first time */
};

typedef enum kt_op_result (*op_fn)(struct op_ctx *x, struct json_object **answer);

static enum kt_op_result op_get(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_refresh(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_list(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_status(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_verify(struct op_ctx *x, struct json_object **answer);

static const struct {
	const char *op;
	enum op_who who;
	op_fn fn;
} op_table[] = {
	{ "get", WHO_ANY, op_get },
	{ "refresh", WHO_ANY, op_refresh },
	{ "list", WHO_ANY, op_list },
	{ "status", WHO_ANY, op_status },
	{ "verify", WHO_ROOT_OR_SELF, op_verify },
};

static void audit(const struct op_ctx *x, const char *op, const char *secret, const char *result)
{
	if (x->replay)
		return;
	/* Refusals are worth an operator's attention at the default level. */
	if (strcmp(result, "allowed") == 0)
		log_info("access: op=%s secret=%s uid=%lu pid=%ld result=%s", op, secret,
			 (unsigned long)x->peer->uid, (long)x->peer->pid, result);
	else
		log_warn("access: op=%s secret=%s uid=%lu pid=%ld result=%s", op, secret,
			 (unsigned long)x->peer->uid, (long)x->peer->pid, result);
}

static struct json_object *ok_object(void)
{
	struct json_object *o = json_object_new_object();

	if (o != NULL)
		json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

static struct json_object *stages_json(char *const *stages, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_object_array_add(a, json_object_new_string(stages[i]));
	return a;
}

/* Stale: AWS fails, or AWSCURRENT moved to a version not fetched yet. */
static bool entry_stale(const struct kt_entry *e)
{
	return kt_entry_stale(e);
}

/* Reads an optional string member; false when present with another type,
 * empty, or holding a NUL. */
static bool opt_str(struct json_object *req, const char *key, const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null))
		return true;
	*out = kt_json_str(req, key);
	return *out != NULL && (*out)[0] != '\0';
}

/* The members that name things. They end up in log lines and messages, so a
 * control character in one is refused rather than passed on (a newline
 * would let a caller forge log lines). Passwords are not among them. */
static const char *const name_fields[] = { "op",   "secret",  "stage", "version_id", "key",
					    "user", "service", "rhost", "tty" };

static const char *bad_name_field(struct json_object *req)
{
	for (size_t i = 0; i < sizeof(name_fields) / sizeof(name_fields[0]); i++) {
		struct json_object *v;
		const char *s;

		if (!json_object_object_get_ex(req, name_fields[i], &v) ||
		    !json_object_is_type(v, json_type_string))
			continue;
		s = kt_json_str(req, name_fields[i]);
		if (s == NULL)
			return name_fields[i];
		for (; *s != '\0'; s++) {
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				return name_fields[i];
		}
	}
	return NULL;
}

/* The protocol's word for an AWS failure. */
static struct json_object *aws_failure(const char *name, const struct aws_error *err)
{
	switch (err->code) {
	case AWS_ERR_NOT_FOUND:
		return kt_proto_error(KT_PERR_NOT_FOUND, "%s: %s", name, err->message);
	case AWS_ERR_THROTTLED:
		return kt_proto_error(KT_PERR_THROTTLED, "%s: AWS is throttling requests: %s", name,
				      err->message);
	default:
		return kt_proto_error(KT_PERR_UNAVAILABLE, "%s: AWS %s: %s", name,
				      aws_errc_name(err->code), err->message);
	}
}

/* Finds the entry a request names and checks the caller may read it. */
static struct kt_entry *lookup(struct op_ctx *x, const char *op, struct json_object **answer)
{
	const char *name = kt_json_str(x->req, "secret");
	struct kt_entry *e;
	char shown[160];

	if (name == NULL || name[0] == '\0') {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"secret\" must be a non-empty string");
		return NULL;
	}
	e = kt_cache_find(&x->d->cache, name);
	kt_json_printable(name, shown, sizeof(shown));
	/* Secrets that only logins use are for verify, never for reading. A
	 * caller other than root gets one answer for a name it may not read,
	 * whether it is configured or not, so it cannot probe for names; the
	 * log (for root) still tells the two apart. */
	if (e == NULL || e->login_only) {
		audit(x, op, shown, "not_found");
		if (x->peer->uid != 0) {
			x->d->denied++;
			*answer = kt_proto_error(KT_PERR_DENIED, "uid %lu may not read %s",
						 (unsigned long)x->peer->uid, shown);
		} else {
			*answer = kt_proto_error(KT_PERR_NOT_FOUND, "no secret named %s is configured",
						 shown);
		}
		return NULL;
	}
	if (!kt_acl_may_read(e->cfg, x->peer)) {
		x->d->denied++;
		audit(x, op, e->name, "denied");
		*answer = kt_proto_error(KT_PERR_DENIED, "uid %lu may not read %s",
					 (unsigned long)x->peer->uid, shown);
		return NULL;
	}
	return e;
}

/* Puts the value (or one JSON key of it) into the answer. */
static struct json_object *value_answer(const struct kt_entry *e, const struct kt_value *v,
					const char *key, bool stale)
{
	struct json_object *o = ok_object(), *doc = NULL, *member;
	char shown[160];

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "arn", e->arn != NULL ? json_object_new_string(e->arn) : NULL);
	json_object_object_add(o, "version_id", json_object_new_string(v->version_id));
	json_object_object_add(o, "stages", stages_json(v->stages, v->nstages));
	if (key != NULL) {
		if (!v->binary)
			doc = kt_json_parse((const char *)v->data, v->len);
		if (doc == NULL || !json_object_is_type(doc, json_type_object)) {
			kt_json_put_wiped(doc);
			json_object_put(o);
			return kt_proto_error(KT_PERR_BAD_REQUEST,
					      "%s is not a JSON object, so it has no key %s", e->name,
					      kt_json_printable(key, shown, sizeof(shown)));
		}
		if (!json_object_object_get_ex(doc, key, &member)) {
			kt_json_put_wiped(doc);
			json_object_put(o);
			return kt_proto_error(KT_PERR_NOT_FOUND, "%s has no key %s", e->name,
					      kt_json_printable(key, shown, sizeof(shown)));
		}
		if (json_object_is_type(member, json_type_object) ||
		    json_object_is_type(member, json_type_array) ||
		    json_object_is_type(member, json_type_null)) {
			kt_json_put_wiped(doc);
			json_object_put(o);
			return kt_proto_error(KT_PERR_BAD_REQUEST, "key %s of %s is not a string",
					      kt_json_printable(key, shown, sizeof(shown)), e->name);
		}
		/* A string by its length (it may hold a NUL); a number or a
		 * boolean as its JSON text. */
		json_object_object_add(o, "string",
				       json_object_is_type(member, json_type_string)
				       ? json_object_new_string_len(json_object_get_string(member),
								    json_object_get_string_len(member))
				       : json_object_new_string(json_object_get_string(member)));
		kt_json_put_wiped(doc);
	} else if (v->binary) {
		char *b64 = kt_base64_encode(v->data, v->len);

		json_object_object_add(o, "binary", b64 != NULL ? json_object_new_string(b64) : NULL);
		kt_str_free_wiped(b64);
	} else {
		json_object_object_add(o, "string",
				       json_object_new_string_len((const char *)v->data, (int)v->len));
	}
	json_object_object_add(o, "fetched_at", json_object_new_int64(v->fetched_at));
	json_object_object_add(o, "stale", json_object_new_boolean(stale));
	return o;
}

/* Appends a framed get answer for v without building json-c objects: the
 * same members, in the same order, as value_answer() without a key. Cache
 * hits are the daemon's hot path, and json-c's serialiser was most of it. */
static int write_hit(struct kt_buf *out, const struct kt_entry *e, const struct kt_value *v,
		     bool stale)
{
	static const char head[] = "\0\0\0\0{\"ok\":true,\"name\":"; /* length patched below */
	size_t start = out->len, len;
	char num[64];
	int rc;

	rc = kt_buf_append(out, head, sizeof(head) - 1);
	if (rc == 0)
		rc = kt_json_append_string(out, e->name, strlen(e->name));
	if (rc == 0)
		rc = kt_buf_append_str(out, ",\"arn\":");
	if (rc == 0)
		rc = e->arn != NULL ? kt_json_append_string(out, e->arn, strlen(e->arn))
				    : kt_buf_append_str(out, "null");
	if (rc == 0)
		rc = kt_buf_append_str(out, ",\"version_id\":");
	if (rc == 0)
		rc = kt_json_append_string(out, v->version_id, strlen(v->version_id));
	if (rc == 0)
		rc = kt_buf_append_str(out, ",\"stages\":[");
	for (size_t i = 0; rc == 0 && i < v->nstages; i++) {
		if (i > 0)
			rc = kt_buf_append(out, ",", 1);
		if (rc == 0)
			rc = kt_json_append_string(out, v->stages[i], strlen(v->stages[i]));
	}
	if (rc == 0 && v->binary) {
		char *b64 = kt_base64_encode(v->data, v->len);

		rc = b64 != NULL ? kt_buf_printf(out, "],\"binary\":\"%s\"", b64) : -ENOMEM;
		kt_str_free_wiped(b64);
	} else if (rc == 0) {
		rc = kt_buf_append_str(out, "],\"string\":");
		if (rc == 0)
			rc = kt_json_append_string(out, (const char *)v->data, v->len);
	}
	snprintf(num, sizeof(num), ",\"fetched_at\":%lld,\"stale\":%s}", (long long)v->fetched_at,
		 stale ? "true" : "false");
	if (rc == 0)
		rc = kt_buf_append_str(out, num);
	len = out->len - start - KT_PROTO_HDR;
	if (rc == 0 && len > KT_PROTO_MAX_FRAME)
		rc = -EMSGSIZE;
	if (rc < 0) {
		kt_buf_truncate(out, start);
		return rc;
	}
	out->data[start] = (char)(len >> 24);
	out->data[start + 1] = (char)(len >> 16);
	out->data[start + 2] = (char)(len >> 8);
	out->data[start + 3] = (char)len;
	return 0;
}

/* Serves AWSCURRENT, or parks the request while it is fetched. */
static enum kt_op_result get_current(struct op_ctx *x, struct kt_entry *e, const char *key,
				     struct json_object **answer)
{
	struct kt_daemon *d = x->d;

	if (e->cur.data != NULL) {
		if (!kt_entry_servable(e, x->now, d->cfg->max_stale)) {
			*answer = e->superseded
				? kt_proto_error(KT_PERR_UNAVAILABLE,
						 "%s: AWSCURRENT moved %lld s ago to a version keyturnd "
						 "could not fetch (max_stale %ld): %s", e->name,
						 (long long)(x->now - e->superseded_at),
						 d->cfg->max_stale, e->last_error)
				: kt_proto_error(KT_PERR_UNAVAILABLE,
						 "%s: no answer from AWS for %lld s (max_stale %ld): %s",
						 e->name, (long long)(x->now - e->last_ok),
						 d->cfg->max_stale, e->last_error);
			return KT_OP_ANSWER;
		}
		if (key == NULL && x->out != NULL && write_hit(x->out, e, &e->cur, entry_stale(e)) == 0)
			return KT_OP_WRITTEN;
		*answer = value_answer(e, &e->cur, key, entry_stale(e));
		return KT_OP_ANSWER;
	}
	if (!e->in_flight) {
		if (e->failures > 0 && x->now < e->next_check) {
			*answer = kt_proto_error(d->throttled_until > x->now ? KT_PERR_THROTTLED
									      : KT_PERR_UNAVAILABLE,
						 "%s: not fetched yet: %s", e->name, e->last_error);
			return KT_OP_ANSWER;
		}
		kt_daemon_fetch_current(d, e);
	}
	if (kt_daemon_park(d, e, x->conn_id, x->peer, KT_WAIT_CURRENT, x->req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

static enum kt_op_result op_get(struct op_ctx *x, struct json_object **answer)
{
	const char *stage, *vid, *key;
	const struct kt_value *v;
	struct kt_entry *e;

	if (!opt_str(x->req, "stage", &stage) || !opt_str(x->req, "version_id", &vid) ||
	    !opt_str(x->req, "key", &key)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"stage\", \"version_id\" and \"key\" must be non-empty strings");
		return KT_OP_ANSWER;
	}
	e = lookup(x, "get", answer);
	if (e == NULL)
		return KT_OP_ANSWER;
	audit(x, "get", e->name, "allowed");
	if (key == NULL)
		key = e->cfg->key;
	if (e->gone) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s no longer exists in AWS: %s", e->name,
					 e->last_error);
		return KT_OP_ANSWER;
	}
	if (vid == NULL && (stage == NULL || strcmp(stage, "AWSCURRENT") == 0))
		return get_current(x, e, key, answer);
	if (vid == NULL)
		vid = kt_cache_version_for_stage(e, stage);
	/* The last DescribeSecret listed every stage: one it did not list is
	 * not there, and asking AWS again would only cost a call. */
	if (vid == NULL && e->stages_map != NULL) {
		char shown[80];

		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s has no version labelled %s", e->name,
					 kt_json_printable(stage, shown, sizeof(shown)));
		return KT_OP_ANSWER;
	}
	v = vid != NULL ? kt_cache_value(e, vid) : NULL;
	/* Before the first check there is no stage map; a value fetched by
	 * stage says itself which stages it carries. */
	if (v == NULL && vid == NULL && e->stages_map == NULL)
		v = kt_cache_value_with_stage(e, stage);
	if (v != NULL && stage != NULL && kt_cache_version_for_stage(e, stage) != NULL &&
	    strcmp(kt_cache_version_for_stage(e, stage), v->version_id) != 0) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s: version %s does not carry %s",
					 e->name, v->version_id, stage);
		return KT_OP_ANSWER;
	}
	if (v != NULL) {
		*answer = value_answer(e, v, key, false);
		return KT_OP_ANSWER;
	}
	if (!e->in_flight) {
		/* Versions that are not cached cost an AWS call each, and a
		 * caller could ask for made-up ones in a loop. */
		long window = x->d->cfg->refresh_min_interval;

		if (x->now - e->version_window >= window) {
			e->version_window = x->now;
			e->version_fetches = 0;
		}
		if (e->version_fetches >= VERSION_FETCHES_PER_WINDOW) {
			*answer = kt_proto_error(KT_PERR_THROTTLED,
						 "%s: too many reads of uncached versions; try again in %lld s",
						 e->name, (long long)(e->version_window + window - x->now));
			return KT_OP_ANSWER;
		}
		e->version_fetches++;
		kt_daemon_fetch_version(x->d, e, kt_json_str(x->req, "version_id"), stage);
	}
	if (kt_daemon_park(x->d, e, x->conn_id, x->peer, KT_WAIT_VERSION, x->req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

static struct json_object *metadata(const struct kt_entry *e, time_t now, long max_stale)
{
	struct json_object *o = json_object_new_object();
	const char *cur = kt_cache_version_for_stage(e, "AWSCURRENT");

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "id", json_object_new_string(e->cfg->id));
	json_object_object_add(o, "arn", e->arn != NULL ? json_object_new_string(e->arn) : NULL);
	json_object_object_add(o, "version_id", e->cur.version_id != NULL
			       ? json_object_new_string(e->cur.version_id) : NULL);
	json_object_object_add(o, "stages", stages_json(e->cur.stages, e->cur.nstages));
	json_object_object_add(o, "fetched_at", json_object_new_int64(e->cur.fetched_at));
	json_object_object_add(o, "checked_at", json_object_new_int64(e->checked_at));
	json_object_object_add(o, "stale", json_object_new_boolean(entry_stale(e)));
	json_object_object_add(o, "available", json_object_new_boolean(
		e->cur.data != NULL && !e->gone && kt_entry_servable(e, now, max_stale)));
	json_object_object_add(o, "current_version_in_aws", cur != NULL ? json_object_new_string(cur) : NULL);
	/* Deadlines are kept on the schedule clock and shown as wall-clock time. */
	json_object_object_add(o, "next_check",
			       json_object_new_int64(kt_sched_to_wall(e->next_check, now, time(NULL))));
	json_object_object_add(o, "rotation_enabled", json_object_new_boolean(e->rot.enabled));
	json_object_object_add(o, "next_rotation", json_object_new_int64(e->rot.rotation_date));
	return o;
}

static enum kt_op_result op_refresh(struct op_ctx *x, struct json_object **answer)
{
	struct kt_daemon *d = x->d;
	struct kt_entry *e = lookup(x, "refresh", answer);
	long wait;

	if (e == NULL)
		return KT_OP_ANSWER;
	audit(x, "refresh", e->name, "allowed");
	if (!e->in_flight) {
		/* A refresh is a cheap check, but callers may loop on it; one per
		 * secret per refresh_min_interval reaches AWS. */
		wait = d->cfg->refresh_min_interval - (long)(x->now - e->last_refresh);
		if (e->last_refresh != 0 && wait > 0) {
			*answer = kt_proto_error(KT_PERR_THROTTLED,
						 "%s was checked %lld s ago; refresh again in %ld s",
						 e->name, (long long)(x->now - e->last_refresh), wait);
			return KT_OP_ANSWER;
		}
		if (d->throttled_until > x->now) {
			*answer = kt_proto_error(KT_PERR_THROTTLED,
						 "AWS is throttling keyturnd; refresh again in %lld s",
						 (long long)(d->throttled_until - x->now));
			return KT_OP_ANSWER;
		}
		e->last_refresh = x->now;
		kt_daemon_check(d, e);
	}
	if (kt_daemon_park(d, e, x->conn_id, x->peer, KT_WAIT_REFRESH, x->req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

/* One page of list: at most LIST_PAGE_MAX secrets and LIST_PAGE_BYTES of
 * them, so that thousands of secrets never make an answer over 1 MiB. A
 * page that stops early says where to go on ("next": the last name it
 * holds, opaque to callers; the cache is sorted by name, so the next page
 * starts with a binary search). */
static enum kt_op_result op_list(struct op_ctx *x, struct json_object **answer)
{
	const struct kt_cache *c = &x->d->cache;
	struct json_object *o = NULL, *arr = NULL, *v;
	const char *after = NULL, *last = NULL;
	long long limit = LIST_PAGE_MAX;
	size_t bytes = 0, n = 0, i;

	if (json_object_object_get_ex(x->req, "limit", &v) &&
	    !json_object_is_type(v, json_type_null) &&
	    (!json_object_is_type(v, json_type_int) || (limit = json_object_get_int64(v)) < 1)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"limit\" must be a positive integer");
		return KT_OP_ANSWER;
	}
	if (limit > LIST_PAGE_MAX)
		limit = LIST_PAGE_MAX;
	if (!opt_str(x->req, "next", &after)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"next\" must be the non-empty token of the previous page");
		return KT_OP_ANSWER;
	}
	audit(x, "list", "*", "allowed");
	o = ok_object();
	arr = json_object_new_array();
	if (o == NULL || arr == NULL)
		goto nomem;
	for (i = kt_cache_after(c, after); i < c->n; i++) {
		struct kt_entry *e = c->entries[i];
		struct json_object *m;
		size_t len = 0;

		if (e->login_only || !kt_acl_may_read(e->cfg, x->peer))
			continue;
		if (n == (size_t)limit)
			break;
		m = metadata(e, x->now, x->d->cfg->max_stale);
		if (m == NULL || json_object_to_json_string_length(
					 m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					 &len) == NULL) {
			json_object_put(m);
			goto nomem;
		}
		if (n > 0 && bytes + len + 1 > LIST_PAGE_BYTES) {
			json_object_put(m);
			break;
		}
		bytes += len + 1;
		if (json_object_array_add(arr, m) < 0) {
			json_object_put(m);
			goto nomem;
		}
		last = e->name;
		n++;
	}
	json_object_object_add(o, "secrets", arr);
	/* Stopped at a secret this caller may read: more remain. */
	if (i < c->n && last != NULL)
		json_object_object_add(o, "next", json_object_new_string(last));
	*answer = o;
	return KT_OP_ANSWER;
nomem:
	json_object_put(arr);
	json_object_put(o);
	*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
	return KT_OP_ANSWER;
}

/* Logins whose offline verifiers could not be written, or were removed as
 * superseded, since when and why (login_offline.c): offline checks for them
 * fail until a write succeeds. Root sees every one, others those of the
 * secrets they may read; the first 32 are listed, all are counted. */
static struct json_object *offline_unavailable(const struct op_ctx *x)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int64_t n = 0;

	for (size_t i = 0; arr != NULL && i < x->d->cache.n; i++) {
		const struct kt_entry *e = x->d->cache.entries[i];
		struct json_object *eo;

		if (e->offline_failed_at == 0 ||
		    (x->peer->uid != 0 && (e->login_only || !kt_acl_may_read(e->cfg, x->peer))))
			continue;
		if (n++ >= 32)
			continue;
		eo = json_object_new_object();
		json_object_object_add(eo, "secret", json_object_new_string(e->name));
		json_object_object_add(eo, "since", json_object_new_int64(e->offline_failed_at));
		json_object_object_add(eo, "message", json_object_new_string(e->offline_error));
		json_object_array_add(arr, eo);
	}
	if (o != NULL) {
		json_object_object_add(o, "count", json_object_new_int64(n));
		json_object_object_add(o, "secrets", arr);
	} else {
		json_object_put(arr);
	}
	return o;
}

static enum kt_op_result op_status(struct op_ctx *x, struct json_object **answer)
{
	struct kt_daemon *d = x->d;
	struct json_object *o = ok_object(), *b = json_object_new_object(),
			   *s = json_object_new_object(), *errs = json_object_new_array(),
			   *m = json_object_new_object();
	struct kt_secure_stats sec;
	size_t cached = 0, stale = 0, failing = 0;
	const char *state = "ok";

	audit(x, "status", "-", "allowed");
	for (size_t i = 0; i < d->cache.n; i++) {
		struct kt_entry *e = d->cache.entries[i];

		cached += e->cur.data != NULL;
		stale += e->cur.data != NULL && entry_stale(e);
		failing += e->failures > 0;
	}
	if (d->throttled_until > x->now)
		state = "throttled";
	else if (failing > 0 && failing == d->cache.n)
		state = "unreachable";
	else if (failing > 0)
		state = "degraded";
	json_object_object_add(b, "state", json_object_new_string(state));
	json_object_object_add(b, "region", json_object_new_string(aws_client_region(d->aws)));
	json_object_object_add(b, "endpoint", json_object_new_string(aws_client_endpoint(d->aws)));
	json_object_object_add(b, "aws_requests", json_object_new_int64((int64_t)aws_client_requests_sent(d->aws)));
	json_object_object_add(b, "throttled_until", json_object_new_int64(
		d->throttled_until > x->now ? kt_sched_to_wall(d->throttled_until, x->now, time(NULL)) : 0));
	json_object_object_add(s, "configured", json_object_new_int64((int64_t)d->cache.n));
	json_object_object_add(s, "cached", json_object_new_int64((int64_t)cached));
	json_object_object_add(s, "stale", json_object_new_int64((int64_t)stale));
	json_object_object_add(s, "failing", json_object_new_int64((int64_t)failing));
	/* A caller sees the errors of the secrets it may read, and no others. */
	for (size_t k = 0; errs != NULL && k < KT_LAST_ERRORS; k++) {
		size_t i = (d->error_next + k) % KT_LAST_ERRORS;
		struct kt_entry *e;
		struct json_object *eo;

		if (d->errors[i].at == 0)
			continue;
		e = kt_cache_find(&d->cache, d->errors[i].secret);
		if (x->peer->uid != 0 && (e == NULL || !kt_acl_may_read(e->cfg, x->peer)))
			continue;
		eo = json_object_new_object();
		json_object_object_add(eo, "secret", json_object_new_string(d->errors[i].secret));
		json_object_object_add(eo, "message", json_object_new_string(d->errors[i].message));
		json_object_object_add(eo, "at", json_object_new_int64(d->errors[i].at));
		json_object_array_add(errs, eo);
	}
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "uptime", json_object_new_int64(x->now - d->started));
	json_object_object_add(o, "backend", b);
	json_object_object_add(o, "secrets", s);
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)kt_server_connections(d->server)));
	kt_secure_stats(&sec);
	json_object_object_add(m, "size", json_object_new_int64((int64_t)sec.size));
	json_object_object_add(m, "used", json_object_new_int64((int64_t)sec.used));
	json_object_object_add(m, "refused", json_object_new_int64((int64_t)sec.refused));
	json_object_object_add(o, "locked_memory", m);
	json_object_object_add(o, "unsent_bytes",
			       json_object_new_int64((int64_t)kt_server_unsent(d->server)));
	json_object_object_add(o, "refused_connections",
			       json_object_new_int64((int64_t)kt_server_refused(d->server)));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)d->requests));
	json_object_object_add(o, "denied", json_object_new_int64((int64_t)d->denied));
	json_object_object_add(o, "last_errors", errs);
	json_object_object_add(o, "socket", kt_server_socket_json(d->server));
	json_object_object_add(o, "offline_unavailable", offline_unavailable(x));
	*answer = o;
	return KT_OP_ANSWER;
}

static enum kt_op_result op_verify(struct op_ctx *x, struct json_object **answer)
{
	return kt_login_verify(x->d, x->conn_id, x->peer, x->req, x->waited, x->now, answer);
}

/* Whether the caller may use an op at all, before any per-secret rule. */
static bool who_allows(enum op_who who, const struct op_ctx *x)
{
	const char *user;

	if (who == WHO_ANY || x->peer->uid == 0)
		return true;
	user = kt_json_str(x->req, "user");
	return user != NULL && strcmp(user, x->peer->name) == 0;
}

static enum kt_op_result handle(struct kt_daemon *d, uint64_t conn_id, const struct kt_peer *peer,
				struct json_object *req, struct json_object **answer,
				struct kt_buf *out, bool replay, int waited)
{
	struct op_ctx x = { d, conn_id, peer, req, kt_sched_now(), out, replay, waited };
	struct json_object *v;
	const char *op = kt_json_str(req, "op"), *bad;
	char shown[80];

	*answer = NULL;
	/* Nothing may park once the daemon stops: it would never be answered. */
	if (d->stopping) {
		*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "keyturnd is stopping");
		return KT_OP_ANSWER;
	}
	if (!json_object_object_get_ex(req, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != KT_PROTO_VERSION) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"v\" must be %d", KT_PROTO_VERSION);
		return KT_OP_ANSWER;
	}
	if (op == NULL) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"op\" must be a string");
		return KT_OP_ANSWER;
	}
	if ((bad = bad_name_field(req)) != NULL) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"%s\" holds a control character or a NUL", bad);
		return KT_OP_ANSWER;
	}
	for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++) {
		if (strcmp(op, op_table[i].op) != 0)
			continue;
		if (!who_allows(op_table[i].who, &x)) {
			d->denied++;
			audit(&x, op, "-", "denied");
			*answer = kt_proto_error(KT_PERR_DENIED, "uid %lu may not %s for another account",
						 (unsigned long)peer->uid, op);
			return KT_OP_ANSWER;
		}
		return op_table[i].fn(&x, answer);
	}
	*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "unknown op \"%s\"",
				 kt_json_printable(op, shown, sizeof(shown)));
	return KT_OP_ANSWER;
}

enum kt_op_result kt_ops_handle(struct kt_daemon *d, uint64_t conn_id, const struct kt_peer *peer,
				struct json_object *req, struct json_object **answer,
				struct kt_buf *out)
{
	return handle(d, conn_id, peer, req, answer, out, false, 0);
}

/* Whether a finished version job was the one this request waits for. */
static bool job_is_for(const struct kt_job *job, struct json_object *req)
{
	const char *vid = kt_json_str(req, "version_id"), *stage = kt_json_str(req, "stage");

	if (job->kind != KT_JOB_GET || (job->version_id == NULL && job->stage == NULL))
		return false;
	if (vid != NULL)
		return job->version_id != NULL && strcmp(vid, job->version_id) == 0;
	return stage != NULL && job->stage != NULL && strcmp(stage, job->stage) == 0;
}

enum kt_op_result kt_ops_resume(struct kt_daemon *d, struct kt_parked *p, struct kt_entry *e,
				const struct kt_job *job, struct json_object **answer)
{
	const char *name = kt_json_str(p->req, "secret");
	struct json_object *o;

	*answer = NULL;
	if (e == NULL) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s is no longer configured",
					 name != NULL ? name : "the secret");
		return KT_OP_ANSWER;
	}
	/* A refresh takes the outcome of a check (or of the fetch a check
	 * led to), not of someone else's read of another version. */
	if (p->kind == KT_WAIT_REFRESH && job != NULL &&
	    (job->purpose == PURPOSE_CHECK || job->purpose == PURPOSE_CURRENT)) {
		if (job->rc < 0) {
			*answer = aws_failure(e->name, &job->err);
			return KT_OP_ANSWER;
		}
		o = metadata(e, kt_sched_now(), d->cfg->max_stale);
		if (o != NULL)
			json_object_object_add(o, "ok", json_object_new_boolean(true));
		*answer = o;
		return KT_OP_ANSWER;
	}
	if (p->kind == KT_WAIT_VERSION && job != NULL && job_is_for(job, p->req)) {
		const char *vid = kt_json_str(p->req, "version_id"), *key = kt_json_str(p->req, "key");
		const struct kt_value *v;

		if (job->rc < 0) {
			*answer = aws_failure(e->name, &job->err);
			return KT_OP_ANSWER;
		}
		/* Answer from what this job fetched, so a request can never go
		 * round fetching again. */
		v = vid != NULL ? kt_cache_value(e, vid)
				: kt_cache_value_with_stage(e, kt_json_str(p->req, "stage"));
		/* Not there: locked memory had no room for it (the cache logged
		 * why, in last_error). */
		*answer = v != NULL ? value_answer(e, v, key != NULL ? key : e->cfg->key, false)
				    : kt_proto_error(KT_PERR_UNAVAILABLE, "%s: %s", e->name,
						     e->last_error);
		return KT_OP_ANSWER;
	}
	return handle(d, p->conn_id, &p->peer, p->req, answer, NULL, true, (int)p->kind);
}

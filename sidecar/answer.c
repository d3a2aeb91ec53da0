/* The answers of get, refresh and list, encoded: the json-c form, and the
 * hot path's framed bytes written straight into a connection's buffer
 * (write_hit), which must stay member for member the same. No state; no
 * calls into the engine. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "common/kt_base64.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "common/secmem.h"

struct json_object *kt_answer_ok(void)
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

/* The protocol's word for an AWS failure. */
void kt_answer_add_aws(struct json_object *answer, enum aws_errc code, const char *type,
		       long status)
{
	struct json_object *a;

	if (answer == NULL || code == AWS_OK || (a = json_object_new_object()) == NULL)
		return;
	json_object_object_add(a, "class", json_object_new_string(aws_errc_name(code)));
	json_object_object_add(a, "type", json_object_new_string(type));
	json_object_object_add(a, "status", json_object_new_int64(status));
	json_object_object_add(answer, "aws", a);
}

struct json_object *kt_answer_aws_failure(const char *name, const struct aws_error *err)
{
	struct json_object *o;

	switch (err->code) {
	case AWS_ERR_NOT_FOUND:
		o = kt_proto_error(KT_PERR_NOT_FOUND, "%s: %s", name, err->message);
		break;
	case AWS_ERR_THROTTLED:
		o = kt_proto_error(KT_PERR_THROTTLED, "%s: AWS is throttling requests: %s", name,
				   err->message);
		break;
	default:
		o = kt_proto_error(KT_PERR_UNAVAILABLE, "%s: AWS %s: %s", name,
				   aws_errc_name(err->code), err->message);
		break;
	}
	kt_answer_add_aws(o, err->code, err->type, err->http_status);
	return o;
}

void kt_answer_add_entry_aws(struct json_object *answer, const struct kt_entry *e)
{
	kt_answer_add_aws(answer, e->last_aws_code, e->last_aws_type, e->last_aws_status);
}

/* Puts the value (or one JSON key of it) into the answer. */
struct json_object *kt_answer_value(const struct kt_entry *e, const struct kt_value *v,
				    const char *key, bool stale)
{
	struct json_object *o = kt_answer_ok(), *doc = NULL, *member;
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
					      "%s is not a JSON object, so it has no key %s",
					      e->name,
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
					      kt_json_printable(key, shown, sizeof(shown)),
					      e->name);
		}
		/* A string by its length (it may hold a NUL); a number or a
		 * boolean as its JSON text. */
		json_object_object_add(
			o, "string",
			json_object_is_type(member, json_type_string)
				? json_object_new_string_len(json_object_get_string(member),
							     json_object_get_string_len(member))
				: json_object_new_string(json_object_get_string(member)));
		kt_json_put_wiped(doc);
	} else if (v->binary) {
		char *b64 = kt_base64_encode(v->data, v->len);

		json_object_object_add(o, "binary",
				       b64 != NULL ? json_object_new_string(b64) : NULL);
		kt_str_free_wiped(b64);
	} else {
		json_object_object_add(o, "string",
				       json_object_new_string_len((const char *)v->data,
								  (int)v->len));
	}
	json_object_object_add(o, "fetched_at", json_object_new_int64(v->fetched_at));
	json_object_object_add(o, "created", json_object_new_int64(v->created));
	json_object_object_add(o, "stale", json_object_new_boolean(stale));
	return o;
}

/* Appends a framed get answer for v without building json-c objects: the
 * same members, in the same order, as kt_answer_value() without a key. Cache
 * hits are the daemon's hot path, and json-c's serialiser was most of it. */
int kt_answer_write_hit(struct kt_buf *out, const struct kt_entry *e, const struct kt_value *v,
			bool stale)
{
	static const char head[] = "\0\0\0\0{\"ok\":true,\"name\":"; /* length patched below */
	size_t start = out->len, len;
	char num[96];
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
	snprintf(num, sizeof(num), ",\"fetched_at\":%lld,\"created\":%lld,\"stale\":%s}",
		 (long long)v->fetched_at, (long long)v->created, stale ? "true" : "false");
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

struct json_object *kt_answer_metadata(const struct kt_entry *e, time_t now, long max_stale)
{
	struct json_object *o = json_object_new_object();
	const char *cur = kt_cache_version_for_stage(e, "AWSCURRENT");

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "id", json_object_new_string(e->cfg->id));
	json_object_object_add(o, "arn", e->arn != NULL ? json_object_new_string(e->arn) : NULL);
	json_object_object_add(o, "version_id",
			       e->cur.version_id != NULL ? json_object_new_string(e->cur.version_id)
							 : NULL);
	json_object_object_add(o, "stages", stages_json(e->cur.stages, e->cur.nstages));
	json_object_object_add(o, "fetched_at", json_object_new_int64(e->cur.fetched_at));
	json_object_object_add(o, "checked_at", json_object_new_int64(e->checked_at));
	json_object_object_add(o, "stale", json_object_new_boolean(kt_entry_stale(e)));
	json_object_object_add(o, "available",
			       json_object_new_boolean(e->cur.data != NULL && !e->gone &&
						       kt_entry_servable(e, now, max_stale)));
	json_object_object_add(o, "current_version_in_aws",
			       cur != NULL ? json_object_new_string(cur) : NULL);
	/* Deadlines are kept on the schedule clock and shown as wall-clock time. */
	json_object_object_add(o, "next_check",
			       json_object_new_int64(
				       kt_sched_to_wall(e->next_check, now, time(NULL))));
	json_object_object_add(o, "rotation_enabled", json_object_new_boolean(e->rot.enabled));
	json_object_object_add(o, "next_rotation", json_object_new_int64(e->rot.rotation_date));
	return o;
}

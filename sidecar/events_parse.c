/* Rotation events from an SQS queue: an EventBridge event of Secrets
 * Manager (raw, or in an SNS notification) read into the ids of the
 * secrets it names (events_match.c matches them with configured ones). No
 * I/O; events_parse.h says what each result means. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/err.h"
#include "common/kt_json.h"
#include "events_int.h"
#include "events_parse.h"

/* An EventBridge event of CloudTrail nests five or six levels deep
 * (detail.userIdentity.sessionContext.sessionIssuer...); twenty leaves room
 * and keeps json-c's per-level state small. */
#define EV_MAX_DEPTH 20
/* What a message says may be quoted in why: 64 bytes at most, escaped. */
#define EV_QUOTE 65

#define EV_SOURCE "aws.secretsmanager"
#define EV_EVENT_SOURCE "secretsmanager.amazonaws.com"
#define EV_API_CALL "AWS API Call via CloudTrail"
#define EV_SERVICE_EVENT "AWS Service Event via CloudTrail"
#define EV_LABEL_UPDATED "Secret Label Updated"

enum ev_kind { EV_API, EV_SERVICE, EV_LABEL };

/* What reading one event needs: where it goes and where the reason goes. */
struct ev_ctx {
	struct kt_event *out;
	size_t dropped; /* ids past KT_EVENT_MAX_IDS */
	char *why;
	size_t whylen;
};

static const char *quote(const char *s, char q[EV_QUOTE])
{
	return kt_json_printable(s, q, EV_QUOTE);
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses text (len bytes) as one JSON object and nothing else but white
 * space, at most EV_MAX_DEPTH deep, in well-formed UTF-8. what names the
 * text in why. NULL on any error. No secret value travels in these events
 * (CloudTrail leaves SecretString out of what it logs), so nothing is
 * wiped. */
static struct json_object *ev_json(const char *text, size_t len, const char *what, char *why,
				   size_t whylen)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t i = 0;

	while (i < len && is_ws(text[i]))
		i++;
	if (i == len) {
		kt_errf(why, whylen, "%s: empty", what);
		goto out;
	}
	if (text[i] != '{') {
		kt_errf(why, whylen, "%s: not a JSON object", what);
		goto out;
	}
	tok = json_tokener_new_ex(EV_MAX_DEPTH);
	if (tok == NULL) {
		kt_errf(why, whylen, "%s: out of memory", what);
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len is at most KT_EVENT_BODY_MAX: it fits in an int. */
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		kt_errf(why, whylen, "%s: JSON cut short after %zu bytes", what, len);
		goto out;
	}
	if (obj == NULL || jerr != json_tokener_success) {
		kt_errf(why, whylen, "%s: not JSON (%s at byte %zu)", what,
			json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
		json_object_put(obj);
		obj = NULL;
		goto out;
	}
	for (i = json_tokener_get_parse_end(tok); i < len && is_ws(text[i]); i++)
		;
	if (i < len) {
		kt_errf(why, whylen, "%s: more after the JSON object, at byte %zu", what, i);
		json_object_put(obj);
		obj = NULL;
	}
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return obj;
}

/* The string member key of obj (path names obj in why): 1 with *s set
 * when present, 0 when absent or null, -1 when of another type or holding
 * a NUL byte (C would read it shortened). */
static int ev_str(struct json_object *obj, const char *path, const char *key, const char **s,
		  char *why, size_t whylen)
{
	struct json_object *v;

	*s = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		kt_errf(why, whylen, "%s%s%s is not a string", path, *path != '\0' ? "." : "", key);
		return -1;
	}
	*s = json_object_get_string(v);
	if (strlen(*s) != (size_t)json_object_get_string_len(v)) {
		kt_errf(why, whylen, "%s%s%s holds a NUL byte", path, *path != '\0' ? "." : "",
			key);
		return -1;
	}
	return 1;
}

/* The object member key of obj: 1 with *o set, 0 when absent or null, -1
 * when of another type. */
static int ev_obj(struct json_object *obj, const char *path, const char *key,
		  struct json_object **o, char *why, size_t whylen)
{
	*o = NULL;
	if (!json_object_object_get_ex(obj, key, o) || *o == NULL)
		return 0;
	if (!json_object_is_type(*o, json_type_object)) {
		kt_errf(why, whylen, "%s%s%s is not an object", path, *path != '\0' ? "." : "",
			key);
		*o = NULL;
		return -1;
	}
	return 1;
}

/* Whether an API call of this name may change a secret, its value or the
 * version its labels point at. The calls known to do so are PutSecretValue,
 * UpdateSecretVersionStage, RotateSecret, UpdateSecret, RestoreSecret,
 * DeleteSecret, CancelRotateSecret, ReplicateSecretToRegions,
 * RemoveRegionsFromReplication, StopReplicationToReplica and CreateSecret;
 * a call AWS adds later is taken as a change when its verb is one of
 * theirs. The read-only calls (Get*, Describe*, List*, Validate*,
 * BatchGet*) and TagResource/UntagResource are not: a hint only costs a
 * DescribeSecret, but one for every read would cost one per read. */
static bool ev_change_call(const char *name)
{
	static const char *const verbs[] = { "Put",    "Update",    "Rotate", "Restore", "Delete",
					     "Cancel", "Replicate", "Remove", "Stop",    "Create" };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strncmp(name, verbs[i], strlen(verbs[i])) == 0)
			return true;
	}
	return false;
}

/* Adds one id (from path) to the event, once. Empty ids are skipped; an id
 * too long or holding a byte that no ARN or secret name has (a control
 * character, a space, anything outside ASCII) makes the message bad. */
static int ev_add_id(struct ev_ctx *c, const char *path, const char *id)
{
	struct kt_event *out = c->out;
	size_t n = strlen(id);

	if (n == 0)
		return 0;
	if (n > KT_EVENT_ID_MAX) {
		kt_errf(c->why, c->whylen, "%s: an id of %zu bytes, more than %d", path, n,
			KT_EVENT_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)id[i];

		if (b <= 0x20 || b >= 0x7f) {
			kt_errf(c->why, c->whylen,
				"%s: byte 0x%02x at %zu of an id, which no secret id holds", path,
				b, i);
			return -1;
		}
	}
	for (size_t i = 0; i < out->n_ids; i++) {
		if (strcmp(out->ids[i], id) == 0)
			return 0;
	}
	if (out->n_ids == KT_EVENT_MAX_IDS) {
		c->dropped++;
		return 0;
	}
	memcpy(out->ids[out->n_ids], id, n + 1);
	out->n_ids++;
	return 0;
}

/* Adds the string member key of obj (a NULL obj has none). */
static int ev_add_member(struct ev_ctx *c, struct json_object *obj, const char *path,
			 const char *key)
{
	char where[96];
	const char *s;
	int rc;

	if (obj == NULL)
		return 0;
	rc = ev_str(obj, path, key, &s, c->why, c->whylen);
	if (rc <= 0)
		return rc;
	snprintf(where, sizeof(where), "%s.%s", path, key);
	return ev_add_id(c, where, s);
}

/* Adds the secret ARNs of a resources array: EventBridge lists strings,
 * a CloudTrail record objects with an "ARN". Absent or null is none. */
static int ev_add_resources(struct ev_ctx *c, struct json_object *obj, const char *path)
{
	struct json_object *arr, *el;
	struct kt_event_arn arn;
	char where[96];
	const char *s;
	size_t n;
	int rc;

	if (obj == NULL || !json_object_object_get_ex(obj, "resources", &arr) || arr == NULL)
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		kt_errf(c->why, c->whylen, "%sresources is not an array", path);
		return -1;
	}
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		el = json_object_array_get_idx(arr, i);
		snprintf(where, sizeof(where), "%sresources[%zu]", path, i);
		if (json_object_is_type(el, json_type_object)) {
			rc = ev_str(el, where, "ARN", &s, c->why, c->whylen);
			if (rc < 0)
				return rc;
			if (rc == 0)
				continue;
		} else if (json_object_is_type(el, json_type_string)) {
			s = json_object_get_string(el);
			if (strlen(s) != (size_t)json_object_get_string_len(el)) {
				kt_errf(c->why, c->whylen, "%s holds a NUL byte", where);
				return -1;
			}
		} else {
			kt_errf(c->why, c->whylen, "%s is neither a string nor an object", where);
			return -1;
		}
		/* resources may list more than secrets (a KMS key). */
		if (kt_event_split_arn(s, &arn) && ev_add_id(c, where, s) < 0)
			return -1;
	}
	return 0;
}

/* The ids of a CloudTrail event, from where Secrets Manager's entries
 * carry them: the full ARN in responseElements.arn (spelt "aRN" before
 * February 2024) and additionalEventData.SecretId (rotation and deletion
 * events), the id the caller gave in requestParameters.secretId (or .name
 * for CreateSecret), the record's own resources. serviceEventDetails is
 * read too: rotation events have been seen to carry the id there. */
static int ev_cloudtrail_ids(struct ev_ctx *c, struct json_object *detail)
{
	static const struct {
		const char *obj, *key;
	} members[] = {
		{ "responseElements", "arn" },         { "responseElements", "aRN" },
		{ "additionalEventData", "SecretId" }, { "serviceEventDetails", "SecretId" },
		{ "serviceEventDetails", "secretId" }, { "requestParameters", "secretId" },
		{ "requestParameters", "name" },       { "responseElements", "name" },
	};
	struct json_object *o;
	char path[64];

	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		snprintf(path, sizeof(path), "detail.%s", members[i].obj);
		if (ev_obj(detail, "detail", members[i].obj, &o, c->why, c->whylen) < 0 ||
		    ev_add_member(c, o, path, members[i].key) < 0)
			return -1;
	}
	return ev_add_resources(c, detail, "detail.");
}

/* The region: detail.awsRegion (CloudTrail), else the event's own. */
static int ev_region(struct ev_ctx *c, struct json_object *ev, struct json_object *detail)
{
	const char *r = NULL, *path = "detail.awsRegion";
	char q[EV_QUOTE];
	size_t n;
	int rc = 0;

	if (detail != NULL)
		rc = ev_str(detail, "detail", "awsRegion", &r, c->why, c->whylen);
	if (rc == 0) {
		path = "region";
		rc = ev_str(ev, "", "region", &r, c->why, c->whylen);
	}
	if (rc <= 0)
		return rc;
	n = strlen(r);
	if (n >= sizeof(c->out->source_region)) {
		kt_errf(c->why, c->whylen, "%s \"%s\" is not a region", path, quote(r, q));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(r[i] >= 'a' && r[i] <= 'z') && !(r[i] >= '0' && r[i] <= '9') && r[i] != '-') {
			kt_errf(c->why, c->whylen, "%s \"%s\" is not a region", path, quote(r, q));
			return -1;
		}
	}
	memcpy(c->out->source_region, r, n + 1);
	return 0;
}

/* When the event happened: "time" (EventBridge's), else detail.eventTime
 * (CloudTrail's), as 2026-12-05T06:31:12Z, fractions of a second allowed.
 * A time that is missing or unreadable is left 0: it only decides whether
 * a check made since already answers the event. */
static void ev_time(struct ev_ctx *c, struct json_object *ev, struct json_object *detail)
{
	struct json_object *t = NULL;
	struct tm tm = { 0 };
	const char *s;
	int n = 0;

	if (!json_object_object_get_ex(ev, "time", &t) && detail != NULL)
		json_object_object_get_ex(detail, "eventTime", &t);
	if (t == NULL || !json_object_is_type(t, json_type_string))
		return;
	s = json_object_get_string(t);
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return;
	s += n;
	if (*s == '.')
		s += 1 + strspn(s + 1, "0123456789");
	if (strcmp(s, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return;
	tm.tm_year -= 1900;
	tm.tm_mon--;
	c->out->time = timegm(&tm);
	if (c->out->time < 0)
		c->out->time = 0;
}

/* detail.eventName of a CloudTrail event into out->name: 1 when present, 0
 * when absent, -1 when it is no event name. */
static int ev_event_name(struct ev_ctx *c, struct json_object *detail)
{
	const char *name;
	char q[EV_QUOTE];
	bool ok = true;
	size_t n;
	int rc = ev_str(detail, "detail", "eventName", &name, c->why, c->whylen);

	if (rc <= 0)
		return rc;
	n = strlen(name);
	for (size_t i = 0; i < n && ok; i++)
		ok = kt_event_is_alnum(name[i]);
	if (!ok || n == 0 || n >= sizeof(c->out->name)) {
		kt_errf(c->why, c->whylen, "detail.eventName \"%s\" is not an event name",
			quote(name, q));
		return -1;
	}
	memcpy(c->out->name, name, n + 1);
	return 1;
}

/* A CloudTrail event (kind EV_API or EV_SERVICE): whether it may be a
 * change (KT_EVENT_HINT, ids still to read) or not. */
static int ev_cloudtrail(struct ev_ctx *c, enum ev_kind kind, struct json_object *detail)
{
	const char *src, *err;
	char q[EV_QUOTE];
	int rc;

	rc = ev_str(detail, "detail", "eventSource", &src, c->why, c->whylen);
	if (rc < 0)
		return KT_EVENT_BAD;
	if (rc == 0 || strcmp(src, EV_EVENT_SOURCE) != 0) {
		kt_errf(c->why, c->whylen, "detail.eventSource \"%s\" is not " EV_EVENT_SOURCE,
			quote(src, q));
		return KT_EVENT_IGNORED;
	}
	rc = ev_event_name(c, detail);
	if (rc < 0)
		return KT_EVENT_BAD;
	if (rc == 0) {
		kt_errf(c->why, c->whylen, "no detail.eventName");
		return KT_EVENT_IGNORED;
	}
	/* CloudTrail logs refused calls too: they changed nothing. */
	if (ev_str(detail, "detail", "errorCode", &err, c->why, c->whylen) < 0)
		return KT_EVENT_BAD;
	if (err != NULL && err[0] != '\0') {
		kt_errf(c->why, c->whylen, "%s failed (%s): nothing changed", c->out->name,
			quote(err, q));
		return KT_EVENT_IGNORED;
	}
	if (kind == EV_API && !ev_change_call(c->out->name)) {
		kt_errf(c->why, c->whylen, "%s changes no secret", c->out->name);
		return KT_EVENT_IGNORED;
	}
	return KT_EVENT_HINT;
}

/* One EventBridge event, outside any envelope. */
static int ev_event(struct ev_ctx *c, struct json_object *ev)
{
	struct json_object *detail;
	const char *source, *dtype;
	enum ev_kind kind;
	char q[EV_QUOTE];
	int rc;

	rc = ev_str(ev, "", "source", &source, c->why, c->whylen);
	if (rc < 0)
		return KT_EVENT_BAD;
	if (rc == 0) {
		kt_errf(c->why, c->whylen, "no source: not an EventBridge event");
		return KT_EVENT_IGNORED;
	}
	if (strcmp(source, EV_SOURCE) != 0) {
		kt_errf(c->why, c->whylen, "source \"%s\" is not " EV_SOURCE, quote(source, q));
		return KT_EVENT_IGNORED;
	}
	rc = ev_str(ev, "", "detail-type", &dtype, c->why, c->whylen);
	if (rc < 0)
		return KT_EVENT_BAD;
	if (rc == 0) {
		kt_errf(c->why, c->whylen, "no detail-type");
		return KT_EVENT_IGNORED;
	}
	if (strcmp(dtype, EV_API_CALL) == 0) {
		kind = EV_API;
	} else if (strcmp(dtype, EV_SERVICE_EVENT) == 0) {
		kind = EV_SERVICE;
	} else if (strcmp(dtype, EV_LABEL_UPDATED) == 0) {
		kind = EV_LABEL;
		memcpy(c->out->name, EV_LABEL_UPDATED, sizeof(EV_LABEL_UPDATED));
	} else {
		kt_errf(c->why, c->whylen, "detail-type \"%s\" is not one keyturnd reads",
			quote(dtype, q));
		return KT_EVENT_IGNORED;
	}
	rc = ev_obj(ev, "", "detail", &detail, c->why, c->whylen);
	if (rc < 0)
		return KT_EVENT_BAD;
	if (rc == 0) {
		kt_errf(c->why, c->whylen, "%s without a detail object", dtype);
		return KT_EVENT_BAD;
	}
	if (ev_region(c, ev, detail) < 0)
		return KT_EVENT_BAD;
	ev_time(c, ev, detail);
	if (kind != EV_LABEL) {
		rc = ev_cloudtrail(c, kind, detail);
		if (rc != KT_EVENT_HINT)
			return rc;
		rc = ev_cloudtrail_ids(c, detail);
	} else {
		rc = ev_add_member(c, detail, "detail", "name");
	}
	if (rc == 0)
		rc = ev_add_resources(c, ev, "");
	if (rc < 0)
		return KT_EVENT_BAD;
	if (c->out->n_ids == 0) {
		kt_errf(c->why, c->whylen, "%s names no secret", c->out->name);
		return KT_EVENT_IGNORED;
	}
	kt_errf(c->why, c->whylen, "%s: %zu secret id%s%s", c->out->name, c->out->n_ids,
		c->out->n_ids == 1 ? "" : "s", c->dropped > 0 ? " (more dropped)" : "");
	return KT_EVENT_HINT;
}

int kt_event_parse(const char *body, size_t len, struct kt_event *out, char *why, size_t whylen)
{
	struct ev_ctx c = { .out = out, .why = why, .whylen = whylen };
	struct json_object *root = NULL, *inner = NULL, *ev;
	const char *type, *msg;
	char q[EV_QUOTE];
	int rc = KT_EVENT_BAD;

	memset(out, 0, sizeof(*out));
	kt_errf(why, whylen, "unread");
	if (body == NULL || len == 0) {
		kt_errf(why, whylen, "message: empty");
		goto out;
	}
	if (len > KT_EVENT_BODY_MAX) {
		kt_errf(why, whylen, "message: %zu bytes, more than %d", len, KT_EVENT_BODY_MAX);
		goto out;
	}
	root = ev_json(body, len, "message", why, whylen);
	if (root == NULL)
		goto out;
	ev = root;
	/* An SNS notification (raw message delivery off) carries the event as
	 * a string in Message; EventBridge events have no "Type". */
	switch (ev_str(root, "", "Type", &type, why, whylen)) {
	case -1:
		goto out;
	case 0:
		break;
	default:
		if (strcmp(type, "Notification") != 0) {
			kt_errf(why, whylen, "an SNS %s message, not a notification",
				quote(type, q));
			rc = KT_EVENT_IGNORED;
			goto out;
		}
		switch (ev_str(root, "", "Message", &msg, why, whylen)) {
		case -1:
			goto out;
		case 0:
			kt_errf(why, whylen, "an SNS notification without a Message");
			goto out;
		default:
			break;
		}
		inner = ev_json(msg, strlen(msg), "SNS Message", why, whylen);
		if (inner == NULL)
			goto out;
		if (json_object_object_get_ex(inner, "Type", NULL)) {
			kt_errf(why, whylen, "an SNS envelope inside an SNS envelope");
			goto out;
		}
		ev = inner;
	}
	rc = ev_event(&c, ev);
out:
	/* Ids are for hints only: a bad message may have given some before
	 * its fault was found. */
	if (rc != KT_EVENT_HINT) {
		for (size_t i = 0; i < out->n_ids; i++)
			out->ids[i][0] = '\0';
		out->n_ids = 0;
	}
	json_object_put(inner);
	json_object_put(root);
	return rc;
}

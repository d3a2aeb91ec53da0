/* Secrets Manager operations over the JSON client: request bodies are built
 * with json-c, answers are checked field by field (a missing or mistyped
 * field is a malformed answer, never a default), and every buffer that held a
 * secret value is wiped. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kt_base64.h"
#include "common/kt_json.h"
#include "common/secmem.h"
#include "sm.h"
#include "sm_json.h"

#define SM_TARGET(op) ("secretsmanager." op)

/* Sends req (consumed) to op and returns the answer in *resp. */
static int sm_call(struct aws_client *c, const char *target, struct json_object *req,
		   struct json_object **resp, struct aws_error *err)
{
	return aws_client_call_obj(c, target, req, resp, err);
}

/* Fills v from one GetSecretValue-shaped object. */
static int parse_value(struct json_object *o, struct sm_value *v)
{
	struct json_object *js;
	const char *s;
	long long t;
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = smj_dup_req(o, "ARN", &v->arn)) < 0 ||
	    (rc = smj_dup_req(o, "Name", &v->name)) < 0 ||
	    (rc = smj_dup_req(o, "VersionId", &v->version_id)) < 0 ||
	    (rc = smj_dup_str_array(o, "VersionStages", &v->stages, &v->nstages)) < 0)
		return rc;
	if (kt_json_time(o, "CreatedDate", &t))
		v->created = (time_t)t;
	/* The value is read by its length, not as a C string: every byte of it
	 * counts, a NUL included. */
	if (json_object_object_get_ex(o, "SecretString", &js) &&
	    json_object_is_type(js, json_type_string)) {
		s = json_object_get_string(js);
		v->len = (size_t)json_object_get_string_len(js);
		v->data = kt_memdup(s, v->len + 1);
		if (v->data == NULL)
			return -ENOMEM;
		v->data[v->len] = '\0';
	} else if ((s = kt_json_str(o, "SecretBinary")) != NULL) {
		rc = kt_base64_decode(s, strlen(s), &v->data, &v->len);
		if (rc < 0)
			return rc == -ENOMEM ? rc : -EBADMSG;
		v->binary = true;
	} else {
		return -EBADMSG;
	}
	return 0;
}

#define VALUE_FIELDS "ARN, Name, VersionId, VersionStages or the value"

int sm_get_secret_value(struct aws_client *c, const char *id, const char *version_id,
			const char *stage, struct sm_value *out, struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (req != NULL &&
	    (!smj_add_str(req, "SecretId", id) || !smj_add_str(req, "VersionId", version_id) ||
	     !smj_add_str(req, "VersionStage", stage))) {
		json_object_put(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("GetSecretValue"), req, &resp, err);
	if (rc < 0)
		return rc;
	rc = parse_value(resp, out);
	if (rc < 0) {
		sm_value_free(out);
		rc = smj_answer_error(rc, err, "GetSecretValue", VALUE_FIELDS);
	}
	kt_json_put_wiped(resp);
	return rc;
}

static int parse_batch_error(struct json_object *o, struct sm_batch_error *e)
{
	const char *code = kt_json_str(o, "ErrorCode"), *msg = kt_json_str(o, "Message");
	char type[128];
	int rc;

	aws_error_clear(&e->err);
	if ((rc = smj_dup_req(o, "SecretId", &e->secret_id)) < 0)
		return rc;
	aws_error_type_strip(code != NULL ? code : "Unknown", type, sizeof(type));
	aws_error_set(&e->err, aws_error_classify(type, msg), type, "%s", msg != NULL ? msg : type);
	return 0;
}

/* Appends the SecretValues and Errors of one page to out. */
static int batch_take_page(struct json_object *resp, struct sm_batch *out)
{
	struct json_object *vals = NULL, *errs = NULL;
	size_t nv = 0, ne = 0;
	void *p;
	int rc;

	if (json_object_object_get_ex(resp, "SecretValues", &vals)) {
		if (!json_object_is_type(vals, json_type_array))
			return -EBADMSG;
		nv = json_object_array_length(vals);
	}
	if (json_object_object_get_ex(resp, "Errors", &errs)) {
		if (!json_object_is_type(errs, json_type_array))
			return -EBADMSG;
		ne = json_object_array_length(errs);
	}
	if (nv > SM_BATCH_MAX || ne > SM_BATCH_MAX)
		return -EBADMSG;
	p = realloc(out->values, (out->nvalues + nv) * sizeof(*out->values) + 1);
	if (p == NULL)
		return -ENOMEM;
	out->values = p;
	p = realloc(out->errors, (out->nerrors + ne) * sizeof(*out->errors) + 1);
	if (p == NULL)
		return -ENOMEM;
	out->errors = p;
	for (size_t i = 0; i < nv; i++) {
		rc = parse_value(json_object_array_get_idx(vals, i), &out->values[out->nvalues]);
		out->nvalues++;
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < ne; i++) {
		memset(&out->errors[out->nerrors], 0, sizeof(out->errors[0]));
		rc = parse_batch_error(json_object_array_get_idx(errs, i),
				       &out->errors[out->nerrors]);
		out->nerrors++;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sm_batch_get_secret_value(struct aws_client *c, const char *const *ids, size_t n,
			      struct sm_batch *out, struct aws_error *err)
{
	struct json_object *req, *list, *resp = NULL;
	char *next = NULL, *sent;
	int rc = 0, pages = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n > SM_BATCH_MAX) {
		aws_error_set(err, AWS_ERR_INVALID_REQUEST, "TooManySecrets",
			      "BatchGetSecretValue takes 1 to %d secret ids, not %zu", SM_BATCH_MAX,
			      n);
		return -EINVAL;
	}
	do {
		req = json_object_new_object();
		list = json_object_new_array();
		if (req == NULL || list == NULL ||
		    json_object_object_add(req, "SecretIdList", list) < 0) {
			json_object_put(list);
			json_object_put(req);
			req = NULL;
		}
		for (size_t i = 0; req != NULL && i < n; i++) {
			struct json_object *s = json_object_new_string(ids[i]);

			if (s == NULL || json_object_array_add(list, s) < 0) {
				json_object_put(req);
				req = NULL;
			}
		}
		if (req != NULL && !smj_add_str(req, "NextToken", next)) {
			json_object_put(req);
			req = NULL;
		}
		rc = sm_call(c, SM_TARGET("BatchGetSecretValue"), req, &resp, err);
		if (rc < 0)
			break;
		rc = batch_take_page(resp, out);
		sent = next;
		next = NULL;
		if (rc == 0)
			rc = smj_next_page(resp, &next, sent, &pages);
		free(sent);
		kt_json_put_wiped(resp);
		resp = NULL;
		if (rc < 0) {
			rc = smj_answer_error(rc, err, "BatchGetSecretValue", VALUE_FIELDS);
			break;
		}
	} while (next != NULL);
	free(next);
	if (rc < 0)
		sm_batch_free(out);
	return rc;
}

/* VersionIdsToStages: {"id": ["AWSCURRENT"], ...} */
static int parse_version_map(struct json_object *o, struct sm_description *d)
{
	struct json_object *m;
	size_t n, i = 0;

	if (!json_object_object_get_ex(o, "VersionIdsToStages", &m))
		return 0;
	if (!json_object_is_type(m, json_type_object))
		return -EBADMSG;
	n = (size_t)json_object_object_length(m);
	d->versions = calloc(n + 1, sizeof(*d->versions));
	if (d->versions == NULL)
		return -ENOMEM;
	json_object_object_foreach(m, vid, stages) {
		struct sm_version *v = &d->versions[i++];
		int rc;

		d->nversions++;
		v->version_id = kt_strdup(vid);
		if (v->version_id == NULL)
			return -ENOMEM;
		rc = smj_str_array_copy(stages, &v->stages, &v->nstages);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sm_describe_secret(struct aws_client *c, const char *id, struct sm_description *out,
		       struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *rules;
	long long t;
	int rc;

	memset(out, 0, sizeof(*out));
	if (req != NULL && !smj_add_str(req, "SecretId", id)) {
		json_object_put(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("DescribeSecret"), req, &resp, err);
	if (rc < 0)
		return rc;
	if ((rc = smj_dup_req(resp, "ARN", &out->arn)) < 0 ||
	    (rc = smj_dup_req(resp, "Name", &out->name)) < 0 ||
	    (rc = parse_version_map(resp, out)) < 0)
		goto out;
	kt_json_bool(resp, "RotationEnabled", &out->rotation_enabled);
	if (json_object_object_get_ex(resp, "RotationRules", &rules) &&
	    json_object_is_type(rules, json_type_object)) {
		if (kt_json_int64(rules, "AutomaticallyAfterDays", &t))
			out->rotation_days = (long)t;
		if ((rc = smj_dup_opt(rules, "ScheduleExpression", &out->rotation_schedule)) < 0 ||
		    (rc = smj_dup_opt(rules, "Duration", &out->rotation_duration)) < 0)
			goto out;
	}
	if (kt_json_time(resp, "LastRotatedDate", &t))
		out->last_rotated = (time_t)t;
	if (kt_json_time(resp, "LastChangedDate", &t))
		out->last_changed = (time_t)t;
	if (kt_json_time(resp, "NextRotationDate", &t))
		out->next_rotation = (time_t)t;
	if (kt_json_time(resp, "DeletedDate", &t))
		out->deleted = (time_t)t;
out:
	if (rc < 0) {
		sm_description_free(out);
		rc = smj_answer_error(rc, err, "DescribeSecret", "ARN, Name or VersionIdsToStages");
	}
	kt_json_put_wiped(resp);
	return rc;
}

/* One entry of ListSecretVersionIds' Versions. */
static int parse_version(struct json_object *o, struct sm_version *v)
{
	long long t;
	int rc;

	if ((rc = smj_dup_req(o, "VersionId", &v->version_id)) < 0 ||
	    (rc = smj_dup_str_array(o, "VersionStages", &v->stages, &v->nstages)) < 0)
		return rc;
	if (kt_json_time(o, "CreatedDate", &t))
		v->created = (time_t)t;
	if (kt_json_time(o, "LastAccessedDate", &t))
		v->last_accessed = (time_t)t;
	return 0;
}

int sm_list_secret_version_ids(struct aws_client *c, const char *id, bool include_deprecated,
			       struct sm_version **out, size_t *n, struct aws_error *err)
{
	struct json_object *req, *resp = NULL, *vers;
	struct sm_version *all = NULL;
	size_t nall = 0;
	char *next = NULL, *sent;
	int rc, pages = 0;

	do {
		req = json_object_new_object();
		if (req != NULL &&
		    (!smj_add_str(req, "SecretId", id) || !smj_add_str(req, "NextToken", next) ||
		     !smj_add_bool(req, "IncludeDeprecated", include_deprecated))) {
			json_object_put(req);
			req = NULL;
		}
		sent = next;
		next = NULL;
		rc = sm_call(c, SM_TARGET("ListSecretVersionIds"), req, &resp, err);
		if (rc < 0) {
			free(sent);
			break;
		}
		if (!json_object_object_get_ex(resp, "Versions", &vers) ||
		    !json_object_is_type(vers, json_type_array)) {
			rc = -EBADMSG;
		} else {
			size_t k = json_object_array_length(vers);
			struct sm_version *p = realloc(all, (nall + k + 1) * sizeof(*all));

			rc = p != NULL ? 0 : -ENOMEM;
			if (p != NULL)
				all = p;
			for (size_t i = 0; rc == 0 && i < k; i++) {
				memset(&all[nall], 0, sizeof(all[0]));
				rc = parse_version(json_object_array_get_idx(vers, i),
						   &all[nall++]);
			}
			if (rc == 0)
				rc = smj_next_page(resp, &next, sent, &pages);
		}
		free(sent);
		kt_json_put_wiped(resp);
		resp = NULL;
		if (rc < 0) {
			rc = smj_answer_error(rc, err, "ListSecretVersionIds", "Versions");
			break;
		}
	} while (next != NULL);
	free(next);
	if (rc < 0) {
		sm_versions_free(all, nall);
		all = NULL;
		nall = 0;
	}
	*out = all;
	*n = nall;
	return rc;
}

#define SM_VALUE_MAX 65536

/* Adds the value, as SecretString or base64-encoded as SecretBinary, and a
 * fresh ClientRequestToken. The SDKs send one so that a retried
 * PutSecretValue or CreateSecret cannot make two versions. */
static bool add_value(struct json_object *req, const void *data, size_t len, bool binary)
{
	struct json_object *v;
	char token[37], *b64;

	if (smj_make_uuid(token) < 0 || !smj_add_str(req, "ClientRequestToken", token))
		return false;
	if (!binary) {
		v = json_object_new_string_len(data, (int)len);
		return v != NULL && json_object_object_add(req, "SecretString", v) == 0;
	}
	b64 = kt_base64_encode(data, len);
	if (b64 == NULL)
		return false;
	v = json_object_new_string(b64);
	kt_str_free_wiped(b64);
	return v != NULL && json_object_object_add(req, "SecretBinary", v) == 0;
}

/* Secrets Manager stores at most 64 KiB; refuse more before sending. */
static int check_value_size(size_t len, struct aws_error *err)
{
	if (len <= SM_VALUE_MAX)
		return 0;
	aws_error_set(err, AWS_ERR_INVALID_REQUEST, "ValueTooLarge",
		      "a secret value is at most %d bytes, not %zu", SM_VALUE_MAX, len);
	return -EINVAL;
}

int sm_put_secret_value(struct aws_client *c, const char *id, const void *data, size_t len,
			bool binary, const char *const *stages, size_t nstages, char **version_id,
			struct aws_error *err)
{
	return sm_put_secret_version(c, id, NULL, data, len, binary, stages, nstages, version_id,
				     err);
}

int sm_put_secret_version(struct aws_client *c, const char *id, const char *token, const void *data,
			  size_t len, bool binary, const char *const *stages, size_t nstages,
			  char **version_id, struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *list = NULL;
	int rc;

	if (version_id != NULL)
		*version_id = NULL;
	if ((rc = check_value_size(len, err)) < 0) {
		json_object_put(req);
		return rc;
	}
	if (req != NULL && nstages > 0) {
		list = json_object_new_array();
		for (size_t i = 0; list != NULL && i < nstages; i++) {
			if (json_object_array_add(list, json_object_new_string(stages[i])) < 0) {
				json_object_put(list);
				list = NULL;
			}
		}
		if (list == NULL || json_object_object_add(req, "VersionStages", list) < 0) {
			json_object_put(list);
			json_object_put(req);
			req = NULL;
		}
	}
	if (req != NULL &&
	    (!smj_add_str(req, "SecretId", id) || !add_value(req, data, len, binary) ||
	     (token != NULL && !smj_add_str(req, "ClientRequestToken", token)))) {
		kt_json_put_wiped(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("PutSecretValue"), req, &resp, err);
	if (rc < 0)
		return rc;
	if (version_id != NULL && (rc = smj_dup_req(resp, "VersionId", version_id)) < 0)
		rc = smj_answer_error(rc, err, "PutSecretValue", "VersionId");
	kt_json_put_wiped(resp);
	return rc;
}

int sm_update_secret_version_stage(struct aws_client *c, const char *id, const char *stage,
				   const char *move_to, const char *remove_from,
				   struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	if (req != NULL &&
	    (!smj_add_str(req, "SecretId", id) || !smj_add_str(req, "VersionStage", stage) ||
	     !smj_add_str(req, "MoveToVersionId", move_to) ||
	     !smj_add_str(req, "RemoveFromVersionId", remove_from))) {
		json_object_put(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("UpdateSecretVersionStage"), req, &resp, err);
	kt_json_put_wiped(resp);
	return rc;
}

int sm_get_random_password(struct aws_client *c, const struct sm_random_opts *o, char **password,
			   struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *len;
	int rc;

	*password = NULL;
	if (req != NULL && o->length > 0) {
		len = json_object_new_int64(o->length);
		if (len == NULL || json_object_object_add(req, "PasswordLength", len) < 0) {
			json_object_put(req);
			req = NULL;
		}
	}
	if (req != NULL &&
	    (!smj_add_str(req, "ExcludeCharacters", o->exclude_chars) ||
	     !smj_add_bool(req, "ExcludeNumbers", o->exclude_numbers) ||
	     !smj_add_bool(req, "ExcludePunctuation", o->exclude_punctuation) ||
	     !smj_add_bool(req, "ExcludeUppercase", o->exclude_uppercase) ||
	     !smj_add_bool(req, "ExcludeLowercase", o->exclude_lowercase) ||
	     !smj_add_bool(req, "IncludeSpace", o->include_space) ||
	     !smj_add_bool(req, "RequireEachIncludedType", o->require_each_included_type))) {
		json_object_put(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("GetRandomPassword"), req, &resp, err);
	if (rc < 0)
		return rc;
	if ((rc = smj_dup_req(resp, "RandomPassword", password)) < 0)
		rc = smj_answer_error(rc, err, "GetRandomPassword", "RandomPassword");
	kt_json_put_wiped(resp);
	return rc;
}

int sm_create_secret(struct aws_client *c, const char *name, const void *data, size_t len,
		     bool binary, const char *description, char **arn, char **version_id,
		     struct aws_error *err)
{
	struct json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	*arn = NULL;
	*version_id = NULL;
	if ((rc = check_value_size(len, err)) < 0) {
		json_object_put(req);
		return rc;
	}
	if (req != NULL &&
	    (!smj_add_str(req, "Name", name) || !smj_add_str(req, "Description", description) ||
	     !add_value(req, data, len, binary))) {
		kt_json_put_wiped(req);
		req = NULL;
	}
	rc = sm_call(c, SM_TARGET("CreateSecret"), req, &resp, err);
	if (rc < 0)
		return rc;
	if ((rc = smj_dup_req(resp, "ARN", arn)) < 0 ||
	    (rc = smj_dup_opt(resp, "VersionId", version_id)) < 0) {
		free(*arn);
		*arn = NULL;
		rc = smj_answer_error(rc, err, "CreateSecret", "ARN");
	}
	kt_json_put_wiped(resp);
	return rc;
}

const char *sm_description_version_for(const struct sm_description *d, const char *stage)
{
	for (size_t i = 0; i < d->nversions; i++) {
		for (size_t j = 0; j < d->versions[i].nstages; j++) {
			if (strcmp(d->versions[i].stages[j], stage) == 0)
				return d->versions[i].version_id;
		}
	}
	return NULL;
}

void sm_value_free(struct sm_value *v)
{
	if (v == NULL)
		return;
	free(v->arn);
	free(v->name);
	free(v->version_id);
	smj_free_str_array(v->stages, v->nstages);
	kt_free_wiped(v->data, v->len + (v->binary ? 0 : 1));
	memset(v, 0, sizeof(*v));
}

void sm_versions_free(struct sm_version *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		free(v[i].version_id);
		smj_free_str_array(v[i].stages, v[i].nstages);
	}
	free(v);
}

void sm_description_free(struct sm_description *d)
{
	if (d == NULL)
		return;
	free(d->arn);
	free(d->name);
	free(d->rotation_schedule);
	free(d->rotation_duration);
	sm_versions_free(d->versions, d->nversions);
	memset(d, 0, sizeof(*d));
}

void sm_batch_free(struct sm_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->nvalues; i++)
		sm_value_free(&b->values[i]);
	for (size_t i = 0; i < b->nerrors; i++)
		free(b->errors[i].secret_id);
	free(b->values);
	free(b->errors);
	memset(b, 0, sizeof(*b));
}

/* The Secrets Manager Agent's API as the Agent answers it: its checks in
 * its order, its status codes and texts, its GetSecretValue body, AWS's
 * errors passed on as {"__type","message"}. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/kt_json.h"
#include "http_agent.h"

static void refuse(struct kt_agent_req *out, int status, const char *why, const char *message)
{
	out->route = KT_AGENT_ERROR;
	out->status = status;
	out->why = why;
	snprintf(out->message, sizeof(out->message), "%s", message);
}

static bool parse_refresh(const char *v, bool *out)
{
	if (v == NULL)
		return false;
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* The query of a get; the secret comes from the path unless by_query. */
static void get_args(const struct kt_agent_in *in, bool by_query, struct kt_agent_req *out)
{
	char shown[64];

	for (size_t i = 0; i < in->nargs; i++) {
		const char *k = in->args[i].key, *v = in->args[i].value;

		if (by_query && strcmp(k, "secretId") == 0) {
			out->secret = v;
		} else if (strcmp(k, "versionId") == 0) {
			out->version_id = v;
		} else if (strcmp(k, "versionStage") == 0) {
			out->stage = v;
		} else if (strcmp(k, "refreshNow") == 0) {
			if (!parse_refresh(v, &out->refresh)) {
				refuse(out, 400, "parameters", "invalid refreshNow value");
				return;
			}
		} else {
			refuse(out, 400, "parameters", "unknown parameter: ");
			snprintf(out->message, sizeof(out->message), "unknown parameter: %s",
				 kt_json_printable(k, shown, sizeof(shown)));
			return;
		}
	}
	if (out->secret == NULL || out->secret[0] == '\0')
		refuse(out, 400, "parameters",
		       by_query ? "missing parameter secretId" : "missing secret ID");
}

void kt_agent_route(const struct kt_agent_in *in, struct kt_agent_req *out)
{
	bool ping = strcmp(in->path, "/ping") == 0;
	size_t plen = strlen(in->prefix);

	memset(out, 0, sizeof(*out));
	if (!ping && in->forwarded) {
		refuse(out, 400, "forwarded", "Forwarded");
		return;
	}
	if (!ping && !in->token_ok) {
		refuse(out, 403, "bad_token", "Bad Token");
		return;
	}
	if (strcmp(in->method, "GET") != 0) {
		refuse(out, 405, "method", "Not allowed");
		return;
	}
	if (ping) {
		out->route = KT_AGENT_PING;
		return;
	}
	if (in->metrics && strcmp(in->path, "/metrics") == 0) {
		out->route = KT_AGENT_METRICS;
		return;
	}
	out->route = KT_AGENT_GET;
	if (strcmp(in->path, "/secretsmanager/get") == 0) {
		get_args(in, true, out);
		return;
	}
	if (strncmp(in->path, in->prefix, plen) == 0) {
		out->secret = in->path + plen;
		get_args(in, false, out);
		return;
	}
	refuse(out, 404, "path", "Not found");
}

int kt_agent_error_body(struct kt_buf *body, const char *type, const char *message)
{
	int rc = kt_buf_append_str(body, "{\"__type\":");

	if (rc == 0)
		rc = kt_json_append_string(body, type, strlen(type));
	if (rc == 0)
		rc = kt_buf_append_str(body, ",\"message\":");
	if (rc == 0)
		rc = kt_json_append_string(body, message, strlen(message));
	if (rc == 0)
		rc = kt_buf_append_str(body, "}");
	return rc;
}

/* keyturnd's own errors as the AWS errors nearest to them. */
static const struct {
	const char *error;
	int status;
	const char *type;
} own_errors[] = {
	{ "bad_request", 400, "InvalidParameterException" },
	{ "not_found", 400, "ResourceNotFoundException" },
	{ "denied", 403, "AccessDeniedException" },
	{ "throttled", 400, "ThrottlingException" },
	{ "unavailable", 503, "ServiceUnavailableException" },
};

static int error_answer(struct json_object *answer, int *status, struct kt_buf *body)
{
	const char *error = kt_json_str(answer, "error"), *msg = kt_json_str(answer, "message");
	const char *type = "InternalFailure", *cls;
	struct json_object *aws;
	long long st = 0;

	*status = 500;
	if (msg == NULL)
		msg = "";
	if (json_object_object_get_ex(answer, "aws", &aws) &&
	    (cls = kt_json_str(aws, "class")) != NULL) {
		/* What AWS said, passed on; no answer at all is the Agent's
		 * 504 TimeoutError or 502 ConnectionError. */
		if (strcmp(cls, "timeout") == 0) {
			*status = 504;
			type = "TimeoutError";
		} else if (kt_json_int64(aws, "status", &st) && st >= 400 && st <= 599 &&
			   kt_json_str(aws, "type") != NULL &&
			   kt_json_str(aws, "type")[0] != '\0') {
			*status = (int)st;
			type = kt_json_str(aws, "type");
		} else {
			*status = 502;
			type = "ConnectionError";
		}
		return kt_agent_error_body(body, type, msg);
	}
	for (size_t i = 0; error != NULL && i < sizeof(own_errors) / sizeof(own_errors[0]); i++) {
		if (strcmp(error, own_errors[i].error) == 0) {
			*status = own_errors[i].status;
			type = own_errors[i].type;
		}
	}
	return kt_agent_error_body(body, type, msg);
}

/* AWS's name of a secret from its ARN (...:secret:NAME-AbCdEf), or NULL. */
static int append_aws_name(struct kt_buf *b, const char *arn, const char *fallback)
{
	const char *p = arn != NULL ? strstr(arn, ":secret:") : NULL;
	size_t len;

	if (p == NULL)
		return kt_json_append_string(b, fallback, strlen(fallback));
	p += 8;
	len = strlen(p);
	/* AWS adds a hyphen and six random characters to every secret's ARN. */
	if (len > 7 && p[len - 7] == '-')
		len -= 7;
	return kt_json_append_string(b, p, len);
}

int kt_agent_answer(struct json_object *answer, int *status, struct kt_buf *body)
{
	const char *arn = kt_json_str(answer, "arn"), *name = kt_json_str(answer, "name");
	const char *vid = kt_json_str(answer, "version_id");
	struct json_object *ok, *stages, *v;
	long long created = 0;
	int rc;

	if (!json_object_object_get_ex(answer, "ok", &ok) || !json_object_get_boolean(ok))
		return error_answer(answer, status, body);
	if (name == NULL || vid == NULL) {
		*status = 500;
		return kt_agent_error_body(body, "InternalFailure", "");
	}
	*status = 200;
	rc = kt_buf_append_str(body, "{\"ARN\":");
	if (rc == 0)
		rc = arn != NULL ? kt_json_append_string(body, arn, strlen(arn))
				 : kt_buf_append_str(body, "null");
	if (rc == 0)
		rc = kt_buf_append_str(body, ",\"Name\":");
	if (rc == 0)
		rc = append_aws_name(body, arn, name);
	if (rc == 0)
		rc = kt_buf_append_str(body, ",\"VersionId\":");
	if (rc == 0)
		rc = kt_json_append_string(body, vid, strlen(vid));
	if (rc == 0 && json_object_object_get_ex(answer, "string", &v)) {
		rc = kt_buf_append_str(body, ",\"SecretString\":");
		if (rc == 0)
			rc = kt_json_append_string(body, json_object_get_string(v),
						   (size_t)json_object_get_string_len(v));
	} else if (rc == 0 && json_object_object_get_ex(answer, "binary", &v)) {
		rc = kt_buf_append_str(body, ",\"SecretBinary\":");
		if (rc == 0)
			rc = kt_json_append_string(body, json_object_get_string(v),
						   (size_t)json_object_get_string_len(v));
	}
	if (rc == 0)
		rc = kt_buf_append_str(body, ",\"VersionStages\":[");
	if (json_object_object_get_ex(answer, "stages", &stages) &&
	    json_object_is_type(stages, json_type_array)) {
		for (size_t i = 0; rc == 0 && i < json_object_array_length(stages); i++) {
			const char *s =
				json_object_get_string(json_object_array_get_idx(stages, i));

			if (i > 0)
				rc = kt_buf_append_str(body, ",");
			if (rc == 0 && s != NULL)
				rc = kt_json_append_string(body, s, strlen(s));
		}
	}
	/* The Agent writes CreatedDate as seconds in a string. */
	if (rc == 0) {
		if (kt_json_int64(answer, "created", &created) && created > 0)
			rc = kt_buf_printf(body, "],\"CreatedDate\":\"%lld\"}", created);
		else
			rc = kt_buf_append_str(body, "],\"CreatedDate\":null}");
	}
	return rc;
}

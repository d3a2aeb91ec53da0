/* The AWS Secrets Manager Agent's HTTP API, without the HTTP: which request
 * a method, path and query are, in the Agent's order of checks and with its
 * status codes and messages; and the Agent's body for an ops answer. Pure
 * functions, unit-tested and fuzzed apart from the door (http.c). */
#ifndef KT_HTTP_AGENT_H
#define KT_HTTP_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "common/kt_buf.h"

enum kt_agent_route {
	KT_AGENT_ERROR,   /* answer status with the plain-text message */
	KT_AGENT_PING,    /* 200 "healthy" */
	KT_AGENT_METRICS, /* the Prometheus text */
	KT_AGENT_GET,     /* a secret's value */
};

/* One query parameter as the HTTP library decoded it (value NULL: "k" with
 * no "="). */
struct kt_agent_arg {
	const char *key;
	const char *value;
};

struct kt_agent_in {
	const char *method;
	const char *path;   /* decoded, without the query */
	const char *prefix; /* path_prefix, like "/v1/" */
	bool forwarded;     /* an X-Forwarded-For header came */
	bool token_ok;      /* a token header held the token */
	bool metrics;       /* metrics = yes */
	const struct kt_agent_arg *args;
	size_t nargs;
};

struct kt_agent_req {
	enum kt_agent_route route;
	int status;         /* KT_AGENT_ERROR */
	char message[200];  /* KT_AGENT_ERROR: the body */
	const char *why;    /* KT_AGENT_ERROR: a short name for metrics ("bad_token", ...) */
	const char *secret; /* KT_AGENT_GET: these point into in's strings */
	const char *version_id;
	const char *stage;
	bool refresh;
};

/* Decides what a request is, in the Agent's order: X-Forwarded-For (400
 * "Forwarded") and the token (403 "Bad Token"), both skipped for /ping;
 * the method (405 "Not allowed"); the path (404 "Not found"); the
 * parameters (400 "unknown parameter: K", "missing parameter secretId",
 * "missing secret ID", "invalid refreshNow value"). */
void kt_agent_route(const struct kt_agent_in *in, struct kt_agent_req *out);

/* The HTTP status and JSON body for an ops answer to a get: on success the
 * Agent's GetSecretValue body (ARN, Name, VersionId, SecretString or
 * SecretBinary, VersionStages, CreatedDate); on failure
 * {"__type","message"} with AWS's status and type where AWS gave them (the
 * answer's "aws" member), else the closest AWS error for keyturnd's own
 * (denied: 403 AccessDeniedException, not_found: 400
 * ResourceNotFoundException, ...). The body holds the value: the caller
 * wipes it. 0 or -ENOMEM. */
int kt_agent_answer(struct json_object *answer, int *status, struct kt_buf *body);

/* The plain {"__type","message"} body of an error (status is not touched). */
int kt_agent_error_body(struct kt_buf *body, const char *type, const char *message);

#endif

/* Request counters for GET /metrics and the Prometheus text format (0.0.4)
 * they are written in. Label values come from fixed tables, so the number
 * of series has a ceiling whatever callers send. */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/kt_json.h"
#include "metrics.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const door_names[KT_DOOR_N] = {
	[KT_DOOR_SOCKET] = "socket",
	[KT_DOOR_HTTP] = "http",
	[KT_DOOR_CREDENTIALS] = "credentials",
};

static const char *const op_names[KT_MOP_N] = {
	[KT_MOP_GET] = "get",       [KT_MOP_REFRESH] = "refresh", [KT_MOP_LIST] = "list",
	[KT_MOP_STATUS] = "status", [KT_MOP_VERIFY] = "verify",   [KT_MOP_RELOAD] = "reload",
	[KT_MOP_WATCH] = "watch",   [KT_MOP_PING] = "ping",       [KT_MOP_METRICS] = "metrics",
	[KT_MOP_OTHER] = "other",
};

static const char *const result_names[KT_MRES_N] = {
	[KT_MRES_OK] = "ok",
	[KT_MRES_BAD_REQUEST] = "bad_request",
	[KT_MRES_NOT_FOUND] = "not_found",
	[KT_MRES_DENIED] = "denied",
	[KT_MRES_UNAVAILABLE] = "unavailable",
	[KT_MRES_THROTTLED] = "throttled",
	[KT_MRES_INTERNAL] = "internal",
	[KT_MRES_BAD_TOKEN] = "bad_token",
	[KT_MRES_FORWARDED] = "forwarded",
	[KT_MRES_METHOD] = "method",
	[KT_MRES_PATH] = "path",
	[KT_MRES_PARAMETERS] = "parameters",
	[KT_MRES_OTHER] = "other",
};

static const char *const login_names[KT_MLOGIN_N] = {
	[KT_MLOGIN_SUCCESS] = "success",           [KT_MLOGIN_FAILURE] = "failure",
	[KT_MLOGIN_UNKNOWN_USER] = "unknown_user", [KT_MLOGIN_UNAVAILABLE] = "unavailable",
	[KT_MLOGIN_THROTTLED] = "throttled",       [KT_MLOGIN_ERROR] = "error",
};

const char *kt_metrics_door_name(enum kt_door door)
{
	return (unsigned)door < KT_DOOR_N ? door_names[door] : "other";
}

const char *kt_metrics_op_name(enum kt_metrics_op op)
{
	return (unsigned)op < KT_MOP_N ? op_names[op] : "other";
}

const char *kt_metrics_result_name(enum kt_metrics_result res)
{
	return (unsigned)res < KT_MRES_N ? result_names[res] : "other";
}

const char *kt_metrics_login_name(enum kt_metrics_login res)
{
	return (unsigned)res < KT_MLOGIN_N ? login_names[res] : "error";
}

/* The index of name in a table of n names, or other. */
static size_t lookup(const char *const *names, size_t n, const char *name, size_t other)
{
	if (name == NULL)
		return other;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0)
			return i;
	}
	return other;
}

enum kt_metrics_op kt_metrics_op_of(const char *op)
{
	return (enum kt_metrics_op)lookup(op_names, N_OF(op_names), op, KT_MOP_OTHER);
}

enum kt_metrics_result kt_metrics_result_of(const char *result)
{
	return (enum kt_metrics_result)lookup(result_names, N_OF(result_names), result,
					      KT_MRES_OTHER);
}

void kt_metrics_count(struct kt_metrics *m, enum kt_door door, const char *op, const char *result)
{
	if ((unsigned)door >= KT_DOOR_N)
		return;
	m->requests[door][kt_metrics_op_of(op)][kt_metrics_result_of(result)]++;
}

/* A verify answer's outcome, as its audit line words it. */
static enum kt_metrics_login login_of(struct json_object *answer, const char *result)
{
	bool match = false;

	if (strcmp(result, "ok") == 0)
		return kt_json_bool(answer, "match", &match) && match ? KT_MLOGIN_SUCCESS
								      : KT_MLOGIN_FAILURE;
	if (strcmp(result, "not_found") == 0)
		return KT_MLOGIN_UNKNOWN_USER;
	if (strcmp(result, "unavailable") == 0)
		return KT_MLOGIN_UNAVAILABLE;
	if (strcmp(result, "throttled") == 0)
		return KT_MLOGIN_THROTTLED;
	return KT_MLOGIN_ERROR;
}

void kt_metrics_answered(struct kt_metrics *m, enum kt_door door, const char *op,
			 struct json_object *answer)
{
	const char *result = "internal";
	bool ok = false;

	if (answer != NULL) {
		if (kt_json_bool(answer, "ok", &ok) && ok)
			result = "ok";
		else if (kt_json_str(answer, "error") != NULL)
			result = kt_json_str(answer, "error");
	}
	kt_metrics_count(m, door, op, result);
	if (kt_metrics_op_of(op) == KT_MOP_VERIFY)
		m->logins[login_of(answer, result)]++;
}

/* --- the text format ---------------------------------------------------- */

/* Appends s with backslash and newline escaped, and the double quote too
 * when quote is set (label values; HELP text keeps it). */
static int escape(struct kt_buf *out, const char *s, bool quote)
{
	int rc = 0;

	while (rc == 0 && *s != '\0') {
		size_t n = strcspn(s, quote ? "\\\"\n" : "\\\n");

		rc = kt_buf_append(out, s, n);
		s += n;
		if (rc < 0 || *s == '\0')
			break;
		rc = kt_buf_append_str(out, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
		s++;
	}
	return rc;
}

int kt_metrics_escape(struct kt_buf *out, const char *s)
{
	return escape(out, s, true);
}

int kt_metrics_family(struct kt_buf *out, const char *name, const char *type, const char *help)
{
	int rc = kt_buf_printf(out, "# HELP %s ", name);

	if (rc == 0)
		rc = escape(out, help, false);
	if (rc == 0)
		rc = kt_buf_printf(out, "\n# TYPE %s %s\n", name, type);
	return rc;
}

int kt_metrics_sample(struct kt_buf *out, const char *name, const struct kt_metrics_label *labels,
		      size_t nlabels, int64_t value)
{
	int rc = kt_buf_append_str(out, name);

	for (size_t i = 0; rc == 0 && i < nlabels; i++) {
		rc = kt_buf_printf(out, "%s%s=\"", i == 0 ? "{" : ",", labels[i].name);
		if (rc == 0)
			rc = kt_metrics_escape(out, labels[i].value);
		if (rc == 0)
			rc = kt_buf_append_str(out, "\"");
	}
	if (rc == 0 && nlabels > 0)
		rc = kt_buf_append_str(out, "}");
	if (rc == 0)
		rc = kt_buf_printf(out, " %" PRId64 "\n", value);
	return rc;
}

/* --- the families counted here ------------------------------------------ */

static int write_requests(const struct kt_metrics *m, struct kt_buf *out)
{
	int rc = kt_metrics_family(out, "keyturn_requests_total", "counter",
				   "Requests answered, by front door, op and result.");

	for (size_t d = 0; rc == 0 && d < KT_DOOR_N; d++) {
		for (size_t o = 0; rc == 0 && o < KT_MOP_N; o++) {
			for (size_t r = 0; rc == 0 && r < KT_MRES_N; r++) {
				struct kt_metrics_label l[] = {
					{ "door", door_names[d] },
					{ "op", op_names[o] },
					{ "result", result_names[r] },
				};

				if (m->requests[d][o][r] != 0)
					rc = kt_metrics_sample(out, "keyturn_requests_total", l,
							       N_OF(l),
							       (int64_t)m->requests[d][o][r]);
			}
		}
	}
	return rc;
}

int kt_metrics_write(const struct kt_metrics *m, struct kt_buf *out)
{
	int rc = write_requests(m, out);

	if (rc == 0)
		rc = kt_metrics_family(out, "keyturn_cache_hits_total", "counter",
				       "Gets served from a cached value.");
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_cache_hits_total", NULL, 0,
				       (int64_t)m->cache_hits);
	if (rc == 0)
		rc = kt_metrics_family(out, "keyturn_cache_misses_total", "counter",
				       "Gets that had to wait for a fetch from AWS.");
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_cache_misses_total", NULL, 0,
				       (int64_t)m->cache_misses);
	if (rc == 0)
		rc = kt_metrics_family(out, "keyturn_logins_total", "counter",
				       "Password checks (verify) answered, by outcome.");
	for (size_t i = 0; rc == 0 && i < KT_MLOGIN_N; i++) {
		struct kt_metrics_label l = { "result", login_names[i] };

		rc = kt_metrics_sample(out, "keyturn_logins_total", &l, 1, (int64_t)m->logins[i]);
	}
	return rc;
}

/* keyturnd's request counters for GET /metrics, and the writers of the
 * Prometheus text format (0.0.4) that the exposition is made with.
 *
 * Every label value comes from a fixed table: an op or a result a caller
 * makes up is counted as "other", so no request can create a series. The
 * counters are owned by the loop thread (they live in the ops, see
 * ops_int.h) and take no lock: call these from the loop thread only. The
 * writers are plain functions of their arguments. */
#ifndef KT_METRICS_H
#define KT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/kt_buf.h"
#include "request.h"

/* The ops counted by name; anything else is KT_MOP_OTHER. ping and metrics
 * are the HTTP door's own paths (GET /ping, GET /metrics). */
enum kt_metrics_op {
	KT_MOP_GET,
	KT_MOP_REFRESH,
	KT_MOP_LIST,
	KT_MOP_STATUS,
	KT_MOP_VERIFY,
	KT_MOP_RELOAD,
	KT_MOP_WATCH,
	KT_MOP_PING,
	KT_MOP_METRICS,
	KT_MOP_OTHER,
	KT_MOP_N,
};

/* How a request ended: "ok", the protocol's error names (docs/PROTOCOL.md),
 * the HTTP door's own refusals before a request reaches the ops, and
 * "other" for any name not in this list. */
enum kt_metrics_result {
	KT_MRES_OK,
	KT_MRES_BAD_REQUEST,
	KT_MRES_NOT_FOUND,
	KT_MRES_DENIED,
	KT_MRES_UNAVAILABLE,
	KT_MRES_THROTTLED,
	KT_MRES_INTERNAL,
	KT_MRES_BAD_TOKEN,  /* HTTP: no token, or not the token file's (403) */
	KT_MRES_FORWARDED,  /* HTTP: an X-Forwarded-For header (400) */
	KT_MRES_METHOD,     /* HTTP: a method other than GET (405) */
	KT_MRES_PATH,       /* HTTP: a path the door does not serve (404) */
	KT_MRES_PARAMETERS, /* HTTP: a query parameter unknown, missing or bad (400) */
	KT_MRES_OTHER,
	KT_MRES_N,
};

/* The outcomes of verify (keyturn_logins_total{result}), after the
 * result of its audit line: success (match), failure (mismatch),
 * unknown_user (not_found), unavailable, throttled, and error for any
 * other answer (a bad request, a refusal by the permission rule,
 * internal). */
enum kt_metrics_login {
	KT_MLOGIN_SUCCESS,
	KT_MLOGIN_FAILURE,
	KT_MLOGIN_UNKNOWN_USER,
	KT_MLOGIN_UNAVAILABLE,
	KT_MLOGIN_THROTTLED,
	KT_MLOGIN_ERROR,
	KT_MLOGIN_N,
};

struct kt_metrics {
	unsigned long requests[KT_DOOR_N][KT_MOP_N][KT_MRES_N];
	unsigned long cache_hits;   /* gets served from a cached value */
	unsigned long cache_misses; /* gets that had to wait for a fetch */
	unsigned long logins[KT_MLOGIN_N];
};

/* The label value of each, for the exposition and for tests. */
const char *kt_metrics_door_name(enum kt_door door);
const char *kt_metrics_op_name(enum kt_metrics_op op);
const char *kt_metrics_result_name(enum kt_metrics_result res);
const char *kt_metrics_login_name(enum kt_metrics_login res);

/* The table entry for a name; KT_MOP_OTHER, KT_MRES_OTHER for NULL or a
 * name not in the table. */
enum kt_metrics_op kt_metrics_op_of(const char *op);
enum kt_metrics_result kt_metrics_result_of(const char *result);

/* Counts one answered request: door, op (a request's "op" member, or the
 * HTTP door's "ping"/"metrics") and result (a name as above). The HTTP
 * door counts what it answers itself through kt_ops_count_door (ops.h):
 * GET /ping and /metrics as ok, and its refusals before a request reaches
 * the ops as op "other" with the refusal's name as result. */
void kt_metrics_count(struct kt_metrics *m, enum kt_door door, const char *op, const char *result);

/* Counts one answer the ops made: its result is "ok" for {"ok":true,...},
 * else its "error" member ("internal" for a NULL answer). A verify answer
 * is counted among the logins as well. */
void kt_metrics_answered(struct kt_metrics *m, enum kt_door door, const char *op,
			 struct json_object *answer);

/* Appends keyturn_requests_total, keyturn_cache_hits_total,
 * keyturn_cache_misses_total and keyturn_logins_total. Series of
 * keyturn_requests_total are written only where the count is not zero
 * (the family's header always); the other families are written whole.
 * 0, or kt_buf's -E2BIG or -ENOMEM. */
int kt_metrics_write(const struct kt_metrics *m, struct kt_buf *out);

/* --- the text format ---------------------------------------------------- */

struct kt_metrics_label {
	const char *name;  /* a valid label name: the caller's constant */
	const char *value; /* any text: escaped here */
};

/* "# HELP name help" (help escaped: backslash and newline) and
 * "# TYPE name type" (counter, gauge). 0 or kt_buf's error. */
int kt_metrics_family(struct kt_buf *out, const char *name, const char *type, const char *help);

/* One sample line: name{label="value",...} value. Label values are
 * escaped as the format asks (backslash, double quote, newline); nlabels
 * may be 0 (no braces then). 0 or kt_buf's error. */
int kt_metrics_sample(struct kt_buf *out, const char *name, const struct kt_metrics_label *labels,
		      size_t nlabels, int64_t value);

/* Appends s to out as a label value (no quotes): \ as \\, " as \", a
 * newline as \n. 0 or kt_buf's error. */
int kt_metrics_escape(struct kt_buf *out, const char *s);

#endif

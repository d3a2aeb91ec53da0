/* GET /metrics: the Prometheus text exposition (format 0.0.4) of keyturnd's
 * counters and gauges. Per-secret series only for the secrets the caller
 * may read (root: all); never a value, only names and counts. */
#include "config.h"

#include "common/kt_json.h"
#include "ops_int.h"

struct aws_walk {
	struct kt_buf *out;
	int rc;
};

void kt_ops_count_door(struct kt_ops *ops, enum kt_door door, const char *op, const char *result)
{
	kt_metrics_count(&ops->metrics, door, op, result);
}

static void add_aws(void *ctx, const char *op, const char *result, unsigned long n)
{
	struct aws_walk *w = ctx;
	struct kt_metrics_label l[] = { { "op", op }, { "result", result } };

	if (w->rc == 0)
		w->rc = kt_metrics_sample(w->out, "keyturn_aws_requests_total", l, 2, (int64_t)n);
}

static int write_aws(struct kt_buf *out)
{
	struct aws_walk w = { out, 0 };

	w.rc = kt_metrics_family(out, "keyturn_aws_requests_total", "counter",
				 "HTTP requests sent to AWS (each retry is one), by operation and "
				 "result.");
	if (w.rc == 0)
		aws_client_counts_walk(add_aws, &w);
	return w.rc;
}

/* The secrets a caller sees here: those it may read (root: all), never the
 * ones only logins use. */
static bool shown(const struct kt_entry *e, const struct kt_peer *peer)
{
	return !e->login_only && kt_acl_may_read(e->cfg, peer);
}

static int write_secrets(struct kt_ops *ops, const struct kt_peer *peer, time_t now,
			 struct kt_buf *out)
{
	const struct kt_cache *c = ops->cache;
	int rc = kt_metrics_family(
		out, "keyturn_secret_age_seconds", "gauge",
		"Seconds since AWS last answered a check or fetch of the secret.");

	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const struct kt_entry *e = c->entries[i];
		struct kt_metrics_label l = { "secret", e->name };

		if (e->last_ok != 0 && shown(e, peer))
			rc = kt_metrics_sample(out, "keyturn_secret_age_seconds", &l, 1,
					       now > e->last_ok ? (int64_t)(now - e->last_ok) : 0);
	}
	if (rc == 0)
		rc = kt_metrics_family(out, "keyturn_secret_version_changes_total", "counter",
				       "Times AWSCURRENT moved to a newly fetched version.");
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const struct kt_entry *e = c->entries[i];
		struct kt_metrics_label l = { "secret", e->name };

		if (shown(e, peer))
			rc = kt_metrics_sample(out, "keyturn_secret_version_changes_total", &l, 1,
					       (int64_t)e->version_changes);
	}
	return rc;
}

/* Messages received from the rotation events queue: 0 without [events]. */
static int write_events(struct kt_ops *ops, struct kt_buf *out)
{
	struct json_object *o = NULL, *v;
	int64_t n = 0;
	int rc;

	if (ops->env.events_status != NULL)
		o = ops->env.events_status(ops->env.ctx);
	if (o != NULL && json_object_object_get_ex(o, "received", &v) &&
	    json_object_is_type(v, json_type_int))
		n = json_object_get_int64(v);
	json_object_put(o);
	rc = kt_metrics_family(out, "keyturn_events_received_total", "counter",
			       "Messages received from the rotation events queue.");
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_events_received_total", NULL, 0, n);
	return rc;
}

/* A door's open connections (0 for a door that is not there). */
static int64_t door_connections(struct kt_ops *ops,
				void (*stats)(void *ctx, struct kt_door_stats *out))
{
	struct kt_door_stats st = { 0 };

	if (stats == NULL)
		return 0;
	stats(ops->env.ctx, &st);
	json_object_put(st.socket);
	return (int64_t)st.connections;
}

static int write_connections(struct kt_ops *ops, struct kt_buf *out)
{
	struct kt_metrics_label sock = { "door", kt_metrics_door_name(KT_DOOR_SOCKET) },
				http = { "door", kt_metrics_door_name(KT_DOOR_HTTP) },
				cred = { "door", kt_metrics_door_name(KT_DOOR_CREDENTIALS) };
	int rc = kt_metrics_family(out, "keyturn_connections", "gauge",
				   "Connections open, by front door.");

	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_connections", &sock, 1,
				       door_connections(ops, ops->env.door_stats));
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_connections", &http, 1,
				       door_connections(ops, ops->env.http_stats));
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_connections", &cred, 1,
				       door_connections(ops, ops->env.cred_stats));
	return rc;
}

/* The exposition is written in one go on the loop thread. The scrape
 * itself is counted by the door that answers it (kt_ops_count_door). */
int kt_ops_metrics(struct kt_ops *ops, const struct kt_peer *peer, struct kt_buf *out)
{
	size_t start = out->len;
	int rc = kt_metrics_write(&ops->metrics, out);

	if (rc == 0)
		rc = write_aws(out);
	if (rc == 0)
		rc = write_secrets(ops, peer, kt_sched_now(), out);
	if (rc == 0)
		rc = write_events(ops, out);
	if (rc == 0)
		rc = write_connections(ops, out);
	if (rc == 0)
		rc = kt_metrics_family(out, "keyturn_up", "gauge", "1 while keyturnd runs.");
	if (rc == 0)
		rc = kt_metrics_sample(out, "keyturn_up", NULL, 0, 1);
	if (rc < 0)
		kt_buf_truncate(out, start);
	return rc;
}

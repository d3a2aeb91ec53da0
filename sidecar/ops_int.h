/* What ops.c, ops_status.c, ops_list.c, ops_metrics.c, ops_watch.c and
 * ops_admin.c share; not a public face. */
#ifndef KT_OPS_INT_H
#define KT_OPS_INT_H

#include "metrics.h"
#include "ops.h"

struct kt_ops {
	struct kt_ops_env env;
	struct kt_engine *eng;
	struct kt_cache *cache; /* eng's */
	const struct kt_config *cfg;
	unsigned long denied;        /* requests refused by an access rule */
	struct kt_metrics metrics;   /* what GET /metrics shows (loop thread only) */
	struct kt_watcher *watchers; /* connections in watch mode (ops_watch.c) */
	size_t nwatchers;
};

/* The status answer for the caller peer (now: schedule clock). */
struct json_object *kt_ops_status(struct kt_ops *ops, const struct kt_peer *peer, time_t now);

/* One page of the list answer for peer (req: limit, next), an error
 * answer for a bad request, or NULL when out of memory. */
struct json_object *kt_ops_list(struct kt_ops *ops, const struct kt_peer *peer,
				struct json_object *req, time_t now);

/* ops_watch.c. The watch op for the caller r->peer. */
enum kt_op_result kt_ops_watch(struct kt_ops *ops, const struct kt_request *r,
			       struct json_object **answer);
/* Subscribes the watchers to the engine's news. 0 or -ENOSPC. */
int kt_ops_watch_start(struct kt_ops *ops);
/* After a reload: ends the watches of secrets removed or no longer
 * readable by their watcher, with a last frame. */
void kt_ops_watch_configure(struct kt_ops *ops);
void kt_ops_watch_free(struct kt_ops *ops);

/* ops_admin.c: root's ops. reload (audited by the caller) and rotate. */
enum kt_op_result kt_ops_reload(struct kt_ops *ops, struct json_object **answer);
enum kt_op_result kt_ops_rotate(struct kt_ops *ops, const struct kt_request *r,
				struct json_object **answer);

#endif

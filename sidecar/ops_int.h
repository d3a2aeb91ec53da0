/* What ops.c, ops_status.c, ops_list.c and ops_metrics.c share; not a
 * public face. */
#ifndef KT_OPS_INT_H
#define KT_OPS_INT_H

#include "metrics.h"
#include "ops.h"

struct kt_ops {
	struct kt_ops_env env;
	struct kt_engine *eng;
	struct kt_cache *cache; /* eng's */
	const struct kt_config *cfg;
	unsigned long denied;      /* requests refused by an access rule */
	struct kt_metrics metrics; /* what GET /metrics shows (loop thread only) */
};

/* The status answer for the caller peer (now: schedule clock). */
struct json_object *kt_ops_status(struct kt_ops *ops, const struct kt_peer *peer, time_t now);

/* One page of the list answer for peer (req: limit, next), an error
 * answer for a bad request, or NULL when out of memory. */
struct json_object *kt_ops_list(struct kt_ops *ops, const struct kt_peer *peer,
				struct json_object *req, time_t now);

#endif

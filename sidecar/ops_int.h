/* What ops.c and ops_status.c share; not a public face. */
#ifndef KT_OPS_INT_H
#define KT_OPS_INT_H

#include "ops.h"

struct kt_ops {
	struct kt_ops_env env;
	struct kt_engine *eng;
	struct kt_cache *cache; /* eng's */
	const struct kt_config *cfg;
	unsigned long denied; /* requests refused by an access rule */
};

/* The status answer for the caller peer (now: schedule clock). */
struct json_object *kt_ops_status(struct kt_ops *ops, const struct kt_peer *peer, time_t now);

#endif

/* What verifier.c and verifier_json.c share; not a public face (verifier.h
 * is). verifier.c owns the files in state_dir: naming, the atomic write,
 * the checked read, removal and pruning. verifier_json.c owns the JSON form
 * of one verifier, both ways, and touches no file. Calls go one way only:
 * verifier.c calls verifier_json.c. */
#ifndef KT_VERIFIER_INT_H
#define KT_VERIFIER_INT_H

#include <json-c/json.h>

#include "verifier.h"

/* The JSON object of a complete v (version 1), or NULL when out of memory.
 * The caller puts it with kt_json_put_wiped: it holds the hashes. */
struct json_object *kt_verifier_to_json(const struct kt_verifier *v);

/* Fills v (zeroed by the caller) from a parsed file: 0, -EINVAL for
 * anything but a version 1 verifier, or -ENOMEM. On error v may hold part
 * of what was read; the caller clears it with kt_verifier_clear. */
int kt_verifier_from_json(struct json_object *obj, struct kt_verifier *v);

#endif

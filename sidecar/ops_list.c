/* The list op's pages: the configured secrets a caller may read, with
 * their metadata and never a value. */
#include "config.h"

#include "answer.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "ops_int.h"

#define LIST_PAGE_MAX 500
#define LIST_PAGE_BYTES (768u * 1024u)

/* One page of list: at most LIST_PAGE_MAX secrets and LIST_PAGE_BYTES of
 * them, so that thousands of secrets never make an answer over 1 MiB. A
 * page that stops early says where to go on ("next": the last name it
 * holds, opaque to callers; the cache is sorted by name, so the next page
 * starts with a binary search). */
struct json_object *kt_ops_list(struct kt_ops *ops, const struct kt_peer *peer,
				struct json_object *req, time_t now)
{
	const struct kt_cache *c = ops->cache;
	struct json_object *o = NULL, *arr = NULL, *v;
	const char *after = NULL, *last = NULL;
	long long limit = LIST_PAGE_MAX;
	size_t bytes = 0, n = 0, i;

	if (json_object_object_get_ex(req, "limit", &v) &&
	    !json_object_is_type(v, json_type_null) &&
	    (!json_object_is_type(v, json_type_int) || (limit = json_object_get_int64(v)) < 1)) {
		return kt_proto_error(KT_PERR_BAD_REQUEST, "\"limit\" must be a positive integer");
	}
	if (limit > LIST_PAGE_MAX)
		limit = LIST_PAGE_MAX;
	if (!kt_json_opt_str(req, "next", false, &after)) {
		return kt_proto_error(KT_PERR_BAD_REQUEST,
				      "\"next\" must be the non-empty token of the previous page");
	}
	o = kt_answer_ok();
	arr = json_object_new_array();
	if (o == NULL || arr == NULL)
		goto nomem;
	for (i = kt_cache_after(c, after); i < c->n; i++) {
		struct kt_entry *e = c->entries[i];
		struct json_object *m;
		size_t len = 0;

		if (e->login_only || !kt_acl_may_read(e->cfg, peer))
			continue;
		if (n == (size_t)limit)
			break;
		m = kt_answer_metadata(e, now, ops->cfg->max_stale);
		if (m == NULL || json_object_to_json_string_length(
					 m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					 &len) == NULL) {
			json_object_put(m);
			goto nomem;
		}
		if (n > 0 && bytes + len + 1 > LIST_PAGE_BYTES) {
			json_object_put(m);
			break;
		}
		bytes += len + 1;
		if (json_object_array_add(arr, m) < 0) {
			json_object_put(m);
			goto nomem;
		}
		last = e->name;
		n++;
	}
	json_object_object_add(o, "secrets", arr);
	/* Stopped at a secret this caller may read: more remain. */
	if (i < c->n && last != NULL)
		json_object_object_add(o, "next", json_object_new_string(last));
	return o;
nomem:
	json_object_put(arr);
	json_object_put(o);
	return NULL;
}

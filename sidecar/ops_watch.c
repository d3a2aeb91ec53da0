/* The watch op: a socket connection that asks to watch secrets is told of
 * each new AWSCURRENT value of them (name, version, when it was fetched;
 * never a value) until it hangs up. The engine's news come here through a
 * subscription; frames leave through the door's push callback, which
 * bounds what a watcher that does not read may hold. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "ops_int.h"

/* Names one watch request may hold: enough for a service's secrets, and a
 * ceiling on the work each change costs per watcher. */
#define WATCH_MAX_NAMES 64

struct kt_watcher {
	struct kt_watcher *next;
	uint64_t conn_id;
	struct kt_peer peer; /* as it connected: allow_* are checked again on reload */
	size_t n;
	char **names;
};

static void watcher_free(struct kt_watcher *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->names[i]);
	free(w->names);
	free(w);
}

/* Takes *pp's watcher off the list and frees it. */
static void watcher_drop(struct kt_ops *ops, struct kt_watcher **pp)
{
	struct kt_watcher *w = *pp;

	*pp = w->next;
	ops->nwatchers--;
	watcher_free(w);
}

static void audit(const struct kt_request *r, const char *secret, const char *result)
{
	log_audit("access", strcmp(result, "allowed") == 0,
		  "op=watch secret=%s uid=%lu pid=%ld result=%s", secret,
		  (unsigned long)r->peer->uid, (long)r->peer->pid, result);
}

/* The name at i of the request's "secrets", or NULL with *answer set. */
static const char *request_name(struct json_object *list, size_t i, struct json_object **answer)
{
	struct json_object *v = json_object_array_get_idx(list, i);
	const char *s;

	if (!json_object_is_type(v, json_type_string) || (s = json_object_get_string(v)) == NULL ||
	    s[0] == '\0' || strlen(s) != (size_t)json_object_get_string_len(v)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"secrets\" must hold non-empty strings");
		return NULL;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
						 "\"secrets\" holds a control character");
			return NULL;
		}
	}
	return s;
}

/* Whether the caller may watch name, as get decides whether it may read
 * it: a caller other than root gets one answer for a name it may not read,
 * configured or not. NULL when it may, else the refusal. */
static struct json_object *refusal(struct kt_ops *ops, const struct kt_request *r, const char *name)
{
	struct kt_entry *e = kt_cache_find(ops->cache, name);
	char shown[160];

	kt_json_printable(name, shown, sizeof(shown));
	if (e == NULL || e->login_only) {
		audit(r, shown, "not_found");
		if (r->peer->uid == 0)
			return kt_proto_error(KT_PERR_NOT_FOUND, "no secret named %s is configured",
					      shown);
	} else if (kt_acl_may_read(e->cfg, r->peer)) {
		return NULL;
	} else {
		audit(r, e->name, "denied");
	}
	ops->denied++;
	return kt_proto_error(KT_PERR_DENIED, "uid %lu may not read %s",
			      (unsigned long)r->peer->uid, shown);
}

enum kt_op_result kt_ops_watch(struct kt_ops *ops, const struct kt_request *r,
			       struct json_object **answer)
{
	struct json_object *list = NULL, *shown = NULL;
	struct kt_watcher *w = NULL;
	size_t n = 0;
	const char *name;

	if (kt_conn_door(r->conn_id) != KT_DOOR_SOCKET || ops->env.watch == NULL) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "watch is served on keyturnd's Unix socket only");
		return KT_OP_ANSWER;
	}
	if (!json_object_object_get_ex(r->req, "secrets", &list) ||
	    !json_object_is_type(list, json_type_array) ||
	    (n = json_object_array_length(list)) == 0 || n > WATCH_MAX_NAMES) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"secrets\" must be an array of 1 to %d names",
					 WATCH_MAX_NAMES);
		return KT_OP_ANSWER;
	}
	for (size_t i = 0; i < n; i++) {
		if ((name = request_name(list, i, answer)) == NULL ||
		    (*answer = refusal(ops, r, name)) != NULL)
			return KT_OP_ANSWER;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL || (w->names = calloc(n, sizeof(char *))) == NULL ||
	    (shown = json_object_new_array()) == NULL)
		goto nomem;
	w->conn_id = r->conn_id;
	w->peer = *r->peer;
	for (; w->n < n; w->n++) {
		name = json_object_get_string(json_object_array_get_idx(list, w->n));
		if ((w->names[w->n] = kt_strdup(name)) == NULL ||
		    json_object_array_add(shown, json_object_new_string(name)) < 0)
			goto nomem;
		audit(r, w->names[w->n], "allowed");
	}
	*answer = kt_answer_ok();
	if (*answer == NULL)
		goto nomem;
	json_object_object_add(*answer, "watching", shown);
	if (ops->env.watch(ops->env.ctx, r->conn_id) < 0) {
		json_object_put(*answer);
		*answer = kt_proto_error(KT_PERR_INTERNAL, "cannot watch on this connection");
		watcher_free(w);
		return KT_OP_ANSWER;
	}
	w->next = ops->watchers;
	ops->watchers = w;
	ops->nwatchers++;
	return KT_OP_ANSWER;
nomem:
	json_object_put(shown);
	watcher_free(w);
	*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
	return KT_OP_ANSWER;
}

static bool watches(const struct kt_watcher *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->names[i], name) == 0)
			return true;
	}
	return false;
}

/* The engine's news: one frame per new AWSCURRENT value to each watcher
 * of the secret that may still read it. A watcher whose frame could not
 * be queued has been closed by its door. */
static void news(void *ctx, enum kt_news what, struct kt_entry *e, const char *version)
{
	struct kt_ops *ops = ctx;
	struct kt_watcher **pp = &ops->watchers;

	if (what != KT_NEWS_CHANGED || version == NULL || e->login_only)
		return;
	while (*pp != NULL) {
		struct kt_watcher *w = *pp;
		struct json_object *o;

		if (!watches(w, e->name) || !kt_acl_may_read(e->cfg, &w->peer)) {
			pp = &w->next;
			continue;
		}
		o = kt_answer_ok();
		if (o != NULL) {
			json_object_object_add(o, "event", json_object_new_string("changed"));
			json_object_object_add(o, "name", json_object_new_string(e->name));
			json_object_object_add(o, "version_id", json_object_new_string(version));
			json_object_object_add(o, "fetched_at",
					       json_object_new_int64((int64_t)e->cur.fetched_at));
		}
		if (ops->env.push(ops->env.ctx, w->conn_id, o, false) < 0)
			watcher_drop(ops, pp);
		else
			pp = &w->next;
	}
}

int kt_ops_watch_start(struct kt_ops *ops)
{
	return kt_engine_subscribe(ops->eng, news, ops);
}

/* Why w may no longer watch one of its names under the configuration now
 * in force, as a last frame; NULL when it still may watch them all. */
static struct json_object *watch_ended(const struct kt_ops *ops, const struct kt_watcher *w)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct kt_secret_cfg *sc = kt_config_secret(ops->cfg, w->names[i]);
		char shown[160];

		kt_json_printable(w->names[i], shown, sizeof(shown));
		if (sc == NULL && w->peer.uid == 0)
			return kt_proto_error(KT_PERR_NOT_FOUND, "%s is no longer configured",
					      shown);
		if (sc == NULL || !kt_acl_may_read(sc, &w->peer))
			return kt_proto_error(KT_PERR_DENIED, "uid %lu may no longer read %s",
					      (unsigned long)w->peer.uid, shown);
	}
	return NULL;
}

void kt_ops_watch_configure(struct kt_ops *ops)
{
	struct kt_watcher **pp = &ops->watchers;

	while (*pp != NULL) {
		struct json_object *last = watch_ended(ops, *pp);

		if (last == NULL) {
			pp = &(*pp)->next;
			continue;
		}
		log_info("reload: ending the watch of uid %lu pid %ld: %s",
			 (unsigned long)(*pp)->peer.uid, (long)(*pp)->peer.pid,
			 kt_json_str(last, "message"));
		(void)ops->env.push(ops->env.ctx, (*pp)->conn_id, last, true);
		watcher_drop(ops, pp);
	}
}

void kt_ops_gone(struct kt_ops *ops, uint64_t conn_id)
{
	for (struct kt_watcher **pp = &ops->watchers; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->conn_id == conn_id) {
			watcher_drop(ops, pp);
			return;
		}
	}
}

void kt_ops_watch_free(struct kt_ops *ops)
{
	while (ops->watchers != NULL)
		watcher_drop(ops, &ops->watchers);
}

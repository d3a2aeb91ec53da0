/* The status op's answer: the backend's state, counts of secrets, the last
 * errors, the front doors' figures, locked memory and offline logins. A
 * caller other than root sees only what concerns the secrets it may read.
 * Never a value. */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "answer.h"
#include "common/secmem.h"
#include "ops_int.h"

/* Logins whose offline verifiers could not be written, or were removed as
 * superseded, since when and why (login/offline.c): offline checks for them
 * fail until a write succeeds. Root sees every one, others those of the
 * secrets they may read; the first 32 are listed, all are counted. */
static struct json_object *offline_unavailable(const struct kt_ops *ops, const struct kt_peer *peer)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int64_t n = 0;

	for (size_t i = 0; arr != NULL && i < ops->cache->n; i++) {
		const struct kt_entry *e = ops->cache->entries[i];
		struct json_object *eo;

		if (e->offline_failed_at == 0 ||
		    (peer->uid != 0 && (e->login_only || !kt_acl_may_read(e->cfg, peer))))
			continue;
		if (n++ >= 32)
			continue;
		eo = json_object_new_object();
		json_object_object_add(eo, "secret", json_object_new_string(e->name));
		json_object_object_add(eo, "since", json_object_new_int64(e->offline_failed_at));
		json_object_object_add(eo, "message", json_object_new_string(e->offline_error));
		json_object_array_add(arr, eo);
	}
	if (o != NULL) {
		json_object_object_add(o, "count", json_object_new_int64(n));
		json_object_object_add(o, "secrets", arr);
	} else {
		json_object_put(arr);
	}
	return o;
}

struct errors_walk {
	struct kt_ops *ops;
	const struct kt_peer *peer;
	struct json_object *arr;
};

/* A caller sees the errors of the secrets it may read, and no others. */
static void add_error(void *ctx, const char *secret, const char *message, time_t at)
{
	struct errors_walk *w = ctx;
	struct kt_entry *e = kt_cache_find(w->ops->cache, secret);
	struct json_object *eo;

	if (w->arr == NULL ||
	    (w->peer->uid != 0 && (e == NULL || !kt_acl_may_read(e->cfg, w->peer))))
		return;
	eo = json_object_new_object();
	json_object_object_add(eo, "secret", json_object_new_string(secret));
	json_object_object_add(eo, "message", json_object_new_string(message));
	json_object_object_add(eo, "at", json_object_new_int64(at));
	json_object_array_add(w->arr, eo);
}

static struct json_object *backend(struct kt_ops *ops, size_t failing, time_t now)
{
	struct json_object *b = json_object_new_object();
	time_t throttled = kt_engine_throttled_until(ops->eng);
	struct aws_client *aws = ops->env.aws;
	const char *state = "ok";

	if (throttled > now)
		state = "throttled";
	else if (failing > 0 && failing == ops->cache->n)
		state = "unreachable";
	else if (failing > 0)
		state = "degraded";
	json_object_object_add(b, "state", json_object_new_string(state));
	json_object_object_add(b, "region", json_object_new_string(aws_client_region(aws)));
	json_object_object_add(b, "endpoint", json_object_new_string(aws_client_endpoint(aws)));
	json_object_object_add(b, "aws_requests",
			       json_object_new_int64((int64_t)aws_client_requests_sent(aws)));
	json_object_object_add(
		b, "throttled_until",
		json_object_new_int64(throttled > now ? kt_sched_to_wall(throttled, now, time(NULL))
						      : 0));
	return b;
}

/* Rotation events (events.c, through the daemon): {"state":"off"} without. */
static struct json_object *events_status(struct kt_ops *ops)
{
	struct json_object *o = NULL;

	if (ops->env.events_status != NULL)
		o = ops->env.events_status(ops->env.ctx);
	if (o == NULL && (o = json_object_new_object()) != NULL)
		json_object_object_add(o, "state", json_object_new_string("off"));
	return o;
}

/* The HTTP door: its listen addresses (the object its stats give) with its
 * figures added; {"state":"off"} without an HTTP door. */
static struct json_object *http_status(struct kt_ops *ops)
{
	struct kt_door_stats st = { 0 };
	struct json_object *o;

	if (ops->env.http_stats == NULL) {
		o = json_object_new_object();
		if (o != NULL)
			json_object_object_add(o, "state", json_object_new_string("off"));
		return o;
	}
	ops->env.http_stats(ops->env.ctx, &st);
	o = st.socket;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		if ((o = json_object_new_object()) == NULL)
			return NULL;
	}
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)st.connections));
	json_object_object_add(o, "refused", json_object_new_int64((int64_t)st.refused));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)st.requests));
	return o;
}

/* {"state":"off"}, or the credentials door's socket and figures. */
static struct json_object *cred_status(struct kt_ops *ops)
{
	struct kt_door_stats st = { 0 };
	struct json_object *o;

	if (ops->env.cred_stats != NULL)
		ops->env.cred_stats(ops->env.ctx, &st);
	o = st.socket;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		if ((o = json_object_new_object()) == NULL)
			return NULL;
	}
	json_object_object_add(o, "state",
			       json_object_new_string(ops->env.cred_stats != NULL ? "on" : "off"));
	if (ops->env.cred_stats == NULL)
		return o;
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)st.connections));
	json_object_object_add(o, "served", json_object_new_int64((int64_t)st.requests));
	json_object_object_add(o, "refused", json_object_new_int64((int64_t)st.refused));
	return o;
}

struct json_object *kt_ops_status(struct kt_ops *ops, const struct kt_peer *peer, time_t now)
{
	struct json_object *o = kt_answer_ok(), *s = json_object_new_object(),
			   *m = json_object_new_object();
	struct errors_walk w = { ops, peer, json_object_new_array() };
	struct kt_door_stats door = { 0 };
	struct kt_secure_stats sec;
	size_t cached = 0, stale = 0, failing = 0;

	if (o == NULL || s == NULL || m == NULL) {
		json_object_put(o);
		json_object_put(s);
		json_object_put(m);
		json_object_put(w.arr);
		return NULL;
	}
	for (size_t i = 0; i < ops->cache->n; i++) {
		struct kt_entry *e = ops->cache->entries[i];

		cached += e->cur.data != NULL;
		stale += e->cur.data != NULL && kt_entry_stale(e);
		failing += e->failures > 0;
	}
	json_object_object_add(s, "configured", json_object_new_int64((int64_t)ops->cache->n));
	json_object_object_add(s, "cached", json_object_new_int64((int64_t)cached));
	json_object_object_add(s, "stale", json_object_new_int64((int64_t)stale));
	json_object_object_add(s, "failing", json_object_new_int64((int64_t)failing));
	kt_engine_errors(ops->eng, add_error, &w);
	if (ops->env.door_stats != NULL)
		ops->env.door_stats(ops->env.ctx, &door);
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "uptime", json_object_new_int64(now - ops->env.started));
	json_object_object_add(o, "backend", backend(ops, failing, now));
	json_object_object_add(o, "secrets", s);
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)door.connections));
	kt_secure_stats(&sec);
	json_object_object_add(m, "size", json_object_new_int64((int64_t)sec.size));
	json_object_object_add(m, "used", json_object_new_int64((int64_t)sec.used));
	json_object_object_add(m, "refused", json_object_new_int64((int64_t)sec.refused));
	json_object_object_add(o, "locked_memory", m);
	json_object_object_add(o, "unsent_bytes", json_object_new_int64((int64_t)door.unsent));
	json_object_object_add(o, "refused_connections",
			       json_object_new_int64((int64_t)door.refused));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)door.requests));
	json_object_object_add(o, "denied", json_object_new_int64((int64_t)ops->denied));
	json_object_object_add(o, "last_errors", w.arr);
	json_object_object_add(o, "socket", door.socket);
	json_object_object_add(o, "offline_unavailable", offline_unavailable(ops, peer));
	/* Rotations name SecretIds and quote commands' stderr: root's. */
	json_object_object_add(o, "rotations",
			       ops->env.rotations_status != NULL && peer->uid == 0
				       ? ops->env.rotations_status(ops->env.ctx)
				       : json_object_new_object());
	json_object_object_add(o, "files",
			       ops->env.files_status != NULL ? ops->env.files_status(ops->env.ctx)
							     : json_object_new_object());
	json_object_object_add(o, "events", events_status(ops));
	json_object_object_add(o, "http", http_status(ops));
	json_object_object_add(o, "credentials", cred_status(ops));
	return o;
}

/* The requests keyturnd answers, dispatched from one table of
 * {op, who may call, handler} (in the manner of SSSD's sss_cmd_table). The
 * ops turn a request into engine calls and an answer; they own no socket:
 * a front door hands them a struct kt_request, and answers to requests
 * that waited go back through the reply callback. */
#ifndef KT_OPS_H
#define KT_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "common/kt_buf.h"
#include "aws/client.h"
#include "conf.h"
#include "engine.h"
#include "login/login.h"
#include "request.h"

struct kt_ops;

/* The front door's figures for status. */
struct kt_door_stats {
	size_t connections;
	size_t unsent;              /* bytes of answers queued and not yet sent */
	unsigned long refused;      /* connections refused by a quota or the cap */
	unsigned long requests;     /* request frames read */
	struct json_object *socket; /* the socket's state (taken), or NULL */
};

/* What the ops work with; the pointers must outlive the ops. */
struct kt_ops_env {
	struct kt_engine *eng;
	struct kt_login *login;
	struct aws_client *aws; /* region, endpoint and calls made, for status */
	time_t started;         /* schedule clock: uptime for status */
	/* Fills the socket door's figures (status). */
	void (*door_stats)(void *ctx, struct kt_door_stats *out);
	/* Fills the HTTP door's figures, or NULL when there is no HTTP door;
	 * out->socket is then status's "http" object (listen addresses). */
	void (*http_stats)(void *ctx, struct kt_door_stats *out);
	/* Fills the credentials door's figures (requests: values served), or
	 * NULL without one; out->socket is then status's "credentials" object. */
	void (*cred_stats)(void *ctx, struct kt_door_stats *out);
	/* Delivers the answer (taken) of a request that waited; conn_id's
	 * door (kt_conn_door) says where it goes. */
	void (*reply)(void *ctx, uint64_t conn_id, struct json_object *answer);
	/* Puts a socket connection in watch mode once its watch request is
	 * answered (kt_server_watch): 0, or a negative errno. NULL: the op
	 * watch is refused as unavailable. */
	int (*watch)(void *ctx, uint64_t conn_id);
	/* Sends a watching connection one more frame (answer taken); last:
	 * the connection is closed after it (kt_server_push). 0, or a
	 * negative errno when the connection is gone or was closed for not
	 * reading what it was sent. */
	int (*push)(void *ctx, uint64_t conn_id, struct json_object *answer, bool last);
	/* Reads the configuration file again and applies it (the reload op);
	 * 0, or -1 with err saying why the one in use was kept. */
	int (*reload)(void *ctx, char *err, size_t errlen);
	/* status's "events" object (new; NULL when out of memory), or NULL
	 * for none: then {"state":"off"}. */
	struct json_object *(*events_status)(void *ctx);
	/* The rotate op: starts (or joins) [rotate:name]'s rotation and answers
	 * conn_id through reply when it ends. 0, -ENOENT for no such section,
	 * or another negative errno. NULL: no rotation is configured. */
	int (*rotate)(void *ctx, const char *name, uint64_t conn_id);
	/* status's "rotations" object (new), or NULL for none: then {}. */
	struct json_object *(*rotations_status)(void *ctx);
	/* status's "files" object (file sinks; new, NULL when out of memory),
	 * or NULL for none: then {}. */
	struct json_object *(*files_status)(void *ctx);
	void *ctx;
};

/* Makes the ops for env and cfg (as for kt_ops_configure), and takes the
 * engine's resume callback: parked requests come back here. 0 or -ENOMEM. */
int kt_ops_new(const struct kt_ops_env *env, const struct kt_config *cfg, struct kt_ops **out);
void kt_ops_free(struct kt_ops *ops);

/* The configuration in effect (start, reload); it must stay valid until
 * the next call. */
void kt_ops_configure(struct kt_ops *ops, const struct kt_config *cfg);

/* A door's connection went away: forgets its watch, if any. */
void kt_ops_gone(struct kt_ops *ops, uint64_t conn_id);

/* Handles one decoded request (r->now is set here). When r->out is not
 * NULL, a cache hit may be written there directly, already framed. */
enum kt_op_result kt_ops_handle(struct kt_ops *ops, struct kt_request *r,
				struct json_object **answer);

/* GET /metrics: appends the Prometheus text exposition (format 0.0.4) for
 * peer to out: per-secret series only for the secrets peer may read (root:
 * all), never a value. 0, or -E2BIG (out's limit) or -ENOMEM with out
 * left as it was. */
int kt_ops_metrics(struct kt_ops *ops, const struct kt_peer *peer, struct kt_buf *out);

/* Counts a request a door answered itself, without the ops (the HTTP
 * door's /ping, /metrics and refusals): keyturn_requests_total. */
void kt_ops_count_door(struct kt_ops *ops, enum kt_door door, const char *op, const char *result);

#endif

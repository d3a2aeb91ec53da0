/* keyturnd's Unix-socket server, a front door that knows nothing of the
 * daemon: it takes the loop and a request handler. Its rules: connections and buffers bounded per
 * uid (with a reserve for root and uids that may read a secret), framing with partial reads and
 * writes, one request at a time per connection (so answers stay in order), deadlines, the
 * peer's credentials, and connections in watch mode that the daemon pushes frames to. */
#ifndef KT_SERVER_H
#define KT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "acl.h"
#include "request.h"

struct kt_loop;
struct kt_server;

/* Creates the socket's directory (0755) when missing, removes a stale
 * socket, binds under umask 0111 and listens. Run as root before the drop;
 * the socket is chowned to owner so the client library's owner check passes.
 * Returns the listening fd or a negative errno with err set. */
int kt_server_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen);

/* The watch on the socket's path (server_listen.c): the file bound is known
 * by st_dev/st_ino; the path is looked at every few seconds. */
enum kt_sock_state {
	KT_SOCK_OK,       /* the path is the socket this daemon bound */
	KT_SOCK_MISSING,  /* gone, and not (yet) bound again */
	KT_SOCK_REPLACED, /* another file is there; left alone */
};
struct kt_sockwatch;
/* Remembers the socket now at path. 0 or -ENOMEM. */
int kt_sockwatch_new(const char *path, struct kt_sockwatch **out);
void kt_sockwatch_free(struct kt_sockwatch *w);
/* Whether the path still is the socket this daemon bound. */
bool kt_sockwatch_ours(const struct kt_sockwatch *w);
/* Called once a second (now monotonic); looks at the path when due. A
 * loss or replacement is logged once and told to systemd (STATUS=); a
 * missing socket is bound again as the user the daemon runs as (its
 * directory made again when the parent allows): then the new listening fd
 * is returned for the server to take in place of the old one; else -1. */
int kt_sockwatch_check(struct kt_sockwatch *w, time_t now);
/* For status: {path, state, since, detail, rebound}. */
struct json_object *kt_sockwatch_json(const struct kt_sockwatch *w);

struct kt_server_limits {
	long max_conns;       /* for every uid together (max_connections) */
	long reserve;         /* more, for root and uids that may read a secret */
	long per_uid;         /* for each uid but root (max_connections_per_uid) */
	long idle_timeout;    /* s a connection with nothing pending is kept */
	long request_timeout; /* s a request frame may take from its first byte */
};

/* What the server calls; ctx is passed back. */
struct kt_server_handler {
	/* One decoded request object (r->conn_id, peer, req and out set):
	 * answer it in *answer (taken), append a framed answer to r->out
	 * (KT_OP_WRITTEN), or park it (KT_OP_PARKED, a reference to r->req
	 * taken) and answer later with kt_server_reply. */
	enum kt_op_result (*request)(void *ctx, struct kt_request *r, struct json_object **answer);
	/* Connection conn_id went away with a request parked, or while in
	 * watch mode: forget it. */
	void (*gone)(void *ctx, uint64_t conn_id);
	/* Whether peer (not root) is one the reserve is kept for. */
	bool (*reserved)(void *ctx, const struct kt_peer *peer);
	void *ctx;
};

/* Serves listen_fd (taken) in loop: its events, a once-a-second timer
 * (idle connections, deadlines, the socket's path, complaint summaries)
 * and an end-of-turn hook (connections with work left, deferred frees).
 * 0 or -errno. */
int kt_server_new(struct kt_loop *loop, int listen_fd, const char *path,
		  const struct kt_server_limits *lim, const struct kt_server_handler *h,
		  struct kt_server **out);

/* Removes the socket file (on a clean stop) and frees everything. */
void kt_server_free(struct kt_server *s, bool unlink_socket);

/* Delivers the answer of a parked request (taking the reference); drops it
 * when the connection has gone. */
void kt_server_reply(struct kt_server *s, uint64_t conn_id, struct json_object *answer);

/* Puts conn_id in watch mode (the watch op answered it; its answer is
 * queued after this call): the connection reads no more requests (a byte
 * from the peer closes it), idle_timeout does not apply to it, and
 * kt_server_push adds frames to it. 0, or -ENOENT when conn_id is not an
 * open connection with nothing parked. */
int kt_server_watch(struct kt_server *s, uint64_t conn_id);

/* Appends one frame (answer taken) to a watching connection's output; with
 * last, the connection is closed once the frame is sent and leaves watch
 * mode at once. A frame that takes the connection's unsent output past
 * OUT_HIGH, or its uid's past the uid's share, closes the connection
 * instead (one log line). The handler's gone is not called for a
 * connection this call ends. 0, -ENOENT (not open or not watching) or
 * -ENOBUFS (closed for not reading). */
int kt_server_push(struct kt_server *s, uint64_t conn_id, struct json_object *answer, bool last);

/* New limits after a reload; open connections beyond them stay. */
void kt_server_set_limits(struct kt_server *s, const struct kt_server_limits *lim);

/* Stops accepting (stop) and reports whether output is still pending. */
void kt_server_stop_accepting(struct kt_server *s);
bool kt_server_flushing(const struct kt_server *s);

size_t kt_server_connections(const struct kt_server *s);
/* Connections refused by a quota or the cap since start. */
unsigned long kt_server_refused(const struct kt_server *s);
/* Request frames read since start. */
unsigned long kt_server_requests(const struct kt_server *s);
/* Bytes of answers queued on every connection and not yet sent. */
size_t kt_server_unsent(const struct kt_server *s);
/* The socket's state for status (kt_sockwatch_json). */
struct json_object *kt_server_socket_json(const struct kt_server *s);

#endif

/* keyturnd's Unix-socket server: connections and buffers bounded per uid
 * (with a reserve for root and uids that may read a secret), framing with
 * partial reads and writes, one request at a time per connection (so
 * answers stay in order), deadlines, and the peer's credentials. */
#ifndef KT_SERVER_H
#define KT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

struct kt_daemon;
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

int kt_server_new(struct kt_daemon *d, int listen_fd, const char *path,
		  const struct kt_server_limits *lim, struct kt_server **out);

/* Removes the socket file (on a clean stop) and frees everything. */
void kt_server_free(struct kt_server *s, bool unlink_socket);

/* Handles an epoll event whose data.ptr is the server or one of its
 * connections (see kt_server_owns). */
void kt_server_event(struct kt_server *s, void *ptr, uint32_t events);
bool kt_server_owns(const struct kt_server *s, const void *ptr);

/* Handles connections that had more whole requests than one loop turn
 * allows, and those whose parked request was answered. Returns true when
 * some are left for the next turn (the loop should not sleep then). */
bool kt_server_run_ready(struct kt_server *s);

/* Frees connections closed during this loop turn; call after the turn's
 * last event, when no epoll event can point at them any more. */
void kt_server_reap(struct kt_server *s);

/* Delivers the answer of a parked request (taking the reference); drops it
 * when the connection has gone. */
void kt_server_reply(struct kt_server *s, uint64_t conn_id, struct json_object *answer);

/* New limits after a reload; open connections beyond them stay. */
void kt_server_set_limits(struct kt_server *s, const struct kt_server_limits *lim);

/* Closes idle connections and requests past their deadline, resumes a
 * paused accept, logs complaint summaries; called once a second. */
void kt_server_tick(struct kt_server *s);

/* Stops accepting (stop) and reports whether output is still pending. */
void kt_server_stop_accepting(struct kt_server *s);
bool kt_server_flushing(const struct kt_server *s);

size_t kt_server_connections(const struct kt_server *s);
/* Connections refused by a quota or the cap since start. */
unsigned long kt_server_refused(const struct kt_server *s);
/* Bytes of answers queued on every connection and not yet sent. */
size_t kt_server_unsent(const struct kt_server *s);
/* The socket's state for status (kt_sockwatch_json). */
struct json_object *kt_server_socket_json(const struct kt_server *s);

#endif

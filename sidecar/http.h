/* keyturnd's HTTP door (kt_hdoor_*; kt_http_* is the AWS client's HTTP): the
 * AWS Secrets Manager Agent's API (http_agent.c)
 * on loopback TCP and Unix sockets, served by libmicrohttpd inside the
 * daemon's event loop. Like the socket server it knows nothing of the
 * daemon: it takes the loop and a handler. Its rules: the caller is known
 * by uid before a byte is read (SO_PEERCRED, or the owner of the peer's
 * socket through NETLINK_SOCK_DIAG; unknown: closed), connections are
 * bounded per uid with a reserve for root and uids that may read a secret,
 * a request's line and headers have request_timeout, an idle keep-alive
 * connection idle_timeout. */
#ifndef KT_HTTP_H
#define KT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "acl.h"
#include "common/kt_buf.h"
#include "http_listen.h"
#include "request.h"
#include "server.h"

struct kt_loop;
struct kt_hdoor;

struct kt_hdoor_opts {
	const char *token;       /* copied; compared in constant time */
	const char *path_prefix; /* copied */
	bool metrics;            /* GET /metrics */
};

/* What the door calls; ctx is passed back. */
struct kt_hdoor_handler {
	/* As kt_server_handler's: a get or refresh request made from the
	 * HTTP request (r->out is NULL), answered now or parked and answered
	 * with kt_hdoor_reply. */
	enum kt_op_result (*request)(void *ctx, struct kt_request *r, struct json_object **answer);
	/* A parked request's connection went away: forget conn_id. */
	void (*gone)(void *ctx, uint64_t conn_id);
	/* Whether peer (not root) is one the reserve is kept for. */
	bool (*reserved)(void *ctx, const struct kt_peer *peer);
	/* GET /metrics for peer: appends the text to out; 0 or -errno. */
	int (*metrics)(void *ctx, const struct kt_peer *peer, struct kt_buf *out);
	/* The door answered a request itself: ok for /ping and /metrics, else
	 * why it refused (bad_token, forwarded, method, path, parameters). */
	void (*answered)(void *ctx, const char *op, const char *result);
	void *ctx;
};

/* Binds and listens on a (non-blocking, close-on-exec): a TCP address with
 * SO_REUSEADDR (and IPV6_V6ONLY), a Unix socket as the socket server binds
 * its own (kt_server_listen: mode 0666, chowned to owner when root; each
 * request is decided by the caller's uid). The fd, or -errno with err. */
int kt_hdoor_listen(const struct kt_listen_addr *a, uid_t owner, gid_t group, char *err,
		    size_t errlen);

/* Serves the n listening fds (taken; addrs says what each is) in loop.
 * 0 or -errno. */
int kt_hdoor_new(struct kt_loop *loop, const struct kt_listen_addr *addrs, const int *fds, size_t n,
		 const struct kt_server_limits *lim, const struct kt_hdoor_opts *o,
		 const struct kt_hdoor_handler *h, struct kt_hdoor **out);
void kt_hdoor_free(struct kt_hdoor *d);

/* Delivers the answer (taken) of a parked request; dropped when its
 * connection has gone. */
void kt_hdoor_reply(struct kt_hdoor *d, uint64_t conn_id, struct json_object *answer);

/* New limits after a reload; open connections beyond them stay. */
void kt_hdoor_set_limits(struct kt_hdoor *d, const struct kt_server_limits *lim);

/* Stops accepting (the daemon is stopping). */
void kt_hdoor_stop_accepting(struct kt_hdoor *d);

size_t kt_hdoor_connections(const struct kt_hdoor *d);
unsigned long kt_hdoor_refused(const struct kt_hdoor *d);
unsigned long kt_hdoor_requests(const struct kt_hdoor *d);
/* For status: {"listen":[...]}. */
struct json_object *kt_hdoor_json(const struct kt_hdoor *d);

#endif

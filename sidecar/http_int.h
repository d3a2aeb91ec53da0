/* What http.c and http_req.c share; not a public face. http.c owns the
 * listeners, admission (who the peer is, quotas, the reserve), the
 * connections' lives and the tick; http_req.c one request: the Agent's
 * checks, the ops, parking and the response. */
#ifndef KT_HTTP_INT_H
#define KT_HTTP_INT_H

#include <microhttpd.h>

#include "http.h"
#include "http_token.h"
#include "loop.h"
#include "peerdiag.h"
#include "uidtab.h"

struct http_req;

/* One accepted connection, from admission until libmicrohttpd closes it. */
struct http_conn {
	struct kt_hdoor *d;
	int fd;
	struct kt_peer peer;
	struct kt_uid_use *use; /* NULL for root, which has no quota */
	time_t since;           /* accepted, or the last request ended (monotonic) */
	struct http_req *cur;   /* the request being read or answered */
	struct http_conn *prev, *next;
};

enum http_req_state {
	REQ_READING, /* line and headers arriving */
	REQ_PARKED,  /* waiting on the engine; the connection is suspended */
	REQ_READY,   /* the response is made, to be queued */
	REQ_DONE,    /* queued */
};

struct http_req {
	struct http_conn *c;
	struct MHD_Connection *mc;
	uint64_t id; /* KT_CONN_HTTP | a counter: the engine's conn_id */
	time_t started;
	enum http_req_state state;
	bool headers; /* the first call came: line and headers are in */
	bool suspended;
	struct json_object *get; /* the get to make once a refresh is answered */
	bool refreshing;         /* the parked request is that refresh */
	int status;              /* REQ_READY */
	const char *ctype;
	struct kt_buf body;    /* REQ_READY; wiped when freed */
	struct http_req *next; /* the parked list */
};

/* One listening socket. */
struct http_listener {
	struct kt_hdoor *d;
	int fd;
	struct kt_loop_io *io;
	struct kt_listen_addr addr;
};

struct kt_hdoor {
	struct kt_loop *loop;
	struct kt_hdoor_handler h;
	struct MHD_Daemon *mhd;
	struct kt_loop_io *mhd_io;
	struct kt_loop_timer *tick;
	struct kt_loop_timer *soon; /* libmicrohttpd asked to run again soon */
	size_t nlisten;
	struct http_listener listeners[KT_HTTP_MAX_LISTEN];
	struct kt_server_limits lim;
	char token[KT_HTTP_TOKEN_MAX + 1];
	char *prefix;
	bool metrics;
	struct http_conn *conns;
	size_t nconns;
	struct http_conn *adding; /* handed to libmicrohttpd's STARTED notice */
	struct http_req *parked;
	uint64_t next_id;
	struct kt_uidtab *uids;
	struct kt_peercache *peers;
	unsigned long refused, requests;
	time_t last_unknown_peer; /* of the last "peer unknown" log line */
};

/* http_req.c: the monotonic clock (s). */
time_t kt_hdoor_now(void);

/* http_req.c: libmicrohttpd's callbacks for one request. */
void *kt_hdoor_uri_log(void *cls, const char *uri, struct MHD_Connection *mc);
enum MHD_Result kt_hdoor_access(void *cls, struct MHD_Connection *mc, const char *url,
				const char *method, const char *version, const char *upload,
				size_t *upload_size, void **req_cls);
void kt_hdoor_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			enum MHD_RequestTerminationCode toe);
/* Resumes every parked request with an error (the door is being freed). */
void kt_hdoor_release_parked(struct kt_hdoor *d);

#endif

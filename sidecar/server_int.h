/* What server.c and server_conn.c share; not a public face. server.c
 * owns the listening socket, admission (quotas, the reserve) and the
 * once-a-second tick; server_conn.c the life of one connection (framing,
 * reads and writes, the handler, closing). */
#ifndef KT_SERVER_INT_H
#define KT_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "acl.h"
#include "common/kt_buf.h"
#include "common/proto.h"
#include "loop.h"
#include "server.h"
#include "uidtab.h"

/* Bytes read ahead of the frame being assembled: enough for a few small
 * pipelined requests in one recv(), small enough not to matter per
 * connection. */
#define READ_AHEAD 4096
#define IN_MAX (KT_PROTO_HDR + KT_PROTO_MAX_REQUEST + READ_AHEAD)
/* A connection's own unsent output above which it reads no more requests;
 * a uid's share of unsent output above which none of its connections do. */
#define OUT_HIGH (KT_PROTO_MAX_FRAME + KT_PROTO_HDR)
#define OUT_MAX (2 * OUT_HIGH)
#define UID_OUT_SHARE (1024u * 1024u)
/* An emptied output buffer up to this size is kept for the next answer. */
#define OUT_KEEP 65536
/* Work one connection gets per loop turn: a busy connection waits for the
 * next turn, so others are served in between. */
#define REQUESTS_PER_TURN 4

struct kt_conn {
	struct kt_server *s;
	struct kt_loop_io *io;
	uint64_t id;
	int fd;
	struct kt_peer peer;
	struct kt_uid_use *use; /* NULL for root, which has no quota */
	struct kt_buf in;
	struct kt_buf out;
	bool busy;          /* a request is parked */
	bool watching;      /* in watch mode: reads no requests, takes pushes */
	bool hangup;        /* peer closed its side; close once output is sent */
	bool closed;        /* off the loop and the list; freed at the end of the turn */
	bool ready;         /* on the ready list */
	time_t last_active; /* connect, or the last request answered (monotonic) */
	time_t frame_start; /* first byte of the frame being assembled (monotonic) */
	uint32_t events;    /* epoll interest now registered */
	struct kt_conn *prev, *next;
	struct kt_conn *ready_next;  /* ready list */
	struct kt_conn *closed_next; /* list of closed ones, freed by kt_server_reap */
};

struct kt_server {
	struct kt_loop *loop;
	struct kt_server_handler h;
	struct kt_loop_io *listen_io; /* NULL while accepting is paused */
	struct kt_loop_timer *tick;
	bool stopping;
	unsigned long requests; /* request frames read */
	int fd;
	char *path;
	struct kt_server_limits lim;
	size_t nconns;
	size_t out_total; /* unsent output of every connection */
	uint64_t next_id;
	struct kt_conn *conns;
	struct kt_conn *ready;  /* connections with whole requests left to handle */
	struct kt_conn *closed; /* freed by kt_server_reap() */
	struct kt_uidtab *uids;
	time_t last_fd_warning;
	time_t accept_paused_until; /* out of descriptors: accepting waits */
	unsigned long refused;
	struct kt_sockwatch *watch; /* the socket's path (server_listen.c) */
};

/* server_conn.c. The monotonic clock the server's deadlines use (s). */
time_t kt_server_mono_now(void);
/* Puts c on the ready list (handled at the end of the turn). */
void kt_conn_ready_add(struct kt_server *s, struct kt_conn *c);
/* Takes c off the loop and the list at once, telling the handler when a
 * request was parked; the memory waits for kt_conn_reap. */
void kt_conn_close(struct kt_server *s, struct kt_conn *c, const char *why);
void kt_conn_reap(struct kt_server *s);
/* Whether the uid's unsent answers keep its connections from reading. */
bool kt_conn_over_share(const struct kt_conn *c);
/* Counts a change of c's unsent output for its uid and the server; a uid
 * back under its share wakes its connections that waited for that. */
void kt_conn_out_changed(struct kt_server *s, struct kt_conn *c, size_t before);
/* The length a frame's header announces, once the header is in: 1 with
 * *need (the whole frame's bytes), 0 before the header is in, or
 * -EMSGSIZE / -EBADMSG for a length keyturnd never accepts. */
int kt_conn_frame_need(const struct kt_conn *c, size_t *need);
/* The loop's callback for a connection's events (ctx: the connection). */
void kt_conn_io_event(void *ctx, uint32_t events);
/* Handles the connections on the ready list; true when some are left. */
bool kt_conn_run_ready(struct kt_server *s);

#endif

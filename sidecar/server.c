/* keyturnd's socket server. Connections are non-blocking and level-triggered
 * in the daemon's epoll. Every local user may connect, so every cost is
 * bounded per uid (uidtab.c): connections, bytes held for a request that
 * is still arriving, answers not yet read, complaint log lines. A
 * connection handles one request at a time: while a request waits on AWS
 * nothing more is read from it, which keeps answers in order. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "ops.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "server.h"
#include "uidtab.h"

#define EV_LISTEN 0x4c49u /* tags at the start of what data.ptr points to */
#define EV_CONN 0x434fu
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
	unsigned tag;
	uint64_t id;
	int fd;
	struct kt_peer peer;
	struct kt_uid_use *use; /* NULL for root, which has no quota */
	struct kt_buf in;
	struct kt_buf out;
	bool busy;           /* a request is parked */
	bool hangup;         /* peer closed its side; close once output is sent */
	bool closed;         /* off epoll and the list; freed at the end of the turn */
	bool ready;          /* on the ready list */
	time_t last_active;  /* connect, or the last request answered (monotonic) */
	time_t frame_start;  /* first byte of the frame being assembled (monotonic) */
	uint32_t events;     /* epoll interest now registered */
	struct kt_conn *prev, *next;
	struct kt_conn *ready_next;  /* ready list */
	struct kt_conn *closed_next; /* list of closed ones, freed by kt_server_reap */
};

struct kt_server {
	unsigned tag;
	struct kt_daemon *d;
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

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int kt_server_new(struct kt_daemon *d, int listen_fd, const char *path,
		  const struct kt_server_limits *lim, struct kt_server **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct kt_server *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->path = kt_strdup(path)) == NULL || (s->uids = kt_uidtab_new()) == NULL ||
	    kt_sockwatch_new(path, &s->watch) < 0) {
		if (s != NULL) {
			kt_uidtab_free(s->uids);
			free(s->path);
		}
		free(s);
		return -ENOMEM;
	}
	s->tag = EV_LISTEN;
	s->d = d;
	s->fd = listen_fd;
	s->lim = *lim;
	s->next_id = 1;
	ev.data.ptr = s;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		int rc = -errno;

		kt_sockwatch_free(s->watch);
		kt_uidtab_free(s->uids);
		free(s->path);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Counts a change of a connection's unsent output for its uid and the
 * whole server. A uid that drops back under its share wakes its
 * connections that waited for that. */
static void out_changed(struct kt_server *s, struct kt_conn *c, size_t before);

static void ready_add(struct kt_server *s, struct kt_conn *c)
{
	if (c->ready || c->closed)
		return;
	c->ready = true;
	c->ready_next = s->ready;
	s->ready = c;
}

/* Takes a connection off epoll and the list at once; the memory stays
 * until the end of the loop turn, since the same epoll batch may still
 * hold an event for it. A request it had parked is dropped. */
static void conn_close(struct kt_server *s, struct kt_conn *c, const char *why)
{
	size_t before = c->out.len;

	if (c->closed)
		return;
	log_debug("connection %llu (uid %lu pid %ld) closed: %s", (unsigned long long)c->id,
		  (unsigned long)c->peer.uid, (long)c->peer.pid, why);
	epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->closed = true;
	if (c->busy)
		kt_daemon_drop_parked(s->d, c->id);
	c->busy = false;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	kt_buf_free(&c->in);
	kt_buf_free(&c->out);
	out_changed(s, c, before);
	if (c->use != NULL)
		c->use->conns--;
	s->nconns--;
	/* Off the ready list too (it is short: only connections with work). */
	if (c->ready) {
		struct kt_conn **pp = &s->ready;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->ready_next;
		if (*pp == c)
			*pp = c->ready_next;
		c->ready = false;
	}
	/* A separate link: a connection closed while kt_server_run_ready()
	 * walks its taken list is still on that list, and its ready_next must
	 * stay as it is until the walk has passed it. */
	c->closed_next = s->closed;
	s->closed = c;
}

void kt_server_reap(struct kt_server *s)
{
	while (s->closed != NULL) {
		struct kt_conn *c = s->closed;

		s->closed = c->closed_next;
		free(c);
	}
}

void kt_server_free(struct kt_server *s, bool unlink_socket)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		conn_close(s, s->conns, "daemon stopping");
	kt_server_reap(s);
	if (s->fd >= 0) {
		if (s->accept_paused_until == 0)
			epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	/* Only the socket this daemon bound: another file at the path (see
	 * kt_sockwatch_check) is not keyturnd's to remove. */
	if (unlink_socket && kt_sockwatch_ours(s->watch))
		unlink(s->path);
	kt_sockwatch_free(s->watch);
	kt_uidtab_free(s->uids);
	free(s->path);
	free(s);
}

bool kt_server_owns(const struct kt_server *s, const void *ptr)
{
	unsigned tag = *(const unsigned *)ptr;

	(void)s;
	return tag == EV_LISTEN || tag == EV_CONN;
}

size_t kt_server_connections(const struct kt_server *s)
{
	return s->nconns;
}

unsigned long kt_server_refused(const struct kt_server *s)
{
	return s->refused;
}

size_t kt_server_unsent(const struct kt_server *s)
{
	return s->out_total;
}

struct json_object *kt_server_socket_json(const struct kt_server *s)
{
	return kt_sockwatch_json(s->watch);
}

/* Whether the uid's unsent answers keep its connections from reading. */
static bool over_share(const struct kt_conn *c)
{
	return c->use != NULL && c->use->out >= UID_OUT_SHARE;
}

static void out_changed(struct kt_server *s, struct kt_conn *c, size_t before)
{
	size_t after = c->out.len;

	s->out_total = s->out_total - before + after;
	if (c->use == NULL)
		return;
	c->use->out = c->use->out - before + after;
	if (c->use->stalled && c->use->out < UID_OUT_SHARE) {
		/* Rare (a uid that does not read its answers); a walk is fine. */
		c->use->stalled = false;
		for (struct kt_conn *o = s->conns; o != NULL; o = o->next) {
			if (o->use == c->use)
				ready_add(s, o);
		}
	}
}

/* Registers what the connection wants now: input unless it is waiting on
 * AWS, holds a whole frame it has not handled yet, or has too much unsent
 * output; output while any is pending. */
static void conn_update_events(struct kt_server *s, struct kt_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->closed)
		return;
	/* A connection kept from reading by its uid's share is woken when
	 * the share has room again (out_changed). */
	if (over_share(c))
		c->use->stalled = true;
	else if (!c->busy && !c->hangup && !c->ready && c->out.len < OUT_HIGH && c->in.len < IN_MAX)
		ev.events |= EPOLLIN;
	if (c->out.len > 0)
		ev.events |= EPOLLOUT;
	if (ev.events == c->events)
		return;
	c->events = ev.events;
	epoll_ctl(s->d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Whether a uid is one that the reserve is kept for: root, or a uid that
 * may read at least one configured secret. */
static bool in_reserve(const struct kt_server *s, const struct kt_peer *p)
{
	const struct kt_config *cfg = s->d->cfg;

	if (p->uid == 0)
		return true;
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		if (kt_acl_may_read(&cfg->secrets[i], p))
			return true;
	}
	return false;
}

/* Says why to a refused connection before closing it, so its client
 * reports more than a hang-up: one small frame into an empty socket
 * buffer, never waited on. */
static void refuse(struct kt_server *s, int fd, const char *why)
{
	struct kt_buf b = KT_BUF_INIT(4096);
	struct json_object *e = kt_proto_error(KT_PERR_THROTTLED, "%s", why);

	s->refused++;
	if (e != NULL && kt_proto_send_json(&b, e) == 0)
		(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	kt_json_put_wiped(e);
	kt_buf_free(&b);
	close(fd);
}

/* Decides on one accepted socket. Returns the new connection or NULL. */
static struct kt_conn *conn_admit(struct kt_server *s, int fd, time_t now)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct kt_uid_use *use = NULL;
	struct kt_conn *c = NULL;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char why[160];

	if (s->d->stopping) {
		close(fd);
		return NULL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		log_warn("cannot read the credentials of a new connection; closing it");
		close(fd);
		return NULL;
	}
	/* The quota comes first and costs no user lookup, so a uid's flood
	 * of connections is refused as cheaply as it can be. */
	if (cred.uid != 0) {
		use = kt_uidtab_get(s->uids, cred.uid);
		if (use == NULL) {
			close(fd);
			return NULL;
		}
		if (use->conns >= s->lim.per_uid) {
			snprintf(why, sizeof(why), "uid %lu has %ld connections open (max_connections_per_uid)",
				 (unsigned long)cred.uid, use->conns);
			kt_uidtab_complain(s->uids, cred.uid, KT_COMPLAINT_QUOTA, now,
					   "refusing a connection of pid %ld: %s", (long)cred.pid, why);
			refuse(s, fd, why);
			return NULL;
		}
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || kt_peer_from_socket(fd, &c->peer) < 0) {
		if (c != NULL)
			log_warn("cannot read the credentials of a new connection; closing it");
		free(c);
		close(fd);
		return NULL;
	}
	if ((long)s->nconns >= s->lim.max_conns &&
	    ((long)s->nconns >= s->lim.max_conns + s->lim.reserve || !in_reserve(s, &c->peer))) {
		snprintf(why, sizeof(why), "keyturnd has %zu connections open (max_connections)",
			 s->nconns);
		kt_uidtab_complain(s->uids, cred.uid, KT_COMPLAINT_FULL, now,
				   "refusing a connection of uid %lu pid %ld: %s",
				   (unsigned long)cred.uid, (long)cred.pid, why);
		free(c);
		refuse(s, fd, why);
		return NULL;
	}
	c->tag = EV_CONN;
	c->fd = fd;
	c->id = s->next_id++;
	c->use = use;
	kt_buf_init(&c->in, IN_MAX);
	kt_buf_init(&c->out, OUT_MAX);
	c->last_active = now;
	ev.data.ptr = c;
	c->events = EPOLLIN;
	if (epoll_ctl(s->d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	if (use != NULL)
		use->conns++;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	return c;
}

static void conn_accept(struct kt_server *s)
{
	time_t now = mono_now();
	struct kt_conn *c;
	int fd;

	while ((fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		c = conn_admit(s, fd, now);
		if (c != NULL)
			log_debug("connection %llu from uid %lu pid %ld", (unsigned long long)c->id,
				  (unsigned long)c->peer.uid, (long)c->peer.pid);
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* The pending connection stays pending and the socket stays
		 * readable: without a pause the loop would spin on it. */
		epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->accept_paused_until = now + 1;
		if (now - s->last_fd_warning >= KT_COMPLAINT_WINDOW) {
			log_warn("refusing connections for now: %s (%zu open)", strerror(errno),
				 s->nconns);
			s->last_fd_warning = now;
		}
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		   errno != ECONNABORTED) {
		log_warn("accept on %s: %s", s->path, strerror(errno));
	}
}

/* Appends an answer (reference taken). A failure to serialise is answered
 * as an internal error, so the client is never left waiting. */
static int conn_answer(struct kt_server *s, struct kt_conn *c, struct json_object *answer)
{
	size_t before = c->out.len;
	int rc = answer != NULL ? kt_proto_send_json(&c->out, answer) : -ENOMEM;

	kt_json_put_wiped(answer);
	if (rc == -EMSGSIZE) {
		struct json_object *e = kt_proto_error(KT_PERR_INTERNAL,
						       "the answer would be larger than 1 MiB");

		rc = e != NULL ? kt_proto_send_json(&c->out, e) : -ENOMEM;
		kt_json_put_wiped(e);
	}
	out_changed(s, c, before);
	c->last_active = mono_now();
	return rc;
}

/* Gives back a buffer's storage once it is empty and larger than everyday
 * traffic needs (keep is that size), so a thousand idle connections stay
 * small; a buffer that everyday traffic fills is kept, not made anew for
 * every request. */
static void buf_trim(struct kt_buf *b, size_t keep)
{
	if (b->len == 0 && b->cap > keep)
		kt_buf_free(b);
}

/* The length a frame's header announces, once the header is in. Returns
 * 1 with *need (the whole frame's bytes), 0 before the header is in, or
 * -EMSGSIZE / -EBADMSG for a length keyturnd never accepts. */
static int frame_need(const struct kt_conn *c, size_t *need)
{
	return kt_proto_frame_len(c->in.data, c->in.len, KT_PROTO_MAX_REQUEST, need);
}

static void complain_frame(struct kt_server *s, struct kt_conn *c, int rc)
{
	kt_uidtab_complain(s->uids, c->peer.uid, KT_COMPLAINT_FRAME, mono_now(),
			   "closing connection of uid %lu pid %ld: %s", (unsigned long)c->peer.uid,
			   (long)c->peer.pid,
			   rc == -EMSGSIZE ? "request frame longer than 64 KiB" : "frame of length 0");
}

/* Handles whole frames in the input buffer, at most REQUESTS_PER_TURN, until
 * a request parks or output backs up. Returns false when the connection
 * must be closed (a frame keyturnd never accepts). */
static bool conn_process(struct kt_server *s, struct kt_conn *c)
{
	for (int turn = 0; !c->busy && c->out.len < OUT_HIGH; turn++) {
		struct json_object *req, *answer = NULL;
		bool written = false;
		size_t need = 0, before;
		int rc = frame_need(c, &need);

		if (rc < 0) {
			complain_frame(s, c, rc);
			return false;
		}
		if (rc == 0 || c->in.len < need)
			return true;
		if (over_share(c)) {
			c->use->stalled = true;
			return true;
		}
		if (turn == REQUESTS_PER_TURN) {
			ready_add(s, c);
			return true;
		}
		s->d->requests++;
		req = kt_json_parse(c->in.data + KT_PROTO_HDR, need - KT_PROTO_HDR);
		kt_buf_consume(&c->in, need);
		/* What is left is the start of the next frame. */
		c->frame_start = mono_now();
		buf_trim(&c->in, 2 * READ_AHEAD);
		if (req == NULL || !json_object_is_type(req, json_type_object)) {
			kt_uidtab_complain(s->uids, c->peer.uid, KT_COMPLAINT_REQUEST, c->frame_start,
					   "uid %lu pid %ld sent a request that is not a JSON object",
					   (unsigned long)c->peer.uid, (long)c->peer.pid);
			answer = kt_proto_error(KT_PERR_BAD_REQUEST, "the request is not a JSON object");
		} else {
			before = c->out.len;
			switch (kt_ops_handle(s->d, c->id, &c->peer, req, &answer, &c->out)) {
			case KT_OP_PARKED:
				c->busy = true;
				break;
			case KT_OP_WRITTEN:
				c->last_active = mono_now();
				out_changed(s, c, before);
				written = true;
				break;
			case KT_OP_ANSWER:
				break;
			}
		}
		/* A parked request is still held (and later wiped) by the daemon;
		 * only the last holder may wipe it. */
		if (c->busy)
			json_object_put(req);
		else
			kt_json_put_wiped(req);
		if (!c->busy && !written && conn_answer(s, c, answer) < 0)
			return false;
	}
	return true;
}

/* Reads what has arrived, straight into the input buffer: at most the rest
 * of the frame being assembled plus READ_AHEAD, and never more than the
 * frame's header allows. One recv() a turn: a connection that sends more
 * is read again at the next turn, after the others. */
static bool conn_read(struct kt_server *s, struct kt_conn *c)
{
	size_t need = 0, room;
	ssize_t n;
	int rc = frame_need(c, &need);

	if (rc < 0) {
		complain_frame(s, c, rc);
		return false;
	}
	if (rc == 0 || c->in.len >= need)
		need = c->in.len < KT_PROTO_HDR ? KT_PROTO_HDR : c->in.len;
	room = need - c->in.len + READ_AHEAD;
	if (room > c->in.max - c->in.len)
		room = c->in.max - c->in.len;
	if (room == 0)
		return true;
	if (kt_buf_reserve(&c->in, room) < 0)
		return false;
	n = recv(c->fd, c->in.data + c->in.len, room, 0);
	if (n > 0) {
		if (c->in.len == 0)
			c->frame_start = mono_now();
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
		return true;
	}
	if (n == 0)
		c->hangup = true;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return false;
	return true;
}

static bool conn_write(struct kt_server *s, struct kt_conn *c)
{
	size_t before = c->out.len;
	bool ok = true;

	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			kt_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		ok = false;
		break;
	}
	buf_trim(&c->out, OUT_KEEP);
	out_changed(s, c, before);
	return ok;
}

static void conn_event(struct kt_server *s, struct kt_conn *c, uint32_t events)
{
	if (c->closed)
		return;
	/* A peer that hung up cannot read an answer: whatever it waits for
	 * is dropped now, not when AWS answers (epoll would report the
	 * hang-up at every turn until then). */
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(s, c, "peer went away");
		return;
	}
	if ((events & EPOLLIN) && !conn_read(s, c)) {
		conn_close(s, c, "read error or bad frame");
		return;
	}
	if (!c->ready && !conn_process(s, c)) {
		conn_close(s, c, "bad frame");
		return;
	}
	if (c->out.len > 0 && !conn_write(s, c)) {
		conn_close(s, c, "peer went away");
		return;
	}
	/* The peer is done sending: finish what it asked, then close. */
	if (c->hangup && !c->busy && !c->ready && c->out.len == 0) {
		conn_close(s, c, "peer closed");
		return;
	}
	conn_update_events(s, c);
}

void kt_server_event(struct kt_server *s, void *ptr, uint32_t events)
{
	if (ptr == s)
		conn_accept(s);
	else
		conn_event(s, ptr, events);
}

bool kt_server_run_ready(struct kt_server *s)
{
	struct kt_conn *list = s->ready;

	/* Connections that come back while this runs wait for the next turn. */
	s->ready = NULL;
	while (list != NULL) {
		struct kt_conn *c = list;

		list = c->ready_next;
		c->ready = false;
		conn_event(s, c, 0);
	}
	return s->ready != NULL;
}

void kt_server_reply(struct kt_server *s, uint64_t conn_id, struct json_object *answer)
{
	struct kt_conn *c;

	for (c = s->conns; c != NULL; c = c->next) {
		if (c->id == conn_id)
			break;
	}
	if (c == NULL || !c->busy) {
		/* The client left while its request waited on AWS. */
		kt_json_put_wiped(answer);
		return;
	}
	c->busy = false;
	if (conn_answer(s, c, answer) < 0) {
		conn_close(s, c, "cannot queue the answer");
		return;
	}
	/* More requests may have arrived behind the parked one. */
	ready_add(s, c);
}

void kt_server_set_limits(struct kt_server *s, const struct kt_server_limits *lim)
{
	s->lim = *lim;
}

/* A socket bound again at the path (its file had gone): whoever still
 * waits in the old one's backlog is taken first, then the old one is
 * closed (nobody can reach it by path any more) and the new one takes its
 * place in epoll. Open connections are not touched. */
static void listen_swap(struct kt_server *s, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (s->accept_paused_until == 0)
		conn_accept(s);
	if (s->accept_paused_until == 0)
		epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = fd;
	s->accept_paused_until = 0;
	/* Else the tick tries again, as after a pause for descriptors. */
	if (epoll_ctl(s->d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		s->accept_paused_until = mono_now() + 1;
}

void kt_server_tick(struct kt_server *s)
{
	time_t now = mono_now();
	struct kt_conn *c = s->conns, *next;
	int fd;

	if (s->fd >= 0 && (fd = kt_sockwatch_check(s->watch, now)) >= 0)
		listen_swap(s, fd);

	if (s->accept_paused_until != 0 && now >= s->accept_paused_until && s->fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

		s->accept_paused_until = 0;
		epoll_ctl(s->d->epfd, EPOLL_CTL_ADD, s->fd, &ev);
	}
	for (; c != NULL; c = next) {
		size_t need = 0;

		next = c->next;
		if (c->busy || c->ready)
			continue;
		/* A frame that is still arriving has request_timeout from its
		 * first byte, whatever trickles in meanwhile. */
		if (c->in.len > 0 && (frame_need(c, &need) <= 0 || c->in.len < need) &&
		    !over_share(c) && now - c->frame_start > s->lim.request_timeout) {
			kt_uidtab_complain(s->uids, c->peer.uid, KT_COMPLAINT_DEADLINE, now,
					   "closing connection of uid %lu pid %ld: request incomplete "
					   "after %ld s (request_timeout)", (unsigned long)c->peer.uid,
					   (long)c->peer.pid, s->lim.request_timeout);
			conn_close(s, c, "request timeout");
		} else if (c->in.len == 0 && c->out.len == 0 &&
			   now - c->last_active > s->lim.idle_timeout) {
			conn_close(s, c, "idle timeout");
		}
	}
	kt_uidtab_tick(s->uids, now);
}

void kt_server_stop_accepting(struct kt_server *s)
{
	if (s->fd < 0)
		return;
	if (s->accept_paused_until == 0)
		epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
}

bool kt_server_flushing(const struct kt_server *s)
{
	for (const struct kt_conn *c = s->conns; c != NULL; c = c->next) {
		if (c->out.len > 0 || c->busy)
			return true;
	}
	return false;
}

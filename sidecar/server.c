/* keyturnd's socket server, a front door: the listening socket, admission
 * of connections and the once-a-second tick (this file), the life of each
 * connection (server_conn.c). Connections are non-blocking and
 * level-triggered in the event loop (loop.c); requests go to the handler it
 * was given, and the server knows nothing else of the daemon. Every local
 * user may connect, so every cost is bounded per uid (uidtab.c):
 * connections, bytes held for a request that is still arriving, answers not
 * yet read, complaint log lines. A connection handles one request at a
 * time: while a request waits on AWS nothing more is read from it, which
 * keeps answers in order. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "server_int.h"

static void conn_accept(struct kt_server *s);
static void tick(void *ctx);
static bool turn_end(void *ctx);

static void listen_event(void *ctx, uint32_t events)
{
	(void)events;
	conn_accept(ctx);
}

/* Watches the listening socket again; on failure the tick retries. */
static void listen_watch(struct kt_server *s)
{
	if (kt_loop_io_add(s->loop, s->fd, EPOLLIN, listen_event, s, &s->listen_io) < 0) {
		s->listen_io = NULL;
		s->accept_paused_until = kt_server_mono_now() + 1;
	}
}

static void listen_unwatch(struct kt_server *s)
{
	kt_loop_io_del(s->loop, s->listen_io);
	s->listen_io = NULL;
}

int kt_server_new(struct kt_loop *loop, int listen_fd, const char *path,
		  const struct kt_server_limits *lim, const struct kt_server_handler *h,
		  struct kt_server **out)
{
	struct kt_server *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (s == NULL || (s->path = kt_strdup(path)) == NULL ||
	    (s->uids = kt_uidtab_new()) == NULL || kt_sockwatch_new(path, &s->watch) < 0)
		goto fail;
	s->loop = loop;
	s->h = *h;
	s->fd = listen_fd;
	s->lim = *lim;
	s->next_id = 1;
	if ((rc = kt_loop_io_add(loop, listen_fd, EPOLLIN, listen_event, s, &s->listen_io)) < 0 ||
	    (rc = kt_loop_every(loop, 1000, tick, s, &s->tick)) < 0 ||
	    (rc = kt_loop_on_turn_end(loop, turn_end, s)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s != NULL) {
		kt_loop_io_del(loop, s->listen_io);
		kt_loop_timer_del(loop, s->tick);
		kt_sockwatch_free(s->watch);
		kt_uidtab_free(s->uids);
		free(s->path);
	}
	free(s);
	return rc;
}

void kt_server_free(struct kt_server *s, bool unlink_socket)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		kt_conn_close(s, s->conns, "daemon stopping");
	kt_conn_reap(s);
	kt_loop_timer_del(s->loop, s->tick);
	if (s->fd >= 0) {
		listen_unwatch(s);
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

unsigned long kt_server_requests(const struct kt_server *s)
{
	return s->requests;
}

struct json_object *kt_server_socket_json(const struct kt_server *s)
{
	return kt_sockwatch_json(s->watch);
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
	struct kt_uid_use *use = NULL;
	struct kt_conn *c = NULL;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char why[160];

	if (s->stopping) {
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
			snprintf(why, sizeof(why),
				 "uid %lu has %ld connections open (max_connections_per_uid)",
				 (unsigned long)cred.uid, use->conns);
			kt_uidtab_complain(s->uids, cred.uid, KT_COMPLAINT_QUOTA, now,
					   "refusing a connection of pid %ld: %s", (long)cred.pid,
					   why);
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
	    ((long)s->nconns >= s->lim.max_conns + s->lim.reserve ||
	     (c->peer.uid != 0 && !s->h.reserved(s->h.ctx, &c->peer)))) {
		snprintf(why, sizeof(why), "keyturnd has %zu connections open (max_connections)",
			 s->nconns);
		kt_uidtab_complain(s->uids, cred.uid, KT_COMPLAINT_FULL, now,
				   "refusing a connection of uid %lu pid %ld: %s",
				   (unsigned long)cred.uid, (long)cred.pid, why);
		free(c);
		refuse(s, fd, why);
		return NULL;
	}
	c->s = s;
	c->fd = fd;
	c->id = s->next_id++;
	c->use = use;
	kt_buf_init(&c->in, IN_MAX);
	kt_buf_init(&c->out, OUT_MAX);
	c->last_active = now;
	c->events = EPOLLIN;
	if (kt_loop_io_add(s->loop, fd, EPOLLIN, kt_conn_io_event, c, &c->io) < 0) {
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
	time_t now = kt_server_mono_now();
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
		listen_unwatch(s);
		s->accept_paused_until = now + 1;
		if (now - s->last_fd_warning >= KT_COMPLAINT_WINDOW) {
			log_warn("refusing connections for now: %s (%zu open)", strerror(errno),
				 s->nconns);
			s->last_fd_warning = now;
		}
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		   errno != ECONNABORTED) {
		log_warn_errno("accept on %s", s->path);
	}
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
	if (s->accept_paused_until == 0)
		conn_accept(s);
	listen_unwatch(s);
	close(s->fd);
	s->fd = fd;
	s->accept_paused_until = 0;
	/* Else the tick tries again, as after a pause for descriptors. */
	listen_watch(s);
}

/* Once a second (the loop's timer): closes idle connections and requests
 * past their deadline, resumes a paused accept, watches the socket's path
 * and logs complaint summaries. */
static void tick(void *ctx)
{
	struct kt_server *s = ctx;
	time_t now = kt_server_mono_now();
	struct kt_conn *c = s->conns, *next;
	int fd;

	if (s->fd >= 0 && (fd = kt_sockwatch_check(s->watch, now)) >= 0)
		listen_swap(s, fd);

	if (s->accept_paused_until != 0 && now >= s->accept_paused_until && s->fd >= 0) {
		s->accept_paused_until = 0;
		listen_watch(s);
	}
	for (; c != NULL; c = next) {
		size_t need = 0;
		bool held;

		next = c->next;
		/* A connection the server does not read (a request parked, or
		 * its own or its uid's answers unsent) is not timed: the
		 * deadline of what it sends counts from when it is read again. */
		held = c->busy || kt_conn_over_share(c) || c->out.len >= OUT_HIGH;
		if (held)
			c->frame_start = now;
		/* A watcher waits for news, however long it takes: it is not idle. */
		if (c->busy || c->ready || c->watching)
			continue;
		/* A frame that is still arriving has request_timeout from its
		 * first byte, whatever trickles in meanwhile. */
		if (c->in.len > 0 && (kt_conn_frame_need(c, &need) <= 0 || c->in.len < need) &&
		    !held && now - c->frame_start > s->lim.request_timeout) {
			kt_uidtab_complain(
				s->uids, c->peer.uid, KT_COMPLAINT_DEADLINE, now,
				"closing connection of uid %lu pid %ld: request incomplete "
				"after %ld s (request_timeout)",
				(unsigned long)c->peer.uid, (long)c->peer.pid,
				s->lim.request_timeout);
			kt_conn_close(s, c, "request timeout");
		} else if (c->in.len == 0 && c->out.len == 0 &&
			   now - c->last_active > s->lim.idle_timeout) {
			kt_conn_close(s, c, "idle timeout");
		}
	}
	kt_uidtab_tick(s->uids, now);
}

void kt_server_stop_accepting(struct kt_server *s)
{
	s->stopping = true;
	if (s->fd < 0)
		return;
	listen_unwatch(s);
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

/* The end of every loop turn: work left from this turn, then the frees it
 * deferred. True when work is left for the next turn (the loop must not
 * sleep then). */
static bool turn_end(void *ctx)
{
	struct kt_server *s = ctx;
	bool more = kt_conn_run_ready(s);

	kt_conn_reap(s);
	return more;
}

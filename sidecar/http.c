/* keyturnd's HTTP door: the listeners, admission and the connections'
 * lives (this file); one request's handling is in http_req.c.
 * libmicrohttpd parses and frames HTTP: it runs without threads of its own
 * on an epoll fd that the daemon's loop watches, and gets each connection
 * from us (MHD_add_connection) after admission, so that a connection over
 * its uid's quota costs one accept() and one small write, never a parser.
 * Why libmicrohttpd and not a hand-written parser: docs/ARCHITECTURE.md. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/secmem.h"
#include "http_int.h"

/* Connections accepted per listener per loop turn, so other work goes on
 * during a flood. */
#define ACCEPTS_PER_TURN 64
/* A request line and headers must fit here (libmicrohttpd answers 431 or
 * 414 beyond it); answers are sent from their own buffers. */
#define CONN_MEMORY (32 * 1024)
#define UNKNOWN_PEER_LOG_EVERY 60

/* The Agent's answer when too many connections are open: said into the
 * new socket's empty buffer, never waited on, then closed. Whatever the
 * client already sent is read first, so the close is a FIN and not a reset
 * that could overtake the answer. */
static void refuse_429(struct kt_hdoor *d, int fd)
{
	static const char answer[] = "HTTP/1.1 429 Too Many Requests\r\n"
				     "Content-Type: text/plain\r\n"
				     "Content-Length: 25\r\n"
				     "Connection: close\r\n\r\n"
				     "Connection limit exceeded";
	char sink[4096];

	d->refused++;
	(void)!send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	(void)!recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
	close(fd);
}

/* Who is at the other end: the kernel's word or nothing. */
static int peer_of(struct kt_hdoor *d, int fd, const struct kt_listen_addr *a,
		   const struct sockaddr_storage *ss, socklen_t sslen, struct kt_peer *p)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	uid_t uid;
	int rc;

	if (a->kind == KT_LISTEN_UNIX)
		return kt_peer_from_socket(fd, p);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		return -errno;
	rc = kt_peerdiag_tcp_uid((const struct sockaddr *)ss, sslen,
				 (const struct sockaddr *)&local, llen, &uid);
	if (rc < 0)
		return rc;
	return kt_peercache_get(d->peers, uid, kt_hdoor_now(), p);
}

/* A connection ends: its uid's count, the list, the record. */
static void conn_gone(struct kt_hdoor *d, struct http_conn *c)
{
	if (c->use != NULL)
		c->use->conns--;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	d->nconns--;
	free(c);
}

static void admit(struct kt_hdoor *d, int fd, const struct kt_listen_addr *a,
		  const struct sockaddr_storage *ss, socklen_t sslen)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	time_t now = kt_hdoor_now();
	int rc;

	if (c == NULL) {
		close(fd);
		return;
	}
	rc = peer_of(d, fd, a, ss, sslen, &c->peer);
	if (rc < 0) {
		if (now - d->last_unknown_peer >= UNKNOWN_PEER_LOG_EVERY) {
			d->last_unknown_peer = now;
			log_warn("http %s: closing a connection whose user cannot be known: %s",
				 a->text, strerror(-rc));
		}
		d->refused++;
		free(c);
		close(fd);
		return;
	}
	if (c->peer.uid != 0) {
		c->use = kt_uidtab_get(d->uids, c->peer.uid);
		if (c->use == NULL) {
			free(c);
			close(fd);
			return;
		}
		if (c->use->conns >= d->lim.per_uid) {
			kt_uidtab_complain(
				d->uids, c->peer.uid, KT_COMPLAINT_QUOTA, now,
				"http: refusing a connection of uid %lu: it has %ld open "
				"(max_connections_per_uid)",
				(unsigned long)c->peer.uid, c->use->conns);
			free(c);
			refuse_429(d, fd);
			return;
		}
	}
	if ((long)d->nconns >= d->lim.max_conns &&
	    ((long)d->nconns >= d->lim.max_conns + d->lim.reserve ||
	     (c->peer.uid != 0 && !d->h.reserved(d->h.ctx, &c->peer)))) {
		kt_uidtab_complain(d->uids, c->peer.uid, KT_COMPLAINT_FULL, now,
				   "http: refusing a connection of uid %lu: %zu open "
				   "(max_connections)",
				   (unsigned long)c->peer.uid, d->nconns);
		free(c);
		refuse_429(d, fd);
		return;
	}
	c->d = d;
	c->fd = fd;
	c->since = now;
	if (c->use != NULL)
		c->use->conns++;
	c->next = d->conns;
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	d->nconns++;
	/* libmicrohttpd tells STARTED from inside this call: that notice
	 * takes d->adding as the connection's context. On failure it has
	 * closed fd and, having started nothing, tells nothing. */
	d->adding = c;
	if (MHD_add_connection(d->mhd, fd, (const struct sockaddr *)ss, sslen) != MHD_YES) {
		d->adding = NULL;
		log_warn_errno("http %s: cannot serve a new connection", a->text);
		conn_gone(d, c);
		return;
	}
	d->adding = NULL;
}

static void listen_event(void *ctx, uint32_t events)
{
	struct http_listener *l = ctx;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd;

	(void)events;
	for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
		sslen = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn_errno("http %s: accept", l->addr.text);
			return;
		}
		admit(l->d, fd, &l->addr, &ss, sslen);
	}
}

/* libmicrohttpd's notices of a connection's start and end. */
static void conn_notice(void *cls, struct MHD_Connection *mc, void **socket_context,
			enum MHD_ConnectionNotificationCode code)
{
	struct kt_hdoor *d = cls;
	struct http_conn *c;

	(void)mc;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = d->adding;
		return;
	}
	c = *socket_context;
	if (c == NULL)
		return;
	conn_gone(d, c);
	*socket_context = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: libmicrohttpd: %s", line);
}

static void run_mhd(struct kt_hdoor *d);

static void mhd_soon(void *ctx)
{
	struct kt_hdoor *d = ctx;

	d->soon = NULL;
	run_mhd(d);
}

/* libmicrohttpd may be left with work that no fd will announce (a request
 * line that filled its buffer, to be answered 414): it says how soon it
 * wants to run again, and anything under the tick's second is honoured. */
static void run_mhd(struct kt_hdoor *d)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	if (MHD_run(d->mhd) != MHD_YES)
		log_debug("http: MHD_run failed");
	if (d->soon == NULL && MHD_get_timeout(d->mhd, &ms) == MHD_YES && ms < 1000 &&
	    kt_loop_after(d->loop, (unsigned)ms, mhd_soon, d, &d->soon) < 0)
		d->soon = NULL;
}

static void mhd_event(void *ctx, uint32_t events)
{
	(void)events;
	run_mhd(ctx);
}

/* Once a second: libmicrohttpd's own timeouts, a request's line and
 * headers past request_timeout, a connection that never completes a
 * request line, and the complaint summaries. A connection is ended by
 * shutting its socket down; libmicrohttpd then closes it as a hang-up. */
static void tick(void *ctx)
{
	struct kt_hdoor *d = ctx;
	time_t now = kt_hdoor_now();

	for (struct http_conn *c = d->conns; c != NULL; c = c->next) {
		bool late;

		if (c->cur != NULL)
			late = c->cur->state == REQ_READING &&
			       now - c->cur->started >= d->lim.request_timeout;
		else
			late = now - c->since >= d->lim.idle_timeout + d->lim.request_timeout;
		if (!late)
			continue;
		kt_uidtab_complain(d->uids, c->peer.uid, KT_COMPLAINT_DEADLINE, now,
				   "http: closing a connection of uid %lu: no whole request in "
				   "%ld s (request_timeout)",
				   (unsigned long)c->peer.uid, d->lim.request_timeout);
		shutdown(c->fd, SHUT_RDWR);
	}
	run_mhd(d);
	kt_uidtab_tick(d->uids, now);
}

int kt_hdoor_listen(const struct kt_listen_addr *a, uid_t owner, gid_t group, char *err,
		    size_t errlen)
{
	int fd, one = 1, rc;

	if (a->kind == KT_LISTEN_UNIX) {
		/* Non-blocking and close-on-exec, as the socket server's. */
		return kt_server_listen(a->path, owner, group, err, errlen);
	}
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: socket: %s", a->text, strerror(-rc));
		return rc;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (a->sa.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0 || listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", a->text, strerror(-rc));
		return rc;
	}
	return fd;
}

int kt_hdoor_new(struct kt_loop *loop, const struct kt_listen_addr *addrs, const int *fds, size_t n,
		 const struct kt_server_limits *lim, const struct kt_hdoor_opts *o,
		 const struct kt_hdoor_handler *h, struct kt_hdoor **out)
{
	struct kt_hdoor *d = calloc(1, sizeof(*d));
	const union MHD_DaemonInfo *info;
	int rc = -ENOMEM;

	if (d == NULL) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return -ENOMEM;
	}
	d->loop = loop;
	d->h = *h;
	d->lim = *lim;
	d->metrics = o->metrics;
	d->next_id = 1;
	d->nlisten = n;
	for (size_t i = 0; i < n; i++) {
		d->listeners[i].d = d;
		d->listeners[i].fd = fds[i];
		d->listeners[i].addr = addrs[i];
	}
	snprintf(d->token, sizeof(d->token), "%s", o->token);
	if ((d->prefix = kt_strdup(o->path_prefix)) == NULL ||
	    (d->uids = kt_uidtab_new()) == NULL || (d->peers = kt_peercache_new(256, 60)) == NULL)
		goto fail;
	d->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
					  MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, kt_hdoor_access, d, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)(1u << 20), MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)lim->idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_CONNECTION, conn_notice, d,
				  MHD_OPTION_NOTIFY_COMPLETED, kt_hdoor_completed, d,
				  MHD_OPTION_URI_LOG_CALLBACK, kt_hdoor_uri_log, d,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d, MHD_OPTION_END);
	if (d->mhd == NULL ||
	    (info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		log_err("http: cannot start libmicrohttpd");
		rc = -EIO;
		goto fail;
	}
	if ((rc = kt_loop_io_add(loop, info->epoll_fd, EPOLLIN, mhd_event, d, &d->mhd_io)) < 0 ||
	    (rc = kt_loop_every(loop, 1000, tick, d, &d->tick)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		rc = kt_loop_io_add(loop, fds[i], EPOLLIN, listen_event, &d->listeners[i],
				    &d->listeners[i].io);
		if (rc < 0)
			goto fail;
	}
	*out = d;
	return 0;
fail:
	kt_hdoor_free(d);
	return rc;
}

void kt_hdoor_stop_accepting(struct kt_hdoor *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nlisten; i++) {
		struct http_listener *l = &d->listeners[i];

		kt_loop_io_del(d->loop, l->io);
		l->io = NULL;
		if (l->fd >= 0) {
			close(l->fd);
			if (l->addr.kind == KT_LISTEN_UNIX)
				unlink(l->addr.path);
		}
		l->fd = -1;
	}
}

void kt_hdoor_free(struct kt_hdoor *d)
{
	if (d == NULL)
		return;
	kt_hdoor_stop_accepting(d);
	if (d->mhd != NULL) {
		/* libmicrohttpd stops only with no connection suspended. */
		kt_hdoor_release_parked(d);
		MHD_run(d->mhd);
		MHD_stop_daemon(d->mhd);
	}
	kt_loop_io_del(d->loop, d->mhd_io);
	kt_loop_timer_del(d->loop, d->tick);
	kt_loop_timer_del(d->loop, d->soon);
	kt_peercache_free(d->peers);
	kt_uidtab_free(d->uids);
	free(d->prefix);
	OPENSSL_cleanse(d->token, sizeof(d->token));
	free(d);
}

void kt_hdoor_set_limits(struct kt_hdoor *d, const struct kt_server_limits *lim)
{
	d->lim = *lim;
}

size_t kt_hdoor_connections(const struct kt_hdoor *d)
{
	return d->nconns;
}

unsigned long kt_hdoor_refused(const struct kt_hdoor *d)
{
	return d->refused;
}

unsigned long kt_hdoor_requests(const struct kt_hdoor *d)
{
	return d->requests;
}

struct json_object *kt_hdoor_json(const struct kt_hdoor *d)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	for (size_t i = 0; i < d->nlisten; i++)
		json_object_array_add(arr, json_object_new_string(d->listeners[i].addr.text));
	json_object_object_add(o, "state", json_object_new_string("on"));
	json_object_object_add(o, "listen", arr);
	return o;
}

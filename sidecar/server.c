/* keyturnd's socket server. Connections are non-blocking and level-triggered
 * in the daemon's epoll; each has an input buffer of at most one frame and
 * an output buffer, and handles one request at a time: while a request waits
 * on AWS no further frame is read from that connection, which keeps answers
 * in order and memory bounded. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "kt_buf.h"
#include "kt_json.h"
#include "log.h"
#include "ops.h"
#include "proto.h"
#include "secmem.h"
#include "server.h"

#define EV_LISTEN 0x4c49u  /* tags at the start of what data.ptr points to */
#define EV_CONN 0x434fu
#define IN_MAX (KT_PROTO_MAX_FRAME + KT_PROTO_HDR)
/* Past this much unsent output, a connection's requests wait. */
#define OUT_HIGH (KT_PROTO_MAX_FRAME + KT_PROTO_HDR)
#define OUT_MAX (2 * OUT_HIGH)

struct kt_conn {
	unsigned tag;
	uint64_t id;
	int fd;
	struct kt_peer peer;
	struct kt_buf in;
	struct kt_buf out;
	bool busy;          /* a request is parked */
	bool hangup;        /* peer closed its side; close once output is sent */
	time_t last_active; /* connect, or the last request answered */
	uint32_t events;    /* epoll interest now registered */
	struct kt_conn *prev, *next;
};

struct kt_server {
	unsigned tag;
	struct kt_daemon *d;
	int fd;
	char *path;
	long max_conns;
	long idle_timeout;
	size_t nconns;
	uint64_t next_id;
	struct kt_conn *conns;
	time_t last_full_warning;
	time_t accept_paused_until; /* out of descriptors: accepting waits */
};

int kt_server_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	bool made_dir = false;
	mode_t old;
	int fd = -1, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0) {
			/* 0755 whatever the umask, so every user can reach it. */
			made_dir = true;
			if (chmod(dir, 0755) < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot set the mode of %s: %s", dir,
					 strerror(errno));
				return rc;
			}
		} else if (errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	/* A socket left by a daemon that died is in the way; a running daemon
	 * would be too, but two daemons on one socket is an operator's error
	 * that systemd prevents. */
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot remove old socket %s: %s", path, strerror(errno));
		goto fail;
	}
	/* Anyone may connect; who may read what is decided per request from
	 * the peer's credentials. */
	old = umask(0111);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chown(path, owner, group) < 0 && geteuid() == 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot chown %s: %s", path, strerror(errno));
		goto fail;
	}
	/* A directory made here becomes the service user's, so the daemon can
	 * remove its socket after the drop: only now, after the bind, so that
	 * root needs no CAP_DAC_OVERRIDE to create the socket in it. */
	if (made_dir && geteuid() == 0 && chown(dir, owner, group) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot give %s to the service user: %s", dir, strerror(errno));
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

int kt_server_new(struct kt_daemon *d, int listen_fd, const char *path, long max_conns,
		  long idle_timeout, struct kt_server **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct kt_server *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->path = kt_strdup(path)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->tag = EV_LISTEN;
	s->d = d;
	s->fd = listen_fd;
	s->max_conns = max_conns;
	s->idle_timeout = idle_timeout;
	s->next_id = 1;
	ev.data.ptr = s;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		int rc = -errno;

		free(s->path);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void conn_close(struct kt_server *s, struct kt_conn *c, const char *why)
{
	log_debug("connection %llu (uid %lu pid %ld) closed: %s", (unsigned long long)c->id,
		  (unsigned long)c->peer.uid, (long)c->peer.pid, why);
	epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	kt_buf_free(&c->in);
	kt_buf_free(&c->out);
	free(c);
	s->nconns--;
}

void kt_server_free(struct kt_server *s, bool unlink_socket)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		conn_close(s, s->conns, "daemon stopping");
	if (s->fd >= 0) {
		if (s->accept_paused_until == 0)
			epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	if (unlink_socket)
		unlink(s->path);
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

/* Registers what the connection wants now: input unless it is waiting on
 * AWS or has too much unsent output; output while any is pending. */
static void conn_update_events(struct kt_server *s, struct kt_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	size_t pending = c->out.len;

	if (!c->busy && !c->hangup && pending < OUT_HIGH && c->in.len < IN_MAX)
		ev.events |= EPOLLIN;
	if (pending > 0)
		ev.events |= EPOLLOUT;
	if (ev.events == c->events)
		return;
	c->events = ev.events;
	epoll_ctl(s->d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_accept(struct kt_server *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct kt_conn *c;
	int fd;

	while ((fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if ((long)s->nconns >= s->max_conns || s->d->stopping) {
			time_t now = time(NULL);

			/* Closing at once tells the client more than a connection
			 * left hanging in the backlog would. */
			if (!s->d->stopping && now - s->last_full_warning >= 10) {
				log_warn("refusing connections: %ld open (max_connections)",
					 s->max_conns);
				s->last_full_warning = now;
			}
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->tag = EV_CONN;
		c->fd = fd;
		c->id = s->next_id++;
		kt_buf_init(&c->in, IN_MAX);
		kt_buf_init(&c->out, OUT_MAX);
		c->last_active = time(NULL);
		if (kt_peer_from_socket(fd, &c->peer) < 0) {
			log_warn("cannot read the credentials of a new connection; closing it");
			close(fd);
			free(c);
			continue;
		}
		ev.data.ptr = c;
		c->events = EPOLLIN;
		if (epoll_ctl(s->d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		log_debug("connection %llu from uid %lu pid %ld", (unsigned long long)c->id,
			  (unsigned long)c->peer.uid, (long)c->peer.pid);
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* The pending connection stays pending and the socket stays
		 * readable: without a pause the loop would spin on it. */
		time_t now = time(NULL);

		epoll_ctl(s->d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->accept_paused_until = now + 1;
		if (now - s->last_full_warning >= 10) {
			log_warn("refusing connections for now: %s (%zu open)", strerror(errno),
				 s->nconns);
			s->last_full_warning = now;
		}
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		   errno != ECONNABORTED) {
		log_warn("accept on %s: %s", s->path, strerror(errno));
	}
}

/* Appends an answer (reference taken). A failure to serialise is answered
 * as an internal error, so the client is never left waiting. */
static int conn_answer(struct kt_conn *c, struct json_object *answer)
{
	int rc = answer != NULL ? kt_proto_send_json(&c->out, answer) : -ENOMEM;

	kt_json_put_wiped(answer);
	if (rc == -EMSGSIZE) {
		struct json_object *e = kt_proto_error(KT_PERR_INTERNAL,
						       "the answer would be larger than 1 MiB");

		rc = e != NULL ? kt_proto_send_json(&c->out, e) : -ENOMEM;
		kt_json_put_wiped(e);
	}
	c->last_active = time(NULL);
	return rc;
}

/* Gives back a buffer's storage once it is empty and has grown past what
 * everyday requests need, so a thousand idle connections stay small. */
static void buf_trim(struct kt_buf *b)
{
	if (b->len == 0 && b->cap > 65536)
		kt_buf_free(b);
}

/* Handles every whole frame in the input buffer, one at a time, until a
 * request parks or output backs up. Returns false when the connection must
 * be closed (malformed frame). */
static bool conn_process(struct kt_server *s, struct kt_conn *c)
{
	while (!c->busy && c->out.len < OUT_HIGH) {
		const char *payload;
		size_t plen, flen;
		struct json_object *req, *answer = NULL;
		bool written = false;
		int rc = kt_proto_unframe(c->in.data != NULL ? c->in.data : "", c->in.len, &payload,
					  &plen, &flen);

		if (rc == 0)
			return true;
		if (rc < 0) {
			log_warn("closing connection of uid %lu pid %ld: %s",
				 (unsigned long)c->peer.uid, (long)c->peer.pid,
				 rc == -EMSGSIZE ? "frame longer than 1 MiB" : "malformed frame");
			return false;
		}
		s->d->requests++;
		req = kt_json_parse(payload, plen);
		kt_buf_consume(&c->in, flen);
		buf_trim(&c->in);
		if (req == NULL || !json_object_is_type(req, json_type_object)) {
			answer = kt_proto_error(KT_PERR_BAD_REQUEST, "the request is not a JSON object");
		} else {
			switch (kt_ops_handle(s->d, c->id, &c->peer, req, &answer, &c->out)) {
			case KT_OP_PARKED:
				c->busy = true;
				break;
			case KT_OP_WRITTEN:
				c->last_active = time(NULL);
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
		if (!c->busy && !written && conn_answer(c, answer) < 0)
			return false;
	}
	return true;
}

/* Reads what has arrived. A read that did not fill the chunk took all there
 * was, so the loop stops there instead of paying a second recv() for the
 * EAGAIN; level-triggered epoll reports anything that comes later. */
static bool conn_read(struct kt_conn *c)
{
	char chunk[16384];
	size_t used = 0;
	bool ok = true;

	while (c->in.len < IN_MAX) {
		size_t room = IN_MAX - c->in.len, want = room < sizeof(chunk) ? room : sizeof(chunk);
		ssize_t n = recv(c->fd, chunk, want, 0);

		if (n > 0) {
			used = (size_t)n > used ? (size_t)n : used;
			if (kt_buf_append(&c->in, chunk, (size_t)n) < 0) {
				ok = false;
				break;
			}
			if ((size_t)n < want)
				break;
			continue;
		}
		if (n == 0)
			c->hangup = true;
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			ok = false;
		break;
	}
	/* Requests may carry passwords; wipe what the chunk held. */
	kt_wipe(chunk, used);
	return ok;
}

static bool conn_write(struct kt_conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			kt_buf_consume(&c->out, (size_t)n);
			buf_trim(&c->out);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return true;
		return false;
	}
	return true;
}

static void conn_event(struct kt_server *s, struct kt_conn *c, uint32_t events)
{
	if ((events & EPOLLIN) && !conn_read(c)) {
		conn_close(s, c, "read error");
		return;
	}
	if (!conn_process(s, c)) {
		conn_close(s, c, "malformed frame");
		return;
	}
	if ((events & (EPOLLOUT | EPOLLIN)) && !conn_write(c)) {
		conn_close(s, c, "peer went away");
		return;
	}
	if ((events & (EPOLLERR | EPOLLHUP)) && c->out.len > 0) {
		conn_close(s, c, "peer went away");
		return;
	}
	/* The peer is done sending: finish what it asked, then close. */
	if ((c->hangup || (events & EPOLLHUP)) && !c->busy && c->out.len == 0) {
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

void kt_server_reply(struct kt_server *s, uint64_t conn_id, struct json_object *answer)
{
	struct kt_conn *c;

	for (c = s->conns; c != NULL; c = c->next) {
		if (c->id == conn_id)
			break;
	}
	if (c == NULL) {
		/* The client left while its request waited on AWS. */
		kt_json_put_wiped(answer);
		return;
	}
	c->busy = false;
	if (conn_answer(c, answer) < 0) {
		conn_close(s, c, "cannot queue the answer");
		return;
	}
	/* More requests may have arrived behind the parked one. */
	conn_event(s, c, EPOLLOUT);
}

void kt_server_set_limits(struct kt_server *s, long max_conns, long idle_timeout)
{
	s->max_conns = max_conns;
	s->idle_timeout = idle_timeout;
}

void kt_server_tick(struct kt_server *s, time_t now)
{
	struct kt_conn *c = s->conns, *next;

	if (s->accept_paused_until != 0 && now >= s->accept_paused_until && s->fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

		s->accept_paused_until = 0;
		epoll_ctl(s->d->epfd, EPOLL_CTL_ADD, s->fd, &ev);
	}

	for (; c != NULL; c = next) {
		next = c->next;
		if (!c->busy && now - c->last_active > s->idle_timeout)
			conn_close(s, c, "idle timeout");
	}
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

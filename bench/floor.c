/* The "floor" for keyturnd's benchmarks: a Unix-socket server that speaks the
 * same framing and answers every request with one fixed, pre-built get answer.
 * Whatever it costs to serve a request here, the daemon cannot beat. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "common/secmem.h"

#define READ_CHUNK 65536
#define MAX_EVENTS 256

struct conn {
	int fd;
	char *in; /* bytes received and not yet consumed */
	size_t in_len;
	size_t in_cap;
	unsigned long owed; /* whole answers still to write */
	size_t out_off;     /* bytes of the current answer already written */
	bool want_out;      /* EPOLLOUT is armed */
	struct conn *prev;  /* the list of open connections, freed at exit */
	struct conn *next;
};

static struct conn *conns;

struct floor_opts {
	const char *socket_path;
	size_t string_size;
	bool parse;
};

static volatile sig_atomic_t stop_requested;

static const char value_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The one answer, framed once at start-up. */
static const char *answer;
static size_t answer_len;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: floor --socket PATH [--string-size BYTES] [--parse]\n"
		   "  Answers every framed request with a fixed get answer.\n"
		   "  --parse  also parse each request as JSON (costs what the daemon pays)\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > KT_PROTO_MAX_FRAME / 2)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct floor_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
			o->socket_path = argv[++i];
		} else if (strcmp(a, "--string-size") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &o->string_size) < 0)
				return -EINVAL;
		} else if (strcmp(a, "--parse") == 0) {
			o->parse = true;
		} else if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else {
			return -EINVAL;
		}
	}
	return o->socket_path != NULL ? 0 : -EINVAL;
}

/* Builds the framed answer a real get of a 4 KiB string would produce, with
 * the same members the daemon sends, so both write the same number of bytes. */
static int build_answer(size_t string_size, struct kt_buf *out)
{
	struct json_object *o = json_object_new_object();
	struct json_object *stages = json_object_new_array();
	char *value = malloc(string_size + 1);
	int rc = -ENOMEM;

	if (o == NULL || stages == NULL || value == NULL)
		goto out;
	/* Printable, varied text: nothing that a serializer could shortcut. */
	for (size_t i = 0; i < string_size; i++)
		value[i] = value_alphabet[(i * 37 + i / 64) % 64];
	value[string_size] = '\0';
	if (json_object_array_add(stages, json_object_new_string("AWSCURRENT")) < 0)
		goto out;
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	json_object_object_add(o, "name", json_object_new_string("bench/s1"));
	json_object_object_add(
		o, "arn",
		json_object_new_string(
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/s1-AbCdEf"));
	json_object_object_add(o, "version_id",
			       json_object_new_string("3f1c0f2e-8a4b-4c1d-9e2f-5a6b7c8d9e0f"));
	json_object_object_add(o, "stages", stages);
	stages = NULL;
	json_object_object_add(o, "string", json_object_new_string(value));
	json_object_object_add(o, "fetched_at", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "stale", json_object_new_boolean(false));
	rc = kt_proto_send_json(out, o);
out:
	json_object_put(stages);
	json_object_put(o);
	free(value);
	return rc;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = -1;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "floor: socket path too long\n");
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:
	fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Out of descriptors, the listening socket stays readable; it is taken out
 * of the epoll set until a connection closes, or the loop would spin. */
static int listen_fd = -1;
static bool listen_paused;

static void listen_pause(int ep, bool pause)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (pause == listen_paused)
		return;
	if (epoll_ctl(ep, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, listen_fd, &ev) == 0)
		listen_paused = pause;
}

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->in);
	free(c);
	listen_pause(ep, false);
}

/* Writes owed answers until done or the socket is full. Returns 0 or -1 when
 * the connection is gone. */
static int conn_flush(int ep, struct conn *c)
{
	while (c->owed > 0) {
		ssize_t n = send(c->fd, answer + c->out_off, answer_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
		if (c->out_off == answer_len) {
			c->out_off = 0;
			c->owed--;
		}
	}
	if ((c->owed > 0) != c->want_out) {
		struct epoll_event ev = { .data.ptr = c };

		c->want_out = c->owed > 0;
		ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
			return -1;
	}
	return 0;
}

/* Reads what is there and counts the whole frames in it. Returns 0, or -1
 * when the peer closed or sent a malformed frame. */
static int conn_read(struct conn *c, bool parse)
{
	for (;;) {
		const char *payload;
		size_t plen, flen, off = 0;
		size_t room;
		ssize_t n;
		int rc;

		if (c->in_cap - c->in_len < READ_CHUNK) {
			size_t cap = c->in_len + READ_CHUNK;
			char *p = realloc(c->in, cap);

			if (p == NULL)
				return -1;
			c->in = p;
			c->in_cap = cap;
		}
		room = c->in_cap - c->in_len;
		n = recv(c->fd, c->in + c->in_len, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		c->in_len += (size_t)n;
		while ((rc = kt_proto_unframe(c->in + off, c->in_len - off, &payload, &plen,
					      &flen)) == 1) {
			if (parse) {
				struct json_object *req = kt_json_parse(payload, plen);
				bool is_obj = json_object_is_type(req, json_type_object);

				json_object_put(req);
				if (!is_obj)
					return -1;
			}
			c->owed++;
			off += flen;
		}
		if (rc < 0)
			return -1;
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
		/* A short read means the socket is drained for now. */
		if ((size_t)n < room)
			return 0;
	}
}

static void accept_all(int ep)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* EMFILE and the like leave the rest in the backlog until
			 * a connection closes; EAGAIN just ends the batch. */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				listen_pause(ep, true);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = conns;
		if (conns != NULL)
			conns->prev = c;
		conns = c;
	}
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct floor_opts o = { .string_size = 4096 };
	struct kt_buf frame = KT_BUF_INIT(KT_PROTO_MAX_FRAME + KT_PROTO_HDR);
	struct epoll_event lev = { .events = EPOLLIN };
	struct sigaction sa = { .sa_handler = on_signal };
	int ep = -1, ret = 1;

	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	if (build_answer(o.string_size, &frame) < 0) {
		fprintf(stderr, "floor: cannot build the answer\n");
		goto out;
	}
	answer = frame.data;
	answer_len = frame.len;

	/* No SA_RESTART: epoll_wait must return so the loop sees the flag. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	listen_fd = listen_on(o.socket_path);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (listen_fd < 0 || ep < 0)
		goto out;
	lev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) < 0)
		goto out;
	fprintf(stderr, "floor: listening on %s, answer %zu bytes\n", o.socket_path, answer_len);

	while (!stop_requested) {
		struct epoll_event evs[MAX_EVENTS];
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "floor: epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL) {
				accept_all(ep);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
			    conn_read(c, o.parse) < 0) {
				conn_close(ep, c);
				continue;
			}
			if (conn_flush(ep, c) < 0)
				conn_close(ep, c);
		}
	}
	ret = 0;
out:
	while (conns != NULL)
		conn_close(ep, conns);
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(o.socket_path);
	}
	if (ep >= 0)
		close(ep);
	kt_buf_free(&frame);
	return ret;
}

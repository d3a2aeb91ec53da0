/* A closed-loop load generator for keyturnd's HTTP front door: N keep-alive
 * connections over TCP (or a Unix socket), each with one GET outstanding at a
 * time, sent again as soon as its answer is in. Prints throughput and latency
 * percentiles for one run, in the same shape as bench/loadgen's line. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define MAX_CONNECTIONS 10000
#define MAX_THREADS 64
#define READ_CHUNK 65536
#define CONNECT_TIMEOUT_S 5
#define MAX_ANSWER (16u << 20)
#define MAX_TOKEN 4096
#define MAX_REQUEST 8192
#define NSTATUS 600

struct hl_opts {
	const char *connect;   /* HOST:PORT, numeric */
	const char *unix_path; /* or a Unix socket */
	const char *secret;
	const char *target;
	const char *token_file;
	const char *host;
	const char *expect;
	long connections;
	long threads;
	double duration;
	double warmup;
};

/* How the body of the answer being read ends. */
enum body_kind {
	BODY_LENGTH,  /* Content-Length */
	BODY_CHUNKED, /* Transfer-Encoding: chunked */
	BODY_EOF,     /* neither: the server closes after it */
	BODY_NONE,    /* 1xx, 204, 304 */
};

struct hconn {
	int fd;
	char *in;
	size_t in_len;
	size_t in_cap;
	size_t out_off;  /* request bytes already written */
	uint64_t t_sent; /* ns, when the current request was started */
	bool want_out;
	/* The answer being read; reset by answer_reset(). */
	size_t scan;     /* where the search for the head's end resumes */
	size_t body_at;  /* offset of the body, 0 until the head is in */
	size_t chunk_at; /* offset of the next chunk-size line */
	uint64_t clen;
	int status;
	enum body_kind kind;
	bool close_after;
};

struct worker {
	pthread_t thread;
	struct hconn *conns;
	long nconns;
	int ep;
	struct hist hist;
	uint64_t requests;        /* good answers completed inside the measured window */
	uint64_t errors;          /* bad answers and lost requests, whole run */
	uint64_t closed;          /* connections the server closed or broke, whole run */
	uint64_t dead;            /* connections that could not be opened again */
	uint64_t malformed;       /* answers that were not HTTP as this program reads it */
	uint64_t bad_expect;      /* 200 answers without the --expect string */
	uint64_t status[NSTATUS]; /* answers by status code, whole run */
};

/* Read-only once the workers start. */
static struct hl_opts opts;
static struct sockaddr_storage peer_addr;
static socklen_t peer_len;
static char request[MAX_REQUEST];
static size_t request_len;
static uint64_t t_measure; /* end of the warm-up */
static uint64_t t_end;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: http_load (--connect HOST:PORT | --unix PATH) --connections N --duration S\n"
		"                 (--secret NAME | --target PATH) [--token-file FILE] [--host NAME]\n"
		"                 [--expect STRING] [--warmup S] [--threads T]\n"
		"  Sends GET /secretsmanager/get?secretId=NAME (or GET PATH) over keep-alive\n"
		"  connections, with X-Aws-Parameters-Secrets-Token from FILE (white space\n"
		"  around it ignored).\n"
		"  Prints: connections=N requests=R throughput=X/s p50=Yus p99=Zus p999=Wus\n"
		"          errors=E closed=C\n"
		"  requests counts answers with status 200 (holding STRING, with --expect)\n"
		"  completed inside the measured window; errors counts other answers and\n"
		"  requests lost to a closed connection over the whole run, warm-up included;\n"
		"  closed counts connections the server closed or broke (each is opened again).\n");
}

/* --- answers --------------------------------------------------------------- */

static void answer_reset(struct hconn *c)
{
	c->in_len = 0;
	c->scan = 0;
	c->body_at = 0;
	c->chunk_at = 0;
	c->clen = 0;
	c->status = 0;
	c->kind = BODY_LENGTH;
	c->close_after = false;
}

/* True when the header value v[0..n) holds word as a whole token of a
 * comma-separated list, ignoring case. */
static bool has_token(const char *v, size_t n, const char *word)
{
	size_t wl = strlen(word), i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == wl && strncasecmp(v + s, word, wl) == 0)
			return true;
	}
	return false;
}

/* Reads the status line and the headers this program needs from the head
 * p[0..n) (which ends with the blank line). Returns 0, or -1 when it is not
 * an HTTP/1.x answer with a usable framing. */
static int parse_head(struct hconn *c, const char *p, size_t n)
{
	const char *line = p, *end = p + n;
	bool http10, have_len = false, keep_alive = false;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	http10 = p[7] == '0';
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	c->kind = BODY_EOF;
	for (;;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		const char *colon, *v, *ve;

		if (eol == NULL)
			return -1;
		line = eol + 1;
		if (line >= end || *line == '\r' || *line == '\n')
			break;
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			return -1;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL) {
			line = eol;
			continue;
		}
		v = colon + 1;
		ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if ((size_t)(colon - line) == 14 && strncasecmp(line, "content-length", 14) == 0) {
			char num[24], *numend = NULL;
			unsigned long long len;

			if (ve - v == 0 || (size_t)(ve - v) >= sizeof(num))
				return -1;
			memcpy(num, v, (size_t)(ve - v));
			num[ve - v] = '\0';
			if (num[0] < '0' || num[0] > '9')
				return -1;
			errno = 0;
			len = strtoull(num, &numend, 10);
			if (errno != 0 || *numend != '\0' || len > MAX_ANSWER ||
			    (have_len && len != c->clen))
				return -1;
			c->clen = len;
			have_len = true;
		} else if ((size_t)(colon - line) == 17 &&
			   strncasecmp(line, "transfer-encoding", 17) == 0) {
			if (!has_token(v, (size_t)(ve - v), "chunked"))
				return -1;
			c->kind = BODY_CHUNKED;
		} else if ((size_t)(colon - line) == 10 &&
			   strncasecmp(line, "connection", 10) == 0) {
			if (has_token(v, (size_t)(ve - v), "close"))
				c->close_after = true;
			if (has_token(v, (size_t)(ve - v), "keep-alive"))
				keep_alive = true;
		}
		line = eol;
	}
	if (http10 && !keep_alive)
		c->close_after = true;
	if (c->status < 200 || c->status == 204 || c->status == 304)
		c->kind = BODY_NONE;
	else if (c->kind != BODY_CHUNKED && have_len)
		c->kind = BODY_LENGTH;
	if (c->kind == BODY_EOF)
		c->close_after = true;
	return 0;
}

/* Walks the chunks of a chunked body from c->chunk_at, moving it past every
 * whole chunk. Returns 1 and the answer's end in *end when the last chunk and
 * the trailers are in, 0 when more is needed, -1 when the framing is bad. */
static int chunked_end(struct hconn *c, size_t *end)
{
	const char *p = c->in;
	size_t n = c->in_len;

	for (;;) {
		const char *eol = memchr(p + c->chunk_at, '\n', n - c->chunk_at);
		size_t line_end, i = c->chunk_at;
		uint64_t size = 0;
		int digits = 0;

		if (eol == NULL)
			return n - c->chunk_at > 1024 ? -1 : 0;
		line_end = (size_t)(eol - p) + 1;
		for (; i < line_end; i++, digits++) {
			char ch = p[i];
			int d = ch >= '0' && ch <= '9'   ? ch - '0'
				: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
				: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
							 : -1;

			if (d < 0)
				break;
			if (digits >= 8)
				return -1;
			size = size * 16 + (uint64_t)d;
		}
		if (digits == 0)
			return -1;
		if (size == 0) {
			/* Trailers, if any, then an empty line. */
			size_t at = line_end;

			for (;;) {
				const char *tl = memchr(p + at, '\n', n - at);

				if (tl == NULL)
					return n - at > 16384 ? -1 : 0;
				if ((size_t)(tl - p) == at ||
				    ((size_t)(tl - p) == at + 1 && p[at] == '\r')) {
					*end = (size_t)(tl - p) + 1;
					return 1;
				}
				at = (size_t)(tl - p) + 1;
			}
		}
		if (size > MAX_ANSWER || n - line_end < size + 2)
			return n - c->body_at > MAX_ANSWER ? -1 : 0;
		if (p[line_end + size] == '\r')
			c->chunk_at = line_end + size + 2;
		else
			c->chunk_at = line_end + size + 1;
		if (c->chunk_at > n)
			return 0;
	}
}

/* Looks at what has come in. Returns 1 and the answer's length in *alen when
 * a whole answer is in, 0 when more is needed, -1 when it is malformed.
 * eof says the server has closed its side. */
static int answer_complete(struct hconn *c, bool eof, size_t *alen)
{
	for (;;) {
		if (c->body_at == 0) {
			const char *he;

			he = memmem(c->in + c->scan, c->in_len - c->scan, "\r\n\r\n", 4);
			if (he == NULL) {
				c->scan = c->in_len > 3 ? c->in_len - 3 : 0;
				return c->in_len > 65536 ? -1 : 0;
			}
			c->body_at = (size_t)(he - c->in) + 4;
			c->chunk_at = c->body_at;
			if (parse_head(c, c->in, c->body_at) < 0)
				return -1;
			/* An interim answer (100 Continue) is dropped; the real
			 * one follows it. */
			if (c->status < 200) {
				size_t rest = c->in_len - c->body_at;

				memmove(c->in, c->in + c->body_at, rest);
				answer_reset(c);
				c->in_len = rest;
				continue;
			}
		}
		switch (c->kind) {
		case BODY_NONE:
			*alen = c->body_at;
			return 1;
		case BODY_LENGTH:
			if (c->in_len - c->body_at < c->clen)
				return 0;
			*alen = c->body_at + (size_t)c->clen;
			return 1;
		case BODY_CHUNKED:
			return chunked_end(c, alen);
		case BODY_EOF:
			if (!eof)
				return c->in_len > MAX_ANSWER ? -1 : 0;
			*alen = c->in_len;
			return 1;
		}
		return -1;
	}
}

/* Counts a whole answer: good (200, with the expected text) or an error. */
static void judge(struct worker *w, struct hconn *c, size_t alen)
{
	uint64_t t = now_ns();
	bool good = c->status == 200;

	w->status[c->status > 0 && c->status < NSTATUS ? c->status : 0]++;
	if (good && opts.expect != NULL &&
	    memmem(c->in + c->body_at, alen - c->body_at, opts.expect, strlen(opts.expect)) ==
		    NULL) {
		good = false;
		w->bad_expect++;
	}
	if (!good)
		w->errors++;
	else if (t >= t_measure && t < t_end) {
		hist_add(&w->hist, t - c->t_sent);
		w->requests++;
	}
}

/* --- connections ----------------------------------------------------------- */

/* A blocking connect, bounded by CONNECT_TIMEOUT_S, then non-blocking. */
static int open_conn(void)
{
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	int fd, one = 1;

	fd = socket(peer_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&peer_addr, peer_len) < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
	    (peer_addr.ss_family != AF_UNIX &&
	     setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int arm(struct worker *w, struct hconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == out)
		return 0;
	c->want_out = out;
	return epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of the request. Returns 0 or -1 when the connection failed. */
static int send_rest(struct worker *w, struct hconn *c)
{
	while (c->out_off < request_len) {
		ssize_t n =
			send(c->fd, request + c->out_off, request_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return arm(w, c, true);
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
	}
	return arm(w, c, false);
}

static int start_request(struct worker *w, struct hconn *c)
{
	answer_reset(c);
	c->out_off = 0;
	c->t_sent = now_ns();
	return send_rest(w, c);
}

static void drop_conn(struct worker *w, struct hconn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

/* Replaces a connection the server closed or broke with a new one and starts
 * a request on it. A connection that cannot be opened again stays closed and
 * is counted in dead. */
static void reconnect(struct worker *w, struct hconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	drop_conn(w, c);
	answer_reset(c);
	c->want_out = false;
	if (now_ns() >= t_end)
		return;
	c->fd = open_conn();
	if (c->fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ||
	    start_request(w, c) < 0) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		w->dead++;
		w->errors++;
	}
}

/* Reads what is there. Returns 1 when a whole answer came in (and was
 * judged), 0 when more is needed, -1 when the request was lost (the
 * connection closed or failed before its answer was whole, or the answer was
 * malformed). */
static int read_answer(struct worker *w, struct hconn *c)
{
	for (;;) {
		size_t room, alen = 0;
		ssize_t n;
		bool eof = false;
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
		if (n < 0)
			return -1;
		if (n == 0)
			eof = true;
		c->in_len += (size_t)n;
		rc = answer_complete(c, eof, &alen);
		if (rc < 0) {
			w->malformed++;
			return -1;
		}
		if (rc == 0) {
			if (eof)
				return -1;
			if ((size_t)n < room)
				return 0;
			continue;
		}
		/* One request is outstanding, so anything after its answer is a
		 * protocol violation. */
		if (alen != c->in_len) {
			w->malformed++;
			return -1;
		}
		judge(w, c, alen);
		if (eof)
			c->close_after = true;
		return 1;
	}
}

static void on_event(struct worker *w, struct hconn *c, uint32_t events)
{
	int rc = 0;

	if (c->fd < 0)
		return;
	if (events & EPOLLOUT)
		rc = send_rest(w, c);
	if (rc == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		rc = read_answer(w, c);
		if (rc == 1 && c->close_after) {
			/* The answer counted; the connection ends with it. */
			w->closed++;
			reconnect(w, c);
			return;
		}
		if (rc == 1)
			rc = now_ns() < t_end ? start_request(w, c) : 0;
	}
	if (rc < 0) {
		w->errors++;
		w->closed++;
		reconnect(w, c);
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];

	for (long i = 0; i < w->nconns; i++) {
		struct hconn *c = &w->conns[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 || start_request(w, c) < 0) {
			w->errors++;
			w->dead++;
			close(c->fd);
			c->fd = -1;
		}
	}
	for (;;) {
		uint64_t t = now_ns();
		int n, timeout_ms;

		if (t >= t_end)
			break;
		timeout_ms = (int)((t_end - t) / 1000000u) + 1;
		n = epoll_wait(w->ep, evs, 256, timeout_ms);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			on_event(w, evs[i].data.ptr, evs[i].events);
	}
	return NULL;
}

/* --- set-up ---------------------------------------------------------------- */

static int parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (v == NULL)
			return -EINVAL;
		i++;
		if (strcmp(a, "--connect") == 0)
			opts.connect = v;
		else if (strcmp(a, "--unix") == 0)
			opts.unix_path = v;
		else if (strcmp(a, "--secret") == 0)
			opts.secret = v;
		else if (strcmp(a, "--target") == 0)
			opts.target = v;
		else if (strcmp(a, "--token-file") == 0)
			opts.token_file = v;
		else if (strcmp(a, "--host") == 0)
			opts.host = v;
		else if (strcmp(a, "--expect") == 0)
			opts.expect = v;
		else if (strcmp(a, "--connections") == 0)
			rc = parse_long(v, 1, MAX_CONNECTIONS, &opts.connections);
		else if (strcmp(a, "--threads") == 0)
			rc = parse_long(v, 1, MAX_THREADS, &opts.threads);
		else if (strcmp(a, "--duration") == 0)
			rc = parse_seconds(v, &opts.duration);
		else if (strcmp(a, "--warmup") == 0)
			rc = parse_seconds(v, &opts.warmup);
		else
			return -EINVAL;
		if (rc < 0)
			return rc;
	}
	if ((opts.connect == NULL) == (opts.unix_path == NULL) || opts.connections == 0 ||
	    !(opts.duration > 0.0) || (opts.secret == NULL) == (opts.target == NULL) ||
	    (opts.target != NULL && opts.target[0] != '/') ||
	    (opts.expect != NULL && opts.expect[0] == '\0'))
		return -EINVAL;
	return 0;
}

/* Resolves --connect (a numeric address: 127.0.0.1:PORT, [::1]:PORT) or
 * --unix into peer_addr. */
static int resolve_peer(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256];
	const char *colon, *h = opts.connect;
	size_t hl;
	int rc;

	if (opts.unix_path != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&peer_addr;

		if (strlen(opts.unix_path) >= sizeof(sun->sun_path)) {
			fprintf(stderr, "http_load: --unix %s: path too long\n", opts.unix_path);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, opts.unix_path, strlen(opts.unix_path) + 1);
		peer_len = sizeof(*sun);
		return 0;
	}
	colon = strrchr(h, ':');
	if (colon == NULL || colon == h || colon[1] == '\0')
		goto bad;
	hl = (size_t)(colon - h);
	if (h[0] == '[') {
		if (hl < 3 || h[hl - 1] != ']')
			goto bad;
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(peer_addr)) {
		fprintf(stderr, "http_load: --connect %s: %s\n", opts.connect,
			rc != 0 ? gai_strerror(rc) : "no address");
		if (res != NULL)
			freeaddrinfo(res);
		return -1;
	}
	memcpy(&peer_addr, res->ai_addr, res->ai_addrlen);
	peer_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	fprintf(stderr, "http_load: --connect %s: not HOST:PORT (a numeric address)\n",
		opts.connect);
	return -1;
}

/* Reads the token from opts.token_file into tok (at most cap - 1 bytes),
 * white space around it dropped. Returns its length or -1. */
static long read_token(char *tok, size_t cap)
{
	char buf[MAX_TOKEN + 2];
	size_t n = 0, s = 0;
	FILE *f = fopen(opts.token_file, "re");
	long ret = -1;

	if (f == NULL) {
		fprintf(stderr, "http_load: --token-file %s: %s\n", opts.token_file,
			strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || n > MAX_TOKEN) {
		fprintf(stderr, "http_load: --token-file %s: unreadable or over %d bytes\n",
			opts.token_file, MAX_TOKEN);
		goto out;
	}
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\r' ||
			 buf[n - 1] == '\n'))
		n--;
	while (s < n && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\r' || buf[s] == '\n'))
		s++;
	for (size_t i = s; i < n; i++) {
		if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e) {
			fprintf(stderr,
				"http_load: --token-file %s: the token holds a byte that "
				"cannot go in a header\n",
				opts.token_file);
			goto out;
		}
	}
	if (n - s == 0 || n - s >= cap) {
		fprintf(stderr, "http_load: --token-file %s: empty or too long\n", opts.token_file);
		goto out;
	}
	memcpy(tok, buf + s, n - s);
	tok[n - s] = '\0';
	ret = (long)(n - s);
out:
	explicit_bzero(buf, sizeof(buf));
	fclose(f);
	return ret;
}

/* Appends s to the request; -1 when it does not fit. */
static int req_put(const char *s, size_t n)
{
	if (n >= sizeof(request) - request_len)
		return -1;
	memcpy(request + request_len, s, n);
	request_len += n;
	return 0;
}

static int req_puts(const char *s)
{
	return req_put(s, strlen(s));
}

/* The query value: characters a query may hold as they are (RFC 3986's
 * pchar, "/" and "?"), less the form's own "&", "=" and "+"; anything else
 * percent-encoded. */
static int req_put_query_value(const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~!$'()*,;:@/?", *p) != NULL;
		char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		if (plain ? req_put((const char *)p, 1) < 0 : req_put(enc, 3) < 0)
			return -1;
	}
	return 0;
}

static int build_request(void)
{
	char tok[MAX_TOKEN + 1];
	char host[300];
	bool fits;
	int rc = -1;

	if (opts.host != NULL)
		snprintf(host, sizeof(host), "%s", opts.host);
	else if (opts.connect != NULL)
		snprintf(host, sizeof(host), "%s", opts.connect);
	else
		snprintf(host, sizeof(host), "localhost");
	if (opts.token_file != NULL && read_token(tok, sizeof(tok)) < 0)
		goto out;
	fits = req_puts("GET ") == 0;
	if (opts.target != NULL)
		fits = fits && req_puts(opts.target) == 0;
	else
		fits = fits && req_puts("/secretsmanager/get?secretId=") == 0 &&
		       req_put_query_value(opts.secret) == 0;
	fits = fits && req_puts(" HTTP/1.1\r\nHost: ") == 0 && req_puts(host) == 0 &&
	       req_puts("\r\n") == 0;
	if (opts.token_file != NULL)
		fits = fits && req_puts("X-Aws-Parameters-Secrets-Token: ") == 0 &&
		       req_puts(tok) == 0 && req_puts("\r\n") == 0;
	fits = fits && req_puts("\r\n") == 0;
	if (!fits) {
		fprintf(stderr, "http_load: the request would be over %d bytes\n", MAX_REQUEST);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(tok, sizeof(tok));
	return rc;
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
	struct worker *workers = NULL;
	struct hconn *conns = NULL;
	struct worker *all = NULL;
	uint64_t t0;
	long started = 0, nconns = 0;
	int ret = 1;

	opts.warmup = 1.0;
	opts.threads = 1;
	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (opts.threads > opts.connections)
		opts.threads = opts.connections;
	if (resolve_peer() < 0 || build_request() < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	workers = calloc((size_t)opts.threads, sizeof(*workers));
	conns = calloc((size_t)opts.connections, sizeof(*conns));
	all = calloc(1, sizeof(*all));
	if (workers == NULL || conns == NULL || all == NULL)
		goto out;
	for (long t = 0; t < opts.threads; t++)
		workers[t].ep = -1;
	/* Every connection is open before the clock starts. */
	for (; nconns < opts.connections; nconns++) {
		conns[nconns].fd = open_conn();
		if (conns[nconns].fd < 0) {
			fprintf(stderr, "http_load: connect %s (connection %ld): %s\n",
				opts.connect != NULL ? opts.connect : opts.unix_path, nconns + 1,
				strerror(-conns[nconns].fd));
			goto out;
		}
	}
	/* Connections are dealt out in contiguous runs, one per thread. */
	for (long t = 0, first = 0; t < opts.threads; t++) {
		long share = opts.connections / opts.threads +
			     (t < opts.connections % opts.threads ? 1 : 0);

		workers[t].conns = conns + first;
		workers[t].nconns = share;
		workers[t].ep = epoll_create1(EPOLL_CLOEXEC);
		if (workers[t].ep < 0)
			goto out;
		first += share;
	}
	t0 = now_ns();
	t_measure = t0 + (uint64_t)(opts.warmup * 1e9);
	t_end = t_measure + (uint64_t)(opts.duration * 1e9);
	for (; started < opts.threads; started++) {
		if (pthread_create(&workers[started].thread, NULL, worker_run, &workers[started]) !=
		    0) {
			fprintf(stderr, "http_load: cannot start a thread\n");
			goto out;
		}
	}
	ret = 0;
out:
	for (long t = 0; t < started; t++) {
		struct worker *w = &workers[t];

		pthread_join(w->thread, NULL);
		hist_merge(&all->hist, &w->hist);
		all->requests += w->requests;
		all->errors += w->errors;
		all->closed += w->closed;
		all->dead += w->dead;
		all->malformed += w->malformed;
		all->bad_expect += w->bad_expect;
		for (int s = 0; s < NSTATUS; s++)
			all->status[s] += w->status[s];
	}
	if (ret == 0) {
		printf("connections=%ld requests=%llu throughput=%.0f/s p50=%.1fus p99=%.1fus "
		       "p999=%.1fus errors=%llu closed=%llu\n",
		       opts.connections, (unsigned long long)all->requests,
		       (double)all->requests / opts.duration,
		       hist_quantile(&all->hist, 0.50) / 1000.0,
		       hist_quantile(&all->hist, 0.99) / 1000.0,
		       hist_quantile(&all->hist, 0.999) / 1000.0, (unsigned long long)all->errors,
		       (unsigned long long)all->closed);
		/* Say what the errors were, on stderr, so that the line above
		 * stays one line a script can read. */
		for (int s = 0; s < NSTATUS; s++) {
			if (s != 200 && all->status[s] > 0)
				fprintf(stderr, "http_load: %llu answers with status %d\n",
					(unsigned long long)all->status[s], s);
		}
		if (all->bad_expect > 0)
			fprintf(stderr, "http_load: %llu answers of status 200 without \"%s\"\n",
				(unsigned long long)all->bad_expect, opts.expect);
		if (all->malformed > 0)
			fprintf(stderr, "http_load: %llu answers were not HTTP/1.x as expected\n",
				(unsigned long long)all->malformed);
		if (all->dead > 0)
			fprintf(stderr, "http_load: %llu connections could not be opened again\n",
				(unsigned long long)all->dead);
	}
	for (long i = 0; i < nconns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].in);
	}
	for (long t = 0; workers != NULL && t < opts.threads; t++) {
		if (workers[t].ep >= 0)
			close(workers[t].ep);
	}
	free(workers);
	free(conns);
	free(all);
	explicit_bzero(request, sizeof(request));
	return ret;
}

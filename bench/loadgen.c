/* A closed-loop load generator for keyturn's socket protocol: N connections,
 * each with one get request outstanding at a time, sent again as soon as its
 * answer is in. Prints throughput and latency percentiles for one run. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench/bench.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"

#define MAX_CONNECTIONS 10000
#define MAX_THREADS 64
#define READ_CHUNK 65536
#define CONNECT_TIMEOUT_S 5

struct lg_opts {
	const char *socket_path;
	const char *secret;
	const char *request;
	long connections;
	long threads;
	double duration;
	double warmup;
	bool full_validate;
};

struct lconn {
	int fd;
	char *in;
	size_t in_len;
	size_t in_cap;
	size_t out_off;  /* request bytes already written */
	uint64_t t_sent; /* ns, when the current request was started */
	bool want_out;
};

struct worker {
	pthread_t thread;
	struct lconn *conns;
	long nconns;
	int ep;
	struct hist hist;
	uint64_t requests; /* answers completed inside the measured window */
	uint64_t errors;   /* bad answers and lost connections, whole run */
};

/* Read-only once the workers start. */
static struct lg_opts opts;
static struct kt_buf req_frame = KT_BUF_INIT(KT_PROTO_MAX_FRAME + KT_PROTO_HDR);
static uint64_t t_measure; /* end of the warm-up */
static uint64_t t_end;

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen --socket PATH --connections N --duration S\n"
		   "               (--secret NAME | --request JSON) [--warmup S] [--threads T]\n"
		   "               [--full-validate]\n"
		   "  Prints: connections=N requests=R throughput=X/s p50=Yus p99=Zus errors=E\n"
		   "  errors counts answers without a top-level \"ok\":true and lost\n"
		   "  connections over the whole run, warm-up included.\n");
}

/* --- answers --------------------------------------------------------------- */

static size_t skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* p[i] is '"'; returns the index just past the closing quote, or n. */
static size_t skip_string(const char *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return n;
}

/* Skips one value of any kind; returns the index past it, or n. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
	int depth = 0;

	if (i < n && p[i] == '"')
		return skip_string(p, n, i);
	if (i < n && p[i] != '{' && p[i] != '[') {
		while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' &&
		       p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			i++;
		return i;
	}
	while (i < n) {
		if (p[i] == '"') {
			i = skip_string(p, n, i);
			continue;
		}
		if (p[i] == '{' || p[i] == '[')
			depth++;
		else if ((p[i] == '}' || p[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return n;
}

/* True when the answer is an object whose top-level "ok" is true. A quick
 * scan, not a full JSON check: it must cost the client far less than the
 * server's work, or the client would be what is measured. */
static bool answer_ok_scan(const char *p, size_t n)
{
	size_t i = skip_ws(p, n, 0);

	if (i >= n || p[i] != '{')
		return false;
	i++;
	for (;;) {
		size_t k0, k1;

		i = skip_ws(p, n, i);
		if (i >= n || p[i] != '"')
			return false;
		k0 = i + 1;
		i = skip_string(p, n, i);
		if (i >= n)
			return false;
		k1 = i - 1;
		i = skip_ws(p, n, i);
		if (i >= n || p[i] != ':')
			return false;
		i = skip_ws(p, n, i + 1);
		if (k1 - k0 == 2 && memcmp(p + k0, "ok", 2) == 0) {
			if (n - i < 4 || memcmp(p + i, "true", 4) != 0)
				return false;
			i = skip_ws(p, n, i + 4);
			return i < n && (p[i] == ',' || p[i] == '}');
		}
		i = skip_ws(p, n, skip_value(p, n, i));
		if (i >= n || p[i] != ',')
			return false;
		i++;
	}
}

static bool answer_ok_full(const char *p, size_t n)
{
	struct json_object *o = kt_json_parse(p, n);
	bool ok = false;

	if (json_object_is_type(o, json_type_object))
		ok = kt_json_bool(o, "ok", &ok) && ok;
	kt_json_put_wiped(o);
	return ok;
}

/* --- connections ----------------------------------------------------------- */

/* A blocking connect, bounded by CONNECT_TIMEOUT_S, then non-blocking. */
static int open_conn(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int arm(struct worker *w, struct lconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == out)
		return 0;
	c->want_out = out;
	return epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of the request. Returns 0 or -1 when the connection failed. */
static int send_rest(struct worker *w, struct lconn *c)
{
	while (c->out_off < req_frame.len) {
		ssize_t n = send(c->fd, req_frame.data + c->out_off, req_frame.len - c->out_off,
				 MSG_NOSIGNAL);

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

static int start_request(struct worker *w, struct lconn *c)
{
	c->out_off = 0;
	c->t_sent = now_ns();
	return send_rest(w, c);
}

/* Replaces a failed connection with a new one and starts a request on it.
 * Returns -1 when that is impossible; the connection then stays closed. */
static int reconnect(struct worker *w, struct lconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->in_len = 0;
	c->want_out = false;
	if (now_ns() >= t_end)
		return -1;
	c->fd = open_conn(opts.socket_path);
	if (c->fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return -1;
	return start_request(w, c);
}

/* Reads what is there. Returns 1 when a whole answer came in (and was
 * judged), 0 when more is needed, -1 when the connection failed. */
static int read_answer(struct worker *w, struct lconn *c)
{
	for (;;) {
		const char *payload;
		size_t plen, flen, room;
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
		rc = kt_proto_unframe(c->in, c->in_len, &payload, &plen, &flen);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if ((size_t)n < room)
				return 0;
			continue;
		}
		/* One request is outstanding, so anything after its answer is a
		 * protocol violation. */
		if (flen != c->in_len)
			return -1;
		{
			uint64_t t = now_ns();
			bool good = opts.full_validate ? answer_ok_full(payload, plen)
						       : answer_ok_scan(payload, plen);

			if (!good)
				w->errors++;
			else if (t >= t_measure && t < t_end) {
				hist_add(&w->hist, t - c->t_sent);
				w->requests++;
			}
		}
		c->in_len = 0;
		return 1;
	}
}

static void on_event(struct worker *w, struct lconn *c, uint32_t events)
{
	int rc = 0;

	if (events & EPOLLOUT)
		rc = send_rest(w, c);
	if (rc == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		rc = read_answer(w, c);
		if (rc == 1)
			rc = now_ns() < t_end ? start_request(w, c) : 0;
	}
	if (rc < 0) {
		w->errors++;
		if (reconnect(w, c) < 0 && c->fd >= 0) {
			epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
		}
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];

	for (long i = 0; i < w->nconns; i++) {
		struct lconn *c = &w->conns[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 || start_request(w, c) < 0) {
			w->errors++;
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

/* --- command line ---------------------------------------------------------- */

static int parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--full-validate") == 0) {
			opts.full_validate = true;
			continue;
		}
		if (v == NULL)
			return -EINVAL;
		i++;
		if (strcmp(a, "--socket") == 0)
			opts.socket_path = v;
		else if (strcmp(a, "--secret") == 0)
			opts.secret = v;
		else if (strcmp(a, "--request") == 0)
			opts.request = v;
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
	if (opts.socket_path == NULL || opts.connections == 0 || !(opts.duration > 0.0) ||
	    (opts.secret == NULL) == (opts.request == NULL))
		return -EINVAL;
	return 0;
}

static int build_request(void)
{
	struct json_object *o;
	int rc = -ENOMEM;

	if (opts.request != NULL)
		return kt_proto_frame(&req_frame, opts.request, strlen(opts.request));
	o = json_object_new_object();
	if (o == NULL)
		return -ENOMEM;
	if (json_object_object_add(o, "v", json_object_new_int(KT_PROTO_VERSION)) == 0 &&
	    json_object_object_add(o, "op", json_object_new_string("get")) == 0 &&
	    json_object_object_add(o, "secret", json_object_new_string(opts.secret)) == 0)
		rc = kt_proto_send_json(&req_frame, o);
	json_object_put(o);
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
	struct lconn *conns = NULL;
	struct hist *all = NULL;
	uint64_t requests = 0, errors = 0, t0;
	long started = 0, nconns = 0;
	double window;
	int ret = 1;

	opts.warmup = 1.0;
	opts.threads = 1;
	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (opts.threads > opts.connections)
		opts.threads = opts.connections;
	if (build_request() < 0) {
		fprintf(stderr, "loadgen: the request does not fit in one frame\n");
		goto out;
	}
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
		conns[nconns].fd = open_conn(opts.socket_path);
		if (conns[nconns].fd < 0) {
			fprintf(stderr, "loadgen: connect %s (connection %ld): %s\n",
				opts.socket_path, nconns + 1, strerror(-conns[nconns].fd));
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
			fprintf(stderr, "loadgen: cannot start a thread\n");
			goto out;
		}
	}
	ret = 0;
out:
	for (long t = 0; t < started; t++) {
		pthread_join(workers[t].thread, NULL);
		hist_merge(all, &workers[t].hist);
		requests += workers[t].requests;
		errors += workers[t].errors;
	}
	if (ret == 0) {
		window = opts.duration;
		printf("connections=%ld requests=%llu throughput=%.0f/s p50=%.1fus p99=%.1fus "
		       "errors=%llu\n",
		       opts.connections, (unsigned long long)requests, (double)requests / window,
		       hist_quantile(all, 0.50) / 1000.0, hist_quantile(all, 0.99) / 1000.0,
		       (unsigned long long)errors);
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
	kt_buf_free(&req_frame);
	return ret;
}

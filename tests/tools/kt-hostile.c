/* kt-hostile: a hostile local client of keyturnd and a latency probe, for the
 * system tests and bench/hostile. It speaks the wire protocol of
 * common/proto.h (4-byte big-endian length, then JSON) without libkeyturn.
 *
 *   kt-hostile [OPTIONS] idle N         N connections that send nothing
 *   kt-hostile [OPTIONS] slowloris N    N connections, each a frame header for a
 *                                       small request, then one byte every 2 s
 *   kt-hostile [OPTIONS] bigframe N     N connections, each announcing a 1 MiB
 *                                       frame and sending 1 MiB - 1 bytes of it
 *   kt-hostile [OPTIONS] junk N         N connections sending frames of junk
 *                                       in a loop: six of 60 KiB that is not
 *                                       JSON, one of 1 MiB, one announced as
 *                                       1 MiB + 1 (its first 4 KiB sent)
 *   kt-hostile [OPTIONS] probe COUNT SECRET
 *                                       COUNT gets of SECRET, each on a fresh
 *                                       connection; one line per get, then
 *                                       "answered=A of COUNT p50_ms=.. ..."
 *   kt-hostile [OPTIONS] hangup JSON... each request on its own connection,
 *                                       which is closed at once (or once the
 *                                       --hold-file exists) without reading
 *
 * Options: --socket PATH (default $KEYTURN_SOCKET, else
 * /run/keyturn/keyturnd.sock), --seconds S (the whole run, default 60),
 * --timeout-ms MS (per probe request, default 10000), --reconnect-ms MS (first
 * pause before an attack connection is opened again, default 50, doubling up
 * to 2 s while connections are closed within a second), --interval-ms MS
 * (slowloris: between bytes, default 2000; probe: between gets, default 0),
 * --status FILE (attack counters, rewritten twice a second), --hold-file
 * FILE (hangup).
 *
 * Attack modes run until --seconds pass or SIGTERM/SIGINT and print one
 * summary line; they exit 0. probe exits 0 when every get was answered
 * "ok":true, hangup when every request was sent. */

#define _GNU_SOURCE /* memmem */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 100000
#define MAX_PROBES 100000
#define BIG_FRAME (1024u * 1024u)
#define JUNK_SMALL (60u * 1024u)
#define BACKOFF_MAX_MS 2000
#define MAX_ANSWER (BIG_FRAME + 4u)
#define EVENTS_PER_TURN 256

enum mode { M_IDLE, M_SLOWLORIS, M_BIGFRAME, M_JUNK, M_PROBE, M_HANGUP };

static const char *const mode_names[] = {
	"idle", "slowloris", "bigframe", "junk", "probe", "hangup"
};

struct opts {
	const char *socket;
	const char *status;
	const char *hold_file;
	long seconds;
	long timeout_ms;
	long reconnect_ms;
	long interval_ms;
};

/* One attack connection. A frame is sent as a stream of `total` bytes: the
 * 4-byte header announcing `announced`, then payload bytes. */
struct slot {
	int fd;
	bool tried;
	int64_t opened_at;
	int64_t next_at; /* when to reconnect (fd < 0) or send the next byte */
	long backoff_ms;
	uint32_t announced;
	size_t total;
	size_t sent;
	unsigned kind; /* junk: which of the two frames comes next */
	bool want_out; /* EPOLLOUT registered */
};

struct counters {
	unsigned long attempts, opened, refused, closed_by_peer, fd_limited;
	unsigned long frames, bytes_sent, bytes_read;
	long open_now, max_open;
};

static volatile sig_atomic_t stop_flag;
static struct opts o = { NULL, NULL, NULL, 60, 10000, 50, -1 };
static struct counters ct;
static struct sockaddr_un sun;
static socklen_t sun_len;
static char fill[65536];
/* Junk that json-c must scan to its end before it fails: a string never closed. */
static const char junk_head[] = "{\"v\":1,\"op\":\"get\",\"secret\":\"";
static const char slow_req[] = "{\"v\":1,\"op\":\"get\",\"secret\":\"slowloris/"
			       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: kt-hostile [--socket PATH] [--seconds S] [--timeout-ms MS]\n"
			"         [--reconnect-ms MS] [--interval-ms MS] [--status FILE]\n"
			"         [--hold-file FILE]\n"
			"         idle N | slowloris N | bigframe N | junk N |\n"
			"         probe COUNT SECRET | hangup JSON...\n");
	exit(2);
}

/* As many descriptors as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A non-blocking connection to the daemon: the descriptor, or -1 with errno. */
static int open_conn(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sun_len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* --- attack modes --------------------------------------------------------- */

static void write_status(enum mode m, long n, bool all_tried, int64_t elapsed)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (o.status == NULL)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", o.status) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f,
		"mode=%s n=%ld elapsed_ms=%lld all_tried=%d attempts=%lu opened=%lu refused=%lu "
		"closed_by_peer=%lu open_now=%ld max_open=%ld frames=%lu bytes_sent=%lu "
		"bytes_read=%lu\n",
		mode_names[m], n, (long long)elapsed, all_tried ? 1 : 0, ct.attempts, ct.opened,
		ct.refused, ct.closed_by_peer, ct.open_now, ct.max_open, ct.frames, ct.bytes_sent,
		ct.bytes_read);
	if (fclose(f) == 0)
		rename(tmp, o.status);
}

/* Sets up the next frame of a slot. */
static void next_frame(enum mode m, struct slot *s)
{
	s->sent = 0;
	switch (m) {
	case M_SLOWLORIS:
		s->announced = (uint32_t)strlen(slow_req);
		s->total = 4 + s->announced;
		break;
	case M_BIGFRAME:
		s->announced = BIG_FRAME;
		s->total = 4 + BIG_FRAME - 1;
		break;
	case M_JUNK:
		/* Mostly frames a strict daemon still reads and must answer;
		 * then one of 1 MiB, which it should refuse at its header, and
		 * one announced past 1 MiB, which every daemon refuses (and
		 * complains of): only its start is sent. */
		switch (s->kind++ % 8) {
		case 6:
			s->announced = BIG_FRAME;
			s->total = 4 + BIG_FRAME;
			break;
		case 7:
			s->announced = BIG_FRAME + 1;
			s->total = 4 + 4096;
			break;
		default:
			s->announced = JUNK_SMALL;
			s->total = 4 + JUNK_SMALL;
			break;
		}
		break;
	default:
		s->announced = 0;
		s->total = 0;
		break;
	}
}

/* Byte i of the slot's current frame. */
static const void *frame_bytes(enum mode m, const struct slot *s, size_t *len, unsigned char hdr[4])
{
	size_t off = s->sent;

	if (off < 4) {
		put_be32(hdr, s->announced);
		*len = 4 - off;
		return hdr + off;
	}
	off -= 4;
	if (m == M_SLOWLORIS) {
		*len = strlen(slow_req) - off;
		return slow_req + off;
	}
	if (m == M_JUNK && off < sizeof(junk_head) - 1) {
		*len = sizeof(junk_head) - 1 - off;
		return junk_head + off;
	}
	*len = s->total - s->sent;
	if (*len > sizeof(fill))
		*len = sizeof(fill);
	return fill;
}

static void set_out(int ep, struct slot *s, bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = s };

	if (s->want_out == want)
		return;
	s->want_out = want;
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void slot_close(struct slot *s, int64_t t, bool by_peer)
{
	if (s->fd < 0)
		return;
	close(s->fd);
	s->fd = -1;
	ct.open_now--;
	if (by_peer)
		ct.closed_by_peer++;
	/* Connections the daemon ends within a second were refused in all but
	 * name: back off as a patient attacker would, so the load stays the
	 * held connections' and not a connect() storm's. */
	if (t - s->opened_at < 1000)
		s->backoff_ms =
			s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	else
		s->backoff_ms = o.reconnect_ms;
	s->next_at = t + s->backoff_ms;
}

static void slot_open(enum mode m, int ep, struct slot *s, int64_t t)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	int fd;

	s->tried = true;
	ct.attempts++;
	fd = open_conn();
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			ct.fd_limited++;
		else
			ct.refused++;
		s->backoff_ms =
			s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
		s->next_at = t + s->backoff_ms;
		return;
	}
	s->fd = fd;
	s->opened_at = t;
	s->want_out = false;
	ct.opened++;
	ct.open_now++;
	if (ct.open_now > ct.max_open)
		ct.max_open = ct.open_now;
	next_frame(m, s);
	if (m == M_BIGFRAME || m == M_JUNK) {
		ev.events |= EPOLLOUT;
		s->want_out = true;
	}
	s->next_at = t; /* slowloris: the header goes at once */
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Sends what the slot may send now. */
static void slot_send(enum mode m, int ep, struct slot *s, int64_t t)
{
	unsigned char hdr[4];
	size_t budget = 256 * 1024; /* per call, so that no slot hogs a turn */

	while (s->fd >= 0 && !stop_flag && budget > 0) {
		size_t len;
		const void *p;
		ssize_t n;

		if (m == M_BIGFRAME && s->sent == s->total) {
			set_out(ep, s, false); /* all but the last byte: hold */
			return;
		}
		if (s->sent == s->total) {
			ct.frames++;
			next_frame(m, s);
			if (m == M_SLOWLORIS)
				s->next_at = t + o.interval_ms;
		}
		if (m == M_SLOWLORIS && s->sent >= 4) {
			if (t < s->next_at)
				return;
			len = 1;
			p = slow_req + (s->sent - 4);
		} else {
			p = frame_bytes(m, s, &len, hdr);
		}
		n = send(s->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out(ep, s, true);
				return;
			}
			if (errno != EINTR)
				slot_close(s, t, true);
			return;
		}
		s->sent += (size_t)n;
		ct.bytes_sent += (unsigned long)n;
		budget = (size_t)n < budget ? budget - (size_t)n : 0;
		if (m == M_SLOWLORIS && s->sent > 4) {
			s->next_at = t + o.interval_ms;
			return;
		}
	}
}

/* Reads and drops whatever the daemon says; notices its hang-up. */
static void slot_read(struct slot *s, int64_t t)
{
	char buf[65536];

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			ct.bytes_read += (unsigned long)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			slot_close(s, t, true);
		return;
	}
}

static int run_attack(enum mode m, long n)
{
	struct epoll_event evs[EVENTS_PER_TURN];
	struct slot *slots = calloc((size_t)n, sizeof(*slots));
	int64_t start = now_ms(), end = start + o.seconds * 1000, last_status = 0;
	bool all_tried = false;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (slots == NULL || ep < 0) {
		perror("kt-hostile");
		free(slots);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		slots[i].fd = -1;
		slots[i].backoff_ms = o.reconnect_ms;
		slots[i].next_at = start;
	}
	memset(fill, m == M_JUNK ? '#' : 'A', sizeof(fill));

	while (!stop_flag) {
		int64_t t = now_ms(), wake = t + 100;
		int ne;

		if (t >= end)
			break;
		/* Due reconnects and slowloris bytes. */
		all_tried = true;
		for (long i = 0; i < n && !stop_flag; i++) {
			struct slot *s = &slots[i];

			if (s->fd < 0 && s->next_at <= t)
				slot_open(m, ep, s, t);
			else if (s->fd >= 0 && m == M_SLOWLORIS && s->next_at <= t)
				slot_send(m, ep, s, t);
			if (!s->tried)
				all_tried = false;
			if ((s->fd < 0 || m == M_SLOWLORIS) && s->next_at < wake)
				wake = s->next_at;
		}
		if (t - last_status >= 500) {
			write_status(m, n, all_tried, t - start);
			last_status = t;
		}
		ne = epoll_wait(ep, evs, EVENTS_PER_TURN, wake > t ? (int)(wake - t) : 0);
		t = now_ms();
		for (int i = 0; i < ne; i++) {
			struct slot *s = evs[i].data.ptr;

			if (s->fd < 0)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				slot_read(s, t);
			if (s->fd >= 0 && (evs[i].events & EPOLLOUT))
				slot_send(m, ep, s, t);
		}
	}
	write_status(m, n, all_tried, now_ms() - start);
	printf("mode=%s n=%ld seconds=%.1f attempts=%lu opened=%lu refused=%lu "
	       "closed_by_peer=%lu fd_limited=%lu open_at_end=%ld max_open=%ld frames=%lu "
	       "bytes_sent=%lu bytes_read=%lu\n",
	       mode_names[m], n, (double)(now_ms() - start) / 1000.0, ct.attempts, ct.opened,
	       ct.refused, ct.closed_by_peer, ct.fd_limited, ct.open_now, ct.max_open, ct.frames,
	       ct.bytes_sent, ct.bytes_read);
	for (long i = 0; i < n; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	close(ep);
	free(slots);
	return 0;
}

/* --- probe and hangup ---------------------------------------------------- */

/* Waits for fd to be ready for events until the deadline (ms, monotonic).
 * Returns 1 when ready, 0 on timeout or stop. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		double left = deadline - now_ms_f();
		int rc;

		if (left <= 0 || stop_flag)
			return 0;
		rc = poll(&p, 1, left > 100 ? 100 : (int)left + 1);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return 0;
	}
}

static int send_all(int fd, const unsigned char *p, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLOUT, deadline))
			continue;
		return -1;
	}
	return 0;
}

/* A frame holding json, in a buffer the caller frees. */
static unsigned char *make_frame(const char *json, size_t *len)
{
	size_t jl = strlen(json);
	unsigned char *f = malloc(jl + 4);

	if (f == NULL)
		return NULL;
	put_be32(f, (uint32_t)jl);
	memcpy(f + 4, json, jl);
	*len = jl + 4;
	return f;
}

/* Reads one answer frame. Returns its length, -1 on EOF or error, -2 on
 * timeout. */
static long read_answer(int fd, unsigned char *buf, double deadline)
{
	size_t have = 0, want = 4;

	while (have < want) {
		ssize_t n = recv(fd, buf + have, want - have, MSG_DONTWAIT);

		if (n > 0) {
			have += (size_t)n;
			if (have == 4 && want == 4) {
				uint32_t l = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
					     (uint32_t)buf[2] << 8 | buf[3];

				if (l == 0 || l > BIG_FRAME)
					return -1;
				want = 4 + l;
			}
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (!wait_fd(fd, POLLIN, deadline))
			return -2;
	}
	return (long)(want - 4);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return -1;
	i = (size_t)(p * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	return sorted[(i > n ? n : i) - 1];
}

static int run_probe(long count, const char *secret)
{
	char json[4096];
	unsigned char *frame = NULL, *ans = malloc(MAX_ANSWER);
	double *lat = calloc((size_t)count, sizeof(*lat));
	double end = now_ms_f() + (double)o.seconds * 1000.0;
	size_t flen, nans = 0;
	long refused = 0, timeouts = 0, errors = 0, closed = 0;
	int rc = 1;

	if (snprintf(json, sizeof(json), "{\"v\":1,\"op\":\"get\",\"secret\":\"%s\"}", secret) >=
	    (int)sizeof(json)) {
		fprintf(stderr, "kt-hostile: secret name too long\n");
		goto out;
	}
	frame = make_frame(json, &flen);
	if (frame == NULL || ans == NULL || lat == NULL)
		goto out;
	for (long i = 0; i < count; i++) {
		double t0 = now_ms_f(), deadline = t0 + (double)o.timeout_ms, ms;
		const char *what;
		long n = -1;
		int fd;

		if (deadline > end)
			deadline = end;
		if (t0 >= end || stop_flag) {
			printf("probe %ld not tried (out of time)\n", i + 1);
			timeouts++;
			continue;
		}
		fd = open_conn();
		if (fd < 0) {
			refused++;
			printf("probe %ld refused: %s\n", i + 1, strerror(errno));
			continue;
		}
		if (send_all(fd, frame, flen, deadline) == 0)
			n = read_answer(fd, ans, deadline);
		close(fd);
		ms = now_ms_f() - t0;
		if (n == -2) {
			timeouts++;
			what = "timeout";
		} else if (n < 0) {
			closed++;
			what = "closed";
		} else if (memmem(ans + 4, (size_t)n, "\"ok\":true", 9) != NULL ||
			   memmem(ans + 4, (size_t)n, "\"ok\": true", 10) != NULL) {
			lat[nans++] = ms;
			what = "answered";
		} else {
			errors++;
			what = "error";
		}
		if (o.interval_ms > 0 && i + 1 < count)
			poll(NULL, 0, (int)o.interval_ms);
		printf("probe %ld ms=%.3f %s", i + 1, ms, what);
		if (n > 0 && strcmp(what, "error") == 0)
			printf(": %.*s", (int)(n > 200 ? 200 : n), (const char *)ans + 4);
		printf("\n");
	}
	qsort(lat, nans, sizeof(*lat), cmp_double);
	printf("answered=%zu of %ld p50_ms=%.1f p99_ms=%.1f max_ms=%.1f refused=%ld closed=%ld "
	       "timeouts=%ld errors=%ld\n",
	       nans, count, percentile(lat, nans, 0.50), percentile(lat, nans, 0.99),
	       nans > 0 ? lat[nans - 1] : -1.0, refused, closed, timeouts, errors);
	rc = (long)nans == count ? 0 : 1;
out:
	free(frame);
	free(ans);
	free(lat);
	return rc;
}

static int run_hangup(int nreq, char **reqs)
{
	int *fds = calloc((size_t)nreq, sizeof(*fds));
	unsigned char *ans = malloc(MAX_ANSWER);
	double end = now_ms_f() + (double)o.seconds * 1000.0;
	int sent = 0, answered = 0, rc = 1;

	if (fds == NULL || ans == NULL)
		goto out;
	for (int i = 0; i < nreq; i++) {
		size_t flen;
		unsigned char *f = make_frame(reqs[i], &flen);

		fds[i] = open_conn();
		if (f != NULL && fds[i] >= 0 && send_all(fds[i], f, flen, end) == 0)
			sent++;
		else
			fprintf(stderr, "kt-hostile: request %d not sent\n", i + 1);
		free(f);
	}
	/* Hold the connections until told, so that the test knows the requests
	 * reached the daemon (and AWS) before the hang-up. */
	if (o.hold_file != NULL)
		while (access(o.hold_file, F_OK) != 0 && now_ms_f() < end && !stop_flag)
			poll(NULL, 0, 20);
	for (int i = 0; i < nreq; i++) {
		if (fds[i] < 0)
			continue;
		/* An answer already there means the request did not wait. */
		long n = read_answer(fds[i], ans, now_ms_f());

		if (n > 0) {
			answered++;
			fprintf(stderr,
				"kt-hostile: request %d answered before the hang-up: %.*s\n", i + 1,
				(int)(n > 300 ? 300 : n), (const char *)ans + 4);
		}
		close(fds[i]);
	}
	printf("hangup sent=%d of %d answered_before_hangup=%d\n", sent, nreq, answered);
	rc = sent == nreq ? 0 : 1;
out:
	free(fds);
	free(ans);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	enum mode m = M_IDLE;
	long n = 0, count = 0;
	int i = 1;

	o.socket = getenv("KEYTURN_SOCKET");
	if (o.socket == NULL || *o.socket == '\0')
		o.socket = "/run/keyturn/keyturnd.sock";
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		long *num = NULL, min = 1, max = 86400000;

		if (i + 1 >= argc)
			usage();
		if (strcmp(a, "--socket") == 0)
			o.socket = argv[++i];
		else if (strcmp(a, "--status") == 0)
			o.status = argv[++i];
		else if (strcmp(a, "--hold-file") == 0)
			o.hold_file = argv[++i];
		else if (strcmp(a, "--seconds") == 0)
			num = &o.seconds, max = 86400;
		else if (strcmp(a, "--timeout-ms") == 0)
			num = &o.timeout_ms;
		else if (strcmp(a, "--reconnect-ms") == 0)
			num = &o.reconnect_ms, max = BACKOFF_MAX_MS;
		else if (strcmp(a, "--interval-ms") == 0)
			num = &o.interval_ms;
		else
			usage();
		if (num != NULL && parse_long(argv[++i], min, max, num) < 0)
			usage();
	}
	if (o.interval_ms < 0)
		o.interval_ms = 0;
	if (i >= argc)
		usage();
	for (m = M_IDLE; m <= M_HANGUP; m++)
		if (strcmp(argv[i], mode_names[m]) == 0)
			break;
	if (m == M_SLOWLORIS && o.interval_ms == 0)
		o.interval_ms = 2000;
	if (m > M_HANGUP)
		usage();
	i++;
	if (m == M_PROBE) {
		if (argc - i != 2 || parse_long(argv[i], 1, MAX_PROBES, &count) < 0)
			usage();
	} else if (m == M_HANGUP) {
		if (argc - i < 1 || argc - i > 10000)
			usage();
	} else if (argc - i != 1 || parse_long(argv[i], 1, MAX_CONNS, &n) < 0) {
		usage();
	}

	if (strlen(o.socket) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "kt-hostile: socket path too long\n");
		return 2;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, o.socket, strlen(o.socket) + 1);
	sun_len = (socklen_t)sizeof(sun);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (m == M_PROBE)
		return run_probe(count, argv[i + 1]);
	if (m == M_HANGUP)
		return run_hangup(argc - i, argv + i);
	return run_attack(m, n);
}

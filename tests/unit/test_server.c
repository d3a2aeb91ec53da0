/* Unit tests for keyturnd's socket server (server.c, server_conn.c): framing
 * with partial reads and writes, the frame limits, the per-uid quota and
 * share of unsent answers, the request deadline, parked requests and
 * stopping. The server runs in a real loop with the test's own handler (no
 * daemon, no AWS); the clients are plain Unix sockets of the test process,
 * read without blocking between loop turns. Every wait is a bounded number
 * of turns that re-checks its condition after each one. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "kt_tmp.h"
#include "loop.h"
#include "server.h"
#include "server_int.h" /* UID_OUT_SHARE, REQUESTS_PER_TURN */

/* A turn waits at most TURN_MS; a wait gives up after MAX_TURNS (20 s at
 * the most, far more than any condition here needs, the deadline's 2-3 s
 * included). QUIET_TURNS is how long "nothing more happens" is watched. */
#define TURN_MS 50
#define MAX_TURNS 400
#define QUIET_TURNS 10
#define QUIET_MS 20
#define MAX_ANSWERS 64
/* Connections made at once by quota_connect. */
#define MAX_FDS 8
/* The uid a test run as root borrows for what root is exempt from. */
#define NOBODY 65534
/* An answer larger than a Unix socket's buffer, so it is written in parts. */
#define BIG_ANSWER (900u * 1024u)
/* The share test: connections of one uid that ask for answers of
 * SHARE_ANSWER bytes, together far more than UID_OUT_SHARE and what their
 * sockets' buffers take. */
#define SHARE_ANSWER (256u * 1024u)
#define SHARE_REQUESTS 6
#define SHARE_HOGS 3
/* The drained test: answers of DRAIN_ANSWER bytes pass OUT_HIGH at the
 * third, before the connection's REQUESTS_PER_TURN are used up, with whole
 * requests left behind them. */
#define DRAIN_ANSWER (400u * 1024u)
#define DRAIN_REQUESTS 6

/* A frame the handler writes itself (KT_OP_WRITTEN), spaced as the
 * server's serialiser never would, so the client can tell it came as is. */
#define WRITTEN_PAYLOAD "{ \"ok\": true,  \"n\": 2, \"how\": \"written\" }"

/* What the handler saw. */
struct handled {
	int calls;
	int ns[MAX_ANSWERS]; /* "n" of each request, in the order handled */
	uid_t uid;           /* of the last request's peer */
	pid_t pid;
	uint64_t conn_id;
	struct json_object *parked; /* the reference kept by a parked request */
	uint64_t parked_id;
	int gone;
	uint64_t gone_id;
	bool reserve; /* what reserved() answers */
	int reserved_calls;
};

static struct handled h;
static char dir[64];
static char path[100];
static struct kt_loop *loop;
static struct kt_server *srv;
/* Whether this test has said where its quota connections come from. */
static bool told;
/* While set, every send() of the program reads this client first (see
 * send below). */
static struct cli *drain_peer;

/* One client socket and what it has read: whole frames parsed as answers
 * (raw payloads kept for small ones), the rest waiting in buf. */
struct cli {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof; /* end of file or reset: the server closed it */
	int nans;
	struct json_object *ans[MAX_ANSWERS];
	char *raw[MAX_ANSWERS];
};

static void turn(int ms)
{
	assert_true(kt_loop_turn(loop, ms) >= 0);
}

/* Runs turns until cond holds, evaluating it again after every turn. */
#define WAIT_FOR(cond)                                            \
	do {                                                      \
		for (int t_ = 0; t_ < MAX_TURNS && !(cond); t_++) \
			turn(TURN_MS);                            \
		assert_true(cond);                                \
	} while (0)

static struct json_object *make_answer(int n, size_t size, const char *how)
{
	struct json_object *a = json_object_new_object();

	assert_non_null(a);
	json_object_object_add(a, "ok", json_object_new_boolean(1));
	json_object_object_add(a, "n", json_object_new_int(n));
	json_object_object_add(a, "how", json_object_new_string(how));
	if (size > 0) {
		char *pad = malloc(size);

		assert_non_null(pad);
		memset(pad, 'x', size);
		json_object_object_add(a, "pad", json_object_new_string_len(pad, (int)size));
		free(pad);
	}
	return a;
}

/* Requests steer the handler: {"n": N, "do": "park"|"write", "size": S}
 * parks, writes its own frame, or answers {"ok","n","how","pad"} with a
 * pad of S bytes. */
static enum kt_op_result on_request(void *ctx, struct kt_request *r, struct json_object **answer)
{
	struct json_object *v;
	const char *what = kt_json_str(r->req, "do");
	size_t size = 0;
	int n = -1;

	(void)ctx;
	assert_non_null(r->peer);
	assert_non_null(r->out);
	assert_true(r->conn_id != 0);
	assert_true(h.calls < MAX_ANSWERS);
	if (json_object_object_get_ex(r->req, "n", &v))
		n = json_object_get_int(v);
	if (json_object_object_get_ex(r->req, "size", &v))
		size = (size_t)json_object_get_int64(v);
	h.ns[h.calls++] = n;
	h.uid = r->peer->uid;
	h.pid = r->peer->pid;
	h.conn_id = r->conn_id;
	if (what != NULL && strcmp(what, "park") == 0) {
		assert_null(h.parked);
		h.parked = json_object_get(r->req);
		h.parked_id = r->conn_id;
		return KT_OP_PARKED;
	}
	if (what != NULL && strcmp(what, "watch") == 0)
		assert_int_equal(kt_server_watch(srv, r->conn_id), 0);
	if (what != NULL && strcmp(what, "write") == 0) {
		assert_int_equal(kt_proto_frame(r->out, WRITTEN_PAYLOAD, strlen(WRITTEN_PAYLOAD)),
				 0);
		return KT_OP_WRITTEN;
	}
	*answer = make_answer(n, size, "answered");
	return KT_OP_ANSWER;
}

static void on_gone(void *ctx, uint64_t conn_id)
{
	(void)ctx;
	h.gone++;
	h.gone_id = conn_id;
}

static bool on_reserved(void *ctx, const struct kt_peer *peer)
{
	(void)ctx;
	(void)peer;
	h.reserved_calls++;
	return h.reserve;
}

static struct kt_server_limits default_limits(void)
{
	struct kt_server_limits lim = {
		.max_conns = 16,
		.reserve = 2,
		.per_uid = 8,
		.idle_timeout = 600,
		.request_timeout = 60,
	};

	return lim;
}

/* Binds the socket and starts the server with lim. */
static void serve(const struct kt_server_limits *lim)
{
	struct kt_server_handler handler = { on_request, on_gone, on_reserved, NULL };
	char err[256] = "";
	int fd = kt_server_listen(path, geteuid(), getegid(), err, sizeof(err));

	if (fd < 0)
		fail_msg("kt_server_listen: %s", err);
	assert_int_equal(kt_server_new(loop, fd, path, lim, &handler, &srv), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&h, 0, sizeof(h));
	told = false;
	drain_peer = NULL;
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-test-server-");
	if (mkdtemp(dir) == NULL)
		return -1;
	/* Reachable by the uid a root run borrows (quota_connect). */
	if (chmod(dir, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/keyturnd.sock", dir);
	return kt_loop_new(&loop) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kt_server_free(srv, true);
	srv = NULL;
	kt_loop_free(loop);
	loop = NULL;
	json_object_put(h.parked);
	h.parked = NULL;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void cli_adopt(struct cli *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Connects to path: 0, or -errno when connect() fails (fd then closed). */
static int cli_connect(struct cli *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	cli_adopt(c, fd);
	return 0;
}

static void cli_open(struct cli *c)
{
	assert_int_equal(cli_connect(c), 0);
}

static void cli_close(struct cli *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (int i = 0; i < c->nans; i++) {
		json_object_put(c->ans[i]);
		free(c->raw[i]);
	}
	c->nans = 0;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Reads what has arrived and parses the whole frames in it. */
static void cli_poll(struct cli *c)
{
	size_t off = 0;

	while (!c->eof) {
		ssize_t n;

		if (c->cap - c->len < 65536) {
			size_t cap = c->cap == 0 ? 65536 : 2 * c->cap;

			assert_true(cap <= 64u * 1024u * 1024u);
			c->buf = realloc(c->buf, cap);
			assert_non_null(c->buf);
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			c->eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		break;
	}
	while (c->len - off >= KT_PROTO_HDR) {
		const unsigned char *u = (const unsigned char *)c->buf + off;
		size_t flen = (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | u[3];
		struct json_object *a;

		if (c->len - off - KT_PROTO_HDR < flen)
			break;
		a = kt_json_parse(c->buf + off + KT_PROTO_HDR, flen);
		assert_non_null(a);
		assert_true(c->nans < MAX_ANSWERS);
		c->raw[c->nans] = flen < 4096 ? strndup(c->buf + off + KT_PROTO_HDR, flen) : NULL;
		c->ans[c->nans++] = a;
		off += KT_PROTO_HDR + flen;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

/* libc's send(), taken over in this program (the server's objects are
 * linked into it): while drain_peer is set, a write of the server's first
 * reads everything drain_peer has been sent. That is a peer reading as fast
 * as the server writes, without a second thread: one write of the server
 * can then empty an output buffer far larger than the socket's. */
ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (drain_peer != NULL && fd != drain_peer->fd)
		cli_poll(drain_peer);
	return sendto(fd, buf, len, flags, NULL, 0);
}

/* Conditions for WAIT_FOR; each reads first. */
static bool answers(struct cli *c, int n)
{
	cli_poll(c);
	return c->nans >= n;
}

static bool closed(struct cli *c)
{
	cli_poll(c);
	return c->eof;
}

/* Sends all of data; a full socket buffer is waited out with loop turns
 * (the server reads in them). */
static void send_all(struct cli *c, const void *data, size_t len)
{
	const char *p = data;
	int turns = 0;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
		assert_true(turns++ < MAX_TURNS);
		turn(TURN_MS);
	}
}

static void frame_into(struct kt_buf *b, const char *json)
{
	assert_int_equal(kt_proto_frame(b, json, strlen(json)), 0);
}

static void send_req(struct cli *c, const char *json)
{
	struct kt_buf b = KT_BUF_INIT(KT_PROTO_MAX_FRAME);

	frame_into(&b, json);
	send_all(c, b.data, b.len);
	kt_buf_free(&b);
}

static void send_header(struct cli *c, uint32_t n)
{
	unsigned char hdr[KT_PROTO_HDR] = { n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff };

	send_all(c, hdr, sizeof(hdr));
}

static int ans_n(const struct cli *c, int i)
{
	struct json_object *v;

	assert_true(i < c->nans);
	assert_true(json_object_object_get_ex(c->ans[i], "n", &v));
	return json_object_get_int(v);
}

static const char *ans_str(const struct cli *c, int i, const char *key)
{
	assert_true(i < c->nans);
	return kt_json_str(c->ans[i], key);
}

/* The pad of answer i is size bytes of 'x' (nothing lost or reordered
 * across partial writes). */
static void assert_pad(const struct cli *c, int i, size_t size)
{
	const char *pad = ans_str(c, i, "pad");

	assert_non_null(pad);
	assert_int_equal(strlen(pad), size);
	assert_true(strspn(pad, "x") == size);
}

/* Puts the n sockets in fds into a child's SCM_RIGHTS message on sock. */
static int send_fds(int sock, const int *fds, int n)
{
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (n > MAX_FDS)
		return -1;
	memset(&u, 0, sizeof(u));
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static void recv_fds(int sock, int *fds, int n)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	assert_int_equal(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC), 1);
	cm = CMSG_FIRSTHDR(&msg);
	/* Checked by hand, not with assert_non_null: the compiler does not know
	 * cmocka's failure returns no more, and -Wnull-dereference says so. */
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN((size_t)n * sizeof(int))) {
		fail_msg("the child sent no %d descriptors", n);
		return;
	}
	memcpy(fds, CMSG_DATA(cm), (size_t)n * sizeof(int));
}

/* The child of quota_connect: becomes nobody, connects n sockets (the
 * backlog takes them while the parent is not turning its loop) and sends
 * them home. Exit 2: it could not become nobody. */
static void __attribute__((noreturn)) child_connect(int sock, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fds[MAX_FDS];

	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		_exit(2);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(3);
	}
	_exit(send_fds(sock, fds, n) == 0 ? 0 : 4);
}

/* n (at most MAX_FDS) connected clients whose peer is a uid with a quota and a
 * share: the test's own uid, unless the test runs as root, which has
 * neither; then a child becomes nobody, connects, and hands the sockets
 * back over SCM_RIGHTS (SO_PEERCRED keeps the credentials of connect()).
 * Returns the peers' uid, or -1 when no child could become nobody. */
static long quota_connect(struct cli *cs, int n)
{
	int sp[2], fds[MAX_FDS], status = 0;
	pid_t pid;

	assert_true(n <= MAX_FDS);
	if (geteuid() != 0) {
		if (!told)
			print_message("# not root: connections from the test's own uid %lu\n",
				      (unsigned long)geteuid());
		told = true;
		for (int i = 0; i < n; i++)
			cli_open(&cs[i]);
		return (long)geteuid();
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sp[0]);
		child_connect(sp[1], n);
	}
	close(sp[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2) {
		close(sp[0]);
		print_message("# running as root, and a child cannot setresuid(%d)\n", NOBODY);
		return -1;
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	recv_fds(sp[0], fds, n);
	close(sp[0]);
	if (!told)
		print_message("# running as root: connections from uid %d, made by a child\n",
			      NOBODY);
	told = true;
	for (int i = 0; i < n; i++)
		cli_adopt(&cs[i], fds[i]);
	return NOBODY;
}

/* 1. One request, one handler call with the peer's credentials, one framed
 * answer; a frame the handler writes itself goes out byte for byte. */
static void test_answer(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;
	uint64_t id;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_req(&c, "{\"n\":1}");
	WAIT_FOR(answers(&c, 1));
	assert_int_equal(h.calls, 1);
	id = h.conn_id;
	assert_int_equal(h.uid, geteuid());
	assert_int_equal(h.pid, getpid());
	assert_true(json_object_get_boolean(json_object_object_get(c.ans[0], "ok")));
	assert_int_equal(ans_n(&c, 0), 1);
	assert_string_equal(ans_str(&c, 0, "how"), "answered");
	for (int i = 0; i < QUIET_TURNS; i++) {
		turn(QUIET_MS);
		assert_false(answers(&c, 2));
		assert_int_equal(h.calls, 1);
	}

	send_req(&c, "{\"n\":2,\"do\":\"write\"}");
	WAIT_FOR(answers(&c, 2));
	assert_int_equal(h.calls, 2);
	assert_true(h.conn_id == id);
	assert_non_null(c.raw[1]);
	assert_string_equal(c.raw[1], WRITTEN_PAYLOAD);
	assert_int_equal(kt_server_requests(srv), 2);
	assert_int_equal(kt_server_connections(srv), 1);
	assert_int_equal(h.gone, 0);
	cli_close(&c);
	WAIT_FOR(kt_server_connections(srv) == 0);
	assert_int_equal(h.gone, 0);
}

/* A frame that is not a JSON object is answered bad_request without the
 * handler; the connection goes on. */
static void test_not_an_object(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_req(&c, "[1]");
	send_req(&c, "{\"n\":3}");
	WAIT_FOR(answers(&c, 2));
	assert_string_equal(ans_str(&c, 0, "error"), kt_proto_err_name(KT_PERR_BAD_REQUEST));
	assert_int_equal(ans_n(&c, 1), 3);
	assert_int_equal(h.calls, 1);
	cli_close(&c);
}

/* 2. A frame trickling in one byte at a time is handled once, whole. */
static void test_one_byte_at_a_time(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	frame_into(&b, "{\"n\":7,\"pad\":\"abcdefghij\"}");
	for (size_t i = 0; i < b.len; i++) {
		send_all(&c, b.data + i, 1);
		/* The byte is in the socket already: the turn reads it. */
		turn(TURN_MS);
		if (i + 1 < b.len) {
			assert_int_equal(h.calls, 0);
			assert_false(answers(&c, 1));
		}
	}
	kt_buf_free(&b);
	WAIT_FOR(answers(&c, 1));
	assert_int_equal(ans_n(&c, 0), 7);
	for (int i = 0; i < QUIET_TURNS; i++) {
		turn(QUIET_MS);
		assert_int_equal(h.calls, 1);
		assert_false(answers(&c, 2));
	}
	cli_close(&c);
}

/* Frames pipelined in one write are answered in order, more of them than
 * one turn handles for a connection. */
static void test_pipelined(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli c;
	char req[64];
	const int n = 2 * REQUESTS_PER_TURN + 1;

	(void)state;
	serve(&lim);
	cli_open(&c);
	for (int i = 0; i < n; i++) {
		snprintf(req, sizeof(req), "{\"n\":%d}", i + 1);
		frame_into(&b, req);
	}
	send_all(&c, b.data, b.len);
	kt_buf_free(&b);
	WAIT_FOR(answers(&c, n));
	assert_int_equal(h.calls, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(h.ns[i], i + 1);
		assert_int_equal(ans_n(&c, i), i + 1);
	}
	cli_close(&c);
}

/* Two frames in one write: two answers in order. */
static void test_two_in_one_write(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	frame_into(&b, "{\"n\":1}");
	frame_into(&b, "{\"n\":2}");
	send_all(&c, b.data, b.len);
	kt_buf_free(&b);
	WAIT_FOR(answers(&c, 2));
	assert_int_equal(h.calls, 2);
	assert_int_equal(ans_n(&c, 0), 1);
	assert_int_equal(ans_n(&c, 1), 2);
	cli_close(&c);
}

/* Pipelined requests whose answers pass OUT_HIGH, for a peer that reads
 * them as fast as they are written and sends nothing more: handling stops
 * at OUT_HIGH, one write then sends everything, and the whole requests still
 * buffered are handled (not left waiting for input that never comes). */
static void test_pipelined_drained(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli c;
	char req[64];

	(void)state;
	_Static_assert(2 * DRAIN_ANSWER < OUT_HIGH && 3 * DRAIN_ANSWER >= OUT_HIGH &&
			       REQUESTS_PER_TURN > 3 && DRAIN_REQUESTS > 3,
		       "OUT_HIGH stops handling at the third answer, with requests left");
	serve(&lim);
	cli_open(&c);
	for (int i = 0; i < DRAIN_REQUESTS; i++) {
		snprintf(req, sizeof(req), "{\"n\":%d,\"size\":%u}", i + 1, DRAIN_ANSWER);
		frame_into(&b, req);
	}
	send_all(&c, b.data, b.len);
	kt_buf_free(&b);
	drain_peer = &c;
	WAIT_FOR(answers(&c, DRAIN_REQUESTS));
	drain_peer = NULL;
	assert_int_equal(h.calls, DRAIN_REQUESTS);
	for (int i = 0; i < DRAIN_REQUESTS; i++) {
		assert_int_equal(ans_n(&c, i), i + 1);
		assert_pad(&c, i, DRAIN_ANSWER);
	}
	assert_int_equal(kt_server_unsent(srv), 0);
	cli_close(&c);
}

/* An answer larger than the socket's buffer goes out in parts, whole. */
static void test_partial_writes(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;
	char req[64];

	(void)state;
	serve(&lim);
	cli_open(&c);
	snprintf(req, sizeof(req), "{\"n\":1,\"size\":%u}", BIG_ANSWER);
	send_req(&c, req);
	send_req(&c, "{\"n\":2}");
	WAIT_FOR(h.calls >= 1 && kt_server_unsent(srv) > 0);
	WAIT_FOR(answers(&c, 2));
	assert_pad(&c, 0, BIG_ANSWER);
	assert_int_equal(ans_n(&c, 1), 2);
	WAIT_FOR(kt_server_unsent(srv) == 0);
	cli_close(&c);
}

/* 3. The largest request frame is taken; one byte more closes the
 * connection without a call of the handler. */
static void test_frame_limit(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(KT_PROTO_MAX_REQUEST + 64);
	struct cli ok, over;
	const char *head = "{\"n\":5,\"p\":\"";
	const char *tail = "\"}";
	size_t fill = KT_PROTO_MAX_REQUEST - strlen(head) - strlen(tail);
	char *payload = malloc(KT_PROTO_MAX_REQUEST + 1);

	(void)state;
	assert_non_null(payload);
	snprintf(payload, KT_PROTO_MAX_REQUEST + 1, "%s%*s%s", head, (int)fill, "", tail);
	assert_int_equal(strlen(payload), KT_PROTO_MAX_REQUEST);
	assert_int_equal(kt_proto_frame(&b, payload, KT_PROTO_MAX_REQUEST), 0);
	free(payload);
	serve(&lim);

	cli_open(&ok);
	send_all(&ok, b.data, b.len);
	kt_buf_free(&b);
	WAIT_FOR(answers(&ok, 1));
	assert_int_equal(ans_n(&ok, 0), 5);
	assert_int_equal(h.calls, 1);

	cli_open(&over);
	send_header(&over, KT_PROTO_MAX_REQUEST + 1);
	WAIT_FOR(closed(&over));
	assert_int_equal(over.nans, 0);
	assert_int_equal(h.calls, 1);
	WAIT_FOR(kt_server_connections(srv) == 1);
	cli_close(&over);
	cli_close(&ok);
}

/* A header announcing 4 GiB - 1, with bytes behind it. */
static void test_frame_huge(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_header(&c, 0xffffffffu);
	send_all(&c, "{\"n\":1}", 7);
	WAIT_FOR(closed(&c));
	assert_int_equal(c.nans, 0);
	assert_int_equal(h.calls, 0);
	cli_close(&c);
}

/* A frame of length 0 closes the connection too. */
static void test_frame_zero(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_header(&c, 0);
	WAIT_FOR(closed(&c));
	assert_int_equal(c.nans, 0);
	assert_int_equal(h.calls, 0);
	WAIT_FOR(kt_server_connections(srv) == 0);
	assert_int_equal(h.gone, 0);
	cli_close(&c);
}

/* 4. per_uid = 2: a third connection of the uid gets one throttled frame
 * and is closed; the first two go on, and a slot given back is taken. */
static void test_quota(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli two[2], third, again;
	long uid;

	(void)state;
	lim.per_uid = 2;
	serve(&lim);
	uid = quota_connect(two, 2);
	if (uid < 0)
		skip();
	WAIT_FOR(kt_server_connections(srv) == 2);
	assert_int_equal(quota_connect(&third, 1), uid);
	WAIT_FOR(closed(&third));
	assert_int_equal(third.nans, 1);
	assert_false(json_object_get_boolean(json_object_object_get(third.ans[0], "ok")));
	assert_string_equal(ans_str(&third, 0, "error"), kt_proto_err_name(KT_PERR_THROTTLED));
	assert_int_equal(kt_server_refused(srv), 1);
	assert_int_equal(kt_server_connections(srv), 2);
	assert_int_equal(h.calls, 0);

	send_req(&two[0], "{\"n\":1}");
	send_req(&two[1], "{\"n\":2}");
	WAIT_FOR(answers(&two[0], 1) && answers(&two[1], 1));
	assert_int_equal(ans_n(&two[0], 0), 1);
	assert_int_equal(ans_n(&two[1], 0), 2);
	assert_int_equal((long)h.uid, uid);

	cli_close(&two[0]);
	WAIT_FOR(kt_server_connections(srv) == 1);
	assert_int_equal(quota_connect(&again, 1), uid);
	send_req(&again, "{\"n\":3}");
	WAIT_FOR(answers(&again, 1));
	assert_int_equal(ans_n(&again, 0), 3);
	assert_int_equal(kt_server_refused(srv), 1);
	cli_close(&again);
	cli_close(&third);
	cli_close(&two[1]);
}

/* Past max_connections only the reserve is left, for peers the handler
 * names, and nothing past max_connections + reserve. */
static void test_reserve(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli first, refused, reserved, beyond;
	long uid;
	int calls;

	(void)state;
	lim.max_conns = 1;
	lim.reserve = 1;
	serve(&lim);
	uid = quota_connect(&first, 1);
	if (uid < 0)
		skip();
	WAIT_FOR(kt_server_connections(srv) == 1);
	h.reserve = false;
	quota_connect(&refused, 1);
	WAIT_FOR(closed(&refused));
	assert_int_equal(refused.nans, 1);
	assert_string_equal(ans_str(&refused, 0, "error"), kt_proto_err_name(KT_PERR_THROTTLED));
	assert_true(h.reserved_calls >= 1);

	h.reserve = true;
	quota_connect(&reserved, 1);
	WAIT_FOR(kt_server_connections(srv) == 2);
	calls = h.reserved_calls;
	quota_connect(&beyond, 1);
	WAIT_FOR(closed(&beyond));
	assert_int_equal(beyond.nans, 1);
	/* Past the reserve too: refused without asking. */
	assert_int_equal(h.reserved_calls, calls);
	assert_int_equal(kt_server_refused(srv), 2);
	send_req(&reserved, "{\"n\":1}");
	WAIT_FOR(answers(&reserved, 1));
	cli_close(&beyond);
	cli_close(&reserved);
	cli_close(&refused);
	cli_close(&first);
}

/* Root is always in the reserve, without asking the handler (which says
 * no to everyone here), and is refused past it like anyone else. */
static void test_reserve_root(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli first, root, beyond;

	(void)state;
	if (geteuid() != 0) {
		print_message("# not root: no root peer to test the reserve with\n");
		skip();
	}
	lim.max_conns = 1;
	lim.reserve = 1;
	serve(&lim);
	h.reserve = false;
	cli_open(&first);
	WAIT_FOR(kt_server_connections(srv) == 1);
	cli_open(&root);
	WAIT_FOR(kt_server_connections(srv) == 2 || kt_server_refused(srv) > 0);
	assert_int_equal(kt_server_refused(srv), 0);
	assert_int_equal(h.reserved_calls, 0);
	send_req(&root, "{\"n\":1}");
	WAIT_FOR(answers(&root, 1));
	assert_int_equal(ans_n(&root, 0), 1);
	assert_int_equal(h.uid, 0);

	cli_open(&beyond);
	WAIT_FOR(closed(&beyond));
	assert_int_equal(beyond.nans, 1);
	assert_string_equal(ans_str(&beyond, 0, "error"), kt_proto_err_name(KT_PERR_THROTTLED));
	assert_int_equal(kt_server_refused(srv), 1);
	assert_int_equal(kt_server_connections(srv), 2);
	assert_int_equal(h.reserved_calls, 0);
	cli_close(&beyond);
	cli_close(&root);
	cli_close(&first);
}

/* 5. request_timeout = 1: half a frame is closed once the tick passes its
 * deadline; an idle connection (nothing sent) is not. */
static void test_deadline(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli idle, slow;

	(void)state;
	lim.request_timeout = 1;
	serve(&lim);
	cli_open(&idle);
	cli_open(&slow);
	WAIT_FOR(kt_server_connections(srv) == 2);
	send_header(&slow, 100);
	send_all(&slow, "{\"n\":1,", 7);
	WAIT_FOR(closed(&slow));
	assert_int_equal(slow.nans, 0);
	assert_int_equal(h.calls, 0);
	WAIT_FOR(kt_server_connections(srv) == 1);
	assert_false(closed(&idle));
	send_req(&idle, "{\"n\":2}");
	WAIT_FOR(answers(&idle, 1));
	cli_close(&slow);
	cli_close(&idle);
}

/* request_timeout = 1: a connection that is not read because of its own
 * unsent answers (past OUT_HIGH; its peer does not read them) keeps the
 * frame it has half sent: the rest may be waiting in its socket. Its peer
 * is root, which has no share: another uid's share would hold the deadline
 * off before OUT_HIGH does. A second connection's half frame, begun later,
 * is closed by the deadline: the tick has then passed the first one's. */
static void test_deadline_held_back(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli held, slow;
	char req[64];

	(void)state;
	if (geteuid() != 0) {
		print_message("# not root: no peer without a share to hold back by its output\n");
		skip();
	}
	lim.request_timeout = 1;
	serve(&lim);
	cli_open(&held);
	cli_open(&slow);
	WAIT_FOR(kt_server_connections(srv) == 2);
	for (int i = 0; i < 2; i++) {
		snprintf(req, sizeof(req), "{\"n\":%d,\"size\":%u}", i + 1, BIG_ANSWER);
		frame_into(&b, req);
	}
	/* Half of a third frame: a header announcing 100 bytes, and 7 of them. */
	assert_int_equal(kt_buf_append(&b, "\0\0\0\144{\"n\":3,", 11), 0);
	send_all(&held, b.data, b.len);
	kt_buf_free(&b);
	WAIT_FOR(h.calls == 2);
	assert_true(kt_server_unsent(srv) >= OUT_HIGH);

	send_header(&slow, 100);
	send_all(&slow, "{\"n\":1,", 7);
	WAIT_FOR(closed(&slow));
	assert_int_equal(slow.nans, 0);
	assert_int_equal(kt_server_connections(srv), 1);
	assert_true(kt_server_unsent(srv) >= OUT_HIGH);
	assert_int_equal(h.calls, 2);
	cli_close(&slow);
	cli_close(&held);
}

/* Reads every hog of test_share; true once each has all its answers. */
static bool hogs_answered(struct cli *cs)
{
	bool all = true;

	for (int k = 0; k < SHARE_HOGS; k++)
		all = answers(&cs[k], SHARE_REQUESTS) && all;
	return all;
}

/* 6. A uid that does not read its answers: once its unsent answers pass
 * UID_OUT_SHARE, no connection of it is served, not even one with nothing
 * unsent of its own; reading them all lets everything through, in order.
 * Several connections fill the share: one alone stops at its own limit
 * (OUT_HIGH) first, and each socket's buffer takes some of its answers. */
static void test_share(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli cs[SHARE_HOGS + 1];
	struct cli *other = &cs[SHARE_HOGS];
	char req[64];
	int stalled_at;

	(void)state;
	serve(&lim);
	if (quota_connect(cs, SHARE_HOGS + 1) < 0)
		skip();
	WAIT_FOR(kt_server_connections(srv) == SHARE_HOGS + 1);
	for (int k = 0; k < SHARE_HOGS; k++) {
		struct kt_buf b = KT_BUF_INIT(4096);

		for (int i = 0; i < SHARE_REQUESTS; i++) {
			snprintf(req, sizeof(req), "{\"n\":%d,\"size\":%u}", 100 * k + i,
				 SHARE_ANSWER);
			frame_into(&b, req);
		}
		send_all(&cs[k], b.data, b.len);
		kt_buf_free(&b);
	}
	WAIT_FOR(kt_server_unsent(srv) >= UID_OUT_SHARE);
	stalled_at = h.calls;
	assert_true(stalled_at < SHARE_HOGS * SHARE_REQUESTS);

	send_req(other, "{\"n\":1000}");
	for (int i = 0; i < QUIET_TURNS; i++) {
		turn(QUIET_MS);
		assert_int_equal(h.calls, stalled_at);
		assert_true(kt_server_unsent(srv) >= UID_OUT_SHARE);
		assert_false(answers(other, 1));
	}

	WAIT_FOR(hogs_answered(cs) && answers(other, 1));
	assert_int_equal(h.calls, SHARE_HOGS * SHARE_REQUESTS + 1);
	for (int k = 0; k < SHARE_HOGS; k++) {
		for (int i = 0; i < SHARE_REQUESTS; i++) {
			assert_int_equal(ans_n(&cs[k], i), 100 * k + i);
			assert_pad(&cs[k], i, SHARE_ANSWER);
		}
	}
	assert_int_equal(ans_n(other, 0), 1000);
	WAIT_FOR(kt_server_unsent(srv) == 0);
	for (int k = 0; k <= SHARE_HOGS; k++)
		cli_close(&cs[k]);
}

/* 7. A client that hangs up while its request is parked: gone() once, and
 * the late answer is dropped. */
static void test_parked_gone(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c;
	uint64_t id;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_req(&c, "{\"n\":1,\"do\":\"park\"}");
	WAIT_FOR(h.parked != NULL);
	id = h.parked_id;
	assert_true(kt_server_flushing(srv));
	cli_close(&c);
	WAIT_FOR(h.gone == 1);
	assert_true(h.gone_id == id);
	WAIT_FOR(kt_server_connections(srv) == 0);
	for (int i = 0; i < QUIET_TURNS; i++) {
		turn(QUIET_MS);
		assert_int_equal(h.gone, 1);
	}
	/* The connection's memory is gone by now: ASan would see a touch. */
	kt_server_reply(srv, id, make_answer(1, 0, "late"));
	turn(QUIET_MS);
	assert_int_equal(h.gone, 1);
	assert_int_equal(kt_server_unsent(srv), 0);
	assert_false(kt_server_flushing(srv));
	json_object_put(h.parked);
	h.parked = NULL;
}

/* A parked request answered later: its answer goes out first, then the
 * request pipelined behind it, which waited unread by the handler. */
static void test_parked_reply(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct kt_buf b = KT_BUF_INIT(4096);
	struct cli c;

	(void)state;
	serve(&lim);
	cli_open(&c);
	frame_into(&b, "{\"n\":1,\"do\":\"park\"}");
	frame_into(&b, "{\"n\":2}");
	send_all(&c, b.data, b.len);
	kt_buf_free(&b);
	WAIT_FOR(h.parked != NULL);
	for (int i = 0; i < QUIET_TURNS; i++) {
		turn(QUIET_MS);
		assert_int_equal(h.calls, 1);
		assert_false(answers(&c, 1));
		assert_true(kt_server_flushing(srv));
	}
	kt_server_reply(srv, h.parked_id, make_answer(1, 0, "replied"));
	json_object_put(h.parked);
	h.parked = NULL;
	WAIT_FOR(answers(&c, 2));
	assert_int_equal(ans_n(&c, 0), 1);
	assert_string_equal(ans_str(&c, 0, "how"), "replied");
	assert_int_equal(ans_n(&c, 1), 2);
	assert_int_equal(h.calls, 2);
	WAIT_FOR(!kt_server_flushing(srv));
	cli_close(&c);
	WAIT_FOR(kt_server_connections(srv) == 0);
	assert_int_equal(h.gone, 0);
}

/* 8. After kt_server_stop_accepting nobody new gets in, and flushing is
 * reported until the last answer has been read. */
static void test_stop(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c, waiting, late;
	char req[64];

	(void)state;
	serve(&lim);
	cli_open(&c);
	snprintf(req, sizeof(req), "{\"n\":1,\"size\":%u}", BIG_ANSWER);
	send_req(&c, req);
	WAIT_FOR(h.calls == 1 && kt_server_unsent(srv) > 0);
	/* Connected but not accepted yet: no turn runs before the stop. */
	cli_open(&waiting);
	kt_server_stop_accepting(srv);
	assert_true(kt_server_flushing(srv));
	assert_int_equal(cli_connect(&late), -ECONNREFUSED);
	WAIT_FOR(closed(&waiting));
	assert_int_equal(waiting.nans, 0);
	assert_true(kt_server_flushing(srv));
	WAIT_FOR(answers(&c, 1) && !kt_server_flushing(srv));
	assert_pad(&c, 0, BIG_ANSWER);
	assert_int_equal(kt_server_connections(srv), 1);
	assert_int_equal(kt_server_unsent(srv), 0);
	cli_close(&waiting);
	cli_close(&c);
}

/* 9. Watch mode: the answer, then pushed frames in order; a connection
 * that asks nothing is closed as idle, the watcher is not; a byte from the
 * watcher closes it, with gone(); a push then finds nothing. */
static void test_watch(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c, idle;
	uint64_t id;

	(void)state;
	lim.idle_timeout = 1;
	serve(&lim);
	cli_open(&c);
	send_req(&c, "{\"n\":1,\"do\":\"watch\"}");
	WAIT_FOR(answers(&c, 1));
	id = h.conn_id;
	assert_int_equal(kt_server_push(srv, id, make_answer(2, 0, "pushed"), false), 0);
	assert_int_equal(kt_server_push(srv, id, make_answer(3, 0, "pushed"), false), 0);
	WAIT_FOR(answers(&c, 3));
	assert_int_equal(ans_n(&c, 1), 2);
	assert_string_equal(ans_str(&c, 2, "how"), "pushed");
	cli_open(&idle);
	WAIT_FOR(closed(&idle));
	assert_int_equal(kt_server_connections(srv), 1);
	assert_int_equal(h.gone, 0);
	assert_int_equal(kt_server_push(srv, id, make_answer(4, 0, "pushed"), false), 0);
	WAIT_FOR(answers(&c, 4));
	send_req(&c, "{\"n\":5}");
	WAIT_FOR(h.gone == 1 && closed(&c));
	assert_true(h.gone_id == id);
	assert_int_equal(h.calls, 1);
	assert_int_equal(kt_server_push(srv, id, make_answer(6, 0, "late"), false), -ENOENT);
	assert_int_equal(kt_server_unsent(srv), 0);
	cli_close(&idle);
	cli_close(&c);
}

/* A watcher that never reads: pushes stop at the connection's bound with
 * -ENOBUFS and the connection is closed (no gone(): the pusher knows);
 * the daemon never holds much more than OUT_HIGH for it. A last frame is
 * sent and the connection closed after it. */
static void test_watch_unread(void **state)
{
	struct kt_server_limits lim = default_limits();
	struct cli c, d;
	size_t most = 0;
	int rc = 0, i;

	(void)state;
	serve(&lim);
	cli_open(&c);
	send_req(&c, "{\"n\":1,\"do\":\"watch\"}");
	WAIT_FOR(kt_server_unsent(srv) == 0 && h.calls == 1);
	for (i = 0; i < 1000 && rc == 0; i++) {
		rc = kt_server_push(srv, h.conn_id, make_answer(i, 60000, "pushed"), false);
		if (kt_server_unsent(srv) > most)
			most = kt_server_unsent(srv);
		turn(0);
	}
	assert_int_equal(rc, -ENOBUFS);
	assert_true(most <= OUT_HIGH + 61000);
	assert_int_equal(kt_server_unsent(srv), 0);
	WAIT_FOR(kt_server_connections(srv) == 0);
	assert_int_equal(h.gone, 0);
	cli_close(&c);

	cli_open(&d);
	send_req(&d, "{\"n\":1,\"do\":\"watch\"}");
	WAIT_FOR(answers(&d, 1));
	assert_int_equal(kt_server_push(srv, h.conn_id, make_answer(2, 0, "last"), true), 0);
	WAIT_FOR(answers(&d, 2) && closed(&d));
	assert_string_equal(ans_str(&d, 1, "how"), "last");
	WAIT_FOR(kt_server_connections(srv) == 0);
	assert_int_equal(h.gone, 0);
	cli_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_an_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_byte_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_in_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_huge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_held_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_unread, setup, teardown),
	};

	log_init("test_server", true, KT_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

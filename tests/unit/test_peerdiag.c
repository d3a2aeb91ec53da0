/* Unit tests for sidecar/peerdiag.c, included here and built with
 * KT_UNIT_TEST so that the test counts the cache's user database lookups.
 * The NETLINK_SOCK_DIAG lookups are made on real loopback connections. */
#include "peerdiag.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>

#define NOBODY 65534
#define UNKNOWN_UID 3999999

/* How long a connection may take to arrive before the test gives up. */
#define ACCEPT_WAIT_MS 10000

/* One accepted loopback connection, with both ends' addresses as the
 * daemon would see them. */
struct conn {
	int lfd, cfd, sfd; /* listener, client end, server end */
	struct sockaddr_storage peer, local;
	socklen_t peerlen, locallen;
};

/* cmocka 1.1.5's skip() prints "not ok N # SKIP", which automake's TAP
 * driver counts as a failure; a test that cannot run here says why in a TAP
 * comment and passes instead, as the other unit tests do. */
static void skip_because(const char *why)
{
	printf("# skipped: %s\n", why);
	fflush(stdout);
}

/* The lowest free descriptor: the same before and after a run of lookups
 * when none leaks. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

/* A listener on addr (port 0: any). Returns -1 with errno when this host
 * cannot have it (no ::1, no IPv6). */
static int listen_on(const struct sockaddr *addr, socklen_t len, bool v6only)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = v6only, e;

	if (fd < 0)
		return -1;
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
		goto fail;
	if (bind(fd, addr, len) < 0 || listen(fd, 8) < 0)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* Waits for a connection on lfd and accepts it, never for longer than
 * ACCEPT_WAIT_MS. */
static int accept_one(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, ACCEPT_WAIT_MS), 1);
	*peerlen = sizeof(*peer);
	return accept4(lfd, (struct sockaddr *)peer, peerlen, SOCK_CLOEXEC);
}

/* Connects a client of family cfamily to the listener c->lfd at dest and
 * accepts it. */
static void connect_pair(struct conn *c, int cfamily, const struct sockaddr *dest, socklen_t len)
{
	c->cfd = socket(cfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->cfd >= 0);
	assert_int_equal(connect(c->cfd, dest, len), 0);
	c->sfd = accept_one(c->lfd, &c->peer, &c->peerlen);
	assert_true(c->sfd >= 0);
	c->locallen = sizeof(c->local);
	assert_int_equal(getsockname(c->sfd, (struct sockaddr *)&c->local, &c->locallen), 0);
}

/* The listener's own address, for a client to connect to. */
static socklen_t listener_addr(int lfd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	assert_int_equal(getsockname(lfd, (struct sockaddr *)ss, &len), 0);
	return len;
}

static void close_conn(struct conn *c)
{
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->sfd >= 0)
		close(c->sfd);
	if (c->lfd >= 0)
		close(c->lfd);
	c->cfd = c->sfd = c->lfd = -1;
}

static int lookup(const struct conn *c, uid_t *uid)
{
	return kt_peerdiag_tcp_uid((const struct sockaddr *)&c->peer, c->peerlen,
				   (const struct sockaddr *)&c->local, c->locallen, uid);
}

static struct sockaddr_in loopback4(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static struct sockaddr_in6 loopback6(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	sin6.sin6_addr = in6addr_loopback;
	return sin6;
}

/* An IPv4 listener on 127.0.0.1 with one connection accepted. */
static void open_v4(struct conn *c)
{
	struct sockaddr_in sin = loopback4();
	struct sockaddr_storage ss;
	socklen_t len;

	c->lfd = listen_on((struct sockaddr *)&sin, sizeof(sin), false);
	assert_true(c->lfd >= 0);
	len = listener_addr(c->lfd, &ss);
	connect_pair(c, AF_INET, (struct sockaddr *)&ss, len);
}

static void test_ipv4(void **state)
{
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;
	int before = lowest_free_fd();

	(void)state;
	open_v4(&c);
	assert_int_equal(c.peer.ss_family, AF_INET);
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	/* The same answer every time, and no netlink socket left behind. */
	for (int i = 0; i < 200; i++) {
		uid = (uid_t)-2;
		assert_int_equal(lookup(&c, &uid), 0);
		assert_int_equal(uid, getuid());
	}
	close_conn(&c);
	assert_int_equal(lowest_free_fd(), before);
}

static void test_ipv6(void **state)
{
	struct sockaddr_in6 sin6 = loopback6();
	struct sockaddr_storage ss;
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;
	socklen_t len;

	(void)state;
	c.lfd = listen_on((struct sockaddr *)&sin6, sizeof(sin6), true);
	if (c.lfd < 0) {
		printf("# skipped: test_ipv6: cannot listen on [::1]: %s\n", strerror(errno));
		fflush(stdout);
		return;
	}
	len = listener_addr(c.lfd, &ss);
	connect_pair(&c, AF_INET6, (struct sockaddr *)&ss, len);
	assert_int_equal(c.peer.ss_family, AF_INET6);
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	close_conn(&c);
}

/* IPv4-mapped addresses both ways: an IPv4 client accepted by a dual-stack
 * IPv6 listener, and an IPv6 client connected to an IPv4 listener through a
 * mapped address (its socket then answers as AF_INET6). */
static void test_v4_mapped(void **state)
{
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6 },
			    mapped = { .sin6_family = AF_INET6 };
	struct sockaddr_in sin = loopback4();
	struct sockaddr_storage ss;
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;

	(void)state;
	any6.sin6_addr = in6addr_any;
	c.lfd = listen_on((struct sockaddr *)&any6, sizeof(any6), false);
	if (c.lfd < 0) {
		printf("# skipped: test_v4_mapped: no dual-stack listener on [::]: %s\n",
		       strerror(errno));
		fflush(stdout);
		return;
	}
	listener_addr(c.lfd, &ss);
	sin.sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	connect_pair(&c, AF_INET, (struct sockaddr *)&sin, sizeof(sin));
	assert_int_equal(c.peer.ss_family, AF_INET6);
	assert_true(IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&c.peer)->sin6_addr));
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	close_conn(&c);

	sin = loopback4();
	c.lfd = listen_on((struct sockaddr *)&sin, sizeof(sin), false);
	assert_true(c.lfd >= 0);
	listener_addr(c.lfd, &ss);
	mapped.sin6_port = ((struct sockaddr_in *)&ss)->sin_port;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr), 1);
	connect_pair(&c, AF_INET6, (struct sockaddr *)&mapped, sizeof(mapped));
	assert_int_equal(c.peer.ss_family, AF_INET);
	uid = (uid_t)-2;
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	close_conn(&c);
}

/* A client bound to "lo" with SO_BINDTODEVICE is found too: the lookup
 * names the loopback device rather than none. */
static void test_bound_to_lo(void **state)
{
	struct sockaddr_in sin = loopback4();
	struct sockaddr_storage ss;
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;
	socklen_t len;

	(void)state;
	c.lfd = listen_on((struct sockaddr *)&sin, sizeof(sin), false);
	assert_true(c.lfd >= 0);
	len = listener_addr(c.lfd, &ss);
	c.cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c.cfd >= 0);
	if (setsockopt(c.cfd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) < 0) {
		printf("# skipped: test_bound_to_lo: SO_BINDTODEVICE: %s\n", strerror(errno));
		fflush(stdout);
		close_conn(&c);
		return;
	}
	assert_int_equal(connect(c.cfd, (struct sockaddr *)&ss, len), 0);
	c.sfd = accept_one(c.lfd, &c.peer, &c.peerlen);
	assert_true(c.sfd >= 0);
	c.locallen = sizeof(c.local);
	assert_int_equal(getsockname(c.sfd, (struct sockaddr *)&c.local, &c.locallen), 0);
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	close_conn(&c);
}

/* Reads from fd until end of file (the other side's FIN). */
static void read_to_eof(int fd)
{
	char b[64];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		;
	assert_int_equal(n, 0);
}

/* A child that becomes nobody, connects, and holds its socket open until
 * the parent has looked it up (the parent closes the pipe then). Once the
 * child has closed it, the kernel reports the orphaned socket as uid 0 on
 * some kernels (6.18 here): the lookup must say -ENOENT, never root. */
static void test_other_uid(void **state)
{
	struct sockaddr_in sin = loopback4();
	struct sockaddr_storage ss;
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;
	int hold[2], status;
	socklen_t len;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		skip_because("test_other_uid: needs root to connect as uid 65534");
		return;
	}
	c.lfd = listen_on((struct sockaddr *)&sin, sizeof(sin), false);
	assert_true(c.lfd >= 0);
	len = listener_addr(c.lfd, &ss);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char b;
		int fd;

		close(hold[1]);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(2);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
			_exit(3);
		/* Returns 0 when the parent closes its end. */
		if (read(hold[0], &b, 1) != 0)
			_exit(4);
		_exit(0);
	}
	close(hold[0]);
	c.sfd = accept_one(c.lfd, &c.peer, &c.peerlen);
	assert_true(c.sfd >= 0);
	c.locallen = sizeof(c.local);
	assert_int_equal(getsockname(c.sfd, (struct sockaddr *)&c.local, &c.locallen), 0);
	assert_int_equal(lookup(&c, &uid), 0);
	close(hold[1]);
	read_to_eof(c.sfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(uid, NOBODY);
	uid = (uid_t)-2;
	assert_int_equal(lookup(&c, &uid), -ENOENT);
	assert_int_equal(uid, (uid_t)-2);
	close_conn(&c);
}

/* What the kernel does once the client is done:
 * - close(2): the client's socket is an orphan in FIN_WAIT2, which some
 *   kernels report as uid 0: -ENOENT, never a uid;
 * - shutdown(SHUT_WR) only: the client still holds it (FIN_WAIT2) and it is
 *   still the client's uid;
 * - after that, once our side closes too and the client has seen it, the
 *   client's socket is in TIME_WAIT: -ENOENT. */
static void test_closed(void **state)
{
	struct conn c = { .lfd = -1, .cfd = -1, .sfd = -1 };
	uid_t uid = (uid_t)-2;

	(void)state;
	open_v4(&c);
	assert_int_equal(write(c.cfd, "x", 1), 1);
	close(c.cfd);
	c.cfd = -1;
	read_to_eof(c.sfd);
	assert_int_equal(lookup(&c, &uid), -ENOENT);
	assert_int_equal(uid, (uid_t)-2);
	close_conn(&c);

	open_v4(&c);
	assert_int_equal(shutdown(c.cfd, SHUT_WR), 0);
	read_to_eof(c.sfd);
	assert_int_equal(lookup(&c, &uid), 0);
	assert_int_equal(uid, getuid());
	close(c.sfd);
	c.sfd = -1;
	read_to_eof(c.cfd);
	uid = (uid_t)-2;
	assert_int_equal(lookup(&c, &uid), -ENOENT);
	assert_int_equal(uid, (uid_t)-2);
	close_conn(&c);
}

/* A port bound and not listening: nothing can be connected from or to it. */
static int bound_port(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in sin = loopback4();
	struct sockaddr_in6 sin6 = loopback6();
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if ((family == AF_INET && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) ||
	    (family == AF_INET6 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)) {
		close(fd);
		return -1;
	}
	*len = listener_addr(fd, ss);
	return fd;
}

static void test_made_up(void **state)
{
	struct sockaddr_storage a, b;
	socklen_t alen, blen;
	uid_t uid = (uid_t)-2;
	int fa, fb;

	(void)state;
	fa = bound_port(AF_INET, &a, &alen);
	fb = bound_port(AF_INET, &b, &blen);
	assert_true(fa >= 0 && fb >= 0);
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&a, alen, (struct sockaddr *)&b,
					     blen, &uid),
			 -ENOENT);
	close(fa);
	close(fb);
	fa = bound_port(AF_INET6, &a, &alen);
	fb = bound_port(AF_INET6, &b, &blen);
	if (fa >= 0 && fb >= 0)
		assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&a, alen,
						     (struct sockaddr *)&b, blen, &uid),
				 -ENOENT);
	else
		skip_because("test_made_up: no [::1] for the IPv6 case");
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	assert_int_equal(uid, (uid_t)-2);
}

static void test_bad_addresses(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in sin = loopback4();
	struct sockaddr_in6 sin6 = loopback6();
	uid_t uid = (uid_t)-2;

	(void)state;
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&sun, sizeof(sun),
					     (struct sockaddr *)&sun, sizeof(sun), &uid),
			 -EAFNOSUPPORT);
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&sin, sizeof(sin),
					     (struct sockaddr *)&sun, sizeof(sun), &uid),
			 -EAFNOSUPPORT);
	/* Mixed families, and addresses cut short. */
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&sin, sizeof(sin),
					     (struct sockaddr *)&sin6, sizeof(sin6), &uid),
			 -EINVAL);
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&sin, sizeof(sin) - 1,
					     (struct sockaddr *)&sin, sizeof(sin), &uid),
			 -EINVAL);
	assert_int_equal(kt_peerdiag_tcp_uid((struct sockaddr *)&sin6, sizeof(sin6),
					     (struct sockaddr *)&sin6, sizeof(sin) + 1, &uid),
			 -EINVAL);
	assert_int_equal(kt_peerdiag_tcp_uid(NULL, 0, (struct sockaddr *)&sin, sizeof(sin), &uid),
			 -EINVAL);
	assert_int_equal(uid, (uid_t)-2);
}

/* The checks of an answer, on answers made up here. */
static void test_read_answer(void **state)
{
	union {
		struct nlmsghdr h;
		unsigned char b[256];
	} a;
	struct inet_diag_msg *m = NLMSG_DATA(&a.h);
	struct nlmsgerr *e = NLMSG_DATA(&a.h);
	struct endpoint src = { .family = AF_INET, .port = htons(40000) };
	struct endpoint dst = { .family = AF_INET, .port = htons(8080) };
	uint32_t lo = htonl(INADDR_LOOPBACK);
	uid_t uid = (uid_t)-2;

	(void)state;
	memcpy(src.addr, &lo, 4);
	memcpy(dst.addr, &lo, 4);
	memset(&a, 0, sizeof(a));
	a.h.nlmsg_len = NLMSG_LENGTH(sizeof(*m));
	a.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	a.h.nlmsg_seq = DIAG_SEQ;
	m->idiag_family = AF_INET;
	m->idiag_state = TCP_ESTABLISHED;
	m->id.idiag_sport = src.port;
	m->id.idiag_dport = dst.port;
	m->id.idiag_src[0] = lo;
	m->id.idiag_dst[0] = lo;
	m->idiag_uid = 1234;
	m->idiag_inode = 99;
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), 0);
	assert_int_equal(uid, 1234);

	uid = (uid_t)-2;
	m->id.idiag_dport = htons(8081); /* another port */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	m->id.idiag_dport = dst.port;
	m->id.idiag_src[0] = htonl(INADDR_LOOPBACK + 1); /* another address */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	m->id.idiag_src[0] = lo;
	m->idiag_family = AF_INET6; /* another family */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	m->idiag_family = AF_INET;
	m->idiag_state = TCP_LISTEN; /* not a connected socket */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	m->idiag_state = TCP_TIME_WAIT; /* gone */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -ENOENT);
	m->idiag_state = TCP_FIN_WAIT2;
	m->idiag_inode = 0; /* closed by its owner */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -ENOENT);
	m->idiag_inode = 99;
	a.h.nlmsg_seq = DIAG_SEQ + 1; /* another question's answer */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	a.h.nlmsg_seq = DIAG_SEQ;
	a.h.nlmsg_len = NLMSG_LENGTH(sizeof(*m) - 1); /* cut short */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	assert_int_equal(uid, (uid_t)-2);

	memset(&a, 0, sizeof(a));
	a.h.nlmsg_len = NLMSG_LENGTH(sizeof(*e));
	a.h.nlmsg_type = NLMSG_ERROR;
	a.h.nlmsg_seq = DIAG_SEQ;
	e->error = -ENOENT;
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -ENOENT);
	e->error = 0; /* an acknowledgement, not an answer */
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	e->error = 5;
	assert_int_equal(read_answer(&a.h, a.h.nlmsg_len, &src, &dst, &uid), -EPROTO);
	assert_int_equal(uid, (uid_t)-2);
}

static bool has_group(const struct kt_peer *p, gid_t g)
{
	for (size_t i = 0; i < p->ngroups; i++) {
		if (p->groups[i] == g)
			return true;
	}
	return false;
}

static void test_peer_from_uid(void **state)
{
	struct kt_peer p;

	(void)state;
	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(kt_peer_from_uid(0, &p), 0);
	assert_int_equal(p.uid, 0);
	assert_int_equal(p.pid, 0);
	assert_string_equal(p.name, "root");
	assert_int_equal(p.gid, 0);
	assert_true(p.ngroups >= 1 && p.ngroups <= KT_PEER_MAX_GROUPS);
	assert_true(has_group(&p, 0));

	if (getpwuid(UNKNOWN_UID) != NULL) {
		skip_because("test_peer_from_uid: uid 3999999 has an entry here");
		return;
	}
	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(kt_peer_from_uid(UNKNOWN_UID, &p), 0);
	assert_int_equal(p.uid, UNKNOWN_UID);
	assert_int_equal(p.pid, 0);
	assert_string_equal(p.name, "3999999");
	assert_int_equal(p.gid, (gid_t)-1);
	assert_int_equal(p.ngroups, 0);
}

static void test_cache(void **state)
{
	struct kt_peercache *c;
	struct kt_peer a, b;

	(void)state;
	errno = 0;
	assert_null(kt_peercache_new(0, 60));
	assert_int_equal(errno, EINVAL);
	assert_null(kt_peercache_new(2, -1));

	c = kt_peercache_new(2, 60);
	assert_non_null(c);
	kt_test_lookups = 0;
	assert_int_equal(kt_peercache_get(c, 0, 100, &a), 0);
	assert_int_equal(kt_test_lookups, 1);
	assert_string_equal(a.name, "root");
	/* Within ttl: the same answer, no lookup. */
	memset(&b, 0, sizeof(b));
	assert_int_equal(kt_peercache_get(c, 0, 159, &b), 0);
	assert_int_equal(kt_test_lookups, 1);
	assert_memory_equal(&a, &b, sizeof(a));
	/* ttl seconds later: looked up again, and kept from then. */
	assert_int_equal(kt_peercache_get(c, 0, 160, &b), 0);
	assert_int_equal(kt_test_lookups, 2);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(kt_peercache_get(c, 0, 219, &b), 0);
	assert_int_equal(kt_test_lookups, 2);

	/* Full: the entry looked up longest ago (uid 0, at 160) makes room. */
	assert_int_equal(kt_peercache_get(c, UNKNOWN_UID, 161, &b), 0);
	assert_int_equal(kt_test_lookups, 3);
	assert_int_equal(b.uid, UNKNOWN_UID);
	assert_int_equal(kt_peercache_get(c, 1, 162, &b), 0);
	assert_int_equal(kt_test_lookups, 4);
	assert_int_equal(b.uid, 1);
	assert_int_equal(kt_peercache_get(c, UNKNOWN_UID, 163, &b), 0);
	assert_int_equal(kt_test_lookups, 4);
	assert_int_equal(kt_peercache_get(c, 0, 164, &b), 0);
	assert_int_equal(kt_test_lookups, 5);
	assert_memory_equal(&a, &b, sizeof(a));

	/* A clock before the lookup is not trusted. */
	assert_int_equal(kt_peercache_get(c, 0, 100, &b), 0);
	assert_int_equal(kt_test_lookups, 6);
	kt_peercache_free(c);

	/* ttl 0: every get looks up. */
	c = kt_peercache_new(1, 0);
	assert_non_null(c);
	assert_int_equal(kt_peercache_get(c, 0, 100, &b), 0);
	assert_int_equal(kt_peercache_get(c, 0, 100, &b), 0);
	assert_int_equal(kt_test_lookups, 8);
	kt_peercache_free(c);
	kt_peercache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),        cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_v4_mapped),   cmocka_unit_test(test_bound_to_lo),
		cmocka_unit_test(test_other_uid),   cmocka_unit_test(test_closed),
		cmocka_unit_test(test_made_up),     cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_read_answer), cmocka_unit_test(test_peer_from_uid),
		cmocka_unit_test(test_cache),
	};

	/* A write to a client end that was closed must fail, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("peerdiag", tests, NULL, NULL);
}

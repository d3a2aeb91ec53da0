/* Peer credentials of loopback TCP callers. TCP carries no SO_PEERCRED, so
 * the kernel is asked over NETLINK_SOCK_DIAG who owns the socket at the
 * other end; groups then come from the user database, behind a small cache. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerdiag.h"

/* The loopback device has this index in every network namespace. Asking
 * with it, rather than with 0 (any device), also finds a client socket bound
 * to "lo" with SO_BINDTODEVICE, and still finds unbound ones. */
#define LOOPBACK_IFINDEX 1

/* A lookup answer is one inet_diag_msg and a few attributes: well under this. */
#define DIAG_ANSWER_MAX 8192

#define DIAG_SEQ 1

/* User database records are usually small; a larger one (a long gecos or
 * home) gets a larger buffer, up to this. */
#define PW_BUF_START 1024
#define PW_BUF_MAX (1024 * 1024)

/* States of a connected socket that a process may still hold. TIME_WAIT is
 * left out: there the socket is gone and the kernel reports uid 0. */
#define HELD_STATES                                                                \
	((1U << TCP_ESTABLISHED) | (1U << TCP_FIN_WAIT1) | (1U << TCP_FIN_WAIT2) | \
	 (1U << TCP_CLOSE_WAIT) | (1U << TCP_LAST_ACK) | (1U << TCP_CLOSING))

struct endpoint {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* the first 4 bytes for AF_INET */
	uint16_t port;          /* network byte order */
};

/* Reads an address given to us, with an IPv4-mapped IPv6 address read as the
 * IPv4 one: the kernel looks those up in its IPv4 table. */
static int endpoint_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		if (len < (socklen_t)sizeof(*sin))
			return -EINVAL;
		ep->family = AF_INET;
		memcpy(ep->addr, &sin->sin_addr, 4);
		ep->port = sin->sin_port;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (len < (socklen_t)sizeof(*sin6))
			return -EINVAL;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			ep->family = AF_INET;
			memcpy(ep->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			ep->family = AF_INET6;
			memcpy(ep->addr, &sin6->sin6_addr, 16);
		}
		ep->port = sin6->sin6_port;
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* Reads one side of the kernel's answer the same way. The family of the
 * answer is the socket's own: an AF_INET6 socket connected to an IPv4-mapped
 * address answers an AF_INET question. */
static void endpoint_from_diag(int family, const __be32 addr[4], __be16 port, struct endpoint *ep)
{
	const unsigned char *b = (const unsigned char *)addr;

	memset(ep, 0, sizeof(*ep));
	ep->family = family;
	ep->port = port;
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
		ep->family = AF_INET;
		memcpy(ep->addr, b + 12, 4);
	} else if (family == AF_INET6) {
		memcpy(ep->addr, b, 16);
	} else {
		memcpy(ep->addr, b, 4);
	}
}

static bool endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
	size_t n = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, n) == 0;
}

/* Checks the kernel's one message against the question. */
static int read_answer(const struct nlmsghdr *h, size_t len, const struct endpoint *src,
		       const struct endpoint *dst, uid_t *uid)
{
	const struct inet_diag_msg *m;
	struct endpoint asrc, adst;

	if (!NLMSG_OK(h, len) || h->nlmsg_seq != DIAG_SEQ)
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EPROTO;
		/* An error is what the lookup found (-ENOENT: no such socket);
		 * 0 would be an acknowledgement, which was not asked for. */
		if (e->error >= 0 || e->error < -4095)
			return -EPROTO;
		return e->error;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EPROTO;
	m = NLMSG_DATA(h);
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return -EPROTO;
	endpoint_from_diag(m->idiag_family, m->id.idiag_src, m->id.idiag_sport, &asrc);
	endpoint_from_diag(m->idiag_family, m->id.idiag_dst, m->id.idiag_dport, &adst);
	if (!endpoint_equal(&asrc, src) || !endpoint_equal(&adst, dst))
		return -EPROTO;
	/* The client closed its end: the socket left is the kernel's (TIME_WAIT,
	 * or an orphan with no inode), and the kernel reports it as uid 0 (6.18
	 * does for an orphan in FIN_WAIT2 of a uid 65534 client). Nobody is left
	 * to answer, so the socket counts as gone, never as root's. */
	if (m->idiag_state == TCP_TIME_WAIT || m->idiag_inode == 0)
		return -ENOENT;
	if (m->idiag_state >= 32 || !(HELD_STATES & (1U << m->idiag_state)))
		return -EPROTO;
	*uid = m->idiag_uid;
	return 0;
}

/* A fresh netlink socket per call, not one kept open. It costs socket(2)
 * and close(2) more than a kept one: about 6.5 of the 13 microseconds a
 * lookup took on a 2-CPU test machine (10,000 lookups, 6.18 kernel). In
 * exchange, no answer left over from an earlier call (one interrupted, or
 * one that failed half-way) can ever be read as this one's, no error state
 * carries over, and threads need no lock. */
int kt_peerdiag_tcp_uid(const struct sockaddr *peer, socklen_t peerlen,
			const struct sockaddr *local, socklen_t locallen, uid_t *uid)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} q;
	union {
		struct nlmsghdr h;
		unsigned char b[DIAG_ANSWER_MAX];
	} a;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK }, from;
	socklen_t fromlen = sizeof(from);
	struct endpoint src, dst;
	ssize_t n;
	int fd = -1, ret;

	/* The peer's socket is the one whose own address is peer and whose
	 * remote address is ours. */
	ret = endpoint_from_sockaddr(peer, peerlen, &src);
	if (ret < 0)
		goto out;
	ret = endpoint_from_sockaddr(local, locallen, &dst);
	if (ret < 0)
		goto out;
	if (src.family != dst.family) {
		ret = -EINVAL;
		goto out;
	}

	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = sizeof(q);
	q.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	/* No NLM_F_DUMP: the kernel looks the one socket up by its 4-tuple. */
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.h.nlmsg_seq = DIAG_SEQ;
	q.r.sdiag_family = (uint8_t)src.family;
	q.r.sdiag_protocol = IPPROTO_TCP;
	q.r.idiag_states = HELD_STATES;
	q.r.id.idiag_sport = src.port;
	q.r.id.idiag_dport = dst.port;
	memcpy(q.r.id.idiag_src, src.addr, sizeof(src.addr));
	memcpy(q.r.id.idiag_dst, dst.addr, sizeof(dst.addr));
	q.r.id.idiag_if = LOOPBACK_IFINDEX;
	q.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	q.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	do {
		n = sendto(fd, &q, sizeof(q), 0, (const struct sockaddr *)&kernel, sizeof(kernel));
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	if ((size_t)n != sizeof(q)) {
		ret = -EPROTO;
		goto out;
	}
	/* The kernel handles the request inside sendto(2) and queues its answer
	 * (or an error) before returning, so the answer is already there: an
	 * empty queue means a kernel that broke that rule, not one to wait for. */
	do {
		n = recvfrom(fd, &a, sizeof(a), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from,
			     &fromlen);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = errno == EAGAIN ? -EPROTO : -errno;
		goto out;
	}
	/* Only the kernel (port 0) may answer, and the answer must be whole. */
	if ((size_t)n > sizeof(a) || fromlen < sizeof(from) || from.nl_family != AF_NETLINK ||
	    from.nl_pid != 0) {
		ret = -EPROTO;
		goto out;
	}
	ret = read_answer(&a.h, (size_t)n, &src, &dst, uid);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* getpwuid_r(3) with a buffer that grows until the record fits. *found is
 * false when the uid has no entry (0, or one of the codes the manual lists
 * for "not found"); any other failure is returned. */
static int pw_lookup(uid_t uid, struct passwd *pw, char **buf, bool *found)
{
	struct passwd *res = NULL;
	size_t len = PW_BUF_START;
	int rc;

	*found = false;
	*buf = NULL;
	for (;;) {
		free(*buf);
		*buf = malloc(len);
		if (*buf == NULL)
			return -ENOMEM;
		rc = getpwuid_r(uid, pw, *buf, len, &res);
		if (rc != ERANGE)
			break;
		if (len >= PW_BUF_MAX)
			return -ERANGE;
		len *= 2;
	}
	if (rc == 0 && res != NULL) {
		*found = true;
		return 0;
	}
	if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
		return 0;
	return -rc;
}

int kt_peer_from_uid(uid_t uid, struct kt_peer *out)
{
	struct passwd pw;
	char *buf = NULL;
	bool found;
	int ngroups = KT_PEER_MAX_GROUPS, got, ret;

	memset(out, 0, sizeof(*out));
	out->uid = uid;
	out->gid = (gid_t)-1;
	ret = pw_lookup(uid, &pw, &buf, &found);
	if (ret < 0)
		goto out;
	if (!found || strlen(pw.pw_name) >= sizeof(out->name)) {
		snprintf(out->name, sizeof(out->name), "%lu", (unsigned long)uid);
		if (!found)
			goto out;
	} else {
		snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
	}
	out->gid = pw.pw_gid;
	got = getgrouplist(pw.pw_name, pw.pw_gid, out->groups, &ngroups);
	if (got < 0) {
		/* glibc says -1 with a larger count when the list does not fit,
		 * and -1 with the count unchanged when it ran out of memory. As
		 * kt_peer_from_socket() does, a list too long is refused, not cut. */
		ret = ngroups > KT_PEER_MAX_GROUPS ? -E2BIG : -ENOMEM;
		goto out;
	}
	out->ngroups = (size_t)got;
out:
	free(buf);
	if (ret < 0) {
		memset(out, 0, sizeof(*out));
		out->gid = (gid_t)-1;
	}
	return ret;
}

struct peercache_entry {
	bool used;
	time_t at; /* CLOCK_MONOTONIC seconds of the lookup */
	struct kt_peer peer;
};

struct kt_peercache {
	struct peercache_entry *e;
	size_t max;
	time_t ttl;
};

#ifdef KT_UNIT_TEST
/* tests/unit/test_peerdiag.c includes this file and counts lookups. */
static unsigned long kt_test_lookups;
#endif

struct kt_peercache *kt_peercache_new(size_t max_entries, time_t ttl)
{
	struct kt_peercache *c = NULL;

	if (max_entries == 0 || ttl < 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->e = calloc(max_entries, sizeof(*c->e));
	if (c->e == NULL) {
		free(c);
		return NULL;
	}
	c->max = max_entries;
	c->ttl = ttl;
	return c;
}

void kt_peercache_free(struct kt_peercache *c)
{
	if (c == NULL)
		return;
	free(c->e);
	free(c);
}

int kt_peercache_get(struct kt_peercache *c, uid_t uid, time_t now, struct kt_peer *out)
{
	struct peercache_entry *hit = NULL, *spare = NULL, *oldest = NULL;
	int ret;

	for (size_t i = 0; i < c->max; i++) {
		struct peercache_entry *e = &c->e[i];

		if (!e->used) {
			if (spare == NULL)
				spare = e;
			continue;
		}
		if (e->peer.uid == uid)
			hit = e;
		if (oldest == NULL || e->at < oldest->at)
			oldest = e;
	}
	/* A time before the lookup can only be a clock the caller got wrong:
	 * the entry is looked up again rather than trusted. */
	if (hit != NULL && now >= hit->at && now - hit->at < c->ttl) {
		*out = hit->peer;
		return 0;
	}
#ifdef KT_UNIT_TEST
	kt_test_lookups++;
#endif
	ret = kt_peer_from_uid(uid, out);
	if (ret < 0) {
		if (hit != NULL)
			hit->used = false;
		return ret;
	}
	if (hit == NULL)
		hit = spare != NULL ? spare : oldest;
	/* A cache of no entries keeps nothing. */
	if (hit == NULL)
		return 0;
	hit->used = true;
	hit->at = now;
	hit->peer = *out;
	return 0;
}

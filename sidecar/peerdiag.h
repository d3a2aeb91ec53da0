/* Who is calling over loopback TCP: the kernel's word (NETLINK_SOCK_DIAG) on
 * the uid that owns the socket at the other end of an accepted connection,
 * and that uid's groups from the user database, with a small cache in front. */
#ifndef KT_PEERDIAG_H
#define KT_PEERDIAG_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "acl.h"

/* The uid owning the local TCP socket at the other end of an accepted
 * loopback connection. peer is the connection's remote address (accept(2) or
 * getpeername(2)), local our end (getsockname(2)); both AF_INET or both
 * AF_INET6 (IPv4-mapped IPv6 addresses are asked as IPv4).
 *
 * It is an exact lookup by the 4-tuple, answered synchronously by the kernel,
 * so it never waits on anything but that answer. The uid is the one the
 * socket was created with, as SO_PEERCRED's is the one at connect time: a
 * socket passed to another process keeps its creator's uid.
 *
 * Only a socket still held open by a process counts: one its owner closed
 * (an orphan in FIN_WAIT, or TIME_WAIT) gives -ENOENT, because the kernel
 * reports such sockets as uid 0. A client that only shut down its writing
 * side (shutdown(SHUT_WR)) still holds its socket and is still found.
 *
 * Returns 0 and sets *uid, or a negative errno: -ENOENT when there is no such
 * socket (closed, or not on this host), -EAFNOSUPPORT for a family other than
 * AF_INET and AF_INET6, -EINVAL for short or mismatched addresses, -EPROTO
 * for an answer that does not match what was asked (family, addresses,
 * ports, sequence, sender) or that describes no connected socket (LISTEN,
 * SYN_RECV...), or the error of socket(2)/sendto(2)/recvfrom(2) (-EMFILE,
 * -ENOBUFS...). *uid is set only on success. Thread-safe: each call uses a
 * netlink socket of its own. */
int kt_peerdiag_tcp_uid(const struct sockaddr *peer, socklen_t peerlen,
			const struct sockaddr *local, socklen_t locallen, uid_t *uid);

/* Fills *out for a uid known only by number (a TCP peer): the uid, its
 * primary gid and supplementary groups from the user database (getpwuid_r,
 * getgrouplist), its name, pid 0. A uid with no entry gets its number in
 * digits as its name, gid (gid_t)-1 and no groups. Like
 * kt_peer_from_socket(), a user in more than KT_PEER_MAX_GROUPS groups is
 * refused (-E2BIG) rather than cut short. Returns 0 or a negative errno
 * (-ENOMEM, -E2BIG, or the user database's error such as -EIO). It may block
 * as long as the user database takes (NSS: files, LDAP, sssd...).
 * Thread-safe. */
int kt_peer_from_uid(uid_t uid, struct kt_peer *out);

/* A small cache in front of kt_peer_from_uid(), so that a flood of
 * connections from one uid costs one user database lookup per ttl seconds.
 * Owned by one thread; not locked. */
struct kt_peercache;

/* A cache of at most max_entries uids (at least 1), each trusted for ttl
 * seconds (0: never trusted, every get looks up). NULL with errno set
 * (EINVAL, ENOMEM) on failure. */
struct kt_peercache *kt_peercache_new(size_t max_entries, time_t ttl);
void kt_peercache_free(struct kt_peercache *c);

/* Copies the entry for uid into *out, looking it up again when it is
 * missing or ttl seconds old (now is CLOCK_MONOTONIC seconds). When the cache
 * is full, the entry looked up longest ago makes room. A failed lookup is
 * returned and not kept, and drops any older entry for that uid. Returns 0
 * or kt_peer_from_uid()'s error. */
int kt_peercache_get(struct kt_peercache *c, uid_t uid, time_t now, struct kt_peer *out);

#endif

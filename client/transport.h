/* libkeyturn's connection to keyturnd: checks that the socket and the
 * process behind it belong to root or the service user, sends one framed
 * request and reads one framed answer within a deadline, and reconnects
 * after an idle close or a fork. Bytes in, bytes out: no JSON here. */
#ifndef KT_TRANSPORT_H
#define KT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/kt_buf.h"

#define KT_TRANSPORT_DEFAULT_TIMEOUT_MS 5000
#define KT_TRANSPORT_DEFAULT_SOCKET RUNSTATEDIR "/keyturn/keyturnd.sock"

struct kt_transport {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;         /* -1 while not connected */
	pid_t pid;      /* the process that made fd: another one must not use it */
	dev_t dev;      /* fd's identity, to notice that the application closed */
	ino_t ino;      /* our descriptor and the number now names something else */
	bool used;      /* fd has carried an answer already (so it may have gone idle) */
	int timeout_ms; /* for one whole call: connect, send and answer */
	bool no_env;    /* never read KEYTURN_SOCKET_OWNER (pam_keyturn's handles) */
	char msg[256];  /* why the last call failed; never holds a secret */
};

/* Every function returns 0 or one of these negative errnos, which the
 * library maps to its codes; t->msg then says what happened:
 *   -ECONNREFUSED  the daemon cannot be reached (no socket, connect, send or
 *                  receive failed, or it closed the connection unanswered)
 *   -EPERM         the socket file or the peer is not root's or the service user's
 *   -EPROTO        a zero-length, oversize or cut answer frame
 *   -ETIMEDOUT     no connection or no whole answer before the deadline
 *   -ENOMEM        out of memory
 *   -EMSGSIZE      the request does not fit in one frame
 *   -ENAMETOOLONG  the path does not fit in sun_path (init only)
 *   -EINVAL        an empty path (init only) */

/* The socket a caller means: path when given, else $KEYTURN_SOCKET (read
 * with secure_getenv, and only when use_env: a set-user-ID program must not
 * be pointed at a socket of its caller's choosing), else
 * KT_TRANSPORT_DEFAULT_SOCKET. Never NULL. Inline: the fuzz target links
 * libkeyturn.c with a transport of its own. */
static inline const char *kt_transport_path(const char *path, bool use_env)
{
	if (use_env && (path == NULL || *path == '\0'))
		path = secure_getenv("KEYTURN_SOCKET");
	if (path == NULL || *path == '\0')
		path = KT_TRANSPORT_DEFAULT_SOCKET;
	return path;
}

/* Sets t up for path; connects nothing yet. */
int kt_transport_init(struct kt_transport *t, const char *path);

/* Sends req (one JSON payload, len bytes) and reads the answer's payload into
 * answer, which is reset first (its limit should be KT_PROTO_MAX_FRAME).
 * Connects when needed. A connection that the daemon closed before the first
 * byte of the answer is made again once and the request sent again. On any
 * failure the connection is closed, so a late answer is never read as the
 * answer to the next request. The frame holding req is wiped. */
int kt_transport_call(struct kt_transport *t, const char *req, size_t len, struct kt_buf *answer);

/* Reads one more frame on the connection a call made (a watch's news):
 * waits up to wait_ms (-1: no limit; a signal ends the wait early) for its
 * first byte, then reads it whole within the handle's timeout into answer
 * (reset first). -ETIMEDOUT when nothing came (the connection stays); on
 * any other failure the connection is closed: -ECONNREFUSED when the
 * daemon closed it or there is none, -EPROTO for a bad or cut frame. */
int kt_transport_recv(struct kt_transport *t, int wait_ms, struct kt_buf *answer);

/* Closes the connection, if any, without shutdown(): after a fork the other
 * process may still be using the same socket. */
void kt_transport_disconnect(struct kt_transport *t);

#ifdef KT_UNIT_TEST
/* Hands t an already connected descriptor (one end of a socketpair), as if
 * kt_transport_call had just connected it; the trust checks are skipped. */
void kt_transport_adopt(struct kt_transport *t, int fd);
#endif

#endif

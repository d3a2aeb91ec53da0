/* libkeyturn's connection to keyturnd, in the manner of SSSD's client: the
 * socket file and the process listening on it must belong to root or to the
 * service user before a byte is sent, every wait is bounded by the handle's
 * deadline, and a connection is never shared between two processes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/proto.h"
#include "common/secmem.h"
#include "transport.h"

#define SERVICE_USER "keyturn"
#define OWNER_ENV "KEYTURN_SOCKET_OWNER"

/* Internal only: the daemon closed the connection before the first byte of
 * the answer, which may be an idle close and is worth one more try. */
#define TR_CLOSED (-ECONNRESET)

/* The uids that may own the socket and serve on it. */
struct owners {
	uid_t uid[3];
	size_t n;
	bool env_unknown; /* KEYTURN_SOCKET_OWNER names no user */
};

static int fail(struct kt_transport *t, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct kt_transport *t, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
	return rc;
}

static const char *errstr(int e, char *buf, size_t n)
{
	return strerror_r(e, buf, n);
}

/* Looks a user up by name. Returns 0, -ENOENT when there is no such user
 * (or the lookup fails: only root is trusted then), or -ENOMEM. */
static int lookup_user(const char *name, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	size_t size = 4096;
	char *buf = NULL;
	int rc, e;

	for (;;) {
		buf = malloc(size);
		if (buf == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		e = getpwnam_r(name, &pw, buf, size, &res);
		if (e != ERANGE || size >= 1024 * 1024)
			break;
		free(buf);
		buf = NULL;
		size *= 2;
	}
	if (e == 0 && res != NULL) {
		*uid = pw.pw_uid;
		rc = 0;
	} else {
		rc = -ENOENT;
	}
out:
	free(buf);
	return rc;
}

/* Root, the service user when it exists, and the owner that the environment
 * names (digits are a uid). secure_getenv(): a set-user-ID program such as su
 * must not be talked into trusting a socket of the caller's choosing. A
 * handle made with no_env (pam_keyturn's) never reads the environment: a
 * PAM application's environment is its user's, not the administrator's. */
static int owners_get(const struct kt_transport *t, struct owners *o)
{
	const char *env = t->no_env ? NULL : secure_getenv(OWNER_ENV);
	uid_t uid;
	int rc;

	o->n = 0;
	o->env_unknown = false;
	o->uid[o->n++] = 0;
	rc = lookup_user(SERVICE_USER, &uid);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0)
		o->uid[o->n++] = uid;
	if (env == NULL || *env == '\0')
		return 0;
	if (env[0] >= '0' && env[0] <= '9') {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(env, &end, 10);
		if (errno == 0 && *end == '\0' && v < (uid_t)-1) {
			o->uid[o->n++] = (uid_t)v;
			return 0;
		}
		o->env_unknown = true;
		return 0;
	}
	rc = lookup_user(env, &uid);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0)
		o->uid[o->n++] = uid;
	else
		o->env_unknown = true;
	return 0;
}

static bool owner_ok(const struct owners *o, uid_t uid)
{
	for (size_t i = 0; i < o->n; i++) {
		if (o->uid[i] == uid)
			return true;
	}
	return false;
}

static const char *owners_hint(const struct kt_transport *t, const struct owners *o)
{
	if (o->env_unknown)
		return " (" OWNER_ENV " names no user)";
	if (!t->no_env && secure_getenv(OWNER_ENV) != NULL)
		return " nor the user that " OWNER_ENV " names";
	return "";
}

static void deadline_set(struct timespec *d, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds until the deadline, rounded up so that poll() never wakes
 * just before it and spins; 0 once it has passed. */
static int ms_left(const struct timespec *d)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = ((int64_t)d->tv_sec - now.tv_sec) * 1000000000LL + (d->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	ns = (ns + 999999) / 1000000;
	return ns > INT_MAX ? INT_MAX : (int)ns;
}

/* Waits until fd is ready for events. Returns 0, -ETIMEDOUT, or
 * -ECONNREFUSED when poll() itself fails. */
static int wait_fd(struct kt_transport *t, int fd, short events, const struct timespec *d)
{
	struct pollfd p = { .fd = fd, .events = events };
	char eb[128];

	for (;;) {
		int ms = ms_left(d);
		int n = poll(&p, 1, ms);

		if (n > 0)
			return 0;
		if (n == 0 && ms == 0)
			return fail(t, -ETIMEDOUT, "no answer from keyturnd on %s within %d ms",
				    t->path, t->timeout_ms);
		if (n < 0 && errno != EINTR)
			return fail(t, -ECONNREFUSED, "poll on %s: %s", t->path,
				    errstr(errno, eb, sizeof(eb)));
	}
}

/* A non-blocking connect. Unix sockets never answer EINPROGRESS on Linux:
 * a full listen backlog is EAGAIN, and the connect has to be tried again. */
static int connect_wait(struct kt_transport *t, int fd, const struct timespec *d)
{
	struct sockaddr_un sa;
	socklen_t elen = sizeof(int);
	char eb[128];
	int e, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, t->path, strlen(t->path));
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		e = errno;
		if (e == EAGAIN) {
			int ms = ms_left(d);

			if (ms == 0)
				return fail(t, -ETIMEDOUT,
					    "keyturnd on %s accepts no connection "
					    "within %d ms",
					    t->path, t->timeout_ms);
			poll(NULL, 0, ms < 10 ? ms : 10);
			continue;
		}
		if (e == EINPROGRESS || e == EINTR)
			break;
		return fail(t, -ECONNREFUSED, "cannot connect to %s: %s", t->path,
			    errstr(e, eb, sizeof(eb)));
	}
	rc = wait_fd(t, fd, POLLOUT, d);
	if (rc < 0)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
		e = errno;
	if (e != 0)
		return fail(t, -ECONNREFUSED, "cannot connect to %s: %s", t->path,
			    errstr(e, eb, sizeof(eb)));
	return 0;
}

static int tr_connect(struct kt_transport *t, const struct timespec *d)
{
	struct owners own;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct stat st;
	char eb[128];
	int fd = -1, rc;

	rc = owners_get(t, &own);
	if (rc < 0) {
		rc = fail(t, rc, "out of memory");
		goto out;
	}
	if (lstat(t->path, &st) < 0) {
		rc = fail(t, -ECONNREFUSED, "cannot connect to %s: %s", t->path,
			  errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		rc = fail(t, -EPERM, "%s is not a socket", t->path);
		goto out;
	}
	if (!owner_ok(&own, st.st_uid)) {
		rc = fail(t, -EPERM, "%s belongs to uid %u, neither root nor the %s user%s",
			  t->path, (unsigned)st.st_uid, SERVICE_USER, owners_hint(t, &own));
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = fail(t, errno == ENOMEM || errno == ENOBUFS ? -ENOMEM : -ECONNREFUSED,
			  "cannot make a socket: %s", errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	rc = connect_wait(t, fd, d);
	if (rc < 0)
		goto out;
	/* The socket file may have been swapped since lstat(); the kernel's
	 * record of the listening process is what counts. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		rc = fail(t, -ECONNREFUSED, "cannot read the credentials of the peer on %s: %s",
			  t->path, errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	if (!owner_ok(&own, cred.uid)) {
		rc = fail(t, -EPERM,
			  "the process serving %s runs as uid %u, neither root nor the "
			  "%s user%s",
			  t->path, (unsigned)cred.uid, SERVICE_USER, owners_hint(t, &own));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = fail(t, -ECONNREFUSED, "fstat on the socket: %s",
			  errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	t->fd = fd;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->pid = getpid();
	t->used = false;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Whether t->fd is still the socket we made: an application that closes
 * descriptors it does not own (after a fork, say) may have let the number be
 * reused, and that descriptor is not ours to write to or to close. */
static bool fd_is_ours(const struct kt_transport *t)
{
	struct stat st;

	return fstat(t->fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == t->dev &&
	       st.st_ino == t->ino;
}

void kt_transport_disconnect(struct kt_transport *t)
{
	if (t->fd >= 0 && fd_is_ours(t))
		close(t->fd);
	t->fd = -1;
	t->used = false;
}

/* Makes sure there is a connection this process may use. *reused tells
 * whether it carried an earlier request (and so may have been closed by
 * the daemon as idle since). */
static int tr_ready(struct kt_transport *t, const struct timespec *d, bool *reused)
{
	*reused = false;
	if (t->fd >= 0 && !fd_is_ours(t))
		t->fd = -1;
	/* A child after fork() shares the socket with its parent: it only drops
	 * its own reference, never shutdown(), which would cut the parent's. */
	if (t->fd >= 0 && t->pid != getpid())
		kt_transport_disconnect(t);
	/* A used connection that is readable now has been closed by the daemon
	 * (idle timeout, restart) or carries bytes nobody asked for. */
	if (t->fd >= 0 && t->used) {
		struct pollfd p = { .fd = t->fd, .events = POLLIN | POLLRDHUP };

		if (poll(&p, 1, 0) != 0)
			kt_transport_disconnect(t);
	}
	if (t->fd >= 0) {
		*reused = t->used;
		return 0;
	}
	return tr_connect(t, d);
}

static int send_all(struct kt_transport *t, const char *p, size_t n, const struct timespec *d)
{
	char eb[128];
	int rc;

	while (n > 0) {
		ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(t, t->fd, POLLOUT, d);
			if (rc < 0)
				return rc;
			continue;
		}
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return TR_CLOSED;
		return fail(t, -ECONNREFUSED, "cannot send to %s: %s", t->path,
			    w < 0 ? errstr(errno, eb, sizeof(eb)) : "nothing sent");
	}
	return 0;
}

/* Reads exactly n bytes into p (when p is not NULL) or appends them to b.
 * *got counts the bytes of the answer read so far: before the first one, a
 * closed connection is TR_CLOSED; after it, a cut answer is -EPROTO. */
static int recv_exact(struct kt_transport *t, void *p, struct kt_buf *b, size_t n, size_t *got,
		      const struct timespec *d)
{
	char chunk[16384];
	char eb[128];
	int rc = 0;

	while (n > 0) {
		size_t want = n < sizeof(chunk) ? n : sizeof(chunk);
		ssize_t r = recv(t->fd, p != NULL ? p : chunk, want, 0);

		if (r > 0) {
			if (p != NULL) {
				p = (char *)p + r;
			} else if ((rc = kt_buf_append(b, chunk, (size_t)r)) < 0) {
				rc = fail(t, -ENOMEM, "out of memory");
				goto out;
			}
			n -= (size_t)r;
			*got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(t, t->fd, POLLIN, d);
			if (rc < 0)
				goto out;
			continue;
		}
		if (*got == 0 && (r == 0 || errno == ECONNRESET)) {
			rc = TR_CLOSED;
			goto out;
		}
		if (*got == 0) {
			rc = fail(t, -ECONNREFUSED, "cannot read from %s: %s", t->path,
				  errstr(errno, eb, sizeof(eb)));
			goto out;
		}
		rc = fail(t, -EPROTO, "keyturnd's answer on %s was cut short: %s", t->path,
			  r == 0 ? "end of file" : errstr(errno, eb, sizeof(eb)));
		goto out;
	}
out:
	kt_wipe(chunk, sizeof(chunk));
	return rc;
}

static int tr_exchange(struct kt_transport *t, const struct kt_buf *frame, struct kt_buf *answer,
		       const struct timespec *d)
{
	unsigned char hdr[KT_PROTO_HDR];
	const char *payload;
	size_t got = 0, plen, flen;
	uint32_t n;
	int rc;

	rc = send_all(t, frame->data, frame->len, d);
	if (rc < 0)
		return rc;
	rc = recv_exact(t, hdr, NULL, sizeof(hdr), &got, d);
	if (rc < 0)
		return rc;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (kt_proto_unframe((const char *)hdr, sizeof(hdr), &payload, &plen, &flen) < 0)
		return fail(t, -EPROTO,
			    "keyturnd announced an answer of %u bytes (allowed: 1 to "
			    "%u)",
			    (unsigned)n, KT_PROTO_MAX_FRAME);
	return recv_exact(t, NULL, answer, n, &got, d);
}

int kt_transport_init(struct kt_transport *t, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->timeout_ms = KT_TRANSPORT_DEFAULT_TIMEOUT_MS;
	if (path == NULL || *path == '\0')
		return fail(t, -EINVAL, "no socket path");
	if (strlen(path) >= sizeof(t->path))
		return fail(t, -ENAMETOOLONG, "the socket path is longer than %zu bytes",
			    sizeof(t->path) - 1);
	memcpy(t->path, path, strlen(path) + 1);
	return 0;
}

int kt_transport_call(struct kt_transport *t, const char *req, size_t len, struct kt_buf *answer)
{
	struct kt_buf frame = KT_BUF_INIT(KT_PROTO_HDR + KT_PROTO_MAX_REQUEST);
	struct timespec d;
	bool reused;
	int rc;

	t->msg[0] = '\0';
	kt_buf_reset(answer);
	rc = kt_proto_frame(&frame, req, len);
	if (rc == -ENOMEM) {
		rc = fail(t, rc, "out of memory");
		goto out;
	}
	if (rc < 0) {
		/* The daemon would close the connection at the header. */
		rc = fail(t, -EMSGSIZE, "the request is larger than %u bytes",
			  KT_PROTO_MAX_REQUEST);
		goto out;
	}
	deadline_set(&d, t->timeout_ms);
	for (int attempt = 0;; attempt++) {
		rc = tr_ready(t, &d, &reused);
		if (rc < 0)
			break;
		rc = tr_exchange(t, &frame, answer, &d);
		if (rc != TR_CLOSED)
			break;
		/* Nothing of the answer came: the daemon may have closed the
		 * connection as idle just as the request went out. A connection
		 * made for this request gets no second try: the daemon closed it
		 * on purpose (too many connections, stopping). */
		kt_transport_disconnect(t);
		if (!reused || attempt > 0) {
			rc = fail(t, -ECONNREFUSED,
				  "keyturnd closed the connection on %s "
				  "without answering",
				  t->path);
			break;
		}
	}
	if (rc < 0) {
		kt_transport_disconnect(t);
		kt_buf_reset(answer);
	} else {
		t->used = true;
	}
out:
	kt_buf_free(&frame);
	return rc;
}

int kt_transport_recv(struct kt_transport *t, int wait_ms, struct kt_buf *answer)
{
	struct pollfd p = { .fd = t->fd, .events = POLLIN };
	unsigned char hdr[KT_PROTO_HDR];
	const char *payload;
	size_t got = 0, plen, flen;
	struct timespec d;
	char eb[128];
	uint32_t n;
	int rc;

	t->msg[0] = '\0';
	kt_buf_reset(answer);
	if (t->fd < 0 || !fd_is_ours(t) || t->pid != getpid()) {
		t->fd = -1;
		return fail(t, -ECONNREFUSED, "no connection to %s", t->path);
	}
	/* A signal ends the wait early, as a timeout: the caller decides
	 * whether to wait again. */
	rc = poll(&p, 1, wait_ms < 0 ? -1 : wait_ms);
	if (rc == 0 || (rc < 0 && errno == EINTR))
		return fail(t, -ETIMEDOUT, "no news from keyturnd on %s", t->path);
	if (rc < 0) {
		rc = fail(t, -ECONNREFUSED, "poll on %s: %s", t->path,
			  errstr(errno, eb, sizeof(eb)));
		goto out;
	}
	/* Once a frame has begun, the rest must come within the handle's
	 * timeout, as an answer's does. */
	deadline_set(&d, t->timeout_ms);
	rc = recv_exact(t, hdr, NULL, sizeof(hdr), &got, &d);
	if (rc == TR_CLOSED)
		rc = fail(t, -ECONNREFUSED, "keyturnd closed the connection on %s", t->path);
	if (rc < 0)
		goto out;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (kt_proto_unframe((const char *)hdr, sizeof(hdr), &payload, &plen, &flen) < 0) {
		rc = fail(t, -EPROTO, "keyturnd announced a frame of %u bytes (allowed: 1 to %u)",
			  (unsigned)n, KT_PROTO_MAX_FRAME);
		goto out;
	}
	rc = recv_exact(t, NULL, answer, n, &got, &d);
out:
	if (rc < 0) {
		kt_transport_disconnect(t);
		kt_buf_reset(answer);
	}
	return rc;
}

#ifdef KT_UNIT_TEST
void kt_transport_adopt(struct kt_transport *t, int fd)
{
	struct stat st;

	kt_transport_disconnect(t);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (fstat(fd, &st) == 0) {
		t->dev = st.st_dev;
		t->ino = st.st_ino;
	}
	t->fd = fd;
	t->pid = getpid();
	t->used = false;
}
#endif

/* The sd_notify protocol without libsystemd: short "KEY=value" texts sent as
 * datagrams to the AF_UNIX socket named by NOTIFY_SOCKET, so that a
 * Type=notify unit learns when keyturnd is ready, reloading or stopping. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* systemd reads one notification into a buffer of PIPE_BUF bytes and drops
 * what does not fit, so a longer text is refused here instead. */
#define NOTIFY_MAX 4096

/* Owned by the thread that runs the event loop; nothing here is locked. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
/* The last READY=1's status and a standing problem (kt_notify_problem). */
static char notify_status[512];
static char notify_problem[1024];

/* NOTIFY_SOCKET is an absolute path or, with a leading '@', a name in the
 * abstract namespace. systemd also knows "vsock:" addresses, which a daemon
 * on the host itself is never given; they are refused like any other form. */
static int notify_parse_addr(const char *s, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = strlen(s);
	int rc = 0;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (s[0] == '/') {
		if (n >= sizeof(sa->sun_path)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		memcpy(sa->sun_path, s, n + 1);
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	} else if (s[0] == '@') {
		/* The '@' stands for the leading NUL byte; the name is not
		 * NUL-terminated, its length is part of the address. */
		if (n < 2) {
			rc = -EINVAL;
			goto out;
		}
		if (n > sizeof(sa->sun_path)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		sa->sun_path[0] = '\0';
		memcpy(sa->sun_path + 1, s + 1, n - 1);
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		rc = -EAFNOSUPPORT;
	}
out:
	return rc;
}

int kt_notify_init(void)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen = 0;
	int fd = -1;
	int rc = 0;

	kt_notify_close();
	if (env == NULL || env[0] == '\0')
		goto out;
	rc = notify_parse_addr(env, &sa, &salen);
	if (rc < 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	/* Connecting now, while still root, is where the kernel checks that we
	 * may write to the socket; sends on the connected socket are not
	 * checked again, so notifications keep working as the service user. */
	if (connect(fd, (const struct sockaddr *)&sa, salen) != 0) {
		rc = -errno;
		goto out;
	}
	notify_fd = fd;
	fd = -1;
	notify_addr = sa;
	notify_addrlen = salen;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static ssize_t notify_send_once(const char *msg, size_t len, bool to_addr)
{
	/* Never block the event loop on a full queue (the caller may retry at
	 * the next watchdog tick), and never die of SIGPIPE. */
	const int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	ssize_t n;

	do {
		if (to_addr)
			n = sendto(notify_fd, msg, len, flags,
				   (const struct sockaddr *)&notify_addr, notify_addrlen);
		else
			n = send(notify_fd, msg, len, flags);
	} while (n < 0 && errno == EINTR);
	return n;
}

static int notify_send(const char *msg, size_t len)
{
	ssize_t n;
	int rc = 0;

	n = notify_send_once(msg, len, false);
	/* A receiver that closed its socket and bound a new one at the same
	 * address leaves us connected to nothing; address it afresh. */
	if (n < 0 && (errno == ECONNREFUSED || errno == ENOTCONN || errno == ECONNRESET))
		n = notify_send_once(msg, len, true);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EMSGSIZE;
	return rc;
}

int kt_notify(const char *fmt, ...)
{
	char msg[NOTIFY_MAX];
	va_list ap;
	int n;
	int rc = 0;

	if (notify_fd < 0)
		goto out;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0) {
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)n >= sizeof(msg)) {
		rc = -EMSGSIZE;
		goto out;
	}
	rc = notify_send(msg, (size_t)n);
out:
	return rc;
}

int kt_notify_ready(const char *status)
{
	int rc;

	/* A newline would start a field of the caller's choosing. */
	if (status != NULL && strchr(status, '\n') != NULL) {
		rc = -EINVAL;
		goto out;
	}
	snprintf(notify_status, sizeof(notify_status), "%s", status != NULL ? status : "");
	if (notify_problem[0] != '\0')
		rc = kt_notify("READY=1\nSTATUS=%s%s%s", notify_status,
			       notify_status[0] != '\0' ? "; " : "", notify_problem);
	else if (notify_status[0] != '\0')
		rc = kt_notify("READY=1\nSTATUS=%s", notify_status);
	else
		rc = kt_notify("READY=1");
out:
	return rc;
}

int kt_notify_problem(const char *problem)
{
	char *nl;

	snprintf(notify_problem, sizeof(notify_problem), "%s", problem != NULL ? problem : "");
	while ((nl = strchr(notify_problem, '\n')) != NULL)
		*nl = ' ';
	if (notify_problem[0] == '\0')
		return kt_notify("STATUS=%s", notify_status);
	return kt_notify("STATUS=%s%s%s", notify_status, notify_status[0] != '\0' ? "; " : "",
			 notify_problem);
}

/* systemd's Type=notify-reload wants the monotonic time of the reload, so
 * that it can tell this reload's READY=1 from an earlier one. */
int kt_notify_reloading(void)
{
	struct timespec ts;
	uint64_t usec;
	int rc;

	if (notify_fd < 0) {
		rc = 0;
		goto out;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		rc = -errno;
		goto out;
	}
	usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	rc = kt_notify("RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
out:
	return rc;
}

int kt_notify_stopping(void)
{
	return kt_notify("STOPPING=1");
}

int kt_notify_watchdog(void)
{
	return kt_notify("WATCHDOG=1");
}

/* Reads a plain decimal number from the environment: 0, -ENOENT when the
 * variable is unset or empty, -EINVAL for a sign, blanks or trailing text. */
static int notify_env_u64(const char *name, uint64_t *out)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end = NULL;
	int rc = 0;

	if (s == NULL || s[0] == '\0') {
		rc = -ENOENT;
		goto out;
	}
	if (s[0] < '0' || s[0] > '9') {
		rc = -EINVAL;
		goto out;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		rc = -EINVAL;
		goto out;
	}
	*out = (uint64_t)v;
out:
	return rc;
}

uint64_t kt_notify_watchdog_usec(void)
{
	uint64_t usec = 0;
	uint64_t pid = 0;
	int rc;

	if (notify_env_u64("WATCHDOG_USEC", &usec) < 0) {
		usec = 0;
		goto out;
	}
	/* WATCHDOG_PID says whom the request is for; a child that inherited
	 * the environment must not think it is being watched. */
	rc = notify_env_u64("WATCHDOG_PID", &pid);
	if (rc == -ENOENT)
		goto out;
	if (rc < 0 || pid != (uint64_t)getpid())
		usec = 0;
out:
	return usec;
}

void kt_notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addrlen = 0;
}

/* Binding keyturnd's Unix socket: run as root before the privilege drop. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server.h"

int kt_server_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	bool made_dir = false;
	mode_t old;
	int fd = -1, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0) {
			/* 0755 whatever the umask, so every user can reach it. */
			made_dir = true;
			if (chmod(dir, 0755) < 0) {
				rc = -errno;
				snprintf(err, errlen, "cannot set the mode of %s: %s", dir,
					 strerror(errno));
				return rc;
			}
		} else if (errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	/* A socket left by a daemon that died is in the way; a running daemon
	 * would be too, but two daemons on one socket is an operator's error
	 * that systemd prevents. */
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot remove old socket %s: %s", path, strerror(errno));
		goto fail;
	}
	/* Anyone may connect; who may read what is decided per request from
	 * the peer's credentials. */
	old = umask(0111);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chown(path, owner, group) < 0 && geteuid() == 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot chown %s: %s", path, strerror(errno));
		goto fail;
	}
	/* A directory made here becomes the service user's, so the daemon can
	 * remove its socket after the drop: only now, after the bind, so that
	 * root needs no CAP_DAC_OVERRIDE to create the socket in it. */
	if (made_dir && geteuid() == 0 && chown(dir, owner, group) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot give %s to the service user: %s", dir, strerror(errno));
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}


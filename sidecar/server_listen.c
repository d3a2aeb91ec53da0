/* Binding keyturnd's Unix socket (as root before the privilege drop), and
 * watching its path while the daemon runs: a socket file removed, or its
 * directory, leaves open connections working but new clients locked out,
 * so the path is looked at every few seconds and bound again where the
 * daemon (by then the service user) can. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "notify.h"
#include "common/secmem.h"
#include "server.h"

/* How often the path is looked at (monotonic seconds): one stat(), so a
 * short interval costs nothing and a lost socket is noticed quickly. */
#define WATCH_INTERVAL 5

struct kt_sockwatch {
	char *path;
	dev_t dev; /* the socket file this daemon bound last */
	ino_t ino;
	bool known;
	enum kt_sock_state state;
	time_t since;      /* wall clock, for status: when the state began */
	time_t next_check; /* monotonic */
	char detail[300];  /* why it cannot be bound again, or what is there */
	unsigned long rebound;
};

/* remove_stale: at start a socket left by a daemon that died is removed;
 * a rebind while running only ever binds where nothing is. */
static int listen_at(const char *path, uid_t owner, gid_t group, bool remove_stale, char *err,
		     size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	bool made_dir = false;
	mode_t old;
	int fd = -1, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		kt_errf(err, errlen, "socket path %s is longer than %zu bytes", path,
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
				kt_errf(err, errlen, "cannot set the mode of %s: %s", dir,
					strerror(-rc));
				return rc;
			}
		} else if (errno != EEXIST) {
			rc = -errno;
			kt_errf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		kt_errf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	/* A socket left by a daemon that died is in the way; a running daemon
	 * would be too, but two daemons on one socket is an operator's error
	 * that systemd prevents. */
	if (remove_stale && unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		kt_errf(err, errlen, "cannot remove old socket %s: %s", path, strerror(-rc));
		goto fail;
	}
	/* Anyone may connect; who may read what is decided per request from
	 * the peer's credentials. */
	old = umask(0111);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot bind %s: %s", path, strerror(-rc));
		goto fail;
	}
	/* Only root gives the socket away; anyone else already owns it (and a
	 * unit's SystemCallFilter=~@privileged refuses chown). */
	if (geteuid() == 0 && chown(path, owner, group) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot chown %s: %s", path, strerror(-rc));
		goto fail;
	}
	/* A directory made here becomes the service user's, so the daemon can
	 * remove its socket after the drop: only now, after the bind, so that
	 * root needs no CAP_DAC_OVERRIDE to create the socket in it. */
	if (made_dir && geteuid() == 0 && chown(dir, owner, group) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot give %s to the service user: %s", dir, strerror(-rc));
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot listen on %s: %s", path, strerror(-rc));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

int kt_server_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
	return listen_at(path, owner, group, true, err, errlen);
}

static const char *state_name(enum kt_sock_state st)
{
	switch (st) {
	case KT_SOCK_OK:
		return "ok";
	case KT_SOCK_MISSING:
		return "missing";
	case KT_SOCK_REPLACED:
		return "replaced";
	}
	return "?";
}

/* Records the socket file now at the path as this daemon's own. */
static void remember(struct kt_sockwatch *w)
{
	struct stat st;

	w->known = stat(w->path, &st) == 0 && S_ISSOCK(st.st_mode);
	if (w->known) {
		w->dev = st.st_dev;
		w->ino = st.st_ino;
	}
}

int kt_sockwatch_new(const char *path, struct kt_sockwatch **out)
{
	struct kt_sockwatch *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->path = kt_strdup(path)) == NULL) {
		free(w);
		return -ENOMEM;
	}
	remember(w);
	w->state = KT_SOCK_OK;
	w->since = time(NULL);
	*out = w;
	return 0;
}

void kt_sockwatch_free(struct kt_sockwatch *w)
{
	if (w == NULL)
		return;
	free(w->path);
	free(w);
}

bool kt_sockwatch_ours(const struct kt_sockwatch *w)
{
	struct stat st;

	return w->known && stat(w->path, &st) == 0 && st.st_dev == w->dev && st.st_ino == w->ino;
}

/* Tells systemd (STATUS=) and nothing else: the log line is the caller's. */
static void tell_systemd(const struct kt_sockwatch *w)
{
	char msg[512];

	if (w->state == KT_SOCK_OK) {
		kt_notify_problem(NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "socket %s %s: new clients cannot connect%s%s", w->path,
		 state_name(w->state), w->detail[0] != '\0' ? "; " : "", w->detail);
	kt_notify_problem(msg);
}

static void set_state(struct kt_sockwatch *w, enum kt_sock_state st, const char *detail)
{
	bool changed = st != w->state || strcmp(detail, w->detail) != 0;

	if (st != w->state)
		w->since = time(NULL);
	w->state = st;
	snprintf(w->detail, sizeof(w->detail), "%s", detail);
	if (changed)
		tell_systemd(w);
}

int kt_sockwatch_check(struct kt_sockwatch *w, time_t now)
{
	struct stat st;
	char err[256];
	int fd;

	if (now < w->next_check)
		return -1;
	w->next_check = now + WATCH_INTERVAL;
	if (stat(w->path, &st) == 0) {
		if (w->known && st.st_dev == w->dev && st.st_ino == w->ino) {
			if (w->state != KT_SOCK_OK)
				log_info("socket %s is back", w->path);
			set_state(w, KT_SOCK_OK, "");
			return -1;
		}
		/* Someone else's file (or socket) is there: it is left alone,
		 * since removing it could take the path from another daemon. */
		if (w->state != KT_SOCK_REPLACED)
			log_err("socket %s was replaced by another file; new clients cannot reach "
				"keyturnd until it is removed (keyturnd then binds the path again) "
				"or keyturnd is restarted",
				w->path);
		set_state(w, KT_SOCK_REPLACED, "another file is at the path");
		return -1;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		kt_errf(err, sizeof(err), "cannot look at it: %s", strerror(errno));
		if (w->state == KT_SOCK_OK || strcmp(err, w->detail) != 0)
			log_err("socket %s: %s", w->path, err);
		set_state(w, w->state == KT_SOCK_OK ? KT_SOCK_MISSING : w->state, err);
		return -1;
	}
	if (w->state != KT_SOCK_MISSING)
		log_err("socket %s is gone (removed while keyturnd runs): new clients cannot "
			"connect; binding it again",
			w->path);
	/* As the service user now: its own directory can be written, and one
	 * that is gone can be made again where the parent allows. */
	fd = listen_at(w->path, geteuid(), getegid(), false, err, sizeof(err));
	if (fd < 0) {
		if (w->state != KT_SOCK_MISSING || strcmp(err, w->detail) != 0)
			log_err("socket %s cannot be bound again: %s; new clients cannot connect "
				"until it can, or keyturnd is restarted",
				w->path, err);
		set_state(w, KT_SOCK_MISSING, err);
		return -1;
	}
	remember(w);
	w->rebound++;
	log_info("socket %s bound again; new clients can connect", w->path);
	set_state(w, KT_SOCK_OK, "");
	return fd;
}

struct json_object *kt_sockwatch_json(const struct kt_sockwatch *w)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "path", json_object_new_string(w->path));
	json_object_object_add(o, "state", json_object_new_string(state_name(w->state)));
	json_object_object_add(o, "since", json_object_new_int64(w->since));
	json_object_object_add(o, "detail",
			       w->detail[0] != '\0' ? json_object_new_string(w->detail) : NULL);
	json_object_object_add(o, "rebound", json_object_new_int64((int64_t)w->rebound));
	return o;
}

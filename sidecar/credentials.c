/* The systemd credentials door: one connection per credential a unit loads
 * at its start. Every decision is made before a byte is written, from what
 * the kernel says of the peer (SO_PEERCRED, and the abstract address
 * systemd binds its end to); the value then goes out as the socket drains
 * and the connection is closed. A refusal is a close without a byte and
 * one log line. Costs are bounded: KT_CRED_MAX_CONNS connections, each
 * with a deadline of request_timeout; complaints about a non-root uid are
 * rate-limited through the uidtab, root's (systemd's, a configuration
 * mistake) are all logged, as a unit start makes at most one each. */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/kt_base64.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "acl.h"
#include "credentials.h"
#include "loop.h"
#include "sched.h"
#include "server.h"
#include "uidtab.h"

/* Accepts handled per readiness event of the listening socket, so a burst
 * cannot keep the loop from everything else. */
#define ACCEPT_BATCH 16
/* The largest value written: Secrets Manager's is 64 KiB. */
#define VALUE_MAX (1024 * 1024)

struct cred_conn {
	struct kt_cred *c;
	struct cred_conn *prev, *next;
	int fd;
	uint64_t id;
	bool parked;
	struct kt_loop_io *io;
	struct kt_loop_timer *deadline;
	struct kt_peer peer;
	char unit[KT_CRED_UNIT_MAX + 1];
	char cid[KT_CRED_ID_MAX + 1];
	char *secret; /* the [secret:] name, for the log */
	struct kt_buf out;
	size_t sent;
};

struct kt_cred {
	struct kt_loop *loop;
	int fd;
	struct kt_loop_io *lio;
	char *path;
	dev_t dev; /* the socket file bound, removed at the end if still there */
	ino_t ino;
	bool known;
	long timeout;
	struct kt_cred_handler h;
	struct cred_conn *conns;
	size_t n;
	uint64_t seq;
	unsigned long served, refused;
	struct kt_uidtab *uids;
	struct kt_loop_timer *tick;
};

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int kt_cred_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
	int fd = kt_server_listen(path, owner, group, err, errlen);
	int rc;

	if (fd < 0)
		return fd;
	/* kt_server_listen binds for everyone (0666); this door serves root
	 * alone, so nobody else gets even as far as a connection. */
	if (chmod(path, 0600) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot set the mode of %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

static bool printable_word(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '/')
			return false;
	}
	return len > 0;
}

int kt_cred_parse_address(const char *name, size_t len, char *unit, char *id, const char **why)
{
	static const char mid[] = "/unit/";
	const char *p, *end = name + len, *u, *slash;

	p = memchr(name, '/', len);
	if (p == NULL || p == name || !printable_word(name, (size_t)(p - name))) {
		*why = "the address does not start with a random part and '/'";
		return -EINVAL;
	}
	if ((size_t)(end - p) < sizeof(mid) - 1 || memcmp(p, mid, sizeof(mid) - 1) != 0) {
		*why = "the address lacks \"/unit/\"";
		return -EINVAL;
	}
	u = p + sizeof(mid) - 1;
	slash = memchr(u, '/', (size_t)(end - u));
	if (slash == NULL) {
		*why = "the address lacks a credential ID";
		return -EINVAL;
	}
	if (!printable_word(u, (size_t)(slash - u)) || (size_t)(slash - u) > KT_CRED_UNIT_MAX) {
		*why = "the unit name is empty, too long or not printable";
		return -EINVAL;
	}
	if (!printable_word(slash + 1, (size_t)(end - slash - 1)) ||
	    (size_t)(end - slash - 1) > KT_CRED_ID_MAX) {
		*why = "the credential ID is empty, too long or not printable";
		return -EINVAL;
	}
	memcpy(unit, u, (size_t)(slash - u));
	unit[slash - u] = '\0';
	memcpy(id, slash + 1, (size_t)(end - slash - 1));
	id[end - slash - 1] = '\0';
	return 0;
}

/* Whether one of the space-separated glob patterns matches unit. */
static bool unit_allowed(const char *patterns, const char *unit)
{
	char pat[512];
	const char *p = patterns;
	size_t len;

	while (*p != '\0') {
		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len > 0 && len < sizeof(pat)) {
			memcpy(pat, p, len);
			pat[len] = '\0';
			if (fnmatch(pat, unit, 0) == 0)
				return true;
		}
		p += len;
	}
	return false;
}

const struct kt_secret_cfg *kt_cred_match(const struct kt_config *cfg, const char *unit,
					  const char *id, const char **why)
{
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		const struct kt_secret_cfg *s = &cfg->secrets[i];

		if (s->credential == NULL || strcmp(s->credential, id) != 0)
			continue;
		if (s->allow_units != NULL && unit_allowed(s->allow_units, unit))
			return s;
		*why = "unit not allowed";
		return NULL;
	}
	*why = "unknown credential ID";
	return NULL;
}

/* One refusal's log line: every one for root, rate-limited per other uid. */
static void complain(struct kt_cred *c, uid_t uid, const char *unit, const char *id,
		     const char *why)
{
	c->refused++;
	if (uid == 0)
		log_warn("credentials: refused uid 0 (unit %s, credential %s): %s", unit, id, why);
	else
		kt_uidtab_complain(c->uids, uid, KT_COMPLAINT_REQUEST, mono_now(),
				   "credentials: refused uid %lu (unit %s, credential %s): %s",
				   (unsigned long)uid, unit, id, why);
}

static void conn_close(struct cred_conn *k)
{
	struct kt_cred *c = k->c;

	kt_loop_io_del(c->loop, k->io);
	kt_loop_timer_del(c->loop, k->deadline);
	close(k->fd);
	kt_buf_free(&k->out);
	free(k->secret);
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	c->n--;
	free(k);
}

/* Closes k without a byte written, and says why. */
static void conn_refuse(struct cred_conn *k, const char *why)
{
	if (k->parked)
		k->c->h.gone(k->c->h.ctx, k->id);
	k->parked = false;
	complain(k->c, k->peer.uid, k->unit, k->cid, why);
	conn_close(k);
}

/* Writes what the socket takes; closes when all is written. */
static void conn_write(struct cred_conn *k)
{
	ssize_t w;

	while (k->sent < k->out.len) {
		w = send(k->fd, k->out.data + k->sent, k->out.len - k->sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (kt_loop_io_mod(k->c->loop, k->io, EPOLLOUT) < 0)
				conn_refuse(k, "cannot watch the socket");
			return;
		}
		if (w < 0) {
			char why[128];

			snprintf(why, sizeof(why), "the peer went away while it was written to: %s",
				 strerror(errno));
			conn_refuse(k, why);
			return;
		}
		k->sent += (size_t)w;
	}
	k->c->served++;
	log_info("credentials: %s served to %s (secret %s, %zu bytes)", k->cid, k->unit, k->secret,
		 k->out.len);
	conn_close(k);
}

/* The ops' answer (taken): the value to write, or a refusal. */
static void conn_finish(struct cred_conn *k, struct json_object *answer)
{
	struct json_object *v;
	bool ok = false;
	char why[300];
	int rc = -EINVAL;

	k->parked = false;
	if (answer == NULL || !kt_json_bool(answer, "ok", &ok) || !ok) {
		const char *e = answer != NULL ? kt_json_str(answer, "error") : NULL;
		const char *m = answer != NULL ? kt_json_str(answer, "message") : NULL;

		snprintf(why, sizeof(why), "the cache answered %s%s%.200s",
			 e != NULL ? e : "nothing", m != NULL ? ": " : "", m != NULL ? m : "");
		kt_json_put_wiped(answer);
		conn_refuse(k, why);
		return;
	}
	if (json_object_object_get_ex(answer, "string", &v) &&
	    json_object_is_type(v, json_type_string)) {
		rc = kt_buf_append(&k->out, json_object_get_string(v),
				   (size_t)json_object_get_string_len(v));
	} else if (json_object_object_get_ex(answer, "binary", &v) &&
		   json_object_is_type(v, json_type_string)) {
		unsigned char *bin = NULL;
		size_t n = 0;

		rc = kt_base64_decode(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v), &bin, &n);
		if (rc == 0)
			rc = kt_buf_append(&k->out, bin, n);
		if (bin != NULL) {
			explicit_bzero(bin, n);
			free(bin);
		}
	}
	kt_json_put_wiped(answer);
	if (rc < 0) {
		kt_buf_reset(&k->out);
		conn_refuse(k,
			    rc == -ENOMEM ? "out of memory" : "the cache's answer holds no value");
		return;
	}
	conn_write(k);
}

static void conn_event(void *ctx, uint32_t events)
{
	struct cred_conn *k = ctx;

	if ((events & EPOLLOUT) != 0 && !k->parked) {
		conn_write(k);
		return;
	}
	if ((events & (EPOLLHUP | EPOLLERR)) != 0)
		conn_refuse(k, "the peer hung up before the value was written");
}

static void conn_deadline(void *ctx)
{
	struct cred_conn *k = ctx;

	k->deadline = NULL;
	conn_refuse(k, k->parked ? "no value within request_timeout"
				 : "the peer did not read the value within request_timeout");
}

/* Decides about one accepted connection (fd taken). */
static void serve(struct kt_cred *c, int fd)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	const struct kt_secret_cfg *s;
	struct kt_request r = { 0 };
	struct json_object *req, *answer = NULL;
	struct cred_conn *k;
	const char *why = NULL;
	enum kt_op_result res;

	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		close(fd);
		log_warn("credentials: out of memory; a connection was closed");
		return;
	}
	k->c = c;
	k->fd = fd;
	k->id = KT_CONN_CRED | ++c->seq;
	kt_buf_init(&k->out, VALUE_MAX);
	snprintf(k->unit, sizeof(k->unit), "?");
	snprintf(k->cid, sizeof(k->cid), "?");
	k->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = k;
	c->conns = k;
	c->n++;
	if (kt_peer_from_socket(fd, &k->peer) < 0) {
		k->peer.uid = (uid_t)-1;
		conn_refuse(k, "the peer's credentials are unknown");
		return;
	}
	memset(&sa, 0, sizeof(sa));
	if (getpeername(fd, (struct sockaddr *)&sa, &salen) < 0) {
		conn_refuse(k, "getpeername failed");
		return;
	}
	if (salen <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] != '\0') {
		/* Checked before the uid so that a non-root peer's line also
		 * tells what it asked for, when it did. */
		why = salen <= offsetof(struct sockaddr_un, sun_path)
			      ? "the peer's socket has no address (not bound as systemd binds it)"
			      : "the peer's address is a path, not an abstract name";
	} else if (kt_cred_parse_address(sa.sun_path + 1,
					 salen - offsetof(struct sockaddr_un, sun_path) - 1,
					 k->unit, k->cid, &why) < 0) {
		snprintf(k->unit, sizeof(k->unit), "?");
		snprintf(k->cid, sizeof(k->cid), "?");
	}
	if (k->peer.uid != 0) {
		conn_refuse(k, "the peer is not root (only systemd may load credentials)");
		return;
	}
	if (why != NULL) {
		conn_refuse(k, why);
		return;
	}
	s = kt_cred_match(c->h.config(c->h.ctx), k->unit, k->cid, &why);
	if (s == NULL) {
		conn_refuse(k, why);
		return;
	}
	k->secret = strdup(s->name);
	req = json_object_new_object();
	if (k->secret == NULL || req == NULL ||
	    kt_loop_io_add(c->loop, fd, 0, conn_event, k, &k->io) < 0 ||
	    kt_loop_after(c->loop, (unsigned)c->timeout * 1000, conn_deadline, k, &k->deadline) <
		    0) {
		json_object_put(req);
		conn_refuse(k, "out of memory");
		return;
	}
	json_object_object_add(req, "v", json_object_new_int(KT_PROTO_VERSION));
	json_object_object_add(req, "op", json_object_new_string("get"));
	json_object_object_add(req, "secret", json_object_new_string(s->name));
	r.conn_id = k->id;
	r.peer = &k->peer;
	r.req = req;
	r.now = kt_sched_now();
	res = c->h.request(c->h.ctx, &r, &answer);
	json_object_put(req);
	if (res == KT_OP_PARKED) {
		log_debug("credentials: %s for %s waits for %s to be fetched", k->cid, k->unit,
			  k->secret);
		k->parked = true;
		return;
	}
	conn_finish(k, answer);
}

static void on_accept(void *ctx, uint32_t events)
{
	struct kt_cred *c = ctx;
	struct ucred uc;
	socklen_t len;
	int fd;

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn_errno("credentials: accept");
			return;
		}
		if (c->n >= KT_CRED_MAX_CONNS) {
			len = sizeof(uc);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
				uc.uid = (uid_t)-1;
			close(fd);
			c->refused++;
			kt_uidtab_complain(c->uids, uc.uid, KT_COMPLAINT_FULL, mono_now(),
					   "credentials: refused uid %lu: %d connections are open",
					   (unsigned long)uc.uid, KT_CRED_MAX_CONNS);
			continue;
		}
		serve(c, fd);
	}
}

static void on_tick(void *ctx)
{
	struct kt_cred *c = ctx;

	kt_uidtab_tick(c->uids, mono_now());
}

int kt_cred_new(struct kt_loop *loop, int fd, const char *path, long request_timeout,
		const struct kt_cred_handler *h, struct kt_cred **out)
{
	struct kt_cred *c = calloc(1, sizeof(*c));
	struct stat st;
	int rc;

	if (c == NULL)
		return -ENOMEM;
	c->loop = loop;
	c->fd = fd;
	c->h = *h;
	c->timeout = request_timeout;
	c->path = strdup(path);
	c->uids = kt_uidtab_new();
	if (c->path == NULL || c->uids == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		c->known = true;
	}
	rc = kt_loop_io_add(loop, fd, EPOLLIN, on_accept, c, &c->lio);
	if (rc == 0)
		rc = kt_loop_every(loop, 1000, on_tick, c, &c->tick);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	c->fd = -1;
	kt_cred_free(c);
	return rc;
}

void kt_cred_stop_accepting(struct kt_cred *c)
{
	if (c == NULL)
		return;
	kt_loop_io_del(c->loop, c->lio);
	c->lio = NULL;
}

void kt_cred_free(struct kt_cred *c)
{
	struct stat st;

	if (c == NULL)
		return;
	while (c->conns != NULL) {
		if (c->conns->parked)
			c->h.gone(c->h.ctx, c->conns->id);
		conn_close(c->conns);
	}
	kt_cred_stop_accepting(c);
	kt_loop_timer_del(c->loop, c->tick);
	if (c->fd >= 0)
		close(c->fd);
	if (c->known && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	kt_uidtab_free(c->uids);
	free(c->path);
	free(c);
}

void kt_cred_reply(struct kt_cred *c, uint64_t conn_id, struct json_object *answer)
{
	for (struct cred_conn *k = c != NULL ? c->conns : NULL; k != NULL; k = k->next) {
		if (k->id == conn_id && k->parked) {
			conn_finish(k, answer);
			return;
		}
	}
	kt_json_put_wiped(answer);
}

void kt_cred_set_timeout(struct kt_cred *c, long request_timeout)
{
	if (c != NULL)
		c->timeout = request_timeout;
}

const char *kt_cred_path(const struct kt_cred *c)
{
	return c != NULL ? c->path : NULL;
}

size_t kt_cred_connections(const struct kt_cred *c)
{
	return c != NULL ? c->n : 0;
}

unsigned long kt_cred_served(const struct kt_cred *c)
{
	return c != NULL ? c->served : 0;
}

unsigned long kt_cred_refused(const struct kt_cred *c)
{
	return c != NULL ? c->refused : 0;
}

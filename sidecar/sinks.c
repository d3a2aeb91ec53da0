/* keyturnd's file sinks: render a secret into a file's content, write it
 * through the privileged helper when it changed, run on_change after, and
 * keep a small state per file for status. Values rendered live in the
 * locked arena and are wiped as soon as they are sent. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/kt_json.h"
#include "common/kt_time.h"
#include "common/log.h"
#include "common/secmem.h"
#include "cache.h"
#include "privhelper.h"
#include "sched.h"
#include "sinks.h"

#define RETRY_MS 10000 /* after a failed write, or a full socket */

enum sink_state { ST_WAITING, ST_OK, ST_STALE, ST_FAILING };

struct sink {
	uint32_t idx; /* in the configuration read at start, as the helper knows it */
	char *path;
	char *secret;
	bool has_cmd;
	bool on_stale_remove;
	enum kt_file_format format;
	char *key;
	/* The rest of the section as read at start (the helper's copy), only
	 * to tell a reload that changed it. */
	char *on_change;
	uid_t uid, run_uid;
	gid_t gid;
	mode_t mode;
	long timeout;
	/* What was last written: a digest and the version it came from. */
	unsigned char hash[32];
	bool have_hash;
	char version[72];
	unsigned char pending_hash[32];
	char pending_version[72];
	bool writing, dirty, removing, removed, running, run_again;
	enum sink_state state;
	time_t last_written; /* wall clock */
	int64_t retry_at;    /* monotonic ms; 0: no retry planned */
	char error[KT_PRIV_MAX_TEXT + 64];
};

struct kt_sinks {
	struct kt_loop *loop;
	struct kt_engine *eng;
	long max_stale;
	int fd;
	struct kt_loop_io *io;
	bool helper_gone;
	struct sink *v;
	size_t n;
};

/* --- rendering ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int render_fail(char *err, size_t errlen,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool is_var_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

/* A member's text: strings as they are, numbers and booleans as JSON writes
 * them; NULL for null, objects and arrays. */
static const char *scalar_text(struct json_object *m, size_t *len)
{
	if (json_object_is_type(m, json_type_string)) {
		*len = (size_t)json_object_get_string_len(m);
		return json_object_get_string(m);
	}
	if (json_object_is_type(m, json_type_int) || json_object_is_type(m, json_type_double) ||
	    json_object_is_type(m, json_type_boolean)) {
		const char *t = json_object_get_string(m);

		*len = strlen(t);
		return t;
	}
	return NULL;
}

/* env: NAME='text' per member, a ' inside written as '\'' (what sh's "."
 * and systemd's EnvironmentFile= both read back as the text). Two passes:
 * the size, then the bytes. */
static int render_env(struct json_object *doc, unsigned char *out, size_t *size, char *err,
		      size_t errlen)
{
	size_t n = 0, len;
	const char *t;

	json_object_object_foreach(doc, name, m) {
		if (!is_var_name(name))
			return render_fail(err, errlen,
					   "format = env: member '%.64s' is not a variable name "
					   "(letters, digits and _, not first a digit)",
					   name);
		t = scalar_text(m, &len);
		if (t == NULL)
			return render_fail(err, errlen,
					   "format = env: member %s is not a string, number or "
					   "boolean",
					   name);
		if (memchr(t, '\n', len) != NULL || memchr(t, '\r', len) != NULL ||
		    memchr(t, '\0', len) != NULL)
			return render_fail(err, errlen,
					   "format = env: member %s holds a newline or NUL", name);
		if (out != NULL) {
			memcpy(out + n, name, strlen(name));
			memcpy(out + n + strlen(name), "='", 2);
		}
		n += strlen(name) + 2;
		for (size_t i = 0; i < len; i++) {
			if (t[i] == '\'') {
				if (out != NULL)
					memcpy(out + n, "'\\''", 4);
				n += 4;
			} else {
				if (out != NULL)
					out[n] = (unsigned char)t[i];
				n++;
			}
		}
		if (out != NULL)
			memcpy(out + n, "'\n", 2);
		n += 2;
	}
	*size = n;
	return 0;
}

int kt_sink_render(enum kt_file_format format, const char *key, const unsigned char *value,
		   size_t len, bool binary, unsigned char **out, size_t *outlen, char *err,
		   size_t errlen)
{
	struct json_object *doc = NULL, *m;
	const unsigned char *src = value;
	unsigned char *buf = NULL;
	size_t n = len;
	int rc = 0;

	*out = NULL;
	*outlen = 0;
	if (binary && (format != KT_FILE_RAW || key != NULL))
		return render_fail(err, errlen,
				   "the value is binary: only format = raw without "
				   "a key can write it");
	if (format == KT_FILE_ENV || (format == KT_FILE_RAW && key != NULL)) {
		doc = kt_json_parse((const char *)value, len);
		if (doc == NULL || !json_object_is_type(doc, json_type_object)) {
			rc = render_fail(err, errlen, "the value is not a JSON object");
			goto out;
		}
	}
	if (format == KT_FILE_RAW && key != NULL) {
		if (!json_object_object_get_ex(doc, key, &m)) {
			rc = render_fail(err, errlen, "the value has no member %.64s", key);
			goto out;
		}
		src = (const unsigned char *)scalar_text(m, &n);
		if (src == NULL) {
			rc = render_fail(err, errlen,
					 "member %.64s is not a string, number or boolean", key);
			goto out;
		}
	} else if (format == KT_FILE_ENV) {
		rc = render_env(doc, NULL, &n, err, errlen);
		if (rc < 0)
			goto out;
	}
	if (n > KT_PRIV_MAX_DATA) {
		rc = render_fail(err, errlen, "the content is longer than %d bytes",
				 KT_PRIV_MAX_DATA);
		goto out;
	}
	buf = kt_secure_alloc(n + 1);
	if (buf == NULL) {
		rc = render_fail(err, errlen, "no room in the locked memory");
		rc = -ENOMEM;
		goto out;
	}
	if (format == KT_FILE_ENV)
		(void)render_env(doc, buf, &n, err, errlen);
	else
		memcpy(buf, src, n);
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
out:
	kt_json_put_wiped(doc);
	return rc;
}

/* --- talking to the helper ------------------------------------------------- */

static void set_error(struct sink *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct sink *k, const char *fmt, ...)
{
	char msg[sizeof(k->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The same failure again is not logged again (a retry every 10 s). */
	if (k->state != ST_FAILING || strcmp(msg, k->error) != 0)
		log_err("file %s: %s", k->path, msg);
	memcpy(k->error, msg, sizeof(msg));
	k->state = ST_FAILING;
	k->retry_at = kt_mono_ms() + RETRY_MS;
}

static int send_req(struct kt_sinks *s, struct sink *k, enum kt_priv_op op, const void *data,
		    size_t len)
{
	int rc;

	if (s->helper_gone) {
		set_error(k, "the privileged helper is gone: restart keyturnd");
		return -EPIPE;
	}
	rc = kt_privhelper_send(s->fd, op, k->idx, data, len);
	if (rc == -EAGAIN) {
		k->retry_at = kt_mono_ms() + 1000;
		return rc;
	}
	if (rc < 0)
		set_error(k, "cannot reach the privileged helper: %s", strerror(-rc));
	return rc;
}

static void start_run(struct kt_sinks *s, struct sink *k)
{
	if (!k->has_cmd)
		return;
	if (k->running) {
		k->run_again = true;
		return;
	}
	if (send_req(s, k, KT_PRIV_RUN, NULL, 0) == 0)
		k->running = true;
}

/* Brings k's file in line with its secret, if anything is to be done. */
static void sync_sink(struct kt_sinks *s, struct sink *k)
{
	struct kt_entry *e = kt_cache_find(kt_engine_cache(s->eng), k->secret);
	unsigned char *buf = NULL, md[32];
	unsigned int mdlen = 0;
	size_t len = 0;
	char err[256];

	if (k->writing || k->removing) {
		k->dirty = true;
		return;
	}
	if (e == NULL || e->cur.data == NULL)
		return;
	if (!kt_entry_servable(e, kt_sched_now(), s->max_stale)) {
		if (k->state != ST_STALE)
			log_warn("file %s: secret %s is stale beyond max_stale; the file %s",
				 k->path, k->secret,
				 k->on_stale_remove ? "is removed" : "keeps its last value");
		k->state = ST_STALE;
		if (k->on_stale_remove && !k->removed &&
		    send_req(s, k, KT_PRIV_REMOVE, NULL, 0) == 0)
			k->removing = true;
		return;
	}
	if (k->retry_at != 0 && kt_mono_ms() < k->retry_at)
		return;
	if (k->have_hash && !k->removed && e->cur.version_id != NULL &&
	    strcmp(e->cur.version_id, k->version) == 0) {
		if (k->state == ST_STALE)
			k->state = ST_OK;
		return;
	}
	k->retry_at = 0;
	if (kt_sink_render(k->format, k->key, e->cur.data, e->cur.len, e->cur.binary, &buf, &len,
			   err, sizeof(err)) < 0) {
		set_error(k, "secret %s: %s", k->secret, err);
		return;
	}
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md)) {
		set_error(k, "SHA-256 failed");
		goto out;
	}
	snprintf(k->pending_version, sizeof(k->pending_version), "%s",
		 e->cur.version_id != NULL ? e->cur.version_id : "");
	if (k->have_hash && !k->removed && memcmp(md, k->hash, sizeof(md)) == 0) {
		/* A new version with the same content: nothing to write or run. */
		memcpy(k->version, k->pending_version, sizeof(k->version));
		k->state = ST_OK;
		goto out;
	}
	if (send_req(s, k, KT_PRIV_WRITE, buf, len) == 0) {
		memcpy(k->pending_hash, md, sizeof(md));
		k->writing = true;
	}
out:
	kt_secure_free(buf, len + 1);
}

static void on_reply(struct kt_sinks *s, const struct kt_priv_reply *r)
{
	struct sink *k;
	int st = r->h.status;

	if (r->h.idx >= s->n) {
		log_err("file sinks: the privileged helper answered for sink %u of %zu",
			(unsigned)r->h.idx, s->n);
		return;
	}
	k = &s->v[r->h.idx];
	switch (r->h.op) {
	case KT_PRIV_WRITE:
		k->writing = false;
		if (st < 0) {
			set_error(k, "%s", r->text[0] ? r->text : strerror(-st));
			break;
		}
		memcpy(k->hash, k->pending_hash, sizeof(k->hash));
		memcpy(k->version, k->pending_version, sizeof(k->version));
		k->have_hash = true;
		k->removed = false;
		k->state = ST_OK;
		k->error[0] = '\0';
		k->last_written = time(NULL);
		log_info("file %s: written from secret %s (version %s)", k->path, k->secret,
			 k->version);
		start_run(s, k);
		break;
	case KT_PRIV_REMOVE:
		k->removing = false;
		if (st < 0) {
			set_error(k, "removing the stale file: %s",
				  r->text[0] ? r->text : strerror(-st));
			break;
		}
		k->removed = true;
		k->state = ST_STALE;
		log_warn("file %s: removed (secret %s is stale, on_stale = remove)", k->path,
			 k->secret);
		break;
	case KT_PRIV_RUN:
		k->running = false;
		if (st < 0)
			log_err("file %s: on_change could not start: %s", k->path, strerror(-st));
		else if ((r->h.flags & KT_PRIV_TIMED_OUT) != 0)
			log_err("file %s: on_change killed after its timeout%s%s", k->path,
				r->text[0] ? "; stderr: " : "", r->text);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			log_info("file %s: on_change exited 0%s%s", k->path,
				 r->text[0] ? "; stderr: " : "", r->text);
		else if (WIFEXITED(st))
			log_err("file %s: on_change exited with status %d%s%s", k->path,
				WEXITSTATUS(st), r->text[0] ? "; stderr: " : "", r->text);
		else
			log_err("file %s: on_change killed by signal %d%s%s", k->path,
				WIFSIGNALED(st) ? WTERMSIG(st) : 0, r->text[0] ? "; stderr: " : "",
				r->text);
		if (k->run_again) {
			k->run_again = false;
			start_run(s, k);
		}
		return;
	default:
		log_err("file sinks: the privileged helper sent an unknown answer %u",
			(unsigned)r->h.op);
		return;
	}
	if (k->dirty) {
		k->dirty = false;
		sync_sink(s, k);
	}
}

static void helper_event(void *ctx, uint32_t events)
{
	struct kt_sinks *s = ctx;
	struct kt_priv_reply r;
	int rc;

	(void)events;
	/* Bounded: at most three answers are outstanding per sink. */
	while ((rc = kt_privhelper_recv(s->fd, &r)) > 0)
		on_reply(s, &r);
	if (rc < 0) {
		log_err("file sinks: the privileged helper is gone (%s); files are no longer "
			"kept: restart keyturnd",
			strerror(-rc));
		kt_loop_io_del(s->loop, s->io);
		s->io = NULL;
		s->helper_gone = true;
		for (size_t i = 0; i < s->n; i++)
			s->v[i].writing = s->v[i].removing = s->v[i].running = false;
	}
}

static void on_news(void *ctx, enum kt_news what, struct kt_entry *e, const char *version)
{
	struct kt_sinks *s = ctx;

	(void)version;
	if (what != KT_NEWS_CHANGED)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->v[i].secret, e->name) == 0) {
			s->v[i].retry_at = 0;
			sync_sink(s, &s->v[i]);
		}
	}
}

/* --- the module's face ------------------------------------------------------ */

void kt_sinks_tick(struct kt_sinks *s)
{
	for (size_t i = 0; s != NULL && i < s->n; i++)
		sync_sink(s, &s->v[i]);
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void kt_sinks_configure(struct kt_sinks *s, const struct kt_config *next)
{
	size_t n = s != NULL ? s->n : 0;
	bool same = next->nfiles == n;

	if (s != NULL)
		s->max_stale = next->max_stale;
	for (size_t i = 0; same && i < n; i++) {
		const struct sink *k = &s->v[i];
		const struct kt_file_cfg *f = &next->files[i];

		same = strcmp(k->path, f->path) == 0 && strcmp(k->secret, f->secret) == 0 &&
		       k->format == f->format && str_eq(k->key, f->key) &&
		       str_eq(k->on_change, f->on_change) &&
		       k->on_stale_remove == f->on_stale_remove && k->uid == f->uid &&
		       k->gid == f->gid && k->mode == f->mode && k->run_uid == f->run_uid &&
		       k->timeout == f->on_change_timeout;
	}
	if (!same)
		log_warn("reload: file sinks changed: restart keyturnd to apply");
}

struct json_object *kt_sinks_status(const struct kt_sinks *s)
{
	static const char *const states[] = { "waiting", "ok", "stale", "failing" };
	struct json_object *o = json_object_new_object(), *f;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; s != NULL && i < s->n; i++) {
		const struct sink *k = &s->v[i];

		f = json_object_new_object();
		if (f == NULL) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(f, "state", json_object_new_string(states[k->state]));
		json_object_object_add(f, "secret", json_object_new_string(k->secret));
		json_object_object_add(f, "last_written",
				       k->last_written != 0
					       ? json_object_new_int64((int64_t)k->last_written)
					       : NULL);
		if (k->error[0] != '\0')
			json_object_object_add(f, "error", json_object_new_string(k->error));
		json_object_object_add(o, k->path, f);
	}
	return o;
}

static void helper_exited(void *ctx, pid_t pid, int status)
{
	(void)ctx;
	if (status != -1 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		log_err("file sinks: the privileged helper (pid %ld) ended with status %d",
			(long)pid, status);
}

int kt_sinks_new(struct kt_loop *loop, struct kt_engine *eng, const struct kt_config *cfg,
		 int helper_fd, pid_t helper_pid, struct kt_sinks **out)
{
	struct kt_sinks *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL) {
		close(helper_fd);
		log_err("file sinks: out of memory");
		return -ENOMEM;
	}
	s->loop = loop;
	s->eng = eng;
	s->fd = helper_fd;
	s->max_stale = cfg->max_stale;
	s->v = calloc(cfg->nfiles, sizeof(*s->v));
	if (s->v == NULL && cfg->nfiles > 0) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < cfg->nfiles; i++) {
		const struct kt_file_cfg *f = &cfg->files[i];
		struct sink *k = &s->v[i];

		k->idx = (uint32_t)i;
		k->format = f->format;
		k->has_cmd = f->argv != NULL;
		k->on_stale_remove = f->on_stale_remove;
		k->path = strdup(f->path);
		k->secret = strdup(f->secret);
		k->key = f->key != NULL ? strdup(f->key) : NULL;
		k->on_change = f->on_change != NULL ? strdup(f->on_change) : NULL;
		k->uid = f->uid;
		k->gid = f->gid;
		k->mode = f->mode;
		k->run_uid = f->run_uid;
		k->timeout = f->on_change_timeout;
		s->n++;
		if (k->path == NULL || k->secret == NULL || (f->key != NULL && k->key == NULL) ||
		    (f->on_change != NULL && k->on_change == NULL)) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	rc = kt_loop_io_add(loop, helper_fd, EPOLLIN, helper_event, s, &s->io);
	if (rc < 0)
		goto fail;
	rc = kt_engine_subscribe(eng, on_news, s);
	if (rc < 0)
		goto fail;
	rc = kt_loop_child(loop, helper_pid, helper_exited, NULL);
	if (rc < 0)
		log_warn("file sinks: the privileged helper is not watched: %s", strerror(-rc));
	*out = s;
	return 0;
fail:
	log_err("file sinks: %s", strerror(-rc));
	kt_sinks_free(s);
	return rc;
}

void kt_sinks_free(struct kt_sinks *s)
{
	if (s == NULL)
		return;
	if (s->io != NULL)
		kt_loop_io_del(s->loop, s->io);
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].path);
		free(s->v[i].secret);
		free(s->v[i].key);
		free(s->v[i].on_change);
	}
	free(s->v);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/* keyturnd's rotation targets (one per [rotate:] section, one per secret a
 * login's rotate_after_use rotates), and their state in
 * state_dir/rotations.json: each unfinished
 * rotation's token and the step it resumes at, the last rotation and a
 * rotation due after a login's use, so that a restart picks up where the
 * daemon stopped. Written whole and atomically; no value is ever in it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kt_io.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "rotate_int.h"

/* Where the file is written before it is renamed into place. */
#define TMP_SUFFIX ".new"

/* A state file this large is not keyturnd's. */
#define STATE_MAX (4 * 1024 * 1024)

int kt_rot_state_read(const char *path, struct json_object **out, char *err, size_t errlen)
{
	struct json_object *top = NULL, *rot, *v;
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, rc = -EINVAL;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		*out = json_object_new_object();
		return *out != NULL ? 0 : -ENOMEM;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > STATE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
			 STATE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	n = read(fd, buf, (size_t)st.st_size);
	if (n != (ssize_t)st.st_size) {
		rc = n < 0 ? -errno : -EIO;
		snprintf(err, errlen, "%s: cannot read it whole", path);
		goto out;
	}
	top = kt_json_parse(buf, (size_t)n);
	if (top == NULL || !json_object_is_type(top, json_type_object) ||
	    !json_object_object_get_ex(top, "v", &v) || json_object_get_int(v) != 1 ||
	    !json_object_object_get_ex(top, "rotations", &rot) ||
	    !json_object_is_type(rot, json_type_object)) {
		snprintf(err, errlen,
			 "%s: not keyturnd's rotation state ({\"v\":1,\"rotations\":{...}})", path);
		goto out;
	}
	*out = json_object_get(rot);
	rc = 0;
out:
	json_object_put(top);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int kt_rot_state_write(const char *path, struct json_object *rotations, char *err, size_t errlen)
{
	struct json_object *top = json_object_new_object();
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *text;
	int fd = -1, dfd, rc;

	if (top == NULL || json_object_object_add(top, "v", json_object_new_int(1)) < 0 ||
	    json_object_object_add(top, "rotations", json_object_get(rotations)) < 0) {
		json_object_put(top);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	text = json_object_to_json_string_ext(top, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	/* One writer (the loop thread): a fixed name does, made anew each
	 * time, never followed if something else put a link there. */
	if (snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if (unlink(tmp) < 0 && errno != ENOENT) {
		rc = -errno;
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (fchmod(fd, 0600) < 0 || (rc = kt_write_all(fd, text, strlen(text))) < 0 ||
	    kt_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		rc = rc < 0 ? rc : -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	json_object_put(top);
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot write it: %s", path, strerror(-rc));
	if (fd >= 0)
		close(fd);
	if (rc != -ENAMETOOLONG)
		(void)unlink(tmp);
	json_object_put(top);
	return rc;
}

/* --- targets and the state file ------------------------------------------- */

void kt_rot_target_free(struct kt_rot_target *t)
{
	if (t == NULL)
		return;
	free(t->name);
	free(t->secret_id);
	free(t->key);
	free(t->schedule);
	free(t->exclude);
	free(t->signature);
	free(t->entry);
	free(t->waiters);
	json_object_put(t->held);
	free(t);
}

struct kt_rot_target *kt_rot_target_new(const char *name, const char *secret_id, const char *key)
{
	struct kt_rot_target *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->name = strdup(name);
	t->secret_id = strdup(secret_id);
	t->key = key != NULL ? strdup(key) : NULL;
	t->idx = -1;
	t->policy.length = 32;
	t->policy.require_each_included_type = true;
	t->backoff = BACKOFF_MIN;
	if (t->name == NULL || t->secret_id == NULL || (key != NULL && t->key == NULL)) {
		kt_rot_target_free(t);
		return NULL;
	}
	return t;
}

char *kt_rot_signature(const struct kt_rotate_cfg *c)
{
	char *sig;

#define OR(x) ((x) != NULL ? (x) : "")
	if (asprintf(&sig, "%s\n%s\n%s\n%ld\n%s\n%d%d%d%d%d%d\n%s\n%s\n%s\n%s\n%ld\n%ld", c->name,
		     c->secret_id, OR(c->schedule), c->window, OR(c->exclude_characters),
		     c->exclude_numbers, c->exclude_punctuation, c->exclude_uppercase,
		     c->exclude_lowercase, c->include_space, c->require_each_included_type,
		     OR(c->key), OR(c->set_command), OR(c->test_command), OR(c->run_as), c->length,
		     c->command_timeout) < 0)
		return NULL;
#undef OR
	return sig;
}

struct kt_rot_target *kt_rot_target_from(const struct kt_rotate_cfg *c, int idx)
{
	struct kt_rot_target *t = kt_rot_target_new(c->name, c->secret_id, c->key);

	if (t == NULL)
		return NULL;
	t->idx = idx;
	t->signature = kt_rot_signature(c);
	t->has_set = c->set_argv != NULL;
	t->has_test = c->test_argv != NULL;
	t->window = c->window;
	if (c->schedule != NULL) {
		t->schedule = strdup(c->schedule);
		t->sched = c->sched;
	}
	t->policy.length = c->length;
	t->policy.exclude_numbers = c->exclude_numbers;
	t->policy.exclude_punctuation = c->exclude_punctuation;
	t->policy.exclude_uppercase = c->exclude_uppercase;
	t->policy.exclude_lowercase = c->exclude_lowercase;
	t->policy.include_space = c->include_space;
	t->policy.require_each_included_type = c->require_each_included_type;
	if (c->exclude_characters != NULL)
		t->exclude = strdup(c->exclude_characters);
	t->policy.exclude_chars = t->exclude;
	if (t->signature == NULL || (c->schedule != NULL && t->schedule == NULL) ||
	    (c->exclude_characters != NULL && t->exclude == NULL)) {
		kt_rot_target_free(t);
		return NULL;
	}
	return t;
}

struct kt_rot_target *kt_rot_by_id(const struct kt_rotator *r, const char *secret_id)
{
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->t[i]->secret_id, secret_id) == 0)
			return r->t[i];
	}
	return NULL;
}

int kt_rot_add(struct kt_rotator *r, struct kt_rot_target *t)
{
	struct kt_rot_target **n = realloc(r->t, (r->n + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	r->t = n;
	r->t[r->n++] = t;
	return 0;
}

bool kt_rot_save(struct kt_rotator *r, char *err, size_t errlen)
{
	struct json_object *all = json_object_new_object();

	for (size_t i = 0; all != NULL && i < r->n; i++) {
		const struct kt_rot_target *t = r->t[i];
		struct json_object *o;

		if (t->token[0] == '\0' && t->last_rotated == 0 && t->after_use_due == 0)
			continue;
		o = json_object_new_object();
		if (o == NULL || json_object_object_add(all, t->secret_id, o) < 0) {
			/* Never a file with some rotations left out. */
			json_object_put(o);
			json_object_put(all);
			all = NULL;
			break;
		}
		json_object_object_add(o, "token",
				       t->token[0] != '\0' ? json_object_new_string(t->token)
							   : NULL);
		json_object_object_add(o, "step",
				       t->token[0] != '\0'
					       ? json_object_new_string(kt_rot_step_name(t->step))
					       : NULL);
		json_object_object_add(o, "started", json_object_new_int64(t->started));
		json_object_object_add(o, "last_rotated", json_object_new_int64(t->last_rotated));
		json_object_object_add(o, "after_use_due", json_object_new_int64(t->after_use_due));
		/* A rotation after use that no [rotate:] section describes
		 * is made again at the next start from what is kept here. */
		if (t->idx < 0)
			json_object_object_add(o, "after_use", json_object_new_boolean(true));
		if (t->idx < 0 && t->key != NULL)
			json_object_object_add(o, "key", json_object_new_string(t->key));
		if (t->idx < 0 && t->entry != NULL)
			json_object_object_add(o, "entry", json_object_new_string(t->entry));
	}
	if (all == NULL) {
		snprintf(err, errlen, "%s: out of memory", r->state_path);
		return false;
	}
	bool ok = kt_rot_state_write(r->state_path, all, err, errlen) == 0;
	json_object_put(all);
	return ok;
}

void kt_rot_save_or_log(struct kt_rotator *r)
{
	char err[512];

	if (!kt_rot_save(r, err, sizeof(err)))
		log_err("rotation state: %s", err);
}

static time_t num(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
		       ? (time_t)json_object_get_int64(v)
		       : 0;
}

static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* Removes the temporary file of a write that died before its rename: at
 * start no write is going on. */
static void remove_temporary(const char *state_path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, state_path) < (int)sizeof(tmp) &&
	    unlink(tmp) == 0)
		log_info("removed %s, left by an unfinished write of the rotation state", tmp);
}

/* Takes what the state file kept: tokens of unfinished rotations (resumed
 * at once), the last rotations, rotations due after a login's use. */
void kt_rot_load(struct kt_rotator *r)
{
	struct json_object *all;
	char err[512];

	remove_temporary(r->state_path);

	if (kt_rot_state_read(r->state_path, &all, err, sizeof(err)) < 0) {
		char aside[PATH_MAX];
		bool moved;

		/* Kept for a look, not overwritten by the next save. */
		snprintf(aside, sizeof(aside), "%s.unreadable", r->state_path);
		moved = rename(r->state_path, aside) == 0;
		log_err("rotation state: %s; starting without it (unfinished rotations are "
			"not resumed, and a rotation made now leaves their AWSPENDING alone)%s%s",
			err, moved ? "; the file is now " : "", moved ? aside : "");
		return;
	}
	json_object_object_foreach(all, id, o) {
		struct kt_rot_target *t = kt_rot_by_id(r, id);
		const char *token = str(o, "token"), *step = str(o, "step");

		if (!json_object_is_type(o, json_type_object))
			continue;
		if (t == NULL && num(o, "after_use_due") == 0 && token == NULL)
			continue;
		if (t == NULL && !json_object_get_boolean(json_object_object_get(o, "after_use"))) {
			/* Its [rotate:] section is gone: finishing without its
			 * commands could hand the system a password it never
			 * took. */
			if (token != NULL)
				log_warn(
					"rotation %s: no [rotate:] section any more; its unfinished "
					"rotation (version %s, AWSPENDING) is left as it is",
					id, token);
			continue;
		}
		if (t == NULL) {
			t = kt_rot_target_new(id, id, str(o, "key"));
			if (t != NULL && str(o, "entry") != NULL)
				t->entry = strdup(str(o, "entry"));
			if (t == NULL || kt_rot_add(r, t) < 0) {
				kt_rot_target_free(t);
				continue;
			}
		}
		t->started = num(o, "started");
		t->last_rotated = num(o, "last_rotated");
		t->after_use_due = num(o, "after_use_due");
		if (token != NULL && strlen(token) == KT_ROT_TOKEN_LEN) {
			snprintf(t->token, sizeof(t->token), "%s", token);
			t->step = KT_ROT_CREATE;
			for (int s = 0; step != NULL && s < KT_ROT_NSTEPS; s++) {
				if (strcmp(step, kt_rot_step_name(s)) == 0)
					t->step = (enum kt_rot_step)s;
			}
			t->resume = true;
			log_info("rotation %s: resuming the rotation to version %s at %s", t->name,
				 t->token, kt_rot_step_name(t->step));
		}
	}
	json_object_put(all);
}

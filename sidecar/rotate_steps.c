/* The four rotation steps, run on keyturnd's rotation thread, as the
 * Secrets Manager rotation Lambda runs them and idempotent like it:
 * createSecret (a new random password, PutSecretValue with the rotation's
 * token as ClientRequestToken, labelled AWSPENDING), setSecret and
 * testSecret (the configured commands, run by the privileged helper with the
 * new password on stdin), finishSecret (AWSCURRENT moved to the token's
 * version). Every call blocks here, never on the loop thread. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/kt_json.h"
#include "common/secmem.h"
#include "privhelper.h"
#include "rotate_int.h"

static const char *const step_names[KT_ROT_NSTEPS] = { "createSecret", "setSecret", "testSecret",
						       "finishSecret" };

const char *kt_rot_step_name(enum kt_rot_step s)
{
	return s < KT_ROT_NSTEPS ? step_names[s] : "none";
}

const char *kt_rot_outcome_name(enum kt_rot_outcome o)
{
	static const char *const names[] = { "rotated", "failed",      "busy",
					     "denied",  "unreachable", "stopping" };

	return o <= KT_ROT_STOPPING ? names[o] : "failed";
}

int kt_rot_new_token(char out[KT_ROT_TOKEN_LEN + 1])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, KT_ROT_TOKEN_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

/* --- one rotation ---------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static void fail(struct kt_rot_job *j, enum kt_rot_step s,
						       enum kt_rot_outcome o, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j->outcome = o;
	j->step = s;
	j->result[s] = "failed";
	snprintf(j->detail[s], sizeof(j->detail[s]), "%.470s", msg);
	snprintf(j->message, sizeof(j->message), "%s: %s failed: %s", j->name, step_names[s], msg);
}

/* A failed AWS call: the outcome its error says. */
static void aws_failed(struct kt_rot_job *j, enum kt_rot_step s, const char *call,
		       const struct aws_error *err)
{
	enum kt_rot_outcome o = KT_ROT_FAILED;

	switch (err->code) {
	case AWS_ERR_ACCESS_DENIED:
		o = KT_ROT_DENIED;
		break;
	case AWS_ERR_THROTTLED:
	case AWS_ERR_SERVER:
	case AWS_ERR_TRANSPORT:
	case AWS_ERR_TIMEOUT:
	case AWS_ERR_TLS:
	case AWS_ERR_NO_CREDENTIALS:
	case AWS_ERR_EXPIRED_TOKEN:
	case AWS_ERR_CLOCK_SKEW:
		o = KT_ROT_UNREACHABLE;
		break;
	default:
		break;
	}
	if (o == KT_ROT_DENIED)
		fail(j, s, o,
		     "AWS refused %s (%s: %s): this host may not write %s; a rotating host "
		     "needs secretsmanager:%s on it",
		     call, err->type, err->message, j->secret_id, call);
	else
		fail(j, s, o, "%s: %s: %s", call, err->type[0] != '\0' ? err->type : "error",
		     err->message);
}

static const struct sm_version *find_version(const struct sm_description *d, const char *id)
{
	for (size_t i = 0; i < d->nversions; i++) {
		if (strcmp(d->versions[i].version_id, id) == 0)
			return &d->versions[i];
	}
	return NULL;
}

static bool has_stage(const struct sm_version *v, const char *stage)
{
	for (size_t i = 0; v != NULL && i < v->nstages; i++) {
		if (strcmp(v->stages[i], stage) == 0)
			return true;
	}
	return false;
}

/* The new SecretString: the current one with key's member replaced by
 * password (other members kept), or password itself without a key. *out
 * (kt_str_free_wiped) or a negative errno with why. */
static int new_value(const struct kt_rot_job *j, const struct sm_value *cur, const char *password,
		     char **out, size_t *len, char *why, size_t whylen)
{
	struct json_object *o = NULL, *pw;

	if (j->key == NULL) {
		*len = strlen(password);
		*out = strdup(password);
	} else {
		if (cur->binary || (o = kt_json_parse((const char *)cur->data, cur->len)) == NULL ||
		    !json_object_is_type(o, json_type_object)) {
			snprintf(why, whylen,
				 "the current value is not a JSON object, so it has no member "
				 "'%.64s' to replace",
				 j->key);
			kt_json_put_wiped(o);
			return -EINVAL;
		}
		pw = json_object_new_string(password);
		if (pw == NULL || json_object_object_add(o, j->key, pw) < 0) {
			json_object_put(pw);
			*out = NULL;
		} else {
			*out = kt_json_dump(o, len);
		}
		kt_json_put_wiped(o);
	}
	if (*out == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The password a pending version holds: key's member, or the whole value.
 * Points into v's data or into *holder (put wiped by the caller). */
static const char *pending_password(const struct kt_rot_job *j, const struct sm_value *v,
				    struct json_object **holder, size_t *len)
{
	struct json_object *m;

	*holder = NULL;
	if (v->binary)
		return NULL;
	if (j->key == NULL) {
		*len = v->len;
		return (const char *)v->data;
	}
	*holder = kt_json_parse((const char *)v->data, v->len);
	if (*holder == NULL || !json_object_object_get_ex(*holder, j->key, &m) ||
	    !json_object_is_type(m, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(m);
	return json_object_get_string(m);
}

/* Asks the helper to run a command with data on stdin and waits for its
 * reply, or for stop_fd. 1 done (r filled), 0 stopping, -errno. */
static int helper_run(int fd, int stop_fd, enum kt_priv_op op, int idx, const char *data,
		      size_t len, struct kt_priv_reply *r)
{
	int rc;

	while ((rc = kt_privhelper_send(fd, op, (uint32_t)idx, data, len)) == -EAGAIN) {
		struct pollfd p[2] = { { fd, POLLOUT, 0 }, { stop_fd, POLLIN, 0 } };

		if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents != 0)
			return 0;
	}
	if (rc < 0)
		return rc;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };

		rc = kt_privhelper_recv(fd, r);
		/* A reply to an earlier request (one given up at a stop) is not
		 * this one's. */
		if (rc > 0 && (r->h.op != (uint32_t)op || r->h.idx != (uint32_t)idx))
			continue;
		if (rc != 0)
			return rc;
		if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (stop_fd >= 0 && p[1].revents != 0)
			return 0;
	}
}

/* setSecret or testSecret: the command, the password on stdin. */
/* A command that echoes what it read would put the password in the log:
 * every copy of it in text becomes '*'s. */
static void mask(char *text, const char *pw, size_t len)
{
	char *p = text;

	while (len > 0 && (p = memmem(p, strlen(p), pw, len)) != NULL) {
		memset(p, '*', len);
		p += len;
	}
}

static void progress(struct kt_rot_job *j, enum kt_rot_step next)
{
	if (j->progress != NULL)
		j->progress(j->progress_ctx, next);
}

static bool run_command(struct kt_rot_job *j, int helper_fd, int stop_fd, enum kt_rot_step s,
			const char *pw, size_t len)
{
	bool has = s == KT_ROT_SET ? j->has_set : j->has_test;
	const char *what = s == KT_ROT_SET ? "set_command" : "test_command";
	struct kt_priv_reply r;
	int rc;

	if (!has) {
		j->result[s] = "skipped";
		snprintf(j->detail[s], sizeof(j->detail[s]), "no %s", what);
		return true;
	}
	if (helper_fd < 0) {
		fail(j, s, KT_ROT_FAILED, "no privileged helper to run %s", what);
		return false;
	}
	memset(&r, 0, sizeof(r));
	rc = helper_run(helper_fd, stop_fd,
			s == KT_ROT_SET ? KT_PRIV_ROTATE_SET : KT_PRIV_ROTATE_TEST, j->rotate_idx,
			pw, len, &r);
	if (rc == 0) {
		fail(j, s, KT_ROT_STOPPING, "keyturnd is stopping");
		return false;
	}
	if (rc < 0) {
		fail(j, s, KT_ROT_FAILED, "the privileged helper failed: %s", strerror(-rc));
		return false;
	}
	mask(r.text, pw, len);
	if ((r.h.flags & KT_PRIV_TIMED_OUT) != 0) {
		fail(j, s, KT_ROT_FAILED, "%s timed out (command_timeout) and was killed%s%s", what,
		     r.text[0] != '\0' ? ": " : "", r.text);
		return false;
	}
	if (r.h.status < 0) {
		fail(j, s, KT_ROT_FAILED, "%s could not start: %s", what, strerror(-r.h.status));
		return false;
	}
	if (WIFSIGNALED(r.h.status)) {
		fail(j, s, KT_ROT_FAILED, "%s was killed by signal %d%s%s", what,
		     WTERMSIG(r.h.status), r.text[0] != '\0' ? ": " : "", r.text);
		return false;
	}
	if (WEXITSTATUS(r.h.status) != 0) {
		fail(j, s, KT_ROT_FAILED, "%s exited with status %d%s%s", what,
		     WEXITSTATUS(r.h.status), r.text[0] != '\0' ? ": " : "", r.text);
		return false;
	}
	j->result[s] = "ok";
	snprintf(j->detail[s], sizeof(j->detail[s]), "%s exited with status 0", what);
	return true;
}

/* createSecret: nothing to do when the token's version exists already. */
static bool create(struct aws_client *c, struct kt_rot_job *j, const char *cur_id,
		   bool token_exists)
{
	struct sm_value cur;
	struct aws_error err;
	char *pw = NULL, *value = NULL, why[200];
	const char *stages[] = { "AWSPENDING" };
	size_t len = 0;
	bool ok = false;

	if (token_exists) {
		j->result[KT_ROT_CREATE] = "skipped";
		snprintf(j->detail[KT_ROT_CREATE], sizeof(j->detail[0]),
			 "version %s exists already (AWSPENDING)", j->token);
		return true;
	}
	memset(&cur, 0, sizeof(cur));
	if (sm_get_secret_value(c, j->secret_id, cur_id, NULL, &cur, &err) < 0) {
		aws_failed(j, KT_ROT_CREATE, "GetSecretValue", &err);
		return false;
	}
	if (sm_get_random_password(c, &j->policy, &pw, &err) < 0) {
		aws_failed(j, KT_ROT_CREATE, "GetRandomPassword", &err);
		goto out;
	}
	if (new_value(j, &cur, pw, &value, &len, why, sizeof(why)) < 0) {
		fail(j, KT_ROT_CREATE, KT_ROT_FAILED, "%s", why);
		goto out;
	}
	if (sm_put_secret_version(c, j->secret_id, j->token, value, len, false, stages, 1, NULL,
				  &err) < 0) {
		aws_failed(j, KT_ROT_CREATE, "PutSecretValue", &err);
		goto out;
	}
	j->result[KT_ROT_CREATE] = "ok";
	snprintf(j->detail[KT_ROT_CREATE], sizeof(j->detail[0]),
		 "version %s made and labelled AWSPENDING", j->token);
	ok = true;
out:
	kt_str_free_wiped(value);
	kt_str_free_wiped(pw);
	sm_value_free(&cur);
	return ok;
}

/* finishSecret: AWSCURRENT moved to the token's version, then AWSPENDING
 * taken off it (Secrets Manager's own rotation leaves no label behind). */
static bool finish(struct aws_client *c, struct kt_rot_job *j, const char *cur_id)
{
	struct aws_error err;

	if (sm_update_secret_version_stage(c, j->secret_id, "AWSCURRENT", j->token, cur_id, &err) <
	    0) {
		aws_failed(j, KT_ROT_FINISH, "UpdateSecretVersionStage", &err);
		return false;
	}
	j->result[KT_ROT_FINISH] = "ok";
	if (sm_update_secret_version_stage(c, j->secret_id, "AWSPENDING", NULL, j->token, &err) < 0)
		snprintf(j->detail[KT_ROT_FINISH], sizeof(j->detail[0]),
			 "AWSCURRENT moved to %s; AWSPENDING stays on it (%.40s)", j->token,
			 err.type);
	else
		snprintf(j->detail[KT_ROT_FINISH], sizeof(j->detail[0]),
			 "AWSCURRENT moved to %s from %s", j->token,
			 cur_id != NULL ? cur_id : "none");
	return true;
}

void kt_rot_run(struct aws_client *c, int helper_fd, int stop_fd, struct kt_rot_job *j)
{
	struct sm_description d;
	struct sm_value pend;
	struct json_object *holder = NULL;
	struct aws_error err;
	const struct sm_version *mine;
	const char *cur_id, *pend_id, *pw;
	size_t len = 0;

	for (int s = 0; s < KT_ROT_NSTEPS; s++)
		j->result[s] = "not_run";
	j->outcome = KT_ROT_FAILED;
	j->step = j->from;
	memset(&d, 0, sizeof(d));
	memset(&pend, 0, sizeof(pend));
	if (sm_describe_secret(c, j->secret_id, &d, &err) < 0) {
		aws_failed(j, j->from, "DescribeSecret", &err);
		return;
	}
	cur_id = sm_description_version_for(&d, "AWSCURRENT");
	pend_id = sm_description_version_for(&d, "AWSPENDING");
	mine = find_version(&d, j->token);
	snprintf(j->previous, sizeof(j->previous), "%s", cur_id != NULL ? cur_id : "");
	snprintf(j->version, sizeof(j->version), "%s", j->token);
	if (has_stage(mine, "AWSCURRENT")) {
		/* Finished before (a restart after finishSecret). */
		for (int s = 0; s < KT_ROT_NSTEPS; s++)
			j->result[s] = "skipped";
		snprintf(j->detail[KT_ROT_FINISH], sizeof(j->detail[0]),
			 "version %s is AWSCURRENT already", j->token);
		if (has_stage(mine, "AWSPENDING"))
			(void)sm_update_secret_version_stage(c, j->secret_id, "AWSPENDING", NULL,
							     j->token, &err);
		j->outcome = KT_ROT_ROTATED;
		j->step = KT_ROT_FINISH;
		j->previous[0] = '\0';
		goto out;
	}
	if (pend_id != NULL && strcmp(pend_id, j->token) != 0 &&
	    (cur_id == NULL || strcmp(pend_id, cur_id) != 0)) {
		fail(j, KT_ROT_CREATE, KT_ROT_BUSY,
		     "version %s holds AWSPENDING: another rotation (another host or a Lambda) "
		     "is under way; it is left alone",
		     pend_id);
		/* Nothing was made here: no token to keep. */
		j->drop_token = mine == NULL;
		goto out;
	}
	if (mine != NULL && !has_stage(mine, "AWSPENDING")) {
		/* Its label was taken away (by an administrator, or another
		 * rotator that finished meanwhile): the next run starts anew. */
		fail(j, KT_ROT_CREATE, KT_ROT_FAILED,
		     "version %s lost its AWSPENDING label: this rotation is abandoned, and the "
		     "next one makes a new version",
		     j->token);
		j->drop_token = true;
		goto out;
	}
	if (!create(c, j, cur_id, mine != NULL))
		goto out;
	j->step = KT_ROT_SET;
	if (j->from <= KT_ROT_SET)
		progress(j, KT_ROT_SET);
	if (sm_get_secret_value(c, j->secret_id, j->token, "AWSPENDING", &pend, &err) < 0) {
		aws_failed(j, j->from > KT_ROT_SET ? j->from : KT_ROT_SET, "GetSecretValue", &err);
		goto out;
	}
	pw = pending_password(j, &pend, &holder, &len);
	if (pw == NULL) {
		fail(j, KT_ROT_SET, KT_ROT_FAILED, "version %s holds no string member '%s'",
		     j->token, j->key != NULL ? j->key : "(value)");
		goto out;
	}
	for (enum kt_rot_step s = KT_ROT_SET; s <= KT_ROT_TEST; s++) {
		j->step = s;
		if (j->from > s) {
			j->result[s] = "skipped";
			snprintf(j->detail[s], sizeof(j->detail[s]), "done by an earlier run");
			continue;
		}
		if (!run_command(j, helper_fd, stop_fd, s, pw, len))
			goto out;
		progress(j, s + 1);
	}
	j->step = KT_ROT_FINISH;
	if (finish(c, j, cur_id))
		j->outcome = KT_ROT_ROTATED;
out:
	kt_json_put_wiped(holder);
	sm_value_free(&pend);
	sm_description_free(&d);
}

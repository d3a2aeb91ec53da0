/* The requests keyturnd answers. Each op is a row of one table: its name,
 * who may call it, and its handler. Handlers answer from the cache, or park
 * the request on its secret while a worker asks AWS; they never block. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "answer.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "ops_int.h"

/* Fetches of uncached versions allowed per secret per refresh_min_interval. */
#define VERSION_FETCHES_PER_WINDOW 5

enum op_who {
	WHO_ANY,          /* every local user; per-secret rules apply inside */
	WHO_ROOT_OR_SELF, /* root, or a caller asking about its own account */
	WHO_ROOT,         /* root only */
};

/* One request being handled: the ops' state and the request. */
struct op_ctx {
	struct kt_ops *ops;
	const struct kt_request *r;
};

typedef enum kt_op_result (*op_fn)(struct op_ctx *x, struct json_object **answer);

static enum kt_op_result op_get(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_refresh(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_list(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_status(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_verify(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_reload(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_watch(struct op_ctx *x, struct json_object **answer);
static enum kt_op_result op_rotate(struct op_ctx *x, struct json_object **answer);

static const struct {
	const char *op;
	enum op_who who;
	op_fn fn;
} op_table[] = {
	{ "get", WHO_ANY, op_get },
	{ "refresh", WHO_ANY, op_refresh },
	{ "list", WHO_ANY, op_list },
	{ "status", WHO_ANY, op_status },
	{ "verify", WHO_ROOT_OR_SELF, op_verify },
	{ "reload", WHO_ROOT, op_reload },
	{ "watch", WHO_ANY, op_watch },
	{ "rotate", WHO_ROOT, op_rotate },
};

static void audit(const struct op_ctx *x, const char *op, const char *secret, const char *result)
{
	if (x->r->replay)
		return;
	/* Refusals are worth an operator's attention at the default level. */
	log_audit("access", strcmp(result, "allowed") == 0,
		  "op=%s secret=%s uid=%lu pid=%ld result=%s", op, secret,
		  (unsigned long)x->r->peer->uid, (long)x->r->peer->pid, result);
}

/* The members that name things. They end up in log lines and messages, so a
 * control character in one is refused rather than passed on (a newline
 * would let a caller forge log lines). Passwords are not among them. */
static const char *const name_fields[] = { "op",   "secret",  "stage", "version_id", "key",
					   "user", "service", "rhost", "tty" };

/* An optional boolean member: false when it is there and not a boolean. */
static bool opt_bool(struct json_object *req, const char *name, bool *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, name, &v))
		return true;
	if (!json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

static const char *bad_name_field(struct json_object *req)
{
	for (size_t i = 0; i < sizeof(name_fields) / sizeof(name_fields[0]); i++) {
		struct json_object *v;
		const char *s;

		if (!json_object_object_get_ex(req, name_fields[i], &v) ||
		    !json_object_is_type(v, json_type_string))
			continue;
		s = kt_json_str(req, name_fields[i]);
		if (s == NULL)
			return name_fields[i];
		for (; *s != '\0'; s++) {
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				return name_fields[i];
		}
	}
	return NULL;
}

/* Finds the entry a request names and checks the caller may read it. */
static struct kt_entry *lookup(struct op_ctx *x, const char *op, struct json_object **answer)
{
	const char *name = kt_json_str(x->r->req, "secret");
	struct kt_entry *e;
	char shown[160];

	if (name == NULL || name[0] == '\0') {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"secret\" must be a non-empty string");
		return NULL;
	}
	e = kt_cache_find(x->ops->cache, name);
	kt_json_printable(name, shown, sizeof(shown));
	/* Secrets that only logins use are for verify, never for reading. A
	 * caller other than root gets one answer for a name it may not read,
	 * whether it is configured or not, so it cannot probe for names; the
	 * log (for root) still tells the two apart. */
	if (e == NULL || e->login_only) {
		audit(x, op, shown, "not_found");
		if (x->r->peer->uid != 0) {
			x->ops->denied++;
			*answer = kt_proto_error(KT_PERR_DENIED, "uid %lu may not read %s",
						 (unsigned long)x->r->peer->uid, shown);
		} else {
			*answer = kt_proto_error(KT_PERR_NOT_FOUND,
						 "no secret named %s is configured", shown);
		}
		return NULL;
	}
	if (!kt_acl_may_read(e->cfg, x->r->peer)) {
		x->ops->denied++;
		audit(x, op, e->name, "denied");
		*answer = kt_proto_error(KT_PERR_DENIED, "uid %lu may not read %s",
					 (unsigned long)x->r->peer->uid, shown);
		return NULL;
	}
	return e;
}

/* Parks the request on e until its job ends (engine.h). */
static enum kt_op_result park(struct op_ctx *x, struct kt_entry *e, enum kt_wait_kind kind,
			      struct json_object **answer)
{
	if (kt_engine_wait(x->ops->eng, e, x->r->conn_id, x->r->peer, kind, x->r->req) < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}

/* Why a value in hand may no longer be served (max_stale has passed). */
static struct json_object *unservable(const struct op_ctx *x, const struct kt_entry *e)
{
	long max_stale = x->ops->cfg->max_stale;
	struct json_object *o;

	if (e->superseded)
		o = kt_proto_error(KT_PERR_UNAVAILABLE,
				   "%s: AWSCURRENT moved %lld s ago to a version keyturnd could "
				   "not fetch (max_stale %ld): %s",
				   e->name, (long long)(x->r->now - e->superseded_at), max_stale,
				   e->last_error);
	else
		o = kt_proto_error(KT_PERR_UNAVAILABLE,
				   "%s: no answer from AWS for %lld s (max_stale %ld): %s", e->name,
				   (long long)(x->r->now - e->last_ok), max_stale, e->last_error);
	kt_answer_add_entry_aws(o, e);
	return o;
}

/* Serves AWSCURRENT, or parks the request while it is fetched. */
static enum kt_op_result get_current(struct op_ctx *x, struct kt_entry *e, const char *key,
				     struct json_object **answer)
{
	struct kt_ops *ops = x->ops;

	if (e->cur.data != NULL) {
		if (!kt_entry_servable(e, x->r->now, ops->cfg->max_stale)) {
			*answer = unservable(x, e);
			return KT_OP_ANSWER;
		}
		/* Counted once per request: not again when replayed after a wait. */
		ops->metrics.cache_hits += !x->r->replay;
		if (key == NULL && x->r->out != NULL &&
		    kt_answer_write_hit(x->r->out, e, &e->cur, kt_entry_stale(e)) == 0)
			return KT_OP_WRITTEN;
		*answer = kt_answer_value(e, &e->cur, key, kt_entry_stale(e));
		return KT_OP_ANSWER;
	}
	if (!e->in_flight) {
		if (e->failures > 0 && x->r->now < e->next_check) {
			*answer = kt_proto_error(kt_engine_throttled_until(ops->eng) > x->r->now
							 ? KT_PERR_THROTTLED
							 : KT_PERR_UNAVAILABLE,
						 "%s: not fetched yet: %s", e->name, e->last_error);
			kt_answer_add_entry_aws(*answer, e);
			return KT_OP_ANSWER;
		}
		kt_engine_fetch_current(ops->eng, e, KT_WHY_READ);
	}
	ops->metrics.cache_misses += !x->r->replay;
	return park(x, e, KT_WAIT_CURRENT, answer);
}

static enum kt_op_result op_get(struct op_ctx *x, struct json_object **answer)
{
	const char *stage, *vid, *key;
	const struct kt_value *v;
	struct kt_entry *e;
	bool whole = false;

	if (!kt_json_opt_str(x->r->req, "stage", false, &stage) ||
	    !kt_json_opt_str(x->r->req, "version_id", false, &vid) ||
	    !kt_json_opt_str(x->r->req, "key", false, &key)) {
		*answer = kt_proto_error(
			KT_PERR_BAD_REQUEST,
			"\"stage\", \"version_id\" and \"key\" must be non-empty strings");
		return KT_OP_ANSWER;
	}
	if (!opt_bool(x->r->req, "whole", &whole) || (whole && key != NULL)) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"whole\" must be a boolean, and not given with \"key\"");
		return KT_OP_ANSWER;
	}
	e = lookup(x, "get", answer);
	if (e == NULL)
		return KT_OP_ANSWER;
	audit(x, "get", e->name, "allowed");
	if (key == NULL && !whole)
		key = e->cfg->key;
	if (e->gone) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s no longer exists in AWS: %s",
					 e->name, e->last_error);
		kt_answer_add_entry_aws(*answer, e);
		return KT_OP_ANSWER;
	}
	if (vid == NULL && (stage == NULL || strcmp(stage, "AWSCURRENT") == 0))
		return get_current(x, e, key, answer);
	if (vid == NULL)
		vid = kt_cache_version_for_stage(e, stage);
	/* The last DescribeSecret listed every stage: one it did not list is
	 * not there, and asking AWS again would only cost a call. */
	if (vid == NULL && e->stages_map != NULL) {
		char shown[80];

		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s has no version labelled %s",
					 e->name, kt_json_printable(stage, shown, sizeof(shown)));
		return KT_OP_ANSWER;
	}
	v = vid != NULL ? kt_cache_value(e, vid) : NULL;
	/* Before the first check there is no stage map; a value fetched by
	 * stage says itself which stages it carries. */
	if (v == NULL && vid == NULL && e->stages_map == NULL)
		v = kt_cache_value_with_stage(e, stage);
	if (v != NULL && stage != NULL && kt_cache_version_for_stage(e, stage) != NULL &&
	    strcmp(kt_cache_version_for_stage(e, stage), v->version_id) != 0) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s: version %s does not carry %s",
					 e->name, v->version_id, stage);
		return KT_OP_ANSWER;
	}
	if (v != NULL) {
		x->ops->metrics.cache_hits += !x->r->replay;
		*answer = kt_answer_value(e, v, key, false);
		return KT_OP_ANSWER;
	}
	if (!e->in_flight) {
		/* Versions that are not cached cost an AWS call each, and a
		 * caller could ask for made-up ones in a loop. */
		long window = x->ops->cfg->refresh_min_interval;

		if (x->r->now - e->version_window >= window) {
			e->version_window = x->r->now;
			e->version_fetches = 0;
		}
		if (e->version_fetches >= VERSION_FETCHES_PER_WINDOW) {
			*answer = kt_proto_error(
				KT_PERR_THROTTLED,
				"%s: too many reads of uncached versions; try again in %lld s",
				e->name, (long long)(e->version_window + window - x->r->now));
			return KT_OP_ANSWER;
		}
		e->version_fetches++;
		kt_engine_fetch_version(x->ops->eng, e, kt_json_str(x->r->req, "version_id"),
					stage);
	}
	x->ops->metrics.cache_misses += !x->r->replay;
	return park(x, e, KT_WAIT_VERSION, answer);
}

static enum kt_op_result op_refresh(struct op_ctx *x, struct json_object **answer)
{
	struct kt_ops *ops = x->ops;
	struct kt_entry *e = lookup(x, "refresh", answer);
	long wait;

	if (e == NULL)
		return KT_OP_ANSWER;
	audit(x, "refresh", e->name, "allowed");
	if (!e->in_flight) {
		/* A refresh is a cheap check, but callers may loop on it; one per
		 * secret per refresh_min_interval reaches AWS. */
		wait = ops->cfg->refresh_min_interval - (long)(x->r->now - e->last_refresh);
		if (e->last_refresh != 0 && wait > 0) {
			*answer =
				kt_proto_error(KT_PERR_THROTTLED,
					       "%s was checked %lld s ago; refresh again in %ld s",
					       e->name, (long long)(x->r->now - e->last_refresh),
					       wait);
			return KT_OP_ANSWER;
		}
		if (kt_engine_throttled_until(ops->eng) > x->r->now) {
			*answer = kt_proto_error(
				KT_PERR_THROTTLED,
				"AWS is throttling keyturnd; refresh again in %lld s",
				(long long)(kt_engine_throttled_until(ops->eng) - x->r->now));
			return KT_OP_ANSWER;
		}
		e->last_refresh = x->r->now;
		kt_engine_check(ops->eng, e, KT_WHY_REFRESH);
	}
	return park(x, e, KT_WAIT_REFRESH, answer);
}

static enum kt_op_result op_list(struct op_ctx *x, struct json_object **answer)
{
	bool ok = false;

	*answer = kt_ops_list(x->ops, x->r->peer, x->r->req, x->r->now);
	if (*answer == NULL)
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
	else if (kt_json_bool(*answer, "ok", &ok) && ok)
		audit(x, "list", "*", "allowed");
	return KT_OP_ANSWER;
}

static enum kt_op_result op_status(struct op_ctx *x, struct json_object **answer)
{
	audit(x, "status", "-", "allowed");
	*answer = kt_ops_status(x->ops, x->r->peer, x->r->now);
	if (*answer == NULL)
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
	return KT_OP_ANSWER;
}

static enum kt_op_result op_verify(struct op_ctx *x, struct json_object **answer)
{
	return kt_login_verify(x->ops->env.login, x->r, answer);
}

static enum kt_op_result op_reload(struct op_ctx *x, struct json_object **answer)
{
	audit(x, "reload", "-", "allowed");
	return kt_ops_reload(x->ops, answer);
}

static enum kt_op_result op_rotate(struct op_ctx *x, struct json_object **answer)
{
	return kt_ops_rotate(x->ops, x->r, answer);
}

static enum kt_op_result op_watch(struct op_ctx *x, struct json_object **answer)
{
	return kt_ops_watch(x->ops, x->r, answer);
}

/* Whether the caller may use an op at all, before any per-secret rule. */
static bool who_allows(enum op_who who, const struct op_ctx *x)
{
	const char *user;

	if (who == WHO_ANY || x->r->peer->uid == 0)
		return true;
	if (who == WHO_ROOT)
		return false;
	user = kt_json_str(x->r->req, "user");
	return user != NULL && strcmp(user, x->r->peer->name) == 0;
}

/* Handles a request, the first time or again after a wait (resumed()). */
static enum kt_op_result handle(struct kt_ops *ops, struct kt_request *r,
				struct json_object **answer)
{
	struct op_ctx x = { ops, r };
	struct json_object *v, *req = r->req;
	const char *op = kt_json_str(req, "op"), *bad;
	char shown[80];

	*answer = NULL;
	r->now = kt_sched_now();
	/* Nothing may park once the daemon stops: it would never be answered. */
	if (kt_engine_stopping(ops->eng)) {
		*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "keyturnd is stopping");
		return KT_OP_ANSWER;
	}
	if (!json_object_object_get_ex(req, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != KT_PROTO_VERSION) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"v\" must be %d", KT_PROTO_VERSION);
		return KT_OP_ANSWER;
	}
	if (op == NULL) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "\"op\" must be a string");
		return KT_OP_ANSWER;
	}
	if ((bad = bad_name_field(req)) != NULL) {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"%s\" holds a control character or a NUL", bad);
		return KT_OP_ANSWER;
	}
	for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++) {
		if (strcmp(op, op_table[i].op) != 0)
			continue;
		if (!who_allows(op_table[i].who, &x)) {
			ops->denied++;
			audit(&x, op, "-", "denied");
			*answer = kt_proto_error(KT_PERR_DENIED,
						 op_table[i].who == WHO_ROOT
							 ? "uid %lu may not %s: root only"
							 : "uid %lu may not %s for another account",
						 (unsigned long)r->peer->uid, op);
			return KT_OP_ANSWER;
		}
		return op_table[i].fn(&x, answer);
	}
	*answer = kt_proto_error(KT_PERR_BAD_REQUEST, "unknown op \"%s\"",
				 kt_json_printable(op, shown, sizeof(shown)));
	return KT_OP_ANSWER;
}

/* Each request is counted once, when answered: here, or in resume() after
 * a wait. A hit written to the door's buffer is ok. */
enum kt_op_result kt_ops_handle(struct kt_ops *ops, struct kt_request *r,
				struct json_object **answer)
{
	enum kt_op_result res = handle(ops, r, answer);
	const char *op = kt_json_str(r->req, "op");

	if (res == KT_OP_WRITTEN)
		kt_metrics_count(&ops->metrics, kt_conn_door(r->conn_id), op, "ok");
	else if (res == KT_OP_ANSWER)
		kt_metrics_answered(&ops->metrics, kt_conn_door(r->conn_id), op, *answer);
	return res;
}

/* Whether a finished version job was the one this request waits for. */
static bool job_is_for(const struct kt_job *job, struct json_object *req)
{
	const char *vid = kt_json_str(req, "version_id"), *stage = kt_json_str(req, "stage");

	if (job->kind != KT_JOB_GET || (job->version_id == NULL && job->stage == NULL))
		return false;
	if (vid != NULL)
		return job->version_id != NULL && strcmp(vid, job->version_id) == 0;
	return stage != NULL && job->stage != NULL && strcmp(stage, job->stage) == 0;
}

/* The answer to a parked request whose entry's job ended: from the job
 * itself where it was the one waited for, else by handling the request
 * again (it may park anew). */
static enum kt_op_result resumed(struct kt_ops *ops, struct kt_parked *p, struct kt_entry *e,
				 const struct kt_job *job, struct json_object **answer)
{
	struct kt_request r = { p->conn_id, &p->peer, p->req, 0, NULL, true, (int)p->kind };

	/* A refresh takes the outcome of a check (or of the fetch a check
	 * led to), not of someone else's read of another version. */
	if (p->kind == KT_WAIT_REFRESH && job != NULL &&
	    (job->purpose == PURPOSE_CHECK || job->purpose == PURPOSE_CURRENT)) {
		if (job->rc < 0) {
			*answer = kt_answer_aws_failure(e->name, &job->err);
			return KT_OP_ANSWER;
		}
		*answer = kt_answer_metadata(e, kt_sched_now(), ops->cfg->max_stale);
		if (*answer != NULL)
			json_object_object_add(*answer, "ok", json_object_new_boolean(true));
		return KT_OP_ANSWER;
	}
	if (p->kind == KT_WAIT_VERSION && job != NULL && job_is_for(job, p->req)) {
		const char *vid = kt_json_str(p->req, "version_id"),
			   *key = kt_json_str(p->req, "key");
		const struct kt_value *v;

		if (job->rc < 0) {
			*answer = kt_answer_aws_failure(e->name, &job->err);
			return KT_OP_ANSWER;
		}
		/* Answer from what this job fetched, so a request can never go
		 * round fetching again. */
		v = vid != NULL ? kt_cache_value(e, vid)
				: kt_cache_value_with_stage(e, kt_json_str(p->req, "stage"));
		/* Not there: locked memory had no room for it (the cache logged
		 * why, in last_error). */
		bool whole = false;

		if (key == NULL && !(opt_bool(p->req, "whole", &whole) && whole))
			key = e->cfg->key;
		*answer = v != NULL ? kt_answer_value(e, v, key, false)
				    : kt_proto_error(KT_PERR_UNAVAILABLE, "%s: %s", e->name,
						     e->last_error);
		return KT_OP_ANSWER;
	}
	return handle(ops, &r, answer);
}

/* The engine hands a parked request back: answer it, or park it again. */
static void resume(void *ctx, struct kt_parked *p, struct kt_entry *e, const struct kt_job *job,
		   enum kt_resume_why why)
{
	struct kt_ops *ops = ctx;
	const char *name = kt_json_str(p->req, "secret");
	struct json_object *answer = NULL;
	char shown[160];

	kt_json_printable(name != NULL ? name : "?", shown, sizeof(shown));
	switch (why) {
	case KT_RESUME_GONE:
		answer = kt_proto_error(KT_PERR_NOT_FOUND, "%s is no longer configured",
					name != NULL ? name : "the secret");
		break;
	case KT_RESUME_STOPPING:
		answer = kt_proto_error(KT_PERR_UNAVAILABLE, "keyturnd is stopping");
		break;
	case KT_RESUME_EXPIRED:
		/* since_ms holds the wait here. */
		answer = kt_proto_error(
			KT_PERR_UNAVAILABLE,
			p->kind == KT_WAIT_REFRESH
				? "%s: still being checked with AWS after %lld ms; try again"
				: "%s: still being fetched from AWS after %lld ms; try again",
			shown, (long long)p->since_ms);
		break;
	case KT_RESUME_DONE:
		if (resumed(ops, p, e, job, &answer) != KT_OP_ANSWER) {
			/* Parked again: the new waiter holds the request now. */
			json_object_put(p->req);
			return;
		}
		break;
	}
	kt_metrics_answered(&ops->metrics, kt_conn_door(p->conn_id), kt_json_str(p->req, "op"),
			    answer);
	ops->env.reply(ops->env.ctx, p->conn_id, answer);
	kt_json_put_wiped(p->req);
}

int kt_ops_new(const struct kt_ops_env *env, const struct kt_config *cfg, struct kt_ops **out)
{
	struct kt_ops *ops = calloc(1, sizeof(*ops));

	if (ops == NULL)
		return -ENOMEM;
	ops->env = *env;
	ops->eng = env->eng;
	ops->cache = kt_engine_cache(env->eng);
	ops->cfg = cfg;
	kt_engine_on_resume(env->eng, resume, ops);
	if (kt_ops_watch_start(ops) < 0) {
		free(ops);
		return -ENOMEM;
	}
	*out = ops;
	return 0;
}

void kt_ops_free(struct kt_ops *ops)
{
	if (ops == NULL)
		return;
	kt_ops_watch_free(ops);
	free(ops);
}

void kt_ops_configure(struct kt_ops *ops, const struct kt_config *cfg)
{
	ops->cfg = cfg;
	kt_ops_watch_configure(ops);
}

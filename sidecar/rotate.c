/* keyturnd's host-driven rotation, the loop thread's side: the targets
 * (one per [rotate:] section, and one per secret a login's rotate_after_use
 * rotates), when each is due (its AWS schedule's windows, a request, a
 * login's use, a rotation to resume), the state file, and the answers. The
 * steps run on the rotation thread (rotate_steps.c), one rotation at a
 * time. Times here are wall-clock Unix times: schedules are UTC. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "rotate.h"
#include "rotate_int.h"

#define BACKOFF_MAX 900
#define BUSY_BACKOFF 300
#define DENIED_WAIT 3600
#define AWAIT_CACHE 15 /* s a rotate answer waits for the new value in the cache */
#define CRON_LOOKBACK (2 * 24 * 3600)

/* --- when a target is due ---------------------------------------------------- */

/* The AWSCURRENT version's CreatedDate as the cache knows it, 0 if not. */
static time_t current_created(struct kt_rotator *r, const struct kt_rot_target *t)
{
	struct kt_cache *c = kt_engine_cache(r->eng);
	const struct kt_entry *e = kt_cache_find(c, t->name);

	if (e == NULL || e->cur.data == NULL)
		e = kt_cache_find(c, t->secret_id);
	if ((e == NULL || e->cur.data == NULL) && t->entry != NULL)
		e = kt_cache_find(c, t->entry);
	return e != NULL && e->cur.data != NULL ? e->cur.created : 0;
}

static long window_len(const struct kt_rot_target *t, time_t start)
{
	return t->window > 0 ? t->window : kt_awssched_default_window(&t->sched, start);
}

/* The schedule's window now or next: rate() from the last rotation (this
 * host's, or the value's creation), at once when overdue; cron() the
 * window that holds now or the next one, a window rotated in skipped. */
static void plan(struct kt_rotator *r, struct kt_rot_target *t, time_t now)
{
	time_t created, anchor, start;

	t->next_window = t->window_end = 0;
	if (t->schedule == NULL)
		return;
	created = current_created(r, t);
	anchor = t->last_rotated > created ? t->last_rotated : created;
	if (t->sched.is_rate) {
		if (anchor == 0)
			return; /* the first value tells when it was made */
		start = kt_awssched_next(&t->sched, anchor);
		if (start != 0 && start < now)
			start = now;
	} else {
		start = kt_awssched_next(&t->sched, anchor > now - CRON_LOOKBACK
							    ? anchor
							    : now - CRON_LOOKBACK);
		for (int i = 0; i < 1000 && start != 0 && start + window_len(t, start) <= now; i++)
			start = kt_awssched_next(&t->sched, start);
	}
	if (start == 0)
		return;
	t->next_window = start;
	t->window_end = start + window_len(t, start);
}

/* Sends the answer to every request waiting on t. */
static void answer_waiters(struct kt_rotator *r, struct kt_rot_target *t,
			   struct json_object *answer)
{
	for (size_t i = 0; i < t->nwaiters; i++) {
		struct json_object *a = answer != NULL ? json_object_get(answer) : NULL;

		if (a == NULL)
			a = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		r->reply(r->reply_ctx, t->waiters[i], a);
	}
	t->nwaiters = 0;
	json_object_put(answer);
}

/* Whether e holds t's secret: its [secret:], or a login's entry. */
static bool holds(const struct kt_rot_target *t, const struct kt_entry *e)
{
	return strcmp(e->name, t->name) == 0 || strcmp(e->name, t->secret_id) == 0 ||
	       (t->entry != NULL && strcmp(e->name, t->entry) == 0) ||
	       (e->cfg != NULL && strcmp(e->cfg->id, t->secret_id) == 0);
}

/* The entries that hold t's secret (at most 3 by name), NULLs after. */
static void entries_of(struct kt_rotator *r, const struct kt_rot_target *t, struct kt_entry **out)
{
	struct kt_cache *c = kt_engine_cache(r->eng);
	const char *names[3] = { t->name, t->secret_id, t->entry };
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		struct kt_entry *e = names[i] != NULL ? kt_cache_find(c, names[i]) : NULL;
		bool dup = false;

		for (size_t k = 0; k < n; k++)
			dup = dup || out[k] == e;
		if (e != NULL && !dup)
			out[n++] = e;
	}
	while (n < 3)
		out[n++] = NULL;
}

/* The engine told that e has a new value: a held answer goes out once the
 * cache serves the rotation's version. */
static void news(void *ctx, enum kt_news what, struct kt_entry *e, const char *version)
{
	struct kt_rotator *r = ctx;

	(void)version;
	if (what != KT_NEWS_CHANGED)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct kt_rot_target *t = r->t[i];

		if (t->held == NULL || !holds(t, e))
			continue;
		if (e->cur.version_id != NULL && strcmp(e->cur.version_id, t->version) == 0) {
			answer_waiters(r, t, t->held);
			t->held = NULL;
		}
	}
}

/* The answer for a rotation that did not run: outcome o, message msg. */
static struct json_object *not_run(const struct kt_rot_target *t, enum kt_rot_outcome o,
				   const char *msg)
{
	struct kt_rot_job j;

	memset(&j, 0, sizeof(j));
	for (int s = 0; s < KT_ROT_NSTEPS; s++)
		j.result[s] = "not_run";
	j.outcome = o;
	j.step = t->step;
	snprintf(j.message, sizeof(j.message), "%s", msg);
	return kt_rot_answer(t, &j);
}

/* --- running a rotation -------------------------------------------------------- */

static void start(struct kt_rotator *r, struct kt_rot_target *t, time_t now)
{
	struct kt_rot_job *j;
	char err[512];

	if (t->token[0] == '\0') {
		if (kt_rot_new_token(t->token) < 0) {
			t->token[0] = '\0';
			return;
		}
		t->step = KT_ROT_CREATE;
		t->started = now;
		if (!kt_rot_save(r, err, sizeof(err))) {
			/* Without the token kept, a restart would make a second
			 * version: nothing starts. */
			t->token[0] = '\0';
			t->has_result = true;
			t->last = KT_ROT_FAILED;
			t->last_step = KT_ROT_CREATE;
			snprintf(t->last_error, sizeof(t->last_error),
				 "%s: createSecret not started: cannot keep the rotation token: %s",
				 t->name, err);
			log_err("rotation %s", t->last_error);
			t->failures++;
			t->requested = false;
			t->next_try = now + t->backoff;
			answer_waiters(r, t, not_run(t, KT_ROT_FAILED, t->last_error));
			return;
		}
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->name = t->name;
	j->secret_id = t->secret_id;
	j->key = t->key;
	j->policy = t->policy;
	j->rotate_idx = t->idx;
	j->has_set = t->has_set;
	j->has_test = t->has_test;
	memcpy(j->token, t->token, sizeof(j->token));
	j->from = t->step;
	t->running = true;
	t->requested = false;
	t->resume = false;
	r->job = j;
	r->job_target = t;
	log_info("rotation %s: starting at %s (version %s)", t->name, kt_rot_step_name(t->step),
		 t->token);
	kt_rot_thread_submit(r->th, j);
}

static void finished(struct kt_rotator *r, struct kt_rot_target *t, struct kt_rot_job *j,
		     time_t now)
{
	struct json_object *answer = kt_rot_answer(t, j);
	struct kt_entry *e[3];

	t->running = false;
	t->has_result = true;
	t->last = j->outcome;
	t->last_step = j->step;
	if (j->outcome == KT_ROT_ROTATED) {
		t->token[0] = '\0';
		t->step = KT_ROT_CREATE;
		t->last_rotated = now;
		t->after_use_due = 0;
		t->backoff = BACKOFF_MIN;
		t->next_try = 0;
		t->last_error[0] = '\0';
		t->rotations++;
		log_info("rotation %s: AWSCURRENT of %s moved to version %s%s%s", t->name,
			 t->secret_id, j->version, j->previous[0] != '\0' ? " from " : "",
			 j->previous);
		kt_rot_save_or_log(r);
		snprintf(t->version, sizeof(t->version), "%s", j->version);
		entries_of(r, t, e);
		for (int i = 0; i < 3 && e[i] != NULL; i++)
			kt_engine_check(r->eng, e[i], KT_WHY_ROTATION);
		if (e[0] != NULL && t->nwaiters > 0) {
			/* Answered once the cache serves the new value. */
			json_object_put(t->held);
			t->held = answer;
			t->held_until = now + AWAIT_CACHE;
			return;
		}
		answer_waiters(r, t, answer);
		return;
	}
	if (j->outcome == KT_ROT_STOPPING && t->token[0] != '\0') {
		t->step = j->step;
		kt_rot_save_or_log(r);
	} else if (j->outcome != KT_ROT_STOPPING) {
		t->failures++;
		snprintf(t->last_error, sizeof(t->last_error), "%s", j->message);
		t->step = j->step;
		if (j->drop_token) {
			t->token[0] = '\0';
			t->step = KT_ROT_CREATE;
		}
		if (j->outcome == KT_ROT_DENIED) {
			t->next_try = now + DENIED_WAIT;
		} else {
			if (j->outcome == KT_ROT_BUSY && t->backoff < BUSY_BACKOFF)
				t->backoff = BUSY_BACKOFF;
			t->next_try = now + t->backoff;
			t->backoff = t->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : t->backoff * 2;
		}
		log_warn("rotation %s (AWSCURRENT untouched%s%s)", j->message,
			 j->step > KT_ROT_CREATE ? ", AWSPENDING kept on " : "",
			 j->step > KT_ROT_CREATE ? t->token : "");
		kt_rot_save_or_log(r);
	}
	answer_waiters(r, t, answer);
}

static void on_thread(void *ctx, uint32_t events)
{
	struct kt_rotator *r = ctx;
	struct kt_rot_job *j, *next;
	enum kt_rot_step step;

	(void)events;
	j = kt_rot_thread_take(r->th);
	if (r->job != NULL && kt_rot_thread_progress(r->th, &step) && step != r->job_target->step &&
	    r->job_target->token[0] != '\0') {
		r->job_target->step = step;
		kt_rot_save_or_log(r);
	}
	for (; j != NULL; j = next) {
		next = j->next;
		if (j == r->job) {
			struct kt_rot_target *t = r->job_target;

			r->job = NULL;
			r->job_target = NULL;
			finished(r, t, j, time(NULL));
		}
		free(j);
	}
}

/* --- the face ------------------------------------------------------------------- */

bool kt_rotator_wanted(const struct kt_config *cfg)
{
	if (cfg->nrotates > 0)
		return true;
	for (size_t i = 0; i < cfg->nlogins; i++) {
		if (cfg->logins[i].rotate_after_use > 0)
			return true;
	}
	return false;
}

int kt_rotator_new(struct kt_loop *loop, struct kt_engine *eng, struct aws_client *aws,
		   const struct kt_config *cfg, int helper_fd, kt_rotator_reply_fn *reply,
		   void *reply_ctx, struct kt_rotator **out)
{
	struct kt_rotator *r = calloc(1, sizeof(*r));
	int rc = -ENOMEM;

	if (r == NULL) {
		if (helper_fd >= 0)
			close(helper_fd);
		return rc;
	}
	r->loop = loop;
	r->eng = eng;
	r->reply = reply;
	r->reply_ctx = reply_ctx;
	if (asprintf(&r->state_path, "%s/rotations.json", cfg->state_dir) < 0)
		r->state_path = NULL;
	for (size_t i = 0; r->state_path != NULL && i < cfg->nrotates; i++) {
		struct kt_rot_target *t = kt_rot_target_from(&cfg->rotates[i], (int)i);

		if (t == NULL || kt_rot_add(r, t) < 0) {
			kt_rot_target_free(t);
			goto fail;
		}
	}
	if (r->state_path == NULL)
		goto fail;
	r->nconf = r->n;
	kt_rot_load(r);
	rc = kt_rot_thread_start(aws, helper_fd, &r->th);
	helper_fd = -1;
	if (rc < 0)
		goto fail;
	rc = kt_loop_io_add(loop, kt_rot_thread_fd(r->th), EPOLLIN, on_thread, r, &r->io);
	if (rc == 0)
		rc = kt_engine_subscribe(eng, news, r);
	if (rc < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	if (helper_fd >= 0)
		close(helper_fd);
	log_err("rotation: cannot start: %s", strerror(-rc));
	kt_rotator_free(r);
	return rc;
}

void kt_rotator_free(struct kt_rotator *r)
{
	if (r == NULL)
		return;
	kt_loop_io_del(r->loop, r->io);
	/* The rotation running ends (its AWS call cancelled with the
	 * workers', a command left to the helper): its outcome is recorded,
	 * and an unfinished one resumes at the next start. */
	for (struct kt_rot_job *j = kt_rot_thread_stop(r->th), *next; j != NULL; j = next) {
		next = j->next;
		if (j == r->job) {
			r->job = NULL;
			finished(r, r->job_target, j, time(NULL));
		}
		free(j);
	}
	for (size_t i = 0; i < r->n; i++) {
		struct kt_rot_target *t = r->t[i];

		if (t->held != NULL) {
			answer_waiters(r, t, t->held);
			t->held = NULL;
		}
		if (t->nwaiters > 0) {
			char msg[300];

			snprintf(msg, sizeof(msg),
				 "%.200s: keyturnd is stopping; the rotation resumes at its next "
				 "start",
				 t->name);
			answer_waiters(r, t, not_run(t, KT_ROT_STOPPING, msg));
		}
		kt_rot_target_free(t);
	}
	free(r->t);
	free(r->state_path);
	free(r);
}

void kt_rotator_tick(struct kt_rotator *r)
{
	time_t now = time(NULL);

	for (size_t i = 0; i < r->n; i++) {
		struct kt_rot_target *t = r->t[i];

		if (t->held != NULL && now >= t->held_until) {
			answer_waiters(r, t, t->held);
			t->held = NULL;
		}
		if (!t->running)
			plan(r, t, now);
	}
	for (size_t i = 0; r->job == NULL && i < r->n; i++) {
		if (kt_rot_due(r->t[i], now))
			start(r, r->t[i], now);
	}
}

void kt_rotator_configure(struct kt_rotator *r, const struct kt_config *next)
{
	bool same = next->nrotates == r->nconf;

	for (size_t i = 0; same && i < r->nconf; i++) {
		char *sig = kt_rot_signature(&next->rotates[i]);

		same = sig != NULL && strcmp(sig, r->t[i]->signature) == 0;
		free(sig);
	}
	if (!same)
		log_warn("reload: [rotate:] sections changed; the rotations and commands read at "
			 "start stay until keyturnd restarts");
}

void kt_rotator_used(struct kt_rotator *r, const char *secret_id, const char *entry,
		     const char *key, long delay)
{
	struct kt_rot_target *t = kt_rot_by_id(r, secret_id);
	time_t now = time(NULL);

	if (t == NULL) {
		t = kt_rot_target_new(secret_id, secret_id, key);
		if (t != NULL && strcmp(entry, secret_id) != 0 &&
		    (t->entry = strdup(entry)) == NULL) {
			kt_rot_target_free(t);
			t = NULL;
		}
		if (t == NULL || kt_rot_add(r, t) < 0) {
			kt_rot_target_free(t);
			log_err("rotation %s: out of memory: the rotation after use is not kept",
				secret_id);
			return;
		}
	}
	if (t->after_use_due != 0)
		return;
	t->after_use_due = now + delay;
	log_info("rotation %s: its password was used to log in; rotating it in %ld s", t->name,
		 delay);
	kt_rot_save_or_log(r);
}

int kt_rotator_request(struct kt_rotator *r, const char *name, uint64_t conn_id)
{
	struct kt_rot_target *t = NULL;
	uint64_t *w;

	for (size_t i = 0; i < r->nconf; i++) {
		if (strcmp(r->t[i]->name, name) == 0)
			t = r->t[i];
	}
	if (t == NULL)
		return -ENOENT;
	/* The last rotation's answer, still waiting for the cache, goes to
	 * its own requests now: this request starts another. */
	if (t->held != NULL) {
		answer_waiters(r, t, t->held);
		t->held = NULL;
	}
	w = realloc(t->waiters, (t->nwaiters + 1) * sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	t->waiters = w;
	t->waiters[t->nwaiters++] = conn_id;
	if (!t->running) {
		t->requested = true;
		if (r->job == NULL)
			start(r, t, time(NULL));
	}
	return 0;
}

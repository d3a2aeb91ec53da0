/* keyturnd's rotations as callers see them: the rotate op's answer (each
 * step's result) and status's "rotations" object. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/proto.h"
#include "rotate_int.h"

/* --- answers ------------------------------------------------------------------ */

static struct json_object *steps_json(const struct kt_rot_job *j)
{
	struct json_object *a = json_object_new_array();

	for (int s = 0; a != NULL && s < KT_ROT_NSTEPS; s++) {
		struct json_object *o = json_object_new_object();

		if (o == NULL || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			break;
		}
		json_object_object_add(o, "step", json_object_new_string(kt_rot_step_name(s)));
		json_object_object_add(o, "result", json_object_new_string(j->result[s]));
		json_object_object_add(o, "detail",
				       j->detail[s][0] != '\0'
					       ? json_object_new_string(j->detail[s])
					       : NULL);
	}
	return a;
}

struct json_object *kt_rot_answer(const struct kt_rot_target *t, const struct kt_rot_job *j)
{
	struct json_object *o;

	if (j->outcome == KT_ROT_ROTATED) {
		o = json_object_new_object();
		if (o == NULL)
			return NULL;
		json_object_object_add(o, "ok", json_object_new_boolean(true));
		json_object_object_add(o, "version", json_object_new_string(j->version));
		json_object_object_add(o, "previous",
				       j->previous[0] != '\0' ? json_object_new_string(j->previous)
							      : NULL);
	} else {
		o = kt_proto_error(KT_PERR_UNAVAILABLE, "%s", j->message);
		if (o == NULL)
			return NULL;
		json_object_object_add(o, "step",
				       json_object_new_string(kt_rot_step_name(j->step)));
	}
	json_object_object_add(o, "secret", json_object_new_string(t->name));
	json_object_object_add(o, "outcome",
			       json_object_new_string(kt_rot_outcome_name(j->outcome)));
	json_object_object_add(o, "steps", steps_json(j));
	return o;
}

bool kt_rot_due(const struct kt_rot_target *t, time_t now)
{
	if (t->running)
		return false;
	if (t->requested)
		return true;
	if (now < t->next_try)
		return false;
	if (t->resume)
		return true;
	if (t->after_use_due != 0 && now >= t->after_use_due)
		return true;
	return t->next_window != 0 && now >= t->next_window && now < t->window_end;
}

static const char *state_name(const struct kt_rot_target *t, time_t now)
{
	if (t->running)
		return "running";
	if (kt_rot_due(t, now))
		return "due";
	if (!t->has_result || t->last == KT_ROT_ROTATED || t->last == KT_ROT_STOPPING)
		return "idle";
	if (t->last == KT_ROT_BUSY)
		return "busy";
	if (t->last == KT_ROT_DENIED)
		return "denied";
	/* Tried again by itself only after a login's use or inside a window;
	 * otherwise at the next window, start or request. */
	if (t->next_try > now &&
	    (t->after_use_due != 0 || (t->window_end != 0 && t->next_try < t->window_end)))
		return "retrying";
	return "failed";
}

struct json_object *kt_rotator_status(const struct kt_rotator *r)
{
	struct json_object *all = json_object_new_object();
	time_t now = time(NULL);

	for (size_t i = 0; all != NULL && i < r->n; i++) {
		const struct kt_rot_target *t = r->t[i];
		struct json_object *o = json_object_new_object();
		bool failed = t->has_result && t->last != KT_ROT_ROTATED;

		if (o == NULL || json_object_object_add(all, t->name, o) < 0) {
			json_object_put(o);
			json_object_put(all);
			return NULL;
		}
		json_object_object_add(o, "secret_id", json_object_new_string(t->secret_id));
		json_object_object_add(o, "schedule",
				       t->schedule != NULL ? json_object_new_string(t->schedule)
							   : NULL);
		json_object_object_add(o, "window",
				       json_object_new_int64(
					       t->next_window != 0 ? t->window_end - t->next_window
								   : t->window));
		json_object_object_add(o, "next_window", json_object_new_int64(t->next_window));
		json_object_object_add(o, "window_end", json_object_new_int64(t->window_end));
		json_object_object_add(o, "state", json_object_new_string(state_name(t, now)));
		json_object_object_add(o, "step",
				       t->running
					       ? json_object_new_string(kt_rot_step_name(t->step))
				       : failed ? json_object_new_string(
							  kt_rot_step_name(t->last_step))
						: NULL);
		json_object_object_add(o, "last_result",
				       t->has_result ? json_object_new_string(
							       kt_rot_outcome_name(t->last))
						     : NULL);
		json_object_object_add(o, "last_error",
				       t->last_error[0] != '\0'
					       ? json_object_new_string(t->last_error)
					       : NULL);
		json_object_object_add(o, "last_rotated", json_object_new_int64(t->last_rotated));
		json_object_object_add(o, "pending_version",
				       t->token[0] != '\0' ? json_object_new_string(t->token)
							   : NULL);
		json_object_object_add(o, "after_use_due", json_object_new_int64(t->after_use_due));
		json_object_object_add(o, "rotations",
				       json_object_new_int64((int64_t)t->rotations));
		json_object_object_add(o, "failures", json_object_new_int64((int64_t)t->failures));
	}
	return all;
}

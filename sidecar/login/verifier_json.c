/* The JSON form of an offline login verifier: the encoding that
 * verifier.c writes to state_dir and the strict decoding of what it reads
 * back. No file I/O here; verifier_int.h says what each side owns. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/kt_json.h"
#include "common/secmem.h"
#include "verifier.h"
#include "verifier_int.h"

/* Adds val to obj under key, taking val; a NULL val (allocation failure)
 * clears *ok. */
static void vf_add(struct json_object *obj, const char *key, struct json_object *val, bool *ok)
{
	if (val == NULL || json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		*ok = false;
	}
}

static struct json_object *vf_version_json(const char *version, const char *hash, bool with_until,
					   time_t until)
{
	struct json_object *o = json_object_new_object();
	bool ok = o != NULL;

	if (ok) {
		vf_add(o, "version_id", json_object_new_string(version), &ok);
		vf_add(o, "hash", json_object_new_string(hash), &ok);
		if (with_until)
			vf_add(o, "until", json_object_new_int64((int64_t)until), &ok);
	}
	if (!ok) {
		kt_json_put_wiped(o);
		o = NULL;
	}
	return o;
}

struct json_object *kt_verifier_to_json(const struct kt_verifier *v)
{
	struct json_object *o = json_object_new_object();
	bool ok = o != NULL;

	if (!ok)
		goto out;
	vf_add(o, "v", json_object_new_int(1), &ok);
	vf_add(o, "secret_id", json_object_new_string(v->secret_id), &ok);
	if (v->key != NULL)
		vf_add(o, "key", json_object_new_string(v->key), &ok);
	else if (json_object_object_add(o, "key", NULL) != 0)
		ok = false;
	vf_add(o, "user", json_object_new_string(v->user), &ok);
	vf_add(o, "current", vf_version_json(v->cur_version, v->cur_hash, false, 0), &ok);
	if (v->prev_version != NULL)
		vf_add(o, "previous",
		       vf_version_json(v->prev_version, v->prev_hash, true, v->prev_until), &ok);
	else if (json_object_object_add(o, "previous", NULL) != 0)
		ok = false;
	vf_add(o, "confirmed_at", json_object_new_int64((int64_t)v->confirmed_at), &ok);
out:
	if (!ok) {
		kt_json_put_wiped(o);
		o = NULL;
	}
	return o;
}

/* Copies a non-empty string member into *dst; -EINVAL when it is missing,
 * empty or not a string. */
static int vf_take_str(struct json_object *obj, const char *key, char **dst)
{
	const char *s = kt_json_str(obj, key);

	if (s == NULL || s[0] == '\0')
		return -EINVAL;
	*dst = kt_strdup(s);
	return *dst == NULL ? -ENOMEM : 0;
}

static int vf_take_time(struct json_object *obj, const char *key, time_t *dst)
{
	long long n;

	if (!kt_json_int64(obj, key, &n) || n < 0 || (long long)(time_t)n != n)
		return -EINVAL;
	*dst = (time_t)n;
	return 0;
}

/* Reads {"version_id":..,"hash":..} (and "until" when until is not NULL). */
static int vf_version_from_json(struct json_object *o, char **version,
				char hash[KT_VERIFIER_HASH_MAX], time_t *until)
{
	const char *h;
	int rc;

	if (!json_object_is_type(o, json_type_object)) {
		rc = -EINVAL;
		goto out;
	}
	h = kt_json_str(o, "hash");
	if (!kt_verifier_hash_ok(h)) {
		rc = -EINVAL;
		goto out;
	}
	rc = vf_take_str(o, "version_id", version);
	if (rc == 0 && until != NULL)
		rc = vf_take_time(o, "until", until);
	if (rc == 0)
		memcpy(hash, h, strlen(h) + 1);
out:
	return rc;
}

/* Fills v from a parsed file. Members other than those known are ignored;
 * the known ones must have exactly their types. */
int kt_verifier_from_json(struct json_object *obj, struct kt_verifier *v)
{
	struct json_object *key, *cur, *prev;
	long long ver;
	int rc = -EINVAL;

	if (!json_object_is_type(obj, json_type_object) || !kt_json_int64(obj, "v", &ver) ||
	    ver != 1)
		goto out;
	rc = vf_take_str(obj, "secret_id", &v->secret_id);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if (!json_object_object_get_ex(obj, "key", &key))
		goto out;
	if (key != NULL) {
		if (kt_json_str(obj, "key") == NULL)
			goto out;
		v->key = kt_strdup(kt_json_str(obj, "key"));
		if (v->key == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = vf_take_str(obj, "user", &v->user);
	if (rc == 0)
		rc = vf_take_time(obj, "confirmed_at", &v->confirmed_at);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if (!json_object_object_get_ex(obj, "current", &cur) ||
	    !json_object_object_get_ex(obj, "previous", &prev))
		goto out;
	rc = vf_version_from_json(cur, &v->cur_version, v->cur_hash, NULL);
	if (rc == 0 && prev != NULL)
		rc = vf_version_from_json(prev, &v->prev_version, v->prev_hash, &v->prev_until);
out:
	return rc;
}

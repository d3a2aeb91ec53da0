/* The loop-owned cache of secret values: a name-sorted array of entries,
 * each with its AWSCURRENT value and a few other versions callers asked for.
 * Value bytes live in the locked arena (kt_secure_alloc), metadata on the
 * ordinary heap. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "secmem.h"

void kt_value_clear(struct kt_value *v)
{
	free(v->version_id);
	for (size_t i = 0; i < v->nstages; i++)
		free(v->stages[i]);
	free(v->stages);
	kt_secure_free(v->data, v->len);
	memset(v, 0, sizeof(*v));
}

/* Copies the value bytes of src into the locked arena. Every reader takes
 * the length, so no NUL follows them: the arena hands out powers of two,
 * and a terminator would double the room a 4 KiB value takes. Without room the value is refused: it is
 * logged with what would fix it, recorded for status, and -ENOSPC comes
 * back with nothing changed, so whatever the entry held before is still
 * served. Never falls back to unlocked memory. */
static int value_lock(struct kt_entry *e, const struct sm_value *src, unsigned char **out)
{
	struct kt_secure_stats st;
	unsigned char *p = kt_secure_alloc(src->len);

	*out = p;
	if (p != NULL) {
		if (src->len > 0)
			memcpy(p, src->data, src->len);
		return 0;
	}
	kt_secure_stats(&st);
	snprintf(e->last_error, sizeof(e->last_error),
	         "version %.64s (%zu bytes) not cached: no room in locked memory "
	         "(locked_memory = %zu bytes, %zu in use); raise locked_memory",
	         src->version_id != NULL ? src->version_id : "?", src->len, st.size, st.used);
	e->last_error_at = time(NULL);
	log_warn("%s: %s; the value cached before, if any, is still served", e->name,
	         e->last_error);
	return -ENOSPC;
}

/* Moves an sm_value's metadata into a kt_value and its bytes into the
 * locked arena (the worker's copy is wiped and freed); the ARN and name
 * stay with the caller. dst must be cleared already. */
static void value_take(struct kt_value *dst, struct sm_value *src, unsigned char *data, time_t now)
{
	dst->version_id = src->version_id;
	dst->stages = src->stages;
	dst->nstages = src->nstages;
	dst->data = data;
	dst->len = src->len;
	dst->binary = src->binary;
	dst->fetched_at = now;
	kt_free_wiped(src->data, src->len + (src->binary ? 0 : 1));
	src->version_id = NULL;
	src->stages = NULL;
	src->nstages = 0;
	src->data = NULL;
	src->len = 0;
}

static void entry_free(struct kt_entry *e)
{
	if (e == NULL)
		return;
	kt_cache_forget(e);
	free(e->name);
	free(e->arn);
	free(e->login_user);
	if (e->own_cfg != NULL) {
		free(e->own_cfg->name);
		free(e->own_cfg->id);
		free(e->own_cfg);
	}
	free(e);
}

void kt_cache_init(struct kt_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->next_id = 1;
}

void kt_cache_free(struct kt_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		entry_free(c->entries[i]);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

static int entry_cmp(const void *a, const void *b)
{
	const struct kt_entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static struct kt_entry *find_name(struct kt_cache *c, const char *name)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->entries[mid]->name);

		if (r == 0)
			return c->entries[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int kt_cache_sync(struct kt_cache *c, const struct kt_config *cfg)
{
	struct kt_entry **next = calloc(cfg->nsecrets + c->n + 1, sizeof(*next));
	bool *kept = calloc(c->n + 1, sizeof(*kept));
	size_t n = 0;
	int rc = -ENOMEM;

	if (next == NULL || kept == NULL)
		goto out;
	/* Build the new array first, so a failed allocation changes nothing. */
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		const struct kt_secret_cfg *s = &cfg->secrets[i];
		struct kt_entry *e = find_name(c, s->name);

		if (e == NULL) {
			e = calloc(1, sizeof(*e));
			if (e == NULL || (e->name = kt_strdup(s->name)) == NULL) {
				free(e);
				goto out;
			}
			e->id = c->next_id++;
		} else {
			for (size_t j = 0; j < c->n; j++) {
				if (c->entries[j] == e)
					kept[j] = true;
			}
		}
		next[n++] = e;
	}
	for (size_t i = 0; i < n; i++) {
		struct kt_entry *e = next[i];
		const struct kt_secret_cfg *s = kt_config_secret(cfg, e->name);

		/* A section that now names another AWS secret starts afresh. */
		if (e->cfg != NULL && strcmp(e->cfg->id, s->id) != 0) {
			kt_cache_forget(e);
			free(e->arn);
			e->arn = NULL;
			e->offline_written = 0;
			e->next_check = 0;
			e->failures = 0;
			e->gone = false;
		}
		e->cfg = s;
	}
	for (size_t j = 0; j < c->n; j++) {
		if (c->entries[j]->login_only && !kept[j]) {
			next[n++] = c->entries[j];
			kept[j] = true;
		}
	}
	for (size_t j = 0; j < c->n; j++) {
		if (!kept[j])
			entry_free(c->entries[j]);
	}
	free(c->entries);
	c->entries = next;
	c->n = n;
	next = NULL;
	qsort(c->entries, c->n, sizeof(*c->entries), entry_cmp);
	rc = 0;
out:
	if (next != NULL) {
		for (size_t i = 0; i < n; i++) {
			if (find_name(c, next[i]->name) != next[i])
				entry_free(next[i]);
		}
	}
	free(next);
	free(kept);
	return rc;
}

struct kt_entry *kt_cache_find(struct kt_cache *c, const char *name)
{
	struct kt_entry *e = find_name(c, name);

	if (e != NULL)
		return e;
	/* Callers may also name a secret by its ARN or by the configured id. */
	for (size_t i = 0; i < c->n; i++) {
		e = c->entries[i];
		if ((e->arn != NULL && strcmp(e->arn, name) == 0) ||
		    (e->cfg != NULL && strcmp(e->cfg->id, name) == 0))
			return e;
	}
	return NULL;
}

struct kt_entry *kt_cache_add_login(struct kt_cache *c, const char *secret_id)
{
	struct kt_entry *e = NULL, **grown;
	size_t len = strlen(secret_id);

	if (c->n > 0 && kt_cache_find(c, secret_id) != NULL)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->own_cfg = calloc(1, sizeof(*e->own_cfg))) == NULL ||
	    (e->name = malloc(len + 7)) == NULL || (e->own_cfg->id = kt_strdup(secret_id)) == NULL)
		goto fail;
	memcpy(e->name, "login:", 6);
	memcpy(e->name + 6, secret_id, len + 1);
	if (find_name(c, e->name) != NULL || (e->own_cfg->name = kt_strdup(e->name)) == NULL)
		goto fail;
	grown = realloc(c->entries, (c->n + 1) * sizeof(*grown));
	if (grown == NULL)
		goto fail;
	c->entries = grown;
	e->login_only = true;
	e->cfg = e->own_cfg;
	e->id = c->next_id++;
	c->entries[c->n++] = e;
	qsort(c->entries, c->n, sizeof(*c->entries), entry_cmp);
	return e;
fail:
	entry_free(e);
	return NULL;
}

void kt_cache_remove(struct kt_cache *c, struct kt_entry *e)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->entries[i] != e)
			continue;
		memmove(&c->entries[i], &c->entries[i + 1], (c->n - i - 1) * sizeof(*c->entries));
		c->n--;
		entry_free(e);
		return;
	}
}

struct kt_entry *kt_cache_by_id(struct kt_cache *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->entries[i]->id == id)
			return c->entries[i];
	}
	return NULL;
}

/* Finds a slot among the other versions: the same version, an empty slot,
 * else the oldest. */
static struct kt_value *other_slot(struct kt_entry *e, const char *version_id)
{
	struct kt_value *oldest = &e->other[0];

	for (size_t i = 0; i < KT_CACHE_OTHER_VERSIONS; i++) {
		struct kt_value *v = &e->other[i];

		if (v->version_id != NULL && strcmp(v->version_id, version_id) == 0)
			return v;
	}
	for (size_t i = 0; i < KT_CACHE_OTHER_VERSIONS; i++) {
		if (e->other[i].data == NULL)
			return &e->other[i];
		if (e->other[i].fetched_at < oldest->fetched_at)
			oldest = &e->other[i];
	}
	return oldest;
}

static void take_arn(struct kt_entry *e, struct sm_value *v)
{
	if (v->arn != NULL && (e->arn == NULL || strcmp(e->arn, v->arn) != 0)) {
		free(e->arn);
		e->arn = v->arn;
		v->arn = NULL;
	}
}

int kt_cache_set_current(struct kt_entry *e, struct sm_value *v, time_t now)
{
	unsigned char *data;

	/* Room first: a refused value leaves the entry and v as they were. */
	if (value_lock(e, v, &data) < 0)
		return -ENOSPC;
	take_arn(e, v);
	if (e->cur.data != NULL && e->cur.version_id != NULL &&
	    strcmp(e->cur.version_id, v->version_id) != 0) {
		struct kt_value *slot = other_slot(e, e->cur.version_id);

		char *prev = kt_strdup(e->cur.version_id);

		kt_value_clear(slot);
		*slot = e->cur;
		memset(&e->cur, 0, sizeof(e->cur));
		/* Without memory for the name, no grace: the safe side. */
		free(e->prev_version);
		e->prev_version = prev;
		e->rotated_at = prev != NULL ? now : 0;
	}
	kt_value_clear(&e->cur);
	value_take(&e->cur, v, data, now);
	return 0;
}

int kt_cache_add_other(struct kt_entry *e, struct sm_value *v, time_t now)
{
	struct kt_value *slot;
	unsigned char *data;

	if (value_lock(e, v, &data) < 0)
		return -ENOSPC;
	take_arn(e, v);
	slot = other_slot(e, v->version_id);
	kt_value_clear(slot);
	value_take(slot, v, data, now);
	return 0;
}

void kt_cache_set_stages(struct kt_entry *e, struct sm_description *d)
{
	sm_versions_free(e->stages_map, e->nstages_map);
	e->stages_map = d->versions;
	e->nstages_map = d->nversions;
	d->versions = NULL;
	d->nversions = 0;
	if (d->arn != NULL && e->arn == NULL) {
		e->arn = d->arn;
		d->arn = NULL;
	}
}

const char *kt_cache_version_for_stage(const struct kt_entry *e, const char *stage)
{
	for (size_t i = 0; i < e->nstages_map; i++) {
		for (size_t j = 0; j < e->stages_map[i].nstages; j++) {
			if (strcmp(e->stages_map[i].stages[j], stage) == 0)
				return e->stages_map[i].version_id;
		}
	}
	return NULL;
}

static bool value_has_stage(const struct kt_value *v, const char *stage)
{
	for (size_t i = 0; v->data != NULL && i < v->nstages; i++) {
		if (strcmp(v->stages[i], stage) == 0)
			return true;
	}
	return false;
}

const struct kt_value *kt_cache_value_with_stage(const struct kt_entry *e, const char *stage)
{
	const struct kt_value *best = value_has_stage(&e->cur, stage) ? &e->cur : NULL;

	for (size_t i = 0; i < KT_CACHE_OTHER_VERSIONS; i++) {
		const struct kt_value *v = &e->other[i];

		if (value_has_stage(v, stage) && (best == NULL || v->fetched_at > best->fetched_at))
			best = v;
	}
	return best;
}

const struct kt_value *kt_cache_value(const struct kt_entry *e, const char *version_id)
{
	if (e->cur.data != NULL && strcmp(e->cur.version_id, version_id) == 0)
		return &e->cur;
	for (size_t i = 0; i < KT_CACHE_OTHER_VERSIONS; i++) {
		const struct kt_value *v = &e->other[i];

		if (v->data != NULL && strcmp(v->version_id, version_id) == 0)
			return v;
	}
	return NULL;
}

void kt_cache_forget(struct kt_entry *e)
{
	kt_value_clear(&e->cur);
	for (size_t i = 0; i < KT_CACHE_OTHER_VERSIONS; i++)
		kt_value_clear(&e->other[i]);
	sm_versions_free(e->stages_map, e->nstages_map);
	e->stages_map = NULL;
	e->nstages_map = 0;
	free(e->prev_version);
	e->prev_version = NULL;
	e->rotated_at = 0;
}

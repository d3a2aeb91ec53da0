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
#include "common/log.h"
#include "common/secmem.h"

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
 * and a terminator would double the room a 4 KiB value takes. Without room the value is refused: it
 * is logged with what would fix it, recorded for status, and -ENOSPC comes back with nothing
 * changed, so whatever the entry held before is still served. Never falls back to unlocked memory.
 */
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
	/* Shown to callers, so wall-clock time; now (the schedule clock) is
	 * what rotated_at takes. */
	(void)now;
	dst->fetched_at = time(NULL);
	dst->created = src->created;
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
	free(c->by_id);
	memset(c, 0, sizeof(*c));
}

static int entry_cmp(const void *a, const void *b)
{
	const struct kt_entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int id_cmp(const void *a, const void *b)
{
	const struct kt_entry *const *x = a, *const *y = b;

	return (*x)->id < (*y)->id ? -1 : (*x)->id > (*y)->id;
}

/* The index of the first entry whose name is not less than name (or, with
 * after, greater than name): where name is or would go. */
static size_t name_pos(const struct kt_cache *c, const char *name, bool after)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->entries[mid]->name, name);

		if (r < 0 || (after && r == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct kt_entry *find_name(struct kt_cache *c, const char *name)
{
	size_t i = name_pos(c, name, false);

	return i < c->n && strcmp(c->entries[i]->name, name) == 0 ? c->entries[i] : NULL;
}

/* The index in by_id of the entry with this id, or c->n. */
static size_t id_pos(const struct kt_cache *c, uint64_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->by_id[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->by_id[lo]->id == id ? lo : c->n;
}

size_t kt_cache_after(const struct kt_cache *c, const char *name)
{
	return name != NULL ? name_pos(c, name, true) : 0;
}

/* A reload of thousands of sections runs on the loop thread, so this is
 * O(N log N): one binary search per section, one sort of each index. */
int kt_cache_sync(struct kt_cache *c, const struct kt_config *cfg)
{
	size_t cap = cfg->nsecrets + c->n + 1;
	struct kt_entry **next = calloc(cap, sizeof(*next)), **by_id = calloc(cap, sizeof(*by_id));
	const struct kt_secret_cfg **secs = calloc(cfg->nsecrets + 1, sizeof(*secs));
	bool *kept = calloc(c->n + 1, sizeof(*kept));
	size_t n = 0;
	int rc = -ENOMEM;

	if (next == NULL || by_id == NULL || secs == NULL || kept == NULL)
		goto out;
	/* Build the new array first, so a failed allocation changes nothing.
	 * The configuration has no two sections of one name. */
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		const struct kt_secret_cfg *s = &cfg->secrets[i];
		size_t j = name_pos(c, s->name, false);
		struct kt_entry *e;

		if (j < c->n && strcmp(c->entries[j]->name, s->name) == 0) {
			e = c->entries[j];
			kept[j] = true;
		} else {
			e = calloc(1, sizeof(*e));
			if (e == NULL || (e->name = kt_strdup(s->name)) == NULL) {
				free(e);
				goto out;
			}
			/* id 0: not in the cache yet (freed under out: on failure). */
		}
		secs[n] = s;
		next[n++] = e;
	}
	for (size_t i = 0; i < n; i++) {
		struct kt_entry *e = next[i];
		const struct kt_secret_cfg *s = secs[i];

		if (e->id == 0)
			e->id = c->next_id++;
		/* A section that now names another AWS secret starts afresh. */
		if (e->cfg != NULL && strcmp(e->cfg->id, s->id) != 0) {
			kt_cache_forget(e);
			free(e->arn);
			e->arn = NULL;
			e->offline_written = 0;
			e->next_check = 0;
			e->failures = 0;
			e->gone = false;
			e->superseded = false;
			e->superseded_by[0] = '\0';
			e->fetch_alone = false;
			/* A job still running asks about the old secret: its
			 * answer is dropped when it comes (kt_engine_jobs_done),
			 * and the new secret is fetched meanwhile. */
			e->in_flight = false;
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
	free(c->by_id);
	c->entries = next;
	c->by_id = by_id;
	c->n = n;
	next = NULL;
	by_id = NULL;
	qsort(c->entries, c->n, sizeof(*c->entries), entry_cmp);
	memcpy(c->by_id, c->entries, c->n * sizeof(*c->by_id));
	qsort(c->by_id, c->n, sizeof(*c->by_id), id_cmp);
	rc = 0;
out:
	if (next != NULL) {
		for (size_t i = 0; i < n; i++) {
			if (next[i]->id == 0)
				entry_free(next[i]);
		}
	}
	free(next);
	free(by_id);
	free(secs);
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
	size_t len = strlen(secret_id), pos;

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
	grown = realloc(c->by_id, (c->n + 1) * sizeof(*grown));
	if (grown == NULL)
		goto fail;
	c->by_id = grown;
	e->login_only = true;
	e->cfg = e->own_cfg;
	/* The newest id sorts last in by_id; the name goes where it sorts. */
	e->id = c->next_id++;
	c->by_id[c->n] = e;
	pos = name_pos(c, e->name, false);
	memmove(&c->entries[pos + 1], &c->entries[pos], (c->n - pos) * sizeof(*c->entries));
	c->entries[pos] = e;
	c->n++;
	return e;
fail:
	entry_free(e);
	return NULL;
}

void kt_cache_remove(struct kt_cache *c, struct kt_entry *e)
{
	size_t i = name_pos(c, e->name, false), k = id_pos(c, e->id);

	if (i >= c->n || c->entries[i] != e || k >= c->n)
		return;
	memmove(&c->entries[i], &c->entries[i + 1], (c->n - i - 1) * sizeof(*c->entries));
	memmove(&c->by_id[k], &c->by_id[k + 1], (c->n - k - 1) * sizeof(*c->by_id));
	c->n--;
	entry_free(e);
}

struct kt_entry *kt_cache_by_id(struct kt_cache *c, uint64_t id)
{
	size_t k = id_pos(c, id);

	return k < c->n ? c->by_id[k] : NULL;
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
	e->superseded = false;
	e->superseded_by[0] = '\0';
}

/* Unit tests for cache.c: syncing with a configuration (added, kept,
 * removed, re-pointed sections), lookups, where versions are kept, and
 * values in the locked arena (refused, not misplaced, when it is full). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "cache.h"
#include "common/secmem.h"

/* Two configurations' worth of sections: a sync compares the new one with
 * the old, which (as in the daemon's reload) is still alive then. */
static struct kt_secret_cfg store[2][3];
static int turn;

static void make_cfg(struct kt_config *cfg, size_t n, const char *const *names,
		     const char *const *ids)
{
	struct kt_secret_cfg *secs = store[turn++ % 2];

	memset(cfg, 0, sizeof(*cfg));
	memset(secs, 0, sizeof(store[0]));
	for (size_t i = 0; i < n; i++) {
		secs[i].name = (char *)names[i];
		secs[i].id = (char *)ids[i];
	}
	cfg->secrets = secs;
	cfg->nsecrets = n;
}

/* The locked arena of these tests: the smallest there is, so that a test
 * can fill it. */
#define ARENA KT_SECURE_MIN

/* An sm_value as a worker would hand it over. */
static void make_value_len(struct sm_value *v, const char *vid, const char *stage, const char *data,
			   size_t len)
{
	memset(v, 0, sizeof(*v));
	v->arn = kt_strdup("arn:aws:secretsmanager:us-east-1:1:secret:app/db-x");
	v->version_id = kt_strdup(vid);
	v->stages = calloc(2, sizeof(char *));
	v->stages[0] = kt_strdup(stage);
	v->nstages = 1;
	v->len = len;
	v->data = malloc(len + 1);
	memcpy(v->data, data, len);
	v->data[len] = '\0';
}

static void make_value(struct sm_value *v, const char *vid, const char *stage, const char *data)
{
	make_value_len(v, vid, stage, data, strlen(data));
}

static void test_sync_and_find(void **state)
{
	const char *names[] = { "b", "a" }, *ids[] = { "id-b", "arn:a" };
	struct kt_cache c;
	struct kt_config cfg;
	struct kt_entry *a;
	uint64_t id_a;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 2, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.entries[0]->name, "a"); /* sorted */
	a = kt_cache_find(&c, "a");
	assert_non_null(a);
	assert_ptr_equal(kt_cache_find(&c, "arn:a"), a); /* by configured id */
	assert_null(kt_cache_find(&c, "c"));
	id_a = a->id;
	assert_ptr_equal(kt_cache_by_id(&c, id_a), a);

	/* Reload keeping "a" and dropping "b": same entry, same id. */
	make_cfg(&cfg, 1, names + 1, ids + 1);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	assert_int_equal(c.n, 1);
	assert_ptr_equal(kt_cache_find(&c, "a"), a);
	assert_int_equal(a->id, id_a);
	assert_null(kt_cache_find(&c, "b"));
	kt_cache_free(&c);
}

static void test_repointed_section_starts_afresh(void **state)
{
	const char *names[] = { "a" }, *ids1[] = { "one" }, *ids2[] = { "two" };
	struct kt_cache c;
	struct kt_config cfg;
	struct sm_value v;
	struct kt_entry *e;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 1, names, ids1);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	e = kt_cache_find(&c, "a");
	make_value(&v, "v1", "AWSCURRENT", "s3cret");
	kt_cache_set_current(e, &v, 100);
	sm_value_free(&v);
	assert_non_null(e->cur.data);
	make_cfg(&cfg, 1, names, ids2);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	assert_null(e->cur.data); /* another AWS secret now: the old value is gone */
	assert_null(e->arn);
	kt_cache_free(&c);
}

static void test_versions(void **state)
{
	const char *names[] = { "a" }, *ids[] = { "a" };
	struct kt_cache c;
	struct kt_config cfg;
	struct sm_value v;
	struct kt_entry *e;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 1, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	e = kt_cache_find(&c, "a");

	make_value(&v, "v1", "AWSCURRENT", "first");
	kt_cache_set_current(e, &v, 100);
	sm_value_free(&v);
	assert_non_null(e->arn);
	make_value(&v, "v2", "AWSCURRENT", "second");
	kt_cache_set_current(e, &v, 200);
	sm_value_free(&v);
	/* The demoted value stays reachable by its version id. */
	assert_string_equal(e->cur.version_id, "v2");
	assert_non_null(kt_cache_value(e, "v1"));
	assert_memory_equal(kt_cache_value(e, "v1")->data, "first", 5);
	assert_null(kt_cache_value(e, "v9"));

	make_value(&v, "v3", "AWSPENDING", "third");
	kt_cache_add_other(e, &v, 300);
	sm_value_free(&v);
	assert_ptr_equal(kt_cache_value_with_stage(e, "AWSPENDING"), kt_cache_value(e, "v3"));
	assert_ptr_equal(kt_cache_value_with_stage(e, "AWSCURRENT"), &e->cur);
	assert_null(kt_cache_value_with_stage(e, "NOPE"));

	/* More versions than slots: the oldest goes. */
	for (int i = 0; i < KT_CACHE_OTHER_VERSIONS; i++) {
		char vid[8];

		snprintf(vid, sizeof(vid), "x%d", i);
		make_value(&v, vid, "OTHER", "x");
		kt_cache_add_other(e, &v, 400 + i);
		sm_value_free(&v);
	}
	assert_null(kt_cache_value(e, "v1"));
	assert_non_null(kt_cache_value(e, "x0"));

	kt_cache_forget(e);
	assert_null(e->cur.data);
	assert_null(kt_cache_value(e, "x0"));
	kt_cache_free(&c);
}

static void test_stage_map(void **state)
{
	const char *names[] = { "a" }, *ids[] = { "a" };
	struct kt_cache c;
	struct kt_config cfg;
	struct sm_description d = { 0 };
	struct kt_entry *e;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 1, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	e = kt_cache_find(&c, "a");
	d.versions = calloc(2, sizeof(*d.versions));
	d.nversions = 2;
	d.versions[0].version_id = kt_strdup("old");
	d.versions[0].stages = calloc(1, sizeof(char *));
	d.versions[0].stages[0] = kt_strdup("AWSPREVIOUS");
	d.versions[0].nstages = 1;
	d.versions[1].version_id = kt_strdup("new");
	d.versions[1].stages = calloc(2, sizeof(char *));
	d.versions[1].stages[0] = kt_strdup("AWSPENDING");
	d.versions[1].stages[1] = kt_strdup("AWSCURRENT");
	d.versions[1].nstages = 2;
	kt_cache_set_stages(e, &d);
	assert_null(d.versions);
	assert_string_equal(kt_cache_version_for_stage(e, "AWSCURRENT"), "new");
	assert_string_equal(kt_cache_version_for_stage(e, "AWSPREVIOUS"), "old");
	assert_null(kt_cache_version_for_stage(e, "X"));
	sm_description_free(&d);
	kt_cache_free(&c);
}

/* Login-only entries: found by their SecretId, kept by a sync (the login
 * module prunes them), removed on their own; a name taken is refused. */
static void test_login_entries(void **state)
{
	const char *names[] = { "app/db" }, *ids[] = { "app/db" };
	struct kt_cache c;
	struct kt_config cfg;
	struct kt_entry *l;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 1, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	assert_null(kt_cache_add_login(&c, "app/db")); /* a section serves it */
	l = kt_cache_add_login(&c, "hosts/h1/breakglass");
	assert_non_null(l);
	assert_true(l->login_only);
	assert_string_equal(l->name, "login:hosts/h1/breakglass");
	assert_string_equal(l->cfg->id, "hosts/h1/breakglass");
	assert_ptr_equal(kt_cache_find(&c, "hosts/h1/breakglass"), l);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	assert_int_equal(c.n, 2);
	assert_ptr_equal(kt_cache_find(&c, "hosts/h1/breakglass"), l);
	kt_cache_remove(&c, l);
	assert_int_equal(c.n, 1);
	assert_null(kt_cache_find(&c, "hosts/h1/breakglass"));
	assert_non_null(kt_cache_find(&c, "app/db"));
	kt_cache_free(&c);
}

/* A new AWSCURRENT makes the old one prev_version, from that moment; the
 * same version fetched again does not; forgetting clears it. */
static void test_rotation_recorded(void **state)
{
	const char *names[] = { "a" }, *ids[] = { "a" };
	struct kt_cache c;
	struct kt_config cfg;
	struct sm_value v;
	struct kt_entry *e;

	(void)state;
	kt_cache_init(&c);
	make_cfg(&cfg, 1, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	e = kt_cache_find(&c, "a");
	make_value(&v, "v1", "AWSCURRENT", "one");
	kt_cache_set_current(e, &v, 100);
	sm_value_free(&v);
	assert_null(e->prev_version);
	make_value(&v, "v1", "AWSCURRENT", "one");
	kt_cache_set_current(e, &v, 150);
	sm_value_free(&v);
	assert_null(e->prev_version);
	make_value(&v, "v2", "AWSCURRENT", "two");
	kt_cache_set_current(e, &v, 200);
	sm_value_free(&v);
	assert_string_equal(e->prev_version, "v1");
	assert_int_equal(e->rotated_at, 200);
	assert_non_null(kt_cache_value(e, "v1"));
	kt_cache_forget(e);
	assert_null(e->prev_version);
	assert_int_equal(e->rotated_at, 0);
	kt_cache_free(&c);
}

/* Values are copied into the locked arena and the worker's copy is
 * dropped; a value that does not fit is refused with the entry left as it
 * was, a reason for status, and a count; freeing gives the room back. */
static void test_locked_arena(void **state)
{
	const char *names[] = { "a", "b" }, *ids[] = { "a", "b" };
	struct kt_secure_stats st0, st;
	struct kt_cache c;
	struct kt_config cfg;
	struct sm_value v;
	struct kt_entry *a, *b;
	char *big;

	(void)state;
	kt_secure_stats(&st0);
	assert_int_equal(st0.size, ARENA);
	assert_int_equal(st0.used, 0);
	kt_cache_init(&c);
	make_cfg(&cfg, 2, names, ids);
	assert_int_equal(kt_cache_sync(&c, &cfg), 0);
	a = kt_cache_find(&c, "a");
	b = kt_cache_find(&c, "b");

	make_value(&v, "v1", "AWSCURRENT", "one");
	assert_int_equal(kt_cache_set_current(a, &v, 100), 0);
	assert_null(v.data); /* taken, and the worker's copy freed */
	sm_value_free(&v);
	assert_true(CRYPTO_secure_allocated(a->cur.data));
	assert_int_equal(a->cur.len, 3);
	assert_memory_equal(a->cur.data, "one", 4); /* with its NUL */

	/* Larger than the whole arena: refused, the old value still served. */
	big = malloc(ARENA);
	assert_non_null(big);
	memset(big, 'z', ARENA);
	make_value_len(&v, "v2", "AWSCURRENT", big, ARENA);
	assert_int_equal(kt_cache_set_current(a, &v, 200), -ENOSPC);
	assert_non_null(v.data); /* still the caller's, to wipe and free */
	assert_string_equal(a->cur.version_id, "v1");
	assert_memory_equal(a->cur.data, "one", 4);
	assert_null(a->prev_version);
	assert_non_null(strstr(a->last_error, "version v2"));
	assert_non_null(strstr(a->last_error, "no room in locked memory"));
	assert_non_null(strstr(a->last_error, "locked_memory = 4096 bytes"));
	assert_int_equal(kt_cache_add_other(a, &v, 200), -ENOSPC);
	assert_null(kt_cache_value(a, "v2"));
	sm_value_free(&v);
	kt_secure_stats(&st);
	assert_int_equal(st.refused, st0.refused + 2);

	/* Fill it with another entry's values (2 KiB blocks for 1,500 bytes):
	 * the next one is refused, and forgetting them makes room again. */
	make_value_len(&v, "b1", "AWSCURRENT", big, 1500);
	assert_int_equal(kt_cache_set_current(b, &v, 300), 0);
	sm_value_free(&v);
	make_value_len(&v, "b2", "AWSCURRENT", big, 1500);
	assert_int_equal(kt_cache_set_current(b, &v, 300), -ENOSPC);
	assert_string_equal(b->cur.version_id, "b1");
	sm_value_free(&v);
	kt_cache_forget(b);
	make_value_len(&v, "b2", "AWSCURRENT", big, 1500);
	assert_int_equal(kt_cache_set_current(b, &v, 400), 0);
	sm_value_free(&v);
	assert_memory_equal(b->cur.data, big, 1500);

	kt_cache_free(&c);
	free(big);
	kt_secure_stats(&st);
	assert_int_equal(st.used, 0); /* every block given back */
	assert_int_equal(st.refused, st0.refused + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_and_find),
		cmocka_unit_test(test_repointed_section_starts_afresh),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_stage_map),
		cmocka_unit_test(test_login_entries),
		cmocka_unit_test(test_rotation_recorded),
		cmocka_unit_test(test_locked_arena),
	};
	char err[256];

	/* Without an arena no value is taken at all: there is no fallback to
	 * unlocked memory. */
	if (kt_secure_alloc(8) != NULL) {
		fprintf(stderr, "kt_secure_alloc succeeded without an arena\n");
		return 1;
	}
	if (kt_secure_init(ARENA, err, sizeof(err)) < 0) {
		fprintf(stderr, "kt_secure_init: %s\n", err);
		return 1;
	}
	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}

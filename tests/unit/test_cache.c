/* Unit tests for cache.c: syncing with a configuration (added, kept,
 * removed, re-pointed sections), lookups, and where versions are kept. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "secmem.h"

/* Two configurations' worth of sections: a sync compares the new one with
 * the old, which (as in the daemon's reload) is still alive then. */
static struct kt_secret_cfg store[2][3];
static int turn;

static void make_cfg(struct kt_config *cfg, size_t n, const char *const *names, const char *const *ids)
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

/* An sm_value as a worker would hand it over. */
static void make_value(struct sm_value *v, const char *vid, const char *stage, const char *data)
{
	memset(v, 0, sizeof(*v));
	v->arn = kt_strdup("arn:aws:secretsmanager:us-east-1:1:secret:app/db-x");
	v->version_id = kt_strdup(vid);
	v->stages = calloc(2, sizeof(char *));
	v->stages[0] = kt_strdup(stage);
	v->nstages = 1;
	v->len = strlen(data);
	v->data = kt_memdup(data, v->len + 1);
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
	assert_string_equal(c.entries[0]->name, "a");  /* sorted */
	a = kt_cache_find(&c, "a");
	assert_non_null(a);
	assert_ptr_equal(kt_cache_find(&c, "arn:a"), a);  /* by configured id */
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
	assert_null(e->cur.data);  /* another AWS secret now: the old value is gone */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_and_find),
		cmocka_unit_test(test_repointed_section_starts_afresh),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_stage_map),
		cmocka_unit_test(test_login_entries),
		cmocka_unit_test(test_rotation_recorded),
	};

	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}

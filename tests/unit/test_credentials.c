/* Unit tests for credentials.c's pure parts: the abstract address systemd
 * binds its end to ("<random>/unit/<unit>/<id>"), parsed strictly, and the
 * [secret:] that serves a credential ID to a unit (allow_units globs). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "credentials.h"

static char unit[KT_CRED_UNIT_MAX + 1], id[KT_CRED_ID_MAX + 1];

static int parse(const char *name, const char **why)
{
	*why = NULL;
	return kt_cred_parse_address(name, strlen(name), unit, id, why);
}

static void bad(const char *name, const char *why_part)
{
	const char *why;

	assert_int_equal(parse(name, &why), -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why, why_part));
}

static void test_parse(void **state)
{
	char big[600];
	const char *why;

	(void)state;
	assert_int_equal(parse("5f0a8c2e91d3b7a4/unit/app.service/db-password", &why), 0);
	assert_string_equal(unit, "app.service");
	assert_string_equal(id, "db-password");
	assert_int_equal(parse("x/unit/getty@tty1.service/a.b_c", &why), 0);
	assert_string_equal(unit, "getty@tty1.service");
	assert_string_equal(id, "a.b_c");
	assert_int_equal(parse("r/unit/foo\\x2dbar.service/k", &why), 0);
	assert_string_equal(unit, "foo\\x2dbar.service");

	bad("", "random part");
	bad("/unit/app.service/id", "random part");
	bad("random", "random part");
	bad("r/units/app.service/id", "\"/unit/\"");
	bad("r/unit", "\"/unit/\"");
	bad("r/unit/app.service", "credential ID");
	bad("r/unit//id", "unit name");
	bad("r/unit/app.service/", "credential ID");
	bad("r/unit/app.service/a/b", "credential ID");
	bad("r/unit/app service/id", "unit name");
	bad("r/unit/app.service/i d", "credential ID");
	bad("r/unit/app.s\x7f/id", "unit name");
	bad("r/unit/app.service/\xc3\xa9", "credential ID");
	bad("r\x01/unit/app.service/id", "random part");

	/* A NUL inside the name is not a terminator to the parser. */
	assert_int_equal(kt_cred_parse_address("r/unit/a\0b/id", 13, unit, id, &why), -EINVAL);

	memset(big, 'u', sizeof(big));
	memcpy(big, "r/unit/", 7);
	big[7 + KT_CRED_UNIT_MAX] = '/';
	memcpy(big + 8 + KT_CRED_UNIT_MAX, "id", 3);
	assert_int_equal(parse(big, &why), 0);
	assert_int_equal(strlen(unit), KT_CRED_UNIT_MAX);
	memset(big, 'u', sizeof(big));
	memcpy(big, "r/unit/", 7);
	big[8 + KT_CRED_UNIT_MAX] = '/';
	memcpy(big + 9 + KT_CRED_UNIT_MAX, "id", 3);
	bad(big, "unit name");
}

static void test_match(void **state)
{
	char n0[] = "plain", n1[] = "app/db", n2[] = "app/json";
	char c1[] = "db-password", c2[] = "json";
	char u1[] = "  app.service\tworker@*.service  ", u2[] = "web-?.service";
	struct kt_secret_cfg s[3];
	struct kt_config cfg;
	const char *why = NULL;

	(void)state;
	memset(s, 0, sizeof(s));
	memset(&cfg, 0, sizeof(cfg));
	s[0].name = n0;
	s[1].name = n1;
	s[1].credential = c1;
	s[1].allow_units = u1;
	s[2].name = n2;
	s[2].credential = c2;
	s[2].allow_units = u2;
	cfg.secrets = s;
	cfg.nsecrets = 3;

	assert_ptr_equal(kt_cred_match(&cfg, "app.service", "db-password", &why), &s[1]);
	assert_ptr_equal(kt_cred_match(&cfg, "worker@3.service", "db-password", &why), &s[1]);
	assert_ptr_equal(kt_cred_match(&cfg, "web-a.service", "json", &why), &s[2]);
	assert_null(kt_cred_match(&cfg, "web-ab.service", "json", &why));
	assert_string_equal(why, "unit not allowed");
	assert_null(kt_cred_match(&cfg, "app.service", "json", &why));
	assert_string_equal(why, "unit not allowed");
	assert_null(kt_cred_match(&cfg, "app.servic", "db-password", &why));
	assert_string_equal(why, "unit not allowed");
	assert_null(kt_cred_match(&cfg, "app.service", "plain", &why));
	assert_string_equal(why, "unknown credential ID");
	assert_null(kt_cred_match(&cfg, "app.service", "nope", &why));
	assert_string_equal(why, "unknown credential ID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

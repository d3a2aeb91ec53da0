/* Unit tests for profile.c: sections of both file kinds, comments, nested
 * sub-sections, duplicate keys, errors that name file and line, and the
 * environment variables that pick files and profile. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kt_tmp.h"

#include "aws/profile.h"

static char dir[64];
static char path[256];

/* Writes text to a fresh file in the scratch directory; path names it. */
static const char *write_file(const char *name, const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int setup(void **state)
{
	(void)state;
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-test-profile.");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char CREDS[] = "# a comment\n"
			    "; another comment\n"
			    "\n"
			    "[default]\n"
			    "aws_access_key_id = AKIDDEFAULT\n"
			    "aws_secret_access_key = secret/default+key\n"
			    "\n"
			    "[other]\n"
			    "  aws_access_key_id=AKIDOTHER   \n"
			    "aws_secret_access_key\t=\tsecret-other\n"
			    "[profile other]\n"
			    "aws_access_key_id = AKIDLITERAL\n";

static void test_credentials_file(void **state)
{
	struct aws_profile p;
	char err[256];
	const char *f = write_file("credentials", CREDS);

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), 0);
	assert_string_equal(p.path, f);
	assert_string_equal(p.name, "default");
	assert_int_equal(p.nkv, 2);
	assert_string_equal(aws_profile_get(&p, "aws_access_key_id"), "AKIDDEFAULT");
	assert_string_equal(aws_profile_get(&p, "aws_secret_access_key"), "secret/default+key");
	assert_int_equal(aws_profile_line(&p, "aws_access_key_id"), 5);
	assert_null(aws_profile_get(&p, "aws_session_token"));
	assert_int_equal(aws_profile_line(&p, "aws_session_token"), 0);
	aws_profile_free(&p);

	assert_int_equal(aws_profile_load(f, "other", false, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "aws_access_key_id"), "AKIDOTHER");
	assert_string_equal(aws_profile_get(&p, "aws_secret_access_key"), "secret-other");
	aws_profile_free(&p);

	/* In the credentials file the header is the bare name: "[profile other]"
	 * is a profile called "profile other". */
	assert_int_equal(aws_profile_load(f, "profile other", false, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "aws_access_key_id"), "AKIDLITERAL");
	aws_profile_free(&p);
}

static void test_config_file(void **state)
{
	struct aws_profile p;
	char err[256];
	const char *f = write_file("config", "[default]\n"
					     "region = us-west-2\n"
					     "[profile  dev ]\n"
					     "region = eu-central-1\n"
					     "[dev]\n"
					     "region = wrong\n"
					     "[sso-session corp]\n"
					     "sso_region = us-east-1\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", true, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "region"), "us-west-2");
	aws_profile_free(&p);
	assert_int_equal(aws_profile_load(f, "dev", true, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "region"), "eu-central-1");
	assert_int_equal(p.nkv, 1);
	aws_profile_free(&p);
	/* "[sso-session corp]" is not a profile named "corp". */
	assert_int_equal(aws_profile_load(f, "corp", true, &p, err, sizeof(err)), -ENOENT);
}

static void test_comments_and_case(void **state)
{
	struct aws_profile p;
	char err[256];
	const char *f = write_file("comments", "[default] # trailing comment on a header\r\n"
					       "AWS_Access_Key_ID = AKID ; inline comment\r\n"
					       "aws_secret_access_key = abc#def\r\n"
					       "note = a value # inline\r\n"
					       "    # an indented comment\r\n"
					       "empty_next =\r\n"
					       "\r\n"
					       "region =eu-north-1\r\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "aws_access_key_id"), "AKID");
	/* A '#' glued to the text is part of the value. */
	assert_string_equal(aws_profile_get(&p, "aws_secret_access_key"), "abc#def");
	assert_string_equal(aws_profile_get(&p, "note"), "a value");
	assert_string_equal(aws_profile_get(&p, "empty_next"), "");
	assert_string_equal(aws_profile_get(&p, "region"), "eu-north-1");
	aws_profile_free(&p);
}

static void test_nested_subsection(void **state)
{
	struct aws_profile p;
	char err[256];
	const char *f = write_file("nested", "[profile dev]\n"
					     "s3 =\n"
					     "  max_concurrent_requests = 10\n"
					     "  region = nested-should-not-win\n"
					     "region = us-east-2\n"
					     "[profile other]\n"
					     "sts =\n"
					     "\tendpoint_url = http://x\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "dev", true, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "region"), "us-east-2");
	assert_null(aws_profile_get(&p, "max_concurrent_requests"));
	assert_string_equal(aws_profile_get(&p, "s3"), "");
	aws_profile_free(&p);
	assert_int_equal(aws_profile_load(f, "other", true, &p, err, sizeof(err)), 0);
	assert_null(aws_profile_get(&p, "endpoint_url"));
	aws_profile_free(&p);
}

static void test_duplicates(void **state)
{
	struct aws_profile p;
	char err[256];
	const char *f = write_file("dups", "[default]\n"
					   "region = first\n"
					   "[other]\n"
					   "region = x\n"
					   "[default]\n"
					   "REGION = second\n"
					   "region = third\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), 0);
	assert_int_equal(p.nkv, 1);
	assert_string_equal(aws_profile_get(&p, "region"), "third");
	assert_int_equal(aws_profile_line(&p, "region"), 7);
	aws_profile_free(&p);
}

static void test_bad_line(void **state)
{
	struct aws_profile p;
	char err[512], want[512];
	const char *f = write_file("bad", "[default]\n"
					  "region = x\n"
					  "[unrelated]\n"
					  "this line has no equals sign\n");

	(void)state;
	/* The error is reported even though it lies in another profile. */
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:4: expected 'key = value' or '[section]'", f);
	assert_string_equal(err, want);
	assert_int_equal(p.nkv, 0);

	f = write_file("bad2", "[default]\n= value without key\n");
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:", f);
	assert_non_null(strstr(err, want));
}

static void test_unterminated_section(void **state)
{
	struct aws_profile p;
	char err[512], want[512];
	const char *f = write_file("unterminated", "\n\n[default\nregion = x\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: ", f);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "section"));

	f = write_file("garbage-after", "[default] junk\n");
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: ", f);
	assert_non_null(strstr(err, want));
}

static void test_key_before_section(void **state)
{
	struct aws_profile p;
	char err[512], want[512];
	const char *f = write_file("nosection", "# hello\nregion = x\n[default]\n");

	(void)state;
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: ", f);
	assert_non_null(strstr(err, want));
}

static void test_long_and_nul(void **state)
{
	struct aws_profile p;
	char err[512], want[512];
	char *big = malloc(70016);
	const char *f;
	FILE *fp;

	(void)state;
	assert_non_null(big);
	memcpy(big, "[default]\nk = ", 14);
	memset(big + 14, 'a', 70000);
	memcpy(big + 70014, "\n", 2);
	f = write_file("long", big);
	free(big);
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: line too long", f);
	assert_string_equal(err, want);

	f = write_file("nul", "");
	fp = fopen(f, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite("[default]\nk = a\0b\n", 1, 19, fp), 19);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", f);
	assert_string_equal(err, want);

	/* A last line without a newline still counts. */
	f = write_file("nonl", "[default]\nregion = x");
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_profile_get(&p, "region"), "x");
	aws_profile_free(&p);
}

static void test_missing(void **state)
{
	struct aws_profile p;
	char err[512], missing[300];
	const char *f;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
	assert_int_equal(aws_profile_load(missing, "default", false, &p, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, missing));

	f = write_file("one", "[default]\nregion = x\n");
	assert_int_equal(aws_profile_load(f, "nope", false, &p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, f));
	assert_non_null(strstr(err, "'nope'"));
	/* In the config file "default" is not "[profile nope]" either. */
	assert_int_equal(aws_profile_load(f, "nope", true, &p, err, sizeof(err)), -ENOENT);

	/* An empty profile is still a profile. */
	f = write_file("empty", "[default]\n");
	assert_int_equal(aws_profile_load(f, "default", false, &p, err, sizeof(err)), 0);
	assert_int_equal(p.nkv, 0);
	aws_profile_free(&p);
}

static void test_paths(void **state)
{
	char *s;

	(void)state;
	setenv("HOME", "/home/kt", 1);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_PROFILE");
	s = aws_profile_credentials_path();
	assert_string_equal(s, "/home/kt/.aws/credentials");
	free(s);
	s = aws_profile_config_path();
	assert_string_equal(s, "/home/kt/.aws/config");
	free(s);
	s = aws_profile_name();
	assert_string_equal(s, "default");
	free(s);

	setenv("AWS_SHARED_CREDENTIALS_FILE", "/etc/kt/creds", 1);
	setenv("AWS_CONFIG_FILE", "~/cfg", 1);
	setenv("AWS_PROFILE", "prod", 1);
	s = aws_profile_credentials_path();
	assert_string_equal(s, "/etc/kt/creds");
	free(s);
	s = aws_profile_config_path();
	assert_string_equal(s, "/home/kt/cfg");
	free(s);
	s = aws_profile_name();
	assert_string_equal(s, "prod");
	free(s);

	/* Empty variables count as unset. */
	setenv("AWS_PROFILE", "", 1);
	setenv("AWS_CONFIG_FILE", "", 1);
	s = aws_profile_name();
	assert_string_equal(s, "default");
	free(s);
	s = aws_profile_config_path();
	assert_string_equal(s, "/home/kt/.aws/config");
	free(s);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_PROFILE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credentials_file),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_comments_and_case),
		cmocka_unit_test(test_nested_subsection),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_bad_line),
		cmocka_unit_test(test_unterminated_section),
		cmocka_unit_test(test_key_before_section),
		cmocka_unit_test(test_long_and_nul),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

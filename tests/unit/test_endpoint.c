/* Unit tests for endpoint.c: the precedence of region and endpoint sources,
 * and refusal of values that cannot be right. */
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

#include "aws/endpoint.h"

static char cfgpath[64];

static int setup(void **state)
{
	static const char *vars[] = {
		"AWS_REGION",
		"AWS_DEFAULT_REGION",
		"AWS_PROFILE",
		"AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"AWS_ENDPOINT_URL_STS",
	};
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	kt_tmp_name(cfgpath, sizeof(cfgpath), "/tmp/kt-endpoint-test.");
	fd = mkstemp(cfgpath);
	assert_true(fd >= 0);
	close(fd);
	setenv("AWS_CONFIG_FILE", cfgpath, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(cfgpath);
	return 0;
}

static void write_config(const char *text)
{
	FILE *f = fopen(cfgpath, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_region(const char *configured, const char *want, enum aws_source wsrc)
{
	struct aws_error err;
	enum aws_source src;
	char *r = NULL;

	assert_int_equal(aws_resolve_region(configured, false, &r, &src, &err), 0);
	assert_string_equal(r, want);
	assert_int_equal(src, wsrc);
	free(r);
}

static void test_region_precedence(void **state)
{
	(void)state;
	write_config("[default]\nregion = eu-west-1\n[profile other]\nregion = ap-south-1\n");
	expect_region(NULL, "eu-west-1", AWS_SRC_PROFILE);
	setenv("AWS_PROFILE", "other", 1);
	expect_region(NULL, "ap-south-1", AWS_SRC_PROFILE);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	expect_region(NULL, "us-west-2", AWS_SRC_ENV_DEFAULT);
	setenv("AWS_REGION", "us-east-2", 1);
	expect_region(NULL, "us-east-2", AWS_SRC_ENV);
	expect_region("ca-central-1", "ca-central-1", AWS_SRC_CONFIG);
	/* An empty setting counts as unset. */
	expect_region("", "us-east-2", AWS_SRC_ENV);
}

static void test_region_missing_or_bad(void **state)
{
	struct aws_error err;
	char *r = NULL;

	(void)state;
	write_config("");
	assert_int_equal(aws_resolve_region(NULL, false, &r, NULL, &err), -ENOENT);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_non_null(strstr(err.message, "region"));
	assert_int_equal(aws_resolve_region("us-east-1.evil.com/", false, &r, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.message, "configuration"));
	assert_null(r);
}

static void test_region_profile_syntax_error(void **state)
{
	struct aws_error err;
	char *r = NULL;

	(void)state;
	write_config("[default]\nthis line is wrong\n");
	assert_true(aws_resolve_region(NULL, false, &r, NULL, &err) < 0);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_non_null(strstr(err.message, cfgpath));
	assert_non_null(strstr(err.message, ":2"));
}

static void expect_endpoint(const char *service, const char *configured, const char *region,
			    bool fips, const char *want, enum aws_source wsrc)
{
	struct aws_error err;
	enum aws_source src;
	char *ep = NULL;

	assert_int_equal(aws_resolve_endpoint(service, configured, region, fips, &ep, &src, &err),
			 0);
	assert_string_equal(ep, want);
	assert_int_equal(src, wsrc);
	free(ep);
}

static void test_endpoint_precedence(void **state)
{
	(void)state;
	write_config("[default]\nendpoint_url = http://127.0.0.1:4566\n");
	expect_endpoint("secretsmanager", NULL, "us-east-1", false, "http://127.0.0.1:4566",
			AWS_SRC_PROFILE);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/", 1);
	expect_endpoint("secretsmanager", NULL, "us-east-1", false, "http://127.0.0.1:5000",
			AWS_SRC_ENV_DEFAULT);
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://sm.example:8443", 1);
	expect_endpoint("secretsmanager", NULL, "us-east-1", false, "https://sm.example:8443",
			AWS_SRC_ENV);
	/* The service-specific variable is only for its own service. */
	expect_endpoint("sts", NULL, "us-east-1", false, "http://127.0.0.1:5000",
			AWS_SRC_ENV_DEFAULT);
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:7000", 1);
	expect_endpoint("sts", NULL, "us-east-1", false, "http://127.0.0.1:7000", AWS_SRC_ENV);
	expect_endpoint("secretsmanager", "https://vpce.example", "us-east-1", false,
			"https://vpce.example", AWS_SRC_CONFIG);
}

static void test_endpoint_default(void **state)
{
	(void)state;
	write_config("");
	expect_endpoint("secretsmanager", NULL, "eu-central-1", false,
			"https://secretsmanager.eu-central-1.amazonaws.com", AWS_SRC_DEFAULT);
	expect_endpoint("secretsmanager", NULL, "us-gov-west-1", true,
			"https://secretsmanager-fips.us-gov-west-1.amazonaws.com", AWS_SRC_DEFAULT);
	expect_endpoint("secretsmanager", NULL, "cn-north-1", false,
			"https://secretsmanager.cn-north-1.amazonaws.com.cn", AWS_SRC_DEFAULT);
	expect_endpoint("sts", NULL, "us-east-1", false, "https://sts.us-east-1.amazonaws.com",
			AWS_SRC_DEFAULT);
}

static void test_endpoint_refused(void **state)
{
	static const char *bad[] = {
		"ftp://host",        "host:443",         "https://",     "https://host/path",
		"https://user@host", "https://host?x=1", "http://ho st",
	};
	struct aws_error err;
	char *ep = NULL;

	(void)state;
	write_config("");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(aws_resolve_endpoint("secretsmanager", bad[i], "us-east-1", false,
						      &ep, NULL, &err),
				 -EINVAL);
		assert_int_equal(err.code, AWS_ERR_CONFIG);
		assert_null(ep);
	}
	assert_int_equal(aws_resolve_endpoint("secretsmanager", NULL, NULL, false, &ep, NULL, &err),
			 -EINVAL);
}

static void test_endpoint_host(void **state)
{
	char host[64];

	(void)state;
	assert_int_equal(aws_endpoint_host("https://secretsmanager.us-east-1.amazonaws.com", host,
					   sizeof(host)),
			 0);
	assert_string_equal(host, "secretsmanager.us-east-1.amazonaws.com");
	assert_int_equal(aws_endpoint_host("http://127.0.0.1:4566/", host, sizeof(host)), 0);
	assert_string_equal(host, "127.0.0.1:4566");
	assert_int_equal(aws_endpoint_host("http://[::1]:80", host, sizeof(host)), 0);
	assert_string_equal(host, "[::1]:80");
	assert_int_equal(aws_endpoint_host("gopher://x", host, sizeof(host)), -EINVAL);
	assert_int_equal(
		aws_endpoint_host(
			"http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			host, sizeof(host)),
		-EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_region_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_missing_or_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_profile_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_host, setup, teardown),
	};

	return cmocka_run_group_tests_name("endpoint", tests, NULL, NULL);
}

/* Unit tests for the credential chain (creds.c, creds_sts.c, creds_meta.c)
 * and the helpers beneath it (creds_util.c, imds.c): the environment and
 * shared-file providers, STS XML answers and errors, metadata JSON,
 * Expiration times, token files, container URL checks, and the cache's
 * refresh-ahead and keep-serving decisions. The chain and the providers are
 * included so that their static functions can be reached; the helpers are
 * reached through their headers. Nothing here uses the network. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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

#include "aws/creds.c"
#include "aws/creds_meta.c"
#include "aws/creds_sts.c"

static char dir[64];
static char cred_path[300], conf_path[300];

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Every test starts from an environment with no provider configured. */
static void clean_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN",
		"AWS_CREDENTIAL_EXPIRATION",
		"AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN",
		"AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);
	unlink(cred_path);
	unlink(conf_path);
}

static int setup(void **state)
{
	(void)state;
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-test-creds.");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int each(void **state)
{
	(void)state;
	clean_env();
	creds_clock_wall = creds_clock_wall_real;
	creds_clock_boot = creds_clock_boot_real;
	return 0;
}

/* --- environment ------------------------------------------------------------- */

static void test_env(void **state)
{
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(from_env(NULL, &cr, &err), -ENOENT);

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(from_env(NULL, &cr, &err), 0);
	assert_string_equal(cr.source, "environment");
	assert_string_equal(cr.access_key, "AKIDENV");
	assert_string_equal(cr.secret_key, "envsecret");
	assert_null(cr.session_token);
	assert_int_equal(cr.expiration, 0);
	aws_creds_clear(&cr);

	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	setenv("AWS_CREDENTIAL_EXPIRATION", "2030-01-01T00:00:00Z", 1);
	assert_int_equal(from_env(NULL, &cr, &err), 0);
	assert_string_equal(cr.session_token, "envtoken");
	assert_int_equal(cr.expiration, 1893456000);
	aws_creds_clear(&cr);
}

static void test_env_partial(void **state)
{
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	assert_int_equal(from_env(NULL, &cr, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_non_null(strstr(err.message, "AWS_SECRET_ACCESS_KEY is not"));

	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(from_env(NULL, &cr, &err), -EINVAL);
	assert_non_null(strstr(err.message, "AWS_ACCESS_KEY_ID is not"));
	/* The secret is never in a message. */
	assert_null(strstr(err.message, "envsecret"));
}

/* --- shared files ------------------------------------------------------------ */

static void test_profile_pick(void **state)
{
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	write_file(cred_path, "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = s1\n"
			      "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s2\n"
			      "aws_session_token = t2\n");
	write_file(conf_path, "[default]\nregion = us-east-1\n"
			      "[profile cfgonly]\naws_access_key_id = AKIDCFG\n"
			      "aws_secret_access_key = s3\n"
			      "[profile dev]\naws_access_key_id = AKIDDEVCFG\n"
			      "aws_secret_access_key = s4\n");
	assert_int_equal(from_profile(NULL, &cr, &err), 0);
	assert_string_equal(cr.source, "profile");
	assert_string_equal(cr.access_key, "AKIDDEF");
	assert_null(cr.session_token);
	aws_creds_clear(&cr);

	/* The credentials file wins over the config file. */
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(from_profile(NULL, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDDEV");
	assert_string_equal(cr.session_token, "t2");
	aws_creds_clear(&cr);

	/* Keys only in the config file are found there. */
	setenv("AWS_PROFILE", "cfgonly", 1);
	assert_int_equal(from_profile(NULL, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDCFG");
	aws_creds_clear(&cr);

	/* A named profile that exists nowhere is an error, not a fall-through. */
	setenv("AWS_PROFILE", "ghost", 1);
	assert_int_equal(from_profile(NULL, &cr, &err), -EINVAL);
	assert_non_null(strstr(err.message, "'ghost'"));
	assert_non_null(strstr(err.message, cred_path));
}

static void test_profile_no_keys(void **state)
{
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	/* No files at all: nothing here, the chain goes on. */
	assert_int_equal(from_profile(NULL, &cr, &err), -ENOENT);
	/* A profile with settings but no keys: likewise. */
	write_file(conf_path, "[default]\nregion = us-east-1\n");
	assert_int_equal(from_profile(NULL, &cr, &err), -ENOENT);
	assert_int_equal(err.code, AWS_OK);
}

static void test_profile_missing_key(void **state)
{
	struct aws_creds cr;
	struct aws_error err;
	char want[400];

	(void)state;
	aws_error_clear(&err);
	write_file(cred_path, "[default]\n\n\naws_access_key_id = AKIDHALF\n");
	assert_int_equal(from_profile(NULL, &cr, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:4:", cred_path);
	assert_non_null(strstr(err.message, want));
	assert_non_null(strstr(err.message, "no aws_secret_access_key"));

	write_file(cred_path, "[default]\naws_secret_access_key = topsecret\n");
	assert_int_equal(from_profile(NULL, &cr, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:", cred_path);
	assert_non_null(strstr(err.message, want));
	assert_non_null(strstr(err.message, "no aws_access_key_id"));
	assert_null(strstr(err.message, "topsecret"));
}

static void test_profile_syntax_error(void **state)
{
	struct aws_creds cr;
	struct aws_error err;
	char want[400];

	(void)state;
	aws_error_clear(&err);
	/* Keys in the credentials file do not hide a broken config file. */
	write_file(cred_path, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n");
	write_file(conf_path, "[default]\nregion us-east-1\n");
	assert_int_equal(from_profile(NULL, &cr, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: expected 'key = value' or '[section]'", conf_path);
	assert_non_null(strstr(err.message, want));
}

/* --- the chain and its cache ----------------------------------------------------- */

static void test_chain_precedence(void **state)
{
	struct aws_creds_chain *c = NULL;
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	write_file(cred_path,
		   "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(aws_creds_chain_new(NULL, &c), 0);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.source, "environment");
	aws_creds_clear(&cr);

	/* Static credentials are cached until invalidated. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.source, "environment");
	aws_creds_clear(&cr);
	aws_creds_invalidate(c);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.source, "profile");
	assert_string_equal(cr.access_key, "AKIDFILE");
	aws_creds_clear(&cr);

	aws_creds_invalidate(c);
	unlink(cred_path);
	assert_int_equal(aws_creds_get(c, &cr, &err), -ENOENT);
	assert_int_equal(err.code, AWS_ERR_NO_CREDENTIALS);
	aws_creds_chain_free(c);
}

static void test_refresh_decision(void **state)
{
	struct aws_creds cr = { 0 };

	(void)state;
	assert_false(creds_need_refresh(&cr, 2000000000, 300));
	cr.expiration = 1000;
	assert_false(creds_need_refresh(&cr, 699, 300));
	assert_true(creds_need_refresh(&cr, 700, 300));
	assert_true(creds_need_refresh(&cr, 999, 300));
	assert_true(creds_need_refresh(&cr, 5000, 300));
	assert_false(creds_need_refresh(&cr, 999, 0));
}

static void set_env_creds(const char *ak, time_t exp)
{
	char buf[64];
	struct tm tm;

	gmtime_r(&exp, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	setenv("AWS_ACCESS_KEY_ID", ak, 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
	setenv("AWS_CREDENTIAL_EXPIRATION", buf, 1);
}

/* A fake clock for the cache: wall time and boot time move together, by
 * hand. Tests that use it call fake_clock_on() first; each() puts the real
 * clocks back. */
static time_t fake_now;

static time_t fake_clock(void)
{
	return fake_now;
}

static void fake_clock_on(void)
{
	fake_now = time(NULL);
	creds_clock_wall = fake_clock;
	creds_clock_boot = fake_clock;
}

/* Temporary credentials (here from the environment, with an Expiration)
 * are renewed inside the refresh-ahead window, at most once a renewal
 * interval, and a failed renewal keeps serving them until they expire. */
static void test_cache_renewal(void **state)
{
	struct aws_creds_opts o = { .refresh_ahead_s = 60 };
	struct aws_creds_chain *c = NULL;
	struct aws_creds cr;
	struct aws_error err;
	time_t now;

	(void)state;
	fake_clock_on();
	now = fake_now;
	set_env_creds("AKIDONE", now + 3600);
	assert_int_equal(aws_creds_chain_new(&o, &c), 0);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDONE");
	assert_int_equal(cr.expiration, now + 3600);
	aws_creds_clear(&cr);

	/* Outside the window: the cached copy, not the new variable. */
	set_env_creds("AKIDTWO", now + 30);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDONE");
	aws_creds_clear(&cr);
	aws_creds_chain_free(c);

	/* Inside the window (30 s left, 60 s ahead): renewed, but not again
	 * before the renewal interval (60 s) has passed. */
	assert_int_equal(aws_creds_chain_new(&o, &c), 0);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDTWO");
	aws_creds_clear(&cr);
	set_env_creds("AKIDTHREE", now + 150);
	fake_now += 20;
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDTWO");
	aws_creds_clear(&cr);
	fake_now = now + 60;
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDTHREE");
	aws_creds_clear(&cr);

	/* The renewal fails (half the pair is gone) but the cached ones have
	 * 30 s left: they are still served. */
	fake_now = now + 120;
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	assert_string_equal(cr.access_key, "AKIDTHREE");
	aws_creds_clear(&cr);
	aws_creds_chain_free(c);

	/* Expired and not renewable: an error. */
	fake_now = now;
	set_env_creds("AKIDOLD", now - 10);
	assert_int_equal(aws_creds_chain_new(&o, &c), 0);
	assert_int_equal(aws_creds_get(c, &cr, &err), 0);
	aws_creds_clear(&cr);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(aws_creds_get(c, &cr, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_null(cr.access_key);
	aws_creds_chain_free(c);
}

/* 31 calls, a second apart, with credentials that are always inside the
 * refresh window (every fetch brings a set with 120 s left, the window is
 * 300 s): one fetch for the first 60 s, then one a minute. Every fetch sees
 * a new key id in the environment, so the keys served count the fetches. */
static void test_near_expiry_fetch_count(void **state)
{
	struct aws_creds_opts o = { 0 };
	struct aws_creds_chain *c = NULL;
	struct aws_creds cr;
	struct aws_error err;
	char ak[32], last[32] = "";
	int fetches = 0;

	(void)state;
	fake_clock_on();
	assert_int_equal(aws_creds_chain_new(&o, &c), 0);
	for (int round = 0; round < 2; round++) {
		fetches = 0;
		for (int i = 0; i < 31; i++) {
			snprintf(ak, sizeof(ak), "AKID%02d%02d", round, i);
			set_env_creds(ak, fake_now + 120);
			assert_int_equal(aws_creds_get(c, &cr, &err), 0);
			if (strcmp(cr.access_key, last) != 0) {
				fetches++;
				snprintf(last, sizeof(last), "%s", cr.access_key);
			}
			aws_creds_clear(&cr);
			fake_now += 1;
		}
		print_message("near-expiry credentials: %d fetches for 31 calls\n", fetches);
		assert_int_equal(fetches, 1);
		fake_now += 29; /* 60 s after the first fetch of the round */
	}
	aws_creds_chain_free(c);
}

/* Credentials from the metadata agents without an Expiration, or with one
 * in year 9999, are fetched again every no_expiry_refetch_s; static ones
 * from the environment or a profile never are. */
static void test_no_expiry_periodic(void **state)
{
	struct aws_creds_opts o = { 0 };
	struct aws_creds_chain *c = NULL;
	struct aws_creds fresh = { 0 };
	struct aws_error err;
	time_t t0;

	(void)state;
	fake_clock_on();
	t0 = fake_now;
	assert_int_equal(aws_creds_chain_new(&o, &c), 0);
	assert_int_equal(c->opts.no_expiry_refetch_s, 900);
	assert_int_equal(c->opts.renew_min_interval_s, 60);

	aws_error_clear(&err);
	assert_int_equal(aws_creds_fill(&fresh, "container", "t", "AK", "SK", "TOK", NULL, &err),
			 0);
	creds_keep(c, &fresh, 3, fake_now, fake_now);
	assert_true(c->periodic);
	assert_false(creds_due(c, t0 + 899, t0 + 899));
	assert_true(creds_due(c, t0 + 900, t0 + 900));
	assert_true(creds_valid(c, t0 + 100000));

	assert_int_equal(aws_creds_fill(&fresh, "imds", "t", "AK", "SK", "TOK",
					"9999-12-31T23:59:59Z", &err),
			 0);
	creds_keep(c, &fresh, 4, t0, t0);
	assert_true(c->periodic);
	assert_false(creds_due(c, t0 + 899, t0 + 899));
	assert_true(creds_due(c, t0 + 900, t0 + 900));

	/* A real hour-long set is renewed by its Expiration, not periodically. */
	assert_int_equal(aws_creds_fill(&fresh, "imds", "t", "AK", "SK", "TOK", NULL, &err), 0);
	fresh.expiration = t0 + 3600;
	creds_keep(c, &fresh, 4, t0, t0);
	assert_false(c->periodic);
	assert_false(creds_due(c, t0 + 900, t0 + 900));
	assert_true(creds_due(c, t0 + 3300, t0 + 3300));

	/* Static keys without an Expiration are not fetched again. */
	assert_int_equal(aws_creds_fill(&fresh, "profile", "t", "AK", "SK", NULL, NULL, &err), 0);
	creds_keep(c, &fresh, 2, t0, t0);
	assert_false(c->periodic);
	assert_false(creds_due(c, t0 + 100000, t0 + 100000));
	aws_creds_chain_free(c);
}

/* Counts lines holding `what` that the code under test logs to stderr
 * while fn runs. */
static int count_log_lines(const char *what, void (*fn)(void *), void *arg)
{
	char path[300], line[1024];
	int saved, fd, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/log", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

struct expiry_run {
	struct aws_creds_chain *c;
	int failures;
	int fetch_errors; /* failures that carried the provider's own error */
};

/* Two expiries of credentials that cannot be renewed, each followed by 120
 * calls a second apart. */
static void expiry_calls(void *arg)
{
	struct expiry_run *r = arg;
	struct aws_creds cr;
	struct aws_error err;

	for (int round = 0; round < 2; round++) {
		fake_now += 61;
		set_env_creds(round == 0 ? "AKIDFIRST" : "AKIDSECOND", fake_now + 30);
		/* A fetch is due (the last one was 61 s ago) and works. */
		if (aws_creds_get(r->c, &cr, &err) != 0)
			r->failures += 100;
		aws_creds_clear(&cr);
		unsetenv("AWS_SECRET_ACCESS_KEY");
		for (int i = 0; i < 120; i++) {
			fake_now += 1;
			if (aws_creds_get(r->c, &cr, &err) < 0) {
				r->failures++;
				r->fetch_errors += err.code == AWS_ERR_CONFIG;
			}
			aws_creds_clear(&cr);
		}
	}
}

/* Expired credentials that cannot be renewed: one warning per Expiration,
 * not one per call; calls fail with the provider's error meanwhile. */
static void test_expired_warns_once(void **state)
{
	struct aws_creds_opts o = { .refresh_ahead_s = 60 };
	struct expiry_run r = { 0 };
	int warnings;

	(void)state;
	fake_clock_on();
	assert_int_equal(aws_creds_chain_new(&o, &r.c), 0);
	warnings = count_log_lines("cannot be renewed", expiry_calls, &r);
	print_message("expired credentials: %d warnings for 2 expiries and 240 calls, "
		      "%d calls failed\n",
		      warnings, r.failures);
	assert_int_equal(warnings, 2);
	/* Expiring 30 s after each fetch, then failing for 90 s of each 120. */
	assert_true(r.failures >= 2 * 85 && r.failures <= 2 * 95);
	assert_int_equal(r.fetch_errors, r.failures);
	aws_creds_chain_free(r.c);
}

/* --- times ------------------------------------------------------------------------ */

static void test_parse_time(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(aws_creds_parse_time("2026-11-29T15:00:00Z", &t), 0);
	assert_int_equal(t, 1795964400);
	assert_int_equal(aws_creds_parse_time("2026-11-29T15:00:00.123456Z", &t), 0);
	assert_int_equal(t, 1795964400);
	assert_int_equal(aws_creds_parse_time("2026-11-29T16:30:00+01:30", &t), 0);
	assert_int_equal(t, 1795964400);
	assert_int_equal(aws_creds_parse_time("2026-11-29T13:00:00-02:00", &t), 0);
	assert_int_equal(t, 1795964400);
	assert_int_equal(aws_creds_parse_time("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(aws_creds_parse_time("2024-02-29T00:00:00Z", &t), 0);

	assert_int_equal(aws_creds_parse_time("2026-11-29T15:00:00", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-11-29T15:00:00Zjunk", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-11-29", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-13-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2023-02-29T00:00:00Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-04-31T00:00:00Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-11-29T24:00:00Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2026-11-29T15:00:00.Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("+026-11-29T15:00:00Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("1795964400", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time(NULL, &t), -EINVAL);
}

/* --- STS (web identity) --------------------------------------------------------- */

static const char STS_OK[] =
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <AssumeRoleWithWebIdentityResult>\n"
	"    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
	"    <AssumedRoleUser>\n"
	"      <Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>\n"
	"      <AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId>\n"
	"    </AssumedRoleUser>\n"
	"    <Credentials>\n"
	"      <AccessKeyId>ASIASTSEXAMPLE</AccessKeyId>\n"
	"      <SecretAccessKey>wJalr/K7MDENG+bPxRfi&amp;CYEXAMPLEKEY</SecretAccessKey>\n"
	"      <SessionToken>\n        FwoGZXIvYXdzE&#61;&#61;\n      </SessionToken>\n"
	"      <Expiration>2026-11-29T15:00:00.000Z</Expiration>\n"
	"    </Credentials>\n"
	"    <Audience>sts.amazonaws.com</Audience>\n"
	"  </AssumeRoleWithWebIdentityResult>\n"
	"  <ResponseMetadata><RequestId>abc</RequestId></ResponseMetadata>\n"
	"</AssumeRoleWithWebIdentityResponse>\n";

static void test_sts_parse(void **state)
{
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(sts_parse_creds(STS_OK, strlen(STS_OK), &cr, &err), 0);
	assert_string_equal(cr.source, "web-identity");
	assert_string_equal(cr.access_key, "ASIASTSEXAMPLE");
	assert_string_equal(cr.secret_key, "wJalr/K7MDENG+bPxRfi&CYEXAMPLEKEY");
	assert_string_equal(cr.session_token, "FwoGZXIvYXdzE==");
	assert_int_equal(cr.expiration, 1795964400);
	aws_creds_clear(&cr);
}

static void test_sts_parse_bad(void **state)
{
	static const char no_creds[] =
		"<AssumeRoleWithWebIdentityResponse><AccessKeyId>ASIAOUTSIDE</AccessKeyId>"
		"</AssumeRoleWithWebIdentityResponse>";
	static const char no_token[] =
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
		"<Expiration>2026-11-29T15:00:00Z</Expiration></Credentials>";
	static const char bad_time[] =
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
		"<SessionToken>T</SessionToken><Expiration>soon</Expiration></Credentials>";
	static const char unclosed[] =
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S";
	struct aws_creds cr = { 0 };
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	/* Fields outside <Credentials> do not count. */
	assert_int_equal(sts_parse_creds(no_creds, strlen(no_creds), &cr, &err), -EBADMSG);
	assert_int_equal(err.code, AWS_ERR_MALFORMED);
	assert_int_equal(sts_parse_creds(no_token, strlen(no_token), &cr, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "SessionToken"));
	assert_int_equal(sts_parse_creds(bad_time, strlen(bad_time), &cr, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "Expiration"));
	assert_int_equal(sts_parse_creds(unclosed, strlen(unclosed), &cr, &err), -EBADMSG);
	assert_null(cr.access_key);
}

static void test_xml_element(void **state)
{
	static const char doc[] =
		"<a><AccessKeyIdX>no</AccessKeyIdX><AccessKeyId attr=\"1\">"
		" yes </AccessKeyId><Empty/><Esc>&lt;&#x41;&bogus;&#99999;</Esc></a>";
	char *v = NULL;

	(void)state;
	assert_int_equal(xml_get(doc, strlen(doc), "AccessKeyId", &v), 0);
	assert_string_equal(v, "yes");
	free(v);
	assert_int_equal(xml_get(doc, strlen(doc), "Empty", &v), 0);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(xml_get(doc, strlen(doc), "Esc", &v), 0);
	assert_string_equal(v, "<A&bogus;&#99999;");
	free(v);
	assert_int_equal(xml_get(doc, strlen(doc), "Missing", &v), 0);
	assert_null(v);
	/* The length bounds the search, not the terminator. */
	assert_int_equal(xml_get(doc, 20, "AccessKeyId", &v), 0);
	assert_null(v);
}

static void test_sts_error(void **state)
{
	static const char body[] =
		"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidIdentityToken</Code>\n"
		"    <Message>Couldn't retrieve verification key from your identity provider</Message>\n"
		"  </Error>\n  <RequestId>x</RequestId>\n</ErrorResponse>\n";
	static const char throttled[] =
		"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
		"</Error></ErrorResponse>";
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(sts_parse_error(400, body, strlen(body), "https://sts.example/?x=1", &err),
			 -EIO);
	assert_int_equal(err.code, AWS_ERR_AUTH);
	assert_int_equal(err.http_status, 400);
	assert_string_equal(err.type, "InvalidIdentityToken");
	assert_non_null(strstr(err.message, "web identity"));
	assert_non_null(strstr(err.message, "Couldn't retrieve verification key"));
	assert_null(strstr(err.message, "x=1"));

	assert_int_equal(sts_parse_error(400, throttled, strlen(throttled), "u", &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_THROTTLED);

	assert_int_equal(sts_parse_error(503, "oops", 4, "https://sts.example/", &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_SERVER);
	assert_non_null(strstr(err.message, "503"));
}

static void test_form_encode(void **state)
{
	struct kt_buf b = KT_BUF_INIT(1024);

	(void)state;
	assert_int_equal(form_append(&b, "Action", "AssumeRoleWithWebIdentity"), 0);
	assert_int_equal(form_append(&b, "RoleArn", "arn:aws:iam::1:role/a b+c"), 0);
	assert_int_equal(form_append(&b, "T", "a.b_c-d~e=&"), 0);
	assert_string_equal(kt_buf_str(&b), "Action=AssumeRoleWithWebIdentity"
					    "&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2Bc"
					    "&T=a.b_c-d~e%3D%26");
	kt_buf_free(&b);
}

static void test_web_identity_config(void **state)
{
	struct web_identity_cfg cfg;
	struct aws_profile prof = { 0 };
	struct aws_creds cr;
	struct aws_error err;
	char tokfile[400], want[500];

	(void)state;
	aws_error_clear(&err);
	/* Not configured anywhere. */
	assert_int_equal(web_identity_cfg(&cfg, &prof, &err), -ENOENT);
	assert_int_equal(aws_creds_from_web_identity(&(struct aws_creds_opts){ 0 }, &cr, &err),
			 -ENOENT);

	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(web_identity_cfg(&cfg, &prof, &err), -EINVAL);
	assert_non_null(strstr(err.message, "AWS_ROLE_ARN"));
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
	assert_int_equal(web_identity_cfg(&cfg, &prof, &err), 0);
	assert_string_equal(cfg.role_arn, "arn:aws:iam::123456789012:role/r");
	/* The token file is read before anything is sent; its absence says so. */
	assert_int_equal(aws_creds_from_web_identity(&(struct aws_creds_opts){ 0 }, &cr, &err),
			 -ENOENT);
	assert_non_null(strstr(err.message, "/nonexistent/token"));
	/* ... and the chain stops there instead of using the profile's keys. */
	write_file(cred_path, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n");
	{
		struct aws_creds_chain *c = NULL;

		assert_int_equal(aws_creds_chain_new(NULL, &c), 0);
		assert_int_not_equal(aws_creds_get(c, &cr, &err), 0);
		assert_int_equal(err.code, AWS_ERR_CONFIG);
		assert_non_null(strstr(err.message, "web identity"));
		aws_creds_chain_free(c);
	}
	unlink(cred_path);
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	unsetenv("AWS_ROLE_ARN");

	/* The same from the config file's profile. */
	snprintf(tokfile, sizeof(tokfile), "%s/token", dir);
	write_file(tokfile, "eyJhbGciOiJSUzI1NiJ9.payload.sig\n");
	setenv("AWS_PROFILE", "wi", 1);
	write_file(conf_path, "[profile wi]\nweb_identity_token_file = /x\n");
	assert_int_equal(web_identity_cfg(&cfg, &prof, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:", conf_path);
	assert_non_null(strstr(err.message, want));
	assert_non_null(strstr(err.message, "role_arn"));
	aws_profile_free(&prof);
	write_file(conf_path, "[profile wi]\nrole_arn = arn:aws:iam::1:role/p\n"
			      "role_session_name = sess\nweb_identity_token_file = /x\n");
	assert_int_equal(web_identity_cfg(&cfg, &prof, &err), 0);
	assert_string_equal(cfg.role_arn, "arn:aws:iam::1:role/p");
	assert_string_equal(cfg.session_name, "sess");
	assert_string_equal(cfg.token_file, "/x");
	aws_profile_free(&prof);
}

static void test_token_file(void **state)
{
	struct aws_error err;
	char p[400], *tok = NULL;

	(void)state;
	aws_error_clear(&err);
	snprintf(p, sizeof(p), "%s/tok", dir);
	write_file(p, "abc.def.ghi\r\n\n");
	assert_int_equal(aws_creds_read_token_file("test", p, &tok, &err), 0);
	assert_string_equal(tok, "abc.def.ghi");
	kt_str_free_wiped(tok);
	write_file(p, "\n");
	assert_int_equal(aws_creds_read_token_file("test", p, &tok, &err), -EINVAL);
	assert_null(tok);
	assert_non_null(strstr(err.message, p));
	assert_int_equal(aws_creds_read_token_file("test", dir, &tok, &err), -EINVAL);
}

/* --- container and instance metadata ----------------------------------------------- */

static void test_container_url_check(void **state)
{
	static const char *const allowed[] = {
		"http://127.0.0.1:8080/creds",
		"http://127.3.2.1/x",
		"http://localhost/creds",
		"http://LOCALHOST:99",
		"http://[::1]:8080/x",
		"http://169.254.170.2/v2/x",
		"http://169.254.170.23/v1/credentials",
		"http://[fd00:ec2::23]/v1/credentials",
		"https://creds.example.com/x",
		"HTTPS://10.0.0.1/x",
	};
	static const char *const refused[] = {
		"http://10.0.0.1/creds",
		"http://169.254.169.254/latest",
		"http://example.com/",
		"http://127.0.0.1.evil.com/",
		"http://127.0.0.1@evil.com/",
		"http://[::2]/",
		"http://[fd00:ec2::24]/",
		"http://169.254.170.3/",
		"ftp://127.0.0.1/",
		"http://",
		"http://[::1",
		"http://0x7f000001/",
		"https://",
		"127.0.0.1/creds",
		"http://localhost.evil.com/",
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (container_url_check(allowed[i], why, sizeof(why)) != 0)
			fail_msg("refused %s: %s", allowed[i], why);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (container_url_check(refused[i], why, sizeof(why)) != -EINVAL)
			fail_msg("allowed %s", refused[i]);
	}
}

static void test_container_env(void **state)
{
	struct aws_creds cr;
	struct aws_error err;
	char *url = NULL, *hdr = NULL, p[400];

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(container_url(&url, &err), -ENOENT);
	assert_int_equal(aws_creds_from_container(&(struct aws_creds_opts){ 0 }, &cr, &err),
			 -ENOENT);
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.9.9.9/ignored", 1);
	assert_int_equal(container_url(&url, &err), 0);
	assert_string_equal(url, "http://169.254.170.2/v2/credentials/abc");
	free(url);
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	assert_int_equal(container_url(&url, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_non_null(strstr(err.message, "http://10.9.9.9/ignored"));
	assert_non_null(strstr(err.message, "refused"));
	/* The whole provider refuses before any request. */
	assert_int_equal(aws_creds_from_container(&(struct aws_creds_opts){ 0 }, &cr, &err),
			 -EINVAL);

	assert_int_equal(container_auth(&hdr, &err), 0);
	assert_null(hdr);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-env", 1);
	assert_int_equal(container_auth(&hdr, &err), 0);
	assert_string_equal(hdr, "Authorization: from-env");
	kt_str_free_wiped(hdr);
	/* The file wins over the variable and is read each time. */
	snprintf(p, sizeof(p), "%s/auth", dir);
	write_file(p, "from-file\n");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", p, 1);
	assert_int_equal(container_auth(&hdr, &err), 0);
	assert_string_equal(hdr, "Authorization: from-file");
	kt_str_free_wiped(hdr);
	write_file(p, "renewed\n");
	assert_int_equal(container_auth(&hdr, &err), 0);
	assert_string_equal(hdr, "Authorization: renewed");
	kt_str_free_wiped(hdr);
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Evil: 1", 1);
	assert_int_equal(container_auth(&hdr, &err), -EINVAL);
	assert_null(hdr);
}

static void test_meta_json(void **state)
{
	static const char imds_ok[] =
		"{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-11-29T14:00:00Z\",\n"
		"  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDS\",\n"
		"  \"SecretAccessKey\" : \"sec\\/ret\",\n  \"Token\" : \"tok\",\n"
		"  \"Expiration\" : \"2026-11-29T15:00:00Z\"\n}";
	static const char container_ok[] =
		"{\"AccessKeyId\":\"ASIACONT\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
		"\"RoleArn\":\"arn:x\",\"Expiration\":\"2026-11-29T15:00:00Z\",\"Extra\":[1,{\"a\":null}]}";
	static const char failed[] =
		"{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"cannot assume\"}";
	static const char no_secret[] = "{\"AccessKeyId\":\"A\",\"Token\":\"t\"}";
	static const char bad_time[] = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
				       "\"Expiration\":\"tomorrow\"}";
	struct aws_creds cr;
	struct aws_error err;

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(meta_parse_creds(IMDS, "imds", imds_ok, strlen(imds_ok), &cr, &err), 0);
	assert_string_equal(cr.source, "imds");
	assert_string_equal(cr.access_key, "ASIAIMDS");
	assert_string_equal(cr.secret_key, "sec/ret");
	assert_string_equal(cr.session_token, "tok");
	assert_int_equal(cr.expiration, 1795964400);
	aws_creds_clear(&cr);
	assert_int_equal(meta_parse_creds(CONTAINER, "container", container_ok,
					  strlen(container_ok), &cr, &err),
			 0);
	assert_string_equal(cr.access_key, "ASIACONT");
	aws_creds_clear(&cr);

	assert_int_equal(meta_parse_creds(IMDS, "imds", failed, strlen(failed), &cr, &err), -EIO);
	assert_non_null(strstr(err.message, "AssumeRoleUnauthorizedAccess"));
	assert_int_equal(meta_parse_creds(IMDS, "imds", no_secret, strlen(no_secret), &cr, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.message, "SecretAccessKey"));
	assert_int_equal(meta_parse_creds(IMDS, "imds", bad_time, strlen(bad_time), &cr, &err),
			 -EBADMSG);
	assert_int_equal(meta_parse_creds(IMDS, "imds", "{\"A\":", 5, &cr, &err), -EBADMSG);
	assert_int_equal(meta_parse_creds(IMDS, "imds", "[]", 2, &cr, &err), -EBADMSG);
	assert_int_equal(err.code, AWS_ERR_MALFORMED);
}

static void test_imds_names(void **state)
{
	(void)state;
	assert_true(imds_name_ok("my-role_1.x@y=z,w+v"));
	assert_false(imds_name_ok(""));
	assert_false(imds_name_ok(".."));
	assert_false(imds_name_ok("a/b"));
	assert_false(imds_name_ok("a?b"));
	assert_false(imds_name_ok("a b"));
}

static void test_imds_disabled(void **state)
{
	struct aws_imds_token tok = { 0 };
	struct aws_creds cr;
	struct aws_error err;
	char *region = NULL;

	(void)state;
	aws_error_clear(&err);
	assert_int_equal(aws_creds_from_imds(&(struct aws_creds_opts){ 0 }, &tok, &cr, &err),
			 -ENOENT);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	assert_int_equal(aws_imds_region(NULL, &region, &err), -ENOENT);
	assert_null(region);
	assert_non_null(strstr(err.message, "AWS_EC2_METADATA_DISABLED"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_env, each),
		cmocka_unit_test_setup(test_env_partial, each),
		cmocka_unit_test_setup(test_profile_pick, each),
		cmocka_unit_test_setup(test_profile_no_keys, each),
		cmocka_unit_test_setup(test_profile_missing_key, each),
		cmocka_unit_test_setup(test_profile_syntax_error, each),
		cmocka_unit_test_setup(test_chain_precedence, each),
		cmocka_unit_test_setup(test_refresh_decision, each),
		cmocka_unit_test_setup(test_cache_renewal, each),
		cmocka_unit_test_setup(test_near_expiry_fetch_count, each),
		cmocka_unit_test_setup(test_no_expiry_periodic, each),
		cmocka_unit_test_setup(test_expired_warns_once, each),
		cmocka_unit_test_setup(test_parse_time, each),
		cmocka_unit_test_setup(test_sts_parse, each),
		cmocka_unit_test_setup(test_sts_parse_bad, each),
		cmocka_unit_test_setup(test_xml_element, each),
		cmocka_unit_test_setup(test_sts_error, each),
		cmocka_unit_test_setup(test_form_encode, each),
		cmocka_unit_test_setup(test_web_identity_config, each),
		cmocka_unit_test_setup(test_token_file, each),
		cmocka_unit_test_setup(test_container_url_check, each),
		cmocka_unit_test_setup(test_container_env, each),
		cmocka_unit_test_setup(test_meta_json, each),
		cmocka_unit_test_setup(test_imds_names, each),
		cmocka_unit_test_setup(test_imds_disabled, each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

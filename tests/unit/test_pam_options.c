/* Unit tests for pam_module/pam_options.c: pam_keyturn's module arguments,
 * the defaults, every option, and every way an argument can be wrong (each
 * is an error that names it, never a silent default); then the checks on
 * user names and passwords, and the quoting of text for log lines. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pam_options.h"

/* parse(o, err, "a", "b", NULL): kt_pam_opts_parse over the arguments. */
#define MAX_ARGS 16
static int parse(struct kt_pam_opts *o, char *err, size_t errlen, ...)
{
	const char *argv[MAX_ARGS];
	int argc = 0;
	va_list ap;

	va_start(ap, errlen);
	for (const char *a = va_arg(ap, const char *); a != NULL; a = va_arg(ap, const char *)) {
		assert_true(argc < MAX_ARGS);
		argv[argc++] = a;
	}
	va_end(ap);
	return kt_pam_opts_parse(o, argc, argv, err, errlen);
}

/* Whether a parse of one argument fails with a message holding want. */
static void expect_error(const char *arg, const char *want)
{
	struct kt_pam_opts o;
	char err[256];

	memset(err, 'x', sizeof(err));
	assert_int_equal(parse(&o, err, sizeof(err), arg, NULL), -EINVAL);
	if (strstr(err, want) == NULL)
		fail_msg("argument \"%s\": message \"%s\" does not hold \"%s\"", arg, err, want);
}

static void test_defaults(void **state)
{
	struct kt_pam_opts o;
	char err[64] = "junk";

	(void)state;
	assert_int_equal(kt_pam_opts_parse(&o, 0, NULL, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(o.socket, KT_PAM_DEFAULT_SOCKET);
	assert_true(strstr(o.socket, "/keyturn/keyturnd.sock") != NULL);
	assert_int_equal(o.timeout_ms, 5000);
	assert_false(o.debug);
	assert_int_equal(o.pass, KT_PAM_PASS_DEFAULT);
	assert_false(o.ignore_unknown_user);
	assert_false(o.ignore_authinfo_unavail);
}

static void test_every_flag(void **state)
{
	struct kt_pam_opts o;
	char err[64];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "debug", "ignore_unknown_user",
			       "ignore_authinfo_unavail", NULL),
			 0);
	assert_true(o.debug);
	assert_true(o.ignore_unknown_user);
	assert_true(o.ignore_authinfo_unavail);
	assert_int_equal(o.pass, KT_PAM_PASS_DEFAULT);
	assert_int_equal(o.timeout_ms, KT_PAM_DEFAULT_TIMEOUT_MS);

	assert_int_equal(parse(&o, err, sizeof(err), "ignore_authinfo_unavail", NULL), 0);
	assert_false(o.debug);
	assert_false(o.ignore_unknown_user);
	assert_true(o.ignore_authinfo_unavail);
}

/* The names are those that pam_get_authtok() itself looks for in a
 * module's arguments; use_first_pass wins in any order. */
static void test_first_pass(void **state)
{
	struct kt_pam_opts o;
	char err[64];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "use_first_pass", NULL), 0);
	assert_int_equal(o.pass, KT_PAM_PASS_USE_FIRST);
	assert_int_equal(parse(&o, err, sizeof(err), "try_first_pass", NULL), 0);
	assert_int_equal(o.pass, KT_PAM_PASS_TRY_FIRST);
	assert_int_equal(parse(&o, err, sizeof(err), "try_first_pass", "use_first_pass", NULL), 0);
	assert_int_equal(o.pass, KT_PAM_PASS_USE_FIRST);
	assert_int_equal(parse(&o, err, sizeof(err), "use_first_pass", "try_first_pass", NULL), 0);
	assert_int_equal(o.pass, KT_PAM_PASS_USE_FIRST);
}

static void test_socket(void **state)
{
	struct kt_pam_opts o;
	char err[64];
	const char *argv[] = { "socket=/tmp/a.sock", "debug", "socket=/run/b/keyturnd.sock" };

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "socket=/tmp/x.sock", NULL), 0);
	assert_string_equal(o.socket, "/tmp/x.sock");
	/* A later socket= wins; the string is argv's own, not a copy. */
	assert_int_equal(kt_pam_opts_parse(&o, 3, argv, err, sizeof(err)), 0);
	assert_ptr_equal(o.socket, argv[2] + 7);
}

static void test_socket_length(void **state)
{
	struct kt_pam_opts o;
	char arg[7 + KT_PAM_MAX_SOCKET_LEN + 2];
	char err[256];

	(void)state;
	/* Exactly the longest path that sun_path holds is fine... */
	memcpy(arg, "socket=/", 8);
	memset(arg + 8, 'a', KT_PAM_MAX_SOCKET_LEN - 1);
	arg[7 + KT_PAM_MAX_SOCKET_LEN] = '\0';
	assert_int_equal(strlen(arg + 7), KT_PAM_MAX_SOCKET_LEN);
	assert_int_equal(parse(&o, err, sizeof(err), arg, NULL), 0);
	assert_int_equal(strlen(o.socket), KT_PAM_MAX_SOCKET_LEN);
	/* ...one byte more is not. */
	arg[7 + KT_PAM_MAX_SOCKET_LEN] = 'a';
	arg[7 + KT_PAM_MAX_SOCKET_LEN + 1] = '\0';
	assert_int_equal(parse(&o, err, sizeof(err), arg, NULL), -EINVAL);
	assert_non_null(strstr(err, "socket="));
	assert_non_null(strstr(err, "longer than 107 bytes"));
}

static void test_socket_errors(void **state)
{
	(void)state;
	expect_error("socket=", "socket=: not an absolute path");
	expect_error("socket=run/keyturn.sock", "socket=run/keyturn.sock: not an absolute path");
	expect_error("socket", "unknown option \"socket\"");
}

static void test_timeout(void **state)
{
	struct kt_pam_opts o;
	char err[64];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "timeout=1", NULL), 0);
	assert_int_equal(o.timeout_ms, 1);
	assert_int_equal(parse(&o, err, sizeof(err), "timeout=60000", NULL), 0);
	assert_int_equal(o.timeout_ms, 60000);
	assert_int_equal(parse(&o, err, sizeof(err), "timeout=250", "timeout=0750", NULL), 0);
	assert_int_equal(o.timeout_ms, 750);
}

static void test_timeout_errors(void **state)
{
	static const char *const not_numbers[] = {
		"timeout=",    "timeout=abc", "timeout= 5",   "timeout=+5",  "timeout=-1",
		"timeout=5ms", "timeout=5 ",  "timeout=0x10", "timeout=1e3", "timeout=5.0",
	};
	static const char *const out_of_range[] = {
		"timeout=0",
		"timeout=60001",
		"timeout=2147483648",
		"timeout=99999999999999999999999",
	};
	char want[128];

	(void)state;
	for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
		const char *a = not_numbers[i];

		snprintf(want, sizeof(want), "%s: not a number of milliseconds", a);
		expect_error(a, want);
	}
	for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
		snprintf(want, sizeof(want), "%s: out of range", out_of_range[i]);
		expect_error(out_of_range[i], want);
	}
}

static void test_unknown_options(void **state)
{
	(void)state;
	expect_error("nullok", "unknown option \"nullok\"");
	expect_error("use_authtok", "unknown option \"use_authtok\"");
	expect_error("Debug", "unknown option \"Debug\"");
	expect_error("debug=1", "unknown option \"debug=1\"");
	expect_error("use_first_pass ", "unknown option \"use_first_pass \"");
	expect_error("", "unknown option \"\"");
	expect_error("timeout", "unknown option \"timeout\"");
	expect_error("sockets=/x", "unknown option \"sockets=/x\"");
}

/* The first bad argument stops the parse, whatever comes before or after. */
static void test_first_error_wins(void **state)
{
	struct kt_pam_opts o;
	char err[128];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "debug", "bogus", "timeout=x", "socket=/a",
			       NULL),
			 -EINVAL);
	assert_string_equal(err, "unknown option \"bogus\"");
	assert_int_equal(parse(&o, err, sizeof(err), "debug", "timeout=x", "bogus", NULL), -EINVAL);
	assert_string_equal(err, "timeout=x: not a number of milliseconds");
}

/* A bad argument is quoted printable and cut short: a log line must not
 * carry control characters or a whole paragraph from a service file. */
static void test_error_quoting(void **state)
{
	struct kt_pam_opts o;
	char err[256], arg[300];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "bad\nline\x1b[31m\xc3\xa9", NULL), -EINVAL);
	assert_string_equal(err, "unknown option \"bad?line?[31m??\"");
	memset(arg, 'z', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	assert_int_equal(parse(&o, err, sizeof(err), arg, NULL), -EINVAL);
	assert_true(strlen(err) < 100);
	assert_non_null(strstr(err, "unknown option \"zzzz"));
}

/* The message always fits the buffer it is given and ends in a NUL. */
static void test_small_error_buffer(void **state)
{
	struct kt_pam_opts o;
	char err[8];
	const char *argv[] = { "frobnicate" };

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(kt_pam_opts_parse(&o, 1, argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown");
	/* No buffer at all is allowed, and still an error. */
	assert_int_equal(kt_pam_opts_parse(&o, 1, argv, NULL, 0), -EINVAL);
}

static void test_bad_argv(void **state)
{
	struct kt_pam_opts o;
	char err[64];
	const char *argv[] = { "debug", NULL };

	(void)state;
	assert_int_equal(kt_pam_opts_parse(&o, 2, argv, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "argument 2 is missing");
	assert_int_equal(kt_pam_opts_parse(&o, 1, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(kt_pam_opts_parse(&o, -1, argv, err, sizeof(err)), -EINVAL);
}

/* Each parse starts from the defaults: nothing carries over. */
static void test_no_carry_over(void **state)
{
	struct kt_pam_opts o;
	char err[64];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "debug", "use_first_pass", "timeout=9",
			       "socket=/x", "ignore_unknown_user", NULL),
			 0);
	assert_int_equal(kt_pam_opts_parse(&o, 0, NULL, err, sizeof(err)), 0);
	assert_false(o.debug);
	assert_int_equal(o.pass, KT_PAM_PASS_DEFAULT);
	assert_int_equal(o.timeout_ms, KT_PAM_DEFAULT_TIMEOUT_MS);
	assert_string_equal(o.socket, KT_PAM_DEFAULT_SOCKET);
	assert_false(o.ignore_unknown_user);
}

static void test_printable(void **state)
{
	char buf[8];

	(void)state;
	assert_string_equal(kt_pam_printable("alice", buf, sizeof(buf)), "alice");
	assert_string_equal(kt_pam_printable("a\tb\x7f\xff", buf, sizeof(buf)), "a?b??");
	assert_string_equal(kt_pam_printable("abcdefghij", buf, sizeof(buf)), "abcdefg");
	assert_string_equal(kt_pam_printable(NULL, buf, sizeof(buf)), "");
	assert_string_equal(kt_pam_printable("x", buf, 1), "");
	assert_string_equal(kt_pam_printable("x", buf, 0), "");
}

#define U8(s) kt_pam_utf8_valid(s, sizeof(s) - 1)
static void test_utf8(void **state)
{
	(void)state;
	assert_true(U8(""));
	assert_true(U8("plain ASCII \"quoted\" \\ and \t tab"));
	assert_true(U8("\xc3\xa9t\xc3\xa9"));      /* été */
	assert_true(U8("\xe2\x82\xac"));           /* U+20AC */
	assert_true(U8("\xf0\x9f\x94\x91"));       /* U+1F511 */
	assert_true(U8("\xf4\x8f\xbf\xbf"));       /* U+10FFFF, the last */
	assert_true(U8("\xed\x9f\xbf"));           /* U+D7FF, before the surrogates */
	assert_true(U8("\xc2\x80"));               /* U+0080, the first of two bytes */
	assert_true(kt_pam_utf8_valid("a\0b", 3)); /* NUL is ASCII; the caller decides */

	assert_false(U8("\xff"));
	assert_false(U8("\x80"));                 /* a lone continuation byte */
	assert_false(U8("\xc3"));                 /* cut short */
	assert_false(U8("\xe2\x82"));             /* cut short */
	assert_false(U8("\xc3\x28"));             /* not a continuation */
	assert_false(U8("\xc0\xaf"));             /* overlong '/' */
	assert_false(U8("\xc1\xbf"));             /* overlong */
	assert_false(U8("\xe0\x80\xaf"));         /* overlong '/' */
	assert_false(U8("\xf0\x80\x80\xaf"));     /* overlong '/' */
	assert_false(U8("\xed\xa0\x80"));         /* U+D800, a surrogate */
	assert_false(U8("\xed\xbf\xbf"));         /* U+DFFF, a surrogate */
	assert_false(U8("\xf4\x90\x80\x80"));     /* U+110000 */
	assert_false(U8("\xf8\x88\x80\x80\x80")); /* five bytes */
	assert_false(U8("ok\xe9"));               /* Latin-1 é at the end */
	/* The length counts, not a NUL: a good prefix of a bad string is good. */
	assert_true(kt_pam_utf8_valid("ok\xe9", 2));
}

static void test_user_valid(void **state)
{
	(void)state;
	assert_true(kt_pam_user_valid("alice"));
	assert_true(kt_pam_user_valid("svc-app1.db_x@corp"));
	assert_true(kt_pam_user_valid("j\xc3\xbcrgen"));
	assert_false(kt_pam_user_valid(NULL));
	assert_false(kt_pam_user_valid(""));
	assert_false(kt_pam_user_valid("ali\nce"));
	assert_false(kt_pam_user_valid("\tbob"));
	assert_false(kt_pam_user_valid("bob\x7f"));
	assert_false(kt_pam_user_valid("bob\x1b[2J"));
	assert_false(kt_pam_user_valid("j\xfcrgen"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_flag),
		cmocka_unit_test(test_first_pass),
		cmocka_unit_test(test_socket),
		cmocka_unit_test(test_socket_length),
		cmocka_unit_test(test_socket_errors),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_timeout_errors),
		cmocka_unit_test(test_unknown_options),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_error_quoting),
		cmocka_unit_test(test_small_error_buffer),
		cmocka_unit_test(test_bad_argv),
		cmocka_unit_test(test_no_carry_over),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_user_valid),
		cmocka_unit_test(test_printable),
	};

	return cmocka_run_group_tests_name("pam_options", tests, NULL, NULL);
}

/* Unit tests for common/log.c: the errno-aware loggers append ": " and the
 * text of the errno they found and leave errno as it was; log_audit writes
 * the access and login lines byte for byte as the system tests grep them. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"

/* Standard error goes to a scratch file between capture_begin and
 * capture_end, which returns what was written to it. */
struct capture {
	FILE *tmp;
	int saved;
	char text[4096];
};

static void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

static const char *capture_end(struct capture *c)
{
	size_t n;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	rewind(c->tmp);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->tmp);
	c->text[n] = '\0';
	fclose(c->tmp);
	return c->text;
}

static int setup(void **state)
{
	(void)state;
	log_init("test_log", true, KT_LOG_DEBUG);
	return 0;
}

static void test_warn_errno(void **state)
{
	struct capture c;
	char want[256];
	int after;

	(void)state;
	snprintf(want, sizeof(want), "test_log: warning: cannot open %s: %s\n", "/nowhere",
		 strerror(ENOENT));
	capture_begin(&c);
	errno = ENOENT;
	log_warn_errno("cannot open %s", "/nowhere");
	after = errno;
	assert_string_equal(capture_end(&c), want);
	assert_int_equal(after, ENOENT);
}

static void test_err_errno(void **state)
{
	struct capture c;
	char want[256];
	int after;

	(void)state;
	snprintf(want, sizeof(want), "test_log: error: bind %d: %s\n", 7, strerror(EACCES));
	capture_begin(&c);
	errno = EACCES;
	log_err_errno("bind %d", 7);
	after = errno;
	assert_string_equal(capture_end(&c), want);
	assert_int_equal(after, EACCES);
}

/* A message longer than the line buffer is cut, never the errno text. */
static void test_errno_text_survives_long_message(void **state)
{
	struct capture c;
	char longarg[3000], tail[128];
	const char *got;

	(void)state;
	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	snprintf(tail, sizeof(tail), ": %s\n", strerror(EPIPE));
	capture_begin(&c);
	errno = EPIPE;
	log_warn_errno("%s", longarg);
	got = capture_end(&c);
	assert_true(strlen(got) > strlen(tail));
	assert_string_equal(got + strlen(got) - strlen(tail), tail);
}

/* Below the level nothing is written, and errno is still kept. */
static void test_filtered_keeps_errno(void **state)
{
	struct capture c;
	int after;

	(void)state;
	log_set_level(KT_LOG_ERR);
	capture_begin(&c);
	errno = EAGAIN;
	log_warn_errno("not shown");
	log_info("not shown either");
	after = errno;
	assert_string_equal(capture_end(&c), "");
	assert_int_equal(after, EAGAIN);
	log_set_level(KT_LOG_DEBUG);
}

/* The plain loggers append nothing and keep errno too. */
static void test_plain_keeps_errno(void **state)
{
	struct capture c;
	int after;

	(void)state;
	capture_begin(&c);
	errno = EINTR;
	log_warn("plain %s", "line");
	after = errno;
	assert_string_equal(capture_end(&c), "test_log: warning: plain line\n");
	assert_int_equal(after, EINTR);
}

/* The access line as ops.c's audit() writes it: info when allowed,
 * warning for any refusal. */
static void test_audit_access(void **state)
{
	static const char fmt[] = "op=%s secret=%s uid=%lu pid=%ld result=%s";
	struct capture c;

	(void)state;
	capture_begin(&c);
	log_audit("access", true, fmt, "get", "db/app", 1000UL, 4242L, "allowed");
	log_audit("access", false, fmt, "refresh", "db/app", 1001UL, 77L, "denied");
	assert_string_equal(capture_end(&c),
			    "test_log: info: access: op=get secret=db/app uid=1000 pid=4242 "
			    "result=allowed\n"
			    "test_log: warning: access: op=refresh secret=db/app uid=1001 pid=77 "
			    "result=denied\n");
}

/* The login lines as login.c's audit() writes them: a match with its stage
 * and source at info, anything else with only its result at warning. */
static void test_audit_login(void **state)
{
	struct capture c;

	(void)state;
	capture_begin(&c);
	log_audit("login", true,
		  "user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld secret=%s "
		  "result=match stage=%s source=%s",
		  "alice", "sshd", "10.0.0.1", "-", 0UL, 99L, "db/app", "AWSCURRENT", "cache");
	log_audit("login", false,
		  "user=%s service=%s rhost=%s tty=%s uid=%lu pid=%ld secret=%s result=%s", "bob",
		  "-", "-", "pts/1", 1000UL, 100L, "db/app", "mismatch");
	assert_string_equal(
		capture_end(&c),
		"test_log: info: login: user=alice service=sshd rhost=10.0.0.1 tty=- "
		"uid=0 pid=99 secret=db/app result=match stage=AWSCURRENT source=cache\n"
		"test_log: warning: login: user=bob service=- rhost=- tty=pts/1 "
		"uid=1000 pid=100 secret=db/app result=mismatch\n");
}

/* At warning level a refusal is still logged, an allowed request is not. */
static void test_audit_levels(void **state)
{
	struct capture c;
	int after;

	(void)state;
	log_set_level(KT_LOG_WARN);
	capture_begin(&c);
	errno = ENOENT;
	log_audit("access", true, "op=%s", "get");
	log_audit("access", false, "op=%s", "list");
	after = errno;
	assert_string_equal(capture_end(&c), "test_log: warning: access: op=list\n");
	assert_int_equal(after, ENOENT);
	log_set_level(KT_LOG_DEBUG);
}

static void test_kt_errf(void **state)
{
	char err[8];

	(void)state;
	kt_errf(err, sizeof(err), "%s %d", "abcdef", 42);
	assert_string_equal(err, "abcdef ");
	kt_errf(NULL, 0, "%s", "nowhere to go");
	err[0] = 'x';
	kt_errf(err, 0, "%s", "no room");
	assert_int_equal(err[0], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_warn_errno),
		cmocka_unit_test(test_err_errno),
		cmocka_unit_test(test_errno_text_survives_long_message),
		cmocka_unit_test(test_filtered_keeps_errno),
		cmocka_unit_test(test_plain_keeps_errno),
		cmocka_unit_test(test_audit_access),
		cmocka_unit_test(test_audit_login),
		cmocka_unit_test(test_audit_levels),
		cmocka_unit_test(test_kt_errf),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}

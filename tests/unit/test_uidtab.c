/* Unit tests for uidtab.c: per-uid entries, and the complaint limiter that
 * keeps one user's garbage from flooding the log. The log is captured by
 * pointing stderr at a scratch file. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "uidtab.h"

static FILE *captured;

static int setup(void **state)
{
	(void)state;
	captured = tmpfile();
	if (captured == NULL || dup2(fileno(captured), STDERR_FILENO) < 0)
		return -1;
	log_init("test_uidtab", true, KT_LOG_DEBUG);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fclose(captured);
	return 0;
}

/* Lines logged since the last call that contain needle. */
static int lines_with(const char *needle)
{
	static long done;
	char line[1024];
	int n = 0;

	fflush(stderr);
	fseek(captured, done, SEEK_SET);
	while (fgets(line, sizeof(line), captured) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	done = ftell(captured);
	return n;
}

static void test_entries(void **state)
{
	struct kt_uidtab *t = kt_uidtab_new();
	struct kt_uid_use *a, *b;

	(void)state;
	assert_non_null(t);
	a = kt_uidtab_get(t, 1001);
	b = kt_uidtab_get(t, 1001 + 256); /* the same bucket, another uid */
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(kt_uidtab_get(t, 1001), a);
	assert_int_equal(kt_uidtab_size(t), 2);
	/* An entry that holds something stays; one that holds nothing goes. */
	a->conns = 1;
	kt_uidtab_tick(t, 100);
	assert_int_equal(kt_uidtab_size(t), 1);
	assert_ptr_equal(kt_uidtab_get(t, 1001), a);
	a->conns = 0;
	a->out = 10;
	kt_uidtab_tick(t, 101);
	assert_int_equal(kt_uidtab_size(t), 1);
	a->out = 0;
	kt_uidtab_tick(t, 102);
	assert_int_equal(kt_uidtab_size(t), 0);
	kt_uidtab_free(t);
}

static void test_complaints_limited(void **state)
{
	struct kt_uidtab *t = kt_uidtab_new();

	(void)state;
	lines_with("");
	/* 10,000 complaints in one window: one line now... */
	for (int i = 0; i < 10000; i++)
		kt_uidtab_complain(t, 1001, i % 2 ? KT_COMPLAINT_FRAME : KT_COMPLAINT_QUOTA, 1000,
				   "bad thing %d from uid 1001", i);
	assert_int_equal(lines_with("bad thing 0 from uid 1001"), 1);
	assert_int_equal(lines_with("bad thing"), 0);
	/* ...another uid is not held back by the first one's window... */
	kt_uidtab_complain(t, 1002, KT_COMPLAINT_DEADLINE, 1001, "slow uid 1002");
	assert_int_equal(lines_with("slow uid 1002"), 1);
	/* ...no summary before the window ends... */
	kt_uidtab_tick(t, 1000 + KT_COMPLAINT_WINDOW - 1);
	assert_int_equal(lines_with("more complaints"), 0);
	/* ...and one summary line with the counts when it does. */
	kt_uidtab_tick(t, 1000 + KT_COMPLAINT_WINDOW);
	assert_int_equal(lines_with("uid 1001: 9999 more complaints in the last 60 s "
				    "(over max_connections_per_uid: 4999, bad frame length: 5000)"),
			 1);
	/* uid 1002 had nothing after its first line: no summary, and gone. */
	kt_uidtab_tick(t, 1001 + KT_COMPLAINT_WINDOW);
	assert_int_equal(lines_with("uid 1002"), 0);
	assert_int_equal(kt_uidtab_size(t), 0);
	/* A new window starts with a line again. */
	kt_uidtab_complain(t, 1001, KT_COMPLAINT_REQUEST, 2000, "again from uid 1001");
	assert_int_equal(lines_with("again from uid 1001"), 1);
	kt_uidtab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_complaints_limited),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests for acl.c: the access rule, and peer credentials read from a
 * real socket pair. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "acl.h"

static void test_rule(void **state)
{
	uid_t uids[] = { 1001 };
	gid_t gids[] = { 2002 };
	struct kt_secret_cfg s = { 0 };
	struct kt_peer p = { 0 };

	(void)state;
	s.allow_uids = uids;
	s.nallow_users = 1;
	s.allow_gids = gids;
	s.nallow_groups = 1;

	p.uid = 0;
	p.gid = 0;
	assert_true(kt_acl_may_read(&s, &p)); /* root reads all */
	p.uid = 1001;
	p.gid = 1001;
	assert_true(kt_acl_may_read(&s, &p)); /* allowed user */
	p.uid = 1003;
	assert_false(kt_acl_may_read(&s, &p)); /* anyone else */
	p.gid = 2002;
	assert_true(kt_acl_may_read(&s, &p)); /* primary group */
	p.gid = 1003;
	p.groups[0] = 5;
	p.groups[1] = 2002;
	p.ngroups = 2;
	assert_true(kt_acl_may_read(&s, &p)); /* supplementary group */
	p.ngroups = 1;
	assert_false(kt_acl_may_read(&s, &p)); /* only what the kernel listed counts */
}

static void test_empty_rule_is_root_only(void **state)
{
	struct kt_secret_cfg s = { 0 };
	struct kt_peer p = { 0 };

	(void)state;
	p.uid = 1;
	assert_false(kt_acl_may_read(&s, &p));
	p.uid = 0;
	assert_true(kt_acl_may_read(&s, &p));
}

static void test_peer_from_socketpair(void **state)
{
	struct kt_peer p;
	gid_t mine[KT_PEER_MAX_GROUPS];
	int sv[2], n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(kt_peer_from_socket(sv[0], &p), 0);
	assert_int_equal(p.uid, geteuid());
	assert_int_equal(p.gid, getegid());
	assert_int_equal(p.pid, getpid());
	n = getgroups(KT_PEER_MAX_GROUPS, mine);
	assert_int_equal(p.ngroups, (size_t)n);
	assert_true(strlen(p.name) > 0);
	close(sv[0]);
	close(sv[1]);
	/* Not a socket: an error, never made-up credentials. */
	assert_int_equal(pipe(sv), 0);
	assert_true(kt_peer_from_socket(sv[0], &p) < 0);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_empty_rule_is_root_only),
		cmocka_unit_test(test_peer_from_socketpair),
	};

	return cmocka_run_group_tests_name("acl", tests, NULL, NULL);
}

/* Unit tests for keyturnd's privilege handling: hardening, the user lookup,
 * and (as root) the drop to "nobody" in a child that reports what the kernel
 * says about its ids, groups and capabilities through a pipe. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "privdrop.h"

/* The locked arena the tests ask for: small, and under any default limit. */
#define ARENA (1u << 20)

#define MAX_GROUPS 64

/* What a child saw, sent back to the parent in one piece. */
struct report {
	int rc;
	char err[256];
	int rc2;
	char err2[256];
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
	int nnp;
	int dumpable;
	int setuid0_rc;
	int setuid0_errno;
	int setgid0_rc;
	int alloc_ok;
	int thread_ok;
	unsigned long long memlock_want, memlock_cur, memlock_max;
	char status[8192];
};

struct target {
	uid_t uid;
	gid_t gid;
};

static struct target nobody;

/* cmocka 1.1.5's skip() prints "not ok N # SKIP", which automake's TAP
 * driver counts as a failure; a test that cannot run here says why in a TAP
 * comment and passes instead. */
static bool skip_because(const char *why)
{
	printf("# skipped: %s\n", why);
	fflush(stdout);
	return false;
}

static bool have_root(void)
{
	if (geteuid() != 0)
		return skip_because("needs root (CI runs these as root)");
	return true;
}

static bool have_nobody(void)
{
	char err[256];

	if (kt_lookup_user("nobody", &nobody.uid, &nobody.gid, err, sizeof(err)) != 0)
		return skip_because("no user \"nobody\" on this system");
	return true;
}

/* Reads a whole small file into buf with plain system calls, so that it
 * works in a child whatever state its allocator is in. */
static void read_small_file(const char *path, char *buf, size_t len)
{
	size_t have = 0;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (have < len - 1 && (n = read(fd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	close(fd);
}

/* Fills in everything the parent checks after a drop. */
static void observe(struct report *r)
{
	int n;

	getresuid(&r->ruid, &r->euid, &r->suid);
	getresgid(&r->rgid, &r->egid, &r->sgid);
	n = getgroups(MAX_GROUPS, r->groups);
	r->ngroups = n;
	r->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	r->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	read_small_file("/proc/self/status", r->status, sizeof(r->status));
	errno = 0;
	r->setuid0_rc = setuid(0);
	r->setuid0_errno = errno;
	r->setgid0_rc = setgid(0);
}

/* Runs fn in a forked child and returns its report; the child leaves with
 * _exit so that nothing of the test harness runs twice. */
static void run_child(void (*fn)(struct report *), struct report *out)
{
	struct report *r;
	size_t have = 0;
	ssize_t n;
	int fds[2];
	int status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *p;
		size_t left = sizeof(*r);

		close(fds[0]);
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			_exit(3);
		fn(r);
		p = (const char *)r;
		while (left > 0) {
			n = write(fds[1], p, left);
			if (n <= 0)
				_exit(4);
			p += n;
			left -= (size_t)n;
		}
		_exit(0);
	}
	close(fds[1]);
	memset(out, 0, sizeof(*out));
	while (have < sizeof(*out) &&
	       (n = read(fds[0], (char *)out + have, sizeof(*out) - have)) > 0)
		have += (size_t)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(have, sizeof(*out));
}

/* The value of a "Name:\t..." line of /proc/self/status, parsed in base. */
static uint64_t status_field(const char *status, const char *name, int base)
{
	char key[64];
	const char *p;
	char *end = NULL;
	uint64_t v;

	snprintf(key, sizeof(key), "\n%s:", name);
	p = strstr(status, key);
	if (p == NULL)
		fail_msg("no %s in /proc/self/status", name);
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	errno = 0;
	v = strtoull(p, &end, base);
	assert_int_equal(errno, 0);
	assert_true(end != p);
	return v;
}

/* Takes one capability out of this process's effective set, so that the
 * code under test runs as if it had never held it. */
static void drop_effective(cap_value_t c)
{
	cap_t caps = cap_get_proc();

	if (caps != NULL && cap_set_flag(caps, CAP_EFFECTIVE, 1, &c, CAP_CLEAR) == 0)
		cap_set_proc(caps);
	cap_free(caps);
}

/* The secure heap is set up once per process, so each case runs in a
 * child of its own. */
static void child_harden(struct report *r)
{
	struct rlimit rl;
	char err[256];

	r->rc = kt_harden_process(ARENA, r->err, sizeof(r->err));
	/* Again with the same size: nothing to do; with another: refused. */
	r->rc2 = kt_harden_process(ARENA, r->err2, sizeof(r->err2));
	r->setgid0_rc = kt_harden_process(ARENA * 2, err, sizeof(err));
	r->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	r->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	getrlimit(RLIMIT_CORE, &rl);
	r->memlock_max = (unsigned long long)rl.rlim_max;
	r->memlock_cur = (unsigned long long)rl.rlim_cur;
	read_small_file("/proc/self/status", r->status, sizeof(r->status));
}

static void test_harden_process(void **state)
{
	struct report *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	run_child(child_harden, r);
	assert_int_equal(r->rc, 0);
	assert_string_equal(r->err, "");
	assert_int_equal(r->rc2, 0);
	assert_int_equal(r->setgid0_rc, -EBUSY);
	assert_int_equal(r->dumpable, 0);
	assert_int_equal(r->nnp, 1);
	assert_int_equal(r->memlock_cur, 0); /* RLIMIT_CORE */
	assert_int_equal(r->memlock_max, 0);
	/* The arena alone is locked (OpenSSL locks it with the mlock2 system
	 * call, which sanitizers do not intercept), nothing more. */
	assert_int_equal(status_field(r->status, "VmLck", 10), ARENA / 1024);
	free(r);
}

/* An arena over RLIMIT_MEMLOCK (hard limit included) is refused with an
 * error that names the setting and the limit, even for root. */
static void child_over_limit(struct report *r)
{
	struct rlimit small = { 64 * 1024, 64 * 1024 };

	setrlimit(RLIMIT_MEMLOCK, &small);
	r->rc = kt_harden_process(ARENA, r->err, sizeof(r->err));
	r->rc2 = kt_harden_process(3 * 4096, r->err2, sizeof(r->err2));
	r->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	read_small_file("/proc/self/status", r->status, sizeof(r->status));
}

static void test_harden_over_limit(void **state)
{
	struct report *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	run_child(child_over_limit, r);
	assert_int_equal(r->rc, -ENOMEM);
	printf("# %s\n", r->err);
	assert_non_null(strstr(r->err, "locked_memory = 1048576 bytes"));
	assert_non_null(strstr(r->err, "RLIMIT_MEMLOCK allows (65536 bytes)"));
	assert_int_equal(r->rc2, -EINVAL); /* not a power of two */
	assert_non_null(strstr(r->err2, "power of two"));
	assert_int_equal(status_field(r->status, "VmLck", 10), 0);
	/* The rest of the hardening happened all the same. */
	assert_int_equal(r->dumpable, 0);
	assert_int_equal(status_field(r->status, "NoNewPrivs", 10), 1);
	free(r);
}

/* Without CAP_SYS_RESOURCE the soft limit still rises as far as the arena
 * needs, when the hard limit allows it. */
static void child_soft_raised(struct report *r)
{
	struct rlimit rl = { 64 * 1024, 2 * ARENA };

	drop_effective(CAP_SYS_RESOURCE);
	r->rc2 = setrlimit(RLIMIT_MEMLOCK, &rl);
	r->rc = kt_harden_process(ARENA, r->err, sizeof(r->err));
	getrlimit(RLIMIT_MEMLOCK, &rl);
	r->memlock_cur = (unsigned long long)rl.rlim_cur;
	r->memlock_max = (unsigned long long)rl.rlim_max;
	read_small_file("/proc/self/status", r->status, sizeof(r->status));
}

static void test_harden_raises_soft_limit(void **state)
{
	struct report *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	run_child(child_soft_raised, r);
	assert_int_equal(r->rc2, 0);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->memlock_cur, ARENA);
	assert_int_equal(r->memlock_max, 2 * ARENA);
	assert_int_equal(status_field(r->status, "VmLck", 10), ARENA / 1024);
	free(r);
}

static void test_lookup_user(void **state)
{
	char err[256];
	uid_t uid = 77;
	gid_t gid = 77;
	struct passwd *pw;

	(void)state;
	assert_int_equal(kt_lookup_user("root", &uid, &gid, err, sizeof(err)), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);

	pw = getpwnam("nobody");
	if (pw != NULL) {
		assert_int_equal(kt_lookup_user("nobody", &uid, &gid, err, sizeof(err)), 0);
		assert_int_equal(uid, pw->pw_uid);
		assert_int_equal(gid, pw->pw_gid);
	}

	uid = 77;
	gid = 77;
	assert_int_equal(kt_lookup_user("kt-no-such-user-x", &uid, &gid, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "kt-no-such-user-x"));
	assert_int_equal(uid, 77);
	assert_int_equal(gid, 77);
	assert_int_equal(kt_lookup_user("", &uid, &gid, err, sizeof(err)), -EINVAL);
	assert_int_equal(kt_lookup_user(NULL, &uid, &gid, err, sizeof(err)), -EINVAL);
	/* No room for a message is allowed too. */
	assert_int_equal(kt_lookup_user("kt-no-such-user-x", &uid, &gid, NULL, 0), -ENOENT);
}

/* Refused before anything changes, so it is safe in the test process. */
static void test_drop_refuses_uid0(void **state)
{
	char err[256];
	uid_t ruid, euid, suid;

	(void)state;
	getresuid(&ruid, &euid, &suid);
	assert_int_equal(kt_drop_privileges("root", 0, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "uid 0"));
	assert_int_equal(geteuid(), euid);
	assert_int_equal(getuid(), ruid);
}

static void *return_arg(void *arg)
{
	return arg;
}

/* The daemon's order: harden (which locks the arena), drop, then start
 * threads and grow: nothing else is locked, so neither is capped by
 * RLIMIT_MEMLOCK, and the arena stays locked after the drop. */
static void child_drop(struct report *r)
{
	const size_t big = 32u << 20;
	char ignored[256];
	pthread_t t;
	char *p;

	kt_harden_process(ARENA, ignored, sizeof(ignored));
	r->rc = kt_drop_privileges("nobody", nobody.uid, nobody.gid, r->err, sizeof(r->err));
	if (r->rc == 0) {
		p = malloc(big);
		if (p != NULL) {
			memset(p, 0x5a, big);
			r->alloc_ok = 1;
			free(p);
		}
		if (pthread_create(&t, NULL, return_arg, NULL) == 0) {
			pthread_join(t, NULL);
			r->thread_ok = 1;
		}
	}
	observe(r);
}

static void test_drop_to_nobody(void **state)
{
	struct report *r;
	gid_t want[MAX_GROUPS];
	int nwant = MAX_GROUPS;
	int i, j;

	(void)state;
	if (!have_root() || !have_nobody())
		return;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	run_child(child_drop, r);
	if (r->rc != 0)
		fail_msg("kt_drop_privileges: %d (%s)", r->rc, r->err);
	assert_string_equal(r->err, "");

	assert_int_equal(r->ruid, nobody.uid);
	assert_int_equal(r->euid, nobody.uid);
	assert_int_equal(r->suid, nobody.uid);
	assert_int_equal(r->rgid, nobody.gid);
	assert_int_equal(r->egid, nobody.gid);
	assert_int_equal(r->sgid, nobody.gid);

	/* Exactly the groups the group database gives "nobody"; none of root's. */
	assert_true(getgrouplist("nobody", nobody.gid, want, &nwant) >= 0);
	assert_int_equal(r->ngroups, nwant);
	for (i = 0; i < nwant; i++) {
		for (j = 0; j < r->ngroups && r->groups[j] != want[i]; j++)
			;
		assert_true(j < r->ngroups);
	}
	for (j = 0; j < r->ngroups; j++)
		assert_int_not_equal(r->groups[j], 0);

	assert_int_equal(status_field(r->status, "CapInh", 16), 0);
	assert_int_equal(status_field(r->status, "CapPrm", 16), 0);
	assert_int_equal(status_field(r->status, "CapEff", 16), 0);
	assert_int_equal(status_field(r->status, "CapBnd", 16), 0);
	assert_int_equal(status_field(r->status, "CapAmb", 16), 0);
	assert_int_equal(status_field(r->status, "NoNewPrivs", 10), 1);
	assert_int_equal(status_field(r->status, "VmLck", 10), ARENA / 1024);
	assert_int_equal(r->nnp, 1);
	assert_int_equal(r->dumpable, 0);

	assert_int_equal(r->setuid0_rc, -1);
	assert_int_equal(r->setuid0_errno, EPERM);
	assert_int_equal(r->setgid0_rc, -1);
	assert_int_equal(r->alloc_ok, 1);
	assert_int_equal(r->thread_ok, 1);
	free(r);
}

/* Dropping again once dropped names the step that refuses. */
static void child_drop_twice(struct report *r)
{
	r->rc = kt_drop_privileges("nobody", nobody.uid, nobody.gid, r->err, sizeof(r->err));
	r->rc2 = kt_drop_privileges("nobody", nobody.uid, nobody.gid, r->err2, sizeof(r->err2));
	observe(r);
}

static void expect_not_root_error(int rc, const char *err)
{
	assert_int_equal(rc, -EPERM);
	assert_int_equal(strncmp(err, "geteuid: ", 9), 0);
	assert_non_null(strstr(err, "needs root"));
}

static void test_drop_as_non_root_fails(void **state)
{
	struct report *r;
	char err[256];

	(void)state;
	if (geteuid() != 0) {
		expect_not_root_error(kt_drop_privileges("nobody", 65534, 65534, err, sizeof(err)),
				      err);
		return;
	}
	if (!have_nobody())
		return;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	run_child(child_drop_twice, r);
	if (r->rc != 0)
		fail_msg("first kt_drop_privileges: %d (%s)", r->rc, r->err);
	expect_not_root_error(r->rc2, r->err2);
	assert_int_equal(r->euid, nobody.uid);
	free(r);
}

static int wake_fds[2];

static void *idle_thread(void *arg)
{
	char c;

	(void)arg;
	while (read(wake_fds[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Capabilities are per thread, so a second thread makes the drop refuse
 * before it changes anything. */
static void child_drop_with_thread(struct report *r)
{
	pthread_t t;

	if (pipe(wake_fds) != 0 || pthread_create(&t, NULL, idle_thread, NULL) != 0) {
		r->rc = 1;
		return;
	}
	r->rc = kt_drop_privileges("nobody", nobody.uid, nobody.gid, r->err, sizeof(r->err));
	observe(r);
	if (write(wake_fds[1], "x", 1) == 1)
		pthread_join(t, NULL);
}

static void test_drop_refuses_threads(void **state)
{
	struct report *r;

	(void)state;
	if (!have_root() || !have_nobody())
		return;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	run_child(child_drop_with_thread, r);
	assert_int_equal(r->rc, -EBUSY);
	assert_non_null(strstr(r->err, "threads running"));
	/* Nothing was changed: the child was still root (its setuid(0) worked). */
	assert_int_equal(r->euid, 0);
	assert_int_equal(r->setuid0_rc, 0);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harden_process),
		cmocka_unit_test(test_harden_over_limit),
		cmocka_unit_test(test_harden_raises_soft_limit),
		cmocka_unit_test(test_lookup_user),
		cmocka_unit_test(test_drop_refuses_uid0),
		cmocka_unit_test(test_drop_to_nobody),
		cmocka_unit_test(test_drop_as_non_root_fails),
		cmocka_unit_test(test_drop_refuses_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

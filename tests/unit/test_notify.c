/* Unit tests for the sd_notify sender: the exact texts that reach a socket
 * bound at a path or in the abstract namespace, the refused addresses, the
 * no-op without NOTIFY_SOCKET, and WATCHDOG_USEC/WATCHDOG_PID. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kt_tmp.h"

#include "notify.h"
#include "privdrop.h"

/* A receiving socket standing in for systemd's. */
struct rcv {
	int fd;
	char dir[64];
	char path[128];
	char env[128];
};

static int bind_dgram(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (bind(fd, (const struct sockaddr *)sa, len) != 0)
		fail_msg("bind: %s", strerror(errno));
	return fd;
}

static int setup_path(void **state)
{
	struct rcv *r = calloc(1, sizeof(*r));
	struct sockaddr_un sa;

	if (r == NULL)
		return -1;
	kt_tmp_name(r->dir, sizeof(r->dir), "/tmp/kt-notify-");
	if (mkdtemp(r->dir) == NULL) {
		free(r);
		return -1;
	}
	snprintf(r->path, sizeof(r->path), "%s/notify.sock", r->dir);
	snprintf(r->env, sizeof(r->env), "%s", r->path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, r->path, strlen(r->path) + 1);
	r->fd = bind_dgram(&sa, sizeof(sa));
	setenv("NOTIFY_SOCKET", r->env, 1);
	*state = r;
	return 0;
}

static int setup_abstract(void **state)
{
	static unsigned counter;
	struct rcv *r = calloc(1, sizeof(*r));
	struct sockaddr_un sa;
	size_t n;

	if (r == NULL)
		return -1;
	snprintf(r->env, sizeof(r->env), "@kt-notify-test-%ld-%u", (long)getpid(), counter++);
	n = strlen(r->env);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, r->env + 1, n - 1);
	r->fd = bind_dgram(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	setenv("NOTIFY_SOCKET", r->env, 1);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rcv *r = *state;

	kt_notify_close();
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (r == NULL)
		return 0;
	if (r->fd >= 0)
		close(r->fd);
	if (r->path[0] != '\0')
		unlink(r->path);
	if (r->dir[0] != '\0')
		rmdir(r->dir);
	free(r);
	return 0;
}

/* Receives one datagram as a NUL-terminated string, waiting at most 2 s. */
static void recv_text(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	assert_int_equal(poll(&p, 1, 2000), 1);
	n = recv(fd, buf, len - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
}

static void expect_text(int fd, const char *want)
{
	char buf[8192];

	recv_text(fd, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void expect_nothing(int fd)
{
	char buf[64];

	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void send_all_kinds(int fd)
{
	assert_int_equal(kt_notify_ready(NULL), 0);
	expect_text(fd, "READY=1");
	assert_int_equal(kt_notify_ready(""), 0);
	expect_text(fd, "READY=1");
	assert_int_equal(kt_notify_ready("serving 3 secrets"), 0);
	expect_text(fd, "READY=1\nSTATUS=serving 3 secrets");
	assert_int_equal(kt_notify_stopping(), 0);
	expect_text(fd, "STOPPING=1");
	assert_int_equal(kt_notify_watchdog(), 0);
	expect_text(fd, "WATCHDOG=1");
	assert_int_equal(kt_notify("STATUS=%d secrets, %s", 4, "1 stale"), 0);
	expect_text(fd, "STATUS=4 secrets, 1 stale");
}

/* Without NOTIFY_SOCKET every call succeeds and does nothing. */
static void test_unset_is_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(kt_notify_init(), 0);
	assert_int_equal(kt_notify_ready("x"), 0);
	assert_int_equal(kt_notify_reloading(), 0);
	assert_int_equal(kt_notify_stopping(), 0);
	assert_int_equal(kt_notify_watchdog(), 0);
	assert_int_equal(kt_notify("A=%d", 1), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(kt_notify_init(), 0);
	assert_int_equal(kt_notify_ready(NULL), 0);
	kt_notify_close();
	kt_notify_close();
}

/* A second init without NOTIFY_SOCKET forgets the socket of the first. */
static void test_reinit_unset_forgets(void **state)
{
	struct rcv *r = *state;

	assert_int_equal(kt_notify_init(), 0);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(kt_notify_init(), 0);
	assert_int_equal(kt_notify_ready(NULL), 0);
	expect_nothing(r->fd);
}

static void test_path_socket_texts(void **state)
{
	struct rcv *r = *state;

	assert_int_equal(kt_notify_init(), 0);
	send_all_kinds(r->fd);
	expect_nothing(r->fd);
}

static void test_abstract_socket_texts(void **state)
{
	struct rcv *r = *state;

	assert_int_equal(kt_notify_init(), 0);
	send_all_kinds(r->fd);
	expect_nothing(r->fd);
}

/* MONOTONIC_USEC is CLOCK_MONOTONIC at the time of the call, in µs. */
static void test_reloading_monotonic(void **state)
{
	static const char prefix[] = "RELOADING=1\nMONOTONIC_USEC=";
	struct rcv *r = *state;
	char buf[256];
	uint64_t before, after, v;
	char *end = NULL;

	assert_int_equal(kt_notify_init(), 0);
	before = now_usec();
	assert_int_equal(kt_notify_reloading(), 0);
	after = now_usec();
	recv_text(r->fd, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, prefix, sizeof(prefix) - 1), 0);
	assert_true(buf[sizeof(prefix) - 1] >= '1' && buf[sizeof(prefix) - 1] <= '9');
	errno = 0;
	v = strtoull(buf + sizeof(prefix) - 1, &end, 10);
	assert_int_equal(errno, 0);
	assert_int_equal(*end, '\0');
	assert_true(v >= before);
	assert_true(v <= after);
}

/* The address is read once: later changes to the environment do not move
 * the notifications elsewhere. */
static void test_address_read_at_init(void **state)
{
	struct rcv *r = *state;

	assert_int_equal(kt_notify_init(), 0);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(kt_notify_ready(NULL), 0);
	expect_text(r->fd, "READY=1");
	setenv("NOTIFY_SOCKET", "/nonexistent/elsewhere", 1);
	assert_int_equal(kt_notify_watchdog(), 0);
	expect_text(r->fd, "WATCHDOG=1");
}

/* After the receiver's socket is replaced by a new one at the same path,
 * notifications reach the new one. */
static void test_receiver_rebound(void **state)
{
	struct rcv *r = *state;
	struct sockaddr_un sa;

	assert_int_equal(kt_notify_init(), 0);
	assert_int_equal(kt_notify_ready(NULL), 0);
	expect_text(r->fd, "READY=1");
	close(r->fd);
	r->fd = -1;
	assert_int_equal(unlink(r->path), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, r->path, strlen(r->path) + 1);
	r->fd = bind_dgram(&sa, sizeof(sa));
	assert_int_equal(kt_notify_stopping(), 0);
	expect_text(r->fd, "STOPPING=1");
	assert_int_equal(kt_notify_watchdog(), 0);
	expect_text(r->fd, "WATCHDOG=1");
}

static void expect_init_error(const char *addr, int want)
{
	setenv("NOTIFY_SOCKET", addr, 1);
	assert_int_equal(kt_notify_init(), want);
	/* A failed init leaves notifications off, not broken. */
	assert_int_equal(kt_notify_ready(NULL), 0);
	assert_int_equal(kt_notify_reloading(), 0);
}

static void test_bad_addresses(void **state)
{
	char longpath[200];

	(void)state;
	expect_init_error("relative/notify.sock", -EAFNOSUPPORT);
	expect_init_error("vsock:2:1234", -EAFNOSUPPORT);
	expect_init_error("@", -EINVAL);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	expect_init_error(longpath, -ENAMETOOLONG);
	longpath[0] = '@';
	expect_init_error(longpath, -ENAMETOOLONG);
	expect_init_error("/nonexistent/dir/notify.sock", -ENOENT);
	expect_init_error("@kt-notify-test-nobody-listens-here", -ECONNREFUSED);
}

/* A status with a newline could smuggle in a field; an overlong text would
 * be cut by systemd. Both are refused and nothing is sent. */
static void test_refused_texts(void **state)
{
	struct rcv *r = *state;
	char big[5000];

	assert_int_equal(kt_notify_init(), 0);
	assert_int_equal(kt_notify_ready("ok\nREADY=0"), -EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kt_notify("STATUS=%s", big), -EMSGSIZE);
	expect_nothing(r->fd);
	/* The newline rule holds even when notifications are off. */
	kt_notify_close();
	assert_int_equal(kt_notify_ready("a\nb"), -EINVAL);
}

static void test_watchdog_usec(void **state)
{
	char pid[32];

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(kt_notify_watchdog_usec(), 0);

	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 30000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(kt_notify_watchdog_usec(), 30000000);
	/* An empty WATCHDOG_PID counts as unset. */
	setenv("WATCHDOG_PID", "", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 30000000);

	/* Meant for another process (our parent, say). */
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_PID", "abc", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	snprintf(pid, sizeof(pid), "%ldx", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");

	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "-5", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", " 5", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "99999999999999999999999", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "0", 1);
	assert_int_equal(kt_notify_watchdog_usec(), 0);
}

/* The daemon opens the socket as root and keeps using it as the service
 * user: here the socket sits in a directory only root may enter, so a new
 * init after the drop fails while the open socket still works. */
static void test_socket_survives_drop(void **state)
{
	struct rcv *r = *state;
	char err[256];
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int status;
	int code;

	/* cmocka 1.1.5's skip() prints "not ok N # SKIP", which automake's
	 * TAP driver counts as a failure; say why in a TAP comment instead. */
	if (geteuid() != 0) {
		printf("# skipped: test_socket_survives_drop needs root to drop privileges\n");
		return;
	}
	if (kt_lookup_user("nobody", &uid, &gid, err, sizeof(err)) != 0) {
		printf("# skipped: test_socket_survives_drop: %s\n", err);
		return;
	}
	assert_int_equal(chmod(r->dir, 0700), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		code = 0;
		if (kt_notify_init() != 0)
			code = 1;
		else if (kt_drop_privileges("nobody", uid, gid, err, sizeof(err)) != 0)
			code = 2;
		else if (kt_notify_ready("dropped") != 0)
			code = 3;
		else if (kt_notify_init() != -EACCES)
			code = 4;
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	expect_text(r->fd, "READY=1\nSTATUS=dropped");
	expect_nothing(r->fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unset_is_noop, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_unset_forgets, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_path_socket_texts, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_abstract_socket_texts, setup_abstract,
						teardown),
		cmocka_unit_test_setup_teardown(test_reloading_monotonic, setup_path, teardown),
		cmocka_unit_test_setup_teardown(test_address_read_at_init, setup_abstract,
						teardown),
		cmocka_unit_test_setup_teardown(test_receiver_rebound, setup_path, teardown),
		cmocka_unit_test_teardown(test_bad_addresses, teardown),
		cmocka_unit_test_setup_teardown(test_refused_texts, setup_path, teardown),
		cmocka_unit_test_teardown(test_watchdog_usec, teardown),
		cmocka_unit_test_setup_teardown(test_socket_survives_drop, setup_path, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

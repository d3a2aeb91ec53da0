/* Unit tests of the file sinks' pure parts: the renderers (raw, env, json)
 * and the privileged helper's path rules and requests, run in a scratch
 * directory as whoever runs the tests. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/secmem.h"
#include "sidecar/privhelper.h"
#include "sidecar/sinks.h"
#include "kt_tmp.h"

static char dir[256];

/* Renders text and compares with want (NULL: refused, with err holding
 * why_part). */
static void render(enum kt_file_format fmt, const char *key, const char *text, bool binary,
		   const char *want, const char *why_part)
{
	unsigned char *out = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc = kt_sink_render(fmt, key, (const unsigned char *)text, strlen(text), binary, &out,
				&len, err, sizeof(err));

	if (want == NULL) {
		assert_int_equal(rc, -EINVAL);
		assert_null(out);
		if (strstr(err, why_part) == NULL)
			fail_msg("error '%s' lacks '%s'", err, why_part);
		return;
	}
	if (rc != 0)
		fail_msg("render failed: %s", err);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	kt_secure_free(out, len + 1);
}

static void test_render_raw_json(void **state)
{
	(void)state;
	render(KT_FILE_RAW, NULL, "s3cret\n", false, "s3cret\n", NULL);
	render(KT_FILE_RAW, NULL, "\x01\x02", true, "\x01\x02", NULL);
	render(KT_FILE_RAW, "password", "{\"user\":\"a\",\"password\":\"p w\"}", false, "p w",
	       NULL);
	render(KT_FILE_RAW, "port", "{\"port\":5432}", false, "5432", NULL);
	render(KT_FILE_RAW, "nope", "{\"port\":5432}", false, NULL, "no member nope");
	render(KT_FILE_RAW, "o", "{\"o\":{}}", false, NULL, "not a string");
	render(KT_FILE_RAW, "k", "not json", false, NULL, "not a JSON object");
	render(KT_FILE_RAW, "k", "{}", true, NULL, "binary");
	render(KT_FILE_JSON, NULL, "{\"a\": 1}", false, "{\"a\": 1}", NULL);
	render(KT_FILE_JSON, NULL, "x", true, NULL, "binary");
}

static void test_render_env(void **state)
{
	(void)state;
	render(KT_FILE_ENV, NULL, "{\"USER\":\"app\",\"pw\":\"it's\",\"n\":3,\"t\":true}", false,
	       "USER='app'\npw='it'\\''s'\nn='3'\nt='true'\n", NULL);
	render(KT_FILE_ENV, NULL, "{}", false, "", NULL);
	render(KT_FILE_ENV, NULL, "{\"a\":\"x\\ny\"}", false, NULL, "newline");
	render(KT_FILE_ENV, NULL, "{\"a\":\"x\\u0000y\"}", false, NULL, "NUL");
	render(KT_FILE_ENV, NULL, "{\"1a\":\"x\"}", false, NULL, "not a variable name");
	render(KT_FILE_ENV, NULL, "{\"a-b\":\"x\"}", false, NULL, "not a variable name");
	render(KT_FILE_ENV, NULL, "{\"a\":null}", false, NULL, "not a string");
	render(KT_FILE_ENV, NULL, "[1]", false, NULL, "not a JSON object");
}

static struct kt_file_cfg file_at(const char *path)
{
	struct kt_file_cfg f;

	memset(&f, 0, sizeof(f));
	f.path = (char *)path;
	f.secret = (char *)"s";
	f.uid = (uid_t)-1;
	f.gid = (gid_t)-1;
	f.run_uid = (uid_t)-1;
	f.run_gid = (gid_t)-1;
	f.mode = 0440;
	f.on_change_timeout = 30;
	return f;
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

static void test_write_and_remove(void **state)
{
	char path[512], buf[64], err[KT_PRIV_MAX_TEXT];
	struct kt_file_cfg f;
	struct stat st, st2;

	(void)state;
	snprintf(path, sizeof(path), "%s/out", dir);
	f = file_at(path);
	assert_int_equal(kt_priv_write_file(&f, "one", 3, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0440);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "one");
	assert_int_equal(kt_priv_write_file(&f, "two!", 4, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st.st_ino != st2.st_ino);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "two!");
	assert_int_equal(kt_priv_remove_file(&f, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), -1);
	/* Removing what is not there is fine. */
	assert_int_equal(kt_priv_remove_file(&f, err, sizeof(err)), 0);
}

static void test_path_rules(void **state)
{
	char path[512], sub[512], link[512], victim[512], buf[64], err[KT_PRIV_MAX_TEXT];
	struct kt_file_cfg f;

	(void)state;
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(mkdir(victim, 0700), 0);
	snprintf(path, sizeof(path), "%s/victim/file", dir);
	f = file_at(path);
	assert_int_equal(kt_priv_write_file(&f, "orig", 4, err, sizeof(err)), 0);

	/* A symlink at the path: refused, its target untouched. */
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(path, link), 0);
	f = file_at(link);
	assert_int_equal(kt_priv_write_file(&f, "evil", 4, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "a symlink: refused, not followed"));
	assert_int_equal(kt_priv_remove_file(&f, err, sizeof(err)), -ELOOP);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "orig");

	/* A symlink on the way: refused. */
	snprintf(link, sizeof(link), "%s/dirlink", dir);
	assert_int_equal(symlink(victim, link), 0);
	snprintf(sub, sizeof(sub), "%s/dirlink/file", dir);
	f = file_at(sub);
	assert_int_equal(kt_priv_write_file(&f, "evil", 4, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "/dirlink: a symlink: refused, not followed"));
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "orig");

	/* A directory anyone may write to, without the sticky bit: refused;
	 * with it: accepted. */
	snprintf(sub, sizeof(sub), "%s/open", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	snprintf(sub, sizeof(sub), "%s/open/file", dir);
	f = file_at(sub);
	assert_int_equal(kt_priv_write_file(&f, "x", 1, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable by others without the sticky bit"));
	snprintf(sub, sizeof(sub), "%s/open", dir);
	assert_int_equal(chmod(sub, 01777), 0);
	snprintf(sub, sizeof(sub), "%s/open/file", dir);
	assert_int_equal(kt_priv_write_file(&f, "x", 1, err, sizeof(err)), 0);

	/* A directory at the path, and a missing directory on the way. */
	f = file_at(victim);
	assert_int_equal(kt_priv_write_file(&f, "x", 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(sub, sizeof(sub), "%s/none/file", dir);
	f = file_at(sub);
	assert_int_equal(kt_priv_write_file(&f, "x", 1, err, sizeof(err)), -ENOENT);
}

/* Waits for one answer from the helper. */
static void answer(int fd, struct kt_priv_reply *r)
{
	struct pollfd p = { fd, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, 20000), 1);
	assert_int_equal(kt_privhelper_recv(fd, r), 1);
}

static void test_helper(void **state)
{
	char *ok_argv[] = { (char *)"sh", (char *)"-c", (char *)"echo out; echo err >&2; exit 3",
			    NULL };
	char *slow_argv[] = { (char *)"sleep", (char *)"30", NULL };
	char path[512], path2[512], buf[64];
	struct kt_file_cfg files[2];
	struct kt_config cfg;
	struct kt_priv_reply r;
	pid_t pid;
	int fd, st;

	(void)state;
	snprintf(path, sizeof(path), "%s/helper", dir);
	snprintf(path2, sizeof(path2), "%s/helper2", dir);
	files[0] = file_at(path);
	files[0].argv = ok_argv;
	files[1] = file_at(path2);
	files[1].argv = slow_argv;
	files[1].on_change_timeout = 1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.files = files;
	cfg.nfiles = 2;
	assert_int_equal(kt_privhelper_start(&cfg, &fd, &pid), 0);

	assert_int_equal(kt_privhelper_send(fd, KT_PRIV_WRITE, 0, "via helper", 10), 0);
	answer(fd, &r);
	assert_int_equal(r.h.op, KT_PRIV_WRITE);
	assert_int_equal(r.h.idx, 0);
	assert_int_equal(r.h.status, 0);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "via helper");

	assert_int_equal(kt_privhelper_send(fd, KT_PRIV_RUN, 0, NULL, 0), 0);
	answer(fd, &r);
	assert_int_equal(r.h.op, KT_PRIV_RUN);
	assert_true(WIFEXITED(r.h.status));
	assert_int_equal(WEXITSTATUS(r.h.status), 3);
	assert_string_equal(r.text, "err"); /* the last newline leaves no separator */

	assert_int_equal(kt_privhelper_send(fd, KT_PRIV_RUN, 1, NULL, 0), 0);
	answer(fd, &r);
	assert_int_equal(r.h.idx, 1);
	assert_true((r.h.flags & KT_PRIV_TIMED_OUT) != 0);
	assert_true(WIFSIGNALED(r.h.status));

	assert_int_equal(kt_privhelper_send(fd, KT_PRIV_REMOVE, 0, NULL, 0), 0);
	answer(fd, &r);
	assert_int_equal(r.h.op, KT_PRIV_REMOVE);
	assert_int_equal(r.h.status, 0);
	assert_int_equal(access(path, F_OK), -1);

	/* A sink number outside the table ends the helper. */
	assert_int_equal(kt_privhelper_send(fd, KT_PRIV_WRITE, 7, "x", 1), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
	close(fd);

	/* Closing the socket ends a helper. */
	assert_int_equal(kt_privhelper_start(&cfg, &fd, &pid), 0);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_raw_json),  cmocka_unit_test(test_render_env),
		cmocka_unit_test(test_write_and_remove), cmocka_unit_test(test_path_rules),
		cmocka_unit_test(test_helper),
	};
	char err[256], cmd[300];
	int rc;

	if (kt_secure_init(64 * 1024, err, sizeof(err)) < 0) {
		fprintf(stderr, "kt_secure_init: %s\n", err);
		return 1;
	}
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-sinks-");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests_name("sinks", tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}

/* Unit tests for verifier.c: yescrypt hashing and checking, the file name,
 * atomic writes, the strict reader (mode, owner, symlinks, garbled files,
 * another secret's file) and pruning. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kt_tmp.h"

#include "common/secmem.h"
#include "login/verifier.h"

#define ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:hosts/web1/breakglass-AbCdEf"

/* Hashing is slow on purpose, so the group hashes two passwords once. */
static char hash_cur[KT_VERIFIER_HASH_MAX], hash_prev[KT_VERIFIER_HASH_MAX];

struct fx {
	char dir[64];
};

static int group_setup(void **state)
{
	char err[256];

	(void)state;
	if (kt_verifier_hash("n3w-pass", 8, hash_cur, err, sizeof(err)) != 0 ||
	    kt_verifier_hash("0ld-pass", 8, hash_prev, err, sizeof(err)) != 0)
		return -1;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	kt_tmp_name(f->dir, sizeof(f->dir), "/tmp/kt-verifier-");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct dirent *de;
	DIR *d = opendir(f->dir);

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0)
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A verifier for (id, key) as the daemon would fill it; free with
 * kt_verifier_clear. */
static void make_v(struct kt_verifier *v, const char *id, const char *key, const char *user,
		   bool with_prev)
{
	memset(v, 0, sizeof(*v));
	v->secret_id = kt_strdup(id);
	v->key = kt_strdup(key);
	v->user = kt_strdup(user);
	v->cur_version = kt_strdup("11111111-aaaa-bbbb-cccc-000000000002");
	memcpy(v->cur_hash, hash_cur, sizeof(hash_cur));
	if (with_prev) {
		v->prev_version = kt_strdup("11111111-aaaa-bbbb-cccc-000000000001");
		memcpy(v->prev_hash, hash_prev, sizeof(hash_prev));
		v->prev_until = 1700003600;
	}
	v->confirmed_at = 1700000000;
}

static void path_of(const struct fx *f, const char *id, const char *key, char *out, size_t outlen)
{
	char name[128];

	assert_int_equal(kt_verifier_file_name(id, key, name, sizeof(name)), 0);
	snprintf(out, outlen, "%s/%s", f->dir, name);
}

static void write_raw(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* How many entries of dir start with prefix. */
static int count_entries(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_hash_and_check(void **state)
{
	char h[KT_VERIFIER_HASH_MAX], err[256] = "";
	struct timespec t0, t1;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kt_verifier_hash("correct horse", 13, h, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("# kt_verifier_hash (yescrypt, default cost) took %.1f ms\n",
		      (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			      (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_memory_equal(h, "$y$", 3);
	assert_true(strlen(h) < KT_VERIFIER_HASH_MAX);
	assert_int_equal(kt_verifier_check(h, "correct horse", 13), 1);
	assert_int_equal(kt_verifier_check(h, "correct horsf", 13), 0);
	assert_int_equal(kt_verifier_check(h, "correct hors", 12), 0);
	assert_int_equal(kt_verifier_check(h, "correct horse ", 14), 0);
	assert_int_equal(kt_verifier_check(h, "", 0), 0);
	/* The password is counted, not NUL-terminated. */
	assert_int_equal(kt_verifier_check(h, "correct horse battery", 13), 1);
}

static void test_empty_password(void **state)
{
	char h[KT_VERIFIER_HASH_MAX], err[256] = "";

	(void)state;
	assert_int_equal(kt_verifier_hash("", 0, h, err, sizeof(err)), 0);
	assert_memory_equal(h, "$y$", 3);
	assert_int_equal(kt_verifier_check(h, "", 0), 1);
	assert_int_equal(kt_verifier_check(h, NULL, 0), 1);
	assert_int_equal(kt_verifier_check(h, "x", 1), 0);
}

static void test_salts_differ(void **state)
{
	char a[KT_VERIFIER_HASH_MAX], b[KT_VERIFIER_HASH_MAX], err[256] = "";

	(void)state;
	assert_int_equal(kt_verifier_hash("same", 4, a, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_hash("same", 4, b, err, sizeof(err)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(kt_verifier_check(a, "same", 4), 1);
	assert_int_equal(kt_verifier_check(b, "same", 4), 1);
}

static void test_embedded_nul_refused(void **state)
{
	char h[KT_VERIFIER_HASH_MAX], err[256] = "";

	(void)state;
	memset(h, 'z', sizeof(h));
	assert_int_equal(kt_verifier_hash("ab\0cd", 5, h, err, sizeof(err)), -EINVAL);
	assert_int_equal(h[0], '\0');
	assert_true(strlen(err) > 0);
	assert_null(strstr(err, "ab"));
	assert_int_equal(kt_verifier_hash("\0", 1, h, err, sizeof(err)), -EINVAL);
	/* A password cut at its NUL must never match the hash of its start. */
	assert_int_equal(kt_verifier_hash("ab", 2, h, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_check(h, "ab\0cd", 5), -EINVAL);
	assert_int_equal(kt_verifier_check(h, "ab\0", 3), -EINVAL);
	assert_int_equal(kt_verifier_check(h, "ab", 2), 1);
}

static void test_long_password(void **state)
{
	char h[KT_VERIFIER_HASH_MAX], err[256] = "", pw[600];

	(void)state;
	memset(pw, 'p', sizeof(pw));
	assert_int_equal(kt_verifier_hash(pw, sizeof(pw), h, err, sizeof(err)), -ERANGE);
	assert_null(strstr(err, "ppp"));
	assert_int_equal(kt_verifier_hash(pw, 511, h, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_check(h, pw, 511), 1);
	assert_int_equal(kt_verifier_check(h, pw, 510), 0);
	assert_int_equal(kt_verifier_check(h, pw, 512), -ERANGE);
}

static void test_check_bad_hash(void **state)
{
	(void)state;
	assert_int_equal(kt_verifier_check(NULL, "x", 1), -EINVAL);
	assert_int_equal(kt_verifier_check("", "x", 1), -EINVAL);
	assert_int_equal(kt_verifier_check("*0", "x", 1), -EINVAL);
	assert_int_equal(kt_verifier_check("plain", "plain", 5), -EINVAL);
	assert_true(kt_verifier_check("$y$garbage", "x", 1) < 0);
	assert_true(kt_verifier_check("$nope$abc$def", "x", 1) < 0);
}

static void test_file_name(void **state)
{
	char a[64], b[64], small[49];

	(void)state;
	/* SHA-256("<id>\n<key>"), first 20 bytes in lowercase hex (as printed
	 * by `printf '%s\n%s' ID KEY | sha256sum`). */
	assert_int_equal(kt_verifier_file_name(ARN, "password", a, sizeof(a)), 0);
	assert_string_equal(a, "verifier-bdbfcfd78524f0e1ca6b0edcc1585a149b61074f");
	assert_int_equal(kt_verifier_file_name("app/db", NULL, b, sizeof(b)), 0);
	assert_string_equal(b, "verifier-e10bbed9ed29d6fabcee0ea5230b8868131f4bde");
	assert_int_equal(strlen(a), 49);
	assert_int_equal(kt_verifier_file_name("app/db", "password", a, sizeof(a)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(kt_verifier_file_name("app/db", NULL, small, sizeof(small)), -ERANGE);
	assert_int_equal(kt_verifier_file_name(NULL, NULL, a, sizeof(a)), -EINVAL);
}

static void test_long_arn_short_name(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char id[2100], name[64], err[512] = "";
	size_t n;

	n = (size_t)snprintf(id, sizeof(id), "%s",
			     "arn:aws:secretsmanager:us-east-1:123456789012:secret:");
	memset(id + n, 'a', sizeof(id) - n - 12);
	memcpy(id + sizeof(id) - 12, "/x:y-AbCdEf", 12);
	assert_int_equal(kt_verifier_file_name(id, "k", name, sizeof(name)), 0);
	assert_int_equal(strlen(name), 49);
	assert_null(strchr(name, '/'));
	assert_null(strchr(name, ':'));
	make_v(&v, id, "k", "root", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_read(f->dir, id, "k", &r, err, sizeof(err)), 0);
	assert_string_equal(r.secret_id, id);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256];
	struct stat st;
	mode_t old;

	make_v(&v, ARN, "password", "breakglass", true);
	/* A tight umask must not leave the file unreadable or change its mode. */
	old = umask(0277);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	umask(old);
	path_of(f, ARN, "password", path, sizeof(path));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());

	assert_int_equal(kt_verifier_read(f->dir, ARN, "password", &r, err, sizeof(err)), 0);
	assert_string_equal(r.secret_id, ARN);
	assert_string_equal(r.key, "password");
	assert_string_equal(r.user, "breakglass");
	assert_string_equal(r.cur_version, v.cur_version);
	assert_string_equal(r.cur_hash, hash_cur);
	assert_string_equal(r.prev_version, v.prev_version);
	assert_string_equal(r.prev_hash, hash_prev);
	assert_int_equal(r.prev_until, 1700003600);
	assert_int_equal(r.confirmed_at, 1700000000);
	assert_int_equal(kt_verifier_check(r.cur_hash, "n3w-pass", 8), 1);
	assert_int_equal(kt_verifier_check(r.prev_hash, "0ld-pass", 8), 1);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);

	/* No key, no previous password. */
	make_v(&v, "app/db", NULL, "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), 0);
	assert_null(r.key);
	assert_null(r.prev_version);
	assert_int_equal(r.prev_hash[0], '\0');
	assert_string_equal(r.cur_hash, hash_cur);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);
	assert_int_equal(count_entries(f->dir, "verifier-"), 2);
	assert_int_equal(count_entries(f->dir, ".verifier-"), 0);
}

static void test_refuse_mode(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256];

	make_v(&v, "app/db", "password", "app1", true);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	path_of(f, "app/db", "password", path, sizeof(path));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", "password", &r, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "0644"));
	assert_null(r.secret_id);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", "password", &r, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", "password", &r, err, sizeof(err)),
			 -EINVAL);
	/* A rewrite replaces the bad file with a good one. */
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", "password", &r, err, sizeof(err)), 0);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);
}

static void test_refuse_other_owner(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256];

	/* Only root can give a file away; elsewhere there is nothing to try. */
	if (geteuid() != 0) {
		print_message("# not root: a file of another owner cannot be made\n");
		return;
	}
	make_v(&v, "app/db", NULL, "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	path_of(f, "app/db", NULL, path, sizeof(path));
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "owned by uid 65534"));
	kt_verifier_clear(&v);
}

static void test_refuse_symlink(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256], target[256];

	make_v(&v, "app/db", "password", "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	path_of(f, "app/db", "password", path, sizeof(path));
	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	assert_int_equal(rename(path, target), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", "password", &r, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "symbolic link"));
	assert_null(r.secret_id);
	kt_verifier_clear(&v);
}

static void test_refuse_not_regular(void **state)
{
	struct fx *f = *state;
	struct kt_verifier r;
	char err[512] = "", path[256];

	path_of(f, "app/db", NULL, path, sizeof(path));
	assert_int_equal(mkfifo(path, 0600), 0);
	/* Must not block on the FIFO. */
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -EINVAL);
}

/* Copies tmpl into out with the first "mark" replaced by repl (out and
 * tmpl may be the same buffer). */
static void subst(char *out, size_t outlen, const char *tmpl, const char *mark, const char *repl)
{
	char tmp[2048];
	const char *at = strstr(tmpl, mark);

	if (at == NULL) {
		snprintf(tmp, sizeof(tmp), "%s", tmpl);
	} else {
		snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(at - tmpl), tmpl, repl,
			 at + strlen(mark));
	}
	assert_true(strlen(tmp) < outlen);
	memcpy(out, tmp, strlen(tmp) + 1);
}

static void test_refuse_garbled(void **state)
{
	struct fx *f = *state;
	struct kt_verifier r;
	char err[512] = "", path[256], good[1024], text[1200], big[70000];
	int rc;
	/* Each is a good file with one thing wrong. */
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"v\":1",
		"GOOD trailing",
		"{\"v\":2,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":\"1\",\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":\"HASH\"},"
		"\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":\"1\"}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":1.5}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":-1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":7,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":\"HASH\"}"
		",\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":null,\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":null,\"previous\":null,\"confirmed_"
		"at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"\",\"hash\":"
		"\"HASH\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"xHASH\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH \"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\\u0000\"},\"previous\":null,\"confirmed_at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":{\"version_id\":\"p\",\"hash\":\"$y$j9T$abc\"},\"confirmed_"
		"at\":1}",
		"{\"v\":1,\"secret_id\":\"app/"
		"db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":"
		"\"HASH\"},\"previous\":[],\"confirmed_at\":1}",
	};

	(void)state;
	path_of(f, "app/db", NULL, path, sizeof(path));
	snprintf(good, sizeof(good),
		 "{\"v\":1,\"secret_id\":\"app/"
		 "db\",\"key\":null,\"user\":\"u\",\"current\":{\"version_id\":\"c\",\"hash\":\"%"
		 "s\"},\"previous\":null,\"confirmed_at\":1,\"later\":true}",
		 hash_cur);
	/* The template itself is good (unknown members are ignored). */
	write_raw(path, good, 0600);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), 0);
	kt_verifier_clear(&r);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		subst(text, sizeof(text), bad[i], "GOOD", good);
		subst(text, sizeof(text), text, "HASH", hash_cur);
		write_raw(path, text, 0600);
		err[0] = '\0';
		rc = kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("garbled case %zu: %d, not -EINVAL", i, rc);
		assert_null(r.secret_id);
		assert_non_null(strstr(err, path));
		/* The message never carries a hash. */
		assert_null(strstr(err, "$y$"));
	}

	/* Too large, whatever it holds. */
	memset(big, ' ', sizeof(big));
	memcpy(big, good, strlen(good));
	big[sizeof(big) - 1] = '\0';
	write_raw(path, big, 0600);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger"));
}

static void test_other_secret(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", a[256], b[256];

	make_v(&v, "app/a", "password", "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	path_of(f, "app/a", "password", a, sizeof(a));
	path_of(f, "app/b", "password", b, sizeof(b));
	assert_int_equal(rename(a, b), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/b", "password", &r, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "another secret"));
	assert_null(r.secret_id);
	kt_verifier_clear(&v);

	/* No key and an empty key share a name but are told apart. */
	make_v(&v, "app/c", NULL, "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/c", "", &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(kt_verifier_read(f->dir, "app/c", NULL, &r, err, sizeof(err)), 0);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);
}

static void test_missing_and_remove(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", sub[128];

	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -ENOENT);
	assert_int_equal(kt_verifier_remove(f->dir, "app/db", NULL), 0);
	make_v(&v, "app/db", NULL, "app1", false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	assert_int_equal(kt_verifier_remove(f->dir, "app/db", "password"), 0);
	assert_int_equal(count_entries(f->dir, "verifier-"), 1);
	assert_int_equal(kt_verifier_remove(f->dir, "app/db", NULL), 0);
	assert_int_equal(count_entries(f->dir, "verifier-"), 0);
	assert_int_equal(kt_verifier_read(f->dir, "app/db", NULL, &r, err, sizeof(err)), -ENOENT);

	/* A directory that is not there: the error names it. */
	snprintf(sub, sizeof(sub), "%s/none", f->dir);
	assert_int_equal(kt_verifier_write(sub, &v, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, sub));
	assert_null(strstr(err, "$y$"));
	assert_int_equal(kt_verifier_read(sub, "app/db", NULL, &r, err, sizeof(err)), -ENOENT);
	kt_verifier_clear(&v);
}

static void test_write_refuses_incomplete(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v;
	char err[512] = "";

	make_v(&v, "app/db", NULL, "app1", true);
	memcpy(v.prev_hash, "not a hash", 11);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "$y$"));
	assert_null(strstr(err, "not a hash"));
	kt_verifier_clear(&v);
	make_v(&v, "app/db", NULL, NULL, false);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), -EINVAL);
	kt_verifier_clear(&v);
	make_v(&v, "app/db", NULL, "app1", false);
	v.cur_hash[0] = '\0';
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), -EINVAL);
	kt_verifier_clear(&v);
	assert_int_equal(count_entries(f->dir, ""), 2); /* "." and ".." */
}

static void test_atomic_replace(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256];
	struct stat st1, st2;

	make_v(&v, ARN, "password", "breakglass", true);
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	path_of(f, ARN, "password", path, sizeof(path));
	assert_int_equal(stat(path, &st1), 0);
	free(v.cur_version);
	v.cur_version = kt_strdup("second");
	memcpy(v.cur_hash, hash_prev, sizeof(hash_prev));
	free(v.prev_version);
	v.prev_version = NULL;
	v.confirmed_at = 1800000000;
	assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
	/* A new file renamed over the old one, never the old one rewritten. */
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st1.st_ino != st2.st_ino);
	assert_int_equal(kt_verifier_read(f->dir, ARN, "password", &r, err, sizeof(err)), 0);
	assert_string_equal(r.cur_version, "second");
	assert_string_equal(r.cur_hash, hash_prev);
	assert_null(r.prev_version);
	assert_int_equal(r.confirmed_at, 1800000000);
	kt_verifier_clear(&r);
	kt_verifier_clear(&v);
	assert_int_equal(count_entries(f->dir, "verifier-"), 1);
	assert_int_equal(count_entries(f->dir, ".verifier-"), 0);
}

static void test_failed_write_leaves_no_temp(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v;
	char err[512] = "", path[256];

	/* A directory in the way makes the rename fail after the write. */
	make_v(&v, "app/db", NULL, "app1", false);
	path_of(f, "app/db", NULL, path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(kt_verifier_write(f->dir, &v, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	assert_null(strstr(err, "$y$"));
	assert_int_equal(count_entries(f->dir, ".verifier-"), 0);
	assert_int_equal(rmdir(path), 0);
	kt_verifier_clear(&v);
}

static bool keep_not_bob(const struct kt_verifier *v, void *arg)
{
	int *calls = arg;

	(*calls)++;
	assert_true(v->cur_hash[0] == '$');
	return strcmp(v->user, "bob") != 0;
}

static void test_prune(void **state)
{
	struct fx *f = *state;
	struct kt_verifier v, r;
	char err[512] = "", path[256], stale[256], fresh[256], other[256], moved[256];
	const char *users[] = { "alice", "bob", "carol" };
	struct timespec old[2];
	int calls = 0;

	for (size_t i = 0; i < 3; i++) {
		char id[32];

		snprintf(id, sizeof(id), "login/%s", users[i]);
		make_v(&v, id, "password", users[i], i == 0);
		assert_int_equal(kt_verifier_write(f->dir, &v, err, sizeof(err)), 0);
		kt_verifier_clear(&v);
	}
	/* A garbled verifier, one under another secret's name, a file of
	 * someone else's, and temporaries both stale and fresh. */
	snprintf(path, sizeof(path), "%s/verifier-0000000000000000000000000000000000000000",
		 f->dir);
	write_raw(path, "{\"v\":1}", 0600);
	path_of(f, "login/alice", "password", path, sizeof(path));
	path_of(f, "login/dave", "password", moved, sizeof(moved));
	assert_int_equal(link(path, moved), 0);
	snprintf(other, sizeof(other), "%s/notes.txt", f->dir);
	write_raw(other, "{\"v\":1}", 0644);
	snprintf(stale, sizeof(stale), "%s/.verifier-aaaaaa", f->dir);
	write_raw(stale, "half", 0600);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 120;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, stale, old, 0), 0);
	snprintf(fresh, sizeof(fresh), "%s/.verifier-bbbbbb", f->dir);
	write_raw(fresh, "half", 0600);

	/* bob's, the garbled one and the misnamed one. */
	assert_int_equal(kt_verifier_prune(f->dir, keep_not_bob, &calls), 3);
	assert_int_equal(calls, 3);
	assert_int_equal(kt_verifier_read(f->dir, "login/alice", "password", &r, err, sizeof(err)),
			 0);
	assert_non_null(r.prev_version);
	kt_verifier_clear(&r);
	assert_int_equal(kt_verifier_read(f->dir, "login/carol", "password", &r, err, sizeof(err)),
			 0);
	kt_verifier_clear(&r);
	assert_int_equal(kt_verifier_read(f->dir, "login/bob", "password", &r, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(count_entries(f->dir, "verifier-"), 2);
	assert_int_equal(access(other, F_OK), 0);
	assert_int_equal(access(stale, F_OK), -1);
	assert_int_equal(access(fresh, F_OK), 0);

	/* Nothing more to do the second time. */
	calls = 0;
	assert_int_equal(kt_verifier_prune(f->dir, keep_not_bob, &calls), 0);
	assert_int_equal(calls, 2);
	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(kt_verifier_prune(path, keep_not_bob, &calls), -ENOENT);
}

static void test_clear(void **state)
{
	struct kt_verifier v;

	(void)state;
	make_v(&v, "app/db", "k", "u", true);
	kt_verifier_clear(&v);
	assert_null(v.secret_id);
	assert_null(v.key);
	assert_null(v.user);
	assert_null(v.cur_version);
	assert_null(v.prev_version);
	for (size_t i = 0; i < KT_VERIFIER_HASH_MAX; i++) {
		assert_int_equal(v.cur_hash[i], 0);
		assert_int_equal(v.prev_hash[i], 0);
	}
	kt_verifier_clear(&v); /* twice is fine */
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_check),
		cmocka_unit_test(test_empty_password),
		cmocka_unit_test(test_salts_differ),
		cmocka_unit_test(test_embedded_nul_refused),
		cmocka_unit_test(test_long_password),
		cmocka_unit_test(test_check_bad_hash),
		cmocka_unit_test(test_file_name),
		FX(test_long_arn_short_name),
		FX(test_round_trip),
		FX(test_refuse_mode),
		FX(test_refuse_other_owner),
		FX(test_refuse_symlink),
		FX(test_refuse_not_regular),
		FX(test_refuse_garbled),
		FX(test_other_secret),
		FX(test_missing_and_remove),
		FX(test_write_refuses_incomplete),
		FX(test_atomic_replace),
		FX(test_failed_write_leaves_no_temp),
		FX(test_prune),
		cmocka_unit_test(test_clear),
	};

	return cmocka_run_group_tests_name("verifier", tests, group_setup, NULL);
}

/* Offline login verifiers: the small JSON files in state_dir that keep
 * their yescrypt hashes (verifier_hash.c) across restarts, one per (secret
 * id, JSON key), written atomically and read back only when the file is a
 * regular file of ours with mode 0600. Their JSON form is verifier_json.c's. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/secmem.h"
#include "verifier.h"
#include "verifier_int.h"

#define VF_PREFIX "verifier-"
#define VF_TMP_PREFIX ".verifier-"
/* 20 bytes of SHA-256 (160 bits) keep names short and collisions out of reach. */
#define VF_DIGEST_BYTES 20
#define VF_NAME_LEN (sizeof(VF_PREFIX) - 1 + 2 * VF_DIGEST_BYTES)
/* A verifier file is a few hundred bytes; anything this large is not ours. */
#define VF_FILE_MAX (64 * 1024)
/* A temporary file this much older than the clock was left by a write that
 * died between its creation and the rename: no write takes a minute. */
#define VF_TMP_STALE 60

int kt_verifier_file_name(const char *secret_id, const char *key, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	size_t o = sizeof(VF_PREFIX) - 1;
	int rc;

	if (secret_id == NULL || out == NULL) {
		rc = -EINVAL;
		goto out;
	}
	if (outlen < VF_NAME_LEN + 1) {
		rc = -ERANGE;
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* A digest rather than the id itself: ARNs hold '/' and ':' and may be
	 * long, and a name must be one short, safe path component. */
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, secret_id, strlen(secret_id)) != 1 ||
	    EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
	    (key != NULL && EVP_DigestUpdate(ctx, key, strlen(key)) != 1) ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < VF_DIGEST_BYTES) {
		rc = -EIO;
		goto out;
	}
	memcpy(out, VF_PREFIX, o);
	for (size_t i = 0; i < VF_DIGEST_BYTES; i++) {
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 0xf];
	}
	out[o] = '\0';
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int vf_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Whether v holds everything a file needs; the hashes must look like crypt
 * output so that what is written can be read back. */
static bool vf_complete(const struct kt_verifier *v)
{
	if (v->secret_id == NULL || v->secret_id[0] == '\0' || v->user == NULL ||
	    v->user[0] == '\0' || v->cur_version == NULL || v->cur_version[0] == '\0' ||
	    !kt_verifier_hash_ok(v->cur_hash) || v->confirmed_at < 0)
		return false;
	return v->prev_version == NULL || (v->prev_version[0] != '\0' &&
					   kt_verifier_hash_ok(v->prev_hash) && v->prev_until >= 0);
}

static int vf_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Creates "<dir>/.verifier-" and 16 random hex digits, O_EXCL (which
 * never follows a symbolic link); a name taken is tried again with other
 * digits. Returns the descriptor, its name in tmp, or a negative errno. */
static int vf_open_tmp(const char *dir, char *tmp, size_t tmplen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[8];
	char name[sizeof(VF_TMP_PREFIX) + 2 * sizeof(rnd)];
	int fd = -EEXIST, rc;

	for (int tries = 0; tries < 8 && fd == -EEXIST; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		memcpy(name, VF_TMP_PREFIX, sizeof(VF_TMP_PREFIX) - 1);
		for (size_t i = 0; i < sizeof(rnd); i++) {
			name[sizeof(VF_TMP_PREFIX) - 1 + 2 * i] = hex[rnd[i] >> 4];
			name[sizeof(VF_TMP_PREFIX) + 2 * i] = hex[rnd[i] & 15];
		}
		name[sizeof(name) - 1] = '\0';
		rc = vf_path(tmp, tmplen, dir, name);
		if (rc < 0)
			return rc;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			fd = -errno;
	}
	return fd;
}

int kt_verifier_write(const char *dir, const struct kt_verifier *v, char *err, size_t errlen)
{
	char name[VF_NAME_LEN + 1], path[PATH_MAX], tmp[PATH_MAX];
	struct json_object *obj = NULL;
	char *text = NULL;
	size_t len = 0;
	int fd = -1, dfd = -1;
	bool made_tmp = false;
	int rc;

	kt_errf(err, errlen, "%s", "");
	if (dir == NULL || v == NULL || v->secret_id == NULL) {
		rc = -EINVAL;
		kt_errf(err, errlen, "no directory or secret id for a verifier");
		goto out;
	}
	rc = kt_verifier_file_name(v->secret_id, v->key, name, sizeof(name));
	if (rc == 0)
		rc = vf_path(path, sizeof(path), dir, name);
	if (rc < 0) {
		kt_errf(err, errlen, "cannot name a verifier file in %s: %s", dir, strerror(-rc));
		goto out;
	}
	if (!vf_complete(v)) {
		rc = -EINVAL;
		kt_errf(err, errlen, "%s: the verifier to write is incomplete", path);
		goto out;
	}
	obj = kt_verifier_to_json(v);
	text = obj != NULL ? kt_json_dump(obj, &len) : NULL;
	if (text == NULL) {
		rc = -ENOMEM;
		kt_errf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		goto out;
	}
	/* The mode asked for (0600) is cut by the umask, so it is set again
	 * explicitly. The owner is whoever keyturnd runs as. */
	fd = vf_open_tmp(dir, tmp, sizeof(tmp));
	if (fd < 0) {
		rc = fd;
		kt_errf(err, errlen, "cannot create a temporary file in %s: %s", dir,
			strerror(-rc));
		goto out;
	}
	made_tmp = true;
	rc = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (rc == 0)
		rc = vf_write_all(fd, text, len);
	if (rc == 0)
		rc = vf_write_all(fd, "\n", 1);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc < 0) {
		kt_errf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(-rc));
		goto out;
	}
	made_tmp = false;
	/* The rename is durable only once the directory is. A file system that
	 * cannot sync a directory says EINVAL: nothing more can be done there. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL)) {
		rc = -errno;
		kt_errf(err, errlen, "cannot sync directory %s: %s", dir, strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (made_tmp)
		unlink(tmp);
	if (dfd >= 0)
		close(dfd);
	kt_str_free_wiped(text);
	kt_json_put_wiped(obj);
	return rc;
}

/* Reads the file name in dirfd (dir is for messages) into out, which is
 * overwritten. -EINVAL (err set) for anything that is not a verifier file
 * of ours; -ENOENT when there is none. */
static int vf_load(int dirfd, const char *dir, const char *name, struct kt_verifier *out, char *err,
		   size_t errlen)
{
	struct json_object *obj = NULL;
	struct stat st;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int fd = -1, rc;

	memset(out, 0, sizeof(*out));
	/* O_NONBLOCK: a FIFO put here must not hang the daemon before fstat
	 * has refused it. */
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP) {
			rc = -EINVAL;
			kt_errf(err, errlen, "%s/%s is a symbolic link", dir, name);
		} else {
			kt_errf(err, errlen, "%s/%s: %s", dir, name, strerror(-rc));
		}
		goto out;
	}
	rc = -EINVAL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		kt_errf(err, errlen, "%s/%s: %s", dir, name, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		kt_errf(err, errlen, "%s/%s is not a regular file", dir, name);
		goto out;
	}
	if ((st.st_mode & 07777) != 0600) {
		kt_errf(err, errlen, "%s/%s has mode %04o, not 0600", dir, name,
			(unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		kt_errf(err, errlen, "%s/%s is owned by uid %lu, not %lu", dir, name,
			(unsigned long)st.st_uid, (unsigned long)geteuid());
		goto out;
	}
	if (st.st_size > VF_FILE_MAX) {
		kt_errf(err, errlen, "%s/%s is larger than %d bytes", dir, name, VF_FILE_MAX);
		goto out;
	}
	/* One byte more than fstat said, to notice a file that grew. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = -ENOMEM;
		kt_errf(err, errlen, "%s/%s: %s", dir, name, strerror(ENOMEM));
		goto out;
	}
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			kt_errf(err, errlen, "%s/%s: %s", dir, name, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = -EINVAL;
	if (n == cap) {
		kt_errf(err, errlen, "%s/%s changed while it was read", dir, name);
		goto out;
	}
	obj = kt_json_parse(buf, n);
	if (obj == NULL) {
		kt_errf(err, errlen, "%s/%s is not one JSON object", dir, name);
		goto out;
	}
	rc = kt_verifier_from_json(obj, out);
	if (rc == -EINVAL)
		kt_errf(err, errlen, "%s/%s is not a version 1 verifier file", dir, name);
	else if (rc < 0)
		kt_errf(err, errlen, "%s/%s: %s", dir, name, strerror(-rc));
out:
	if (rc < 0)
		kt_verifier_clear(out);
	kt_free_wiped(buf, n);
	kt_json_put_wiped(obj);
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool vf_same_key(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int kt_verifier_read(const char *dir, const char *secret_id, const char *key,
		     struct kt_verifier *out, char *err, size_t errlen)
{
	char name[VF_NAME_LEN + 1];
	int dfd = -1, rc;

	memset(out, 0, sizeof(*out));
	kt_errf(err, errlen, "%s", "");
	if (dir == NULL) {
		rc = -EINVAL;
		goto out;
	}
	rc = kt_verifier_file_name(secret_id, key, name, sizeof(name));
	if (rc < 0) {
		kt_errf(err, errlen, "cannot name a verifier file in %s: %s", dir, strerror(-rc));
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		kt_errf(err, errlen, "%s: %s", dir, strerror(-rc));
		goto out;
	}
	rc = vf_load(dfd, dir, name, out, err, errlen);
	if (rc < 0)
		goto out;
	/* The name is a digest of (secret id, key); a file under it that
	 * records other ones was copied or collided and must not be used. */
	if (strcmp(out->secret_id, secret_id) != 0 || !vf_same_key(out->key, key)) {
		rc = -EINVAL;
		kt_errf(err, errlen, "%s/%s records another secret or key", dir, name);
		kt_verifier_clear(out);
	}
out:
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int kt_verifier_remove(const char *dir, const char *secret_id, const char *key)
{
	char name[VF_NAME_LEN + 1], path[PATH_MAX];
	int rc;

	if (dir == NULL) {
		rc = -EINVAL;
		goto out;
	}
	rc = kt_verifier_file_name(secret_id, key, name, sizeof(name));
	if (rc == 0)
		rc = vf_path(path, sizeof(path), dir, name);
	if (rc < 0)
		goto out;
	if (unlink(path) < 0 && errno != ENOENT)
		rc = -errno;
out:
	return rc;
}

/* Removes a temporary file left by a write that died before its rename.
 * Only regular files a minute old or more: younger ones may belong to a
 * write going on right now. */
static void vf_prune_tmp(int dfd, const char *dir, const char *name, time_t now)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_mtime > now - VF_TMP_STALE)
		return;
	if (unlinkat(dfd, name, 0) == 0)
		log_info("removed %s/%s, left by an unfinished verifier write", dir, name);
}

/* Stale ".verifier-" temporaries are removed along the way but not
 * counted: the count is of verifiers. Files that cannot be read for other
 * reasons than being garbled (EACCES, ENOMEM, EIO) are left for next time. */
int kt_verifier_prune(const char *dir, bool (*keep)(const struct kt_verifier *v, void *arg),
		      void *arg)
{
	char err[PATH_MAX + 128], want[VF_NAME_LEN + 1];
	struct kt_verifier v;
	struct dirent *de;
	DIR *d = NULL;
	time_t now = time(NULL);
	int removed = 0, rc;

	memset(&v, 0, sizeof(v));
	if (dir == NULL || keep == NULL) {
		rc = -EINVAL;
		goto out;
	}
	d = opendir(dir);
	if (d == NULL) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			rc = errno != 0 ? -errno : 0;
			if (rc < 0)
				goto out;
			break;
		}
		if (strncmp(de->d_name, VF_TMP_PREFIX, sizeof(VF_TMP_PREFIX) - 1) == 0) {
			vf_prune_tmp(dirfd(d), dir, de->d_name, now);
			continue;
		}
		if (strncmp(de->d_name, VF_PREFIX, sizeof(VF_PREFIX) - 1) != 0)
			continue;
		rc = vf_load(dirfd(d), dir, de->d_name, &v, err, sizeof(err));
		/* A file under a name other than its own (secret id, key) would
		 * never be read: it is as good as garbled. */
		if (rc == 0 && (kt_verifier_file_name(v.secret_id, v.key, want, sizeof(want)) < 0 ||
				strcmp(want, de->d_name) != 0)) {
			rc = -EINVAL;
			kt_errf(err, sizeof(err), "%s/%s is not named for the secret it records",
				dir, de->d_name);
		}
		if (rc == -EINVAL || (rc == 0 && !keep(&v, arg))) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
				removed++;
				if (rc < 0)
					log_warn("removed a verifier file: %s", err);
			} else if (errno != ENOENT) {
				log_warn_errno("cannot remove %s/%s", dir, de->d_name);
			}
		}
		kt_verifier_clear(&v);
	}
	rc = removed;
out:
	kt_verifier_clear(&v);
	if (d != NULL)
		closedir(d);
	return rc;
}

void kt_verifier_clear(struct kt_verifier *v)
{
	if (v == NULL)
		return;
	kt_wipe(v->cur_hash, sizeof(v->cur_hash));
	kt_wipe(v->prev_hash, sizeof(v->prev_hash));
	free(v->secret_id);
	free(v->key);
	free(v->user);
	free(v->cur_version);
	free(v->prev_version);
	memset(v, 0, sizeof(*v));
}

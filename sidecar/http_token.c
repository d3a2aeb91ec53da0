/* The HTTP door's token file: made once with 32 random bytes, then read as
 * it is at every start. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "http_token.h"

static int make_token(const char *path, const char *group, char *err, size_t errlen)
{
	unsigned char raw[32];
	char hex[2 * sizeof(raw) + 2];
	struct group *gr;
	int fd, rc = 0;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		rc = -errno;
		snprintf(err, errlen, "token_file = %s: no random bytes: %s", path, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * sizeof(raw)] = '\n';
	OPENSSL_cleanse(raw, sizeof(raw));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "token_file = %s: cannot create it: %s", path, strerror(-rc));
		OPENSSL_cleanse(hex, sizeof(hex));
		return rc;
	}
	/* Its group first, then 0640: never readable by a group it is not meant
	 * for. A group keyturnd may not give it (not one of its groups) leaves
	 * the file its own, readable by its own group, and is said. */
	gr = getgrnam(group);
	if (gr == NULL)
		log_info("token_file = %s: no group %s; the file keeps keyturnd's group", path,
			 group);
	else if (fchown(fd, (uid_t)-1, gr->gr_gid) < 0)
		log_warn_errno("token_file = %s: cannot give it to group %s (is keyturnd's user "
			       "a member?); it keeps keyturnd's group",
			       path, group);
	errno = 0;
	if (fchmod(fd, 0640) < 0 || write(fd, hex, sizeof(hex) - 1) != (ssize_t)(sizeof(hex) - 1) ||
	    fsync(fd) < 0)
		rc = errno != 0 ? -errno : -EIO;
	OPENSSL_cleanse(hex, sizeof(hex));
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		unlink(path);
		snprintf(err, errlen, "token_file = %s: cannot write it: %s", path, strerror(-rc));
	}
	return rc;
}

int kt_http_token_load(const char *path, const char *group, char out[KT_HTTP_TOKEN_MAX + 1],
		       char *err, size_t errlen)
{
	char buf[KT_HTTP_TOKEN_MAX + 64];
	struct stat st;
	ssize_t n;
	size_t start, end;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if ((rc = make_token(path, group, err, errlen)) < 0)
			return rc;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "token_file = %s: %s", path,
			 rc == -ELOOP ? "is a symbolic link" : strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH) != 0) {
		close(fd);
		snprintf(err, errlen, "token_file = %s: not a regular file, or writable by others",
			 path);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "token_file = %s: %s", path, strerror(-rc));
		return rc;
	}
	buf[n] = '\0';
	for (start = 0; start < (size_t)n && strchr(" \t\r\n", buf[start]) != NULL; start++)
		;
	for (end = (size_t)n; end > start && strchr(" \t\r\n", buf[end - 1]) != NULL; end--)
		;
	rc = 0;
	if (end == start || end - start > KT_HTTP_TOKEN_MAX)
		rc = -EINVAL;
	for (size_t i = start; rc == 0 && i < end; i++) {
		if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f)
			rc = -EINVAL;
	}
	if (rc == 0) {
		memcpy(out, buf + start, end - start);
		out[end - start] = '\0';
	} else {
		snprintf(err, errlen,
			 "token_file = %s: must hold one token of 1 to %d printable characters",
			 path, KT_HTTP_TOKEN_MAX);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

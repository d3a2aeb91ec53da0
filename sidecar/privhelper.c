/* keyturnd's privileged helper: the process forked before the privileges
 * are dropped, which writes the configured files, runs their on_change
 * commands and the rotations' set/test commands (privhelper_run.c), and
 * nothing else. SECURITY.md says what it accepts and the rules every path
 * must pass. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/kt_io.h"
#include "common/kt_time.h"
#include "common/log.h"
#include "privhelper.h"
#include "privhelper_int.h"

#define HDR_SIZE sizeof(struct kt_priv_hdr)

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -(saved != 0 ? saved : EINVAL);
}

/* --- paths ------------------------------------------------------------ */

/* A directory on the way to a sink: owned by root, by the file's owner or
 * by whoever keyturnd's helper runs as, and writable by nobody else
 * (others, or a group other than root's, the file's or the helper's)
 * unless its sticky bit is set. */
static int check_dir(int fd, const struct kt_file_cfg *f, const char *shown, char *err,
		     size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(err, errlen, "%s: %s", shown, strerror(errno));
	errno = ENOTDIR;
	if (!S_ISDIR(st.st_mode))
		return fail(err, errlen, "%s: not a directory", shown);
	errno = EPERM;
	if (st.st_uid != 0 && st.st_uid != f->uid && st.st_uid != geteuid())
		return fail(err, errlen,
			    "%s: owned by uid %lu (a directory on the way must be root's, "
			    "the file owner's or keyturnd's): refused",
			    shown, (unsigned long)st.st_uid);
	if ((st.st_mode & S_ISVTX) == 0 && (st.st_mode & S_IWOTH) != 0)
		return fail(err, errlen, "%s: writable by others without the sticky bit: refused",
			    shown);
	if ((st.st_mode & S_ISVTX) == 0 && (st.st_mode & S_IWGRP) != 0 && st.st_gid != 0 &&
	    st.st_gid != f->gid && st.st_gid != getegid())
		return fail(err, errlen,
			    "%s: writable by group %lu without the sticky bit: refused", shown,
			    (unsigned long)st.st_gid);
	return 0;
}

/* Opens the directory that holds f->path by walking from / one component
 * at a time, never following a symlink; *base is the last component.
 * An fd (readable, for fsync) or -errno. */
static int open_parent(const struct kt_file_cfg *f, const char **base, char *err, size_t errlen)
{
	char shown[PATH_MAX], comp[NAME_MAX + 1];
	const char *c = f->path + 1, *slash;
	struct stat st;
	int dfd, next = -1, rc;
	size_t len;

	dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(err, errlen, "/: %s", strerror(errno));
	rc = check_dir(dfd, f, "/", err, errlen);
	while (rc == 0 && (slash = strchr(c, '/')) != NULL) {
		len = (size_t)(slash - c);
		memcpy(comp, c, len);
		comp[len] = '\0';
		snprintf(shown, sizeof(shown), "%.*s", (int)(slash - f->path), f->path);
		next = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode)) {
				errno = ELOOP;
				rc = fail(err, errlen, "%s: a symlink: refused, not followed",
					  shown);
			} else {
				rc = fail(err, errlen, "%s: %s", shown, strerror(errno));
			}
			break;
		}
		close(dfd);
		dfd = next;
		rc = check_dir(dfd, f, shown, err, errlen);
		c = slash + 1;
	}
	if (rc == 0) {
		/* O_PATH cannot be fsync'd: the last directory is opened again. */
		next = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
			rc = fail(err, errlen, "%s: the directory: %s", f->path, strerror(errno));
	}
	close(dfd);
	if (rc < 0)
		return rc;
	*base = c;
	return next;
}

/* The target itself: absent, or a regular file (never a symlink). */
static int check_target(int dfd, const char *base, const struct kt_file_cfg *f, char *err,
			size_t errlen)
{
	struct stat st;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 1;
		return fail(err, errlen, "%s: %s", f->path, strerror(errno));
	}
	errno = ELOOP;
	if (S_ISLNK(st.st_mode))
		return fail(err, errlen, "%s: a symlink: refused, not followed", f->path);
	errno = EINVAL;
	if (!S_ISREG(st.st_mode))
		return fail(err, errlen, "%s: not a regular file: refused", f->path);
	return 0;
}

int kt_priv_write_file(const struct kt_file_cfg *f, const void *data, size_t len, char *err,
		       size_t errlen)
{
	char tmp[NAME_MAX + 1] = "";
	const char *base = NULL;
	uint32_t rnd = 0;
	int dfd, fd = -1, rc;

	dfd = open_parent(f, &base, err, errlen);
	if (dfd < 0)
		return dfd;
	rc = check_target(dfd, base, f, err, errlen);
	if (rc < 0)
		goto out;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = fail(err, errlen, "%s: getrandom: %s", f->path, strerror(errno));
		goto out;
	}
	/* A hidden name next to the target, so that rename is atomic; the
	 * base is cut to leave room for the suffix. */
	snprintf(tmp, sizeof(tmp), ".%.200s.keyturn-%08x", base, (unsigned)rnd);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = fail(err, errlen, "%s: creating a temporary file: %s", f->path,
			  strerror(errno));
		goto out;
	}
	rc = kt_write_all(fd, data, len);
	if (rc < 0) {
		errno = -rc;
		rc = fail(err, errlen, "%s: writing: %s", f->path, strerror(errno));
		goto out;
	}
	if ((f->uid != (uid_t)-1 || f->gid != (gid_t)-1) && fchown(fd, f->uid, f->gid) < 0) {
		rc = fail(err, errlen, "%s: cannot give it to uid %ld gid %ld: %s", f->path,
			  f->uid == (uid_t)-1 ? -1L : (long)f->uid,
			  f->gid == (gid_t)-1 ? -1L : (long)f->gid, strerror(errno));
		goto out;
	}
	if (fchmod(fd, f->mode) < 0 || fsync(fd) < 0) {
		rc = fail(err, errlen, "%s: %s", f->path, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = fail(err, errlen, "%s: %s", f->path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, base) < 0) {
		rc = fail(err, errlen, "%s: rename: %s", f->path, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	if (fsync(dfd) < 0)
		rc = fail(err, errlen, "%s: fsync of its directory: %s", f->path, strerror(errno));
	else
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0] != '\0')
		(void)unlinkat(dfd, tmp, 0);
	close(dfd);
	return rc;
}

int kt_priv_remove_file(const struct kt_file_cfg *f, char *err, size_t errlen)
{
	const char *base = NULL;
	int dfd, rc;

	dfd = open_parent(f, &base, err, errlen);
	if (dfd < 0)
		return dfd;
	rc = check_target(dfd, base, f, err, errlen);
	if (rc == 0 && unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
		rc = fail(err, errlen, "%s: %s", f->path, strerror(errno));
	else if (rc == 0 && fsync(dfd) < 0)
		rc = fail(err, errlen, "%s: fsync of its directory: %s", f->path, strerror(errno));
	else if (rc == 1)
		rc = 0;
	close(dfd);
	return rc;
}

/* --- the helper's loop ------------------------------------------------------ */

static void reply(int fd, struct kt_priv_reply *r)
{
	struct iovec iov[2] = { { &r->h, HDR_SIZE }, { r->text, r->h.len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	while (sendmsg(fd, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void set_err_text(struct kt_priv_reply *r, const char *err)
{
	r->h.len = (uint32_t)strnlen(err, KT_PRIV_MAX_TEXT);
	memcpy(r->text, err, r->h.len);
	r->text[r->h.len] = '\0';
}

/* Whether h (n bytes with its data) names a configured sink or rotation
 * with a command, and carries data only where the operation takes some. */
static bool request_ok(const struct kt_config *cfg, const struct kt_priv_hdr *h, size_t n)
{
	const struct kt_rotate_cfg *rc;

	if (h->len != n - HDR_SIZE)
		return false;
	switch (h->op) {
	case KT_PRIV_WRITE:
		return h->idx < cfg->nfiles;
	case KT_PRIV_REMOVE:
		return h->idx < cfg->nfiles && h->len == 0;
	case KT_PRIV_RUN:
		return h->idx < cfg->nfiles && h->len == 0 && cfg->files[h->idx].argv != NULL;
	case KT_PRIV_ROTATE_SET:
	case KT_PRIV_ROTATE_TEST:
		if (h->idx >= cfg->nrotates)
			return false;
		rc = &cfg->rotates[h->idx];
		return (h->op == KT_PRIV_ROTATE_SET ? rc->set_argv : rc->test_argv) != NULL;
	default:
		return false;
	}
}

/* In a runner: the command h names, with its environment and stdin. */
static void run_request(const struct kt_config *cfg, const struct kt_priv_hdr *h,
			const unsigned char *data, struct kt_priv_reply *r)
{
	char secret[2048 + 16], file[PATH_MAX + 16];
	const char *env[3] = { secret, NULL, NULL };
	struct kt_priv_cmd c = { .env = env };

	if (h->op == KT_PRIV_RUN) {
		const struct kt_file_cfg *f = &cfg->files[h->idx];

		snprintf(file, sizeof(file), "KEYTURN_FILE=%s", f->path);
		snprintf(secret, sizeof(secret), "KEYTURN_SECRET=%s", f->secret);
		env[1] = file;
		c.argv = f->argv;
		c.run_as = f->run_as;
		c.uid = f->run_uid;
		c.gid = f->run_gid;
		c.timeout = f->on_change_timeout;
	} else {
		const struct kt_rotate_cfg *rc = &cfg->rotates[h->idx];
		bool set = h->op == KT_PRIV_ROTATE_SET;

		snprintf(secret, sizeof(secret), "KEYTURN_SECRET=%s", rc->name);
		env[1] = set ? "KEYTURN_STEP=setSecret" : "KEYTURN_STEP=testSecret";
		c.argv = set ? rc->set_argv : rc->test_argv;
		c.run_as = rc->run_as;
		c.uid = rc->run_uid;
		c.gid = rc->run_gid;
		c.timeout = rc->command_timeout;
		c.input = data;
		c.input_len = h->len;
	}
	kt_priv_run(&c, r);
}

__attribute__((noreturn)) static void helper_main(const struct kt_config *cfg, int fd)
{
	size_t cap = HDR_SIZE + KT_PRIV_MAX_DATA;
	unsigned char *buf = calloc(1, cap);
	struct kt_priv_reply r;
	struct kt_priv_hdr h;
	char err[KT_PRIV_MAX_TEXT];
	ssize_t n;

	if (buf == NULL)
		_exit(1);
	/* Values pass through buf: never swapped out, never in a core. */
	(void)mlock(buf, cap);
	(void)madvise(buf, cap, MADV_DONTDUMP);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Runners are reaped by the kernel. */
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		n = recv(fd, buf, cap, MSG_TRUNC);
		if (n == 0)
			_exit(0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)HDR_SIZE || (size_t)n > cap)
			_exit(n < 0 ? 1 : 2);
		memcpy(&h, buf, HDR_SIZE);
		/* The daemon is the only peer: a malformed request means it is
		 * not the daemon any more, and the helper stops serving. */
		if (!request_ok(cfg, &h, (size_t)n))
			_exit(2);
		memset(&r, 0, sizeof(r));
		r.h.op = h.op;
		r.h.idx = h.idx;
		switch (h.op) {
		case KT_PRIV_WRITE:
			r.h.status = kt_priv_write_file(&cfg->files[h.idx], buf + HDR_SIZE, h.len,
							err, sizeof(err));
			if (r.h.status < 0)
				set_err_text(&r, err);
			break;
		case KT_PRIV_REMOVE:
			r.h.status = kt_priv_remove_file(&cfg->files[h.idx], err, sizeof(err));
			if (r.h.status < 0)
				set_err_text(&r, err);
			break;
		case KT_PRIV_RUN:
		case KT_PRIV_ROTATE_SET:
		case KT_PRIV_ROTATE_TEST:
			/* A runner per command, so that a slow one holds up no
			 * write; it answers on the same socket (one datagram per
			 * message, so answers never mix). */
			switch (fork()) {
			case -1:
				r.h.status = -errno;
				break;
			case 0:
				signal(SIGCHLD, SIG_DFL);
				run_request(cfg, &h, buf + HDR_SIZE, &r);
				explicit_bzero(buf, (size_t)n);
				reply(fd, &r);
				_exit(0);
			default:
				explicit_bzero(buf, (size_t)n);
				continue;
			}
			break;
		default:
			_exit(2);
		}
		explicit_bzero(buf, (size_t)n);
		reply(fd, &r);
	}
}

int kt_privhelper_start(const struct kt_config *cfg, int *fd, pid_t *pid)
{
	int sv[2];
	pid_t p;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fflush(NULL);
	p = fork();
	if (p < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (p == 0) {
		/* Only the socket stays open (and stdio for the log); syslog's
		 * socket is closed first so that its number is not reused
		 * under it. */
		closelog();
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
			for (int i = 4; i < 1024; i++)
				close(i);
		}
		helper_main(cfg, 3);
	}
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;

		close(sv[0]);
		return -e;
	}
	*fd = sv[0];
	*pid = p;
	return 0;
}

int kt_privhelper_send(int fd, enum kt_priv_op op, uint32_t idx, const void *data, size_t len)
{
	struct kt_priv_hdr h = { (uint32_t)op, idx, 0, 0, (uint32_t)len };
	struct iovec iov[2] = { { &h, HDR_SIZE }, { (void *)data, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };

	if (len > KT_PRIV_MAX_DATA)
		return -EMSGSIZE;
	for (;;) {
		if (sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

int kt_privhelper_recv(int fd, struct kt_priv_reply *r)
{
	struct iovec iov[2] = { { &r->h, HDR_SIZE }, { r->text, KT_PRIV_MAX_TEXT } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	do
		n = recvmsg(fd, &m, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -EPIPE;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n < HDR_SIZE || (m.msg_flags & MSG_TRUNC) != 0 ||
	    r->h.len != (size_t)n - HDR_SIZE)
		return -EPROTO;
	r->text[r->h.len] = '\0';
	for (size_t i = 0; i < r->h.len; i++) {
		if ((unsigned char)r->text[i] < 0x20 || r->text[i] == 0x7f)
			r->text[i] = '?';
	}
	return 1;
}

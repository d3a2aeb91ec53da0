/* keyturnd's privileged helper for file sinks: the process forked before the
 * privileges are dropped, which writes the configured files and runs their
 * on_change commands, and nothing else. SECURITY.md says what it accepts
 * and the rules every path must pass. */
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

#include "common/kt_time.h"
#include "common/log.h"
#include "privhelper.h"

#define HDR_SIZE sizeof(struct kt_priv_hdr)
#define CMD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
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
	rc = write_all(fd, data, len);
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

/* --- on_change ------------------------------------------------------------ */

/* In the command's child: its user, a clean signal state, a minimal
 * environment, no shell. Never returns. */
__attribute__((noreturn)) static void exec_command(const struct kt_file_cfg *f, int errfd)
{
	sigset_t none;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	(void)setpgid(0, 0);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(126);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (f->run_uid != (uid_t)-1 && f->run_uid != geteuid()) {
		if (geteuid() != 0) {
			fprintf(stderr, "cannot run as %s: keyturnd did not start as root\n",
				f->run_as);
			_exit(126);
		}
		if (initgroups(f->run_as, f->run_gid) < 0 || setgid(f->run_gid) < 0 ||
		    setuid(f->run_uid) < 0) {
			fprintf(stderr, "cannot become %s: %s\n", f->run_as, strerror(errno));
			_exit(126);
		}
	}
	if (chdir("/") < 0)
		_exit(126);
	clearenv();
	if (setenv("PATH", CMD_PATH, 1) < 0 || setenv("KEYTURN_FILE", f->path, 1) < 0 ||
	    setenv("KEYTURN_SECRET", f->secret, 1) < 0)
		_exit(126);
	execvp(f->argv[0], f->argv);
	fprintf(stderr, "cannot run %s: %s\n", f->argv[0], strerror(errno));
	_exit(127);
}

/* Keeps the first KT_PRIV_MAX_TEXT bytes of stderr, printable, lines
 * joined with " | "; the rest is read and dropped. */
static void keep_text(struct kt_priv_reply *r, const char *buf, size_t n)
{
	for (size_t i = 0; i < n && r->h.len + 3 < KT_PRIV_MAX_TEXT; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\n') {
			memcpy(r->text + r->h.len, " | ", 3);
			r->h.len += 3;
		} else {
			r->text[r->h.len++] = ch >= 0x20 && ch != 0x7f ? (char)ch : '?';
		}
	}
}

/* Runs f's command and waits for it (at most on_change_timeout seconds,
 * then SIGKILL to its process group). Fills r. */
static void run_command(const struct kt_file_cfg *f, struct kt_priv_reply *r)
{
	int64_t deadline = kt_mono_ms() + f->on_change_timeout * 1000;
	int pfd[2], st = 0, pidfd;
	bool open_pipe = true, exited = false;
	char buf[512];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r->h.status = -errno;
		return;
	}
	pid = fork();
	if (pid < 0) {
		r->h.status = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0)
		exec_command(f, pfd[1]);
	close(pfd[1]);
	(void)setpgid(pid, pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (open_pipe && !exited) {
		struct pollfd p[2] = { { pfd[0], POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		int64_t left = deadline - kt_mono_ms();
		ssize_t n;

		if (left <= 0) {
			r->h.flags |= KT_PRIV_TIMED_OUT;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			break;
		}
		/* Without a pidfd the exit is looked for every 100 ms. */
		if (poll(p, 2, (int)(pidfd < 0 && left > 100 ? 100 : left)) < 0 && errno != EINTR)
			break;
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			n = read(pfd[0], buf, sizeof(buf));
			if (n > 0)
				keep_text(r, buf, (size_t)n);
			else if (n == 0 || errno != EINTR)
				open_pipe = false;
		}
		exited = waitpid(pid, &st, WNOHANG) == pid;
	}
	if (!exited) {
		/* The command closed stderr but runs on: it may have until the
		 * deadline, then it is killed. */
		while (!exited && kt_mono_ms() < deadline) {
			struct pollfd p = { pidfd, POLLIN, 0 };
			int64_t left = deadline - kt_mono_ms();

			(void)poll(&p, pidfd < 0 ? 0 : 1,
				   (int)(pidfd < 0 && left > 100 ? 100 : left));
			exited = waitpid(pid, &st, WNOHANG) == pid;
		}
		if (!exited) {
			r->h.flags |= KT_PRIV_TIMED_OUT;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			(void)waitpid(pid, &st, 0);
		}
	} else if (open_pipe && fcntl(pfd[0], F_SETFL, O_NONBLOCK) == 0) {
		/* Exited: what it wrote is taken, without waiting for a
		 * grandchild that may hold stderr. */
		ssize_t n;

		while ((n = read(pfd[0], buf, sizeof(buf))) > 0)
			keep_text(r, buf, (size_t)n);
	}
	if (pidfd >= 0)
		close(pidfd);
	close(pfd[0]);
	r->h.status = st;
	r->text[r->h.len] = '\0';
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
		if (h.idx >= cfg->nfiles || h.len != (size_t)n - HDR_SIZE ||
		    (h.op != KT_PRIV_WRITE && h.len != 0))
			_exit(2);
		memset(&r, 0, sizeof(r));
		r.h.op = h.op;
		r.h.idx = h.idx;
		const struct kt_file_cfg *f = &cfg->files[h.idx];
		switch (h.op) {
		case KT_PRIV_WRITE:
			r.h.status = kt_priv_write_file(f, buf + HDR_SIZE, h.len, err, sizeof(err));
			if (r.h.status < 0)
				set_err_text(&r, err);
			break;
		case KT_PRIV_REMOVE:
			r.h.status = kt_priv_remove_file(f, err, sizeof(err));
			if (r.h.status < 0)
				set_err_text(&r, err);
			break;
		case KT_PRIV_RUN:
			if (f->argv == NULL || f->argv[0] == NULL) {
				r.h.status = -EINVAL;
				break;
			}
			/* A runner per command, so that a slow one holds up no
			 * write; it answers on the same socket (one datagram per
			 * message, so answers never mix). */
			switch (fork()) {
			case -1:
				r.h.status = -errno;
				break;
			case 0:
				signal(SIGCHLD, SIG_DFL);
				run_command(f, &r);
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

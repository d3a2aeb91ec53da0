/* The privileged helper's command runner: a command named by the
 * configuration read at start, run as its user without a shell, with a
 * minimal environment, its stdin given (a new password for the rotation
 * steps) or /dev/null, stdout discarded and the first bytes of stderr kept
 * for the log, killed with its process group at its timeout. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/kt_time.h"
#include "privhelper_int.h"

#define CMD_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* In the command's child: its user, a clean signal state, a minimal
 * environment, no shell. Never returns. */
__attribute__((noreturn)) static void exec_command(const struct kt_priv_cmd *c, int infd, int errfd)
{
	sigset_t none;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	(void)setpgid(0, 0);
	if (null < 0 || dup2(infd >= 0 ? infd : null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(errfd, 2) < 0)
		_exit(126);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (c->uid != (uid_t)-1 && c->uid != geteuid()) {
		if (geteuid() != 0) {
			fprintf(stderr, "cannot run as %s: keyturnd did not start as root\n",
				c->run_as);
			_exit(126);
		}
		if (initgroups(c->run_as, c->gid) < 0 || setgid(c->gid) < 0 || setuid(c->uid) < 0) {
			fprintf(stderr, "cannot become %s: %s\n", c->run_as, strerror(errno));
			_exit(126);
		}
	}
	if (chdir("/") < 0)
		_exit(126);
	clearenv();
	if (putenv((char *)CMD_PATH) != 0)
		_exit(126);
	for (size_t i = 0; c->env != NULL && c->env[i] != NULL; i++) {
		if (putenv((char *)c->env[i]) != 0)
			_exit(126);
	}
	execvp(c->argv[0], c->argv);
	fprintf(stderr, "cannot run %s: %s\n", c->argv[0], strerror(errno));
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

/* A pipe that holds c's input whole, written and closed: the command reads
 * it at its pace and sees its end. -1 with errno set on failure. */
static int input_pipe(const struct kt_priv_cmd *c)
{
	const unsigned char *p = c->input;
	size_t left = c->input_len;
	int fd[2];

	if (pipe2(fd, O_CLOEXEC) < 0)
		return -1;
	if (left + 4096 > 65536 && fcntl(fd[1], F_SETPIPE_SZ, (int)(left + 4096)) < 0)
		goto fail;
	while (left > 0) {
		ssize_t n = write(fd[1], p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		p += n;
		left -= (size_t)n;
	}
	close(fd[1]);
	return fd[0];
fail:
	close(fd[0]);
	close(fd[1]);
	return -1;
}

void kt_priv_run(const struct kt_priv_cmd *c, struct kt_priv_reply *r)
{
	int64_t deadline = kt_mono_ms() + c->timeout * 1000;
	int pfd[2], st = 0, pidfd, infd = -1;
	bool open_pipe = true, exited = false;
	char buf[512];
	pid_t pid;

	if (c->input != NULL && (infd = input_pipe(c)) < 0) {
		r->h.status = -errno;
		return;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r->h.status = -errno;
		if (infd >= 0)
			close(infd);
		return;
	}
	pid = fork();
	if (pid < 0) {
		r->h.status = -errno;
		close(pfd[0]);
		close(pfd[1]);
		if (infd >= 0)
			close(infd);
		return;
	}
	if (pid == 0)
		exec_command(c, infd, pfd[1]);
	close(pfd[1]);
	if (infd >= 0)
		close(infd);
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
	/* The last line's newline leaves a separator with nothing after it. */
	if (r->h.len >= 3 && memcmp(r->text + r->h.len - 3, " | ", 3) == 0)
		r->h.len -= 3;
	r->text[r->h.len] = '\0';
}

/* keyturnctl watch and exec (ctl_exec.h). watch prints one line per new
 * AWSCURRENT value of the secrets named. exec puts secret values in a
 * command's environment (never on its argv) and runs it: in place, or as a
 * child that is stopped (SIGTERM, a grace period, SIGKILL) and started
 * again with the new values after a change. No value is ever printed. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/secmem.h"
#include "ctl_exec.h"

extern char **environ;

/* keyturnctl(1)'s exit codes. */
enum { X_DONE = 0, X_ERROR = 1, X_USAGE = 2, X_NOT_FOUND = 3, X_DENIED = 4, X_UNAVAILABLE = 5 };

/* How long a wait for news lasts before signals are looked at again. */
#define TURN_MS 250
#define GRACE_DEFAULT 10

static volatile sig_atomic_t got_signal; /* SIGINT, SIGTERM or SIGHUP to pass on */
static volatile sig_atomic_t got_child;  /* SIGCHLD */

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_child = 1;
	else
		got_signal = sig;
}

/* "keyturnctl: WHAT: message", with control characters shown as '?'. */
static void say(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *what, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	fflush(stdout);
	fprintf(stderr, "keyturnctl: %s: %s\n", what, msg);
}

int kt_ctl_exit_code(int err)
{
	switch (err) {
	case KEYTURN_OK:
		return X_DONE;
	case KEYTURN_E_NOT_FOUND:
		return X_NOT_FOUND;
	case KEYTURN_E_DENIED:
		return X_DENIED;
	case KEYTURN_E_UNAVAILABLE:
	case KEYTURN_E_THROTTLED:
	case KEYTURN_E_CONNECT:
	case KEYTURN_E_TIMEOUT:
		return X_UNAVAILABLE;
	case KEYTURN_E_INVALID:
		return X_USAGE;
	default:
		return X_ERROR;
	}
}

static int failed(const keyturn_t *kt, const char *what, int err)
{
	const char *m = keyturn_last_message(kt);

	say(what, "%s", m != NULL && *m != '\0' ? m : keyturn_strerror(err));
	return kt_ctl_exit_code(err);
}

/* Catches the signals to pass on (and SIGCHLD) without SA_RESTART, so a
 * wait for news ends when one comes. */
static void catch_signals(bool child)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (child)
		sigaction(SIGCHLD, &sa, NULL);
}

static void iso_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "%lld", (long long)t);
}

int kt_ctl_watch(keyturn_t *kt, int argc, char **argv)
{
	int rc;

	if (argc < 1 || argc > KEYTURN_WATCH_MAX) {
		fprintf(stderr, "keyturnctl: watch wants 1 to %d names\n", KEYTURN_WATCH_MAX);
		return X_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '\0' || argv[i][0] == '-') {
			say("watch", "'%s' is not a secret name", argv[i]);
			return X_USAGE;
		}
	}
	rc = keyturn_watch(kt, (const char *const *)argv, (size_t)argc);
	if (rc != KEYTURN_OK)
		return failed(kt, "watch", rc);
	catch_signals(false);
	while (got_signal == 0) {
		char *name = NULL, *vid = NULL, when[40];
		int64_t at = 0;

		rc = keyturn_watch_next(kt, TURN_MS * 4, &name, &vid, &at);
		if (rc == KEYTURN_E_TIMEOUT)
			continue;
		if (rc != KEYTURN_OK)
			return failed(kt, "watch", rc);
		iso_time(at, when, sizeof(when));
		printf("%s %s %s\n", name, vid, when);
		keyturn_free_string(name);
		keyturn_free_string(vid);
		if (fflush(stdout) != 0)
			return X_ERROR;
	}
	return X_DONE;
}

int kt_ctl_env_parse(const char *spec, struct kt_ctl_env *out, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '='), *hash;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->spec = spec;
	if (eq == NULL || eq == spec) {
		snprintf(err, errlen, "--env %s: want VAR=SECRET or VAR=SECRET#KEY", spec);
		return -EINVAL;
	}
	for (i = 0; spec + i < eq; i++) {
		char c = spec[i];

		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (i > 0 && c >= '0' && c <= '9'))) {
			snprintf(err, errlen,
				 "--env %s: the variable's name must be letters, digits and "
				 "'_', not starting with a digit",
				 spec);
			return -EINVAL;
		}
	}
	out->var_len = i;
	/* '#' cannot occur in a secret name, so the first one starts the key. */
	hash = strchr(eq + 1, '#');
	if (eq[1] == '\0' || hash == eq + 1 || (hash != NULL && hash[1] == '\0')) {
		snprintf(err, errlen, "--env %s: the secret%s is empty", spec,
			 hash != NULL && hash[1] == '\0' ? "'s key" : "");
		return -EINVAL;
	}
	out->secret = hash != NULL ? strndup(eq + 1, (size_t)(hash - eq - 1)) : strdup(eq + 1);
	out->key = hash != NULL ? strdup(hash + 1) : NULL;
	if (out->secret == NULL || (hash != NULL && out->key == NULL)) {
		kt_ctl_env_clear(out);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void kt_ctl_env_clear(struct kt_ctl_env *e)
{
	free(e->secret);
	free(e->key);
	e->secret = NULL;
	e->key = NULL;
}

struct exec_opts {
	struct kt_ctl_env env[KEYTURN_WATCH_MAX];
	size_t nenv;
	bool restart;
	long grace; /* s between SIGTERM and SIGKILL */
	char **cmd;
};

static void exec_opts_clear(struct exec_opts *o)
{
	for (size_t i = 0; i < o->nenv; i++)
		kt_ctl_env_clear(&o->env[i]);
	o->nenv = 0;
}

/* exec's own options. -1 to go on, else an exit code. */
static int exec_parse(int argc, char **argv, struct exec_opts *o)
{
	static const struct option longopts[] = {
		{ "env", required_argument, NULL, 'e' },
		{ "restart-on-change", no_argument, NULL, 'r' },
		{ "grace", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	char err[512], *end;
	int c;

	optind = 0;
	opterr = 0;
	/* '+': options end at COMMAND, whose own options are its own. */
	while ((c = getopt_long(argc, argv, "+:e:rg:", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (o->nenv == KEYTURN_WATCH_MAX) {
				say("exec", "at most %d --env options", KEYTURN_WATCH_MAX);
				return X_USAGE;
			}
			if (kt_ctl_env_parse(optarg, &o->env[o->nenv], err, sizeof(err)) < 0) {
				say("exec", "%s", err);
				return X_USAGE;
			}
			o->nenv++;
			break;
		case 'r':
			o->restart = true;
			break;
		case 'g':
			errno = 0;
			o->grace = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || o->grace < 0 ||
			    o->grace > 3600) {
				say("exec", "--grace wants whole seconds from 0 to 3600");
				return X_USAGE;
			}
			break;
		case ':':
			say("exec", "option '%s' needs a value", argv[optind - 1]);
			return X_USAGE;
		default:
			say("exec", "unknown option '%s'", argv[optind - 1]);
			return X_USAGE;
		}
	}
	if (optind >= argc) {
		say("exec", "no COMMAND given (keyturnctl exec [--env VAR=SECRET[#KEY]]... "
			    "[--restart-on-change] -- COMMAND [ARG...])");
		return X_USAGE;
	}
	if (o->restart && o->nenv == 0) {
		say("exec", "--restart-on-change wants at least one --env");
		return X_USAGE;
	}
	o->cmd = argv + optind;
	return -1;
}

/* Frees an environment made by make_env, wiping the strings it added. */
static void free_env(char **envp, size_t added)
{
	size_t n = 0;

	if (envp == NULL)
		return;
	while (envp[n] != NULL)
		n++;
	/* The added strings are the last ones. */
	for (size_t i = n - added; i < n; i++)
		kt_str_free_wiped(envp[i]);
	free(envp);
}

/* Whether environment entry s sets one of the variables of o. */
static bool replaced(const struct exec_opts *o, const char *s)
{
	for (size_t i = 0; i < o->nenv; i++) {
		if (strncmp(s, o->env[i].spec, o->env[i].var_len + 1) == 0)
			return true;
	}
	return false;
}

/* The child's environment: this one's without the variables of o, then
 * each VAR=value read now. NULL with *rc an exit code on failure. */
static char **make_env(keyturn_t *kt, const struct exec_opts *o, int *rc)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n] != NULL)
		n++;
	envp = calloc(n + o->nenv + 1, sizeof(char *));
	if (envp == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (!replaced(o, environ[i]))
			envp[k++] = environ[i];
	}
	for (size_t i = 0; i < o->nenv; i++) {
		const struct kt_ctl_env *e = &o->env[i];
		keyturn_value_t *v = NULL;
		const char *data;
		size_t len = 0;
		char *s;
		int err = keyturn_get(kt, e->secret, NULL, NULL, e->key, &v);

		if (err != KEYTURN_OK) {
			*rc = failed(kt, e->secret, err);
			free_env(envp, i);
			return NULL;
		}
		data = keyturn_value_data(v, &len);
		if (keyturn_value_is_binary(v) || memchr(data, '\0', len) != NULL) {
			say(e->secret, "the value holds a NUL byte and cannot be put in %.*s",
			    (int)e->var_len, e->spec);
			keyturn_value_free(v);
			free_env(envp, i);
			*rc = X_ERROR;
			return NULL;
		}
		s = malloc(e->var_len + 1 + len + 1);
		if (s == NULL) {
			keyturn_value_free(v);
			free_env(envp, i);
			goto nomem;
		}
		memcpy(s, e->spec, e->var_len + 1);
		memcpy(s + e->var_len + 1, data, len + 1);
		keyturn_value_free(v);
		envp[k++] = s;
	}
	return envp;
nomem:
	say("exec", "out of memory");
	*rc = X_ERROR;
	return NULL;
}

/* In the child: signals as a fresh program expects them, then COMMAND. */
static void run_child(char **cmd, char **envp)
{
	sigset_t none;

	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(cmd[0], cmd, envp);
}

static int exec_failed(const char *cmd, int e)
{
	say("exec", "cannot run %s: %s", cmd, strerror(e));
	return e == ENOENT ? 127 : 126;
}

/* keyturnctl's status for the child's: its exit code, or 128+signal. */
static int child_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return X_ERROR;
}

static pid_t start_child(keyturn_t *kt, const struct exec_opts *o, int *rc)
{
	char **envp = make_env(kt, o, rc);
	pid_t pid;

	if (envp == NULL)
		return -1;
	pid = fork();
	if (pid == 0) {
		run_child(o->cmd, envp);
		_exit(exec_failed(o->cmd[0], errno));
	}
	if (pid < 0) {
		say("exec", "fork: %s", strerror(errno));
		*rc = X_ERROR;
	}
	free_env(envp, o->nenv);
	return pid;
}

/* Stops the child for a restart: SIGTERM, grace seconds, then SIGKILL.
 * Signals to pass on that come meanwhile are passed on. Returns its wait
 * status. */
static int stop_child(pid_t pid, long grace)
{
	struct timespec start, now, nap = { 0, 50 * 1000000L };
	int st = 0;

	kill(pid, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return st;
		if (got_signal != 0) {
			kill(pid, got_signal);
			got_signal = 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= grace) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return st;
		}
		/* SIGCHLD ends the nap early. */
		nanosleep(&nap, NULL);
	}
}

/* exec --restart-on-change: the watch comes first, so that no change falls
 * between reading the values and watching them. */
static int exec_watched(keyturn_t *kt, keyturn_t *w, const struct exec_opts *o)
{
	const char *names[KEYTURN_WATCH_MAX];
	size_t n = 0;
	bool watching = true, stopping = false;
	pid_t pid;
	int rc = X_ERROR, st;

	for (size_t i = 0; i < o->nenv; i++) {
		size_t j = 0;

		while (j < n && strcmp(names[j], o->env[i].secret) != 0)
			j++;
		if (j == n)
			names[n++] = o->env[i].secret;
	}
	if ((rc = keyturn_watch(w, names, n)) != KEYTURN_OK)
		return failed(w, "exec: watch", rc);
	catch_signals(true);
	if ((pid = start_child(kt, o, &rc)) < 0)
		return rc;
	for (;;) {
		char *name = NULL, *vid = NULL;
		pid_t r;

		if (got_signal != 0) {
			kill(pid, got_signal);
			/* Whoever stops keyturnctl stops the command for good. */
			stopping = got_signal != SIGHUP;
			got_signal = 0;
		}
		got_child = 0;
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return child_status(st);
		if (!watching || stopping) {
			struct timespec nap = { 0, TURN_MS * 1000000L };

			if (got_child == 0 && got_signal == 0)
				nanosleep(&nap, NULL);
			continue;
		}
		rc = keyturn_watch_next(w, TURN_MS, &name, &vid, NULL);
		if (rc == KEYTURN_E_TIMEOUT)
			continue;
		if (rc != KEYTURN_OK) {
			/* The command keeps running with the values it has. */
			failed(w, "exec: watch", rc);
			say("exec", "no longer watching; %s keeps running", o->cmd[0]);
			watching = false;
			continue;
		}
		say("exec", "%s changed to version %s; restarting %s", name, vid, o->cmd[0]);
		keyturn_free_string(name);
		keyturn_free_string(vid);
		/* Changes that came together cost one restart. */
		while (keyturn_watch_next(w, 0, NULL, NULL, NULL) == KEYTURN_OK)
			;
		st = stop_child(pid, o->grace);
		if (stopping)
			return child_status(st);
		if ((pid = start_child(kt, o, &rc)) < 0)
			return rc;
	}
}

int kt_ctl_exec(keyturn_t *kt, const char *socket, int timeout_ms, int argc, char **argv)
{
	struct exec_opts o = { .grace = GRACE_DEFAULT };
	keyturn_t *w = NULL;
	char **envp;
	int rc, err = 0;

	rc = exec_parse(argc, argv, &o);
	if (rc >= 0)
		goto out;
	if (!o.restart) {
		if ((envp = make_env(kt, &o, &rc)) == NULL)
			goto out;
		/* In place: COMMAND takes this process, its pid and its exit
		 * status; nothing of keyturnctl stays behind. */
		keyturn_close(kt);
		run_child(o.cmd, envp);
		rc = exec_failed(o.cmd[0], errno);
		free_env(envp, o.nenv);
		exec_opts_clear(&o);
		exit(rc);
	}
	w = keyturn_open(socket, &err);
	if (w == NULL) {
		rc = failed(NULL, "exec", err);
		goto out;
	}
	if (timeout_ms > 0)
		keyturn_set_timeout(w, timeout_ms);
	rc = exec_watched(kt, w, &o);
out:
	keyturn_close(w);
	exec_opts_clear(&o);
	return rc;
}

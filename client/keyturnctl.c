/* keyturnctl: the command line over libkeyturn. It reads secret values,
 * asks keyturnd to check a secret now, lists what the caller may read, shows
 * the daemon's state and checks a password; see keyturnctl(1). */

#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/kt_io.h"
#include "ctl_exec.h"
#include "ctl_reload.h"
#include "ctl_say.h"
#include "ctl_rotate.h"
#include "ctl_schedule.h"
#include "ctl_show.h"
#include "keyturn.h"
#include "common/kt_json.h"
#include "common/secmem.h"

/* Exit codes, as DESIGN.md and keyturnctl(1) give them. */
enum {
	EXIT_DONE = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_DENIED = 4,
	EXIT_UNAVAILABLE = 5,
};

/* The options that only some commands take, as bits. */
enum {
	O_STAGE = 1 << 0,
	O_VERSION_ID = 1 << 1,
	O_KEY = 1 << 2,
	O_JSON = 1 << 3,
};

/* Long options that have no short form. */
enum { LOPT_STAGE = 0x100, LOPT_VERSION_ID };

/* A password longer than the largest secret AWS stores cannot match. */
#define PASSWORD_MAX 65536

struct opts {
	const char *socket;
	const char *stage;
	const char *version_id;
	const char *key;
	int timeout_ms; /* 0: the library's default */
	bool json;
	unsigned given; /* O_* seen on the command line */
};

struct command {
	const char *name;
	unsigned allowed; /* O_* that this command takes */
	int (*run)(keyturn_t *kt, const struct opts *o, const char *arg);
	bool takes_arg; /* NAME or USER */
	const char *arg_name;
};

static const char usage_text[] =
	"Usage: keyturnctl [--socket PATH] [--timeout SECONDS] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  get NAME [--stage S | --version-id V] [--key K] [--json]\n"
	"                    print a secret's value (AWSCURRENT unless asked otherwise)\n"
	"  refresh NAME [--json]\n"
	"                    ask keyturnd to check NAME with AWS now\n"
	"  list [--json]     the secrets you may read, without values\n"
	"  status [--json]   keyturnd's state\n"
	"  reload [--json]   keyturnd reads its configuration again (root); fails\n"
	"                    when the file is refused, which keeps the one in use\n"
	"  rotate NAME [--json]\n"
	"                    run [rotate:NAME]'s four rotation steps now (root)\n"
	"  schedule EXPR [--from TIME] [--count N]\n"
	"                    the next windows of a rate() or cron() schedule\n"
	"  verify USER [--json]\n"
	"                    check USER's password, read as one line from stdin\n"
	"  watch NAME...     print a line \"NAME VERSION_ID TIME\" per change\n"
	"  exec [--env VAR=SECRET[#KEY]]... [--restart-on-change] [--grace S]\n"
	"       -- COMMAND [ARG...]\n"
	"                    run COMMAND with secrets in its environment; with\n"
	"                    --restart-on-change, restart it after a change\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH     keyturnd's socket (else $KEYTURN_SOCKET, else\n"
	"                        /run/keyturn/keyturnd.sock)\n"
	"  -t, --timeout SECONDS how long to wait for an answer (default 5)\n"
	"      --stage S         read the version carrying staging label S\n"
	"      --version-id V    read version V\n"
	"  -k, --key K           print only member K of a JSON value\n"
	"  -j, --json            print keyturnd's answer as it came\n"
	"  -h, --help            this text\n"
	"  -V, --version         keyturnctl's version\n"
	"\n"
	"Exit status: 0 done, 1 other error (or no match for verify), 2 usage,\n"
	"3 not found, 4 denied, 5 unavailable (also: throttled, no daemon, timeout);\n"
	"rotate: 6 another rotation holds AWSPENDING, 7 AWS refused this host access.\n";

/* --- output ------------------------------------------------------------- */

/* The exit code for a library error code (the map is ctl_exec.c's, which
 * watch and exec share). */
static int exit_code(int err)
{
	return kt_ctl_exit_code(err);
}

/* Reports a failed call: the library's (or daemon's) message, which never
 * holds a value, under WHAT. Returns the exit code for err. */
static int fail(const keyturn_t *kt, const char *what, int err)
{
	const char *msg = kt != NULL ? keyturn_last_message(kt) : NULL;

	if (msg == NULL || *msg == '\0')
		msg = keyturn_strerror(err);
	kt_ctl_say(what, "%s", msg);
	return exit_code(err);
}

/* With --json: the last answer, byte for byte, and a newline only for a
 * terminal (as for values). Returns 0, or -errno when stdout failed. */
static int print_answer(const keyturn_t *kt)
{
	size_t len = 0;
	const char *a = keyturn_last_answer(kt, &len);
	int r;

	if (a == NULL)
		return 0;
	r = kt_write_all(STDOUT_FILENO, a, len);
	if (r == 0 && isatty(STDOUT_FILENO))
		r = kt_write_all(STDOUT_FILENO, "\n", 1);
	return r;
}

/* An exit code for a failed write to stdout. A reader that went away
 * (EPIPE) is not worth a message, as with `keyturnctl list | head -1`. */
static int write_failed(const char *what, int r)
{
	if (r != -EPIPE)
		kt_ctl_say(what, "cannot write to standard output: %s", strerror(-r));
	return EXIT_ERROR;
}

/* Parses an answer the library returned; it holds no value (list, status,
 * refresh). NULL with a message when it does not parse. */
static struct json_object *parse(const char *what, const char *json)
{
	struct json_object *o = kt_json_parse(json, strlen(json));

	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		kt_ctl_say(what, "keyturnd's answer does not parse");
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Shows a metadata answer with show(), or fails when it does not parse. */
static int show(const char *what, const char *json, void (*fn)(struct json_object *))
{
	struct json_object *o = parse(what, json);

	if (o == NULL)
		return EXIT_ERROR;
	fn(o);
	json_object_put(o);
	return EXIT_DONE;
}

/* --- commands -------------------------------------------------------------- */

/* What every command does after its call: with --json, the answer exactly
 * as it came; then the failure, if any. Returns false, with *rc set, when
 * the command ends here; true (rc = EXIT_DONE) when it goes on. */
static bool call_ok(const keyturn_t *kt, const struct opts *o, const char *what, int err, int *rc)
{
	int r;

	if (o->json && (r = print_answer(kt)) < 0) {
		*rc = write_failed(what, r);
		return false;
	}
	if (err != KEYTURN_OK) {
		*rc = fail(kt, what, err);
		return false;
	}
	*rc = EXIT_DONE;
	return true;
}

static int cmd_get(keyturn_t *kt, const struct opts *o, const char *name)
{
	keyturn_value_t *v = NULL;
	const void *data;
	size_t len = 0;
	int err, r, rc;

	err = keyturn_get(kt, name, o->stage, o->version_id, o->key, &v);
	if (!call_ok(kt, o, name, err, &rc) || o->json)
		goto out;
	/* Exactly the stored bytes; a newline only for a person reading a
	 * string, so that $(keyturnctl get ...) and files get the value. */
	data = keyturn_value_data(v, &len);
	r = kt_write_all(STDOUT_FILENO, data, len);
	if (r == 0 && !keyturn_value_is_binary(v) && isatty(STDOUT_FILENO))
		r = kt_write_all(STDOUT_FILENO, "\n", 1);
	if (r < 0) {
		rc = write_failed(name, r);
		goto out;
	}
	if (keyturn_value_is_stale(v))
		kt_ctl_say(
			name,
			"warning: keyturnd could not confirm this value with AWS lately (stale)");
out:
	keyturn_value_free(v);
	return rc;
}

static int cmd_refresh(keyturn_t *kt, const struct opts *o, const char *name)
{
	struct json_object *j = NULL;
	char *json = NULL;
	int err, rc;

	err = keyturn_refresh(kt, name, &json);
	if (!call_ok(kt, o, name, err, &rc) || o->json || json == NULL)
		goto out;
	j = parse(name, json);
	if (j == NULL) {
		rc = EXIT_ERROR;
		goto out;
	}
	ctl_show_secret(j);
out:
	json_object_put(j);
	keyturn_free_string(json);
	return rc;
}

/* list and status: one call, then the answer as it came (--json) or as a
 * table or summary. */
static int cmd_answer(keyturn_t *kt, const struct opts *o, const char *what,
		      int (*call)(keyturn_t *, char **), void (*display)(struct json_object *))
{
	char *json = NULL;
	int err, rc;

	err = call(kt, &json);
	if (call_ok(kt, o, what, err, &rc) && !o->json)
		rc = show(what, json, display);
	keyturn_free_string(json);
	return rc;
}

/* list: the library follows the daemon's pages, so --json prints the
 * answer it hands back (one page as it came, or every page joined) rather
 * than the last page alone. */
static int cmd_list(keyturn_t *kt, const struct opts *o, const char *unused)
{
	char *json = NULL;
	int err, r, rc;

	(void)unused;
	err = keyturn_list(kt, &json);
	if (err != KEYTURN_OK || !o->json) {
		if (call_ok(kt, o, "list", err, &rc))
			rc = show("list", json, ctl_show_list);
		goto out;
	}
	r = kt_write_all(STDOUT_FILENO, json, strlen(json));
	if (r == 0 && isatty(STDOUT_FILENO))
		r = kt_write_all(STDOUT_FILENO, "\n", 1);
	rc = r < 0 ? write_failed("list", r) : EXIT_DONE;
out:
	keyturn_free_string(json);
	return rc;
}

static int cmd_status(keyturn_t *kt, const struct opts *o, const char *unused)
{
	(void)unused;
	return cmd_answer(kt, o, "status", keyturn_status, ctl_show_status);
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Reads one line from stdin into buf (without its newline) with echo off
 * when stdin is a terminal. Bytes are read one at a time so that nothing
 * after the line is taken from a shared stdin. Returns 0 or -errno;
 * -EINTR when a signal came, with the terminal restored. */
static int read_password(char *buf, size_t size, size_t *len)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa, old[4];
	struct termios tio, saved;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	size_t n = 0, i;
	int r = 0;

	/* No SA_RESTART: a signal must end the read so that the terminal's
	 * echo is put back before the process goes. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	if (tty) {
		tio = saved;
		tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
		tio.c_lflag |= ECHONL;
		fputs("Password: ", stderr);
		fflush(stderr);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0) {
			r = -errno;
			goto out;
		}
	}
	for (;;) {
		char c;
		ssize_t got;

		if (got_signal) {
			r = -EINTR;
			break;
		}
		got = read(STDIN_FILENO, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0) {
			/* End of input: a last line without a newline counts. */
			if (n == 0)
				r = -ENODATA;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= size) {
			r = -E2BIG;
			break;
		}
		buf[n++] = c;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		/* The echo was off: end the prompt's line for the next output. */
		if (r == -EINTR)
			fputc('\n', stderr);
	}
out:
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	buf[n] = '\0';
	*len = n;
	if (r != 0)
		kt_wipe(buf, size);
	return r;
}

static int cmd_verify(keyturn_t *kt, const struct opts *o, const char *user)
{
	char *pw = malloc(PASSWORD_MAX + 1);
	const char *tty = isatty(STDIN_FILENO) ? ttyname(STDIN_FILENO) : NULL;
	size_t len = 0;
	int err, r, rc, match = 0;

	if (pw == NULL) {
		kt_ctl_say(user, "out of memory");
		return EXIT_ERROR;
	}
	/* Best effort: keep the password out of swap. */
	(void)mlock(pw, PASSWORD_MAX + 1);
	r = read_password(pw, PASSWORD_MAX + 1, &len);
	if (r == -EINTR) {
		rc = 128 + got_signal;
		goto out;
	}
	if (r != 0) {
		if (r == -ENODATA)
			kt_ctl_say(user, "no password on standard input");
		else if (r == -E2BIG)
			kt_ctl_say(user, "the password is longer than %d bytes", PASSWORD_MAX);
		else
			kt_ctl_say(user, "cannot read the password: %s", strerror(-r));
		rc = EXIT_ERROR;
		goto out;
	}
	err = keyturn_verify(kt, user, pw, len, "keyturnctl", NULL, tty, &match);
	kt_wipe(pw, PASSWORD_MAX + 1);
	if (!call_ok(kt, o, user, err, &rc))
		goto out;
	if (!match) {
		kt_ctl_say(user, "the password does not match");
		rc = EXIT_ERROR;
		goto out;
	}
	if (!o->json && isatty(STDOUT_FILENO))
		printf("%s: the password matches\n", user);
out:
	kt_wipe(pw, PASSWORD_MAX + 1);
	munlock(pw, PASSWORD_MAX + 1);
	free(pw);
	return rc;
}

static int cmd_reload(keyturn_t *kt, const struct opts *o, const char *unused)
{
	(void)kt;
	(void)unused;
	return kt_ctl_reload(o->socket, o->timeout_ms, o->json);
}

static int cmd_rotate(keyturn_t *kt, const struct opts *o, const char *name)
{
	(void)kt;
	return kt_ctl_rotate(o->socket, o->timeout_ms, o->json, name);
}

static const struct command commands[] = {
	{ "get", O_STAGE | O_VERSION_ID | O_KEY | O_JSON, cmd_get, true, "NAME" },
	{ "refresh", O_JSON, cmd_refresh, true, "NAME" },
	{ "list", O_JSON, cmd_list, false, NULL },
	{ "status", O_JSON, cmd_status, false, NULL },
	{ "reload", O_JSON, cmd_reload, false, NULL },
	{ "rotate", O_JSON, cmd_rotate, true, "NAME" },
	{ "verify", O_JSON, cmd_verify, true, "USER" },
};

/* --- main ------------------------------------------------------------------ */

static const char *option_name(unsigned bit)
{
	switch (bit) {
	case O_STAGE:
		return "--stage";
	case O_VERSION_ID:
		return "--version-id";
	case O_KEY:
		return "--key";
	default:
		return "--json";
	}
}

/* Parses the command line into o; the command and its operand stay in
 * argv from *first on. Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct opts *o, int *first)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stage", required_argument, NULL, LOPT_STAGE },
		{ "version-id", required_argument, NULL, LOPT_VERSION_ID },
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:t:k:jhV", longopts, NULL)) != -1) {
		char *end;
		long sec;

		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 't':
			errno = 0;
			sec = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || sec < 1 || sec > 3600)
				return kt_ctl_usage(NULL,
						    "--timeout wants whole seconds from 1 to 3600");
			o->timeout_ms = (int)sec * 1000;
			break;
		case LOPT_STAGE:
			o->stage = optarg;
			o->given |= O_STAGE;
			break;
		case LOPT_VERSION_ID:
			o->version_id = optarg;
			o->given |= O_VERSION_ID;
			break;
		case 'k':
			o->key = optarg;
			o->given |= O_KEY;
			break;
		case 'j':
			o->json = true;
			o->given |= O_JSON;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_DONE;
		case 'V':
			printf("keyturnctl %s\n", PACKAGE_VERSION);
			return EXIT_DONE;
		case ':':
			return kt_ctl_usage(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				return kt_ctl_usage(NULL, "unknown option '-%c'", optopt);
			return kt_ctl_usage(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	*first = optind;
	return -1;
}

/* The position of the command word: global options (and their values)
 * come before it. -1 when there is none. */
static int command_at(int argc, char **argv)
{
	static const char *const with_value[] = { "-s",        "-t",           "-k",    "--socket",
						  "--timeout", "--version-id", "--key", "--stage" };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || a[1] == '\0')
			return i;
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? i + 1 : -1;
		for (size_t j = 0; j < sizeof(with_value) / sizeof(with_value[0]); j++) {
			if (strcmp(a, with_value[j]) == 0)
				i++;
		}
	}
	return -1;
}

/* watch and exec take words and options of their own after the command
 * (COMMAND's options are COMMAND's): only the global options before it
 * are keyturnctl's. */
static int run_own_args(int argc, char **argv, int at)
{
	struct opts o = { 0 };
	keyturn_t *kt = NULL;
	int first = 0, err = 0, rc;

	rc = parse_args(at, argv, &o, &first);
	if (rc >= 0)
		return rc;
	if (o.given != 0)
		return kt_ctl_usage(NULL, "%s does not take %s", argv[at],
				    option_name(o.given & -o.given));
	if (o.socket != NULL && *o.socket == '\0')
		return kt_ctl_usage(NULL, "an option's value is empty");
	kt = keyturn_open(o.socket, &err);
	if (kt == NULL)
		return fail(NULL, o.socket != NULL ? o.socket : argv[at], err);
	if (o.timeout_ms > 0 && (err = keyturn_set_timeout(kt, o.timeout_ms)) != KEYTURN_OK) {
		rc = fail(kt, argv[at], err);
	} else if (strcmp(argv[at], "watch") == 0) {
		rc = kt_ctl_watch(kt, argc - at - 1, argv + at + 1);
	} else {
		rc = kt_ctl_exec(kt, o.socket, o.timeout_ms, argc - at, argv + at);
		/* A failed in-place start has closed kt already and exited. */
	}
	keyturn_close(kt);
	if (fflush(stdout) != 0 && rc == EXIT_DONE)
		rc = write_failed(argv[at], -errno);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	const struct command *cmd = NULL;
	keyturn_t *kt = NULL;
	const char *arg = NULL;
	int first = 0, err = 0, rc, nargs;
	unsigned bit;
	size_t i;

	/* This process holds secrets: no core file, no ptrace by the same
	 * user, and a closed reader of stdout is an error, not a signal. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);

	first = command_at(argc, argv);
	if (first > 0 && strcmp(argv[first], "schedule") == 0)
		return kt_ctl_schedule(argc - first, argv + first);
	if (first > 0 && (strcmp(argv[first], "watch") == 0 || strcmp(argv[first], "exec") == 0))
		return run_own_args(argc, argv, first);
	rc = parse_args(argc, argv, &o, &first);
	if (rc >= 0)
		goto out;
	if (first >= argc) {
		rc = kt_ctl_usage(NULL, "no command given");
		goto out;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[first], commands[i].name) == 0)
			cmd = &commands[i];
	}
	if (cmd == NULL) {
		rc = kt_ctl_usage(NULL, "unknown command '%s'", argv[first]);
		goto out;
	}
	nargs = argc - first - 1;
	if (cmd->takes_arg && nargs != 1) {
		rc = kt_ctl_usage(NULL, "%s wants exactly one %s", cmd->name, cmd->arg_name);
		goto out;
	}
	if (!cmd->takes_arg && nargs != 0) {
		rc = kt_ctl_usage(NULL, "%s takes no arguments", cmd->name);
		goto out;
	}
	for (bit = 1; bit <= O_JSON; bit <<= 1) {
		if ((o.given & bit) && !(cmd->allowed & bit)) {
			rc = kt_ctl_usage(NULL, "%s does not take %s", cmd->name, option_name(bit));
			goto out;
		}
	}
	if (o.stage != NULL && o.version_id != NULL) {
		rc = kt_ctl_usage(NULL, "give --stage or --version-id, not both");
		goto out;
	}
	if (cmd->takes_arg) {
		arg = argv[first + 1];
		if (*arg == '\0') {
			rc = kt_ctl_usage(NULL, "%s: the %s is empty", cmd->name, cmd->arg_name);
			goto out;
		}
	}
	if ((o.stage && !*o.stage) || (o.version_id && !*o.version_id) || (o.key && !*o.key) ||
	    (o.socket && !*o.socket)) {
		rc = kt_ctl_usage(NULL, "an option's value is empty");
		goto out;
	}

	kt = keyturn_open(o.socket, &err);
	if (kt == NULL) {
		rc = fail(NULL, o.socket != NULL ? o.socket : cmd->name, err);
		goto out;
	}
	if (o.timeout_ms > 0 && (err = keyturn_set_timeout(kt, o.timeout_ms)) != KEYTURN_OK) {
		rc = fail(kt, cmd->name, err);
		goto out;
	}
	rc = cmd->run(kt, &o, arg);
out:
	keyturn_close(kt);
	if (fflush(stdout) != 0 && rc == EXIT_DONE)
		rc = write_failed(cmd != NULL ? cmd->name : "stdout", -errno);
	return rc;
}

/* kt-pamtest: runs pam_authenticate() through real libpam for the PAM system
 * tests and prints the PAM code that came back by name. libpamtest (cwrap)
 * runs each operation; under pam_wrapper (LD_PRELOAD=libpam_wrapper.so,
 * PAM_WRAPPER=1, PAM_WRAPPER_SERVICE_DIR=DIR) the service file comes from
 * DIR, or with --confdir DIR from pam_start_confdir(). A test tool: the
 * password comes from stdin, never from argv. */
#include "config.h"

#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpamtest.h>
#include <security/pam_appl.h>

#define MAX_PASSWORD (1024 * 1024)
#define MAX_COUNT 1000000L

#define CODE(x) [x] = #x
static const char *const code_names[] = {
	CODE(PAM_SUCCESS),
	CODE(PAM_OPEN_ERR),
	CODE(PAM_SYMBOL_ERR),
	CODE(PAM_SERVICE_ERR),
	CODE(PAM_SYSTEM_ERR),
	CODE(PAM_BUF_ERR),
	CODE(PAM_PERM_DENIED),
	CODE(PAM_AUTH_ERR),
	CODE(PAM_CRED_INSUFFICIENT),
	CODE(PAM_AUTHINFO_UNAVAIL),
	CODE(PAM_USER_UNKNOWN),
	CODE(PAM_MAXTRIES),
	CODE(PAM_NEW_AUTHTOK_REQD),
	CODE(PAM_ACCT_EXPIRED),
	CODE(PAM_SESSION_ERR),
	CODE(PAM_CRED_UNAVAIL),
	CODE(PAM_CRED_EXPIRED),
	CODE(PAM_CRED_ERR),
	CODE(PAM_NO_MODULE_DATA),
	CODE(PAM_CONV_ERR),
	CODE(PAM_AUTHTOK_ERR),
	CODE(PAM_AUTHTOK_RECOVERY_ERR),
	CODE(PAM_AUTHTOK_LOCK_BUSY),
	CODE(PAM_AUTHTOK_DISABLE_AGING),
	CODE(PAM_TRY_AGAIN),
	CODE(PAM_IGNORE),
	CODE(PAM_ABORT),
	CODE(PAM_AUTHTOK_EXPIRED),
	CODE(PAM_MODULE_UNKNOWN),
	CODE(PAM_BAD_ITEM),
	CODE(PAM_CONV_AGAIN),
	CODE(PAM_INCOMPLETE),
};
#define NCODES ((int)(sizeof(code_names) / sizeof(code_names[0])))

struct conv_ctx {
	const char *password; /* NULL: every prompt fails */
	long prompts;         /* prompts seen, over every authentication */
};

struct run_opts {
	const char *service;
	const char *user;
	const char *rhost;
	const char *tty;
	const char *confdir;
	long count;
	bool same_handle;
	bool no_password;
	bool show_prompts;
	bool check_fds;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kt-pamtest [-n COUNT] [--same-handle] [--rhost HOST] [--tty TTY]\n"
		   "                  [--no-password] [--prompts] [--check-fds] [--confdir DIR]\n"
		   "                  SERVICE USER\n"
		   "       kt-pamtest --strerror PAM_CODE_NAME\n"
		   "  Runs pam_authenticate() COUNT times (default 1), each on a new PAM\n"
		   "  handle unless --same-handle, answering password prompts with the\n"
		   "  first line of stdin (or failing them with --no-password). Prints the\n"
		   "  code's name (COUNT 1), or one \"NAME N\" line per code seen; with\n"
		   "  --prompts also \"prompts=N\"; with --check-fds \"fds_left=N\", the\n"
		   "  descriptors open after the last pam_end() that were not open before.\n"
		   "  Exit: 0 all PAM_SUCCESS, 1 not, 2 error.\n");
}

static const char *code_name(int rc)
{
	if (rc >= 0 && rc < NCODES && code_names[rc] != NULL)
		return code_names[rc];
	return "PAM_UNKNOWN_CODE";
}

static int code_by_name(const char *name)
{
	for (int i = 0; i < NCODES; i++) {
		if (code_names[i] != NULL && strcmp(code_names[i], name) == 0)
			return i;
	}
	return -1;
}

/* The conversation: password prompts get the password; anything asked with
 * echo on fails (the user is given to pam_start); messages go to stderr. */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_ctx *ctx = data;
	struct pam_response *r;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			ctx->prompts++;
			if (ctx->password == NULL)
				goto fail;
			r[i].resp = strdup(ctx->password);
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_PROMPT_ECHO_ON:
			ctx->prompts++;
			goto fail;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			fprintf(stderr, "kt-pamtest: message: %s\n", msg[i]->msg);
			break;
		default:
			goto fail;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (int i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
	return PAM_CONV_ERR;
}

/* How many descriptors this process has open, or -1. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static int start(const struct run_opts *o, struct pam_conv *pc, pam_handle_t **ph)
{
	int rc;

#ifdef HAVE_PAM_START_CONFDIR
	if (o->confdir != NULL)
		rc = pam_start_confdir(o->service, o->user, pc, o->confdir, ph);
	else
#endif
		rc = pam_start(o->service, o->user, pc, ph);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "kt-pamtest: pam_start(%s): %s\n", o->service, code_name(rc));
		return rc;
	}
	if (o->rhost != NULL && (rc = pam_set_item(*ph, PAM_RHOST, o->rhost)) != PAM_SUCCESS)
		goto fail;
	if (o->tty != NULL && (rc = pam_set_item(*ph, PAM_TTY, o->tty)) != PAM_SUCCESS)
		goto fail;
	return PAM_SUCCESS;
fail:
	fprintf(stderr, "kt-pamtest: pam_set_item: %s\n", code_name(rc));
	pam_end(*ph, rc);
	*ph = NULL;
	return rc;
}

/* One pam_authenticate() through libpamtest on ph. KEEPHANDLE comes first
 * so that libpamtest leaves pam_end() to us whatever the result (it stops
 * at the first case whose code is not the expected one). _pamtest_conv() is
 * called directly: libpamtest.h's run_pamtest_conv() macro does not compile
 * in libpamtest 1.1.4 (a misplaced parenthesis). */
static int authenticate(pam_handle_t *ph, struct conv_ctx *ctx, const char *service,
			const char *user, int *result)
{
	struct pam_testcase cases[] = {
		pam_test(PAMTEST_KEEPHANDLE, PAM_SUCCESS),
		pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
	};
	enum pamtest_err perr;

	perr = _pamtest_conv(service, user, conv, ctx, cases, sizeof(cases) / sizeof(cases[0]), ph);
	if (perr != PAMTEST_ERR_OK && perr != PAMTEST_ERR_CASE) {
		fprintf(stderr, "kt-pamtest: libpamtest: %s\n", pamtest_strerror(perr));
		return -1;
	}
	*result = cases[1].op_rv;
	return 0;
}

static int run(const struct run_opts *o, struct conv_ctx *ctx)
{
	struct pam_conv pc = { .conv = conv, .appdata_ptr = ctx };
	pam_handle_t *ph = NULL;
	long counts[NCODES + 1];
	int rc = 0, result, seen = 0, fds = count_fds();

	memset(counts, 0, sizeof(counts));
	for (long i = 0; i < o->count; i++) {
		if (ph == NULL && start(o, &pc, &ph) != PAM_SUCCESS) {
			rc = 2;
			goto out;
		}
		if (authenticate(ph, ctx, o->service, o->user, &result) < 0) {
			rc = 2;
			goto out;
		}
		counts[result >= 0 && result < NCODES ? result : NCODES]++;
		seen = result;
		if (!o->same_handle) {
			pam_end(ph, result);
			ph = NULL;
		}
	}
	if (o->count == 1) {
		printf("%s\n", code_name(seen));
	} else {
		for (int c = 0; c <= NCODES; c++) {
			if (counts[c] > 0)
				printf("%s %ld\n", c < NCODES ? code_name(c) : "PAM_UNKNOWN_CODE",
				       counts[c]);
		}
	}
	if (o->show_prompts)
		printf("prompts=%ld\n", ctx->prompts);
	if (o->check_fds) {
		if (ph != NULL) {
			pam_end(ph, seen);
			ph = NULL;
		}
		printf("fds_left=%d\n", count_fds() - fds);
	}
	rc = counts[PAM_SUCCESS] == o->count ? 0 : 1;
out:
	if (ph != NULL)
		pam_end(ph, PAM_SUCCESS);
	return rc;
}

/* The first line of stdin, without its newline. */
static char *read_password(void)
{
	char *buf = malloc(MAX_PASSWORD + 2);
	size_t n = 0;
	int c;

	if (buf == NULL)
		return NULL;
	while ((c = getchar()) != EOF && c != '\n') {
		if (n > MAX_PASSWORD) {
			explicit_bzero(buf, n);
			free(buf);
			fprintf(stderr, "kt-pamtest: the password is longer than %d bytes\n",
				MAX_PASSWORD);
			return NULL;
		}
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	enum {
		OPT_SAME = 256,
		OPT_RHOST,
		OPT_TTY,
		OPT_NOPW,
		OPT_PROMPTS,
		OPT_FDS,
		OPT_CONFDIR,
		OPT_STRERR
	};
	static const struct option lopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "same-handle", no_argument, NULL, OPT_SAME },
		{ "rhost", required_argument, NULL, OPT_RHOST },
		{ "tty", required_argument, NULL, OPT_TTY },
		{ "no-password", no_argument, NULL, OPT_NOPW },
		{ "prompts", no_argument, NULL, OPT_PROMPTS },
		{ "check-fds", no_argument, NULL, OPT_FDS },
		{ "confdir", required_argument, NULL, OPT_CONFDIR },
		{ "strerror", required_argument, NULL, OPT_STRERR },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o = { .count = 1 };
	struct conv_ctx ctx = { 0 };
	char *password = NULL, *end;
	int c, rc = 2;

	while ((c = getopt_long(argc, argv, "n:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			o.count = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg || o.count < 1 ||
			    o.count > MAX_COUNT) {
				fprintf(stderr, "kt-pamtest: bad count %s\n", optarg);
				goto out;
			}
			break;
		case OPT_SAME:
			o.same_handle = true;
			break;
		case OPT_RHOST:
			o.rhost = optarg;
			break;
		case OPT_TTY:
			o.tty = optarg;
			break;
		case OPT_NOPW:
			o.no_password = true;
			break;
		case OPT_PROMPTS:
			o.show_prompts = true;
			break;
		case OPT_FDS:
			o.check_fds = true;
			break;
		case OPT_CONFDIR:
#ifdef HAVE_PAM_START_CONFDIR
			o.confdir = optarg;
			break;
#else
			fprintf(stderr, "kt-pamtest: this libpam has no pam_start_confdir()\n");
			goto out;
#endif
		case OPT_STRERR: {
			int code = code_by_name(optarg);

			if (code < 0) {
				fprintf(stderr, "kt-pamtest: unknown code %s\n", optarg);
				goto out;
			}
			printf("%s\n", pam_strerror(NULL, code));
			rc = 0;
			goto out;
		}
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		goto out;
	}
	o.service = argv[optind];
	o.user = argv[optind + 1];
	if (!o.no_password) {
		password = read_password();
		if (password == NULL)
			goto out;
		ctx.password = password;
	}
	rc = run(&o, &ctx);
out:
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}

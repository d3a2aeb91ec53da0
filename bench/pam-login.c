/* What a password login through pam_keyturn costs: the latency of a whole
 * pam_start(), pam_authenticate(), pam_end() through a service file that
 * calls pam_keyturn.so, against the same stack with pam_permit.so as the
 * floor (what libpam alone costs). Prints figures, never judges them. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <security/pam_appl.h>

#define MAX_PASSWORD 4096
#define MAX_COUNT 1000000L
#define SVC_KEYTURN "kt-bench-keyturn"
#define SVC_PERMIT "kt-bench-permit"

struct bench_opts {
	const char *user;
	const char *socket_path;
	const char *module;
	const char *module_args;
	const char *password_file;
	long count;
	long warmup;
};

/* One stack's figures: the whole login, and pam_authenticate() alone. */
struct series {
	const char *label;
	const char *service;
	uint64_t *login_ns;
	uint64_t *auth_ns;
	long n;
	long failures;
	int last_failure;
};

static const char *password;
static char confdir[4096];

static void usage(FILE *f)
{
	fprintf(f, "usage: pam-login --user USER [--socket PATH] [--module PATH] [--args ARGS]\n"
		   "                 [--password-file FILE] [--count N] [--warmup N]\n"
		   "  The password is the first line of FILE, else of stdin (never an argument).\n"
		   "  --module defaults to pam_keyturn.so in the PAM module directory;\n"
		   "  --socket is passed as socket=PATH; --args adds more module arguments.\n"
		   "  Prints, for each stack: n, failures, and p50/p99/max of the whole login\n"
		   "  (pam_start to pam_end) and of pam_authenticate() alone, in microseconds.\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r;

	(void)data;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF)
			continue;
		r[i].resp = strdup(password);
		if (r[i].resp == NULL) {
			for (int j = 0; j < i; j++) {
				explicit_bzero(r[j].resp, strlen(r[j].resp));
				free(r[j].resp);
			}
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int start(const char *service, const char *user, pam_handle_t **ph)
{
	static struct pam_conv pc = { .conv = conv, .appdata_ptr = NULL };

#ifdef HAVE_PAM_START_CONFDIR
	return pam_start_confdir(service, user, &pc, confdir, ph);
#else
	/* Without pam_start_confdir(), run under pam_wrapper with
	 * PAM_WRAPPER_SERVICE_DIR set to the directory made below. */
	return pam_start(service, user, &pc, ph);
#endif
}

/* One login; its two latencies go to s at index i when i >= 0. */
static void login(struct series *s, const char *user, long i)
{
	pam_handle_t *ph = NULL;
	uint64_t t0, t1, t2;
	int rc;

	t0 = now_ns();
	rc = start(s->service, user, &ph);
	if (rc != PAM_SUCCESS) {
		s->failures++;
		s->last_failure = rc;
		return;
	}
	t1 = now_ns();
	rc = pam_authenticate(ph, PAM_SILENT);
	t2 = now_ns();
	pam_end(ph, rc);
	if (i < 0)
		return;
	s->login_ns[i] = now_ns() - t0;
	s->auth_ns[i] = t2 - t1;
	s->n = i + 1;
	if (rc != PAM_SUCCESS) {
		s->failures++;
		s->last_failure = rc;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n), in microseconds. */
static double pct(const uint64_t *v, long n, double p)
{
	long k;

	if (n == 0)
		return 0;
	k = (long)(p / 100.0 * (double)n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return (double)v[k] / 1000.0;
}

static void report(struct series *s)
{
	qsort(s->login_ns, (size_t)s->n, sizeof(uint64_t), cmp_u64);
	qsort(s->auth_ns, (size_t)s->n, sizeof(uint64_t), cmp_u64);
	printf("stack=%-8s n=%ld failures=%ld login_p50=%.1fus login_p99=%.1fus "
	       "login_max=%.1fus auth_p50=%.1fus auth_p99=%.1fus",
	       s->label, s->n, s->failures, pct(s->login_ns, s->n, 50), pct(s->login_ns, s->n, 99),
	       pct(s->login_ns, s->n, 100), pct(s->auth_ns, s->n, 50), pct(s->auth_ns, s->n, 99));
	if (s->failures > 0)
		printf(" last_failure=\"%s\"", pam_strerror(NULL, s->last_failure));
	printf("\n");
}

static int write_service(const char *name, const char *line)
{
	char path[sizeof(confdir) + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", confdir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, "%s\naccount required pam_permit.so\n", line);
	return fclose(f) == 0 ? 0 : -EIO;
}

static void remove_services(void)
{
	char path[sizeof(confdir) + 64];

	if (confdir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/%s", confdir, SVC_KEYTURN);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", confdir, SVC_PERMIT);
	unlink(path);
#ifdef HAVE_PAM_START_CONFDIR
	rmdir(confdir);
#endif
}

/* The first line of FILE (stdin for NULL), without its newline. */
static char *read_password(const char *file)
{
	FILE *f = file != NULL ? fopen(file, "r") : stdin;
	char *buf = NULL;
	size_t n = 0;
	int c;

	if (f == NULL)
		return NULL;
	buf = malloc(MAX_PASSWORD + 1);
	while (buf != NULL && (c = getc(f)) != EOF && c != '\n') {
		if (n == MAX_PASSWORD) {
			explicit_bzero(buf, n);
			free(buf);
			buf = NULL;
			break;
		}
		buf[n++] = (char)c;
	}
	if (buf != NULL)
		buf[n] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static long parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > MAX_COUNT)
		return -1;
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "socket", required_argument, NULL, 's' },
		{ "module", required_argument, NULL, 'm' },
		{ "args", required_argument, NULL, 'a' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = {
		.module = "pam_keyturn.so", .module_args = "", .count = 1000, .warmup = 50
	};
	struct series s[2] = {
		{ .label = "permit", .service = SVC_PERMIT },
		{ .label = "keyturn", .service = SVC_KEYTURN },
	};
	char line[4096], *pw = NULL;
	const char *tmp;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "u:s:m:a:p:n:w:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o.user = optarg;
			break;
		case 's':
			o.socket_path = optarg;
			break;
		case 'm':
			o.module = optarg;
			break;
		case 'a':
			o.module_args = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'n':
			if ((o.count = parse_count(optarg)) < 1)
				goto bad;
			break;
		case 'w':
			if ((o.warmup = parse_count(optarg)) < 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || o.user == NULL)
		goto bad;

	pw = read_password(o.password_file);
	if (pw == NULL) {
		fprintf(stderr, "pam-login: no password (at most %d bytes) in %s\n", MAX_PASSWORD,
			o.password_file != NULL ? o.password_file : "stdin");
		goto out;
	}
	password = pw;

#ifdef HAVE_PAM_START_CONFDIR
	tmp = getenv("TMPDIR");
	/* A directory of its own, made 0700 (mkdir never follows a symbolic
	 * link left at the name); a name taken is tried with the next number. */
	for (int i = 0;; i++) {
		snprintf(confdir, sizeof(confdir), "%s/kt-pam-login.%ld.%d",
			 tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (long)getpid(), i);
		if (mkdir(confdir, 0700) == 0)
			break;
		if (errno != EEXIST || i == 100) {
			fprintf(stderr, "pam-login: cannot make %s: %s\n", confdir,
				strerror(errno));
			confdir[0] = '\0';
			goto out;
		}
	}
#else
	tmp = getenv("PAM_WRAPPER_SERVICE_DIR");
	if (tmp == NULL || getenv("PAM_WRAPPER") == NULL) {
		fprintf(stderr, "pam-login: this libpam has no pam_start_confdir(); run under "
				"pam_wrapper with PAM_WRAPPER_SERVICE_DIR set\n");
		goto out;
	}
	snprintf(confdir, sizeof(confdir), "%s", tmp);
#endif
	snprintf(line, sizeof(line), "auth required %s%s%s %s", o.module,
		 o.socket_path != NULL ? " socket=" : "",
		 o.socket_path != NULL ? o.socket_path : "", o.module_args);
	if (write_service(SVC_KEYTURN, line) < 0 ||
	    write_service(SVC_PERMIT, "auth required pam_permit.so") < 0) {
		fprintf(stderr, "pam-login: cannot write service files in %s\n", confdir);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		s[k].login_ns = calloc((size_t)o.count, sizeof(uint64_t));
		s[k].auth_ns = calloc((size_t)o.count, sizeof(uint64_t));
		if (s[k].login_ns == NULL || s[k].auth_ns == NULL) {
			fprintf(stderr, "pam-login: out of memory\n");
			goto out;
		}
	}

	printf("pam-login: user=%s module=%s%s%s count=%ld warmup=%ld\n", o.user, o.module,
	       o.socket_path != NULL ? " socket=" : "", o.socket_path != NULL ? o.socket_path : "",
	       o.count, o.warmup);
	/* The stacks alternate, login by login, so that load from elsewhere
	 * on the host falls on both alike. */
	for (long i = 0; i < o.warmup; i++) {
		login(&s[0], o.user, -1);
		login(&s[1], o.user, -1);
	}
	s[0].failures = s[1].failures = 0;
	for (long i = 0; i < o.count; i++) {
		login(&s[0], o.user, i);
		login(&s[1], o.user, i);
	}
	report(&s[0]);
	report(&s[1]);
	if (s[0].n > 0 && s[1].n > 0 && pct(s[0].login_ns, s[0].n, 50) > 0)
		printf("keyturn/permit login_p50_ratio=%.2f login_p99_ratio=%.2f\n",
		       pct(s[1].login_ns, s[1].n, 50) / pct(s[0].login_ns, s[0].n, 50),
		       pct(s[1].login_ns, s[1].n, 99) / pct(s[0].login_ns, s[0].n, 99));
	rc = 0;
out:
	remove_services();
	for (int k = 0; k < 2; k++) {
		free(s[k].login_ns);
		free(s[k].auth_ns);
	}
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	return rc;
bad:
	usage(stderr);
	return 2;
}

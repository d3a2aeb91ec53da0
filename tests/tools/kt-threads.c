/* kt-threads: libkeyturn under threads and fork, for the system tests.
 *
 *   kt-threads SOCKET NAME THREADS ROUNDS
 *       THREADS threads, each with its own handle, read NAME ROUNDS times
 *       at once; every value must equal the one read first.
 *   kt-threads --fork SOCKET NAME
 *       one handle reads NAME, the process forks, and child and parent both
 *       read through that same inherited handle at the same time.
 *
 * Prints one summary line; exits 0 when every read worked and matched. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyturn.h"

/* Reads per side in --fork mode: enough that parent and child overlap. */
#define FORK_ROUNDS 50
#define MAX_THREADS 1024
#define MAX_ROUNDS 100000

/* The value read first, which every later read must equal. */
static unsigned char *ref_data;
static size_t ref_len;
static int ref_binary;

static const char *sock_path;
static const char *secret;
static pthread_barrier_t start_line;

struct worker {
	pthread_t tid;
	long rounds;
	long ok;
	long errors;
	long mismatches;
	int first_err;
	char first_msg[256];
};

/* Reads NAME once through kt. Returns 0 (match), 1 (mismatch) or the
 * library's error code (negated), keeping the first message in w. */
static int read_once(keyturn_t *kt, struct worker *w)
{
	keyturn_value_t *v = NULL;
	const void *data;
	size_t len = 0;
	int err, r;

	err = keyturn_get(kt, secret, NULL, NULL, NULL, &v);
	if (err != KEYTURN_OK) {
		if (w != NULL && w->first_err == 0) {
			w->first_err = err;
			snprintf(w->first_msg, sizeof(w->first_msg), "%s",
				 keyturn_last_message(kt));
		}
		return -err;
	}
	data = keyturn_value_data(v, &len);
	r = (len == ref_len && keyturn_value_is_binary(v) == ref_binary &&
	     memcmp(data, ref_data, len) == 0)
		    ? 0
		    : 1;
	keyturn_value_free(v);
	return r;
}

/* Opens a handle and takes the reference value with it. */
static keyturn_t *first_read(void)
{
	keyturn_value_t *v = NULL;
	keyturn_t *kt;
	const void *data;
	int err = 0;

	kt = keyturn_open(sock_path, &err);
	if (kt == NULL) {
		fprintf(stderr, "kt-threads: open: %s\n", keyturn_strerror(err));
		return NULL;
	}
	err = keyturn_get(kt, secret, NULL, NULL, NULL, &v);
	if (err != KEYTURN_OK) {
		fprintf(stderr, "kt-threads: first read of %s: %s: %s\n", secret,
			keyturn_strerror(err), keyturn_last_message(kt));
		keyturn_close(kt);
		return NULL;
	}
	data = keyturn_value_data(v, &ref_len);
	ref_binary = keyturn_value_is_binary(v);
	ref_data = malloc(ref_len + 1);
	if (ref_data != NULL)
		memcpy(ref_data, data, ref_len);
	keyturn_value_free(v);
	if (ref_data == NULL) {
		fprintf(stderr, "kt-threads: out of memory\n");
		keyturn_close(kt);
		return NULL;
	}
	return kt;
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;
	keyturn_t *kt;
	int err = 0;
	long i;

	/* Its own handle, as keyturn.h asks of threads. */
	kt = keyturn_open(sock_path, &err);
	pthread_barrier_wait(&start_line);
	if (kt == NULL) {
		w->errors = w->rounds;
		w->first_err = err;
		snprintf(w->first_msg, sizeof(w->first_msg), "keyturn_open failed");
		return NULL;
	}
	for (i = 0; i < w->rounds; i++) {
		int r = read_once(kt, w);

		if (r == 0)
			w->ok++;
		else if (r == 1)
			w->mismatches++;
		else
			w->errors++;
	}
	keyturn_close(kt);
	return NULL;
}

/* A count from the command line: digits only, within [1, max]. */
static long count_arg(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max)
		return -1;
	return v;
}

static int run_threads(long nthreads, long rounds)
{
	struct worker *w = calloc((size_t)nthreads, sizeof(*w));
	long i, started = 0, ok = 0, errors = 0, mismatches = 0;
	keyturn_t *kt = NULL;
	int rc = 1;

	if (w == NULL)
		goto out;
	kt = first_read();
	if (kt == NULL)
		goto out;
	if (pthread_barrier_init(&start_line, NULL, (unsigned)nthreads) != 0)
		goto out;
	for (i = 0; i < nthreads; i++) {
		w[i].rounds = rounds;
		if (pthread_create(&w[i].tid, NULL, thread_main, &w[i]) != 0) {
			/* The barrier waits for all: a missing thread is fatal here. */
			fprintf(stderr, "kt-threads: cannot start thread %ld\n", i);
			exit(1);
		}
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		ok += w[i].ok;
		errors += w[i].errors;
		mismatches += w[i].mismatches;
		if (w[i].first_err != 0)
			fprintf(stderr, "kt-threads: thread %ld: %s: %s\n", i,
				keyturn_strerror(w[i].first_err), w[i].first_msg);
	}
	pthread_barrier_destroy(&start_line);
	printf("kt-threads: %ld threads x %ld reads: %ld ok, %ld errors, %ld mismatches\n",
	       nthreads, rounds, ok, errors, mismatches);
	rc = (ok == nthreads * rounds && errors == 0 && mismatches == 0) ? 0 : 1;
out:
	keyturn_close(kt);
	free(w);
	return rc;
}

/* FORK_ROUNDS reads through kt; prints what happened as WHO. */
static int read_rounds(keyturn_t *kt, const char *who)
{
	struct worker w;
	long i;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < FORK_ROUNDS; i++) {
		int r = read_once(kt, &w);

		if (r == 0)
			w.ok++;
		else if (r == 1)
			w.mismatches++;
		else
			w.errors++;
	}
	if (w.first_err != 0)
		fprintf(stderr, "kt-threads: %s: %s: %s\n", who, keyturn_strerror(w.first_err),
			w.first_msg);
	printf("kt-threads: %s: %ld reads: %ld ok, %ld errors, %ld mismatches\n", who,
	       (long)FORK_ROUNDS, w.ok, w.errors, w.mismatches);
	fflush(stdout);
	return w.ok == FORK_ROUNDS ? 0 : 1;
}

static int run_fork(void)
{
	keyturn_t *kt = first_read();
	int rc = 1, status = 0, parent_rc;
	pid_t pid;

	if (kt == NULL)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("kt-threads: fork");
		goto out;
	}
	if (pid == 0) {
		/* The child uses the handle it inherited, as keyturn.h allows. */
		rc = read_rounds(kt, "child");
		keyturn_close(kt);
		free(ref_data);
		exit(rc);
	}
	parent_rc = read_rounds(kt, "parent");
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("kt-threads: waitpid");
			goto out;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("kt-threads: the child failed (status 0x%x)\n", (unsigned)status);
		goto out;
	}
	/* And the parent's own connection still works after the child's end. */
	if (parent_rc != 0 || read_once(kt, NULL) != 0)
		goto out;
	printf("kt-threads: fork: parent and child read the same value through one handle\n");
	rc = 0;
out:
	keyturn_close(kt);
	return rc;
}

int main(int argc, char **argv)
{
	long nthreads, rounds;
	int rc;

	if (argc == 4 && strcmp(argv[1], "--fork") == 0) {
		sock_path = argv[2];
		secret = argv[3];
		rc = run_fork();
	} else if (argc == 5) {
		sock_path = argv[1];
		secret = argv[2];
		nthreads = count_arg(argv[3], MAX_THREADS);
		rounds = count_arg(argv[4], MAX_ROUNDS);
		if (nthreads < 0 || rounds < 0) {
			fprintf(stderr, "kt-threads: THREADS is 1 to %d, ROUNDS 1 to %d\n",
				MAX_THREADS, MAX_ROUNDS);
			return 2;
		}
		rc = run_threads(nthreads, rounds);
	} else {
		fprintf(stderr, "usage: kt-threads SOCKET NAME THREADS ROUNDS\n"
				"       kt-threads --fork SOCKET NAME\n");
		return 2;
	}
	free(ref_data);
	return rc;
}

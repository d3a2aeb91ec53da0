/* dbclient: how a service reads its database password with libkeyturn, and
 * what it does when the database refuses it because the secret was rotated.
 *
 * Build:  cc dbclient.c $(pkg-config --cflags --libs keyturn) -o dbclient
 * Run:    DBCLIENT_DB_PASSWORD_FILE=/path/to/file ./dbclient [SECRET]
 *
 * There is no real database here: db_connect() stands for one, and accepts
 * the password written in the file that DBCLIENT_DB_PASSWORD_FILE names (the
 * file plays the database's side of a rotation: change it, and the old
 * password stops working). SECRET defaults to "app/db", a JSON secret with a
 * "password" member, as Secrets Manager's rotation templates make them.
 * The socket is the default one, or KEYTURN_SOCKET. Exit status: 0 when
 * connected, 1 when not. */

/* nanosleep() is POSIX: ask for it, so the example builds with -std=c99 too. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keyturn.h>

/* How many times the service asks keyturnd to check the secret after the
 * database refused a password, before it gives up (and, in a real service,
 * tries again later). Bounded, so a wrong secret cannot make a busy loop. */
#define MAX_REFRESHES 3

/* Wipes memory that held a password; the volatile pointer keeps the
 * compiler from dropping stores to memory that is freed next. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *c = p;

	while (n-- > 0)
		*c++ = 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The stand-in for a database login: 0 when the password is the one the
 * "database" holds now, -1 when it refuses it. The comparison takes the same
 * time whatever the bytes, as a real server's should. */
static int db_connect(const char *password, size_t len)
{
	const char *path = getenv("DBCLIENT_DB_PASSWORD_FILE");
	char want[4096];
	unsigned char diff = 0;
	size_t n, i;
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(want, 1, sizeof(want), f);
	fclose(f);
	/* A trailing newline in the file is not part of the password. */
	if (n > 0 && want[n - 1] == '\n')
		n--;
	if (n != len) {
		wipe(want, sizeof(want));
		return -1;
	}
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(want[i] ^ password[i]);
	wipe(want, sizeof(want));
	return diff == 0 ? 0 : -1;
}

/* Reads the "password" member of the secret and tries it on the database.
 * Returns 0 when connected, 1 when the database refused the password, or -1
 * when keyturnd could not give a password at all (reported on stderr). */
static int try_login(keyturn_t *kt, const char *secret)
{
	keyturn_value_t *v = NULL;
	const char *password;
	size_t len = 0;
	int err, rc;

	/* AWSCURRENT (stage and version_id NULL), only its "password" member. */
	err = keyturn_get(kt, secret, NULL, NULL, "password", &v);
	if (err != KEYTURN_OK) {
		/* keyturn_last_message() never holds a secret: safe to log. */
		fprintf(stderr, "dbclient: %s: %s\n", secret, keyturn_last_message(kt));
		return -1;
	}
	password = keyturn_value_data(v, &len);
	rc = db_connect(password, len) == 0 ? 0 : 1;
	/* Frees and wipes the value; no copy of the password is left here. */
	keyturn_value_free(v);
	return rc;
}

int main(int argc, char **argv)
{
	const char *secret = argc > 1 ? argv[1] : "app/db";
	keyturn_t *kt;
	int err = 0, attempt, rc = 1;

	/* NULL: the socket from KEYTURN_SOCKET, else the default path. The
	 * connection is made on the first request and kept for the next ones. */
	kt = keyturn_open(NULL, &err);
	if (kt == NULL) {
		fprintf(stderr, "dbclient: %s\n", keyturn_strerror(err));
		return 1;
	}
	for (attempt = 0; attempt <= MAX_REFRESHES; attempt++) {
		int r = try_login(kt, secret);

		if (r == 0) {
			printf("dbclient: connected with the password of %s\n", secret);
			rc = 0;
			break;
		}
		if (r < 0 || attempt == MAX_REFRESHES)
			break;
		/* The database refused the password: the secret was probably
		 * rotated after keyturnd's last check. Ask keyturnd to check
		 * with AWS now, then read the password again. keyturnd limits
		 * how often a secret is checked; when it says "throttled", wait
		 * a little and read again (someone else's check may have found
		 * the new version already). */
		fprintf(stderr, "dbclient: the database refused the password; refreshing %s\n",
			secret);
		err = keyturn_refresh(kt, secret, NULL);
		if (err == KEYTURN_E_THROTTLED)
			sleep_ms(1000L << attempt);
		else if (err != KEYTURN_OK)
			fprintf(stderr, "dbclient: refresh %s: %s\n", secret,
				keyturn_last_message(kt));
	}
	if (rc != 0)
		fprintf(stderr, "dbclient: could not connect to the database\n");
	keyturn_close(kt);
	return rc;
}

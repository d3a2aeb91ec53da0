/* yescrypt hashes for the offline verifiers, made and checked with
 * libxcrypt's crypt_gensalt_rn and crypt_rn as /etc/shadow's are. A hash or
 * a check takes about 80 ms and 16 MiB of scratch memory (the library's
 * default cost). */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "verifier.h"

/* The characters of crypt(3) output: the salt/hash alphabet "./0-9A-Za-z",
 * '$' between fields, and ',' '=' of parameter fields such as "rounds=". */
bool kt_verifier_hash_ok(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '$')
		return false;
	n = strnlen(s, KT_VERIFIER_HASH_MAX);
	if (n < 4 || n >= KT_VERIFIER_HASH_MAX)
		return false;
	return strspn(s, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$,=") ==
	       n;
}

/* crypt(3) takes a C string, so a password holding a NUL byte would be
 * hashed shortened: it is refused instead. libcrypt itself refuses phrases
 * of CRYPT_MAX_PASSPHRASE_SIZE bytes or more. The copy is freed wiped, with
 * len + 1 bytes. */
static int vf_phrase(const void *password, size_t len, char **out)
{
	char *s = NULL;
	int rc;

	*out = NULL;
	if ((password == NULL && len > 0) || (len > 0 && memchr(password, '\0', len) != NULL)) {
		rc = -EINVAL;
		goto out;
	}
	if (len >= CRYPT_MAX_PASSPHRASE_SIZE) {
		rc = -ERANGE;
		goto out;
	}
	s = malloc(len + 1);
	if (s == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (len > 0)
		memcpy(s, password, len);
	s[len] = '\0';
	*out = s;
	rc = 0;
out:
	return rc;
}

/* Runs crypt_rn with its scratch space on the heap: struct crypt_data is
 * tens of KiB, too much for a daemon thread's stack, and it holds copies of
 * the phrase, so it is wiped before it is freed. */
static int vf_crypt(const char *phrase, const char *setting, char out[KT_VERIFIER_HASH_MAX])
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;
	size_t n;
	int rc;

	out[0] = '\0';
	if (cd == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	errno = 0;
	h = crypt_rn(phrase, setting, cd, (int)sizeof(*cd));
	/* crypt_rn returns NULL on failure; a '*' "failure token" is checked
	 * too, as every crypt(3) caller should. */
	if (h == NULL || h[0] == '*') {
		rc = errno > 0 ? -errno : -EINVAL;
		goto out;
	}
	n = strlen(h);
	if (n >= KT_VERIFIER_HASH_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	memcpy(out, h, n + 1);
	rc = 0;
out:
	kt_free_wiped(cd, sizeof(*cd));
	return rc;
}

int kt_verifier_hash(const void *password, size_t len, char out[KT_VERIFIER_HASH_MAX], char *err,
		     size_t errlen)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char *phrase = NULL;
	int rc;

	out[0] = '\0';
	setting[0] = '\0';
	rc = vf_phrase(password, len, &phrase);
	if (rc == -EINVAL) {
		kt_errf(err, errlen, "the password holds a NUL byte, which crypt(3) cannot take");
		goto out;
	}
	if (rc == -ERANGE) {
		kt_errf(err, errlen, "the password is longer than crypt(3) takes (%d bytes)",
			CRYPT_MAX_PASSPHRASE_SIZE - 1);
		goto out;
	}
	if (rc < 0) {
		kt_errf(err, errlen, "cannot hash a password: %s", strerror(-rc));
		goto out;
	}
	/* Count 0 is libcrypt's default cost; no random bytes passed means
	 * libcrypt draws the salt from the kernel itself. */
	errno = 0;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, (int)sizeof(setting)) == NULL ||
	    setting[0] == '*') {
		rc = errno > 0 ? -errno : -EIO;
		kt_errf(err, errlen, "crypt_gensalt_rn(yescrypt): %s", strerror(-rc));
		goto out;
	}
	rc = vf_crypt(phrase, setting, out);
	if (rc < 0)
		kt_errf(err, errlen, "crypt_rn(yescrypt): %s", strerror(-rc));
out:
	if (phrase != NULL)
		kt_free_wiped(phrase, len + 1);
	kt_wipe(setting, sizeof(setting));
	if (rc < 0)
		kt_wipe(out, KT_VERIFIER_HASH_MAX);
	return rc;
}

int kt_verifier_check(const char *hash, const void *password, size_t len)
{
	char computed[KT_VERIFIER_HASH_MAX];
	char *phrase = NULL;
	size_t hlen;
	int rc;

	computed[0] = '\0';
	if (!kt_verifier_hash_ok(hash)) {
		rc = -EINVAL;
		goto out;
	}
	rc = vf_phrase(password, len, &phrase);
	if (rc < 0)
		goto out;
	rc = vf_crypt(phrase, hash, computed);
	if (rc < 0)
		goto out;
	/* The length of a hash is public; its bytes are compared in constant
	 * time so that a mismatch does not tell how much of it was right. */
	hlen = strlen(hash);
	rc = strlen(computed) == hlen && kt_ct_equal(computed, hash, hlen) ? 1 : 0;
out:
	if (phrase != NULL)
		kt_free_wiped(phrase, len + 1);
	kt_wipe(computed, sizeof(computed));
	return rc;
}

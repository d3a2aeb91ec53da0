/* Offline login verifiers: a yescrypt hash (libcrypt, as /etc/shadow uses)
 * of a login secret's AWSCURRENT password, and of AWSPREVIOUS while its
 * grace lasts, kept in state_dir so that logins keep working when keyturnd
 * restarts while AWS is out of reach. One file per (secret id, JSON key),
 * written atomically, mode 0600. */
#ifndef KT_VERIFIER_H
#define KT_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Long enough for any crypt(3) output libcrypt produces. */
#define KT_VERIFIER_HASH_MAX 256

struct kt_verifier {
	char *secret_id;   /* the SecretId the login maps to (after %H/%u) */
	char *key;         /* the JSON key, or NULL for the whole value */
	char *user;        /* the account whose mapping wrote it (for pruning) */
	char *cur_version; /* VersionId of the AWSCURRENT value hashed */
	char cur_hash[KT_VERIFIER_HASH_MAX];
	char *prev_version; /* NULL when no previous password is accepted */
	char prev_hash[KT_VERIFIER_HASH_MAX];
	time_t prev_until;   /* AWSPREVIOUS is accepted until then */
	time_t confirmed_at; /* when AWS last confirmed cur_version as AWSCURRENT */
};

/* Hashes a password with yescrypt and a fresh salt from crypt_gensalt_rn.
 * Returns 0 or a negative errno (with err set). */
int kt_verifier_hash(const void *password, size_t len, char out[KT_VERIFIER_HASH_MAX], char *err,
		     size_t errlen);

/* 1 when password matches hash, 0 when it does not, a negative errno when
 * hash is unusable. Compares crypt_r's output in constant time. */
int kt_verifier_check(const char *hash, const void *password, size_t len);

/* Whether s looks like crypt(3) output (its alphabet, '$' fields). */
bool kt_verifier_hash_ok(const char *s);

/* The file name (no directory) for (secret_id, key): "verifier-" and hex. */
int kt_verifier_file_name(const char *secret_id, const char *key, char *out, size_t outlen);

/* Writes v into dir atomically: a temporary file made O_EXCL with mode 0600,
 * written, fsync'd, renamed over the old one, and the directory fsync'd.
 * Returns 0 or a negative errno with err naming the file. */
int kt_verifier_write(const char *dir, const struct kt_verifier *v, char *err, size_t errlen);

/* Reads the verifier of (secret_id, key). -ENOENT when there is none;
 * -EINVAL (err set, naming the file) when it is garbled, not a regular
 * file, not mode 0600, or records another secret or key. */
int kt_verifier_read(const char *dir, const char *secret_id, const char *key,
		     struct kt_verifier *out, char *err, size_t errlen);

/* Removes the verifier of (secret_id, key); 0 also when there was none. */
int kt_verifier_remove(const char *dir, const char *secret_id, const char *key);

/* Removes every verifier file in dir for which keep() says false; garbled
 * verifier files are removed too, other files are left alone. Returns the
 * number removed, or a negative errno. */
int kt_verifier_prune(const char *dir, bool (*keep)(const struct kt_verifier *v, void *arg),
		      void *arg);

/* Wipes the hashes and frees the strings; v may then be reused. */
void kt_verifier_clear(struct kt_verifier *v);

#endif

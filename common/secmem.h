/* Secure memory helpers shared by every part of keyturn.
 * One wiping helper, wiped frees and constant-time comparison live here so
 * that no caller has to remember how to do them right, and keyturnd's
 * locked arena for secret values (OpenSSL's secure heap). */
#ifndef KT_SECMEM_H
#define KT_SECMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Overwrites n bytes at p with zeros in a way the compiler cannot elide. */
void kt_wipe(void *p, size_t n);

/* Wipes n bytes at p, then frees p. NULL is allowed. */
void kt_free_wiped(void *p, size_t n);

/* Wipes a NUL-terminated string up to its terminator, then frees it. */
void kt_str_free_wiped(char *s);

/* Compares two buffers of equal length in constant time; true when equal. */
bool kt_ct_equal(const void *a, const void *b, size_t n);

/* strdup/memdup that return NULL on allocation failure (callers map to -ENOMEM). */
char *kt_strdup(const char *s);
char *kt_strndup(const char *s, size_t n);
void *kt_memdup(const void *p, size_t n);

/* Whether two optional strings are equal: both NULL, or the same text. Not
 * constant time: for names and settings, never for secrets. */
static inline bool kt_str_eq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Bounds of the locked arena's size (a power of two). */
#define KT_SECURE_MIN 4096
#define KT_SECURE_MAX (1024 * 1024 * 1024)

/* Sets up OpenSSL's secure heap of size bytes: mmap'd between guard pages,
 * mlock'd and marked MADV_DONTDUMP. Once per process; a second call with
 * the same size is a no-op. The caller checks RLIMIT_MEMLOCK first. Returns
 * 0, -EINVAL for a size that is not a power of two in [KT_SECURE_MIN,
 * KT_SECURE_MAX], -EBUSY for another size than the first, -EPERM when the
 * memory could not be locked (nothing is set up then) or -ENOMEM, with err
 * set. */
int kt_secure_init(size_t size, char *err, size_t errlen);

/* n bytes from the locked arena (blocks are powers of two, at least 16
 * bytes). NULL, counted as a refusal, when the block would eat into the
 * sixteenth of the arena kept for OpenSSL's own secrets, when the arena is
 * full, or when it was never set up: there is no fallback to unlocked
 * memory. */
void *kt_secure_alloc(size_t n);

/* Wipes and frees what kt_secure_alloc returned (n: the size asked for).
 * NULL is allowed. */
void kt_secure_free(void *p, size_t n);

struct kt_secure_stats {
	size_t size;                /* the arena; 0 when not set up */
	size_t used;                /* bytes handed out, OpenSSL's own included */
	unsigned long long refused; /* kt_secure_alloc calls that found no room */
};

/* For status: the arena's size, use, and the values refused so far. */
void kt_secure_stats(struct kt_secure_stats *st);

#endif

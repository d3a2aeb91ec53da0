/* Secure memory helpers: wiping, wiped frees, constant-time comparison,
 * and the locked arena (OpenSSL's secure heap) that keeps secret values. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/err.h"
#include "common/log.h"
#include "secmem.h"

void kt_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void kt_free_wiped(void *p, size_t n)
{
	if (p == NULL)
		return;
	kt_wipe(p, n);
	free(p);
}

void kt_str_free_wiped(char *s)
{
	if (s == NULL)
		return;
	kt_free_wiped(s, strlen(s));
}

bool kt_ct_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return true;
	return CRYPTO_memcmp(a, b, n) == 0;
}

char *kt_strdup(const char *s)
{
	return s == NULL ? NULL : kt_strndup(s, strlen(s));
}

char *kt_strndup(const char *s, size_t n)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = malloc(n + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void *kt_memdup(const void *p, size_t n)
{
	void *d = malloc(n > 0 ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

/* OpenSSL's secure heap is one arena for the whole process; these remember
 * what keyturn asked for and how often a value found no room in it. The
 * counter is read by status from the loop thread while only the loop
 * thread allocates, but an atomic costs nothing and keeps that true if a
 * worker ever allocates too. */
static size_t secure_size;
static _Atomic unsigned long long secure_refused;

/* The smallest block the secure heap hands out: a short password takes 16
 * bytes, and the arena's bit tables stay small (two bits per 16 bytes). */
#define KT_SECURE_MINSIZE 16

/* 1/KT_SECURE_RESERVE of the arena is left to OpenSSL's own use. */
#define KT_SECURE_RESERVE 16

int kt_secure_init(size_t size, char *err, size_t errlen)
{
	int r;

	if (size < KT_SECURE_MIN || size > KT_SECURE_MAX || (size & (size - 1)) != 0) {
		kt_errf(err, errlen, "locked memory of %zu bytes: not a power of two from %d to %d",
			size, KT_SECURE_MIN, KT_SECURE_MAX);
		return -EINVAL;
	}
	if (CRYPTO_secure_malloc_initialized()) {
		if (size == secure_size)
			return 0;
		kt_errf(err, errlen, "the secure heap is already set up with %zu bytes",
			secure_size);
		return -EBUSY;
	}
	/* 1: mapped, locked and left out of core dumps; 2: mapped, but mlock
	 * or madvise failed, which would leave values swappable: refused. */
	r = CRYPTO_secure_malloc_init(size, KT_SECURE_MINSIZE);
	if (r != 1) {
		if (r == 2)
			CRYPTO_secure_malloc_done();
		kt_errf(err, errlen,
			"cannot set up %zu bytes of locked memory (OpenSSL's secure heap): %s",
			size,
			r == 2 ? "mlock or madvise(MADV_DONTDUMP) failed (a container may forbid "
				 "mlock: systemd-nspawn without --capability=CAP_IPC_LOCK does)"
			       : "mmap failed");
		ERR_clear_error();
		return r == 2 ? -EPERM : -ENOMEM;
	}
	secure_size = size;
	return 0;
}

/* The block the arena hands out for n bytes: a power of two, at least
 * KT_SECURE_MINSIZE. */
static size_t secure_block(size_t n)
{
	size_t b = KT_SECURE_MINSIZE;

	while (b < n && b <= secure_size)
		b <<= 1;
	return b;
}

void *kt_secure_alloc(size_t n)
{
	void *p = NULL;

	/* Never plain malloc: a value that does not fit in locked memory is
	 * refused, not quietly kept where it may be swapped out. OpenSSL takes
	 * its own secrets (TLS key exchange keys, DRBG seeds) from the same
	 * arena and fails a handshake when it finds no room, so values leave
	 * it a sixteenth of the arena. */
	if (CRYPTO_secure_malloc_initialized() &&
	    CRYPTO_secure_used() + secure_block(n) <= secure_size - secure_size / KT_SECURE_RESERVE)
		p = CRYPTO_secure_malloc(n > 0 ? n : 1, __FILE__, __LINE__);
	if (p == NULL) {
		secure_refused++;
		/* CRYPTO_secure_malloc records the failure on OpenSSL's error
		 * queue, where a later TLS error report would find it. */
		ERR_clear_error();
	}
	return p;
}

void kt_secure_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	/* Wipes the whole block (the heap rounds n up) and frees it; a
	 * pointer from outside the heap is wiped and freed with free(). */
	CRYPTO_secure_clear_free(p, n, __FILE__, __LINE__);
}

void kt_secure_stats(struct kt_secure_stats *st)
{
	st->size = secure_size;
	st->used = CRYPTO_secure_malloc_initialized() ? CRYPTO_secure_used() : 0;
	st->refused = secure_refused;
}

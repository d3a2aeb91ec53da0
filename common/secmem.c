/* Secure memory helpers: wiping, wiped frees, constant-time comparison. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

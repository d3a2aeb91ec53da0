/* Secure memory helpers shared by every part of keyturn.
 * One wiping helper, wiped frees and constant-time comparison live here so
 * that no caller has to remember how to do them right. */
#ifndef KT_SECMEM_H
#define KT_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

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

#endif

/* What sigv4.c and sigv4_uri.c share; not a public face. sigv4_uri.c makes
 * the canonical URI and query of a request (percent-encoding, path
 * normalisation, sorted parameters); sigv4.c the rest and calls it. */
#ifndef KT_SIGV4_INT_H
#define KT_SIGV4_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/kt_buf.h"

/* No canonical request of ours comes near this; a larger one means a broken
 * caller, and the limit keeps a runaway header list from eating memory. */
#define SIGV4_TEXT_MAX ((size_t)1 << 20)

#define ENC_KEEP_SLASH 1 /* a path: '/' separates segments and stays */
#define ENC_DECODE 2     /* a query part: valid %XX escapes are decoded first */

/* Appends n bytes of s percent-encoded (flags: ENC_*). 0 or -ENOMEM/-E2BIG. */
int sigv4_uri_encode(struct kt_buf *out, const char *s, size_t n, int flags);
/* Removes "." and ".." segments and runs of '/' from an absolute path. */
int sigv4_normalize_path(const char *path, struct kt_buf *out);
/* Appends the canonical URI of path (NULL: "/"), normalised when asked;
 * -EINVAL for a path that does not start with '/'. */
int sigv4_canonical_uri(const char *path, bool normalize, struct kt_buf *cr);
/* Appends the canonical query ("k=v&k=v", sorted); nothing for NULL or "". */
int sigv4_canonical_query(const char *query, struct kt_buf *cr);

#endif

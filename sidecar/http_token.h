/* The HTTP door's token (`[http] token_file`): what every request but
 * GET /ping must carry, as the Secrets Manager Agent's SSRF token. */
#ifndef KT_HTTP_TOKEN_H
#define KT_HTTP_TOKEN_H

#include <stddef.h>

#define KT_HTTP_TOKEN_MAX 256

/* Reads the token from path into out (NUL-terminated). A missing file is
 * made first: 64 hex digits from 32 random bytes, mode 0640, its group
 * `group` when that group exists (else the daemon's). An existing file is
 * used as it is, white space around the token ignored; it must be a regular
 * file (not a link), not writable by others, and hold 1 to
 * KT_HTTP_TOKEN_MAX printable characters. 0, or -errno with err naming the
 * file. */
int kt_http_token_load(const char *path, const char *group, char out[KT_HTTP_TOKEN_MAX + 1],
		       char *err, size_t errlen);

#endif

/* Standard base64 (RFC 4648, with padding) for SecretBinary values and the
 * wire protocol's "binary" field. Output buffers are wiped when freed. */
#ifndef KT_BASE64_H
#define KT_BASE64_H

#include <stddef.h>

/* Encodes n bytes into a malloc'd NUL-terminated string. NULL on ENOMEM. */
char *kt_base64_encode(const void *data, size_t n);

/* Decodes text (white space not allowed) into a malloc'd buffer. Returns 0,
 * -EINVAL for text that is not canonical base64, or -ENOMEM. */
int kt_base64_decode(const char *text, size_t len, unsigned char **out, size_t *outlen);

#endif

/* Base64 with OpenSSL's block coder, plus the strictness it lacks: the
 * length and padding are checked so a damaged value is refused, not
 * silently shortened. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kt_base64.h"
#include "secmem.h"

char *kt_base64_encode(const void *data, size_t n)
{
	size_t outlen;
	char *out;

	if (n > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	outlen = 4 * ((n + 2) / 3);
	out = malloc(outlen + 1);
	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	out[outlen] = '\0';
	return out;
}

static int b64_char_ok(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

int kt_base64_decode(const char *text, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t pad = 0;
	int n;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0 || len > (size_t)INT_MAX)
		return -EINVAL;
	if (len > 0 && text[len - 1] == '=')
		pad++;
	if (len > 1 && text[len - 2] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++) {
		if (!b64_char_ok((unsigned char)text[i]))
			return -EINVAL;
	}
	buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL)
		return -ENOMEM;
	n = len > 0 ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) : 0;
	if (n < 0 || (size_t)n < pad) {
		kt_free_wiped(buf, len / 4 * 3 + 1);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	*outlen = (size_t)n - pad;
	*out = buf;
	return 0;
}

/* AWS Signature Version 4 request signing (header form), with OpenSSL.
 * The signer adds X-Amz-Date, and X-Amz-Security-Token when the key carries a
 * session token, to the set of signed headers; the caller sends those headers
 * and the Authorization header that sigv4_sign() returns. */
#ifndef KT_SIGV4_H
#define KT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct sigv4_header {
	const char *name;  /* any case; lower-cased for signing */
	const char *value; /* trimmed, inner runs of spaces folded for signing */
};

struct sigv4_request {
	const char *method;                 /* "GET", "POST" */
	const char *path;                   /* raw path as in the request line, e.g. "/" */
	const char *query;                  /* raw query without '?', or NULL */
	const struct sigv4_header *headers; /* must include Host */
	size_t nheaders;
	const void *body;
	size_t body_len;
};

struct sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when none */
};

struct sigv4_params {
	const char *region;
	const char *service;
	time_t when;             /* signing time (already skew-corrected) */
	bool normalize_path;     /* true for every service but S3 */
	bool sign_body;          /* add x-amz-content-sha256 */
	bool omit_session_token; /* sign without the token header (rare services) */
};

struct sigv4_result {
	char amz_date[17];       /* "20150830T123600Z" */
	char payload_hash[65];   /* hex SHA-256 of the body */
	char signature[65];      /* hex signature */
	char *canonical_request; /* for tests and debug logs; holds no secret */
	char *string_to_sign;
	char *authorization; /* value of the Authorization header */
};

/* Returns 0, -EINVAL for a malformed request (no Host, bad header), or -ENOMEM. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key,
	       const struct sigv4_params *params, struct sigv4_result *out);

void sigv4_result_free(struct sigv4_result *res);

/* Formats t as an ISO 8601 basic timestamp "YYYYMMDDTHHMMSSZ" (UTC). */
void sigv4_format_date(time_t t, char out[17]);

#endif

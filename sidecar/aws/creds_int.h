/* What the credential chain's files share among themselves: the providers
 * that speak HTTP (creds_sts.c, creds_meta.c) and the helpers they use from
 * creds.c. Not part of the AWS client's public face. */
#ifndef KT_CREDS_INT_H
#define KT_CREDS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "awserr.h"
#include "creds.h"
#include "http.h"

/* Token files (web identity, container authorization) are small; anything
 * larger is the wrong file. */
#define AWS_CREDS_MAX_TOKEN_FILE (64u * 1024)

/* An IMDSv2 session token and when it stops being good (wiped when cleared). */
struct aws_imds_token {
	char *token;
	time_t expires;
};

void aws_imds_token_clear(struct aws_imds_token *t);

/* Each provider returns 0 with *out filled, -ENOENT when it is not
 * configured (the chain goes on), or another negative errno with err set
 * (the chain stops: a configured provider that fails is an error). */
int aws_creds_from_web_identity(const struct aws_creds_opts *o, struct aws_creds *out,
				struct aws_error *err);
int aws_creds_from_container(const struct aws_creds_opts *o, struct aws_creds *out,
			     struct aws_error *err);
int aws_creds_from_imds(const struct aws_creds_opts *o, struct aws_imds_token *tok,
			struct aws_creds *out, struct aws_error *err);

/* Fills out with copies of the strings (tok may be NULL or ""). expiration
 * may be NULL (never expires); otherwise it is parsed as ISO 8601 UTC.
 * Returns 0, -ENOMEM, or -EBADMSG for a bad expiration (err names `what`). */
int aws_creds_fill(struct aws_creds *out, const char *source, const char *what,
		   const char *ak, const char *sk, const char *tok,
		   const char *expiration, struct aws_error *err);

/* "2026-11-29T15:00:00Z", with optional fractional seconds and a "Z" or
 * "+HH:MM" zone, as seconds since the epoch. Returns 0 or -EINVAL. */
int aws_creds_parse_time(const char *s, time_t *out);

/* Reads a small token file into a malloc'd string without its trailing
 * newline (to be freed with kt_str_free_wiped). Returns 0 or a negative errno
 * with err naming what (the provider) and the file. */
int aws_creds_read_token_file(const char *what, const char *path, char **out,
			      struct aws_error *err);

/* Sets err for a kt_http_do() failure rc and returns rc. The URL is shown
 * without its query, which could hold a credential. */
int aws_creds_http_error(struct aws_error *err, const char *what, const char *url, int rc,
			 const struct kt_http *h);

/* Sets err for an HTTP answer whose status is not a success and returns -EIO. */
int aws_creds_status_error(struct aws_error *err, const char *what, const char *url,
			   long status);

/* Length of url up to its query or fragment, for messages. */
int aws_creds_url_shown(const char *url);

#endif

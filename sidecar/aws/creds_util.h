/* What the credential chain, its providers and the IMDS client share, beneath
 * them all: the credential value and the options the chain hands down, and the
 * helpers every provider uses to build a value and to say why it failed (curl's
 * vauth.c is the model: what the mechanisms share sits below them).
 * The value types live here rather than in creds.h so that providers and
 * imds.c can name them without including the chain's header, which would tie
 * them to the chain that calls them; creds.h includes this header, so callers
 * of the chain still see one face. The helpers are declared here too, with
 * the value they build, instead of in creds_int.h: that header is the chain's
 * contract with its providers, and this file sits beneath both.
 * Nothing here keeps state between calls. */
#ifndef KT_CREDS_UTIL_H
#define KT_CREDS_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "awserr.h"
#include "http.h"

struct aws_creds {
	char *access_key;
	char *secret_key;    /* wiped when freed */
	char *session_token; /* NULL when none; wiped when freed */
	time_t expiration;   /* 0: does not expire */
	const char *source;  /* "environment", "web-identity", "profile", "container", "imds" */
};

struct aws_creds_opts {
	const char *region;        /* for the STS endpoint; may be NULL */
	const char *ca_file;       /* for HTTPS providers */
	bool imds_v1_fallback;     /* allow IMDSv1 when the token PUT is refused */
	long refresh_ahead_s;      /* renew this long before Expiration; 0: 300 */
	long imds_timeout_ms;      /* 0: 1000 */
	long renew_min_interval_s; /* fetches at most this often while the cached
				    * ones are valid, and after a failure; 0: 60 */
	long no_expiry_refetch_s;  /* container/IMDS credentials without an
				    * Expiration (or one years away); 0: 900 */
	const atomic_bool *cancel; /* when it turns true, fetches end (-ECANCELED) */
};

/* Frees the strings of cr, wiping the secret ones, and zeroes it. cr may be
 * NULL. */
void aws_creds_clear(struct aws_creds *cr);

/* --- for the providers ------------------------------------------------------- */

/* Token files (web identity, container authorization) are small; anything
 * larger is the wrong file. */
#define AWS_CREDS_MAX_TOKEN_FILE (64u * 1024)

/* Fills out with copies of the strings (tok may be NULL or ""). expiration
 * may be NULL (never expires); otherwise it is parsed as ISO 8601 UTC.
 * source is kept as a pointer and must outlive out (a literal). Returns 0, -ENOMEM,
 * or -EBADMSG for a bad expiration (err names `what`). */
int aws_creds_fill(struct aws_creds *out, const char *source, const char *what, const char *ak,
		   const char *sk, const char *tok, const char *expiration, struct aws_error *err);

/* "2026-11-29T15:00:00Z", with optional fractional seconds and a "Z" or
 * "+HH:MM" zone, as seconds since the epoch. Returns 0 or -EINVAL. */
int aws_creds_parse_time(const char *s, time_t *out);

/* Reads a small token file into a malloc'd string without its trailing
 * newline (to be freed with kt_str_free_wiped). Returns 0 or a negative errno
 * with err naming what (the provider) and the file. */
int aws_creds_read_token_file(const char *what, const char *path, char **out,
			      struct aws_error *err);

/* Sends one request for a provider over a client of its own: hopts gives the
 * limits, o the CA file and the cancel flag; the client is freed before the
 * return. Returns 0 when an answer came, whatever its status, with resp filled
 * (the caller frees it with kt_http_resp_free()); or a negative errno with err
 * naming `what` and the URL without its query. */
int aws_creds_http_send(const char *what, const struct aws_creds_opts *o,
			const struct kt_http_opts *hopts, const struct kt_http_req *req,
			struct kt_http_resp *resp, struct aws_error *err);

/* Sets err for a kt_http_do() failure rc and returns rc. The URL is shown
 * without its query, which could hold a credential. h may be NULL. */
int aws_creds_http_error(struct aws_error *err, const char *what, const char *url, int rc,
			 const struct kt_http *h);

/* Sets err for an HTTP answer whose status is not a success and returns -EIO. */
int aws_creds_status_error(struct aws_error *err, const char *what, const char *url, long status);

/* Length of url up to its query or fragment, for messages. */
int aws_creds_url_shown(const char *url);

#endif

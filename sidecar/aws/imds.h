/* The EC2 instance metadata client (IMDSv2): a session token taken with a PUT
 * and used until shortly before its TTL ends, GETs that carry it (a new token
 * once when the service says 401), and IMDSv1 when the token PUT is refused
 * and the caller allows it. The instance credential provider (creds_meta.c)
 * and the region chain (endpoint.c) are its callers; it knows neither.
 * A struct aws_imds lives for one lookup and is used by one thread; the
 * session token it is given belongs to the caller, which may keep it across
 * lookups (the chain does, under its lock) and wipes it with
 * aws_imds_token_clear(). */
#ifndef KT_IMDS_H
#define KT_IMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "awserr.h"
#include "creds_util.h"
#include "http.h"

/* An IMDSv2 session token and when it stops being good (wiped when cleared). */
struct aws_imds_token {
	char *token;
	time_t expires;
};

/* Wipes and frees t's token and zeroes t. */
void aws_imds_token_clear(struct aws_imds_token *t);

/* One lookup's connection to the service. The members are this module's own. */
struct aws_imds {
	const struct aws_creds_opts *o;
	struct aws_imds_token *tok;
	struct kt_http *h;
	char base[256];
	bool v1; /* the token PUT was refused and IMDSv1 is allowed */
};

/* Whether AWS_EC2_METADATA_DISABLED turns the service off ("true", any case). */
bool aws_imds_disabled(void);

/* Sets m up for the service that the environment names (the IPv4 address
 * unless AWS_EC2_METADATA_SERVICE_ENDPOINT[_MODE] say otherwise), with o's
 * timeout, fallback and cancel flag; never through a proxy. o and tok must
 * outlive m. Returns 0, or a negative errno with err set; aws_imds_close()
 * is due either way. */
int aws_imds_open(struct aws_imds *m, const struct aws_creds_opts *o, struct aws_imds_token *tok,
		  struct aws_error *err);

/* GETs base + path into resp (freed and refilled; the caller frees it last)
 * and leaves the full URL in url for messages. Returns 0 when an answer came,
 * whatever its status, or a negative errno with err set. */
int aws_imds_get(struct aws_imds *m, const char *path, struct kt_http_resp *resp, char *url,
		 size_t urllen, struct aws_error *err);

/* Frees what aws_imds_open() set up; the token stays with its owner. */
void aws_imds_close(struct aws_imds *m);

/* The region from instance metadata, for the region chain's last step. opts
 * may be NULL (defaults); no token outlives the call. Returns 0 and a
 * malloc'd string, or a negative errno with err set (-ENOENT when the service
 * is disabled). */
int aws_imds_region(const struct aws_creds_opts *opts, char **region, struct aws_error *err);

#endif

/* The AWS credential chain, in the SDKs' order: environment, web identity
 * (STS AssumeRoleWithWebIdentity), shared files, container endpoint, IMDSv2.
 * Temporary credentials are cached and renewed ahead of their Expiration, at
 * most once per renew_min_interval_s while the current ones still work
 * ("static stability"); metadata credentials without a usable Expiration are
 * fetched again every no_expiry_refetch_s.
 * A chain is shared by threads; aws_creds_get() takes its own lock. */
#ifndef KT_CREDS_H
#define KT_CREDS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "awserr.h"

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

/* IAM's limit on a role name (CreateRole, RoleName: 1 to 64 characters). */
#define AWS_IAM_ROLE_NAME_MAX 64

struct aws_creds_chain;

int aws_creds_chain_new(const struct aws_creds_opts *opts, struct aws_creds_chain **out);
void aws_creds_chain_free(struct aws_creds_chain *c);

/* Copies valid credentials into out (to be freed with aws_creds_clear()).
 * Returns 0, or a negative errno with err saying which provider failed and
 * why (AWS_ERR_NO_CREDENTIALS when no provider had any). */
int aws_creds_get(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err);

/* Forgets cached credentials, e.g. after ExpiredTokenException. */
void aws_creds_invalidate(struct aws_creds_chain *c);

void aws_creds_clear(struct aws_creds *cr);

/* The region from instance metadata (IMDSv2), for the region chain's last step.
 * Returns 0 and a malloc'd string, or a negative errno. */
int aws_imds_region(const struct aws_creds_opts *opts, char **region, struct aws_error *err);

#endif

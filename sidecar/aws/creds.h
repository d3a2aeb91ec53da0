/* The AWS credential chain, in the SDKs' order: environment, web identity
 * (STS AssumeRoleWithWebIdentity), shared files, container endpoint, IMDSv2.
 * Temporary credentials are cached and renewed ahead of their Expiration, at
 * most once per renew_min_interval_s while the current ones still work
 * ("static stability"); metadata credentials without a usable Expiration are
 * fetched again every no_expiry_refetch_s.
 * A chain is shared by threads; aws_creds_get() takes its own lock. */
#ifndef KT_CREDS_H
#define KT_CREDS_H

#include "awserr.h"
#include "creds_util.h" /* struct aws_creds, struct aws_creds_opts, aws_creds_clear() */
#include "imds.h"       /* aws_imds_region(), which the chain's callers reach through here */

struct aws_creds_chain;

int aws_creds_chain_new(const struct aws_creds_opts *opts, struct aws_creds_chain **out);
void aws_creds_chain_free(struct aws_creds_chain *c);

/* Copies valid credentials into out (to be freed with aws_creds_clear()).
 * Returns 0, or a negative errno with err saying which provider failed and
 * why (AWS_ERR_NO_CREDENTIALS when no provider had any). */
int aws_creds_get(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err);

/* Forgets cached credentials, e.g. after ExpiredTokenException. */
void aws_creds_invalidate(struct aws_creds_chain *c);

#endif

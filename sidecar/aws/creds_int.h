/* The credential chain's contract with the providers that speak HTTP
 * (creds_sts.c, creds_meta.c): what creds.c asks of each. The helpers the
 * providers share are in creds_util.h, the IMDS client in imds.h; neither
 * calls back up into a provider or the chain. Not part of the AWS client's
 * public face. */
#ifndef KT_CREDS_INT_H
#define KT_CREDS_INT_H

#include "awserr.h"
#include "creds_util.h"
#include "imds.h"

/* Each provider returns 0 with *out filled, -ENOENT when it is not
 * configured (the chain goes on), or another negative errno with err set
 * (the chain stops: a configured provider that fails is an error). */
int aws_creds_from_web_identity(const struct aws_creds_opts *o, struct aws_creds *out,
				struct aws_error *err);
int aws_creds_from_container(const struct aws_creds_opts *o, struct aws_creds *out,
			     struct aws_error *err);
/* tok is the chain's IMDSv2 session token, reused across renewals; the
 * chain's lock keeps it to one caller at a time. */
int aws_creds_from_imds(const struct aws_creds_opts *o, struct aws_imds_token *tok,
			struct aws_creds *out, struct aws_error *err);

#endif

/* Where requests go: the region and the Secrets Manager endpoint, each from
 * the first source that has it. */
#ifndef KT_ENDPOINT_H
#define KT_ENDPOINT_H

#include <stdbool.h>

#include "awserr.h"

enum aws_source {
	AWS_SRC_NONE = 0,
	AWS_SRC_CONFIG,      /* keyturnd.conf or a command-line option */
	AWS_SRC_ENV,         /* AWS_REGION / AWS_ENDPOINT_URL_SECRETS_MANAGER */
	AWS_SRC_ENV_DEFAULT, /* AWS_DEFAULT_REGION / AWS_ENDPOINT_URL */
	AWS_SRC_PROFILE,     /* the shared config file */
	AWS_SRC_IMDS,        /* instance metadata */
	AWS_SRC_DEFAULT,     /* built from the region */
};

const char *aws_source_name(enum aws_source s);

/* Region: configured, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`
 * in the shared config file, then instance metadata when use_imds is set.
 * Returns 0 with a malloc'd *region, or a negative errno with err set. */
int aws_resolve_region(const char *configured, bool use_imds, char **region, enum aws_source *src,
		       struct aws_error *err);

/* Endpoint for a service ("secretsmanager", "sts"): configured,
 * AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's endpoint_url,
 * then https://SERVICE[-fips].REGION.amazonaws.com (".amazonaws.com.cn" in
 * cn- regions). A trailing '/' is dropped. Returns 0 or -EINVAL (bad URL). */
int aws_resolve_endpoint(const char *service, const char *configured, const char *region, bool fips,
			 char **endpoint, enum aws_source *src, struct aws_error *err);

/* Splits an endpoint URL into its host (with ":port" when given) for the Host
 * header and SigV4. Returns 0 or -EINVAL for a URL that is not http(s)://host. */
int aws_endpoint_host(const char *endpoint, char *host, size_t hostlen);

#endif

/* Region and endpoint resolution: the first source that names one wins, in
 * the order the AWS SDKs use, and each answer says where it came from so the
 * daemon can log it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "imds.h"
#include "profile.h"
#include "common/secmem.h"

const char *aws_source_name(enum aws_source s)
{
	switch (s) {
	case AWS_SRC_CONFIG:
		return "configuration";
	case AWS_SRC_ENV:
	case AWS_SRC_ENV_DEFAULT:
		return "environment";
	case AWS_SRC_PROFILE:
		return "shared config file";
	case AWS_SRC_IMDS:
		return "instance metadata";
	case AWS_SRC_DEFAULT:
		return "default";
	case AWS_SRC_NONE:
		break;
	}
	return "none";
}

static const char *nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* A region name is lower-case letters, digits and dashes ("us-east-1"); it
 * ends up in a host name, so nothing else may pass. */
static bool region_valid(const char *r)
{
	if (r[0] == '\0' || strlen(r) > 64)
		return false;
	for (const char *p = r; *p; p++) {
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return false;
	}
	return true;
}

/* Reads `key` from the active profile of the shared config file. Returns
 * NULL when the file, the profile or the key is absent; a file that exists
 * but cannot be parsed is an error worth reporting. */
static int profile_value(const char *key, char **out, struct aws_error *err)
{
	struct aws_profile p = { 0 };
	char *path = aws_profile_config_path(), *name = aws_profile_name();
	char msg[512] = "";
	const char *v;
	int rc;

	*out = NULL;
	if (path == NULL || name == NULL) {
		rc = 0;
		goto out;
	}
	rc = aws_profile_load(path, name, true, &p, msg, sizeof(msg));
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "ConfigFile", "%s", msg);
		goto out;
	}
	v = aws_profile_get(&p, key);
	if (v != NULL && v[0] != '\0') {
		*out = kt_strdup(v);
		if (*out == NULL)
			rc = -ENOMEM;
	}
out:
	aws_profile_free(&p);
	free(path);
	free(name);
	return rc;
}

/* The first of: the configured value, environment variable env, variable
 * env_default, then `profile_key` of the shared config file. *found is NULL
 * when none has a value. */
static int first_setting(const char *configured, const char *env, const char *env_default,
			 const char *profile_key, char **found, enum aws_source *src,
			 struct aws_error *err)
{
	const char *v;
	int rc;

	*found = NULL;
	*src = AWS_SRC_NONE;
	if ((v = nonempty(configured)) != NULL)
		*src = AWS_SRC_CONFIG;
	else if ((v = nonempty(getenv(env))) != NULL)
		*src = AWS_SRC_ENV;
	else if ((v = nonempty(getenv(env_default))) != NULL)
		*src = AWS_SRC_ENV_DEFAULT;
	if (v != NULL) {
		*found = kt_strdup(v);
		return *found != NULL ? 0 : -ENOMEM;
	}
	rc = profile_value(profile_key, found, err);
	if (rc == 0 && *found != NULL)
		*src = AWS_SRC_PROFILE;
	return rc;
}

int aws_resolve_region(const char *configured, bool use_imds, char **region, enum aws_source *src,
		       struct aws_error *err)
{
	char *found = NULL;
	enum aws_source s;
	int rc;

	*region = NULL;
	rc = first_setting(configured, "AWS_REGION", "AWS_DEFAULT_REGION", "region", &found, &s,
			   err);
	if (rc < 0)
		return rc;
	if (found == NULL && use_imds) {
		rc = aws_imds_region(NULL, &found, err);
		if (rc < 0)
			return rc;
		s = AWS_SRC_IMDS;
	}
	if (found == NULL) {
		aws_error_set(err, AWS_ERR_CONFIG, "NoRegion",
			      "no AWS region: set `region =` in the configuration, or AWS_REGION");
		return -ENOENT;
	}
	if (!region_valid(found)) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadRegion",
			      "region \"%.64s\" from the %s is not a valid AWS region name", found,
			      aws_source_name(s));
		free(found);
		return -EINVAL;
	}
	*region = found;
	if (src != NULL)
		*src = s;
	return 0;
}

int aws_endpoint_host(const char *endpoint, char *host, size_t hostlen)
{
	const char *p;
	size_t n;

	if (strncmp(endpoint, "https://", 8) == 0)
		p = endpoint + 8;
	else if (strncmp(endpoint, "http://", 7) == 0)
		p = endpoint + 7;
	else
		return -EINVAL;
	n = strcspn(p, "/?#");
	if (n == 0 || n >= hostlen || memchr(p, '@', n) != NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isgraph((unsigned char)p[i]))
			return -EINVAL;
	}
	memcpy(host, p, n);
	host[n] = '\0';
	return 0;
}

/* Whether anything follows scheme://host[:port]. Requests are signed for the
 * path "/", so an endpoint with a path of its own would not verify. */
static bool endpoint_has_path(const char *url)
{
	const char *p = strstr(url, "://");

	return p == NULL || p[3 + strcspn(p + 3, "/?#")] != '\0';
}

/* The AWS_ENDPOINT_URL_<SERVICE> variable name: upper case, '-' to '_'. */
static void service_env_name(const char *service, char *out, size_t outlen)
{
	size_t i, n = (size_t)snprintf(out, outlen, "AWS_ENDPOINT_URL_");

	for (i = 0; service[i] != '\0' && n + 1 < outlen; i++, n++)
		out[n] = service[i] == '-' ? '_' : (char)toupper((unsigned char)service[i]);
	out[n < outlen ? n : outlen - 1] = '\0';
}

int aws_resolve_endpoint(const char *service, const char *configured, const char *region, bool fips,
			 char **endpoint, enum aws_source *src, struct aws_error *err)
{
	char envname[96], host[256], *found = NULL;
	enum aws_source s;
	size_t n;
	int rc;

	*endpoint = NULL;
	service_env_name(strcmp(service, "secretsmanager") == 0 ? "secrets_manager" : service,
			 envname, sizeof(envname));
	rc = first_setting(configured, envname, "AWS_ENDPOINT_URL", "endpoint_url", &found, &s,
			   err);
	if (rc < 0)
		return rc;
	if (found == NULL) {
		if (region == NULL || !region_valid(region)) {
			aws_error_set(err, AWS_ERR_CONFIG, "NoRegion",
				      "no endpoint for %s: the region is unknown", service);
			return -EINVAL;
		}
		rc = asprintf(&found, "https://%s%s.%s.amazonaws.com%s", service,
			      fips ? "-fips" : "", region,
			      strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
		if (rc < 0)
			return -ENOMEM;
		s = AWS_SRC_DEFAULT;
	}
	n = strlen(found);
	while (n > 0 && found[n - 1] == '/')
		found[--n] = '\0';
	if (aws_endpoint_host(found, host, sizeof(host)) < 0 || endpoint_has_path(found)) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadEndpoint",
			      "endpoint \"%.200s\" from the %s is not an http(s)://host[:port] URL",
			      found, aws_source_name(s));
		free(found);
		return -EINVAL;
	}
	*endpoint = found;
	if (src != NULL)
		*src = s;
	return 0;
}

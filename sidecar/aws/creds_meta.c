/* The metadata providers: the ECS/EKS container credentials endpoint and the
 * instance role's credentials from EC2 instance metadata (asked through the
 * IMDS client in imds.c). Both answer the same small JSON object. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "creds_int.h"
#include "creds_util.h"
#include "http.h"
#include "imds.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/secmem.h"

#define CONTAINER "container credentials"
#define IMDS "instance metadata"

#define META_MAX_BODY (64u * 1024)
#define CONTAINER_HOST "http://169.254.170.2"
/* IAM's limit on a role name (CreateRole, RoleName: 1 to 64 characters). */
#define AWS_IAM_ROLE_NAME_MAX 64

/* Reads the credentials object both endpoints answer. The IMDS one also
 * carries Code, which must say "Success". */
static int meta_parse_creds(const char *what, const char *source, const char *body, size_t len,
			    struct aws_creds *out, struct aws_error *err)
{
	struct json_object *obj = kt_json_parse(body, len);
	const char *ak, *sk, *code;
	int rc;

	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
			      "%s: the answer is not a JSON object", what);
		rc = -EBADMSG;
		goto out;
	}
	code = kt_json_str(obj, "Code");
	if (code != NULL && strcmp(code, "Success") != 0) {
		const char *msg = kt_json_str(obj, "Message");

		aws_error_set(err, AWS_ERR_OTHER, "MetadataError", "%s: Code %.64s: %.200s", what,
			      code, msg != NULL ? msg : "(no message)");
		rc = -EIO;
		goto out;
	}
	ak = kt_json_str(obj, "AccessKeyId");
	sk = kt_json_str(obj, "SecretAccessKey");
	if (ak == NULL || *ak == '\0' || sk == NULL || *sk == '\0') {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer", "%s: the answer has no %s",
			      what, ak == NULL || *ak == '\0' ? "AccessKeyId" : "SecretAccessKey");
		rc = -EBADMSG;
		goto out;
	}
	rc = aws_creds_fill(out, source, what, ak, sk, kt_json_str(obj, "Token"),
			    kt_json_str(obj, "Expiration"), err);
out:
	kt_json_put_wiped(obj);
	return rc;
}

/* --- container credentials ---------------------------------------------------- */

static bool host_allowed_for_http(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6, want;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		return (a >> 24) == 127 || a == 0xa9feaa02 /* 169.254.170.2 */ ||
		       a == 0xa9feaa17 /* 169.254.170.23 */;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return inet_pton(AF_INET6, "fd00:ec2::23", &want) == 1 &&
		       memcmp(&a6, &want, sizeof(want)) == 0;
	}
	return false;
}

/* Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be used: any https URL;
 * plain http only to the loopback or the ECS/EKS link-local agents, since
 * the answer is a credential that anyone on the path could read or forge. */
static int container_url_check(const char *url, char *why, size_t whylen)
{
	const char *auth, *aend, *hend;
	char host[256];
	size_t hlen;

	if (strncasecmp(url, "https://", 8) == 0) {
		auth = url + 8;
		if (*auth == '\0' || *auth == '/') {
			snprintf(why, whylen, "no host in the URL");
			return -EINVAL;
		}
		return 0;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(why, whylen, "only http:// and https:// URLs are allowed");
		return -EINVAL;
	}
	auth = url + 7;
	aend = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(aend - auth)) != NULL) {
		snprintf(why, whylen, "user information in the URL is not allowed");
		return -EINVAL;
	}
	if (*auth == '[') {
		hend = memchr(auth, ']', (size_t)(aend - auth));
		if (hend == NULL) {
			snprintf(why, whylen, "unterminated IPv6 address");
			return -EINVAL;
		}
		auth++;
	} else {
		hend = memchr(auth, ':', (size_t)(aend - auth));
		if (hend == NULL)
			hend = aend;
	}
	hlen = (size_t)(hend - auth);
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(why, whylen, "no usable host in the URL");
		return -EINVAL;
	}
	memcpy(host, auth, hlen);
	host[hlen] = '\0';
	if (!host_allowed_for_http(host)) {
		snprintf(why, whylen,
			 "plain http is allowed only to a loopback address, localhost, "
			 "169.254.170.2, 169.254.170.23 or fd00:ec2::23; use https");
		return -EINVAL;
	}
	return 0;
}

/* The endpoint's URL from the environment: -ENOENT when none is set. */
static int container_url(char **url, struct aws_error *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char why[256];
	size_t n;

	*url = NULL;
	if (rel != NULL && *rel != '\0') {
		if (*rel != '/') {
			aws_error_set(
				err, AWS_ERR_CONFIG, "BadContainerUri",
				CONTAINER
				": AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
			return -EINVAL;
		}
		n = strlen(CONTAINER_HOST) + strlen(rel) + 1;
		*url = malloc(n);
		if (*url == NULL)
			return -ENOMEM;
		snprintf(*url, n, "%s%s", CONTAINER_HOST, rel);
		return 0;
	}
	if (full == NULL || *full == '\0')
		return -ENOENT;
	if (container_url_check(full, why, sizeof(why)) < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadContainerUri",
			      CONTAINER ": AWS_CONTAINER_CREDENTIALS_FULL_URI %.*s refused: %s",
			      aws_creds_url_shown(full) > 200 ? 200 : aws_creds_url_shown(full),
			      full, why);
		return -EINVAL;
	}
	*url = kt_strdup(full);
	return *url == NULL ? -ENOMEM : 0;
}

/* "Authorization: TOKEN" from the token file (read again each time, as the
 * agent rotates it) or the variable; *hdr stays NULL when neither is set. */
static int container_auth(char **hdr, struct aws_error *err)
{
	const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *val = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct kt_buf b = KT_BUF_INIT(AWS_CREDS_MAX_TOKEN_FILE + 64);
	char *tok = NULL;
	int rc = 0;

	*hdr = NULL;
	if (file != NULL && *file != '\0') {
		rc = aws_creds_read_token_file(CONTAINER, file, &tok, err);
		if (rc < 0)
			goto out;
		val = tok;
	}
	if (val == NULL || *val == '\0')
		goto out;
	/* A line break would smuggle another header into the request. */
	if (strpbrk(val, "\r\n") != NULL) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadAuthorizationToken",
			      CONTAINER ": the authorization token contains a line break");
		rc = -EINVAL;
		goto out;
	}
	rc = kt_buf_printf(&b, "Authorization: %s", val);
	if (rc == 0)
		*hdr = kt_buf_steal(&b, NULL);
out:
	kt_buf_free(&b);
	kt_str_free_wiped(tok);
	return rc;
}

int aws_creds_from_container(const struct aws_creds_opts *o, struct aws_creds *out,
			     struct aws_error *err)
{
	struct kt_http_opts hopts = { 0 };
	struct kt_http_resp resp = { 0 };
	struct kt_http_req req = { 0 };
	char *url = NULL, *auth = NULL;
	const char *headers[1];
	int rc;

	rc = container_url(&url, err);
	if (rc < 0)
		goto out;
	rc = container_auth(&auth, err);
	if (rc < 0)
		goto out;
	hopts.connect_timeout_ms = 2000;
	hopts.timeout_ms = 5000;
	hopts.max_body = META_MAX_BODY;
	/* The agents sit on the host or a link-local address: never proxied. */
	hopts.no_proxy = strncasecmp(url, "http://", 7) == 0;
	req.method = "GET";
	req.url = url;
	if (auth != NULL) {
		headers[0] = auth;
		req.headers = headers;
		req.nheaders = 1;
	}
	rc = aws_creds_http_send(CONTAINER, o, &hopts, &req, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status != 200) {
		rc = aws_creds_status_error(err, CONTAINER, url, resp.status);
		goto out;
	}
	rc = meta_parse_creds(CONTAINER, "container", kt_buf_str(&resp.body), resp.body.len, out,
			      err);
out:
	kt_http_resp_free(&resp);
	kt_str_free_wiped(auth);
	free(url);
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", CONTAINER ": out of memory");
	return rc;
}

/* --- instance metadata (IMDSv2) --------------------------------------------- */

/* A metadata path component must be a plain name: no '/', no '..'. */
static bool imds_name_ok(const char *s)
{
	if (*s == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr("+=,.@_-", *s) == NULL)
			return false;
	}
	return true;
}

int aws_creds_from_imds(const struct aws_creds_opts *o, struct aws_imds_token *tok,
			struct aws_creds *out, struct aws_error *err)
{
	static const char ROLES[] = "/latest/meta-data/iam/security-credentials/";
	struct kt_http_resp resp = { 0 };
	struct aws_imds m = { 0 };
	char url[512], path[256], role[AWS_IAM_ROLE_NAME_MAX + 1];
	size_t n;
	int rc;

	if (aws_imds_disabled())
		return -ENOENT;
	rc = aws_imds_open(&m, o, tok, err);
	if (rc < 0)
		goto out;
	rc = aws_imds_get(&m, ROLES, &resp, url, sizeof(url), err);
	if (rc < 0)
		goto out;
	if (resp.status == 404) {
		aws_error_set(err, AWS_ERR_NO_CREDENTIALS, "NoRole",
			      IMDS ": no IAM role is attached to this instance (%s answered 404)",
			      url);
		err->http_status = 404;
		rc = -ENOENT;
		goto out;
	}
	if (resp.status != 200) {
		rc = aws_creds_status_error(err, IMDS, url, resp.status);
		goto out;
	}
	/* The listing names one role per line; an instance has at most one.
	 * A name longer than IAM allows is refused, not cut: a cut name would
	 * ask for another role's credentials, or be a wrong answer mistaken
	 * for a right one. */
	n = strcspn(kt_buf_str(&resp.body), "\r\n");
	if (n > AWS_IAM_ROLE_NAME_MAX) {
		aws_error_set(err, AWS_ERR_MALFORMED, "BadRoleName",
			      IMDS ": %s named an IAM role of %zu characters, more than the %d "
				   "IAM allows; refusing it",
			      url, n, AWS_IAM_ROLE_NAME_MAX);
		rc = -EBADMSG;
		goto out;
	}
	memcpy(role, kt_buf_str(&resp.body), n);
	role[n] = '\0';
	if (!imds_name_ok(role)) {
		aws_error_set(err, n == 0 ? AWS_ERR_NO_CREDENTIALS : AWS_ERR_MALFORMED, "NoRole",
			      IMDS ": %s named no usable IAM role", url);
		rc = n == 0 ? -ENOENT : -EBADMSG;
		goto out;
	}
	snprintf(path, sizeof(path), "%s%s", ROLES, role);
	rc = aws_imds_get(&m, path, &resp, url, sizeof(url), err);
	if (rc < 0)
		goto out;
	if (resp.status != 200) {
		rc = aws_creds_status_error(err, IMDS, url, resp.status);
		goto out;
	}
	rc = meta_parse_creds(IMDS, "imds", kt_buf_str(&resp.body), resp.body.len, out, err);
out:
	kt_http_resp_free(&resp);
	aws_imds_close(&m);
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", IMDS ": out of memory");
	return rc;
}

/* The EC2 instance metadata client (IMDSv2): session tokens, GETs that carry
 * them, the IMDSv1 fallback, and the region lookup built on them. The
 * instance credential provider in creds_meta.c is the other caller. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imds.h"
#include "creds_util.h"
#include "http.h"
#include "common/kt_buf.h"
#include "common/log.h"
#include "common/secmem.h"

#define IMDS "instance metadata"

/* The service's answers (a token, a role name, a credentials object, a region)
 * are small. */
#define IMDS_MAX_BODY (64u * 1024)
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL 21600
#define IMDS_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds: 21600"
/* A token is not used in its last minute, so that it cannot expire in flight. */
#define IMDS_TOKEN_MARGIN 60

void aws_imds_token_clear(struct aws_imds_token *t)
{
	kt_str_free_wiped(t->token);
	t->token = NULL;
	t->expires = 0;
}

bool aws_imds_disabled(void)
{
	const char *v = getenv("AWS_EC2_METADATA_DISABLED");

	return v != NULL && strcasecmp(v, "true") == 0;
}

int aws_imds_open(struct aws_imds *m, const struct aws_creds_opts *o, struct aws_imds_token *tok,
		  struct aws_error *err)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	struct kt_http_opts hopts = { 0 };
	size_t n;
	int rc;

	memset(m, 0, sizeof(*m));
	m->o = o;
	m->tok = tok;
	if (ep == NULL || *ep == '\0')
		ep = mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6 : IMDS_DEFAULT;
	n = strlen(ep);
	while (n > 0 && ep[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(m->base)) {
		aws_error_set(err, AWS_ERR_CONFIG, "BadEndpoint",
			      IMDS ": AWS_EC2_METADATA_SERVICE_ENDPOINT is not usable");
		return -EINVAL;
	}
	memcpy(m->base, ep, n);
	m->base[n] = '\0';
	hopts.connect_timeout_ms = o->imds_timeout_ms > 0 ? o->imds_timeout_ms : 1000;
	hopts.timeout_ms = hopts.connect_timeout_ms * 2;
	hopts.max_body = IMDS_MAX_BODY;
	hopts.no_proxy = true;
	hopts.cancel = o->cancel;
	rc = kt_http_new(&hopts, &m->h);
	if (rc < 0)
		aws_error_set(err, AWS_ERR_CONFIG, "HttpSetup", IMDS ": cannot set up HTTP (%s)",
			      strerror(-rc));
	return rc;
}

/* One request to base + path. Returns 0 when an answer came. */
static int imds_send(struct aws_imds *m, const char *method, const char *path, const char *header,
		     struct kt_http_resp *resp, char *url, size_t urllen, struct aws_error *err)
{
	struct kt_http_req req = { 0 };
	const char *headers[1] = { header };
	int rc;

	kt_http_resp_free(resp);
	memset(resp, 0, sizeof(*resp));
	snprintf(url, urllen, "%s%s", m->base, path);
	req.method = method;
	req.url = url;
	req.headers = header != NULL ? headers : NULL;
	req.nheaders = header != NULL ? 1 : 0;
	rc = kt_http_do(m->h, &req, resp);
	if (rc < 0)
		aws_creds_http_error(err, IMDS, url, rc, m->h);
	return rc;
}

/* Gets a session token, or switches to IMDSv1 when that is allowed and the
 * service refuses tokens (403, 404, 405: an old or restricted endpoint). */
static int imds_token(struct aws_imds *m, struct aws_error *err)
{
	struct kt_http_resp resp = { 0 };
	char url[512];
	size_t n;
	int rc;

	aws_imds_token_clear(m->tok);
	rc = imds_send(m, "PUT", "/latest/api/token", IMDS_TTL_HEADER, &resp, url, sizeof(url),
		       err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		n = strcspn(kt_buf_str(&resp.body), "\r\n");
		if (n == 0) {
			aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
				      IMDS ": %s answered an empty token", url);
			rc = -EBADMSG;
			goto out;
		}
		m->tok->token = kt_strndup(kt_buf_str(&resp.body), n);
		m->tok->expires = time(NULL) + IMDS_TOKEN_TTL;
		rc = m->tok->token == NULL ? -ENOMEM : 0;
		goto out;
	}
	if ((resp.status == 403 || resp.status == 404 || resp.status == 405) &&
	    m->o->imds_v1_fallback) {
		log_debug(IMDS ": token PUT answered %ld, falling back to IMDSv1", resp.status);
		m->v1 = true;
		goto out;
	}
	rc = aws_creds_status_error(err, IMDS, url, resp.status);
	if (resp.status == 403 || resp.status == 404 || resp.status == 405) {
		size_t l = strlen(err->message);

		snprintf(err->message + l, sizeof(err->message) - l,
			 " to the token PUT, and IMDSv1 fallback is off");
	}
out:
	kt_http_resp_free(&resp);
	return rc;
}

/* GET base + path with the session token, taking a new token once when the
 * service says 401 (the old one expired or the service restarted). */
int aws_imds_get(struct aws_imds *m, const char *path, struct kt_http_resp *resp, char *url,
		 size_t urllen, struct aws_error *err)
{
	struct kt_buf hdr = KT_BUF_INIT(4096);
	int rc = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (!m->v1 &&
		    (m->tok->token == NULL || time(NULL) >= m->tok->expires - IMDS_TOKEN_MARGIN)) {
			rc = imds_token(m, err);
			if (rc < 0)
				break;
		}
		kt_buf_reset(&hdr);
		if (m->tok->token != NULL && !m->v1) {
			rc = kt_buf_printf(&hdr, "X-aws-ec2-metadata-token: %s", m->tok->token);
			if (rc < 0)
				break;
		}
		rc = imds_send(m, "GET", path, hdr.len > 0 ? kt_buf_str(&hdr) : NULL, resp, url,
			       urllen, err);
		if (rc < 0 || resp->status != 401 || m->v1)
			break;
		aws_imds_token_clear(m->tok);
	}
	kt_buf_free(&hdr);
	return rc;
}

void aws_imds_close(struct aws_imds *m)
{
	kt_http_free(m->h);
	m->h = NULL;
}

int aws_imds_region(const struct aws_creds_opts *opts, char **region, struct aws_error *err)
{
	struct aws_creds_opts dflt = { 0 };
	struct aws_imds_token tok = { 0 };
	struct kt_http_resp resp = { 0 };
	struct aws_imds m = { 0 };
	char url[512];
	size_t n;
	int rc;

	*region = NULL;
	aws_error_clear(err);
	if (aws_imds_disabled()) {
		aws_error_set(err, AWS_ERR_CONFIG, "ImdsDisabled",
			      IMDS ": disabled by AWS_EC2_METADATA_DISABLED, no region from it");
		return -ENOENT;
	}
	rc = aws_imds_open(&m, opts != NULL ? opts : &dflt, &tok, err);
	if (rc < 0)
		goto out;
	rc = aws_imds_get(&m, "/latest/meta-data/placement/region", &resp, url, sizeof(url), err);
	if (rc < 0)
		goto out;
	if (resp.status != 200) {
		rc = aws_creds_status_error(err, IMDS, url, resp.status);
		goto out;
	}
	n = strcspn(kt_buf_str(&resp.body), "\r\n");
	for (size_t i = 0; i < n; i++) {
		char ch = kt_buf_str(&resp.body)[i];

		if (!islower((unsigned char)ch) && !isdigit((unsigned char)ch) && ch != '-')
			n = 0;
	}
	if (n == 0 || n > 32) {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
			      IMDS ": %s did not answer a region name", url);
		rc = -EBADMSG;
		goto out;
	}
	*region = kt_strndup(kt_buf_str(&resp.body), n);
	rc = *region == NULL ? -ENOMEM : 0;
out:
	kt_http_resp_free(&resp);
	aws_imds_close(&m);
	aws_imds_token_clear(&tok);
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", IMDS ": out of memory");
	return rc;
}

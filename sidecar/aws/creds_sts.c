/* The web identity provider: trades a token file (Kubernetes service account,
 * GitHub OIDC, ...) for temporary credentials with an unsigned STS
 * AssumeRoleWithWebIdentity call, and reads STS's XML answer without a library. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds_int.h"
#include "creds_util.h"
#include "endpoint.h"
#include "http.h"
#include "common/kt_buf.h"
#include "common/log.h"
#include "profile.h"
#include "common/secmem.h"

#define WHAT "web identity"

/* STS answers are small; this bounds both the request body (the token is at
 * most AWS_CREDS_MAX_TOKEN_FILE, three times that URL-encoded) and the answer. */
#define STS_MAX_BODY (256u * 1024)

struct web_identity_cfg {
	const char *token_file;
	const char *role_arn;
	const char *session_name;
};

/* Finds the first <tag>...</tag> in doc[0..len) and returns its content.
 * Attributes on the opening tag are allowed; "<tagX>" does not match "<tag>".
 * Returns 0, or -ENOENT when the element is missing or not closed. */
static int xml_element(const char *doc, size_t len, const char *tag, const char **content,
		       size_t *clen)
{
	size_t tl = strlen(tag);
	const char *p = doc, *end = doc + len, *open, *gt, *close;

	for (;;) {
		open = memchr(p, '<', (size_t)(end - p));
		if (open == NULL || (size_t)(end - open) < tl + 2)
			return -ENOENT;
		p = open + 1;
		if (memcmp(p, tag, tl) != 0)
			continue;
		if (p[tl] == '>' || p[tl] == ' ' || p[tl] == '\t' || p[tl] == '\n' ||
		    p[tl] == '\r' || p[tl] == '/')
			break;
	}
	gt = memchr(p + tl, '>', (size_t)(end - (p + tl)));
	if (gt == NULL)
		return -ENOENT;
	if (gt[-1] == '/') {
		/* <tag/>: present and empty. */
		*content = gt + 1;
		*clen = 0;
		return 0;
	}
	for (close = gt + 1;; close++) {
		close = memchr(close, '<', (size_t)(end - close));
		if (close == NULL || (size_t)(end - close) < tl + 3)
			return -ENOENT;
		if (close[1] == '/' && memcmp(close + 2, tag, tl) == 0 && close[2 + tl] == '>')
			break;
	}
	*content = gt + 1;
	*clen = (size_t)(close - (gt + 1));
	return 0;
}

/* Decodes the entity at s ('&', n bytes left) into *c: one of the five
 * predefined ones or an ASCII character reference. Returns the bytes used, or
 * 0 to keep the text as it is (STS's fields are plain ASCII). */
static size_t xml_entity(const char *s, size_t n, char *c)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {
		{ "&amp;", '&' },  { "&lt;", '<' },    { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	char num[8], *end;
	size_t j = 2, m = 0;
	int base = 10;
	long v;

	for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
		size_t el = strlen(ents[k].ent);

		if (n >= el && memcmp(s, ents[k].ent, el) == 0) {
			*c = ents[k].c;
			return el;
		}
	}
	if (n < 4 || s[1] != '#')
		return 0;
	if (s[j] == 'x' || s[j] == 'X') {
		base = 16;
		j++;
	}
	while (j < n && s[j] != ';' && m < sizeof(num) - 1)
		num[m++] = s[j++];
	num[m] = '\0';
	if (m == 0 || j >= n || s[j] != ';')
		return 0;
	errno = 0;
	v = strtol(num, &end, base);
	if (errno != 0 || *end != '\0' || v <= 0 || v >= 0x80)
		return 0;
	*c = (char)v;
	return j + 1;
}

/* Copies element text into a malloc'd string, trimmed, entities decoded. */
static int xml_text(const char *s, size_t n, char **out)
{
	char *d;
	size_t o = 0;

	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++, n--;
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	d = malloc(n + 1);
	if (d == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t used = s[i] == '&' ? xml_entity(s + i, n - i, &d[o]) : 0;

		if (used == 0) {
			d[o] = s[i];
			used = 1;
		}
		o++;
		i += used;
	}
	d[o] = '\0';
	*out = d;
	return 0;
}

/* The text of <tag> inside doc, or NULL in *out when it is missing. */
static int xml_get(const char *doc, size_t len, const char *tag, char **out)
{
	const char *c;
	size_t n;

	*out = NULL;
	if (xml_element(doc, len, tag, &c, &n) < 0)
		return 0;
	return xml_text(c, n, out);
}

/* Reads AssumeRoleWithWebIdentity's answer. Credentials are looked for only
 * inside <Credentials>, so that no other element can pose as them. */
static int sts_parse_creds(const char *body, size_t len, struct aws_creds *out,
			   struct aws_error *err)
{
	static const char *const tags[4] = { "AccessKeyId", "SecretAccessKey", "SessionToken",
					     "Expiration" };
	char *v[4] = { NULL, NULL, NULL, NULL };
	const char *cr;
	size_t crlen;
	int rc = 0;

	if (xml_element(body, len, "Credentials", &cr, &crlen) < 0) {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
			      WHAT ": STS answer has no <Credentials>");
		rc = -EBADMSG;
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		rc = xml_get(cr, crlen, tags[i], &v[i]);
		if (rc < 0)
			goto out;
		if (v[i] == NULL || v[i][0] == '\0') {
			aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
				      WHAT ": STS answer has no %s", tags[i]);
			rc = -EBADMSG;
			goto out;
		}
	}
	rc = aws_creds_fill(out, "web-identity", WHAT, v[0], v[1], v[2], v[3], err);
out:
	for (int i = 0; i < 4; i++)
		kt_str_free_wiped(v[i]);
	return rc;
}

/* Turns STS's <ErrorResponse><Error><Code>..</Code><Message>..</Message> into err. */
static int sts_parse_error(long status, const char *body, size_t len, const char *url,
			   struct aws_error *err)
{
	char *code = NULL, *msg = NULL;
	const char *e;
	size_t elen;

	if (xml_element(body, len, "Error", &e, &elen) == 0 &&
	    xml_get(e, elen, "Code", &code) == 0 && code != NULL && code[0] != '\0' &&
	    xml_get(e, elen, "Message", &msg) == 0) {
		aws_error_set(err, aws_error_classify(code, msg ? msg : ""), code,
			      WHAT ": STS %.*s answered %ld: %s%s%.300s", aws_creds_url_shown(url),
			      url, status, code, msg ? ": " : "", msg ? msg : "");
		err->http_status = status;
	} else {
		aws_creds_status_error(err, WHAT ": STS", url, status);
	}
	free(code);
	free(msg);
	return -EIO;
}

/* application/x-www-form-urlencoded, in the strict RFC 3986 manner. */
static int form_append(struct kt_buf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc;

	rc = kt_buf_printf(b, "%s%s=", b->len > 0 ? "&" : "", name);
	for (const unsigned char *p = (const unsigned char *)value; rc == 0 && *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			rc = kt_buf_append(b, p, 1);
		} else {
			char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			rc = kt_buf_append(b, enc, 3);
		}
	}
	return rc;
}

/* The settings from the environment, else from the config file's profile.
 * Returns -ENOENT when neither names a token file. */
static int web_identity_cfg(struct web_identity_cfg *cfg, struct aws_profile *prof,
			    struct aws_error *err)
{
	char *path = NULL, *name = NULL;
	char msg[512];
	int rc;

	cfg->token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	cfg->role_arn = getenv("AWS_ROLE_ARN");
	cfg->session_name = getenv("AWS_ROLE_SESSION_NAME");
	if (cfg->token_file != NULL && cfg->token_file[0] != '\0') {
		if (cfg->role_arn == NULL || cfg->role_arn[0] == '\0') {
			aws_error_set(
				err, AWS_ERR_CONFIG, "IncompleteConfig",
				WHAT
				": AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
			return -EINVAL;
		}
		return 0;
	}
	path = aws_profile_config_path();
	name = aws_profile_name();
	if (path == NULL || name == NULL) {
		rc = name == NULL ? -ENOMEM : -ENOENT;
		goto out;
	}
	rc = aws_profile_load(path, name, true, prof, msg, sizeof(msg));
	if (rc == -ENOENT)
		goto out;
	if (rc < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "ProfileError", "profile: %s", msg);
		goto out;
	}
	cfg->token_file = aws_profile_get(prof, "web_identity_token_file");
	cfg->role_arn = aws_profile_get(prof, "role_arn");
	cfg->session_name = aws_profile_get(prof, "role_session_name");
	if (cfg->token_file == NULL || cfg->token_file[0] == '\0') {
		rc = -ENOENT;
		goto out;
	}
	if (cfg->role_arn == NULL || cfg->role_arn[0] == '\0') {
		aws_error_set(err, AWS_ERR_CONFIG, "IncompleteConfig",
			      WHAT
			      ": %s:%d: profile '%s' has web_identity_token_file but no role_arn",
			      path, aws_profile_line(prof, "web_identity_token_file"), name);
		rc = -EINVAL;
	}
out:
	free(path);
	free(name);
	return rc;
}

/* The region whose STS endpoint to use: the chain's, else the region chain
 * without instance metadata, else us-east-1, home of the global endpoint. */
static char *sts_region(const struct aws_creds_opts *o)
{
	enum aws_source src;
	struct aws_error e;
	char *r = NULL;

	if (o->region != NULL && o->region[0] != '\0')
		return kt_strdup(o->region);
	if (aws_resolve_region(NULL, false, &r, &src, &e) == 0 && r != NULL)
		return r;
	return kt_strdup("us-east-1");
}

int aws_creds_from_web_identity(const struct aws_creds_opts *o, struct aws_creds *out,
				struct aws_error *err)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
		"Accept: text/xml",
	};
	struct web_identity_cfg cfg = { 0 };
	struct aws_profile prof = { 0 };
	struct kt_buf body = KT_BUF_INIT(STS_MAX_BODY);
	struct kt_http_opts hopts = { 0 };
	struct kt_http_resp resp = { 0 };
	struct kt_http_req req = { 0 };
	enum aws_source src;
	char *token = NULL, *region = NULL, *endpoint = NULL, *url = NULL;
	char session[64];
	size_t urllen;
	int rc;

	rc = web_identity_cfg(&cfg, &prof, err);
	if (rc < 0)
		goto out;
	if (cfg.session_name == NULL || cfg.session_name[0] == '\0') {
		snprintf(session, sizeof(session), "keyturn-%lld", (long long)time(NULL));
		cfg.session_name = session;
	}
	/* Read again on every renewal: the issuer rotates the token file. */
	rc = aws_creds_read_token_file(WHAT, cfg.token_file, &token, err);
	if (rc < 0)
		goto out;
	region = sts_region(o);
	if (region == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = aws_resolve_endpoint("sts", NULL, region, false, &endpoint, &src, err);
	if (rc < 0)
		goto out;
	urllen = strlen(endpoint) + 2;
	url = malloc(urllen);
	if (url == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(url, urllen, "%s/", endpoint);
	rc = form_append(&body, "Action", "AssumeRoleWithWebIdentity");
	if (rc == 0)
		rc = form_append(&body, "Version", "2011-06-15");
	if (rc == 0)
		rc = form_append(&body, "RoleArn", cfg.role_arn);
	if (rc == 0)
		rc = form_append(&body, "RoleSessionName", cfg.session_name);
	if (rc == 0)
		rc = form_append(&body, "WebIdentityToken", token);
	if (rc < 0)
		goto out;
	hopts.max_body = STS_MAX_BODY;
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.nheaders = sizeof(headers) / sizeof(headers[0]);
	req.body = body.data;
	req.body_len = body.len;
	rc = aws_creds_http_send(WHAT ": STS", o, &hopts, &req, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status != 200) {
		rc = sts_parse_error(resp.status, kt_buf_str(&resp.body), resp.body.len, url, err);
		goto out;
	}
	rc = sts_parse_creds(kt_buf_str(&resp.body), resp.body.len, out, err);
	if (rc == 0)
		log_debug("web identity: assumed %s as session %s", cfg.role_arn, cfg.session_name);
out:
	kt_http_resp_free(&resp);
	kt_buf_free(&body);
	kt_str_free_wiped(token);
	free(url);
	free(endpoint);
	free(region);
	aws_profile_free(&prof);
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", WHAT ": out of memory");
	return rc;
}

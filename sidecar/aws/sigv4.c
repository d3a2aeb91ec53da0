/* AWS Signature Version 4, header form: builds the canonical request, the
 * string to sign and the Authorization header value for one HTTP request.
 * SHA-256 and HMAC come from OpenSSL; every derived key is wiped before return. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/kt_buf.h"
#include "common/secmem.h"
#include "sigv4.h"
#include "sigv4_int.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"

/* One header as it goes into the canonical request. */
struct canon_header {
	char *name;   /* lower-cased */
	char *value;  /* trimmed, runs of blanks folded to one space */
	size_t order; /* position in the request: repeated names keep their order */
};

/* Headers that hop-by-hop machinery (curl, proxies, load balancers) adds,
 * drops or rewrites on the way; signing them would make the signature depend
 * on the path a request takes. botocore leaves out the same set. */
static const char *const unsigned_headers[] = {
	"connection",
	"expect",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"user-agent",
	"x-amzn-trace-id",
};

/* RFC 9110 token characters, the only ones allowed in a header name. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* Trims blanks at both ends and folds inner runs of them to one space.
 * Control characters (a CR or LF above all) are refused: a value with them
 * could never be sent as it was signed. */
static int trim_value(const char *v, char **out)
{
	size_t n = 0, cap = strlen(v) + 1;
	char *s = malloc(cap);
	bool gap = false;
	int rc = 0;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			gap = n > 0;
			continue;
		}
		if ((unsigned char)*v < 0x20 || *v == 0x7f) {
			rc = -EINVAL;
			goto out;
		}
		if (gap)
			s[n++] = ' ';
		s[n++] = *v;
		gap = false;
	}
	s[n] = '\0';
	*out = s;
	s = NULL;
out:
	kt_free_wiped(s, cap);
	return rc;
}

/* Lower-cases a header name into a new string; -EINVAL unless it is a token. */
static int lower_name(const char *name, char **out)
{
	char *s = kt_strdup(name), *p;
	int rc = *name != '\0' ? 0 : -EINVAL;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	for (p = s; *p != '\0' && rc == 0; p++) {
		if (!is_tchar((unsigned char)*p))
			rc = -EINVAL;
		else if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	if (rc == 0)
		*out = s;
	else
		free(s);
	return rc;
}

static bool is_unsigned_header(const char *lname)
{
	for (size_t i = 0; i < sizeof(unsigned_headers) / sizeof(unsigned_headers[0]); i++)
		if (strcmp(lname, unsigned_headers[i]) == 0)
			return true;
	return false;
}

static int header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int add_header(struct canon_header *h, size_t *n, const char *name, const char *value)
{
	int rc = lower_name(name, &h[*n].name);

	if (rc == 0)
		rc = trim_value(value, &h[*n].value);
	h[*n].order = *n;
	(*n)++;
	return rc;
}

/* Collects the caller's headers and the ones the signer adds into hs (room
 * for nheaders + 3). The caller may not send a header the signer owns, nor an
 * Authorization header, and must send Host. */
static int collect_headers(const struct sigv4_request *req, const char *amz_date, const char *token,
			   const char *content_hash, struct canon_header *hs, size_t *n)
{
	bool have_host = false;
	size_t i;
	int rc = 0;

	for (i = 0; i < req->nheaders && rc == 0; i++) {
		const char *lname;

		if (req->headers[i].name == NULL || req->headers[i].value == NULL) {
			rc = -EINVAL;
			break;
		}
		rc = add_header(hs, n, req->headers[i].name, req->headers[i].value);
		if (rc != 0)
			break;
		lname = hs[*n - 1].name;
		if (strcmp(lname, "x-amz-date") == 0 || strcmp(lname, "authorization") == 0 ||
		    (token != NULL && strcmp(lname, "x-amz-security-token") == 0) ||
		    (content_hash != NULL && strcmp(lname, "x-amz-content-sha256") == 0))
			rc = -EINVAL;
		if (strcmp(lname, "host") == 0)
			have_host = hs[*n - 1].value[0] != '\0';
		if (is_unsigned_header(lname)) {
			(*n)--;
			kt_str_free_wiped(hs[*n].name);
			kt_str_free_wiped(hs[*n].value);
			hs[*n].name = hs[*n].value = NULL;
		}
	}
	if (rc == 0 && !have_host)
		rc = -EINVAL;
	if (rc == 0)
		rc = add_header(hs, n, "x-amz-date", amz_date);
	if (rc == 0 && token != NULL)
		rc = add_header(hs, n, "x-amz-security-token", token);
	if (rc == 0 && content_hash != NULL)
		rc = add_header(hs, n, "x-amz-content-sha256", content_hash);
	return rc;
}

/* Appends the canonical header lines, a blank line and the signed header
 * list to cr, and the list alone to signed_list. Repeated names become one
 * line with their values joined by commas in request order. */
static int canonical_headers(struct canon_header *hs, size_t n, struct kt_buf *cr,
			     struct kt_buf *signed_list)
{
	int rc = 0;

	qsort(hs, n, sizeof(*hs), header_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
			rc = kt_buf_printf(cr, ",%s", hs[i].value);
			continue;
		}
		rc = kt_buf_printf(cr, "%s%s:%s", i > 0 ? "\n" : "", hs[i].name, hs[i].value);
		if (rc == 0)
			rc = kt_buf_printf(signed_list, "%s%s", i > 0 ? ";" : "", hs[i].name);
	}
	if (rc == 0)
		rc = kt_buf_printf(cr, "\n\n%s\n", kt_buf_str(signed_list));
	return rc;
}

static int sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -ENOMEM;
	to_hex(md, 32, out);
	return 0;
}

static int hmac_sha256(const void *key, size_t keylen, const char *msg, size_t msglen,
		       unsigned char out[32])
{
	unsigned int outlen = 0;

	if (keylen > INT_MAX)
		return -EINVAL;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out,
		 &outlen) == NULL ||
	    outlen != 32)
		return -ENOMEM;
	return 0;
}

/* Signs sts with the key derived from the secret through date, region and
 * service; writes the hex signature. Every intermediate key is wiped. */
static int compute_signature(const char *secret, const char *date8,
			     const struct sigv4_params *params, const char *sts, char out[65])
{
	struct kt_buf ksecret = KT_BUF_INIT(SIGV4_TEXT_MAX);
	unsigned char ka[32], kb[32];
	int rc;

	rc = kt_buf_printf(&ksecret, "AWS4%s", secret);
	if (rc == 0)
		rc = hmac_sha256(ksecret.data, ksecret.len, date8, strlen(date8), ka);
	if (rc == 0)
		rc = hmac_sha256(ka, 32, params->region, strlen(params->region), kb);
	if (rc == 0)
		rc = hmac_sha256(kb, 32, params->service, strlen(params->service), ka);
	if (rc == 0)
		rc = hmac_sha256(ka, 32, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), kb);
	if (rc == 0)
		rc = hmac_sha256(kb, 32, sts, strlen(sts), ka);
	if (rc == 0)
		to_hex(ka, 32, out);
	kt_wipe(ka, sizeof(ka));
	kt_wipe(kb, sizeof(kb));
	kt_buf_free(&ksecret);
	return rc;
}

static int format_date(time_t t, char out[17])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 ||
	    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	return 0;
}

void sigv4_format_date(time_t t, char out[17])
{
	if (format_date(t, out) != 0)
		memcpy(out, "00000000T000000Z", 17);
}

/* A credential scope part ends up between slashes and inside a header, so it
 * must be non-empty printable ASCII without '/', ',' or blanks. */
static bool valid_scope_part(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '/' || *s == ',')
			return false;
	return true;
}

static bool valid_request(const struct sigv4_request *req, const struct sigv4_key *key,
			  const struct sigv4_params *params)
{
	const char *m;

	if (req == NULL || key == NULL || params == NULL || key->secret_key == NULL ||
	    req->method == NULL || req->method[0] == '\0' ||
	    (req->nheaders > 0 && req->headers == NULL) ||
	    (req->body == NULL && req->body_len > 0) || req->nheaders > SIGV4_TEXT_MAX ||
	    !valid_scope_part(key->access_key) || !valid_scope_part(params->region) ||
	    !valid_scope_part(params->service))
		return false;
	for (m = req->method; *m != '\0'; m++)
		if (!is_tchar((unsigned char)*m))
			return false;
	return true;
}

/* Builds the canonical request into cr and the signed header list into
 * signed_list, from the request and the date and payload hash in res. */
static int canonical_request(const struct sigv4_request *req, const struct sigv4_params *params,
			     const char *token, const struct sigv4_result *res, struct kt_buf *cr,
			     struct kt_buf *signed_list)
{
	struct canon_header *hs;
	size_t i, nh = 0;
	int rc;

	hs = calloc(req->nheaders + 3, sizeof(*hs));
	if (hs == NULL)
		return -ENOMEM;
	rc = collect_headers(req, res->amz_date, token,
			     params->sign_body ? res->payload_hash : NULL, hs, &nh);
	if (rc == 0)
		rc = kt_buf_printf(cr, "%s\n", req->method);
	if (rc == 0)
		rc = sigv4_canonical_uri(req->path, params->normalize_path, cr);
	if (rc == 0)
		rc = kt_buf_append(cr, "\n", 1);
	if (rc == 0)
		rc = sigv4_canonical_query(req->query, cr);
	if (rc == 0)
		rc = kt_buf_append(cr, "\n", 1);
	if (rc == 0)
		rc = canonical_headers(hs, nh, cr, signed_list);
	if (rc == 0)
		rc = kt_buf_append_str(cr, res->payload_hash);
	for (i = 0; i < req->nheaders + 3; i++) {
		kt_str_free_wiped(hs[i].name);
		kt_str_free_wiped(hs[i].value);
	}
	free(hs);
	return rc;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key,
	       const struct sigv4_params *params, struct sigv4_result *out)
{
	struct kt_buf cr = KT_BUF_INIT(SIGV4_TEXT_MAX);
	struct kt_buf sts = KT_BUF_INIT(SIGV4_TEXT_MAX);
	struct kt_buf auth = KT_BUF_INIT(SIGV4_TEXT_MAX);
	struct kt_buf signed_list = KT_BUF_INIT(SIGV4_TEXT_MAX);
	const char *token = NULL;
	char date8[9], cr_hash[65];
	int rc;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!valid_request(req, key, params)) {
		rc = -EINVAL;
		goto out;
	}
	if (key->session_token != NULL && key->session_token[0] != '\0' &&
	    !params->omit_session_token)
		token = key->session_token;
	rc = format_date(params->when, out->amz_date);
	if (rc == 0)
		rc = sha256_hex(req->body != NULL ? req->body : "", req->body_len,
				out->payload_hash);
	if (rc != 0)
		goto out;
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';

	rc = canonical_request(req, params, token, out, &cr, &signed_list);
	if (rc == 0)
		rc = sha256_hex(cr.data, cr.len, cr_hash);
	if (rc == 0)
		rc = kt_buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/" SIGV4_TERMINATOR "\n%s",
				   out->amz_date, date8, params->region, params->service, cr_hash);
	if (rc == 0)
		rc = compute_signature(key->secret_key, date8, params, kt_buf_str(&sts),
				       out->signature);
	if (rc == 0)
		rc = kt_buf_printf(&auth,
				   SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
						   ", SignedHeaders=%s, Signature=%s",
				   key->access_key, date8, params->region, params->service,
				   kt_buf_str(&signed_list), out->signature);
	if (rc != 0)
		goto out;

	out->canonical_request = kt_buf_steal(&cr, NULL);
	out->string_to_sign = kt_buf_steal(&sts, NULL);
	out->authorization = kt_buf_steal(&auth, NULL);
	if (out->canonical_request == NULL || out->string_to_sign == NULL ||
	    out->authorization == NULL)
		rc = -ENOMEM;
out:
	/* A limit hit means an absurd request, which the header calls malformed. */
	if (rc == -E2BIG)
		rc = -EINVAL;
	if (rc != 0)
		sigv4_result_free(out);
	kt_buf_free(&cr);
	kt_buf_free(&sts);
	kt_buf_free(&auth);
	kt_buf_free(&signed_list);
	return rc;
}

void sigv4_result_free(struct sigv4_result *res)
{
	if (res == NULL)
		return;
	kt_str_free_wiped(res->canonical_request);
	kt_str_free_wiped(res->string_to_sign);
	kt_str_free_wiped(res->authorization);
	kt_wipe(res, sizeof(*res));
}

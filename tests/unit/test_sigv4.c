/* Unit tests for the SigV4 signer: every case of the AWS SigV4 test suite
 * (canonical request, string to sign and signature, byte for byte), then the
 * static helpers, reached by compiling sigv4.c and sigv4_uri.c into this file. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>

/* The module under test, with its static functions in reach. */
#include "aws/sigv4.c"
#include "aws/sigv4_uri.c"

#define SUITE_SUBDIR "aws-sigv4-test-suite"
#define MAX_HEADERS 32

/* Every case of the suite, so that a case gone missing fails by name. */
static const char *const suite_names[] = {
	"get-header-key-duplicate",
	"get-header-value-multiline",
	"get-header-value-order",
	"get-header-value-trim",
	"get-relative-normalized",
	"get-relative-relative-normalized",
	"get-relative-relative-unnormalized",
	"get-relative-unnormalized",
	"get-slash-dot-slash-normalized",
	"get-slash-dot-slash-unnormalized",
	"get-slash-normalized",
	"get-slash-pointless-dot-normalized",
	"get-slash-pointless-dot-unnormalized",
	"get-slash-unnormalized",
	"get-slashes-normalized",
	"get-slashes-unnormalized",
	"get-space-normalized",
	"get-space-unnormalized",
	"get-unreserved",
	"get-utf8",
	"get-vanilla",
	"get-vanilla-empty-query-key",
	"get-vanilla-query",
	"get-vanilla-query-order-encoded",
	"get-vanilla-query-order-key-case",
	"get-vanilla-query-unreserved",
	"get-vanilla-utf8-query",
	"get-vanilla-with-session-token",
	"post-header-key-case",
	"post-header-key-sort",
	"post-header-value-case",
	"post-sts-header-after",
	"post-sts-header-before",
	"post-vanilla",
	"post-vanilla-empty-query-value",
	"post-vanilla-query",
	"post-x-www-form-urlencoded",
	"post-x-www-form-urlencoded-parameters",
};
#define NSUITE (sizeof(suite_names) / sizeof(suite_names[0]))

/* A request.txt taken apart in place: every pointer is into text. */
struct parsed_request {
	char *text;
	struct sigv4_request req;
	struct sigv4_header headers[MAX_HEADERS];
};

/* What one suite case owns, freed by the teardown even when a check fails. */
struct suite_case {
	const char *name;
	struct parsed_request pr;
	json_object *ctx;
	char *expect_creq, *expect_sts, *expect_sig, *expect_signed;
	struct sigv4_result res;
};

static struct suite_case cases[NSUITE];

static const char *testdata_dir(void)
{
	const char *d = getenv("KT_TESTDATA");

	return d != NULL && d[0] != '\0' ? d : "/work/shared/testdata";
}

/* Reads a whole file into a NUL-terminated buffer; fails the test if it cannot. */
static char *slurp(const char *casename, const char *file, size_t *len)
{
	char path[4096];
	char *buf = NULL;
	long size;
	FILE *f;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s/%s/%s", testdata_dir(), SUITE_SUBDIR, casename,
		     file);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size + 1)) != NULL &&
	    fread(buf, 1, (size_t)size, f) == (size_t)size) {
		buf[size] = '\0';
		if (len != NULL)
			*len = (size_t)size;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf == NULL)
		fail_msg("cannot read %s", path);
	return buf;
}

/* Ends the line at p (LF or CRLF, or the end of text) and returns the start
 * of the next line, or NULL when there is none. */
static char *end_line(char *p)
{
	char *nl = strchr(p, '\n');

	if (nl == NULL)
		return NULL;
	if (nl > p && nl[-1] == '\r')
		nl[-1] = '\0';
	*nl = '\0';
	return nl + 1;
}

/* Parses "METHOD target HTTP/1.1", header lines and an optional body. The
 * target may hold spaces (get-space-*), so the version is cut at the last
 * space. A line that starts with a blank continues the header above it
 * (obs-fold); the fold itself becomes a space, as RFC 9112 says. */
static void parse_request(struct parsed_request *pr, size_t len)
{
	char *p = pr->text, *next, *sp, *colon, *q;
	char *end = pr->text + len;

	next = end_line(p);
	sp = strchr(p, ' ');
	assert_non_null(sp);
	*sp = '\0';
	pr->req.method = p;
	p = sp + 1;
	sp = strrchr(p, ' ');
	assert_non_null(sp);
	*sp = '\0';
	q = strchr(p, '?');
	if (q != NULL)
		*q++ = '\0';
	pr->req.path = p;
	pr->req.query = q;
	pr->req.body = "";
	pr->req.body_len = 0;

	for (p = next; p != NULL && *p != '\0' && *p != '\r' && *p != '\n'; p = next) {
		char *nl = strchr(p, '\n');

		while (nl != NULL && (nl[1] == ' ' || nl[1] == '\t')) {
			if (nl > p && nl[-1] == '\r')
				nl[-1] = ' ';
			*nl = ' ';
			nl = strchr(nl, '\n');
		}
		next = end_line(p);
		colon = strchr(p, ':');
		assert_non_null(colon);
		assert_true(pr->req.nheaders < MAX_HEADERS);
		*colon = '\0';
		pr->headers[pr->req.nheaders].name = p;
		pr->headers[pr->req.nheaders].value = colon + 1;
		pr->req.nheaders++;
	}
	if (p != NULL && *p != '\0') {
		next = end_line(p);
		if (next != NULL) {
			pr->req.body = next;
			pr->req.body_len = (size_t)(end - next);
		}
	}
	pr->req.headers = pr->headers;
}

static const char *ctx_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool ctx_bool(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* The Authorization value from header-signed-request.txt, cut in place. */
static const char *signed_authorization(char *text)
{
	char *p = strstr(text, "\nAuthorization:");

	assert_non_null(p);
	p += strlen("\nAuthorization:");
	end_line(p);
	return p;
}

static int suite_teardown(void **state)
{
	struct suite_case *c = *state;

	free(c->pr.text);
	json_object_put(c->ctx);
	free(c->expect_creq);
	free(c->expect_sts);
	free(c->expect_sig);
	free(c->expect_signed);
	sigv4_result_free(&c->res);
	memset(&c->pr, 0, sizeof(c->pr));
	c->ctx = NULL;
	c->expect_creq = c->expect_sts = c->expect_sig = c->expect_signed = NULL;
	return 0;
}

static void test_suite_case(void **state)
{
	struct suite_case *c = *state;
	struct sigv4_params params = { 0 };
	struct sigv4_key key = { 0 };
	json_object *creds;
	const char *ts;
	char *ctx_text, *rest;
	struct tm tm = { 0 };
	size_t len = 0;

	ctx_text = slurp(c->name, "context.json", NULL);
	c->ctx = json_tokener_parse(ctx_text);
	free(ctx_text);
	assert_non_null(c->ctx);
	c->pr.text = slurp(c->name, "request.txt", &len);
	c->expect_creq = slurp(c->name, "header-canonical-request.txt", NULL);
	c->expect_sts = slurp(c->name, "header-string-to-sign.txt", NULL);
	c->expect_sig = slurp(c->name, "header-signature.txt", NULL);
	c->expect_signed = slurp(c->name, "header-signed-request.txt", NULL);
	parse_request(&c->pr, len);

	assert_true(json_object_object_get_ex(c->ctx, "credentials", &creds));
	key.access_key = ctx_string(creds, "access_key_id");
	key.secret_key = ctx_string(creds, "secret_access_key");
	key.session_token = ctx_string(creds, "token");
	params.region = ctx_string(c->ctx, "region");
	params.service = ctx_string(c->ctx, "service");
	params.normalize_path = ctx_bool(c->ctx, "normalize");
	params.sign_body = ctx_bool(c->ctx, "sign_body");
	params.omit_session_token = ctx_bool(c->ctx, "omit_session_token");
	ts = ctx_string(c->ctx, "timestamp");
	assert_non_null(ts);
	rest = strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_true(rest != NULL && *rest == '\0');
	params.when = timegm(&tm);

	assert_int_equal(sigv4_sign(&c->pr.req, &key, &params, &c->res), 0);
	assert_string_equal(c->res.canonical_request, c->expect_creq);
	assert_string_equal(c->res.string_to_sign, c->expect_sts);
	assert_string_equal(c->res.signature, c->expect_sig);
	assert_string_equal(c->res.authorization, signed_authorization(c->expect_signed));
}

static bool is_dir(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);

	return n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory holds exactly the 38 cases named above, no more. */
static void test_suite_complete(void **state)
{
	char path[4096];
	struct dirent *de;
	size_t i, found = 0;
	DIR *d;

	(void)state;
	assert_int_equal(NSUITE, 38);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", testdata_dir(), SUITE_SUBDIR) <
		    sizeof(path));
	d = opendir(path);
	if (d == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		bool known = false;

		if (de->d_name[0] == '.' || !is_dir(path, de->d_name))
			continue;
		for (i = 0; i < NSUITE; i++)
			known = known || strcmp(de->d_name, suite_names[i]) == 0;
		if (!known) {
			closedir(d);
			fail_msg("unexpected case %s in %s", de->d_name, path);
		}
		found++;
	}
	closedir(d);
	assert_int_equal(found, NSUITE);
}

/* --- helpers ------------------------------------------------------------ */

static void expect_encoded(const char *in, int flags, const char *want)
{
	struct kt_buf b = KT_BUF_INIT(1024);

	assert_int_equal(sigv4_uri_encode(&b, in, strlen(in), flags), 0);
	assert_string_equal(kt_buf_str(&b), want);
	kt_buf_free(&b);
}

static void test_uri_encode(void **state)
{
	(void)state;
	expect_encoded("AZaz09-._~", 0, "AZaz09-._~");
	expect_encoded("/a b/c", ENC_KEEP_SLASH, "/a%20b/c");
	expect_encoded("/a b/c", 0, "%2Fa%20b%2Fc");
	/* A path arrives already encoded; its '%' is encoded again (non-S3). */
	expect_encoded("/%20", ENC_KEEP_SLASH, "/%2520");
	expect_encoded("\xe1\x88\xb4+=&", 0, "%E1%88%B4%2B%3D%26");
	expect_encoded("", ENC_KEEP_SLASH, "");
	/* A query part is decoded first, so encoded or not it comes out the same. */
	expect_encoded("%e1%88%B4%7e%2F", ENC_DECODE, "%E1%88%B4~%2F");
	expect_encoded("%00%", ENC_DECODE, "%00%25");
}

static void expect_query(const char *in, const char *want)
{
	struct kt_buf b = KT_BUF_INIT(1024);

	assert_int_equal(sigv4_canonical_query(in, &b), 0);
	assert_string_equal(kt_buf_str(&b), want);
	kt_buf_free(&b);
}

static void test_canonical_query(void **state)
{
	(void)state;
	expect_query(NULL, "");
	expect_query("", "");
	expect_query("b=2&a=1&a=0", "a=0&a=1&b=2");
	/* Sorted by the encoded key: '%' (0x25) sorts before letters. */
	expect_query("Param=x&%E1%88%B4=y", "%E1%88%B4=y&Param=x");
	/* Lower-case escapes, raw bytes and '+' all come out canonical. */
	expect_query("k=a%2fb&u=\xe1\x88\xb4&p=a+b", "k=a%2Fb&p=a%2Bb&u=%E1%88%B4");
	/* A broken escape is a literal '%'. */
	expect_query("a=%zz&b=%4", "a=%25zz&b=%254");
	/* No '=' means an empty value; empty pieces are dropped. */
	expect_query("flag&&x=", "flag=&x=");
}

static void expect_normalized(const char *in, const char *want)
{
	struct kt_buf b = KT_BUF_INIT(1024);

	assert_int_equal(sigv4_normalize_path(in, &b), 0);
	assert_string_equal(kt_buf_str(&b), want);
	kt_buf_free(&b);
}

static void test_normalize_path(void **state)
{
	(void)state;
	expect_normalized("/", "/");
	expect_normalized("//", "/");
	expect_normalized("/./", "/");
	expect_normalized("/example/..", "/");
	expect_normalized("/a/b/../..", "/");
	expect_normalized("/../../a", "/a");
	expect_normalized("//example//", "/example/");
	expect_normalized("/a/./b/", "/a/b/");
	expect_normalized("/a/b/..", "/a");
	expect_normalized("/a/../", "/");
	expect_normalized("/.../.a/a.", "/.../.a/a.");
}

static void test_canonical_uri(void **state)
{
	struct kt_buf b = KT_BUF_INIT(1024);

	(void)state;
	assert_int_equal(sigv4_canonical_uri("//a/./b c", false, &b), 0);
	assert_string_equal(kt_buf_str(&b), "//a/./b%20c");
	kt_buf_reset(&b);
	assert_int_equal(sigv4_canonical_uri("//a/./b c/../", true, &b), 0);
	assert_string_equal(kt_buf_str(&b), "/a/");
	kt_buf_reset(&b);
	assert_int_equal(sigv4_canonical_uri(NULL, true, &b), 0);
	assert_string_equal(kt_buf_str(&b), "/");
	assert_int_equal(sigv4_canonical_uri("relative", true, &b), -EINVAL);
	kt_buf_free(&b);
}

static void expect_trimmed(const char *in, const char *want)
{
	char *out = NULL;

	assert_int_equal(trim_value(in, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_trim_value(void **state)
{
	char *out = (char *)"unchanged";

	(void)state;
	expect_trimmed("value1", "value1");
	expect_trimmed("  a   b  ", "a b");
	expect_trimmed("\t a \t\t b\t", "a b");
	expect_trimmed("\"a   b   c\"", "\"a b c\"");
	expect_trimmed("", "");
	expect_trimmed("   ", "");
	expect_trimmed("caf\xc3\xa9  au lait", "caf\xc3\xa9 au lait");
	assert_int_equal(trim_value("a\r\nb", &out), -EINVAL);
	assert_null(out);
	assert_int_equal(trim_value("a\nb", &out), -EINVAL);
	assert_int_equal(trim_value("a\x7f", &out), -EINVAL);
}

static void test_lower_name(void **state)
{
	char *out = NULL;

	(void)state;
	assert_int_equal(lower_name("X-Amz-Target", &out), 0);
	assert_string_equal(out, "x-amz-target");
	free(out);
	assert_int_equal(lower_name("", &out), -EINVAL);
	assert_int_equal(lower_name("bad name", &out), -EINVAL);
	assert_int_equal(lower_name("a:b", &out), -EINVAL);
	assert_null(out);
}

static void test_format_date(void **state)
{
	char d[17];

	(void)state;
	sigv4_format_date(0, d);
	assert_string_equal(d, "19700101T000000Z");
	sigv4_format_date(1440938160, d);
	assert_string_equal(d, "20150830T123600Z");
}

/* Signs a small request with the suite's key; headers are the caller's. */
static int sign_with(const struct sigv4_header *h, size_t n, const struct sigv4_params *p,
		     const char *token, struct sigv4_result *res)
{
	struct sigv4_request req = { "POST", "/", NULL, h, n, "Param1=value1", 13 };
	struct sigv4_key key = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token };

	return sigv4_sign(&req, &key, p, res);
}

static void test_rejects_bad_requests(void **state)
{
	static const struct sigv4_header no_host[] = { { "Content-Type", "a/b" } };
	static const struct sigv4_header dated[] = { { "Host", "h" },
						     { "X-Amz-Date", "20150830T123600Z" } };
	static const struct sigv4_header authd[] = { { "Host", "h" }, { "Authorization", "x" } };
	static const struct sigv4_header badname[] = { { "Host", "h" }, { "My Header", "x" } };
	static const struct sigv4_header crlf[] = { { "Host", "h" }, { "X-A", "1\r\nX-B: 2" } };
	static const struct sigv4_header empty_host[] = { { "Host", "  " } };
	static const struct sigv4_header tok[] = { { "Host", "h" },
						   { "X-Amz-Security-Token", "t" } };
	struct sigv4_params p = { "us-east-1", "service", 1440938160, true, false, false };
	struct sigv4_result res;

	(void)state;
	assert_int_equal(sign_with(no_host, 1, &p, NULL, &res), -EINVAL);
	assert_null(res.authorization);
	assert_int_equal(sign_with(dated, 2, &p, NULL, &res), -EINVAL);
	assert_int_equal(sign_with(authd, 2, &p, NULL, &res), -EINVAL);
	assert_int_equal(sign_with(badname, 2, &p, NULL, &res), -EINVAL);
	assert_int_equal(sign_with(crlf, 2, &p, NULL, &res), -EINVAL);
	assert_int_equal(sign_with(empty_host, 1, &p, NULL, &res), -EINVAL);
	assert_int_equal(sign_with(tok, 2, &p, "token", &res), -EINVAL);
	p.when = (time_t)1 << 60; /* past year 9999 */
	assert_int_equal(sign_with(tok, 1, &p, NULL, &res), -EINVAL);
	p.when = 1440938160;
	p.region = "us/east";
	assert_int_equal(sign_with(tok, 1, &p, NULL, &res), -EINVAL);
	p.region = "";
	assert_int_equal(sign_with(tok, 1, &p, NULL, &res), -EINVAL);
	assert_null(res.canonical_request);
}

/* Hop-by-hop headers are sent but not signed; the signer adds its own. */
static void test_signed_header_set(void **state)
{
	static const struct sigv4_header h[] = {
		{ "User-Agent", "keyturn/0.1" }, { "Host", "example.amazonaws.com" },
		{ "Expect", "100-continue" },    { "Content-Type", "application/x-amz-json-1.1" },
		{ "Connection", "keep-alive" },  { "X-Amzn-Trace-Id", "Root=1" },
	};
	struct sigv4_params p = { "us-east-1", "service", 1440938160, true, true, false };
	struct sigv4_result res;

	(void)state;
	assert_int_equal(sign_with(h, 6, &p, "tok", &res), 0);
	assert_non_null(strstr(res.authorization,
			       "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
			       "x-amz-security-token, "));
	assert_string_equal(res.payload_hash,
			    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
	assert_non_null(strstr(res.canonical_request, "\nx-amz-security-token:tok\n"));
	assert_string_equal(res.amz_date, "20150830T123600Z");
	sigv4_result_free(&res);

	/* An empty token and an omitted one both leave the token header out. */
	p.sign_body = false;
	assert_int_equal(sign_with(h, 6, &p, "", &res), 0);
	assert_null(strstr(res.canonical_request, "x-amz-security-token"));
	assert_null(strstr(res.canonical_request, "x-amz-content-sha256"));
	sigv4_result_free(&res);
	p.omit_session_token = true;
	assert_int_equal(sign_with(h, 6, &p, "tok", &res), 0);
	assert_null(strstr(res.canonical_request, "x-amz-security-token"));
	sigv4_result_free(&res);
}

static void test_result_free_wipes(void **state)
{
	static const struct sigv4_header h[] = { { "Host", "example.amazonaws.com" } };
	static const struct sigv4_result zero;
	struct sigv4_params p = { "us-east-1", "service", 1440938160, true, false, false };
	struct sigv4_result res;

	(void)state;
	assert_int_equal(sign_with(h, 1, &p, NULL, &res), 0);
	sigv4_result_free(&res);
	assert_memory_equal(&res, &zero, sizeof(res));
	/* A second free, and a free of NULL, are harmless. */
	sigv4_result_free(&res);
	sigv4_result_free(NULL);
}

int main(void)
{
	static const struct CMUnitTest helpers[] = {
		cmocka_unit_test(test_suite_complete),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_normalize_path),
		cmocka_unit_test(test_canonical_uri),
		cmocka_unit_test(test_trim_value),
		cmocka_unit_test(test_lower_name),
		cmocka_unit_test(test_format_date),
		cmocka_unit_test(test_rejects_bad_requests),
		cmocka_unit_test(test_signed_header_set),
		cmocka_unit_test(test_result_free_wipes),
	};
	const size_t nhelpers = sizeof(helpers) / sizeof(helpers[0]);
	struct CMUnitTest *tests;
	size_t i;
	int rc;

	/* One test per suite case, named for it, so the count shows 38. */
	tests = calloc(NSUITE + nhelpers, sizeof(*tests));
	if (tests == NULL)
		return 1;
	for (i = 0; i < NSUITE; i++) {
		cases[i].name = suite_names[i];
		tests[i].name = suite_names[i];
		tests[i].test_func = test_suite_case;
		tests[i].teardown_func = suite_teardown;
		tests[i].initial_state = &cases[i];
	}
	memcpy(&tests[NSUITE], helpers, sizeof(helpers));
	rc = _cmocka_run_group_tests("sigv4", tests, NSUITE + nhelpers, NULL, NULL);
	free(tests);
	return rc;
}

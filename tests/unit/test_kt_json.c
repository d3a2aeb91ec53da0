/* Unit tests for common/kt_json.c's strict parser: every frame that the
 * daemon, libkeyturn, pam_keyturn and the AWS answer parsers read goes
 * through kt_json_parse(), so each laxity of json-c is tried here. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_json.h"

/* Parses a NUL-terminated text; the NUL is not part of it. */
static struct json_object *parse(const char *s)
{
	return kt_json_parse(s, strlen(s));
}

static void refused(const char *s)
{
	struct json_object *o = parse(s);

	if (o != NULL)
		fail_msg("accepted: %s", s);
}

static void accepted(const char *s)
{
	struct json_object *o = parse(s);

	if (o == NULL)
		fail_msg("refused: %s", s);
	kt_json_put_wiped(o);
}

static void test_valid_documents(void **state)
{
	(void)state;
	accepted("{\"ok\":true,\"match\":false,\"stage\":null,\"source\":\"cache\"}");
	accepted(" \t\r\n{ \"a\" : [ 1 , -0.5e+3 , 0 , 1E2 , \"x\" , { } , [ ] ] } \n");
	accepted("[]");
	accepted("\"just a string\"");
	accepted("[-12]");
	/* A number alone ends where the text does. */
	accepted("-12");
	accepted("0.5e3");
	accepted("[null,true,false]");
	accepted("{\"esc\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\udd11\"}");
	accepted("{\"utf8\":\"\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd \xf0\x9f\x94\x91 "
		 "\xf4\x8f\xbf\xbf\"}");
	/* The same name in two different objects is no duplicate. */
	accepted("{\"a\":{\"x\":1},\"b\":{\"x\":2},\"c\":[{\"x\":3},{\"x\":4}]}");
	/* A value may hold \u0000 (a SecretString may); kt_json_str() then
	 * treats it as absent. */
	accepted("{\"v\":\"a\\u0000b\"}");
}

/* The laxities of json-c's default mode that issue 10 names. */
static void test_refuses_lax_json(void **state)
{
	(void)state;
	refused("{\"ok\":true,\"match\":True}");
	refused("{\"ok\":true,\"match\":TRUE}");
	refused("{\"ok\":true,\"match\":true /* yes */}");
	refused("{\"ok\":true, /* c */ \"match\":true}");
	refused("{\"ok\":true,\"match\":true} // c");
	refused("{'ok':true,'match':true}");
	refused("{\"ok\":true,\"match\":'x'}");
	refused("{\"ok\":true,\"match\":true,}");
	refused("[1,]");
	refused("{\"a\":NaN}");
	refused("{\"a\":Infinity}");
	refused("{\"a\":-Infinity}");
	refused("{\"a\":01}");
	refused("{\"a\":.5}");
	refused("{\"a\":1.}");
	refused("{\"a\":+1}");
	refused("{\"a\":1e}");
	refused("{\"a\":0x10}");
	refused("{a:1}");
	refused("{\"a\" 1}");
	refused("{\"a\":1 \"b\":2}");
	refused("{\"a\":\"x\ty\"}");  /* a raw control character */
	refused("{\"a\":\"\\x41\"}"); /* not a JSON escape */
	refused("{\"a\":\"\\u12\"}");
	refused("{\"a\":\"\\u12G4\"}");
	refused("{\"a\":tru}");
	refused("{\"a\":nul}");
	refused("{\"a\":\"open");
	refused("");
	refused("   ");
}

static void test_refuses_duplicates(void **state)
{
	(void)state;
	refused("{\"ok\":true,\"match\":false,\"match\":true}");
	refused("{\"match\":false,\"match\":true,\"ok\":true}");
	refused("{\"a\":1,\"a\":1}");
	/* The same name spelt with an escape. */
	refused("{\"match\":false,\"m\\u0061tch\":true}");
	/* Deeper, and after objects that are fine. */
	refused("{\"x\":{\"y\":1},\"z\":[{\"k\":1},{\"k\":1,\"k\":2}]}");
	refused("[{},{\"a\":{\"b\":1,\"b\":{\"c\":1}}}]");
	/* A duplicate whose first value held objects of its own. */
	refused("{\"a\":{\"x\":{}},\"a\":{\"y\":1}}");
}

static void test_refuses_trailing_data(void **state)
{
	(void)state;
	refused("{\"ok\":true,\"match\":true} x");
	refused("{\"ok\":true,\"match\":true}{\"ok\":false}");
	refused("{\"ok\":true}]");
	assert_null(kt_json_parse("{\"ok\":true}\0", 12));
	assert_null(kt_json_parse("{\"ok\":true}\0 ", 13));
	assert_null(kt_json_parse("{\"ok\":\"a\0b\"}", 12));
	assert_null(kt_json_parse(NULL, 0));
}

static void test_refuses_bad_utf8(void **state)
{
	(void)state;
	refused("{\"a\":\"\xc0\xaf\"}");         /* overlong '/' */
	refused("{\"a\":\"\xc1\xbf\"}");         /* overlong */
	refused("{\"a\":\"\xe0\x80\xaf\"}");     /* overlong, three bytes */
	refused("{\"a\":\"\xf0\x80\x80\xaf\"}"); /* overlong, four bytes */
	refused("{\"a\":\"\xed\xa0\x80\"}");     /* U+D800, a surrogate */
	refused("{\"a\":\"\xed\xbf\xbf\"}");     /* U+DFFF */
	refused("{\"a\":\"\xf4\x90\x80\x80\"}"); /* U+110000 */
	refused("{\"a\":\"\xf5\x80\x80\x80\"}");
	refused("{\"a\":\"\xf8\x88\x80\x80\x80\"}"); /* five bytes */
	refused("{\"a\":\"\xff\"}");
	refused("{\"a\":\"\x80\"}"); /* a lone continuation byte */
	refused("{\"a\":\"\xc3\"}"); /* cut */
	refused("{\"a\":\"\xe2\x82\"}");
	refused("{\"a\":\"\xc3\x28\"}");
	refused("{\"\xc0\xaf\":1}"); /* in a name */
	refused("\xef\xbb\xbf{}");   /* a byte order mark */
	/* Escaped surrogates only as a pair, high then low. */
	refused("{\"a\":\"\\ud800\"}");
	refused("{\"a\":\"\\udc00\"}");
	refused("{\"a\":\"\\ud800\\u0041\"}");
	refused("{\"a\":\"\\udc00\\ud800\"}");
	refused("{\"a\":\"\\ud800x\"}");
}

/* json-c keeps member names as C strings: "match\u0000x" would be "match". */
static void test_refuses_nul_in_names(void **state)
{
	(void)state;
	refused("{\"ok\":true,\"match\\u0000x\":true}");
	refused("{\"\\u0000\":1}");
}

/* Deeper than json-c goes is refused, and nothing recurses without bound. */
static void test_depth(void **state)
{
	char deep[4096];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 2000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 2000; i++)
		deep[n++] = ']';
	assert_null(kt_json_parse(deep, n));
	accepted("[[[[[[[[[[1]]]]]]]]]]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_documents),
		cmocka_unit_test(test_refuses_lax_json),
		cmocka_unit_test(test_refuses_duplicates),
		cmocka_unit_test(test_refuses_trailing_data),
		cmocka_unit_test(test_refuses_bad_utf8),
		cmocka_unit_test(test_refuses_nul_in_names),
		cmocka_unit_test(test_depth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

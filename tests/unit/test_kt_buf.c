/* Unit tests for common/: the limited buffer, base64 and the JSON helpers. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_base64.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/secmem.h"

static void test_append_and_limit(void **state)
{
	struct kt_buf b = KT_BUF_INIT(10);

	(void)state;
	assert_string_equal(kt_buf_str(&b), "");
	assert_int_equal(kt_buf_append_str(&b, "hello"), 0);
	assert_int_equal(kt_buf_append(&b, "12345", 5), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(kt_buf_str(&b), "hello12345");
	assert_int_equal(kt_buf_append(&b, "x", 1), -E2BIG);
	assert_string_equal(kt_buf_str(&b), "hello12345");
	kt_buf_free(&b);
	assert_null(b.data);
}

static void test_growth_keeps_contents(void **state)
{
	struct kt_buf b = KT_BUF_INIT(1 << 20);
	char expect[5000];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		expect[i] = (char)('a' + i % 26);
		assert_int_equal(kt_buf_append(&b, &expect[i], 1), 0);
	}
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.data, expect, 5000);
	assert_int_equal(b.data[5000], '\0');
	kt_buf_free(&b);
}

static void test_printf_and_steal(void **state)
{
	struct kt_buf b = KT_BUF_INIT(64);
	size_t len;
	char *s;

	(void)state;
	assert_int_equal(kt_buf_printf(&b, "%s=%d", "n", 42), 0);
	assert_int_equal(kt_buf_printf(&b, ";%05d", 7), 0);
	assert_string_equal(kt_buf_str(&b), "n=42;00007");
	assert_int_equal(kt_buf_printf(&b, "%100s", "x"), -E2BIG);
	s = kt_buf_steal(&b, &len);
	assert_int_equal(len, 10);
	assert_string_equal(s, "n=42;00007");
	assert_null(b.data);
	kt_str_free_wiped(s);
	kt_buf_reset(&b);
	assert_int_equal(b.len, 0);
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(kt_ct_equal("abc", "abc", 3));
	assert_false(kt_ct_equal("abc", "abd", 3));
	assert_true(kt_ct_equal("", "", 0));
}

static void test_base64_round_trip(void **state)
{
	unsigned char data[256], *out;
	size_t n;
	char *enc;

	(void)state;
	for (int i = 0; i < 256; i++)
		data[i] = (unsigned char)i;
	for (size_t len = 0; len < 10; len++) {
		enc = kt_base64_encode(data, len);
		assert_non_null(enc);
		assert_int_equal(kt_base64_decode(enc, strlen(enc), &out, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(out, data, len);
		free(out);
		free(enc);
	}
	enc = kt_base64_encode(data, 256);
	assert_int_equal(kt_base64_decode(enc, strlen(enc), &out, &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(out, data, 256);
	free(out);
	free(enc);
}

static void test_base64_rejects_damage(void **state)
{
	unsigned char *out;
	size_t n;

	(void)state;
	assert_int_equal(kt_base64_decode("aGVsbG8", 7, &out, &n), -EINVAL);  /* length */
	assert_int_equal(kt_base64_decode("aGV*bG8=", 8, &out, &n), -EINVAL); /* alphabet */
	assert_int_equal(kt_base64_decode("aGVs\nbG8=", 9, &out, &n), -EINVAL);
	assert_int_equal(kt_base64_decode("aGVsbG8=", 8, &out, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
}

static void test_json_parse_strict(void **state)
{
	struct json_object *o;
	bool b;
	long long v;

	(void)state;
	o = kt_json_parse("{\"a\":\"x\",\"b\":true,\"n\":5,\"t\":1700000000.5}  \n", 44);
	assert_non_null(o);
	assert_string_equal(kt_json_str(o, "a"), "x");
	assert_null(kt_json_str(o, "b"));
	assert_true(kt_json_bool(o, "b", &b));
	assert_true(b);
	assert_true(kt_json_int64(o, "n", &v));
	assert_int_equal(v, 5);
	assert_true(kt_json_time(o, "t", &v));
	assert_int_equal(v, 1700000000);
	assert_false(kt_json_time(o, "a", &v));
	kt_json_put_wiped(o);

	assert_null(kt_json_parse("{\"a\":1} {\"b\":2}", 15));
	assert_null(kt_json_parse("{\"a\":", 5));
	assert_null(kt_json_parse("", 0));
	assert_null(kt_json_parse("{\"a\":1}\0xx", 10));
}

static void test_json_dump_round_trip(void **state)
{
	struct json_object *o = json_object_new_object(), *back;
	size_t len;
	char *s;

	(void)state;
	json_object_object_add(o, "path", json_object_new_string("a/b \"q\" \xc3\xa9"));
	s = kt_json_dump(o, &len);
	assert_non_null(s);
	assert_string_equal(s, "{\"path\":\"a/b \\\"q\\\" \xc3\xa9\"}");
	back = kt_json_parse(s, len);
	assert_string_equal(kt_json_str(back, "path"), "a/b \"q\" \xc3\xa9");
	kt_json_put_wiped(back);
	kt_json_put_wiped(o);
	kt_str_free_wiped(s);
}

/* The hot path's escaper must write what json-c would have written. */
static void test_append_string_matches_json_c(void **state)
{
	static const char *const cases[] = {
		"",
		"plain",
		"quote \" and backslash \\",
		"a/b",
		"tab\tnl\ncr\rbs\bff\f",
		"\x01\x1f\x7f end",
		"utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91",
		"{\"k\":\"v\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kt_buf b = KT_BUF_INIT(4096);
		struct json_object *o = json_object_new_string(cases[i]);
		const char *want =
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

		assert_int_equal(kt_json_append_string(&b, cases[i], strlen(cases[i])), 0);
		assert_string_equal(kt_buf_str(&b), want);
		json_object_put(o);
		kt_buf_free(&b);
	}
}

/* The escaper scans eight bytes at a time: put each special byte at every
 * offset of a longer string. */
static void test_append_string_every_offset(void **state)
{
	static const char specials[] = { '"', '\\', '\n', '\x01', '\x1f' };
	char buf[40];

	(void)state;
	for (size_t k = 0; k < sizeof(specials); k++) {
		for (size_t at = 0; at < sizeof(buf) - 1; at++) {
			struct kt_buf b = KT_BUF_INIT(4096);
			struct json_object *o;

			memset(buf, 'x', sizeof(buf) - 1);
			buf[sizeof(buf) - 1] = '\0';
			buf[at] = specials[k];
			o = json_object_new_string(buf);
			assert_int_equal(kt_json_append_string(&b, buf, strlen(buf)), 0);
			assert_string_equal(kt_buf_str(&b),
					    json_object_to_json_string_ext(
						    o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
			kt_buf_free(&b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_limit),
		cmocka_unit_test(test_growth_keeps_contents),
		cmocka_unit_test(test_printf_and_steal),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_rejects_damage),
		cmocka_unit_test(test_json_parse_strict),
		cmocka_unit_test(test_json_dump_round_trip),
		cmocka_unit_test(test_append_string_matches_json_c),
		cmocka_unit_test(test_append_string_every_offset),
	};

	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}

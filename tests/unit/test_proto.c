/* Unit tests for common/proto.c: framing both ways, the size limits, and
 * the error vocabulary. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_json.h"
#include "common/proto.h"

static void test_frame_round_trip(void **state)
{
	struct kt_buf b = KT_BUF_INIT(1 << 21);
	const char *payload;
	size_t plen, flen;

	(void)state;
	assert_int_equal(kt_proto_frame(&b, "{\"a\":1}", 7), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "\0\0\0\x07{\"a\":1}", 11);
	assert_int_equal(kt_proto_unframe(b.data, b.len, &payload, &plen, &flen), 1);
	assert_int_equal(plen, 7);
	assert_int_equal(flen, 11);
	assert_memory_equal(payload, "{\"a\":1}", 7);
	kt_buf_free(&b);
}

static void test_unframe_partial(void **state)
{
	const char frame[] = "\0\0\0\x05hello";
	const char *payload;
	size_t plen, flen;

	(void)state;
	/* Every prefix shorter than the frame asks for more. */
	for (size_t n = 0; n < 9; n++)
		assert_int_equal(kt_proto_unframe(frame, n, &payload, &plen, &flen), 0);
	assert_int_equal(kt_proto_unframe(frame, 9, &payload, &plen, &flen), 1);
	assert_int_equal(plen, 5);
}

static void test_unframe_limits(void **state)
{
	const char zero[] = "\0\0\0\0";
	const char over[] = "\0\x10\0\x01"; /* 1 MiB + 1 */
	const char max[] = "\0\x10\0\0";    /* exactly 1 MiB: allowed, needs more */
	const char huge[] = "\xff\xff\xff\xff";
	const char *payload;
	size_t plen, flen;

	(void)state;
	assert_int_equal(kt_proto_unframe(zero, 4, &payload, &plen, &flen), -EBADMSG);
	assert_int_equal(kt_proto_unframe(over, 4, &payload, &plen, &flen), -EMSGSIZE);
	assert_int_equal(kt_proto_unframe(huge, 4, &payload, &plen, &flen), -EMSGSIZE);
	assert_int_equal(kt_proto_unframe(max, 4, &payload, &plen, &flen), 0);
}

static void test_frame_refuses_oversize(void **state)
{
	struct kt_buf b = KT_BUF_INIT(4 << 20);
	char *big = calloc(1, KT_PROTO_MAX_FRAME + 1);

	(void)state;
	assert_non_null(big);
	assert_int_equal(kt_proto_frame(&b, big, KT_PROTO_MAX_FRAME + 1), -EMSGSIZE);
	assert_int_equal(kt_proto_frame(&b, big, 0), -EMSGSIZE);
	assert_int_equal(kt_proto_frame(&b, big, KT_PROTO_MAX_FRAME), 0);
	assert_int_equal(b.len, KT_PROTO_MAX_FRAME + 4);
	free(big);
	kt_buf_free(&b);
}

static void test_error_names(void **state)
{
	static const char *names[] = { "bad_request", "not_found", "denied",
				       "unavailable", "throttled", "internal" };
	enum kt_proto_err e;

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(kt_proto_err_parse(names[i], &e), 0);
		assert_string_equal(kt_proto_err_name(e), names[i]);
	}
	assert_int_equal(kt_proto_err_parse("nope", &e), -EINVAL);
	assert_string_equal(kt_proto_err_name((enum kt_proto_err)99), "internal");
}

static void test_error_object(void **state)
{
	struct json_object *o =
		kt_proto_error(KT_PERR_DENIED, "uid %d may not read %s", 1001, "app/db");
	struct kt_buf b = KT_BUF_INIT(4096);
	bool ok = true;

	(void)state;
	assert_non_null(o);
	assert_true(kt_json_bool(o, "ok", &ok));
	assert_false(ok);
	assert_string_equal(kt_json_str(o, "error"), "denied");
	assert_string_equal(kt_json_str(o, "message"), "uid 1001 may not read app/db");
	assert_int_equal(kt_proto_send_json(&b, o), 0);
	assert_int_equal(b.len, 4 + ((unsigned char)b.data[2] << 8 | (unsigned char)b.data[3]));
	json_object_put(o);
	kt_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_unframe_partial),
		cmocka_unit_test(test_unframe_limits),
		cmocka_unit_test(test_frame_refuses_oversize),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_error_object),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}

/* Unit tests for libkeyturn: client/libkeyturn.c is included here and
 * client/transport.c is built with KT_UNIT_TEST. A fake keyturnd answers on
 * the other end of a socketpair (a thread playing a script), or on a real
 * Unix socket in a temporary directory for the tests that connect. */
#include "libkeyturn.c"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kt_tmp.h"

#define NOBODY 65534

/* ---- helpers shared by both fake servers -------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when n bytes were read, 0 at end of file or on an error. */
static int read_full(int fd, void *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 1;
}

static void write_full(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void put_hdr(unsigned char *h, size_t n)
{
	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
}

static void write_frame(int fd, const char *p, size_t n)
{
	unsigned char h[4];

	put_hdr(h, n);
	write_full(fd, h, 4);
	write_full(fd, p, n);
}

/* Reads one request frame into buf. 1 on success, 0 at EOF or when too big. */
static int read_frame(int fd, char *buf, size_t cap, size_t *len)
{
	unsigned char h[4];
	size_t n;

	if (!read_full(fd, h, 4))
		return 0;
	n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n == 0 || n >= cap || !read_full(fd, buf, n))
		return 0;
	buf[n] = '\0';
	*len = n;
	return 1;
}

static void drain(int fd)
{
	char b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* ---- a fake keyturnd on a socketpair, playing a script ------------------ */

enum fmode {
	F_ANSWER,   /* answer with data as one frame */
	F_BYTEWISE, /* the same frame, one byte per write */
	F_RAW,      /* write data as it is, no framing */
	F_CUT,      /* a header for data, then half of it, then close */
	F_SILENT,   /* never answer; wait for the client to go */
	F_CLOSE,    /* close without answering */
};

struct step {
	enum fmode mode;
	const char *data;
	size_t len;
};

#define ANS(s)                               \
	{                                    \
		F_ANSWER, (s), sizeof(s) - 1 \
	}

struct fake {
	int fd;
	const struct step *steps;
	size_t nsteps;
	int nreq;
	char req[8192]; /* the last request's payload */
	size_t reqlen;
	pthread_t th;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (size_t i = 0; i < f->nsteps; i++) {
		const struct step *s = &f->steps[i];
		unsigned char h[4];

		if (!read_frame(f->fd, f->req, sizeof(f->req), &f->reqlen))
			break;
		f->nreq++;
		switch (s->mode) {
		case F_ANSWER:
			write_frame(f->fd, s->data, s->len);
			break;
		case F_BYTEWISE:
			put_hdr(h, s->len);
			for (size_t j = 0; j < 4 + s->len; j++) {
				write_full(f->fd, j < 4 ? (const char *)h + j : s->data + j - 4, 1);
				usleep(100);
			}
			break;
		case F_RAW:
			write_full(f->fd, s->data, s->len);
			break;
		case F_CUT:
			put_hdr(h, s->len);
			write_full(f->fd, h, 4);
			write_full(f->fd, s->data, s->len / 2);
			goto out;
		case F_SILENT:
			break;
		case F_CLOSE:
			goto out;
		}
	}
	drain(f->fd);
out:
	close(f->fd);
	return NULL;
}

/* A handle whose connection is one end of a socketpair; the fake plays the
 * other. The handle's path does not exist, so it can never reconnect. */
static keyturn_t *fake_start(struct fake *f, const struct step *steps, size_t nsteps)
{
	keyturn_t *kt;
	int sv[2];

	memset(f, 0, sizeof(*f));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	kt = keyturn_open("/nonexistent/keyturn-test.sock", NULL);
	assert_non_null(kt);
	kt_transport_adopt(&kt->tr, sv[0]);
	f->fd = sv[1];
	f->steps = steps;
	f->nsteps = nsteps;
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return kt;
}

static void fake_stop(struct fake *f, keyturn_t *kt)
{
	keyturn_close(kt);
	pthread_join(f->th, NULL);
}

/* The last request the fake received, parsed. */
static struct json_object *fake_request(const struct fake *f)
{
	struct json_object *o = json_tokener_parse(f->req);

	assert_non_null(o);
	return o;
}

static void assert_member_str(struct json_object *o, const char *key, const char *want)
{
	struct json_object *m;

	assert_true(json_object_object_get_ex(o, key, &m));
	assert_true(json_object_is_type(m, json_type_string));
	assert_string_equal(json_object_get_string(m), want);
}

static void assert_no_member(struct json_object *o, const char *key)
{
	assert_false(json_object_object_get_ex(o, key, NULL));
}

/* One call of keyturn_get against a single answer. */
static int get_once(const char *answer, keyturn_value_t **v)
{
	struct step s = { F_ANSWER, answer, strlen(answer) };
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);
	int rc = keyturn_get(kt, "app/db", NULL, NULL, NULL, v);

	if (rc != KEYTURN_OK)
		assert_true(strlen(keyturn_last_message(kt)) > 0);
	fake_stop(&f, kt);
	return rc;
}

static const char good_get[] =
	"{\"ok\":true,\"name\":\"app/db\","
	"\"arn\":\"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf\","
	"\"version_id\":\"v-1\",\"stages\":[\"AWSCURRENT\",\"AWSPENDING\"],"
	"\"string\":\"correct horse\",\"fetched_at\":1714521600,\"stale\":false,"
	"\"new_member\":{\"x\":[1,2]}}";

/* ---- get ---------------------------------------------------------------- */

static void test_get_string(void **state)
{
	struct step s = ANS(good_get);
	keyturn_value_t *v = NULL;
	struct json_object *req;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);
	const char *data, *ans;
	size_t len, alen;

	(void)state;
	assert_int_equal(keyturn_get(kt, "app/db", "AWSPREVIOUS", "v-0", "password", &v),
			 KEYTURN_OK);
	assert_non_null(v);
	data = keyturn_value_data(v, &len);
	assert_int_equal(len, 13);
	assert_string_equal(data, "correct horse");
	assert_int_equal(keyturn_value_is_binary(v), 0);
	assert_string_equal(keyturn_value_name(v), "app/db");
	assert_string_equal(keyturn_value_arn(v),
			    "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf");
	assert_string_equal(keyturn_value_version_id(v), "v-1");
	assert_int_equal(keyturn_value_stage_count(v), 2);
	assert_string_equal(keyturn_value_stage(v, 0), "AWSCURRENT");
	assert_string_equal(keyturn_value_stage(v, 1), "AWSPENDING");
	assert_null(keyturn_value_stage(v, 2));
	assert_int_equal(keyturn_value_fetched_at(v), 1714521600);
	assert_int_equal(keyturn_value_is_stale(v), 0);
	assert_string_equal(keyturn_last_message(kt), "");
	ans = keyturn_last_answer(kt, &alen);
	assert_non_null(ans);
	assert_int_equal(alen, strlen(good_get));
	assert_memory_equal(ans, good_get, alen);
	keyturn_value_free(v);
	/* The next call forgets the last answer, even one that fails early. */
	assert_int_equal(keyturn_get(kt, NULL, NULL, NULL, NULL, &v), KEYTURN_E_INVALID);
	assert_null(keyturn_last_answer(kt, &alen));
	assert_int_equal(alen, 0);
	fake_stop(&f, kt);

	req = fake_request(&f);
	assert_int_equal(json_object_get_int(json_object_object_get(req, "v")), 1);
	assert_true(json_object_is_type(json_object_object_get(req, "v"), json_type_int));
	assert_member_str(req, "op", "get");
	assert_member_str(req, "secret", "app/db");
	assert_member_str(req, "stage", "AWSPREVIOUS");
	assert_member_str(req, "version_id", "v-0");
	assert_member_str(req, "key", "password");
	json_object_put(req);
}

static void test_get_minimal_request(void **state)
{
	struct step s = ANS(good_get);
	keyturn_value_t *v = NULL;
	struct json_object *req;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_get(kt, "app/\"db\"\n", NULL, NULL, NULL, &v), KEYTURN_OK);
	keyturn_value_free(v);
	fake_stop(&f, kt);
	req = fake_request(&f);
	assert_member_str(req, "secret", "app/\"db\"\n");
	assert_no_member(req, "stage");
	assert_no_member(req, "version_id");
	assert_no_member(req, "key");
	json_object_put(req);
}

static void test_get_binary(void **state)
{
	static const char ans[] = "{\"ok\":true,\"name\":\"b\",\"arn\":null,\"version_id\":\"v\","
				  "\"stages\":[],\"binary\":\"AAEC/w==\",\"fetched_at\":0,"
				  "\"stale\":true}";
	keyturn_value_t *v = NULL;
	const unsigned char *d;
	size_t len;

	(void)state;
	assert_int_equal(get_once(ans, &v), KEYTURN_OK);
	d = keyturn_value_data(v, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(d, "\x00\x01\x02\xff", 4);
	assert_int_equal(d[4], 0);
	assert_int_equal(keyturn_value_is_binary(v), 1);
	assert_null(keyturn_value_arn(v));
	assert_int_equal(keyturn_value_stage_count(v), 0);
	assert_null(keyturn_value_stage(v, 0));
	assert_int_equal(keyturn_value_fetched_at(v), 0);
	assert_int_equal(keyturn_value_is_stale(v), 1);
	keyturn_value_free(v);
}

static void test_get_value_with_nul(void **state)
{
	static const char ans[] = "{\"ok\":true,\"name\":\"b\",\"arn\":null,\"version_id\":\"v\","
				  "\"stages\":[\"AWSCURRENT\"],\"string\":\"a\\u0000b\","
				  "\"fetched_at\":5,\"stale\":false}";
	keyturn_value_t *v = NULL;
	const char *d;
	size_t len;

	(void)state;
	assert_int_equal(get_once(ans, &v), KEYTURN_OK);
	d = keyturn_value_data(v, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(d, "a\0b\0", 4);
	keyturn_value_free(v);
}

static void test_get_bytewise(void **state)
{
	struct step s = { F_BYTEWISE, good_get, sizeof(good_get) - 1 };
	keyturn_value_t *v = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_get(kt, "app/db", NULL, NULL, NULL, &v), KEYTURN_OK);
	assert_string_equal(keyturn_value_data(v, NULL), "correct horse");
	keyturn_value_free(v);
	fake_stop(&f, kt);
}

/* Every member of a get answer, changed one at a time into something wrong. */
static void test_get_wrong_types(void **state)
{
	static const struct {
		const char *key;
		const char *value; /* JSON text; NULL removes the member */
	} cases[] = {
		{ "name", NULL },         { "name", "5" },
		{ "name", "null" },       { "name", "\"a\\u0000b\"" },
		{ "arn", NULL },          { "arn", "5" },
		{ "arn", "[]" },          { "version_id", NULL },
		{ "version_id", "null" }, { "version_id", "{}" },
		{ "stages", NULL },       { "stages", "\"AWSCURRENT\"" },
		{ "stages", "[1]" },      { "stages", "[\"A\",null]" },
		{ "stages", "null" },     { "string", NULL },
		{ "string", "5" },        { "string", "null" },
		{ "string", "[\"x\"]" },  { "binary", "\"AAE=\"" },
		{ "fetched_at", NULL },   { "fetched_at", "\"1\"" },
		{ "fetched_at", "1.5" },  { "fetched_at", "-1" },
		{ "fetched_at", "true" }, { "stale", NULL },
		{ "stale", "\"false\"" }, { "stale", "0" },
		{ "stale", "null" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = json_tokener_parse(good_get);
		keyturn_value_t *v = (keyturn_value_t *)1;

		assert_non_null(o);
		if (cases[i].value == NULL)
			json_object_object_del(o, cases[i].key);
		else
			json_object_object_add(o, cases[i].key, json_tokener_parse(cases[i].value));
		print_message("# %s = %s\n", cases[i].key, cases[i].value ? cases[i].value : "-");
		assert_int_equal(get_once(json_object_to_json_string(o), &v), KEYTURN_E_PROTOCOL);
		assert_null(v);
		json_object_put(o);
	}
}

static void test_get_bad_binary(void **state)
{
	static const char *const bad[] = { "AAE", "A!==", "AAEC/w", "AA=C", "AAEC /w==" };
	char ans[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		keyturn_value_t *v = NULL;

		snprintf(ans, sizeof(ans),
			 "{\"ok\":true,\"name\":\"b\",\"arn\":null,\"version_id\":\"v\","
			 "\"stages\":[],\"binary\":\"%s\",\"fetched_at\":0,\"stale\":false}",
			 bad[i]);
		assert_int_equal(get_once(ans, &v), KEYTURN_E_PROTOCOL);
		assert_null(v);
	}
}

/* ---- framing and the envelope ------------------------------------------- */

static void test_cut_mid_answer(void **state)
{
	struct step s = { F_CUT, good_get, sizeof(good_get) - 1 };
	keyturn_value_t *v = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_get(kt, "app/db", NULL, NULL, NULL, &v), KEYTURN_E_PROTOCOL);
	assert_null(v);
	assert_null(keyturn_last_answer(kt, NULL));
	assert_non_null(strstr(keyturn_last_message(kt), "cut short"));
	/* The connection is gone; the next call cannot reconnect here. */
	assert_int_equal(kt->tr.fd, -1);
	assert_int_equal(keyturn_get(kt, "app/db", NULL, NULL, NULL, &v), KEYTURN_E_CONNECT);
	fake_stop(&f, kt);
}

static void test_cut_in_header(void **state)
{
	struct step s = { F_RAW, "\0\0", 2 };
	char *json = NULL;
	struct fake f;
	keyturn_t *kt;

	(void)state;
	kt = fake_start(&f, &s, 1);
	/* The fake writes two header bytes and then waits: a timeout. */
	keyturn_set_timeout(kt, 200);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_TIMEOUT);
	assert_null(json);
	fake_stop(&f, kt);
}

static void test_bad_lengths(void **state)
{
	static const struct step cases[] = {
		{ F_RAW, "\0\x10\0\x01", 4 }, /* 1 MiB + 1 */
		{ F_RAW, "\xff\xff\xff\xff", 4 },
		{ F_RAW, "\0\0\0\0{}", 6 }, /* zero length */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *json = NULL;
		struct fake f;
		keyturn_t *kt = fake_start(&f, &cases[i], 1);

		assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_PROTOCOL);
		assert_null(json);
		assert_int_equal(kt->tr.fd, -1);
		fake_stop(&f, kt);
	}
}

static void test_bad_envelopes(void **state)
{
	static const char *const bad[] = {
		"{not json",
		"[1,2]",
		"\"ok\"",
		"{\"ok\":true} x",
		"{}",
		"{\"ok\":\"true\",\"version\":\"1\"}",
		"{\"ok\":1,\"version\":\"1\"}",
		"{\"ok\":null,\"version\":\"1\"}",
		"{\"ok\":false}",
		"{\"ok\":false,\"error\":\"denied\"}",
		"{\"ok\":false,\"error\":\"denied\",\"message\":5}",
		"{\"ok\":false,\"error\":3,\"message\":\"x\"}",
		"{\"ok\":false,\"error\":\"no_such_code\",\"message\":\"x\"}",
		"{\"ok\":false,\"error\":\"DENIED\",\"message\":\"x\"}",
		"{\"ok\":true}",
		"{\"ok\":true,\"version\":5}",
		"{\"ok\":true,\"version\":\"\xff\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct step s = { F_ANSWER, bad[i], strlen(bad[i]) };
		char *json = NULL;
		struct fake f;
		keyturn_t *kt = fake_start(&f, &s, 1);

		print_message("# %s\n", bad[i]);
		assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_PROTOCOL);
		assert_null(json);
		assert_true(strlen(keyturn_last_message(kt)) > 0);
		fake_stop(&f, kt);
	}
}

static void test_raw_nul_in_answer(void **state)
{
	static const char ans[] = "{\"ok\":true,\"version\":\"1\"}\0";
	struct step s = { F_ANSWER, ans, sizeof(ans) };
	char *json = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_PROTOCOL);
	assert_null(json);
	fake_stop(&f, kt);
}

static void test_unknown_error_code(void **state)
{
	static const char ans[] = "{\"ok\":false,\"error\":\"mystery\",\"message\":\"m\"}";
	keyturn_value_t *v = NULL;

	(void)state;
	assert_int_equal(get_once(ans, &v), KEYTURN_E_PROTOCOL);
	assert_null(v);
}

static void test_error_codes(void **state)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {
		{ "bad_request", KEYTURN_E_BAD_REQUEST }, { "not_found", KEYTURN_E_NOT_FOUND },
		{ "denied", KEYTURN_E_DENIED },           { "unavailable", KEYTURN_E_UNAVAILABLE },
		{ "throttled", KEYTURN_E_THROTTLED },     { "internal", KEYTURN_E_INTERNAL },
	};
	enum { N = sizeof(codes) / sizeof(codes[0]) };
	char answers[N][128];
	struct step steps[N];
	struct fake f;
	keyturn_t *kt;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(answers[i], sizeof(answers[i]),
			 "{\"ok\":false,\"error\":\"%s\",\"message\":\"because %s\"}",
			 codes[i].name, codes[i].name);
		steps[i] = (struct step){ F_ANSWER, answers[i], strlen(answers[i]) };
	}
	/* An error answer keeps the connection: all six on one. */
	kt = fake_start(&f, steps, N);
	for (size_t i = 0; i < N; i++) {
		keyturn_value_t *v = NULL;
		char want[64];
		size_t len;

		assert_int_equal(keyturn_get(kt, "app/db", NULL, NULL, NULL, &v), codes[i].code);
		assert_null(v);
		snprintf(want, sizeof(want), "because %s", codes[i].name);
		assert_string_equal(keyturn_last_message(kt), want);
		assert_string_equal(keyturn_last_answer(kt, &len), answers[i]);
		assert_int_equal(len, strlen(answers[i]));
	}
	fake_stop(&f, kt);
	assert_int_equal(f.nreq, N);
}

static void test_long_message_cut(void **state)
{
	char ans[2048], msg[1200];
	keyturn_value_t *v = NULL;
	struct fake f;
	struct step s;
	keyturn_t *kt;
	size_t n;

	(void)state;
	/* Two-byte characters, so that a cut could land inside one. */
	for (n = 0; n + 2 < sizeof(msg); n += 2)
		memcpy(msg + n, "\xc3\xa9", 2);
	msg[n] = '\0';
	snprintf(ans, sizeof(ans), "{\"ok\":false,\"error\":\"denied\",\"message\":\"%s\"}", msg);
	s = (struct step){ F_ANSWER, ans, strlen(ans) };
	kt = fake_start(&f, &s, 1);
	assert_int_equal(keyturn_get(kt, "x", NULL, NULL, NULL, &v), KEYTURN_E_DENIED);
	n = strlen(keyturn_last_message(kt));
	assert_true(n < sizeof(kt->msg));
	assert_string_equal(keyturn_last_message(kt) + n - 3, "...");
	assert_int_equal((n - 3) % 2, 0);
	fake_stop(&f, kt);
}

/* ---- list, status, refresh ---------------------------------------------- */

static void test_list_status_refresh(void **state)
{
	static const char list[] = "{\"ok\":true,\"secrets\":[{\"name\":\"a\",\"id\":\"a\"},"
				   "{\"name\":\"b\"}]}";
	static const char status[] = "{\"ok\":true,\"version\":\"0.1.0\",\"pid\":1}";
	static const char refresh[] = "{\"ok\":true,\"name\":\"a\",\"available\":true}";
	static const struct step steps[] = { ANS(list), ANS(status), ANS(refresh), ANS(refresh) };
	struct json_object *req;
	char *json = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, steps, 4);

	(void)state;
	assert_int_equal(keyturn_list(kt, &json), KEYTURN_OK);
	assert_string_equal(json, list);
	keyturn_free_string(json);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_OK);
	assert_string_equal(json, status);
	keyturn_free_string(json);
	assert_int_equal(keyturn_refresh(kt, "a", &json), KEYTURN_OK);
	assert_string_equal(json, refresh);
	keyturn_free_string(json);
	assert_int_equal(keyturn_refresh(kt, "a", NULL), KEYTURN_OK);
	fake_stop(&f, kt);
	req = fake_request(&f);
	assert_member_str(req, "op", "refresh");
	assert_member_str(req, "secret", "a");
	json_object_put(req);
	assert_int_equal(f.nreq, 4);
}

static void test_list_wrong_types(void **state)
{
	static const char *const bad[] = {
		"{\"ok\":true}",
		"{\"ok\":true,\"secrets\":{}}",
		"{\"ok\":true,\"secrets\":[1]}",
		"{\"ok\":true,\"secrets\":[{\"id\":\"a\"}]}",
		"{\"ok\":true,\"secrets\":[{\"name\":null}]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct step s = { F_ANSWER, bad[i], strlen(bad[i]) };
		char *json = NULL;
		struct fake f;
		keyturn_t *kt = fake_start(&f, &s, 1);

		assert_int_equal(keyturn_list(kt, &json), KEYTURN_E_PROTOCOL);
		assert_null(json);
		fake_stop(&f, kt);
	}
	for (size_t i = 0; i < 2; i++) {
		static const char *const rbad[] = { "{\"ok\":true}", "{\"ok\":true,\"name\":1}" };
		struct step s = { F_ANSWER, rbad[i], strlen(rbad[i]) };
		char *json = NULL;
		struct fake f;
		keyturn_t *kt = fake_start(&f, &s, 1);

		assert_int_equal(keyturn_refresh(kt, "a", &json), KEYTURN_E_PROTOCOL);
		assert_null(json);
		fake_stop(&f, kt);
	}
}

/* ---- verify ------------------------------------------------------------- */

static void test_verify_match(void **state)
{
	static const char pw[] = "p\"a\\s\ns\x01w\xc3\xa9rd";
	static const struct step steps[] = {
		ANS("{\"ok\":true,\"match\":true,\"stage\":\"AWSCURRENT\",\"source\":\"cache\"}"),
		ANS("{\"ok\":true,\"match\":false,\"stage\":null,\"source\":\"offline\"}"),
	};
	struct json_object *req, *p;
	struct fake f;
	keyturn_t *kt = fake_start(&f, steps, 2);
	int match = -1;

	(void)state;
	assert_int_equal(keyturn_verify(kt, "alice", pw, sizeof(pw) - 1, "sshd", "10.0.0.1", "ssh",
					&match),
			 KEYTURN_OK);
	assert_int_equal(match, 1);
	assert_int_equal(keyturn_verify(kt, "alice", "", 0, NULL, NULL, NULL, &match), KEYTURN_OK);
	assert_int_equal(match, 0);
	fake_stop(&f, kt);
	req = fake_request(&f);
	assert_member_str(req, "op", "verify");
	assert_member_str(req, "user", "alice");
	assert_member_str(req, "password", "");
	assert_no_member(req, "service");
	json_object_put(req);
	/* The first request, with every member, is checked through a second fake. */
	kt = fake_start(&f, steps, 1);
	assert_int_equal(keyturn_verify(kt, "alice", pw, sizeof(pw) - 1, "sshd", "10.0.0.1", "ssh",
					&match),
			 KEYTURN_OK);
	fake_stop(&f, kt);
	req = fake_request(&f);
	assert_true(json_object_object_get_ex(req, "password", &p));
	assert_int_equal(json_object_get_string_len(p), sizeof(pw) - 1);
	assert_memory_equal(json_object_get_string(p), pw, sizeof(pw) - 1);
	assert_member_str(req, "service", "sshd");
	assert_member_str(req, "rhost", "10.0.0.1");
	assert_member_str(req, "tty", "ssh");
	json_object_put(req);
}

static void test_verify_garbled_match(void **state)
{
	static const char *const bad[] = {
		"{\"ok\":true,\"match\":\"true\"}",
		"{\"ok\":true,\"match\":1}",
		"{\"ok\":true,\"match\":null}",
		"{\"ok\":true,\"match\":[true]}",
		"{\"ok\":true}",
		"{\"ok\":true,\"match\":true,\"stage\":5}",
		"{\"ok\":true,\"match\":true,\"source\":true}",
		"{\"ok\":\"true\",\"match\":true}",
		"{\"ok\":false,\"error\":\"granted\",\"message\":\"yes\",\"match\":true}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct step s = { F_ANSWER, bad[i], strlen(bad[i]) };
		struct fake f;
		keyturn_t *kt = fake_start(&f, &s, 1);
		int match = 1;

		assert_int_equal(keyturn_verify(kt, "alice", "pw", 2, NULL, NULL, NULL, &match),
				 KEYTURN_E_PROTOCOL);
		assert_int_equal(match, 0);
		fake_stop(&f, kt);
	}
}

static void test_verify_invalid(void **state)
{
	struct fake f;
	keyturn_t *kt = fake_start(&f, NULL, 0);
	int match = 1;

	(void)state;
	assert_int_equal(keyturn_verify(kt, "alice", "a\0b", 3, NULL, NULL, NULL, &match),
			 KEYTURN_E_INVALID);
	assert_int_equal(match, 0);
	assert_int_equal(keyturn_verify(kt, NULL, "ab", 2, NULL, NULL, NULL, &match),
			 KEYTURN_E_INVALID);
	assert_int_equal(keyturn_verify(kt, "", "ab", 2, NULL, NULL, NULL, &match),
			 KEYTURN_E_INVALID);
	assert_int_equal(keyturn_verify(kt, "alice", NULL, 2, NULL, NULL, NULL, &match),
			 KEYTURN_E_INVALID);
	assert_int_equal(keyturn_verify(kt, "alice", "ab", 2, NULL, NULL, NULL, NULL),
			 KEYTURN_E_INVALID);
	assert_int_equal(keyturn_verify(NULL, "alice", "ab", 2, NULL, NULL, NULL, &match),
			 KEYTURN_E_INVALID);
	fake_stop(&f, kt);
	/* Nothing reached the daemon. */
	assert_int_equal(f.nreq, 0);
}

/* ---- arguments, strings, open ------------------------------------------- */

static void test_invalid_args(void **state)
{
	keyturn_value_t *v = (keyturn_value_t *)1;
	struct fake f;
	keyturn_t *kt = fake_start(&f, NULL, 0);
	char *json = (char *)1;

	(void)state;
	assert_int_equal(keyturn_get(NULL, "a", NULL, NULL, NULL, &v), KEYTURN_E_INVALID);
	assert_null(v);
	assert_int_equal(keyturn_get(kt, "a", NULL, NULL, NULL, NULL), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_get(kt, "", NULL, NULL, NULL, &v), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_get(kt, "a", "", NULL, NULL, &v), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_get(kt, "a", NULL, "", NULL, &v), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_get(kt, "a", NULL, NULL, "", &v), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_list(kt, NULL), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_status(kt, NULL), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_refresh(kt, NULL, &json), KEYTURN_E_INVALID);
	assert_null(json);
	assert_int_equal(keyturn_list(NULL, &json), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_set_timeout(kt, 0), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_set_timeout(kt, -5), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_set_timeout(NULL, 5), KEYTURN_E_INVALID);
	assert_int_equal(keyturn_set_timeout(kt, 1), KEYTURN_OK);
	fake_stop(&f, kt);
	assert_int_equal(f.nreq, 0);

	/* NULL is allowed wherever a value is read or freed. */
	keyturn_value_free(NULL);
	keyturn_free_string(NULL);
	keyturn_close(NULL);
	assert_null(keyturn_value_data(NULL, NULL));
	assert_null(keyturn_value_name(NULL));
	assert_int_equal(keyturn_value_stage_count(NULL), 0);
	assert_string_equal(keyturn_last_message(NULL), "");
	assert_null(keyturn_last_answer(NULL, NULL));
}

static void test_strerror(void **state)
{
	(void)state;
	for (int i = KEYTURN_OK; i <= KEYTURN_E_INVALID; i++) {
		assert_non_null(keyturn_strerror(i));
		assert_string_not_equal(keyturn_strerror(i), "unknown error");
		for (int j = KEYTURN_OK; j < i; j++)
			assert_string_not_equal(keyturn_strerror(i), keyturn_strerror(j));
	}
	assert_string_equal(keyturn_strerror(-1), "unknown error");
	assert_string_equal(keyturn_strerror(13), "unknown error");
	assert_string_equal(keyturn_strerror(1000000), "unknown error");
}

static void test_open_paths(void **state)
{
	char longpath[200];
	keyturn_t *kt;
	int err = -1;

	(void)state;
	setenv("KEYTURN_SOCKET", "/tmp/from-env.sock", 1);
	kt = keyturn_open(NULL, &err);
	assert_non_null(kt);
	assert_int_equal(err, KEYTURN_OK);
	assert_string_equal(kt->tr.path, "/tmp/from-env.sock");
	keyturn_close(kt);
	kt = keyturn_open("/tmp/given.sock", NULL);
	assert_string_equal(kt->tr.path, "/tmp/given.sock");
	keyturn_close(kt);
	unsetenv("KEYTURN_SOCKET");
	kt = keyturn_open(NULL, NULL);
	assert_string_equal(kt->tr.path, KT_TRANSPORT_DEFAULT_SOCKET);
	assert_int_equal(kt->tr.timeout_ms, 5000);
	keyturn_close(kt);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(keyturn_open(longpath, &err));
	assert_int_equal(err, KEYTURN_E_INVALID);
	/* sun_path holds 107 bytes and the NUL. */
	longpath[108] = '\0';
	assert_null(keyturn_open(longpath, &err));
	longpath[107] = '\0';
	kt = keyturn_open(longpath, &err);
	assert_non_null(kt);
	keyturn_close(kt);
}

/* ---- timeouts and stray bytes ------------------------------------------- */

static void test_timeout(void **state)
{
	struct step s = { F_SILENT, NULL, 0 };
	keyturn_value_t *v = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);
	int64_t t0, dt;

	(void)state;
	assert_int_equal(keyturn_set_timeout(kt, 300), KEYTURN_OK);
	t0 = now_ms();
	assert_int_equal(keyturn_get(kt, "app/db", NULL, NULL, NULL, &v), KEYTURN_E_TIMEOUT);
	dt = now_ms() - t0;
	assert_null(v);
	assert_true(dt >= 290);
	assert_true(dt < 2000);
	assert_int_equal(kt->tr.fd, -1);
	fake_stop(&f, kt);
}

/* Bytes that arrive between requests are never taken for the next answer. */
static void test_stray_bytes(void **state)
{
	static const char two[] = "\0\0\0\x1b{\"ok\":true,\"version\":\"one\"}"
				  "\0\0\0\x1b{\"ok\":true,\"version\":\"two\"}";
	struct step s = { F_RAW, two, sizeof(two) - 1 };
	char *json = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_OK);
	assert_non_null(strstr(json, "\"one\""));
	keyturn_free_string(json);
	json = NULL;
	/* The handle drops the connection and cannot make another here. */
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_CONNECT);
	assert_null(json);
	fake_stop(&f, kt);
}

/* A connection made for this very request that closes unanswered is not
 * tried again. */
static void test_fresh_close_no_retry(void **state)
{
	struct step s = { F_CLOSE, NULL, 0 };
	char *json = NULL;
	struct fake f;
	keyturn_t *kt = fake_start(&f, &s, 1);

	(void)state;
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_CONNECT);
	assert_non_null(strstr(keyturn_last_message(kt), "without answering"));
	fake_stop(&f, kt);
}

/* ---- a fake keyturnd on a real socket ----------------------------------- */

enum plan {
	P_ANSWER,       /* answer {"ok":true,"version":"cC-rR"} */
	P_CLOSE,        /* close without answering */
	P_ANSWER_CLOSE, /* answer, then close at once (an idle close) */
};

#define MAXCONN 8

struct srv {
	char dir[64];
	char path[128];
	int lfd;
	int stop[2];
	pthread_t th;
	pthread_mutex_t mu;
	int nconn;
	int nclosed;
	pid_t pids[MAXCONN];
	enum plan (*plan)(int conn, int req);
};

static enum plan plan_answer(int conn, int req)
{
	(void)conn;
	(void)req;
	return P_ANSWER;
}

static void srv_closed(struct srv *s, int *fd)
{
	close(*fd);
	*fd = -1;
	pthread_mutex_lock(&s->mu);
	s->nclosed++;
	pthread_mutex_unlock(&s->mu);
}

static void srv_accept(struct srv *s, int *fds)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	if (s->nconn >= MAXCONN || getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		close(c);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->pids[s->nconn] = cr.pid;
	fds[s->nconn] = c;
	s->nconn++;
	pthread_mutex_unlock(&s->mu);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	int fds[MAXCONN], nreq[MAXCONN] = { 0 };
	char buf[8192], ans[128];

	for (int i = 0; i < MAXCONN; i++)
		fds[i] = -1;
	for (;;) {
		struct pollfd p[MAXCONN + 2];
		int idx[MAXCONN + 2];
		int n = 0;

		p[n++] = (struct pollfd){ .fd = s->stop[0], .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (int c = 0; c < s->nconn; c++) {
			if (fds[c] < 0)
				continue;
			idx[n] = c;
			p[n++] = (struct pollfd){ .fd = fds[c], .events = POLLIN };
		}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			break;
		if (p[1].revents)
			srv_accept(s, fds);
		for (int i = 2; i < n; i++) {
			int c = idx[i];
			size_t len;
			enum plan what;

			if (!p[i].revents)
				continue;
			if (!read_frame(fds[c], buf, sizeof(buf), &len)) {
				srv_closed(s, &fds[c]);
				continue;
			}
			what = s->plan(c, nreq[c]);
			snprintf(ans, sizeof(ans), "{\"ok\":true,\"version\":\"c%d-r%d\"}", c,
				 nreq[c]);
			nreq[c]++;
			if (what != P_CLOSE)
				write_frame(fds[c], ans, strlen(ans));
			if (what != P_ANSWER)
				srv_closed(s, &fds[c]);
		}
	}
	for (int c = 0; c < MAXCONN; c++) {
		if (fds[c] >= 0)
			close(fds[c]);
	}
	return NULL;
}

/* Binds a socket in a new temporary directory. */
static int bind_temp(char *dir, size_t dirlen, char *path, size_t pathlen)
{
	struct sockaddr_un sa;
	int fd;

	kt_tmp_name(dir, dirlen, "/tmp/kt-test-client-");
	assert_non_null(mkdtemp(dir));
	snprintf(path, pathlen, "%s/keyturnd.sock", dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void srv_start(struct srv *s, enum plan (*plan)(int, int))
{
	memset(s, 0, sizeof(*s));
	s->plan = plan;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = bind_temp(s->dir, sizeof(s->dir), s->path, sizeof(s->path));
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->th, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
	unlink(s->path);
	rmdir(s->dir);
	pthread_mutex_destroy(&s->mu);
}

static int srv_count(struct srv *s, const int *what)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = *what;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Waits up to two seconds for the server to have closed n connections. */
static void srv_wait_closed(struct srv *s, int n)
{
	for (int i = 0; i < 2000 && srv_count(s, &s->nclosed) < n; i++)
		usleep(1000);
	assert_int_equal(srv_count(s, &s->nclosed), n);
}

static void status_is(keyturn_t *kt, const char *version)
{
	char want[64], *json = NULL;
	int rc = keyturn_status(kt, &json);

	if (rc != KEYTURN_OK)
		print_message("# %s: %s\n", keyturn_strerror(rc), keyturn_last_message(kt));
	assert_int_equal(rc, KEYTURN_OK);
	snprintf(want, sizeof(want), "\"version\":\"%s\"", version);
	assert_non_null(strstr(json, want));
	keyturn_free_string(json);
}

static void test_socket_connects(void **state)
{
	struct srv s;
	keyturn_t *kt;

	(void)state;
	srv_start(&s, plan_answer);
	kt = keyturn_open(s.path, NULL);
	status_is(kt, "c0-r0");
	status_is(kt, "c0-r1");
	assert_int_equal(srv_count(&s, &s.nconn), 1);
	assert_int_equal(s.pids[0], getpid());
	/* The descriptor does not leak into programs the caller runs. */
	assert_true(fcntl(kt->tr.fd, F_GETFD) & FD_CLOEXEC);
	keyturn_close(kt);
	srv_stop(&s);
}

static enum plan plan_idle_close(int conn, int req)
{
	(void)req;
	return conn == 0 ? P_ANSWER_CLOSE : P_ANSWER;
}

/* The daemon closed the connection while it was idle. */
static void test_reconnect_after_idle_close(void **state)
{
	struct srv s;
	keyturn_t *kt;

	(void)state;
	srv_start(&s, plan_idle_close);
	kt = keyturn_open(s.path, NULL);
	status_is(kt, "c0-r0");
	srv_wait_closed(&s, 1);
	status_is(kt, "c1-r0");
	status_is(kt, "c1-r1");
	assert_int_equal(srv_count(&s, &s.nconn), 2);
	keyturn_close(kt);
	srv_stop(&s);
}

static enum plan plan_close_second(int conn, int req)
{
	return conn == 0 && req == 1 ? P_CLOSE : P_ANSWER;
}

/* The daemon closed the connection as the request went out: the request is
 * sent once more on a new connection. */
static void test_reconnect_once_on_eof(void **state)
{
	struct srv s;
	keyturn_t *kt;

	(void)state;
	srv_start(&s, plan_close_second);
	kt = keyturn_open(s.path, NULL);
	status_is(kt, "c0-r0");
	status_is(kt, "c1-r0");
	assert_int_equal(srv_count(&s, &s.nconn), 2);
	keyturn_close(kt);
	srv_stop(&s);
}

static enum plan plan_close_later(int conn, int req)
{
	return conn == 0 && req == 0 ? P_ANSWER : P_CLOSE;
}

/* Only once: a second connection that closes unanswered is an error. */
static void test_reconnect_only_once(void **state)
{
	char *json = NULL;
	struct srv s;
	keyturn_t *kt;

	(void)state;
	srv_start(&s, plan_close_later);
	kt = keyturn_open(s.path, NULL);
	status_is(kt, "c0-r0");
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_CONNECT);
	assert_null(json);
	srv_wait_closed(&s, 2);
	assert_int_equal(srv_count(&s, &s.nconn), 2);
	keyturn_close(kt);
	srv_stop(&s);
}

/* A daemon whose listen backlog is full: a non-blocking connect to a Unix
 * socket fails with EAGAIN and is tried again until the timeout. */
static void test_connect_timeout(void **state)
{
	char dir[64], path[128], *json = NULL;
	struct sockaddr_un sa;
	int lfd, busy;
	keyturn_t *kt;
	int64_t t0, dt;

	(void)state;
	lfd = bind_temp(dir, sizeof(dir), path, sizeof(path));
	assert_int_equal(listen(lfd, 0), 0);
	/* One connection fills a backlog of 0; it is never accepted. */
	busy = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	assert_int_equal(connect(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
	kt = keyturn_open(path, NULL);
	keyturn_set_timeout(kt, 300);
	t0 = now_ms();
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_TIMEOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 290);
	assert_true(dt < 2000);
	assert_null(json);
	keyturn_close(kt);
	close(busy);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

static void test_no_socket(void **state)
{
	char *json = NULL;
	keyturn_t *kt = keyturn_open("/nonexistent/keyturnd.sock", NULL);

	(void)state;
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_CONNECT);
	assert_non_null(strstr(keyturn_last_message(kt), "/nonexistent/keyturnd.sock"));
	keyturn_close(kt);
}

/* A path that is not a socket, or a symbolic link to one, is refused. */
static void test_not_a_socket(void **state)
{
	char dir[64], path[128], link[160];
	char *json = NULL;
	keyturn_t *kt;
	struct srv s;
	int fd;

	(void)state;
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-test-client-");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	kt = keyturn_open(path, NULL);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	keyturn_close(kt);
	unlink(path);
	rmdir(dir);

	srv_start(&s, plan_answer);
	snprintf(link, sizeof(link), "%s/link", s.dir);
	assert_int_equal(symlink(s.path, link), 0);
	kt = keyturn_open(link, NULL);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	assert_int_equal(srv_count(&s, &s.nconn), 0);
	keyturn_close(kt);
	unlink(link);
	srv_stop(&s);
}

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	print_message("# skipped: needs root\n");
	return false;
}

/* A socket file that belongs to another user is never connected to, unless
 * KEYTURN_SOCKET_OWNER names that user. */
static void test_untrusted_owner(void **state)
{
	char *saved = getenv("KEYTURN_SOCKET_OWNER");
	char *json = NULL;
	keyturn_t *kt;
	struct srv s;

	(void)state;
	if (!need_root())
		return;
	saved = saved != NULL ? strdup(saved) : NULL;
	srv_start(&s, plan_answer);
	assert_int_equal(chown(s.path, NOBODY, NOBODY), 0);
	kt = keyturn_open(s.path, NULL);
	unsetenv("KEYTURN_SOCKET_OWNER");
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	assert_null(json);
	assert_non_null(strstr(keyturn_last_message(kt), "uid 65534"));
	setenv("KEYTURN_SOCKET_OWNER", "12345", 1);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	setenv("KEYTURN_SOCKET_OWNER", "no-such-user-here", 1);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	assert_int_equal(srv_count(&s, &s.nconn), 0);
	/* By name and by number. */
	setenv("KEYTURN_SOCKET_OWNER", "nobody", 1);
	status_is(kt, "c0-r0");
	keyturn_close(kt);
	kt = keyturn_open(s.path, NULL);
	setenv("KEYTURN_SOCKET_OWNER", "65534", 1);
	status_is(kt, "c1-r0");
	keyturn_close(kt);
	srv_stop(&s);
	if (saved != NULL)
		setenv("KEYTURN_SOCKET_OWNER", saved, 1);
	else
		unsetenv("KEYTURN_SOCKET_OWNER");
	free(saved);
}

/* A socket file that belongs to root, but a process of another user behind
 * it (it listened after dropping to nobody): refused by SO_PEERCRED. */
static void test_untrusted_peer(void **state)
{
	char dir[64], path[128], *json = NULL;
	int lfd, ready[2], status;
	keyturn_t *kt;
	pid_t pid;
	char c;

	(void)state;
	if (!need_root())
		return;
	lfd = bind_temp(dir, sizeof(dir), path, sizeof(path));
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
		    listen(lfd, 4) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read_full(ready[0], &c, 1), 1);
	close(ready[0]);
	kt = keyturn_open(path, NULL);
	assert_int_equal(keyturn_status(kt, &json), KEYTURN_E_UNTRUSTED);
	assert_non_null(strstr(keyturn_last_message(kt), "runs as uid 65534"));
	assert_int_equal(kt->tr.fd, -1);
	keyturn_close(kt);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

/* A child that uses its parent's handle gets a connection of its own, and
 * the parent's goes on working. */
static void test_fork(void **state)
{
	int status;
	struct srv s;
	keyturn_t *kt;
	pid_t pid;

	(void)state;
	srv_start(&s, plan_answer);
	kt = keyturn_open(s.path, NULL);
	status_is(kt, "c0-r0");
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *json = NULL;
		int ok = keyturn_status(kt, &json) == KEYTURN_OK && json != NULL &&
			 strstr(json, "\"c1-r0\"") != NULL;

		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status_is(kt, "c0-r1");
	assert_int_equal(srv_count(&s, &s.nconn), 2);
	pthread_mutex_lock(&s.mu);
	assert_int_equal(s.pids[0], getpid());
	assert_int_equal(s.pids[1], pid);
	pthread_mutex_unlock(&s.mu);
	keyturn_close(kt);
	srv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_string),
		cmocka_unit_test(test_get_minimal_request),
		cmocka_unit_test(test_get_binary),
		cmocka_unit_test(test_get_value_with_nul),
		cmocka_unit_test(test_get_bytewise),
		cmocka_unit_test(test_get_wrong_types),
		cmocka_unit_test(test_get_bad_binary),
		cmocka_unit_test(test_cut_mid_answer),
		cmocka_unit_test(test_cut_in_header),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_bad_envelopes),
		cmocka_unit_test(test_raw_nul_in_answer),
		cmocka_unit_test(test_unknown_error_code),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_long_message_cut),
		cmocka_unit_test(test_list_status_refresh),
		cmocka_unit_test(test_list_wrong_types),
		cmocka_unit_test(test_verify_match),
		cmocka_unit_test(test_verify_garbled_match),
		cmocka_unit_test(test_verify_invalid),
		cmocka_unit_test(test_invalid_args),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_open_paths),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_stray_bytes),
		cmocka_unit_test(test_fresh_close_no_retry),
		cmocka_unit_test(test_socket_connects),
		cmocka_unit_test(test_reconnect_after_idle_close),
		cmocka_unit_test(test_reconnect_once_on_eof),
		cmocka_unit_test(test_reconnect_only_once),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_not_a_socket),
		cmocka_unit_test(test_untrusted_owner),
		cmocka_unit_test(test_untrusted_peer),
		cmocka_unit_test(test_fork),
	};
	char uid[32];

	/* The test's sockets belong to whoever runs it. */
	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	setenv("KEYTURN_SOCKET_OWNER", uid, 1);
	unsetenv("KEYTURN_SOCKET");
	/* SIGPIPE is left at its default: the library must never raise it. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}

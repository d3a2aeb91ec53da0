/* Unit tests for keyturnd's configuration module (sidecar/conf.c): every
 * key, every default, and every kind of error with its exact file:line. The
 * files are real temporary files, loaded through the public interface. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kt_tmp.h"

#include "conf.h"

static char path[256];
static char err[512];

/* Writes len bytes to a fresh temporary file and loads it; the file is
 * gone afterwards but its name stays in path for the expected messages. */
static int load_bytes(const char *text, size_t len, struct kt_config **cfg)
{
	const char *dir = getenv("TMPDIR");
	int fd, rc;

	kt_tmp_name(path, sizeof(path), "%s/kt-config-", dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	memset(err, 'x', sizeof(err));
	rc = kt_config_load(path, cfg, err, sizeof(err));
	unlink(path);
	return rc;
}

static struct kt_config *load_ok(const char *text)
{
	struct kt_config *cfg = NULL;
	int rc = load_bytes(text, strlen(text), &cfg);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err);
	assert_non_null(cfg);
	return cfg;
}

/* want is everything after "FILE:", e.g. "3: [daemon] region: ...". */
static void load_fails(const char *text, const char *want)
{
	static struct kt_config dummy;
	struct kt_config *cfg = &dummy;
	char full[600];
	int rc = load_bytes(text, strlen(text), &cfg);

	assert_true(rc < 0);
	assert_null(cfg);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	assert_string_equal(err, full);
}

static void test_design_example(void **state)
{
	static const char text[] =
		"[daemon]\n"
		"region = us-east-1            ; else AWS_REGION, the profile, or instance "
		"metadata\n"
		"endpoint = https://...        ; else AWS_ENDPOINT_URL_SECRETS_MANAGER, "
		"AWS_ENDPOINT_URL\n"
		"ca_file = /etc/ssl/...pem     ; else AWS_CA_BUNDLE, else the system store\n"
		"socket = /run/keyturn/keyturnd.sock\n"
		"user = keyturn\n"
		"state_dir = /var/lib/keyturn\n"
		"check_interval = 3600         ; s between DescribeSecret checks in quiet times "
		"(jittered)\n"
		"window_interval = 30          ; s between checks inside a rotation window\n"
		"max_stale = 86400             ; s a cached value is still served while AWS fails\n"
		"log_level = info\n"
		"\n"
		"[secret:app/db]               ; \"secret:\" + the name local callers use\n"
		"id = arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf  ; "
		"default: the name\n"
		"allow_users = root daemon\n"
		"allow_groups = root\n"
		"key = password                ; optional: default JSON key that `get` extracts\n"
		"\n"
		"[login:breakglass]            ; a local account that logs in with a secret\n"
		"secret = hosts/%H/breakglass  ; %H host name, %u user name; a SecretId or a "
		"[secret:] name\n"
		"key = password\n"
		"previous_grace = 3600         ; s AWSPREVIOUS is still accepted after a rotation "
		"(0 = never)\n"
		"offline = yes                 ; keep a salted hash on disk for logins while AWS "
		"is out of reach\n";
	struct kt_config *cfg = load_ok(text);
	const struct kt_secret_cfg *s;
	const struct kt_login_cfg *l;

	(void)state;
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->region, "us-east-1");
	assert_string_equal(cfg->endpoint, "https://...");
	assert_string_equal(cfg->ca_file, "/etc/ssl/...pem");
	assert_string_equal(cfg->socket_path, "/run/keyturn/keyturnd.sock");
	assert_string_equal(cfg->user, "keyturn");
	assert_string_equal(cfg->state_dir, "/var/lib/keyturn");
	assert_int_equal(cfg->check_interval, 3600);
	assert_int_equal(cfg->window_interval, 30);
	assert_int_equal(cfg->max_stale, 86400);
	assert_int_equal(cfg->log_level, KT_LOG_INFO);

	assert_int_equal(cfg->nsecrets, 1);
	s = kt_config_secret(cfg, "app/db");
	assert_ptr_equal(s, &cfg->secrets[0]);
	assert_string_equal(s->name, "app/db");
	assert_string_equal(s->id,
			    "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf");
	assert_int_equal(s->nallow_users, 2);
	assert_string_equal(s->allow_users[0], "root");
	assert_string_equal(s->allow_users[1], "daemon");
	assert_int_equal(s->allow_uids[0], 0);
	assert_int_equal(s->allow_uids[1], 1);
	assert_int_equal(s->nallow_groups, 1);
	assert_string_equal(s->allow_groups[0], "root");
	assert_int_equal(s->allow_gids[0], 0);
	assert_string_equal(s->key, "password");
	assert_int_equal(s->line, 13);
	assert_null(kt_config_secret(cfg, "app/other"));

	assert_int_equal(cfg->nlogins, 1);
	l = kt_config_login(cfg, "breakglass");
	assert_non_null(l);
	assert_string_equal(l->user, "breakglass");
	assert_string_equal(l->secret, "hosts/%H/breakglass");
	assert_string_equal(l->key, "password");
	assert_int_equal(l->previous_grace, 3600);
	assert_true(l->offline);
	assert_int_equal(l->offline_max_age, 604800);
	assert_int_equal(l->line, 19);
	assert_null(kt_config_login(cfg, "alice"));
	kt_config_free(cfg);
}

static void check_defaults(const struct kt_config *cfg)
{
	assert_null(cfg->region);
	assert_null(cfg->endpoint);
	assert_null(cfg->ca_file);
	assert_false(cfg->fips);
	assert_string_equal(cfg->socket_path, KT_DEFAULT_SOCKET);
	assert_string_equal(cfg->state_dir, KT_DEFAULT_STATE_DIR);
	assert_string_equal(cfg->user, "keyturn");
	assert_int_equal(cfg->check_interval, 3600);
	assert_int_equal(cfg->window_interval, 30);
	assert_int_equal(cfg->max_stale, 86400);
	assert_int_equal(cfg->log_level, KT_LOG_INFO);
	assert_int_equal(cfg->max_connections, 1024);
	assert_int_equal(cfg->idle_timeout, 60);
	assert_int_equal(cfg->refresh_min_interval, 10);
	assert_int_equal(cfg->workers, 2);
	assert_int_equal(cfg->locked_memory, 4L << 20);
	assert_int_equal(cfg->nsecrets, 0);
	assert_int_equal(cfg->nlogins, 0);
}

static void test_defaults(void **state)
{
	struct kt_config *cfg;

	(void)state;
	cfg = load_ok("");
	check_defaults(cfg);
	kt_config_free(cfg);
	cfg = load_ok("# only a comment\n[daemon]\n; and another\n");
	check_defaults(cfg);
	kt_config_free(cfg);
	assert_true(strncmp(KT_DEFAULT_SOCKET, RUNSTATEDIR, strlen(RUNSTATEDIR)) == 0);
	assert_true(strncmp(KT_DEFAULT_STATE_DIR, LOCALSTATEDIR, strlen(LOCALSTATEDIR)) == 0);
	assert_true(strncmp(KT_DEFAULT_CONFIG, SYSCONFDIR, strlen(SYSCONFDIR)) == 0);
}

static void test_section_defaults(void **state)
{
	struct kt_config *cfg = load_ok("[secret:plain]\n[login:bob]\nsecret = users/%u\n");
	const struct kt_secret_cfg *s = kt_config_secret(cfg, "plain");
	const struct kt_login_cfg *l = kt_config_login(cfg, "bob");

	(void)state;
	assert_non_null(s);
	assert_string_equal(s->id, "plain");
	assert_int_equal(s->nallow_users, 0);
	assert_int_equal(s->nallow_groups, 0);
	assert_null(s->key);
	assert_non_null(l);
	assert_null(l->key);
	assert_int_equal(l->previous_grace, 0);
	assert_false(l->offline);
	assert_int_equal(l->offline_max_age, 604800);
	kt_config_free(cfg);
}

static void test_every_daemon_key(void **state)
{
	struct kt_config *cfg = load_ok("[daemon]\n"
					"region = eu-west-1\n"
					"endpoint = http://127.0.0.1:5000\n"
					"ca_file = /etc/keyturn/ca.pem\n"
					"fips = yes\n"
					"socket = /tmp/kt.sock\n"
					"user = nobody\n"
					"state_dir = /srv/keyturn\n"
					"check_interval = 604800\n"
					"window_interval = 1\n"
					"max_stale = 0\n"
					"log_level = debug\n"
					"max_connections = 8\n"
					"idle_timeout = 5\n"
					"refresh_min_interval = 1\n"
					"workers = 16\n");

	(void)state;
	assert_string_equal(cfg->region, "eu-west-1");
	assert_string_equal(cfg->endpoint, "http://127.0.0.1:5000");
	assert_string_equal(cfg->ca_file, "/etc/keyturn/ca.pem");
	assert_true(cfg->fips);
	assert_string_equal(cfg->socket_path, "/tmp/kt.sock");
	assert_string_equal(cfg->user, "nobody");
	assert_string_equal(cfg->state_dir, "/srv/keyturn");
	assert_int_equal(cfg->check_interval, 604800);
	assert_int_equal(cfg->window_interval, 1);
	assert_int_equal(cfg->max_stale, 0);
	assert_int_equal(cfg->log_level, KT_LOG_DEBUG);
	assert_int_equal(cfg->max_connections, 8);
	assert_int_equal(cfg->idle_timeout, 5);
	assert_int_equal(cfg->refresh_min_interval, 1);
	assert_int_equal(cfg->workers, 16);
	kt_config_free(cfg);
}

static void test_numbers(void **state)
{
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "check_interval = 10s", "'10s' is not a whole number of seconds" },
		{ "check_interval = 1.5", "'1.5' is not a whole number of seconds" },
		{ "check_interval = 0x10", "'0x10' is not a whole number of seconds" },
		{ "check_interval = +5", "'+5' is not a whole number of seconds" },
		{ "check_interval = ten", "'ten' is not a whole number of seconds" },
		{ "check_interval = 10 20", "'10 20' is not a whole number of seconds" },
		{ "check_interval = -1", "-1 is out of range (1 to 604800 seconds)" },
		{ "check_interval = 0", "0 is out of range (1 to 604800 seconds)" },
		{ "check_interval = 604801", "604801 is out of range (1 to 604800 seconds)" },
		{ "check_interval = 99999999999999999999",
		  "99999999999999999999 is out of range (1 to 604800 seconds)" },
		{ "check_interval =", "empty value" },
		{ "window_interval = 0", "0 is out of range (1 to 86400 seconds)" },
		{ "max_stale = -5", "-5 is out of range (0 to 31536000 seconds)" },
		{ "workers = 0", "0 is out of range (1 to 16)" },
		{ "workers = 17", "17 is out of range (1 to 16)" },
		{ "workers = two", "'two' is not a whole number" },
		{ "max_connections = 65537", "65537 is out of range (1 to 65536)" },
		{ "idle_timeout = 0", "0 is out of range (1 to 86400 seconds)" },
		{ "refresh_min_interval = 0", "0 is out of range (1 to 86400 seconds)" },
	};
	char text[128], want[256], key[32];
	struct kt_config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(bad[i].line, " "), bad[i].line);
		snprintf(text, sizeof(text), "[daemon]\n%s\n", bad[i].line);
		snprintf(want, sizeof(want), "2: [daemon] %s: %s", key, bad[i].msg);
		load_fails(text, want);
	}
	cfg = load_ok("[daemon]\ncheck_interval = 010\n");
	assert_int_equal(cfg->check_interval, 10);
	kt_config_free(cfg);

	load_fails("[login:x]\nsecret = s\nprevious_grace = -1\n",
		   "3: [login:x] previous_grace: -1 is out of range (0 to 2592000 seconds)");
	load_fails("[login:x]\nsecret = s\noffline_max_age = 0\n",
		   "3: [login:x] offline_max_age: 0 is out of range (1 to 31536000 seconds)");
}

/* locked_memory: bytes or K/M, a power of two (OpenSSL's secure heap needs
 * one) from 4K to 1024M; anything else is refused, never rounded. */
static void test_sizes(void **state)
{
	static const struct {
		const char *v;
		long want;
	} good[] = {
		{ "4096", 4096 },   { "4K", 4096 },        { "64k", 65536 },
		{ "8M", 8L << 20 }, { "1024M", 1L << 30 }, { "16m", 16L << 20 },
	};
	static const char *const bad_size[] = { "4 M", "4MB", "4G", "x", "-4K", "4.5M", "0x1000" };
	static const char *const not_pow2[] = { "3M", "5000",  "2K",
						"0",  "2048M", "99999999999999999999M" };
	char text[128], want[256];
	struct kt_config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nlocked_memory = %s\n", good[i].v);
		cfg = load_ok(text);
		assert_int_equal(cfg->locked_memory, good[i].want);
		kt_config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad_size) / sizeof(bad_size[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nlocked_memory = %s\n", bad_size[i]);
		snprintf(want, sizeof(want),
			 "2: [daemon] locked_memory: '%s' is not a size (bytes, or a number with K "
			 "or M)",
			 bad_size[i]);
		load_fails(text, want);
	}
	for (size_t i = 0; i < sizeof(not_pow2) / sizeof(not_pow2[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nlocked_memory = %s\n", not_pow2[i]);
		snprintf(want, sizeof(want),
			 "2: [daemon] locked_memory: %s is not a power of two from 4K to 1024M "
			 "(OpenSSL's secure heap needs one, like 4M or 8M)",
			 not_pow2[i]);
		load_fails(text, want);
	}
}

static void test_booleans(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	char text[128];
	struct kt_config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text),
			 "[daemon]\nfips = %s\n[login:*]\nsecret = s\n"
			 "offline = %s\n",
			 yes[i], no[i]);
		cfg = load_ok(text);
		assert_true(cfg->fips);
		assert_false(cfg->logins[0].offline);
		kt_config_free(cfg);
		snprintf(text, sizeof(text),
			 "[daemon]\nfips = %s\n[login:*]\nsecret = s\n"
			 "offline = %s\n",
			 no[i], yes[i]);
		cfg = load_ok(text);
		assert_false(cfg->fips);
		assert_true(cfg->logins[0].offline);
		kt_config_free(cfg);
	}
	load_fails("[daemon]\nfips = maybe\n", "2: [daemon] fips: 'maybe' is not yes or no");
	load_fails("[daemon]\nfips = 2\n", "2: [daemon] fips: '2' is not yes or no");
	load_fails("[login:a]\nsecret = s\noffline = y\n",
		   "3: [login:a] offline: 'y' is not yes or no");
}

static void test_log_level(void **state)
{
	static const struct {
		const char *name;
		enum kt_log_level level;
	} ok[] = {
		{ "error", KT_LOG_ERR },
		{ "warning", KT_LOG_WARN },
		{ "info", KT_LOG_INFO },
		{ "debug", KT_LOG_DEBUG },
	};
	char text[64];
	struct kt_config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nlog_level = %s\n", ok[i].name);
		cfg = load_ok(text);
		assert_int_equal(cfg->log_level, ok[i].level);
		kt_config_free(cfg);
	}
	load_fails("[daemon]\nlog_level = verbose\n",
		   "2: [daemon] log_level: 'verbose' is not error, warning, info or debug");
}

static void test_strings(void **state)
{
	char text[256], want[256];

	(void)state;
	load_fails("[daemon]\nsocket = run/kt.sock\n",
		   "2: [daemon] socket: 'run/kt.sock' is not an absolute path");
	load_fails("[daemon]\nstate_dir = var/lib/keyturn\n",
		   "2: [daemon] state_dir: 'var/lib/keyturn' is not an absolute path");
	load_fails("[daemon]\nca_file = ca.pem\n",
		   "2: [daemon] ca_file: 'ca.pem' is not an absolute path");
	load_fails("[daemon]\nca_file = /etc/my ca.pem\n",
		   "2: [daemon] ca_file: '/etc/my ca.pem' must be printable and hold no spaces");
	snprintf(text, sizeof(text), "[daemon]\nsocket = /%0120d\n", 0);
	snprintf(want, sizeof(want), "2: [daemon] socket: longer than a socket path may be (107)");
	load_fails(text, want);
	load_fails("[daemon]\nregion = US-EAST-1\n",
		   "2: [daemon] region: 'US-EAST-1' is not a region (like us-east-1)");
	load_fails(
		"[daemon]\nregion = us-east-1 # comment\n",
		"2: [daemon] region: 'us-east-1 # comment' must be printable and hold no spaces");
	load_fails("[daemon]\nendpoint = ftp://x\n",
		   "2: [daemon] endpoint: 'ftp://x' is not an http:// or https:// URL");
	load_fails("[daemon]\nendpoint = https://\n",
		   "2: [daemon] endpoint: 'https://' is not an http:// or https:// URL");
	load_fails("[daemon]\nuser =\n", "2: [daemon] user: empty value");
	load_fails("[secret:a]\nid = my secret\n",
		   "2: [secret:a] id: 'my secret' must be printable and hold no spaces");
	load_fails("[secret:a]\nkey = a\tb\n", "2: [secret:a] key: control character in value");
}

/* [events]: the queue's URL, the safety-net interval, and their checks. */
static void test_events(void **state)
{
	struct kt_config *cfg;

	(void)state;
	cfg = load_ok("[daemon]\n");
	assert_null(cfg->events_queue_url);
	assert_int_equal(cfg->events_quiet_interval, 21600);
	kt_config_free(cfg);
	cfg = load_ok("[events]\nqueue_url = https://sqs.eu-west-1.amazonaws.com/1/q\n"
		      "quiet_interval = 600\n");
	assert_string_equal(cfg->events_queue_url, "https://sqs.eu-west-1.amazonaws.com/1/q");
	assert_int_equal(cfg->events_quiet_interval, 600);
	kt_config_free(cfg);
	load_fails("[events]\nquiet_interval = 600\n",
		   "1: [events] queue_url: missing; an [events] section needs the queue's URL");
	load_fails("[events]\nqueue_url = sqs.eu-west-1.amazonaws.com/1/q\n",
		   "2: [events] queue_url: 'sqs.eu-west-1.amazonaws.com/1/q' is not an http:// or "
		   "https:// URL");
	load_fails("[events]\nqueue_url = http://h/1/q\nquiet_interval = 59\n",
		   "3: [events] quiet_interval: 59 is out of range (60 to 604800 seconds)");
	load_fails("[events]\nqueue_url = http://h/1/q\n[events]\n",
		   "3: [events]: section appears twice (first on line 1)");
}

/* [http]: the door's addresses (loopback and unix: only), the token file,
 * metrics and the path prefix, with their defaults and checks. */
static void test_http(void **state)
{
	struct kt_config *cfg;

	(void)state;
	cfg = load_ok("[daemon]\n");
	assert_null(cfg->http_listen);
	assert_false(cfg->http_metrics);
	assert_string_equal(cfg->http_path_prefix, "/v1/");
	assert_string_equal(cfg->http_token_group, "keyturn-http");
	assert_non_null(strstr(cfg->http_token_file, "/keyturn/http-token"));
	kt_config_free(cfg);
	cfg = load_ok("[http]\nlisten = 127.0.0.1:2773 [::1]:2773 unix:/run/k/http.sock\n"
		      "token_file = /etc/k/token\nmetrics = yes\npath_prefix = /secrets/\n");
	assert_string_equal(cfg->http_listen, "127.0.0.1:2773 [::1]:2773 unix:/run/k/http.sock");
	assert_string_equal(cfg->http_token_file, "/etc/k/token");
	assert_true(cfg->http_metrics);
	assert_string_equal(cfg->http_path_prefix, "/secrets/");
	kt_config_free(cfg);
	load_fails("[http]\nmetrics = yes\n",
		   "1: [http] listen: missing; an [http] section needs at least one address");
	load_fails(
		"[http]\nlisten = 0.0.0.0:2773\n",
		"2: [http] listen: '0.0.0.0:2773': keyturnd listens on loopback only (127.0.0.1, "
		"[::1]) or unix:PATH");
	load_fails("[http]\nlisten = 127.0.0.1:2773 192.0.2.1:2773\n",
		   "2: [http] listen: '192.0.2.1:2773': keyturnd listens on loopback only "
		   "(127.0.0.1, [::1]) or unix:PATH");
	load_fails("[http]\nlisten = localhost:2773\n",
		   "2: [http] listen: 'localhost:2773': keyturnd listens on loopback only "
		   "(127.0.0.1, [::1]) or unix:PATH");
	load_fails("[http]\nlisten = 127.0.0.1:99999\n",
		   "2: [http] listen: '127.0.0.1:99999': the port must be 1 to 65535");
	load_fails("[http]\nlisten = 127.0.0.1:1\npath_prefix = v1\n",
		   "3: [http] path_prefix: 'v1' must start and end with '/' and hold no ?, # or %");
	load_fails("[http]\nlisten = 127.0.0.1:1\ntoken_file = token\n",
		   "3: [http] token_file: 'token' is not an absolute path");
	load_fails("[http]\nlisten = 127.0.0.1:1\n[http]\n",
		   "3: [http]: section appears twice (first on line 1)");
}

/* [credentials]: the socket systemd's LoadCredential= connects to, and
 * the [secret:] keys that serve a credential ID to the units allowed. */
static void test_credentials(void **state)
{
	struct kt_config *cfg;

	(void)state;
	cfg = load_ok("[daemon]\n");
	assert_null(cfg->credentials_socket);
	kt_config_free(cfg);
	cfg = load_ok("[credentials]\nsocket = /run/k/credentials.sock\n"
		      "[secret:app/db]\ncredential = db-password\n"
		      "allow_units = app.service  app-*@*.service\nkey = password\n"
		      "[secret:plain]\n");
	assert_string_equal(cfg->credentials_socket, "/run/k/credentials.sock");
	assert_string_equal(cfg->secrets[0].credential, "db-password");
	assert_string_equal(cfg->secrets[0].allow_units, "app.service  app-*@*.service");
	assert_null(cfg->secrets[1].credential);
	assert_null(cfg->secrets[1].allow_units);
	kt_config_free(cfg);
	load_fails("[credentials]\n",
		   "1: [credentials] socket: missing; a [credentials] section needs the "
		   "socket's path");
	load_fails("[credentials]\nsocket = credentials.sock\n",
		   "2: [credentials] socket: 'credentials.sock' is not an absolute path");
	load_fails("[credentials]\nsocket = /a\n[credentials]\n",
		   "3: [credentials]: section appears twice (first on line 1)");
	load_fails("[credentials]\nsocket = /a\nallow_units = x\n",
		   "3: [credentials] allow_units: unknown key");
	load_fails("[secret:a]\ncredential = db\n[secret:b]\n",
		   "1: [secret:a] allow_units: missing; a secret served as a credential needs "
		   "the units that may load it");
	load_fails("[secret:a]\ncredential = db\n",
		   "1: [secret:a] allow_units: missing; a secret served as a credential needs "
		   "the units that may load it");
	load_fails("[secret:a]\ncredential = d/b\nallow_units = x.service\n",
		   "1: [secret:a] credential: a credential ID is a file name: no '/', at most "
		   "255 bytes");
	load_fails("[secret:a]\ncredential = db\nallow_units = a.service\n"
		   "[secret:b]\nallow_units = b.service\n"
		   "[secret:c]\ncredential = db\nallow_units = c.service\n",
		   "6: [secret:c] credential: 'db' is served by [secret:a] already (line 1)");
}

/* [file:PATH] sections: defaults, every key, and what is refused. */
static void test_files(void **state)
{
	struct kt_config *cfg;
	const struct kt_file_cfg *f;

	(void)state;
	cfg = load_ok("[file:/run/app/db]\nsecret = app/db\n[secret:app/db]\n");
	assert_int_equal(cfg->nfiles, 1);
	f = &cfg->files[0];
	assert_string_equal(f->path, "/run/app/db");
	assert_string_equal(f->secret, "app/db");
	assert_int_equal(f->format, KT_FILE_RAW);
	assert_null(f->key);
	assert_int_equal(f->uid, (uid_t)-1);
	assert_int_equal(f->gid, (gid_t)-1);
	assert_int_equal(f->mode, 0400);
	assert_null(f->argv);
	assert_int_equal(f->run_uid, (uid_t)-1);
	assert_int_equal(f->on_change_timeout, 30);
	assert_false(f->on_stale_remove);
	kt_config_free(cfg);

	cfg = load_ok("[secret:app/db]\n"
		      "[file:/run/app/db.env]\nsecret = app/db\nformat = env\nowner = root\n"
		      "group = 0\nmode = 0640\n"
		      "on_change = sh -c 'echo \"a b\" >>/x' \"q\\\"\" last\\ word\n"
		      "run_as = root\non_change_timeout = 5\non_stale = remove\n"
		      "[file:/run/app/pw]\nsecret = app/db\nformat = raw\nkey = password\n"
		      "on_change = systemctl  try-reload-or-restart app.service \n");
	assert_int_equal(cfg->nfiles, 2);
	f = &cfg->files[0];
	assert_int_equal(f->format, KT_FILE_ENV);
	assert_int_equal(f->uid, 0);
	assert_int_equal(f->gid, 0);
	assert_int_equal(f->mode, 0640);
	assert_string_equal(f->argv[0], "sh");
	assert_string_equal(f->argv[1], "-c");
	assert_string_equal(f->argv[2], "echo \"a b\" >>/x");
	assert_string_equal(f->argv[3], "q\"");
	assert_string_equal(f->argv[4], "last word");
	assert_null(f->argv[5]);
	assert_int_equal(f->run_uid, 0);
	assert_int_equal(f->on_change_timeout, 5);
	assert_true(f->on_stale_remove);
	f = &cfg->files[1];
	assert_string_equal(f->key, "password");
	assert_string_equal(f->argv[0], "systemctl");
	assert_string_equal(f->argv[1], "try-reload-or-restart");
	assert_string_equal(f->argv[2], "app.service");
	assert_null(f->argv[3]);
	kt_config_free(cfg);

	load_fails("[file:/a]\n", "1: [file:/a] secret: missing; every [file:] section needs one");
	load_fails("[file:/a]\nsecret = nope\n[secret:yes]\n",
		   "1: [file:/a] secret: 'nope' is not a configured [secret:] section");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nmode = 0800\n",
		   "2: [file:/a] mode: '0800' is not an octal mode from 0 to 0777");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nmode = 1777\n",
		   "2: [file:/a] mode: '1777' is not an octal mode from 0 to 0777");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nmode = rw\n",
		   "2: [file:/a] mode: 'rw' is not an octal mode from 0 to 0777");
	load_fails("[file:a/b]\n", "1: [file:a/b]: a file's path must be absolute, printable "
				   "and hold no spaces");
	load_fails("[file:/a/../b]\n", "1: [file:/a/../b]: a file's path may not hold '//', "
				       "'.' or '..' components, nor end with '/'");
	load_fails("[file:/a//b]\n", "1: [file:/a//b]: a file's path may not hold '//', '.' or "
				     "'..' components, nor end with '/'");
	load_fails("[file:/a/]\n", "1: [file:/a/]: a file's path may not hold '//', '.' or '..' "
				   "components, nor end with '/'");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nowner = no-such-user-kt\n",
		   "2: [file:/a] owner: unknown user 'no-such-user-kt'");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\ngroup = no-such-group-kt\n",
		   "2: [file:/a] group: unknown group 'no-such-group-kt'");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\non_change = /bin/true\n"
		   "run_as = no-such-user-kt\n",
		   "2: [file:/a] run_as: unknown user 'no-such-user-kt'");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nrun_as = root\n",
		   "2: [file:/a] run_as: given without on_change");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\n[file:/a]\nsecret = s\n",
		   "4: [file:/a]: section appears twice (first on line 2)");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nformat = yaml\n",
		   "2: [file:/a] format: 'yaml' is not raw, env or json");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nformat = json\nkey = k\n",
		   "2: [file:/a] key: only format = raw takes a key");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\non_stale = delete\n",
		   "2: [file:/a] on_stale: 'delete' is not keep or remove");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\non_change = sh -c 'x\n",
		   "2: [file:/a] on_change: an unterminated quote, a trailing backslash, or no "
		   "command");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\non_change_timeout = 0\n",
		   "4: [file:/a] on_change_timeout: 0 is out of range (1 to 3600 seconds)");
	load_fails("[secret:s]\n[file:/a]\nsecret = s\nsocket = /x\n",
		   "4: [file:/a] socket: unknown key");
}

/* [rotate:NAME] sections and rotate_after_use. */
static void test_rotate(void **state)
{
	struct kt_config *cfg;
	const struct kt_rotate_cfg *r;

	(void)state;
	cfg = load_ok("[secret:app/db]\nid = arn-of-db\nkey = pw\n"
		      "[rotate:app/db]\n");
	r = kt_config_rotate(cfg, "app/db");
	assert_non_null(r);
	assert_null(r->schedule);
	assert_int_equal(r->length, 32);
	assert_true(r->require_each_included_type);
	assert_false(r->exclude_numbers);
	assert_int_equal(r->command_timeout, 60);
	assert_string_equal(r->key, "pw"); /* the secret's */
	assert_string_equal(r->secret_id, "arn-of-db");
	assert_ptr_equal(kt_config_rotate_by_id(cfg, "arn-of-db"), r);
	assert_null(kt_config_rotate_by_id(cfg, "app/db"));
	assert_null(r->set_argv);
	assert_int_equal(r->run_uid, (uid_t)-1);
	kt_config_free(cfg);

	cfg = load_ok("[secret:app/db]\n"
		      "[rotate:app/db]\n"
		      "schedule = cron(0 4 ? * SUN#2 *)\n"
		      "window = 3h\n"
		      "length = 20\n"
		      "exclude_characters = /@\"'\\\n"
		      "exclude_punctuation = yes\n"
		      "require_each_included_type = no\n"
		      "key = password\n"
		      "set_command = /usr/local/sbin/set 'a b' c\n"
		      "test_command = test-it\n"
		      "run_as = root\n"
		      "command_timeout = 5\n"
		      "[login:bob]\nsecret = users/bob\nrotate_after_use = 3600\n");
	r = kt_config_rotate(cfg, "app/db");
	assert_non_null(r);
	assert_false(r->sched.is_rate);
	assert_int_equal(r->window, 3 * 3600);
	assert_int_equal(r->length, 20);
	assert_string_equal(r->exclude_characters, "/@\"'\\");
	assert_true(r->exclude_punctuation);
	assert_false(r->require_each_included_type);
	assert_string_equal(r->key, "password");
	assert_string_equal(r->set_argv[0], "/usr/local/sbin/set");
	assert_string_equal(r->set_argv[1], "a b");
	assert_string_equal(r->set_argv[2], "c");
	assert_null(r->set_argv[3]);
	assert_string_equal(r->test_argv[0], "test-it");
	assert_int_equal(r->run_uid, 0);
	assert_int_equal(r->command_timeout, 5);
	assert_int_equal(kt_config_login(cfg, "bob")->rotate_after_use, 3600);
	kt_config_free(cfg);

	cfg = load_ok("[secret:s]\n[rotate:s]\nschedule = rate(10 days)\n");
	assert_true(kt_config_rotate(cfg, "s")->sched.is_rate);
	assert_int_equal(kt_config_rotate(cfg, "s")->window, 0);
	kt_config_free(cfg);

	load_fails("[rotate:nope]\n",
		   "1: [rotate:nope]: 'nope' is not a configured [secret:] section");
	load_fails("[secret:s]\n[rotate:s]\n[rotate:s]\n",
		   "3: [rotate:s]: section appears twice (first on line 2)");
	load_fails("[secret:s]\n[secret:t]\nid = s\n[rotate:s]\n[rotate:t]\n",
		   "5: [rotate:t]: [rotate:s] (line 4) rotates the same SecretId already");
	load_fails("[secret:s]\n[rotate:s]\nwindow = 2h\n",
		   "2: [rotate:s] window: given without a schedule");
	load_fails("[secret:s]\n[rotate:s]\nlength = 0\n",
		   "3: [rotate:s] length: 0 is out of range (1 to 4096)");
	load_fails("[secret:s]\n[rotate:s]\nrun_as = root\n",
		   "2: [rotate:s] run_as: given without set_command or test_command");
	load_fails("[secret:s]\n[rotate:s]\nset_command = /bin/x\nrun_as = no-such-user-kt\n",
		   "2: [rotate:s] run_as: unknown user 'no-such-user-kt'");
	load_fails("[secret:s]\n[rotate:s]\nset_command = 'unterminated\n",
		   "2: [rotate:s] set_command: an unterminated quote, a trailing backslash, or "
		   "no command");
	load_fails("[secret:s]\n[rotate:s]\nexclude_numbers = yes\nexclude_punctuation = yes\n"
		   "exclude_uppercase = yes\nexclude_lowercase = yes\n",
		   "2: [rotate:s] exclude_lowercase: every type of character is excluded: no "
		   "password can be made");
	load_fails("[secret:s]\n[rotate:s]\nfrequency = 1\n",
		   "3: [rotate:s] frequency: unknown key");
	load_fails("[login:bob]\nsecret = x\nrotate_after_use = -1\n",
		   "3: [login:bob] rotate_after_use: -1 is out of range (0 to 31536000 seconds)");
}

static void test_structure_errors(void **state)
{
	(void)state;
	load_fails("region = us-east-1\n",
		   "1: region: outside any section (put it under [daemon], [events], [http], "
		   "[credentials], [secret:NAME], [login:USER], [file:PATH] or "
		   "[rotate:NAME])");
	load_fails("[daemon]\n\n[daemonx]\n",
		   "3: [daemonx]: unknown section (expected [daemon], [events], [http], "
		   "[credentials], [secret:NAME], [login:USER], [file:PATH] or "
		   "[rotate:NAME])");
	load_fails("[secret]\n",
		   "1: [secret]: unknown section (expected [daemon], [events], [http], "
		   "[credentials], [secret:NAME], [login:USER], [file:PATH] or "
		   "[rotate:NAME])");
	load_fails("[daemon]\nregoin = us-east-1\n", "2: [daemon] regoin: unknown key");
	load_fails("[secret:a]\nallow_user = root\n", "2: [secret:a] allow_user: unknown key");
	load_fails("[login:a]\nsecret = s\noffline_age = 1\n",
		   "3: [login:a] offline_age: unknown key");
	load_fails("[daemon]\n= x\n", "2: [daemon]: a key name must come before '='");
	load_fails("[daemon]\nregion = us-east-1\n\nregion = eu-west-1\n",
		   "4: [daemon] region: set twice (first on line 2)");
	load_fails("[daemon]\n[secret:a]\n[daemon]\n",
		   "3: [daemon]: section appears twice (first on line 1)");
	load_fails("[secret:a]\n[secret:b]\n[secret:a]\n",
		   "3: [secret:a]: section appears twice (first on line 1)");
	load_fails("[login:*]\nsecret = s\n[login:*]\nsecret = t\n",
		   "3: [login:*]: section appears twice (first on line 1)");
	load_fails("[daemon\n", "1: section header lacks ']'");
	load_fails("[daemon] x\n", "1: [daemon]: text after ']'");
	load_fails("[secret:]\n",
		   "1: [secret:]: a secret name must be printable and hold no spaces");
	load_fails("[secret:a b]\n",
		   "1: [secret:a b]: a secret name must be printable and hold no spaces");
	load_fails("[login:a:b]\nsecret = s\n",
		   "1: [login:a:b]: a user name must be printable, without spaces or ':'");
	load_fails("[login:adm*]\nsecret = s\n", "1: [login:adm*]: only a lone '*' is a wildcard");
	load_fails("[login:bob]\nkey = password\n\n[daemon]\n",
		   "1: [login:bob] secret: missing; every [login:] section needs one");
	load_fails("[daemon]\n[login:bob]\nkey = password\n",
		   "2: [login:bob] secret: missing; every [login:] section needs one");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	load_fails("[daemon]\nregion\n",
		   "2: syntax error (expected 'key = value', '[section]' or a comment)");
	/* An indented line is not a continuation of the value above. */
	load_fails("[daemon]\nregion = us-east-1\n    eu-west-1\n",
		   "3: syntax error (expected 'key = value', '[section]' or a comment)");
	/* The first error in the file is the one reported, whoever finds it. */
	load_fails("[daemon]\nbogus\nregoin = x\n",
		   "2: syntax error (expected 'key = value', '[section]' or a comment)");
	load_fails("[daemon]\nregoin = x\nbogus\n", "2: [daemon] regoin: unknown key");
	load_fails("[login:bob]\nsecret hosts/bob\n[daemon]\n",
		   "2: syntax error (expected 'key = value', '[section]' or a comment)");
}

static void test_line_forms(void **state)
{
	static const char text[] = "\xEF\xBB\xBF[daemon]\r\n"
				   "  region = eu-west-1\r\n"
				   "\tworkers = 4   ; inline comment\r\n"
				   "# a comment\n"
				   "   ; an indented comment\n"
				   "endpoint: https://sm.example\n"
				   "   [secret:x]   # trailing comment\n";
	struct kt_config *cfg = load_ok(text);
	char name[160], text2[200];

	(void)state;
	assert_string_equal(cfg->region, "eu-west-1");
	assert_int_equal(cfg->workers, 4);
	assert_string_equal(cfg->endpoint, "https://sm.example");
	assert_non_null(kt_config_secret(cfg, "x"));
	kt_config_free(cfg);

	/* libinih keeps section names to 50 characters; ours are whole. */
	memset(name, 'n', 150);
	name[150] = '\0';
	snprintf(text2, sizeof(text2), "[secret:%s]\nkey = k\n", name);
	cfg = load_ok(text2);
	assert_int_equal(cfg->nsecrets, 1);
	assert_string_equal(cfg->secrets[0].name, name);
	kt_config_free(cfg);
}

static void test_long_line_and_nul(void **state)
{
	static const char nul[] = "[daemon]\nregion = us\0east\n";
	char text[400], want[300];
	struct kt_config *cfg = NULL;

	(void)state;
	/* The limit is libinih's build-time line length, 200 in Debian's. */
	snprintf(text, sizeof(text), "[daemon]\nregion = %0280d\n", 0);
	assert_true(load_bytes(text, strlen(text), &cfg) < 0);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:2: [daemon]: line longer than ", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	assert_true(load_bytes(nul, sizeof(nul) - 1, &cfg) < 0);
	assert_null(cfg);
	snprintf(text, sizeof(text), "%s:2: [daemon]: NUL byte in line", path);
	assert_string_equal(err, text);
}

static void test_file_errors(void **state)
{
	static struct kt_config dummy;
	struct kt_config *cfg = &dummy;
	char dir[64], want[300];
	int fd;

	(void)state;
	assert_int_equal(kt_config_load("/nonexistent/keyturnd.conf", &cfg, err, sizeof(err)),
			 -ENOENT);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent/keyturnd.conf: cannot open: No such file or "
				 "directory");

	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-config-dir-");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(kt_config_load(dir, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	assert_string_equal(err, want);
	assert_int_equal(rmdir(dir), 0);

	kt_tmp_name(path, sizeof(path), "/tmp/kt-config-");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0664), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(kt_config_load(path, &cfg, err, sizeof(err)), -EPERM);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: writable by group or others (chmod go-w)", path);
	assert_string_equal(err, want);
	unlink(path);

	/* Only root can give a file away, so only root can test this. */
	if (geteuid() == 0) {
		kt_tmp_name(path, sizeof(path), "/tmp/kt-config-");
		fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(fchown(fd, 1, 0), 0);
		assert_int_equal(close(fd), 0);
		assert_int_equal(kt_config_load(path, &cfg, err, sizeof(err)), -EPERM);
		snprintf(want, sizeof(want), "%s: owned by uid 1, not by root or uid 0", path);
		assert_string_equal(err, want);
		unlink(path);
	}

	/* A short or absent buffer still gets the error code, cut safely. */
	assert_int_equal(kt_config_load("/nonexistent/x", &cfg, err, 8), -ENOENT);
	assert_string_equal(err, "/nonexi");
	assert_int_equal(kt_config_load("/nonexistent/x", &cfg, NULL, 0), -ENOENT);
}

static void test_allow_lists(void **state)
{
	struct kt_config *cfg = load_ok("[secret:a]\n"
					"allow_users = root   daemon\t1001\n"
					"allow_groups = daemon 4242\n"
					"[secret:b]\n"
					"allow_users =\n");
	const struct kt_secret_cfg *a = kt_config_secret(cfg, "a");
	const struct kt_secret_cfg *b = kt_config_secret(cfg, "b");

	(void)state;
	assert_int_equal(a->nallow_users, 3);
	assert_string_equal(a->allow_users[2], "1001");
	assert_int_equal(a->allow_uids[0], 0);
	assert_int_equal(a->allow_uids[1], 1);
	assert_int_equal(a->allow_uids[2], 1001);
	assert_int_equal(a->nallow_groups, 2);
	assert_int_equal(a->allow_gids[0], 1);
	assert_int_equal(a->allow_gids[1], 4242);
	assert_int_equal(b->nallow_users, 0);
	kt_config_free(cfg);

	load_fails("[secret:a]\nallow_users = root kt-no-such-user\n",
		   "2: [secret:a] allow_users: unknown user 'kt-no-such-user'");
	load_fails("[secret:a]\nallow_groups = kt-no-such-group\n",
		   "2: [secret:a] allow_groups: unknown group 'kt-no-such-group'");
	load_fails("[secret:a]\nallow_users = 4294967295\n",
		   "2: [secret:a] allow_users: unknown user '4294967295'");
	load_fails("[secret:a]\nallow_users = root,daemon\n",
		   "2: [secret:a] allow_users: unknown user 'root,daemon'");
	load_fails("[secret:a]\nallow_users = root\nallow_users = daemon\n",
		   "3: [secret:a] allow_users: set twice (first on line 2)");
}

static void test_login_lookup(void **state)
{
	struct kt_config *cfg = load_ok("[login:*]\nsecret = users/%u\n"
					"[login:alice]\nsecret = admins/alice\n");

	(void)state;
	assert_string_equal(kt_config_login(cfg, "alice")->secret, "admins/alice");
	assert_string_equal(kt_config_login(cfg, "bob")->secret, "users/%u");
	assert_string_equal(kt_config_login(cfg, "*")->user, "*");
	kt_config_free(cfg);

	cfg = load_ok("[login:alice]\nsecret = a\n");
	assert_null(kt_config_login(cfg, "bob"));
	assert_non_null(kt_config_login(cfg, "alice"));
	kt_config_free(cfg);
}

static void test_login_patterns(void **state)
{
	struct kt_config *cfg = load_ok("[login:*]\nsecret = 100%%/%H/%u\n");

	(void)state;
	assert_string_equal(cfg->logins[0].secret, "100%%/%H/%u");
	kt_config_free(cfg);
	load_fails("[login:*]\nsecret = hosts/%h/pw\n",
		   "2: [login:*] secret: unknown escape '%h' (use %H, %u or %%)");
	load_fails("[login:*]\nsecret = pw%\n",
		   "2: [login:*] secret: '%' at the end (write %% for a literal %)");
	load_fails("[login:*]\nsecret = a b\n",
		   "2: [login:*] secret: 'a b' must be printable and hold no spaces");
}

static void expect_expand(const char *pattern, const char *user, const char *host, const char *want)
{
	char *got;

	errno = 0;
	got = kt_config_expand(pattern, user, host);
	if (want == NULL) {
		assert_null(got);
		assert_int_equal(errno, EINVAL);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_expand(void **state)
{
	char big[2100];

	(void)state;
	expect_expand("hosts/%H/breakglass", "root", "web-1.example.com",
		      "hosts/web-1.example.com/breakglass");
	expect_expand("users/%u", "alice", NULL, "users/alice");
	expect_expand("%u@%H", "a.b_c+d=e", "h", "a.b_c+d=e@h");
	expect_expand("100%%-%u", "bob", "h", "100%-bob");
	expect_expand("plain", NULL, NULL, "plain");
	expect_expand("", "u", "h", "");
	/* Bad patterns (loading refuses them too) and values that cannot be
	 * part of a SecretId, or would climb out of the pattern's place. */
	expect_expand("x/%h", "u", "h", NULL);
	expect_expand("x%", "u", "h", NULL);
	expect_expand("users/%u", "../root", "h", NULL);
	expect_expand("users/%u", "a/b", "h", NULL);
	expect_expand("users/%u", "..", "h", NULL);
	expect_expand("users/%u", "", "h", NULL);
	expect_expand("users/%u", "a b", "h", NULL);
	expect_expand("users/%u", NULL, "h", NULL);
	expect_expand("hosts/%H", "u", NULL, NULL);
	memset(big, 'a', 2049);
	big[2049] = '\0';
	expect_expand("x/%u", big, "h", NULL);
	big[2047] = '\0';
	expect_expand("x/%u", big, "h", NULL);
	big[2046] = '\0';
	{
		char want[2110];

		snprintf(want, sizeof(want), "x/%s", big);
		expect_expand("x/%u", big, "h", want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),   cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_section_defaults), cmocka_unit_test(test_every_daemon_key),
		cmocka_unit_test(test_numbers),          cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_booleans),         cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_strings),          cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_events),           cmocka_unit_test(test_http),
		cmocka_unit_test(test_credentials),      cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_line_forms),       cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_file_errors),      cmocka_unit_test(test_allow_lists),
		cmocka_unit_test(test_login_lookup),     cmocka_unit_test(test_login_patterns),
		cmocka_unit_test(test_expand),           cmocka_unit_test(test_files),
		cmocka_unit_test(test_rotate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* keyturnctl's human-readable output of the daemon's metadata answers
 * (list, status, refresh): tables and summaries from the JSON, never values. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ctl_show.h"
#include "common/kt_json.h"

/* A member as printable text ("-" when absent or null). */
static const char *jstr(struct json_object *o, const char *key, char *buf, size_t n)
{
	const char *s = kt_json_str(o, key);

	if (s == NULL)
		return "-";
	return kt_json_printable(s, buf, n);
}

static long long jint(struct json_object *o, const char *key)
{
	long long v = 0;

	if (!kt_json_int64(o, key, &v))
		return 0;
	return v;
}

static bool jbool(struct json_object *o, const char *key)
{
	bool b = false;

	kt_json_bool(o, key, &b);
	return b;
}

/* A time as "5m ago", "in 2h", or "-" for 0 ("never" / "not known"). */
static const char *when(long long t, char *buf, size_t n)
{
	long long d = t - (long long)time(NULL);
	long long a = d < 0 ? -d : d;
	const char *unit = "s";

	if (t == 0)
		return "-";
	if (a >= 2 * 86400) {
		a /= 86400;
		unit = "d";
	} else if (a >= 2 * 3600) {
		a /= 3600;
		unit = "h";
	} else if (a >= 120) {
		a /= 60;
		unit = "m";
	}
	if (d <= 0)
		snprintf(buf, n, "%lld%s ago", a, unit);
	else
		snprintf(buf, n, "in %lld%s", a, unit);
	return buf;
}

/* An absolute local time with its distance from now, or "-". */
static const char *stamp(long long t, char *buf, size_t n)
{
	char rel[32];
	char abs[40];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(abs, sizeof(abs), "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		return "-";
	snprintf(buf, n, "%s (%s)", abs, when(t, rel, sizeof(rel)));
	return buf;
}

/* The labels of a "stages" array, joined by commas. */
static const char *stages(struct json_object *o, char *buf, size_t n)
{
	struct json_object *a;
	size_t i, len, used = 0;

	buf[0] = '\0';
	if (!json_object_object_get_ex(o, "stages", &a) || !json_object_is_type(a, json_type_array))
		return "-";
	len = json_object_array_length(a);
	for (i = 0; i < len && used + 1 < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		char p[64];

		if (!json_object_is_type(e, json_type_string))
			continue;
		kt_json_printable(json_object_get_string(e), p, sizeof(p));
		used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "," : "", p);
	}
	return buf[0] != '\0' ? buf : "-";
}

/* What a list entry says about being served now. */
static const char *state_of(struct json_object *e)
{
	if (kt_json_str(e, "version_id") == NULL)
		return "not fetched";
	if (!jbool(e, "available"))
		return "unavailable";
	return jbool(e, "stale") ? "stale" : "ok";
}

/* One secret's metadata (a list entry, or a refresh answer), line by line. */
void ctl_show_secret(struct json_object *e)
{
	char b1[256], b2[128], b3[128];

	printf("%s\n", jstr(e, "name", b1, sizeof(b1)));
	printf("  id:          %s\n", jstr(e, "id", b1, sizeof(b1)));
	printf("  arn:         %s\n", jstr(e, "arn", b1, sizeof(b1)));
	printf("  version:     %s [%s]\n", jstr(e, "version_id", b1, sizeof(b1)),
	       stages(e, b2, sizeof(b2)));
	printf("  in AWS:      %s\n", jstr(e, "current_version_in_aws", b1, sizeof(b1)));
	printf("  state:       %s\n", state_of(e));
	printf("  fetched:     %s\n", stamp(jint(e, "fetched_at"), b3, sizeof(b3)));
	printf("  checked:     %s\n", stamp(jint(e, "checked_at"), b3, sizeof(b3)));
	printf("  next check:  %s\n", stamp(jint(e, "next_check"), b3, sizeof(b3)));
	if (jbool(e, "rotation_enabled"))
		printf("  rotation:    enabled, next %s\n",
		       stamp(jint(e, "next_rotation"), b3, sizeof(b3)));
	else
		printf("  rotation:    not enabled\n");
}

void ctl_show_list(struct json_object *o)
{
	struct json_object *a;
	size_t i, n, w = 4;
	char name[160], ver[64], st[128], t1[32], t2[32];

	if (!json_object_object_get_ex(o, "secrets", &a) ||
	    !json_object_is_type(a, json_type_array))
		n = 0;
	else
		n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		size_t l =
			strlen(jstr(json_object_array_get_idx(a, i), "name", name, sizeof(name)));

		w = l > w ? l : w;
	}
	if (n == 0) {
		printf("No secrets that you may read.\n");
		return;
	}
	printf("%-*s  %-8s  %-22s  %-11s  %-9s  %s\n", (int)w, "NAME", "VERSION", "STAGES", "STATE",
	       "FETCHED", "NEXT CHECK");
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		/* The first 8 characters of a VersionId tell versions apart. */
		printf("%-*s  %-8.8s  %-22s  %-11s  %-9s  %s\n", (int)w,
		       jstr(e, "name", name, sizeof(name)), jstr(e, "version_id", ver, sizeof(ver)),
		       stages(e, st, sizeof(st)), state_of(e),
		       when(jint(e, "fetched_at"), t1, sizeof(t1)),
		       when(jint(e, "next_check"), t2, sizeof(t2)));
	}
}

/* Rotation events, when keyturnd has an [events] section. */
static void show_events(struct json_object *o)
{
	struct json_object *ev = NULL;
	char b1[64], b2[512], m[700], t[128];
	const char *state;

	if (!json_object_object_get_ex(o, "events", &ev))
		return;
	state = jstr(ev, "state", b1, sizeof(b1));
	if (strcmp(state, "off") == 0)
		return;
	printf("events:      %s, %s\n", state, jstr(ev, "queue_url", b2, sizeof(b2)));
	printf("             %lld received, %lld matched, %lld checks, %lld unparseable, "
	       "%lld failed polls\n",
	       jint(ev, "received"), jint(ev, "matched"), jint(ev, "checks"),
	       jint(ev, "unparseable"), jint(ev, "failures"));
	if (jint(ev, "last_error_at") > 0)
		printf("             last error %s: %s\n",
		       stamp(jint(ev, "last_error_at"), t, sizeof(t)),
		       jstr(ev, "last_error", m, sizeof(m)));
}

/* The HTTP door, when keyturnd has an [http] section. */
static void show_http(struct json_object *o)
{
	struct json_object *h = NULL, *l = NULL;
	char b1[64], addr[160];

	if (!json_object_object_get_ex(o, "http", &h) ||
	    strcmp(jstr(h, "state", b1, sizeof(b1)), "on") != 0)
		return;
	printf("http:        ");
	if (json_object_object_get_ex(h, "listen", &l) && json_object_is_type(l, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(l); i++) {
			const char *a = json_object_get_string(json_object_array_get_idx(l, i));

			printf("%s%s", i > 0 ? " " : "",
			       kt_json_printable(a != NULL ? a : "?", addr, sizeof(addr)));
		}
	}
	printf("\n             %lld connections, %lld requests, %lld refused\n",
	       jint(h, "connections"), jint(h, "requests"), jint(h, "refused"));
}

/* Rotations run by this host ([rotate:] sections, rotate_after_use). */
static void show_rotations(struct json_object *o)
{
	struct json_object *r = NULL;
	char b1[64], b2[64], sched[300], m[800], t1[128], t2[128], name[300];

	if (!json_object_object_get_ex(o, "rotations", &r) ||
	    !json_object_is_type(r, json_type_object))
		return;
	json_object_object_foreach(r, key, v) {
		kt_json_printable(key, name, sizeof(name));
		printf("rotation %s: %s%s%s, schedule %s\n", name, jstr(v, "state", b1, sizeof(b1)),
		       json_object_get_type(json_object_object_get(v, "step")) == json_type_string
			       ? " at "
			       : "",
		       json_object_get_type(json_object_object_get(v, "step")) == json_type_string
			       ? jstr(v, "step", b2, sizeof(b2))
			       : "",
		       json_object_get_type(json_object_object_get(v, "schedule")) ==
				       json_type_string
			       ? jstr(v, "schedule", sched, sizeof(sched))
			       : "none");
		printf("             next window %s, last rotated %s\n",
		       jint(v, "next_window") > 0 ? stamp(jint(v, "next_window"), t1, sizeof(t1))
						  : "none",
		       jint(v, "last_rotated") > 0 ? stamp(jint(v, "last_rotated"), t2, sizeof(t2))
						   : "never");
		if (jint(v, "after_use_due") > 0)
			printf("             due after a login's use at %s\n",
			       stamp(jint(v, "after_use_due"), t1, sizeof(t1)));
		if (json_object_get_type(json_object_object_get(v, "last_error")) ==
		    json_type_string)
			printf("             last error: %s\n",
			       jstr(v, "last_error", m, sizeof(m)));
	}
}

void ctl_show_status(struct json_object *o)
{
	struct json_object *b = NULL, *s = NULL, *errs;
	char b1[256], b2[256], t[128];
	long long up, until;
	size_t i, n;

	json_object_object_get_ex(o, "backend", &b);
	json_object_object_get_ex(o, "secrets", &s);
	up = jint(o, "uptime");
	printf("keyturnd %s, pid %lld, up %lldd %02lld:%02lld:%02lld\n",
	       jstr(o, "version", b1, sizeof(b1)), jint(o, "pid"), up / 86400, up / 3600 % 24,
	       up / 60 % 60, up % 60);
	printf("backend:     %s, region %s\n", jstr(b, "state", b1, sizeof(b1)),
	       jstr(b, "region", b2, sizeof(b2)));
	printf("endpoint:    %s\n", jstr(b, "endpoint", b1, sizeof(b1)));
	printf("AWS calls:   %lld\n", jint(b, "aws_requests"));
	until = jint(b, "throttled_until");
	if (until > (long long)time(NULL))
		printf("throttled:   until %s\n", stamp(until, t, sizeof(t)));
	printf("secrets:     %lld configured, %lld cached, %lld stale, %lld failing\n",
	       jint(s, "configured"), jint(s, "cached"), jint(s, "stale"), jint(s, "failing"));
	printf("clients:     %lld connections, %lld requests, %lld denied\n",
	       jint(o, "connections"), jint(o, "requests"), jint(o, "denied"));
	show_events(o);
	show_http(o);
	show_rotations(o);
	if (json_object_object_get_ex(o, "last_errors", &errs) &&
	    json_object_is_type(errs, json_type_array) &&
	    (n = json_object_array_length(errs)) > 0) {
		printf("last errors:\n");
		for (i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(errs, i);
			char m[512];

			printf("  %s  %s: %s\n", stamp(jint(e, "at"), t, sizeof(t)),
			       jstr(e, "secret", b1, sizeof(b1)), jstr(e, "message", m, sizeof(m)));
		}
	}
}

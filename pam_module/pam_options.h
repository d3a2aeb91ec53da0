/* What pam_keyturn takes from outside before it asks keyturnd anything: its
 * module arguments (what a line of a PAM service file may say after
 * "pam_keyturn.so"), and the checks on the user name and password that
 * keyturnd would refuse anyway. See pam_keyturn(8). */
#ifndef KT_PAM_OPTIONS_H
#define KT_PAM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

/* The same socket as libkeyturn's and keyturnd's default: /run/keyturn/
 * keyturnd.sock when built with --runstatedir=/run, as packages are. */
#define KT_PAM_DEFAULT_SOCKET RUNSTATEDIR "/keyturn/keyturnd.sock"
#define KT_PAM_DEFAULT_TIMEOUT_MS 5000
#define KT_PAM_MIN_TIMEOUT_MS 1
#define KT_PAM_MAX_TIMEOUT_MS 60000
/* sun_path holds 108 bytes with the NUL. */
#define KT_PAM_MAX_SOCKET_LEN 107

/* Where the password comes from. */
enum kt_pam_pass {
	KT_PAM_PASS_DEFAULT,   /* pam_get_authtok(): an earlier module's, else a prompt */
	KT_PAM_PASS_TRY_FIRST, /* the same, asked for by name */
	KT_PAM_PASS_USE_FIRST, /* an earlier module's only; never a prompt */
};

struct kt_pam_opts {
	const char *socket; /* points into argv, or at KT_PAM_DEFAULT_SOCKET */
	int timeout_ms;
	bool debug;
	enum kt_pam_pass pass;
	bool ignore_unknown_user;
	bool ignore_authinfo_unavail;
};

/* Sets o to the defaults, then applies each of the argc arguments in turn
 * (a later socket= or timeout= wins; use_first_pass wins over
 * try_first_pass whatever their order). Returns 0, or -EINVAL at the first
 * bad argument with a message naming it in err (always NUL-terminated when
 * errlen > 0; never longer than errlen). o is filled in either way, but a
 * caller must not use it after an error. */
int kt_pam_opts_parse(struct kt_pam_opts *o, int argc, const char *const *argv, char *err,
		      size_t errlen);

/* Whether s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). keyturnd drops a request that is not,
 * so a password that is not can never match. */
bool kt_pam_utf8_valid(const char *s, size_t n);

/* Whether user can name an account keyturnd may know: not empty, no control
 * character (keyturnd refuses those in names), well-formed UTF-8. */
bool kt_pam_user_valid(const char *user);

/* A copy of s fit for a log line (an argument, a user name): at most
 * size - 1 bytes, each one that is not printable ASCII written as '?'.
 * Returns buf, or "" when size is 0; s may be NULL (an empty copy). */
const char *kt_pam_printable(const char *s, char *buf, size_t size);

#endif

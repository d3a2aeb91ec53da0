/* pam_keyturn: a PAM auth module that has keyturnd check a password against
 * the secret that a [login:] section maps the account to. It only
 * translates: PAM items and module arguments in, keyturn_verify() through
 * libkeyturn, one PAM code out. See pam_keyturn(8) for the codes and why. */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "keyturn.h"
#include "pam_options.h"
#include "private.h"

/* The libkeyturn handle lives in the PAM handle under this name, so that a
 * second call on the same PAM handle reuses its connection, and pam_end()
 * closes it through conn_cleanup(). */
#define DATA_NAME "pam_keyturn:conn"

/* Longer passwords are refused without asking the daemon: no login secret
 * is that long, and a caller must not make keyturnd parse megabytes. */
#define MAX_PASSWORD 4096

/* How much of a user name goes into a log line. */
#define LOG_NAME_MAX 64

/* How much of PAM_SERVICE, PAM_RHOST and PAM_TTY keyturnd is told (a host
 * name is at most 253 bytes). */
#define ITEM_MAX 256

struct conn {
	keyturn_t *kt;
	char socket[KT_PAM_MAX_SOCKET_LEN + 1];
};

static void conn_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	struct conn *c = data;

	(void)pamh;
	(void)error_status;
	if (c == NULL)
		return;
	keyturn_close(c->kt);
	free(c);
}

/* The handle for o->socket: the one stored in pamh when it is for the same
 * socket, else a new one, stored (which closes one for another socket). */
static int get_conn(pam_handle_t *pamh, const struct kt_pam_opts *o, keyturn_t **out)
{
	const void *data = NULL;
	struct conn *c = NULL;
	int err = KT_OPEN_NO_ENV, rc;

	*out = NULL;
	if (pam_get_data(pamh, DATA_NAME, &data) == PAM_SUCCESS && data != NULL) {
		const struct conn *old = data;

		if (strcmp(old->socket, o->socket) == 0) {
			*out = old->kt;
			rc = PAM_SUCCESS;
			goto out;
		}
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = PAM_BUF_ERR;
		goto out;
	}
	/* The socket and who may serve it come from the module's options
	 * alone: KEYTURN_SOCKET and KEYTURN_SOCKET_OWNER in the application's
	 * environment are its user's, and a root daemon (a display manager, a
	 * cron-like service) may have inherited them from anyone. */
	c->kt = keyturn_open(o->socket, &err);
	if (c->kt == NULL) {
		pam_syslog(pamh, LOG_ERR, "cannot open a keyturn handle for %s: %s", o->socket,
			   keyturn_strerror(err));
		rc = err == KEYTURN_E_NOMEM ? PAM_BUF_ERR : PAM_SERVICE_ERR;
		goto out;
	}
	/* The options parser has checked the length. */
	memcpy(c->socket, o->socket, strlen(o->socket) + 1);
	rc = pam_set_data(pamh, DATA_NAME, c, conn_cleanup);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "pam_set_data: %s", pam_strerror(pamh, rc));
		goto out;
	}
	*out = c->kt;
	c = NULL;
out:
	if (c != NULL)
		conn_cleanup(pamh, c, 0);
	return rc;
}

/* The password: with use_first_pass only the one an earlier module left in
 * PAM_AUTHTOK; otherwise pam_get_authtok(), which takes that one too when
 * it is set and prompts when it is not. No copy is made here: the pointer
 * is PAM's own item, which libpam wipes. */
static int get_password(pam_handle_t *pamh, const struct kt_pam_opts *o, const char **pw)
{
	const void *item = NULL;
	int rc;

	*pw = NULL;
	if (o->pass == KT_PAM_PASS_USE_FIRST) {
		rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
		if (rc != PAM_SUCCESS)
			return rc;
		if (item == NULL) {
			if (o->debug)
				pam_syslog(pamh, LOG_DEBUG,
					   "use_first_pass: no password from an earlier module");
			return PAM_AUTH_ERR;
		}
		*pw = item;
		return PAM_SUCCESS;
	}
	rc = pam_get_authtok(pamh, PAM_AUTHTOK, pw, NULL);
	if (rc == PAM_CONV_AGAIN)
		return PAM_INCOMPLETE;
	if (rc == PAM_SUCCESS && *pw == NULL)
		return PAM_AUTH_ERR;
	return rc;
}

/* A PAM item that is a string, as printable ASCII in buf, or NULL when it
 * is not set. These only go into keyturnd's audit log, which refuses a
 * control character in them: a strange PAM_RHOST must not fail a login. */
static const char *str_item(pam_handle_t *pamh, int type, char *buf, size_t size)
{
	const void *v = NULL;

	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS || v == NULL || *(const char *)v == '\0')
		return NULL;
	return kt_pam_printable(v, buf, size);
}

/* keyturn_verify()'s result as a PAM code, logged. Only a real match is a
 * success; every code not named here (a bad socket owner, a garbled answer,
 * the daemon's own failure) is PAM_SERVICE_ERR, which no option turns into
 * PAM_IGNORE. */
static int to_pam(pam_handle_t *pamh, const struct kt_pam_opts *o, const char *user, int krc,
		  int match, const keyturn_t *kt)
{
	const char *why = keyturn_last_message(kt);

	if (why == NULL || *why == '\0')
		why = keyturn_strerror(krc);
	switch (krc) {
	case KEYTURN_OK:
		if (match == 1) {
			if (o->debug)
				pam_syslog(pamh, LOG_DEBUG, "user %s: password accepted", user);
			return PAM_SUCCESS;
		}
		pam_syslog(pamh, LOG_NOTICE, "authentication failure; user=%s", user);
		return PAM_AUTH_ERR;
	case KEYTURN_E_NOT_FOUND:
		if (o->ignore_unknown_user) {
			if (o->debug)
				pam_syslog(pamh, LOG_DEBUG, "user %s: no keyturn login; ignored",
					   user);
			return PAM_IGNORE;
		}
		pam_syslog(pamh, LOG_NOTICE, "user %s: no keyturn login: %s", user, why);
		return PAM_USER_UNKNOWN;
	case KEYTURN_E_CONNECT:
	case KEYTURN_E_TIMEOUT:
	case KEYTURN_E_UNAVAILABLE:
	case KEYTURN_E_THROTTLED:
		pam_syslog(pamh, LOG_WARNING, "user %s: keyturnd cannot check the password%s: %s",
			   user, o->ignore_authinfo_unavail ? " (ignored)" : "", why);
		return o->ignore_authinfo_unavail ? PAM_IGNORE : PAM_AUTHINFO_UNAVAIL;
	case KEYTURN_E_DENIED:
		pam_syslog(pamh, LOG_ERR, "user %s: keyturnd refused this caller: %s", user, why);
		return PAM_CRED_INSUFFICIENT;
	case KEYTURN_E_NOMEM:
		pam_syslog(pamh, LOG_CRIT, "user %s: out of memory", user);
		return PAM_BUF_ERR;
	case KEYTURN_E_UNTRUSTED:
		pam_syslog(pamh, LOG_CRIT, "user %s: not trusting the keyturn socket: %s", user,
			   why);
		return PAM_SERVICE_ERR;
	default:
		pam_syslog(pamh, LOG_ERR, "user %s: password not checked: %s (%s)", user, why,
			   keyturn_strerror(krc));
		return PAM_SERVICE_ERR;
	}
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct kt_pam_opts o;
	char err[256], uq[LOG_NAME_MAX + 1], service[ITEM_MAX], rhost[ITEM_MAX], tty[ITEM_MAX];
	const char *user = NULL, *password = NULL;
	keyturn_t *kt = NULL;
	size_t plen;
	int match = 0, krc, rc;

	(void)flags;
	if (kt_pam_opts_parse(&o, argc, argv, err, sizeof(err)) < 0) {
		pam_syslog(pamh, LOG_ERR, "bad module arguments: %s", err);
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "socket=%s timeout=%d prompt=%s%s%s", o.socket,
			   o.timeout_ms,
			   o.pass == KT_PAM_PASS_USE_FIRST   ? "use_first_pass"
			   : o.pass == KT_PAM_PASS_TRY_FIRST ? "try_first_pass"
							     : "default",
			   o.ignore_unknown_user ? " ignore_unknown_user" : "",
			   o.ignore_authinfo_unavail ? " ignore_authinfo_unavail" : "");

	rc = pam_get_user(pamh, &user, NULL);
	if (rc == PAM_CONV_AGAIN)
		rc = PAM_INCOMPLETE;
	if (rc != PAM_SUCCESS)
		goto out;
	kt_pam_printable(user, uq, sizeof(uq));
	/* A name keyturnd would refuse to read (empty, a control character,
	 * not UTF-8) has no keyturn login. */
	if (!kt_pam_user_valid(user)) {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "user \"%s\": not a name keyturnd takes", uq);
		rc = o.ignore_unknown_user ? PAM_IGNORE : PAM_USER_UNKNOWN;
		goto out;
	}

	rc = get_password(pamh, &o, &password);
	if (rc != PAM_SUCCESS) {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "user %s: no password: %s", uq,
				   pam_strerror(pamh, rc));
		goto out;
	}
	/* Passwords that cannot match a secret are refused here: an empty
	 * one, one that is not UTF-8 (keyturnd would drop the request, which
	 * would look like an outage), and one so long that the daemon should
	 * not have to read it. */
	plen = strnlen(password, MAX_PASSWORD + 1);
	if (plen == 0 || plen > MAX_PASSWORD || !kt_pam_utf8_valid(password, plen)) {
		pam_syslog(pamh, LOG_NOTICE, "authentication failure; user=%s (%s password)", uq,
			   plen == 0             ? "empty"
			   : plen > MAX_PASSWORD ? "oversize"
						 : "non-UTF-8");
		rc = PAM_AUTH_ERR;
		goto out;
	}

	rc = get_conn(pamh, &o, &kt);
	if (rc != PAM_SUCCESS)
		goto out;
	/* Only fails for a timeout out of range, which the parser refuses. */
	if (keyturn_set_timeout(kt, o.timeout_ms) != KEYTURN_OK) {
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	krc = keyturn_verify(kt, user, password, plen,
			     str_item(pamh, PAM_SERVICE, service, sizeof(service)),
			     str_item(pamh, PAM_RHOST, rhost, sizeof(rhost)),
			     str_item(pamh, PAM_TTY, tty, sizeof(tty)), &match);
	rc = to_pam(pamh, &o, uq, krc, match, kt);
out:
	return rc;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}

/* Privilege handling for keyturnd: the hardening every start gets (not
 * dumpable, no core files, a locked arena for secrets, no_new_privs) and the one-way drop
 * from root to the service user in chrony's order, with every step checked. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "privdrop.h"
#include "common/secmem.h"

/* A capability set is 64 bits wide in every kernel ABI so far; the kernel
 * answers EINVAL for numbers past its own last capability, which ends the
 * loops below earlier. Counting on the kernel rather than on libcap's list
 * also covers capabilities newer than the libcap we were built with. */
#define PRIV_CAP_LIMIT 64

/* getpwnam_r's buffer grows up to this before we give up on an entry. */
#define PRIV_PWBUF_MAX (1024 * 1024)

/* Upper bound for the supplementary group list we are willing to build. */
#define PRIV_GROUPS_MAX 65536

/* Records "<step>: <strerror(e)>" in err and returns -e, so that every failed
 * system call is reported the same way and names what was being done. */
static int priv_fail(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int priv_fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	char step[160];
	va_list ap;

	/* A call that failed without setting errno still must not look like 0. */
	if (e <= 0)
		e = EIO;
	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	kt_errf(err, errlen, "%s: %s", step, strerror(e));
	return -e;
}

/* Checks that size bytes fit under RLIMIT_MEMLOCK, raising the soft limit
 * towards the hard one when that is enough (no privilege needed). The
 * check holds even for root: the unit's bounding set leaves out
 * CAP_IPC_LOCK, and a configuration must start the same way everywhere. */
static int priv_check_memlock(size_t size, char *err, size_t errlen)
{
	struct rlimit rl;
	int rc = 0;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
		rc = priv_fail(err, errlen, errno, "getrlimit(RLIMIT_MEMLOCK)");
		goto out;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < size &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= size)) {
		rl.rlim_cur = size;
		if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
			getrlimit(RLIMIT_MEMLOCK, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < size) {
		kt_errf(err, errlen,
			"locked_memory = %zu bytes (%zu KiB) is more than RLIMIT_MEMLOCK allows "
			"(%llu bytes); lower locked_memory in [daemon] or raise LimitMEMLOCK",
			size, size / 1024, (unsigned long long)rl.rlim_cur);
		rc = -ENOMEM;
	}
out:
	return rc;
}

int kt_harden_process(size_t locked_memory, char *err, size_t errlen)
{
	struct rlimit core = { 0, 0 };
	int rc = 0;

	kt_errf(err, errlen, "%s", "");

	/* Not dumpable: no core file, and no ptrace or /proc/PID/mem access by
	 * other processes of the same user once we run as the service user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_SET_DUMPABLE, 0)");
		goto out;
	}
	/* Belt and braces: even a dumpable process would write an empty core. */
	if (setrlimit(RLIMIT_CORE, &core) != 0) {
		rc = priv_fail(err, errlen, errno, "setrlimit(RLIMIT_CORE, 0)");
		goto out;
	}
	/* Nothing the daemon might ever execute (an AWS credential_process, say)
	 * can gain privileges through set-user-ID bits or file capabilities. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_SET_NO_NEW_PRIVS, 1)");
		goto out;
	}
	/* Secret values must not reach swap: they live in a locked arena
	 * sized to fit RLIMIT_MEMLOCK, not in a process locked as a whole
	 * (mlockall), which needs an unlimited limit. Set up here, before the
	 * drop, while nothing else has touched the secure heap. */
	if (locked_memory > 0) {
		rc = priv_check_memlock(locked_memory, err, errlen);
		if (rc == 0)
			rc = kt_secure_init(locked_memory, err, errlen);
	}
out:
	return rc;
}

int kt_lookup_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd pw;
	struct passwd *found = NULL;
	char *buf = NULL;
	size_t buflen;
	long hint;
	int rc = 0;
	int r;

	kt_errf(err, errlen, "%s", "");
	if (name == NULL || name[0] == '\0') {
		kt_errf(err, errlen, "no user name given");
		rc = -EINVAL;
		goto out;
	}
	hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	buflen = hint > 0 ? (size_t)hint : 1024;
	for (;;) {
		buf = malloc(buflen);
		if (buf == NULL) {
			rc = priv_fail(err, errlen, ENOMEM, "getpwnam_r(%s)", name);
			goto out;
		}
		r = getpwnam_r(name, &pw, buf, buflen, &found);
		if (r != ERANGE || buflen >= PRIV_PWBUF_MAX)
			break;
		free(buf);
		buf = NULL;
		buflen *= 2;
	}
	/* POSIX lets "no such entry" come back as ENOENT or ESRCH as well as
	 * the usual 0 with no result; any other code is a real lookup failure
	 * (an unreachable directory service, say) and is reported as such. */
	if (r == ENOENT || r == ESRCH || (r == 0 && found == NULL)) {
		kt_errf(err, errlen, "no such user: %s", name);
		rc = -ENOENT;
		goto out;
	}
	if (r != 0) {
		rc = priv_fail(err, errlen, r, "getpwnam_r(%s)", name);
		goto out;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
out:
	free(buf);
	return rc;
}

/* The service user's groups as the system's group database lists them, the
 * primary group first. Without a user name only the primary group is kept. */
static int priv_user_groups(const char *user, gid_t gid, gid_t **out, int *nout, char *err,
			    size_t errlen)
{
	gid_t *groups = NULL;
	gid_t *grown;
	int n = 16;
	int have;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	for (;;) {
		grown = realloc(groups, (size_t)n * sizeof(*groups));
		if (grown == NULL) {
			rc = priv_fail(err, errlen, ENOMEM, "allocating the group list");
			goto out;
		}
		groups = grown;
		if (user == NULL) {
			groups[0] = gid;
			n = 1;
			break;
		}
		have = n;
		if (getgrouplist(user, gid, groups, &n) >= 0)
			break;
		/* glibc reports the size it needs in n; anything else that does
		 * not let the list grow is a failure, not a reason to spin. */
		if (n <= have)
			n = have * 2;
		if (n > PRIV_GROUPS_MAX) {
			rc = priv_fail(err, errlen, E2BIG, "getgrouplist(%s)", user);
			goto out;
		}
	}
	*out = groups;
	*nout = n;
	groups = NULL;
out:
	free(groups);
	return rc;
}

/* Capabilities, the keep-caps flag and no_new_privs belong to a thread, not
 * to the process: a thread started before the drop would keep its bounding
 * set. So the drop must come before any thread exists. Without /proc the
 * question cannot be asked; then the caller's word is taken for it. */
static int priv_count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* Empties the bounding set, so that nothing this process ever executes can
 * regain a capability. That needs CAP_SETPCAP, so it happens while still
 * root; a systemd unit that takes CAP_SETPCAP away makes the drop fail. */
static int priv_drop_bounding_set(char *err, size_t errlen)
{
	char *name;
	int rc = 0;
	int c;
	int in;

	for (c = 0; c < PRIV_CAP_LIMIT; c++) {
		in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
		if (in < 0 && errno == EINVAL)
			break;
		if (in < 0) {
			rc = priv_fail(err, errlen, errno, "prctl(PR_CAPBSET_READ, %d)", c);
			goto out;
		}
		if (in == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) != 0) {
			int e = errno;

			name = cap_to_name((cap_value_t)c);
			rc = priv_fail(err, errlen, e, "prctl(PR_CAPBSET_DROP, %s)",
				       name != NULL ? name : "?");
			cap_free(name);
			goto out;
		}
	}
out:
	return rc;
}

/* Checks, after the fact, that every id is the service user's, that the
 * group list is exactly the one set, and that no capability is left in any
 * set. A privilege still held is reported as -EPERM. */
static int priv_verify_ids(uid_t uid, gid_t gid, const gid_t *want, int nwant, char *err,
			   size_t errlen)
{
	gid_t *have = NULL;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int nhave;
	int rc = 0;
	int i, j;

	if (getresuid(&ru, &eu, &su) != 0) {
		rc = priv_fail(err, errlen, errno, "getresuid");
		goto out;
	}
	if (ru != uid || eu != uid || su != uid) {
		kt_errf(err, errlen, "verify: uids are %u/%u/%u, not %u", (unsigned)ru,
			(unsigned)eu, (unsigned)su, (unsigned)uid);
		rc = -EPERM;
		goto out;
	}
	if (getresgid(&rg, &eg, &sg) != 0) {
		rc = priv_fail(err, errlen, errno, "getresgid");
		goto out;
	}
	if (rg != gid || eg != gid || sg != gid) {
		kt_errf(err, errlen, "verify: gids are %u/%u/%u, not %u", (unsigned)rg,
			(unsigned)eg, (unsigned)sg, (unsigned)gid);
		rc = -EPERM;
		goto out;
	}
	nhave = getgroups(0, NULL);
	if (nhave < 0) {
		rc = priv_fail(err, errlen, errno, "getgroups");
		goto out;
	}
	have = calloc((size_t)nhave + 1, sizeof(*have));
	if (have == NULL) {
		rc = priv_fail(err, errlen, ENOMEM, "getgroups");
		goto out;
	}
	nhave = getgroups(nhave, have);
	if (nhave < 0) {
		rc = priv_fail(err, errlen, errno, "getgroups");
		goto out;
	}
	/* The kernel keeps the list sorted, so compare as sets of equal size. */
	for (i = 0; i < nwant && nhave == nwant; i++) {
		for (j = 0; j < nhave && have[j] != want[i]; j++)
			;
		if (j == nhave)
			break;
	}
	if (nhave != nwant || i != nwant) {
		kt_errf(err, errlen, "verify: %d supplementary groups set, %d expected", nhave,
			nwant);
		rc = -EPERM;
		goto out;
	}
out:
	free(have);
	return rc;
}

static int priv_verify_caps(char *err, size_t errlen)
{
	cap_t none = NULL;
	cap_t now = NULL;
	char *text = NULL;
	int rc = 0;
	int c;
	int in;

	none = cap_init();
	now = cap_get_proc();
	if (none == NULL || now == NULL) {
		rc = priv_fail(err, errlen, errno, "cap_get_proc");
		goto out;
	}
	/* Ambient capabilities need to be both permitted and inheritable, so
	 * empty effective, permitted and inheritable sets imply none there. */
	if (cap_compare(now, none) != 0) {
		text = cap_to_text(now, NULL);
		kt_errf(err, errlen, "verify: capabilities still held: %s",
			text != NULL ? text : "?");
		rc = -EPERM;
		goto out;
	}
	for (c = 0; c < PRIV_CAP_LIMIT; c++) {
		in = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
		if (in < 0 && errno == EINVAL)
			break;
		if (in != 0) {
			kt_errf(err, errlen, "verify: capability %d is still in the bounding set",
				c);
			rc = -EPERM;
			goto out;
		}
	}
out:
	cap_free(text);
	cap_free(now);
	cap_free(none);
	return rc;
}

static int priv_verify(uid_t uid, gid_t gid, const gid_t *groups, int ngroups, char *err,
		       size_t errlen)
{
	int rc;

	rc = priv_verify_ids(uid, gid, groups, ngroups, err, errlen);
	if (rc < 0)
		goto out;
	rc = priv_verify_caps(err, errlen);
	if (rc < 0)
		goto out;
	/* The proof that matters: root cannot be had back. */
	if (setuid(0) == 0) {
		kt_errf(err, errlen, "verify: setuid(0) succeeded after the drop");
		rc = -EPERM;
		goto out;
	}
	if (gid != 0 && setgid(0) == 0) {
		kt_errf(err, errlen, "verify: setgid(0) succeeded after the drop");
		rc = -EPERM;
		goto out;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		kt_errf(err, errlen, "verify: no_new_privs is not set");
		rc = -EPERM;
		goto out;
	}
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
		kt_errf(err, errlen, "verify: the process is dumpable");
		rc = -EPERM;
		goto out;
	}
out:
	return rc;
}

int kt_drop_privileges(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	gid_t *groups = NULL;
	cap_t none = NULL;
	int ngroups = 0;
	int threads;
	int rc = 0;

	kt_errf(err, errlen, "%s", "");
	/* Dropping "to root" drops nothing; say so plainly rather than let
	 * the final check find that setuid(0) still works. */
	if (uid == 0) {
		kt_errf(err, errlen, "refusing to run as uid 0 (user %s)",
			user != NULL ? user : "?");
		rc = -EINVAL;
		goto out;
	}
	if (geteuid() != 0) {
		kt_errf(err, errlen, "geteuid: running as uid %u, dropping privileges needs root",
			(unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	threads = priv_count_threads();
	if (threads > 1) {
		kt_errf(err, errlen,
			"%d threads running: privileges must be dropped before any thread starts",
			threads);
		rc = -EBUSY;
		goto out;
	}
	/* The group list is read now, while the group database is surely
	 * readable, and kept for the check at the end. */
	rc = priv_user_groups(user, gid, &groups, &ngroups, err, errlen);
	if (rc < 0)
		goto out;

	/* 1. Capabilities must not survive the change of uid. */
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_SET_KEEPCAPS, 0)");
		goto out;
	}
	/* Kernels before 4.3 have no ambient set, and so nothing to clear. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
		goto out;
	}
	rc = priv_drop_bounding_set(err, errlen);
	if (rc < 0)
		goto out;
	/* 2-4. Groups, then gid, then uid: each later step removes the right
	 * to take the earlier ones. */
	if (setgroups((size_t)ngroups, groups) != 0) {
		rc = priv_fail(err, errlen, errno, "setgroups(%d groups of %s)", ngroups,
			       user != NULL ? user : "?");
		goto out;
	}
	if (setresgid(gid, gid, gid) != 0) {
		rc = priv_fail(err, errlen, errno, "setresgid(%u)", (unsigned)gid);
		goto out;
	}
	if (setresuid(uid, uid, uid) != 0) {
		rc = priv_fail(err, errlen, errno, "setresuid(%u)", (unsigned)uid);
		goto out;
	}
	/* 5. The capabilities still needed: none. Leaving root without
	 * keep-caps has emptied the permitted and effective sets already;
	 * this also empties the inheritable set and says so explicitly. */
	none = cap_init();
	if (none == NULL) {
		rc = priv_fail(err, errlen, errno, "cap_init");
		goto out;
	}
	if (cap_set_proc(none) != 0) {
		rc = priv_fail(err, errlen, errno, "cap_set_proc(empty)");
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_SET_NO_NEW_PRIVS, 1)");
		goto out;
	}
	/* Changing uid resets the dumpable flag to fs.suid_dumpable, which
	 * may be 1: say again that this process must never be dumped. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		rc = priv_fail(err, errlen, errno, "prctl(PR_SET_DUMPABLE, 0)");
		goto out;
	}
	rc = priv_verify(uid, gid, groups, ngroups, err, errlen);
out:
	cap_free(none);
	free(groups);
	return rc;
}

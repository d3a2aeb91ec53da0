/* keyturnd: the keyturn sidecar. Parses the command line; everything else is
 * in daemon.c. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf.h"
#include "daemon.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keyturnd [-c FILE] [-f|--foreground] [--check-config] [--version]\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -f, --foreground   stay in the foreground and log to stderr\n"
		"      --check-config report problems in the configuration and exit\n"
		"      --version      print the version and exit\n",
		KT_DEFAULT_CONFIG);
}

static int check_config(const char *path)
{
	struct kt_config *cfg = NULL;
	char err[512];

	if (kt_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "keyturnd: %s\n", err);
		return 1;
	}
	printf("%s: OK (%zu secrets, %zu logins)\n", path, cfg->nsecrets, cfg->nlogins);
	kt_config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = KT_DEFAULT_CONFIG;
	bool foreground = false, check = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			check = true;
			break;
		case 'V':
			printf("keyturnd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check)
		return check_config(path);
	return kt_daemon_main(path, foreground);
}

/* libFuzzer target: keyturnd's configuration parser (sidecar/conf.c). The
 * loader reads a path, so the input is put in a memfd and read back through
 * /proc/self/fd/N, exactly as a file would be. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_config *cfg = NULL;
	char path[64], err[512];

	if (fd < 0) {
		fd = memfd_create("keyturnd.conf", MFD_CLOEXEC);
		/* The loader refuses a file that others may write, as a
		 * memfd (0777) is made. */
		if (fd < 0 || fchmod(fd, 0600) < 0)
			abort();
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (kt_config_load(path, &cfg, err, sizeof(err)) == 0) {
		/* What the daemon asks of a loaded configuration. */
		(void)kt_config_secret(cfg, "app/db");
		(void)kt_config_login(cfg, "root");
		(void)kt_config_login(cfg, "alice");
		kt_config_free(cfg);
	}
	return 0;
}

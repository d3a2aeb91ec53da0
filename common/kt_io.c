/* Small I/O helpers (kt_io.h). */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "kt_io.h"

int kt_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

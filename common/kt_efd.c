/* Waking keyturnd's loop from a thread, and draining the wake-up. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kt_efd.h"
#include "log.h"

void kt_efd_wake(int efd, const char *who)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is at its maximum, so the loop will wake. */
	if (n < 0 && errno != EAGAIN)
		fatal("%s: cannot write to its eventfd: %s", who, strerror(errno));
}

void kt_efd_drain(int efd, const char *who)
{
	uint64_t count;
	ssize_t n;

	do
		n = read(efd, &count, sizeof(count));
	while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0 && errno != EAGAIN)
		fatal("%s: cannot read its eventfd: %s", who, strerror(errno));
}

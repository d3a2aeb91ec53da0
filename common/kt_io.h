/* Small I/O helpers shared by every part. */
#ifndef KT_IO_H
#define KT_IO_H

#include <stddef.h>

/* Writes n bytes to fd, whatever the short writes and signals: 0 or
 * -errno. Values may pass through here: it keeps no copy. */
int kt_write_all(int fd, const void *p, size_t n);

#endif

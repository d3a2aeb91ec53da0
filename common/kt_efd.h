/* The eventfd by which a thread tells keyturnd's loop that results wait
 * (the AWS workers, the hashing thread): one wake, one drain, fatal on an
 * error that would leave the loop deaf. */
#ifndef KT_EFD_H
#define KT_EFD_H

/* Adds one to the counter; who names the thread in a fatal message. */
void kt_efd_wake(int efd, const char *who);

/* Reads the counter back to zero (the fd is non-blocking). */
void kt_efd_drain(int efd, const char *who);

#endif

/* What libkeyturn and pam_keyturn agree on beyond keyturn.h. The module
 * reaches the library only through its exported functions, and a new export
 * would be public ABI (libkeyturn.sym, the Debian symbols file), so the one
 * private request rides on keyturn_open()'s err argument, which the library
 * otherwise only writes. */
#ifndef KT_CLIENT_PRIVATE_H
#define KT_CLIENT_PRIVATE_H

/* Set *err to this before keyturn_open() to have a handle that reads
 * neither KEYTURN_SOCKET nor KEYTURN_SOCKET_OWNER: a PAM application's
 * environment is its user's to set, so pam_keyturn's socket and its owners
 * come from the module's options only. No KEYTURN_E_* code has this value,
 * and keyturn_open() overwrites *err as always. */
#define KT_OPEN_NO_ENV 0x6b744e45

#endif

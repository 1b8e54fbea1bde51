/*
 * listen: the listening sockets, created before workers start so that a busy port fails
 * start-up with the setting's name. Each worker gets its own SO_REUSEPORT socket for a
 * port; port 0 is resolved by the first bind and reused for the rest.
 * The caller owns the returned fds (close them, or hand them to a worker).
 */
#ifndef SB_LISTEN_H
#define SB_LISTEN_H

#include <stddef.h>

/* Creates n sockets on addr:*port; *port is updated when it was 0. 0, or -1 with err set. */
int listen_open(const char *setting, const char *addr, int *port, int *fds, int n, char *err, size_t errsz);

#endif

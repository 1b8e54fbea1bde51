#include "server/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_one(const struct sockaddr *sa, socklen_t salen, int *port_out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    /* libuv 1.44 has no UV_TCP_REUSEPORT: set it on the raw socket, then uv_tcp_open */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, sa, salen) != 0 ||
        listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int listen_open(const char *setting, const char *addr, int *port, int *fds, int n, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t salen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        salen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        salen = sizeof(*in6);
    } else {
        snprintf(err, errsz, "BIND_ADDRESS: \"%s\" is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (ss.ss_family == AF_INET)
            in4->sin_port = htons((uint16_t)*port);
        else
            in6->sin6_port = htons((uint16_t)*port);
        fds[i] = open_one((struct sockaddr *)&ss, salen, port);
        if (fds[i] < 0) {
            snprintf(err, errsz, "%s: cannot listen on %s:%d: %s", setting, addr, *port, strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * Service readiness for systemd (Type=notify): one datagram to $NOTIFY_SOCKET, as sd_notify(3)
 * describes the protocol. Written here instead of linking libsystemd: the protocol is a
 * documented, stable single datagram ("READY=1", "STOPPING=1", "STATUS=..."), the broker also
 * runs where there is no systemd (containers, tests, other init systems) and on small ARM
 * boards where one library less matters, and without NOTIFY_SOCKET this is a no-op.
 *
 * Thread: any (no state). Errors are returned, never fatal: readiness is best effort and
 * systemd's start timeout reports a broker that never said READY.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/core/notify.h"

int kb_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0; /* not started by systemd with Type=notify */
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) return K_ERR_INVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = 0; /* Linux abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return K_ERR_IO;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return K_ERR_IO;
    }
    return 0;
}

/* notify.c - the systemd notify protocol without libsystemd: one datagram
 * to $NOTIFY_SOCKET (a filesystem path, or '@' for the abstract namespace),
 * as sd_notify(3) sends it, and the watchdog interval systemd asked for
 * ($WATCHDOG_USEC, addressed to us by $WATCHDOG_PID). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "fedl/monitor.h"

/* Fill addr from $NOTIFY_SOCKET's value; the length systemd expects is a
 * path's bytes with its NUL, or an abstract name's bytes (the leading NUL
 * standing for '@') without one. */
static int notify_address(const char *socket_name, struct sockaddr_un *addr, socklen_t *length,
                          fedl_error *err)
{
    size_t name_length = strlen(socket_name);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (socket_name[0] != '/' && socket_name[0] != '@') {
        fedl_error_set(err, FEDL_ERR_IO,
                       "NOTIFY_SOCKET=%s: not a unix socket path ('/...') or an abstract name "
                       "('@...')",
                       socket_name);
        return -1;
    }
    if (name_length < 2 || name_length >= sizeof addr->sun_path) {
        fedl_error_set(err, FEDL_ERR_IO,
                       "NOTIFY_SOCKET=%s: a socket address of %zu bytes (1 to %zu allowed)",
                       socket_name, name_length, sizeof addr->sun_path - 1);
        return -1;
    }
    memcpy(addr->sun_path, socket_name, name_length);
    if (socket_name[0] == '@') {
        addr->sun_path[0] = '\0';
        *length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_length);
    } else {
        *length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_length + 1);
    }
    return 0;
}

int fedl_sd_notify(const char *state, fedl_error *err)
{
    const char *socket_name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    socklen_t addr_length;
    size_t state_length;
    ssize_t sent;
    int fd, saved_errno;
    if (socket_name == NULL || socket_name[0] == '\0')
        return 0;
    if (state == NULL || state[0] == '\0') {
        fedl_error_set(err, FEDL_ERR_INVALID_ARG, "sd_notify: an empty state");
        return -1;
    }
    if (notify_address(socket_name, &addr, &addr_length, err) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fedl_error_set(err, FEDL_ERR_IO, "NOTIFY_SOCKET=%s: socket: %s", socket_name,
                       strerror(errno));
        return -1;
    }
    state_length = strlen(state);
    do {
        sent = sendto(fd, state, state_length, MSG_NOSIGNAL, (const struct sockaddr *)&addr,
                      addr_length);
    } while (sent < 0 && errno == EINTR);
    saved_errno = errno;
    close(fd);
    if (sent < 0) {
        fedl_error_set(err, FEDL_ERR_IO, "NOTIFY_SOCKET=%s: sendto: %s", socket_name,
                       strerror(saved_errno));
        return -1;
    }
    if ((size_t)sent != state_length) {
        fedl_error_set(err, FEDL_ERR_IO, "NOTIFY_SOCKET=%s: sendto: %zd of %zu bytes sent",
                       socket_name, sent, state_length);
        return -1;
    }
    return 1;
}

/* A whole unsigned decimal number, nothing else; 0 on success. */
static int parse_unsigned(const char *text, unsigned long long *value)
{
    char *end;
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *value = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

uint64_t fedl_sd_watchdog_usec(void)
{
    unsigned long long usec, pid;
    const char *pid_text = getenv("WATCHDOG_PID");
    if (parse_unsigned(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
        return 0;
    /* systemd sets WATCHDOG_PID to the main process; a child that inherited
     * the variables must not take the watchdog for its own. */
    if (pid_text != NULL &&
        (parse_unsigned(pid_text, &pid) != 0 || pid != (unsigned long long)getpid()))
        return 0;
    return (uint64_t)usec;
}

/* test_notify.c - the systemd notify protocol: the exact datagram reaches a
 * socket bound at a path and one in the abstract namespace, nothing is sent
 * without NOTIFY_SOCKET, a socket nobody listens on is an error with a
 * message, and WATCHDOG_USEC counts only when WATCHDOG_PID is unset or ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedl/monitor.h"
#include "support/test_support.h"

/* A datagram socket bound to name ('@' = abstract), as systemd binds its own. */
static int bind_listener(const char *name)
{
    struct sockaddr_un addr;
    size_t length = strlen(name);
    socklen_t addr_length;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_true(length < sizeof addr.sun_path);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, name, length);
    if (name[0] == '@') {
        addr.sun_path[0] = '\0';
        addr_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
    } else {
        addr_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length + 1);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, addr_length), 0);
    return fd;
}

/* The next datagram (waiting up to 2 s); its length, or -1 when none came. */
static ssize_t receive(int fd, char *buf, size_t size)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        return -1;
    return recv(fd, buf, size, MSG_DONTWAIT);
}

static void test_notify_path_socket_receives_exact_bytes(void **state)
{
    const char *dir = test_make_temp_dir("notify");
    const char *message = "READY=1\nSTATUS=running pid 42 (restarts 0)";
    char path[300], buf[256];
    fedl_error err = {0};
    int fd;
    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/notify.sock", dir);
    fd = bind_listener(path);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(fedl_sd_notify(message, &err), 1);
    assert_int_equal(receive(fd, buf, sizeof buf), (ssize_t)strlen(message));
    assert_memory_equal(buf, message, strlen(message));
    assert_int_equal(fedl_sd_notify("WATCHDOG=1", &err), 1);
    assert_int_equal(receive(fd, buf, sizeof buf), 10);
    assert_memory_equal(buf, "WATCHDOG=1", 10);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    rmdir(dir);
}

static void test_notify_abstract_socket_receives_exact_bytes(void **state)
{
    char name[64], buf[64];
    fedl_error err = {0};
    int fd;
    (void)state;
    snprintf(name, sizeof name, "@fedl-test-notify-%ld", (long)getpid());
    fd = bind_listener(name);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(fedl_sd_notify("STOPPING=1", &err), 1);
    assert_int_equal(receive(fd, buf, sizeof buf), 10);
    assert_memory_equal(buf, "STOPPING=1", 10);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_notify_without_socket_sends_nothing(void **state)
{
    fedl_error err = {0};
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(fedl_sd_notify("READY=1", &err), 0);
    assert_int_equal(err.status, FEDL_OK);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(fedl_sd_notify("READY=1", &err), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void test_notify_without_listener_is_an_error_naming_the_socket(void **state)
{
    const char *dir = test_make_temp_dir("notify");
    char path[300];
    fedl_error err = {0};
    int fd;
    (void)state;
    assert_non_null(dir);
    /* no file at all */
    snprintf(path, sizeof path, "%s/nobody.sock", dir);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(fedl_sd_notify("READY=1", &err), -1);
    assert_int_equal(err.status, FEDL_ERR_IO);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file"));
    /* a socket file whose owner has gone */
    fd = bind_listener(path);
    close(fd);
    fedl_error_clear(&err);
    assert_int_equal(fedl_sd_notify("READY=1", &err), -1);
    assert_int_equal(err.status, FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "Connection refused"));
    unlink(path);
    /* an abstract name nobody bound */
    assert_int_equal(setenv("NOTIFY_SOCKET", "@fedl-test-notify-nobody", 1), 0);
    fedl_error_clear(&err);
    assert_int_equal(fedl_sd_notify("READY=1", &err), -1);
    assert_non_null(strstr(err.message, "@fedl-test-notify-nobody"));
    unsetenv("NOTIFY_SOCKET");
    rmdir(dir);
}

static void test_notify_refuses_addresses_it_cannot_use(void **state)
{
    char long_path[200];
    fedl_error err = {0};
    (void)state;
    assert_int_equal(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1), 0);
    assert_int_equal(fedl_sd_notify("READY=1", &err), -1);
    assert_non_null(strstr(err.message, "vsock:2:1234"));
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", long_path, 1), 0);
    fedl_error_clear(&err);
    assert_int_equal(fedl_sd_notify("READY=1", &err), -1);
    assert_int_equal(err.status, FEDL_ERR_IO);
    assert_non_null(strstr(err.message, "199 bytes"));
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_usec_follows_watchdog_pid(void **state)
{
    const char *bad[] = {"", "0", "-5", "12abc", " 12", "99999999999999999999999"};
    char pid[32];
    (void)state;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(fedl_sd_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "200000", 1), 0);
    assert_int_equal(fedl_sd_watchdog_usec(), 200000);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(fedl_sd_watchdog_usec(), 200000);
    /* meant for another process (ours inherited it) */
    snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(fedl_sd_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_PID", "12x", 1), 0);
    assert_int_equal(fedl_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    /* malformed or zero intervals are no watchdog */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("WATCHDOG_USEC", bad[i], 1), 0);
        assert_int_equal(fedl_sd_watchdog_usec(), 0);
    }
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path_socket_receives_exact_bytes),
        cmocka_unit_test(test_notify_abstract_socket_receives_exact_bytes),
        cmocka_unit_test(test_notify_without_socket_sends_nothing),
        cmocka_unit_test(test_notify_without_listener_is_an_error_naming_the_socket),
        cmocka_unit_test(test_notify_refuses_addresses_it_cannot_use),
        cmocka_unit_test(test_watchdog_usec_follows_watchdog_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

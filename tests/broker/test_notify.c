/*
 * kb_notify: the sd_notify datagram reaches a socket given as a path and as an abstract name
 * ('@'), nothing happens without NOTIFY_SOCKET, and a relative path is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/core/notify.h"

/* A datagram socket bound at name (abstract when it starts with '@'). */
static int listen_dgram(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') sa.sun_path[0] = 0;
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = 0;
    assert_string_equal(buf, want);
}

static void test_notify_path_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/kbnotifyXXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listen_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(kb_notify("READY=1\nSTATUS=serving"), 0);
    expect(fd, "READY=1\nSTATUS=serving");
    assert_int_equal(kb_notify("STOPPING=1"), 0);
    expect(fd, "STOPPING=1");
    close(fd);
    unlink(path);
    rmdir(dir);
    /* The socket is gone: an error, not a crash. */
    assert_int_equal(kb_notify("READY=1"), K_ERR_IO);
    unsetenv("NOTIFY_SOCKET");
}

static void test_notify_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@depot-notify-test-%d", (int)getpid());
    int fd = listen_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(kb_notify("READY=1"), 0);
    expect(fd, "READY=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_notify_without_systemd(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(kb_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(kb_notify("READY=1"), K_ERR_INVAL);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path_socket),
        cmocka_unit_test(test_notify_abstract_socket),
        cmocka_unit_test(test_notify_without_systemd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Connection limits over real loopback sockets against an in-process broker (issue 19):
 * abandoned long polls and held JoinGroups are released when their client disconnects (not at
 * their deadline), max_wait_ms is capped, max.connections and max.connections.per.ip refuse
 * cleanly, and a listener whose accept fails keeps accepting (retry timer).
 *
 * What the broker still holds is read from b->net.queued_bytes (bytes of request frames not yet
 * freed), copied to an atomic by a timer on the loop thread so the test thread never reads loop
 * state directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/gen/kp_fetch.h"
#include "protocol/gen/kp_join_group.h"

#define CAP_MS 1500  /* fetch.long.poll.max.ms */
#define PER_IP 20    /* max.connections.per.ip */
#define MAX_CONNS 30 /* max.connections */

static char tmpdir[64];
static kb_config_t cfg;
static uv_loop_t loop;
static kb_broker_t *broker;
static uv_async_t stop_async;
static uv_timer_t probe;
static pthread_t thread;
static int port;
static atomic_llong queued_bytes; /* copy of broker->net.queued_bytes */
static atomic_int open_conns;     /* copy of broker->n_conns */
static atomic_int fail_accepts;   /* accepts still to fail (factory wrapper) */

static int failing_accept(void *ud, uv_loop_t *l, uv_stream_t *server, kb_transport_t **out)
{
    if (atomic_load(&fail_accepts) > 0) {
        atomic_fetch_sub(&fail_accepts, 1);
        *out = NULL;
        return K_ERR_NOMEM; /* as if the transport could not be allocated: nothing accepted */
    }
    return kb_transport_tcp_factory.accept(ud, l, server, out);
}

static const kb_transport_factory_t failing_factory = {"failing-tcp", failing_accept, NULL};

static void on_probe(uv_timer_t *t)
{
    (void)t;
    atomic_store(&queued_bytes, broker->net.queued_bytes);
    atomic_store(&open_conns, broker->n_conns);
}

static void on_stop(uv_async_t *a)
{
    uv_close((uv_handle_t *)&probe, NULL);
    kb_broker_stop(broker);
    uv_close((uv_handle_t *)a, NULL);
}

static void *run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    kb_log_set_level(KB_LOG_ERROR);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kblimXXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char dirs[128], cap[64], per_ip[64], max_conns[64];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", tmpdir);
    snprintf(cap, sizeof cap, "fetch.long.poll.max.ms=%d", CAP_MS);
    snprintf(per_ip, sizeof per_ip, "max.connections.per.ip=%d", PER_IP);
    snprintf(max_conns, sizeof max_conns, "max.connections=%d", MAX_CONNS);
    const char *sets[] = {"listeners=PLAINTEXT://127.0.0.1:0",
                          dirs,
                          cap,
                          per_ip,
                          max_conns,
                          "group.initial.rebalance.delay.ms=20000",
                          "max.connections.per.ip.overrides=127.0.0.4:2, [::2]:7"};
    char err[256];
    if (kb_config_load(&cfg, NULL, sets, 7, err, sizeof err, NULL) < 0) return -1;
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_stop);
    if (kb_broker_new(&cfg, &loop, &broker) < 0 || kb_broker_start(broker) < 0) return -1;
    broker->socks[0].factory = &failing_factory;
    port = kb_broker_port(broker);
    ks_topic_t *t;
    if (ks_topic_create(kb_broker_store(broker), "t", 1, NULL, &t) < 0) return -1;
    uv_timer_init(&loop, &probe);
    uv_timer_start(&probe, on_probe, 5, 5);
    return pthread_create(&thread, NULL, run_loop, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(thread, NULL);
    kb_broker_free(broker);
    uv_loop_close(&loop);
    kb_config_deinit(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connection from source address `from` (NULL: any). */
static int client_from(const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    if (from) {
        inet_pton(AF_INET, from, &a.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    }
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_req(int fd, int16_t key, int16_t version, int32_t corr,
                     int (*enc)(kp_buf_t *, int16_t, const void *), const void *msg)
{
    kp_buf_t b;
    kp_buf_init(&b);
    size_t at = kp_put_i32(&b, 0);
    kp_req_header_t h = {key, version, corr, kp_str("test")};
    kp_req_header_encode(&b, &h);
    if (enc) assert_int_equal(enc(&b, version, msg), 0);
    kp_buf_patch_i32(&b, at, (int32_t)(b.len - at - 4));
    assert_int_equal(send(fd, b.data, b.len, 0), (ssize_t)b.len);
    kp_buf_deinit(&b);
}

/* 1: a response frame arrived, 0: the connection ended (EOF/reset), -1: nothing in time. */
static int read_frame(int fd)
{
    uint8_t hdr[4];
    ssize_t r = recv(fd, hdr, 4, MSG_WAITALL);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return 0;
    if (r < 0) return -1;
    int32_t n = (int32_t)ntohl(*(uint32_t *)hdr);
    assert_true(n > 0 && n < (1 << 20));
    uint8_t *buf = malloc((size_t)n);
    r = recv(fd, buf, (size_t)n, MSG_WAITALL);
    free(buf);
    return r == n ? 1 : 0;
}

/* ApiVersions v0 (empty body) answered? */
static int api_versions(int fd)
{
    send_req(fd, KP_API_API_VERSIONS, 0, 5, NULL, NULL);
    return read_frame(fd);
}

static int enc_fetch(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_fetch_req_encode(b, v, m);
}

static int enc_join(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_join_group_req_encode(b, v, m);
}

/* A long poll at the log end of t/0 (nothing to read). */
static void send_long_poll(int fd, int32_t max_wait_ms)
{
    kp_fetch_req_fetch_partition_t fp;
    kp_fetch_req_fetch_partition_init(&fp);
    fp.partition = 0;
    fp.fetch_offset = 0;
    fp.partition_max_bytes = 1 << 20;
    kp_fetch_req_fetch_topic_t ft;
    kp_fetch_req_fetch_topic_init(&ft);
    ft.topic = kp_str("t");
    ft.partitions = &fp;
    ft.partitions_count = 1;
    kp_fetch_req_t m;
    kp_fetch_req_init(&m);
    m.max_wait_ms = max_wait_ms;
    m.min_bytes = 1;
    m.max_bytes = 1 << 20;
    m.topics = &ft;
    m.topics_count = 1;
    send_req(fd, KP_API_FETCH, 4, 9, enc_fetch, &m);
}

/* Waits until the probe says the broker holds no request bytes; returns the seconds it took
 * (or a large number when it never happened within limit_s). */
static double until_released(double limit_s)
{
    double t0 = now_s();
    while (atomic_load(&queued_bytes) != 0 && now_s() - t0 < limit_s)
        usleep(2000);
    return now_s() - t0;
}

static void until_held(void)
{
    double t0 = now_s();
    while (atomic_load(&queued_bytes) == 0 && now_s() - t0 < 2)
        usleep(2000);
    assert_true(atomic_load(&queued_bytes) > 0);
}

static void test_limits_long_poll_released_when_client_leaves(void **state)
{
    (void)state;
    int fd = client_from(NULL);
    send_long_poll(fd, CAP_MS - 100); /* the old code held it this long after the close */
    until_held();
    close(fd);
    double dt = until_released(5);
    if (dt > 0.3) fail_msg("the abandoned long poll was held %.2f s after its client left", dt);
}

static void test_limits_held_join_released_when_client_leaves(void **state)
{
    (void)state;
    int fd = client_from(NULL);
    kp_join_group_req_join_group_request_protocol_t proto;
    kp_join_group_req_join_group_request_protocol_init(&proto);
    proto.name = kp_str("range");
    proto.metadata = (kp_bytes_t){(const uint8_t *)"", 0};
    kp_join_group_req_t m;
    kp_join_group_req_init(&m);
    m.group_id = kp_str("g-held");
    m.session_timeout_ms = 30000;
    m.rebalance_timeout_ms = 30000;
    m.member_id = kp_str("");
    m.protocol_type = kp_str("consumer");
    m.protocols = &proto;
    m.protocols_count = 1;
    /* v3: no member id round trip, so the join is held for the initial rebalance delay */
    send_req(fd, KP_API_JOIN_GROUP, 3, 7, enc_join, &m);
    until_held();
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(read_frame(fd), -1); /* held: no answer */
    close(fd);
    double dt = until_released(5);
    if (dt > 0.3) fail_msg("the abandoned JoinGroup was held %.2f s after its client left", dt);
}

static void test_limits_max_wait_is_capped(void **state)
{
    (void)state;
    int fd = client_from(NULL);
    double t0 = now_s();
    send_long_poll(fd, INT32_MAX); /* 24 days, as a buggy client might ask */
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(read_frame(fd), 1);
    double dt = now_s() - t0;
    if (dt < CAP_MS / 1000.0 - 0.2 || dt > CAP_MS / 1000.0 + 2)
        fail_msg("a long poll asking INT32_MAX ms was answered after %.2f s, cap %d ms", dt,
                 CAP_MS);
    close(fd);
}

static void until_conns(int n)
{
    double t0 = now_s();
    while (atomic_load(&open_conns) != n && now_s() - t0 < 5)
        usleep(2000);
    assert_int_equal(atomic_load(&open_conns), n);
}

static void test_limits_connections_per_ip_and_total(void **state)
{
    (void)state;
    until_conns(0);
    int fds[MAX_CONNS + 2], n = 0;
    for (int i = 0; i < PER_IP; i++) /* from 127.0.0.1: up to the per-IP limit */
        fds[n++] = client_from("127.0.0.1");
    until_conns(PER_IP);
    int extra = client_from("127.0.0.1"); /* one more from that address: refused */
    assert_int_equal(api_versions(extra), 0);
    close(extra);
    for (int i = PER_IP; i < MAX_CONNS; i++) /* another address fills max.connections */
        fds[n++] = client_from("127.0.0.2");
    until_conns(MAX_CONNS);
    extra = client_from("127.0.0.3"); /* under its per-IP limit, over the total: refused */
    assert_int_equal(api_versions(extra), 0);
    close(extra);
    for (int i = 0; i < n; i += 7) /* those held are served */
        assert_int_equal(api_versions(fds[i]), 1);
    close(fds[0]); /* room again: a new connection is served */
    until_conns(MAX_CONNS - 1);
    extra = client_from("127.0.0.3");
    assert_int_equal(api_versions(extra), 1);
    close(extra);
    for (int i = 1; i < n; i++)
        close(fds[i]);
    until_conns(0);
}

static void test_limits_per_ip_override(void **state)
{
    (void)state;
    until_conns(0);
    int a = client_from("127.0.0.4"), b = client_from("127.0.0.4");
    until_conns(2);
    int c = client_from("127.0.0.4"); /* its override is 2, below max.connections.per.ip */
    assert_int_equal(api_versions(c), 0);
    assert_int_equal(api_versions(a), 1);
    assert_int_equal(api_versions(b), 1);
    close(a);
    close(b);
    close(c);
    until_conns(0);
}

static void test_limits_accept_failure_does_not_stop_the_listener(void **state)
{
    (void)state;
    atomic_store(&fail_accepts, 3);
    int fd = client_from(NULL);
    double t0 = now_s();
    assert_int_equal(api_versions(fd), 1); /* old code: never accepted, never answered */
    assert_int_equal(atomic_load(&fail_accepts), 0);
    assert_true(now_s() - t0 < 4);
    int fd2 = client_from(NULL);
    assert_int_equal(api_versions(fd2), 1);
    close(fd);
    close(fd2);
}

static void test_limits_config_checks(void **state)
{
    (void)state;
    kb_config_t c;
    char err[256];
    const char *bad[] = {"queued.max.request.bytes=1000", "socket.request.max.bytes=2000"};
    assert_int_equal(kb_config_load(&c, NULL, bad, 2, err, sizeof err, NULL), K_ERR_INVAL);
    assert_non_null(strstr(err, "queued.max.request.bytes"));
    const char *ok[] = {"queued.max.request.bytes=-1"};
    assert_int_equal(kb_config_load(&c, NULL, ok, 1, err, sizeof err, NULL), 0);
    assert_int_equal(c.max_connections, INT32_MAX); /* Kafka's defaults */
    assert_int_equal(c.max_connections_per_ip, INT32_MAX);
    assert_true(c.connections_max_idle_ms == 600000);
    kb_config_deinit(&c);
    const char *zero[] = {"fetch.long.poll.max.ms=0"};
    assert_int_equal(kb_config_load(&c, NULL, zero, 1, err, sizeof err, NULL), K_ERR_INVAL);
    const char *bad_overrides[] = {
        "127.0.0.1",        "127.0.0.1:x", ":5", "127.0.0.1:-1", "no-such-host.invalid:5",
        "10.0.0.1:5,[::1:7"};
    for (size_t i = 0; i < sizeof bad_overrides / sizeof bad_overrides[0]; i++) {
        char set[128];
        snprintf(set, sizeof set, "max.connections.per.ip.overrides=%s", bad_overrides[i]);
        const char *one[] = {set};
        assert_int_equal(kb_config_load(&c, NULL, one, 1, err, sizeof err, NULL), K_ERR_INVAL);
        if (!strstr(err, "max.connections.per.ip.overrides"))
            fail_msg("'%s': error '%s' does not name the key", bad_overrides[i], err);
    }
    const char *only_listed[] = {"max.connections.per.ip=0"}; /* Kafka: then overrides needed */
    assert_int_equal(kb_config_load(&c, NULL, only_listed, 1, err, sizeof err, NULL), K_ERR_INVAL);
    const char *listed[] = {"max.connections.per.ip=0",
                            "max.connections.per.ip.overrides=localhost:10"};
    assert_int_equal(kb_config_load(&c, NULL, listed, 2, err, sizeof err, NULL), 0);
    kb_config_deinit(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_long_poll_released_when_client_leaves),
        cmocka_unit_test(test_limits_held_join_released_when_client_leaves),
        cmocka_unit_test(test_limits_max_wait_is_capped),
        cmocka_unit_test(test_limits_connections_per_ip_and_total),
        cmocka_unit_test(test_limits_per_ip_override),
        cmocka_unit_test(test_limits_accept_failure_does_not_stop_the_listener),
        cmocka_unit_test(test_limits_config_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The TCP transport's write_file (broker/net/transport.c) on a real loopback connection:
 * sendfile interrupted by a full socket (EAGAIN mid-piece, short sendfiles), memory writes
 * before and after a file range, the chunked copy used by TLS, and the connection going away
 * mid-range (peer closed, transport closed). Includes the .c to see how the range was sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "broker/net/transport.c"

#define FILE_LEN (3 * 1024 * 1024 + 777)

typedef struct {
    uv_loop_t loop;
    uv_tcp_t server;
    kb_transport_t *t; /* the accepted side */
    int cfd;           /* the client side, non-blocking */
    int file;
    uint8_t *expect;
    size_t expect_len;
    uint8_t *got;
    size_t got_len;
    size_t read_per_tick; /* how fast the client drains */
    bool client_closes_after; /* close the client once this much arrived */
    size_t close_at;
    int status[4];
    int ncb;
    bool closed;
    int order; /* close cb must come after every write cb */
    int cb_order[4], close_order;
    uv_timer_t reader;
} fx_t;

static fx_t fx;

static void on_conn(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(kb_transport_tcp_factory.accept(NULL, &fx.loop, server, &fx.t), 0);
    int small = 4096; /* a tiny send buffer: sendfile fills it and gets EAGAIN */
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&((tcp_t *)fx.t)->tcp, &fd);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
}

static void reader_tick(uv_timer_t *tm)
{
    (void)tm;
    if (fx.cfd < 0) return;
    size_t room = FILE_LEN + 65536 - fx.got_len;
    size_t want = fx.read_per_tick < room ? fx.read_per_tick : room;
    ssize_t n = want ? read(fx.cfd, fx.got + fx.got_len, want) : 0;
    if (n > 0) fx.got_len += (size_t)n;
    if (fx.client_closes_after && fx.got_len >= fx.close_at) {
        struct linger lg = {1, 0}; /* RST: the server's next send fails at once */
        setsockopt(fx.cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fx.cfd);
        fx.cfd = -1;
    }
}

static void setup_fx(size_t read_per_tick)
{
    memset(&fx, 0, sizeof fx);
    fx.cfd = -1;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    assert_int_equal(uv_tcp_init(&fx.loop, &fx.server), 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&fx.server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx.server, 4, on_conn), 0);
    int len = sizeof a;
    uv_tcp_getsockname(&fx.server, (struct sockaddr *)&a, &len);
    fx.cfd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fx.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(connect(fx.cfd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(fx.cfd, F_SETFL, O_NONBLOCK);
    while (!fx.t)
        uv_run(&fx.loop, UV_RUN_ONCE);
    /* The file: a recognisable pattern, read from an offset. */
    char path[] = "/tmp/depot-tr-XXXXXX";
    fx.file = mkstemp(path);
    unlink(path);
    uint8_t *buf = malloc(FILE_LEN + 1000);
    for (size_t i = 0; i < FILE_LEN + 1000; i++)
        buf[i] = (uint8_t)(i * 7 + i / 251);
    assert_int_equal(write(fx.file, buf, FILE_LEN + 1000), FILE_LEN + 1000);
    fx.expect = malloc(FILE_LEN + 65536);
    memcpy(fx.expect, "HEAD", 4);
    memcpy(fx.expect + 4, buf + 1000, FILE_LEN);
    memcpy(fx.expect + 4 + FILE_LEN, "TAIL", 4);
    fx.expect_len = FILE_LEN + 8;
    free(buf);
    fx.got = malloc(FILE_LEN + 65536);
    fx.read_per_tick = read_per_tick;
    uv_timer_init(&fx.loop, &fx.reader);
    uv_timer_start(&fx.reader, reader_tick, 1, 1);
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_t_closed(kb_transport_t *t)
{
    fx.closed = true;
    fx.close_order = ++fx.order;
    t->ops->free(t);
}

static void teardown_fx(void)
{
    if (!fx.closed) fx.t->ops->close(fx.t, on_t_closed);
    uv_close((uv_handle_t *)&fx.server, on_handle_closed);
    uv_close((uv_handle_t *)&fx.reader, on_handle_closed);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    if (fx.cfd >= 0) close(fx.cfd);
    close(fx.file);
    free(fx.expect);
    free(fx.got);
}

static kb_twrite_t w[3];
static uv_buf_t head, tail;

static void on_written(kb_twrite_t *tw, int status)
{
    int i = (int)(tw - w);
    fx.status[i] = status;
    fx.cb_order[i] = ++fx.order;
    fx.ncb++;
    if (i == 1 && status == 0) /* the range is out: the next write may go */
        assert_int_equal(fx.t->ops->write(fx.t, &w[2], &tail, 1, on_written), 0);
}

static void run_until(bool (*done)(void), int max_ms)
{
    for (int i = 0; i < max_ms && !done(); i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
}

static bool all_read(void)
{
    return fx.got_len >= fx.expect_len && fx.ncb == 3;
}

static void send_head_file(bool copy)
{
    head = uv_buf_init("HEAD", 4);
    tail = uv_buf_init("TAIL", 4);
    assert_int_equal(fx.t->ops->write(fx.t, &w[0], &head, 1, on_written), 0);
    int rc = copy ? kb_transport_write_file_copy(fx.t, &w[1], fx.file, 1000, FILE_LEN, on_written)
                  : fx.t->ops->write_file(fx.t, &w[1], fx.file, 1000, FILE_LEN, on_written);
    assert_int_equal(rc, 0);
    assert_int_equal(fx.ncb, 0); /* never called back inside write/write_file */
    /* Nothing else may be written while the range is in flight. */
    kb_twrite_t extra;
    uv_buf_t x = uv_buf_init("X", 1);
    if (!copy)
        assert_int_equal(fx.t->ops->write(fx.t, &extra, &x, 1, on_written), UV_EBUSY);
}

/* A slow reader: sendfile hits EAGAIN many times mid-range; every byte arrives in order. */
static void test_write_file_slow_reader(void **state)
{
    (void)state;
    setup_fx(64 * 1024);
    send_head_file(false);
    assert_true(((tcp_t *)fx.t)->fop != NULL);
    assert_true(fx.t->ops->write_queue_size(fx.t) > 0); /* the range counts as queued */
    run_until(all_read, 200000);
    assert_int_equal(fx.ncb, 3);
    assert_int_equal(fx.status[0], 0);
    assert_int_equal(fx.status[1], 0);
    assert_int_equal(fx.status[2], 0);
    assert_true(fx.cb_order[0] < fx.cb_order[1] && fx.cb_order[1] < fx.cb_order[2]);
    assert_int_equal(fx.got_len, fx.expect_len);
    assert_memory_equal(fx.got, fx.expect, fx.expect_len);
    assert_null(((tcp_t *)fx.t)->fbuf); /* the probe buffer is given back */
    assert_true(((tcp_t *)fx.t)->fprobes > 3); /* the socket filled up mid-range */
    teardown_fx();
}

/* The same bytes through the bounded chunked copy TLS uses. */
static void test_write_file_copy_fallback(void **state)
{
    (void)state;
    setup_fx(128 * 1024);
    send_head_file(true);
    run_until(all_read, 200000);
    assert_int_equal(fx.ncb, 3);
    assert_int_equal(fx.status[1], 0);
    assert_int_equal(fx.got_len, fx.expect_len);
    assert_memory_equal(fx.got, fx.expect, fx.expect_len);
    teardown_fx();
}

static bool range_done(void)
{
    return fx.ncb >= 2;
}

/* The peer resets the connection mid-range: the op fails (cb < 0), nothing hangs. */
static void test_write_file_peer_gone(void **state)
{
    (void)state;
    setup_fx(16 * 1024);
    fx.client_closes_after = true;
    fx.close_at = 200 * 1024;
    send_head_file(false);
    run_until(range_done, 200000);
    assert_int_equal(fx.ncb, 2);
    assert_true(fx.status[1] < 0);
    assert_true(fx.got_len < fx.expect_len);
    teardown_fx();
}

static bool some_read(void)
{
    return fx.got_len > 100 * 1024;
}

/* The connection closes mid-range: cancelled (UV_ECANCELED) before the close callback. */
static void test_write_file_closed_mid_range(void **state)
{
    (void)state;
    setup_fx(8 * 1024);
    send_head_file(false);
    run_until(some_read, 200000);
    assert_true(fx.ncb <= 1);
    fx.t->ops->close(fx.t, on_t_closed);
    assert_int_equal(fx.t->ops->write_file(fx.t, &w[2], fx.file, 0, 10, on_written),
                     UV_EBUSY); /* still the one range */
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 1000 && !fx.closed; i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_true(fx.closed);
    assert_int_equal(fx.status[1], UV_ECANCELED);
    assert_true(fx.cb_order[1] < fx.close_order);
    teardown_fx();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_file_slow_reader),
        cmocka_unit_test(test_write_file_copy_fallback),
        cmocka_unit_test(test_write_file_peer_gone),
        cmocka_unit_test(test_write_file_closed_mid_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

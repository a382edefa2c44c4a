/*
 * The server core over a real loopback socket: in-order responses behind pending requests,
 * acks=0 style no-response requests, a handler error closing only its connection, a client
 * vanishing while its request is pending, and a graceful stop that drains.
 *
 * The Metadata handler is replaced by a scripted one (this binary defines kb_handle_metadata;
 * libkb's h_metadata.o is then never pulled from the archive). Request body: int32 action,
 * int32 delay_ms. Actions: 0 answer now, 1 answer after delay, 2 no response, 3 malformed
 * (close), 4 no response after delay. The answer body is the correlation id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/kp_codec.h"

enum { A_NOW = 0, A_LATER = 1, A_NONE = 2, A_FAIL = 3, A_NONE_LATER = 4, A_FILE = 5 };

/* A_FILE answers: corr, then a bytes field whose 4 bytes (corr again, big-endian) are sent from
 * this file (entry i at offset 4 * i) through the connection's scatter list (kb_req_add_file). */
static int piece_file = -1;

typedef struct {
    uv_timer_t timer;
    kb_req_t *req;
    bool no_response;
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    later_t *l = t->data;
    kb_req_t *req = l->req;
    if (l->no_response) {
        kb_req_complete_no_response(req);
    } else {
        kp_put_i32(&req->resp, req->hdr.correlation_id);
        kb_req_complete(req);
    }
    uv_close((uv_handle_t *)t, later_closed);
}

int kb_handle_metadata(kb_req_t *req)
{
    int32_t action = kp_read_i32(&req->body);
    int32_t delay = kp_read_i32(&req->body);
    if (req->body.err) return K_ERR_MALFORMED;
    switch (action) {
    case A_NOW:
        kp_put_i32(&req->resp, req->hdr.correlation_id);
        return KB_DONE;
    case A_NONE:
        return KB_NO_RESPONSE;
    case A_FILE: {
        kp_put_i32(&req->resp, req->hdr.correlation_id);
        if (!kb_req_zero_copy(req)) return K_ERR_INVAL;
        int rc = kb_req_add_file(req, dup(piece_file), 4 * (int64_t)req->hdr.correlation_id, 4);
        if (rc < 0) return rc;
        kp_put_bytes_field(&req->resp, (kp_bytes_t){KP_HOLE, 4}, false, false);
        return KB_DONE;
    }
    case A_LATER:
    case A_NONE_LATER: {
        later_t *l = calloc(1, sizeof *l);
        l->req = req;
        l->no_response = action == A_NONE_LATER;
        uv_timer_init(kb_broker_loop(req->broker), &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, later_fire, (uint64_t)delay, 0);
        return KB_PENDING;
    }
    default:
        return K_ERR_MALFORMED;
    }
}

/* ------------------------------------------------------------------------------------------ */

static char tmpdir[64];
static kb_config_t cfg;
static uv_loop_t loop;
static kb_broker_t *broker;
static uv_async_t stop_async;
static pthread_t thread;
static int port;

static void on_stop(uv_async_t *a)
{
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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kbsrvXXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char dirs[128];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", tmpdir);
    const char *sets[] = {"listeners=PLAINTEXT://127.0.0.1:0", dirs};
    char err[256];
    if (kb_config_load(&cfg, NULL, sets, 2, err, sizeof err, NULL) < 0) return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/pieces", tmpdir);
    piece_file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int32_t i = 0; i < 1000; i++) {
        uint8_t be[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        if (write(piece_file, be, 4) != 4) return -1;
    }
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_stop);
    if (kb_broker_new(&cfg, &loop, &broker) < 0 || kb_broker_start(broker) < 0) return -1;
    port = kb_broker_port(broker);
    return pthread_create(&thread, NULL, run_loop, NULL);
}

static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Appends one Metadata v0 request with the scripted body. */
static void add_req(kp_buf_t *b, int32_t corr, int32_t action, int32_t delay)
{
    size_t at = kp_put_i32(b, 0);
    kp_req_header_t h = {KP_API_METADATA, 0, corr, kp_str("test")};
    kp_req_header_encode(b, &h);
    kp_put_i32(b, action);
    kp_put_i32(b, delay);
    kp_buf_patch_i32(b, at, (int32_t)(b->len - at - 4));
}

/* The same with pad bytes after the scripted body (the handler does not read them): a frame
 * big enough to be read in place (conn.c's direct reads). */
static void add_req_padded(kp_buf_t *b, int32_t corr, int32_t action, size_t pad)
{
    size_t at = kp_put_i32(b, 0);
    kp_req_header_t h = {KP_API_METADATA, 0, corr, kp_str("test")};
    kp_req_header_encode(b, &h);
    kp_put_i32(b, action);
    kp_put_i32(b, 0);
    for (size_t i = 0; i < pad; i++)
        kp_put_i8(b, (int8_t)(corr + i));
    kp_buf_patch_i32(b, at, (int32_t)(b->len - at - 4));
}

static void send_all(int fd, kp_buf_t *b)
{
    assert_int_equal(send(fd, b->data, b->len, 0), (ssize_t)b->len);
    kp_buf_reset(b);
}

static bool read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads one response; returns its correlation id after checking the body echoes it, or -1
 * at end of stream. */
static int32_t read_resp(int fd)
{
    uint8_t buf[12];
    if (!read_n(fd, buf, 4)) return -1;
    kp_reader_t r;
    kp_reader_init(&r, buf, 4);
    assert_int_equal(kp_read_i32(&r), 8);
    assert_true(read_n(fd, buf + 4, 8));
    kp_reader_init(&r, buf + 4, 8);
    int32_t corr = kp_read_i32(&r);
    assert_int_equal(kp_read_i32(&r), corr);
    return corr;
}

/* An A_FILE answer: size 16, header corr, corr, bytes length 4, corr (from the file). */
static int32_t read_resp_file(int fd)
{
    uint8_t buf[20];
    if (!read_n(fd, buf, 20)) return -1;
    kp_reader_t r;
    kp_reader_init(&r, buf, 20);
    assert_int_equal(kp_read_i32(&r), 16);
    int32_t corr = kp_read_i32(&r);
    assert_int_equal(kp_read_i32(&r), corr);
    assert_int_equal(kp_read_i32(&r), 4);
    assert_int_equal(kp_read_i32(&r), corr);
    return corr;
}

/* Answers with file pieces, pipelined among memory-only ones, leave whole and in order. */
static void test_server_file_pieces_in_order(void **state)
{
    (void)state;
    int fd = client();
    kp_buf_t b;
    kp_buf_init(&b);
    for (int32_t i = 0; i < 300; i++)
        add_req(&b, i, i % 3 == 1 ? A_FILE : (i % 7 == 0 ? A_LATER : A_NOW), 5);
    send_all(fd, &b);
    for (int32_t i = 0; i < 300; i++)
        assert_int_equal(i % 3 == 1 ? read_resp_file(fd) : read_resp(fd), i);
    kp_buf_deinit(&b);
    close(fd);
}

/* Large frames (read in place, the next one's start read short) mixed with runs of small
 * ones, in one burst and then dribbled in pieces that split frames anywhere: every frame is
 * answered, in order. */
static void test_server_big_and_small_frames_mixed(void **state)
{
    (void)state;
    int fd = client();
    kp_buf_t b;
    kp_buf_init(&b);
    static const size_t pads[] = {300000, 0, 0, 200000, 0, 70000, 1000000, 17000, 0, 5, 300000};
    const int n = (int)(sizeof pads / sizeof pads[0]);
    for (int i = 0; i < n; i++)
        add_req_padded(&b, i, A_NOW, pads[i]);
    send_all(fd, &b);
    for (int i = 0; i < n; i++)
        assert_int_equal(read_resp(fd), i);
    for (int i = 0; i < n; i++)
        add_req_padded(&b, 100 + i, i % 4 == 3 ? A_LATER : A_NOW, pads[n - 1 - i]);
    const size_t cuts[] = {3, 1021, 1024, 4096, 65536, 70001};
    size_t at = 0;
    for (int k = 0; at < b.len; k++) {
        size_t len = cuts[k % 6];
        if (len > b.len - at) len = b.len - at;
        assert_int_equal(send(fd, b.data + at, len, 0), (ssize_t)len);
        at += len;
        if (k % 5 == 0) usleep(2000); /* let the server read what has come so far */
    }
    kp_buf_reset(&b);
    for (int i = 0; i < n; i++)
        assert_int_equal(read_resp(fd), 100 + i);
    kp_buf_deinit(&b);
    close(fd);
}

/* The client leaves with answers (file pieces among them) unread: nothing leaks or hangs,
 * and the server keeps serving (ASan checks the descriptors' and requests' release). */
static void test_server_client_gone_mid_response(void **state)
{
    (void)state;
    int fd = client();
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    kp_buf_t b;
    kp_buf_init(&b);
    for (int32_t i = 0; i < 900; i++)
        add_req(&b, i, i % 2 ? A_FILE : A_NOW, 0);
    send_all(fd, &b);
    usleep(50 * 1000);
    close(fd);
    usleep(50 * 1000);
    fd = client();
    add_req(&b, 7, A_FILE, 0);
    send_all(fd, &b);
    assert_int_equal(read_resp_file(fd), 7);
    kp_buf_deinit(&b);
    close(fd);
}

static void test_server_responses_in_request_order(void **state)
{
    (void)state;
    int fd = client();
    kp_buf_t b;
    kp_buf_init(&b);
    add_req(&b, 1, A_NOW, 0);
    add_req(&b, 2, A_LATER, 150);
    add_req(&b, 3, A_NOW, 0);
    add_req(&b, 4, A_LATER, 10); /* completes before 2: still answered after it */
    add_req(&b, 5, A_NONE, 0);
    add_req(&b, 6, A_NONE_LATER, 20);
    add_req(&b, 7, A_NOW, 0);
    send_all(fd, &b);
    int32_t want[] = {1, 2, 3, 4, 7};
    for (int i = 0; i < 5; i++)
        assert_int_equal(read_resp(fd), want[i]);
    /* The connection still works afterwards. */
    add_req(&b, 8, A_NOW, 0);
    send_all(fd, &b);
    assert_int_equal(read_resp(fd), 8);
    kp_buf_deinit(&b);
    close(fd);
}

static void test_server_handler_error_closes_only_that_connection(void **state)
{
    (void)state;
    int bad = client(), good = client();
    kp_buf_t b;
    kp_buf_init(&b);
    add_req(&b, 1, A_NOW, 0);
    add_req(&b, 2, A_FAIL, 0);
    add_req(&b, 3, A_NOW, 0);
    send_all(bad, &b);
    assert_int_equal(read_resp(bad), 1);
    assert_int_equal(read_resp(bad), -1); /* closed, request 3 never answered */
    add_req(&b, 9, A_NOW, 0);
    send_all(good, &b);
    assert_int_equal(read_resp(good), 9);
    kp_buf_deinit(&b);
    close(bad);
    close(good);
}

static void test_server_client_gone_while_pending(void **state)
{
    (void)state;
    int fd = client();
    kp_buf_t b;
    kp_buf_init(&b);
    add_req(&b, 1, A_LATER, 100);
    add_req(&b, 2, A_NOW, 0);
    send_all(fd, &b);
    close(fd); /* the pending request completes into a closed connection */
    usleep(200 * 1000);
    fd = client();
    add_req(&b, 3, A_NOW, 0);
    send_all(fd, &b);
    assert_int_equal(read_resp(fd), 3);
    kp_buf_deinit(&b);
    close(fd);
}

static void test_server_bad_frame_closes(void **state)
{
    (void)state;
    int fd = client();
    uint8_t junk[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}; /* 2 GiB frame */
    assert_int_equal(send(fd, junk, sizeof junk, 0), 8);
    assert_int_equal(read_resp(fd), -1);
    close(fd);
}

static void test_server_stop_drains_pending(void **state)
{
    (void)state;
    int fd = client();
    kp_buf_t b;
    kp_buf_init(&b);
    add_req(&b, 1, A_LATER, 300);
    send_all(fd, &b);
    usleep(50 * 1000);
    uv_async_send(&stop_async);
    assert_int_equal(read_resp(fd), 1); /* answered before the connection closed */
    assert_int_equal(read_resp(fd), -1);
    kp_buf_deinit(&b);
    close(fd);
    pthread_join(thread, NULL); /* the loop ends on its own */
    thread = pthread_self();
}

static int teardown_joined(void **state)
{
    (void)state;
    if (!pthread_equal(thread, pthread_self())) {
        uv_async_send(&stop_async);
        pthread_join(thread, NULL);
    }
    kb_broker_free(broker);
    uv_loop_close(&loop);
    kb_config_deinit(&cfg);
    close(piece_file);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_responses_in_request_order),
        cmocka_unit_test(test_server_handler_error_closes_only_that_connection),
        cmocka_unit_test(test_server_file_pieces_in_order),
        cmocka_unit_test(test_server_big_and_small_frames_mixed),
        cmocka_unit_test(test_server_client_gone_mid_response),
        cmocka_unit_test(test_server_client_gone_while_pending),
        cmocka_unit_test(test_server_bad_frame_closes),
        cmocka_unit_test(test_server_stop_drains_pending),
    };
    return cmocka_run_group_tests(tests, setup, teardown_joined);
}

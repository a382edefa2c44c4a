/*
 * A real broker on a loop thread of its own, for the unit tests that talk to it through
 * loopback sockets (the server core, the threaded admin paths, clock steps, limits).
 * Header-only, like h_test_util.h, so that each test binary stays one .c file.
 *
 * tb_open loads the config and starts the broker without running its loop, so a test may
 * still create topics or handles on it from the main thread; tb_run then hands the loop (and
 * with it the store) to the loop thread. From there on the main thread only uses sockets.
 */
#ifndef BROKER_THREAD_H
#define BROKER_THREAD_H

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/kp_codec.h"
#include "protocol/kp_header.h"

#define TB_MAX_SETS 16

typedef struct {
    char dir[64]; /* the log dir (mkdtemp), removed by tb_close */
    kb_config_t cfg;
    uv_loop_t loop;
    kb_broker_t *broker;
    uv_async_t stop_async;
    pthread_t thread;
    bool running;
    int port;
    void (*before_stop)(void); /* on the loop, first: close the test's own handles */
} tb_t;

static void tb_on_stop(uv_async_t *a)
{
    tb_t *b = a->data;
    if (b->before_stop) b->before_stop();
    kb_broker_stop(b->broker);
    uv_close((uv_handle_t *)a, NULL);
}

static void *tb_loop_main(void *arg)
{
    tb_t *b = arg;
    uv_run(&b->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* A broker listening on an ephemeral loopback port with its log dir in /tmp/<prefix>XXXXXX,
 * plus the test's own `key=value` settings. */
static inline int tb_open(tb_t *b, const char *prefix, const char *const *extra, int n_extra)
{
    memset(b, 0, sizeof *b);
    if (n_extra < 0 || n_extra > TB_MAX_SETS - 2) return -1;
    kb_log_set_level(KB_LOG_ERROR);
    snprintf(b->dir, sizeof b->dir, "/tmp/%.40sXXXXXX", prefix);
    if (!mkdtemp(b->dir)) return -1;
    char dirs[128];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", b->dir);
    const char *sets[TB_MAX_SETS] = {"listeners=PLAINTEXT://127.0.0.1:0", dirs};
    for (int i = 0; i < n_extra; i++) sets[2 + i] = extra[i];
    char err[256];
    if (kb_config_load(&b->cfg, NULL, sets, 2 + n_extra, err, sizeof err, NULL) < 0) {
        fprintf(stderr, "tb_open: %s\n", err);
        return -1;
    }
    uv_loop_init(&b->loop);
    uv_async_init(&b->loop, &b->stop_async, tb_on_stop);
    b->stop_async.data = b;
    if (kb_broker_new(&b->cfg, &b->loop, &b->broker) < 0 || kb_broker_start(b->broker) < 0)
        return -1;
    b->port = kb_broker_port(b->broker);
    return 0;
}

static inline int tb_run(tb_t *b)
{
    if (pthread_create(&b->thread, NULL, tb_loop_main, b) != 0) return -1;
    b->running = true;
    return 0;
}

static int tb_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Stops the broker gracefully on its loop, joins the thread and removes the log dir. */
static inline void tb_close(tb_t *b)
{
    if (b->running) {
        uv_async_send(&b->stop_async);
        pthread_join(b->thread, NULL);
        b->running = false;
    }
    kb_broker_free(b->broker);
    uv_loop_close(&b->loop);
    kb_config_deinit(&b->cfg);
    nftw(b->dir, tb_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A blocking client socket to the broker; recv times out after timeout_s (-1 on error). */
static inline int tb_connect(const tb_t *b, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)b->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads exactly n bytes; false on EOF, error or the receive timeout. */
static inline bool tb_read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue; /* a debugger stopping another thread */
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

typedef int (*tb_enc_fn)(kp_buf_t *, int16_t, const void *);

/* Frames one request (header v1 with client id "test", body written by enc) and sends it. */
static inline int tb_send_req(int fd, int16_t key, int16_t version, int32_t corr, tb_enc_fn enc,
                              const void *msg)
{
    kp_buf_t b;
    kp_buf_init(&b);
    size_t at = kp_put_i32(&b, 0);
    kp_req_header_t h = {key, version, corr, kp_str("test")};
    kp_req_header_encode(&b, &h);
    int rc = enc(&b, version, msg);
    kp_buf_patch_i32(&b, at, (int32_t)(b.len - at - 4));
    if (rc == 0 && send(fd, b.data, b.len, 0) != (ssize_t)b.len) rc = -1;
    kp_buf_deinit(&b);
    return rc;
}

/* Reads one response frame into a heap buffer (the caller frees it) and leaves r at the body.
 * NULL at the end of the stream or on the receive timeout; NULL with errno EPROTO when the
 * frame is malformed or is not the answer to corr. */
static inline uint8_t *tb_recv_resp(int fd, int16_t key, int16_t version, int32_t corr,
                                    kp_reader_t *r)
{
    uint8_t hdr[4];
    if (!tb_read_n(fd, hdr, 4)) {
        errno = 0;
        return NULL;
    }
    kp_reader_t hr;
    kp_reader_init(&hr, hdr, 4);
    int32_t n = kp_read_i32(&hr);
    if (n <= 0 || n >= (64 << 20)) {
        errno = EPROTO;
        return NULL;
    }
    uint8_t *buf = malloc((size_t)n);
    if (!buf || !tb_read_n(fd, buf, (size_t)n)) {
        free(buf);
        errno = EPROTO; /* a frame cut short */
        return NULL;
    }
    kp_reader_init(r, buf, (size_t)n);
    int32_t got;
    if (kp_resp_header_decode(r, key, version, &got) != 0 || got != corr) {
        free(buf);
        errno = EPROTO;
        return NULL;
    }
    return buf;
}

#endif

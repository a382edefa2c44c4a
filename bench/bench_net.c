#include "bench/bench_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "protocol/gen/kp_api_versions.h"
#include "protocol/kp_header.h"

int bench_conn_open(bench_conn_t *c, const char *hostport)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    char host[256];
    int port;
    if (bench_split_hostport(hostport, host, sizeof host, &port) < 0) {
        fprintf(stderr, "bench: bad address %s\n", hostport);
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &a.sin_addr) != 1) {
        fprintf(stderr, "bench: need an IPv4 address, got %s\n", host);
        return -1;
    }
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "bench: connect %s: %s\n", hostport, strerror(errno));
        bench_conn_close(c);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    for (size_t i = 0; i < sizeof c->max_ver / sizeof c->max_ver[0]; i++)
        c->max_ver[i] = -1;
    return 0;
}

void bench_conn_close(bench_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    c->fd = -1;
    c->rbuf = NULL;
    c->rcap = c->rstart = c->rend = 0;
}

static void wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    (void)poll(&p, 1, 1000);
}

int bench_conn_send_all(bench_conn_t *c, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                wait_fd(c->fd, POLLOUT);
                continue;
            }
            fprintf(stderr, "bench: send: %s\n", strerror(errno));
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Makes room for want more bytes after rend, moving unconsumed bytes to the front. */
static int make_room(bench_conn_t *c, size_t want)
{
    if (c->rstart > 0 && c->rstart == c->rend)
        c->rstart = c->rend = 0;
    if (c->rcap - c->rend >= want)
        return 0;
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
        if (c->rcap - c->rend >= want)
            return 0;
    }
    size_t cap = c->rcap ? c->rcap : 65536;
    while (cap - c->rend < want)
        cap *= 2;
    uint8_t *nb = realloc(c->rbuf, cap);
    if (!nb)
        return -1;
    c->rbuf = nb;
    c->rcap = cap;
    return 0;
}

/* A complete frame at rstart? Returns its body length via *need (total incl. prefix). */
static int have_frame(const bench_conn_t *c, size_t *need)
{
    size_t avail = c->rend - c->rstart;
    if (avail < 4) {
        *need = 4;
        return 0;
    }
    const uint8_t *p = c->rbuf + c->rstart;
    uint32_t size = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    *need = 4 + (size_t)size;
    return avail >= *need;
}

/* One read of whatever is there (up to the rest of the current frame, at least 64 KiB). */
static int read_some(bench_conn_t *c, size_t need)
{
    size_t have = c->rend - c->rstart;
    size_t want = need > have ? need - have : 0;
    if (want < 65536)
        want = 65536;
    if (make_room(c, want) < 0)
        return -1;
    ssize_t r = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
    if (r > 0) {
        c->rend += (size_t)r;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    fprintf(stderr, "bench: recv: %s\n", r == 0 ? "connection closed by broker" : strerror(errno));
    return -1;
}

static void take_frame(bench_conn_t *c, size_t need, const uint8_t **frame, size_t *len)
{
    *frame = c->rbuf + c->rstart + 4;
    *len = need - 4;
    c->rstart += need;
}

int bench_conn_try_frame(bench_conn_t *c, const uint8_t **frame, size_t *len)
{
    size_t need;
    while (!have_frame(c, &need)) {
        int r = read_some(c, need);
        if (r <= 0)
            return r;
    }
    take_frame(c, need, frame, len);
    return 1;
}

int bench_conn_recv_frame(bench_conn_t *c, const uint8_t **frame, size_t *len)
{
    size_t need;
    while (!have_frame(c, &need)) {
        int r = read_some(c, need);
        if (r < 0)
            return -1;
        if (r == 0)
            wait_fd(c->fd, POLLIN);
    }
    take_frame(c, need, frame, len);
    return 0;
}

void bench_frame_begin(kp_buf_t *b, int16_t key, int16_t ver, int32_t corr)
{
    kp_put_i32(b, 0);
    kp_req_header_t h = {key, ver, corr, kp_str("depot-bench-lean")};
    kp_req_header_encode(b, &h);
}

void bench_frame_end(kp_buf_t *b)
{
    kp_buf_patch_i32(b, 0, (int32_t)(b->len - 4));
}

int bench_conn_handshake(bench_conn_t *c)
{
    kp_buf_t b;
    kp_buf_init(&b);
    bench_frame_begin(&b, KP_API_API_VERSIONS, 0, 1);
    kp_api_versions_req_t req;
    kp_api_versions_req_init(&req);
    kp_api_versions_req_encode(&b, 0, &req);
    bench_frame_end(&b);
    int rc = b.err ? -1 : bench_conn_send_all(c, b.data, b.len);
    kp_buf_deinit(&b);
    const uint8_t *f;
    size_t n;
    if (rc < 0 || bench_conn_recv_frame(c, &f, &n) < 0)
        return -1;
    kp_reader_t r;
    kp_reader_init(&r, f, n);
    int32_t corr;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_api_versions_resp_t resp;
    rc = -1;
    if (kp_resp_header_decode(&r, KP_API_API_VERSIONS, 0, &corr) == 0 &&
        kp_api_versions_resp_decode(&r, 0, &a, &resp) == 0 && resp.error_code == 0) {
        for (int32_t i = 0; i < resp.api_keys_count; i++) {
            int16_t k = resp.api_keys[i].api_key;
            if (k >= 0 && k < 64)
                c->max_ver[k] = resp.api_keys[i].max_version;
        }
        rc = 0;
    } else {
        fprintf(stderr, "bench: ApiVersions failed\n");
    }
    kp_arena_deinit(&a);
    return rc;
}

int16_t bench_conn_pick(const bench_conn_t *c, int16_t key, int16_t floor, int16_t cap)
{
    const kp_api_t *api = kp_api_get(key);
    if (!api || key < 0 || key >= 64 || c->max_ver[key] < 0)
        return -1;
    int16_t v = c->max_ver[key];
    if (v > api->max_version)
        v = api->max_version;
    if (v > cap)
        v = cap;
    return v >= floor && v >= api->min_version ? v : -1;
}

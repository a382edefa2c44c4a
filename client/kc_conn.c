/*
 * One blocking TCP connection to a broker: connect with a timeout, Kafka framing (int32 size
 * prefix), request/response headers, and the ApiVersions negotiation.
 */
#include "client/kc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/gen/kp_api_versions.h"
#include "protocol/kp_errors.h"

/* The versions this client's code handles per API (the codec may serve more). */
static const struct {
    int16_t key, min, max;
} client_range[] = {
    {KP_API_PRODUCE, 3, 11},      /* 3+: RecordBatch v2 */
    {KP_API_FETCH, 4, 12},        /* 13+ names topics by id */
    {KP_API_LIST_OFFSETS, 1, 10}, /* 1+: one offset per partition */
    {KP_API_METADATA, 1, 12},     /* 1+: null topics = all */
    {KP_API_API_VERSIONS, 0, 3},  {KP_API_CREATE_TOPICS, 2, 7},
    {KP_API_DELETE_TOPICS, 1, 6}, {KP_API_DESCRIBE_CONFIGS, 1, 4},
    /* groups (kc_group*.c) */
    {KP_API_FIND_COORDINATOR, 0, 6}, /* 4+: batched keys */
    {KP_API_JOIN_GROUP, 0, 9},       /* 4+: MEMBER_ID_REQUIRED round trip */
    {KP_API_SYNC_GROUP, 0, 5},       {KP_API_HEARTBEAT, 0, 4},
    {KP_API_LEAVE_GROUP, 0, 5},      /* 3+: members by identity */
    {KP_API_OFFSET_COMMIT, 2, 9},    {KP_API_OFFSET_FETCH, 1, 7}, /* 8+: several groups */
    {KP_API_LIST_GROUPS, 0, 5},      {KP_API_DESCRIBE_GROUPS, 0, 5},
    /* security (kc_sasl.c, kc_security.c) */
    {KP_API_SASL_HANDSHAKE, 1, 1},   {KP_API_SASL_AUTHENTICATE, 0, 2},
    {KP_API_DESCRIBE_ACLS, 1, 3},    {KP_API_CREATE_ACLS, 1, 3},
    {KP_API_DELETE_ACLS, 1, 3},      {KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0},
    {KP_API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0},
};

int16_t kc_pick_version(int16_t api_key, int16_t broker_min, int16_t broker_max)
{
    const kp_api_t *api = kp_api_get(api_key);
    if (!api) return -1;
    for (size_t i = 0; i < sizeof client_range / sizeof client_range[0]; i++) {
        if (client_range[i].key != api_key) continue;
        int16_t lo = client_range[i].min, hi = client_range[i].max;
        if (api->min_version > lo) lo = api->min_version;
        if (api->max_version < hi) hi = api->max_version;
        if (broker_min > lo) lo = broker_min;
        if (broker_max < hi) hi = broker_max;
        return lo <= hi ? hi : -1;
    }
    return -1;
}

void kc_rx_init(kc_rx_t *rx)
{
    kp_buf_init(&rx->frame);
    kp_arena_init(&rx->arena, NULL, 0, 0);
}

void kc_rx_reset(kc_rx_t *rx)
{
    kp_buf_reset(&rx->frame);
    kp_arena_reset(&rx->arena);
}

void kc_rx_deinit(kc_rx_t *rx)
{
    kp_buf_deinit(&rx->frame);
    kp_arena_deinit(&rx->arena);
}

void kc_conn_close(kc_conn_t *conn)
{
    kc_tls_close(conn);
    if (conn->fd >= 0) close(conn->fd);
    conn->fd = -1;
}

static void set_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int ms)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, sa, len);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        rc = poll(&pfd, 1, ms);
        if (rc == 0) {
            errno = ETIMEDOUT;
            rc = -1;
        } else if (rc > 0) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            errno = err;
            rc = err ? -1 : 0;
        }
    }
    fcntl(fd, F_SETFL, fl);
    return rc;
}

int kc_conn_open(kc_client_t *c, kc_conn_t *conn, const char *host, int port)
{
    conn->fd = -1;
    snprintf(conn->host, sizeof conn->host, "%s", host);
    conn->port = port;
    for (int i = 0; i < KC_MAX_API_KEY; i++)
        conn->ver[i] = -1;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) return kc_fail(c, K_ERR_IO, 0, "cannot resolve %s: %s", host, gai_strerror(gai));
    int err = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, c->cfg.timeout_ms) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            set_timeout(fd, c->cfg.timeout_ms);
            conn->fd = fd;
            break;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (conn->fd < 0)
        return kc_fail(c, K_ERR_IO, 0, "cannot connect to %s:%d: %s", host, port, strerror(err));
    return c->cfg.ssl_ca_location ? kc_tls_connect(c, conn) : 0;
}

static int write_all(kc_conn_t *conn, const uint8_t *p, size_t n)
{
    if (conn->ssl) return kc_tls_write_all(conn, p, n);
    int fd = conn->fd;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(kc_conn_t *conn, uint8_t *p, size_t n)
{
    if (conn->ssl) return kc_tls_read_all(conn, p, n);
    int fd = conn->fd;
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = ECONNRESET;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int io_fail(kc_client_t *c, kc_conn_t *conn, const char *what)
{
    int e = errno;
    kc_conn_close(conn);
    return kc_fail(c, K_ERR_IO, 0, "%s %s:%d failed: %s", what, conn->host, conn->port,
                   e == EAGAIN ? "timed out" : strerror(e));
}

static int send_request(kc_client_t *c, kc_conn_t *conn, int16_t key, int16_t ver, const void *req,
                        int32_t *corr)
{
    const kp_api_t *api = kp_api_get(key);
    if (conn->fd < 0)
        return kc_fail(c, K_ERR_IO, 0, "not connected to %s:%d", conn->host, conn->port);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_put_i32(&b, 0);
    kp_req_header_t h = {key, ver, conn->next_corr++, kp_str(c->client_id)};
    kp_req_header_encode(&b, &h);
    int rc = api->req_encode(&b, ver, req);
    if (!rc) rc = b.err;
    if (rc) {
        kp_buf_deinit(&b);
        return kc_fail(c, rc, 0, "cannot encode %s v%d request: %s", api->name, ver,
                       k_strerror(rc));
    }
    kp_buf_patch_i32(&b, 0, (int32_t)(b.len - 4));
    rc = write_all(conn, b.data, b.len);
    kp_buf_deinit(&b);
    if (rc) return io_fail(c, conn, "sending to");
    *corr = h.correlation_id;
    return 0;
}

/* Reads one response frame into rx and leaves *body at the message body. */
static int recv_response(kc_client_t *c, kc_conn_t *conn, int16_t key, int16_t ver, int32_t corr,
                         kc_rx_t *rx, kp_reader_t *body)
{
    uint8_t sz[4];
    if (read_all(conn, sz, 4)) return io_fail(c, conn, "reading from");
    uint32_t n = ((uint32_t)sz[0] << 24) | ((uint32_t)sz[1] << 16) | ((uint32_t)sz[2] << 8) | sz[3];
    if (n > KC_MAX_FRAME || n < 4) {
        kc_conn_close(conn);
        return kc_fail(c, K_ERR_MALFORMED, 0, "%s:%d sent a %u-byte frame", conn->host, conn->port,
                       n);
    }
    kp_buf_reset(&rx->frame);
    if (kp_buf_reserve(&rx->frame, n))
        return kc_fail(c, K_ERR_NOMEM, 0, "out of memory for a %u-byte response", n);
    if (read_all(conn, rx->frame.data, n)) return io_fail(c, conn, "reading from");
    rx->frame.len = n;
    kp_reader_init(body, rx->frame.data, n);
    int32_t got;
    if (kp_resp_header_decode(body, key, ver, &got) || got != corr) {
        kc_conn_close(conn); /* the stream is out of step: nothing after this can be trusted */
        return kc_fail(c, K_ERR_MALFORMED, 0, "%s:%d answered correlation id %d, expected %d",
                       conn->host, conn->port, got, corr);
    }
    return 0;
}

int kc_conn_call(kc_client_t *c, kc_conn_t *conn, int16_t api_key, const void *req, void *resp,
                 kc_rx_t *rx, int extra_wait_ms)
{
    const kp_api_t *api = kp_api_get(api_key);
    int16_t ver = api_key >= 0 && api_key < KC_MAX_API_KEY ? conn->ver[api_key] : -1;
    if (!api || ver < 0)
        return kc_fail(c, K_ERR_UNSUPPORTED, 0,
                       "the broker at %s:%d supports no version of %s this client speaks",
                       conn->host, conn->port, api ? api->name : "that API");
    if (conn->fd >= 0) set_timeout(conn->fd, c->cfg.timeout_ms + extra_wait_ms);
    int32_t corr;
    int rc = send_request(c, conn, api_key, ver, req, &corr);
    if (rc || !resp) return rc;
    kp_reader_t body;
    kc_rx_reset(rx);
    if ((rc = recv_response(c, conn, api_key, ver, corr, rx, &body))) return rc;
    rc = api->resp_decode(&body, ver, &rx->arena, resp);
    if (rc || body.err)
        return kc_fail(c, K_ERR_MALFORMED, 0, "cannot decode the %s v%d response from %s:%d",
                       api->name, ver, conn->host, conn->port);
    return 0;
}

static int versions_exchange(kc_client_t *c, kc_conn_t *conn, int16_t ver, kc_rx_t *rx,
                             kp_api_versions_resp_t *resp)
{
    kp_api_versions_req_t req = {kp_str("depot-kc"), kp_str("0.1")};
    int32_t corr;
    int rc = send_request(c, conn, KP_API_API_VERSIONS, ver, &req, &corr);
    kp_reader_t body;
    if (!rc) rc = recv_response(c, conn, KP_API_API_VERSIONS, ver, corr, rx, &body);
    if (rc) return rc;
    kp_reader_t again = body;
    kp_api_versions_resp_init(resp);
    if (kp_api_versions_resp_decode(&body, ver, &rx->arena, resp) == 0 && !body.err &&
        resp->error_code != KP_ERR_UNSUPPORTED_VERSION)
        return 0;
    /* KIP-511: a broker that does not know our version answers in the v0 layout. */
    kp_api_versions_resp_init(resp);
    if (kp_api_versions_resp_decode(&again, 0, &rx->arena, resp) || again.err)
        return kc_fail(c, K_ERR_MALFORMED, 0, "cannot decode ApiVersions from %s:%d", conn->host,
                       conn->port);
    return 0;
}

int kc_conn_negotiate(kc_client_t *c, kc_conn_t *conn)
{
    kc_rx_t rx;
    kc_rx_init(&rx);
    kp_api_versions_resp_t resp;
    int16_t ver = kc_pick_version(KP_API_API_VERSIONS, 0, INT16_MAX);
    int rc = versions_exchange(c, conn, ver, &rx, &resp);
    if (!rc && resp.error_code == KP_ERR_UNSUPPORTED_VERSION) {
        int16_t bmax = 0;
        for (int32_t i = 0; i < resp.api_keys_count; i++)
            if (resp.api_keys[i].api_key == KP_API_API_VERSIONS)
                bmax = resp.api_keys[i].max_version;
        ver = kc_pick_version(KP_API_API_VERSIONS, 0, bmax < ver ? bmax : (int16_t)(ver - 1));
        if (ver < 0) ver = 0;
        rc = versions_exchange(c, conn, ver, &rx, &resp);
    }
    if (!rc && resp.error_code)
        rc = kc_kafka_fail(c, resp.error_code, "ApiVersions", (kp_str_t){NULL, -1});
    if (!rc) {
        for (int32_t i = 0; i < resp.api_keys_count; i++) {
            const kp_api_versions_resp_api_version_t *av = &resp.api_keys[i];
            if (av->api_key >= 0 && av->api_key < KC_MAX_API_KEY)
                conn->ver[av->api_key] =
                    kc_pick_version(av->api_key, av->min_version, av->max_version);
        }
    }
    kc_rx_deinit(&rx);
    return rc;
}

/*
 * broker/http over real loopback sockets: routing (200/404/405, prefix routes, HEAD), query and
 * header access, bodies (Content-Length and chunked), parse errors (400), limits (431, 413,
 * 408 read deadline, connection cap), keep-alive and HTTP/1.0 close, pipelining answered in
 * order behind an asynchronous handler (also past max_pipeline), 100-continue, Basic auth,
 * handler failures (500) and a client vanishing while its request is pending.
 *
 * The server runs standalone (kb_http_server_new) on a loop in a second thread; the test
 * thread is the client with blocking sockets, so cmocka's asserts stay on the test thread.
 * Everything the handlers touch lives on the loop thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "broker/http/http.h"

static uv_loop_t loop;
static uv_async_t stop_async;
static pthread_t thread;
static kb_http_server_t *srv;
static int port_main, port_auth, port_cap;
static int orphans_freed; /* loop thread only */

/* ------------------------------------------------------------------------------------------ */
/* Handlers                                                                                     */

static int h_echo(kb_http_req_t *req, void *ud)
{
    (void)ud;
    const char *q = kb_http_query(req, "q");
    const char *h = kb_http_header(req, "x-test");
    size_t blen;
    const uint8_t *body = kb_http_body(req, &blen);
    kb_http_printf(req, "m=%s p=%s q=%s h=%s u=%s b=%.*s", kb_http_method(req), kb_http_path(req),
                   q ? q : "(none)", h ? h : "(none)",
                   kb_http_user(req) ? kb_http_user(req) : "(none)", (int)blen, body);
    kb_http_add_header(req, "X-Echo", "1");
    kb_http_send(req, 200, "text/plain");
    return KB_DONE;
}

typedef struct {
    uv_timer_t t;
    kb_http_req_t *req;
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    later_t *l = t->data;
    if (kb_http_closed(l->req)) orphans_freed++;
    kb_http_respond(l->req, 200, NULL, "slow", 4);
    uv_close((uv_handle_t *)t, later_closed);
}

/* Answers after ?ms= milliseconds (default 100). */
static int h_slow(kb_http_req_t *req, void *ud)
{
    (void)ud;
    const char *ms = kb_http_query(req, "ms");
    later_t *l = calloc(1, sizeof *l);
    if (!l) return K_ERR_NOMEM;
    l->req = req;
    uv_timer_init(&loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_fire, ms ? (uint64_t)atoi(ms) : 100, 0);
    return KB_PENDING;
}

static int h_fail(kb_http_req_t *req, void *ud)
{
    (void)req;
    (void)ud;
    return K_ERR_IO;
}

static int h_prefix(kb_http_req_t *req, void *ud)
{
    char seg[64];
    const char *p = strrchr(kb_http_path(req), '/') + 1;
    int n = kb_http_url_decode(p, strlen(p), seg, sizeof seg, false);
    kb_http_printf(req, "%s:%s", (const char *)ud, n < 0 ? "BAD" : seg);
    kb_http_send(req, 200, NULL);
    return KB_DONE;
}

static int h_conns(kb_http_req_t *req, void *ud)
{
    kb_http_stats_t st;
    kb_http_listener_stats(ud, &st);
    kb_http_printf(req, "%d", st.conns);
    kb_http_send(req, 200, NULL);
    return KB_DONE;
}

static int h_orphans(kb_http_req_t *req, void *ud)
{
    (void)ud;
    kb_http_printf(req, "%d", orphans_freed);
    kb_http_send(req, 200, NULL);
    return KB_DONE;
}

static int check_cred(const char *user, const char *password, void *ud)
{
    (void)ud;
    return !strcmp(user, "ops") && !strcmp(password, "s3cret:x") ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Fixture                                                                                      */

static void on_stop(uv_async_t *a)
{
    kb_http_server_close(srv);
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
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_stop);
    srv = kb_http_server_new(&loop);
    kb_http_opts_t o = {.max_header_bytes = 1024,
                        .max_body_bytes = 4096,
                        .read_timeout_ms = 300,
                        .max_pipeline = 2};
    kb_http_listener_t *l, *la, *lc;
    if (kb_http_server_listen(srv, "main", "http://127.0.0.1:0", &o, &l) < 0) return -1;
    kb_http_route(l, NULL, "/echo", h_echo, NULL);
    kb_http_route(l, "GET", "/slow", h_slow, NULL);
    kb_http_route(l, "GET", "/fail", h_fail, NULL);
    kb_http_route(l, "POST", "/only-post", h_echo, NULL);
    kb_http_route(l, "DELETE", "/only-post", h_echo, NULL);
    kb_http_route(l, "GET", "/pre/*", h_prefix, "short");
    kb_http_route(l, "GET", "/pre/long/*", h_prefix, "long");
    kb_http_route(l, "GET", "/conns", h_conns, l);
    kb_http_route(l, "GET", "/orphans", h_orphans, NULL);
    o.max_conns = 1;
    if (kb_http_server_listen(srv, "cap", "http://127.0.0.1:0", &o, &lc) < 0) return -1;
    kb_http_route(lc, "GET", "/conns", h_conns, lc);
    if (kb_http_server_listen(srv, "auth", "http://127.0.0.1:0", NULL, &la) < 0) return -1;
    kb_http_route(la, NULL, "/echo", h_echo, NULL);
    kb_http_set_auth(la, "test", check_cred, NULL);
    port_main = kb_http_listener_port(l, 0);
    port_cap = kb_http_listener_port(lc, 0);
    port_auth = kb_http_listener_port(la, 0);
    /* Same name again: the same listener, no new bind. */
    kb_http_listener_t *again;
    if (kb_http_server_listen(srv, "main", "http://127.0.0.1:1", NULL, &again) < 0 || again != l)
        return -1;
    orphans_freed = 0;
    return pthread_create(&thread, NULL, run_loop, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(thread, NULL);
    int rc = uv_loop_close(&loop); /* UV_EBUSY would mean a handle leaked */
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* A blocking client                                                                            */

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} cli_t;

typedef struct {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} resp_t;

static void cli_open(cli_t *c, int port)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static void cli_send(cli_t *c, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads more into the buffer; false at EOF, error or timeout. */
static bool cli_fill(cli_t *c)
{
    if (c->len == sizeof c->buf) return false;
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (r <= 0) return false;
    c->len += (size_t)r;
    return true;
}

/* Reads one response (Content-Length framed); false if the stream ended first. */
static bool cli_read(cli_t *c, resp_t *r)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (!cli_fill(c)) return false;
    size_t hl = (size_t)(end - c->buf) + 4;
    assert_true(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = 0;
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    size_t cl = 0;
    const char *p = strcasestr(r->head, "\r\nContent-Length: ");
    if (p) cl = (size_t)strtoul(p + 18, NULL, 10);
    while (c->len < hl + cl)
        if (!cli_fill(c)) return false;
    assert_true(cl < sizeof r->body);
    memcpy(r->body, c->buf + hl, cl);
    r->body[cl] = 0;
    r->body_len = cl;
    memmove(c->buf, c->buf + hl + cl, c->len - hl - cl);
    c->len -= hl + cl;
    return true;
}

/* Sends s, reads one answer. */
static void cli_req(cli_t *c, const char *s, resp_t *r)
{
    cli_send(c, s);
    assert_true(cli_read(c, r));
}

/* True if the server closed the connection (EOF) with nothing more to read. */
static bool cli_eof(cli_t *c)
{
    if (c->len) return false;
    char b;
    ssize_t r = recv(c->fd, &b, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void cli_close(cli_t *c)
{
    close(c->fd);
}

/* ------------------------------------------------------------------------------------------ */

static void test_http_routes_query_headers(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_main);
    cli_req(&c, "GET /echo?q=a%20b+c&x=1 HTTP/1.1\r\nHost: x\r\nX-Test: hi\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "m=GET p=/echo q=a b c h=hi u=(none) b=");
    assert_non_null(strstr(r.head, "X-Echo: 1\r\n"));
    assert_non_null(strstr(r.head, "Content-Type: text/plain\r\n"));
    assert_null(strstr(r.head, "Connection: close"));
    /* HEAD: headers with the GET body's length, no body. */
    cli_send(&c, "HEAD /pre/x HTTP/1.1\r\nHost: x\r\n\r\nGET /pre/long/y%2Fz HTTP/1.1\r\n\r\n");
    char *end;
    while (!(end = memmem(c.buf, c.len, "\r\n\r\n", 4)))
        assert_true(cli_fill(&c));
    assert_non_null(strstr(c.buf, "Content-Length: 7\r\n"));
    size_t hl = (size_t)(end - c.buf) + 4;
    memmove(c.buf, c.buf + hl, c.len - hl);
    c.len -= hl;
    assert_true(cli_read(&c, &r)); /* longest prefix wins; the segment decodes */
    assert_string_equal(r.body, "long:y/z");
    cli_req(&c, "GET /nope HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    cli_req(&c, "GET /only-post HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: POST, DELETE\r\n"));
    cli_req(&c, "GET /echoX HTTP/1.1\r\n\r\n", &r); /* exact routes are exact */
    assert_int_equal(r.status, 404);
    cli_req(&c, "GET /fail HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_true(cli_eof(&c));
    cli_close(&c);
}

static void test_http_bodies(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_main);
    cli_req(&c, "POST /only-post HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "m=POST"));
    assert_non_null(strstr(r.body, "b=hello"));
    cli_req(&c,
            "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "b=abcdefg"));
    /* 100-continue: the interim answer comes before we send the body. */
    cli_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    while (!memmem(c.buf, c.len, "\r\n\r\n", 4))
        assert_true(cli_fill(&c));
    assert_memory_equal(c.buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    memmove(c.buf, c.buf + 25, c.len - 25);
    c.len -= 25;
    cli_req(&c, "ok", &r);
    assert_non_null(strstr(r.body, "b=ok"));
    cli_close(&c);
}

static void test_http_parse_errors(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_main);
    cli_req(&c, "GARBAGE\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(cli_eof(&c));
    cli_close(&c);
    /* Conflicting framing (request smuggling shape) is refused by the parser. */
    cli_open(&c, port_main);
    cli_req(&c, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", &r);
    assert_int_equal(r.status, 400);
    cli_close(&c);
    cli_open(&c, port_main);
    cli_req(&c, "GET http://elsewhere/echo HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    cli_close(&c);
    cli_open(&c, port_main);
    cli_req(&c, "GET /echo?q=%zz HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    cli_close(&c);
    cli_open(&c, port_main);
    cli_req(&c, "GET /echo HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    cli_close(&c);
}

static void test_http_limits(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    char big[2048];
    /* Headers over 1 KiB → 431. */
    cli_open(&c, port_main);
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = 0;
    cli_send(&c, "GET /echo HTTP/1.1\r\nX-Big: ");
    cli_send(&c, big);
    cli_req(&c, "\r\n\r\n", &r);
    assert_int_equal(r.status, 431);
    assert_true(cli_eof(&c));
    cli_close(&c);
    /* Declared body over 4 KiB → 413 at once, before the body arrives. */
    cli_open(&c, port_main);
    cli_req(&c, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", &r);
    assert_int_equal(r.status, 413);
    cli_close(&c);
    /* Chunked body growing past the limit → 413. */
    cli_open(&c, port_main);
    cli_send(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        char chunk[2100];
        snprintf(chunk, sizeof chunk, "7d0\r\n%.2000s\r\n", big);
        cli_send(&c, chunk);
    }
    assert_true(cli_read(&c, &r));
    assert_int_equal(r.status, 413);
    cli_close(&c);
    /* A slow client: half a request, then nothing → 408 after the 300 ms deadline. */
    cli_open(&c, port_main);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost:");
    assert_true(cli_read(&c, &r));
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_int_equal(r.status, 408);
    assert_true(ms >= 250 && ms < 3000);
    assert_true(cli_eof(&c));
    cli_close(&c);
}

static void test_http_connection_cap(void **state)
{
    (void)state;
    static cli_t a, b;
    resp_t r;
    cli_open(&a, port_cap);
    cli_req(&a, "GET /conns HTTP/1.1\r\n\r\n", &r);
    assert_string_equal(r.body, "1");
    cli_open(&b, port_cap); /* over the cap of 1: closed at once */
    cli_send(&b, "GET /conns HTTP/1.1\r\n\r\n");
    assert_true(cli_eof(&b));
    cli_close(&b);
    cli_req(&a, "GET /conns HTTP/1.1\r\n\r\n", &r); /* the first one still works */
    assert_string_equal(r.body, "1");
    cli_close(&a);
}

static void test_http_keep_alive(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_main);
    for (int i = 0; i < 5; i++) {
        cli_req(&c, "GET /echo HTTP/1.1\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
    }
    cli_req(&c, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cli_eof(&c));
    cli_close(&c);
    /* HTTP/1.0: closes unless asked to keep alive. */
    cli_open(&c, port_main);
    cli_req(&c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    assert_non_null(strstr(r.head, "Connection: keep-alive\r\n"));
    cli_req(&c, "GET /echo HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(cli_eof(&c));
    cli_close(&c);
}

static void test_http_pipelining_in_order(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_main);
    /* The slow answer is completed last but must still come first; max_pipeline is 2, so
     * reading pauses and resumes while these six drain. */
    cli_send(&c, "GET /slow?ms=150 HTTP/1.1\r\n\r\n"
                 "GET /echo?q=1 HTTP/1.1\r\n\r\n"
                 "GET /slow?ms=10 HTTP/1.1\r\n\r\n"
                 "GET /echo?q=2 HTTP/1.1\r\n\r\n"
                 "GET /nope HTTP/1.1\r\n\r\n"
                 "GET /echo?q=3 HTTP/1.1\r\n\r\n");
    const char *want[] = {"slow", "q=1", "slow", "q=2", "404", "q=3"};
    for (int i = 0; i < 6; i++) {
        assert_true(cli_read(&c, &r));
        assert_non_null(strstr(r.body, want[i]));
    }
    /* After a Connection: close request, what follows is not answered. */
    cli_send(&c,
             "GET /echo?q=4 HTTP/1.1\r\nConnection: close\r\n\r\nGET /echo?q=5 HTTP/1.1\r\n\r\n");
    assert_true(cli_read(&c, &r));
    assert_non_null(strstr(r.body, "q=4"));
    assert_true(cli_eof(&c));
    cli_close(&c);
}

static void test_http_client_gone_while_pending(void **state)
{
    (void)state;
    static cli_t c, d;
    resp_t r;
    cli_open(&c, port_main);
    cli_send(&c, "GET /slow?ms=200 HTTP/1.1\r\n\r\n");
    usleep(50 * 1000);
    struct linger lg = {1, 0}; /* close with a RST: the connection is gone, not half-closed */
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cli_close(&c);
    usleep(400 * 1000); /* the handler answers into the void; ASan checks nothing leaks */
    cli_open(&d, port_main);
    cli_req(&d, "GET /conns HTTP/1.1\r\n\r\n", &r);
    assert_string_equal(r.body, "1");
    cli_req(&d, "GET /orphans HTTP/1.1\r\n\r\n", &r);
    assert_string_equal(r.body, "1");
    /* A half-close (shutdown of the write side) still gets its answer. */
    cli_send(&d, "GET /slow?ms=50 HTTP/1.1\r\n\r\n");
    shutdown(d.fd, SHUT_WR);
    assert_true(cli_read(&d, &r));
    assert_string_equal(r.body, "slow");
    assert_true(cli_eof(&d));
    cli_close(&d);
}

static void test_http_basic_auth(void **state)
{
    (void)state;
    static cli_t c;
    resp_t r;
    cli_open(&c, port_auth);
    cli_req(&c, "GET /echo HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.head, "WWW-Authenticate: Basic realm=\"test\"\r\n"));
    /* ops:s3cret:x (a password may hold a colon) */
    cli_req(&c, "GET /echo HTTP/1.1\r\nAuthorization: Basic b3BzOnMzY3JldDp4\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "u=ops"));
    cli_req(&c, "GET /echo HTTP/1.1\r\nAuthorization: Basic b3BzOndyb25n\r\n\r\n", &r);
    assert_int_equal(r.status, 401);
    cli_req(&c, "GET /echo HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n", &r);
    assert_int_equal(r.status, 401);
    cli_close(&c);
}

static void test_http_url_decode(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(kb_http_url_decode("a%2Fb+c", 7, out, sizeof out, false), 5);
    assert_string_equal(out, "a/b+c");
    assert_int_equal(kb_http_url_decode("a+c", 3, out, sizeof out, true), 3);
    assert_string_equal(out, "a c");
    assert_int_equal(kb_http_url_decode("%4", 2, out, sizeof out, false), K_ERR_MALFORMED);
    assert_int_equal(kb_http_url_decode("%00", 3, out, sizeof out, false), K_ERR_MALFORMED);
    assert_int_equal(kb_http_url_decode("12345678", 8, out, sizeof out, false), K_ERR_TOOLARGE);
}

static void test_http_bad_listen_urls(void **state)
{
    (void)state;
    /* Runs on the test thread while the loop thread is idle in epoll: only touches a second,
     * private server and loop. */
    uv_loop_t l2;
    uv_loop_init(&l2);
    kb_http_server_t *s2 = kb_http_server_new(&l2);
    kb_http_listener_t *l;
    assert_int_equal(kb_http_server_listen(s2, "a", "127.0.0.1:80", NULL, &l), K_ERR_INVAL);
    assert_int_equal(kb_http_server_listen(s2, "b", "https://127.0.0.1:0", NULL, &l), K_ERR_INVAL);
    assert_int_equal(kb_http_server_listen(s2, "c", "http://127.0.0.1:99999", NULL, &l),
                     K_ERR_INVAL);
    assert_int_equal(kb_http_server_listen(s2, "d", "", NULL, &l), K_ERR_INVAL);
    char taken[64];
    snprintf(taken, sizeof taken, "http://127.0.0.1:%d", port_main);
    assert_int_equal(kb_http_server_listen(s2, "e", taken, NULL, &l), K_ERR_IO);
    assert_int_equal(
        kb_http_server_listen(s2, "f", "http://127.0.0.1:0,http://127.0.0.2:0/", NULL, &l), 0);
    assert_true(kb_http_listener_port(l, 0) > 0);
    assert_ptr_equal(kb_http_server_listener_at(s2, 0), l);
    assert_null(kb_http_server_listener_at(s2, 1));
    kb_http_server_close(s2);
    uv_run(&l2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l2), 0);
}

/* Through the broker: the http subsystem owns the server; kb_broker_stop closes it and the
 * loop ends with no handle left. */
static kb_broker_t *broker;

static void on_broker_stop(uv_async_t *a)
{
    kb_broker_stop(broker);
    uv_close((uv_handle_t *)a, NULL);
}

static void test_http_with_broker(void **state)
{
    (void)state;
    char dir[64] = "/tmp/kbhttpXXXXXX", dirs[96];
    assert_non_null(mkdtemp(dir));
    snprintf(dirs, sizeof dirs, "log.dirs=%s", dir);
    const char *sets[] = {"listeners=PLAINTEXT://127.0.0.1:0", dirs};
    kb_config_t cfg;
    char err[256];
    assert_int_equal(kb_config_load(&cfg, NULL, sets, 2, err, sizeof err, NULL), 0);
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_broker_stop);
    assert_int_equal(kb_broker_new(&cfg, &loop, &broker), 0);
    assert_int_equal(kb_broker_start(broker), 0);
    kb_http_listener_t *l;
    assert_int_equal(kb_http_listen(broker, "t", "http://127.0.0.1:0", NULL, &l), 0);
    assert_int_equal(kb_http_route(l, "GET", "/echo", h_echo, NULL), 0);
    assert_ptr_equal(kb_http_listener_find(broker, "t"), l);
    assert_ptr_equal(kb_http_listener_at(broker, 0), l);
    assert_null(kb_http_listener_at(broker, 1));
    int port = kb_http_listener_port(l, 0);
    assert_int_equal(pthread_create(&thread, NULL, run_loop, NULL), 0);
    static cli_t c;
    resp_t r;
    cli_open(&c, port);
    cli_req(&c, "GET /echo HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    uv_async_send(&stop_async);
    pthread_join(thread, NULL);
    assert_true(cli_eof(&c));
    cli_close(&c);
    kb_broker_free(broker);
    assert_int_equal(uv_loop_close(&loop), 0);
    kb_config_deinit(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_url_decode),
        cmocka_unit_test_setup_teardown(test_http_routes_query_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parse_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_pipelining_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_gone_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_basic_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_bad_listen_urls, setup, teardown),
        cmocka_unit_test(test_http_with_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

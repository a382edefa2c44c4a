/*
 * One HTTP connection: reading and parsing (libhttp-parser callbacks), the in-order answer
 * queue, writing, the read/idle deadlines, pipelining backpressure and the closing handshake.
 *
 * The bytes go through a transport (broker/net/transport.h), plain TCP or TLS, as the Kafka
 * connections' do: this file never touches the socket, so an https:// listener differs from an
 * http:// one only in the factory that accepted the connection. The TLS handshake (with its
 * deadline) runs inside the transport before the first byte reaches the parser; a handshake
 * that fails or stalls arrives here as a read error and closes the connection.
 *
 * Why libhttp-parser: request parsing is where an HTTP server gets its security bugs (request
 * smuggling through Content-Length/Transfer-Encoding, chunk-size overflow, header folding).
 * Node.js's parser, packaged by Debian, has had those cases fuzzed and fixed for a decade; a
 * hand-written parser here would have to relearn them.
 *
 * Closing: an answer that ends the connection (errors, "Connection: close") is written, the
 * write side is shut down, and input is read and dropped until the client's EOF (at most
 * LINGER_MS). Closing the socket at once with unread input would make the kernel send a RST
 * that can destroy the answer before the client reads it (e.g. a 413 while the body is still
 * arriving).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/http/http_int.h"

#define READ_CHUNK (16 * 1024)
#define LINGER_MS 2000

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void on_read(void *ud, const uv_buf_t *buf, ssize_t nread);
static void on_alloc(void *ud, uv_buf_t *buf);
static const kb_transport_events_t events = {on_alloc, on_read, NULL};
static void fail(hconn_t *c, int status);
static void feed(hconn_t *c, const char *data, size_t len);

static void conn_unref(hconn_t *c)
{
    if (--c->open_handles > 0) return;
    kb_http_req_t *next;
    for (kb_http_req_t *r = c->head; r; r = next) { /* only answered ones are left */
        next = r->next;
        kb_http_req_free(r);
    }
    kb_http_req_free(c->cur);
    free(c->held);
    kb_http_server_t *srv = c->l->srv;
    free(c);
    kb_http_server_unref(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void on_transport_closed(kb_transport_t *t)
{
    hconn_t *c = t->data;
    t->ops->free(t);
    c->t = NULL;
    conn_unref(c);
}

static void read_stop(hconn_t *c)
{
    c->t->ops->read_stop(c->t);
}

void kb_http_conn_close(hconn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    kb_http_listener_t *l = c->l;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    l->stats.conns--;
    /* Requests still with their handler become orphans: kb_http_send frees them. */
    kb_http_req_t **pp = &c->head;
    while (*pp) {
        kb_http_req_t *r = *pp;
        if (!r->sent) {
            *pp = r->next;
            r->conn = NULL;
            r->next = NULL;
        } else {
            pp = &r->next;
        }
    }
    c->t->ops->close(c->t, on_transport_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_timer(uv_timer_t *t);

static void arm(hconn_t *c, int ms)
{
    if (!c->closing) uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

/* The last answer is out: shut the write side and wait (briefly) for the client's EOF. */
static void linger(hconn_t *c)
{
    if (c->draining || c->closing) return;
    c->draining = true;
    c->paused = false;
    /* TLS: close_notify first; the linger timer or the client's EOF closes it */
    if (c->t->ops->shutdown(c->t) < 0) {
        kb_http_conn_close(c);
        return;
    }
    c->t->ops->read_start(c->t); /* already reading is fine */
    arm(c, LINGER_MS);
}

static void on_timer(uv_timer_t *t)
{
    hconn_t *c = t->data;
    if (c->draining) {
        kb_http_conn_close(c);
    } else if (c->cur && !c->no_more) {
        /* A request started but did not arrive in time. */
        kb_log(KB_LOG_DEBUG, "http %s: %s: request not complete in %d ms", c->l->name, c->peer,
               c->l->opts.read_timeout_ms);
        fail(c, 408);
    } else if (c->head) {
        arm(c, c->l->opts.idle_timeout_ms); /* answers pending: not idle */
    } else {
        kb_http_conn_close(c);
    }
}

/* Queues a server-made error answer after what is already queued; nothing more is parsed. */
static void fail(hconn_t *c, int status)
{
    kb_http_req_free(c->cur);
    c->cur = NULL;
    c->no_more = true;
    read_stop(c);
    kb_http_req_t *req = kb_http_req_new(c);
    if (!req) {
        kb_http_conn_close(c);
        return;
    }
    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->n_queued++;
    kb_http_req_fail(req, status);
}

static void resume(hconn_t *c)
{
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    uint8_t *held = c->held;
    size_t n = c->held_len;
    c->held = NULL;
    c->held_len = 0;
    if (held) {
        feed(c, (const char *)held, n);
        free(held);
    }
    if (!c->closing && !c->paused && !c->no_more) c->t->ops->read_start(c->t);
}

static void on_written(kb_twrite_t *w, int status)
{
    hconn_t *c = w->data;
    c->writing = false;
    if (c->closing) return; /* the close callback frees what is left */
    if (status < 0) {
        kb_http_conn_close(c);
        return;
    }
    if (w == &c->wreq) {
        kb_http_req_t *req = c->head;
        c->head = req->next;
        if (!c->head) c->tail = NULL;
        c->n_queued--;
        kb_http_listener_t *l = c->l;
        l->stats.requests++;
        if (req->status >= 500)
            l->stats.server_errors++;
        else if (req->status >= 400)
            l->stats.client_errors++;
        kb_log(KB_LOG_DEBUG, "http %s: %s %s %s -> %d (%zu bytes)", l->name, c->peer, req->method,
               req->path ? req->path : "-", req->status, req->out_body.len);
        bool close_after = req->close_after;
        kb_http_req_free(req);
        if (close_after) {
            linger(c);
            return;
        }
    }
    if (c->paused && c->n_queued < c->l->opts.max_pipeline) resume(c);
    if (c->closing) return;
    if (c->no_more && !c->head && !c->cur) {
        linger(c);
        return;
    }
    kb_http_conn_flush(c);
}

void kb_http_conn_flush(hconn_t *c)
{
    if (c->closing || c->writing || c->draining || !c->head || !c->head->sent) return;
    kb_http_req_t *req = c->head;
    uv_buf_t bufs[2];
    int n = 0;
    bufs[n++] = uv_buf_init((char *)req->wire.data, (unsigned)req->wire.len);
    if (!req->head && req->out_body.len)
        bufs[n++] = uv_buf_init((char *)req->out_body.data, (unsigned)req->out_body.len);
    c->wreq.data = c;
    if (c->t->ops->write(c->t, &c->wreq, bufs, (unsigned)n, on_written) < 0) {
        kb_http_conn_close(c);
        return;
    }
    c->writing = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Parser callbacks                                                                             */

static int count_header(hconn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->l->opts.max_header_bytes) {
        c->fail_status = 431;
        return 1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    hconn_t *c = p->data;
    if (c->no_more || c->closing) return 1;
    c->cur = kb_http_req_new(c);
    if (!c->cur) {
        c->fail_status = 500;
        return 1;
    }
    c->header_bytes = 0;
    c->in_value = false;
    arm(c, c->l->opts.read_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    hconn_t *c = p->data;
    if (count_header(c, n)) return 1;
    kp_put_raw(&c->cur->url, at, n);
    return c->cur->url.err ? 1 : 0;
}

static int append(char **s, const char *at, size_t n)
{
    size_t old = *s ? strlen(*s) : 0;
    char *t = realloc(*s, old + n + 1);
    if (!t) return 1;
    memcpy(t + old, at, n);
    t[old + n] = 0;
    *s = t;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    hconn_t *c = p->data;
    kb_http_req_t *r = c->cur;
    if (count_header(c, n + 4)) return 1; /* ": " and CRLF count too */
    if (c->in_value || r->n_hdrs == 0) {
        if (r->n_hdrs == r->cap_hdrs) {
            int cap = r->cap_hdrs ? r->cap_hdrs * 2 : 8;
            hpair_t *h = realloc(r->hdrs, (size_t)cap * sizeof *h);
            if (!h) return 1;
            r->hdrs = h;
            r->cap_hdrs = cap;
        }
        r->hdrs[r->n_hdrs].name = NULL;
        r->hdrs[r->n_hdrs].value = NULL;
        r->n_hdrs++;
        c->in_value = false;
    }
    return append(&r->hdrs[r->n_hdrs - 1].name, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    hconn_t *c = p->data;
    kb_http_req_t *r = c->cur;
    if (count_header(c, n)) return 1;
    if (r->n_hdrs == 0) return 1;
    c->in_value = true;
    return append(&r->hdrs[r->n_hdrs - 1].value, at, n);
}

/* Returns -1 to refuse (1 would mean "skip the body" to libhttp-parser). */
static int on_headers_complete(http_parser *p)
{
    hconn_t *c = p->data;
    kb_http_req_t *r = c->cur;
    if (p->method == HTTP_CONNECT || p->upgrade) {
        c->fail_status = 400;
        return -1;
    }
    snprintf(r->method, sizeof r->method, "%s", http_method_str((enum http_method)p->method));
    r->head = p->method == HTTP_HEAD;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    if (!(p->flags & F_CHUNKED) && (p->flags & F_CONTENTLENGTH) &&
        p->content_length > c->l->opts.max_body_bytes) {
        c->fail_status = 413;
        return -1;
    }
    for (int i = 0; i < r->n_hdrs; i++) {
        hpair_t *h = &r->hdrs[i];
        if (!h->value && append(&h->value, "", 0)) return -1;
    }
    const char *expect = kb_http_header(r, "Expect");
    if (expect && !strcasecmp(expect, "100-continue") && !c->head && !c->writing) {
        uv_buf_t b = uv_buf_init((char *)CONTINUE_100, sizeof CONTINUE_100 - 1);
        c->creq.data = c;
        if (c->t->ops->write(c->t, &c->creq, &b, 1, on_written) == 0) c->writing = true;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    hconn_t *c = p->data;
    kb_http_req_t *r = c->cur;
    if (r->body.len + n > c->l->opts.max_body_bytes) {
        c->fail_status = 413;
        return 1;
    }
    kp_put_raw(&r->body, at, n);
    return r->body.err ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    hconn_t *c = p->data;
    kb_http_req_t *r = c->cur;
    c->cur = NULL;
    r->keep_alive = http_should_keep_alive(p) != 0;
    if (!r->keep_alive) {
        r->close_after = true;
        c->no_more = true;
    }
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->n_queued++;
    arm(c, c->l->opts.idle_timeout_ms);
    kb_http_req_dispatch(c->l, r); /* may answer now; never closes c synchronously here */
    if (c->closing) return 1;
    if (c->no_more || c->n_queued >= c->l->opts.max_pipeline) http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------------------------ */

static void hold(hconn_t *c, const char *data, size_t len)
{
    if (len == 0) return;
    uint8_t *h = malloc(len); /* owned by c->held */
    if (!h) {
        kb_http_conn_close(c);
        return;
    }
    memcpy(h, data, len);
    c->held = h;
    c->held_len = len;
}

static void feed(hconn_t *c, const char *data, size_t len)
{
    c->fail_status = 0;
    size_t n = http_parser_execute(&c->parser, &settings, data, len);
    if (c->closing) return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->no_more && !c->fail_status) {
        /* "Connection: close" (or stop) was seen: what follows is dropped. */
        read_stop(c);
        if (!c->head) linger(c);
        return;
    }
    if (e == HPE_PAUSED) {
        c->paused = true;
        read_stop(c);
        hold(c, data + n, len - n);
        return;
    }
    if (e != HPE_OK || c->parser.upgrade) {
        int status = c->fail_status ? c->fail_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        kb_log(KB_LOG_DEBUG, "http %s: %s: bad request (%s) -> %d", c->l->name, c->peer,
               http_errno_name(e), status);
        fail(c, status);
    }
}

static void on_alloc(void *ud, uv_buf_t *buf)
{
    (void)ud;
    buf->base = malloc(READ_CHUNK); /* freed in on_read */
    buf->len = buf->base ? READ_CHUNK : 0;
}

static void on_read(void *ud, const uv_buf_t *buf, ssize_t nread)
{
    hconn_t *c = ud;
    if (nread < 0) {
        free(buf->base);
        if (c->draining || nread != UV_EOF || (!c->head && !c->cur)) {
            kb_http_conn_close(c);
        } else {
            /* EOF after complete requests: answer them, then close (half-close is fine). */
            read_stop(c);
            kb_http_req_free(c->cur);
            c->cur = NULL;
            c->no_more = true;
            if (!c->head) kb_http_conn_close(c);
        }
        return;
    }
    if (nread > 0 && !c->draining && !c->closing) feed(c, buf->base, (size_t)nread);
    free(buf->base);
}

void kb_http_conn_wind_down(hconn_t *c)
{
    if (c->closing) return;
    c->no_more = true;
    read_stop(c);
    kb_http_req_free(c->cur);
    c->cur = NULL;
    if (!c->head) kb_http_conn_close(c);
}

static void set_peer(hconn_t *c)
{
    struct sockaddr_storage ss;
    snprintf(c->peer, sizeof c->peer, "?");
    if (c->t->ops->peer_addr(c->t, &ss) < 0) return;
    char ip[INET6_ADDRSTRLEN] = "";
    int port;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
}

void kb_http_conn_accept(kb_http_listener_t *l, uv_stream_t *server, int i)
{
    kb_transport_t *t = NULL;
    int rc = l->tls_at[i] ? kb_tls_endpoint_accept(l->tls, server, &t)
                          : kb_transport_tcp_factory.accept(NULL, l->srv->loop, server, &t);
    if (rc < 0) { /* the transport dropped the pending connection */
        kb_log(KB_LOG_WARN, "http %s: accept failed (%d)", l->name, rc);
        return;
    }
    hconn_t *c = calloc(1, sizeof *c); /* owned by l->conns until its handles closed */
    if (!c) {
        kb_log(KB_LOG_ERROR, "http %s: out of memory accepting a connection", l->name);
        t->ops->close(t, t->ops->free);
        return;
    }
    c->l = l;
    c->t = t;
    t->data = c;
    kb_transport_bind(t, &events, c);
    uv_timer_init(l->srv->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    l->srv->refs++;
    c->next = l->conns;
    if (l->conns) l->conns->prev = c;
    l->conns = c;
    l->stats.conns++;
    l->stats.accepted++;
    if (l->stats.conns > l->opts.max_conns) {
        l->stats.refused++;
        kb_log(KB_LOG_WARN, "http %s: more than %d connections, refusing one", l->name,
               l->opts.max_conns);
        kb_http_conn_close(c);
        return;
    }
    set_peer(c);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (t->ops->read_start(t) < 0) {
        kb_http_conn_close(c);
        return;
    }
    arm(c, l->opts.idle_timeout_ms);
}

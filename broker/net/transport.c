/*
 * The plain TCP transport (contract in transport.h) and the choice of transport per security
 * protocol. TCP maps the contract one to one onto libuv's stream calls: plaintext is what the
 * socket carries, uv_close cancels writes in flight (UV_ECANCELED) before its callback.
 */
#include "broker/net/transport.h"
#include "broker/net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    kb_transport_t t; /* first: a kb_transport_t * is a tcp_t * */
    uv_tcp_t tcp;
    void (*close_cb)(kb_transport_t *t);
} tcp_t;

static void tcp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tcp_t *x = h->data;
    x->t.ev->alloc(x->t.ud, buf);
}

static void tcp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tcp_t *x = s->data;
    x->t.ev->read(x->t.ud, buf, nread);
}

static int tcp_read_start(kb_transport_t *t)
{
    tcp_t *x = (tcp_t *)t;
    return uv_read_start((uv_stream_t *)&x->tcp, tcp_on_alloc, tcp_on_read);
}

static int tcp_read_stop(kb_transport_t *t)
{
    tcp_t *x = (tcp_t *)t;
    return uv_read_stop((uv_stream_t *)&x->tcp);
}

static void tcp_on_write(uv_write_t *req, int status)
{
    kb_twrite_t *w = req->data;
    w->cb(w, status);
}

static int tcp_write(kb_transport_t *t, kb_twrite_t *w, const uv_buf_t *bufs, unsigned n,
                     kb_twrite_cb cb)
{
    tcp_t *x = (tcp_t *)t;
    w->cb = cb;
    w->next = NULL;
    w->len = 0;
    for (unsigned i = 0; i < n; i++)
        w->len += bufs[i].len;
    w->uv.data = w;
    return uv_write(&w->uv, (uv_stream_t *)&x->tcp, bufs, n, tcp_on_write);
}

static size_t tcp_write_queue_size(const kb_transport_t *t)
{
    const tcp_t *x = (const tcp_t *)t;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&x->tcp);
}

static void tcp_on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static int tcp_shutdown(kb_transport_t *t)
{
    tcp_t *x = (tcp_t *)t;
    uv_shutdown_t *req = malloc(sizeof *req); /* owned by the shutdown until its callback */
    if (!req) return K_ERR_NOMEM;
    int rc = uv_shutdown(req, (uv_stream_t *)&x->tcp, tcp_on_shutdown);
    if (rc < 0) free(req);
    return rc;
}

static void tcp_on_close(uv_handle_t *h)
{
    tcp_t *x = h->data;
    if (x->close_cb) x->close_cb(&x->t);
}

static void tcp_close(kb_transport_t *t, void (*cb)(kb_transport_t *t))
{
    tcp_t *x = (tcp_t *)t;
    x->close_cb = cb;
    if (!uv_is_closing((uv_handle_t *)&x->tcp)) uv_close((uv_handle_t *)&x->tcp, tcp_on_close);
}

static int tcp_peer_addr(const kb_transport_t *t, struct sockaddr_storage *ss)
{
    const tcp_t *x = (const tcp_t *)t;
    int n = sizeof *ss;
    return uv_tcp_getpeername(&x->tcp, (struct sockaddr *)ss, &n);
}

static void tcp_free(kb_transport_t *t)
{
    free(t);
}

static const kb_transport_ops_t tcp_ops = {
    .name = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .write_queue_size = tcp_write_queue_size,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .peer_addr = tcp_peer_addr,
    .free = tcp_free,
};

/* Frees a transport whose accept failed, once libuv has let go of its handle. */
static void tcp_on_reject_close(uv_handle_t *h)
{
    free(h->data);
}

static int tcp_accept(void *ud, uv_loop_t *loop, uv_stream_t *server, kb_transport_t **out)
{
    (void)ud;
    *out = NULL;
    tcp_t *x = calloc(1, sizeof *x); /* owned by the caller once returned, freed by tcp_free */
    if (!x) return K_ERR_NOMEM;
    int rc = uv_tcp_init(loop, &x->tcp);
    if (rc < 0) {
        free(x);
        return rc;
    }
    x->tcp.data = x;
    x->t.ops = &tcp_ops;
    if ((rc = uv_accept(server, (uv_stream_t *)&x->tcp)) < 0) {
        uv_close((uv_handle_t *)&x->tcp, tcp_on_reject_close);
        return rc;
    }
    uv_tcp_nodelay(&x->tcp, 1);
    uv_tcp_keepalive(&x->tcp, 1, 60);
    *out = &x->t;
    return 0;
}

const kb_transport_factory_t kb_transport_tcp_factory = {"tcp", tcp_accept, NULL};

const kb_transport_factory_t *kb_transport_for(int security_protocol, char *why, size_t whylen)
{
    switch (security_protocol) {
    case KB_SEC_PLAINTEXT:
    case KB_SEC_SASL_PLAINTEXT: /* SASL runs above the transport (broker/auth/sasl.c) */
        return &kb_transport_tcp_factory;
    case KB_SEC_SSL:
    case KB_SEC_SASL_SSL: /* certificates: the tls subsystem (tls.c) */
        return &kb_transport_tls_factory;
    }
    snprintf(why, whylen, "unknown security protocol %d", security_protocol);
    return NULL;
}

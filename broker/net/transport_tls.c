/*
 * TLS transport (contract in transport.h) for SSL:// and SASL_SSL:// listeners: OpenSSL with
 * memory BIOs, so the handshake and every record run on the loop without blocking. The TCP
 * socket is read into the network BIO; SSL_read turns it into plaintext for the connection;
 * SSL_write turns the connection's responses into ciphertext, written with uv_write.
 *
 *   accept ─► handshake (reads the socket, writes its own flights; deadline) ─► identity
 *          (client certificate subject, RFC 2253) ─► plaintext both ways ─► close_notify
 *
 * A handshake that fails (a plaintext client, a bad certificate, required client auth without
 * one) or does not finish within the deadline ends the connection: the connection is told
 * through ev->read(UV_EPROTO / UV_ETIMEDOUT) and closes; nothing else on the loop waits.
 *
 * Certificates (KIP-651 PEM settings, see tls.c) live in one SSL_CTX per broker, owned by the
 * "tls" subsystem, and one per https:// HTTP listener (tls_endpoint.c); SIGHUP loads them
 * again and new connections use the new context (connections already open keep theirs:
 * SSL_CTX is reference counted).
 *
 * Ownership: tls_t is the transport (freed by tls_free); each ciphertext write owns its buffer
 * until its uv_write completes. Loop thread only.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/audit.h"
#include "broker/net/listener.h"
#include "broker/net/tls.h"

#define CIPHER_CHUNK (16 * 1024 + 512)

typedef struct {
    kb_transport_t t; /* first */
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline, then "deliver buffered plaintext" kicks */
    SSL *ssl;
    BIO *net_in, *net_out; /* socket → SSL, SSL → socket (owned by ssl) */
    bool handshaken, want_plain, failed, closing, sock_reading;
    int open_handles; /* tcp + timer, for close */
    void (*close_cb)(kb_transport_t *t);
    size_t queued; /* ciphertext bytes handed to uv_write, not yet written */
    uint64_t rx;   /* ciphertext bytes received (0: a port probe, not a TLS client) */
    kb_broker_t *b;     /* NULL: no audit trail (a standalone HTTP server) */
    char listener[64]; /* the listener's name, for logs and audit records */
} tls_t;

/* One ciphertext write: the caller's write (or NULL for handshake/alert bytes). */
typedef struct {
    uv_write_t uv;
    tls_t *x;
    kb_twrite_t *w;
    size_t len;
    char buf[];
} cwrite_t;

static void tls_fail(tls_t *x, int status, const char *why);

static void on_cwrite(uv_write_t *req, int status)
{
    cwrite_t *cw = req->data;
    cw->x->queued -= cw->len;
    kb_twrite_t *w = cw->w;
    free(cw);
    if (w) w->cb(w, status);
}

/* Sends whatever SSL wrote to the network BIO; w (may be NULL) completes with that write. */
static int flush_out(tls_t *x, kb_twrite_t *w)
{
    size_t pending = BIO_ctrl_pending(x->net_out);
    if (!pending && !w) return 0;
    cwrite_t *cw = malloc(sizeof *cw + (pending ? pending : 1)); /* owned until on_cwrite */
    if (!cw) return K_ERR_NOMEM;
    int n = pending ? BIO_read(x->net_out, cw->buf, (int)pending) : 0;
    cw->x = x;
    cw->w = w;
    cw->len = n > 0 ? (size_t)n : 0;
    cw->uv.data = cw;
    uv_buf_t b = uv_buf_init(cw->buf, (unsigned)cw->len);
    int rc = uv_write(&cw->uv, (uv_stream_t *)&x->tcp, &b, 1, on_cwrite);
    if (rc < 0) {
        free(cw);
        return rc;
    }
    x->queued += cw->len;
    return 0;
}

/* Hands decrypted bytes to the connection while it wants them. */
static void deliver(tls_t *x)
{
    while (x->want_plain && !x->failed && !x->closing) {
        uv_buf_t buf;
        x->t.ev->alloc(x->t.ud, &buf);
        if (!buf.base || !buf.len) {
            x->t.ev->read(x->t.ud, &buf, UV_ENOBUFS);
            return;
        }
        int n = SSL_read(x->ssl, buf.base, (int)buf.len);
        if (n > 0) {
            x->t.ev->read(x->t.ud, &buf, n);
            continue;
        }
        int e = SSL_get_error(x->ssl, n);
        x->t.ev->read(x->t.ud, &buf, 0); /* buffer handed back unused */
        if (e == SSL_ERROR_WANT_READ) {
            flush_out(x, NULL); /* key updates, session tickets */
            return;
        }
        tls_fail(x, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO,
                 e == SSL_ERROR_ZERO_RETURN ? NULL : "TLS record error");
        return;
    }
}

static void report_identity(tls_t *x)
{
    X509 *cert = SSL_get_peer_certificate(x->ssl);
    char subject[512] = "";
    if (cert) {
        BIO *m = BIO_new(BIO_s_mem());
        if (m) {
            /* RFC 2253: most specific first, as Java's X500Principal.getName() */
            X509_NAME_print_ex(m, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
            int n = BIO_read(m, subject, sizeof subject - 1);
            subject[n > 0 ? n : 0] = 0;
            BIO_free(m);
        }
    }
    kb_peer_identity_t id = {cert ? subject : NULL, cert, SSL_get_version(x->ssl)};
    if (x->t.ev && x->t.ev->identity) x->t.ev->identity(x->t.ud, &id);
    X509_free(cert);
}

static void step_handshake(tls_t *x)
{
    int r = SSL_do_handshake(x->ssl);
    flush_out(x, NULL); /* our flight, or the alert that ends it */
    if (r == 1) {
        x->handshaken = true;
        uv_timer_stop(&x->timer);
        report_identity(x);
        return;
    }
    int e = SSL_get_error(x->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        char why[256];
        unsigned long code = ERR_peek_last_error();
        snprintf(why, sizeof why, "TLS handshake failed: %s",
                 code ? ERR_reason_error_string(code) : "peer closed");
        ERR_clear_error();
        tls_fail(x, UV_EPROTO, why);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    (void)h;
    static char chunk[CIPHER_CHUNK]; /* loop thread only; copied into the BIO at once */
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_sock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tls_t *x = s->data;
    if (nread < 0) {
        tls_fail(x, (int)nread, NULL);
        return;
    }
    x->rx += nread > 0 ? (uint64_t)nread : 0;
    if (nread > 0 && BIO_write(x->net_in, buf->base, (int)nread) != (int)nread) {
        tls_fail(x, UV_ENOMEM, "TLS: out of memory");
        return;
    }
    if (!x->handshaken) step_handshake(x);
    if (x->handshaken) {
        deliver(x);
        /* Backpressure: stop reading the socket while the connection does not want bytes. */
        if (!x->want_plain && x->sock_reading && !x->failed && !x->closing) {
            uv_read_stop((uv_stream_t *)&x->tcp);
            x->sock_reading = false;
        }
    }
}

static void on_deadline(uv_timer_t *t)
{
    tls_t *x = t->data;
    if (!x->handshaken) {
        tls_fail(x, UV_ETIMEDOUT, "TLS handshake did not finish in time");
        return;
    }
    deliver(x); /* a kick from read_start: plaintext already decrypted */
}

static void tls_fail(tls_t *x, int status, const char *why)
{
    if (x->failed || x->closing) return;
    x->failed = true;
    char peer[64] = "?";
    struct sockaddr_storage ss;
    int n = sizeof ss;
    if (uv_tcp_getpeername(&x->tcp, (struct sockaddr *)&ss, &n) == 0)
        uv_ip_name((struct sockaddr *)&ss, peer, sizeof peer);
    if (why) kb_log(KB_LOG_INFO, "%s: %s: %s", x->listener, peer, why);
    if (x->b && !x->handshaken && (x->rx || status == UV_ETIMEDOUT))
        kb_audit_connection_failure(x->b, peer, x->listener, "TLS",
                                    status == UV_ETIMEDOUT ? "SSL_HANDSHAKE_TIMEOUT"
                                                           : "SSL_HANDSHAKE_FAILED");
    uv_read_stop((uv_stream_t *)&x->tcp);
    x->sock_reading = false;
    uv_buf_t none = uv_buf_init(NULL, 0);
    if (x->t.ev) x->t.ev->read(x->t.ud, &none, status); /* the connection closes */
}

static int tls_read_start(kb_transport_t *t)
{
    tls_t *x = (tls_t *)t;
    x->want_plain = true;
    if (x->failed) return 0;
    if (!x->sock_reading) {
        int rc = uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_sock_read);
        if (rc < 0) return rc;
        x->sock_reading = true;
    }
    /* Plaintext decrypted ahead is delivered from the loop, never inside this call. */
    if (x->handshaken && SSL_pending(x->ssl) > 0) uv_timer_start(&x->timer, on_deadline, 0, 0);
    return 0;
}

static int tls_read_stop(kb_transport_t *t)
{
    tls_t *x = (tls_t *)t;
    x->want_plain = false;
    if (x->handshaken && x->sock_reading) { /* during the handshake the socket stays read */
        uv_read_stop((uv_stream_t *)&x->tcp);
        x->sock_reading = false;
    }
    return 0;
}

static int tls_write(kb_transport_t *t, kb_twrite_t *w, const uv_buf_t *bufs, unsigned n,
                     kb_twrite_cb cb)
{
    tls_t *x = (tls_t *)t;
    if (x->failed || x->closing || !x->handshaken) return UV_EPIPE;
    w->cb = cb;
    w->next = NULL;
    w->len = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0;
        while (off < bufs[i].len) {
            size_t chunk = bufs[i].len - off > (1u << 30) ? (1u << 30) : bufs[i].len - off;
            int r = SSL_write(x->ssl, bufs[i].base + off, (int)chunk);
            if (r <= 0) return UV_EPROTO; /* memory BIO: only a broken session fails */
            off += (size_t)r;
        }
        w->len += bufs[i].len;
    }
    return flush_out(x, w);
}

static size_t tls_write_queue_size(const kb_transport_t *t)
{
    return ((const tls_t *)t)->queued;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static int tls_shutdown(kb_transport_t *t)
{
    tls_t *x = (tls_t *)t;
    if (x->handshaken && !x->failed) {
        SSL_shutdown(x->ssl); /* close_notify */
        flush_out(x, NULL);
    }
    uv_shutdown_t *req = malloc(sizeof *req); /* owned by the shutdown until its callback */
    if (!req) return K_ERR_NOMEM;
    int rc = uv_shutdown(req, (uv_stream_t *)&x->tcp, on_shutdown);
    if (rc < 0) free(req);
    return rc;
}

static void on_handle_closed(uv_handle_t *h)
{
    tls_t *x = h->data;
    if (--x->open_handles == 0 && x->close_cb) x->close_cb(&x->t);
}

static void tls_close(kb_transport_t *t, void (*cb)(kb_transport_t *t))
{
    tls_t *x = (tls_t *)t;
    x->close_cb = cb;
    if (x->closing) return;
    x->closing = true;
    x->t.ev = NULL; /* no event after close() */
    uv_close((uv_handle_t *)&x->timer, on_handle_closed);
    uv_close((uv_handle_t *)&x->tcp, on_handle_closed); /* in-flight writes: UV_ECANCELED */
}

static int tls_peer_addr(const kb_transport_t *t, struct sockaddr_storage *ss)
{
    const tls_t *x = (const tls_t *)t;
    int n = sizeof *ss;
    return uv_tcp_getpeername(&x->tcp, (struct sockaddr *)ss, &n);
}

static void tls_free(kb_transport_t *t)
{
    tls_t *x = (tls_t *)t;
    SSL_free(x->ssl); /* frees both BIOs */
    free(x);
}

static const kb_transport_ops_t tls_ops = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .write_file = kb_transport_write_file_copy,
    .write_queue_size = tls_write_queue_size,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .peer_addr = tls_peer_addr,
    .free = tls_free,
};

static void on_reject_closed(uv_handle_t *h)
{
    tls_t *x = h->data;
    if (--x->open_handles == 0) tls_free(&x->t);
}

int kb_tls_transport_accept(uv_loop_t *loop, uv_stream_t *server, SSL_CTX *ctx,
                            int64_t handshake_timeout_ms, kb_broker_t *b, const char *listener,
                            kb_transport_t **out)
{
    *out = NULL;
    tls_t *x = calloc(1, sizeof *x); /* owned by the caller once returned (tls_free) */
    if (!x) return K_ERR_NOMEM;
    int rc = uv_tcp_init(loop, &x->tcp);
    if (rc < 0) {
        free(x);
        return rc;
    }
    uv_timer_init(loop, &x->timer);
    x->tcp.data = x->timer.data = x;
    x->open_handles = 2;
    x->t.ops = &tls_ops;
    x->b = b;
    snprintf(x->listener, sizeof x->listener, "%s", listener ? listener : "?");
    rc = uv_accept(server, (uv_stream_t *)&x->tcp);
    if (rc == 0 && !ctx) rc = K_ERR_CLOSED; /* no certificate loaded: refuse */
    if (rc == 0 && !(x->ssl = SSL_new(ctx))) rc = K_ERR_NOMEM;
    if (rc == 0) {
        x->net_in = BIO_new(BIO_s_mem());
        x->net_out = BIO_new(BIO_s_mem());
        if (!x->net_in || !x->net_out) {
            BIO_free(x->net_in);
            BIO_free(x->net_out);
            rc = K_ERR_NOMEM;
        } else {
            SSL_set_bio(x->ssl, x->net_in, x->net_out);
            SSL_set_accept_state(x->ssl);
        }
    }
    if (rc < 0) {
        uv_close((uv_handle_t *)&x->timer, on_reject_closed);
        uv_close((uv_handle_t *)&x->tcp, on_reject_closed);
        return rc == UV_EAGAIN ? rc : K_ERR_IO;
    }
    uv_tcp_nodelay(&x->tcp, 1);
    uv_tcp_keepalive(&x->tcp, 1, 60);
    /* The handshake starts now, whatever the connection does: read the socket, and give up
     * after the deadline (a client that connects and says nothing holds nothing for long). */
    uv_timer_start(&x->timer, on_deadline, (uint64_t)handshake_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_sock_read) == 0) x->sock_reading = true;
    *out = &x->t;
    return 0;
}

static int tls_accept(void *ud, uv_loop_t *loop, uv_stream_t *server, kb_transport_t **out)
{
    (void)ud;
    kb_listen_sock_t *ls = server->data;
    return kb_tls_transport_accept(loop, server, kb_tls_ctx(ls->broker),
                                   kb_tls_handshake_timeout_ms(ls->broker), ls->broker,
                                   ls->cfg->name, out);
}

const kb_transport_factory_t kb_transport_tls_factory = {"tls", tls_accept, NULL};

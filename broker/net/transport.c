/*
 * The plain TCP transport (contract in transport.h) and the choice of transport per security
 * protocol. TCP maps the contract one to one onto libuv's stream calls: plaintext is what the
 * socket carries, uv_close cancels writes in flight (UV_ECANCELED) before its callback.
 *
 * write_file (sendfile): libuv has no file-to-stream write, so the transport calls sendfile(2)
 * on the socket itself, but only while libuv has none of our writes in flight (inflight == 0;
 * a file op waits for them), so bytes never interleave. The socket is non-blocking: when
 * sendfile returns EAGAIN, the next FILE_PROBE bytes are read into a small buffer and written
 * with uv_write, which waits for the socket to drain; its callback resumes sendfile. The last
 * FILE_TAIL bytes go the same way, so the op always completes from a libuv callback (never
 * inside write_file) and a short range costs one small copy instead of a sendfile.
 */
#include "broker/net/transport.h"
#include "broker/net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define FILE_PROBE (16 * 1024)
#define FILE_TAIL 512

typedef struct {
    kb_transport_t t; /* first: a kb_transport_t * is a tcp_t * */
    uv_tcp_t tcp;
    void (*close_cb)(kb_transport_t *t);
    int inflight;     /* our uv_writes not yet called back */
    kb_twrite_t *fop; /* the file op being sent (or waiting for inflight == 0) */
    int ffd;
    int64_t foff;
    size_t fleft;     /* bytes of fop not yet handed to the kernel or to fuv */
    bool fchunk;      /* fuv is in flight */
    uint32_t fprobes; /* times sendfile met a full socket (EAGAIN), for tests */
    bool closing;
    uv_write_t fuv;   /* the probe/tail write of fop */
    uint8_t *fbuf;    /* FILE_PROBE bytes while fop is set; owned */
} tcp_t;

static int file_pump(tcp_t *x);

/* All n bytes at off, or -1 (a short file counts as a failure: the range was promised). */
static int pread_all(int fd, void *buf, size_t n, int64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

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

/* Ends the file op with status (0 = every byte went out). From a libuv callback only. */
static void file_finish(tcp_t *x, int status)
{
    kb_twrite_t *w = x->fop;
    x->fop = NULL;
    free(x->fbuf);
    x->fbuf = NULL;
    if (w) w->cb(w, status);
}

static void tcp_on_write(uv_write_t *req, int status)
{
    kb_twrite_t *w = req->data;
    tcp_t *x = (tcp_t *)req->handle->data;
    x->inflight--;
    w->cb(w, status);
    if (x->fop && !x->fchunk && x->inflight == 0 && !x->closing) {
        int rc = file_pump(x);
        if (rc < 0) file_finish(x, rc);
    }
}

static int tcp_write(kb_transport_t *t, kb_twrite_t *w, const uv_buf_t *bufs, unsigned n,
                     kb_twrite_cb cb)
{
    tcp_t *x = (tcp_t *)t;
    if (x->fop) return UV_EBUSY; /* the contract: nothing else until write_file's cb */
    w->cb = cb;
    w->next = NULL;
    w->len = 0;
    for (unsigned i = 0; i < n; i++)
        w->len += bufs[i].len;
    w->uv.data = w;
    int rc = uv_write(&w->uv, (uv_stream_t *)&x->tcp, bufs, n, tcp_on_write);
    if (rc == 0) x->inflight++;
    return rc;
}

static void on_file_chunk(uv_write_t *req, int status)
{
    tcp_t *x = (tcp_t *)req->handle->data;
    x->fchunk = false;
    if (status < 0 || x->fleft == 0 || x->closing) {
        file_finish(x, status < 0 ? status : (x->closing ? UV_ECANCELED : 0));
        return;
    }
    int rc = file_pump(x);
    if (rc < 0) file_finish(x, rc);
}

/* Writes the next n bytes of the range through libuv (after EAGAIN, or the tail). */
static int file_chunk(tcp_t *x, size_t n)
{
    if (pread_all(x->ffd, x->fbuf, n, x->foff) != 0) return UV_EIO;
    uv_buf_t b = uv_buf_init((char *)x->fbuf, (unsigned)n);
    int rc = uv_write(&x->fuv, (uv_stream_t *)&x->tcp, &b, 1, on_file_chunk);
    if (rc < 0) return rc;
    x->foff += (int64_t)n;
    x->fleft -= n;
    x->fchunk = true;
    return 0;
}

/* sendfile while the socket takes it; then a libuv write (see the top). 0 or a UV_* error. */
static int file_pump(tcp_t *x)
{
    uv_os_fd_t sock;
    if (uv_fileno((const uv_handle_t *)&x->tcp, &sock) != 0) return UV_EBADF;
    while (x->fleft > FILE_TAIL) {
        size_t want = x->fleft - FILE_TAIL;
        if (want > (1u << 30)) want = 1u << 30;
        off_t off = (off_t)x->foff;
        ssize_t n = sendfile(sock, x->ffd, &off, want);
        if (n > 0) {
            x->foff += n;
            x->fleft -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            x->fprobes++;
            return file_chunk(x, x->fleft < FILE_PROBE ? x->fleft : FILE_PROBE);
        }
        return n == 0 ? UV_EIO : uv_translate_sys_error(errno); /* the file ended early */
    }
    return file_chunk(x, x->fleft);
}

static int tcp_write_file(kb_transport_t *t, kb_twrite_t *w, int fd, int64_t off, size_t len,
                          kb_twrite_cb cb)
{
    tcp_t *x = (tcp_t *)t;
    if (x->fop) return UV_EBUSY;
    if (x->closing) return UV_ECANCELED;
    if (len == 0) return UV_EINVAL;
    if (!(x->fbuf = malloc(FILE_PROBE))) return UV_ENOMEM; /* freed by file_finish */
    w->cb = cb;
    w->next = NULL;
    w->len = len;
    x->fop = w;
    x->ffd = fd;
    x->foff = off;
    x->fleft = len;
    if (x->inflight > 0) return 0; /* tcp_on_write starts it */
    int rc = file_pump(x);
    if (rc < 0) { /* not accepted: cb will not run */
        x->fop = NULL;
        free(x->fbuf);
        x->fbuf = NULL;
    }
    return rc;
}

static size_t tcp_write_queue_size(const kb_transport_t *t)
{
    const tcp_t *x = (const tcp_t *)t;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&x->tcp) +
           (x->fop ? x->fleft : 0);
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
    if (x->fop) file_finish(x, UV_ECANCELED); /* waited for writes libuv has cancelled */
    if (x->close_cb) x->close_cb(&x->t);
}

static void tcp_close(kb_transport_t *t, void (*cb)(kb_transport_t *t))
{
    tcp_t *x = (tcp_t *)t;
    x->close_cb = cb;
    x->closing = true;
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
    .write_file = tcp_write_file,
    .write_queue_size = tcp_write_queue_size,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .peer_addr = tcp_peer_addr,
    .free = tcp_free,
};

/* ------------------------------------------------------------------------------------------ */
/* write_file through write: bounded chunks (TLS, and any transport without its own)            */

typedef struct {
    kb_twrite_t inner;  /* our write of the current chunk */
    kb_twrite_t *outer; /* the caller's file op */
    kb_transport_t *t;
    int fd;
    int64_t off;
    size_t left;
    uint8_t buf[KB_FILE_CHUNK];
} fcopy_t;

static int fcopy_next(fcopy_t *fc);

static void fcopy_on_write(kb_twrite_t *w, int status)
{
    fcopy_t *fc = w->data;
    int rc = status;
    if (rc == 0 && fc->left > 0 && (rc = fcopy_next(fc)) == 0) return;
    kb_twrite_t *outer = fc->outer;
    free(fc);
    outer->cb(outer, rc);
}

static int fcopy_next(fcopy_t *fc)
{
    size_t n = fc->left < KB_FILE_CHUNK ? fc->left : KB_FILE_CHUNK;
    if (pread_all(fc->fd, fc->buf, n, fc->off) != 0) return UV_EIO;
    fc->off += (int64_t)n;
    fc->left -= n;
    uv_buf_t b = uv_buf_init((char *)fc->buf, (unsigned)n);
    fc->inner.data = fc;
    return fc->t->ops->write(fc->t, &fc->inner, &b, 1, fcopy_on_write);
}

int kb_transport_write_file_copy(kb_transport_t *t, kb_twrite_t *w, int fd, int64_t off,
                                 size_t len, kb_twrite_cb cb)
{
    if (len == 0) return UV_EINVAL;
    fcopy_t *fc = malloc(sizeof *fc); /* owned by the op until its last chunk is written */
    if (!fc) return UV_ENOMEM;
    *fc = (fcopy_t){.outer = w, .t = t, .fd = fd, .off = off, .left = len};
    w->cb = cb;
    w->len = len;
    int rc = fcopy_next(fc);
    if (rc < 0) free(fc); /* not accepted: cb will not run */
    return rc;
}

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

/*
 * Transport: the byte pipe under a connection. conn.c frames and answers requests; it never
 * touches a socket. A transport turns whatever the wire carries (TCP bytes now, TLS records
 * next) into plaintext for the framer, and the connection's responses back into wire bytes.
 *
 * Contract (every implementation keeps it; conn.c relies on nothing else):
 *
 *   Creation  A listener accepts through its factory (kb_transport_factory_t.accept), which
 *             takes the pending connection off the listening socket and returns a transport
 *             owned by the caller until close. Security handshakes (TLS) happen inside the
 *             transport after accept; the connection sees plaintext only.
 *
 *   Reading   read_start(t) asks for plaintext. The transport calls ev->alloc(ud, &buf) for a
 *             place to put it and then ev->read(ud, buf, nread) with nread > 0 plaintext bytes,
 *             nread == 0 (nothing this time; the buffer is handed back unused) or nread < 0
 *             (UV_EOF, a socket error, a failed handshake: the connection closes). alloc may
 *             return an empty buffer (out of memory): the transport then reports UV_ENOBUFS.
 *             read_stop(t) pauses delivery (backpressure); after read_stop no ev->read arrives
 *             until the next read_start. Neither call ever calls back synchronously: plaintext
 *             the transport already holds (TLS records decrypted ahead) is delivered from the
 *             loop after read_start returns. The transport decides when bytes are readable: a
 *             TLS transport may read from the socket while the connection is paused (to finish
 *             a handshake or a renegotiation) as long as it does not deliver plaintext.
 *
 *   Writing   write(t, w, bufs, n, cb): sends the buffers in order after every earlier write.
 *             The bufs array may live on the caller's stack, but the bytes it points to stay
 *             untouched and alive until cb(w, status) runs; w is caller-owned storage (embed
 *             it in the request) whose `uv` and `next` fields belong to the transport while
 *             the write is in flight. cb runs exactly once per accepted write, from the loop,
 *             never inside write(); status < 0 means the bytes may not have reached the peer.
 *             write() returning < 0 means the write was not accepted and cb will not run.
 *             write_queue_size(t) is the number of wire bytes accepted but not yet handed to
 *             the kernel (a TLS transport counts its ciphertext), for write deadlines.
 *
 *   Files     write_file(t, w, fd, off, len, cb): sends len bytes of the file fd from off, in
 *             order after every earlier write, then cb(w, status) as for write. The caller
 *             keeps fd open and the range unchanged until cb, and issues NO other write or
 *             write_file on t until cb has run (the connection waits: conn.c). TCP sends
 *             with sendfile from the page cache; a transport that must see the bytes (TLS)
 *             reads them in bounded chunks into one buffer (kb_transport_write_file_copy),
 *             so a large range never sits in memory whole.
 *
 *   Shutdown  shutdown(t): no more writes; the peer sees an orderly end (TCP FIN, TLS
 *             close_notify) once the queued writes are out. Optional for a caller.
 *
 *   Close     close(t, cb): stop everything now. Every write still in flight completes with
 *             status UV_ECANCELED before cb(t) runs; no ev callback runs after close(). cb is
 *             where the caller frees t (with t->ops->free); it always runs from the loop.
 *
 *   Identity  When the transport learns who the peer is (TLS client certificate), it calls
 *             ev->identity(ud, &id) once, before delivering the first plaintext byte, so the
 *             connection (and auth/) can set the principal before any request is read. A plain
 *             TCP transport never calls it. peer_addr(t, ss) fills the peer's socket address.
 *
 * Threads: loop thread only. Ownership: the transport owns its socket handle and any buffers
 * of its own (ciphertext); it never frees a buffer the caller passed it.
 */
#ifndef KB_TRANSPORT_H
#define KB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/kb.h"

typedef struct kb_transport kb_transport_t;
typedef struct kb_twrite kb_twrite_t;

typedef void (*kb_twrite_cb)(kb_twrite_t *w, int status);

/* One write, embedded by the caller (a request wrapper). */
struct kb_twrite {
    uv_write_t uv;          /* transport's: the socket write that carries these bytes */
    struct kb_twrite *next; /* transport's: its own queues */
    kb_twrite_cb cb;        /* transport's copy of the callback */
    size_t len;             /* transport's: plaintext bytes in this write */
    void *data;             /* caller's */
};

/* What the transport learned about the peer during its handshake (TLS). */
typedef struct {
    const char *subject;  /* the client certificate's subject DN (RFC 2253), or NULL */
    const void *cert;     /* implementation object (OpenSSL X509 *), valid during the call */
    const char *protocol; /* "TLSv1.3", ... or NULL */
} kb_peer_identity_t;

/* Transport → connection. ud is the connection. */
typedef struct {
    void (*alloc)(void *ud, uv_buf_t *buf);
    void (*read)(void *ud, const uv_buf_t *buf, ssize_t nread);
    void (*identity)(void *ud, const kb_peer_identity_t *id); /* may be NULL */
} kb_transport_events_t;

typedef struct {
    const char *name; /* "tcp", "tls" */
    int (*read_start)(kb_transport_t *t);
    int (*read_stop)(kb_transport_t *t);
    int (*write)(kb_transport_t *t, kb_twrite_t *w, const uv_buf_t *bufs, unsigned n,
                 kb_twrite_cb cb);
    int (*write_file)(kb_transport_t *t, kb_twrite_t *w, int fd, int64_t off, size_t len,
                      kb_twrite_cb cb);
    size_t (*write_queue_size)(const kb_transport_t *t);
    int (*shutdown)(kb_transport_t *t);
    void (*close)(kb_transport_t *t, void (*cb)(kb_transport_t *t));
    int (*peer_addr)(const kb_transport_t *t, struct sockaddr_storage *ss);
    void (*free)(kb_transport_t *t);
} kb_transport_ops_t;

/* The common head of every transport; implementations embed it first. */
struct kb_transport {
    const kb_transport_ops_t *ops;
    const kb_transport_events_t *ev; /* set by kb_transport_bind before read_start */
    void *ud;
    void *data; /* the caller's (the connection), for close callbacks */
};

/*
 * How a listener makes transports. accept takes one pending connection off server (its
 * uv_listen callback fired) and returns a new transport in *out, owned by the caller; < 0 when
 * nothing could be accepted (the pending connection, if any, is dropped). ud is the factory's
 * per-listener state (certificates, contexts), NULL for TCP.
 */
typedef struct {
    const char *name;
    int (*accept)(void *ud, uv_loop_t *loop, uv_stream_t *server, kb_transport_t **out);
    void *ud;
} kb_transport_factory_t;

/* The plain TCP transport (transport_tcp.c). */
extern const kb_transport_factory_t kb_transport_tcp_factory;

/*
 * The factory for a listener's security protocol, or NULL with the reason in why when this
 * build cannot serve it. PLAINTEXT and SASL_PLAINTEXT run on TCP; SSL and SASL_SSL need the
 * TLS transport (not built yet: refused at configuration time, naming the listener); SASL
 * runs above the transport (broker/auth/sasl.c).
 */
const kb_transport_factory_t *kb_transport_for(int security_protocol, char *why, size_t whylen);

/* write_file for any transport through its own write: pread into one buffer of
 * KB_FILE_CHUNK bytes, write it, and read the next chunk once it is written. */
#define KB_FILE_CHUNK (64 * 1024)
int kb_transport_write_file_copy(kb_transport_t *t, kb_twrite_t *w, int fd, int64_t off,
                                 size_t len, kb_twrite_cb cb);

/* Attaches the connection's callbacks; call once before read_start. */
static inline void kb_transport_bind(kb_transport_t *t, const kb_transport_events_t *ev, void *ud)
{
    t->ev = ev;
    t->ud = ud;
}

#endif

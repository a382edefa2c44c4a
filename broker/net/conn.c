/*
 * One client connection: transport → frame → request → dispatch → in-order responses. The
 * bytes come and go through a kb_transport_t (transport.h: TCP now, TLS next); nothing here
 * touches a socket.
 *
 * Ownership:
 *   - kb_conn_t is owned by the broker while open. Once closed it lives on (unlinked) until
 *     its transport has closed AND every request that still points at it is freed
 *     (live_reqs == 0), because a pending handler may complete its request later. The
 *     transport is the connection's and is freed with it.
 *   - A request (struct req_impl) is owned by the connection's queue until it is handed to
 *     the transport's write, then by the write until its callback; a request still pending
 *     when the connection closes is owned by its handler until kb_req_complete.
 *
 * Backpressure: reading stops while MAX_QUEUED requests are queued or being written, or
 * MAX_UNSENT response bytes are being written, and resumes below half of each; and while the
 * broker holds queued.max.request.bytes of requests (limits.h), until answers free some. Bytes
 * already read but not yet framed stay in rbuf meanwhile; an empty rbuf is given back, so an
 * idle connection holds no buffer.
 *
 * Limits (limits.h): kb_conn_sweep closes a connection idle past connections.max.idle.ms, one
 * whose current frame started arriving more than socket.read.timeout.ms ago, and one whose
 * queued responses made no progress for socket.write.timeout.ms. Closing cancels held
 * requests at once (req->on_cancel), so a long poll or a held JoinGroup is not kept for a
 * client that is gone.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/audit.h"
#include "broker/auth/sasl.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "broker/net/conn_int.h"

#define RBUF_SIZE (64 * 1024)
/* A frame with at least this much still to come is read straight into its own buffer
 * (kb_framer_direct): a Produce's record bytes are then never copied before the append.
 * Smaller rests go through rbuf, so one read can carry several small pipelined frames. */
#define DIRECT_MIN (16 * 1024)
/* After a frame read in place, the next is likely as big: its first read takes only this
 * much (length, header and the start of the body) into rbuf, so what is copied from rbuf
 * into the frame is 1 KiB, not 64, and the rest lands in place. A stream that turns to small
 * frames loses one short read: peek ends with the first frame that was not read in place. */
#define PEEK_SIZE 1024
#define MAX_QUEUED 256 /* requests queued or being written */
#define MAX_UNSENT (8 * 1024 * 1024)
/* Decoded structs are bigger than their wire form and responses are built in the arena too,
 * but a frame whose counts are legal yet absurd must not make us allocate without bound. */
#define ARENA_LIMIT(frame_len) ((size_t)16 * 1024 * 1024 + 4 * (frame_len))

static void conn_process(kb_conn_t *c);
static void conn_flush(kb_conn_t *c);
static void out_pump(kb_conn_t *c);
static void audit_pass_end(kb_conn_t *c, kb_req_t *req);

const char *kb_conn_peer(const kb_conn_t *conn)
{
    return conn ? conn->peer : "?";
}

const kb_listener_t *kb_conn_listener(const kb_conn_t *conn)
{
    return conn->listener;
}

const kb_principal_t *kb_conn_principal(const kb_conn_t *conn)
{
    static const kb_principal_t none = {"User", "ANONYMOUS"};
    return conn ? &conn->principal : &none;
}

int kb_conn_set_principal(kb_conn_t *conn, const char *type, const char *name)
{
    size_t tl = strlen(type), nl = strlen(name);
    if (tl >= sizeof conn->principal.type || nl >= sizeof conn->principal.name) return K_ERR_INVAL;
    memcpy(conn->principal.type, type, tl + 1);
    memcpy(conn->principal.name, name, nl + 1);
    return 0;
}

kb_sasl_conn_t **kb_conn_sasl_slot(kb_conn_t *conn)
{
    return &conn->sasl;
}

bool kb_conn_sasl_required(const kb_conn_t *conn)
{
    return conn->sasl_required;
}

static void close_if_flushed(kb_conn_t *c)
{
    if (c->close_when_flushed && !c->closing && c->head == NULL && c->writing == 0)
        kb_conn_close(c);
}

void kb_conn_close_when_flushed(kb_conn_t *conn)
{
    conn->close_when_flushed = true;
    kb_conn_stop_reading(conn);
}

kb_conn_counters_t *kb_conn_counters(kb_conn_t *conn)
{
    return conn ? &conn->ctr : NULL;
}

kb_conn_t *kb_conn_next(const kb_conn_t *conn)
{
    return conn->next;
}

bool kb_conn_idle(const kb_conn_t *conn)
{
    return conn->head == NULL && conn->unsent == 0;
}

static void conn_maybe_free(kb_conn_t *c)
{
    if (!c->handle_closed || c->live_reqs > 0) return;
    kb_framer_deinit(&c->framer);
    kb_sasl_conn_free(c->sasl);
    free(c->rbuf);
    if (c->t) c->t->ops->free(c->t);
    free(c);
}

static void req_free(kb_req_t *req)
{
    struct req_impl *impl = (struct req_impl *)req;
    kb_conn_t *c = req->conn;
    if (!impl->frame_dropped)
        c->broker->net.queued_bytes -= (int64_t)req->frame_len;
    kb_net_pool_freed(c->broker);
    kb_req_drop_pieces(req); /* the pieces live in the arena: before it goes */
    kp_arena_deinit(&req->arena);
    free(req->frame);
    kp_buf_deinit(&req->resp);
    free(impl);
    c->live_reqs--;
    conn_maybe_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Throttling (client quotas)                                                                   */

static void on_mute_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Ends a throttle: held answers go, the timer is closed (c closing) or stopped. */
static void mute_end(kb_conn_t *c)
{
    c->muted = false;
    int n = c->n_delayed;
    c->n_delayed = 0;
    for (int i = 0; i < n; i++)
        kb_req_release(c->delayed[i], false);
    if (c->mute_timer && c->closing) {
        uv_timer_stop(c->mute_timer);
        uv_close((uv_handle_t *)c->mute_timer, on_mute_timer_closed);
        c->mute_timer = NULL;
    }
}

static void conn_wake(kb_conn_t *c);

static void on_mute_timer(uv_timer_t *t)
{
    kb_conn_t *c = t->data;
    c->live_reqs++; /* releasing answers may close c */
    mute_end(c);
    if (!c->closing) conn_wake(c);
    c->live_reqs--;
    conn_maybe_free(c);
}

void kb_conn_throttle(kb_conn_t *c, int64_t ms, kb_req_t *delay)
{
    if (!c || c->closing || ms <= 0) return;
    int64_t until = kb_mono_ms() + ms;
    if (!c->mute_timer) {
        if (!(c->mute_timer = malloc(sizeof *c->mute_timer))) return; /* not throttled */
        uv_timer_init(c->broker->loop, c->mute_timer);
        c->mute_timer->data = c;
    }
    if (!c->muted || until > c->mute_until_ms) {
        c->mute_until_ms = until;
        uv_timer_start(c->mute_timer, on_mute_timer, (uint64_t)(until - kb_mono_ms()), 0);
    }
    c->muted = true;
    if (c->reading) c->t->ops->read_stop(c->t);
    c->reading = false;
    if (delay && c->n_delayed < (int)(sizeof c->delayed / sizeof c->delayed[0])) {
        kb_req_hold(delay);
        c->delayed[c->n_delayed++] = delay;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Closing                                                                                      */

static void out_drop_all(kb_conn_t *c);

static void on_close(kb_transport_t *t)
{
    kb_conn_t *c = t->data;
    c->handle_closed = true;
    out_drop_all(c); /* every write has been called back: what is left was never handed over */
    conn_maybe_free(c);
}

void kb_conn_close(kb_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    kb_broker_t *b = c->broker;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    b->n_conns--;
    kb_net_ip_del(b, &c->ip);
    b->net.closed_since_trim++;
    if (c->pool_paused) b->net.n_pool_paused--;
    c->pool_paused = false;
    kb_log(KB_LOG_DEBUG, "connection %s closed", c->peer);

    if (c->reading) c->t->ops->read_stop(c->t);
    c->reading = false;
    kb_framer_deinit(&c->framer);
    /* Requests that are done are dropped; pending ones belong to their handler now. */
    c->live_reqs++; /* hold c while freeing requests below */
    kb_req_t *req = c->head;
    c->head = c->tail = NULL;
    c->queued = 0;
    while (req) {
        kb_req_t *next = req->next;
        req->next = NULL;
        if (req->done && req != c->dispatching && req->holds == 0) {
            req_free(req);
        } else {
            req->closed = true;
            void (*cancel)(kb_req_t *) = req->on_cancel;
            req->on_cancel = NULL;
            if (cancel && req != c->dispatching) cancel(req); /* completes (frees) req */
        }
        req = next;
    }
    mute_end(c); /* releases delayed answers: they are closed now, so that frees them */
    c->live_reqs--;
    c->t->ops->close(c->t, on_close);
}

void kb_conn_hold_reads(kb_conn_t *c, bool hold)
{
    c->hold_reads = hold;
    if (hold) c->paused = true; /* conn_process stops after this frame */
    /* on release, the completion of the held request resumes reading (conn_maybe_resume) */
}

void kb_conn_stop_reading(kb_conn_t *c)
{
    c->draining = true;
    if (c->reading) c->t->ops->read_stop(c->t);
    c->reading = false;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing responses in order                                                                   */

static bool over_limits(const kb_conn_t *c)
{
    return c->queued + c->writing >= MAX_QUEUED || c->unsent >= MAX_UNSENT ||
           kb_net_pool_full(c->broker);
}

static bool under_resume_marks(const kb_conn_t *c)
{
    return c->queued + c->writing <= MAX_QUEUED / 2 && c->unsent <= MAX_UNSENT / 2;
}


/* Paused until queued.max.request.bytes has room again (kb_conn_pool_resume wakes c). */
static void pool_pause(kb_conn_t *c)
{
    c->paused = true;
    if (!c->pool_paused) c->broker->net.n_pool_paused++;
    c->pool_paused = true;
}

static void conn_maybe_resume(kb_conn_t *c)
{
    if (c->closing || c->draining || !c->paused || c->hold_reads || c->audit_waits ||
        !under_resume_marks(c))
        return;
    if (kb_net_pool_full(c->broker)) {
        pool_pause(c);
        return;
    }
    c->paused = false;
    conn_wake(c);
}

/* Not paused: frame what is buffered and read again, unless a throttle holds c. */
static void conn_wake(kb_conn_t *c)
{
    if (c->processing || c->muted || c->draining) return; /* a running conn_process goes on */
    conn_process(c);
    if (!c->closing && !c->paused && !c->muted && !c->reading) {
        if (c->t->ops->read_start(c->t) == 0)
            c->reading = true;
        else
            kb_conn_close(c);
    }
}

/*
 * Writing is a scatter list per response: resp's bytes up to each file piece from memory, the
 * piece from its file (write_file: sendfile on TCP), and so on. Every answered request joins
 * the out list; out_pump hands the transport one writev of everything in memory up to the
 * next file piece, across as many pipelined responses as are ready (so N small answers cost
 * one write, not N), then the piece; after a piece nothing more is written until it is done
 * (the transport's write_file contract). Writes complete in order, and each op names the
 * last request it finishes (upto): those are freed when it completes.
 */
#define OUT_IOV 64

typedef struct {
    kb_twrite_t w;
    kb_conn_t *c;
    kb_req_t *upto; /* the last request this write finishes, or NULL */
    bool file;
} out_op_t;

static void out_free_head(kb_conn_t *c)
{
    kb_req_t *req = c->out_head;
    c->out_head = req->next;
    if (!c->out_head) c->out_tail = NULL;
    if (c->out_cur == req) c->out_cur = NULL;
    req->next = NULL;
    c->unsent -= ((struct req_impl *)req)->out_len;
    c->writing--;
    req_free(req);
}

/* Frees the out list up to and including upto (written, or cancelled by the close). */
static void out_done(kb_conn_t *c, kb_req_t *upto)
{
    while (upto && c->out_head) {
        bool last = c->out_head == upto;
        out_free_head(c);
        if (last) break;
    }
}

static void out_drop_all(kb_conn_t *c)
{
    c->live_reqs++; /* hold c while freeing */
    while (c->out_head)
        out_free_head(c);
    c->out_cur = NULL;
    c->live_reqs--;
}

static void on_out_write(kb_twrite_t *w, int status)
{
    out_op_t *op = w->data;
    kb_conn_t *c = op->c;
    kb_req_t *upto = op->upto;
    if (op->file) c->file_busy = false;
    free(op);
    c->last_active_ms = c->write_progress_ms = kb_mono_ms();
    c->live_reqs++; /* keep c alive across req_free */
    out_done(c, upto);
    if (status < 0 && !c->closing) {
        kb_log(KB_LOG_DEBUG, "write to %s failed: %s", c->peer, uv_strerror(status));
        kb_conn_close(c);
    } else if (!c->closing) {
        out_pump(c);
        conn_maybe_resume(c);
        close_if_flushed(c);
    }
    c->live_reqs--;
    conn_maybe_free(c);
}

/* Hands one write (iov, or the file piece pc) to the transport; < 0: c is closing. */
static int out_issue(kb_conn_t *c, const uv_buf_t *iov, unsigned n, size_t bytes,
                     const kb_piece_t *pc, kb_req_t *upto)
{
    out_op_t *op = malloc(sizeof *op); /* owned by the transport's write until on_out_write */
    int rc = K_ERR_NOMEM;
    if (op) {
        *op = (out_op_t){.c = c, .upto = upto, .file = pc != NULL};
        op->w.data = op;
        if (!pc)
            rc = c->t->ops->write(c->t, &op->w, iov, n, on_out_write);
        else if (c->t->ops->write_file)
            rc = c->t->ops->write_file(c->t, &op->w, pc->fd, pc->off, pc->len, on_out_write);
        else
            rc = kb_transport_write_file_copy(c->t, &op->w, pc->fd, pc->off, pc->len,
                                              on_out_write);
    }
    if (rc < 0) {
        free(op);
        kb_log(KB_LOG_DEBUG, "write to %s refused: %s", c->peer, k_strerror(rc));
        kb_conn_close(c); /* what was not handed over is freed with the transport */
        return rc;
    }
    c->bytes_submitted += pc ? pc->len : bytes;
    if (pc) c->file_busy = true;
    return 0;
}

static void out_advance(kb_conn_t *c)
{
    c->out_cur = c->out_cur->next;
    c->out_mem = 0;
    c->out_piece = 0;
}

/* One writev of the memory bytes ready, up to the next file piece. */
static int out_gather(kb_conn_t *c)
{
    uv_buf_t iov[OUT_IOV];
    unsigned n = 0;
    size_t bytes = 0;
    kb_req_t *req, *upto = NULL;
    while ((req = c->out_cur) && n < OUT_IOV) {
        bool piece = c->out_piece < req->npieces;
        size_t stop = piece ? req->pieces[c->out_piece].at : req->resp.len;
        if (stop > c->out_mem) {
            iov[n++] = uv_buf_init((char *)req->resp.data + c->out_mem,
                                   (unsigned)(stop - c->out_mem));
            bytes += stop - c->out_mem;
            c->out_mem = stop;
        }
        if (piece) break;
        upto = req;
        out_advance(c);
    }
    return n ? out_issue(c, iov, n, bytes, NULL, upto) : 0;
}

static void out_pump(kb_conn_t *c)
{
    while (!c->closing && c->out_cur && !c->file_busy) {
        if (out_gather(c) < 0) return;
        kb_req_t *req = c->out_cur;
        if (!req || c->out_piece >= req->npieces || c->out_mem != req->pieces[c->out_piece].at)
            continue; /* more memory first (the iov was full), or all done */
        const kb_piece_t *pc = &req->pieces[c->out_piece++];
        kb_req_t *upto = NULL;
        if (c->out_piece == req->npieces && c->out_mem == req->resp.len) {
            upto = req; /* the piece is the last of it */
            out_advance(c);
        }
        if (out_issue(c, NULL, 0, 0, pc, upto) < 0) return;
    }
}

/* Moves answered requests, in order, to the out list; writes unless conn_process is running
 * (it writes once the frames it read are answered: pipelined answers share a writev). */
static void conn_flush(kb_conn_t *c)
{
    while (!c->closing && c->head && c->head->done && c->head->holds == 0) {
        kb_req_t *req = c->head;
        c->head = req->next;
        if (!c->head) c->tail = NULL;
        req->next = NULL;
        c->queued--;
        if (req->no_response) {
            kb_counters_request_done(req);
            req_free(req);
            continue;
        }
        uint64_t size = kb_req_resp_size(req);
        if (req->resp.err || req->resp.len < 4 || size > INT32_MAX ||
            req->pieces_placed != req->npieces) {
            kb_log(KB_LOG_ERROR, "could not build the response to %s (api %d v%d): closing",
                   c->peer, req->hdr.api_key, req->hdr.api_version);
            req_free(req);
            kb_conn_close(c);
            return;
        }
        kp_buf_patch_i32(&req->resp, 0, (int32_t)size);
        kb_counters_request_done(req);
        /* The answer is encoded (resp and file pieces): nothing reads the request's frame
         * again, so it goes now rather than when the write completes. libuv reads up to 32
         * times per wakeup; with 1 MiB Produce frames read in place, keeping each until its
         * answer's write callback held ~16 MiB of frames at once. */
        free(req->frame);
        req->frame = NULL;
        ((struct req_impl *)req)->out_len = (size_t)size + 4;
        c->unsent += (size_t)size + 4;
        c->writing++;
        if (c->out_tail)
            c->out_tail->next = req;
        else
            c->out_head = req;
        c->out_tail = req;
        if (!c->out_cur) {
            c->out_cur = req;
            c->out_mem = 0;
            c->out_piece = 0;
        }
    }
    if (!c->processing) out_pump(c);
}

void kb_req_complete(kb_req_t *req)
{
    kb_conn_t *c = req->conn;
    req->done = true;
    if (c->dispatching == req)
        return; /* completed inside its own handler: the dispatcher takes over */
    if (req->audit_state) audit_pass_end(c, req); /* a change's intents or outcome */
    if (req->closed) {
        if (req->holds == 0) req_free(req); /* else the last kb_req_release frees it */
        return;
    }
    conn_flush(c);
    conn_maybe_resume(c);
}

int kb_req_drop_frame(kb_req_t *req)
{
    struct req_impl *impl = (struct req_impl *)req;
    if (impl->frame_dropped || req->audit_state) /* the audit trail may decode it again */
        return 0;
    kp_str_t *id = &req->hdr.client_id; /* the one header view read after the handler */
    if (id->ptr && id->len > 0) {
        char *copy = kp_arena_alloc(&req->arena, (size_t)id->len);
        if (!copy)
            return K_ERR_NOMEM;
        memcpy(copy, id->ptr, (size_t)id->len);
        id->ptr = copy;
    }
    free(req->frame);
    req->frame = NULL;
    kp_reader_init(&req->body, NULL, 0);
    impl->frame_dropped = true;
    req->broker->net.queued_bytes -= (int64_t)req->frame_len; /* frame_len stays: counters */
    kb_net_pool_freed(req->broker);
    return 0;
}

void kb_req_hold(kb_req_t *req)
{
    req->holds++;
}

void kb_req_release(kb_req_t *req, bool close_conn)
{
    kb_conn_t *c = req->conn;
    req->holds--;
    if (req->closed) {
        if (req->holds == 0 && req->done && c->dispatching != req) req_free(req);
        return;
    }
    if (close_conn) {
        kb_log(KB_LOG_WARN, "closing %s: the audit record of its request is not durable",
               c->peer);
        kb_conn_close(c); /* frees req if done; else the handler's kb_req_complete does */
        return;
    }
    if (req->holds == 0 && c->dispatching != req) {
        conn_flush(c);
        conn_maybe_resume(c);
    }
}

void kb_req_complete_no_response(kb_req_t *req)
{
    req->no_response = true;
    kb_req_complete(req);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading requests                                                                             */

/* Closes c for a bad request, after handing the transport the answers to the requests before
 * it (conn_process defers writing to batch them; libuv writes at once when it can). */
static void close_bad(kb_conn_t *c)
{
    bool was = c->processing;
    c->processing = false;
    out_pump(c);
    c->processing = was;
    kb_conn_close(c);
}

/* A pass of req's handler is done and it has audit state: its change intents make the
 * connection wait (read nothing more) until the pass is run again (audit.h). */
static void audit_pass_end(kb_conn_t *c, kb_req_t *req)
{
    if (kb_audit_request_done(req) > 0) c->audit_waits++;
}

/* After a handler returned rc (on_frame, kb_req_replay): on_frame's return value. */
static int pass_end(kb_conn_t *c, kb_req_t *req, int rc)
{
    if (req->closed) {
        /* The connection closed while the handler ran (a write failed). */
        if (rc != KB_PENDING) req->done = true;
        if (req->done && req->audit_state) audit_pass_end(c, req);
        if (req->done && req->holds == 0) req_free(req); /* else the last release frees it */
        return K_ERR_CLOSED;
    }
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "closing %s after api %d v%d (correlation %d): %s", c->peer,
               req->hdr.api_key, req->hdr.api_version, req->hdr.correlation_id, k_strerror(rc));
        kb_counters_request_closed(req);
        req->done = true;
        if (req->audit_state) {
            if (!req->error_code) req->error_code = -1; /* UNKNOWN_SERVER_ERROR */
            audit_pass_end(c, req); /* held: the close below leaves req to the release */
        }
        close_bad(c);
        return K_ERR_CLOSED;
    }
    if (rc == KB_DONE) {
        req->done = true;
    } else if (rc == KB_NO_RESPONSE) {
        req->done = true;
        req->no_response = true;
    }
    if (req->done && req->audit_state) audit_pass_end(c, req); /* intents, or the outcome */
    conn_flush(c);
    if (c->closing) return K_ERR_CLOSED;
    if (c->close_when_flushed) return 1; /* read nothing more */
    return over_limits(c) || c->hold_reads || c->audit_waits || c->muted ? 1 : 0;
}

/* Takes ownership of frame. Returns 0 to go on, 1 to pause, < 0 when the connection closed. */
static int on_frame(void *ud, uint8_t *frame, size_t len)
{
    kb_conn_t *c = ud;
    struct req_impl *impl = malloc(sizeof *impl);
    if (!impl) {
        free(frame);
        kb_log(KB_LOG_ERROR, "out of memory for a request from %s: closing", c->peer);
        kb_conn_close(c);
        return K_ERR_NOMEM;
    }
    kb_req_t *req = &impl->req;
    memset(impl, 0, offsetof(struct req_impl, arena0)); /* the req and the impl's own fields */
    req->broker = c->broker;
    req->conn = c;
    req->frame = frame;
    req->frame_len = len;
    kp_arena_init(&req->arena, impl->arena0, sizeof impl->arena0, ARENA_LIMIT(len));
    kp_buf_init(&req->resp);
    c->live_reqs++;
    c->broker->net.queued_bytes += (int64_t)len;
    c->last_active_ms = kb_mono_ms();
    c->frame_start_ms = 0; /* a frame is complete; the next one starts its own clock */

    kp_reader_init(&req->body, frame, len);
    if (c->sasl_required && kb_sasl_expects_raw(c)) {
        /* SaslHandshake v0 was answered: this frame is a bare token, and so is its answer. */
        req->raw_sasl = true;
        req->hdr.api_key = KP_API_SASL_AUTHENTICATE;
        kp_put_i32(&req->resp, 0);
    } else if (kp_req_header_decode(&req->body, &req->hdr) < 0) {
        kb_log(KB_LOG_WARN, "malformed request header from %s: closing", c->peer);
        req_free(req);
        close_bad(c);
        return K_ERR_MALFORMED;
    } else {
        kp_put_i32(&req->resp, 0); /* size, patched when sent */
        kp_resp_header_encode(&req->resp, req->hdr.api_key, req->hdr.api_version,
                              req->hdr.correlation_id);
    }
    kb_counters_request_start(req);

    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->queued++;

    ((struct req_impl *)req)->body0 = req->body;
    ((struct req_impl *)req)->resp0 = req->resp.len;
    c->dispatching = req;
    int rc = kb_dispatch(req);
    c->dispatching = NULL;
    return pass_end(c, req, rc);
}

void kb_req_replay(kb_req_t *req)
{
    kb_conn_t *c = req->conn;
    if (c->audit_waits > 0) c->audit_waits--;
    kb_req_rerun(req);
}

void kb_req_rerun(kb_req_t *req)
{
    struct req_impl *impl = (struct req_impl *)req;
    kb_conn_t *c = req->conn;
    kb_req_drop_pieces(req);
    req->npieces = req->pieces_placed = 0;
    req->resp.len = impl->resp0;
    req->body = impl->body0;
    req->done = req->no_response = false;
    req->error_code = 0;
    req->audit_detail = NULL; /* the handler adds it again */
    req->handler_data = NULL;
    c->live_reqs++; /* c outlives a close inside the handler */
    c->dispatching = req;
    int rc = kb_dispatch(req);
    c->dispatching = NULL;
    pass_end(c, req, rc);
    conn_maybe_resume(c);
    c->live_reqs--;
    conn_maybe_free(c);
}

/* The end of a read's processing: write the answers to every frame it completed (one writev
 * where possible), stop reading if paused, and let go of c. */
static void process_end(kb_conn_t *c)
{
    c->processing = false;
    out_pump(c);
    if ((c->paused || c->muted) && c->reading && !c->closing) {
        c->t->ops->read_stop(c->t);
        c->reading = false;
    }
    c->live_reqs--;
    conn_maybe_free(c);
}

/* on_frame said stop: is it backpressure (paused until answers drain) or only a throttle
 * (muted: its timer wakes c)? */
static bool pause_for(const kb_conn_t *c)
{
    return !c->muted || over_limits(c) || c->close_when_flushed || c->hold_reads ||
           c->audit_waits;
}

static void conn_process(kb_conn_t *c)
{
    c->processing = true;
    c->live_reqs++; /* c must outlive this loop even if it closes inside */
    while (!c->closing && !c->paused && !c->muted && c->rstart < c->rend) {
        if (kb_net_pool_full(c->broker)) { /* no new request while the broker holds enough */
            pool_pause(c);
            break;
        }
        size_t used = 0;
        int rc = kb_framer_feed(&c->framer, c->rbuf + c->rstart, c->rend - c->rstart, &used,
                                on_frame, c);
        c->rstart += used;
        if (rc == K_ERR_TOOLARGE || rc == K_ERR_MALFORMED) {
            kb_log(KB_LOG_WARN,
                   "bad frame size from %s (limit socket.request.max.bytes=%d): "
                   "closing",
                   c->peer, c->broker->cfg.socket_request_max_bytes);
            /* Often a TLS client on a plaintext port: its hello reads as a huge size. */
            kb_audit_connection_failure(c->broker, c->peer, c->listener->name, "KAFKA",
                                        "INVALID_REQUEST");
            close_bad(c);
        } else if (rc < 0 && !c->closing) {
            kb_conn_close(c);
        } else if (rc == 1 && pause_for(c)) {
            c->paused = true;
        }
    }
    if (c->rstart == c->rend) c->rstart = c->rend = 0;
    process_end(c);
}

/* n bytes arrived straight in the framer's buffer (on_alloc gave it out); those past the
 * frame's end (its slack) are the next frames' and go to rbuf, before the frame is handed on. */
static void conn_direct(kb_conn_t *c, size_t n)
{
    c->processing = true;
    c->live_reqs++; /* c must outlive this even if it closes inside */
    c->peek = true;
    size_t rest = c->framer.len - c->framer.have;
    if (n > rest) {
        uint8_t *slack;
        size_t extra = n - rest;
        if (kb_framer_slack(&c->framer, &slack) >= extra && c->rbuf &&
            RBUF_SIZE - c->rend >= extra) { /* on_alloc made sure of both */
            memcpy(c->rbuf + c->rend, slack, extra);
            c->rend += extra;
        } else { /* cannot happen; dropping the bytes would desynchronise the stream */
            kb_conn_close(c);
        }
        n = rest;
    }
    int rc = kb_framer_commit(&c->framer, n, on_frame, c);
    if (rc < 0 && !c->closing)
        kb_conn_close(c);
    else if (rc == 1 && pause_for(c))
        c->paused = true;
    process_end(c);
}

static void on_alloc(void *ud, uv_buf_t *buf)
{
    kb_conn_t *c = ud;
    uint8_t *p;
    size_t n;
    c->direct = false;
    if (c->rstart == c->rend && c->framer.len - c->framer.have >= DIRECT_MIN &&
        kb_framer_direct(&c->framer, &p, &n) == 0 && n > 0) {
        c->direct = true;
        uint8_t *slack;
        size_t room = kb_framer_slack(&c->framer, &slack);
        if (room > 0 && p + n == slack && (c->rbuf || (c->rbuf = malloc(RBUF_SIZE)))) {
            c->rstart = c->rend = 0; /* empty (the condition above) */
            n += room < RBUF_SIZE ? room : RBUF_SIZE;
        }
        *buf = uv_buf_init((char *)p, (unsigned)(n > UINT32_MAX ? UINT32_MAX : n));
        return;
    }
    if (!c->rbuf && !(c->rbuf = malloc(RBUF_SIZE))) {
        *buf = uv_buf_init(NULL, 0); /* the transport reports UV_ENOBUFS to on_read */
        return;
    }
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    bool peek = c->peek && c->rend == 0 && c->framer.hdr_have == 0;
    *buf = uv_buf_init((char *)c->rbuf + c->rend, peek ? PEEK_SIZE : RBUF_SIZE - c->rend);
}

static void on_read(void *ud, const uv_buf_t *buf, ssize_t nread)
{
    (void)buf;
    kb_conn_t *c = ud;
    if (nread < 0) {
        if (nread != UV_EOF)
            kb_log(KB_LOG_DEBUG, "read from %s: %s", c->peer, uv_strerror((int)nread));
        kb_conn_close(c);
        return;
    }
    if (c->direct) {
        c->direct = false;
        if (nread > 0) conn_direct(c, (size_t)nread);
        if (!c->closing && c->rstart < c->rend) conn_process(c); /* the next frame's start */
    } else {
        if (nread > 0) c->peek = false; /* the frame it starts sets peek again if big */
        c->rend += (size_t)nread;
        conn_process(c);
    }
    if (c->closing) return;
    if (c->rstart == c->rend) { /* the framer keeps a partial frame in its own buffer */
        free(c->rbuf);          /* so an idle connection holds no read buffer */
        c->rbuf = NULL;
        c->rstart = c->rend = 0;
    }
    if ((c->rstart < c->rend || c->framer.hdr_have > 0) && c->frame_start_ms == 0)
        c->frame_start_ms = kb_mono_ms();
}

/* ------------------------------------------------------------------------------------------ */

/* TLS client certificate: the principal is its subject, Kafka's default (User:CN=...,OU=...). */
static void on_identity(void *ud, const kb_peer_identity_t *id)
{
    kb_conn_t *c = ud;
    if (!id->subject || !*id->subject) return;
    if (kb_conn_set_principal(c, "User", id->subject) == 0)
        kb_log(KB_LOG_INFO, "%s: TLS client certificate, principal User:%s", c->peer, id->subject);
}

static const kb_transport_events_t conn_events = {on_alloc, on_read, on_identity};

static void peer_name(const kb_transport_t *t, char *out, size_t len)
{
    struct sockaddr_storage ss;
    snprintf(out, len, "?");
    if (t->ops->peer_addr(t, &ss) != 0) return;
    char ip[64] = "?";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, len, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    }
}

static void on_reject_close(kb_transport_t *t)
{
    t->ops->free(t);
}

void kb_conn_accept(kb_broker_t *b, const kb_listener_t *l, kb_transport_t *t)
{
    kb_conn_t *c = calloc(1, sizeof *c); /* owned by the broker's list until closed */
    if (!c) {
        kb_log(KB_LOG_ERROR, "out of memory accepting a connection on %s", l->name);
        t->ops->close(t, on_reject_close);
        return;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    t->ops->peer_addr(t, &ss);
    kb_ipkey_from(&ss, &c->ip);
    if (kb_net_ip_add(b, &c->ip) < 0) {
        free(c);
        t->ops->close(t, on_reject_close);
        return;
    }
    c->broker = b;
    c->listener = l;
    c->t = t;
    c->last_active_ms = c->write_progress_ms = kb_mono_ms();
    t->data = c;
    kb_transport_bind(t, &conn_events, c);
    kb_principal_anonymous(&c->principal);
    c->sasl_required = l->security_protocol == KB_SEC_SASL_PLAINTEXT ||
                       l->security_protocol == KB_SEC_SASL_SSL;
    kb_framer_init(&c->framer, (size_t)b->cfg.socket_request_max_bytes);
    peer_name(t, c->peer, sizeof c->peer);
    c->next = b->conns;
    if (b->conns) b->conns->prev = c;
    b->conns = c;
    b->n_conns++;
    kb_log(KB_LOG_DEBUG, "connection from %s on %s", c->peer, l->name);
    if (t->ops->read_start(t) != 0) {
        kb_conn_close(c);
        return;
    }
    c->reading = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Limits (limits.h)                                                                            */

static const char *const expiry_why[KB_CLOSED_N] = {
    [KB_CLOSED_IDLE] = "idle past connections.max.idle.ms",
    [KB_CLOSED_READ_TIMEOUT] = "a request frame did not arrive within socket.read.timeout.ms",
    [KB_CLOSED_WRITE_TIMEOUT] = "its responses were not read within socket.write.timeout.ms",
};

/* Why c must be closed now (KB_CLOSED_*), or -1. */
static int expired(kb_conn_t *c, int64_t now, const kb_config_t *cfg)
{
    if (c->paused || c->draining || c->muted) /* we stopped reading: the frame's clock is ours, not theirs */
        c->frame_start_ms = c->frame_start_ms ? now : 0;
    else if (c->frame_start_ms && now - c->frame_start_ms >= cfg->socket_read_timeout_ms)
        return KB_CLOSED_READ_TIMEOUT;
    size_t q = c->writing ? c->t->ops->write_queue_size(c->t) : 0;
    /* Progress = more bytes left the transport's queue since the last sweep, whether or not
     * new responses were queued meanwhile (a slow but steady reader is never cut off). */
    uint64_t out = c->bytes_submitted - q;
    if (q == 0 || out > c->bytes_out_seen) c->write_progress_ms = now;
    c->bytes_out_seen = out;
    if (q > 0 && now - c->write_progress_ms >= cfg->socket_write_timeout_ms)
        return KB_CLOSED_WRITE_TIMEOUT;
    bool idle = !c->head && !c->writing && !c->frame_start_ms;
    if (idle && cfg->connections_max_idle_ms >= 0 &&
        now - c->last_active_ms >= cfg->connections_max_idle_ms)
        return KB_CLOSED_IDLE;
    return -1;
}

void kb_conn_sweep(kb_broker_t *b, int64_t now)
{
    kb_conn_t *next;
    for (kb_conn_t *c = b->conns; c; c = next) {
        next = c->next;
        int why = expired(c, now, &b->cfg);
        if (why < 0) continue;
        b->net.closed_total[why]++;
        kb_log(KB_LOG_INFO, "closing %s on %s: %s", c->peer, c->listener->name, expiry_why[why]);
        kb_conn_close(c);
    }
}

void kb_conn_pool_resume(kb_broker_t *b)
{
    kb_conn_t *next;
    for (kb_conn_t *c = b->conns; c && !kb_net_pool_full(b); c = next) {
        next = c->next;
        if (!c->pool_paused) continue;
        c->pool_paused = false;
        b->net.n_pool_paused--;
        conn_maybe_resume(c); /* may close c: it stays allocated until its transport closes */
    }
}

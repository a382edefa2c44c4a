/*
 * The connection's and the request's private layouts (broker/net/conn.c), in their own header
 * only to keep conn.c within the size rule; nothing outside conn.c includes it.
 * Thread: loop thread.
 */
#ifndef KB_CONN_INT_H
#define KB_CONN_INT_H

#include "broker/auth/sasl.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"

struct req_impl {
    kb_req_t req; /* first: a kb_req_t * is a struct req_impl * */
    size_t out_len; /* the whole response (size field and file pieces), counted in unsent */
    kp_reader_t body0; /* the body as the header decode left it, for kb_req_replay */
    size_t resp0;      /* resp's length before the handler's body */
    bool frame_dropped; /* kb_req_drop_frame gave the frame's bytes back to the pool already */
    _Alignas(8) uint8_t arena0[2048]; /* most requests decode without touching the heap */
};

struct kb_conn {
    kb_transport_t *t; /* owned; freed once closed (conn_maybe_free) */
    const kb_listener_t *listener; /* the broker's, outlives the connection */
    kb_broker_t *broker;
    kb_conn_t *prev, *next; /* broker's open list */
    char peer[64];
    kb_principal_t principal; /* User:ANONYMOUS until SASL or a client certificate says more */
    kb_sasl_conn_t *sasl;      /* SASL exchange state (broker/auth/sasl.h), owned; may be NULL */
    bool sasl_required;        /* the listener is SASL_*: authenticate before anything else */
    bool close_when_flushed;   /* failed authentication: close once the answer is written */
    kb_conn_counters_t ctr;   /* broker/core/counters.h */
    kb_framer_t framer;
    uint8_t *rbuf; /* read bytes not yet framed: rbuf[rstart, rend) */
    size_t rstart, rend;
    kb_req_t *head, *tail; /* in request order, not yet handed to the transport */
    int queued;            /* requests in head..tail */
    kb_req_t *out_head, *out_tail; /* answered, being written (in order), until written */
    kb_req_t *out_cur;     /* first of them not yet wholly handed to the transport */
    size_t out_mem;        /* out_cur->resp bytes before this were handed over */
    int out_piece;         /* out_cur's next file piece */
    bool file_busy;        /* a write_file is in flight: nothing else may be written */
    int writing;           /* requests in out_head..out_tail */
    size_t unsent;         /* bytes of those responses, not yet completed */
    int live_reqs;         /* allocated requests that point at this connection */
    kb_req_t *dispatching;
    kb_ipkey_t ip;            /* counted in the broker's per-IP table */
    int64_t last_active_ms;   /* accept, last complete request, last response written */
    int64_t frame_start_ms;   /* first byte of the frame being read, 0 = none */
    int64_t write_progress_ms; /* last time queued responses moved */
    uint64_t bytes_submitted; /* response bytes ever handed to the transport */
    uint64_t bytes_out_seen;  /* of those, taken by the socket as of the last sweep */
    bool pool_paused; /* paused by queued.max.request.bytes (counted in b->net.n_pool_paused) */
    bool reading;  /* the transport's read_start is active */
    bool paused;   /* backpressure */
    bool hold_reads; /* a PLAIN login is being checked off the loop (kb_conn_hold_reads) */
    int audit_waits; /* requests held until their change intents are durable (kb_req_replay) */
    bool draining; /* broker shutdown: never read again */
    bool processing;
    bool direct;   /* the buffer handed to the transport is the framer's (kb_framer_direct) */
    bool peek;     /* the last frame was read in place: read the next one's start short */
    bool closing;
    bool handle_closed;
    /* Client-quota throttle (kb_conn_throttle): no reading until the timer fires. The timer
     * is allocated on the first throttle, owned by c, and freed in its own close callback. */
    bool muted;
    uv_timer_t *mute_timer;
    int64_t mute_until_ms;
    kb_req_t *delayed[8]; /* answers held until the throttle ends (kb_req_hold) */
    int n_delayed;
};

#endif

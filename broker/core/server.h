/*
 * Broker core internals shared by server.c, conn.c and dispatch.c (handlers use kb.h only).
 *
 * Lifetime: kb_broker_new → kb_broker_start (opens the store, starts subsystems, listens) → uv_run → a signal
 * or kb_broker_stop drains, closes every handle and the store, and uv_run returns →
 * kb_broker_free. Thread: the loop thread.
 */
#ifndef KB_SERVER_H
#define KB_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "broker/net/frame.h"
#include "broker/net/limits.h"
#include "broker/net/listener.h"
#include "broker/kb.h"
#include "broker/auth/auth.h"
#include "broker/core/clock.h"
#include "broker/core/subsys.h"

#define DEPOT_VERSION "0.1.0"

struct kb_broker {
    uv_loop_t *loop;
    kb_config_t cfg; /* shallow copy: log_dirs still belong to the caller's config */
    ks_store_t *store;
    kb_listen_sock_t socks[KB_MAX_LISTENERS]; /* one per cfg.listeners[] (listener.c) */
    kb_net_t net;                             /* connection limits (limits.c) */
    uv_poll_t sync_poll; /* on sync_fd, an eventfd the flusher threads write (server.c) */
    int sync_fd;
    atomic_int sync_wake; /* a wake is written and not yet read */
    uv_timer_t tick;
    uv_timer_t drain;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool handles_up; /* the handles above are initialised (and must be closed) */
    bool listening;
    kb_authorizer_fn authz; /* NULL: allow everything (broker/auth/auth.h) */
    void *authz_ud;
    bool authz_probe; /* kb_authorized_operations is asking: not an action (no audit) */
    void *slots[KB_MAX_SUBSYS]; /* per-subsystem state, indexed like kb_subsystems[] */
    int n_up;                   /* kb_subsystems[0..n_up) started and must be closed */
    bool stopping;
    bool finished;
    int64_t drain_deadline_ms;
    kb_conn_t *conns; /* open connections (closing ones are unlinked) */
    int n_conns;
};

int kb_broker_new(const kb_config_t *cfg, uv_loop_t *loop, kb_broker_t **out);
/* Start-up in full: signals, bind, store, subsystems, then listen (server.c says why). */
int kb_broker_start(kb_broker_t *b);
/* Blocks SIGTERM and SIGINT in the calling thread until kb_broker_start installs their
 * handlers; main calls it first thing so that no start-up step dies of the default action. */
void kb_broker_hold_signals(void);
/* Graceful stop: stop accepting and reading, let in-flight requests finish (at most 5 s),
 * then close everything. A second call skips the wait. */
void kb_broker_stop(kb_broker_t *b);
/* Frees what uv_run left behind; call after uv_run returned. NULL is a no-op. */
void kb_broker_free(kb_broker_t *b);
/* The port actually bound by the first listener (useful with port 0). */
int kb_broker_port(const kb_broker_t *b);

/* conn.c */
/* Makes a connection of transport t (ownership passes) accepted on listener l. */
void kb_conn_accept(kb_broker_t *b, const kb_listener_t *l, kb_transport_t *t);
void kb_conn_close(kb_conn_t *conn);
void kb_conn_stop_reading(kb_conn_t *conn);
/* True when nothing is queued or being written. */
bool kb_conn_idle(const kb_conn_t *conn);
kb_conn_t *kb_conn_next(const kb_conn_t *conn);

/* dispatch.c */
/* Runs the handler for req (or the ApiVersions fallback). Returns the handler contract's code;
 * < 0 means the connection must be closed. */
int kb_dispatch(kb_req_t *req);
/* The APIs advertised in ApiVersions: those the codec serves and whose handler is linked. */
typedef struct {
    int16_t key, min_version, max_version;
} kb_api_range_t;
int kb_dispatch_apis(kb_api_range_t *out, int max);

/* h_api_versions.c: the answer to an ApiVersions request whose version is not supported. */
int kb_api_versions_unsupported(kb_req_t *req);

#endif

/*
 * The broker process: one libuv loop, the TCP listener, the store, a 1 s tick, and signals.
 *
 * Shutdown (SIGTERM/SIGINT or kb_broker_stop): stop accepting and reading; wait until every
 * connection has answered what it already read (at most DRAIN_MS); then the handler families
 * release their state (kb_handlers_close), connections close, the store flushes and writes its
 * clean-shutdown marker (ks_store_close), and the remaining handles close so uv_run returns.
 */
#include <netdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/server.h"

#define DRAIN_MS 5000
#define DRAIN_POLL_MS 20

/* Defined by the handler families once they exist (h_fetch.c); optional until then. */
__attribute__((weak)) int kb_handlers_init(kb_broker_t *b);
__attribute__((weak)) void kb_handlers_close(kb_broker_t *b);

uv_loop_t *kb_broker_loop(kb_broker_t *b)
{
    return b->loop;
}

ks_store_t *kb_broker_store(kb_broker_t *b)
{
    return b->store;
}

const kb_config_t *kb_broker_config(kb_broker_t *b)
{
    return &b->cfg;
}

int kb_broker_port(const kb_broker_t *b)
{
    return b->cfg.listen_port;
}

/* ------------------------------------------------------------------------------------------ */

static void store_log(int level, const char *msg, void *ud)
{
    (void)ud;
    kb_log(level, "storage: %s", msg);
}

/* Flusher thread: only wake the loop. */
static void on_sync_ready(void *ud)
{
    kb_broker_t *b = ud;
    uv_async_send(&b->sync_async);
}

static void on_sync_async(uv_async_t *h)
{
    kb_broker_t *b = h->data;
    if (b->store) ks_store_run_completions(b->store);
}

static void on_tick(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    if (b->store) ks_store_tick(b->store, kb_now_ms());
}

static void on_signal(uv_signal_t *s, int signum)
{
    kb_broker_t *b = s->data;
    kb_log(KB_LOG_INFO, "received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    kb_broker_stop(b);
}

static void on_connection(uv_stream_t *server, int status)
{
    kb_broker_t *b = server->data;
    if (status < 0) {
        kb_log(KB_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    if (b->stopping) return;
    kb_conn_accept(b, server);
}

/* ------------------------------------------------------------------------------------------ */

int kb_broker_new(const kb_config_t *cfg, uv_loop_t *loop, kb_broker_t **out)
{
    kb_broker_t *b = calloc(1, sizeof *b);
    if (!b) return K_ERR_NOMEM;
    b->loop = loop;
    b->cfg = *cfg;
    *out = b;
    return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    const char *h = host[0] ? host : "0.0.0.0";
    if (uv_ip4_addr(h, port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0) return 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res) return K_ERR_INVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static int start_listener(kb_broker_t *b)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (resolve(b->cfg.listen_host, b->cfg.listen_port, &ss) < 0) {
        kb_log(KB_LOG_ERROR, "listeners: cannot resolve host '%s'", b->cfg.listen_host);
        return K_ERR_INVAL;
    }
    uv_tcp_init(b->loop, &b->listener);
    b->listener.data = b;
    b->listening = true;
    int rc = uv_tcp_bind(&b->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&b->listener, 511, on_connection);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "cannot listen on %s:%d: %s", b->cfg.listen_host, b->cfg.listen_port,
               uv_strerror(rc));
        return K_ERR_IO;
    }
    int n = sizeof ss;
    if (uv_tcp_getsockname(&b->listener, (struct sockaddr *)&ss, &n) == 0) {
        int port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        if (b->cfg.advertised_port == 0) /* listeners=...:0 without advertised.listeners */
            b->cfg.advertised_port = port;
        b->cfg.listen_port = port;
    }
    return 0;
}

static int open_store(kb_broker_t *b)
{
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.dirs = (const char *const *)b->cfg.log_dirs;
    o.n_dirs = b->cfg.n_log_dirs;
    o.dirs_max_bytes = b->cfg.dirs_max_bytes;
    o.full_policy = b->cfg.full_policy;
    o.max_open_files = b->cfg.max_open_files;
    o.node_id = b->cfg.node_id;
    o.defaults = b->cfg.topic_defaults;
    o.log = store_log;
    o.log_ud = b;
    o.on_sync_ready = on_sync_ready;
    o.producer_id_expiration_ms = b->cfg.producer_id_expiration_ms;
    o.cleaner = b->cfg.cleaner;
    o.sync_ud = b;
    int rc = ks_store_open(&o, &b->store);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "cannot open log.dirs (%s): %s", b->cfg.log_dirs[0], k_strerror(rc));
        b->store = NULL;
    }
    return rc;
}

/* Segment files (max.open.files) and client sockets share the process's descriptor limit:
 * take the whole hard limit, and say so when it is tight. */
static void raise_fd_limit(const kb_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_open_files + 256)
        kb_log(KB_LOG_WARN,
               "the descriptor limit (%llu) leaves little room for connections beside "
               "max.open.files=%d; raise ulimit -n or lower max.open.files",
               (unsigned long long)rl.rlim_cur, cfg->max_open_files);
}

int kb_broker_start(kb_broker_t *b)
{
    raise_fd_limit(&b->cfg);
    uv_async_init(b->loop, &b->sync_async, on_sync_async);
    b->sync_async.data = b;
    uv_timer_init(b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_init(b->loop, &b->drain);
    b->drain.data = b;
    uv_signal_init(b->loop, &b->sig_term);
    b->sig_term.data = b;
    uv_signal_init(b->loop, &b->sig_int);
    b->sig_int.data = b;
    b->handles_up = true;

    /* Bind first: a busy port fails before anything touches log.dirs. Connections are only
     * accepted once the loop runs, after the store is open. */
    int rc = start_listener(b);
    if (rc < 0) return rc;
    if ((rc = open_store(b)) < 0) return rc;
    if (kb_handlers_init) {
        if ((rc = kb_handlers_init(b)) < 0) {
            kb_log(KB_LOG_ERROR, "handler setup failed: %s", k_strerror(rc));
            return rc;
        }
        b->handlers_up = true;
    }
    uv_timer_start(&b->tick, on_tick, 1000, 1000);
    uv_signal_start(&b->sig_term, on_signal, SIGTERM);
    uv_signal_start(&b->sig_int, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    char dirs[1024] = "";
    size_t n = 0;
    for (int i = 0; i < b->cfg.n_log_dirs && n < sizeof dirs; i++)
        n += (size_t)snprintf(dirs + n, sizeof dirs - n, "%s%s", i ? "," : "", b->cfg.log_dirs[i]);
    kb_log(KB_LOG_INFO,
           "Depot %s started: node %d, listening on PLAINTEXT://%s:%d, advertised as "
           "PLAINTEXT://%s:%d, log.dirs %s, cluster id %s",
           DEPOT_VERSION, b->cfg.node_id, b->cfg.listen_host[0] ? b->cfg.listen_host : "0.0.0.0",
           b->cfg.listen_port, b->cfg.advertised_host, b->cfg.advertised_port, dirs,
           ks_store_cluster_id(b->store));
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Shutdown                                                                                     */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Everything after the drain: runs once. */
static void finish(kb_broker_t *b)
{
    if (b->finished) return;
    b->finished = true;
    uv_timer_stop(&b->drain);
    if (b->handlers_up && kb_handlers_close) kb_handlers_close(b);
    b->handlers_up = false;
    while (b->conns)
        kb_conn_close(b->conns);
    if (b->store) {
        ks_store_run_completions(b->store);
        ks_store_close(b->store);
        b->store = NULL;
        kb_log(KB_LOG_INFO, "store closed cleanly");
    }
    if (b->handles_up) {
        close_handle((uv_handle_t *)&b->tick);
        close_handle((uv_handle_t *)&b->drain);
        close_handle((uv_handle_t *)&b->sig_term);
        close_handle((uv_handle_t *)&b->sig_int);
        close_handle((uv_handle_t *)&b->sync_async);
    }
    if (b->listening) close_handle((uv_handle_t *)&b->listener);
}

static void on_drain(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    bool idle = true;
    for (kb_conn_t *c = b->conns; c && idle; c = kb_conn_next(c))
        idle = kb_conn_idle(c);
    if (idle || kb_now_ms() >= b->drain_deadline_ms) {
        if (!idle)
            kb_log(KB_LOG_WARN, "shutdown: requests still pending after %d ms, dropping them",
                   DRAIN_MS);
        finish(b);
    }
}

void kb_broker_stop(kb_broker_t *b)
{
    if (b->stopping) {
        finish(b); /* second signal: do not wait */
        return;
    }
    b->stopping = true;
    if (b->listening) close_handle((uv_handle_t *)&b->listener);
    for (kb_conn_t *c = b->conns; c; c = kb_conn_next(c))
        kb_conn_stop_reading(c);
    if (!b->handles_up) {
        finish(b);
        return;
    }
    b->drain_deadline_ms = kb_now_ms() + DRAIN_MS;
    uv_timer_start(&b->drain, on_drain, 0, DRAIN_POLL_MS);
}

void kb_broker_free(kb_broker_t *b)
{
    if (!b) return;
    if (!b->finished) {
        /* Start failed or the loop was abandoned: close what is open and let it settle. */
        finish(b);
        uv_run(b->loop, UV_RUN_DEFAULT);
    }
    free(b);
}

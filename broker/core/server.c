/*
 * The broker process: one libuv loop, the listeners (broker/net/listener.c), the store, a 1 s
 * tick, and signals.
 *
 * Shutdown (SIGTERM/SIGINT or kb_broker_stop): stop accepting and reading; wait until every
 * connection has answered what it already read (at most DRAIN_MS); then the subsystems
 * release their state in reverse table order (broker/core/subsys.h), connections close, the store flushes and writes its
 * clean-shutdown marker (ks_store_close), and the remaining handles close so uv_run returns.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/core/server.h"
#include "broker/core/notify.h"
#include "broker/core/util.h"

#define DRAIN_MS 5000
#define DRAIN_POLL_MS 20

void **kb_broker_slot(kb_broker_t *b, const kb_subsys_t *s)
{
    for (int i = 0; kb_subsystems[i] && i < KB_MAX_SUBSYS; i++)
        if (kb_subsystems[i] == s) return &b->slots[i];
    return NULL;
}

void kb_broker_topic_deleted(kb_broker_t *b, const char *topic)
{
    for (int i = 0; i < b->n_up; i++)
        if (kb_subsystems[i]->topic_deleted) kb_subsystems[i]->topic_deleted(b, topic);
}

/* Starts the subsystems in table order; on failure closes those already up. */
static int subsystems_init(kb_broker_t *b)
{
    for (int i = 0; kb_subsystems[i] && i < KB_MAX_SUBSYS; i++) {
        const kb_subsys_t *s = kb_subsystems[i];
        int rc = s->init ? s->init(b) : 0;
        if (rc < 0) {
            kb_log(KB_LOG_ERROR, "%s: start failed: %s", s->name, k_strerror(rc));
            return rc;
        }
        b->n_up = i + 1;
    }
    return 0;
}

static void subsystems_close(kb_broker_t *b)
{
    while (b->n_up > 0) {
        const kb_subsys_t *s = kb_subsystems[--b->n_up];
        if (s->close) s->close(b);
    }
}

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

kb_config_t *kb_broker_config_mut(kb_broker_t *b)
{
    return &b->cfg;
}

int kb_broker_port(const kb_broker_t *b)
{
    return b->cfg.listeners[0].port;
}

/* ------------------------------------------------------------------------------------------ */

static void store_log(int level, const char *msg, void *ud)
{
    (void)ud;
    kb_log(level, "storage: %s", msg);
}

/*
 * Flusher thread: only wake the loop, through an eventfd the loop polls. Not uv_async_send:
 * libuv (1.44) marks the handle busy, writes its eventfd, then marks it done, and the woken
 * loop spins (sched_yield) until the mark is done; on a loaded 2-core box the flusher is often
 * preempted between the two, and the loop then stalled for milliseconds behind it, which made
 * most of the acks=all p99 (docs/benchmarks.md, "the acks=all tail"). The flag keeps it to one
 * write per loop pass however many fsync passes end meanwhile.
 */
static void on_sync_ready(void *ud)
{
    kb_broker_t *b = ud;
    if (atomic_exchange(&b->sync_wake, 1) == 0) {
        uint64_t one = 1;
        ssize_t n = write(b->sync_fd, &one, sizeof one); /* EAGAIN: already readable */
        (void)n;
    }
}

static void on_sync_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    kb_broker_t *b = h->data;
    uint64_t v;
    ssize_t n = read(b->sync_fd, &v, sizeof v); /* resets the counter; EAGAIN is fine */
    (void)n;
    /* Cleared before the completions are taken: one queued after this point writes again. */
    atomic_store(&b->sync_wake, 0);
    if (b->store) ks_store_run_completions(b->store);
}

static void on_sync_closed(uv_handle_t *h)
{
    kb_broker_t *b = h->data;
    close(b->sync_fd);
    b->sync_fd = -1;
}

static void on_tick(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    if (b->store) ks_store_tick(b->store, kb_wall_ms());
    int64_t now = kb_mono_ms();
    for (int i = 0; i < b->n_up; i++)
        if (kb_subsystems[i]->tick) kb_subsystems[i]->tick(b, now);
}

static void on_signal(uv_signal_t *s, int signum)
{
    kb_broker_t *b = s->data;
    kb_log(KB_LOG_INFO, "received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    kb_broker_stop(b);
}

/* The reloads themselves are the TLS watchers' (tls.c, tls_endpoint.c). This one exists so a
 * SIGHUP never takes the default action (termination): not on a broker without TLS, and not
 * during start-up before they watch, when the certificates are yet to be read anyway. */
static void on_hup(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    kb_log(KB_LOG_DEBUG, "received SIGHUP");
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
    o.checkpoint_interval_ms = b->cfg.checkpoint_interval_ms;
    o.cleaner = b->cfg.cleaner;
    o.budget_exempt = kb_topic_internal; /* the audit trail, offsets, schemas: never shrunk */
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

static void held_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void kb_broker_hold_signals(void)
{
    sigset_t set;
    held_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The loop's handles, signals first. main blocked SIGTERM, SIGINT and SIGHUP at its first line
 * (kb_broker_hold_signals); a signal that came since is delivered to libuv's handler as soon
 * as they are unblocked here, and stops the broker cleanly once the loop runs, whatever
 * start-up step it came during (it used to be the default action: status -15, nothing
 * flushed). */
static int start_handles(kb_broker_t *b)
{
    b->sync_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->sync_fd < 0) {
        kb_log(KB_LOG_ERROR, "eventfd: %s", strerror(errno));
        return K_ERR_IO;
    }
    atomic_init(&b->sync_wake, 0);
    uv_poll_init(b->loop, &b->sync_poll, b->sync_fd);
    b->sync_poll.data = b;
    uv_poll_start(&b->sync_poll, UV_READABLE, on_sync_poll);
    uv_timer_init(b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_init(b->loop, &b->drain);
    b->drain.data = b;
    uv_signal_init(b->loop, &b->sig_term);
    b->sig_term.data = b;
    uv_signal_init(b->loop, &b->sig_int);
    b->sig_int.data = b;
    uv_signal_init(b->loop, &b->sig_hup);
    b->handles_up = true;
    uv_signal_start(&b->sig_term, on_signal, SIGTERM);
    uv_signal_start(&b->sig_int, on_signal, SIGINT);
    uv_signal_start(&b->sig_hup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&b->sig_hup); /* keeps no loop running by itself */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    held_signals(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return 0;
}

/*
 * Order: signals, then bind (a busy port fails before anything touches log.dirs, and bound
 * ports are known to the subsystems), the store, every subsystem, and only then listen: the
 * kernel completes no client handshake before the broker is whole, so an early request meets
 * a started broker and a client that sees the port accept may rely on it.
 */
int kb_broker_start(kb_broker_t *b)
{
    raise_fd_limit(&b->cfg);
    int rc = start_handles(b);
    if (rc < 0) return rc;
    b->listening = true;
    if ((rc = kb_listeners_bind(b)) < 0) return rc;
    if ((rc = open_store(b)) < 0) return rc;
    if ((rc = subsystems_init(b)) < 0) return rc;
    if ((rc = kb_listeners_listen(b)) < 0) return rc;
    uv_timer_start(&b->tick, on_tick, 1000, 1000);

    char dirs[1024] = "";
    size_t n = 0;
    for (int i = 0; i < b->cfg.n_log_dirs && n < sizeof dirs; i++)
        n += (size_t)snprintf(dirs + n, sizeof dirs - n, "%s%s", i ? "," : "", b->cfg.log_dirs[i]);
    char bound[1024], advertised[1024];
    kb_listeners_describe(b, false, bound, sizeof bound);
    kb_listeners_describe(b, true, advertised, sizeof advertised);
    kb_log(KB_LOG_INFO,
           "Depot %s started: node %d, listening on %s, advertised as %s, log.dirs %s, "
           "cluster id %s",
           DEPOT_VERSION, b->cfg.node_id, bound, advertised, dirs, ks_store_cluster_id(b->store));
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
    subsystems_close(b);
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
        close_handle((uv_handle_t *)&b->sig_hup);
        if (!uv_is_closing((uv_handle_t *)&b->sync_poll))
            uv_close((uv_handle_t *)&b->sync_poll, on_sync_closed); /* closes sync_fd */
    }
    if (b->listening) kb_listeners_close(b);
}

static void on_drain(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    bool idle = true;
    for (kb_conn_t *c = b->conns; c && idle; c = kb_conn_next(c))
        idle = kb_conn_idle(c);
    if (idle || kb_mono_ms() >= b->drain_deadline_ms) {
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
    kb_notify("STOPPING=1"); /* systemd: shutdown has begun (a no-op outside systemd) */
    if (b->listening) kb_listeners_close(b);
    for (int i = 0; i < b->n_up; i++)
        if (kb_subsystems[i]->stop) kb_subsystems[i]->stop(b);
    for (kb_conn_t *c = b->conns; c; c = kb_conn_next(c))
        kb_conn_stop_reading(c);
    if (!b->handles_up) {
        finish(b);
        return;
    }
    b->drain_deadline_ms = kb_mono_ms() + DRAIN_MS;
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

/*
 * broker/metrics: what an operator watches. On the "metrics" HTTP listener
 * (metrics.listeners=http://127.0.0.1:9644; off when empty):
 *   GET /metrics        Prometheus text format (names follow Kafka's JMX exporter and
 *                       kafka_exporter: docs/operations.md lists each one)
 *   GET /               the dashboard, one self-contained page embedded in the binary
 *   GET /api/overview   JSON the dashboard and `depotctl status` read
 *   GET /healthz        200 while the loop answers (liveness)
 *   GET /readyz         200 once the store and the group coordinator are up and the broker is
 *                       not shutting down, else 503 with the reason (readiness)
 * Everything is read-only.
 *
 * Where the numbers come from, and why reading takes no lock on the produce/fetch path:
 * everything runs on the loop thread, the same thread that produces and fetches, so reading
 * partition offsets, sizes, group offsets and connection lists is a plain read between two
 * requests. ks_store_stats takes the store mutex for a copy of its counters; that mutex is
 * shared with the flusher threads only around their bookkeeping (never held across an fsync),
 * and produce/fetch never wait on a metrics read.
 *
 * History: once every KB_METRICS_SAMPLE_S seconds the subsystem's tick samples the totals into
 * a ring of an hour, so the dashboard's charts survive a page reload.
 */
#ifndef KB_METRICS_H
#define KB_METRICS_H

#include <stdint.h>

#include "broker/core/subsys.h"
#include "broker/http/http.h"
#include "broker/kb.h"

#define KB_METRICS_SAMPLE_S 10
#define KB_METRICS_HISTORY 360 /* one hour of samples */

extern const kb_subsys_t kb_metrics_subsys;

/* One history sample (totals since start; rates are differences). */
typedef struct {
    int64_t t_ms;        /* wall clock */
    int64_t bytes_in;    /* bytes appended to logs */
    int64_t messages_in; /* records appended (sum of log end offset movements) */
    int64_t bytes_out;   /* record bytes returned by Fetch (topics still counted) */
    int32_t conns;       /* Kafka connections open */
} kb_metrics_sample_t;

typedef struct kb_metrics kb_metrics_t;

/* Process figures from /proc (0 when unavailable). */
typedef struct {
    int64_t rss_bytes, vsize_bytes;
    double cpu_seconds;
    int64_t open_fds, max_fds;
    double start_time_s; /* wall clock, seconds since the epoch */
} kb_proc_stats_t;
void kb_metrics_proc(kb_proc_stats_t *out);

/* Flash: the budget (log.dirs.max.bytes) and the file systems' free space. */
typedef struct {
    int64_t budget_bytes; /* 0 = no budget */
    int64_t used_bytes;   /* segments + indexes */
    int64_t free_bytes;   /* budget - used, or the file systems' free space without a budget */
    int64_t fs_free_bytes, fs_size_bytes;
} kb_flash_t;
void kb_metrics_flash(kb_broker_t *b, kb_flash_t *out);

/* Consumer-group offsets walk: cb per committed offset (group, topic, partition, committed,
 * the partition's log end or -1 when the topic is gone). Loop thread. */
typedef void (*kb_metrics_offset_cb)(void *ud, const char *group, const char *topic,
                                     int32_t partition, int64_t committed, int64_t log_end);
/* Group walk: cb per group (id, state name, members). */
typedef void (*kb_metrics_group_cb)(void *ud, const char *group, const char *state,
                                    int32_t members);
void kb_metrics_groups(kb_broker_t *b, kb_metrics_group_cb gcb, kb_metrics_offset_cb ocb, void *ud);

/* Kafka connections open on listener index i of the broker's configuration. */
int kb_metrics_kafka_conns(kb_broker_t *b, int listener_index);

/*
 * Other rooms' families on /metrics (the uplink's lag and link state, ...): a room registers a
 * source in its init (the metrics subsystem starts earlier in broker/subsystems.c) and removes
 * it in its close. fn prints complete families (# HELP, # TYPE, samples) with kb_http_printf.
 * Loop thread. A no-op returning 0 when no metrics listener is configured.
 */
typedef void (*kb_metrics_source_fn)(kb_http_req_t *req, void *ud);
#define KB_METRICS_MAX_SOURCES 8
int kb_metrics_add_source(kb_broker_t *b, kb_metrics_source_fn fn, void *ud);
void kb_metrics_remove_source(kb_broker_t *b, kb_metrics_source_fn fn, void *ud);
/* Prints every registered source (prom.c calls it last). */
void kb_metrics_print_sources(kb_broker_t *b, kb_http_req_t *req);

/* Copies the history, oldest first, into out[0..max); returns the count. */
int kb_metrics_history(kb_broker_t *b, kb_metrics_sample_t *out, int max);

/* Route handlers (prom.c, overview.c, dashboard.c). */
int kb_metrics_prometheus(kb_http_req_t *req, void *ud);
int kb_metrics_overview(kb_http_req_t *req, void *ud);
int kb_metrics_dashboard(kb_http_req_t *req, void *ud);

#endif

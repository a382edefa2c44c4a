/*
 * GET /metrics: the Prometheus text exposition format (version 0.0.4). Names follow what
 * operators already know from Kafka: the JMX exporter's kafka_server_* / kafka_log_* /
 * kafka_network_* names for broker figures, kafka_exporter's kafka_consumergroup_* names for
 * lag; Depot's own figures (flash budget, fsync latency, HTTP) are depot_*. Every family is
 * documented in docs/operations.md.
 */
#include <stdio.h>
#include <string.h>

#include "broker/core/server.h"
#include "broker/metrics/metrics.h"

#define TEXT_FORMAT "text/plain; version=0.0.4; charset=utf-8"

static void family(kb_http_req_t *req, const char *name, const char *type, const char *help)
{
    kb_http_printf(req, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newlines escaped, into out (truncated to fit). */
static const char *esc(const char *v, char *out, size_t cap)
{
    size_t o = 0;
    for (; *v && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = 0;
    return out;
}

static void store_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    ks_store_t *s = kb_broker_store(b);
    if (!s) return;
    ks_stats_t st;
    ks_store_stats(s, &st);
    family(req, "kafka_server_replicamanager_partitioncount", "gauge",
           "Partitions on this broker (internal topics included).");
    kb_http_printf(req, "kafka_server_replicamanager_partitioncount %d\n", st.partitions);
    family(req, "depot_log_bytes_appended_total", "counter",
           "Bytes appended to partition logs since start (all topics).");
    kb_http_printf(req, "depot_log_bytes_appended_total %lld\n", (long long)st.bytes_appended);
    family(req, "depot_log_fsyncs_total", "counter",
           "fsync/fdatasync calls on log files and directories since start.");
    kb_http_printf(req, "depot_log_fsyncs_total %lld\n", (long long)st.fsyncs);
    family(req, "depot_log_fsync_duration_seconds", "histogram",
           "Duration of each fsync done by the flusher threads.");
    long long cum = 0;
    for (int i = 0; i < KS_FSYNC_BUCKETS; i++) {
        cum += st.fsync_hist[i];
        if (i < KS_FSYNC_BUCKETS - 1)
            kb_http_printf(req, "depot_log_fsync_duration_seconds_bucket{le=\"%g\"} %lld\n",
                           (double)ks_fsync_bounds_us[i] / 1e6, cum);
        else
            kb_http_printf(req, "depot_log_fsync_duration_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
    }
    kb_http_printf(req, "depot_log_fsync_duration_seconds_sum %.6f\n",
                   (double)st.fsync_us_sum / 1e6);
    kb_http_printf(req, "depot_log_fsync_duration_seconds_count %lld\n", cum);
    family(req, "depot_log_segments_deleted_total", "counter",
           "Segments deleted, by reason (retention, or the flash budget's delete-oldest).");
    kb_http_printf(req, "depot_log_segments_deleted_total{reason=\"retention\"} %lld\n",
                   (long long)st.segments_deleted_retention);
    kb_http_printf(req, "depot_log_segments_deleted_total{reason=\"budget\"} %lld\n",
                   (long long)st.segments_deleted_budget);
    family(req, "depot_log_appends_rejected_budget_total", "counter",
           "Produce appends refused because the flash budget was full (policy reject).");
    kb_http_printf(req, "depot_log_appends_rejected_budget_total %lld\n",
                   (long long)st.appends_rejected_budget);
    family(req, "depot_log_io_errors_total", "counter", "Storage I/O errors since start.");
    kb_http_printf(req, "depot_log_io_errors_total %lld\n", (long long)st.io_errors);
    family(req, "depot_log_open_files", "gauge", "Segment and index files held open.");
    kb_http_printf(req, "depot_log_open_files %d\n", st.open_files);
}

static void flash_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    kb_flash_t f;
    kb_metrics_flash(b, &f);
    family(req, "depot_flash_budget_bytes", "gauge",
           "log.dirs.max.bytes, the flash budget for all logs (0 = no budget).");
    kb_http_printf(req, "depot_flash_budget_bytes %lld\n", (long long)f.budget_bytes);
    family(req, "depot_flash_used_bytes", "gauge", "Bytes of segments and indexes on disk.");
    kb_http_printf(req, "depot_flash_used_bytes %lld\n", (long long)f.used_bytes);
    family(req, "depot_flash_free_bytes", "gauge",
           "Bytes left: budget minus used (capped by the file system), or the file system's "
           "free space when there is no budget.");
    kb_http_printf(req, "depot_flash_free_bytes %lld\n", (long long)f.free_bytes);
    family(req, "depot_filesystem_free_bytes", "gauge",
           "Free space of the file systems holding log.dirs (each counted once).");
    kb_http_printf(req, "depot_filesystem_free_bytes %lld\n", (long long)f.fs_free_bytes);
    family(req, "depot_filesystem_size_bytes", "gauge",
           "Size of the file systems holding log.dirs (each counted once).");
    kb_http_printf(req, "depot_filesystem_size_bytes %lld\n", (long long)f.fs_size_bytes);
}

/* One gauge per partition: which = 0 size, 1 log start, 2 log end. */
static void partition_family(kb_http_req_t *req, ks_store_t *s, int which)
{
    static const char *const names[] = {"kafka_log_log_size", "kafka_log_log_logstartoffset",
                                        "kafka_log_log_logendoffset"};
    static const char *const helps[] = {"Bytes of the partition's log on disk.",
                                        "First offset still in the partition's log.",
                                        "Offset the next appended record will get."};
    family(req, names[which], "gauge", helps[which]);
    for (ks_topic_t *t = ks_topic_next(s, NULL); t; t = ks_topic_next(s, t))
        for (int32_t i = 0; i < ks_topic_partitions(t); i++) {
            ks_part_t *p = ks_topic_part(t, i);
            int64_t v = which == 0   ? ks_part_size_bytes(p)
                        : which == 1 ? ks_part_log_start(p)
                                     : ks_part_log_end(p);
            kb_http_printf(req, "%s{topic=\"%s\",partition=\"%d\"} %lld\n", names[which],
                           ks_topic_name(t), i, (long long)v);
        }
}

static void topic_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    ks_store_t *s = kb_broker_store(b);
    if (!s) return;
    family(req, "kafka_topic_partitions", "gauge", "Partitions of each topic.");
    for (ks_topic_t *t = ks_topic_next(s, NULL); t; t = ks_topic_next(s, t))
        kb_http_printf(req, "kafka_topic_partitions{topic=\"%s\"} %d\n", ks_topic_name(t),
                       ks_topic_partitions(t));
    for (int w = 0; w < 3; w++)
        partition_family(req, s, w);
}

static void on_group(void *ud, const char *group, const char *state, int32_t members)
{
    kb_http_req_t *req = ud;
    char g[512];
    esc(group, g, sizeof g);
    kb_http_printf(req, "kafka_consumergroup_members{consumergroup=\"%s\",state=\"%s\"} %d\n", g,
                   state, members);
}

typedef struct {
    kb_http_req_t *req;
    int which; /* 0 current offset, 1 lag */
} off_ctx_t;

static void on_offset(void *ud, const char *group, const char *topic, int32_t partition,
                      int64_t committed, int64_t log_end)
{
    off_ctx_t *x = ud;
    if (log_end < 0) return; /* topic gone */
    char g[512];
    esc(group, g, sizeof g);
    int64_t lag = log_end - committed;
    if (lag < 0) lag = 0;
    kb_http_printf(x->req, "%s{consumergroup=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n",
                   x->which ? "kafka_consumergroup_lag" : "kafka_consumergroup_current_offset", g,
                   topic, partition, (long long)(x->which ? lag : committed));
}

static void group_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    family(req, "kafka_consumergroup_members", "gauge",
           "Members of each consumer group (label state: Kafka's group state).");
    kb_metrics_groups(b, on_group, NULL, req);
    family(req, "kafka_consumergroup_current_offset", "gauge",
           "Committed offset of a group on a partition.");
    off_ctx_t x = {req, 0};
    kb_metrics_groups(b, NULL, on_offset, &x);
    family(req, "kafka_consumergroup_lag", "gauge",
           "Log end offset minus the group's committed offset (records not yet consumed).");
    x.which = 1;
    kb_metrics_groups(b, NULL, on_offset, &x);
}

static void conn_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    family(req, "kafka_server_socketservermetrics_connection_count", "gauge",
           "Open Kafka client connections per listener.");
    for (int i = 0; i < b->cfg.n_listeners; i++)
        kb_http_printf(req,
                       "kafka_server_socketservermetrics_connection_count{listener=\"%s\"} %d\n",
                       b->cfg.listeners[i].name, kb_metrics_kafka_conns(b, i));
    family(req, "depot_http_connections", "gauge", "Open HTTP connections per HTTP listener.");
    kb_http_listener_t *l;
    for (int i = 0; (l = kb_http_listener_at(b, i)); i++) {
        kb_http_stats_t st;
        kb_http_listener_stats(l, &st);
        kb_http_printf(req, "depot_http_connections{listener=\"%s\"} %d\n",
                       kb_http_listener_name(l), st.conns);
    }
    family(req, "depot_http_requests_total", "counter",
           "HTTP requests answered per HTTP listener, by class (ok, client_error, "
           "server_error).");
    for (int i = 0; (l = kb_http_listener_at(b, i)); i++) {
        kb_http_stats_t st;
        kb_http_listener_stats(l, &st);
        const char *n = kb_http_listener_name(l);
        unsigned long long ok = st.requests - st.client_errors - st.server_errors;
        kb_http_printf(req,
                       "depot_http_requests_total{listener=\"%s\",class=\"ok\"} %llu\n"
                       "depot_http_requests_total{listener=\"%s\",class=\"client_error\"} %llu\n"
                       "depot_http_requests_total{listener=\"%s\",class=\"server_error\"} %llu\n",
                       n, ok, n, (unsigned long long)st.client_errors, n,
                       (unsigned long long)st.server_errors);
    }
}

static void process_metrics(kb_http_req_t *req)
{
    kb_proc_stats_t p;
    kb_metrics_proc(&p);
    family(req, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    kb_http_printf(req, "process_resident_memory_bytes %lld\n", (long long)p.rss_bytes);
    family(req, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    kb_http_printf(req, "process_virtual_memory_bytes %lld\n", (long long)p.vsize_bytes);
    family(req, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
    kb_http_printf(req, "process_cpu_seconds_total %.3f\n", p.cpu_seconds);
    family(req, "process_open_fds", "gauge", "Open file descriptors.");
    kb_http_printf(req, "process_open_fds %lld\n", (long long)p.open_fds);
    family(req, "process_max_fds", "gauge", "The file descriptor limit (LimitNOFILE).");
    kb_http_printf(req, "process_max_fds %lld\n", (long long)p.max_fds);
    family(req, "process_start_time_seconds", "gauge", "Start time since the epoch, seconds.");
    kb_http_printf(req, "process_start_time_seconds %.3f\n", p.start_time_s);
}

int kb_metrics_prometheus(kb_http_req_t *req, void *ud)
{
    (void)ud;
    kb_broker_t *b = kb_http_broker(req);
    family(req, "depot_info", "gauge", "Always 1; labels name the version and node.");
    kb_http_printf(req, "depot_info{version=\"%s\",node_id=\"%d\"} 1\n", DEPOT_VERSION,
                   kb_broker_config(b)->node_id);
    store_metrics(req, b);
    flash_metrics(req, b);
    topic_metrics(req, b);
    group_metrics(req, b);
    conn_metrics(req, b);
    process_metrics(req);
    kb_http_send(req, 200, TEXT_FORMAT);
    return KB_DONE;
}

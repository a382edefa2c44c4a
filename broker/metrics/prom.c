/*
 * GET /metrics: the Prometheus text exposition format (version 0.0.4). Names follow what
 * operators already know from Kafka: the JMX exporter's kafka_server_* / kafka_log_* /
 * kafka_network_* names for broker figures, kafka_exporter's kafka_consumergroup_* names for
 * lag; Depot's own figures (flash budget, fsync latency, HTTP) are depot_*. Every family is
 * documented in docs/operations.md.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "broker/metrics/metrics.h"
#include "protocol/kp_errors.h"
#include "protocol/kp_header.h"

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
    family(req, "depot_log_sync_wait_stage_seconds", "histogram",
           "acks=all waits (one per appended partition), by stage: queue (until the covering "
           "flusher pass starts), pass (its fsyncs), wake (until the loop runs the answer), "
           "total.");
    for (int g = 0; g < KS_STAGES; g++) {
        cum = 0;
        for (int i = 0; i < KS_STAGE_BUCKETS; i++) {
            cum += st.sync_stage_hist[g][i];
            if (i < KS_STAGE_BUCKETS - 1)
                kb_http_printf(req, "depot_log_sync_wait_stage_seconds_bucket{stage=\"%s\","
                               "le=\"%g\"} %lld\n", ks_stage_names[g],
                               (double)ks_stage_bounds_us[i] / 1e6, cum);
            else
                kb_http_printf(req, "depot_log_sync_wait_stage_seconds_bucket{stage=\"%s\","
                               "le=\"+Inf\"} %lld\n", ks_stage_names[g], cum);
        }
        kb_http_printf(req, "depot_log_sync_wait_stage_seconds_sum{stage=\"%s\"} %.6f\n",
                       ks_stage_names[g], (double)st.sync_stage_us_sum[g] / 1e6);
        kb_http_printf(req, "depot_log_sync_wait_stage_seconds_count{stage=\"%s\"} %lld\n",
                       ks_stage_names[g], cum);
    }
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

static void cleaner_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    ks_store_t *s = kb_broker_store(b);
    if (!s) return;
    ks_cleaner_stats_t c;
    ks_store_cleaner_stats(s, &c);
    family(req, "depot_log_cleaner_threads", "gauge",
           "Log cleaner threads running (0: log.cleaner.enable=false).");
    kb_http_printf(req, "depot_log_cleaner_threads %d\n", c.threads);
    family(req, "depot_log_cleaner_running", "gauge", "Compaction passes in progress now.");
    kb_http_printf(req, "depot_log_cleaner_running %d\n", c.running);
    static const struct {
        const char *name, *help;
        size_t off;
    } ctrs[] = {
        {"depot_log_cleaner_cleans_total", "Compaction passes finished and swapped in.",
         offsetof(ks_cleaner_stats_t, cleans)},
        {"depot_log_cleaner_cleans_aborted_total",
         "Compaction passes given up (topic deleted, retention, I/O error, stop).",
         offsetof(ks_cleaner_stats_t, cleans_aborted)},
        {"depot_log_cleaner_bytes_read_total", "Segment bytes read by the cleaner.",
         offsetof(ks_cleaner_stats_t, bytes_read)},
        {"depot_log_cleaner_bytes_written_total", "Cleaned segment bytes written.",
         offsetof(ks_cleaner_stats_t, bytes_written)},
        {"depot_log_cleaner_bytes_freed_total", "Bytes of flash given back by compaction.",
         offsetof(ks_cleaner_stats_t, bytes_freed)},
        {"depot_log_cleaner_records_removed_total",
         "Records removed because a later record has the same key.",
         offsetof(ks_cleaner_stats_t, records_removed)},
        {"depot_log_cleaner_tombstones_removed_total",
         "Tombstones removed past their delete horizon.",
         offsetof(ks_cleaner_stats_t, tombstones_removed)},
    };
    for (size_t i = 0; i < sizeof ctrs / sizeof ctrs[0]; i++) {
        family(req, ctrs[i].name, "counter", ctrs[i].help);
        kb_http_printf(req, "%s %lld\n", ctrs[i].name,
                       (long long)*(const int64_t *)((const char *)&c + ctrs[i].off));
    }
    family(req, "kafka_log_logcleanermanager_max_dirty_percent", "gauge",
           "Dirty share of the dirtiest compacted partition at the cleaner's last pick.");
    kb_http_printf(req, "kafka_log_logcleanermanager_max_dirty_percent %.2f\n",
                   c.max_dirty_ratio * 100.0);
    family(req, "kafka_log_logcleaner_max_clean_time_secs", "gauge",
           "Duration of the last compaction pass, seconds.");
    kb_http_printf(req, "kafka_log_logcleaner_max_clean_time_secs %.3f\n",
                   (double)c.last_clean_ms / 1000.0);
    family(req, "depot_log_cleaner_last_clean_timestamp_seconds", "gauge",
           "When the last compaction pass ended (0: none yet), seconds since the epoch.");
    kb_http_printf(req, "depot_log_cleaner_last_clean_timestamp_seconds %.3f\n",
                   (double)c.last_clean_end_ms / 1000.0);
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

/* Connection limits (broker/net/limits.h). */
static void net_limit_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    const kb_net_t *n = &b->net;
    family(req, "depot_connections_refused_total", "counter",
           "Connections accepted and closed at once because a limit was reached.");
    kb_http_printf(req,
                   "depot_connections_refused_total{reason=\"max.connections\"} %llu\n"
                   "depot_connections_refused_total{reason=\"max.connections.per.ip\"} %llu\n",
                   (unsigned long long)n->refused_total[KB_REFUSED_MAX_CONNECTIONS],
                   (unsigned long long)n->refused_total[KB_REFUSED_MAX_PER_IP]);
    family(req, "depot_connections_expired_total", "counter",
           "Connections closed by a deadline: idle (connections.max.idle.ms), read_timeout "
           "(socket.read.timeout.ms), write_timeout (socket.write.timeout.ms).");
    kb_http_printf(req,
                   "depot_connections_expired_total{reason=\"idle\"} %llu\n"
                   "depot_connections_expired_total{reason=\"read_timeout\"} %llu\n"
                   "depot_connections_expired_total{reason=\"write_timeout\"} %llu\n",
                   (unsigned long long)n->closed_total[KB_CLOSED_IDLE],
                   (unsigned long long)n->closed_total[KB_CLOSED_READ_TIMEOUT],
                   (unsigned long long)n->closed_total[KB_CLOSED_WRITE_TIMEOUT]);
    family(req, "depot_queued_request_bytes", "gauge",
           "Bytes of requests read and not yet answered (limit: queued.max.request.bytes).");
    kb_http_printf(req, "depot_queued_request_bytes %lld\n", (long long)n->queued_bytes);
}

static void conn_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    family(req, "kafka_server_socketservermetrics_connection_count", "gauge",
           "Open Kafka client connections per listener.");
    for (int i = 0; i < b->cfg.n_listeners; i++)
        kb_http_printf(req,
                       "kafka_server_socketservermetrics_connection_count{listener=\"%s\"} %d\n",
                       b->cfg.listeners[i].name, kb_metrics_kafka_conns(b, i));
    net_limit_metrics(req, b);
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

/* Per-topic counters (broker/core/counters.h), one family at a time. */
typedef struct {
    kb_http_req_t *req;
    const char *name;
    size_t off; /* offset of the uint64_t in kb_topic_counters_t */
} topic_ctx_t;

static void on_topic_counter(void *ud, const char *topic, const kb_topic_counters_t *c)
{
    topic_ctx_t *x = ud;
    const uint64_t *v = (const uint64_t *)((const char *)c + x->off);
    kb_http_printf(x->req, "%s{topic=\"%s\"} %llu\n", x->name, topic,
                   (unsigned long long)kb_ctr_read(v));
}

static void topic_counter_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } fams[] = {
        {"kafka_server_brokertopicmetrics_bytesin_total",
         "Record batch bytes appended to the topic by Produce.",
         offsetof(kb_topic_counters_t, bytes_in)},
        {"kafka_server_brokertopicmetrics_messagesin_total",
         "Records appended to the topic by Produce.", offsetof(kb_topic_counters_t, messages_in)},
        {"kafka_server_brokertopicmetrics_bytesout_total",
         "Record batch bytes of the topic returned by Fetch.",
         offsetof(kb_topic_counters_t, bytes_out)},
        {"kafka_server_brokertopicmetrics_messagesout_total",
         "Records of the topic returned by Fetch (whole batches).",
         offsetof(kb_topic_counters_t, messages_out)},
        {"kafka_server_brokertopicmetrics_totalproducerequests_total",
         "Produce requests that touched the topic.",
         offsetof(kb_topic_counters_t, produce_requests)},
        {"kafka_server_brokertopicmetrics_totalfetchrequests_total",
         "Fetch requests that touched the topic.", offsetof(kb_topic_counters_t, fetch_requests)},
        {"depot_topic_partition_errors_total",
         "Partition errors of Produce and Fetch on the topic.",
         offsetof(kb_topic_counters_t, errors)},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        family(req, fams[i].name, "counter", fams[i].help);
        topic_ctx_t x = {req, fams[i].name, fams[i].off};
        kb_counters_foreach_topic(b, on_topic_counter, &x);
    }
}

/* Per-API counters: requests, errors by code, closes, latency histogram. */
static void api_latency(kb_http_req_t *req, const char *api, const kb_api_counters_t *c)
{
    const char *n = "kafka_network_requestmetrics_totaltime_seconds";
    unsigned long long cum = 0;
    for (int i = 0; i < KB_CTR_LAT_BUCKETS; i++) {
        cum += kb_ctr_read(&c->latency[i]);
        if (i < KB_CTR_LAT_BUCKETS - 1)
            kb_http_printf(req, "%s_bucket{request=\"%s\",le=\"%g\"} %llu\n", n, api,
                           (double)kb_ctr_latency_bounds_us[i] / 1e6, cum);
        else
            kb_http_printf(req, "%s_bucket{request=\"%s\",le=\"+Inf\"} %llu\n", n, api, cum);
    }
    kb_http_printf(req, "%s_sum{request=\"%s\"} %.6f\n%s_count{request=\"%s\"} %llu\n", n, api,
                   (double)kb_ctr_read(&c->latency_sum_us) / 1e6, n, api, cum);
}

static void api_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    size_t n_apis;
    const kp_api_t *apis = kp_api_all(&n_apis);
    family(req, "kafka_network_requestmetrics_requests_total", "counter",
           "Kafka requests received, per API.");
    for (size_t i = 0; i < n_apis; i++) {
        const kb_api_counters_t *c = kb_counters_api(b, apis[i].key);
        if (c)
            kb_http_printf(req,
                           "kafka_network_requestmetrics_requests_total{request=\"%s\"} %llu\n",
                           apis[i].name, (unsigned long long)kb_ctr_read(&c->requests));
    }
    family(req, "kafka_network_requestmetrics_errors_total", "counter",
           "Requests answered with a Kafka error, per API and error name (the first error of a "
           "request counts once).");
    for (size_t i = 0; i < n_apis; i++) {
        const kb_api_counters_t *c = kb_counters_api(b, apis[i].key);
        for (int e = 1; c && e < KB_CTR_ERR_CODES; e++) {
            uint64_t v = kb_ctr_read(&c->errors[e]);
            if (v == 0) continue;
            const char *en = e == KB_CTR_ERR_OTHER ? "OTHER" : kp_error_name((int16_t)e);
            kb_http_printf(req,
                           "kafka_network_requestmetrics_errors_total{request=\"%s\",error=\"%s\"}"
                           " %llu\n",
                           apis[i].name, en, (unsigned long long)v);
        }
    }
    family(req, "depot_network_requests_closed_total", "counter",
           "Requests after which the connection was closed (malformed or unsupported), per API.");
    for (size_t i = 0; i < n_apis; i++) {
        const kb_api_counters_t *c = kb_counters_api(b, apis[i].key);
        if (c)
            kb_http_printf(req, "depot_network_requests_closed_total{request=\"%s\"} %llu\n",
                           apis[i].name, (unsigned long long)kb_ctr_read(&c->closed));
    }
    family(req, "kafka_network_requestmetrics_totaltime_seconds", "histogram",
           "Time from a request decoded to its answer handed to the socket, per API (held "
           "requests such as long-poll Fetch count their wait).");
    for (size_t i = 0; i < n_apis; i++) {
        const kb_api_counters_t *c = kb_counters_api(b, apis[i].key);
        if (c) api_latency(req, apis[i].name, c);
    }
}

/* Failed SASL authentications: SaslAuthenticate answered with an error, plus those whose
 * connection was closed (the raw, pre-KIP-152 flow cannot carry an error). */
static void auth_metrics(kb_http_req_t *req, kb_broker_t *b)
{
    const kb_api_counters_t *c = kb_counters_api(b, KP_API_SASL_AUTHENTICATE);
    unsigned long long n = 0;
    for (int e = 1; c && e < KB_CTR_ERR_CODES; e++)
        n += kb_ctr_read(&c->errors[e]);
    if (c) n += kb_ctr_read(&c->closed);
    family(req, "kafka_server_socketservermetrics_failed_authentication_total", "counter",
           "SASL authentications that failed (wrong password, unknown user, bad exchange).");
    kb_http_printf(req, "kafka_server_socketservermetrics_failed_authentication_total %llu\n", n);
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
    cleaner_metrics(req, b);
    flash_metrics(req, b);
    topic_metrics(req, b);
    topic_counter_metrics(req, b);
    api_metrics(req, b);
    group_metrics(req, b);
    conn_metrics(req, b);
    auth_metrics(req, b);
    process_metrics(req);
    kb_metrics_print_sources(b, req);
    kb_http_send(req, 200, TEXT_FORMAT);
    return KB_DONE;
}

/*
 * GET /api/overview: one JSON document with everything the dashboard and `depotctl status`
 * show. Shape (every number is an integer unless noted):
 *   { "version", "node_id", "cluster_id", "time_ms", "uptime_s" (float),
 *     "ready": bool,
 *     "listeners": [{"name", "address", "connections"}],           Kafka listeners
 *     "http": [{"name", "connections", "requests"}],
 *     "flash": {"budget_bytes", "used_bytes", "free_bytes", "fs_free_bytes", "fs_size_bytes"},
 *     "store": {"partitions", "fsyncs", "io_errors", "bytes_appended"},
 *     "process": {"rss_bytes", "cpu_seconds" (float), "open_fds", "max_fds"},
 *     "topics": [{"name", "partitions", "size_bytes", "records", "log_end_sum", "internal",
 *                 "bytes_in", "bytes_out", "messages_in", "messages_out"}],   counters
 *     "groups": [{"group", "state", "members", "lag",
 *                 "partitions": [{"topic", "partition", "committed", "log_end", "lag"}]}],
 *     "history": {"interval_s", "t_ms": [...], "bytes_in": [...], "messages_in": [...],
 *                 "bytes_out": [...], "connections": [...]} }
 * "records" is log end minus log start summed over partitions; rates are differences of
 * successive history samples (or of successive overviews).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_group.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "broker/metrics/metrics.h"

static json_int_t ctr(const kb_topic_counters_t *c, const uint64_t *field)
{
    return c ? (json_int_t)kb_ctr_read(field) : 0;
}

static json_t *topics_json(kb_broker_t *b, ks_store_t *s)
{
    json_t *arr = json_array();
    for (ks_topic_t *t = s ? ks_topic_next(s, NULL) : NULL; t; t = ks_topic_next(s, t)) {
        int64_t size = 0, records = 0, end = 0;
        for (int32_t i = 0; i < ks_topic_partitions(t); i++) {
            ks_part_t *p = ks_topic_part(t, i);
            size += ks_part_size_bytes(p);
            records += ks_part_log_end(p) - ks_part_log_start(p);
            end += ks_part_log_end(p);
        }
        const kb_topic_counters_t *c = kb_counters_topic(b, ks_topic_name(t));
        json_t *o = json_pack("{s:s, s:i, s:I, s:I, s:I, s:b}", "name", ks_topic_name(t),
                              "partitions", ks_topic_partitions(t), "size_bytes", (json_int_t)size,
                              "records", (json_int_t)records, "log_end_sum", (json_int_t)end,
                              "internal", ks_topic_name(t)[0] == '_');
        if (o) {
            json_object_set_new(o, "bytes_in", json_integer(ctr(c, c ? &c->bytes_in : NULL)));
            json_object_set_new(o, "bytes_out", json_integer(ctr(c, c ? &c->bytes_out : NULL)));
            json_object_set_new(o, "messages_in", json_integer(ctr(c, c ? &c->messages_in : NULL)));
            json_object_set_new(o, "messages_out",
                                json_integer(ctr(c, c ? &c->messages_out : NULL)));
            json_array_append_new(arr, o);
        }
    }
    return arr;
}

typedef struct {
    json_t *groups;  /* array */
    json_t *current; /* the group being filled */
} gctx_t;

static void on_group(void *ud, const char *group, const char *state, int32_t members)
{
    gctx_t *x = ud;
    x->current = json_pack("{s:s, s:s, s:i, s:I, s:[]}", "group", group, "state", state, "members",
                           members, "lag", (json_int_t)0, "partitions");
    if (x->current) json_array_append_new(x->groups, x->current);
}

static void on_offset(void *ud, const char *group, const char *topic, int32_t partition,
                      int64_t committed, int64_t log_end)
{
    gctx_t *x = ud;
    json_t *g = x->current;
    if (!g || strcmp(json_string_value(json_object_get(g, "group")), group)) return;
    int64_t lag = log_end < 0 ? 0 : log_end - committed;
    if (lag < 0) lag = 0;
    json_array_append_new(json_object_get(g, "partitions"),
                          json_pack("{s:s, s:i, s:I, s:I, s:I}", "topic", topic, "partition",
                                    partition, "committed", (json_int_t)committed, "log_end",
                                    (json_int_t)log_end, "lag", (json_int_t)lag));
    json_int_t total = json_integer_value(json_object_get(g, "lag"));
    json_object_set_new(g, "lag", json_integer(total + lag));
}

static json_t *history_json(kb_broker_t *b)
{
    kb_metrics_sample_t h[KB_METRICS_HISTORY]; /* ~14 KiB on the loop's stack */
    int n = kb_metrics_history(b, h, KB_METRICS_HISTORY);
    json_t *t = json_array(), *bi = json_array(), *mi = json_array(), *bo = json_array(),
           *c = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(t, json_integer(h[i].t_ms));
        json_array_append_new(bi, json_integer(h[i].bytes_in));
        json_array_append_new(mi, json_integer(h[i].messages_in));
        json_array_append_new(bo, json_integer(h[i].bytes_out));
        json_array_append_new(c, json_integer(h[i].conns));
    }
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "interval_s", KB_METRICS_SAMPLE_S, "t_ms", t,
                     "bytes_in", bi, "messages_in", mi, "bytes_out", bo, "connections", c);
}

static json_t *listeners_json(kb_broker_t *b)
{
    json_t *arr = json_array();
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const kb_listener_t *l = &b->cfg.listeners[i];
        char addr[300];
        snprintf(addr, sizeof addr, "%s:%d", l->host[0] ? l->host : "0.0.0.0", l->port);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i}", "name", l->name, "address", addr,
                                             "connections", kb_metrics_kafka_conns(b, i)));
    }
    return arr;
}

static json_t *http_json(kb_broker_t *b)
{
    json_t *arr = json_array();
    kb_http_listener_t *l;
    for (int i = 0; (l = kb_http_listener_at(b, i)); i++) {
        kb_http_stats_t st;
        kb_http_listener_stats(l, &st);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:I}", "name", kb_http_listener_name(l),
                                             "connections", st.conns, "requests",
                                             (json_int_t)st.requests));
    }
    return arr;
}

static json_t *build(kb_broker_t *b)
{
    ks_store_t *s = kb_broker_store(b);
    kb_flash_t f;
    kb_metrics_flash(b, &f);
    kb_proc_stats_t p;
    kb_metrics_proc(&p);
    ks_stats_t st;
    memset(&st, 0, sizeof st);
    if (s) ks_store_stats(s, &st);
    kb_gstate_t *gs = kb_gstate(b);
    bool ready = !b->stopping && s && gs && gs->ostore;
    /* One walk: each group's offsets follow its own callback. */
    gctx_t g = {json_array(), NULL};
    kb_metrics_groups(b, on_group, on_offset, &g);
    double now_s = (double)kb_wall_ms() / 1000.0;
    return json_pack("{s:s, s:i, s:s, s:I, s:f, s:b, s:o, s:o,"
                     " s:{s:I, s:I, s:I, s:I, s:I}, s:{s:i, s:I, s:I, s:I}, s:{s:I, s:f, s:I, s:I},"
                     " s:o, s:o, s:o}",
                     "version", DEPOT_VERSION, "node_id", b->cfg.node_id, "cluster_id",
                     s ? ks_store_cluster_id(s) : "", "time_ms", (json_int_t)kb_wall_ms(),
                     "uptime_s", p.start_time_s > 0 ? now_s - p.start_time_s : 0.0, "ready", ready,
                     "listeners", listeners_json(b), "http", http_json(b), "flash", "budget_bytes",
                     (json_int_t)f.budget_bytes, "used_bytes", (json_int_t)f.used_bytes,
                     "free_bytes", (json_int_t)f.free_bytes, "fs_free_bytes",
                     (json_int_t)f.fs_free_bytes, "fs_size_bytes", (json_int_t)f.fs_size_bytes,
                     "store", "partitions", st.partitions, "fsyncs", (json_int_t)st.fsyncs,
                     "io_errors", (json_int_t)st.io_errors, "bytes_appended",
                     (json_int_t)st.bytes_appended, "process", "rss_bytes", (json_int_t)p.rss_bytes,
                     "cpu_seconds", p.cpu_seconds, "open_fds", (json_int_t)p.open_fds, "max_fds",
                     (json_int_t)p.max_fds, "topics", topics_json(b, s), "groups", g.groups,
                     "history", history_json(b));
}

int kb_metrics_overview(kb_http_req_t *req, void *ud)
{
    (void)ud;
    json_t *doc = build(kb_http_broker(req));
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL; /* malloc'd by jansson */
    json_decref(doc);
    if (!text) return K_ERR_NOMEM;
    kb_http_write(req, text, strlen(text));
    free(text);
    kb_http_add_header(req, "Cache-Control", "no-store");
    kb_http_send(req, 200, "application/json");
    return KB_DONE;
}

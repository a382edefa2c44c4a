/*
 * The metrics subsystem: opens the "metrics" HTTP listener, registers the routes, samples the
 * history ring on the tick, and gathers the figures that are not counters (process, flash,
 * groups, connections). See metrics.h.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/api/h_group.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "broker/metrics/metrics.h"

struct kb_metrics {
    kb_broker_t *broker;
    kb_http_listener_t *listener;
    kb_metrics_sample_t ring[KB_METRICS_HISTORY];
    int head, n; /* next slot to write; samples held */
    int64_t last_sample_mono;
    struct {
        kb_metrics_source_fn fn;
        void *ud;
    } sources[KB_METRICS_MAX_SOURCES]; /* other rooms' families; NULL fn = free slot */
};

static kb_metrics_t *state(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_metrics_subsys);
    return slot ? *slot : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Figures                                                                                      */

/* Reads a small /proc file into buf (NUL-terminated); 0 or -1. */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return 0;
}

void kb_metrics_proc(kb_proc_stats_t *out)
{
    memset(out, 0, sizeof *out);
    long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
    char buf[1024];
    long long vsz = 0, rss = 0;
    if (read_small("/proc/self/statm", buf, sizeof buf) == 0 &&
        sscanf(buf, "%lld %lld", &vsz, &rss) == 2) {
        out->vsize_bytes = vsz * page;
        out->rss_bytes = rss * page;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') out->open_fds++;
        closedir(d);
        out->open_fds--; /* the directory stream itself */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) out->max_fds = (int64_t)rl.rlim_cur;
    /* Field 22 of /proc/self/stat: start time in clock ticks after boot. The command name
     * (field 2) may hold spaces, so parse after its closing parenthesis. */
    char up[128];
    if (read_small("/proc/self/stat", buf, sizeof buf) == 0 &&
        read_small("/proc/uptime", up, sizeof up) == 0) {
        const char *p = strrchr(buf, ')');
        unsigned long long start = 0;
        double uptime = 0;
        if (p &&
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                   "%*d %*d %*d %llu",
                   &start) == 1 &&
            sscanf(up, "%lf", &uptime) == 1 && hz > 0)
            out->start_time_s = (double)kb_wall_ms() / 1000.0 - uptime + (double)start / hz;
    }
}

void kb_metrics_flash(kb_broker_t *b, kb_flash_t *out)
{
    memset(out, 0, sizeof *out);
    const kb_config_t *cfg = kb_broker_config(b);
    ks_store_t *s = kb_broker_store(b);
    if (s) {
        ks_stats_t st;
        ks_store_stats(s, &st);
        out->used_bytes = st.bytes_on_disk;
    }
    out->budget_bytes = cfg->dirs_max_bytes;
    /* Log dirs on one file system would be counted twice: count each device once. */
    unsigned long seen[16];
    int n_seen = 0;
    for (int i = 0; i < cfg->n_log_dirs && i < 16; i++) {
        struct statvfs v;
        if (statvfs(cfg->log_dirs[i], &v) != 0) continue;
        bool dup = false;
        for (int k = 0; k < n_seen; k++)
            dup |= seen[k] == v.f_fsid;
        if (dup) continue;
        seen[n_seen++] = v.f_fsid;
        out->fs_free_bytes += (int64_t)v.f_bavail * (int64_t)v.f_frsize;
        out->fs_size_bytes += (int64_t)v.f_blocks * (int64_t)v.f_frsize;
    }
    if (out->budget_bytes > 0) {
        int64_t left = out->budget_bytes - out->used_bytes;
        out->free_bytes = left < 0 ? 0 : left;
        if (out->free_bytes > out->fs_free_bytes) out->free_bytes = out->fs_free_bytes;
    } else {
        out->free_bytes = out->fs_free_bytes;
    }
}

void kb_metrics_groups(kb_broker_t *b, kb_metrics_group_cb gcb, kb_metrics_offset_cb ocb, void *ud)
{
    kb_gstate_t *gs = kb_gstate(b);
    ks_store_t *s = kb_broker_store(b);
    if (!gs || !gs->coord) return;
    for (kb_group_t *g = kb_gcoord_next(gs->coord, NULL); g; g = kb_gcoord_next(gs->coord, g)) {
        if (g->state == KB_GROUP_DEAD) continue;
        if (gcb) gcb(ud, g->group_id, kb_group_state_name(g->state), g->n_members);
        if (!ocb) continue;
        for (kb_gmap_ent_t *e = kb_gmap_next(&g->offsets, NULL); e;
             e = kb_gmap_next(&g->offsets, e)) {
            kp_str_t topic;
            int32_t partition;
            kb_group_offset_key(e, &topic, &partition);
            const kb_offset_t *o = e->val;
            ks_topic_t *t = s ? ks_topic_find(s, topic.ptr, (size_t)topic.len) : NULL;
            ks_part_t *p = t ? ks_topic_part(t, partition) : NULL;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)topic.len, topic.ptr);
            ocb(ud, g->group_id, name, partition, o->offset, p ? ks_part_log_end(p) : -1);
        }
    }
}

int kb_metrics_kafka_conns(kb_broker_t *b, int listener_index)
{
    if (listener_index < 0 || listener_index >= b->cfg.n_listeners) return 0;
    const kb_listener_t *want = &b->cfg.listeners[listener_index];
    int n = 0;
    for (kb_conn_t *c = b->conns; c; c = kb_conn_next(c)) {
        const kb_listener_t *l = kb_conn_listener(c);
        n += l == want || (l && !strcmp(l->name, want->name));
    }
    return n;
}

int kb_metrics_history(kb_broker_t *b, kb_metrics_sample_t *out, int max)
{
    kb_metrics_t *m = state(b);
    if (!m) return 0;
    int n = m->n < max ? m->n : max;
    int first = (m->head - n + KB_METRICS_HISTORY) % KB_METRICS_HISTORY;
    for (int i = 0; i < n; i++)
        out[i] = m->ring[(first + i) % KB_METRICS_HISTORY];
    return n;
}

/* Messages appended so far, as the sum of log end offsets of live partitions (a deleted
 * topic's records drop out: the rate charts clamp negative steps to zero). */
static int64_t messages_in(ks_store_t *s)
{
    int64_t sum = 0;
    for (ks_topic_t *t = ks_topic_next(s, NULL); t; t = ks_topic_next(s, t)) {
        if (ks_topic_name(t)[0] == '_') continue; /* __consumer_offsets and friends */
        for (int32_t i = 0; i < ks_topic_partitions(t); i++)
            sum += ks_part_log_end(ks_topic_part(t, i));
    }
    return sum;
}

static void add_bytes_out(void *ud, const char *topic, const kb_topic_counters_t *c)
{
    (void)topic;
    *(int64_t *)ud += (int64_t)kb_ctr_read(&c->bytes_out);
}

int kb_metrics_add_source(kb_broker_t *b, kb_metrics_source_fn fn, void *ud)
{
    kb_metrics_t *m = state(b);
    if (!m) return 0; /* metrics are off: nobody will ask */
    for (int i = 0; i < KB_METRICS_MAX_SOURCES; i++) {
        if (!m->sources[i].fn) {
            m->sources[i].fn = fn;
            m->sources[i].ud = ud;
            return 0;
        }
    }
    return K_ERR_NOMEM;
}

void kb_metrics_remove_source(kb_broker_t *b, kb_metrics_source_fn fn, void *ud)
{
    kb_metrics_t *m = state(b);
    for (int i = 0; m && i < KB_METRICS_MAX_SOURCES; i++)
        if (m->sources[i].fn == fn && m->sources[i].ud == ud) m->sources[i].fn = NULL;
}

void kb_metrics_print_sources(kb_broker_t *b, kb_http_req_t *req)
{
    kb_metrics_t *m = state(b);
    for (int i = 0; m && i < KB_METRICS_MAX_SOURCES; i++)
        if (m->sources[i].fn) m->sources[i].fn(req, m->sources[i].ud);
}

static void sample(kb_metrics_t *m)
{
    kb_broker_t *b = m->broker;
    ks_store_t *s = kb_broker_store(b);
    kb_metrics_sample_t *x = &m->ring[m->head];
    memset(x, 0, sizeof *x);
    x->t_ms = kb_wall_ms();
    if (s) {
        ks_stats_t st;
        ks_store_stats(s, &st);
        x->bytes_in = st.bytes_appended;
        x->messages_in = messages_in(s);
    }
    kb_counters_foreach_topic(b, add_bytes_out, &x->bytes_out);
    x->conns = b->n_conns;
    m->head = (m->head + 1) % KB_METRICS_HISTORY;
    if (m->n < KB_METRICS_HISTORY) m->n++;
}

/* ------------------------------------------------------------------------------------------ */
/* Health                                                                                       */

static int h_healthz(kb_http_req_t *req, void *ud)
{
    (void)ud;
    kb_http_respond(req, 200, NULL, "ok\n", 3);
    return KB_DONE;
}

static int h_readyz(kb_http_req_t *req, void *ud)
{
    kb_metrics_t *m = ud;
    kb_broker_t *b = m->broker;
    kb_gstate_t *gs = kb_gstate(b);
    const char *why = NULL;
    if (b->stopping)
        why = "shutting down";
    else if (!b->store)
        why = "store not open";
    else if (!gs || !gs->ostore)
        why = "group coordinator unavailable (offsets log not open)";
    if (why) {
        kb_http_printf(req, "not ready: %s\n", why);
        kb_http_send(req, 503, NULL);
    } else {
        kb_http_respond(req, 200, NULL, "ready\n", 6);
    }
    return KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Subsystem                                                                                    */

static int subsys_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    if (!cfg->metrics_listeners[0]) return 0; /* off */
    kb_metrics_t *m = calloc(1, sizeof *m);   /* owned by the slot until close */
    if (!m) return K_ERR_NOMEM;
    m->broker = b;
    int rc = kb_http_listen(b, "metrics", cfg->metrics_listeners, NULL, &m->listener);
    if (rc < 0) {
        free(m);
        return rc;
    }
    struct {
        const char *path;
        kb_http_handler_fn fn;
    } routes[] = {
        {"/metrics", kb_metrics_prometheus},
        {"/", kb_metrics_dashboard},
        {"/index.html", kb_metrics_dashboard},
        {"/api/overview", kb_metrics_overview},
        {"/healthz", h_healthz},
        {"/readyz", h_readyz},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if ((rc = kb_http_route(m->listener, "GET", routes[i].path, routes[i].fn, m)) < 0) {
            free(m);
            return rc;
        }
    *kb_broker_slot(b, &kb_metrics_subsys) = m;
    sample(m);
    m->last_sample_mono = kb_mono_ms();
    return 0;
}

static void subsys_tick(kb_broker_t *b, int64_t mono_ms)
{
    kb_metrics_t *m = state(b);
    if (!m || mono_ms - m->last_sample_mono < KB_METRICS_SAMPLE_S * 1000) return;
    m->last_sample_mono = mono_ms;
    sample(m);
}

static void subsys_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_metrics_subsys);
    if (!slot) return;
    free(*slot); /* the listener belongs to the http subsystem, which closes after us */
    *slot = NULL;
}

const kb_subsys_t kb_metrics_subsys = {
    .name = "metrics",
    .init = subsys_init,
    .tick = subsys_tick,
    .close = subsys_close,
};

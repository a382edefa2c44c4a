/*
 * The client-quota subsystem (quota.h): the store and its file, the rates, throttling and the
 * /metrics families.
 *
 * Hot path (kb_quota_record): with no quota configured anywhere it returns at once. Otherwise
 * one hash lookup finds the (principal, client-id) "ident", which caches the quota that
 * applies to it and a pointer to the shared rate ("sensor") of the matched entity; the cache
 * is recomputed only when the store's generation changed. Recording and measuring walk the
 * fixed sample array (quota.window.num entries). Idents and sensors idle for an hour are
 * dropped (Kafka expires its quota sensors after an hour too).
 *
 * Durability: AlterClientQuotas changes the store in memory and calls kb_quota_commit, which
 * formats the file on the loop and writes it on libuv's threadpool (temp file, fsync, rename,
 * directory fsync) so a slow flash write never stalls the loop; the answer waits for it.
 * One write at a time: changes arriving meanwhile are written together by the next one. A
 * failed write reloads the store from the file (what is durable) and fails those answers.
 * The worker never logs (the logger is loop-only): it leaves errno and the step for the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth/auth.h"
#include "broker/core/clock.h"
#include "broker/http/http.h"
#include "broker/metrics/metrics.h"
#include "broker/quota/quota.h"
#include "broker/quota/rate.h"

#define NBUCKETS 1024
#define IDLE_EXPIRE_MS (3600 * 1000)
#define EXPIRE_EVERY_MS (60 * 1000)

typedef struct sensor {
    struct sensor *next;
    uint32_t hash;
    int type;
    int refs; /* idents pointing here */
    kb_rate_t rate;
    double bound;
    int64_t last_ms;
    uint64_t throttles;
    int64_t throttle_ms;
    char *client; /* into key[] */
    char key[];   /* user \0 client \0 */
} sensor_t;

typedef struct ident {
    struct ident *next;
    uint32_t hash;
    uint64_t gen; /* store generation the cache below is for */
    int64_t last_ms;
    sensor_t *s[2];
    double bound[2];
    char *client;
    char key[];
} ident_t;

typedef struct waiter {
    kb_req_t *req;
    void (*done)(kb_req_t *req, int status);
    struct waiter *next;
} waiter_t;

typedef struct {
    kb_broker_t *b;
    char *dir; /* owned */
    kb_qstore_t store;
    kb_rate_cfg_t rcfg;
    double static_def[2]; /* INFINITY = none */
    ident_t *idents[NBUCKETS];
    sensor_t *sensors[NBUCKETS];
    int n_idents, n_sensors;
    int64_t next_expire_ms;
    uint64_t throttles[2];
    int64_t throttle_ms[2];
    /* saving */
    uv_work_t work;
    bool saving, closing;
    waiter_t *pending, *inflight; /* waiters live in their request's arena */
    char *buf;                    /* the text being written, owned while saving */
    size_t len;
    int werrno;        /* set by the worker */
    const char *wstep; /* which step failed (static string) */
} qstate_t;

static qstate_t *get(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_quota_subsys);
    return slot ? *slot : NULL;
}

kb_qstore_t *kb_quota_store(kb_broker_t *b)
{
    qstate_t *q = get(b);
    return q ? &q->store : NULL;
}

static uint32_t hash2(int type, const char *a, const char *c)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;
    for (const char *p = a; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = c; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* ------------------------------------------------------------------------------------------ */
/* Sensors and idents                                                                           */

static sensor_t *sensor_ref(qstate_t *q, int type, const char *user, const char *client)
{
    uint32_t h = hash2(type, user, client);
    sensor_t **bucket = &q->sensors[h % NBUCKETS];
    for (sensor_t *s = *bucket; s; s = s->next)
        if (s->hash == h && s->type == type && !strcmp(s->key, user) && !strcmp(s->client, client)) {
            s->refs++;
            return s;
        }
    size_t ul = strlen(user), cl = strlen(client);
    sensor_t *s = calloc(1, sizeof *s + ul + cl + 2); /* owned by the bucket */
    if (!s) return NULL;
    memcpy(s->key, user, ul + 1);
    s->client = s->key + ul + 1;
    memcpy(s->client, client, cl + 1);
    s->hash = h;
    s->type = type;
    s->refs = 1;
    s->last_ms = kb_mono_ms();
    kb_rate_init(&s->rate);
    s->next = *bucket;
    *bucket = s;
    q->n_sensors++;
    return s;
}

static void sensor_unref(qstate_t *q, sensor_t *s)
{
    if (!s || --s->refs > 0) return;
    for (sensor_t **pp = &q->sensors[s->hash % NBUCKETS]; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            q->n_sensors--;
            free(s);
            return;
        }
}

/* Recomputes which quota applies to id and which rate it shares (the store changed). */
static void ident_resolve(qstate_t *q, ident_t *id)
{
    for (int t = 0; t < 2; t++) {
        int level;
        bool su, sc;
        int key = t == KB_QUOTA_PRODUCE ? KB_QK_PRODUCER_BYTE_RATE : KB_QK_CONSUMER_BYTE_RATE;
        double v = kb_qstore_resolve(&q->store, key, id->key, id->client, &level, &su, &sc);
        if (!level && isfinite(q->static_def[t])) { /* the static default is per client-id */
            v = q->static_def[t];
            su = false;
            sc = true;
        }
        sensor_t *s = NULL;
        if (!isnan(v)) s = sensor_ref(q, t, su ? id->key : "", sc ? id->client : "");
        sensor_unref(q, id->s[t]);
        id->s[t] = s;
        id->bound[t] = s ? v : NAN;
        if (s) s->bound = v;
    }
    id->gen = q->store.gen;
}

static ident_t *ident_get(qstate_t *q, const char *user, const char *client)
{
    uint32_t h = hash2(9, user, client);
    ident_t **bucket = &q->idents[h % NBUCKETS];
    ident_t *id = NULL;
    for (ident_t *x = *bucket; x && !id; x = x->next)
        if (x->hash == h && !strcmp(x->key, user) && !strcmp(x->client, client)) id = x;
    if (!id) {
        size_t ul = strlen(user), cl = strlen(client);
        if (!(id = calloc(1, sizeof *id + ul + cl + 2))) return NULL; /* owned by the bucket */
        memcpy(id->key, user, ul + 1);
        id->client = id->key + ul + 1;
        memcpy(id->client, client, cl + 1);
        id->hash = h;
        id->gen = q->store.gen - 1; /* resolve below */
        id->next = *bucket;
        *bucket = id;
        q->n_idents++;
    }
    if (id->gen != q->store.gen) ident_resolve(q, id);
    id->last_ms = kb_mono_ms();
    return id;
}

static void expire_idle(qstate_t *q, int64_t now)
{
    for (int i = 0; i < NBUCKETS; i++)
        for (ident_t **pp = &q->idents[i]; *pp;) {
            ident_t *id = *pp;
            if (now - id->last_ms < IDLE_EXPIRE_MS) {
                pp = &id->next;
                continue;
            }
            *pp = id->next;
            sensor_unref(q, id->s[0]);
            sensor_unref(q, id->s[1]);
            free(id);
            q->n_idents--;
        }
}

static bool active(const qstate_t *q)
{
    return q && (q->store.n > 0 || isfinite(q->static_def[0]) || isfinite(q->static_def[1]));
}

static ident_t *req_ident(qstate_t *q, kb_req_t *req)
{
    char client[KB_QUOTA_NAME_MAX + 1] = "";
    kp_str_t cid = req->hdr.client_id;
    if (cid.len > 0) { /* longer ids are cut: they would share one rate */
        size_t n = (size_t)cid.len < sizeof client - 1 ? (size_t)cid.len : sizeof client - 1;
        memcpy(client, cid.ptr, n);
        client[n] = 0;
    }
    return ident_get(q, kb_conn_principal(req->conn)->name, client);
}

int32_t kb_quota_record(kb_req_t *req, int type, int64_t bytes)
{
    qstate_t *q = get(req->broker);
    if (!active(q)) return 0;
    ident_t *id = req_ident(q, req);
    sensor_t *s = id ? id->s[type] : NULL;
    if (!s) return 0;
    int64_t now = kb_mono_ms();
    kb_rate_record(&s->rate, &q->rcfg, (double)bytes, now);
    s->last_ms = now;
    int64_t t = kb_rate_throttle_ms(&s->rate, &q->rcfg, id->bound[type], now);
    return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

void kb_quota_unrecord(kb_req_t *req, int type, int64_t bytes)
{
    qstate_t *q = get(req->broker);
    if (!active(q)) return;
    ident_t *id = req_ident(q, req);
    if (id && id->s[type])
        kb_rate_record(&id->s[type]->rate, &q->rcfg, -(double)bytes, kb_mono_ms());
}

int64_t kb_quota_fetch_cap(kb_req_t *req)
{
    qstate_t *q = get(req->broker);
    if (!active(q)) return INT64_MAX;
    ident_t *id = req_ident(q, req);
    if (!id || !id->s[KB_QUOTA_FETCH]) return INT64_MAX;
    double cap = id->bound[KB_QUOTA_FETCH] * (double)q->rcfg.window_ms / 1000.0;
    return cap >= (double)INT64_MAX ? INT64_MAX : cap < 1 ? 1 : (int64_t)cap;
}

void kb_quota_throttle(kb_req_t *req, int type, int32_t ms, bool delay)
{
    qstate_t *q = get(req->broker);
    if (!q || ms <= 0) return;
    q->throttles[type]++;
    q->throttle_ms[type] += ms;
    ident_t *id = req_ident(q, req);
    if (id && id->s[type]) {
        id->s[type]->throttles++;
        id->s[type]->throttle_ms += ms;
    }
    kb_conn_throttle(req->conn, ms, delay ? req : NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The file                                                                                     */

static int load(qstate_t *q, kb_qstore_t *into, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", q->dir, KB_QUOTA_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%.400s: %s", path, strerror(errno));
        return K_ERR_IO;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    int rc = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nt = realloc(text, cap = cap ? cap * 2 : 16384);
            if (!nt) {
                rc = K_ERR_NOMEM;
                break;
            }
            text = nt;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%.400s: read error", path);
        rc = K_ERR_IO;
    }
    fclose(f);
    if (rc == 0) {
        text[len] = 0;
        rc = kb_qstore_parse(into, text, err, errlen);
    }
    free(text);
    return rc;
}

/* Threadpool: dir/name.tmp, fsync, rename, directory fsync. Never logs. */
static void save_work(uv_work_t *w)
{
    qstate_t *q = w->data;
    char tmp[4096], path[4096];
    snprintf(path, sizeof path, "%s/%s", q->dir, KB_QUOTA_FILE);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", q->dir, KB_QUOTA_FILE);
    q->werrno = 0;
    q->wstep = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) goto fail;
    q->wstep = "write";
    for (size_t off = 0; off < q->len;) {
        ssize_t n = write(fd, q->buf + off, q->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto fail_fd;
        off += (size_t)n;
    }
    q->wstep = "fsync";
    if (fsync(fd) != 0) goto fail_fd;
    close(fd);
    q->wstep = "rename";
    if (rename(tmp, path) != 0) goto fail_unlink;
    q->wstep = "directory fsync";
    fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) goto fail;
    if (fsync(fd) != 0) goto fail_fd;
    close(fd);
    return;
fail_fd:
    q->werrno = errno ? errno : EIO;
    close(fd);
    if (strcmp(q->wstep, "directory fsync")) unlink(tmp);
    return;
fail_unlink:
    q->werrno = errno ? errno : EIO;
    unlink(tmp);
    return;
fail:
    q->werrno = errno ? errno : EIO;
}

static void start_save(qstate_t *q);

static void finish_waiters(waiter_t *w, int status)
{
    while (w) {
        waiter_t *next = w->next; /* w lives in req's arena: read next first */
        w->done(w->req, status);
        w = next;
    }
}

static void qstate_free(qstate_t *q)
{
    for (int i = 0; i < NBUCKETS; i++) {
        for (ident_t *id = q->idents[i], *n; id; id = n) {
            n = id->next;
            free(id);
        }
        for (sensor_t *s = q->sensors[i], *n; s; s = n) {
            n = s->next;
            free(s);
        }
    }
    kb_qstore_deinit(&q->store);
    free(q->dir);
    free(q);
}

static void save_done(uv_work_t *w, int status)
{
    qstate_t *q = w->data;
    free(q->buf);
    q->buf = NULL;
    q->saving = false;
    int rc = 0;
    if (status < 0 || q->werrno) {
        kb_log(KB_LOG_ERROR, "%s/%s: %s: %s; client quotas reloaded from the file", q->dir,
               KB_QUOTA_FILE, q->wstep ? q->wstep : "queue",
               status < 0 ? uv_strerror(status) : strerror(q->werrno));
        kb_qstore_t fresh;
        char err[512] = "";
        kb_qstore_init(&fresh);
        uint64_t gen = q->store.gen;
        if (load(q, &fresh, err, sizeof err) == 0) {
            kb_qstore_deinit(&q->store);
            q->store = fresh;
        } else {
            kb_qstore_deinit(&fresh);
            kb_log(KB_LOG_ERROR, "client quotas: reload failed (%s); keeping memory", err);
        }
        q->store.gen = gen + 1; /* every ident re-resolves */
        rc = K_ERR_IO;
    }
    waiter_t *done = q->inflight;
    q->inflight = NULL;
    finish_waiters(done, rc);
    if (q->closing) {
        finish_waiters(q->pending, K_ERR_IO);
        q->pending = NULL;
        qstate_free(q);
        return;
    }
    start_save(q);
}

static void start_save(qstate_t *q)
{
    if (q->saving || !q->pending) return;
    q->inflight = q->pending;
    q->pending = NULL;
    q->saving = true;
    q->wstep = NULL;
    q->werrno = 0;
    q->work.data = q;
    if (kb_qstore_format(&q->store, &q->buf, &q->len) < 0) {
        save_done(&q->work, UV_ENOMEM);
        return;
    }
    int rc = uv_queue_work(kb_broker_loop(q->b), &q->work, save_work, save_done);
    if (rc < 0) save_done(&q->work, rc);
}

int kb_quota_commit(kb_broker_t *b, kb_req_t *req, void (*done)(kb_req_t *req, int status))
{
    qstate_t *q = get(b);
    waiter_t *w = q ? kp_arena_alloc(&req->arena, sizeof *w) : NULL;
    if (!w) return K_ERR_NOMEM;
    w->req = req;
    w->done = done;
    w->next = NULL;
    waiter_t **pp = &q->pending;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    start_save(q);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* /metrics                                                                                     */

static const char *const type_names[2] = {"produce", "fetch"};

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 3 < cap; in++) {
        if (*in == '\\' || *in == '"') out[o++] = '\\';
        if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            continue;
        }
        out[o++] = *in;
    }
    out[o] = 0;
}

static void prom_source(kb_http_req_t *hr, void *ud)
{
    qstate_t *q = get(ud);
    if (!q) return;
    kb_http_printf(hr, "# HELP depot_quota_throttled_total Produce and Fetch requests throttled "
                       "by a client quota.\n# TYPE depot_quota_throttled_total counter\n");
    for (int t = 0; t < 2; t++)
        kb_http_printf(hr, "depot_quota_throttled_total{type=\"%s\"} %llu\n", type_names[t],
                       (unsigned long long)q->throttles[t]);
    kb_http_printf(hr, "# HELP depot_quota_throttle_time_ms_total Throttle time handed out by "
                       "client quotas, in ms.\n# TYPE depot_quota_throttle_time_ms_total "
                       "counter\n");
    for (int t = 0; t < 2; t++)
        kb_http_printf(hr, "depot_quota_throttle_time_ms_total{type=\"%s\"} %lld\n",
                       type_names[t], (long long)q->throttle_ms[t]);
    kb_http_printf(hr, "# HELP depot_quota_entities Client quotas configured "
                       "(AlterClientQuotas).\n# TYPE depot_quota_entities gauge\n"
                       "depot_quota_entities %d\n",
                   q->store.n);
    static const char *fam[3][2] = {
        {"depot_quota_rate_bytes_per_second", "Measured byte rate of a quota's rate"},
        {"depot_quota_limit_bytes_per_second", "The quota a rate is held to"},
        {"depot_quota_entity_throttled_total", "Requests throttled on a quota's rate"}};
    int64_t now = kb_mono_ms();
    for (int f = 0; f < 3; f++) {
        kb_http_printf(hr, "# HELP %s %s (user and client_id are empty when the quota is not "
                           "per that part).\n# TYPE %s %s\n",
                       fam[f][0], fam[f][1], fam[f][0], f == 2 ? "counter" : "gauge");
        for (int i = 0; i < NBUCKETS; i++)
            for (sensor_t *s = q->sensors[i]; s; s = s->next) {
                char u[3 * KB_QUOTA_NAME_MAX], c[3 * KB_QUOTA_NAME_MAX];
                label(u, sizeof u, s->key);
                label(c, sizeof c, s->client);
                double v = f == 0   ? kb_rate_measure(&s->rate, &q->rcfg, now)
                           : f == 1 ? s->bound
                                    : (double)s->throttles;
                kb_http_printf(hr, "%s{type=\"%s\",user=\"%s\",client_id=\"%s\"} %.17g\n",
                               fam[f][0], type_names[s->type], u, c, v);
            }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Subsystem                                                                                    */

static int quota_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    qstate_t *q = calloc(1, sizeof *q); /* owned by the slot; freed in close (or by the last
                                         * save's completion when one is still running) */
    if (!q || !(q->dir = strdup(cfg->log_dirs[0]))) {
        free(q);
        return K_ERR_NOMEM;
    }
    q->b = b;
    kb_qstore_init(&q->store);
    q->rcfg.num = cfg->quota_window_num;
    q->rcfg.window_ms = (int64_t)cfg->quota_window_size_seconds * 1000;
    q->static_def[0] = cfg->quota_producer_default < INT64_MAX
                           ? (double)cfg->quota_producer_default
                           : INFINITY;
    q->static_def[1] = cfg->quota_consumer_default < INT64_MAX
                           ? (double)cfg->quota_consumer_default
                           : INFINITY;
    char err[512] = "";
    int rc = load(q, &q->store, err, sizeof err);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "client quotas: %s", err);
        qstate_free(q);
        return rc;
    }
    q->store.gen = 1;
    *kb_broker_slot(b, &kb_quota_subsys) = q;
    kb_metrics_add_source(b, prom_source, b);
    if (q->store.n)
        kb_log(KB_LOG_INFO, "client quotas: %d entities loaded from %s/%s", q->store.n, q->dir,
               KB_QUOTA_FILE);
    return 0;
}

static void quota_tick(kb_broker_t *b, int64_t mono_ms)
{
    qstate_t *q = get(b);
    if (!q || mono_ms < q->next_expire_ms) return;
    q->next_expire_ms = mono_ms + EXPIRE_EVERY_MS;
    expire_idle(q, mono_ms);
}

static void quota_close(kb_broker_t *b)
{
    qstate_t *q = get(b);
    if (!q) return;
    kb_metrics_remove_source(b, prom_source, b);
    *kb_broker_slot(b, &kb_quota_subsys) = NULL;
    if (q->saving) { /* the completion answers its waiters and frees q */
        q->closing = true;
        return;
    }
    finish_waiters(q->pending, K_ERR_IO);
    q->pending = NULL;
    qstate_free(q);
}

const kb_subsys_t kb_quota_subsys = {"quota", quota_init, quota_tick, NULL, quota_close, NULL};

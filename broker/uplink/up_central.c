/*
 * The central side: librdkafka configuration, the idempotent producer, and the resolve job.
 *
 * The resolve job runs on the libuv threadpool because every call it makes blocks (metadata,
 * CreateTopics, watermarks, consuming). For each central topic it is given, it
 *   1. destroys the previous producer first, if it was handed one, and waits a settle time,
 *      so no request of that producer is still being answered while we read;
 *   2. looks the topic up, creating it with the local partition count when it is missing and
 *      uplink.topic.create allows (a concurrent creation, TOPIC_ALREADY_EXISTS, is fine);
 *   3. reads every partition from the checkpoint's scan_from (if it has one) to the high
 *      watermark, and keeps, per local partition, the highest source offset
 *      found in our depot.src headers ("<cluster-id>:<local topic>:<partition>:<offset>");
 *   4. reports the high watermarks, which become the new scan_from: everything of ours below
 *      them is now covered by the resumed `acked`.
 * Ownership: the job and its copies are allocated here and freed by after_work on the loop;
 * the work function touches only the job.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/uplink/up_int.h"
#include "broker/uplink/uplink.h"

#define JOB_TIMEOUT_MS 10000
/* Before a read-back that follows another producer (this process's old one, or the previous
 * process's after a restart, kill -9 included), the central broker gets this long to finish
 * requests it has already received from it: they sit in its request queue after the
 * connection closed, and another connection's ListOffsets/Fetch may be served first. */
#define SETTLE_MS 2000

typedef struct {
    char *local, *central; /* owned copies */
    int32_t nlocal;
    bool create;
    int64_t *scan; /* [nscan] input, owned; -1 = unknown */
    int32_t nscan;
    /* results */
    int32_t ncentral; /* 0 on failure */
    int64_t *hw;      /* [ncentral] */
    up_offsets_t *found; /* [nlocal]: our source offsets seen on the central side */
    /* the same records with where they are (central partition and offset), in read order */
    struct found_at {
        int32_t q;
        up_pending_t e;
    } *at;
    uint32_t nat, capat;
    bool missing;     /* absent and not created */
    char error[160];
} job_topic_t;

struct up_job {
    uv_work_t work;
    up_t *u;
    rd_kafka_conf_t *conf; /* consumed by rd_kafka_new in the work function */
    rd_kafka_t *old_rk;
    bool settle; /* another producer may have sent just before: wait SETTLE_MS first */
    bool full;
    char cluster_id[64];
    job_topic_t *topics;
    int ntopics;
    char error[480];
    char link_error[300]; /* the read-back client's last error (authentication, TLS, ...) */
    /* transactional mode (full jobs, uplink.exactly.once != readback) */
    bool want_txn, required;
    bool readback_too; /* the previous session was read-back: read back once more */
    int txn_rc;        /* up_txn_job_run's result; -2 = not tried */
    up_txn_job_t txn;
};

int64_t up_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                                */

static int set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "uplink.producer.%s: %s", k, e);
        return -1;
    }
    return 0;
}

/* Settings exactly-once depends on; an operator's different value is overridden, loudly. */
static const char *const forced[][2] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
};

static const char *user_value(const up_t *u, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < u->cfg->n_uplink_producer; i++) {
        const char *kv = u->cfg->uplink_producer[i];
        if (!strncmp(kv, key, n) && kv[n] == '=') return kv + n + 1;
    }
    return NULL;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    kb_log(level <= 3 ? KB_LOG_ERROR : level <= 4 ? KB_LOG_WARN : KB_LOG_DEBUG,
           "uplink: librdkafka %s: %s", fac, buf);
}

rd_kafka_conf_t *up_conf_new(const up_t *u, bool producer, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int rc = set(c, "bootstrap.servers", u->cfg->uplink_bootstrap, err, errlen);
    rc |= set(c, "client.id", "depot-uplink", err, errlen);
    rc |= set(c, "log_level", "4", err, errlen);
    if (producer) {
        rc |= set(c, "compression.type", "zstd", err, errlen);
        rc |= set(c, "linger.ms", "20", err, errlen);
        /* Never time a record out inside librdkafka: a timed-out batch can leave a hole
         * behind later ones that were appended. The uplink's own watchdog
         * (uplink.delivery.timeout.ms) replaces the whole producer instead. */
        rc |= set(c, "message.timeout.ms", "0", err, errlen);
        rc |= set(c, "enable.gapless.guarantee", "true", err, errlen);

        rc |= set(c, "reconnect.backoff.ms", "200", err, errlen);
        rc |= set(c, "reconnect.backoff.max.ms", "10000", err, errlen);
    }
    /* The operator's settings. Producer-only keys are skipped for the read-back consumer, which
     * shares the connection settings (security.protocol, sasl.*, ssl.*, ...). */
    for (int i = 0; rc == 0 && i < u->cfg->n_uplink_producer; i++) {
        const char *kv = u->cfg->uplink_producer[i];
        char key[128];
        size_t kl = strcspn(kv, "=");
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, kv, kl);
        key[kl] = 0;
        char e[256];
        rd_kafka_conf_res_t r = rd_kafka_conf_set(c, key, kv + kl + 1, e, sizeof e);
        if (r == RD_KAFKA_CONF_OK) continue;
        if (!producer) continue; /* a producer-only key (compression.type, linger.ms, ...) */
        snprintf(err, errlen, "uplink.producer.%s: %s", key, e);
        rc = -1;
    }
    if (producer) {
        for (size_t i = 0; rc == 0 && i < sizeof forced / sizeof forced[0]; i++) {
            const char *v = user_value(u, forced[i][0]);
            if (v && strcmp(v, forced[i][1]))
                kb_log(KB_LOG_WARN, "uplink: uplink.producer.%s=%s ignored: exactly-once needs %s",
                       forced[i][0], v, forced[i][1]);
            rc |= set(c, forced[i][0], forced[i][1], err, errlen);
        }
        const char *mif = user_value(u, "max.in.flight.requests.per.connection");
        if (!mif || atoi(mif) > 5 || atoi(mif) < 1)
            rc |= set(c, "max.in.flight.requests.per.connection", "5", err, errlen);
        rc |= set(c, "log.queue", "true", err, errlen);
    } else {
        rc |= set(c, "enable.auto.commit", "false", err, errlen);
        /* EOF marks the end of a partition whose last records are invisible (control records,
         * aborted transactions); read_committed: only what transactions committed counts */
        rc |= set(c, "enable.partition.eof", "true", err, errlen);
        rc |= set(c, "isolation.level", "read_committed", err, errlen);
        rc |= set(c, "auto.offset.reset", "earliest", err, errlen);
        rd_kafka_conf_set_log_cb(c, on_log);
    }
    if (rc) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* The resolve job (threadpool)                                                                 */

static void jerr(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jerr(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Partition count of the central topic, 0 if it does not exist, < 0 on failure. */
int up_central_partitions(rd_kafka_t *rk, const char *name, char *err, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    if (!rkt) return -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, JOB_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e) {
        jerr(err, errlen, "metadata: %s", rd_kafka_err2str(e));
        return -1;
    }
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name)) continue;
        rd_kafka_resp_err_t te = md->topics[i].err;
        if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || te == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            n = 0;
        else if (te)
            jerr(err, errlen, "metadata of %s: %s", name, rd_kafka_err2str(te));
        else
            n = md->topics[i].partition_cnt;
    }
    if (n < 0 && !err[0]) n = 0;
    rd_kafka_metadata_destroy(md);
    return n;
}

int up_create_topic(rd_kafka_t *rk, const char *name, int32_t parts, bool compact, char *err,
                    size_t errlen)
{
    char e[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, parts, -1, e, sizeof e);
    if (nt && compact && rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact")) {
        rd_kafka_NewTopic_destroy(nt);
        nt = NULL;
        snprintf(e, sizeof e, "cleanup.policy=compact refused");
    }
    if (!nt) {
        jerr(err, errlen, "create %s: %s", name, e);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, JOB_TIMEOUT_MS + 1000);
    int rc = -1;
    if (!ev) {
        jerr(err, errlen, "create %s: timed out", name);
    } else if (rd_kafka_event_error(ev)) {
        jerr(err, errlen, "create %s: %s", name, rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t te = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            jerr(err, errlen, "create %s: %s", name, rd_kafka_topic_result_error_string(res[0]));
        else
            rc = 0;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* "<cluster-id>:<local>:<partition>:<offset>" of ours -> partition and offset. */
static bool parse_src(const job_topic_t *jt, const char *cid, const void *v, size_t n,
                      int32_t *part, int64_t *off)
{
    char s[512];
    if (!v || n >= sizeof s) return false;
    memcpy(s, v, n);
    s[n] = 0;
    size_t cl = strlen(cid), tl = strlen(jt->local);
    if (strncmp(s, cid, cl) || s[cl] != ':' || strncmp(s + cl + 1, jt->local, tl) ||
        s[cl + 1 + tl] != ':')
        return false;
    char *end;
    long long p = strtoll(s + cl + tl + 2, &end, 10);
    if (*end != ':' || p < 0 || p >= jt->nlocal) return false;
    long long o = strtoll(end + 1, &end, 10);
    if (*end || o < 0) return false;
    *part = (int32_t)p;
    *off = o;
    return true;
}

static int add_at(job_topic_t *jt, int32_t q, int64_t coff, int32_t lp, int64_t loff)
{
    if (jt->nat == jt->capat) {
        uint32_t cap = jt->capat ? jt->capat * 2 : 64;
        struct found_at *v = realloc(jt->at, cap * sizeof *v);
        if (!v) return K_ERR_NOMEM;
        jt->at = v;
        jt->capat = cap;
    }
    jt->at[jt->nat++] = (struct found_at){.q = q, .e = {.coff = coff, .loff = loff, .lp = lp}};
    return 0;
}

/* Reads [from, hw) of every partition that has something there; fills jt->found. The legacy
 * (simple) consumer API: no group.id, so no group ACLs or coordinator are needed centrally. */
static int read_back(rd_kafka_t *rk, const char *cid, job_topic_t *jt, const int64_t *from)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, jt->central, NULL);
    rd_kafka_queue_t *rq = rd_kafka_queue_new(rk);
    bool *started = calloc((size_t)jt->ncentral, sizeof *started);
    bool *done = calloc((size_t)jt->ncentral, sizeof *done);
    int rc = rkt && rq && started && done ? 0 : -1;
    int pending = 0;
    for (int32_t q = 0; rc == 0 && q < jt->ncentral; q++) {
        if (from[q] >= jt->hw[q]) continue;
        if (rd_kafka_consume_start_queue(rkt, q, from[q], rq) < 0) {
            jerr(jt->error, sizeof jt->error, "read-back of %s/%d: %s", jt->central, q,
                 rd_kafka_err2str(rd_kafka_last_error()));
            rc = -1;
            break;
        }
        started[q] = true;
        pending++;
    }
    int64_t deadline = mono_ms() + JOB_TIMEOUT_MS * 6;
    while (rc == 0 && pending > 0) {
        if (mono_ms() > deadline) {
            jerr(jt->error, sizeof jt->error, "read-back of %s timed out", jt->central);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consume_queue(rq, 200);
        if (!m) continue;
        int32_t q = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (q >= 0 && q < jt->ncentral && !done[q] && started[q] && m->offset >= jt->hw[q]) {
                done[q] = true; /* the last records were not ours to see (aborted, markers) */
                pending--;
            }
        } else if (m->err) {
            jerr(jt->error, sizeof jt->error, "read-back of %s: %s", jt->central,
                 rd_kafka_message_errstr(m));
            rc = -1;
        } else if (q >= 0 && q < jt->ncentral && !done[q]) {
            rd_kafka_headers_t *h = NULL;
            const void *v;
            size_t vn;
            int32_t p;
            int64_t off;
            if (!rd_kafka_message_headers(m, &h) &&
                !rd_kafka_header_get_last(h, UP_SRC_HEADER, &v, &vn) &&
                parse_src(jt, cid, v, vn, &p, &off) &&
                (up_offsets_add(&jt->found[p], off) < 0 || add_at(jt, q, m->offset, p, off) < 0)) {
                jerr(jt->error, sizeof jt->error, "read-back: out of memory");
                rc = -1;
            }
            if (m->offset >= jt->hw[q] - 1) {
                done[q] = true;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    for (int32_t q = 0; started && q < jt->ncentral; q++)
        if (started[q]) rd_kafka_consume_stop(rkt, q);
    free(started);
    free(done);
    if (rq) rd_kafka_queue_destroy(rq);
    if (rkt) rd_kafka_topic_destroy(rkt);
    return rc;
}

static int resolve_topic(rd_kafka_t *rk, const char *cid, job_topic_t *jt, bool readback)
{
    int n = up_central_partitions(rk, jt->central, jt->error, sizeof jt->error);
    if (n == 0 && jt->create) {
        if (up_create_topic(rk, jt->central, jt->nlocal, false, jt->error, sizeof jt->error) < 0)
            return -1;
        for (int i = 0; i < 20 && n == 0; i++) { /* metadata catches up with the creation */
            if (i) usleep(200 * 1000);
            n = up_central_partitions(rk, jt->central, jt->error, sizeof jt->error);
        }
    }
    if (n < 0) return -1;
    if (n == 0) {
        jt->missing = true;
        jerr(jt->error, sizeof jt->error, "central topic %s does not exist", jt->central);
        return -1;
    }
    jt->hw = calloc((size_t)n, sizeof *jt->hw);
    int64_t *from = calloc((size_t)n, sizeof *from);
    if (!jt->hw || !from) {
        free(from);
        return -1;
    }
    jt->ncentral = n;
    int rc = 0;
    for (int32_t q = 0; q < n && rc == 0; q++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int attempt = 0; attempt < 20; attempt++) { /* a new topic's leader is elected */
            e = rd_kafka_query_watermark_offsets(rk, jt->central, q, &lo, &hi, JOB_TIMEOUT_MS);
            if (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
                e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
                e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                break;
            usleep(250 * 1000);
        }
        if (e) {
            jerr(jt->error, sizeof jt->error, "watermarks of %s/%d: %s", jt->central, q,
                 rd_kafka_err2str(e));
            rc = -1;
            break;
        }
        jt->hw[q] = hi;
        /* No scan_from: nothing of ours can be there, because scan_from is made durable
         * before the first record goes to a central partition (and a local topic deleted and
         * created again starts here too, after its old incarnation's records). Beyond the
         * high watermark: the central topic was recreated, read all of it. */
        int64_t f = q < jt->nscan ? jt->scan[q] : -1;
        if (f < 0 || !readback) f = hi;
        if (f > hi) f = lo;
        from[q] = f < lo ? lo : f;
    }
    if (rc == 0) rc = read_back(rk, cid, jt, from);
    free(from);
    if (rc < 0) jt->ncentral = 0;
    return rc;
}

/* The read-back client's error callback, served by rd_kafka_poll in the job's thread: a wrong
 * password or CA shows up here, while the blocking calls only time out. */
static void job_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    up_job_t *j = opaque;
    /* "all brokers are down" is the consequence; the error before it (SASL authentication,
     * the TLS handshake) is the cause the operator needs. librdkafka >= 2.x reports both. */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && j->link_error[0]) return;
    snprintf(j->link_error, sizeof j->link_error, "%s: %s", rd_kafka_err2name(err), reason);
}

/* A transactional session first (it fences the previous producer); the read-back when the
 * central cluster refuses, or once after a read-back session. False: the job failed. */
static bool job_txn(up_job_t *j, rd_kafka_t *rk, bool *readback)
{
    *readback = true;
    if (!j->want_txn) return true;
    j->txn_rc = up_txn_job_run(&j->txn, rk);
    if (j->txn_rc == 1) {
        *readback = j->readback_too;
        return true;
    }
    if (j->txn_rc < 0 || j->required) {
        rd_kafka_poll(rk, 0); /* error callbacks: why the link does not work */
        jerr(j->error, sizeof j->error, "transactions: %s%s%s", j->txn.reason,
             j->link_error[0] ? " " : "", j->link_error);
        return false;
    }
    return true;
}

static void job_work(uv_work_t *w)
{
    up_job_t *j = w->data;
    if (j->old_rk) {
        rd_kafka_destroy(j->old_rk);
        j->old_rk = NULL;
    }
    char e[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, j->conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(j->conf);
        j->conf = NULL;
        jerr(j->error, sizeof j->error, "cannot create the read-back client: %s", e);
        return;
    }
    j->conf = NULL; /* owned by rk now */
    bool readback;
    if (!job_txn(j, rk, &readback)) {
        rd_kafka_destroy(rk);
        return;
    }
    /* the old producer's last requests land first (init_transactions fenced it otherwise) */
    if (readback && j->settle) usleep(SETTLE_MS * 1000);
    for (int i = 0; i < j->ntopics; i++) {
        job_topic_t *jt = &j->topics[i];
        if (resolve_topic(rk, j->cluster_id, jt, readback) < 0 && !jt->missing) {
            rd_kafka_poll(rk, 0); /* error callbacks: why the link does not work */
            if (j->link_error[0])
                jerr(j->error, sizeof j->error, "%s (%s)", jt->error, j->link_error);
            else
                jerr(j->error, sizeof j->error, "%s", jt->error);
            break; /* the link is the likely cause: the rest would fail the same way */
        }
    }
    rd_kafka_destroy(rk);
    if (j->error[0] && j->txn.rk) { /* not handed over: the next job starts a new one */
        rd_kafka_destroy(j->txn.rk);
        j->txn.rk = NULL;
    }
}

static void job_free(up_job_t *j)
{
    if (!j) return;
    for (int i = 0; i < j->ntopics; i++) {
        job_topic_t *jt = &j->topics[i];
        free(jt->local);
        free(jt->central);
        free(jt->scan);
        free(jt->hw);
        for (int32_t k = 0; jt->found && k < jt->nlocal; k++)
            free(jt->found[k].v);
        free(jt->found);
        free(jt->at);
    }
    free(j->topics);
    if (j->conf) rd_kafka_conf_destroy(j->conf);
    up_txn_job_free(&j->txn);
    free(j);
}

/* Applies one topic's results: the mapping, the new scan_from, and where each partition
 * resumes (after the higher of the checkpoint and what the central side holds). */
/* Transactional session: each partition resumes at its committed position (or past it, when
 * the checkpoint is ahead: a read-back session since the last commit). */
static void apply_committed(up_topic_t *t, up_part_t *p, const up_job_t *j, ks_topic_t *kt,
                            bool was_known)
{
    bool other = false;
    int64_t c = kt ? up_txn_committed(&j->txn, t->name, p->partition, ks_topic_id(kt), &other) : -1;
    int64_t at = up_txn_resume(p->acked, was_known || p->acked > 0, c, !other);
    if (other)
        kb_log(KB_LOG_INFO, "uplink: %s/%d: the committed position belongs to an earlier topic "
               "of that name: ignored", t->name, (int)p->partition);
    if (c >= 0 && c != p->acked)
        kb_log(KB_LOG_INFO, "uplink: %s/%d: committed position %" PRId64 ", checkpoint %" PRId64
               ": resuming at %" PRId64, t->name, (int)p->partition, c, p->acked, at);
    if (at != p->acked && p->skip.n) { /* a skip list below the new start is moot */
        free(p->skip.v);
        p->skip = (up_offsets_t){0};
        p->skip_i = 0;
    }
    p->acked = p->next_send = at;
}

static void apply_topic(up_t *u, up_topic_t *t, const job_topic_t *jt, const up_job_t *j)
{
    t->resolving = false;
    t->blocked = jt->missing;
    snprintf(t->error, sizeof t->error, "%s", jt->error);
    if (jt->ncentral <= 0) return;
    int64_t *scan = malloc((size_t)jt->ncentral * sizeof *scan);
    if (!scan || up_central_reset(t, jt->hw, jt->ncentral) < 0) { /* frees the old cp */
        free(scan);
        t->ncentral = 0; /* resolved again on the next attempt */
        return;
    }
    free(t->scan_from);
    t->scan_from = scan;
    t->ncentral = jt->ncentral;
    t->hashed = t->ncentral < t->nparts;
    if (t->hashed && !t->mapped_warned) {
        t->mapped_warned = true;
        kb_log(KB_LOG_WARN,
               "uplink: central topic %s has %d partitions, local %s has %d: records go to the "
               "central partition of their key's hash (Kafka's default partitioner, murmur2 mod "
               "%d), keyless records of local partition p to p mod %d; per key the order holds",
               t->central, t->ncentral, t->name, t->nparts, t->ncentral, t->ncentral);
    }
    ks_topic_t *kt = ks_topic_find(u->store, t->name, strlen(t->name));
    for (int32_t i = 0; i < t->nparts; i++) {
        up_part_t *p = &t->parts[i];
        p->central_part = i % t->ncentral;
        bool was_known = p->known;
        up_resume(t, p, &jt->found[i]);
        if (j->txn_rc == 1) apply_committed(t, p, j, kt, was_known);
        p->known = true;
    }
    /* What the read-back found beyond the resumed acked (a skip list) keeps scan_from back
     * until acked covers it; scan_from is the high watermark otherwise. */
    for (uint32_t k = 0; k < jt->nat; k++) /* out of memory: scan_from is held back instead */
        up_central_note(t, jt->at[k].q, jt->at[k].e.coff, jt->at[k].e.lp, jt->at[k].e.loff);
    up_scan_update(t);
    u->ckpt_dirty = true;
}

/* The session's mode, logged when it changes; the transactional producer is handed over. */
static void job_mode(up_t *u, up_job_t *j)
{
    bool txn = j->txn_rc == 1;
    u->new_rk = j->txn.rk;
    j->txn.rk = NULL;
    const char *why = txn ? "" : j->want_txn ? j->txn.reason : "uplink.exactly.once=readback";
    if (u->mode_logged != (int)txn || strcmp(u->mode_reason, why)) {
        if (txn)
            kb_log(KB_LOG_INFO, "uplink: exactly once by transactions (transactional.id %s, "
                   "positions in %s)", u->txn_id, u->cfg->uplink_offsets_topic);
        else
            kb_log(KB_LOG_WARN, "uplink: exactly once by read-back of the central tail, not "
                   "transactions: %s", why);
        u->mode_logged = (int)txn;
    }
    snprintf(u->mode_reason, sizeof u->mode_reason, "%s", why);
}

static void job_done(uv_work_t *w, int status)
{
    up_job_t *j = w->data;
    up_t *u = j->u;
    u->job = NULL;
    if (u->stopping) {
        if (j->txn.rk) rd_kafka_destroy(j->txn.rk);
        j->txn.rk = NULL;
        job_free(j);
        up_job_orphaned(u);
        return;
    }
    bool ok = status == 0 && !j->error[0];
    for (int i = 0; i < j->ntopics; i++) {
        up_topic_t *t = up_topic_find(u, j->topics[i].local);
        if (t && !t->gone) apply_topic(u, t, &j->topics[i], j);
        if (t) t->resolving = false;
    }
    if (j->full && ok) job_mode(u, j);
    if (!ok) up_set_error(u, "%s", j->error[0] ? j->error : "resolve job cancelled");
    up_job_finished(u, ok, j->full);
    job_free(j);
}

/* The transactional inputs of a full job. The read-back runs once more when the previous
 * session was not transactional and something was forwarded: its records past the checkpoint
 * are not in the committed positions (and init_transactions does not fence it). */
static int job_txn_prepare(up_t *u, up_job_t *j)
{
    char err[512] = "";
    j->want_txn = true;
    j->required = u->cfg->uplink_exactly_once == KB_UPLINK_EO_TRANSACTIONS;
    j->txn.pconf = up_producer_conf(u, true, err, sizeof err);
    if (!j->txn.pconf) {
        up_set_error(u, "%s", err);
        return K_ERR_INVAL;
    }
    snprintf(j->txn.txn_id, sizeof j->txn.txn_id, "%s", u->txn_id);
    snprintf(j->txn.topic, sizeof j->txn.topic, "%s", u->cfg->uplink_offsets_topic);
    j->txn.create = u->cfg->uplink_topic_create;
    bool known = false;
    for (up_topic_t *t = u->topics; t && !known; t = t->next)
        for (int32_t i = 0; i < t->nparts && !known; i++)
            known = t->parts[i].known;
    j->readback_too = !u->prev_txn && known;
    return 0;
}

int up_job_start(up_t *u, bool full, rd_kafka_t *old_rk)
{
    char err[256] = "";
    up_job_t *j = calloc(1, sizeof *j);
    if (!j) return K_ERR_NOMEM;
    j->u = u;
    j->full = full;
    j->old_rk = old_rk;
    /* the first full job of a process follows the previous process's producer */
    j->settle = full && (old_rk || !u->settled_once);
    j->work.data = j;
    j->txn_rc = -2;
    if (full && u->cfg->uplink_exactly_once != KB_UPLINK_EO_READBACK && job_txn_prepare(u, j) < 0)
        goto fail;
    snprintf(j->cluster_id, sizeof j->cluster_id, "%s", u->cluster_id);
    j->conf = up_conf_new(u, false, err, sizeof err);
    if (j->conf) {
        rd_kafka_conf_set_opaque(j->conf, j);
        rd_kafka_conf_set_error_cb(j->conf, job_on_error);
    }
    int n = 0;
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (!t->gone && (full || t->ncentral == 0)) n++;
    j->topics = calloc((size_t)(n ? n : 1), sizeof *j->topics);
    if (!j->conf || !j->topics) goto fail;
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone || !(full || t->ncentral == 0)) continue;
        job_topic_t *jt = &j->topics[j->ntopics++];
        jt->local = strdup(t->name);
        jt->central = strdup(t->central);
        jt->nlocal = t->nparts;
        jt->create = u->cfg->uplink_topic_create;
        up_scan_update(t);
        const int64_t *src = t->scan_from ? t->scan_from : t->ckpt_scan;
        jt->nscan = t->scan_from ? t->ncentral : t->ckpt_nscan;
        jt->scan = malloc((size_t)(jt->nscan ? jt->nscan : 1) * sizeof *jt->scan);
        jt->found = calloc((size_t)t->nparts, sizeof *jt->found);
        if (!jt->local || !jt->central || !jt->scan || !jt->found) goto fail;
        if (jt->nscan) memcpy(jt->scan, src, (size_t)jt->nscan * sizeof *src);
        t->resolving = true;
    }
    if (uv_queue_work(u->loop, &j->work, job_work, job_done) < 0) goto fail;
    u->job = j;
    if (j->settle) u->settled_once = true;
    return 0;
fail:
    if (err[0]) up_set_error(u, "%s", err);
    for (up_topic_t *t = u->topics; t; t = t->next)
        t->resolving = false;
    j->old_rk = NULL; /* still the caller's */
    job_free(j);
    return K_ERR_NOMEM;
}

/* ------------------------------------------------------------------------------------------ */
/* The producer                                                                                 */

/* librdkafka thread: the main queue became non-empty; only wake the loop. */
static void on_queue_event(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    up_t *u = opaque;
    uv_async_send(&u->wake);
}


rd_kafka_conf_t *up_producer_conf(up_t *u, bool txn, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = up_conf_new(u, true, err, errlen);
    if (c && txn && up_txn_conf(u, c, err, errlen) < 0) {
        rd_kafka_conf_destroy(c);
        c = NULL;
    }
    if (!c) return NULL;
    rd_kafka_conf_set_opaque(c, u);
    rd_kafka_conf_set_dr_msg_cb(c, up_on_delivery);
    rd_kafka_conf_set_error_cb(c, up_on_error);
    rd_kafka_conf_set_log_cb(c, on_log);
    return c;
}

void up_producer_attach(up_t *u, rd_kafka_t *rk)
{
    rd_kafka_queue_t *mq = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_cb_event_enable(mq, on_queue_event, u);
    rd_kafka_queue_destroy(mq);
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (!t->gone && t->ncentral > 0) t->rkt = rd_kafka_topic_new(rk, t->central, NULL);
    u->off_rkt = u->txn ? rd_kafka_topic_new(rk, u->cfg->uplink_offsets_topic, NULL) : NULL;
    u->rk = rk;
    u->last_cause[0] = 0; /* a new producer: its own errors are the causes from here on */
    rd_kafka_poll(rk, 0); /* what piled up while the job had it (logs, errors) */
}

int up_producer_start(up_t *u)
{
    char err[512] = "";
    rd_kafka_conf_t *c = up_producer_conf(u, false, err, sizeof err);
    if (!c) {
        up_set_error(u, "%s", err);
        return K_ERR_INVAL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        up_set_error(u, "cannot create the producer: %s", err);
        return K_ERR_INVAL;
    }
    rd_kafka_set_log_queue(rk, NULL); /* logs are served by rd_kafka_poll on the loop */
    up_producer_attach(u, rk);
    return 0;
}

const char *kb_uplink_client_version(void)
{
    return rd_kafka_version_str();
}

/*
 * The uplink's transactional mode (uplink.exactly.once = auto | transactions): the box's
 * source positions are committed in the same central transaction as the records, the pattern
 * of Connect's and MirrorMaker 2's exactly-once sources (the argument: docs/uplink.md).
 *
 * Source positions live in the compacted central topic uplink.offsets.topic (1 partition).
 * Inside each transaction, after the records, one record per local partition touched:
 *   key   "<transactional.id>/<local topic>/<partition>"   (text; parsed from the right: topic
 *                                                         names hold no '/')
 *   value "<next local offset> <local topic id, 32 hex>"  (the id tells a topic deleted and
 *                                                         created again from its old self)
 *
 * A producer session (resolve job, threadpool): rd_kafka_init_transactions fences the previous
 * producer epoch of the same transactional.id and aborts its open transaction; then the offsets
 * topic is read with a read_committed consumer up to the end (the last stable offset must pass
 * the high watermark taken after the fence) and each local partition resumes at its committed
 * next offset. A refusal (TRANSACTIONAL_ID_AUTHORIZATION_FAILED as a central Depot answers,
 * an unsupported version, no coordinator within UP_TXN_COORD_MS) falls back to the read-back
 * with auto, and is a link error with transactions.
 *
 * On the loop, one transaction at a time (u->txn_phase):
 *   IDLE    nothing open; the pump begins one (rd_kafka_begin_transaction is local) before
 *           it hands a record over
 *   OPEN    the pump sends; at uplink.transaction.max.bytes or .interval.ms it stops and the
 *           position records are produced
 *   FLUSH   waits until librdkafka's out queue is empty: every delivery report has been served
 *           on the loop (commit_transaction flushes, and a flush serves delivery reports on
 *           the calling thread, which must not touch uplink state)
 *   COMMIT  rd_kafka_commit_transaction runs on the threadpool (it blocks); on success the
 *           partitions' acked moves to the committed positions (the checkpoint, the retention
 *           hold, lag and status follow acked). A retriable error commits again; any other
 *           error ends the producer session like a delivery error does (up_restart): the next
 *           session's init_transactions aborts what was open, and every partition resumes at
 *           its last committed position (the aborted records are invisible to read_committed
 *           consumers, so the holes they leave do not matter).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/uplink/up_int.h"

#define TXN_TIMEOUT_MS 60000  /* transaction.timeout.ms unless uplink.producer.* sets it */
#define INIT_CALL_MS 10000    /* one init_transactions attempt */
#define COMMIT_MS 30000       /* one commit_transaction attempt */
#define COMMIT_RETRIES 3
#define READ_MS 90000         /* the offsets topic read (an open foreign transaction holds the
                                 last stable offset back for up to its timeout) */

/* The delivery-report opaque of position records (not a partition). */
char up_txn_offsets_mark;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------ */
/* Position records (pure)                                                                      */

int up_txn_key(char *buf, size_t len, const char *txn_id, const char *topic, int32_t part)
{
    int n = snprintf(buf, len, "%s/%s/%d", txn_id, topic, (int)part);
    return n < 0 || (size_t)n >= len ? K_ERR_INVAL : n;
}

int up_txn_value(char *buf, size_t len, int64_t next, kp_uuid_t id)
{
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id.b[i]);
    int n = snprintf(buf, len, "%" PRId64 " %s", next, hex);
    return n < 0 || (size_t)n >= len ? K_ERR_INVAL : n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* A decimal in [0, 2^62) of at most 18 digits, the whole of s[0, n). */
static bool parse_dec(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 18) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int up_txn_parse(const char *txn_id, const void *key, size_t klen, const void *val, size_t vlen,
                 char *topic, size_t topic_len, int32_t *part, int64_t *next, kp_uuid_t *id)
{
    const char *k = key, *v = val;
    size_t il = strlen(txn_id);
    if (!k || klen <= il + 1 || memcmp(k, txn_id, il) || k[il] != '/') return 0; /* not ours */
    const char *rest = k + il + 1;
    size_t rl = klen - il - 1, slash = rl;
    while (slash > 0 && rest[slash - 1] != '/')
        slash--;
    int64_t p;
    if (slash < 2 || slash - 1 >= topic_len || memchr(rest, '/', slash - 1) ||
        memchr(rest, 0, slash - 1) || !parse_dec(rest + slash, rl - slash, &p) || p > INT32_MAX)
        return K_ERR_MALFORMED;
    if (!v || vlen < 34 || v[vlen - 33] != ' ' || !parse_dec(v, vlen - 33, next))
        return K_ERR_MALFORMED;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(v[vlen - 32 + 2 * i]), lo = hexval(v[vlen - 31 + 2 * i]);
        if (hi < 0 || lo < 0) return K_ERR_MALFORMED;
        id->b[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(topic, rest, slash - 1);
    topic[slash - 1] = 0;
    *part = (int32_t)p;
    return 1;
}

int64_t up_txn_resume(int64_t acked, bool known, int64_t committed, bool same_topic)
{
    if (committed < 0 || !same_topic) return known ? acked : 0;
    if (!known) return committed;
    return committed > acked ? committed : acked;
}

/* ------------------------------------------------------------------------------------------ */
/* The producer's settings                                                                      */

static const char *user_value(const up_t *u, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < u->cfg->n_uplink_producer; i++) {
        const char *kv = u->cfg->uplink_producer[i];
        if (!strncmp(kv, key, n) && kv[n] == '=') return kv + n + 1;
    }
    return NULL;
}

int up_txn_conf(const up_t *u, rd_kafka_conf_t *c, char *err, size_t errlen)
{
    const char *tt = user_value(u, "transaction.timeout.ms");
    int64_t txn_ms = tt && atoll(tt) > 0 ? atoll(tt) : TXN_TIMEOUT_MS;
    /* librdkafka refuses message.timeout.ms > transaction.timeout.ms; a timed-out record is an
     * abortable error here (the holes of an aborted transaction are invisible) */
    int64_t msg_ms = u->cfg->uplink_delivery_timeout_ms < txn_ms ? u->cfg->uplink_delivery_timeout_ms
                                                                 : txn_ms;
    char a[32], b[32];
    snprintf(a, sizeof a, "%" PRId64, txn_ms);
    snprintf(b, sizeof b, "%" PRId64, msg_ms);
    const char *kv[][2] = {{"transactional.id", u->txn_id}, {"transaction.timeout.ms", a},
                           {"message.timeout.ms", b}, {"enable.gapless.guarantee", "false"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        char e[256];
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "uplink transactions: %s: %s", kv[i][0], e);
            return K_ERR_INVAL;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The session's start (resolve job, threadpool)                                                */

static void reason(up_txn_job_t *tj, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason(up_txn_job_t *tj, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tj->reason, sizeof tj->reason, fmt, ap);
    va_end(ap);
}

static int committed_put(up_txn_job_t *tj, const char *topic, int32_t part, int64_t next,
                         kp_uuid_t id)
{
    for (uint32_t i = 0; i < tj->n; i++)
        if (tj->v[i].partition == part && !strcmp(tj->v[i].topic, topic)) {
            tj->v[i].next = next; /* later records win, as compaction keeps them */
            tj->v[i].id = id;
            return 0;
        }
    if (tj->n == tj->cap) {
        uint32_t cap = tj->cap ? tj->cap * 2 : 16;
        up_committed_t *v = realloc(tj->v, cap * sizeof *v);
        if (!v) return K_ERR_NOMEM;
        tj->v = v;
        tj->cap = cap;
    }
    char *t = strdup(topic);
    if (!t) return K_ERR_NOMEM;
    tj->v[tj->n++] = (up_committed_t){.topic = t, .partition = part, .next = next, .id = id};
    return 0;
}

static void take_message(up_txn_job_t *tj, const rd_kafka_message_t *m)
{
    char topic[256];
    int32_t part;
    int64_t next;
    kp_uuid_t id;
    int r = up_txn_parse(tj->txn_id, m->key, m->key_len, m->payload, m->len, topic, sizeof topic,
                         &part, &next, &id);
    if (r < 0)
        kb_log(KB_LOG_WARN, "uplink: %s@%" PRId64 ": an unreadable position record of ours, "
               "ignored", tj->topic, m->offset);
    else if (r == 1 && committed_put(tj, topic, part, next, id) < 0)
        reason(tj, "reading %s: out of memory", tj->topic);
}

/* Reads the offsets topic to its end with read_committed (crk is configured so): the end is
 * where the last stable offset passes the high watermark taken after the fence. */
static int read_positions(rd_kafka_t *crk, up_txn_job_t *tj)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20; attempt++) { /* a new topic's leader is elected */
        e = rd_kafka_query_watermark_offsets(crk, tj->topic, 0, &lo, &hi, INIT_CALL_MS);
        if (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
            e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            break;
        usleep(250 * 1000);
    }
    if (e) {
        reason(tj, "watermarks of %s: %s", tj->topic,
                 rd_kafka_err2str(e));
        return -1;
    }
    if (hi <= lo) return 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(crk, tj->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(crk);
    int rc = rkt && q ? 0 : -1;
    if (rc == 0 && rd_kafka_consume_start_queue(rkt, 0, RD_KAFKA_OFFSET_BEGINNING, q) < 0) {
        reason(tj, "reading %s: %s", tj->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        rc = -1;
    }
    bool started = rc == 0, done = false;
    int64_t deadline = mono_ms() + READ_MS;
    while (rc == 0 && !done && !tj->reason[0]) {
        if (mono_ms() > deadline) {
            reason(tj, "reading %s: its last stable offset did not "
                     "reach %" PRId64 " (an open transaction of another producer?)", tj->topic, hi);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = m->offset >= hi;
        } else if (m->err) {
            reason(tj, "reading %s: %s", tj->topic,
                     rd_kafka_message_errstr(m));
            rc = -1;
        } else {
            take_message(tj, m);
            done = m->offset >= hi - 1;
        }
        rd_kafka_message_destroy(m);
    }
    if (started) rd_kafka_consume_stop(rkt, 0);
    if (q) rd_kafka_queue_destroy(q);
    if (rkt) rd_kafka_topic_destroy(rkt);
    return rc == 0 && !tj->reason[0] ? 0 : -1;
}

/* The errors that mean "this cluster does not give us transactions". */
static bool refusal(rd_kafka_resp_err_t c)
{
    return c == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
           c == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION || c == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
           c == RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED ||
           c == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
}

/* init_transactions, retried while the coordinator is not there (a fresh cluster elects it),
 * for at most UP_TXN_COORD_MS. 1 = done, 0 = refused (reason), < 0 = failed (reason). */
static int init_txn(up_txn_job_t *tj, rd_kafka_t *rk)
{
    int64_t deadline = mono_ms() + UP_TXN_COORD_MS;
    for (;;) {
        rd_kafka_error_t *err = rd_kafka_init_transactions(rk, INIT_CALL_MS);
        if (!err) return 1;
        rd_kafka_resp_err_t c = rd_kafka_error_code(err);
        bool retriable = rd_kafka_error_is_retriable(err), fatal = rd_kafka_error_is_fatal(err);
        reason(tj, "init_transactions: %s (%s)",
                 rd_kafka_error_string(err), rd_kafka_err2name(c));
        rd_kafka_error_destroy(err);
        if (fatal && c == RD_KAFKA_RESP_ERR__FATAL) {
            char fe[200];
            c = rd_kafka_fatal_error(rk, fe, sizeof fe);
        }
        if (refusal(c)) return 0;
        if (fatal || (!retriable && c != RD_KAFKA_RESP_ERR__TIMED_OUT &&
                      c != RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE))
            return -1;
        if (mono_ms() > deadline) {
            char r[sizeof tj->reason];
            memcpy(r, tj->reason, sizeof r);
            reason(tj, "no transaction coordinator for %d s (%s)", UP_TXN_COORD_MS / 1000, r);
            return 0;
        }
        usleep(200 * 1000);
    }
}

/* The offsets topic's partition count (0 = missing; < 0 = the link failed): also what tells a
 * link that is down (an error) from a cluster without transactions (init refused). */
static int offsets_topic_parts(up_txn_job_t *tj, rd_kafka_t *crk)
{
    int n = up_central_partitions(crk, tj->topic, tj->reason, sizeof tj->reason);
    if (n >= 0) tj->reason[0] = 0;
    return n;
}

/* Created when missing and allowed (after init_transactions: a cluster that refuses
 * transactions does not get the topic). 1 = there, 0 = missing (reason), < 0 = failed. */
static int offsets_topic_create(up_txn_job_t *tj, rd_kafka_t *crk)
{
    if (!tj->create) {
        reason(tj, "the offsets topic %s does not exist and uplink.topic.create=false", tj->topic);
        return 0;
    }
    if (up_create_topic(crk, tj->topic, 1, true, tj->reason, sizeof tj->reason) < 0) return -1;
    int n = 0;
    for (int i = 0; i < 20 && n == 0; i++) { /* metadata catches up with the creation */
        if (i) usleep(200 * 1000);
        n = up_central_partitions(crk, tj->topic, tj->reason, sizeof tj->reason);
    }
    if (n <= 0) {
        if (!tj->reason[0]) reason(tj, "the offsets topic %s did not appear", tj->topic);
        return -1;
    }
    tj->reason[0] = 0;
    return 1;
}

int up_txn_job_run(up_txn_job_t *tj, rd_kafka_t *crk)
{
    int n = offsets_topic_parts(tj, crk);
    if (n < 0) return -1;
    char e[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, tj->pconf, e, sizeof e);
    if (!rk) {
        reason(tj, "cannot create the producer: %s", e);
        return -1; /* the conf is still ours: up_txn_job_free frees it */
    }
    tj->pconf = NULL; /* owned by rk */
    rd_kafka_set_log_queue(rk, NULL); /* logs are served by rd_kafka_poll on the loop */
    int r = init_txn(tj, rk);
    if (r == 1 && n == 0) r = offsets_topic_create(tj, crk);
    if (r == 1) {
        tj->reason[0] = 0;
        r = read_positions(crk, tj) < 0 ? -1 : 1;
    }
    if (r == 1) tj->rk = rk; /* handed to the loop */
    else rd_kafka_destroy(rk);
    return r;
}

void up_txn_job_free(up_txn_job_t *tj)
{
    if (tj->pconf) rd_kafka_conf_destroy(tj->pconf);
    tj->pconf = NULL;
    for (uint32_t i = 0; i < tj->n; i++)
        free(tj->v[i].topic);
    free(tj->v);
    tj->v = NULL;
    tj->n = tj->cap = 0;
}

/* The committed next offset of a local partition (-1 = none), for this topic incarnation. */
int64_t up_txn_committed(const up_txn_job_t *tj, const char *topic, int32_t part, kp_uuid_t id,
                         bool *other_incarnation)
{
    *other_incarnation = false;
    for (uint32_t i = 0; i < tj->n; i++)
        if (tj->v[i].partition == part && !strcmp(tj->v[i].topic, topic)) {
            if (!memcmp(&tj->v[i].id, &id, sizeof id)) return tj->v[i].next;
            *other_incarnation = true;
        }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Transactions on the loop                                                                     */

typedef struct {
    uv_work_t work;
    up_t *u;
    rd_kafka_t *rk;
    rd_kafka_error_t *err; /* the commit's result, owned */
} commit_job_t;

bool up_txn_may_send(up_t *u)
{
    int64_t now = (int64_t)uv_now(u->loop);
    if (u->txn_phase == UP_TXN_IDLE) {
        rd_kafka_error_t *err = rd_kafka_begin_transaction(u->rk);
        if (err) {
            char why[300];
            snprintf(why, sizeof why, "begin_transaction: %s", rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
            up_restart(u, why);
            return false;
        }
        u->txn_phase = UP_TXN_OPEN;
        u->txn_start_ms = now;
        u->txn_bytes = 0;
    }
    if (u->txn_phase != UP_TXN_OPEN) return false;
    if (now - u->txn_start_ms < u->cfg->uplink_transaction_interval_ms &&
        u->txn_bytes < u->cfg->uplink_transaction_max_bytes)
        return true;
    if (u->txn_bytes == 0) { /* nothing sent: the open (empty) transaction costs nothing */
        u->txn_start_ms = now;
        return true;
    }
    up_txn_end(u); /* stops the pump until the commit is done (or the session restarts) */
    return false;
}

/* One position record: the next local offset of p, in the open transaction. */
static int produce_position(up_t *u, up_part_t *p)
{
    char key[600], val[64];
    ks_topic_t *kt = ks_topic_find(u->store, p->t->name, strlen(p->t->name));
    if (!kt) return 0; /* deleted locally: nothing to resume later */
    int kn = up_txn_key(key, sizeof key, u->txn_id, p->t->name, p->partition);
    int vn = up_txn_value(val, sizeof val, p->next_send, ks_topic_id(kt));
    if (kn < 0 || vn < 0) return K_ERR_INVAL;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        u->rk, RD_KAFKA_V_RKT(u->off_rkt), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, (size_t)kn),
        RD_KAFKA_V_VALUE(val, (size_t)vn), RD_KAFKA_V_OPAQUE(&up_txn_offsets_mark),
        RD_KAFKA_V_END);
    if (e) {
        up_set_error(u, "position record to %s: %s", u->cfg->uplink_offsets_topic,
                     rd_kafka_err2str(e));
        return K_ERR_IO;
    }
    return 0;
}

int up_txn_end(up_t *u)
{
    for (up_topic_t *t = u->topics; t; t = t->next)
        for (int32_t i = 0; i < t->nparts; i++) {
            up_part_t *p = &t->parts[i];
            if (!p->touched) continue;
            p->txn_pos = p->next_send;
            if (!t->gone && produce_position(u, p) < 0) {
                up_restart(u, "the position records could not be queued");
                return K_ERR_IO;
            }
        }
    u->txn_phase = UP_TXN_FLUSH;
    return 0;
}

static void commit_work(uv_work_t *w)
{
    commit_job_t *j = w->data;
    j->err = rd_kafka_commit_transaction(j->rk, COMMIT_MS);
}

static void commit_apply(up_t *u)
{
    for (up_topic_t *t = u->topics; t; t = t->next)
        for (int32_t i = 0; i < t->nparts; i++) {
            up_part_t *p = &t->parts[i];
            if (!p->touched) continue;
            if (p->txn_pos > p->acked) p->acked = p->txn_pos;
            p->fwd_records += p->txn_records;
            p->fwd_bytes += p->txn_rec_bytes;
            p->touched = false;
            p->txn_records = p->txn_rec_bytes = 0;
        }
    u->commits++;
    u->last_commit_ms = u->last_success_ms = up_wall_ms();
    u->ckpt_dirty = true;
    u->txn_phase = UP_TXN_IDLE;
    u->commit_retries = 0;
    up_set_link(u, "up");
}

static void commit_done(uv_work_t *w, int status)
{
    commit_job_t *j = w->data;
    up_t *u = j->u;
    rd_kafka_error_t *err = j->err;
    u->txn_busy = false;
    if (u->stopping) { /* up_close left the producer to us */
        if (err) rd_kafka_error_destroy(err);
        if (u->rk_orphaned) rd_kafka_destroy(j->rk);
        free(j);
        up_job_orphaned(u);
        return;
    }
    free(j);
    if (status == 0 && !err) {
        commit_apply(u);
        return;
    }
    char why[400];
    snprintf(why, sizeof why, "commit_transaction: %s", err ? rd_kafka_error_string(err) : "cancelled");
    bool retry = err && rd_kafka_error_is_retriable(err) && !rd_kafka_error_txn_requires_abort(err) &&
                 !rd_kafka_error_is_fatal(err) && u->commit_retries < COMMIT_RETRIES;
    if (err) up_txn_fatal(u, rd_kafka_error_code(err), why);
    if (err) rd_kafka_error_destroy(err);
    if (retry && u->state == UP_RUNNING) {
        u->commit_retries++;
        kb_log(KB_LOG_INFO, "uplink: %s: committing again", why);
        u->txn_phase = UP_TXN_FLUSH; /* the next pump tick queues it again */
        return;
    }
    if (u->state == UP_RUNNING) up_restart(u, why);
}

/* FLUSH: once every delivery report has been served here, the commit goes to the threadpool. */
void up_txn_progress(up_t *u)
{
    if (u->state != UP_RUNNING || u->txn_phase != UP_TXN_FLUSH || u->txn_busy) return;
    if (u->inflight_bytes > 0 || rd_kafka_outq_len(u->rk) > 0) return;
    commit_job_t *j = calloc(1, sizeof *j);
    if (!j) return; /* the next tick tries again */
    j->u = u;
    j->rk = u->rk;
    j->work.data = j;
    if (uv_queue_work(u->loop, &j->work, commit_work, commit_done) < 0) {
        free(j);
        return;
    }
    u->txn_busy = true;
    u->txn_phase = UP_TXN_COMMIT;
}

void up_txn_fatal(up_t *u, int code, const char *why)
{
    if (u->fenced) return; /* said once per session */
    if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
        u->fenced = true;
        kb_log(KB_LOG_ERROR, "uplink: FENCED: another process uses transactional.id %s (%s); "
               "this box's producer stopped, a new one starts after a backoff. Two boxes (or a "
               "copied log dir) must not share a transactional.id", u->txn_id, why);
    }
}

/* A new session: nothing open, nothing touched, nothing pending a commit. */
void up_txn_reset(up_t *u)
{
    u->txn_phase = UP_TXN_IDLE;
    u->txn_bytes = 0;
    u->commit_retries = 0;
    for (up_topic_t *t = u->topics; t; t = t->next)
        for (int32_t i = 0; i < t->nparts; i++) {
            t->parts[i].touched = false;
            t->parts[i].txn_records = t->parts[i].txn_rec_bytes = 0;
        }
}

/* At close: an open transaction is aborted now (a short wait) so the central side's
 * read_committed consumers are not held back until its timeout. */
void up_txn_close(up_t *u)
{
    if (!u->rk || !u->txn || u->txn_busy || u->txn_phase == UP_TXN_IDLE) return;
    rd_kafka_error_t *err = rd_kafka_abort_transaction(u->rk, 3000);
    if (err) {
        kb_log(KB_LOG_INFO, "uplink: abort_transaction at close: %s (the next start fences it)",
               rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
    }
    u->txn_phase = UP_TXN_IDLE;
}

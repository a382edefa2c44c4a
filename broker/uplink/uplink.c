/*
 * Store and forward: the uplink subsystem (see up_int.h for the pieces and the exactly-once
 * argument, docs/uplink.md for the operator's view).
 *
 * Link states (u->state):
 *   RESOLVING  a full resolve job runs (start-up, or after DRAINING): nothing is sent
 *   BACKOFF    the last full job failed; the retry timer fires after an exponential backoff
 *              with full jitter (0.5 s .. 30 s)
 *   RUNNING    the producer runs; the pump timer (10 ms) hands forwardable records to it,
 *              oldest first per partition, within the token bucket and the in-flight window
 *   DRAINING   a delivery failed (timeout, fatal idempotence error, ...): everything queued is
 *              purged; once every delivery report is back the producer is handed to a full
 *              resolve job, which destroys it before reading the central side back
 * Topics that appear while RUNNING are resolved by a partial job (no teardown: none of their
 * records is in flight).
 *
 * Only records below the partition's durable end are forwarded: a record that is on the central
 * side but lost locally by a power cut would let its offset be reused by a different record.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/subsys.h"
#include "broker/http/http.h"
#include "broker/metrics/metrics.h"
#include "broker/uplink/up_int.h"
#include "protocol/kp_batch.h"

#define PUMP_MS 10
#define DRAIN_MAX_MS 10000
#define PARTIAL_RETRY_MS 5000
#define MAX_DECOMPRESSED (64 << 20)

const kb_subsys_t kb_uplink_subsys;

static up_t *get(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_uplink_subsys);
    return slot ? *slot : NULL;
}

void up_set_error(up_t *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->last_error, sizeof u->last_error, fmt, ap);
    va_end(ap);
    kb_log(KB_LOG_WARN, "uplink: %s", u->last_error);
}

void up_set_link(up_t *u, const char *s)
{
    snprintf(u->link, sizeof u->link, "%s", s);
}

/* librdkafka serves callbacks on whichever thread polls or flushes; only the loop's count (a
 * transaction's commit on the threadpool flushes, after the loop served every report). */
static bool on_loop(const up_t *u)
{
    return pthread_equal(pthread_self(), u->loop_thread);
}

up_topic_t *up_topic_find(up_t *u, const char *name)
{
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (!t->gone && !strcmp(t->name, name)) return t;
    return NULL;
}

static bool forwarded_name(const up_t *u, const char *name)
{
    if (!u->re_ok || !strncmp(name, "__", 2)) return false;
    return regexec(&u->re, name, 0, NULL, 0) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Topics and the retention hold                                                                */

static void topic_free(up_topic_t *t)
{
    for (int32_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].q_off);
        free(t->parts[i].q_bytes);
        free(t->parts[i].q_ts);
        free(t->parts[i].skip.v);
    }
    if (t->rkt) rd_kafka_topic_destroy(t->rkt);
    up_central_free(t);
    free(t->parts);
    free(t->scan_from);
    free(t->ckpt_scan);
    free(t->name);
    free(t->central);
    free(t);
}

static up_topic_t *topic_add(up_t *u, ks_topic_t *kt)
{
    up_topic_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    const char *name = ks_topic_name(kt);
    const char *pre = u->cfg->uplink_topic_prefix ? u->cfg->uplink_topic_prefix : "";
    t->name = strdup(name);
    t->central = malloc(strlen(pre) + strlen(name) + 1);
    t->nparts = ks_topic_partitions(kt);
    t->parts = calloc((size_t)t->nparts, sizeof *t->parts);
    if (!t->name || !t->central || !t->parts) {
        topic_free(t);
        return NULL;
    }
    sprintf(t->central, "%s%s", pre, name);
    for (int32_t i = 0; i < t->nparts; i++) {
        up_part_t *p = &t->parts[i];
        p->t = t;
        p->partition = i;
        p->central_part = -1;
        p->acked = p->ckpt_acked = p->next_send = 0;
    }
    t->next = u->topics;
    u->topics = t;
    return t;
}

/* New local topics matching uplink.topics; returns how many were added. */
static int discover(up_t *u)
{
    int added = 0;
    for (ks_topic_t *kt = ks_topic_next(u->store, NULL); kt; kt = ks_topic_next(u->store, kt)) {
        const char *name = ks_topic_name(kt);
        if (!forwarded_name(u, name) || up_topic_find(u, name)) continue;
        if (topic_add(u, kt)) added++;
    }
    return added;
}

/* Retention floor (storage calls it on the loop, holding its lock: only the lock-free
 * accessors may be used here): a forwarded partition keeps everything from its checkpointed
 * forwarded offset on; a forwarded topic the uplink has not resolved yet keeps everything. */
static int64_t floor_fn(void *ud, const ks_part_t *kp)
{
    up_t *u = ud;
    const char *name = ks_topic_name(ks_part_topic(kp));
    if (!u->cfg->uplink_retention_hold || !forwarded_name(u, name)) return INT64_MAX;
    up_topic_t *t = up_topic_find(u, name);
    int32_t i = ks_part_index(kp);
    if (!t || i >= t->nparts || !t->parts[i].known) return 0;
    return t->parts[i].ckpt_acked;
}

/* ------------------------------------------------------------------------------------------ */
/* Delivery reports and errors (served by rd_kafka_poll on the loop)                            */

static void start_drain(up_t *u, const char *why);

/* The lowest offset sent and not yet acknowledged, or next_send when nothing is in flight. */
static int64_t part_acked(const up_part_t *p)
{
    return p->q_len ? p->q_off[p->q_head] : p->next_send;
}

/* The local offset of a reported record, from its depot.src header (after the last ':'). */
static int64_t dr_offset(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, UP_SRC_HEADER, &v, &n))
        return -1;
    const char *s = v;
    size_t i = n;
    while (i > 0 && s[i - 1] != ':')
        i--;
    int64_t off = 0;
    if (i == n || n - i > 18) return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        off = off * 10 + (s[i] - '0');
    }
    return off;
}

/* Takes the reported record out of the in-flight ring: its bytes leave the window at once; the
 * ring's head moves past every record reported so far. Reports of one central partition come
 * in order, but one local partition of a hashed topic spreads over several central partitions,
 * whose reports interleave: the ring (ascending offsets) is searched. Returns the record's
 * bytes, or -1 if it is not in flight (a report from before a reset). */
static int32_t ring_take(up_t *u, up_part_t *p, int64_t off)
{
    uint32_t lo = 0, hi = p->q_len; /* first index with q_off >= off */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->q_off[(p->q_head + mid) % p->q_cap] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t at = (p->q_head + lo) % p->q_cap;
    if (lo == p->q_len || p->q_off[at] != off || p->q_bytes[at] == 0) return -1;
    int32_t bytes = p->q_bytes[at];
    p->q_bytes[at] = 0; /* reported (bytes of a record are never 0: depot.src is in them) */
    p->inflight_bytes -= bytes;
    u->inflight_bytes -= bytes;
    while (p->q_len && p->q_bytes[p->q_head] == 0) {
        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_len--;
    }
    return bytes;
}

void up_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    up_t *u = opaque;
    if (!on_loop(u)) return;
    if (m->_private == &up_txn_offsets_mark) { /* a position record */
        if (m->err && u->state == UP_RUNNING) {
            char why[300];
            snprintf(why, sizeof why, "position record: %s", rd_kafka_err2str(m->err));
            start_drain(u, why);
        }
        return;
    }
    up_part_t *p = m->_private;
    if (!p || p->q_len == 0) return; /* a report from before a reset */
    int64_t off = dr_offset(m);
    int32_t bytes = ring_take(u, p, off);
    if (bytes < 0) return;
    if (m->err) {
        u->send_errors++;
        if (u->state == UP_RUNNING) {
            char why[300];
            snprintf(why, sizeof why, "delivery to %s/%d failed: %s", p->t->central,
                     (int)m->partition, rd_kafka_err2str(m->err));
            if (u->txn) up_txn_fatal(u, m->err, why); /* only a fence counts there */
            start_drain(u, why);
        }
        return;
    }
    if (u->state != UP_RUNNING) return; /* a late success while draining: read-back decides */
    if (u->txn) { /* counted when the transaction commits */
        p->txn_records++;
        p->txn_rec_bytes += bytes;
    } else {
        p->fwd_records++;
        p->fwd_bytes += bytes;
        p->acked = part_acked(p);
    }
    u->last_cause[0] = 0; /* the link works: an older error explains nothing that follows */
    /* scan_from passes it once acked covers it (at once unless the topic is hashed) */
    up_central_note(p->t, m->partition, m->offset, p->partition, off);
    u->last_success_ms = up_wall_ms();
    u->ckpt_dirty = true;
    up_set_link(u, "up");
}

void up_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    up_t *u = opaque;
    char fatal[256];
    if (!on_loop(u)) {
        kb_log(KB_LOG_DEBUG, "uplink: %s", reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        int code = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        char why[400];
        snprintf(why, sizeof why, "fatal producer error: %s", fatal);
        if (u->txn && rk == u->rk) up_txn_fatal(u, code, why);
        if (u->state == UP_RUNNING) start_drain(u, why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__RESOLVE || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        err == RD_KAFKA_RESP_ERR__SSL) {
        if (u->state == UP_RUNNING) up_set_link(u, "down");
    }
    /* "all brokers are down" follows the error that took the last one down: keep that one as
     * the cause (a wrong password, an untrusted CA) instead of replacing it */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (u->last_cause[0]) {
            snprintf(u->last_error, sizeof u->last_error, "%s; cause: %s", reason, u->last_cause);
        } else {
            /* No error of its own came first (an idle connection reset, or librdkafka folding
             * repeated connect failures): this one is then the best cause a later watchdog
             * restart can name */
            snprintf(u->last_error, sizeof u->last_error, "%s", reason);
            snprintf(u->last_cause, sizeof u->last_cause, "%s", reason);
        }
    } else {
        snprintf(u->last_error, sizeof u->last_error, "%s", reason);
        snprintf(u->last_cause, sizeof u->last_cause, "%s", reason);
    }
    kb_log(KB_LOG_DEBUG, "uplink: %s", reason);
}

/* ------------------------------------------------------------------------------------------ */
/* The pump: local log -> producer                                                              */

static void refill(up_t *u)
{
    int64_t rate = u->cfg->uplink_max_bytes_per_second;
    int64_t now = (int64_t)uv_now(u->loop);
    if (rate <= 0) {
        u->tokens = 1e18;
        u->tokens_ms = now;
        return;
    }
    double burst = (double)rate / 10; /* 100 ms worth: smooth on a thin link */
    u->tokens += (double)(now - u->tokens_ms) * (double)rate / 1000.0;
    if (u->tokens > burst) u->tokens = burst;
    u->tokens_ms = now;
}

static int ring_push(up_t *u, up_part_t *p, int64_t off, int32_t bytes)
{
    if (p->q_len == p->q_cap) {
        uint32_t cap = p->q_cap ? p->q_cap * 2 : 256;
        int64_t *no = malloc(cap * sizeof *no), *nt = malloc(cap * sizeof *nt);
        int32_t *nb = malloc(cap * sizeof *nb);
        if (!no || !nb || !nt) {
            free(no);
            free(nb);
            free(nt);
            return K_ERR_NOMEM;
        }
        for (uint32_t i = 0; i < p->q_len; i++) {
            uint32_t from = (p->q_head + i) % p->q_cap;
            no[i] = p->q_off[from];
            nb[i] = p->q_bytes[from];
            nt[i] = p->q_ts[from];
        }
        free(p->q_off);
        free(p->q_bytes);
        free(p->q_ts);
        p->q_off = no;
        p->q_bytes = nb;
        p->q_ts = nt;
        p->q_head = 0;
        p->q_cap = cap;
    }
    uint32_t at = (p->q_head + p->q_len) % p->q_cap;
    p->q_off[at] = off;
    p->q_bytes[at] = bytes;
    p->q_ts[at] = (int64_t)uv_now(u->loop);
    p->q_len++;
    p->inflight_bytes += bytes;
    u->inflight_bytes += bytes;
    return 0;
}

/* Hands one record to librdkafka with its key, value, headers, timestamp and our depot.src.
 * 1 = queued, 0 = librdkafka's queue is full (try later), < 0 = failed. */
static int send_record(up_t *u, up_part_t *p, const kp_batch_hdr_t *bh, const kp_record_t *rec,
                       int64_t off)
{
    rd_kafka_headers_t *hs = rd_kafka_headers_new((size_t)rec->headers_count + 1);
    kp_reader_t hr;
    kp_reader_init(&hr, rec->headers, rec->headers_len);
    kp_record_header_t h;
    while (kp_record_header_next(&hr, &h) == 1)
        rd_kafka_header_add(hs, (const char *)h.key.ptr, h.key.len,
                            h.value.len < 0 ? NULL : h.value.ptr, h.value.len < 0 ? 0 : h.value.len);
    char src[400];
    int sn = snprintf(src, sizeof src, "%s:%s:%d:%" PRId64, u->cluster_id, p->t->name,
                      (int)p->partition, off);
    rd_kafka_header_add(hs, UP_SRC_HEADER, -1, src, sn);
    int64_t ts = (bh->attributes & KP_BATCH_ATTR_LOG_APPEND_TIME)
                     ? bh->max_timestamp
                     : bh->base_timestamp + rec->timestamp_delta;
    int32_t bytes = (rec->key.len > 0 ? rec->key.len : 0) +
                    (rec->value.len > 0 ? rec->value.len : 0) + (int32_t)rec->headers_len + sn;
    if (ring_push(u, p, off, bytes) < 0) {
        rd_kafka_headers_destroy(hs);
        return K_ERR_NOMEM;
    }
    const void *key = rec->key.len < 0 ? NULL : rec->key.ptr;
    size_t key_len = rec->key.len < 0 ? 0 : (size_t)rec->key.len;
    int32_t q = p->central_part;
    if (p->t->hashed && key) q = up_key_partition(key, key_len, p->t->ncentral);
    void *val = rec->value.len < 0 ? NULL : (void *)rec->value.ptr;
    size_t val_len = rec->value.len < 0 ? 0 : (size_t)rec->value.len;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        u->rk, RD_KAFKA_V_RKT(p->t->rkt), RD_KAFKA_V_PARTITION(q),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE(val, val_len), RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_TIMESTAMP(ts),
        RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(hs);
        p->q_len--; /* undo the push */
        p->inflight_bytes -= bytes;
        u->inflight_bytes -= bytes;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return 0;
        up_set_error(u, "produce to %s: %s", p->t->central, rd_kafka_err2str(e));
        return K_ERR_IO;
    }
    u->tokens -= bytes;
    u->txn_bytes += bytes;
    p->touched = true;
    return 1;
}

/* Tokens, the in-flight window, and (transactions) the open transaction's size allow more. */
static bool room(const up_t *u)
{
    return u->tokens > 0 && u->inflight_bytes < UP_WINDOW_BYTES &&
           !(u->txn && u->txn_bytes >= u->cfg->uplink_transaction_max_bytes);
}

/* Records of one read: sends those at or after next_send and below dur. 1 = keep going. */
static int pump_batches(up_t *u, up_part_t *p, const kp_buf_t *buf, int64_t dur)
{
    kp_batch_iter_t it;
    kp_batch_iter_init(&it, buf->data, buf->len, false);
    const uint8_t *bp;
    size_t bl;
    while (kp_batch_iter_next(&it, &bp, &bl) == 1) {
        kp_records_t rit;
        if (kp_records_init(&rit, bp, bl, MAX_DECOMPRESSED) < 0) {
            up_set_error(u, "%s/%d: unreadable batch at %" PRId64, p->t->name, p->partition,
                         p->next_send);
            return 0;
        }
        int64_t last = rit.hdr.base_offset + rit.hdr.last_offset_delta;
        int go = 1;
        kp_record_t rec;
        if (!(rit.hdr.attributes & KP_BATCH_ATTR_CONTROL)) {
            while (go == 1 && kp_records_next(&rit, &rec) == 1) {
                int64_t off = rit.hdr.base_offset + rec.offset_delta;
                if (off < p->next_send) continue;
                if (off >= dur || !room(u)) {
                    go = 0;
                    break;
                }
                if (p->skip.n && up_skip(p, off)) { /* already on the central side */
                    p->next_send = off + 1;
                    continue;
                }
                go = send_record(u, p, &rit.hdr, &rec, off);
                if (go == 1) p->next_send = off + 1;
            }
        }
        kp_records_deinit(&rit);
        if (go != 1) return go;
        /* The whole batch went (or was a control batch, or compaction left gaps). */
        if (last + 1 > p->next_send && last < dur) p->next_send = last + 1;
    }
    return 1;
}

static void on_synced(void *arg, int status)
{
    (void)arg; /* the pump looks at the durable end again; nothing to remember here */
    (void)status;
}

/* One partition's turn. Returns < 0 to stop the whole pump (librdkafka full or broken). */
static int pump_part(up_t *u, up_part_t *p, ks_part_t *kp, kp_buf_t *buf)
{
    int64_t start = ks_part_log_start(kp), end = ks_part_log_end(kp);
    int64_t dur = ks_part_durable_end(kp);
    if (p->next_send < start) {
        if (p->q_len) return 0; /* settle what is in flight first */
        kb_log(KB_LOG_WARN, "uplink: %s/%d: records [%" PRId64 ", %" PRId64 ") were deleted "
               "locally before the central cluster had them (%s): not forwarded", p->t->name,
               p->partition, p->next_send, start,
               u->cfg->uplink_retention_hold ? "DeleteRecords or a lost checkpoint"
                                             : "uplink.retention.hold=false");
        p->dropped_records += start - p->next_send;
        p->dropped_ranges++;
        p->next_send = p->acked = start;
        u->ckpt_dirty = true;
    }
    if (p->next_send >= end) return 0;
    if (p->next_send >= dur) {
        if (!p->sync_asked) p->sync_asked = ks_part_sync(kp, end, on_synced, NULL) == 0;
        return 0;
    }
    p->sync_asked = false;
    kp_buf_reset(buf);
    int rc = ks_part_read(kp, p->next_send, UP_PART_READ_BYTES, true, buf);
    if (rc < 0) return 0; /* raced with retention: the next turn sees the new log start */
    rc = pump_batches(u, p, buf, dur);
    return rc < 0 ? rc : rc == 1 ? 0 : -1;
}

/* One round over every partition; returns true if any partition handed over records. */
static bool pump_round(up_t *u, kp_buf_t *buf, bool *stop)
{
    bool progress = false;
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone || t->ncentral == 0 || !t->rkt) continue;
        ks_topic_t *kt = ks_topic_find(u->store, t->name, strlen(t->name));
        if (!kt) continue;
        for (int32_t i = 0; i < t->nparts && i < ks_topic_partitions(kt); i++) {
            if (!room(u)) {
                *stop = true;
                return progress;
            }
            int64_t before = t->parts[i].next_send;
            int rc = pump_part(u, &t->parts[i], ks_topic_part(kt, i), buf);
            progress |= t->parts[i].next_send != before;
            if (rc < 0) {
                *stop = true;
                return progress;
            }
        }
    }
    return progress;
}

/* Partitions take turns, a read (256 KiB) each, until the window or the tokens run out or
 * nothing is left; bounded so one timer callback never holds the loop long. */
static void pump(up_t *u)
{
    if (u->state != UP_RUNNING || !u->rk) return;
    if (u->txn && !up_txn_may_send(u)) return;
    refill(u);
    kp_buf_t buf;
    kp_buf_init(&buf);
    bool stop = false;
    for (int round = 0; round < 16 && !stop; round++)
        if (!pump_round(u, &buf, &stop)) break;
    kp_buf_deinit(&buf);
}

/* ------------------------------------------------------------------------------------------ */
/* States                                                                                       */

static void schedule_retry(up_t *u);

static void resolve_full(up_t *u, rd_kafka_t *old_rk)
{
    u->state = UP_RESOLVING;
    up_set_link(u, "resync");
    u->resyncs++;
    if (up_job_start(u, true, old_rk) < 0) {
        if (old_rk) rd_kafka_destroy(old_rk);
        schedule_retry(u);
    }
}

static void reset_parts(up_t *u)
{
    for (up_topic_t *t = u->topics; t; t = t->next) {
        for (int32_t i = 0; i < t->nparts; i++) {
            up_part_t *p = &t->parts[i];
            p->q_len = 0;
            p->q_head = 0;
            p->inflight_bytes = 0;
            p->next_send = p->acked;
        }
    }
    u->inflight_bytes = 0;
}

/* Purges the producer; finish_drain hands it to a full resolve job once reports are back. */
static void start_drain(up_t *u, const char *why)
{
    const char *how = u->txn ? "from the committed positions" : "read-back of the central side";
    if (u->last_cause[0] && !strstr(why, u->last_cause))
        up_set_error(u, "%s: starting over (%s); cause: %s", why, how, u->last_cause);
    else
        up_set_error(u, "%s: starting over (%s)", why, how);
    u->state = UP_DRAINING;
    up_set_link(u, "down");
    u->drain_deadline = (int64_t)uv_now(u->loop) + DRAIN_MAX_MS;
    rd_kafka_purge(u->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

void up_restart(up_t *u, const char *why)
{
    if (u->state == UP_RUNNING) start_drain(u, why);
}

static void finish_drain(up_t *u)
{
    rd_kafka_t *rk = u->rk;
    u->rk = NULL;
    if (u->off_rkt) rd_kafka_topic_destroy(u->off_rkt);
    u->off_rkt = NULL;
    up_txn_reset(u);
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (t->rkt) {
            rd_kafka_topic_destroy(t->rkt);
            t->rkt = NULL;
        }
    rd_kafka_queue_t *mq = rd_kafka_queue_get_main(rk);
    rd_kafka_queue_cb_event_enable(mq, NULL, NULL);
    rd_kafka_queue_destroy(mq);
    reset_parts(u);
    if (u->fenced) { /* another process has our transactional.id: not at once (4 .. 8 s) */
        u->fenced = false;
        u->dead_rk = rk;
        if (u->backoff_n < 4) u->backoff_n = 4;
        schedule_retry(u);
        up_set_link(u, "fenced");
        return;
    }
    resolve_full(u, rk);
}

static void on_retry(uv_timer_t *h)
{
    up_t *u = h->data;
    if (u->stopping || u->job) return;
    if (u->state != UP_BACKOFF) return;
    rd_kafka_t *old = u->dead_rk;
    u->dead_rk = NULL;
    resolve_full(u, old);
}

static void schedule_retry(up_t *u)
{
    int n = u->backoff_n < 6 ? u->backoff_n : 6;
    int64_t cap = 500LL << n; /* 0.5 s .. 32 s */
    if (cap > 30000) cap = 30000;
    int64_t delay = cap / 2 + (int64_t)(rand() % (int)(cap / 2 + 1)); /* jitter */
    u->backoff_n++;
    u->state = UP_BACKOFF;
    up_set_link(u, "down");
    uv_timer_start(&u->retry, on_retry, (uint64_t)delay, 0);
}

void up_job_finished(up_t *u, bool ok, bool full)
{
    if (u->stopping) return;
    if (ok) u->backoff_n = 0;
    /* scan_from must be durable before anything is produced to a newly resolved partition
     * (the read-back relies on it); without a checkpoint nothing is sent. */
    if (u->ckpt_dirty && up_ckpt_save(u) < 0) {
        ok = false;
        for (up_topic_t *t = u->topics; t; t = t->next)
            if (!t->rkt) t->ncentral = 0;
    }
    if (full) {
        if (!ok) {
            if (u->new_rk) { /* the next job destroys it */
                if (u->dead_rk) rd_kafka_destroy(u->dead_rk);
                u->dead_rk = u->new_rk;
                u->new_rk = NULL;
            }
            schedule_retry(u);
            return;
        }
        u->txn = u->new_rk != NULL;
        u->prev_txn = u->txn;
        up_txn_reset(u);
        if (u->new_rk) {
            up_producer_attach(u, u->new_rk);
            u->new_rk = NULL;
        } else if (up_producer_start(u) < 0) {
            schedule_retry(u);
            return;
        }
        u->ckpt_dirty = true; /* the mode line */
        u->state = UP_RUNNING;
        up_set_link(u, "up");
    } else if (u->rk) {
        for (up_topic_t *t = u->topics; t; t = t->next)
            if (!t->gone && t->ncentral > 0 && !t->rkt)
                t->rkt = rd_kafka_topic_new(u->rk, t->central, NULL);
    }
    if (u->job_full && u->state == UP_RUNNING) {
        u->job_full = false;
        start_drain(u, "resync requested");
    }
}

static void on_pump(uv_timer_t *h)
{
    up_t *u = h->data;
    if (u->rk) rd_kafka_poll(u->rk, 0);
    if (u->txn) up_txn_progress(u);
    if (u->state == UP_DRAINING && !u->job && !u->txn_busy &&
        (rd_kafka_outq_len(u->rk) == 0 || (int64_t)uv_now(u->loop) > u->drain_deadline)) {
        finish_drain(u);
        return;
    }
    pump(u);
}

static void on_wake(uv_async_t *h)
{
    up_t *u = h->data;
    if (u->rk) rd_kafka_poll(u->rk, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Subsystem                                                                                    */

static void up_free(up_t *u)
{
    while (u->topics) {
        up_topic_t *t = u->topics;
        u->topics = t->next;
        topic_free(t);
    }
    if (u->re_ok) regfree(&u->re);
    free(u);
}

static void on_handle_closed(uv_handle_t *h)
{
    up_t *u = h->data;
    if (h == (uv_handle_t *)&u->wake && !u->job && !u->ckpt_busy && !u->txn_busy) up_free(u);
}

/* GET /uplink on the metrics listener: the status as JSON. ud is the broker (it outlives the
 * route; the uplink itself may already be closed, then 503). */
static int http_uplink(kb_http_req_t *req, void *ud)
{
    up_t *u = get(ud);
    if (!u) {
        kb_http_respond(req, 503, "application/json", "{\"error\": \"uplink closed\"}\n", 27);
        return KB_DONE;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return K_ERR_NOMEM;
    up_status_json(u, f);
    fclose(f);
    kb_http_write(req, text, len);
    free(text);
    kb_http_send(req, 200, "application/json");
    return KB_DONE;
}

/* The metrics room's source for /metrics; ud is the broker (it outlives the registration). */
static void prom_source(kb_http_req_t *req, void *ud)
{
    up_t *u = get(ud);
    if (u) up_prometheus(req, u);
}

static int compile_topics(up_t *u)
{
    const char *pat = u->cfg->uplink_topics ? u->cfg->uplink_topics : ".*";
    char anchored[1200];
    snprintf(anchored, sizeof anchored, "^(%s)$", pat);
    int rc = regcomp(&u->re, anchored, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char e[200];
        regerror(rc, &u->re, e, sizeof e);
        kb_log(KB_LOG_ERROR, "uplink.topics: invalid regex '%s': %s", pat, e);
        return K_ERR_INVAL;
    }
    u->re_ok = true;
    return 0;
}

static int up_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    if (!cfg->uplink_bootstrap || !cfg->uplink_bootstrap[0]) return 0;
    up_t *u = calloc(1, sizeof *u);
    if (!u) return K_ERR_NOMEM;
    u->b = b;
    u->cfg = cfg;
    u->store = kb_broker_store(b);
    u->loop = kb_broker_loop(b);
    snprintf(u->cluster_id, sizeof u->cluster_id, "%s", ks_store_cluster_id(u->store));
    snprintf(u->dir, sizeof u->dir, "%s", cfg->log_dirs[0]);
    u->loop_thread = pthread_self();
    u->mode_logged = -1;
    if (cfg->uplink_transactional_id && cfg->uplink_transactional_id[0])
        snprintf(u->txn_id, sizeof u->txn_id, "%s", cfg->uplink_transactional_id);
    else
        snprintf(u->txn_id, sizeof u->txn_id, "depot-uplink-%s", u->cluster_id);
    up_set_link(u, "resync");
    char err[512] = "";
    rd_kafka_conf_t *probe = up_conf_new(u, true, err, sizeof err);
    if (!probe || compile_topics(u) < 0) {
        if (probe) rd_kafka_conf_destroy(probe);
        if (err[0]) kb_log(KB_LOG_ERROR, "%s", err);
        if (u->re_ok) regfree(&u->re);
        free(u);
        return K_ERR_INVAL;
    }
    rd_kafka_conf_destroy(probe);
    *kb_broker_slot(b, &kb_uplink_subsys) = u;
    uv_timer_init(u->loop, &u->pump);
    uv_timer_init(u->loop, &u->retry);
    uv_async_init(u->loop, &u->wake, on_wake);
    u->pump.data = u->retry.data = u->wake.data = u;
    u->handles_up = true;
    discover(u);
    up_ckpt_load(u);
    ks_store_set_retention_floor(u->store, floor_fn, u);
    kb_http_listener_t *hl = kb_http_listener_find(b, "metrics");
    if (hl) kb_http_route(hl, "GET", "/uplink", http_uplink, b);
    kb_metrics_add_source(b, prom_source, b);
    srand((unsigned)up_wall_ms());
    kb_log(KB_LOG_INFO, "uplink: forwarding topics matching '%s' to %s as %s<topic>%s",
           cfg->uplink_topics ? cfg->uplink_topics : ".*", cfg->uplink_bootstrap,
           cfg->uplink_topic_prefix ? cfg->uplink_topic_prefix : "",
           cfg->uplink_max_bytes_per_second > 0 ? " (bandwidth capped)" : "");
    u->tokens_ms = (int64_t)uv_now(u->loop);
    uv_timer_start(&u->pump, on_pump, PUMP_MS, PUMP_MS);
    resolve_full(u, NULL);
    return 0;
}

static void up_tick(kb_broker_t *b, int64_t mono_ms)
{
    (void)mono_ms;
    up_t *u = get(b);
    if (!u || u->stopping) return;
    int added = discover(u);
    bool unresolved = false;
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (!t->gone && t->ncentral == 0 && !t->resolving) unresolved = true;
    int64_t now = (int64_t)uv_now(u->loop);
    if (unresolved && u->state == UP_RUNNING && !u->job && (added || now >= u->next_partial_ms)) {
        u->next_partial_ms = now + PARTIAL_RETRY_MS;
        up_job_start(u, false, NULL);
    }
    /* Delivery watchdog: librdkafka never times a record out (message.timeout.ms=0, so it
     * never leaves a hole behind a failed batch); the uplink starts over instead. */
    if (u->state == UP_RUNNING) {
        for (up_topic_t *t = u->topics; t && u->state == UP_RUNNING; t = t->next)
            for (int32_t i = 0; i < t->nparts && u->state == UP_RUNNING; i++) {
                up_part_t *p = &t->parts[i];
                if (p->q_len && now - p->q_ts[p->q_head] > u->cfg->uplink_delivery_timeout_ms) {
                    char why[300];
                    snprintf(why, sizeof why, "%s/%d: no acknowledgement for %" PRId64 " ms",
                             t->name, (int)i, now - p->q_ts[p->q_head]);
                    start_drain(u, why);
                }
            }
    }
    /* The floor follows the checkpoint: write it, then let retention see the new floor. */
    for (up_topic_t *t = u->topics; t; t = t->next)
        for (int32_t i = 0; i < t->nparts; i++)
            if (t->parts[i].acked != t->parts[i].ckpt_acked) u->ckpt_dirty = true;
    if (u->ckpt_dirty) up_ckpt_save_async(u);
    up_status_write(u);
}

static void up_stop(kb_broker_t *b)
{
    up_t *u = get(b);
    if (!u) return;
    u->stopping = true;
    uv_timer_stop(&u->pump);
    uv_timer_stop(&u->retry);
}

static void up_close(kb_broker_t *b)
{
    up_t *u = get(b);
    if (!u) return;
    u->stopping = true;
    ks_store_set_retention_floor(u->store, NULL, NULL);
    kb_metrics_remove_source(b, prom_source, b);
    if (u->rk) {
        rd_kafka_poll(u->rk, 0); /* what has been acknowledged goes into the checkpoint */
        up_txn_close(u);
        rd_kafka_purge(u->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(u->rk, 100);
    }
    up_ckpt_save(u);
    up_status_write(u);
    if (u->rk) {
        for (up_topic_t *t = u->topics; t; t = t->next)
            if (t->rkt) {
                rd_kafka_topic_destroy(t->rkt);
                t->rkt = NULL;
            }
        if (u->off_rkt) rd_kafka_topic_destroy(u->off_rkt);
        u->off_rkt = NULL;
        if (u->txn_busy) /* the running commit uses it: commit_done destroys it */
            u->rk_orphaned = true;
        else
            rd_kafka_destroy(u->rk);
        u->rk = NULL;
    }
    if (u->dead_rk) rd_kafka_destroy(u->dead_rk);
    u->dead_rk = NULL;
    *kb_broker_slot(b, &kb_uplink_subsys) = NULL;
    /* A running job (resolve, checkpoint) finishes on the threadpool; the last one to complete
     * frees u (up_job_orphaned). The save above is numbered after a running background one,
     * which therefore never replaces it. */
    uv_close((uv_handle_t *)&u->pump, NULL);
    uv_close((uv_handle_t *)&u->retry, NULL);
    uv_close((uv_handle_t *)&u->wake, on_handle_closed);
}

/* The job finished after close: nothing to apply. */
void up_job_orphaned(up_t *u)
{
    if (uv_is_closing((uv_handle_t *)&u->wake) && !u->job && !u->ckpt_busy && !u->txn_busy)
        up_free(u);
}

static void up_topic_deleted(kb_broker_t *b, const char *topic)
{
    up_t *u = get(b);
    if (!u) return;
    up_topic_t *t = up_topic_find(u, topic);
    if (!t) return;
    t->gone = true; /* kept until close: delivery reports may still name its partitions */
    u->ckpt_dirty = true;
}

const kb_subsys_t kb_uplink_subsys = {
    .name = "uplink",
    .init = up_init,
    .tick = up_tick,
    .stop = up_stop,
    .close = up_close,
    .topic_deleted = up_topic_deleted,
};

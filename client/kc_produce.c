/*
 * Producer: records go into the accumulator (kc_accum.c); full batches, and all batches on
 * flush, are sent in one Produce request per leader. Retriable errors are retried with the
 * same batch bytes after a backoff (refreshing metadata first when leadership may have moved),
 * up to cfg.retries times. Without idempotence a retry after a lost answer can duplicate a
 * batch: at-least-once, as Kafka's non-idempotent producer is.
 */
#include "client/kc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kp_produce.h"
#include "protocol/kp_errors.h"

struct kc_producer {
    kc_client_t *c; /* not owned */
    kc_producer_config_t cfg;
    kc_accum_t acc;
    uint32_t sticky; /* partition choice for null keys; moves on when a batch is cut */
    kc_producer_stats_t st;
};

void kc_producer_config_init(kc_producer_config_t *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->acks = -1;
    pc->codec = KP_COMPRESSION_NONE;
    pc->batch_bytes = 64 * 1024;
    pc->request_timeout_ms = 30000;
}

kc_producer_t *kc_producer_new(kc_client_t *c, const kc_producer_config_t *pc)
{
    kc_producer_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->c = c;
    p->cfg = *pc;
    kc_accum_init(&p->acc, pc->codec, pc->batch_bytes);
    return p;
}

void kc_producer_free(kc_producer_t *p)
{
    if (!p) return;
    kc_accum_deinit(&p->acc);
    free(p);
}

void kc_producer_stats(const kc_producer_t *p, kc_producer_stats_t *st)
{
    *st = p->st;
}

/* Leader of a batch's partition from cached metadata, or -1 (with *err) if unknown. */
static int32_t leader_of(kc_client_t *c, const kc_ready_batch_t *rb, int16_t *err)
{
    const kc_topic_md_t *t;
    *err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (kc_client_topic(c, rb->topic, false, &t)) {
        if (c->kerr) *err = c->kerr;
        return -1;
    }
    for (int32_t i = 0; i < t->npartitions; i++)
        if (t->partitions[i].partition == rb->partition) {
            *err = t->partitions[i].error_code;
            if (!*err && t->partitions[i].leader < 0) *err = KP_ERR_LEADER_NOT_AVAILABLE;
            return *err ? -1 : t->partitions[i].leader;
        }
    return -1;
}

/* Sends the batches marked in `sel` (all led by one node) in one Produce request and applies
 * the answer. Returns K_ERR_IO when the connection failed (batches stay pending). */
static int produce_to(kc_producer_t *p, int32_t leader, kc_ready_batch_t *rb, int n,
                      const bool *sel, bool *refresh)
{
    kc_client_t *c = p->c;
    kp_produce_req_topic_produce_data_t *td = calloc((size_t)n, sizeof *td);
    kp_produce_req_partition_produce_data_t *pd = calloc((size_t)n, sizeof *pd);
    int rc = td && pd ? 0 : kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    int ntd = 0, npd = 0;
    /* Group the selected batches by topic: each topic's partitions are contiguous in pd. */
    for (int i = 0; !rc && i < n; i++) {
        if (!sel[i]) continue;
        bool seen = false;
        for (int k = 0; k < ntd && !seen; k++)
            seen = kp_str_eq(td[k].name, rb[i].topic);
        if (seen) continue;
        td[ntd].name = kp_str(rb[i].topic);
        td[ntd].partition_data = &pd[npd];
        for (int j = i; j < n; j++)
            if (sel[j] && strcmp(rb[j].topic, rb[i].topic) == 0) {
                pd[npd].index = rb[j].partition;
                pd[npd].records = (kp_bytes_t){rb[j].bytes, (int32_t)rb[j].len};
                npd++;
                td[ntd].partition_data_count++;
            }
        ntd++;
    }
    kc_conn_t *conn;
    if (!rc && (rc = kc_client_conn(c, leader, &conn))) *refresh = true;
    kc_rx_t rx;
    kc_rx_init(&rx);
    kp_produce_resp_t resp;
    kp_produce_resp_init(&resp);
    if (!rc) {
        kp_produce_req_t req;
        kp_produce_req_init(&req);
        req.acks = (int16_t)p->cfg.acks;
        req.timeout_ms = p->cfg.request_timeout_ms;
        req.topic_data = td;
        req.topic_data_count = ntd;
        rc = kc_conn_call(c, conn, KP_API_PRODUCE, &req, p->cfg.acks == 0 ? NULL : &resp, &rx,
                          p->cfg.request_timeout_ms);
        if (rc == K_ERR_IO) *refresh = true;
    }
    if (!rc && p->cfg.acks == 0) {
        for (int i = 0; i < n; i++)
            if (sel[i]) rb[i].done = true;
    }
    for (int32_t t = 0; !rc && p->cfg.acks != 0 && t < resp.responses_count; t++) {
        const kp_produce_resp_topic_produce_response_t *tr = &resp.responses[t];
        for (int32_t k = 0; k < tr->partition_responses_count; k++) {
            const kp_produce_resp_partition_produce_response_t *pr = &tr->partition_responses[k];
            for (int i = 0; i < n; i++) {
                if (!sel[i] || rb[i].done || rb[i].partition != pr->index ||
                    !kp_str_eq(tr->name, rb[i].topic))
                    continue;
                rb[i].error_code = pr->error_code;
                kc_action_t act = kc_retry_action(pr->error_code);
                if (act == KC_ACT_DONE) {
                    rb[i].done = true;
                    rb[i].base_offset = pr->base_offset;
                } else if (act == KC_ACT_FAIL) {
                    rb[i].done = true;
                    char what[300];
                    snprintf(what, sizeof what, "producing to %s partition %d", rb[i].topic,
                             rb[i].partition);
                    kc_kafka_fail(c, pr->error_code, what, pr->error_message);
                } else if (act == KC_ACT_RETRY_REFRESH) {
                    *refresh = true;
                }
            }
        }
    }
    kc_rx_deinit(&rx);
    free(td);
    free(pd);
    return rc;
}

/* Sends the batches until each is acknowledged, failed, or out of retries. */
static int send_ready(kc_producer_t *p, kc_ready_batch_t *rb, int n)
{
    kc_client_t *c = p->c;
    bool *sel = calloc((size_t)n + 1, sizeof *sel);
    if (!sel) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    bool refresh = false;
    int rc = 0, hard = 0;
    for (int attempt = 0; attempt <= c->cfg.retries; attempt++) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += !rb[i].done;
        if (!pending) break;
        if (attempt) {
            p->st.retries += (uint64_t)pending;
            kc_sleep_ms(c->cfg.retry_backoff_ms);
        }
        for (int i = 0; refresh && i < n; i++) {
            const kc_topic_md_t *t;
            bool again = false;
            for (int k = 0; k < i && !again; k++)
                again = strcmp(rb[k].topic, rb[i].topic) == 0;
            if (!rb[i].done && !again)
                (void)kc_client_topic(c, rb[i].topic, true, &t); /* errors show per batch */
        }
        refresh = false;
        int32_t leaders[64];
        int nleaders = 0;
        for (int i = 0; i < n; i++) {
            if (rb[i].done) continue;
            int16_t err;
            int32_t l = leader_of(c, &rb[i], &err);
            if (l < 0) {
                rb[i].error_code = err;
                refresh = true;
                if (kc_retry_action(err) == KC_ACT_FAIL) {
                    rb[i].done = true;
                    kc_kafka_fail(c, err, rb[i].topic, (kp_str_t){NULL, -1});
                }
                continue;
            }
            bool known = false;
            for (int k = 0; k < nleaders && !known; k++)
                known = leaders[k] == l;
            if (!known && nleaders < 64) leaders[nleaders++] = l;
        }
        for (int k = 0; k < nleaders; k++) {
            int16_t err;
            for (int i = 0; i < n; i++)
                sel[i] = !rb[i].done && leader_of(c, &rb[i], &err) == leaders[k];
            rc = produce_to(p, leaders[k], rb, n, sel, &refresh);
            if (rc && rc != K_ERR_IO && rc != K_ERR_AGAIN && rc != K_ERR_NOENT) {
                hard = rc; /* local trouble (encoding, memory, no common version): stop */
                goto out;
            }
        }
    }
out:
    rc = hard;
    for (int i = 0; i < n; i++) {
        if (rb[i].done && rb[i].error_code == 0) {
            p->st.records_sent += (uint64_t)rb[i].nrecords;
            continue;
        }
        p->st.records_failed += (uint64_t)rb[i].nrecords;
        if (rc) continue; /* the first failure is the one reported */
        char what[300];
        snprintf(what, sizeof what, "producing to %s partition %d%s", rb[i].topic, rb[i].partition,
                 rb[i].done ? "" : " (out of retries)");
        if (rb[i].error_code)
            rc = kc_kafka_fail(c, rb[i].error_code, what, (kp_str_t){NULL, -1});
        else {
            char why[sizeof c->errmsg];
            snprintf(why, sizeof why, "%s", c->errmsg);
            rc = kc_fail(c, K_ERR_AGAIN, c->kerr, "%s: %s", what, why);
        }
        if (!rb[i].done) rc = K_ERR_AGAIN;
    }
    free(sel);
    return rc;
}

static int drain_and_send(kc_producer_t *p, int idx)
{
    kc_ready_batch_t *rb = NULL;
    int n = 0;
    int rc = kc_accum_drain(&p->acc, idx, &rb, &n);
    if (rc)
        rc = kc_fail(p->c, rc, 0, "cannot build a batch: %s", k_strerror(rc));
    else if (n)
        rc = send_ready(p, rb, n);
    kc_ready_free(rb, n);
    return rc;
}

int kc_producer_send(kc_producer_t *p, const char *topic, int32_t partition, kp_bytes_t key,
                     kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders,
                     int64_t timestamp)
{
    kc_client_t *c = p->c;
    const kc_topic_md_t *t;
    int rc = kc_client_topic(c, topic, false, &t);
    if (rc) return rc;
    if (partition < 0)
        partition = key.ptr && key.len >= 0
                        ? kc_partition_for_key(key.ptr, (size_t)key.len, t->npartitions)
                        : (int32_t)(p->sticky % (uint32_t)t->npartitions);
    else if (partition >= t->npartitions)
        return kc_fail(c, K_ERR_NOENT, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                       "topic %s: UNKNOWN_TOPIC_OR_PARTITION: it has no partition %d (it has "
                       "%d)",
                       topic, partition, t->npartitions);
    bool full;
    int idx;
    rc = kc_accum_add(&p->acc, topic, partition, timestamp < 0 ? kc_now_ms() : timestamp, key,
                      value, headers, nheaders, &full, &idx);
    if (rc) return kc_fail(c, rc, 0, "cannot add the record: %s", k_strerror(rc));
    if (!full) return 0;
    p->sticky++;
    return drain_and_send(p, idx);
}

int kc_producer_flush(kc_producer_t *p)
{
    return drain_and_send(p, -1);
}

/*
 * ListOffsets and Fetch, plus a group-less consumer that walks the fetched batches.
 */
#include "client/kc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kp_fetch.h"
#include "protocol/gen/kp_list_offsets.h"
#include "protocol/kp_errors.h"

#define MAX_DECOMPRESSED (64u << 20)

static int partition_leader(kc_client_t *c, const char *topic, int32_t partition, bool refresh,
                            int32_t *leader)
{
    const kc_topic_md_t *t;
    int rc = kc_client_topic_ex(c, topic, refresh, false, &t);
    if (rc) return rc;
    for (int32_t i = 0; i < t->npartitions; i++)
        if (t->partitions[i].partition == partition) {
            *leader = t->partitions[i].leader;
            return 0;
        }
    return kc_fail(c, K_ERR_NOENT, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                   "topic %s: UNKNOWN_TOPIC_OR_PARTITION: it has no partition %d", topic,
                   partition);
}

int kc_list_offset(kc_client_t *c, const char *topic, int32_t partition, int64_t ts,
                   int64_t *offset)
{
    int rc = 0;
    for (int attempt = 0; attempt <= c->cfg.retries; attempt++) {
        if (attempt) kc_sleep_ms(c->cfg.retry_backoff_ms);
        int32_t leader;
        kc_conn_t *conn;
        if ((rc = partition_leader(c, topic, partition, attempt > 0, &leader)) ||
            (rc = kc_client_conn(c, leader, &conn))) {
            if (rc == K_ERR_AGAIN || rc == K_ERR_IO) continue;
            return rc;
        }
        kp_list_offsets_req_list_offsets_partition_t rp;
        kp_list_offsets_req_list_offsets_partition_init(&rp);
        rp.partition_index = partition;
        rp.timestamp = ts;
        kp_list_offsets_req_list_offsets_topic_t rt = {kp_str(topic), &rp, 1};
        kp_list_offsets_req_t req;
        kp_list_offsets_req_init(&req);
        req.replica_id = -1;
        req.topics = &rt;
        req.topics_count = 1;
        req.timeout_ms = c->cfg.timeout_ms;
        kp_list_offsets_resp_t resp;
        kp_list_offsets_resp_init(&resp);
        kc_rx_t rx;
        kc_rx_init(&rx);
        rc = kc_conn_call(c, conn, KP_API_LIST_OFFSETS, &req, &resp, &rx, 0);
        int16_t err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        for (int32_t i = 0; !rc && i < resp.topics_count; i++)
            for (int32_t k = 0; k < resp.topics[i].partitions_count; k++)
                if (resp.topics[i].partitions[k].partition_index == partition) {
                    err = resp.topics[i].partitions[k].error_code;
                    *offset = resp.topics[i].partitions[k].offset;
                }
        kc_rx_deinit(&rx);
        if (rc == K_ERR_IO) continue;
        if (rc) return rc;
        char what[300];
        snprintf(what, sizeof what, "offsets of %s partition %d", topic, partition);
        rc = kc_kafka_fail(c, err, what, (kp_str_t){NULL, -1});
        if (rc == 0 || kc_retry_action(err) == KC_ACT_FAIL) return rc;
    }
    return rc;
}

void kc_fetch_part_clear(kc_fetch_part_t *fp)
{
    free(fp->records);
    fp->records = NULL;
    fp->records_len = 0;
}

/* One Fetch to one leader for the partitions marked in sel. */
static int fetch_from(kc_client_t *c, int32_t leader, const char *topic, kc_fetch_part_t *parts,
                      const bool *sel, int nparts, int max_wait_ms, int32_t max_bytes)
{
    kc_conn_t *conn;
    int rc = kc_client_conn(c, leader, &conn);
    if (rc) return rc;
    kp_fetch_req_fetch_partition_t *fp = calloc((size_t)nparts, sizeof *fp);
    if (!fp) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    int n = 0;
    for (int i = 0; i < nparts; i++) {
        if (!sel[i]) continue;
        kp_fetch_req_fetch_partition_init(&fp[n]);
        fp[n].partition = parts[i].partition;
        fp[n].fetch_offset = parts[i].offset;
        fp[n].partition_max_bytes = max_bytes;
        n++;
    }
    kp_fetch_req_fetch_topic_t ft;
    kp_fetch_req_fetch_topic_init(&ft);
    ft.topic = kp_str(topic);
    ft.partitions = fp;
    ft.partitions_count = n;
    kp_fetch_req_t req;
    kp_fetch_req_init(&req);
    req.replica_id = -1;
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = max_bytes;
    req.session_id = 0;
    req.session_epoch = -1; /* no fetch session: a full answer every time */
    req.topics = &ft;
    req.topics_count = 1;
    kp_fetch_resp_t resp;
    kp_fetch_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_FETCH, &req, &resp, &rx, max_wait_ms);
    if (!rc && resp.error_code)
        rc = kc_kafka_fail(c, resp.error_code, "fetch", (kp_str_t){NULL, -1});
    for (int32_t t = 0; !rc && t < resp.responses_count; t++) {
        if (!kp_str_eq(resp.responses[t].topic, topic)) continue;
        for (int32_t k = 0; k < resp.responses[t].partitions_count; k++) {
            const kp_fetch_resp_partition_data_t *pd = &resp.responses[t].partitions[k];
            for (int i = 0; i < nparts; i++) {
                if (!sel[i] || parts[i].partition != pd->partition_index) continue;
                kc_fetch_part_t *out = &parts[i];
                out->error_code = pd->error_code;
                out->high_watermark = pd->high_watermark;
                out->log_start_offset = pd->log_start_offset;
                if (pd->records.len > 0) {
                    out->records = malloc((size_t)pd->records.len);
                    if (!out->records) {
                        rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
                        break;
                    }
                    memcpy(out->records, pd->records.ptr, (size_t)pd->records.len);
                    out->records_len = (size_t)pd->records.len;
                }
            }
        }
    }
    kc_rx_deinit(&rx);
    free(fp);
    return rc;
}

int kc_fetch(kc_client_t *c, const char *topic, kc_fetch_part_t *parts, int nparts, int max_wait_ms,
             int32_t max_bytes)
{
    bool *sel = calloc((size_t)nparts + 1, sizeof *sel);
    int32_t *leader = calloc((size_t)nparts + 1, sizeof *leader);
    int rc = sel && leader ? 0 : kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    for (int i = 0; !rc && i < nparts; i++) {
        kc_fetch_part_clear(&parts[i]);
        parts[i].error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION; /* unless answered */
        rc = partition_leader(c, topic, parts[i].partition, false, &leader[i]);
    }
    for (int i = 0; !rc && i < nparts; i++) {
        bool first = true;
        for (int k = 0; k < i; k++)
            first = first && leader[k] != leader[i];
        if (!first) continue;
        for (int k = 0; k < nparts; k++)
            sel[k] = leader[k] == leader[i];
        rc = fetch_from(c, leader[i], topic, parts, sel, nparts, max_wait_ms, max_bytes);
    }
    free(sel);
    free(leader);
    return rc;
}

/* ---- consumer ----------------------------------------------------------------------------- */

typedef struct {
    kc_fetch_part_t fp;
    int64_t position;    /* next offset to hand out */
    kp_batch_iter_t bit; /* over fp.records */
    kp_records_t recs;   /* the current batch */
    bool in_batch;
} kc_cpart_t;

struct kc_consumer {
    kc_client_t *c; /* not owned */
    char *topic;
    kc_cpart_t *parts;
    int nparts;
    int next; /* round robin over partitions with data */
};

void kc_consumer_free(kc_consumer_t *cs)
{
    if (!cs) return;
    for (int i = 0; i < cs->nparts; i++) {
        kp_records_deinit(&cs->parts[i].recs);
        kc_fetch_part_clear(&cs->parts[i].fp);
    }
    free(cs->parts);
    free(cs->topic);
    free(cs);
}

kc_consumer_t *kc_consumer_new(kc_client_t *c, const char *topic, const int32_t *partitions,
                               int npartitions, int64_t start)
{
    const kc_topic_md_t *t;
    if (kc_client_topic_ex(c, topic, false, false, &t)) return NULL;
    kc_consumer_t *cs = calloc(1, sizeof *cs);
    if (!cs || !(cs->topic = strdup(topic))) {
        free(cs);
        kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    cs->c = c;
    cs->nparts = partitions ? npartitions : t->npartitions;
    cs->parts = calloc((size_t)cs->nparts + 1, sizeof *cs->parts);
    if (!cs->parts) {
        kc_consumer_free(cs);
        kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    for (int i = 0; i < cs->nparts; i++) {
        kc_cpart_t *p = &cs->parts[i];
        p->fp.partition = partitions ? partitions[i] : t->partitions[i].partition;
        p->position = start;
        if (start < 0 && kc_list_offset(c, topic, p->fp.partition, start, &p->position)) {
            kc_consumer_free(cs);
            return NULL;
        }
    }
    return cs;
}

int kc_consumer_seek(kc_consumer_t *cs, int32_t partition, int64_t offset)
{
    for (int i = 0; i < cs->nparts; i++) {
        kc_cpart_t *p = &cs->parts[i];
        if (p->fp.partition != partition) continue;
        if (p->in_batch) kp_records_deinit(&p->recs);
        p->in_batch = false;
        kc_fetch_part_clear(&p->fp);
        kp_batch_iter_init(&p->bit, NULL, 0, false);
        p->position = offset;
        return 0;
    }
    return K_ERR_NOENT;
}

int64_t kc_consumer_position(const kc_consumer_t *cs, int32_t partition)
{
    for (int i = 0; i < cs->nparts; i++)
        if (cs->parts[i].fp.partition == partition) return cs->parts[i].position;
    return -1;
}

/* Next record of partition p at or after its position, from what was fetched: 1, 0 when the
 * fetched bytes are used up, or a negative status. */
static int next_in_part(kc_consumer_t *cs, kc_cpart_t *p, kc_message_t *msg)
{
    for (;;) {
        if (!p->in_batch) {
            const uint8_t *b;
            size_t blen;
            int rc = kp_batch_iter_next(&p->bit, &b, &blen);
            if (rc <= 0) {
                kc_fetch_part_clear(&p->fp);
                return rc == 0 ? 0
                               : kc_fail(cs->c, rc, 0, "bad batch framing in %s partition %d",
                                         cs->topic, p->fp.partition);
            }
            rc = kp_batch_validate(b, blen, NULL);
            if (!rc) rc = kp_records_init(&p->recs, b, blen, MAX_DECOMPRESSED);
            if (rc) {
                kp_records_deinit(&p->recs);
                return kc_fail(cs->c, rc, 0, "corrupt batch in %s partition %d: %s", cs->topic,
                               p->fp.partition, k_strerror(rc));
            }
            if (p->recs.hdr.attributes & KP_BATCH_ATTR_CONTROL ||
                p->recs.hdr.base_offset + p->recs.hdr.last_offset_delta < p->position) {
                kp_records_deinit(&p->recs);
                if (!(p->recs.hdr.attributes & KP_BATCH_ATTR_CONTROL)) continue;
                /* A control batch still moves the position past its offsets. */
                p->position = p->recs.hdr.base_offset + p->recs.hdr.last_offset_delta + 1;
                continue;
            }
            p->in_batch = true;
        }
        kp_record_t rec;
        int rc = kp_records_next(&p->recs, &rec);
        if (rc <= 0) {
            const kp_batch_hdr_t *h = &p->recs.hdr;
            int64_t end = h->base_offset + h->last_offset_delta + 1;
            kp_records_deinit(&p->recs);
            p->in_batch = false;
            if (rc < 0)
                return kc_fail(cs->c, rc, 0, "malformed record in %s partition %d", cs->topic,
                               p->fp.partition);
            if (end > p->position)
                p->position = end; /* compaction may leave gaps at the end of a batch */
            continue;
        }
        const kp_batch_hdr_t *h = &p->recs.hdr;
        int64_t off = h->base_offset + rec.offset_delta;
        if (off < p->position) continue; /* a compressed batch starts before the offset asked for */
        p->position = off + 1;
        msg->topic = cs->topic;
        msg->partition = p->fp.partition;
        msg->offset = off;
        msg->timestamp_type = (h->attributes & KP_BATCH_ATTR_LOG_APPEND_TIME) != 0;
        msg->timestamp =
            msg->timestamp_type ? h->max_timestamp : h->base_timestamp + rec.timestamp_delta;
        msg->key = rec.key;
        msg->value = rec.value;
        msg->headers = rec.headers;
        msg->headers_len = rec.headers_len;
        msg->headers_count = rec.headers_count;
        return 1;
    }
}

static int take_buffered(kc_consumer_t *cs, kc_message_t *msg)
{
    for (int k = 0; k < cs->nparts; k++) {
        kc_cpart_t *p = &cs->parts[(cs->next + k) % cs->nparts];
        if (!p->fp.records && !p->in_batch) continue;
        int rc = next_in_part(cs, p, msg);
        if (rc) {
            cs->next = (cs->next + k + 1) % cs->nparts;
            return rc;
        }
    }
    return 0;
}

int kc_consumer_poll(kc_consumer_t *cs, int timeout_ms, kc_message_t *msg)
{
    kc_client_t *c = cs->c;
    int64_t deadline = kc_now_ms() + timeout_ms;
    for (;;) {
        int rc = take_buffered(cs, msg);
        if (rc) return rc;
        int64_t left = deadline - kc_now_ms();
        if (left <= 0) return 0;
        kc_fetch_part_t *fps = calloc((size_t)cs->nparts + 1, sizeof *fps);
        if (!fps) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        for (int i = 0; i < cs->nparts; i++) {
            fps[i].partition = cs->parts[i].fp.partition;
            fps[i].offset = cs->parts[i].position;
        }
        rc = kc_fetch(c, cs->topic, fps, cs->nparts, left > 500 ? 500 : (int)left, 1 << 20);
        for (int i = 0; i < cs->nparts; i++) {
            kc_cpart_t *p = &cs->parts[i];
            if (!rc && fps[i].error_code) {
                char what[300];
                snprintf(what, sizeof what, "fetching %s partition %d at offset %lld", cs->topic,
                         p->fp.partition, (long long)p->position);
                if (kc_retry_action(fps[i].error_code) == KC_ACT_FAIL)
                    rc = kc_kafka_fail(c, fps[i].error_code, what, (kp_str_t){NULL, -1});
            }
            kc_fetch_part_clear(&p->fp);
            p->fp = fps[i];
            kp_batch_iter_init(&p->bit, p->fp.records, p->fp.records_len, false);
        }
        free(fps);
        if (rc == K_ERR_IO || rc == K_ERR_AGAIN) {
            kc_sleep_ms(c->cfg.retry_backoff_ms); /* reconnects on the next fetch */
            continue;
        }
        if (rc) return rc;
    }
}

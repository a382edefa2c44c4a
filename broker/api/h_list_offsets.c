/*
 * ListOffsets (key 2), versions 0-10.
 *
 * Timestamps with special meaning (Kafka's ListOffsetsRequest constants):
 *   -1 LATEST            the high watermark (also the last stable offset: no transactions)
 *   -2 EARLIEST          the log start offset
 *   -3 MAX_TIMESTAMP     the record with the largest timestamp (KIP-734)
 *   -4 EARLIEST_LOCAL    the log start offset (there is no tiered storage)
 *   -5 LATEST_TIERED     nothing is tiered: offset -1, timestamp -1
 * Any other value finds the earliest offset whose timestamp is >= it; none -> offset -1 and
 * timestamp -1 without an error, as Kafka answers. Storage finds the batch (by its max
 * timestamp); this file then walks that batch's records (decompressing if needed) for the exact
 * record, since Kafka answers per record: a time inside a batch gives the first record at or
 * after it, and MAX_TIMESTAMP gives the first record carrying the largest timestamp. If the
 * batch cannot be read or decoded the batch-level answer stands. Found offsets carry leader epoch 0 (v4+),
 * "nothing" carries -1. Unknown topic/partition -> UNKNOWN_TOPIC_OR_PARTITION; the
 * current_leader_epoch check is the one in h_common.h.
 *
 * v0 answers in the old shape, an array of offsets: Depot returns the one offset found (or
 * none), where old Kafka also listed earlier segment base offsets up to max_num_offsets. The
 * clients that still send v0 read only the first element.
 */
#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "protocol/gen/kp_list_offsets.h"
#include "protocol/kp_batch.h"

enum {
    TS_LATEST = -1,
    TS_EARLIEST = -2,
    TS_MAX_TIMESTAMP = -3,
    TS_EARLIEST_LOCAL = -4,
    TS_LATEST_TIERED = -5,
};

/* Largest batch Depot will decompress to refine a lookup; bigger ones keep the batch answer. */
#define REFINE_MAX_DECOMPRESSED (64 << 20)

/*
 * Within the batch that contains offset `at`, the first record with offset >= min_off and
 * timestamp >= ts; updates *offset and *found_ts when one is found.
 */
static void refine_in_batch(ks_part_t *p, int64_t at, int64_t min_off, int64_t ts,
                            int64_t *offset, int64_t *found_ts)
{
    kp_buf_t buf; /* one batch, owned here */
    kp_batch_iter_t it;
    kp_records_t recs;
    kp_record_t rec;
    const uint8_t *b;
    size_t blen;
    kp_buf_init(&buf);
    if (ks_part_read(p, at, 1, true, &buf) < 0 || buf.err)
        goto out;
    kp_batch_iter_init(&it, buf.data, buf.len, false);
    if (kp_batch_iter_next(&it, &b, &blen) != 1)
        goto out;
    if (kp_records_init(&recs, b, blen, REFINE_MAX_DECOMPRESSED) < 0)
        goto out;
    bool append_time = (recs.hdr.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME) != 0;
    while (kp_records_next(&recs, &rec) == 1) {
        int64_t o = recs.hdr.base_offset + rec.offset_delta;
        int64_t t = append_time ? recs.hdr.max_timestamp
                                : recs.hdr.base_timestamp + rec.timestamp_delta;
        if (o >= min_off && t >= ts) {
            *offset = o;
            *found_ts = t;
            break;
        }
    }
    kp_records_deinit(&recs);
out:
    kp_buf_deinit(&buf);
}

int16_t kb_list_offsets_resolve(ks_part_t *p, int64_t ts, int32_t current_leader_epoch,
                                int64_t *offset, int64_t *found_ts, int32_t *epoch)
{
    *offset = -1;
    *found_ts = -1;
    *epoch = -1;
    int16_t err = kb_leader_epoch_check(current_leader_epoch);
    if (err != KP_ERR_NONE)
        return err;
    int rc = 0;
    switch (ts) {
    case TS_LATEST: *offset = ks_part_high_watermark(p); break;
    case TS_EARLIEST:
    case TS_EARLIEST_LOCAL: *offset = ks_part_log_start(p); break;
    case TS_LATEST_TIERED: return KP_ERR_NONE;
    case TS_MAX_TIMESTAMP:
        rc = ks_part_max_timestamp(p, offset, found_ts);
        if (rc == 0)
            refine_in_batch(p, *offset, ks_part_log_start(p), *found_ts, offset, found_ts);
        break;
    default:
        rc = ks_part_offset_for_time(p, ts, offset, found_ts);
        if (rc == 0)
            refine_in_batch(p, *offset, *offset, ts, offset, found_ts);
        break;
    }
    if (rc == K_ERR_NOENT) {
        *offset = -1;
        *found_ts = -1;
        return KP_ERR_NONE;
    }
    if (rc < 0) {
        *offset = -1;
        *found_ts = -1;
        kb_log(KB_LOG_WARN, "list_offsets: timestamp lookup failed: %s", k_strerror(rc));
        return kb_storage_error(rc);
    }
    *epoch = KB_LEADER_EPOCH;
    return KP_ERR_NONE;
}

/* One partition; t NULL means no such topic, or (denied) one the principal may not DESCRIBE. */
static int one_partition(ks_topic_t *t, bool denied, int16_t version, kp_arena_t *a,
                         const kp_list_offsets_req_list_offsets_partition_t *rp,
                         kp_list_offsets_resp_list_offsets_partition_response_t *out)
{
    kp_list_offsets_resp_list_offsets_partition_response_init(out);
    out->partition_index = rp->partition_index;
    ks_part_t *p = t && !denied ? ks_topic_part(t, rp->partition_index) : NULL;
    if (!p) {
        out->error_code =
            denied ? KP_ERR_TOPIC_AUTHORIZATION_FAILED : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->offset = -1;
        out->timestamp = -1;
        return 0;
    }
    out->error_code = kb_list_offsets_resolve(p, rp->timestamp, rp->current_leader_epoch,
                                              &out->offset, &out->timestamp,
                                              &out->leader_epoch);
    if (version == 0 && out->offset >= 0 && rp->max_num_offsets > 0) {
        out->old_style_offsets = kp_arena_alloc(a, sizeof *out->old_style_offsets);
        if (!out->old_style_offsets)
            return K_ERR_NOMEM;
        out->old_style_offsets[0] = out->offset;
        out->old_style_offsets_count = 1;
    }
    return 0;
}

int kb_handle_list_offsets(kb_req_t *req)
{
    kp_list_offsets_req_t m;
    int16_t version = req->hdr.api_version;
    int rc = kp_list_offsets_req_decode(&req->body, version, &req->arena, &m);
    if (rc < 0)
        return rc;
    ks_store_t *store = kb_broker_store(req->broker);
    kp_list_offsets_resp_t resp;
    kp_list_offsets_resp_init(&resp);
    int32_t nt = m.topics_count > 0 ? m.topics_count : 0;
    resp.topics_count = nt;
    resp.topics = nt ? kp_arena_alloc(&req->arena, sizeof *resp.topics * (size_t)nt) : NULL;
    if (nt && !resp.topics)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        const kp_list_offsets_req_list_offsets_topic_t *rt = &m.topics[i];
        kp_list_offsets_resp_list_offsets_topic_response_t *tr = &resp.topics[i];
        kp_list_offsets_resp_list_offsets_topic_response_init(tr);
        tr->name = rt->name;
        int32_t np = rt->partitions_count > 0 ? rt->partitions_count : 0;
        tr->partitions_count = np;
        tr->partitions = np ? kp_arena_alloc(&req->arena, sizeof *tr->partitions * (size_t)np)
                            : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        bool denied = !kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_TOPIC, rt->name);
        ks_topic_t *t = denied ? NULL : kb_topic_find(store, rt->name);
        for (int32_t j = 0; j < np; j++) {
            if (one_partition(t, denied, version, &req->arena, &rt->partitions[j],
                              &tr->partitions[j]))
                return K_ERR_NOMEM;
            kb_req_error(req, tr->partitions[j].error_code);
        }
    }
    rc = kp_list_offsets_resp_encode(&req->resp, version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

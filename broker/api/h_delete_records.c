/*
 * DeleteRecords (key 21), versions 0-2: moves a partition's log start offset forward.
 *
 * offset -1 means "up to the high watermark" (Kafka's DeleteRecordsRequest.HIGH_WATERMARK);
 * any other negative offset, or one past the high watermark, is OFFSET_OUT_OF_RANGE. An
 * offset at or below the current log start changes nothing and answers the current log
 * start. low_watermark is the log start after the call (-1 on error). Whole segments below the
 * new start are deleted by storage; the rest stay until retention, but are no longer readable.
 * Unknown topic/partition -> UNKNOWN_TOPIC_OR_PARTITION; I/O failure -> KAFKA_STORAGE_ERROR.
 * timeout_ms is not needed: the change is persisted before the answer.
 */
#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_delete_records.h"

int16_t kb_delete_records_part(ks_part_t *p, int64_t offset, int64_t *low_watermark)
{
    *low_watermark = -1;
    int64_t hw = ks_part_high_watermark(p);
    if (offset == -1)
        offset = hw;
    if (offset < 0 || offset > hw)
        return KP_ERR_OFFSET_OUT_OF_RANGE;
    if (offset > ks_part_log_start(p)) {
        int rc = ks_part_delete_records(p, offset);
        if (rc < 0) {
            kb_log(KB_LOG_WARN, "delete_records: %s", k_strerror(rc));
            return kb_storage_error(rc);
        }
    }
    *low_watermark = ks_part_log_start(p);
    return KP_ERR_NONE;
}

int kb_handle_delete_records(kb_req_t *req)
{
    kp_delete_records_req_t m;
    int rc = kp_delete_records_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    ks_store_t *store = kb_broker_store(req->broker);
    kp_delete_records_resp_t resp;
    kp_delete_records_resp_init(&resp);
    int32_t nt = m.topics_count > 0 ? m.topics_count : 0;
    resp.topics_count = nt;
    resp.topics = nt ? kp_arena_alloc(&req->arena, sizeof *resp.topics * (size_t)nt) : NULL;
    if (nt && !resp.topics)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        const kp_delete_records_req_delete_records_topic_t *rt = &m.topics[i];
        kp_delete_records_resp_delete_records_topic_result_t *tr = &resp.topics[i];
        kp_delete_records_resp_delete_records_topic_result_init(tr);
        tr->name = rt->name;
        int32_t np = rt->partitions_count > 0 ? rt->partitions_count : 0;
        tr->partitions_count = np;
        tr->partitions = np ? kp_arena_alloc(&req->arena, sizeof *tr->partitions * (size_t)np)
                            : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        bool denied = !kb_authorize_str(req, KB_OP_DELETE, KB_RES_TOPIC, rt->name);
        ks_topic_t *t = denied ? NULL : kb_topic_find(store, rt->name);
        for (int32_t j = 0; j < np; j++) {
            const kp_delete_records_req_delete_records_partition_t *rp = &rt->partitions[j];
            kp_delete_records_resp_delete_records_partition_result_t *out = &tr->partitions[j];
            kp_delete_records_resp_delete_records_partition_result_init(out);
            out->partition_index = rp->partition_index;
            ks_part_t *p = t ? ks_topic_part(t, rp->partition_index) : NULL;
            if (!p) {
                out->error_code =
                    denied ? KP_ERR_TOPIC_AUTHORIZATION_FAILED : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                out->low_watermark = -1;
                continue;
            }
            if (kb_topic_internal(rt->name.ptr, (size_t)rt->name.len)) {
                out->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION; /* as Kafka: never trimmed */
                out->low_watermark = -1;
                continue;
            }
            out->error_code = kb_delete_records_part(p, rp->offset, &out->low_watermark);
        }
    }
    rc = kp_delete_records_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

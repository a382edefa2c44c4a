/*
 * OffsetForLeaderEpoch (key 23), versions 2-4: the end offset of a leader epoch, which
 * consumers use to detect log truncation after a leader change (KIP-320).
 *
 * A single node has one epoch, 0, that began at the start of the log and is still open, so
 * (following Kafka's leader epoch cache for that history):
 *   leader_epoch 0         -> epoch 0, end offset = log end
 *   leader_epoch > 0       -> epoch -1, end offset -1 (unknown epoch, no error)
 *   leader_epoch < 0       -> epoch -1, end offset -1 (UNDEFINED_EPOCH)
 * current_leader_epoch is checked first (h_common.h); an unknown topic or partition answers
 * UNKNOWN_TOPIC_OR_PARTITION. Consumers only ask about epochs they saw in fetched batches,
 * which are all 0 here.
 */
#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "protocol/gen/kp_offset_for_leader_epoch.h"

int16_t kb_epoch_end_offset(ks_part_t *p, int32_t current_leader_epoch, int32_t leader_epoch,
                            int32_t *epoch_out, int64_t *end_offset)
{
    *epoch_out = -1;
    *end_offset = -1;
    int16_t err = kb_leader_epoch_check(current_leader_epoch);
    if (err != KP_ERR_NONE)
        return err;
    if (leader_epoch == KB_LEADER_EPOCH) {
        *epoch_out = KB_LEADER_EPOCH;
        *end_offset = ks_part_log_end(p);
    }
    return KP_ERR_NONE;
}

int kb_handle_offset_for_leader_epoch(kb_req_t *req)
{
    kp_offset_for_leader_epoch_req_t m;
    int rc = kp_offset_for_leader_epoch_req_decode(&req->body, req->hdr.api_version,
                                                   &req->arena, &m);
    if (rc < 0)
        return rc;
    ks_store_t *store = kb_broker_store(req->broker);
    /* KIP-320: CLUSTER_ACTION on the cluster (brokers) or DESCRIBE on each topic (consumers) */
    bool cluster = kb_authorize_cluster(req, KB_OP_CLUSTER_ACTION);
    kp_offset_for_leader_epoch_resp_t resp;
    kp_offset_for_leader_epoch_resp_init(&resp);
    int32_t nt = m.topics_count > 0 ? m.topics_count : 0;
    resp.topics_count = nt;
    resp.topics = nt ? kp_arena_alloc(&req->arena, sizeof *resp.topics * (size_t)nt) : NULL;
    if (nt && !resp.topics)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        const kp_offset_for_leader_epoch_req_offset_for_leader_topic_t *rt = &m.topics[i];
        kp_offset_for_leader_epoch_resp_offset_for_leader_topic_result_t *tr = &resp.topics[i];
        kp_offset_for_leader_epoch_resp_offset_for_leader_topic_result_init(tr);
        tr->topic = rt->topic;
        int32_t np = rt->partitions_count > 0 ? rt->partitions_count : 0;
        tr->partitions_count = np;
        tr->partitions = np ? kp_arena_alloc(&req->arena, sizeof *tr->partitions * (size_t)np)
                            : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        bool denied = !cluster && !kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_TOPIC, rt->topic);
        ks_topic_t *t = denied ? NULL : kb_topic_find(store, rt->topic);
        for (int32_t j = 0; j < np; j++) {
            const kp_offset_for_leader_epoch_req_offset_for_leader_partition_t *rp =
                &rt->partitions[j];
            kp_offset_for_leader_epoch_resp_epoch_end_offset_t *out = &tr->partitions[j];
            kp_offset_for_leader_epoch_resp_epoch_end_offset_init(out);
            out->partition = rp->partition;
            ks_part_t *p = t ? ks_topic_part(t, rp->partition) : NULL;
            if (!p) {
                out->error_code =
                    denied ? KP_ERR_TOPIC_AUTHORIZATION_FAILED : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            out->error_code = kb_epoch_end_offset(p, rp->current_leader_epoch, rp->leader_epoch,
                                                  &out->leader_epoch, &out->end_offset);
        }
    }
    rc = kp_offset_for_leader_epoch_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

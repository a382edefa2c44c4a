/*
 * DeleteTopics (20), v1-6: by name (TopicNames, v1-5; Topics[].Name, v6) or by topic id
 * (Topics[].TopicId with a null name, v6). The topic's files go with it.
 *
 * Pointers to the topic and its partitions die inside ks_topic_delete; handlers that keep
 * such pointers across requests (long-poll fetch, producer state) must look topics up again
 * rather than cache them.
 */
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/core/subsys.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/kp_errors.h"

typedef kp_delete_topics_resp_deletable_topic_result_t result_t;

static int delete_one(kb_req_t *req, kp_str_t name, kp_uuid_t id, bool by_id, result_t *o)
{
    const kb_config_t *cfg = kb_broker_config(req->broker);
    ks_store_t *store = kb_broker_store(req->broker);
    o->name = name;
    o->topic_id = id;
    if (!by_id && !kb_authorize_str(req, KB_OP_DELETE, KB_RES_TOPIC, name)) {
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED; /* before existence, as Kafka */
        return 0;
    }
    ks_topic_t *t = by_id
                        ? ks_topic_find_by_id(store, id)
                        : (name.len >= 0 ? ks_topic_find(store, name.ptr, (size_t)name.len) : NULL);
    if (!t) {
        o->error_code = by_id ? KP_ERR_UNKNOWN_TOPIC_ID : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        o->error_message = kp_str(by_id ? "This server does not host this topic ID."
                                        : "This server does not host this topic-partition.");
        return 0;
    }
    const char *tn = ks_topic_name(t);
    if (by_id && !kb_authorize(req, KB_OP_DELETE, KB_RES_TOPIC, tn, strlen(tn))) {
        /* without DESCRIBE the name stays secret (a topic id is not, says Kafka) */
        if (!kb_authorize(req, KB_OP_DESCRIBE, KB_RES_TOPIC, tn, strlen(tn)))
            o->name = (kp_str_t){NULL, -1};
        else
            o->name = kp_str(kb_arena_strdup(&req->arena, tn));
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        return 0;
    }
    /* The name is needed after the topic is gone: copy it into the request's arena. */
    char *copy = kb_arena_strdup(&req->arena, tn);
    if (!copy) return K_ERR_NOMEM;
    o->name = kp_str(copy);
    o->topic_id = ks_topic_id(t);
    if (!cfg->delete_topic_enable) {
        o->error_code = KP_ERR_TOPIC_DELETION_DISABLED;
        o->error_message = kp_str("Topic deletion is disabled (delete.topic.enable=false).");
        return 0;
    }
    if (kb_topic_internal(copy, strlen(copy))) {
        o->error_code = KP_ERR_INVALID_REQUEST;
        o->error_message =
            kb_arena_printf(&req->arena, "The internal topic %s cannot be deleted.", copy);
        return 0;
    }
    int rc = ks_topic_delete(store, copy);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "deleting topic %s failed: %s", copy, k_strerror(rc));
        o->error_code =
            rc == K_ERR_NOENT ? KP_ERR_UNKNOWN_TOPIC_OR_PARTITION : KP_ERR_UNKNOWN_SERVER_ERROR;
        o->error_message =
            kb_arena_printf(&req->arena, "Deleting the topic failed: %s", k_strerror(rc));
        return 0;
    }
    kb_log(KB_LOG_INFO, "deleted topic %s (asked by %s)", copy, kb_conn_peer(req->conn));
    kb_broker_topic_deleted(req->broker, copy); /* groups drop the topic's committed offsets */
    o->error_code = KP_ERR_NONE;
    return 0;
}

int kb_handle_delete_topics(kb_req_t *req)
{
    kp_delete_topics_req_t m;
    kp_delete_topics_req_init(&m);
    if (kp_delete_topics_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    bool v6 = req->hdr.api_version >= 6;
    int32_t n = v6 ? m.topics_count : m.topic_names_count;
    if (n < 0) n = 0;
    kp_delete_topics_resp_t resp;
    kp_delete_topics_resp_init(&resp);
    if (n > 0) {
        resp.responses = kp_arena_alloc(&req->arena, sizeof *resp.responses * (size_t)n);
        if (!resp.responses) return K_ERR_NOMEM;
    }
    kp_uuid_t zero;
    memset(&zero, 0, sizeof zero);
    for (int32_t i = 0; i < n; i++) {
        result_t *o = &resp.responses[i];
        kp_delete_topics_resp_deletable_topic_result_init(o);
        int rc;
        if (v6) {
            kp_delete_topics_req_delete_topic_state_t *q = &m.topics[i];
            rc = delete_one(req, q->name, q->topic_id, q->name.len < 0, o);
        } else {
            rc = delete_one(req, m.topic_names[i], zero, false, o);
        }
        if (rc < 0) return rc;
    }
    resp.responses_count = n;
    int rc = kp_delete_topics_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * DeleteTopics (20), v1-6: by name (TopicNames, v1-5; Topics[].Name, v6) or by topic id
 * (Topics[].TopicId with a null name, v6). The topic's files go with it.
 *
 * The topic is gone when the handler returns (ks_topic_delete_begin); the log dir fsyncs that
 * make it durable run on libuv's threadpool and the answer waits for them (kb_offloop_start).
 *
 * Pointers to the topic and its partitions die inside ks_topic_delete_begin; handlers that keep
 * such pointers across requests (long-poll fetch, producer state) must look topics up again
 * rather than cache them.
 */
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/subsys.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/kp_errors.h"

typedef kp_delete_topics_resp_deletable_topic_result_t result_t;

static int delete_one(kb_req_t *req, kp_str_t name, kp_uuid_t id, bool by_id, result_t *o,
                      ks_topic_deleting_t **pd)
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
    int rc = ks_topic_delete_begin(store, copy, pd);
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

/* The deletions whose directory fsyncs run off the loop; in the request's arena. */
typedef struct {
    kb_offloop_t off;
    kp_delete_topics_resp_t resp;
    ks_topic_deleting_t **pds; /* per topic, NULL when it was not deleted */
    int32_t n;
} delete_job_t;

static void delete_run(kb_offloop_t *off)
{
    delete_job_t *j = (delete_job_t *)off;
    for (int32_t i = 0; i < j->n; i++)
        if (j->pds[i]) ks_topic_delete_sync(j->pds[i]);
}

static int delete_done(kb_offloop_t *off)
{
    delete_job_t *j = (delete_job_t *)off;
    kb_req_t *req = off->req;
    for (int32_t i = 0; i < j->n; i++) {
        ks_topic_delete_finish(j->pds[i]);
        j->pds[i] = NULL;
    }
    int rc = kp_delete_topics_resp_encode(&req->resp, req->hdr.api_version, &j->resp);
    return rc < 0 ? rc : KB_DONE;
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
    delete_job_t *j = kp_arena_alloc(&req->arena, sizeof *j);
    if (!j) return K_ERR_NOMEM;
    memset(j, 0, sizeof *j);
    kp_delete_topics_resp_init(&j->resp);
    if (n > 0) {
        j->resp.responses = kp_arena_alloc(&req->arena, sizeof *j->resp.responses * (size_t)n);
        j->pds = kp_arena_alloc(&req->arena, sizeof *j->pds * (size_t)n);
        if (!j->resp.responses || !j->pds) return K_ERR_NOMEM;
        memset(j->pds, 0, sizeof *j->pds * (size_t)n);
    }
    kp_uuid_t zero;
    memset(&zero, 0, sizeof zero);
    int rc = 0;
    for (int32_t i = 0; i < n && rc == 0; i++) {
        result_t *o = &j->resp.responses[i];
        kp_delete_topics_resp_deletable_topic_result_init(o);
        j->n = i + 1;
        if (v6) {
            kp_delete_topics_req_delete_topic_state_t *q = &m.topics[i];
            rc = delete_one(req, q->name, q->topic_id, q->name.len < 0, o, &j->pds[i]);
        } else {
            rc = delete_one(req, m.topic_names[i], zero, false, o, &j->pds[i]);
        }
    }
    if (rc < 0) { /* the topics deleted so far are gone; their files still go */
        delete_run(&j->off);
        for (int32_t i = 0; i < j->n; i++)
            ks_topic_delete_finish(j->pds[i]);
        return rc;
    }
    j->resp.responses_count = n;
    /* The topics are gone now (Metadata no longer lists them); the answer waits until the
     * renames are durable, which takes directory fsyncs: on libuv's threadpool. */
    j->off.run = delete_run;
    j->off.done = delete_done;
    bool any = false;
    for (int32_t i = 0; i < n && !any; i++)
        any = j->pds[i] != NULL;
    if (!any) { /* nothing deleted: nothing to wait for */
        j->off.req = req;
        return delete_done(&j->off);
    }
    return kb_offloop_start(req, &j->off);
}

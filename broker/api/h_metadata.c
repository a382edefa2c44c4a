/*
 * Metadata (3), v0-12. One broker (this node, at its advertised address), which is also the
 * controller and the leader of every partition, with leader epoch 0.
 *
 * Topics: all of them when the request's list is null (v1+) or empty (v0). A requested topic
 * that does not exist is created when auto.create.topics.enable is on and the client allows it
 * (AllowAutoTopicCreation, v4+; implicitly true before), and reported LEADER_NOT_AVAILABLE in
 * this response, as Kafka does; clients retry and see it next time. Its files are written off
 * the loop (h_autocreate.c): the request waits for them and is run again once the topic
 * exists, so the answer still comes after the topic is durable.
 *
 * Authorization (Kafka's handleTopicMetadataRequest): topics the principal may not DESCRIBE
 * are left out of an all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when asked for
 * by name, so their existence is not disclosed; auto-creation needs CREATE on the cluster or
 * the topic (else TOPIC_AUTHORIZATION_FAILED); authorized_operations come from the seam.
 */
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/audit.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_metadata.h"
#include "protocol/kp_errors.h"

typedef kp_metadata_resp_metadata_response_topic_t topic_out_t;
typedef kp_metadata_resp_metadata_response_partition_t part_out_t;

/* Fills the description of an existing topic. */
static int describe_topic(kb_req_t *req, ks_topic_t *t, const int32_t *node, bool with_ops,
                          topic_out_t *o)
{
    const char *name = ks_topic_name(t);
    o->error_code = KP_ERR_NONE;
    o->name = kp_str(name);
    o->topic_id = ks_topic_id(t);
    o->is_internal = strcmp(name, KB_CONSUMER_OFFSETS_TOPIC) == 0;
    if (with_ops)
        o->topic_authorized_operations =
            kb_authorized_operations(req, KB_RES_TOPIC, name, strlen(name));
    int32_t n = ks_topic_partitions(t);
    if (n > 0) {
        o->partitions = kp_arena_alloc(&req->arena, sizeof *o->partitions * (size_t)n);
        if (!o->partitions) return K_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        part_out_t *p = &o->partitions[i];
        kp_metadata_resp_metadata_response_partition_init(p);
        p->error_code = KP_ERR_NONE;
        p->partition_index = i;
        p->leader_id = *node;
        p->leader_epoch = 0;
        p->replica_nodes = (int32_t *)node;
        p->replica_nodes_count = 1;
        p->isr_nodes = (int32_t *)node;
        p->isr_nodes_count = 1;
        p->offline_replicas = NULL;
        p->offline_replicas_count = 0;
    }
    o->partitions_count = n;
    return 0;
}

/* A requested topic that is not there: create it, or say why not. *job is set when its
 * creation runs off the loop (h_autocreate.c): the caller may wait for it. */
static void missing_topic(kb_req_t *req, kp_str_t name, bool allow_create, topic_out_t *o,
                          kb_autocreate_t **job)
{
    const kb_config_t *cfg = kb_broker_config(req->broker);
    char buf[256];
    o->name = name;
    o->partitions_count = 0;
    if (allow_create && cfg->auto_create_topics_enable &&
        !kb_authorize_cluster(req, KB_OP_CREATE) &&
        !kb_authorize_str(req, KB_OP_CREATE, KB_RES_TOPIC, name)) {
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED; /* Kafka checks before validity */
        return;
    }
    if (!kb_str_copy(name, buf, sizeof buf) || !ks_topic_name_valid(buf, strlen(buf))) {
        o->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
        return;
    }
    if (!allow_create || !cfg->auto_create_topics_enable) {
        o->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    ks_topic_t *t = NULL;
    kb_autocreate_t *j = NULL;
    int rc = kb_autocreate_start(req, buf, cfg->num_partitions, &t, &j);
    if (rc == 1 && !*job) *job = j;
    if (rc == 0)
        kb_log(KB_LOG_INFO, "auto-created topic %s with %d partitions (asked by %s)", buf,
               cfg->num_partitions, req->conn ? kb_conn_peer(req->conn) : "-");
    if (rc >= 0 || rc == K_ERR_EXISTS) { /* made, being made, or made by someone else */
        o->error_code = KP_ERR_LEADER_NOT_AVAILABLE;
        if (t) o->topic_id = ks_topic_id(t);
    } else if (rc == K_ERR_INVAL) {
        o->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
    } else {
        kb_log(KB_LOG_WARN, "auto-creating topic %s failed: %s", buf, k_strerror(rc));
        o->error_code =
            rc == K_ERR_NOSPC ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
}

static bool may_describe(kb_req_t *req, ks_topic_t *t)
{
    const char *name = ks_topic_name(t);
    return kb_authorize(req, KB_OP_DESCRIBE, KB_RES_TOPIC, name, strlen(name));
}

/* Every topic the principal may describe (the others are not mentioned at all). */
static int all_topics(kb_req_t *req, const int32_t *node, bool with_ops, kp_metadata_resp_t *resp)
{
    ks_store_t *store = kb_broker_store(req->broker);
    int32_t n = 0;
    for (ks_topic_t *t = ks_topic_next(store, NULL); t; t = ks_topic_next(store, t))
        n++;
    if (n > 0 && !(resp->topics = kp_arena_alloc(&req->arena, sizeof *resp->topics * (size_t)n)))
        return K_ERR_NOMEM;
    int32_t i = 0;
    for (ks_topic_t *t = ks_topic_next(store, NULL); t && i < n; t = ks_topic_next(store, t)) {
        if (!may_describe(req, t)) continue;
        kp_metadata_resp_metadata_response_topic_init(&resp->topics[i]);
        int rc = describe_topic(req, t, node, with_ops, &resp->topics[i++]);
        if (rc < 0) return rc;
    }
    resp->topics_count = i;
    return 0;
}

/* One topic asked for by name or (v12) id. */
static int one_topic(kb_req_t *req, const kp_metadata_req_t *m, int32_t i, const int32_t *node,
                     topic_out_t *o, kb_autocreate_t **job)
{
    ks_store_t *store = kb_broker_store(req->broker);
    kp_metadata_req_metadata_request_topic_t *q = &m->topics[i];
    kp_metadata_resp_metadata_response_topic_init(o);
    bool by_name = q->name.len >= 0;
    ks_topic_t *t = by_name ? ks_topic_find(store, q->name.ptr, (size_t)q->name.len)
                            : ks_topic_find_by_id(store, q->topic_id);
    bool allowed = t ? may_describe(req, t)
                     : !by_name || kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_TOPIC, q->name);
    if (!allowed) { /* existence is not disclosed; a topic id is not secret (Kafka) */
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        o->name = by_name ? q->name : (kp_str_t){NULL, -1};
        if (!by_name) o->topic_id = q->topic_id;
        return 0;
    }
    char name[256];
    if (t && by_name && kb_str_copy(q->name, name, sizeof name) &&
        kb_autocreate_just_made(req, name)) { /* this request waited for it: Kafka's answer */
        o->name = q->name;
        o->error_code = KP_ERR_LEADER_NOT_AVAILABLE;
        o->topic_id = ks_topic_id(t);
        return 0;
    }
    if (t) return describe_topic(req, t, node, m->include_topic_authorized_operations, o);
    if (!by_name) { /* by id (v12), never created implicitly */
        o->error_code = KP_ERR_UNKNOWN_TOPIC_ID;
        o->topic_id = q->topic_id;
        return 0;
    }
    missing_topic(req, q->name, m->allow_auto_topic_creation, o, job);
    return 0;
}

int kb_handle_metadata(kb_req_t *req)
{
    int16_t version = req->hdr.api_version;
    kp_metadata_req_t m;
    kp_metadata_req_init(&m);
    if (kp_metadata_req_decode(&req->body, version, &req->arena, &m) < 0) return K_ERR_MALFORMED;

    const kb_config_t *cfg = kb_broker_config(req->broker);
    ks_store_t *store = kb_broker_store(req->broker);
    int32_t *node = kp_arena_alloc(&req->arena, sizeof *node);
    if (!node) return K_ERR_NOMEM;
    *node = cfg->node_id;

    kp_metadata_resp_t resp;
    kp_metadata_resp_init(&resp);
    kp_metadata_resp_metadata_response_broker_t broker;
    kp_metadata_resp_metadata_response_broker_init(&broker);
    broker.node_id = cfg->node_id;
    const kb_listener_t *l = kb_req_listener(req); /* the address this client came in on */
    broker.host = kp_str(l->advertised_host);
    broker.port = l->advertised_port;
    resp.brokers = &broker;
    resp.brokers_count = 1;
    resp.cluster_id = kp_str(ks_store_cluster_id(store));
    resp.controller_id = cfg->node_id;
    if (m.include_cluster_authorized_operations)
        resp.cluster_authorized_operations =
            kb_authorize_cluster(req, KB_OP_DESCRIBE)
                ? kb_authorized_operations(req, KB_RES_CLUSTER, KB_CLUSTER_NAME,
                                           sizeof KB_CLUSTER_NAME - 1)
                : 0;

    int rc = 0;
    kb_autocreate_t *job = NULL;
    if (m.topics_count < 0 || (version == 0 && m.topics_count == 0)) {
        rc = all_topics(req, node, m.include_topic_authorized_operations, &resp);
    } else if (m.topics_count > 0) {
        resp.topics = kp_arena_alloc(&req->arena, sizeof *resp.topics * (size_t)m.topics_count);
        if (!resp.topics) return K_ERR_NOMEM;
        for (int32_t i = 0; i < m.topics_count && rc == 0; i++)
            rc = one_topic(req, &m, i, node, &resp.topics[i], &job);
        resp.topics_count = m.topics_count;
    }
    if (rc < 0) return rc;
    /* A topic being made off the loop: answer once it exists (this pass had no effect). Not
     * when the audit trail runs the pass again anyway: that pass will wait. */
    if (job && !kb_audit_replay_due(req)) return kb_autocreate_wait(req, job);
    for (int32_t i = 0; i < resp.topics_count; i++)
        kb_req_error(req, resp.topics[i].error_code);
    rc = kp_metadata_resp_encode(&req->resp, version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * CreatePartitions (37, v0-3): grows topics, as a Kafka 4 broker answers.
 *
 * Per topic: unknown -> UNKNOWN_TOPIC_OR_PARTITION; a count not above the current one ->
 * INVALID_PARTITIONS ("Topic currently has 3 partitions, which is higher than the requested
 * 2."); manual assignments must name one replica per new partition, all this broker
 * (INVALID_REPLICA_ASSIGNMENT otherwise); the same topic twice -> INVALID_REQUEST for both.
 * validate_only checks and changes nothing. New partitions are empty logs: placed in storage on
 * the loop (ks_topic_grow_begin), their directories and the topic's metadata made and fsynced
 * on libuv's threadpool (kb_offloop_start) while the request waits, and published back on the
 * loop before the answer; Metadata reports them at once, so producers and consumer groups
 * (whose leader re-assigns on the metadata change) pick them up. A slow flash write stalls
 * this request only. Requests that change topics run one at a time in arrival order (the
 * topic-change lane, h_common.h), as Kafka's controller runs them: a second request for the
 * same topic is checked against the count the first one left.
 * Authorization: ALTER on the topic (TOPIC_AUTHORIZATION_FAILED). The broker's own topics
 * (kb_topic_internal) answer INVALID_REQUEST naming the topic (issue 19).
 */
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_create_partitions.h"
#include "protocol/kp_errors.h"

typedef kp_create_partitions_req_create_partitions_topic_t topic_in_t;
typedef kp_create_partitions_resp_create_partitions_topic_result_t topic_out_t;

#define MAX_PARTITIONS 1000000

static bool same_name(kp_str_t a, kp_str_t b)
{
    return a.len == b.len && (a.len <= 0 || !memcmp(a.ptr, b.ptr, (size_t)a.len));
}

static void fail(kb_req_t *req, topic_out_t *o, int16_t code, kp_str_t msg)
{
    (void)req;
    o->error_code = code;
    o->error_message = msg;
}

/* Checks manual assignments: 0 when fine, else o is filled. */
static int check_assignments(kb_req_t *req, const topic_in_t *in, int32_t adding, topic_out_t *o)
{
    if (in->assignments_count < 0) return 0; /* null: the broker places them */
    if (in->assignments_count != adding) {
        fail(req, o, KP_ERR_INVALID_REPLICA_ASSIGNMENT,
             kb_arena_printf(&req->arena, "Increasing the number of partitions by %d but %d "
                             "assignments provided.", adding, in->assignments_count));
        return 1;
    }
    int32_t node = kb_broker_config(req->broker)->node_id;
    for (int32_t i = 0; i < in->assignments_count; i++) {
        const kp_create_partitions_req_create_partitions_assignment_t *a = &in->assignments[i];
        if (a->broker_ids_count != 1 || a->broker_ids[0] != node) {
            fail(req, o, KP_ERR_INVALID_REPLICA_ASSIGNMENT,
                 kb_arena_printf(&req->arena, "Unknown broker(s) in the assignment of new "
                                 "partition %d: this cluster is broker %d alone.", i, node));
            return 1;
        }
    }
    return 0;
}

/* A request's grows between begin and finish. In the request's arena. */
typedef struct {
    kb_offloop_t off;
    kp_create_partitions_resp_t resp;
    ks_topic_change_t **ch; /* per topic, NULL when it began nothing */
    int32_t *was;           /* per topic, the count before (logged) */
    int32_t n;
} grow_job_t;

static void grow_one(kb_req_t *req, const topic_in_t *in, bool validate_only, topic_out_t *o,
                     ks_topic_change_t **ch, int32_t *was)
{
    ks_store_t *store = kb_broker_store(req->broker);
    if (!kb_authorize_str(req, KB_OP_ALTER, KB_RES_TOPIC, in->name)) {
        fail(req, o, KP_ERR_TOPIC_AUTHORIZATION_FAILED, (kp_str_t){NULL, -1});
        return;
    }
    /* Issue 19: the broker's own topics keep the layout it gave them (the offsets store and
     * the registry read and write fixed partitions; extra ones would only confuse readers). */
    if (in->name.len > 0 && kb_topic_internal(in->name.ptr, (size_t)in->name.len)) {
        fail(req, o, KP_ERR_INVALID_REQUEST,
             kb_arena_printf(&req->arena, "The internal topic %.*s is managed by the broker; "
                             "its partitions cannot be changed.", in->name.len, in->name.ptr));
        return;
    }
    ks_topic_t *t = in->name.len > 0 ? ks_topic_find(store, in->name.ptr, (size_t)in->name.len)
                                     : NULL;
    if (!t) {
        fail(req, o, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
             kb_arena_printf(&req->arena, "The topic '%.*s' does not exist.",
                             in->name.len > 0 ? in->name.len : 0, in->name.ptr ? in->name.ptr : ""));
        return;
    }
    int32_t cur = ks_topic_partitions(t);
    if (in->count <= cur) {
        fail(req, o, KP_ERR_INVALID_PARTITIONS,
             in->count == cur
                 ? kb_arena_printf(&req->arena, "Topic already has %d partitions.", cur)
                 : kb_arena_printf(&req->arena, "Topic currently has %d partitions, which is "
                                   "higher than the requested %d.", cur, in->count));
        return;
    }
    if (in->count > MAX_PARTITIONS) {
        fail(req, o, KP_ERR_INVALID_PARTITIONS,
             kb_arena_printf(&req->arena, "At most %d partitions per topic.", MAX_PARTITIONS));
        return;
    }
    if (check_assignments(req, in, in->count - cur, o) || validate_only) return;
    *was = cur;
    int rc = ks_topic_grow_begin(store, t, in->count, ch);
    if (rc < 0) {
        *ch = NULL;
        fail(req, o, rc == K_ERR_AGAIN ? KP_ERR_UNKNOWN_SERVER_ERROR : KP_ERR_KAFKA_STORAGE_ERROR,
             kp_str(rc == K_ERR_AGAIN ? "Another change of the topic is in progress."
                                      : "Could not create the partitions"));
    }
}

/* Off the loop: the new directories, the metadata rewrites and their fsyncs. */
static void grow_run(kb_offloop_t *off)
{
    grow_job_t *j = (grow_job_t *)off;
    for (int32_t i = 0; i < j->n; i++)
        if (j->ch[i]) ks_topic_change_write(j->ch[i]);
}

/* Back on the loop: publish (or roll back) each grow, then answer. Runs also when the client
 * left meanwhile: every begin is finished exactly once. */
static int grow_done(kb_offloop_t *off)
{
    grow_job_t *j = (grow_job_t *)off;
    kb_req_t *req = off->req;
    for (int32_t i = 0; i < j->n; i++) {
        if (!j->ch[i]) continue;
        topic_out_t *o = &j->resp.results[i];
        int rc = ks_topic_change_finish(j->ch[i]);
        j->ch[i] = NULL;
        if (rc == K_ERR_NOENT)
            fail(req, o, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                 kp_str("The topic was deleted while its partitions were being created."));
        else if (rc < 0)
            fail(req, o, KP_ERR_KAFKA_STORAGE_ERROR, kp_str("Could not create the partitions"));
        else
            kb_log(KB_LOG_INFO, "topic %.*s: %d partitions (was %d; asked by %s)", o->name.len,
                   o->name.ptr, ks_topic_partitions(ks_topic_find(kb_broker_store(req->broker),
                                                                  o->name.ptr,
                                                                  (size_t)o->name.len)),
                   j->was[i], req->conn ? kb_conn_peer(req->conn) : "-");
    }
    kb_topic_lane_leave(req);
    int rc = kp_create_partitions_resp_encode(&req->resp, req->hdr.api_version, &j->resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_create_partitions(kb_req_t *req)
{
    kp_create_partitions_req_t m;
    kp_create_partitions_req_init(&m);
    if (kp_create_partitions_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    int32_t n = m.topics_count > 0 ? m.topics_count : 0;
    grow_job_t *j = kp_arena_alloc(&req->arena, sizeof *j);
    if (!j) return K_ERR_NOMEM;
    memset(j, 0, sizeof *j);
    kp_create_partitions_resp_init(&j->resp);
    j->resp.results = kp_arena_alloc(&req->arena, sizeof *j->resp.results * (size_t)(n ? n : 1));
    j->ch = kp_arena_alloc(&req->arena, sizeof *j->ch * (size_t)(n ? n : 1));
    j->was = kp_arena_alloc(&req->arena, sizeof *j->was * (size_t)(n ? n : 1));
    if (!j->resp.results || !j->ch || !j->was) return K_ERR_NOMEM;
    /* First, before any check: a pass that waits must have had no effect (its replay runs the
     * checks, audit intents included, against the state the requests before it left). */
    if (n > 0 && !m.validate_only && !kb_topic_lane_enter(req)) return KB_PENDING;
    bool any = false;
    for (int32_t i = 0; i < n; i++) {
        topic_out_t *o = &j->resp.results[i];
        kp_create_partitions_resp_create_partitions_topic_result_init(o);
        o->name = m.topics[i].name;
        o->error_code = KP_ERR_NONE;
        o->error_message = (kp_str_t){NULL, -1};
        j->ch[i] = NULL;
        bool dup = false;
        for (int32_t k = 0; k < n && !dup; k++)
            dup = k != i && same_name(m.topics[k].name, m.topics[i].name);
        if (dup)
            fail(req, o, KP_ERR_INVALID_REQUEST, kp_str("Duplicate topic in request."));
        else
            grow_one(req, &m.topics[i], m.validate_only, o, &j->ch[i], &j->was[i]);
        any = any || j->ch[i];
    }
    j->resp.results_count = n;
    j->n = n;
    j->off.run = grow_run;
    j->off.done = grow_done;
    if (any) return kb_offloop_start(req, &j->off);
    j->off.req = req; /* nothing to write: answered now */
    return grow_done(&j->off);
}

/*
 * CreateTopics (19), v2-7. Each topic is checked (name, partitions, replication factor,
 * assignment, configs) and its name reserved in storage on the loop; the directories and
 * metadata are then written and fsynced on libuv's threadpool (kb_offloop_start) while the
 * request waits, and the topics are published and answered back on the loop. A slow flash
 * write stalls this request only. validate_only stops after the checks.
 * Errors are per topic with a message, as Kafka words them where that helps a reader.
 * v5+ also returns the resulting partitions, replication factor, configs and (v7) topic id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/config.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_create_topics.h"
#include "protocol/kp_errors.h"

#define MAX_PARTITIONS 10000

typedef kp_create_topics_req_creatable_topic_t topic_in_t;
typedef kp_create_topics_resp_creatable_topic_result_t topic_out_t;

static void fail(kb_req_t *req, topic_out_t *o, int16_t code, kp_str_t msg)
{
    (void)req;
    o->error_code = code;
    o->error_message = msg;
}

/* Assignment must put partitions 0..n-1 on this node alone; returns n, 0 when it does not,
 * or K_ERR_NOMEM. A count past MAX_PARTITIONS is returned as is for the partitions check to
 * refuse. Linear, with a seen-map: the count comes from the peer. */
static int32_t check_assignment(kb_req_t *req, const topic_in_t *in, int32_t node)
{
    int32_t n = in->assignments_count;
    if (n > MAX_PARTITIONS) return n;
    bool *seen = kp_arena_alloc(&req->arena, (size_t)n);
    if (!seen) return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        const kp_create_topics_req_creatable_replica_assignment_t *a = &in->assignments[i];
        if (a->broker_ids_count != 1 || a->broker_ids[0] != node) return 0;
        int32_t p = a->partition_index;
        if (p < 0 || p >= n || seen[p]) return 0;
        seen[p] = true;
    }
    return n;
}

static int cmp_names(const void *x, const void *y, void *ud)
{
    const topic_in_t *t = ud;
    kp_str_t a = t[*(const int32_t *)x].name, b = t[*(const int32_t *)y].name;
    int32_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* dup[i] is set when topic i's name appears more than once in the request. Sorted rather than
 * compared pairwise: a request may carry millions of topics. */
static int find_duplicates(kb_req_t *req, const kp_create_topics_req_t *m, bool *dup)
{
    int32_t n = m->topics_count;
    int32_t *order = kp_arena_alloc(&req->arena, sizeof *order * (size_t)n);
    if (!order) return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_names, m->topics);
    for (int32_t i = 1; i < n; i++)
        if (cmp_names(&order[i - 1], &order[i], m->topics) == 0)
            dup[order[i - 1]] = dup[order[i]] = true;
    return 0;
}

/* Applies the request's configs over the broker defaults: 0, 1 when o's error was filled in,
 * or K_ERR_NOMEM. */
static int apply_configs(kb_req_t *req, const topic_in_t *in, ks_topic_config_t *tc, topic_out_t *o)
{
    for (int32_t i = 0; i < in->configs_count; i++) {
        const kp_create_topics_req_creatable_topic_config_t *c = &in->configs[i];
        char key[256];
        if (!kb_str_copy(c->name, key, sizeof key)) {
            fail(req, o, KP_ERR_INVALID_CONFIG, kp_str("Config name too long"));
            return 1;
        }
        if (c->value.len < 0) {
            fail(req, o, KP_ERR_INVALID_CONFIG,
                 kb_arena_printf(&req->arena, "Null value not supported for topic config %s", key));
            return 1;
        }
        char *value = kp_arena_alloc(&req->arena, (size_t)c->value.len + 1);
        if (!value) return K_ERR_NOMEM;
        kb_str_copy(c->value, value, (size_t)c->value.len + 1);
        char err[512];
        bool has_nul = strlen(value) != (size_t)c->value.len; /* no config value holds one */
        int rc = has_nul ? K_ERR_INVAL : ks_topic_config_set_msg(tc, key, value, err, sizeof err);
        if (rc < 0) {
            if (has_nul) snprintf(err, sizeof err, "Invalid value for configuration %s", key);
            fail(req, o, KP_ERR_INVALID_CONFIG, kp_str(kb_arena_strdup(&req->arena, err)));
            return 1;
        }
    }
    return 0;
}

static bool config_given(const topic_in_t *in, const char *key)
{
    for (int32_t i = 0; i < in->configs_count; i++)
        if (kp_str_eq(in->configs[i].name, key)) return true;
    return false;
}

/* v5+: the topic's effective configuration. */
static int describe_configs(kb_req_t *req, const topic_in_t *in, const ks_topic_config_t *tc,
                            topic_out_t *o)
{
    const char *const *keys = ks_topic_config_keys();
    int32_t n = 0;
    while (keys[n])
        n++;
    o->configs = kp_arena_alloc(&req->arena, sizeof *o->configs * (size_t)(n ? n : 1));
    if (!o->configs) return K_ERR_NOMEM;
    const kb_config_t *cfg = kb_broker_config(req->broker);
    for (int32_t i = 0; i < n; i++) {
        kp_create_topics_resp_creatable_topic_configs_t *c = &o->configs[i];
        kp_create_topics_resp_creatable_topic_configs_init(c);
        char buf[KS_THROTTLED_MAX];
        c->name = kp_str(keys[i]);
        if (ks_topic_config_get(tc, keys[i], buf, sizeof buf) == 0)
            c->value = kp_str(kb_arena_strdup(&req->arena, buf));
        c->read_only = false;
        c->is_sensitive = false;
        int bi = kb_config_find_by_topic_key(keys[i]);
        if (config_given(in, keys[i]))
            c->config_source = KB_CS_DYNAMIC_TOPIC;
        else if (bi >= 0 && !kb_config_is_default(cfg, bi))
            c->config_source = KB_CS_STATIC_BROKER;
        else
            c->config_source = KB_CS_DEFAULT;
    }
    o->configs_count = n;
    return 0;
}

/* The partition count a topic gets (num_partitions, an assignment, or the default) after the
 * partition and replication checks; 0 when the topic failed (o says why), or K_ERR_NOMEM. */
static int32_t checked_partitions(kb_req_t *req, const topic_in_t *in, topic_out_t *o)
{
    const kb_config_t *cfg = kb_broker_config(req->broker);
    int32_t partitions = in->num_partitions;
    if (in->assignments_count > 0) {
        if (in->num_partitions != -1 || in->replication_factor != -1) {
            fail(req, o, KP_ERR_INVALID_REQUEST,
                 kp_str("Both numPartitions or replicationFactor and replicasAssignments were "
                        "set. Both cannot be used at the same time."));
            return 0;
        }
        partitions = check_assignment(req, in, cfg->node_id);
        if (partitions < 0) return partitions;
        if (partitions == 0) {
            fail(req, o, KP_ERR_INVALID_REPLICA_ASSIGNMENT,
                 kb_arena_printf(&req->arena,
                                 "Replica assignment must place partitions 0..n-1 on broker %d "
                                 "only (single-node broker)",
                                 cfg->node_id));
            return 0;
        }
    } else if (partitions == -1) {
        partitions = cfg->num_partitions;
    }
    if (partitions <= 0 || partitions > MAX_PARTITIONS) {
        fail(req, o, KP_ERR_INVALID_PARTITIONS,
             kb_arena_printf(&req->arena, "Number of partitions must be between 1 and %d.",
                             MAX_PARTITIONS));
        return 0;
    }
    if (in->replication_factor != -1 && in->replication_factor != 1) {
        fail(req, o, KP_ERR_INVALID_REPLICATION_FACTOR,
             in->replication_factor <= 0
                 ? kp_str("Replication factor must be larger than 0.")
                 : kb_arena_printf(&req->arena,
                                   "Unable to replicate the partition %d time(s): The target "
                                   "replication factor of %d cannot be reached because only 1 "
                                   "broker(s) are registered.",
                                   in->replication_factor, in->replication_factor));
        return 0;
    }
    return partitions;
}

/* A storage status from creating a topic, as the topic's error; false. */
static bool create_failed(kb_req_t *req, const char *name, int rc, topic_out_t *o)
{
    switch (rc) {
    case K_ERR_EXISTS:
        fail(req, o, KP_ERR_TOPIC_ALREADY_EXISTS,
             kb_arena_printf(&req->arena, "Topic '%s' already exists.", name));
        break;
    case K_ERR_INVAL:
        fail(req, o, KP_ERR_INVALID_TOPIC_EXCEPTION, kp_str("Topic name is illegal"));
        break;
    case K_ERR_NOSPC:
        fail(req, o, KP_ERR_KAFKA_STORAGE_ERROR, kp_str("No space left in log.dirs"));
        break;
    default:
        kb_log(KB_LOG_ERROR, "creating topic %s failed: %s", name, k_strerror(rc));
        fail(req, o, KP_ERR_UNKNOWN_SERVER_ERROR,
             kb_arena_printf(&req->arena, "Creating the topic failed: %s", k_strerror(rc)));
        break;
    }
    return false;
}

/* One topic of the request past its checks: its name reserved in storage (pt) until the files
 * are written off the loop, or (validate_only) only checked. In the request's arena. */
typedef struct {
    ks_topic_pending_t *pt; /* NULL once finished, or for validate_only */
    int32_t idx, partitions;
    char name[256];
    ks_topic_config_t tc;
} made_t;

typedef struct {
    kb_offloop_t off;
    const kp_create_topics_req_t *m;
    kp_create_topics_resp_t *resp;
    made_t **made; /* per topic of the request, NULL when it failed its checks */
    int32_t n;
} create_job_t;

/* Reserves the topic (or, validate_only, checks the name is free); false when it failed. */
static bool begin_topic(kb_req_t *req, bool validate_only, made_t *mk, topic_out_t *o)
{
    ks_store_t *store = kb_broker_store(req->broker);
    int rc = 0;
    if (validate_only) {
        if (ks_topic_find(store, mk->name, strlen(mk->name))) rc = K_ERR_EXISTS;
    } else {
        rc = ks_topic_create_begin(store, mk->name, mk->partitions, &mk->tc, &mk->pt);
    }
    return rc == 0 || create_failed(req, mk->name, rc, o);
}

/* The answer of a created (or validated) topic. */
static int answer_topic(kb_req_t *req, const topic_in_t *in, const made_t *mk, topic_out_t *o)
{
    o->error_code = KP_ERR_NONE;
    if (!kb_authorize_str(req, KB_OP_DESCRIBE_CONFIGS, KB_RES_TOPIC, in->name)) {
        /* KIP-525: created, but its configuration is not disclosed */
        o->topic_config_error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        o->num_partitions = -1;
        o->replication_factor = -1;
        return 0;
    }
    o->num_partitions = mk->partitions;
    o->replication_factor = 1;
    return describe_configs(req, in, &mk->tc, o);
}

/* The checks, then the reservation: *mk set when the topic goes on (o filled in otherwise).
 * cluster_create: the principal has CREATE on the cluster (else it needs it on the topic). */
static int begin_one(kb_req_t *req, const kp_create_topics_req_t *m, int32_t idx, bool dup,
                     bool cluster_create, topic_out_t *o, made_t **mkp)
{
    const topic_in_t *in = &m->topics[idx];
    const kb_config_t *cfg = kb_broker_config(req->broker);
    char name[256];
    o->name = in->name;
    *mkp = NULL;

    if (dup) {
        fail(req, o, KP_ERR_INVALID_REQUEST,
             kp_str("Create topics request contains multiple entries for this topic"));
        return 0;
    }
    /* The audit trail's change intent is written (and fsynced) inside this check: it comes
     * before the change, as it must. */
    if (!cluster_create && !kb_authorize_str(req, KB_OP_CREATE, KB_RES_TOPIC, in->name)) {
        fail(req, o, KP_ERR_TOPIC_AUTHORIZATION_FAILED, kp_str("Authorization failed."));
        return 0;
    }
    if (!kb_str_copy(in->name, name, sizeof name) || !ks_topic_name_valid(name, strlen(name))) {
        fail(req, o, KP_ERR_INVALID_TOPIC_EXCEPTION,
             kp_str("Topic name is illegal: it must be 1-249 characters of [a-zA-Z0-9._-] and "
                    "not '.' or '..'"));
        return 0;
    }
    int32_t partitions = checked_partitions(req, in, o);
    if (partitions <= 0) return partitions;
    made_t *mk = kp_arena_alloc(&req->arena, sizeof *mk);
    if (!mk) return K_ERR_NOMEM;
    memset(mk, 0, sizeof *mk);
    mk->idx = idx;
    mk->partitions = partitions;
    memcpy(mk->name, name, sizeof name);
    mk->tc = cfg->topic_defaults;
    int rc = apply_configs(req, in, &mk->tc, o);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (!begin_topic(req, m->validate_only, mk, o)) return 0;
    *mkp = mk;
    return 0;
}

/* Off the loop: the reserved topics' directories, metadata files and fsyncs. */
static void create_run(kb_offloop_t *off)
{
    create_job_t *j = (create_job_t *)off;
    for (int32_t i = 0; i < j->n; i++)
        if (j->made[i] && j->made[i]->pt) ks_topic_create_write(j->made[i]->pt);
}

/* Back on the loop: publish (or roll back) each reserved topic, then the whole answer. Runs
 * also when the client left meanwhile: every reservation is finished exactly once. */
static int create_done(kb_offloop_t *off)
{
    create_job_t *j = (create_job_t *)off;
    kb_req_t *req = off->req;
    int err = 0;
    for (int32_t i = 0; i < j->n; i++) {
        made_t *mk = j->made[i];
        topic_out_t *o = &j->resp->topics[i];
        if (mk && mk->pt) {
            ks_topic_t *t = NULL;
            int rc = ks_topic_create_finish(mk->pt, &t);
            mk->pt = NULL;
            if (rc != 0) {
                create_failed(req, mk->name, rc, o);
                mk = NULL;
            } else {
                o->topic_id = ks_topic_id(t);
                kb_log(KB_LOG_INFO, "created topic %s with %d partitions (asked by %s)",
                       mk->name, mk->partitions, req->conn ? kb_conn_peer(req->conn) : "-");
            }
        }
        if (mk && err == 0) err = answer_topic(req, &j->m->topics[mk->idx], mk, o);
        kb_req_error(req, o->error_code);
    }
    if (err < 0) return err;
    int rc = kp_create_topics_resp_encode(&req->resp, req->hdr.api_version, j->resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_create_topics(kb_req_t *req)
{
    kp_create_topics_req_t *m = kp_arena_alloc(&req->arena, sizeof *m);
    kp_create_topics_resp_t *resp = kp_arena_alloc(&req->arena, sizeof *resp);
    create_job_t *j = kp_arena_alloc(&req->arena, sizeof *j);
    if (!m || !resp || !j) return K_ERR_NOMEM;
    kp_create_topics_req_init(m);
    if (kp_create_topics_req_decode(&req->body, req->hdr.api_version, &req->arena, m) < 0)
        return K_ERR_MALFORMED;
    kp_create_topics_resp_init(resp);
    memset(j, 0, sizeof *j);
    int32_t n = m->topics_count > 0 ? m->topics_count : 0;
    bool *dup = NULL;
    if (n > 0) {
        resp->topics = kp_arena_alloc(&req->arena, sizeof *resp->topics * (size_t)n);
        j->made = kp_arena_alloc(&req->arena, sizeof *j->made * (size_t)n);
        dup = kp_arena_alloc(&req->arena, (size_t)n);
        if (!resp->topics || !j->made || !dup || find_duplicates(req, m, dup) < 0)
            return K_ERR_NOMEM;
    }
    j->m = m;
    j->resp = resp;
    bool cluster_create = kb_authorize_cluster(req, KB_OP_CREATE);
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        kp_create_topics_resp_creatable_topic_result_init(&resp->topics[i]);
        resp->topics[i].error_message = (kp_str_t){NULL, -1};
        j->made[i] = NULL;
        if (rc == 0) rc = begin_one(req, m, i, dup[i], cluster_create, &resp->topics[i],
                                    &j->made[i]);
        j->n = i + 1;
    }
    resp->topics_count = n;
    if (rc < 0) { /* out of memory: the reservations made so far are let go */
        for (int32_t i = 0; i < j->n; i++)
            if (j->made[i] && j->made[i]->pt) {
                ks_topic_create_finish(j->made[i]->pt, NULL); /* unwritten: let go */
                j->made[i]->pt = NULL;
            }
        return rc;
    }
    j->off.run = create_run;
    j->off.done = create_done;
    bool any = false;
    for (int32_t i = 0; i < n && !any; i++)
        any = j->made[i] && j->made[i]->pt;
    if (!any) { /* nothing to write (validate_only, or every topic failed its checks) */
        j->off.req = req;
        return create_done(&j->off);
    }
    return kb_offloop_start(req, &j->off);
}

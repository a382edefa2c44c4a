/*
 * AlterConfigs (33, v0-2) and IncrementalAlterConfigs (44, v0-1) for TOPIC (2) and BROKER (4)
 * resources, as a Kafka 4 broker answers them.
 *
 * Topics: the new overrides are computed on a copy of the topic's configuration, every value
 * validated by storage's table (unknown name or bad value: INVALID_CONFIG with Kafka's
 * message), then handed to storage in three steps: ks_topic_configs_begin on the loop, the
 * metadata rewrite and its fsyncs on libuv's threadpool (kb_offloop_start) while the request
 * waits, ks_topic_change_finish back on the loop, which makes them live; a slow flash write
 * stalls this request only. Retention, rolling, flush and max.message.bytes read the live
 * values, so a change takes effect at the next append or retention tick. Requests that change
 * topics run one at a time in arrival order (the topic-change lane, h_common.h), so an
 * incremental change applies on top of the one before it. AlterConfigs replaces the whole set of
 * overrides (keys not named revert to the broker default, as in Kafka); the incremental API
 * applies SET / DELETE / APPEND / SUBTRACT, the last two only to list keys (cleanup.policy,
 * *.replication.throttled.replicas). validate_only checks everything and changes nothing.
 *
 * Brokers: h_broker_configs.c (kb_dynconf_alter). Their file is written off the loop: a request
 * with a broker change is answered once the change is durable and live (broker_done).
 *
 * Authorization (Kafka's KafkaApis): ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED)
 * or on the cluster for a broker resource (CLUSTER_AUTHORIZATION_FAILED).
 *
 * The broker's own topics (kb_topic_internal: __consumer_offsets, _schemas, __audit) are
 * refused with INVALID_REQUEST naming the topic, existing or not (issue 19).
 */
#include <stdio.h>
#include <string.h>

#include "broker/api/h_admin.h"
#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_alter_configs.h"
#include "protocol/gen/kp_incremental_alter_configs.h"
#include "protocol/kp_errors.h"

enum { RES_TOPIC = 2, RES_BROKER = 4 };
#define MAX_CHANGES 4096

/* One change, whichever API it came from. */
typedef struct {
    kp_str_t name, value;
    int op;
} change_t;

typedef struct {
    int8_t resource_type;
    kp_str_t resource_name;
    change_t *changes;
    int n;
} resource_t;

typedef struct {
    int16_t error_code;
    kp_str_t error_message;
} outcome_t;

/* A request whose broker changes are being written off the loop (kb_dynconf_alter queued
 * them): answered when the last one is done. In the request's arena. */
typedef struct {
    kb_offloop_t off; /* the topic changes' write (first: the job is the context) */
    int pending;      /* queued broker changes not yet done, plus 1 while topics are written */
    bool incremental; /* which API answers */
    const resource_t *rs;
    outcome_t *out;
    ks_topic_change_t **ch; /* per resource: a topic change between begin and finish, or NULL */
    int n;
} alter_ctx_t;

typedef struct {
    alter_ctx_t *ctx;
    outcome_t *o;
} broker_wait_t;

static int encode_answer(kb_req_t *req, const alter_ctx_t *ctx);

static bool is_list_key(const char *key)
{
    return !strcmp(key, "cleanup.policy") || !strcmp(key, "leader.replication.throttled.replicas") ||
           !strcmp(key, "follower.replication.throttled.replicas");
}

/* Appends (add) or removes each comma-separated item of arg to/from the list text cur.
 * Returns the new list in the arena, NULL if out of memory. */
static char *list_edit(kb_req_t *req, const char *cur, const char *arg, bool add)
{
    size_t cap = strlen(cur) + strlen(arg) + 4;
    char *out = kp_arena_alloc(&req->arena, cap);
    char *items = kb_arena_strdup(&req->arena, cur), *args = kb_arena_strdup(&req->arena, arg);
    if (!out || !items || !args) return NULL;
    out[0] = 0;
    char *save = NULL;
    for (char *it = strtok_r(items, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        while (*it == ' ')
            it++;
        bool drop = false;
        if (!add) {
            char *s2 = NULL, *acopy = kb_arena_strdup(&req->arena, arg);
            for (char *a = acopy ? strtok_r(acopy, ",", &s2) : NULL; a; a = strtok_r(NULL, ",", &s2)) {
                while (*a == ' ')
                    a++;
                if (!strcmp(a, it)) drop = true;
            }
        }
        if (drop || !*it) continue;
        if (out[0]) strcat(out, ",");
        strcat(out, it);
    }
    if (add) {
        for (char *a = strtok_r(args, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
            while (*a == ' ')
                a++;
            /* already present? compare against each item of out */
            bool dup = false;
            size_t alen = strlen(a);
            for (const char *p = out; *p;) {
                size_t l = strcspn(p, ",");
                if (l == alen && !strncmp(p, a, l)) dup = true;
                p += l + (p[l] == ',');
            }
            if (dup || !*a) continue;
            if (out[0]) strcat(out, ",");
            strcat(out, a);
        }
    }
    return out;
}

static int16_t bad_config(kb_req_t *req, outcome_t *o, const char *msg)
{
    o->error_message = kp_str(kb_arena_strdup(&req->arena, msg));
    return o->error_code = KP_ERR_INVALID_CONFIG;
}

/* Applies one change to (cfg, mask); KP_ERR_NONE or the error (with o's message set). */
static int16_t topic_change(kb_req_t *req, const change_t *c, ks_topic_config_t *cfg,
                            uint64_t *mask, outcome_t *o)
{
    char err[512], cur[KS_THROTTLED_MAX];
    char *name = kb_admin_cstr(req, c->name);
    int idx = name ? ks_topic_config_index(name) : -1;
    if (idx < 0) {
        snprintf(err, sizeof err, "Unknown topic config name: %s", name ? name : "(invalid)");
        return bad_config(req, o, err);
    }
    uint64_t bit = UINT64_C(1) << idx;
    if (c->op == KB_CFG_DELETE) {
        ks_topic_config_copy(cfg, ks_store_defaults(kb_broker_store(req->broker)), bit);
        *mask &= ~bit;
        return KP_ERR_NONE;
    }
    char *value = kb_admin_cstr(req, c->value);
    if (!value) {
        snprintf(err, sizeof err, "Null value not supported for : %s", name);
        return bad_config(req, o, err);
    }
    if (c->op == KB_CFG_APPEND || c->op == KB_CFG_SUBTRACT) {
        if (!is_list_key(name)) {
            snprintf(err, sizeof err, "Config value %s is not allowed for config key: %s",
                     c->op == KB_CFG_APPEND ? "append" : "subtract", name);
            return bad_config(req, o, err);
        }
        ks_topic_config_get(cfg, name, cur, sizeof cur);
        value = list_edit(req, cur, value, c->op == KB_CFG_APPEND);
        if (!value) return bad_config(req, o, "Out of memory");
    } else if (c->op != KB_CFG_SET) {
        snprintf(err, sizeof err, "Unknown config operation %d for %s", c->op, name);
        o->error_message = kp_str(kb_arena_strdup(&req->arena, err));
        return o->error_code = KP_ERR_INVALID_REQUEST;
    }
    if (ks_topic_config_set_msg(cfg, name, value, err, sizeof err) < 0)
        return bad_config(req, o, err);
    *mask |= bit;
    return KP_ERR_NONE;
}

static void alter_topic(kb_req_t *req, const resource_t *r, bool replace, bool validate_only,
                        outcome_t *o, ks_topic_change_t **ch)
{
    ks_store_t *store = kb_broker_store(req->broker);
    if (!kb_authorize_str(req, KB_OP_ALTER_CONFIGS, KB_RES_TOPIC, r->resource_name)) {
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        return;
    }
    /* Issue 19: the broker sizes and retains its own topics (kb_topic_internal); a client's
     * retention.ms=1 on __consumer_offsets would erase every group's commits. */
    if (r->resource_name.len > 0 &&
        kb_topic_internal(r->resource_name.ptr, (size_t)r->resource_name.len)) {
        o->error_code = KP_ERR_INVALID_REQUEST;
        o->error_message = kb_arena_printf(&req->arena, "The internal topic %.*s is managed by "
                                           "the broker; its configs cannot be altered.",
                                           r->resource_name.len, r->resource_name.ptr);
        return;
    }
    ks_topic_t *t = r->resource_name.len > 0
                        ? ks_topic_find(store, r->resource_name.ptr, (size_t)r->resource_name.len)
                        : NULL;
    if (!t) {
        o->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        o->error_message = kb_arena_printf(&req->arena, "Topic %.*s does not exist.",
                                           r->resource_name.len > 0 ? r->resource_name.len : 0,
                                           r->resource_name.ptr ? r->resource_name.ptr : "");
        return;
    }
    ks_topic_config_t cfg = replace ? *ks_store_defaults(store) : *ks_topic_config(t);
    uint64_t mask = replace ? 0 : ks_topic_overrides(t);
    for (int i = 0; i < r->n; i++)
        if (topic_change(req, &r->changes[i], &cfg, &mask, o) != KP_ERR_NONE) return;
    if (validate_only) return;
    int rc = ks_topic_configs_begin(store, t, &cfg, mask, ch);
    if (rc < 0) {
        *ch = NULL;
        o->error_code = rc == K_ERR_AGAIN ? KP_ERR_UNKNOWN_SERVER_ERROR
                                          : KP_ERR_KAFKA_STORAGE_ERROR;
        o->error_message = kp_str(rc == K_ERR_AGAIN
                                      ? "Another change of the topic is in progress."
                                      : "Could not persist the topic configuration");
    }
}

static void broker_done(kb_req_t *req, void *ud, int16_t code, kp_str_t msg)
{
    broker_wait_t *w = ud;
    w->o->error_code = code;
    w->o->error_message = msg;
    if (--w->ctx->pending > 0) return;
    int rc = encode_answer(req, w->ctx);
    if (rc < 0 && !req->closed) { /* out of memory: close rather than answer half */
        kb_log(KB_LOG_ERROR, "alter configs: encoding the answer failed: %s", k_strerror(rc));
        kb_req_hold(req);
        kb_req_complete(req);
        kb_req_release(req, true);
        return;
    }
    kb_req_complete(req);
}

static void alter_broker(kb_req_t *req, const resource_t *r, bool replace, bool validate_only,
                         outcome_t *o, alter_ctx_t *ctx)
{
    if (!kb_authorize_cluster(req, KB_OP_ALTER_CONFIGS)) {
        o->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        return;
    }
    char id[16];
    snprintf(id, sizeof id, "%d", kb_broker_config(req->broker)->node_id);
    if (r->resource_name.len > 0 && !kp_str_eq(r->resource_name, id)) {
        o->error_code = KP_ERR_INVALID_REQUEST;
        o->error_message = kb_arena_printf(&req->arena, "This is broker %s.", id);
        return;
    }
    kb_dynconf_change_t *cs = kp_arena_alloc(&req->arena, sizeof *cs * (size_t)(r->n ? r->n : 1));
    if (!cs) {
        o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    for (int i = 0; i < r->n; i++) {
        cs[i].name = kb_admin_cstr(req, r->changes[i].name);
        cs[i].op = r->changes[i].op;
        cs[i].value = kb_admin_cstr(req, r->changes[i].value);
        if (!cs[i].name || (!cs[i].value && cs[i].op != KB_CFG_DELETE)) {
            o->error_code = KP_ERR_INVALID_CONFIG;
            o->error_message = kp_str("Null or malformed config name or value");
            return;
        }
    }
    int source = r->resource_name.len > 0 ? KB_CS_DYNAMIC_BROKER : KB_CS_DYNAMIC_DEFAULT_BROKER;
    broker_wait_t *w = kp_arena_alloc(&req->arena, sizeof *w);
    if (!w) {
        o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    *w = (broker_wait_t){ctx, o};
    bool queued = false;
    o->error_code = kb_dynconf_alter(req, cs, r->n, replace, source, validate_only,
                                     &o->error_message, broker_done, w, &queued);
    if (queued) ctx->pending++;
}

/* Kafka refuses a request naming the same resource twice, or a key twice in one resource. */
static bool duplicated(const resource_t *rs, int n, int k)
{
    for (int j = 0; j < n; j++)
        if (j != k && rs[j].resource_type == rs[k].resource_type &&
            rs[j].resource_name.len == rs[k].resource_name.len &&
            (rs[j].resource_name.len <= 0 ||
             !memcmp(rs[j].resource_name.ptr, rs[k].resource_name.ptr,
                     (size_t)rs[k].resource_name.len)))
            return true;
    const resource_t *r = &rs[k];
    for (int a = 0; a < r->n; a++)
        for (int b = a + 1; b < r->n; b++)
            if (r->changes[a].name.len == r->changes[b].name.len &&
                (r->changes[a].name.len <= 0 ||
                 !memcmp(r->changes[a].name.ptr, r->changes[b].name.ptr,
                         (size_t)r->changes[a].name.len)))
                return true;
    return false;
}

static void alter_all(kb_req_t *req, const resource_t *rs, int n, bool replace,
                      bool validate_only, outcome_t *out, alter_ctx_t *ctx)
{
    for (int k = 0; k < n; k++) {
        outcome_t *o = &out[k];
        o->error_code = KP_ERR_NONE;
        o->error_message = (kp_str_t){NULL, -1};
        if (duplicated(rs, n, k)) {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kp_str("Error due to duplicate resource or config keys");
        } else if (rs[k].resource_type == RES_TOPIC) {
            alter_topic(req, &rs[k], replace, validate_only, o, &ctx->ch[k]);
        } else if (rs[k].resource_type == RES_BROKER) {
            alter_broker(req, &rs[k], replace, validate_only, o, ctx);
        } else {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kb_arena_printf(&req->arena, "Unsupported resource type %d",
                                               rs[k].resource_type);
        }
    }
}

static int encode_alter(kb_req_t *req, const alter_ctx_t *ctx)
{
    kp_alter_configs_resp_t resp;
    kp_alter_configs_resp_init(&resp);
    int n = ctx->n;
    resp.responses = kp_arena_alloc(&req->arena, sizeof *resp.responses * (size_t)(n ? n : 1));
    if (!resp.responses) return K_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        kp_alter_configs_resp_alter_configs_resource_response_t *r = &resp.responses[k];
        kp_alter_configs_resp_alter_configs_resource_response_init(r);
        r->error_code = ctx->out[k].error_code;
        r->error_message = ctx->out[k].error_message;
        r->resource_type = ctx->rs[k].resource_type;
        r->resource_name = ctx->rs[k].resource_name;
    }
    resp.responses_count = n;
    return kp_alter_configs_resp_encode(&req->resp, req->hdr.api_version, &resp);
}

static int encode_incremental(kb_req_t *req, const alter_ctx_t *ctx)
{
    kp_incremental_alter_configs_resp_t resp;
    kp_incremental_alter_configs_resp_init(&resp);
    int n = ctx->n;
    resp.responses = kp_arena_alloc(&req->arena, sizeof *resp.responses * (size_t)(n ? n : 1));
    if (!resp.responses) return K_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        kp_incremental_alter_configs_resp_alter_configs_resource_response_t *r =
            &resp.responses[k];
        kp_incremental_alter_configs_resp_alter_configs_resource_response_init(r);
        r->error_code = ctx->out[k].error_code;
        r->error_message = ctx->out[k].error_message;
        r->resource_type = ctx->rs[k].resource_type;
        r->resource_name = ctx->rs[k].resource_name;
    }
    resp.responses_count = n;
    return kp_incremental_alter_configs_resp_encode(&req->resp, req->hdr.api_version, &resp);
}

static int encode_answer(kb_req_t *req, const alter_ctx_t *ctx)
{
    return ctx->incremental ? encode_incremental(req, ctx) : encode_alter(req, ctx);
}

/* Off the loop: the topics' metadata rewrites and their fsyncs. */
static void topics_run(kb_offloop_t *off)
{
    alter_ctx_t *ctx = (alter_ctx_t *)off;
    for (int k = 0; k < ctx->n; k++)
        if (ctx->ch[k]) ks_topic_change_write(ctx->ch[k]);
}

/* Back on the loop: the written changes go live (or are dropped); the answer goes when no
 * broker change is still being written either. Runs also when the client left meanwhile. */
static int topics_done(kb_offloop_t *off)
{
    alter_ctx_t *ctx = (alter_ctx_t *)off;
    kb_req_t *req = off->req;
    for (int k = 0; k < ctx->n; k++) {
        if (!ctx->ch[k]) continue;
        outcome_t *o = &ctx->out[k];
        int rc = ks_topic_change_finish(ctx->ch[k]);
        ctx->ch[k] = NULL;
        kp_str_t name = ctx->rs[k].resource_name;
        if (rc == K_ERR_NOENT) {
            o->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            o->error_message = kb_arena_printf(&req->arena, "Topic %.*s was deleted meanwhile.",
                                               name.len, name.ptr);
        } else if (rc < 0) {
            o->error_code = KP_ERR_KAFKA_STORAGE_ERROR;
            o->error_message = kp_str("Could not persist the topic configuration");
        } else {
            kb_log(KB_LOG_INFO, "topic %.*s: configs altered (asked by %s)", name.len, name.ptr,
                   req->conn ? kb_conn_peer(req->conn) : "-");
        }
    }
    kb_topic_lane_leave(req);
    if (--ctx->pending > 0) return KB_PENDING; /* broker_done answers */
    int rc = encode_answer(req, ctx);
    return rc < 0 ? rc : KB_DONE;
}

/* Runs the changes; answers now, or later when topic or broker changes are being written. */
static int alter_and_answer(kb_req_t *req, alter_ctx_t *ctx, bool replace, bool validate_only)
{
    int n = ctx->n;
    bool topics = false;
    for (int k = 0; k < n && !topics; k++)
        topics = ctx->rs[k].resource_type == RES_TOPIC;
    ctx->ch = kp_arena_alloc(&req->arena, sizeof *ctx->ch * (size_t)(n ? n : 1));
    if (!ctx->ch) return K_ERR_NOMEM;
    memset(ctx->ch, 0, sizeof *ctx->ch * (size_t)(n ? n : 1));
    /* Before any check: a pass that waits must have had no effect (its replay runs the checks,
     * audit intents included, on top of the changes before it). */
    if (topics && !validate_only && !kb_topic_lane_enter(req)) return KB_PENDING;
    alter_all(req, ctx->rs, n, replace, validate_only, ctx->out, ctx);
    bool any = false;
    for (int k = 0; k < n && !any; k++)
        any = ctx->ch[k] != NULL;
    if (any) {
        ctx->pending++; /* topics_done takes it back */
        ctx->off.run = topics_run;
        ctx->off.done = topics_done;
        return kb_offloop_start(req, &ctx->off);
    }
    kb_topic_lane_leave(req);
    if (ctx->pending > 0) return KB_PENDING; /* broker_done answers */
    int rc = encode_answer(req, ctx);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_alter_configs(kb_req_t *req)
{
    kp_alter_configs_req_t m;
    kp_alter_configs_req_init(&m);
    if (kp_alter_configs_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    int n = m.resources_count > 0 ? m.resources_count : 0;
    resource_t *rs = kp_arena_alloc(&req->arena, sizeof *rs * (size_t)(n ? n : 1));
    outcome_t *out = kp_arena_alloc(&req->arena, sizeof *out * (size_t)(n ? n : 1));
    alter_ctx_t *ctx = kp_arena_alloc(&req->arena, sizeof *ctx);
    if (!rs || !out || !ctx) return K_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        const kp_alter_configs_req_alter_configs_resource_t *in = &m.resources[k];
        int c = in->configs_count > 0 ? in->configs_count : 0;
        if (c > MAX_CHANGES) return K_ERR_MALFORMED;
        rs[k] = (resource_t){in->resource_type, in->resource_name, NULL, c};
        rs[k].changes = kp_arena_alloc(&req->arena, sizeof *rs[k].changes * (size_t)(c ? c : 1));
        if (!rs[k].changes) return K_ERR_NOMEM;
        for (int i = 0; i < c; i++)
            rs[k].changes[i] = (change_t){in->configs[i].name, in->configs[i].value, KB_CFG_SET};
    }
    *ctx = (alter_ctx_t){.incremental = false, .rs = rs, .out = out, .n = n};
    return alter_and_answer(req, ctx, true, m.validate_only);
}

int kb_handle_incremental_alter_configs(kb_req_t *req)
{
    kp_incremental_alter_configs_req_t m;
    kp_incremental_alter_configs_req_init(&m);
    if (kp_incremental_alter_configs_req_decode(&req->body, req->hdr.api_version, &req->arena,
                                                &m) < 0)
        return K_ERR_MALFORMED;
    int n = m.resources_count > 0 ? m.resources_count : 0;
    resource_t *rs = kp_arena_alloc(&req->arena, sizeof *rs * (size_t)(n ? n : 1));
    outcome_t *out = kp_arena_alloc(&req->arena, sizeof *out * (size_t)(n ? n : 1));
    alter_ctx_t *ctx = kp_arena_alloc(&req->arena, sizeof *ctx);
    if (!rs || !out || !ctx) return K_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        const kp_incremental_alter_configs_req_alter_configs_resource_t *in = &m.resources[k];
        int c = in->configs_count > 0 ? in->configs_count : 0;
        if (c > MAX_CHANGES) return K_ERR_MALFORMED;
        rs[k] = (resource_t){in->resource_type, in->resource_name, NULL, c};
        rs[k].changes = kp_arena_alloc(&req->arena, sizeof *rs[k].changes * (size_t)(c ? c : 1));
        if (!rs[k].changes) return K_ERR_NOMEM;
        for (int i = 0; i < c; i++)
            rs[k].changes[i] = (change_t){in->configs[i].name, in->configs[i].value,
                                          in->configs[i].config_operation};
    }
    *ctx = (alter_ctx_t){.incremental = true, .rs = rs, .out = out, .n = n};
    return alter_and_answer(req, ctx, false, m.validate_only);
}

/*
 * DescribeClientQuotas (48) and AlterClientQuotas (49), v0-1: Kafka's client quotas through
 * its own admin API (kafka-configs --entity-type users|clients, Admin.alterClientQuotas).
 * Describing needs DESCRIBE_CONFIGS on the cluster, altering ALTER_CONFIGS on the cluster, as
 * in Kafka (checked only with an authorizer; the audit trail records the change through the
 * same check). Entities are user, client-id or both, each a name or <default> (a null name);
 * the store, precedence and enforcement are broker/quota/ (docs/quotas.md).
 *
 * An alteration is applied in memory, then the answer waits until the quota file is durable
 * (written off the loop); a failed write reloads the file and answers UNKNOWN_SERVER_ERROR.
 */
#include <math.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "broker/quota/quota.h"
#include "protocol/gen/kp_alter_client_quotas.h"
#include "protocol/gen/kp_describe_client_quotas.h"
#include "protocol/kp_errors.h"

#define TYPE_USER "user"
#define TYPE_CLIENT "client-id"
#define TYPE_IP "ip"

typedef kp_describe_client_quotas_resp_entry_data_t dentry_t;

/* One wire entity part into e; NULL or a message. */
static const char *entity_part(kp_str_t type, kp_str_t name, kb_quota_entity_t *e)
{
    int8_t *kind;
    char *dst;
    if (kp_str_eq(type, TYPE_USER)) {
        kind = &e->user_kind;
        dst = e->user;
    } else if (kp_str_eq(type, TYPE_CLIENT)) {
        kind = &e->client_kind;
        dst = e->client;
    } else if (kp_str_eq(type, TYPE_IP)) {
        return "ip quotas (connection_creation_rate) are not supported";
    } else {
        return "unknown entity type (user, client-id)";
    }
    if (*kind != KB_QE_NONE) return "an entity type appears twice";
    if (name.len < 0) {
        *kind = KB_QE_DEFAULT;
        return NULL;
    }
    if (name.len == 0 || name.len > KB_QUOTA_NAME_MAX || memchr(name.ptr, 0, (size_t)name.len))
        return "entity name is empty, too long or holds a NUL byte";
    memcpy(dst, name.ptr, (size_t)name.len);
    dst[name.len] = 0;
    *kind = KB_QE_NAME;
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* AlterClientQuotas                                                                            */

/* Checks one entry; NULL when it can be applied. */
static const char *check_entry(const kp_alter_client_quotas_req_entry_data_t *en,
                               kb_quota_entity_t *e)
{
    memset(e, 0, sizeof *e);
    if (en->entity_count <= 0) return "the entity is empty";
    for (int32_t j = 0; j < en->entity_count; j++) {
        const char *why = entity_part(en->entity[j].entity_type, en->entity[j].entity_name, e);
        if (why) return why;
    }
    bool seen[KB_QK_N] = {false};
    for (int32_t j = 0; j < en->ops_count; j++) {
        const kp_alter_client_quotas_req_op_data_t *op = &en->ops[j];
        int k = op->key.len > 0 ? kb_quota_key(op->key.ptr, (size_t)op->key.len) : -1;
        if (k < 0)
            return "unknown quota key (producer_byte_rate, consumer_byte_rate, "
                   "request_percentage, controller_mutation_rate)";
        if (seen[k]) return "a quota key appears twice for one entity";
        seen[k] = true;
        if (op->remove) continue;
        if (!isfinite(op->value) || op->value <= 0) return "a quota must be a positive number";
        if ((k == KB_QK_PRODUCER_BYTE_RATE || k == KB_QK_CONSUMER_BYTE_RATE) &&
            (op->value > 9.2e18 || fabs(op->value - floor(op->value + 0.5)) > 1e-6))
            return "a byte rate must be a Long value";
    }
    return NULL;
}

static void alter_done(kb_req_t *req, int status)
{
    kp_alter_client_quotas_resp_t *resp = req->handler_data;
    req->handler_data = NULL;
    for (int32_t i = 0; status < 0 && i < resp->entries_count; i++)
        if (!resp->entries[i].error_code) {
            resp->entries[i].error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            resp->entries[i].error_message = kp_str("the quota file could not be written");
        }
    if (!req->closed && kp_alter_client_quotas_resp_encode(&req->resp, req->hdr.api_version,
                                                           resp) < 0)
        kb_log(KB_LOG_ERROR, "AlterClientQuotas: encoding the answer failed");
    kb_req_complete(req);
}

static void log_change(kb_req_t *req, const kb_quota_entity_t *e,
                       const kp_alter_client_quotas_req_op_data_t *op)
{
    kb_log(KB_LOG_INFO, "client quota user=%s client-id=%s: %.*s %s%.17g by %s:%s",
           e->user_kind == KB_QE_NAME ? e->user : e->user_kind ? "<default>" : "-",
           e->client_kind == KB_QE_NAME ? e->client : e->client_kind ? "<default>" : "-",
           (int)op->key.len, op->key.ptr, op->remove ? "removed, was " : "= ",
           op->remove ? NAN : op->value, kb_conn_principal(req->conn)->type,
           kb_conn_principal(req->conn)->name);
}

int kb_handle_alter_client_quotas(kb_req_t *req)
{
    kp_alter_client_quotas_req_t m;
    kp_alter_client_quotas_req_init(&m);
    if (kp_alter_client_quotas_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    kp_alter_client_quotas_resp_t *resp = kp_arena_alloc(&req->arena, sizeof *resp);
    int n = m.entries_count > 0 ? m.entries_count : 0;
    kp_alter_client_quotas_resp_entry_data_t *out =
        n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *out) : NULL;
    if (!resp || (n && !out)) return K_ERR_NOMEM;
    kp_alter_client_quotas_resp_init(resp);
    resp->entries = out;
    resp->entries_count = n;
    kb_qstore_t *store = kb_quota_store(req->broker);
    bool allowed = kb_authorize_cluster(req, KB_OP_ALTER_CONFIGS);
    int changed = 0;
    for (int i = 0; i < n; i++) {
        const kp_alter_client_quotas_req_entry_data_t *en = &m.entries[i];
        kp_alter_client_quotas_resp_entry_data_init(&out[i]);
        out[i].error_message = kp_str(NULL); /* Kafka: null unless there is an error */
        int ne = en->entity_count > 0 ? en->entity_count : 0;
        out[i].entity_count = ne; /* the request's entity, echoed */
        out[i].entity = ne ? kp_arena_alloc(&req->arena, (size_t)ne * sizeof *out[i].entity) : NULL;
        if (ne && !out[i].entity) return K_ERR_NOMEM;
        for (int j = 0; j < ne; j++) {
            out[i].entity[j].entity_type = en->entity[j].entity_type;
            out[i].entity[j].entity_name = en->entity[j].entity_name;
        }
        kb_quota_entity_t e;
        const char *why = !allowed ? NULL : !store ? "quotas are not available" : check_entry(en, &e);
        if (!allowed || why) {
            out[i].error_code = !allowed ? KP_ERR_CLUSTER_AUTHORIZATION_FAILED
                                : store  ? KP_ERR_INVALID_REQUEST
                                         : KP_ERR_UNKNOWN_SERVER_ERROR;
            if (why) out[i].error_message = kp_str(why);
            kb_req_error(req, out[i].error_code);
            continue;
        }
        for (int32_t j = 0; j < en->ops_count && !m.validate_only; j++) {
            const kp_alter_client_quotas_req_op_data_t *op = &en->ops[j];
            int k = kb_quota_key(op->key.ptr, (size_t)op->key.len);
            if (kb_qstore_set(store, &e, k, op->remove ? NAN : op->value) < 0) {
                out[i].error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
                out[i].error_message = kp_str("out of memory");
                break;
            }
            log_change(req, &e, op);
            changed++;
        }
    }
    if (changed) {
        req->handler_data = resp;
        if (kb_quota_commit(req->broker, req, alter_done) == 0) return KB_PENDING;
        req->handler_data = NULL;
        for (int i = 0; i < n; i++)
            if (!out[i].error_code) out[i].error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    int rc = kp_alter_client_quotas_resp_encode(&req->resp, req->hdr.api_version, resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* DescribeClientQuotas                                                                         */

typedef struct {
    int8_t match_type; /* 0 exact, 1 default, 2 any specified; -1 = no component */
    const char *name;  /* exact */
} dmatch_t;

/* One filter component into want[0] (user) / want[1] (client-id); NULL or a message. */
static const char *component(kb_req_t *req,
                             const kp_describe_client_quotas_req_component_data_t *c,
                             dmatch_t want[2], bool *ip)
{
    int t = kp_str_eq(c->entity_type, TYPE_USER) ? 0 : kp_str_eq(c->entity_type, TYPE_CLIENT) ? 1 : -1;
    if (t < 0 && !kp_str_eq(c->entity_type, TYPE_IP)) return "unknown entity type";
    if (c->match_type < 0 || c->match_type > 2) return "unknown match type";
    if ((c->match_type == 0) != (c->match.len >= 0)) return "a match name goes with match type 0 only";
    if (t < 0) {
        *ip = true;
        return NULL;
    }
    if (want[t].match_type >= 0) return "an entity type appears twice";
    want[t].match_type = c->match_type;
    if (c->match_type == 0) {
        char *nm = kp_arena_alloc(&req->arena, (size_t)c->match.len + 1);
        if (!nm) return "out of memory";
        memcpy(nm, c->match.ptr, (size_t)c->match.len);
        nm[c->match.len] = 0;
        want[t].name = nm;
    }
    return NULL;
}

static bool part_matches(int8_t kind, const char *name, const dmatch_t *w)
{
    if (w->match_type < 0) return true;
    if (kind == KB_QE_NONE) return false;
    if (w->match_type == 1) return kind == KB_QE_DEFAULT;
    if (w->match_type == 0) return kind == KB_QE_NAME && !strcmp(name, w->name);
    return true;
}

/* Entry i of the store as an answer entry. */
static int describe_entry(kb_req_t *req, const kb_quota_entry_t *q, dentry_t *d)
{
    kp_describe_client_quotas_resp_entry_data_init(d);
    d->entity = kp_arena_alloc(&req->arena, 2 * sizeof *d->entity);
    d->values = kp_arena_alloc(&req->arena, KB_QK_N * sizeof *d->values);
    if (!d->entity || !d->values) return K_ERR_NOMEM;
    if (q->e.user_kind) {
        kp_describe_client_quotas_resp_entity_data_init(&d->entity[d->entity_count]);
        d->entity[d->entity_count].entity_type = kp_str(TYPE_USER);
        d->entity[d->entity_count++].entity_name =
            q->e.user_kind == KB_QE_NAME ? kp_str(kb_arena_strdup(&req->arena, q->e.user))
                                         : kp_str(NULL);
    }
    if (q->e.client_kind) {
        kp_describe_client_quotas_resp_entity_data_init(&d->entity[d->entity_count]);
        d->entity[d->entity_count].entity_type = kp_str(TYPE_CLIENT);
        d->entity[d->entity_count++].entity_name =
            q->e.client_kind == KB_QE_NAME ? kp_str(kb_arena_strdup(&req->arena, q->e.client))
                                           : kp_str(NULL);
    }
    for (int k = 0; k < KB_QK_N; k++)
        if (!isnan(q->v[k])) {
            kp_describe_client_quotas_resp_value_data_init(&d->values[d->values_count]);
            d->values[d->values_count].key = kp_str(kb_quota_key_names[k]);
            d->values[d->values_count++].value = q->v[k];
        }
    return 0;
}

int kb_handle_describe_client_quotas(kb_req_t *req)
{
    kp_describe_client_quotas_req_t m;
    kp_describe_client_quotas_req_init(&m);
    if (kp_describe_client_quotas_req_decode(&req->body, req->hdr.api_version, &req->arena,
                                             &m) < 0)
        return K_ERR_MALFORMED;
    kp_describe_client_quotas_resp_t resp;
    kp_describe_client_quotas_resp_init(&resp);
    resp.error_message = kp_str(NULL);
    resp.entries_count = -1;
    dmatch_t want[2] = {{-1, NULL}, {-1, NULL}};
    bool ip = false;
    const char *why = NULL;
    for (int32_t i = 0; i < m.components_count && !why; i++)
        why = component(req, &m.components[i], want, &ip);
    kb_qstore_t *store = kb_quota_store(req->broker);
    if (!kb_authorize_cluster(req, KB_OP_DESCRIBE_CONFIGS)) {
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (why) {
        resp.error_code = KP_ERR_INVALID_REQUEST;
        resp.error_message = kp_str(why);
    } else if (!store) {
        resp.error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else {
        dentry_t *out = store->n ? kp_arena_alloc(&req->arena, (size_t)store->n * sizeof *out)
                                 : NULL;
        if (store->n && !out) return K_ERR_NOMEM;
        int k = 0;
        int ncomp = (want[0].match_type >= 0) + (want[1].match_type >= 0);
        for (int i = 0; i < store->n && !ip; i++) { /* no ip entity is ever stored */
            const kb_quota_entry_t *q = &store->items[i];
            if (m.strict && (q->e.user_kind != 0) + (q->e.client_kind != 0) != ncomp) continue;
            if (!part_matches(q->e.user_kind, q->e.user, &want[0]) ||
                !part_matches(q->e.client_kind, q->e.client, &want[1]))
                continue;
            if (describe_entry(req, q, &out[k++]) < 0) return K_ERR_NOMEM;
        }
        resp.entries = out;
        resp.entries_count = k;
    }
    if (resp.error_code) kb_req_error(req, resp.error_code);
    int rc = kp_describe_client_quotas_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * DescribeAcls (29), CreateAcls (30), DeleteAcls (31), v0-3 (v0 has no pattern type: LITERAL).
 * As in Kafka: without an authorizer every call answers SECURITY_DISABLED; describing needs
 * DESCRIBE on the cluster, creating and deleting need ALTER on the cluster. A change is made
 * on a copy of the bindings, its file written durably off the loop (h_auth_writes.h), and
 * only then applied in memory and answered; if the write fails nothing changes and the client
 * gets UNKNOWN_SERVER_ERROR, so memory and disk never disagree.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_auth_writes.h"
#include "broker/auth/acl.h"
#include "broker/auth/audit.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_create_acls.h"
#include "protocol/gen/kp_delete_acls.h"
#include "protocol/gen/kp_describe_acls.h"
#include "protocol/kp_errors.h"

static kb_acl_filter_t filter_of(int8_t rt, kp_str_t name, int8_t pt, kp_str_t principal,
                                 kp_str_t host, int8_t op, int8_t perm)
{
    kb_acl_filter_t f = {rt, pt, op, perm, NULL, 0, NULL, 0, NULL, 0};
    if (name.len >= 0) f.name = name.ptr ? name.ptr : "", f.name_len = (size_t)name.len;
    if (principal.len >= 0)
        f.principal = principal.ptr ? principal.ptr : "", f.principal_len = (size_t)principal.len;
    if (host.len >= 0) f.host = host.ptr ? host.ptr : "", f.host_len = (size_t)host.len;
    return f;
}

static bool filter_valid(const kb_acl_filter_t *f)
{
    return f->resource_type >= KB_RES_ANY && f->resource_type <= KB_RES_USER &&
           f->pattern_type >= KB_PAT_ANY && f->pattern_type <= KB_PAT_PREFIXED &&
           f->operation >= KB_OP_ANY && f->operation <= KB_OP_DESCRIBE_TOKENS &&
           f->permission >= KB_PERM_ANY && f->permission <= KB_PERM_ALLOW;
}

/* The guard every ACL API shares: 0 to go on, else the Kafka error for the whole request. */
static int16_t guard(kb_req_t *req, int op)
{
    if (!kb_acl_list(req->broker)) return KP_ERR_SECURITY_DISABLED;
    if (!kb_authorize_cluster(req, op)) return KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    return KP_ERR_NONE;
}

/* One binding or filter as the audit trail's detail: "add User:bob ALLOW READ TOPIC:LITERAL:x
 * from *" (codes where Kafka's names are unknown; a null string is "*"). */
static void detail_binding(kb_req_t *req, const char *what, kp_str_t principal, int perm,
                           int op, int res, int pat, kp_str_t name, kp_str_t host)
{
    static const char *const pats[] = {"?", "ANY", "MATCH", "LITERAL", "PREFIXED"};
    const char *opn = kb_acl_op_name(op), *resn = kb_acl_res_name(res);
    char ob[8], rb[8];
    snprintf(ob, sizeof ob, "%d", op);
    snprintf(rb, sizeof rb, "%d", res);
#define STR(x) (int)((x).len < 0 || !(x).ptr ? 1 : (x).len > 300 ? 300 : (x).len), \
               ((x).len < 0 || !(x).ptr ? "*" : (x).ptr)
    kb_audit_detail_add(req, "%s %.*s %s %s %s:%s:%.*s from %.*s", what, STR(principal),
                        perm == KB_PERM_ALLOW ? "ALLOW" : perm == KB_PERM_DENY ? "DENY" : "ANY",
                        opn ? opn : ob, resn ? resn : rb, pat >= 0 && pat <= 4 ? pats[pat] : "?",
                        STR(name), STR(host));
#undef STR
}

static kp_str_t s(const char *c)
{
    return kp_str(c);
}

int kb_handle_describe_acls(kb_req_t *req)
{
    kp_describe_acls_req_t m;
    kp_describe_acls_req_init(&m);
    if (kp_describe_acls_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    kp_describe_acls_resp_t resp;
    kp_describe_acls_resp_init(&resp);
    kb_acl_filter_t f = filter_of(m.resource_type_filter, m.resource_name_filter,
                                  m.pattern_type_filter, m.principal_filter, m.host_filter,
                                  m.operation, m.permission_type);
    resp.error_code = guard(req, KB_OP_DESCRIBE);
    if (resp.error_code == 0 && !filter_valid(&f)) {
        resp.error_code = KP_ERR_INVALID_REQUEST;
        resp.error_message = s("invalid ACL filter");
    }
    kb_acls_t *acls = kb_acl_list(req->broker);
    int n = resp.error_code ? 0 : kb_acls_count(acls);
    kp_describe_acls_resp_describe_acls_resource_t *res =
        n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *res) : NULL;
    kp_describe_acls_resp_acl_description_t *desc =
        n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *desc) : NULL;
    if (n && (!res || !desc)) return K_ERR_NOMEM;
    int nres = 0, used = 0;
    /* Resources first, then each resource's descriptions: ACLs of one resource stay
     * together without sorting. */
    for (int i = 0; i < n; i++) {
        const kb_acl_t *b = kb_acls_at(acls, i);
        if (!kb_acl_filter_matches(&f, b)) continue;
        int r = 0;
        while (r < nres && !(res[r].resource_type == b->resource_type &&
                             res[r].pattern_type == b->pattern_type &&
                             !strcmp(res[r].resource_name.ptr, b->name)))
            r++;
        if (r == nres) {
            kp_describe_acls_resp_describe_acls_resource_init(&res[r]);
            res[r].resource_type = b->resource_type;
            res[r].pattern_type = b->pattern_type;
            res[r].resource_name = s(b->name);
            nres++;
        }
        res[r].acls_count++;
    }
    for (int r = 0; r < nres; r++) {
        res[r].acls = desc + used;
        int k = 0;
        for (int i = 0; i < n && k < res[r].acls_count; i++) {
            const kb_acl_t *b = kb_acls_at(acls, i);
            if (!kb_acl_filter_matches(&f, b) || b->resource_type != res[r].resource_type ||
                b->pattern_type != res[r].pattern_type || strcmp(b->name, res[r].resource_name.ptr))
                continue;
            kp_describe_acls_resp_acl_description_t *d = &res[r].acls[k++];
            kp_describe_acls_resp_acl_description_init(d);
            d->principal = s(b->principal);
            d->host = s(b->host);
            d->operation = b->operation;
            d->permission_type = b->permission;
        }
        used += k;
    }
    resp.resources = res;
    resp.resources_count = nres;
    int rc = kp_describe_acls_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* A wire string as a C string in the arena (NULL for null). */
static char *cstr(kb_req_t *req, kp_str_t v)
{
    if (v.len < 0) return NULL;
    char *c = kp_arena_alloc(&req->arena, (size_t)v.len + 1);
    if (c) {
        if (v.len) memcpy(c, v.ptr, (size_t)v.len);
        c[v.len] = 0;
    }
    return c;
}

static void acls_apply(kb_broker_t *b, void *next)
{
    kb_acls_t *live = kb_acl_list(b);
    if (live) kb_acls_swap(live, next);
}

static void acls_free(void *next)
{
    kb_acls_free(next);
}

/* Hands next (owned from here on) to the ACL file's write queue; done answers. */
static int save_later(kb_req_t *req, kb_acls_t *next, int (*done)(kb_req_t *, void *, bool),
                      void *ud)
{
    char *text = NULL;
    size_t len = 0;
    const char *dir = kb_acls_dir(kb_acl_list(req->broker));
    if (!dir || kb_acls_render(next, &text, &len) < 0) {
        kb_acls_free(next);
        return done(req, ud, false);
    }
    kb_authw_t w = {KB_AUTHW_ACLS, dir, KB_ACL_FILE, text, len, next, acls_free, acls_apply,
                    done, ud};
    return kb_authw_submit(req, &w);
}

/* CreateAcls between its handler and its answer (in the request's arena). */
typedef struct {
    kp_create_acls_req_t m;
    kp_create_acls_resp_t resp;
} create_ctx_t;

static int create_done(kb_req_t *req, void *ud, bool ok)
{
    create_ctx_t *x = ud;
    for (int i = 0; i < x->resp.results_count; i++) {
        kp_create_acls_resp_acl_creation_result_t *o = &x->resp.results[i];
        kp_create_acls_req_acl_creation_t *c = &x->m.creations[i];
        if (o->error_code) continue;
        if (!ok) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            o->error_message = s("the ACL file could not be written");
            continue;
        }
        kb_log(KB_LOG_INFO, "ACL added by %s:%s: %s principal %.*s %s %.*s on %s %s '%.*s'",
               kb_conn_principal(req->conn)->type, kb_conn_principal(req->conn)->name,
               kb_acl_perm_name(c->permission_type), (int)c->principal.len, c->principal.ptr,
               kb_acl_op_name(c->operation), (int)c->host.len, c->host.ptr,
               kb_acl_pattern_name(c->resource_pattern_type),
               kb_acl_res_name(c->resource_type), (int)c->resource_name.len,
               c->resource_name.ptr);
    }
    int rc = kp_create_acls_resp_encode(&req->resp, req->hdr.api_version, &x->resp);
    return rc < 0 ? rc : KB_DONE;
}

/* Adds the valid creations to next, filling out. */
static int add_all(kb_req_t *req, kb_acls_t *next, create_ctx_t *x, int16_t g)
{
    int added = 0;
    for (int i = 0; i < x->resp.results_count; i++) {
        kp_create_acls_req_acl_creation_t *c = &x->m.creations[i];
        kp_create_acls_resp_acl_creation_result_t *o = &x->resp.results[i];
        kp_create_acls_resp_acl_creation_result_init(o);
        o->error_code = g;
        if (g) continue;
        kb_acl_t b = {c->resource_type, c->resource_pattern_type, c->operation,
                      c->permission_type, cstr(req, c->resource_name), cstr(req, c->principal),
                      cstr(req, c->host)};
        char why[160];
        if (kb_acl_validate(&b, why, sizeof why) < 0) {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kb_arena_printf(&req->arena, "%s", why);
            continue;
        }
        int rc = kb_acls_add(next, &b);
        if (rc < 0) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            o->error_message = s(rc == K_ERR_TOOLARGE ? "too many ACLs" : "out of memory");
            continue;
        }
        added++;
    }
    return added;
}

int kb_handle_create_acls(kb_req_t *req)
{
    create_ctx_t *x = kp_arena_alloc(&req->arena, sizeof *x);
    if (!x) return K_ERR_NOMEM;
    kp_create_acls_req_init(&x->m);
    if (kp_create_acls_req_decode(&req->body, req->hdr.api_version, &req->arena, &x->m) < 0)
        return K_ERR_MALFORMED;
    kp_create_acls_req_t *m = &x->m;
    kp_create_acls_resp_init(&x->resp);
    int n = m->creations_count > 0 ? m->creations_count : 0;
    x->resp.results = n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *x->resp.results) : NULL;
    if (n && !x->resp.results) return K_ERR_NOMEM;
    x->resp.results_count = n;
    for (int i = 0; i < n; i++) /* which bindings, for the audit trail's intent */
        detail_binding(req, "add", m->creations[i].principal, m->creations[i].permission_type,
                       m->creations[i].operation, m->creations[i].resource_type,
                       m->creations[i].resource_pattern_type, m->creations[i].resource_name,
                       m->creations[i].host);
    int16_t g = guard(req, KB_OP_ALTER);
    /* The change is computed on a copy of the newest bindings (those queued writes leave). */
    kb_acls_t *next = NULL;
    if (!g) {
        void *latest = kb_authw_latest(req->broker, KB_AUTHW_ACLS);
        next = kb_acls_clone(latest ? latest : kb_acl_list(req->broker)); /* owned here */
        if (!next) return K_ERR_NOMEM;
    }
    if (add_all(req, next, x, g) > 0) return save_later(req, next, create_done, x);
    kb_acls_free(next);
    return create_done(req, x, true);
}

/* Removes what filter f matches from acls (a copy), recording them in fr (arena). */
static int delete_matching(kb_req_t *req, kb_acls_t *acls, const kb_acl_filter_t *f,
                           kp_delete_acls_resp_delete_acls_filter_result_t *fr)
{
    int n = kb_acls_count(acls), k = 0;
    for (int i = 0; i < n; i++)
        k += kb_acl_filter_matches(f, kb_acls_at(acls, i));
    fr->matching_acls = k ? kp_arena_alloc(&req->arena, (size_t)k * sizeof *fr->matching_acls)
                          : NULL;
    if (k && !fr->matching_acls) return K_ERR_NOMEM;
    int j = 0;
    for (int i = 0; i < kb_acls_count(acls);) {
        const kb_acl_t *b = kb_acls_at(acls, i);
        if (!kb_acl_filter_matches(f, b)) {
            i++;
            continue;
        }
        kp_delete_acls_resp_delete_acls_matching_acl_t *ma = &fr->matching_acls[j++];
        kp_delete_acls_resp_delete_acls_matching_acl_init(ma);
        ma->resource_type = b->resource_type;
        ma->resource_name = kp_str(kb_arena_strdup(&req->arena, b->name));
        ma->pattern_type = b->pattern_type;
        ma->principal = kp_str(kb_arena_strdup(&req->arena, b->principal));
        ma->host = kp_str(kb_arena_strdup(&req->arena, b->host));
        ma->operation = b->operation;
        ma->permission_type = b->permission;
        if (!ma->resource_name.ptr || !ma->principal.ptr || !ma->host.ptr) return K_ERR_NOMEM;
        kb_acls_remove_at(acls, i);
    }
    fr->matching_acls_count = j;
    return 0;
}

/* DeleteAcls between its handler and its answer (in the request's arena). */
typedef struct {
    kp_delete_acls_resp_t resp;
    int removed;
} delete_ctx_t;

static int delete_done(kb_req_t *req, void *ud, bool ok)
{
    delete_ctx_t *x = ud;
    for (int i = 0; !ok && i < x->resp.filter_results_count; i++) {
        x->resp.filter_results[i].error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
        x->resp.filter_results[i].error_message = s("the ACL file could not be written");
        x->resp.filter_results[i].matching_acls_count = 0;
    }
    if (ok && x->removed)
        kb_log(KB_LOG_INFO, "%d ACLs deleted by %s:%s", x->removed,
               kb_conn_principal(req->conn)->type, kb_conn_principal(req->conn)->name);
    int rc = kp_delete_acls_resp_encode(&req->resp, req->hdr.api_version, &x->resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_delete_acls(kb_req_t *req)
{
    kp_delete_acls_req_t m;
    kp_delete_acls_req_init(&m);
    if (kp_delete_acls_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    delete_ctx_t *x = kp_arena_alloc(&req->arena, sizeof *x);
    if (!x) return K_ERR_NOMEM;
    kp_delete_acls_resp_init(&x->resp);
    x->removed = 0;
    int n = m.filters_count > 0 ? m.filters_count : 0;
    kp_delete_acls_resp_delete_acls_filter_result_t *out =
        n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *out) : NULL;
    if (n && !out) return K_ERR_NOMEM;
    x->resp.filter_results = out;
    x->resp.filter_results_count = n;
    for (int i = 0; i < n; i++)
        detail_binding(req, "remove matching", m.filters[i].principal_filter,
                       m.filters[i].permission_type, m.filters[i].operation,
                       m.filters[i].resource_type_filter, m.filters[i].pattern_type_filter,
                       m.filters[i].resource_name_filter, m.filters[i].host_filter);
    int16_t g = guard(req, KB_OP_ALTER);
    /* The change is computed on a copy of the newest bindings (those queued writes leave). */
    kb_acls_t *next = NULL;
    if (!g) {
        void *latest = kb_authw_latest(req->broker, KB_AUTHW_ACLS);
        next = kb_acls_clone(latest ? latest : kb_acl_list(req->broker)); /* owned here */
        if (!next) return K_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        kp_delete_acls_req_delete_acls_filter_t *q = &m.filters[i];
        kp_delete_acls_resp_delete_acls_filter_result_init(&out[i]);
        out[i].error_code = g;
        if (g) continue;
        kb_acl_filter_t f = filter_of(q->resource_type_filter, q->resource_name_filter,
                                      q->pattern_type_filter, q->principal_filter,
                                      q->host_filter, q->operation, q->permission_type);
        if (!filter_valid(&f)) {
            out[i].error_code = KP_ERR_INVALID_REQUEST;
            out[i].error_message = s("invalid ACL filter");
            continue;
        }
        if (delete_matching(req, next, &f, &out[i]) < 0) {
            kb_acls_free(next);
            return K_ERR_NOMEM;
        }
        x->removed += out[i].matching_acls_count;
    }
    if (x->removed) return save_later(req, next, delete_done, x);
    kb_acls_free(next);
    return delete_done(req, x, true);
}

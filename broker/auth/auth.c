/* The authorization seam (see auth.h): the broker's installed authorizer, or allow-all. */
#include "broker/auth/auth.h"

#include <string.h>

#include "broker/core/server.h"

void kb_principal_anonymous(kb_principal_t *p)
{
    memset(p, 0, sizeof *p);
    memcpy(p->type, "User", 5);
    memcpy(p->name, "ANONYMOUS", 10);
}

void kb_auth_set_authorizer(kb_broker_t *b, kb_authorizer_fn fn, void *ud)
{
    b->authz = fn;
    b->authz_ud = fn ? ud : NULL;
}

bool kb_authorize(kb_req_t *req, int op, int resource_type, const char *name, size_t len)
{
    kb_broker_t *b = req->broker;
    if (!b || !b->authz) return true; /* no authorizer configured: Kafka allows everything */
    return b->authz(b->authz_ud, req, kb_conn_principal(req->conn), op, resource_type, name, len);
}

bool kb_authorize_str(kb_req_t *req, int op, int resource_type, kp_str_t name)
{
    return kb_authorize(req, op, resource_type, name.ptr ? name.ptr : "",
                        name.len > 0 ? (size_t)name.len : 0);
}

bool kb_authorize_cluster(kb_req_t *req, int op)
{
    return kb_authorize(req, op, KB_RES_CLUSTER, KB_CLUSTER_NAME, sizeof KB_CLUSTER_NAME - 1);
}

int32_t kb_authorized_operations(kb_req_t *req, int resource_type, const char *name, size_t len)
{
    static const int topic_ops[] = {KB_OP_READ,     KB_OP_WRITE,    KB_OP_CREATE,
                                    KB_OP_DELETE,   KB_OP_ALTER,    KB_OP_DESCRIBE,
                                    KB_OP_DESCRIBE_CONFIGS, KB_OP_ALTER_CONFIGS, 0};
    static const int group_ops[] = {KB_OP_READ, KB_OP_DELETE, KB_OP_DESCRIBE, 0};
    static const int cluster_ops[] = {KB_OP_CREATE,         KB_OP_ALTER,
                                      KB_OP_DESCRIBE,       KB_OP_CLUSTER_ACTION,
                                      KB_OP_DESCRIBE_CONFIGS, KB_OP_ALTER_CONFIGS,
                                      KB_OP_IDEMPOTENT_WRITE, 0};
    const int *ops = resource_type == KB_RES_TOPIC     ? topic_ops
                     : resource_type == KB_RES_GROUP   ? group_ops
                     : resource_type == KB_RES_CLUSTER ? cluster_ops
                                                       : NULL;
    int32_t bits = 0;
    kb_broker_t *b = req->broker;
    bool was = b ? b->authz_probe : false;
    if (b) b->authz_probe = true; /* questions, not actions: the audit trail skips them */
    for (int i = 0; ops && ops[i]; i++)
        if (kb_authorize(req, ops[i], resource_type, name, len))
            bits |= (int32_t)1 << ops[i];
    if (b) b->authz_probe = was;
    return bits;
}

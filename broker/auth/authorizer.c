/*
 * The authorizer subsystem: with authorizer.class.name set (any value: a copied Kafka
 * server.properties names org.apache.kafka.metadata.authorizer.StandardAuthorizer or
 * kafka.security.authorizer.AclAuthorizer), the ACLs are loaded from the data dir and the
 * decision of acl.c is installed as the broker's authorizer (auth.h). Without it nothing is
 * installed and Kafka's rule holds: everything is allowed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/acl.h"

typedef struct {
    kb_acls_t *acls; /* owned */
    const kb_config_t *cfg;
} authz_t;

static authz_t *state_of(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_acl_subsys) : NULL;
    return slot ? *slot : NULL;
}

kb_acls_t *kb_acl_list(kb_broker_t *b)
{
    authz_t *st = state_of(b);
    return st ? st->acls : NULL;
}

/* "1.2.3.4:5678" → "1.2.3.4"; "[::1]:5678" → "::1". */
static void host_of(const char *peer, char *out, size_t cap)
{
    const char *s = peer, *e = strrchr(peer, ':');
    if (*s == '[') {
        s++;
        e = strchr(s, ']');
    }
    size_t n = e && e > s ? (size_t)(e - s) : strlen(s);
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

static bool authorize(void *ud, kb_req_t *req, const kb_principal_t *who, int op,
                      int resource_type, const char *name, size_t len)
{
    authz_t *st = ud;
    char principal[300], host[80];
    snprintf(principal, sizeof principal, "%s:%s", who->type, who->name);
    host_of(kb_conn_peer(req->conn), host, sizeof host);
    bool ok = kb_acls_authorize(st->acls, st->cfg->super_users,
                                st->cfg->allow_everyone_if_no_acl_found, principal, host, op,
                                resource_type, name, len);
    if (!ok)
        kb_log(KB_LOG_INFO, "denied: %s from %s %s on %s '%.*s'", principal, host,
               kb_acl_op_name(op) ? kb_acl_op_name(op) : "?",
               kb_acl_res_name(resource_type) ? kb_acl_res_name(resource_type) : "?",
               (int)(len > 200 ? 200 : len), name);
    return ok;
}

static int acl_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    if (!cfg->authorizer_class_name[0]) return 0;
    authz_t *st = calloc(1, sizeof *st); /* owned by the slot until acl_close */
    if (!st) return K_ERR_NOMEM;
    char err[512] = "";
    int rc = kb_acls_open(cfg->log_dirs[0], &st->acls, err, sizeof err);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "ACLs: %s", err);
        free(st);
        return rc;
    }
    st->cfg = cfg;
    *kb_broker_slot(b, &kb_acl_subsys) = st;
    kb_auth_set_authorizer(b, authorize, st);
    kb_log(KB_LOG_INFO, "authorizer on (%s): %d ACLs, super.users '%s', "
           "allow.everyone.if.no.acl.found=%s", cfg->authorizer_class_name,
           kb_acls_count(st->acls), cfg->super_users,
           cfg->allow_everyone_if_no_acl_found ? "true" : "false");
    return 0;
}

static void acl_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_acl_subsys);
    authz_t *st = slot ? *slot : NULL;
    if (!st) return;
    kb_auth_set_authorizer(b, NULL, NULL);
    kb_acls_free(st->acls);
    free(st);
    *slot = NULL;
}

const kb_subsys_t kb_acl_subsys = {
    .name = "acl",
    .init = acl_init,
    .close = acl_close,
};

/*
 * The broker's subsystems, in start order (see broker/core/subsys.h). A new room with state on
 * the loop adds its kb_subsys_t here; close runs in reverse order.
 */
#include "broker/core/subsys.h"

extern const kb_subsys_t kb_counters_subsys; /* broker/core/counters.c: metrics counters */
extern const kb_subsys_t kb_acl_subsys;
extern const kb_subsys_t kb_audit_subsys; /* broker/auth/audit.c: the __audit trail */   /* broker/auth/authorizer.c: ACLs, authorizer */
extern const kb_subsys_t kb_tls_subsys;   /* broker/net/tls.c: certificates, SIGHUP reload */
extern const kb_subsys_t kb_sasl_subsys;  /* broker/auth/sasl.c: SCRAM credentials, mechanisms */
extern const kb_subsys_t kb_quota_subsys; /* broker/quota/quota.c: client quotas */
extern const kb_subsys_t kb_api_subsys;   /* broker/api/h_common.c: fetch waiters, producer ids */
extern const kb_subsys_t kb_group_subsys; /* broker/api/h_group.c: coordinator, offsets log */
extern const kb_subsys_t kb_dynconf_subsys; /* broker/api/h_broker_configs.c: dynamic configs */
extern const kb_subsys_t kb_http_subsys;  /* broker/http/http_server.c: HTTP listeners */
/* broker/metrics/metrics.c: /metrics, dashboard, health (after http: it serves on a listener) */
extern const kb_subsys_t kb_metrics_subsys;
/* broker/uplink/uplink.c: store and forward (after metrics: GET /uplink on its listener) */
extern const kb_subsys_t kb_uplink_subsys;
/* broker/registry/reg_subsys.c: schema registry (after http: it serves on an HTTP listener) */
extern const kb_subsys_t kb_registry_subsys;

const kb_subsys_t *const kb_subsystems[] = {
    &kb_counters_subsys,
    &kb_dynconf_subsys, /* before the others: they start with the dynamic configs in force */
    &kb_tls_subsys,
    &kb_sasl_subsys,
    &kb_acl_subsys,
    &kb_audit_subsys, /* after acl: it wraps the authorizer acl installed */
    &kb_api_subsys,
    &kb_group_subsys,
    &kb_http_subsys, /* before every room that registers HTTP routes */
    &kb_metrics_subsys,
    &kb_quota_subsys, /* after metrics: its throttle families go on /metrics */
    &kb_uplink_subsys,
    &kb_registry_subsys,
    NULL,
};

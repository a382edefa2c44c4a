/* The registry subsystem (see reg_subsys.h); the HTTP glue is reg_http.c. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry/reg_int.h"
#include "broker/registry/reg_subsys.h"

kb_registry_t *kb_registry_of(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_registry_subsys) : NULL;
    return slot ? *slot : NULL;
}

static int registry_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    void **slot = kb_broker_slot(b, &kb_registry_subsys);
    if (!slot)
        return K_ERR_INVAL;
    if (!cfg->schema_registry_listeners[0])
        return 0; /* off */
    kb_registry_t *r;
    int rc = kb_registry_open(kb_broker_store(b), &r);
    if (rc < 0)
        return rc;
    rc = reg_http_start(b, r, cfg->schema_registry_listeners, cfg->schema_registry_auth == 1);
    if (rc < 0) {
        kb_registry_close(r);
        return rc;
    }
    *slot = r;
    kb_log(KB_LOG_INFO, "schema registry listening on %s%s", cfg->schema_registry_listeners,
           cfg->schema_registry_auth == 1 ? " (basic auth: broker users)" : "");
    return 0;
}

static void registry_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_registry_subsys);
    if (!slot || !*slot)
        return;
    kb_registry_close(*slot);
    *slot = NULL;
}

static void registry_topic_deleted(kb_broker_t *b, const char *topic)
{
    kb_registry_t *r = kb_registry_of(b);
    if (r && !strcmp(topic, REG_TOPIC))
        reg_store_lost(r);
}

const kb_subsys_t kb_registry_subsys = {
    .name = "registry",
    .init = registry_init,
    .close = registry_close,
    .topic_deleted = registry_topic_deleted,
};

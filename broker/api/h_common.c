/*
 * The data-path handlers' per-broker state and their subsystem (see h_common.h).
 * Loop thread only.
 */
#include "broker/api/h_common.h"

#include <stdlib.h>

kb_hstate_t *kb_hstate_find(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_api_subsys) : NULL;
    return slot ? *slot : NULL;
}

kb_hstate_t *kb_hstate(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_api_subsys) : NULL;
    if (!slot)
        return NULL;
    if (*slot)
        return *slot;
    kb_hstate_t *hs = calloc(1, sizeof *hs); /* owned by the broker's api slot until close */
    if (!hs)
        return NULL;
    hs->broker = b;
    *slot = hs;
    return hs;
}

static int api_init(kb_broker_t *b)
{
    return kb_hstate(b) ? 0 : K_ERR_NOMEM;
}

static void api_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_api_subsys);
    kb_hstate_t *hs = slot ? *slot : NULL;
    if (!hs)
        return;
    kb_fetch_close_all(hs); /* answers parked fetches; their timers close on the loop */
    kb_pid_close(hs);
    *slot = NULL;
    free(hs);
}

const kb_subsys_t kb_api_subsys = {
    .name = "api",
    .init = api_init,
    .close = api_close,
};

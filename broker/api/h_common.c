/*
 * Handler state registry and the kb_handlers_init/kb_handlers_close hooks (see h_common.h).
 * Loop thread only.
 */
#include "broker/api/h_common.h"

#include <stdlib.h>

/* All brokers' handler states. A process normally runs one broker, so a list is plenty. */
static kb_hstate_t *states;

kb_hstate_t *kb_hstate_find(kb_broker_t *b)
{
    for (kb_hstate_t *hs = states; hs; hs = hs->next)
        if (hs->broker == b)
            return hs;
    return NULL;
}

kb_hstate_t *kb_hstate(kb_broker_t *b)
{
    kb_hstate_t *hs = kb_hstate_find(b);
    if (hs)
        return hs;
    hs = calloc(1, sizeof *hs); /* owned by the registry until close */
    if (!hs)
        return NULL;
    hs->broker = b;
    hs->next = states;
    states = hs;
    return hs;
}

int kb_handlers_init(kb_broker_t *b)
{
    if (!kb_hstate(b))
        return K_ERR_NOMEM;
    if (kb_groups_init)
        return kb_groups_init(b);
    return 0;
}

void kb_handlers_close(kb_broker_t *b)
{
    if (kb_groups_close)
        kb_groups_close(b);
    for (kb_hstate_t **pp = &states; *pp; pp = &(*pp)->next) {
        kb_hstate_t *hs = *pp;
        if (hs->broker != b)
            continue;
        kb_fetch_close_all(hs); /* answers parked fetches; their timers close on the loop */
        kb_pid_close(hs);
        *pp = hs->next;
        free(hs);
        return;
    }
}

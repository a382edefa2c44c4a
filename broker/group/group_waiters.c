/* Held JoinGroup/SyncGroup requests whose client went away (see kb_group_waiter_replace). */
#include "broker/group/group.h"
#include "broker/group/group_int.h"

void kb_group_waiter_replace(kb_gcoord_t *c, void *waiter, void *replacement)
{
    kb_gmap_ent_t *e = kb_gmap_next(&c->groups, NULL);
    for (; e; e = kb_gmap_next(&c->groups, e)) {
        kb_group_t *g = e->val;
        for (kb_gmember_t *m = g->members; m; m = m->next) {
            if (m->join_waiter == waiter) m->join_waiter = replacement;
            if (m->sync_waiter == waiter) m->sync_waiter = replacement;
        }
    }
}

/*
 * Group coordinator, rebalance half (see group.h): the join phase and its completion, protocol
 * selection, member removal, Heartbeat, LeaveGroup, DeleteGroups and the per-group deadlines
 * (session expiry, join and sync phase timeouts). Kafka's GroupCoordinator is the reference.
 */
#include "broker/group/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group/group_int.h"
#include "protocol/k_status.h"
#include "protocol/kp_errors.h"

/* ------------------------------------------------------------------------------------------ */
/* Rebalance                                                                                   */

/* Every member that was waiting for its assignment is told (error or not), then heartbeats
 * restart: Kafka's propagateAssignment. */
void kb_group_propagate_assignment(kb_gcoord_t *c, kb_group_t *g, int16_t err, kb_gtime_t now)
{
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (m->sync_waiter) {
            kb_gsync_respond(c, g, m, err);
            kb_gmember_hb_schedule(m, now, m->session_timeout_ms);
        }
}

void kb_group_prepare_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    if (g->state == KB_GROUP_COMPLETING_REBALANCE) {
        for (kb_gmember_t *m = g->members; m; m = m->next) {
            free(m->assignment);
            m->assignment = NULL;
            m->assignment_len = 0;
        }
        kb_group_propagate_assignment(c, g, KP_ERR_REBALANCE_IN_PROGRESS, now);
    }
    g->sync_deadline = KB_GROUP_NO_DEADLINE;
    int32_t rt = 0;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (m->rebalance_timeout_ms > rt)
            rt = m->rebalance_timeout_ms;
    g->rebalance_timeout_ms = rt;
    if (g->state == KB_GROUP_EMPTY && c->opts.initial_rebalance_delay_ms > 0) {
        int32_t d = c->opts.initial_rebalance_delay_ms;
        g->initial_delay = true;
        g->new_member_added = false;
        g->init_delay_ms = d;
        g->init_remaining_ms = rt - d > 0 ? rt - d : 0;
        g->join_deadline = now.mono + d;
    } else {
        g->initial_delay = false;
        g->join_deadline = now.mono + rt;
    }
    kb_group_transition(g, KB_GROUP_PREPARING_REBALANCE, now);
    kb_group_try_complete_join(c, g, now);
}

void kb_group_maybe_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    if (g->state == KB_GROUP_STABLE || g->state == KB_GROUP_COMPLETING_REBALANCE ||
        g->state == KB_GROUP_EMPTY)
        kb_group_prepare_rebalance(c, g, now);
}

static bool supported_by_all(const kb_group_t *g, const char *name)
{
    for (kb_gmember_t *m = g->members; m; m = m->next) {
        bool has = false;
        for (int32_t j = 0; j < m->n_protocols && !has; j++)
            has = strcmp(m->protocols[j].name, name) == 0;
        if (!has)
            return false;
    }
    return true;
}

/* A member's vote: its most preferred protocol among those every member supports. */
static const char *member_vote(const kb_group_t *g, const kb_gmember_t *m)
{
    for (int32_t i = 0; i < m->n_protocols; i++)
        if (supported_by_all(g, m->protocols[i].name))
            return m->protocols[i].name;
    return NULL;
}

/* Protocol of the next generation: most votes wins; ties go to the earliest voter's choice. */
const char *kb_group_select_protocol(const kb_group_t *g)
{
    const char *best = NULL;
    int32_t best_votes = 0;
    for (kb_gmember_t *v = g->members; v; v = v->next) {
        const char *vote = member_vote(g, v);
        if (!vote)
            continue;
        int32_t votes = 0;
        for (kb_gmember_t *w = g->members; w; w = w->next) {
            const char *other = member_vote(g, w);
            votes += other && strcmp(other, vote) == 0;
        }
        if (votes > best_votes) {
            best = vote;
            best_votes = votes;
        }
    }
    return best;
}

/* Whether a joining member's protocols can live with the group's (Kafka's supportsProtocols). */
bool kb_group_supports_protocols(const kb_group_t *g, kp_str_t type, const kb_gproto_in_t *p,
                               int32_t n)
{
    if (g->state == KB_GROUP_EMPTY)
        return type.len > 0 && n > 0;
    if (!g->protocol_type || !kb_gstreq(g->protocol_type, type))
        return false;
    for (int32_t i = 0; i < n; i++) {
        int32_t count = 0;
        for (kb_gmember_t *m = g->members; m; m = m->next)
            for (int32_t j = 0; j < m->n_protocols; j++)
                if (kb_gstreq(m->protocols[j].name, p[i].name)) {
                    count++;
                    break;
                }
        if (count == g->n_members)
            return true;
    }
    return false;
}

static void init_next_generation(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    (void)c;
    g->generation_id++;
    free(g->protocol_name);
    g->protocol_name = NULL;
    if (g->n_members) {
        const char *p = kb_group_select_protocol(g);
        g->protocol_name = p ? strdup(p) : NULL;
        kb_group_transition(g, KB_GROUP_COMPLETING_REBALANCE, now);
    } else {
        kb_group_transition(g, KB_GROUP_EMPTY, now);
    }
    kb_group_subscriptions_update(g);
    for (kb_gmember_t *m = g->members; m; m = m->next)
        m->pending_sync = false;
}

static void remove_member(kb_group_t *g, kb_gmember_t *m)
{
    kb_gmember_t **pp = &g->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    g->n_members--;
    if (kb_group_is_leader(g, m))
        kb_group_set_leader(g, g->members ? g->members->member_id : NULL);
    kb_gmember_free(m);
}

static void complete_join(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    /* Dynamic members that did not rejoin in time are out; static ones keep their place. */
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        if (!m->join_waiter && !m->instance_id) {
            if (m->sync_waiter)
                kb_gsync_respond(c, g, m, KP_ERR_UNKNOWN_MEMBER_ID);
            remove_member(g, m);
        }
        m = n;
    }
    g->join_deadline = KB_GROUP_NO_DEADLINE;

    /* Kafka's maybeElectNewJoinedLeader: the leader must be one that rejoined. */
    bool elected = false;
    if (g->leader_id) {
        kb_gmember_t *l = kb_group_member(g, g->leader_id, (int32_t)strlen(g->leader_id));
        if (l && l->join_waiter) {
            elected = true;
        } else {
            for (kb_gmember_t *x = g->members; x && !elected; x = x->next)
                if (x->join_waiter) {
                    kb_group_set_leader(g, x->member_id);
                    elected = true;
                }
        }
    }
    if (!elected && g->n_members) {
        /* Nobody rejoined (only static members remain): wait another rebalance timeout for
         * them to rejoin or for their sessions to expire. */
        g->initial_delay = false;
        g->join_deadline = now.mono + g->rebalance_timeout_ms;
        return;
    }
    init_next_generation(c, g, now);
    if (g->state == KB_GROUP_EMPTY) {
        kb_group_store(c, g);
        return;
    }
    for (m = g->members; m; m = m->next) {
        kb_gjoin_respond(c, g, m, kb_group_is_leader(g, m), g->leader_id, false);
        kb_gmember_hb_schedule(m, now, m->session_timeout_ms);
        m->is_new = false;
        m->pending_sync = true;
    }
    g->sync_deadline = now.mono + g->rebalance_timeout_ms;
}

void kb_group_try_complete_join(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    if (g->state == KB_GROUP_PREPARING_REBALANCE && !g->initial_delay && kb_group_all_joined(g))
        complete_join(c, g, now);
}

/* A member leaves (LeaveGroup, session expiry): Kafka's removeMemberAndUpdateGroup. */
static void remove_member_and_update(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                     kb_gtime_t now)
{
    if (m->join_waiter) {
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        kb_gjoin_error(c, w, "", KP_ERR_UNKNOWN_MEMBER_ID);
    }
    if (m->sync_waiter)
        kb_gsync_respond(c, g, m, KP_ERR_UNKNOWN_MEMBER_ID);
    remove_member(g, m);
    switch (g->state) {
    case KB_GROUP_STABLE:
    case KB_GROUP_COMPLETING_REBALANCE: kb_group_maybe_rebalance(c, g, now); break;
    case KB_GROUP_PREPARING_REBALANCE: kb_group_try_complete_join(c, g, now); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Heartbeat, LeaveGroup, DeleteGroups                                                         */

int16_t kb_group_heartbeat(kb_gcoord_t *c, kp_str_t group_id, int32_t generation_id,
                           kp_str_t member_id, kp_str_t group_instance_id, kb_gtime_t now)
{
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (g->state == KB_GROUP_DEAD)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (kb_group_static_fenced(g, group_instance_id, member_id))
        return KP_ERR_FENCED_INSTANCE_ID;
    kb_gmember_t *m = kb_group_member_find(g, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (generation_id != g->generation_id)
        return KP_ERR_ILLEGAL_GENERATION;
    switch (g->state) {
    case KB_GROUP_EMPTY: return KP_ERR_UNKNOWN_MEMBER_ID;
    case KB_GROUP_PREPARING_REBALANCE:
        kb_gmember_hb_schedule(m, now, m->session_timeout_ms);
        return KP_ERR_REBALANCE_IN_PROGRESS;
    case KB_GROUP_COMPLETING_REBALANCE:
    case KB_GROUP_STABLE: kb_gmember_hb_schedule(m, now, m->session_timeout_ms); return KP_ERR_NONE;
    default: return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    }
}

int16_t kb_group_leave_check(kb_gcoord_t *c, kp_str_t group_id)
{
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (g && g->state == KB_GROUP_DEAD)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    return KP_ERR_NONE;
}

int16_t kb_group_leave_member(kb_gcoord_t *c, kp_str_t group_id, kp_str_t member_id,
                              kp_str_t group_instance_id, kb_gtime_t now)
{
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    kb_gmember_t *m;
    int i;
    if (member_id.len <= 0) {
        /* Administrative removal of a static member by instance id. */
        m = kb_group_static_member(g, group_instance_id);
        if (!m)
            return KP_ERR_UNKNOWN_MEMBER_ID;
        remove_member_and_update(c, g, m, now);
        return KP_ERR_NONE;
    }
    if ((i = kb_group_pending_find(g, member_id)) >= 0) {
        kb_group_pending_remove_at(g, i);
        kb_group_try_complete_join(c, g, now);
        return KP_ERR_NONE;
    }
    if (kb_group_static_fenced(g, group_instance_id, member_id))
        return KP_ERR_FENCED_INSTANCE_ID;
    if (!(m = kb_group_member_find(g, member_id)))
        return KP_ERR_UNKNOWN_MEMBER_ID;
    remove_member_and_update(c, g, m, now);
    return KP_ERR_NONE;
}

int16_t kb_group_delete(kb_gcoord_t *c, kp_str_t group_id)
{
    if (group_id.len < 0)
        return KP_ERR_INVALID_GROUP_ID;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g || g->state == KB_GROUP_DEAD)
        return KP_ERR_GROUP_ID_NOT_FOUND;
    if (g->state != KB_GROUP_EMPTY || kb_group_has_cmembers(g))
        return KP_ERR_NON_EMPTY_GROUP;
    g->state = KB_GROUP_DEAD;
    kb_group_store(c, g);
    kb_group_destroy(c, g);
    return KP_ERR_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Deadlines                                                                                   */

static void poll_members(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    for (int32_t i = 0; i < g->n_pending;) {
        if (now.mono >= g->pending[i].deadline) {
            kb_group_pending_remove_at(g, i);
            kb_group_try_complete_join(c, g, now);
        } else {
            i++;
        }
    }
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        if (now.mono >= m->hb_deadline) {
            if (!m->is_new && (m->join_waiter || m->sync_waiter)) {
                /* Waiting in a rebalance counts as alive; heartbeats restart after it. */
                m->hb_deadline = KB_GROUP_NO_DEADLINE;
            } else {
                remove_member_and_update(c, g, m, now);
                /* The walk restarts: removal may have completed a join and changed the list. */
                n = g->members;
            }
        }
        m = n;
    }
}

static void poll_join(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    if (g->state != KB_GROUP_PREPARING_REBALANCE || now.mono < g->join_deadline)
        return;
    if (g->initial_delay && g->new_member_added && g->init_remaining_ms != 0) {
        /* Members keep arriving: extend by another delay step, within the rebalance timeout. */
        int32_t prev = g->init_delay_ms;
        int32_t d = c->opts.initial_rebalance_delay_ms;
        g->new_member_added = false;
        g->init_delay_ms = d < g->init_remaining_ms ? d : g->init_remaining_ms;
        g->init_remaining_ms = g->init_remaining_ms - prev > 0 ? g->init_remaining_ms - prev : 0;
        g->join_deadline = now.mono + g->init_delay_ms;
        return;
    }
    g->initial_delay = false;
    complete_join(c, g, now);
}

static void poll_sync(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    if (now.mono < g->sync_deadline)
        return;
    g->sync_deadline = KB_GROUP_NO_DEADLINE;
    if (g->state != KB_GROUP_COMPLETING_REBALANCE && g->state != KB_GROUP_STABLE)
        return;
    bool removed = false;
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        if (m->pending_sync) {
            if (m->join_waiter) {
                void *w = m->join_waiter;
                m->join_waiter = NULL;
                kb_gjoin_error(c, w, "", KP_ERR_UNKNOWN_MEMBER_ID);
            }
            remove_member(g, m);
            removed = true;
        }
        m = n;
    }
    if (removed)
        kb_group_prepare_rebalance(c, g, now);
}

void kb_group_poll_deadlines(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    poll_members(c, g, now);
    poll_join(c, g, now);
    poll_sync(c, g, now);
}

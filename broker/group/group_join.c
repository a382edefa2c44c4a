/*
 * Group coordinator, membership requests (see group.h): JoinGroup (new, known, pending and
 * static members) and SyncGroup (the leader's assignments handed out). The state changes they
 * cause go through group_rebalance.c.
 */
#include "broker/group/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group/cgroup.h"
#include "broker/group/group_int.h"
#include "protocol/k_status.h"
#include "protocol/kp_errors.h"

/* ------------------------------------------------------------------------------------------ */
/* JoinGroup                                                                                   */

static char *new_member_id(kb_gcoord_t *c, kp_str_t client_id)
{
    uint8_t r[16];
    for (int i = 0; i < 16; i += 8) {
        /* xorshift64*: ids must differ, not resist guessing (no auth on group ids anyway) */
        c->rng ^= c->rng >> 12;
        c->rng ^= c->rng << 25;
        c->rng ^= c->rng >> 27;
        uint64_t v = c->rng * 2685821657736338717ULL;
        memcpy(r + i, &v, 8);
    }
    int cl = client_id.len > 0 ? client_id.len : 0;
    if (cl > 200)
        cl = 200;
    char *s = malloc((size_t)cl + 40);
    if (!s)
        return NULL;
    int n = snprintf(s, (size_t)cl + 40, "%.*s-", cl, cl ? client_id.ptr : "");
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[n++] = '-';
        s[n++] = hex[r[i] >> 4];
        s[n++] = hex[r[i] & 15];
    }
    s[n] = 0;
    return s;
}

static kb_gmember_t *member_new(const kb_join_params_t *p, const char *member_id)
{
    kb_gmember_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->member_id = strdup(member_id);
    m->instance_id = kb_gstrdup_len(p->group_instance_id, &m->instance_id_len);
    m->client_id = kb_gstrdup_len(p->client_id.len < 0 ? kp_str("") : p->client_id,
                                  &m->client_id_len);
    m->client_host = kb_gstrdup_len(p->client_host.len < 0 ? kp_str("") : p->client_host,
                                    &m->client_host_len);
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    if (!m->member_id || (p->group_instance_id.len >= 0 && !m->instance_id) || !m->client_id ||
        !m->client_host || kb_gprotos_copy(p->protocols, p->n_protocols, &m->protocols)) {
        kb_gmember_free(m);
        return NULL;
    }
    m->n_protocols = p->n_protocols;
    m->hb_deadline = KB_GROUP_NO_DEADLINE;
    return m;
}

static void add_member_and_rebalance(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                                     const char *member_id, kb_gtime_t now, void *waiter)
{
    kb_gmember_t *m = member_new(p, member_id);
    if (!m) {
        kb_gjoin_error(c, waiter, member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (g->state == KB_GROUP_PREPARING_REBALANCE && g->generation_id == 0)
        g->new_member_added = true;
    if (!g->n_members) {
        char *t = kb_gstrdup(p->protocol_type);
        if (t) {
            free(g->protocol_type);
            g->protocol_type = t;
        }
    }
    if (!g->leader_id)
        kb_group_set_leader(g, m->member_id);
    kb_gmember_t **pp = &g->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    g->n_members++;
    m->join_waiter = waiter;
    m->is_new = true;
    int i = kb_group_pending_find(g, kp_str(member_id));
    if (i >= 0)
        kb_group_pending_remove_at(g, i);
    /* New members cannot heartbeat yet; their join is bounded separately (Kafka). */
    kb_gmember_hb_schedule(m, now, KB_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS);
    kb_group_maybe_rebalance(c, g, now);
}

static int update_member(kb_gmember_t *m, const kb_join_params_t *p, void *waiter)
{
    kb_gproto_t *np;
    if (kb_gprotos_copy(p->protocols, p->n_protocols, &np))
        return K_ERR_NOMEM;
    kb_gprotos_free(m->protocols, m->n_protocols);
    m->protocols = np;
    m->n_protocols = p->n_protocols;
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    m->join_waiter = waiter;
    return 0;
}

static void update_member_and_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                        const kb_join_params_t *p, kb_gtime_t now, void *waiter)
{
    if (m->join_waiter) {
        /* The same member joined twice (a retry): the older request loses. */
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        kb_gjoin_error(c, w, m->member_id, KP_ERR_UNKNOWN_MEMBER_ID);
    }
    if (update_member(m, p, waiter)) {
        m->join_waiter = NULL;
        kb_gjoin_error(c, waiter, m->member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    kb_group_maybe_rebalance(c, g, now);
}

/* A static member rejoins with an unknown member id: it takes over its old slot under a new
 * id, and the old id is fenced (Kafka's updateStaticMemberAndRebalance). */
static void static_member_rejoin(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                 const kb_join_params_t *p, char *new_id, kb_gtime_t now,
                                 void *waiter)
{
    char *old_leader = g->leader_id ? strdup(g->leader_id) : NULL;
    if (m->join_waiter) {
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        kb_gjoin_error(c, w, m->member_id, KP_ERR_FENCED_INSTANCE_ID);
    }
    if (m->sync_waiter)
        kb_gsync_respond(c, g, m, KP_ERR_FENCED_INSTANCE_ID);
    bool was_leader = kb_group_is_leader(g, m);
    free(m->member_id);
    m->member_id = new_id;
    if (was_leader)
        kb_group_set_leader(g, new_id);
    kb_gmember_hb_schedule(m, now, m->session_timeout_ms);

    char *old_proto = g->protocol_name ? strdup(g->protocol_name) : NULL;
    if (update_member(m, p, waiter)) {
        kb_gjoin_error(c, waiter, new_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        m->join_waiter = NULL;
        free(old_leader);
        free(old_proto);
        return;
    }
    switch (g->state) {
    case KB_GROUP_STABLE: {
        const char *next = kb_group_select_protocol(g);
        if (old_proto && next && strcmp(old_proto, next) == 0) {
            kb_group_store(c, g);
            bool lead = kb_group_is_leader(g, m);
            if (p->supports_skip_assignment)
                kb_gjoin_respond(c, g, m, lead, g->leader_id, lead);
            else
                kb_gjoin_respond(c, g, m, false, old_leader, false);
        } else {
            kb_group_maybe_rebalance(c, g, now);
        }
        break;
    }
    case KB_GROUP_COMPLETING_REBALANCE: kb_group_prepare_rebalance(c, g, now); break;
    default: break; /* PreparingRebalance: answered when the join phase ends */
    }
    free(old_leader);
    free(old_proto);
}

static void join_new_member(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                            kb_gtime_t now, void *waiter)
{
    if (g->state == KB_GROUP_DEAD) {
        kb_gjoin_error(c, waiter, "", KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!kb_group_supports_protocols(g, p->protocol_type, p->protocols, p->n_protocols)) {
        kb_gjoin_error(c, waiter, "", KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    char *id = new_member_id(c, p->client_id);
    if (!id) {
        kb_gjoin_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (p->group_instance_id.len >= 0) {
        kb_gmember_t *old = kb_group_static_member(g, p->group_instance_id);
        if (old) {
            static_member_rejoin(c, g, old, p, id, now, waiter);
            return;
        }
        add_member_and_rebalance(c, g, p, id, now, waiter);
    } else if (p->require_known_member_id) {
        if (kb_group_pending_add(g, id, now.mono + p->session_timeout_ms))
            kb_gjoin_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        else
            kb_gjoin_error(c, waiter, id, KP_ERR_MEMBER_ID_REQUIRED);
    } else {
        add_member_and_rebalance(c, g, p, id, now, waiter);
    }
    free(id);
}

static void join_current_member(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                                kb_gtime_t now, void *waiter)
{
    if (g->state == KB_GROUP_DEAD) {
        kb_gjoin_error(c, waiter, "", KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    char *mid = kb_gstrdup(p->member_id);
    if (!mid) {
        kb_gjoin_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (!kb_group_supports_protocols(g, p->protocol_type, p->protocols, p->n_protocols)) {
        kb_gjoin_error(c, waiter, mid, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    } else if (kb_group_pending_find(g, p->member_id) >= 0) {
        add_member_and_rebalance(c, g, p, mid, now, waiter);
    } else if (kb_group_static_fenced(g, p->group_instance_id, p->member_id)) {
        kb_gjoin_error(c, waiter, mid, KP_ERR_FENCED_INSTANCE_ID);
    } else {
        kb_gmember_t *m = kb_group_member_find(g, p->member_id);
        if (!m ||
            (p->group_instance_id.len >= 0 && !kb_group_static_member(g, p->group_instance_id))) {
            kb_gjoin_error(c, waiter, mid, KP_ERR_UNKNOWN_MEMBER_ID);
        } else {
            switch (g->state) {
            case KB_GROUP_PREPARING_REBALANCE:
                update_member_and_rebalance(c, g, m, p, now, waiter);
                break;
            case KB_GROUP_COMPLETING_REBALANCE:
                if (kb_gprotos_match(m, p->protocols, p->n_protocols)) {
                    /* Lost the join response: hand it out again. */
                    if (m->join_waiter) {
                        void *w = m->join_waiter;
                        m->join_waiter = NULL;
                        kb_gjoin_error(c, w, mid, KP_ERR_UNKNOWN_MEMBER_ID);
                    }
                    m->join_waiter = waiter;
                    kb_gjoin_respond(c, g, m, kb_group_is_leader(g, m), g->leader_id, false);
                } else {
                    update_member_and_rebalance(c, g, m, p, now, waiter);
                }
                break;
            case KB_GROUP_STABLE:
                if (kb_group_is_leader(g, m) ||
                    !kb_gprotos_match(m, p->protocols, p->n_protocols)) {
                    /* The leader rejoining forces a rebalance (e.g. topic metadata changed). */
                    update_member_and_rebalance(c, g, m, p, now, waiter);
                } else {
                    m->join_waiter = waiter;
                    kb_gjoin_respond(c, g, m, false, g->leader_id, false);
                }
                break;
            default:
                kb_gjoin_error(c, waiter, mid, KP_ERR_UNKNOWN_MEMBER_ID);
                break;
            }
        }
    }
    free(mid);
}

void kb_group_join(kb_gcoord_t *c, const kb_join_params_t *in, kb_gtime_t now, void *waiter)
{
    kb_join_params_t p = *in;
    if (p.rebalance_timeout_ms < 0)
        p.rebalance_timeout_ms = p.session_timeout_ms;
    if (p.group_id.len <= 0) {
        kb_gjoin_error(c, waiter, "", KP_ERR_INVALID_GROUP_ID);
        return;
    }
    if (p.session_timeout_ms < c->opts.min_session_timeout_ms ||
        p.session_timeout_ms > c->opts.max_session_timeout_ms) {
        char *mid = kb_gstrdup(p.member_id.len < 0 ? kp_str("") : p.member_id);
        kb_gjoin_error(c, waiter, mid ? mid : "", KP_ERR_INVALID_SESSION_TIMEOUT);
        free(mid);
        return;
    }
    bool unknown = p.member_id.len <= 0;
    kb_group_t *g = kb_gcoord_find(c, p.group_id);
    if (!g) {
        if (!unknown) {
            char *mid = kb_gstrdup(p.member_id);
            kb_gjoin_error(c, waiter, mid ? mid : "", KP_ERR_UNKNOWN_MEMBER_ID);
            free(mid);
            return;
        }
        g = kb_group_create(c, p.group_id, now);
        if (!g) {
            kb_gjoin_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
    }
    if (g->cg) {
        /* A group id is one kind at a time: a consumer group with members refuses classic
         * members (Kafka 4 without online migration); an Empty one becomes classic. */
        if (kb_group_has_cmembers(g)) {
            char *mid = kb_gstrdup(p.member_id.len < 0 ? kp_str("") : p.member_id);
            kb_gjoin_error(c, waiter, mid ? mid : "", KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
            free(mid);
            return;
        }
        kb_cgroup_free(g->cg);
        g->cg = NULL;
    }
    if (unknown)
        join_new_member(c, g, &p, now, waiter);
    else
        join_current_member(c, g, &p, now, waiter);
    if (g->state == KB_GROUP_PREPARING_REBALANCE)
        kb_group_try_complete_join(c, g, now);
    else
        kb_group_maybe_discard(c, g);
}

/* ------------------------------------------------------------------------------------------ */
/* SyncGroup                                                                                   */

static bool sync_all_received(const kb_group_t *g)
{
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (m->pending_sync)
            return false;
    return true;
}

void kb_group_sync(kb_gcoord_t *c, const kb_sync_params_t *p, kb_gtime_t now, void *waiter)
{
    if (p->group_id.len <= 0) {
        kb_gsync_error(c, waiter, KP_ERR_INVALID_GROUP_ID);
        return;
    }
    kb_group_t *g = kb_gcoord_find(c, p->group_id);
    kb_gmember_t *m = g ? kb_group_member_find(g, p->member_id) : NULL;
    if (!g) {
        kb_gsync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID);
    } else if (g->state == KB_GROUP_DEAD) {
        kb_gsync_error(c, waiter, KP_ERR_COORDINATOR_NOT_AVAILABLE);
    } else if (kb_group_static_fenced(g, p->group_instance_id, p->member_id)) {
        kb_gsync_error(c, waiter, KP_ERR_FENCED_INSTANCE_ID);
    } else if (!m) {
        kb_gsync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID);
    } else if (p->generation_id != g->generation_id) {
        kb_gsync_error(c, waiter, KP_ERR_ILLEGAL_GENERATION);
    } else if ((p->protocol_type.len >= 0 && !kb_gstreq(g->protocol_type, p->protocol_type)) ||
               (p->protocol_name.len >= 0 && !kb_gstreq(g->protocol_name, p->protocol_name))) {
        kb_gsync_error(c, waiter, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    } else {
        switch (g->state) {
        case KB_GROUP_EMPTY: kb_gsync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID); break;
        case KB_GROUP_PREPARING_REBALANCE:
            kb_gsync_error(c, waiter, KP_ERR_REBALANCE_IN_PROGRESS);
            break;
        case KB_GROUP_COMPLETING_REBALANCE:
            if (m->sync_waiter) /* a retry replaces the older request */
                kb_gsync_respond(c, g, m, KP_ERR_REBALANCE_IN_PROGRESS);
            m->sync_waiter = waiter;
            m->pending_sync = false;
            if (kb_group_is_leader(g, m)) {
                /* Assignments are opaque; members the leader left out get an empty one. */
                for (kb_gmember_t *x = g->members; x; x = x->next) {
                    free(x->assignment);
                    x->assignment = NULL;
                    x->assignment_len = 0;
                    for (int32_t i = p->n_assignments - 1; i >= 0; i--) {
                        const kb_gassign_in_t *a = &p->assignments[i];
                        if (!kb_gstreq(x->member_id, a->member_id))
                            continue;
                        if (a->assignment.len > 0) {
                            x->assignment = malloc((size_t)a->assignment.len);
                            if (x->assignment) {
                                memcpy(x->assignment, a->assignment.ptr,
                                       (size_t)a->assignment.len);
                                x->assignment_len = a->assignment.len;
                            }
                        }
                        break;
                    }
                }
                kb_group_transition(g, KB_GROUP_STABLE, now);
                kb_group_store(c, g);
                kb_group_propagate_assignment(c, g, KP_ERR_NONE, now);
            }
            break;
        case KB_GROUP_STABLE:
            m->pending_sync = false;
            m->sync_waiter = waiter;
            kb_gsync_respond(c, g, m, KP_ERR_NONE);
            kb_gmember_hb_schedule(m, now, m->session_timeout_ms);
            break;
        default: kb_gsync_error(c, waiter, KP_ERR_COORDINATOR_NOT_AVAILABLE); break;
        }
        if (g->sync_deadline != KB_GROUP_NO_DEADLINE && sync_all_received(g))
            g->sync_deadline = KB_GROUP_NO_DEADLINE;
    }
}

/*
 * Classic group coordinator state machine; see group.h. The structure mirrors Apache Kafka's
 * GroupCoordinator (facts of its behaviour, not its code): a join phase that waits for every
 * known member to rejoin (or the rebalance timeout), leader election, protocol selection by
 * member votes, a sync phase where the leader's assignments are handed out, and heartbeats
 * that expire members after their session timeout.
 */
#include "broker/group/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group/group_int.h"
#include "protocol/k_status.h"
#include "protocol/kp_errors.h"

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

char *kb_gstrdup(kp_str_t s)
{
    if (s.len < 0)
        return NULL;
    char *p = malloc((size_t)s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    return p;
}

char *kb_gstrdup_len(kp_str_t s, int32_t *len)
{
    *len = s.len > 0 ? s.len : 0;
    return kb_gstrdup(s);
}

bool kb_gmember_instance_is(const kb_gmember_t *m, kp_str_t id)
{
    return m->instance_id && id.len >= 0 && m->instance_id_len == id.len &&
           (id.len == 0 || !memcmp(m->instance_id, id.ptr, (size_t)id.len));
}

bool kb_gstreq(const char *a, kp_str_t b)
{
    if (!a || b.len < 0)
        return !a && b.len < 0;
    return strlen(a) == (size_t)b.len && memcmp(a, b.ptr, (size_t)b.len) == 0;
}

static kp_str_t cstr(const char *s)
{
    return kp_str(s);
}

const char *kb_group_state_name(kb_group_state_t s)
{
    switch (s) {
    case KB_GROUP_EMPTY: return "Empty";
    case KB_GROUP_PREPARING_REBALANCE: return "PreparingRebalance";
    case KB_GROUP_COMPLETING_REBALANCE: return "CompletingRebalance";
    case KB_GROUP_STABLE: return "Stable";
    case KB_GROUP_DEAD: return "Dead";
    }
    return "Unknown";
}

static void transition(kb_group_t *g, kb_group_state_t s, int64_t now)
{
    g->state = s;
    g->state_ts = now;
}

/* ------------------------------------------------------------------------------------------ */
/* Members                                                                                     */

static void protos_free(kb_gproto_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].metadata);
    }
    free(p);
}

static int protos_copy(const kb_gproto_in_t *in, int32_t n, kb_gproto_t **out)
{
    kb_gproto_t *p = calloc(n > 0 ? (size_t)n : 1, sizeof *p);
    if (!p)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        p[i].name = kb_gstrdup(in[i].name.len < 0 ? cstr("") : in[i].name);
        int32_t ml = in[i].metadata.len > 0 ? in[i].metadata.len : 0;
        p[i].metadata = malloc(ml ? (size_t)ml : 1);
        if (!p[i].name || !p[i].metadata) {
            protos_free(p, i + 1);
            return K_ERR_NOMEM;
        }
        if (ml)
            memcpy(p[i].metadata, in[i].metadata.ptr, (size_t)ml);
        p[i].metadata_len = ml;
    }
    *out = p;
    return 0;
}

static bool protos_match(const kb_gmember_t *m, const kb_gproto_in_t *in, int32_t n)
{
    if (m->n_protocols != n)
        return false;
    for (int32_t i = 0; i < n; i++) {
        int32_t ml = in[i].metadata.len > 0 ? in[i].metadata.len : 0;
        if (!kb_gstreq(m->protocols[i].name, in[i].name) || m->protocols[i].metadata_len != ml ||
            (ml && memcmp(m->protocols[i].metadata, in[i].metadata.ptr, (size_t)ml)))
            return false;
    }
    return true;
}

void kb_gmember_free(kb_gmember_t *m)
{
    if (!m)
        return;
    free(m->member_id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    protos_free(m->protocols, m->n_protocols);
    free(m->assignment);
    free(m);
}

kb_gmember_t *kb_group_member(const kb_group_t *g, const char *member_id, int32_t len)
{
    if (len < 0)
        return NULL;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (strlen(m->member_id) == (size_t)len &&
            memcmp(m->member_id, member_id, (size_t)len) == 0)
            return m;
    return NULL;
}

static kb_gmember_t *member_find(const kb_group_t *g, kp_str_t id)
{
    return kb_group_member(g, id.ptr, id.len);
}

static kb_gmember_t *static_member(const kb_group_t *g, kp_str_t instance_id)
{
    if (instance_id.len < 0)
        return NULL;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (kb_gmember_instance_is(m, instance_id))
            return m;
    return NULL;
}

/* Kafka's isStaticMemberFenced: the instance id is known and bound to another member id. */
static bool static_fenced(const kb_group_t *g, kp_str_t instance_id, kp_str_t member_id)
{
    kb_gmember_t *m = static_member(g, instance_id);
    return m && !kb_gstreq(m->member_id, member_id);
}

kp_bytes_t kb_gmember_metadata(const kb_gmember_t *m, const char *protocol)
{
    kp_bytes_t b = {(const uint8_t *)"", 0};
    for (int32_t i = 0; protocol && i < m->n_protocols; i++)
        if (strcmp(m->protocols[i].name, protocol) == 0) {
            b.ptr = m->protocols[i].metadata;
            b.len = m->protocols[i].metadata_len;
        }
    return b;
}

static bool is_leader(const kb_group_t *g, const kb_gmember_t *m)
{
    return g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
}

static int set_leader(kb_group_t *g, const char *member_id)
{
    char *l = member_id ? strdup(member_id) : NULL;
    if (member_id && !l)
        return K_ERR_NOMEM;
    free(g->leader_id);
    g->leader_id = l;
    return 0;
}

static int32_t awaiting_join_count(const kb_group_t *g)
{
    int32_t n = 0;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        n += m->join_waiter != NULL;
    return n;
}

static bool all_members_joined(const kb_group_t *g)
{
    return awaiting_join_count(g) == g->n_members && g->n_pending == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Pending (MEMBER_ID_REQUIRED) members                                                        */

static int pending_find(const kb_group_t *g, kp_str_t member_id)
{
    for (int32_t i = 0; i < g->n_pending; i++)
        if (kb_gstreq(g->pending[i].member_id, member_id))
            return i;
    return -1;
}

static void pending_remove_at(kb_group_t *g, int32_t i)
{
    free(g->pending[i].member_id);
    g->pending[i] = g->pending[--g->n_pending];
}

static int pending_add(kb_group_t *g, const char *member_id, int64_t deadline)
{
    kb_gpending_t *p = realloc(g->pending, ((size_t)g->n_pending + 1) * sizeof *p);
    if (!p)
        return K_ERR_NOMEM;
    g->pending = p;
    p[g->n_pending].member_id = strdup(member_id);
    if (!p[g->n_pending].member_id)
        return K_ERR_NOMEM;
    p[g->n_pending].deadline = deadline;
    g->n_pending++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Groups                                                                                      */

static void offset_free(void *p)
{
    kb_offset_t *o = p;
    if (o)
        free(o->metadata);
    free(o);
}

static void subscribed_clear(kb_group_t *g)
{
    for (int32_t i = 0; i < g->n_subscribed; i++)
        free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->n_subscribed = 0;
}

static void group_free(kb_group_t *g)
{
    if (!g)
        return;
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        kb_gmember_free(m);
        m = n;
    }
    for (int32_t i = 0; i < g->n_pending; i++)
        free(g->pending[i].member_id);
    free(g->pending);
    kb_gmap_deinit(&g->offsets, offset_free);
    subscribed_clear(g);
    free(g->group_id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader_id);
    free(g);
}

static void group_free_v(void *p)
{
    group_free(p);
}

kb_group_t *kb_gcoord_find(kb_gcoord_t *c, kp_str_t group_id)
{
    if (group_id.len < 0)
        return NULL;
    return kb_gmap_get(&c->groups, group_id.ptr, (size_t)group_id.len);
}

kb_group_t *kb_gcoord_next(kb_gcoord_t *c, kb_group_t *prev)
{
    kb_gmap_ent_t *e = NULL;
    if (prev) {
        e = kb_gmap_find(&c->groups, prev->group_id, strlen(prev->group_id));
        if (!e)
            return NULL;
    }
    e = kb_gmap_next(&c->groups, e);
    return e ? e->val : NULL;
}

kb_group_t *kb_group_create(kb_gcoord_t *c, kp_str_t group_id, int64_t now)
{
    kb_group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->group_id = kb_gstrdup(group_id);
    kb_gmap_init(&g->offsets);
    g->state = KB_GROUP_EMPTY;
    g->state_ts = now;
    g->join_deadline = g->sync_deadline = KB_GROUP_NO_DEADLINE;
    if (!g->group_id || kb_gmap_put(&c->groups, group_id.ptr, (size_t)group_id.len, g, NULL)) {
        group_free(g);
        return NULL;
    }
    return g;
}

/* Removes a group with no members or held requests from the table and frees it. */
void kb_group_destroy(kb_gcoord_t *c, kb_group_t *g)
{
    kb_gmap_del(&c->groups, g->group_id, strlen(g->group_id));
    group_free(g);
}

/* A group that a failed join created and nothing else uses: forget it again. */
static void group_maybe_discard(kb_gcoord_t *c, kb_group_t *g)
{
    if (g->state == KB_GROUP_EMPTY && !g->n_members && !g->n_pending && !g->offsets.count &&
        g->generation_id == 0 && !g->protocol_type)
        kb_group_destroy(c, g);
}

void kb_group_store(kb_gcoord_t *c, kb_group_t *g)
{
    if (c->opts.store_group)
        c->opts.store_group(c->opts.ud, g);
}

/* ------------------------------------------------------------------------------------------ */
/* Delivering results                                                                          */

static void join_error(kb_gcoord_t *c, void *waiter, const char *member_id, int16_t err)
{
    kb_join_result_t r = {
        .error_code = err,
        .generation_id = -1,
        .leader_id = "",
        .member_id = member_id ? member_id : "",
    };
    c->opts.join_done(c->opts.ud, waiter, &r);
}

static void sync_error(kb_gcoord_t *c, void *waiter, int16_t err)
{
    kb_sync_result_t r = {.error_code = err, .assignment = {(const uint8_t *)"", 0}};
    c->opts.sync_done(c->opts.ud, waiter, &r);
}

/* Answers the member's held JoinGroup (if any) with the current generation. */
static void join_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, bool with_members,
                         const char *leader, bool skip_assignment)
{
    void *w = m->join_waiter;
    if (!w)
        return;
    m->join_waiter = NULL;
    kb_join_member_t *list = NULL;
    int32_t n = 0;
    if (with_members && g->n_members) {
        list = calloc((size_t)g->n_members, sizeof *list);
        if (!list) {
            join_error(c, w, m->member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        for (kb_gmember_t *x = g->members; x; x = x->next) {
            list[n].member_id = x->member_id;
            list[n].group_instance_id = x->instance_id
                                            ? (kp_str_t){x->instance_id, x->instance_id_len}
                                            : (kp_str_t){NULL, -1};
            list[n].metadata = kb_gmember_metadata(x, g->protocol_name);
            n++;
        }
    }
    kb_join_result_t r = {
        .error_code = KP_ERR_NONE,
        .generation_id = g->generation_id,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol_name,
        .leader_id = leader ? leader : "",
        .member_id = m->member_id,
        .skip_assignment = skip_assignment,
        .members = list,
        .n_members = n,
    };
    c->opts.join_done(c->opts.ud, w, &r);
    free(list);
}

static void sync_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, int16_t err)
{
    void *w = m->sync_waiter;
    if (!w)
        return;
    m->sync_waiter = NULL;
    kb_sync_result_t r = {.error_code = err, .assignment = {(const uint8_t *)"", 0}};
    if (err == KP_ERR_NONE) {
        r.protocol_type = g->protocol_type;
        r.protocol_name = g->protocol_name;
        if (m->assignment) {
            r.assignment.ptr = m->assignment;
            r.assignment.len = m->assignment_len;
        }
    }
    c->opts.sync_done(c->opts.ud, w, &r);
}

static void hb_schedule(kb_gmember_t *m, int64_t now, int64_t timeout)
{
    m->hb_deadline = now + timeout;
}

/* ------------------------------------------------------------------------------------------ */
/* Rebalance                                                                                   */

static void try_complete_join(kb_gcoord_t *c, kb_group_t *g, int64_t now);

/* Every member that was waiting for its assignment is told (error or not), then heartbeats
 * restart: Kafka's propagateAssignment. */
static void propagate_assignment(kb_gcoord_t *c, kb_group_t *g, int16_t err, int64_t now)
{
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (m->sync_waiter) {
            sync_respond(c, g, m, err);
            hb_schedule(m, now, m->session_timeout_ms);
        }
}

static void prepare_rebalance(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    if (g->state == KB_GROUP_COMPLETING_REBALANCE) {
        for (kb_gmember_t *m = g->members; m; m = m->next) {
            free(m->assignment);
            m->assignment = NULL;
            m->assignment_len = 0;
        }
        propagate_assignment(c, g, KP_ERR_REBALANCE_IN_PROGRESS, now);
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
        g->join_deadline = now + d;
    } else {
        g->initial_delay = false;
        g->join_deadline = now + rt;
    }
    transition(g, KB_GROUP_PREPARING_REBALANCE, now);
    try_complete_join(c, g, now);
}

static void maybe_prepare_rebalance(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    if (g->state == KB_GROUP_STABLE || g->state == KB_GROUP_COMPLETING_REBALANCE ||
        g->state == KB_GROUP_EMPTY)
        prepare_rebalance(c, g, now);
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
static const char *select_protocol(const kb_group_t *g)
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
static bool supports_protocols(const kb_group_t *g, kp_str_t type, const kb_gproto_in_t *p,
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

static void init_next_generation(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    (void)c;
    g->generation_id++;
    free(g->protocol_name);
    g->protocol_name = NULL;
    if (g->n_members) {
        const char *p = select_protocol(g);
        g->protocol_name = p ? strdup(p) : NULL;
        transition(g, KB_GROUP_COMPLETING_REBALANCE, now);
    } else {
        transition(g, KB_GROUP_EMPTY, now);
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
    if (is_leader(g, m))
        set_leader(g, g->members ? g->members->member_id : NULL);
    kb_gmember_free(m);
}

static void complete_join(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    /* Dynamic members that did not rejoin in time are out; static ones keep their place. */
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        if (!m->join_waiter && !m->instance_id) {
            if (m->sync_waiter)
                sync_respond(c, g, m, KP_ERR_UNKNOWN_MEMBER_ID);
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
                    set_leader(g, x->member_id);
                    elected = true;
                }
        }
    }
    if (!elected && g->n_members) {
        /* Nobody rejoined (only static members remain): wait another rebalance timeout for
         * them to rejoin or for their sessions to expire. */
        g->initial_delay = false;
        g->join_deadline = now + g->rebalance_timeout_ms;
        return;
    }
    init_next_generation(c, g, now);
    if (g->state == KB_GROUP_EMPTY) {
        kb_group_store(c, g);
        return;
    }
    for (m = g->members; m; m = m->next) {
        join_respond(c, g, m, is_leader(g, m), g->leader_id, false);
        hb_schedule(m, now, m->session_timeout_ms);
        m->is_new = false;
        m->pending_sync = true;
    }
    g->sync_deadline = now + g->rebalance_timeout_ms;
}

static void try_complete_join(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    if (g->state == KB_GROUP_PREPARING_REBALANCE && !g->initial_delay && all_members_joined(g))
        complete_join(c, g, now);
}

/* A member leaves (LeaveGroup, session expiry): Kafka's removeMemberAndUpdateGroup. */
static void remove_member_and_update(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                     int64_t now)
{
    if (m->join_waiter) {
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        join_error(c, w, "", KP_ERR_UNKNOWN_MEMBER_ID);
    }
    if (m->sync_waiter)
        sync_respond(c, g, m, KP_ERR_UNKNOWN_MEMBER_ID);
    remove_member(g, m);
    switch (g->state) {
    case KB_GROUP_STABLE:
    case KB_GROUP_COMPLETING_REBALANCE: maybe_prepare_rebalance(c, g, now); break;
    case KB_GROUP_PREPARING_REBALANCE: try_complete_join(c, g, now); break;
    default: break;
    }
}

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
    m->client_id = kb_gstrdup_len(p->client_id.len < 0 ? cstr("") : p->client_id,
                                  &m->client_id_len);
    m->client_host = kb_gstrdup_len(p->client_host.len < 0 ? cstr("") : p->client_host,
                                    &m->client_host_len);
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    if (!m->member_id || (p->group_instance_id.len >= 0 && !m->instance_id) || !m->client_id ||
        !m->client_host || protos_copy(p->protocols, p->n_protocols, &m->protocols)) {
        kb_gmember_free(m);
        return NULL;
    }
    m->n_protocols = p->n_protocols;
    m->hb_deadline = KB_GROUP_NO_DEADLINE;
    return m;
}

static void add_member_and_rebalance(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                                     const char *member_id, int64_t now, void *waiter)
{
    kb_gmember_t *m = member_new(p, member_id);
    if (!m) {
        join_error(c, waiter, member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
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
        set_leader(g, m->member_id);
    kb_gmember_t **pp = &g->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    g->n_members++;
    m->join_waiter = waiter;
    m->is_new = true;
    int i = pending_find(g, cstr(member_id));
    if (i >= 0)
        pending_remove_at(g, i);
    /* New members cannot heartbeat yet; their join is bounded separately (Kafka). */
    hb_schedule(m, now, KB_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS);
    maybe_prepare_rebalance(c, g, now);
}

static int update_member(kb_gmember_t *m, const kb_join_params_t *p, void *waiter)
{
    kb_gproto_t *np;
    if (protos_copy(p->protocols, p->n_protocols, &np))
        return K_ERR_NOMEM;
    protos_free(m->protocols, m->n_protocols);
    m->protocols = np;
    m->n_protocols = p->n_protocols;
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    m->join_waiter = waiter;
    return 0;
}

static void update_member_and_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                        const kb_join_params_t *p, int64_t now, void *waiter)
{
    if (m->join_waiter) {
        /* The same member joined twice (a retry): the older request loses. */
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        join_error(c, w, m->member_id, KP_ERR_UNKNOWN_MEMBER_ID);
    }
    if (update_member(m, p, waiter)) {
        m->join_waiter = NULL;
        join_error(c, waiter, m->member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    maybe_prepare_rebalance(c, g, now);
}

/* A static member rejoins with an unknown member id: it takes over its old slot under a new
 * id, and the old id is fenced (Kafka's updateStaticMemberAndRebalance). */
static void static_member_rejoin(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m,
                                 const kb_join_params_t *p, char *new_id, int64_t now,
                                 void *waiter)
{
    char *old_leader = g->leader_id ? strdup(g->leader_id) : NULL;
    if (m->join_waiter) {
        void *w = m->join_waiter;
        m->join_waiter = NULL;
        join_error(c, w, m->member_id, KP_ERR_FENCED_INSTANCE_ID);
    }
    if (m->sync_waiter)
        sync_respond(c, g, m, KP_ERR_FENCED_INSTANCE_ID);
    bool was_leader = is_leader(g, m);
    free(m->member_id);
    m->member_id = new_id;
    if (was_leader)
        set_leader(g, new_id);
    hb_schedule(m, now, m->session_timeout_ms);

    char *old_proto = g->protocol_name ? strdup(g->protocol_name) : NULL;
    if (update_member(m, p, waiter)) {
        join_error(c, waiter, new_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        m->join_waiter = NULL;
        free(old_leader);
        free(old_proto);
        return;
    }
    switch (g->state) {
    case KB_GROUP_STABLE: {
        const char *next = select_protocol(g);
        if (old_proto && next && strcmp(old_proto, next) == 0) {
            kb_group_store(c, g);
            bool lead = is_leader(g, m);
            if (p->supports_skip_assignment)
                join_respond(c, g, m, lead, g->leader_id, lead);
            else
                join_respond(c, g, m, false, old_leader, false);
        } else {
            maybe_prepare_rebalance(c, g, now);
        }
        break;
    }
    case KB_GROUP_COMPLETING_REBALANCE: prepare_rebalance(c, g, now); break;
    default: break; /* PreparingRebalance: answered when the join phase ends */
    }
    free(old_leader);
    free(old_proto);
}

static void join_new_member(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                            int64_t now, void *waiter)
{
    if (g->state == KB_GROUP_DEAD) {
        join_error(c, waiter, "", KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!supports_protocols(g, p->protocol_type, p->protocols, p->n_protocols)) {
        join_error(c, waiter, "", KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    char *id = new_member_id(c, p->client_id);
    if (!id) {
        join_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (p->group_instance_id.len >= 0) {
        kb_gmember_t *old = static_member(g, p->group_instance_id);
        if (old) {
            static_member_rejoin(c, g, old, p, id, now, waiter);
            return;
        }
        add_member_and_rebalance(c, g, p, id, now, waiter);
    } else if (p->require_known_member_id) {
        if (pending_add(g, id, now + p->session_timeout_ms))
            join_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        else
            join_error(c, waiter, id, KP_ERR_MEMBER_ID_REQUIRED);
    } else {
        add_member_and_rebalance(c, g, p, id, now, waiter);
    }
    free(id);
}

static void join_current_member(kb_gcoord_t *c, kb_group_t *g, const kb_join_params_t *p,
                                int64_t now, void *waiter)
{
    if (g->state == KB_GROUP_DEAD) {
        join_error(c, waiter, "", KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    char *mid = kb_gstrdup(p->member_id);
    if (!mid) {
        join_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    if (!supports_protocols(g, p->protocol_type, p->protocols, p->n_protocols)) {
        join_error(c, waiter, mid, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    } else if (pending_find(g, p->member_id) >= 0) {
        add_member_and_rebalance(c, g, p, mid, now, waiter);
    } else if (static_fenced(g, p->group_instance_id, p->member_id)) {
        join_error(c, waiter, mid, KP_ERR_FENCED_INSTANCE_ID);
    } else {
        kb_gmember_t *m = member_find(g, p->member_id);
        if (!m || (p->group_instance_id.len >= 0 && !static_member(g, p->group_instance_id))) {
            join_error(c, waiter, mid, KP_ERR_UNKNOWN_MEMBER_ID);
        } else {
            switch (g->state) {
            case KB_GROUP_PREPARING_REBALANCE:
                update_member_and_rebalance(c, g, m, p, now, waiter);
                break;
            case KB_GROUP_COMPLETING_REBALANCE:
                if (protos_match(m, p->protocols, p->n_protocols)) {
                    /* Lost the join response: hand it out again. */
                    if (m->join_waiter) {
                        void *w = m->join_waiter;
                        m->join_waiter = NULL;
                        join_error(c, w, mid, KP_ERR_UNKNOWN_MEMBER_ID);
                    }
                    m->join_waiter = waiter;
                    join_respond(c, g, m, is_leader(g, m), g->leader_id, false);
                } else {
                    update_member_and_rebalance(c, g, m, p, now, waiter);
                }
                break;
            case KB_GROUP_STABLE:
                if (is_leader(g, m) || !protos_match(m, p->protocols, p->n_protocols)) {
                    /* The leader rejoining forces a rebalance (e.g. topic metadata changed). */
                    update_member_and_rebalance(c, g, m, p, now, waiter);
                } else {
                    m->join_waiter = waiter;
                    join_respond(c, g, m, false, g->leader_id, false);
                }
                break;
            default:
                join_error(c, waiter, mid, KP_ERR_UNKNOWN_MEMBER_ID);
                break;
            }
        }
    }
    free(mid);
}

void kb_group_join(kb_gcoord_t *c, const kb_join_params_t *in, int64_t now, void *waiter)
{
    kb_join_params_t p = *in;
    if (p.rebalance_timeout_ms < 0)
        p.rebalance_timeout_ms = p.session_timeout_ms;
    if (p.group_id.len <= 0) {
        join_error(c, waiter, "", KP_ERR_INVALID_GROUP_ID);
        return;
    }
    if (p.session_timeout_ms < c->opts.min_session_timeout_ms ||
        p.session_timeout_ms > c->opts.max_session_timeout_ms) {
        char *mid = kb_gstrdup(p.member_id.len < 0 ? cstr("") : p.member_id);
        join_error(c, waiter, mid ? mid : "", KP_ERR_INVALID_SESSION_TIMEOUT);
        free(mid);
        return;
    }
    bool unknown = p.member_id.len <= 0;
    kb_group_t *g = kb_gcoord_find(c, p.group_id);
    if (!g) {
        if (!unknown) {
            char *mid = kb_gstrdup(p.member_id);
            join_error(c, waiter, mid ? mid : "", KP_ERR_UNKNOWN_MEMBER_ID);
            free(mid);
            return;
        }
        g = kb_group_create(c, p.group_id, now);
        if (!g) {
            join_error(c, waiter, "", KP_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
    }
    if (unknown)
        join_new_member(c, g, &p, now, waiter);
    else
        join_current_member(c, g, &p, now, waiter);
    if (g->state == KB_GROUP_PREPARING_REBALANCE)
        try_complete_join(c, g, now);
    else
        group_maybe_discard(c, g);
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

void kb_group_sync(kb_gcoord_t *c, const kb_sync_params_t *p, int64_t now, void *waiter)
{
    if (p->group_id.len <= 0) {
        sync_error(c, waiter, KP_ERR_INVALID_GROUP_ID);
        return;
    }
    kb_group_t *g = kb_gcoord_find(c, p->group_id);
    kb_gmember_t *m = g ? member_find(g, p->member_id) : NULL;
    if (!g) {
        sync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID);
    } else if (g->state == KB_GROUP_DEAD) {
        sync_error(c, waiter, KP_ERR_COORDINATOR_NOT_AVAILABLE);
    } else if (static_fenced(g, p->group_instance_id, p->member_id)) {
        sync_error(c, waiter, KP_ERR_FENCED_INSTANCE_ID);
    } else if (!m) {
        sync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID);
    } else if (p->generation_id != g->generation_id) {
        sync_error(c, waiter, KP_ERR_ILLEGAL_GENERATION);
    } else if ((p->protocol_type.len >= 0 && !kb_gstreq(g->protocol_type, p->protocol_type)) ||
               (p->protocol_name.len >= 0 && !kb_gstreq(g->protocol_name, p->protocol_name))) {
        sync_error(c, waiter, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    } else {
        switch (g->state) {
        case KB_GROUP_EMPTY: sync_error(c, waiter, KP_ERR_UNKNOWN_MEMBER_ID); break;
        case KB_GROUP_PREPARING_REBALANCE:
            sync_error(c, waiter, KP_ERR_REBALANCE_IN_PROGRESS);
            break;
        case KB_GROUP_COMPLETING_REBALANCE:
            if (m->sync_waiter) /* a retry replaces the older request */
                sync_respond(c, g, m, KP_ERR_REBALANCE_IN_PROGRESS);
            m->sync_waiter = waiter;
            m->pending_sync = false;
            if (is_leader(g, m)) {
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
                transition(g, KB_GROUP_STABLE, now);
                kb_group_store(c, g);
                propagate_assignment(c, g, KP_ERR_NONE, now);
            }
            break;
        case KB_GROUP_STABLE:
            m->pending_sync = false;
            m->sync_waiter = waiter;
            sync_respond(c, g, m, KP_ERR_NONE);
            hb_schedule(m, now, m->session_timeout_ms);
            break;
        default: sync_error(c, waiter, KP_ERR_COORDINATOR_NOT_AVAILABLE); break;
        }
        if (g->sync_deadline != KB_GROUP_NO_DEADLINE && sync_all_received(g))
            g->sync_deadline = KB_GROUP_NO_DEADLINE;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Heartbeat, LeaveGroup, DeleteGroups                                                         */

int16_t kb_group_heartbeat(kb_gcoord_t *c, kp_str_t group_id, int32_t generation_id,
                           kp_str_t member_id, kp_str_t group_instance_id, int64_t now)
{
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (g->state == KB_GROUP_DEAD)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (static_fenced(g, group_instance_id, member_id))
        return KP_ERR_FENCED_INSTANCE_ID;
    kb_gmember_t *m = member_find(g, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (generation_id != g->generation_id)
        return KP_ERR_ILLEGAL_GENERATION;
    switch (g->state) {
    case KB_GROUP_EMPTY: return KP_ERR_UNKNOWN_MEMBER_ID;
    case KB_GROUP_PREPARING_REBALANCE:
        hb_schedule(m, now, m->session_timeout_ms);
        return KP_ERR_REBALANCE_IN_PROGRESS;
    case KB_GROUP_COMPLETING_REBALANCE:
    case KB_GROUP_STABLE: hb_schedule(m, now, m->session_timeout_ms); return KP_ERR_NONE;
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
                              kp_str_t group_instance_id, int64_t now)
{
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    kb_gmember_t *m;
    int i;
    if (member_id.len <= 0) {
        /* Administrative removal of a static member by instance id. */
        m = static_member(g, group_instance_id);
        if (!m)
            return KP_ERR_UNKNOWN_MEMBER_ID;
        remove_member_and_update(c, g, m, now);
        return KP_ERR_NONE;
    }
    if ((i = pending_find(g, member_id)) >= 0) {
        pending_remove_at(g, i);
        try_complete_join(c, g, now);
        return KP_ERR_NONE;
    }
    if (static_fenced(g, group_instance_id, member_id))
        return KP_ERR_FENCED_INSTANCE_ID;
    if (!(m = member_find(g, member_id)))
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
    if (g->state != KB_GROUP_EMPTY)
        return KP_ERR_NON_EMPTY_GROUP;
    g->state = KB_GROUP_DEAD;
    kb_group_store(c, g);
    kb_group_destroy(c, g);
    return KP_ERR_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Deadlines                                                                                   */

static void poll_members(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    for (int32_t i = 0; i < g->n_pending;) {
        if (now >= g->pending[i].deadline) {
            pending_remove_at(g, i);
            try_complete_join(c, g, now);
        } else {
            i++;
        }
    }
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        if (now >= m->hb_deadline) {
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

static void poll_join(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    if (g->state != KB_GROUP_PREPARING_REBALANCE || now < g->join_deadline)
        return;
    if (g->initial_delay && g->new_member_added && g->init_remaining_ms != 0) {
        /* Members keep arriving: extend by another delay step, within the rebalance timeout. */
        int32_t prev = g->init_delay_ms;
        int32_t d = c->opts.initial_rebalance_delay_ms;
        g->new_member_added = false;
        g->init_delay_ms = d < g->init_remaining_ms ? d : g->init_remaining_ms;
        g->init_remaining_ms = g->init_remaining_ms - prev > 0 ? g->init_remaining_ms - prev : 0;
        g->join_deadline = now + g->init_delay_ms;
        return;
    }
    g->initial_delay = false;
    complete_join(c, g, now);
}

static void poll_sync(kb_gcoord_t *c, kb_group_t *g, int64_t now)
{
    if (now < g->sync_deadline)
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
                join_error(c, w, "", KP_ERR_UNKNOWN_MEMBER_ID);
            }
            remove_member(g, m);
            removed = true;
        }
        m = n;
    }
    if (removed)
        prepare_rebalance(c, g, now);
}

int64_t kb_gcoord_poll(kb_gcoord_t *c, int64_t now)
{
    if (c->first_poll) {
        c->first_poll = false;
        c->next_retention_check = now + c->opts.retention_check_interval_ms;
    }
    bool retention = now >= c->next_retention_check;
    if (retention)
        c->next_retention_check = now + c->opts.retention_check_interval_ms;
    kb_gmap_ent_t *e = kb_gmap_next(&c->groups, NULL);
    while (e) {
        kb_gmap_ent_t *n = kb_gmap_next(&c->groups, e);
        kb_group_t *g = e->val;
        poll_members(c, g, now);
        poll_join(c, g, now);
        poll_sync(c, g, now);
        if (retention)
            kb_group_offsets_expire(c, g, now); /* may destroy g */
        e = n;
    }
    return kb_gcoord_next_deadline(c);
}

int64_t kb_gcoord_next_deadline(const kb_gcoord_t *c)
{
    int64_t d = c->next_retention_check;
    for (kb_gmap_ent_t *e = kb_gmap_next(&c->groups, NULL); e; e = kb_gmap_next(&c->groups, e)) {
        const kb_group_t *g = e->val;
        if (g->state == KB_GROUP_PREPARING_REBALANCE && g->join_deadline < d)
            d = g->join_deadline;
        if (g->sync_deadline < d)
            d = g->sync_deadline;
        for (int32_t i = 0; i < g->n_pending; i++)
            if (g->pending[i].deadline < d)
                d = g->pending[i].deadline;
        for (kb_gmember_t *m = g->members; m; m = m->next)
            if (m->hb_deadline < d)
                d = m->hb_deadline;
    }
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

int kb_gcoord_new(const kb_gcoord_opts_t *opts, kb_gcoord_t **out)
{
    if (!opts || !opts->join_done || !opts->sync_done || !out)
        return K_ERR_INVAL;
    kb_gcoord_t *c = calloc(1, sizeof *c);
    if (!c)
        return K_ERR_NOMEM;
    c->opts = *opts;
    if (c->opts.retention_check_interval_ms <= 0)
        c->opts.retention_check_interval_ms = 60000;
    c->rng = opts->seed ? opts->seed : 0x9e3779b97f4a7c15ULL;
    kb_gmap_init(&c->groups);
    c->next_retention_check = KB_GROUP_NO_DEADLINE; /* set by the first poll */
    c->first_poll = true;
    *out = c;
    return 0;
}

void kb_gcoord_free(kb_gcoord_t *c)
{
    if (!c)
        return;
    kb_gmap_ent_t *e = kb_gmap_next(&c->groups, NULL);
    for (; e; e = kb_gmap_next(&c->groups, e)) {
        kb_group_t *g = e->val;
        for (kb_gmember_t *m = g->members; m; m = m->next) {
            if (m->join_waiter) {
                void *w = m->join_waiter;
                m->join_waiter = NULL;
                join_error(c, w, m->member_id, KP_ERR_COORDINATOR_NOT_AVAILABLE);
            }
            if (m->sync_waiter)
                sync_respond(c, g, m, KP_ERR_COORDINATOR_NOT_AVAILABLE);
        }
    }
    kb_gmap_deinit(&c->groups, group_free_v);
    free(c);
}

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

#include "broker/group/cgroup.h"
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

void kb_group_transition(kb_group_t *g, kb_group_state_t s, kb_gtime_t now)
{
    g->state = s;
    g->state_ts = now.wall;
}

/* ------------------------------------------------------------------------------------------ */
/* Members                                                                                     */

void kb_gprotos_free(kb_gproto_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].metadata);
    }
    free(p);
}

int kb_gprotos_copy(const kb_gproto_in_t *in, int32_t n, kb_gproto_t **out)
{
    kb_gproto_t *p = calloc(n > 0 ? (size_t)n : 1, sizeof *p);
    if (!p)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        p[i].name = kb_gstrdup(in[i].name.len < 0 ? kp_str("") : in[i].name);
        int32_t ml = in[i].metadata.len > 0 ? in[i].metadata.len : 0;
        p[i].metadata = malloc(ml ? (size_t)ml : 1);
        if (!p[i].name || !p[i].metadata) {
            kb_gprotos_free(p, i + 1);
            return K_ERR_NOMEM;
        }
        if (ml)
            memcpy(p[i].metadata, in[i].metadata.ptr, (size_t)ml);
        p[i].metadata_len = ml;
    }
    *out = p;
    return 0;
}

bool kb_gprotos_match(const kb_gmember_t *m, const kb_gproto_in_t *in, int32_t n)
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
    kb_gprotos_free(m->protocols, m->n_protocols);
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

kb_gmember_t *kb_group_member_find(const kb_group_t *g, kp_str_t id)
{
    return kb_group_member(g, id.ptr, id.len);
}

kb_gmember_t *kb_group_static_member(const kb_group_t *g, kp_str_t instance_id)
{
    if (instance_id.len < 0)
        return NULL;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (kb_gmember_instance_is(m, instance_id))
            return m;
    return NULL;
}

/* Kafka's isStaticMemberFenced: the instance id is known and bound to another member id. */
bool kb_group_static_fenced(const kb_group_t *g, kp_str_t instance_id, kp_str_t member_id)
{
    kb_gmember_t *m = kb_group_static_member(g, instance_id);
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

bool kb_group_is_leader(const kb_group_t *g, const kb_gmember_t *m)
{
    return g->leader_id && strcmp(g->leader_id, m->member_id) == 0;
}

int kb_group_set_leader(kb_group_t *g, const char *member_id)
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

bool kb_group_all_joined(const kb_group_t *g)
{
    return awaiting_join_count(g) == g->n_members && g->n_pending == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Pending (MEMBER_ID_REQUIRED) members                                                        */

int kb_group_pending_find(const kb_group_t *g, kp_str_t member_id)
{
    for (int32_t i = 0; i < g->n_pending; i++)
        if (kb_gstreq(g->pending[i].member_id, member_id))
            return i;
    return -1;
}

void kb_group_pending_remove_at(kb_group_t *g, int32_t i)
{
    free(g->pending[i].member_id);
    g->pending[i] = g->pending[--g->n_pending];
}

int kb_group_pending_add(kb_group_t *g, const char *member_id, int64_t deadline)
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
    kb_cgroup_free(g->cg);
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

kb_group_t *kb_group_create(kb_gcoord_t *c, kp_str_t group_id, kb_gtime_t now)
{
    /* The table is keyed by the wire bytes but the group keeps a C string (kb_group_destroy
     * deletes by strlen): an id with a NUL byte in it would stay in the table after its free
     * (found by tests/fuzz/fuzz_handlers.c: a JoinGroup that discards the group it created). */
    if (group_id.len < 0 || (group_id.len > 0 && memchr(group_id.ptr, 0, (size_t)group_id.len)))
        return NULL;
    kb_group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->group_id = kb_gstrdup(group_id);
    kb_gmap_init(&g->offsets);
    g->state = KB_GROUP_EMPTY;
    g->state_ts = now.wall;
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
void kb_group_maybe_discard(kb_gcoord_t *c, kb_group_t *g)
{
    if (g->state == KB_GROUP_EMPTY && !g->n_members && !g->n_pending && !g->offsets.count &&
        g->generation_id == 0 && !g->protocol_type && !kb_group_has_cmembers(g))
        kb_group_destroy(c, g);
}

void kb_group_store(kb_gcoord_t *c, kb_group_t *g)
{
    if (c->opts.store_group)
        c->opts.store_group(c->opts.ud, g);
}

/* ------------------------------------------------------------------------------------------ */
/* Delivering results                                                                          */

void kb_gjoin_error(kb_gcoord_t *c, void *waiter, const char *member_id, int16_t err)
{
    kb_join_result_t r = {
        .error_code = err,
        .generation_id = -1,
        .leader_id = "",
        .member_id = member_id ? member_id : "",
    };
    c->opts.join_done(c->opts.ud, waiter, &r);
}

void kb_gsync_error(kb_gcoord_t *c, void *waiter, int16_t err)
{
    kb_sync_result_t r = {.error_code = err, .assignment = {(const uint8_t *)"", 0}};
    c->opts.sync_done(c->opts.ud, waiter, &r);
}

/* Answers the member's held JoinGroup (if any) with the current generation. */
void kb_gjoin_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, bool with_members,
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
            kb_gjoin_error(c, w, m->member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
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

void kb_gsync_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, int16_t err)
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

void kb_gmember_hb_schedule(kb_gmember_t *m, kb_gtime_t now, int64_t timeout)
{
    m->hb_deadline = now.mono + timeout;
}

/* ------------------------------------------------------------------------------------------ */
/* Deadlines                                                                                   */

int64_t kb_gcoord_poll(kb_gcoord_t *c, kb_gtime_t now)
{
    if (c->first_poll) {
        c->first_poll = false;
        c->next_retention_check = now.mono + c->opts.retention_check_interval_ms;
    }
    bool retention = now.mono >= c->next_retention_check;
    if (retention)
        c->next_retention_check = now.mono + c->opts.retention_check_interval_ms;
    kb_gmap_ent_t *e = kb_gmap_next(&c->groups, NULL);
    while (e) {
        kb_gmap_ent_t *n = kb_gmap_next(&c->groups, e);
        kb_group_t *g = e->val;
        kb_group_poll_deadlines(c, g, now);
        if (g->cg)
            kb_cgroup_poll(c, g, now);
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
        int64_t cd = kb_cgroup_next_deadline(g);
        if (cd < d)
            d = cd;
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
                kb_gjoin_error(c, w, m->member_id, KP_ERR_COORDINATOR_NOT_AVAILABLE);
            }
            if (m->sync_waiter)
                kb_gsync_respond(c, g, m, KP_ERR_COORDINATOR_NOT_AVAILABLE);
        }
    }
    kb_gmap_deinit(&c->groups, group_free_v);
    free(c);
}

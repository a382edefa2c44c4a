/*
 * Committed offsets inside the coordinator: commit validation, the per-group offsets map,
 * retention (offsets.retention.minutes, Kafka's KIP-211 rules), OffsetDelete checks, and
 * reloading group metadata from the offsets log. See group.h.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/group/group.h"
#include "broker/group/cgroup.h"
#include "broker/group/group_int.h"
#include "protocol/k_status.h"
#include "protocol/kp_errors.h"

#define KEY_MAX 512 /* topic names are at most 249 bytes */

static size_t offset_key(uint8_t *k, kp_str_t topic, int32_t partition)
{
    size_t n = topic.len > 0 ? (size_t)topic.len : 0;
    if (n > KEY_MAX - 5)
        n = KEY_MAX - 5;
    if (n)
        memcpy(k, topic.ptr, n);
    k[n] = 0;
    uint32_t p = (uint32_t)partition;
    k[n + 1] = (uint8_t)(p >> 24);
    k[n + 2] = (uint8_t)(p >> 16);
    k[n + 3] = (uint8_t)(p >> 8);
    k[n + 4] = (uint8_t)p;
    return n + 5;
}

void kb_group_offset_key(const kb_gmap_ent_t *e, kp_str_t *topic, int32_t *partition)
{
    size_t n = e->klen - 5;
    topic->ptr = (const char *)e->key;
    topic->len = (int32_t)n;
    const uint8_t *p = e->key + n + 1;
    *partition = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                           ((uint32_t)p[2] << 8) | p[3]);
}

static void offset_free(kb_offset_t *o)
{
    if (o)
        free(o->metadata);
    free(o);
}

int kb_group_offset_put(kb_gcoord_t *c, kp_str_t group_id, kp_str_t topic, int32_t partition,
                        const kb_offset_t *o)
{
    kb_group_t *g = kb_gcoord_find(c, group_id);
    kb_gtime_t at = {.mono = 0, .wall = o->commit_ts}; /* only state_ts (wall) is used */
    if (!g && !(g = kb_group_create(c, group_id, at)))
        return K_ERR_NOMEM;
    kb_offset_t *n = calloc(1, sizeof *n);
    if (!n)
        return K_ERR_NOMEM;
    *n = *o;
    n->metadata = NULL;
    if (o->metadata) {
        /* Byte for byte: the client's metadata may hold NUL or any other byte. */
        size_t ml = o->metadata_len > 0 ? (size_t)o->metadata_len : 0;
        if (!(n->metadata = malloc(ml + 1))) {
            free(n);
            return K_ERR_NOMEM;
        }
        if (ml) memcpy(n->metadata, o->metadata, ml);
        n->metadata[ml] = 0;
        n->metadata_len = (int32_t)ml;
    }
    uint8_t k[KEY_MAX];
    size_t kl = offset_key(k, topic, partition);
    void *old = NULL;
    if (kb_gmap_put(&g->offsets, k, kl, n, &old)) {
        offset_free(n);
        return K_ERR_NOMEM;
    }
    offset_free(old);
    return 0;
}

bool kb_group_offset_delete(kb_gcoord_t *c, kp_str_t group_id, kp_str_t topic,
                            int32_t partition)
{
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g)
        return false;
    uint8_t k[KEY_MAX];
    size_t kl = offset_key(k, topic, partition);
    kb_offset_t *o = kb_gmap_del(&g->offsets, k, kl);
    offset_free(o);
    return o != NULL;
}

const kb_offset_t *kb_group_offset_get(const kb_group_t *g, kp_str_t topic, int32_t partition)
{
    uint8_t k[KEY_MAX];
    size_t kl = offset_key(k, topic, partition);
    return kb_gmap_get(&g->offsets, k, kl);
}

int16_t kb_group_commit_check(kb_gcoord_t *c, kp_str_t group_id, int32_t generation_id,
                              kp_str_t member_id, kp_str_t group_instance_id, kb_gtime_t now,
                              kb_group_t **out)
{
    *out = NULL;
    if (group_id.len < 0)
        return KP_ERR_INVALID_GROUP_ID;
    bool simple = generation_id < 0 && member_id.len <= 0 && group_instance_id.len < 0;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g) {
        /* No group: only a commit that does not claim membership may create one. */
        if (generation_id >= 0)
            return KP_ERR_ILLEGAL_GENERATION;
        if (!(g = kb_group_create(c, group_id, now)))
            return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    if (g->state == KB_GROUP_DEAD)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg) {
        int16_t err = kb_cgroup_commit_check(g, generation_id, member_id, now);
        if (err == KP_ERR_NONE)
            *out = g;
        return err;
    }
    kb_gmember_t *m = NULL;
    if (!simple) {
        if (group_instance_id.len >= 0) {
            for (kb_gmember_t *x = g->members; x; x = x->next)
                if (kb_gmember_instance_is(x, group_instance_id) &&
                    !kb_gstreq(x->member_id, member_id))
                    return KP_ERR_FENCED_INSTANCE_ID;
        }
        m = kb_group_member(g, member_id.ptr, member_id.len);
        if (!m)
            return KP_ERR_UNKNOWN_MEMBER_ID;
        if (generation_id != g->generation_id)
            return KP_ERR_ILLEGAL_GENERATION;
    } else if (g->state != KB_GROUP_EMPTY) {
        /* While the group has members, only members commit. */
        return KP_ERR_UNKNOWN_MEMBER_ID;
    }
    switch (g->state) {
    case KB_GROUP_EMPTY: break;
    case KB_GROUP_STABLE:
    case KB_GROUP_PREPARING_REBALANCE:
        /* A commit counts as a sign of life (Kafka reschedules the heartbeat). */
        if (m)
            m->hb_deadline = now.mono + m->session_timeout_ms;
        break;
    case KB_GROUP_COMPLETING_REBALANCE: return KP_ERR_REBALANCE_IN_PROGRESS;
    default: return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    *out = g;
    return KP_ERR_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Subscriptions (consumer protocol, read only for OffsetDelete and retention)                  */

/* ConsumerProtocol Subscription: int16 version, then (all versions) int32 topic count and
 * int16-length topic names. Only that prefix is read. Returns 0 or -1 when it does not parse. */
static int subscription_topics(kp_bytes_t md, kb_group_t *g)
{
    kp_reader_t r;
    kp_reader_init(&r, md.ptr, md.len > 0 ? (size_t)md.len : 0);
    int16_t version = kp_read_i16(&r);
    int32_t n = kp_read_array_len(&r, false, 2);
    if (r.err || version < 0 || n < 0)
        return -1;
    for (int32_t i = 0; i < n; i++) {
        kp_str_t t = kp_read_string(&r, false);
        if (r.err || t.len < 0)
            return -1;
        bool have = false;
        for (int32_t j = 0; j < g->n_subscribed && !have; j++)
            have = kb_gstreq(g->subscribed[j], t);
        if (have)
            continue;
        char **s = realloc(g->subscribed, ((size_t)g->n_subscribed + 1) * sizeof *s);
        if (!s)
            return -1;
        g->subscribed = s;
        if (!(s[g->n_subscribed] = kb_gstrdup(t)))
            return -1;
        g->n_subscribed++;
    }
    return 0;
}

static void subs_clear(kb_group_t *g)
{
    for (int32_t i = 0; i < g->n_subscribed; i++)
        free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->n_subscribed = 0;
    g->subscribed_known = false;
}

void kb_group_subscriptions_update(kb_group_t *g)
{
    subs_clear(g);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
        return;
    if (!g->n_members) {
        g->subscribed_known = true;
        return;
    }
    if (!g->protocol_name)
        return;
    for (kb_gmember_t *m = g->members; m; m = m->next)
        if (subscription_topics(kb_gmember_metadata(m, g->protocol_name), g) < 0) {
            subs_clear(g);
            return;
        }
    g->subscribed_known = true;
}

static bool subscribed_to(const kb_group_t *g, kp_str_t topic)
{
    if (!g->subscribed_known)
        return false;
    for (int32_t i = 0; i < g->n_subscribed; i++)
        if (kb_gstreq(g->subscribed[i], topic))
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Retention and OffsetDelete                                                                   */

void kb_group_offsets_expire(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    int64_t ret = c->opts.offsets_retention_ms;
    if (kb_group_has_cmembers(g))
        return; /* a consumer group with members keeps its offsets, as a Stable group would */
    int mode; /* 0 none, 1 since the group became empty, 2 since commit (unsubscribed only) */
    if (g->protocol_type && g->state == KB_GROUP_EMPTY)
        mode = 1;
    else if (g->protocol_type && strcmp(g->protocol_type, "consumer") == 0 &&
             g->subscribed_known && g->state == KB_GROUP_STABLE)
        mode = 2;
    else if (!g->protocol_type)
        mode = 3;
    else
        mode = 0;
    if (mode && ret > 0) {
        kb_gmap_ent_t *e = kb_gmap_next(&g->offsets, NULL);
        while (e) {
            kb_gmap_ent_t *n = kb_gmap_next(&g->offsets, e);
            kb_offset_t *o = e->val;
            kp_str_t topic;
            int32_t partition;
            kb_group_offset_key(e, &topic, &partition);
            bool expired;
            if (mode == 2 && subscribed_to(g, topic))
                expired = false;
            else if (o->expire_ts >= 0)
                expired = now.wall >= o->expire_ts;
            else
                expired = now.wall - (mode == 1 ? g->state_ts : o->commit_ts) >= ret;
            if (expired) {
                if (c->opts.offset_expired)
                    c->opts.offset_expired(c->opts.ud, g, (const char *)e->key, partition);
                offset_free(kb_gmap_del(&g->offsets, e->key, e->klen));
            }
            e = n;
        }
    }
    if (g->state == KB_GROUP_EMPTY && !g->offsets.count && !g->n_pending) {
        g->state = KB_GROUP_DEAD;
        kb_group_store(c, g);
        kb_group_destroy(c, g);
    }
}

void kb_gcoord_topic_deleted(kb_gcoord_t *c, kp_str_t topic)
{
    kb_group_t *g = kb_gcoord_next(c, NULL);
    while (g) {
        kb_group_t *next = kb_gcoord_next(c, g);
        kb_gmap_ent_t *e = kb_gmap_next(&g->offsets, NULL);
        bool removed = false;
        while (e) {
            kb_gmap_ent_t *n = kb_gmap_next(&g->offsets, e);
            kp_str_t t;
            int32_t partition;
            kb_group_offset_key(e, &t, &partition);
            if (t.len == topic.len && memcmp(t.ptr, topic.ptr, (size_t)t.len) == 0) {
                if (c->opts.offset_expired)
                    c->opts.offset_expired(c->opts.ud, g, (const char *)e->key, partition);
                offset_free(kb_gmap_del(&g->offsets, e->key, e->klen));
                removed = true;
            }
            e = n;
        }
        if (removed && g->state == KB_GROUP_EMPTY && !g->offsets.count && !g->n_pending &&
            !kb_group_has_cmembers(g)) {
            g->state = KB_GROUP_DEAD;
            kb_group_store(c, g);
            kb_group_destroy(c, g);
        }
        g = next;
    }
}

int16_t kb_group_offset_delete_group_check(kb_gcoord_t *c, kp_str_t group_id, kb_group_t **out)
{
    *out = NULL;
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (!g || g->state == KB_GROUP_DEAD)
        return KP_ERR_GROUP_ID_NOT_FOUND;
    if (g->state != KB_GROUP_EMPTY &&
        !(g->protocol_type && strcmp(g->protocol_type, "consumer") == 0))
        return KP_ERR_NON_EMPTY_GROUP;
    *out = g;
    return KP_ERR_NONE;
}

int16_t kb_group_offset_delete_check(const kb_group_t *g, kp_str_t topic)
{
    if (kb_group_has_cmembers(g) && kb_cgroup_subscribes(g->cg, topic))
        return KP_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
    if (g->state != KB_GROUP_EMPTY && subscribed_to(g, topic))
        return KP_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
    return KP_ERR_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Reload                                                                                       */

static void members_clear(kb_group_t *g)
{
    kb_gmember_t *m = g->members;
    while (m) {
        kb_gmember_t *n = m->next;
        kb_gmember_free(m);
        m = n;
    }
    g->members = NULL;
    g->n_members = 0;
}

static kb_gmember_t *member_load(const kb_gmember_load_t *l, const char *protocol, kb_gtime_t now)
{
    kb_gmember_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->member_id = kb_gstrdup(l->member_id);
    m->instance_id = kb_gstrdup_len(l->group_instance_id, &m->instance_id_len);
    m->client_id = kb_gstrdup_len(l->client_id.len < 0 ? kp_str("") : l->client_id,
                                  &m->client_id_len);
    m->client_host = kb_gstrdup_len(l->client_host.len < 0 ? kp_str("") : l->client_host,
                                    &m->client_host_len);
    m->session_timeout_ms = l->session_timeout_ms;
    m->rebalance_timeout_ms = l->rebalance_timeout_ms;
    m->hb_deadline = now.mono + l->session_timeout_ms;
    m->protocols = calloc(1, sizeof *m->protocols);
    bool ok = m->member_id && m->client_id && m->client_host && m->protocols &&
              (l->group_instance_id.len < 0 || m->instance_id);
    if (ok) {
        m->n_protocols = 1;
        int32_t sl = l->subscription.len > 0 ? l->subscription.len : 0;
        m->protocols[0].name = strdup(protocol ? protocol : "");
        m->protocols[0].metadata = malloc(sl ? (size_t)sl : 1);
        m->protocols[0].metadata_len = sl;
        ok = m->protocols[0].name && m->protocols[0].metadata;
        if (ok && sl)
            memcpy(m->protocols[0].metadata, l->subscription.ptr, (size_t)sl);
    }
    if (ok && l->assignment.len > 0) {
        m->assignment = malloc((size_t)l->assignment.len);
        ok = m->assignment != NULL;
        if (ok) {
            memcpy(m->assignment, l->assignment.ptr, (size_t)l->assignment.len);
            m->assignment_len = l->assignment.len;
        }
    }
    if (!ok) {
        kb_gmember_free(m);
        return NULL;
    }
    return m;
}

int kb_group_load(kb_gcoord_t *c, const kb_group_load_t *l, kb_gtime_t now)
{
    if (l->group_id.len < 0)
        return K_ERR_INVAL;
    kb_group_t *g = kb_gcoord_find(c, l->group_id);
    if (!g && !(g = kb_group_create(c, l->group_id, now)))
        return K_ERR_NOMEM;
    members_clear(g);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader_id);
    g->protocol_type = kb_gstrdup(l->protocol_type);
    g->protocol_name = kb_gstrdup(l->protocol_name);
    g->leader_id = kb_gstrdup(l->leader_id);
    g->generation_id = l->generation_id;
    kb_gmember_t **tail = &g->members;
    for (int32_t i = 0; i < l->n_members; i++) {
        kb_gmember_t *m = member_load(&l->members[i], g->protocol_name, now);
        if (!m)
            return K_ERR_NOMEM;
        *tail = m;
        tail = &m->next;
        g->n_members++;
    }
    if (g->n_members && g->protocol_name) {
        g->state = KB_GROUP_STABLE;
        g->state_ts = now.wall;
    } else {
        members_clear(g);
        free(g->leader_id);
        g->leader_id = NULL;
        g->state = KB_GROUP_EMPTY;
        g->state_ts = l->state_ts;
    }
    g->join_deadline = g->sync_deadline = KB_GROUP_NO_DEADLINE;
    kb_group_subscriptions_update(g);
    return 0;
}

void kb_group_unload(kb_gcoord_t *c, kp_str_t group_id)
{
    kb_group_t *g = kb_gcoord_find(c, group_id);
    if (g)
        kb_group_destroy(c, g);
}

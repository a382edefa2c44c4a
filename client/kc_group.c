/*
 * A consumer-group member: JoinGroup (with the KIP-394 MEMBER_ID_REQUIRED round trip), the
 * leader's range assignment, SyncGroup, heartbeats from the poll loop, rejoining after a
 * rebalance, commits of the consumed positions, LeaveGroup.
 *
 * Records are read by one kc_consumer_t per assigned topic, positioned at the committed offset
 * (or earliest/latest when there is none). Assignment decoding and the subscription bytes
 * live in g->arena, reset at every join.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kc_group.h"
#include "client/kc_int.h"
#include "protocol/gen/kp_heartbeat.h"
#include "protocol/gen/kp_join_group.h"
#include "protocol/gen/kp_leave_group.h"
#include "protocol/gen/kp_sync_group.h"
#include "protocol/kp_errors.h"

#define MD_CHECK_MS 3000 /* how often a leader looks for new partitions of its topics */

typedef struct {
    char *topic; /* owned */
    kc_consumer_t *cs;
    int32_t *partitions; /* in g->arena */
    int32_t npartitions;
} gtopic_t;

struct kc_group {
    kc_client_t *c; /* not owned */
    kc_group_config_t cfg;
    char *group_id, *instance_id; /* owned */
    char **topics;                /* owned */
    char member_id[256];
    int32_t generation;
    bool joined, leader;
    int64_t next_hb, next_md_check;
    gtopic_t *asg;
    int nasg, next;
    /* what the leader assigned from, to notice new partitions */
    char **all_topics;
    int32_t *all_counts;
    int nall;
    kp_arena_t arena;
};

static void drop_assignment(kc_group_t *g)
{
    for (int i = 0; i < g->nasg; i++) {
        kc_consumer_free(g->asg[i].cs);
        free(g->asg[i].topic);
    }
    free(g->asg);
    g->asg = NULL;
    g->nasg = g->next = 0;
    for (int i = 0; i < g->nall; i++)
        free(g->all_topics[i]);
    free(g->all_topics);
    free(g->all_counts);
    g->all_topics = NULL;
    g->all_counts = NULL;
    g->nall = 0;
    g->joined = g->leader = false;
    kp_arena_reset(&g->arena);
}

kc_group_t *kc_group_new(kc_client_t *c, const kc_group_config_t *cfg)
{
    kc_group_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->c = c;
    g->cfg = *cfg;
    if (!g->cfg.session_timeout_ms) g->cfg.session_timeout_ms = 10000;
    if (!g->cfg.rebalance_timeout_ms) g->cfg.rebalance_timeout_ms = 30000;
    if (!g->cfg.heartbeat_interval_ms) g->cfg.heartbeat_interval_ms = 3000;
    g->generation = -1;
    kp_arena_init(&g->arena, NULL, 0, 0);
    g->group_id = strdup(cfg->group_id);
    g->instance_id = cfg->group_instance_id ? strdup(cfg->group_instance_id) : NULL;
    g->topics = calloc((size_t)cfg->ntopics + 1, sizeof *g->topics);
    bool ok = g->group_id && g->topics && (!cfg->group_instance_id || g->instance_id);
    for (int i = 0; ok && i < cfg->ntopics; i++)
        ok = (g->topics[i] = strdup(cfg->topics[i])) != NULL;
    if (!ok) {
        g->cfg.ntopics = cfg->ntopics;
        kc_group_close(g);
        kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    return g;
}

int32_t kc_group_generation(const kc_group_t *g)
{
    return g->joined ? g->generation : -1;
}

const char *kc_group_member_id(const kc_group_t *g)
{
    return g->member_id;
}

static int subscription_bytes(kc_group_t *g, kp_bytes_t *out)
{
    kp_str_t *t = kp_arena_alloc(&g->arena, sizeof *t * (size_t)(g->cfg.ntopics + 1));
    if (!t) return K_ERR_NOMEM;
    for (int i = 0; i < g->cfg.ntopics; i++)
        t[i] = kp_str(g->topics[i]);
    kc_subscription_t s = {.version = 1,
                           .topics = t,
                           .ntopics = g->cfg.ntopics,
                           .user_data = {NULL, -1},
                           .generation_id = -1,
                           .rack_id = {NULL, -1}};
    kp_buf_t b;
    kp_buf_init(&b);
    int rc = kc_subscription_encode(&b, &s);
    uint8_t *copy = rc ? NULL : kp_arena_alloc(&g->arena, b.len + 1);
    if (copy) memcpy(copy, b.data, b.len);
    *out = (kp_bytes_t){copy, (int32_t)b.len};
    kp_buf_deinit(&b);
    return rc ? rc : copy ? 0 : K_ERR_NOMEM;
}

/* The leader's work: decode every member's subscription, look up partition counts, run the
 * range assignor and encode one assignment per member into req (arrays in g->arena). */
static int leader_assign(kc_group_t *g, const kp_join_group_resp_t *jr,
                         kp_sync_group_req_sync_group_request_assignment_t **out, int32_t *nout)
{
    kc_client_t *c = g->c;
    int n = jr->members_count;
    kc_member_sub_t *ms = kp_arena_alloc(&g->arena, sizeof *ms * (size_t)(n + 1));
    kc_assignment_t *as = kp_arena_alloc(&g->arena, sizeof *as * (size_t)(n + 1));
    kp_sync_group_req_sync_group_request_assignment_t *sa =
        kp_arena_alloc(&g->arena, sizeof *sa * (size_t)(n + 1));
    if (!ms || !as || !sa) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    for (int i = 0; i < n; i++) {
        ms[i].member_id = jr->members[i].member_id;
        if (kc_subscription_decode(
                jr->members[i].metadata.ptr,
                jr->members[i].metadata.len > 0 ? (size_t)jr->members[i].metadata.len : 0,
                &g->arena, &ms[i].sub))
            memset(&ms[i].sub, 0, sizeof ms[i].sub); /* unreadable: subscribes to nothing */
        for (int32_t k = 0; k < ms[i].sub.ntopics; k++) {
            bool seen = false;
            for (int q = 0; q < g->nall && !seen; q++)
                seen = kp_str_eq(ms[i].sub.topics[k], g->all_topics[q]);
            if (seen) continue;
            char **t = realloc(g->all_topics, sizeof *t * (size_t)(g->nall + 1));
            int32_t *cnt = realloc(g->all_counts, sizeof *cnt * (size_t)(g->nall + 1));
            if (t) g->all_topics = t;
            if (cnt) g->all_counts = cnt;
            if (!t || !cnt) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
            kp_str_t s = ms[i].sub.topics[k];
            g->all_topics[g->nall] = strndup(s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
            if (!g->all_topics[g->nall]) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
            const kc_topic_md_t *md;
            /* Java consumers may auto-create subscribed topics; so do we. */
            g->all_counts[g->nall] =
                kc_client_topic(c, g->all_topics[g->nall], true, &md) == 0 ? md->npartitions : 0;
            g->nall++;
        }
    }
    int rc = kc_range_assign(&g->arena, ms, n, (const char *const *)g->all_topics, g->all_counts,
                             g->nall, as);
    if (rc) return kc_fail(c, rc, 0, "cannot compute the assignment: %s", k_strerror(rc));
    for (int i = 0; i < n; i++) {
        kp_buf_t b;
        kp_buf_init(&b);
        as[i].version = 0;
        rc = kc_assignment_encode(&b, &as[i]);
        uint8_t *copy = rc ? NULL : kp_arena_alloc(&g->arena, b.len + 1);
        if (copy) memcpy(copy, b.data, b.len);
        sa[i].member_id = jr->members[i].member_id;
        sa[i].assignment = (kp_bytes_t){copy, (int32_t)b.len};
        kp_buf_deinit(&b);
        if (!copy) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    }
    *out = sa;
    *nout = n;
    g->next_md_check = kc_now_ms() + MD_CHECK_MS;
    return 0;
}

/* Positions each assigned partition at its committed offset, or per from_beginning. */
static int position_all(kc_group_t *g)
{
    kc_client_t *c = g->c;
    kc_offsets_t *co = NULL;
    int rc = kc_fetch_committed(c, g->group_id, &co);
    if (rc) return rc;
    for (int i = 0; !rc && i < g->nasg; i++)
        for (int32_t k = 0; !rc && k < g->asg[i].npartitions; k++) {
            int32_t p = g->asg[i].partitions[k];
            int64_t off = -1;
            for (int q = 0; q < co->n; q++)
                if (co->v[q].partition == p && !strcmp(co->v[q].topic, g->asg[i].topic))
                    off = co->v[q].offset;
            if (off < 0)
                rc = kc_list_offset(c, g->asg[i].topic, p,
                                    g->cfg.from_beginning ? KC_OFFSET_BEGINNING : KC_OFFSET_END,
                                    &off);
            if (!rc) rc = kc_consumer_seek(g->asg[i].cs, p, off);
        }
    kc_offsets_free(co);
    return rc;
}

static int take_assignment(kc_group_t *g, kp_bytes_t bytes)
{
    kc_client_t *c = g->c;
    /* The bytes live in the response frame: copy them before decoding views into them. */
    uint8_t *copy = bytes.len > 0 ? kp_arena_alloc(&g->arena, (size_t)bytes.len) : NULL;
    if (bytes.len > 0 && !copy) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    if (copy) memcpy(copy, bytes.ptr, (size_t)bytes.len);
    kc_assignment_t as;
    if (kc_assignment_decode(copy, bytes.len > 0 ? (size_t)bytes.len : 0, &g->arena, &as))
        return kc_fail(c, K_ERR_MALFORMED, 0, "group %s: the leader sent an unreadable assignment",
                       g->group_id);
    g->asg = calloc((size_t)as.nparts + 1, sizeof *g->asg);
    if (!g->asg) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    for (int32_t i = 0; i < as.nparts; i++) {
        if (as.parts[i].npartitions <= 0) continue;
        gtopic_t *gt = &g->asg[g->nasg];
        gt->topic = strndup(as.parts[i].topic.ptr ? as.parts[i].topic.ptr : "",
                            as.parts[i].topic.len > 0 ? (size_t)as.parts[i].topic.len : 0);
        if (!gt->topic) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        gt->partitions = as.parts[i].partitions;
        gt->npartitions = as.parts[i].npartitions;
        gt->cs = kc_consumer_new(c, gt->topic, gt->partitions, gt->npartitions, 0);
        if (!gt->cs) {
            free(gt->topic);
            return K_ERR_AGAIN; /* metadata not there yet (or memory): join again */
        }
        g->nasg++;
    }
    return position_all(g);
}

/* One JoinGroup + SyncGroup attempt. K_ERR_AGAIN: try again (after a backoff if *backoff). */
static int join_once(kc_group_t *g, bool *backoff)
{
    kc_client_t *c = g->c;
    drop_assignment(g);
    *backoff = true;
    kc_conn_t *conn;
    int rc = kc_coordinator_conn(c, g->group_id, &conn);
    if (rc) return rc;
    kp_join_group_req_join_group_request_protocol_t proto = {kp_str("range"), {NULL, 0}};
    if ((rc = subscription_bytes(g, &proto.metadata)))
        return kc_fail(c, rc, 0, "cannot encode the subscription");
    kp_join_group_req_t req;
    kp_join_group_req_init(&req);
    req.group_id = kp_str(g->group_id);
    req.session_timeout_ms = g->cfg.session_timeout_ms;
    req.rebalance_timeout_ms = g->cfg.rebalance_timeout_ms;
    req.member_id = kp_str(g->member_id);
    req.group_instance_id = g->instance_id ? kp_str(g->instance_id) : (kp_str_t){NULL, -1};
    req.protocol_type = kp_str("consumer");
    req.protocols = &proto;
    req.protocols_count = 1;
    kp_join_group_resp_t jr;
    kp_join_group_resp_init(&jr);
    kc_rx_t rx;
    kc_rx_init(&rx);
    /* The coordinator holds a JoinGroup until the rebalance completes. */
    rc = kc_conn_call(c, conn, KP_API_JOIN_GROUP, &req, &jr, &rx, g->cfg.rebalance_timeout_ms);
    char what[300];
    snprintf(what, sizeof what, "joining group %s", g->group_id);
    if (!rc && jr.error_code == KP_ERR_MEMBER_ID_REQUIRED) {
        snprintf(g->member_id, sizeof g->member_id, "%.*s", jr.member_id.len, jr.member_id.ptr);
        *backoff = false;
        rc = kc_kafka_fail(c, jr.error_code, what, (kp_str_t){NULL, -1});
        kc_rx_deinit(&rx);
        return K_ERR_AGAIN;
    }
    if (!rc && jr.error_code == KP_ERR_UNKNOWN_MEMBER_ID) g->member_id[0] = 0;
    if (!rc && jr.error_code) {
        int16_t e = jr.error_code;
        rc = kc_kafka_fail(c, e, what, (kp_str_t){NULL, -1});
        if (e == KP_ERR_UNKNOWN_MEMBER_ID || e == KP_ERR_REBALANCE_IN_PROGRESS ||
            e == KP_ERR_ILLEGAL_GENERATION || kc_coordinator_moved(e))
            rc = K_ERR_AGAIN;
    }
    kp_sync_group_req_sync_group_request_assignment_t *sa = NULL;
    int32_t nsa = 0;
    if (!rc) {
        snprintf(g->member_id, sizeof g->member_id, "%.*s", jr.member_id.len, jr.member_id.ptr);
        g->generation = jr.generation_id;
        g->leader = kp_str_eq(jr.leader, g->member_id) && !jr.skip_assignment;
        if (g->leader) rc = leader_assign(g, &jr, &sa, &nsa);
    }
    kp_sync_group_resp_t sr;
    kp_sync_group_resp_init(&sr);
    kc_rx_t srx;
    kc_rx_init(&srx);
    if (!rc) {
        kp_sync_group_req_t sreq;
        kp_sync_group_req_init(&sreq);
        sreq.group_id = kp_str(g->group_id);
        sreq.generation_id = g->generation;
        sreq.member_id = kp_str(g->member_id);
        sreq.group_instance_id = req.group_instance_id;
        sreq.protocol_type = kp_str("consumer");
        sreq.protocol_name = jr.protocol_name;
        sreq.assignments = sa;
        sreq.assignments_count = nsa;
        rc =
            kc_conn_call(c, conn, KP_API_SYNC_GROUP, &sreq, &sr, &srx, g->cfg.rebalance_timeout_ms);
        snprintf(what, sizeof what, "syncing group %s", g->group_id);
        if (!rc && sr.error_code) {
            int16_t e = sr.error_code;
            rc = kc_kafka_fail(c, e, what, (kp_str_t){NULL, -1});
            if (e == KP_ERR_UNKNOWN_MEMBER_ID) g->member_id[0] = 0;
            if (e == KP_ERR_UNKNOWN_MEMBER_ID || e == KP_ERR_REBALANCE_IN_PROGRESS ||
                e == KP_ERR_ILLEGAL_GENERATION || kc_coordinator_moved(e)) {
                rc = K_ERR_AGAIN;
                *backoff = e != KP_ERR_REBALANCE_IN_PROGRESS;
            }
        }
        if (!rc) rc = take_assignment(g, sr.assignment);
    }
    kc_rx_deinit(&srx);
    kc_rx_deinit(&rx);
    if (!rc) {
        g->joined = true;
        g->next_hb = kc_now_ms() + g->cfg.heartbeat_interval_ms;
    } else {
        drop_assignment(g);
    }
    return rc;
}

static void heartbeat(kc_group_t *g)
{
    kc_client_t *c = g->c;
    int64_t now = kc_now_ms();
    if (now < g->next_hb) return;
    g->next_hb = now + g->cfg.heartbeat_interval_ms;
    kc_conn_t *conn;
    if (kc_coordinator_conn(c, g->group_id, &conn)) return; /* try again next interval */
    kp_heartbeat_req_t req;
    kp_heartbeat_req_init(&req);
    req.group_id = kp_str(g->group_id);
    req.generation_id = g->generation;
    req.member_id = kp_str(g->member_id);
    req.group_instance_id = g->instance_id ? kp_str(g->instance_id) : (kp_str_t){NULL, -1};
    kp_heartbeat_resp_t resp;
    kp_heartbeat_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    int rc = kc_conn_call(c, conn, KP_API_HEARTBEAT, &req, &resp, &rx, 0);
    int16_t e = rc ? 0 : resp.error_code;
    kc_rx_deinit(&rx);
    if (e == KP_ERR_UNKNOWN_MEMBER_ID || e == KP_ERR_FENCED_INSTANCE_ID) g->member_id[0] = 0;
    if (e == KP_ERR_REBALANCE_IN_PROGRESS || e == KP_ERR_UNKNOWN_MEMBER_ID ||
        e == KP_ERR_ILLEGAL_GENERATION || e == KP_ERR_FENCED_INSTANCE_ID)
        drop_assignment(g); /* rejoin on the next poll */
}

/* A leader rejoins when a subscribed topic gained partitions (or appeared). */
static void leader_check(kc_group_t *g)
{
    if (!g->leader || kc_now_ms() < g->next_md_check) return;
    g->next_md_check = kc_now_ms() + MD_CHECK_MS;
    for (int i = 0; i < g->nall; i++) {
        const kc_topic_md_t *md;
        if (kc_client_topic_ex(g->c, g->all_topics[i], true, false, &md) == 0 &&
            md->npartitions != g->all_counts[i]) {
            drop_assignment(g);
            return;
        }
    }
}

/* After OFFSET_OUT_OF_RANGE: partitions outside [log start, log end] restart per the policy. */
static void reset_out_of_range(kc_group_t *g, gtopic_t *gt)
{
    for (int32_t k = 0; k < gt->npartitions; k++) {
        int32_t p = gt->partitions[k];
        int64_t pos = kc_consumer_position(gt->cs, p), lo, hi;
        if (kc_list_offset(g->c, gt->topic, p, KC_OFFSET_BEGINNING, &lo) ||
            kc_list_offset(g->c, gt->topic, p, KC_OFFSET_END, &hi))
            continue;
        if (pos < lo || pos > hi) kc_consumer_seek(gt->cs, p, g->cfg.from_beginning ? lo : hi);
    }
}

int kc_group_poll(kc_group_t *g, int timeout_ms, kc_message_t *msg)
{
    kc_client_t *c = g->c;
    int64_t deadline = kc_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - kc_now_ms();
        if (!g->joined) {
            bool backoff;
            int rc = join_once(g, &backoff);
            if (rc && rc != K_ERR_AGAIN && rc != K_ERR_IO) return rc;
            if (rc && backoff) kc_sleep_ms(c->cfg.retry_backoff_ms);
            if (rc) {
                if (deadline - kc_now_ms() <= 0) return 0;
                continue;
            }
        }
        heartbeat(g);
        leader_check(g);
        if (!g->joined) continue;
        if (g->nasg == 0) {
            if (left <= 0) return 0;
            kc_sleep_ms(left < 100 ? (int)left : 100);
            continue;
        }
        /* A slice of 0 still hands out what was already fetched. */
        int rc = 0;
        for (int k = 0; k < g->nasg && rc == 0; k++) {
            gtopic_t *gt = &g->asg[g->next++ % g->nasg];
            int slice = left <= 0 ? 0 : left < 100 ? (int)left : 100;
            rc = kc_consumer_poll(gt->cs, slice, msg);
            if (rc < 0 && c->kerr == KP_ERR_OFFSET_OUT_OF_RANGE) {
                reset_out_of_range(g, gt);
                rc = 0;
            }
        }
        if (rc == 1) return 1;
        if (rc < 0 && rc != K_ERR_IO && rc != K_ERR_AGAIN) return rc;
        if (left <= 0) return 0;
    }
}

int kc_group_commit(kc_group_t *g)
{
    kc_client_t *c = g->c;
    if (!g->joined) return 0; /* positions were dropped with the assignment */
    int n = 0;
    for (int i = 0; i < g->nasg; i++)
        n += g->asg[i].npartitions;
    kc_offset_t *offs = calloc((size_t)n + 1, sizeof *offs);
    if (!offs) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    n = 0;
    for (int i = 0; i < g->nasg; i++)
        for (int32_t k = 0; k < g->asg[i].npartitions; k++) {
            int32_t p = g->asg[i].partitions[k];
            offs[n++] = (kc_offset_t){g->asg[i].topic, p, kc_consumer_position(g->asg[i].cs, p), 0};
        }
    int rc =
        n ? kc_commit_ex(c, g->group_id, g->generation, g->member_id, g->instance_id, offs, n) : 0;
    free(offs);
    int16_t e = c->kerr;
    if (rc && (e == KP_ERR_REBALANCE_IN_PROGRESS || e == KP_ERR_ILLEGAL_GENERATION ||
               e == KP_ERR_UNKNOWN_MEMBER_ID || e == KP_ERR_FENCED_INSTANCE_ID)) {
        if (e == KP_ERR_UNKNOWN_MEMBER_ID || e == KP_ERR_FENCED_INSTANCE_ID) g->member_id[0] = 0;
        drop_assignment(g);
        rc = K_ERR_AGAIN;
    }
    return rc;
}

void kc_group_close(kc_group_t *g)
{
    if (!g) return;
    kc_client_t *c = g->c;
    kc_conn_t *conn;
    /* Static members stay until their session expires (as Kafka's clients do), so that a
     * restart takes their slot back without a rebalance. */
    if (g->member_id[0] && !g->instance_id && g->group_id &&
        kc_coordinator_conn(c, g->group_id, &conn) == 0) {
        kp_leave_group_req_member_identity_t mi;
        kp_leave_group_req_member_identity_init(&mi);
        mi.member_id = kp_str(g->member_id);
        kp_leave_group_req_t req;
        kp_leave_group_req_init(&req);
        req.group_id = kp_str(g->group_id);
        req.member_id = kp_str(g->member_id);
        req.members = &mi;
        req.members_count = 1;
        kp_leave_group_resp_t resp;
        kp_leave_group_resp_init(&resp);
        kc_rx_t rx;
        kc_rx_init(&rx);
        (void)kc_conn_call(c, conn, KP_API_LEAVE_GROUP, &req, &resp, &rx, 0);
        kc_rx_deinit(&rx);
    }
    drop_assignment(g);
    kp_arena_deinit(&g->arena);
    for (int i = 0; g->topics && i < g->cfg.ntopics; i++)
        free(g->topics[i]);
    free(g->topics);
    free(g->group_id);
    free(g->instance_id);
    free(g);
}

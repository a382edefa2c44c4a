/*
 * Group membership APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
 * SyncGroup (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42); plus the per-broker
 * group state (coordinator, offsets log, deadline timer): the "group" subsystem.
 *
 * This node coordinates every group. JoinGroup and SyncGroup may be held (KB_PENDING) until
 * the rebalance they wait for completes; group.c delivers their results through callbacks,
 * which encode the response and complete the request.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/api/h_group.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "broker/group/cgroup.h"
#include "protocol/gen/kp_delete_groups.h"
#include "protocol/gen/kp_describe_groups.h"
#include "protocol/gen/kp_find_coordinator.h"
#include "protocol/gen/kp_heartbeat.h"
#include "protocol/gen/kp_join_group.h"
#include "protocol/gen/kp_leave_group.h"
#include "protocol/gen/kp_list_groups.h"
#include "protocol/gen/kp_sync_group.h"
#include "protocol/kp_errors.h"


bool kb_group_consumer_enabled(const kb_config_t *cfg)
{
    /* config.c checked the words; "consumer" is on when listed */
    const char *p = cfg->group_rebalance_protocols;
    for (const char *h = p; (h = strcasestr(h, "consumer")); h += 8)
        if ((h == p || h[-1] == ',' || h[-1] == ' ') && (!h[8] || h[8] == ',' || h[8] == ' '))
            return true;
    return false;
}

kb_gstate_t *kb_gstate(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_group_subsys) : NULL;
    return slot ? *slot : NULL;
}

/* Copies a NUL-terminated string into the request arena as a view (NULL stays null). */
/* A copy of s (any bytes, NUL included; len -1 = null) in the arena. */
kp_str_t kb_group_arena_view(kp_arena_t *a, kp_str_t s)
{
    kp_str_t r = {NULL, -1};
    if (s.len < 0 || !s.ptr)
        return r;
    char *p = kp_arena_alloc(a, (size_t)s.len + 1);
    if (!p)
        return r;
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    return (kp_str_t){p, s.len};
}

kp_str_t kb_group_arena_str(kp_arena_t *a, const char *s)
{
    kp_str_t r = {NULL, -1};
    if (!s)
        return r;
    size_t n = strlen(s);
    char *p = kp_arena_alloc(a, n + 1);
    if (!p)
        return r;
    memcpy(p, s, n);
    r.ptr = p;
    r.len = (int32_t)n;
    return r;
}

kp_bytes_t kb_group_arena_bytes(kp_arena_t *a, kp_bytes_t b)
{
    kp_bytes_t r = {(const uint8_t *)"", 0};
    if (b.len <= 0)
        return r;
    uint8_t *p = kp_arena_alloc(a, (size_t)b.len);
    if (!p)
        return r;
    memcpy(p, b.ptr, (size_t)b.len);
    r.ptr = p;
    r.len = b.len;
    return r;
}

/* Stands in the coordinator for a held request whose client went away; its answer is dropped. */
static char gone_waiter;

/* A held request got its answer: complete it, unless its own handler is still running (or
 * gs is NULL: the handler answers synchronously). */
static void finish(kb_gstate_t *gs, kb_req_t *req)
{
    if (!gs)
        return;
    req->on_cancel = NULL;
    if (gs->current == req)
        gs->current_done = true;
    else
        kb_req_complete(req);
}

/* ------------------------------------------------------------------------------------------ */
/* Coordinator callbacks                                                                       */

static void on_join_done(void *ud, void *waiter, const kb_join_result_t *r)
{
    kb_gstate_t *gs = ud;
    kb_req_t *req = waiter;
    if (waiter == &gone_waiter)
        return;
    int16_t v = req->hdr.api_version;
    kp_join_group_resp_t resp;
    kp_join_group_resp_init(&resp);
    resp.error_code = r->error_code;
    resp.generation_id = r->generation_id;
    resp.protocol_type = kb_group_arena_str(&req->arena, r->protocol_type);
    resp.protocol_name = kb_group_arena_str(&req->arena, r->protocol_name ? r->protocol_name
                                                                 : (v >= 7 ? NULL : ""));
    resp.leader = kb_group_arena_str(&req->arena, r->leader_id);
    resp.member_id = kb_group_arena_str(&req->arena, r->member_id);
    resp.skip_assignment = r->skip_assignment;
    if (r->n_members > 0) {
        resp.members = kp_arena_alloc(&req->arena, sizeof *resp.members * (size_t)r->n_members);
        if (resp.members) {
            resp.members_count = r->n_members;
            for (int32_t i = 0; i < r->n_members; i++) {
                kp_join_group_resp_join_group_response_member_t *m = &resp.members[i];
                kp_join_group_resp_join_group_response_member_init(m);
                m->member_id = kb_group_arena_str(&req->arena, r->members[i].member_id);
                m->group_instance_id = kb_group_arena_view(&req->arena, r->members[i].group_instance_id);
                m->metadata = kb_group_arena_bytes(&req->arena, r->members[i].metadata);
            }
        }
    }
    kp_join_group_resp_encode(&req->resp, v, &resp);
    finish(gs, req);
}

static void on_sync_done(void *ud, void *waiter, const kb_sync_result_t *r)
{
    kb_gstate_t *gs = ud;
    kb_req_t *req = waiter;
    if (waiter == &gone_waiter)
        return;
    kp_sync_group_resp_t resp;
    kp_sync_group_resp_init(&resp);
    resp.error_code = r->error_code;
    resp.protocol_type = kb_group_arena_str(&req->arena, r->protocol_type);
    resp.protocol_name = kb_group_arena_str(&req->arena, r->protocol_name);
    resp.assignment = kb_group_arena_bytes(&req->arena, r->assignment);
    kp_sync_group_resp_encode(&req->resp, req->hdr.api_version, &resp);
    finish(gs, req);
}

static void on_store_group(void *ud, const kb_group_t *g)
{
    kb_gstate_t *gs = ud;
    if (!gs->ostore)
        return;
    int64_t end;
    int rc = kb_ostore_append_group(gs->ostore, g, kb_wall_ms(), &end);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "groups: writing metadata of group %s failed: %s", g->group_id,
               k_strerror(rc));
        return;
    }
    gs->last_end = end;
    gs->appended = true;
}

static void on_offset_expired(void *ud, const kb_group_t *g, const char *topic, int32_t part)
{
    kb_gstate_t *gs = ud;
    if (!gs->ostore)
        return;
    kb_ostore_rec_t rec = {.topic = kp_str(topic), .partition = part, .tombstone = true};
    int64_t end;
    if (kb_ostore_append_offsets(gs->ostore, kp_str(g->group_id), &rec, 1, kb_wall_ms(), &end) ==
        0) {
        gs->last_end = end;
        gs->appended = true;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle and the deadline timer                                                           */

static void on_timer(uv_timer_t *t)
{
    kb_gstate_t *gs = t->data;
    if (!gs || !gs->coord)
        return;
    kb_gcoord_poll(gs->coord, kb_gnow());
    if (gs->ostore)
        kb_ostore_maybe_compact(gs->ostore, kb_wall_ms());
    kb_gstate_arm(gs);
}

void kb_gstate_arm(kb_gstate_t *gs)
{
    if (!gs || !gs->timer)
        return;
    int64_t next = kb_gcoord_next_deadline(gs->coord);
    if (next == KB_GROUP_NO_DEADLINE) {
        uv_timer_stop(gs->timer);
        return;
    }
    int64_t wait = next - kb_mono_ms(); /* deadlines are on the mono clock */
    if (wait < 0)
        wait = 0;
    uv_timer_start(gs->timer, on_timer, (uint64_t)wait, 0);
}

static int groups_init(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_group_subsys);
    if (!slot)
        return K_ERR_INVAL;
    if (*slot)
        return 0;
    const kb_config_t *cfg = kb_broker_config(b);
    kb_gstate_t *gs = calloc(1, sizeof *gs); /* owned by the broker's group slot until close */
    if (!gs)
        return K_ERR_NOMEM;
    gs->broker = b;
    kb_gcoord_opts_t o = {
        .min_session_timeout_ms = cfg->group_min_session_timeout_ms,
        .max_session_timeout_ms = cfg->group_max_session_timeout_ms,
        .initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms,
        .offsets_retention_ms = cfg->offsets_retention_minutes * 60000,
        .consumer =
            {
                .enabled = kb_group_consumer_enabled(cfg),
                .session_timeout_ms = cfg->group_consumer_session_timeout_ms,
                .heartbeat_interval_ms = cfg->group_consumer_heartbeat_interval_ms,
            },
        .seed = (uint64_t)kb_wall_ms() ^ ((uint64_t)(uintptr_t)gs << 16),
        .join_done = on_join_done,
        .sync_done = on_sync_done,
        .store_group = on_store_group,
        .offset_expired = on_offset_expired,
        .ud = gs,
    };
    if (kb_assignors_parse(cfg->group_consumer_assignors, o.consumer.assignors,
                           &o.consumer.n_assignors) < 0) {
        o.consumer.assignors[0] = KB_ASSIGNOR_UNIFORM; /* config.c validated it already */
        o.consumer.n_assignors = 1;
    }
    int rc = kb_gcoord_new(&o, &gs->coord);
    if (rc < 0) {
        free(gs);
        return rc;
    }
    ks_store_t *s = kb_broker_store(b);
    rc = s ? kb_ostore_open(s, gs->coord, cfg->topic_defaults.segment_bytes, kb_gnow(),
                            &gs->ostore)
           : K_ERR_INVAL;
    if (rc < 0) {
        /* Serve without groups rather than not at all: clients see COORDINATOR_NOT_AVAILABLE. */
        kb_log(KB_LOG_ERROR, "groups: cannot open %s: %s; group coordination is unavailable",
               KB_OFFSETS_TOPIC, k_strerror(rc));
        gs->ostore = NULL;
    } else {
        int64_t n, skipped;
        kb_ostore_load_stats(gs->ostore, &n, &skipped);
        kb_log(KB_LOG_INFO, "groups: loaded %lld offsets-log records (%lld skipped)",
               (long long)n, (long long)skipped);
    }
    gs->timer = malloc(sizeof *gs->timer);
    if (gs->timer) {
        uv_timer_init(kb_broker_loop(b), gs->timer);
        gs->timer->data = gs;
    }
    *slot = gs;
    /* The first poll starts the retention clock, so the timer always has a next deadline. */
    kb_gcoord_poll(gs->coord, kb_gnow());
    kb_gstate_arm(gs);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void groups_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_group_subsys);
    kb_gstate_t *gs = slot ? *slot : NULL;
    if (!gs)
        return;
    *slot = NULL;
    if (gs->timer) {
        gs->timer->data = NULL;
        uv_close((uv_handle_t *)gs->timer, on_timer_closed);
    }
    kb_gcoord_free(gs->coord); /* answers held joins/syncs */
    kb_ostore_close(gs->ostore);
    free(gs);
}

static void groups_topic_deleted(kb_broker_t *b, const char *topic)
{
    kb_gstate_t *gs = kb_gstate(b);
    if (!gs || !gs->ostore)
        return;
    kb_gcoord_topic_deleted(gs->coord, kp_str(topic));
    kb_gstate_arm(gs);
}

const kb_subsys_t kb_group_subsys = {
    .name = "group",
    .init = groups_init,
    .close = groups_close,
    .topic_deleted = groups_topic_deleted,
};

/* ------------------------------------------------------------------------------------------ */
/* FindCoordinator                                                                             */

static int16_t coordinator_for(kb_req_t *req, int8_t key_type, kp_str_t key, int32_t *node,
                               kp_str_t *host, int32_t *port, kp_str_t *msg)
{
    const kb_config_t *cfg = kb_broker_config(req->broker);
    kb_gstate_t *gs = kb_gstate(req->broker);
    *node = -1;
    *host = kp_str("");
    *port = -1;
    *msg = (kp_str_t){NULL, -1};
    int16_t err = KP_ERR_NONE;
    if (key_type == 0 && !kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_GROUP, key))
        err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (key_type == 1) /* DESCRIBE on the id, and there is no transaction coordinator */
        err = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    else if (key_type != 0)
        err = KP_ERR_INVALID_REQUEST;
    else if (!gs || !gs->ostore)
        err = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (err != KP_ERR_NONE) {
        *msg = kp_str(kp_error_message(err));
        return err;
    }
    *node = cfg->node_id;
    const kb_listener_t *l = kb_req_listener(req); /* the client's listener */
    *host = kp_str(l->advertised_host);
    *port = l->advertised_port;
    return KP_ERR_NONE;
}

int kb_handle_find_coordinator(kb_req_t *req)
{
    kp_find_coordinator_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_find_coordinator_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kp_find_coordinator_resp_t resp;
    kp_find_coordinator_resp_init(&resp);
    if (v < 4) {
        resp.error_code = coordinator_for(req, v >= 1 ? m.key_type : 0, m.key, &resp.node_id,
                                          &resp.host, &resp.port, &resp.error_message);
        kb_req_error(req, resp.error_code);
    } else {
        int32_t n = m.coordinator_keys_count > 0 ? m.coordinator_keys_count : 0;
        resp.coordinators = n ? kp_arena_alloc(&req->arena, sizeof *resp.coordinators * (size_t)n)
                              : NULL;
        if (n && !resp.coordinators)
            return K_ERR_NOMEM;
        resp.coordinators_count = n;
        for (int32_t i = 0; i < n; i++) {
            kp_find_coordinator_resp_coordinator_t *c = &resp.coordinators[i];
            kp_find_coordinator_resp_coordinator_init(c);
            c->key = m.coordinator_keys[i];
            c->error_code = coordinator_for(req, m.key_type, c->key, &c->node_id, &c->host,
                                            &c->port, &c->error_message);
            kb_req_error(req, c->error_code);
        }
    }
    rc = kp_find_coordinator_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* JoinGroup / SyncGroup (may be held)                                                         */

/* "/ip" from the connection's "ip:port" (Kafka reports the client host with a slash). */
kp_str_t kb_group_client_host(kb_req_t *req)
{
    const char *peer = kb_conn_peer(req->conn);
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (colon)
        n = (size_t)(colon - peer);
    const char *start = peer;
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        start++;
        n -= 2;
    }
    char *p = kp_arena_alloc(&req->arena, n + 2);
    if (!p)
        return kp_str("");
    p[0] = '/';
    memcpy(p + 1, start, n);
    p[n + 1] = 0;
    return (kp_str_t){p, (int32_t)n + 1};
}

/* The client of a held JoinGroup/SyncGroup disconnected: release the request now rather than
 * when the rebalance ends (req->on_cancel). */
static void on_held_cancel(kb_req_t *req)
{
    kb_gstate_t *gs = kb_gstate(req->broker);
    if (gs && gs->coord)
        kb_group_waiter_replace(gs->coord, req, &gone_waiter);
    kb_req_complete(req);
}

/* Runs a coordinator call for req and reports whether its answer is already encoded. */
static int held(kb_gstate_t *gs, kb_req_t *req)
{
    bool done = gs->current_done;
    gs->current = NULL;
    gs->current_done = false;
    kb_gstate_arm(gs);
    if (!done)
        req->on_cancel = on_held_cancel;
    return done ? KB_DONE : KB_PENDING;
}

int kb_handle_join_group(kb_req_t *req)
{
    kp_join_group_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_join_group_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    bool allowed = kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m.group_id);
    if (!allowed || !gs || !gs->ostore) {
        kb_join_result_t r = {.error_code = allowed ? KP_ERR_COORDINATOR_NOT_AVAILABLE
                                                    : KP_ERR_GROUP_AUTHORIZATION_FAILED,
                              .generation_id = -1,
                              .leader_id = "",
                              .member_id = ""};
        kb_req_error(req, r.error_code);
        on_join_done(NULL, req, &r);
        return KB_DONE;
    }
    if (kb_gstr_too_long(m.group_id) || kb_gstr_too_long(m.member_id) ||
        kb_gstr_too_long(m.group_instance_id) || kb_gstr_too_long(m.protocol_type))
        return K_ERR_MALFORMED;
    int32_t n = m.protocols_count > 0 ? m.protocols_count : 0;
    for (int32_t i = 0; i < n; i++)
        if (kb_gstr_too_long(m.protocols[i].name))
            return K_ERR_MALFORMED;
    kb_gproto_in_t *protos = n ? kp_arena_alloc(&req->arena, sizeof *protos * (size_t)n) : NULL;
    if (n && !protos)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        protos[i].name = m.protocols[i].name;
        protos[i].metadata = m.protocols[i].metadata;
    }
    kb_join_params_t p = {
        .group_id = m.group_id,
        .member_id = m.member_id.len < 0 ? kp_str("") : m.member_id,
        .group_instance_id = v >= 5 ? m.group_instance_id : (kp_str_t){NULL, -1},
        .client_id = req->hdr.client_id,
        .client_host = kb_group_client_host(req),
        .protocol_type = m.protocol_type,
        .session_timeout_ms = m.session_timeout_ms,
        .rebalance_timeout_ms = v >= 1 ? m.rebalance_timeout_ms : -1,
        .protocols = protos,
        .n_protocols = n,
        .require_known_member_id = v >= 4,
        .supports_skip_assignment = v >= 9,
    };
    gs->current = req;
    gs->current_done = false;
    kb_group_join(gs->coord, &p, kb_gnow(), req);
    return held(gs, req);
}

int kb_handle_sync_group(kb_req_t *req)
{
    kp_sync_group_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_sync_group_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    bool allowed = kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m.group_id);
    if (!allowed || !gs || !gs->ostore) {
        kb_sync_result_t r = {.error_code = allowed ? KP_ERR_COORDINATOR_NOT_AVAILABLE
                                                    : KP_ERR_GROUP_AUTHORIZATION_FAILED,
                              .assignment = {(const uint8_t *)"", 0}};
        kb_req_error(req, r.error_code);
        on_sync_done(NULL, req, &r);
        return KB_DONE;
    }
    int32_t n = m.assignments_count > 0 ? m.assignments_count : 0;
    kb_gassign_in_t *as = n ? kp_arena_alloc(&req->arena, sizeof *as * (size_t)n) : NULL;
    if (n && !as)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        as[i].member_id = m.assignments[i].member_id;
        as[i].assignment = m.assignments[i].assignment;
    }
    kb_sync_params_t p = {
        .group_id = m.group_id,
        .member_id = m.member_id,
        .group_instance_id = v >= 3 ? m.group_instance_id : (kp_str_t){NULL, -1},
        .protocol_type = v >= 5 ? m.protocol_type : (kp_str_t){NULL, -1},
        .protocol_name = v >= 5 ? m.protocol_name : (kp_str_t){NULL, -1},
        .generation_id = m.generation_id,
        .assignments = as,
        .n_assignments = n,
    };
    gs->current = req;
    gs->current_done = false;
    kb_group_sync(gs->coord, &p, kb_gnow(), req);
    return held(gs, req);
}

/* ------------------------------------------------------------------------------------------ */
/* Heartbeat / LeaveGroup                                                                      */

int kb_handle_heartbeat(kb_req_t *req)
{
    kp_heartbeat_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_heartbeat_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_heartbeat_resp_t resp;
    kp_heartbeat_resp_init(&resp);
    if (!kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m.group_id)) {
        resp.error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    } else if (!gs || !gs->ostore) {
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        resp.error_code = kb_group_heartbeat(gs->coord, m.group_id, m.generation_id, m.member_id,
                                             v >= 3 ? m.group_instance_id : (kp_str_t){NULL, -1},
                                             kb_gnow());
        kb_gstate_arm(gs);
    }
    kb_req_error(req, resp.error_code);
    rc = kp_heartbeat_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_leave_group(kb_req_t *req)
{
    kp_leave_group_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_leave_group_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_leave_group_resp_t resp;
    kp_leave_group_resp_init(&resp);
    /* v0-2 name one member; treat it as a one-element v3 list. */
    kp_leave_group_req_member_identity_t single;
    kp_leave_group_req_member_identity_init(&single);
    kp_leave_group_req_member_identity_t *members = m.members;
    int32_t n = m.members_count > 0 ? m.members_count : 0;
    if (v < 3) {
        single.member_id = m.member_id;
        members = &single;
        n = 1;
    }
    if (!kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m.group_id))
        resp.error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (!gs || !gs->ostore)
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    else
        resp.error_code = kb_group_leave_check(gs->coord, m.group_id);
    kb_req_error(req, resp.error_code);
    if (resp.error_code == KP_ERR_NONE && n) {
        resp.members = kp_arena_alloc(&req->arena, sizeof *resp.members * (size_t)n);
        if (!resp.members)
            return K_ERR_NOMEM;
        resp.members_count = n;
        for (int32_t i = 0; i < n; i++) {
            kp_leave_group_resp_member_response_t *r = &resp.members[i];
            kp_leave_group_resp_member_response_init(r);
            r->member_id = members[i].member_id;
            r->group_instance_id = members[i].group_instance_id;
            r->error_code = kb_group_leave_member(gs->coord, m.group_id, members[i].member_id,
                                                  members[i].group_instance_id, kb_gnow());
        }
        if (v < 3)
            resp.error_code = resp.members[0].error_code;
        kb_gstate_arm(gs);
    }
    rc = kp_leave_group_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* ListGroups / DescribeGroups / DeleteGroups                                                  */

static bool filter_has(const kp_str_t *f, int32_t n, const char *s)
{
    if (n <= 0)
        return true;
    for (int32_t i = 0; i < n; i++)
        if (f[i].len >= 0 && (size_t)f[i].len == strlen(s) &&
            strncasecmp(f[i].ptr, s, (size_t)f[i].len) == 0)
            return true;
    return false;
}

int kb_handle_list_groups(kb_req_t *req)
{
    kp_list_groups_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_list_groups_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_list_groups_resp_t resp;
    kp_list_groups_resp_init(&resp);
    if (!gs || !gs->ostore) {
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        /* DESCRIBE on the cluster lists every group; without it, those it may DESCRIBE. */
        bool all = kb_authorize_cluster(req, KB_OP_DESCRIBE);
        int32_t cap = 0;
        for (kb_group_t *g = kb_gcoord_next(gs->coord, NULL); g; g = kb_gcoord_next(gs->coord, g))
            cap++;
        resp.groups = cap ? kp_arena_alloc(&req->arena, sizeof *resp.groups * (size_t)cap) : NULL;
        if (cap && !resp.groups)
            return K_ERR_NOMEM;
        for (kb_group_t *g = kb_gcoord_next(gs->coord, NULL); g; g = kb_gcoord_next(gs->coord, g)) {
            /* Both kinds, each with its own states (KIP-848 adds Assigning, Reconciling). */
            const char *state =
                g->cg ? kb_cgroup_state_name(g->cg) : kb_group_state_name(g->state);
            const char *type = g->cg ? "consumer" : "classic";
            if (!filter_has(m.states_filter, v >= 4 ? m.states_filter_count : 0, state) ||
                !filter_has(m.types_filter, v >= 5 ? m.types_filter_count : 0, type) ||
                (!all && !kb_authorize(req, KB_OP_DESCRIBE, KB_RES_GROUP, g->group_id,
                                       strlen(g->group_id))))
                continue;
            kp_list_groups_resp_listed_group_t *lg = &resp.groups[resp.groups_count++];
            kp_list_groups_resp_listed_group_init(lg);
            lg->group_id = kb_group_arena_str(&req->arena, g->group_id);
            lg->protocol_type = kb_group_arena_str(
                &req->arena, g->cg ? "consumer" : (g->protocol_type ? g->protocol_type : ""));
            lg->group_state = kp_str(state);
            lg->group_type = kp_str(type);
        }
    }
    rc = kp_list_groups_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

static int describe_one(kb_req_t *req, kb_gstate_t *gs, kp_str_t id, bool ops,
                        kp_describe_groups_resp_described_group_t *d)
{
    kp_describe_groups_resp_described_group_init(d);
    d->group_id = id;
    d->protocol_type = kp_str("");
    d->protocol_data = kp_str("");
    if (!kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_GROUP, id)) {
        d->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
        d->group_state = kp_str("");
        return 0;
    }
    if (ops) /* what the seam allows on this group (READ, DELETE, DESCRIBE bits) */
        d->authorized_operations = kb_authorized_operations(
            req, KB_RES_GROUP, id.ptr ? id.ptr : "", id.len > 0 ? (size_t)id.len : 0);
    if (!gs || !gs->ostore) {
        d->error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
        d->group_state = kp_str("");
        return 0;
    }
    if (id.len < 0) {
        d->error_code = KP_ERR_INVALID_GROUP_ID;
        d->group_state = kp_str("");
        return 0;
    }
    kb_group_t *g = kb_gcoord_find(gs->coord, id);
    if (!g) {
        d->group_state = kp_str("Dead");
        return 0;
    }
    if (g->cg)
        return kb_cgroup_describe_classic(req, g, d);
    bool stable = g->state == KB_GROUP_STABLE;
    d->group_state = kp_str(kb_group_state_name(g->state));
    d->protocol_type = kb_group_arena_str(&req->arena, g->protocol_type ? g->protocol_type : "");
    d->protocol_data = kb_group_arena_str(&req->arena, stable && g->protocol_name ? g->protocol_name : "");
    if (!g->n_members)
        return 0;
    d->members = kp_arena_alloc(&req->arena, sizeof *d->members * (size_t)g->n_members);
    if (!d->members)
        return K_ERR_NOMEM;
    for (kb_gmember_t *m = g->members; m; m = m->next) {
        kp_describe_groups_resp_described_group_member_t *dm = &d->members[d->members_count++];
        kp_describe_groups_resp_described_group_member_init(dm);
        dm->member_id = kb_group_arena_str(&req->arena, m->member_id);
        dm->group_instance_id = kb_group_arena_view(&req->arena, m->instance_id
                                    ? (kp_str_t){m->instance_id, m->instance_id_len}
                                    : (kp_str_t){NULL, -1});
        dm->client_id = kb_group_arena_view(&req->arena, (kp_str_t){m->client_id, m->client_id_len});
        dm->client_host = kb_group_arena_view(&req->arena, (kp_str_t){m->client_host, m->client_host_len});
        dm->member_metadata = (kp_bytes_t){(const uint8_t *)"", 0};
        dm->member_assignment = (kp_bytes_t){(const uint8_t *)"", 0};
        if (stable) {
            dm->member_metadata = kb_group_arena_bytes(&req->arena,
                                              kb_gmember_metadata(m, g->protocol_name));
            dm->member_assignment = kb_group_arena_bytes(
                &req->arena, (kp_bytes_t){m->assignment, m->assignment ? m->assignment_len : 0});
        }
    }
    return 0;
}

int kb_handle_describe_groups(kb_req_t *req)
{
    kp_describe_groups_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_describe_groups_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_describe_groups_resp_t resp;
    kp_describe_groups_resp_init(&resp);
    int32_t n = m.groups_count > 0 ? m.groups_count : 0;
    resp.groups = n ? kp_arena_alloc(&req->arena, sizeof *resp.groups * (size_t)n) : NULL;
    if (n && !resp.groups)
        return K_ERR_NOMEM;
    resp.groups_count = n;
    for (int32_t i = 0; i < n; i++) {
        if (describe_one(req, gs, m.groups[i], v >= 3 && m.include_authorized_operations,
                         &resp.groups[i]))
            return K_ERR_NOMEM;
        kb_req_error(req, resp.groups[i].error_code);
    }
    rc = kp_describe_groups_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_delete_groups(kb_req_t *req)
{
    kp_delete_groups_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_delete_groups_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_delete_groups_resp_t *resp = kp_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return K_ERR_NOMEM;
    kp_delete_groups_resp_init(resp);
    int32_t n = m.groups_names_count > 0 ? m.groups_names_count : 0;
    resp->results = n ? kp_arena_alloc(&req->arena, sizeof *resp->results * (size_t)n) : NULL;
    if (n && !resp->results)
        return K_ERR_NOMEM;
    resp->results_count = n;
    bool up = gs && gs->ostore;
    if (up)
        gs->appended = false;
    for (int32_t i = 0; i < n; i++) {
        kp_delete_groups_resp_deletable_group_result_t *r = &resp->results[i];
        kp_delete_groups_resp_deletable_group_result_init(r);
        r->group_id = m.groups_names[i];
        if (!kb_authorize_str(req, KB_OP_DELETE, KB_RES_GROUP, m.groups_names[i]))
            r->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
        else
            r->error_code = up ? kb_group_delete(gs->coord, m.groups_names[i])
                               : KP_ERR_COORDINATOR_NOT_AVAILABLE;
        kb_req_error(req, r->error_code);
    }
    if (up && gs->appended) {
        kb_gstate_arm(gs);
        return kb_gdefer(gs, req, KB_GDEFER_DELETE_GROUPS, resp, gs->last_end);
    }
    rc = kb_gdefer_encode(req, KB_GDEFER_DELETE_GROUPS, resp, 0);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * Consumer group protocol (KIP-848) APIs: ConsumerGroupHeartbeat (68) and
 * ConsumerGroupDescribe (69), plus the consumer-group answers of DescribeGroups and
 * ListGroups (h_group.c calls kb_cgroup_describe_classic). The state machine is
 * broker/group/cgroup.c; this file turns requests into its calls and its results into
 * responses, and hands it a snapshot of the broker's topics (names, ids, partition counts).
 *
 * Authorization as Kafka: READ on the group for the heartbeat, DESCRIBE on every subscribed
 * topic name (TOPIC_AUTHORIZATION_FAILED), regex matches filtered to topics the member may
 * DESCRIBE; DESCRIBE on the group for ConsumerGroupDescribe. Every check goes through
 * kb_authorize, so the audit trail sees first access as for the other group APIs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_group.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "broker/group/cgroup.h"
#include "protocol/gen/kp_consumer_group_describe.h"
#include "protocol/gen/kp_consumer_group_heartbeat.h"
#include "protocol/kp_errors.h"

/* The broker's topics, sorted by name (ks_topic_next walks in name order), in the arena. */
static int topics_snapshot(kb_req_t *req, kb_ctopics_t *out)
{
    ks_store_t *s = kb_broker_store(req->broker);
    int32_t n = 0;
    for (ks_topic_t *t = s ? ks_topic_next(s, NULL) : NULL; t; t = ks_topic_next(s, t))
        n++;
    kb_ctopic_t *v = kp_arena_alloc(&req->arena, sizeof *v * (size_t)(n ? n : 1));
    if (!v)
        return K_ERR_NOMEM;
    int32_t i = 0;
    for (ks_topic_t *t = s ? ks_topic_next(s, NULL) : NULL; t && i < n; t = ks_topic_next(s, t)) {
        const char *name = ks_topic_name(t);
        v[i] = (kb_ctopic_t){.name = name,
                             .id = ks_topic_id(t),
                             .partitions = ks_topic_partitions(t),
                             .internal = kb_topic_internal(name, strlen(name))};
        i++;
    }
    *out = (kb_ctopics_t){.v = v, .n = i};
    return 0;
}

static bool may_describe(void *ud, const char *topic)
{
    return kb_authorize(ud, KB_OP_DESCRIBE, KB_RES_TOPIC, topic, strlen(topic));
}

static const kb_ctopic_t *snap_by_name(const kb_ctopics_t *s, const char *name)
{
    for (int32_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

/* The distinct topic indexes of a set, in order, with their partitions: calls fn per topic. */
typedef struct {
    kp_uuid_t id;
    kp_str_t name;
    int32_t *parts;
    int32_t n;
} tparts_t;

/* Splits a partition set by topic into arena arrays (topics gone from the broker left out). */
static int split_topics(kb_req_t *req, const kb_cgroup_t *cg, const kb_ctopics_t *s,
                        const kb_tpset_t *set, tparts_t **out, int32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!set || !set->n)
        return 0;
    tparts_t *v = kp_arena_alloc(&req->arena, sizeof *v * (size_t)set->n);
    if (!v)
        return K_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t i = 0; i < set->n;) {
        int32_t t = KB_TP_TOPIC(set->v[i]);
        int32_t np = kb_tpset_topic_parts(set, t, NULL);
        const kb_ctopic_t *ct = snap_by_name(s, cg->topics[t]);
        if (ct) {
            v[n].id = ct->id;
            v[n].name = kp_str(ct->name);
            v[n].parts = kp_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)np);
            if (!v[n].parts)
                return K_ERR_NOMEM;
            v[n].n = kb_tpset_topic_parts(set, t, v[n].parts);
            n++;
        }
        i += np;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ConsumerGroupHeartbeat                                                                      */

static int16_t hb_authorize(kb_req_t *req, const kp_consumer_group_heartbeat_req_t *m,
                            kp_str_t *msg)
{
    if (!kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m->group_id))
        return KP_ERR_GROUP_AUTHORIZATION_FAILED;
    for (int32_t i = 0; i < m->subscribed_topic_names_count; i++)
        if (!kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_TOPIC, m->subscribed_topic_names[i])) {
            *msg = kp_str("The member is not authorized to describe a subscribed topic.");
            return KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        }
    return KP_ERR_NONE;
}

static int hb_params(kb_req_t *req, const kp_consumer_group_heartbeat_req_t *m,
                     kb_chb_params_t *p)
{
    int32_t no = m->topic_partitions_count;
    kb_ctp_in_t *owned = no > 0 ? kp_arena_alloc(&req->arena, sizeof *owned * (size_t)no) : NULL;
    if (no > 0 && !owned)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < no; i++)
        owned[i] = (kb_ctp_in_t){.topic_id = m->topic_partitions[i].topic_id,
                                 .partitions = m->topic_partitions[i].partitions,
                                 .n = m->topic_partitions[i].partitions_count > 0
                                          ? m->topic_partitions[i].partitions_count
                                          : 0};
    *p = (kb_chb_params_t){
        .version = req->hdr.api_version,
        .group_id = m->group_id,
        .member_id = m->member_id,
        .member_epoch = m->member_epoch,
        .instance_id = m->instance_id,
        .rack_id = m->rack_id,
        .client_id = m->member_epoch == 0 ? req->hdr.client_id : (kp_str_t){NULL, -1},
        .client_host = m->member_epoch == 0 ? kb_group_client_host(req) : (kp_str_t){NULL, -1},
        .rebalance_timeout_ms = m->rebalance_timeout_ms,
        .topic_names = m->subscribed_topic_names,
        .n_topic_names = m->subscribed_topic_names_count,
        .topic_regex = req->hdr.api_version >= 1 ? m->subscribed_topic_regex
                                                 : (kp_str_t){NULL, -1},
        .server_assignor = m->server_assignor,
        .owned = owned,
        .n_owned = no,
    };
    return 0;
}

static int hb_answer(kb_req_t *req, const kb_chb_result_t *r, const kb_ctopics_t *s,
                     kp_consumer_group_heartbeat_resp_t *resp)
{
    resp->error_code = r->error_code;
    if (r->error_message)
        resp->error_message = kb_group_arena_str(&req->arena, r->error_message);
    if (r->error_code != KP_ERR_NONE)
        return 0;
    resp->member_id = kb_group_arena_str(&req->arena, r->member_id);
    resp->member_epoch = r->member_epoch;
    resp->heartbeat_interval_ms = r->heartbeat_interval_ms;
    if (!r->assignment)
        return 0;
    tparts_t *tp;
    int32_t n;
    if (split_topics(req, r->cg, s, r->assignment, &tp, &n))
        return K_ERR_NOMEM;
    resp->assignment_present = true;
    resp->assignment.topic_partitions =
        n ? kp_arena_alloc(&req->arena, sizeof *resp->assignment.topic_partitions * (size_t)n)
          : NULL;
    if (n && !resp->assignment.topic_partitions)
        return K_ERR_NOMEM;
    resp->assignment.topic_partitions_count = n;
    for (int32_t i = 0; i < n; i++) {
        kp_consumer_group_heartbeat_resp_topic_partitions_t *o =
            &resp->assignment.topic_partitions[i];
        kp_consumer_group_heartbeat_resp_topic_partitions_init(o);
        o->topic_id = tp[i].id;
        o->partitions = tp[i].parts;
        o->partitions_count = tp[i].n;
    }
    return 0;
}

int kb_handle_consumer_group_heartbeat(kb_req_t *req)
{
    kp_consumer_group_heartbeat_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_consumer_group_heartbeat_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    if (kb_gstr_too_long(m.group_id) || kb_gstr_too_long(m.member_id) ||
        kb_gstr_too_long(m.instance_id) || kb_gstr_too_long(m.rack_id) ||
        kb_gstr_too_long(m.subscribed_topic_regex))
        return K_ERR_MALFORMED;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_consumer_group_heartbeat_resp_t resp;
    kp_consumer_group_heartbeat_resp_init(&resp);
    kp_str_t msg = {NULL, -1};
    resp.error_code = hb_authorize(req, &m, &msg);
    if (resp.error_code == KP_ERR_NONE && (!gs || !gs->ostore))
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    resp.error_message = msg;
    if (resp.error_code == KP_ERR_NONE) {
        kb_ctopics_t snap;
        kb_chb_params_t p;
        if (topics_snapshot(req, &snap) || hb_params(req, &m, &p))
            return K_ERR_NOMEM;
        snap.may_describe = may_describe;
        snap.ud = req;
        kb_chb_result_t r;
        kb_cgroup_heartbeat(gs->coord, &p, &snap, kb_gnow(), &r);
        if (hb_answer(req, &r, &snap, &resp))
            return K_ERR_NOMEM;
        kb_gstate_arm(gs);
    }
    kb_req_error(req, resp.error_code);
    rc = kp_consumer_group_heartbeat_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* ConsumerGroupDescribe                                                                       */

static int describe_assignment(kb_req_t *req, const kb_cgroup_t *cg, const kb_ctopics_t *s,
                               const kb_tpset_t *set,
                               kp_consumer_group_describe_resp_assignment_t *a)
{
    kp_consumer_group_describe_resp_assignment_init(a);
    tparts_t *tp;
    int32_t n;
    if (split_topics(req, cg, s, set, &tp, &n))
        return K_ERR_NOMEM;
    a->topic_partitions = n ? kp_arena_alloc(&req->arena, sizeof *a->topic_partitions * (size_t)n)
                            : NULL;
    if (n && !a->topic_partitions)
        return K_ERR_NOMEM;
    a->topic_partitions_count = n;
    for (int32_t i = 0; i < n; i++) {
        kp_consumer_group_describe_resp_topic_partitions_t *o = &a->topic_partitions[i];
        kp_consumer_group_describe_resp_topic_partitions_init(o);
        o->topic_id = tp[i].id;
        o->topic_name = tp[i].name;
        o->partitions = tp[i].parts;
        o->partitions_count = tp[i].n;
    }
    return 0;
}

static kp_str_t opt_view(kb_req_t *req, const char *s, int32_t len)
{
    return s ? kb_group_arena_view(&req->arena, (kp_str_t){s, len}) : (kp_str_t){NULL, -1};
}

static int describe_member(kb_req_t *req, const kb_cgroup_t *cg, const kb_ctopics_t *s,
                           const kb_cmember_t *cm, kp_consumer_group_describe_resp_member_t *o)
{
    kp_consumer_group_describe_resp_member_init(o);
    o->member_id = kb_group_arena_str(&req->arena, cm->member_id);
    o->instance_id = opt_view(req, cm->instance_id, cm->instance_id_len);
    o->rack_id = cm->rack_id ? kb_group_arena_str(&req->arena, cm->rack_id)
                             : (kp_str_t){NULL, -1};
    o->member_epoch = cm->epoch;
    o->member_type = 1; /* v1: a consumer-protocol member (Depot has no classic members in
                         * consumer groups: no online migration) */
    o->client_id = cm->client_id ? opt_view(req, cm->client_id, cm->client_id_len) : kp_str("");
    o->client_host =
        cm->client_host ? opt_view(req, cm->client_host, cm->client_host_len) : kp_str("");
    o->subscribed_topic_regex = cm->regex ? kb_group_arena_str(&req->arena, cm->regex)
                                          : (kp_str_t){NULL, -1};
    int32_t nn = cm->n_sub_names;
    o->subscribed_topic_names = kp_arena_alloc(&req->arena, sizeof(kp_str_t) * (size_t)(nn + 1));
    if (!o->subscribed_topic_names)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < nn; i++)
        o->subscribed_topic_names[i] = kb_group_arena_str(&req->arena, cm->sub_names[i]);
    o->subscribed_topic_names_count = nn;
    if (describe_assignment(req, cg, s, &cm->assigned, &o->assignment) ||
        describe_assignment(req, cg, s, &cm->target, &o->target_assignment))
        return K_ERR_NOMEM;
    return 0;
}

static int describe_group(kb_req_t *req, kb_gstate_t *gs, const kb_ctopics_t *s, kp_str_t id,
                          bool ops, kp_consumer_group_describe_resp_described_group_t *d)
{
    kp_consumer_group_describe_resp_described_group_init(d);
    d->group_id = id;
    d->group_state = kp_str("");
    d->assignor_name = kp_str("");
    kb_group_t *g = NULL;
    if (!kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_GROUP, id))
        d->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (!gs || !gs->ostore)
        d->error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (id.len <= 0)
        d->error_code = KP_ERR_INVALID_GROUP_ID;
    else if (!(g = kb_gcoord_find(gs->coord, id)) || !g->cg) {
        /* As Kafka: a classic group is "not found" here, so admin clients fall back to
         * DescribeGroups for it. */
        d->error_code = KP_ERR_GROUP_ID_NOT_FOUND;
        char buf[160];
        snprintf(buf, sizeof buf, g ? "Group %.*s is not a consumer group."
                                    : "Group %.*s not found.",
                 (int)(id.len > 100 ? 100 : id.len), id.ptr);
        d->error_message = kb_group_arena_str(&req->arena, buf);
    }
    if (d->error_code != KP_ERR_NONE)
        return 0;
    const kb_cgroup_t *cg = g->cg;
    if (ops)
        d->authorized_operations =
            kb_authorized_operations(req, KB_RES_GROUP, id.ptr, (size_t)id.len);
    d->group_state = kp_str(kb_cgroup_state_name(cg));
    d->group_epoch = cg->epoch;
    d->assignment_epoch = cg->target_epoch;
    d->assignor_name = kp_str(kb_assignor_name(cg->assignor));
    d->members = kp_arena_alloc(&req->arena, sizeof *d->members * (size_t)(cg->n_members + 1));
    if (!d->members)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < cg->n_members; i++)
        if (describe_member(req, cg, s, cg->members[i], &d->members[d->members_count++]))
            return K_ERR_NOMEM;
    return 0;
}

int kb_handle_consumer_group_describe(kb_req_t *req)
{
    kp_consumer_group_describe_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_consumer_group_describe_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_consumer_group_describe_resp_t resp;
    kp_consumer_group_describe_resp_init(&resp);
    kb_ctopics_t snap;
    if (topics_snapshot(req, &snap))
        return K_ERR_NOMEM;
    int32_t n = m.group_ids_count > 0 ? m.group_ids_count : 0;
    resp.groups = kp_arena_alloc(&req->arena, sizeof *resp.groups * (size_t)(n + 1));
    if (!resp.groups)
        return K_ERR_NOMEM;
    resp.groups_count = n;
    for (int32_t i = 0; i < n; i++) {
        if (describe_group(req, gs, &snap, m.group_ids[i], m.include_authorized_operations,
                           &resp.groups[i]))
            return K_ERR_NOMEM;
        kb_req_error(req, resp.groups[i].error_code);
    }
    rc = kp_consumer_group_describe_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* DescribeGroups on a consumer group                                                          */

/* ConsumerProtocol Subscription v0 (topics, null user data) or Assignment v0 (topic
 * partitions, null user data), as a classic member's metadata/assignment would be. */
static kp_bytes_t consumer_protocol_bytes(kb_req_t *req, const kb_cgroup_t *cg,
                                          const kb_cmember_t *cm, const kb_ctopics_t *s,
                                          bool assignment)
{
    kp_bytes_t none = {(const uint8_t *)"", 0};
    kp_buf_t b;
    kp_buf_init(&b);
    kp_put_i16(&b, 0);
    if (!assignment) {
        kp_put_i32(&b, cm->n_sub + cm->n_rx);
        for (int32_t i = 0; i < cm->n_sub; i++)
            kp_put_string(&b, kp_str(cg->topics[cm->sub[i]]), false);
        for (int32_t i = 0; i < cm->n_rx; i++)
            kp_put_string(&b, kp_str(cg->topics[cm->rx[i]]), false);
    } else {
        tparts_t *tp;
        int32_t n;
        if (split_topics(req, cg, s, &cm->assigned, &tp, &n)) {
            kp_buf_deinit(&b);
            return none;
        }
        kp_put_i32(&b, n);
        for (int32_t i = 0; i < n; i++) {
            kp_put_string(&b, tp[i].name, false);
            kp_put_i32(&b, tp[i].n);
            for (int32_t j = 0; j < tp[i].n; j++)
                kp_put_i32(&b, tp[i].parts[j]);
        }
    }
    kp_put_i32(&b, -1); /* user data: null */
    kp_bytes_t r = none;
    if (!b.err)
        r = kb_group_arena_bytes(&req->arena, (kp_bytes_t){b.data, (int32_t)b.len});
    kp_buf_deinit(&b);
    return r;
}

int kb_cgroup_describe_classic(kb_req_t *req, const kb_group_t *g,
                               kp_describe_groups_resp_described_group_t *d)
{
    const kb_cgroup_t *cg = g->cg;
    kb_ctopics_t snap;
    if (topics_snapshot(req, &snap))
        return K_ERR_NOMEM;
    d->group_state = kp_str(kb_cgroup_state_name(cg));
    d->protocol_type = kp_str("consumer");
    d->protocol_data = kp_str(kb_assignor_name(cg->assignor));
    d->members = kp_arena_alloc(&req->arena, sizeof *d->members * (size_t)(cg->n_members + 1));
    if (!d->members)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < cg->n_members; i++) {
        const kb_cmember_t *cm = cg->members[i];
        kp_describe_groups_resp_described_group_member_t *dm = &d->members[d->members_count++];
        kp_describe_groups_resp_described_group_member_init(dm);
        dm->member_id = kb_group_arena_str(&req->arena, cm->member_id);
        dm->group_instance_id = opt_view(req, cm->instance_id, cm->instance_id_len);
        dm->client_id = cm->client_id ? opt_view(req, cm->client_id, cm->client_id_len)
                                      : kp_str("");
        dm->client_host = cm->client_host ? opt_view(req, cm->client_host, cm->client_host_len)
                                          : kp_str("");
        dm->member_metadata = consumer_protocol_bytes(req, cg, cm, &snap, false);
        dm->member_assignment = consumer_protocol_bytes(req, cg, cm, &snap, true);
    }
    return 0;
}

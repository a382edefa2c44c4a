/*
 * Group requests that need no membership: FindCoordinator, OffsetCommit/OffsetFetch, ListGroups
 * and DescribeGroups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kc_group.h"
#include "client/kc_int.h"
#include "protocol/gen/kp_describe_groups.h"
#include "protocol/gen/kp_find_coordinator.h"
#include "protocol/gen/kp_list_groups.h"
#include "protocol/gen/kp_offset_commit.h"
#include "protocol/gen/kp_offset_fetch.h"
#include "protocol/kp_errors.h"

bool kc_coordinator_moved(int16_t code)
{
    return code == KP_ERR_COORDINATOR_NOT_AVAILABLE || code == KP_ERR_NOT_COORDINATOR ||
           code == KP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
}

/* One FindCoordinator round trip: the node id, or a Kafka error recorded in c. */
static int find_once(kc_client_t *c, const char *group, int32_t *node)
{
    kc_conn_t *conn;
    int rc = kc_client_conn(c, -1, &conn);
    if (rc) return rc;
    kp_str_t key = kp_str(group);
    kp_find_coordinator_req_t req;
    kp_find_coordinator_req_init(&req);
    req.key = key; /* v0-3 */
    req.key_type = 0;
    req.coordinator_keys = &key; /* v4+ */
    req.coordinator_keys_count = 1;
    kp_find_coordinator_resp_t resp;
    kp_find_coordinator_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_FIND_COORDINATOR, &req, &resp, &rx, 0);
    if (!rc) {
        int16_t err = resp.error_code;
        kp_str_t msg = resp.error_message;
        *node = resp.node_id;
        if (resp.coordinators_count > 0) {
            err = resp.coordinators[0].error_code;
            msg = resp.coordinators[0].error_message;
            *node = resp.coordinators[0].node_id;
        }
        char what[300];
        snprintf(what, sizeof what, "finding the coordinator of group %s", group);
        rc = kc_kafka_fail(c, err, what, msg);
    }
    kc_rx_deinit(&rx);
    return rc;
}

int kc_coordinator_conn(kc_client_t *c, const char *group, kc_conn_t **out)
{
    int rc = 0;
    for (int attempt = 0; attempt <= c->cfg.retries; attempt++) {
        if (attempt) kc_sleep_ms(c->cfg.retry_backoff_ms * (attempt < 5 ? attempt : 5));
        int32_t node;
        rc = find_once(c, group, &node);
        if (!rc) {
            rc = kc_client_conn(c, node, out);
            if (rc == K_ERR_NOENT) { /* a node we have not seen: refresh the broker list */
                (void)kc_metadata_get(c, NULL, 0, false, NULL);
                rc = kc_client_conn(c, node, out);
            }
            if (!rc) return 0;
        }
        if (rc != K_ERR_AGAIN && rc != K_ERR_IO) return rc;
    }
    return rc;
}

int kc_commit_ex(kc_client_t *c, const char *group, int32_t generation, const char *member_id,
                 const char *instance_id, const kc_offset_t *offs, int n)
{
    kc_conn_t *conn;
    int rc = kc_coordinator_conn(c, group, &conn);
    if (rc) return rc;
    kp_offset_commit_req_offset_commit_request_topic_t *t = calloc((size_t)n + 1, sizeof *t);
    kp_offset_commit_req_offset_commit_request_partition_t *p = calloc((size_t)n + 1, sizeof *p);
    if (!t || !p) {
        free(t);
        free(p);
        return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    }
    int nt = 0;
    for (int i = 0; i < n; i++) {
        kp_offset_commit_req_offset_commit_request_partition_init(&p[i]);
        p[i].partition_index = offs[i].partition;
        p[i].committed_offset = offs[i].offset;
        p[i].committed_metadata = kp_str("");
        /* Consecutive entries of one topic share a topic entry. */
        if (nt == 0 || !kp_str_eq(t[nt - 1].name, offs[i].topic)) {
            kp_offset_commit_req_offset_commit_request_topic_init(&t[nt]);
            t[nt].name = kp_str(offs[i].topic);
            t[nt].partitions = &p[i];
            nt++;
        }
        t[nt - 1].partitions_count++;
    }
    kp_offset_commit_req_t req;
    kp_offset_commit_req_init(&req);
    req.group_id = kp_str(group);
    req.generation_id_or_member_epoch = generation;
    req.member_id = kp_str(member_id ? member_id : "");
    req.group_instance_id = instance_id ? kp_str(instance_id) : (kp_str_t){NULL, -1};
    req.topics = t;
    req.topics_count = nt;
    kp_offset_commit_resp_t resp;
    kp_offset_commit_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_OFFSET_COMMIT, &req, &resp, &rx, 0);
    for (int32_t i = 0; !rc && i < resp.topics_count; i++)
        for (int32_t k = 0; !rc && k < resp.topics[i].partitions_count; k++) {
            int16_t err = resp.topics[i].partitions[k].error_code;
            if (!err) continue;
            char what[300];
            snprintf(what, sizeof what, "committing offsets of group %s", group);
            rc = kc_kafka_fail(c, err, what, (kp_str_t){NULL, -1});
        }
    kc_rx_deinit(&rx);
    free(t);
    free(p);
    return rc;
}

int kc_commit_offsets(kc_client_t *c, const char *group, const kc_offset_t *offs, int n)
{
    kc_clear_error(c);
    return kc_commit_ex(c, group, -1, "", NULL, offs, n);
}

void kc_offsets_free(kc_offsets_t *o)
{
    if (!o) return;
    kp_arena_deinit(&o->arena);
    free(o);
}

int kc_fetch_committed(kc_client_t *c, const char *group, kc_offsets_t **out)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = kc_coordinator_conn(c, group, &conn);
    if (rc) return rc;
    kp_offset_fetch_req_t req;
    kp_offset_fetch_req_init(&req);
    req.group_id = kp_str(group);
    req.topics = NULL;
    req.topics_count = -1; /* all topics */
    kp_offset_fetch_resp_t resp;
    kp_offset_fetch_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_OFFSET_FETCH, &req, &resp, &rx, 0);
    char what[300];
    snprintf(what, sizeof what, "fetching committed offsets of group %s", group);
    if (!rc) rc = kc_kafka_fail(c, resp.error_code, what, (kp_str_t){NULL, -1});
    kc_offsets_t *o = NULL;
    if (!rc && !(o = calloc(1, sizeof *o))) rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    if (!rc) {
        kp_arena_init(&o->arena, NULL, 0, 0);
        int total = 0;
        for (int32_t i = 0; i < resp.topics_count; i++)
            total += resp.topics[i].partitions_count;
        o->v = kp_arena_alloc(&o->arena, sizeof *o->v * (size_t)(total + 1));
        for (int32_t i = 0; o->v && i < resp.topics_count; i++) {
            char *name = kc_arena_strdup(&o->arena, resp.topics[i].name);
            for (int32_t k = 0; name && k < resp.topics[i].partitions_count; k++) {
                const kp_offset_fetch_resp_offset_fetch_response_partition_t *rp =
                    &resp.topics[i].partitions[k];
                o->v[o->n++] =
                    (kc_offset_t){name, rp->partition_index, rp->committed_offset, rp->error_code};
            }
        }
        *out = o;
    }
    kc_rx_deinit(&rx);
    return rc;
}

void kc_group_list_free(kc_group_list_t *l)
{
    if (!l) return;
    kp_arena_deinit(&l->arena);
    free(l);
}

int kc_list_groups(kc_client_t *c, kc_group_list_t **out)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = kc_client_conn(c, -1, &conn);
    if (rc) return rc;
    kp_list_groups_req_t req;
    kp_list_groups_req_init(&req);
    kp_list_groups_resp_t resp;
    kp_list_groups_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_LIST_GROUPS, &req, &resp, &rx, 0);
    if (!rc) rc = kc_kafka_fail(c, resp.error_code, "listing groups", (kp_str_t){NULL, -1});
    kc_group_list_t *l = NULL;
    if (!rc && !(l = calloc(1, sizeof *l))) rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    if (!rc) {
        kp_arena_init(&l->arena, NULL, 0, 0);
        l->v = kp_arena_alloc(&l->arena, sizeof *l->v * (size_t)(resp.groups_count + 1));
        for (int32_t i = 0; l->v && i < resp.groups_count; i++) {
            l->v[l->n].group_id = kc_arena_strdup(&l->arena, resp.groups[i].group_id);
            l->v[l->n].protocol_type = kc_arena_strdup(&l->arena, resp.groups[i].protocol_type);
            l->v[l->n].state = resp.groups[i].group_state.len > 0
                                   ? kc_arena_strdup(&l->arena, resp.groups[i].group_state)
                                   : NULL;
            if (l->v[l->n].group_id) l->n++;
        }
        *out = l;
    }
    kc_rx_deinit(&rx);
    return rc;
}

void kc_group_desc_free(kc_group_desc_t *d)
{
    if (!d) return;
    kp_arena_deinit(&d->arena);
    free(d);
}

int kc_describe_group(kc_client_t *c, const char *group, kc_group_desc_t **out)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = kc_coordinator_conn(c, group, &conn);
    if (rc) return rc;
    kp_str_t g = kp_str(group);
    kp_describe_groups_req_t req;
    kp_describe_groups_req_init(&req);
    req.groups = &g;
    req.groups_count = 1;
    kp_describe_groups_resp_t resp;
    kp_describe_groups_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DESCRIBE_GROUPS, &req, &resp, &rx, 0);
    char what[300];
    snprintf(what, sizeof what, "describing group %s", group);
    if (!rc && resp.groups_count < 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "%s: the broker answered for no group", what);
    if (!rc) rc = kc_kafka_fail(c, resp.groups[0].error_code, what, (kp_str_t){NULL, -1});
    kc_group_desc_t *d = NULL;
    if (!rc && !(d = calloc(1, sizeof *d))) rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    if (!rc) {
        const kp_describe_groups_resp_described_group_t *rg = &resp.groups[0];
        kp_arena_t *a = &d->arena;
        kp_arena_init(a, NULL, 0, 0);
        d->group_id = kc_arena_strdup(a, rg->group_id);
        d->state = kc_arena_strdup(a, rg->group_state);
        d->protocol_type = kc_arena_strdup(a, rg->protocol_type);
        d->protocol = kc_arena_strdup(a, rg->protocol_data);
        d->members = kp_arena_alloc(a, sizeof *d->members * (size_t)(rg->members_count + 1));
        bool consumer = kp_str_eq(rg->protocol_type, "consumer");
        for (int32_t i = 0; d->members && i < rg->members_count; i++) {
            const kp_describe_groups_resp_described_group_member_t *rm = &rg->members[i];
            kc_group_member_t *m = &d->members[d->nmembers++];
            m->member_id = kc_arena_strdup(a, rm->member_id);
            m->group_instance_id = kc_arena_strdup(a, rm->group_instance_id);
            m->client_id = kc_arena_strdup(a, rm->client_id);
            m->client_host = kc_arena_strdup(a, rm->client_host);
            /* Copy the assignment bytes so the decoded views outlive the response. */
            if (consumer && rm->member_assignment.len > 0) {
                uint8_t *copy = kp_arena_alloc(a, (size_t)rm->member_assignment.len);
                if (copy) {
                    memcpy(copy, rm->member_assignment.ptr, (size_t)rm->member_assignment.len);
                    (void)kc_assignment_decode(copy, (size_t)rm->member_assignment.len, a,
                                               &m->assignment);
                }
            }
        }
        *out = d;
    }
    kc_rx_deinit(&rx);
    return rc;
}

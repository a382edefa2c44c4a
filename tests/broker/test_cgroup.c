/* Unit tests for consumer groups (KIP-848, broker/group/cgroup*.c): the assignors, the
 * reconciliation of a member towards its target, and heartbeats through the coordinator
 * (epochs, revocation before reassignment, leave, static members, regex, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/group/cgroup.h"
#include "protocol/kp_errors.h"

#define T(ms) ((kb_gtime_t){.mono = (ms), .wall = (ms)})

static void noop_join(void *ud, void *w, const kb_join_result_t *r)
{
    (void)ud, (void)w, (void)r;
}

static void noop_sync(void *ud, void *w, const kb_sync_result_t *r)
{
    (void)ud, (void)w, (void)r;
}

static kb_gcoord_t *coord(int assignor)
{
    kb_gcoord_opts_t o = {
        .min_session_timeout_ms = 6000,
        .max_session_timeout_ms = 300000,
        .join_done = noop_join,
        .sync_done = noop_sync,
        .consumer = {.enabled = true,
                     .session_timeout_ms = 45000,
                     .heartbeat_interval_ms = 5000,
                     .assignors = {assignor, 1 - assignor},
                     .n_assignors = 2},
    };
    kb_gcoord_t *c = NULL;
    assert_int_equal(kb_gcoord_new(&o, &c), 0);
    return c;
}

/* ---- assignors ------------------------------------------------------------------------------ */

static int32_t count_topic(const kb_tpset_t *s, int32_t t)
{
    return kb_tpset_topic_parts(s, t, NULL);
}

static void test_uniform_balanced_and_complete(void **state)
{
    (void)state;
    int32_t parts[2] = {7, 5}, topics[2] = {0, 1};
    kb_cassign_member_t m[3] = {{.topics = topics, .n_topics = 2},
                                {.topics = topics, .n_topics = 2},
                                {.topics = topics, .n_topics = 2}};
    assert_int_equal(kb_cassign_uniform(m, 3, parts, 2), 0);
    int32_t total = 0;
    for (int i = 0; i < 3; i++) {
        assert_in_range(m[i].out.n, 4, 4); /* 12 partitions over 3 */
        total += m[i].out.n;
    }
    assert_int_equal(total, 12);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < parts[t]; p++) {
            int owners = 0;
            for (int i = 0; i < 3; i++)
                owners += kb_tpset_has(&m[i].out, KB_TP(t, p));
            assert_int_equal(owners, 1);
        }
    for (int i = 0; i < 3; i++)
        kb_tpset_free(&m[i].out);
}

static void test_uniform_sticky_when_member_joins(void **state)
{
    (void)state;
    int32_t parts[1] = {6}, topics[1] = {0};
    kb_cassign_member_t m[2] = {{.topics = topics, .n_topics = 1}};
    assert_int_equal(kb_cassign_uniform(m, 1, parts, 1), 0);
    assert_int_equal(m[0].out.n, 6);
    kb_tpset_t prev = m[0].out;
    m[0].out = (kb_tpset_t){0};
    m[0].prev = &prev;
    m[1] = (kb_cassign_member_t){.topics = topics, .n_topics = 1};
    assert_int_equal(kb_cassign_uniform(m, 2, parts, 1), 0);
    assert_int_equal(m[0].out.n, 3);
    assert_int_equal(m[1].out.n, 3);
    for (int i = 0; i < m[0].out.n; i++) /* the first member only gives partitions up */
        assert_true(kb_tpset_has(&prev, m[0].out.v[i]));
    kb_tpset_free(&prev);
    kb_tpset_free(&m[0].out);
    kb_tpset_free(&m[1].out);
}

static void test_uniform_heterogeneous(void **state)
{
    (void)state;
    /* a subscribes to t0 (4 partitions), b to t0 and t1 (4): nobody gets what it does not
     * subscribe to, and b takes t1 whole. */
    int32_t parts[2] = {4, 4}, ta[1] = {0}, tb[2] = {0, 1};
    kb_cassign_member_t m[2] = {{.topics = ta, .n_topics = 1}, {.topics = tb, .n_topics = 2}};
    assert_int_equal(kb_cassign_uniform(m, 2, parts, 2), 0);
    assert_int_equal(count_topic(&m[0].out, 1), 0);
    assert_int_equal(count_topic(&m[1].out, 1), 4);
    assert_int_equal(m[0].out.n + m[1].out.n, 8);
    assert_int_equal(m[0].out.n, 4); /* a gets all of t0 so the counts balance */
    kb_tpset_free(&m[0].out);
    kb_tpset_free(&m[1].out);
}

static void test_range_contiguous(void **state)
{
    (void)state;
    int32_t parts[2] = {5, 5}, topics[2] = {0, 1};
    kb_cassign_member_t m[2] = {{.topics = topics, .n_topics = 2},
                                {.topics = topics, .n_topics = 2}};
    assert_int_equal(kb_cassign_range(m, 2, parts, 2), 0);
    /* per topic: member 0 gets 0-2, member 1 gets 3-4 (co-partitioned topics line up) */
    for (int t = 0; t < 2; t++) {
        for (int p = 0; p < 3; p++)
            assert_true(kb_tpset_has(&m[0].out, KB_TP(t, p)));
        for (int p = 3; p < 5; p++)
            assert_true(kb_tpset_has(&m[1].out, KB_TP(t, p)));
    }
    assert_int_equal(m[0].out.n, 6);
    assert_int_equal(m[1].out.n, 4);
    kb_tpset_free(&m[0].out);
    kb_tpset_free(&m[1].out);
}

static void test_assignors_parse(void **state)
{
    (void)state;
    int a[KB_ASSIGNORS_MAX], n;
    assert_int_equal(kb_assignors_parse("range, uniform", a, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(a[0], KB_ASSIGNOR_RANGE);
    assert_int_equal(kb_assignors_parse(
                         "org.apache.kafka.coordinator.group.assignor.UniformAssignor", a, &n),
                     0);
    assert_int_equal(a[0], KB_ASSIGNOR_UNIFORM);
    assert_int_equal(kb_assignors_parse("sticky", a, &n), K_ERR_INVAL);
}

/* ---- heartbeats ----------------------------------------------------------------------------- */

static kb_ctopic_t topic_v[2] = {
    {.name = "a", .id = {{1}}, .partitions = 4},
    {.name = "b", .id = {{2}}, .partitions = 2},
};
static kb_ctopics_t snap = {.v = topic_v, .n = 2};

typedef struct {
    kb_chb_result_t r;
    int32_t owned_parts[16];
    kb_ctp_in_t owned;
} hb_out_t;

/* One heartbeat; owned_a lists the partitions of topic "a" the client owns (-1 ends; NULL =
 * the field is null). */
static void hb(kb_gcoord_t *c, const char *member, int32_t epoch, const int32_t *owned_a,
               int64_t now, hb_out_t *o)
{
    static kp_str_t names[1];
    names[0] = kp_str("a");
    int32_t n = 0;
    while (owned_a && owned_a[n] >= 0) {
        o->owned_parts[n] = owned_a[n];
        n++;
    }
    o->owned = (kb_ctp_in_t){.topic_id = topic_v[0].id, .partitions = o->owned_parts, .n = n};
    kb_chb_params_t p = {
        .version = 1,
        .group_id = kp_str("g"),
        .member_id = kp_str(member),
        .member_epoch = epoch,
        .instance_id = {NULL, -1},
        .rack_id = {NULL, -1},
        .client_id = kp_str("cid"),
        .client_host = kp_str("/127.0.0.1"),
        .rebalance_timeout_ms = epoch == 0 ? 60000 : -1,
        .topic_names = epoch == 0 ? names : NULL,
        .n_topic_names = epoch == 0 ? 1 : -1,
        .topic_regex = {NULL, -1},
        .server_assignor = {NULL, -1},
        .owned = owned_a ? &o->owned : NULL,
        .n_owned = owned_a ? 1 : (epoch == 0 ? 0 : -1),
    };
    kb_cgroup_heartbeat(c, &p, &snap, T(now), &o->r);
}

static int32_t assigned_n(const hb_out_t *o)
{
    return o->r.assignment ? o->r.assignment->n : -1;
}

static void test_join_epochs_and_revocation_before_reassignment(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    hb_out_t a, b;
    hb(c, "A", 0, NULL, 0, &a);
    assert_int_equal(a.r.error_code, 0);
    assert_int_equal(a.r.member_epoch, 1);
    assert_int_equal(assigned_n(&a), 4);
    int32_t all[] = {0, 1, 2, 3, -1};
    hb(c, "A", 1, all, 10, &a);
    assert_int_equal(a.r.error_code, 0);

    /* B joins: the group moves to epoch 2; B gets nothing A still owns. */
    hb(c, "B", 0, NULL, 20, &b);
    assert_int_equal(b.r.error_code, 0);
    assert_int_equal(b.r.member_epoch, 2);
    assert_int_equal(assigned_n(&b), 0);
    kb_group_t *g = kb_gcoord_find(c, kp_str("g"));
    assert_string_equal(kb_cgroup_state_name(g->cg), "Reconciling");

    /* A's next heartbeat: told to keep two (revoke two), epoch stays 1 until it acks. */
    hb(c, "A", 1, all, 30, &a);
    assert_int_equal(a.r.error_code, 0);
    assert_int_equal(a.r.member_epoch, 1);
    assert_int_equal(assigned_n(&a), 2);
    const kb_tpset_t *kept = a.r.assignment;
    int32_t keep[5] = {-1, -1, -1, -1, -1};
    for (int i = 0; i < kept->n; i++)
        keep[i] = KB_TP_PART(kept->v[i]);

    /* B still cannot have the revoked ones: A has not acknowledged. */
    hb(c, "B", 2, (int32_t[]){-1}, 40, &b);
    assert_int_equal(assigned_n(&b), 0);

    /* A acknowledges (owns only the kept two): epoch 2; then B gets the other two. */
    hb(c, "A", 1, keep, 50, &a);
    assert_int_equal(a.r.error_code, 0);
    assert_int_equal(a.r.member_epoch, 2);
    hb(c, "B", 2, (int32_t[]){-1}, 60, &b);
    assert_int_equal(assigned_n(&b), 2);
    for (int i = 0; i < b.r.assignment->n; i++)
        for (int j = 0; keep[j] >= 0; j++)
            assert_int_not_equal(KB_TP_PART(b.r.assignment->v[i]), keep[j]);
    assert_string_equal(kb_cgroup_state_name(g->cg), "Stable");
    kb_gcoord_free(c);
}

static void test_fencing_and_unknown_member(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    hb_out_t a;
    hb(c, "A", 0, NULL, 0, &a);
    assert_int_equal(a.r.member_epoch, 1);
    hb(c, "A", 5, NULL, 10, &a);
    assert_int_equal(a.r.error_code, KP_ERR_FENCED_MEMBER_EPOCH);
    hb(c, "Z", 1, NULL, 10, &a);
    assert_int_equal(a.r.error_code, KP_ERR_UNKNOWN_MEMBER_ID);
    kb_group_t *g = kb_gcoord_find(c, kp_str("g"));
    /* offsets: the current epoch commits, an older one is stale, a newer one fenced */
    assert_int_equal(kb_cgroup_commit_check(g, 1, kp_str("A"), T(20)), 0);
    assert_int_equal(kb_cgroup_commit_check(g, 0, kp_str("A"), T(20)),
                     KP_ERR_STALE_MEMBER_EPOCH);
    assert_int_equal(kb_cgroup_commit_check(g, 2, kp_str("A"), T(20)),
                     KP_ERR_FENCED_MEMBER_EPOCH);
    assert_int_equal(kb_cgroup_commit_check(g, -1, (kp_str_t){NULL, -1}, T(20)),
                     KP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(kb_cgroup_fetch_check(g, kp_str("A"), 0), KP_ERR_STALE_MEMBER_EPOCH);
    /* leave: the member is gone and the group is Empty */
    hb(c, "A", -1, NULL, 30, &a);
    assert_int_equal(a.r.error_code, 0);
    assert_int_equal(a.r.member_epoch, -1);
    assert_string_equal(kb_cgroup_state_name(g->cg), "Empty");
    assert_int_equal(kb_cgroup_commit_check(g, -1, (kp_str_t){NULL, -1}, T(40)), 0);
    kb_gcoord_free(c);
}

static void test_session_timeout_frees_partitions(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    hb_out_t a, b;
    hb(c, "A", 0, NULL, 0, &a);
    hb(c, "B", 0, NULL, 100, &b);
    assert_int_equal(assigned_n(&b), 0); /* A owns everything */
    kb_group_t *g = kb_gcoord_find(c, kp_str("g"));
    kb_gcoord_poll(c, T(45000)); /* A's session (45 s from t=0) ends; B's does not */
    assert_int_equal(g->cg->n_members, 1);
    hb(c, "B", b.r.member_epoch, (int32_t[]){-1}, 45100, &b);
    assert_int_equal(b.r.error_code, 0);
    assert_int_equal(assigned_n(&b), 4);
    kb_gcoord_free(c);
}

static void test_errors_and_validation(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    hb_out_t a;
    hb(c, "", 0, NULL, 0, &a); /* v1: the client names itself */
    assert_int_equal(a.r.error_code, KP_ERR_INVALID_REQUEST);
    hb(c, "A", 3, NULL, 0, &a); /* no such group */
    assert_int_equal(a.r.error_code, KP_ERR_GROUP_ID_NOT_FOUND);
    assert_null(kb_gcoord_find(c, kp_str("g")));
    /* a classic group with members is not a consumer group */
    kb_gcoord_free(c);
}

static void test_regex_and_new_topics(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    kb_chb_result_t r;
    kb_chb_params_t p = {
        .version = 1,
        .group_id = kp_str("g"),
        .member_id = kp_str("R"),
        .member_epoch = 0,
        .instance_id = {NULL, -1},
        .rack_id = {NULL, -1},
        .client_id = kp_str("c"),
        .client_host = kp_str("h"),
        .rebalance_timeout_ms = 1000,
        .n_topic_names = -1,
        .topic_regex = kp_str("a|c.*"),
        .server_assignor = kp_str("range"),
        .n_owned = 0,
    };
    kb_cgroup_heartbeat(c, &p, &snap, T(0), &r);
    assert_int_equal(r.error_code, 0);
    assert_int_equal(r.assignment->n, 4); /* a's 4 partitions; b does not match */
    /* a new topic "cx" that matches: the next heartbeat brings its partitions */
    kb_ctopic_t more[3] = {topic_v[0], topic_v[1], {.name = "cx", .id = {{3}}, .partitions = 3}};
    kb_ctopics_t snap2 = {.v = more, .n = 3};
    p.member_epoch = r.member_epoch;
    p.rebalance_timeout_ms = -1;
    p.topic_regex = (kp_str_t){NULL, -1};
    p.server_assignor = (kp_str_t){NULL, -1};
    p.n_owned = -1;
    kb_cgroup_heartbeat(c, &p, &snap2, T(10), &r);
    assert_int_equal(r.error_code, 0);
    assert_non_null(r.assignment);
    assert_int_equal(r.assignment->n, 7);
    /* more partitions for "a": picked up too */
    more[0].partitions = 6;
    p.member_epoch = r.member_epoch;
    kb_cgroup_heartbeat(c, &p, &snap2, T(20), &r);
    assert_int_equal(r.assignment->n, 9);
    /* a bad expression */
    p.member_epoch = r.member_epoch;
    p.topic_regex = kp_str("(");
    kb_cgroup_heartbeat(c, &p, &snap2, T(30), &r);
    assert_int_equal(r.error_code, KP_ERR_INVALID_REGULAR_EXPRESSION);
    /* an unknown assignor */
    p.topic_regex = (kp_str_t){NULL, -1};
    p.server_assignor = kp_str("sticky");
    kb_cgroup_heartbeat(c, &p, &snap2, T(30), &r);
    assert_int_equal(r.error_code, KP_ERR_UNSUPPORTED_ASSIGNOR);
    kb_gcoord_free(c);
}

/* RE2's "(?:" (franz-go sends ".*(?:(?:topic)).*") is read as a POSIX group; RE2-only
 * classes such as \d are refused. */
static void test_regex_non_capturing_groups(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    kb_chb_result_t r;
    kb_chb_params_t p = {
        .version = 1,
        .group_id = kp_str("g"),
        .member_id = kp_str("F"),
        .instance_id = {NULL, -1},
        .rack_id = {NULL, -1},
        .client_id = kp_str("c"),
        .client_host = kp_str("h"),
        .rebalance_timeout_ms = 1000,
        .n_topic_names = -1,
        .topic_regex = kp_str(".*(?:(?:b)).*"),
        .server_assignor = {NULL, -1},
        .n_owned = 0,
    };
    kb_cgroup_heartbeat(c, &p, &snap, T(0), &r);
    assert_int_equal(r.error_code, 0);
    assert_int_equal(r.assignment->n, 2); /* b's two partitions, not a's four */
    p.member_id = kp_str("G");
    p.topic_regex = kp_str("[(?:]x|\\d+");
    kb_cgroup_heartbeat(c, &p, &snap, T(0), &r);
    assert_int_equal(r.error_code, 0); /* "[(?:]x" is a bracket expression, kept as is */
    kb_gcoord_free(c);
}

static void test_static_member_leaves_and_returns(void **state)
{
    (void)state;
    kb_gcoord_t *c = coord(KB_ASSIGNOR_UNIFORM);
    static kp_str_t names[1];
    names[0] = kp_str("a");
    kb_chb_result_t r;
    kb_chb_params_t p = {
        .version = 1,
        .group_id = kp_str("g"),
        .member_id = kp_str("S1"),
        .member_epoch = 0,
        .instance_id = kp_str("line-3"),
        .rack_id = {NULL, -1},
        .client_id = kp_str("c"),
        .client_host = kp_str("h"),
        .rebalance_timeout_ms = 1000,
        .topic_names = names,
        .n_topic_names = 1,
        .topic_regex = {NULL, -1},
        .server_assignor = {NULL, -1},
        .n_owned = 0,
    };
    kb_cgroup_heartbeat(c, &p, &snap, T(0), &r);
    assert_int_equal(r.error_code, 0);
    int32_t epoch = r.member_epoch;
    /* another process with the same instance id while S1 is active */
    p.member_id = kp_str("S2");
    kb_cgroup_heartbeat(c, &p, &snap, T(10), &r);
    assert_int_equal(r.error_code, KP_ERR_UNRELEASED_INSTANCE_ID);
    /* S1 leaves for now (-2): it keeps its partitions, the group epoch does not move */
    p.member_id = kp_str("S1");
    p.member_epoch = -2;
    kb_cgroup_heartbeat(c, &p, &snap, T(20), &r);
    assert_int_equal(r.error_code, 0);
    assert_int_equal(r.member_epoch, -2);
    kb_group_t *g = kb_gcoord_find(c, kp_str("g"));
    int32_t gepoch = g->cg->epoch;
    /* S2 comes back as line-3: it takes over S1's epoch and assignment */
    p.member_id = kp_str("S2");
    p.member_epoch = 0;
    kb_cgroup_heartbeat(c, &p, &snap, T(30), &r);
    assert_int_equal(r.error_code, 0);
    assert_int_equal(r.member_epoch, epoch);
    assert_int_equal(r.assignment->n, 4);
    assert_int_equal(g->cg->epoch, gepoch);
    assert_int_equal(g->cg->n_members, 1);
    kb_gcoord_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_balanced_and_complete),
        cmocka_unit_test(test_uniform_sticky_when_member_joins),
        cmocka_unit_test(test_uniform_heterogeneous),
        cmocka_unit_test(test_range_contiguous),
        cmocka_unit_test(test_assignors_parse),
        cmocka_unit_test(test_join_epochs_and_revocation_before_reassignment),
        cmocka_unit_test(test_fencing_and_unknown_member),
        cmocka_unit_test(test_session_timeout_frees_partitions),
        cmocka_unit_test(test_errors_and_validation),
        cmocka_unit_test(test_regex_and_new_topics),
        cmocka_unit_test(test_static_member_leaves_and_returns),
        cmocka_unit_test(test_regex_non_capturing_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

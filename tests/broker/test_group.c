/* Unit tests for the pure group coordinator (broker/group/group.c): every transition and error
 * answer driven with explicit time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/group/group.h"
#include "protocol/kp_errors.h"

/* Both clocks at the same reading: the coordinator's behaviour before it had two. */
#define T(ms) ((kb_gtime_t){.mono = (ms), .wall = (ms)})

typedef struct {
    int calls;
    int16_t err;
    int32_t gen;
    char member_id[160];
    char leader[160];
    char proto[64];
    bool proto_null;
    bool skip;
    int n_members;
    char members[8][160];
} join_w_t;

typedef struct {
    int calls;
    int16_t err;
    char assign[64];
    int32_t alen;
} sync_w_t;

typedef struct {
    int stores;
    int dead_stores;
    int expired;
    kb_group_state_t last_state;
} ud_t;

static void on_join(void *ud, void *waiter, const kb_join_result_t *r)
{
    (void)ud;
    join_w_t *w = waiter;
    w->calls++;
    w->err = r->error_code;
    w->gen = r->generation_id;
    snprintf(w->member_id, sizeof w->member_id, "%s", r->member_id);
    snprintf(w->leader, sizeof w->leader, "%s", r->leader_id);
    w->proto_null = r->protocol_name == NULL;
    snprintf(w->proto, sizeof w->proto, "%s", r->protocol_name ? r->protocol_name : "");
    w->skip = r->skip_assignment;
    w->n_members = r->n_members;
    for (int i = 0; i < r->n_members && i < 8; i++)
        snprintf(w->members[i], sizeof w->members[i], "%s", r->members[i].member_id);
}

static void on_sync(void *ud, void *waiter, const kb_sync_result_t *r)
{
    (void)ud;
    sync_w_t *w = waiter;
    w->calls++;
    w->err = r->error_code;
    w->alen = r->assignment.len;
    if (r->assignment.len > 0 && r->assignment.len < 64)
        memcpy(w->assign, r->assignment.ptr, (size_t)r->assignment.len);
    w->assign[r->assignment.len > 0 && r->assignment.len < 64 ? r->assignment.len : 0] = 0;
}

static void on_store(void *ud, const kb_group_t *g)
{
    ud_t *u = ud;
    u->stores++;
    u->last_state = g->state;
    if (g->state == KB_GROUP_DEAD)
        u->dead_stores++;
}

static void on_expired(void *ud, const kb_group_t *g, const char *t, int32_t p)
{
    (void)g;
    (void)t;
    (void)p;
    ((ud_t *)ud)->expired++;
}

static ud_t U;

static kb_gcoord_t *coord(int32_t initial_delay)
{
    memset(&U, 0, sizeof U);
    kb_gcoord_opts_t o = {
        .min_session_timeout_ms = 6000,
        .max_session_timeout_ms = 300000,
        .initial_rebalance_delay_ms = initial_delay,
        .offsets_retention_ms = 7LL * 24 * 3600 * 1000,
        .seed = 42,
        .join_done = on_join,
        .sync_done = on_sync,
        .store_group = on_store,
        .offset_expired = on_expired,
        .ud = &U,
    };
    kb_gcoord_t *c = NULL;
    assert_int_equal(kb_gcoord_new(&o, &c), 0);
    return c;
}

static const kb_gproto_in_t RANGE[] = {{{"range", 5}, {(const uint8_t *)"md", 2}}};

static kb_join_params_t jp(const char *member, const kb_gproto_in_t *protos, int n)
{
    kb_join_params_t p = {
        .group_id = kp_str("g"),
        .member_id = kp_str(member),
        .group_instance_id = {NULL, -1},
        .client_id = kp_str("cli"),
        .client_host = kp_str("/127.0.0.1"),
        .protocol_type = kp_str("consumer"),
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 20000,
        .protocols = protos,
        .n_protocols = n,
    };
    return p;
}

static void join(kb_gcoord_t *c, const char *member, int64_t now, join_w_t *w)
{
    kb_join_params_t p = jp(member, RANGE, 1);
    kb_group_join(c, &p, T(now), w);
}

static void sync_(kb_gcoord_t *c, const char *member, int32_t gen, const kb_gassign_in_t *a,
                  int n, int64_t now, sync_w_t *w)
{
    kb_sync_params_t p = {
        .group_id = kp_str("g"),
        .member_id = kp_str(member),
        .group_instance_id = {NULL, -1},
        .protocol_type = {NULL, -1},
        .protocol_name = {NULL, -1},
        .generation_id = gen,
        .assignments = a,
        .n_assignments = n,
    };
    kb_group_sync(c, &p, T(now), w);
}

static int16_t hb(kb_gcoord_t *c, const char *member, int32_t gen, int64_t now)
{
    return kb_group_heartbeat(c, kp_str("g"), gen, kp_str(member), (kp_str_t){NULL, -1}, T(now));
}

static kb_group_t *grp(kb_gcoord_t *c)
{
    return kb_gcoord_find(c, kp_str("g"));
}

/* One member, stable at generation 1. Returns its id in id. */
static void one_stable(kb_gcoord_t *c, char *id, int64_t now)
{
    join_w_t j = {0};
    join(c, "", now, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.err, KP_ERR_NONE);
    strcpy(id, j.member_id);
    sync_w_t s = {0};
    kb_gassign_in_t a = {kp_str(id), {(const uint8_t *)"A1", 2}};
    sync_(c, id, j.gen, &a, 1, now, &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, KP_ERR_NONE);
    assert_string_equal(s.assign, "A1");
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
}

static void test_group_member_id_required_then_join(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(3000);
    join_w_t j1 = {0};
    kb_join_params_t p = jp("", RANGE, 1);
    p.require_known_member_id = true;
    kb_group_join(c, &p, T(0), &j1);
    assert_int_equal(j1.calls, 1);
    assert_int_equal(j1.err, KP_ERR_MEMBER_ID_REQUIRED);
    assert_true(strncmp(j1.member_id, "cli-", 4) == 0);
    assert_int_equal(grp(c)->state, KB_GROUP_EMPTY);

    join_w_t j2 = {0};
    p.member_id = kp_str(j1.member_id);
    kb_group_join(c, &p, T(10), &j2);
    assert_int_equal(j2.calls, 0); /* held for the initial rebalance delay */
    assert_int_equal(grp(c)->state, KB_GROUP_PREPARING_REBALANCE);
    assert_int_equal(kb_gcoord_next_deadline(c), 3010);
    kb_gcoord_poll(c, T(3009));
    assert_int_equal(j2.calls, 0);
    kb_gcoord_poll(c, T(3010));
    assert_int_equal(j2.calls, 1);
    assert_int_equal(j2.err, KP_ERR_NONE);
    assert_int_equal(j2.gen, 1);
    assert_string_equal(j2.leader, j1.member_id);
    assert_string_equal(j2.proto, "range");
    assert_int_equal(j2.n_members, 1);
    assert_int_equal(grp(c)->state, KB_GROUP_COMPLETING_REBALANCE);
    kb_gcoord_free(c);
}

/* Found by tests/fuzz/fuzz_handlers.c: a group id with a NUL byte in it. The table is keyed by
 * the wire bytes, the group by its C string, so a join that failed and discarded the group it
 * had just created left a freed group in the table (use after free at the next deadline scan).
 * Such an id now makes no group at all. */
static void test_group_id_with_nul_makes_no_group(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    join_w_t j = {0};
    kb_join_params_t p = jp("", RANGE, 0); /* no protocols: the join fails */
    p.group_id = (kp_str_t){"g\0x", 3};
    kb_group_join(c, &p, T(0), &j);
    assert_int_equal(j.calls, 1);
    assert_int_not_equal(j.err, KP_ERR_NONE);
    assert_null(kb_gcoord_next(c, NULL)); /* nothing left in the table, freed or not */
    p = jp("", RANGE, 1);
    p.group_id = (kp_str_t){"g\0x", 3};
    join_w_t j2 = {0};
    kb_group_join(c, &p, T(0), &j2);
    assert_int_equal(j2.calls, 1);
    assert_int_not_equal(j2.err, KP_ERR_NONE);
    assert_null(kb_gcoord_next(c, NULL));
    kb_gcoord_next_deadline(c);
    kb_gcoord_free(c);
}

static void test_group_pending_member_expires(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    join_w_t j1 = {0};
    kb_join_params_t p = jp("", RANGE, 1);
    p.require_known_member_id = true;
    kb_group_join(c, &p, T(0), &j1);
    kb_gcoord_poll(c, T(10000));
    join_w_t j2 = {0};
    p.member_id = kp_str(j1.member_id);
    kb_group_join(c, &p, T(10001), &j2);
    assert_int_equal(j2.err, KP_ERR_UNKNOWN_MEMBER_ID);
    kb_gcoord_free(c);
}

static void test_group_second_member_rebalances(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    assert_int_equal(hb(c, a, 1, 100), KP_ERR_NONE);

    join_w_t jb = {0};
    join(c, "", 200, &jb);
    assert_int_equal(jb.calls, 0);
    assert_int_equal(grp(c)->state, KB_GROUP_PREPARING_REBALANCE);
    assert_int_equal(hb(c, a, 1, 300), KP_ERR_REBALANCE_IN_PROGRESS);
    /* commits still allowed while preparing */
    kb_group_t *out;
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), 1, kp_str(a), (kp_str_t){NULL, -1},
                                           T(300), &out),
                     KP_ERR_NONE);

    join_w_t ja = {0};
    join(c, a, 400, &ja);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(ja.gen, 2);
    assert_int_equal(jb.gen, 2);
    assert_string_equal(ja.leader, a);
    assert_int_equal(ja.n_members, 2);
    assert_int_equal(jb.n_members, 0);
    assert_int_equal(grp(c)->state, KB_GROUP_COMPLETING_REBALANCE);

    /* commits are refused until the assignment is out */
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), 2, kp_str(a), (kp_str_t){NULL, -1},
                                           T(450), &out),
                     KP_ERR_REBALANCE_IN_PROGRESS);
    sync_w_t sb = {0}, sa = {0};
    sync_(c, jb.member_id, 2, NULL, 0, 500, &sb);
    assert_int_equal(sb.calls, 0); /* waits for the leader */
    assert_int_equal(hb(c, jb.member_id, 2, 550), KP_ERR_NONE);
    kb_gassign_in_t as[] = {{kp_str(a), {(const uint8_t *)"AA", 2}},
                            {kp_str(jb.member_id), {(const uint8_t *)"BB", 2}},
                            {kp_str("stranger"), {(const uint8_t *)"XX", 2}}};
    sync_(c, a, 2, as, 3, 600, &sa);
    assert_int_equal(sa.calls, 1);
    assert_int_equal(sb.calls, 1);
    assert_string_equal(sa.assign, "AA");
    assert_string_equal(sb.assign, "BB");
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    assert_true(U.stores >= 1);

    /* a late SyncGroup in Stable gets the stored assignment */
    sync_w_t sb2 = {0};
    sync_(c, jb.member_id, 2, NULL, 0, 700, &sb2);
    assert_string_equal(sb2.assign, "BB");
    kb_gcoord_free(c);
}

static void test_group_leader_missing_member_gets_empty_assignment(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    join_w_t jb = {0}, ja = {0};
    join(c, "", 10, &jb);
    join(c, a, 20, &ja);
    sync_w_t sb = {0}, sa = {0};
    sync_(c, jb.member_id, 2, NULL, 0, 30, &sb);
    kb_gassign_in_t as[] = {{kp_str(a), {(const uint8_t *)"AA", 2}}};
    sync_(c, a, 2, as, 1, 40, &sa);
    assert_int_equal(sb.err, KP_ERR_NONE);
    assert_int_equal(sb.alen, 0);
    kb_gcoord_free(c);
}

static void test_group_session_timeout_removes_member(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    join_w_t jb = {0}, ja = {0};
    join(c, "", 10, &jb);
    join(c, a, 20, &ja);
    sync_w_t sb = {0}, sa = {0};
    sync_(c, jb.member_id, 2, NULL, 0, 30, &sb);
    sync_(c, a, 2, NULL, 0, 40, &sa);
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    /* b heartbeats, a goes silent */
    for (int64_t t = 3000; t <= 9000; t += 3000) {
        assert_int_equal(hb(c, jb.member_id, 2, t), KP_ERR_NONE);
        kb_gcoord_poll(c, T(t));
    }
    kb_gcoord_poll(c, T(10039));
    assert_int_equal(grp(c)->n_members, 2);
    kb_gcoord_poll(c, T(10040));
    assert_int_equal(grp(c)->n_members, 1);
    assert_int_equal(grp(c)->state, KB_GROUP_PREPARING_REBALANCE);
    assert_int_equal(hb(c, a, 2, 10050), KP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(hb(c, jb.member_id, 2, 10060), KP_ERR_REBALANCE_IN_PROGRESS);
    join_w_t jb2 = {0};
    join(c, jb.member_id, 10070, &jb2);
    assert_int_equal(jb2.gen, 3);
    assert_string_equal(jb2.leader, jb.member_id);
    kb_gcoord_free(c);
}

static void test_group_rebalance_timeout_removes_laggard(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    join_w_t jb = {0};
    join(c, "", 10, &jb); /* a keeps heartbeating but never rejoins */
    for (int64_t t = 1000; t < 20010; t += 1000) {
        assert_int_equal(hb(c, a, 1, t), KP_ERR_REBALANCE_IN_PROGRESS);
        kb_gcoord_poll(c, T(t));
        assert_int_equal(jb.calls, 0);
    }
    kb_gcoord_poll(c, T(20010));
    assert_int_equal(jb.calls, 1);
    assert_int_equal(jb.err, KP_ERR_NONE);
    assert_int_equal(jb.gen, 2);
    assert_string_equal(jb.leader, jb.member_id);
    assert_int_equal(grp(c)->n_members, 1);
    assert_int_equal(hb(c, a, 1, 20020), KP_ERR_UNKNOWN_MEMBER_ID);
    kb_gcoord_free(c);
}

static void test_group_pending_sync_expires(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    join_w_t jb = {0}, ja = {0};
    join(c, "", 10, &jb);
    join(c, a, 20, &ja);
    sync_w_t sa = {0};
    sync_(c, a, 2, NULL, 0, 30, &sa); /* b never syncs */
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    assert_int_equal(hb(c, a, 2, 5000), KP_ERR_NONE);
    assert_int_equal(hb(c, a, 2, 12000), KP_ERR_NONE);
    assert_int_equal(hb(c, a, 2, 19000), KP_ERR_NONE);
    kb_gcoord_poll(c, T(20020));
    assert_int_equal(grp(c)->n_members, 1);
    assert_int_equal(grp(c)->state, KB_GROUP_PREPARING_REBALANCE);
    kb_gcoord_free(c);
}

static void test_group_leave_and_last_leave_empties(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    assert_int_equal(kb_group_leave_check(c, kp_str("g")), KP_ERR_NONE);
    assert_int_equal(kb_group_leave_member(c, kp_str("g"), kp_str("nobody"),
                                           (kp_str_t){NULL, -1}, T(10)),
                     KP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(kb_group_leave_member(c, kp_str("g"), kp_str(a), (kp_str_t){NULL, -1}, T(10)),
                     KP_ERR_NONE);
    assert_int_equal(grp(c)->state, KB_GROUP_EMPTY);
    assert_int_equal(grp(c)->generation_id, 2);
    assert_int_equal(U.last_state, KB_GROUP_EMPTY);
    assert_int_equal(kb_group_leave_check(c, kp_str("")), KP_ERR_INVALID_GROUP_ID);
    assert_int_equal(kb_group_leave_member(c, kp_str("nope"), kp_str(a), (kp_str_t){NULL, -1},
                                           T(10)),
                     KP_ERR_UNKNOWN_MEMBER_ID);
    kb_gcoord_free(c);
}

static void test_group_leave_during_rebalance_completes_join(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    join_w_t jb = {0};
    join(c, "", 10, &jb);
    assert_int_equal(jb.calls, 0);
    kb_group_leave_member(c, kp_str("g"), kp_str(a), (kp_str_t){NULL, -1}, T(20));
    assert_int_equal(jb.calls, 1);
    assert_int_equal(jb.gen, 2);
    assert_string_equal(jb.leader, jb.member_id);
    kb_gcoord_free(c);
}

static void test_group_error_answers(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    join_w_t j = {0};
    kb_join_params_t p = jp("", RANGE, 1);
    p.session_timeout_ms = 1000;
    kb_group_join(c, &p, T(0), &j);
    assert_int_equal(j.err, KP_ERR_INVALID_SESSION_TIMEOUT);
    assert_null(grp(c));
    p = jp("", RANGE, 1);
    p.group_id = kp_str("");
    kb_group_join(c, &p, T(0), &j);
    assert_int_equal(j.err, KP_ERR_INVALID_GROUP_ID);
    p = jp("", RANGE, 1);
    p.protocol_type = kp_str("");
    kb_group_join(c, &p, T(0), &j);
    assert_int_equal(j.err, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    assert_null(grp(c)); /* the failed join left nothing behind */
    join(c, "ghost", 0, &j);
    assert_int_equal(j.err, KP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(hb(c, "ghost", 1, 0), KP_ERR_UNKNOWN_MEMBER_ID);

    char a[160];
    one_stable(c, a, 0);
    assert_int_equal(hb(c, a, 7, 1), KP_ERR_ILLEGAL_GENERATION);
    assert_int_equal(hb(c, "ghost", 1, 1), KP_ERR_UNKNOWN_MEMBER_ID);
    /* another protocol type cannot join */
    p = jp("", RANGE, 1);
    p.protocol_type = kp_str("connect");
    kb_group_join(c, &p, T(2), &j);
    assert_int_equal(j.err, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* no common protocol */
    kb_gproto_in_t rr[] = {{kp_str("roundrobin"), {(const uint8_t *)"", 0}}};
    p = jp("", rr, 1);
    kb_group_join(c, &p, T(2), &j);
    assert_int_equal(j.err, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* sync errors */
    sync_w_t s = {0};
    sync_(c, a, 9, NULL, 0, 3, &s);
    assert_int_equal(s.err, KP_ERR_ILLEGAL_GENERATION);
    sync_(c, "ghost", 1, NULL, 0, 3, &s);
    assert_int_equal(s.err, KP_ERR_UNKNOWN_MEMBER_ID);
    kb_sync_params_t sp = {.group_id = kp_str("g"),
                           .member_id = kp_str(a),
                           .group_instance_id = {NULL, -1},
                           .protocol_type = kp_str("consumer"),
                           .protocol_name = kp_str("roundrobin"),
                           .generation_id = 1};
    kb_group_sync(c, &sp, T(3), &s);
    assert_int_equal(s.err, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* sync during a rebalance */
    join_w_t jb = {0};
    join(c, "", 4, &jb);
    sync_(c, a, 1, NULL, 0, 5, &s);
    assert_int_equal(s.err, KP_ERR_REBALANCE_IN_PROGRESS);
    kb_gcoord_free(c);
}

static void test_group_protocol_selection_by_votes(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    kb_gproto_in_t a[] = {{kp_str("range"), {NULL, 0}}, {kp_str("rr"), {NULL, 0}}};
    kb_gproto_in_t b[] = {{kp_str("rr"), {NULL, 0}}, {kp_str("range"), {NULL, 0}}};
    join_w_t j1 = {0}, j2 = {0}, j3 = {0}, j1b = {0};
    kb_join_params_t p = jp("", a, 2);
    kb_group_join(c, &p, T(0), &j1);
    assert_string_equal(j1.proto, "range");
    sync_w_t s = {0};
    sync_(c, j1.member_id, 1, NULL, 0, 0, &s);
    p = jp("", b, 2);
    kb_group_join(c, &p, T(1), &j2);
    p = jp("", b, 2);
    kb_group_join(c, &p, T(1), &j3);
    p = jp(j1.member_id, a, 2);
    kb_group_join(c, &p, T(2), &j1b);
    assert_int_equal(j1b.gen, 2);
    assert_string_equal(j1b.proto, "rr"); /* two votes against one */
    assert_string_equal(j2.proto, "rr");
    kb_gcoord_free(c);
}

static void test_group_initial_delay_extends_for_new_members(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(3000);
    join_w_t j1 = {0}, j2 = {0};
    join(c, "", 0, &j1);
    join(c, "", 2000, &j2);
    kb_gcoord_poll(c, T(3000)); /* a member arrived during the delay: wait another step */
    assert_int_equal(j1.calls, 0);
    kb_gcoord_poll(c, T(5999));
    assert_int_equal(j1.calls, 0);
    kb_gcoord_poll(c, T(6000));
    assert_int_equal(j1.calls, 1);
    assert_int_equal(j2.calls, 1);
    assert_int_equal(j1.gen, 1);
    assert_int_equal(j1.n_members, 2);
    kb_gcoord_free(c);
}

static void test_group_static_member_rejoin_keeps_generation(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    join_w_t j = {0};
    kb_join_params_t p = jp("", RANGE, 1);
    p.group_instance_id = kp_str("inst-1");
    kb_group_join(c, &p, T(0), &j);
    assert_int_equal(j.err, KP_ERR_NONE); /* static members skip MEMBER_ID_REQUIRED */
    sync_w_t s = {0};
    kb_gassign_in_t as = {kp_str(j.member_id), {(const uint8_t *)"S1", 2}};
    sync_(c, j.member_id, 1, &as, 1, 0, &s);
    char old[160];
    strcpy(old, j.member_id);

    /* restart of the same instance: new member id, same generation, no rebalance */
    join_w_t j2 = {0};
    kb_group_join(c, &p, T(100), &j2);
    assert_int_equal(j2.err, KP_ERR_NONE);
    assert_int_equal(j2.gen, 1);
    assert_string_not_equal(j2.member_id, old);
    assert_string_equal(j2.leader, old); /* pre-v9: old leader id, so it only syncs */
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    sync_w_t s2 = {0};
    kb_sync_params_t sp = {.group_id = kp_str("g"),
                           .member_id = kp_str(j2.member_id),
                           .group_instance_id = kp_str("inst-1"),
                           .protocol_type = {NULL, -1},
                           .protocol_name = {NULL, -1},
                           .generation_id = 1};
    kb_group_sync(c, &sp, T(101), &s2);
    assert_string_equal(s2.assign, "S1");
    /* the old incarnation is fenced */
    assert_int_equal(kb_group_heartbeat(c, kp_str("g"), 1, kp_str(old), kp_str("inst-1"), T(102)),
                     KP_ERR_FENCED_INSTANCE_ID);
    kb_group_t *out;
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), 1, kp_str(old), kp_str("inst-1"), T(102),
                                           &out),
                     KP_ERR_FENCED_INSTANCE_ID);
    /* admin removal by instance id */
    assert_int_equal(kb_group_leave_member(c, kp_str("g"), kp_str(""), kp_str("inst-1"), T(103)),
                     KP_ERR_NONE);
    assert_int_equal(grp(c)->state, KB_GROUP_EMPTY);
    kb_gcoord_free(c);
}

static void test_group_simple_commit_rules(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    kb_group_t *out = NULL;
    kp_str_t none = {NULL, -1};
    assert_int_equal(kb_group_commit_check(c, kp_str("s"), 5, kp_str(""), none, T(0), &out),
                     KP_ERR_ILLEGAL_GENERATION);
    assert_int_equal(kb_group_commit_check(c, kp_str("s"), -1, kp_str(""), none, T(0), &out),
                     KP_ERR_NONE);
    assert_non_null(out);
    kb_offset_t o = {.offset = 42, .leader_epoch = -1, .metadata = "m", .metadata_len = 1,
                     .expire_ts = -1};
    assert_int_equal(kb_group_offset_put(c, kp_str("s"), kp_str("t"), 3, &o), 0);
    const kb_offset_t *got = kb_group_offset_get(out, kp_str("t"), 3);
    assert_non_null(got);
    assert_int_equal(got->offset, 42);
    assert_string_equal(got->metadata, "m");
    assert_null(kb_group_offset_get(out, kp_str("t"), 4));

    char a[160];
    one_stable(c, a, 0);
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), -1, kp_str(""), none, T(0), &out),
                     KP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), 1, kp_str(a), none, T(0), &out),
                     KP_ERR_NONE);
    assert_int_equal(kb_group_commit_check(c, kp_str("g"), 0, kp_str(a), none, T(0), &out),
                     KP_ERR_ILLEGAL_GENERATION);
    kb_gcoord_free(c);
}

static void test_group_delete_rules(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    assert_int_equal(kb_group_delete(c, kp_str("g")), KP_ERR_NON_EMPTY_GROUP);
    assert_int_equal(kb_group_delete(c, kp_str("zz")), KP_ERR_GROUP_ID_NOT_FOUND);
    kb_group_leave_member(c, kp_str("g"), kp_str(a), (kp_str_t){NULL, -1}, T(1));
    int dead = U.dead_stores;
    assert_int_equal(kb_group_delete(c, kp_str("g")), KP_ERR_NONE);
    assert_int_equal(U.dead_stores, dead + 1);
    assert_null(grp(c));
    kb_gcoord_free(c);
}

static void test_group_offsets_expire_after_empty(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    kb_offset_t o = {.offset = 1, .leader_epoch = -1, .commit_ts = 0, .expire_ts = -1};
    kb_group_offset_put(c, kp_str("g"), kp_str("t"), 0, &o);
    kb_gcoord_poll(c, T(1)); /* arms the retention check */
    int64_t week = 7LL * 24 * 3600 * 1000;
    kb_group_leave_member(c, kp_str("g"), kp_str(a), (kp_str_t){NULL, -1}, T(1000));
    kb_gcoord_poll(c, T(week + 999)); /* a week after commit, not after becoming empty */
    assert_non_null(grp(c));
    assert_int_equal(U.expired, 0);
    kb_gcoord_poll(c, T(week + 1000 + 60000));
    assert_int_equal(U.expired, 1);
    assert_null(grp(c)); /* Empty with no offsets: gone */
    assert_true(U.dead_stores >= 1);
    kb_gcoord_free(c);
}

/* ConsumerProtocol subscription v0 for one topic. */
static const uint8_t SUB_T[] = {0, 0, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff};

static void test_group_offset_delete_subscribed(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    kb_gproto_in_t pr[] = {{kp_str("range"), {SUB_T, sizeof SUB_T}}};
    join_w_t j = {0};
    kb_join_params_t p = jp("", pr, 1);
    kb_group_join(c, &p, T(0), &j);
    sync_w_t s = {0};
    sync_(c, j.member_id, 1, NULL, 0, 0, &s);
    kb_group_t *g = NULL;
    assert_int_equal(kb_group_offset_delete_group_check(c, kp_str("g"), &g), KP_ERR_NONE);
    assert_int_equal(kb_group_offset_delete_check(g, kp_str("t")),
                     KP_ERR_GROUP_SUBSCRIBED_TO_TOPIC);
    assert_int_equal(kb_group_offset_delete_check(g, kp_str("u")), KP_ERR_NONE);
    assert_int_equal(kb_group_offset_delete_group_check(c, kp_str("x"), &g),
                     KP_ERR_GROUP_ID_NOT_FOUND);
    kb_gcoord_free(c);
}

static void test_group_load_stable_accepts_heartbeats(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    kb_gmember_load_t m = {.member_id = kp_str("m1"),
                           .group_instance_id = {NULL, -1},
                           .client_id = kp_str("cli"),
                           .client_host = kp_str("/1.2.3.4"),
                           .session_timeout_ms = 10000,
                           .rebalance_timeout_ms = 20000,
                           .subscription = {SUB_T, sizeof SUB_T},
                           .assignment = {(const uint8_t *)"AS", 2}};
    kb_group_load_t l = {.group_id = kp_str("g"),
                         .protocol_type = kp_str("consumer"),
                         .protocol_name = kp_str("range"),
                         .leader_id = kp_str("m1"),
                         .generation_id = 7,
                         .members = &m,
                         .n_members = 1};
    assert_int_equal(kb_group_load(c, &l, T(1000)), 0);
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    assert_int_equal(hb(c, "m1", 7, 5000), KP_ERR_NONE);
    sync_w_t s = {0};
    sync_(c, "m1", 7, NULL, 0, 5001, &s);
    assert_string_equal(s.assign, "AS");
    /* never heard from again: removed after the session timeout, group empties */
    kb_gcoord_poll(c, T(15001));
    assert_int_equal(grp(c)->state, KB_GROUP_EMPTY);
    assert_int_equal(grp(c)->generation_id, 8);
    kb_group_unload(c, kp_str("g"));
    assert_null(grp(c));
    kb_gcoord_free(c);
}

static void test_group_topic_deleted_drops_offsets(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    kb_offset_t o = {.offset = 5, .leader_epoch = -1, .expire_ts = -1};
    kb_group_offset_put(c, kp_str("s1"), kp_str("gone"), 0, &o);
    kb_group_offset_put(c, kp_str("s1"), kp_str("gone"), 1, &o);
    kb_group_offset_put(c, kp_str("s2"), kp_str("gone"), 0, &o);
    kb_group_offset_put(c, kp_str("s2"), kp_str("kept"), 0, &o);
    kb_gcoord_topic_deleted(c, kp_str("gone"));
    assert_int_equal(U.expired, 3); /* one tombstone each */
    assert_null(kb_gcoord_find(c, kp_str("s1"))); /* empty and offset-less: deleted */
    kb_group_t *g = kb_gcoord_find(c, kp_str("s2"));
    assert_non_null(g);
    assert_null(kb_group_offset_get(g, kp_str("gone"), 0));
    assert_non_null(kb_group_offset_get(g, kp_str("kept"), 0));
    kb_gcoord_free(c);
}

static void test_group_free_answers_held_requests(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(3000);
    join_w_t j = {0};
    join(c, "", 0, &j);
    assert_int_equal(j.calls, 0);
    kb_gcoord_free(c);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.err, KP_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* The wall clock steps (NTP, an operator): deadlines live on the mono clock, so a +1 h step
 * neither expires the member nor starts a rebalance, and a -1 h step does not keep an
 * overdue member alive. */
static void test_group_wall_clock_step_does_not_move_deadlines(void **st)
{
    (void)st;
    kb_gcoord_t *c = coord(0);
    char a[160];
    one_stable(c, a, 0);
    int64_t hour = 3600 * 1000;
    kb_gtime_t stepped = {.mono = 5000, .wall = 5000 + hour};
    kb_gcoord_poll(c, stepped);
    assert_int_equal(grp(c)->n_members, 1);
    assert_int_equal(grp(c)->state, KB_GROUP_STABLE);
    assert_int_equal(kb_group_heartbeat(c, kp_str("g"), 1, kp_str(a), (kp_str_t){NULL, -1},
                                        stepped),
                     KP_ERR_NONE);
    assert_int_equal(kb_gcoord_next_deadline(c) <= 5000 + 10000, 1); /* mono, not wall */
    /* wall goes back an hour, mono runs past the session timeout: the member expires */
    kb_gtime_t back = {.mono = 15001, .wall = 15001 - hour};
    kb_gcoord_poll(c, back);
    assert_int_equal(grp(c)->n_members, 0);
    assert_int_equal(grp(c)->state, KB_GROUP_EMPTY);
    assert_int_equal(grp(c)->state_ts, back.wall); /* data time: written to the offsets log */
    kb_gcoord_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_member_id_required_then_join),
        cmocka_unit_test(test_group_id_with_nul_makes_no_group),
        cmocka_unit_test(test_group_pending_member_expires),
        cmocka_unit_test(test_group_second_member_rebalances),
        cmocka_unit_test(test_group_leader_missing_member_gets_empty_assignment),
        cmocka_unit_test(test_group_session_timeout_removes_member),
        cmocka_unit_test(test_group_rebalance_timeout_removes_laggard),
        cmocka_unit_test(test_group_pending_sync_expires),
        cmocka_unit_test(test_group_leave_and_last_leave_empties),
        cmocka_unit_test(test_group_leave_during_rebalance_completes_join),
        cmocka_unit_test(test_group_error_answers),
        cmocka_unit_test(test_group_protocol_selection_by_votes),
        cmocka_unit_test(test_group_initial_delay_extends_for_new_members),
        cmocka_unit_test(test_group_static_member_rejoin_keeps_generation),
        cmocka_unit_test(test_group_simple_commit_rules),
        cmocka_unit_test(test_group_delete_rules),
        cmocka_unit_test(test_group_offsets_expire_after_empty),
        cmocka_unit_test(test_group_offset_delete_subscribed),
        cmocka_unit_test(test_group_load_stable_accepts_heartbeats),
        cmocka_unit_test(test_group_topic_deleted_drops_offsets),
        cmocka_unit_test(test_group_free_answers_held_requests),
        cmocka_unit_test(test_group_wall_clock_step_does_not_move_deadlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

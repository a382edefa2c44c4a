/*
 * The ConsumerProtocol codec (subscription and assignment bytes) against bytes encoded by an
 * independent implementation (kafka-python 2.0.2's ConsumerProtocolMemberMetadata /
 * ConsumerProtocolMemberAssignment, see the comment at each array), and the range assignor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "client/kc_group.h"

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* M(0, ['orders', 'alerts'], b'').encode() */
static const char SUB_V0[] = "00000000000200066f72646572730006616c6572747300000000";
/* A(0, [('orders', [0, 2]), ('alerts', [1])], b'').encode() */
static const char ASG_V0[] = "00000000000200066f72646572730000000200000000000000020006616c65727473"
                             "000000010000000100000000";

static void test_kc_subscription_matches_kafka_python(void **state)
{
    (void)state;
    uint8_t want[64];
    size_t wn = unhex(SUB_V0, want);
    kp_str_t topics[2] = {kp_str("orders"), kp_str("alerts")};
    kc_subscription_t s = {
        .version = 0, .topics = topics, .ntopics = 2, .user_data = {(const uint8_t *)"", 0}};
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kc_subscription_encode(&b, &s), 0);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    kp_buf_deinit(&b);

    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kc_subscription_t d;
    assert_int_equal(kc_subscription_decode(want, wn, &a, &d), 0);
    assert_int_equal(d.version, 0);
    assert_int_equal(d.ntopics, 2);
    assert_true(kp_str_eq(d.topics[0], "orders"));
    assert_true(kp_str_eq(d.topics[1], "alerts"));
    assert_int_equal(d.user_data.len, 0);
    assert_int_equal(d.nowned, 0);
    assert_int_equal(d.generation_id, -1);
    /* Every truncation fails cleanly. */
    for (size_t n = 1; n < wn; n++)
        assert_int_equal(kc_subscription_decode(want, n, &a, &d), K_ERR_MALFORMED);
    kp_arena_deinit(&a);
}

static void test_kc_assignment_matches_kafka_python(void **state)
{
    (void)state;
    uint8_t want[128];
    size_t wn = unhex(ASG_V0, want);
    int32_t p0[2] = {0, 2}, p1[1] = {1};
    kc_topic_parts_t tp[2] = {{kp_str("orders"), p0, 2}, {kp_str("alerts"), p1, 1}};
    kc_assignment_t as = {
        .version = 0, .parts = tp, .nparts = 2, .user_data = {(const uint8_t *)"", 0}};
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kc_assignment_encode(&b, &as), 0);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    kp_buf_deinit(&b);

    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kc_assignment_t d;
    assert_int_equal(kc_assignment_decode(want, wn, &a, &d), 0);
    assert_int_equal(d.nparts, 2);
    assert_true(kp_str_eq(d.parts[0].topic, "orders"));
    assert_int_equal(d.parts[0].npartitions, 2);
    assert_int_equal(d.parts[0].partitions[1], 2);
    assert_true(kp_str_eq(d.parts[1].topic, "alerts"));
    assert_int_equal(d.parts[1].partitions[0], 1);
    /* An empty assignment (a member the leader left out) is no partitions, not an error. */
    assert_int_equal(kc_assignment_decode(NULL, 0, &a, &d), 0);
    assert_int_equal(d.nparts, 0);
    /* A lying partition count fails before allocating. */
    want[wn - 12] = 0x7f; /* the count of alerts partitions */
    assert_int_equal(kc_assignment_decode(want, wn, &a, &d), K_ERR_MALFORMED);
    kp_arena_deinit(&a);
}

static void test_kc_subscription_newer_versions_round_trip(void **state)
{
    (void)state;
    kp_str_t topics[1] = {kp_str("t")};
    int32_t owned_p[2] = {3, 4};
    kc_topic_parts_t owned = {kp_str("t"), owned_p, 2};
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    for (int16_t v = 1; v <= 3; v++) {
        kc_subscription_t s = {.version = v,
                               .topics = topics,
                               .ntopics = 1,
                               .user_data = {NULL, -1},
                               .owned = &owned,
                               .nowned = 1,
                               .generation_id = 7,
                               .rack_id = kp_str("rack-a")};
        kp_buf_t b;
        kp_buf_init(&b);
        assert_int_equal(kc_subscription_encode(&b, &s), 0);
        /* A reader that knows newer fields ignores bytes after the ones it knows. */
        kp_put_i32(&b, 0x12345678);
        kc_subscription_t d;
        assert_int_equal(kc_subscription_decode(b.data, b.len, &a, &d), 0);
        assert_int_equal(d.version, v);
        assert_int_equal(d.user_data.len, -1);
        assert_int_equal(d.nowned, 1);
        assert_int_equal(d.owned[0].partitions[1], 4);
        assert_int_equal(d.generation_id, v >= 2 ? 7 : -1);
        assert_true(v >= 3 ? kp_str_eq(d.rack_id, "rack-a") : d.rack_id.len == -1);
        kp_buf_deinit(&b);
    }
    kc_subscription_t bad = {.version = 4};
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kc_subscription_encode(&b, &bad), K_ERR_INVAL);
    kp_buf_deinit(&b);
    kp_arena_deinit(&a);
}

static void test_kc_range_assign_splits_by_member_id(void **state)
{
    (void)state;
    kp_str_t both[2] = {kp_str("a"), kp_str("b")}, only_a[1] = {kp_str("a")};
    /* Given out of order: the assignor sorts by member id ("m1" < "m2" < "m3"). */
    kc_member_sub_t m[3] = {
        {kp_str("m2"), {.topics = both, .ntopics = 2}},
        {kp_str("m1"), {.topics = both, .ntopics = 2}},
        {kp_str("m3"), {.topics = only_a, .ntopics = 1}},
    };
    const char *topics[3] = {"a", "b", "c"};
    int32_t counts[3] = {5, 1, 4};
    kc_assignment_t out[3];
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    assert_int_equal(kc_range_assign(&a, m, 3, topics, counts, 3, out), 0);
    /* topic a (5 partitions, 3 members): m1 0-1, m2 2-3, m3 4 */
    assert_int_equal(out[1].nparts, 2);
    assert_true(kp_str_eq(out[1].parts[0].topic, "a"));
    assert_int_equal(out[1].parts[0].npartitions, 2);
    assert_int_equal(out[1].parts[0].partitions[0], 0);
    assert_int_equal(out[1].parts[0].partitions[1], 1);
    assert_int_equal(out[0].parts[0].partitions[0], 2);
    assert_int_equal(out[0].parts[0].partitions[1], 3);
    assert_int_equal(out[2].nparts, 1);
    assert_int_equal(out[2].parts[0].npartitions, 1);
    assert_int_equal(out[2].parts[0].partitions[0], 4);
    /* topic b (1 partition, m1 and m2): m1 only; nobody subscribes to c */
    assert_true(kp_str_eq(out[1].parts[1].topic, "b"));
    assert_int_equal(out[1].parts[1].partitions[0], 0);
    assert_int_equal(out[0].nparts, 1);
    kp_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kc_subscription_matches_kafka_python),
        cmocka_unit_test(test_kc_assignment_matches_kafka_python),
        cmocka_unit_test(test_kc_subscription_newer_versions_round_trip),
        cmocka_unit_test(test_kc_range_assign_splits_by_member_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

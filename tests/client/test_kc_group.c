/*
 * The group member against the scripted broker (mock_broker.h): the MEMBER_ID_REQUIRED round
 * trip, the leader assigning every partition to itself in ConsumerProtocol bytes, reading from
 * the committed offsets (earliest where there is none), commits of the consumed positions,
 * and a rejoin when a heartbeat answers REBALANCE_IN_PROGRESS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "client/kc_int.h"
#include "tests/client/mock_broker.h"

static kc_client_t *connect_to(mock_broker_t *mb)
{
    char boot[64];
    snprintf(boot, sizeof boot, "127.0.0.1:%d", mb->port);
    kc_config_t cfg = {.bootstrap = boot, .timeout_ms = 5000, .retries = 2, .retry_backoff_ms = 10};
    kc_client_t *c = kc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(kc_client_connect(c), 0);
    return c;
}

static void produce(kc_client_t *c, int32_t partition, int n)
{
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    kc_producer_t *p = kc_producer_new(c, &pc);
    for (int i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "p%d-%d", partition, i);
        assert_int_equal(kc_producer_send(p, "t", partition, (kp_bytes_t){NULL, -1},
                                          (kp_bytes_t){(const uint8_t *)v, len}, NULL, 0, -1),
                         0);
    }
    assert_int_equal(kc_producer_flush(p), 0);
    kc_producer_free(p);
}

static void test_kc_group_join_assign_consume_commit(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 3, .rebalance_on_heartbeat = 1};
    mb.committed[1] = 7; /* partition 1 resumes at 7; the others start at the beginning */
    mb_start(&mb);
    kc_client_t *c = connect_to(&mb);
    for (int32_t p = 0; p < 3; p++)
        produce(c, p, 10);
    const char *topics[1] = {"t"};
    kc_group_config_t gc = {.group_id = "g",
                            .topics = topics,
                            .ntopics = 1,
                            .heartbeat_interval_ms = 1,
                            .from_beginning = true};
    kc_group_t *g = kc_group_new(c, &gc);
    assert_non_null(g);
    int seen[3] = {0};
    int64_t lo[3] = {99, 99, 99}, hi[3] = {-1, -1, -1};
    kc_message_t m;
    int r;
    while ((r = kc_group_poll(g, 1000, &m)) == 1) {
        assert_string_equal(m.topic, "t");
        assert_in_range(m.partition, 0, 2);
        seen[m.partition]++;
        if (m.offset < lo[m.partition]) lo[m.partition] = m.offset;
        if (m.offset > hi[m.partition]) hi[m.partition] = m.offset;
        assert_true(seen[0] + seen[1] + seen[2] < 200);
    }
    assert_int_equal(r, 0);
    /* Records may come again after the rebalance (nothing was committed yet), never fewer;
     * partition 1 starts at its committed offset. */
    assert_true(seen[0] >= 10 && seen[1] >= 3 && seen[2] >= 10);
    assert_int_equal(lo[0], 0);
    assert_int_equal(lo[1], 7);
    assert_int_equal(lo[2], 0);
    assert_int_equal(hi[0], 9);
    assert_int_equal(hi[1], 9);
    assert_int_equal(hi[2], 9);
    /* Joined twice (MEMBER_ID_REQUIRED first), then again after the heartbeat's
     * REBALANCE_IN_PROGRESS. */
    assert_true(mb.joins >= 3);
    assert_true(mb.syncs >= 2);
    assert_string_equal(kc_group_member_id(g), "m-1");
    assert_true(kc_group_generation(g) >= 2);
    /* The leader's assignment holds all three partitions, decodable as ConsumerProtocol. */
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kc_assignment_t as;
    assert_int_equal(kc_assignment_decode(mb.asg, mb.asg_len, &a, &as), 0);
    assert_int_equal(as.nparts, 1);
    assert_int_equal(as.parts[0].npartitions, 3);
    kc_subscription_t sub;
    assert_int_equal(kc_subscription_decode(mb.sub, mb.sub_len, &a, &sub), 0);
    assert_int_equal(sub.ntopics, 1);
    assert_true(kp_str_eq(sub.topics[0], "t"));
    kp_arena_deinit(&a);
    assert_int_equal(kc_group_commit(g), 0);
    assert_int_equal(mb.committed[0], 10);
    assert_int_equal(mb.committed[1], 10);
    assert_int_equal(mb.committed[2], 10);
    kc_group_close(g);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kc_group_join_assign_consume_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The clock seam through a real broker on loopback: the wall clock is stepped with the test
 * hook (kb_clock_test_step_wall, never the system clock) while a consumer group is stable and
 * while a Fetch long-polls. Deadlines run on the monotonic clock, so a +1 h step must not
 * expire the member or start a rebalance, and a -1 h step must not freeze a long poll.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker/core/clock.h"
#include "broker/core/config.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "broker_thread.h"
#include "h_test_util.h"
#include "protocol/gen/kp_describe_groups.h"
#include "protocol/gen/kp_heartbeat.h"
#include "protocol/gen/kp_join_group.h"
#include "protocol/gen/kp_sync_group.h"

#define HOUR_MS (3600LL * 1000)

static tb_t tb;

static int setup(void **state)
{
    (void)state;
    const char *sets[] = {"group.initial.rebalance.delay.ms=0"};
    if (tb_open(&tb, "kbclock", sets, 1) < 0) return -1;
    ks_topic_t *t;
    if (ks_topic_create(kb_broker_store(tb.broker), "t", 1, NULL, &t) < 0) return -1;
    return tb_run(&tb);
}

static int teardown(void **state)
{
    (void)state;
    tb_close(&tb);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int client(void)
{
    int fd = tb_connect(&tb, 10);
    assert_true(fd >= 0);
    return fd;
}

/* Sends one request and reads its answer into buf (heap, caller frees); r is at the body. */
static uint8_t *roundtrip(int fd, int16_t key, int16_t v, int32_t corr, tb_enc_fn enc,
                          const void *msg, kp_reader_t *r)
{
    assert_int_equal(tb_send_req(fd, key, v, corr, enc, msg), 0);
    uint8_t *buf = tb_recv_resp(fd, key, v, corr, r);
    assert_non_null(buf);
    return buf;
}

static int enc_join(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_join_group_req_encode(b, v, m);
}
static int enc_sync(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_sync_group_req_encode(b, v, m);
}
static int enc_hb(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_heartbeat_req_encode(b, v, m);
}
static int enc_desc(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_describe_groups_req_encode(b, v, m);
}
static int enc_fetch(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_fetch_req_encode(b, v, m);
}

/* JoinGroup v3 (no MEMBER_ID_REQUIRED round) for a group of one; returns the generation and
 * copies the member id. */
static int32_t join(int fd, const char *group, char *member, size_t cap)
{
    kp_join_group_req_join_group_request_protocol_t p;
    kp_join_group_req_join_group_request_protocol_init(&p);
    p.name = kp_str("range");
    p.metadata = (kp_bytes_t){(const uint8_t *)"md", 2};
    kp_join_group_req_t m;
    kp_join_group_req_init(&m);
    m.group_id = kp_str(group);
    m.session_timeout_ms = 10000;
    m.rebalance_timeout_ms = 10000;
    m.member_id = kp_str("");
    m.protocol_type = kp_str("consumer");
    m.protocols = &p;
    m.protocols_count = 1;
    kp_reader_t r;
    uint8_t *buf = roundtrip(fd, KP_API_JOIN_GROUP, 3, 1, enc_join, &m, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_join_group_resp_t resp;
    assert_int_equal(kp_join_group_resp_decode(&r, 3, &a, &resp), 0);
    assert_int_equal(resp.error_code, KP_ERR_NONE);
    assert_true(resp.member_id.len > 0 && (size_t)resp.member_id.len < cap);
    memcpy(member, resp.member_id.ptr, (size_t)resp.member_id.len);
    member[resp.member_id.len] = 0;
    int32_t gen = resp.generation_id;
    kp_arena_deinit(&a);
    free(buf);
    return gen;
}

static int16_t sync_group(int fd, const char *group, const char *member, int32_t gen)
{
    kp_sync_group_req_sync_group_request_assignment_t as;
    kp_sync_group_req_sync_group_request_assignment_init(&as);
    as.member_id = kp_str(member);
    as.assignment = (kp_bytes_t){(const uint8_t *)"A", 1};
    kp_sync_group_req_t m;
    kp_sync_group_req_init(&m);
    m.group_id = kp_str(group);
    m.generation_id = gen;
    m.member_id = kp_str(member);
    m.assignments = &as;
    m.assignments_count = 1;
    kp_reader_t r;
    uint8_t *buf = roundtrip(fd, KP_API_SYNC_GROUP, 3, 2, enc_sync, &m, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_sync_group_resp_t resp;
    assert_int_equal(kp_sync_group_resp_decode(&r, 3, &a, &resp), 0);
    int16_t err = resp.error_code;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

static int16_t heartbeat(int fd, const char *group, const char *member, int32_t gen)
{
    kp_heartbeat_req_t m;
    kp_heartbeat_req_init(&m);
    m.group_id = kp_str(group);
    m.generation_id = gen;
    m.member_id = kp_str(member);
    kp_reader_t r;
    uint8_t *buf = roundtrip(fd, KP_API_HEARTBEAT, 3, 3, enc_hb, &m, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_heartbeat_resp_t resp;
    assert_int_equal(kp_heartbeat_resp_decode(&r, 3, &a, &resp), 0);
    int16_t err = resp.error_code;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

/* DescribeGroups: the group's state name into state, and its member count. */
static int32_t describe(int fd, const char *group, char *state, size_t cap)
{
    kp_str_t g = kp_str(group);
    kp_describe_groups_req_t m;
    kp_describe_groups_req_init(&m);
    m.groups = &g;
    m.groups_count = 1;
    kp_reader_t r;
    uint8_t *buf = roundtrip(fd, KP_API_DESCRIBE_GROUPS, 3, 4, enc_desc, &m, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_describe_groups_resp_t resp;
    assert_int_equal(kp_describe_groups_resp_decode(&r, 3, &a, &resp), 0);
    assert_int_equal(resp.groups_count, 1);
    kp_str_t s = resp.groups[0].group_state;
    assert_true(s.len >= 0 && (size_t)s.len < cap);
    memcpy(state, s.ptr, (size_t)s.len);
    state[s.len] = 0;
    int32_t n = resp.groups[0].members_count;
    kp_arena_deinit(&a);
    free(buf);
    return n;
}

/* +1 h on the wall clock while a group is stable: the member stays, no rebalance starts. */
static void test_clock_wall_step_forward_keeps_members(void **state)
{
    (void)state;
    int fd = client();
    char member[256], other[256], st[64];
    int32_t gen = join(fd, "g", member, sizeof member);
    assert_int_equal(sync_group(fd, "g", member, gen), KP_ERR_NONE);
    assert_int_equal(heartbeat(fd, "g", member, gen), KP_ERR_NONE);

    kb_clock_test_step_wall(HOUR_MS);
    /* Another group's join re-arms the coordinator's timer; a deadline taken from the wall
     * clock would now be an hour overdue and the poll would expire "g"'s member. */
    join(fd, "other", other, sizeof other);
    usleep(300 * 1000);
    assert_int_equal(describe(fd, "g", st, sizeof st), 1);
    assert_string_equal(st, "Stable");
    assert_int_equal(heartbeat(fd, "g", member, gen), KP_ERR_NONE);
    kb_clock_test_step_wall(-HOUR_MS);
    close(fd);
}

/* -1 h on the wall clock while a Fetch long-polls: it still answers after max_wait_ms. */
static void test_clock_wall_step_back_does_not_freeze_long_poll(void **state)
{
    (void)state;
    int fd = client();
    kp_fetch_req_fetch_partition_t fp;
    kp_fetch_req_fetch_partition_init(&fp);
    fp.partition = 0;
    fp.fetch_offset = 0; /* the log end of an empty partition: the fetch parks */
    fp.partition_max_bytes = 1 << 20;
    kp_fetch_req_fetch_topic_t ft;
    kp_fetch_req_fetch_topic_init(&ft);
    ft.topic = kp_str("t");
    ft.partitions = &fp;
    ft.partitions_count = 1;
    kp_fetch_req_t m;
    kp_fetch_req_init(&m);
    m.max_wait_ms = 500;
    m.min_bytes = 1;
    m.max_bytes = 1 << 20;
    m.topics = &ft;
    m.topics_count = 1;
    kb_clock_test_step_wall(-HOUR_MS);
    double t0 = now_s();
    kp_reader_t r;
    uint8_t *buf = roundtrip(fd, KP_API_FETCH, 11, 5, enc_fetch, &m, &r);
    double took = now_s() - t0;
    kb_clock_test_step_wall(HOUR_MS);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_fetch_resp_t resp;
    assert_int_equal(kp_fetch_resp_decode(&r, 11, &a, &resp), 0);
    assert_int_equal(resp.responses[0].partitions[0].error_code, KP_ERR_NONE);
    kp_arena_deinit(&a);
    free(buf);
    assert_true(took >= 0.45 && took < 2.0);
    /* conn.c's counter hooks saw it (read from this thread: relaxed loads, counters.h) */
    const kb_api_counters_t *ac = kb_counters_api(tb.broker, KP_API_FETCH);
    assert_non_null(ac);
    assert_true(kb_ctr_read(&ac->requests) >= 1);
    int slow = kb_counters_latency_bucket(450000);
    uint64_t parked = 0;
    for (int i = slow; i < KB_CTR_LAT_BUCKETS; i++)
        parked += kb_ctr_read(&ac->latency[i]);
    assert_true(parked >= 1); /* the long poll's wait counts in its latency */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_wall_step_forward_keeps_members),
        cmocka_unit_test(test_clock_wall_step_back_does_not_freeze_long_poll),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

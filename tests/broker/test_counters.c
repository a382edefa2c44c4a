/*
 * broker/core/counters.c on a started broker (store open, subsystems up, no loop thread: this
 * thread is the loop). Requests are fake kb_req_t values driven through the hooks conn.c and
 * the handlers call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/counters.h"
#include "broker/core/server.h"
#include "h_test_util.h"

static char tmpdir[64];
static kb_config_t cfg;
static uv_loop_t loop;
static kb_broker_t *broker;

static int setup(void **state)
{
    (void)state;
    kb_log_set_level(KB_LOG_ERROR);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kbctrXXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    char dirs[128];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", tmpdir);
    const char *sets[] = {"listeners=PLAINTEXT://127.0.0.1:0", dirs};
    char err[256];
    if (kb_config_load(&cfg, NULL, sets, 2, err, sizeof err, NULL) < 0) return -1;
    uv_loop_init(&loop);
    if (kb_broker_new(&cfg, &loop, &broker) < 0 || kb_broker_start(broker) < 0) return -1;
    ks_topic_t *t;
    return ks_topic_create(kb_broker_store(broker), "orders", 2, NULL, &t) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    kb_broker_stop(broker);
    kb_broker_stop(broker); /* skip the drain wait */
    uv_run(&loop, UV_RUN_DEFAULT);
    kb_broker_free(broker);
    uv_loop_close(&loop);
    kb_config_deinit(&cfg);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static kb_req_t fake_req(int16_t key, size_t frame_len)
{
    kb_req_t r;
    memset(&r, 0, sizeof r);
    r.broker = broker;
    r.hdr.api_key = key;
    r.frame_len = frame_len;
    kp_buf_init(&r.resp);
    return r;
}

static void test_counters_latency_buckets(void **state)
{
    (void)state;
    assert_int_equal(kb_counters_latency_bucket(0), 0);
    assert_int_equal(kb_counters_latency_bucket(500), 0);
    assert_int_equal(kb_counters_latency_bucket(501), 1);
    assert_int_equal(kb_counters_latency_bucket(1000000), 10);
    assert_int_equal(kb_counters_latency_bucket(10000000), KB_CTR_LAT_BUCKETS - 2);
    assert_int_equal(kb_counters_latency_bucket(10000001), KB_CTR_LAT_BUCKETS - 1);
    assert_int_equal(kb_counters_latency_bucket(UINT64_MAX), KB_CTR_LAT_BUCKETS - 1);
}

static void test_counters_per_api(void **state)
{
    (void)state;
    const kb_api_counters_t *a = kb_counters_api(broker, KP_API_METADATA);
    assert_non_null(a);
    assert_null(kb_counters_api(broker, -1));
    assert_null(kb_counters_api(broker, KB_CTR_MAX_API));
    uint64_t before = kb_ctr_read(&a->requests);

    kb_req_t r = fake_req(KP_API_METADATA, 40);
    kb_counters_request_start(&r);
    kb_req_error(&r, KP_ERR_TOPIC_AUTHORIZATION_FAILED);
    kb_req_error(&r, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION); /* the first code counts */
    usleep(2000);
    kb_counters_request_done(&r);
    assert_int_equal(kb_ctr_read(&a->requests), before + 1);
    assert_int_equal(a->errors[KP_ERR_TOPIC_AUTHORIZATION_FAILED], 1);
    assert_int_equal(a->errors[KP_ERR_UNKNOWN_TOPIC_OR_PARTITION], 0);
    uint64_t n = 0;
    for (int i = 0; i < KB_CTR_LAT_BUCKETS; i++)
        n += a->latency[i];
    assert_int_equal(n, 1);
    assert_int_equal(a->latency[0], 0); /* slept 2 ms: above the 0.5 ms bucket */
    assert_true(a->latency_sum_us >= 2000);

    kb_req_t bad = fake_req(KP_API_METADATA, 10);
    bad.error_code = 1000; /* not a Kafka code: the "other" slot */
    kb_counters_request_start(&bad);
    kb_counters_request_done(&bad);
    assert_int_equal(a->errors[KB_CTR_ERR_OTHER], 1);
    kb_req_t closing = fake_req(KP_API_METADATA, 10);
    kb_counters_request_start(&closing);
    kb_counters_request_closed(&closing);
    assert_int_equal(a->closed, 1);
    assert_int_equal(kb_ctr_read(&a->requests), before + 3);
}

static void count_topic(void *ud, const char *topic, const kb_topic_counters_t *c)
{
    (void)c;
    if (strcmp(topic, "orders") == 0)
        (*(int *)ud)++;
    else
        (*(int *)ud) += 100;
}

static void test_counters_per_topic_and_delete(void **state)
{
    (void)state;
    kb_counters_topic_request(broker, kp_str("orders"), false);
    kb_counters_topic_produce(broker, kp_str("orders"), 300, 5, 0);
    kb_counters_topic_produce(broker, kp_str("orders"), 0, 0, KP_ERR_CORRUPT_MESSAGE);
    kb_counters_topic_request(broker, kp_str("orders"), true);
    kb_counters_topic_fetch(broker, kp_str("orders"), 280, 4, 0);
    /* names that are not topics get no counters at all */
    kb_counters_topic_produce(broker, kp_str("no-such-topic"), 10, 1, 0);
    kb_counters_topic_request(broker, kp_str("no-such-topic"), true);
    assert_null(kb_counters_topic(broker, "no-such-topic"));

    const kb_topic_counters_t *t = kb_counters_topic(broker, "orders");
    assert_non_null(t);
    assert_int_equal(kb_ctr_read(&t->bytes_in), 300);
    assert_int_equal(t->messages_in, 5);
    assert_int_equal(t->bytes_out, 280);
    assert_int_equal(t->messages_out, 4);
    assert_int_equal(t->produce_requests, 1);
    assert_int_equal(t->fetch_requests, 1);
    assert_int_equal(t->errors, 1);
    int seen = 0;
    kb_counters_foreach_topic(broker, count_topic, &seen);
    assert_int_equal(seen, 1);

    kb_broker_topic_deleted(broker, "orders"); /* the subsystem hook drops them */
    assert_null(kb_counters_topic(broker, "orders"));
    seen = 0;
    kb_counters_foreach_topic(broker, count_topic, &seen);
    assert_int_equal(seen, 0);
}

/* Many topics: the table grows and every one is still found. */
static void test_counters_many_topics(void **state)
{
    (void)state;
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "m%03d", i);
        ks_topic_t *t;
        assert_int_equal(ks_topic_create(kb_broker_store(broker), name, 1, NULL, &t), 0);
        kb_counters_topic_produce(broker, kp_str(name), (uint64_t)i, 1, 0);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "m%03d", i);
        const kb_topic_counters_t *t = kb_counters_topic(broker, name);
        assert_non_null(t);
        assert_int_equal(t->bytes_in, (uint64_t)i);
    }
}

static void *reader(void *arg)
{
    const kb_api_counters_t *a = arg;
    uint64_t last = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t v = kb_ctr_read(&a->requests);
        if (v < last) return (void *)1; /* a single writer's counter never goes back */
        last = v;
    }
    return NULL;
}

/* The reading rule: another thread reads with relaxed loads while the loop writes. */
static void test_counters_read_from_another_thread(void **state)
{
    (void)state;
    const kb_api_counters_t *a = kb_counters_api(broker, KP_API_FETCH);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, (void *)a), 0);
    for (int i = 0; i < 100000; i++) {
        kb_req_t r = fake_req(KP_API_FETCH, 1);
        kb_counters_request_start(&r);
        kb_counters_request_done(&r);
    }
    void *res;
    pthread_join(th, &res);
    assert_null(res);
    assert_int_equal(kb_ctr_read(&a->requests), 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_latency_buckets),
        cmocka_unit_test(test_counters_per_api),
        cmocka_unit_test(test_counters_per_topic_and_delete),
        cmocka_unit_test(test_counters_many_topics),
        cmocka_unit_test(test_counters_read_from_another_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

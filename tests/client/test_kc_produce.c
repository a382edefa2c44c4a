/*
 * Client producer logic: the Java-compatible partitioner, the retry policy, the accumulator's
 * batching, and the produce/retry loop against a scripted in-process broker (mock_broker.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "client/kc_int.h"
#include "protocol/kp_errors.h"
#include "tests/client/mock_broker.h"

static void test_kc_partition_for_key_matches_java(void **state)
{
    (void)state;
    /* Expected values from kafka-python's port of the Java murmur2 partitioner. */
    assert_int_equal(kc_partition_for_key((const uint8_t *)"", 0, 7), 2);
    assert_int_equal(kc_partition_for_key((const uint8_t *)"a", 1, 7), 5);
    assert_int_equal(kc_partition_for_key((const uint8_t *)"21", 2, 7), 3);
    assert_int_equal(kc_partition_for_key((const uint8_t *)"key-1", 5, 7), 5);
    assert_int_equal(kc_partition_for_key((const uint8_t *)"hello world", 11, 7), 2);
    uint8_t seq[20];
    for (int i = 0; i < 20; i++)
        seq[i] = (uint8_t)i;
    assert_int_equal(kc_partition_for_key(seq, 20, 7), 6);
    /* murmur2 & 0x7fffffff of "hello world" is 1221641059. */
    assert_int_equal(kc_partition_for_key((const uint8_t *)"hello world", 11, 1221641060),
                     1221641059);
}

static void test_kc_retry_action_classes(void **state)
{
    (void)state;
    assert_int_equal(kc_retry_action(KP_ERR_NONE), KC_ACT_DONE);
    assert_int_equal(kc_retry_action(KP_ERR_NOT_LEADER_OR_FOLLOWER), KC_ACT_RETRY_REFRESH);
    assert_int_equal(kc_retry_action(KP_ERR_LEADER_NOT_AVAILABLE), KC_ACT_RETRY_REFRESH);
    assert_int_equal(kc_retry_action(KP_ERR_UNKNOWN_TOPIC_OR_PARTITION), KC_ACT_RETRY_REFRESH);
    assert_int_equal(kc_retry_action(KP_ERR_REQUEST_TIMED_OUT), KC_ACT_RETRY);
    assert_int_equal(kc_retry_action(KP_ERR_NOT_ENOUGH_REPLICAS), KC_ACT_RETRY);
    assert_int_equal(kc_retry_action(KP_ERR_MESSAGE_TOO_LARGE), KC_ACT_FAIL);
    assert_int_equal(kc_retry_action(KP_ERR_CORRUPT_MESSAGE), KC_ACT_RETRY); /* Kafka: retriable */
    assert_int_equal(kc_retry_action(KP_ERR_INVALID_REQUIRED_ACKS), KC_ACT_FAIL);
}

static void test_kc_accum_cuts_batches_at_size(void **state)
{
    (void)state;
    kc_accum_t acc;
    kc_accum_init(&acc, KP_COMPRESSION_NONE, 1000);
    kc_ready_batch_t *rb = NULL;
    int nrb = 0, cuts = 0;
    char val[64];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(val, sizeof val, "value number %d of many", i);
        bool full;
        int idx;
        int32_t part = i % 2;
        assert_int_equal(kc_accum_add(&acc, "t", part, 1000 + i, (kp_bytes_t){NULL, -1},
                                      (kp_bytes_t){(const uint8_t *)val, n}, NULL, 0, &full, &idx),
                         0);
        assert_int_equal(acc.open[idx].partition, part);
        if (full) {
            cuts++;
            assert_int_equal(kc_accum_drain(&acc, idx, &rb, &nrb), 0);
        }
    }
    assert_true(cuts >= 6); /* ~30 bytes a record, 100 per partition, cut at 1000 */
    assert_int_equal(kc_accum_drain(&acc, -1, &rb, &nrb), 0);
    assert_int_equal(kc_accum_drain(&acc, -1, &rb, &nrb), 0); /* nothing left: no new batch */
    int total = 0;
    int64_t next_ts[2] = {1000, 1001};
    for (int i = 0; i < nrb; i++) {
        kp_batch_hdr_t h;
        assert_int_equal(kp_batch_validate(rb[i].bytes, rb[i].len, &h), 0);
        assert_int_equal(h.records_count, rb[i].nrecords);
        assert_true(rb[i].len <= 1000 + 100 + KP_BATCH_HEADER_SIZE);
        /* Per partition, records come out in the order they went in. */
        assert_true(h.base_timestamp == next_ts[rb[i].partition]);
        next_ts[rb[i].partition] = h.max_timestamp + 2;
        total += h.records_count;
    }
    assert_int_equal(total, 200);
    kc_ready_free(rb, nrb);
    kc_accum_deinit(&acc);
}

static kc_client_t *client_for(mock_broker_t *mb, int retries)
{
    char boot[64];
    snprintf(boot, sizeof boot, "127.0.0.1:%d", mb->port);
    kc_config_t cfg = {
        .bootstrap = boot, .timeout_ms = 5000, .retries = retries, .retry_backoff_ms = 1};
    kc_client_t *c = kc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(kc_client_connect(c), 0);
    return c;
}

static int produce_n(kc_client_t *c, int n, kc_producer_stats_t *st)
{
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    kc_producer_t *p = kc_producer_new(c, &pc);
    char key[32], val[32];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof key, "k%d", i), vl = snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(kc_producer_send(p, "t", -1, (kp_bytes_t){(const uint8_t *)key, kl},
                                          (kp_bytes_t){(const uint8_t *)val, vl}, NULL, 0, -1),
                         0);
    }
    int rc = kc_producer_flush(p);
    kc_producer_stats(p, st);
    kc_producer_free(p);
    return rc;
}

static void test_kc_negotiation_picks_highest_common(void **state)
{
    (void)state;
    mock_broker_t mb = {.produce_max = 7, .fetch_max = 15, .metadata_max = 9};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 0);
    assert_int_equal(kc_client_api_version(c, KP_API_PRODUCE), 7);
    assert_int_equal(kc_client_api_version(c, KP_API_FETCH), 12); /* ours stops at 12 */
    assert_int_equal(kc_client_api_version(c, KP_API_METADATA), 9);
    assert_int_equal(kc_client_api_version(c, KP_API_LIST_OFFSETS), 5);
    assert_int_equal(kc_client_api_version(c, KP_API_DESCRIBE_GROUPS), -1); /* not advertised */
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_api_versions_falls_back_kip511(void **state)
{
    (void)state;
    mock_broker_t mb = {.api_versions_max = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 0);
    assert_int_equal(kc_client_api_version(c, KP_API_API_VERSIONS), 1);
    assert_int_equal(kc_client_api_version(c, KP_API_PRODUCE), 7);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.api_versions_calls, 2); /* v3 refused, then v1 */
    mb_free(&mb);
}

static void test_kc_produce_acks0_does_not_wait(void **state)
{
    (void)state;
    mock_broker_t mb = {0};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 0);
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    pc.acks = 0;
    kc_producer_t *p = kc_producer_new(c, &pc);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(kc_producer_send(p, "t", 0, (kp_bytes_t){NULL, -1},
                                          (kp_bytes_t){(const uint8_t *)"v", 1}, NULL, 0, -1),
                         0);
        assert_int_equal(kc_producer_flush(p), 0); /* would time out if it waited */
    }
    kc_producer_stats_t st;
    kc_producer_stats(p, &st);
    assert_int_equal(st.records_sent, 3);
    /* The connection stays in step: a request with an answer still works afterwards. */
    kc_metadata_t *md;
    assert_int_equal(kc_metadata_get(c, NULL, 0, false, &md), 0);
    kc_metadata_free(md);
    kc_producer_free(p);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.produce_requests, 3);
    mb_free(&mb);
}

static void test_kc_produce_retries_then_succeeds(void **state)
{
    (void)state;
    mock_broker_t mb = {
        .produce_errors = {KP_ERR_NOT_LEADER_OR_FOLLOWER, KP_ERR_REQUEST_TIMED_OUT, 0},
        .nproduce_errors = 3};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 5);
    kc_producer_stats_t st;
    assert_int_equal(produce_n(c, 10, &st), 0);
    assert_int_equal(st.records_sent, 10);
    assert_int_equal(st.records_failed, 0);
    assert_int_equal(st.retries, 2);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.produce_requests, 3);
    assert_int_equal(mb.produce_version, 7);
    /* A retry resends the very same batch bytes. */
    assert_int_equal(mb.nbatches, 3);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(mb.batch_len[i], mb.batch_len[0]);
        assert_memory_equal(mb.batches[i], mb.batches[0], mb.batch_len[0]);
    }
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(mb.batches[0], mb.batch_len[0], &h), 0);
    assert_int_equal(h.records_count, 10);
    mb_free(&mb);
}

static void test_kc_produce_gives_up_after_retries(void **state)
{
    (void)state;
    mock_broker_t mb = {.produce_errors = {KP_ERR_REQUEST_TIMED_OUT}, .nproduce_errors = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 2);
    kc_producer_stats_t st;
    assert_int_equal(produce_n(c, 4, &st), K_ERR_AGAIN);
    assert_int_equal(kc_client_kafka_error(c), KP_ERR_REQUEST_TIMED_OUT);
    assert_non_null(strstr(kc_client_errmsg(c), "REQUEST_TIMED_OUT"));
    assert_int_equal(st.records_failed, 4);
    assert_int_equal(st.records_sent, 0);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.produce_requests, 3); /* first try + 2 retries */
    mb_free(&mb);
}

static void test_kc_produce_fatal_error_not_retried(void **state)
{
    (void)state;
    mock_broker_t mb = {.produce_errors = {KP_ERR_MESSAGE_TOO_LARGE}, .nproduce_errors = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 5);
    kc_producer_stats_t st;
    assert_int_equal(produce_n(c, 3, &st), K_ERR_INVAL);
    assert_int_equal(kc_client_kafka_error(c), KP_ERR_MESSAGE_TOO_LARGE);
    assert_non_null(strstr(kc_client_errmsg(c), "MESSAGE_TOO_LARGE"));
    assert_int_equal(st.retries, 0);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.produce_requests, 1);
    mb_free(&mb);
}

static void test_kc_produce_survives_dropped_connection(void **state)
{
    (void)state;
    mock_broker_t mb = {.close_on_produce = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 3);
    kc_producer_stats_t st;
    assert_int_equal(produce_n(c, 5, &st), 0);
    assert_int_equal(st.records_sent, 5);
    assert_int_equal(st.retries, 1);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.produce_requests, 2);
    mb_free(&mb);
}

static void test_kc_produce_spreads_keys_and_cuts_batches(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 3};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 0);
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    pc.batch_bytes = 512;
    pc.codec = KP_COMPRESSION_LZ4;
    kc_producer_t *p = kc_producer_new(c, &pc);
    char key[32];
    static const uint8_t big[100];
    for (int i = 0; i < 300; i++) {
        int kl = snprintf(key, sizeof key, "key-%d", i);
        kp_record_header_t hdr = {{(const uint8_t *)"h", 1}, {NULL, -1}};
        assert_int_equal(kc_producer_send(p, "t", -1, (kp_bytes_t){(const uint8_t *)key, kl},
                                          (kp_bytes_t){big, 100}, &hdr, 1, 5),
                         0);
    }
    mb_stop(&mb); /* nothing more may be sent: check what went out while adding */
    int before = mb.produce_requests;
    assert_true(before >= 10); /* full batches were sent without waiting for a flush */
    /* Keys land where the Java partitioner puts them. */
    int counted = 0;
    for (int b = 0; b < mb.nbatches; b++) {
        kp_records_t it;
        kp_record_t rec;
        assert_int_equal(kp_records_init(&it, mb.batches[b], mb.batch_len[b], 1 << 20), 0);
        assert_int_equal(it.hdr.attributes & 7, KP_COMPRESSION_LZ4);
        while (kp_records_next(&it, &rec) == 1) {
            assert_int_equal(kc_partition_for_key(rec.key.ptr, (size_t)rec.key.len, 3),
                             mb.batch_partition[b]);
            assert_int_equal(rec.headers_count, 1);
            counted++;
        }
        kp_records_deinit(&it);
    }
    assert_true(counted > 0 && counted < 300);
    kc_producer_free(p); /* drops the unsent rest */
    kc_client_free(c);
    mb_free(&mb);
}

static void test_kc_unknown_topic_is_reported(void **state)
{
    (void)state;
    mock_broker_t mb = {0};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb, 1);
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    kc_producer_t *p = kc_producer_new(c, &pc);
    assert_int_equal(kc_producer_send(p, "nope", -1, (kp_bytes_t){NULL, -1},
                                      (kp_bytes_t){(const uint8_t *)"x", 1}, NULL, 0, -1),
                     K_ERR_NOENT);
    assert_int_equal(kc_client_kafka_error(c), KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_non_null(strstr(kc_client_errmsg(c), "UNKNOWN_TOPIC_OR_PARTITION"));
    kc_producer_free(p);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_connect_refused_is_an_io_error(void **state)
{
    (void)state;
    mock_broker_t mb = {0};
    mb_start(&mb);
    int port = mb.port;
    mb_stop(&mb); /* the port is closed now */
    char boot[64];
    snprintf(boot, sizeof boot, "bad-address,127.0.0.1:%d", port);
    kc_config_t cfg = {.bootstrap = boot, .timeout_ms = 1000};
    kc_client_t *c = kc_client_new(&cfg);
    assert_int_equal(kc_client_connect(c), K_ERR_IO);
    assert_non_null(strstr(kc_client_errmsg(c), "cannot connect"));
    kc_client_free(c);
    mb_free(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kc_partition_for_key_matches_java),
        cmocka_unit_test(test_kc_retry_action_classes),
        cmocka_unit_test(test_kc_accum_cuts_batches_at_size),
        cmocka_unit_test(test_kc_negotiation_picks_highest_common),
        cmocka_unit_test(test_kc_api_versions_falls_back_kip511),
        cmocka_unit_test(test_kc_produce_acks0_does_not_wait),
        cmocka_unit_test(test_kc_produce_retries_then_succeeds),
        cmocka_unit_test(test_kc_produce_gives_up_after_retries),
        cmocka_unit_test(test_kc_produce_fatal_error_not_retried),
        cmocka_unit_test(test_kc_produce_survives_dropped_connection),
        cmocka_unit_test(test_kc_produce_spreads_keys_and_cuts_batches),
        cmocka_unit_test(test_kc_unknown_topic_is_reported),
        cmocka_unit_test(test_kc_connect_refused_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

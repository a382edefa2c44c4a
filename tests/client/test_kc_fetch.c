/*
 * Client consuming and admin against the scripted broker (mock_broker.h): list offsets, the
 * group-less consumer over several partitions (compressed batches, a fetch cut inside a batch,
 * starting inside a batch, starting at the end), out-of-range errors, create/delete topics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "client/kc_int.h"
#include "protocol/kp_errors.h"
#include "tests/client/mock_broker.h"

static kc_client_t *client_for(mock_broker_t *mb)
{
    char boot[64];
    snprintf(boot, sizeof boot, "127.0.0.1:%d", mb->port);
    kc_config_t cfg = {.bootstrap = boot, .timeout_ms = 5000, .retries = 1, .retry_backoff_ms = 1};
    kc_client_t *c = kc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(kc_client_connect(c), 0);
    return c;
}

/* Produces records "v<i>" with keys "k<i>", i in [from, to). */
static void produce_range(kc_client_t *c, int from, int to, int codec, size_t batch_bytes)
{
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    pc.codec = codec;
    pc.batch_bytes = batch_bytes;
    kc_producer_t *p = kc_producer_new(c, &pc);
    char k[16], v[16];
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "k%d", i), vl = snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(kc_producer_send(p, "t", -1, (kp_bytes_t){(const uint8_t *)k, kl},
                                          (kp_bytes_t){(const uint8_t *)v, vl}, NULL, 0, -1),
                         0);
    }
    assert_int_equal(kc_producer_flush(p), 0);
    kc_producer_free(p);
}

/* Consumes until n messages arrived; checks per-partition order and key/value pairing. */
static void consume_expect(kc_consumer_t *cs, int n, int first, int32_t nparts)
{
    bool *seen = calloc((size_t)n, 1);
    int64_t last[16];
    for (int i = 0; i < 16; i++)
        last[i] = -1;
    for (int got = 0; got < n; got++) {
        kc_message_t m;
        assert_int_equal(kc_consumer_poll(cs, 3000, &m), 1);
        assert_true(m.offset > last[m.partition]);
        last[m.partition] = m.offset;
        int i;
        assert_int_equal(sscanf((const char *)m.value.ptr, "v%d", &i), 1);
        i -= first;
        assert_true(i >= 0 && i < n);
        assert_false(seen[i]);
        seen[i] = true;
        char k[16];
        int kl = snprintf(k, sizeof k, "k%d", i + first);
        assert_int_equal(m.key.len, kl);
        assert_memory_equal(m.key.ptr, k, (size_t)kl);
        assert_int_equal(kc_partition_for_key((const uint8_t *)k, (size_t)kl, nparts), m.partition);
    }
    kc_message_t m;
    assert_int_equal(kc_consumer_poll(cs, 100, &m), 0); /* nothing more */
    free(seen);
}

static void test_kc_consume_all_partitions_from_beginning(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 3};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    produce_range(c, 0, 120, KP_COMPRESSION_GZIP, 200);
    int64_t off;
    assert_int_equal(kc_list_offset(c, "t", 1, KC_OFFSET_BEGINNING, &off), 0);
    assert_true(off == 0);
    assert_int_equal(kc_list_offset(c, "t", 1, KC_OFFSET_END, &off), 0);
    assert_true(off > 0 && off < 120);
    kc_consumer_t *cs = kc_consumer_new(c, "t", NULL, 0, KC_OFFSET_BEGINNING);
    assert_non_null(cs);
    consume_expect(cs, 120, 0, 3);
    kc_consumer_free(cs);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_consume_survives_fetch_cut_inside_batch(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 2, .fetch_limit = 250};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    produce_range(c, 0, 60, KP_COMPRESSION_NONE, 100);
    kc_consumer_t *cs = kc_consumer_new(c, "t", NULL, 0, KC_OFFSET_BEGINNING);
    consume_expect(cs, 60, 0, 2);
    kc_consumer_free(cs);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_consume_from_offset_inside_compressed_batch(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    produce_range(c, 0, 10, KP_COMPRESSION_ZSTD, 1 << 20); /* one batch, offsets 0..9 */
    int32_t part = 0;
    kc_consumer_t *cs = kc_consumer_new(c, "t", &part, 1, 5);
    kc_message_t m;
    for (int i = 5; i < 10; i++) {
        assert_int_equal(kc_consumer_poll(cs, 3000, &m), 1);
        assert_true(m.offset == i);
        char v[16];
        int vl = snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(m.value.len, vl);
        assert_memory_equal(m.value.ptr, v, (size_t)vl);
    }
    assert_int_equal(kc_consumer_poll(cs, 100, &m), 0);
    kc_consumer_free(cs);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_consume_from_end_sees_only_new(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 2};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    produce_range(c, 0, 20, KP_COMPRESSION_SNAPPY, 1 << 20);
    kc_consumer_t *cs = kc_consumer_new(c, "t", NULL, 0, KC_OFFSET_END);
    kc_message_t m;
    assert_int_equal(kc_consumer_poll(cs, 100, &m), 0);
    produce_range(c, 100, 110, KP_COMPRESSION_SNAPPY, 1 << 20);
    consume_expect(cs, 10, 100, 2);
    kc_consumer_free(cs);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_consume_out_of_range_is_an_error(void **state)
{
    (void)state;
    mock_broker_t mb = {.npartitions = 1};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    int32_t part = 0;
    kc_consumer_t *cs = kc_consumer_new(c, "t", &part, 1, 1000);
    kc_message_t m;
    assert_int_equal(kc_consumer_poll(cs, 1000, &m), K_ERR_INVAL);
    assert_int_equal(kc_client_kafka_error(c), KP_ERR_OFFSET_OUT_OF_RANGE);
    assert_non_null(strstr(kc_client_errmsg(c), "OFFSET_OUT_OF_RANGE"));
    kc_consumer_free(cs);
    int64_t off;
    assert_int_equal(kc_list_offset(c, "t", 7, KC_OFFSET_END, &off), K_ERR_NOENT);
    kc_client_free(c);
    mb_stop(&mb);
    mb_free(&mb);
}

static void test_kc_admin_create_and_delete(void **state)
{
    (void)state;
    mock_broker_t mb = {0};
    mb_start(&mb);
    kc_client_t *c = client_for(&mb);
    kc_config_entry_t cfg[2] = {{"retention.ms", "1000"}, {"cleanup.policy", "delete"}};
    assert_int_equal(kc_create_topic(c, "fresh", 3, 1, cfg, 2), 0);
    assert_int_equal(kc_create_topic(c, "t", 1, 1, NULL, 0), K_ERR_EXISTS);
    assert_int_equal(kc_client_kafka_error(c), KP_ERR_TOPIC_ALREADY_EXISTS);
    assert_non_null(strstr(kc_client_errmsg(c), "TOPIC_ALREADY_EXISTS: Topic already exists."));
    assert_int_equal(kc_delete_topic(c, "t"), 0);
    assert_int_equal(kc_delete_topic(c, "ghost"), K_ERR_NOENT);
    assert_non_null(strstr(kc_client_errmsg(c), "UNKNOWN_TOPIC_OR_PARTITION"));
    kc_metadata_t *md;
    assert_int_equal(kc_metadata_get(c, NULL, 0, false, &md), 0);
    assert_int_equal(md->controller_id, 1);
    assert_string_equal(md->cluster_id, "mock");
    const kc_topic_md_t *t = kc_metadata_topic(md, "t");
    assert_non_null(t);
    assert_int_equal(t->npartitions, 1);
    assert_int_equal(t->partitions[0].leader, 1);
    kc_metadata_free(md);
    kc_client_free(c);
    mb_stop(&mb);
    assert_int_equal(mb.ncreated, 1);
    assert_string_equal(mb.created[0], "fresh:3:2");
    assert_int_equal(mb.deleted, 1);
    mb_free(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kc_consume_all_partitions_from_beginning),
        cmocka_unit_test(test_kc_consume_survives_fetch_cut_inside_batch),
        cmocka_unit_test(test_kc_consume_from_offset_inside_compressed_batch),
        cmocka_unit_test(test_kc_consume_from_end_sees_only_new),
        cmocka_unit_test(test_kc_consume_out_of_range_is_an_error),
        cmocka_unit_test(test_kc_admin_create_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

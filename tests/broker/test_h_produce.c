/* Produce validation -> Kafka error mapping, and appends against a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "h_test_util.h"
#include "protocol/kp_crc32c.h"

static kp_batch_hdr_t hdr;

static int16_t check(const kp_buf_t *b, int32_t max, int16_t version)
{
    return kb_produce_check_records(b->data, (int32_t)b->len, max, version, &hdr);
}

static void test_check_records_valid_batch(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 3, 1000, 10), 0);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_NONE);
    assert_int_equal(hdr.records_count, 3);
    kp_buf_deinit(&b);
}

static void test_check_records_null_or_empty_is_invalid_record(void **state)
{
    (void)state;
    assert_int_equal(kb_produce_check_records(NULL, -1, 1 << 20, 9, &hdr), KP_ERR_INVALID_RECORD);
    uint8_t one = 0;
    assert_int_equal(kb_produce_check_records(&one, 0, 1 << 20, 9, &hdr), KP_ERR_INVALID_RECORD);
}

static void test_check_records_crc_flip_is_corrupt(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    b.data[b.len - 1] ^= 0x40; /* inside the CRC-covered records */
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_CORRUPT_MESSAGE);
    kp_buf_deinit(&b);
}

static void test_check_records_truncated_is_corrupt(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    assert_int_equal(kb_produce_check_records(b.data, (int32_t)b.len - 5, 1 << 20, 9, &hdr),
                     KP_ERR_CORRUPT_MESSAGE);
    /* a batch followed by a torn second one */
    size_t one = b.len;
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    assert_int_equal(kb_produce_check_records(b.data, (int32_t)one + 20, 1 << 20, 9, &hdr),
                     KP_ERR_CORRUPT_MESSAGE);
    kp_buf_deinit(&b);
}

static void test_check_records_two_batches_is_invalid_record(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    kp_buf_deinit(&b);
}

static void test_check_records_legacy_magic_is_invalid_record(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    b.data[KP_BATCH_MAGIC_OFFSET] = 1;
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    b.data[KP_BATCH_MAGIC_OFFSET] = 7;
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_CORRUPT_MESSAGE);
    kp_buf_deinit(&b);
}

static void test_check_records_too_large(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 1, 1000, 2000), 0);
    assert_int_equal(check(&b, 1000, 9), KP_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(check(&b, (int32_t)b.len, 9), KP_ERR_NONE);
    kp_buf_deinit(&b);
}

static void test_check_records_nonzero_base_offset_and_control(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 1, 1000, 10), 0);
    kp_batch_set_base_offset(b.data, 42); /* outside the CRC: still a valid batch */
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    kp_batch_set_base_offset(b.data, 0);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_NONE);
    b.data[22] |= KP_BATCH_ATTR_CONTROL; /* attributes low byte; re-seal the CRC */
    kp_buf_patch_u32(&b, 17, kp_crc32c(0, b.data + 21, b.len - 21));
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    kp_buf_deinit(&b);
}

static void test_check_records_zstd_needs_v7(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_ZSTD, 5, 1000, 100), 0);
    assert_int_equal(check(&b, 1 << 20, 6), KP_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    assert_int_equal(check(&b, 1 << 20, 7), KP_ERR_NONE);
    kp_buf_deinit(&b);
}

static void test_produce_unknown_topic_without_auto_create(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    assert_int_equal(produce_n(&ts, "nope", 0, 1, 1000, NULL), KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_null(ks_topic_find(ts.store, "nope", 4));
    tstore_close(&ts);
}

static void test_produce_auto_create_assigns_offsets(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ts.cfg.auto_create_topics_enable = true;
    int64_t base = -7;
    assert_int_equal(produce_n(&ts, "auto", 1, 3, 1000, &base), KP_ERR_NONE);
    assert_int_equal(base, 0);
    ks_topic_t *t = ks_topic_find(ts.store, "auto", 4);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 2);
    assert_int_equal(produce_n(&ts, "auto", 1, 2, 1000, &base), KP_ERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(ks_part_log_end(ks_topic_part(t, 1)), 5);
    assert_int_equal(ks_part_log_end(ks_topic_part(t, 0)), 0);
    /* partition out of range, invalid names */
    assert_int_equal(produce_n(&ts, "auto", 2, 1, 1000, NULL), KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(produce_n(&ts, "bad/name", 0, 1, 1000, NULL), KP_ERR_INVALID_TOPIC_EXCEPTION);
    tstore_close(&ts);
}

static void test_produce_topic_max_message_bytes(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    assert_int_equal(ks_topic_config_set(&cfg, "max.message.bytes", "500"), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts.store, "small", 1, &cfg, &t), 0);
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 1, 1000, 600), 0);
    kb_produce_ctx_t c = tctx(&ts, 9);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    ks_part_t *p;
    int64_t next;
    assert_int_equal(
        kb_produce_partition(&c, kp_str("small"), 0, b.data, (int32_t)b.len, &out, &p, &next),
        KP_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(ks_part_log_end(ks_topic_part(t, 0)), 0);
    kp_buf_deinit(&b);
    tstore_close(&ts);
}

/* Compacted topics need a key on every record (KIP-467 record errors, nothing written). */
static void test_produce_compacted_needs_keys(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    assert_int_equal(ks_topic_config_set(&cfg, "cleanup.policy", "compact"), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts.store, "c", 1, &cfg, &t), 0);
    for (int codec = KP_COMPRESSION_NONE; codec <= KP_COMPRESSION_ZSTD; codec++) {
        kp_batch_builder_t bb;
        kp_batch_builder_init(&bb, codec);
        for (int i = 0; i < 5; i++) { /* records 1 and 3 have no key */
            kp_bytes_t key = {(const uint8_t *)"k", i % 2 ? -1 : 1}, val = {(const uint8_t *)"v", 1};
            if (i % 2)
                key.ptr = NULL;
            assert_int_equal(kp_batch_builder_add(&bb, 1000, key, val, NULL, 0), 0);
        }
        kp_buf_t b;
        kp_buf_init(&b);
        assert_int_equal(kp_batch_builder_finish(&bb, &b), 0);
        kp_batch_builder_deinit(&bb);
        uint8_t block[4096];
        kp_arena_t arena;
        kp_arena_init(&arena, block, sizeof block, 1 << 20);
        kb_produce_ctx_t c = tctx(&ts, 9);
        c.arena = &arena;
        kp_produce_resp_partition_produce_response_t out;
        kp_produce_resp_partition_produce_response_init(&out);
        ks_part_t *p = NULL;
        int64_t next;
        assert_int_equal(kb_produce_partition(&c, kp_str("c"), 0, b.data, (int32_t)b.len, &out,
                                              &p, &next),
                         KP_ERR_INVALID_RECORD);
        assert_int_equal(out.record_errors_count, 2);
        assert_int_equal(out.record_errors[0].batch_index, 1);
        assert_int_equal(out.record_errors[1].batch_index, 3);
        assert_non_null(strstr(out.error_message.ptr, "without key"));
        assert_int_equal(ks_part_log_end(ks_topic_part(t, 0)), 0);
        kp_arena_deinit(&arena);
        kp_buf_deinit(&b);
    }
    /* Keyed records go in. */
    assert_int_equal(ks_topic_set_config(t, "cleanup.policy", "delete"), 0);
    assert_int_equal(produce_n(&ts, "c", 0, 2, 1000, NULL), KP_ERR_NONE);
    tstore_close(&ts);
}

static void test_produce_rewrites_base_offset_in_place(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts.store, "t", 1, NULL, &t), 0);
    assert_int_equal(produce_n(&ts, "t", 0, 4, 1000, NULL), KP_ERR_NONE);
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 8), 0);
    kb_produce_ctx_t c = tctx(&ts, 9);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    ks_part_t *p = NULL;
    int64_t next = 0;
    assert_int_equal(
        kb_produce_partition(&c, kp_str("t"), 0, b.data, (int32_t)b.len, &out, &p, &next),
        KP_ERR_NONE);
    assert_int_equal(out.base_offset, 4);
    assert_int_equal(next, 6);
    assert_ptr_equal(p, ks_topic_part(t, 0));
    assert_int_equal(out.log_start_offset, 0);
    assert_int_equal(out.log_append_time_ms, -1);
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_hdr_parse(b.data, b.len, &h), 0);
    assert_int_equal(h.base_offset, 4);
    kp_buf_deinit(&b);
    tstore_close(&ts);
}

/* One idempotent batch through kb_produce_partition; returns the Kafka error code. */
static int16_t produce_idem(tstore_t *ts, int64_t pid, int16_t epoch, int32_t seq, int nrec,
                            int64_t *base, int64_t *next)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    bb.producer_id = pid;
    bb.producer_epoch = epoch;
    bb.base_sequence = seq;
    for (int i = 0; i < nrec; i++) {
        kp_bytes_t key = {NULL, -1}, val = {(const uint8_t *)"v", 1};
        assert_int_equal(kp_batch_builder_add(&bb, 1000, key, val, NULL, 0), 0);
    }
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kp_batch_builder_finish(&bb, &b), 0);
    kp_batch_builder_deinit(&bb);
    kb_produce_ctx_t c = tctx(ts, 9);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    ks_part_t *p = NULL;
    *next = -1;
    int16_t err =
        kb_produce_partition(&c, kp_str("idem"), 0, b.data, (int32_t)b.len, &out, &p, next);
    *base = out.base_offset;
    kp_buf_deinit(&b);
    return err;
}

/* Kafka's answers to idempotent producers: a retry gets NONE with the original offset (and
 * still an fsync wait up to the original's end), then 45, 47 and 87. */
static void test_produce_idempotent_answers(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts.store, "idem", 1, NULL, &t), 0);
    ks_part_t *part = ks_topic_part(t, 0);
    int64_t base, next;
    assert_int_equal(produce_idem(&ts, 5, 0, 0, 3, &base, &next), KP_ERR_NONE);
    assert_int_equal(base, 0);
    assert_int_equal(produce_idem(&ts, 5, 0, 3, 2, &base, &next), KP_ERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(produce_idem(&ts, 5, 0, 0, 3, &base, &next), KP_ERR_NONE); /* retry */
    assert_int_equal(base, 0);
    assert_int_equal(next, 3);
    assert_int_equal(ks_part_log_end(part), 5);
    assert_int_equal(produce_idem(&ts, 5, 0, 9, 1, &base, &next),
                     KP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(produce_idem(&ts, 5, 1, 0, 1, &base, &next), KP_ERR_NONE); /* new epoch */
    assert_int_equal(produce_idem(&ts, 5, 0, 5, 1, &base, &next), KP_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(produce_idem(&ts, 6, 0, -1, 1, &base, &next), KP_ERR_INVALID_RECORD);
    assert_int_equal(produce_idem(&ts, 7, 0, 500, 1, &base, &next), KP_ERR_NONE); /* unknown */
    assert_int_equal(ks_part_log_end(part), 7);
    tstore_close(&ts);
}

/* Big-endian field writes into a built batch, then the CRC again (it covers byte 21 on). */
static void patch32(kp_buf_t *b, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->data[at + (size_t)i] = (uint8_t)(v >> (24 - 8 * i));
}

static void patch64(kp_buf_t *b, size_t at, uint64_t v)
{
    patch32(b, at, (uint32_t)(v >> 32));
    patch32(b, at + 4, (uint32_t)v);
}

static void recrc(kp_buf_t *b)
{
    kp_buf_patch_u32(b, 17, kp_crc32c(0, b->data + 21, b->len - 21));
}

enum {
    AT_ATTR = 21,
    AT_LAST_DELTA = 23,
    AT_BASE_TS = 27,
    AT_MAX_TS = 35,
    AT_PID = 43,
    AT_EPOCH = 51,
    AT_SEQ = 53,
    AT_COUNT = 57
};

/* Issue 19: one small batch whose lastOffsetDelta claims ~2^31 records would advance the log
 * end by two billion offsets. Kafka's validateBatch refuses count/offset-range disagreement. */
static void test_check_records_header_count_rules(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 1, 1000, 10), 0);
    patch32(&b, AT_LAST_DELTA, 0x7ffffffe); /* claims 2^31-1 records, holds one */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    patch32(&b, AT_COUNT, 0x7fffffff); /* consistent header, but 2^31-1 records in ~80 bytes */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    patch32(&b, AT_LAST_DELTA, 0);
    patch32(&b, AT_COUNT, 0); /* no records */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    kp_buf_deinit(&b);

    /* compressed: a claim beyond the bytes is verified by counting the records */
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_LZ4, 2, 1000, 10), 0);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_NONE);
    patch32(&b, AT_LAST_DELTA, 1999999);
    patch32(&b, AT_COUNT, 2000000);
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    kp_buf_deinit(&b);
}

static void test_check_records_header_producer_and_timestamps(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, 1000, 10), 0);
    patch64(&b, AT_PID, 7); /* a producer id without a sequence */
    patch32(&b, AT_SEQ, 0xffffffff);
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    patch64(&b, AT_PID, (uint64_t)-5); /* ids and epochs below -1 */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    patch64(&b, AT_PID, (uint64_t)-1);
    b.data[AT_EPOCH] = 0xff;
    b.data[AT_EPOCH + 1] = 0xf0;
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_RECORD);
    b.data[AT_EPOCH + 1] = 0xff;
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_NONE);

    patch64(&b, AT_MAX_TS, 999); /* max below the first timestamp (1000) */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_TIMESTAMP);
    patch64(&b, AT_MAX_TS, (uint64_t)-7);
    patch64(&b, AT_BASE_TS, (uint64_t)-7);
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_TIMESTAMP);
    patch64(&b, AT_MAX_TS, 1001);
    patch64(&b, AT_BASE_TS, 1000);
    b.data[AT_ATTR + 1] |= KP_BATCH_ATTR_LOG_APPEND_TIME; /* a producer may not claim it */
    recrc(&b);
    assert_int_equal(check(&b, 1 << 20, 9), KP_ERR_INVALID_TIMESTAMP);
    kp_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_records_valid_batch),
        cmocka_unit_test(test_check_records_header_count_rules),
        cmocka_unit_test(test_check_records_header_producer_and_timestamps),
        cmocka_unit_test(test_check_records_null_or_empty_is_invalid_record),
        cmocka_unit_test(test_check_records_crc_flip_is_corrupt),
        cmocka_unit_test(test_check_records_truncated_is_corrupt),
        cmocka_unit_test(test_check_records_two_batches_is_invalid_record),
        cmocka_unit_test(test_check_records_legacy_magic_is_invalid_record),
        cmocka_unit_test(test_check_records_too_large),
        cmocka_unit_test(test_check_records_nonzero_base_offset_and_control),
        cmocka_unit_test(test_check_records_zstd_needs_v7),
        cmocka_unit_test(test_produce_unknown_topic_without_auto_create),
        cmocka_unit_test(test_produce_auto_create_assigns_offsets),
        cmocka_unit_test(test_produce_topic_max_message_bytes),
        cmocka_unit_test(test_produce_rewrites_base_offset_in_place),
        cmocka_unit_test(test_produce_compacted_needs_keys),
        cmocka_unit_test(test_produce_idempotent_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

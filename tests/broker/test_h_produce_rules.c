/* Per-topic produce rules (h_produce_rules.c): min.insync.replicas, timestamp bounds and
 * broker-side recompression, against a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "h_test_util.h"

#define NOW 1700000000000LL

typedef struct {
    tstore_t ts;
    ks_topic_t *t;
    uint8_t block[8192];
    kp_arena_t arena;
    kp_produce_resp_partition_produce_response_t out;
} fx_t;

static void fx_open(fx_t *f, const char *key, const char *value)
{
    assert_int_equal(tstore_open(&f->ts), 0);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    if (key)
        assert_int_equal(ks_topic_config_set(&cfg, key, value), 0);
    assert_int_equal(ks_topic_create(f->ts.store, "t", 1, &cfg, &f->t), 0);
    kp_arena_init(&f->arena, f->block, sizeof f->block, 1 << 22);
}

static void fx_close(fx_t *f)
{
    kp_arena_deinit(&f->arena);
    tstore_close(&f->ts);
}

/* Produces b with the given acks; fills f->out. */
static int16_t produce(fx_t *f, kp_buf_t *b, int16_t acks)
{
    kb_produce_ctx_t c = tctx(&f->ts, 9);
    c.arena = &f->arena;
    c.acks = acks;
    c.now_ms = NOW;
    kp_produce_resp_partition_produce_response_init(&f->out);
    ks_part_t *p = NULL;
    int64_t next;
    return kb_produce_partition(&c, kp_str("t"), 0, b->data, (int32_t)b->len, &f->out, &p,
                                &next);
}

/* A batch whose records carry the given timestamps (deltas may be negative). */
static void batch_with_ts(kp_buf_t *b, int codec, const int64_t *ts, int n)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, codec);
    for (int i = 0; i < n; i++) {
        kp_bytes_t key = {(const uint8_t *)"k", 1}, val = {(const uint8_t *)"value", 5};
        assert_int_equal(kp_batch_builder_add(&bb, ts[i], key, val, NULL, 0), 0);
    }
    kp_buf_init(b);
    assert_int_equal(kp_batch_builder_finish(&bb, b), 0);
    kp_batch_builder_deinit(&bb);
}

static void test_min_insync_replicas_fails_acks_all_only(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "min.insync.replicas", "2");
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, NOW, 8), 0);
    assert_int_equal(produce(&f, &b, -1), KP_ERR_NOT_ENOUGH_REPLICAS);
    assert_non_null(strstr(f.out.error_message.ptr, "min.isr requirement of 2"));
    assert_int_equal(ks_part_log_end(ks_topic_part(f.t, 0)), 0);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_NONE); /* acks=1 is not held to it */
    assert_int_equal(ks_part_log_end(ks_topic_part(f.t, 0)), 2);
    assert_int_equal(ks_topic_set_config(f.t, "min.insync.replicas", "1"), 0);
    kp_buf_deinit(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_NONE, 2, NOW, 8), 0);
    assert_int_equal(produce(&f, &b, -1), KP_ERR_NONE);
    kp_buf_deinit(&b);
    fx_close(&f);
}

static void test_timestamp_after_bound_names_each_record(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "message.timestamp.after.max.ms", "60000");
    for (int codec = KP_COMPRESSION_NONE; codec <= KP_COMPRESSION_ZSTD; codec++) {
        int64_t ts[4] = {NOW, NOW + 61000, NOW + 60000, NOW + 3600000};
        kp_buf_t b;
        batch_with_ts(&b, codec, ts, 4);
        assert_int_equal(produce(&f, &b, 1), KP_ERR_INVALID_TIMESTAMP);
        assert_int_equal(f.out.record_errors_count, 2);
        assert_int_equal(f.out.record_errors[0].batch_index, 1);
        assert_int_equal(f.out.record_errors[1].batch_index, 3);
        assert_non_null(strstr(f.out.record_errors[0].batch_index_error_message.ptr,
                               "is out of range"));
        assert_int_equal(ks_part_log_end(ks_topic_part(f.t, 0)), 0);
        kp_buf_deinit(&b);
    }
    int64_t ok[2] = {NOW - 86400000LL * 365, NOW + 60000}; /* before is unlimited */
    kp_buf_t b;
    batch_with_ts(&b, KP_COMPRESSION_NONE, ok, 2);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_NONE);
    kp_buf_deinit(&b);
    fx_close(&f);
}

/* The smallest timestamp is not in the header: an out-of-order record is still found. */
static void test_timestamp_before_bound_walks_records(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "message.timestamp.before.max.ms", "1000");
    int64_t ts[3] = {NOW, NOW - 5000, NOW + 10};
    kp_buf_t b;
    batch_with_ts(&b, KP_COMPRESSION_LZ4, ts, 3);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_INVALID_TIMESTAMP);
    assert_int_equal(f.out.record_errors_count, 1);
    assert_int_equal(f.out.record_errors[0].batch_index, 1);
    kp_buf_deinit(&b);
    /* LogAppendTime topics do not look at the producer's timestamps. */
    assert_int_equal(ks_topic_set_config(f.t, "message.timestamp.type", "LogAppendTime"), 0);
    batch_with_ts(&b, KP_COMPRESSION_LZ4, ts, 3);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_NONE);
    kp_buf_deinit(&b);
    fx_close(&f);
}

/* Reads partition t-0 back from offset 0 and checks codec and record values. */
static void check_stored(fx_t *f, int want_codec, int n)
{
    ks_part_t *p = ks_topic_part(f->t, 0);
    kp_buf_t rb;
    kp_buf_init(&rb);
    assert_int_equal(ks_part_read(p, 0, 1 << 20, true, &rb), 0);
    assert_true(rb.len > 0);
    const uint8_t *buf = rb.data;
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(buf, rb.len, &h), 0);
    assert_int_equal(h.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, want_codec);
    assert_int_equal(h.records_count, n);
    kp_records_t it;
    assert_int_equal(kp_records_init(&it, buf, rb.len, 1 << 20), 0);
    kp_record_t rec;
    int i = 0;
    while (kp_records_next(&it, &rec) == 1) {
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        assert_memory_equal(rec.value.ptr, want, strlen(want));
        i++;
    }
    kp_records_deinit(&it);
    assert_int_equal(i, n);
    kp_buf_deinit(&rb);
}

static void test_compression_type_recompresses(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int from, to;
    } cases[] = {
        {"zstd", KP_COMPRESSION_NONE, KP_COMPRESSION_ZSTD},
        {"gzip", KP_COMPRESSION_SNAPPY, KP_COMPRESSION_GZIP},
        {"uncompressed", KP_COMPRESSION_LZ4, KP_COMPRESSION_NONE},
        {"lz4", KP_COMPRESSION_GZIP, KP_COMPRESSION_LZ4},
        {"snappy", KP_COMPRESSION_ZSTD, KP_COMPRESSION_SNAPPY},
        {"producer", KP_COMPRESSION_GZIP, KP_COMPRESSION_GZIP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t f;
        fx_open(&f, "compression.type", cases[i].type);
        kp_buf_t b;
        kp_buf_init(&b);
        assert_int_equal(make_batch(&b, cases[i].from, 20, NOW, 100), 0);
        assert_int_equal(produce(&f, &b, 1), KP_ERR_NONE);
        check_stored(&f, cases[i].to, 20);
        kp_buf_deinit(&b);
        fx_close(&f);
    }
}

/* Idempotent producer fields survive the rewrite: a retry is still a duplicate. */
static void test_recompression_keeps_producer_fields(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "compression.type", "gzip");
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    bb.producer_id = 9;
    bb.producer_epoch = 0;
    bb.base_sequence = 0;
    for (int i = 0; i < 3; i++) {
        kp_bytes_t key = {NULL, -1}, val = {(const uint8_t *)"v", 1};
        assert_int_equal(kp_batch_builder_add(&bb, NOW, key, val, NULL, 0), 0);
    }
    kp_buf_t b, copy;
    kp_buf_init(&b);
    kp_buf_init(&copy);
    assert_int_equal(kp_batch_builder_finish(&bb, &b), 0);
    kp_batch_builder_deinit(&bb);
    kp_put_raw(&copy, b.data, b.len);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_NONE);
    assert_int_equal(produce(&f, &copy, 1), KP_ERR_NONE); /* retry: the original offsets */
    assert_int_equal(f.out.base_offset, 0);
    assert_int_equal(ks_part_log_end(ks_topic_part(f.t, 0)), 3);
    kp_buf_deinit(&b);
    kp_buf_deinit(&copy);
    fx_close(&f);
}

/* What compresses under max.message.bytes may not fit once rewritten uncompressed. */
static void test_recompression_too_large(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, "compression.type", "uncompressed");
    assert_int_equal(ks_topic_set_config(f.t, "max.message.bytes", "2000"), 0);
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_ZSTD, 50, NOW, 200), 0);
    assert_true(b.len < 2000);
    assert_int_equal(produce(&f, &b, 1), KP_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(ks_part_log_end(ks_topic_part(f.t, 0)), 0);
    kp_buf_deinit(&b);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_insync_replicas_fails_acks_all_only),
        cmocka_unit_test(test_timestamp_after_bound_names_each_record),
        cmocka_unit_test(test_timestamp_before_bound_walks_records),
        cmocka_unit_test(test_compression_type_recompresses),
        cmocka_unit_test(test_recompression_keeps_producer_fields),
        cmocka_unit_test(test_recompression_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * RecordBatch v2: builder -> validate -> iterate round trips for every codec, corruption and
 * truncation at every byte, in-place rewrites, bounded decompression, and golden batches from
 * kafka-python (fixtures/make_batches.py; set KP_BATCH_DUMP_DIR to write our batches for its
 * --verify mode).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <snappy-c.h>

#include "protocol/kp_batch.h"
#include "protocol/kp_crc32c.h"
#include "tests/protocol/fixtures/kafka_python_batches.h"

#define MAX_OUT (64u << 20)
static const int codecs[] = {KP_COMPRESSION_NONE, KP_COMPRESSION_GZIP, KP_COMPRESSION_SNAPPY,
                             KP_COMPRESSION_LZ4, KP_COMPRESSION_ZSTD};
#define NCODECS (sizeof codecs / sizeof codecs[0])

/* The record rule shared with make_batches.py. */
typedef struct {
    int64_t ts;
    kp_bytes_t key, value;
    kp_record_header_t h[2];
    int32_t nh;
    char kbuf[32], vbuf[128], hbuf[16];
} golden_t;

static void golden_record(int i, golden_t *g)
{
    g->ts = 1700000000000LL + 7 * i;
    g->key = (kp_bytes_t){NULL, -1};
    if (i % 3 != 0) {
        int n = snprintf(g->kbuf, sizeof g->kbuf, "key-%d", i);
        g->key = (kp_bytes_t){(const uint8_t *)g->kbuf, n};
    }
    g->value = (kp_bytes_t){NULL, -1};
    if (i % 7 != 6) {
        int n = 0;
        for (int k = 0; k < i % 5 + 1; k++)
            n += snprintf(g->vbuf + n, sizeof g->vbuf - (size_t)n, "value-%d-", i);
        g->value = (kp_bytes_t){(const uint8_t *)g->vbuf, n};
    }
    g->nh = 0;
    if (i % 2) {
        int n = snprintf(g->hbuf, sizeof g->hbuf, "%d", i);
        g->h[0] = (kp_record_header_t){{(const uint8_t *)"h1", 2}, {(const uint8_t *)g->hbuf, n}};
        g->h[1] = (kp_record_header_t){{(const uint8_t *)"h2", 2}, {NULL, -1}};
        g->nh = 2;
    }
}

static void assert_bytes_eq(kp_bytes_t a, kp_bytes_t b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0) assert_memory_equal(a.ptr, b.ptr, (size_t)a.len);
}

/* Checks that a batch holds exactly n golden records. */
static void check_golden_batch(const uint8_t *p, size_t len, int n)
{
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(p, len, &h), 0);
    assert_int_equal(h.records_count, n);
    assert_int_equal(h.last_offset_delta, n - 1);
    assert_true(h.base_timestamp == 1700000000000LL);
    assert_true(h.max_timestamp == 1700000000000LL + 7 * (n - 1));
    kp_records_t it;
    assert_int_equal(kp_records_init(&it, p, len, MAX_OUT), 0);
    kp_record_t rec;
    for (int i = 0; i < n; i++) {
        golden_t g;
        golden_record(i, &g);
        assert_int_equal(kp_records_next(&it, &rec), 1);
        assert_int_equal(rec.offset_delta, i);
        assert_true(h.base_timestamp + rec.timestamp_delta == g.ts);
        assert_bytes_eq(rec.key, g.key);
        assert_bytes_eq(rec.value, g.value);
        assert_int_equal(rec.headers_count, g.nh);
        kp_reader_t hr;
        kp_reader_init(&hr, rec.headers, rec.headers_len);
        kp_record_header_t rh;
        for (int k = 0; k < g.nh; k++) {
            assert_int_equal(kp_record_header_next(&hr, &rh), 1);
            assert_bytes_eq(rh.key, g.h[k].key);
            assert_bytes_eq(rh.value, g.h[k].value);
        }
        assert_int_equal(kp_record_header_next(&hr, &rh), 0);
    }
    assert_int_equal(kp_records_next(&it, &rec), 0);
    kp_records_deinit(&it);
}

static void build_golden(int codec, int n, kp_buf_t *out)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, codec);
    for (int i = 0; i < n; i++) {
        golden_t g;
        golden_record(i, &g);
        assert_int_equal(kp_batch_builder_add(&bb, g.ts, g.key, g.value, g.h, g.nh), 0);
    }
    assert_int_equal(kp_batch_builder_finish(&bb, out), 0);
    kp_batch_builder_deinit(&bb);
}

/* ---- independent encoder ---------------------------------------------------------------- */

static void test_batch_kafka_python_golden_parses(void **state)
{
    (void)state;
    check_golden_batch(kpy_none_1, sizeof kpy_none_1, kpy_none_1_records);
    check_golden_batch(kpy_none_50, sizeof kpy_none_50, kpy_none_50_records);
    check_golden_batch(kpy_gzip_50, sizeof kpy_gzip_50, kpy_gzip_50_records);
    check_golden_batch(kpy_none_txn, sizeof kpy_none_txn, kpy_none_txn_records);
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(kpy_gzip_50, sizeof kpy_gzip_50, &h), 0);
    assert_int_equal(h.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, KP_COMPRESSION_GZIP);
    assert_int_equal(h.crc, kp_crc32c_sw(0, kpy_gzip_50 + 21, sizeof kpy_gzip_50 - 21));
    assert_int_equal(kp_batch_validate(kpy_none_txn, sizeof kpy_none_txn, &h), 0);
    assert_true(h.attributes & KP_BATCH_ATTR_TRANSACTIONAL);
    assert_true(h.producer_id == 4242);
    assert_int_equal(h.producer_epoch, 3);
    assert_int_equal(h.base_sequence, 17);
}

/* Uncompressed output is deterministic, so ours must equal kafka-python's byte for byte once
 * the one field it fills differently (partitionLeaderEpoch 0 vs our -1) is aligned. */
static void expect_same_as_kafka_python(const uint8_t *want, size_t want_len, int n, bool txn)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    if (txn) {
        bb.attributes |= KP_BATCH_ATTR_TRANSACTIONAL;
        bb.producer_id = 4242;
        bb.producer_epoch = 3;
        bb.base_sequence = 17;
    }
    for (int i = 0; i < n; i++) {
        golden_t g;
        golden_record(i, &g);
        assert_int_equal(kp_batch_builder_add(&bb, g.ts, g.key, g.value, g.h, g.nh), 0);
    }
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kp_batch_builder_finish(&bb, &out), 0);
    kp_batch_set_leader_epoch(out.data, 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    kp_buf_deinit(&out);
    kp_batch_builder_deinit(&bb);
}

static void test_batch_builder_matches_kafka_python_bytes(void **state)
{
    (void)state;
    expect_same_as_kafka_python(kpy_none_1, sizeof kpy_none_1, kpy_none_1_records, false);
    expect_same_as_kafka_python(kpy_none_50, sizeof kpy_none_50, kpy_none_50_records, false);
    expect_same_as_kafka_python(kpy_none_txn, sizeof kpy_none_txn, kpy_none_txn_records, true);
}

/* With KP_BATCH_DUMP_DIR set, writes our batches for `make_batches.py --verify`. */
static void test_batch_dump_for_kafka_python(void **state)
{
    (void)state;
    const char *dir = getenv("KP_BATCH_DUMP_DIR");
    if (!dir) skip();
    for (size_t c = 0; c < NCODECS; c++) {
        kp_buf_t out;
        kp_buf_init(&out);
        build_golden(codecs[c], 60, &out);
        char path[512];
        snprintf(path, sizeof path, "%s/depot_codec%d.bin", dir, codecs[c]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(out.data, 1, out.len, f), out.len);
        fclose(f);
        kp_buf_deinit(&out);
    }
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_batch_roundtrip_every_codec(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCODECS; c++) {
        for (int n = 1; n <= 500; n = n * 3 + 1) {
            kp_buf_t out;
            kp_buf_init(&out);
            kp_put_raw(&out, "xyz", 3); /* finish appends: keep what was there */
            build_golden(codecs[c], n, &out);
            assert_memory_equal(out.data, "xyz", 3);
            kp_batch_hdr_t h;
            assert_int_equal(kp_batch_validate(out.data + 3, out.len - 3, &h), 0);
            assert_int_equal(h.attributes, codecs[c]);
            assert_true(h.base_offset == 0);
            assert_true(h.producer_id == -1);
            assert_int_equal(h.producer_epoch, -1);
            assert_int_equal(h.base_sequence, -1);
            check_golden_batch(out.data + 3, out.len - 3, n);
            kp_buf_deinit(&out);
        }
    }
}

static void test_batch_roundtrip_large_values(void **state)
{
    (void)state;
    size_t big = 300 * 1024; /* spans several snappy/lz4 blocks */
    uint8_t *v = malloc(big);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = (uint8_t)((i * 7) ^ (i >> 9));
    for (size_t c = 0; c < NCODECS; c++) {
        kp_batch_builder_t bb;
        kp_batch_builder_init(&bb, codecs[c]);
        for (int i = 0; i < 3; i++)
            assert_int_equal(kp_batch_builder_add(&bb, 5 - i, (kp_bytes_t){NULL, -1},
                                                  (kp_bytes_t){v, (int32_t)big}, NULL, 0),
                             0);
        kp_buf_t out;
        kp_buf_init(&out);
        assert_int_equal(kp_batch_builder_finish(&bb, &out), 0);
        kp_batch_hdr_t h;
        assert_int_equal(kp_batch_validate(out.data, out.len, &h), 0);
        assert_true(h.base_timestamp == 5 && h.max_timestamp == 5);
        kp_records_t it;
        assert_int_equal(kp_records_init(&it, out.data, out.len, MAX_OUT), 0);
        kp_record_t rec;
        for (int i = 0; i < 3; i++) {
            assert_int_equal(kp_records_next(&it, &rec), 1);
            assert_true(rec.timestamp_delta == -i);
            assert_int_equal(rec.key.len, -1);
            assert_int_equal(rec.value.len, (int32_t)big);
            assert_memory_equal(rec.value.ptr, v, big);
        }
        assert_int_equal(kp_records_next(&it, &rec), 0);
        kp_records_deinit(&it);
        /* The same batch with too small a decompression budget is refused, not truncated. */
        if (codecs[c] != KP_COMPRESSION_NONE)
            assert_int_equal(kp_records_init(&it, out.data, out.len, big), K_ERR_TOOLARGE);
        kp_records_deinit(&it);
        kp_buf_deinit(&out);
        kp_batch_builder_deinit(&bb);
    }
    free(v);
}

static void test_batch_builder_rejects_bad_input(void **state)
{
    (void)state;
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kp_batch_builder_finish(&bb, &out), K_ERR_INVAL);
    kp_record_header_t nullkey = {{NULL, -1}, {(const uint8_t *)"v", 1}};
    assert_int_equal(
        kp_batch_builder_add(&bb, 1, (kp_bytes_t){NULL, -1}, (kp_bytes_t){NULL, -1}, &nullkey, 1),
        K_ERR_INVAL);
    assert_int_equal(
        kp_batch_builder_add(&bb, 1, (kp_bytes_t){NULL, -1}, (kp_bytes_t){NULL, -1}, NULL, 1),
        K_ERR_INVAL);
    assert_int_equal(bb.count, 0);
    /* A builder is reusable: a second batch starts from offset delta 0 again. */
    assert_int_equal(
        kp_batch_builder_add(&bb, 10, (kp_bytes_t){NULL, -1}, (kp_bytes_t){NULL, -1}, NULL, 0), 0);
    assert_int_equal(kp_batch_builder_finish(&bb, &out), 0);
    size_t first = out.len;
    assert_int_equal(kp_batch_builder_add(&bb, 20, (kp_bytes_t){NULL, -1},
                                          (kp_bytes_t){(const uint8_t *)"", 0}, NULL, 0),
                     0);
    assert_int_equal(kp_batch_builder_finish(&bb, &out), 0);
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(out.data + first, out.len - first, &h), 0);
    assert_int_equal(h.records_count, 1);
    assert_true(h.base_timestamp == 20);
    kp_records_t it;
    kp_record_t rec;
    assert_int_equal(kp_records_init(&it, out.data + first, out.len - first, 0), 0);
    assert_int_equal(kp_records_next(&it, &rec), 1);
    assert_int_equal(rec.offset_delta, 0);
    assert_int_equal(rec.value.len, 0); /* empty, not null */
    kp_records_deinit(&it);
    kp_buf_deinit(&out);
    kp_batch_builder_deinit(&bb);
}

/* ---- corruption and truncation ------------------------------------------------------------ */

static void corrupt_every_byte(int codec)
{
    kp_buf_t out;
    kp_buf_init(&out);
    build_golden(codec, 12, &out);
    uint8_t *p = out.data;
    size_t len = out.len;
    assert_int_equal(kp_batch_validate(p, len, NULL), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            p[i] ^= (uint8_t)(1u << bit);
            int rc = kp_batch_validate(p, len, NULL);
            if (i < 8 || (i >= 12 && i < 16))
                assert_int_equal(rc, 0); /* baseOffset, leader epoch: outside the CRC */
            else
                assert_true(rc == K_ERR_CORRUPT || rc == K_ERR_UNSUPPORTED);
            /* Whatever validate says, iterating the bytes must stay in bounds. */
            kp_records_t it;
            kp_record_t rec;
            if (kp_records_init(&it, p, len, 1 << 16) == 0)
                while (kp_records_next(&it, &rec) == 1)
                    ;
            kp_records_deinit(&it);
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(kp_batch_validate(p, len, NULL), 0);
    kp_buf_deinit(&out);
}

static void test_batch_validate_catches_every_corruption(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCODECS; c++)
        corrupt_every_byte(codecs[c]);
}

static void test_batch_truncation_at_every_byte(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCODECS; c++) {
        kp_buf_t out;
        kp_buf_init(&out);
        build_golden(codecs[c], 20, &out);
        for (size_t k = 0; k < out.len; k++) {
            /* A fresh heap copy of exactly k bytes, so ASan sees any read past it. */
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, out.data, k);
            assert_true(kp_batch_validate(t, k, NULL) < 0);
            kp_batch_hdr_t h;
            if (k < KP_BATCH_HEADER_SIZE)
                assert_int_equal(kp_batch_hdr_parse(t, k, &h), K_ERR_MALFORMED);
            kp_records_t it;
            assert_true(kp_records_init(&it, t, k, MAX_OUT) < 0);
            kp_records_deinit(&it);
            kp_batch_iter_t bi;
            const uint8_t *b;
            size_t blen;
            kp_batch_iter_init(&bi, t, k, true);
            assert_true(k == 0 ? kp_batch_iter_next(&bi, &b, &blen) == 0
                               : kp_batch_iter_next(&bi, &b, &blen) < 0);
            kp_batch_iter_init(&bi, t, k, false);
            assert_int_equal(kp_batch_iter_next(&bi, &b, &blen), 0);
            free(t);
        }
        kp_buf_deinit(&out);
    }
}

/* Records region cut short while the header claims it all (batchLength patched to match). */
static void test_batch_records_shorter_than_count(void **state)
{
    (void)state;
    kp_buf_t out;
    kp_buf_init(&out);
    build_golden(KP_COMPRESSION_NONE, 5, &out);
    size_t len = out.len - 3;
    kp_buf_patch_i32(&out, 8, (int32_t)(len - 12));
    kp_records_t it;
    kp_record_t rec;
    assert_int_equal(kp_records_init(&it, out.data, len, 0), 0);
    int rc;
    int n = 0;
    while ((rc = kp_records_next(&it, &rec)) == 1)
        n++;
    assert_int_equal(rc, K_ERR_MALFORMED);
    assert_int_equal(n, 4);
    kp_records_deinit(&it);
    kp_buf_deinit(&out);
}

/* recordsCount one lower than the records present (CRC recomputed): the extra is refused. */
static void test_batch_records_more_than_count(void **state)
{
    (void)state;
    kp_buf_t out;
    kp_buf_init(&out);
    build_golden(KP_COMPRESSION_GZIP, 5, &out);
    kp_buf_patch_i32(&out, 57, 4);
    kp_buf_patch_u32(&out, 17, kp_crc32c(0, out.data + 21, out.len - 21));
    assert_int_equal(kp_batch_validate(out.data, out.len, NULL), 0); /* framing is fine */
    kp_records_t it;
    kp_record_t rec;
    assert_int_equal(kp_records_init(&it, out.data, out.len, MAX_OUT), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(kp_records_next(&it, &rec), 1);
    assert_int_equal(kp_records_next(&it, &rec), K_ERR_MALFORMED);
    kp_records_deinit(&it);
    kp_buf_deinit(&out);
}

static void test_batch_magic_checks(void **state)
{
    (void)state;
    uint8_t b[KP_BATCH_HEADER_SIZE];
    memset(b, 0, sizeof b);
    kp_batch_hdr_t h;
    b[KP_BATCH_MAGIC_OFFSET] = 0;
    assert_int_equal(kp_batch_hdr_parse(b, sizeof b, &h), K_ERR_UNSUPPORTED);
    b[KP_BATCH_MAGIC_OFFSET] = 1;
    assert_int_equal(kp_batch_hdr_parse(b, sizeof b, &h), K_ERR_UNSUPPORTED);
    assert_int_equal(kp_batch_validate(b, sizeof b, &h), K_ERR_UNSUPPORTED);
    assert_int_equal(kp_batch_hdr_parse(b, 20, &h), K_ERR_UNSUPPORTED); /* short legacy set */
    b[KP_BATCH_MAGIC_OFFSET] = 3;
    assert_int_equal(kp_batch_hdr_parse(b, sizeof b, &h), K_ERR_CORRUPT);
}

static void test_batch_negative_counts_are_corrupt(void **state)
{
    (void)state;
    for (int field = 0; field < 2; field++) {
        kp_buf_t out;
        kp_buf_init(&out);
        build_golden(KP_COMPRESSION_NONE, 3, &out);
        kp_buf_patch_i32(&out, field ? 57 : 23, -1);
        kp_buf_patch_u32(&out, 17, kp_crc32c(0, out.data + 21, out.len - 21));
        assert_int_equal(kp_batch_validate(out.data, out.len, NULL), K_ERR_CORRUPT);
        kp_buf_deinit(&out);
    }
}

/* ---- in-place rewrites and the batch walk ------------------------------------------------- */

static void test_batch_rewrite_keeps_crc(void **state)
{
    (void)state;
    kp_buf_t out;
    kp_buf_init(&out);
    build_golden(KP_COMPRESSION_LZ4, 10, &out);
    uint32_t crc_before;
    kp_batch_hdr_t h;
    assert_int_equal(kp_batch_validate(out.data, out.len, &h), 0);
    crc_before = h.crc;
    kp_batch_set_base_offset(out.data, 0x0102030405060708LL);
    kp_batch_set_leader_epoch(out.data, 77);
    assert_int_equal(kp_batch_validate(out.data, out.len, &h), 0);
    assert_true(h.base_offset == 0x0102030405060708LL);
    assert_int_equal(h.partition_leader_epoch, 77);
    assert_int_equal(h.crc, crc_before);

    kp_batch_set_log_append_time(out.data, out.len, 1800000000000LL);
    assert_int_equal(kp_batch_validate(out.data, out.len, &h), 0);
    assert_true(h.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME);
    assert_int_equal(h.attributes & KP_BATCH_ATTR_COMPRESSION_MASK, KP_COMPRESSION_LZ4);
    assert_true(h.max_timestamp == 1800000000000LL);
    assert_true(h.crc != crc_before);
    kp_records_t it;
    kp_record_t rec;
    assert_int_equal(kp_records_init(&it, out.data, out.len, MAX_OUT), 0);
    int n = 0;
    while (kp_records_next(&it, &rec) == 1)
        n++;
    assert_int_equal(n, 10);
    kp_records_deinit(&it);
    kp_buf_deinit(&out);
}

static void test_batch_iter_walks_concatenation(void **state)
{
    (void)state;
    kp_buf_t out;
    kp_buf_init(&out);
    for (int n = 1; n <= 3; n++)
        build_golden(codecs[n], n, &out);
    size_t full = out.len;
    kp_put_raw(&out, out.data, 30); /* a partial fourth batch, as a fetch may return */
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen, total = 0;
    kp_batch_iter_init(&it, out.data, out.len, false);
    for (int n = 1; n <= 3; n++) {
        assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 1);
        assert_ptr_equal(b, out.data + total);
        check_golden_batch(b, blen, n);
        total += blen;
    }
    assert_int_equal(total, full);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 0);
    kp_batch_iter_init(&it, out.data, out.len, true);
    for (int n = 1; n <= 3; n++)
        assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 1);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), K_ERR_MALFORMED);
    /* A batchLength below the header size is corrupt, not partial. */
    kp_buf_patch_i32(&out, 8, 10);
    kp_batch_iter_init(&it, out.data, out.len, false);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), K_ERR_CORRUPT);
    assert_true(kp_batch_size(out.data, out.len) == K_ERR_CORRUPT);
    assert_true(kp_batch_size(out.data, 11) == K_ERR_MALFORMED);
    kp_buf_deinit(&out);
}

/* ---- codecs ------------------------------------------------------------------------------ */

static void test_compress_zip_bomb_is_bounded(void **state)
{
    (void)state;
    size_t n = 8u << 20;
    uint8_t *zeros = calloc(1, n);
    assert_non_null(zeros);
    for (size_t c = 0; c < NCODECS; c++) {
        kp_buf_t z, d;
        kp_buf_init(&z);
        kp_buf_init(&d);
        assert_int_equal(kp_compress(codecs[c], zeros, n, &z), 0);
        assert_int_equal(kp_decompress(codecs[c], z.data, z.len, 1 << 20, &d), K_ERR_TOOLARGE);
        assert_int_equal(d.len, 0);
        assert_true(d.cap <= (2u << 20) + 65536);
        assert_int_equal(kp_decompress(codecs[c], z.data, z.len, n, &d), 0);
        assert_int_equal(d.len, n);
        assert_memory_equal(d.data, zeros, n);
        kp_buf_deinit(&z);
        kp_buf_deinit(&d);
    }
    free(zeros);
}

static void test_compress_snappy_raw_and_xerial(void **state)
{
    (void)state;
    const char *msg = "raw snappy as librdkafka may write it, raw snappy as librdkafka may";
    size_t len = strlen(msg);
    char raw[256];
    size_t raw_len = sizeof raw;
    assert_int_equal(snappy_compress(msg, len, raw, &raw_len), SNAPPY_OK);
    kp_buf_t d;
    kp_buf_init(&d);
    assert_int_equal(kp_decompress(KP_COMPRESSION_SNAPPY, (const uint8_t *)raw, raw_len, 1024, &d),
                     0);
    assert_int_equal(d.len, len);
    assert_memory_equal(d.data, msg, len);

    kp_buf_t x;
    kp_buf_init(&x);
    assert_int_equal(kp_compress(KP_COMPRESSION_SNAPPY, (const uint8_t *)msg, len, &x), 0);
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_memory_equal(x.data, hdr, 16);
    kp_reader_t r;
    kp_reader_init(&r, x.data + 16, x.len - 16);
    assert_int_equal(kp_read_i32(&r), (int32_t)(x.len - 20)); /* one chunk */
    /* A chunk length running past the end is malformed. */
    kp_buf_patch_i32(&x, 16, (int32_t)(x.len));
    kp_buf_reset(&d);
    assert_int_equal(kp_decompress(KP_COMPRESSION_SNAPPY, x.data, x.len, 1024, &d),
                     K_ERR_MALFORMED);
    kp_buf_deinit(&x);
    kp_buf_deinit(&d);
}

static void test_compress_garbage_and_truncation(void **state)
{
    (void)state;
    uint8_t text[4000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("abcdefgh"[i % 8] + (i % 61 == 0));
    for (size_t c = 1; c < NCODECS; c++) {
        kp_buf_t z, d;
        kp_buf_init(&z);
        kp_buf_init(&d);
        assert_int_equal(kp_compress(codecs[c], text, sizeof text, &z), 0);
        for (size_t k = 0; k < z.len; k++) {
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, z.data, k);
            kp_buf_reset(&d);
            int rc = kp_decompress(codecs[c], t, k, sizeof text, &d);
            /* Snappy's xerial chunks may end cleanly at a chunk boundary (only at 16 here). */
            if (!(codecs[c] == KP_COMPRESSION_SNAPPY && k == 16)) assert_true(rc < 0);
            free(t);
        }
        uint8_t junk[64];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(i * 37 + 11);
        kp_buf_reset(&d);
        assert_true(kp_decompress(codecs[c], junk, sizeof junk, 1 << 20, &d) < 0);
        assert_int_equal(d.len, 0);
        kp_buf_deinit(&z);
        kp_buf_deinit(&d);
    }
    kp_buf_t d;
    kp_buf_init(&d);
    assert_int_equal(kp_decompress(7, text, 10, 100, &d), K_ERR_UNSUPPORTED);
    assert_int_equal(kp_compress(5, text, 10, &d), K_ERR_UNSUPPORTED);
    kp_buf_deinit(&d);
}

/* Found by fuzz_batch: empty output into a fresh (NULL) buffer, for every codec. */
static void test_compress_empty_payload_fresh_buffer(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCODECS; c++) {
        kp_buf_t z, d;
        kp_buf_init(&z);
        kp_buf_init(&d);
        assert_int_equal(kp_compress(codecs[c], (const uint8_t *)"", 0, &z), 0);
        assert_int_equal(kp_decompress(codecs[c], z.data, z.len, 0, &d), 0);
        assert_int_equal(d.len, 0);
        kp_buf_deinit(&z);
        kp_buf_deinit(&d);
    }
    kp_buf_t d;
    kp_buf_init(&d);
    assert_int_equal(kp_decompress(KP_COMPRESSION_SNAPPY, (const uint8_t *)"", 1, 0, &d), 0);
    assert_int_equal(d.len, 0);
    kp_buf_deinit(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_kafka_python_golden_parses),
        cmocka_unit_test(test_batch_builder_matches_kafka_python_bytes),
        cmocka_unit_test(test_batch_dump_for_kafka_python),
        cmocka_unit_test(test_batch_roundtrip_every_codec),
        cmocka_unit_test(test_batch_roundtrip_large_values),
        cmocka_unit_test(test_batch_builder_rejects_bad_input),
        cmocka_unit_test(test_batch_validate_catches_every_corruption),
        cmocka_unit_test(test_batch_truncation_at_every_byte),
        cmocka_unit_test(test_batch_records_shorter_than_count),
        cmocka_unit_test(test_batch_records_more_than_count),
        cmocka_unit_test(test_batch_magic_checks),
        cmocka_unit_test(test_batch_negative_counts_are_corrupt),
        cmocka_unit_test(test_batch_rewrite_keeps_crc),
        cmocka_unit_test(test_batch_iter_walks_concatenation),
        cmocka_unit_test(test_compress_zip_bomb_is_bounded),
        cmocka_unit_test(test_compress_snappy_raw_and_xerial),
        cmocka_unit_test(test_compress_garbage_and_truncation),
        cmocka_unit_test(test_compress_empty_payload_fresh_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

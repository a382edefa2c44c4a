/* Storage: zero-copy read slices (storage/read.c) and the per-partition read cache. */
#include "tests/storage/ks_test.h"

/* Reads a slice's bytes back from its descriptor (and closes it). */
static uint8_t *slice_bytes(ks_slice_t *sl)
{
    uint8_t *b = malloc(sl->len ? sl->len : 1);
    assert_non_null(b);
    if (sl->len) {
        assert_true(sl->fd >= 0);
        assert_int_equal(pread(sl->fd, b, sl->len, sl->pos), (ssize_t)sl->len);
        close(sl->fd);
    } else {
        assert_int_equal(sl->fd, -1);
    }
    sl->fd = -1;
    return b;
}

/* The slice is whole valid batches, the first holding offset, ending at next_offset. */
static void check_slice(ks_slice_t *sl, int64_t offset, size_t max, bool min_one)
{
    uint8_t *b = slice_bytes(sl);
    kp_batch_iter_t it;
    const uint8_t *p;
    size_t blen;
    int n = 0, rc;
    int64_t expect = -1;
    kp_batch_iter_init(&it, b, sl->len, true);
    while ((rc = kp_batch_iter_next(&it, &p, &blen)) == 1) {
        kp_batch_hdr_t h;
        assert_int_equal(kp_batch_validate(p, blen, &h), 0);
        if (n == 0) {
            assert_true(h.base_offset <= offset);
            assert_true(h.base_offset + h.last_offset_delta >= offset);
            assert_true(h.base_offset == sl->first_offset);
        } else {
            assert_true(h.base_offset == expect);
        }
        expect = h.base_offset + h.last_offset_delta + 1;
        n++;
    }
    assert_int_equal(rc, 0);
    if (n > 0)
        assert_true(sl->next_offset >= expect);
    if (n > 1 || !min_one)
        assert_true(sl->len <= max);
    free(b);
}

static void run_sequential(int32_t interval, int64_t seg_bytes, size_t max)
{
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.index_interval_bytes = interval;
    c.segment_bytes = seg_bytes;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 400; i++)
        t_append(p, 1 + i % 5, 1000 + i, 20 + (size_t)(i % 11) * 37);
    int64_t end = ks_part_log_end(p);
    /* Every start offset gives a correct slice. */
    for (int64_t off = 0; off < end; off += 7) {
        ks_slice_t sl;
        assert_int_equal(ks_part_read_slice(p, off, max, true, &sl), 0);
        assert_true(sl.len > 0);
        check_slice(&sl, off, max, true);
    }
    /* A sequential consumer covers the log exactly, mostly from the cache. */
    ks_stats_t st0, st1;
    ks_store_stats(e.s, &st0);
    int64_t off = 0, reads = 0;
    while (off < end) {
        ks_slice_t sl;
        assert_int_equal(ks_part_read_slice(p, off, max, true, &sl), 0);
        assert_true(sl.len > 0);
        check_slice(&sl, off, max, true);
        assert_true(sl.next_offset > off);
        off = sl.next_offset;
        reads++;
    }
    assert_true(off == end);
    ks_store_stats(e.s, &st1);
    int64_t hits = st1.read_cache_hits - st0.read_cache_hits;
    int64_t misses = st1.read_cache_misses - st0.read_cache_misses;
    assert_true(hits + misses == reads);
    if (seg_bytes >= (1 << 20))
        assert_true(misses == 1); /* one segment: only the first read searches */
    ks_slice_t sl;
    assert_int_equal(ks_part_read_slice(p, end, max, true, &sl), 0); /* at the end: empty */
    assert_true(sl.len == 0 && sl.fd == -1);
    t_env_deinit(&e);
}

static void test_read_slice_sequential_interval_0(void **state)
{
    (void)state;
    run_sequential(0, 1 << 20, 3000);
}

static void test_read_slice_sequential_default_interval(void **state)
{
    (void)state;
    run_sequential(4096, 1 << 30, 10000);
}

static void test_read_slice_sequential_small_segments(void **state)
{
    (void)state;
    run_sequential(100, 4000, 1500);
}

static void test_read_slice_sequential_max_smaller_than_batches(void **state)
{
    (void)state;
    run_sequential(4096, 1 << 30, 100); /* each answer is the one whole first batch */
}

/* min_one off and a first batch bigger than max: nothing. */
static void test_read_slice_min_one_off(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    t_append(p, 3, 1000, 500);
    ks_slice_t sl;
    assert_int_equal(ks_part_read_slice(p, 0, 100, false, &sl), 0);
    assert_true(sl.len == 0 && sl.fd == -1);
    assert_int_equal(ks_part_read_slice(p, 0, 100, true, &sl), 0);
    assert_true(sl.len > 100);
    check_slice(&sl, 0, 100, true);
    assert_int_equal(ks_part_read_slice(p, 99, 100, true, &sl), K_ERR_RANGE);
    t_env_deinit(&e);
}

/* A tailing consumer: the cache follows appends, so reading at the end never searches. */
static void test_read_cache_tailing(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    int64_t off = 0;
    ks_stats_t st0, st1;
    for (int i = 0; i < 50; i++) {
        t_append(p, 2, 1000 + i, 100);
        if (i == 1)
            ks_store_stats(e.s, &st0);
        ks_slice_t sl;
        assert_int_equal(ks_part_read_slice(p, off, 1 << 20, true, &sl), 0);
        check_slice(&sl, off, 1 << 20, true);
        assert_true(sl.next_offset == ks_part_log_end(p));
        off = sl.next_offset;
    }
    ks_store_stats(e.s, &st1);
    assert_true(st1.read_cache_misses == st0.read_cache_misses);
    assert_true(st1.read_cache_hits - st0.read_cache_hits == 49);
    t_env_deinit(&e);
}

/* The cache never answers from a segment that went away (DeleteRecords, retention). */
static void test_read_cache_invalidated_by_delete_records(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 2000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 60; i++)
        t_append(p, 2, 1000 + i, 100);
    ks_slice_t sl;
    assert_int_equal(ks_part_read_slice(p, 0, 300, true, &sl), 0);
    int64_t next = sl.next_offset;
    check_slice(&sl, 0, 300, true);
    assert_int_equal(ks_part_delete_records(p, 40), 0);
    assert_int_equal(ks_part_read_slice(p, next, 300, true, &sl), K_ERR_RANGE);
    int64_t start = ks_part_log_start(p);
    assert_int_equal(ks_part_read_slice(p, start, 300, true, &sl), 0);
    check_slice(&sl, start, 300, true);
    t_env_deinit(&e);
}

/* A slice's descriptor keeps its bytes readable after the topic is deleted. */
static void test_read_slice_survives_topic_delete(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "gone", 1, NULL);
    for (int i = 0; i < 20; i++)
        t_append(p, 3, 1000 + i, 200);
    ks_slice_t sl;
    assert_int_equal(ks_part_read_slice(p, 5, 1 << 20, true, &sl), 0);
    assert_int_equal(ks_topic_delete(e.s, "gone"), 0);
    check_slice(&sl, 5, 1 << 20, true); /* reads through the dup'ed fd */
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_slice_sequential_interval_0),
        cmocka_unit_test(test_read_slice_sequential_default_interval),
        cmocka_unit_test(test_read_slice_sequential_small_segments),
        cmocka_unit_test(test_read_slice_sequential_max_smaller_than_batches),
        cmocka_unit_test(test_read_slice_min_one_off),
        cmocka_unit_test(test_read_cache_tailing),
        cmocka_unit_test(test_read_cache_invalidated_by_delete_records),
        cmocka_unit_test(test_read_slice_survives_topic_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Storage: offset index and time index lookups, and rebuilding missing/corrupt indexes. */
#include "tests/storage/ks_test.h"

/* Every offset reads back as exactly the batch that holds it. */
static void check_every_offset(ks_part_t *p, const int64_t *bases, int nb, int64_t end)
{
    int b = 0;
    for (int64_t off = ks_part_log_start(p); off < end; off++) {
        while (b + 1 < nb && bases[b + 1] <= off)
            b++;
        int64_t first;
        assert_int_equal(t_read_check(p, off, 1, true, &first), 1);
        assert_true(first == bases[b]);
    }
}

static void run_boundaries(int32_t interval, int64_t seg_bytes)
{
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.index_interval_bytes = interval;
    c.segment_bytes = seg_bytes;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t bases[300];
    int nb = 0;
    for (int i = 0; i < 300; i++)
        bases[nb++] = t_append(p, 1 + i % 4, 1000 + i, 5 + (size_t)(i % 9) * 13);
    int64_t end = ks_part_log_end(p);
    check_every_offset(p, bases, nb, end);
    t_env_reopen(&e);
    p = t_part(&e, "t", 0);
    assert_true(ks_part_log_end(p) == end);
    check_every_offset(p, bases, nb, end);
    t_env_deinit(&e);
}

static void test_index_every_offset_interval_0(void **state)
{
    (void)state;
    run_boundaries(0, 1 << 20);
}

static void test_index_every_offset_interval_100_small_segments(void **state)
{
    (void)state;
    run_boundaries(100, 2000);
}

static void test_index_every_offset_default_interval(void **state)
{
    (void)state;
    run_boundaries(4096, 1 << 30);
}

/* Timestamps go up and down; the answer is the first batch whose max timestamp >= ts. */
static void test_time_index_lookups(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.index_interval_bytes = 150;
    c.segment_bytes = 3000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    enum { N = 200 };
    int64_t bases[N], ts[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 10000 + i * 10 + (i % 7 == 3 ? -25 : 0);
        bases[i] = t_append(p, 2, ts[i], 30);
    }
    for (int round = 0; round < 2; round++) {
        for (int64_t q = 9990; q <= 10000 + N * 10 + 5; q += 3) {
            int want = -1;
            for (int i = 0; i < N && want < 0; i++)
                if (ts[i] >= q)
                    want = i;
            int64_t off, fts;
            int rc = ks_part_offset_for_time(p, q, &off, &fts);
            if (want < 0) {
                assert_int_equal(rc, K_ERR_NOENT);
            } else {
                assert_int_equal(rc, 0);
                assert_true(off == bases[want]);
                assert_true(fts == ts[want]);
            }
        }
        int64_t off, mts;
        assert_int_equal(ks_part_max_timestamp(p, &off, &mts), 0);
        int mi = 0;
        for (int i = 1; i < N; i++)
            if (ts[i] > ts[mi])
                mi = i;
        assert_true(mts == ts[mi]);
        assert_true(off == bases[mi] + 1);
        t_env_reopen(&e);
        p = t_part(&e, "t", 0);
    }
    t_env_deinit(&e);
}

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
    int64_t n = t_file_size(path);
    assert_true(n >= 0);
    *buf = malloc((size_t)n + 1);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, *buf, (size_t)n) == n);
    close(fd);
    *len = (size_t)n;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_true(write(fd, buf, len) == (ssize_t)len);
    close(fd);
}

static void damage_and_check(int how)
{
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.index_interval_bytes = 100;
    c.segment_bytes = 4000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t bases[120];
    for (int i = 0; i < 120; i++)
        bases[i] = t_append(p, 3, 5000 + i, 40);
    int64_t end = ks_part_log_end(p);
    t_env_close(&e);
    const char *names[] = {"00000000000000000000.index", "00000000000000000000.timeindex"};
    char path[2][4096];
    uint8_t *orig[2];
    size_t olen[2];
    for (int k = 0; k < 2; k++) {
        snprintf(path[k], sizeof path[k], "%s/t-0/%s", e.dir, names[k]);
        read_file(path[k], &orig[k], &olen[k]);
        assert_true(olen[k] > 24);
        if (how == 0) {
            unlink(path[k]);
        } else if (how == 1) {
            write_file(path[k], orig[k], olen[k] - 3); /* partial entry */
        } else {
            uint8_t *g = malloc(olen[k]); /* whole entries, nonsense values */
            for (size_t i = 0; i < olen[k]; i++)
                g[i] = (uint8_t)(i * 7 + 1);
            memcpy(g + olen[k] - 12, orig[k] + olen[k] - 12, 12); /* last entry plausible */
            write_file(path[k], g, olen[k]);
            free(g);
        }
    }
    t_env_open(&e);
    p = t_part(&e, "t", 0);
    assert_true(ks_part_log_end(p) == end);
    check_every_offset(p, bases, 120, end);
    int64_t off, fts;
    assert_int_equal(ks_part_offset_for_time(p, 5050, &off, &fts), 0);
    assert_true(off == bases[50]);
    for (int k = 0; k < 2; k++) {
        uint8_t *now;
        size_t nlen;
        read_file(path[k], &now, &nlen);
        assert_int_equal(nlen, olen[k]);
        assert_memory_equal(now, orig[k], nlen);
        free(now);
        free(orig[k]);
    }
    t_env_deinit(&e);
}

static void test_index_missing_rebuilt(void **state)
{
    (void)state;
    damage_and_check(0);
}

static void test_index_torn_rebuilt(void **state)
{
    (void)state;
    damage_and_check(1);
}

static void test_index_garbage_rebuilt(void **state)
{
    (void)state;
    damage_and_check(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_every_offset_interval_0),
        cmocka_unit_test(test_index_every_offset_interval_100_small_segments),
        cmocka_unit_test(test_index_every_offset_default_interval),
        cmocka_unit_test(test_time_index_lookups),
        cmocka_unit_test(test_index_missing_rebuilt),
        cmocka_unit_test(test_index_torn_rebuilt),
        cmocka_unit_test(test_index_garbage_rebuilt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Storage: clean restarts keep everything; unclean restarts cut torn or corrupt tails. */
#include "tests/storage/ks_test.h"

static void test_clean_restart_preserves_everything(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    char cid[23];
    snprintf(cid, sizeof cid, "%s", ks_store_cluster_id(e.s));
    ks_topic_config_t c = e.o.defaults;
    c.retention_ms = 123456;
    c.segment_bytes = 2000;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "alpha.1", 4, &c, &t), 0);
    kp_uuid_t id = ks_topic_id(t);
    assert_int_equal(ks_topic_create(e.s, "beta", 1, NULL, NULL), 0);
    ks_part_t *p = ks_topic_part(t, 2);
    for (int i = 0; i < 100; i++)
        t_append(p, 2, 1000 + i, 50);
    assert_int_equal(ks_part_delete_records(p, 57), 0);
    assert_true(ks_part_log_start(p) == 57);
    int64_t size = ks_part_size_bytes(p);
    t_log_warns = t_log_errors = 0;
    t_env_reopen(&e);
    assert_int_equal(t_log_warns + t_log_errors, 0);
    assert_string_equal(ks_store_cluster_id(e.s), cid);
    t = ks_topic_find(e.s, "alpha.1", 7);
    assert_non_null(t);
    assert_memory_equal(ks_topic_id(t).b, id.b, 16);
    assert_ptr_equal(ks_topic_find_by_id(e.s, id), t);
    assert_int_equal(ks_topic_partitions(t), 4);
    assert_true(ks_topic_config(t)->retention_ms == 123456);
    assert_true(ks_topic_config(t)->segment_bytes == 2000);
    assert_true(ks_topic_config(t)->retention_bytes == -1);
    assert_non_null(ks_topic_find(e.s, "beta", 4));
    p = ks_topic_part(t, 2);
    assert_true(ks_part_log_start(p) == 57);
    assert_true(ks_part_log_end(p) == 200);
    assert_true(ks_part_durable_end(p) == 200);
    assert_true(ks_part_size_bytes(p) >= size);
    int64_t first;
    t_read_check(p, 57, 1, true, &first);
    assert_true(first == 56);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, 55, 100, true, &out), K_ERR_RANGE);
    kp_buf_deinit(&out);
    assert_true(t_append(p, 1, 5000, 10) == 200);
    assert_true(ks_part_log_end(ks_topic_part(t, 0)) == 0);
    /* A changed default applies to topics that did not override it. */
    t_env_close(&e);
    e.o.defaults.retention_bytes = 999999;
    e.o.defaults.retention_ms = 5;
    t_env_open(&e);
    t = ks_topic_find(e.s, "alpha.1", 7);
    assert_true(ks_topic_config(t)->retention_bytes == 999999);
    assert_true(ks_topic_config(t)->retention_ms == 123456);
    /* node.id is part of the dir's identity. */
    t_env_close(&e);
    e.o.node_id = 7;
    ks_store_t *s2;
    assert_int_equal(ks_store_open(&e.o, &s2), K_ERR_INVAL);
    e.o.node_id = 1;
    t_env_deinit(&e);
}

typedef struct {
    t_env_t e;
    int64_t bases[64];
    int nb;
    int64_t last_pos; /* position of the last batch in the active segment */
    char log[4096];
    uint8_t *bytes;
    size_t len;
} fixture_t;

/* A partition with two closed segments and an active one, everything fsynced. */
static void fixture_make(fixture_t *f)
{
    t_env_init(&f->e);
    t_env_open(&f->e);
    ks_topic_config_t c = f->e.o.defaults;
    c.segment_bytes = 1500;
    c.index_interval_bytes = 200;
    ks_part_t *p = t_topic(&f->e, "t", 1, &c);
    f->nb = 0;
    for (int i = 0; i < 40; i++)
        f->bases[f->nb++] = t_append(p, 2 + i % 3, 7000 + i, 60);
    f->bases[f->nb++] = t_append(p, 1, 7100, 1); /* a small last batch: fewer rounds below */
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w), 0);
    t_wait_syncs(f->e.s, &w, 1);
    assert_int_equal(w.status, 0);
    t_env_close(&f->e);
    /* The active segment is the newest .log file. */
    DIR *d;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/t-0", f->e.dir);
    d = opendir(dir);
    int64_t newest = -1;
    for (struct dirent *de; (de = readdir(d));) {
        if (t_is_log(de->d_name) && atoll(de->d_name) > newest)
            newest = atoll(de->d_name);
    }
    closedir(d);
    assert_true(newest > 0);
    snprintf(f->log, sizeof f->log, "%s/%020lld.log", dir, (long long)newest);
    int fd = open(f->log, O_RDONLY);
    f->len = (size_t)t_file_size(f->log);
    f->bytes = malloc(f->len);
    assert_true(read(fd, f->bytes, f->len) == (ssize_t)f->len);
    close(fd);
    size_t pos = 0, last = 0;
    while (pos < f->len) {
        last = pos;
        pos += (size_t)kp_batch_size(f->bytes + pos, f->len - pos);
    }
    assert_int_equal(pos, f->len);
    f->last_pos = (int64_t)last;
}

static void put_log(fixture_t *f, const uint8_t *bytes, size_t len)
{
    int fd = open(f->log, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_true(write(fd, bytes, len) == (ssize_t)len);
    close(fd);
}

/* Opens unclean, checks that exactly the batches before the last survive and are served,
 * and that appends continue at the right offset. */
static void check_recovered(fixture_t *f)
{
    t_env_unclean(&f->e);
    t_env_open(&f->e);
    ks_part_t *p = t_part(&f->e, "t", 0);
    int64_t want_end = f->bases[f->nb - 1];
    assert_true(ks_part_log_end(p) == want_end);
    int64_t off = 0;
    int b = 0;
    while (off < want_end) {
        int64_t first;
        t_read_check(p, off, 1, true, &first);
        assert_true(first == f->bases[b]);
        off = f->bases[++b];
    }
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, want_end, 1 << 20, true, &out), 0);
    assert_int_equal(out.len, 0);
    kp_buf_deinit(&out);
    assert_true(t_append(p, 1, 9999, 5) == want_end);
    t_env_close(&f->e);
    /* Back to the undamaged bytes; the next round opens unclean, so the active segment and
     * its indexes are recovered from them again. */
    put_log(f, f->bytes, f->len);
}

static void test_recovery_tail_truncated_at_every_byte(void **state)
{
    (void)state;
    fixture_t f;
    fixture_make(&f);
    for (size_t cut = (size_t)f.last_pos; cut < f.len; cut++) {
        put_log(&f, f.bytes, cut);
        check_recovered(&f);
    }
    free(f.bytes);
    t_env_deinit(&f.e);
}

static void test_recovery_random_flips_in_last_batch(void **state)
{
    (void)state;
    fixture_t f;
    fixture_make(&f);
    srand(12345);
    uint8_t *dam = malloc(f.len);
    size_t blen = f.len - (size_t)f.last_pos;
    for (size_t i = 0; i < blen; i++) {
        memcpy(dam, f.bytes, f.len);
        /* Every byte of the last batch once, with a random non-zero flip. */
        dam[(size_t)f.last_pos + i] ^= (uint8_t)(1 + rand() % 255);
        put_log(&f, dam, f.len);
        check_recovered(&f);
    }
    free(dam);
    free(f.bytes);
    t_env_deinit(&f.e);
}

/* Garbage appended after the last batch (a torn write of a batch that never completed). */
static void test_recovery_trailing_garbage(void **state)
{
    (void)state;
    fixture_t f;
    fixture_make(&f);
    t_env_unclean(&f.e);
    uint8_t *more = malloc(f.len + 100);
    memcpy(more, f.bytes, f.len);
    memset(more + f.len, 0, 100);
    put_log(&f, more, f.len + 100);
    t_env_open(&f.e);
    ks_part_t *p = t_part(&f.e, "t", 0);
    int64_t last = f.bases[f.nb - 1];
    int64_t first;
    t_read_check(p, last, 1, true, &first);
    assert_true(first == last);
    assert_true(t_file_size(f.log) == (int64_t)f.len);
    free(more);
    free(f.bytes);
    t_env_deinit(&f.e);
}

/* The clean marker is there but the data is not: open still never serves a torn batch. */
static void test_clean_marker_with_torn_tail(void **state)
{
    (void)state;
    fixture_t f;
    fixture_make(&f);
    put_log(&f, f.bytes, f.len - 5);
    t_env_open(&f.e);
    ks_part_t *p = t_part(&f.e, "t", 0);
    assert_true(ks_part_log_end(p) == f.bases[f.nb - 1]);
    free(f.bytes);
    t_env_deinit(&f.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_restart_preserves_everything),
        cmocka_unit_test(test_recovery_tail_truncated_at_every_byte),
        cmocka_unit_test(test_recovery_random_flips_in_last_batch),
        cmocka_unit_test(test_recovery_trailing_garbage),
        cmocka_unit_test(test_clean_marker_with_torn_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

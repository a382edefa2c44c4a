/* Storage: retention by time and bytes, the box budget (both policies), DeleteRecords,
 * time-based rolls. */
#include "tests/storage/ks_test.h"

static int count_segments(t_env_t *e, const char *pdir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", e->dir, pdir);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += t_is_log(de->d_name);
    closedir(d);
    return n;
}

static void test_retention_ms(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 500;
    c.retention_ms = 10000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t now = 1000000;
    for (int i = 0; i < 30; i++) /* old data */
        t_append(p, 1, now - 50000 + i, 100);
    int64_t keep_from = t_append(p, 1, now - 100, 100); /* new data; rolls first */
    for (int i = 0; i < 10; i++)
        t_append(p, 1, now - 100 + i, 100);
    int before = count_segments(&e, "t-0");
    ks_store_tick(e.s, now);
    int after = count_segments(&e, "t-0");
    assert_true(after < before);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_int_equal(st.segments_deleted_retention, before - after);
    /* Only segments whose newest record is too old went; the new data is all there. */
    assert_true(ks_part_log_start(p) <= keep_from);
    assert_true(ks_part_log_start(p) > 20);
    int64_t first;
    t_read_check(p, keep_from, 1, true, &first);
    assert_true(first == keep_from);
    /* The renamed files are unlinked by the flusher thread, soon. */
    int doomed = 1;
    for (int tries = 0; tries < 2000 && doomed; tries++) {
        char dpath[4096];
        snprintf(dpath, sizeof dpath, "%s/t-0", e.dir);
        DIR *d = opendir(dpath);
        doomed = 0;
        for (struct dirent *de; (de = readdir(d));)
            doomed += strstr(de->d_name, ".deleted") != NULL;
        closedir(d);
        if (doomed)
            usleep(1000);
    }
    assert_int_equal(doomed, 0);
    /* Everything expired: closed segments go, the active one stays. */
    ks_store_tick(e.s, now + 1000000);
    assert_int_equal(count_segments(&e, "t-0"), 1);
    assert_true(ks_part_log_end(p) == 41);
    assert_true(t_append(p, 1, now, 10) == 41);
    t_env_deinit(&e);
}

static void test_retention_bytes(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 1000;
    c.retention_bytes = 3000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 100; i++)
        t_append(p, 1, 1000 + i, 150);
    ks_store_tick(e.s, 2000);
    int64_t logbytes = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/t-0", e.dir);
    DIR *d = opendir(path);
    for (struct dirent *de; (de = readdir(d));) {
        if (t_is_log(de->d_name)) {
            char f[4400];
            snprintf(f, sizeof f, "%s/%s", path, de->d_name);
            logbytes += t_file_size(f);
        }
    }
    closedir(d);
    assert_true(logbytes >= 3000);
    assert_true(logbytes < 3000 + 1000);
    assert_true(ks_part_log_start(p) > 0);
    int64_t first;
    t_read_check(p, ks_part_log_start(p), 1, true, &first);
    assert_true(first == ks_part_log_start(p));
    t_env_deinit(&e);
}

static void test_budget_reject(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.dirs_max_bytes = 20000;
    e.o.full_policy = KS_FULL_REJECT;
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 2000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int ok = 0, rc = 0;
    while ((rc = t_append_rc(p, 1, 1000, 300)) == 0)
        ok++;
    assert_int_equal(rc, K_ERR_NOSPC);
    assert_true(ok > 30);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_true(st.bytes_on_disk <= 20000);
    assert_true(st.appends_rejected_budget >= 1);
    int warns = t_log_warns;
    assert_int_equal(t_append_rc(p, 1, 1000, 300), K_ERR_NOSPC);
    (void)warns;
    /* Still readable. */
    assert_true(t_read_check(p, 0, 1 << 20, true, NULL) >= 1);
    /* DeleteRecords frees whole segments; appends resume. */
    int64_t end = ks_part_log_end(p);
    assert_int_equal(ks_part_delete_records(p, end), 0);
    assert_true(t_append(p, 1, 1000, 300) == end);
    t_env_deinit(&e);
}

static void test_budget_delete_oldest(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.dirs_max_bytes = 30000;
    e.o.full_policy = KS_FULL_DELETE_OLDEST;
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 2000;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "t", 2, &c, &t), 0);
    ks_part_t *old = ks_topic_part(t, 0), *young = ks_topic_part(t, 1);
    for (int i = 0; i < 40; i++) /* old timestamps */
        t_append(old, 1, 1000 + i, 300);
    for (int i = 0; i < 200; i++) {
        t_append(young, 1, 900000 + i, 300);
        ks_stats_t st;
        ks_store_stats(e.s, &st);
        assert_true(st.bytes_on_disk <= 30000);
    }
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_true(st.segments_deleted_budget > 0);
    assert_int_equal(st.appends_rejected_budget, 0);
    /* The old partition lost its closed segments first. */
    assert_true(ks_part_log_start(old) > 0);
    assert_int_equal(count_segments(&e, "t-0"), 1);
    assert_true(ks_part_log_end(old) == 40);
    assert_true(t_read_check(young, ks_part_log_start(young), 1 << 20, true, NULL) >= 1);
    t_env_deinit(&e);
}

/* The uplink's hold: a floor keeps every segment with an offset at or above it, against
 * retention.bytes and the delete-oldest budget alike; appends then fail with K_ERR_NOSPC
 * (pushback) instead of deleting; raising the floor lets them go. */
static int64_t floor_at(void *ud, const ks_part_t *p)
{
    (void)p;
    return *(const int64_t *)ud;
}

static void test_retention_floor_holds(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.dirs_max_bytes = 30000;
    e.o.full_policy = KS_FULL_DELETE_OLDEST;
    t_env_open(&e);
    int64_t floor = 0;
    ks_store_set_retention_floor(e.s, floor_at, &floor);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 2000;
    c.retention_bytes = 4000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int appended = 0, rejected = 0;
    for (int i = 0; i < 200; i++) {
        kp_buf_t b;
        kp_buf_init(&b);
        t_batch(&b, 1, 1000 + i, 300);
        ks_append_result_t res;
        int rc = ks_part_append(p, b.data, b.len, 0, &res);
        kp_buf_deinit(&b);
        if (rc == 0)
            appended++;
        else {
            assert_int_equal(rc, K_ERR_NOSPC);
            rejected++;
        }
        ks_store_tick(e.s, 2000);
    }
    assert_true(rejected > 0);
    assert_int_equal(ks_part_log_start(p), 0); /* nothing unforwarded was deleted */
    floor = ks_part_log_end(p);                /* all forwarded now */
    ks_store_tick(e.s, 2000);
    assert_true(ks_part_log_start(p) > 0);
    assert_true(t_append(p, 1, 5000, 300) >= appended);
    ks_store_set_retention_floor(e.s, NULL, NULL);
    t_env_deinit(&e);
}

/* The broker's own topics (opts.budget_exempt) are never shrunk by the delete-oldest budget,
 * even when they hold the oldest data: the user topic loses its segments first, and once only
 * exempt data is left, appends are pushed back (K_ERR_NOSPC) instead of deleting it. */
static bool exempt_audit(const char *topic, size_t len)
{
    return len == 7 && memcmp(topic, "__audit", 7) == 0;
}

static void test_budget_exempts_internal_topics(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.dirs_max_bytes = 30000;
    e.o.full_policy = KS_FULL_DELETE_OLDEST;
    e.o.budget_exempt = exempt_audit;
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 2000;
    ks_part_t *audit = t_topic(&e, "__audit", 1, &c);
    ks_part_t *user = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 40; i++) /* the oldest data of the box */
        t_append(audit, 1, 1000 + i, 300);
    for (int i = 0; i < 200; i++)
        t_append(user, 1, 900000 + i, 300);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_true(st.segments_deleted_budget > 0);   /* the user topic paid */
    assert_int_equal(ks_part_log_start(audit), 0); /* the trail kept every record */
    assert_true(ks_part_log_start(user) > 0);
    /* The trail keeps growing: the user topic shrinks to its active segment, then the
     * trail's own appends are pushed back rather than deleting audit records. */
    int rejected = 0;
    for (int i = 0; i < 200 && !rejected; i++) {
        kp_buf_t b;
        kp_buf_init(&b);
        t_batch(&b, 1, 2000 + i, 300);
        ks_append_result_t res;
        int rc = ks_part_append(audit, b.data, b.len, 0, &res);
        kp_buf_deinit(&b);
        if (rc != 0) {
            assert_int_equal(rc, K_ERR_NOSPC);
            rejected++;
        }
    }
    assert_true(rejected > 0);
    assert_int_equal(ks_part_log_start(audit), 0);
    t_env_deinit(&e);
}

static void test_delete_records(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 600;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 50; i++)
        t_append(p, 2, 1000, 60);
    int before = count_segments(&e, "t-0");
    assert_int_equal(ks_part_delete_records(p, 101), K_ERR_RANGE);
    assert_int_equal(ks_part_delete_records(p, 41), 0);
    assert_true(ks_part_log_start(p) == 41);
    assert_true(count_segments(&e, "t-0") < before);
    assert_int_equal(ks_part_delete_records(p, 10), 0); /* never moves back */
    assert_true(ks_part_log_start(p) == 41);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, 40, 100, true, &out), K_ERR_RANGE);
    kp_buf_deinit(&out);
    int64_t first;
    t_read_check(p, 41, 1, true, &first);
    assert_true(first == 40);
    int64_t off, ts;
    assert_int_equal(ks_part_offset_for_time(p, 0, &off, &ts), 0);
    assert_true(off == 41);
    /* Persisted at once: an unclean restart keeps it. */
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    assert_true(ks_part_log_start(t_part(&e, "t", 0)) == 41);
    t_env_deinit(&e);
}

static void test_segment_ms_rolls_on_tick(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_ms = 1000;
    c.retention_ms = 5000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t now = 10000000;
    t_append(p, 1, now, 10);
    ks_store_tick(e.s, now + 10);
    assert_int_equal(count_segments(&e, "t-0"), 1);
    ks_store_tick(e.s, now + 2000);
    assert_int_equal(count_segments(&e, "t-0"), 2);
    ks_store_tick(e.s, now + 2001); /* the new active segment is empty: no roll */
    assert_int_equal(count_segments(&e, "t-0"), 2);
    ks_store_tick(e.s, now + 10000); /* the idle data expires */
    assert_int_equal(count_segments(&e, "t-0"), 1);
    assert_true(ks_part_log_start(p) == 1 && ks_part_log_end(p) == 1);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_ms),
        cmocka_unit_test(test_retention_bytes),
        cmocka_unit_test(test_budget_reject),
        cmocka_unit_test(test_budget_delete_oldest),
        cmocka_unit_test(test_delete_records),
        cmocka_unit_test(test_retention_floor_holds),
        cmocka_unit_test(test_budget_exempts_internal_topics),
        cmocka_unit_test(test_segment_ms_rolls_on_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Storage: group commit, durable end, and I/O failures through the fault seam. */
#include "tests/storage/ks_test.h"
#include "storage/ks_int.h"

static int setup(void **state)
{
    (void)state;
    kf_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kf_uninstall();
    return 0;
}

static void test_group_commit_shares_fsyncs(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    enum { N = 64 };
    t_sync_t w[N];
    memset(w, 0, sizeof w);
    atomic_store(&kf_sync_delay_us, 20000); /* a slow disk: waiters pile up behind an fsync */
    atomic_store(&kf_calls[KF_FDATASYNC], 0);
    atomic_store(&t_sync_ready, 0);
    ks_stats_t st0, st1;
    ks_store_stats(e.s, &st0);
    for (int i = 0; i < N; i++) {
        t_append(p, 1, 1000 + i, 10);
        assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w[i]), 0);
    }
    t_wait_syncs(e.s, w, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, 0);
    }
    int fsyncs = atomic_load(&kf_calls[KF_FDATASYNC]);
    ks_store_stats(e.s, &st1);
    assert_true(fsyncs >= 1);
    assert_true(fsyncs < N / 4);
    assert_true(st1.fsyncs - st0.fsyncs < N / 4);
    /* Every timed fsync landed in the histogram; the 20 ms ones above the 10 ms bound. */
    int64_t timed = 0, slow = 0;
    for (int b = 0; b < KS_FSYNC_BUCKETS; b++) {
        int64_t d = st1.fsync_hist[b] - st0.fsync_hist[b];
        timed += d;
        if (b > 0 && ks_fsync_bounds_us[b - 1] >= 10000) slow += d;
    }
    assert_true(timed >= fsyncs);
    assert_true(timed <= st1.fsyncs - st0.fsyncs);
    assert_true(slow >= fsyncs);
    assert_true(st1.fsync_us_sum - st0.fsync_us_sum >= (int64_t)fsyncs * 20000);
    assert_true(atomic_load(&t_sync_ready) >= 1);
    assert_true(ks_part_durable_end(p) == N);
    /* Already durable: completes without another fsync. */
    t_sync_t again = {0, 0};
    assert_int_equal(ks_part_sync(p, 10, t_sync_cb, &again), 0);
    t_wait_syncs(e.s, &again, 1);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.status, 0);
    assert_int_equal(atomic_load(&kf_calls[KF_FDATASYNC]), fsyncs);
    t_env_deinit(&e);
}

/* A rolled segment is synced before the waiter whose data spans the roll is released. */
static void test_sync_covers_rolled_segments(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 300;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    atomic_store(&kf_sync_delay_us, 0);
    for (int i = 0; i < 20; i++)
        t_append(p, 1, 1000, 100);
    t_sync_t w = {0, 0};
    atomic_store(&kf_calls[KF_FDATASYNC], 0);
    assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w), 0);
    t_wait_syncs(e.s, &w, 1);
    assert_int_equal(w.status, 0);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    /* Nothing dirty is left: one more sync needs no fsync. */
    int calls = atomic_load(&kf_calls[KF_FDATASYNC]);
    assert_true(calls >= 1);
    t_sync_t w2 = {0, 0};
    assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w2), 0);
    t_wait_syncs(e.s, &w2, 1);
    assert_int_equal(atomic_load(&kf_calls[KF_FDATASYNC]), calls);
    t_env_deinit(&e);
}

static void test_flush_messages_policy(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.flush_messages = 5;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 6; i++)
        t_append(p, 1, 1000, 10);
    for (int i = 0; i < 2000 && ks_part_durable_end(p) < 5; i++)
        usleep(1000);
    assert_true(ks_part_durable_end(p) >= 5);
    t_env_deinit(&e);
}

/* fsyncgate: the failed fsync is an error to its waiters and never success later. */
static void test_fsync_eio_fails_partition(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    t_append(p, 3, 1000, 10);
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, 3, t_sync_cb, &w), 0);
    t_wait_syncs(e.s, &w, 1);
    assert_int_equal(w.status, 0);
    kf_fail_nth(KF_FDATASYNC, 1, EIO, false);
    t_append(p, 2, 1000, 10);
    t_sync_t w1[3];
    memset(w1, 0, sizeof w1);
    assert_int_equal(ks_part_sync(p, 5, t_sync_cb, &w1[0]), 0);
    assert_int_equal(ks_part_sync(p, 4, t_sync_cb, &w1[1]), 0);
    t_wait_syncs(e.s, w1, 2);
    assert_int_equal(w1[0].status, K_ERR_IO);
    assert_int_equal(w1[1].status, K_ERR_IO);
    /* fsync works again, but the partition must not claim durability now. */
    assert_int_equal(ks_part_sync(p, 5, t_sync_cb, &w1[2]), 0);
    t_wait_syncs(e.s, &w1[2], 1);
    assert_int_equal(w1[2].status, K_ERR_IO);
    assert_true(ks_part_durable_end(p) == 3);
    assert_int_equal(t_append_rc(p, 1, 1000, 10), K_ERR_IO);
    assert_int_equal(t_read_check(p, 0, 1 << 20, true, NULL), 2);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_true(st.io_errors >= 1);
    t_env_close(&e);
    char path[4096];
    snprintf(path, sizeof path, "%s/.depot-clean-shutdown", e.dir);
    assert_int_equal(t_file_size(path), -1); /* next open must re-verify */
    t_env_open(&e);
    p = t_part(&e, "t", 0);
    assert_true(ks_part_log_end(p) == 5);
    assert_true(t_append(p, 1, 1000, 10) == 5);
    t_env_deinit(&e);
}

/* ks_part_sync_now: durable on return, releases async waiters it covers, fails after EIO. */
static void test_sync_now(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    atomic_store(&kf_sync_delay_us, 0);
    t_append(p, 3, 1000, 10);
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, 3, t_sync_cb, &w), 0);
    int before = atomic_load(&kf_calls[KF_FDATASYNC]);
    assert_int_equal(ks_part_sync_now(p, 3), 0);
    assert_true(ks_part_durable_end(p) == 3);
    t_wait_syncs(e.s, &w, 1); /* the waiter is covered, by our pass or the flusher's */
    assert_int_equal(w.status, 0);
    int after = atomic_load(&kf_calls[KF_FDATASYNC]);
    assert_true(after >= before);
    assert_int_equal(ks_part_sync_now(p, 2), 0); /* already durable: no fsync */
    assert_int_equal(ks_part_sync_now(p, 99), 0); /* past the end: the log end */
    assert_int_equal(atomic_load(&kf_calls[KF_FDATASYNC]), after);
    t_append(p, 2, 1000, 10);
    kf_fail_nth(KF_FDATASYNC, 1, EIO, false);
    assert_int_equal(ks_part_sync_now(p, 5), K_ERR_IO);
    assert_true(ks_part_durable_end(p) == 3);
    assert_int_equal(ks_part_sync_now(p, 5), K_ERR_IO); /* never durable later */
    t_env_deinit(&e);
}

static void test_enospc_on_write(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    for (int i = 0; i < 5; i++)
        t_append(p, 2, 1000, 50);
    char path[4096];
    snprintf(path, sizeof path, "%s/t-0/00000000000000000000.log", e.dir);
    int64_t size = t_file_size(path);
    kf_fail_nth(KF_PWRITE, 1, ENOSPC, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t_append_rc(p, 2, 1000, 50), K_ERR_NOSPC);
    assert_true(t_file_size(path) == size); /* the half-written batch was cut back */
    assert_true(ks_part_log_end(p) == 10);
    assert_int_equal(t_read_check(p, 0, 1 << 20, true, NULL), 5);
    kf_clear(); /* space is back */
    assert_true(t_append(p, 2, 1000, 50) == 10);
    assert_int_equal(t_read_check(p, 0, 1 << 20, true, NULL), 6);
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "t", 0);
    assert_true(ks_part_log_end(p) == 12);
    assert_int_equal(t_read_check(p, 0, 1 << 20, true, NULL), 6);
    t_env_deinit(&e);
}

/* The index write fails after the log write succeeded: the append that was writing the
 * segment's pending entries is undone entirely, the older entries wait on and are written by
 * a later append, and nothing is lost across a crash. */
static void test_enospc_on_index_write_undoes_append(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.index_interval_bytes = 0; /* an entry per batch */
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    const int64_t wait = KS_IDX_PEND - 1; /* entries that wait in memory */
    /* The first batch of a segment gets no entry (Kafka's rule): n appends, n - 1 entries. */
    for (int64_t i = 0; i <= wait; i++)
        assert_true(t_append(p, 1, 1000, 50) == i);
    ks_seg_t *a = p->segs[p->nsegs - 1];
    assert_true(a->idx_size == 0 && a->ipend.len == (size_t)wait * KS_IDX_ENTRY);
    kf_fail_nth(KF_PWRITE, 2, ENOSPC, false); /* 1st: the log, 2nd: the .index */
    assert_int_equal(t_append_rc(p, 1, 1000, 50), K_ERR_NOSPC);
    assert_true(ks_part_log_end(p) == wait + 1);
    assert_true(a->idx_size == 0 && a->ipend.len == (size_t)wait * KS_IDX_ENTRY);
    assert_true(t_append(p, 1, 1000, 50) == wait + 1); /* writes all KS_IDX_PEND entries */
    assert_true(a->idx_size == KS_IDX_PEND * KS_IDX_ENTRY && a->ipend.len == 0);
    assert_true(t_append(p, 1, 1000, 50) == wait + 2);
    for (int64_t off = 0; off < wait + 3; off++) {
        int64_t first;
        t_read_check(p, off, 1, true, &first);
        assert_true(first == off);
    }
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "t", 0);
    assert_true(ks_part_log_end(p) == wait + 3);
    a = p->segs[p->nsegs - 1];
    assert_true(a->idx_size == (wait + 2) * KS_IDX_ENTRY); /* close wrote the waiting ones */
    t_env_deinit(&e);
}

/* A failed checkpoint rename at close: the dir is not marked clean, and recovery works. */
static void test_rename_failure_at_close(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    t_append(p, 4, 1000, 10);
    kf_fail_nth(KF_RENAME, 1, EIO, false);
    t_env_close(&e);
    char path[4096];
    snprintf(path, sizeof path, "%s/.depot-clean-shutdown", e.dir);
    assert_int_equal(t_file_size(path), -1);
    t_env_open(&e);
    assert_true(ks_part_log_end(t_part(&e, "t", 0)) == 4);
    t_env_deinit(&e);
}

/* Appends, rolls and syncs on several partitions while the flusher works and the fd cache
 * (cap 2) keeps closing files: every waiter succeeds and no I/O call fails. */
static void test_flusher_with_rolls_and_fd_churn(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.max_open_files = 2;
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 700;
    c.index_interval_bytes = 50;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "t", 4, &c, &t), 0);
    atomic_store(&kf_sync_delay_us, 300);
    enum { N = 400 };
    static t_sync_t w[N];
    memset(w, 0, sizeof w);
    for (int i = 0; i < N; i++) {
        ks_part_t *p = ks_topic_part(t, i % 4);
        t_append(p, 1 + i % 3, 1000 + i, 40 + (size_t)(i % 5) * 30);
        assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w[i]), 0);
        if (i % 7 == 0) {
            int64_t first;
            t_read_check(p, ks_part_log_start(p), 1, true, &first);
            ks_store_run_completions(e.s);
        }
    }
    t_wait_syncs(e.s, w, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, 0);
    }
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_int_equal(st.io_errors, 0);
    assert_true(st.open_files <= 2);
    for (int i = 0; i < 4; i++) {
        ks_part_t *p = ks_topic_part(t, i);
        assert_true(ks_part_durable_end(p) == ks_part_log_end(p));
    }
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    t = ks_topic_find(e.s, "t", 1);
    for (int i = 0; i < 4; i++)
        assert_true(t_read_check(ks_topic_part(t, i), 0, 1 << 20, true, NULL) >= 1);
    t_env_deinit(&e);
}

/* Syncs of different partitions run on several flusher threads at once. */
static void test_partitions_sync_in_parallel(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "t", 8, NULL, &t), 0);
    for (int i = 0; i < 8; i++) { /* first appends create files: get their dir fsyncs done */
        t_sync_t w0 = {0, 0};
        t_append(ks_topic_part(t, i), 1, 1000, 10);
        ks_part_sync(ks_topic_part(t, i), 1, t_sync_cb, &w0);
        t_wait_syncs(e.s, &w0, 1);
    }
    atomic_store(&kf_sync_delay_us, 50000);
    t_sync_t w[8];
    memset(w, 0, sizeof w);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 8; i++) {
        t_append(ks_topic_part(t, i), 1, 1000, 10);
        assert_int_equal(ks_part_sync(ks_topic_part(t, i), 2, t_sync_cb, &w[i]), 0);
    }
    t_wait_syncs(e.s, w, 8);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    for (int i = 0; i < 8; i++)
        assert_int_equal(w[i].status, 0);
    assert_true(ms < 8 * 50 * 0.75); /* serial would take 400 ms; 4 threads about 100 */
    t_env_deinit(&e);
}

/* Issue 19: a resource shortage (EMFILE from the directory fsync's open, ENOMEM from
 * fdatasync) is retried with a backoff and heals by itself; it never fails the partition the
 * way a real EIO does (test_fsync_eio_fails_partition). */
static atomic_int dir_fails;

static int dir_emfile(const char *path)
{
    if (atomic_load(&dir_fails) > 0) {
        atomic_fetch_sub(&dir_fails, 1);
        errno = EMFILE;
        return -1;
    }
    return ks_io_posix.fsync_dir(path);
}

static void test_fsync_shortage_heals(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL); /* new files: the first pass fsyncs the dir */
    ks_io.fsync_dir = dir_emfile;
    atomic_store(&dir_fails, 3);
    t_append(p, 3, 1000, 10);
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, 3, t_sync_cb, &w), 0);
    t_wait_syncs(e.s, &w, 1);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, 0); /* durable after the retries, not K_ERR_IO */
    assert_int_equal(atomic_load(&dir_fails), 0);
    assert_true(ks_part_durable_end(p) == 3);

    kf_fail_nth(KF_FDATASYNC, 1, ENOMEM, false);
    t_append(p, 2, 1000, 10);
    t_sync_t w2 = {0, 0};
    assert_int_equal(ks_part_sync(p, 5, t_sync_cb, &w2), 0);
    t_wait_syncs(e.s, &w2, 1);
    assert_int_equal(w2.status, 0);
    assert_true(t_append(p, 1, 1000, 10) == 5); /* still takes writes */
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_int_equal(st.io_errors, 0);
    ks_io.fsync_dir = ks_io_posix.fsync_dir;
    t_env_deinit(&e);
}

/* Issue 19: the loop never fsyncs under the store lock for checkpoints. With every fsync of
 * a small file taking 300 ms, the periodic recovery-point checkpoint (store tick) and the
 * log-start checkpoint of DeleteRecords return at once; a flusher thread writes both. */
/* The flusher thread reads ks_io.fsync at every call, so the test may swap the pointer only
 * while no flusher runs (TSan, make test-tsan); the slowness is switched by an atomic flag. */
static _Atomic bool fsync_slow;

static int slow_fsync(int fd)
{
    if (fsync_slow) usleep(300 * 1000);
    return ks_io_posix.fsync(fd);
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_checkpoints_written_off_the_loop(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 300;
    ks_part_t *p = t_topic(&e, "cp", 1, &c);
    for (int i = 0; i < 10; i++)
        t_append(p, 1, 1000, 100); /* rolls: closed segments move the recovery point */
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w), 0);
    t_wait_syncs(e.s, &w, 1);
    assert_int_equal(w.status, 0);

    fsync_slow = true;
    ks_io.fsync = slow_fsync; /* the flusher is idle: the sync above was answered */
    char rp[4096], lso[4096];
    snprintf(rp, sizeof rp, "%s/recovery-point-offset-checkpoint", e.dir);
    snprintf(lso, sizeof lso, "%s/log-start-offset-checkpoint", e.dir);
    double t0 = secs();
    ks_store_tick(e.s, 61000); /* past the checkpoint interval, not past retention */
    assert_true(secs() - t0 < 0.2);
    t0 = secs();
    assert_int_equal(ks_part_delete_records(p, 3), 0);
    assert_true(secs() - t0 < 0.2);
    for (int i = 0; i < 300 && !(file_has(rp, "cp 0 ") && file_has(lso, "cp 0 3\n")); i++)
        usleep(10 * 1000);
    assert_true(file_has(rp, "cp 0 "));
    assert_true(file_has(lso, "cp 0 3\n"));
    fsync_slow = false;
    t_env_deinit(&e); /* joins the flusher; only then is the seam put back */
    ks_io.fsync = ks_io_posix.fsync;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_commit_shares_fsyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_covers_rolled_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_messages_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_eio_fails_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_shortage_heals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_written_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_on_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_on_index_write_undoes_append, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure_at_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flusher_with_rolls_and_fd_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions_sync_in_parallel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

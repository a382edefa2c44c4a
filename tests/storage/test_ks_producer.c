/*
 * Idempotent producer state (storage/producer_state.c): Kafka's sequence rules, duplicates
 * answered with the original offsets, epochs, wrap-around, expiry, and the state surviving
 * clean and unclean restarts (snapshots + replay of batch headers), torn snapshots and
 * snapshots past a truncated log end.
 */
#include "tests/storage/ks_test.h"

#include <stdint.h>

typedef struct {
    int rc;
    ks_produce_outcome_t o;
    ks_append_result_t res;
} t_pres_t;

static void t_pbatch_build(kp_buf_t *b, int64_t pid, int16_t epoch, int32_t seq, int nrec)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    bb.producer_id = pid;
    bb.producer_epoch = epoch;
    bb.base_sequence = seq;
    for (int i = 0; i < nrec; i++) {
        char v[32];
        int n = snprintf(v, sizeof v, "p%lld-s%lld", (long long)pid, (long long)seq + i);
        kp_bytes_t key = {NULL, -1}, val = {(const uint8_t *)v, n};
        assert_int_equal(kp_batch_builder_add(&bb, 1000 + i, key, val, NULL, 0), 0);
    }
    assert_int_equal(kp_batch_builder_finish(&bb, b), 0);
    kp_batch_builder_deinit(&bb);
}

static t_pres_t t_produce(ks_part_t *p, int64_t pid, int16_t epoch, int32_t seq, int nrec,
                          int64_t now)
{
    kp_buf_t b;
    kp_buf_init(&b);
    t_pbatch_build(&b, pid, epoch, seq, nrec);
    t_pres_t r;
    memset(&r, 0, sizeof r);
    r.o = (ks_produce_outcome_t)-1;
    r.rc = ks_part_append_idempotent(p, b.data, b.len, now, &r.res, &r.o);
    kp_buf_deinit(&b);
    return r;
}

static void expect_appended(ks_part_t *p, int64_t pid, int16_t epoch, int32_t seq, int nrec,
                            int64_t base)
{
    t_pres_t r = t_produce(p, pid, epoch, seq, nrec, 5000);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.o, KS_PRODUCE_APPENDED);
    assert_int_equal(r.res.base_offset, base);
    assert_int_equal(r.res.last_offset, base + nrec - 1);
}

static void expect_outcome(ks_part_t *p, int64_t pid, int16_t epoch, int32_t seq, int nrec,
                           ks_produce_outcome_t o)
{
    int64_t end = ks_part_log_end(p);
    t_pres_t r = t_produce(p, pid, epoch, seq, nrec, 5000);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.o, o);
    assert_int_equal(ks_part_log_end(p), end); /* nothing written */
}

static void expect_dup(ks_part_t *p, int64_t pid, int16_t epoch, int32_t seq, int nrec,
                       int64_t orig_base)
{
    int64_t end = ks_part_log_end(p);
    t_pres_t r = t_produce(p, pid, epoch, seq, nrec, 5000);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.o, KS_PRODUCE_DUPLICATE);
    assert_int_equal(r.res.base_offset, orig_base);
    assert_int_equal(r.res.last_offset, orig_base + nrec - 1);
    assert_int_equal(ks_part_log_end(p), end);
}

static void test_producer_sequence_and_duplicates(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "seq", 1, NULL);
    /* Six batches of 2 records: offsets 0,2,...,10; sequences 0,2,...,10. */
    for (int i = 0; i < 6; i++)
        expect_appended(p, 7, 0, 2 * i, 2, 2 * i);
    assert_int_equal(ks_part_producer_count(p), 1);
    expect_dup(p, 7, 0, 10, 2, 10); /* the last batch */
    expect_dup(p, 7, 0, 2, 2, 2);   /* the oldest of the last five */
    /* The sixth-newest is forgotten: not a duplicate, and out of sequence. */
    expect_outcome(p, 7, 0, 0, 2, KS_PRODUCE_OUT_OF_ORDER);
    /* Same first sequence but another range is not a duplicate. */
    expect_outcome(p, 7, 0, 10, 1, KS_PRODUCE_OUT_OF_ORDER);
    expect_outcome(p, 7, 0, 13, 1, KS_PRODUCE_OUT_OF_ORDER); /* gap */
    expect_appended(p, 7, 0, 12, 1, 12);
    /* Non-idempotent batches are neither checked nor recorded. */
    t_append(p, 1, 1000, 10);
    assert_int_equal(ks_part_producer_count(p), 1);
    t_env_deinit(&e);
}

static void test_producer_epochs_and_unknown_ids(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "ep", 1, NULL);
    expect_appended(p, 3, 0, 0, 1, 0);
    expect_appended(p, 3, 0, 1, 1, 1);
    expect_outcome(p, 3, 1, 5, 1, KS_PRODUCE_OUT_OF_ORDER); /* new epoch must start at 0 */
    expect_appended(p, 3, 1, 0, 1, 2);
    expect_outcome(p, 3, 0, 2, 1, KS_PRODUCE_STALE_EPOCH);
    expect_outcome(p, 3, 0, 1, 1, KS_PRODUCE_STALE_EPOCH); /* old epoch's dup: fenced too */
    expect_dup(p, 3, 1, 0, 1, 2);
    /* Unknown producer id: any sequence (Kafka >= 2.5), then the rules apply. */
    expect_appended(p, 99, 4, 1234, 2, 3);
    expect_outcome(p, 99, 4, 1237, 1, KS_PRODUCE_OUT_OF_ORDER);
    expect_appended(p, 99, 4, 1236, 1, 5);
    /* A producer id without a sequence is refused. */
    expect_outcome(p, 100, 0, -1, 1, KS_PRODUCE_BAD_SEQUENCE);
    assert_int_equal(ks_part_producer_count(p), 2);
    t_env_deinit(&e);
}

static void test_producer_sequence_wraps(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "wrap", 1, NULL);
    expect_appended(p, 5, 0, INT32_MAX - 1, 3, 0); /* sequences MAX-1, MAX, 0 */
    expect_dup(p, 5, 0, INT32_MAX - 1, 3, 0);
    expect_outcome(p, 5, 0, 0, 1, KS_PRODUCE_OUT_OF_ORDER);
    expect_appended(p, 5, 0, 1, 1, 3);
    expect_appended(p, 5, 0, 2, 1, 4);
    expect_appended(p, 6, 0, INT32_MAX, 1, 5); /* ends exactly at MAX: next is 0 */
    expect_outcome(p, 6, 0, 1, 1, KS_PRODUCE_OUT_OF_ORDER);
    expect_appended(p, 6, 0, 0, 1, 6);
    t_env_deinit(&e);
}

static void test_producer_survives_clean_restart(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "clean", 1, NULL);
    for (int i = 0; i < 5; i++)
        expect_appended(p, 11, 2, 2 * i, 2, 2 * i); /* offsets 0..9 */
    expect_appended(p, 12, 0, 0, 2, 10);              /* 10..11 */
    expect_appended(p, 12, 0, 2, 2, 12);              /* 12..13 */
    t_env_reopen(&e);
    p = t_part(&e, "clean", 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/clean-0/%020d.snapshot", e.dir, 14);
    assert_true(t_file_size(path) > 18);
    expect_dup(p, 11, 2, 8, 2, 8);
    expect_dup(p, 12, 0, 2, 2, 12);
    expect_outcome(p, 11, 1, 10, 1, KS_PRODUCE_STALE_EPOCH);
    expect_appended(p, 11, 2, 10, 1, 14);
    t_env_deinit(&e);
}

static void test_producer_survives_unclean_restart_with_rolls(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    cfg.segment_bytes = 300; /* a roll every few batches: snapshot + replay */
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "unclean", 1, &cfg, &t), 0);
    ks_part_t *p = ks_topic_part(t, 0);
    for (int i = 0; i < 40; i++)
        expect_appended(p, 21, 0, i, 1, i);
    /* A kill -9: no close, no final snapshot; the page cache keeps the bytes. Reopening
     * without closing would share the dir with a live store, so close and drop the marker
     * and the close-time snapshot (what a kill leaves is older snapshots only). */
    t_env_close(&e);
    t_env_unclean(&e);
    char path[4096];
    snprintf(path, sizeof path, "%s/unclean-0/%020d.snapshot", e.dir, 40);
    assert_int_equal(unlink(path), 0);
    t_env_open(&e);
    p = t_part(&e, "unclean", 0);
    for (int i = 35; i < 40; i++)
        expect_dup(p, 21, 0, i, 1, i);
    expect_outcome(p, 21, 0, 34, 1, KS_PRODUCE_OUT_OF_ORDER);
    expect_appended(p, 21, 0, 40, 1, 40);
    t_env_deinit(&e);
}

static void test_producer_torn_and_stale_snapshots(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "torn", 1, NULL);
    for (int i = 0; i < 6; i++)
        expect_appended(p, 31, 0, i, 1, i);
    t_env_close(&e);
    char snap[4096], log[4096];
    snprintf(snap, sizeof snap, "%s/torn-0/%020d.snapshot", e.dir, 6);
    snprintf(log, sizeof log, "%s/torn-0/%020d.log", e.dir, 0);
    /* Flip a byte: the CRC fails, the state is rebuilt from the log alone. */
    int fd = open(snap, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, 20), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, 20), 1);
    close(fd);
    t_env_open(&e);
    p = t_part(&e, "torn", 0);
    assert_int_equal(t_file_size(snap), -1); /* the bad one is gone */
    expect_dup(p, 31, 0, 5, 1, 5);
    expect_appended(p, 31, 0, 6, 1, 6);
    /* A power cut that loses the tail after the close-time snapshot: the snapshot is past
     * the recovered log end and must not be trusted (it would call a lost batch a dup). */
    t_env_close(&e);
    snprintf(snap, sizeof snap, "%s/torn-0/%020d.snapshot", e.dir, 7);
    assert_true(t_file_size(snap) > 0);
    int64_t size = t_file_size(log);
    fd = open(log, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size - 10), 0); /* tears the last batch (offset 6) */
    close(fd);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "torn", 0);
    assert_int_equal(ks_part_log_end(p), 6);
    assert_int_equal(t_file_size(snap), -1);
    expect_appended(p, 31, 0, 6, 1, 6); /* the retry of the lost batch is written again */
    expect_dup(p, 31, 0, 6, 1, 6);
    t_env_deinit(&e);
}

static void test_producer_expiry(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.producer_id_expiration_ms = 1000;
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "exp", 1, NULL);
    t_pres_t r = t_produce(p, 41, 0, 0, 1, 10000);
    assert_int_equal(r.o, KS_PRODUCE_APPENDED);
    r = t_produce(p, 42, 0, 0, 1, 10900);
    assert_int_equal(r.o, KS_PRODUCE_APPENDED);
    ks_store_tick(e.s, 10500);
    assert_int_equal(ks_part_producer_count(p), 2);
    ks_store_tick(e.s, 11000); /* 41 is 1000 ms old */
    assert_int_equal(ks_part_producer_count(p), 1);
    /* Forgotten: any sequence is accepted again, as for a new producer. */
    r = t_produce(p, 41, 0, 77, 1, 11000);
    assert_int_equal(r.o, KS_PRODUCE_APPENDED);
    ks_store_tick(e.s, 13000);
    assert_int_equal(ks_part_producer_count(p), 0);
    t_env_deinit(&e);
}

static void test_producer_plain_append_records_state(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "plain", 1, NULL);
    kp_buf_t b;
    kp_buf_init(&b);
    t_pbatch_build(&b, 51, 0, 0, 3);
    ks_append_result_t res;
    assert_int_equal(ks_part_append(p, b.data, b.len, 1, &res), 0);
    kp_buf_deinit(&b);
    expect_dup(p, 51, 0, 0, 3, 0);
    expect_appended(p, 51, 0, 3, 1, 3);
    t_env_deinit(&e);
}

static void test_producer_failed_partition_refuses(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    kf_install();
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "fail", 1, NULL);
    expect_appended(p, 61, 0, 0, 1, 0);
    /* A failed fsync: the retry of a batch that never became durable must not be called a
     * success (duplicate) while the partition is failed. */
    kf_fail_nth(KF_FDATASYNC, 1, EIO, true);
    t_sync_t w = {0};
    assert_int_equal(ks_part_sync(p, 1, t_sync_cb, &w), 0);
    t_wait_syncs(e.s, &w, 1);
    assert_int_equal(w.status, K_ERR_IO);
    t_pres_t r = t_produce(p, 61, 0, 0, 1, 5000);
    assert_int_equal(r.rc, K_ERR_IO);
    kf_clear();
    t_env_close(&e);
    kf_uninstall();
    t_env_open(&e);
    p = t_part(&e, "fail", 0);
    /* Reopened: recovery re-verified the log; the batch is there, so the retry is a dup. */
    expect_dup(p, 61, 0, 0, 1, 0);
    t_env_deinit(&e);
}

/* A power cut that loses a segment's tail exactly at a batch boundary while a later segment
 * survives: the hole must end the log (nothing after it was acknowledged), so the producer's
 * retries of the lost batches continue its sequence instead of being refused as a gap. */
static void test_recovery_hole_between_segments_ends_the_log(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    cfg.segment_bytes = 300;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "hole", 1, &cfg, &t), 0);
    ks_part_t *p = ks_topic_part(t, 0);
    for (int i = 0; i < 12; i++)
        expect_appended(p, 71, 0, i, 1, i);
    t_env_close(&e);
    t_env_unclean(&e);
    char path[4096];
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", e.dir);
    assert_int_equal(unlink(path), 0); /* unknown: recovery verifies every segment */
    snprintf(path, sizeof path, "%s/hole-0/%020d.log", e.dir, 0);
    int64_t size = t_file_size(path);
    assert_true(size > 0);
    /* The first segment holds n equal batches; drop its last one, whole. */
    kp_buf_t b;
    kp_buf_init(&b);
    t_pbatch_build(&b, 71, 0, 0, 1);
    int64_t n = size / (int64_t)b.len;
    assert_int_equal(n * (int64_t)b.len, size);
    assert_int_equal(truncate(path, size - (int64_t)b.len), 0);
    kp_buf_deinit(&b);
    t_env_open(&e);
    p = t_part(&e, "hole", 0);
    assert_int_equal(ks_part_log_end(p), n - 1);
    snprintf(path, sizeof path, "%s/hole-0/%020lld.log", e.dir, (long long)n);
    assert_int_equal(t_file_size(path), -1); /* the segment after the hole is gone */
    expect_dup(p, 71, 0, (int32_t)n - 2, 1, n - 2);
    expect_appended(p, 71, 0, (int32_t)n - 1, 1, n - 1);
    t_env_deinit(&e);
}

/* A snapshot that cannot be written at a roll or at close never fails the append or the
 * close; the state is rebuilt from an older snapshot plus the log. (A directory in the way of
 * the snapshot's name makes exactly the snapshot writes fail.) */
static void test_producer_snapshot_write_failure_is_not_fatal(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    cfg.segment_bytes = 200;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "snapfail", 1, &cfg, &t), 0);
    ks_part_t *p = ks_topic_part(t, 0);
    for (int i = 0; i < 4; i++)
        expect_appended(p, 81, 0, i, 1, i);
    char path[4096];
    for (int off = 4; off <= 12; off++) {
        snprintf(path, sizeof path, "%s/snapfail-0/%020d.snapshot", e.dir, off);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    for (int i = 4; i < 12; i++)
        expect_appended(p, 81, 0, i, 1, i);
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "snapfail", 0);
    expect_dup(p, 81, 0, 11, 1, 11);
    expect_dup(p, 81, 0, 7, 1, 7);
    expect_appended(p, 81, 0, 12, 1, 12);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_sequence_and_duplicates),
        cmocka_unit_test(test_producer_epochs_and_unknown_ids),
        cmocka_unit_test(test_producer_sequence_wraps),
        cmocka_unit_test(test_producer_survives_clean_restart),
        cmocka_unit_test(test_producer_survives_unclean_restart_with_rolls),
        cmocka_unit_test(test_producer_torn_and_stale_snapshots),
        cmocka_unit_test(test_producer_expiry),
        cmocka_unit_test(test_producer_plain_append_records_state),
        cmocka_unit_test(test_producer_failed_partition_refuses),
        cmocka_unit_test(test_recovery_hole_between_segments_ends_the_log),
        cmocka_unit_test(test_producer_snapshot_write_failure_is_not_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

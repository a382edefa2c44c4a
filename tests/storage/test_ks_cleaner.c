/*
 * Storage: the log cleaner. Latest value per key with the original offsets, tombstones kept
 * until their delete horizon, the key map budget (cleaning in passes), every codec, the
 * producer's last batch, keyless records, the cleaner threads, and a process death and a
 * power cut (tests/storage/ks_powercut.h) at every I/O step of a pass followed by recovery.
 */
#include <signal.h>
#include <sys/wait.h>

#include "tests/storage/ks_test.h"
#include "tests/storage/ks_powercut.h"

#define T0 1700000000000LL

/* Model of the log: value per offset ("" for a tombstone), key per offset. */
typedef struct {
    int nkeys;
    int64_t *latest; /* per key: latest offset (-1 none) */
    char (*val)[32]; /* per offset */
    int *key;        /* per offset */
    int64_t n;
} model_t;

static void model_init(model_t *m, int nkeys, int64_t cap)
{
    m->nkeys = nkeys;
    m->latest = malloc(sizeof *m->latest * (size_t)nkeys);
    for (int i = 0; i < nkeys; i++)
        m->latest[i] = -1;
    m->val = calloc((size_t)cap, sizeof *m->val);
    m->key = calloc((size_t)cap, sizeof *m->key);
    m->n = 0;
}

static void model_free(model_t *m)
{
    free(m->latest);
    free(m->val);
    free(m->key);
}

/* The model's side of append_keyed (for records a forked child appends). */
static void model_push(model_t *m, int k, int n, int round)
{
    for (int i = 0; i < n; i++) {
        int key = (k + i) % m->nkeys;
        m->key[m->n + i] = key;
        snprintf(m->val[m->n + i], sizeof m->val[0], "v%d-%d", key, round);
        m->latest[key] = m->n + i;
    }
    m->n += n;
}

/* Appends one batch of n records: keys k..k+n-1 (mod nkeys), value "v<key>-<round>", or a
 * tombstone when tomb. pid >= 0 makes it an idempotent batch at sequence seq. */
static void append_keyed(ks_part_t *p, model_t *m, int codec, int k, int n, int round,
                         bool tomb, int64_t pid, int32_t seq, int64_t ts)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, codec);
    if (pid >= 0) {
        bb.producer_id = pid;
        bb.producer_epoch = 0;
        bb.base_sequence = seq;
    }
    char kb[32], vb[32];
    for (int i = 0; i < n; i++) {
        int key = (k + i) % m->nkeys;
        snprintf(kb, sizeof kb, "key-%05d", key);
        snprintf(vb, sizeof vb, "v%d-%d", key, round);
        kp_bytes_t kk = {(const uint8_t *)kb, (int32_t)strlen(kb)};
        kp_bytes_t vv = {tomb ? NULL : (const uint8_t *)vb, tomb ? -1 : (int32_t)strlen(vb)};
        assert_int_equal(kp_batch_builder_add(&bb, ts, kk, vv, NULL, 0), 0);
        m->key[m->n + i] = key;
        snprintf(m->val[m->n + i], sizeof m->val[0], "%s", tomb ? "" : vb);
        m->latest[key] = m->n + i;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kp_batch_builder_finish(&bb, &b), 0);
    ks_append_result_t res;
    ks_produce_outcome_t o;
    assert_int_equal(ks_part_append_idempotent(p, b.data, b.len, ts, &res, &o), 0);
    assert_int_equal(o, KS_PRODUCE_APPENDED);
    assert_true(res.base_offset == m->n);
    m->n += n;
    kp_buf_deinit(&b);
    kp_batch_builder_deinit(&bb);
}

static void sync_all(t_env_t *e, ks_part_t *p)
{
    t_sync_t w = {0, 0};
    assert_int_equal(ks_part_sync(p, ks_part_log_end(p), t_sync_cb, &w), 0);
    t_wait_syncs(e->s, &w, 1);
    assert_int_equal(w.status, 0);
}

typedef struct {
    int records, tombs, batches, empty_batches;
    int codec_mismatch;
    bool *seen_key;
    int64_t *last_off; /* optional: per key, the highest offset read (-1 none) */
} scan_t;

/* Reads the whole partition; every record must be the model's record at its offset, offsets
 * strictly increase, and no record may be superseded when `compacted`. */
static void scan_check(ks_part_t *p, const model_t *m, bool compacted, int codec, scan_t *sc)
{
    bool *seen_key = sc->seen_key;
    int64_t *last_off = sc->last_off;
    memset(sc, 0, sizeof *sc);
    sc->seen_key = seen_key;
    sc->last_off = last_off;
    for (int k = 0; last_off && k < m->nkeys; k++)
        last_off[k] = -1;
    /* Below the cleaner checkpoint a key appears once at most: at its latest offset there. */
    int64_t fdirty = ks_part_first_dirty(p);
    int64_t *below = malloc(sizeof *below * (size_t)m->nkeys);
    for (int k = 0; k < m->nkeys; k++)
        below[k] = -1;
    for (int64_t o = 0; o < fdirty && o < m->n; o++)
        below[m->key[o]] = o;
    int64_t off = ks_part_log_start(p), end = ks_part_log_end(p), prev = -1;
    kp_buf_t out;
    kp_buf_init(&out);
    while (off < end) {
        kp_buf_reset(&out);
        assert_int_equal(ks_part_read(p, off, 1 << 20, true, &out), 0);
        assert_true(out.len > 0); /* below the log end a batch always answers */
        kp_batch_iter_t it;
        const uint8_t *b;
        size_t blen;
        kp_batch_iter_init(&it, out.data, out.len, true);
        while (kp_batch_iter_next(&it, &b, &blen) == 1) {
            kp_records_t r;
            kp_record_t rec;
            assert_int_equal(kp_records_init(&r, b, blen, 1 << 26), 0);
            assert_int_equal(kp_batch_validate(b, blen, &r.hdr), 0);
            sc->batches++;
            if (r.hdr.records_count == 0)
                sc->empty_batches++;
            else if ((r.hdr.attributes & 7) != codec)
                sc->codec_mismatch++;
            int rc;
            while ((rc = kp_records_next(&r, &rec)) == 1) {
                int64_t o = r.hdr.base_offset + rec.offset_delta;
                if (o < off)
                    continue;
                assert_true(o > prev);
                assert_true(o < m->n);
                prev = o;
                char kb[32];
                snprintf(kb, sizeof kb, "key-%05d", m->key[o]);
                assert_int_equal(rec.key.len, (int)strlen(kb));
                assert_memory_equal(rec.key.ptr, kb, strlen(kb));
                if (m->val[o][0]) {
                    assert_int_equal(rec.value.len, (int)strlen(m->val[o]));
                    assert_memory_equal(rec.value.ptr, m->val[o], strlen(m->val[o]));
                } else {
                    assert_int_equal(rec.value.len, -1);
                    sc->tombs++;
                }
                assert_true(r.hdr.base_timestamp + rec.timestamp_delta == T0 ||
                            r.hdr.base_timestamp + rec.timestamp_delta > T0);
                if (compacted && o < fdirty)
                    assert_true(below[m->key[o]] == o);
                if (sc->seen_key)
                    sc->seen_key[m->key[o]] = true;
                if (sc->last_off)
                    sc->last_off[m->key[o]] = o;
                sc->records++;
            }
            assert_int_equal(rc, 0);
            off = r.hdr.base_offset + r.hdr.last_offset_delta + 1;
            kp_records_deinit(&r);
        }
    }
    kp_buf_deinit(&out);
    free(below);
}

static int live_keys(const model_t *m)
{
    int n = 0;
    for (int k = 0; k < m->nkeys; k++)
        n += m->latest[k] >= 0 && m->val[m->latest[k]][0];
    return n;
}

static ks_topic_config_t compact_cfg(int64_t seg_bytes)
{
    ks_topic_config_t c;
    ks_topic_config_default(&c);
    c.cleanup_policy = KS_CLEANUP_COMPACT;
    c.segment_bytes = seg_bytes;
    c.delete_retention_ms = 60000;
    return c;
}

/* nkeys x rounds updates in batches of 10, then tombstones for every 10th key. */
static void fill(ks_part_t *p, model_t *m, int codec, int rounds, int64_t pid)
{
    int32_t seq = 0;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < m->nkeys; k += 10, seq += 10)
            append_keyed(p, m, codec, k, 10, r, false, pid, seq, T0 + r);
    for (int k = 0; k < m->nkeys; k += 10)
        append_keyed(p, m, codec, k, 1, rounds, true, -1, 0, T0 + rounds);
}

/* Clean until nothing is left to do (passes when the map is small). */
static int clean_all(ks_part_t *p, int64_t now)
{
    int passes = 0, rc;
    while ((rc = ks_part_clean(p, now, true)) == 0)
        passes++;
    assert_int_equal(rc, K_ERR_AGAIN);
    return passes;
}

static void test_latest_value_offsets_and_tombstones(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(8192);
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 200, 20000);
    fill(p, &m, KP_COMPRESSION_NONE, 20, -1);
    append_keyed(p, &m, 0, 0, 1, 99, false, -1, 0, T0 + 50); /* key 0 lives again */
    for (int r = 0; r < 3; r++) /* push the tombstones out of the active segment */
        for (int k = 1; k < m.nkeys; k += 10)
            append_keyed(p, &m, 0, k, 9, 30 + r, false, -1, 0, T0 + 51);
    sync_all(&e, p);
    int64_t before = ks_part_size_bytes(p), end = ks_part_log_end(p);
    assert_true(clean_all(p, T0 + 1000) >= 1);
    assert_int_equal(ks_part_clean(p, T0 + 1000, false), K_ERR_AGAIN); /* nothing dirty */
    int64_t after = ks_part_size_bytes(p);
    assert_true(ks_part_log_end(p) == end);
    assert_true(after * 5 < before); /* 20 versions of each key down to about one */
    bool seen[200] = {0};
    scan_t sc = {.seen_key = seen};
    scan_check(p, &m, true, KP_COMPRESSION_NONE, &sc);
    for (int k = 0; k < m.nkeys; k++) /* every live key's latest value is there */
        if (m.val[m.latest[k]][0])
            assert_true(seen[k]);
    assert_true(sc.tombs >= 19); /* kept until the delete horizon */
    ks_cleaner_stats_t st;
    ks_store_cleaner_stats(e.s, &st);
    assert_true(st.cleans >= 1 && st.records_removed > 3000 && st.tombstones_removed == 0);
    /* Past delete.retention.ms the tombstones go (the active segment's excepted). */
    append_keyed(p, &m, 0, 7, 1, 100, false, -1, 0, T0 + 60); /* roll room */
    sync_all(&e, p);
    assert_true(clean_all(p, T0 + 1000 + 60001) >= 1);
    scan_check(p, &m, true, KP_COMPRESSION_NONE, &sc);
    ks_store_cleaner_stats(e.s, &st);
    assert_true(st.tombstones_removed >= 19);
    assert_true(sc.tombs <= 2);
    /* The cleaned log survives a clean and an unclean restart byte for byte in content. */
    t_env_reopen(&e);
    p = t_part(&e, "c", 0);
    assert_true(ks_part_log_end(p) == end + 1);
    scan_check(p, &m, true, KP_COMPRESSION_NONE, &sc);
    t_env_close(&e);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "c", 0);
    assert_true(ks_part_log_end(p) == end + 1);
    scan_check(p, &m, true, KP_COMPRESSION_NONE, &sc);
    assert_true(ks_part_first_dirty(p) > 0);
    model_free(&m);
    t_env_deinit(&e);
}

/* The uplink's hold: nothing at or above the retention floor is compacted (superseded values
 * must still be forwarded); raising the floor lets the cleaner in. */
static int64_t floor_of(void *ud, const ks_part_t *p)
{
    (void)p;
    return *(const int64_t *)ud;
}

static void test_floor_holds_back_the_cleaner(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(8192);
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 200, 20000);
    fill(p, &m, KP_COMPRESSION_NONE, 10, -1);
    sync_all(&e, p);
    int64_t floor = 0, before = ks_part_size_bytes(p);
    ks_store_set_retention_floor(e.s, floor_of, &floor);
    assert_int_equal(ks_part_clean(p, T0 + 1000, true), K_ERR_AGAIN);
    assert_int_equal(ks_part_size_bytes(p), before);
    floor = ks_part_log_end(p); /* everything forwarded */
    assert_true(clean_all(p, T0 + 1000) >= 1);
    assert_true(ks_part_size_bytes(p) < before);
    ks_store_set_retention_floor(e.s, NULL, NULL);
    model_free(&m);
    t_env_deinit(&e);
}

static void test_small_map_cleans_in_passes(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.cleaner.dedupe_buffer_size = 24 * 64; /* 64 slots: 57 keys a pass */
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(4096);
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 300, 20000);
    fill(p, &m, KP_COMPRESSION_NONE, 6, -1);
    sync_all(&e, p);
    int passes = clean_all(p, T0 + 1000);
    assert_true(passes >= 5);
    ks_cleaner_stats_t st;
    ks_store_cleaner_stats(e.s, &st);
    assert_true(st.passes_map_full >= 4);
    scan_t sc = {0};
    scan_check(p, &m, true, KP_COMPRESSION_NONE, &sc);
    assert_true(sc.records <= live_keys(&m) + 30 + 40);
    model_free(&m);
    t_env_deinit(&e);
}

static void test_every_codec(void **state)
{
    (void)state;
    int codecs[] = {KP_COMPRESSION_GZIP, KP_COMPRESSION_SNAPPY, KP_COMPRESSION_LZ4,
                    KP_COMPRESSION_ZSTD};
    for (int i = 0; i < 4; i++) {
        t_env_t e;
        t_env_init(&e);
        t_env_open(&e);
        ks_topic_config_t c = compact_cfg(4096);
        ks_part_t *p = t_topic(&e, "c", 1, &c);
        model_t m;
        model_init(&m, 100, 5000);
        fill(p, &m, codecs[i], 8, -1);
        sync_all(&e, p);
        int64_t before = ks_part_size_bytes(p);
        assert_true(clean_all(p, T0 + 1000) >= 1);
        assert_true(ks_part_size_bytes(p) < before);
        scan_t sc = {0};
        scan_check(p, &m, true, codecs[i], &sc);
        assert_int_equal(sc.codec_mismatch, 0); /* recompressed with the batch's codec */
        assert_true(sc.records >= 90);
        model_free(&m);
        t_env_deinit(&e);
    }
}

static void test_producer_last_batch_kept(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(2048);
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 50, 5000);
    /* Producer 7 writes every key 4 times, then a plain producer overwrites them all. */
    fill(p, &m, KP_COMPRESSION_LZ4, 4, 7);
    for (int r = 9; r < 14; r++)
        for (int k = 0; k < 50; k += 10)
            append_keyed(p, &m, KP_COMPRESSION_LZ4, k, 10, r, false, -1, 0, T0 + 9);
    sync_all(&e, p);
    assert_true(clean_all(p, T0 + 1000) >= 1);
    scan_t sc = {0};
    scan_check(p, &m, true, KP_COMPRESSION_LZ4, &sc);
    assert_int_equal(sc.empty_batches, 1); /* producer 7's last batch, records gone */
    /* Producer state rebuilt from the log alone (snapshots removed) still continues. */
    t_env_close(&e);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -f %s/c-0/*.snapshot", e.dir);
    assert_int_equal(system(cmd), 0);
    t_env_unclean(&e);
    t_env_open(&e);
    p = t_part(&e, "c", 0);
    assert_int_equal(ks_part_producer_count(p), 1);
    append_keyed(p, &m, KP_COMPRESSION_LZ4, 0, 10, 10, false, 7, 200, T0 + 10);
    model_free(&m);
    t_env_deinit(&e);
}

/* Every key deleted and the active segment rolled away empty (the tick does that): every
 * offset below the log end must still be answered by a batch, or a consumer parked in the
 * removed tail could never reach the end. */
static void test_log_end_stays_readable(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(1024);
    c.max_compaction_lag_ms = 5;
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 20, 2000);
    for (int r = 0; r < 5; r++)
        append_keyed(p, &m, KP_COMPRESSION_GZIP, 0, 20, r, false, -1, 0, T0);
    for (int k = 0; k < 20; k += 5)
        append_keyed(p, &m, KP_COMPRESSION_GZIP, k, 5, 9, true, -1, 0, T0);
    ks_store_tick(e.s, T0 + 100); /* rolls the idle active segment: it is empty now */
    sync_all(&e, p);
    int64_t end = ks_part_log_end(p);
    assert_true(clean_all(p, T0 + 1000) >= 1);
    assert_true(clean_all(p, T0 + 1000 + 60001) >= 1); /* the tombstones go too */
    scan_t sc = {0};
    scan_check(p, &m, true, KP_COMPRESSION_GZIP, &sc); /* asserts a batch at every step */
    assert_int_equal(sc.records, 0);
    assert_int_equal(sc.empty_batches, 1);
    kp_buf_t out;
    kp_buf_init(&out);
    for (int64_t off = 0; off < end; off++) {
        kp_buf_reset(&out);
        assert_int_equal(ks_part_read(p, off, 1 << 16, true, &out), 0);
        kp_batch_hdr_t h;
        assert_int_equal(kp_batch_hdr_parse(out.data, out.len, &h), 0);
        assert_true(h.base_offset + h.last_offset_delta >= off);
    }
    assert_true(ks_part_log_end(p) == end);
    kp_buf_deinit(&out);
    model_free(&m);
    t_env_deinit(&e);
}

static void test_keyless_records_removed(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = compact_cfg(2048);
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    for (int i = 0; i < 40; i++)
        t_append(p, 3, T0, 100); /* no keys (e.g. written before the topic was compacted) */
    sync_all(&e, p);
    int64_t end = ks_part_log_end(p);
    assert_true(clean_all(p, T0 + 1000) >= 1);
    ks_cleaner_stats_t st;
    ks_store_cleaner_stats(e.s, &st);
    assert_true(st.invalid_records > 90);
    assert_true(ks_part_log_end(p) == end);
    t_env_deinit(&e);
}

static void test_cleaner_thread_and_runtime_policy(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.cleaner.enable = true;
    e.o.cleaner.threads = 2;
    e.o.cleaner.backoff_ms = 20;
    e.o.cleaner.io_max_bytes_per_second = 50e6;
    t_env_open(&e);
    assert_true(ks_store_cleaner_enabled(e.s));
    ks_topic_config_t c;
    ks_topic_config_default(&c);
    c.segment_bytes = 4096;
    ks_part_t *p = t_topic(&e, "c", 1, &c);
    model_t m;
    model_init(&m, 100, 5000);
    fill(p, &m, KP_COMPRESSION_SNAPPY, 10, -1);
    sync_all(&e, p);
    ks_topic_t *t = ks_part_topic(p);
    assert_int_equal(ks_topic_set_config(t, "cleanup.policy", "bogus"), K_ERR_INVAL);
    assert_int_equal(ks_topic_set_config(t, "min.cleanable.dirty.ratio", "0.1"), 0);
    assert_int_equal(ks_topic_set_config(t, "cleanup.policy", "compact,delete"), 0);
    ks_cleaner_stats_t st = {0};
    for (int i = 0; i < 500 && st.cleans == 0; i++) {
        usleep(10000);
        ks_store_run_completions(e.s);
        ks_store_cleaner_stats(e.s, &st);
    }
    assert_true(st.cleans >= 1 && st.threads == 2);
    assert_true(st.last_bytes_out < st.last_bytes_in && st.last_mb_per_sec > 0);
    /* Persisted: the override comes back after a restart. */
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "c", 1);
    assert_int_equal(ks_topic_config(t)->cleanup_policy, KS_CLEANUP_COMPACT_DELETE);
    p = ks_topic_part(t, 0);
    scan_t sc = {0};
    scan_check(p, &m, false, KP_COMPRESSION_SNAPPY, &sc);
    assert_true(sc.records < 400);
    model_free(&m);
    t_env_deinit(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Death at every I/O step of a pass                                                            */

static atomic_int step_left; /* > 0: the call that brings it to 0 ends the process */
static atomic_int steps_seen;

static void step(void)
{
    atomic_fetch_add(&steps_seen, 1);
    if (atomic_load(&step_left) > 0 && atomic_fetch_sub(&step_left, 1) == 1)
        _exit(0);
}
static ssize_t d_pwrite(int fd, const void *b, size_t n, off_t o)
{
    step();
    return pwrite(fd, b, n, o);
}
static int d_fdatasync(int fd)
{
    step();
    return fdatasync(fd);
}
static int d_fsync(int fd)
{
    step();
    return fsync(fd);
}
static int d_rename(const char *a, const char *b)
{
    step();
    return rename(a, b);
}
static int d_unlink(const char *a)
{
    step();
    return unlink(a);
}
static int d_fsync_dir(const char *d)
{
    step();
    return ks_io_posix.fsync_dir(d);
}

static void death_seam(void)
{
    ks_io = ks_io_posix;
    ks_io.pwrite = d_pwrite;
    ks_io.fdatasync = d_fdatasync;
    ks_io.fsync = d_fsync;
    ks_io.rename = d_rename;
    ks_io.unlink = d_unlink;
    ks_io.fsync_dir = d_fsync_dir;
}

static void make_log(t_env_t *e, model_t *m)
{
    t_env_open(e);
    ks_topic_config_t c = compact_cfg(1500);
    ks_part_t *p = t_topic(e, "c", 1, &c);
    fill(p, m, KP_COMPRESSION_ZSTD, 5, -1);
    sync_all(e, p);
    t_env_close(e);
}

static void test_death_at_every_step(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    model_t m;
    model_init(&m, 60, 5000);
    make_log(&e, &m);
    /* Count the steps of one pass. */
    t_env_open(&e);
    death_seam();
    atomic_store(&steps_seen, 0);
    assert_int_equal(ks_part_clean(t_part(&e, "c", 0), T0 + 1000, true), 0);
    int total = atomic_load(&steps_seen);
    ks_io = ks_io_posix;
    t_env_deinit(&e);
    assert_true(total > 10);
    for (int n = 1; n <= total; n++) {
        t_env_init(&e);
        model_free(&m);
        model_init(&m, 60, 5000);
        make_log(&e, &m);
        pid_t pid = fork();
        if (pid == 0) {
            e.o.log = NULL;
            ks_store_t *s;
            if (ks_store_open(&e.o, &s) != 0)
                _exit(2);
            death_seam();
            atomic_store(&step_left, n);
            ks_part_clean(ks_topic_part(ks_topic_find(s, "c", 1), 0), T0 + 1000, true);
            _exit(3); /* the step count moved: still a valid run */
        }
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 2);
        t_env_open(&e); /* unclean: the child's open removed the marker */
        ks_part_t *p = t_part(&e, "c", 0);
        assert_true(ks_part_log_end(p) == m.n);
        bool seen[60] = {0};
        scan_t sc = {.seen_key = seen};
        scan_check(p, &m, false, KP_COMPRESSION_ZSTD, &sc);
        for (int k = 0; k < 60; k++) /* every key's latest record is still there */
            assert_true(seen[k]);
        /* And the next pass completes the job. */
        clean_all(p, T0 + 1000);
        scan_check(p, &m, true, KP_COMPRESSION_ZSTD, &sc);
        t_env_deinit(&e);
    }
    model_free(&m);
}


/* One run in a forked child under the power-cut seam (ks_powercut.h), from a store that is
 * wholly durable: open the store and, when `clean`, run one pass; the cut_at-th mutating call
 * cuts the power (0: after the run). The parent then writes back one disk the cut may leave.
 * Returns the child's number of steps when cut_at is 0. */
static int pc_run(t_env_t *e, int cut_at, bool clean, unsigned *seed, long *lost, long *calls)
{
    char logp[4200];
    pc_t pc;
    pc_snapshot(&pc, e->dir);
    snprintf(logp, sizeof logp, "%s.pclog", e->dir);
    int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    assert_true(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        e->o.log = NULL;
        pc_seam_install(lfd, cut_at);
        ks_store_t *s;
        if (ks_store_open(&e->o, &s) != 0)
            _exit(2);
        if (clean)
            ks_part_clean(ks_topic_part(ks_topic_find(s, "c", 1), 0), T0 + 1000, true);
        int steps = atomic_load(&pc_steps);
        _exit(10 + (steps > 245 ? 245 : steps));
    }
    close(lfd);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 4);
    pc_replay(&pc, logp);
    *lost += pc_materialize(&pc, seed);
    *calls += pc.nrecs;
    pc_free(&pc);
    unlink(logp);
    return WEXITSTATUS(st) - 10;
}

/* A power cut at every I/O step of opening the store and one cleaner pass (writing the cleaned
 * segments and their indexes, the fsyncs, the journal, the renames, the directory fsyncs, the
 * removals): for each step, three disks the cut may leave (ks_powercut.h: unsynced writes
 * dropped, kept, torn or zero-filled; unsynced names kept up to a random point), the third
 * with a second cut at a random step of the recovery that follows. The store then opens and
 * must serve exactly the acknowledged records (all were fsynced before the pass), each at its
 * offset, every batch whole (CRC checked), and the next pass must finish the job. */
static void test_power_cut_at_every_step(void **state)
{
    (void)state;
    t_env_t e;
    model_t m;
    int total = 0;
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int variants = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 12 : 3;
    long lost = 0, calls = 0, second = 0;
    /* n = 0 cuts nowhere: it counts the steps, and its cut is the one after the pass. */
    for (int n = 0; n == 0 || n <= total; n++) {
        for (int v = 0; v < (n ? variants : 1); v++) {
            unsigned vs = seed * 7919u + (unsigned)(n * 31 + v);
            t_env_init(&e);
            model_init(&m, 60, 5000);
            make_log(&e, &m);
            int steps = pc_run(&e, n, true, &vs, &lost, &calls);
            if (n == 0) {
                total = steps;
                assert_true(total > 20 && total < 235);
            }
            if (v % 3 == 2) { /* and the power goes again while recovering */
                pc_run(&e, 1 + (int)(rand_r(&vs) % 12), false, &vs, &lost, &calls);
                second++;
            }
            t_env_open(&e);
            ks_part_t *p = t_part(&e, "c", 0);
            assert_true(ks_part_log_end(p) == m.n);
            bool seen[60] = {0};
            scan_t sc = {.seen_key = seen};
            scan_check(p, &m, false, KP_COMPRESSION_ZSTD, &sc);
            for (int k = 0; k < 60; k++)
                assert_true(seen[k]);
            clean_all(p, T0 + 1000);
            scan_check(p, &m, true, KP_COMPRESSION_ZSTD, &sc);
            model_free(&m);
            t_env_deinit(&e);
        }
    }
    printf("power cut: %d steps x %d disks each, %ld with a second cut during recovery (seed "
           "%u): %ld logged calls replayed, %ld unsynced changes dropped\n", total, variants,
           second, seed, calls, lost);
}

/* Power cuts at random moments while the cleaner thread compacts and a producer keeps
 * appending and fsyncing (acks=all): after each cut, every record acknowledged before it is
 * served at its offset (each key's latest acknowledged value or a newer one), nothing beyond
 * what was written, every batch whole, and cleaning goes on. */
static void test_power_cut_while_producing(void **state)
{
    (void)state;
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int runs = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 120 : 24;
    int est = 0, cut_at = 0;
    long lost = 0, calls = 0, acked_sum = 0, written_sum = 0;
    int passes_begun = 0, swaps = 0;
    for (int r = 0; r <= runs; r++) {
        unsigned vs = seed * 104729u + (unsigned)r;
        t_env_t e;
        model_t m;
        t_env_init(&e);
        model_init(&m, 60, 8000);
        make_log(&e, &m);
        int64_t base = m.n;
        const int batches = 40;
        for (int i = 0; i < batches; i++)
            model_push(&m, i * 10, 10, 100 + i);
        char logp[4200];
        pc_t pc;
        pc_snapshot(&pc, e.dir);
        snprintf(logp, sizeof logp, "%s.pclog", e.dir);
        int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        assert_true(lfd >= 0);
        cut_at = r ? 1 + (int)(rand_r(&vs) % (unsigned)est) : 0; /* run 0 measures */
        pid_t pid = fork();
        if (pid == 0) {
            e.o.log = NULL;
            e.o.cleaner.enable = true;
            e.o.cleaner.threads = 1;
            e.o.cleaner.backoff_ms = 2;
            pc_seam_install(lfd, cut_at);
            ks_store_t *s;
            if (ks_store_open(&e.o, &s) != 0)
                _exit(2);
            ks_part_t *p = ks_topic_part(ks_topic_find(s, "c", 1), 0);
            model_t cm = m; /* the child's appends, same records as the parent's model */
            cm.n = base;
            for (int i = 0; i < batches; i++) {
                append_keyed(p, &cm, KP_COMPRESSION_ZSTD, i * 10, 10, 100 + i, false, -1, 0,
                             T0 + 100 + i);
                if (ks_part_sync_now(p, cm.n) != 0)
                    _exit(5);
                pc_note(cm.n); /* acknowledged */
                ks_store_run_completions(s);
                usleep(500);
            }
            ks_cleaner_stats_t st = {0};
            for (int i = 0; i < 2000 && st.cleans < 2; i++) {
                usleep(1000);
                ks_store_run_completions(s);
                ks_store_cleaner_stats(s, &st);
            }
            int steps = atomic_load(&pc_steps);
            _exit(10 + (steps / 8 > 245 ? 245 : steps / 8));
        }
        close(lfd);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 5);
        if (r == 0) {
            est = (WEXITSTATUS(st) - 10) * 8;
            assert_true(est > 100);
        }
        pc_replay(&pc, logp);
        int64_t acked = pc.note < 0 ? base : pc.note;
        bool began = false, swapped = false;
        for (int i = 0; i < pc.nops; i++) {
            began |= strstr(pc.ops[i].path, ".cleaned") != NULL;
            swapped |= pc.ops[i].op == 'r' && strstr(pc.ops[i].path, ".cleaned") != NULL;
        }
        passes_begun += began;
        swaps += swapped;
        lost += pc_materialize(&pc, &vs);
        calls += pc.nrecs;
        pc_free(&pc);
        unlink(logp);
        t_env_open(&e);
        ks_part_t *p = t_part(&e, "c", 0);
        int64_t end = ks_part_log_end(p);
        assert_true(end >= acked && end <= m.n);
        acked_sum += acked - base;
        written_sum += end - base;
        int64_t last_off[60];
        scan_t sc = {.last_off = last_off};
        scan_check(p, &m, false, KP_COMPRESSION_ZSTD, &sc);
        for (int k = 0; k < 60; k++) { /* the latest acknowledged record of k, or newer */
            int64_t want = -1;
            for (int64_t o = 0; o < acked; o++)
                if (m.key[o] == k)
                    want = o;
            assert_true(last_off[k] >= want);
        }
        clean_all(p, T0 + 1000);
        scan_check(p, &m, true, KP_COMPRESSION_ZSTD, &sc);
        model_free(&m);
        t_env_deinit(&e);
    }
    printf("power cut while producing: %d cuts among ~%d steps (seed %u), %d after a pass "
           "began writing, %d after a swap began: %ld of %d appended records acknowledged "
           "before the cut, %ld on disk after recovery; %ld calls replayed, %ld unsynced "
           "changes dropped\n", runs, est, seed, passes_begun, swaps, acked_sum,
           (runs + 1) * 400, written_sum, calls, lost);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_value_offsets_and_tombstones),
        cmocka_unit_test(test_small_map_cleans_in_passes),
        cmocka_unit_test(test_floor_holds_back_the_cleaner),
        cmocka_unit_test(test_every_codec),
        cmocka_unit_test(test_producer_last_batch_kept),
        cmocka_unit_test(test_log_end_stays_readable),
        cmocka_unit_test(test_keyless_records_removed),
        cmocka_unit_test(test_cleaner_thread_and_runtime_policy),
        cmocka_unit_test(test_death_at_every_step),
        cmocka_unit_test(test_power_cut_at_every_step),
        cmocka_unit_test(test_power_cut_while_producing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

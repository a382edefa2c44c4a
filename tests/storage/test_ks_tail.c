/*
 * Recovery from the tail mark (storage/recovery.c): after an unclean stop, the segment holding
 * the recovery point is re-read from the checkpointed position, not from byte 0.
 *
 *   - The recovered state (log end, every .log/.index/.timeindex byte, max timestamp and its
 *     offset, producer state) is exactly what a scan from byte 0 gives, for a power cut at
 *     every I/O step of a write sequence (ks_powercut.h: unsynced writes dropped, kept, torn or
 *     zero-filled) and for a bit flipped in the unflushed tail.
 *   - The bytes recovery reads through the I/O seam are bounded by the unflushed tail plus a
 *     constant, while a scan from byte 0 reads the whole active segment.
 *   - A checkpoint that disagrees with the files (index shorter than the mark, segment shorter
 *     than the mark) falls back to the full scan, and the log says so.
 */
#include "tests/storage/ks_test.h"
#include "tests/storage/ks_powercut.h"

#include <sys/wait.h>

#include "storage/ks_int.h"

/* Log lines seen, by kind: the tail path, the full-scan fallback. */
static int tl_tail, tl_fallback, tl_whole;
static void tl_log(int level, const char *msg, void *ud)
{
    (void)ud;
    if (strstr(msg, "from the checkpointed tail mark at"))
        tl_tail++;
    if (strstr(msg, "not usable")) {
        tl_fallback++;
        if (getenv("DEPOT_TEST_VERBOSE"))
            fprintf(stderr, "  fallback: %s\n", msg);
    }
    if (strstr(msg, "scanning it whole"))
        tl_whole++;
    if (level <= KS_LOG_WARN && getenv("DEPOT_TEST_VERBOSE") && !strstr(msg, "not usable"))
        fprintf(stderr, "  [%d] %s\n", level, msg);
}

/* Under the store lock: no candidate mark pending and no checkpoint being written. */
static bool quiet(ks_store_t *s, ks_part_t *p)
{
    pthread_mutex_lock(&s->mu);
    bool q = p->cand_seg == NULL && !s->ckpt_jobs && !s->ckpt_writing && !s->mark_moved;
    pthread_mutex_unlock(&s->mu);
    return q;
}

/* Makes a tail mark at the active segment's current end and writes the checkpoint carrying
 * it, the way the broker's tick does once per interval. */
static bool mark_now(ks_store_t *s, ks_part_t *p, int64_t *now)
{
    ks_store_tick(s, *now); /* the first tick only starts the interval */
    *now += KS_CHECKPOINT_INTERVAL_MS + 1;
    ks_store_tick(s, *now); /* due: candidate + flush request */
    for (int i = 0; i < 20000 && !quiet(s, p); i++) {
        usleep(100);
        ks_store_tick(s, *now); /* not due, but a published mark queues the checkpoint */
    }
    return quiet(s, p);
}

static int64_t tl_ts(unsigned *seed)
{
    /* Out of order on purpose: the max timestamp is not the last batch's. */
    return 1700000000000LL + (int64_t)(rand_r(seed) % 100000);
}

/* One idempotent batch; returns ks_part_append_idempotent's status (no cmocka assertion: it
 * also runs in forked children, where a failed assertion must not unwind into the runner). */
static int tl_produce(ks_part_t *p, int64_t pid, int32_t seq, int nrec, int64_t ts, size_t vsize)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.base_sequence = seq;
    char v[2048];
    if (vsize > sizeof v)
        vsize = sizeof v;
    for (int i = 0; i < nrec; i++) {
        memset(v, 'a' + (seq + i) % 26, vsize);
        kp_bytes_t key = {NULL, -1}, val = {(const uint8_t *)v, (int32_t)vsize};
        if (kp_batch_builder_add(&bb, ts - i, key, val, NULL, 0) != 0)
            return K_ERR_NOMEM;
    }
    kp_buf_t b;
    kp_buf_init(&b);
    int rc = kp_batch_builder_finish(&bb, &b);
    kp_batch_builder_deinit(&bb);
    ks_append_result_t res;
    ks_produce_outcome_t o;
    if (rc == 0)
        rc = ks_part_append_idempotent(p, b.data, b.len, ts, &res, &o);
    if (rc == 0 && o != KS_PRODUCE_APPENDED)
        rc = K_ERR_INVAL;
    kp_buf_deinit(&b);
    return rc;
}

static void read_file(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    *out = malloc(*len + 1);
    assert_non_null(*out);
    assert_true(pread(fd, *out, *len, 0) == (ssize_t)*len);
    close(fd);
}

/* Rewrites dir's recovery-point checkpoint with the tail marks removed (three fields a line),
 * so the next open scans the recovery point's segment from byte 0: the reference. */
static void strip_marks(const char *dir)
{
    char path[4400], tmp[4500];
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", dir);
    snprintf(tmp, sizeof tmp, "%s.strip", path);
    FILE *in = fopen(path, "r");
    if (!in)
        return;
    FILE *out = fopen(tmp, "w");
    assert_non_null(out);
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        char *sp = strchr(line, ' ');
        sp = sp ? strchr(sp + 1, ' ') : NULL;
        sp = sp ? strchr(sp + 1, ' ') : NULL;
        if (sp)
            strcpy(sp, "\n");
        fputs(line, out);
    }
    fclose(in);
    fclose(out);
    assert_int_equal(rename(tmp, path), 0);
}

/* The mark's position in dir's checkpoint for partition t-0 (-1 if none). */
static int64_t ckpt_mark_pos(const char *dir, int64_t *base)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", dir);
    FILE *in = fopen(path, "r");
    int64_t pos = -1;
    *base = -1;
    if (!in)
        return -1;
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        long long b, m;
        if (sscanf(line, "t 0 %lld %lld", &b, &m) == 2) {
            pos = m;
            *base = b;
        } else if (sscanf(line, "t 0 %lld", &b) == 1) {
            *base = b;
        }
    }
    fclose(in);
    return pos;
}

/* The recovered state of t-0 in two stores must be the same, byte for byte on disk. */
static void expect_same(t_env_t *a, t_env_t *b)
{
    ks_part_t *pa = t_part(a, "t", 0), *pb = t_part(b, "t", 0);
    assert_true(ks_part_log_end(pa) == ks_part_log_end(pb));
    assert_true(ks_part_log_start(pa) == ks_part_log_start(pb));
    int64_t oa = -2, ob = -2, ta = -2, tb = -2;
    assert_int_equal(ks_part_max_timestamp(pa, &oa, &ta), ks_part_max_timestamp(pb, &ob, &tb));
    assert_true(oa == ob && ta == tb);
    assert_int_equal(pa->nsegs, pb->nsegs);
    static const char *const sfx[3] = {".log", ".index", ".timeindex"};
    for (int i = 0; i < pa->nsegs; i++) {
        ks_seg_t *sa = pa->segs[i], *sb = pb->segs[i];
        assert_true(sa->base == sb->base && sa->size == sb->size);
        assert_true(sa->max_ts == sb->max_ts && sa->max_ts_off == sb->max_ts_off);
        assert_true(sa->since_index == sb->since_index && sa->tidx_last_ts == sb->tidx_last_ts);
        for (int k = 0; k < 3; k++) {
            char fa[4200], fb[4200];
            snprintf(fa, sizeof fa, "%s/t-0/%020lld%s", a->dir, (long long)sa->base, sfx[k]);
            snprintf(fb, sizeof fb, "%s/t-0/%020lld%s", b->dir, (long long)sb->base, sfx[k]);
            uint8_t *da, *db;
            size_t la, lb;
            read_file(fa, &da, &la);
            read_file(fb, &db, &lb);
            if (la != lb || (la && memcmp(da, db, la) != 0))
                fprintf(stderr, "differs: %s (%zu vs %zu bytes)\n", fa, la, lb);
            assert_true(la == lb);
            assert_true(la == 0 || memcmp(da, db, la) == 0);
            free(da);
            free(db);
        }
    }
    assert_int_equal(pa->pstate.n, pb->pstate.n);
    for (int i = 0; i < pa->pstate.n; i++) {
        ks_producer_t *x = &pa->pstate.v[i], *y = &pb->pstate.v[i];
        assert_true(x->pid == y->pid && x->epoch == y->epoch && x->nb == y->nb);
        assert_memory_equal(x->b, y->b, sizeof x->b);
    }
}

static void env_at(t_env_t *e, const char *dir)
{
    memset(e, 0, sizeof *e);
    e->dir = strdup(dir);
    e->dirs[0] = e->dir;
    e->o.dirs = e->dirs;
    e->o.n_dirs = 1;
    e->o.max_open_files = 64;
    e->o.node_id = 1;
    ks_topic_config_default(&e->o.defaults);
    e->o.log = tl_log;
    e->o.on_sync_ready = t_on_sync_ready;
}

/* ------------------------------------------------------------------------------------------ */

#define PC_BATCHES 36

/* The child's write sequence: idempotent batches with shuffled timestamps, an acks=all sync
 * every third batch, a tail mark every seventh, segments rolling every ~6 KB. */
static void pc_child_writes(ks_store_t *s, ks_part_t *p, unsigned seed)
{
    int64_t now = 0;
    int32_t seq[3] = {0, 0, 0};
    for (int i = 0; i < PC_BATCHES; i++) {
        int pid = i % 3, n = 1 + (int)(rand_r(&seed) % 4);
        int64_t ts = tl_ts(&seed);
        if (tl_produce(p, 1000 + pid, seq[pid], n, ts, 40 + (size_t)(rand_r(&seed) % 300)))
            _exit(5);
        seq[pid] += n;
        if (i % 3 == 2 && ks_part_sync_now(p, ks_part_log_end(p)) != 0)
            _exit(5);
        if (i % 7 == 6 && !mark_now(s, p, &now))
            _exit(6);
    }
}

static ks_part_t *t_part_of(ks_store_t *s)
{
    ks_topic_t *t = ks_topic_find(s, "t", 1);
    return t ? ks_topic_part(t, 0) : NULL;
}

static int pc_child(t_env_t *e, int lfd, int cut_at, unsigned seed)
{
    pid_t pid = fork();
    if (pid == 0) {
        e->o.log = NULL;
        pc_seam_install(lfd, cut_at);
        ks_store_t *s;
        if (ks_store_open(&e->o, &s) != 0)
            _exit(2);
        pc_child_writes(s, t_part_of(s), seed);
        int steps = atomic_load(&pc_steps);
        _exit(10 + (steps / 4 > 245 ? 245 : steps / 4));
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) >= 10);
    return (WEXITSTATUS(st) - 10) * 4;
}

/* A power cut at every mutating I/O step of the write sequence above (and a bit flipped in
 * the unflushed tail in one disk of each step): the open that starts at the checkpointed tail
 * mark must leave exactly the files and state that the open scanning from byte 0 leaves on a
 * copy of the same disk. */
static void test_tail_equals_full_scan_at_every_cut(void **state)
{
    (void)state;
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int variants = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 6 : 2;
    int total = 0, runs = 0, tails = 0, fallbacks = 0, flips = 0;
    long lost = 0;
    for (int n = 0; n == 0 || n <= total; n++) {
        for (int v = 0; v < (n ? variants : 1); v++) {
            unsigned vs = seed * 7919u + (unsigned)(n * 31 + v);
            t_env_t e;
            t_env_init(&e);
            e.o.log = tl_log;
            t_env_open(&e);
            ks_topic_config_t c = e.o.defaults;
            c.segment_bytes = 6000;
            c.index_interval_bytes = 300;
            t_topic(&e, "t", 1, &c);
            t_env_close(&e);
            pc_t pc;
            pc_snapshot(&pc, e.dir);
            char logp[4200];
            snprintf(logp, sizeof logp, "%s.pclog", e.dir);
            int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
            assert_true(lfd >= 0);
            int steps = pc_child(&e, lfd, n, seed); /* the same writes for every n */
            close(lfd);
            if (n == 0) {
                total = steps;
                assert_true(total > 60);
            }
            pc_replay(&pc, logp);
            lost += pc_materialize(&pc, &vs);
            pc_free(&pc);
            unlink(logp);
            int64_t base, mpos = ckpt_mark_pos(e.dir, &base);
            if (v == 1 && base >= 0) { /* flip one byte of the tail after the mark */
                char lp[4200];
                snprintf(lp, sizeof lp, "%s/t-0/%020lld.log", e.dir, (long long)base);
                int64_t size = t_file_size(lp), from = mpos > 0 ? mpos : 0;
                if (size > from) {
                    int fd = open(lp, O_RDWR);
                    uint8_t b;
                    off_t at = from + (off_t)(rand_r(&vs) % (unsigned)(size - from));
                    assert_true(pread(fd, &b, 1, at) == 1);
                    b ^= (uint8_t)(1 + rand_r(&vs) % 255);
                    assert_true(pwrite(fd, &b, 1, at) == 1);
                    close(fd);
                    flips++;
                }
            }
            char ref[4200], cmd[8600];
            snprintf(ref, sizeof ref, "%s.ref", e.dir);
            snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", e.dir, ref);
            assert_int_equal(system(cmd), 0);
            strip_marks(ref);
            tl_tail = tl_fallback = 0;
            t_env_open(&e);
            tails += tl_tail > 0;
            fallbacks += tl_fallback > 0;
            t_env_t r;
            env_at(&r, ref);
            t_env_open(&r);
            expect_same(&e, &r);
            /* And both go on from there alike. */
            ks_part_t *pe = t_part(&e, "t", 0), *pr = t_part(&r, "t", 0);
            assert_true(tl_produce(pe, 1000, 0, 1, 5, 10) == tl_produce(pr, 1000, 0, 1, 5, 10));
            assert_true(ks_part_log_end(pe) == ks_part_log_end(pr));
            t_env_deinit(&r);
            t_env_deinit(&e);
            runs++;
        }
    }
    printf("tail vs full scan: %d cut points x %d disks (seed %u): %d opens took the tail mark, "
           "%d fell back to a full scan, %d with a flipped tail byte, %ld unsynced changes "
           "dropped; all identical to the full scan\n", total, variants, seed, tails, fallbacks,
           flips, lost);
    assert_true(tails > runs / 3);
}

/* What a child leaves behind: a 15 MiB log in 4 MiB segments, the last part of it marked
 * (marked = true) or not, then a small unflushed tail, and a kill -9. */
#define BIG_BATCH_RECS 8
#define BIG_BATCH_VAL 2000
#define BIG_BATCHES 900
#define TAIL_BATCHES 4

static void big_child(t_env_t *e, bool marked)
{
    pid_t pid = fork();
    if (pid == 0) {
        e->o.log = NULL;
        ks_store_t *s;
        if (ks_store_open(&e->o, &s) != 0)
            _exit(2);
        ks_part_t *p = t_part_of(s);
        unsigned seed = 42;
        int64_t now = 0;
        for (int i = 0; i < BIG_BATCHES + TAIL_BATCHES; i++) {
            if (tl_produce(p, 7, i * BIG_BATCH_RECS, BIG_BATCH_RECS, tl_ts(&seed), BIG_BATCH_VAL))
                _exit(5);
            if (i == BIG_BATCHES - 1 && marked && !mark_now(s, p, &now))
                _exit(6);
            if (i == BIG_BATCHES - 1 && !marked) {
                /* The recovery point moves to the active segment, with no mark in it. */
                if (ks_part_sync_now(p, ks_part_log_end(p)) != 0)
                    _exit(5);
                pthread_mutex_lock(&s->mu);
                int rc = ks_ckpt_write(s, 0, KS_RP_FILE, true);
                pthread_mutex_unlock(&s->mu);
                if (rc)
                    _exit(7);
            }
        }
        _exit(0); /* kill -9: the page cache keeps every write, nothing is closed */
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Bytes read through the I/O seam by an unclean open: bounded by the unflushed tail plus a
 * constant when the checkpoint has a tail mark; the whole active segment without one. */
static void test_tail_bytes_bounded(void **state)
{
    (void)state;
    int64_t got[2], tail[2], active[2];
    for (int marked = 0; marked < 2; marked++) {
        t_env_t e;
        t_env_init(&e);
        e.o.log = tl_log;
        t_env_open(&e);
        ks_topic_config_t c = e.o.defaults;
        c.segment_bytes = 4 << 20;
        t_topic(&e, "t", 1, &c);
        t_env_close(&e);
        big_child(&e, marked);
        int64_t base, mpos = ckpt_mark_pos(e.dir, &base);
        char lp[4200];
        snprintf(lp, sizeof lp, "%s/t-0/%020lld.log", e.dir, (long long)base);
        active[marked] = t_file_size(lp);
        assert_true(active[marked] > 1 << 20); /* the recovery point's segment is big */
        tail[marked] = active[marked] - (mpos > 0 ? mpos : 0);
        if (marked)
            assert_true(mpos > 0);
        kf_install();
        atomic_store(&kf_pread_bytes, 0);
        tl_tail = tl_whole = 0;
        t_env_open(&e);
        got[marked] = atomic_load(&kf_pread_bytes);
        kf_uninstall();
        ks_part_t *p = t_part(&e, "t", 0);
        assert_true(ks_part_log_end(p) == (BIG_BATCHES + TAIL_BATCHES) * BIG_BATCH_RECS);
        int64_t first;
        t_read_check(p, ks_part_log_end(p) - 1, 1, true, &first);
        /* The producer's state came back: its next sequence is accepted, a retry is not. */
        assert_int_equal(tl_produce(p, 7, (BIG_BATCHES + TAIL_BATCHES) * BIG_BATCH_RECS, 1, 5,
                                    10), 0);
        assert_int_not_equal(tl_produce(p, 7, 0, 1, 5, 10), 0);
        assert_int_equal(marked ? tl_tail : tl_whole, 1);
        t_env_deinit(&e);
    }
    printf("recovery reads: active segment %lld bytes; with a tail mark %lld bytes read for a "
           "%lld-byte unflushed tail; without one %lld bytes read\n", (long long)active[1],
           (long long)got[1], (long long)tail[1], (long long)got[0]);
    assert_true(got[1] <= tail[1] + 64 * 1024);
    assert_true(got[0] >= active[0]);
    assert_true(got[0] < 2 * active[0]); /* closed segments below the recovery point: unread */
}

/* Checkpoint marks that disagree with the files are not used: the segment is scanned whole
 * (and the log says why), and nothing acknowledged is lost. */
static void test_bad_mark_falls_back(void **state)
{
    (void)state;
    for (int how = 0; how < 3; how++) {
        t_env_t e;
        t_env_init(&e);
        e.o.log = tl_log;
        t_env_open(&e);
        ks_topic_config_t c = e.o.defaults;
        c.segment_bytes = 1 << 20;
        c.index_interval_bytes = 500;
        t_topic(&e, "t", 1, &c);
        ks_part_t *p = t_part(&e, "t", 0);
        unsigned seed = 9;
        for (int i = 0; i < 60; i++)
            assert_int_equal(tl_produce(p, 3, i * 4, 4, tl_ts(&seed), 200), 0);
        t_env_close(&e); /* the close writes a mark at the end of the active segment */
        t_env_unclean(&e);
        int64_t base, mpos = ckpt_mark_pos(e.dir, &base);
        assert_true(mpos > 0);
        char path[4200];
        static const char *const what[3] = {".index", ".log", ".timeindex"};
        snprintf(path, sizeof path, "%s/t-0/%020lld%s", e.dir, (long long)base, what[how]);
        int64_t size = t_file_size(path);
        /* index shorter than the mark / segment cut below the mark / torn time index */
        assert_int_equal(truncate(path, how == 1 ? size / 2 : size - 5), 0);
        tl_fallback = 0;
        t_env_open(&e);
        assert_int_equal(tl_fallback, 1);
        p = t_part(&e, "t", 0);
        if (how != 1)
            assert_true(ks_part_log_end(p) == 240);
        else
            assert_true(ks_part_log_end(p) < 240 && ks_part_log_end(p) > 0);
        int64_t first;
        t_read_check(p, ks_part_log_end(p) - 1, 1, true, &first);
        t_env_deinit(&e);
    }
}

int main(void)
{
    /* The power-cut model decides what survives, so real fsyncs only cost time here: use a
     * memory file system where there is one (the runs do several hundred opens). */
    if (access("/dev/shm", W_OK) == 0)
        t_tmp_base = "/dev/shm";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_mark_falls_back),
        cmocka_unit_test(test_tail_bytes_bounded),
        cmocka_unit_test(test_tail_equals_full_scan_at_every_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Log cleaner throughput, and what cleaning costs produce, on the disk of [dir].
 *
 *   build/bench/cleaner [dir] [MiB] [keys]     (default: ./bench/results/tmp, 128 MiB, 100000)
 *
 * Data: keyed records (16-byte key out of `keys`, 100-byte value), 200 records per lz4 batch,
 * appended to a compacted topic with 1 MiB segments, so the log holds MiB/keys/120 versions
 * of each key.
 *   1. produce alone:    append MiB with the cleaner off; MiB/s.
 *   2. clean alone:      one ks_part_clean pass over it on this thread; input MiB/s and the
 *                        size before/after.
 *   3. produce + clean:  a fresh store with one cleaner thread (backoff 10 ms, dirty ratio
 *                        0.1) while the same MiB is appended; produce MiB/s and the cleaner's
 *                        figures meanwhile, then the same with the cleaner's I/O capped at
 *                        20 MB/s (log.cleaner.io.max.bytes.per.second).
 * No fsync per append (the page cache write that acks=1 waits for).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol/kp_batch.h"
#include "storage/ks.h"

#define PER_BATCH 200

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void quiet(int level, const char *msg, void *ud)
{
    (void)ud;
    if (level <= 1)
        fprintf(stderr, "  storage: %s\n", msg);
}

static ks_store_t *open_store(const char *dir, bool cleaner, double io_cap)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s/bench-cleaner && mkdir -p %s/bench-cleaner", dir, dir);
    if (system(cmd) != 0)
        exit(1);
    static char path[4096];
    snprintf(path, sizeof path, "%s/bench-cleaner", dir);
    const char *dirs[] = {path};
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.n_dirs = 1;
    o.max_open_files = 256;
    o.node_id = 1;
    o.log = quiet;
    ks_topic_config_default(&o.defaults);
    o.cleaner.enable = cleaner;
    o.cleaner.threads = 1;
    o.cleaner.backoff_ms = 10;
    o.cleaner.io_max_bytes_per_second = io_cap;
    ks_store_t *s;
    if (ks_store_open(&o, &s) != 0) {
        fprintf(stderr, "cannot open a store in %s\n", path);
        exit(1);
    }
    return s;
}

static ks_part_t *topic(ks_store_t *s)
{
    ks_topic_config_t c;
    ks_topic_config_default(&c);
    c.cleanup_policy = KS_CLEANUP_COMPACT;
    c.segment_bytes = 1 << 20;
    c.min_cleanable_dirty_ratio = 0.1;
    ks_topic_t *t;
    if (ks_topic_create(s, "c", 1, &c, &t) != 0)
        exit(1);
    return ks_topic_part(t, 0);
}

/* Appends about mib MiB; returns MiB/s. */
static double produce(ks_store_t *s, ks_part_t *p, size_t mib, int keys)
{
    kp_buf_t b;
    kp_buf_init(&b);
    char key[32], val[100];
    memset(val, 'v', sizeof val);
    size_t total = 0, want = mib << 20;
    unsigned r = 1;
    double t0 = now_s();
    while (total < want) {
        kp_batch_builder_t bb;
        kp_batch_builder_init(&bb, KP_COMPRESSION_LZ4);
        for (int i = 0; i < PER_BATCH; i++) {
            r = r * 1103515245u + 12345u;
            snprintf(key, sizeof key, "key-%011u", (r >> 4) % (unsigned)keys);
            snprintf(val, sizeof val, "%u", r);
            kp_bytes_t k = {(const uint8_t *)key, 15}, v = {(const uint8_t *)val, 100};
            kp_batch_builder_add(&bb, wall_ms(), k, v, NULL, 0);
        }
        kp_buf_reset(&b);
        kp_batch_builder_finish(&bb, &b);
        kp_batch_builder_deinit(&bb);
        ks_append_result_t res;
        if (ks_part_append(p, b.data, b.len, wall_ms(), &res) != 0) {
            fprintf(stderr, "append failed\n");
            exit(1);
        }
        total += (size_t)PER_BATCH * 115; /* uncompressed record bytes */
        ks_store_run_completions(s);
    }
    double dt = now_s() - t0;
    kp_buf_deinit(&b);
    return (double)total / 1048576.0 / dt;
}

static void on_sync(void *arg, int status)
{
    *(int *)arg = status == 0 ? 1 : -1;
}

/* Rolled segments must be fsynced before the cleaner takes them. */
static void sync_all(ks_store_t *s, ks_part_t *p)
{
    int done = 0;
    if (ks_part_sync(p, ks_part_log_end(p), on_sync, &done) != 0)
        exit(1);
    while (!done) {
        ks_store_run_completions(s);
        usleep(1000);
    }
}

static void concurrent(const char *dir, size_t mib, int keys, double cap, double alone)
{
    ks_store_t *s = open_store(dir, true, cap);
    ks_part_t *p = topic(s);
    double rate = produce(s, p, mib, keys);
    ks_cleaner_stats_t st;
    ks_store_cleaner_stats(s, &st);
    printf("produce while cleaning%-18s%8.1f MiB/s (%.0f%% of alone); cleaner meanwhile: "
           "%lld passes, %.1f MiB read, %.1f MiB written, %.1f s busy, %.1f s throttled\n",
           cap > 0 ? " (cleaner 20 MB/s):" : ":", rate, 100 * rate / alone,
           (long long)st.cleans, (double)st.bytes_read / 1048576.0,
           (double)st.bytes_written / 1048576.0, (double)st.busy_ms / 1000.0,
           (double)st.throttled_ms / 1000.0);
    ks_store_close(s);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench/results/tmp";
    size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 128;
    int keys = argc > 3 ? atoi(argv[3]) : 100000;
    mkdir(dir, 0755);
    printf("cleaner bench: %zu MiB of records (115 B) over %d keys, lz4, 1 MiB segments, in %s\n",
           mib, keys, dir);
    ks_store_t *s = open_store(dir, false, 0);
    ks_part_t *p = topic(s);
    double alone = produce(s, p, mib, keys);
    printf("produce alone:                          %8.1f MiB/s\n", alone);
    sync_all(s, p);
    int64_t before = ks_part_size_bytes(p);
    double t0 = now_s();
    int passes = 0;
    while (ks_part_clean(p, wall_ms(), true) == 0)
        passes++;
    double dt = now_s() - t0;
    ks_cleaner_stats_t st;
    ks_store_cleaner_stats(s, &st);
    printf("clean alone:                            %8.1f MiB/s of log cleaned (%d passes, "
           "%.1f s; %.1f MiB -> %.1f MiB on disk, %.1f MiB read, %.1f MiB written)\n",
           (double)before / 1048576.0 / dt, passes, dt, (double)before / 1048576.0,
           (double)ks_part_size_bytes(p) / 1048576.0, (double)st.bytes_read / 1048576.0,
           (double)st.bytes_written / 1048576.0);
    ks_store_close(s);
    concurrent(dir, mib, keys, 0, alone);
    concurrent(dir, mib, keys, 20e6, alone);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s/bench-cleaner", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/*
 * Reference: what the data disk itself does, measured in the same run as the broker.
 *
 *   ref_disk DIR SIZE [OPS]
 *
 * DIR must be on the same filesystem as the broker's log dir. Appends SIZE bytes in 1 MiB
 * writes to a fresh file (as a segment grows) three ways, then OPS 4 KiB appends each followed
 * by fdatasync (the worst case for acks=all with one small producer):
 *   seq_sync1m   fdatasync after every 1 MiB            -> ceiling for acks=all throughput
 *   seq_nosync   writes into the page cache only        -> ceiling for acks=1 throughput
 *   seq_flush    the same, plus one fdatasync at the end (what the device sustains)
 * Prints one JSON line (MB = 10^6 bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"

#define CHUNK (1024 * 1024)
#define SMALL 4096

static int open_fresh(const char *dir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s.%d", dir, name, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fprintf(stderr, "ref_disk: open %s: %s\n", path, strerror(errno));
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    if (bench_write_all(fd, p, n) < 0) {
        fprintf(stderr, "ref_disk: write: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes size bytes in 1 MiB chunks; returns seconds for the writes (and syncs if asked),
 * and in *flush_s the seconds including a final fdatasync. Negative on error. */
static double seq_write(const char *dir, const char *name, const uint8_t *buf, int64_t size,
                        int sync_each, double *flush_s)
{
    char path[4096];
    int fd = open_fresh(dir, name, path, sizeof path);
    if (fd < 0)
        return -1;
    int64_t t0 = bench_now_ns();
    for (int64_t done = 0; done < size; done += CHUNK) {
        if (write_all(fd, buf, CHUNK) < 0 || (sync_each && fdatasync(fd) < 0)) {
            close(fd);
            unlink(path);
            return -1;
        }
    }
    int64_t t1 = bench_now_ns();
    if (fdatasync(fd) < 0)
        fprintf(stderr, "ref_disk: fdatasync: %s\n", strerror(errno));
    int64_t t2 = bench_now_ns();
    close(fd);
    unlink(path);
    if (flush_s)
        *flush_s = (double)(t2 - t0) / 1e9;
    return (double)(t1 - t0) / 1e9;
}

/*
 * The p99 of the fsync in progress as seen from a random moment: each duration weighted by
 * itself (sorted v). A steady message stream meets a long fsync in proportion to its length,
 * so a produce->consume p99 over messages behind a producer's window compares with this, not
 * with the p99 over fsync calls (docs/benchmarks.md, "the acks=all tail").
 */
static double time_weighted_p99(const double *v, size_t n)
{
    double total = 0, acc = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i];
    for (size_t i = 0; i < n; i++) {
        acc += v[i];
        if (acc >= 0.99 * total)
            return v[i];
    }
    return n ? v[n - 1] : 0;
}

static int small_syncs(const char *dir, int ops, const uint8_t *buf, bench_samples_t *lat,
                       double *secs)
{
    char path[4096];
    int fd = open_fresh(dir, "sync4k", path, sizeof path);
    if (fd < 0)
        return -1;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < ops; i++) {
        int64_t a = bench_now_ns();
        if (write_all(fd, buf, SMALL) < 0 || fdatasync(fd) < 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        bench_samples_add(lat, (double)(bench_now_ns() - a) / 1e3);
    }
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ref_disk DIR SIZE [OPS]\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t size = bench_parse_size(argv[2]);
    int ops = argc > 3 ? atoi(argv[3]) : 1000;
    if (size < CHUNK || ops < 1) {
        fprintf(stderr, "ref_disk: SIZE must be >= 1M and OPS >= 1\n");
        return 2;
    }
    size = size / CHUNK * CHUNK;
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return 1;
    bench_fill_pattern(buf, CHUNK, 7);

    /* Synced runs first: the unsynced run leaves dirty pages whose writeback would slow them. */
    double sync_s = seq_write(dir, "seq_sync1m", buf, size, 1, NULL);
    bench_samples_t lat = {0};
    double small_s = 0;
    int rc = small_syncs(dir, ops, buf, &lat, &small_s);
    double flush_s = 0;
    double nosync_s = seq_write(dir, "seq_nosync", buf, size, 0, &flush_s);
    free(buf);
    if (sync_s <= 0 || nosync_s <= 0 || rc < 0)
        return 1;

    bench_sort(lat.v, lat.n);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "bytes", size);
    bench_json_num(&j, "seq_sync1m_mbps", (double)size / sync_s / 1e6);
    bench_json_num(&j, "seq_nosync_mbps", (double)size / nosync_s / 1e6);
    bench_json_num(&j, "seq_flush_mbps", (double)size / flush_s / 1e6);
    bench_json_int(&j, "sync4k_ops", ops);
    bench_json_num(&j, "sync4k_per_s", (double)ops / small_s);
    bench_json_num(&j, "sync4k_p50_us", bench_quantile_sorted(lat.v, lat.n, 0.50));
    bench_json_num(&j, "sync4k_p99_us", bench_quantile_sorted(lat.v, lat.n, 0.99));
    bench_json_num(&j, "sync4k_tw_p99_us", time_weighted_p99(lat.v, lat.n));
    bench_json_end(&j);
    bench_samples_free(&lat);
    return 0;
}

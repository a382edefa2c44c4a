/*
 * Reference: the durable latency of an ideal group commit at a given message rate, on the data
 * disk, with no network and no broker.
 *
 *   ref_group_commit DIR RATE SECONDS [MSGSIZE]
 *
 * A writer appends MSGSIZE-byte records (default 1024) to a fresh file in DIR at RATE per
 * second; a flusher thread calls fdatasync back to back for as long as anything is unsynced,
 * which is the best any acks=all broker with one log file can do. Per record: the time from
 * its append to the end of the fdatasync that covered it. Before that, 1,000 lone 4 KiB
 * append+fdatasync (the reference the acks=all p99 target is stated against), so the two are
 * measured in the same minute.
 *
 * Why it exists: at 10 % of the acks=all peak (~100 MB/s) each fdatasync carries 25-100 KB,
 * not 4 KiB, and a record that arrives just after a pass started waits for that pass and the
 * next. This program shows what those two facts cost without any broker in the way. The first
 * second is not counted. Prints one JSON line (times in ms).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"

#define LONE_OPS 1000
#define LONE_SIZE 4096

typedef struct {
    int fd;
    int64_t *appended_at; /* per record, written by the writer before it publishes the count */
    double *latency_ms;   /* per record, written by the flusher once its fdatasync returned */
    _Atomic int64_t appended;
    _Atomic int done;
    bench_samples_t fsync_ms; /* the flusher's own */
    _Atomic int failed; /* either thread; the writer stops at once */
} gc_t;

static void *flusher(void *arg)
{
    gc_t *g = arg;
    int64_t synced = 0;
    for (;;) {
        int64_t upto = atomic_load(&g->appended);
        if (upto == synced) {
            if (atomic_load(&g->done) && atomic_load(&g->appended) == synced)
                return NULL;
            sched_yield(); /* a broker's flusher would sleep on a condition; that wake-up
                            * costs ~10-50 us, which this ideal leaves out */
            continue;
        }
        int64_t t0 = bench_now_ns();
        if (fdatasync(g->fd) < 0) {
            fprintf(stderr, "ref_group_commit: fdatasync: %s\n", strerror(errno));
            g->failed = 1;
            return NULL;
        }
        int64_t t1 = bench_now_ns();
        bench_samples_add(&g->fsync_ms, (double)(t1 - t0) / 1e6);
        for (int64_t i = synced; i < upto; i++)
            g->latency_ms[i] = (double)(t1 - g->appended_at[i]) / 1e6;
        synced = upto;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ref_group_commit DIR RATE SECONDS [MSGSIZE]\n");
        return 2;
    }
    double rate = atof(argv[2]), secs = atof(argv[3]);
    size_t size = argc > 4 ? (size_t)atol(argv[4]) : 1024;
    if (rate < 1 || secs <= 1 || size < 1 || size > LONE_SIZE) {
        fprintf(stderr, "ref_group_commit: RATE >= 1, SECONDS > 1, 1 <= MSGSIZE <= 4096\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_group_commit.%d", argv[1], (int)getpid());
    static uint8_t buf[LONE_SIZE];
    bench_fill_pattern(buf, sizeof buf, 3);

    /* the lone 4 KiB reference, on a fresh file as ref_disk does */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "ref_group_commit: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    double lone[LONE_OPS];
    for (int i = 0; i < LONE_OPS; i++) {
        int64_t t0 = bench_now_ns();
        if (bench_write_all(fd, buf, LONE_SIZE) < 0 || fdatasync(fd) < 0) {
            fprintf(stderr, "ref_group_commit: lone write: %s\n", strerror(errno));
            return 1;
        }
        lone[i] = (double)(bench_now_ns() - t0) / 1e6;
    }
    close(fd);
    unlink(path);
    bench_sort(lone, LONE_OPS);

    /* Owned here: the per-record arrays and the flusher's samples, freed at the end. */
    gc_t g = {0};
    int64_t n = (int64_t)(rate * secs);
    g.appended_at = calloc((size_t)n, sizeof *g.appended_at);
    g.latency_ms = calloc((size_t)n, sizeof *g.latency_ms);
    g.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!g.appended_at || !g.latency_ms || g.fd < 0) {
        fprintf(stderr, "ref_group_commit: setup failed\n");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, flusher, &g) != 0)
        return 1;
    double gap_ns = 1e9 / rate;
    int64_t t0 = bench_now_ns();
    for (int64_t i = 0; i < n && !g.failed; i++) {
        int64_t due = t0 + (int64_t)((double)i * gap_ns);
        while (bench_now_ns() < due)
            ; /* spin: a sleep's granularity would bunch the records */
        g.appended_at[i] = bench_now_ns();
        if (bench_write_all(g.fd, buf, size) < 0) {
            fprintf(stderr, "ref_group_commit: write: %s\n", strerror(errno));
            g.failed = 1;
            break;
        }
        atomic_store(&g.appended, i + 1);
    }
    atomic_store(&g.done, 1);
    pthread_join(th, NULL);
    close(g.fd);
    unlink(path);
    if (g.failed)
        return 1;

    int64_t skip = (int64_t)rate; /* the first second */
    double *lat = g.latency_ms + skip;
    size_t m = (size_t)(n - skip);
    bench_sort(lat, m);
    bench_sort(g.fsync_ms.v, g.fsync_ms.n);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_num(&j, "rate", rate);
    bench_json_int(&j, "records", (int64_t)m);
    bench_json_num(&j, "lone4k_p50_ms", bench_quantile_sorted(lone, LONE_OPS, 0.5));
    bench_json_num(&j, "lone4k_p99_ms", bench_quantile_sorted(lone, LONE_OPS, 0.99));
    bench_json_int(&j, "fsyncs", (int64_t)g.fsync_ms.n);
    bench_json_num(&j, "bytes_per_fsync", (double)n * (double)size / (double)g.fsync_ms.n);
    bench_json_num(&j, "fsync_p50_ms", bench_quantile_sorted(g.fsync_ms.v, g.fsync_ms.n, 0.5));
    bench_json_num(&j, "fsync_p99_ms", bench_quantile_sorted(g.fsync_ms.v, g.fsync_ms.n, 0.99));
    bench_json_num(&j, "durable_p50_ms", bench_quantile_sorted(lat, m, 0.5));
    bench_json_num(&j, "durable_p99_ms", bench_quantile_sorted(lat, m, 0.99));
    bench_json_num(&j, "durable_p999_ms", bench_quantile_sorted(lat, m, 0.999));
    bench_json_end(&j);
    free(g.appended_at);
    free(g.latency_ms);
    bench_samples_free(&g.fsync_ms);
    return 0;
}

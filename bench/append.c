/*
 * Storage append throughput beside the raw sequential-write bandwidth of the same disk,
 * measured in the same run, with and without fsync.
 *
 *   build/bench/append [dir] [MiB]       (default: ./bench/results/tmp, 256 MiB)
 *
 * No fsync:   raw = write() of 16 KiB chunks + one fdatasync at the end;
 *             depot = ks_part_append of 16 KiB batches + one ks_part_sync at the end.
 * With fsync: raw = write() + fdatasync per 16 KiB chunk (what acks=all costs a naive log);
 *             depot = ks_part_append + ks_part_sync per batch, waiting for each (one
 *             producer, no group commit to share with): the same work through the engine.
 * Each line prints MiB/s and depot/raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol/kp_batch.h"
#include "storage/ks.h"

#define CHUNK (16 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double raw_write(const char *dir, size_t total, bool sync_each)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/raw.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    char *buf = malloc(CHUNK);
    memset(buf, 'x', CHUNK);
    double t0 = now_s();
    for (size_t done = 0; done < total; done += CHUNK) {
        if (write(fd, buf, CHUNK) != CHUNK) {
            perror("write");
            exit(1);
        }
        if (sync_each)
            fdatasync(fd);
    }
    fdatasync(fd);
    double dt = now_s() - t0;
    close(fd);
    unlink(path);
    free(buf);
    return (double)total / (1024.0 * 1024.0) / dt;
}

static int synced;
static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static int ready;

/* What the broker does with uv_async_send: wake the loop thread. */
static void on_ready(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&ready_mu);
    ready = 1;
    pthread_cond_signal(&ready_cv);
    pthread_mutex_unlock(&ready_mu);
}

static void on_sync(void *arg, int status)
{
    (void)arg;
    if (status)
        fprintf(stderr, "sync failed: %d\n", status);
    synced++;
}

static void wait_sync(ks_store_t *s)
{
    while (!synced) {
        pthread_mutex_lock(&ready_mu);
        while (!ready)
            pthread_cond_wait(&ready_cv, &ready_mu);
        ready = 0;
        pthread_mutex_unlock(&ready_mu);
        ks_store_run_completions(s);
    }
    synced = 0;
}

static double depot_write(const char *dir, size_t total, bool sync_each)
{
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/depot-%d", dir, sync_each);
    const char *dirs[1] = {sub};
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.n_dirs = 1;
    o.max_open_files = 256;
    o.node_id = 1;
    o.on_sync_ready = on_ready;
    ks_topic_config_default(&o.defaults);
    ks_store_t *s;
    if (ks_store_open(&o, &s) != 0) {
        fprintf(stderr, "cannot open store in %s\n", sub);
        exit(1);
    }
    ks_topic_t *t;
    ks_topic_create(s, "bench", 1, NULL, &t);
    ks_part_t *p = ks_topic_part(t, 0);

    /* One ~16 KiB batch of 16 x 1000-byte records, stamped afresh for every append. */
    kp_batch_builder_t bb;
    kp_buf_t tmpl, work;
    kp_buf_init(&tmpl);
    kp_buf_init(&work);
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    static uint8_t val[1000];
    memset(val, 'v', sizeof val);
    int64_t ts = now_ms();
    for (int i = 0; i < 16; i++) {
        kp_bytes_t k = {NULL, -1}, v = {val, (int32_t)sizeof val};
        kp_batch_builder_add(&bb, ts, k, v, NULL, 0);
    }
    kp_batch_builder_finish(&bb, &tmpl);
    kp_batch_builder_deinit(&bb);
    kp_buf_reserve(&work, tmpl.len);

    size_t done = 0;
    double t0 = now_s();
    while (done < total) {
        memcpy(work.data, tmpl.data, tmpl.len);
        ks_append_result_t res;
        int rc = ks_part_append(p, work.data, tmpl.len, ts, &res);
        if (rc) {
            fprintf(stderr, "append failed: %d\n", rc);
            exit(1);
        }
        if (sync_each) {
            ks_part_sync(p, res.last_offset + 1, on_sync, NULL);
            wait_sync(s);
        }
        done += tmpl.len;
    }
    ks_part_sync(p, ks_part_log_end(p), on_sync, NULL);
    wait_sync(s);
    double dt = now_s() - t0;
    ks_store_close(s);
    kp_buf_deinit(&tmpl);
    kp_buf_deinit(&work);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", sub);
    return (double)done / (1024.0 * 1024.0) / dt;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench/results/tmp";
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
    size_t total = mib << 20;
    size_t total_sync = total / 16 > (4u << 20) ? total / 16 : (4u << 20);
    mkdir(dir, 0755);
    printf("storage append bench in %s (%zu MiB without fsync, %zu MiB with)\n", dir, mib,
           total_sync >> 20);
    double raw = raw_write(dir, total, false);
    double dep = depot_write(dir, total, false);
    printf("no fsync:   raw %8.1f MiB/s   depot %8.1f MiB/s   ratio %.2f\n", raw, dep,
           dep / raw);
    raw = raw_write(dir, total_sync, true);
    dep = depot_write(dir, total_sync, true);
    printf("fsync each: raw %8.1f MiB/s   depot %8.1f MiB/s   ratio %.2f\n", raw, dep,
           dep / raw);
    return 0;
}

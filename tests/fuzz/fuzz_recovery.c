/*
 * libFuzzer target: storage recovery over damaged segment files.
 *
 * Each input damages a valid active segment (built once: 12 batches of varying size) and
 * reopens the store as after a crash. Input layout:
 *   byte 0        mode: even = damage the valid segment, odd = the rest is the whole file
 *   bytes 1..2    length to keep (big-endian, modulo the segment length + 1)
 *   then triples  position (2 bytes, modulo the kept length) and an xor byte
 *   anything left is appended after the kept bytes
 * Checks: the store opens; every offset below the log end reads back as a whole batch that
 * passes kp_batch_validate, contiguous from 0; every batch that lies wholly before the first
 * damaged byte survives; appends continue at the log end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/kp_batch.h"
#include "storage/ks.h"

static char dir[256];
static char logpath[512];
static uint8_t *base;
static size_t base_len;
static size_t ends[16]; /* end position of each batch in base */
static int nbatches;
static ks_store_opts_t opts;
static const char *dirs[1];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_recovery: %s\n", what);
    abort();
}

static void build_base(void)
{
    kp_buf_t b;
    kp_buf_init(&b);
    int64_t next = 0;
    for (int i = 0; i < 12; i++) {
        kp_batch_builder_t bb;
        kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
        char v[64];
        memset(v, 'a' + i, sizeof v);
        for (int r = 0; r <= i % 3; r++) {
            kp_bytes_t k = {NULL, -1}, val = {(const uint8_t *)v, 8 + 4 * i};
            kp_batch_builder_add(&bb, 1000 + i, k, val, NULL, 0);
        }
        size_t at = b.len;
        kp_batch_builder_finish(&bb, &b);
        kp_batch_builder_deinit(&bb);
        kp_batch_hdr_t h;
        kp_batch_hdr_parse(b.data + at, b.len - at, &h);
        kp_batch_set_base_offset(b.data + at, next);
        kp_batch_set_leader_epoch(b.data + at, 0); /* as an append stamps it */
        next += h.last_offset_delta + 1;
        ends[nbatches++] = b.len;
    }
    base = b.data;
    base_len = b.len;
}

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_recovery: could not remove %s\n", dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/fuzz-recovery-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp");
    atexit(cleanup);
    dirs[0] = dir;
    opts.dirs = dirs;
    opts.n_dirs = 1;
    opts.max_open_files = 16;
    opts.node_id = 1;
    ks_topic_config_default(&opts.defaults);
    opts.defaults.index_interval_bytes = 64;
    ks_store_t *s;
    if (ks_store_open(&opts, &s) || ks_topic_create(s, "f", 1, NULL, NULL))
        die("setup store");
    ks_store_close(s);
    snprintf(logpath, sizeof logpath, "%s/f-0/00000000000000000000.log", dir);
    build_base();
}

static void put(const char *name, const void *data, size_t len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/f-0/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
        die("write");
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        setup();
    if (size < 3)
        return 0;
    uint8_t *file = malloc(base_len + size + 1);
    size_t len, first_bad;
    if (data[0] & 1) {
        len = size - 1;
        memcpy(file, data + 1, len);
        first_bad = 0;
    } else {
        size_t keep = (((size_t)data[1] << 8) | data[2]) % (base_len + 1);
        memcpy(file, base, keep);
        first_bad = keep;
        size_t i = 3;
        for (; i + 3 <= size && i < 3 + 3 * 8; i += 3) {
            if (keep == 0)
                break;
            size_t pos = (((size_t)data[i] << 8) | data[i + 1]) % keep;
            if (data[i + 2] == 0)
                continue;
            file[pos] ^= data[i + 2];
            if (pos < first_bad)
                first_bad = pos;
        }
        len = keep;
        if (i < size) {
            memcpy(file + len, data + i, size - i);
            len += size - i;
        }
    }
    put("00000000000000000000.log", file, len);
    put("00000000000000000000.index", NULL, 0);
    put("00000000000000000000.timeindex", NULL, 0);
    char marker[300];
    snprintf(marker, sizeof marker, "%s/.depot-clean-shutdown", dir);
    unlink(marker);
    free(file);

    ks_store_t *s;
    if (ks_store_open(&opts, &s) != 0)
        die("open after damage");
    ks_topic_t *t = ks_topic_find(s, "f", 1);
    ks_part_t *p = t ? ks_topic_part(t, 0) : NULL;
    if (!p)
        die("topic lost");
    int64_t end = ks_part_log_end(p), off = 0;
    while (off < end) {
        kp_buf_t out;
        kp_buf_init(&out);
        if (ks_part_read(p, off, 1, true, &out) != 0 || out.len == 0)
            die("read below log end");
        kp_batch_hdr_t h;
        if (kp_batch_validate(out.data, out.len, &h) != 0 || h.base_offset != off)
            die("served a bad batch");
        off += h.last_offset_delta + 1;
        kp_buf_deinit(&out);
    }
    if (!(data[0] & 1)) {
        int64_t must = 0; /* offsets of batches wholly before the first damaged byte */
        for (int i = 0; i < nbatches && ends[i] <= first_bad; i++)
            must += i % 3 + 1;
        if (end < must)
            die("lost an undamaged batch");
    }
    kp_buf_t b;
    kp_buf_init(&b);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_bytes_t k = {NULL, -1}, v = {(const uint8_t *)"x", 1};
    kp_batch_builder_add(&bb, 5, k, v, NULL, 0);
    kp_batch_builder_finish(&bb, &b);
    kp_batch_builder_deinit(&bb);
    ks_append_result_t res;
    if (ks_part_append(p, b.data, b.len, 5, &res) != 0 || res.base_offset != end)
        die("append after recovery");
    kp_buf_deinit(&b);
    ks_store_close(s);
    return 0;
}

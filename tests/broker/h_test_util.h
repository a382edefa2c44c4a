/*
 * Shared helpers for the data-path handler tests: a real store in a mkdtemp directory and
 * RecordBatch building. Header-only so each test binary stays one .c file.
 */
#ifndef H_TEST_UTIL_H
#define H_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_common.h"
#include "protocol/kp_batch.h"
#include "storage/ks.h"

typedef struct {
    char dir[64];
    ks_store_t *store;
    kb_config_t cfg;
} tstore_t;

static inline int tstore_open(tstore_t *ts)
{
    memset(ts, 0, sizeof *ts);
    snprintf(ts->dir, sizeof ts->dir, "/tmp/depot-h-test-XXXXXX");
    if (!mkdtemp(ts->dir))
        return -1;
    const char *dirs[1] = {ts->dir};
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.n_dirs = 1;
    o.max_open_files = 64;
    o.node_id = 1;
    ks_topic_config_default(&o.defaults);
    ts->cfg.num_partitions = 2;
    ts->cfg.auto_create_topics_enable = false;
    ts->cfg.message_max_bytes = 1048588;
    ts->cfg.log_dirs[0] = ts->dir;
    ts->cfg.n_log_dirs = 1;
    return ks_store_open(&o, &ts->store);
}

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tstore_close(tstore_t *ts)
{
    ks_store_close(ts->store);
    ts->store = NULL;
    nftw(ts->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Appends one batch of n records ("v0".."v<n-1>", timestamps ts0, ts0+1, ...) to out. */
static inline int make_batch(kp_buf_t *out, int codec, int n, int64_t ts0, size_t value_size)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, codec);
    char *val = malloc(value_size + 16);
    if (!val)
        return K_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        memset(val, 'x', value_size + 16);
        int len = snprintf(val, value_size + 16, "v%d", i);
        if ((size_t)len < value_size)
            len = (int)value_size;
        kp_bytes_t key = {NULL, -1};
        kp_bytes_t value = {(const uint8_t *)val, len};
        int rc = kp_batch_builder_add(&bb, ts0 + i, key, value, NULL, 0);
        if (rc < 0) {
            free(val);
            kp_batch_builder_deinit(&bb);
            return rc;
        }
    }
    free(val);
    int rc = kp_batch_builder_finish(&bb, out);
    kp_batch_builder_deinit(&bb);
    return rc;
}

static inline kb_produce_ctx_t tctx(tstore_t *ts, int16_t version)
{
    kb_produce_ctx_t c = {
        .store = ts->store, .cfg = &ts->cfg, .version = version, .now_ms = 1700000000000LL};
    return c;
}

/* Produces one n-record batch to topic/partition; returns the Kafka error code. */
static inline int16_t produce_n(tstore_t *ts, const char *topic, int32_t part, int n,
                                int64_t ts0, int64_t *base)
{
    kp_buf_t b;
    kp_buf_init(&b);
    if (make_batch(&b, KP_COMPRESSION_NONE, n, ts0, 8) < 0)
        return -100;
    kb_produce_ctx_t c = tctx(ts, 9);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    ks_part_t *p;
    int64_t next;
    int16_t err =
        kb_produce_partition(&c, kp_str(topic), part, b.data, (int32_t)b.len, &out, &p, &next);
    if (base)
        *base = out.base_offset;
    kp_buf_deinit(&b);
    return err;
}

#endif

/*
 * The per-topic produce rules Kafka applies after a batch is known to be well formed
 * (LogValidator and Partition.appendRecordsToLeader), each driven by a topic config:
 *
 *   min.insync.replicas > 1, acks=all    -> NOT_ENOUGH_REPLICAS (19): one node is an in-sync
 *                                           set of one, which is what Kafka answers for a
 *                                           replication factor of 1. Checked first, as Kafka
 *                                           checks it before validating the records.
 *   message.timestamp.before.max.ms,
 *   message.timestamp.after.max.ms        -> INVALID_TIMESTAMP (32) with one record_errors
 *                                           entry per record outside [now - before,
 *                                           now + after] (KIP-937); CreateTime topics only.
 *   compression.type other than producer -> the batch is rewritten with that codec and the
 *                                           topic's compression.<codec>.level (KIP-390);
 *                                           still larger than max.message.bytes afterwards:
 *                                           MESSAGE_TOO_LARGE (10).
 *
 * Cost: nothing extra for a topic on the defaults whose producer sends honest headers. The
 * after-bound is decided from the header's maxTimestamp; records are walked only when a bound
 * is crossed (to name them) or when before.max.ms is set (the smallest timestamp is not in
 * the header: a producer may send records out of timestamp order). Recompression decompresses
 * and compresses the whole batch, on the loop, only for topics that ask for it.
 */
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/core/util.h"
#include "protocol/kp_batch.h"

#define MAX_TS_ERRORS 1000

int16_t kb_produce_check_isr(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                             kp_str_t topic, int32_t partition,
                             kp_produce_resp_partition_produce_response_t *out)
{
    if (ctx->acks != -1 || c->min_insync_replicas <= 1)
        return KP_ERR_NONE;
    if (ctx->arena) {
        char msg[320];
        snprintf(msg, sizeof msg, "The size of the current ISR [0] is insufficient to satisfy "
                 "the min.isr requirement of %d for partition %.*s-%d", c->min_insync_replicas,
                 topic.len, topic.ptr, partition);
        char *m = kp_arena_alloc(ctx->arena, strlen(msg) + 1);
        if (m) {
            memcpy(m, msg, strlen(msg) + 1);
            out->error_message = kp_str(m);
        }
    }
    return KP_ERR_NOT_ENOUGH_REPLICAS;
}

/* now - d and now + d without overflow (d is "unlimited" near INT64_MAX). */
static int64_t sat_sub(int64_t now, int64_t d)
{
    int64_t r;
    return __builtin_sub_overflow(now, d, &r) ? INT64_MIN : r;
}

static int64_t sat_add(int64_t now, int64_t d)
{
    int64_t r;
    return __builtin_add_overflow(now, d, &r) ? INT64_MAX : r;
}

/* Names each record outside [lo, hi]; returns how many there were, or a negative status. */
static int list_bad_timestamps(const kb_produce_ctx_t *ctx, const uint8_t *b, int32_t len,
                               int64_t lo, int64_t hi,
                               kp_produce_resp_partition_produce_response_t *out)
{
    size_t max = ctx->cfg && ctx->cfg->socket_request_max_bytes > 0
                     ? (size_t)ctx->cfg->socket_request_max_bytes
                     : 100u << 20;
    kp_records_t it;
    if (kp_records_init(&it, b, (size_t)len, max) != 0)
        return K_ERR_CORRUPT;
    int32_t n = it.hdr.records_count, cap = n < MAX_TS_ERRORS ? n : MAX_TS_ERRORS;
    kp_produce_resp_batch_index_and_error_message_t *errs = NULL;
    if (ctx->arena && cap > 0)
        errs = kp_arena_alloc(ctx->arena, sizeof *errs * (size_t)cap);
    kp_record_t rec;
    int rc, bad = 0;
    for (int32_t i = 0; (rc = kp_records_next(&it, &rec)) == 1; i++) {
        int64_t ts = it.hdr.base_timestamp + rec.timestamp_delta;
        if (ts == -1 || (ts >= lo && ts <= hi))
            continue;
        if (errs && bad < cap) {
            char msg[200];
            snprintf(msg, sizeof msg, "Timestamp %lld of message with offset %d is out of range. "
                     "The timestamp should be within [%lld, %lld]", (long long)ts,
                     rec.offset_delta, (long long)lo, (long long)hi);
            char *m = kp_arena_alloc(ctx->arena, strlen(msg) + 1);
            kp_produce_resp_batch_index_and_error_message_init(&errs[bad]);
            errs[bad].batch_index = i;
            if (m) {
                memcpy(m, msg, strlen(msg) + 1);
                errs[bad].batch_index_error_message = kp_str(m);
            }
        }
        bad++;
    }
    kp_records_deinit(&it);
    if (rc < 0)
        return K_ERR_CORRUPT;
    if (bad && errs) {
        out->record_errors = errs;
        out->record_errors_count = bad < cap ? bad : cap;
    }
    return bad;
}

int16_t kb_produce_check_timestamps(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                                    kp_str_t topic, int32_t partition, const uint8_t *b,
                                    int32_t len, const kp_batch_hdr_t *h,
                                    kp_produce_resp_partition_produce_response_t *out)
{
    if (c->timestamp_type != KS_TS_CREATE_TIME)
        return KP_ERR_NONE;
    int64_t lo = sat_sub(ctx->now_ms, c->timestamp_before_max_ms);
    int64_t hi = sat_add(ctx->now_ms, c->timestamp_after_max_ms);
    bool walk = c->timestamp_before_max_ms != INT64_MAX || (h->max_timestamp != -1 && h->max_timestamp > hi) ||
                (h->base_timestamp != -1 && h->base_timestamp > hi);
    if (!walk)
        return KP_ERR_NONE;
    int bad = list_bad_timestamps(ctx, b, len, lo, hi, out);
    if (bad < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    if (bad == 0)
        return KP_ERR_NONE;
    out->error_message = kp_str("One or more records have been rejected due to invalid "
                                "timestamp");
    kb_log(KB_LOG_INFO, "produce: %.*s-%d: %d records outside the timestamp bounds [%lld, %lld] "
           "refused", topic.len, topic.ptr, partition, bad, (long long)lo, (long long)hi);
    return KP_ERR_INVALID_TIMESTAMP;
}

/* The codec compression.type asks for, or -1 to keep the producer's. */
static int target_codec(int compression_type)
{
    switch (compression_type) {
    case KS_COMPRESSION_UNCOMPRESSED: return KP_COMPRESSION_NONE;
    case KS_COMPRESSION_GZIP: return KP_COMPRESSION_GZIP;
    case KS_COMPRESSION_SNAPPY: return KP_COMPRESSION_SNAPPY;
    case KS_COMPRESSION_LZ4: return KP_COMPRESSION_LZ4;
    case KS_COMPRESSION_ZSTD: return KP_COMPRESSION_ZSTD;
    default: return -1;
    }
}

static int codec_level(const ks_topic_config_t *c, int codec)
{
    switch (codec) {
    case KP_COMPRESSION_GZIP: return c->compression_gzip_level;
    case KP_COMPRESSION_LZ4: return c->compression_lz4_level;
    case KP_COMPRESSION_ZSTD: return c->compression_zstd_level;
    default: return KP_LEVEL_DEFAULT;
    }
}

int16_t kb_produce_recompress(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                              const kp_batch_hdr_t *h, int32_t max_message_bytes,
                              uint8_t **records, int32_t *len)
{
    int codec = target_codec(c->compression_type);
    if (codec < 0 || codec == (h->attributes & KP_BATCH_ATTR_COMPRESSION_MASK))
        return KP_ERR_NONE;
    if (!ctx->arena)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    size_t max = ctx->cfg && ctx->cfg->socket_request_max_bytes > 0
                     ? (size_t)ctx->cfg->socket_request_max_bytes
                     : 100u << 20;
    kp_buf_t nb;
    kp_buf_init(&nb);
    int rc = kp_batch_recompress(*records, (size_t)*len, codec, codec_level(c, codec), max, &nb);
    int16_t err = KP_ERR_NONE;
    if (rc == K_ERR_NOMEM)
        err = KP_ERR_UNKNOWN_SERVER_ERROR;
    else if (rc == K_ERR_TOOLARGE)
        err = KP_ERR_MESSAGE_TOO_LARGE;
    else if (rc < 0)
        err = KP_ERR_CORRUPT_MESSAGE;
    else if (max_message_bytes > 0 && nb.len > (size_t)max_message_bytes)
        err = KP_ERR_MESSAGE_TOO_LARGE;
    if (err == KP_ERR_NONE) {
        /* The arena owns the rewritten batch for the rest of the request, as the frame owns
         * the producer's; storage stamps offsets into it in place. */
        uint8_t *copy = kp_arena_alloc(ctx->arena, nb.len);
        if (copy) {
            memcpy(copy, nb.data, nb.len);
            *records = copy;
            *len = (int32_t)nb.len;
        } else {
            err = KP_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    kp_buf_deinit(&nb);
    return err;
}

/*
 * RecordBatch v2 (magic 2): header parse, validation, in-place base offset rewrite, record
 * iteration and building.
 *
 * Layout (big-endian), offsets from the start of the batch:
 *    0 baseOffset int64          | not covered by the CRC
 *    8 batchLength int32         | (bytes after this field)
 *   12 partitionLeaderEpoch int32|
 *   16 magic int8 (= 2)          |
 *   17 crc uint32 (CRC-32C of bytes 21..end)
 *   21 attributes int16 (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
 *   23 lastOffsetDelta int32
 *   27 baseTimestamp int64
 *   35 maxTimestamp int64
 *   43 producerId int64
 *   51 producerEpoch int16
 *   53 baseSequence int32
 *   57 recordsCount int32
 *   61 records...
 */
#ifndef KP_BATCH_H
#define KP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/kp_buf.h"

#define KP_BATCH_HEADER_SIZE 61
#define KP_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define KP_BATCH_MAGIC_OFFSET 16

enum {
    KP_COMPRESSION_NONE = 0,
    KP_COMPRESSION_GZIP = 1,
    KP_COMPRESSION_SNAPPY = 2,
    KP_COMPRESSION_LZ4 = 3,
    KP_COMPRESSION_ZSTD = 4,
};

#define KP_BATCH_ATTR_COMPRESSION_MASK 0x07
#define KP_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define KP_BATCH_ATTR_TRANSACTIONAL 0x10
#define KP_BATCH_ATTR_CONTROL 0x20

typedef struct {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} kp_batch_hdr_t;

/*
 * Parses the fixed header. Needs len >= KP_BATCH_HEADER_SIZE (else K_ERR_MALFORMED);
 * magic 0/1 gives K_ERR_UNSUPPORTED (legacy message sets are refused, as Kafka 4.0 does),
 * any other magic K_ERR_CORRUPT. Does not check the CRC.
 */
int kp_batch_hdr_parse(const uint8_t *p, size_t len, kp_batch_hdr_t *h);

/* Total bytes of the batch at p (12 + batchLength), or a negative status if unreadable. */
int64_t kp_batch_size(const uint8_t *p, size_t len);

/*
 * Full check of one batch occupying exactly len bytes: header parse, batchLength == len-12,
 * lastOffsetDelta >= 0, recordsCount >= 0 (and == lastOffsetDelta + 1 for non-compacted
 * uncompressed input is not required), CRC-32C. K_ERR_CORRUPT on a CRC or framing mismatch.
 */
int kp_batch_validate(const uint8_t *p, size_t len, kp_batch_hdr_t *h);

/* Stamps fields outside the CRC, in place. */
void kp_batch_set_base_offset(uint8_t *p, int64_t base_offset);
void kp_batch_set_leader_epoch(uint8_t *p, int32_t epoch);
/* Sets LOG_APPEND_TIME and maxTimestamp; these are inside the CRC, so it is recomputed. */
void kp_batch_set_log_append_time(uint8_t *p, size_t len, int64_t ts);

/* Walks concatenated batches: returns 1 with *batch and *blen set, 0 at a clean end, or a
 * negative status (a trailing partial batch is K_ERR_MALFORMED when strict, else ends). */
typedef struct {
    const uint8_t *p, *end;
    bool strict;
} kp_batch_iter_t;
void kp_batch_iter_init(kp_batch_iter_t *it, const void *buf, size_t len, bool strict);
int kp_batch_iter_next(kp_batch_iter_t *it, const uint8_t **batch, size_t *blen);

/* One record header; key/value are views (len -1 = null). */
typedef struct {
    kp_bytes_t key;
    kp_bytes_t value;
} kp_record_header_t;

typedef struct {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    kp_bytes_t key;
    kp_bytes_t value;
    int32_t headers_count;
    const uint8_t *headers; /* raw header bytes; walk with kp_record_header_next */
    size_t headers_len;
} kp_record_t;

/*
 * Record iteration over a batch. Compressed batches are decompressed into a buffer owned by
 * the iterator (freed by kp_records_deinit); views point into it or into the batch.
 */
typedef struct {
    kp_batch_hdr_t hdr;
    kp_reader_t r;
    int32_t left;
    uint8_t *owned; /* decompressed records, or NULL */
    size_t max_decompressed;
} kp_records_t;

int kp_records_init(kp_records_t *it, const uint8_t *batch, size_t len, size_t max_decompressed);
/* Returns 1 with *rec set, 0 after the last record, or K_ERR_MALFORMED. */
int kp_records_next(kp_records_t *it, kp_record_t *rec);
void kp_records_deinit(kp_records_t *it);
/* Header iteration: returns 1/0/K_ERR_MALFORMED. */
int kp_record_header_next(kp_reader_t *hr, kp_record_header_t *h);

/*
 * Counts the records of a (validated) batch by walking them, decompressing if needed (at most
 * max_decompressed bytes), and checks that their offset deltas run 0, 1, 2, ...: 0 when they
 * do and there are exactly h->records_count, K_ERR_CORRUPT when not, K_ERR_MALFORMED for an
 * unreadable record, K_ERR_TOOLARGE past the limit, K_ERR_NOMEM. The cost is linear in the
 * records: callers use it only when the header's count is implausible for the batch's size.
 */
int kp_batch_verify_count(const uint8_t *batch, size_t len, size_t max_decompressed);
/* The smallest v2 record: length, attributes, timestamp delta, offset delta, key length,
 * value length and header count, one varint byte each. */
#define KP_RECORD_MIN_SIZE 7

/* Compression codecs (used by the builder, the records iterator and the client). */
int kp_compress(int codec, const uint8_t *in, size_t len, kp_buf_t *out);
int kp_decompress(int codec, const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out);
/* With a level (Kafka's compression.<codec>.level ranges; snappy has none); KP_LEVEL_DEFAULT
 * is each codec's default. */
#define KP_LEVEL_DEFAULT INT32_MIN
int kp_compress_level(int codec, int level, const uint8_t *in, size_t len, kp_buf_t *out);

/*
 * Rewrites one validated batch with another codec (a topic's compression.type): the records
 * section is decompressed (at most max_decompressed bytes) and compressed again; every header
 * field but the codec bits, batchLength and CRC is kept, so offsets, timestamps and producer
 * fields are unchanged. The new batch is appended to out. 0 or a negative status.
 */
int kp_batch_recompress(const uint8_t *batch, size_t len, int codec, int level,
                        size_t max_decompressed, kp_buf_t *out);

/* Builder: accumulates records, then emits one complete batch with CRC. */
typedef struct {
    kp_buf_t records; /* uncompressed record bytes */
    int32_t count;
    int64_t base_timestamp, max_timestamp;
    int16_t attributes;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
} kp_batch_builder_t;

void kp_batch_builder_init(kp_batch_builder_t *bb, int codec);
void kp_batch_builder_deinit(kp_batch_builder_t *bb);
int kp_batch_builder_add(kp_batch_builder_t *bb, int64_t timestamp, kp_bytes_t key,
                         kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders);
/* Appends the finished batch (base offset 0) to out and resets the builder. */
int kp_batch_builder_finish(kp_batch_builder_t *bb, kp_buf_t *out);

#endif

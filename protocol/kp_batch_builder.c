/*
 * Batch builder: records are encoded uncompressed into bb->records as they are added; finish
 * writes the 61-byte header, the (optionally compressed) records, then patches batchLength and
 * the CRC. Single-threaded; the builder owns bb->records.
 */
#include "protocol/kp_batch.h"

#include "protocol/kp_crc32c.h"

static size_t zz32_size(int32_t v)
{
    return kp_uvarint_size((uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

static size_t zz64_size(int64_t v)
{
    return kp_uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static size_t varbytes_size(kp_bytes_t b)
{
    if (!b.ptr || b.len < 0) return zz32_size(-1);
    return zz32_size(b.len) + (size_t)b.len;
}

static void put_varbytes(kp_buf_t *out, kp_bytes_t b)
{
    if (!b.ptr || b.len < 0) {
        kp_put_varint(out, -1);
        return;
    }
    kp_put_varint(out, b.len);
    kp_put_raw(out, b.ptr, (size_t)b.len);
}

static void builder_clear(kp_batch_builder_t *bb)
{
    kp_buf_reset(&bb->records);
    bb->count = 0;
    bb->base_timestamp = -1;
    bb->max_timestamp = -1;
}

void kp_batch_builder_init(kp_batch_builder_t *bb, int codec)
{
    memset(bb, 0, sizeof *bb);
    kp_buf_init(&bb->records);
    bb->attributes = (int16_t)(codec & KP_BATCH_ATTR_COMPRESSION_MASK);
    bb->producer_id = -1;
    bb->producer_epoch = -1;
    bb->base_sequence = -1;
    builder_clear(bb);
}

void kp_batch_builder_deinit(kp_batch_builder_t *bb)
{
    kp_buf_deinit(&bb->records);
}

int kp_batch_builder_add(kp_batch_builder_t *bb, int64_t timestamp, kp_bytes_t key,
                         kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders)
{
    if (nheaders < 0 || (nheaders > 0 && !headers) || bb->count == INT32_MAX) return K_ERR_INVAL;
    for (int32_t i = 0; i < nheaders; i++)
        if (!headers[i].key.ptr || headers[i].key.len < 0)
            return K_ERR_INVAL; /* header keys may not be null */
    if (bb->count == 0) bb->base_timestamp = timestamp;
    if (timestamp > bb->max_timestamp || bb->count == 0) bb->max_timestamp = timestamp;
    int64_t ts_delta = timestamp - bb->base_timestamp;
    int32_t off_delta = bb->count;

    size_t size = 1 + zz64_size(ts_delta) + zz32_size(off_delta) + varbytes_size(key) +
                  varbytes_size(value) + zz32_size(nheaders);
    for (int32_t i = 0; i < nheaders; i++)
        size += varbytes_size(headers[i].key) + varbytes_size(headers[i].value);
    if (size > INT32_MAX) return K_ERR_TOOLARGE;

    kp_buf_t *out = &bb->records;
    size_t start = out->len;
    kp_put_varint(out, (int32_t)size);
    kp_put_i8(out, 0);
    kp_put_varlong(out, ts_delta);
    kp_put_varint(out, off_delta);
    put_varbytes(out, key);
    put_varbytes(out, value);
    kp_put_varint(out, nheaders);
    for (int32_t i = 0; i < nheaders; i++) {
        put_varbytes(out, headers[i].key);
        put_varbytes(out, headers[i].value);
    }
    if (out->err) {
        int err = out->err;
        out->err = 0;
        out->len = start;
        return err;
    }
    bb->count++;
    return 0;
}

int kp_batch_builder_finish(kp_batch_builder_t *bb, kp_buf_t *out)
{
    if (bb->count == 0) return K_ERR_INVAL;
    if (bb->records.err) return bb->records.err;
    size_t start = out->len;
    kp_put_i64(out, 0);  /* baseOffset: the broker assigns it */
    kp_put_i32(out, 0);  /* batchLength, patched below */
    kp_put_i32(out, -1); /* partitionLeaderEpoch: the broker stamps it */
    kp_put_i8(out, 2);
    kp_put_u32(out, 0); /* crc, patched below */
    kp_put_i16(out, bb->attributes);
    kp_put_i32(out, bb->count - 1);
    kp_put_i64(out, bb->base_timestamp);
    kp_put_i64(out, bb->max_timestamp);
    kp_put_i64(out, bb->producer_id);
    kp_put_i16(out, bb->producer_epoch);
    kp_put_i32(out, bb->base_sequence);
    kp_put_i32(out, bb->count);
    int codec = bb->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    int rc = out->err;
    if (!rc) {
        if (codec == KP_COMPRESSION_NONE)
            kp_put_raw(out, bb->records.data, bb->records.len);
        else
            rc = kp_compress(codec, bb->records.data, bb->records.len, out);
    }
    if (!rc) rc = out->err;
    if (!rc && out->len - start - KP_BATCH_LOG_OVERHEAD > INT32_MAX) rc = K_ERR_TOOLARGE;
    if (rc) {
        if (!out->err) out->len = start;
        return rc;
    }
    kp_buf_patch_i32(out, start + 8, (int32_t)(out->len - start - KP_BATCH_LOG_OVERHEAD));
    kp_buf_patch_u32(out, start + 17, kp_crc32c(0, out->data + start + 21, out->len - start - 21));
    builder_clear(bb);
    return 0;
}

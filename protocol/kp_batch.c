/*
 * RecordBatch v2 framing: header parse, validation, in-place stamping of the fields the broker
 * owns, and the walk over concatenated batches. Record-level code is in kp_records.c, the
 * builder in kp_batch_builder.c, codecs in kp_compress.c. Layout: see kp_batch.h.
 */
#include "protocol/kp_batch.h"

#include "protocol/kp_crc32c.h"

#define OFF_BATCH_LENGTH 8
#define OFF_LEADER_EPOCH 12
#define OFF_CRC 17
#define OFF_ATTRIBUTES 21
#define OFF_MAX_TIMESTAMP 35

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static int32_t get_be32(const uint8_t *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
                     p[3]);
}

int kp_batch_hdr_parse(const uint8_t *p, size_t len, kp_batch_hdr_t *h)
{
    /* Magic first, so a short legacy message set is reported as unsupported, not short. */
    if (len <= KP_BATCH_MAGIC_OFFSET) return K_ERR_MALFORMED;
    int8_t magic = (int8_t)p[KP_BATCH_MAGIC_OFFSET];
    if (magic == 0 || magic == 1) return K_ERR_UNSUPPORTED;
    if (magic != 2) return K_ERR_CORRUPT;
    if (len < KP_BATCH_HEADER_SIZE) return K_ERR_MALFORMED;
    kp_reader_t r;
    kp_reader_init(&r, p, KP_BATCH_HEADER_SIZE);
    h->base_offset = kp_read_i64(&r);
    h->batch_length = kp_read_i32(&r);
    h->partition_leader_epoch = kp_read_i32(&r);
    h->magic = kp_read_i8(&r);
    h->crc = kp_read_u32(&r);
    h->attributes = kp_read_i16(&r);
    h->last_offset_delta = kp_read_i32(&r);
    h->base_timestamp = kp_read_i64(&r);
    h->max_timestamp = kp_read_i64(&r);
    h->producer_id = kp_read_i64(&r);
    h->producer_epoch = kp_read_i16(&r);
    h->base_sequence = kp_read_i32(&r);
    h->records_count = kp_read_i32(&r);
    return r.err;
}

int64_t kp_batch_size(const uint8_t *p, size_t len)
{
    if (len < KP_BATCH_LOG_OVERHEAD) return K_ERR_MALFORMED;
    int32_t blen = get_be32(p + OFF_BATCH_LENGTH);
    if (blen < KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD) return K_ERR_CORRUPT;
    return (int64_t)KP_BATCH_LOG_OVERHEAD + blen;
}

int kp_batch_validate(const uint8_t *p, size_t len, kp_batch_hdr_t *h)
{
    kp_batch_hdr_t tmp;
    if (!h) h = &tmp;
    int rc = kp_batch_hdr_parse(p, len, h);
    if (rc) return rc;
    if (h->batch_length < 0 || (size_t)h->batch_length != len - KP_BATCH_LOG_OVERHEAD)
        return K_ERR_CORRUPT;
    if (h->last_offset_delta < 0 || h->records_count < 0) return K_ERR_CORRUPT;
    if (kp_crc32c(0, p + OFF_ATTRIBUTES, len - OFF_ATTRIBUTES) != h->crc) return K_ERR_CORRUPT;
    return 0;
}

void kp_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    put_be64(p, (uint64_t)base_offset);
}

void kp_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    put_be32(p + OFF_LEADER_EPOCH, (uint32_t)epoch);
}

void kp_batch_set_log_append_time(uint8_t *p, size_t len, int64_t ts)
{
    if (len < KP_BATCH_HEADER_SIZE) return;
    p[OFF_ATTRIBUTES + 1] |= KP_BATCH_ATTR_LOG_APPEND_TIME; /* low byte of the int16 */
    put_be64(p + OFF_MAX_TIMESTAMP, (uint64_t)ts);
    put_be32(p + OFF_CRC, kp_crc32c(0, p + OFF_ATTRIBUTES, len - OFF_ATTRIBUTES));
}

void kp_batch_iter_init(kp_batch_iter_t *it, const void *buf, size_t len, bool strict)
{
    it->p = buf;
    it->end = len ? it->p + len : it->p; /* NULL + 0 is undefined in C */
    it->strict = strict;
}

int kp_batch_iter_next(kp_batch_iter_t *it, const uint8_t **batch, size_t *blen)
{
    size_t left = (size_t)(it->end - it->p);
    if (left == 0) return 0;
    int64_t size = kp_batch_size(it->p, left);
    if (size == K_ERR_MALFORMED || (size > 0 && (uint64_t)size > left)) {
        /* A fetch response may end in a partial batch; only the strict caller minds. */
        it->p = it->end;
        return it->strict ? K_ERR_MALFORMED : 0;
    }
    if (size < 0) return (int)size;
    *batch = it->p;
    *blen = (size_t)size;
    it->p += size;
    return 1;
}

int kp_batch_verify_count(const uint8_t *batch, size_t len, size_t max_decompressed)
{
    kp_records_t it;
    int rc = kp_records_init(&it, batch, len, max_decompressed);
    if (rc < 0) return rc;
    int32_t want = it.hdr.records_count, n = 0;
    kp_record_t rec;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        if (rec.offset_delta != n) {
            rc = K_ERR_CORRUPT;
            break;
        }
        n++;
    }
    kp_records_deinit(&it);
    if (rc < 0) return rc;
    return n == want ? 0 : K_ERR_CORRUPT;
}

int kp_batch_recompress(const uint8_t *batch, size_t len, int codec, int level,
                        size_t max_decompressed, kp_buf_t *out)
{
    kp_batch_hdr_t h;
    int rc = kp_batch_hdr_parse(batch, len, &h);
    if (rc < 0) return rc;
    if (codec < KP_COMPRESSION_NONE || codec > KP_COMPRESSION_ZSTD) return K_ERR_UNSUPPORTED;
    int from = h.attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    const uint8_t *body = batch + KP_BATCH_HEADER_SIZE;
    size_t body_len = len - KP_BATCH_HEADER_SIZE;
    kp_buf_t raw;
    kp_buf_init(&raw);
    if (from != KP_COMPRESSION_NONE) {
        if ((rc = kp_decompress(from, body, body_len, max_decompressed, &raw)) < 0) {
            kp_buf_deinit(&raw);
            return rc;
        }
        body = raw.data;
        body_len = raw.len;
    }
    size_t start = out->len;
    kp_put_raw(out, batch, KP_BATCH_HEADER_SIZE);
    if (!out->err) rc = kp_compress_level(codec, level, body, body_len, out);
    kp_buf_deinit(&raw);
    if (out->err || rc < 0) {
        if (!out->err) out->len = start;
        return rc < 0 ? rc : K_ERR_NOMEM;
    }
    uint8_t *p = out->data + start;
    size_t n = out->len - start;
    if (n - KP_BATCH_LOG_OVERHEAD > INT32_MAX) {
        out->len = start;
        return K_ERR_TOOLARGE;
    }
    put_be32(p + OFF_BATCH_LENGTH, (uint32_t)(n - KP_BATCH_LOG_OVERHEAD));
    uint16_t attrs = (uint16_t)((h.attributes & ~KP_BATCH_ATTR_COMPRESSION_MASK) | codec);
    p[OFF_ATTRIBUTES] = (uint8_t)(attrs >> 8);
    p[OFF_ATTRIBUTES + 1] = (uint8_t)attrs;
    put_be32(p + OFF_CRC, kp_crc32c(0, p + OFF_ATTRIBUTES, n - OFF_ATTRIBUTES));
    return 0;
}

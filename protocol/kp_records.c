/*
 * Record iteration inside one RecordBatch v2. Each record is
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint (-1 = null) | key | valueLength varint | value |
 *   headersCount varint | headers: (keyLength varint | key | valueLength varint | value)*
 * A record whose fields do not fill exactly its length, a header with a null key, or a batch
 * holding fewer or more records than recordsCount is K_ERR_MALFORMED.
 */
#include "protocol/kp_batch.h"

#include <stdlib.h>

int kp_records_init(kp_records_t *it, const uint8_t *batch, size_t len, size_t max_decompressed)
{
    memset(it, 0, sizeof *it);
    it->max_decompressed = max_decompressed;
    int rc = kp_batch_hdr_parse(batch, len, &it->hdr);
    if (rc) return rc;
    if (it->hdr.batch_length < KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD ||
        (size_t)it->hdr.batch_length > len - KP_BATCH_LOG_OVERHEAD || it->hdr.records_count < 0)
        return K_ERR_MALFORMED;
    const uint8_t *body = batch + KP_BATCH_HEADER_SIZE;
    size_t body_len = (size_t)it->hdr.batch_length + KP_BATCH_LOG_OVERHEAD - KP_BATCH_HEADER_SIZE;
    int codec = it->hdr.attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec != KP_COMPRESSION_NONE) {
        kp_buf_t out;
        kp_buf_init(&out);
        rc = kp_decompress(codec, body, body_len, max_decompressed, &out);
        if (rc) {
            kp_buf_deinit(&out);
            return rc;
        }
        it->owned = kp_buf_detach(&out, &body_len); /* owned by the iterator */
        body = it->owned;
    }
    kp_reader_init(&it->r, body, body_len);
    it->left = it->hdr.records_count;
    return 0;
}

void kp_records_deinit(kp_records_t *it)
{
    free(it->owned);
    it->owned = NULL;
}

/* Varint length then that many bytes; -1 is null, anything lower is malformed. */
static kp_bytes_t read_varbytes(kp_reader_t *r)
{
    kp_bytes_t b = {NULL, -1};
    int32_t n = kp_read_varint(r);
    if (n < -1) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return b;
    }
    if (r->err || n < 0) return b;
    b.ptr = kp_read_raw(r, (size_t)n);
    b.len = b.ptr ? n : -1;
    return b;
}

int kp_record_header_next(kp_reader_t *hr, kp_record_header_t *h)
{
    if (hr->err) return K_ERR_MALFORMED;
    if (hr->p == hr->end) return 0;
    h->key = read_varbytes(hr);
    if (!hr->err && h->key.len < 0)
        kp_reader_fail(hr, K_ERR_MALFORMED); /* Kafka forbids null header keys */
    h->value = read_varbytes(hr);
    return hr->err ? K_ERR_MALFORMED : 1;
}

int kp_records_next(kp_records_t *it, kp_record_t *rec)
{
    kp_reader_t *r = &it->r;
    /* Bytes left after recordsCount records mean the count lies (Kafka refuses these too). */
    if (it->left <= 0) return kp_remaining(r) ? K_ERR_MALFORMED : 0;
    int32_t size = kp_read_varint(r);
    if (size < 0) return K_ERR_MALFORMED;
    const uint8_t *p = kp_read_raw(r, (size_t)size);
    if (!p) return K_ERR_MALFORMED;
    kp_reader_t rr;
    kp_reader_init(&rr, p, (size_t)size);
    rec->attributes = kp_read_i8(&rr);
    rec->timestamp_delta = kp_read_varlong(&rr);
    rec->offset_delta = kp_read_varint(&rr);
    rec->key = read_varbytes(&rr);
    rec->value = read_varbytes(&rr);
    rec->headers_count = kp_read_varint(&rr);
    if (rr.err || rec->headers_count < 0) return K_ERR_MALFORMED;
    rec->headers = rr.p;
    rec->headers_len = kp_remaining(&rr);
    /* Walk the headers now so a consumer of this record never meets a malformed one. */
    kp_record_header_t h;
    for (int32_t i = 0; i < rec->headers_count; i++)
        if (kp_record_header_next(&rr, &h) != 1) return K_ERR_MALFORMED;
    if (rr.p != rr.end) return K_ERR_MALFORMED;
    it->left--;
    return 1;
}

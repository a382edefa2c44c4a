/*
 * Field helpers used by the generated codecs in protocol/gen/ (not a public interface; other
 * modules use the kp_<api>_* functions).
 *
 * They add the schema's nullability rule to the kp_buf.h primitives: reading a null where the
 * version does not allow one is malformed, and writing a null where it is not allowed writes
 * an empty value instead. Null is len < 0; {NULL, 0} is an ordinary empty string/bytes.
 */
#ifndef KP_CODEC_H
#define KP_CODEC_H

#include "protocol/kp_buf.h"

static inline kp_str_t kp_read_str_field(kp_reader_t *r, bool compact, bool nullable)
{
    kp_str_t s = kp_read_string(r, compact);
    if (s.len < 0 && !nullable) kp_reader_fail(r, K_ERR_MALFORMED);
    return s;
}

static inline kp_bytes_t kp_read_bytes_field(kp_reader_t *r, bool compact, bool nullable)
{
    kp_bytes_t v = kp_read_bytes(r, compact);
    if (v.len < 0 && !nullable) kp_reader_fail(r, K_ERR_MALFORMED);
    return v;
}

/* Array count, bounded by the bytes left (min_elem bytes each); -1 = null. */
static inline int32_t kp_read_count(kp_reader_t *r, bool compact, size_t min_elem, bool nullable)
{
    if (r->err) return -1;
    int32_t n = kp_read_array_len(r, compact, min_elem);
    if (n < 0 && !nullable) kp_reader_fail(r, K_ERR_MALFORMED);
    return n;
}

/*
 * A tagged field's value: reads its size and returns a reader over exactly those bytes, so a
 * known tag can never read into its neighbour. kp_tag_value_done carries an error back.
 */
static inline kp_reader_t kp_read_tag_value(kp_reader_t *r)
{
    kp_reader_t tv;
    uint32_t size = kp_read_uvarint(r);
    const uint8_t *p = kp_read_raw(r, size);
    kp_reader_init(&tv, p, p ? size : 0);
    if (!p) tv.err = r->err;
    return tv;
}

static inline void kp_tag_value_done(kp_reader_t *r, const kp_reader_t *tv)
{
    if (tv->err) kp_reader_fail(r, tv->err);
}

static inline void kp_put_str_field(kp_buf_t *b, kp_str_t s, bool compact, bool nullable)
{
    if (s.len < 0) {
        kp_put_len16(b, nullable ? -1 : 0, compact);
        return;
    }
    kp_put_len16(b, s.len, compact);
    if (s.len > 0) kp_put_raw(b, s.ptr, (size_t)s.len);
}

static inline void kp_put_bytes_field(kp_buf_t *b, kp_bytes_t v, bool compact, bool nullable)
{
    if (v.len < 0) {
        kp_put_len32(b, nullable ? -1 : 0, compact);
        return;
    }
    kp_put_len32(b, v.len, compact);
    if (v.len > 0 && v.ptr == KP_HOLE) {
        if (b->on_hole)
            b->on_hole(b->hole_ud, b->len, (size_t)v.len);
        else if (!b->err)
            b->err = K_ERR_INVAL;
        return;
    }
    if (v.len > 0) kp_put_raw(b, v.ptr, (size_t)v.len);
}

static inline void kp_put_count(kp_buf_t *b, int32_t n, bool compact, bool nullable)
{
    kp_put_len32(b, n < 0 ? (nullable ? -1 : 0) : n, compact);
}

static inline bool kp_uuid_is_zero(kp_uuid_t u)
{
    static const kp_uuid_t zero;
    return memcmp(u.b, zero.b, sizeof u.b) == 0;
}

/*
 * Frames a tagged field whose value was just written at [start, b->len): inserts the tag and
 * the value's size in front of it.
 */
void kp_put_tag_frame(kp_buf_t *b, uint32_t tag, size_t start);

#endif

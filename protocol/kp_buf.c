/* Write buffer and arena behind kp_buf.h. */
#include "protocol/kp_buf.h"

#include <stdlib.h>

struct kp_arena_chunk {
    kp_arena_chunk_t *next;
    size_t cap, used;
    _Alignas(8) uint8_t data[];
};

void kp_arena_init(kp_arena_t *a, void *buf, size_t cap, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->fixed = buf;
    a->fixed_cap = buf ? cap : 0;
    a->limit = limit;
}

void kp_arena_reset(kp_arena_t *a)
{
    kp_arena_chunk_t *c = a->head;
    while (c) {
        kp_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->fixed_used = 0;
    a->heap_used = 0;
}

void kp_arena_deinit(kp_arena_t *a)
{
    kp_arena_reset(a);
}

void *kp_arena_alloc(kp_arena_t *a, size_t size)
{
    /* A size near SIZE_MAX would wrap in the rounding below (and in the chunk header sum),
     * handing back 8 bytes to a caller that believes it got size. */
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + 7) & ~(size_t)7;
    if (size == 0)
        size = 8;
    if (a->fixed && a->fixed_cap - a->fixed_used >= size) {
        uint8_t *p = a->fixed + a->fixed_used;
        a->fixed_used += size;
        memset(p, 0, size);
        return p;
    }
    kp_arena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 4096 ? size : 4096;
        if (a->limit && a->heap_used + cap > a->limit)
            return NULL;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->heap_used += cap;
    }
    uint8_t *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

const uint8_t kp_hole_marker[1];

void kp_buf_init(kp_buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void kp_buf_deinit(kp_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void kp_buf_reset(kp_buf_t *b)
{
    b->len = 0;
    b->err = 0;
}

int kp_buf_reserve(kp_buf_t *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->err = K_ERR_NOMEM;
            return b->err;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->err = K_ERR_NOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

uint8_t *kp_buf_detach(kp_buf_t *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

size_t kp_put_raw(kp_buf_t *b, const void *p, size_t n)
{
    size_t off = b->len;
    if (kp_buf_reserve(b, n))
        return off;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return off;
}

size_t kp_put_i8(kp_buf_t *b, int8_t v)
{
    return kp_put_raw(b, &v, 1);
}

size_t kp_put_bool(kp_buf_t *b, bool v)
{
    return kp_put_i8(b, v ? 1 : 0);
}

size_t kp_put_u16(kp_buf_t *b, uint16_t v)
{
    uint8_t q[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return kp_put_raw(b, q, 2);
}

size_t kp_put_i16(kp_buf_t *b, int16_t v)
{
    return kp_put_u16(b, (uint16_t)v);
}

size_t kp_put_u32(kp_buf_t *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return kp_put_raw(b, q, 4);
}

size_t kp_put_i32(kp_buf_t *b, int32_t v)
{
    return kp_put_u32(b, (uint32_t)v);
}

size_t kp_put_i64(kp_buf_t *b, int64_t v)
{
    size_t off = kp_put_u32(b, (uint32_t)((uint64_t)v >> 32));
    kp_put_u32(b, (uint32_t)v);
    return off;
}

size_t kp_put_f64(kp_buf_t *b, double v)
{
    int64_t u;
    memcpy(&u, &v, sizeof u);
    return kp_put_i64(b, u);
}

size_t kp_put_uuid(kp_buf_t *b, kp_uuid_t u)
{
    return kp_put_raw(b, u.b, 16);
}

size_t kp_put_uvarint(kp_buf_t *b, uint64_t v)
{
    uint8_t q[10];
    size_t n = 0;
    while (v >= 0x80) {
        q[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    q[n++] = (uint8_t)v;
    return kp_put_raw(b, q, n);
}

size_t kp_put_varint(kp_buf_t *b, int32_t v)
{
    return kp_put_uvarint(b, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

size_t kp_put_varlong(kp_buf_t *b, int64_t v)
{
    return kp_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

size_t kp_put_len16(kp_buf_t *b, int32_t len, bool compact)
{
    if (compact)
        return kp_put_uvarint(b, (uint64_t)(len < 0 ? 0 : (uint32_t)len + 1));
    return kp_put_i16(b, (int16_t)(len < 0 ? -1 : len));
}

size_t kp_put_len32(kp_buf_t *b, int32_t len, bool compact)
{
    if (compact)
        return kp_put_uvarint(b, (uint64_t)(len < 0 ? 0 : (uint32_t)len + 1));
    return kp_put_i32(b, len < 0 ? -1 : len);
}

size_t kp_put_string(kp_buf_t *b, kp_str_t s, bool compact)
{
    size_t off = kp_put_len16(b, s.ptr ? s.len : -1, compact);
    if (s.ptr && s.len > 0)
        kp_put_raw(b, s.ptr, (size_t)s.len);
    return off;
}

size_t kp_put_cstr(kp_buf_t *b, const char *s, bool compact)
{
    return kp_put_string(b, kp_str(s), compact);
}

size_t kp_put_bytes(kp_buf_t *b, kp_bytes_t v, bool compact)
{
    size_t off = kp_put_len32(b, v.ptr ? v.len : -1, compact);
    if (v.ptr && v.len > 0)
        kp_put_raw(b, v.ptr, (size_t)v.len);
    return off;
}

size_t kp_put_empty_tags(kp_buf_t *b)
{
    return kp_put_i8(b, 0);
}

void kp_buf_patch_u32(kp_buf_t *b, size_t off, uint32_t v)
{
    if (b->err || off + 4 > b->len)
        return;
    b->data[off] = (uint8_t)(v >> 24);
    b->data[off + 1] = (uint8_t)(v >> 16);
    b->data[off + 2] = (uint8_t)(v >> 8);
    b->data[off + 3] = (uint8_t)v;
}

void kp_buf_patch_i32(kp_buf_t *b, size_t off, int32_t v)
{
    kp_buf_patch_u32(b, off, (uint32_t)v);
}

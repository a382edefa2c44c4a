/*
 * Wire primitives: a bounds-checked read cursor, a growable write buffer, and a bump arena
 * for decoded arrays.
 *
 * Reading: kp_reader_t is {p, end, err}. Every read checks the remaining bytes; a read past
 * the end (or a negative/lying length) sets err to K_ERR_MALFORMED and returns a zero value.
 * The error is sticky, so callers decode a whole struct and check err once.
 *
 * Strings and bytes decoded from a frame are views (kp_str_t/kp_bytes_t) into that frame and
 * are valid only while the frame is. Null is len == -1.
 *
 * Writing: kp_buf_t grows with realloc (or the allocator the caller installs). Each put
 * returns the offset it wrote at, so lengths and CRCs can be patched afterwards with
 * kp_buf_patch_*. An allocation failure sets err (sticky) and later puts do nothing.
 *
 * Thread-safety: none; each object belongs to one thread.
 */
#ifndef KP_BUF_H
#define KP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol/k_status.h"

typedef struct {
    const char *ptr;
    int32_t len; /* -1 = null */
} kp_str_t;

typedef struct {
    const uint8_t *ptr;
    int32_t len; /* -1 = null */
} kp_bytes_t;

typedef struct {
    uint8_t b[16];
} kp_uuid_t;

/* ------------------------------------------------------------------------------------------ */
/* Reader                                                                                       */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int err; /* 0 or K_ERR_MALFORMED / K_ERR_NOMEM; sticky */
} kp_reader_t;

static inline void kp_reader_init(kp_reader_t *r, const void *buf, size_t len)
{
    r->p = (const uint8_t *)buf;
    r->end = len ? r->p + len : r->p; /* NULL + 0 is undefined in C */
    r->err = 0;
}

static inline size_t kp_remaining(const kp_reader_t *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}

static inline void kp_reader_fail(kp_reader_t *r, int err)
{
    if (!r->err)
        r->err = err;
    r->p = r->end;
}

/* Returns a pointer to n bytes and advances, or NULL (and sets err) if fewer remain. */
static inline const uint8_t *kp_read_raw(kp_reader_t *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

static inline int8_t kp_read_i8(kp_reader_t *r)
{
    const uint8_t *q = kp_read_raw(r, 1);
    return q ? (int8_t)q[0] : 0;
}

static inline bool kp_read_bool(kp_reader_t *r)
{
    return kp_read_i8(r) != 0;
}

static inline uint16_t kp_read_u16(kp_reader_t *r)
{
    const uint8_t *q = kp_read_raw(r, 2);
    return q ? (uint16_t)((q[0] << 8) | q[1]) : 0;
}

static inline int16_t kp_read_i16(kp_reader_t *r)
{
    return (int16_t)kp_read_u16(r);
}

static inline uint32_t kp_read_u32(kp_reader_t *r)
{
    const uint8_t *q = kp_read_raw(r, 4);
    return q ? ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3] : 0;
}

static inline int32_t kp_read_i32(kp_reader_t *r)
{
    return (int32_t)kp_read_u32(r);
}

static inline uint64_t kp_read_u64(kp_reader_t *r)
{
    uint64_t hi = kp_read_u32(r);
    return (hi << 32) | kp_read_u32(r);
}

static inline int64_t kp_read_i64(kp_reader_t *r)
{
    return (int64_t)kp_read_u64(r);
}

static inline double kp_read_f64(kp_reader_t *r)
{
    uint64_t u = kp_read_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline kp_uuid_t kp_read_uuid(kp_reader_t *r)
{
    kp_uuid_t u;
    const uint8_t *q = kp_read_raw(r, 16);
    if (q)
        memcpy(u.b, q, 16);
    else
        memset(u.b, 0, 16);
    return u;
}

/* Unsigned LEB128, at most 10 bytes; overlong encodings are malformed. */
static inline uint64_t kp_read_uvarlong(kp_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        const uint8_t *q = kp_read_raw(r, 1);
        if (!q)
            return 0;
        v |= (uint64_t)(q[0] & 0x7f) << shift;
        if (!(q[0] & 0x80))
            return v;
    }
    kp_reader_fail(r, K_ERR_MALFORMED);
    return 0;
}

static inline uint32_t kp_read_uvarint(kp_reader_t *r)
{
    uint64_t v = kp_read_uvarlong(r);
    if (v > UINT32_MAX) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return 0;
    }
    return (uint32_t)v;
}

/* Zig-zag signed varints (record fields). */
static inline int64_t kp_read_varlong(kp_reader_t *r)
{
    uint64_t u = kp_read_uvarlong(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline int32_t kp_read_varint(kp_reader_t *r)
{
    uint32_t u = kp_read_uvarint(r);
    return (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
}

/*
 * Length prefix of a string/bytes/array: int16 (strings, classic), int32 (bytes/arrays,
 * classic) or unsigned varint N+1 (compact). Returns -1 for null, else the length.
 */
static inline int32_t kp_read_len16(kp_reader_t *r, bool compact)
{
    if (compact) {
        uint32_t n = kp_read_uvarint(r);
        if (n > (uint32_t)INT32_MAX) {
            kp_reader_fail(r, K_ERR_MALFORMED);
            return -1;
        }
        return (int32_t)n - 1;
    }
    int16_t n = kp_read_i16(r);
    if (n < -1) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return -1;
    }
    return n;
}

static inline int32_t kp_read_len32(kp_reader_t *r, bool compact)
{
    if (compact)
        return kp_read_len16(r, true);
    int32_t n = kp_read_i32(r);
    if (n < -1) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return -1;
    }
    return n;
}

/* Nullable string; a null where the schema forbids it is the caller's check. */
static inline kp_str_t kp_read_string(kp_reader_t *r, bool compact)
{
    kp_str_t s = {NULL, -1};
    int32_t n = kp_read_len16(r, compact);
    if (r->err || n < 0)
        return s;
    s.ptr = (const char *)kp_read_raw(r, (size_t)n);
    s.len = s.ptr ? n : -1;
    return s;
}

static inline kp_bytes_t kp_read_bytes(kp_reader_t *r, bool compact)
{
    kp_bytes_t b = {NULL, -1};
    int32_t n = kp_read_len32(r, compact);
    if (r->err || n < 0)
        return b;
    b.ptr = kp_read_raw(r, (size_t)n);
    b.len = b.ptr ? n : -1;
    return b;
}

/*
 * Array count, checked against the bytes left: each element needs at least min_elem bytes,
 * so a lying count fails here, before anything is allocated. Returns -1 for null.
 */
static inline int32_t kp_read_array_len(kp_reader_t *r, bool compact, size_t min_elem)
{
    int32_t n = kp_read_len32(r, compact);
    if (r->err || n < 0)
        return -1;
    if (min_elem == 0)
        min_elem = 1;
    if ((size_t)n > kp_remaining(r) / min_elem) {
        kp_reader_fail(r, K_ERR_MALFORMED);
        return -1;
    }
    return n;
}

/* Skips a whole tagged-field section (all tags unknown to the caller). */
static inline void kp_skip_tags(kp_reader_t *r)
{
    uint32_t n = kp_read_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)kp_read_uvarint(r); /* tag */
        uint32_t size = kp_read_uvarint(r);
        (void)kp_read_raw(r, size);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Arena: bump allocation for decoded arrays. Freed all at once with kp_arena_reset/deinit.   */

typedef struct kp_arena_chunk kp_arena_chunk_t;

typedef struct {
    kp_arena_chunk_t *head; /* heap chunks, owned by the arena */
    uint8_t *fixed;         /* caller's first buffer (not owned), may be NULL */
    size_t fixed_cap, fixed_used;
    size_t limit; /* max heap bytes, 0 = unlimited */
    size_t heap_used;
} kp_arena_t;

/* buf/cap: optional caller-owned first block used before any heap chunk. */
void kp_arena_init(kp_arena_t *a, void *buf, size_t cap, size_t limit);
void kp_arena_reset(kp_arena_t *a); /* frees heap chunks, keeps the caller's block */
void kp_arena_deinit(kp_arena_t *a);
/* Zeroed, 8-byte aligned; NULL on failure or when over the limit. */
void *kp_arena_alloc(kp_arena_t *a, size_t size);

/* Allocates n elements of size sz for a decoded array; sets r->err on failure. */
static inline void *kp_arena_array(kp_arena_t *a, kp_reader_t *r, int32_t n, size_t sz)
{
    if (n <= 0)
        return NULL;
    void *p = kp_arena_alloc(a, (size_t)n * sz);
    if (!p)
        kp_reader_fail(r, K_ERR_NOMEM);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                       */

typedef struct {
    uint8_t *data; /* owned by the buffer unless detached */
    size_t len;
    size_t cap;
    int err; /* K_ERR_NOMEM once an allocation failed; sticky */
    /* Holes (zero-copy responses): a bytes field whose ptr is KP_HOLE is encoded as its
     * length prefix only, and on_hole(hole_ud, at, len) is told where its len bytes belong
     * (at = b->len then); the caller sends them from elsewhere (a file). Without on_hole,
     * a hole fails the buffer (err = K_ERR_INVAL). */
    void (*on_hole)(void *ud, size_t at, size_t len);
    void *hole_ud;
} kp_buf_t;

/* The marker for a hole's bytes (see kp_buf_t); never dereferenced. */
extern const uint8_t kp_hole_marker[1];
#define KP_HOLE (kp_hole_marker)

void kp_buf_init(kp_buf_t *b);
void kp_buf_deinit(kp_buf_t *b);
void kp_buf_reset(kp_buf_t *b); /* len = 0, keeps capacity */
/* Ensures room for n more bytes; returns 0 or K_ERR_NOMEM (also recorded in err). */
int kp_buf_reserve(kp_buf_t *b, size_t n);
/* Hands the bytes to the caller (free() them); the buffer is left empty. */
uint8_t *kp_buf_detach(kp_buf_t *b, size_t *len);

/* Each returns the offset written at (or the current length if the buffer has failed). */
size_t kp_put_raw(kp_buf_t *b, const void *p, size_t n);
size_t kp_put_i8(kp_buf_t *b, int8_t v);
size_t kp_put_i16(kp_buf_t *b, int16_t v);
size_t kp_put_u16(kp_buf_t *b, uint16_t v);
size_t kp_put_i32(kp_buf_t *b, int32_t v);
size_t kp_put_u32(kp_buf_t *b, uint32_t v);
size_t kp_put_i64(kp_buf_t *b, int64_t v);
size_t kp_put_f64(kp_buf_t *b, double v);
size_t kp_put_bool(kp_buf_t *b, bool v);
size_t kp_put_uuid(kp_buf_t *b, kp_uuid_t u);
size_t kp_put_uvarint(kp_buf_t *b, uint64_t v);
size_t kp_put_varint(kp_buf_t *b, int32_t v);  /* zig-zag */
size_t kp_put_varlong(kp_buf_t *b, int64_t v); /* zig-zag */
/* Length prefixes: len -1 writes null. */
size_t kp_put_len16(kp_buf_t *b, int32_t len, bool compact);
size_t kp_put_len32(kp_buf_t *b, int32_t len, bool compact);
size_t kp_put_string(kp_buf_t *b, kp_str_t s, bool compact);
size_t kp_put_cstr(kp_buf_t *b, const char *s, bool compact); /* NULL = null string */
size_t kp_put_bytes(kp_buf_t *b, kp_bytes_t v, bool compact);
size_t kp_put_empty_tags(kp_buf_t *b);

/* Overwrite bytes already written (for lengths/CRCs computed afterwards). */
void kp_buf_patch_i32(kp_buf_t *b, size_t off, int32_t v);
void kp_buf_patch_u32(kp_buf_t *b, size_t off, uint32_t v);

/* Size of v as an unsigned varint (1..10). */
static inline size_t kp_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline kp_str_t kp_str(const char *s)
{
    kp_str_t r = {s, s ? (int32_t)strlen(s) : -1};
    return r;
}

static inline bool kp_str_eq(kp_str_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len >= 0 && (size_t)a.len == n && memcmp(a.ptr, s, n) == 0;
}

#endif

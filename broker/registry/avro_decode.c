/*
 * Avro binary decoding, for validation only (nothing is materialised): walks the writer
 * schema over the bytes and requires that one value uses them exactly.
 *   null: nothing; boolean: one byte 0 or 1; int/long: zig-zag varint (int at most 5 bytes
 *   and in int32 range, long at most 10); float: 4 bytes; double: 8; bytes/string: a long
 *   length >= 0 then that many bytes (strings must be UTF-8); record: fields in order; enum:
 *   an int index into the symbols; array/map: blocks of a long count (negative: |count| and a
 *   long byte size follow), 0 ends, map keys are strings; union: a long branch index, then
 *   the branch; fixed: size bytes.
 * Hostile input is bounded: nesting by KB_AVRO_MAX_DEPTH (recursive schemas), and the total
 * number of values visited by a budget proportional to the input, so a block count of 2^62
 * nulls (zero bytes each) cannot spin.
 */
#include <stdio.h>
#include <string.h>

#include "broker/registry/avro_int.h"
#include "protocol/kp_buf.h"

typedef struct {
    kp_reader_t r;
    const uint8_t *start;
    int64_t budget; /* values left to visit */
    int depth;
    char *msg;
    size_t msglen;
} dctx_t;

static int bad(dctx_t *c, const char *what)
{
    /* After a failed read the cursor sits at the end: the offset then says "at the end". */
    kb_avro_errf(c->msg, c->msglen, "%s at byte %zu", what, (size_t)(c->r.p - c->start));
    return K_ERR_MALFORMED;
}

static int value(dctx_t *c, const kb_avro_node_t *n);

static int read_long(dctx_t *c, int64_t *v)
{
    *v = kp_read_varlong(&c->r);
    return c->r.err ? bad(c, "truncated or overlong varint") : 0;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        int extra = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
        if (extra < 0 || i + (size_t)extra >= n)
            return false;
        for (int k = 1; k <= extra; k++)
            if ((p[i + (size_t)k] & 0xC0) != 0x80)
                return false;
        i += (size_t)extra + 1;
    }
    return true;
}

static int len_bytes(dctx_t *c, bool utf8)
{
    int64_t len;
    if (read_long(c, &len) < 0)
        return K_ERR_MALFORMED;
    if (len < 0 || (uint64_t)len > kp_remaining(&c->r))
        return bad(c, "bytes/string length outside the value");
    const uint8_t *p = kp_read_raw(&c->r, (size_t)len);
    if (utf8 && !utf8_valid(p, (size_t)len))
        return bad(c, "string is not UTF-8");
    return 0;
}

/* Array items or map entries, block by block. */
static int blocks(dctx_t *c, const kb_avro_node_t *n)
{
    for (;;) {
        int64_t count, size;
        if (read_long(c, &count) < 0)
            return K_ERR_MALFORMED;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return bad(c, "bad block count");
            count = -count;
            if (read_long(c, &size) < 0)
                return K_ERR_MALFORMED;
            if (size < 0 || (uint64_t)size > kp_remaining(&c->r))
                return bad(c, "block size outside the value");
        }
        if (count > c->budget)
            return bad(c, "more items than the value can hold");
        for (int64_t i = 0; i < count; i++) {
            if (n->type == KB_AVRO_MAP && len_bytes(c, true) < 0)
                return K_ERR_MALFORMED;
            int rc = value(c, n->items);
            if (rc < 0)
                return rc;
        }
    }
}

static int scalar(dctx_t *c, const kb_avro_node_t *n)
{
    int64_t v;
    const uint8_t *p;
    switch (n->type) {
    case KB_AVRO_NULL: return 0;
    case KB_AVRO_BOOLEAN:
        p = kp_read_raw(&c->r, 1);
        return !p ? bad(c, "truncated boolean") : p[0] > 1 ? bad(c, "boolean not 0 or 1") : 0;
    case KB_AVRO_INT:
        if (read_long(c, &v) < 0)
            return K_ERR_MALFORMED;
        return v < INT32_MIN || v > INT32_MAX ? bad(c, "int out of range") : 0;
    case KB_AVRO_LONG: return read_long(c, &v);
    case KB_AVRO_FLOAT: return kp_read_raw(&c->r, 4) ? 0 : bad(c, "truncated float");
    case KB_AVRO_DOUBLE: return kp_read_raw(&c->r, 8) ? 0 : bad(c, "truncated double");
    case KB_AVRO_BYTES: return len_bytes(c, false);
    case KB_AVRO_STRING: return len_bytes(c, true);
    case KB_AVRO_FIXED:
        return kp_read_raw(&c->r, (size_t)n->size) ? 0 : bad(c, "truncated fixed");
    case KB_AVRO_ENUM:
        if (read_long(c, &v) < 0)
            return K_ERR_MALFORMED;
        return v < 0 || v >= n->n_symbols ? bad(c, "enum index out of range") : 0;
    default: return bad(c, "unexpected type");
    }
}

static int value(dctx_t *c, const kb_avro_node_t *n)
{
    if (--c->budget < 0)
        return bad(c, "value too complex for its size");
    if (++c->depth > KB_AVRO_MAX_DEPTH) {
        c->depth--;
        return bad(c, "value nested too deeply");
    }
    int rc = 0;
    int64_t idx;
    switch (n->type) {
    case KB_AVRO_RECORD:
        for (int i = 0; i < n->n_fields && rc == 0; i++)
            rc = value(c, n->fields[i].type);
        break;
    case KB_AVRO_ARRAY:
    case KB_AVRO_MAP: rc = blocks(c, n); break;
    case KB_AVRO_UNION:
        rc = read_long(c, &idx);
        if (rc == 0 && (idx < 0 || idx >= n->n_branches))
            rc = bad(c, "union branch index out of range");
        if (rc == 0)
            rc = value(c, n->branches[idx]);
        break;
    default: rc = scalar(c, n);
    }
    c->depth--;
    return rc;
}

int kb_avro_validate(const kb_avro_schema_t *s, const uint8_t *buf, size_t len, char *msg,
                     size_t msglen)
{
    if (msg && msglen)
        msg[0] = '\0';
    if (!s || !s->root)
        return K_ERR_INVAL;
    dctx_t c = {.budget = (int64_t)len * 8 + 4096, .msg = msg, .msglen = msglen};
    kp_reader_init(&c.r, buf, len);
    c.start = c.r.p;
    int rc = value(&c, s->root);
    if (rc < 0)
        return rc;
    if (kp_remaining(&c.r) != 0) {
        kb_avro_errf(msg, msglen, "%zu bytes left over after the value", kp_remaining(&c.r));
        return K_ERR_MALFORMED;
    }
    return 0;
}

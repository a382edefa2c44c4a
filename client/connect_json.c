/*
 * Kafka Connect's JsonConverter with schemas.enable=true, for the file connectors' string
 * records: the envelope
 *
 *     {"schema":{"type":"string","optional":false},"payload":"<the line>"}
 *
 * byte for byte as Connect writes it (Jackson's escaping: '"', '\\' and control characters;
 * everything else, UTF-8 included, as is), and the reverse for the sink: the payload of an
 * envelope written by either side. A record that is not an envelope is refused, as Connect's
 * JsonConverter refuses it ("JsonConverter with schemas.enable requires \"schema\" and
 * \"payload\" fields").
 */
#include <string.h>

#include "client/connect_int.h"

static const char ENV_HEAD[] = "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":";

/* Appends s as a JSON string literal, escaped as Jackson does. */
static void put_json_string(kp_buf_t *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    kp_put_raw(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        const char *esc = NULL;
        char u[7];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = 0;
            esc = u;
        }
        if (!esc) continue;
        kp_put_raw(b, s + run, i - run);
        kp_put_raw(b, esc, strlen(esc));
        run = i + 1;
    }
    kp_put_raw(b, s + run, n - run);
    kp_put_raw(b, "\"", 1);
}

void kc_json_envelope_string(kp_buf_t *b, const uint8_t *s, size_t n)
{
    kp_put_raw(b, ENV_HEAD, sizeof ENV_HEAD - 1);
    put_json_string(b, s, n);
    kp_put_raw(b, "}", 1);
}

/* ---- a small JSON reader: enough to find the envelope's payload ----------------------------- */

typedef struct {
    const uint8_t *p, *end;
    int depth;
} jr_t;

static void ws(jr_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(kp_buf_t *b, uint32_t cp)
{
    uint8_t o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (uint8_t)(0xf0 | (cp >> 18));
        o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    kp_put_raw(b, o, n);
}

static int read_u4(jr_t *r, uint32_t *v)
{
    if (r->end - r->p < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(r->p[i]);
        if (h < 0) return -1;
        *v = *v << 4 | (uint32_t)h;
    }
    r->p += 4;
    return 0;
}

/* Reads a string literal at r->p (the opening quote); unescaped bytes go to out if not NULL. */
static int string(jr_t *r, kp_buf_t *out)
{
    if (r->p >= r->end || *r->p != '"') return -1;
    r->p++;
    while (r->p < r->end && *r->p != '"') {
        uint8_t c = *r->p++;
        if (c != '\\') {
            if (c < 0x20) return -1;
            if (out) kp_put_raw(out, &c, 1);
            continue;
        }
        if (r->p >= r->end) return -1;
        c = *r->p++;
        uint32_t cp;
        static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
        const char *simple = c ? strchr(esc_in, c) : NULL;
        if (simple) {
            if (out) kp_put_raw(out, &esc_out[simple - esc_in], 1);
        } else if (c == 'u' && read_u4(r, &cp) == 0) {
            uint32_t lo;
            if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
                r->p[1] == 'u') {
                r->p += 2;
                if (read_u4(r, &lo) || lo < 0xdc00 || lo > 0xdfff) return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (out) put_utf8(out, cp);
        } else {
            return -1;
        }
    }
    if (r->p >= r->end) return -1;
    r->p++;
    return 0;
}

static int value(jr_t *r);

static int container(jr_t *r, uint8_t close, bool object)
{
    if (++r->depth > 64) return -1;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 0;
    }
    for (;;) {
        ws(r);
        if (object) {
            if (string(r, NULL)) return -1;
            ws(r);
            if (r->p >= r->end || *r->p++ != ':') return -1;
            ws(r);
        }
        if (value(r)) return -1;
        ws(r);
        if (r->p >= r->end) return -1;
        uint8_t c = *r->p++;
        if (c == close) break;
        if (c != ',') return -1;
    }
    r->depth--;
    return 0;
}

/* Skips one JSON value. */
static int value(jr_t *r)
{
    ws(r);
    if (r->p >= r->end) return -1;
    uint8_t c = *r->p;
    if (c == '"') return string(r, NULL);
    if (c == '{') return container(r, '}', true);
    if (c == '[') return container(r, ']', false);
    const uint8_t *s = r->p;
    while (r->p < r->end && strchr("+-.0123456789eEtruefalsn", *r->p) && *r->p)
        r->p++;
    return r->p > s ? 0 : -1;
}

int kc_json_envelope_payload(const uint8_t *p, size_t n, kp_buf_t *out)
{
    jr_t r = {p, p + n, 0};
    bool has_schema = false, has_payload = false;
    const uint8_t *pay = NULL, *pay_end = NULL;
    ws(&r);
    if (r.p >= r.end || *r.p != '{') return K_ERR_MALFORMED;
    r.p++;
    for (;;) {
        ws(&r);
        if (r.p < r.end && *r.p == '}' && !has_schema && !has_payload) return K_ERR_MALFORMED;
        kp_buf_t key;
        kp_buf_init(&key);
        int rc = string(&r, &key);
        bool is_schema = !rc && key.len == 6 && !memcmp(key.data, "schema", 6);
        bool is_payload = !rc && key.len == 7 && !memcmp(key.data, "payload", 7);
        kp_buf_deinit(&key);
        ws(&r);
        if (rc || r.p >= r.end || *r.p++ != ':') return K_ERR_MALFORMED;
        ws(&r);
        const uint8_t *vs = r.p;
        if (value(&r)) return K_ERR_MALFORMED;
        if (is_schema) has_schema = true;
        if (is_payload) {
            has_payload = true;
            pay = vs;
            pay_end = r.p;
        }
        ws(&r);
        if (r.p >= r.end) return K_ERR_MALFORMED;
        uint8_t c = *r.p++;
        if (c == '}') break;
        if (c != ',') return K_ERR_MALFORMED;
    }
    if (!has_schema || !has_payload) return K_ERR_MALFORMED;
    if (*pay == '"') {
        jr_t s = {pay, pay_end, 0};
        return string(&s, out) ? K_ERR_MALFORMED : 0;
    }
    /* null, numbers, booleans, objects: their JSON text (Connect prints the value). */
    kp_put_raw(out, pay, (size_t)(pay_end - pay));
    return 0;
}

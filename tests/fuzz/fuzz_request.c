/*
 * libFuzzer target: a request frame (header + body) as the broker sees it. The header is
 * decoded, then the body with the served API's request decoder at the header's version (and,
 * for the client's side, with the response decoder at that version). Whatever decodes must
 * re-encode, and the re-encoded bytes must be a fixed point: decode + encode gives them back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/kp_header.h"

/* A decoded message must encode, and its encoding must survive another round unchanged. */
static void check_fixed_point(const kp_api_t *api, int16_t v, bool resp, const void *msg)
{
    kp_buf_t b1, b2;
    kp_buf_init(&b1);
    kp_buf_init(&b2);
    int rc = resp ? api->resp_encode(&b1, v, msg) : api->req_encode(&b1, v, msg);
    if (rc != 0) abort();
    void *again = malloc(resp ? api->resp_size : api->req_size);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_reader_t r;
    kp_reader_init(&r, b1.data, b1.len);
    rc = resp ? api->resp_decode(&r, v, &a, again) : api->req_decode(&r, v, &a, again);
    if (rc != 0 || kp_remaining(&r) != 0) abort();
    rc = resp ? api->resp_encode(&b2, v, again) : api->req_encode(&b2, v, again);
    if (rc != 0 || b1.len != b2.len || (b1.len && memcmp(b1.data, b2.data, b1.len) != 0)) abort();
    kp_arena_deinit(&a);
    free(again);
    kp_buf_deinit(&b1);
    kp_buf_deinit(&b2);
}

static void decode_body(const kp_api_t *api, int16_t v, bool resp, const uint8_t *p, size_t n)
{
    void *msg = malloc(resp ? api->resp_size : api->req_size);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 1u << 24); /* a lying count must fail, not exhaust memory */
    kp_reader_t r;
    kp_reader_init(&r, p, n);
    int rc = resp ? api->resp_decode(&r, v, &a, msg) : api->req_decode(&r, v, &a, msg);
    if (rc == 0) check_fixed_point(api, v, resp, msg);
    kp_arena_deinit(&a);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_reader_t r;
    kp_req_header_t h;
    kp_reader_init(&r, data, size);
    if (kp_req_header_decode(&r, &h) != 0) return 0;
    const kp_api_t *api = kp_api_get(h.api_key);
    if (!api) return 0;
    decode_body(api, h.api_version, false, r.p, kp_remaining(&r));
    decode_body(api, h.api_version, true, r.p, kp_remaining(&r));
    return 0;
}

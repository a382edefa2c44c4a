/* Request/response headers (kp_header.h). The API table itself is generated: gen/kp_api_table.c. */
#include "protocol/kp_header.h"

int kp_req_header_version(int16_t api_key, int16_t api_version)
{
    int16_t ff = kp_api_first_flexible(api_key);
    return ff >= 0 && api_version >= ff ? 2 : 1;
}

int kp_resp_header_version(int16_t api_key, int16_t api_version)
{
    /* ApiVersions answers with header v0 at every version so any client can read the reply */
    if (api_key == KP_API_API_VERSIONS) return 0;
    int16_t ff = kp_api_first_flexible(api_key);
    return ff >= 0 && api_version >= ff ? 1 : 0;
}

int kp_req_header_decode(kp_reader_t *r, kp_req_header_t *h)
{
    h->api_key = kp_read_i16(r);
    h->api_version = kp_read_i16(r);
    h->correlation_id = kp_read_i32(r);
    /* client_id stays a classic nullable string even in header v2 */
    h->client_id = kp_read_string(r, false);
    if (!r->err && kp_req_header_version(h->api_key, h->api_version) == 2) kp_skip_tags(r);
    return r->err ? K_ERR_MALFORMED : 0;
}

void kp_req_header_encode(kp_buf_t *b, const kp_req_header_t *h)
{
    kp_put_i16(b, h->api_key);
    kp_put_i16(b, h->api_version);
    kp_put_i32(b, h->correlation_id);
    kp_put_string(b, h->client_id.len < 0 ? (kp_str_t){NULL, -1} : h->client_id, false);
    if (kp_req_header_version(h->api_key, h->api_version) == 2) kp_put_empty_tags(b);
}

void kp_resp_header_encode(kp_buf_t *b, int16_t api_key, int16_t api_version,
                           int32_t correlation_id)
{
    kp_put_i32(b, correlation_id);
    if (kp_resp_header_version(api_key, api_version) == 1) kp_put_empty_tags(b);
}

int kp_resp_header_decode(kp_reader_t *r, int16_t api_key, int16_t api_version,
                          int32_t *correlation_id)
{
    *correlation_id = kp_read_i32(r);
    if (!r->err && kp_resp_header_version(api_key, api_version) == 1) kp_skip_tags(r);
    return r->err ? K_ERR_MALFORMED : 0;
}

/*
 * Request and response headers, and the table of APIs the codec serves.
 *
 * Header versions follow the spec: a request header is v2 (v1 + tag section) when the API
 * version is flexible, else v1; a response header is v1 (correlation id + tag section) when
 * flexible, else v0. ApiVersions responses always use header v0 so that a client can parse
 * the reply to any version it tried. A version above an API's first flexible version counts
 * as flexible even when the codec does not serve it, so the correlation id of a request from
 * a newer client can still be read (the ApiVersions fallback needs that).
 */
#ifndef KP_HEADER_H
#define KP_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/kp_buf.h"

typedef struct {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kp_str_t client_id; /* view into the frame; always a classic nullable string */
} kp_req_header_t;

int kp_req_header_version(int16_t api_key, int16_t api_version);  /* 1 or 2 */
int kp_resp_header_version(int16_t api_key, int16_t api_version); /* 0 or 1 */

/* Reads key and version, then the rest at the matching header version. r is left at the
 * body. 0 or K_ERR_MALFORMED. An unknown api key is not an error here (header v1 is used). */
int kp_req_header_decode(kp_reader_t *r, kp_req_header_t *h);
void kp_req_header_encode(kp_buf_t *b, const kp_req_header_t *h);
void kp_resp_header_encode(kp_buf_t *b, int16_t api_key, int16_t api_version,
                           int32_t correlation_id);
int kp_resp_header_decode(kp_reader_t *r, int16_t api_key, int16_t api_version,
                          int32_t *correlation_id);

/* ------------------------------------------------------------------------------------------ */
/* API table                                                                                    */

enum {
    KP_API_PRODUCE = 0,
    KP_API_FETCH = 1,
    KP_API_LIST_OFFSETS = 2,
    KP_API_METADATA = 3,
    KP_API_OFFSET_COMMIT = 8,
    KP_API_OFFSET_FETCH = 9,
    KP_API_FIND_COORDINATOR = 10,
    KP_API_JOIN_GROUP = 11,
    KP_API_HEARTBEAT = 12,
    KP_API_LEAVE_GROUP = 13,
    KP_API_SYNC_GROUP = 14,
    KP_API_DESCRIBE_GROUPS = 15,
    KP_API_LIST_GROUPS = 16,
    KP_API_SASL_HANDSHAKE = 17,
    KP_API_API_VERSIONS = 18,
    KP_API_CREATE_TOPICS = 19,
    KP_API_DELETE_TOPICS = 20,
    KP_API_DELETE_RECORDS = 21,
    KP_API_INIT_PRODUCER_ID = 22,
    KP_API_OFFSET_FOR_LEADER_EPOCH = 23,
    KP_API_DESCRIBE_ACLS = 29,
    KP_API_CREATE_ACLS = 30,
    KP_API_DELETE_ACLS = 31,
    KP_API_DESCRIBE_CONFIGS = 32,
    KP_API_ALTER_CONFIGS = 33,
    KP_API_SASL_AUTHENTICATE = 36,
    KP_API_CREATE_PARTITIONS = 37,
    KP_API_DELETE_GROUPS = 42,
    KP_API_INCREMENTAL_ALTER_CONFIGS = 44,
    KP_API_OFFSET_DELETE = 47,
    KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50,
    KP_API_ALTER_USER_SCRAM_CREDENTIALS = 51,
    KP_API_DESCRIBE_CLUSTER = 60,
    KP_API_CONSUMER_GROUP_HEARTBEAT = 68,
    KP_API_CONSUMER_GROUP_DESCRIBE = 69,
};

/* Generic entry points over the generated per-API codecs (msg points at the API's struct). */
typedef int (*kp_decode_fn)(kp_reader_t *r, int16_t version, kp_arena_t *a, void *msg);
typedef int (*kp_encode_fn)(kp_buf_t *b, int16_t version, const void *msg);

typedef struct {
    int16_t key;
    const char *name;       /* "Produce", as Kafka names it */
    int16_t min_version;    /* the range the codec serves (and the broker may advertise) */
    int16_t max_version;
    int16_t first_flexible; /* from the JSON's flexibleVersions; -1 = never flexible */
    size_t req_size, resp_size;
    kp_decode_fn req_decode, resp_decode;
    kp_encode_fn req_encode, resp_encode;
} kp_api_t;

/* NULL when the codec does not serve the key. */
const kp_api_t *kp_api_get(int16_t key);
/* All served APIs, ordered by key. */
const kp_api_t *kp_api_all(size_t *n);
/* first_flexible of any key in the JSON (served or not), -1 when unknown or never flexible. */
int16_t kp_api_first_flexible(int16_t key);

#endif

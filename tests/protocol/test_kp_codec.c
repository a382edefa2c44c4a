/*
 * Generated codec tests: for every served API and version, request and response, a message
 * with non-default fields survives encode -> decode -> encode byte for byte; defaults, null
 * rules, unsupported versions, headers, the API table and the error table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "protocol/gen/kp_msgs.h"
#include "protocol/kp_errors.h"
#include "protocol/kp_header.h"

#include "tests/protocol/kp_fill.h"

/* ------------------------------------------------------------------------------------------ */

/* encode(fill()) -> decode -> encode must give the same bytes, and decode must consume them. */
static void roundtrip(const kp_api_t *api, int16_t v, fill_fn fill, size_t size, kp_encode_fn enc,
                      kp_decode_fn dec)
{
    void *m1 = calloc(1, size), *m2 = calloc(1, size);
    assert_non_null(m1);
    assert_non_null(m2);
    fill(m1);
    kp_buf_t b1, b2;
    kp_buf_init(&b1);
    kp_buf_init(&b2);
    assert_int_equal(enc(&b1, v, m1), 0);

    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_reader_t r;
    kp_reader_init(&r, b1.data, b1.len);
    int rc = dec(&r, v, &a, m2);
    if (rc != 0) fail_msg("%s v%d: decode failed %d", api->name, v, rc);
    if (kp_remaining(&r) != 0)
        fail_msg("%s v%d: %zu bytes left after decode", api->name, v, kp_remaining(&r));
    assert_int_equal(enc(&b2, v, m2), 0);
    if (b1.len != b2.len || (b1.len && memcmp(b1.data, b2.data, b1.len) != 0))
        fail_msg("%s v%d: re-encode differs (%zu vs %zu bytes)", api->name, v, b1.len, b2.len);

    kp_arena_deinit(&a);
    kp_buf_deinit(&b1);
    kp_buf_deinit(&b2);
    free(m1);
    free(m2);
}

static void test_codec_roundtrip_every_api_version(void **state)
{
    (void)state;
    size_t n;
    const kp_api_t *apis = kp_api_all(&n);
    assert_int_equal(n, sizeof fillers / sizeof fillers[0]);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        const kp_api_t *api = &apis[i];
        size_t f = 0;
        while (f < n && fillers[f].key != api->key)
            f++;
        assert_true(f < n);
        for (int16_t v = api->min_version; v <= api->max_version; v++) {
            roundtrip(api, v, fillers[f].req, api->req_size, api->req_encode, api->req_decode);
            roundtrip(api, v, fillers[f].resp, api->resp_size, api->resp_encode, api->resp_decode);
            checked += 2;
        }
    }
    assert_true(checked > 300);
}

static void test_codec_unsupported_version(void **state)
{
    (void)state;
    size_t n;
    const kp_api_t *apis = kp_api_all(&n);
    uint8_t bytes[64] = {0};
    for (size_t i = 0; i < n; i++) {
        const kp_api_t *api = &apis[i];
        void *m = calloc(1, api->req_size > api->resp_size ? api->req_size : api->resp_size);
        kp_arena_t a;
        kp_arena_init(&a, NULL, 0, 0);
        kp_buf_t b;
        kp_buf_init(&b);
        const int16_t bad[] = {(int16_t)(api->min_version - 1), (int16_t)(api->max_version + 1)};
        for (int k = 0; k < 2; k++) {
            kp_reader_t r;
            kp_reader_init(&r, bytes, sizeof bytes);
            assert_int_equal(api->req_decode(&r, bad[k], &a, m), K_ERR_UNSUPPORTED);
            kp_reader_init(&r, bytes, sizeof bytes);
            assert_int_equal(api->resp_decode(&r, bad[k], &a, m), K_ERR_UNSUPPORTED);
            api->resp_decode(&r, api->min_version, &a, m); /* re-init to defaults */
            assert_int_equal(api->resp_encode(&b, bad[k], m), K_ERR_UNSUPPORTED);
            assert_int_equal(b.len, 0);
        }
        kp_buf_deinit(&b);
        kp_arena_deinit(&a);
        free(m);
    }
}

static void test_codec_defaults_from_json(void **state)
{
    (void)state;
    kp_fetch_req_t f;
    kp_fetch_req_init(&f);
    assert_int_equal(f.max_bytes, 0x7fffffff);
    assert_int_equal(f.replica_id, -1);
    assert_int_equal(f.session_epoch, -1);
    assert_int_equal(f.cluster_id.len, -1);
    assert_int_equal(f.rack_id.len, 0);
    kp_fetch_req_fetch_partition_t p;
    kp_fetch_req_fetch_partition_init(&p);
    assert_int_equal(p.current_leader_epoch, -1);
    assert_int_equal(p.log_start_offset, -1);

    kp_metadata_req_t md;
    kp_metadata_req_init(&md);
    assert_true(md.allow_auto_topic_creation);

    /* a v4 fetch has no leader epoch on the wire: decode leaves the default */
    kp_fetch_req_t in, out;
    kp_fetch_req_fetch_partition_t part;
    kp_fetch_req_fetch_topic_t topic;
    kp_fetch_req_init(&in);
    kp_fetch_req_fetch_partition_init(&part);
    part.current_leader_epoch = 5;
    kp_fetch_req_fetch_topic_init(&topic);
    topic.topic = kp_str("t");
    topic.partitions = &part;
    topic.partitions_count = 1;
    in.topics = &topic;
    in.topics_count = 1;
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kp_fetch_req_encode(&b, 4, &in), 0);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_reader_t r;
    kp_reader_init(&r, b.data, b.len);
    assert_int_equal(kp_fetch_req_decode(&r, 4, &a, &out), 0);
    assert_int_equal(out.topics_count, 1);
    assert_true(kp_str_eq(out.topics[0].topic, "t"));
    assert_int_equal(out.topics[0].partitions[0].current_leader_epoch, -1);
    assert_int_equal(out.session_epoch, -1);
    kp_arena_deinit(&a);
    kp_buf_deinit(&b);
}

static void test_codec_null_rules(void **state)
{
    (void)state;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_buf_t b;
    kp_buf_init(&b);
    kp_reader_t r;

    /* Metadata v1+ topics may be null (all topics); v0 writes a null as empty */
    kp_metadata_req_t md, out;
    kp_metadata_req_init(&md);
    md.topics_count = -1;
    assert_int_equal(kp_metadata_req_encode(&b, 1, &md), 0);
    assert_int_equal(b.len, 4); /* int32 -1; allow_auto_topic_creation only from v4 */
    kp_reader_init(&r, b.data, 4);
    assert_int_equal(kp_metadata_req_decode(&r, 1, &a, &out), 0);
    assert_int_equal(out.topics_count, -1);
    kp_buf_reset(&b);
    assert_int_equal(kp_metadata_req_encode(&b, 0, &md), 0);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.data[3], 0);

    /* a null array where v0 forbids it is malformed */
    const uint8_t null_array[] = {0xff, 0xff, 0xff, 0xff};
    kp_reader_init(&r, null_array, sizeof null_array);
    assert_int_equal(kp_metadata_req_decode(&r, 0, &a, &out), K_ERR_MALFORMED);

    /* a null group id (non-nullable) is malformed */
    const uint8_t hb[] = {0xff, 0xff, 0, 0, 0, 1, 0, 0};
    kp_heartbeat_req_t h;
    kp_reader_init(&r, hb, sizeof hb);
    assert_int_equal(kp_heartbeat_req_decode(&r, 0, &a, &h), K_ERR_MALFORMED);

    /* an array count larger than the bytes left fails before allocating */
    const uint8_t lie[] = {0x7f, 0xff, 0xff, 0xff, 0, 0};
    kp_reader_init(&r, lie, sizeof lie);
    assert_int_equal(kp_metadata_req_decode(&r, 0, &a, &out), K_ERR_MALFORMED);
    assert_null(a.head);

    kp_buf_deinit(&b);
    kp_arena_deinit(&a);
}

static void test_codec_tagged_fields(void **state)
{
    (void)state;
    /* ApiVersions v3 response: tag 1 (finalized_features_epoch) only when not -1 */
    kp_api_versions_resp_t m, out;
    kp_api_versions_resp_init(&m);
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(kp_api_versions_resp_encode(&b, 3, &m), 0);
    /* error_code(2) + compact empty array(1) + throttle(4) + empty tags(1) */
    assert_int_equal(b.len, 8);
    assert_int_equal(b.data[7], 0);
    kp_buf_reset(&b);
    m.finalized_features_epoch = 5;
    assert_int_equal(kp_api_versions_resp_encode(&b, 3, &m), 0);
    const uint8_t want_tags[] = {1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 5};
    assert_int_equal(b.len, 7 + sizeof want_tags);
    assert_memory_equal(b.data + 7, want_tags, sizeof want_tags);

    /* unknown tags are skipped; known ones decoded */
    const uint8_t in[] = {0, 0, 1, 0, 0, 0, 0, 2, 9, 2, 0xab, 0xcd, 1, 8, 0, 0, 0, 0, 0, 0, 0, 7};
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_reader_t r;
    kp_reader_init(&r, in, sizeof in);
    assert_int_equal(kp_api_versions_resp_decode(&r, 3, &a, &out), 0);
    assert_int_equal(out.finalized_features_epoch, 7);
    assert_int_equal(kp_remaining(&r), 0);

    /* a tag whose size runs past the end is malformed */
    const uint8_t bad[] = {0, 0, 1, 0, 0, 0, 0, 1, 1, 9, 0};
    kp_reader_init(&r, bad, sizeof bad);
    assert_int_equal(kp_api_versions_resp_decode(&r, 3, &a, &out), K_ERR_MALFORMED);
    kp_arena_deinit(&a);
    kp_buf_deinit(&b);
}

static void test_header_versions(void **state)
{
    (void)state;
    assert_int_equal(kp_req_header_version(KP_API_METADATA, 8), 1);
    assert_int_equal(kp_req_header_version(KP_API_METADATA, 9), 2);
    assert_int_equal(kp_req_header_version(KP_API_API_VERSIONS, 3), 2);
    assert_int_equal(kp_resp_header_version(KP_API_API_VERSIONS, 3), 0);
    assert_int_equal(kp_resp_header_version(KP_API_FETCH, 12), 1);
    assert_int_equal(kp_resp_header_version(KP_API_SASL_HANDSHAKE, 1), 0);
    assert_int_equal(kp_api_first_flexible(KP_API_SASL_HANDSHAKE), -1);
    assert_int_equal(kp_api_first_flexible(KP_API_DESCRIBE_CLUSTER), 0);
    /* served or not: ConsumerGroupHeartbeat (68) is flexible from v0, AddPartitionsToTxn from 3 */
    assert_int_equal(kp_api_first_flexible(68), 0);
    assert_int_equal(kp_api_first_flexible(24), 3);
    assert_int_equal(kp_api_first_flexible(-1), -1);
    assert_int_equal(kp_api_first_flexible(30000), -1);
    /* ApiVersions v5 (newer than served) still counts as flexible */
    assert_int_equal(kp_req_header_version(KP_API_API_VERSIONS, 5), 2);
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    kp_req_header_t h = {KP_API_FETCH, 12, 0x01020304, {"cli", 3}}, out;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_req_header_encode(&b, &h);
    const uint8_t want[] = {0, 1, 0, 12, 1, 2, 3, 4, 0, 3, 'c', 'l', 'i', 0};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    kp_reader_t r;
    kp_reader_init(&r, b.data, b.len);
    assert_int_equal(kp_req_header_decode(&r, &out), 0);
    assert_int_equal(out.api_key, KP_API_FETCH);
    assert_int_equal(out.correlation_id, 0x01020304);
    assert_true(kp_str_eq(out.client_id, "cli"));
    assert_int_equal(kp_remaining(&r), 0);

    /* v1 header: null client id, no tag section */
    kp_buf_reset(&b);
    h.api_version = 11;
    h.client_id = (kp_str_t){NULL, -1};
    kp_req_header_encode(&b, &h);
    assert_int_equal(b.len, 10);
    kp_reader_init(&r, b.data, b.len);
    assert_int_equal(kp_req_header_decode(&r, &out), 0);
    assert_int_equal(out.client_id.len, -1);
    kp_reader_init(&r, b.data, 9);
    assert_int_equal(kp_req_header_decode(&r, &out), K_ERR_MALFORMED);

    kp_buf_reset(&b);
    kp_resp_header_encode(&b, KP_API_API_VERSIONS, 3, 7);
    assert_int_equal(b.len, 4);
    kp_buf_reset(&b);
    kp_resp_header_encode(&b, KP_API_METADATA, 9, 7);
    assert_int_equal(b.len, 5);
    int32_t corr = 0;
    kp_reader_init(&r, b.data, b.len);
    assert_int_equal(kp_resp_header_decode(&r, KP_API_METADATA, 9, &corr), 0);
    assert_int_equal(corr, 7);
    kp_buf_deinit(&b);
}

static void test_api_table(void **state)
{
    (void)state;
    size_t n;
    const kp_api_t *apis = kp_api_all(&n);
    assert_int_equal(n, 35);
    for (size_t i = 1; i < n; i++)
        assert_true(apis[i - 1].key < apis[i].key);
    const kp_api_t *f = kp_api_get(KP_API_FETCH);
    assert_non_null(f);
    assert_string_equal(f->name, "Fetch");
    assert_int_equal(f->min_version, 4);
    assert_int_equal(f->max_version, 17);
    assert_int_equal(f->first_flexible, 12);
    assert_int_equal(kp_api_get(KP_API_OFFSET_DELETE)->max_version, 0);
    assert_int_equal(kp_api_get(KP_API_OFFSET_COMMIT)->min_version, 2);
    assert_null(kp_api_get(4));
    assert_null(kp_api_get(-1));
}

static void test_errors_table(void **state)
{
    (void)state;
    assert_int_equal(KP_ERR_UNKNOWN_TOPIC_OR_PARTITION, 3);
    assert_int_equal(KP_ERR_UNSUPPORTED_VERSION, 35);
    assert_int_equal(KP_ERR_UNKNOWN_TOPIC_ID, 100);
    assert_int_equal(KP_ERR_INVALID_REGISTRATION, 119);
    assert_string_equal(kp_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_string_equal(kp_error_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_string_equal(kp_error_name(0), "NONE");
    assert_string_equal(kp_error_name(KP_ERR_FENCED_LEADER_EPOCH), "FENCED_LEADER_EPOCH");
    assert_string_equal(kp_error_name(30000), "UNKNOWN");
    assert_string_equal(kp_error_name(-2), "UNKNOWN");
    assert_true(kp_error_retriable(KP_ERR_NOT_LEADER_OR_FOLLOWER));
    assert_true(kp_error_retriable(KP_ERR_LEADER_NOT_AVAILABLE));
    assert_false(kp_error_retriable(KP_ERR_UNSUPPORTED_VERSION));
    assert_false(kp_error_retriable(KP_ERR_NONE));
    assert_false(kp_error_retriable(-2));
    /* every known code has a name that is not the fallback and a message */
    for (int16_t c = -1; c <= KP_ERR_INVALID_REGISTRATION; c++) {
        assert_string_not_equal(kp_error_name(c), "UNKNOWN");
        assert_true(strlen(kp_error_message(c)) > 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip_every_api_version),
        cmocka_unit_test(test_codec_unsupported_version),
        cmocka_unit_test(test_codec_defaults_from_json),
        cmocka_unit_test(test_codec_null_rules),
        cmocka_unit_test(test_codec_tagged_fields),
        cmocka_unit_test(test_header_versions),
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_api_table),
        cmocka_unit_test(test_errors_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

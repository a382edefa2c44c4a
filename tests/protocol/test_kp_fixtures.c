/*
 * Golden bytes: bodies encoded by an independent encoder (kafka-python, see
 * fixtures/make_fixtures.py) and hand-derived flexible-version vectors. Each must decode with
 * Depot's codec, show the expected field values, re-encode byte for byte, and every strict
 * prefix must fail to decode without reading out of bounds (run under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "protocol/gen/kp_msgs.h"
#include "protocol/kp_header.h"
#include "tests/protocol/fixtures/kp_fixtures.h"
#include "tests/protocol/fixtures/kp_fixtures_plt.h"

/*
 * kafka-python 2.0.2 schemas that do not match Kafka's JSON, so their bytes are not a valid
 * message at that version; for these only the truncation/ASan checks run.
 */
static const struct {
    const char *name;
    const char *why;
} divergent[] = {
    {"ProduceResponse_v8", "lacks RecordErrors and ErrorMessage (v8+)"},
    {"DescribeGroupsResponse_v3",
     "AuthorizedOperations outside the group array (misplaced parenthesis)"},
    {"GroupCoordinatorResponse_v1", "lacks ThrottleTimeMs (v1+)"},
    {"OffsetRequest_v4", "CurrentLeaderEpoch as int64, the JSON says int32"},
    {"OffsetRequest_v5", "CurrentLeaderEpoch as int64, the JSON says int32"},
};

static bool is_divergent(const char *name)
{
    for (size_t i = 0; i < sizeof divergent / sizeof divergent[0]; i++)
        if (strcmp(divergent[i].name, name) == 0) return true;
    return false;
}

/* Decodes data[0..len) (copied to an exact-size heap block so ASan sees overreads). */
static int decode_exact(const kp_api_t *api, int16_t v, bool resp, const uint8_t *data, size_t len,
                        kp_arena_t *a, void *msg, size_t *left)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, data, len);
    kp_reader_t r;
    kp_reader_init(&r, copy, len);
    int rc = resp ? api->resp_decode(&r, v, a, msg) : api->req_decode(&r, v, a, msg);
    if (left) *left = kp_remaining(&r);
    free(copy);
    return rc;
}

/* The full check for one body: decode, re-encode identical, every strict prefix fails. */
static void check_body(const char *name, int16_t key, int16_t v, bool resp, const uint8_t *data,
                       size_t len, bool expect_valid)
{
    const kp_api_t *api = kp_api_get(key);
    assert_non_null(api);
    size_t size = resp ? api->resp_size : api->req_size;
    void *msg = calloc(1, size);
    assert_non_null(msg);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);

    size_t left = 0;
    int rc = decode_exact(api, v, resp, data, len, &a, msg, &left);
    bool valid = rc == 0 && left == 0;
    if (expect_valid && !valid) fail_msg("%s: decode rc %d, %zu bytes left", name, rc, left);
    if (valid) {
        /* re-decode from the fixture itself (views must stay valid while we encode) */
        kp_reader_t r;
        kp_reader_init(&r, data, len);
        kp_arena_reset(&a);
        assert_int_equal(resp ? api->resp_decode(&r, v, &a, msg) : api->req_decode(&r, v, &a, msg),
                         0);
        kp_buf_t b;
        kp_buf_init(&b);
        assert_int_equal(resp ? api->resp_encode(&b, v, msg) : api->req_encode(&b, v, msg), 0);
        if (b.len != len || (len && memcmp(b.data, data, len) != 0))
            fail_msg("%s: re-encode differs (%zu vs %zu bytes)", name, b.len, len);
        kp_buf_deinit(&b);
        /*
         * Decoding reads the same bytes in the same order whatever follows them, so a message
         * that consumes all len bytes cannot decode from fewer: every strict prefix must fail.
         */
        for (size_t k = 0; k < len; k++) {
            kp_arena_reset(&a);
            if (decode_exact(api, v, resp, data, k, &a, msg, NULL) == 0)
                fail_msg("%s: prefix of %zu/%zu bytes decoded", name, k, len);
        }
    } else {
        for (size_t k = 0; k < len; k++) { /* must not crash or overread (ASan) */
            kp_arena_reset(&a);
            (void)decode_exact(api, v, resp, data, k, &a, msg, NULL);
        }
    }
    kp_arena_deinit(&a);
    free(msg);
}

static void test_fixtures_kafka_python_roundtrip(void **state)
{
    (void)state;
    size_t n = sizeof kp_fixtures / sizeof kp_fixtures[0];
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++) {
        const kp_fixture_t *f = &kp_fixtures[i];
        check_body(f->name, f->key, f->version, f->is_response, f->data, f->len,
                   !is_divergent(f->name));
    }
}

/* Requests from @platformatic/kafka (flexible versions included): same checks. */
static void test_fixtures_platformatic_roundtrip(void **state)
{
    (void)state;
    size_t n = sizeof kp_plt_fixtures / sizeof kp_plt_fixtures[0];
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++) {
        const kp_fixture_t *f = &kp_plt_fixtures[i];
        check_body(f->name, f->key, f->version, f->is_response, f->data, f->len,
                   !is_divergent(f->name));
    }
}

static const kp_fixture_t *find(const char *name)
{
    for (size_t i = 0; i < sizeof kp_fixtures / sizeof kp_fixtures[0]; i++)
        if (strcmp(kp_fixtures[i].name, name) == 0) return &kp_fixtures[i];
    fail_msg("no fixture %s", name);
    return NULL;
}

/* Decodes a fixture into msg (arena a), asserting success. */
static void decode_fixture(const char *name, kp_arena_t *a, void *msg)
{
    const kp_fixture_t *f = find(name);
    const kp_api_t *api = kp_api_get(f->key);
    kp_reader_t r;
    kp_reader_init(&r, f->data, f->len);
    int rc = f->is_response ? api->resp_decode(&r, f->version, a, msg)
                            : api->req_decode(&r, f->version, a, msg);
    assert_int_equal(rc, 0);
}

/* Values follow make_fixtures.py: strings = field name, int32 = 32000 + depth, ... */
static void test_fixtures_field_values(void **state)
{
    (void)state;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);

    kp_produce_req_t pr;
    decode_fixture("ProduceRequest_v3", &a, &pr);
    assert_true(kp_str_eq(pr.transactional_id, "transactional_id"));
    assert_int_equal(pr.acks, -1);
    assert_int_equal(pr.timeout_ms, 32000);
    assert_int_equal(pr.topic_data_count, 2);
    assert_true(kp_str_eq(pr.topic_data[1].name, "topic"));
    assert_int_equal(pr.topic_data[1].partition_data_count, 2);
    assert_int_equal(pr.topic_data[1].partition_data[0].index, 32002);
    assert_int_equal(pr.topic_data[1].partition_data[0].records.len, 14);
    assert_memory_equal(pr.topic_data[1].partition_data[0].records.ptr, "messages-bytes", 14);

    kp_metadata_req_t mr;
    decode_fixture("MetadataRequest_v4", &a, &mr);
    assert_int_equal(mr.topics_count, 2);
    assert_true(kp_str_eq(mr.topics[1].name, "topics1"));
    assert_true(mr.allow_auto_topic_creation);

    kp_metadata_resp_t md;
    decode_fixture("MetadataResponse_v5", &a, &md);
    assert_int_equal(md.throttle_time_ms, 32000);
    assert_int_equal(md.brokers_count, 2);
    assert_int_equal(md.brokers[0].port, 9092);
    assert_true(kp_str_eq(md.brokers[0].rack, "rack"));
    assert_true(kp_str_eq(md.cluster_id, "cluster_id"));
    assert_int_equal(md.topics[0].error_code, 3);
    assert_true(md.topics[0].is_internal);
    assert_int_equal(md.topics[0].partitions[1].offline_replicas_count, 2);
    assert_int_equal(md.topics[0].partitions[1].offline_replicas[0], 32003);
    assert_int_equal(md.topics[0].partitions[1].leader_epoch, -1); /* v7+ only: default */

    kp_fetch_req_t fr;
    decode_fixture("FetchRequest_v10", &a, &fr);
    assert_int_equal(fr.replica_id, 32000);
    assert_int_equal(fr.isolation_level, 1);
    assert_int_equal(fr.topics_count, 2);
    assert_true(kp_str_eq(fr.topics[0].topic, "topic"));
    assert_true(fr.topics[0].partitions[1].fetch_offset == (1LL << 40) + 2);
    assert_int_equal(fr.topics[0].partitions[1].current_leader_epoch, 32002);
    assert_int_equal(fr.forgotten_topics_data_count, 0);
    assert_int_equal(fr.rack_id.len, 0); /* v11+ */

    kp_fetch_resp_t fp;
    decode_fixture("FetchResponse_v11", &a, &fp);
    assert_int_equal(fp.error_code, 3);
    assert_int_equal(fp.session_id, 32000);
    assert_int_equal(fp.responses[1].partitions[0].aborted_transactions_count, 2);
    assert_int_equal(fp.responses[1].partitions[0].preferred_read_replica, 32002);
    assert_memory_equal(fp.responses[1].partitions[0].records.ptr, "message_set-bytes", 17);

    kp_api_versions_resp_t av;
    decode_fixture("ApiVersionResponse_v2", &a, &av);
    assert_int_equal(av.api_keys_count, 2);
    assert_int_equal(av.api_keys[1].max_version, 17);
    assert_int_equal(av.throttle_time_ms, 32000);

    kp_join_group_req_t jg;
    decode_fixture("JoinGroupRequest_v2", &a, &jg);
    assert_true(kp_str_eq(jg.group_id, "group"));
    assert_int_equal(jg.rebalance_timeout_ms, 32000);
    assert_true(kp_str_eq(jg.protocol_type, "protocol_type"));
    assert_int_equal(jg.protocols_count, 2);
    assert_int_equal(jg.group_instance_id.len, -1); /* v5+: JSON default null */

    kp_arena_deinit(&a);
}

/* Decodes a @platformatic/kafka request fixture into msg, asserting success. */
static void decode_plt(const char *name, kp_arena_t *a, void *msg)
{
    for (size_t i = 0; i < sizeof kp_plt_fixtures / sizeof kp_plt_fixtures[0]; i++) {
        const kp_fixture_t *f = &kp_plt_fixtures[i];
        if (strcmp(f->name, name) != 0) continue;
        kp_reader_t r;
        kp_reader_init(&r, f->data, f->len);
        assert_int_equal(kp_api_get(f->key)->req_decode(&r, f->version, a, msg), 0);
        return;
    }
    fail_msg("no fixture %s", name);
}

/* Values from VALUES in make_plt_fixtures.mjs, at flexible versions. */
static void test_fixtures_platformatic_values(void **state)
{
    (void)state;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);

    kp_metadata_req_t md;
    decode_plt("plt_metadata_v12", &a, &md);
    assert_int_equal(md.topics_count, 2);
    assert_true(kp_str_eq(md.topics[1].name, "events"));
    assert_false(md.allow_auto_topic_creation);
    assert_true(md.include_topic_authorized_operations);

    kp_fetch_req_t fr;
    decode_plt("plt_fetch_v17", &a, &fr);
    assert_int_equal(fr.max_wait_ms, 500);
    assert_int_equal(fr.isolation_level, 1);
    assert_int_equal(fr.topics_count, 1);
    assert_int_equal(fr.topics[0].topic_id.b[0], 0x10);
    assert_int_equal(fr.topics[0].topic_id.b[15], 0x1f);
    assert_int_equal(fr.topics[0].partitions[0].partition, 2);
    assert_true(fr.topics[0].partitions[0].fetch_offset == 42);
    assert_int_equal(fr.topics[0].partitions[0].partition_max_bytes, 1048576);
    assert_int_equal(fr.forgotten_topics_data_count, 1);
    assert_int_equal(fr.forgotten_topics_data[0].partitions_count, 2);
    assert_true(kp_str_eq(fr.rack_id, "rack-a"));

    kp_produce_req_t pr;
    decode_plt("plt_produce_v11", &a, &pr);
    assert_true(kp_str_eq(pr.transactional_id, "txn-1"));
    assert_int_equal(pr.acks, -1);
    assert_int_equal(pr.timeout_ms, 30000);
    assert_true(kp_str_eq(pr.topic_data[0].name, "orders"));
    assert_int_equal(pr.topic_data[0].partition_data[0].index, 1);
    const kp_bytes_t rec = pr.topic_data[0].partition_data[0].records;
    assert_true(rec.len > 61);
    assert_int_equal(rec.ptr[16], 2); /* RecordBatch magic */

    kp_join_group_req_t jg;
    decode_plt("plt_join_group_v9", &a, &jg);
    assert_true(kp_str_eq(jg.group_id, "g1"));
    assert_true(kp_str_eq(jg.group_instance_id, "static-1"));
    assert_true(kp_str_eq(jg.protocols[0].name, "range"));
    assert_int_equal(jg.protocols[0].metadata.len, 4);
    assert_true(kp_str_eq(jg.reason, "startup"));

    kp_offset_fetch_req_t of;
    decode_plt("plt_offset_fetch_v9", &a, &of);
    assert_true(of.require_stable);
    assert_int_equal(of.groups_count, 1);
    assert_int_equal(of.groups[0].member_epoch, 3);
    assert_int_equal(of.groups[0].topics[0].partition_indexes[1], 1);

    kp_offset_commit_req_t oc;
    decode_plt("plt_offset_commit_v9", &a, &oc);
    assert_int_equal(oc.generation_id_or_member_epoch, 4);
    assert_true(oc.topics[0].partitions[0].committed_offset == 400);
    assert_true(kp_str_eq(oc.topics[0].partitions[0].committed_metadata, "meta"));

    kp_api_versions_req_t av;
    decode_plt("plt_api_versions_v4", &a, &av);
    assert_true(kp_str_eq(av.client_software_name, "depot-test"));

    kp_create_topics_req_t ct;
    decode_plt("plt_create_topics_v7", &a, &ct);
    assert_int_equal(ct.topics[0].num_partitions, 3);
    assert_true(kp_str_eq(ct.topics[0].configs[0].value, "1000"));
    assert_true(ct.validate_only);

    kp_describe_cluster_req_t dc;
    decode_plt("plt_describe_cluster_v1", &a, &dc);
    assert_true(dc.include_cluster_authorized_operations);
    assert_int_equal(dc.endpoint_type, 1);
    kp_arena_deinit(&a);
}

/* ------------------------------------------------------------------------------------------ */
/* Flexible versions kafka-python lacks: bytes derived by hand from the JSON.                  */

/* ApiVersions v3 request: ClientSoftwareName/Version as compact strings, then tags. */
static const uint8_t api_versions_v3_req[] = {
    0x06, 'd', 'e', 'p', 'o', 't', /* client_software_name: len 5 + 1 */
    0x04, '1', '.', '0',           /* client_software_version: len 3 + 1 */
    0x00,                          /* no tagged fields */
};

/* ApiVersions v3 response: one api key, throttle, tagged FinalizedFeaturesEpoch = 2. */
static const uint8_t api_versions_v3_resp[] = {
    0x00, 0x00,                         /* error_code */
    0x02,                               /* api_keys: 1 element */
    0x00, 0x03, 0x00, 0x00, 0x00, 0x0c, /* Metadata 0..12 */
    0x00,                               /* element tags */
    0x00, 0x00, 0x00, 0x00,             /* throttle_time_ms */
    0x01,                               /* one tagged field */
    0x01, 0x08,                         /* tag 1, 8 bytes */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
};

/* Metadata v12 request: one topic by id (name null), no auto create, topic ops. */
static const uint8_t metadata_v12_req[] = {
    0x02, /* topics: 1 element */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, /* topic_id */
    0x00,                                           /* name: null (compact 0) */
    0x00,                                           /* element tags */
    0x00,                                           /* allow_auto_topic_creation false */
    0x01,                                           /* include_topic_authorized_operations */
    0x00,                                           /* tags */
};

/* Metadata v12 response: one broker, cluster id, controller, one topic, one partition. */
static const uint8_t metadata_v12_resp[] = {
    0x00, 0x00, 0x00, 0x00, /* throttle_time_ms */
    0x02,                   /* brokers: 1 */
    0x00, 0x00, 0x00, 0x01, /* node_id 1 */
    0x04, 'h',  'o',  's',  /* host "hos" */
    0x00, 0x00, 0x23, 0x84, /* port 9092 */
    0x00,                   /* rack null */
    0x00,                   /* broker tags */
    0x02, 'c',              /* cluster_id "c" */
    0x00, 0x00, 0x00, 0x01, /* controller_id 1 */
    0x02,                   /* topics: 1 */
    0x00, 0x00,             /* error_code */
    0x02, 't',              /* name "t" */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, /* topic_id */
    0x00,                                           /* is_internal false */
    0x02,                                           /* partitions: 1 */
    0x00, 0x00,                                     /* error_code */
    0x00, 0x00, 0x00, 0x00,                         /* partition_index 0 */
    0x00, 0x00, 0x00, 0x01,                         /* leader_id 1 */
    0x00, 0x00, 0x00, 0x00,                         /* leader_epoch 0 */
    0x02, 0x00, 0x00, 0x00, 0x01,                   /* replica_nodes [1] */
    0x02, 0x00, 0x00, 0x00, 0x01,                   /* isr_nodes [1] */
    0x01,                                           /* offline_replicas [] */
    0x00,                                           /* partition tags */
    0x80, 0x00, 0x00, 0x00,                         /* topic_authorized_operations INT32_MIN */
    0x00,                                           /* topic tags */
    0x00,                                           /* tags */
};

/* Fetch v13 request: topic by id, one partition, no forgotten topics, rack "". */
static const uint8_t fetch_v13_req[] = {
    0xff, 0xff, 0xff, 0xff, /* replica_id -1 */
    0x00, 0x00, 0x01, 0xf4, /* max_wait_ms 500 */
    0x00, 0x00, 0x00, 0x01, /* min_bytes 1 */
    0x03, 0x20, 0x00, 0x00, /* max_bytes 52428800 */
    0x00,                   /* isolation_level */
    0x00, 0x00, 0x00, 0x00, /* session_id */
    0xff, 0xff, 0xff, 0xff, /* session_epoch -1 */
    0x02,                   /* topics: 1 */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, /* topic_id */
    0x02,                                           /* partitions: 1 */
    0x00, 0x00, 0x00, 0x02,                         /* partition 2 */
    0xff, 0xff, 0xff, 0xff,                         /* current_leader_epoch -1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* fetch_offset 42 */
    0xff, 0xff, 0xff, 0xff,                         /* last_fetched_epoch -1 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* log_start_offset -1 */
    0x00, 0x10, 0x00, 0x00,                         /* partition_max_bytes 1 MiB */
    0x00,                                           /* partition tags */
    0x00,                                           /* topic tags */
    0x01,                                           /* forgotten_topics_data: [] */
    0x01,                                           /* rack_id "" */
    0x01,                                           /* one tagged field */
    0x00, 0x03, 0x03, 'k',  'c',                    /* tag 0 cluster_id "kc" (3 bytes) */
};

/* Fetch v16 response: one topic id, one partition with records and a current leader tag. */
static const uint8_t fetch_v16_resp[] = {
    0x00, 0x00, 0x00, 0x00, /* throttle_time_ms */
    0x00, 0x00,             /* error_code */
    0x00, 0x00, 0x00, 0x00, /* session_id 0 */
    0x02,                   /* responses: 1 */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, /* topic_id */
    0x02,                                           /* partitions: 1 */
    0x00, 0x00, 0x00, 0x02,                         /* partition_index 2 */
    0x00, 0x00,                                     /* error_code */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* high_watermark 100 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* last_stable_offset 100 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* log_start_offset 0 */
    0x00,                                           /* aborted_transactions null */
    0xff, 0xff, 0xff, 0xff,                         /* preferred_read_replica -1 */
    0x04, 0xaa, 0xbb, 0xcc,                         /* records: 3 bytes */
    0x01,                                           /* one tagged field */
    0x01, 0x09,                                     /* tag 1 current_leader, 9 bytes */
    0x00, 0x00, 0x00, 0x01,                         /* leader_id 1 */
    0x00, 0x00, 0x00, 0x00,                         /* leader_epoch 0 */
    0x00,                                           /* struct tags */
    0x00,                                           /* topic tags */
    0x00,                                           /* tags (no node_endpoints) */
};

static void test_fixtures_flexible_by_hand(void **state)
{
    (void)state;
    check_body("ApiVersionsRequest_v3", KP_API_API_VERSIONS, 3, false, api_versions_v3_req,
               sizeof api_versions_v3_req, true);
    check_body("ApiVersionsResponse_v3", KP_API_API_VERSIONS, 3, true, api_versions_v3_resp,
               sizeof api_versions_v3_resp, true);
    check_body("MetadataRequest_v12", KP_API_METADATA, 12, false, metadata_v12_req,
               sizeof metadata_v12_req, true);
    check_body("MetadataResponse_v12", KP_API_METADATA, 12, true, metadata_v12_resp,
               sizeof metadata_v12_resp, true);
    check_body("FetchRequest_v13", KP_API_FETCH, 13, false, fetch_v13_req, sizeof fetch_v13_req,
               true);
    check_body("FetchResponse_v16", KP_API_FETCH, 16, true, fetch_v16_resp, sizeof fetch_v16_resp,
               true);

    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_reader_t r;

    kp_api_versions_req_t avq;
    kp_reader_init(&r, api_versions_v3_req, sizeof api_versions_v3_req);
    assert_int_equal(kp_api_versions_req_decode(&r, 3, &a, &avq), 0);
    assert_true(kp_str_eq(avq.client_software_name, "depot"));
    assert_true(kp_str_eq(avq.client_software_version, "1.0"));

    kp_api_versions_resp_t avr;
    kp_reader_init(&r, api_versions_v3_resp, sizeof api_versions_v3_resp);
    assert_int_equal(kp_api_versions_resp_decode(&r, 3, &a, &avr), 0);
    assert_int_equal(avr.api_keys[0].api_key, KP_API_METADATA);
    assert_int_equal(avr.api_keys[0].max_version, 12);
    assert_int_equal(avr.finalized_features_epoch, 2);
    assert_false(avr.zk_migration_ready);

    kp_metadata_req_t mq;
    kp_reader_init(&r, metadata_v12_req, sizeof metadata_v12_req);
    assert_int_equal(kp_metadata_req_decode(&r, 12, &a, &mq), 0);
    assert_int_equal(mq.topics_count, 1);
    assert_int_equal(mq.topics[0].name.len, -1);
    assert_int_equal(mq.topics[0].topic_id.b[15], 0x1f);
    assert_false(mq.allow_auto_topic_creation);
    assert_true(mq.include_topic_authorized_operations);

    kp_metadata_resp_t mp;
    kp_reader_init(&r, metadata_v12_resp, sizeof metadata_v12_resp);
    assert_int_equal(kp_metadata_resp_decode(&r, 12, &a, &mp), 0);
    assert_true(kp_str_eq(mp.brokers[0].host, "hos"));
    assert_int_equal(mp.brokers[0].rack.len, -1);
    assert_int_equal(mp.controller_id, 1);
    assert_int_equal(mp.topics[0].partitions[0].isr_nodes[0], 1);
    assert_int_equal(mp.topics[0].partitions[0].offline_replicas_count, 0);
    assert_int_equal(mp.topics[0].topic_authorized_operations, INT32_MIN);

    kp_fetch_req_t fq;
    kp_reader_init(&r, fetch_v13_req, sizeof fetch_v13_req);
    assert_int_equal(kp_fetch_req_decode(&r, 13, &a, &fq), 0);
    assert_true(kp_str_eq(fq.cluster_id, "kc"));
    assert_int_equal(fq.topics[0].topic.len, 0); /* names are gone from v13: default "" */
    assert_int_equal(fq.topics[0].topic_id.b[0], 0x10);
    assert_true(fq.topics[0].partitions[0].fetch_offset == 42);
    assert_int_equal(fq.max_bytes, 52428800);

    kp_fetch_resp_t fp;
    kp_reader_init(&r, fetch_v16_resp, sizeof fetch_v16_resp);
    assert_int_equal(kp_fetch_resp_decode(&r, 16, &a, &fp), 0);
    kp_fetch_resp_partition_data_t *p = &fp.responses[0].partitions[0];
    assert_int_equal(p->aborted_transactions_count, -1);
    assert_int_equal(p->records.len, 3);
    assert_true(p->current_leader_present);
    assert_int_equal(p->current_leader.leader_id, 1);
    assert_false(p->diverging_epoch_present);
    assert_int_equal(p->diverging_epoch.epoch, -1);
    assert_int_equal(fp.node_endpoints_count, 0);
    kp_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_kafka_python_roundtrip),
        cmocka_unit_test(test_fixtures_platformatic_roundtrip),
        cmocka_unit_test(test_fixtures_platformatic_values),
        cmocka_unit_test(test_fixtures_field_values),
        cmocka_unit_test(test_fixtures_flexible_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

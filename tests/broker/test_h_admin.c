/*
 * Metadata and admin handlers called directly (no socket): each test encodes a request with
 * the codec, runs the handler against a real store in a temp dir, and decodes the response.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/core/clock.h"
#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/gen/kp_api_versions.h"
#include "protocol/gen/kp_create_topics.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/gen/kp_describe_cluster.h"
#include "protocol/gen/kp_describe_configs.h"
#include "protocol/gen/kp_metadata.h"
#include "protocol/kp_errors.h"

#include "h_call_util.h"

static int setup(void **state)
{
    (void)state;
    static const char *const sets[] = {"listeners=PLAINTEXT://127.0.0.1:0",
                                       "advertised.listeners=PLAINTEXT://depot.local:9999",
                                       "num.partitions=3", "node.id=4", "log.retention.hours=1"};
    return tb_setup("kbadm", sets, 5);
}

static int teardown(void **state)
{
    (void)state;
    return tb_teardown();
}

WRAP(api_versions)
WRAP(metadata)
WRAP(create_topics)
WRAP(delete_topics)
WRAP(describe_configs)
WRAP(describe_cluster)

/* ------------------------------------------------------------------------------------------ */

static bool has_api(const kp_api_versions_resp_t *r, int16_t key)
{
    for (int32_t i = 0; i < r->api_keys_count; i++)
        if (r->api_keys[i].api_key == key) return true;
    return false;
}

static void test_api_versions_lists_linked_handlers(void **state)
{
    (void)state;
    kp_api_versions_req_t q;
    kp_api_versions_req_init(&q);
    q.client_software_name = kp_str("test");
    q.client_software_version = kp_str("1");
    call_t c;
    assert_int_equal(call(&c, kb_handle_api_versions, KP_API_API_VERSIONS, 3, &q, api_versions_enc),
                     KB_DONE);
    kp_api_versions_resp_t r;
    decode(&c, 3, &r, api_versions_dec);
    assert_int_equal(r.error_code, 0);
    assert_true(has_api(&r, KP_API_API_VERSIONS));
    assert_true(has_api(&r, KP_API_METADATA));
    assert_true(has_api(&r, KP_API_CREATE_TOPICS));
    assert_true(has_api(&r, KP_API_SASL_HANDSHAKE)); /* offered on every listener, as Kafka does */
    done(&c);

    /* An unsupported version: v0 layout, UNSUPPORTED_VERSION, the full list. */
    assert_int_equal(
        call(&c, kb_api_versions_unsupported, KP_API_API_VERSIONS, 0, &q, api_versions_enc),
        KB_DONE);
    decode(&c, 0, &r, api_versions_dec);
    assert_int_equal(r.error_code, KP_ERR_UNSUPPORTED_VERSION);
    assert_true(has_api(&r, KP_API_API_VERSIONS));
    assert_true(has_api(&r, KP_API_METADATA));
    done(&c);
}

static int create(const char *name, int32_t parts, int16_t rf, const char *ckey, const char *cval,
                  bool validate_only, kp_create_topics_resp_t *out, call_t *c)
{
    kp_create_topics_req_t q;
    kp_create_topics_req_init(&q);
    kp_create_topics_req_creatable_topic_t t;
    kp_create_topics_req_creatable_topic_init(&t);
    kp_create_topics_req_creatable_topic_config_t cf;
    kp_create_topics_req_creatable_topic_config_init(&cf);
    t.name = kp_str(name);
    t.num_partitions = parts;
    t.replication_factor = rf;
    if (ckey) {
        cf.name = kp_str(ckey);
        cf.value = kp_str(cval);
        t.configs = &cf;
        t.configs_count = 1;
    }
    q.topics = &t;
    q.topics_count = 1;
    q.validate_only = validate_only;
    assert_int_equal(
        call(c, kb_handle_create_topics, KP_API_CREATE_TOPICS, 7, &q, create_topics_enc), KB_DONE);
    decode(c, 7, out, create_topics_dec);
    assert_int_equal(out->topics_count, 1);
    return out->topics[0].error_code;
}

static void test_create_topics_checks(void **state)
{
    (void)state;
    call_t c;
    kp_create_topics_resp_t r;
    assert_int_equal(create("orders", -1, -1, "retention.ms", "60000", false, &r, &c), 0);
    kp_create_topics_resp_creatable_topic_result_t *t = &r.topics[0];
    assert_int_equal(t->num_partitions, 3); /* num.partitions */
    assert_int_equal(t->replication_factor, 1);
    assert_true(t->error_message.len < 0);
    static const uint8_t zero[16];
    assert_memory_not_equal(t->topic_id.b, zero, 16);
    bool seen = false;
    for (int32_t i = 0; i < t->configs_count; i++)
        if (kp_str_eq(t->configs[i].name, "retention.ms")) {
            assert_true(kp_str_eq(t->configs[i].value, "60000"));
            assert_int_equal(t->configs[i].config_source, KB_CS_DYNAMIC_TOPIC);
            seen = true;
        }
    assert_true(seen);
    done(&c);

    assert_int_equal(create("orders", 1, 1, NULL, NULL, false, &r, &c),
                     KP_ERR_TOPIC_ALREADY_EXISTS);
    done(&c);
    assert_int_equal(create("bad/name", 1, 1, NULL, NULL, false, &r, &c),
                     KP_ERR_INVALID_TOPIC_EXCEPTION);
    done(&c);
    assert_int_equal(create("rf3", 1, 3, NULL, NULL, false, &r, &c),
                     KP_ERR_INVALID_REPLICATION_FACTOR);
    done(&c);
    assert_int_equal(create("zero", 0, 1, NULL, NULL, false, &r, &c), KP_ERR_INVALID_PARTITIONS);
    done(&c);
    assert_int_equal(create("cfg", 1, 1, "no.such.key", "1", false, &r, &c), KP_ERR_INVALID_CONFIG);
    assert_true(r.topics[0].error_message.len > 0);
    done(&c);
    assert_int_equal(create("dry", 2, 1, NULL, NULL, true, &r, &c), 0);
    done(&c);
    assert_null(ks_topic_find(kb_broker_store(broker), "dry", 3)); /* validate_only */
}

static void test_create_topics_assignments(void **state)
{
    (void)state;
    kp_create_topics_req_t q;
    kp_create_topics_req_init(&q);
    kp_create_topics_req_creatable_topic_t t[2];
    kp_create_topics_req_creatable_replica_assignment_t a[2];
    int32_t good = 4, bad = 7;
    for (int i = 0; i < 2; i++) {
        kp_create_topics_req_creatable_topic_init(&t[i]);
        kp_create_topics_req_creatable_replica_assignment_init(&a[i]);
        a[i].partition_index = 1 - i;
        a[i].broker_ids = &good;
        a[i].broker_ids_count = 1;
    }
    t[0].name = kp_str("assigned");
    t[0].num_partitions = -1;
    t[0].replication_factor = -1;
    t[0].assignments = a;
    t[0].assignments_count = 2;
    kp_create_topics_req_creatable_replica_assignment_t b = a[0];
    b.broker_ids = &bad;
    t[1].name = kp_str("misassigned");
    t[1].num_partitions = -1;
    t[1].replication_factor = -1;
    t[1].assignments = &b;
    t[1].assignments_count = 1;
    q.topics = t;
    q.topics_count = 2;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_create_topics, KP_API_CREATE_TOPICS, 4, &q, create_topics_enc), KB_DONE);
    kp_create_topics_resp_t r;
    decode(&c, 4, &r, create_topics_dec);
    assert_int_equal(r.topics[0].error_code, 0);
    assert_int_equal(r.topics[1].error_code, KP_ERR_INVALID_REPLICA_ASSIGNMENT);
    done(&c);
    ks_topic_t *tp = ks_topic_find(kb_broker_store(broker), "assigned", 8);
    assert_non_null(tp);
    assert_int_equal(ks_topic_partitions(tp), 2);
}

/* Duplicate names are found by sorting, not pairwise: 100,000 topics (illegal names, so
 * nothing is created) must be answered well within a second, not after minutes. */
static void test_create_topics_many_names_linear(void **state)
{
    (void)state;
    enum { N = 100000 };
    kp_create_topics_req_t q;
    kp_create_topics_req_init(&q);
    kp_create_topics_req_creatable_topic_t *t = calloc(N, sizeof *t);
    char(*names)[16] = calloc(N, sizeof *names);
    assert_non_null(t);
    assert_non_null(names);
    for (int i = 0; i < N; i++) {
        kp_create_topics_req_creatable_topic_init(&t[i]);
        snprintf(names[i], sizeof names[i], "bad/%06d", i == N - 1 ? 17 : i);
        t[i].name = kp_str(names[i]);
        t[i].num_partitions = 1;
        t[i].replication_factor = 1;
    }
    q.topics = t;
    q.topics_count = N;
    call_t c;
    int64_t t0 = kb_mono_ms();
    assert_int_equal(
        call(&c, kb_handle_create_topics, KP_API_CREATE_TOPICS, 4, &q, create_topics_enc), KB_DONE);
    assert_true(kb_mono_ms() - t0 < 3000);
    kp_create_topics_resp_t r;
    decode(&c, 4, &r, create_topics_dec);
    assert_int_equal(r.topics_count, N);
    assert_int_equal(r.topics[17].error_code, KP_ERR_INVALID_REQUEST);
    assert_int_equal(r.topics[N - 1].error_code, KP_ERR_INVALID_REQUEST);
    assert_int_equal(r.topics[18].error_code, KP_ERR_INVALID_TOPIC_EXCEPTION);
    done(&c);
    free(t);
    free(names);
}

static kp_metadata_resp_metadata_response_topic_t *
metadata(int16_t version, const char *name, bool allow, kp_metadata_resp_t *r, call_t *c)
{
    kp_metadata_req_t q;
    kp_metadata_req_init(&q);
    kp_metadata_req_metadata_request_topic_t t;
    kp_metadata_req_metadata_request_topic_init(&t);
    t.name = kp_str(name);
    if (name) {
        q.topics = &t;
        q.topics_count = 1;
    } else {
        q.topics_count = version == 0 ? 0 : -1;
    }
    q.allow_auto_topic_creation = allow;
    assert_int_equal(call(c, kb_handle_metadata, KP_API_METADATA, version, &q, metadata_enc),
                     KB_DONE);
    decode(c, version, r, metadata_dec);
    return r->topics_count > 0 ? &r->topics[0] : NULL;
}

static void test_metadata_broker_and_auto_create(void **state)
{
    (void)state;
    call_t c;
    kp_metadata_resp_t r;
    kp_metadata_resp_metadata_response_topic_t *t = metadata(4, "auto1", false, &r, &c);
    assert_int_equal(r.brokers_count, 1);
    assert_int_equal(r.brokers[0].node_id, 4);
    assert_true(kp_str_eq(r.brokers[0].host, "depot.local"));
    assert_int_equal(r.brokers[0].port, 9999);
    assert_int_equal(r.controller_id, 4);
    assert_true(kp_str_eq(r.cluster_id, ks_store_cluster_id(kb_broker_store(broker))));
    assert_int_equal(t->error_code, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION); /* not allowed */
    done(&c);

    t = metadata(4, "auto1", true, &r, &c);
    assert_int_equal(t->error_code, KP_ERR_LEADER_NOT_AVAILABLE);
    done(&c);
    t = metadata(9, "auto1", true, &r, &c);
    assert_int_equal(t->error_code, 0);
    assert_int_equal(t->partitions_count, 3);
    assert_int_equal(t->partitions[2].leader_id, 4);
    assert_int_equal(t->partitions[2].replica_nodes_count, 1);
    assert_int_equal(t->partitions[2].isr_nodes[0], 4);
    assert_int_equal(t->topic_authorized_operations, INT32_MIN);
    done(&c);

    t = metadata(1, "bad name", true, &r, &c);
    assert_int_equal(t->error_code, KP_ERR_INVALID_TOPIC_EXCEPTION);
    done(&c);

    /* v1 null list and v0 empty list both mean every topic. */
    t = metadata(1, NULL, true, &r, &c);
    int32_t n1 = r.topics_count;
    assert_true(n1 >= 2);
    done(&c);
    t = metadata(0, NULL, true, &r, &c);
    assert_int_equal(r.topics_count, n1);
    done(&c);
}

static void test_metadata_by_unknown_id(void **state)
{
    (void)state;
    kp_metadata_req_t q;
    kp_metadata_req_init(&q);
    kp_metadata_req_metadata_request_topic_t t;
    kp_metadata_req_metadata_request_topic_init(&t);
    t.name = (kp_str_t){NULL, -1};
    memset(t.topic_id.b, 0xab, 16);
    q.topics = &t;
    q.topics_count = 1;
    call_t c;
    assert_int_equal(call(&c, kb_handle_metadata, KP_API_METADATA, 12, &q, metadata_enc), KB_DONE);
    kp_metadata_resp_t r;
    decode(&c, 12, &r, metadata_dec);
    assert_int_equal(r.topics[0].error_code, KP_ERR_UNKNOWN_TOPIC_ID);
    done(&c);
}

static void test_delete_topics_by_name_and_id(void **state)
{
    (void)state;
    call_t c;
    kp_create_topics_resp_t cr;
    assert_int_equal(create("del1", 1, 1, NULL, NULL, false, &cr, &c), 0);
    done(&c);
    assert_int_equal(create("del2", 1, 1, NULL, NULL, false, &cr, &c), 0);
    kp_uuid_t id2 = cr.topics[0].topic_id;
    done(&c);

    kp_delete_topics_req_t q;
    kp_delete_topics_req_init(&q);
    kp_delete_topics_req_delete_topic_state_t s[3];
    for (int i = 0; i < 3; i++)
        kp_delete_topics_req_delete_topic_state_init(&s[i]);
    s[0].name = kp_str("del1");
    s[1].name = (kp_str_t){NULL, -1};
    s[1].topic_id = id2;
    s[2].name = kp_str("never");
    q.topics = s;
    q.topics_count = 3;
    assert_int_equal(
        call(&c, kb_handle_delete_topics, KP_API_DELETE_TOPICS, 6, &q, delete_topics_enc), KB_DONE);
    kp_delete_topics_resp_t r;
    decode(&c, 6, &r, delete_topics_dec);
    assert_int_equal(r.responses_count, 3);
    assert_int_equal(r.responses[0].error_code, 0);
    assert_int_equal(r.responses[1].error_code, 0);
    assert_true(kp_str_eq(r.responses[1].name, "del2"));
    assert_int_equal(r.responses[2].error_code, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    done(&c);
    assert_null(ks_topic_find(kb_broker_store(broker), "del1", 4));

    /* By an id that is gone now; and with deletion disabled. */
    s[0] = s[1];
    q.topics_count = 1;
    assert_int_equal(
        call(&c, kb_handle_delete_topics, KP_API_DELETE_TOPICS, 6, &q, delete_topics_enc), KB_DONE);
    decode(&c, 6, &r, delete_topics_dec);
    assert_int_equal(r.responses[0].error_code, KP_ERR_UNKNOWN_TOPIC_ID);
    done(&c);

    assert_int_equal(create("keep", 1, 1, NULL, NULL, false, &cr, &c), 0);
    done(&c);
    broker->cfg.delete_topic_enable = false;
    kp_str_t name = kp_str("keep");
    q.topic_names = &name;
    q.topic_names_count = 1;
    assert_int_equal(
        call(&c, kb_handle_delete_topics, KP_API_DELETE_TOPICS, 1, &q, delete_topics_enc), KB_DONE);
    decode(&c, 1, &r, delete_topics_dec);
    assert_int_equal(r.responses[0].error_code, KP_ERR_TOPIC_DELETION_DISABLED);
    done(&c);
    broker->cfg.delete_topic_enable = true;
}

static const kp_describe_configs_resp_describe_configs_resource_result_t *
find_entry(const kp_describe_configs_resp_describe_configs_result_t *res, const char *name)
{
    for (int32_t i = 0; i < res->configs_count; i++)
        if (kp_str_eq(res->configs[i].name, name)) return &res->configs[i];
    return NULL;
}

static void test_describe_configs_topic_and_broker(void **state)
{
    (void)state;
    call_t c;
    kp_create_topics_resp_t cr;
    assert_int_equal(create("described", 1, 1, "retention.ms", "5000", false, &cr, &c), 0);
    done(&c);

    kp_describe_configs_req_t q;
    kp_describe_configs_req_init(&q);
    kp_describe_configs_req_describe_configs_resource_t res[4];
    for (int i = 0; i < 4; i++)
        kp_describe_configs_req_describe_configs_resource_init(&res[i]);
    res[0].resource_type = 2;
    res[0].resource_name = kp_str("described");
    res[0].configuration_keys_count = -1;
    res[1].resource_type = 4;
    res[1].resource_name = kp_str("4");
    kp_str_t only = kp_str("num.partitions");
    res[1].configuration_keys = &only;
    res[1].configuration_keys_count = 1;
    res[2].resource_type = 2;
    res[2].resource_name = kp_str("missing");
    res[2].configuration_keys_count = -1;
    res[3].resource_type = 8; /* BROKER_LOGGER */
    res[3].resource_name = kp_str("4");
    res[3].configuration_keys_count = -1;
    q.resources = res;
    q.resources_count = 4;
    q.include_synonyms = true;
    q.include_documentation = true;
    assert_int_equal(
        call(&c, kb_handle_describe_configs, KP_API_DESCRIBE_CONFIGS, 4, &q, describe_configs_enc),
        KB_DONE);
    kp_describe_configs_resp_t r;
    decode(&c, 4, &r, describe_configs_dec);
    assert_int_equal(r.results_count, 4);

    assert_int_equal(r.results[0].error_code, 0);
    const kp_describe_configs_resp_describe_configs_resource_result_t *e =
        find_entry(&r.results[0], "retention.ms");
    assert_non_null(e);
    assert_true(kp_str_eq(e->value, "5000"));
    assert_int_equal(e->config_source, KB_CS_DYNAMIC_TOPIC);
    assert_int_equal(e->synonyms_count, 2);
    assert_true(kp_str_eq(e->synonyms[1].name, "log.retention.ms"));
    assert_true(kp_str_eq(e->synonyms[1].value, "3600000")); /* log.retention.hours=1 */
    assert_int_equal(e->synonyms[1].source, KB_CS_STATIC_BROKER);
    assert_true(e->documentation.len > 0);
    e = find_entry(&r.results[0], "segment.bytes");
    assert_non_null(e);
    assert_int_equal(e->config_source, KB_CS_DEFAULT);

    assert_int_equal(r.results[1].error_code, 0);
    assert_int_equal(r.results[1].configs_count, 1);
    e = &r.results[1].configs[0];
    assert_true(kp_str_eq(e->value, "3"));
    assert_true(e->read_only);
    assert_int_equal(e->config_source, KB_CS_STATIC_BROKER);

    assert_int_equal(r.results[2].error_code, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(r.results[3].error_code, KP_ERR_INVALID_REQUEST);
    done(&c);
}

static void test_describe_cluster(void **state)
{
    (void)state;
    kp_describe_cluster_req_t q;
    kp_describe_cluster_req_init(&q);
    q.include_cluster_authorized_operations = true;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_describe_cluster, KP_API_DESCRIBE_CLUSTER, 1, &q, describe_cluster_enc),
        KB_DONE);
    kp_describe_cluster_resp_t r;
    decode(&c, 1, &r, describe_cluster_dec);
    assert_int_equal(r.error_code, 0);
    assert_int_equal(r.controller_id, 4);
    assert_int_equal(r.brokers_count, 1);
    assert_int_equal(r.brokers[0].port, 9999);
    assert_true(r.cluster_authorized_operations != INT32_MIN);
    done(&c);

    q.endpoint_type = 2;
    assert_int_equal(
        call(&c, kb_handle_describe_cluster, KP_API_DESCRIBE_CLUSTER, 1, &q, describe_cluster_enc),
        KB_DONE);
    decode(&c, 1, &r, describe_cluster_dec);
    assert_int_equal(r.error_code, KP_ERR_UNSUPPORTED_ENDPOINT_TYPE);
    done(&c);
}

static void test_malformed_body_closes(void **state)
{
    (void)state;
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    kb_req_t req;
    memset(&req, 0, sizeof req);
    req.broker = broker;
    req.hdr.api_key = KP_API_CREATE_TOPICS;
    req.hdr.api_version = 7;
    kp_reader_init(&req.body, junk, sizeof junk);
    kp_arena_init(&req.arena, NULL, 0, 0);
    kp_buf_init(&req.resp);
    assert_true(kb_handle_create_topics(&req) < 0);
    kp_reader_init(&req.body, junk, sizeof junk);
    req.hdr.api_key = KP_API_METADATA;
    assert_true(kb_handle_metadata(&req) < 0);
    kp_buf_deinit(&req.resp);
    kp_arena_deinit(&req.arena);
}

/* Mutated request bodies (fixed seed): a handler either answers with a response the codec
 * can decode at that version, or asks for the connection to be closed. Never a crash (the
 * ASan build of this test is the real check). Runs last: it may create and delete topics. */
typedef struct {
    kb_handler_fn fn;
    int16_t key, min_v, max_v;
    kp_decode_fn dec;
    size_t resp_size;
} target_t;

static void mutate_and_call(const target_t *tg, int16_t v, const kp_buf_t *valid, unsigned *seed,
                            int rounds)
{
    uint8_t *buf = malloc(valid->len + 8);
    for (int i = 0; i < rounds; i++) {
        size_t len = valid->len;
        if (len) memcpy(buf, valid->data, len);
        int flips = 1 + rand_r(seed) % 4;
        for (int k = 0; k < flips && len; k++)
            buf[rand_r(seed) % len] = (uint8_t)rand_r(seed);
        if (rand_r(seed) % 4 == 0 && len) len = (size_t)rand_r(seed) % len;
        kb_req_t req;
        memset(&req, 0, sizeof req);
        req.broker = broker;
        req.hdr.api_key = tg->key;
        req.hdr.api_version = v;
        kp_reader_init(&req.body, buf, len);
        kp_arena_init(&req.arena, NULL, 0, 1 << 24);
        kp_buf_init(&req.resp);
        int rc = tg->fn(&req);
        assert_true(rc == KB_DONE || rc < 0);
        if (rc == KB_DONE) {
            kp_arena_t out;
            kp_arena_init(&out, NULL, 0, 0);
            void *msg = calloc(1, tg->resp_size);
            kp_reader_t r;
            kp_reader_init(&r, req.resp.data, req.resp.len);
            assert_int_equal(tg->dec(&r, v, &out, msg), 0);
            free(msg);
            kp_arena_deinit(&out);
        }
        kp_buf_deinit(&req.resp);
        kp_arena_deinit(&req.arena);
    }
    free(buf);
}

static void test_handlers_survive_mutated_bodies(void **state)
{
    (void)state;
    unsigned seed = 12345;
    kp_metadata_req_t mq;
    kp_metadata_req_init(&mq);
    kp_metadata_req_metadata_request_topic_t mt[2];
    kp_metadata_req_metadata_request_topic_init(&mt[0]);
    kp_metadata_req_metadata_request_topic_init(&mt[1]);
    mt[0].name = kp_str("fz1");
    mt[1].name = kp_str("orders");
    mq.topics = mt;
    mq.topics_count = 2;

    kp_create_topics_req_t cq;
    kp_create_topics_req_init(&cq);
    kp_create_topics_req_creatable_topic_t ct;
    kp_create_topics_req_creatable_topic_init(&ct);
    kp_create_topics_req_creatable_topic_config_t cc;
    kp_create_topics_req_creatable_topic_config_init(&cc);
    ct.name = kp_str("fz2");
    ct.num_partitions = 1;
    ct.replication_factor = 1;
    cc.name = kp_str("retention.ms");
    cc.value = kp_str("1000");
    ct.configs = &cc;
    ct.configs_count = 1;
    cq.topics = &ct;
    cq.topics_count = 1;
    cq.validate_only = true;

    kp_describe_configs_req_t dq;
    kp_describe_configs_req_init(&dq);
    kp_describe_configs_req_describe_configs_resource_t dr;
    kp_describe_configs_req_describe_configs_resource_init(&dr);
    dr.resource_type = 2;
    dr.resource_name = kp_str("orders");
    dr.configuration_keys_count = -1;
    dq.resources = &dr;
    dq.resources_count = 1;

    kp_delete_topics_req_t xq;
    kp_delete_topics_req_init(&xq);
    kp_delete_topics_req_delete_topic_state_t xs;
    kp_delete_topics_req_delete_topic_state_init(&xs);
    xs.name = kp_str("fz3");
    kp_str_t xn = kp_str("fz3");
    xq.topics = &xs;
    xq.topics_count = 1;
    xq.topic_names = &xn;
    xq.topic_names_count = 1;

    kp_describe_cluster_req_t lq;
    kp_describe_cluster_req_init(&lq);
    kp_api_versions_req_t aq;
    kp_api_versions_req_init(&aq);
    aq.client_software_name = kp_str("fuzz");
    aq.client_software_version = kp_str("1");

    struct {
        target_t tg;
        const void *msg;
        kp_encode_fn enc;
        int rounds;
    } all[] = {
        {{kb_handle_metadata, KP_API_METADATA, 0, 12, metadata_dec, sizeof(kp_metadata_resp_t)},
         &mq,
         metadata_enc,
         150},
        {{kb_handle_create_topics, KP_API_CREATE_TOPICS, 2, 7, create_topics_dec,
          sizeof(kp_create_topics_resp_t)},
         &cq,
         create_topics_enc,
         100},
        {{kb_handle_describe_configs, KP_API_DESCRIBE_CONFIGS, 1, 4, describe_configs_dec,
          sizeof(kp_describe_configs_resp_t)},
         &dq,
         describe_configs_enc,
         300},
        {{kb_handle_delete_topics, KP_API_DELETE_TOPICS, 1, 6, delete_topics_dec,
          sizeof(kp_delete_topics_resp_t)},
         &xq,
         delete_topics_enc,
         300},
        {{kb_handle_describe_cluster, KP_API_DESCRIBE_CLUSTER, 0, 1, describe_cluster_dec,
          sizeof(kp_describe_cluster_resp_t)},
         &lq,
         describe_cluster_enc,
         300},
        {{kb_handle_api_versions, KP_API_API_VERSIONS, 0, 4, api_versions_dec,
          sizeof(kp_api_versions_resp_t)},
         &aq,
         api_versions_enc,
         300},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        for (int16_t v = all[i].tg.min_v; v <= all[i].tg.max_v; v++) {
            kp_buf_t valid;
            kp_buf_init(&valid);
            assert_int_equal(all[i].enc(&valid, v, all[i].msg), 0);
            mutate_and_call(&all[i].tg, v, &valid, &seed, all[i].rounds);
            kp_buf_deinit(&valid);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_versions_lists_linked_handlers),
        cmocka_unit_test(test_create_topics_checks),
        cmocka_unit_test(test_create_topics_assignments),
        cmocka_unit_test(test_metadata_broker_and_auto_create),
        cmocka_unit_test(test_metadata_by_unknown_id),
        cmocka_unit_test(test_delete_topics_by_name_and_id),
        cmocka_unit_test(test_describe_configs_topic_and_broker),
        cmocka_unit_test(test_create_topics_many_names_linear),
        cmocka_unit_test(test_describe_cluster),
        cmocka_unit_test(test_malformed_body_closes),
        cmocka_unit_test(test_handlers_survive_mutated_bodies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

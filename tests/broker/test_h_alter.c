/*
 * CreatePartitions, IncrementalAlterConfigs and AlterConfigs called directly (no socket), as
 * tests/broker/test_h_admin.c does: encode a request, run the handler against a real broker
 * and store in a temp dir, decode the response, and look at the store.
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
#include "broker/api/h_admin.h"
#include "protocol/gen/kp_alter_configs.h"
#include "protocol/gen/kp_create_partitions.h"
#include "protocol/gen/kp_incremental_alter_configs.h"
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
    return tb_setup("kbalt", sets, 5);
}

static int teardown(void **state)
{
    (void)state;
    return tb_teardown();
}

WRAP(create_topics)
WRAP(create_partitions)
WRAP(alter_configs)
WRAP(incremental_alter_configs)

static void make_topic(const char *name, int32_t parts)
{
    kp_create_topics_req_t q;
    kp_create_topics_req_init(&q);
    kp_create_topics_req_creatable_topic_t t;
    kp_create_topics_req_creatable_topic_init(&t);
    t.name = kp_str(name);
    t.num_partitions = parts;
    t.replication_factor = 1;
    q.topics = &t;
    q.topics_count = 1;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_create_topics, KP_API_CREATE_TOPICS, 7, &q, create_topics_enc), KB_DONE);
    kp_create_topics_resp_t r;
    decode(&c, 7, &r, create_topics_dec);
    assert_int_equal(r.topics[0].error_code, 0);
    done(&c);
}

/* One CreatePartitions for one topic at version v; returns the error code (message in msg). */
static int16_t grow(int16_t v, const char *name, int32_t count, int32_t nassign, int32_t broker_id,
                    bool validate_only, char *msg, size_t msglen)
{
    kp_create_partitions_req_t q;
    kp_create_partitions_req_init(&q);
    kp_create_partitions_req_create_partitions_topic_t t;
    kp_create_partitions_req_create_partitions_topic_init(&t);
    kp_create_partitions_req_create_partitions_assignment_t as[4];
    t.name = kp_str(name);
    t.count = count;
    t.assignments_count = nassign;
    for (int32_t i = 0; i < nassign; i++) {
        kp_create_partitions_req_create_partitions_assignment_init(&as[i]);
        as[i].broker_ids = &broker_id;
        as[i].broker_ids_count = 1;
    }
    t.assignments = nassign > 0 ? as : NULL;
    q.topics = &t;
    q.topics_count = 1;
    q.timeout_ms = 1000;
    q.validate_only = validate_only;
    call_t c;
    assert_int_equal(call(&c, kb_handle_create_partitions, KP_API_CREATE_PARTITIONS, v, &q,
                          create_partitions_enc),
                     KB_DONE);
    kp_create_partitions_resp_t r;
    decode(&c, v, &r, create_partitions_dec);
    assert_int_equal(r.results_count, 1);
    int16_t ec = r.results[0].error_code;
    if (msg) snprintf(msg, msglen, "%.*s", r.results[0].error_message.len > 0 ?
                      r.results[0].error_message.len : 0, r.results[0].error_message.ptr);
    done(&c);
    return ec;
}

static int32_t nparts(const char *name)
{
    return ks_topic_partitions(ks_topic_find(kb_broker_store(broker), name, strlen(name)));
}

static void test_create_partitions(void **state)
{
    (void)state;
    char msg[256];
    make_topic("cp", 2);
    assert_int_equal(grow(3, "cp", 5, -1, 0, true, msg, sizeof msg), KP_ERR_NONE);
    assert_int_equal(nparts("cp"), 2); /* validate_only */
    assert_int_equal(grow(0, "cp", 3, -1, 0, false, msg, sizeof msg), KP_ERR_NONE);
    assert_int_equal(nparts("cp"), 3);
    assert_int_equal(grow(3, "cp", 5, 2, 4, false, msg, sizeof msg), KP_ERR_NONE);
    assert_int_equal(nparts("cp"), 5);
    assert_non_null(ks_topic_part(ks_topic_find(kb_broker_store(broker), "cp", 2), 4));
    assert_int_equal(grow(2, "cp", 5, -1, 0, false, msg, sizeof msg), KP_ERR_INVALID_PARTITIONS);
    assert_string_equal(msg, "Topic already has 5 partitions.");
    assert_int_equal(grow(2, "cp", 4, -1, 0, false, msg, sizeof msg), KP_ERR_INVALID_PARTITIONS);
    assert_string_equal(msg, "Topic currently has 5 partitions, which is higher than the "
                             "requested 4.");
    assert_int_equal(grow(1, "cp", 7, 1, 4, false, NULL, 0), KP_ERR_INVALID_REPLICA_ASSIGNMENT);
    assert_int_equal(grow(1, "cp", 7, 2, 9, false, NULL, 0), KP_ERR_INVALID_REPLICA_ASSIGNMENT);
    assert_int_equal(grow(1, "nope", 7, -1, 0, false, NULL, 0), KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(nparts("cp"), 5);
}

typedef struct {
    const char *name;
    int8_t op;
    const char *value; /* NULL = null */
} op_t;

static int16_t ialter(int16_t v, int8_t rtype, const char *rname, const op_t *ops, int n,
                      bool validate_only, char *msg, size_t msglen)
{
    kp_incremental_alter_configs_req_t q;
    kp_incremental_alter_configs_req_init(&q);
    kp_incremental_alter_configs_req_alter_configs_resource_t res;
    kp_incremental_alter_configs_req_alter_configs_resource_init(&res);
    kp_incremental_alter_configs_req_alterable_config_t cs[8];
    for (int i = 0; i < n; i++) {
        kp_incremental_alter_configs_req_alterable_config_init(&cs[i]);
        cs[i].name = kp_str(ops[i].name);
        cs[i].config_operation = ops[i].op;
        cs[i].value = ops[i].value ? kp_str(ops[i].value) : (kp_str_t){NULL, -1};
    }
    res.resource_type = rtype;
    res.resource_name = kp_str(rname);
    res.configs = cs;
    res.configs_count = n;
    q.resources = &res;
    q.resources_count = 1;
    q.validate_only = validate_only;
    call_t c;
    assert_int_equal(call(&c, kb_handle_incremental_alter_configs,
                          KP_API_INCREMENTAL_ALTER_CONFIGS, v, &q, incremental_alter_configs_enc),
                     KB_DONE);
    kp_incremental_alter_configs_resp_t r;
    decode(&c, v, &r, incremental_alter_configs_dec);
    assert_int_equal(r.responses_count, 1);
    int16_t ec = r.responses[0].error_code;
    if (msg) snprintf(msg, msglen, "%.*s", r.responses[0].error_message.len > 0 ?
                      r.responses[0].error_message.len : 0, r.responses[0].error_message.ptr);
    done(&c);
    return ec;
}

static const char *tval(const char *topic, const char *key)
{
    static char buf[256];
    ks_topic_t *t = ks_topic_find(kb_broker_store(broker), topic, strlen(topic));
    assert_non_null(t);
    assert_int_equal(ks_topic_config_get(ks_topic_config(t), key, buf, sizeof buf), 0);
    return buf;
}

static bool overridden(const char *topic, const char *key)
{
    ks_topic_t *t = ks_topic_find(kb_broker_store(broker), topic, strlen(topic));
    return (ks_topic_overrides(t) >> ks_topic_config_index(key)) & 1;
}

static void test_incremental_alter_topic(void **state)
{
    (void)state;
    char msg[256];
    make_topic("ia", 1);
    op_t set[] = {{"retention.ms", 0, "5000"}, {"cleanup.policy", 2, "compact"},
                  {"compression.type", 0, "zstd"}};
    assert_int_equal(ialter(1, 2, "ia", set, 3, true, msg, sizeof msg), KP_ERR_NONE);
    assert_string_equal(tval("ia", "retention.ms"), "3600000"); /* validate_only */
    assert_int_equal(ialter(0, 2, "ia", set, 3, false, msg, sizeof msg), KP_ERR_NONE);
    assert_string_equal(tval("ia", "retention.ms"), "5000");
    assert_string_equal(tval("ia", "cleanup.policy"), "compact,delete");
    assert_string_equal(tval("ia", "compression.type"), "zstd");
    assert_true(overridden("ia", "retention.ms"));
    op_t undo[] = {{"cleanup.policy", 3, "delete"}, {"retention.ms", 1, NULL}};
    assert_int_equal(ialter(1, 2, "ia", undo, 2, false, msg, sizeof msg), KP_ERR_NONE);
    assert_string_equal(tval("ia", "cleanup.policy"), "compact");
    assert_string_equal(tval("ia", "retention.ms"), "3600000"); /* log.retention.hours=1 */
    assert_false(overridden("ia", "retention.ms"));
    op_t bad1[] = {{"retention.ms", 2, "1"}};
    assert_int_equal(ialter(1, 2, "ia", bad1, 1, false, msg, sizeof msg), KP_ERR_INVALID_CONFIG);
    assert_string_equal(msg, "Config value append is not allowed for config key: retention.ms");
    op_t bad2[] = {{"no.such", 0, "1"}};
    assert_int_equal(ialter(1, 2, "ia", bad2, 1, false, msg, sizeof msg), KP_ERR_INVALID_CONFIG);
    assert_string_equal(msg, "Unknown topic config name: no.such");
    op_t bad3[] = {{"segment.bytes", 0, "abc"}};
    assert_int_equal(ialter(1, 2, "ia", bad3, 1, false, msg, sizeof msg), KP_ERR_INVALID_CONFIG);
    assert_string_equal(msg, "Invalid value abc for configuration segment.bytes: Not a number of "
                             "type LONG");
    op_t dup[] = {{"retention.ms", 0, "1"}, {"retention.ms", 0, "2"}};
    assert_int_equal(ialter(1, 2, "ia", dup, 2, false, NULL, 0), KP_ERR_INVALID_REQUEST);
    op_t nul[] = {{"retention.ms", 0, NULL}};
    assert_int_equal(ialter(1, 2, "ia", nul, 1, false, NULL, 0), KP_ERR_INVALID_CONFIG);
    assert_int_equal(ialter(1, 2, "missing", set, 1, false, NULL, 0),
                     KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(ialter(1, 3, "g", set, 1, false, NULL, 0), KP_ERR_INVALID_REQUEST);
}

static void test_broker_dynamic_configs(void **state)
{
    (void)state;
    char msg[256];
    make_topic("dyn", 1);
    op_t set[] = {{"log.retention.ms", 0, "1234"}};
    assert_int_equal(ialter(1, 4, "4", set, 1, false, msg, sizeof msg), KP_ERR_NONE);
    assert_string_equal(tval("dyn", "retention.ms"), "1234");
    int bi = kb_config_find("log.retention.ms");
    assert_int_equal(kb_dynconf_source(broker, bi), KB_CS_DYNAMIC_BROKER);
    op_t ro[] = {{"listeners", 0, "PLAINTEXT://x:1"}};
    assert_int_equal(ialter(1, 4, "4", ro, 1, false, msg, sizeof msg), KP_ERR_INVALID_REQUEST);
    assert_int_equal(ialter(1, 4, "7", set, 1, false, NULL, 0), KP_ERR_INVALID_REQUEST);
    op_t del[] = {{"log.retention.ms", 1, NULL}};
    assert_int_equal(ialter(1, 4, "", del, 1, false, msg, sizeof msg), KP_ERR_NONE);
    assert_string_equal(tval("dyn", "retention.ms"), "3600000");
    assert_int_equal(kb_dynconf_source(broker, bi), 0);

    /* legacy AlterConfigs: replaces the topic's overrides */
    kp_alter_configs_req_t q;
    kp_alter_configs_req_init(&q);
    kp_alter_configs_req_alter_configs_resource_t res;
    kp_alter_configs_req_alter_configs_resource_init(&res);
    kp_alter_configs_req_alterable_config_t cf;
    kp_alter_configs_req_alterable_config_init(&cf);
    cf.name = kp_str("retention.bytes");
    cf.value = kp_str("100000");
    res.resource_type = 2;
    res.resource_name = kp_str("dyn");
    res.configs = &cf;
    res.configs_count = 1;
    q.resources = &res;
    q.resources_count = 1;
    op_t pre[] = {{"segment.ms", 0, "60000"}};
    assert_int_equal(ialter(1, 2, "dyn", pre, 1, false, NULL, 0), KP_ERR_NONE);
    for (int16_t v = 0; v <= 2; v++) {
        call_t c;
        assert_int_equal(
            call(&c, kb_handle_alter_configs, KP_API_ALTER_CONFIGS, v, &q, alter_configs_enc),
            KB_DONE);
        kp_alter_configs_resp_t r;
        decode(&c, v, &r, alter_configs_dec);
        assert_int_equal(r.responses[0].error_code, KP_ERR_NONE);
        done(&c);
    }
    assert_string_equal(tval("dyn", "retention.bytes"), "100000");
    assert_string_equal(tval("dyn", "segment.ms"), "604800000");
    assert_false(overridden("dyn", "segment.ms"));
}

/* Issue 19: the broker's own topics are not reconfigured or grown by clients (a retention.ms=1
 * on __consumer_offsets would erase every group's commits); the answer names the topic, for
 * the incremental and the legacy API, existing (__consumer_offsets) or not (_schemas). */
static void test_internal_topics_refused(void **state)
{
    (void)state;
    char msg[256];
    ks_topic_t *co = ks_topic_find(kb_broker_store(broker), "__consumer_offsets", 18);
    assert_non_null(co);
    uint64_t before = ks_topic_overrides(co);
    op_t set[] = {{"retention.ms", 0, "1"}};
    const char *names[] = {"__consumer_offsets", "_schemas", "__audit"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ialter(1, 2, names[i], set, 1, false, msg, sizeof msg),
                         KP_ERR_INVALID_REQUEST);
        assert_non_null(strstr(msg, names[i]));
        assert_int_equal(grow(3, names[i], 60, -1, 0, false, msg, sizeof msg),
                         KP_ERR_INVALID_REQUEST);
        assert_non_null(strstr(msg, names[i]));
    }
    assert_int_equal(ks_topic_overrides(co), before);
    assert_string_not_equal(tval("__consumer_offsets", "retention.ms"), "1");
    assert_int_equal(nparts("__consumer_offsets"), ks_topic_partitions(co));
    int32_t parts = nparts("__consumer_offsets");
    assert_int_equal(grow(0, "__consumer_offsets", parts + 1, -1, 0, false, NULL, 0),
                     KP_ERR_INVALID_REQUEST);
    assert_int_equal(nparts("__consumer_offsets"), parts);

    kp_alter_configs_req_t q;
    kp_alter_configs_req_init(&q);
    kp_alter_configs_req_alter_configs_resource_t res;
    kp_alter_configs_req_alter_configs_resource_init(&res);
    kp_alter_configs_req_alterable_config_t cf;
    kp_alter_configs_req_alterable_config_init(&cf);
    cf.name = kp_str("retention.ms");
    cf.value = kp_str("1");
    res.resource_type = 2;
    res.resource_name = kp_str("__consumer_offsets");
    res.configs = &cf;
    res.configs_count = 1;
    q.resources = &res;
    q.resources_count = 1;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_alter_configs, KP_API_ALTER_CONFIGS, 2, &q, alter_configs_enc),
        KB_DONE);
    kp_alter_configs_resp_t r;
    decode(&c, 2, &r, alter_configs_dec);
    assert_int_equal(r.responses[0].error_code, KP_ERR_INVALID_REQUEST);
    assert_true(r.responses[0].error_message.len > 0);
    assert_non_null(memmem(r.responses[0].error_message.ptr,
                           (size_t)r.responses[0].error_message.len, "__consumer_offsets", 18));
    done(&c);
    assert_int_equal(ks_topic_overrides(co), before);
    /* an ordinary topic of a similar name is still served */
    make_topic("__consumer_offsets2", 1);
    assert_int_equal(ialter(1, 2, "__consumer_offsets2", set, 1, false, NULL, 0), KP_ERR_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_partitions),
        cmocka_unit_test(test_incremental_alter_topic),
        cmocka_unit_test(test_broker_dynamic_configs),
        cmocka_unit_test(test_internal_topics_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The authorization seam in every handler: a test authorizer (kb_auth_set_authorizer) denies
 * everything on topic "secret" and group "gsecret", plus per-test rules, and each API must
 * answer with Kafka's code (TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED) in
 * the place Kafka puts it, hide what Kafka hides, and compute authorized_operations through the
 * seam. Handlers are called directly on a started broker (this thread is the loop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/api/h_group.h"
#include "broker/auth/auth.h"
#include "broker/core/config.h"
#include "broker/core/server.h"
#include "h_test_util.h"
#include "protocol/gen/kp_alter_configs.h"
#include "protocol/gen/kp_create_partitions.h"
#include "protocol/gen/kp_create_topics.h"
#include "protocol/gen/kp_delete_groups.h"
#include "protocol/gen/kp_delete_records.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/gen/kp_describe_cluster.h"
#include "protocol/gen/kp_describe_configs.h"
#include "protocol/gen/kp_describe_groups.h"
#include "protocol/gen/kp_find_coordinator.h"
#include "protocol/gen/kp_heartbeat.h"
#include "protocol/gen/kp_incremental_alter_configs.h"
#include "protocol/gen/kp_init_producer_id.h"
#include "protocol/gen/kp_join_group.h"
#include "protocol/gen/kp_leave_group.h"
#include "protocol/gen/kp_list_groups.h"
#include "protocol/gen/kp_list_offsets.h"
#include "protocol/gen/kp_metadata.h"
#include "protocol/gen/kp_offset_commit.h"
#include "protocol/gen/kp_offset_delete.h"
#include "protocol/gen/kp_offset_fetch.h"
#include "protocol/gen/kp_offset_for_leader_epoch.h"
#include "protocol/gen/kp_sync_group.h"

#define TAF KP_ERR_TOPIC_AUTHORIZATION_FAILED
#define GAF KP_ERR_GROUP_AUTHORIZATION_FAILED
#define CAF KP_ERR_CLUSTER_AUTHORIZATION_FAILED
#define NONE ((kp_str_t){NULL, -1})

#include "h_call_util.h"

/* ---- the test authorizer ---- */

typedef struct {
    int op, type;
    const char *name; /* NULL: any name */
} rule_t;
static rule_t denies[8];
static int n_denies;
static int asked;

static void deny(int op, int type, const char *name)
{
    denies[n_denies++] = (rule_t){op, type, name};
}

static bool is(const char *a, const char *name, size_t len)
{
    return strlen(a) == len && memcmp(a, name, len) == 0;
}

static bool authz(void *ud, kb_req_t *req, const kb_principal_t *who, int op, int type,
                  const char *name, size_t len)
{
    (void)ud;
    (void)req;
    assert_string_equal(who->name, "ANONYMOUS");
    asked++;
    if (type == KB_RES_TOPIC && is("secret", name, len)) return false;
    if (type == KB_RES_GROUP && is("gsecret", name, len)) return false;
    for (int i = 0; i < n_denies; i++)
        if (denies[i].op == op && denies[i].type == type &&
            (!denies[i].name || is(denies[i].name, name, len)))
            return false;
    return true;
}

static int setup(void **state)
{
    (void)state;
    static const char *const sets[] = {"listeners=PLAINTEXT://127.0.0.1:0",
                                       "auto.create.topics.enable=true"};
    if (tb_setup("kbauthz", sets, 2) < 0) return -1;
    ks_topic_t *t;
    if (ks_topic_create(kb_broker_store(broker), "secret", 2, NULL, &t) < 0) return -1;
    if (ks_topic_create(kb_broker_store(broker), "open", 2, NULL, &t) < 0) return -1;
    kb_auth_set_authorizer(broker, authz, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kb_auth_set_authorizer(broker, NULL, NULL);
    return tb_teardown();
}

static int reset(void **state)
{
    (void)state;
    n_denies = 0;
    asked = 0;
    return 0;
}

WRAP(produce)
WRAP(fetch)
WRAP(list_offsets)
WRAP(metadata)
WRAP(offset_commit)
WRAP(offset_fetch)
WRAP(offset_delete)
WRAP(join_group)
WRAP(sync_group)
WRAP(heartbeat)
WRAP(leave_group)
WRAP(describe_groups)
WRAP(list_groups)
WRAP(delete_groups)
WRAP(create_topics)
WRAP(delete_topics)
WRAP(delete_records)
WRAP(describe_configs)
WRAP(describe_cluster)
WRAP(init_producer_id)
WRAP(offset_for_leader_epoch)
WRAP(find_coordinator)
WRAP(create_partitions)
WRAP(alter_configs)
WRAP(incremental_alter_configs)

/* ------------------------------------------------------------------------------------------ */
/* Data path                                                                                   */

static int16_t produce_to(const char *topic)
{
    kp_buf_t batch;
    kp_buf_init(&batch);
    assert_int_equal(make_batch(&batch, KP_COMPRESSION_NONE, 2, 1000, 8), 0);
    kp_produce_req_partition_produce_data_t pd;
    kp_produce_req_partition_produce_data_init(&pd);
    pd.index = 0;
    pd.records = (kp_bytes_t){batch.data, (int32_t)batch.len};
    kp_produce_req_topic_produce_data_t td;
    kp_produce_req_topic_produce_data_init(&td);
    td.name = kp_str(topic);
    td.partition_data = &pd;
    td.partition_data_count = 1;
    kp_produce_req_t m;
    kp_produce_req_init(&m);
    m.acks = 1;
    m.timeout_ms = 1000;
    m.topic_data = &td;
    m.topic_data_count = 1;
    call_t c;
    assert_int_equal(call(&c, kb_handle_produce, KP_API_PRODUCE, 9, &m, produce_enc), KB_DONE);
    kp_produce_resp_t r;
    decode(&c, 9, &r, produce_dec);
    int16_t err = r.responses[0].partition_responses[0].error_code;
    done(&c);
    kp_buf_deinit(&batch);
    return err;
}

static void test_authz_produce_write_topic(void **state)
{
    (void)state;
    assert_int_equal(produce_to("secret"), TAF);
    assert_int_equal(produce_to("open"), KP_ERR_NONE);
    /* auto-creation needs CREATE on the cluster or topic; WRITE alone sees no topic */
    deny(KB_OP_CREATE, KB_RES_CLUSTER, NULL);
    deny(KB_OP_CREATE, KB_RES_TOPIC, "brand-new");
    assert_int_equal(produce_to("brand-new"), KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_null(ks_topic_find(kb_broker_store(broker), "brand-new", 9));
    deny(KB_OP_WRITE, KB_RES_TOPIC, "open");
    assert_int_equal(produce_to("open"), TAF);
}

static void test_authz_fetch_read_topic(void **state)
{
    (void)state;
    kp_fetch_req_fetch_partition_t fp[1];
    kp_fetch_req_fetch_partition_init(&fp[0]);
    fp[0].partition = 0;
    fp[0].partition_max_bytes = 1 << 20;
    kp_fetch_req_fetch_topic_t ft[2];
    const char *names[2] = {"secret", "open"};
    for (int i = 0; i < 2; i++) {
        kp_fetch_req_fetch_topic_init(&ft[i]);
        ft[i].topic = kp_str(names[i]);
        ft[i].partitions = fp;
        ft[i].partitions_count = 1;
    }
    kp_fetch_req_t m;
    kp_fetch_req_init(&m);
    m.max_bytes = 1 << 20;
    m.topics = ft;
    m.topics_count = 2;
    call_t c;
    assert_int_equal(call(&c, kb_handle_fetch, KP_API_FETCH, 11, &m, fetch_enc), KB_DONE);
    kp_fetch_resp_t r;
    decode(&c, 11, &r, fetch_dec);
    assert_int_equal(r.responses[0].partitions[0].error_code, TAF);
    assert_int_equal(r.responses[1].partitions[0].error_code, KP_ERR_NONE);
    done(&c);
}

static void test_authz_list_offsets_and_epochs_describe_topic(void **state)
{
    (void)state;
    kp_list_offsets_req_list_offsets_partition_t lp;
    kp_list_offsets_req_list_offsets_partition_init(&lp);
    lp.timestamp = -1;
    kp_list_offsets_req_list_offsets_topic_t lt;
    kp_list_offsets_req_list_offsets_topic_init(&lt);
    lt.name = kp_str("secret");
    lt.partitions = &lp;
    lt.partitions_count = 1;
    kp_list_offsets_req_t lm;
    kp_list_offsets_req_init(&lm);
    lm.replica_id = -1;
    lm.topics = &lt;
    lm.topics_count = 1;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_list_offsets, KP_API_LIST_OFFSETS, 5, &lm, list_offsets_enc), KB_DONE);
    kp_list_offsets_resp_t lr;
    decode(&c, 5, &lr, list_offsets_dec);
    assert_int_equal(lr.topics[0].partitions[0].error_code, TAF);
    assert_int_equal(lr.topics[0].partitions[0].offset, -1);
    done(&c);

    kp_offset_for_leader_epoch_req_offset_for_leader_partition_t ep;
    kp_offset_for_leader_epoch_req_offset_for_leader_partition_init(&ep);
    kp_offset_for_leader_epoch_req_offset_for_leader_topic_t et;
    kp_offset_for_leader_epoch_req_offset_for_leader_topic_init(&et);
    et.topic = kp_str("secret");
    et.partitions = &ep;
    et.partitions_count = 1;
    kp_offset_for_leader_epoch_req_t em;
    kp_offset_for_leader_epoch_req_init(&em);
    em.topics = &et;
    em.topics_count = 1;
    deny(KB_OP_CLUSTER_ACTION, KB_RES_CLUSTER, NULL);
    assert_int_equal(call(&c, kb_handle_offset_for_leader_epoch, KP_API_OFFSET_FOR_LEADER_EPOCH, 4,
                          &em, offset_for_leader_epoch_enc),
                     KB_DONE);
    kp_offset_for_leader_epoch_resp_t er;
    decode(&c, 4, &er, offset_for_leader_epoch_dec);
    assert_int_equal(er.topics[0].partitions[0].error_code, TAF);
    done(&c);
}

static void test_authz_delete_records_delete_topic(void **state)
{
    (void)state;
    kp_delete_records_req_delete_records_partition_t p;
    kp_delete_records_req_delete_records_partition_init(&p);
    p.offset = 0;
    kp_delete_records_req_delete_records_topic_t t;
    kp_delete_records_req_delete_records_topic_init(&t);
    t.name = kp_str("secret");
    t.partitions = &p;
    t.partitions_count = 1;
    kp_delete_records_req_t m;
    kp_delete_records_req_init(&m);
    m.topics = &t;
    m.topics_count = 1;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_delete_records, KP_API_DELETE_RECORDS, 2, &m, delete_records_enc),
        KB_DONE);
    kp_delete_records_resp_t r;
    decode(&c, 2, &r, delete_records_dec);
    assert_int_equal(r.topics[0].partitions[0].error_code, TAF);
    done(&c);
}

/* ------------------------------------------------------------------------------------------ */
/* Metadata and admin                                                                          */

static kp_metadata_resp_t metadata(call_t *c, const char *topic, bool ops)
{
    kp_metadata_req_metadata_request_topic_t q;
    kp_metadata_req_metadata_request_topic_init(&q);
    q.name = topic ? kp_str(topic) : NONE;
    kp_metadata_req_t m;
    kp_metadata_req_init(&m);
    m.topics = topic ? &q : NULL;
    m.topics_count = topic ? 1 : -1;
    m.allow_auto_topic_creation = true;
    m.include_cluster_authorized_operations = ops;
    m.include_topic_authorized_operations = ops;
    assert_int_equal(call(c, kb_handle_metadata, KP_API_METADATA, 9, &m, metadata_enc), KB_DONE);
    kp_metadata_resp_t r;
    decode(c, 9, &r, metadata_dec);
    return r;
}

static void test_authz_metadata_hides_and_refuses(void **state)
{
    (void)state;
    call_t c;
    kp_metadata_resp_t r = metadata(&c, NULL, false);
    for (int32_t i = 0; i < r.topics_count; i++) /* all topics: "secret" is not mentioned */
        assert_false(r.topics[i].name.len == 6 && !memcmp(r.topics[i].name.ptr, "secret", 6));
    assert_true(r.topics_count >= 1);
    done(&c);
    r = metadata(&c, "secret", false);
    assert_int_equal(r.topics[0].error_code, TAF);
    assert_int_equal(r.topics[0].partitions_count, 0);
    done(&c);
    deny(KB_OP_CREATE, KB_RES_CLUSTER, NULL);
    deny(KB_OP_CREATE, KB_RES_TOPIC, "auto-x");
    r = metadata(&c, "auto-x", false);
    assert_int_equal(r.topics[0].error_code, TAF);
    assert_null(ks_topic_find(kb_broker_store(broker), "auto-x", 6));
    done(&c);
    /* authorized_operations through the seam: WRITE denied on "open" */
    deny(KB_OP_WRITE, KB_RES_TOPIC, "open");
    r = metadata(&c, "open", true);
    assert_int_equal(r.topics[0].error_code, KP_ERR_NONE);
    int32_t ops = r.topics[0].topic_authorized_operations;
    assert_true(ops & (1 << KB_OP_READ));
    assert_false(ops & (1 << KB_OP_WRITE));
    assert_true(ops & (1 << KB_OP_DESCRIBE));
    assert_false(r.cluster_authorized_operations & (1 << KB_OP_CREATE));
    assert_true(r.cluster_authorized_operations & (1 << KB_OP_DESCRIBE));
    done(&c);
}

static void test_authz_create_and_delete_topics(void **state)
{
    (void)state;
    deny(KB_OP_CREATE, KB_RES_CLUSTER, NULL);
    deny(KB_OP_CREATE, KB_RES_TOPIC, "nope");
    deny(KB_OP_DESCRIBE_CONFIGS, KB_RES_TOPIC, "quiet");
    kp_create_topics_req_creatable_topic_t t[2];
    const char *names[2] = {"nope", "quiet"};
    for (int i = 0; i < 2; i++) {
        kp_create_topics_req_creatable_topic_init(&t[i]);
        t[i].name = kp_str(names[i]);
        t[i].num_partitions = 1;
        t[i].replication_factor = 1;
    }
    kp_create_topics_req_t m;
    kp_create_topics_req_init(&m);
    m.topics = t;
    m.topics_count = 2;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_create_topics, KP_API_CREATE_TOPICS, 5, &m, create_topics_enc), KB_DONE);
    kp_create_topics_resp_t r;
    decode(&c, 5, &r, create_topics_dec);
    assert_int_equal(r.topics[0].error_code, TAF);
    assert_int_equal(r.topics[1].error_code, KP_ERR_NONE); /* CREATE on the topic is enough */
    assert_int_equal(r.topics[1].topic_config_error_code, TAF);
    assert_int_equal(r.topics[1].num_partitions, -1);
    assert_int_equal(r.topics[1].configs_count, 0);
    done(&c);
    assert_null(ks_topic_find(kb_broker_store(broker), "nope", 4));
    assert_non_null(ks_topic_find(kb_broker_store(broker), "quiet", 5));

    kp_str_t del[2] = {kp_str("secret"), kp_str("no-such")};
    kp_delete_topics_req_t d;
    kp_delete_topics_req_init(&d);
    d.topic_names = del;
    d.topic_names_count = 2;
    deny(KB_OP_DELETE, KB_RES_TOPIC, "no-such"); /* denied before existence is checked */
    assert_int_equal(
        call(&c, kb_handle_delete_topics, KP_API_DELETE_TOPICS, 4, &d, delete_topics_enc), KB_DONE);
    kp_delete_topics_resp_t dr;
    decode(&c, 4, &dr, delete_topics_dec);
    assert_int_equal(dr.responses[0].error_code, TAF);
    assert_int_equal(dr.responses[1].error_code, TAF);
    done(&c);
    assert_non_null(ks_topic_find(kb_broker_store(broker), "secret", 6));
}

static void test_authz_describe_configs_and_cluster(void **state)
{
    (void)state;
    deny(KB_OP_DESCRIBE_CONFIGS, KB_RES_CLUSTER, NULL);
    kp_describe_configs_req_describe_configs_resource_t res[2];
    for (int i = 0; i < 2; i++)
        kp_describe_configs_req_describe_configs_resource_init(&res[i]);
    res[0].resource_type = 2; /* topic */
    res[0].resource_name = kp_str("secret");
    res[0].configuration_keys_count = -1;
    res[1].resource_type = 4; /* broker */
    res[1].resource_name = kp_str("1");
    res[1].configuration_keys_count = -1;
    kp_describe_configs_req_t m;
    kp_describe_configs_req_init(&m);
    m.resources = res;
    m.resources_count = 2;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_describe_configs, KP_API_DESCRIBE_CONFIGS, 4, &m, describe_configs_enc),
        KB_DONE);
    kp_describe_configs_resp_t r;
    decode(&c, 4, &r, describe_configs_dec);
    assert_int_equal(r.results[0].error_code, TAF);
    assert_int_equal(r.results[1].error_code, CAF);
    done(&c);

    kp_describe_cluster_req_t dm;
    kp_describe_cluster_req_init(&dm);
    dm.include_cluster_authorized_operations = true;
    deny(KB_OP_DESCRIBE, KB_RES_CLUSTER, NULL);
    assert_int_equal(
        call(&c, kb_handle_describe_cluster, KP_API_DESCRIBE_CLUSTER, 0, &dm, describe_cluster_enc),
        KB_DONE);
    kp_describe_cluster_resp_t dr;
    decode(&c, 0, &dr, describe_cluster_dec);
    assert_int_equal(dr.error_code, KP_ERR_NONE);
    assert_int_equal(dr.cluster_authorized_operations, 0); /* no DESCRIBE: nothing disclosed */
    done(&c);
}

static int16_t init_pid(const char *txn)
{
    kp_init_producer_id_req_t m;
    kp_init_producer_id_req_init(&m);
    m.transactional_id = txn ? kp_str(txn) : NONE;
    m.transaction_timeout_ms = 1000;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_init_producer_id, KP_API_INIT_PRODUCER_ID, 4, &m, init_producer_id_enc),
        KB_DONE);
    kp_init_producer_id_resp_t r;
    decode(&c, 4, &r, init_producer_id_dec);
    done(&c);
    return r.error_code;
}

static void test_authz_init_producer_id(void **state)
{
    (void)state;
    assert_int_equal(init_pid(NULL), KP_ERR_NONE);
    deny(KB_OP_IDEMPOTENT_WRITE, KB_RES_CLUSTER, NULL);
    assert_int_equal(init_pid(NULL), KP_ERR_NONE); /* WRITE on some topic ("open") suffices */
    deny(KB_OP_WRITE, KB_RES_TOPIC, NULL);
    assert_int_equal(init_pid(NULL), CAF);
    assert_int_equal(init_pid("txn-1"), KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
}

/* ------------------------------------------------------------------------------------------ */
/* Groups                                                                                      */

static void test_authz_group_membership(void **state)
{
    (void)state;
    kp_join_group_req_join_group_request_protocol_t p;
    kp_join_group_req_join_group_request_protocol_init(&p);
    p.name = kp_str("range");
    kp_join_group_req_t jm;
    kp_join_group_req_init(&jm);
    jm.group_id = kp_str("gsecret");
    jm.session_timeout_ms = 10000;
    jm.member_id = kp_str("");
    jm.protocol_type = kp_str("consumer");
    jm.protocols = &p;
    jm.protocols_count = 1;
    call_t c;
    assert_int_equal(call(&c, kb_handle_join_group, KP_API_JOIN_GROUP, 5, &jm, join_group_enc),
                     KB_DONE);
    kp_join_group_resp_t jr;
    decode(&c, 5, &jr, join_group_dec);
    assert_int_equal(jr.error_code, GAF);
    done(&c);

    kp_sync_group_req_t sm;
    kp_sync_group_req_init(&sm);
    sm.group_id = kp_str("gsecret");
    sm.member_id = kp_str("m");
    assert_int_equal(call(&c, kb_handle_sync_group, KP_API_SYNC_GROUP, 3, &sm, sync_group_enc),
                     KB_DONE);
    kp_sync_group_resp_t sr;
    decode(&c, 3, &sr, sync_group_dec);
    assert_int_equal(sr.error_code, GAF);
    done(&c);

    kp_heartbeat_req_t hm;
    kp_heartbeat_req_init(&hm);
    hm.group_id = kp_str("gsecret");
    hm.member_id = kp_str("m");
    assert_int_equal(call(&c, kb_handle_heartbeat, KP_API_HEARTBEAT, 3, &hm, heartbeat_enc),
                     KB_DONE);
    kp_heartbeat_resp_t hr;
    decode(&c, 3, &hr, heartbeat_dec);
    assert_int_equal(hr.error_code, GAF);
    done(&c);

    kp_leave_group_req_member_identity_t mi;
    kp_leave_group_req_member_identity_init(&mi);
    mi.member_id = kp_str("m");
    kp_leave_group_req_t lm;
    kp_leave_group_req_init(&lm);
    lm.group_id = kp_str("gsecret");
    lm.members = &mi;
    lm.members_count = 1;
    assert_int_equal(call(&c, kb_handle_leave_group, KP_API_LEAVE_GROUP, 3, &lm, leave_group_enc),
                     KB_DONE);
    kp_leave_group_resp_t lr;
    decode(&c, 3, &lr, leave_group_dec);
    assert_int_equal(lr.error_code, GAF);
    assert_int_equal(lr.members_count, 0);
    done(&c);

    kp_str_t key = kp_str("gsecret");
    kp_find_coordinator_req_t fm;
    kp_find_coordinator_req_init(&fm);
    fm.coordinator_keys = &key;
    fm.coordinator_keys_count = 1;
    assert_int_equal(
        call(&c, kb_handle_find_coordinator, KP_API_FIND_COORDINATOR, 4, &fm, find_coordinator_enc),
        KB_DONE);
    kp_find_coordinator_resp_t fr;
    decode(&c, 4, &fr, find_coordinator_dec);
    assert_int_equal(fr.coordinators[0].error_code, GAF);
    done(&c);
}

static kp_offset_commit_resp_t commit(call_t *c, const char *group, const char *topic)
{
    kp_offset_commit_req_offset_commit_request_partition_t p;
    kp_offset_commit_req_offset_commit_request_partition_init(&p);
    p.committed_offset = 1;
    p.committed_metadata = kp_str("");
    kp_offset_commit_req_offset_commit_request_topic_t t;
    kp_offset_commit_req_offset_commit_request_topic_init(&t);
    t.name = kp_str(topic);
    t.partitions = &p;
    t.partitions_count = 1;
    kp_offset_commit_req_t m;
    kp_offset_commit_req_init(&m);
    m.group_id = kp_str(group);
    m.member_id = kp_str("");
    m.topics = &t;
    m.topics_count = 1;
    assert_int_equal(
        call(c, kb_handle_offset_commit, KP_API_OFFSET_COMMIT, 7, &m, offset_commit_enc), KB_DONE);
    kp_offset_commit_resp_t r;
    decode(c, 7, &r, offset_commit_dec);
    return r;
}

static void test_authz_offsets(void **state)
{
    (void)state;
    call_t c;
    kp_offset_commit_resp_t cr = commit(&c, "gsecret", "open");
    assert_int_equal(cr.topics[0].partitions[0].error_code, GAF);
    done(&c);
    cr = commit(&c, "g", "secret");
    assert_int_equal(cr.topics[0].partitions[0].error_code, TAF);
    done(&c);

    int32_t part = 0;
    kp_offset_fetch_req_offset_fetch_request_topics_t ft;
    kp_offset_fetch_req_offset_fetch_request_topics_init(&ft);
    ft.name = kp_str("secret");
    ft.partition_indexes = &part;
    ft.partition_indexes_count = 1;
    kp_offset_fetch_req_offset_fetch_request_group_t gr[2];
    const char *gids[2] = {"gsecret", "g"};
    for (int i = 0; i < 2; i++) {
        kp_offset_fetch_req_offset_fetch_request_group_init(&gr[i]);
        gr[i].group_id = kp_str(gids[i]);
        gr[i].topics = &ft;
        gr[i].topics_count = 1;
    }
    kp_offset_fetch_req_t fm;
    kp_offset_fetch_req_init(&fm);
    fm.groups = gr;
    fm.groups_count = 2;
    assert_int_equal(
        call(&c, kb_handle_offset_fetch, KP_API_OFFSET_FETCH, 8, &fm, offset_fetch_enc), KB_DONE);
    kp_offset_fetch_resp_t fr;
    decode(&c, 8, &fr, offset_fetch_dec);
    assert_int_equal(fr.groups[0].error_code, GAF);
    assert_int_equal(fr.groups[1].error_code, KP_ERR_NONE);
    assert_int_equal(fr.groups[1].topics[0].partitions[0].error_code, TAF);
    assert_int_equal(fr.groups[1].topics[0].partitions[0].committed_offset, -1);
    done(&c);

    kp_offset_delete_req_offset_delete_request_partition_t dp;
    kp_offset_delete_req_offset_delete_request_partition_init(&dp);
    kp_offset_delete_req_offset_delete_request_topic_t dt;
    kp_offset_delete_req_offset_delete_request_topic_init(&dt);
    dt.name = kp_str("open");
    dt.partitions = &dp;
    dt.partitions_count = 1;
    kp_offset_delete_req_t dm;
    kp_offset_delete_req_init(&dm);
    dm.group_id = kp_str("gsecret");
    dm.topics = &dt;
    dm.topics_count = 1;
    assert_int_equal(
        call(&c, kb_handle_offset_delete, KP_API_OFFSET_DELETE, 0, &dm, offset_delete_enc),
        KB_DONE);
    kp_offset_delete_resp_t dr;
    decode(&c, 0, &dr, offset_delete_dec);
    assert_int_equal(dr.error_code, GAF);
    done(&c);
}

static void test_authz_describe_list_delete_groups(void **state)
{
    (void)state;
    kp_str_t ids[2] = {kp_str("gsecret"), kp_str("g")};
    kp_describe_groups_req_t m;
    kp_describe_groups_req_init(&m);
    m.groups = ids;
    m.groups_count = 2;
    m.include_authorized_operations = true;
    deny(KB_OP_DELETE, KB_RES_GROUP, "g");
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_describe_groups, KP_API_DESCRIBE_GROUPS, 3, &m, describe_groups_enc),
        KB_DONE);
    kp_describe_groups_resp_t r;
    decode(&c, 3, &r, describe_groups_dec);
    assert_int_equal(r.groups[0].error_code, GAF);
    assert_int_equal(r.groups[1].error_code, KP_ERR_NONE);
    assert_int_equal(r.groups[1].authorized_operations, (1 << KB_OP_READ) | (1 << KB_OP_DESCRIBE));
    done(&c);

    kp_delete_groups_req_t dm;
    kp_delete_groups_req_init(&dm);
    dm.groups_names = ids;
    dm.groups_names_count = 1;
    assert_int_equal(
        call(&c, kb_handle_delete_groups, KP_API_DELETE_GROUPS, 2, &dm, delete_groups_enc),
        KB_DONE);
    kp_delete_groups_resp_t dr;
    decode(&c, 2, &dr, delete_groups_dec);
    assert_int_equal(dr.results[0].error_code, GAF);
    done(&c);
}

/* ListGroups: DESCRIBE on the cluster lists all; without it, only groups it may DESCRIBE. */
static void test_authz_list_groups_filters(void **state)
{
    (void)state;
    /* both groups exist (a committed offset each, put straight into the coordinator) */
    kb_gstate_t *gs = kb_gstate(broker);
    assert_non_null(gs);
    kb_offset_t o = {.offset = 1, .leader_epoch = -1, .commit_ts = 1, .expire_ts = -1};
    assert_int_equal(kb_group_offset_put(gs->coord, kp_str("gsecret"), kp_str("open"), 0, &o), 0);
    assert_int_equal(kb_group_offset_put(gs->coord, kp_str("gopen"), kp_str("open"), 0, &o), 0);
    call_t c;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) deny(KB_OP_DESCRIBE, KB_RES_CLUSTER, NULL);
        kp_list_groups_req_t m;
        kp_list_groups_req_init(&m);
        assert_int_equal(
            call(&c, kb_handle_list_groups, KP_API_LIST_GROUPS, 3, &m, list_groups_enc), KB_DONE);
        kp_list_groups_resp_t r;
        decode(&c, 3, &r, list_groups_dec);
        bool saw_secret = false, saw_open = false;
        for (int32_t i = 0; i < r.groups_count; i++) {
            saw_secret |=
                r.groups[i].group_id.len == 7 && !memcmp(r.groups[i].group_id.ptr, "gsecret", 7);
            saw_open |=
                r.groups[i].group_id.len == 5 && !memcmp(r.groups[i].group_id.ptr, "gopen", 5);
        }
        assert_true(saw_open);
        assert_int_equal(saw_secret, pass == 0);
        done(&c);
    }
}

/* Issue 19: the broker's own topics take no client writes (a record produced into
 * __consumer_offsets would come back as a commit after a restart), no DeleteRecords and no
 * DeleteTopics, whoever asks (no authorizer here). */
static void test_internal_topics_refused(void **state)
{
    (void)state;
    kb_auth_set_authorizer(broker, NULL, NULL);
    assert_non_null(ks_topic_find(kb_broker_store(broker), "__consumer_offsets", 18));
    assert_int_equal(produce_to("__consumer_offsets"), KP_ERR_INVALID_TOPIC_EXCEPTION);
    assert_int_equal(produce_to("_schemas"), KP_ERR_INVALID_TOPIC_EXCEPTION); /* not created */
    assert_null(ks_topic_find(kb_broker_store(broker), "_schemas", 8));

    kp_delete_records_req_delete_records_partition_t p;
    kp_delete_records_req_delete_records_partition_init(&p);
    p.offset = 0;
    kp_delete_records_req_delete_records_topic_t t;
    kp_delete_records_req_delete_records_topic_init(&t);
    t.name = kp_str("__consumer_offsets");
    t.partitions = &p;
    t.partitions_count = 1;
    kp_delete_records_req_t m;
    kp_delete_records_req_init(&m);
    m.topics = &t;
    m.topics_count = 1;
    call_t c;
    assert_int_equal(
        call(&c, kb_handle_delete_records, KP_API_DELETE_RECORDS, 2, &m, delete_records_enc),
        KB_DONE);
    kp_delete_records_resp_t r;
    decode(&c, 2, &r, delete_records_dec);
    assert_int_equal(r.topics[0].partitions[0].error_code, KP_ERR_INVALID_TOPIC_EXCEPTION);
    done(&c);

    kp_str_t del = kp_str("__consumer_offsets");
    kp_delete_topics_req_t d;
    kp_delete_topics_req_init(&d);
    d.topic_names = &del;
    d.topic_names_count = 1;
    assert_int_equal(
        call(&c, kb_handle_delete_topics, KP_API_DELETE_TOPICS, 4, &d, delete_topics_enc), KB_DONE);
    kp_delete_topics_resp_t dr;
    decode(&c, 4, &dr, delete_topics_dec);
    assert_int_equal(dr.responses[0].error_code, KP_ERR_INVALID_REQUEST);
    done(&c);
    assert_non_null(ks_topic_find(kb_broker_store(broker), "__consumer_offsets", 18));
    kb_auth_set_authorizer(broker, authz, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Admin: CreatePartitions, AlterConfigs, IncrementalAlterConfigs                               */

#define CFG_BROKER 4 /* DescribeConfigs/AlterConfigs resource type BROKER */

static int16_t authz_grow(const char *topic)
{
    kp_create_partitions_req_create_partitions_topic_t t;
    kp_create_partitions_req_create_partitions_topic_init(&t);
    t.name = kp_str(topic);
    t.count = 3;
    t.assignments_count = -1;
    kp_create_partitions_req_t m;
    kp_create_partitions_req_init(&m);
    m.topics = &t;
    m.topics_count = 1;
    m.validate_only = true;
    call_t c;
    assert_int_equal(call(&c, kb_handle_create_partitions, KP_API_CREATE_PARTITIONS, 3, &m,
                          create_partitions_enc),
                     KB_DONE);
    kp_create_partitions_resp_t r;
    decode(&c, 3, &r, create_partitions_dec);
    int16_t err = r.results[0].error_code;
    done(&c);
    return err;
}

static int16_t authz_alter(bool incremental, int8_t type, const char *name, const char *key)
{
    call_t c;
    int16_t err;
    if (incremental) {
        kp_incremental_alter_configs_req_alterable_config_t cf;
        kp_incremental_alter_configs_req_alterable_config_init(&cf);
        cf.name = kp_str(key);
        cf.value = kp_str("60000");
        kp_incremental_alter_configs_req_alter_configs_resource_t res;
        kp_incremental_alter_configs_req_alter_configs_resource_init(&res);
        res.resource_type = type;
        res.resource_name = kp_str(name);
        res.configs = &cf;
        res.configs_count = 1;
        kp_incremental_alter_configs_req_t m;
        kp_incremental_alter_configs_req_init(&m);
        m.resources = &res;
        m.resources_count = 1;
        m.validate_only = true;
        assert_int_equal(call(&c, kb_handle_incremental_alter_configs,
                              KP_API_INCREMENTAL_ALTER_CONFIGS, 1, &m,
                              incremental_alter_configs_enc),
                         KB_DONE);
        kp_incremental_alter_configs_resp_t r;
        decode(&c, 1, &r, incremental_alter_configs_dec);
        err = r.responses[0].error_code;
    } else {
        kp_alter_configs_req_alterable_config_t cf;
        kp_alter_configs_req_alterable_config_init(&cf);
        cf.name = kp_str(key);
        cf.value = kp_str("60000");
        kp_alter_configs_req_alter_configs_resource_t res;
        kp_alter_configs_req_alter_configs_resource_init(&res);
        res.resource_type = type;
        res.resource_name = kp_str(name);
        res.configs = &cf;
        res.configs_count = 1;
        kp_alter_configs_req_t m;
        kp_alter_configs_req_init(&m);
        m.resources = &res;
        m.resources_count = 1;
        m.validate_only = true;
        assert_int_equal(
            call(&c, kb_handle_alter_configs, KP_API_ALTER_CONFIGS, 2, &m, alter_configs_enc),
            KB_DONE);
        kp_alter_configs_resp_t r;
        decode(&c, 2, &r, alter_configs_dec);
        err = r.responses[0].error_code;
    }
    done(&c);
    return err;
}

static void test_authz_admin_alter(void **state)
{
    (void)state;
    assert_int_equal(authz_grow("secret"), TAF); /* denied before existence */
    assert_int_equal(authz_grow("open"), KP_ERR_NONE);
    deny(KB_OP_ALTER, KB_RES_TOPIC, "open");
    assert_int_equal(authz_grow("open"), TAF);
    for (int inc = 0; inc < 2; inc++) {
        assert_int_equal(authz_alter(inc, KB_RES_TOPIC, "secret", "retention.ms"), TAF);
        assert_int_equal(authz_alter(inc, KB_RES_TOPIC, "open", "retention.ms"), KP_ERR_NONE);
        assert_int_equal(authz_alter(inc, CFG_BROKER, "1", "log.retention.ms"), KP_ERR_NONE);
    }
    deny(KB_OP_ALTER_CONFIGS, KB_RES_TOPIC, "open");
    deny(KB_OP_ALTER_CONFIGS, KB_RES_CLUSTER, NULL);
    for (int inc = 0; inc < 2; inc++) {
        assert_int_equal(authz_alter(inc, KB_RES_TOPIC, "open", "retention.ms"), TAF);
        assert_int_equal(authz_alter(inc, CFG_BROKER, "1", "log.retention.ms"), CAF);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_authz_produce_write_topic, reset),
        cmocka_unit_test_setup(test_authz_fetch_read_topic, reset),
        cmocka_unit_test_setup(test_authz_list_offsets_and_epochs_describe_topic, reset),
        cmocka_unit_test_setup(test_authz_delete_records_delete_topic, reset),
        cmocka_unit_test_setup(test_authz_metadata_hides_and_refuses, reset),
        cmocka_unit_test_setup(test_authz_create_and_delete_topics, reset),
        cmocka_unit_test_setup(test_authz_describe_configs_and_cluster, reset),
        cmocka_unit_test_setup(test_authz_init_producer_id, reset),
        cmocka_unit_test_setup(test_authz_group_membership, reset),
        cmocka_unit_test_setup(test_authz_offsets, reset),
        cmocka_unit_test_setup(test_authz_describe_list_delete_groups, reset),
        cmocka_unit_test_setup(test_authz_list_groups_filters, reset),
        cmocka_unit_test_setup(test_internal_topics_refused, reset),
        cmocka_unit_test_setup(test_authz_admin_alter, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

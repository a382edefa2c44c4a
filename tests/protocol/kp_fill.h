/*
 * Message fillers shared by the codec tests and tests/protocol/fixtures/dump_responses.c: each
 * inits one API's request or response and sets a handful of fields (nested arrays, tagged
 * fields, nulls) to non-default values. Static data; single-threaded test use only.
 */
#ifndef KP_FILL_H
#define KP_FILL_H

#include "protocol/gen/kp_msgs.h"
#include "protocol/kp_errors.h"
#include "protocol/kp_header.h"

static const kp_uuid_t uuid_a = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
static const uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
static const kp_bytes_t blob_bytes = {blob, sizeof blob};
static kp_str_t topic_names[] = {{"orders", 6}, {"events", 6}};
static int32_t ints[] = {0, 7, 42};
static int64_t longs[] = {-1, 1000};

/* ------------------------------------------------------------------------------------------ */
/* Fillers: init, then set a handful of fields (including nested arrays and tagged fields).    */

static void fill_produce_req(void *p)
{
    kp_produce_req_t *m = p;
    static kp_produce_req_partition_produce_data_t parts[2];
    static kp_produce_req_topic_produce_data_t topics[1];
    kp_produce_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_produce_req_partition_produce_data_init(&parts[i]);
        parts[i].index = i;
        parts[i].records = blob_bytes;
    }
    kp_produce_req_topic_produce_data_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partition_data = parts;
    topics[0].partition_data_count = 2;
    m->transactional_id = kp_str("txn-1");
    m->acks = -1;
    m->timeout_ms = 30000;
    m->topic_data = topics;
    m->topic_data_count = 1;
}

static void fill_produce_resp(void *p)
{
    kp_produce_resp_t *m = p;
    static kp_produce_resp_batch_index_and_error_message_t errs[1];
    static kp_produce_resp_partition_produce_response_t parts[1];
    static kp_produce_resp_topic_produce_response_t topics[1];
    static kp_produce_resp_node_endpoint_t nodes[1];
    kp_produce_resp_init(m);
    kp_produce_resp_batch_index_and_error_message_init(&errs[0]);
    errs[0].batch_index = 3;
    errs[0].batch_index_error_message = kp_str("bad record");
    kp_produce_resp_partition_produce_response_init(&parts[0]);
    parts[0].index = 1;
    parts[0].error_code = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    parts[0].base_offset = 1234567890123LL;
    parts[0].log_start_offset = 5;
    parts[0].record_errors = errs;
    parts[0].record_errors_count = 1;
    parts[0].error_message = kp_str("moved");
    parts[0].current_leader_present = true;
    parts[0].current_leader.leader_id = 1;
    parts[0].current_leader.leader_epoch = 9;
    kp_produce_resp_topic_produce_response_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partition_responses = parts;
    topics[0].partition_responses_count = 1;
    kp_produce_resp_node_endpoint_init(&nodes[0]);
    nodes[0].node_id = 1;
    nodes[0].host = kp_str("localhost");
    nodes[0].port = 9092;
    m->responses = topics;
    m->responses_count = 1;
    m->throttle_time_ms = 17;
    m->node_endpoints = nodes;
    m->node_endpoints_count = 1;
}

static void fill_fetch_req(void *p)
{
    kp_fetch_req_t *m = p;
    static kp_fetch_req_fetch_partition_t parts[2];
    static kp_fetch_req_fetch_topic_t topics[1];
    static kp_fetch_req_forgotten_topic_t forgotten[1];
    kp_fetch_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_fetch_req_fetch_partition_init(&parts[i]);
        parts[i].partition = i;
        parts[i].fetch_offset = 100 + i;
        parts[i].partition_max_bytes = 1 << 20;
        parts[i].current_leader_epoch = 0;
    }
    parts[1].replica_directory_id = uuid_a;
    kp_fetch_req_fetch_topic_init(&topics[0]);
    topics[0].topic = kp_str("orders");
    topics[0].topic_id = uuid_a;
    topics[0].partitions = parts;
    topics[0].partitions_count = 2;
    kp_fetch_req_forgotten_topic_init(&forgotten[0]);
    forgotten[0].topic = kp_str("old");
    forgotten[0].partitions = ints;
    forgotten[0].partitions_count = 3;
    m->cluster_id = kp_str("cluster-x");
    m->replica_state_present = true;
    m->replica_state.replica_id = 3;
    m->max_wait_ms = 500;
    m->min_bytes = 1;
    m->isolation_level = 1;
    m->topics = topics;
    m->topics_count = 1;
    m->forgotten_topics_data = forgotten;
    m->forgotten_topics_data_count = 1;
    m->rack_id = kp_str("rack-a");
}

static void fill_fetch_resp(void *p)
{
    kp_fetch_resp_t *m = p;
    static kp_fetch_resp_aborted_transaction_t aborted[1];
    static kp_fetch_resp_partition_data_t parts[2];
    static kp_fetch_resp_fetchable_topic_response_t topics[1];
    kp_fetch_resp_init(m);
    kp_fetch_resp_aborted_transaction_init(&aborted[0]);
    aborted[0].producer_id = 77;
    aborted[0].first_offset = 5;
    for (int i = 0; i < 2; i++) {
        kp_fetch_resp_partition_data_init(&parts[i]);
        parts[i].partition_index = i;
        parts[i].high_watermark = 1000;
        parts[i].last_stable_offset = 990;
        parts[i].records = blob_bytes;
    }
    parts[0].aborted_transactions = aborted;
    parts[0].aborted_transactions_count = 1;
    parts[1].aborted_transactions_count = -1; /* null */
    parts[1].records = (kp_bytes_t){NULL, -1};
    parts[1].diverging_epoch_present = true;
    parts[1].diverging_epoch.epoch = 2;
    parts[1].diverging_epoch.end_offset = 50;
    parts[1].snapshot_id_present = true;
    parts[1].snapshot_id.epoch = 1;
    kp_fetch_resp_fetchable_topic_response_init(&topics[0]);
    topics[0].topic = kp_str("orders");
    topics[0].topic_id = uuid_a;
    topics[0].partitions = parts;
    topics[0].partitions_count = 2;
    m->throttle_time_ms = 3;
    m->session_id = 0;
    m->responses = topics;
    m->responses_count = 1;
}

static void fill_list_offsets_req(void *p)
{
    kp_list_offsets_req_t *m = p;
    static kp_list_offsets_req_list_offsets_partition_t parts[1];
    static kp_list_offsets_req_list_offsets_topic_t topics[1];
    kp_list_offsets_req_init(m);
    kp_list_offsets_req_list_offsets_partition_init(&parts[0]);
    parts[0].partition_index = 2;
    parts[0].timestamp = -2;
    parts[0].max_num_offsets = 1;
    kp_list_offsets_req_list_offsets_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->isolation_level = 1;
    m->topics = topics;
    m->topics_count = 1;
    m->timeout_ms = 1500;
}

static void fill_list_offsets_resp(void *p)
{
    kp_list_offsets_resp_t *m = p;
    static kp_list_offsets_resp_list_offsets_partition_response_t parts[1];
    static kp_list_offsets_resp_list_offsets_topic_response_t topics[1];
    kp_list_offsets_resp_init(m);
    kp_list_offsets_resp_list_offsets_partition_response_init(&parts[0]);
    parts[0].partition_index = 2;
    parts[0].old_style_offsets = longs;
    parts[0].old_style_offsets_count = 2;
    parts[0].timestamp = 1700000000000LL;
    parts[0].offset = 99;
    parts[0].leader_epoch = 0;
    kp_list_offsets_resp_list_offsets_topic_response_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_metadata_req(void *p)
{
    kp_metadata_req_t *m = p;
    static kp_metadata_req_metadata_request_topic_t topics[2];
    kp_metadata_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_metadata_req_metadata_request_topic_init(&topics[i]);
        topics[i].name = topic_names[i];
    }
    topics[1].topic_id = uuid_a;
    m->topics = topics;
    m->topics_count = 2;
    m->allow_auto_topic_creation = false;
    m->include_topic_authorized_operations = true;
}

static void fill_metadata_resp(void *p)
{
    kp_metadata_resp_t *m = p;
    static kp_metadata_resp_metadata_response_broker_t brokers[1];
    static kp_metadata_resp_metadata_response_partition_t parts[1];
    static kp_metadata_resp_metadata_response_topic_t topics[1];
    kp_metadata_resp_init(m);
    kp_metadata_resp_metadata_response_broker_init(&brokers[0]);
    brokers[0].node_id = 1;
    brokers[0].host = kp_str("depot.local");
    brokers[0].port = 9092;
    brokers[0].rack = kp_str("r1");
    kp_metadata_resp_metadata_response_partition_init(&parts[0]);
    parts[0].partition_index = 0;
    parts[0].leader_id = 1;
    parts[0].leader_epoch = 0;
    parts[0].replica_nodes = ints + 1;
    parts[0].replica_nodes_count = 1;
    parts[0].isr_nodes = ints + 1;
    parts[0].isr_nodes_count = 1;
    kp_metadata_resp_metadata_response_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].topic_id = uuid_a;
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 0;
    m->brokers = brokers;
    m->brokers_count = 1;
    m->cluster_id = kp_str("depot-cluster");
    m->controller_id = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_offset_commit_req(void *p)
{
    kp_offset_commit_req_t *m = p;
    static kp_offset_commit_req_offset_commit_request_partition_t parts[1];
    static kp_offset_commit_req_offset_commit_request_topic_t topics[1];
    kp_offset_commit_req_init(m);
    kp_offset_commit_req_offset_commit_request_partition_init(&parts[0]);
    parts[0].partition_index = 1;
    parts[0].committed_offset = 400;
    parts[0].committed_leader_epoch = 0;
    parts[0].committed_metadata = kp_str("meta");
    kp_offset_commit_req_offset_commit_request_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->group_id = kp_str("g1");
    m->generation_id_or_member_epoch = 4;
    m->member_id = kp_str("member-1");
    m->group_instance_id = kp_str("static-1");
    m->retention_time_ms = 60000;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_offset_commit_resp(void *p)
{
    kp_offset_commit_resp_t *m = p;
    static kp_offset_commit_resp_offset_commit_response_partition_t parts[1];
    static kp_offset_commit_resp_offset_commit_response_topic_t topics[1];
    kp_offset_commit_resp_init(m);
    kp_offset_commit_resp_offset_commit_response_partition_init(&parts[0]);
    parts[0].partition_index = 1;
    parts[0].error_code = KP_ERR_ILLEGAL_GENERATION;
    kp_offset_commit_resp_offset_commit_response_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 2;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_offset_fetch_req(void *p)
{
    kp_offset_fetch_req_t *m = p;
    static kp_offset_fetch_req_offset_fetch_request_topic_t topics[1];
    static kp_offset_fetch_req_offset_fetch_request_topics_t gtopics[1];
    static kp_offset_fetch_req_offset_fetch_request_group_t groups[1];
    kp_offset_fetch_req_init(m);
    kp_offset_fetch_req_offset_fetch_request_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partition_indexes = ints;
    topics[0].partition_indexes_count = 3;
    kp_offset_fetch_req_offset_fetch_request_topics_init(&gtopics[0]);
    gtopics[0].name = kp_str("orders");
    gtopics[0].partition_indexes = ints;
    gtopics[0].partition_indexes_count = 2;
    kp_offset_fetch_req_offset_fetch_request_group_init(&groups[0]);
    groups[0].group_id = kp_str("g1");
    groups[0].member_epoch = 3;
    groups[0].topics = gtopics;
    groups[0].topics_count = 1;
    m->group_id = kp_str("g1");
    m->topics = topics;
    m->topics_count = 1;
    m->groups = groups;
    m->groups_count = 1;
    m->require_stable = true;
}

static void fill_offset_fetch_resp(void *p)
{
    kp_offset_fetch_resp_t *m = p;
    static kp_offset_fetch_resp_offset_fetch_response_partition_t parts[1];
    static kp_offset_fetch_resp_offset_fetch_response_topic_t topics[1];
    static kp_offset_fetch_resp_offset_fetch_response_partitions_t gparts[1];
    static kp_offset_fetch_resp_offset_fetch_response_topics_t gtopics[1];
    static kp_offset_fetch_resp_offset_fetch_response_group_t groups[1];
    kp_offset_fetch_resp_init(m);
    kp_offset_fetch_resp_offset_fetch_response_partition_init(&parts[0]);
    parts[0].partition_index = 0;
    parts[0].committed_offset = 400;
    parts[0].metadata = kp_str("meta");
    kp_offset_fetch_resp_offset_fetch_response_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    kp_offset_fetch_resp_offset_fetch_response_partitions_init(&gparts[0]);
    gparts[0].partition_index = 0;
    gparts[0].committed_offset = 401;
    gparts[0].committed_leader_epoch = 0;
    kp_offset_fetch_resp_offset_fetch_response_topics_init(&gtopics[0]);
    gtopics[0].name = kp_str("orders");
    gtopics[0].partitions = gparts;
    gtopics[0].partitions_count = 1;
    kp_offset_fetch_resp_offset_fetch_response_group_init(&groups[0]);
    groups[0].group_id = kp_str("g1");
    groups[0].topics = gtopics;
    groups[0].topics_count = 1;
    m->throttle_time_ms = 5;
    m->topics = topics;
    m->topics_count = 1;
    m->error_code = KP_ERR_NONE;
    m->groups = groups;
    m->groups_count = 1;
}

static void fill_find_coordinator_req(void *p)
{
    kp_find_coordinator_req_t *m = p;
    kp_find_coordinator_req_init(m);
    m->key = kp_str("g1");
    m->key_type = 0;
    m->coordinator_keys = topic_names;
    m->coordinator_keys_count = 2;
}

static void fill_find_coordinator_resp(void *p)
{
    kp_find_coordinator_resp_t *m = p;
    static kp_find_coordinator_resp_coordinator_t coords[1];
    kp_find_coordinator_resp_init(m);
    kp_find_coordinator_resp_coordinator_init(&coords[0]);
    coords[0].key = kp_str("g1");
    coords[0].node_id = 1;
    coords[0].host = kp_str("localhost");
    coords[0].port = 9092;
    m->throttle_time_ms = 1;
    m->error_message = kp_str("fine");
    m->node_id = 1;
    m->host = kp_str("localhost");
    m->port = 9092;
    m->coordinators = coords;
    m->coordinators_count = 1;
}

static void fill_join_group_req(void *p)
{
    kp_join_group_req_t *m = p;
    static kp_join_group_req_join_group_request_protocol_t protos[2];
    kp_join_group_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_join_group_req_join_group_request_protocol_init(&protos[i]);
        protos[i].name = i ? kp_str("range") : kp_str("roundrobin");
        protos[i].metadata = blob_bytes;
    }
    m->group_id = kp_str("g1");
    m->session_timeout_ms = 10000;
    m->rebalance_timeout_ms = 30000;
    m->member_id = kp_str("");
    m->group_instance_id = kp_str("static-1");
    m->protocol_type = kp_str("consumer");
    m->protocols = protos;
    m->protocols_count = 2;
    m->reason = kp_str("startup");
}

static void fill_join_group_resp(void *p)
{
    kp_join_group_resp_t *m = p;
    static kp_join_group_resp_join_group_response_member_t members[1];
    kp_join_group_resp_init(m);
    kp_join_group_resp_join_group_response_member_init(&members[0]);
    members[0].member_id = kp_str("member-1");
    members[0].metadata = blob_bytes;
    m->throttle_time_ms = 0;
    m->generation_id = 3;
    m->protocol_type = kp_str("consumer");
    m->protocol_name = kp_str("range");
    m->leader = kp_str("member-1");
    m->skip_assignment = false;
    m->member_id = kp_str("member-1");
    m->members = members;
    m->members_count = 1;
}

static void fill_heartbeat_req(void *p)
{
    kp_heartbeat_req_t *m = p;
    kp_heartbeat_req_init(m);
    m->group_id = kp_str("g1");
    m->generation_id = 3;
    m->member_id = kp_str("member-1");
    m->group_instance_id = kp_str("static-1");
}

static void fill_heartbeat_resp(void *p)
{
    kp_heartbeat_resp_t *m = p;
    kp_heartbeat_resp_init(m);
    m->throttle_time_ms = 9;
    m->error_code = KP_ERR_REBALANCE_IN_PROGRESS;
}

static void fill_leave_group_req(void *p)
{
    kp_leave_group_req_t *m = p;
    static kp_leave_group_req_member_identity_t members[1];
    kp_leave_group_req_init(m);
    kp_leave_group_req_member_identity_init(&members[0]);
    members[0].member_id = kp_str("member-1");
    members[0].reason = kp_str("bye");
    m->group_id = kp_str("g1");
    m->member_id = kp_str("member-1");
    m->members = members;
    m->members_count = 1;
}

static void fill_leave_group_resp(void *p)
{
    kp_leave_group_resp_t *m = p;
    static kp_leave_group_resp_member_response_t members[1];
    kp_leave_group_resp_init(m);
    kp_leave_group_resp_member_response_init(&members[0]);
    members[0].member_id = kp_str("member-1");
    members[0].error_code = KP_ERR_UNKNOWN_MEMBER_ID;
    m->throttle_time_ms = 1;
    m->members = members;
    m->members_count = 1;
}

static void fill_sync_group_req(void *p)
{
    kp_sync_group_req_t *m = p;
    static kp_sync_group_req_sync_group_request_assignment_t assigns[1];
    kp_sync_group_req_init(m);
    kp_sync_group_req_sync_group_request_assignment_init(&assigns[0]);
    assigns[0].member_id = kp_str("member-1");
    assigns[0].assignment = blob_bytes;
    m->group_id = kp_str("g1");
    m->generation_id = 3;
    m->member_id = kp_str("member-1");
    m->protocol_type = kp_str("consumer");
    m->protocol_name = kp_str("range");
    m->assignments = assigns;
    m->assignments_count = 1;
}

static void fill_sync_group_resp(void *p)
{
    kp_sync_group_resp_t *m = p;
    kp_sync_group_resp_init(m);
    m->throttle_time_ms = 1;
    m->protocol_type = kp_str("consumer");
    m->protocol_name = kp_str("range");
    m->assignment = blob_bytes;
}

static void fill_describe_groups_req(void *p)
{
    kp_describe_groups_req_t *m = p;
    kp_describe_groups_req_init(m);
    m->groups = topic_names;
    m->groups_count = 2;
    m->include_authorized_operations = true;
}

static void fill_describe_groups_resp(void *p)
{
    kp_describe_groups_resp_t *m = p;
    static kp_describe_groups_resp_described_group_member_t members[1];
    static kp_describe_groups_resp_described_group_t groups[1];
    kp_describe_groups_resp_init(m);
    kp_describe_groups_resp_described_group_member_init(&members[0]);
    members[0].member_id = kp_str("member-1");
    members[0].client_id = kp_str("rdkafka");
    members[0].client_host = kp_str("/127.0.0.1");
    members[0].member_metadata = blob_bytes;
    members[0].member_assignment = blob_bytes;
    kp_describe_groups_resp_described_group_init(&groups[0]);
    groups[0].group_id = kp_str("g1");
    groups[0].group_state = kp_str("Stable");
    groups[0].protocol_type = kp_str("consumer");
    groups[0].protocol_data = kp_str("range");
    groups[0].members = members;
    groups[0].members_count = 1;
    groups[0].authorized_operations = 0x7f;
    m->throttle_time_ms = 1;
    m->groups = groups;
    m->groups_count = 1;
}

static void fill_list_groups_req(void *p)
{
    kp_list_groups_req_t *m = p;
    kp_list_groups_req_init(m);
    m->states_filter = topic_names;
    m->states_filter_count = 1;
    m->types_filter = topic_names + 1;
    m->types_filter_count = 1;
}

static void fill_list_groups_resp(void *p)
{
    kp_list_groups_resp_t *m = p;
    static kp_list_groups_resp_listed_group_t groups[1];
    kp_list_groups_resp_init(m);
    kp_list_groups_resp_listed_group_init(&groups[0]);
    groups[0].group_id = kp_str("g1");
    groups[0].protocol_type = kp_str("consumer");
    groups[0].group_state = kp_str("Empty");
    groups[0].group_type = kp_str("classic");
    m->throttle_time_ms = 1;
    m->groups = groups;
    m->groups_count = 1;
}

static void fill_sasl_handshake_req(void *p)
{
    kp_sasl_handshake_req_t *m = p;
    kp_sasl_handshake_req_init(m);
    m->mechanism = kp_str("PLAIN");
}

static void fill_sasl_handshake_resp(void *p)
{
    kp_sasl_handshake_resp_t *m = p;
    kp_sasl_handshake_resp_init(m);
    m->error_code = KP_ERR_UNSUPPORTED_SASL_MECHANISM;
    m->mechanisms = topic_names;
    m->mechanisms_count = 2;
}

static void fill_api_versions_req(void *p)
{
    kp_api_versions_req_t *m = p;
    kp_api_versions_req_init(m);
    m->client_software_name = kp_str("depot-test");
    m->client_software_version = kp_str("1.0");
}

static void fill_api_versions_resp(void *p)
{
    kp_api_versions_resp_t *m = p;
    static kp_api_versions_resp_api_version_t keys[2];
    static kp_api_versions_resp_finalized_feature_key_t feats[1];
    kp_api_versions_resp_init(m);
    for (int i = 0; i < 2; i++) {
        kp_api_versions_resp_api_version_init(&keys[i]);
        keys[i].api_key = (int16_t)i;
        keys[i].max_version = (int16_t)(10 + i);
    }
    kp_api_versions_resp_finalized_feature_key_init(&feats[0]);
    feats[0].name = kp_str("metadata.version");
    feats[0].max_version_level = 20;
    feats[0].min_version_level = 1;
    m->api_keys = keys;
    m->api_keys_count = 2;
    m->throttle_time_ms = 0;
    m->finalized_features_epoch = 12;
    m->finalized_features = feats;
    m->finalized_features_count = 1;
    m->zk_migration_ready = true;
}

static void fill_create_topics_req(void *p)
{
    kp_create_topics_req_t *m = p;
    static kp_create_topics_req_creatable_replica_assignment_t assigns[1];
    static kp_create_topics_req_creatable_topic_config_t configs[1];
    static kp_create_topics_req_creatable_topic_t topics[1];
    kp_create_topics_req_init(m);
    kp_create_topics_req_creatable_replica_assignment_init(&assigns[0]);
    assigns[0].partition_index = 0;
    assigns[0].broker_ids = ints + 1;
    assigns[0].broker_ids_count = 1;
    kp_create_topics_req_creatable_topic_config_init(&configs[0]);
    configs[0].name = kp_str("retention.ms");
    configs[0].value = kp_str("1000");
    kp_create_topics_req_creatable_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].num_partitions = -1;
    topics[0].replication_factor = -1;
    topics[0].assignments = assigns;
    topics[0].assignments_count = 1;
    topics[0].configs = configs;
    topics[0].configs_count = 1;
    m->topics = topics;
    m->topics_count = 1;
    m->timeout_ms = 5000;
    m->validate_only = true;
}

static void fill_create_topics_resp(void *p)
{
    kp_create_topics_resp_t *m = p;
    static kp_create_topics_resp_creatable_topic_configs_t configs[1];
    static kp_create_topics_resp_creatable_topic_result_t topics[1];
    kp_create_topics_resp_init(m);
    kp_create_topics_resp_creatable_topic_configs_init(&configs[0]);
    configs[0].name = kp_str("cleanup.policy");
    configs[0].value = kp_str("delete");
    configs[0].config_source = 5;
    kp_create_topics_resp_creatable_topic_result_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].topic_id = uuid_a;
    topics[0].error_code = KP_ERR_TOPIC_ALREADY_EXISTS;
    topics[0].error_message = kp_str("exists");
    topics[0].topic_config_error_code = KP_ERR_INVALID_CONFIG;
    topics[0].num_partitions = 3;
    topics[0].replication_factor = 1;
    topics[0].configs = configs;
    topics[0].configs_count = 1;
    m->throttle_time_ms = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_delete_topics_req(void *p)
{
    kp_delete_topics_req_t *m = p;
    static kp_delete_topics_req_delete_topic_state_t topics[1];
    kp_delete_topics_req_init(m);
    kp_delete_topics_req_delete_topic_state_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].topic_id = uuid_a;
    m->topics = topics;
    m->topics_count = 1;
    m->topic_names = topic_names;
    m->topic_names_count = 2;
    m->timeout_ms = 3000;
}

static void fill_delete_topics_resp(void *p)
{
    kp_delete_topics_resp_t *m = p;
    static kp_delete_topics_resp_deletable_topic_result_t res[1];
    kp_delete_topics_resp_init(m);
    kp_delete_topics_resp_deletable_topic_result_init(&res[0]);
    res[0].name = kp_str("orders");
    res[0].topic_id = uuid_a;
    res[0].error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    res[0].error_message = kp_str("gone");
    m->throttle_time_ms = 1;
    m->responses = res;
    m->responses_count = 1;
}

static void fill_delete_records_req(void *p)
{
    kp_delete_records_req_t *m = p;
    static kp_delete_records_req_delete_records_partition_t parts[1];
    static kp_delete_records_req_delete_records_topic_t topics[1];
    kp_delete_records_req_init(m);
    kp_delete_records_req_delete_records_partition_init(&parts[0]);
    parts[0].partition_index = 0;
    parts[0].offset = 42;
    kp_delete_records_req_delete_records_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->topics = topics;
    m->topics_count = 1;
    m->timeout_ms = 1000;
}

static void fill_delete_records_resp(void *p)
{
    kp_delete_records_resp_t *m = p;
    static kp_delete_records_resp_delete_records_partition_result_t parts[1];
    static kp_delete_records_resp_delete_records_topic_result_t topics[1];
    kp_delete_records_resp_init(m);
    kp_delete_records_resp_delete_records_partition_result_init(&parts[0]);
    parts[0].partition_index = 0;
    parts[0].low_watermark = 42;
    kp_delete_records_resp_delete_records_topic_result_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_init_producer_id_req(void *p)
{
    kp_init_producer_id_req_t *m = p;
    kp_init_producer_id_req_init(m);
    m->transactional_id = kp_str("txn-1");
    m->transaction_timeout_ms = 60000;
    m->producer_id = 5;
    m->producer_epoch = 2;
}

static void fill_init_producer_id_resp(void *p)
{
    kp_init_producer_id_resp_t *m = p;
    kp_init_producer_id_resp_init(m);
    m->throttle_time_ms = 1;
    m->producer_id = 1000;
    m->producer_epoch = 0;
}

static void fill_offset_for_leader_epoch_req(void *p)
{
    kp_offset_for_leader_epoch_req_t *m = p;
    static kp_offset_for_leader_epoch_req_offset_for_leader_partition_t parts[1];
    static kp_offset_for_leader_epoch_req_offset_for_leader_topic_t topics[1];
    kp_offset_for_leader_epoch_req_init(m);
    kp_offset_for_leader_epoch_req_offset_for_leader_partition_init(&parts[0]);
    parts[0].partition = 1;
    parts[0].current_leader_epoch = 0;
    parts[0].leader_epoch = 0;
    kp_offset_for_leader_epoch_req_offset_for_leader_topic_init(&topics[0]);
    topics[0].topic = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->replica_id = -1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_offset_for_leader_epoch_resp(void *p)
{
    kp_offset_for_leader_epoch_resp_t *m = p;
    static kp_offset_for_leader_epoch_resp_epoch_end_offset_t parts[1];
    static kp_offset_for_leader_epoch_resp_offset_for_leader_topic_result_t topics[1];
    kp_offset_for_leader_epoch_resp_init(m);
    kp_offset_for_leader_epoch_resp_epoch_end_offset_init(&parts[0]);
    parts[0].partition = 1;
    parts[0].leader_epoch = 0;
    parts[0].end_offset = 77;
    kp_offset_for_leader_epoch_resp_offset_for_leader_topic_result_init(&topics[0]);
    topics[0].topic = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_describe_configs_req(void *p)
{
    kp_describe_configs_req_t *m = p;
    static kp_describe_configs_req_describe_configs_resource_t res[2];
    kp_describe_configs_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_describe_configs_req_describe_configs_resource_init(&res[i]);
        res[i].resource_type = 2;
        res[i].resource_name = topic_names[i];
    }
    res[0].configuration_keys = topic_names;
    res[0].configuration_keys_count = 2;
    res[1].configuration_keys_count = -1; /* null: all keys */
    m->resources = res;
    m->resources_count = 2;
    m->include_synonyms = true;
    m->include_documentation = true;
}

static void fill_describe_configs_resp(void *p)
{
    kp_describe_configs_resp_t *m = p;
    static kp_describe_configs_resp_describe_configs_synonym_t syns[1];
    static kp_describe_configs_resp_describe_configs_resource_result_t configs[1];
    static kp_describe_configs_resp_describe_configs_result_t results[1];
    kp_describe_configs_resp_init(m);
    kp_describe_configs_resp_describe_configs_synonym_init(&syns[0]);
    syns[0].name = kp_str("log.retention.ms");
    syns[0].value = kp_str("1000");
    syns[0].source = 5;
    kp_describe_configs_resp_describe_configs_resource_result_init(&configs[0]);
    configs[0].name = kp_str("retention.ms");
    configs[0].value = (kp_str_t){NULL, -1};
    configs[0].read_only = true;
    configs[0].config_source = 5;
    configs[0].is_sensitive = false;
    configs[0].synonyms = syns;
    configs[0].synonyms_count = 1;
    configs[0].config_type = 5;
    configs[0].documentation = kp_str("how long to keep data");
    kp_describe_configs_resp_describe_configs_result_init(&results[0]);
    results[0].resource_type = 2;
    results[0].resource_name = kp_str("orders");
    results[0].configs = configs;
    results[0].configs_count = 1;
    m->throttle_time_ms = 1;
    m->results = results;
    m->results_count = 1;
}

static void fill_sasl_authenticate_req(void *p)
{
    kp_sasl_authenticate_req_t *m = p;
    kp_sasl_authenticate_req_init(m);
    m->auth_bytes = blob_bytes;
}

static void fill_sasl_authenticate_resp(void *p)
{
    kp_sasl_authenticate_resp_t *m = p;
    kp_sasl_authenticate_resp_init(m);
    m->error_code = KP_ERR_SASL_AUTHENTICATION_FAILED;
    m->error_message = kp_str("nope");
    m->auth_bytes = blob_bytes;
    m->session_lifetime_ms = 3600000;
}

static void fill_delete_groups_req(void *p)
{
    kp_delete_groups_req_t *m = p;
    kp_delete_groups_req_init(m);
    m->groups_names = topic_names;
    m->groups_names_count = 2;
}

static void fill_delete_groups_resp(void *p)
{
    kp_delete_groups_resp_t *m = p;
    static kp_delete_groups_resp_deletable_group_result_t res[1];
    kp_delete_groups_resp_init(m);
    kp_delete_groups_resp_deletable_group_result_init(&res[0]);
    res[0].group_id = kp_str("g1");
    res[0].error_code = KP_ERR_NON_EMPTY_GROUP;
    m->throttle_time_ms = 1;
    m->results = res;
    m->results_count = 1;
}

static void fill_offset_delete_req(void *p)
{
    kp_offset_delete_req_t *m = p;
    static kp_offset_delete_req_offset_delete_request_partition_t parts[1];
    static kp_offset_delete_req_offset_delete_request_topic_t topics[1];
    kp_offset_delete_req_init(m);
    kp_offset_delete_req_offset_delete_request_partition_init(&parts[0]);
    parts[0].partition_index = 3;
    kp_offset_delete_req_offset_delete_request_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->group_id = kp_str("g1");
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_offset_delete_resp(void *p)
{
    kp_offset_delete_resp_t *m = p;
    static kp_offset_delete_resp_offset_delete_response_partition_t parts[1];
    static kp_offset_delete_resp_offset_delete_response_topic_t topics[1];
    kp_offset_delete_resp_init(m);
    kp_offset_delete_resp_offset_delete_response_partition_init(&parts[0]);
    parts[0].partition_index = 3;
    parts[0].error_code = KP_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
    kp_offset_delete_resp_offset_delete_response_topic_init(&topics[0]);
    topics[0].name = kp_str("orders");
    topics[0].partitions = parts;
    topics[0].partitions_count = 1;
    m->throttle_time_ms = 1;
    m->topics = topics;
    m->topics_count = 1;
}

static void fill_describe_cluster_req(void *p)
{
    kp_describe_cluster_req_t *m = p;
    kp_describe_cluster_req_init(m);
    m->include_cluster_authorized_operations = true;
    m->endpoint_type = 1;
}

static void fill_describe_cluster_resp(void *p)
{
    kp_describe_cluster_resp_t *m = p;
    static kp_describe_cluster_resp_describe_cluster_broker_t brokers[1];
    kp_describe_cluster_resp_init(m);
    kp_describe_cluster_resp_describe_cluster_broker_init(&brokers[0]);
    brokers[0].broker_id = 1;
    brokers[0].host = kp_str("localhost");
    brokers[0].port = 9092;
    m->throttle_time_ms = 1;
    m->cluster_id = kp_str("depot-cluster");
    m->controller_id = 1;
    m->brokers = brokers;
    m->brokers_count = 1;
    m->cluster_authorized_operations = 0x10;
}

static void fill_consumer_group_heartbeat_req(void *p)
{
    kp_consumer_group_heartbeat_req_t *m = p;
    static kp_consumer_group_heartbeat_req_topic_partitions_t tps[1];
    kp_consumer_group_heartbeat_req_init(m);
    kp_consumer_group_heartbeat_req_topic_partitions_init(&tps[0]);
    tps[0].topic_id = uuid_a;
    tps[0].partitions = ints;
    tps[0].partitions_count = 3;
    m->group_id = kp_str("g");
    m->member_id = kp_str("m-1");
    m->member_epoch = 3;
    m->instance_id = kp_str("line-2");
    m->rebalance_timeout_ms = 30000;
    m->subscribed_topic_names = topic_names;
    m->subscribed_topic_names_count = 2;
    m->subscribed_topic_regex = kp_str("ord.*");
    m->server_assignor = kp_str("uniform");
    m->topic_partitions = tps;
    m->topic_partitions_count = 1;
}

/* The assignment is a nullable struct (an int8 marker before it): present here; the codec
 * test also round-trips the init state, where it is null. */
static void fill_consumer_group_heartbeat_resp(void *p)
{
    kp_consumer_group_heartbeat_resp_t *m = p;
    static kp_consumer_group_heartbeat_resp_topic_partitions_t tps[2];
    kp_consumer_group_heartbeat_resp_init(m);
    for (int i = 0; i < 2; i++) {
        kp_consumer_group_heartbeat_resp_topic_partitions_init(&tps[i]);
        tps[i].topic_id = uuid_a;
        tps[i].partitions = ints;
        tps[i].partitions_count = i + 1;
    }
    m->member_id = kp_str("m-1");
    m->member_epoch = 4;
    m->heartbeat_interval_ms = 5000;
    m->assignment_present = true;
    m->assignment.topic_partitions = tps;
    m->assignment.topic_partitions_count = 2;
}

static void fill_consumer_group_describe_req(void *p)
{
    kp_consumer_group_describe_req_t *m = p;
    kp_consumer_group_describe_req_init(m);
    m->group_ids = topic_names;
    m->group_ids_count = 2;
    m->include_authorized_operations = true;
}

static void fill_consumer_group_describe_resp(void *p)
{
    kp_consumer_group_describe_resp_t *m = p;
    static kp_consumer_group_describe_resp_described_group_t g[1];
    static kp_consumer_group_describe_resp_member_t mem[1];
    static kp_consumer_group_describe_resp_topic_partitions_t tps[1];
    kp_consumer_group_describe_resp_init(m);
    kp_consumer_group_describe_resp_topic_partitions_init(&tps[0]);
    tps[0].topic_id = uuid_a;
    tps[0].topic_name = topic_names[0];
    tps[0].partitions = ints;
    tps[0].partitions_count = 2;
    kp_consumer_group_describe_resp_member_init(&mem[0]);
    mem[0].member_id = kp_str("m-1");
    mem[0].member_epoch = 7;
    mem[0].member_type = 1;
    mem[0].client_id = kp_str("c");
    mem[0].client_host = kp_str("/127.0.0.1");
    mem[0].subscribed_topic_names = topic_names;
    mem[0].subscribed_topic_names_count = 1;
    mem[0].assignment.topic_partitions = tps;
    mem[0].assignment.topic_partitions_count = 1;
    kp_consumer_group_describe_resp_described_group_init(&g[0]);
    g[0].group_id = kp_str("g");
    g[0].group_state = kp_str("Stable");
    g[0].group_epoch = 7;
    g[0].assignment_epoch = 7;
    g[0].assignor_name = kp_str("range");
    g[0].members = mem;
    g[0].members_count = 1;
    m->groups = g;
    m->groups_count = 1;
}

static void fill_alter_configs_req(void *p)
{
    kp_alter_configs_req_t *m = p;
    static kp_alter_configs_req_alterable_config_t cfgs[2];
    static kp_alter_configs_req_alter_configs_resource_t res[1];
    kp_alter_configs_req_init(m);
    kp_alter_configs_req_alterable_config_init(&cfgs[0]);
    cfgs[0].name = kp_str("retention.ms");
    cfgs[0].value = kp_str("1000");
    kp_alter_configs_req_alterable_config_init(&cfgs[1]);
    cfgs[1].name = kp_str("cleanup.policy");
    cfgs[1].value = (kp_str_t){NULL, -1};
    kp_alter_configs_req_alter_configs_resource_init(&res[0]);
    res[0].resource_type = 2;
    res[0].resource_name = topic_names[0];
    res[0].configs = cfgs;
    res[0].configs_count = 2;
    m->resources = res;
    m->resources_count = 1;
    m->validate_only = true;
}

static void fill_alter_configs_resp(void *p)
{
    kp_alter_configs_resp_t *m = p;
    static kp_alter_configs_resp_alter_configs_resource_response_t r[1];
    kp_alter_configs_resp_init(m);
    kp_alter_configs_resp_alter_configs_resource_response_init(&r[0]);
    r[0].error_code = KP_ERR_INVALID_CONFIG;
    r[0].error_message = kp_str("Unknown topic config name: x");
    r[0].resource_type = 2;
    r[0].resource_name = topic_names[1];
    m->throttle_time_ms = 5;
    m->responses = r;
    m->responses_count = 1;
}

static void fill_create_partitions_req(void *p)
{
    kp_create_partitions_req_t *m = p;
    static kp_create_partitions_req_create_partitions_assignment_t as[2];
    static kp_create_partitions_req_create_partitions_topic_t topics[1];
    kp_create_partitions_req_init(m);
    for (int i = 0; i < 2; i++) {
        kp_create_partitions_req_create_partitions_assignment_init(&as[i]);
        as[i].broker_ids = ints;
        as[i].broker_ids_count = 1;
    }
    kp_create_partitions_req_create_partitions_topic_init(&topics[0]);
    topics[0].name = topic_names[0];
    topics[0].count = 5;
    topics[0].assignments = as;
    topics[0].assignments_count = 2;
    m->topics = topics;
    m->topics_count = 1;
    m->timeout_ms = 30000;
    m->validate_only = true;
}

static void fill_create_partitions_resp(void *p)
{
    kp_create_partitions_resp_t *m = p;
    static kp_create_partitions_resp_create_partitions_topic_result_t r[1];
    kp_create_partitions_resp_init(m);
    kp_create_partitions_resp_create_partitions_topic_result_init(&r[0]);
    r[0].name = topic_names[1];
    r[0].error_code = KP_ERR_INVALID_PARTITIONS;
    r[0].error_message = kp_str("Topic currently has 3 partitions");
    m->results = r;
    m->results_count = 1;
}

static void fill_incremental_alter_configs_req(void *p)
{
    kp_incremental_alter_configs_req_t *m = p;
    static kp_incremental_alter_configs_req_alterable_config_t cfgs[2];
    static kp_incremental_alter_configs_req_alter_configs_resource_t res[1];
    kp_incremental_alter_configs_req_init(m);
    kp_incremental_alter_configs_req_alterable_config_init(&cfgs[0]);
    cfgs[0].name = kp_str("cleanup.policy");
    cfgs[0].config_operation = 2;
    cfgs[0].value = kp_str("compact");
    kp_incremental_alter_configs_req_alterable_config_init(&cfgs[1]);
    cfgs[1].name = kp_str("retention.ms");
    cfgs[1].config_operation = 1;
    cfgs[1].value = (kp_str_t){NULL, -1};
    kp_incremental_alter_configs_req_alter_configs_resource_init(&res[0]);
    res[0].resource_type = 4;
    res[0].resource_name = kp_str("1");
    res[0].configs = cfgs;
    res[0].configs_count = 2;
    m->resources = res;
    m->resources_count = 1;
}

static void fill_incremental_alter_configs_resp(void *p)
{
    kp_incremental_alter_configs_resp_t *m = p;
    static kp_incremental_alter_configs_resp_alter_configs_resource_response_t r[1];
    kp_incremental_alter_configs_resp_init(m);
    kp_incremental_alter_configs_resp_alter_configs_resource_response_init(&r[0]);
    r[0].error_code = KP_ERR_NONE;
    r[0].error_message = (kp_str_t){NULL, -1};
    r[0].resource_type = 2;
    r[0].resource_name = topic_names[0];
    m->responses = r;
    m->responses_count = 1;
}

static void fill_describe_acls_req(void *p)
{
    kp_describe_acls_req_t *m = p;
    kp_describe_acls_req_init(m);
    m->resource_type_filter = 2;
    m->resource_name_filter = kp_str("sensors.");
    m->pattern_type_filter = 4;
    m->principal_filter = kp_str("User:alice");
    m->operation = 4;
    m->permission_type = 3;
}

static void fill_describe_acls_resp(void *p)
{
    kp_describe_acls_resp_t *m = p;
    static kp_describe_acls_resp_describe_acls_resource_t r[1];
    static kp_describe_acls_resp_acl_description_t d[2];
    kp_describe_acls_resp_init(m);
    for (int i = 0; i < 2; i++) {
        kp_describe_acls_resp_acl_description_init(&d[i]);
        d[i].principal = kp_str(i ? "User:*" : "User:alice");
        d[i].host = kp_str("*");
        d[i].operation = (int8_t)(3 + i);
        d[i].permission_type = 3;
    }
    kp_describe_acls_resp_describe_acls_resource_init(&r[0]);
    r[0].resource_type = 2;
    r[0].resource_name = topic_names[0];
    r[0].acls = d;
    r[0].acls_count = 2;
    m->resources = r;
    m->resources_count = 1;
}

static void fill_create_acls_req(void *p)
{
    kp_create_acls_req_t *m = p;
    static kp_create_acls_req_acl_creation_t c[1];
    kp_create_acls_req_init(m);
    kp_create_acls_req_acl_creation_init(&c[0]);
    c[0].resource_type = 2;
    c[0].resource_name = kp_str("sensors.");
    c[0].resource_pattern_type = 4;
    c[0].principal = kp_str("User:alice");
    c[0].host = kp_str("*");
    c[0].operation = 4;
    c[0].permission_type = 3;
    m->creations = c;
    m->creations_count = 1;
}

static void fill_create_acls_resp(void *p)
{
    kp_create_acls_resp_t *m = p;
    static kp_create_acls_resp_acl_creation_result_t r[2];
    kp_create_acls_resp_init(m);
    for (int i = 0; i < 2; i++)
        kp_create_acls_resp_acl_creation_result_init(&r[i]);
    r[1].error_code = KP_ERR_INVALID_REQUEST;
    r[1].error_message = kp_str("bad");
    m->results = r;
    m->results_count = 2;
}

static void fill_delete_acls_req(void *p)
{
    kp_delete_acls_req_t *m = p;
    static kp_delete_acls_req_delete_acls_filter_t f[1];
    kp_delete_acls_req_init(m);
    kp_delete_acls_req_delete_acls_filter_init(&f[0]);
    f[0].resource_type_filter = 1;
    f[0].pattern_type_filter = 1;
    f[0].host_filter = kp_str("*");
    f[0].operation = 1;
    f[0].permission_type = 1;
    m->filters = f;
    m->filters_count = 1;
}

static void fill_delete_acls_resp(void *p)
{
    kp_delete_acls_resp_t *m = p;
    static kp_delete_acls_resp_delete_acls_filter_result_t r[1];
    static kp_delete_acls_resp_delete_acls_matching_acl_t a[1];
    kp_delete_acls_resp_init(m);
    kp_delete_acls_resp_delete_acls_matching_acl_init(&a[0]);
    a[0].resource_type = 2;
    a[0].resource_name = topic_names[1];
    a[0].principal = kp_str("User:bob");
    a[0].host = kp_str("*");
    a[0].operation = 3;
    a[0].permission_type = 2;
    kp_delete_acls_resp_delete_acls_filter_result_init(&r[0]);
    r[0].matching_acls = a;
    r[0].matching_acls_count = 1;
    m->filter_results = r;
    m->filter_results_count = 1;
}

static void fill_describe_user_scram_credentials_req(void *p)
{
    kp_describe_user_scram_credentials_req_t *m = p;
    static kp_describe_user_scram_credentials_req_user_name_t u[1];
    kp_describe_user_scram_credentials_req_init(m);
    kp_describe_user_scram_credentials_req_user_name_init(&u[0]);
    u[0].name = kp_str("alice");
    m->users = u;
    m->users_count = 1;
}

static void fill_describe_user_scram_credentials_resp(void *p)
{
    kp_describe_user_scram_credentials_resp_t *m = p;
    static kp_describe_user_scram_credentials_resp_describe_user_scram_credentials_result_t r[1];
    static kp_describe_user_scram_credentials_resp_credential_info_t c[2];
    kp_describe_user_scram_credentials_resp_init(m);
    for (int i = 0; i < 2; i++) {
        kp_describe_user_scram_credentials_resp_credential_info_init(&c[i]);
        c[i].mechanism = (int8_t)(i + 1);
        c[i].iterations = 4096 * (i + 1);
    }
    kp_describe_user_scram_credentials_resp_describe_user_scram_credentials_result_init(&r[0]);
    r[0].user = kp_str("alice");
    r[0].credential_infos = c;
    r[0].credential_infos_count = 2;
    m->results = r;
    m->results_count = 1;
}

static void fill_alter_user_scram_credentials_req(void *p)
{
    kp_alter_user_scram_credentials_req_t *m = p;
    static kp_alter_user_scram_credentials_req_scram_credential_deletion_t d[1];
    static kp_alter_user_scram_credentials_req_scram_credential_upsertion_t u[1];
    kp_alter_user_scram_credentials_req_init(m);
    kp_alter_user_scram_credentials_req_scram_credential_deletion_init(&d[0]);
    d[0].name = kp_str("bob");
    d[0].mechanism = 2;
    kp_alter_user_scram_credentials_req_scram_credential_upsertion_init(&u[0]);
    u[0].name = kp_str("alice");
    u[0].mechanism = 1;
    u[0].iterations = 8192;
    u[0].salt = blob_bytes;
    u[0].salted_password = blob_bytes;
    m->deletions = d;
    m->deletions_count = 1;
    m->upsertions = u;
    m->upsertions_count = 1;
}

static void fill_alter_user_scram_credentials_resp(void *p)
{
    kp_alter_user_scram_credentials_resp_t *m = p;
    static kp_alter_user_scram_credentials_resp_alter_user_scram_credentials_result_t r[1];
    kp_alter_user_scram_credentials_resp_init(m);
    kp_alter_user_scram_credentials_resp_alter_user_scram_credentials_result_init(&r[0]);
    r[0].user = kp_str("bob");
    r[0].error_code = KP_ERR_RESOURCE_NOT_FOUND;
    m->results = r;
    m->results_count = 1;
}

typedef void (*fill_fn)(void *m);

static const struct {
    int16_t key;
    fill_fn req, resp;
} fillers[] = {
    {KP_API_PRODUCE, fill_produce_req, fill_produce_resp},
    {KP_API_FETCH, fill_fetch_req, fill_fetch_resp},
    {KP_API_LIST_OFFSETS, fill_list_offsets_req, fill_list_offsets_resp},
    {KP_API_METADATA, fill_metadata_req, fill_metadata_resp},
    {KP_API_OFFSET_COMMIT, fill_offset_commit_req, fill_offset_commit_resp},
    {KP_API_OFFSET_FETCH, fill_offset_fetch_req, fill_offset_fetch_resp},
    {KP_API_FIND_COORDINATOR, fill_find_coordinator_req, fill_find_coordinator_resp},
    {KP_API_JOIN_GROUP, fill_join_group_req, fill_join_group_resp},
    {KP_API_HEARTBEAT, fill_heartbeat_req, fill_heartbeat_resp},
    {KP_API_LEAVE_GROUP, fill_leave_group_req, fill_leave_group_resp},
    {KP_API_SYNC_GROUP, fill_sync_group_req, fill_sync_group_resp},
    {KP_API_DESCRIBE_GROUPS, fill_describe_groups_req, fill_describe_groups_resp},
    {KP_API_LIST_GROUPS, fill_list_groups_req, fill_list_groups_resp},
    {KP_API_SASL_HANDSHAKE, fill_sasl_handshake_req, fill_sasl_handshake_resp},
    {KP_API_API_VERSIONS, fill_api_versions_req, fill_api_versions_resp},
    {KP_API_CREATE_TOPICS, fill_create_topics_req, fill_create_topics_resp},
    {KP_API_DELETE_TOPICS, fill_delete_topics_req, fill_delete_topics_resp},
    {KP_API_DELETE_RECORDS, fill_delete_records_req, fill_delete_records_resp},
    {KP_API_INIT_PRODUCER_ID, fill_init_producer_id_req, fill_init_producer_id_resp},
    {KP_API_OFFSET_FOR_LEADER_EPOCH, fill_offset_for_leader_epoch_req,
     fill_offset_for_leader_epoch_resp},
    {KP_API_DESCRIBE_ACLS, fill_describe_acls_req, fill_describe_acls_resp},
    {KP_API_CREATE_ACLS, fill_create_acls_req, fill_create_acls_resp},
    {KP_API_DELETE_ACLS, fill_delete_acls_req, fill_delete_acls_resp},
    {KP_API_DESCRIBE_CONFIGS, fill_describe_configs_req, fill_describe_configs_resp},
    {KP_API_ALTER_CONFIGS, fill_alter_configs_req, fill_alter_configs_resp},
    {KP_API_SASL_AUTHENTICATE, fill_sasl_authenticate_req, fill_sasl_authenticate_resp},
    {KP_API_CREATE_PARTITIONS, fill_create_partitions_req, fill_create_partitions_resp},
    {KP_API_DELETE_GROUPS, fill_delete_groups_req, fill_delete_groups_resp},
    {KP_API_INCREMENTAL_ALTER_CONFIGS, fill_incremental_alter_configs_req,
     fill_incremental_alter_configs_resp},
    {KP_API_OFFSET_DELETE, fill_offset_delete_req, fill_offset_delete_resp},
    {KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS, fill_describe_user_scram_credentials_req,
     fill_describe_user_scram_credentials_resp},
    {KP_API_ALTER_USER_SCRAM_CREDENTIALS, fill_alter_user_scram_credentials_req,
     fill_alter_user_scram_credentials_resp},
    {KP_API_DESCRIBE_CLUSTER, fill_describe_cluster_req, fill_describe_cluster_resp},
    {KP_API_CONSUMER_GROUP_HEARTBEAT, fill_consumer_group_heartbeat_req,
     fill_consumer_group_heartbeat_resp},
    {KP_API_CONSUMER_GROUP_DESCRIBE, fill_consumer_group_describe_req,
     fill_consumer_group_describe_resp},
};

#endif

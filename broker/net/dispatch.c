/*
 * API key → handler. An API without a row is not advertised (and a request for it closes the
 * connection, as Kafka does for an API it does not know). The version ranges come from the
 * codec's table (kp_api_all).
 */
#include "broker/auth/sasl.h"
#include "broker/core/server.h"

/* The dispatch table: an API is offered when the codec serves it and it has a row here. */
static const struct {
    int16_t key;
    kb_handler_fn fn;
} handlers[] = {
    {KP_API_PRODUCE, kb_handle_produce},
    {KP_API_FETCH, kb_handle_fetch},
    {KP_API_LIST_OFFSETS, kb_handle_list_offsets},
    {KP_API_METADATA, kb_handle_metadata},
    {KP_API_OFFSET_COMMIT, kb_handle_offset_commit},
    {KP_API_OFFSET_FETCH, kb_handle_offset_fetch},
    {KP_API_FIND_COORDINATOR, kb_handle_find_coordinator},
    {KP_API_JOIN_GROUP, kb_handle_join_group},
    {KP_API_HEARTBEAT, kb_handle_heartbeat},
    {KP_API_LEAVE_GROUP, kb_handle_leave_group},
    {KP_API_SYNC_GROUP, kb_handle_sync_group},
    {KP_API_DESCRIBE_GROUPS, kb_handle_describe_groups},
    {KP_API_LIST_GROUPS, kb_handle_list_groups},
    {KP_API_API_VERSIONS, kb_handle_api_versions},
    {KP_API_CREATE_TOPICS, kb_handle_create_topics},
    {KP_API_DELETE_TOPICS, kb_handle_delete_topics},
    {KP_API_DELETE_RECORDS, kb_handle_delete_records},
    {KP_API_INIT_PRODUCER_ID, kb_handle_init_producer_id},
    {KP_API_OFFSET_FOR_LEADER_EPOCH, kb_handle_offset_for_leader_epoch},
    {KP_API_DESCRIBE_CONFIGS, kb_handle_describe_configs},
    {KP_API_ALTER_CONFIGS, kb_handle_alter_configs},
    {KP_API_CREATE_PARTITIONS, kb_handle_create_partitions},
    {KP_API_INCREMENTAL_ALTER_CONFIGS, kb_handle_incremental_alter_configs},
    {KP_API_SASL_HANDSHAKE, kb_handle_sasl_handshake},
    {KP_API_SASL_AUTHENTICATE, kb_handle_sasl_authenticate},
    {KP_API_DESCRIBE_ACLS, kb_handle_describe_acls},
    {KP_API_CREATE_ACLS, kb_handle_create_acls},
    {KP_API_DELETE_ACLS, kb_handle_delete_acls},
    {KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS, kb_handle_describe_user_scram_credentials},
    {KP_API_ALTER_USER_SCRAM_CREDENTIALS, kb_handle_alter_user_scram_credentials},
    {KP_API_DELETE_GROUPS, kb_handle_delete_groups},
    {KP_API_OFFSET_DELETE, kb_handle_offset_delete},
    {KP_API_DESCRIBE_CLUSTER, kb_handle_describe_cluster},
    {KP_API_CONSUMER_GROUP_HEARTBEAT, kb_handle_consumer_group_heartbeat},
    {KP_API_CONSUMER_GROUP_DESCRIBE, kb_handle_consumer_group_describe},
};

static kb_handler_fn handler_for(int16_t key)
{
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (handlers[i].key == key) return handlers[i].fn;
    return NULL;
}

int kb_dispatch_apis(kb_api_range_t *out, int max)
{
    size_t n = 0;
    const kp_api_t *apis = kp_api_all(&n);
    int k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        if (!handler_for(apis[i].key)) continue;
        out[k].key = apis[i].key;
        out[k].min_version = apis[i].min_version;
        out[k].max_version = apis[i].max_version;
        k++;
    }
    return k;
}

int kb_dispatch(kb_req_t *req)
{
    if (req->raw_sasl) return kb_handle_sasl_authenticate(req);
    if (!kb_sasl_gate(req)) return K_ERR_CLOSED;
    int16_t key = req->hdr.api_key, version = req->hdr.api_version;
    const kp_api_t *api = kp_api_get(key);
    kb_handler_fn fn = handler_for(key);
    if (!api || !fn) {
        kb_log(KB_LOG_INFO, "%s sent unsupported api key %d", kb_conn_peer(req->conn), key);
        return K_ERR_UNSUPPORTED;
    }
    if (version < api->min_version || version > api->max_version) {
        /* KIP-511: ApiVersions answers any version (in the v0 layout) so the client learns
         * what we support; any other API at a version we never advertised is a client bug. */
        if (key == KP_API_API_VERSIONS) return kb_api_versions_unsupported(req);
        kb_log(KB_LOG_INFO, "%s sent %s v%d, outside v%d-%d", kb_conn_peer(req->conn), api->name,
               version, api->min_version, api->max_version);
        return K_ERR_UNSUPPORTED;
    }
    kb_log(KB_LOG_DEBUG, "%s %s v%d correlation %d", kb_conn_peer(req->conn), api->name, version,
           req->hdr.correlation_id);
    return fn(req);
}

/*
 * ApiVersions (18), v0-4: the APIs whose handler is linked, at the codec's version ranges.
 * An ApiVersions request at a version we do not serve gets the v0 layout with
 * UNSUPPORTED_VERSION and the full list (KIP-511), so the client can retry at a version we
 * do serve; the response header is v0 for every ApiVersions version.
 */
#include "broker/api/h_group.h"
#include "broker/core/server.h"
#include "protocol/gen/kp_api_versions.h"
#include "protocol/kp_errors.h"

#define MAX_APIS 64

static int answer(kb_req_t *req, int16_t version, int16_t error)
{
    kb_api_range_t ranges[MAX_APIS];
    int n = kb_dispatch_apis(ranges, MAX_APIS);

    kp_api_versions_resp_t resp;
    kp_api_versions_resp_init(&resp);
    resp.error_code = error;
    resp.api_keys = kp_arena_alloc(&req->arena, sizeof *resp.api_keys * (size_t)(n ? n : 1));
    if (!resp.api_keys) return K_ERR_NOMEM;
    /* Without "consumer" in group.coordinator.rebalance.protocols the KIP-848 APIs are not
     * advertised, so clients stay on (or fall back to) the classic protocol, as with Kafka. */
    if (!kb_group_consumer_enabled(kb_broker_config(req->broker))) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (ranges[i].key != KP_API_CONSUMER_GROUP_HEARTBEAT &&
                ranges[i].key != KP_API_CONSUMER_GROUP_DESCRIBE)
                ranges[k++] = ranges[i];
        n = k;
    }
    for (int i = 0; i < n; i++) {
        kp_api_versions_resp_api_version_t *av = &resp.api_keys[i];
        kp_api_versions_resp_api_version_init(av);
        av->api_key = ranges[i].key;
        av->min_version = ranges[i].min_version;
        av->max_version = ranges[i].max_version;
    }
    resp.api_keys_count = n;
    int rc = kp_api_versions_resp_encode(&req->resp, version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_api_versions(kb_req_t *req)
{
    kp_api_versions_req_t m;
    kp_api_versions_req_init(&m);
    if (kp_api_versions_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    if (m.client_software_name.len > 0)
        kb_log(KB_LOG_DEBUG, "%s is %.*s %.*s", kb_conn_peer(req->conn),
               (int)m.client_software_name.len, m.client_software_name.ptr,
               m.client_software_version.len > 0 ? (int)m.client_software_version.len : 0,
               m.client_software_version.ptr ? m.client_software_version.ptr : "");
    return answer(req, req->hdr.api_version, KP_ERR_NONE);
}

int kb_api_versions_unsupported(kb_req_t *req)
{
    /* The body may be in a layout we cannot parse: do not read it. */
    return answer(req, 0, KP_ERR_UNSUPPORTED_VERSION);
}

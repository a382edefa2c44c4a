/* DescribeCluster (60), v0-1: this node is the cluster, its only broker and its controller. */
#include "broker/auth/auth.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_describe_cluster.h"
#include "protocol/kp_errors.h"

int kb_handle_describe_cluster(kb_req_t *req)
{
    kp_describe_cluster_req_t m;
    kp_describe_cluster_req_init(&m);
    if (kp_describe_cluster_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    const kb_config_t *cfg = kb_broker_config(req->broker);

    kp_describe_cluster_resp_t resp;
    kp_describe_cluster_resp_init(&resp);
    kp_describe_cluster_resp_describe_cluster_broker_t broker;
    kp_describe_cluster_resp_describe_cluster_broker_init(&broker);
    resp.cluster_id = kp_str(ks_store_cluster_id(kb_broker_store(req->broker)));
    resp.endpoint_type = m.endpoint_type;
    if (m.endpoint_type != 1) { /* 2 = controllers: we have no separate controller endpoint */
        resp.error_code = KP_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp.error_message = kp_str("Only the brokers endpoint type (1) is supported.");
    } else {
        broker.broker_id = cfg->node_id;
        const kb_listener_t *l = kb_req_listener(req); /* the client's listener */
        broker.host = kp_str(l->advertised_host);
        broker.port = l->advertised_port;
        resp.brokers = &broker;
        resp.brokers_count = 1;
        resp.controller_id = cfg->node_id;
    }
    if (m.include_cluster_authorized_operations) /* 0 without DESCRIBE, as Kafka answers */
        resp.cluster_authorized_operations =
            kb_authorize_cluster(req, KB_OP_DESCRIBE)
                ? kb_authorized_operations(req, KB_RES_CLUSTER, KB_CLUSTER_NAME,
                                           sizeof KB_CLUSTER_NAME - 1)
                : 0;
    int rc = kp_describe_cluster_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * Topic administration: CreateTopics and DeleteTopics (sent to the controller named by
 * Metadata, as Kafka requires) and DescribeConfigs for a topic's overrides.
 */
#include "client/kc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kp_create_topics.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/gen/kp_describe_configs.h"
#include "protocol/kp_errors.h"

#define CONFIG_RESOURCE_TOPIC 2
#define CONFIG_SOURCE_TOPIC 1 /* DYNAMIC_TOPIC_CONFIG: set on the topic itself */

static int controller_conn(kc_client_t *c, kc_conn_t **conn)
{
    kc_metadata_t *md;
    int rc = kc_metadata_get(c, NULL, 0, false, &md);
    if (rc) return rc;
    int32_t id = md->controller_id;
    kc_metadata_free(md);
    return kc_client_conn(c, id, conn);
}

int kc_create_topic(kc_client_t *c, const char *topic, int32_t partitions, int16_t replication,
                    const kc_config_entry_t *configs, int nconfigs)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = controller_conn(c, &conn);
    if (rc) return rc;
    kp_create_topics_req_creatable_topic_config_t *cfg = calloc((size_t)nconfigs + 1, sizeof *cfg);
    if (!cfg) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    for (int i = 0; i < nconfigs; i++) {
        cfg[i].name = kp_str(configs[i].name);
        cfg[i].value = kp_str(configs[i].value);
    }
    kp_create_topics_req_creatable_topic_t t;
    kp_create_topics_req_creatable_topic_init(&t);
    t.name = kp_str(topic);
    t.num_partitions = partitions;
    t.replication_factor = replication;
    t.configs = cfg;
    t.configs_count = nconfigs;
    kp_create_topics_req_t req;
    kp_create_topics_req_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.timeout_ms = c->cfg.timeout_ms;
    kp_create_topics_resp_t resp;
    kp_create_topics_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_CREATE_TOPICS, &req, &resp, &rx, 0);
    char what[300];
    snprintf(what, sizeof what, "creating topic %s", topic);
    if (!rc && resp.topics_count < 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "%s: the broker answered for no topic", what);
    if (!rc) rc = kc_kafka_fail(c, resp.topics[0].error_code, what, resp.topics[0].error_message);
    kc_rx_deinit(&rx);
    free(cfg);
    return rc;
}

int kc_delete_topic(kc_client_t *c, const char *topic)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = controller_conn(c, &conn);
    if (rc) return rc;
    kp_delete_topics_req_delete_topic_state_t st;
    kp_delete_topics_req_delete_topic_state_init(&st);
    st.name = kp_str(topic);
    kp_str_t name = kp_str(topic);
    kp_delete_topics_req_t req;
    kp_delete_topics_req_init(&req);
    req.topics = &st; /* v6+ */
    req.topics_count = 1;
    req.topic_names = &name; /* v1-5 */
    req.topic_names_count = 1;
    req.timeout_ms = c->cfg.timeout_ms;
    kp_delete_topics_resp_t resp;
    kp_delete_topics_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DELETE_TOPICS, &req, &resp, &rx, 0);
    char what[300];
    snprintf(what, sizeof what, "deleting topic %s", topic);
    if (!rc && resp.responses_count < 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "%s: the broker answered for no topic", what);
    if (!rc)
        rc = kc_kafka_fail(c, resp.responses[0].error_code, what, resp.responses[0].error_message);
    kc_rx_deinit(&rx);
    return rc;
}

void kc_topic_configs_free(kc_topic_configs_t *tc)
{
    if (!tc) return;
    kp_arena_deinit(&tc->arena);
    free(tc);
}

int kc_describe_topic_configs(kc_client_t *c, const char *topic, kc_topic_configs_t **out)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = kc_client_conn(c, -1, &conn);
    if (rc) return rc;
    kp_describe_configs_req_describe_configs_resource_t res;
    kp_describe_configs_req_describe_configs_resource_init(&res);
    res.resource_type = CONFIG_RESOURCE_TOPIC;
    res.resource_name = kp_str(topic);
    res.configuration_keys = NULL;
    res.configuration_keys_count = -1; /* all */
    kp_describe_configs_req_t req;
    kp_describe_configs_req_init(&req);
    req.resources = &res;
    req.resources_count = 1;
    kp_describe_configs_resp_t resp;
    kp_describe_configs_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DESCRIBE_CONFIGS, &req, &resp, &rx, 0);
    char what[300];
    snprintf(what, sizeof what, "describing configs of topic %s", topic);
    if (!rc && resp.results_count < 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "%s: the broker answered for no resource", what);
    if (!rc) rc = kc_kafka_fail(c, resp.results[0].error_code, what, resp.results[0].error_message);
    kc_topic_configs_t *tc = NULL;
    if (!rc && !(tc = calloc(1, sizeof *tc))) rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    if (!rc) {
        const kp_describe_configs_resp_describe_configs_result_t *r = &resp.results[0];
        kp_arena_init(&tc->arena, NULL, 0, 0);
        tc->entries =
            kp_arena_alloc(&tc->arena, sizeof *tc->entries * (size_t)(r->configs_count + 1));
        for (int32_t i = 0; tc->entries && i < r->configs_count; i++) {
            if (r->configs[i].config_source != CONFIG_SOURCE_TOPIC) continue;
            tc->entries[tc->n].name = kc_arena_strdup(&tc->arena, r->configs[i].name);
            tc->entries[tc->n].value = kc_arena_strdup(&tc->arena, r->configs[i].value);
            tc->n++;
        }
        *out = tc;
    }
    kc_rx_deinit(&rx);
    return rc;
}

/*
 * DescribeConfigs (32), v1-4, for TOPIC (2) and BROKER (4) resources.
 *
 * Topic keys come from storage (ks_topic_config_keys: every topic config Kafka 4.1 reports);
 * their source is DYNAMIC_TOPIC_CONFIG when the topic has an override (set by CreateTopics or
 * AlterConfigs), else where the broker default comes from: DYNAMIC_BROKER_CONFIG /
 * DYNAMIC_DEFAULT_BROKER_CONFIG (AlterConfigs on the broker, h_broker_configs.c),
 * STATIC_BROKER_CONFIG (server.properties) or DEFAULT_CONFIG. Synonyms list the topic
 * override (if any) and then the broker key (Kafka's name) it defaults from. Broker keys come
 * from the config table; the dynamic ones (kb_config_is_dynamic) are not read-only.
 * Authorization: DESCRIBE_CONFIGS on the topic, or on the cluster for the broker.
 */
#include <stdio.h>
#include <string.h>

#include "broker/api/h_admin.h"
#include "broker/auth/auth.h"
#include "broker/core/config.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_describe_configs.h"
#include "protocol/kp_errors.h"

enum { RES_TOPIC = 2, RES_BROKER = 4 };

typedef kp_describe_configs_req_describe_configs_resource_t res_in_t;
typedef kp_describe_configs_resp_describe_configs_result_t res_out_t;
typedef kp_describe_configs_resp_describe_configs_resource_result_t entry_t;
typedef kp_describe_configs_resp_describe_configs_synonym_t synonym_t;

typedef struct {
    kb_req_t *req;
    const kp_describe_configs_req_t *m;
    const kb_config_t *cfg;
} ctx_t;

static bool wanted(const res_in_t *in, const char *key)
{
    if (in->configuration_keys_count < 0) return true;
    for (int32_t i = 0; i < in->configuration_keys_count; i++)
        if (kp_str_eq(in->configuration_keys[i], key)) return true;
    return false;
}

static kp_str_t adup(ctx_t *x, const char *s)
{
    return kp_str(kb_arena_strdup(&x->req->arena, s));
}

static int add_synonym(ctx_t *x, entry_t *e, const char *name, const char *value, int8_t source)
{
    if (!e->synonyms) {
        e->synonyms = kp_arena_alloc(&x->req->arena, sizeof *e->synonyms * 4);
        if (!e->synonyms) return K_ERR_NOMEM;
        e->synonyms_count = 0;
    }
    synonym_t *s = &e->synonyms[e->synonyms_count++];
    kp_describe_configs_resp_describe_configs_synonym_init(s);
    s->name = adup(x, name);
    s->value = adup(x, value);
    s->source = source;
    return 0;
}

static int8_t kafka_type(const char *topic_key)
{
    const char *t = ks_topic_config_type(topic_key);
    if (!strcmp(t, "long")) return KB_CT_LONG;
    if (!strcmp(t, "int")) return KB_CT_INT;
    if (!strcmp(t, "boolean")) return KB_CT_BOOLEAN;
    if (!strcmp(t, "double")) return KB_CT_DOUBLE;
    if (!strcmp(t, "list")) return KB_CT_LIST;
    return KB_CT_STRING;
}

/* Kafka's broker keys for these have no default of their own (log.retention.ms, log.roll.ms,
 * log.roll.jitter.ms, log.flush.interval.ms are null unless set), so Kafka lists no
 * DEFAULT_CONFIG synonym for them; kafka-configs --describe --all then reads the same. */
static bool null_broker_default(const char *key)
{
    static const char *const keys[] = {"retention.ms", "segment.ms", "segment.jitter.ms",
                                       "flush.ms"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i])) return true;
    return false;
}

/* Where a topic key's broker default comes from: the dynamic layer, server.properties, or
 * Kafka's default (bi: the Depot broker row for it, or -1). */
static int8_t broker_source(ctx_t *x, int bi)
{
    int dyn = bi >= 0 ? kb_dynconf_source(x->req->broker, bi) : 0;
    if (dyn) return (int8_t)dyn;
    const kb_config_t *st = kb_dynconf_static(x->req->broker);
    return bi >= 0 && !kb_config_is_default(st ? st : x->cfg, bi) ? KB_CS_STATIC_BROKER
                                                                   : KB_CS_DEFAULT;
}

static int broker_layers(ctx_t *x, entry_t *e, int bi, const char *name, bool no_default);

/* Fills one topic-level entry; the caller has initialised e. Synonyms, most specific first
 * as Kafka lists them: the topic override, then the broker default it would fall back to. */
static int topic_entry(ctx_t *x, const ks_topic_t *t, int idx, const char *key, entry_t *e)
{
    char val[KS_THROTTLED_MAX] = "", bval[KS_THROTTLED_MAX] = "";
    ks_topic_config_get(ks_topic_config(t), key, val, sizeof val);
    ks_topic_config_get(ks_store_defaults(kb_broker_store(x->req->broker)), key, bval,
                        sizeof bval);
    int bi = kb_config_find_by_topic_key(key);
    bool dynamic = (ks_topic_overrides(t) >> idx) & 1;
    int8_t bsrc = broker_source(x, bi);
    e->name = adup(x, key);
    e->value = adup(x, val);
    e->read_only = false;
    e->is_sensitive = false;
    e->config_source = dynamic ? KB_CS_DYNAMIC_TOPIC : bsrc;
    e->config_type = kafka_type(key);
    e->documentation = x->m->include_documentation ? kp_str(ks_topic_config_doc(key))
                                                   : (kp_str_t){NULL, -1};
    e->synonyms_count = 0;
    if (x->m->include_synonyms) {
        int rc = 0;
        const char *bkey = ks_topic_config_broker_key(key);
        if (dynamic) rc = add_synonym(x, e, key, val, KB_CS_DYNAMIC_TOPIC);
        if (rc == 0 && bkey && bi >= 0)
            rc = broker_layers(x, e, bi, bkey, null_broker_default(key));
        else if (rc == 0 && bkey && !null_broker_default(key))
            rc = add_synonym(x, e, bkey, bval, bsrc);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Kafka lists a broker config's synonyms from the most to the least specific layer: the
 * dynamic value, server.properties, the built-in default (absent where the key has none). bi
 * is the Depot row, name the key as Kafka reports it. */
static int broker_layers(ctx_t *x, entry_t *e, int bi, const char *name, bool no_default)
{
    char v[1024];
    int rc = 0;
    int dyn = kb_dynconf_source(x->req->broker, bi);
    const kb_config_t *st = kb_dynconf_static(x->req->broker);
    if (!st) st = x->cfg;
    if (dyn) {
        kb_config_value(x->cfg, bi, v, sizeof v);
        rc = add_synonym(x, e, name, v, (int8_t)dyn);
    }
    if (rc == 0 && !kb_config_is_default(st, bi)) {
        kb_config_value(st, bi, v, sizeof v);
        rc = add_synonym(x, e, name, v, KB_CS_STATIC_BROKER);
    }
    const char *d = kb_config_default_text(bi);
    if (rc == 0 && d && !no_default) rc = add_synonym(x, e, name, d, KB_CS_DEFAULT);
    return rc;
}

static int broker_entry(ctx_t *x, int i, entry_t *e)
{
    const kb_config_info_t *info = kb_config_info(i);
    char val[1024];
    kb_config_value(x->cfg, i, val, sizeof val);
    const kb_config_t *st = kb_dynconf_static(x->req->broker);
    int8_t source = (int8_t)kb_dynconf_source(x->req->broker, i);
    if (!source)
        source = kb_config_is_default(st ? st : x->cfg, i) ? KB_CS_DEFAULT : KB_CS_STATIC_BROKER;
    e->name = kp_str(info->name);
    e->value = adup(x, val);
    e->read_only = !kb_config_is_dynamic(i);
    e->is_sensitive = false;
    e->config_source = source;
    e->config_type = (int8_t)info->config_type;
    e->documentation = x->m->include_documentation ? kp_str(info->doc) : (kp_str_t){NULL, -1};
    e->synonyms_count = 0;
    if (x->m->include_synonyms) return broker_layers(x, e, i, info->name, false);
    return 0;
}

static int describe_topic(ctx_t *x, const res_in_t *in, res_out_t *o)
{
    ks_store_t *store = kb_broker_store(x->req->broker);
    char name[256];
    if (!kb_str_copy(in->resource_name, name, sizeof name) ||
        !ks_topic_name_valid(name, strlen(name))) {
        o->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
        o->error_message = kp_str("Topic name is illegal");
        return 0;
    }
    if (!kb_authorize(x->req, KB_OP_DESCRIBE_CONFIGS, KB_RES_TOPIC, name, strlen(name))) {
        o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        o->error_message = kp_str("Topic authorization failed.");
        return 0;
    }
    ks_topic_t *t = ks_topic_find(store, name, strlen(name));
    if (!t) {
        o->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        o->error_message = kb_arena_printf(&x->req->arena, "Topic '%s' does not exist.", name);
        return 0;
    }
    const char *const *keys = ks_topic_config_keys();
    int32_t n = 0;
    while (keys[n])
        n++;
    o->configs = kp_arena_alloc(&x->req->arena, sizeof *o->configs * (size_t)(n ? n : 1));
    if (!o->configs) return K_ERR_NOMEM;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!wanted(in, keys[i])) continue;
        kp_describe_configs_resp_describe_configs_resource_result_init(&o->configs[k]);
        int rc = topic_entry(x, t, i, keys[i], &o->configs[k]);
        if (rc < 0) return rc;
        k++;
    }
    o->configs_count = k;
    return 0;
}

static int describe_broker(ctx_t *x, const res_in_t *in, res_out_t *o)
{
    char id[16];
    snprintf(id, sizeof id, "%d", x->cfg->node_id);
    if (!kb_authorize_cluster(x->req, KB_OP_DESCRIBE_CONFIGS)) {
        o->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        o->error_message = kp_str("Cluster authorization failed.");
        return 0;
    }
    if (in->resource_name.len > 0 && !kp_str_eq(in->resource_name, id)) {
        o->error_code = KP_ERR_INVALID_REQUEST;
        o->error_message = kb_arena_printf(&x->req->arena, "This is broker %s.", id);
        return 0;
    }
    int n = kb_config_count();
    o->configs = kp_arena_alloc(&x->req->arena, sizeof *o->configs * (size_t)n);
    if (!o->configs) return K_ERR_NOMEM;
    int32_t k = 0;
    for (int i = 0; i < n; i++) {
        if (!wanted(in, kb_config_info(i)->name)) continue;
        kp_describe_configs_resp_describe_configs_resource_result_init(&o->configs[k]);
        int rc = broker_entry(x, i, &o->configs[k]);
        if (rc < 0) return rc;
        k++;
    }
    o->configs_count = k;
    return 0;
}

int kb_handle_describe_configs(kb_req_t *req)
{
    kp_describe_configs_req_t m;
    kp_describe_configs_req_init(&m);
    if (kp_describe_configs_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    ctx_t x = {req, &m, kb_broker_config(req->broker)};
    kp_describe_configs_resp_t resp;
    kp_describe_configs_resp_init(&resp);
    int32_t n = m.resources_count > 0 ? m.resources_count : 0;
    if (n > 0) {
        resp.results = kp_arena_alloc(&req->arena, sizeof *resp.results * (size_t)n);
        if (!resp.results) return K_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        const res_in_t *in = &m.resources[i];
        res_out_t *o = &resp.results[i];
        kp_describe_configs_resp_describe_configs_result_init(o);
        o->error_message = (kp_str_t){NULL, -1};
        o->resource_type = in->resource_type;
        o->resource_name = in->resource_name;
        o->error_code = KP_ERR_NONE;
        o->configs_count = 0;
        int rc = 0;
        if (in->resource_type == RES_TOPIC)
            rc = describe_topic(&x, in, o);
        else if (in->resource_type == RES_BROKER)
            rc = describe_broker(&x, in, o);
        else {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message =
                kb_arena_printf(&req->arena, "Unsupported resource type %d", in->resource_type);
        }
        if (rc < 0) return rc;
        kb_req_error(req, o->error_code);
    }
    resp.results_count = n;
    int rc = kp_describe_configs_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * Validation at the door (see reg_produce.h). Cost: nothing for topics without validation;
 * for validated topics one pass over the batch's records (decompressing a compressed batch
 * into a buffer bounded by the topic's max.message.bytes x 64), a 5-byte header check and a
 * subject lookup per record, and with depot.value.schema.validation=full an Avro decode of
 * each value.
 */
#include <stdio.h>
#include <string.h>

#include "broker/core/subsys.h"
#include "broker/core/util.h"
#include "broker/registry/reg_int.h"
#include "broker/registry/reg_produce.h"
#include "broker/registry/reg_subsys.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_errors.h"

#define MAX_DECOMPRESSED (64u * 1024 * 1024)

typedef struct {
    kp_arena_t *arena;
    kp_produce_resp_partition_produce_response_t *out;
    int32_t failed, total;
    char first[300];
} verdict_t;

static void refuse(verdict_t *v, int32_t index, const char *msg)
{
    if (v->failed++ == 0)
        snprintf(v->first, sizeof v->first, "%s", msg);
    if (v->out->record_errors_count >= KB_REG_MAX_RECORD_ERRORS)
        return;
    kp_produce_resp_batch_index_and_error_message_t *e =
        &v->out->record_errors[v->out->record_errors_count];
    kp_produce_resp_batch_index_and_error_message_init(e);
    e->batch_index = index;
    e->batch_index_error_message = kb_arena_printf(v->arena, "%s", msg);
    v->out->record_errors_count++;
}

static void check_record(kb_registry_t *r, const ks_topic_config_t *cfg, const char *topic,
                         const kp_record_t *rec, int32_t index, verdict_t *v)
{
    char msg[600];
    if (!r) {
        refuse(v, index, "schema validation is on for this topic but the schema registry is "
                         "off (schema.registry.listeners)");
        return;
    }
    if (cfg->value_schema_validation && rec->value.len >= 0 &&
        kb_registry_check_value(r, topic, false, cfg->value_subject_strategy, rec->value.ptr,
                                (size_t)rec->value.len,
                                cfg->value_schema_check == KS_SCHEMA_CHECK_FULL, msg,
                                sizeof msg) < 0) {
        refuse(v, index, msg);
        return;
    }
    if (cfg->key_schema_validation && rec->key.len >= 0 &&
        kb_registry_check_value(r, topic, true, cfg->key_subject_strategy, rec->key.ptr,
                                (size_t)rec->key.len, false, msg, sizeof msg) < 0)
        refuse(v, index, msg);
}

int16_t kb_registry_produce_check(kb_broker_t *b, ks_topic_t *t, const uint8_t *batch,
                                  size_t len, kp_arena_t *arena,
                                  kp_produce_resp_partition_produce_response_t *out)
{
    const ks_topic_config_t *cfg = ks_topic_config(t);
    if (!cfg->value_schema_validation && !cfg->key_schema_validation)
        return KP_ERR_NONE; /* the common case stays two integer tests */
    return kb_registry_produce_check_r(kb_registry_of(b), t, batch, len, arena, out);
}

int16_t kb_registry_produce_check_r(kb_registry_t *r, ks_topic_t *t, const uint8_t *batch,
                                    size_t len, kp_arena_t *arena,
                                    kp_produce_resp_partition_produce_response_t *out)
{
    const ks_topic_config_t *cfg = ks_topic_config(t);
    if (!cfg->value_schema_validation && !cfg->key_schema_validation)
        return KP_ERR_NONE;
    verdict_t v = {.arena = arena, .out = out};
    out->record_errors = kp_arena_alloc(arena, sizeof *out->record_errors *
                                                   KB_REG_MAX_RECORD_ERRORS);
    out->record_errors_count = 0;
    if (!out->record_errors)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    kp_records_t recs;
    kp_record_t rec;
    if (kp_records_init(&recs, batch, len, MAX_DECOMPRESSED) < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    int rc;
    while ((rc = kp_records_next(&recs, &rec)) == 1)
        check_record(r, cfg, ks_topic_name(t), &rec, v.total++, &v);
    kp_records_deinit(&recs);
    if (rc < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    if (v.failed == 0) {
        out->record_errors_count = 0;
        out->record_errors = NULL;
        return KP_ERR_NONE;
    }
    out->error_message = kb_arena_printf(arena, "%d of %d records failed schema validation "
                                         "(topic %s): %s", (int)v.failed, (int)v.total,
                                         ks_topic_name(t), v.first);
    kb_log(KB_LOG_INFO, "produce: %s: %d of %d records refused by schema validation: %s",
           ks_topic_name(t), (int)v.failed, (int)v.total, v.first);
    return KP_ERR_INVALID_RECORD;
}

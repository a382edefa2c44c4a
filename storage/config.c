/*
 * Topic-level configuration: one table gives each key's name, kind, place in the struct and
 * bounds; defaults, parsing, printing and the key list all come from it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/ks_int.h"

/* T_RATIO: a double in [0, 1]; dflt/min/max are in millionths. */
enum { T_I32, T_I64, T_TSTYPE, T_CLEANUP, T_RATIO, T_BOOL, T_STRATEGY, T_CHECK };

typedef struct {
    const char *name;
    int type;
    size_t off;
    int64_t dflt, min, max;
} cfg_def_t;

#define F(field) offsetof(ks_topic_config_t, field)
static const cfg_def_t defs[] = {
    /* Kafka's defaults. segment.bytes is capped at INT32_MAX because index positions are
     * 4 bytes; the minimum is Kafka's (a legacy record's overhead). */
    {"segment.bytes", T_I64, F(segment_bytes), 1073741824, 14, INT32_MAX},
    {"segment.ms", T_I64, F(segment_ms), 604800000, 1, INT64_MAX},
    {"retention.ms", T_I64, F(retention_ms), 604800000, -1, INT64_MAX},
    {"retention.bytes", T_I64, F(retention_bytes), -1, -1, INT64_MAX},
    {"index.interval.bytes", T_I32, F(index_interval_bytes), 4096, 0, INT32_MAX},
    {"flush.messages", T_I64, F(flush_messages), INT64_MAX, 1, INT64_MAX},
    {"flush.ms", T_I64, F(flush_ms), INT64_MAX, 0, INT64_MAX},
    {"max.message.bytes", T_I32, F(max_message_bytes), 1048588, 0, INT32_MAX},
    {"message.timestamp.type", T_TSTYPE, F(timestamp_type), KS_TS_CREATE_TIME, 0, 1},
    {"cleanup.policy", T_CLEANUP, F(cleanup_policy), KS_CLEANUP_DELETE, 0, 2},
    {"min.cleanable.dirty.ratio", T_RATIO, F(min_cleanable_dirty_ratio), 500000, 0, 1000000},
    {"min.compaction.lag.ms", T_I64, F(min_compaction_lag_ms), 0, 0, INT64_MAX},
    {"max.compaction.lag.ms", T_I64, F(max_compaction_lag_ms), INT64_MAX, 1, INT64_MAX},
    {"delete.retention.ms", T_I64, F(delete_retention_ms), 86400000, 0, INT64_MAX},
    /* Confluent Server's names, so topics created for it keep their meaning here. */
    {"confluent.key.schema.validation", T_BOOL, F(key_schema_validation), 0, 0, 1},
    {"confluent.value.schema.validation", T_BOOL, F(value_schema_validation), 0, 0, 1},
    {"confluent.key.subject.name.strategy", T_STRATEGY, F(key_subject_strategy),
     KS_SUBJECT_TOPIC, 0, 2},
    {"confluent.value.subject.name.strategy", T_STRATEGY, F(value_subject_strategy),
     KS_SUBJECT_TOPIC, 0, 2},
    {"depot.value.schema.validation", T_CHECK, F(value_schema_check), KS_SCHEMA_CHECK_ID, 0, 1},
};
#undef F
#define NDEFS (sizeof defs / sizeof defs[0])

static const char *const key_names[NDEFS + 1] = {
    "segment.bytes",     "segment.ms",     "retention.ms",
    "retention.bytes",   "index.interval.bytes", "flush.messages",
    "flush.ms",          "max.message.bytes",    "message.timestamp.type",
    "cleanup.policy",    "min.cleanable.dirty.ratio", "min.compaction.lag.ms",
    "max.compaction.lag.ms", "delete.retention.ms", "confluent.key.schema.validation",
    "confluent.value.schema.validation", "confluent.key.subject.name.strategy",
    "confluent.value.subject.name.strategy", "depot.value.schema.validation", NULL,
};

static const char *const ts_names[] = {"CreateTime", "LogAppendTime"};
static const char *const cleanup_names[] = {"delete", "compact", "compact,delete"};
static const char *const bool_names[] = {"false", "true"};
static const char *const check_names[] = {"id", "full"};
/* Confluent's class names; the part after the last dot is accepted on its own too. */
static const char *const strategy_names[] = {
    "io.confluent.kafka.serializers.subject.TopicNameStrategy",
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"};

static int parse_strategy(const char *v)
{
    for (int i = 0; i < 3; i++) {
        const char *short_name = strrchr(strategy_names[i], '.') + 1;
        if (!strcmp(v, strategy_names[i]) || !strcmp(v, short_name))
            return i;
    }
    return -1;
}

static void put_val(ks_topic_config_t *c, const cfg_def_t *d, int64_t v)
{
    char *p = (char *)c + d->off;
    if (d->type == T_RATIO)
        *(double *)(void *)p = (double)v / 1e6;
    else if (d->type == T_I64)
        *(int64_t *)(void *)p = v;
    else if (d->type == T_I32)
        *(int32_t *)(void *)p = (int32_t)v;
    else
        *(int *)(void *)p = (int)v;
}

static int64_t get_val(const ks_topic_config_t *c, const cfg_def_t *d)
{
    const char *p = (const char *)c + d->off;
    if (d->type == T_RATIO)
        return (int64_t)(*(const double *)(const void *)p * 1e6 + 0.5);
    if (d->type == T_I64)
        return *(const int64_t *)(const void *)p;
    if (d->type == T_I32)
        return *(const int32_t *)(const void *)p;
    return *(const int *)(const void *)p;
}

void ks_topic_config_default(ks_topic_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NDEFS; i++)
        put_val(c, &defs[i], defs[i].dflt);
}

static const cfg_def_t *find_def(const char *key)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strcmp(defs[i].name, key) == 0)
            return &defs[i];
    return NULL;
}

/* Kafka's cleanup.policy is a list: "delete", "compact", both in either order (spaces
 * allowed). */
static int parse_cleanup(const char *v)
{
    bool del = false, comp = false;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, " ,");
        if (n == 6 && strncmp(p, "delete", 6) == 0)
            del = true;
        else if (n == 7 && strncmp(p, "compact", 7) == 0)
            comp = true;
        else if (n)
            return -1;
        p += n;
    }
    if (del && comp)
        return KS_CLEANUP_COMPACT_DELETE;
    return comp ? KS_CLEANUP_COMPACT : del ? KS_CLEANUP_DELETE : -1;
}

static int parse_enum(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

int ks_topic_config_set(ks_topic_config_t *c, const char *key, const char *value)
{
    if (!c || !key || !value)
        return K_ERR_INVAL;
    const cfg_def_t *d = find_def(key);
    if (!d)
        return K_ERR_NOENT;
    int64_t v;
    if (d->type == T_TSTYPE) {
        v = parse_enum(value, ts_names, 2);
    } else if (d->type == T_CLEANUP) {
        v = parse_cleanup(value);
    } else if (d->type == T_RATIO) {
        char *end;
        errno = 0;
        double x = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !(x >= 0.0 && x <= 1.0))
            return K_ERR_INVAL;
        *(double *)(void *)((char *)c + d->off) = x;
        return 0;
    } else if (d->type == T_BOOL) {
        v = strcasecmp(value, "true") == 0 ? 1 : strcasecmp(value, "false") == 0 ? 0 : -1;
    } else if (d->type == T_STRATEGY) {
        v = parse_strategy(value);
    } else if (d->type == T_CHECK) {
        v = parse_enum(value, check_names, 2);
    } else {
        char *end;
        errno = 0;
        long long ll = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return K_ERR_INVAL;
        v = ll;
    }
    if (v < d->min || v > d->max)
        return K_ERR_INVAL;
    put_val(c, d, v);
    return 0;
}

int ks_topic_config_get(const ks_topic_config_t *c, const char *key, char *buf, size_t len)
{
    if (!c || !key || !buf || len == 0)
        return K_ERR_INVAL;
    const cfg_def_t *d = find_def(key);
    if (!d)
        return K_ERR_NOENT;
    int64_t v = get_val(c, d);
    int n;
    if (d->type == T_TSTYPE)
        n = snprintf(buf, len, "%s", ts_names[v == KS_TS_LOG_APPEND_TIME]);
    else if (d->type == T_CLEANUP)
        n = snprintf(buf, len, "%s", cleanup_names[v >= 0 && v <= 2 ? v : 0]);
    else if (d->type == T_RATIO)
        n = snprintf(buf, len, "%g", *(const double *)(const void *)((const char *)c + d->off));
    else if (d->type == T_BOOL)
        n = snprintf(buf, len, "%s", bool_names[v != 0]);
    else if (d->type == T_STRATEGY)
        n = snprintf(buf, len, "%s", strategy_names[v >= 0 && v <= 2 ? v : 0]);
    else if (d->type == T_CHECK)
        n = snprintf(buf, len, "%s", check_names[v != 0]);
    else
        n = snprintf(buf, len, "%" PRId64, v);
    return n < 0 || (size_t)n >= len ? K_ERR_TOOLARGE : 0;
}

const char *const *ks_topic_config_keys(void)
{
    return key_names;
}

/*
 * Topic-level configuration: one table gives each key's name, kind, place in the struct,
 * bounds, Kafka type and the broker key it defaults from; defaults, parsing, validation,
 * printing, the key list and override masks all come from it. The rows are every topic config
 * a Kafka 4.1 broker reports in DescribeConfigs, in name order (a key's row index is its bit in
 * a topic's override mask), with Kafka's defaults and bounds (LogConfig / TopicConfig).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/ks_int.h"

enum { T_I32, T_I64, T_BOOL, T_DOUBLE, T_ENUM, T_THROTTLED };

typedef struct {
    const char *name;
    int type;
    size_t off, size;
    int64_t dflt, min, max;         /* T_DOUBLE: dflt/min/max are per-mille */
    const char *const *names;       /* T_ENUM: value i is names[i], NULL-terminated */
    const char *broker_key;         /* Kafka's broker default key, NULL if none */
} cfg_def_t;

/* What each key does on Depot (docs/configuration.md, via ks_topic_config_doc). */
static const struct {
    const char *name, *doc;
} docs[] = {
    {"cleanup.policy",
     "delete: retention removes old segments. compact: retention leaves the log alone (compaction is the log cleaner's). compact,delete: both."},
    {"compression.gzip.level",
     "gzip level used when the broker recompresses for compression.type=gzip (-1: zlib's default)."},
    {"compression.lz4.level",
     "lz4 level used when the broker recompresses for compression.type=lz4 (LZ4HC levels)."},
    {"compression.type",
     "producer keeps each batch as the producer compressed it; uncompressed, gzip, snappy, lz4 or zstd makes Produce rewrite batches in another codec into that one (offsets, timestamps and producer fields kept; costs one decompress and compress per batch on the event loop)."},
    {"compression.zstd.level",
     "zstd level used when the broker recompresses for compression.type=zstd."},
    {"confluent.key.schema.validation",
     "Depot (Confluent Server's name): true makes Produce refuse records whose key is not framed with a schema id registered under the key subject (docs/schema-registry.md)."},
    {"confluent.key.subject.name.strategy",
     "Depot: how the key subject is named: TopicNameStrategy (<topic>-key), RecordNameStrategy, TopicRecordNameStrategy."},
    {"confluent.value.schema.validation",
     "Depot (Confluent Server's name): true makes Produce refuse records whose value is not framed with a schema id registered under the value subject (docs/schema-registry.md)."},
    {"confluent.value.subject.name.strategy",
     "Depot: how the value subject is named: TopicNameStrategy (<topic>-value), RecordNameStrategy, TopicRecordNameStrategy."},
    {"delete.retention.ms",
     "How long tombstones stay after compaction (used by the log cleaner)."},
    {"depot.value.schema.validation",
     "Depot: id checks the framing and the registered id; full also decodes each value with its schema."},
    {"file.delete.delay.ms",
     "Accepted; no effect: deleted segments are unlinked at once by the flusher threads."},
    {"flush.messages",
     "fsync a partition after this many messages."},
    {"flush.ms",
     "fsync dirty data of a partition at least this often."},
    {"follower.replication.throttled.replicas",
     "Accepted; no effect on one node (no followers)."},
    {"index.interval.bytes",
     "Bytes of log between two offset-index entries."},
    {"leader.replication.throttled.replicas",
     "Accepted; no effect on one node (no replication)."},
    {"local.retention.bytes",
     "Accepted; no effect (no tiered storage)."},
    {"local.retention.ms",
     "Accepted; no effect (no tiered storage)."},
    {"max.compaction.lag.ms",
     "Longest time a record stays uncompacted (used by the log cleaner)."},
    {"max.message.bytes",
     "Largest record batch accepted for the topic."},
    {"message.timestamp.after.max.ms",
     "CreateTime topics: Produce refuses records whose timestamp is more than this ahead of the broker's clock (INVALID_TIMESTAMP with one record error each, KIP-937)."},
    {"message.timestamp.before.max.ms",
     "CreateTime topics: Produce refuses records whose timestamp is more than this behind the broker's clock (INVALID_TIMESTAMP with one record error each)."},
    {"message.timestamp.type",
     "CreateTime keeps producer timestamps; LogAppendTime stamps batches with the broker clock."},
    {"min.cleanable.dirty.ratio",
     "Dirty share of a log that makes it eligible for compaction (used by the log cleaner)."},
    {"min.compaction.lag.ms",
     "Shortest time a record stays uncompacted (used by the log cleaner)."},
    {"min.insync.replicas",
     "One node is an in-sync set of one: with a value above 1, acks=all produce fails with NOT_ENOUGH_REPLICAS (as Kafka does for a replication factor of 1) and acks=0/1 are unaffected."},
    {"preallocate",
     "Accepted; no effect (segments grow as written)."},
    {"remote.log.copy.disable",
     "Accepted; no effect (no tiered storage)."},
    {"remote.log.delete.on.disable",
     "Accepted; no effect (no tiered storage)."},
    {"remote.storage.enable",
     "Only false: Depot has no tiered storage, and true is refused with INVALID_CONFIG."},
    {"retention.bytes",
     "Delete the oldest segments while a partition is larger (-1 = no limit)."},
    {"retention.ms",
     "Delete segments older than this (-1 = forever); a change applies at the next retention tick (about a second)."},
    {"segment.bytes",
     "Size at which a new segment is rolled."},
    {"segment.index.bytes",
     "Accepted; no effect (indexes grow as needed)."},
    {"segment.jitter.ms",
     "Accepted; no effect (no roll jitter)."},
    {"segment.ms",
     "Roll a new segment after this long even if not full."},
    {"unclean.leader.election.enable",
     "Accepted; no effect on one node (no elections)."},
};

static const char *const ts_names[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const cleanup_names[] = {"delete", "compact", "compact,delete", NULL};
static const char *const compression_names[] = {"producer", "uncompressed", "gzip", "snappy",
                                                "lz4",      "zstd",         NULL};
/* Confluent's class names (KS_SUBJECT_*); the part after the last dot is accepted alone too. */
static const char *const strategy_names[] = {
    "io.confluent.kafka.serializers.subject.TopicNameStrategy",
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy", NULL};
static const char *const check_names[] = {"id", "full", NULL}; /* KS_SCHEMA_CHECK_* */

#define F(field) offsetof(ks_topic_config_t, field), sizeof(((ks_topic_config_t *)0)->field)
#define I64MAX INT64_MAX
static const cfg_def_t defs[] = {
    {"cleanup.policy", T_ENUM, F(cleanup_policy), KS_CLEANUP_DELETE, 0, 2, cleanup_names,
     "log.cleanup.policy"},
    {"compression.gzip.level", T_I32, F(compression_gzip_level), -1, -1, 9, NULL,
     "compression.gzip.level"},
    {"compression.lz4.level", T_I32, F(compression_lz4_level), 9, 1, 17, NULL,
     "compression.lz4.level"},
    {"compression.type", T_ENUM, F(compression_type), KS_COMPRESSION_PRODUCER, 0, 5,
     compression_names, "compression.type"},
    {"compression.zstd.level", T_I32, F(compression_zstd_level), 3, -131072, 22, NULL,
     "compression.zstd.level"},
    {"confluent.key.schema.validation", T_BOOL, F(key_schema_validation), 0, 0, 1, NULL, NULL},
    {"confluent.key.subject.name.strategy", T_ENUM, F(key_subject_strategy), KS_SUBJECT_TOPIC, 0,
     2, strategy_names, NULL},
    {"confluent.value.schema.validation", T_BOOL, F(value_schema_validation), 0, 0, 1, NULL,
     NULL},
    {"confluent.value.subject.name.strategy", T_ENUM, F(value_subject_strategy),
     KS_SUBJECT_TOPIC, 0, 2, strategy_names, NULL},
    {"delete.retention.ms", T_I64, F(delete_retention_ms), 86400000, 0, I64MAX, NULL,
     "log.cleaner.delete.retention.ms"},
    {"depot.value.schema.validation", T_ENUM, F(value_schema_check), KS_SCHEMA_CHECK_ID, 0, 1,
     check_names, NULL},
    {"file.delete.delay.ms", T_I64, F(file_delete_delay_ms), 60000, 0, I64MAX, NULL,
     "log.segment.delete.delay.ms"},
    {"flush.messages", T_I64, F(flush_messages), I64MAX, 1, I64MAX, NULL,
     "log.flush.interval.messages"},
    {"flush.ms", T_I64, F(flush_ms), I64MAX, 0, I64MAX, NULL, "log.flush.interval.ms"},
    {"follower.replication.throttled.replicas", T_THROTTLED, F(follower_throttled_replicas), 0,
     0, 0, NULL, NULL},
    {"index.interval.bytes", T_I32, F(index_interval_bytes), 4096, 0, INT32_MAX, NULL,
     "log.index.interval.bytes"},
    {"leader.replication.throttled.replicas", T_THROTTLED, F(leader_throttled_replicas), 0, 0,
     0, NULL, NULL},
    {"local.retention.bytes", T_I64, F(local_retention_bytes), -2, -2, I64MAX, NULL,
     "log.local.retention.bytes"},
    {"local.retention.ms", T_I64, F(local_retention_ms), -2, -2, I64MAX, NULL,
     "log.local.retention.ms"},
    {"max.compaction.lag.ms", T_I64, F(max_compaction_lag_ms), I64MAX, 1, I64MAX, NULL,
     "log.cleaner.max.compaction.lag.ms"},
    /* segment.bytes bounds the batch too; Kafka's minimum is 0 here. */
    {"max.message.bytes", T_I32, F(max_message_bytes), 1048588, 0, INT32_MAX, NULL,
     "message.max.bytes"},
    {"message.timestamp.after.max.ms", T_I64, F(timestamp_after_max_ms), 3600000, 0, I64MAX,
     NULL, "log.message.timestamp.after.max.ms"},
    {"message.timestamp.before.max.ms", T_I64, F(timestamp_before_max_ms), I64MAX, 0, I64MAX,
     NULL, "log.message.timestamp.before.max.ms"},
    {"message.timestamp.type", T_ENUM, F(timestamp_type), KS_TS_CREATE_TIME, 0, 1, ts_names,
     "log.message.timestamp.type"},
    {"min.cleanable.dirty.ratio", T_DOUBLE, F(min_cleanable_dirty_ratio), 500, 0, 1000, NULL,
     "log.cleaner.min.cleanable.ratio"},
    {"min.compaction.lag.ms", T_I64, F(min_compaction_lag_ms), 0, 0, I64MAX, NULL,
     "log.cleaner.min.compaction.lag.ms"},
    {"min.insync.replicas", T_I32, F(min_insync_replicas), 1, 1, INT32_MAX, NULL,
     "min.insync.replicas"},
    {"preallocate", T_BOOL, F(preallocate), 0, 0, 1, NULL, "log.preallocate"},
    {"remote.log.copy.disable", T_BOOL, F(remote_log_copy_disable), 0, 0, 1, NULL, NULL},
    {"remote.log.delete.on.disable", T_BOOL, F(remote_log_delete_on_disable), 0, 0, 1, NULL,
     NULL},
    /* No tiered storage: enabling it is refused (Kafka refuses it without a remote store). */
    {"remote.storage.enable", T_BOOL, F(remote_storage_enable), 0, 0, 0, NULL, NULL},
    {"retention.bytes", T_I64, F(retention_bytes), -1, -1, I64MAX, NULL, "log.retention.bytes"},
    {"retention.ms", T_I64, F(retention_ms), 604800000, -1, I64MAX, NULL, "log.retention.ms"},
    /* Capped at INT32_MAX because index positions are 4 bytes; the minimum is Kafka's (a
     * legacy record's overhead). */
    {"segment.bytes", T_I64, F(segment_bytes), 1073741824, 14, INT32_MAX, NULL,
     "log.segment.bytes"},
    {"segment.index.bytes", T_I32, F(segment_index_bytes), 10485760, 4, INT32_MAX, NULL,
     "log.index.size.max.bytes"},
    {"segment.jitter.ms", T_I64, F(segment_jitter_ms), 0, 0, I64MAX, NULL, "log.roll.jitter.ms"},
    {"segment.ms", T_I64, F(segment_ms), 604800000, 1, I64MAX, NULL, "log.roll.ms"},
    {"unclean.leader.election.enable", T_BOOL, F(unclean_leader_election_enable), 0, 0, 1,
     NULL, "unclean.leader.election.enable"},
};
#undef F
#define NDEFS (sizeof defs / sizeof defs[0])
_Static_assert(NDEFS <= 64, "override masks are 64 bits");

static const char *key_names[NDEFS + 1];

static void fill_key_names(void)
{
    if (key_names[0]) return;
    for (size_t i = 0; i < NDEFS; i++)
        key_names[i] = defs[i].name;
}

static void put_int(ks_topic_config_t *c, const cfg_def_t *d, int64_t v)
{
    char *p = (char *)c + d->off;
    if (d->type == T_I64)
        *(int64_t *)(void *)p = v;
    else if (d->type == T_I32)
        *(int32_t *)(void *)p = (int32_t)v;
    else if (d->type == T_BOOL)
        *(bool *)(void *)p = v != 0;
    else
        *(int *)(void *)p = (int)v;
}

static int64_t get_int(const ks_topic_config_t *c, const cfg_def_t *d)
{
    const char *p = (const char *)c + d->off;
    if (d->type == T_I64) return *(const int64_t *)(const void *)p;
    if (d->type == T_I32) return *(const int32_t *)(const void *)p;
    if (d->type == T_BOOL) return *(const bool *)(const void *)p;
    return *(const int *)(const void *)p;
}

void ks_topic_config_default(ks_topic_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NDEFS; i++) {
        const cfg_def_t *d = &defs[i];
        if (d->type == T_DOUBLE)
            c->min_cleanable_dirty_ratio = (double)d->dflt / 1000.0;
        else if (d->type != T_THROTTLED)
            put_int(c, d, d->dflt);
    }
}

static int find_idx(const char *key)
{
    if (!key) return -1;
    for (size_t i = 0; i < NDEFS; i++)
        if (strcmp(defs[i].name, key) == 0) return (int)i;
    return -1;
}

int ks_topic_config_index(const char *key)
{
    return find_idx(key);
}

/* Kafka's ThrottledReplicaListValidator: "" or "*" or "partition:broker,partition:broker". */
static bool throttled_valid(const char *v)
{
    if (v[0] == '\0' || strcmp(v, "*") == 0) return true;
    const char *p = v;
    for (;;) {
        size_t a = strspn(p, "0123456789");
        if (a == 0 || p[a] != ':') return false;
        p += a + 1;
        size_t b = strspn(p, "0123456789");
        if (b == 0) return false;
        p += b;
        while (*p == ' ')
            p++;
        if (*p == '\0') return true;
        if (*p != ',') return false;
        p++;
        while (*p == ' ')
            p++;
    }
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
    if (del && comp) return KS_CLEANUP_COMPACT_DELETE;
    return comp ? KS_CLEANUP_COMPACT : del ? KS_CLEANUP_DELETE : -1;
}

static int parse_enum(const char *v, const char *const *names)
{
    if (names == cleanup_names) return parse_cleanup(v);
    for (int i = 0; names[i]; i++) {
        const char *dot = names == strategy_names ? strrchr(names[i], '.') : NULL;
        if (strcmp(v, names[i]) == 0 || (dot && strcmp(v, dot + 1) == 0)) return i;
    }
    return -1;
}

static int bad(char *err, size_t errlen, const char *fmt, const char *v, const char *key)
{
    if (err && errlen) snprintf(err, errlen, fmt, v, key);
    return K_ERR_INVAL;
}

int ks_topic_config_set_msg(ks_topic_config_t *c, const char *key, const char *value,
                            char *err, size_t errlen)
{
    if (!c || !key || !value) return K_ERR_INVAL;
    int i = find_idx(key);
    if (i < 0) {
        if (err && errlen) snprintf(err, errlen, "Unknown topic config name: %s", key);
        return K_ERR_NOENT;
    }
    const cfg_def_t *d = &defs[i];
    if (d->type == T_THROTTLED) {
        if (strlen(value) >= KS_THROTTLED_MAX || !throttled_valid(value))
            return bad(err, errlen, "Invalid value %s for configuration %s: must be the "
                       "literal '*' or a list of replicas in the format [partition]:[broker]",
                       value, key);
        snprintf((char *)c + d->off, d->size, "%s", value);
        return 0;
    }
    if (d->type == T_DOUBLE) {
        char *end;
        errno = 0;
        double x = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(x))
            return bad(err, errlen, "Invalid value %s for configuration %s: Not a number of "
                       "type DOUBLE", value, key);
        if (x < (double)d->min / 1000.0 || x > (double)d->max / 1000.0)
            return bad(err, errlen, "Invalid value %s for configuration %s: Value must be "
                       "between 0 and 1", value, key);
        c->min_cleanable_dirty_ratio = x;
        return 0;
    }
    int64_t v;
    if (d->type == T_ENUM) {
        v = parse_enum(value, d->names);
        if (v < 0)
            return bad(err, errlen, "Invalid value %s for configuration %s: String must be "
                       "one of the allowed values", value, key);
    } else if (d->type == T_BOOL) {
        if (strcasecmp(value, "true") == 0)
            v = 1;
        else if (strcasecmp(value, "false") == 0)
            v = 0;
        else
            return bad(err, errlen, "Invalid value %s for configuration %s: Expected value to "
                       "be either true or false", value, key);
    } else {
        char *end;
        errno = 0;
        long long ll = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return bad(err, errlen, d->type == T_I64 ? "Invalid value %s for configuration %s: "
                       "Not a number of type LONG" : "Invalid value %s for configuration %s: "
                       "Not a number of type INT", value, key);
        v = ll;
    }
    if (v < d->min || v > d->max) {
        if (err && errlen) {
            if (d->type == T_BOOL)
                snprintf(err, errlen, "Invalid value %s for configuration %s: only false is "
                         "supported (Depot has no tiered storage)", value, key);
            else
                snprintf(err, errlen, "Invalid value %s for configuration %s: Value must be "
                         "between %" PRId64 " and %" PRId64, value, key, d->min, d->max);
        }
        return K_ERR_INVAL;
    }
    put_int(c, d, v);
    return 0;
}

int ks_topic_config_set(ks_topic_config_t *c, const char *key, const char *value)
{
    return ks_topic_config_set_msg(c, key, value, NULL, 0);
}

int ks_topic_config_get(const ks_topic_config_t *c, const char *key, char *buf, size_t len)
{
    if (!c || !key || !buf || len == 0) return K_ERR_INVAL;
    int i = find_idx(key);
    if (i < 0) return K_ERR_NOENT;
    const cfg_def_t *d = &defs[i];
    int n;
    if (d->type == T_THROTTLED) {
        n = snprintf(buf, len, "%s", (const char *)c + d->off);
    } else if (d->type == T_DOUBLE) {
        /* Java's Double.toString for the values people use (0.5, 0.1, 1.0). */
        n = snprintf(buf, len, "%.15g", c->min_cleanable_dirty_ratio);
        if (n > 0 && (size_t)n < len && !strpbrk(buf, ".eE") && (size_t)n + 2 < len)
            n += snprintf(buf + n, len - (size_t)n, ".0");
    } else {
        int64_t v = get_int(c, d);
        if (d->type == T_ENUM) {
            int k = 0;
            while (d->names[k] && k < v)
                k++;
            n = snprintf(buf, len, "%s", d->names[k] ? d->names[k] : d->names[0]);
        } else if (d->type == T_BOOL) {
            n = snprintf(buf, len, "%s", v ? "true" : "false");
        } else {
            n = snprintf(buf, len, "%" PRId64, v);
        }
    }
    return n < 0 || (size_t)n >= len ? K_ERR_TOOLARGE : 0;
}

const char *const *ks_topic_config_keys(void)
{
    fill_key_names();
    return key_names;
}

const char *ks_topic_config_broker_key(const char *key)
{
    int i = find_idx(key);
    return i < 0 ? NULL : defs[i].broker_key;
}

const char *ks_topic_config_type(const char *key)
{
    int i = find_idx(key);
    if (i < 0) return "string";
    switch (defs[i].type) {
    case T_I32: return "int";
    case T_I64: return "long";
    case T_BOOL: return "boolean";
    case T_DOUBLE: return "double";
    case T_THROTTLED: return "list";
    default: return strcmp(defs[i].name, "cleanup.policy") == 0 ? "list" : "string";
    }
}

void ks_topic_config_copy(ks_topic_config_t *dst, const ks_topic_config_t *src, uint64_t mask)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (mask & (UINT64_C(1) << i))
            memcpy((char *)dst + defs[i].off, (const char *)src + defs[i].off, defs[i].size);
}

const char *ks_topic_config_doc(const char *key)
{
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        if (!strcmp(docs[i].name, key)) return docs[i].doc;
    return "";
}

/*
 * Broker configuration table. Each row names a Kafka broker key, its type, default, bounds
 * and documentation, and where the parsed value lands in kb_config_t. Parsing, validation,
 * DescribeConfigs(BROKER) and docs/configuration.md (build/depot --print-config-doc) are all
 * driven from the rows, so they cannot drift apart.
 *
 * Time keys with several units (log.retention.hours/minutes/ms, log.roll.hours/ms) write the
 * same field; rows are ordered coarse to fine and the finer ones have no default, so the most
 * specific key that was set wins, as in Kafka.
 */
#include "broker/core/config.h"
#include "broker/net/limits.h"
#include "broker/net/listener.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    T_INT,
    T_LONG,
    T_BOOL,
    T_ENUM,
    T_DIRS,
    T_LISTENERS,
    T_ADVERTISED,
    T_PROTOMAP,
    T_STR,
    T_DOUBLE
} vtype_t;

typedef struct entry entry_t;
struct entry {
    kb_config_info_t info;
    vtype_t type;
    const char *def; /* NULL: applied only when set */
    int64_t min, max;
    ptrdiff_t off;              /* destination in kb_config_t (int32/int64/bool/int) */
    int width;                  /* 4 or 8 for T_INT/T_LONG/T_ENUM; 1 for T_BOOL; T_STR: the
                                 * size of the char array */
    int64_t scale;              /* stored = value * scale (time units); 0 = 1 */
    const char *const *choices; /* T_ENUM, NULL-terminated; stored as the index */
    const char *alias;          /* an older name for the same key */
};

static const char *const full_policies[] = {"reject", "delete-oldest", NULL};
static const char *const registry_auth[] = {"NONE", "BASIC", NULL};
static const char *const ts_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const client_auths[] = {"none", "requested", "required", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
/* Indexes are KS_CLEANUP_* (storage/ks.h). */
static const char *const cleanup_policies[] = {"delete", "compact", "compact,delete", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

#define OFF(f) offsetof(kb_config_t, f)
#define TOFF(f) offsetof(kb_config_t, topic_defaults.f)
#define I32MAX INT32_MAX
#define I64MAX INT64_MAX
#define HOUR_MS 3600000
#define MIN_MS 60000

/* clang-format off */
static const entry_t table[] = {
    {{"listeners", "Where to listen: comma-separated NAME://host:port, one per listener (at "
      "most 8), e.g. PLAINTEXT://:9092,INTERNAL://127.0.0.1:9094. NAME is the listener name "
      "(its security protocol comes from listener.security.protocol.map); an empty host or "
      "0.0.0.0 listens on every interface; port 0 picks a free port. PLAINTEXT and "
      "SASL_PLAINTEXT are served; SSL and SASL_SSL wait for TLS.", KB_CT_LIST, NULL}, T_LISTENERS,
      "PLAINTEXT://127.0.0.1:9092", 0, 0, OFF(listeners), 0, 0, NULL, NULL},
    {{"listener.security.protocol.map", "Security protocol of each listener name, "
      "NAME:PROTOCOL comma-separated (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). A value given "
      "replaces the default, so it must cover every listener.", KB_CT_STRING, NULL},
      T_PROTOMAP, "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
      0, 0, OFF(protocol_map), 0, 0, NULL, NULL},
    {{"advertised.listeners", "The address clients are told to connect to, per listener name "
      "(NAME://host:port, comma-separated): Metadata, FindCoordinator and DescribeCluster "
      "answer with the address of the listener the client came in on. A listener not named "
      "here advertises its own address, a wildcard host replaced by this machine's host "
      "name.", KB_CT_LIST, NULL}, T_ADVERTISED, NULL, 0, 0, 0, 0, 0, NULL, NULL},
    {{"log.dirs", "Comma-separated directories for partition logs. Partitions are spread "
      "across them.", KB_CT_LIST, NULL}, T_DIRS, "./data", 0, 0, OFF(log_dirs),
      0, 0, NULL, "log.dir"},
    {{"node.id", "This broker's id, reported in Metadata as leader, replica and controller.",
      KB_CT_INT, NULL}, T_INT, "1", 0, I32MAX, OFF(node_id), 4, 0, NULL,
      "broker.id"},
    {{"num.partitions", "Partitions of auto-created topics and of CreateTopics with "
      "num_partitions -1.", KB_CT_INT, NULL}, T_INT, "1", 1, 10000, OFF(num_partitions), 4, 0,
      NULL, NULL},
    {{"auto.create.topics.enable", "Create a topic when a client asks Metadata for one that "
      "does not exist.", KB_CT_BOOLEAN, NULL}, T_BOOL, "true", 0, 0,
      OFF(auto_create_topics_enable), 1, 0, NULL, NULL},
    {{"delete.topic.enable", "Allow DeleteTopics.", KB_CT_BOOLEAN, NULL}, T_BOOL, "true", 0, 0,
      OFF(delete_topic_enable), 1, 0, NULL, NULL},
    {{"log.segment.bytes", "Maximum size of one log segment file; a new segment is rolled "
      "when it would be exceeded.", KB_CT_INT, "segment.bytes"}, T_INT, "1073741824", 14,
      I32MAX, TOFF(segment_bytes), 8, 0, NULL, NULL},
    {{"log.roll.hours", "Roll a new segment after this many hours even if it is not full "
      "(log.roll.ms wins when set).", KB_CT_INT, NULL}, T_INT, "168", 1, I32MAX,
      TOFF(segment_ms), 8, HOUR_MS, NULL, NULL},
    {{"log.roll.ms", "Roll a new segment after this many milliseconds.", KB_CT_LONG,
      "segment.ms"}, T_LONG, NULL, 1, I64MAX, TOFF(segment_ms), 8, 0, NULL, NULL},
    {{"log.retention.hours", "Delete segments older than this many hours (-1 = forever; "
      "log.retention.minutes and log.retention.ms win when set).", KB_CT_INT, NULL}, T_INT,
      "168", -1, I32MAX, TOFF(retention_ms), 8, HOUR_MS, NULL, NULL},
    {{"log.retention.minutes", "Delete segments older than this many minutes (-1 = forever).",
      KB_CT_INT, NULL}, T_INT, NULL, -1, I32MAX, TOFF(retention_ms), 8, MIN_MS, NULL, NULL},
    {{"log.retention.ms", "Delete segments older than this many milliseconds (-1 = forever).",
      KB_CT_LONG, "retention.ms"}, T_LONG, NULL, -1, I64MAX, TOFF(retention_ms), 8, 0, NULL,
      NULL},
    {{"log.retention.bytes", "Delete the oldest segments of a partition while it is larger "
      "than this (-1 = no size limit).", KB_CT_LONG, "retention.bytes"}, T_LONG, "-1", -1,
      I64MAX, TOFF(retention_bytes), 8, 0, NULL, NULL},
    {{"log.index.interval.bytes", "Bytes of log between two entries of the offset index.",
      KB_CT_INT, "index.interval.bytes"}, T_INT, "4096", 0, I32MAX,
      TOFF(index_interval_bytes), 4, 0, NULL, NULL},
    {{"log.flush.interval.messages", "fsync a partition after this many messages (acks=all "
      "produce requests always wait for their own fsync).", KB_CT_LONG, "flush.messages"},
      T_LONG, "9223372036854775807", 1, I64MAX, TOFF(flush_messages), 8, 0, NULL, NULL},
    {{"log.flush.interval.ms", "fsync dirty partitions at least this often.", KB_CT_LONG,
      "flush.ms"}, T_LONG, "9223372036854775807", 0, I64MAX, TOFF(flush_ms), 8, 0, NULL, NULL},
    {{"message.max.bytes", "Largest record batch accepted (topic default for "
      "max.message.bytes).", KB_CT_INT, "max.message.bytes"}, T_INT, "1048588", 0, I32MAX,
      OFF(message_max_bytes), 4, 0, NULL, NULL},
    {{"socket.request.max.bytes", "Largest request frame accepted; a bigger one closes the "
      "connection.", KB_CT_INT, NULL}, T_INT, "104857600", 1, I32MAX,
      OFF(socket_request_max_bytes), 4, 0, NULL, NULL},
    {{"fetch.max.bytes", "Upper bound on the bytes one Fetch response carries.", KB_CT_INT,
      NULL}, T_INT, "57671680", 1024, I32MAX, OFF(fetch_max_bytes), 4, 0, NULL, NULL},
    {{"fetch.long.poll.max.ms", "Depot: longest a Fetch waits for data; a larger max_wait_ms "
      "from a client is shortened to this (Kafka has no cap; clients ask 500 ms by default).",
      KB_CT_INT, NULL}, T_INT, "30000", 1, I32MAX, OFF(fetch_max_wait_cap_ms), 4, 0, NULL,
      NULL},
    {{"max.connections", "Most client connections open at once, across all listeners; one "
      "more is accepted and closed at once (logged).", KB_CT_INT, NULL}, T_INT, "2147483647", 0,
      I32MAX, OFF(max_connections), 4, 0, NULL, NULL},
    {{"max.connections.per.ip", "Most connections open at once from one IP address; one more "
      "is accepted and closed at once.", KB_CT_INT, NULL}, T_INT, "2147483647", 0, I32MAX,
      OFF(max_connections_per_ip), 4, 0, NULL, NULL},
    {{"max.connections.per.ip.overrides", "Per-address exceptions to max.connections.per.ip, "
      "host:count comma-separated (e.g. 10.0.0.5:500,scada-gw:50); a host name is resolved "
      "once at start.", KB_CT_STRING, NULL}, T_STR, "", 0, 0,
      OFF(max_connections_per_ip_overrides),
      (int)sizeof(((kb_config_t *)0)->max_connections_per_ip_overrides), 0, NULL, NULL},
    {{"connections.max.idle.ms", "Close a connection that sent no complete request for this "
      "long while nothing of it is pending or being written (-1 = never). Also ends half-open "
      "connections whose client vanished.", KB_CT_LONG, NULL}, T_LONG, "600000", -1, I64MAX,
      OFF(connections_max_idle_ms), 8, 0, NULL, NULL},
    {{"socket.read.timeout.ms", "Depot: a request frame must arrive completely within this "
      "long of its first byte, or the connection is closed (a client dribbling bytes, "
      "slowloris). Raise it for very large requests over slow links.", KB_CT_LONG, NULL},
      T_LONG, "60000", 1, I64MAX, OFF(socket_read_timeout_ms), 8, 0, NULL, NULL},
    {{"socket.write.timeout.ms", "Depot: close a connection whose queued responses made no "
      "progress for this long (a client that stopped reading). Progress is the socket taking "
      "more bytes, which the kernel reports in chunks of about a third of its send buffer, so "
      "keep this well above (send buffer / 3) / the slowest client's read rate.", KB_CT_LONG,
      NULL}, T_LONG,
      "60000", 1, I64MAX, OFF(socket_write_timeout_ms), 8, 0, NULL, NULL},
    {{"queued.max.request.bytes", "Bytes of requests read but not yet answered, across all "
      "connections, above which no more requests are read until some are answered (-1 = no "
      "limit). Kafka's default is -1; Depot bounds it so a few clients cannot take all "
      "memory.", KB_CT_LONG, NULL}, T_LONG, "268435456", -1, I64MAX,
      OFF(queued_max_request_bytes), 8, 0, NULL, NULL},
    {{"log.dirs.max.bytes", "Depot: flash budget for all log dirs together, in bytes (0 = no "
      "budget; the disk filling up still fails appends).", KB_CT_LONG, NULL}, T_LONG, "0", 0,
      I64MAX, OFF(dirs_max_bytes), 8, 0, NULL, NULL},
    {{"log.dirs.full.policy", "Depot: what happens at the budget: reject (produce fails with a "
      "retriable error) or delete-oldest (the oldest segments of any partition are deleted).",
      KB_CT_STRING, NULL}, T_ENUM, "reject", 0, 0, OFF(full_policy), 4, 0, full_policies, NULL},
    {{"max.open.files", "Depot: cap on segment and index file descriptors held open across "
      "all partitions (least recently used are closed).", KB_CT_INT, NULL}, T_INT, "1024", 16,
      1000000, OFF(max_open_files), 4, 0, NULL, NULL},
    {{"metrics.listeners", "Depot: where the metrics listener serves /metrics (Prometheus), the "
      "dashboard at /, /api/overview, /healthz and /readyz, as http://host:port "
      "(comma-separated for several). Empty: off.", KB_CT_LIST, NULL}, T_STR, "", 0, 0,
      OFF(metrics_listeners), (int)sizeof(((kb_config_t *)0)->metrics_listeners), 0, NULL,
      NULL},
    {{"log.format", "Depot: broker log lines on stderr as text (\"time LEVEL message\") or json "
      "(one object per line: ts, level, msg), for journald and log shippers.", KB_CT_STRING,
      NULL}, T_ENUM, "text", 0, 0, OFF(log_format), 4, 0, log_formats, NULL},
    {{"log.message.timestamp.type", "CreateTime keeps the producer's timestamps; "
      "LogAppendTime stamps batches with the broker's clock.", KB_CT_STRING,
      "message.timestamp.type"}, T_ENUM, "CreateTime", 0, 0, TOFF(timestamp_type), 4, 0,
      ts_types, NULL},
    {{"group.min.session.timeout.ms", "Smallest session timeout a consumer group member may "
      "ask for.", KB_CT_INT, NULL}, T_INT, "6000", 1, I32MAX,
      OFF(group_min_session_timeout_ms), 4, 0, NULL, NULL},
    {{"group.max.session.timeout.ms", "Largest session timeout a consumer group member may "
      "ask for.", KB_CT_INT, NULL}, T_INT, "1800000", 1, I32MAX,
      OFF(group_max_session_timeout_ms), 4, 0, NULL, NULL},
    {{"group.initial.rebalance.delay.ms", "How long the first rebalance of an empty group "
      "waits for more members to join.", KB_CT_INT, NULL}, T_INT, "3000", 0, I32MAX,
      OFF(group_initial_rebalance_delay_ms), 4, 0, NULL, NULL},
    {{"offsets.retention.minutes", "Committed offsets of an empty group are dropped after "
      "this many minutes.", KB_CT_INT, NULL}, T_INT, "10080", 1, I32MAX,
      OFF(offsets_retention_minutes), 8, 0, NULL, NULL},
    {{"producer.id.expiration.ms", "Idempotent producer state is forgotten after this long "
      "without a write.", KB_CT_INT, NULL}, T_INT, "86400000", 1, I32MAX,
      OFF(producer_id_expiration_ms), 8, 0, NULL, NULL},
    {{"sasl.enabled.mechanisms", "SASL mechanisms offered on SASL_* listeners: any of PLAIN, "
      "SCRAM-SHA-256, SCRAM-SHA-512 (PLAIN is checked against the stored SCRAM credentials).",
      KB_CT_LIST, NULL}, T_STR, "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN", 0, 0,
      OFF(sasl_enabled_mechanisms), (int)sizeof(((kb_config_t *)0)->sasl_enabled_mechanisms),
      0, NULL, NULL},
    {{"connections.max.reauth.ms", "SASL session lifetime (KIP-368): a client must "
      "re-authenticate within this long or its connection is closed (0 = sessions never "
      "expire).", KB_CT_LONG, NULL}, T_LONG, "0", 0, I64MAX, OFF(connections_max_reauth_ms), 8,
      0, NULL, NULL},
    {{"authorizer.class.name", "Turns ACL authorization on when set to any value (a Kafka "
      "authorizer class name such as org.apache.kafka.metadata.authorizer.StandardAuthorizer "
      "selects Depot's built-in authorizer).", KB_CT_STRING, NULL}, T_STR, "", 0, 0,
      OFF(authorizer_class_name), (int)sizeof(((kb_config_t *)0)->authorizer_class_name), 0,
      NULL, NULL},
    {{"super.users", "Principals that pass every ACL check, separated by ';' (e.g. "
      "User:admin;User:CN=ops).", KB_CT_LIST, NULL}, T_STR, "", 0, 0, OFF(super_users),
      (int)sizeof(((kb_config_t *)0)->super_users), 0, NULL, NULL},
    {{"allow.everyone.if.no.acl.found", "With an authorizer: allow an operation on a "
      "resource that has no ACL at all.", KB_CT_BOOLEAN, NULL}, T_BOOL, "false", 0, 0,
      OFF(allow_everyone_if_no_acl_found), 1, 0, NULL, NULL},
    {{"ssl.keystore.type", "Format of the key store: PEM (KIP-651).", KB_CT_STRING, NULL}, T_STR, "PEM", 0, 0, OFF(ssl_keystore_type),
      (int)sizeof(((kb_config_t *)0)->ssl_keystore_type), 0, NULL, NULL},
    {{"ssl.keystore.location", "PEM file with the broker's private key and certificate chain (SSL and SASL_SSL listeners).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_keystore_location),
      (int)sizeof(((kb_config_t *)0)->ssl_keystore_location), 0, NULL, NULL},
    {{"ssl.keystore.certificate.chain", "The certificate chain as PEM text (instead of ssl.keystore.location; \\n for newlines).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_keystore_certificate_chain),
      (int)sizeof(((kb_config_t *)0)->ssl_keystore_certificate_chain), 0, NULL, NULL},
    {{"ssl.keystore.key", "The private key as PEM text (with ssl.keystore.certificate.chain).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_keystore_key),
      (int)sizeof(((kb_config_t *)0)->ssl_keystore_key), 0, NULL, NULL},
    {{"ssl.key.password", "Password of an encrypted private key.", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_key_password),
      (int)sizeof(((kb_config_t *)0)->ssl_key_password), 0, NULL, NULL},
    {{"ssl.truststore.type", "Format of the trust store: PEM.", KB_CT_STRING, NULL}, T_STR, "PEM", 0, 0, OFF(ssl_truststore_type),
      (int)sizeof(((kb_config_t *)0)->ssl_truststore_type), 0, NULL, NULL},
    {{"ssl.truststore.location", "PEM file of the CAs that sign client certificates.", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_truststore_location),
      (int)sizeof(((kb_config_t *)0)->ssl_truststore_location), 0, NULL, NULL},
    {{"ssl.truststore.certificates", "The trusted CAs as PEM text (instead of ssl.truststore.location).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(ssl_truststore_certificates),
      (int)sizeof(((kb_config_t *)0)->ssl_truststore_certificates), 0, NULL, NULL},
    {{"ssl.client.auth", "Client certificates on SSL listeners: none, requested or required. "
      "With one the principal is User:<subject DN, RFC 2253>.", KB_CT_STRING, NULL}, T_ENUM,
      "none", 0, 0, OFF(ssl_client_auth), 4, 0, client_auths, NULL},
    {{"ssl.handshake.timeout.ms", "Depot: a TLS handshake not finished within this long closes "
      "the connection.", KB_CT_LONG, NULL}, T_LONG, "10000", 100, I64MAX,
      OFF(ssl_handshake_timeout_ms), 8, 0, NULL, NULL},
    {{"audit.enabled", "Depot: keep the audit trail in the internal topic __audit "
      "(docs/security.md).", KB_CT_BOOLEAN, NULL}, T_BOOL, "false", 0, 0, OFF(audit_enabled), 1,
      0, NULL, NULL},
    {{"audit.event.types", "Depot: what the audit trail records, comma-separated: "
      "authentication, authorization (denials), change, access (first produce/fetch/commit per "
      "principal and resource, then counts).", KB_CT_LIST, NULL}, T_STR,
      "authentication,authorization,change,access", 0, 0, OFF(audit_event_types),
      (int)sizeof(((kb_config_t *)0)->audit_event_types), 0, NULL, NULL},
    {{"audit.summary.interval.ms", "Depot: how often repeated accesses are written as one "
      "summary record per principal, operation and resource.", KB_CT_LONG, NULL}, T_LONG,
      "60000", 1000, I64MAX, OFF(audit_summary_interval_ms), 8, 0, NULL, NULL},
    {{"audit.retention.ms", "Depot: retention.ms of __audit when it is created (-1 = keep "
      "forever).", KB_CT_LONG, NULL}, T_LONG, "-1", -1, I64MAX, OFF(audit_retention_ms), 8, 0,
      NULL, NULL},
    {{"schema.registry.listeners", "Depot: where the built-in schema registry (Confluent's REST "
      "API) listens, as http://host:port (comma-separated for several). Empty: no registry.",
      KB_CT_LIST, NULL}, T_STR, "", 0, 0, OFF(schema_registry_listeners),
      (int)sizeof(((kb_config_t *)0)->schema_registry_listeners), 0, NULL, NULL},
    {{"schema.registry.authentication.method", "Depot: NONE, or BASIC: every schema registry "
      "request needs HTTP basic auth with a broker user's password (its SCRAM credential, as "
      "SASL/PLAIN checks it).", KB_CT_STRING, NULL}, T_ENUM, "NONE", 0, 0,
      OFF(schema_registry_auth), 4, 0, registry_auth, NULL},
    {{"log.level", "Broker log verbosity on stderr: error, warn, info or debug.", KB_CT_STRING,
      NULL}, T_ENUM, "info", 0, 0, OFF(log_level), 4, 0, log_levels, NULL},
    {{"log.cleanup.policy", "What happens to old segments: delete (retention by time and "
      "size), compact (keep the latest record of every key; records need keys), or both.",
      KB_CT_LIST, "cleanup.policy"}, T_ENUM, "delete", 0, 0, TOFF(cleanup_policy), 4, 0,
      cleanup_policies, NULL},
    {{"log.cleaner.enable", "Run the log cleaner threads that compact topics with "
      "cleanup.policy=compact (false: such topics are never cleaned).", KB_CT_BOOLEAN, NULL},
      T_BOOL, "true", 0, 0, OFF(cleaner.enable), 1, 0, NULL, NULL},
    {{"log.cleaner.threads", "Log cleaner threads (each cleans one partition at a time).",
      KB_CT_INT, NULL}, T_INT, "1", 1, 16, OFF(cleaner.threads), 4, 0, NULL, NULL},
    {{"log.cleaner.dedupe.buffer.size", "Memory for the key maps of all cleaner threads "
      "together (24 bytes a key); a partition with more keys is cleaned in several passes.",
      KB_CT_LONG, NULL}, T_LONG, "134217728", 1024, I64MAX, OFF(cleaner.dedupe_buffer_size),
      8, 0, NULL, NULL},
    {{"log.cleaner.io.max.bytes.per.second", "Cap on the cleaner's reads plus writes, in "
      "bytes per second, so cleaning never starves produce on slow flash.", KB_CT_DOUBLE,
      NULL}, T_DOUBLE, "1.7976931348623157E308", 1, I64MAX, OFF(cleaner.io_max_bytes_per_second),
      8, 0, NULL, NULL},
    {{"log.cleaner.backoff.ms", "How long a cleaner thread sleeps when no partition is dirty "
      "enough.", KB_CT_LONG, NULL}, T_LONG, "15000", 1, I64MAX, OFF(cleaner.backoff_ms), 8, 0,
      NULL, NULL},
    {{"log.cleaner.min.cleanable.ratio", "Clean a partition once its uncleaned bytes are this "
      "share of its cleanable bytes.", KB_CT_DOUBLE, "min.cleanable.dirty.ratio"}, T_DOUBLE,
      "0.5", 0, 1, TOFF(min_cleanable_dirty_ratio), 8, 0, NULL, NULL},
    {{"log.cleaner.min.compaction.lag.ms", "A record stays uncompacted at least this long.",
      KB_CT_LONG, "min.compaction.lag.ms"}, T_LONG, "0", 0, I64MAX,
      TOFF(min_compaction_lag_ms), 8, 0, NULL, NULL},
    {{"log.cleaner.max.compaction.lag.ms", "A record becomes eligible for compaction at most "
      "this long after it was written (rolls the active segment of a compacted topic).",
      KB_CT_LONG, "max.compaction.lag.ms"}, T_LONG, "9223372036854775807", 1, I64MAX,
      TOFF(max_compaction_lag_ms), 8, 0, NULL, NULL},
    {{"log.cleaner.delete.retention.ms", "How long a tombstone (null value) stays in a "
      "compacted topic after the cleaner first saw it.", KB_CT_LONG, "delete.retention.ms"},
      T_LONG, "86400000", 0, I64MAX, TOFF(delete_retention_ms), 8, 0, NULL, NULL},
};
/* clang-format on */

#define N_ENTRIES ((int)(sizeof table / sizeof table[0]))

int kb_config_count(void)
{
    return N_ENTRIES;
}

const kb_config_info_t *kb_config_info(int i)
{
    return i >= 0 && i < N_ENTRIES ? &table[i].info : NULL;
}

int kb_config_find(const char *name)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (!strcmp(table[i].info.name, name) || (table[i].alias && !strcmp(table[i].alias, name)))
            return i;
    return -1;
}

int kb_config_find_by_topic_key(const char *topic_key)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (table[i].info.topic_key && !strcmp(table[i].info.topic_key, topic_key)) return i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing one value                                                                            */

static void *field(kb_config_t *cfg, const entry_t *e)
{
    return (char *)cfg + e->off;
}

static const void *cfield(const kb_config_t *cfg, const entry_t *e)
{
    return (const char *)cfg + e->off;
}

static int parse_i64(const char *v, int64_t *out)
{
    if (!*v) return -1;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

static void store_int(kb_config_t *cfg, const entry_t *e, int64_t v)
{
    if (e->width == 8)
        *(int64_t *)field(cfg, e) = v;
    else
        *(int32_t *)field(cfg, e) = (int32_t)v;
}

static void free_dirs(kb_config_t *cfg)
{
    for (int i = 0; i < cfg->n_log_dirs; i++)
        free(cfg->log_dirs[i]);
    cfg->n_log_dirs = 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

static int parse_dirs(kb_config_t *cfg, const char *v, char *why, size_t whylen)
{
    free_dirs(cfg);
    char *copy = strdup(v);
    if (!copy) return K_ERR_NOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok) continue;
        if (cfg->n_log_dirs == (int)(sizeof cfg->log_dirs / sizeof cfg->log_dirs[0])) {
            snprintf(why, whylen, "at most %d directories",
                     (int)(sizeof cfg->log_dirs / sizeof cfg->log_dirs[0]));
            free(copy);
            return K_ERR_INVAL;
        }
        cfg->log_dirs[cfg->n_log_dirs] = strdup(tok);
        if (!cfg->log_dirs[cfg->n_log_dirs]) {
            free(copy);
            return K_ERR_NOMEM;
        }
        cfg->n_log_dirs++;
    }
    free(copy);
    if (cfg->n_log_dirs == 0) {
        snprintf(why, whylen, "no directory given");
        return K_ERR_INVAL;
    }
    return 0;
}

/* A double within [min, max] (max INT64_MAX: no upper bound). */
static int parse_double(kb_config_t *cfg, const entry_t *e, const char *v, char *why,
                        size_t whylen)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= (double)e->min) ||
        (e->max != I64MAX && d > (double)e->max)) {
        if (e->max == I64MAX)
            snprintf(why, whylen, "must be a number >= %" PRId64, e->min);
        else
            snprintf(why, whylen, "must be a number between %" PRId64 " and %" PRId64, e->min,
                     e->max);
        return K_ERR_INVAL;
    }
    *(double *)field(cfg, e) = d;
    return 0;
}

/* Applies one value; on failure writes the reason (without the key) to why. */
static int apply(kb_config_t *cfg, const entry_t *e, const char *v, char *why, size_t whylen)
{
    int64_t x;
    switch (e->type) {
    case T_INT:
    case T_LONG:
        if (parse_i64(v, &x)) {
            snprintf(why, whylen, "not an integer");
            return K_ERR_INVAL;
        }
        if (x < e->min || x > e->max) {
            snprintf(why, whylen, "must be between %" PRId64 " and %" PRId64, e->min, e->max);
            return K_ERR_INVAL;
        }
        if (e->scale) {
            if (x < 0)
                x = -1; /* negative durations mean "forever" */
            else if (x > INT64_MAX / e->scale)
                x = INT64_MAX;
            else
                x *= e->scale;
        }
        store_int(cfg, e, x);
        return 0;
    case T_BOOL:
        if (!strcasecmp(v, "true"))
            *(bool *)field(cfg, e) = true;
        else if (!strcasecmp(v, "false"))
            *(bool *)field(cfg, e) = false;
        else {
            snprintf(why, whylen, "must be true or false");
            return K_ERR_INVAL;
        }
        return 0;
    case T_ENUM:
        for (int i = 0; e->choices[i]; i++)
            if (!strcasecmp(v, e->choices[i])) {
                *(int *)field(cfg, e) = i;
                return 0;
            }
        {
            size_t n = (size_t)snprintf(why, whylen, "must be one of");
            for (int i = 0; e->choices[i] && n < whylen; i++)
                n += (size_t)snprintf(why + n, whylen - n, "%s %s", i ? "," : "", e->choices[i]);
        }
        return K_ERR_INVAL;
    case T_DIRS:
        return parse_dirs(cfg, v, why, whylen);
    case T_DOUBLE:
        return parse_double(cfg, e, v, why, whylen);
    case T_STR:
        if (strlen(v) >= (size_t)e->width) {
            snprintf(why, whylen, "longer than %d bytes", e->width - 1);
            return K_ERR_INVAL;
        }
        memcpy(field(cfg, e), v, strlen(v) + 1);
        return 0;
    case T_LISTENERS:
        return kb_listeners_parse(v, cfg->listeners, KB_MAX_LISTENERS, &cfg->n_listeners, why,
                                  whylen);
    case T_ADVERTISED: { /* checked here, merged into listeners[] by finish() */
        kb_listener_t scratch[KB_MAX_LISTENERS];
        int n = 0;
        return kb_listeners_parse(v, scratch, KB_MAX_LISTENERS, &n, why, whylen);
    }
    case T_PROTOMAP:
        return kb_protocol_map_parse(v, cfg->protocol_map,
                                     (int)(sizeof cfg->protocol_map / sizeof cfg->protocol_map[0]),
                                     &cfg->n_protocol_map, why, whylen);
    }
    return K_ERR_INVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Sources: the file, then --set                                                                */

typedef struct {
    char *val[N_ENTRIES]; /* the last value given for each row (owned), NULL = not given */
    bool via_alias[N_ENTRIES];
    int n_warnings;
} given_t;

static void given_free(given_t *g)
{
    for (int i = 0; i < N_ENTRIES; i++)
        free(g->val[i]);
}

/* Records key=value. The canonical name beats its alias whatever the order (Kafka: log.dirs
 * beats log.dir). */
static int give(given_t *g, const char *key, const char *value, const char *where)
{
    int i = kb_config_find(key);
    if (i < 0) {
        kb_log(KB_LOG_WARN, "config: unknown key '%s' (%s) ignored", key, where);
        g->n_warnings++;
        return 0;
    }
    bool alias = strcmp(table[i].info.name, key) != 0;
    if (alias && g->val[i] && !g->via_alias[i]) return 0;
    char *copy = strdup(value);
    if (!copy) return K_ERR_NOMEM;
    free(g->val[i]);
    g->val[i] = copy;
    g->via_alias[i] = alias;
    return 0;
}

static int read_file(given_t *g, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return K_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        size_t k = strcspn(s, "=: \t");
        char *v = s + k;
        if (*v) {
            *v++ = 0;
            v = trim(v);
            if (*v == '=' || *v == ':') /* "key = value" */
                v = trim(v + 1);
        }
        char where[64];
        snprintf(where, sizeof where, "%.40s line %d", path, lineno);
        if ((rc = give(g, s, v, where)) < 0) break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static int finish(kb_config_t *cfg, const given_t *g, char *err, size_t errlen)
{
    /* Protocols and advertised addresses per listener, now that all three keys are known. */
    int rc = kb_listeners_resolve(cfg, g->val[kb_config_find("advertised.listeners")], err, errlen);
    if (rc < 0) return rc;
    if (cfg->group_min_session_timeout_ms > cfg->group_max_session_timeout_ms) {
        snprintf(err, errlen,
                 "group.min.session.timeout.ms (%d) is larger than group.max.session.timeout.ms"
                 " (%d)",
                 cfg->group_min_session_timeout_ms, cfg->group_max_session_timeout_ms);
        return K_ERR_INVAL;
    }
    if (cfg->queued_max_request_bytes > 0 &&
        cfg->queued_max_request_bytes < cfg->socket_request_max_bytes) {
        snprintf(err, errlen,
                 "queued.max.request.bytes (%" PRId64 ") must be at least socket.request.max.bytes"
                 " (%d), or -1",
                 cfg->queued_max_request_bytes, cfg->socket_request_max_bytes);
        return K_ERR_INVAL;
    }
    if ((rc = kb_ip_overrides_parse(cfg->max_connections_per_ip_overrides, NULL, 0, NULL, err,
                                    errlen)) < 0)
        return rc;
    if (cfg->max_connections_per_ip == 0 && !cfg->max_connections_per_ip_overrides[0]) {
        snprintf(err, errlen,
                 "max.connections.per.ip is 0: set max.connections.per.ip.overrides for the "
                 "addresses that may connect (as Kafka requires)");
        return K_ERR_INVAL;
    }
    cfg->topic_defaults.max_message_bytes = cfg->message_max_bytes;
    return 0;
}

int kb_config_load(kb_config_t *cfg, const char *path, const char *const *sets, int n_sets,
                   char *err, size_t errlen, int *n_warnings)
{
    memset(cfg, 0, sizeof *cfg);
    ks_topic_config_default(&cfg->topic_defaults);
    if (n_warnings) *n_warnings = 0;
    given_t g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    if (path) rc = read_file(&g, path, err, errlen);
    for (int i = 0; rc == 0 && i < n_sets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) {
            snprintf(err, errlen, "--set %s: expected KEY=VALUE", sets[i]);
            rc = K_ERR_INVAL;
            break;
        }
        char key[256];
        size_t kl = (size_t)(eq - sets[i]);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, sets[i], kl);
        key[kl] = 0;
        char where[300];
        snprintf(where, sizeof where, "--set %s", key);
        rc = give(&g, trim(key), eq + 1, where);
    }
    for (int i = 0; rc == 0 && i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        const char *v = g.val[i] ? g.val[i] : e->def;
        if (!v) continue;
        char why[200] = "";
        int arc = apply(cfg, e, v, why, sizeof why);
        if (arc == K_ERR_NOMEM) {
            snprintf(err, errlen, "out of memory");
            rc = arc;
        } else if (arc < 0) {
            snprintf(err, errlen, "%s: invalid value '%.60s': %s", e->info.name, v, why);
            rc = K_ERR_INVAL;
        }
    }
    if (rc == 0) rc = finish(cfg, &g, err, errlen);
    if (n_warnings) *n_warnings = g.n_warnings;
    given_free(&g);
    if (rc < 0) kb_config_deinit(cfg);
    return rc;
}

void kb_config_deinit(kb_config_t *cfg)
{
    free_dirs(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering values back (DescribeConfigs) and the documentation                               */

static int64_t load_int(const kb_config_t *cfg, const entry_t *e)
{
    return e->width == 8 ? *(const int64_t *)cfield(cfg, e) : *(const int32_t *)cfield(cfg, e);
}

static void render(const kb_config_t *cfg, const entry_t *e, char *buf, size_t len)
{
    switch (e->type) {
    case T_INT:
    case T_LONG: {
        int64_t x = load_int(cfg, e);
        if (e->scale && x > 0) x /= e->scale;
        snprintf(buf, len, "%" PRId64, x);
        return;
    }
    case T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)cfield(cfg, e) ? "true" : "false");
        return;
    case T_DOUBLE:
        snprintf(buf, len, "%.17g", *(const double *)cfield(cfg, e));
        return;
    case T_ENUM: {
        int x = *(const int *)cfield(cfg, e);
        int n = 0;
        while (e->choices[n])
            n++;
        snprintf(buf, len, "%s", x >= 0 && x < n ? e->choices[x] : "");
        return;
    }
    case T_DIRS: {
        size_t n = 0;
        buf[0] = 0;
        for (int i = 0; i < cfg->n_log_dirs && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "," : "", cfg->log_dirs[i]);
        return;
    }
    case T_STR:
        snprintf(buf, len, "%s", (const char *)cfield(cfg, e));
        return;
    case T_LISTENERS:
    case T_ADVERTISED:
        kb_listeners_render(cfg->listeners, cfg->n_listeners, e->type == T_ADVERTISED, buf, len);
        return;
    case T_PROTOMAP:
        kb_protocol_map_render(cfg->protocol_map, cfg->n_protocol_map, buf, len);
        return;
    }
}

void kb_config_value(const kb_config_t *cfg, int i, char *buf, size_t len)
{
    if (len == 0) return;
    buf[0] = 0;
    if (i >= 0 && i < N_ENTRIES) render(cfg, &table[i], buf, len);
}

bool kb_config_is_default(const kb_config_t *cfg, int i)
{
    if (i < 0 || i >= N_ENTRIES) return false;
    const entry_t *e = &table[i];
    if (e->type == T_ADVERTISED) {
        for (int k = 0; k < cfg->n_listeners; k++) {
            const kb_listener_t *l = &cfg->listeners[k];
            if (strcmp(l->advertised_host, l->host) || l->advertised_port != l->port)
                return false;
        }
        return true;
    }
    kb_config_t d;
    memset(&d, 0, sizeof d);
    ks_topic_config_default(&d.topic_defaults);
    char why[200];
    /* Rows without a default derive from a coarser row: compare that row's default. */
    const entry_t *src = e;
    while (!src->def && src > table && src[-1].off == e->off)
        src--;
    if (!src->def) return false;
    if (apply(&d, src, src->def, why, sizeof why) < 0) {
        kb_config_deinit(&d);
        return false;
    }
    char a[1024], b[1024];
    render(cfg, e, a, sizeof a);
    render(&d, e, b, sizeof b);
    kb_config_deinit(&d);
    return strcmp(a, b) == 0;
}

static const char *type_name(const entry_t *e)
{
    switch (e->type) {
    case T_INT:
        return "int";
    case T_LONG:
        return "long";
    case T_BOOL:
        return "boolean";
    case T_ENUM:
        return "string";
    case T_DIRS:
        return "list";
    case T_LISTENERS:
    case T_ADVERTISED:
        return "list";
    case T_PROTOMAP:
    case T_STR:
        return "string";
    case T_DOUBLE:
        return "double";
    }
    return "";
}

/* The topic-level keys (storage/config.c's table): every one a Kafka 4.1 broker accepts. */
static void print_topic_doc(FILE *out)
{
    ks_topic_config_t d;
    ks_topic_config_default(&d);
    fprintf(out, "\n## Topic-level configs\n\n"
                 "Every topic config a Kafka 4.1 broker accepts is accepted in CreateTopics, "
                 "AlterConfigs and IncrementalAlterConfigs, validated as Kafka validates it (an "
                 "unknown name or a bad value is refused with INVALID_CONFIG and Kafka's "
                 "message), persisted with the topic and reported by DescribeConfigs with its "
                 "source. The ones marked *accepted* change nothing on a single node. The broker "
                 "keys in the table above that have a topic key are dynamic: AlterConfigs on "
                 "broker `1` (or the cluster default) changes them without a restart, every "
                 "topic without its own override follows at once, and the change is kept in "
                 "`<first log dir>/depot-broker-configs.properties`.\n\n"
                 "| Topic key | Type | Kafka default | Kafka broker default key | On Depot |\n"
                 "|---|---|---|---|---|\n");
    for (const char *const *k = ks_topic_config_keys(); *k; k++) {
        char v[KS_THROTTLED_MAX];
        ks_topic_config_get(&d, *k, v, sizeof v);
        const char *bk = ks_topic_config_broker_key(*k);
        fprintf(out, "| `%s` | %s | `%s` | %s%s%s | %s |\n", *k, ks_topic_config_type(*k), v,
                bk ? "`" : "", bk ? bk : "", bk ? "`" : "", ks_topic_config_doc(*k));
    }
}

void kb_config_print_doc(FILE *out)
{
    fprintf(out, "# Configuration\n\n"
                 "<!-- Generated by `build/depot --print-config-doc` from the table in "
                 "broker/core/config.c; do not edit by hand. -->\n\n"
                 "Depot reads a Kafka-style `server.properties` file (`build/depot --config "
                 "FILE`): one `key=value` (or `key: value`) per line, `#` or `!` starts a "
                 "comment. `--set KEY=VALUE` (repeatable) overrides the file. A bad value stops "
                 "the broker with a message naming the key; an unknown key is logged as a "
                 "warning and ignored.\n\n"
                 "Per-topic overrides use Kafka's topic-level names (`retention.ms`, "
                 "`segment.bytes`, ...) in CreateTopics; the broker key they default from is "
                 "shown in the Topic key column.\n\n"
                 "| Key | Type | Default | Valid values | Topic key | Description |\n"
                 "|---|---|---|---|---|---|\n");
    for (int i = 0; i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        char range[160] = "";
        if (e->type == T_INT || e->type == T_LONG) {
            if (e->max == INT64_MAX)
                snprintf(range, sizeof range, "≥ %" PRId64, e->min);
            else
                snprintf(range, sizeof range, "%" PRId64 " … %" PRId64, e->min, e->max);
        } else if (e->type == T_ENUM) {
            size_t n = 0;
            for (int k = 0; e->choices[k] && n < sizeof range; k++)
                n += (size_t)snprintf(range + n, sizeof range - n, "%s`%s`", k ? ", " : "",
                                      e->choices[k]);
        } else if (e->type == T_BOOL) {
            snprintf(range, sizeof range, "`true`, `false`");
        } else if (e->type == T_DOUBLE) {
            if (e->max == INT64_MAX)
                snprintf(range, sizeof range, "≥ %" PRId64, e->min);
            else
                snprintf(range, sizeof range, "%" PRId64 " … %" PRId64, e->min, e->max);
        }
        fprintf(out, "| `%s`%s%s%s | %s | %s%s%s | %s | %s%s%s | %s |\n", e->info.name,
                e->alias ? " (`" : "", e->alias ? e->alias : "", e->alias ? "`)" : "", type_name(e),
                e->def ? "`" : "", e->def ? e->def : "(unset)", e->def ? "`" : "", range,
                e->info.topic_key ? "`" : "", e->info.topic_key ? e->info.topic_key : "",
                e->info.topic_key ? "`" : "", e->info.doc);
    }
    print_topic_doc(out);
}

/* ------------------------------------------------------------------------------------------ */
/* Dynamic updates (AlterConfigs on the broker)                                                 */

const char *kb_config_default_text(int i)
{
    return i >= 0 && i < N_ENTRIES ? table[i].def : NULL;
}

bool kb_config_is_dynamic(int i)
{
    if (i < 0 || i >= N_ENTRIES) return false;
    /* The topic defaults are read live (storage re-derives every topic from them) and so is
     * the log level; everything else is wired at start (listeners, dirs, budgets). */
    return table[i].info.topic_key != NULL || table[i].off == OFF(log_level);
}

int kb_config_set_dynamic(kb_config_t *cfg, int i, const char *value, char *why, size_t whylen)
{
    if (!kb_config_is_dynamic(i)) {
        snprintf(why, whylen, "cannot be updated dynamically");
        return K_ERR_INVAL;
    }
    int rc = apply(cfg, &table[i], value, why, whylen);
    if (rc < 0) return rc;
    cfg->topic_defaults.max_message_bytes = cfg->message_max_bytes;
    if (table[i].off == OFF(log_level)) kb_log_set_level(cfg->log_level);
    return 0;
}

void kb_config_copy_value(kb_config_t *dst, const kb_config_t *src, int i)
{
    if (!kb_config_is_dynamic(i)) return;
    const entry_t *e = &table[i];
    size_t n = e->type == T_BOOL ? sizeof(bool) : e->type == T_ENUM ? sizeof(int) : (size_t)e->width;
    memcpy((char *)dst + e->off, (const char *)src + e->off, n);
    dst->topic_defaults.max_message_bytes = dst->message_max_bytes;
    if (e->off == OFF(log_level)) kb_log_set_level(dst->log_level);
}

/* Word-wraps text into "# " comment lines of at most ~96 columns. */
static void comment_wrapped(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t n = strlen(p);
        if (n > 94) {
            n = 94;
            while (n > 40 && p[n] != ' ')
                n--;
        }
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

void kb_config_print_properties(FILE *out, const char *const *active, int n_active)
{
    fprintf(out, "# Depot broker configuration (server.properties).\n"
                 "# Generated by `depot --print-config-properties` from the key table; every key\n"
                 "# is listed with its documentation and default, commented out. Uncomment and\n"
                 "# change what you need; restart the broker to apply.\n\n");
    if (n_active > 0) fprintf(out, "# ---- set for this installation ----\n");
    for (int i = 0; i < n_active; i++)
        fprintf(out, "%s\n", active[i]);
    fprintf(out, "\n# ---- every key, with its default ----\n");
    for (int i = 0; i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        fprintf(out, "\n");
        comment_wrapped(out, e->info.doc);
        fprintf(out, "#%s=%s\n", e->info.name, e->def ? e->def : "");
    }
}

/*
 * The broker configuration table: one row per Kafka broker key (type, default, bounds, docs,
 * destination in kb_config_t). config.c parses, validates, renders and documents from it.
 *
 * Time keys with several units (log.retention.hours/minutes/ms, log.roll.hours/ms) write the
 * same field; rows are ordered coarse to fine and the finer ones have no default, so the most
 * specific key that was set wins, as in Kafka.
 */
#include <limits.h>

#include "broker/core/config_int.h"
#include "broker/net/limits.h"
#include "broker/net/listener.h"

static const char *const full_policies[] = {"reject", "delete-oldest", NULL};
static const char *const registry_auth[] = {"NONE", "BASIC", NULL};
static const char *const ts_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const client_auths[] = {"none", "requested", "required", NULL};
static const char *const sr_client_auths[] = {"NONE", "REQUESTED", "REQUIRED", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
/* Indexes are KS_CLEANUP_* (storage/ks.h). */
static const char *const cleanup_policies[] = {"delete", "compact", "compact,delete", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
/* Indexes are KB_UPLINK_EO_* (broker/kb.h). */
static const char *const uplink_eo[] = {"auto", "transactions", "readback", NULL};

#define HOUR_MS 3600000
#define MIN_MS 60000

/* clang-format off */
const entry_t kb_config_table[] = {
    {{"listeners", "Where to listen: comma-separated NAME://host:port, one per listener (at "
      "most 8), e.g. PLAINTEXT://:9092,INTERNAL://127.0.0.1:9094. NAME is the listener name "
      "(its security protocol comes from listener.security.protocol.map); an empty host or "
      "0.0.0.0 listens on every interface; port 0 picks a free port. PLAINTEXT, SSL, "
      "SASL_PLAINTEXT and SASL_SSL are served (docs/security.md).", KB_CT_LIST, NULL}, T_LISTENERS,
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
      "dashboard at /, /api/overview, /healthz and /readyz, as http://host:port or "
      "https://host:port (comma-separated for several; https takes the broker's ssl.* "
      "settings). Empty: off.", KB_CT_LIST, NULL}, T_STR, "", 0, 0,
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
    {{"group.coordinator.rebalance.protocols", "Group protocols served: classic (JoinGroup/"
      "SyncGroup) and consumer (KIP-848 ConsumerGroupHeartbeat, group.protocol=consumer). "
      "classic is always on; without consumer the broker does not advertise "
      "ConsumerGroupHeartbeat/ConsumerGroupDescribe.", KB_CT_LIST, NULL}, T_STR,
      "classic,consumer", 0, 0, OFF(group_rebalance_protocols),
      (int)sizeof(((kb_config_t *)0)->group_rebalance_protocols), 0, NULL, NULL},
    {{"group.consumer.session.timeout.ms", "Consumer groups (group.protocol=consumer): a "
      "member that sends no heartbeat for this long is removed and its partitions are "
      "reassigned.", KB_CT_INT, NULL}, T_INT, "45000", 1000, I32MAX,
      OFF(group_consumer_session_timeout_ms), 4, 0, NULL, NULL},
    {{"group.consumer.heartbeat.interval.ms", "Consumer groups: the heartbeat interval the "
      "coordinator tells members to use.", KB_CT_INT, NULL}, T_INT, "5000", 100, I32MAX,
      OFF(group_consumer_heartbeat_interval_ms), 4, 0, NULL, NULL},
    {{"group.consumer.assignors", "Consumer groups: the server-side assignors, uniform and/or "
      "range (or Kafka's class names); the first is used when members name none.",
      KB_CT_LIST, NULL}, T_STR, "uniform,range", 0, 0, OFF(group_consumer_assignors),
      (int)sizeof(((kb_config_t *)0)->group_consumer_assignors), 0, NULL, NULL},
    {{"offsets.retention.minutes", "Committed offsets of an empty group are dropped after "
      "this many minutes.", KB_CT_INT, NULL}, T_INT, "10080", 1, I32MAX,
      OFF(offsets_retention_minutes), 8, 0, NULL, NULL},
    {{"producer.id.expiration.ms", "Idempotent producer state is forgotten after this long "
      "without a write.", KB_CT_INT, NULL}, T_INT, "86400000", 1, I32MAX,
      OFF(producer_id_expiration_ms), 8, 0, NULL, NULL},
    {{"log.flush.offset.checkpoint.interval.ms", "How often the recovery-point checkpoint "
      "moves, and with it the position inside the active segment where recovery after a "
      "crash starts (each move costs one background fdatasync of that segment's three files): "
      "recovery re-reads about what was written in one interval.", KB_CT_INT, NULL}, T_INT,
      "60000", 100, I32MAX, OFF(checkpoint_interval_ms), 8, 0, NULL, NULL},
    {{"uplink.bootstrap.servers", "Store and forward: the central Kafka cluster's bootstrap "
      "servers (host:port,...). Unset = the uplink is off. See docs/uplink.md.", KB_CT_LIST,
      NULL}, T_STRING, NULL, 0, 0, OFF(uplink_bootstrap), 0, 0, NULL, NULL},
    {{"uplink.topics", "Store and forward: local topics to forward, a POSIX extended regex "
      "matched against the whole name (names starting with __ are never forwarded).",
      KB_CT_STRING, NULL}, T_STRING, ".*", 0, 0, OFF(uplink_topics), 0, 0, NULL, NULL},
    {{"uplink.topic.prefix", "Store and forward: the central topic is this prefix followed by "
      "the local topic's name (e.g. plant7.).", KB_CT_STRING, NULL}, T_STRING, "", 0, 0,
      OFF(uplink_topic_prefix), 0, 0, NULL, NULL},
    {{"uplink.producer.<key>", "Store and forward: uplink.producer.<key>=<value> passes a librdkafka "
      "setting to the central connection (security.protocol, sasl.*, ssl.*, compression.type "
      "(default zstd), linger.ms, ...). The value is never shown by DescribeConfigs.",
      KB_CT_STRING, NULL}, T_PREFIX, NULL, 0, 0, OFF(uplink_producer), 0, 0, NULL, NULL},
    {{"uplink.max.bytes.per.second", "Store and forward: bandwidth cap on the record bytes "
      "(keys, values, headers, before compression) sent to the central cluster (0 = none).",
      KB_CT_LONG, NULL}, T_LONG, "0", 0, I64MAX, OFF(uplink_max_bytes_per_second), 8, 0, NULL,
      NULL},
    {{"uplink.retention.hold", "Store and forward: retention and log.dirs.max.bytes never "
      "delete records the central cluster has not acknowledged (producers get a retriable "
      "error at the budget instead). false: the oldest are deleted anyway and every dropped "
      "range is logged and counted.", KB_CT_BOOLEAN, NULL}, T_BOOL, "true", 0, 0,
      OFF(uplink_retention_hold), 1, 0, NULL, NULL},
    {{"uplink.topic.create", "Store and forward: create a missing central topic with the local "
      "partition count.", KB_CT_BOOLEAN, NULL}, T_BOOL, "true", 0, 0, OFF(uplink_topic_create),
      1, 0, NULL, NULL},
    {{"uplink.delivery.timeout.ms", "Store and forward: a record the central cluster has not "
      "acknowledged within this time makes the uplink start over: drop the connection, read "
      "back the tail of the central partitions and resume after the last record that arrived. "
      "Keep it below the central cluster's producer.id.expiration.ms.", KB_CT_LONG, NULL},
      T_LONG, "120000", 1000, I64MAX, OFF(uplink_delivery_timeout_ms), 8, 0, NULL, NULL},
    {{"uplink.exactly.once", "Store and forward: how exactly once is kept across producer "
      "sessions. auto: a transactional producer that commits the box's source positions with "
      "the records where the central cluster grants transactions, the read-back of the central "
      "tail otherwise (the choice is logged with the reason); transactions: required (a "
      "refusal is a link error); readback: never transactions. See docs/uplink.md.",
      KB_CT_STRING, NULL}, T_ENUM, "auto", 0, 0, OFF(uplink_exactly_once), 4, 0, uplink_eo,
      NULL},
    {{"uplink.transactional.id", "Store and forward: the central transactional.id (unset = "
      "depot-uplink-<box cluster id>: stable across restarts, distinct between boxes). Two "
      "processes with the same one fence each other.", KB_CT_STRING, NULL}, T_STRING, NULL, 0,
      0, OFF(uplink_transactional_id), 0, 0, NULL, NULL},
    {{"uplink.transaction.max.bytes", "Store and forward: a transaction commits once it holds "
      "this many record bytes (or after uplink.transaction.interval.ms).", KB_CT_LONG, NULL},
      T_LONG, "1048576", 1, I64MAX, OFF(uplink_transaction_max_bytes), 8, 0, NULL, NULL},
    {{"uplink.transaction.interval.ms", "Store and forward: a transaction commits this long "
      "after it began (or at uplink.transaction.max.bytes).", KB_CT_LONG, NULL}, T_LONG, "200",
      1, 600000, OFF(uplink_transaction_interval_ms), 8, 0, NULL, NULL},
    {{"uplink.offsets.topic", "Store and forward: the central topic (1 partition, compacted; "
      "created when missing and uplink.topic.create allows) where each transaction commits the "
      "box's next local offset per partition.", KB_CT_STRING, NULL}, T_STRING,
      "depot-uplink-offsets", 0, 0, OFF(uplink_offsets_topic), 0, 0, NULL, NULL},
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
    {{"quota.window.num", "Number of samples a client quota's byte rate is measured over "
      "(docs/quotas.md).", KB_CT_INT, NULL}, T_INT, "11", 1, 64, OFF(quota_window_num), 4, 0,
      NULL, NULL},
    {{"quota.window.size.seconds", "Length of each client quota sample, in seconds.", KB_CT_INT,
      NULL}, T_INT, "1", 1, 3600, OFF(quota_window_size_seconds), 4, 0, NULL, NULL},
    {{"quota.producer.default", "Produce byte rate (bytes per second) of every (user, client-id) "
      "without a quota set through AlterClientQuotas (kafka-configs); applied per client-id, as "
      "Kafka 2.x/3.x did before removing the key. The default means unlimited.", KB_CT_LONG,
      NULL}, T_LONG, "9223372036854775807", 1, I64MAX, OFF(quota_producer_default), 8, 0, NULL,
      NULL},
    {{"quota.consumer.default", "Fetch byte rate (bytes per second) of every (user, client-id) "
      "without a quota set through AlterClientQuotas; applied per client-id. The default means "
      "unlimited.", KB_CT_LONG, NULL}, T_LONG, "9223372036854775807", 1, I64MAX,
      OFF(quota_consumer_default), 8, 0, NULL, NULL},
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
    {{"audit.retention.ms", "Depot: retention.ms of __audit (-1 = keep forever); applied at "
      "start and, as a dynamic broker config, within a second.", KB_CT_LONG, NULL}, T_LONG, "-1", -1, I64MAX, OFF(audit_retention_ms), 8, 0,
      NULL, NULL},
    {{"schema.registry.listeners", "Depot: where the built-in schema registry (Confluent's REST "
      "API) listens, as http://host:port or https://host:port (comma-separated for several; "
      "https takes schema.registry.ssl.*). Empty: no registry.",
      KB_CT_LIST, NULL}, T_STR, "", 0, 0, OFF(schema_registry_listeners),
      (int)sizeof(((kb_config_t *)0)->schema_registry_listeners), 0, NULL, NULL},
    {{"schema.registry.authentication.method", "Depot: NONE, or BASIC: every schema registry "
      "request needs HTTP basic auth with a broker user's password (its SCRAM credential, as "
      "SASL/PLAIN checks it).", KB_CT_STRING, NULL}, T_ENUM, "NONE", 0, 0,
      OFF(schema_registry_auth), 4, 0, registry_auth, NULL},
    {{"schema.registry.ssl.keystore.location", "Depot: PEM file with the key and certificate chain of https:// schema registry listeners. "
      "Unset (with ...keystore.certificate.chain): the broker's ssl.keystore.* and "
      "ssl.key.password.", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_keystore_location),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_keystore_location), 0, NULL, NULL},
    {{"schema.registry.ssl.keystore.type", "Format of the registry's key store: PEM (KIP-651).", KB_CT_STRING, NULL}, T_STR, "PEM", 0, 0, OFF(sr_ssl_keystore_type),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_keystore_type), 0, NULL, NULL},
    {{"schema.registry.ssl.keystore.certificate.chain", "The registry's certificate chain as PEM text (instead of "
      "schema.registry.ssl.keystore.location; \\n for newlines).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_keystore_certificate_chain),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_keystore_certificate_chain), 0, NULL, NULL},
    {{"schema.registry.ssl.keystore.key", "The registry's private key as PEM text (with "
      "schema.registry.ssl.keystore.certificate.chain).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_keystore_key),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_keystore_key), 0, NULL, NULL},
    {{"schema.registry.ssl.key.password", "Password of the registry's encrypted private key.", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_key_password),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_key_password), 0, NULL, NULL},
    {{"schema.registry.ssl.truststore.location", "PEM file of the CAs that sign registry clients' "
      "certificates. Unset (with ...truststore.certificates): the broker's ssl.truststore.*.", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_truststore_location),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_truststore_location), 0, NULL, NULL},
    {{"schema.registry.ssl.truststore.type", "Format of the registry's trust store: PEM.", KB_CT_STRING, NULL}, T_STR, "PEM", 0, 0, OFF(sr_ssl_truststore_type),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_truststore_type), 0, NULL, NULL},
    {{"schema.registry.ssl.truststore.certificates", "The CAs for registry clients as PEM text (instead "
      "of schema.registry.ssl.truststore.location).", KB_CT_STRING, NULL}, T_STR, "", 0, 0, OFF(sr_ssl_truststore_certificates),
      (int)sizeof(((kb_config_t *)0)->sr_ssl_truststore_certificates), 0, NULL, NULL},
    {{"schema.registry.ssl.client.authentication", "Client certificates on https:// schema "
      "registry listeners: NONE, REQUESTED or REQUIRED (Confluent's key; it does not follow "
      "ssl.client.auth: registry clients authenticate with basic auth).", KB_CT_STRING, NULL},
      T_ENUM, "NONE", 0, 0, OFF(sr_ssl_client_authentication), 4, 0, sr_client_auths, NULL},
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


const int kb_config_table_n = (int)(sizeof kb_config_table / sizeof kb_config_table[0]);
_Static_assert(sizeof kb_config_table / sizeof kb_config_table[0] <= KB_CONFIG_MAX_ENTRIES,
               "raise KB_CONFIG_MAX_ENTRIES in config_int.h");

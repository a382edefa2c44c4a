/*
 * kc: a small Kafka client library on protocol/ (depotctl and the tests use it).
 *
 * Blocking sockets with timeouts, one request in flight per connection: simple, and enough
 * for the CLI and tests, which are single-threaded. A kc_client_t and everything made from it
 * belong to one thread; nothing here is thread-safe.
 *
 * Errors: functions return 0 (or a count) or a negative K_ERR_* status (k_status.h). When the
 * broker answered with a Kafka error code, kc_client_kafka_error() gives that code and
 * kc_client_errmsg() a sentence for people; a Kafka error is reported as K_ERR_AGAIN when it
 * was retriable and retries ran out, else K_ERR_INVAL, K_ERR_NOENT or K_ERR_EXISTS as fits.
 *
 * Version negotiation: each connection sends ApiVersions and uses, per API, the highest
 * version that the broker, the codec and this client all support.
 */
#ifndef KC_H
#define KC_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/k_status.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_buf.h"

typedef struct kc_client kc_client_t;

typedef struct {
    const char *bootstrap; /* "host:port[,host:port...]" */
    const char *client_id; /* NULL = "depotctl" */
    int timeout_ms;        /* per request; 0 = 30000 */
    int retries;           /* retriable failures are retried this often; < 0 = 5 */
    int retry_backoff_ms;  /* 0 = 100 */
    /* SASL (kc_sasl.c): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; NULL = none. The strings must
     * outlive the client (not copied). */
    const char *sasl_mechanism, *sasl_username, *sasl_password;
    /* TLS (kc_tls.c): the CA that signs the broker's certificate (PEM); NULL = plain TCP.
     * A client certificate and key (PEM) are optional. Not copied either. */
    const char *ssl_ca_location, *ssl_certificate_location, *ssl_key_location;
} kc_config_t;

/* Copies cfg; does not connect (kc_client_connect does). NULL on allocation failure. */
kc_client_t *kc_client_new(const kc_config_t *cfg);
/* Tries each bootstrap address until one answers ApiVersions and Metadata. */
int kc_client_connect(kc_client_t *c);
void kc_client_free(kc_client_t *c);
int16_t kc_client_kafka_error(const kc_client_t *c); /* 0 when the last failure was local */
const char *kc_client_errmsg(const kc_client_t *c);  /* "" when there was no failure */
/* Wall-clock milliseconds (record timestamps, timeouts). */
int64_t kc_now_ms(void);
/* Version the bootstrap connection negotiated for an API, -1 if none. */
int16_t kc_client_api_version(kc_client_t *c, int16_t api_key);

/* ---- metadata ---------------------------------------------------------------------------- */

typedef struct {
    int32_t partition;
    int16_t error_code;
    int32_t leader;
    int32_t leader_epoch;
    int32_t *replicas, nreplicas;
    int32_t *isr, nisr;
} kc_partition_md_t;

typedef struct {
    char *name;
    int16_t error_code;
    bool internal;
    kp_uuid_t topic_id;
    kc_partition_md_t *partitions; /* sorted by partition */
    int32_t npartitions;
} kc_topic_md_t;

typedef struct {
    int32_t node_id;
    char *host;
    int32_t port;
} kc_broker_md_t;

/* One allocation owner: the arena; free with kc_metadata_free. */
typedef struct {
    kp_arena_t arena;
    kc_broker_md_t *brokers;
    int32_t nbrokers;
    int32_t controller_id;
    char *cluster_id; /* NULL if the broker sent none */
    kc_topic_md_t *topics;
    int32_t ntopics;
} kc_metadata_t;

/* topics NULL (ntopics ignored) asks for all topics. *out is the caller's. */
int kc_metadata_get(kc_client_t *c, const char *const *topics, int ntopics, bool auto_create,
                    kc_metadata_t **out);
void kc_metadata_free(kc_metadata_t *md);
const kc_topic_md_t *kc_metadata_topic(const kc_metadata_t *md, const char *name);

/* ---- producing --------------------------------------------------------------------------- */

typedef struct {
    int acks;                   /* -1 all (default), 0 none (no response), 1 leader */
    int codec;                  /* KP_COMPRESSION_*; default none */
    size_t batch_bytes;         /* a partition's batch is sent once this full; default 64 KiB */
    int32_t request_timeout_ms; /* Produce timeout_ms; default 30000 */
} kc_producer_config_t;

typedef struct kc_producer kc_producer_t;

typedef struct {
    uint64_t records_sent;   /* acknowledged (or written, for acks=0) */
    uint64_t records_failed; /* given up on */
    uint64_t retries;        /* Produce partitions resent */
} kc_producer_stats_t;

void kc_producer_config_init(kc_producer_config_t *pc);
kc_producer_t *kc_producer_new(kc_client_t *c, const kc_producer_config_t *pc);
/* Queues one record; copies key, value and headers. partition -1: murmur2 of the key (as the
 * Java client picks), round robin for null keys. timestamp -1 = now. Blocks to send when that
 * partition's batch is full. */
int kc_producer_send(kc_producer_t *p, const char *topic, int32_t partition, kp_bytes_t key,
                     kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders,
                     int64_t timestamp);
/* Sends every queued record and waits for the acknowledgements, retrying retriable errors. */
int kc_producer_flush(kc_producer_t *p);
void kc_producer_stats(const kc_producer_t *p, kc_producer_stats_t *st);
void kc_producer_free(kc_producer_t *p); /* drops anything not flushed */

/* The Java client's default partitioner for keyed records. */
int32_t kc_partition_for_key(const uint8_t *key, size_t len, int32_t npartitions);

/* ---- offsets and fetching ---------------------------------------------------------------- */

#define KC_OFFSET_END (-1)       /* ListOffsets: the next offset to be written */
#define KC_OFFSET_BEGINNING (-2) /* ListOffsets: the log start offset */

/* ts is a timestamp in ms or KC_OFFSET_END / KC_OFFSET_BEGINNING. */
int kc_list_offset(kc_client_t *c, const char *topic, int32_t partition, int64_t ts,
                   int64_t *offset);

typedef struct {
    int32_t partition;
    int64_t offset;
    /* results */
    int16_t error_code;
    int64_t high_watermark;
    int64_t log_start_offset;
    uint8_t
        *records; /* owned copy (free() it, or kc_fetch_part_clear); may end in a partial batch */
    size_t records_len;
} kc_fetch_part_t;

/* One Fetch per leader for the given partitions of topic. */
int kc_fetch(kc_client_t *c, const char *topic, kc_fetch_part_t *parts, int nparts, int max_wait_ms,
             int32_t max_bytes);
void kc_fetch_part_clear(kc_fetch_part_t *fp);

/* A group-less consumer over some partitions of one topic. */
typedef struct kc_consumer kc_consumer_t;

typedef struct {
    const char *topic; /* the consumer's (or group's) copy; valid while it lives */
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    bool timestamp_type;   /* true: LogAppendTime (set by the broker), false: CreateTime */
    kp_bytes_t key, value; /* views valid until the next poll */
    const uint8_t *headers;
    size_t headers_len;
    int32_t headers_count;
} kc_message_t;

/* partitions NULL = all partitions; start is an offset or KC_OFFSET_END / KC_OFFSET_BEGINNING
 * (applied to every partition). */
kc_consumer_t *kc_consumer_new(kc_client_t *c, const char *topic, const int32_t *partitions,
                               int npartitions, int64_t start);
/* 1 with *msg set, 0 if nothing arrived within timeout_ms, or a negative status. */
int kc_consumer_poll(kc_consumer_t *cs, int timeout_ms, kc_message_t *msg);
void kc_consumer_free(kc_consumer_t *cs);
/* Moves a partition's position (dropping what was fetched for it); K_ERR_NOENT if the consumer
 * does not read that partition. */
int kc_consumer_seek(kc_consumer_t *cs, int32_t partition, int64_t offset);
/* The next offset the consumer hands out for a partition, -1 if it does not read it. */
int64_t kc_consumer_position(const kc_consumer_t *cs, int32_t partition);

/* ---- admin ------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} kc_config_entry_t;

int kc_create_topic(kc_client_t *c, const char *topic, int32_t partitions, int16_t replication,
                    const kc_config_entry_t *configs, int nconfigs);
int kc_delete_topic(kc_client_t *c, const char *topic);

/* The topic's non-default configs (DescribeConfigs); *out is the caller's (free with
 * kc_topic_configs_free). */
typedef struct {
    kp_arena_t arena;
    kc_config_entry_t *entries;
    int n;
} kc_topic_configs_t;
int kc_describe_topic_configs(kc_client_t *c, const char *topic, kc_topic_configs_t **out);
void kc_topic_configs_free(kc_topic_configs_t *tc);

/* ---- security admin (kc_security.c) ------------------------------------------------------ */

/* One ACL binding or filter, with Kafka's codes (resource type, pattern type, operation,
 * permission); NULL strings match anything in a filter. */
typedef struct {
    int8_t resource_type, pattern_type, operation, permission;
    const char *name, *principal, *host;
} kc_acl_t;

int kc_acl_create(kc_client_t *c, const kc_acl_t *acls, int n);
int kc_acl_describe(kc_client_t *c, const kc_acl_t *filter,
                    void (*fn)(void *ud, const kc_acl_t *acl), void *ud);
int kc_acl_delete(kc_client_t *c, const kc_acl_t *filter, int *deleted);
/* SCRAM credentials: mech 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512. */
int kc_scram_list(kc_client_t *c, void (*fn)(void *ud, const char *user, int mech, int iter),
                  void *ud);
/* Sets (password != NULL, salted here) or deletes (NULL) user's credential for mech. */
int kc_scram_alter(kc_client_t *c, const char *user, int mech, const char *password,
                   int iterations);

#endif

/*
 * kc consumer groups: the classic group protocol on Depot's (or any Kafka) coordinator, with
 * the client side of Kafka's ConsumerProtocol, so members written in Java or on librdkafka
 * can share a group with ours.
 *
 * Single-threaded like kc.h: a kc_group_t belongs to the thread that made it. Heartbeats are
 * sent from kc_group_poll (the client has no background thread), so a caller must poll at
 * least every heartbeat interval or the coordinator removes the member after
 * session_timeout_ms.
 */
#ifndef KC_GROUP_H
#define KC_GROUP_H

#include "client/kc.h"

/* ---- ConsumerProtocol (the bytes inside JoinGroup metadata and SyncGroup assignments) ---- */

/* Decoded strings point into the input bytes, arrays into the arena given to the decoder. */
typedef struct {
    kp_str_t topic;
    int32_t *partitions;
    int32_t npartitions;
} kc_topic_parts_t;

/* Subscription versions 0-3: v1 adds owned_partitions, v2 generation_id, v3 rack_id. */
typedef struct {
    int16_t version;
    kp_str_t *topics;
    int32_t ntopics;
    kp_bytes_t user_data; /* len -1 = null */
    kc_topic_parts_t *owned;
    int32_t nowned;
    int32_t generation_id; /* -1 when absent */
    kp_str_t rack_id;      /* len -1 = null */
} kc_subscription_t;

/* Assignment versions 0-3 share one layout. */
typedef struct {
    int16_t version;
    kc_topic_parts_t *parts;
    int32_t nparts;
    kp_bytes_t user_data;
} kc_assignment_t;

/* Encoders write the struct's own version; 0 or K_ERR_INVAL / K_ERR_NOMEM. */
int kc_subscription_encode(kp_buf_t *b, const kc_subscription_t *s);
int kc_assignment_encode(kp_buf_t *b, const kc_assignment_t *as);
/* Decoders accept any version >= 0 (fields of newer versions are ignored, as Kafka does);
 * 0 or K_ERR_MALFORMED. An empty input decodes as an empty assignment (a member the leader
 * gave nothing). */
int kc_subscription_decode(const uint8_t *p, size_t n, kp_arena_t *a, kc_subscription_t *s);
int kc_assignment_decode(const uint8_t *p, size_t n, kp_arena_t *a, kc_assignment_t *as);

/* Kafka's RangeAssignor: per topic, the members subscribed to it sorted by member id each get
 * a contiguous range, the first (partitions % members) one more. out[i] (for members[i]) is
 * filled with arrays from the arena. topic_partitions[k] is the partition count of topics[k];
 * a member's subscribed topic missing from topics is skipped. */
typedef struct {
    kp_str_t member_id;
    kc_subscription_t sub;
} kc_member_sub_t;
int kc_range_assign(kp_arena_t *a, const kc_member_sub_t *members, int nmembers,
                    const char *const *topics, const int32_t *topic_partitions, int ntopics,
                    kc_assignment_t *out);

/* ---- offsets ------------------------------------------------------------------------------ */

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset; /* -1 = none committed */
    int16_t error_code;
} kc_offset_t;

/* An owned list (free with kc_offsets_free): strings and array in the arena. */
typedef struct {
    kp_arena_t arena;
    kc_offset_t *v;
    int n;
} kc_offsets_t;
void kc_offsets_free(kc_offsets_t *o);

/* OffsetCommit outside a generation (generation -1, empty member id): what admin tools and
 * assign() consumers send; the coordinator accepts it only while the group has no members. */
int kc_commit_offsets(kc_client_t *c, const char *group, const kc_offset_t *offs, int n);
/* Every committed offset of the group (OffsetFetch with all topics). *out is the caller's. */
int kc_fetch_committed(kc_client_t *c, const char *group, kc_offsets_t **out);

/* ---- listing and describing groups ---------------------------------------------------------- */

typedef struct {
    char *member_id, *group_instance_id, *client_id, *client_host;
    kc_assignment_t assignment; /* decoded when the protocol type is "consumer" */
} kc_group_member_t;

typedef struct {
    kp_arena_t arena;
    char *group_id, *state, *protocol_type, *protocol;
    int16_t error_code;
    kc_group_member_t *members;
    int nmembers;
} kc_group_desc_t;

typedef struct {
    kp_arena_t arena;
    struct {
        char *group_id, *protocol_type, *state; /* state NULL before ListGroups v4 */
    } * v;
    int n;
} kc_group_list_t;

int kc_list_groups(kc_client_t *c, kc_group_list_t **out);
void kc_group_list_free(kc_group_list_t *l);
int kc_describe_group(kc_client_t *c, const char *group, kc_group_desc_t **out);
void kc_group_desc_free(kc_group_desc_t *d);

/* ---- a group member ------------------------------------------------------------------------- */

typedef struct {
    const char *group_id;
    const char *const *topics; /* subscription; copied */
    int ntopics;
    const char *group_instance_id; /* static membership (KIP-345); NULL = dynamic */
    int session_timeout_ms;        /* 0 = 10000 */
    int rebalance_timeout_ms;      /* 0 = 30000 */
    int heartbeat_interval_ms;     /* 0 = 3000 */
    bool from_beginning;           /* no committed offset: earliest (else latest) */
} kc_group_config_t;

typedef struct kc_group kc_group_t;

kc_group_t *kc_group_new(kc_client_t *c, const kc_group_config_t *cfg);
/*
 * Joins (and rejoins after a rebalance) as needed, heartbeats when due, and returns the next
 * record of the assigned partitions: 1 with *msg set (msg->topic names the topic), 0 if none
 * arrived within timeout_ms, or a negative status for a failure that retrying will not fix.
 * Broker restarts and rebalances are handled inside (a rebalance may re-deliver records after
 * the last commit: commit before polling again to avoid that).
 */
int kc_group_poll(kc_group_t *g, int timeout_ms, kc_message_t *msg);
/* Commits the position (next offset) of every assigned partition, synchronously. */
int kc_group_commit(kc_group_t *g);
/* Generation and member id of the current membership (-1 / "" when not joined). */
int32_t kc_group_generation(const kc_group_t *g);
const char *kc_group_member_id(const kc_group_t *g);
/* Sends LeaveGroup (best effort) and frees. NULL is a no-op. */
void kc_group_close(kc_group_t *g);

#endif

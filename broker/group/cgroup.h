/*
 * The consumer group protocol (KIP-848): ConsumerGroupHeartbeat's state machine beside the
 * classic coordinator (group.h). Like it, pure: no sockets, no clock, no storage; the caller
 * passes the time and a snapshot of the broker's topics with each heartbeat.
 *
 * A group id is one kind at a time, as in Kafka 4: a kb_group_t whose `cg` is set is a
 * consumer group (its classic fields stay Empty and unused), and its offsets live in the same
 * kb_group_t map as a classic group's, so OffsetCommit/OffsetFetch, retention and the offsets
 * log treat both alike. An Empty classic group (offsets only) becomes a consumer group when a
 * member joins by heartbeat; an Empty consumer group becomes classic when a JoinGroup comes.
 *
 * Model (facts of Kafka's GroupMetadataManager / CurrentAssignmentBuilder, not its code):
 *   group epoch    bumped when membership, a subscription or the subscribed topics' metadata
 *                  (names, ids, partition counts) changes;
 *   target         per member, computed by the server assignor (uniform or range) when the
 *                  group epoch is ahead of the target epoch (assignment epoch);
 *   member epoch   the target epoch a member has reconciled to; a member moves to a new epoch
 *                  only once it owns nothing that the target takes away:
 *     STABLE       assigned == target at the target epoch;
 *     UNREVOKED    it still owns partitions to give up: the heartbeat answers only the kept
 *                  ones and the epoch stays until a heartbeat lists owned partitions without
 *                  the revoked ones (or the rebalance timeout fences it);
 *     UNRELEASED   at the new epoch, but some target partitions are still owned (assigned or
 *                  pending revocation) by another member; they are handed over on a later
 *                  heartbeat once released.
 *   A partition is given to a member only when no other member has it assigned or pending
 *   revocation, so no partition is ever owned by two members at once.
 *
 * Not persisted: consumer-group membership and assignments live in memory (offsets are
 * durable through the offsets log as for classic groups). After a restart members are
 * unknown; clients answer UNKNOWN_MEMBER_ID by rejoining at epoch 0, as Kafka's do.
 *
 * Regular expressions (SubscribedTopicRegex): POSIX extended syntax (regcomp), matched
 * against the whole topic name, where Kafka uses RE2/J. The common forms (., *, +, ?, [], |,
 * (), {m,n}, ^, $) mean the same; RE2's \d \w \s, (?i) flags and non-greedy operators are
 * not POSIX and are refused as INVALID_REGULAR_EXPRESSION. Internal topics never match.
 *
 * Ownership: the coordinator owns every consumer group and member; result pointers are valid
 * until the next coordinator call. Threading: the broker loop only.
 */
#ifndef KB_CGROUP_H
#define KB_CGROUP_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/group/group.h"

/* One topic as the broker has it; a snapshot is sorted by name. */
typedef struct {
    const char *name;
    kp_uuid_t id;
    int32_t partitions;
    bool internal; /* never matched by a regex */
} kb_ctopic_t;

typedef struct {
    const kb_ctopic_t *v;
    int32_t n;
    /* May the heartbeating member's principal DESCRIBE this topic (regex matches are filtered
     * through it)? NULL = yes. */
    bool (*may_describe)(void *ud, const char *topic);
    void *ud;
} kb_ctopics_t;

/* A set of partitions: sorted keys (interned topic index << 32 | partition). */
typedef struct {
    uint64_t *v;
    int32_t n, cap;
} kb_tpset_t;

#define KB_TP(topic, part) (((uint64_t)(uint32_t)(topic) << 32) | (uint32_t)(part))
#define KB_TP_TOPIC(k) ((int32_t)((k) >> 32))
#define KB_TP_PART(k) ((int32_t)((k) & 0xffffffffu))

typedef enum {
    KB_CM_STABLE = 0,
    KB_CM_UNREVOKED,  /* unrevoked_partitions */
    KB_CM_UNRELEASED, /* unreleased_partitions */
} kb_cmember_state_t;

typedef enum { KB_ASSIGNOR_UNIFORM = 0, KB_ASSIGNOR_RANGE = 1, KB_ASSIGNOR_N } kb_assignor_t;
_Static_assert(KB_ASSIGNOR_N == KB_ASSIGNORS_MAX, "one slot per assignor");

#define KB_CEPOCH_LEAVE (-1)
#define KB_CEPOCH_STATIC_LEAVE (-2)

typedef struct kb_cmember {
    char *member_id; /* owned; client-generated (v1) or ours (v0 join with an empty id) */
    char *instance_id, *rack_id, *client_id, *client_host; /* owned; NULL = none */
    int32_t instance_id_len, client_id_len, client_host_len;
    int32_t epoch, prev_epoch; /* KB_CEPOCH_STATIC_LEAVE while a static member is away */
    kb_cmember_state_t state;
    int32_t rebalance_timeout_ms;
    int32_t *sub;      /* interned topic indexes of SubscribedTopicNames, sorted, owned */
    int32_t n_sub;
    char **sub_names;  /* the names as given (for describe, missing topics included), owned */
    int32_t n_sub_names;
    char *regex;       /* SubscribedTopicRegex, owned; NULL = none */
    regex_t re;
    int32_t *rx;       /* interned indexes of the topics the regex matched, sorted, owned */
    int32_t n_rx;
    uint64_t rx_topics_hash; /* topic-name set the regex was last resolved against */
    int assignor;            /* ServerAssignor, -1 = none given */
    kb_tpset_t assigned;     /* owned now (as told to the client) */
    kb_tpset_t revoking;     /* to be given up; still owned until acknowledged */
    kb_tpset_t target;       /* target assignment at the group's target epoch */
    bool send_assignment;    /* the next answer carries the assignment */
    int64_t session_deadline; /* mono ms */
    int64_t revoke_deadline;  /* mono ms, UNREVOKED only */
} kb_cmember_t;

typedef struct kb_cgroup {
    int32_t epoch;        /* group epoch */
    int32_t target_epoch; /* assignment epoch */
    kb_cmember_t **members; /* join order, owned */
    int32_t n_members;
    char **topics; /* interned topic names (index = key's topic), owned */
    int32_t n_topics;
    uint64_t meta_hash; /* subscribed topics' metadata at the last epoch bump */
    int assignor;       /* the assignor of the current target */
} kb_cgroup_t;


/* "uniform"/"range" (or Kafka's class names) -> KB_ASSIGNOR_*, -1 unknown. */
int kb_assignor_parse(const char *s, size_t len);
const char *kb_assignor_name(int a);
/* Parses a comma-separated group.consumer.assignors value: 0 or K_ERR_INVAL. */
int kb_assignors_parse(const char *list, int *out, int *n);

/* ---- heartbeat ---------------------------------------------------------------------------- */

typedef struct {
    kp_uuid_t topic_id;
    const int32_t *partitions;
    int32_t n;
} kb_ctp_in_t;

typedef struct {
    int16_t version;
    kp_str_t group_id, member_id;
    int32_t member_epoch;
    kp_str_t instance_id, rack_id; /* len -1 = null (unchanged) */
    kp_str_t client_id, client_host;
    int32_t rebalance_timeout_ms;  /* -1 = unchanged */
    const kp_str_t *topic_names;   /* NULL with n_topic_names -1 = unchanged */
    int32_t n_topic_names;
    kp_str_t topic_regex;          /* len -1 = unchanged; "" = none */
    kp_str_t server_assignor;      /* len -1 = unchanged */
    const kb_ctp_in_t *owned;      /* n_owned -1 = not given */
    int32_t n_owned;
} kb_chb_params_t;

typedef struct {
    int16_t error_code;
    const char *error_message;       /* NULL = null */
    const char *member_id;           /* NULL = null */
    int32_t member_epoch;
    int32_t heartbeat_interval_ms;
    const kb_tpset_t *assignment;    /* NULL = no assignment in the answer */
    const kb_cgroup_t *cg;           /* to name the assignment's topics */
} kb_chb_result_t;

/* One ConsumerGroupHeartbeat. The result is valid until the next coordinator call. */
void kb_cgroup_heartbeat(kb_gcoord_t *c, const kb_chb_params_t *p, const kb_ctopics_t *topics,
                         kb_gtime_t now, kb_chb_result_t *out);

/* ---- the rest of the coordinator's view ----------------------------------------------------- */

/* Kafka's consumer group states: Empty, Assigning, Reconciling, Stable (Dead: no group). */
const char *kb_cgroup_state_name(const kb_cgroup_t *cg);
/* OffsetCommit by a consumer group's member (epoch >= 0 or a member id given): 0,
 * UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH or FENCED_MEMBER_EPOCH. A commit without membership
 * (epoch < 0, no member id) is allowed only while the group has no members. */
int16_t kb_cgroup_commit_check(kb_group_t *g, int32_t epoch, kp_str_t member_id,
                               kb_gtime_t now);
/* OffsetFetch v9+ naming a member: 0, UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH. */
int16_t kb_cgroup_fetch_check(const kb_group_t *g, kp_str_t member_id, int32_t epoch);
/* Members' session/revocation deadlines: expired ones are removed. Next deadline returned. */
int64_t kb_cgroup_poll(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);
int64_t kb_cgroup_next_deadline(const kb_group_t *g);
/* Drops the consumer-group part (the group becomes a classic Empty group). */
void kb_cgroup_free(kb_cgroup_t *cg);
/* The topics the group's members subscribe to (names and regex matches), for OffsetDelete:
 * true when topic is one of them. */
bool kb_cgroup_subscribes(const kb_cgroup_t *cg, kp_str_t topic);
/* Partitions of the set with topic index t, for encoding: counts and copies them. */
int32_t kb_tpset_topic_parts(const kb_tpset_t *s, int32_t t, int32_t *out);

/* ---- internals shared with cgroup_assign.c and unit tests ------------------------------------ */

void kb_tpset_free(kb_tpset_t *s);
bool kb_tpset_has(const kb_tpset_t *s, uint64_t k);
/* Adds k keeping the set sorted: 0 or K_ERR_NOMEM. */
int kb_tpset_add(kb_tpset_t *s, uint64_t k);
int kb_tpset_copy(kb_tpset_t *dst, const kb_tpset_t *src);
bool kb_tpset_equal(const kb_tpset_t *a, const kb_tpset_t *b);

typedef struct {
    const int32_t *topics; /* subscribed interned topic indexes that exist, sorted */
    int32_t n_topics;
    const kb_tpset_t *prev; /* previous target (stickiness), may be NULL */
    kb_tpset_t out;         /* result, owned by the caller */
} kb_cassign_member_t;

/* The assignors: members sorted by member id; parts[t] = partition count of interned topic t
 * (0 = gone). 0 or K_ERR_NOMEM. uniform: every partition of a subscribed topic to one of its
 * subscribers, counts balanced (max - min <= 1 where subscriptions allow), previous owners
 * kept where the balance allows. range: per topic, contiguous ranges over its subscribers in
 * member id order (co-partitioned topics line up). */
int kb_cassign_uniform(kb_cassign_member_t *m, int32_t n, const int32_t *parts, int32_t n_topics);
int kb_cassign_range(kb_cassign_member_t *m, int32_t n, const int32_t *parts, int32_t n_topics);

/* Reconciliation of one member towards its target (Kafka's CurrentAssignmentBuilder):
 * owned is what the heartbeat said the client owns (NULL = not given). Sets state, epoch,
 * assigned, revoking. 0 or K_ERR_NOMEM. */
int kb_cmember_reconcile(kb_cgroup_t *cg, kb_cmember_t *m, const kb_tpset_t *owned);

#endif

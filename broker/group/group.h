/*
 * The classic consumer-group coordinator (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, offsets
 * bookkeeping) as a pure state machine: no sockets, no libuv, no clock. Time is passed in;
 * timers are deadlines the caller honours by calling kb_gcoord_poll() at or after
 * kb_gcoord_next_deadline(). It follows Apache Kafka's GroupCoordinator so that errors come
 * back exactly where Kafka gives them.
 *
 * States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and Dead (deleted).
 *
 * Held requests: JoinGroup and SyncGroup may complete later. The caller passes an opaque
 * `waiter` (its request); the result is always delivered through opts.join_done/sync_done
 * exactly once per call, either before kb_group_join/sync returns or later from another call
 * or from kb_gcoord_poll. Result strings/bytes are valid only during the callback.
 *
 * Persistence: opts.store_group is called (synchronously) whenever group metadata should be
 * written (Kafka's storeGroup points: a new generation is fixed by the leader's SyncGroup,
 * the group became Empty, a static member was replaced, the group was deleted). Offsets are
 * applied through kb_group_offset_put/_delete by the caller after it has logged them;
 * offsets the coordinator expires are reported through opts.offset_expired before removal.
 *
 * Ownership: the coordinator owns every group, member and offset; pointers returned by
 * lookups stay valid until the next call that may remove them (any call taking `now`, or a
 * delete). Threading: one thread (the broker loop).
 */
#ifndef KB_GROUP_H
#define KB_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/group/group_map.h"
#include "protocol/kp_buf.h"

typedef enum {
    KB_GROUP_EMPTY = 0,
    KB_GROUP_PREPARING_REBALANCE,
    KB_GROUP_COMPLETING_REBALANCE,
    KB_GROUP_STABLE,
    KB_GROUP_DEAD,
} kb_group_state_t;

/*
 * "Now" as the coordinator sees it: two clocks, because it keeps both deadlines and data.
 *   mono  a monotonic clock (ms): every deadline (session, join, sync, retention check) is
 *         computed and compared in it, so stepping the wall clock never expires a member.
 *   wall  wall-clock ms since the epoch: state_ts (written to the offsets log as Kafka's
 *         currentStateTimestamp) and offsets retention, compared with commit timestamps.
 * Deadlines returned by kb_gcoord_poll/next_deadline are on the mono clock.
 */
typedef struct {
    int64_t mono;
    int64_t wall;
} kb_gtime_t;

#define KB_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS 300000 /* Kafka's NewMemberJoinTimeoutMs */
#define KB_GROUP_NO_DEADLINE INT64_MAX

typedef struct {
    char *name;
    uint8_t *metadata; /* owned */
    int32_t metadata_len;
} kb_gproto_t;

typedef struct kb_gmember {
    struct kb_gmember *next; /* join order */
    char *member_id;
    /* Client-given strings, kept byte for byte (an embedded NUL included): each is owned,
     * NUL-terminated for logs, and its length is the *_len beside it. */
    char *instance_id; /* group.instance.id, NULL for dynamic members */
    char *client_id;
    char *client_host;
    int32_t instance_id_len, client_id_len, client_host_len;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    kb_gproto_t *protocols; /* in the member's preference order */
    int32_t n_protocols;
    uint8_t *assignment; /* from the leader's SyncGroup; NULL/0 = none */
    int32_t assignment_len;
    void *join_waiter; /* held JoinGroup, or NULL */
    void *sync_waiter; /* held SyncGroup, or NULL */
    bool is_new;       /* joined in the current rebalance, not yet through a generation */
    bool pending_sync; /* must send SyncGroup for the current generation */
    int64_t hb_deadline; /* mono ms */
} kb_gmember_t;

typedef struct {
    char *member_id;
    int64_t deadline; /* mono ms */
} kb_gpending_t;

typedef struct {
    int64_t offset;
    int32_t leader_epoch; /* -1 = unknown */
    char *metadata;       /* owned, metadata_len bytes (any bytes, NUL included) + a NUL;
                           * NULL = null */
    int32_t metadata_len;
    int64_t commit_ts; /* wall ms */
    int64_t expire_ts; /* wall ms; -1 = follow offsets.retention (OffsetCommit v2-4 may set it) */
} kb_offset_t;

typedef struct kb_group {
    char *group_id;
    kb_group_state_t state;
    int64_t state_ts; /* wall ms: when the group entered its state (Empty: retention start) */
    char *protocol_type; /* NULL until a member joined (simple consumers never set it) */
    char *protocol_name; /* selected protocol of the current generation, or NULL */
    int32_t generation_id;
    char *leader_id; /* NULL when no members */
    kb_gmember_t *members;
    int32_t n_members;
    kb_gpending_t *pending; /* members told MEMBER_ID_REQUIRED, not yet rejoined */
    int32_t n_pending;
    /* rebalance bookkeeping (deadlines on the mono clock) */
    int64_t join_deadline;   /* PreparingRebalance: when the join phase ends at the latest */
    int64_t sync_deadline;   /* CompletingRebalance/Stable: pending SyncGroups expire */
    bool initial_delay;      /* join phase of a group that was Empty (initial delay rules) */
    bool new_member_added;   /* a member joined during the initial delay */
    int32_t init_delay_ms;   /* current delay step of the initial join */
    int32_t init_remaining_ms;
    int32_t rebalance_timeout_ms; /* max over members, fixed when the rebalance starts */
    /* topics the members subscribe to (consumer protocol), for OffsetDelete and retention */
    bool subscribed_known;
    char **subscribed;
    int32_t n_subscribed;
    kb_gmap_t offsets; /* key: topic '\0' partition(4 bytes BE) -> kb_offset_t* */
    /* Set when this is a consumer group (KIP-848, cgroup.h): its members and assignments.
     * The classic fields above then stay Empty. Owned. */
    struct kb_cgroup *cg;
} kb_group_t;

typedef struct {
    const char *member_id;
    kp_str_t group_instance_id; /* len -1 = null */
    kp_bytes_t metadata;
} kb_join_member_t;

typedef struct {
    int16_t error_code;
    int32_t generation_id;
    const char *protocol_type; /* NULL = null */
    const char *protocol_name; /* NULL = null */
    const char *leader_id;
    const char *member_id;
    bool skip_assignment;
    const kb_join_member_t *members; /* only for the leader */
    int32_t n_members;
} kb_join_result_t;

typedef struct {
    int16_t error_code;
    const char *protocol_type; /* NULL = null */
    const char *protocol_name;
    kp_bytes_t assignment;
} kb_sync_result_t;

typedef struct kb_gcoord kb_gcoord_t;

/* Consumer group (KIP-848) settings (group.consumer.*, cgroup.h); assignors are
 * KB_ASSIGNOR_* values, the first the default. */
#define KB_ASSIGNORS_MAX 2
typedef struct {
    bool enabled;                  /* "consumer" in group.coordinator.rebalance.protocols */
    int32_t session_timeout_ms;    /* group.consumer.session.timeout.ms */
    int32_t heartbeat_interval_ms; /* group.consumer.heartbeat.interval.ms */
    int assignors[KB_ASSIGNORS_MAX];
    int n_assignors;
} kb_cgroup_opts_t;

typedef struct {
    int32_t min_session_timeout_ms;
    int32_t max_session_timeout_ms;
    int32_t initial_rebalance_delay_ms;
    int64_t offsets_retention_ms;
    int64_t retention_check_interval_ms; /* 0 = 60 s */
    uint64_t seed;                       /* member id randomness */
    kb_cgroup_opts_t consumer;
    void (*join_done)(void *ud, void *waiter, const kb_join_result_t *res);
    void (*sync_done)(void *ud, void *waiter, const kb_sync_result_t *res);
    /* Write the group's metadata (state DEAD: write its tombstone). May be NULL. */
    void (*store_group)(void *ud, const kb_group_t *g);
    /* An offset is about to be dropped by retention or topic deletion (write its tombstone).
     * May be NULL. */
    void (*offset_expired)(void *ud, const kb_group_t *g, const char *topic, int32_t partition);
    void *ud;
} kb_gcoord_opts_t;

int kb_gcoord_new(const kb_gcoord_opts_t *opts, kb_gcoord_t **out);
/* Held requests still pending get COORDINATOR_NOT_AVAILABLE through the callbacks. */
void kb_gcoord_free(kb_gcoord_t *c);
/* Runs every deadline that has passed; returns the next deadline (KB_GROUP_NO_DEADLINE). */
int64_t kb_gcoord_poll(kb_gcoord_t *c, kb_gtime_t now);
int64_t kb_gcoord_next_deadline(const kb_gcoord_t *c);

kb_group_t *kb_gcoord_find(kb_gcoord_t *c, kp_str_t group_id);
/* Iteration in no particular order; pass NULL first. The walk must not modify the set. */
kb_group_t *kb_gcoord_next(kb_gcoord_t *c, kb_group_t *prev);
const char *kb_group_state_name(kb_group_state_t s); /* Kafka's names: "Stable", ... */
kb_gmember_t *kb_group_member(const kb_group_t *g, const char *member_id, int32_t len);
/* The selected protocol's metadata of a member (empty when none). */
kp_bytes_t kb_gmember_metadata(const kb_gmember_t *m, const char *protocol);

/* ------------------------------------------------------------------------------------------ */
/* Group membership (Kafka error codes as results)                                             */

typedef struct {
    kp_str_t name;
    kp_bytes_t metadata;
} kb_gproto_in_t;

typedef struct {
    kp_str_t group_id;
    kp_str_t member_id;         /* "" = new member */
    kp_str_t group_instance_id; /* len -1 = null */
    kp_str_t client_id;
    kp_str_t client_host;
    kp_str_t protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* -1 (v0): the session timeout */
    const kb_gproto_in_t *protocols;
    int32_t n_protocols;
    bool require_known_member_id;  /* JoinGroup v4+ (KIP-394) */
    bool supports_skip_assignment; /* JoinGroup v9+ (KIP-814) */
} kb_join_params_t;

void kb_group_join(kb_gcoord_t *c, const kb_join_params_t *p, kb_gtime_t now, void *waiter);

typedef struct {
    kp_str_t member_id;
    kp_bytes_t assignment;
} kb_gassign_in_t;

typedef struct {
    kp_str_t group_id;
    kp_str_t member_id;
    kp_str_t group_instance_id; /* len -1 = null */
    kp_str_t protocol_type;     /* len -1 = not given (v0-4) */
    kp_str_t protocol_name;     /* len -1 = not given */
    int32_t generation_id;
    const kb_gassign_in_t *assignments;
    int32_t n_assignments;
} kb_sync_params_t;

void kb_group_sync(kb_gcoord_t *c, const kb_sync_params_t *p, kb_gtime_t now, void *waiter);
/*
 * The request behind `waiter` is gone (its client disconnected): every member holding it holds
 * `replacement` instead, whose result the caller drops. The member stays joined, as in Kafka
 * (it may come back on a new connection); only the caller's request is released now.
 */
void kb_group_waiter_replace(kb_gcoord_t *c, void *waiter, void *replacement);

int16_t kb_group_heartbeat(kb_gcoord_t *c, kp_str_t group_id, int32_t generation_id,
                           kp_str_t member_id, kp_str_t group_instance_id, kb_gtime_t now);

/* LeaveGroup: the group-level error (0, INVALID_GROUP_ID, ...). When it is 0, call
 * kb_group_leave_member for each leaving member to get its error. */
int16_t kb_group_leave_check(kb_gcoord_t *c, kp_str_t group_id);
int16_t kb_group_leave_member(kb_gcoord_t *c, kp_str_t group_id, kp_str_t member_id,
                              kp_str_t group_instance_id, kb_gtime_t now);

/* DeleteGroups for one group: 0, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP.
 * On success the group and its offsets are gone (store_group saw it as DEAD). */
int16_t kb_group_delete(kb_gcoord_t *c, kp_str_t group_id);

/* ------------------------------------------------------------------------------------------ */
/* Offsets                                                                                     */

/*
 * OffsetCommit validation for the whole request: 0 to go ahead, else the error for every
 * partition. A commit with generation < 0, empty member id and no instance id is a simple
 * (non-member) commit: accepted while the group has no members, and creates the group.
 * *out receives the group when the result is 0.
 */
int16_t kb_group_commit_check(kb_gcoord_t *c, kp_str_t group_id, int32_t generation_id,
                              kp_str_t member_id, kp_str_t group_instance_id, kb_gtime_t now,
                              kb_group_t **out);
/* Stores one offset (copying metadata). Creates the group (Empty) if missing, which is what
 * log replay needs. 0 or K_ERR_NOMEM. */
int kb_group_offset_put(kb_gcoord_t *c, kp_str_t group_id, kp_str_t topic, int32_t partition,
                        const kb_offset_t *o);
/* Removes one offset; returns whether it existed. */
bool kb_group_offset_delete(kb_gcoord_t *c, kp_str_t group_id, kp_str_t topic,
                            int32_t partition);
const kb_offset_t *kb_group_offset_get(const kb_group_t *g, kp_str_t topic, int32_t partition);
/* Splits an offsets-map key into topic and partition. */
void kb_group_offset_key(const kb_gmap_ent_t *e, kp_str_t *topic, int32_t *partition);

/* A topic was deleted: drop its offsets from every group (each through opts.offset_expired,
 * so the caller writes tombstones); Empty groups left without offsets are deleted. */
void kb_gcoord_topic_deleted(kb_gcoord_t *c, kp_str_t topic);

/* OffsetDelete: group-level error (0, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP);
 * then kb_group_offset_delete_check per partition gives 0 or GROUP_SUBSCRIBED_TO_TOPIC. */
int16_t kb_group_offset_delete_group_check(kb_gcoord_t *c, kp_str_t group_id,
                                           kb_group_t **out);
int16_t kb_group_offset_delete_check(const kb_group_t *g, kp_str_t topic);

/* ------------------------------------------------------------------------------------------ */
/* Reload from the offsets log                                                                 */

typedef struct {
    kp_str_t member_id;
    kp_str_t group_instance_id; /* len -1 = null */
    kp_str_t client_id;
    kp_str_t client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    kp_bytes_t subscription; /* metadata of the selected protocol */
    kp_bytes_t assignment;
} kb_gmember_load_t;

typedef struct {
    kp_str_t group_id;
    kp_str_t protocol_type; /* len -1 = null */
    kp_str_t protocol_name; /* len -1 = null */
    kp_str_t leader_id;     /* len -1 = null */
    int32_t generation_id;
    int64_t state_ts;
    const kb_gmember_load_t *members;
    int32_t n_members;
} kb_group_load_t;

/* Replaces the group's metadata with a stored record (offsets are kept). The group loads as
 * Stable when it has members (each gets a fresh session deadline from now), else Empty. */
int kb_group_load(kb_gcoord_t *c, const kb_group_load_t *l, kb_gtime_t now);
/* A group tombstone in the log: drops the group and its offsets, silently. */
void kb_group_unload(kb_gcoord_t *c, kp_str_t group_id);

#endif

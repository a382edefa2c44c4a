/*
 * Private helpers shared by the data-path handler files (h_produce.c, h_fetch.c,
 * h_list_offsets.c, h_delete_records.c, h_offset_for_leader_epoch.c, h_init_producer_id.c).
 * Not part of the agreed kb.h interface.
 *
 * Per-broker handler state: the "api" subsystem (kb_api_subsys, broker/core/subsys.h) makes one
 * kb_hstate_t per broker in its slot and frees it at close. Handlers get it with kb_hstate(b),
 * which also creates it on first use so a handler never depends on init having run.
 * Everything here runs on the broker's loop thread.
 *
 * Leader epochs: a single node is the leader of every partition at epoch 0, forever. Batches
 * are stamped with partitionLeaderEpoch 0 by storage, ListOffsets/Fetch report 0, and a
 * request's current_leader_epoch is checked against 0 (kb_leader_epoch_check).
 */
#ifndef KB_H_COMMON_H
#define KB_H_COMMON_H

#include <stdint.h>

#include "broker/kb.h"
#include "broker/core/subsys.h"
#include "protocol/gen/kp_fetch.h"
#include "protocol/gen/kp_produce.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_errors.h"

#define KB_LEADER_EPOCH 0

typedef struct kb_fetch_waiter kb_fetch_waiter_t;

typedef struct kb_hstate {
    kb_broker_t *broker;
    /* h_fetch.c: long-poll fetches waiting for data (doubly linked, owned by each request). */
    kb_fetch_waiter_t *waiters;
    /* h_init_producer_id.c: ids below pid_limit are reserved on disk; pid_next is the next
     * one to hand out. pid_path is the block file (heap, owned here); NULL until first use. */
    int64_t pid_next;
    int64_t pid_limit;
    char *pid_path;
    /* The block reservation being written off the loop (h_init_producer_id.c), NULL when
     * none: requests for ids wait behind it in arrival order. Owned by its own job. */
    struct kb_pid_job *pid_job;
    /* The topic-change lane (kb_topic_lane_enter): the request holding it, the one replayed
     * into it, and the requests waiting for it in arrival order (nodes in their arenas). */
    kb_req_t *lane_owner, *lane_granted;
    struct kb_lane_wait *lane_head, *lane_tail;
    bool lane_pumping;
    /* h_autocreate.c: auto-creations in flight, or just finished (heap, owned here). */
    struct kb_autocreate *autocreates;
    /* h_auth_writes.c: the ACL and credential file writes, per file oldest first; the head
     * is being written (heap, owned by the queue). */
    struct kb_authw_job *authw_head[2], *authw_tail[2];
} kb_hstate_t;

/* The handler state of b, created on first use; NULL only when out of memory. */
kb_hstate_t *kb_hstate(kb_broker_t *b);
/* The handler state of b if it exists (after kb_handlers_close it does not). */
kb_hstate_t *kb_hstate_find(kb_broker_t *b);

/* The data-path subsystem (h_common.c); the table in broker/subsystems.c lists it. */
extern const kb_subsys_t kb_api_subsys;

/* Internal to h_fetch.c / h_init_producer_id.c, called when the api subsystem closes. */
void kb_fetch_close_all(kb_hstate_t *hs);
void kb_pid_close(kb_hstate_t *hs);

/*
 * current_leader_epoch check (Fetch v9+, ListOffsets v4+, OffsetForLeaderEpoch): -1 means
 * "don't fence"; lower than ours is FENCED_LEADER_EPOCH, higher is UNKNOWN_LEADER_EPOCH.
 */
static inline int16_t kb_leader_epoch_check(int32_t current_leader_epoch)
{
    if (current_leader_epoch == -1 || current_leader_epoch == KB_LEADER_EPOCH)
        return KP_ERR_NONE;
    return current_leader_epoch < KB_LEADER_EPOCH ? KP_ERR_FENCED_LEADER_EPOCH
                                                  : KP_ERR_UNKNOWN_LEADER_EPOCH;
}

/*
 * Storage status -> Kafka error code for a partition operation. Disk full (K_ERR_NOSPC) and
 * I/O failures both become KAFKA_STORAGE_ERROR, which Kafka returns for a failed log dir and
 * every client treats as retriable (the data may fit again once retention frees space).
 */
static inline int16_t kb_storage_error(int rc)
{
    switch (rc) {
    case 0: return KP_ERR_NONE;
    case K_ERR_RANGE: return KP_ERR_OFFSET_OUT_OF_RANGE;
    case K_ERR_NOENT: return KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    case K_ERR_NOSPC:
    case K_ERR_AGAIN: /* a file could not be opened for want of descriptors or memory */
    case K_ERR_IO: return KP_ERR_KAFKA_STORAGE_ERROR;
    default: return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
}

/* Finds a topic by a wire name (not NUL-terminated). NULL if absent or the name is null. */
static inline ks_topic_t *kb_topic_find(ks_store_t *s, kp_str_t name)
{
    return name.len > 0 ? ks_topic_find(s, name.ptr, (size_t)name.len) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Seams the unit tests drive without sockets (tests/broker/test_h_*.c)                        */

typedef struct {
    kb_broker_t *broker; /* NULL in tests: no fetch wake-ups */
    ks_store_t *store;
    const kb_config_t *cfg; /* auto-create, num.partitions, message.max.bytes; may be NULL */
    int16_t version;
    int64_t now_ms; /* wall clock: LogAppendTime, segment.ms and producer-state times */
    kb_req_t *req;  /* for authorization (auth.h); NULL in tests: everything allowed */
    kp_arena_t *arena; /* per-record errors (keyless records on compacted topics, schema
                        * validation; KIP-467); NULL in tests: none are listed */
    int16_t acks;      /* the request's acks (min.insync.replicas applies to -1 only) */
} kb_produce_ctx_t;

/* The Kafka error code for one partition's records blob (see h_produce.c); h gets the header
 * of the (single) batch when the answer is NONE. */
int16_t kb_produce_check_records(const uint8_t *p, int32_t len, int32_t max_message_bytes,
                                 int16_t version, kp_batch_hdr_t *h);
/* The per-topic rules of h_produce_rules.c, in the order produce applies them. */
int16_t kb_produce_check_isr(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                             kp_str_t topic, int32_t partition,
                             kp_produce_resp_partition_produce_response_t *out);
int16_t kb_produce_check_timestamps(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                                    kp_str_t topic, int32_t partition, const uint8_t *b,
                                    int32_t len, const kp_batch_hdr_t *h,
                                    kp_produce_resp_partition_produce_response_t *out);
/* compression.type: may point records and len at a rewritten batch owned by ctx->arena. */
int16_t kb_produce_recompress(const kb_produce_ctx_t *ctx, const ks_topic_config_t *c,
                              const kp_batch_hdr_t *h, int32_t max_message_bytes,
                              uint8_t **records, int32_t *len);
/* Validates and appends one partition's records (rewritten in place). On NONE fills out's
 * offsets, and *part_out and *next_offset for an acks=all fsync wait. */
int16_t kb_produce_partition(const kb_produce_ctx_t *ctx, kp_str_t topic, int32_t partition,
                             uint8_t *records, int32_t len,
                             kp_produce_resp_partition_produce_response_t *out,
                             ks_part_t **part_out, int64_t *next_offset);

typedef struct {
    ks_store_t *store;
    int32_t fetch_max_bytes; /* broker fetch.max.bytes, <= 0 = no cap */
    int16_t version;
    kb_req_t *req; /* for authorization (READ on each topic); NULL in tests: allowed */
    /* Zero copy (kb_req_zero_copy(req)): record bytes are not read but left as holes
     * (KP_HOLE) with file ranges added to req (kb_req_add_file); msgs (one per requested
     * partition) then gets each one's message count, as offsets spanned, for the counters. */
    bool zero_copy;
    int64_t *msgs;
} kb_fetch_ctx_t;

/*
 * Builds a full Fetch response for m: arrays from a, record bytes appended to data (the
 * records views point into data, so data must stay unchanged until encoded). parts (optional,
 * one per requested partition in request order) gets each resolved partition or NULL.
 * Returns the record bytes returned, or a negative status; *any_error when a partition (or
 * the session check) failed.
 */
int64_t kb_fetch_fill(const kb_fetch_ctx_t *ctx, const kp_fetch_req_t *m, kp_arena_t *a,
                      kp_fetch_resp_t *resp, kp_buf_t *data, ks_part_t **parts, bool *any_error);

/* ListOffsets for one partition and timestamp (see h_list_offsets.c); returns the error code. */
int16_t kb_list_offsets_resolve(ks_part_t *p, int64_t ts, int32_t current_leader_epoch,
                                int64_t *offset, int64_t *found_ts, int32_t *epoch);

/* OffsetForLeaderEpoch for one partition (see h_offset_for_leader_epoch.c). */
int16_t kb_epoch_end_offset(ks_part_t *p, int32_t current_leader_epoch, int32_t leader_epoch,
                            int32_t *epoch_out, int64_t *end_offset);

/* DeleteRecords for one partition (see h_delete_records.c); *low_watermark gets the new log
 * start, or -1 on error. */
int16_t kb_delete_records_part(ks_part_t *p, int64_t offset, int64_t *low_watermark);

/* Producer ids (see h_init_producer_id.c): the next unused id, reserving a new block in
 * <dir>/producer_id_block when the reserved one runs out. 0 or a negative status. */
int kb_pid_next(kb_hstate_t *hs, const char *dir, int64_t *pid);

/*
 * Blocking file work (create + fsync) off the loop thread, the request held until it is done:
 * run() on libuv's threadpool (no store lock, touches only what the caller set up for it),
 * then done() on the loop, which builds the answer (KB_DONE, or < 0: the connection closes).
 * kb_offloop_start returns KB_PENDING and completes req after done(). With no connection (a
 * handler called directly by unit tests) or a pool that refuses the job, both run at once and
 * done()'s result is returned. done() returning KB_PENDING leaves the completion to whoever
 * else the answer waits for (AlterConfigs' broker changes). o must live until done() ran (the
 * request's arena will do).
 */
typedef struct kb_offloop {
    uv_work_t work;
    kb_req_t *req;
    void (*run)(struct kb_offloop *o);
    int (*done)(struct kb_offloop *o);
    void *ud;
} kb_offloop_t;
int kb_offloop_start(kb_req_t *req, kb_offloop_t *o);

/*
 * Changes of existing topics (CreatePartitions, topic AlterConfigs) run one request at a time,
 * in arrival order, as Kafka's controller runs them: each is checked against the state the one
 * before it left, and storage never sees two changes of one topic at once (its K_ERR_AGAIN).
 * kb_topic_lane_enter is the handler's first step: true when req holds the lane (the handler
 * goes on and calls kb_topic_lane_leave once its changes are finished, also when it made
 * none); false when req was queued behind the holder: the handler returns KB_PENDING having
 * done nothing, and req runs again from the start (kb_req_rerun) when its turn comes (a
 * request whose client left meanwhile is completed unanswered instead). Loop thread.
 */
typedef struct kb_lane_wait {
    kb_req_t *req;
    struct kb_lane_wait *next;
} kb_lane_wait_t;
bool kb_topic_lane_enter(kb_req_t *req);
void kb_topic_lane_leave(kb_req_t *req);
void kb_topic_lane_close(kb_hstate_t *hs); /* the api subsystem's close */

/*
 * Auto-creation off the loop (h_autocreate.c), for Metadata and Produce. After the caller's
 * CREATE check, kb_autocreate_start returns 0 when the topic exists now (*t): created at once
 * (a unit test's direct call with no connection, or a pool that refuses the job) or by a
 * creation whose waiters are being run again; 1 when its creation runs on the threadpool
 * (started now or by an earlier request: *job); < 0 when it failed (a storage status, also
 * for a failure of the same name under a second ago, so replays do not start it again).
 * kb_autocreate_wait then queues req on one job (at most once per pass, and not when the audit
 * trail will run the pass again) and returns KB_PENDING, which the handler returns having had
 * no effect: req runs again from the start (kb_req_rerun) once the topic exists, and
 * kb_autocreate_just_made is true for the name during that pass (Metadata answers
 * LEADER_NOT_AVAILABLE for a topic it just made, as Kafka does). Loop thread.
 */
typedef struct kb_autocreate kb_autocreate_t;
int kb_autocreate_start(kb_req_t *req, const char *name, int32_t partitions, ks_topic_t **t,
                        kb_autocreate_t **job);
int kb_autocreate_wait(kb_req_t *req, kb_autocreate_t *job);
bool kb_autocreate_just_made(kb_req_t *req, const char *name);
void kb_autocreate_close(kb_hstate_t *hs); /* the api subsystem's close */

#endif

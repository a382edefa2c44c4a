/*
 * The durable offsets log: committed offsets and group metadata kept as records in the
 * internal topic __consumer_offsets (partition 0), written and read through the storage API.
 * The record layout is described at the top of offsets_store.c.
 *
 * On open the log is replayed into the coordinator (kb_gcoord_t). Writers append records and
 * then wait for kb_ostore_sync before telling a client its commit is durable. The log stays
 * bounded: once more than a threshold has been written since the last snapshot, the whole
 * current state is appended again as a fresh run of records, and after that run is fsynced
 * everything before it is dropped with DeleteRecords.
 *
 * Ownership: kb_ostore_t belongs to the caller (one per broker) and borrows the store and the
 * coordinator, which must outlive it. Threading: the broker loop thread only.
 */
#ifndef KB_OFFSETS_STORE_H
#define KB_OFFSETS_STORE_H

#include <stdint.h>

#include "broker/group/group.h"
#include "storage/ks.h"

#define KB_OFFSETS_TOPIC "__consumer_offsets"
/* Segment size of the offsets topic when created (capped here so the log stays small on
 * flash even with Kafka's 1 GiB default log.segment.bytes). */
#define KB_OFFSETS_SEGMENT_MAX (8 * 1024 * 1024)

typedef struct kb_ostore kb_ostore_t;

typedef struct {
    kp_str_t topic;
    int32_t partition;
    kb_offset_t o;
    bool tombstone;
} kb_ostore_rec_t;

/*
 * Opens (creating if needed) the offsets topic and replays it into c. segment_bytes is used
 * when the topic is created (0 = the store's default, capped at KB_OFFSETS_SEGMENT_MAX); the
 * snapshot threshold is the topic's segment size. now: both clocks (members replayed as
 * Stable get session deadlines on now.mono).
 */
int kb_ostore_open(ks_store_t *s, kb_gcoord_t *c, int64_t segment_bytes, kb_gtime_t now,
                   kb_ostore_t **out);
/* NULL is a no-op. Outstanding sync callbacks of kb_ostore_sync still run (their args are the
 * caller's); a snapshot in flight is abandoned safely. */
void kb_ostore_close(kb_ostore_t *os);

/* Appends offset records (and tombstones) of one group as one batch. *end receives the offset
 * after the last record, for kb_ostore_sync. 0 or a negative K_ERR_* (nothing written).
 * now (here and below): wall-clock ms, the records' timestamp. */
int kb_ostore_append_offsets(kb_ostore_t *os, kp_str_t group_id, const kb_ostore_rec_t *recs,
                             int32_t n, int64_t now, int64_t *end);
/* Appends the group's metadata record, or its tombstone when g->state is DEAD. */
int kb_ostore_append_group(kb_ostore_t *os, const kb_group_t *g, int64_t now, int64_t *end);
/* cb(arg, status) on the loop thread once everything below end is on disk. */
int kb_ostore_sync(kb_ostore_t *os, int64_t end, ks_sync_cb cb, void *arg);
/* Writes a snapshot and schedules the trim when enough has been written since the last one;
 * call after appends. Errors are logged through the return value only (the log just grows). */
int kb_ostore_maybe_compact(kb_ostore_t *os, int64_t now);
/* Forces a snapshot now (tests). */
int kb_ostore_compact(kb_ostore_t *os, int64_t now);

ks_part_t *kb_ostore_part(kb_ostore_t *os);
/* Records replayed by open and records skipped as unreadable (for logs and tests). */
void kb_ostore_load_stats(const kb_ostore_t *os, int64_t *records, int64_t *skipped);

#endif

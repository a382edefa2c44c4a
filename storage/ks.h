/*
 * Storage engine: durable, append-only partition logs on local flash. No networking.
 *
 * Objects: one ks_store_t per process (all log.dirs), ks_topic_t per topic, ks_part_t per
 * partition. All are owned by the store; pointers stay valid until the topic is deleted or
 * the store closed.
 *
 * Threads (@locality): every function here is called from ONE thread, the caller's "loop"
 * thread, except where marked. Internally flusher threads fsync; they never call back into
 * the caller except through opts.on_sync_ready, which may run on a flusher thread and
 * must only wake the loop (uv_async_send). The loop then calls ks_store_run_completions(),
 * which invokes ks_sync_cb callbacks on the loop thread. The log cleaner runs on threads of
 * its own (opts.cleaner, storage/cleaner.c); it never calls back into the caller, and its log
 * lines reach opts.log on the loop thread (queued, drained by ks_store_tick).
 *
 * Errors: 0 or a negative K_ERR_* (protocol/k_status.h).
 *   K_ERR_NOSPC  over the box-wide budget with policy reject, or ENOSPC (retriable)
 *   K_ERR_IO     an I/O call failed (errno logged); the partition stays readable
 *   K_ERR_RANGE  offset outside [log_start, log_end]
 *   K_ERR_NOENT / K_ERR_EXISTS / K_ERR_INVAL for topics
 */
#ifndef KS_H
#define KS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/kp_buf.h"

typedef struct ks_store ks_store_t;
typedef struct ks_topic ks_topic_t;
typedef struct ks_part ks_part_t;

enum { KS_FULL_REJECT = 0, KS_FULL_DELETE_OLDEST = 1 };
enum { KS_TS_CREATE_TIME = 0, KS_TS_LOG_APPEND_TIME = 1 };
/* cleanup.policy: delete (retention), compact, or both ("compact,delete"). */
enum { KS_CLEANUP_DELETE = 0, KS_CLEANUP_COMPACT = 1, KS_CLEANUP_COMPACT_DELETE = 2 };
static inline bool ks_cleanup_compacts(int policy)
{
    return policy == KS_CLEANUP_COMPACT || policy == KS_CLEANUP_COMPACT_DELETE;
}
static inline bool ks_cleanup_deletes(int policy)
{
    return policy != KS_CLEANUP_COMPACT;
}
/* compression.type */
enum {
    KS_COMPRESSION_PRODUCER = 0, /* keep the producer's codec (batches stored as they came) */
    KS_COMPRESSION_UNCOMPRESSED,
    KS_COMPRESSION_GZIP,
    KS_COMPRESSION_SNAPPY,
    KS_COMPRESSION_LZ4,
    KS_COMPRESSION_ZSTD,
};
#define KS_THROTTLED_MAX 256 /* *.replication.throttled.replicas text, NUL included */

/*
 * Per-topic settings: every topic-level key of Kafka 4.1, Kafka's names in comments, broker
 * default key in brackets. -1 = unlimited where noted. Keys marked "accepted" are validated,
 * stored, persisted and reported, but change nothing on one node (docs/configuration.md).
 */
typedef struct {
    int64_t segment_bytes;        /* segment.bytes (log.segment.bytes) */
    int64_t segment_ms;           /* segment.ms (log.roll.ms) */
    int64_t retention_ms;         /* retention.ms, -1 = forever */
    int64_t retention_bytes;      /* retention.bytes per partition, -1 = unlimited */
    int32_t index_interval_bytes; /* index.interval.bytes */
    int64_t flush_messages;       /* flush.messages: fsync after this many messages */
    int64_t flush_ms;             /* flush.ms: fsync dirty data at least this often */
    int32_t max_message_bytes;    /* max.message.bytes (largest batch) */
    int timestamp_type;           /* message.timestamp.type: KS_TS_* */
    int cleanup_policy;           /* cleanup.policy: KS_CLEANUP_* */
    int compression_type;         /* compression.type: KS_COMPRESSION_* */
    int32_t compression_gzip_level; /* compression.gzip.level, -1 = codec default */
    int32_t compression_lz4_level;  /* compression.lz4.level */
    int32_t compression_zstd_level; /* compression.zstd.level */
    int64_t delete_retention_ms;    /* delete.retention.ms: tombstones kept (compaction) */
    int64_t file_delete_delay_ms;   /* file.delete.delay.ms: accepted */
    int64_t local_retention_bytes;  /* local.retention.bytes: accepted (tiered storage) */
    int64_t local_retention_ms;     /* local.retention.ms: accepted (tiered storage) */
    int64_t max_compaction_lag_ms;  /* max.compaction.lag.ms (compaction) */
    int64_t min_compaction_lag_ms;  /* min.compaction.lag.ms (compaction) */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio (compaction) */
    int64_t timestamp_after_max_ms;   /* message.timestamp.after.max.ms */
    int64_t timestamp_before_max_ms;  /* message.timestamp.before.max.ms */
    int32_t min_insync_replicas;      /* min.insync.replicas */
    bool preallocate;                 /* preallocate: accepted */
    bool remote_storage_enable;       /* remote.storage.enable: only false is accepted */
    bool remote_log_copy_disable;     /* remote.log.copy.disable: accepted */
    bool remote_log_delete_on_disable; /* remote.log.delete.on.disable: accepted */
    bool unclean_leader_election_enable; /* unclean.leader.election.enable: accepted */
    int32_t segment_index_bytes;         /* segment.index.bytes: accepted */
    int64_t segment_jitter_ms;           /* segment.jitter.ms: accepted */
    char leader_throttled_replicas[KS_THROTTLED_MAX];   /* accepted (no replication) */
    char follower_throttled_replicas[KS_THROTTLED_MAX]; /* accepted (no replication) */
    /* Schema validation at the door (the broker's registry enforces them; storage only keeps
     * them): confluent.{key,value}.schema.validation, confluent.{key,value}.subject.name.
     * strategy (KS_SUBJECT_*), depot.value.schema.validation (KS_SCHEMA_CHECK_*). */
    bool key_schema_validation;
    bool value_schema_validation;
    int key_subject_strategy;
    int value_subject_strategy;
    int value_schema_check;
} ks_topic_config_t;

enum { KS_SUBJECT_TOPIC = 0, KS_SUBJECT_RECORD = 1, KS_SUBJECT_TOPIC_RECORD = 2 };
enum { KS_SCHEMA_CHECK_ID = 0, KS_SCHEMA_CHECK_FULL = 1 };

/* Kafka's defaults (segment 1 GiB, retention 7 days, flush by the OS, ...). */
void ks_topic_config_default(ks_topic_config_t *c);
/* Sets one topic-level key ("retention.ms", ...) from text, validated as Kafka does.
 * K_ERR_NOENT for an unknown key, K_ERR_INVAL for a bad value (then c is unchanged); a
 * message for the client goes to err (may be NULL). */
int ks_topic_config_set_msg(ks_topic_config_t *c, const char *key, const char *value,
                            char *err, size_t errlen);
int ks_topic_config_set(ks_topic_config_t *c, const char *key, const char *value);
/* Text of one key's value into buf; K_ERR_NOENT for an unknown key. */
int ks_topic_config_get(const ks_topic_config_t *c, const char *key, char *buf, size_t len);
/* Names of all topic-level keys in name order, NULL-terminated (DescribeConfigs lists them).
 * A key's position is its bit in a topic's override mask. */
const char *const *ks_topic_config_keys(void);
int ks_topic_config_index(const char *key); /* position in ks_topic_config_keys, or -1 */
/* Kafka's broker-level key a topic key defaults from ("log.retention.ms" for retention.ms),
 * or NULL where Kafka has none (DescribeConfigs synonyms). */
const char *ks_topic_config_broker_key(const char *key);
/* What the key does on Depot, one sentence for docs/configuration.md ("" if unknown). */
const char *ks_topic_config_doc(const char *key);
/* Kafka's type name of a key: "long", "int", "string", "boolean", "double", "list". */
const char *ks_topic_config_type(const char *key);
/* Copies the keys whose bit is set in mask from src to dst. */
void ks_topic_config_copy(ks_topic_config_t *dst, const ks_topic_config_t *src, uint64_t mask);

/* Log callback, 0 error .. 3 debug. Called on the loop thread only: lines produced on the
 * cleaner threads are queued and handed over by ks_store_tick / ks_store_run_completions. */
typedef void (*ks_log_fn)(int level, const char *msg, void *ud);

/* The log cleaner (storage/cleaner.c), Kafka's broker-level log.cleaner.* settings. */
typedef struct {
    bool enable;                    /* log.cleaner.enable; false: no threads, nothing compacts */
    int threads;                    /* log.cleaner.threads (1 if 0) */
    int64_t dedupe_buffer_size;     /* log.cleaner.dedupe.buffer.size, split over the threads */
    double io_max_bytes_per_second; /* log.cleaner.io.max.bytes.per.second, <= 0: no cap */
    int64_t backoff_ms;             /* log.cleaner.backoff.ms: sleep when nothing is dirty */
} ks_cleaner_opts_t;

typedef struct {
    const char *const *dirs; /* log.dirs; copied */
    int n_dirs;
    int64_t dirs_max_bytes; /* log.dirs.max.bytes: box-wide budget, 0 = none */
    int full_policy;        /* KS_FULL_* */
    int max_open_files;     /* cap on segment/index fds across partitions (LRU) */
    int32_t node_id;        /* written to meta.properties */
    ks_topic_config_t defaults;
    ks_log_fn log;
    void *log_ud;
    void (*on_sync_ready)(void *ud); /* may run on a flusher thread; see top */
    void *sync_ud;
    int64_t producer_id_expiration_ms; /* producer.id.expiration.ms; 0 = Kafka's 1 day */
    /* log.flush.offset.checkpoint.interval.ms: how often the recovery-point checkpoint and the
     * tail marks move (0 = 60 s). Recovery after a crash re-reads about what was written in
     * one interval. */
    int64_t checkpoint_interval_ms;
    ks_cleaner_opts_t cleaner;
    /* Topics the budget's delete-oldest policy must never shrink (the broker's own topics:
     * the audit trail, committed offsets, schemas). When only they are left, appends get
     * K_ERR_NOSPC (pushback) instead. NULL: every topic may be shrunk. Called with the store
     * lock held; must not call back into storage. */
    bool (*budget_exempt)(const char *topic, size_t len);
} ks_store_opts_t;

/* Opens every log dir: creates meta.properties (cluster id, node id) on first start, loads
 * topics, and recovers partitions that were not cleanly closed. */
int ks_store_open(const ks_store_opts_t *opts, ks_store_t **out);
/* Flushes everything, writes the clean-shutdown marker, frees all. NULL is a no-op. */
void ks_store_close(ks_store_t *s);
const char *ks_store_cluster_id(const ks_store_t *s);
/* Topic defaults in force (opts.defaults, or the last ks_store_set_defaults). */
const ks_topic_config_t *ks_store_defaults(const ks_store_t *s);
/* Dynamic broker defaults: every topic's keys without an override take the new values at
 * once (the next tick's retention uses them). Not persisted here. Loop thread. */
void ks_store_set_defaults(ks_store_t *s, const ks_topic_config_t *defaults);
/* Periodic work (call about once a second): time-based rolls, retention, flush.ms. */
void ks_store_tick(ks_store_t *s, int64_t now_ms);
/* Runs finished ks_part_sync callbacks (loop thread). */
void ks_store_run_completions(ks_store_t *s);

/* fsync latency histogram: upper bounds (inclusive, microseconds) of the first
 * KS_FSYNC_BUCKETS - 1 buckets; the last bucket is +Inf. */
#define KS_FSYNC_BUCKETS 14
extern const int64_t ks_fsync_bounds_us[KS_FSYNC_BUCKETS - 1];

/*
 * Where an acks=all wait (ks_part_sync -> its callback on the loop) spends its time, one
 * histogram per stage (docs/benchmarks.md, "the acks=all tail"):
 *   QUEUE  ks_part_sync -> the flusher pass that covers it starts (its snapshot); waiting for
 *          a flusher thread to wake, or for the pass in progress to end (group commit)
 *   PASS   that pass's start -> its result published (the fdatasyncs, the lock taken again)
 *   WAKE   published -> the callback runs on the loop (eventfd wake-up, the loop's own work)
 *   TOTAL  ks_part_sync -> callback
 * Finer bounds than the fsync histogram: the stages of a fast disk are tens of microseconds.
 */
enum { KS_STAGE_QUEUE, KS_STAGE_PASS, KS_STAGE_WAKE, KS_STAGE_TOTAL, KS_STAGES };
#define KS_STAGE_BUCKETS 16
extern const int64_t ks_stage_bounds_us[KS_STAGE_BUCKETS - 1];
extern const char *const ks_stage_names[KS_STAGES];

typedef struct {
    int64_t bytes_on_disk;   /* all segments + indexes */
    int64_t bytes_appended;  /* since open */
    int64_t fsyncs;
    int64_t segments_deleted_retention;
    int64_t segments_deleted_budget; /* delete-oldest policy */
    int64_t appends_rejected_budget; /* reject policy */
    int64_t io_errors;
    int32_t open_files;
    int32_t partitions;
    /* Each fdatasync/directory fsync of a flusher pass, timed (open/close/recovery fsyncs are
     * counted in fsyncs only). Per bucket, not cumulative. */
    int64_t fsync_hist[KS_FSYNC_BUCKETS];
    int64_t fsync_us_sum;
    int64_t sync_stage_hist[KS_STAGES][KS_STAGE_BUCKETS]; /* per bucket, not cumulative */
    int64_t sync_stage_us_sum[KS_STAGES];
    int64_t read_cache_hits;   /* slices that started from the partition's read cache */
    int64_t read_cache_misses; /* slices that searched the offset index */
} ks_stats_t;
void ks_store_stats(const ks_store_t *s, ks_stats_t *st);

/*
 * Retention floor: fn(ud, p) returns the lowest offset of p that retention.ms,
 * retention.bytes and the log.dirs.max.bytes budget must keep (a segment is deleted only when
 * every offset in it is below the floor); INT64_MAX keeps nothing back. The store-and-forward
 * uplink returns the offset the central cluster has not yet acknowledged, so unforwarded data
 * is never deleted: with the reject policy producers then get K_ERR_NOSPC (retriable), with
 * delete-oldest only forwarded segments are candidates. DeleteRecords does not consult it.
 * Called on the loop thread from ks_store_tick and appends WITH THE STORE'S LOCK HELD: fn may
 * only use ks_part_topic, ks_part_index and ks_topic_name (no locking accessors such as
 * ks_part_log_start, which would deadlock). fn NULL removes the floor.
 */
typedef int64_t (*ks_floor_fn)(void *ud, const ks_part_t *p);
void ks_store_set_retention_floor(ks_store_t *s, ks_floor_fn fn, void *ud);

/* Cleaner progress since open (any thread may read; copied under the store lock). */
typedef struct {
    int64_t cleans;             /* passes finished and swapped in */
    int64_t cleans_aborted;     /* passes given up (topic deleted, retention, I/O error, stop) */
    int64_t passes_map_full;    /* passes that stopped early: the key map was full */
    int64_t bytes_read;         /* segment bytes read (map build + rewrite) */
    int64_t bytes_written;      /* cleaned segment bytes written */
    int64_t bytes_freed;        /* input bytes minus output bytes, over all swaps */
    int64_t records_read;
    int64_t records_removed;    /* superseded by a later record with the same key */
    int64_t tombstones_removed; /* past their delete horizon */
    int64_t invalid_records;    /* records without a key (removed, as Kafka does) */
    int64_t empty_batches_kept; /* a producer's last batch kept without records */
    int64_t throttled_ms;       /* time slept for log.cleaner.io.max.bytes.per.second */
    int64_t busy_ms;            /* time spent cleaning */
    int64_t last_clean_ms;      /* duration of the last pass */
    int64_t last_clean_end_ms;  /* wall clock at the end of the last pass, 0 = none */
    int64_t last_bytes_in, last_bytes_out; /* the last pass's partition bytes before/after */
    double last_mb_per_sec;     /* the last pass: input MiB / duration */
    double max_dirty_ratio;     /* the dirtiest compacted partition at the last pick */
    int32_t running;            /* passes in progress now */
    int32_t threads;            /* cleaner threads running */
} ks_cleaner_stats_t;
void ks_store_cleaner_stats(const ks_store_t *s, ks_cleaner_stats_t *st);
/* True when cleaner threads run (log.cleaner.enable and they started). */
bool ks_store_cleaner_enabled(const ks_store_t *s);

/* ------------------------------------------------------------------------------------------ */
/* Topics                                                                                       */

/* Validates the name as Kafka does (1..249 chars of [a-zA-Z0-9._-], not "." or ".."):
 * K_ERR_INVAL. Exists: K_ERR_EXISTS. cfg NULL = store defaults. Persisted before returning. */
int ks_topic_create(ks_store_t *s, const char *name, int32_t partitions,
                    const ks_topic_config_t *cfg, ks_topic_t **out);
/*
 * The same in three steps, so the files are made and fsynced off the loop thread with no
 * store lock held (a slow flash write must not stall every client):
 *   begin   loop thread, under the lock: checks the name (K_ERR_INVAL, K_ERR_EXISTS also
 *           while another create of it is between begin and finish), places the partitions
 *           in the log dirs and reserves the name. Nothing can find the topic yet.
 *   write   any ONE thread, no lock, touches only pt: makes the partition directories,
 *           writes the metadata file last (tmp + fsync + rename + dir fsync) and fsyncs the
 *           log dirs; on failure removes what it made. Returns its status (also kept in pt).
 *   finish  loop thread: publishes the topic under the lock (*out, may be NULL) or rolls
 *           the reservation back; returns write's status (K_ERR_CLOSED if the store was
 *           closed meanwhile: its files are left for the next open). Frees pt. Without a
 *           write before it, finish just lets the name go (K_ERR_INVAL).
 * A crash anywhere leaves no topic (orphan directories are removed at the next open) or the
 * whole topic. Every begin that returned 0 must be finished exactly once.
 */
typedef struct ks_topic_pending ks_topic_pending_t;
int ks_topic_create_begin(ks_store_t *s, const char *name, int32_t partitions,
                          const ks_topic_config_t *cfg, ks_topic_pending_t **pt);
int ks_topic_create_write(ks_topic_pending_t *pt);
int ks_topic_create_finish(ks_topic_pending_t *pt, ks_topic_t **out);
/* Removes the topic and its files. Pointers to it and its partitions die here. */
int ks_topic_delete(ks_store_t *s, const char *name);
/*
 * The same in three steps, so the directory fsyncs run off the loop thread without the lock:
 *   begin   loop thread: the topic is gone at once (directories renamed to *-delete, out of
 *           the tables; pointers to it die here); K_ERR_NOENT when there is none.
 *   sync    any ONE thread, no lock: fsyncs the log dirs, so the renames are durable.
 *   finish  loop thread: hands the renamed directories to the flusher for removal (not
 *           before: their removal must not reach the disk ahead of the renames) and frees pd.
 * A crash before sync leaves the whole topic or none of it (leftover *-delete directories go at
 * the next open). Every begin that returned 0 must be finished exactly once.
 */
typedef struct ks_topic_deleting ks_topic_deleting_t;
int ks_topic_delete_begin(ks_store_t *s, const char *name, ks_topic_deleting_t **pd);
void ks_topic_delete_sync(ks_topic_deleting_t *pd);
void ks_topic_delete_finish(ks_topic_deleting_t *pd);
bool ks_topic_name_valid(const char *name, size_t len);

ks_topic_t *ks_topic_find(ks_store_t *s, const char *name, size_t len);
ks_topic_t *ks_topic_find_by_id(ks_store_t *s, kp_uuid_t id);
/* Iteration in name order: pass NULL for the first. */
ks_topic_t *ks_topic_next(ks_store_t *s, ks_topic_t *prev);

const char *ks_topic_name(const ks_topic_t *t);
kp_uuid_t ks_topic_id(const ks_topic_t *t); /* random, non-zero, persisted */
int32_t ks_topic_partitions(const ks_topic_t *t);
const ks_topic_config_t *ks_topic_config(const ks_topic_t *t);
/* The topic's overrides: bit i (ks_topic_config_keys order) set = key i was set on the topic
 * and is persisted; the other keys follow the store defaults, also when those change. */
uint64_t ks_topic_overrides(const ks_topic_t *t);
/* AlterConfigs: the topic's overrides become exactly mask, with values from cfg; the others
 * revert to the store defaults. Persisted (atomic rewrite of the topic metadata) before it
 * returns; on error nothing changed. K_ERR_AGAIN while another change of the topic is between
 * begin and finish (below). Loop thread; ks_topic_configs_begin/write/finish in one go. */
int ks_topic_set_configs(ks_store_t *s, ks_topic_t *t, const ks_topic_config_t *cfg,
                         uint64_t mask);
/* CreatePartitions: grows the topic to count partitions (K_ERR_INVAL if count is not larger or
 * over the limit). Existing partition pointers stay valid. Persisted before it returns.
 * K_ERR_AGAIN as above. ks_topic_grow_begin/write/finish in one go. */
int ks_topic_add_partitions(ks_store_t *s, ks_topic_t *t, int32_t count);
/*
 * Both in three steps, so the files are made and fsynced off the loop thread with no store
 * lock held (storage/topic_change.c):
 *   begin   loop thread, under the lock: checks (grow: K_ERR_INVAL as above), renders the new
 *           metadata file and (grow) places the new partitions in the log dirs. One change per
 *           topic at a time: K_ERR_AGAIN while another is between begin and finish (callers
 *           queue theirs; the broker runs them in arrival order). Nothing sees the change yet.
 *   write   any ONE thread, no lock, touches only ch: (grow) makes the new partition
 *           directories, then rewrites the metadata file (tmp + fsync + rename + dir fsync) and
 *           (grow) fsyncs the log dirs of the new directories; on failure removes what it made.
 *   finish  loop thread: applies the change under the lock (the new partitions appear, or the
 *           new configuration is live; a compacting policy wakes the cleaner) or rolls back,
 *           and frees ch. Returns write's status; K_ERR_INVAL without a write; K_ERR_NOENT when
 *           the topic was deleted meanwhile (a new topic of the name waits for this finish:
 *           create answers K_ERR_EXISTS until then); K_ERR_CLOSED after ks_store_close.
 * A crash anywhere leaves the old partition count and configuration (new directories are
 * orphans, removed at the next open) or the new ones: the metadata rename is the commit.
 * Every begin that returned 0 must be finished exactly once.
 */
typedef struct ks_topic_change ks_topic_change_t;
int ks_topic_grow_begin(ks_store_t *s, ks_topic_t *t, int32_t count, ks_topic_change_t **ch);
int ks_topic_configs_begin(ks_store_t *s, ks_topic_t *t, const ks_topic_config_t *cfg,
                           uint64_t mask, ks_topic_change_t **ch);
int ks_topic_change_write(ks_topic_change_t *ch);
int ks_topic_change_finish(ks_topic_change_t *ch);
/*
 * Changes one topic-level key at run time and makes it an override (the cleaner's tests;
 * AlterConfigs uses ks_topic_set_configs): validated as ks_topic_config_set, applied at once
 * and persisted in depot-topic.properties before returning. Turning compaction on wakes the
 * cleaner. K_ERR_NOENT unknown key, K_ERR_INVAL bad value, K_ERR_IO if it could not be
 * persisted (then nothing changed). Loop thread.
 */
int ks_topic_set_config(ks_topic_t *t, const char *key, const char *value);
/* Resets one key to the store default (no longer an override); persisted. */
int ks_topic_reset_config(ks_topic_t *t, const char *key);
ks_part_t *ks_topic_part(ks_topic_t *t, int32_t partition); /* NULL if out of range */

/* ------------------------------------------------------------------------------------------ */
/* Partitions                                                                                   */

ks_topic_t *ks_part_topic(const ks_part_t *p);
int32_t ks_part_index(const ks_part_t *p);
int64_t ks_part_log_start(const ks_part_t *p);
int64_t ks_part_log_end(const ks_part_t *p);      /* next offset to assign */
int64_t ks_part_high_watermark(const ks_part_t *p); /* == log_end on a single node */
int64_t ks_part_durable_end(const ks_part_t *p);  /* offsets below this are fsynced */
int64_t ks_part_size_bytes(const ks_part_t *p);
/* Bytes of the log (record batches as stored) from the start of the batch holding offset (or
 * the log start, if offset is below it) to the log end; 0 at or past the end. Reads the offset
 * index and a few batch headers under the store lock. */
int ks_part_bytes_from(ks_part_t *p, int64_t offset, int64_t *bytes);

typedef struct {
    int64_t base_offset;     /* offset given to the first record */
    int64_t last_offset;     /* offset of the last record */
    int64_t log_append_time; /* -1 unless the topic uses LogAppendTime */
    int64_t log_start;
} ks_append_result_t;

/*
 * Appends one or more complete RecordBatch v2 batches (as received in a Produce request).
 * Every batch must already have passed kp_batch_validate. Rewrites each batch's baseOffset
 * and partitionLeaderEpoch (0) in place in buf, then writes them. All or nothing: on error
 * the log is unchanged (a short write is cut back). Rolls a segment first when needed.
 */
int ks_part_append(ks_part_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                   ks_append_result_t *res);

/*
 * Idempotent producers (storage/producer_state.c). Per partition the store keeps, for each
 * producer id seen in a batch, its epoch and the sequence ranges and offsets of its last 5
 * batches, persisted in <offset>.snapshot files and rebuilt from batch headers at open.
 * Outcomes are storage facts; the broker maps them to Kafka error codes.
 */
typedef enum {
    KS_PRODUCE_APPENDED = 0,   /* written; res describes the new batches */
    KS_PRODUCE_DUPLICATE,      /* a retry of one of the producer's last 5 batches: nothing
                                * written; res holds the ORIGINAL batch's offsets */
    KS_PRODUCE_OUT_OF_ORDER,   /* sequence gap, or a new epoch not starting at sequence 0 */
    KS_PRODUCE_STALE_EPOCH,    /* epoch below the last one seen for this producer id */
    KS_PRODUCE_BAD_SEQUENCE,   /* producer id set but baseSequence < 0 */
} ks_produce_outcome_t;

/*
 * ks_part_append with Kafka's idempotence checks, atomically with the append: a batch with a
 * producer id (>= 0) must continue its producer's sequence (or repeat one of its last 5
 * batches exactly, which is answered as a duplicate without writing). A producer id the
 * partition does not know (new, or expired) is accepted at any sequence, as Kafka >= 2.5 does.
 * Returns 0 with *outcome set (res filled for APPENDED and DUPLICATE), or a negative status
 * as ks_part_append (then nothing was written). ks_part_append itself records producer state
 * without checking it.
 */
int ks_part_append_idempotent(ks_part_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                              ks_append_result_t *res, ks_produce_outcome_t *outcome);
/* Number of producer ids the partition currently remembers (tests, stats). */
int ks_part_producer_count(const ks_part_t *p);

/*
 * Reads whole batches starting with the batch that contains offset, appending their bytes to
 * out, up to max_bytes; if min_one is set the first batch is returned even when larger
 * (KIP-74). offset == log_end gives 0 bytes. K_ERR_RANGE outside [log_start, log_end].
 */
int ks_part_read(ks_part_t *p, int64_t offset, size_t max_bytes, bool min_one, kp_buf_t *out);

/*
 * The same batches as a file range, for sending without a copy (storage/read.c): out->fd is a
 * dup of the segment's descriptor, OWNED BY THE CALLER (close it), valid for the range
 * whatever happens to the log afterwards; -1 with len 0 when there is nothing to read.
 * first_offset is the first batch's base offset, next_offset the offset a consumer asks next.
 * A sequential reader does no index search (a per-partition cache of where the last slice
 * ended). Errors as ks_part_read; an fd shortage gives K_ERR_IO (read with ks_part_read then).
 */
typedef struct {
    int fd;
    int64_t pos;
    size_t len;
    int64_t first_offset, next_offset;
} ks_slice_t;
int ks_part_read_slice(ks_part_t *p, int64_t offset, size_t max_bytes, bool min_one,
                       ks_slice_t *out);

/* Earliest offset whose batch max timestamp >= ts, with that timestamp; K_ERR_NOENT if none. */
int ks_part_offset_for_time(ks_part_t *p, int64_t ts, int64_t *offset, int64_t *found_ts);
/* The largest timestamp in the log and its offset (ListOffsets MAX_TIMESTAMP). */
int ks_part_max_timestamp(ks_part_t *p, int64_t *offset, int64_t *ts);

/* DeleteRecords: moves log_start up to offset (<= high watermark), deleting whole segments
 * below it. Persisted. K_ERR_RANGE if offset > log_end. */
int ks_part_delete_records(ks_part_t *p, int64_t offset);

/*
 * One cleaner pass over a compacted partition on the CALLING thread (tests and tools; the
 * broker relies on the cleaner threads). force skips the dirty-ratio test (segments still
 * have to be rolled, fsynced and older than min.compaction.lag.ms). 0 when a pass was swapped
 * in, K_ERR_AGAIN when there was nothing to clean or the partition was busy, else a negative
 * status (the log is unchanged).
 */
int ks_part_clean(ks_part_t *p, int64_t now_ms, bool force);
/* Offsets below this were cleaned (the cleaner checkpoint), log start if never cleaned. */
int64_t ks_part_first_dirty(const ks_part_t *p);

/* Group commit: cb(arg, status) runs on the loop thread (via ks_store_run_completions) once
 * every offset below `offset` is fsynced, or with a negative status if the fsync failed.
 * A failed fsync is never reported as success later. Returns 0 when cb will be called
 * (exactly once; also if the topic is deleted first: K_ERR_CLOSED), else a negative status
 * and cb is never called. An offset past the log end is treated as the log end. */
typedef void (*ks_sync_cb)(void *arg, int status);
int ks_part_sync(ks_part_t *p, int64_t offset, ks_sync_cb cb, void *arg);
/* The same, synchronously on the calling thread: returns once every offset below `offset` is
 * fsynced (0), or K_ERR_IO if the partition failed, K_ERR_AGAIN on a resource shortage (the
 * flushers retry; the caller did not get durability). Blocks for one fdatasync, so never on
 * the broker's loop: the broker does not call it (the audit trail's change intents wait on
 * ks_part_sync since issue #19). It stays for tests and tools that need a durable point before
 * going on (tests/storage/test_ks_cleaner.c's power-cut model, test_ks_flush.c). */
int ks_part_sync_now(ks_part_t *p, int64_t offset);

#endif

/*
 * Storage engine internals shared by the storage/ source files. Not for other layers.
 *
 * Locking: one mutex per store (s->mu). The loop thread holds it for the whole of every
 * public ks_* call that touches partitions, segments or files, except around the bulk copy
 * of an append or a read (file pinned; nothing shared changes then, as only the loop thread
 * mutates partitions); the flusher thread takes it only for bookkeeping and never holds it
 * across an fsync. Everything below is protected by
 * s->mu unless marked "loop only" (touched by the loop thread alone, so no lock is needed to
 * read it there).
 *
 * File descriptors: every segment has three ks_file_t (log, offset index, time index). The
 * fd cache (files.c) keeps at most opts.max_open_files of them open, closing the least
 * recently used unpinned one when it needs room. A file is pinned (refs > 0) while a call
 * uses its fd, including the flusher's fdatasync, so an fd is never closed or reused under
 * an I/O call.
 */
#ifndef KS_INT_H
#define KS_INT_H

#include <pthread.h>
#include <stdarg.h>

#include "protocol/kp_batch.h"
#include "storage/ks.h"
#include "storage/ks_io.h"

enum { KS_LOG_ERROR = 0, KS_LOG_WARN = 1, KS_LOG_INFO = 2, KS_LOG_DEBUG = 3 };
enum { KS_FILE_LOG = 0, KS_FILE_INDEX = 1, KS_FILE_TIMEINDEX = 2 };

#define KS_IDX_ENTRY 8   /* .index: relative offset u32 + position u32 */
#define KS_TIDX_ENTRY 12 /* .timeindex: timestamp i64 + relative offset u32 */
#define KS_PATH_MAX 4096
#define KS_META_FILE "meta.properties"
#define KS_CLEAN_FILE ".depot-clean-shutdown"
#define KS_RP_FILE "recovery-point-offset-checkpoint"
#define KS_LSO_FILE "log-start-offset-checkpoint"
#define KS_TOPIC_FILE "depot-topic.properties"
#define KS_CHECKPOINT_INTERVAL_MS 60000
#define KS_FLUSHERS 4 /* flusher threads: fsyncs of different partitions run in parallel */

typedef struct ks_seg ks_seg_t;

typedef struct ks_file {
    int fd;              /* -1 while closed */
    int refs;            /* pins; the LRU never closes a pinned file */
    uint8_t kind;        /* KS_FILE_* */
    uint32_t wgen, sgen; /* bumped per write / value of wgen at the last good fsync */
    struct ks_file *lru_prev, *lru_next; /* in s->lru while open */
    ks_seg_t *seg;
} ks_file_t;

/* One segment: <base>.log + .index + .timeindex. ~200 bytes; owned by its partition. */
struct ks_seg {
    ks_part_t *part;
    int64_t base;
    int64_t size;      /* bytes of whole batches in .log */
    int64_t idx_size;  /* bytes in .index */
    int64_t tidx_size; /* bytes in .timeindex */
    int64_t max_ts;    /* largest batch maxTimestamp, -1 if none (valid when ts_known) */
    int64_t max_ts_off;   /* last offset of the batch holding max_ts */
    int64_t tidx_last_ts; /* timestamp of the last time-index entry (-1 if none) */
    int64_t created_ms;   /* for segment.ms */
    int64_t since_index;  /* bytes appended since the last offset-index entry */
    /* Entries of the active segment not yet in its files (owned): appends write them
     * KS_IDX_PEND at a time (ks_idx_flush_pending), not one small pwrite per batch. Until
     * then lookups use the entries before them, which is correct for a sparse index. */
    kp_buf_t ipend, tpend;
    uint32_t dir_gen;     /* partition dir generation that holds this file's entry */
    bool ts_known;        /* max_ts/max_ts_off loaded (lazily for old segments) */
    bool idx_checked;     /* index files fully validated since open */
    bool closed;          /* rolled: no more appends */
    bool doomed;          /* deleted while the flusher had it pinned; freed on release */
    ks_seg_t *grave_next; /* in s->graveyard while doomed */
    ks_file_t f[3];
};

/* A durable point inside one segment (recovery.c, "tail marks"): the segment's .log bytes
 * before pos and the first idx / tidx bytes of its indexes were fdatasynced, and the running
 * index state at pos was what the other fields say. Recovery of that segment after an
 * unclean stop starts at pos instead of byte 0. Carried in recovery-point-offset-checkpoint
 * after the offset (checkpoint.c). base < 0: no mark. */
typedef struct {
    int64_t base;      /* the segment's base offset */
    int64_t pos, off;  /* byte position and offset of the first batch not covered */
    int64_t idx, tidx; /* .index / .timeindex bytes covered */
    int64_t since_index, max_ts, max_ts_off, tidx_last_ts; /* as in ks_seg_t at pos */
} ks_mark_t;

/* Idempotent producer state (producer_state.c). */
#define KS_PRODUCER_BATCHES 5 /* Kafka's NUM_BATCHES_TO_RETAIN */
typedef struct {
    int32_t first_seq, last_seq;
    int64_t first_offset;
    int32_t offset_delta; /* last offset - first offset */
} ks_pbatch_t;

typedef struct {
    int64_t pid;
    int64_t last_ts; /* broker clock at the last append, for producer.id.expiration.ms */
    int16_t epoch;
    uint8_t nb;      /* batches in b[], oldest first */
    ks_pbatch_t b[KS_PRODUCER_BATCHES];
} ks_producer_t;

typedef struct {
    ks_producer_t *v; /* sorted by pid; owned */
    int n, cap;
} ks_pstate_t;

typedef struct ks_waiter {
    int64_t offset;
    ks_sync_cb cb;
    void *arg;
    int status;
    /* CLOCK_MONOTONIC microseconds of the stages (ks.h, KS_STAGE_*); 0 = not timed. */
    int64_t t_enq, t_pick, t_done;
    struct ks_waiter *next;
} ks_waiter_t;

struct ks_part {
    ks_topic_t *topic;
    int32_t index;
    int dir;    /* index into s->dirs */
    char *path; /* partition directory; owned */
    ks_seg_t **segs; /* sorted by base; segs[nsegs-1] is the active segment; owned */
    int nsegs, segcap;
    int64_t log_start, log_end;
    int64_t bytes;     /* segments + indexes on disk */
    int64_t log_bytes; /* segments only (retention.bytes) */
    int64_t unflushed_msgs; /* loop only: for flush.messages */
    int64_t last_flush_ms;  /* loop only: for flush.ms */
    int64_t rp_written;     /* loop only: recovery point in the last checkpoint written */
    int64_t mark_written;   /* loop only: mark pos in that checkpoint, -1 if none */
    /* Tail marks (recovery.c), under mu: mark is durable (its segment mark_seg, compared
     * only); cand was taken by the tick and becomes mark once a flusher pass has synced
     * cand_seg's three files (NULL: none pending). */
    ks_mark_t mark, cand;
    ks_seg_t *mark_seg, *cand_seg;
    /* Shared with the flusher. */
    int64_t durable_end;
    uint32_t dir_gen, dir_synced_gen; /* bumped when a file is created in the dir */
    ks_waiter_t *waiters;             /* ks_part_sync callers, unordered */
    ks_part_t *flush_next;
    bool flush_queued, flushing;
    bool failed; /* an fsync failed: no more appends or syncs until reopened */
    int fail_errno;
    /* A pass that hit a resource shortage (EMFILE, ENFILE, ENOMEM) is retried, not failed:
     * the next one may not start before retry_at_us (CLOCK_MONOTONIC); retries counts them. */
    int64_t retry_at_us;
    int retries;
    int64_t pass_start_us; /* under mu: when the running (or last) flush pass took its snapshot */
    ks_pstate_t pstate; /* loop only */
    /* Cleaner (cleaner.c), under mu. */
    int64_t first_dirty;     /* cleaner checkpoint: offsets below were cleaned */
    int64_t next_horizon_ms; /* earliest delete horizon of a kept tombstone; -1 unknown */
    bool cleaning;           /* a pass holds this partition (p stays alive until it ends) */
    bool swapping;           /* the pass committed its swap: no segment may go meanwhile */
    bool clean_abort;        /* the pass must give up (topic deleted, segments dropped) */
    /* Read position cache (read.c): where the last Fetch slice of this partition ended, so
     * the consumer's next Fetch (at rd_off) starts there without searching the index.
     * Valid while rd_seg is still segs[] for rd_off and seg_gen has not moved. Under mu. */
    uint32_t seg_gen;  /* bumped whenever a segment leaves segs[] or is replaced */
    uint32_t rd_gen;   /* seg_gen when the cache was filled */
    ks_seg_t *rd_seg;  /* compared only, never dereferenced unless valid */
    int64_t rd_off;    /* the first offset of the batch at rd_pos; -1 = empty */
    int64_t rd_pos;
    int64_t rd_entry;  /* the offset-index entry at or below rd_pos (-1: none) */
};

struct ks_topic {
    ks_store_t *s;
    char *name; /* owned */
    kp_uuid_t id;
    int32_t nparts;
    ks_topic_config_t cfg;
    uint64_t overrides; /* bit per ks_topic_config_keys() entry set on the topic */
    ks_part_t **parts; /* nparts pointers, each part allocated alone (CreatePartitions grows
                        * the array; part pointers stay valid); all owned */
    struct ks_topic_change *change; /* its grow or config change between begin and finish
                                     * (topic_change.c), NULL when none; under mu */
};

#define KS_MSGQ 16
struct ks_store {
    ks_store_opts_t o;
    char **dirs; /* owned copies of opts.dirs */
    int ndirs;
    int *dir_parts;  /* partitions placed in each dir */
    bool *dir_clean; /* dir had the clean-shutdown marker at open */
    char cluster_id[23];
    ks_topic_t **topics; /* sorted by name; owned */
    ks_topic_t **by_id;  /* same topics sorted by id */
    int ntopics, tcap;
    struct ks_topic_pending *pending; /* creates between begin and finish (topic.c), under mu */
    struct ks_topic_deleting *deleting; /* deletes between begin and finish, under mu */
    struct ks_topic_change *changing; /* grows and config changes between begin and finish
                                       * (topic_change.c), under mu */

    pthread_mutex_t mu;
    pthread_cond_t cv;      /* wakes the flusher */
    pthread_cond_t idle_cv; /* a partition's flush pass ended */
    pthread_t flushers[KS_FLUSHERS];
    int nflushers;
    bool stop;
    ks_part_t *fq_head, *fq_tail; /* partitions waiting for a flush pass */
    ks_waiter_t *done_head, *done_tail; /* completed waiters for the loop */
    char msgq[KS_MSGQ][256]; /* flusher's log lines, drained by the loop */
    int msgq_n, msgq_dropped;

    ks_seg_t *graveyard; /* deleted segments still pinned by the flusher */
    struct ks_trash *trash, *trash_tail; /* renamed-away files/dirs for the flusher, FIFO */
    struct ks_ckpt_job *ckpt_jobs; /* checkpoint files for the flusher, one per (dir, name) */
    bool ckpt_writing;             /* a flusher thread is writing one (they go one at a time) */
    ks_file_t lru; /* sentinel: lru.lru_next is the most recently used */
    int open_files;
    ks_stats_t st;
    ks_floor_fn floor_fn; /* retention floor (uplink hold), NULL = none */
    void *floor_ud;
    int64_t last_ckpt_ms;
    int64_t ckpt_interval_ms; /* opts.checkpoint_interval_ms or KS_CHECKPOINT_INTERVAL_MS */
    bool mark_moved;          /* a flusher pass made a new tail mark durable: checkpoint it */
    bool ckpt_clock;          /* last_ckpt_ms set by a tick */
    int64_t reject_logged_ms; /* budget rejections: last log time */
    int64_t pid_expiry_ms;    /* producer state: last expiry pass */
    int64_t rejects_unlogged;

    /* Cleaner threads (cleaner.c). cl_* below are under mu unless marked. */
    pthread_t loop_thread; /* ks_log from any other thread queues (logq) */
    pthread_t cleaners[16];
    int ncleaners;
    bool cl_stop;
    bool cl_ckpt_dirty;       /* the cleaner checkpoint must be rewritten (topic deleted) */
    pthread_cond_t cl_cv;     /* wakes the cleaner threads */
    pthread_cond_t cl_idle_cv; /* a pass released its partition */
    ks_cleaner_stats_t cl_st;
    pthread_mutex_t cl_io_mu; /* the I/O rate cap window and checkpoint writes */
    int64_t cl_tb_start_ms, cl_tb_bytes;
    pthread_mutex_t logq_mu; /* lines logged off the loop thread, drained by the loop */
    struct ks_logq {
        int level;
        char msg[400];
    } logq[32];
    int logq_n, logq_dropped;
};

/* store.c */
void ks_log(ks_store_t *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ks_fill_random(void *buf, size_t n);
int ks_errno_status(int e); /* ENOSPC/EDQUOT -> K_ERR_NOSPC, else K_ERR_IO */
void ks_msgq_push(ks_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ks_complete(ks_store_t *s, ks_waiter_t *w, int status); /* under mu */
int64_t ks_mono_us(void);

/* files.c: fd cache. All under s->mu. */
void ks_file_init(ks_file_t *f, ks_seg_t *seg, int kind);
void ks_file_path(const ks_file_t *f, char *buf, size_t len);
int ks_file_acquire(ks_store_t *s, ks_file_t *f); /* opens if needed, pins */
int ks_file_create(ks_store_t *s, ks_file_t *f);  /* O_CREAT|O_TRUNC, pins */
void ks_file_release(ks_store_t *s, ks_file_t *f);
void ks_file_close(ks_store_t *s, ks_file_t *f);

/* util.c: small files written atomically and properties text. */
/* The lowest offset retention, the budget and the cleaner must leave untouched (the uplink's
 * unforwarded position; INT64_MAX when nothing is held). Under the store lock. */
int64_t ks_retention_floor(const ks_part_t *p);
int ks_write_atomic(ks_store_t *s, const char *dir, const char *name, const void *data,
                    size_t len);
int ks_read_small(const char *path, char **data, size_t *len); /* caller frees *data */
/* Finds key in "k=v" lines; copies the value. 0 or K_ERR_NOENT. */
int ks_props_get(const char *text, const char *key, char *val, size_t vlen);
int ks_rm_rf(const char *path);
void ks_base64url(const uint8_t *in, size_t n, char *out); /* out: 4*ceil(n/3) + 1 */
int ks_base64url_decode(const char *in, uint8_t *out, size_t n);

/* segment.c */
ks_seg_t *ks_seg_new(ks_part_t *p, int64_t base);
void ks_seg_free(ks_store_t *s, ks_seg_t *seg);
int ks_seg_create_files(ks_store_t *s, ks_seg_t *seg);
int ks_seg_unlink(ks_store_t *s, ks_seg_t *seg);
void ks_seg_retire(ks_store_t *s, ks_seg_t *seg); /* rename to *.deleted, unlink later */
bool ks_seg_pinned(const ks_seg_t *seg);
bool ks_seg_synced(const ks_seg_t *seg);
int64_t ks_seg_next_offset(const ks_seg_t *seg); /* first offset after the segment */
int ks_seg_load_ts(ks_store_t *s, ks_seg_t *seg);
/* Reads the batch header at pos (at least 27 bytes; 61 when full). 0, K_ERR_CORRUPT (bad
 * framing, logged) or K_ERR_NOENT at the end of the segment. */
int ks_seg_read_hdr(ks_store_t *s, ks_seg_t *seg, int64_t pos, kp_batch_hdr_t *h);
/* Position of the batch holding offset, or K_ERR_NOENT if past the segment's batches. */
int ks_seg_find(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos, kp_batch_hdr_t *h);
/* The same, also giving the index entry the walk started from (-1: none). */
int ks_seg_find_entry(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos,
                      kp_batch_hdr_t *h, int64_t *entry);
int ks_part_roll(ks_store_t *s, ks_part_t *p, int64_t now_ms);
int ks_part_push_seg(ks_part_t *p, ks_seg_t *seg);
int ks_part_find_seg(const ks_part_t *p, int64_t offset); /* index or -1 */
void ks_seg_close_active(ks_store_t *s, ks_seg_t *seg); /* final time-index entry */
/* Removes segs[0] (never the active one): files, memory, log start. */
int ks_part_drop_first(ks_store_t *s, ks_part_t *p);
/* Frees doomed segments nobody pins any more. */
void ks_graveyard_sweep(ks_store_t *s, bool all);

/* index.c */
int ks_idx_lookup(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos);
/* As ks_idx_lookup, also giving the index entry used (-1: none, position 0). */
int ks_idx_lookup_entry(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos,
                        int64_t *entry);
/* Reads up to n offset-index entries from entry `from` into e (8 bytes each); *got = read. */
int ks_idx_read_entries(ks_store_t *s, ks_seg_t *seg, int64_t from, int64_t n, uint8_t *e,
                        int64_t *got);
int ks_tidx_lookup(ks_store_t *s, ks_seg_t *seg, int64_t ts, int64_t *offset);
int ks_idx_last(ks_store_t *s, ks_seg_t *seg, int64_t *rel, int64_t *pos);
int ks_tidx_last(ks_store_t *s, ks_seg_t *seg, int64_t *ts, int64_t *rel);
/* Index state after one batch appended at pos (Kafka's rule); entries go to the buffers. */
void ks_idx_note_batch(ks_seg_t *seg, const kp_batch_hdr_t *h, int64_t pos, int64_t size,
                       int32_t interval, kp_buf_t *idx, kp_buf_t *tidx);
int ks_idx_write(ks_store_t *s, ks_seg_t *seg, const kp_buf_t *idx, const kp_buf_t *tidx);
#define KS_IDX_PEND 64 /* offset entries an append lets wait before writing them */
/* Writes seg's pending entries (all or none); a tail mark is taken only after this. */
int ks_idx_flush_pending(ks_store_t *s, ks_seg_t *seg);
int ks_idx_check(ks_store_t *s, ks_seg_t *seg); /* full validation, rebuild if invalid */
int ks_idx_sane_quick(ks_store_t *s, ks_seg_t *seg);
void ks_put_be32(uint8_t *p, uint32_t v);
void ks_put_be64(uint8_t *p, uint64_t v);
uint32_t ks_get_be32(const uint8_t *p);
uint64_t ks_get_be64(const uint8_t *p);

/* recovery.c */
/* m: the tail mark for p from the checkpoint (NULL or m->base < 0: none). */
int ks_part_load(ks_store_t *s, ks_part_t *p, bool clean, int64_t rp, const ks_mark_t *m,
                 int64_t lso);
/* seg's current state as a mark (seg->ts_known must hold). */
void ks_mark_take(const ks_seg_t *seg, ks_mark_t *m);
/* True when seg is still in p->segs (a pointer kept across unlocks is compared only). */
bool ks_part_has_seg(const ks_part_t *p, const ks_seg_t *seg);
/* Scans a segment from position 0, validating every batch; rebuilds both indexes. When
 * truncate is set, cuts the log at the first bad batch. *next gets the next offset. */
int ks_seg_recover(ks_store_t *s, ks_seg_t *seg, bool truncate, int64_t *next, bool *cut);

/* checkpoint.c */
int ks_ckpt_write(ks_store_t *s, int dir, const char *name, bool rp);
/* Like ks_ckpt_write, but the file is written (tmp + fsync + rename + dir fsync) by a flusher
 * thread, so the loop never waits on flash while holding mu. The contents are taken now; a
 * newer queued version of the same file replaces an older one not yet written. Under mu. */
void ks_ckpt_queue(ks_store_t *s, int dir, const char *name, bool rp);
/* flusher.c: writes the next queued checkpoint (entered and left with mu held, drops it). */
void ks_ckpt_write_one(ks_store_t *s);
void ks_ckpt_jobs_free(ks_store_t *s);
int ks_ckpt_write_all(ks_store_t *s);
int64_t ks_part_recovery_point(const ks_part_t *p);
/* Position of the tail mark the next recovery-point checkpoint carries for p, -1 if none. */
int64_t ks_part_ckpt_mark_pos(const ks_part_t *p);
/* Parsed checkpoint: "topic partition offset" triples. */
typedef struct {
    char *text; /* owned */
    struct ks_ckpt_ent {
        const char *topic;
        size_t tlen;
        int32_t part;
        int64_t off;
        ks_mark_t mark; /* optional fields after the offset; base -1 if absent */
    } *ents;
    int n;
} ks_ckpt_t;
int ks_ckpt_read(const char *dir, const char *name, ks_ckpt_t *c);
int64_t ks_ckpt_find(const ks_ckpt_t *c, const char *topic, int32_t part, int64_t dflt);
/* The tail mark of that entry into *m (m->base = -1 if none). */
void ks_ckpt_find_mark(const ks_ckpt_t *c, const char *topic, int32_t part, ks_mark_t *m);
void ks_ckpt_free(ks_ckpt_t *c);

/* topic.c */
int ks_topics_load(ks_store_t *s);
void ks_topics_orphan_pending(ks_store_t *s); /* under mu, at close */
void ks_topic_free(ks_store_t *s, ks_topic_t *t);
/* The metadata file's text for t with nparts partitions and the overrides mask of cfg, into b
 * (b->err set when out of memory). Any thread; reads only t's name and id. */
void ks_topic_meta_render(const ks_topic_t *t, int32_t nparts, const ks_topic_config_t *cfg,
                          uint64_t mask, kp_buf_t *b);
/* A fresh partition i of t, not in t->parts, not placed (dir -1); NULL when out of memory. */
ks_part_t *ks_topic_part_new(ks_topic_t *t, int32_t i);
/* Places p in the log dir holding the fewest partitions (path set, counted). Under mu. */
int ks_topic_part_place(ks_store_t *s, ks_part_t *p);
/* The log dir holding a partition directory ("<dir>/<topic>-<n>"), into buf. */
void ks_topic_parent_dir(const char *path, char *buf, size_t len);

/* topic_change.c */
/* A grow or config change of a deleted topic still holds its name until finish (a new topic of
 * the name must not meet the files its write makes). Under mu. */
bool ks_topic_change_reserved_locked(ks_store_t *s, const char *name, size_t len);
/* t is being deleted: its change in flight, if any, finishes without it. Under mu. */
void ks_topic_change_detach_locked(ks_topic_t *t);
/* Store close: changes in flight finish with K_ERR_CLOSED. Under mu. */
void ks_topic_changes_orphan(ks_store_t *s);

/* retention.c */
int ks_budget_make_room(ks_store_t *s, ks_part_t *p, int64_t need);
void ks_retention_run(ks_store_t *s, int64_t now_ms);

/* part.c */
int ks_part_append_locked(ks_store_t *s, ks_part_t *p, uint8_t *buf, size_t len,
                          int64_t now_ms, ks_append_result_t *res);

/* producer_state.c. All under s->mu. */
/* Records the producer fields of appended (stamped) batches, without checks. */
void ks_pstate_note(ks_part_t *p, const uint8_t *buf, size_t len, int64_t now_ms);
/* Writes <offset>.snapshot for the state covering every offset below `offset` (roll, close);
 * no fsync (close's syncfs or the CRC covers it). Failure is logged, never fatal. */
void ks_pstate_snapshot(ks_store_t *s, ks_part_t *p, int64_t offset);
/* At open, after the log is recovered: newest valid snapshot <= log end, then batch headers
 * from there to the log end; snapshots past the log end are removed. */
int ks_pstate_load(ks_store_t *s, ks_part_t *p, int64_t now_ms);
void ks_pstate_expire(ks_store_t *s, int64_t now_ms); /* the tick; rate-limited inside */
void ks_pstate_free(ks_pstate_t *ps);

/* cleaner.c */
int ks_cleaner_start(ks_store_t *s);
void ks_cleaner_stop(ks_store_t *s);
int ks_cleaner_load(ks_store_t *s);             /* reads the cleaner checkpoints at open */
void ks_cleaner_forget(ks_store_t *s, ks_part_t *p); /* under mu: ends a pass on p, waits */
void ks_cleaner_wake(ks_store_t *s);            /* under mu */
void ks_logq_drain(ks_store_t *s);              /* loop thread, without mu */
/* cleaner_swap.c: finishes or discards a half-done swap in p's directory (at load). */
int ks_cleaner_recover(ks_store_t *s, ks_part_t *p);

/* flusher.c */
int ks_flusher_start(ks_store_t *s);
void ks_flusher_stop(ks_store_t *s);
void ks_flush_request(ks_store_t *s, ks_part_t *p); /* under mu */
/* Queues p without waking a thread; true if the caller must signal s->cv (after unlocking
 * is fine: the queue changed under mu). Under mu. */
bool ks_flush_enqueue(ks_store_t *s, ks_part_t *p);
void ks_part_wait_idle(ks_store_t *s, ks_part_t *p); /* under mu */
void ks_part_fail_waiters(ks_store_t *s, ks_part_t *p, int status);
/* Queues a file or directory already renamed to a unique doomed name (*.deleted, *-delete)
 * for removal on the flusher thread, then an fsync of sync_dir; takes ownership of both
 * strings (either may be NULL). Under mu. Leftovers at close are removed at the next open. */
void ks_trash_push(ks_store_t *s, char *path, char *sync_dir);
void ks_trash_free(ks_store_t *s);
/* After a successful syncfs of p's filesystem: everything written so far is durable. */
void ks_part_mark_synced(ks_part_t *p);
int ks_part_release_durable(ks_store_t *s, ks_part_t *p); /* waiters now covered */

#endif

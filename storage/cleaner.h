/*
 * Log cleaner internals shared by cleaner.c (threads, choosing a partition, checkpoints),
 * cleaner_pass.c (key map, reading, rewriting batches) and cleaner_swap.c (the crash-safe
 * swap and its recovery). Storage only.
 *
 * One pass over partition p (a "job"):
 *   1. pick (under mu): p is compacted, not failed, not already being cleaned; its closed,
 *      fsynced segments older than min.compaction.lag.ms are the inputs segs[0 .. unclean).
 *      p->cleaning is set: p stays alive (topic deletion waits) until the pass ends.
 *   2. map (no lock): the dirty inputs, from the cleaner checkpoint p->first_dirty on, are
 *      read and every key's latest offset goes into a bounded hash map. If the map fills,
 *      the pass covers offsets below map_end only; the next pass continues from there.
 *   3. rewrite (no lock): the inputs holding offsets below map_end are rewritten in groups
 *      (at most segment.bytes of input per group) into <base>.{log,index,timeindex}.cleaned
 *      beside the live files, fsynced, then the directory.
 *   4. commit: cleaner_swap.c. Journal, renames under mu, in-memory swap.
 * Input segments are read through the fd cache with a pin per read; any removal of a
 * partition's segment (retention, DeleteRecords, budget) during steps 1-3 aborts the pass.
 */
#ifndef KS_CLEANER_H
#define KS_CLEANER_H

#include "storage/ks_int.h"

#define KS_CLEAN_JOURNAL "cleaner-swap"
#define KS_CLEAN_CKPT "cleaner-offset-checkpoint"
#define KS_CLEAN_SFX ".cleaned"
#define KS_BATCH_ATTR_DELETE_HORIZON 0x40 /* KIP-534: baseTimestamp is the delete horizon */

typedef struct {
    uint64_t h1, h2; /* XXH3-128 of the key */
    int64_t off1;    /* latest offset + 1; 0 = empty slot */
} cl_ment_t;

/* Key -> latest offset, open addressing. Kafka's SkimpyOffsetMap: 24 bytes a key, filled to
 * 90% at most, never larger than the budget. */
typedef struct {
    cl_ment_t *v; /* owned */
    size_t cap, n, max_cap;
} cl_map_t;

typedef struct {
    ks_seg_t *seg; /* valid while the pass holds p and was not aborted */
    int64_t base, size, next; /* next: the following segment's base */
    int64_t bytes;            /* log + indexes, at the pick */
} cl_in_t;

typedef struct {
    ks_seg_t *seg; /* the cleaned segment, private until the swap; owned by the job */
    int from, to;  /* inputs [from, to) it replaces */
} cl_out_t;

typedef struct {
    ks_store_t *s;
    ks_part_t *p;
    char *path; /* owned copy of p->path */
    int dir;
    ks_topic_config_t cfg;
    int64_t now_ms;
    int64_t first_dirty, dirty_end, map_end;
    int64_t log_end; /* at the pick: the batch holding log_end - 1 is never dropped */
    int fd_i;           /* first input holding dirty offsets */
    cl_in_t *in;        /* owned */
    int nin, nrewrite;  /* inputs, inputs rewritten */
    cl_out_t *out;      /* owned */
    int nout;
    int64_t *plast;     /* last offsets of the producers' last batches, sorted; owned */
    int nplast;
    cl_map_t map;
    int64_t min_horizon; /* earliest delete horizon of a kept tombstone, INT64_MAX if none */
    uint8_t *rbuf;       /* read window; owned */
    size_t rcap;
    bool map_full;
    bool committed; /* the swap journal was written: the outputs must stay */
    /* figures of this pass */
    int64_t bytes_read, bytes_written, in_bytes, out_bytes, records_read, removed, tombs,
        invalid, empties, throttled_ms;
} cl_job_t;

/* cleaner_pass.c */
void cl_map_init(cl_map_t *m, int64_t budget_bytes);
void cl_map_free(cl_map_t *m);
int cl_build_map(cl_job_t *j);
int cl_write_outputs(cl_job_t *j); /* step 3, fsyncs included */
void cl_discard_outputs(cl_job_t *j);
void cl_output_path(const cl_job_t *j, int64_t base, int kind, bool cleaned, char *buf,
                    size_t len);

/* cleaner_swap.c */
int cl_commit(cl_job_t *j);

/* cleaner.c */
void cl_throttle(cl_job_t *j, int64_t bytes);

#endif

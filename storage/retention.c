/*
 * Retention and the box-wide flash budget. Only whole segments are deleted, always from the
 * front of a partition, and never the active segment (Kafka's rule), so a partition always
 * keeps its newest data and its log end.
 *
 *   retention.ms     a segment goes when its largest timestamp is older than now minus
 *                    retention.ms (Kafka's rule; the file mtime stands in for a segment
 *                    without timestamps).
 *   retention.bytes  the oldest segments go while the partition's log bytes minus the
 *                    segment's size stays >= retention.bytes.
 *   dirs_max_bytes   all segments + indexes of the store. KS_FULL_REJECT: an append that
 *                    would cross it fails with K_ERR_NOSPC (retriable) until retention or
 *                    DeleteRecords frees room. KS_FULL_DELETE_OLDEST: the closed segment with
 *                    the oldest largest-timestamp across all partitions goes first, repeated
 *                    until the append fits (K_ERR_NOSPC if nothing closed is left). Topics
 *                    the broker marks exempt (opts.budget_exempt: its own internal topics)
 *                    are never shrunk by the budget; time and size retention still apply.
 *
 * Every deletion and rejection is counted in ks_stats_t and logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage/ks_int.h"

/*
 * The lowest offset that retention and the budget must not delete: the store-and-forward
 * uplink's "not yet acknowledged by the central cluster" position (ks_store_set_retention_floor),
 * so local retention never drops data that exists nowhere else. DeleteRecords is an explicit
 * operator action and does not consult it.
 */
int64_t ks_retention_floor(const ks_part_t *p)
{
    ks_store_t *s = p->topic->s;
    return s->floor_fn ? s->floor_fn(s->floor_ud, p) : INT64_MAX;
}

void ks_store_set_retention_floor(ks_store_t *s, ks_floor_fn fn, void *ud)
{
    s->floor_fn = fn;
    s->floor_ud = ud;
}

/* segs[0] may be deleted: it is closed and every offset in it is below the floor. */
static bool first_deletable(const ks_part_t *p)
{
    return p->nsegs > 1 && p->segs[1]->base <= ks_retention_floor(p);
}

static int64_t seg_age_ts(ks_store_t *s, ks_seg_t *seg)
{
    if (ks_seg_load_ts(s, seg) == 0 && seg->max_ts >= 0)
        return seg->max_ts;
    char path[KS_PATH_MAX];
    struct stat st;
    ks_file_path(&seg->f[KS_FILE_LOG], path, sizeof path);
    if (ks_io.stat(path, &st) == 0)
        return (int64_t)st.st_mtime * 1000;
    return INT64_MAX; /* unknown age: keep it */
}

static void drop(ks_store_t *s, ks_part_t *p, const char *why, int64_t *counter)
{
    int64_t base = p->segs[0]->base, size = p->segs[0]->size;
    if (ks_part_drop_first(s, p) != 0)
        return;
    (*counter)++;
    ks_log(s, KS_LOG_INFO, "%s: deleted segment %" PRId64 " (%" PRId64 " bytes) by %s; log "
           "start now %" PRId64, p->path, base, size, why, p->log_start);
}

static void retain_part(ks_store_t *s, ks_part_t *p, int64_t now_ms)
{
    const ks_topic_config_t *c = &p->topic->cfg;
    /* Whole segments below the log start (DeleteRecords while a clean was swapping). */
    while (p->nsegs > 1 && p->segs[1]->base <= p->log_start && !p->swapping) {
        int n = p->nsegs;
        drop(s, p, "DeleteRecords", &s->st.segments_deleted_retention);
        if (p->nsegs == n)
            break;
    }
    if (!ks_cleanup_deletes(c->cleanup_policy))
        return;
    if (c->retention_ms >= 0) {
        while (first_deletable(p) && now_ms - seg_age_ts(s, p->segs[0]) > c->retention_ms) {
            int n = p->nsegs;
            drop(s, p, "retention.ms", &s->st.segments_deleted_retention);
            if (p->nsegs == n)
                break;
        }
    }
    if (c->retention_bytes >= 0) {
        while (first_deletable(p) && p->log_bytes - p->segs[0]->size >= c->retention_bytes) {
            int n = p->nsegs;
            drop(s, p, "retention.bytes", &s->st.segments_deleted_retention);
            if (p->nsegs == n)
                break;
        }
    }
}

void ks_retention_run(ks_store_t *s, int64_t now_ms)
{
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++)
            retain_part(s, t->parts[j], now_ms);
    }
    if (s->rejects_unlogged > 0 && now_ms - s->reject_logged_ms >= 10000) {
        ks_log(s, KS_LOG_WARN, "log.dirs.max.bytes: %" PRId64 " more appends rejected",
               s->rejects_unlogged);
        s->rejects_unlogged = 0;
        s->reject_logged_ms = now_ms;
    }
}

/* The oldest deletable segment of the whole store, by largest timestamp. */
static ks_part_t *oldest_part(ks_store_t *s)
{
    ks_part_t *best = NULL;
    int64_t best_ts = INT64_MAX;
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        if (s->o.budget_exempt && s->o.budget_exempt(t->name, strlen(t->name)))
            continue;
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (!first_deletable(p))
                continue;
            int64_t ts = seg_age_ts(s, p->segs[0]);
            if (!best || ts < best_ts) {
                best = p;
                best_ts = ts;
            }
        }
    }
    return best;
}

int ks_budget_make_room(ks_store_t *s, ks_part_t *p, int64_t need)
{
    int64_t max = s->o.dirs_max_bytes;
    if (max <= 0)
        return 0;
    /* Room for the batches plus their index entries at most. */
    need += need / 64 + KS_IDX_ENTRY + 2 * KS_TIDX_ENTRY;
    while (s->st.bytes_on_disk + need > max) {
        ks_part_t *victim = s->o.full_policy == KS_FULL_DELETE_OLDEST ? oldest_part(s) : NULL;
        if (!victim) {
            s->st.appends_rejected_budget++;
            if (s->rejects_unlogged++ == 0) { /* then a summary per tick period */
                ks_log(s, KS_LOG_WARN, "%s: append of %" PRId64 " bytes rejected: store holds "
                       "%" PRId64 " of log.dirs.max.bytes %" PRId64 "%s", p->path, need,
                       s->st.bytes_on_disk, max,
                       s->o.full_policy == KS_FULL_DELETE_OLDEST ? " and nothing is deletable"
                                                                 : "");
            }
            return K_ERR_NOSPC;
        }
        int n = victim->nsegs;
        drop(s, victim, "log.dirs.max.bytes", &s->st.segments_deleted_budget);
        if (victim->nsegs == n)
            return K_ERR_NOSPC;
    }
    return 0;
}

/*
 * The log cleaner: Kafka's log compaction, on log.cleaner.threads threads of its own (never
 * the loop, never the flusher pool). See cleaner.h for one pass, cleaner_pass.c for what is
 * kept, cleaner_swap.c for the crash-safe swap.
 *
 * Choosing a partition (Kafka's LogCleanerManager): among partitions whose cleanup.policy
 * compacts, the cleanable range is the rolled segments that are fsynced and whose newest
 * record is older than min.compaction.lag.ms, up to the first that is not. The "dirty" part
 * starts at the cleaner checkpoint (first_dirty: everything below was cleaned already). A
 * partition is due when
 *   - dirty bytes / cleanable bytes >= min.cleanable.dirty.ratio, or
 *   - its first dirty record is older than max.compaction.lag.ms, or
 *   - a tombstone it kept has reached its delete horizon (and once after each open: the
 *     horizons are on disk in the stamped batches, KIP-534, but the partition's earliest
 *     one is only in memory, so that pass reads them back and reschedules).
 * The due partition with the highest ratio goes first (forced ones before it).
 *
 * <logdir>/cleaner-offset-checkpoint (Kafka's OffsetCheckpoint format, as the other
 * checkpoints): per partition, first_dirty. Rewritten after each pass and after a topic
 * deletion; missing entries mean "never cleaned", which costs one extra pass, nothing else.
 *
 * Memory: a pass holds its key map (at most log.cleaner.dedupe.buffer.size / threads, grown
 * as keys come), a 1 MiB read window, a 1 MiB write buffer and the cleaned segment's index
 * entries. I/O: every byte read and written counts against log.cleaner.io.max.bytes.per.second
 * (one budget shared by the threads); the cleaner sleeps to stay under it.
 *
 * Progress: ks_store_cleaner_stats (for the metrics page), one INFO line per pass, and the
 * checkpoint. Lines logged from a cleaner thread go through the store's log queue (ks_log).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/cleaner.h"

#define DEFAULT_DEDUPE ((int64_t)128 << 20)
#define DEFAULT_BACKOFF_MS 15000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cl_throttle(cl_job_t *j, int64_t bytes)
{
    ks_store_t *s = j->s;
    double rate = s->o.cleaner.io_max_bytes_per_second;
    if (!(rate > 0) || rate > 1e15)
        return;
    pthread_mutex_lock(&s->cl_io_mu);
    int64_t now = mono_ms();
    if (s->cl_tb_start_ms == 0 || now - s->cl_tb_start_ms > 1000) {
        s->cl_tb_start_ms = now;
        s->cl_tb_bytes = 0;
    }
    s->cl_tb_bytes += bytes;
    int64_t sleep_ms = (int64_t)((double)s->cl_tb_bytes * 1000.0 / rate) - (now - s->cl_tb_start_ms);
    pthread_mutex_unlock(&s->cl_io_mu);
    if (sleep_ms > 0) {
        usleep((useconds_t)(sleep_ms > 10000 ? 10000000 : sleep_ms * 1000));
        j->throttled_ms += sleep_ms;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Choosing                                                                                     */

typedef struct {
    int unclean_i, fd_i;
    int64_t first_dirty;
    double ratio;
    bool forced;
} plan_t;

static int64_t first_ts(ks_store_t *s, ks_seg_t *seg)
{
    kp_batch_hdr_t h;
    return ks_seg_read_hdr(s, seg, 0, &h) == 0 ? h.max_timestamp : -1;
}

/* Under mu. True when p should be cleaned now; fills the plan. */
static bool evaluate(ks_store_t *s, ks_part_t *p, int64_t now, bool force, plan_t *pl)
{
    const ks_topic_config_t *c = &p->topic->cfg;
    if (!ks_cleanup_compacts(c->cleanup_policy) || p->failed || p->cleaning || p->nsegs < 2)
        return false;
    int u = 0;
    for (; u < p->nsegs - 1; u++) {
        ks_seg_t *seg = p->segs[u];
        if (!seg->closed || !ks_seg_synced(seg))
            break;
        /* Not forwarded yet (uplink hold): superseded values still have to reach the central
         * cluster, so the cleaner stops below the floor as retention does. */
        if (p->segs[u + 1]->base > ks_retention_floor(p))
            break;
        if (c->min_compaction_lag_ms > 0 &&
            (ks_seg_load_ts(s, seg) != 0 || seg->max_ts > now - c->min_compaction_lag_ms))
            break;
    }
    if (u == 0)
        return false;
    int64_t fdo = p->first_dirty > p->log_start ? p->first_dirty : p->log_start;
    int fd = fdo >= p->segs[u]->base ? u : ks_part_find_seg(p, fdo);
    if (fd < 0)
        fd = 0;
    int64_t clean = 0, dirty = 0;
    for (int i = 0; i < u; i++)
        *(i < fd ? &clean : &dirty) += p->segs[i]->size;
    pl->ratio = clean + dirty ? (double)dirty / (double)(clean + dirty) : 0;
    pl->unclean_i = u;
    pl->fd_i = fd;
    pl->first_dirty = fdo;
    bool horizon = fd > 0 && p->next_horizon_ms != INT64_MAX &&
                   (p->next_horizon_ms < 0 || now >= p->next_horizon_ms);
    bool lag = dirty > 0 && c->max_compaction_lag_ms != INT64_MAX && fd < u &&
               now - first_ts(s, p->segs[fd]) > c->max_compaction_lag_ms;
    pl->forced = horizon || lag;
    if (force)
        return dirty > 0 || pl->forced;
    return pl->forced || (dirty > 0 && pl->ratio >= c->min_cleanable_dirty_ratio);
}

static void job_free(cl_job_t *j)
{
    if (!j)
        return;
    for (int g = 0; g < j->nout; g++)
        if (j->out[g].seg)
            ks_seg_free(j->s, j->out[g].seg); /* never opened through the fd cache */
    free(j->out);
    free(j->in);
    free(j->plast);
    free(j->path);
    free(j->rbuf);
    cl_map_free(&j->map);
    free(j);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Under mu: takes p for a pass (p->cleaning) and copies what the pass needs. */
static cl_job_t *job_new(ks_store_t *s, ks_part_t *p, const plan_t *pl, int64_t now)
{
    cl_job_t *j = calloc(1, sizeof *j); /* owned by the thread running the pass */
    if (!j)
        return NULL;
    j->s = s;
    j->p = p;
    j->dir = p->dir;
    j->cfg = p->topic->cfg;
    j->now_ms = now;
    j->first_dirty = pl->first_dirty;
    j->fd_i = pl->fd_i;
    j->nin = pl->unclean_i;
    j->dirty_end = p->segs[pl->unclean_i]->base;
    j->log_end = p->log_end;
    j->min_horizon = INT64_MAX;
    j->path = strdup(p->path);
    j->in = calloc((size_t)j->nin, sizeof *j->in);
    j->plast = calloc((size_t)p->pstate.n + 1, sizeof *j->plast);
    if (!j->path || !j->in || !j->plast) {
        job_free(j);
        return NULL;
    }
    for (int i = 0; i < j->nin; i++) {
        ks_seg_t *seg = p->segs[i];
        j->in[i] = (cl_in_t){seg, seg->base, seg->size, p->segs[i + 1]->base,
                             seg->size + seg->idx_size + seg->tidx_size};
    }
    for (int i = 0; i < p->pstate.n; i++) {
        const ks_producer_t *e = &p->pstate.v[i];
        if (e->nb > 0)
            j->plast[j->nplast++] = e->b[e->nb - 1].first_offset + e->b[e->nb - 1].offset_delta;
    }
    qsort(j->plast, (size_t)j->nplast, sizeof *j->plast, cmp_i64);
    int threads = s->ncleaners > 0 ? s->ncleaners : 1;
    int64_t budget = s->o.cleaner.dedupe_buffer_size > 0 ? s->o.cleaner.dedupe_buffer_size
                                                         : DEFAULT_DEDUPE;
    cl_map_init(&j->map, budget / threads);
    p->cleaning = true;
    p->clean_abort = false;
    s->cl_st.running++;
    return j;
}

/* Under mu: the dirtiest due partition, taken for a pass; NULL if none. */
static cl_job_t *pick(ks_store_t *s, int64_t now)
{
    ks_part_t *best = NULL;
    plan_t bp = {0}, pl;
    double max_ratio = 0;
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        if (!ks_cleanup_compacts(t->cfg.cleanup_policy))
            continue;
        for (int32_t k = 0; k < t->nparts; k++) {
            ks_part_t *p = t->parts[k];
            if (!evaluate(s, p, now, false, &pl))
                continue;
            if (pl.ratio > max_ratio)
                max_ratio = pl.ratio;
            if (!best || (pl.forced && !bp.forced) ||
                (pl.forced == bp.forced && pl.ratio > bp.ratio)) {
                best = p;
                bp = pl;
            }
        }
    }
    s->cl_st.max_dirty_ratio = max_ratio;
    return best ? job_new(s, best, &bp, now) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Checkpoint                                                                                   */

/* Builds the dir's checkpoint under mu, writes it without (cl_io_mu keeps writers apart). */
static void write_ckpt(ks_store_t *s, int dir)
{
    kp_buf_t b;
    kp_buf_init(&b);
    char line[512];
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 0; i < s->ntopics; i++)
        for (int32_t k = 0; k < s->topics[i]->nparts; k++)
            n += s->topics[i]->parts[k]->dir == dir;
    int len = snprintf(line, sizeof line, "0\n%d\n", n);
    kp_put_raw(&b, line, (size_t)len);
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            if (t->parts[k]->dir != dir)
                continue;
            len = snprintf(line, sizeof line, "%s %d %" PRId64 "\n", t->name, k,
                           t->parts[k]->first_dirty);
            kp_put_raw(&b, line, (size_t)len);
        }
    }
    char *d = strdup(s->dirs[dir]);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->cl_io_mu);
    int rc = b.err || !d ? K_ERR_NOMEM : ks_write_atomic(NULL, d, KS_CLEAN_CKPT, b.data, b.len);
    pthread_mutex_unlock(&s->cl_io_mu);
    if (rc)
        ks_log(s, KS_LOG_WARN, "cleaner: %s/%s not written: %s (the next pass redoes work)",
               d ? d : "?", KS_CLEAN_CKPT, k_strerror(rc));
    free(d);
    kp_buf_deinit(&b);
}

int ks_cleaner_load(ks_store_t *s)
{
    for (int d = 0; d < s->ndirs; d++) {
        ks_ckpt_t c = {0};
        int rc = ks_ckpt_read(s->dirs[d], KS_CLEAN_CKPT, &c);
        if (rc == K_ERR_CORRUPT)
            ks_log(s, KS_LOG_WARN, "%s: bad %s; compacted partitions are cleaned again",
                   s->dirs[d], KS_CLEAN_CKPT);
        for (int i = 0; i < s->ntopics; i++) {
            ks_topic_t *t = s->topics[i];
            for (int32_t k = 0; k < t->nparts; k++) {
                ks_part_t *p = t->parts[k];
                if (p->dir != d)
                    continue;
                int64_t fd = rc == 0 ? ks_ckpt_find(&c, t->name, k, -1) : -1;
                /* Out of range: a stale line (e.g. of a deleted topic of the same name). */
                p->first_dirty = fd < p->log_start || fd > p->log_end ? p->log_start : fd;
                p->next_horizon_ms = -1;
            }
        }
        ks_ckpt_free(&c);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* A pass                                                                                       */

static void report(cl_job_t *j, int rc, int64_t ms)
{
    ks_store_t *s = j->s;
    ks_cleaner_stats_t *st = &s->cl_st;
    st->running--;
    st->bytes_read += j->bytes_read;
    st->bytes_written += j->bytes_written;
    st->records_read += j->records_read;
    st->busy_ms += ms;
    st->throttled_ms += j->throttled_ms;
    if (rc) {
        st->cleans_aborted++;
        return;
    }
    st->cleans++;
    st->passes_map_full += j->map_full;
    st->records_removed += j->removed;
    st->tombstones_removed += j->tombs;
    st->invalid_records += j->invalid;
    st->empty_batches_kept += j->empties;
    st->bytes_freed += j->in_bytes - j->out_bytes;
    st->last_clean_ms = ms;
    st->last_clean_end_ms = wall_ms();
    st->last_bytes_in = j->in_bytes;
    st->last_bytes_out = j->out_bytes;
    st->last_mb_per_sec = (double)j->in_bytes / 1048576.0 / ((double)(ms ? ms : 1) / 1000.0);
}

static int run_job(cl_job_t *j)
{
    ks_store_t *s = j->s;
    int64_t t0 = mono_ms();
    int rc = cl_build_map(j);
    if (rc == 0)
        rc = cl_write_outputs(j);
    for (int i = 0; i < j->nrewrite; i++)
        j->in_bytes += j->in[i].bytes;
    if (rc == 0)
        rc = cl_commit(j);
    if (rc && rc != K_ERR_AGAIN)
        ks_log(s, KS_LOG_WARN, "cleaner: %s: pass given up: %s", j->path, k_strerror(rc));
    if (rc && !j->committed)
        cl_discard_outputs(j);
    int64_t ms = mono_ms() - t0;
    pthread_mutex_lock(&s->mu);
    ks_part_t *p = j->p;
    if (rc == 0) {
        p->first_dirty = j->map_end;
        p->next_horizon_ms = j->min_horizon;
    }
    report(j, rc, ms);
    p->cleaning = false;
    p->clean_abort = false;
    pthread_cond_broadcast(&s->cl_idle_cv);
    pthread_mutex_unlock(&s->mu); /* p may be gone from here on */
    if (rc == 0) {
        ks_log(s, KS_LOG_INFO, "cleaner: %s: cleaned offsets %" PRId64 "..%" PRId64 " in %d "
               "segments into %d: %" PRId64 " -> %" PRId64 " bytes, %" PRId64 " records read, %"
               PRId64 " superseded, %" PRId64 " tombstones and %" PRId64 " keyless removed%s; "
               "%" PRId64 " ms, %.1f MiB/s", j->path, j->in[0].base, j->map_end - 1,
               j->nrewrite, j->nout, j->in_bytes, j->out_bytes, j->records_read, j->removed,
               j->tombs, j->invalid, j->map_full ? " (key map full: more passes follow)" : "",
               ms, (double)j->in_bytes / 1048576.0 / ((double)(ms ? ms : 1) / 1000.0));
        write_ckpt(s, j->dir);
    }
    job_free(j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                      */

static void *cleaner_main(void *arg)
{
    ks_store_t *s = arg;
    int64_t backoff = s->o.cleaner.backoff_ms > 0 ? s->o.cleaner.backoff_ms : DEFAULT_BACKOFF_MS;
    pthread_mutex_lock(&s->mu);
    while (!s->cl_stop) {
        if (s->cl_ckpt_dirty) {
            s->cl_ckpt_dirty = false;
            pthread_mutex_unlock(&s->mu);
            for (int d = 0; d < s->ndirs; d++)
                write_ckpt(s, d);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        cl_job_t *j = pick(s, wall_ms());
        if (j) {
            pthread_mutex_unlock(&s->mu);
            run_job(j);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += backoff / 1000;
        ts.tv_nsec += (backoff % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cl_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int ks_cleaner_start(ks_store_t *s)
{
    if (!s->o.cleaner.enable)
        return 0;
    int n = s->o.cleaner.threads > 0 ? s->o.cleaner.threads : 1;
    int max = (int)(sizeof s->cleaners / sizeof s->cleaners[0]);
    if (n > max)
        n = max;
    /* Cleaner threads read ncleaners under the store lock (job_new splits the key-map budget
     * by it): count them under the same lock, so a job picked during start-up never sizes
     * its map for fewer threads than will run. */
    pthread_mutex_lock(&s->mu);
    s->cl_stop = false;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&s->cleaners[i], NULL, cleaner_main, s) != 0)
            break;
        s->ncleaners++;
    }
    pthread_mutex_unlock(&s->mu);
    if (s->ncleaners == 0) {
        ks_log(s, KS_LOG_ERROR, "cannot start the log cleaner thread");
        return K_ERR_NOMEM;
    }
    ks_log(s, KS_LOG_INFO, "log cleaner: %d threads, key map %" PRId64 " bytes each",
           s->ncleaners, (s->o.cleaner.dedupe_buffer_size > 0 ? s->o.cleaner.dedupe_buffer_size
                                                            : DEFAULT_DEDUPE) / s->ncleaners);
    return 0;
}

void ks_cleaner_stop(ks_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->cl_stop = true;
    pthread_cond_broadcast(&s->cl_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->ncleaners; i++)
        pthread_join(s->cleaners[i], NULL);
    s->ncleaners = 0;
}

void ks_cleaner_wake(ks_store_t *s)
{
    pthread_cond_broadcast(&s->cl_cv);
}

void ks_cleaner_forget(ks_store_t *s, ks_part_t *p)
{
    while (p->cleaning) {
        p->clean_abort = true;
        pthread_cond_wait(&s->cl_idle_cv, &s->mu);
    }
    s->cl_ckpt_dirty = true;
    pthread_cond_broadcast(&s->cl_cv);
}

/* ------------------------------------------------------------------------------------------ */
/* Public                                                                                       */

int ks_part_clean(ks_part_t *p, int64_t now_ms, bool force)
{
    if (!p)
        return K_ERR_INVAL;
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    plan_t pl;
    cl_job_t *j = NULL;
    int rc = K_ERR_AGAIN;
    if (evaluate(s, p, now_ms, force, &pl)) {
        j = job_new(s, p, &pl, now_ms);
        if (!j)
            rc = K_ERR_NOMEM;
    }
    pthread_mutex_unlock(&s->mu);
    return j ? run_job(j) : rc;
}

int64_t ks_part_first_dirty(const ks_part_t *p)
{
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    int64_t v = p->first_dirty > p->log_start ? p->first_dirty : p->log_start;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void ks_store_cleaner_stats(const ks_store_t *s, ks_cleaner_stats_t *st)
{
    ks_store_t *m = (ks_store_t *)s; /* the lock is not part of the observable state */
    pthread_mutex_lock(&m->mu);
    *st = s->cl_st;
    st->threads = s->ncleaners;
    pthread_mutex_unlock(&m->mu);
}

bool ks_store_cleaner_enabled(const ks_store_t *s)
{
    return s && s->ncleaners > 0;
}

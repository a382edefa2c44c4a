/*
 * The store: log dirs, meta.properties, the clean-shutdown marker, open/close, the periodic
 * tick, completions and logging.
 *
 * <logdir>/meta.properties, written once when the dir is first used (atomically):
 *     #Written by Depot
 *     version=1
 *     cluster.id=<22 chars: base64url of a random v4 UUID, as Kafka's cluster ids>
 *     node.id=<opts.node_id>
 * Every dir must carry the same cluster id; a node.id other than opts.node_id refuses to
 * open, as Kafka does. A dir without the file gets the cluster id of the others.
 *
 * <logdir>/.depot-clean-shutdown: created by ks_store_close after everything in that dir was
 * fsynced and the checkpoints written; removed (and the removal fsynced) at open, so any stop
 * after open without a clean close is seen as unclean and recovered (recovery.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "storage/ks_int.h"

/* opts.log runs on the loop thread only (ks.h): a line from another thread (the cleaner)
 * is queued and handed over by ks_logq_drain. */
void ks_log(ks_store_t *s, int level, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!pthread_equal(pthread_self(), s->loop_thread)) {
        pthread_mutex_lock(&s->logq_mu);
        if (s->logq_n < (int)(sizeof s->logq / sizeof s->logq[0])) {
            s->logq[s->logq_n].level = level;
            size_t n = strnlen(msg, sizeof s->logq[0].msg - 1); /* long lines are cut */
            memcpy(s->logq[s->logq_n].msg, msg, n);
            s->logq[s->logq_n++].msg[n] = '\0';
        } else {
            s->logq_dropped++;
        }
        pthread_mutex_unlock(&s->logq_mu);
        return;
    }
    s->o.log(level, msg, s->o.log_ud);
}

void ks_logq_drain(ks_store_t *s)
{
    if (!s->o.log || !pthread_equal(pthread_self(), s->loop_thread))
        return;
    struct ks_logq q[sizeof s->logq / sizeof s->logq[0]];
    pthread_mutex_lock(&s->logq_mu);
    int n = s->logq_n, dropped = s->logq_dropped;
    memcpy(q, s->logq, (size_t)n * sizeof q[0]);
    s->logq_n = 0;
    s->logq_dropped = 0;
    pthread_mutex_unlock(&s->logq_mu);
    for (int i = 0; i < n; i++)
        s->o.log(q[i].level, q[i].msg, s->o.log_ud);
    if (dropped)
        ks_log(s, KS_LOG_WARN, "%d more cleaner log lines not shown", dropped);
}

void ks_msgq_push(ks_store_t *s, const char *fmt, ...)
{
    if (s->msgq_n == KS_MSGQ) {
        s->msgq_dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msgq[s->msgq_n++], sizeof s->msgq[0], fmt, ap);
    va_end(ap);
}

/* The flusher may not call opts.log; its lines are logged here, on the loop thread. */
static void drain_msgq(ks_store_t *s)
{
    for (int i = 0; i < s->msgq_n; i++)
        ks_log(s, KS_LOG_ERROR, "%s", s->msgq[i]);
    if (s->msgq_dropped)
        ks_log(s, KS_LOG_ERROR, "%d more flusher errors not shown", s->msgq_dropped);
    s->msgq_n = 0;
    s->msgq_dropped = 0;
}

void ks_fill_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            for (size_t i = 0; i < n; i++) /* no entropy source: still unique enough */
                p[i] = (uint8_t)(rand() ^ (getpid() << 3));
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

int ks_errno_status(int e)
{
    return e == ENOSPC || e == EDQUOT ? K_ERR_NOSPC : K_ERR_IO;
}

void ks_complete(ks_store_t *s, ks_waiter_t *w, int status)
{
    w->status = status;
    w->next = NULL;
    if (s->done_tail)
        s->done_tail->next = w;
    else
        s->done_head = w;
    s->done_tail = w;
}

static int mkdir_p(const char *path)
{
    char tmp[KS_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *c = tmp + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (ks_io.mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    return ks_io.mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int read_meta(ks_store_t *s, int d, char *cid, bool *have)
{
    char path[KS_PATH_MAX], val[64];
    char *text;
    snprintf(path, sizeof path, "%s/%s", s->dirs[d], KS_META_FILE);
    int rc = ks_read_small(path, &text, NULL);
    *have = false;
    if (rc == K_ERR_NOENT)
        return 0;
    if (rc)
        return rc;
    rc = K_ERR_CORRUPT;
    if (ks_props_get(text, "cluster.id", val, sizeof val) == 0 && strlen(val) == 22) {
        rc = 0;
        if (cid[0] && strcmp(cid, val) != 0) {
            ks_log(s, KS_LOG_ERROR, "%s: cluster.id %s differs from %s in another log dir",
                   path, val, cid);
            rc = K_ERR_INVAL;
        }
        snprintf(cid, 23, "%s", val);
    }
    if (rc == 0 && ks_props_get(text, "node.id", val, sizeof val) == 0 &&
        strtol(val, NULL, 10) != s->o.node_id) {
        ks_log(s, KS_LOG_ERROR, "%s: node.id %s does not match the configured %d", path, val,
               s->o.node_id);
        rc = K_ERR_INVAL;
    }
    if (rc == K_ERR_CORRUPT)
        ks_log(s, KS_LOG_ERROR, "%s: no valid cluster.id", path);
    *have = rc == 0;
    free(text);
    return rc;
}

static int setup_dirs(ks_store_t *s)
{
    bool *have = calloc((size_t)s->ndirs, sizeof *have);
    if (!have)
        return K_ERR_NOMEM;
    int rc = 0;
    for (int d = 0; rc == 0 && d < s->ndirs; d++) {
        if (mkdir_p(s->dirs[d]) != 0) {
            ks_log(s, KS_LOG_ERROR, "%s: cannot create: %s", s->dirs[d], strerror(errno));
            rc = ks_errno_status(errno);
            break;
        }
        rc = read_meta(s, d, s->cluster_id, &have[d]);
    }
    if (rc == 0 && !s->cluster_id[0]) {
        uint8_t u[16];
        do {
            ks_fill_random(u, 16);
            u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
            u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
            ks_base64url(u, 16, s->cluster_id);
        } while (s->cluster_id[0] == '-');
        ks_log(s, KS_LOG_INFO, "new cluster id %s", s->cluster_id);
    }
    for (int d = 0; rc == 0 && d < s->ndirs; d++) {
        char path[KS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->dirs[d], KS_CLEAN_FILE);
        struct stat st;
        bool marker = ks_io.stat(path, &st) == 0;
        s->dir_clean[d] = marker || !have[d]; /* a brand new dir has nothing to recover */
        if (marker && (ks_io.unlink(path) != 0 || ks_io.fsync_dir(s->dirs[d]) != 0)) {
            ks_log(s, KS_LOG_ERROR, "%s: cannot remove: %s", path, strerror(errno));
            rc = K_ERR_IO;
        }
        if (!s->dir_clean[d])
            ks_log(s, KS_LOG_WARN, "%s: not cleanly shut down; recovering", s->dirs[d]);
        if (rc == 0 && !have[d]) {
            char text[256];
            int n = snprintf(text, sizeof text,
                             "#Written by Depot\nversion=1\ncluster.id=%s\nnode.id=%d\n",
                             s->cluster_id, s->o.node_id);
            rc = ks_write_atomic(s, s->dirs[d], KS_META_FILE, text, (size_t)n);
        }
    }
    free(have);
    return rc;
}

static void store_free(ks_store_t *s)
{
    ks_graveyard_sweep(s, true);
    ks_trash_free(s);
    ks_ckpt_jobs_free(s); /* close wrote both checkpoints itself, newer than these */
    for (int i = 0; i < s->ntopics; i++)
        ks_topic_free(s, s->topics[i]);
    for (ks_waiter_t *w = s->done_head, *n; w; w = n) {
        n = w->next;
        w->cb(w->arg, w->status);
        free(w);
    }
    free(s->topics);
    free(s->by_id);
    for (int d = 0; d < s->ndirs; d++)
        free(s->dirs[d]);
    free(s->dirs);
    free(s->dir_parts);
    free(s->dir_clean);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_cond_destroy(&s->cl_cv);
    pthread_cond_destroy(&s->cl_idle_cv);
    pthread_mutex_destroy(&s->cl_io_mu);
    pthread_mutex_destroy(&s->logq_mu);
    free(s);
}

int ks_store_open(const ks_store_opts_t *opts, ks_store_t **out)
{
    if (!opts || !out || !opts->dirs || opts->n_dirs < 1)
        return K_ERR_INVAL;
    ks_store_t *s = calloc(1, sizeof *s); /* owned by the caller until ks_store_close */
    if (!s)
        return K_ERR_NOMEM;
    s->o = *opts;
    s->ckpt_interval_ms =
        opts->checkpoint_interval_ms > 0 ? opts->checkpoint_interval_ms : KS_CHECKPOINT_INTERVAL_MS;
    s->o.dirs = NULL;
    s->ndirs = opts->n_dirs;
    s->dirs = calloc((size_t)s->ndirs, sizeof *s->dirs);
    s->dir_parts = calloc((size_t)s->ndirs, sizeof *s->dir_parts);
    s->dir_clean = calloc((size_t)s->ndirs, sizeof *s->dir_clean);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_cond_init(&s->cl_cv, NULL);
    pthread_cond_init(&s->cl_idle_cv, NULL);
    pthread_mutex_init(&s->cl_io_mu, NULL);
    pthread_mutex_init(&s->logq_mu, NULL);
    s->loop_thread = pthread_self();
    s->lru.lru_next = s->lru.lru_prev = &s->lru;
    int rc = s->dirs && s->dir_parts && s->dir_clean ? 0 : K_ERR_NOMEM;
    for (int d = 0; rc == 0 && d < s->ndirs; d++)
        if (!(s->dirs[d] = strdup(opts->dirs[d])))
            rc = K_ERR_NOMEM;
    if (rc == 0)
        rc = setup_dirs(s);
    pthread_mutex_lock(&s->mu);
    if (rc == 0)
        rc = ks_topics_load(s);
    if (rc == 0)
        rc = ks_cleaner_load(s);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        rc = ks_flusher_start(s);
    if (rc == 0)
        rc = ks_cleaner_start(s);
    if (rc) {
        ks_log(s, KS_LOG_ERROR, "cannot open the store: %s", k_strerror(rc));
        ks_cleaner_stop(s);
        ks_flusher_stop(s);
        store_free(s);
        return rc;
    }
    ks_log(s, KS_LOG_INFO, "store open: %d log dirs, %d topics, %d partitions, %" PRId64
           " bytes", s->ndirs, s->ntopics, s->st.partitions, s->st.bytes_on_disk);
    *out = s;
    return 0;
}

/*
 * Close makes everything durable with one syncfs per log dir rather than an fdatasync per
 * file: with thousands of partitions that is one call instead of thousands. Linux reports
 * writeback errors through syncfs since 5.8; a failure leaves the dir unmarked, so the next
 * open re-verifies it.
 */
void ks_store_close(ks_store_t *s)
{
    if (!s)
        return;
    ks_cleaner_stop(s); /* first: a pass in flight is given up or finishes its swap */
    ks_logq_drain(s);
    ks_flusher_stop(s);
    pthread_mutex_lock(&s->mu);
    ks_topics_orphan_pending(s);
    bool *bad = calloc((size_t)s->ndirs, sizeof *bad);
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (p->nsegs && !p->failed)
                ks_seg_close_active(s, p->segs[p->nsegs - 1]);
            if (!p->failed)
                ks_pstate_snapshot(s, p, p->log_end); /* made durable by the syncfs below */
        }
    }
    for (int d = 0; bad && d < s->ndirs; d++) {
        s->st.fsyncs++;
        if (ks_io.syncfs(s->dirs[d]) != 0) {
            s->st.io_errors++;
            ks_log(s, KS_LOG_ERROR, "%s: syncfs failed: %s", s->dirs[d], strerror(errno));
            bad[d] = true;
        }
    }
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (!bad || bad[p->dir] || p->failed) {
                p->failed = true;
                if (bad)
                    bad[p->dir] = true;
                ks_part_fail_waiters(s, p, K_ERR_IO);
                continue;
            }
            ks_part_mark_synced(p);
            ks_part_release_durable(s, p);
            if (p->nsegs && p->segs[p->nsegs - 1]->ts_known) { /* all of it is durable now */
                p->mark_seg = p->segs[p->nsegs - 1];
                ks_mark_take(p->mark_seg, &p->mark);
            }
        }
    }
    drain_msgq(s);
    for (int d = 0; d < s->ndirs; d++) {
        bool ok = ks_ckpt_write(s, d, KS_RP_FILE, true) == 0 &&
                  ks_ckpt_write(s, d, KS_LSO_FILE, false) == 0 && bad && !bad[d];
        /* After a failed fsync the next open must re-verify: no marker for that dir. */
        if (ok)
            ks_write_atomic(s, s->dirs[d], KS_CLEAN_FILE, "", 0);
        else
            ks_log(s, KS_LOG_WARN, "%s: not marked clean; the next open recovers it",
                   s->dirs[d]);
    }
    free(bad);
    pthread_mutex_unlock(&s->mu);
    store_free(s);
}

const char *ks_store_cluster_id(const ks_store_t *s)
{
    return s ? s->cluster_id : NULL;
}

const ks_topic_config_t *ks_store_defaults(const ks_store_t *s)
{
    return &s->o.defaults;
}

void ks_store_set_defaults(ks_store_t *s, const ks_topic_config_t *defaults)
{
    pthread_mutex_lock(&s->mu);
    s->o.defaults = *defaults;
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        ks_topic_config_copy(&t->cfg, defaults, ~t->overrides);
    }
    pthread_mutex_unlock(&s->mu);
}

static void tick_part(ks_store_t *s, ks_part_t *p, int64_t now_ms)
{
    const ks_topic_config_t *c = &p->topic->cfg;
    if (p->failed || p->nsegs == 0)
        return;
    ks_seg_t *a = p->segs[p->nsegs - 1];
    /* Roll an idle active segment by age too, so time retention can reach its data; a
     * compacted one also by max.compaction.lag.ms, so the cleaner can reach it (KIP-354). */
    int64_t roll_ms = c->segment_ms;
    if (ks_cleanup_compacts(c->cleanup_policy) && c->max_compaction_lag_ms < roll_ms)
        roll_ms = c->max_compaction_lag_ms;
    if (a->size > 0 && now_ms - a->created_ms >= roll_ms)
        ks_part_roll(s, p, now_ms);
    if (p->last_flush_ms == 0)
        p->last_flush_ms = now_ms;
    if (c->flush_ms != INT64_MAX && now_ms - p->last_flush_ms >= c->flush_ms) {
        if (p->durable_end < p->log_end)
            ks_flush_request(s, p);
        p->last_flush_ms = now_ms;
        p->unflushed_msgs = 0;
    }
}

/* Every checkpoint interval, each partition whose active segment grew since its last tail
 * mark gets a candidate mark: its state now, and a producer snapshot at that offset (so the
 * replay after a crash starts there too). A flusher pass then fdatasyncs the segment's three
 * files and makes the candidate the mark (flusher.c); the checkpoint carrying it is written
 * at the next tick. That is one extra background fdatasync of three files per interval per
 * written partition, which bounds what recovery re-reads to what was written in about one
 * interval (docs/storage.md, "Recovery"). */
static void take_candidates(ks_store_t *s)
{
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (p->failed || p->nsegs == 0 || p->cand_seg)
                continue;
            ks_seg_t *a = p->segs[p->nsegs - 1];
            if (!a->ts_known || a->size == 0 ||
                (p->mark_seg == a && p->mark.base == a->base && p->mark.pos == a->size))
                continue;
            if (ks_idx_flush_pending(s, a) != 0)
                continue; /* the mark must agree with the index files; next interval */
            ks_mark_take(a, &p->cand);
            p->cand_seg = a;
            ks_pstate_snapshot(s, p, p->cand.off);
            ks_flush_request(s, p);
        }
    }
}

static void checkpoint_if_moved(ks_store_t *s, int64_t now_ms)
{
    /* The first tick writes a moved recovery point but takes no marks: open left every active
     * segment marked, so the first candidates are due one interval after it. */
    bool first = !s->ckpt_clock;
    bool due = first || now_ms - s->last_ckpt_ms >= s->ckpt_interval_ms;
    if (!due && !s->mark_moved)
        return;
    s->ckpt_clock = true;
    if (due)
        s->last_ckpt_ms = now_ms;
    s->mark_moved = false;
    for (int d = 0; d < s->ndirs; d++) {
        bool moved = false;
        for (int i = 0; i < s->ntopics && !moved; i++) {
            ks_topic_t *t = s->topics[i];
            for (int32_t j = 0; j < t->nparts && !moved; j++) {
                ks_part_t *p = t->parts[j];
                moved = p->dir == d && (ks_part_recovery_point(p) != p->rp_written ||
                                        ks_part_ckpt_mark_pos(p) != p->mark_written);
            }
        }
        if (moved) /* written by a flusher thread: no fsync on the loop under mu */
            ks_ckpt_queue(s, d, KS_RP_FILE, true);
    }
    if (due && !first)
        take_candidates(s);
}

void ks_store_tick(ks_store_t *s, int64_t now_ms)
{
    if (!s)
        return;
    ks_logq_drain(s);
    pthread_mutex_lock(&s->mu);
    drain_msgq(s);
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++)
            tick_part(s, t->parts[j], now_ms);
    }
    ks_retention_run(s, now_ms);
    ks_pstate_expire(s, now_ms);
    checkpoint_if_moved(s, now_ms);
    pthread_mutex_unlock(&s->mu);
}

static void stage_add(ks_store_t *s, int stage, int64_t us)
{
    if (us < 0)
        us = 0;
    int b = 0;
    while (b < KS_STAGE_BUCKETS - 1 && us > ks_stage_bounds_us[b])
        b++;
    s->st.sync_stage_hist[stage][b]++;
    s->st.sync_stage_us_sum[stage] += us;
}

/* Under mu: the stage durations of the completed waiters (ks.h, KS_STAGE_*). Waiters that
 * never reached a pass (failed, or a partition deleted) are not counted. */
static void note_stages(ks_store_t *s, ks_waiter_t *w)
{
    int64_t now = w ? ks_mono_us() : 0;
    for (; w; w = w->next) {
        if (w->status != 0 || !w->t_enq || !w->t_done)
            continue;
        stage_add(s, KS_STAGE_QUEUE, w->t_pick - w->t_enq);
        stage_add(s, KS_STAGE_PASS, w->t_done - w->t_pick);
        stage_add(s, KS_STAGE_WAKE, now - w->t_done);
        stage_add(s, KS_STAGE_TOTAL, now - w->t_enq);
    }
}

void ks_store_run_completions(ks_store_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    ks_waiter_t *w = s->done_head;
    s->done_head = s->done_tail = NULL;
    note_stages(s, w);
    drain_msgq(s);
    pthread_mutex_unlock(&s->mu);
    ks_logq_drain(s);
    while (w) {
        ks_waiter_t *next = w->next;
        w->cb(w->arg, w->status);
        free(w);
        w = next;
    }
}

void ks_store_stats(const ks_store_t *s, ks_stats_t *st)
{
    ks_store_t *m = (ks_store_t *)s; /* the lock is not part of the observable state */
    pthread_mutex_lock(&m->mu);
    *st = s->st;
    st->open_files = s->open_files;
    pthread_mutex_unlock(&m->mu);
}

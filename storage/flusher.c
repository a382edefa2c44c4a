/*
 * The flusher threads (KS_FLUSHERS): fdatasync of dirty partitions, with group commit. A
 * partition is flushed by one thread at a time; different partitions in parallel, so an
 * acks=all request spanning several partitions waits about one fsync, not one per partition.
 *
 * A partition is queued for a pass by ks_part_sync (acks=all), flush.messages, flush.ms, a
 * segment roll, or close. A pass, under s->mu, snapshots the log end and the write
 * generation of every dirty file of the partition (the active .log, and for rolled segments
 * all three files), pins those files, and drops the lock; it then fdatasyncs them, fsyncs the
 * partition directory if files were created in it since the last pass, and retakes the lock
 * to publish the result. Every ks_part_sync waiter whose offset is covered by the snapshot is
 * released at once, so all the waiters that queued up during one fsync share the next one.
 * A rolled segment is synced in the same pass as the active one, before any waiter goes.
 *
 * The active segment's index files are not synced by an ordinary pass: they are derived data,
 * and the recovery after an unclean stop rebuilds the active segment's indexes after the
 * segment's tail mark. A pass for a candidate tail mark (p->cand_seg, taken by the tick once
 * per checkpoint interval) also syncs that segment's indexes and then publishes the mark, so
 * recovery can start there (recovery.c). Close makes everything durable with its syncfs.
 *
 * fsync failure ("fsyncgate"): after a failed fsync Linux may already have dropped the dirty
 * pages, so a later fsync can succeed without the data being on disk. Depot therefore marks
 * the partition failed: every waiter of that pass and every later ks_part_sync gets K_ERR_IO,
 * appends get K_ERR_IO, reads keep working, durable_end stops moving, and close neither
 * advances its recovery point nor writes the clean-shutdown marker for its log dir. Reopening
 * the store recovers it from the last good recovery point, re-verifying every batch.
 *
 * A resource shortage is not a broken disk: when a pass cannot open a file (EMFILE, ENFILE,
 * ENOMEM), cannot allocate, or fdatasync/the directory fsync report EMFILE, ENFILE or ENOMEM
 * (the directory fsync opens the directory first), nothing is marked failed. The waiters stay,
 * the pass is retried after a backoff (10 ms doubling to 5 s), the first retries and the
 * recovery are logged, and the partition heals by itself once descriptors or memory are back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/ks_int.h"

const int64_t ks_fsync_bounds_us[KS_FSYNC_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

const int64_t ks_stage_bounds_us[KS_STAGE_BUCKETS - 1] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000, 5000000,
};
const char *const ks_stage_names[KS_STAGES] = {"queue", "pass", "wake", "total"};

int64_t ks_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
#define mono_us ks_mono_us

#define RETRY_FIRST_US 10000
#define RETRY_MAX_US 5000000

static bool shortage(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM;
}

/* Counts one fsync's duration (since t0) into a pass-local histogram (no lock held). */
static void note_fsync(int64_t *hist, int64_t *sum, int64_t t0)
{
    int64_t us = mono_us() - t0;
    int b = 0;
    while (b < KS_FSYNC_BUCKETS - 1 && us > ks_fsync_bounds_us[b])
        b++;
    hist[b]++;
    *sum += us;
}

/*
 * Wakeups are kept to the one that can do work. A partition queued while a pass over it is
 * running is taken by that pass's thread when it ends (flusher_main picks again before it
 * sleeps), so no other thread is woken for it: on a box with fewer cores than flusher threads,
 * waking threads that only find the partition busy took the CPU from the event loop at every
 * acks=all request (docs/benchmarks.md, "the acks=all tail").
 */
bool ks_flush_enqueue(ks_store_t *s, ks_part_t *p)
{
    if (p->flush_queued)
        return false;
    p->flush_queued = true;
    p->flush_next = NULL;
    if (s->fq_tail)
        s->fq_tail->flush_next = p;
    else
        s->fq_head = p;
    s->fq_tail = p;
    return !p->flushing;
}

void ks_flush_request(ks_store_t *s, ks_part_t *p)
{
    if (ks_flush_enqueue(s, p))
        pthread_cond_signal(&s->cv);
}

static void unqueue(ks_store_t *s, ks_part_t *p)
{
    if (!p->flush_queued)
        return;
    ks_part_t **pp = &s->fq_head, *prev = NULL;
    while (*pp && *pp != p) {
        prev = *pp;
        pp = &(*pp)->flush_next;
    }
    if (*pp) {
        *pp = p->flush_next;
        if (s->fq_tail == p)
            s->fq_tail = prev;
    }
    p->flush_queued = false;
    p->flush_next = NULL;
}

void ks_part_fail_waiters(ks_store_t *s, ks_part_t *p, int status)
{
    while (p->waiters) {
        ks_waiter_t *w = p->waiters;
        p->waiters = w->next;
        ks_complete(s, w, status);
    }
}

int ks_part_release_durable(ks_store_t *s, ks_part_t *p)
{
    int n = 0;
    int64_t now = p->waiters ? mono_us() : 0;
    for (ks_waiter_t **pp = &p->waiters; *pp;) {
        ks_waiter_t *w = *pp;
        if (w->offset <= p->durable_end) {
            *pp = w->next;
            /* A waiter queued just after the snapshot that still covers it waited for none. */
            w->t_pick = p->pass_start_us > w->t_enq ? p->pass_start_us : w->t_enq;
            w->t_done = now;
            ks_complete(s, w, 0);
            n++;
        } else {
            pp = &w->next;
        }
    }
    return n;
}

typedef struct {
    ks_file_t *f;
    uint32_t gen;
} pinned_t;

/* A pass hit a shortage: keep the waiters, queue the partition again after a backoff. */
static void retry_later(ks_store_t *s, ks_part_t *p, const char *what, const char *path, int err)
{
    int64_t backoff = RETRY_FIRST_US;
    for (int i = 0; i < p->retries && backoff < RETRY_MAX_US; i++)
        backoff *= 2;
    if (backoff > RETRY_MAX_US)
        backoff = RETRY_MAX_US;
    p->retries++;
    p->retry_at_us = mono_us() + backoff;
    if (p->retries <= 3 || (p->retries & (p->retries - 1)) == 0) /* 1, 2, 3, 4, 8, 16, ... */
        ks_msgq_push(s, "%s: %s failed: %s; retrying in %lld ms (retry %d), writes continue",
                     path[0] ? path : p->path, what, strerror(err), (long long)(backoff / 1000),
                     p->retries);
    ks_flush_request(s, p);
}

/* One pass over p; entered and left with s->mu held, drops it around the fsyncs. Returns
 * the number of completions queued. */
static int flush_pass(ks_store_t *s, ks_part_t *p, bool all)
{
    if (p->failed) {
        int had = p->waiters != NULL;
        ks_part_fail_waiters(s, p, K_ERR_IO);
        return had;
    }
    p->flushing = true;
    p->pass_start_us = mono_us();
    int64_t target = p->log_end;
    uint32_t dgen = p->dir_gen;
    bool dir = dgen != p->dir_synced_gen;
    int n = 0, err = 0;
    char path[KS_PATH_MAX];
    path[0] = '\0';
    pinned_t *pins = calloc((size_t)p->nsegs * 3 + 1, sizeof *pins);
    if (!pins)
        err = ENOMEM;
    ks_seg_t *cseg = p->cand_seg; /* compared only: it may have left segs[] meanwhile */
    if (cseg && (!ks_part_has_seg(p, cseg) || cseg->base != p->cand.base))
        cseg = p->cand_seg = NULL;
    ks_mark_t cand = p->cand;
    for (int i = 0; !err && i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        int kinds = seg->closed || all || seg == cseg ? 3 : 1;
        for (int k = 0; k < kinds; k++) {
            ks_file_t *f = &seg->f[k];
            if (f->wgen == f->sgen)
                continue;
            int rc = ks_file_acquire(s, f);
            if (rc != 0) {
                err = rc == K_ERR_AGAIN ? EMFILE : EIO;
                if (rc == K_ERR_AGAIN)
                    ks_file_path(f, path, sizeof path);
                break;
            }
            pins[n].f = f;
            pins[n++].gen = f->wgen;
        }
    }
    const char *what = err ? "open" : "fdatasync";
    int64_t hist[KS_FSYNC_BUCKETS] = {0}, sum = 0; /* published once the lock is back */
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; !err && i < n; i++) {
        int64_t t0 = mono_us();
        if (ks_io.fdatasync(pins[i].f->fd) != 0) {
            err = errno ? errno : EIO;
            ks_file_path(pins[i].f, path, sizeof path);
        }
        note_fsync(hist, &sum, t0);
    }
    if (!err && dir) {
        int64_t t0 = mono_us();
        if (ks_io.fsync_dir(p->path) != 0) {
            err = errno ? errno : EIO;
            what = "directory fsync";
            snprintf(path, sizeof path, "%s", p->path);
        }
        note_fsync(hist, &sum, t0);
    }
    pthread_mutex_lock(&s->mu);
    s->st.fsyncs += n + (dir ? 1 : 0);
    for (int b = 0; b < KS_FSYNC_BUCKETS; b++)
        s->st.fsync_hist[b] += hist[b];
    s->st.fsync_us_sum += sum;
    for (int i = 0; i < n; i++) {
        if (!err)
            pins[i].f->sgen = pins[i].gen;
        ks_file_release(s, pins[i].f);
    }
    free(pins);
    if (s->graveyard)
        ks_graveyard_sweep(s, false);
    int done = 0;
    if (err && shortage(err)) {
        retry_later(s, p, what, path, err);
    } else if (err) {
        p->failed = true;
        p->fail_errno = err;
        p->cand_seg = NULL;
        s->st.io_errors++;
        ks_msgq_push(s, "%s: %s failed: %s; partition refuses writes until the store is reopened",
                     path[0] ? path : p->path, what, strerror(err));
        done = p->waiters != NULL;
        ks_part_fail_waiters(s, p, K_ERR_IO);
    } else {
        if (p->retries)
            ks_msgq_push(s, "%s: fsync succeeded after %d retries (resource shortage over)",
                         p->path, p->retries);
        p->retries = 0;
        p->retry_at_us = 0;
        if (dir)
            p->dir_synced_gen = dgen;
        if (target > p->durable_end)
            p->durable_end = target;
        if (cseg && p->cand_seg == cseg && ks_part_has_seg(p, cseg)) {
            /* Everything the candidate describes was written before this pass pinned the
             * files, so the fdatasyncs above covered it. */
            p->mark = cand;
            p->mark_seg = cseg;
            p->cand_seg = NULL;
            s->mark_moved = true;
        }
        done = ks_part_release_durable(s, p);
        if (p->waiters)
            ks_flush_request(s, p);
    }
    p->flushing = false;
    pthread_cond_broadcast(&s->idle_cv);
    return done;
}

struct ks_trash {
    char *path;     /* owned; a file or a directory tree to remove, or NULL */
    char *sync_dir; /* owned; a directory to fsync afterwards, or NULL */
    struct ks_trash *next;
};

void ks_trash_push(ks_store_t *s, char *path, char *sync_dir)
{
    struct ks_trash *t = malloc(sizeof *t);
    if (!t) { /* no memory for the list: do it now */
        if (path)
            ks_rm_rf(path);
        if (sync_dir)
            ks_io.fsync_dir(sync_dir);
        free(path);
        free(sync_dir);
        return;
    }
    t->path = path;
    t->sync_dir = sync_dir;
    t->next = NULL;
    if (s->trash_tail)
        s->trash_tail->next = t;
    else
        s->trash = t;
    s->trash_tail = t;
    pthread_cond_signal(&s->cv);
}

static void trash_free_one(struct ks_trash *t)
{
    free(t->path);
    free(t->sync_dir);
    free(t);
}

void ks_trash_free(ks_store_t *s)
{
    while (s->trash) {
        struct ks_trash *t = s->trash;
        s->trash = t->next;
        trash_free_one(t);
    }
    s->trash_tail = NULL;
}

/* Removes one queued item with the lock dropped. Names in the trash are unique (random
 * *-delete directories, *.deleted files), so nothing created later can be hit. */
static void empty_one(ks_store_t *s)
{
    struct ks_trash *t = s->trash;
    s->trash = t->next;
    if (!s->trash)
        s->trash_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    int rc = t->path ? ks_rm_rf(t->path) : 0;
    if (rc == 0 && t->sync_dir && ks_io.fsync_dir(t->sync_dir) != 0 && errno != ENOENT)
        rc = K_ERR_IO;
    pthread_mutex_lock(&s->mu);
    if (rc)
        ks_msgq_push(s, "%s: not fully removed; removed at the next open",
                     t->path ? t->path : t->sync_dir);
    trash_free_one(t);
}

/* The first queued partition no other flusher thread is working on, taken off the queue. */
static ks_part_t *pick(ks_store_t *s)
{
    ks_part_t *prev = NULL;
    int64_t now = -1;
    for (ks_part_t *p = s->fq_head; p; prev = p, p = p->flush_next) {
        if (p->flushing)
            continue;
        if (p->retry_at_us) {
            if (now < 0)
                now = mono_us();
            if (now < p->retry_at_us)
                continue; /* backing off after a shortage */
        }
        if (prev)
            prev->flush_next = p->flush_next;
        else
            s->fq_head = p->flush_next;
        if (s->fq_tail == p)
            s->fq_tail = prev;
        p->flush_queued = false;
        p->flush_next = NULL;
        return p;
    }
    return NULL;
}

/* Sleeps until signalled, or until the earliest backed-off partition is due. */
static void wait_for_work(ks_store_t *s)
{
    int64_t due = 0;
    for (ks_part_t *p = s->fq_head; p; p = p->flush_next)
        if (!p->flushing && p->retry_at_us && (!due || p->retry_at_us < due))
            due = p->retry_at_us;
    if (!due) {
        pthread_cond_wait(&s->cv, &s->mu);
        return;
    }
    int64_t wait = due - mono_us();
    if (wait <= 0)
        return;
    struct timespec ts; /* the condition variable runs on CLOCK_REALTIME */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait / 1000000);
    ts.tv_nsec += (long)(wait % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void *flusher_main(void *arg)
{
    ks_store_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        ks_part_t *p = NULL;
        bool ckpt = false;
        while (!s->stop && !(p = pick(s)) && !s->trash &&
               !(ckpt = s->ckpt_jobs && !s->ckpt_writing))
            wait_for_work(s);
        if (s->stop)
            break;
        if (!p && ckpt) {
            ks_ckpt_write_one(s);
            continue;
        }
        if (!p) {
            empty_one(s);
            continue;
        }
        /* If p was queued again meanwhile, this thread takes it at the next pick. */
        int done = flush_pass(s, p, false);
        if (done && s->o.on_sync_ready) {
            pthread_mutex_unlock(&s->mu);
            s->o.on_sync_ready(s->o.sync_ud);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int ks_flusher_start(ks_store_t *s)
{
    s->stop = false;
    for (int i = 0; i < KS_FLUSHERS; i++) {
        if (pthread_create(&s->flushers[i], NULL, flusher_main, s) != 0)
            return s->nflushers ? 0 : K_ERR_NOMEM; /* fewer threads still work */
        s->nflushers++;
    }
    return 0;
}

void ks_flusher_stop(ks_store_t *s)
{
    if (!s->nflushers)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nflushers; i++)
        pthread_join(s->flushers[i], NULL);
    s->nflushers = 0;
}

void ks_part_wait_idle(ks_store_t *s, ks_part_t *p)
{
    while (p->flushing)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    unqueue(s, p); /* after the wait: a finishing pass may have queued p again */
}

int ks_part_sync_now(ks_part_t *p, int64_t offset)
{
    if (!p)
        return K_ERR_INVAL;
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    if (offset > p->log_end)
        offset = p->log_end;
    int done = 0;
    /* A flusher pass may be running on p: wait for it (it may cover offset), then run our own
     * pass on this thread. Our pass also releases the asynchronous waiters it covers. */
    while (!p->failed && offset > p->durable_end) {
        if (p->flushing) {
            pthread_cond_wait(&s->idle_cv, &s->mu);
            continue;
        }
        unqueue(s, p);
        int64_t before = p->durable_end;
        done += flush_pass(s, p, false);
        if (p->durable_end == before && !p->failed && offset > p->durable_end)
            break; /* a resource shortage: retried later by the flushers, not by us */
    }
    int rc = p->failed ? K_ERR_IO : offset <= p->durable_end ? 0 : K_ERR_AGAIN;
    pthread_mutex_unlock(&s->mu);
    if (done && s->o.on_sync_ready)
        s->o.on_sync_ready(s->o.sync_ud);
    return rc;
}

void ks_part_mark_synced(ks_part_t *p)
{
    for (int i = 0; i < p->nsegs; i++)
        for (int k = 0; k < 3; k++)
            p->segs[i]->f[k].sgen = p->segs[i]->f[k].wgen;
    p->dir_synced_gen = p->dir_gen;
    p->durable_end = p->log_end;
}

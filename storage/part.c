/*
 * Partition logs: append (offset assignment, roll, index upkeep), read, ListOffsets lookups
 * and DeleteRecords. Every public function here runs on the loop thread and holds s->mu for
 * its whole body (see ks_int.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ks_int.h"

#define STORE(p) ((p)->topic->s)

ks_topic_t *ks_part_topic(const ks_part_t *p)
{
    return p->topic;
}

int32_t ks_part_index(const ks_part_t *p)
{
    return p->index;
}

#define LOCKED_GET(field)                                                                      \
    ks_store_t *s = STORE(p);                                                                  \
    pthread_mutex_lock(&s->mu);                                                                \
    int64_t v = (field);                                                                       \
    pthread_mutex_unlock(&s->mu);                                                              \
    return v

int64_t ks_part_log_start(const ks_part_t *p)
{
    LOCKED_GET(p->log_start);
}

int64_t ks_part_log_end(const ks_part_t *p)
{
    LOCKED_GET(p->log_end);
}

int64_t ks_part_high_watermark(const ks_part_t *p)
{
    LOCKED_GET(p->log_end);
}

int64_t ks_part_durable_end(const ks_part_t *p)
{
    LOCKED_GET(p->durable_end);
}

int64_t ks_part_size_bytes(const ks_part_t *p)
{
    LOCKED_GET(p->bytes);
}

/* First pass over the producer's bytes: framing and size limits, nothing changed yet. */
static int check_batches(ks_part_t *p, const uint8_t *buf, size_t len, int64_t *records)
{
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    int rc, n = 0;
    *records = 0;
    kp_batch_iter_init(&it, buf, len, true);
    while ((rc = kp_batch_iter_next(&it, &b, &blen)) == 1) {
        kp_batch_hdr_t h;
        if (kp_batch_hdr_parse(b, blen, &h) || h.last_offset_delta < 0)
            return K_ERR_INVAL;
        if (blen > (size_t)p->topic->cfg.max_message_bytes && p->topic->cfg.max_message_bytes)
            return K_ERR_TOOLARGE;
        *records += (int64_t)h.last_offset_delta + 1;
        n++;
    }
    if (rc < 0 || n == 0)
        return K_ERR_INVAL;
    return 0;
}

static bool needs_roll(ks_part_t *p, size_t len, int64_t records, int64_t now_ms)
{
    if (p->nsegs == 0)
        return true;
    ks_seg_t *a = p->segs[p->nsegs - 1];
    if (a->size == 0)
        return false;
    const ks_topic_config_t *c = &p->topic->cfg;
    if (a->size + (int64_t)len > c->segment_bytes)
        return true;
    if (now_ms - a->created_ms >= c->segment_ms)
        return true;
    /* Relative offsets and positions in the indexes are 4 bytes. */
    if (p->log_end + records - 1 - a->base > INT32_MAX || a->size + (int64_t)len > INT32_MAX)
        return true;
    return false;
}

typedef struct {
    int64_t size, idx_size, tidx_size, max_ts, max_ts_off, tidx_last_ts, since_index;
    bool ts_known;
} seg_state_t;

static void save_state(const ks_seg_t *a, seg_state_t *st)
{
    *st = (seg_state_t){a->size,         a->idx_size,    a->tidx_size, a->max_ts,
                        a->max_ts_off,   a->tidx_last_ts, a->since_index, a->ts_known};
}

static void restore_state(ks_seg_t *a, const seg_state_t *st)
{
    a->size = st->size;
    a->idx_size = st->idx_size;
    a->tidx_size = st->tidx_size;
    a->max_ts = st->max_ts;
    a->max_ts_off = st->max_ts_off;
    a->tidx_last_ts = st->tidx_last_ts;
    a->since_index = st->since_index;
    a->ts_known = st->ts_known;
}

/* Writes the stamped batches at the end of the active segment; cuts a short write back. */
static int write_log(ks_store_t *s, ks_seg_t *a, const uint8_t *buf, size_t len)
{
    ks_file_t *f = &a->f[KS_FILE_LOG];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    /* The copy into the page cache is most of an append's time: let the flusher publish
     * finished syncs meanwhile. The pin keeps the fd, and only this thread appends. */
    pthread_mutex_unlock(&s->mu);
    rc = ks_io_pwrite_all(f->fd, buf, len, a->size);
    int e = errno;
    pthread_mutex_lock(&s->mu);
    if (rc != 0) {
        char path[KS_PATH_MAX];
        ks_file_path(f, path, sizeof path);
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: append of %zu bytes at %lld failed: %s", path, len,
               (long long)a->size, strerror(e));
        if (ks_io.ftruncate(f->fd, a->size) != 0)
            ks_log(s, KS_LOG_ERROR, "%s: cannot cut the short write back to %lld: %s", path,
                   (long long)a->size, strerror(errno));
        ks_file_release(s, f);
        return ks_errno_status(e);
    }
    f->wgen++;
    ks_file_release(s, f);
    return 0;
}

int ks_part_append_locked(ks_store_t *s, ks_part_t *p, uint8_t *buf, size_t len,
                          int64_t now_ms, ks_append_result_t *res)
{
    if (p->failed)
        return K_ERR_IO;
    int64_t records;
    int rc = check_batches(p, buf, len, &records);
    if (rc)
        return rc;
    rc = ks_budget_make_room(s, p, (int64_t)len);
    if (rc)
        return rc;
    if (needs_roll(p, len, records, now_ms) && (rc = ks_part_roll(s, p, now_ms)) != 0)
        return rc;

    const ks_topic_config_t *c = &p->topic->cfg;
    bool log_time = c->timestamp_type == KS_TS_LOG_APPEND_TIME;
    ks_seg_t *a = p->segs[p->nsegs - 1];
    seg_state_t saved;
    save_state(a, &saved);

    kp_buf_t idx, tidx;
    kp_buf_init(&idx);
    kp_buf_init(&tidx);
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    int64_t next = p->log_end, pos = a->size;
    kp_batch_iter_init(&it, buf, len, true);
    while (kp_batch_iter_next(&it, &b, &blen) == 1) {
        uint8_t *w = (uint8_t *)b; /* b points into buf, which the caller lets us stamp */
        kp_batch_hdr_t h;
        kp_batch_set_base_offset(w, next);
        kp_batch_set_leader_epoch(w, 0);
        if (log_time)
            kp_batch_set_log_append_time(w, blen, now_ms);
        kp_batch_hdr_parse(w, blen, &h);
        ks_idx_note_batch(a, &h, pos, (int64_t)blen, c->index_interval_bytes, &idx, &tidx);
        next += (int64_t)h.last_offset_delta + 1;
        pos += (int64_t)blen;
    }
    rc = write_log(s, a, buf, len);
    if (rc == 0) {
        /* The entries wait with the segment's others (ks_idx_flush_pending); when they are
         * written now and that fails, this append is undone and the older ones wait on. */
        size_t ip0 = a->ipend.len, tp0 = a->tpend.len;
        kp_put_raw(&a->ipend, idx.data, idx.len);
        kp_put_raw(&a->tpend, tidx.data, tidx.len);
        rc = a->ipend.err || a->tpend.err ? K_ERR_NOMEM : 0;
        if (rc == 0 && a->ipend.len >= KS_IDX_PEND * KS_IDX_ENTRY) {
            a->size += (int64_t)len;
            rc = ks_idx_flush_pending(s, a);
            a->size -= (int64_t)len;
        }
        if (rc) {
            a->ipend.len = ip0; /* a failed realloc left the old bytes in place */
            a->tpend.len = tp0;
            a->ipend.err = a->tpend.err = 0;
            /* All or nothing: the batches are written but their index entries are not. */
            ks_file_t *f = &a->f[KS_FILE_LOG];
            if (ks_file_acquire(s, f) == 0) {
                ks_io.ftruncate(f->fd, a->size);
                ks_file_release(s, f);
            }
        }
    }
    kp_buf_deinit(&idx);
    kp_buf_deinit(&tidx);
    if (rc) {
        int64_t idx_added = a->idx_size - saved.idx_size + a->tidx_size - saved.tidx_size;
        p->bytes -= idx_added;
        s->st.bytes_on_disk -= idx_added;
        restore_state(a, &saved);
        return rc;
    }
    a->size += (int64_t)len;
    p->bytes += (int64_t)len;
    p->log_bytes += (int64_t)len;
    s->st.bytes_on_disk += (int64_t)len;
    s->st.bytes_appended += (int64_t)len;
    res->base_offset = p->log_end;
    res->last_offset = next - 1;
    res->log_append_time = log_time ? now_ms : -1;
    p->log_end = next;
    res->log_start = p->log_start;
    p->unflushed_msgs += records;
    if (p->unflushed_msgs >= c->flush_messages)
        ks_flush_request(s, p);
    return 0;
}

int ks_part_append(ks_part_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                   ks_append_result_t *res)
{
    if (!p || !buf || !len || !res)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = ks_part_append_locked(s, p, buf, len, now_ms, res);
    if (rc == 0)
        ks_pstate_note(p, buf, len, now_ms); /* the log and the state must agree */
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Copies whole batches from pos: one pread of up to max_bytes, then trims to the last batch
 * that fits (or reads the first whole batch when min_one asks for it). */
static int read_batches(ks_store_t *s, ks_seg_t *seg, int64_t pos, const kp_batch_hdr_t *first,
                        size_t max_bytes, bool min_one, kp_buf_t *out)
{
    int64_t first_size = KP_BATCH_LOG_OVERHEAD + (int64_t)first->batch_length;
    int64_t avail = seg->size - pos;
    size_t want = (size_t)(avail < (int64_t)max_bytes ? avail : (int64_t)max_bytes);
    if ((int64_t)want < first_size) {
        if (!min_one)
            return 0;
        want = (size_t)first_size;
    }
    if (kp_buf_reserve(out, want))
        return K_ERR_NOMEM;
    ks_file_t *f = &seg->f[KS_FILE_LOG];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    uint8_t *dst = out->data + out->len;
    pthread_mutex_unlock(&s->mu); /* as in write_log: a long copy, the fd pinned */
    rc = ks_io_pread_all(f->fd, dst, want, pos);
    pthread_mutex_lock(&s->mu);
    if (rc != 0) {
        char path[KS_PATH_MAX];
        ks_file_path(f, path, sizeof path);
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: read at %lld failed: %s", path, (long long)pos,
               strerror(errno));
        ks_file_release(s, f);
        return K_ERR_IO;
    }
    ks_file_release(s, f);
    size_t used = 0;
    while (want - used >= KP_BATCH_LOG_OVERHEAD) {
        int64_t bsz = kp_batch_size(dst + used, want - used);
        if (bsz < KP_BATCH_HEADER_SIZE) {
            char path[KS_PATH_MAX];
            ks_file_path(f, path, sizeof path);
            ks_log(s, KS_LOG_ERROR, "%s:%lld: corrupt batch length", path,
                   (long long)(pos + (int64_t)used));
            if (used == 0)
                return K_ERR_CORRUPT;
            break;
        }
        if ((uint64_t)bsz > want - used)
            break;
        used += (size_t)bsz;
    }
    out->len += used;
    return 0;
}

int ks_part_read(ks_part_t *p, int64_t offset, size_t max_bytes, bool min_one, kp_buf_t *out)
{
    if (!p || !out)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (offset < p->log_start || offset > p->log_end) {
        rc = K_ERR_RANGE;
        goto out;
    }
    if (offset == p->log_end)
        goto out;
    int i = ks_part_find_seg(p, offset);
    if (i < 0)
        i = 0;
    for (; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        int64_t pos;
        kp_batch_hdr_t h;
        rc = ks_seg_find(s, seg, offset, &pos, &h);
        if (rc == K_ERR_NOENT) {
            rc = 0; /* past this segment's batches (a gap): the next segment serves */
            continue;
        }
        if (rc == 0)
            rc = read_batches(s, seg, pos, &h, max_bytes, min_one, out);
        break;
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ks_part_bytes_from(ks_part_t *p, int64_t offset, int64_t *bytes)
{
    if (!p || !bytes)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    int64_t n = 0;
    bool found = false;
    if (offset < p->log_start)
        offset = p->log_start;
    int i = offset < p->log_end ? ks_part_find_seg(p, offset) : p->nsegs;
    for (i = i < 0 ? 0 : i; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        if (found) {
            n += seg->size;
            continue;
        }
        int64_t pos;
        kp_batch_hdr_t h;
        rc = ks_seg_find(s, seg, offset, &pos, &h);
        if (rc == K_ERR_NOENT) { /* past this segment's batches (a gap): the next one holds it */
            rc = 0;
            continue;
        }
        if (rc)
            break;
        n += seg->size - pos;
        found = true;
    }
    pthread_mutex_unlock(&s->mu);
    *bytes = rc ? 0 : n;
    return rc;
}

static int offset_for_time_locked(ks_store_t *s, ks_part_t *p, int64_t ts, int64_t *offset,
                                  int64_t *found_ts)
{
    for (int i = 0; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        int rc = ks_seg_load_ts(s, seg);
        if (rc)
            return rc;
        if (seg->size == 0 || seg->max_ts < ts || ks_seg_next_offset(seg) <= p->log_start)
            continue;
        int64_t from, pos;
        kp_batch_hdr_t h;
        rc = ks_tidx_lookup(s, seg, ts, &from);
        if (rc == 0)
            rc = ks_idx_lookup(s, seg, from, &pos);
        for (; rc == 0; pos += KP_BATCH_LOG_OVERHEAD + h.batch_length) {
            rc = ks_seg_read_hdr(s, seg, pos, &h);
            if (rc == 0 && h.max_timestamp >= ts &&
                h.base_offset + h.last_offset_delta >= p->log_start) {
                *offset = h.base_offset > p->log_start ? h.base_offset : p->log_start;
                *found_ts = h.max_timestamp;
                return 0;
            }
        }
        if (rc != K_ERR_NOENT)
            return rc;
    }
    return K_ERR_NOENT;
}

int ks_part_offset_for_time(ks_part_t *p, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    if (!p || !offset || !found_ts)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = offset_for_time_locked(s, p, ts, offset, found_ts);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ks_part_max_timestamp(ks_part_t *p, int64_t *offset, int64_t *ts)
{
    if (!p || !offset || !ts)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = K_ERR_NOENT;
    bool any = false;
    for (int i = 0; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        int r = ks_seg_load_ts(s, seg);
        if (r) {
            rc = r;
            any = false;
            break;
        }
        if (seg->size > 0 && (!any || seg->max_ts > *ts)) {
            *ts = seg->max_ts;
            *offset = seg->max_ts_off;
            any = true;
        }
    }
    if (any)
        rc = 0;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ks_part_delete_records(ks_part_t *p, int64_t offset)
{
    if (!p)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (offset > p->log_end || offset < 0) {
        rc = K_ERR_RANGE;
    } else if (offset > p->log_start) {
        p->log_start = offset;
        /* Whole segments below the new start go now (never the active one). */
        while (p->nsegs > 1 && p->segs[1]->base <= offset && ks_part_drop_first(s, p) == 0)
            s->st.segments_deleted_retention++;
        /* Persisted by a flusher thread, as Kafka persists its log start asynchronously:
         * the loop does not wait on flash under mu. */
        ks_ckpt_queue(s, p->dir, KS_LSO_FILE, false);
        ks_log(s, KS_LOG_INFO, "%s: log start moved to %lld by DeleteRecords", p->path,
               (long long)offset);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ks_part_sync(ks_part_t *p, int64_t offset, ks_sync_cb cb, void *arg)
{
    if (!p || !cb)
        return K_ERR_INVAL;
    ks_store_t *s = STORE(p);
    ks_waiter_t *w = calloc(1, sizeof *w); /* owned by the store until its callback ran */
    if (!w)
        return K_ERR_NOMEM;
    w->offset = offset;
    w->cb = cb;
    w->arg = arg;
    w->t_enq = w->t_pick = w->t_done = ks_mono_us();
    bool wake = false;
    pthread_mutex_lock(&s->mu);
    if (w->offset > p->log_end)
        w->offset = p->log_end; /* nothing beyond the log can become durable */
    if (p->failed) {
        ks_complete(s, w, K_ERR_IO);
    } else if (w->offset <= p->durable_end) {
        ks_complete(s, w, 0);
    } else {
        w->next = p->waiters;
        p->waiters = w;
        wake = ks_flush_enqueue(s, p);
        w = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock: a flusher woken under the lock would at once block on it
     * and take a second switch (and the loop's CPU) to get it. */
    if (wake)
        pthread_cond_signal(&s->cv);
    if (w && s->o.on_sync_ready)
        s->o.on_sync_ready(s->o.sync_ud);
    return 0;
}

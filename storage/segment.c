/*
 * Segments: <20-digit base offset>.log holds RecordBatch v2 bytes exactly as Kafka stores
 * them (baseOffset and partitionLeaderEpoch stamped at append, everything else as the
 * producer sent it), back to back, no file header or padding. The base offset in the name is
 * the first batch's baseOffset. A segment is closed (immutable) once the partition rolls to
 * a new one; only the last segment of a partition takes appends.
 *
 * All functions run under s->mu.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ks_int.h"

ks_seg_t *ks_seg_new(ks_part_t *p, int64_t base)
{
    ks_seg_t *seg = calloc(1, sizeof *seg); /* owned by p->segs once pushed */
    if (!seg)
        return NULL;
    seg->part = p;
    seg->base = base;
    seg->max_ts = -1;
    seg->max_ts_off = base;
    seg->tidx_last_ts = -1;
    for (int k = 0; k < 3; k++)
        ks_file_init(&seg->f[k], seg, k);
    return seg;
}

void ks_seg_free(ks_store_t *s, ks_seg_t *seg)
{
    if (!seg)
        return;
    for (int k = 0; k < 3; k++)
        ks_file_close(s, &seg->f[k]);
    kp_buf_deinit(&seg->ipend);
    kp_buf_deinit(&seg->tpend);
    free(seg);
}

int ks_seg_create_files(ks_store_t *s, ks_seg_t *seg)
{
    for (int k = 0; k < 3; k++) {
        int rc = ks_file_create(s, &seg->f[k]);
        if (rc) {
            for (int j = 0; j < k; j++) {
                char path[KS_PATH_MAX];
                ks_file_path(&seg->f[j], path, sizeof path);
                ks_file_release(s, &seg->f[j]);
                ks_file_close(s, &seg->f[j]);
                ks_io.unlink(path);
            }
            return rc;
        }
        ks_file_release(s, &seg->f[k]);
    }
    /* The new names must reach the directory before anything in them counts as durable:
     * the flusher fsyncs the partition directory before releasing waiters. */
    seg->dir_gen = ++seg->part->dir_gen;
    return 0;
}

/* Kafka's way: the files get a .deleted suffix now (a rename, no data to free, so it is quick
 * and a restart no longer sees the segment) and are unlinked by the flusher thread, followed
 * by a directory fsync. Unlinking on this path would stall the loop on large files. */
void ks_seg_retire(ks_store_t *s, ks_seg_t *seg)
{
    for (int k = 0; k < 3; k++) {
        char path[KS_PATH_MAX], doomed[KS_PATH_MAX + 16];
        ks_file_path(&seg->f[k], path, sizeof path);
        snprintf(doomed, sizeof doomed, "%s.deleted", path);
        ks_file_close(s, &seg->f[k]);
        if (ks_io.rename(path, doomed) == 0) {
            char *d = strdup(doomed);
            if (d)
                ks_trash_push(s, d, NULL);
            else
                ks_io.unlink(doomed);
        } else if (errno != ENOENT && ks_io.unlink(path) != 0 && errno != ENOENT) {
            s->st.io_errors++;
            ks_log(s, KS_LOG_ERROR, "%s: cannot delete: %s", path, strerror(errno));
        }
    }
    ks_trash_push(s, NULL, strdup(seg->part->path));
}

bool ks_seg_pinned(const ks_seg_t *seg)
{
    return seg->f[0].refs || seg->f[1].refs || seg->f[2].refs;
}

bool ks_seg_synced(const ks_seg_t *seg)
{
    for (int k = 0; k < 3; k++)
        if (seg->f[k].wgen != seg->f[k].sgen)
            return false;
    return seg->dir_gen <= seg->part->dir_synced_gen;
}

int64_t ks_seg_next_offset(const ks_seg_t *seg)
{
    ks_part_t *p = seg->part;
    for (int i = 0; i < p->nsegs - 1; i++)
        if (p->segs[i] == seg)
            return p->segs[i + 1]->base;
    return p->log_end;
}

int ks_seg_unlink(ks_store_t *s, ks_seg_t *seg)
{
    int rc = 0;
    for (int k = 0; k < 3; k++) {
        char path[KS_PATH_MAX];
        ks_file_path(&seg->f[k], path, sizeof path);
        ks_file_close(s, &seg->f[k]);
        if (ks_io.unlink(path) != 0 && errno != ENOENT) {
            s->st.io_errors++;
            ks_log(s, KS_LOG_ERROR, "%s: unlink failed: %s", path, strerror(errno));
            rc = K_ERR_IO;
        }
    }
    return rc;
}

int ks_seg_read_hdr(ks_store_t *s, ks_seg_t *seg, int64_t pos, kp_batch_hdr_t *h)
{
    if (pos >= seg->size)
        return K_ERR_NOENT;
    uint8_t buf[KP_BATCH_HEADER_SIZE];
    int64_t left = seg->size - pos;
    ks_file_t *f = &seg->f[KS_FILE_LOG];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    size_t n = left < KP_BATCH_HEADER_SIZE ? (size_t)left : KP_BATCH_HEADER_SIZE;
    rc = ks_io_pread_all(f->fd, buf, n, pos) ? K_ERR_IO : 0;
    ks_file_release(s, f);
    if (rc == 0)
        rc = kp_batch_hdr_parse(buf, n, h) ? K_ERR_CORRUPT : 0;
    if (rc == 0 && (h->batch_length < KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD ||
                    h->batch_length > left - KP_BATCH_LOG_OVERHEAD || h->last_offset_delta < 0))
        rc = K_ERR_CORRUPT;
    if (rc) {
        char path[KS_PATH_MAX];
        ks_file_path(f, path, sizeof path);
        ks_log(s, KS_LOG_ERROR, "%s:%lld: %s batch header", path, (long long)pos,
               rc == K_ERR_IO ? "cannot read" : "corrupt");
    }
    return rc;
}

int ks_seg_find(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos, kp_batch_hdr_t *h)
{
    int64_t entry;
    return ks_seg_find_entry(s, seg, offset, pos, h, &entry);
}

int ks_seg_find_entry(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos,
                      kp_batch_hdr_t *h, int64_t *entry)
{
    int64_t at;
    int rc = ks_idx_lookup_entry(s, seg, offset, &at, entry);
    if (rc)
        return rc;
    for (;;) {
        rc = ks_seg_read_hdr(s, seg, at, h);
        if (rc)
            return rc;
        if (h->base_offset + h->last_offset_delta >= offset) {
            *pos = at;
            return 0;
        }
        at += KP_BATCH_LOG_OVERHEAD + h->batch_length;
    }
}

/* The segment's max timestamp: the last time-index entry (written on roll and close), or a
 * header scan when the index has none. Loaded on first need and then kept. */
int ks_seg_load_ts(ks_store_t *s, ks_seg_t *seg)
{
    if (seg->ts_known)
        return 0;
    int64_t ts, rel;
    if (ks_tidx_last(s, seg, &ts, &rel) == 0 && seg->closed) {
        seg->max_ts = ts;
        seg->max_ts_off = seg->base + rel;
        seg->ts_known = true;
        return 0;
    }
    kp_batch_hdr_t h;
    seg->max_ts = -1;
    for (int64_t pos = 0; pos < seg->size; pos += KP_BATCH_LOG_OVERHEAD + h.batch_length) {
        int rc = ks_seg_read_hdr(s, seg, pos, &h);
        if (rc)
            return rc;
        if (h.max_timestamp > seg->max_ts) {
            seg->max_ts = h.max_timestamp;
            seg->max_ts_off = h.base_offset + h.last_offset_delta;
        }
    }
    seg->ts_known = true;
    return 0;
}

int ks_part_push_seg(ks_part_t *p, ks_seg_t *seg)
{
    if (p->nsegs == p->segcap) {
        int cap = p->segcap ? p->segcap * 2 : 2;
        ks_seg_t **n = realloc(p->segs, (size_t)cap * sizeof *n);
        if (!n)
            return K_ERR_NOMEM;
        p->segs = n;
        p->segcap = cap;
    }
    p->segs[p->nsegs++] = seg;
    return 0;
}

int ks_part_find_seg(const ks_part_t *p, int64_t offset)
{
    int lo = 0, hi = p->nsegs - 1, best = -1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base <= offset) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

/* Kafka appends the segment's max timestamp as a last time-index entry when the segment
 * stops being active, so the segment's age is one read away later. */
void ks_seg_close_active(ks_store_t *s, ks_seg_t *seg)
{
    if (ks_idx_flush_pending(s, seg) != 0) {
        /* Only coarser lookups: the index is sparse. A tail mark would disagree now, so
         * recovery would scan this segment whole, as it does without one. */
        kp_buf_deinit(&seg->ipend);
        kp_buf_deinit(&seg->tpend);
    }
    if (seg->ts_known && seg->max_ts > seg->tidx_last_ts && seg->size > 0) {
        kp_buf_t idx, tidx;
        kp_buf_init(&idx);
        kp_buf_init(&tidx);
        uint8_t e[KS_TIDX_ENTRY];
        ks_put_be64(e, (uint64_t)seg->max_ts);
        ks_put_be32(e + 8, (uint32_t)(seg->max_ts_off - seg->base));
        kp_put_raw(&tidx, e, KS_TIDX_ENTRY);
        if (ks_idx_write(s, seg, &idx, &tidx) == 0)
            seg->tidx_last_ts = seg->max_ts;
        kp_buf_deinit(&tidx);
        kp_buf_deinit(&idx);
    }
}

int ks_part_roll(ks_store_t *s, ks_part_t *p, int64_t now_ms)
{
    ks_seg_t *seg = ks_seg_new(p, p->log_end);
    if (!seg)
        return K_ERR_NOMEM;
    int rc = ks_seg_create_files(s, seg);
    if (rc == 0)
        rc = ks_part_push_seg(p, seg);
    if (rc) {
        ks_seg_unlink(s, seg);
        ks_seg_free(s, seg);
        return rc;
    }
    seg->created_ms = now_ms;
    seg->ts_known = true;
    seg->idx_checked = true;
    if (p->nsegs > 1) {
        ks_seg_t *old = p->segs[p->nsegs - 2];
        ks_seg_close_active(s, old);
        old->closed = true;
        ks_pstate_snapshot(s, p, seg->base); /* recovery then scans one segment at most */
        /* As Kafka does on roll: get the finished segment onto disk soon, so the recovery
         * point moves past it. */
        ks_flush_request(s, p);
        ks_log(s, KS_LOG_DEBUG, "%s: rolled to segment %lld", p->path, (long long)seg->base);
    }
    return 0;
}

int ks_part_drop_first(ks_store_t *s, ks_part_t *p)
{
    if (p->nsegs < 2)
        return K_ERR_INVAL;
    if (p->swapping)
        return K_ERR_AGAIN; /* a clean is renaming this partition's files; next tick */
    if (p->cleaning)
        p->clean_abort = true; /* the pass read segments that are going away */
    ks_seg_t *seg = p->segs[0];
    int64_t bytes = seg->size + seg->idx_size + seg->tidx_size;
    /* Renaming is fine while the flusher has an fd open on the file; the memory waits for
     * the flusher to let go (graveyard). */
    ks_seg_retire(s, seg);
    memmove(p->segs, p->segs + 1, (size_t)(p->nsegs - 1) * sizeof *p->segs);
    p->nsegs--;
    p->seg_gen++; /* the read cache may point at seg */
    p->bytes -= bytes;
    p->log_bytes -= seg->size;
    s->st.bytes_on_disk -= bytes;
    if (p->log_start < p->segs[0]->base)
        p->log_start = p->segs[0]->base;
    if (ks_seg_pinned(seg)) {
        seg->doomed = true;
        seg->grave_next = s->graveyard;
        s->graveyard = seg;
    } else {
        ks_seg_free(s, seg);
    }
    return 0;
}

void ks_graveyard_sweep(ks_store_t *s, bool all)
{
    for (ks_seg_t **pp = &s->graveyard; *pp;) {
        ks_seg_t *seg = *pp;
        if (all || !ks_seg_pinned(seg)) {
            *pp = seg->grave_next;
            for (int k = 0; k < 3; k++)
                seg->f[k].refs = 0;
            ks_seg_free(s, seg);
        } else {
            pp = &seg->grave_next;
        }
    }
}

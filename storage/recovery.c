/*
 * Loading a partition at open, and recovery.
 *
 * After a clean stop (the log dir had the clean-shutdown marker) nothing is scanned: segment
 * sizes come from stat, each index gets an O(1) sanity check (whole entries, last entry
 * inside the segment; the full check runs lazily on first use), and the log end is found by
 * a short header walk from the active segment's last offset-index entry. Startup time thus
 * depends on the number of segments, not on the bytes in them.
 *
 * After an unclean stop every segment from the one holding the partition's recovery point
 * (recovery-point-offset-checkpoint; the whole partition if it has no entry) is re-read:
 * each batch must frame correctly, pass kp_batch_validate (CRC-32C), carry exactly the next
 * expected baseOffset and a partitionLeaderEpoch of 0 (the two fields the CRC does not cover,
 * both written by Depot). At the first batch that fails, the segment is cut there (ftruncate +
 * fdatasync) and any later segments are deleted; the index entries of every scanned range
 * are rebuilt. Segments before the recovery point were fsynced, indexes included, before the
 * checkpoint moved past them, so they are not read at all.
 *
 * The segment holding the recovery point is read from its tail mark when the checkpoint
 * carries one (ks_mark_t): a position up to which its .log and a prefix of both indexes were
 * fdatasynced, with the running index state there (bytes since the last offset entry, max
 * timestamp and its offset, last time-index timestamp). Only the bytes after the mark are
 * validated; the indexes are cut to the marked prefix and the entries after it rebuilt with
 * the same rule, so the result is what a scan from byte 0 gives. Recovery work is thus
 * proportional to what was written since the last mark (one checkpoint interval), not to the
 * segment size. The mark is checked against the files first (segment and indexes at least as
 * long as it says, the last marked index entries match the state it carries, the batch at the
 * mark has the offset it names); when anything disagrees, or there is no mark, that segment
 * is scanned from byte 0 as before. The log says which path each segment took.
 *
 * A missing or invalid index is rebuilt the same way in either case.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/ks_int.h"

#define SCAN_CHUNK (1 << 20)

typedef struct {
    int fd;
    int64_t fsize;
    uint8_t *buf;
    size_t cap;
    int64_t wstart, wend; /* file range held in buf */
} scan_t;

/* Makes [pos, pos+n) available in the window; 0, K_ERR_NOMEM or K_ERR_IO. */
static int window(scan_t *sc, int64_t pos, int64_t n, const uint8_t **out)
{
    if (pos < sc->wstart || pos + n > sc->wend) {
        int64_t want = n > SCAN_CHUNK ? n : SCAN_CHUNK;
        if (want > sc->fsize - pos)
            want = sc->fsize - pos;
        if ((size_t)want > sc->cap) {
            uint8_t *nb = realloc(sc->buf, (size_t)want);
            if (!nb)
                return K_ERR_NOMEM;
            sc->buf = nb;
            sc->cap = (size_t)want;
        }
        /* The batch that straddled the old window's end is kept, not read again (with
         * 256 KiB batches re-reading it cost a quarter more reading). */
        int64_t keep = pos >= sc->wstart && pos < sc->wend ? sc->wend - pos : 0;
        if (keep)
            memmove(sc->buf, sc->buf + (pos - sc->wstart), (size_t)keep);
        if (ks_io_pread_all(sc->fd, sc->buf + keep, (size_t)(want - keep), pos + keep) != 0)
            return K_ERR_IO;
        sc->wstart = pos;
        sc->wend = pos + want;
    }
    *out = sc->buf + (pos - sc->wstart);
    return 0;
}

/* Walks and validates batches; fills the index buffers. Returns the valid length and sets
 * *why when it stopped early. */
static int64_t scan_batches(ks_seg_t *seg, scan_t *sc, int64_t pos, int64_t expect,
                            int32_t interval, kp_buf_t *idx, kp_buf_t *tidx, int64_t *next,
                            const char **why, int *rc)
{
    *why = NULL;
    *rc = 0;
    while (pos < sc->fsize) {
        const uint8_t *b;
        kp_batch_hdr_t h;
        if (sc->fsize - pos < KP_BATCH_LOG_OVERHEAD) {
            *why = "torn batch header";
            break;
        }
        if ((*rc = window(sc, pos, KP_BATCH_LOG_OVERHEAD, &b)) != 0)
            break;
        int64_t bsz = kp_batch_size(b, KP_BATCH_LOG_OVERHEAD);
        if (bsz < KP_BATCH_HEADER_SIZE) {
            *why = "bad batch length";
            break;
        }
        if (bsz > sc->fsize - pos) {
            *why = "torn batch";
            break;
        }
        if ((*rc = window(sc, pos, bsz, &b)) != 0)
            break;
        if (kp_batch_validate(b, (size_t)bsz, &h) != 0) {
            *why = "batch fails framing/CRC check";
            break;
        }
        /* Exactly the next offset; a compacted segment has gaps where records were cleaned
         * (Kafka checks no more than that offsets grow). */
        if (h.base_offset < expect ||
            (h.base_offset > expect && !ks_cleanup_compacts(seg->part->topic->cfg.cleanup_policy))) {
            *why = "unexpected base offset";
            break;
        }
        if (h.partition_leader_epoch != 0) {
            *why = "unexpected partition leader epoch";
            break;
        }
        ks_idx_note_batch(seg, &h, pos, bsz, interval, idx, tidx);
        expect = h.base_offset + h.last_offset_delta + 1;
        pos += bsz;
    }
    *next = expect;
    return pos;
}

/* The index file becomes its first keep bytes (kept from before) followed by b. */
static int rewrite_index(ks_store_t *s, ks_seg_t *seg, int kind, int64_t keep, const kp_buf_t *b,
                         int64_t *size)
{
    ks_file_t *f = &seg->f[kind];
    if (b->err)
        return K_ERR_NOMEM;
    int rc = ks_file_acquire(s, f);
    if (rc == K_ERR_NOENT)
        rc = ks_file_create(s, f);
    if (rc)
        return rc;
    if (ks_io.ftruncate(f->fd, keep) != 0 ||
        (b->len && ks_io_pwrite_all(f->fd, b->data, b->len, keep) != 0)) {
        rc = ks_errno_status(errno);
    }
    ks_file_release(s, f);
    int64_t now = keep + (int64_t)b->len;
    int64_t delta = now - (*size > 0 ? *size : 0);
    seg->part->bytes += delta;
    s->st.bytes_on_disk += delta;
    *size = rc ? 0 : now;
    f->wgen++;
    return rc;
}

void ks_mark_take(const ks_seg_t *seg, ks_mark_t *m)
{
    *m = (ks_mark_t){.base = seg->base, .pos = seg->size, .off = ks_seg_next_offset(seg),
                     .idx = seg->idx_size > 0 ? seg->idx_size : 0,
                     .tidx = seg->tidx_size > 0 ? seg->tidx_size : 0,
                     .since_index = seg->since_index, .max_ts = seg->max_ts,
                     .max_ts_off = seg->max_ts_off, .tidx_last_ts = seg->tidx_last_ts};
}

bool ks_part_has_seg(const ks_part_t *p, const ks_seg_t *seg)
{
    for (int i = p->nsegs - 1; i >= 0; i--) /* the one looked for is nearly always last */
        if (p->segs[i] == seg)
            return true;
    return false;
}

static int read_at(ks_store_t *s, ks_seg_t *seg, int kind, int64_t off, uint8_t *b, size_t n)
{
    ks_file_t *f = &seg->f[kind];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    rc = ks_io_pread_all(f->fd, b, n, off) ? K_ERR_IO : 0;
    ks_file_release(s, f);
    return rc;
}

/* The batches between the last marked offset-index entry (at from; rel its relative offset,
 * -1 if none) and the mark: whole, CRC-valid, contiguous, ending exactly at m->pos with the
 * offset m->off. At most index.interval.bytes plus one batch, so a constant amount of reading
 * checks that the mark describes these bytes (and catches damage just below it). */
static const char *walk_to_mark(ks_seg_t *seg, scan_t *sc, const ks_mark_t *m, int64_t from,
                                int64_t rel)
{
    int64_t pos = from, expect = rel < 0 ? seg->base : -1;
    bool gaps = ks_cleanup_compacts(seg->part->topic->cfg.cleanup_policy);
    while (pos < m->pos) {
        const uint8_t *b;
        kp_batch_hdr_t h;
        if (m->pos - pos < KP_BATCH_LOG_OVERHEAD || window(sc, pos, KP_BATCH_LOG_OVERHEAD, &b))
            return "batches below the mark unreadable";
        int64_t bsz = kp_batch_size(b, KP_BATCH_LOG_OVERHEAD);
        if (bsz < KP_BATCH_HEADER_SIZE || bsz > m->pos - pos || window(sc, pos, bsz, &b) ||
            kp_batch_validate(b, (size_t)bsz, &h) != 0 || h.partition_leader_epoch != 0)
            return "a batch below the mark fails its check";
        int64_t last = h.base_offset + h.last_offset_delta;
        if (pos == from && rel >= 0 && last != seg->base + rel)
            return "the last marked index entry names another batch";
        if (expect >= 0 && (h.base_offset < expect || (h.base_offset > expect && !gaps)))
            return "offsets below the mark are not contiguous";
        expect = last + 1;
        pos += bsz;
    }
    if (pos != m->pos || (expect >= 0 && expect != m->off))
        return "batches below the mark end elsewhere";
    return NULL;
}

/* NULL when the tail mark m agrees with seg's files (sc: the .log, its size), else why not.
 * Reads the last marked entry of each index, the batches from the last marked offset entry
 * to the mark, and the first header after it. */
static const char *mark_disagrees(ks_store_t *s, ks_seg_t *seg, const ks_mark_t *m, scan_t *sc)
{
    if (m->pos < 0 || m->off < seg->base || m->off - seg->base > (int64_t)UINT32_MAX ||
        m->idx < 0 || m->tidx < 0 || m->idx % KS_IDX_ENTRY || m->tidx % KS_TIDX_ENTRY ||
        m->since_index < 0 || m->since_index > m->pos || (m->pos == 0) != (m->off == seg->base) ||
        m->max_ts_off < seg->base || (m->pos > 0 && m->max_ts_off >= m->off))
        return "fields out of range";
    if (sc->fsize < m->pos)
        return "segment shorter than the mark";
    if (seg->idx_size < m->idx || seg->tidx_size < m->tidx)
        return "index shorter than the mark";
    uint8_t e[KS_TIDX_ENTRY];
    int64_t last_pos = 0, rel = -1;
    if (m->idx > 0) {
        if (read_at(s, seg, KS_FILE_INDEX, m->idx - KS_IDX_ENTRY, e, KS_IDX_ENTRY))
            return "index unreadable";
        rel = ks_get_be32(e);
        last_pos = ks_get_be32(e + 4);
        if (rel >= m->off - seg->base || last_pos >= m->pos)
            return "last marked index entry past the mark";
    }
    if (last_pos + m->since_index != m->pos)
        return "bytes since the last index entry disagree";
    if (m->tidx > 0) {
        if (read_at(s, seg, KS_FILE_TIMEINDEX, m->tidx - KS_TIDX_ENTRY, e, KS_TIDX_ENTRY))
            return "time index unreadable";
        if ((int64_t)ks_get_be64(e) != m->tidx_last_ts || m->tidx_last_ts > m->max_ts)
            return "last marked time-index entry disagrees";
    } else if (m->tidx_last_ts != -1) {
        return "time-index state disagrees";
    }
    const char *why = walk_to_mark(seg, sc, m, last_pos, rel);
    if (why)
        return why;
    const uint8_t *b;
    /* A batch that is there but not the one named: the mark is not about these bytes. */
    if (sc->fsize - m->pos >= 8 && window(sc, m->pos, 8, &b) == 0 &&
        (int64_t)ks_get_be64(b) != m->off)
        return "batch at the mark has another offset";
    return NULL;
}

static int sync_file(ks_store_t *s, ks_file_t *f)
{
    if (f->wgen == f->sgen)
        return 0;
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    uint32_t gen = f->wgen;
    if (ks_io.fdatasync(f->fd) != 0)
        rc = ks_errno_status(errno);
    else
        f->sgen = gen;
    s->st.fsyncs++;
    ks_file_release(s, f);
    return rc;
}

/* Recovers seg from byte 0, or from its tail mark m when m is given and agrees with the
 * files. See ks_seg_recover. */
static int seg_recover(ks_store_t *s, ks_seg_t *seg, bool truncate, const ks_mark_t *m,
                       int64_t *next, bool *cut)
{
    char path[KS_PATH_MAX];
    ks_file_t *lf = &seg->f[KS_FILE_LOG];
    ks_file_path(lf, path, sizeof path);
    *cut = false;
    int rc = ks_file_acquire(s, lf);
    if (rc)
        return rc;
    scan_t sc = {.fd = lf->fd, .fsize = truncate ? 0 : seg->size};
    struct stat st;
    if (truncate) {
        if (ks_io.fstat(lf->fd, &st) != 0) {
            ks_file_release(s, lf);
            return K_ERR_IO;
        }
        sc.fsize = st.st_size;
    }
    if (m) {
        const char *no = mark_disagrees(s, seg, m, &sc);
        if (no) {
            ks_log(s, KS_LOG_WARN, "%s: checkpointed tail mark at %" PRId64 " not usable (%s); "
                   "scanning the whole segment", path, m->pos, no);
            m = NULL;
        }
    }
    kp_buf_t idx, tidx;
    kp_buf_init(&idx);
    kp_buf_init(&tidx);
    ks_mark_t from = {.base = seg->base, .off = seg->base, .max_ts = -1, .max_ts_off = seg->base,
                      .tidx_last_ts = -1};
    if (m)
        from = *m;
    seg->since_index = from.since_index;
    seg->max_ts = from.max_ts;
    seg->max_ts_off = from.max_ts_off;
    seg->tidx_last_ts = from.tidx_last_ts;
    seg->ts_known = true;
    if (truncate)
        ks_log(s, KS_LOG_INFO, "%s: recovering %" PRId64 " bytes from %s %" PRId64, path,
               sc.fsize - from.pos, m ? "the checkpointed tail mark at" : "byte", from.pos);
    const char *why;
    int32_t interval = seg->part->topic->cfg.index_interval_bytes;
    int64_t valid = scan_batches(seg, &sc, from.pos, from.off, interval, &idx, &tidx, next,
                                 &why, &rc);
    free(sc.buf);
    if (rc == 0 && why && truncate) {
        ks_log(s, KS_LOG_WARN, "%s:%" PRId64 ": %s; truncating %" PRId64 " bytes", path, valid,
               why, sc.fsize - valid);
        if (ks_io.ftruncate(lf->fd, valid) != 0 || ks_io.fdatasync(lf->fd) != 0) {
            rc = ks_errno_status(errno);
            ks_log(s, KS_LOG_ERROR, "%s: cannot truncate: %s", path, strerror(errno));
        }
        *cut = true;
    } else if (rc == 0 && why) {
        ks_log(s, KS_LOG_ERROR, "%s:%" PRId64 ": %s; index covers the valid prefix only", path,
               valid, why);
    }
    ks_file_release(s, lf);
    if (truncate) {
        int64_t delta = valid - seg->size;
        seg->part->bytes += delta;
        seg->part->log_bytes += delta;
        s->st.bytes_on_disk += delta;
        seg->size = valid;
    }
    if (rc == 0)
        rc = rewrite_index(s, seg, KS_FILE_INDEX, from.idx, &idx, &seg->idx_size);
    if (rc == 0)
        rc = rewrite_index(s, seg, KS_FILE_TIMEINDEX, from.tidx, &tidx, &seg->tidx_size);
    kp_buf_deinit(&idx);
    kp_buf_deinit(&tidx);
    if (rc == 0 && seg->closed)
        ks_seg_close_active(s, seg);
    if (rc == 0 && truncate) {
        /* What recovery read may only be in the page cache (the process died, the kernel
         * did not): make it durable before calling it durable. */
        for (int k = 0; k < 3 && rc == 0; k++)
            rc = sync_file(s, &seg->f[k]);
    }
    seg->idx_checked = rc == 0;
    if (rc)
        ks_log(s, KS_LOG_ERROR, "%s: recovery failed: %s", path, k_strerror(rc));
    return rc;
}

int ks_seg_recover(ks_store_t *s, ks_seg_t *seg, bool truncate, int64_t *next, bool *cut)
{
    return seg_recover(s, seg, truncate, NULL, next, cut);
}

static int64_t file_size(const char *dir, int64_t base, const char *sfx)
{
    char path[KS_PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%020" PRId64 "%s", dir, base, sfx);
    if (ks_io.stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Segment base offsets found in the directory, sorted; stray temporary files removed. */
static int list_segments(ks_store_t *s, ks_part_t *p, int64_t **bases, int *n)
{
    DIR *d = opendir(p->path);
    if (!d) {
        ks_log(s, KS_LOG_ERROR, "%s: cannot list: %s", p->path, strerror(errno));
        return K_ERR_IO;
    }
    int cap = 0;
    *n = 0;
    *bases = NULL;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        bool doomed = len > 8 && strcmp(nm + len - 8, ".deleted") == 0;
        if (doomed || (len > 4 && strcmp(nm + len - 4, ".tmp") == 0)) {
            char path[KS_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", p->path, nm);
            ks_io.unlink(path);
            continue;
        }
        if (len != 24 || strcmp(nm + 20, ".log") != 0 || strspn(nm, "0123456789") != 20)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            int64_t *nb = realloc(*bases, (size_t)cap * sizeof *nb);
            if (!nb) {
                rc = K_ERR_NOMEM;
                break;
            }
            *bases = nb;
        }
        (*bases)[(*n)++] = strtoll(nm, NULL, 10);
    }
    closedir(d);
    if (*n > 1)
        qsort(*bases, (size_t)*n, sizeof **bases, cmp_i64);
    return rc;
}

/* Drops segs[from..] from memory and disk (they follow a cut). */
static void drop_tail(ks_store_t *s, ks_part_t *p, int from)
{
    for (int i = p->nsegs - 1; i >= from; i--) {
        ks_seg_t *seg = p->segs[i];
        ks_log(s, KS_LOG_WARN, "%s: deleting segment %" PRId64 " after a truncated one", p->path,
               seg->base);
        int64_t bytes = seg->size + seg->idx_size + seg->tidx_size;
        p->bytes -= bytes;
        p->log_bytes -= seg->size;
        s->st.bytes_on_disk -= bytes;
        ks_seg_unlink(s, seg);
        ks_seg_free(s, seg);
    }
    p->nsegs = from;
    p->seg_gen++;
    ks_io.fsync_dir(p->path);
}

/* Clean start: the active segment's end from its last index entry plus a short walk. */
static int find_log_end(ks_store_t *s, ks_part_t *p, ks_seg_t *a, int64_t *end)
{
    int64_t rel, pos = 0, ts;
    if (ks_idx_last(s, a, &rel, &pos) != 0 || pos >= a->size)
        pos = 0;
    if (ks_tidx_last(s, a, &ts, &rel) == 0) {
        a->max_ts = a->tidx_last_ts = ts;
        a->max_ts_off = a->base + rel;
    }
    a->ts_known = true;
    a->since_index = a->size - pos;
    *end = a->base;
    kp_batch_hdr_t h;
    while (pos < a->size) {
        int rc = ks_seg_read_hdr(s, a, pos, &h);
        if (rc == K_ERR_CORRUPT) {
            /* The clean marker promised whole batches; believe the bytes instead. */
            bool cut;
            return ks_seg_recover(s, a, true, end, &cut);
        }
        if (rc)
            return rc;
        *end = h.base_offset + h.last_offset_delta + 1;
        if (h.max_timestamp > a->max_ts) {
            a->max_ts = h.max_timestamp;
            a->max_ts_off = *end - 1;
        }
        pos += KP_BATCH_LOG_OVERHEAD + h.batch_length;
    }
    (void)p;
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_segments(ks_store_t *s, ks_part_t *p, const int64_t *bases, int n)
{
    for (int i = 0; i < n; i++) {
        ks_seg_t *seg = ks_seg_new(p, bases[i]);
        if (!seg || ks_part_push_seg(p, seg)) {
            free(seg);
            return K_ERR_NOMEM;
        }
        seg->size = file_size(p->path, bases[i], ".log");
        seg->idx_size = file_size(p->path, bases[i], ".index");
        seg->tidx_size = file_size(p->path, bases[i], ".timeindex");
        seg->closed = i < n - 1;
        if (seg->size < 0)
            seg->size = 0;
        int64_t bytes = seg->size + (seg->idx_size > 0 ? seg->idx_size : 0) +
                        (seg->tidx_size > 0 ? seg->tidx_size : 0);
        p->bytes += bytes;
        p->log_bytes += seg->size;
        s->st.bytes_on_disk += bytes;
    }
    return 0;
}

int ks_part_load(ks_store_t *s, ks_part_t *p, bool clean, int64_t rp, const ks_mark_t *m,
                 int64_t lso)
{
    int64_t *bases;
    int n;
    int rc = ks_cleaner_recover(s, p); /* a half-done clean: finish or discard it first */
    if (rc)
        return rc;
    rc = list_segments(s, p, &bases, &n);
    if (rc == 0)
        rc = add_segments(s, p, bases, n);
    free(bases);
    if (rc)
        return rc;
    if (p->nsegs == 0) {
        p->log_start = p->log_end = p->durable_end = lso > 0 ? lso : 0;
        return 0;
    }
    int scan_from = p->nsegs;
    if (!clean) {
        int i = rp >= 0 ? ks_part_find_seg(p, rp) : 0;
        scan_from = i < 0 ? 0 : i;
    }
    int64_t end = 0;
    for (int i = 0; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        bool cut = false;
        if (i >= scan_from || seg->idx_size < 0 || seg->tidx_size < 0 ||
            ks_idx_sane_quick(s, seg) != 0) {
            if (i < scan_from)
                ks_log(s, KS_LOG_WARN, "%s: segment %" PRId64 " index missing or invalid, "
                       "rebuilding", p->path, seg->base);
            /* Only the segment holding the recovery point can have a tail mark. */
            bool marked = m && m->base >= 0 && i == scan_from && !clean && m->base == rp &&
                          m->base == seg->base;
            if (i == scan_from && !clean && !marked)
                ks_log(s, KS_LOG_INFO, "%s: no tail mark for segment %" PRId64 " in the "
                       "checkpoint; scanning it whole", p->path, seg->base);
            rc = seg_recover(s, seg, true, marked ? m : NULL, &end, &cut);
            if (rc)
                return rc;
            /* (A compacted segment may end before the next one starts: the cleaner removed
             * its last records. The cleaner moves the recovery point past what it cleans.) */
            if (!cut && i >= scan_from && i < p->nsegs - 1 && p->segs[i + 1]->base != end &&
                !(p->segs[i + 1]->base > end &&
                  ks_cleanup_compacts(p->topic->cfg.cleanup_policy))) {
                /* A power cut kept a later segment but lost this one's tail at a batch
                 * boundary: nothing after the hole was ever fsynced (a waiter is released
                 * only once every earlier segment is), so the hole ends the log. */
                ks_log(s, KS_LOG_WARN, "%s: segment %" PRId64 " ends at offset %" PRId64
                       " but the next starts at %" PRId64, p->path, seg->base, end,
                       p->segs[i + 1]->base);
                cut = true;
            }
            if (cut && i < p->nsegs - 1 && i >= scan_from) {
                /* Unflushed region: nothing after a bad batch can be trusted. */
                drop_tail(s, p, i + 1);
                seg->closed = false;
            } else if (cut && i < p->nsegs - 1) {
                /* A fsynced segment went bad on the medium: keep the later segments (their
                 * data was fsynced too); reads skip the gap to the next segment. */
                ks_log(s, KS_LOG_ERROR, "%s: offsets %" PRId64 "..%" PRId64 " lost to "
                       "corruption in a closed segment", p->path, end,
                       p->segs[i + 1]->base - 1);
            }
        } else if (i == p->nsegs - 1) {
            p->log_end = seg->base; /* for the index checks inside */
            rc = find_log_end(s, p, seg, &end);
            if (rc)
                return rc;
        }
    }
    ks_seg_t *a = p->segs[p->nsegs - 1];
    p->log_end = end > a->base ? end : a->base;
    p->log_start = p->segs[0]->base;
    if (lso > p->log_start)
        p->log_start = lso < p->log_end ? lso : p->log_end;
    p->durable_end = p->log_end;
    kp_batch_hdr_t h;
    if (a->ts_known && ks_seg_synced(a)) { /* recovered (and synced) or cleanly closed */
        p->mark_seg = a;
        ks_mark_take(a, &p->mark);
    }
    a->created_ms = wall_ms();
    if (a->size > 0 && ks_seg_read_hdr(s, a, 0, &h) == 0 && h.max_timestamp > 0 &&
        h.max_timestamp < a->created_ms)
        a->created_ms = h.max_timestamp;
    return 0;
}

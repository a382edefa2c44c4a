/*
 * Sparse offset index and time index, one pair per segment, as Kafka lays them out.
 *
 * <base>.index, 8-byte entries, big-endian:
 *    0  relative offset  u32   lastOffset of the indexed batch minus the segment's base
 *    4  position         u32   byte position of that batch in <base>.log
 * <base>.timeindex, 12-byte entries, big-endian:
 *    0  timestamp        i64   largest batch maxTimestamp seen so far in the segment
 *    8  relative offset  u32   lastOffset of the batch that first reached it, minus base
 *
 * Rule (Kafka's): before a batch is appended at position pos, if more than
 * index.interval.bytes were appended since the last entry, the batch gets an offset entry,
 * and a time entry if the running max timestamp grew past the last time entry. When a
 * segment is rolled or closed, a final time entry records the segment's max timestamp.
 * Entries therefore increase strictly in both fields, which the lookups and the validation
 * below rely on. Indexes are derived data: a missing or invalid one is rebuilt by scanning
 * the segment (ks_seg_recover).
 *
 * The active segment's newest entries wait in memory (seg->ipend/tpend) and are written
 * KS_IDX_PEND at a time, when the segment is closed, and before a tail mark is taken, so an
 * append of a large batch costs one pwrite (the log), not two. Lookups see written entries
 * only, which a sparse index allows: they start a little further back and walk forward.
 *
 * Lookups binary-search the file with pread (one 8/12-byte read per probe), so nothing of an
 * index stays in memory; a sequential consumer skips the search altogether through the
 * partition's read cache (read.c). All functions run under s->mu.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ks_int.h"

void ks_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void ks_put_be64(uint8_t *p, uint64_t v)
{
    ks_put_be32(p, (uint32_t)(v >> 32));
    ks_put_be32(p + 4, (uint32_t)v);
}

uint32_t ks_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t ks_get_be64(const uint8_t *p)
{
    return ((uint64_t)ks_get_be32(p) << 32) | ks_get_be32(p + 4);
}

void ks_idx_note_batch(ks_seg_t *seg, const kp_batch_hdr_t *h, int64_t pos, int64_t size,
                       int32_t interval, kp_buf_t *idx, kp_buf_t *tidx)
{
    int64_t last = h->base_offset + h->last_offset_delta;
    if (!seg->ts_known || h->max_timestamp > seg->max_ts) {
        seg->max_ts = h->max_timestamp;
        seg->max_ts_off = last;
        seg->ts_known = true;
    }
    if (seg->since_index > interval) {
        uint8_t e[KS_TIDX_ENTRY];
        ks_put_be32(e, (uint32_t)(last - seg->base));
        ks_put_be32(e + 4, (uint32_t)pos);
        kp_put_raw(idx, e, KS_IDX_ENTRY);
        if (seg->max_ts > seg->tidx_last_ts) {
            ks_put_be64(e, (uint64_t)seg->max_ts);
            ks_put_be32(e + 8, (uint32_t)(seg->max_ts_off - seg->base));
            kp_put_raw(tidx, e, KS_TIDX_ENTRY);
            seg->tidx_last_ts = seg->max_ts;
        }
        seg->since_index = 0;
    }
    seg->since_index += size;
}

static int write_one(ks_store_t *s, ks_seg_t *seg, int kind, const kp_buf_t *b, int64_t *size)
{
    if (b->len == 0)
        return 0;
    ks_file_t *f = &seg->f[kind];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    if (ks_io_pwrite_all(f->fd, b->data, b->len, *size) != 0) {
        int e = errno;
        char path[KS_PATH_MAX];
        ks_file_path(f, path, sizeof path);
        ks_io.ftruncate(f->fd, *size);
        ks_file_release(s, f);
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: write at %lld failed: %s", path, (long long)*size,
               strerror(e));
        return ks_errno_status(e);
    }
    f->wgen++;
    ks_file_release(s, f);
    *size += (int64_t)b->len;
    seg->part->bytes += (int64_t)b->len;
    s->st.bytes_on_disk += (int64_t)b->len;
    return 0;
}

int ks_idx_write(ks_store_t *s, ks_seg_t *seg, const kp_buf_t *idx, const kp_buf_t *tidx)
{
    if (idx->err || tidx->err)
        return K_ERR_NOMEM;
    int64_t old = seg->idx_size;
    int rc = write_one(s, seg, KS_FILE_INDEX, idx, &seg->idx_size);
    if (rc == 0)
        rc = write_one(s, seg, KS_FILE_TIMEINDEX, tidx, &seg->tidx_size);
    if (rc && seg->idx_size != old) {
        /* Keep the pair consistent: take the offset entries back too. */
        ks_file_t *f = &seg->f[KS_FILE_INDEX];
        if (ks_file_acquire(s, f) == 0) {
            ks_io.ftruncate(f->fd, old);
            ks_file_release(s, f);
        }
        seg->part->bytes -= seg->idx_size - old;
        s->st.bytes_on_disk -= seg->idx_size - old;
        seg->idx_size = old;
    }
    return rc;
}

int ks_idx_flush_pending(ks_store_t *s, ks_seg_t *seg)
{
    if (seg->ipend.len == 0 && seg->tpend.len == 0)
        return 0;
    int rc = ks_idx_write(s, seg, &seg->ipend, &seg->tpend);
    if (rc == 0) { /* freed, not kept: thousands of idle partitions hold nothing */
        kp_buf_deinit(&seg->ipend);
        kp_buf_deinit(&seg->tpend);
    }
    return rc;
}

static int read_entry(ks_store_t *s, ks_seg_t *seg, int kind, int64_t i, uint8_t *e)
{
    ks_file_t *f = &seg->f[kind];
    size_t esz = kind == KS_FILE_INDEX ? KS_IDX_ENTRY : KS_TIDX_ENTRY;
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    rc = ks_io_pread_all(f->fd, e, esz, i * (int64_t)esz) ? K_ERR_IO : 0;
    ks_file_release(s, f);
    return rc;
}

int ks_idx_last(ks_store_t *s, ks_seg_t *seg, int64_t *rel, int64_t *pos)
{
    uint8_t e[KS_IDX_ENTRY];
    int64_t n = seg->idx_size / KS_IDX_ENTRY;
    if (n == 0)
        return K_ERR_NOENT;
    int rc = read_entry(s, seg, KS_FILE_INDEX, n - 1, e);
    if (rc)
        return rc;
    *rel = ks_get_be32(e);
    *pos = ks_get_be32(e + 4);
    return 0;
}

int ks_tidx_last(ks_store_t *s, ks_seg_t *seg, int64_t *ts, int64_t *rel)
{
    uint8_t e[KS_TIDX_ENTRY];
    int64_t n = seg->tidx_size / KS_TIDX_ENTRY;
    if (n == 0)
        return K_ERR_NOENT;
    int rc = read_entry(s, seg, KS_FILE_TIMEINDEX, n - 1, e);
    if (rc)
        return rc;
    *ts = (int64_t)ks_get_be64(e);
    *rel = ks_get_be32(e + 8);
    return 0;
}

/* Largest entry whose key <= target, by binary search; -1 if none. */
static int search(ks_store_t *s, ks_seg_t *seg, int kind, int64_t target, int64_t *found,
                  uint8_t *entry)
{
    size_t esz = kind == KS_FILE_INDEX ? KS_IDX_ENTRY : KS_TIDX_ENTRY;
    int64_t n = (kind == KS_FILE_INDEX ? seg->idx_size : seg->tidx_size) / (int64_t)esz;
    int64_t lo = 0, hi = n - 1, best = -1;
    uint8_t e[KS_TIDX_ENTRY];
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int rc = read_entry(s, seg, kind, mid, e);
        if (rc)
            return rc;
        int64_t key = kind == KS_FILE_INDEX ? (int64_t)ks_get_be32(e) : (int64_t)ks_get_be64(e);
        if (key <= target) {
            best = mid;
            memcpy(entry, e, esz);
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    *found = best;
    return 0;
}

int ks_idx_lookup(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos)
{
    int64_t entry;
    return ks_idx_lookup_entry(s, seg, offset, pos, &entry);
}

int ks_idx_read_entries(ks_store_t *s, ks_seg_t *seg, int64_t from, int64_t n, uint8_t *e,
                        int64_t *got)
{
    *got = 0;
    int64_t have = seg->idx_size / KS_IDX_ENTRY - from;
    if (from < 0 || have <= 0)
        return 0;
    if (n > have)
        n = have;
    ks_file_t *f = &seg->f[KS_FILE_INDEX];
    int rc = ks_file_acquire(s, f);
    if (rc)
        return rc;
    rc = ks_io_pread_all(f->fd, e, (size_t)n * KS_IDX_ENTRY, from * KS_IDX_ENTRY) ? K_ERR_IO : 0;
    ks_file_release(s, f);
    if (rc == 0)
        *got = n;
    return rc;
}

int ks_idx_lookup_entry(ks_store_t *s, ks_seg_t *seg, int64_t offset, int64_t *pos,
                        int64_t *entry)
{
    *pos = 0;
    *entry = -1;
    if (!seg->idx_checked)
        ks_idx_check(s, seg);
    if (offset <= seg->base)
        return 0;
    uint8_t e[KS_TIDX_ENTRY];
    int64_t i;
    int rc = search(s, seg, KS_FILE_INDEX, offset - seg->base, &i, e);
    if (rc)
        return rc;
    if (i >= 0 && ks_get_be32(e + 4) < (uint64_t)seg->size) {
        *pos = ks_get_be32(e + 4);
        *entry = i;
    }
    return 0;
}

int ks_tidx_lookup(ks_store_t *s, ks_seg_t *seg, int64_t ts, int64_t *offset)
{
    *offset = seg->base;
    if (!seg->idx_checked)
        ks_idx_check(s, seg);
    uint8_t e[KS_TIDX_ENTRY];
    int64_t i;
    int rc = search(s, seg, KS_FILE_TIMEINDEX, ts, &i, e);
    if (rc)
        return rc;
    if (i >= 0)
        *offset = seg->base + ks_get_be32(e + 8);
    return 0;
}

/* O(1) checks done at open: whole entries, and the last entry inside the segment. */
int ks_idx_sane_quick(ks_store_t *s, ks_seg_t *seg)
{
    if (seg->idx_size % KS_IDX_ENTRY || seg->tidx_size % KS_TIDX_ENTRY)
        return K_ERR_CORRUPT;
    int64_t rel, pos, ts;
    if (seg->idx_size > 0) {
        if (ks_idx_last(s, seg, &rel, &pos) || pos >= seg->size)
            return K_ERR_CORRUPT;
    }
    if (seg->tidx_size > 0) {
        if (ks_tidx_last(s, seg, &ts, &rel))
            return K_ERR_CORRUPT;
        if (seg->idx_size > 0 && rel > (int64_t)UINT32_MAX)
            return K_ERR_CORRUPT;
    }
    return 0;
}

static int read_whole(ks_store_t *s, ks_seg_t *seg, int kind, int64_t size, uint8_t **out)
{
    *out = NULL;
    if (size == 0)
        return 0;
    uint8_t *buf = malloc((size_t)size);
    if (!buf)
        return K_ERR_NOMEM;
    ks_file_t *f = &seg->f[kind];
    int rc = ks_file_acquire(s, f);
    if (rc == 0) {
        rc = ks_io_pread_all(f->fd, buf, (size_t)size, 0) ? K_ERR_IO : 0;
        ks_file_release(s, f);
    }
    if (rc)
        free(buf);
    else
        *out = buf;
    return rc;
}

/* Every entry increasing and inside the segment: the check Kafka does on first use. */
static bool entries_valid(ks_store_t *s, ks_seg_t *seg)
{
    if (seg->idx_size % KS_IDX_ENTRY || seg->tidx_size % KS_TIDX_ENTRY)
        return false;
    uint8_t *b;
    int64_t span = ks_seg_next_offset(seg) - seg->base;
    if (read_whole(s, seg, KS_FILE_INDEX, seg->idx_size, &b))
        return false;
    bool ok = true;
    int64_t prev_rel = -1, prev_pos = -1;
    for (int64_t i = 0; ok && i < seg->idx_size / KS_IDX_ENTRY; i++) {
        int64_t rel = ks_get_be32(b + i * KS_IDX_ENTRY);
        int64_t pos = ks_get_be32(b + i * KS_IDX_ENTRY + 4);
        ok = rel > prev_rel && pos > prev_pos && rel < span && pos < seg->size;
        prev_rel = rel;
        prev_pos = pos;
    }
    free(b);
    if (!ok || read_whole(s, seg, KS_FILE_TIMEINDEX, seg->tidx_size, &b))
        return false;
    int64_t prev_ts = INT64_MIN;
    prev_rel = -1;
    for (int64_t i = 0; ok && i < seg->tidx_size / KS_TIDX_ENTRY; i++) {
        int64_t ts = (int64_t)ks_get_be64(b + i * KS_TIDX_ENTRY);
        int64_t rel = ks_get_be32(b + i * KS_TIDX_ENTRY + 8);
        ok = ts > prev_ts && rel >= prev_rel && rel < span;
        prev_ts = ts;
        prev_rel = rel;
    }
    free(b);
    return ok;
}

int ks_idx_check(ks_store_t *s, ks_seg_t *seg)
{
    seg->idx_checked = true;
    if (entries_valid(s, seg))
        return 0;
    char path[KS_PATH_MAX];
    ks_file_path(&seg->f[KS_FILE_INDEX], path, sizeof path);
    ks_log(s, KS_LOG_WARN, "%s: index invalid, rebuilding from the segment", path);
    int64_t next;
    bool cut;
    return ks_seg_recover(s, seg, false, &next, &cut);
}

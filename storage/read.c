/*
 * Fetch reads without copying: ks_part_read_slice finds the whole batches a Fetch returns and
 * hands back a file range (a dup of the segment's descriptor, a position and a length) for
 * the broker to send with sendfile, instead of copying the bytes into memory.
 *
 * Finding the range costs no index search for a sequential consumer: each partition keeps
 * where its last slice ended (p->rd_*: the offset a consumer asks next, the byte position of
 * the batch holding it, and the offset-index entry at or below it). The next Fetch at that
 * offset starts there. A miss (another consumer, a seek, a segment gone) searches as before.
 *
 * The end of a slice that does not reach the segment's end is found from the offset index,
 * not by reading every batch header: one pread of up to WINDOW entries from the entry at or
 * below the start gives batch starts; the last one within max_bytes is the end (one header
 * read there gives the next offset). Only when no index entry falls inside max_bytes are
 * headers walked (at most WALK_MAX), since entries are at most index.interval.bytes plus one
 * batch apart.
 *
 * The descriptor is a dup, so the slice stays readable whatever happens to the segment
 * afterwards (the fd cache closes it, retention or DeleteRecords unlink it, compaction renames
 * a replacement over it, the topic is deleted): an open descriptor keeps the inode and its
 * bytes until the caller closes it, and segments are append-only, so the range never changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "storage/ks_int.h"

#define WINDOW 512 /* index entries per window read: 4 KiB, ~2 MiB of log at the default */
#define WALK_MAX 64

typedef struct {
    ks_seg_t *seg;
    int64_t pos, entry;
    bool have_hdr;
    kp_batch_hdr_t h; /* the first batch's header when have_hdr */
} locate_t;

static bool cache_hit(const ks_part_t *p, int i, int64_t offset)
{
    return p->rd_seg && p->rd_off == offset && p->rd_gen == p->seg_gen && i >= 0 &&
           i < p->nsegs && p->segs[i] == p->rd_seg && p->rd_pos < p->rd_seg->size;
}

/* The batch holding offset: from the cache, or by index search. K_ERR_NOENT: none. */
static int locate(ks_store_t *s, ks_part_t *p, int64_t offset, locate_t *l)
{
    int i = ks_part_find_seg(p, offset);
    if (cache_hit(p, i, offset)) {
        s->st.read_cache_hits++;
        l->seg = p->rd_seg;
        l->pos = p->rd_pos;
        l->entry = p->rd_entry;
        l->have_hdr = false;
        return 0;
    }
    s->st.read_cache_misses++;
    for (i = i < 0 ? 0 : i; i < p->nsegs; i++) {
        int rc = ks_seg_find_entry(s, p->segs[i], offset, &l->pos, &l->h, &l->entry);
        if (rc == K_ERR_NOENT)
            continue; /* past this segment's batches (a gap): the next segment serves */
        if (rc)
            return rc;
        l->seg = p->segs[i];
        l->have_hdr = true;
        return 0;
    }
    return K_ERR_NOENT;
}

/* The last index entry in (pos, limit] from entry `from` on; 0 with *end = -1 if none. */
static int window_end(ks_store_t *s, ks_seg_t *seg, int64_t from, int64_t pos, int64_t limit,
                      int64_t *end, int64_t *end_entry)
{
    uint8_t e[WINDOW * KS_IDX_ENTRY];
    int64_t got;
    *end = -1;
    int rc = ks_idx_read_entries(s, seg, from < 0 ? 0 : from, WINDOW, e, &got);
    if (rc)
        return rc;
    for (int64_t k = 0; k < got; k++) {
        int64_t at = ks_get_be32(e + k * KS_IDX_ENTRY + 4);
        if (at > limit || at >= seg->size)
            break;
        if (at > pos) {
            *end = at;
            *end_entry = (from < 0 ? 0 : from) + k;
        }
    }
    return 0;
}

/* Walks headers from l->pos while whole batches fit in max: end and next as found. */
static int walk_end(ks_store_t *s, const locate_t *l, size_t max, int64_t *end, int64_t *next)
{
    kp_batch_hdr_t h;
    int64_t at = l->pos;
    for (int n = 0; n < WALK_MAX && at < l->seg->size; n++) {
        int rc = ks_seg_read_hdr(s, l->seg, at, &h);
        if (rc)
            return rc;
        int64_t size = KP_BATCH_LOG_OVERHEAD + (int64_t)h.batch_length;
        if (at + size - l->pos > (int64_t)max)
            break;
        at += size;
        *next = h.base_offset + h.last_offset_delta + 1;
    }
    *end = at;
    return 0;
}

/* Where the slice from l ends: *end (position), *next (offset asked next), *end_entry. */
static int slice_end(ks_store_t *s, locate_t *l, size_t max, bool min_one,
                     int64_t *end, int64_t *next, int64_t *end_entry)
{
    ks_seg_t *seg = l->seg;
    *end_entry = l->entry;
    if (seg->size - l->pos <= (int64_t)max) { /* the rest of the segment: whole batches */
        *end = seg->size;
        *next = ks_seg_next_offset(seg);
        *end_entry = seg->idx_size / KS_IDX_ENTRY - 1;
        return 0;
    }
    int rc;
    if (!l->have_hdr && (rc = ks_seg_read_hdr(s, seg, l->pos, &l->h)) != 0)
        return rc;
    l->have_hdr = true;
    int64_t first = KP_BATCH_LOG_OVERHEAD + (int64_t)l->h.batch_length;
    if (first > (int64_t)max) { /* KIP-74: the first batch whole, or nothing */
        *end = min_one ? l->pos + first : l->pos;
        *next = l->h.base_offset + l->h.last_offset_delta + 1;
        return 0;
    }
    rc = window_end(s, seg, l->entry, l->pos, l->pos + (int64_t)max, end, end_entry);
    if (rc)
        return rc;
    if (*end > l->pos) {
        kp_batch_hdr_t h;
        if ((rc = ks_seg_read_hdr(s, seg, *end, &h)) != 0)
            return rc;
        *next = h.base_offset;
        return 0;
    }
    *end_entry = l->entry;
    return walk_end(s, l, max, end, next);
}

int ks_part_read_slice(ks_part_t *p, int64_t offset, size_t max_bytes, bool min_one,
                       ks_slice_t *out)
{
    if (!p || !out)
        return K_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->fd = -1;
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    locate_t l;
    int64_t end = 0, next = -1, end_entry = -1;
    if (offset < p->log_start || offset > p->log_end) {
        rc = K_ERR_RANGE;
    } else if (offset == p->log_end) {
        rc = 0;
    } else if ((rc = locate(s, p, offset, &l)) == K_ERR_NOENT) {
        rc = 0;
    } else if (rc == 0 &&
               (rc = slice_end(s, &l, max_bytes, min_one, &end, &next, &end_entry)) == 0 &&
               end > l.pos) {
        ks_file_t *f = &l.seg->f[KS_FILE_LOG];
        if ((rc = ks_file_acquire(s, f)) == 0) {
            out->fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
            if (out->fd < 0)
                rc = ks_errno_status(errno); /* EMFILE: the caller copies instead */
            ks_file_release(s, f);
        }
        if (rc == 0) {
            out->pos = l.pos;
            out->len = (size_t)(end - l.pos);
            out->first_offset = l.have_hdr ? l.h.base_offset : offset;
            out->next_offset = next;
            p->rd_seg = l.seg;
            p->rd_gen = p->seg_gen;
            p->rd_off = next;
            p->rd_pos = end;
            p->rd_entry = end_entry;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

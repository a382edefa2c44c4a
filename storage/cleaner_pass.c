/*
 * One cleaner pass, steps 2 and 3 (see cleaner.h): the key map and the rewrite. Runs on a
 * cleaner thread (or the caller of ks_part_clean) without s->mu, except for the pin around
 * each read of an input segment.
 *
 * A record of the rewritten range is kept when
 *   - its offset is at or past map_end (the map does not know the later records), or
 *   - no later record in [first_dirty, map_end) has its key, and
 *   - it is not a tombstone (null value) whose batch's delete horizon has passed.
 * Records without a key are removed (Kafka's cleaner drops them as invalid); Produce refuses
 * them on compacted topics in the first place. Control batches are copied as they are.
 *
 * A batch keeps its baseOffset, lastOffsetDelta, producer id, epoch and base sequence, and
 * every kept record its offset: offsets never change, and a producer's last sequence stays
 * baseSequence + lastOffsetDelta. A batch left without records is dropped, except the last
 * batch of a producer the partition still tracks, kept as an empty batch (header only, no
 * compression), as Kafka does, so idempotent producer state can be rebuilt from the log; and
 * the batch holding the log's last offset when the active segment is empty (Depot rolls idle
 * segments on its tick, Kafka only on append): without it a fetch between the last kept
 * record and the log end would find no batch, and a consumer could never get past.
 * Records are decompressed to read their keys and the kept ones are compressed again with
 * the batch's codec; a batch that keeps everything is copied byte for byte.
 *
 * Tombstones (KIP-534): the first pass that keeps a tombstone stamps its batch with a delete
 * horizon = now + delete.retention.ms (attribute bit 6, the horizon in baseTimestamp, record
 * timestamp deltas rebased so every record keeps its timestamp). A later pass after the
 * horizon removes the batch's tombstones. A consumer that reads the log from the start
 * within delete.retention.ms therefore sees every delete.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "protocol/kp_crc32c.h"
#include "storage/cleaner.h"

#define READ_CHUNK (1 << 20)
#define WRITE_CHUNK (1 << 20)
#define MAX_DECOMPRESSED (64 << 20)
#define MAP_LOAD 0.9
#define MAP_MIN 16

static const char *const sfx[3] = {".log", ".index", ".timeindex"};

/* ------------------------------------------------------------------------------------------ */
/* The key map                                                                                  */

void cl_map_init(cl_map_t *m, int64_t budget_bytes)
{
    memset(m, 0, sizeof *m);
    int64_t slots = budget_bytes / (int64_t)sizeof(cl_ment_t);
    m->max_cap = slots < MAP_MIN ? MAP_MIN : (size_t)slots;
}

void cl_map_free(cl_map_t *m)
{
    free(m->v);
    m->v = NULL;
    m->cap = m->n = 0;
}

static size_t slot(const cl_map_t *m, uint64_t h1, uint64_t h2)
{
    size_t i = (size_t)(h1 % m->cap);
    while (m->v[i].off1 && (m->v[i].h1 != h1 || m->v[i].h2 != h2))
        i = i + 1 == m->cap ? 0 : i + 1;
    return i;
}

/* Grows by doubling up to the budget, so a small key set costs little memory. */
static int map_grow(cl_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    if (cap > m->max_cap)
        cap = m->max_cap;
    cl_ment_t *v = calloc(cap, sizeof *v); /* owned by the map */
    if (!v)
        return K_ERR_NOMEM;
    cl_map_t n = {v, cap, 0, m->max_cap};
    for (size_t i = 0; i < m->cap; i++)
        if (m->v[i].off1)
            n.v[slot(&n, m->v[i].h1, m->v[i].h2)] = m->v[i];
    n.n = m->n;
    free(m->v);
    *m = n;
    return 0;
}

/* 1 stored, 0 full (a new key that does not fit), or K_ERR_NOMEM. */
static int map_put(cl_map_t *m, kp_bytes_t key, int64_t off)
{
    XXH128_hash_t h = XXH3_128bits(key.ptr, (size_t)key.len);
    if (m->cap) {
        size_t i = slot(m, h.low64, h.high64);
        if (m->v[i].off1) {
            m->v[i].off1 = off + 1;
            return 1;
        }
    }
    if ((double)(m->n + 1) > (double)m->cap * MAP_LOAD) {
        if (m->cap == m->max_cap)
            return 0;
        int rc = map_grow(m);
        if (rc)
            return rc;
    }
    size_t i = slot(m, h.low64, h.high64);
    m->v[i] = (cl_ment_t){h.low64, h.high64, off + 1};
    m->n++;
    return 1;
}

static int64_t map_get(const cl_map_t *m, kp_bytes_t key)
{
    if (!m->cap)
        return -1;
    XXH128_hash_t h = XXH3_128bits(key.ptr, (size_t)key.len);
    return m->v[slot(m, h.low64, h.high64)].off1 - 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading input segments                                                                       */

typedef struct {
    ks_seg_t *seg;
    int64_t pos, size, wstart, wend;
} rd_t;

/* pread of an input segment through the fd cache, the file pinned only for the call. Gives
 * up (K_ERR_AGAIN) once the pass is aborted or the store stops. */
static int seg_pread(cl_job_t *j, ks_seg_t *seg, uint8_t *dst, size_t n, int64_t off)
{
    ks_store_t *s = j->s;
    pthread_mutex_lock(&s->mu);
    if (j->p->clean_abort || s->cl_stop) {
        pthread_mutex_unlock(&s->mu);
        return K_ERR_AGAIN;
    }
    ks_file_t *f = &seg->f[KS_FILE_LOG];
    int rc = ks_file_acquire(s, f);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    rc = ks_io_pread_all(f->fd, dst, n, off) ? K_ERR_IO : 0;
    int e = errno;
    pthread_mutex_lock(&s->mu);
    ks_file_release(s, f);
    if (rc) {
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "cleaner: %s/%020" PRId64 ".log: read at %" PRId64
               " failed: %s", j->path, seg->base, off, strerror(e));
    }
    if (s->graveyard)
        ks_graveyard_sweep(s, false);
    pthread_mutex_unlock(&s->mu);
    j->bytes_read += (int64_t)n;
    cl_throttle(j, (int64_t)n);
    return rc;
}

static int window(cl_job_t *j, rd_t *rd, int64_t pos, int64_t n, const uint8_t **out)
{
    if (pos < rd->wstart || pos + n > rd->wend) {
        int64_t want = n > READ_CHUNK ? n : READ_CHUNK;
        if (want > rd->size - pos)
            want = rd->size - pos;
        if ((size_t)want > j->rcap) {
            uint8_t *nb = realloc(j->rbuf, (size_t)want);
            if (!nb)
                return K_ERR_NOMEM;
            j->rbuf = nb;
            j->rcap = (size_t)want;
        }
        int rc = seg_pread(j, rd->seg, j->rbuf, (size_t)want, pos);
        if (rc)
            return rc;
        rd->wstart = pos;
        rd->wend = pos + want;
    }
    *out = j->rbuf + (pos - rd->wstart);
    return 0;
}

static int corrupt(cl_job_t *j, const rd_t *rd, const char *why)
{
    ks_log(j->s, KS_LOG_ERROR, "cleaner: %s/%020" PRId64 ".log:%" PRId64 ": %s; pass given up",
           j->path, rd->seg->base, rd->pos, why);
    return K_ERR_CORRUPT;
}

/* The next whole, CRC-checked batch: 1, 0 at the end, or a negative status. */
static int rd_next(cl_job_t *j, rd_t *rd, const uint8_t **b, size_t *blen, kp_batch_hdr_t *h)
{
    if (rd->pos >= rd->size)
        return 0;
    if (rd->size - rd->pos < KP_BATCH_HEADER_SIZE)
        return corrupt(j, rd, "torn batch");
    const uint8_t *p;
    int rc = window(j, rd, rd->pos, KP_BATCH_LOG_OVERHEAD, &p);
    if (rc)
        return rc;
    int64_t bsz = kp_batch_size(p, KP_BATCH_LOG_OVERHEAD);
    if (bsz < KP_BATCH_HEADER_SIZE || bsz > rd->size - rd->pos)
        return corrupt(j, rd, "bad batch length");
    if ((rc = window(j, rd, rd->pos, bsz, &p)) != 0)
        return rc;
    if (kp_batch_validate(p, (size_t)bsz, h) != 0)
        return corrupt(j, rd, "batch fails its CRC");
    *b = p;
    *blen = (size_t)bsz;
    rd->pos += bsz;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Step 2: the map                                                                              */

static int map_batch(cl_job_t *j, const rd_t *rd, const uint8_t *b, size_t blen,
                     const kp_batch_hdr_t *h)
{
    kp_records_t it;
    kp_record_t rec;
    if (kp_records_init(&it, b, blen, MAX_DECOMPRESSED) != 0)
        return corrupt(j, rd, "records do not decode");
    int rc;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        int64_t off = h->base_offset + rec.offset_delta;
        if (off < j->first_dirty || rec.key.len < 0)
            continue;
        rc = map_put(&j->map, rec.key, off);
        if (rc <= 0) {
            if (rc == 0) { /* full: this pass covers the offsets before this record */
                j->map_end = off;
                j->map_full = true;
            }
            kp_records_deinit(&it);
            return rc == 0 ? 1 : rc;
        }
    }
    kp_records_deinit(&it);
    return rc < 0 ? corrupt(j, rd, "records do not decode") : 0;
}

int cl_build_map(cl_job_t *j)
{
    j->map_end = j->dirty_end;
    for (int i = j->fd_i; i < j->nin; i++) {
        rd_t rd = {.seg = j->in[i].seg, .size = j->in[i].size};
        const uint8_t *b;
        size_t blen;
        kp_batch_hdr_t h;
        int rc;
        while ((rc = rd_next(j, &rd, &b, &blen, &h)) == 1) {
            if (h.base_offset + h.last_offset_delta < j->first_dirty ||
                (h.attributes & KP_BATCH_ATTR_CONTROL))
                continue;
            rc = map_batch(j, &rd, b, blen, &h);
            if (rc)
                return rc > 0 ? 0 : rc;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Step 3: filtering one batch                                                                  */

static bool producer_last(const cl_job_t *j, const kp_batch_hdr_t *h)
{
    if (h->producer_id < 0)
        return false;
    int64_t last = h->base_offset + h->last_offset_delta;
    int lo = 0, hi = j->nplast - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (j->plast[mid] == last)
            return true;
        if (j->plast[mid] < last)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

typedef struct {
    kp_buf_t keep;   /* kept records' bytes (uncompressed) */
    int32_t nkept, nall, ntomb;
    bool removed;    /* at least one record removed */
} fb_t;

static void put_varbytes(kp_buf_t *b, kp_bytes_t v)
{
    kp_put_varint(b, v.len < 0 ? -1 : v.len);
    if (v.len > 0)
        kp_put_raw(b, v.ptr, (size_t)v.len);
}

/* The record with its timestamp delta moved from base old_base to new_base. */
static void put_rebased(kp_buf_t *out, kp_buf_t *tmp, const kp_record_t *rec, int64_t old_base,
                        int64_t new_base)
{
    kp_buf_reset(tmp);
    kp_put_i8(tmp, rec->attributes);
    kp_put_varlong(tmp, old_base + rec->timestamp_delta - new_base);
    kp_put_varint(tmp, rec->offset_delta);
    put_varbytes(tmp, rec->key);
    put_varbytes(tmp, rec->value);
    kp_put_varint(tmp, rec->headers_count);
    kp_put_raw(tmp, rec->headers, rec->headers_len);
    kp_put_varint(out, (int32_t)tmp->len);
    kp_put_raw(out, tmp->data, tmp->len);
}

enum { KEEP, KEEP_TOMB, DROP_NOKEY, DROP_OLD, DROP_TOMB };

static int keep_record(const cl_job_t *j, const kp_batch_hdr_t *h, const kp_record_t *rec,
                       int64_t off)
{
    if (rec->key.len < 0)
        return DROP_NOKEY;
    if (off >= j->map_end)
        return rec->value.len < 0 ? KEEP_TOMB : KEEP;
    if (map_get(&j->map, rec->key) > off)
        return DROP_OLD;
    if (rec->value.len >= 0)
        return KEEP;
    if ((h->attributes & KS_BATCH_ATTR_DELETE_HORIZON) && j->now_ms >= h->base_timestamp)
        return DROP_TOMB;
    return KEEP_TOMB;
}

/* Collects the kept records of a batch; rebased when a new horizon is set (new_base >= 0),
 * in which case the records were counted by the first call already. */
static int collect(cl_job_t *j, const uint8_t *b, size_t blen, const kp_batch_hdr_t *h,
                   int64_t new_base, fb_t *fb, kp_buf_t *tmp)
{
    kp_records_t it;
    kp_record_t rec;
    if (kp_records_init(&it, b, blen, MAX_DECOMPRESSED) != 0)
        return K_ERR_CORRUPT;
    int rc;
    const uint8_t *start = it.r.p;
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        int k = keep_record(j, h, &rec, h->base_offset + rec.offset_delta);
        fb->nall++;
        if (new_base < 0) {
            j->records_read++;
            j->invalid += k == DROP_NOKEY;
            j->removed += k == DROP_OLD;
            j->tombs += k == DROP_TOMB;
        }
        if (k == KEEP || k == KEEP_TOMB) {
            fb->nkept++;
            fb->ntomb += k == KEEP_TOMB;
            if (new_base >= 0)
                put_rebased(&fb->keep, tmp, &rec, h->base_timestamp, new_base);
            else
                kp_put_raw(&fb->keep, start, (size_t)(it.r.p - start));
        } else {
            fb->removed = true;
        }
        start = it.r.p;
    }
    kp_records_deinit(&it);
    if (rc < 0)
        return K_ERR_CORRUPT;
    return fb->keep.err ? K_ERR_NOMEM : 0;
}

static void patch16(kp_buf_t *b, size_t at, int16_t v)
{
    b->data[at] = (uint8_t)((uint16_t)v >> 8);
    b->data[at + 1] = (uint8_t)v;
}

/* Writes the rewritten batch: the original header with new attributes, baseTimestamp and
 * count, the kept records compressed with the batch's codec, then length and CRC. */
static int emit(const uint8_t *b, const kp_batch_hdr_t *h, int16_t attrs, int64_t base_ts,
                const fb_t *fb, kp_buf_t *out)
{
    size_t start = out->len;
    kp_put_raw(out, b, KP_BATCH_HEADER_SIZE);
    int codec = attrs & KP_BATCH_ATTR_COMPRESSION_MASK;
    int rc = 0;
    if (fb->nkept > 0)
        rc = kp_compress(codec, fb->keep.data, fb->keep.len, out);
    if (rc || out->err) {
        out->len = start;
        return rc ? rc : K_ERR_NOMEM;
    }
    (void)h;
    kp_buf_patch_i32(out, start + 8, (int32_t)(out->len - start - KP_BATCH_LOG_OVERHEAD));
    kp_buf_patch_i32(out, start + 12, 0);
    patch16(out, start + 21, attrs);
    ks_put_be64(out->data + start + 27, (uint64_t)base_ts);
    kp_buf_patch_i32(out, start + 57, fb->nkept);
    kp_buf_patch_u32(out, start + 17,
                     kp_crc32c(0, out->data + start + 21, out->len - start - 21));
    return 0;
}

/* Appends the cleaned form of one batch to out (or nothing when it goes). */
static int filter_batch(cl_job_t *j, const uint8_t *b, size_t blen, const kp_batch_hdr_t *h,
                        kp_buf_t *out, kp_buf_t *tmp)
{
    if (h->attributes & KP_BATCH_ATTR_CONTROL) {
        kp_put_raw(out, b, blen);
        return out->err ? K_ERR_NOMEM : 0;
    }
    fb_t fb = {0};
    kp_buf_init(&fb.keep);
    int rc = collect(j, b, blen, h, -1, &fb, tmp);
    bool has_hz = h->attributes & KS_BATCH_ATTR_DELETE_HORIZON;
    int16_t attrs = h->attributes;
    int64_t base_ts = h->base_timestamp;
    if (rc == 0 && fb.ntomb && !has_hz) {
        /* First pass to keep these tombstones: stamp the horizon (rebasing the records). */
        base_ts = j->cfg.delete_retention_ms > INT64_MAX - j->now_ms
                      ? INT64_MAX
                      : j->now_ms + j->cfg.delete_retention_ms;
        attrs = (int16_t)(attrs | KS_BATCH_ATTR_DELETE_HORIZON);
        kp_buf_reset(&fb.keep);
        fb = (fb_t){.keep = fb.keep};
        rc = collect(j, b, blen, h, base_ts, &fb, tmp);
    }
    if (rc == 0 && fb.ntomb) {
        int64_t hz = base_ts;
        if (hz < j->min_horizon)
            j->min_horizon = hz;
    }
    if (rc == 0) {
        if (!fb.removed && attrs == h->attributes) {
            kp_put_raw(out, b, blen); /* unchanged: byte for byte */
            rc = out->err ? K_ERR_NOMEM : 0;
        } else if (fb.nkept > 0) {
            rc = emit(b, h, attrs, base_ts, &fb, out);
        } else if (producer_last(j, h) ||
                   h->base_offset + h->last_offset_delta == j->log_end - 1) {
            j->empties++;
            attrs = (int16_t)(attrs & ~KP_BATCH_ATTR_COMPRESSION_MASK);
            rc = emit(b, h, attrs, base_ts, &fb, out);
        }
    }
    kp_buf_deinit(&fb.keep);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Step 3: writing one output segment                                                           */

void cl_output_path(const cl_job_t *j, int64_t base, int kind, bool cleaned, char *buf,
                    size_t len)
{
    snprintf(buf, len, "%s/%020" PRId64 "%s%s", j->path, base, sfx[kind],
             cleaned ? KS_CLEAN_SFX : "");
}

typedef struct {
    int fd[3];
    int64_t written; /* bytes of .log on disk */
    kp_buf_t buf, idx, tidx, tmp;
} wr_t;

static int wr_flush(cl_job_t *j, wr_t *w)
{
    if (w->buf.err)
        return K_ERR_NOMEM;
    if (!w->buf.len)
        return 0;
    if (ks_io_pwrite_all(w->fd[KS_FILE_LOG], w->buf.data, w->buf.len, w->written) != 0)
        return ks_errno_status(errno);
    w->written += (int64_t)w->buf.len;
    j->bytes_written += (int64_t)w->buf.len;
    cl_throttle(j, (int64_t)w->buf.len);
    kp_buf_reset(&w->buf);
    return 0;
}

/* Reads the group's inputs and writes the cleaned batches with their index entries. */
static int copy_group(cl_job_t *j, cl_out_t *o, wr_t *w)
{
    ks_seg_t *seg = o->seg;
    int32_t interval = j->cfg.index_interval_bytes;
    for (int i = o->from; i < o->to; i++) {
        rd_t rd = {.seg = j->in[i].seg, .size = j->in[i].size};
        const uint8_t *b;
        size_t blen;
        kp_batch_hdr_t h;
        int rc;
        while ((rc = rd_next(j, &rd, &b, &blen, &h)) == 1) {
            size_t at = w->buf.len;
            if ((rc = filter_batch(j, b, blen, &h, &w->buf, &w->tmp)) != 0)
                return rc == K_ERR_CORRUPT ? corrupt(j, &rd, "records do not decode") : rc;
            if (w->buf.len == at)
                continue;
            kp_batch_hdr_t nh;
            kp_batch_hdr_parse(w->buf.data + at, w->buf.len - at, &nh);
            int64_t pos = w->written + (int64_t)at, size = (int64_t)(w->buf.len - at);
            ks_idx_note_batch(seg, &nh, pos, size, interval, &w->idx, &w->tidx);
            seg->size = pos + size;
            if (w->buf.len >= WRITE_CHUNK && (rc = wr_flush(j, w)) != 0)
                return rc;
        }
        if (rc < 0)
            return rc;
    }
    return wr_flush(j, w);
}

static int write_group(cl_job_t *j, cl_out_t *o)
{
    ks_seg_t *seg = ks_seg_new(j->p, j->in[o->from].base); /* owned by the job until swapped */
    if (!seg)
        return K_ERR_NOMEM;
    o->seg = seg;
    seg->closed = true;
    seg->idx_checked = true;
    seg->created_ms = j->now_ms;
    wr_t w = {.fd = {-1, -1, -1}};
    kp_buf_init(&w.buf);
    kp_buf_init(&w.idx);
    kp_buf_init(&w.tidx);
    kp_buf_init(&w.tmp);
    char path[KS_PATH_MAX];
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        cl_output_path(j, seg->base, k, true, path, sizeof path);
        if ((w.fd[k] = ks_io.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
            rc = ks_errno_status(errno);
    }
    if (rc == 0)
        rc = copy_group(j, o, &w);
    if (rc == 0 && seg->ts_known && seg->max_ts > seg->tidx_last_ts && seg->size > 0) {
        uint8_t e[KS_TIDX_ENTRY]; /* the closed segment's last entry: its max timestamp */
        ks_put_be64(e, (uint64_t)seg->max_ts);
        ks_put_be32(e + 8, (uint32_t)(seg->max_ts_off - seg->base));
        kp_put_raw(&w.tidx, e, KS_TIDX_ENTRY);
        seg->tidx_last_ts = seg->max_ts;
    }
    if (rc == 0 && (w.idx.err || w.tidx.err))
        rc = K_ERR_NOMEM;
    if (rc == 0 && w.idx.len &&
        ks_io_pwrite_all(w.fd[KS_FILE_INDEX], w.idx.data, w.idx.len, 0) != 0)
        rc = ks_errno_status(errno);
    if (rc == 0 && w.tidx.len &&
        ks_io_pwrite_all(w.fd[KS_FILE_TIMEINDEX], w.tidx.data, w.tidx.len, 0) != 0)
        rc = ks_errno_status(errno);
    for (int k = 0; k < 3 && rc == 0; k++)
        if (ks_io.fdatasync(w.fd[k]) != 0)
            rc = ks_errno_status(errno);
    if (rc == K_ERR_IO || rc == K_ERR_NOSPC)
        ks_log(j->s, KS_LOG_ERROR, "cleaner: writing %s failed: %s", path, strerror(errno));
    for (int k = 0; k < 3; k++)
        if (w.fd[k] >= 0)
            ks_io.close(w.fd[k]);
    seg->idx_size = (int64_t)w.idx.len;
    seg->tidx_size = (int64_t)w.tidx.len;
    j->out_bytes += seg->size + seg->idx_size + seg->tidx_size;
    kp_buf_deinit(&w.buf);
    kp_buf_deinit(&w.idx);
    kp_buf_deinit(&w.tidx);
    kp_buf_deinit(&w.tmp);
    return rc;
}

/* Groups of inputs, each at most segment.bytes of input (Kafka's grouping), so that cleaned
 * segments that shrank merge into fewer files. */
static int plan_groups(cl_job_t *j)
{
    j->out = calloc((size_t)j->nrewrite, sizeof *j->out); /* owned by the job */
    if (!j->out)
        return K_ERR_NOMEM;
    for (int i = 0; i < j->nrewrite;) {
        cl_out_t *o = &j->out[j->nout++];
        int64_t bytes = j->in[i].size;
        o->from = i++;
        while (i < j->nrewrite && bytes + j->in[i].size <= j->cfg.segment_bytes &&
               j->in[i].next - j->in[o->from].base <= INT32_MAX) {
            bytes += j->in[i].size;
            i++;
        }
        o->to = i;
    }
    return 0;
}

int cl_write_outputs(cl_job_t *j)
{
    j->nrewrite = 0;
    while (j->nrewrite < j->nin && j->in[j->nrewrite].base < j->map_end)
        j->nrewrite++;
    if (j->nrewrite == 0)
        return K_ERR_AGAIN;
    int rc = plan_groups(j);
    for (int g = 0; rc == 0 && g < j->nout; g++)
        rc = write_group(j, &j->out[g]);
    if (rc == 0 && ks_io.fsync_dir(j->path) != 0)
        rc = ks_errno_status(errno);
    return rc;
}

void cl_discard_outputs(cl_job_t *j)
{
    for (int g = 0; g < j->nout; g++) {
        if (!j->out[g].seg)
            continue;
        for (int k = 0; k < 3; k++) {
            char path[KS_PATH_MAX];
            cl_output_path(j, j->out[g].seg->base, k, true, path, sizeof path);
            ks_io.unlink(path);
        }
    }
}

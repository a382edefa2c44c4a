/*
 * Idempotent producer state, per partition: what Kafka's ProducerStateManager keeps for
 * producers without transactions.
 *
 * For every producer id seen in a batch: its epoch, the broker time of its last append, and
 * its last KS_PRODUCER_BATCHES (5) batches as (first sequence, last sequence, first offset,
 * last offset - first offset). Five because a client has at most 5 requests in flight per
 * partition with idempotence on, so every batch it may retry is remembered.
 *
 * Rules (Kafka's ProducerAppendInfo, client origin, no transactions):
 *   - producer id < 0: not idempotent, nothing checked or recorded;
 *   - baseSequence < 0 with a producer id: refused (BAD_SEQUENCE);
 *   - same epoch and exactly the (first, last) sequence range of one of the 5 remembered
 *     batches: DUPLICATE, answered with that batch's original offsets, nothing written;
 *   - epoch below the remembered one: STALE_EPOCH;
 *   - a new (higher) epoch must start at sequence 0: else OUT_OF_ORDER;
 *   - same epoch: first sequence must be last sequence + 1 (0 after INT32_MAX): else
 *     OUT_OF_ORDER;
 *   - an unknown producer id (never seen, or expired) is accepted at any sequence, as Kafka
 *     does since 2.5 instead of answering UNKNOWN_PRODUCER_ID.
 * A batch's last sequence is baseSequence + lastOffsetDelta, wrapping past INT32_MAX to 0.
 *
 * Expiry: a producer is forgotten once now - last_ts >= producer.id.expiration.ms. last_ts is
 * the broker's clock at append (not the batch timestamps Kafka uses: factory clocks drift, and
 * a sensor stuck in 1970 must not lose its dedup window). Entries rebuilt from the log at open
 * get the open time.
 *
 * Persistence: <partition dir>/<20-digit offset>.snapshot holds the state covering every
 * offset below <offset>. Written at each segment roll (offset = the new segment's base) and at
 * clean close (offset = log end), as Kafka does; the two newest are kept. At open, after the
 * log is recovered, the newest snapshot whose offset is <= the log end and whose CRC holds is
 * loaded, and the batch headers from its offset to the log end are replayed, so the state
 * matches the log after a kill -9 or a power cut too. Snapshots past the log end (their
 * batches were cut by recovery) are deleted. Without any snapshot the whole log is replayed.
 * Snapshots are written even when no producer was seen, so that an open never replays more
 * than the batches after the last roll. They are derived data, written in place without
 * rename or fsync (close's syncfs makes the close-time one durable); a torn one fails its CRC
 * and an older one (or the log) is used.
 *
 * Snapshot format, big-endian:
 *    0 int16  version (1)
 *    2 uint32 CRC-32C of bytes 6..end
 *    6 int64  offset (as in the file name)
 *   14 int32  producer count, then per producer, sorted by id:
 *        int64 producer id, int16 epoch, int64 last_ts (ms), int8 batch count (0..5),
 *        then per batch, oldest first: int32 first seq, int32 last seq, int64 first offset,
 *        int32 last offset - first offset
 *
 * All functions run under s->mu on the loop thread (ks_int.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/kp_crc32c.h"
#include "storage/ks_int.h"

#define SNAP_VERSION 1
#define SNAP_HDR 18
#define SNAP_PRODUCER 19
#define SNAP_BATCH 20
#define SNAP_KEEP 2
#define EXPIRY_CHECK_MS 60000
#define DEFAULT_EXPIRATION_MS 86400000

/* ------------------------------------------------------------------------------------------ */
/* The table: sorted by pid. New ids come from a counter, so inserts are almost always at the
 * end. */

static int find_pos(const ks_pstate_t *ps, int64_t pid)
{
    int lo = 0, hi = ps->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ps->v[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ks_producer_t *find(ks_pstate_t *ps, int64_t pid)
{
    int i = find_pos(ps, pid);
    return i < ps->n && ps->v[i].pid == pid ? &ps->v[i] : NULL;
}

/* Inserts or replaces e. 0 or K_ERR_NOMEM. */
static int put(ks_pstate_t *ps, const ks_producer_t *e)
{
    int i = find_pos(ps, e->pid);
    if (i < ps->n && ps->v[i].pid == e->pid) {
        ps->v[i] = *e;
        return 0;
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 4;
        ks_producer_t *v = realloc(ps->v, (size_t)cap * sizeof *v);
        if (!v)
            return K_ERR_NOMEM;
        ps->v = v;
        ps->cap = cap;
    }
    memmove(ps->v + i + 1, ps->v + i, (size_t)(ps->n - i) * sizeof *ps->v);
    ps->v[i] = *e;
    ps->n++;
    return 0;
}

void ks_pstate_free(ks_pstate_t *ps)
{
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

/* ------------------------------------------------------------------------------------------ */
/* Sequence rules                                                                               */

static int32_t last_seq(const kp_batch_hdr_t *h)
{
    int64_t last = (int64_t)h->base_sequence + h->last_offset_delta;
    return last > INT32_MAX ? (int32_t)(last - INT32_MAX - 1) : (int32_t)last;
}

static bool in_sequence(int32_t last, int32_t next)
{
    return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

static void add_batch(ks_producer_t *e, const kp_batch_hdr_t *h, int64_t ts)
{
    if (e->epoch != h->producer_epoch) {
        e->epoch = h->producer_epoch;
        e->nb = 0; /* a new epoch restarts the sequence */
    }
    if (e->nb == KS_PRODUCER_BATCHES) {
        memmove(e->b, e->b + 1, (KS_PRODUCER_BATCHES - 1) * sizeof *e->b);
        e->nb--;
    }
    e->b[e->nb++] = (ks_pbatch_t){h->base_sequence, last_seq(h), h->base_offset,
                                  h->last_offset_delta};
    if (ts > e->last_ts)
        e->last_ts = ts;
}

/* The outcome of appending batch h for a producer whose state is e (NULL if unknown). On
 * DUPLICATE *dup gets the original batch. */
static ks_produce_outcome_t check(const ks_producer_t *e, const kp_batch_hdr_t *h,
                                  const ks_pbatch_t **dup)
{
    if (h->base_sequence < 0)
        return KS_PRODUCE_BAD_SEQUENCE;
    if (!e)
        return KS_PRODUCE_APPENDED;
    if (e->epoch == h->producer_epoch) {
        int32_t ls = last_seq(h);
        for (int i = 0; i < e->nb; i++) {
            if (e->b[i].first_seq == h->base_sequence && e->b[i].last_seq == ls) {
                *dup = &e->b[i];
                return KS_PRODUCE_DUPLICATE;
            }
        }
    }
    if (h->producer_epoch < e->epoch)
        return KS_PRODUCE_STALE_EPOCH;
    if (h->producer_epoch != e->epoch)
        return h->base_sequence == 0 ? KS_PRODUCE_APPENDED : KS_PRODUCE_OUT_OF_ORDER;
    if (e->nb > 0 && !in_sequence(e->b[e->nb - 1].last_seq, h->base_sequence))
        return KS_PRODUCE_OUT_OF_ORDER;
    return KS_PRODUCE_APPENDED;
}

static bool idempotent(const kp_batch_hdr_t *h)
{
    return h->producer_id >= 0 && !(h->attributes & KP_BATCH_ATTR_CONTROL);
}

/* ------------------------------------------------------------------------------------------ */
/* Append                                                                                       */

void ks_pstate_note(ks_part_t *p, const uint8_t *buf, size_t len, int64_t now_ms)
{
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    kp_batch_iter_init(&it, buf, len, false);
    while (kp_batch_iter_next(&it, &b, &blen) == 1) {
        kp_batch_hdr_t h;
        if (kp_batch_hdr_parse(b, blen, &h) != 0 || !idempotent(&h))
            continue;
        ks_producer_t *cur = find(&p->pstate, h.producer_id);
        ks_producer_t e = cur ? *cur : (ks_producer_t){.pid = h.producer_id, .epoch = -1};
        add_batch(&e, &h, now_ms);
        if (put(&p->pstate, &e) != 0)
            ks_log(p->topic->s, KS_LOG_ERROR, "%s: out of memory for producer %" PRId64
                   " state; its retries may be stored twice", p->path, h.producer_id);
    }
}

/* Checks every batch of buf in order against the state as the earlier batches would leave
 * it. Tentative entries live in tmp (one per batch at most). */
static ks_produce_outcome_t check_all(ks_part_t *p, const uint8_t *buf, size_t len,
                                      ks_append_result_t *res)
{
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    ks_producer_t tmp[8];
    int ntmp = 0;
    int64_t next = p->log_end;
    kp_batch_iter_init(&it, buf, len, true);
    while (kp_batch_iter_next(&it, &b, &blen) == 1) {
        kp_batch_hdr_t h;
        if (kp_batch_hdr_parse(b, blen, &h) != 0)
            return KS_PRODUCE_APPENDED; /* ks_part_append_locked refuses it */
        h.base_offset = next;
        next += (int64_t)h.last_offset_delta + 1;
        if (!idempotent(&h))
            continue;
        ks_producer_t *e = NULL;
        bool tentative = false;
        for (int i = 0; i < ntmp && !e; i++)
            if (tmp[i].pid == h.producer_id)
                e = &tmp[i];
        if (e)
            tentative = true;
        else
            e = find(&p->pstate, h.producer_id);
        const ks_pbatch_t *dup = NULL;
        ks_produce_outcome_t o = check(e, &h, &dup);
        if (o == KS_PRODUCE_DUPLICATE) {
            res->base_offset = dup->first_offset;
            res->last_offset = dup->first_offset + dup->offset_delta;
            res->log_append_time = -1;
            res->log_start = p->log_start;
            return o;
        }
        if (o != KS_PRODUCE_APPENDED)
            return o;
        if (!tentative) {
            if (ntmp == (int)(sizeof tmp / sizeof tmp[0]))
                continue; /* more producers than any client sends in one append */
            tmp[ntmp] = e ? *e : (ks_producer_t){.pid = h.producer_id, .epoch = -1};
            e = &tmp[ntmp++];
        }
        add_batch(e, &h, 0);
    }
    return KS_PRODUCE_APPENDED;
}

int ks_part_append_idempotent(ks_part_t *p, uint8_t *buf, size_t len, int64_t now_ms,
                              ks_append_result_t *res, ks_produce_outcome_t *outcome)
{
    if (!p || !buf || !len || !res || !outcome)
        return K_ERR_INVAL;
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (p->failed) {
        rc = K_ERR_IO; /* as an append would answer: the state may be ahead of the disk */
        goto out;
    }
    *outcome = check_all(p, buf, len, res);
    if (*outcome != KS_PRODUCE_APPENDED)
        goto out;
    rc = ks_part_append_locked(s, p, buf, len, now_ms, res);
    if (rc == 0)
        ks_pstate_note(p, buf, len, now_ms);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ks_part_producer_count(const ks_part_t *p)
{
    ks_store_t *s = p->topic->s;
    pthread_mutex_lock(&s->mu);
    int n = p->pstate.n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Expiry                                                                                       */

void ks_pstate_expire(ks_store_t *s, int64_t now_ms)
{
    int64_t exp = s->o.producer_id_expiration_ms > 0 ? s->o.producer_id_expiration_ms
                                                     : DEFAULT_EXPIRATION_MS;
    int64_t every = exp / 10 < EXPIRY_CHECK_MS ? exp / 10 : EXPIRY_CHECK_MS;
    if (now_ms - s->pid_expiry_ms < every)
        return;
    s->pid_expiry_ms = now_ms;
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_pstate_t *ps = &t->parts[j]->pstate;
            int w = 0;
            for (int r = 0; r < ps->n; r++)
                if (now_ms - ps->v[r].last_ts < exp)
                    ps->v[w++] = ps->v[r];
            if (w != ps->n)
                ks_log(s, KS_LOG_DEBUG, "%s: %d producer ids expired", t->parts[j]->path,
                       ps->n - w);
            ps->n = w;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots                                                                                    */

static void put16(kp_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    kp_put_raw(b, x, 2);
}

static void put32(kp_buf_t *b, uint32_t v)
{
    uint8_t x[4];
    ks_put_be32(x, v);
    kp_put_raw(b, x, 4);
}

static void put64(kp_buf_t *b, uint64_t v)
{
    uint8_t x[8];
    ks_put_be64(x, v);
    kp_put_raw(b, x, 8);
}

static void snap_name(char *buf, size_t n, const char *dir, int64_t offset, const char *sfx)
{
    snprintf(buf, n, "%s/%020" PRId64 ".snapshot%s", dir, offset, sfx);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Offsets of the snapshot files in p's directory, newest first. Caller frees *out. */
static int list_snapshots(ks_part_t *p, int64_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(p->path);
    if (!d)
        return K_ERR_IO;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strlen(nm) != 29 || strcmp(nm + 20, ".snapshot") != 0 ||
            strspn(nm, "0123456789") != 20)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            int64_t *v = realloc(*out, (size_t)cap * sizeof *v);
            if (!v) {
                closedir(d);
                return K_ERR_NOMEM;
            }
            *out = v;
        }
        (*out)[(*n)++] = strtoll(nm, NULL, 10);
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, (size_t)*n, sizeof **out, cmp_desc);
    return 0;
}

static void remove_snapshot(ks_store_t *s, ks_part_t *p, int64_t offset, const char *why)
{
    char path[KS_PATH_MAX];
    snap_name(path, sizeof path, p->path, offset, "");
    if (ks_io.unlink(path) != 0 && errno != ENOENT)
        ks_log(s, KS_LOG_WARN, "%s: cannot remove: %s", path, strerror(errno));
    else if (why)
        ks_log(s, KS_LOG_INFO, "%s: removed (%s)", path, why);
}

static int encode_snapshot(const ks_pstate_t *ps, int64_t offset, kp_buf_t *b)
{
    put16(b, SNAP_VERSION);
    put32(b, 0); /* CRC, filled below */
    put64(b, (uint64_t)offset);
    put32(b, (uint32_t)ps->n);
    for (int i = 0; i < ps->n; i++) {
        const ks_producer_t *e = &ps->v[i];
        put64(b, (uint64_t)e->pid);
        put16(b, (uint16_t)e->epoch);
        put64(b, (uint64_t)e->last_ts);
        uint8_t nb = e->nb;
        kp_put_raw(b, &nb, 1);
        for (int k = 0; k < e->nb; k++) {
            put32(b, (uint32_t)e->b[k].first_seq);
            put32(b, (uint32_t)e->b[k].last_seq);
            put64(b, (uint64_t)e->b[k].first_offset);
            put32(b, (uint32_t)e->b[k].offset_delta);
        }
    }
    if (b->err)
        return K_ERR_NOMEM;
    ks_put_be32(b->data + 2, kp_crc32c(0, b->data + 6, b->len - 6));
    return 0;
}

void ks_pstate_snapshot(ks_store_t *s, ks_part_t *p, int64_t offset)
{
    if (!p->path)
        return;
    kp_buf_t b;
    kp_buf_init(&b);
    char path[KS_PATH_MAX];
    snap_name(path, sizeof path, p->path, offset, "");
    const char *what = "encode";
    int fd = -1, e = ENOMEM;
    if (encode_snapshot(&p->pstate, offset, &b) != 0)
        goto fail;
    /* Written in place, no rename: a torn file fails its CRC and an older one is used. */
    what = "create";
    if ((fd = ks_io.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        goto fail_errno;
    what = "write";
    if (ks_io_pwrite_all(fd, b.data, b.len, 0) != 0)
        goto fail_errno;
    ks_io.close(fd);
    kp_buf_deinit(&b);
    /* Keep the newest SNAP_KEEP: an older one is the fallback if the newest is torn. */
    int64_t *offs;
    int n;
    if (list_snapshots(p, &offs, &n) == 0)
        for (int i = SNAP_KEEP; i < n; i++)
            remove_snapshot(s, p, offs[i], NULL);
    free(offs);
    return;
fail_errno:
    e = errno;
fail:
    if (fd >= 0) {
        ks_io.close(fd);
        ks_io.unlink(path);
    }
    kp_buf_deinit(&b);
    s->st.io_errors += e != ENOMEM;
    ks_log(s, KS_LOG_WARN, "%s: snapshot %s failed: %s (rebuilt from the log at next open)",
           path, what, strerror(e));
}

/* Parses a snapshot into ps; K_ERR_CORRUPT if anything is off. */
static int decode_snapshot(const uint8_t *d, size_t len, int64_t offset, ks_pstate_t *ps)
{
    if (len < SNAP_HDR || ((d[0] << 8) | d[1]) != SNAP_VERSION ||
        ks_get_be32(d + 2) != kp_crc32c(0, d + 6, len - 6) ||
        (int64_t)ks_get_be64(d + 6) != offset)
        return K_ERR_CORRUPT;
    uint32_t n = ks_get_be32(d + 14);
    size_t pos = SNAP_HDR;
    if (n > (len - pos) / SNAP_PRODUCER)
        return K_ERR_CORRUPT;
    for (uint32_t i = 0; i < n; i++) {
        if (len - pos < SNAP_PRODUCER)
            return K_ERR_CORRUPT;
        ks_producer_t e = {0};
        e.pid = (int64_t)ks_get_be64(d + pos);
        e.epoch = (int16_t)((d[pos + 8] << 8) | d[pos + 9]);
        e.last_ts = (int64_t)ks_get_be64(d + pos + 10);
        e.nb = d[pos + 18];
        pos += SNAP_PRODUCER;
        if (e.nb > KS_PRODUCER_BATCHES || (len - pos) / SNAP_BATCH < e.nb)
            return K_ERR_CORRUPT;
        for (int k = 0; k < e.nb; k++, pos += SNAP_BATCH) {
            e.b[k].first_seq = (int32_t)ks_get_be32(d + pos);
            e.b[k].last_seq = (int32_t)ks_get_be32(d + pos + 4);
            e.b[k].first_offset = (int64_t)ks_get_be64(d + pos + 8);
            e.b[k].offset_delta = (int32_t)ks_get_be32(d + pos + 16);
        }
        if (e.pid < 0 || put(ps, &e) != 0)
            return K_ERR_CORRUPT;
    }
    return pos == len ? 0 : K_ERR_CORRUPT;
}

/* Replays the producer fields of every batch header in [from, log_end). */
static int replay(ks_store_t *s, ks_part_t *p, int64_t from, int64_t now_ms)
{
    int i = ks_part_find_seg(p, from);
    if (i < 0)
        i = 0;
    for (; i < p->nsegs; i++) {
        ks_seg_t *seg = p->segs[i];
        int64_t pos = 0;
        kp_batch_hdr_t h;
        int rc = ks_seg_find(s, seg, from > seg->base ? from : seg->base, &pos, &h);
        if (rc == K_ERR_NOENT)
            continue;
        for (; rc == 0; pos += KP_BATCH_LOG_OVERHEAD + h.batch_length) {
            rc = ks_seg_read_hdr(s, seg, pos, &h);
            if (rc == 0 && idempotent(&h)) {
                ks_producer_t *cur = find(&p->pstate, h.producer_id);
                ks_producer_t e = cur ? *cur : (ks_producer_t){.pid = h.producer_id, .epoch = -1};
                add_batch(&e, &h, now_ms);
                if (put(&p->pstate, &e) != 0)
                    return K_ERR_NOMEM;
            }
        }
        if (rc != K_ERR_NOENT)
            return rc;
    }
    return 0;
}

int ks_pstate_load(ks_store_t *s, ks_part_t *p, int64_t now_ms)
{
    int64_t *offs;
    int n;
    int rc = list_snapshots(p, &offs, &n);
    if (rc)
        return rc == K_ERR_NOMEM ? rc : 0;
    int64_t from = -1;
    bool removed = false;
    for (int i = 0; i < n && from < 0; i++) {
        if (offs[i] > p->log_end) {
            remove_snapshot(s, p, offs[i], "past the recovered log end");
            removed = true;
            continue;
        }
        char path[KS_PATH_MAX];
        snap_name(path, sizeof path, p->path, offs[i], "");
        char *text;
        size_t len;
        if (ks_read_small(path, &text, &len) != 0)
            continue;
        ks_pstate_t ps = {0};
        rc = decode_snapshot((const uint8_t *)text, len, offs[i], &ps);
        free(text);
        if (rc) {
            ks_pstate_free(&ps);
            ks_log(s, KS_LOG_WARN, "%s: invalid producer snapshot; trying an older one", path);
            remove_snapshot(s, p, offs[i], NULL);
            removed = true;
            continue;
        }
        ks_pstate_free(&p->pstate);
        p->pstate = ps;
        from = offs[i];
    }
    free(offs);
    /* A stale snapshot must not come back after another crash, once the log has grown past
     * its offset again with other batches. */
    if (removed && ks_io.fsync_dir(p->path) != 0)
        ks_log(s, KS_LOG_WARN, "%s: directory fsync failed: %s", p->path, strerror(errno));
    if (from < p->log_start)
        from = p->log_start;
    rc = from < p->log_end ? replay(s, p, from, now_ms) : 0;
    if (rc == K_ERR_NOMEM)
        return rc;
    if (rc) /* the log stays usable; only retries from before the damage may be stored twice */
        ks_log(s, KS_LOG_ERROR, "%s: rebuilding producer state stopped early: %s", p->path,
               k_strerror(rc));
    return 0;
}

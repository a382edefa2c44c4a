/*
 * Offsets log in __consumer_offsets, partition 0. See offsets_store.h.
 *
 * Every record is a RecordBatch v2 record (uncompressed, built with kp_batch_builder) whose
 * key and value use this layout (big-endian; "str" = int16 length + bytes, length -1 = null;
 * "bytes" = int32 length + bytes):
 *
 *   key:   int16 type
 *          type 0 (offset):  str group_id, str topic, int32 partition
 *          type 1 (group):   str group_id
 *   value: null = tombstone (the offset / the whole group and its offsets are gone)
 *          type 0, int16 version = 0:
 *              int64 offset, int32 leader_epoch, str metadata, int64 commit_ts (ms),
 *              int64 expire_ts (ms, -1 = none)
 *          type 1, int16 version = 0:
 *              str protocol_type, int32 generation_id, str protocol_name, str leader_id,
 *              int64 state_ts (ms), int32 member_count, then per member:
 *              str member_id, str group_instance_id, str client_id, str client_host,
 *              int32 session_timeout_ms, int32 rebalance_timeout_ms,
 *              bytes subscription (the selected protocol's metadata), bytes assignment
 *
 * Replay applies records in log order: the last record for a key wins, a group tombstone
 * removes the group with its offsets. Unknown types or versions, and records that do not
 * parse, are skipped (counted), never fatal: the topic is writable by any producer.
 *
 * Bounding. The topic is created with cleanup.policy=compact (an older one is switched at
 * open), so the storage log cleaner keeps the latest record of every key, as Kafka does with
 * __consumer_offsets. Two rules keep that equal to the replayed state: a deleted group writes
 * a tombstone for each of its offsets before the group tombstone (a cleaner removes the group
 * tombstone after delete.retention.ms, and the offsets must not come back), and every record
 * has a key. While the cleaner runs (log.cleaner.enable), nothing else is done.
 *
 * Without the cleaner (log.cleaner.enable=false) the older bound applies, crash-safe: after
 * more than max(segment size, 2 x last snapshot) bytes have been appended since the last
 * snapshot, the complete in-memory state (which includes every appended record) is appended
 * as one run starting at offset S. Once that run is fsynced, ks_part_delete_records(S) drops
 * the whole segments before it. A crash at any point leaves either the old records followed
 * by a (possibly partial) snapshot, whose replay yields the same state because every snapshot
 * record re-states a current value, or the trimmed log. The two never run together, so they
 * cannot fight over the same segments (a DeleteRecords would also just make a clean in
 * progress give up and retry).
 */
#include "broker/group/offsets_store.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/kp_batch.h"

#define SNAPSHOT_BATCH_BYTES (256 * 1024)
#define READ_CHUNK (1024 * 1024)
#define KEY_OFFSET 0
#define KEY_GROUP 1

typedef struct compact_ticket {
    kb_ostore_t *os; /* NULL once the store closed */
    int64_t start;
} compact_ticket_t;

struct kb_ostore {
    ks_store_t *store;
    kb_gcoord_t *coord;
    ks_part_t *part;
    int64_t since_snapshot; /* bytes appended since the last snapshot (or since open) */
    int64_t last_snapshot_bytes;
    int64_t threshold;
    compact_ticket_t *compacting; /* snapshot written, waiting for its fsync */
    int64_t loaded, skipped;
};

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                    */

static void put_str(kp_buf_t *b, kp_str_t s)
{
    kp_put_string(b, s, false);
}

static void put_cstr(kp_buf_t *b, const char *s)
{
    kp_put_cstr(b, s, false);
}

static void offset_key(kp_buf_t *b, kp_str_t group, kp_str_t topic, int32_t partition)
{
    kp_put_i16(b, KEY_OFFSET);
    put_str(b, group);
    put_str(b, topic);
    kp_put_i32(b, partition);
}

static void offset_value(kp_buf_t *b, const kb_offset_t *o)
{
    kp_put_i16(b, 0);
    kp_put_i64(b, o->offset);
    kp_put_i32(b, o->leader_epoch);
    put_str(b, o->metadata ? (kp_str_t){o->metadata, o->metadata_len} : (kp_str_t){NULL, -1});
    kp_put_i64(b, o->commit_ts);
    kp_put_i64(b, o->expire_ts);
}

static void group_value(kp_buf_t *b, const kb_group_t *g)
{
    kp_put_i16(b, 0);
    put_cstr(b, g->protocol_type);
    kp_put_i32(b, g->generation_id);
    put_cstr(b, g->protocol_name);
    put_cstr(b, g->leader_id);
    kp_put_i64(b, g->state_ts);
    /* Only a group with a settled generation has members worth restoring. */
    bool members = g->state == KB_GROUP_STABLE;
    kp_put_i32(b, members ? g->n_members : 0);
    for (kb_gmember_t *m = members ? g->members : NULL; m; m = m->next) {
        put_cstr(b, m->member_id);
        put_str(b, m->instance_id ? (kp_str_t){m->instance_id, m->instance_id_len}
                                  : (kp_str_t){NULL, -1});
        put_str(b, (kp_str_t){m->client_id ? m->client_id : "", m->client_id_len});
        put_str(b, (kp_str_t){m->client_host ? m->client_host : "", m->client_host_len});
        kp_put_i32(b, m->session_timeout_ms);
        kp_put_i32(b, m->rebalance_timeout_ms);
        kp_bytes_t md = kb_gmember_metadata(m, g->protocol_name);
        kp_put_bytes(b, md, false);
        kp_bytes_t as = {m->assignment ? m->assignment : (const uint8_t *)"",
                         m->assignment_len};
        kp_put_bytes(b, as, false);
    }
}

static int add_record(kp_batch_builder_t *bb, kp_buf_t *k, kp_buf_t *v, bool tomb, int64_t now)
{
    if (k->err || v->err)
        return K_ERR_NOMEM;
    kp_bytes_t key = {k->data, (int32_t)k->len};
    kp_bytes_t val = {tomb ? NULL : (v->data ? v->data : (const uint8_t *)""),
                      tomb ? -1 : (int32_t)v->len};
    return kp_batch_builder_add(bb, now, key, val, NULL, 0);
}

/* Appends the builder's records as one batch. */
static int flush_batch(kb_ostore_t *os, kp_batch_builder_t *bb, int64_t now, int64_t *end)
{
    if (!bb->count)
        return 0;
    kp_buf_t out;
    kp_buf_init(&out);
    int rc = kp_batch_builder_finish(bb, &out);
    if (!rc && out.err)
        rc = K_ERR_NOMEM;
    ks_append_result_t res;
    if (!rc)
        rc = ks_part_append(os->part, out.data, out.len, now, &res);
    if (!rc) {
        os->since_snapshot += (int64_t)out.len;
        if (end)
            *end = res.last_offset + 1;
    }
    kp_buf_deinit(&out);
    return rc;
}

int kb_ostore_append_offsets(kb_ostore_t *os, kp_str_t group_id, const kb_ostore_rec_t *recs,
                             int32_t n, int64_t now, int64_t *end)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_buf_t k, v;
    kp_buf_init(&k);
    kp_buf_init(&v);
    int rc = 0;
    for (int32_t i = 0; i < n && !rc; i++) {
        kp_buf_reset(&k);
        kp_buf_reset(&v);
        offset_key(&k, group_id, recs[i].topic, recs[i].partition);
        if (!recs[i].tombstone)
            offset_value(&v, &recs[i].o);
        rc = add_record(&bb, &k, &v, recs[i].tombstone, now);
    }
    if (!rc)
        rc = flush_batch(os, &bb, now, end);
    kp_buf_deinit(&k);
    kp_buf_deinit(&v);
    kp_batch_builder_deinit(&bb);
    return rc;
}

int kb_ostore_append_group(kb_ostore_t *os, const kb_group_t *g, int64_t now, int64_t *end)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_buf_t k, v;
    kp_buf_init(&k);
    kp_buf_init(&v);
    bool tomb = g->state == KB_GROUP_DEAD;
    int rc = 0;
    /* A dead group's offsets get tombstones of their own: compaction keeps each key's last
     * record, and the group tombstone alone would not hide them once it is cleaned away. */
    for (kb_gmap_ent_t *e = tomb ? kb_gmap_next(&g->offsets, NULL) : NULL; e && !rc;
         e = kb_gmap_next(&g->offsets, e)) {
        kp_str_t topic;
        int32_t partition;
        kb_group_offset_key(e, &topic, &partition);
        kp_buf_reset(&k);
        offset_key(&k, kp_str(g->group_id), topic, partition);
        rc = add_record(&bb, &k, &v, true, now);
    }
    kp_buf_reset(&k);
    kp_put_i16(&k, KEY_GROUP);
    put_cstr(&k, g->group_id);
    if (!tomb)
        group_value(&v, g);
    if (!rc)
        rc = add_record(&bb, &k, &v, tomb, now);
    if (!rc)
        rc = flush_batch(os, &bb, now, end);
    kp_buf_deinit(&k);
    kp_buf_deinit(&v);
    kp_batch_builder_deinit(&bb);
    return rc;
}

int kb_ostore_sync(kb_ostore_t *os, int64_t end, ks_sync_cb cb, void *arg)
{
    return ks_part_sync(os->part, end, cb, arg);
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshot and trim                                                                           */

static void on_snapshot_synced(void *arg, int status)
{
    compact_ticket_t *t = arg;
    kb_ostore_t *os = t->os;
    if (os) {
        os->compacting = NULL;
        /* Only a durable snapshot may replace what came before it. */
        if (status == 0)
            (void)ks_part_delete_records(os->part, t->start);
    }
    free(t);
}

int kb_ostore_compact(kb_ostore_t *os, int64_t now)
{
    if (os->compacting)
        return K_ERR_AGAIN;
    int64_t start = ks_part_log_end(os->part);
    int64_t before = os->since_snapshot;
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_buf_t k, v;
    kp_buf_init(&k);
    kp_buf_init(&v);
    int rc = 0;
    int64_t end = start;
    for (kb_group_t *g = kb_gcoord_next(os->coord, NULL); g && !rc;
         g = kb_gcoord_next(os->coord, g)) {
        if (g->protocol_type || g->generation_id > 0) {
            kp_buf_reset(&k);
            kp_buf_reset(&v);
            kp_put_i16(&k, KEY_GROUP);
            put_cstr(&k, g->group_id);
            group_value(&v, g);
            rc = add_record(&bb, &k, &v, false, now);
        }
        for (kb_gmap_ent_t *e = kb_gmap_next(&g->offsets, NULL); e && !rc;
             e = kb_gmap_next(&g->offsets, e)) {
            kp_str_t topic;
            int32_t partition;
            kb_group_offset_key(e, &topic, &partition);
            kp_buf_reset(&k);
            kp_buf_reset(&v);
            offset_key(&k, kp_str(g->group_id), topic, partition);
            offset_value(&v, e->val);
            rc = add_record(&bb, &k, &v, false, now);
            if (!rc && bb.records.len >= SNAPSHOT_BATCH_BYTES)
                rc = flush_batch(os, &bb, now, &end);
        }
    }
    if (!rc)
        rc = flush_batch(os, &bb, now, &end);
    kp_buf_deinit(&k);
    kp_buf_deinit(&v);
    kp_batch_builder_deinit(&bb);
    os->last_snapshot_bytes = os->since_snapshot - before;
    os->since_snapshot = 0;
    if (rc)
        return rc;
    compact_ticket_t *t = calloc(1, sizeof *t);
    if (!t)
        return K_ERR_NOMEM;
    t->os = os;
    t->start = start;
    os->compacting = t;
    if (end == start) { /* nothing to keep: the trim needs no fsync */
        on_snapshot_synced(t, 0);
        return 0;
    }
    rc = ks_part_sync(os->part, end, on_snapshot_synced, t);
    if (rc) {
        os->compacting = NULL;
        free(t);
    }
    return rc;
}

int kb_ostore_maybe_compact(kb_ostore_t *os, int64_t now)
{
    if (ks_store_cleaner_enabled(os->store))
        return 0; /* the log cleaner bounds the topic (see the top) */
    int64_t limit = os->threshold;
    if (2 * os->last_snapshot_bytes > limit)
        limit = 2 * os->last_snapshot_bytes;
    if (os->since_snapshot < limit || os->compacting)
        return 0;
    return kb_ostore_compact(os, now);
}

/* ------------------------------------------------------------------------------------------ */
/* Replay                                                                                      */

static int apply_offset(kb_ostore_t *os, kp_reader_t *kr, kp_bytes_t value)
{
    kp_str_t group = kp_read_string(kr, false);
    kp_str_t topic = kp_read_string(kr, false);
    int32_t partition = kp_read_i32(kr);
    if (kr->err || group.len < 0 || topic.len < 0)
        return -1;
    if (value.len < 0) {
        kb_group_offset_delete(os->coord, group, topic, partition);
        return 0;
    }
    kp_reader_t r;
    kp_reader_init(&r, value.ptr, (size_t)value.len);
    if (kp_read_i16(&r) != 0)
        return -1;
    kb_offset_t o;
    o.offset = kp_read_i64(&r);
    o.leader_epoch = kp_read_i32(&r);
    kp_str_t md = kp_read_string(&r, false);
    o.commit_ts = kp_read_i64(&r);
    o.expire_ts = kp_read_i64(&r);
    if (r.err)
        return -1;
    /* kb_group_offset_put copies metadata_len bytes: a view into the record is enough. */
    o.metadata = md.len >= 0 ? (char *)(uintptr_t)(md.ptr ? md.ptr : "") : NULL;
    o.metadata_len = md.len >= 0 ? md.len : 0;
    int rc = kb_group_offset_put(os->coord, group, topic, partition, &o);
    return rc ? -1 : 0;
}

static int apply_group(kb_ostore_t *os, kp_reader_t *kr, kp_bytes_t value, kb_gtime_t now)
{
    kp_str_t group = kp_read_string(kr, false);
    if (kr->err || group.len < 0)
        return -1;
    if (value.len < 0) {
        kb_group_unload(os->coord, group);
        return 0;
    }
    kp_reader_t r;
    kp_reader_init(&r, value.ptr, (size_t)value.len);
    if (kp_read_i16(&r) != 0)
        return -1;
    kb_group_load_t l = {.group_id = group};
    l.protocol_type = kp_read_string(&r, false);
    l.generation_id = kp_read_i32(&r);
    l.protocol_name = kp_read_string(&r, false);
    l.leader_id = kp_read_string(&r, false);
    l.state_ts = kp_read_i64(&r);
    int32_t n = kp_read_array_len(&r, false, 26);
    if (r.err || n < 0)
        return -1;
    kb_gmember_load_t *ms = calloc(n ? (size_t)n : 1, sizeof *ms);
    if (!ms)
        return -1;
    for (int32_t i = 0; i < n; i++) {
        ms[i].member_id = kp_read_string(&r, false);
        ms[i].group_instance_id = kp_read_string(&r, false);
        ms[i].client_id = kp_read_string(&r, false);
        ms[i].client_host = kp_read_string(&r, false);
        ms[i].session_timeout_ms = kp_read_i32(&r);
        ms[i].rebalance_timeout_ms = kp_read_i32(&r);
        ms[i].subscription = kp_read_bytes(&r, false);
        ms[i].assignment = kp_read_bytes(&r, false);
        if (ms[i].member_id.len < 0)
            r.err = K_ERR_MALFORMED;
    }
    int rc = -1;
    if (!r.err) {
        l.members = ms;
        l.n_members = n;
        rc = kb_group_load(os->coord, &l, now) ? -1 : 0;
    }
    free(ms);
    return rc;
}

static void apply_record(kb_ostore_t *os, const kp_record_t *rec, kb_gtime_t now)
{
    kp_reader_t kr;
    kp_reader_init(&kr, rec->key.ptr, rec->key.len > 0 ? (size_t)rec->key.len : 0);
    int16_t type = kp_read_i16(&kr);
    int rc = -1;
    if (!kr.err && type == KEY_OFFSET)
        rc = apply_offset(os, &kr, rec->value);
    else if (!kr.err && type == KEY_GROUP)
        rc = apply_group(os, &kr, rec->value, now);
    if (rc)
        os->skipped++;
    else
        os->loaded++;
}

static int replay(kb_ostore_t *os, kb_gtime_t now)
{
    int64_t off = ks_part_log_start(os->part);
    int64_t end = ks_part_log_end(os->part);
    kp_buf_t buf;
    kp_buf_init(&buf);
    int rc = 0;
    while (off < end) {
        kp_buf_reset(&buf);
        rc = ks_part_read(os->part, off, READ_CHUNK, true, &buf);
        if (rc || !buf.len)
            break;
        int64_t next = off;
        kp_batch_iter_t it;
        kp_batch_iter_init(&it, buf.data, buf.len, false);
        const uint8_t *b;
        size_t blen;
        while (kp_batch_iter_next(&it, &b, &blen) == 1) {
            kp_records_t recs;
            kp_record_t rec;
            if (kp_records_init(&recs, b, blen, 64 * 1024 * 1024) == 0) {
                int64_t base = recs.hdr.base_offset;
                while (kp_records_next(&recs, &rec) == 1)
                    if (base + rec.offset_delta >= off)
                        apply_record(os, &rec, now);
                if (base + recs.hdr.last_offset_delta + 1 > next)
                    next = base + recs.hdr.last_offset_delta + 1;
                kp_records_deinit(&recs);
            } else {
                kp_batch_hdr_t h;
                if (kp_batch_hdr_parse(b, blen, &h) == 0 &&
                    h.base_offset + h.last_offset_delta + 1 > next)
                    next = h.base_offset + h.last_offset_delta + 1;
                os->skipped++;
            }
            os->since_snapshot += (int64_t)blen;
        }
        if (next <= off)
            break; /* no progress (unreadable tail): keep what was read, never spin */
        off = next;
    }
    kp_buf_deinit(&buf);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

int kb_ostore_open(ks_store_t *s, kb_gcoord_t *c, int64_t segment_bytes, kb_gtime_t now,
                   kb_ostore_t **out)
{
    kb_ostore_t *os = calloc(1, sizeof *os);
    if (!os)
        return K_ERR_NOMEM;
    os->store = s;
    os->coord = c;
    ks_topic_t *t = ks_topic_find(s, KB_OFFSETS_TOPIC, strlen(KB_OFFSETS_TOPIC));
    int rc = 0;
    if (!t) {
        ks_topic_config_t cfg;
        ks_topic_config_default(&cfg);
        if (segment_bytes > 0)
            cfg.segment_bytes = segment_bytes;
        if (cfg.segment_bytes > KB_OFFSETS_SEGMENT_MAX)
            cfg.segment_bytes = KB_OFFSETS_SEGMENT_MAX;
        cfg.retention_ms = -1;
        cfg.retention_bytes = -1;
        cfg.segment_ms = 7LL * 24 * 3600 * 1000;
        cfg.max_message_bytes = 64 * 1024 * 1024;
        cfg.cleanup_policy = KS_CLEANUP_COMPACT;
        rc = ks_topic_create(s, KB_OFFSETS_TOPIC, 1, &cfg, &t);
    } else if (!ks_cleanup_compacts(ks_topic_config(t)->cleanup_policy)) {
        rc = ks_topic_set_config(t, "cleanup.policy", "compact"); /* created before 2026-12 */
    }
    if (!rc && !(os->part = ks_topic_part(t, 0)))
        rc = K_ERR_NOENT;
    if (!rc) {
        os->threshold = ks_topic_config(t)->segment_bytes;
        if (os->threshold <= 0 || os->threshold > KB_OFFSETS_SEGMENT_MAX)
            os->threshold = KB_OFFSETS_SEGMENT_MAX;
        rc = replay(os, now);
    }
    if (rc) {
        free(os);
        return rc;
    }
    *out = os;
    return 0;
}

void kb_ostore_close(kb_ostore_t *os)
{
    if (!os)
        return;
    if (os->compacting)
        os->compacting->os = NULL;
    free(os);
}

ks_part_t *kb_ostore_part(kb_ostore_t *os)
{
    return os->part;
}

void kb_ostore_load_stats(const kb_ostore_t *os, int64_t *records, int64_t *skipped)
{
    *records = os->loaded;
    *skipped = os->skipped;
}

/*
 * The registry's log: topic `_schemas`, one partition, cleanup.policy=compact, written and read
 * through the storage API. Records use Confluent's key/value JSON layout, so a registry's
 * backup tools (and a Confluent Schema Registry pointed at a copy of the topic) read them:
 *
 *   key   {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}
 *   value {"subject":S,"version":V,"id":N,"schema":TEXT,["references":[...],]"deleted":B}
 *   key   {"keytype":"CONFIG","subject":S or null,"magic":0}
 *   value {"compatibilityLevel":"BACKWARD"}
 *   key   {"keytype":"DELETE_SUBJECT","subject":S,"magic":0}
 *   value {"subject":S,"version":LATEST}
 *   a null value is a tombstone (permanent delete of a version, removal of a config).
 * Keys are written with a fixed field order so compaction sees equal keys as equal bytes.
 *
 * Durability: a write appends one batch, applies it to memory (so the next request sees it and
 * ids stay unique), then waits for the storage flusher's fsync (ks_part_sync) before the caller
 * answers its client, as acks=all Produce does. Replay at open applies every record in log
 * order with the same reg_apply; unreadable records are counted and skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/core/clock.h"
#include "broker/kb.h"
#include "broker/registry/reg_int.h"
#include "protocol/kp_batch.h"

#define READ_CHUNK (1024 * 1024)
#define SEGMENT_BYTES (8 * 1024 * 1024)
#define REG_MAX_DEFERRED 1024

struct reg_write {
    kb_registry_t *r; /* NULL once the registry closed */
    reg_durable_fn done;
    void *ctx;
    reg_write_t *next;
};

/* ------------------------------------------------------------------------------------------ */
/* Keys and values                                                                              */

json_t *reg_key_schema(const char *subject, int32_t version)
{
    return json_pack("{s:s, s:s, s:i, s:i}", "keytype", "SCHEMA", "subject", subject, "version",
                     (int)version, "magic", 1);
}

json_t *reg_key_config(const char *subject)
{
    return json_pack("{s:s, s:s?, s:i}", "keytype", "CONFIG", "subject", subject, "magic", 0);
}

json_t *reg_key_mode(const char *subject)
{
    return json_pack("{s:s, s:s?, s:i}", "keytype", "MODE", "subject", subject, "magic", 0);
}

json_t *reg_key_delete_subject(const char *subject)
{
    return json_pack("{s:s, s:s, s:i}", "keytype", "DELETE_SUBJECT", "subject", subject, "magic",
                     0);
}

json_t *reg_value_schema(const char *subject, const reg_version_t *v, const reg_schema_t *s)
{
    json_t *o = json_pack("{s:s, s:i, s:i, s:s}", "subject", subject, "version", (int)v->version,
                          "id", (int)v->id, "schema", s->schema);
    if (o && s->refs && json_object_set(o, "references", s->refs) < 0) {
        json_decref(o);
        return NULL;
    }
    if (o && json_object_set_new(o, "deleted", json_boolean(v->deleted)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Replay                                                                                       */

static json_t *load_json(kp_bytes_t b)
{
    if (b.len < 0 || !b.ptr)
        return NULL;
    return json_loadb((const char *)b.ptr, (size_t)b.len, 0, NULL);
}

/* Records whose schema references were not known when they were read (see reg_apply). */
typedef struct {
    json_t *keys[REG_MAX_DEFERRED], *values[REG_MAX_DEFERRED];
    int n;
} deferred_t;

static bool same_key(json_t *a, json_t *b)
{
    return json_equal(a, b) != 0;
}

/* A record applied for a key makes an older deferred record of the same key moot. */
static void drop_deferred(deferred_t *d, json_t *key)
{
    for (int i = 0; i < d->n; i++)
        if (same_key(d->keys[i], key)) {
            json_decref(d->keys[i]);
            json_decref(d->values[i]);
            d->keys[i] = d->values[i] = NULL;
        }
}

static void apply_record(kb_registry_t *r, deferred_t *d, const kp_record_t *rec)
{
    json_t *key = load_json(rec->key);
    json_t *value = load_json(rec->value);
    int rc = key && (rec->value.len < 0 || value) ? reg_apply(r, key, value) : K_ERR_INVAL;
    if (rc == 0) {
        r->loaded++;
        drop_deferred(d, key);
    } else if (rc == K_ERR_NOENT && d->n < REG_MAX_DEFERRED) {
        d->keys[d->n] = json_incref(key);
        d->values[d->n++] = json_incref(value);
    } else {
        r->skipped++;
    }
    json_decref(key);
    json_decref(value);
}

/* Retries deferred records in log order until a pass applies none; the rest are skipped. */
static void apply_deferred(kb_registry_t *r, deferred_t *d)
{
    bool progress = true;
    while (progress) {
        progress = false;
        for (int i = 0; i < d->n; i++)
            if (d->keys[i] && reg_apply(r, d->keys[i], d->values[i]) == 0) {
                r->loaded++;
                json_decref(d->keys[i]);
                json_decref(d->values[i]);
                d->keys[i] = d->values[i] = NULL;
                progress = true;
            }
    }
    for (int i = 0; i < d->n; i++)
        if (d->keys[i]) {
            kb_log(KB_LOG_WARN, "registry: a schema in %s references one that does not exist; "
                   "skipped", REG_TOPIC);
            r->skipped++;
            json_decref(d->keys[i]);
            json_decref(d->values[i]);
        }
    d->n = 0;
}

/* Applies every record of one chunk of batches; returns the next offset to read. */
static int64_t replay_chunk(kb_registry_t *r, deferred_t *d, const kp_buf_t *buf, int64_t off)
{
    int64_t next = off;
    kp_batch_iter_t it;
    kp_batch_iter_init(&it, buf->data, buf->len, false);
    const uint8_t *b;
    size_t blen;
    while (kp_batch_iter_next(&it, &b, &blen) == 1) {
        kp_batch_hdr_t h;
        if (kp_batch_hdr_parse(b, blen, &h) < 0)
            break;
        kp_records_t recs;
        kp_record_t rec;
        if (kp_records_init(&recs, b, blen, 64 * 1024 * 1024) == 0) {
            while (kp_records_next(&recs, &rec) == 1)
                if (h.base_offset + rec.offset_delta >= off)
                    apply_record(r, d, &rec);
            kp_records_deinit(&recs);
        } else {
            r->skipped++;
        }
        if (h.base_offset + h.last_offset_delta + 1 > next)
            next = h.base_offset + h.last_offset_delta + 1;
    }
    return next;
}

static int replay(kb_registry_t *r)
{
    int64_t off = ks_part_log_start(r->part), end = ks_part_log_end(r->part);
    kp_buf_t buf;
    kp_buf_init(&buf);
    deferred_t *d = calloc(1, sizeof *d);
    int rc = d ? 0 : K_ERR_NOMEM;
    while (d && off < end) {
        kp_buf_reset(&buf);
        rc = ks_part_read(r->part, off, READ_CHUNK, true, &buf);
        if (rc < 0 || !buf.len)
            break;
        int64_t next = replay_chunk(r, d, &buf, off);
        if (next <= off)
            break; /* an unreadable tail: keep what was read, never spin */
        off = next;
    }
    if (d)
        apply_deferred(r, d);
    free(d);
    kp_buf_deinit(&buf);
    return rc;
}

int reg_store_open(kb_registry_t *r)
{
    ks_topic_t *t = ks_topic_find(r->store, REG_TOPIC, strlen(REG_TOPIC));
    int rc = 0;
    if (!t) {
        ks_topic_config_t cfg;
        ks_topic_config_default(&cfg);
        cfg.cleanup_policy = KS_CLEANUP_COMPACT; /* Confluent's setting: latest value per key */
        if (cfg.segment_bytes > SEGMENT_BYTES)
            cfg.segment_bytes = SEGMENT_BYTES;
        cfg.retention_ms = -1;
        cfg.retention_bytes = -1;
        rc = ks_topic_create(r->store, REG_TOPIC, 1, &cfg, &t);
        if (rc < 0) {
            kb_log(KB_LOG_ERROR, "registry: cannot create %s: %s", REG_TOPIC, k_strerror(rc));
            return rc;
        }
    }
    if (!(r->part = ks_topic_part(t, 0)))
        return K_ERR_NOENT;
    rc = replay(r);
    kb_log(rc < 0 ? KB_LOG_ERROR : KB_LOG_INFO,
           "registry: %s replayed: %lld records, %lld skipped, %d schemas, %d subjects%s",
           REG_TOPIC, (long long)r->loaded, (long long)r->skipped, r->n_schemas, r->n_subjects,
           rc < 0 ? " (read failed)" : "");
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Writes                                                                                       */

static void on_synced(void *arg, int status)
{
    reg_write_t *w = arg;
    kb_registry_t *r = w->r;
    if (r) {
        for (reg_write_t **pp = &r->writes; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        if (status < 0)
            kb_log(KB_LOG_ERROR, "registry: fsync of %s failed: %s", REG_TOPIC,
                   k_strerror(status));
        w->done(r, w->ctx, status);
    }
    free(w);
}

static int encode_batch(json_t *const *keys, json_t *const *values, int n, kp_buf_t *out)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *k = json_dumps(keys[i], JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *v = values[i] ? json_dumps(values[i], JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!k || (values[i] && !v))
            rc = K_ERR_NOMEM;
        else
            rc = kp_batch_builder_add(
                &bb, kb_wall_ms(), (kp_bytes_t){(const uint8_t *)k, (int32_t)strlen(k)},
                v ? (kp_bytes_t){(const uint8_t *)v, (int32_t)strlen(v)} : (kp_bytes_t){NULL, -1},
                NULL, 0);
        free(k);
        free(v);
    }
    if (rc == 0)
        rc = kp_batch_builder_finish(&bb, out);
    kp_batch_builder_deinit(&bb);
    return rc;
}

void reg_store_lost(kb_registry_t *r)
{
    kb_log(KB_LOG_ERROR, "registry: %s was deleted; schemas stay readable until the broker "
           "restarts, changes are refused", REG_TOPIC);
    r->part = NULL;
}

int reg_store_write(kb_registry_t *r, json_t *const *keys, json_t *const *values, int n,
                    reg_durable_fn done, void *ctx)
{
    if (!r->part)
        return K_ERR_CLOSED;
    kp_buf_t buf;
    kp_buf_init(&buf);
    int rc = encode_batch(keys, values, n, &buf);
    ks_append_result_t res;
    if (rc == 0)
        rc = ks_part_append(r->part, buf.data, buf.len, kb_wall_ms(), &res);
    kp_buf_deinit(&buf);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "registry: append to %s failed: %s", REG_TOPIC, k_strerror(rc));
        return rc;
    }
    for (int i = 0; i < n; i++)
        if (reg_apply(r, keys[i], values[i]) < 0)
            kb_log(KB_LOG_ERROR, "registry: a record just written did not apply");
    reg_write_t *w = calloc(1, sizeof *w);
    if (!w)
        return K_ERR_NOMEM; /* written and applied, but we cannot wait: the caller says 500 */
    *w = (reg_write_t){r, done, ctx, r->writes};
    r->writes = w;
    rc = ks_part_sync(r->part, res.last_offset + 1, on_synced, w);
    if (rc < 0) {
        r->writes = w->next; /* the callback will not run */
        free(w);
    }
    return rc;
}

void reg_store_close(kb_registry_t *r)
{
    while (r->writes) {
        reg_write_t *w = r->writes;
        r->writes = w->next;
        w->r = NULL; /* on_synced frees it later */
        w->done(r, w->ctx, K_ERR_CLOSED);
    }
}

/*
 * The registry object: open (create/replay `_schemas`), close, and the Produce-side check of a
 * Confluent-framed value. See registry.h.
 *
 * Confluent's wire framing of a serialized value: byte 0 = magic 0, bytes 1-4 = the schema id
 * (big-endian int32), then the Avro binary encoding of the value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kb.h"
#include "broker/registry/reg_int.h"

int kb_registry_open(ks_store_t *store, kb_registry_t **out)
{
    kb_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return K_ERR_NOMEM;
    r->store = store;
    r->global_compat = KB_COMPAT_BACKWARD;
    int rc = reg_store_open(r);
    if (rc < 0) {
        reg_state_free(r);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void kb_registry_close(kb_registry_t *r)
{
    if (!r)
        return;
    reg_store_close(r);
    reg_state_free(r);
    free(r);
}

void kb_registry_load_stats(const kb_registry_t *r, int64_t *loaded, int64_t *skipped)
{
    *loaded = r->loaded;
    *skipped = r->skipped;
}

int64_t kb_registry_framed_id(const uint8_t *data, size_t len)
{
    if (!data || len < 5 || data[0] != 0)
        return -1;
    return (int64_t)(((uint32_t)data[1] << 24) | ((uint32_t)data[2] << 16) |
                     ((uint32_t)data[3] << 8) | data[4]);
}

/* The subject a value's schema must be registered under (Confluent's naming strategies). */
static int subject_for(kb_registry_t *r, const char *topic, bool is_key, int strategy,
                       int64_t id, char *out, size_t outlen)
{
    const char *suffix = is_key ? "key" : "value";
    if (strategy == KS_SUBJECT_TOPIC)
        return snprintf(out, outlen, "%s-%s", topic, suffix) < (int)outlen ? 0 : K_ERR_INVAL;
    reg_schema_t *sc = id <= INT32_MAX ? reg_schema_by_id(r, (int32_t)id) : NULL;
    const kb_avro_node_t *root = sc ? kb_avro_root(sc->avro) : NULL;
    if (!root || root->type != KB_AVRO_RECORD)
        return K_ERR_NOENT; /* the record-name strategies need a record schema */
    int n = strategy == KS_SUBJECT_RECORD
                ? snprintf(out, outlen, "%s", root->fullname)
                : snprintf(out, outlen, "%s-%s", topic, root->fullname);
    return n < (int)outlen ? 0 : K_ERR_INVAL;
}

int kb_registry_check_value(kb_registry_t *r, const char *topic, bool is_key, int strategy,
                            const uint8_t *data, size_t len, bool full, char *msg,
                            size_t msglen)
{
    int64_t id = kb_registry_framed_id(data, len);
    const char *what = is_key ? "key" : "value";
    char subject[REG_MAX_SUBJECT + 8];
    if (id < 0) {
        snprintf(msg, msglen, "%s is not framed by a schema registry serializer (magic byte 0 + "
                 "4-byte schema id)", what);
        return K_ERR_INVAL;
    }
    if (subject_for(r, topic, is_key, strategy, id, subject, sizeof subject) < 0) {
        snprintf(msg, msglen, "%s schema id %lld is not a registered record schema", what,
                 (long long)id);
        return K_ERR_INVAL;
    }
    reg_subject_t *s = reg_subject_find(r, subject);
    bool registered = false;
    for (int i = 0; s && i < s->n && !registered; i++)
        registered = !s->v[i].deleted && s->v[i].id == id;
    if (!registered) {
        snprintf(msg, msglen, "%s schema id %lld is not registered under subject %.300s", what,
                 (long long)id, subject);
        return K_ERR_INVAL;
    }
    if (!full)
        return 0;
    reg_schema_t *sc = reg_schema_by_id(r, (int32_t)id);
    char why[256];
    if (!sc || kb_avro_validate(sc->avro, data + 5, len - 5, why, sizeof why) < 0) {
        snprintf(msg, msglen, "%s does not decode with schema id %lld (subject %.300s): %s", what,
                 (long long)id, subject, sc ? why : "schema missing");
        return K_ERR_INVAL;
    }
    return 0;
}

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

int kb_registry_check_value(kb_registry_t *r, const char *subject, const uint8_t *data,
                            size_t len, bool full, char *msg, size_t msglen)
{
    int64_t id = kb_registry_framed_id(data, len);
    if (id < 0) {
        snprintf(msg, msglen, "value is not framed by a schema registry serializer (magic byte "
                 "0 + 4-byte schema id); subject %s", subject);
        return K_ERR_INVAL;
    }
    reg_subject_t *s = reg_subject_find(r, subject);
    bool registered = false;
    for (int i = 0; s && i < s->n && !registered; i++)
        registered = !s->v[i].deleted && s->v[i].id == id;
    if (!registered) {
        snprintf(msg, msglen, "schema id %lld is not registered under subject %s", (long long)id,
                 subject);
        return K_ERR_INVAL;
    }
    if (!full)
        return 0;
    reg_schema_t *sc = reg_schema_by_id(r, (int32_t)id);
    char why[256];
    if (!sc || kb_avro_validate(sc->avro, data + 5, len - 5, why, sizeof why) < 0) {
        snprintf(msg, msglen, "value does not decode with schema id %lld (subject %s): %s",
                 (long long)id, subject, sc ? why : "schema missing");
        return K_ERR_INVAL;
    }
    return 0;
}

/*
 * The REST endpoints that change the registry: register, delete (soft, then permanent),
 * compatibility levels, plus the two that parse a schema without storing it (look up, test
 * compatibility). A change is written to `_schemas` and answered only after its fsync
 * (reg_store_write); until then the client waits.
 *
 * Confluent's rules kept here: the same schema registered again under a subject returns its
 * existing id and adds no version; a schema already registered under another subject gets the
 * same (global) id; new versions number on from the subject's highest version, soft-deleted
 * ones included; a permanent delete needs a soft delete first (40405 / 40407).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kb.h"
#include "broker/registry/reg_api.h"

typedef struct {
    kb_reg_reply_fn reply;
    void *ctx;
    char *body; /* the answer once durable */
} pending_t;

static void on_durable(kb_registry_t *r, void *arg, int status)
{
    (void)r;
    pending_t *p = arg;
    if (status < 0) {
        char *err = NULL;
        if (asprintf(&err, "{\"error_code\":50001,\"message\":\"Error in the backend datastore: "
                           "%s\"}",
                     k_strerror(status)) < 0)
            err = NULL;
        p->reply(p->ctx, 500, err, err ? strlen(err) : 0);
        free(p->body);
    } else {
        p->reply(p->ctx, 200, p->body, strlen(p->body));
    }
    free(p);
}

void reg_write_then_reply(reg_call_t *c, json_t **keys, json_t **values, int n, json_t *answer)
{
    pending_t *p = calloc(1, sizeof *p);
    char *body = answer ? json_dumps(answer, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(answer);
    bool ok = p && body;
    for (int i = 0; ok && i < n; i++)
        ok = keys[i] != NULL;
    int rc = K_ERR_NOMEM;
    if (ok) {
        *p = (pending_t){c->reply, c->ctx, body};
        rc = reg_store_write(c->r, keys, values, n, on_durable, p);
    }
    for (int i = 0; i < n; i++) {
        json_decref(keys[i]);
        json_decref(values[i]);
    }
    if (rc < 0) {
        free(p);
        free(body);
        reg_reply_error(c, 500, 50001, "Error in the backend datastore: %s", k_strerror(rc));
    }
}

bool reg_subject_ok(reg_call_t *c, const char *subject)
{
    size_t n = strlen(subject);
    bool ok = n > 0 && n <= REG_MAX_SUBJECT;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)subject[i] >= 0x20 && subject[i] != 0x7f;
    if (!ok)
        reg_reply_error(c, 422, 42208, "Invalid subject name (1..%d bytes, no control "
                        "characters)", REG_MAX_SUBJECT);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* A schema in a request body                                                                   */

typedef struct {
    kb_avro_schema_t *avro;
    char *identity;
    char *text; /* compact JSON of the submitted schema */
    json_t *refs; /* borrowed from the body; NULL when none */
} body_schema_t;

static void body_schema_free(body_schema_t *b)
{
    kb_avro_schema_free(b->avro);
    free(b->identity);
    free(b->text);
}

/* Answers 42201 (or 400) and returns < 0 when the body holds no valid Avro schema. */
static int body_schema(reg_call_t *c, json_t *body, body_schema_t *out)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(body, "schemaType"));
    const char *text = json_string_value(json_object_get(body, "schema"));
    json_t *refs = json_object_get(body, "references");
    char err[512] = "";
    if (type && strcmp(type, "AVRO")) {
        reg_reply_error(c, 422, 42201, "Invalid schema: schema type %.50s is not supported "
                        "(Depot's registry serves AVRO)", type);
        return K_ERR_INVAL;
    }
    if (!text || !*text) {
        reg_reply_error(c, 422, 42201, "Invalid schema: the body needs a \"schema\" string");
        return K_ERR_INVAL;
    }
    if (refs && !json_is_null(refs) && !json_is_array(refs)) {
        reg_reply_error(c, 422, 42201, "Invalid schema: \"references\" must be an array");
        return K_ERR_INVAL;
    }
    out->refs = refs && json_array_size(refs) ? refs : NULL;
    int rc = reg_parse(c->r, text, strlen(text), out->refs, &out->avro, &out->identity, err,
                       sizeof err);
    if (rc == 0) {
        json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        out->text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (!out->text)
            rc = K_ERR_NOMEM;
    }
    if (rc < 0) {
        if (rc == K_ERR_NOMEM)
            reg_reply_error(c, 500, 50001, "out of memory");
        else
            reg_reply_error(c, 422, 42201, "Invalid schema: %s", err);
        body_schema_free(out);
    }
    return rc;
}

/* The live versions' schemas, oldest first (into a malloc'ed array the caller frees). */
static int live_schemas(kb_registry_t *r, reg_subject_t *s, const kb_avro_schema_t ***out)
{
    *out = calloc((size_t)(s ? s->n : 0) + 1, sizeof **out);
    if (!*out)
        return K_ERR_NOMEM;
    int n = 0;
    for (int i = 0; s && i < s->n; i++) {
        reg_schema_t *sc = s->v[i].deleted ? NULL : reg_schema_by_id(r, s->v[i].id);
        if (sc)
            (*out)[n++] = sc->avro;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* POST /subjects/{s}/versions and POST /subjects/{s}                                          */

static reg_version_t *same_in_subject(kb_registry_t *r, reg_subject_t *s, const char *identity,
                                      bool include_deleted)
{
    for (int i = s ? s->n - 1 : -1; i >= 0; i--) {
        reg_schema_t *sc = reg_schema_by_id(r, s->v[i].id);
        if ((include_deleted || !s->v[i].deleted) && sc && !strcmp(sc->identity, identity))
            return &s->v[i];
    }
    return NULL;
}

static void do_register(reg_call_t *c, const char *subject, body_schema_t *bs)
{
    reg_subject_t *s = reg_subject_find(c->r, subject);
    reg_version_t *same = same_in_subject(c->r, s, bs->identity, false);
    if (same) {
        reg_reply_json(c, 200, json_pack("{s:i}", "id", (int)same->id));
        return;
    }
    const kb_avro_schema_t **existing;
    int n = live_schemas(c->r, s, &existing);
    char msg[700];
    kb_compat_t level = reg_subject_compat(c->r, s);
    bool ok = n >= 0 && kb_avro_compatible(level, bs->avro, existing, n, msg, sizeof msg);
    free(existing);
    if (!ok) {
        reg_reply_error(c, 409, 409,
                        "Schema being registered is incompatible with an earlier schema for "
                        "subject \"%.200s\", details: [%s] (compatibility %s)",
                        subject, n < 0 ? "out of memory" : msg, kb_compat_name(level));
        return;
    }
    reg_schema_t *known = reg_schema_by_identity(c->r, bs->identity);
    reg_schema_t fresh = {.id = c->r->max_id + 1, .schema = bs->text, .refs = bs->refs};
    reg_schema_t *sc = known ? known : &fresh;
    reg_version_t v = {s ? reg_subject_max_version(s) + 1 : 1, sc->id, false};
    json_t *keys[1] = {reg_key_schema(subject, v.version)};
    json_t *values[1] = {reg_value_schema(subject, &v, sc)};
    reg_write_then_reply(c, keys, values, 1, json_pack("{s:i}", "id", (int)sc->id));
}

/*
 * IMPORT mode: the schema keeps the id (and the version) it had in the registry it comes
 * from, and no compatibility check runs (the history is copied as it was). An id already
 * holding another schema, or the same schema already under another id, is 42207; a version
 * already holding another schema is 42207 too. Without an id the schema gets the usual one.
 */
static void do_import(reg_call_t *c, const char *subject, body_schema_t *bs, int32_t id,
                      int32_t version)
{
    reg_subject_t *s = reg_subject_find(c->r, subject);
    reg_schema_t *by_id = id > 0 ? reg_schema_by_id(c->r, id) : NULL;
    reg_schema_t *known = reg_schema_by_identity(c->r, bs->identity);
    if (by_id && strcmp(by_id->identity, bs->identity)) {
        reg_reply_error(c, 422, 42207, "Overwrite new schema with id %d is not permitted.",
                        (int)id);
        return;
    }
    if (known && id > 0 && known->id != id) {
        reg_reply_error(c, 422, 42207, "Schema already registered with id %d instead of input "
                        "id %d", (int)known->id, (int)id);
        return;
    }
    if (id <= 0)
        id = known ? known->id : c->r->max_id + 1;
    reg_version_t *at = version > 0 && s ? reg_version_find(s, version, true) : NULL;
    if (at && at->id != id) {
        reg_reply_error(c, 422, 42207, "Overwrite new schema in subject '%.300s' version %d is "
                        "not permitted.", subject, (int)version);
        return;
    }
    reg_version_t *same = version > 0 ? at : same_in_subject(c->r, s, bs->identity, false);
    if (same && !same->deleted) { /* imported before: nothing to write */
        reg_reply_json(c, 200, json_pack("{s:i}", "id", (int)id));
        return;
    }
    reg_schema_t fresh = {.id = id, .schema = bs->text, .refs = bs->refs};
    reg_schema_t *sc = known ? known : &fresh;
    reg_version_t v = {version > 0 ? version : (s ? reg_subject_max_version(s) + 1 : 1), id,
                       false};
    json_t *keys[1] = {reg_key_schema(subject, v.version)};
    json_t *values[1] = {reg_value_schema(subject, &v, sc)};
    reg_write_then_reply(c, keys, values, 1, json_pack("{s:i}", "id", (int)id));
}

/* A positive integer field of the body (the import's id or version), 0 when absent or not
 * positive (clients send -1 or null for "none"); < 0 after answering 422 when not a number. */
static int32_t body_int(reg_call_t *c, json_t *body, const char *name)
{
    json_t *j = json_object_get(body, name);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) > INT32_MAX) {
        reg_reply_error(c, 422, 42201, "Invalid schema: \"%s\" must be an integer", name);
        return -1;
    }
    return json_integer_value(j) > 0 ? (int32_t)json_integer_value(j) : 0;
}

static void post_register(reg_call_t *c)
{
    const char *subject = c->seg[1];
    if (!reg_subject_ok(c, subject) || !reg_mode_writable(c, subject))
        return;
    json_t *body = reg_body(c);
    int32_t id = body ? body_int(c, body, "id") : -1;
    int32_t version = id >= 0 ? body_int(c, body, "version") : -1;
    bool import = reg_subject_mode(c->r, reg_subject_find(c->r, subject)) == REG_MODE_IMPORT;
    if (version >= 0 && (id || version) && !import) {
        reg_reply_error(c, 422, 42205, "Subject '%.300s' is not in import mode: a schema id or "
                        "version is only given in IMPORT mode", subject);
        version = -1;
    }
    body_schema_t bs;
    if (version < 0 || body_schema(c, body, &bs) < 0) {
        json_decref(body);
        return;
    }
    if (import)
        do_import(c, subject, &bs, id, version);
    else
        do_register(c, subject, &bs);
    body_schema_free(&bs);
    json_decref(body);
}

static void post_lookup(reg_call_t *c)
{
    bool del = reg_query_true(c, "deleted");
    reg_subject_t *s = reg_need_subject(c, c->seg[1], del);
    json_t *body = s ? reg_body(c) : NULL;
    body_schema_t bs;
    if (!body || body_schema(c, body, &bs) < 0) {
        json_decref(body);
        return;
    }
    reg_version_t *v = same_in_subject(c->r, s, bs.identity, del);
    if (v)
        reg_reply_json(c, 200, reg_version_json(s, v, reg_schema_by_id(c->r, v->id)));
    else
        reg_reply_error(c, 404, 40403, "Schema not found");
    body_schema_free(&bs);
    json_decref(body);
}

/* ------------------------------------------------------------------------------------------ */
/* DELETE /subjects/{s}[/versions/{v}]                                                          */

static void delete_subject(reg_call_t *c)
{
    bool permanent = reg_query_true(c, "permanent");
    reg_subject_t *s = reg_need_subject(c, c->seg[1], true);
    if (!s || !reg_mode_writable(c, s->name))
        return;
    int live = reg_subject_live(s);
    if (!permanent && live == 0) {
        reg_reply_error(c, 404, 40404, "Subject '%.300s' was soft deleted.Set permanent=true to "
                        "delete permanently", s->name);
        return;
    }
    if (permanent && live > 0) {
        reg_reply_error(c, 404, 40405, "Subject '%.300s' was not deleted first before being "
                        "permanently deleted", s->name);
        return;
    }
    json_t *answer = json_array();
    for (int i = 0; answer && i < s->n; i++)
        if (permanent || !s->v[i].deleted)
            json_array_append_new(answer, json_integer(s->v[i].version));
    if (!permanent) {
        json_t *keys[1] = {reg_key_delete_subject(s->name)};
        json_t *values[1] = {json_pack("{s:s, s:i}", "subject", s->name, "version",
                                       (int)reg_subject_max_version(s))};
        reg_write_then_reply(c, keys, values, 1, answer);
        return;
    }
    /* Tombstones for every version, the delete marker and the subject's config and mode. */
    int n = s->n + 3;
    json_t **keys = calloc((size_t)n, sizeof *keys), **values = calloc((size_t)n, sizeof *values);
    if (!keys || !values) {
        free(keys), free(values), json_decref(answer);
        reg_reply_error(c, 500, 50001, "out of memory");
        return;
    }
    for (int i = 0; i < s->n; i++)
        keys[i] = reg_key_schema(s->name, s->v[i].version);
    n = s->n;
    keys[n++] = reg_key_delete_subject(s->name);
    if (s->has_compat) /* s is freed once the tombstones apply */
        keys[n++] = reg_key_config(s->name);
    if (s->has_mode)
        keys[n++] = reg_key_mode(s->name);
    reg_write_then_reply(c, keys, values, n, answer);
    free(keys), free(values);
}

static void delete_version(reg_call_t *c)
{
    bool permanent = reg_query_true(c, "permanent");
    reg_subject_t *s = reg_need_subject(c, c->seg[1], true);
    reg_version_t *v = s ? reg_need_version(c, s, c->seg[3], true) : NULL;
    if (!v || !reg_mode_writable(c, s->name))
        return;
    if (!permanent && v->deleted) {
        reg_reply_error(c, 404, 40406, "Subject '%.300s' Version %d was soft deleted.Set "
                        "permanent=true to delete permanently", s->name, (int)v->version);
        return;
    }
    if (permanent && !v->deleted) {
        reg_reply_error(c, 404, 40407, "Subject '%.300s' Version %d was not deleted first before "
                        "being permanently deleted", s->name, (int)v->version);
        return;
    }
    reg_version_t dv = *v;
    dv.deleted = true;
    reg_schema_t *sc = reg_schema_by_id(c->r, v->id);
    json_t *keys[1] = {reg_key_schema(s->name, v->version)};
    json_t *values[1] = {permanent || !sc ? NULL : reg_value_schema(s->name, &dv, sc)};
    if (!permanent && !values[0]) {
        json_decref(keys[0]);
        reg_reply_error(c, 500, 50001, "out of memory");
        return;
    }
    reg_write_then_reply(c, keys, values, 1, json_integer(v->version));
}

/* ------------------------------------------------------------------------------------------ */
/* /config                                                                                      */

static void put_config(reg_call_t *c, const char *subject)
{
    if (subject && !reg_subject_ok(c, subject))
        return;
    json_t *body = reg_body(c);
    if (!body)
        return;
    const char *level = json_string_value(json_object_get(body, "compatibility"));
    if (!level)
        level = json_string_value(json_object_get(body, "compatibilityLevel"));
    kb_compat_t cl;
    if (kb_compat_parse(level, &cl) < 0) {
        reg_reply_error(c, 422, 42203,
                        "Invalid compatibility level. Valid values are none, backward, forward, "
                        "full, backward_transitive, forward_transitive, and full_transitive");
        json_decref(body);
        return;
    }
    json_decref(body);
    json_t *keys[1] = {reg_key_config(subject)};
    json_t *values[1] = {json_pack("{s:s}", "compatibilityLevel", kb_compat_name(cl))};
    reg_write_then_reply(c, keys, values, 1,
                         json_pack("{s:s}", "compatibility", kb_compat_name(cl)));
}

static void delete_config(reg_call_t *c, const char *subject)
{
    kb_compat_t prev = c->r->global_compat;
    if (subject) {
        reg_subject_t *s = reg_subject_find(c->r, subject);
        if (!s || !s->has_compat) {
            reg_reply_error(c, 404, 40408, "Subject '%.300s' does not have subject-level "
                            "compatibility configured", subject);
            return;
        }
        prev = s->compat;
    }
    json_t *keys[1] = {reg_key_config(subject)};
    json_t *values[1] = {NULL};
    reg_write_then_reply(c, keys, values, 1,
                     json_pack("{s:s}", "compatibilityLevel", kb_compat_name(prev)));
}

/* ------------------------------------------------------------------------------------------ */
/* POST /compatibility/subjects/{s}/versions[/{v}]                                             */

static void post_compatibility(reg_call_t *c)
{
    const char *vtext = c->nseg == 5 ? c->seg[4] : NULL;
    reg_subject_t *s = reg_subject_find(c->r, c->seg[2]);
    if (s && !reg_subject_live(s))
        s = NULL;
    if (!s && vtext) {
        reg_reply_error(c, 404, 40401, "Subject '%.300s' not found.", c->seg[2]);
        return;
    }
    int32_t version = -1;
    if (vtext && reg_parse_version(c, vtext, &version) < 0)
        return;
    reg_version_t *v = s && vtext ? reg_version_find(s, version, false) : NULL;
    if (s && vtext && !v) {
        reg_reply_error(c, 404, 40402, "Version %.100s not found.", vtext);
        return;
    }
    json_t *body = reg_body(c);
    body_schema_t bs;
    if (!body || body_schema(c, body, &bs) < 0) {
        json_decref(body);
        return;
    }
    kb_compat_t level = reg_subject_compat(c->r, s);
    const kb_avro_schema_t **existing = NULL;
    int n = 0;
    if (v && version != -1) { /* one named version: the level's direction, that version only */
        reg_schema_t *sc = reg_schema_by_id(c->r, v->id);
        existing = calloc(1, sizeof *existing);
        n = existing && sc ? 1 : -1;
        if (n == 1)
            existing[0] = sc->avro;
    } else {
        n = live_schemas(c->r, s, &existing);
    }
    char msg[700] = "";
    bool ok = n >= 0 && kb_avro_compatible(level, bs.avro, existing, n, msg, sizeof msg);
    json_t *answer = json_pack("{s:b}", "is_compatible", ok);
    if (answer && reg_query_true(c, "verbose"))
        json_object_set_new(answer, "messages", ok ? json_array() : json_pack("[s]", msg));
    reg_reply_json(c, 200, answer);
    free(existing);
    body_schema_free(&bs);
    json_decref(body);
}

/* ------------------------------------------------------------------------------------------ */

bool reg_route_writes(reg_call_t *c, const char *m, bool *known)
{
    bool post = !strcmp(m, "POST"), del = !strcmp(m, "DELETE"), put = !strcmp(m, "PUT");
    bool subj = c->nseg >= 2 && !strcmp(c->seg[0], "subjects");
    *known = true;
    if (subj && c->nseg == 2) {
        if (post)
            post_lookup(c);
        else if (del)
            delete_subject(c);
        return post || del;
    }
    if (subj && c->nseg == 3 && !strcmp(c->seg[2], "versions"))
        return post ? (post_register(c), true) : false;
    if (subj && c->nseg == 4 && !strcmp(c->seg[2], "versions"))
        return del ? (delete_version(c), true) : false;
    if (c->nseg >= 1 && c->nseg <= 2 && !strcmp(c->seg[0], "config") && (put || del)) {
        const char *subject = c->nseg == 2 ? c->seg[1] : NULL;
        if (put)
            put_config(c, subject);
        else
            delete_config(c, subject);
        return true;
    }
    if (c->nseg >= 1 && c->nseg <= 2 && !strcmp(c->seg[0], "mode") && (put || del)) {
        const char *subject = c->nseg == 2 ? c->seg[1] : NULL;
        if (put)
            reg_mode_put(c, subject);
        else
            reg_mode_delete(c, subject);
        return true;
    }
    if ((c->nseg == 4 || c->nseg == 5) && !strcmp(c->seg[0], "compatibility") &&
        !strcmp(c->seg[1], "subjects") && !strcmp(c->seg[3], "versions"))
        return post ? (post_compatibility(c), true) : false;
    *known = c->nseg >= 1 && c->nseg <= 2 &&
             (!strcmp(c->seg[0], "config") || !strcmp(c->seg[0], "mode"));
    return false;
}

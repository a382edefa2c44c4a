/*
 * The registry's in-memory model and reg_apply, which turns one `_schemas` record into a
 * change of that model. Record kinds (Confluent's layout, see reg_store.c):
 *   SCHEMA          value {subject, version, id, schema, schemaType?, references?, deleted}:
 *                   the version exists (deleted = soft-deleted); a null value removes it
 *                   (permanent delete). The schema text defines the id if it is new.
 *   CONFIG          value {compatibilityLevel}: the subject's (or, with a null subject, the
 *                   global) level; a null value removes it.
 *   DELETE_SUBJECT  value {subject, version}: soft-deletes every version up to version.
 *   MODE            value {mode}: the subject's (or, with a null subject, the global) mode,
 *                   READWRITE, READONLY or IMPORT; a null value removes it.
 *   anything else (NOOP, CLEAR_SUBJECT, ...) is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/kb.h"
#include "broker/registry/reg_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Lookups                                                                                      */

static int subject_index(const kb_registry_t *r, const char *name, bool *found)
{
    int lo = 0, hi = r->n_subjects;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(r->subjects[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

reg_subject_t *reg_subject_find(kb_registry_t *r, const char *name)
{
    bool found;
    int i = subject_index(r, name, &found);
    return found ? r->subjects[i] : NULL;
}

reg_schema_t *reg_schema_by_id(kb_registry_t *r, int32_t id)
{
    int lo = 0, hi = r->n_schemas;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (r->schemas[mid]->id == id)
            return r->schemas[mid];
        if (r->schemas[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

reg_schema_t *reg_schema_by_identity(kb_registry_t *r, const char *identity)
{
    for (int i = 0; i < r->n_schemas; i++)
        if (!strcmp(r->schemas[i]->identity, identity))
            return r->schemas[i];
    return NULL;
}

reg_version_t *reg_version_find(reg_subject_t *s, int32_t version, bool include_deleted)
{
    for (int i = s->n - 1; i >= 0; i--) {
        reg_version_t *v = &s->v[i];
        if (version == -1 && (include_deleted || !v->deleted))
            return v;
        if (v->version == version)
            return include_deleted || !v->deleted ? v : NULL;
    }
    return NULL;
}

int reg_subject_live(const reg_subject_t *s)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += !s->v[i].deleted;
    return n;
}

int32_t reg_subject_max_version(const reg_subject_t *s)
{
    return s->n ? s->v[s->n - 1].version : 0;
}

kb_compat_t reg_subject_compat(const kb_registry_t *r, const reg_subject_t *s)
{
    return s && s->has_compat ? s->compat : r->global_compat;
}

reg_mode_t reg_subject_mode(const kb_registry_t *r, const reg_subject_t *s)
{
    return s && s->has_mode ? s->mode : r->global_mode;
}

static const char *const mode_names[] = {"READWRITE", "READONLY", "IMPORT"};

const char *reg_mode_name(reg_mode_t m)
{
    return (unsigned)m < 3 ? mode_names[m] : "READWRITE";
}

int reg_mode_parse(const char *text, reg_mode_t *out)
{
    for (int i = 0; text && i < 3; i++)
        if (!strcasecmp(text, mode_names[i])) {
            *out = (reg_mode_t)i;
            return 0;
        }
    return K_ERR_INVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing with references                                                                      */

typedef struct {
    const char *texts[REG_MAX_REFS];
    size_t lens[REG_MAX_REFS];
    int32_t ids[REG_MAX_REFS];
    int n;
} ref_list_t;

/* Depth-first: a referenced schema's own references come before it. */
static int collect_refs(kb_registry_t *r, json_t *refs, ref_list_t *out, int depth, char *err,
                        size_t errlen)
{
    if (!refs || json_is_null(refs))
        return 0;
    if (!json_is_array(refs) || depth > REG_MAX_REF_DEPTH) {
        snprintf(err, errlen, "\"references\" must be an array, nested at most %d deep",
                 REG_MAX_REF_DEPTH);
        return K_ERR_INVAL;
    }
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref) {
        const char *subject = json_string_value(json_object_get(ref, "subject"));
        json_t *jv = json_object_get(ref, "version");
        int32_t version = json_is_integer(jv) ? (int32_t)json_integer_value(jv) : -1;
        reg_subject_t *s = subject ? reg_subject_find(r, subject) : NULL;
        reg_version_t *v = s ? reg_version_find(s, version, true) : NULL;
        reg_schema_t *sc = v ? reg_schema_by_id(r, v->id) : NULL;
        if (!sc || !json_is_string(json_object_get(ref, "name"))) {
            snprintf(err, errlen, "reference to subject '%.200s' version %d: no such schema",
                     subject ? subject : "(none)", (int)version);
            return K_ERR_NOENT;
        }
        bool have = false;
        for (int k = 0; k < out->n && !have; k++)
            have = out->ids[k] == sc->id;
        if (have)
            continue;
        int rc = collect_refs(r, sc->refs, out, depth + 1, err, errlen);
        if (rc < 0)
            return rc;
        if (out->n == REG_MAX_REFS) {
            snprintf(err, errlen, "more than %d referenced schemas", REG_MAX_REFS);
            return K_ERR_INVAL;
        }
        out->texts[out->n] = sc->schema;
        out->lens[out->n] = strlen(sc->schema);
        out->ids[out->n++] = sc->id;
    }
    return 0;
}

int reg_parse(kb_registry_t *r, const char *text, size_t len, json_t *refs,
              kb_avro_schema_t **out, char **identity, char *err, size_t errlen)
{
    *out = NULL;
    *identity = NULL;
    ref_list_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return K_ERR_NOMEM;
    int rc = collect_refs(r, refs, rl, 0, err, errlen);
    if (rc == 0)
        rc = kb_avro_parse(text, len, rl->texts, rl->lens, rl->n, out, err, errlen);
    free(rl);
    if (rc < 0)
        return rc == K_ERR_NOMEM || rc == K_ERR_NOENT ? rc : K_ERR_INVAL;
    char *id = kb_avro_identity(*out);
    char *rtext = refs && json_array_size(refs)
                      ? json_dumps(refs, JSON_COMPACT | JSON_SORT_KEYS)
                      : strdup("");
    if (!id || !rtext || asprintf(identity, "%s|%s", id, rtext) < 0) {
        *identity = NULL;
        free(id), free(rtext);
        kb_avro_schema_free(*out);
        *out = NULL;
        return K_ERR_NOMEM;
    }
    free(id), free(rtext);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Changes                                                                                      */

static int grow(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, elem * (size_t)ncap);
    if (!p)
        return K_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static reg_subject_t *subject_get(kb_registry_t *r, const char *name)
{
    bool found;
    int i = subject_index(r, name, &found);
    if (found)
        return r->subjects[i];
    if (grow((void **)&r->subjects, &r->cap_subjects, r->n_subjects, sizeof *r->subjects) < 0)
        return NULL;
    reg_subject_t *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    memmove(&r->subjects[i + 1], &r->subjects[i],
            sizeof *r->subjects * (size_t)(r->n_subjects - i));
    r->subjects[i] = s;
    r->n_subjects++;
    return s;
}

static void subject_drop_if_empty(kb_registry_t *r, reg_subject_t *s)
{
    if (s->n || s->has_compat || s->has_mode)
        return;
    bool found;
    int i = subject_index(r, s->name, &found);
    memmove(&r->subjects[i], &r->subjects[i + 1],
            sizeof *r->subjects * (size_t)(r->n_subjects - i - 1));
    r->n_subjects--;
    free(s->v);
    free(s->name);
    free(s);
}

static void schema_free(reg_schema_t *sc)
{
    if (!sc)
        return;
    free(sc->schema);
    json_decref(sc->refs);
    free(sc->identity);
    kb_avro_schema_free(sc->avro);
    free(sc);
}

/* Defines schema id from a SCHEMA record's value if it is not known yet. */
static int schema_define(kb_registry_t *r, int32_t id, json_t *value)
{
    if (reg_schema_by_id(r, id))
        return 0;
    const char *text = json_string_value(json_object_get(value, "schema"));
    const char *type = json_string_value(json_object_get(value, "schemaType"));
    json_t *refs = json_object_get(value, "references");
    char err[256] = "";
    if (!text || (type && strcmp(type, "AVRO")))
        return K_ERR_INVAL;
    reg_schema_t *sc = calloc(1, sizeof *sc);
    if (!sc)
        return K_ERR_NOMEM;
    sc->id = id;
    int rc = reg_parse(r, text, strlen(text), refs, &sc->avro, &sc->identity, err, sizeof err);
    if (rc == 0 && !(sc->schema = strdup(text)))
        rc = K_ERR_NOMEM;
    if (rc == 0 && refs && json_array_size(refs))
        sc->refs = json_incref(refs);
    if (rc == 0)
        rc = grow((void **)&r->schemas, &r->cap_schemas, r->n_schemas, sizeof *r->schemas);
    if (rc < 0) {
        if (rc != K_ERR_NOENT) /* a missing reference may still come (replay retries it) */
            kb_log(KB_LOG_WARN, "registry: schema id %d is unreadable (%s); skipped", (int)id,
                   err[0] ? err : k_strerror(rc));
        schema_free(sc);
        return rc;
    }
    int i = r->n_schemas;
    while (i > 0 && r->schemas[i - 1]->id > id)
        i--;
    memmove(&r->schemas[i + 1], &r->schemas[i], sizeof *r->schemas * (size_t)(r->n_schemas - i));
    r->schemas[i] = sc;
    r->n_schemas++;
    if (id > r->max_id)
        r->max_id = id;
    return 0;
}

static int version_set(reg_subject_t *s, int32_t version, int32_t id, bool deleted)
{
    int i = s->n;
    while (i > 0 && s->v[i - 1].version > version)
        i--;
    if (i > 0 && s->v[i - 1].version == version) {
        s->v[i - 1].id = id;
        s->v[i - 1].deleted = deleted;
        return 0;
    }
    if (grow((void **)&s->v, &s->cap, s->n, sizeof *s->v) < 0)
        return K_ERR_NOMEM;
    memmove(&s->v[i + 1], &s->v[i], sizeof *s->v * (size_t)(s->n - i));
    s->v[i] = (reg_version_t){version, id, deleted};
    s->n++;
    return 0;
}

static int apply_schema(kb_registry_t *r, json_t *key, json_t *value)
{
    const char *subject = json_string_value(json_object_get(key, "subject"));
    json_t *jv = json_object_get(key, "version");
    if (!subject || !json_is_integer(jv) || json_integer_value(jv) < 1 ||
        json_integer_value(jv) > INT32_MAX)
        return K_ERR_INVAL;
    int32_t version = (int32_t)json_integer_value(jv);
    reg_subject_t *s = reg_subject_find(r, subject);
    if (!value || json_is_null(value)) { /* permanent delete */
        if (!s)
            return 0;
        for (int i = 0; i < s->n; i++)
            if (s->v[i].version == version) {
                memmove(&s->v[i], &s->v[i + 1], sizeof *s->v * (size_t)(s->n - i - 1));
                s->n--;
                break;
            }
        subject_drop_if_empty(r, s);
        return 0;
    }
    json_t *jid = json_object_get(value, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX)
        return K_ERR_INVAL;
    int32_t id = (int32_t)json_integer_value(jid);
    int rc = schema_define(r, id, value);
    if (rc < 0)
        return rc;
    if (!s && !(s = subject_get(r, subject)))
        return K_ERR_NOMEM;
    return version_set(s, version, id, json_is_true(json_object_get(value, "deleted")));
}

static int apply_config(kb_registry_t *r, json_t *key, json_t *value)
{
    json_t *js = json_object_get(key, "subject");
    const char *subject = json_string_value(js);
    kb_compat_t level = KB_COMPAT_BACKWARD;
    bool set = value && !json_is_null(value);
    if (set && kb_compat_parse(json_string_value(json_object_get(value, "compatibilityLevel")),
                               &level) < 0)
        return K_ERR_INVAL;
    if (!subject) {
        r->global_compat = set ? level : KB_COMPAT_BACKWARD;
        r->global_set = set;
        return 0;
    }
    reg_subject_t *s = set ? subject_get(r, subject) : reg_subject_find(r, subject);
    if (set && !s)
        return K_ERR_NOMEM;
    if (!s)
        return 0;
    s->has_compat = set;
    s->compat = level;
    subject_drop_if_empty(r, s);
    return 0;
}

static int apply_mode(kb_registry_t *r, json_t *key, json_t *value)
{
    const char *subject = json_string_value(json_object_get(key, "subject"));
    reg_mode_t mode = REG_MODE_READWRITE;
    bool set = value && !json_is_null(value);
    if (set && reg_mode_parse(json_string_value(json_object_get(value, "mode")), &mode) < 0)
        return K_ERR_INVAL;
    if (!subject) {
        r->global_mode = mode;
        return 0;
    }
    reg_subject_t *s = set ? subject_get(r, subject) : reg_subject_find(r, subject);
    if (set && !s)
        return K_ERR_NOMEM;
    if (!s)
        return 0;
    s->has_mode = set;
    s->mode = mode;
    subject_drop_if_empty(r, s);
    return 0;
}

static int apply_delete_subject(kb_registry_t *r, json_t *key, json_t *value)
{
    const char *subject = json_string_value(json_object_get(key, "subject"));
    json_t *jv = json_object_get(value, "version");
    if (!subject || !json_is_integer(jv))
        return K_ERR_INVAL;
    reg_subject_t *s = reg_subject_find(r, subject);
    for (int i = 0; s && i < s->n; i++)
        if (s->v[i].version <= json_integer_value(jv))
            s->v[i].deleted = true;
    return 0;
}

int reg_apply(kb_registry_t *r, json_t *key, json_t *value)
{
    const char *kt = json_string_value(json_object_get(key, "keytype"));
    if (!kt)
        return K_ERR_INVAL;
    if (!strcmp(kt, "SCHEMA"))
        return apply_schema(r, key, value);
    if (!strcmp(kt, "CONFIG"))
        return apply_config(r, key, value);
    if (!strcmp(kt, "MODE"))
        return apply_mode(r, key, value);
    if (!strcmp(kt, "DELETE_SUBJECT")) /* its tombstone (permanent delete) changes nothing */
        return value && !json_is_null(value) ? apply_delete_subject(r, key, value) : 0;
    return K_ERR_INVAL;
}

void reg_state_free(kb_registry_t *r)
{
    for (int i = 0; i < r->n_schemas; i++)
        schema_free(r->schemas[i]);
    free(r->schemas);
    for (int i = 0; i < r->n_subjects; i++) {
        free(r->subjects[i]->v);
        free(r->subjects[i]->name);
        free(r->subjects[i]);
    }
    free(r->subjects);
    r->schemas = NULL;
    r->subjects = NULL;
    r->n_schemas = r->n_subjects = 0;
}

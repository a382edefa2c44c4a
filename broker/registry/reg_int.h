/*
 * Schema registry internals shared by broker/registry/reg_*.c.
 *
 * The state is an in-memory image of the `_schemas` log (reg_store.c): every change is a
 * (key, value) JSON record appended there first and then applied with reg_apply, the same
 * function the replay at start uses, so memory and log cannot disagree.
 *
 * Ownership: the kb_registry_t owns every subject, version and schema (and their strings and
 * parsed Avro models). Loop thread only.
 */
#ifndef KB_REG_INT_H
#define KB_REG_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/kb.h"
#include "broker/registry/avro.h"
#include "broker/registry/registry.h"

#define REG_TOPIC "_schemas"
#define REG_MAX_SUBJECT 1024   /* bytes of a subject name */
#define REG_MAX_REF_DEPTH 32   /* references of references ... */
#define REG_MAX_REFS 256       /* referenced schemas pulled into one parse */

/* One schema, shared by every subject version that registered it (ids are global). */
typedef struct {
    int32_t id;
    char *schema;      /* the text served back (compact JSON) */
    json_t *refs;      /* [{"name","subject","version"}] or NULL when none */
    char *identity;    /* identity form + references: two registrations are the same schema
                        * when these are equal (avro.h) */
    kb_avro_schema_t *avro;
} reg_schema_t;

/* Confluent's registry modes (the global one and per subject). */
typedef enum { REG_MODE_READWRITE = 0, REG_MODE_READONLY, REG_MODE_IMPORT } reg_mode_t;

typedef struct {
    int32_t version;
    int32_t id;
    bool deleted; /* soft-deleted */
} reg_version_t;

typedef struct {
    char *name;
    reg_version_t *v; /* ascending versions; permanently deleted ones are removed */
    int n, cap;
    bool has_compat;
    kb_compat_t compat;
    bool has_mode; /* a MODE record for this subject exists */
    reg_mode_t mode;
} reg_subject_t;

typedef struct reg_write reg_write_t;

struct kb_registry {
    ks_store_t *store;
    ks_part_t *part;
    reg_schema_t **schemas; /* ascending ids */
    int n_schemas, cap_schemas;
    reg_subject_t **subjects; /* ascending names */
    int n_subjects, cap_subjects;
    kb_compat_t global_compat;
    bool global_set; /* a CONFIG record for the global level exists */
    reg_mode_t global_mode;
    int32_t max_id;
    reg_write_t *writes; /* waiting for their fsync */
    int64_t loaded, skipped;
};

/* ---- reg_state.c: the model -------------------------------------------------------------- */

reg_subject_t *reg_subject_find(kb_registry_t *r, const char *name);
reg_schema_t *reg_schema_by_id(kb_registry_t *r, int32_t id);
reg_schema_t *reg_schema_by_identity(kb_registry_t *r, const char *identity);
/* The version entry, or NULL. version -1 = the latest not deleted (or latest at all when
 * include_deleted). */
reg_version_t *reg_version_find(reg_subject_t *s, int32_t version, bool include_deleted);
/* Versions not soft-deleted. */
int reg_subject_live(const reg_subject_t *s);
int32_t reg_subject_max_version(const reg_subject_t *s);
kb_compat_t reg_subject_compat(const kb_registry_t *r, const reg_subject_t *s);
/* The subject's mode, else the global one (s may be NULL). */
reg_mode_t reg_subject_mode(const kb_registry_t *r, const reg_subject_t *s);
const char *reg_mode_name(reg_mode_t m);
/* "READWRITE", "READONLY", "IMPORT" (any case); K_ERR_INVAL otherwise. */
int reg_mode_parse(const char *text, reg_mode_t *out);

/*
 * Parses schema text with its references resolved against the registry (Avro only).
 * *identity (malloc'ed) is the dedup key. 42201-style problems return K_ERR_INVAL with the
 * reason in err; a reference that names no registered schema too.
 */
int reg_parse(kb_registry_t *r, const char *text, size_t len, json_t *refs,
              kb_avro_schema_t **out, char **identity, char *err, size_t errlen);

/* Applies one `_schemas` record (value NULL = tombstone). Unknown or unreadable records
 * return K_ERR_INVAL and change nothing (the replay counts them and goes on); a schema whose
 * references are not (yet) known returns K_ERR_NOENT (the replay retries it at the end: after
 * compaction a referenced version's record can follow the schema that references it). */
int reg_apply(kb_registry_t *r, json_t *key, json_t *value);
void reg_state_free(kb_registry_t *r);

/* ---- reg_http.c: serves kb_registry_call on the HTTP listener "registry" at urls ------------ */

/* basic_auth: every request needs HTTP basic auth with a broker user's password. */
int reg_http_start(kb_broker_t *b, kb_registry_t *r, const char *urls, bool basic_auth);

/* ---- reg_store.c: the log ---------------------------------------------------------------- */

int reg_store_open(kb_registry_t *r);
/* Appends records (keys[i], values[i]; a NULL value is a tombstone) as one batch, applies them,
 * and calls done(ctx, status) once they are fsynced (status < 0: not durable). Returns < 0 if
 * nothing was written (done is then not called). */
typedef void (*reg_durable_fn)(kb_registry_t *r, void *ctx, int status);
int reg_store_write(kb_registry_t *r, json_t *const *keys, json_t *const *values, int n,
                    reg_durable_fn done, void *ctx);
/* `_schemas` was deleted under the registry: writes fail from now on (reads go on). */
void reg_store_lost(kb_registry_t *r);
/* Tells waiting writers the registry is closing (their done runs with K_ERR_CLOSED now). */
void reg_store_close(kb_registry_t *r);

/* Record keys and values, Confluent's layout. */
json_t *reg_key_schema(const char *subject, int32_t version);
json_t *reg_key_config(const char *subject); /* NULL subject = global */
json_t *reg_key_delete_subject(const char *subject);
json_t *reg_key_mode(const char *subject); /* NULL subject = global */
json_t *reg_value_schema(const char *subject, const reg_version_t *v, const reg_schema_t *s);

#endif

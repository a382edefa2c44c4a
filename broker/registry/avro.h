/*
 * The Avro schema model of the schema registry: parsing JSON schema text, Parsing Canonical
 * Form, compatibility under Avro's schema-resolution rules, and a binary decoder that checks a
 * value against a schema (Produce validation).
 *
 * Why our own model: Debian's avro-c drops `default`, `aliases` and `logicalType` while
 * parsing, and its resolver refuses a reader field that has a default but no writer field,
 * which is exactly what BACKWARD compatibility is about. The rules here follow the Avro
 * specification (1.11, "Schema Resolution" and "Parsing Canonical Form for Schemas").
 *
 * Ownership: a kb_avro_schema_t owns every node, field, string and default value reachable
 * from its root (named types referenced twice are the same node; recursive types make the
 * graph cyclic, so nothing is freed by walking it). kb_avro_schema_free(NULL) is a no-op.
 * Thread: none shared; the model is plain memory, callable from any one thread at a time.
 * Errors: 0 or a negative K_ERR_*; a human-readable reason goes to err/errlen.
 */
#ifndef KB_AVRO_H
#define KB_AVRO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    KB_AVRO_NULL = 0,
    KB_AVRO_BOOLEAN,
    KB_AVRO_INT,
    KB_AVRO_LONG,
    KB_AVRO_FLOAT,
    KB_AVRO_DOUBLE,
    KB_AVRO_BYTES,
    KB_AVRO_STRING,
    KB_AVRO_RECORD,
    KB_AVRO_ENUM,
    KB_AVRO_ARRAY,
    KB_AVRO_MAP,
    KB_AVRO_UNION,
    KB_AVRO_FIXED,
} kb_avro_type_t;

typedef struct kb_avro_node kb_avro_node_t;

typedef struct {
    char *name;
    char **aliases; /* unqualified field names */
    int n_aliases;
    kb_avro_node_t *type;
    json_t *default_value; /* NULL when the field has no default; owned by the schema */
} kb_avro_field_t;

struct kb_avro_node {
    kb_avro_type_t type;
    char *fullname; /* record, enum, fixed */
    char **aliases; /* fullnames */
    int n_aliases;
    char *logical_type; /* NULL when absent */
    json_t *props;      /* the node's other attributes (precision, scale, ...), or NULL */
    kb_avro_field_t *fields; /* record */
    int n_fields;
    char **symbols; /* enum */
    int n_symbols;
    char *enum_default; /* NULL when absent */
    kb_avro_node_t *items; /* array items, map values */
    kb_avro_node_t **branches; /* union */
    int n_branches;
    int64_t size; /* fixed */
};

typedef struct kb_avro_schema kb_avro_schema_t;

/* Limits that keep hostile input bounded (the parser recurses on nesting). */
#define KB_AVRO_MAX_DEPTH 64
#define KB_AVRO_MAX_TEXT (1 << 20)

/*
 * Parses `text` (len bytes of JSON). Referenced schemas (Confluent schema references) are
 * given as texts in dependency order; their named types become visible to the ones after them
 * and to `text`. The root is `text`'s schema. K_ERR_MALFORMED for bad JSON, K_ERR_INVAL for
 * JSON that is not a valid Avro schema (unknown type, bad name, duplicate definition, default
 * that does not match its type, ...), K_ERR_NOMEM.
 */
int kb_avro_parse(const char *text, size_t len, const char *const *refs, const size_t *ref_lens,
                  int n_refs, kb_avro_schema_t **out, char *err, size_t errlen);
void kb_avro_schema_free(kb_avro_schema_t *s);
const kb_avro_node_t *kb_avro_root(const kb_avro_schema_t *s);
/* Looks up a named type (record/enum/fixed) by fullname, or NULL. */
const kb_avro_node_t *kb_avro_find_named(const kb_avro_schema_t *s, const char *fullname);
const char *kb_avro_type_name(kb_avro_type_t t);

/*
 * Canonical texts, NUL-terminated and malloc'ed (the caller frees).
 * kb_avro_pcf: the specification's Parsing Canonical Form (name, type, fields, symbols, items,
 * values, size; fullnames; no whitespace).
 * kb_avro_identity: PCF plus the attributes that change how data resolves or is interpreted
 * (default, aliases, logicalType, precision, scale, the enum default). The registry uses this
 * to decide whether two registrations are "the same schema": two schemas that differ only in a
 * default have the same PCF, but a reader using one or the other behaves differently.
 */
char *kb_avro_pcf(const kb_avro_schema_t *s);
char *kb_avro_identity(const kb_avro_schema_t *s);

/* Compatibility levels, Confluent's names. */
typedef enum {
    KB_COMPAT_NONE = 0,
    KB_COMPAT_BACKWARD,
    KB_COMPAT_BACKWARD_TRANSITIVE,
    KB_COMPAT_FORWARD,
    KB_COMPAT_FORWARD_TRANSITIVE,
    KB_COMPAT_FULL,
    KB_COMPAT_FULL_TRANSITIVE,
} kb_compat_t;

const char *kb_compat_name(kb_compat_t c);
/* Parses a level name (case-insensitive); K_ERR_INVAL for an unknown one. */
int kb_compat_parse(const char *name, kb_compat_t *out);

/*
 * Whether data written with `writer` can be read with `reader` under Avro's resolution rules.
 * Returns true or false; on false a reason (with the path inside the schema) goes to msg.
 */
bool kb_avro_can_read(const kb_avro_schema_t *reader, const kb_avro_schema_t *writer, char *msg,
                      size_t msglen);

/*
 * Checks `candidate` against the existing versions (oldest first) under `level`: BACKWARD =
 * the candidate reads the latest, FORWARD = the latest reads the candidate, FULL = both; the
 * _TRANSITIVE levels check every version instead of only the latest. True when compatible.
 */
bool kb_avro_compatible(kb_compat_t level, const kb_avro_schema_t *candidate,
                        const kb_avro_schema_t *const *existing, int n_existing, char *msg,
                        size_t msglen);

/*
 * Decodes one Avro binary value of `s` from buf[0..len) and requires that it uses exactly len
 * bytes. 0 when it does; K_ERR_MALFORMED with the reason in msg when not.
 */
int kb_avro_validate(const kb_avro_schema_t *s, const uint8_t *buf, size_t len, char *msg,
                     size_t msglen);

#endif

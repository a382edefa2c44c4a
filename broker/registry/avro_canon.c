/*
 * Parsing Canonical Form (Avro specification, "Parsing Canonical Form for Schemas"):
 *   [PRIMITIVES] primitives in their simple form ("int", never {"type":"int"});
 *   [FULLNAMES]  names are fullnames; [STRIP] only name, type, fields, symbols, items, values,
 *   size; [ORDER] in that order; [STRINGS]/[INTEGERS]/[WHITESPACE] plain, no whitespace;
 *   a named type is written in full at its first occurrence and as its fullname after that.
 * The identity form (see avro.h) is the same walk that also keeps default, aliases,
 * logicalType, precision, scale and the enum default, written after the PCF attributes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry/avro_int.h"
#include "protocol/kp_buf.h"

typedef struct {
    kp_buf_t out;
    bool identity;
    const kb_avro_node_t **seen; /* named types already written */
    int n_seen, cap_seen;
    bool nomem;
} canon_t;

static void put(canon_t *c, const char *s)
{
    kp_put_raw(&c->out, s, strlen(s));
}

/* Names and symbols are [A-Za-z0-9_.] only, so they need no escaping. */
static void put_str(canon_t *c, const char *s)
{
    put(c, "\"");
    put(c, s);
    put(c, "\"");
}

static void put_json(canon_t *c, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s) {
        c->nomem = true;
        return;
    }
    put(c, s);
    free(s);
}

static void put_strv(canon_t *c, const char *key, char *const *v, int n)
{
    put(c, ",\"");
    put(c, key);
    put(c, "\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            put(c, ",");
        put_str(c, v[i]);
    }
    put(c, "]");
}

static bool seen(canon_t *c, const kb_avro_node_t *n)
{
    for (int i = 0; i < c->n_seen; i++)
        if (c->seen[i] == n)
            return true;
    if (c->n_seen == c->cap_seen) {
        int ncap = c->cap_seen ? c->cap_seen * 2 : 16;
        const kb_avro_node_t **p = realloc(c->seen, sizeof *p * (size_t)ncap);
        if (!p) {
            c->nomem = true;
            return true;
        }
        c->seen = p;
        c->cap_seen = ncap;
    }
    c->seen[c->n_seen++] = n;
    return false;
}

static void walk(canon_t *c, const kb_avro_node_t *n);

static void walk_fields(canon_t *c, const kb_avro_node_t *n)
{
    put(c, ",\"fields\":[");
    for (int i = 0; i < n->n_fields; i++) {
        const kb_avro_field_t *f = &n->fields[i];
        put(c, i ? ",{\"name\":" : "{\"name\":");
        put_str(c, f->name);
        put(c, ",\"type\":");
        walk(c, f->type);
        if (c->identity && f->default_value) {
            put(c, ",\"default\":");
            put_json(c, f->default_value);
        }
        if (c->identity && f->n_aliases)
            put_strv(c, "aliases", f->aliases, f->n_aliases);
        put(c, "}");
    }
    put(c, "]");
}

static void walk_extras(canon_t *c, const kb_avro_node_t *n)
{
    if (!c->identity)
        return;
    if (n->n_aliases)
        put_strv(c, "aliases", n->aliases, n->n_aliases);
    if (n->enum_default) {
        put(c, ",\"default\":");
        put_str(c, n->enum_default);
    }
    if (n->logical_type) {
        json_t *lt = json_string(n->logical_type);
        if (!lt) {
            c->nomem = true;
            return;
        }
        put(c, ",\"logicalType\":");
        put_json(c, lt);
        json_decref(lt);
    }
    const char *k;
    json_t *v;
    json_object_foreach(n->props, k, v) {
        put(c, ",");
        put_str(c, k); /* "precision" / "scale" only */
        put(c, ":");
        put_json(c, v);
    }
}

static void walk_named(canon_t *c, const kb_avro_node_t *n)
{
    if (seen(c, n)) {
        put_str(c, n->fullname);
        return;
    }
    put(c, "{\"name\":");
    put_str(c, n->fullname);
    put(c, ",\"type\":");
    put_str(c, kb_avro_type_name(n->type));
    if (n->type == KB_AVRO_RECORD)
        walk_fields(c, n);
    else if (n->type == KB_AVRO_ENUM)
        put_strv(c, "symbols", n->symbols, n->n_symbols);
    else {
        char num[32];
        snprintf(num, sizeof num, ",\"size\":%lld", (long long)n->size);
        put(c, num);
    }
    walk_extras(c, n);
    put(c, "}");
}

static void walk(canon_t *c, const kb_avro_node_t *n)
{
    switch (n->type) {
    case KB_AVRO_RECORD:
    case KB_AVRO_ENUM:
    case KB_AVRO_FIXED: walk_named(c, n); return;
    case KB_AVRO_ARRAY:
    case KB_AVRO_MAP:
        put(c, n->type == KB_AVRO_ARRAY ? "{\"type\":\"array\",\"items\":"
                                        : "{\"type\":\"map\",\"values\":");
        walk(c, n->items);
        put(c, "}");
        return;
    case KB_AVRO_UNION:
        put(c, "[");
        for (int i = 0; i < n->n_branches; i++) {
            if (i)
                put(c, ",");
            walk(c, n->branches[i]);
        }
        put(c, "]");
        return;
    default:
        if (c->identity && n->logical_type) {
            put(c, "{\"type\":");
            put_str(c, kb_avro_type_name(n->type));
            walk_extras(c, n);
            put(c, "}");
        } else
            put_str(c, kb_avro_type_name(n->type));
    }
}

static char *canon(const kb_avro_schema_t *s, bool identity)
{
    if (!s || !s->root)
        return NULL;
    canon_t c = {.identity = identity};
    kp_buf_init(&c.out);
    walk(&c, s->root);
    kp_put_raw(&c.out, "", 1);
    free(c.seen);
    if (c.out.err || c.nomem) {
        kp_buf_deinit(&c.out);
        return NULL;
    }
    size_t len;
    return (char *)kp_buf_detach(&c.out, &len);
}

char *kb_avro_pcf(const kb_avro_schema_t *s)
{
    return canon(s, false);
}

char *kb_avro_identity(const kb_avro_schema_t *s)
{
    return canon(s, true);
}

/*
 * Avro schema parsing (JSON text -> kb_avro_node_t graph), per the Avro 1.11 specification:
 *   - a schema is a JSON string (a primitive or a defined name), an object, or an array (union);
 *   - names: [A-Za-z_][A-Za-z0-9_]* per dot-separated part; a name with a dot is a fullname,
 *     otherwise the namespace is the "namespace" attribute or the enclosing one;
 *   - a record is visible to its own fields (recursive types), a name is defined only once,
 *     primitive names cannot be redefined;
 *   - unions hold no union directly and no two branches of the same type, except named types
 *     with different names;
 *   - field defaults must match the field's type (a union's default matches its FIRST branch),
 *     checked once the whole schema is parsed so recursive records can be referenced;
 *   - unknown attributes are ignored; logicalType and its precision/scale are kept (an
 *     unknown logical type is just its underlying type, as the specification says).
 * JSON parsing is jansson's (a well-kept library rather than a hand-written parser).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry/avro_int.h"
#include "protocol/k_status.h"

typedef struct {
    kb_avro_schema_t *s;
    char *err;
    size_t errlen;
    int depth;
} pctx_t;

static const char *const primitive_names[] = {"null",   "boolean", "int",    "long",
                                              "float",  "double",  "bytes",  "string"};

void kb_avro_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0 || err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool kb_avro_is_named(kb_avro_type_t t)
{
    return t == KB_AVRO_RECORD || t == KB_AVRO_ENUM || t == KB_AVRO_FIXED;
}

const char *kb_avro_type_name(kb_avro_type_t t)
{
    static const char *const names[] = {"null",   "boolean", "int",   "long",  "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "union", "fixed"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static int primitive_of(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (!strcmp(name, primitive_names[i]))
            return i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Memory                                                                                       */

static int grow(void ***arr, int *cap, int n)
{
    if (n < *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 16;
    void **p = realloc(*arr, sizeof *p * (size_t)ncap);
    if (!p)
        return K_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static kb_avro_node_t *node_new(pctx_t *c, kb_avro_type_t type)
{
    kb_avro_schema_t *s = c->s;
    if (grow((void ***)&s->nodes, &s->cap_nodes, s->n_nodes) < 0)
        return NULL;
    kb_avro_node_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = type;
    s->nodes[s->n_nodes++] = n;
    return n;
}

static void strv_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void node_free(kb_avro_node_t *n)
{
    free(n->fullname);
    strv_free(n->aliases, n->n_aliases);
    free(n->logical_type);
    json_decref(n->props);
    for (int i = 0; i < n->n_fields; i++) {
        free(n->fields[i].name);
        strv_free(n->fields[i].aliases, n->fields[i].n_aliases);
        json_decref(n->fields[i].default_value);
    }
    free(n->fields);
    strv_free(n->symbols, n->n_symbols);
    free(n->enum_default);
    free(n->branches);
    free(n);
}

void kb_avro_schema_free(kb_avro_schema_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_nodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    free(s->named);
    free(s);
}

const kb_avro_node_t *kb_avro_root(const kb_avro_schema_t *s)
{
    return s ? s->root : NULL;
}

const kb_avro_node_t *kb_avro_find_named(const kb_avro_schema_t *s, const char *fullname)
{
    for (int i = 0; s && i < s->n_named; i++)
        if (!strcmp(s->named[i]->fullname, fullname))
            return s->named[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                        */

static bool name_part_valid(const char *p, size_t n)
{
    if (n == 0 || !((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z') || p[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

/* A dotted name: every part valid. An empty string is the null namespace (allow_empty). */
static bool dotted_valid(const char *name, bool allow_empty)
{
    if (!*name)
        return allow_empty;
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!name_part_valid(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* Fullname of `name` in namespace ns (NULL or "" = the null namespace); malloc'ed. */
static char *qualify(const char *name, const char *ns)
{
    if (strchr(name, '.') || !ns || !*ns)
        return strdup(name);
    size_t a = strlen(ns), b = strlen(name);
    char *f = malloc(a + b + 2);
    if (!f)
        return NULL;
    memcpy(f, ns, a);
    f[a] = '.';
    memcpy(f + a + 1, name, b + 1);
    return f;
}

/* The namespace part of a fullname (malloc'ed, "" when none). */
static char *ns_of(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return dot ? strndup(fullname, (size_t)(dot - fullname)) : strdup("");
}

static kb_avro_node_t *lookup_name(pctx_t *c, const char *name, const char *ns)
{
    char *full = qualify(name, ns);
    if (!full)
        return NULL;
    const kb_avro_node_t *n = kb_avro_find_named(c->s, full);
    free(full);
    if (!n && !strchr(name, '.'))
        n = kb_avro_find_named(c->s, name);
    return (kb_avro_node_t *)n;
}

static int register_named(pctx_t *c, kb_avro_node_t *n)
{
    kb_avro_schema_t *s = c->s;
    const char *dot = strrchr(n->fullname, '.');
    if (primitive_of(dot ? dot + 1 : n->fullname) >= 0) {
        kb_avro_errf(c->err, c->errlen, "'%s' redefines a primitive type name", n->fullname);
        return K_ERR_INVAL;
    }
    if (kb_avro_find_named(s, n->fullname)) {
        kb_avro_errf(c->err, c->errlen, "'%s' is defined twice", n->fullname);
        return K_ERR_INVAL;
    }
    if (grow((void ***)&s->named, &s->cap_named, s->n_named) < 0)
        return K_ERR_NOMEM;
    s->named[s->n_named++] = n;
    return 0;
}

/* Reads "name"/"namespace"/"aliases" of a named type; *ns_out is the namespace its children
 * inherit (malloc'ed). */
static int parse_name(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t *n, char **ns_out)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *jns = json_object_get(j, "namespace");
    if (!name || !dotted_valid(name, false)) {
        kb_avro_errf(c->err, c->errlen, "a %s needs a valid \"name\" (got %s)",
                     kb_avro_type_name(n->type), name ? name : "none");
        return K_ERR_INVAL;
    }
    if (jns && !json_is_null(jns) &&
        (!json_is_string(jns) || !dotted_valid(json_string_value(jns), true))) {
        kb_avro_errf(c->err, c->errlen, "'%s' has an invalid namespace", name);
        return K_ERR_INVAL;
    }
    const char *own_ns = json_is_string(jns) ? json_string_value(jns) : ns;
    n->fullname = qualify(name, own_ns);
    if (!n->fullname || !(*ns_out = ns_of(n->fullname)))
        return K_ERR_NOMEM;
    json_t *al = json_object_get(j, "aliases");
    if (!al)
        return 0;
    if (!json_is_array(al)) {
        kb_avro_errf(c->err, c->errlen, "'%s': \"aliases\" must be an array", n->fullname);
        return K_ERR_INVAL;
    }
    n->aliases = calloc(json_array_size(al) + 1, sizeof *n->aliases);
    if (!n->aliases)
        return K_ERR_NOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(al, i, v) {
        const char *a = json_string_value(v);
        if (!a || !dotted_valid(a, false)) {
            kb_avro_errf(c->err, c->errlen, "'%s' has an invalid alias", n->fullname);
            return K_ERR_INVAL;
        }
        if (!(n->aliases[n->n_aliases] = qualify(a, *ns_out)))
            return K_ERR_NOMEM;
        n->n_aliases++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                        */

static int parse_type(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t **out);

static int parse_ref(pctx_t *c, const char *name, const char *ns, kb_avro_node_t **out)
{
    int p = primitive_of(name);
    if (p >= 0) {
        *out = node_new(c, (kb_avro_type_t)p);
        return *out ? 0 : K_ERR_NOMEM;
    }
    *out = lookup_name(c, name, ns);
    if (*out)
        return 0;
    kb_avro_errf(c->err, c->errlen, "unknown type '%s'", name);
    return K_ERR_INVAL;
}

static bool same_union_kind(const kb_avro_node_t *a, const kb_avro_node_t *b)
{
    if (a->type != b->type)
        return false;
    if (kb_avro_is_named(a->type))
        return !strcmp(a->fullname, b->fullname);
    return true;
}

static int parse_union(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t **out)
{
    kb_avro_node_t *n = node_new(c, KB_AVRO_UNION);
    if (!n)
        return K_ERR_NOMEM;
    size_t cnt = json_array_size(j);
    n->branches = calloc(cnt + 1, sizeof *n->branches);
    if (!n->branches)
        return K_ERR_NOMEM;
    for (size_t i = 0; i < cnt; i++) {
        kb_avro_node_t *b;
        int rc = parse_type(c, json_array_get(j, i), ns, &b);
        if (rc < 0)
            return rc;
        if (b->type == KB_AVRO_UNION) {
            kb_avro_errf(c->err, c->errlen, "a union may not contain a union directly");
            return K_ERR_INVAL;
        }
        for (int k = 0; k < n->n_branches; k++)
            if (same_union_kind(n->branches[k], b)) {
                kb_avro_errf(c->err, c->errlen, "a union holds '%s' twice",
                             b->fullname ? b->fullname : kb_avro_type_name(b->type));
                return K_ERR_INVAL;
            }
        n->branches[n->n_branches++] = b;
    }
    *out = n;
    return 0;
}

static bool str_in(char *const *v, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static int parse_enum(pctx_t *c, json_t *j, kb_avro_node_t *n)
{
    json_t *sym = json_object_get(j, "symbols");
    if (!json_is_array(sym)) {
        kb_avro_errf(c->err, c->errlen, "enum '%s' needs a \"symbols\" array", n->fullname);
        return K_ERR_INVAL;
    }
    n->symbols = calloc(json_array_size(sym) + 1, sizeof *n->symbols);
    if (!n->symbols)
        return K_ERR_NOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(sym, i, v) {
        const char *name = json_string_value(v);
        if (!name || !name_part_valid(name, strlen(name)) ||
            str_in(n->symbols, n->n_symbols, name)) {
            kb_avro_errf(c->err, c->errlen, "enum '%s' has an invalid or repeated symbol",
                         n->fullname);
            return K_ERR_INVAL;
        }
        if (!(n->symbols[n->n_symbols] = strdup(name)))
            return K_ERR_NOMEM;
        n->n_symbols++;
    }
    json_t *def = json_object_get(j, "default");
    if (!def)
        return 0;
    if (!json_is_string(def) || !str_in(n->symbols, n->n_symbols, json_string_value(def))) {
        kb_avro_errf(c->err, c->errlen, "enum '%s': the default is not one of its symbols",
                     n->fullname);
        return K_ERR_INVAL;
    }
    n->enum_default = strdup(json_string_value(def));
    return n->enum_default ? 0 : K_ERR_NOMEM;
}

static int parse_fixed(pctx_t *c, json_t *j, kb_avro_node_t *n)
{
    json_t *size = json_object_get(j, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0 ||
        json_integer_value(size) > INT32_MAX) {
        kb_avro_errf(c->err, c->errlen, "fixed '%s' needs a non-negative integer \"size\"",
                     n->fullname);
        return K_ERR_INVAL;
    }
    n->size = json_integer_value(size);
    return 0;
}

static int parse_field_aliases(pctx_t *c, json_t *al, kb_avro_field_t *f)
{
    if (!al)
        return 0;
    if (!json_is_array(al)) {
        kb_avro_errf(c->err, c->errlen, "field '%s': \"aliases\" must be an array", f->name);
        return K_ERR_INVAL;
    }
    f->aliases = calloc(json_array_size(al) + 1, sizeof *f->aliases);
    if (!f->aliases)
        return K_ERR_NOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(al, i, v) {
        const char *a = json_string_value(v);
        if (!a || !name_part_valid(a, strlen(a))) {
            kb_avro_errf(c->err, c->errlen, "field '%s' has an invalid alias", f->name);
            return K_ERR_INVAL;
        }
        if (!(f->aliases[f->n_aliases] = strdup(a)))
            return K_ERR_NOMEM;
        f->n_aliases++;
    }
    return 0;
}

static int parse_field(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t *rec)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *type = json_object_get(j, "type");
    if (!json_is_object(j) || !name || !name_part_valid(name, strlen(name)) || !type) {
        kb_avro_errf(c->err, c->errlen, "record '%s': a field needs a valid \"name\" and a "
                     "\"type\"", rec->fullname);
        return K_ERR_INVAL;
    }
    for (int i = 0; i < rec->n_fields; i++)
        if (!strcmp(rec->fields[i].name, name)) {
            kb_avro_errf(c->err, c->errlen, "record '%s': field '%s' appears twice",
                         rec->fullname, name);
            return K_ERR_INVAL;
        }
    kb_avro_field_t *f = &rec->fields[rec->n_fields++];
    if (!(f->name = strdup(name)))
        return K_ERR_NOMEM;
    int rc = parse_field_aliases(c, json_object_get(j, "aliases"), f);
    if (rc < 0)
        return rc;
    json_t *def = json_object_get(j, "default");
    if (def)
        f->default_value = json_incref(def);
    return parse_type(c, type, ns, &f->type);
}

static int parse_record(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t *n)
{
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        kb_avro_errf(c->err, c->errlen, "record '%s' needs a \"fields\" array", n->fullname);
        return K_ERR_INVAL;
    }
    n->fields = calloc(json_array_size(fields) + 1, sizeof *n->fields);
    if (!n->fields)
        return K_ERR_NOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(fields, i, v) {
        int rc = parse_field(c, v, ns, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_named(pctx_t *c, json_t *j, const char *ns, kb_avro_type_t type,
                       kb_avro_node_t **out)
{
    kb_avro_node_t *n = node_new(c, type);
    if (!n)
        return K_ERR_NOMEM;
    char *child_ns = NULL;
    int rc = parse_name(c, j, ns, n, &child_ns);
    if (rc == 0)
        rc = register_named(c, n); /* before the fields: a record may refer to itself */
    if (rc == 0 && type == KB_AVRO_RECORD)
        rc = parse_record(c, j, child_ns, n);
    else if (rc == 0 && type == KB_AVRO_ENUM)
        rc = parse_enum(c, j, n);
    else if (rc == 0 && type == KB_AVRO_FIXED)
        rc = parse_fixed(c, j, n);
    free(child_ns);
    *out = n;
    return rc;
}

/* logicalType and the attributes that go with it (decimal's precision and scale). */
static int parse_logical(pctx_t *c, json_t *j, kb_avro_node_t *n)
{
    const char *lt = json_string_value(json_object_get(j, "logicalType"));
    if (!lt)
        return 0;
    if (!(n->logical_type = strdup(lt)))
        return K_ERR_NOMEM;
    static const char *const keys[] = {"precision", "scale"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (!v)
            continue;
        if (!n->props && !(n->props = json_object()))
            return K_ERR_NOMEM;
        if (json_object_set(n->props, keys[i], v) < 0)
            return K_ERR_NOMEM;
    }
    (void)c;
    return 0;
}

static int parse_object(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t **out)
{
    const char *type = json_string_value(json_object_get(j, "type"));
    int rc;
    if (!type) {
        kb_avro_errf(c->err, c->errlen, "a schema object needs a string \"type\"");
        return K_ERR_INVAL;
    }
    if (!strcmp(type, "record") || !strcmp(type, "error"))
        rc = parse_named(c, j, ns, KB_AVRO_RECORD, out);
    else if (!strcmp(type, "enum"))
        rc = parse_named(c, j, ns, KB_AVRO_ENUM, out);
    else if (!strcmp(type, "fixed"))
        rc = parse_named(c, j, ns, KB_AVRO_FIXED, out);
    else if (!strcmp(type, "array") || !strcmp(type, "map")) {
        const char *key = type[0] == 'a' ? "items" : "values";
        json_t *sub = json_object_get(j, key);
        if (!sub) {
            kb_avro_errf(c->err, c->errlen, "an %s needs \"%s\"", type, key);
            return K_ERR_INVAL;
        }
        if (!(*out = node_new(c, type[0] == 'a' ? KB_AVRO_ARRAY : KB_AVRO_MAP)))
            return K_ERR_NOMEM;
        rc = parse_type(c, sub, ns, &(*out)->items);
    } else
        rc = parse_ref(c, type, ns, out);
    if (rc == 0 && !kb_avro_is_named((*out)->type) && primitive_of(type) >= 0)
        rc = parse_logical(c, j, *out);
    else if (rc == 0 && (*out)->type == KB_AVRO_FIXED && !strcmp(type, "fixed"))
        rc = parse_logical(c, j, *out);
    return rc;
}

static int parse_type(pctx_t *c, json_t *j, const char *ns, kb_avro_node_t **out)
{
    if (++c->depth > KB_AVRO_MAX_DEPTH) {
        kb_avro_errf(c->err, c->errlen, "schema nested deeper than %d", KB_AVRO_MAX_DEPTH);
        return K_ERR_INVAL;
    }
    int rc;
    if (json_is_string(j))
        rc = parse_ref(c, json_string_value(j), ns, out);
    else if (json_is_array(j))
        rc = parse_union(c, j, ns, out);
    else if (json_is_object(j))
        rc = parse_object(c, j, ns, out);
    else {
        kb_avro_errf(c->err, c->errlen, "a schema is a string, an object or an array");
        rc = K_ERR_INVAL;
    }
    c->depth--;
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults                                                                                     */

static bool default_ok(const kb_avro_node_t *n, json_t *v, int depth);

static bool record_default_ok(const kb_avro_node_t *n, json_t *v, int depth)
{
    if (!json_is_object(v))
        return false;
    for (int i = 0; i < n->n_fields; i++) {
        json_t *fv = json_object_get(v, n->fields[i].name);
        if (!fv && !n->fields[i].default_value)
            return false;
        if (fv && !default_ok(n->fields[i].type, fv, depth + 1))
            return false;
    }
    return true;
}

static bool default_ok(const kb_avro_node_t *n, json_t *v, int depth)
{
    if (depth > KB_AVRO_MAX_DEPTH)
        return false;
    size_t i;
    const char *k;
    json_t *x;
    switch (n->type) {
    case KB_AVRO_NULL: return json_is_null(v);
    case KB_AVRO_BOOLEAN: return json_is_boolean(v);
    case KB_AVRO_INT:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case KB_AVRO_LONG: return json_is_integer(v);
    case KB_AVRO_FLOAT:
    case KB_AVRO_DOUBLE: return json_is_number(v);
    case KB_AVRO_BYTES:
    case KB_AVRO_STRING:
    case KB_AVRO_FIXED: return json_is_string(v);
    case KB_AVRO_ENUM:
        return json_is_string(v) && str_in(n->symbols, n->n_symbols, json_string_value(v));
    case KB_AVRO_ARRAY:
        if (!json_is_array(v))
            return false;
        json_array_foreach(v, i, x) if (!default_ok(n->items, x, depth + 1)) return false;
        return true;
    case KB_AVRO_MAP:
        if (!json_is_object(v))
            return false;
        json_object_foreach(v, k, x) if (!default_ok(n->items, x, depth + 1)) return false;
        return true;
    case KB_AVRO_UNION: return n->n_branches > 0 && default_ok(n->branches[0], v, depth + 1);
    case KB_AVRO_RECORD: return record_default_ok(n, v, depth);
    }
    return false;
}

static int check_defaults(pctx_t *c)
{
    for (int i = 0; i < c->s->n_nodes; i++) {
        const kb_avro_node_t *n = c->s->nodes[i];
        if (n->type != KB_AVRO_RECORD)
            continue;
        for (int k = 0; k < n->n_fields; k++) {
            const kb_avro_field_t *f = &n->fields[k];
            if (f->default_value && !default_ok(f->type, f->default_value, 0)) {
                kb_avro_errf(c->err, c->errlen,
                             "record '%s': the default of field '%s' does not match its type "
                             "(a union's default matches its first branch)",
                             n->fullname, f->name);
                return K_ERR_INVAL;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry point                                                                                  */

static int parse_text(pctx_t *c, const char *text, size_t len, kb_avro_node_t **out)
{
    if (len > KB_AVRO_MAX_TEXT) {
        kb_avro_errf(c->err, c->errlen, "schema text larger than %d bytes", KB_AVRO_MAX_TEXT);
        return K_ERR_INVAL;
    }
    json_error_t jerr;
    /* DECODE_ANY: a schema may be a bare JSON string. ALLOW_NUL: bytes/fixed defaults are
     * strings of code points 0-255, "\u0000" included. */
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        kb_avro_errf(c->err, c->errlen, "invalid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return K_ERR_MALFORMED;
    }
    c->depth = 0;
    int rc = parse_type(c, j, "", out);
    json_decref(j);
    return rc;
}

int kb_avro_parse(const char *text, size_t len, const char *const *refs, const size_t *ref_lens,
                  int n_refs, kb_avro_schema_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!text)
        return K_ERR_INVAL;
    kb_avro_schema_t *s = calloc(1, sizeof *s);
    if (!s)
        return K_ERR_NOMEM;
    pctx_t c = {.s = s, .err = err, .errlen = errlen};
    int rc = 0;
    kb_avro_node_t *root = NULL;
    for (int i = 0; i < n_refs && rc == 0; i++)
        rc = parse_text(&c, refs[i], ref_lens[i], &root);
    if (rc == 0)
        rc = parse_text(&c, text, len, &root);
    if (rc == 0)
        rc = check_defaults(&c);
    if (rc < 0) {
        if (rc == K_ERR_NOMEM)
            kb_avro_errf(err, errlen, "out of memory");
        kb_avro_schema_free(s);
        return rc;
    }
    s->root = root;
    *out = s;
    return 0;
}

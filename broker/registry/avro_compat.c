/*
 * Compatibility under Avro's schema-resolution rules (specification, "Schema Resolution"),
 * the same questions Confluent's AvroCompatibilityChecker asks of Avro's SchemaCompatibility:
 *   - same primitive type, or a promotion of the writer's: int -> long, float, double;
 *     long -> float, double; float -> double; string <-> bytes;
 *   - records: the reader's (unqualified) name equals the writer's, or the reader's aliases
 *     hold the writer's fullname. Each reader field is found in the writer by name or by one
 *     of the reader field's aliases and resolved recursively; a reader field missing from the
 *     writer needs a default; writer fields the reader lacks are skipped;
 *   - enums: names as records; a writer symbol missing from the reader needs the reader's
 *     enum default;
 *   - fixed: names as records and the same size; arrays/maps: items/values recursively;
 *   - a writer union: every branch must resolve against the reader; a reader union (writer
 *     not a union): some branch must resolve against the writer.
 * Logical types do not take part (Avro resolves on the underlying types, as Confluent does).
 * Recursive types: a (reader, writer) pair already being checked further up counts as
 * compatible, which is the usual coinductive reading of a recursive schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/registry/avro_int.h"
#include "protocol/k_status.h"

#define MAX_STACK 256

typedef struct {
    const kb_avro_node_t *r[MAX_STACK], *w[MAX_STACK];
    int n;
    char *msg; /* NULL while trying union branches quietly */
    size_t msglen;
    char path[512];
} rctx_t;

static bool match(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w);

static bool fail(rctx_t *c, const char *what)
{
    if (c->msg)
        kb_avro_errf(c->msg, c->msglen, "%s at %s", what, c->path[0] ? c->path : "/");
    return false;
}

static const char *unqualified(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return dot ? dot + 1 : fullname;
}

static bool names_match(const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    if (!strcmp(unqualified(r->fullname), unqualified(w->fullname)))
        return true;
    for (int i = 0; i < r->n_aliases; i++)
        if (!strcmp(r->aliases[i], w->fullname))
            return true;
    return false;
}

static bool promotes(kb_avro_type_t w, kb_avro_type_t r)
{
    switch (w) {
    case KB_AVRO_INT: return r == KB_AVRO_LONG || r == KB_AVRO_FLOAT || r == KB_AVRO_DOUBLE;
    case KB_AVRO_LONG: return r == KB_AVRO_FLOAT || r == KB_AVRO_DOUBLE;
    case KB_AVRO_FLOAT: return r == KB_AVRO_DOUBLE;
    case KB_AVRO_STRING: return r == KB_AVRO_BYTES;
    case KB_AVRO_BYTES: return r == KB_AVRO_STRING;
    default: return false;
    }
}

/* Appends a path segment for the duration of one check; returns the length to restore. */
static size_t path_push(rctx_t *c, const char *seg)
{
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "/%s", seg);
    return len;
}

static const kb_avro_field_t *writer_field(const kb_avro_node_t *w, const kb_avro_field_t *rf)
{
    for (int i = 0; i < w->n_fields; i++) {
        if (!strcmp(w->fields[i].name, rf->name))
            return &w->fields[i];
    }
    for (int a = 0; a < rf->n_aliases; a++)
        for (int i = 0; i < w->n_fields; i++)
            if (!strcmp(w->fields[i].name, rf->aliases[a]))
                return &w->fields[i];
    return NULL;
}

static bool match_record(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    for (int i = 0; i < r->n_fields; i++) {
        const kb_avro_field_t *rf = &r->fields[i];
        const kb_avro_field_t *wf = writer_field(w, rf);
        size_t keep = path_push(c, rf->name);
        bool ok = true;
        if (!wf && !rf->default_value)
            ok = fail(c, "reader field has no default and the writer does not have it");
        else if (wf)
            ok = match(c, rf->type, wf->type);
        c->path[keep] = '\0';
        if (!ok)
            return false;
    }
    return true;
}

static bool match_enum(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    if (r->enum_default)
        return true;
    for (int i = 0; i < w->n_symbols; i++) {
        bool found = false;
        for (int k = 0; k < r->n_symbols && !found; k++)
            found = !strcmp(r->symbols[k], w->symbols[i]);
        if (!found) {
            char what[200];
            snprintf(what, sizeof what,
                     "writer enum symbol '%.80s' is missing from the reader, which has no "
                     "default",
                     w->symbols[i]);
            return fail(c, what);
        }
    }
    return true;
}

static bool match_union_reader(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    char *msg = c->msg;
    c->msg = NULL; /* branches that do not fit are expected; only the overall answer counts */
    bool ok = false;
    for (int i = 0; i < r->n_branches && !ok; i++)
        ok = match(c, r->branches[i], w);
    c->msg = msg;
    if (ok)
        return true;
    char what[200];
    snprintf(what, sizeof what, "reader union has no branch for writer type %.100s",
             w->fullname ? w->fullname : kb_avro_type_name(w->type));
    return fail(c, what);
}

static bool match_same(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    if (kb_avro_is_named(r->type) && !names_match(r, w)) {
        char what[300];
        snprintf(what, sizeof what, "reader name %.120s does not match writer name %.120s",
                 r->fullname, w->fullname);
        return fail(c, what);
    }
    switch (r->type) {
    case KB_AVRO_RECORD: return match_record(c, r, w);
    case KB_AVRO_ENUM: return match_enum(c, r, w);
    case KB_AVRO_FIXED:
        return r->size == w->size ? true : fail(c, "fixed sizes differ");
    case KB_AVRO_ARRAY:
    case KB_AVRO_MAP: {
        size_t keep = path_push(c, r->type == KB_AVRO_ARRAY ? "items" : "values");
        bool ok = match(c, r->items, w->items);
        c->path[keep] = '\0';
        return ok;
    }
    default: return true;
    }
}

static bool match_inner(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    if (w->type == KB_AVRO_UNION) {
        for (int i = 0; i < w->n_branches; i++)
            if (!match(c, r, w->branches[i]))
                return false;
        return true;
    }
    if (r->type == KB_AVRO_UNION)
        return match_union_reader(c, r, w);
    if (r->type == w->type)
        return match_same(c, r, w);
    if (promotes(w->type, r->type))
        return true;
    char what[200];
    snprintf(what, sizeof what, "reader type %s cannot read writer type %s",
             kb_avro_type_name(r->type), kb_avro_type_name(w->type));
    return fail(c, what);
}

static bool match(rctx_t *c, const kb_avro_node_t *r, const kb_avro_node_t *w)
{
    for (int i = 0; i < c->n; i++)
        if (c->r[i] == r && c->w[i] == w)
            return true;
    if (c->n == MAX_STACK)
        return fail(c, "schemas nested too deeply to compare");
    c->r[c->n] = r;
    c->w[c->n] = w;
    c->n++;
    bool ok = match_inner(c, r, w);
    c->n--;
    return ok;
}

bool kb_avro_can_read(const kb_avro_schema_t *reader, const kb_avro_schema_t *writer, char *msg,
                      size_t msglen)
{
    if (msg && msglen)
        msg[0] = '\0';
    if (!reader || !writer || !reader->root || !writer->root)
        return false;
    rctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        kb_avro_errf(msg, msglen, "out of memory");
        return false;
    }
    c->msg = msg;
    c->msglen = msglen;
    bool ok = match(c, reader->root, writer->root);
    free(c);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Levels                                                                                       */

static const char *const compat_names[] = {
    "NONE",         "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
    "FORWARD_TRANSITIVE", "FULL",     "FULL_TRANSITIVE",
};

const char *kb_compat_name(kb_compat_t c)
{
    return (unsigned)c < 7 ? compat_names[c] : "?";
}

int kb_compat_parse(const char *name, kb_compat_t *out)
{
    for (int i = 0; name && i < 7; i++)
        if (!strcasecmp(name, compat_names[i])) {
            *out = (kb_compat_t)i;
            return 0;
        }
    return K_ERR_INVAL;
}

static bool check_one(kb_compat_t level, const kb_avro_schema_t *cand,
                      const kb_avro_schema_t *old, char *msg, size_t msglen)
{
    bool back = level == KB_COMPAT_BACKWARD || level == KB_COMPAT_BACKWARD_TRANSITIVE ||
                level == KB_COMPAT_FULL || level == KB_COMPAT_FULL_TRANSITIVE;
    bool fwd = level == KB_COMPAT_FORWARD || level == KB_COMPAT_FORWARD_TRANSITIVE ||
               level == KB_COMPAT_FULL || level == KB_COMPAT_FULL_TRANSITIVE;
    char why[400];
    if (back && !kb_avro_can_read(cand, old, why, sizeof why)) {
        kb_avro_errf(msg, msglen, "the new schema cannot read data written with an earlier "
                     "one (BACKWARD): %s", why);
        return false;
    }
    if (fwd && !kb_avro_can_read(old, cand, why, sizeof why)) {
        kb_avro_errf(msg, msglen, "an earlier schema cannot read data written with the new "
                     "one (FORWARD): %s", why);
        return false;
    }
    return true;
}

bool kb_avro_compatible(kb_compat_t level, const kb_avro_schema_t *candidate,
                        const kb_avro_schema_t *const *existing, int n_existing, char *msg,
                        size_t msglen)
{
    if (msg && msglen)
        msg[0] = '\0';
    if (level == KB_COMPAT_NONE || n_existing <= 0)
        return true;
    bool transitive = level == KB_COMPAT_BACKWARD_TRANSITIVE ||
                      level == KB_COMPAT_FORWARD_TRANSITIVE || level == KB_COMPAT_FULL_TRANSITIVE;
    int first = transitive ? 0 : n_existing - 1;
    for (int i = n_existing - 1; i >= first; i--)
        if (!check_one(level, candidate, existing[i], msg, msglen))
            return false;
    return true;
}

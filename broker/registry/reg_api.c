/*
 * The Confluent Schema Registry REST API: routing, replies and the read-only endpoints.
 * Writes (register, delete, config changes) are in reg_api_write.c.
 *
 * Be liberal in what is accepted (unknown JSON fields and query parameters are ignored) and
 * exact in what is sent: every response carries the fields Confluent's carries and no others,
 * because the Java client maps them strictly. Errors are {"error_code":N,"message":"..."} with
 * Confluent's codes: 40401 subject not found, 40402 version not found, 40403 schema not found,
 * 40404/40405 subject soft-deleted / not soft-deleted first, 40406/40407 the same for a version,
 * 40408 subject without its own compatibility level, 409 incompatible, 42201 invalid schema,
 * 42202 invalid version, 42203 invalid compatibility level, 50001 storage failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/kb.h"
#include "broker/registry/reg_api.h"

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                      */

void reg_reply_json(reg_call_t *c, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error_code\":50001,\"message\":\"out of memory\"}";
        text = strdup(oom);
        status = 500;
    }
    c->reply(c->ctx, status, text, text ? strlen(text) : 0);
}

void reg_reply_error(reg_call_t *c, int status, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reg_reply_json(c, status, json_pack("{s:i, s:s}", "error_code", code, "message", msg));
}

bool reg_query_true(reg_call_t *c, const char *name)
{
    const char *v = c->req->query ? c->req->query(c->req->query_ud, name) : NULL;
    return v && !strcasecmp(v, "true");
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing paths and bodies                                                                     */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes one segment; a bad escape or a NUL makes it unusable. */
static char *decode_segment(const char *p, size_t n)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; out && i < n; i++) {
        char ch = p[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        out[k++] = ch;
    }
    if (out)
        out[k] = '\0';
    return out;
}

static int split_path(reg_call_t *c, const char *path)
{
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (c->nseg == REG_MAX_SEGS)
            return K_ERR_INVAL;
        if (!(c->seg[c->nseg] = decode_segment(p, n)))
            return K_ERR_MALFORMED;
        c->nseg++;
        p += n;
    }
    return 0;
}

json_t *reg_body(reg_call_t *c)
{
    json_error_t e;
    json_t *j = NULL;
    if (c->req->body_len)
        j = json_loadb((const char *)c->req->body, c->req->body_len, 0, &e);
    else
        snprintf(e.text, sizeof e.text, "empty body");
    if (!j || !json_is_object(j)) {
        reg_reply_error(c, 400, 400, "Invalid JSON in the request body: %s",
                        j ? "expected an object" : e.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

int reg_parse_version(reg_call_t *c, const char *text, int32_t *out)
{
    if (!strcmp(text, "latest") || !strcmp(text, "-1")) {
        *out = -1;
        return 0;
    }
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*text && !*end && v >= 1 && v <= INT32_MAX) {
        *out = (int32_t)v;
        return 0;
    }
    reg_reply_error(c, 422, 42202,
                    "The specified version '%.100s' is not a valid version id. Allowed values "
                    "are between [1, 2^31-1] and the string \"latest\"",
                    text);
    return K_ERR_INVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared lookups that answer the client when they fail                                        */

reg_subject_t *reg_need_subject(reg_call_t *c, const char *name, bool include_deleted)
{
    reg_subject_t *s = reg_subject_find(c->r, name);
    if (s && s->n && (include_deleted || reg_subject_live(s)))
        return s;
    reg_reply_error(c, 404, 40401, "Subject '%.300s' not found.", name);
    return NULL;
}

reg_version_t *reg_need_version(reg_call_t *c, reg_subject_t *s, const char *vtext,
                                bool include_deleted)
{
    int32_t version;
    if (reg_parse_version(c, vtext, &version) < 0)
        return NULL;
    reg_version_t *v = reg_version_find(s, version, include_deleted);
    if (!v)
        reg_reply_error(c, 404, 40402, "Version %.100s not found.", vtext);
    return v;
}

/* {"subject","version","id","schema"} plus "references" when it has any (schemaType only for
 * non-Avro, which Depot does not store). */
json_t *reg_version_json(const reg_subject_t *s, const reg_version_t *v, const reg_schema_t *sc)
{
    json_t *o = json_pack("{s:s, s:i, s:i, s:s}", "subject", s->name, "version", (int)v->version,
                          "id", (int)v->id, "schema", sc->schema);
    if (o && sc->refs)
        json_object_set(o, "references", sc->refs);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Read endpoints                                                                               */

static bool schema_used(kb_registry_t *r, int32_t id, bool include_deleted)
{
    for (int i = 0; i < r->n_subjects; i++)
        for (int k = 0; k < r->subjects[i]->n; k++) {
            const reg_version_t *v = &r->subjects[i]->v[k];
            if (v->id == id && (include_deleted || !v->deleted))
                return true;
        }
    return false;
}

static reg_schema_t *need_schema_id(reg_call_t *c, const char *text)
{
    char *end;
    long long id = strtoll(text, &end, 10);
    reg_schema_t *sc = NULL;
    if (*text && !*end && id >= 0 && id <= INT32_MAX)
        sc = reg_schema_by_id(c->r, (int32_t)id);
    /* Soft-deleted versions still resolve by id: consumers must read what was written. */
    if (sc && schema_used(c->r, sc->id, true))
        return sc;
    reg_reply_error(c, 404, 40403, "Schema %.100s not found", text);
    return NULL;
}

static void get_schema_by_id(reg_call_t *c)
{
    reg_schema_t *sc = need_schema_id(c, c->seg[2]);
    if (!sc)
        return;
    json_t *o = json_pack("{s:s}", "schema", sc->schema);
    if (o && sc->refs)
        json_object_set(o, "references", sc->refs);
    reg_reply_json(c, 200, o);
}

/* /schemas/ids/{id}/versions and /subjects */
static void get_schema_usage(reg_call_t *c, bool versions)
{
    reg_schema_t *sc = need_schema_id(c, c->seg[2]);
    if (!sc)
        return;
    bool del = reg_query_true(c, "deleted");
    json_t *a = json_array();
    for (int i = 0; a && i < c->r->n_subjects; i++) {
        const reg_subject_t *s = c->r->subjects[i];
        bool listed = false;
        for (int k = 0; k < s->n; k++) {
            const reg_version_t *v = &s->v[k];
            if (v->id != sc->id || (v->deleted && !del) || (!versions && listed))
                continue;
            listed = true;
            json_array_append_new(a, versions ? json_pack("{s:s, s:i}", "subject", s->name,
                                                          "version", (int)v->version)
                                              : json_string(s->name));
        }
    }
    reg_reply_json(c, 200, a);
}

static void get_subjects(reg_call_t *c)
{
    bool del = reg_query_true(c, "deleted");
    const char *prefix = c->req->query ? c->req->query(c->req->query_ud, "subjectPrefix") : NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < c->r->n_subjects; i++) {
        const reg_subject_t *s = c->r->subjects[i];
        if (!s->n || (!del && !reg_subject_live(s)))
            continue;
        if (prefix && strncmp(s->name, prefix, strlen(prefix)))
            continue;
        json_array_append_new(a, json_string(s->name));
    }
    reg_reply_json(c, 200, a);
}

/* GET /schemas: every (live) subject version, or only the latest per subject. */
static void get_all_schemas(reg_call_t *c)
{
    bool del = reg_query_true(c, "deleted"), latest = reg_query_true(c, "latestOnly");
    const char *prefix = c->req->query ? c->req->query(c->req->query_ud, "subjectPrefix") : NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < c->r->n_subjects; i++) {
        reg_subject_t *s = c->r->subjects[i];
        if (prefix && strncmp(s->name, prefix, strlen(prefix)))
            continue;
        reg_version_t *only = latest ? reg_version_find(s, -1, del) : NULL;
        for (int k = 0; k < s->n; k++) {
            reg_version_t *v = &s->v[k];
            reg_schema_t *sc = reg_schema_by_id(c->r, v->id);
            if (sc && (del || !v->deleted) && (!latest || v == only))
                json_array_append_new(a, reg_version_json(s, v, sc));
        }
    }
    reg_reply_json(c, 200, a);
}

static void get_versions(reg_call_t *c)
{
    bool del = reg_query_true(c, "deleted");
    reg_subject_t *s = reg_need_subject(c, c->seg[1], del);
    if (!s)
        return;
    json_t *a = json_array();
    for (int k = 0; a && k < s->n; k++)
        if (del || !s->v[k].deleted)
            json_array_append_new(a, json_integer(s->v[k].version));
    reg_reply_json(c, 200, a);
}

/* /subjects/{s}/versions/{v}[/schema] */
static void get_version(reg_call_t *c, bool raw)
{
    bool del = reg_query_true(c, "deleted");
    reg_subject_t *s = reg_need_subject(c, c->seg[1], del);
    reg_version_t *v = s ? reg_need_version(c, s, c->seg[3], del) : NULL;
    if (!v)
        return;
    reg_schema_t *sc = reg_schema_by_id(c->r, v->id);
    if (!sc) {
        reg_reply_error(c, 404, 40403, "Schema %d not found", (int)v->id);
        return;
    }
    if (raw) { /* the schema itself is the body */
        c->reply(c->ctx, 200, strdup(sc->schema), strlen(sc->schema));
        return;
    }
    reg_reply_json(c, 200, reg_version_json(s, v, sc));
}

/* /subjects/{s}/versions/{v}/referencedby: ids of schemas that reference this version. */
static void get_referenced_by(reg_call_t *c)
{
    reg_subject_t *s = reg_need_subject(c, c->seg[1], false);
    reg_version_t *v = s ? reg_need_version(c, s, c->seg[3], false) : NULL;
    if (!v)
        return;
    json_t *a = json_array();
    for (int i = 0; a && i < c->r->n_schemas; i++) {
        size_t k;
        json_t *ref;
        json_array_foreach(c->r->schemas[i]->refs, k, ref) {
            const char *rs = json_string_value(json_object_get(ref, "subject"));
            json_int_t rv = json_integer_value(json_object_get(ref, "version"));
            if (rs && !strcmp(rs, s->name) && rv == v->version) {
                json_array_append_new(a, json_integer(c->r->schemas[i]->id));
                break;
            }
        }
    }
    reg_reply_json(c, 200, a);
}

static void get_config(reg_call_t *c, const char *subject)
{
    kb_compat_t level = c->r->global_compat;
    if (subject) {
        reg_subject_t *s = reg_subject_find(c->r, subject);
        if (s && s->has_compat)
            level = s->compat;
        else if (!reg_query_true(c, "defaultToGlobal")) {
            reg_reply_error(c, 404, 40408,
                            "Subject '%.300s' does not have subject-level compatibility "
                            "configured",
                            subject);
            return;
        }
    }
    reg_reply_json(c, 200, json_pack("{s:s}", "compatibilityLevel", kb_compat_name(level)));
}

/* ------------------------------------------------------------------------------------------ */
/* Routing                                                                                      */

static bool is(const reg_call_t *c, int n, const char *a, const char *b)
{
    return c->nseg == n && !strcmp(c->seg[0], a) && (!b || (n > 1 && !strcmp(c->seg[1], b)));
}

static bool seg_is(const reg_call_t *c, int i, const char *s)
{
    return i < c->nseg && !strcmp(c->seg[i], s);
}

/* Returns true when the path names an endpoint (so a wrong method is a 405, not a 404). */
static bool route_reads(reg_call_t *c, const char *m, bool *known)
{
    bool get = !strcmp(m, "GET");
    *known = true;
    if (c->nseg == 0)
        return get ? (reg_reply_json(c, 200, json_object()), true) : false;
    if (is(c, 1, "schemas", NULL))
        return get ? (get_all_schemas(c), true) : false;
    if (is(c, 2, "schemas", "types"))
        return get ? (reg_reply_json(c, 200, json_pack("[s]", "AVRO")), true) : false;
    if (is(c, 3, "schemas", "ids"))
        return get ? (get_schema_by_id(c), true) : false;
    if (c->nseg == 4 && seg_is(c, 0, "schemas") && seg_is(c, 1, "ids") &&
        (seg_is(c, 3, "versions") || seg_is(c, 3, "subjects")))
        return get ? (get_schema_usage(c, seg_is(c, 3, "versions")), true) : false;
    if (is(c, 1, "subjects", NULL))
        return get ? (get_subjects(c), true) : false;
    if (c->nseg == 3 && seg_is(c, 0, "subjects") && seg_is(c, 2, "versions") && get)
        return get_versions(c), true;
    if (c->nseg == 4 && seg_is(c, 0, "subjects") && seg_is(c, 2, "versions") && get)
        return get_version(c, false), true;
    if (c->nseg == 5 && seg_is(c, 0, "subjects") && seg_is(c, 2, "versions") &&
        (seg_is(c, 4, "schema") || seg_is(c, 4, "referencedby")))
        return get ? (seg_is(c, 4, "schema") ? get_version(c, true) : get_referenced_by(c),
                      true)
                   : false;
    if ((is(c, 1, "config", NULL) || (c->nseg == 2 && seg_is(c, 0, "config"))) && get)
        return get_config(c, c->nseg == 2 ? c->seg[1] : NULL), true;
    if ((is(c, 1, "mode", NULL) || (c->nseg == 2 && seg_is(c, 0, "mode"))))
        return get ? (reg_mode_get(c, c->nseg == 2 ? c->seg[1] : NULL), true) : false;
    *known = false;
    return false;
}

static void dispatch(reg_call_t *c)
{
    const char *m = c->req->method;
    bool known_r = false, known_w = false;
    if (route_reads(c, m, &known_r) || reg_route_writes(c, m, &known_w))
        return;
    if (known_r || known_w)
        reg_reply_error(c, 405, 405, "HTTP 405 Method Not Allowed");
    else
        reg_reply_error(c, 404, 404, "HTTP 404 Not Found");
}

void kb_registry_call(kb_registry_t *r, const kb_reg_request_t *req, kb_reg_reply_fn reply,
                      void *ctx)
{
    reg_call_t c = {.r = r, .req = req, .reply = reply, .ctx = ctx};
    int rc = split_path(&c, req->path ? req->path : "/");
    if (rc < 0)
        reg_reply_error(&c, rc == K_ERR_INVAL ? 404 : 400, rc == K_ERR_INVAL ? 404 : 400,
                        rc == K_ERR_INVAL ? "HTTP 404 Not Found" : "Bad percent-encoding in "
                                                                   "the path");
    else
        dispatch(&c);
    for (int i = 0; i < c.nseg; i++)
        free(c.seg[i]);
}

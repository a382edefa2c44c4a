/*
 * The configured client quotas (quota.h) and their file.
 *
 * File format (<log.dirs[0]>/__client_quotas), text, one entity per line, rewritten whole on
 * every change (temp file, fsync, rename, directory fsync: quota.c):
 *
 *   # comment lines start with '#'
 *   <crc> <user> <client-id> <key>=<value> [<key>=<value>...]
 *
 *   crc        CRC-32C of everything after "<crc> " on the line, 8 lowercase hex digits
 *   user, client-id   '-' when not part of the entity, '*' for <default>, or '=' followed by
 *              the name percent-encoded (%XX for bytes outside [A-Za-z0-9._@-])
 *   key        producer_byte_rate, consumer_byte_rate, request_percentage,
 *              controller_mutation_rate
 *   value      a decimal floating-point number ("%.17g": it reads back exactly)
 *
 * A line that fails its CRC or does not parse stops the broker's start with file:line, as the
 * credential and ACL files do: quotas silently lost would let the flooding client back in.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/quota/quota.h"
#include "protocol/kp_crc32c.h"

const char *const kb_quota_key_names[KB_QK_N] = {
    "producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"};

int kb_quota_key(const char *name, size_t len)
{
    for (int i = 0; i < KB_QK_N; i++)
        if (strlen(kb_quota_key_names[i]) == len && !memcmp(kb_quota_key_names[i], name, len))
            return i;
    return -1;
}

void kb_qstore_init(kb_qstore_t *s)
{
    memset(s, 0, sizeof *s);
}

void kb_qstore_deinit(kb_qstore_t *s)
{
    free(s->items);
    memset(s, 0, sizeof *s);
}

static bool part_eq(int8_t ka, const char *a, int8_t kb, const char *b)
{
    return ka == kb && (ka != KB_QE_NAME || !strcmp(a, b));
}

int kb_qstore_find(const kb_qstore_t *s, const kb_quota_entity_t *e)
{
    for (int i = 0; i < s->n; i++) {
        const kb_quota_entity_t *x = &s->items[i].e;
        if (part_eq(x->user_kind, x->user, e->user_kind, e->user) &&
            part_eq(x->client_kind, x->client, e->client_kind, e->client))
            return i;
    }
    return -1;
}

int kb_qstore_set(kb_qstore_t *s, const kb_quota_entity_t *e, int key, double v)
{
    if (key < 0 || key >= KB_QK_N) return K_ERR_INVAL;
    int i = kb_qstore_find(s, e);
    if (i < 0) {
        if (isnan(v)) return 0;
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 8;
            kb_quota_entry_t *ni = realloc(s->items, (size_t)cap * sizeof *ni);
            if (!ni) return K_ERR_NOMEM;
            s->items = ni;
            s->cap = cap;
        }
        i = s->n++;
        s->items[i].e = *e;
        for (int k = 0; k < KB_QK_N; k++)
            s->items[i].v[k] = NAN;
    }
    s->items[i].v[key] = v;
    s->gen++;
    bool any = false;
    for (int k = 0; k < KB_QK_N; k++)
        any = any || !isnan(s->items[i].v[k]);
    if (!any) {
        memmove(&s->items[i], &s->items[i + 1], (size_t)(s->n - i - 1) * sizeof *s->items);
        s->n--;
    }
    return 0;
}

int kb_qstore_copy(kb_qstore_t *dst, const kb_qstore_t *src)
{
    kb_qstore_init(dst);
    if (src->n == 0) return 0;
    if (!(dst->items = malloc((size_t)src->n * sizeof *dst->items))) return K_ERR_NOMEM;
    memcpy(dst->items, src->items, (size_t)src->n * sizeof *dst->items);
    dst->n = dst->cap = src->n;
    dst->gen = src->gen;
    return 0;
}

/* Kafka's precedence: level 1..8 of entity x for (user, client), or 0 if x does not apply. */
static int level_of(const kb_quota_entity_t *x, const char *user, const char *client)
{
    int u = x->user_kind == KB_QE_NAME ? (strcmp(x->user, user) ? -1 : 0)
            : x->user_kind == KB_QE_DEFAULT ? 1
                                            : 2;
    int c = x->client_kind == KB_QE_NAME ? (strcmp(x->client, client) ? -1 : 0)
            : x->client_kind == KB_QE_DEFAULT ? 1
                                              : 2;
    if (u < 0 || c < 0 || (u == 2 && c == 2)) return 0;
    /* rows: user named, user default, no user; columns: client named, default, none */
    static const int table[3][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 0}};
    return table[u][c];
}

double kb_qstore_resolve(const kb_qstore_t *s, int key, const char *user, const char *client,
                         int *level, bool *share_user, bool *share_client)
{
    int best = 0;
    double v = NAN;
    for (int i = 0; i < s->n; i++) {
        if (isnan(s->items[i].v[key])) continue;
        int l = level_of(&s->items[i].e, user, client);
        if (l && (!best || l < best)) {
            best = l;
            v = s->items[i].v[key];
        }
    }
    *level = best;
    *share_user = best >= 1 && best <= 6;
    *share_client = best != 3 && best != 6;
    return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Text form                                                                                    */

static bool plain_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

static int put_part(char *out, size_t cap, int8_t kind, const char *name)
{
    if (kind == KB_QE_NONE) return snprintf(out, cap, "-");
    if (kind == KB_QE_DEFAULT) return snprintf(out, cap, "*");
    size_t o = (size_t)snprintf(out, cap, "=");
    for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < cap; p++)
        o += plain_char(*p) ? (size_t)snprintf(out + o, cap - o, "%c", *p)
                            : (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    return (int)o;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

static int get_part(const char *in, int8_t *kind, char *name)
{
    if (!strcmp(in, "-")) return (*kind = KB_QE_NONE), name[0] = 0, 0;
    if (!strcmp(in, "*")) return (*kind = KB_QE_DEFAULT), name[0] = 0, 0;
    if (in[0] != '=') return K_ERR_CORRUPT;
    size_t o = 0;
    for (size_t i = 1; in[i]; i++) {
        char ch = in[i];
        if (ch == '%') {
            int hi = hexval(in[i + 1]), lo = hi < 0 ? -1 : hexval(in[i + 2]);
            if (lo < 0) return K_ERR_CORRUPT;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == 0 || o >= KB_QUOTA_NAME_MAX) return K_ERR_CORRUPT;
        name[o++] = ch;
    }
    name[o] = 0;
    *kind = KB_QE_NAME;
    return 0;
}

int kb_qstore_format(const kb_qstore_t *s, char **out, size_t *len)
{
    size_t cap = 256 + (size_t)s->n * (2 * 3 * KB_QUOTA_NAME_MAX + 256), o = 0;
    char *buf = malloc(cap);
    if (!buf) return K_ERR_NOMEM;
    o += (size_t)snprintf(buf, cap, "# Depot client quotas (AlterClientQuotas)\n"
                                    "# <crc32c> <user> <client-id> <key>=<value>...\n");
    char body[2 * 3 * KB_QUOTA_NAME_MAX + 256];
    for (int i = 0; i < s->n; i++) {
        const kb_quota_entry_t *q = &s->items[i];
        size_t b = (size_t)put_part(body, sizeof body, q->e.user_kind, q->e.user);
        body[b++] = ' ';
        b += (size_t)put_part(body + b, sizeof body - b, q->e.client_kind, q->e.client);
        for (int k = 0; k < KB_QK_N; k++)
            if (!isnan(q->v[k]))
                b += (size_t)snprintf(body + b, sizeof body - b, " %s=%.17g",
                                      kb_quota_key_names[k], q->v[k]);
        o += (size_t)snprintf(buf + o, cap - o, "%08" PRIx32 " %s\n", kp_crc32c(0, body, b),
                              body);
    }
    *out = buf;
    *len = o;
    return 0;
}

static int parse_body(kb_qstore_t *s, char *body)
{
    char *save = NULL, *f;
    kb_quota_entity_t e;
    memset(&e, 0, sizeof e);
    char *u = strtok_r(body, " ", &save), *c = strtok_r(NULL, " ", &save);
    if (!u || !c || get_part(u, &e.user_kind, e.user) < 0 ||
        get_part(c, &e.client_kind, e.client) < 0 ||
        (e.user_kind == KB_QE_NONE && e.client_kind == KB_QE_NONE) || kb_qstore_find(s, &e) >= 0)
        return K_ERR_CORRUPT;
    int nkeys = 0;
    while ((f = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(f, '='), *end;
        int k = eq ? kb_quota_key(f, (size_t)(eq - f)) : -1;
        double v = k >= 0 ? strtod(eq + 1, &end) : NAN;
        if (k < 0 || *end || !isfinite(v) || v <= 0) return K_ERR_CORRUPT;
        int rc = kb_qstore_set(s, &e, k, v);
        if (rc < 0) return rc;
        nkeys++;
    }
    return nkeys ? 0 : K_ERR_CORRUPT;
}

int kb_qstore_parse(kb_qstore_t *s, char *text, char *err, size_t errlen)
{
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++; /* blank lines are skipped by strtok_r: numbers count non-empty lines */
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if (len == 0 || line[0] == '#') continue;
        int rc = K_ERR_CORRUPT;
        char *end;
        if (len > 9 && line[8] == ' ' && strspn(line, "0123456789abcdef") == 8) {
            uint32_t want = (uint32_t)strtoul(line, &end, 16);
            if (end == line + 8 && want == kp_crc32c(0, line + 9, len - 9))
                rc = parse_body(s, line + 9);
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s line %d: corrupt quota line (CRC or format)",
                     KB_QUOTA_FILE, lineno);
            return rc;
        }
    }
    return 0;
}

/* ACL bindings, their file and the authorizer (see acl.h). */
#include "broker/auth/acl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/creds.h"
#include "protocol/kp_crc32c.h"

struct kb_acls {
    char *dir;      /* owned */
    kb_acl_t *list; /* owned, with every string in it */
    int n, cap;
};

static const char *const op_names[] = {
    NULL, "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
    "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS",
    "DESCRIBE_TOKENS"};
static const char *const res_names[] = {NULL,      "ANY",     "TOPIC", "GROUP", "CLUSTER",
                                        "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"};
static const char *const pat_names[] = {NULL, "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const perm_names[] = {NULL, "ANY", "DENY", "ALLOW"};

#define NAME_OF(tab, i) ((i) > 0 && (size_t)(i) < sizeof tab / sizeof tab[0] ? tab[i] : NULL)

const char *kb_acl_op_name(int op)
{
    return NAME_OF(op_names, op);
}
const char *kb_acl_res_name(int res)
{
    return NAME_OF(res_names, res);
}
const char *kb_acl_pattern_name(int pat)
{
    return NAME_OF(pat_names, pat);
}
const char *kb_acl_perm_name(int perm)
{
    return NAME_OF(perm_names, perm);
}

int kb_acls_count(const kb_acls_t *a)
{
    return a ? a->n : 0;
}

const kb_acl_t *kb_acls_at(const kb_acls_t *a, int i)
{
    return a && i >= 0 && i < a->n ? &a->list[i] : NULL;
}

kb_acls_t *kb_acls_new(void)
{
    return calloc(1, sizeof(kb_acls_t)); /* no dir: never saved */
}

static void acl_clear(kb_acl_t *b)
{
    free(b->name);
    free(b->principal);
    free(b->host);
    b->name = b->principal = b->host = NULL;
}

void kb_acls_free(kb_acls_t *a)
{
    if (!a) return;
    for (int i = 0; i < a->n; i++)
        acl_clear(&a->list[i]);
    free(a->list);
    free(a->dir);
    free(a);
}

int kb_acl_validate(const kb_acl_t *b, char *why, size_t whylen)
{
    if (b->resource_type < KB_RES_TOPIC || b->resource_type > KB_RES_TRANSACTIONAL_ID) {
        snprintf(why, whylen, "resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID");
        return K_ERR_INVAL;
    }
    if (b->pattern_type != KB_PAT_LITERAL && b->pattern_type != KB_PAT_PREFIXED) {
        snprintf(why, whylen, "pattern type must be LITERAL or PREFIXED");
        return K_ERR_INVAL;
    }
    if (b->operation < KB_OP_ALL || b->operation > KB_OP_DESCRIBE_TOKENS) {
        snprintf(why, whylen, "operation must not be ANY or unknown");
        return K_ERR_INVAL;
    }
    if (b->permission != KB_PERM_ALLOW && b->permission != KB_PERM_DENY) {
        snprintf(why, whylen, "permission must be ALLOW or DENY");
        return K_ERR_INVAL;
    }
    if (!b->name || !*b->name || !b->principal || !b->host || !*b->host) {
        snprintf(why, whylen, "resource name, principal and host are required");
        return K_ERR_INVAL;
    }
    const char *colon = strchr(b->principal, ':');
    if (!colon || colon == b->principal || !colon[1]) {
        snprintf(why, whylen, "principal must be Type:name (e.g. User:alice or User:*)");
        return K_ERR_INVAL;
    }
    if (b->resource_type == KB_RES_CLUSTER && strcmp(b->name, KB_CLUSTER_NAME)) {
        snprintf(why, whylen, "the cluster resource is named %s", KB_CLUSTER_NAME);
        return K_ERR_INVAL;
    }
    if (b->pattern_type == KB_PAT_PREFIXED && !strcmp(b->name, "*")) {
        snprintf(why, whylen, "a PREFIXED pattern cannot be the wildcard '*'");
        return K_ERR_INVAL;
    }
    return 0;
}

static bool same(const kb_acl_t *x, const kb_acl_t *y)
{
    return x->resource_type == y->resource_type && x->pattern_type == y->pattern_type &&
           x->operation == y->operation && x->permission == y->permission &&
           !strcmp(x->name, y->name) && !strcmp(x->principal, y->principal) &&
           !strcmp(x->host, y->host);
}

int kb_acls_add(kb_acls_t *a, const kb_acl_t *b)
{
    for (int i = 0; i < a->n; i++)
        if (same(&a->list[i], b)) return 0;
    if (a->n >= KB_ACL_MAX) return K_ERR_TOOLARGE;
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        kb_acl_t *nl = realloc(a->list, (size_t)cap * sizeof *nl);
        if (!nl) return K_ERR_NOMEM;
        a->list = nl;
        a->cap = cap;
    }
    kb_acl_t c = *b;
    c.name = strdup(b->name);
    c.principal = strdup(b->principal);
    c.host = strdup(b->host);
    if (!c.name || !c.principal || !c.host) {
        acl_clear(&c);
        return K_ERR_NOMEM;
    }
    a->list[a->n++] = c;
    return 0;
}

int kb_acls_remove_at(kb_acls_t *a, int i)
{
    if (i < 0 || i >= a->n) return K_ERR_RANGE;
    acl_clear(&a->list[i]);
    memmove(&a->list[i], &a->list[i + 1], (size_t)(a->n - i - 1) * sizeof *a->list);
    a->n--;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Matching                                                                                     */

static bool str_eq(const char *s, const char *p, size_t len)
{
    return strlen(s) == len && !memcmp(s, p, len);
}

/* Does binding b's resource pattern cover the resource (type, name)? */
static bool pattern_covers(const kb_acl_t *b, int type, const char *name, size_t len)
{
    if (b->resource_type != type) return false;
    if (b->pattern_type == KB_PAT_LITERAL)
        return !strcmp(b->name, "*") || str_eq(b->name, name, len);
    size_t pl = strlen(b->name);
    return b->pattern_type == KB_PAT_PREFIXED && pl <= len && !memcmp(b->name, name, pl);
}

bool kb_acl_filter_matches(const kb_acl_filter_t *f, const kb_acl_t *b)
{
    if (f->resource_type != KB_RES_ANY && f->resource_type != b->resource_type) return false;
    if (f->operation != KB_OP_ANY && f->operation != b->operation) return false;
    if (f->permission != KB_PERM_ANY && f->permission != b->permission) return false;
    if (f->principal && !str_eq(b->principal, f->principal, f->principal_len)) return false;
    if (f->host && !str_eq(b->host, f->host, f->host_len)) return false;
    switch (f->pattern_type) {
    case KB_PAT_ANY:
        return !f->name || str_eq(b->name, f->name, f->name_len);
    case KB_PAT_MATCH:
        if (!f->name) return true;
        if (b->pattern_type == KB_PAT_LITERAL)
            return !strcmp(b->name, "*") || str_eq(b->name, f->name, f->name_len);
        return strlen(b->name) <= f->name_len && !memcmp(b->name, f->name, strlen(b->name));
    case KB_PAT_LITERAL:
    case KB_PAT_PREFIXED:
        return b->pattern_type == f->pattern_type &&
               (!f->name || str_eq(b->name, f->name, f->name_len));
    }
    return false;
}

static bool op_covers(const kb_acl_t *b, int op)
{
    if (b->operation == KB_OP_ALL || b->operation == op) return true;
    if (b->permission != KB_PERM_ALLOW) return false; /* implications widen ALLOW only */
    if (op == KB_OP_DESCRIBE)
        return b->operation == KB_OP_READ || b->operation == KB_OP_WRITE ||
               b->operation == KB_OP_DELETE || b->operation == KB_OP_ALTER;
    if (op == KB_OP_DESCRIBE_CONFIGS) return b->operation == KB_OP_ALTER_CONFIGS;
    return false;
}

static bool is_super(const char *super_users, const char *principal)
{
    size_t pl = strlen(principal);
    for (const char *p = super_users; p && *p;) {
        while (*p == ';' || *p == ' ')
            p++;
        size_t n = strcspn(p, ";");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (m && m == pl && !memcmp(p, principal, pl)) return true;
        p += n;
    }
    return false;
}

bool kb_acls_authorize(const kb_acls_t *a, const char *super_users, bool allow_if_no_acl,
                       const char *principal, const char *host, int op, int resource_type,
                       const char *name, size_t len)
{
    if (is_super(super_users, principal)) return true;
    const char *colon = strchr(principal, ':');
    size_t tl = colon ? (size_t)(colon - principal) : 0;
    bool any = false, allowed = false;
    for (int i = 0; a && i < a->n; i++) {
        const kb_acl_t *b = &a->list[i];
        if (!pattern_covers(b, resource_type, name, len)) continue;
        any = true;
        bool who = !strcmp(b->principal, principal) ||
                   (colon && !strcmp(b->principal + tl, ":*") && !strncmp(b->principal, principal, tl));
        if (!who || (strcmp(b->host, "*") && strcmp(b->host, host))) continue;
        if (!op_covers(b, op)) continue;
        if (b->permission == KB_PERM_DENY) return false; /* DENY wins */
        allowed = true;
    }
    return allowed || (!any && allow_if_no_acl);
}

/* ------------------------------------------------------------------------------------------ */
/* File                                                                                         */

static int pct(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (o + 4 > cap) return K_ERR_TOOLARGE;
        if (*p > 0x20 && *p < 0x7f && *p != '%')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
    return 0;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *unpct(const char *in)
{
    char *out = malloc(strlen(in) + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = hexv(in[i + 1]), lo = hi < 0 ? -1 : hexv(in[i + 2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

static int parse_line(kb_acls_t *a, char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = 0;
    if (len == 0 || line[0] == '#') return 0;
    if (len < 10 || line[8] != ' ' || strspn(line, "0123456789abcdef") != 8) return K_ERR_CORRUPT;
    char *end;
    if ((uint32_t)strtoul(line, &end, 16) != kp_crc32c(0, line + 9, len - 9)) return K_ERR_CORRUPT;
    char *f[7], *save = NULL;
    int nf = 0;
    for (char *t = strtok_r(line + 9, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (nf == 7) return K_ERR_CORRUPT;
        f[nf++] = t;
    }
    if (nf != 7) return K_ERR_CORRUPT;
    kb_acl_t b = {0};
    long v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = strtol(f[i], &end, 10);
        if (*end || v[i] < 0 || v[i] > 127) return K_ERR_CORRUPT;
    }
    b.resource_type = (int8_t)v[0];
    b.pattern_type = (int8_t)v[1];
    b.operation = (int8_t)v[2];
    b.permission = (int8_t)v[3];
    b.principal = unpct(f[4]);
    b.host = unpct(f[5]);
    b.name = unpct(f[6]);
    char why[128];
    int rc = b.principal && b.host && b.name ? kb_acl_validate(&b, why, sizeof why) : K_ERR_CORRUPT;
    if (rc == 0) rc = kb_acls_add(a, &b);
    else rc = K_ERR_CORRUPT;
    acl_clear(&b);
    return rc;
}

int kb_acls_open(const char *dir, kb_acls_t **out, char *err, size_t errlen)
{
    *out = NULL;
    kb_acls_t *a = calloc(1, sizeof *a);
    if (!a || !(a->dir = strdup(dir))) {
        free(a);
        return K_ERR_NOMEM;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, KB_ACL_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *out = a;
            return 0;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        kb_acls_free(a);
        return K_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        rc = parse_line(a, line);
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        snprintf(err, errlen, "%s:%d: %s", path, lineno,
                 rc == K_ERR_CORRUPT ? "corrupt ACL line (CRC or format)" : k_strerror(rc));
        kb_acls_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

kb_acls_t *kb_acls_clone(const kb_acls_t *a)
{
    kb_acls_t *c = calloc(1, sizeof *c); /* owned by the caller (no dir: never saved) */
    if (!c) return NULL;
    c->cap = a && a->n ? a->n : 0;
    if (c->cap && !(c->list = calloc((size_t)c->cap, sizeof *c->list))) {
        free(c);
        return NULL;
    }
    for (int i = 0; a && i < a->n; i++) {
        kb_acl_t b = a->list[i];
        b.name = strdup(b.name);
        b.principal = strdup(b.principal);
        b.host = strdup(b.host);
        c->list[c->n++] = b; /* counted first, so kb_acls_free frees a partial copy */
        if (!b.name || !b.principal || !b.host) {
            kb_acls_free(c);
            return NULL;
        }
    }
    return c;
}

void kb_acls_swap(kb_acls_t *live, kb_acls_t *other)
{
    kb_acls_t t = *live;
    live->list = other->list, live->n = other->n, live->cap = other->cap;
    other->list = t.list, other->n = t.n, other->cap = t.cap;
}

const char *kb_acls_dir(const kb_acls_t *a)
{
    return a ? a->dir : NULL;
}

int kb_acls_render(const kb_acls_t *a, char **text, size_t *len_out)
{
    *text = NULL;
    *len_out = 0;
    size_t cap = 256, len = 0;
    for (int i = 0; i < a->n; i++)
        cap += 64 + 3 * (strlen(a->list[i].name) + strlen(a->list[i].principal) +
                         strlen(a->list[i].host));
    char *buf = malloc(cap); /* handed to the caller in *text */
    if (!buf) return K_ERR_NOMEM;
    len += (size_t)snprintf(buf, cap,
                            "# Depot ACLs: <crc32c> <resource_type> <pattern_type> <operation> "
                            "<permission> <principal> <host> <name>\n");
    int rc = 0;
    for (int i = 0; i < a->n && rc == 0; i++) {
        const kb_acl_t *b = &a->list[i];
        size_t pc = 3 * strlen(b->principal) + 1, hc = 3 * strlen(b->host) + 1,
               nc = 3 * strlen(b->name) + 1;
        char *p = malloc(pc), *h = malloc(hc), *n = malloc(nc);
        if (!p || !h || !n) {
            rc = K_ERR_NOMEM;
        } else {
            pct(b->principal, p, pc);
            pct(b->host, h, hc);
            pct(b->name, n, nc);
            size_t at = len + 9;
            int w = snprintf(buf + at, cap - at, "%d %d %d %d %s %s %s", b->resource_type,
                             b->pattern_type, b->operation, b->permission, p, h, n);
            if (w < 0 || (size_t)w + at + 2 > cap) {
                rc = K_ERR_TOOLARGE;
            } else {
                char crc[10];
                snprintf(crc, sizeof crc, "%08" PRIx32, kp_crc32c(0, buf + at, (size_t)w));
                memcpy(buf + len, crc, 8);
                buf[len + 8] = ' ';
                len = at + (size_t)w;
                buf[len++] = '\n';
            }
        }
        free(p);
        free(h);
        free(n);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *text = buf;
    *len_out = len;
    return 0;
}

int kb_acls_save(kb_acls_t *a)
{
    if (!a->dir) return K_ERR_INVAL;
    char *buf;
    size_t len;
    int rc = kb_acls_render(a, &buf, &len);
    if (rc == 0) rc = kb_auth_write_atomic(a->dir, KB_ACL_FILE, buf, len);
    free(buf);
    return rc;
}

/* The SCRAM credential store (format and rules in creds.h). */
#include "broker/auth/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "broker/core/util.h"
#include "broker/kb.h"
#include "protocol/kp_crc32c.h"

typedef struct {
    char user[KB_SCRAM_MAX_USER + 1];
    kb_scram_cred_t cred;
} entry_t;

struct kb_creds {
    char *dir;      /* owned */
    entry_t *items; /* owned */
    int n, cap;
};

int kb_creds_count(const kb_creds_t *c)
{
    return c ? c->n : 0;
}

const char *kb_creds_user(const kb_creds_t *c, int i)
{
    return i >= 0 && i < c->n ? c->items[i].user : NULL;
}

const kb_scram_cred_t *kb_creds_cred(const kb_creds_t *c, int i)
{
    return i >= 0 && i < c->n ? &c->items[i].cred : NULL;
}

static int find(const kb_creds_t *c, const char *user, int mech)
{
    for (int i = 0; i < c->n; i++)
        if (c->items[i].cred.mech == mech && !strcmp(c->items[i].user, user)) return i;
    return -1;
}

int kb_creds_find(const kb_creds_t *c, const char *user, int mech, kb_scram_cred_t *cred)
{
    int i = c ? find(c, user, mech) : -1;
    if (i < 0) return K_ERR_NOENT;
    *cred = c->items[i].cred;
    return 0;
}

int kb_creds_upsert(kb_creds_t *c, const char *user, const kb_scram_cred_t *cred)
{
    size_t ul = strlen(user);
    if (ul == 0 || ul > KB_SCRAM_MAX_USER || !kb_scram_digest_len(cred->mech)) return K_ERR_INVAL;
    int i = find(c, user, cred->mech);
    if (i < 0) {
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 8;
            entry_t *ni = realloc(c->items, (size_t)cap * sizeof *ni);
            if (!ni) return K_ERR_NOMEM;
            c->items = ni;
            c->cap = cap;
        }
        i = c->n++;
        memcpy(c->items[i].user, user, ul + 1);
    }
    c->items[i].cred = *cred;
    return 0;
}

int kb_creds_delete(kb_creds_t *c, const char *user, int mech)
{
    int i = find(c, user, mech);
    if (i < 0) return K_ERR_NOENT;
    memmove(&c->items[i], &c->items[i + 1], (size_t)(c->n - i - 1) * sizeof *c->items);
    c->n--;
    OPENSSL_cleanse(&c->items[c->n], sizeof c->items[c->n]);
    return 0;
}

void kb_creds_free(kb_creds_t *c)
{
    if (!c) return;
    if (c->items) OPENSSL_cleanse(c->items, (size_t)c->cap * sizeof *c->items);
    free(c->items);
    free(c->dir);
    free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Text form                                                                                    */

static bool plain_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

static int pct_encode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (o + 4 > cap) return K_ERR_TOOLARGE;
        if (plain_char(*p))
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

static int pct_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        char ch = in[i];
        if (ch == '%') {
            int hi = hexval(in[i + 1]), lo = hi < 0 ? -1 : hexval(in[i + 2]);
            if (lo < 0) return K_ERR_CORRUPT;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == 0 || o + 1 >= cap) return K_ERR_CORRUPT;
        out[o++] = ch;
    }
    if (o == 0) return K_ERR_CORRUPT;
    out[o] = 0;
    return 0;
}

/* The part of a line the CRC covers: "<mech> <iter> <salt> <stored> <server> <user>". */
static int format_body(const char *user, const kb_scram_cred_t *cr, char *out, size_t cap)
{
    char salt[128], st[128], sv[128], name[KB_SCRAM_MAX_USER * 3 + 1];
    size_t dl = kb_scram_digest_len(cr->mech);
    if (kb_b64_encode(cr->salt, cr->salt_len, salt, sizeof salt) < 0 ||
        kb_b64_encode(cr->stored_key, dl, st, sizeof st) < 0 ||
        kb_b64_encode(cr->server_key, dl, sv, sizeof sv) < 0 ||
        pct_encode(user, name, sizeof name) < 0)
        return K_ERR_INVAL;
    int n = snprintf(out, cap, "%s %d %s %s %s %s", kb_scram_mech_name(cr->mech),
                     (int)cr->iterations, salt, st, sv, name);
    return n > 0 && (size_t)n < cap ? n : K_ERR_TOOLARGE;
}

static int parse_body(char *body, char *user, size_t ucap, kb_scram_cred_t *cr)
{
    char *f[6];
    char *save = NULL;
    int nf = 0;
    for (char *t = strtok_r(body, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (nf == 6) return K_ERR_CORRUPT;
        f[nf++] = t;
    }
    if (nf != 6) return K_ERR_CORRUPT;
    memset(cr, 0, sizeof *cr);
    cr->mech = kb_scram_mech_from_name(f[0], strlen(f[0]));
    size_t dl = kb_scram_digest_len(cr->mech);
    char *end;
    long it = strtol(f[1], &end, 10);
    if (!dl || *end || it < KB_SCRAM_MIN_ITERATIONS || it > KB_SCRAM_MAX_ITERATIONS)
        return K_ERR_CORRUPT;
    cr->iterations = (int32_t)it;
    int sl = kb_b64_decode(f[2], strlen(f[2]), cr->salt, sizeof cr->salt);
    if (sl <= 0) return K_ERR_CORRUPT;
    cr->salt_len = (size_t)sl;
    if (kb_b64_decode(f[3], strlen(f[3]), cr->stored_key, sizeof cr->stored_key) != (int)dl ||
        kb_b64_decode(f[4], strlen(f[4]), cr->server_key, sizeof cr->server_key) != (int)dl)
        return K_ERR_CORRUPT;
    return pct_decode(f[5], user, ucap);
}

static int load_line(kb_creds_t *c, char *line, const char *path, int lineno, char *err,
                     size_t errlen)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = 0;
    if (len == 0 || line[0] == '#') return 0;
    char user[KB_SCRAM_MAX_USER + 1];
    kb_scram_cred_t cr;
    char *end;
    int rc = K_ERR_CORRUPT;
    if (len > 9 && line[8] == ' ' && strspn(line, "0123456789abcdef") == 8) {
        uint32_t want = (uint32_t)strtoul(line, &end, 16);
        uint32_t got = kp_crc32c(0, line + 9, len - 9);
        if (end == line + 8 && want == got) rc = parse_body(line + 9, user, sizeof user, &cr);
    }
    if (rc == 0 && find(c, user, cr.mech) >= 0) rc = K_ERR_CORRUPT; /* duplicate */
    if (rc == 0) rc = kb_creds_upsert(c, user, &cr);
    OPENSSL_cleanse(&cr, sizeof cr);
    if (rc == K_ERR_CORRUPT)
        snprintf(err, errlen, "%s:%d: corrupt credential line (CRC or format)", path, lineno);
    return rc;
}

int kb_creds_open(const char *dir, kb_creds_t **out, char *err, size_t errlen)
{
    *out = NULL;
    kb_creds_t *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        return K_ERR_NOMEM;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, KB_CREDS_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *out = c;
            return 0;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        kb_creds_free(c);
        return K_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0)
        rc = load_line(c, line, path, ++lineno, err, errlen);
    if (line) OPENSSL_cleanse(line, cap);
    free(line);
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = K_ERR_IO;
    }
    fclose(f);
    if (rc < 0) {
        kb_creds_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int kb_creds_render(const kb_creds_t *c, char **text, size_t *len_out)
{
    *text = NULL;
    *len_out = 0;
    size_t cap = 256 + (size_t)c->n * 1200, len = 0;
    char *buf = malloc(cap); /* handed to the caller in *text */
    if (!buf) return K_ERR_NOMEM;
    len += (size_t)snprintf(buf, cap,
                            "# Depot SCRAM credentials: salted and hashed, never a password.\n"
                            "# <crc32c> <mechanism> <iterations> <salt> <stored_key> "
                            "<server_key> <user>\n");
    for (int i = 0; i < c->n; i++) {
        char body[1100];
        int bl = format_body(c->items[i].user, &c->items[i].cred, body, sizeof body);
        if (bl < 0) {
            OPENSSL_cleanse(buf, cap);
            free(buf);
            return bl;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%08" PRIx32 " %s\n",
                                kp_crc32c(0, body, (size_t)bl), body);
    }
    *text = buf;
    *len_out = len;
    return 0;
}

int kb_creds_save(kb_creds_t *c)
{
    char *buf;
    size_t len;
    int rc = kb_creds_render(c, &buf, &len);
    if (rc < 0) return rc;
    rc = kb_auth_write_atomic(c->dir, KB_CREDS_FILE, buf, len);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

kb_creds_t *kb_creds_clone(const kb_creds_t *c)
{
    kb_creds_t *k = calloc(1, sizeof *k); /* owned by the caller */
    if (!k) return NULL;
    k->dir = strdup(c->dir ? c->dir : "");
    k->cap = c->n ? c->n : 1;
    k->items = calloc((size_t)k->cap, sizeof *k->items);
    if (!k->dir || !k->items) {
        kb_creds_free(k);
        return NULL;
    }
    if (c->n) memcpy(k->items, c->items, (size_t)c->n * sizeof *k->items);
    k->n = c->n;
    return k;
}

void kb_creds_swap(kb_creds_t *live, kb_creds_t *other)
{
    kb_creds_t t = *live;
    live->items = other->items, live->n = other->n, live->cap = other->cap;
    other->items = t.items, other->n = t.n, other->cap = t.cap;
}

const char *kb_creds_dir(const kb_creds_t *c)
{
    return c ? c->dir : NULL;
}

int kb_auth_write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    int err = 0;
    const char *what = "write";
    int rc = kb_write_file_durably_mode(dir, name, data, len, 0600, &err, &what);
    if (rc < 0) kb_log(KB_LOG_ERROR, "%s/%s: %s failed: %s", dir, name, what, strerror(err));
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]'             */

/* Next key=value inside the brackets; values may be "quoted" (a quoted value may hold ','). */
static int next_kv(const char **pp, const char *end, char *key, size_t kcap, char *val,
                   size_t vcap)
{
    const char *p = *pp;
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq || eq == p || (size_t)(eq - p) >= kcap) return K_ERR_INVAL;
    memcpy(key, p, (size_t)(eq - p));
    key[eq - p] = 0;
    p = eq + 1;
    const char *vs = p, *ve;
    if (p < end && *p == '"') {
        vs = ++p;
        ve = memchr(p, '"', (size_t)(end - p));
        if (!ve) return K_ERR_INVAL;
        p = ve + 1;
    } else {
        ve = memchr(p, ',', (size_t)(end - p));
        if (!ve) ve = end;
        p = ve;
    }
    if ((size_t)(ve - vs) >= vcap) return K_ERR_INVAL;
    memcpy(val, vs, (size_t)(ve - vs));
    val[ve - vs] = 0;
    if (p < end && *p != ',') return K_ERR_INVAL;
    *pp = p < end ? p + 1 : p;
    return 0;
}

int kb_creds_add_arg(kb_creds_t *c, const char *arg, char *user_out, size_t ucap, int *mech_out,
                     char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    size_t al = strlen(arg);
    int mech = eq ? kb_scram_mech_from_name(arg, (size_t)(eq - arg)) : KB_SCRAM_UNKNOWN;
    if (!mech || eq[1] != '[' || al < 2 || arg[al - 1] != ']') {
        snprintf(err, errlen, "expected SCRAM-SHA-256=[name=USER,password=PASSWORD] or "
                              "SCRAM-SHA-512=[...]");
        return K_ERR_INVAL;
    }
    const char *p = eq + 2, *end = arg + al - 1;
    char key[32], val[1024], name[KB_SCRAM_MAX_USER + 1] = "", pw[1024] = "";
    long iter = KB_SCRAM_MIN_ITERATIONS;
    bool have_pw = false;
    while (p < end) {
        if (next_kv(&p, end, key, sizeof key, val, sizeof val) < 0) {
            snprintf(err, errlen, "cannot parse '%s'", arg);
            return K_ERR_INVAL;
        }
        if (!strcmp(key, "name") && strlen(val) <= KB_SCRAM_MAX_USER) {
            snprintf(name, sizeof name, "%s", val);
        } else if (!strcmp(key, "password")) {
            snprintf(pw, sizeof pw, "%s", val);
            have_pw = true;
        } else if (!strcmp(key, "iterations")) {
            char *e;
            iter = strtol(val, &e, 10);
            if (*e || iter < KB_SCRAM_MIN_ITERATIONS || iter > KB_SCRAM_MAX_ITERATIONS) {
                snprintf(err, errlen, "iterations must be %d..%d", KB_SCRAM_MIN_ITERATIONS,
                         KB_SCRAM_MAX_ITERATIONS);
                return K_ERR_INVAL;
            }
        } else {
            snprintf(err, errlen, "unknown or bad field '%s' (name, password, iterations)", key);
            return K_ERR_INVAL;
        }
    }
    OPENSSL_cleanse(val, sizeof val);
    if (!name[0] || !have_pw || !pw[0]) {
        snprintf(err, errlen, "name and password are required");
        return K_ERR_INVAL;
    }
    kb_scram_cred_t cred;
    int rc = kb_scram_cred_new(mech, pw, (int32_t)iter, &cred);
    OPENSSL_cleanse(pw, sizeof pw);
    if (rc == 0) rc = kb_creds_upsert(c, name, &cred);
    OPENSSL_cleanse(&cred, sizeof cred);
    if (rc < 0) {
        snprintf(err, errlen, "cannot add the credential: %s", k_strerror(rc));
        return rc;
    }
    snprintf(user_out, ucap, "%s", name);
    *mech_out = mech;
    return 0;
}

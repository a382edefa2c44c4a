/*
 * Java .properties parsing and the validation of Connect worker and connector settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/connect.h"
#include "protocol/k_status.h"

void kc_props_free(kc_props_t *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof *p);
}

const char *kc_props_get(const kc_props_t *p, const char *key)
{
    for (int i = p->n - 1; i >= 0; i--)
        if (!strcmp(p->keys[i], key)) return p->vals[i];
    return NULL;
}

static int props_set(kc_props_t *p, char *k, char *v)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], k)) {
            free(k);
            free(p->vals[i]);
            p->vals[i] = v;
            return 0;
        }
    char **nk = realloc(p->keys, sizeof *nk * (size_t)(p->n + 1));
    if (nk) p->keys = nk;
    char **nv = nk ? realloc(p->vals, sizeof *nv * (size_t)(p->n + 1)) : NULL;
    if (nv) p->vals = nv;
    if (!nk || !nv) {
        free(k);
        free(v);
        return K_ERR_NOMEM;
    }
    p->keys[p->n] = k;
    p->vals[p->n++] = v;
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/*
 * Joins continuation lines and undoes escapes of one logical line starting at *pos. Writes the
 * key and value (owned) and advances *pos. Returns 1 with a pair, 0 for a blank/comment line,
 * -1 at the end of the text.
 */
static int next_pair(const char *t, size_t len, size_t *pos, char **key, char **val)
{
    size_t i = *pos;
    if (i >= len) return -1;
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\f'))
        i++;
    if (i >= len || t[i] == '\n' || t[i] == '\r' || t[i] == '#' || t[i] == '!') {
        while (i < len && t[i] != '\n')
            i++;
        *pos = i + 1;
        return 0;
    }
    /* A logical line is at most len bytes long after unescaping (escapes only shrink). */
    char *k = malloc(len - i + 1), *v = malloc(len - i + 1);
    if (!k || !v) {
        free(k);
        free(v);
        *pos = len;
        return -1;
    }
    size_t kn = 0, vn = 0;
    bool in_value = false, sep_seen = false, skip_ws = false;
    while (i < len) {
        char ch = t[i++];
        if (ch == '\r' && i < len && t[i] == '\n') continue;
        if (ch == '\n' || ch == '\r') break;
        if (skip_ws) {
            if (ch == ' ' || ch == '\t' || ch == '\f') continue;
            skip_ws = false;
        }
        if (ch == '\\') {
            if (i >= len) break;
            char e = t[i++];
            if (e == '\n' || e == '\r') { /* continuation: skip leading blanks of the next */
                if (e == '\r' && i < len && t[i] == '\n') i++;
                skip_ws = true;
                continue;
            }
            if (e == 't')
                ch = '\t';
            else if (e == 'n')
                ch = '\n';
            else if (e == 'r')
                ch = '\r';
            else if (e == 'f')
                ch = '\f';
            else if (e == 'u' && i + 4 <= len && hexval(t[i]) >= 0 && hexval(t[i + 1]) >= 0 &&
                     hexval(t[i + 2]) >= 0 && hexval(t[i + 3]) >= 0) {
                unsigned cp = (unsigned)(hexval(t[i]) << 12 | hexval(t[i + 1]) << 8 |
                                         hexval(t[i + 2]) << 4 | hexval(t[i + 3]));
                i += 4;
                char u[4];
                size_t un = put_utf8(u, cp);
                /* \uXXXX is 6 bytes and yields at most 3: the buffer still suffices. */
                memcpy(in_value ? v + vn : k + kn, u, un);
                if (in_value)
                    vn += un;
                else
                    kn += un;
                continue;
            } else
                ch = e;
            if (in_value)
                v[vn++] = ch;
            else
                k[kn++] = ch;
            continue;
        }
        if (!in_value) {
            if (ch == '=' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\f') {
                in_value = true;
                sep_seen = ch == '=' || ch == ':';
                skip_ws = true;
                /* "key  = value": blanks, then at most one '=' or ':' */
                while (!sep_seen && i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\f'))
                    i++;
                if (!sep_seen && i < len && (t[i] == '=' || t[i] == ':')) {
                    i++;
                    sep_seen = true;
                }
                continue;
            }
            k[kn++] = ch;
        } else {
            v[vn++] = ch;
        }
    }
    k[kn] = 0;
    v[vn] = 0;
    *key = k;
    *val = v;
    *pos = i;
    return 1;
}

int kc_props_parse(kc_props_t *p, const char *text, size_t len)
{
    memset(p, 0, sizeof *p);
    size_t pos = 0;
    for (;;) {
        char *k, *v;
        int r = next_pair(text, len, &pos, &k, &v);
        if (r < 0) break;
        if (r == 0) continue;
        if (props_set(p, k, v)) {
            kc_props_free(p);
            return K_ERR_NOMEM;
        }
    }
    return 0;
}

int kc_props_load(kc_props_t *p, const char *path)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "rb");
    if (!f) return K_ERR_IO;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return K_ERR_NOMEM;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    int err = ferror(f);
    fclose(f);
    int rc = err ? K_ERR_IO : kc_props_parse(p, buf ? buf : "", len);
    free(buf);
    return rc;
}

/* ---- validation --------------------------------------------------------------------------- */

static int bad(char *err, size_t n, const char *fmt, const char *a, const char *b)
{
    snprintf(err, n, fmt, a, b);
    return K_ERR_INVAL;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (!*s || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int converter(const kc_props_t *p, const char *key, kc_converter_t *out, char *err, size_t n)
{
    const char *v = kc_props_get(p, key);
    const char *pkg = "org.apache.kafka.connect.";
    if (!v || !strcmp(v, "org.apache.kafka.connect.storage.StringConverter") ||
        !strcmp(v, "StringConverter"))
        *out = KC_CONV_STRING;
    else if (!strcmp(v, "org.apache.kafka.connect.converters.ByteArrayConverter") ||
             !strcmp(v, "ByteArrayConverter"))
        *out = KC_CONV_BYTES;
    else if (!strcmp(v, "org.apache.kafka.connect.json.JsonConverter") ||
             !strcmp(v, "JsonConverter")) {
        char sk[128];
        snprintf(sk, sizeof sk, "%s.schemas.enable", key);
        const char *se = kc_props_get(p, sk); /* Kafka's default: true */
        if (se && strcasecmp(se, "true") && strcasecmp(se, "false"))
            return bad(err, n, "%s: '%s' is not true or false", sk, se);
        *out = se && !strcasecmp(se, "false") ? KC_CONV_JSON_PLAIN : KC_CONV_JSON_SCHEMA;
    } else {
        (void)pkg;
        return bad(err, n,
                   "%s: unsupported converter '%s' (use StringConverter, ByteArrayConverter or "
                   "JsonConverter)",
                   key, v);
    }
    return 0;
}

int kc_worker_config(const kc_props_t *p, kc_worker_config_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->bootstrap = kc_props_get(p, "bootstrap.servers");
    if (!out->bootstrap || !*out->bootstrap) out->bootstrap = "localhost:9092"; /* Kafka's */
    out->offset_file = kc_props_get(p, "offset.storage.file.filename");
    out->offset_flush_ms = 60000;
    const char *fi = kc_props_get(p, "offset.flush.interval.ms");
    long long v;
    if (fi && !parse_int(fi, 0, INT64_MAX, &v))
        return bad(err, errlen, "offset.flush.interval.ms: '%s' is not a number of ms%s", fi, "");
    if (fi) out->offset_flush_ms = v;
    int rc = converter(p, "key.converter", &out->key_conv, err, errlen);
    if (!rc) rc = converter(p, "value.converter", &out->value_conv, err, errlen);
    return rc;
}

void kc_connector_config_deinit(kc_connector_config_t *cc)
{
    for (int i = 0; i < cc->ntopics; i++)
        free(cc->topics[i]);
    free(cc->topics);
    cc->topics = NULL;
    cc->ntopics = 0;
}

static int split_topics(const char *s, kc_connector_config_t *cc)
{
    for (const char *q = s; *q;) {
        size_t n = strcspn(q, ",");
        const char *a = q, *b = q + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            char **v = realloc(cc->topics, sizeof *v * (size_t)(cc->ntopics + 1));
            if (!v) return K_ERR_NOMEM;
            cc->topics = v;
            if (!(cc->topics[cc->ntopics] = strndup(a, (size_t)(b - a)))) return K_ERR_NOMEM;
            cc->ntopics++;
        }
        q += n;
        if (*q == ',') q++;
    }
    return 0;
}

int kc_connector_config(const kc_props_t *p, kc_connector_config_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->name = kc_props_get(p, "name");
    if (!out->name || !*out->name) return bad(err, errlen, "name: missing%s%s", "", "");
    const char *cls = kc_props_get(p, "connector.class");
    if (!cls) return bad(err, errlen, "connector.class: missing (connector %s)%s", out->name, "");
    if (!strcmp(cls, "FileStreamSource") ||
        !strcmp(cls, "org.apache.kafka.connect.file.FileStreamSourceConnector") ||
        !strcmp(cls, "FileStreamSourceConnector"))
        out->kind = KC_FILE_SOURCE;
    else if (!strcmp(cls, "FileStreamSink") ||
             !strcmp(cls, "org.apache.kafka.connect.file.FileStreamSinkConnector") ||
             !strcmp(cls, "FileStreamSinkConnector"))
        out->kind = KC_FILE_SINK;
    else
        return bad(err, errlen,
                   "connector.class: '%s' is not supported (connector %s); use FileStreamSource "
                   "or FileStreamSink",
                   cls, out->name);
    long long v;
    const char *tm = kc_props_get(p, "tasks.max");
    out->tasks_max = 1;
    if (tm && !parse_int(tm, 1, 1000000, &v))
        return bad(err, errlen, "tasks.max: '%s' is not a positive number (connector %s)", tm,
                   out->name);
    if (tm) out->tasks_max = (int)v;
    out->file = kc_props_get(p, "file");
    out->batch_size = 2000;
    const char *bs = kc_props_get(p, "batch.size");
    if (bs && !parse_int(bs, 1, 1000000, &v))
        return bad(err, errlen, "batch.size: '%s' is not a positive number (connector %s)", bs,
                   out->name);
    if (bs) out->batch_size = (int)v;
    if (out->kind == KC_FILE_SOURCE) {
        out->topic = kc_props_get(p, "topic");
        if (!out->topic || !*out->topic)
            return bad(err, errlen, "topic: missing (source connector %s)%s", out->name, "");
        if (strchr(out->topic, ','))
            return bad(err, errlen,
                       "topic: '%s' names several topics; a source writes to one "
                       "(connector %s)",
                       out->topic, out->name);
        return 0;
    }
    const char *ts = kc_props_get(p, "topics");
    if (!ts || !*ts)
        return bad(err, errlen, "topics: missing (sink connector %s)%s", out->name, "");
    if (split_topics(ts, out)) {
        kc_connector_config_deinit(out);
        return bad(err, errlen, "out of memory%s%s", "", "");
    }
    if (out->ntopics == 0)
        return bad(err, errlen, "topics: '%s' names no topic (connector %s)", ts, out->name);
    return 0;
}

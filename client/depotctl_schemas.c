/*
 * depotctl schemas: the operator's view of a schema registry (Depot's built-in one, or any
 * Confluent-compatible registry), over its REST API.
 *
 *   depotctl schemas list     [--registry URL] [--deleted]
 *   depotctl schemas get      [--registry URL] --subject S [--version V|latest]
 *   depotctl schemas get      [--registry URL] --id N
 *   depotctl schemas register [--registry URL] --subject S (--schema-file F | --schema JSON)
 *   depotctl schemas check    [--registry URL] --subject S (--schema-file F | --schema JSON)
 *                             [--version V|latest]
 * URL defaults to http://127.0.0.1:8081. Output: list prints one subject per line; get prints
 * "subject S version V id N" on stderr and the schema on stdout; register prints the id; check
 * prints "compatible" (exit 0) or "incompatible: <reasons>" (exit 1). A registry error prints
 * "depotctl: HTTP <status> (<error_code>): <message>" and exits 1; usage errors exit 2.
 *
 * HTTP: a tiny blocking HTTP/1.1 client (one request per connection, Connection: close,
 * 30 s timeouts, Content-Length or chunked answers, at most 16 MiB). JSON: jansson.
 */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "client/depotctl.h"

#define MAX_RESPONSE (16 << 20)

typedef struct {
    char host[256];
    char port[8];
    char prefix[256]; /* path prefix of the URL, without a trailing slash */
} reg_url_t;

typedef struct {
    int status;
    char *body; /* NUL-terminated, malloc'ed */
    size_t len;
} http_resp_t;

static int parse_url(const char *url, reg_url_t *u)
{
    memset(u, 0, sizeof *u);
    if (strncmp(url, "http://", 7))
        return -1;
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hl);
    size_t nl = colon ? (size_t)(colon - h) : hl;
    if (nl == 0 || nl >= sizeof u->host)
        return -1;
    memcpy(u->host, h, nl);
    snprintf(u->port, sizeof u->port, "%.*s", colon ? (int)(hl - nl - 1) : 2,
             colon ? colon + 1 : "80");
    if (slash)
        snprintf(u->prefix, sizeof u->prefix, "%s", slash);
    size_t pl = strlen(u->prefix);
    if (pl && u->prefix[pl - 1] == '/')
        u->prefix[pl - 1] = '\0';
    return 0;
}

static int dial(const reg_url_t *u)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0 || !res)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {30, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            char *nb = cap >= MAX_RESPONSE ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Decodes a chunked body in place; returns its length or -1. */
static long dechunk(char *p, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(p + in, &end, 16);
        char *crlf = strstr(p + in, "\r\n");
        if (end == p + in || !crlf || (size_t)(crlf - p) + 2 > n)
            return -1;
        in = (size_t)(crlf - p) + 2;
        if (sz == 0)
            return (long)out;
        if (sz > n - in)
            return -1;
        memmove(p + out, p + in, sz);
        out += sz;
        in += sz + 2;
        if (in > n)
            return -1;
    }
}

static int parse_response(char *raw, size_t n, http_resp_t *r)
{
    char *hend = strstr(raw, "\r\n\r\n");
    if (!hend || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    *hend = '\0';
    char *body = hend + 4;
    size_t blen = n - (size_t)(body - raw);
    bool chunked = false;
    for (char *h = strstr(raw, "\r\n"); h; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h + 2, "Transfer-Encoding:", 18) && strstr(h + 20, "chunked"))
            chunked = true;
    if (chunked) {
        long l = dechunk(body, blen);
        if (l < 0)
            return -1;
        blen = (size_t)l;
    }
    r->body = malloc(blen + 1);
    if (!r->body)
        return -1;
    memcpy(r->body, body, blen);
    r->body[blen] = '\0';
    r->len = blen;
    return 0;
}

static int http_call(const reg_url_t *u, const char *method, const char *path, const char *body,
                     http_resp_t *r)
{
    memset(r, 0, sizeof *r);
    int fd = dial(u);
    if (fd < 0) {
        fprintf(stderr, "depotctl: cannot connect to the registry at %s:%s\n", u->host, u->port);
        return -1;
    }
    char *req = NULL;
    size_t blen = body ? strlen(body) : 0;
    int rc = asprintf(&req,
                      "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/"
                      "vnd.schemaregistry.v1+json\r\nContent-Type: application/"
                      "vnd.schemaregistry.v1+json\r\nContent-Length: %zu\r\nConnection: "
                      "close\r\nUser-Agent: depotctl\r\n\r\n",
                      method, u->prefix, path, u->host, u->port, blen);
    size_t n = 0;
    char *raw = NULL;
    if (rc >= 0 && send_all(fd, req, strlen(req)) == 0 && send_all(fd, body ? body : "", blen) == 0)
        raw = read_all(fd, &n);
    close(fd);
    free(req);
    if (!raw || parse_response(raw, n, r) < 0) {
        fprintf(stderr, "depotctl: no valid HTTP answer from the registry\n");
        free(raw);
        return -1;
    }
    free(raw);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    reg_url_t url;
    const char *action, *subject, *version, *id, *schema, *schema_file;
    bool deleted;
} sopts_t;

static void schemas_usage(void)
{
    fputs("usage: depotctl schemas list     [--registry URL] [--deleted]\n"
          "       depotctl schemas get      [--registry URL] --subject S [--version V|latest]\n"
          "       depotctl schemas get      [--registry URL] --id N\n"
          "       depotctl schemas register [--registry URL] --subject S\n"
          "                                 (--schema-file F | --schema JSON)\n"
          "       depotctl schemas check    [--registry URL] --subject S\n"
          "                                 (--schema-file F | --schema JSON) [--version V]\n"
          "URL defaults to http://127.0.0.1:8081\n",
          stderr);
}

/* Subjects go into paths percent-encoded (anything but unreserved characters). */
static void path_escape(const char *s, char *out, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch))
            out[k++] = (char)ch;
        else
            k += (size_t)snprintf(out + k, cap - k, "%%%02X", ch);
    }
    out[k] = '\0';
}

/* Prints a registry error and returns 1, or returns 0 for a 2xx answer. */
static int check_status(const http_resp_t *r)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    json_t *j = json_loads(r->body, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    long long code = json_integer_value(json_object_get(j, "error_code"));
    fprintf(stderr, "depotctl: HTTP %d (%lld): %s\n", r->status, code, msg ? msg : r->body);
    json_decref(j);
    return 1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb = cap > (8u << 20) ? NULL : realloc(buf, cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* {"schema": "<text>"} for register and check. */
static char *schema_body(const sopts_t *o)
{
    char *text = o->schema_file ? read_file(o->schema_file) : strdup(o->schema);
    if (!text) {
        fprintf(stderr, "depotctl: cannot read %s: %s\n", o->schema_file, strerror(errno));
        return NULL;
    }
    json_t *b = json_pack("{s:s}", "schema", text);
    free(text);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return s;
}

static int do_list(const sopts_t *o)
{
    http_resp_t r;
    if (http_call(&o->url, "GET", o->deleted ? "/subjects?deleted=true" : "/subjects", NULL, &r))
        return 1;
    int rc = check_status(&r);
    json_t *j = rc ? NULL : json_loads(r.body, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) printf("%s\n", json_string_value(v));
    if (!rc && !json_is_array(j))
        rc = fprintf(stderr, "depotctl: unexpected answer: %s\n", r.body) > 0;
    json_decref(j);
    free(r.body);
    return rc;
}

static int do_get(const sopts_t *o)
{
    char path[3200], esc[2048];
    if (o->id) {
        path_escape(o->id, esc, sizeof esc);
        snprintf(path, sizeof path, "/schemas/ids/%s", esc);
    } else {
        path_escape(o->subject, esc, sizeof esc);
        char ver[64];
        path_escape(o->version ? o->version : "latest", ver, sizeof ver);
        snprintf(path, sizeof path, "/subjects/%s/versions/%s", esc, ver);
    }
    http_resp_t r;
    if (http_call(&o->url, "GET", path, NULL, &r))
        return 1;
    int rc = check_status(&r);
    json_t *j = rc ? NULL : json_loads(r.body, 0, NULL);
    const char *schema = json_string_value(json_object_get(j, "schema"));
    if (!rc && !schema)
        rc = fprintf(stderr, "depotctl: unexpected answer: %s\n", r.body) > 0;
    if (!rc && !o->id)
        fprintf(stderr, "subject %s version %lld id %lld\n", o->subject,
                json_integer_value(json_object_get(j, "version")),
                json_integer_value(json_object_get(j, "id")));
    if (!rc)
        printf("%s\n", schema);
    json_decref(j);
    free(r.body);
    return rc;
}

static int do_write(const sopts_t *o, bool check)
{
    char *body = schema_body(o);
    if (!body)
        return 1;
    char path[3200], esc[2048], ver[64];
    path_escape(o->subject, esc, sizeof esc);
    path_escape(o->version ? o->version : "latest", ver, sizeof ver);
    if (check)
        snprintf(path, sizeof path, "/compatibility/subjects/%s/versions/%s?verbose=true", esc,
                 ver);
    else
        snprintf(path, sizeof path, "/subjects/%s/versions", esc);
    http_resp_t r;
    int rc = http_call(&o->url, "POST", path, body, &r) ? 1 : check_status(&r);
    free(body);
    json_t *j = rc ? NULL : json_loads(r.body, 0, NULL);
    if (!rc && !check)
        printf("%lld\n", json_integer_value(json_object_get(j, "id")));
    if (!rc && check && json_is_true(json_object_get(j, "is_compatible")))
        printf("compatible\n");
    else if (!rc && check) {
        printf("incompatible:");
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(j, "messages"), i, m) printf(" %s", json_string_value(m));
        printf("\n");
        rc = 1;
    }
    json_decref(j);
    free(r.body);
    return rc;
}

static int parse_sargs(int argc, char **argv, sopts_t *o)
{
    memset(o, 0, sizeof *o);
    const char *url = "http://127.0.0.1:8081";
    if (argc < 1)
        return schemas_usage(), 2;
    o->action = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = !strcmp(a, "--registry")      ? &url
                           : !strcmp(a, "--subject")     ? &o->subject
                           : !strcmp(a, "--version")     ? &o->version
                           : !strcmp(a, "--id")          ? &o->id
                           : !strcmp(a, "--schema")      ? &o->schema
                           : !strcmp(a, "--schema-file") ? &o->schema_file
                                                         : NULL;
        if (!strcmp(a, "--deleted"))
            o->deleted = true;
        else if (dst && v)
            *dst = argv[++i];
        else
            return ctl_bad("schemas: unknown or incomplete option '%s'", a);
    }
    if (parse_url(url, &o->url) < 0)
        return ctl_bad("schemas: --registry must be http://host[:port][/path], not '%s'", url);
    return 0;
}

int ctl_schemas(int argc, char **argv)
{
    sopts_t o;
    int rc = parse_sargs(argc, argv, &o);
    if (rc)
        return rc;
    bool has_schema = (o.schema != NULL) != (o.schema_file != NULL);
    if (!strcmp(o.action, "list"))
        return do_list(&o);
    if (!strcmp(o.action, "get") && (o.subject || o.id))
        return do_get(&o);
    if ((!strcmp(o.action, "register") || !strcmp(o.action, "check")) && o.subject && has_schema)
        return do_write(&o, !strcmp(o.action, "check"));
    schemas_usage();
    return 2;
}

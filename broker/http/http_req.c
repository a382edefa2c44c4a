/*
 * HTTP requests and answers: accessors, query decoding, Basic auth, routing, and the answer
 * writer (status line and headers). See http.h for the contract.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/http/http_int.h"

kb_http_req_t *kb_http_req_new(hconn_t *c)
{
    kb_http_req_t *r = calloc(1, sizeof *r); /* owned by c's queue (or the handler, orphaned) */
    if (!r) return NULL;
    r->conn = c;
    r->broker = c->l->srv->broker;
    snprintf(r->peer, sizeof r->peer, "%s", c->peer);
    kp_buf_init(&r->url);
    kp_buf_init(&r->body);
    kp_buf_init(&r->out_hdrs);
    kp_buf_init(&r->out_body);
    kp_buf_init(&r->wire);
    r->keep_alive = true;
    return r;
}

static void pairs_free(hpair_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
}

void kb_http_req_free(kb_http_req_t *r)
{
    if (!r) return;
    kp_buf_deinit(&r->url);
    kp_buf_deinit(&r->body);
    kp_buf_deinit(&r->out_hdrs);
    kp_buf_deinit(&r->out_body);
    kp_buf_deinit(&r->wire);
    pairs_free(r->hdrs, r->n_hdrs);
    pairs_free(r->query, r->n_query);
    free(r->path);
    free(r->user);
    free(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors                                                                                    */

const char *kb_http_method(const kb_http_req_t *r)
{
    return r->method;
}

const char *kb_http_path(const kb_http_req_t *r)
{
    return r->path ? r->path : "/";
}

const char *kb_http_query(const kb_http_req_t *r, const char *name)
{
    for (int i = 0; i < r->n_query; i++)
        if (!strcmp(r->query[i].name, name)) return r->query[i].value;
    return NULL;
}

const char *kb_http_header(const kb_http_req_t *r, const char *name)
{
    for (int i = 0; i < r->n_hdrs; i++)
        if (r->hdrs[i].name && !strcasecmp(r->hdrs[i].name, name)) return r->hdrs[i].value;
    return NULL;
}

const uint8_t *kb_http_body(const kb_http_req_t *r, size_t *len)
{
    if (len) *len = r->body.len;
    return r->body.len ? r->body.data : (const uint8_t *)"";
}

const char *kb_http_user(const kb_http_req_t *r)
{
    return r->user;
}

const char *kb_http_peer(const kb_http_req_t *r)
{
    return r->peer;
}

bool kb_http_closed(const kb_http_req_t *r)
{
    return r->conn == NULL;
}

kb_broker_t *kb_http_broker(const kb_http_req_t *r)
{
    return r->broker;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int kb_http_url_decode(const char *in, size_t len, char *out, size_t cap, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (i + 2 >= len) return K_ERR_MALFORMED;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0) return K_ERR_MALFORMED;
            ch = (char)(hi * 16 + lo);
            if (ch == 0) return K_ERR_MALFORMED;
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (o + 1 >= cap) return K_ERR_TOOLARGE;
        out[o++] = ch;
    }
    if (cap == 0) return K_ERR_TOOLARGE;
    out[o] = 0;
    return (int)o;
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                      */

int kb_http_write(kb_http_req_t *r, const void *data, size_t len)
{
    if (r->sent) return K_ERR_INVAL;
    kp_put_raw(&r->out_body, data, len);
    return r->out_body.err;
}

int kb_http_printf(kb_http_req_t *r, const char *fmt, ...)
{
    if (r->sent) return K_ERR_INVAL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return K_ERR_INVAL;
    if (kp_buf_reserve(&r->out_body, (size_t)n + 1) < 0) return K_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)r->out_body.data + r->out_body.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->out_body.len += (size_t)n;
    return 0;
}

int kb_http_add_header(kb_http_req_t *r, const char *name, const char *value)
{
    if (r->sent || !name[0] || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return K_ERR_INVAL;
    kp_put_raw(&r->out_hdrs, name, strlen(name));
    kp_put_raw(&r->out_hdrs, ": ", 2);
    kp_put_raw(&r->out_hdrs, value, strlen(value));
    kp_put_raw(&r->out_hdrs, "\r\n", 2);
    return r->out_hdrs.err;
}

const char *kb_http_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return s && strcmp(s, "<unknown>") ? s : "Unknown";
}

static void wire_printf(kp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wire_printf(kp_buf_t *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) kp_put_raw(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void build_wire(kb_http_req_t *r, const char *ctype)
{
    kp_buf_t *w = &r->wire;
    bool bodyless = r->status == 204 || r->status == 304 || r->status < 200;
    if (!r->keep_alive) r->close_after = true;
    wire_printf(w, "HTTP/1.1 %d %s\r\nServer: Depot\r\n", r->status, kb_http_reason(r->status));
    if (!bodyless) {
        wire_printf(w, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                    ctype ? ctype : "text/plain; charset=utf-8", r->out_body.len);
    } else {
        r->out_body.len = 0;
    }
    if (r->close_after)
        wire_printf(w, "Connection: close\r\n");
    else if (r->http_major == 1 && r->http_minor == 0)
        wire_printf(w, "Connection: keep-alive\r\n");
    if (r->out_hdrs.len) kp_put_raw(w, r->out_hdrs.data, r->out_hdrs.len);
    kp_put_raw(w, "\r\n", 2);
}

void kb_http_send(kb_http_req_t *r, int status, const char *content_type)
{
    if (r->sent) {
        kb_log(KB_LOG_ERROR, "http: kb_http_send called twice for %s %s", r->method,
               kb_http_path(r));
        return;
    }
    r->sent = true;
    if (!r->conn) { /* the client went away while the handler worked */
        kb_http_req_free(r);
        return;
    }
    if (status < 100 || status > 999) status = 500;
    r->status = status;
    if (r->out_body.err || r->out_hdrs.err) { /* a failed allocation while building */
        kp_buf_reset(&r->out_hdrs);
        kp_buf_reset(&r->out_body);
        r->out_hdrs.err = r->out_body.err = 0;
        r->status = 500;
        content_type = NULL;
    }
    build_wire(r, content_type);
    if (r->wire.err) {
        hconn_t *c = r->conn;
        kb_http_conn_close(c); /* nothing sensible can be sent */
        return;
    }
    kb_http_conn_flush(r->conn);
}

void kb_http_respond(kb_http_req_t *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    kb_http_write(r, body, len);
    kb_http_send(r, status, content_type);
}

void kb_http_req_fail(kb_http_req_t *r, int status)
{
    kp_buf_reset(&r->out_body);
    if (status >= 400 && r->conn &&
        (status == 400 || status == 408 || status == 413 || status == 431 || status >= 500))
        r->close_after = true; /* the byte stream can no longer be trusted or was cut */
    kb_http_printf(r, "%d %s\n", status, kb_http_reason(status));
    kb_http_send(r, status, "text/plain; charset=utf-8");
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch: target → path + query, auth, routing                                              */

static int parse_query(kb_http_req_t *r, const char *q)
{
    int n = 1;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    r->query = calloc((size_t)n, sizeof *r->query);
    if (!r->query) return K_ERR_NOMEM;
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t nl = eq ? (size_t)(eq - q) : len, vl = eq ? len - nl - 1 : 0;
        if (nl > 0) {
            hpair_t *p = &r->query[r->n_query];
            p->name = malloc(nl + 1);
            p->value = malloc(vl + 1);
            r->n_query++;
            if (!p->name || !p->value) return K_ERR_NOMEM;
            int rc = kb_http_url_decode(q, nl, p->name, nl + 1, true);
            if (rc < 0) return rc;
            if ((rc = kb_http_url_decode(eq ? eq + 1 : "", vl, p->value, vl + 1, true)) < 0)
                return rc;
        }
        q += len;
        if (*q == '&') q++;
    }
    return 0;
}

static int split_target(kb_http_req_t *r)
{
    kp_put_raw(&r->url, "", 1); /* NUL */
    if (r->url.err) return K_ERR_NOMEM;
    const char *u = (const char *)r->url.data;
    if (u[0] != '/') return K_ERR_MALFORMED; /* absolute-form and "*" are not served */
    size_t pl = strcspn(u, "?#");
    r->path = strndup(u, pl);
    if (!r->path) return K_ERR_NOMEM;
    if (u[pl] != '?') return 0;
    size_t ql = strcspn(u + pl + 1, "#");
    char *q = strndup(u + pl + 1, ql);
    if (!q) return K_ERR_NOMEM;
    int rc = parse_query(r, q);
    free(q);
    return rc;
}

static int b64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Base64 (RFC 4648, padding optional) into out; returns the length or -1. */
static int b64_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        int v = b64val(*in);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap) return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = 0;
    return (int)o;
}

/* 0: accepted (r->user set); < 0: refused. */
static int check_auth(kb_http_listener_t *l, kb_http_req_t *r)
{
    const char *h = kb_http_header(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6)) return K_ERR_INVAL;
    h += 6;
    while (*h == ' ')
        h++;
    char cred[512];
    if (strlen(h) > 680 || b64_decode(h, cred, sizeof cred) < 0) return K_ERR_INVAL;
    char *colon = strchr(cred, ':');
    if (!colon) return K_ERR_INVAL;
    *colon = 0;
    if (l->auth(cred, colon + 1, l->auth_ud) < 0) return K_ERR_INVAL;
    r->user = strdup(cred);
    return r->user ? 0 : K_ERR_NOMEM;
}

static bool path_matches(const route_t *rt, const char *path)
{
    if (rt->prefix) return !strncmp(path, rt->pattern, rt->plen);
    return !strcmp(path, rt->pattern);
}

static bool method_matches(const route_t *rt, const char *method)
{
    if (!rt->method) return true;
    if (!strcmp(rt->method, method)) return true;
    return !strcmp(method, "HEAD") && !strcmp(rt->method, "GET");
}

/* 405 with the methods that would have matched. */
static void not_allowed(kb_http_listener_t *l, kb_http_req_t *r)
{
    char allow[256] = "";
    size_t n = 0;
    for (int i = 0; i < l->n_routes && n < sizeof allow - 16; i++) {
        const route_t *rt = &l->routes[i];
        if (!rt->method || !path_matches(rt, r->path) || strstr(allow, rt->method)) continue;
        n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "", rt->method);
    }
    kb_http_add_header(r, "Allow", allow);
    kb_http_req_fail(r, 405);
}

void kb_http_req_dispatch(kb_http_listener_t *l, kb_http_req_t *r)
{
    int rc = split_target(r);
    if (rc < 0) {
        kb_http_req_fail(r, rc == K_ERR_NOMEM ? 500 : 400);
        return;
    }
    if (l->auth && (rc = check_auth(l, r)) < 0) {
        char h[300];
        snprintf(h, sizeof h, "Basic realm=\"%s\"", l->realm ? l->realm : "depot");
        kb_http_add_header(r, "WWW-Authenticate", h);
        kb_http_req_fail(r, rc == K_ERR_NOMEM ? 500 : 401);
        return;
    }
    const route_t *best = NULL;
    bool path_seen = false;
    for (int i = 0; i < l->n_routes; i++) {
        const route_t *rt = &l->routes[i];
        if (!path_matches(rt, r->path)) continue;
        path_seen = true;
        if (method_matches(rt, r->method) &&
            (!best || rt->plen > best->plen || (rt->plen == best->plen && !rt->prefix)))
            best = rt;
    }
    if (!best) {
        if (path_seen)
            not_allowed(l, r);
        else
            kb_http_req_fail(r, 404);
        return;
    }
    rc = best->fn(r, best->ud);
    if (rc == KB_PENDING) return;
    if (r->sent) {
        if (rc < 0)
            kb_log(KB_LOG_WARN, "http %s: %s %s: %s after answering", l->name, r->method, r->path,
                   k_strerror(rc));
        return;
    }
    if (rc < 0)
        kb_log(KB_LOG_WARN, "http %s: %s %s failed: %s", l->name, r->method, r->path,
               k_strerror(rc));
    else
        kb_log(KB_LOG_ERROR, "http %s: %s %s: handler returned without answering", l->name,
               r->method, r->path);
    kb_http_req_fail(r, 500);
}

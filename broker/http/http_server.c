/*
 * HTTP server and listeners: URL lists, binding, the connection cap, the subsystem that ties a
 * server to a broker, and the shutdown order (see http.h LIFETIME).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/core/subsys.h"
#include "broker/http/http_int.h"

_Static_assert(KB_HTTP_TLS_BROKER == KB_TLS_FOR_BROKER &&
                   KB_HTTP_TLS_REGISTRY == KB_TLS_FOR_REGISTRY,
               "http.h names net/tls.h's settings choices");

kb_http_server_t *kb_http_server_new(uv_loop_t *loop)
{
    kb_http_server_t *s = calloc(1, sizeof *s); /* owned by the caller (or the broker slot) */
    if (!s) return NULL;
    s->loop = loop;
    return s;
}

static void listener_free(kb_http_listener_t *l)
{
    for (int i = 0; i < l->n_routes; i++) {
        free(l->routes[i].method);
        free(l->routes[i].pattern);
    }
    kb_tls_endpoint_close(l->tls);
    free(l->realm);
    free(l->name);
    free(l);
}

static void server_free(kb_http_server_t *s)
{
    for (int i = 0; i < s->n_ls; i++)
        listener_free(s->ls[i]);
    free(s->ls);
    free(s);
}

void kb_http_server_unref(kb_http_server_t *s)
{
    if (--s->refs == 0 && s->closing) server_free(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    kb_http_listener_t *l = h->data;
    kb_http_server_unref(l->srv);
}

static void on_connection(uv_stream_t *server, int status)
{
    kb_http_listener_t *l = server->data;
    if (status < 0) {
        kb_log(KB_LOG_WARN, "http %s: accept failed: %s", l->name, uv_strerror(status));
        return;
    }
    kb_http_conn_accept(l, server, (int)((uv_tcp_t *)server - l->tcp));
}

/* One "http[s]://host:port" (len bytes) → host, port, tls. */
static int parse_url(const char *u, size_t len, char *host, size_t hostlen, int *port, bool *tls)
{
    const char *end = u + len;
    size_t skip;
    if (len >= 8 && !strncasecmp(u, "https://", 8))
        skip = 8, *tls = true;
    else if (len >= 7 && !strncasecmp(u, "http://", 7))
        skip = 7, *tls = false;
    else
        return K_ERR_INVAL;
    const char *p = u + skip, *hs = p, *he, *colon;
    if (p < end && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb || rb + 1 >= end || rb[1] != ':') return K_ERR_INVAL;
        hs = p + 1, he = rb, colon = rb + 1;
    } else {
        colon = NULL;
        for (const char *q = end; q > p; q--)
            if (q[-1] == ':') {
                colon = q - 1;
                break;
            }
        if (!colon) return K_ERR_INVAL;
        he = colon;
    }
    const char *ps = colon + 1;
    if (end > ps && end[-1] == '/') end--; /* "http://h:1/" */
    if (ps >= end || end - ps > 5 || (size_t)(he - hs) >= hostlen) return K_ERR_INVAL;
    int v = 0;
    for (const char *q = ps; q < end; q++) {
        if (*q < '0' || *q > '9') return K_ERR_INVAL;
        v = v * 10 + (*q - '0');
    }
    if (v > 65535) return K_ERR_INVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    if (!host[0]) snprintf(host, hostlen, "0.0.0.0");
    *port = v;
    return 0;
}

static int bind_one(kb_http_listener_t *l, const char *host, int port, bool tls)
{
    struct sockaddr_storage ss;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "http %s: bad address %s: %s", l->name, host, uv_strerror(rc));
        return K_ERR_INVAL;
    }
    uv_tcp_t *t = &l->tcp[l->n_tcp];
    l->tls_at[l->n_tcp] = tls;
    uv_tcp_init(l->srv->loop, t);
    t->data = l;
    l->n_tcp++;
    l->srv->refs++;
    if ((rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)t, 128, on_connection)) < 0) {
        kb_log(KB_LOG_ERROR, "http %s: cannot listen on %s:%d: %s", l->name, host, port,
               uv_strerror(rc));
        return K_ERR_IO;
    }
    kb_log(KB_LOG_INFO, "http %s: listening on %s://%s:%d", l->name, tls ? "https" : "http",
           host, kb_http_listener_port(l, l->n_tcp - 1));
    return 0;
}

static void fill_opts(kb_http_opts_t *o, const kb_http_opts_t *in)
{
    if (in) *o = *in;
    if (!o->max_header_bytes) o->max_header_bytes = KB_HTTP_DEFAULT_MAX_HEADER_BYTES;
    if (!o->max_body_bytes) o->max_body_bytes = KB_HTTP_DEFAULT_MAX_BODY_BYTES;
    if (o->read_timeout_ms <= 0) o->read_timeout_ms = KB_HTTP_DEFAULT_READ_TIMEOUT_MS;
    if (o->idle_timeout_ms <= 0) o->idle_timeout_ms = KB_HTTP_DEFAULT_IDLE_TIMEOUT_MS;
    if (o->max_conns <= 0) o->max_conns = KB_HTTP_DEFAULT_MAX_CONNS;
    if (o->max_pipeline <= 0) o->max_pipeline = KB_HTTP_DEFAULT_MAX_PIPELINE;
}

static kb_http_listener_t *find(kb_http_server_t *s, const char *name)
{
    for (int i = 0; i < s->n_ls; i++)
        if (!strcmp(s->ls[i]->name, name)) return s->ls[i];
    return NULL;
}

/* The listener's TLS endpoint, for its first https:// address: certificates from the
 * broker's settings (opts.tls_for) or, standalone, from opts.tls_settings. */
static int open_tls(kb_http_listener_t *l)
{
    kb_tls_settings_t st;
    if (l->opts.tls_settings)
        st = *l->opts.tls_settings;
    else if (l->srv->broker)
        kb_tls_settings_for(kb_broker_config(l->srv->broker), l->opts.tls_for, &st);
    else {
        kb_log(KB_LOG_ERROR, "http %s: https:// needs certificates (no TLS settings)", l->name);
        return K_ERR_INVAL;
    }
    char why[512] = "";
    int rc = kb_tls_endpoint_new(l->srv->loop, l->srv->broker, l->name, &st, &l->tls, why,
                                 sizeof why);
    if (rc < 0) kb_log(KB_LOG_ERROR, "http %s: https: %s", l->name, why);
    return rc;
}

static int bind_all(kb_http_listener_t *l, const char *urls)
{
    const char *p = urls;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p) break;
        size_t n = strcspn(p, ", ");
        char host[256];
        int port, rc;
        bool tls;
        if (l->n_tcp == HTTP_MAX_ADDRS) {
            kb_log(KB_LOG_ERROR, "http %s: at most %d addresses", l->name, HTTP_MAX_ADDRS);
            return K_ERR_INVAL;
        }
        if (parse_url(p, n, host, sizeof host, &port, &tls) < 0) {
            kb_log(KB_LOG_ERROR, "http %s: bad listener '%.*s' (expected http://host:port or "
                   "https://host:port)", l->name, (int)n, p);
            return K_ERR_INVAL;
        }
        if (tls && !l->tls && (rc = open_tls(l)) < 0) return rc;
        if ((rc = bind_one(l, host, port, tls)) < 0) return rc;
        p += n;
    }
    if (l->n_tcp == 0) {
        kb_log(KB_LOG_ERROR, "http %s: no listener address given", l->name);
        return K_ERR_INVAL;
    }
    return 0;
}

int kb_http_server_listen(kb_http_server_t *s, const char *name, const char *urls,
                          const kb_http_opts_t *opts, kb_http_listener_t **out)
{
    if (!s || !name || !name[0] || !urls || !out) return K_ERR_INVAL;
    if (s->stopping || s->closing) return K_ERR_CLOSED;
    if ((*out = find(s, name))) return 0;
    kb_http_listener_t **ls = realloc(s->ls, (size_t)(s->n_ls + 1) * sizeof *ls);
    if (!ls) return K_ERR_NOMEM;
    s->ls = ls;
    kb_http_listener_t *l = calloc(1, sizeof *l); /* owned by s->ls */
    if (!l || !(l->name = strdup(name))) {
        free(l);
        return K_ERR_NOMEM;
    }
    l->srv = s;
    fill_opts(&l->opts, opts);
    s->ls[s->n_ls++] = l;
    int rc = bind_all(l, urls);
    if (rc < 0) {
        /* It stays in s->ls (freed with the server, after its handles closed) but is
         * unfindable and unlisted. */
        for (int i = 0; i < l->n_tcp; i++)
            uv_close((uv_handle_t *)&l->tcp[i], on_listener_closed);
        l->n_tcp = 0;
        l->name[0] = 0;
        *out = NULL;
        return rc;
    }
    *out = l;
    return 0;
}

kb_http_listener_t *kb_http_server_listener_at(kb_http_server_t *s, int i)
{
    if (!s) return NULL;
    for (int k = 0; k < s->n_ls; k++)
        if (s->ls[k]->n_tcp > 0 && i-- == 0) return s->ls[k];
    return NULL;
}

void kb_http_server_stop(kb_http_server_t *s)
{
    if (!s || s->stopping) return;
    s->stopping = true;
    for (int i = 0; i < s->n_ls; i++) {
        kb_http_listener_t *l = s->ls[i];
        for (int k = 0; k < l->n_tcp; k++)
            uv_close((uv_handle_t *)&l->tcp[k], on_listener_closed);
        l->n_tcp = 0;
        hconn_t *next;
        for (hconn_t *c = l->conns; c; c = next) {
            next = c->next;
            kb_http_conn_wind_down(c);
        }
    }
}

void kb_http_server_close(kb_http_server_t *s)
{
    if (!s || s->closing) return;
    kb_http_server_stop(s);
    s->closing = true;
    for (int i = 0; i < s->n_ls; i++) {
        hconn_t *next;
        for (hconn_t *c = s->ls[i]->conns; c; c = next) {
            next = c->next;
            kb_http_conn_close(c);
        }
    }
    s->refs++; /* balance the unref below: frees now if nothing is open */
    kb_http_server_unref(s);
}

int kb_http_route(kb_http_listener_t *l, const char *method, const char *pattern,
                  kb_http_handler_fn fn, void *ud)
{
    if (!l || !pattern || pattern[0] != '/' || !fn) return K_ERR_INVAL;
    if (l->n_routes == HTTP_MAX_ROUTES) return K_ERR_TOOLARGE;
    route_t *r = &l->routes[l->n_routes];
    memset(r, 0, sizeof *r);
    r->pattern = strdup(pattern);
    r->method = method ? strdup(method) : NULL;
    if (!r->pattern || (method && !r->method)) {
        free(r->pattern);
        free(r->method);
        return K_ERR_NOMEM;
    }
    r->plen = strlen(pattern);
    if (r->plen && pattern[r->plen - 1] == '*') {
        r->prefix = true;
        r->plen--;
    }
    r->fn = fn;
    r->ud = ud;
    l->n_routes++;
    return 0;
}

int kb_http_set_auth(kb_http_listener_t *l, const char *realm, kb_http_auth_fn fn, void *ud)
{
    if (!l) return K_ERR_INVAL;
    char *r = strdup(realm ? realm : "depot");
    if (!r) return K_ERR_NOMEM;
    free(l->realm);
    l->realm = r;
    l->auth = fn;
    l->auth_ud = ud;
    return 0;
}

const char *kb_http_listener_name(const kb_http_listener_t *l)
{
    return l ? l->name : "";
}

int kb_http_listener_port(const kb_http_listener_t *l, int i)
{
    if (!l || i < 0 || i >= l->n_tcp) return -1;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&l->tcp[i], (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void kb_http_listener_stats(const kb_http_listener_t *l, kb_http_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (l) *out = l->stats;
}

/* ------------------------------------------------------------------------------------------ */
/* The subsystem: one server per broker, in the broker's slot                                   */

const kb_subsys_t kb_http_subsys;

static kb_http_server_t *server_of(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_http_subsys);
    return slot ? *slot : NULL;
}

static int subsys_init(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_http_subsys);
    if (!slot) return K_ERR_INVAL;
    kb_http_server_t *s = kb_http_server_new(kb_broker_loop(b));
    if (!s) return K_ERR_NOMEM;
    s->broker = b;
    *slot = s;
    return 0;
}

static void subsys_stop(kb_broker_t *b)
{
    kb_http_server_stop(server_of(b));
}

static void subsys_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_http_subsys);
    if (!slot) return;
    kb_http_server_close(*slot);
    *slot = NULL;
}

const kb_subsys_t kb_http_subsys = {
    .name = "http",
    .init = subsys_init,
    .stop = subsys_stop,
    .close = subsys_close,
};

int kb_http_listen(kb_broker_t *b, const char *name, const char *urls, const kb_http_opts_t *opts,
                   kb_http_listener_t **out)
{
    kb_http_server_t *s = server_of(b);
    if (!s) return K_ERR_CLOSED;
    return kb_http_server_listen(s, name, urls, opts, out);
}

kb_http_listener_t *kb_http_listener_find(kb_broker_t *b, const char *name)
{
    kb_http_server_t *s = server_of(b);
    return s && name[0] ? find(s, name) : NULL;
}

kb_http_listener_t *kb_http_listener_at(kb_broker_t *b, int i)
{
    return kb_http_server_listener_at(server_of(b), i);
}

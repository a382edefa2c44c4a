/*
 * broker/http: one small HTTP/1.1 server on the broker's libuv loop, shared by every room that
 * answers HTTP (metrics and dashboard, schema registry, ...). Requests are parsed by Debian's
 * libhttp-parser (http_parser.h); this room adds listeners, routing, limits, keep-alive,
 * in-order pipelining and the response writer.
 *
 * USING IT (from a subsystem's init, on the loop thread; the http subsystem comes earlier in
 * broker/subsystems.c, so it is up by then):
 *
 *     kb_http_listener_t *l;
 *     int rc = kb_http_listen(b, "registry", "http://127.0.0.1:8081", NULL, &l);
 *     if (rc < 0) return rc;                       // bad URL or bind failed (logged)
 *     kb_http_route(l, "GET", "/subjects", list_subjects, st);
 *     kb_http_route(l, "POST", "/subjects*", post_subject, st);   // prefix route
 *
 *     static int list_subjects(kb_http_req_t *req, void *st) {
 *         kb_http_printf(req, "[\"%s\"]", "a");     // body bytes (copied)
 *         kb_http_send(req, 200, "application/json");
 *         return KB_DONE;
 *     }
 *
 * LISTENERS. A listener has a name ("metrics", "registry") and one or more addresses, given
 * as a comma-separated URL list "http://host:port[,https://host2:port2]" (Kafka/Confluent
 * style; an empty host or 0.0.0.0 is every interface, "[::1]" IPv6, port 0 picks a free port:
 * see kb_http_listener_port). An https:// address serves TLS through the broker's TLS
 * transport (broker/net/transport.h, tls.h): certificates per kb_http_opts_t.tls_for, read
 * again on SIGHUP; the handshake runs on the loop with ssl.handshake.timeout.ms as deadline,
 * and a client that does not speak TLS there (plain HTTP included) is closed. Handlers see no
 * difference.
 * Calling kb_http_listen again with the same name returns the existing listener (the URLs of
 * the second call are ignored), so two rooms can share one listener by agreeing on its name.
 * Two names on the same address fail with the bind error.
 *
 * ROUTES. kb_http_route(l, method, pattern, fn, ud): method is "GET", "POST", ... or NULL for
 * any method. pattern "/x" matches the path "/x" exactly; a pattern ending in '*' matches every
 * path starting with what precedes the '*' ("/subjects*" matches "/subjects",
 * "/subjects/a/versions/1" and also "/subjectsX": end the prefix with a slash to avoid that).
 * The longest matching pattern wins. HEAD is served by a GET route (the body is dropped). If
 * some route matches the path but none the method: 405 with an Allow header; no route: 404.
 * Paths are matched raw (still percent-encoded, query removed); decode path segments with
 * kb_http_url_decode after splitting them.
 *
 * HANDLER CONTRACT. fn(req, ud) runs on the loop thread and returns:
 *   KB_DONE     it called kb_http_send (or kb_http_respond) before returning;
 *   KB_PENDING  it keeps req and calls kb_http_send exactly once later on the loop thread
 *               (e.g. after an fsync); responses still leave in request order;
 *   < 0         failure: the server answers 500 (if nothing was sent) and logs the status.
 * After kb_http_send the handler must not touch req again. If the client goes away while a
 * request is pending, kb_http_closed(req) becomes true; the handler still calls kb_http_send
 * (which then just frees req). A subsystem must finish its pending requests in its own stop or
 * close (it closes before the http subsystem, being later in the table).
 *
 * REQUEST. method, raw path, decoded query parameters, headers (case-insensitive), body bytes
 * (NUL-terminated for convenience; may contain NULs), the peer, and the Basic-auth user. All
 * strings are owned by req and live until kb_http_send. Chunked request bodies are accepted.
 *
 * RESPONSE. kb_http_write/kb_http_printf append body bytes (copied), kb_http_add_header adds a
 * header (CR/LF refused), kb_http_send(req, status, content_type) completes. Content-Length,
 * Connection and Server are set by the server. A failed allocation while building turns the
 * response into a 500.
 *
 * LIMITS (kb_http_opts_t; zero fields take the defaults below), all per listener:
 *   request line + headers > max_header_bytes        → 431 and close
 *   body > max_body_bytes (declared or while reading) → 413 and close
 *   a started request not complete in read_timeout_ms → 408 and close (slow client)
 *   no request for idle_timeout_ms on a keep-alive connection → closed quietly
 *   unparseable request → 400 and close; CONNECT and Upgrade are refused the same way
 *   more than max_conns open connections → the new one is accepted and closed at once
 *   more than max_pipeline requests read ahead of their answers → reading pauses (TCP
 *   backpressure) until answers drain. "Expect: 100-continue" is honoured.
 *
 * AUTH HOOK. kb_http_set_auth(l, realm, fn, ud): every request on l must carry
 * "Authorization: Basic ..."; fn(user, password, ud) returns 0 to accept, < 0 to refuse
 * (→ 401 with WWW-Authenticate). kb_http_user(req) then names the user. Without a hook every
 * request is anonymous (kb_http_user returns NULL).
 *
 * LIFETIME AND THREADS. Everything here is loop-thread only. With the broker, the http
 * subsystem (kb_http_subsys, in the table in broker/subsystems.c) owns the server: stop closes
 * the listening sockets and idle connections, close closes everything. Standalone (unit tests):
 * kb_http_server_new(loop) ... kb_http_server_close(s), then run the loop until it returns;
 * the memory is freed in the close callbacks.
 */
#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/kb.h"

typedef struct kb_http_server kb_http_server_t;
typedef struct kb_http_listener kb_http_listener_t;
typedef struct kb_http_req kb_http_req_t;

typedef int (*kb_http_handler_fn)(kb_http_req_t *req, void *ud);
/* Returns 0 to accept the credentials, < 0 to refuse. Loop thread. */
typedef int (*kb_http_auth_fn)(const char *user, const char *password, void *ud);

typedef struct {
    size_t max_header_bytes; /* default 16 KiB */
    size_t max_body_bytes;   /* default 1 MiB */
    int read_timeout_ms;     /* default 10000 */
    int idle_timeout_ms;     /* default 60000 */
    int max_conns;           /* default 64 */
    int max_pipeline;        /* default 16 */
    /* https:// addresses: whose certificates. With a broker: KB_HTTP_TLS_BROKER (its ssl.*)
     * or KB_HTTP_TLS_REGISTRY (schema.registry.ssl.*, falling back to ssl.*). A standalone
     * server (or a caller with its own) gives tls_settings (broker/net/tls.h; its strings
     * must outlive the server), which wins over tls_for. */
    int tls_for;
    const struct kb_tls_settings *tls_settings;
} kb_http_opts_t;

#define KB_HTTP_TLS_BROKER 0   /* = KB_TLS_FOR_BROKER */
#define KB_HTTP_TLS_REGISTRY 1 /* = KB_TLS_FOR_REGISTRY */

#define KB_HTTP_DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define KB_HTTP_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define KB_HTTP_DEFAULT_READ_TIMEOUT_MS 10000
#define KB_HTTP_DEFAULT_IDLE_TIMEOUT_MS 60000
#define KB_HTTP_DEFAULT_MAX_CONNS 64
#define KB_HTTP_DEFAULT_MAX_PIPELINE 16

/* Counters of one listener, for /metrics (read on the loop thread). */
typedef struct {
    int conns;              /* open now */
    uint64_t accepted;      /* connections accepted in total */
    uint64_t refused;       /* closed at once because max_conns was reached */
    uint64_t requests;      /* requests answered */
    uint64_t client_errors; /* 4xx answers */
    uint64_t server_errors; /* 5xx answers */
} kb_http_stats_t;

/* ---- with the broker (the http subsystem) ------------------------------------------------- */

/* Opens (or finds, by name) a listener of broker b. opts may be NULL (defaults). Errors:
 * K_ERR_INVAL (bad URL, logged with the reason), K_ERR_IO (bind/listen failed, logged),
 * K_ERR_NOMEM, K_ERR_CLOSED (the http subsystem is not up). */
int kb_http_listen(kb_broker_t *b, const char *name, const char *urls, const kb_http_opts_t *opts,
                   kb_http_listener_t **out);
/* The listener of b called name, or NULL. */
kb_http_listener_t *kb_http_listener_find(kb_broker_t *b, const char *name);
/* The listeners of b, for metrics: index 0.. until NULL. */
kb_http_listener_t *kb_http_listener_at(kb_broker_t *b, int i);

/* ---- standalone server (what the subsystem wraps; unit tests use it directly) ------------- */

kb_http_server_t *kb_http_server_new(uv_loop_t *loop); /* NULL when out of memory */
int kb_http_server_listen(kb_http_server_t *s, const char *name, const char *urls,
                          const kb_http_opts_t *opts, kb_http_listener_t **out);
kb_http_listener_t *kb_http_server_listener_at(kb_http_server_t *s, int i);
/* Stops accepting and reading; idle connections close, busy ones close after their answers. */
void kb_http_server_stop(kb_http_server_t *s);
/* Closes every handle; s is freed once the loop has run their close callbacks. NULL: no-op. */
void kb_http_server_close(kb_http_server_t *s);

/* ---- listeners ----------------------------------------------------------------------------- */

/* Registers a route (see ROUTES above). method NULL = any. Returns 0, K_ERR_INVAL or
 * K_ERR_NOMEM. The pattern is copied; ud is not owned. */
int kb_http_route(kb_http_listener_t *l, const char *method, const char *pattern,
                  kb_http_handler_fn fn, void *ud);
/* Installs the Basic-auth check (see AUTH HOOK); fn NULL removes it. realm is copied. */
int kb_http_set_auth(kb_http_listener_t *l, const char *realm, kb_http_auth_fn fn, void *ud);
const char *kb_http_listener_name(const kb_http_listener_t *l);
/* The port actually bound by the i-th address of l (useful with port 0), or -1. */
int kb_http_listener_port(const kb_http_listener_t *l, int i);
void kb_http_listener_stats(const kb_http_listener_t *l, kb_http_stats_t *out);

/* ---- requests ------------------------------------------------------------------------------ */

const char *kb_http_method(const kb_http_req_t *req); /* "GET", "POST", ... */
const char *kb_http_path(const kb_http_req_t *req);   /* raw path, without the query */
/* The first value of query parameter name, percent-decoded ('+' is a space); NULL if absent
 * ("" for "?name" or "?name="). */
const char *kb_http_query(const kb_http_req_t *req, const char *name);
/* Header value (case-insensitive name); repeated headers are joined with ", ". NULL if absent. */
const char *kb_http_header(const kb_http_req_t *req, const char *name);
/* The body (NUL-terminated beyond *len), or "" with *len 0. len may be NULL. */
const uint8_t *kb_http_body(const kb_http_req_t *req, size_t *len);
/* The Basic-auth user accepted by the listener's hook, or NULL. */
const char *kb_http_user(const kb_http_req_t *req);
/* "ip:port" of the client. */
const char *kb_http_peer(const kb_http_req_t *req);
/* The connection went away while the request was pending. */
bool kb_http_closed(const kb_http_req_t *req);
/* Broker the listener belongs to (NULL for a standalone server). */
kb_broker_t *kb_http_broker(const kb_http_req_t *req);

/* Percent-decodes in[0..len) into out (NUL-terminated); plus_is_space for query strings.
 * Returns the decoded length, or K_ERR_MALFORMED (bad %xx, or a decoded NUL) / K_ERR_TOOLARGE
 * (does not fit in cap). */
int kb_http_url_decode(const char *in, size_t len, char *out, size_t cap, bool plus_is_space);

/* ---- responses ----------------------------------------------------------------------------- */

int kb_http_write(kb_http_req_t *req, const void *data, size_t len);
int kb_http_printf(kb_http_req_t *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds "name: value"; K_ERR_INVAL if either holds CR, LF or the name a ':'. */
int kb_http_add_header(kb_http_req_t *req, const char *name, const char *value);
/* Completes the response (exactly once). content_type NULL = "text/plain; charset=utf-8". */
void kb_http_send(kb_http_req_t *req, int status, const char *content_type);
/* kb_http_write + kb_http_send. */
void kb_http_respond(kb_http_req_t *req, int status, const char *content_type, const void *body,
                     size_t len);

#endif

/*
 * TLS endpoints for listeners that are not Kafka listeners (https:// HTTP listeners, see
 * tls.h): each has its own SSL_CTX from its own settings and its own SIGHUP watcher, so the
 * certificate reload the Kafka listeners get (tls.c) applies to them too without the tls
 * subsystem knowing about HTTP. libuv runs every watcher of a signal, so the broker's and the
 * endpoints' reloads all happen on one SIGHUP.
 *
 * Ownership: the endpoint owns its context (one reference; connections hold their own through
 * SSL_new) and its signal handle; kb_tls_endpoint_close frees it from the handle's close
 * callback. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/net/tls.h"

struct kb_tls_endpoint {
    uv_signal_t hup;
    SSL_CTX *ctx;
    kb_tls_settings_t s; /* strings not owned (tls.h) */
    kb_broker_t *b;
    uv_loop_t *loop;
    char name[64];
};

static void on_hup(uv_signal_t *h, int sig)
{
    (void)sig;
    kb_tls_endpoint_reload(h->data);
}

int kb_tls_endpoint_new(uv_loop_t *loop, kb_broker_t *b, const char *name,
                        const kb_tls_settings_t *s, kb_tls_endpoint_t **out, char *why,
                        size_t whylen)
{
    *out = NULL;
    kb_tls_endpoint_t *e = calloc(1, sizeof *e); /* owned by the caller until close */
    if (!e) {
        snprintf(why, whylen, "out of memory");
        return K_ERR_NOMEM;
    }
    e->s = *s;
    e->b = b;
    e->loop = loop;
    snprintf(e->name, sizeof e->name, "%s", name ? name : "?");
    if (!(e->ctx = kb_tls_ctx_from(s, why, whylen))) {
        free(e);
        return K_ERR_INVAL;
    }
    uv_signal_init(loop, &e->hup);
    e->hup.data = e;
    uv_signal_start(&e->hup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&e->hup); /* the watcher alone keeps no loop running */
    *out = e;
    return 0;
}

int kb_tls_endpoint_accept(kb_tls_endpoint_t *e, uv_stream_t *server, kb_transport_t **out)
{
    return kb_tls_transport_accept(e->loop, server, e->ctx, e->s.handshake_timeout_ms, e->b,
                                   e->name, out);
}

int kb_tls_endpoint_reload(kb_tls_endpoint_t *e)
{
    char why[512] = "";
    SSL_CTX *fresh = kb_tls_ctx_from(&e->s, why, sizeof why);
    if (!fresh) {
        kb_log(KB_LOG_ERROR, "SIGHUP: %s: TLS certificates not reloaded, keeping the old ones: %s",
               e->name, why);
        return K_ERR_INVAL;
    }
    SSL_CTX_free(e->ctx); /* open connections keep their reference */
    e->ctx = fresh;
    kb_log(KB_LOG_INFO, "SIGHUP: %s: TLS certificates reloaded", e->name);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    kb_tls_endpoint_t *e = h->data;
    SSL_CTX_free(e->ctx);
    free(e);
}

void kb_tls_endpoint_close(kb_tls_endpoint_t *e)
{
    if (!e) return;
    uv_close((uv_handle_t *)&e->hup, on_closed);
}

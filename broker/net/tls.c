/* The "tls" subsystem: the broker's SSL_CTX from Kafka's PEM settings, SIGHUP reload (tls.h). */
#include "broker/net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    SSL_CTX *ctx; /* owned (one reference); connections hold their own through SSL */
    uv_signal_t hup;
    kb_broker_t *b;
} tls_state_t;

static tls_state_t *state_of(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_tls_subsys) : NULL;
    return slot ? *slot : NULL;
}

SSL_CTX *kb_tls_ctx(kb_broker_t *b)
{
    tls_state_t *st = state_of(b);
    return st ? st->ctx : NULL;
}

int64_t kb_tls_handshake_timeout_ms(kb_broker_t *b)
{
    return kb_broker_config(b)->ssl_handshake_timeout_ms;
}

static int pw_cb(char *buf, int size, int rwflag, void *ud)
{
    (void)rwflag;
    const char *pw = ud;
    int n = (int)strlen(pw);
    if (n >= size) return 0;
    memcpy(buf, pw, (size_t)n);
    return n;
}

/* "\n" escapes (a PEM on one properties line) become newlines; a heap copy. */
static char *unescape(const char *s)
{
    char *o = malloc(strlen(s) + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == 'n') {
            o[k++] = '\n';
            i++;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = 0;
    return o;
}

static int load_chain_and_key_text(SSL_CTX *ctx, const kb_tls_settings_t *s, char *why,
                                   size_t wl)
{
    char *chain = unescape(s->keystore_chain);
    char *key = unescape(s->keystore_key);
    BIO *cb = chain ? BIO_new_mem_buf(chain, -1) : NULL;
    BIO *kb = key ? BIO_new_mem_buf(key, -1) : NULL;
    int rc = K_ERR_INVAL;
    X509 *leaf = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, pw_cb, (void *)s->key_password) : NULL;
    if (!leaf || !pk || SSL_CTX_use_certificate(ctx, leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
        snprintf(why, wl, "%skeystore.certificate.chain / %skeystore.key: cannot load",
                 s->ks_prefix, s->ks_prefix);
    } else {
        X509 *extra;
        rc = 0;
        while ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
            if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) X509_free(extra);
        ERR_clear_error(); /* the end of the chain reads as an error */
    }
    X509_free(leaf);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    free(chain);
    free(key);
    return rc;
}

static int load_trust(SSL_CTX *ctx, const kb_tls_settings_t *s, char *why, size_t wl)
{
    if (s->truststore_location[0]) {
        if (SSL_CTX_load_verify_locations(ctx, s->truststore_location, NULL) != 1) {
            snprintf(why, wl, "%struststore.location %s: cannot load", s->ts_prefix,
                     s->truststore_location);
            return K_ERR_INVAL;
        }
    } else if (s->truststore_certs[0]) {
        char *text = unescape(s->truststore_certs);
        BIO *b = text ? BIO_new_mem_buf(text, -1) : NULL;
        X509 *c;
        int n = 0;
        while (b && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), c);
            X509_free(c);
            n++;
        }
        ERR_clear_error();
        BIO_free(b);
        free(text);
        if (!n) {
            snprintf(why, wl, "%struststore.certificates: no certificate", s->ts_prefix);
            return K_ERR_INVAL;
        }
    }
    return 0;
}

void kb_tls_settings_for(const kb_config_t *cfg, int which, kb_tls_settings_t *out)
{
    *out = (kb_tls_settings_t){
        .ks_prefix = "ssl.",
        .ts_prefix = "ssl.",
        .keystore_type = cfg->ssl_keystore_type,
        .keystore_location = cfg->ssl_keystore_location,
        .keystore_chain = cfg->ssl_keystore_certificate_chain,
        .keystore_key = cfg->ssl_keystore_key,
        .key_password = cfg->ssl_key_password,
        .truststore_type = cfg->ssl_truststore_type,
        .truststore_location = cfg->ssl_truststore_location,
        .truststore_certs = cfg->ssl_truststore_certificates,
        .client_auth = cfg->ssl_client_auth,
        .handshake_timeout_ms = cfg->ssl_handshake_timeout_ms,
    };
    if (which != KB_TLS_FOR_REGISTRY) return;
    /* HTTP clients authenticate with basic auth: certificates only when asked for here. */
    out->client_auth = cfg->sr_ssl_client_authentication;
    if (cfg->sr_ssl_keystore_location[0] || cfg->sr_ssl_keystore_certificate_chain[0]) {
        out->ks_prefix = "schema.registry.ssl.";
        out->keystore_type = cfg->sr_ssl_keystore_type;
        out->keystore_location = cfg->sr_ssl_keystore_location;
        out->keystore_chain = cfg->sr_ssl_keystore_certificate_chain;
        out->keystore_key = cfg->sr_ssl_keystore_key;
        out->key_password = cfg->sr_ssl_key_password;
    }
    if (cfg->sr_ssl_truststore_location[0] || cfg->sr_ssl_truststore_certificates[0]) {
        out->ts_prefix = "schema.registry.ssl.";
        out->truststore_type = cfg->sr_ssl_truststore_type;
        out->truststore_location = cfg->sr_ssl_truststore_location;
        out->truststore_certs = cfg->sr_ssl_truststore_certificates;
    }
}

/* The key store (certificate chain + key) of s into ctx. */
static int load_keystore(SSL_CTX *ctx, const kb_tls_settings_t *s, char *why, size_t wl)
{
    if (s->keystore_location[0]) {
        if (SSL_CTX_use_certificate_chain_file(ctx, s->keystore_location) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, s->keystore_location, SSL_FILETYPE_PEM) != 1) {
            snprintf(why, wl, "%skeystore.location %s: cannot load the certificate chain and "
                     "key (%s)", s->ks_prefix, s->keystore_location,
                     ERR_reason_error_string(ERR_peek_last_error()));
            return K_ERR_INVAL;
        }
        return 0;
    }
    if (s->keystore_chain[0] && s->keystore_key[0]) return load_chain_and_key_text(ctx, s, why, wl);
    snprintf(why, wl, "a TLS listener needs %skeystore.location or %skeystore.certificate.chain "
             "+ %skeystore.key", s->ks_prefix, s->ks_prefix, s->ks_prefix);
    return K_ERR_INVAL;
}

SSL_CTX *kb_tls_ctx_from(const kb_tls_settings_t *s, char *why, size_t wl)
{
    if (strcasecmp(s->keystore_type, "PEM") || strcasecmp(s->truststore_type, "PEM")) {
        snprintf(why, wl, "%skeystore.type and %struststore.type must be PEM", s->ks_prefix,
                 s->ts_prefix);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(why, wl, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Resumed sessions with client verification need an id context (Java clients resume). */
    static const unsigned char sid[] = "depot";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    SSL_CTX_set_default_passwd_cb(ctx, pw_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)s->key_password);
    int rc = load_keystore(ctx, s, why, wl);
    if (rc == 0 && SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, wl, "the private key does not match the certificate");
        rc = K_ERR_INVAL;
    }
    if (rc == 0) rc = load_trust(ctx, s, why, wl);
    if (rc == 0 && s->client_auth > 0) {
        int mode = SSL_VERIFY_PEER;
        if (s->client_auth == 2) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    ERR_clear_error();
    if (rc) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* The password callback's pointer is into the settings' storage (the broker's config,
     * alive for the broker). */
    return ctx;
}

SSL_CTX *kb_tls_ctx_new(const kb_config_t *cfg, char *why, size_t wl)
{
    kb_tls_settings_t s;
    kb_tls_settings_for(cfg, KB_TLS_FOR_BROKER, &s);
    return kb_tls_ctx_from(&s, why, wl);
}

static bool any_tls_listener(const kb_config_t *cfg)
{
    for (int i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].security_protocol == KB_SEC_SSL ||
            cfg->listeners[i].security_protocol == KB_SEC_SASL_SSL)
            return true;
    return false;
}

static void on_hup(uv_signal_t *h, int sig)
{
    (void)sig;
    tls_state_t *st = h->data;
    char why[512] = "";
    SSL_CTX *fresh = kb_tls_ctx_new(kb_broker_config(st->b), why, sizeof why);
    if (!fresh) {
        kb_log(KB_LOG_ERROR, "SIGHUP: TLS certificates not reloaded, keeping the old ones: %s",
               why);
        return;
    }
    SSL_CTX_free(st->ctx); /* open connections keep their reference */
    st->ctx = fresh;
    kb_log(KB_LOG_INFO, "SIGHUP: TLS certificates reloaded");
}

static int tls_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    if (!any_tls_listener(cfg)) return 0;
    tls_state_t *st = calloc(1, sizeof *st); /* owned by the slot until tls_close */
    if (!st) return K_ERR_NOMEM;
    char why[512] = "";
    if (!(st->ctx = kb_tls_ctx_new(cfg, why, sizeof why))) {
        kb_log(KB_LOG_ERROR, "TLS: %s", why);
        free(st);
        return K_ERR_INVAL;
    }
    st->b = b;
    uv_signal_init(kb_broker_loop(b), &st->hup);
    st->hup.data = st;
    uv_signal_start(&st->hup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&st->hup);
    *kb_broker_slot(b, &kb_tls_subsys) = st;
    return 0;
}

static void on_hup_closed(uv_handle_t *h)
{
    free(h->data);
}

static void tls_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_tls_subsys);
    tls_state_t *st = slot ? *slot : NULL;
    if (!st) return;
    SSL_CTX_free(st->ctx);
    st->ctx = NULL;
    *slot = NULL;
    uv_close((uv_handle_t *)&st->hup, on_hup_closed);
}

const kb_subsys_t kb_tls_subsys = {
    .name = "tls",
    .init = tls_init,
    .close = tls_close,
};

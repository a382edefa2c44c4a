/*
 * TLS for the kc client (depotctl on SSL / SASL_SSL listeners): blocking OpenSSL over the
 * connection's socket, whose SO_RCVTIMEO/SO_SNDTIMEO timeouts still bound every call. The
 * broker's certificate must chain to cfg.ssl_ca_location and name the host we dialled.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "client/kc_int.h"

int kc_tls_connect(kc_client_t *c, kc_conn_t *conn)
{
    const kc_config_t *cfg = &c->cfg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return kc_fail(c, K_ERR_NOMEM, 0, "TLS: out of memory");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int rc = 0;
    if (SSL_CTX_load_verify_locations(ctx, cfg->ssl_ca_location, NULL) != 1)
        rc = kc_fail(c, K_ERR_INVAL, 0, "TLS: cannot read the CA file %s", cfg->ssl_ca_location);
    if (!rc && cfg->ssl_certificate_location &&
        (SSL_CTX_use_certificate_chain_file(ctx, cfg->ssl_certificate_location) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, cfg->ssl_key_location ? cfg->ssl_key_location
                                                                : cfg->ssl_certificate_location,
                                     SSL_FILETYPE_PEM) != 1))
        rc = kc_fail(c, K_ERR_INVAL, 0, "TLS: cannot load the client certificate or key");
    SSL *ssl = rc ? NULL : SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (!rc && !ssl) rc = kc_fail(c, K_ERR_NOMEM, 0, "TLS: out of memory");
    if (!rc) {
        SSL_set_fd(ssl, conn->fd);
        SSL_set_tlsext_host_name(ssl, conn->host);
        /* An IP address is checked against the certificate's IP SANs, a name against DNS. */
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, conn->host) != 1) SSL_set1_host(ssl, conn->host);
        if (SSL_connect(ssl) != 1) {
            unsigned long e = ERR_get_error();
            long v = SSL_get_verify_result(ssl);
            rc = kc_fail(c, K_ERR_IO, 0, "TLS handshake with %s:%d failed: %s%s%s", conn->host,
                         conn->port, e ? ERR_reason_error_string(e) : "connection closed",
                         v != X509_V_OK ? ": " : "",
                         v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        }
    }
    ERR_clear_error();
    if (rc) {
        SSL_free(ssl);
        return rc;
    }
    conn->ssl = ssl;
    return 0;
}

void kc_tls_close(kc_conn_t *conn)
{
    if (!conn->ssl) return;
    SSL_shutdown(conn->ssl); /* close_notify; the reply is not awaited */
    SSL_free(conn->ssl);
    conn->ssl = NULL;
}

int kc_tls_write_all(kc_conn_t *conn, const uint8_t *p, size_t n)
{
    while (n) {
        int w = SSL_write(conn->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
        if (w <= 0) {
            if (!errno) errno = EPIPE;
            ERR_clear_error();
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kc_tls_read_all(kc_conn_t *conn, uint8_t *p, size_t n)
{
    while (n) {
        int r = SSL_read(conn->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
        if (r <= 0) {
            if (SSL_get_error(conn->ssl, r) == SSL_ERROR_ZERO_RETURN || !errno) errno = ECONNRESET;
            ERR_clear_error();
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * TLS for SSL:// and SASL_SSL:// listeners: the broker's certificates (one SSL_CTX, owned by
 * the "tls" subsystem in tls.c) and the transport (transport_tls.c).
 *
 * Configuration, Kafka's PEM settings (KIP-651):
 *   ssl.keystore.type=PEM
 *   ssl.keystore.location=/etc/depot/broker.pem      key + certificate chain in one PEM file
 *   or ssl.keystore.certificate.chain / ssl.keystore.key   the PEM text itself ("\n" escapes
 *                                                    allowed in a properties file)
 *   ssl.key.password                                 when the key is encrypted
 *   ssl.truststore.type=PEM, ssl.truststore.location (or ssl.truststore.certificates)
 *                                                    CAs that sign client certificates
 *   ssl.client.auth=none|requested|required
 * With a client certificate the connection's principal is User:<subject DN in RFC 2253 form>,
 * as Kafka's DefaultKafkaPrincipalBuilder does (e.g. User:CN=line2-scada,OU=plant,O=acme).
 * SIGHUP reads the files again: new connections use the new certificates, open ones keep
 * theirs; a bad file keeps the old context and logs why.
 *
 * HTTP listeners (https:// in metrics.listeners or schema.registry.listeners) use the same
 * transport through a kb_tls_endpoint_t each, with the broker's ssl.* or, for the registry,
 * schema.registry.ssl.* (see kb_tls_settings_for).
 *
 * Thread: loop thread.
 */
#ifndef KB_TLS_H
#define KB_TLS_H

#include <openssl/ssl.h>

#include "broker/core/subsys.h"
#include "broker/kb.h"
#include "broker/net/transport.h"

extern const kb_subsys_t kb_tls_subsys;
extern const kb_transport_factory_t kb_transport_tls_factory;

/*
 * One set of TLS server settings: the broker's ssl.* for Kafka listeners, or those of an HTTP
 * listener (https://). The strings are not owned: they point into the broker's configuration
 * (or, for a standalone HTTP server, into the caller's storage) and must outlive every context
 * and endpoint made from them. ks_prefix / ts_prefix name the keys in error messages ("ssl."
 * or "schema.registry.ssl.", which differ when one store fell back to the broker's).
 */
typedef struct kb_tls_settings {
    const char *ks_prefix, *ts_prefix;
    const char *keystore_type, *keystore_location, *keystore_chain, *keystore_key;
    const char *key_password;
    const char *truststore_type, *truststore_location, *truststore_certs;
    int client_auth; /* 0 none, 1 requested, 2 required */
    int64_t handshake_timeout_ms;
} kb_tls_settings_t;

/* Whose settings (kb_tls_settings_for). */
enum { KB_TLS_FOR_BROKER = 0, KB_TLS_FOR_REGISTRY = 1 };

/*
 * Fills *out for KB_TLS_FOR_BROKER (ssl.*: Kafka listeners and the metrics listener) or
 * KB_TLS_FOR_REGISTRY (schema.registry.ssl.*). For the registry the key store falls back as a
 * whole to the broker's (ssl.keystore.*, ssl.key.password) when neither
 * schema.registry.ssl.keystore.location nor ...keystore.certificate.chain is set, and the
 * trust store likewise; client authentication does not fall back (its own key, default NONE).
 */
void kb_tls_settings_for(const kb_config_t *cfg, int which, kb_tls_settings_t *out);

/* The current context (NULL when no TLS listener is configured or it failed to load). */
SSL_CTX *kb_tls_ctx(kb_broker_t *b);
int64_t kb_tls_handshake_timeout_ms(kb_broker_t *b);
/* Builds a context from the broker's ssl.*; NULL with the reason in why. */
SSL_CTX *kb_tls_ctx_new(const kb_config_t *cfg, char *why, size_t whylen);
/* Builds a context from settings; NULL with the reason in why. */
SSL_CTX *kb_tls_ctx_from(const kb_tls_settings_t *s, char *why, size_t whylen);

/*
 * The TLS transport over one connection pending on server (its listen callback fired), with
 * context ctx (the transport takes its own reference) and a handshake deadline. b may be NULL
 * (no audit trail); listener names the listener in logs and audit records (copied).
 */
int kb_tls_transport_accept(uv_loop_t *loop, uv_stream_t *server, SSL_CTX *ctx,
                            int64_t handshake_timeout_ms, kb_broker_t *b, const char *listener,
                            kb_transport_t **out);

/*
 * A TLS endpoint outside the Kafka listeners (an https:// HTTP listener): its own context
 * from its settings, read again on SIGHUP like the broker's (new connections get the new
 * certificates, open ones keep theirs; a bad file keeps the old context and logs why).
 * tls_endpoint.c. Loop thread.
 */
typedef struct kb_tls_endpoint kb_tls_endpoint_t;

/* s is copied (its strings are not: see kb_tls_settings_t); name (copied) is for logs.
 * K_ERR_INVAL with the reason in why when the certificates cannot be loaded. */
int kb_tls_endpoint_new(uv_loop_t *loop, kb_broker_t *b, const char *name,
                        const kb_tls_settings_t *s, kb_tls_endpoint_t **out, char *why,
                        size_t whylen);
/* Accepts one pending connection of server as a TLS transport (see kb_tls_transport_accept). */
int kb_tls_endpoint_accept(kb_tls_endpoint_t *e, uv_stream_t *server, kb_transport_t **out);
/* Loads the certificates again (what SIGHUP does); < 0 keeps the old context. */
int kb_tls_endpoint_reload(kb_tls_endpoint_t *e);
/* Frees e once the loop has closed its signal handle. NULL: no-op. */
void kb_tls_endpoint_close(kb_tls_endpoint_t *e);

#endif

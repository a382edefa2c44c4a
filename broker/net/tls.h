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

/* The current context (NULL when no TLS listener is configured or it failed to load). */
SSL_CTX *kb_tls_ctx(kb_broker_t *b);
int64_t kb_tls_handshake_timeout_ms(kb_broker_t *b);
/* Builds a context from the configuration; NULL with the reason in why. */
SSL_CTX *kb_tls_ctx_new(const kb_config_t *cfg, char *why, size_t whylen);

#endif

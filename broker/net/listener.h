/*
 * Listeners, Kafka style. Configuration:
 *   listeners=PLAINTEXT://:9092,SASL_SSL://:9093      NAME://host:port, comma-separated
 *   listener.security.protocol.map=PLAINTEXT:PLAINTEXT,...  NAME:PROTOCOL; the default maps
 *                                 each protocol name to itself; a value given replaces it
 *   advertised.listeners=PLAINTEXT://box.local:9092    per listener name, a subset of listeners
 * Names are case-insensitive (kept upper case), unique, [A-Z0-9_-]; each listener needs a map
 * entry; a listener not named in advertised.listeners advertises its own address (a wildcard
 * host becomes this machine's host name). Port 0 binds a free port, which then replaces the
 * port (and an advertised port of 0) in the broker's copy of the configuration.
 *
 * Each listener gets the transport its security protocol calls for (kb_transport_for); every
 * accepted connection points at its kb_listener_t for life (kb_conn_listener), so handlers
 * answer Metadata, DescribeCluster and FindCoordinator with the address the client used.
 *
 * Parsing (listener_config.c) is pure and used by broker/core/config.c; the sockets
 * (listener.c) belong to the server. Thread: loop thread (or main before the loop runs).
 */
#ifndef KB_LISTENER_H
#define KB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "broker/kb.h"
#include "broker/net/transport.h"

/* ---- parsing (listener_config.c) --------------------------------------------------------- */

/* The KB_SEC_* of a protocol name (case-insensitive, n bytes), or -1. */
int kb_security_protocol_parse(const char *s, size_t n);

/* "NAME://host:port,..." into out[0..*n). Errors (bad URL, duplicate name, too many) return
 * K_ERR_INVAL with the reason in why. security_protocol is left -1 (see resolve). */
int kb_listeners_parse(const char *v, kb_listener_t *out, int max, int *n, char *why,
                       size_t whylen);
/* "NAME:PROTOCOL,..." into out[0..*n). */
int kb_protocol_map_parse(const char *v, kb_protocol_map_entry_t *out, int max, int *n, char *why,
                          size_t whylen);
/*
 * After listeners and the map are parsed: gives every listener its protocol and advertised
 * address (advertised = the advertised.listeners value, NULL when not set), and refuses what
 * cannot work (a name missing from the map, an advertised name that is not a listener, an
 * advertised wildcard host, two listeners on one port, a protocol this build cannot serve).
 * The message in err names the key and the listener.
 */
int kb_listeners_resolve(kb_config_t *cfg, const char *advertised, char *err, size_t errlen);
/* "NAME://host:port,..." of the bind (advertised = false) or advertised addresses. */
void kb_listeners_render(const kb_listener_t *l, int n, bool advertised, char *buf, size_t len);
void kb_protocol_map_render(const kb_protocol_map_entry_t *m, int n, char *buf, size_t len);

/* ---- sockets (listener.c) ---------------------------------------------------------------- */

/* One bound listener. Lives in the broker (kb_broker.socks[]), one per cfg.listeners[]. */
typedef struct kb_listen_sock {
    uv_tcp_t tcp;
    kb_broker_t *broker;
    kb_listener_t *cfg;                    /* the broker's copy: bound port filled in */
    const kb_transport_factory_t *factory; /* tests may wrap it to inject accept failures */
    uv_timer_t retry; /* accepting again after a failure (memory, descriptors) */
    int retry_ms;     /* current backoff, 0 when accepting normally */
    bool open;        /* tcp and retry initialised (must be closed) */
} kb_listen_sock_t;

/* Binds every configured listener without listening (before the store opens, so a busy port
 * fails first) and fills in bound ports, which subsystems may need while they start. On
 * failure the ones already open stay for kb_listeners_close. */
int kb_listeners_bind(kb_broker_t *b);
/* Listens on every bound listener: the last step of start-up, so the kernel completes no
 * handshake before the broker is whole. A connection that cannot be accepted (no memory, no
 * descriptor) does not stop a listener: it tries again on a timer (100 ms doubling to 2 s)
 * until it succeeds. */
int kb_listeners_listen(kb_broker_t *b);
/* Stops accepting on every listener (idempotent). */
void kb_listeners_close(kb_broker_t *b);
/* "NAME://host:port,..." as bound (advertised = false) or advertised, for the start log. */
void kb_listeners_describe(const kb_broker_t *b, bool advertised, char *buf, size_t len);

#endif

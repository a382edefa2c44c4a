/*
 * SASL on a connection: which mechanisms the broker offers, the per-connection exchange
 * state, and the gate that keeps an unauthenticated client on a SASL listener from doing
 * anything but ApiVersions / SaslHandshake / SaslAuthenticate.
 *
 * States of a connection on a SASL_* listener:
 *
 *   NEW ──SaslHandshake(mech ok)──► HANDSHAKEN ──token(s)──► AUTHENTICATED
 *    │                                  │ bad token                │ SaslHandshake (KIP-368
 *    │ anything else: close             ▼                          ▼  re-authentication)
 *    │                                FAILED: answer, then close   REAUTH ─► AUTHENTICATED
 *
 * After SaslHandshake v0 the client sends raw SASL tokens (4-byte size, no Kafka header:
 * kafka-python's flow); after v1 it wraps them in SaslAuthenticate. The connection asks
 * kb_sasl_expects_raw before it decodes a request header.
 *
 * Session lifetime (KIP-368): with connections.max.reauth.ms > 0 a session expires that long
 * after authentication; SaslAuthenticate v1+ tells the client, and a request other than a
 * re-authentication after expiry closes the connection. A re-authentication must keep the
 * same principal.
 *
 * Ownership: the connection owns its kb_sasl_conn_t (created on first use, freed by
 * kb_sasl_conn_free when the connection closes). Thread: loop thread.
 */
#ifndef KB_SASL_H
#define KB_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/auth/creds.h"
#include "broker/core/subsys.h"
#include "broker/kb.h"

enum { KB_MECH_PLAIN = 1 << 0, KB_MECH_SCRAM_SHA_256 = 1 << 1, KB_MECH_SCRAM_SHA_512 = 1 << 2 };

enum { KB_SASL_NEW = 0, KB_SASL_HANDSHAKEN, KB_SASL_AUTHENTICATED, KB_SASL_FAILED };

typedef struct kb_sasl_conn kb_sasl_conn_t;

/* The auth subsystem (credentials, mechanisms); listed in broker/subsystems.c. */
extern const kb_subsys_t kb_sasl_subsys;

/* The broker's credential store (NULL before init or out of memory). */
kb_creds_t *kb_sasl_creds(kb_broker_t *b);
/* Reloads the credential store from disk (after a failed save: memory follows the disk). */
void kb_sasl_creds_reload(kb_broker_t *b);
/* Bit set of KB_MECH_* offered. */
unsigned kb_sasl_mechanisms(kb_broker_t *b);
/* Parses a sasl.enabled.mechanisms value; returns the bit set, or < 0 naming the bad entry. */
int kb_sasl_parse_mechanisms(const char *list, unsigned *out, char *why, size_t whylen);

/* --- hooks the connection (broker/net) calls ------------------------------------------ */

/* Connection-owned slot for the SASL state, and whether its listener is SASL_*. */
kb_sasl_conn_t **kb_conn_sasl_slot(kb_conn_t *conn);
bool kb_conn_sasl_required(const kb_conn_t *conn);
/* Stop reading; close once every queued response has been written (failed authentication). */
void kb_conn_close_when_flushed(kb_conn_t *conn);

/* Is the next frame of conn a raw SASL token (after SaslHandshake v0)? */
bool kb_sasl_expects_raw(kb_conn_t *conn);
/* May req run now? False: the connection must be closed (logged here). */
bool kb_sasl_gate(kb_req_t *req);
void kb_sasl_conn_free(kb_sasl_conn_t *sc);

/* --- used by the SASL handlers (broker/api/h_sasl.c) ---------------------------------- */

/* The connection's state, created on first use (NULL when out of memory). */
kb_sasl_conn_t *kb_sasl_conn(kb_conn_t *conn);
int kb_sasl_state(const kb_sasl_conn_t *sc);

/* SaslHandshake: chooses mech for conn. Returns a Kafka error code (0, 33, 34). */
int16_t kb_sasl_handshake(kb_req_t *req, const char *mech, size_t len, bool raw);

/*
 * One client token. On 0, *out and *out_len hold the answer (may be empty) and *done says
 * whether authentication finished (principal set). On failure returns a Kafka error code
 * (SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE) with a message in why; the connection is
 * then in FAILED and closes after the answer. *lifetime_ms is the session lifetime (0 =
 * none) when done.
 */
int16_t kb_sasl_token(kb_req_t *req, const uint8_t *in, size_t len, char *out, size_t cap,
                      size_t *out_len, bool *done, int64_t *lifetime_ms, char *why,
                      size_t whylen);

/*
 * A PLAIN token whose password needs checking (well-formed, known user): starts the PBKDF2
 * check on libuv's thread pool, pauses reading from the connection and returns 1; the handler
 * returns KB_PENDING and done(req, err, fin, lifetime_ms, why) runs on the loop later with
 * what kb_sasl_token would have returned (it must answer and kb_req_complete req; if the
 * connection closed meanwhile it is not called: req is completed for it). Returns 0 when the
 * token is not one (another mechanism, malformed, unknown user, out of memory): the caller
 * goes on with kb_sasl_token.
 */
typedef void (*kb_sasl_plain_done_fn)(kb_req_t *req, int16_t err, bool fin, int64_t lifetime_ms,
                                      const char *why);
int kb_sasl_plain_async(kb_req_t *req, const uint8_t *in, size_t len, kb_sasl_plain_done_fn done);
/* Stops (hold) or resumes reading requests from conn (broker/net/conn.c). */
void kb_conn_hold_reads(kb_conn_t *conn, bool hold);

#endif

/*
 * The audit trail: internal topic __audit, one JSON object per record:
 *
 *   {"time":"2026-12-03T14:59:08.123Z","principal":"User:alice","client_address":"10.0.0.7",
 *    "client_id":"line2-scada","listener":"SASL_PLAINTEXT","api":"Produce","operation":"WRITE",
 *    "resource_type":"TOPIC","resource_name":"sensors.line2","allowed":true,"error":null,
 *    "count":1}
 *
 * What is recorded (audit.event.types):
 *   authentication  every SASL success and failure (operation AUTHENTICATE, resource the
 *                   mechanism)
 *   authorization   every denied kb_authorize (Metadata hiding a topic included), never the
 *                   probes behind authorized_operations
 *   change          every allowed CREATE, DELETE, ALTER, ALTER_CONFIGS (topics, partitions,
 *                   configs, ACLs, users, group deletions)
 *   access          the first WRITE/READ on a topic and READ on a group per principal and
 *                   resource; later ones are counted and written as one summary record per
 *                   (principal, operation, resource) every audit.summary.interval.ms
 *
 * How it hooks in: the audit subsystem wraps whatever authorizer is installed (the ACL one or
 * none, which allows everything) so it sees every check every handler makes, before the
 * handler acts. A record is appended to __audit right there, and a record that must be durable
 * (authentication, denial, change, first access) holds the request's answer until the
 * partition is fsynced (kb_req_hold): the answer never overtakes its audit record.
 *
 * A change must not even be made before its intent record is durable, yet the loop must not
 * wait for an fsync. So a check that allows a change appends the intent and answers "no" for
 * now: that pass of the handler makes no change and its answer is dropped; the request is held
 * in its place while the flusher fsyncs __audit, then its handler runs again from the start
 * (kb_req_replay) and the check answers "yes" (or "no" if the fsync failed). Every check is
 * kept with the request, so the second pass writes and counts nothing twice. A handler may
 * therefore run twice: before its first checked change it must have no effect of its own.
 *
 * Fail-closed: if the record cannot be appended, the check answers "denied" (the request fails
 * with Kafka's authorization error); if the fsync fails, the connection is closed without the
 * answer. Tamper-proof through the Kafka API: WRITE, CREATE, DELETE, ALTER and ALTER_CONFIGS on
 * topic __audit are denied to every principal (super users included); READ follows the ACLs.
 *
 * Thread: loop thread.
 */
#ifndef KB_AUDIT_H
#define KB_AUDIT_H

#include <stdbool.h>

#include "broker/core/subsys.h"
#include "broker/kb.h"

#define KB_AUDIT_TOPIC "__audit"

extern const kb_subsys_t kb_audit_subsys;

/* An authentication outcome (sasl.c). Returns < 0 when the record could not be written: the
 * caller then fails the authentication (fail-closed). */
int kb_audit_authentication(kb_req_t *req, const char *mechanism, const char *user, bool ok,
                            const char *error);

/* Appends one item (printf-style) to req->audit_detail, comma-separated, in req's arena, cut
 * at 4 KiB with "...": what a change request changes, added by its handler before the
 * kb_authorize that allows it (the ACL bindings of CreateAcls, the users of
 * AlterUserScramCredentials, ...). Out of memory: the detail is left as it was. */
void kb_audit_detail_add(kb_req_t *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Called by the connection layer when a pass of a request's handler is done (its answer
 * built, or its connection gone) and req->audit_state is set. Returns 1 when the pass wrote
 * change intents: its answer is dropped, req is held (kb_req_hold) until the flusher has made
 * them durable and then run again (kb_req_replay), so the connection should read nothing more
 * meanwhile. Else 0: the outcome record of the request's changes, if any, is written (see
 * top) and the answer goes once it is durable.
 */
int kb_audit_request_done(kb_req_t *req);

/* True while the handler's pass has written change intents and will be run again: a handler
 * with effects of its own besides the checked changes (Produce appending batches) stops
 * before making them (see the top of audit.c). */
bool kb_audit_replay_due(const kb_req_t *req);

/* A connection that failed before any request (TLS handshake failure or deadline, a frame
 * that is not Kafka): written without holding anything (there is no answer to hold). */
void kb_audit_connection_failure(kb_broker_t *b, const char *peer, const char *listener,
                                 const char *what, const char *error);

#endif

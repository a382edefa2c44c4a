/*
 * Subsystems: every room that keeps state on the loop (data-path handlers, the group
 * coordinator, and next the authorizer, audit, HTTP, registry, uplink, cleaner, metrics)
 * registers one kb_subsys_t in the table in broker/subsystems.c. The server calls them in table
 * order; nothing is found through process-wide globals or weak symbols.
 *
 *   init    after the store is open, before the first connection is accepted. < 0 aborts the
 *           start (the subsystems already up are closed again).
 *   tick    once a second on the loop with the monotonic clock (may be NULL).
 *   stop    shutdown has begun: answer held requests, stop taking new work (may be NULL).
 *   close   release everything, in reverse table order, before connections and the store
 *           close (may be NULL). Called only for subsystems whose init succeeded.
 *   topic_deleted  a topic is gone (its committed offsets, ACL-less audit state, uplink
 *           checkpoint follow it); may be NULL.
 *
 * Per-broker state: kb_broker_slot(b, &my_subsys) is a void * the subsystem owns (a process
 * normally has one broker; tests may run several). Loop thread only.
 */
#ifndef KB_SUBSYS_H
#define KB_SUBSYS_H

#include <stdint.h>

#include "broker/kb.h"

typedef struct kb_subsys {
    const char *name;
    int (*init)(kb_broker_t *b);
    void (*tick)(kb_broker_t *b, int64_t mono_ms);
    void (*stop)(kb_broker_t *b);
    void (*close)(kb_broker_t *b);
    void (*topic_deleted)(kb_broker_t *b, const char *topic);
} kb_subsys_t;

#define KB_MAX_SUBSYS 32

/* The table, NULL-terminated (broker/subsystems.c). */
extern const kb_subsys_t *const kb_subsystems[];

/* The state slot of subsystem s in broker b; NULL if s is not in the table. */
void **kb_broker_slot(kb_broker_t *b, const kb_subsys_t *s);
/* Tells every subsystem that topic is gone. */
void kb_broker_topic_deleted(kb_broker_t *b, const char *topic);

#endif

/*
 * broker/registry: a schema registry that Confluent's serializers and tools accept unchanged
 * (Java KafkaAvroSerializer, confluent-kafka's AvroSerializer, @kafkajs/confluent-schema-
 * registry), with its schemas kept in the broker's own log (topic `_schemas`, Confluent's
 * record layout) and its REST API on an HTTP listener (schema.registry.listeners).
 *
 * The REST core is written against this small interface, independent of the HTTP server:
 * a request is (method, raw path, query lookup, body); the answer is (HTTP status, JSON body)
 * delivered through a callback, at once for reads and after the fsync for writes.
 *
 * Ownership: kb_registry_t belongs to its opener and borrows the store (which must outlive
 * it). Loop thread only.
 */
#ifndef KB_REGISTRY_H
#define KB_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/ks.h"

typedef struct kb_registry kb_registry_t;

typedef struct {
    const char *method; /* "GET", "POST", "PUT", "DELETE", ... */
    const char *path;   /* raw (percent-encoded) path without the query */
    /* The decoded value of query parameter name, or NULL when absent. */
    const char *(*query)(void *ud, const char *name);
    void *query_ud;
    const uint8_t *body;
    size_t body_len;
} kb_reg_request_t;

/* The answer: HTTP status and a malloc'ed JSON body (the callee owns it), exactly once. */
typedef void (*kb_reg_reply_fn)(void *ctx, int status, char *body, size_t len);

/* Opens (creating if needed: compacted, one partition) `_schemas` and replays it. */
int kb_registry_open(ks_store_t *store, kb_registry_t **out);
/* Pending writes are answered at once (500) and forgotten. NULL is a no-op. */
void kb_registry_close(kb_registry_t *r);
void kb_registry_call(kb_registry_t *r, const kb_reg_request_t *req, kb_reg_reply_fn reply,
                      void *ctx);
/* Records replayed and skipped at open (logs, tests). */
void kb_registry_load_stats(const kb_registry_t *r, int64_t *loaded, int64_t *skipped);

/* The content type Confluent answers with. */
#define KB_REG_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/*
 * Produce validation (topic configs confluent.{key,value}.schema.validation): does `data`
 * start with magic byte 0 and a 4-byte schema id registered (and not deleted) under the
 * subject that `strategy` (KS_SUBJECT_*) names for this topic, and, when full, decode under
 * that schema? 0 when it does; K_ERR_INVAL with a reason in msg.
 */
int kb_registry_check_value(kb_registry_t *r, const char *topic, bool is_key, int strategy,
                            const uint8_t *data, size_t len, bool full, char *msg,
                            size_t msglen);
/* The id stored in a Confluent-framed value, or -1 when data is not framed that way. */
int64_t kb_registry_framed_id(const uint8_t *data, size_t len);

#endif

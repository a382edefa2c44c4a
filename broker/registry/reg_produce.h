/*
 * Validation at the door: the call Produce makes into the registry room (broker/api/
 * h_produce.c, after a partition's batch passed Kafka's checks and before it is appended).
 *
 * A topic with confluent.value.schema.validation=true (or ...key...) only accepts records whose
 * value (key) starts with magic byte 0 and a schema id registered under the topic's subject
 * (confluent.{value,key}.subject.name.strategy: TopicNameStrategy by default), and with
 * depot.value.schema.validation=full also decodes under that schema. Only such topics pay for
 * looking inside the batch (decompressing it); for the others this is two integer tests.
 *
 * Returns KP_ERR_NONE, or KP_ERR_INVALID_RECORD with out->record_errors (KIP-467: the index of
 * each refused record and why, at most KB_REG_MAX_RECORD_ERRORS) and out->error_message set,
 * all allocated in arena. With validation on and no registry running, every record is refused.
 * Loop thread.
 */
#ifndef KB_REG_PRODUCE_H
#define KB_REG_PRODUCE_H

#include "broker/kb.h"
#include "broker/registry/registry.h"
#include "protocol/gen/kp_produce.h"

#define KB_REG_MAX_RECORD_ERRORS 64

int16_t kb_registry_produce_check(kb_broker_t *b, ks_topic_t *t, const uint8_t *batch,
                                  size_t len, kp_arena_t *arena,
                                  kp_produce_resp_partition_produce_response_t *out);

/* The same against a given registry (NULL = off); tests call it without a broker. */
int16_t kb_registry_produce_check_r(kb_registry_t *r, ks_topic_t *t, const uint8_t *batch,
                                    size_t len, kp_arena_t *arena,
                                    kp_produce_resp_partition_produce_response_t *out);

#endif

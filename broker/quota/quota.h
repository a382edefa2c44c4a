/*
 * Client quotas, Kafka's model (docs/quotas.md): byte-rate limits per (user, client-id) set
 * with AlterClientQuotas (kafka-configs --entity-type users|clients), read with
 * DescribeClientQuotas, kept in <log.dirs[0]>/__client_quotas, and enforced on Produce and
 * Fetch with Kafka's sampled rate (rate.h) and throttle (KIP-219: throttle_time_ms in the
 * answer, then the connection is muted that long).
 *
 * Entities: a user, a client-id, or both; each part a name or <default>. Which quota applies
 * to a request is Kafka's precedence, most specific first:
 *   1 user=U, client-id=C      2 user=U, client-id=<default>    3 user=U
 *   4 user=<default>, client-id=C   5 user=<default>, client-id=<default>   6 user=<default>
 *   7 client-id=C              8 client-id=<default>
 *   then the static quota.producer.default / quota.consumer.default (per client-id).
 * Requests that share the matched entity share one rate: a user quota (3, 6) is shared by all
 * of the user's client-ids, a client-id quota (7, 8, static) by every user of that client-id.
 *
 * Keys: producer_byte_rate and consumer_byte_rate are enforced; request_percentage and
 * controller_mutation_rate are stored and described but have no effect here (one node, one
 * request thread: there is no handler-time share or controller to protect).
 *
 * Thread: loop thread only; the file is written on libuv's threadpool (see quota.c).
 */
#ifndef KB_QUOTA_H
#define KB_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/core/subsys.h"
#include "broker/kb.h"

#define KB_QUOTA_FILE "__client_quotas"
#define KB_QUOTA_NAME_MAX 255

/* What an entity part is. */
enum { KB_QE_NONE = 0, KB_QE_DEFAULT = 1, KB_QE_NAME = 2 };

typedef struct {
    int8_t user_kind, client_kind; /* KB_QE_* */
    char user[KB_QUOTA_NAME_MAX + 1], client[KB_QUOTA_NAME_MAX + 1];
} kb_quota_entity_t;

/* The quota keys, Kafka's names. */
enum {
    KB_QK_PRODUCER_BYTE_RATE = 0,
    KB_QK_CONSUMER_BYTE_RATE,
    KB_QK_REQUEST_PERCENTAGE,
    KB_QK_CONTROLLER_MUTATION_RATE,
    KB_QK_N
};
extern const char *const kb_quota_key_names[KB_QK_N];
/* The key's index, or -1. */
int kb_quota_key(const char *name, size_t len);

typedef struct {
    kb_quota_entity_t e;
    double v[KB_QK_N]; /* NaN = not set */
} kb_quota_entry_t;

/* The set of configured quotas (quota_store.c). gen changes with every change. */
typedef struct {
    kb_quota_entry_t *items; /* owned */
    int n, cap;
    uint64_t gen;
} kb_qstore_t;

void kb_qstore_init(kb_qstore_t *s);
void kb_qstore_deinit(kb_qstore_t *s);
/* Index of the entry for e, or -1. */
int kb_qstore_find(const kb_qstore_t *s, const kb_quota_entity_t *e);
/* Sets (or, with NaN, removes) one key of e; an entry left with no key goes away. */
int kb_qstore_set(kb_qstore_t *s, const kb_quota_entity_t *e, int key, double v);
/* Deep copy (dst initialised or deinitialised first by the caller). */
int kb_qstore_copy(kb_qstore_t *dst, const kb_qstore_t *src);
/*
 * The quota for key that applies to (user, client), by Kafka's precedence (above); *level is
 * 1..8, or 0 when no entry sets the key (then the result is NaN). Tagging: *share_user and
 * *share_client say which of user/client the rate is kept per.
 */
double kb_qstore_resolve(const kb_qstore_t *s, int key, const char *user, const char *client,
                         int *level, bool *share_user, bool *share_client);
/* The file text (malloc'd, *out owned by the caller) and its parse (file format in
 * quota_store.c). Parse adds to s; err names the line on K_ERR_CORRUPT. */
int kb_qstore_format(const kb_qstore_t *s, char **out, size_t *len);
int kb_qstore_parse(kb_qstore_t *s, char *text, char *err, size_t errlen);

/* ---- the subsystem (quota.c) ----------------------------------------------------------- */

extern const kb_subsys_t kb_quota_subsys;

enum { KB_QUOTA_PRODUCE = 0, KB_QUOTA_FETCH = 1 };

/* The store (NULL before init); changes go through kb_quota_commit. */
kb_qstore_t *kb_quota_store(kb_broker_t *b);
/*
 * Makes the store's current content durable and then calls done(req, status) on the loop
 * (status 0, or K_ERR_IO after the store was reloaded from the file). Saves are serialized;
 * changes made while one is running are written by the next. Returns < 0 if it cannot start
 * (done is not called).
 */
int kb_quota_commit(kb_broker_t *b, kb_req_t *req, void (*done)(kb_req_t *req, int status));

/*
 * Records bytes for req's (principal, client-id) and returns the throttle time in ms (0 when
 * within quota or without one). O(1): a hash lookup and the rate's fixed sample array.
 */
int32_t kb_quota_record(kb_req_t *req, int type, int64_t bytes);
/* Takes back a record (a throttled Fetch answers empty, as Kafka does). */
void kb_quota_unrecord(kb_req_t *req, int type, int64_t bytes);
/* Most bytes one Fetch may return: one window of the fetch quota (Kafka's
 * getMaxValueInQuotaWindow); INT64_MAX without a quota. */
int64_t kb_quota_fetch_cap(kb_req_t *req);
/* Throttles req's connection for ms (and holds req's answer that long when delay). Counts it
 * for /metrics. */
void kb_quota_throttle(kb_req_t *req, int type, int32_t ms, bool delay);

#endif

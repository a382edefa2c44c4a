/*
 * Counters for a metrics page: per connection, per topic and per API. Cheap enough for the hot
 * path (a few adds per request, no locks, no allocation except the first time a topic is
 * counted) and readable without stopping the loop.
 *
 * What is counted
 *   connection  requests, bytes in (frames incl. their size prefix), bytes out (responses
 *               handed to the transport), requests that closed the connection (malformed,
 *               unsupported), and errors by Kafka code.
 *   API         the same requests/closed/errors per API key, plus a latency histogram from
 *               frame decoded to response handed to the transport (held requests included:
 *               a long-poll Fetch counts its wait), in fixed buckets (kb_ctr_latency_bounds_us).
 *   topic       bytes and messages in (appended by Produce) and out (returned by Fetch),
 *               Produce and Fetch requests that touched the topic, and partition errors.
 *               Only existing topics are counted, so random names cost nothing.
 * "Errors" are the codes handlers report with kb_req_error() (the first non-zero code of a
 * request counts once): Produce and Fetch partition errors and authorization denials today.
 *
 * Reading rule (single writer, the loop thread): every field is a uint64_t written only on the
 * loop with kb_ctr_add (a relaxed atomic load+store, a plain add on x86-64 and arm64).
 *   - Code on the loop thread reads fields directly.
 *   - Another thread reads a field with kb_ctr_read() (relaxed atomic load). Values are
 *     monotonic per field but fields are not a consistent snapshot of each other.
 *   - Walking the sets (kb_counters_foreach_topic, kb_counters_conns) and the pointers they
 *     hand out belong to the loop thread: a connection's counters die with it, a topic's when
 *     the topic is deleted (the counters subsystem's topic_deleted hook).
 * Lifetime: the per-broker state lives in the "counters" subsystem's slot (init..close).
 */
#ifndef KB_COUNTERS_H
#define KB_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/core/subsys.h"
#include "broker/kb.h"

#define KB_CTR_ERR_CODES 132                   /* Kafka codes 0..130 have their own slot */
#define KB_CTR_ERR_OTHER (KB_CTR_ERR_CODES - 1) /* negative or larger codes */
#define KB_CTR_MAX_API 96                      /* API keys 0..95 */
#define KB_CTR_LAT_BUCKETS 14                  /* the last one is +Inf */

/* Upper bounds (inclusive, microseconds) of the first KB_CTR_LAT_BUCKETS - 1 buckets. */
extern const uint64_t kb_ctr_latency_bounds_us[KB_CTR_LAT_BUCKETS - 1];

typedef struct {
    uint64_t requests;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t closed; /* requests after which the connection was closed */
    uint64_t errors[KB_CTR_ERR_CODES];
} kb_conn_counters_t;

typedef struct {
    uint64_t requests;
    uint64_t closed;
    uint64_t errors[KB_CTR_ERR_CODES];
    uint64_t latency[KB_CTR_LAT_BUCKETS]; /* per bucket, not cumulative */
    uint64_t latency_sum_us;
} kb_api_counters_t;

typedef struct {
    uint64_t bytes_in, messages_in;   /* appended by Produce */
    uint64_t bytes_out, messages_out; /* returned by Fetch (record batches) */
    uint64_t produce_requests, fetch_requests;
    uint64_t errors; /* partition errors of Produce/Fetch on this topic */
} kb_topic_counters_t;

static inline uint64_t kb_ctr_read(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Loop thread only (the single writer). */
static inline void kb_ctr_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* A handler reports a Kafka error code of its answer; the request's first non-zero code is
 * counted (per connection and per API) when the response leaves. */
static inline void kb_req_error(kb_req_t *req, int16_t code)
{
    if (req && code != 0 && req->error_code == 0)
        req->error_code = code;
}

extern const kb_subsys_t kb_counters_subsys;

/* ---- hooks (loop thread) ---- */

/* net/conn.c: a request's header was decoded (stamps its start time). */
void kb_counters_request_start(kb_req_t *req);
/* net/conn.c: its response was handed to the transport (or dropped: acks=0). */
void kb_counters_request_done(kb_req_t *req);
/* net/conn.c: the request made the connection close (nothing is sent). */
void kb_counters_request_closed(kb_req_t *req);
/* api/h_produce.c, h_fetch.c: one partition of an existing topic was produced to / fetched
 * from (bytes and messages of record batches; err its partition error, 0 = none). */
void kb_counters_topic_produce(kb_broker_t *b, kp_str_t topic, uint64_t bytes,
                               uint64_t messages, int16_t err);
void kb_counters_topic_fetch(kb_broker_t *b, kp_str_t topic, uint64_t bytes, uint64_t messages,
                             int16_t err);
/* A Produce/Fetch request touched the topic (counted once per request and topic). */
void kb_counters_topic_request(kb_broker_t *b, kp_str_t topic, bool fetch);

/* ---- reading (see the reading rule above) ---- */

/* The counters of API key, or NULL when key is outside 0..KB_CTR_MAX_API-1 or b has none. */
const kb_api_counters_t *kb_counters_api(kb_broker_t *b, int16_t key);
/* The counters of one topic, NULL if it was never counted. Loop thread. */
const kb_topic_counters_t *kb_counters_topic(kb_broker_t *b, const char *topic);
typedef void (*kb_topic_counters_cb)(void *ud, const char *topic, const kb_topic_counters_t *c);
/* Every counted topic, in no particular order. Loop thread; cb must not delete topics. */
void kb_counters_foreach_topic(kb_broker_t *b, kb_topic_counters_cb cb, void *ud);
typedef void (*kb_conn_counters_cb)(void *ud, const kb_conn_t *conn, const kb_conn_counters_t *c);
/* Every open connection (kb_conn_peer/kb_conn_principal name it). Loop thread. */
void kb_counters_conns(kb_broker_t *b, kb_conn_counters_cb cb, void *ud);
/* net/conn.c: the connection's counters (inside the connection). */
kb_conn_counters_t *kb_conn_counters(kb_conn_t *conn);
/* Bucket index of a latency (for tests and the metrics page's le labels). */
int kb_counters_latency_bucket(uint64_t us);

#endif

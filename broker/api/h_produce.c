/*
 * Produce (key 0), versions 0-11; v3+ are served, v0-2 are advertised only so that librdkafka
 * enables compression (KAFKA-18659) and are answered UNSUPPORTED_VERSION per partition.
 *
 * What a partition's records must be (Kafka's rules for v3+, ProduceRequest.validateRecords
 * and the log validator), checked before anything is written:
 *   null, empty, more than one batch, magic != 2,
 *   baseOffset != 0, a control batch                 -> INVALID_RECORD (87)
 *   framing or CRC-32C failure                      -> CORRUPT_MESSAGE (2)
 *   batch larger than the topic's max.message.bytes -> MESSAGE_TOO_LARGE (10)
 *   zstd before v7                                  -> UNSUPPORTED_COMPRESSION_TYPE (76)
 *   a record without a key, topic compacted         -> INVALID_RECORD (87), with one
 *                                                      record_errors entry (v8+, KIP-467) per
 *                                                      keyless record; nothing is written
 * and then the topic's own rules (min.insync.replicas, timestamp bounds, compression.type):
 * see h_produce_rules.c.
 * Transactions are not supported: Depot authorizes no transactional id, so a request carrying a
 * transactional batch gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) on every partition, as
 * Kafka answers when the id is not authorized (a fatal, non-retried error in every client).
 *
 * A missing topic is created (num.partitions, topic defaults) when auto.create.topics.enable
 * is set; otherwise, and for a partition out of range, UNKNOWN_TOPIC_OR_PARTITION (3).
 * Storage failures (disk full under the reject policy, I/O errors) are KAFKA_STORAGE_ERROR
 * (56), retriable in every client; v0-3 predate that code and get NOT_LEADER_OR_FOLLOWER (6)
 * instead, as Kafka does.
 *
 * acks: 0 -> no response, and the connection is closed if any partition failed (clients have
 * no other way to learn of it; Kafka does the same). 1 -> answered after the page-cache
 * write. -1 -> answered after every appended partition is fsynced (ks_part_sync). If that
 * fsync fails the partition answers KAFKA_STORAGE_ERROR although the batch was appended and
 * stays readable: the producer retries and, without idempotence, may write it twice. That is
 * the honest answer (durability was not reached) and matches Kafka's at-least-once contract.
 *
 * Memory: the decoded request and the response arrays live in req->arena; the batch bytes are
 * req->frame, which the request owns, so storage may rewrite baseOffset in place there.
 */
#include <assert.h>
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/audit.h"
#include "broker/auth/auth.h"
#include "broker/core/clock.h"
#include "broker/core/counters.h"
#include "broker/quota/quota.h"
#include "broker/core/util.h"
#include "broker/registry/reg_produce.h"
#include "protocol/kp_batch.h"

/* Decompressing to count a suspicious batch stops here (its records are refused). */
#define VERIFY_MAX_DECOMPRESSED ((size_t)64 << 20)

/* One appended partition waiting for its fsync (acks=-1). */
typedef struct produce_wait produce_wait_t;

typedef struct {
    produce_wait_t *pw;
    kp_produce_resp_partition_produce_response_t *out;
} produce_sync_t;

struct produce_wait {
    kb_req_t *req;
    kp_produce_resp_t resp;
    int pending;     /* sync callbacks outstanding, +1 while the handler itself runs */
    bool in_handler; /* callbacks that finish early leave the answer to the handler */
};

/* ------------------------------------------------------------------------------------------ */
/* Validation                                                                                   */

/*
 * The header rules Kafka's LogValidator.validateBatch applies to a client's batch, and the
 * timestamp fields Depot's time index trusts. The offset range must match the record count, or
 * one small batch claiming 2^31 records would advance the log end by two billion offsets. The
 * count is checked against the bytes: an uncompressed record takes at least 7; a compressed
 * batch claiming more records than it has bytes is decompressed and counted (the only produce
 * path that decompresses, and only for such batches).
 */
static int16_t check_header(const uint8_t *b, size_t blen, const kp_batch_hdr_t *h)
{
    if (h->records_count <= 0 || h->last_offset_delta != h->records_count - 1)
        return KP_ERR_INVALID_RECORD;
    if (h->producer_id < -1 || h->producer_epoch < -1 ||
        (h->producer_id >= 0 && h->base_sequence < 0))
        return KP_ERR_INVALID_RECORD;
    if (h->attributes & KP_BATCH_ATTR_LOG_APPEND_TIME) /* the broker's to set, not a producer's */
        return KP_ERR_INVALID_TIMESTAMP;
    if (h->base_timestamp < -1 || h->max_timestamp < -1 ||
        (h->base_timestamp >= 0 && h->max_timestamp < h->base_timestamp))
        return KP_ERR_INVALID_TIMESTAMP;
    size_t payload = blen - KP_BATCH_HEADER_SIZE;
    if ((h->attributes & KP_BATCH_ATTR_COMPRESSION_MASK) == KP_COMPRESSION_NONE)
        return (size_t)h->records_count > payload / KP_RECORD_MIN_SIZE ? KP_ERR_INVALID_RECORD
                                                                        : KP_ERR_NONE;
    if ((size_t)h->records_count <= payload)
        return KP_ERR_NONE;
    int rc = kp_batch_verify_count(b, blen, VERIFY_MAX_DECOMPRESSED);
    return rc == 0 ? KP_ERR_NONE : rc == K_ERR_NOMEM ? KP_ERR_UNKNOWN_SERVER_ERROR
                                                     : KP_ERR_INVALID_RECORD;
}

int16_t kb_produce_check_records(const uint8_t *p, int32_t len, int32_t max_message_bytes,
                                 int16_t version, kp_batch_hdr_t *h)
{
    if (!p || len <= 0)
        return KP_ERR_INVALID_RECORD;
    kp_batch_iter_t it;
    const uint8_t *b, *extra;
    size_t blen, extra_len;
    kp_batch_iter_init(&it, p, (size_t)len, true);
    int rc = kp_batch_iter_next(&it, &b, &blen);
    if (rc == 0)
        return KP_ERR_INVALID_RECORD;
    if (rc < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    rc = kp_batch_iter_next(&it, &extra, &extra_len);
    if (rc != 0) /* a second batch is Kafka's "exactly one batch" rule; a torn tail is damage */
        return rc > 0 ? KP_ERR_INVALID_RECORD : KP_ERR_CORRUPT_MESSAGE;
    if (blen > KP_BATCH_MAGIC_OFFSET && b[KP_BATCH_MAGIC_OFFSET] != 2)
        return b[KP_BATCH_MAGIC_OFFSET] < 2 ? KP_ERR_INVALID_RECORD : KP_ERR_CORRUPT_MESSAGE;
    if (max_message_bytes > 0 && blen > (size_t)max_message_bytes)
        return KP_ERR_MESSAGE_TOO_LARGE;
    rc = kp_batch_validate(b, blen, h);
    if (rc == K_ERR_UNSUPPORTED)
        return KP_ERR_INVALID_RECORD;
    if (rc < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    if (h->base_offset != 0 || (h->attributes & KP_BATCH_ATTR_CONTROL))
        return KP_ERR_INVALID_RECORD;
    int codec = h->attributes & KP_BATCH_ATTR_COMPRESSION_MASK;
    if (codec > KP_COMPRESSION_ZSTD)
        return KP_ERR_CORRUPT_MESSAGE;
    if (codec == KP_COMPRESSION_ZSTD && version < 7)
        return KP_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    return check_header(b, blen, h);
}

/* Compacted topics keep the latest record per key, so every record needs one (Kafka's
 * LogValidator). The batch is decompressed for this check only. */
#define MAX_RECORD_ERRORS 1000
static int16_t check_keys(const kb_produce_ctx_t *ctx, kp_str_t topic, int32_t partition,
                          const uint8_t *b, int32_t len,
                          kp_produce_resp_partition_produce_response_t *out)
{
    kp_records_t it;
    kp_record_t rec;
    size_t max = ctx->cfg && ctx->cfg->socket_request_max_bytes > 0
                     ? (size_t)ctx->cfg->socket_request_max_bytes
                     : 100u << 20;
    if (kp_records_init(&it, b, (size_t)len, max) != 0)
        return KP_ERR_CORRUPT_MESSAGE;
    int32_t n = it.hdr.records_count, bad = 0, i = 0, rc;
    kp_produce_resp_batch_index_and_error_message_t *errs = NULL;
    if (ctx->arena && n > 0)
        errs = kp_arena_alloc(ctx->arena, sizeof *errs *
                                              (size_t)(n < MAX_RECORD_ERRORS ? n : MAX_RECORD_ERRORS));
    char msg[400];
    snprintf(msg, sizeof msg, "Compacted topic cannot accept message without key in topic "
             "partition %.*s-%d.", topic.len, topic.ptr, partition);
    kp_str_t m = {NULL, -1};
    char *copy = ctx->arena ? kp_arena_alloc(ctx->arena, strlen(msg) + 1) : NULL;
    if (copy) {
        memcpy(copy, msg, strlen(msg) + 1);
        m = kp_str(copy);
    }
    while ((rc = kp_records_next(&it, &rec)) == 1) {
        if (rec.key.len < 0) {
            if (errs && bad < MAX_RECORD_ERRORS) {
                kp_produce_resp_batch_index_and_error_message_init(&errs[bad]);
                errs[bad].batch_index = i;
                errs[bad].batch_index_error_message = m;
            }
            bad++;
        }
        i++;
    }
    kp_records_deinit(&it);
    if (rc < 0)
        return KP_ERR_CORRUPT_MESSAGE;
    if (!bad)
        return KP_ERR_NONE;
    if (errs) {
        out->record_errors = errs;
        out->record_errors_count = bad < MAX_RECORD_ERRORS ? bad : MAX_RECORD_ERRORS;
    }
    out->error_message = m;
    kb_log(KB_LOG_INFO, "produce: %.*s-%d: %d of %d records without a key refused (compacted "
           "topic)", topic.len, topic.ptr, partition, bad, n);
    return KP_ERR_INVALID_RECORD;
}

/* Whether a partition's records start with a transactional batch (Kafka looks at the first). */
static bool records_transactional(kp_bytes_t records)
{
    kp_batch_hdr_t h;
    if (records.len < KP_BATCH_HEADER_SIZE)
        return false;
    if (kp_batch_hdr_parse(records.ptr, (size_t)records.len, &h) < 0)
        return false;
    return (h.attributes & KP_BATCH_ATTR_TRANSACTIONAL) != 0;
}

/*
 * Idempotent producers: storage checks the batch's producer id, epoch and sequence against the
 * partition's producer state atomically with the append (storage/producer_state.c). Kafka's
 * answers: a retry of one of the producer's last 5 batches gets NONE with the ORIGINAL base
 * offset (current brokers no longer send DUPLICATE_SEQUENCE_NUMBER; clients treat both as
 * success), a gap or a new epoch not starting at 0 OUT_OF_ORDER_SEQUENCE_NUMBER (45), an older
 * epoch INVALID_PRODUCER_EPOCH (47), a producer id without a sequence INVALID_RECORD (87).
 * An unknown producer id is accepted at any sequence (Kafka >= 2.5; no UNKNOWN_PRODUCER_ID).
 */
static const char *outcome_name(ks_produce_outcome_t o)
{
    switch (o) {
    case KS_PRODUCE_APPENDED: return "appended";
    case KS_PRODUCE_DUPLICATE: return "duplicate (answered with the original offsets)";
    case KS_PRODUCE_OUT_OF_ORDER: return "out of order";
    case KS_PRODUCE_STALE_EPOCH: return "stale epoch";
    case KS_PRODUCE_BAD_SEQUENCE: return "no sequence";
    }
    return "?";
}

static int16_t producer_error(ks_produce_outcome_t o)
{
    switch (o) {
    case KS_PRODUCE_APPENDED:
    case KS_PRODUCE_DUPLICATE: return KP_ERR_NONE;
    case KS_PRODUCE_OUT_OF_ORDER: return KP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case KS_PRODUCE_STALE_EPOCH: return KP_ERR_INVALID_PRODUCER_EPOCH;
    case KS_PRODUCE_BAD_SEQUENCE: return KP_ERR_INVALID_RECORD;
    }
    return KP_ERR_UNKNOWN_SERVER_ERROR;
}

/* ------------------------------------------------------------------------------------------ */
/* One partition                                                                                */

/* The topic, or NULL with *err. A missing topic is auto-created when allowed: at once, or off
 * the loop (h_autocreate.c), then *job is set (if job is not NULL) and NULL returned. */
static ks_topic_t *topic_get_or_create(const kb_produce_ctx_t *ctx, kp_str_t name,
                                       int16_t *err, kb_autocreate_t **job)
{
    ks_topic_t *t = kb_topic_find(ctx->store, name);
    *err = KP_ERR_NONE;
    if (t)
        return t;
    *err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (!ctx->cfg || !ctx->cfg->auto_create_topics_enable || name.len <= 0)
        return NULL;
    if (!ks_topic_name_valid(name.ptr, (size_t)name.len)) {
        *err = KP_ERR_INVALID_TOPIC_EXCEPTION;
        return NULL;
    }
    /* Creating is CREATE on the cluster or the topic, as for Metadata's auto-creation; a
     * writer without it sees the topic as absent. */
    if (ctx->req && !kb_authorize_cluster(ctx->req, KB_OP_CREATE) &&
        !kb_authorize_str(ctx->req, KB_OP_CREATE, KB_RES_TOPIC, name))
        return NULL;
    char buf[256]; /* valid names are at most 249 bytes */
    memcpy(buf, name.ptr, (size_t)name.len);
    buf[name.len] = '\0';
    int32_t n = ctx->cfg->num_partitions > 0 ? ctx->cfg->num_partitions : 1;
    kb_autocreate_t *j = NULL;
    int rc = ctx->req ? kb_autocreate_start(ctx->req, buf, n, &t, &j)
                      : ks_topic_create(ctx->store, buf, n, NULL, &t);
    if (rc == 1) {
        if (job && !*job) *job = j;
        return NULL;
    }
    if (rc < 0) {
        if (rc != K_ERR_EXISTS)
            kb_log(KB_LOG_WARN, "produce: auto-creating topic %s failed: %s", buf,
                   k_strerror(rc));
        return NULL;
    }
    *err = KP_ERR_NONE;
    return t;
}

/*
 * Auto-creation comes before any append: creating a topic may need its audit intent made
 * durable first, and then this handler runs again from the start (broker/auth/audit.h), so
 * nothing may have been appended by then; and its files are written off the loop, the request
 * waiting for them (kb_autocreate_wait) and running again once they exist. Only topics the
 * writer may WRITE (asked silently: the partitions' own checks below are the ones recorded).
 * CM_REPLAY: the audit trail runs it again (this answer is dropped); KB_PENDING: it waits for
 * a creation; 0: go on; < 0: out of memory.
 */
enum { CM_REPLAY = 100 };
static int create_missing(const kb_produce_ctx_t *ctx, const kp_produce_req_t *m)
{
    if (!ctx->cfg || !ctx->cfg->auto_create_topics_enable) return 0;
    kb_autocreate_t *job = NULL;
    for (int32_t i = 0; i < m->topic_data_count; i++) {
        kp_str_t name = m->topic_data[i].name;
        if (m->topic_data[i].partition_data_count <= 0 || name.len <= 0 ||
            kb_topic_internal(name.ptr, (size_t)name.len) || kb_topic_find(ctx->store, name) ||
            !(kb_authorized_operations(ctx->req, KB_RES_TOPIC, name.ptr, (size_t)name.len) &
              ((int32_t)1 << KB_OP_WRITE)))
            continue;
        int16_t err;
        topic_get_or_create(ctx, name, &err, &job);
    }
    if (kb_audit_replay_due(ctx->req)) return CM_REPLAY;
    return job ? kb_autocreate_wait(ctx->req, job) : 0;
}

static int16_t append_error(int rc)
{
    switch (rc) {
    case K_ERR_TOOLARGE: return KP_ERR_MESSAGE_TOO_LARGE;
    case K_ERR_CORRUPT: return KP_ERR_CORRUPT_MESSAGE;
    case K_ERR_INVAL: return KP_ERR_INVALID_RECORD;
    default: return kb_storage_error(rc);
    }
}

/* Appends to a partition of an existing topic; *records gets the batch's record count. */
static int16_t produce_to(const kb_produce_ctx_t *ctx, ks_topic_t *t, kp_str_t topic,
                          int32_t partition, uint8_t *records, int32_t len,
                          kp_produce_resp_partition_produce_response_t *out,
                          ks_part_t **part_out, int64_t *next_offset, uint64_t *nrecords)
{
    int16_t err;
    ks_part_t *part = ks_topic_part(t, partition);
    if (!part)
        return KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int32_t max_bytes = ks_topic_config(t)->max_message_bytes;
    if (max_bytes <= 0 && ctx->cfg)
        max_bytes = ctx->cfg->message_max_bytes;
    const ks_topic_config_t *c = ks_topic_config(t);
    kp_batch_hdr_t h;
    err = kb_produce_check_isr(ctx, c, topic, partition, out);
    if (err == KP_ERR_NONE)
        err = kb_produce_check_records(records, len, max_bytes, ctx->version, &h);
    if (err == KP_ERR_NONE && ks_cleanup_compacts(c->cleanup_policy))
        err = check_keys(ctx, topic, partition, records, len, out);
    if (err == KP_ERR_NONE)
        err = kb_produce_check_timestamps(ctx, c, topic, partition, records, len, &h, out);
    if (err == KP_ERR_NONE && ctx->broker && ctx->arena) /* schema validation at the door */
        err = kb_registry_produce_check(ctx->broker, t, records, (size_t)len, ctx->arena, out);
    if (err == KP_ERR_NONE)
        err = kb_produce_recompress(ctx, c, &h, max_bytes, &records, &len);
    if (err != KP_ERR_NONE)
        return err;
    *nrecords = h.records_count > 0 ? (uint64_t)h.records_count : 0;
    ks_append_result_t res;
    ks_produce_outcome_t outcome = KS_PRODUCE_APPENDED;
    int rc = ks_part_append_idempotent(part, records, (size_t)len, ctx->now_ms, &res, &outcome);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "produce: append to %.*s-%d failed: %s", topic.len, topic.ptr,
               partition, k_strerror(rc));
        return append_error(rc);
    }
    if (outcome != KS_PRODUCE_APPENDED) {
        kb_log(KB_LOG_INFO, "produce: %.*s-%d producer %lld epoch %d seq %d: %s", topic.len,
               topic.ptr, partition, (long long)h.producer_id, h.producer_epoch,
               h.base_sequence, outcome_name(outcome));
        err = producer_error(outcome);
        if (err != KP_ERR_NONE)
            return err;
    }
    out->base_offset = res.base_offset;
    out->log_append_time_ms = res.log_append_time;
    out->log_start_offset = res.log_start;
    *part_out = part;
    /* A duplicate too waits for its original's fsync under acks=all: the first answer may
     * have been lost before the data was durable. */
    *next_offset = res.last_offset + 1;
    if (ctx->broker && outcome == KS_PRODUCE_APPENDED)
        kb_fetch_notify(ctx->broker, part);
    return KP_ERR_NONE;
}

int16_t kb_produce_partition(const kb_produce_ctx_t *ctx, kp_str_t topic, int32_t partition,
                             uint8_t *records, int32_t len,
                             kp_produce_resp_partition_produce_response_t *out,
                             ks_part_t **part_out, int64_t *next_offset)
{
    int16_t err;
    *part_out = NULL;
    /* Kafka checks WRITE before existence, so a denied client learns nothing about it. */
    if (ctx->req && !kb_authorize_str(ctx->req, KB_OP_WRITE, KB_RES_TOPIC, topic))
        return KP_ERR_TOPIC_AUTHORIZATION_FAILED;
    if (topic.len > 0 && kb_topic_internal(topic.ptr, (size_t)topic.len))
        return KP_ERR_INVALID_TOPIC_EXCEPTION; /* only the broker writes its own topics */
    ks_topic_t *t = topic_get_or_create(ctx, topic, &err, NULL);
    if (!t)
        return err;
    uint64_t n = 0;
    err = produce_to(ctx, t, topic, partition, records, len, out, part_out, next_offset, &n);
    kb_counters_topic_produce(ctx->broker, topic, err ? 0 : (uint64_t)len, err ? 0 : n, err);
    return err;
}

/* ------------------------------------------------------------------------------------------ */
/* Whole request                                                                                */

static void set_error(const kb_produce_ctx_t *ctx,
                      kp_produce_resp_partition_produce_response_t *out, int16_t err)
{
    if (err == KP_ERR_KAFKA_STORAGE_ERROR && ctx->version < 4)
        err = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    out->error_code = err;
    out->base_offset = -1;
    out->log_append_time_ms = -1;
    out->log_start_offset = -1;
    if (err != KP_ERR_NONE && out->error_message.len <= 0) /* keep a specific message */
        out->error_message = kp_str(kp_error_message(err));
}

/* Response skeleton mirroring the request: same topics and partitions, in order. */
static int resp_build(kp_arena_t *a, const kp_produce_req_t *m, kp_produce_resp_t *resp)
{
    kp_produce_resp_init(resp);
    resp->responses_count = m->topic_data_count > 0 ? m->topic_data_count : 0;
    if (resp->responses_count == 0)
        return 0;
    resp->responses = kp_arena_alloc(a, sizeof *resp->responses * (size_t)resp->responses_count);
    if (!resp->responses)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < resp->responses_count; i++) {
        const kp_produce_req_topic_produce_data_t *td = &m->topic_data[i];
        kp_produce_resp_topic_produce_response_t *tr = &resp->responses[i];
        kp_produce_resp_topic_produce_response_init(tr);
        tr->name = td->name;
        int32_t n = td->partition_data_count > 0 ? td->partition_data_count : 0;
        tr->partition_responses_count = n;
        if (n == 0)
            continue;
        tr->partition_responses = kp_arena_alloc(a, sizeof *tr->partition_responses * (size_t)n);
        if (!tr->partition_responses)
            return K_ERR_NOMEM;
        for (int32_t j = 0; j < n; j++) {
            kp_produce_resp_partition_produce_response_init(&tr->partition_responses[j]);
            tr->partition_responses[j].index = td->partition_data[j].index;
        }
    }
    return 0;
}

/* A request-wide refusal (version, acks, transactions) applied to every partition. */
static int16_t request_error(const kp_produce_req_t *m, int16_t version)
{
    if (version < 3)
        return KP_ERR_UNSUPPORTED_VERSION;
    if (m->acks != 0 && m->acks != 1 && m->acks != -1)
        return KP_ERR_INVALID_REQUIRED_ACKS;
    for (int32_t i = 0; i < m->topic_data_count; i++)
        for (int32_t j = 0; j < m->topic_data[i].partition_data_count; j++)
            if (records_transactional(m->topic_data[i].partition_data[j].records))
                return KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    return KP_ERR_NONE;
}

/* Mutable view of bytes inside the request frame (owned by the request). */
static uint8_t *frame_bytes(kb_req_t *req, kp_bytes_t v)
{
    if (!v.ptr || v.len <= 0)
        return NULL;
    size_t off = (size_t)(v.ptr - req->frame);
    assert(v.ptr >= req->frame && off + (size_t)v.len <= req->frame_len);
    return req->frame + off;
}

static int encode(kb_req_t *req, const kp_produce_resp_t *resp)
{
    int rc = kp_produce_resp_encode(&req->resp, req->hdr.api_version, resp);
    if (rc < 0)
        kb_log(KB_LOG_ERROR, "produce: encoding the response failed: %s", k_strerror(rc));
    return rc;
}

static void on_synced(void *arg, int status)
{
    produce_sync_t *s = arg;
    produce_wait_t *pw = s->pw;
    if (status < 0) {
        kb_log(KB_LOG_ERROR, "produce: fsync failed: %s", k_strerror(status));
        kb_produce_ctx_t ctx = {.version = pw->req->hdr.api_version};
        set_error(&ctx, s->out, KP_ERR_KAFKA_STORAGE_ERROR);
    }
    if (--pw->pending > 0 || pw->in_handler)
        return;
    if (!pw->req->closed)
        (void)encode(pw->req, &pw->resp);
    kb_req_complete(pw->req);
}

/*
 * While the fsync runs, the answer needs nothing from the frame but the topic names: copy
 * those into the arena and let the frame go (kb_req_drop_frame). librdkafka pipelines ~1 MiB
 * requests, and one fsync pass covers dozens of them: held until their answers, their frames
 * were the broker's peak memory (docs/benchmarks.md, peak RSS). If a copy fails the frame
 * stays, which is only the old cost.
 */
static void release_frame(kb_req_t *req, kp_produce_resp_t *resp)
{
    for (int32_t i = 0; i < resp->responses_count; i++) {
        kp_str_t *name = &resp->responses[i].name;
        if (!name->ptr || name->len <= 0)
            continue;
        char *copy = kp_arena_alloc(&req->arena, (size_t)name->len);
        if (!copy)
            return;
        memcpy(copy, name->ptr, (size_t)name->len);
        name->ptr = copy;
    }
    (void)kb_req_drop_frame(req);
}

/* acks=-1: one ks_part_sync per appended partition; KB_DONE if all were already durable. */
static int wait_for_sync(kb_req_t *req, produce_wait_t *pw, ks_part_t **parts, int64_t *ends,
                         kp_produce_resp_partition_produce_response_t **outs, int n)
{
    produce_sync_t *syncs = n ? kp_arena_alloc(&req->arena, sizeof *syncs * (size_t)n) : NULL;
    if (n && !syncs)
        return K_ERR_NOMEM;
    pw->req = req;
    pw->pending = 1;
    pw->in_handler = true;
    for (int i = 0; i < n; i++) {
        syncs[i] = (produce_sync_t){pw, outs[i]};
        pw->pending++;
        int rc = ks_part_sync(parts[i], ends[i], on_synced, &syncs[i]);
        if (rc < 0) {
            pw->pending--;
            kb_produce_ctx_t ctx = {.version = req->hdr.api_version};
            set_error(&ctx, outs[i], KP_ERR_KAFKA_STORAGE_ERROR);
        }
    }
    pw->in_handler = false;
    if (--pw->pending > 0) {
        release_frame(req, &pw->resp);
        return KB_PENDING;
    }
    int rc = encode(req, &pw->resp);
    return rc < 0 ? rc : KB_DONE;
}

int kb_handle_produce(kb_req_t *req)
{
    kp_produce_req_t m;
    int rc = kp_produce_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    produce_wait_t *pw = kp_arena_alloc(&req->arena, sizeof *pw);
    if (!pw || resp_build(&req->arena, &m, &pw->resp) < 0)
        return K_ERR_NOMEM;

    kb_produce_ctx_t ctx = {
        .req = req,
        .broker = req->broker,
        .store = kb_broker_store(req->broker),
        .cfg = kb_broker_config(req->broker),
        .version = req->hdr.api_version,
        .now_ms = kb_wall_ms(), /* data time: LogAppendTime, segment.ms, producer state */
        .arena = &req->arena,
        .acks = m.acks,
    };
    int total = 0;
    for (int32_t i = 0; i < m.topic_data_count; i++)
        total += m.topic_data[i].partition_data_count;
    ks_part_t **parts = kp_arena_alloc(&req->arena, sizeof *parts * (size_t)(total + 1));
    int64_t *ends = kp_arena_alloc(&req->arena, sizeof *ends * (size_t)(total + 1));
    kp_produce_resp_partition_produce_response_t **outs =
        kp_arena_alloc(&req->arena, sizeof *outs * (size_t)(total + 1));
    if (!parts || !ends || !outs)
        return K_ERR_NOMEM;

    int16_t req_err = request_error(&m, ctx.version);
    if (req_err == KP_ERR_NONE && (rc = create_missing(&ctx, &m)) != 0)
        return rc == CM_REPLAY ? KB_DONE /* this answer is dropped */ : rc;
    int appended = 0;
    bool failed = false;
    for (int32_t i = 0; i < m.topic_data_count; i++) {
        const kp_produce_req_topic_produce_data_t *td = &m.topic_data[i];
        kb_counters_topic_request(req->broker, td->name, false);
        for (int32_t j = 0; j < td->partition_data_count; j++) {
            const kp_produce_req_partition_produce_data_t *pd = &td->partition_data[j];
            kp_produce_resp_partition_produce_response_t *out =
                &pw->resp.responses[i].partition_responses[j];
            int16_t err = req_err;
            if (err == KP_ERR_NONE)
                err = kb_produce_partition(&ctx, td->name, pd->index,
                                           frame_bytes(req, pd->records), pd->records.len, out,
                                           &parts[appended], &ends[appended]);
            if (err != KP_ERR_NONE) {
                kb_req_error(req, err);
                set_error(&ctx, out, err);
                failed = true;
                continue;
            }
            outs[appended++] = out;
        }
    }

    /* Client quota (Kafka: the whole request's size counts): throttle_time_ms in the answer
     * and the connection muted; before v6 the answer itself waits out the throttle. */
    int32_t thr = kb_quota_record(req, KB_QUOTA_PRODUCE, (int64_t)req->frame_len);
    if (thr > 0) {
        pw->resp.throttle_time_ms = thr;
        kb_quota_throttle(req, KB_QUOTA_PRODUCE, thr, ctx.version < 6 && m.acks != 0);
    }
    if (m.acks == 0) {
        if (failed) {
            kb_log(KB_LOG_INFO, "produce: acks=0 request failed; closing %s",
                   kb_conn_peer(req->conn));
            return K_ERR_INVAL;
        }
        return KB_NO_RESPONSE;
    }
    if (m.acks == -1 && req_err == KP_ERR_NONE)
        return wait_for_sync(req, pw, parts, ends, outs, appended);
    rc = encode(req, &pw->resp);
    return rc < 0 ? rc : KB_DONE;
}

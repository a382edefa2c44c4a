/*
 * The producer's record accumulator: one open kp_batch_builder per partition; a batch is cut
 * when it reaches batch_bytes or on flush. Also the Java-compatible key partitioner and the
 * retry policy, all pure (tests/client/test_kc_produce.c).
 */
#include "client/kc_int.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/kp_errors.h"

int32_t kc_partition_for_key(const uint8_t *key, size_t len, int32_t npartitions)
{
    /* murmur2 with Kafka's seed, so keyed records land where the Java client puts them. */
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)key[i] | (uint32_t)key[i + 1] << 8 | (uint32_t)key[i + 2] << 16 |
                     (uint32_t)key[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)key[i + 2] << 16; /* fall through */
    case 2:
        h ^= (uint32_t)key[i + 1] << 8; /* fall through */
    case 1:
        h ^= key[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return npartitions > 0 ? (int32_t)((h & 0x7fffffffu) % (uint32_t)npartitions) : 0;
}

kc_action_t kc_retry_action(int16_t code)
{
    switch (code) {
    case KP_ERR_NONE:
        return KC_ACT_DONE;
    case KP_ERR_NOT_LEADER_OR_FOLLOWER:
    case KP_ERR_LEADER_NOT_AVAILABLE:
    case KP_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KP_ERR_FENCED_LEADER_EPOCH:
    case KP_ERR_UNKNOWN_LEADER_EPOCH:
    case KP_ERR_NOT_CONTROLLER:
        return KC_ACT_RETRY_REFRESH;
    default:
        return kp_error_retriable(code) ? KC_ACT_RETRY : KC_ACT_FAIL;
    }
}

void kc_accum_init(kc_accum_t *acc, int codec, size_t batch_bytes)
{
    memset(acc, 0, sizeof *acc);
    acc->codec = codec;
    acc->batch_bytes = batch_bytes ? batch_bytes : 64 * 1024;
}

void kc_accum_deinit(kc_accum_t *acc)
{
    for (int i = 0; i < acc->nopen; i++) {
        free(acc->open[i].topic);
        kp_batch_builder_deinit(&acc->open[i].bb);
    }
    free(acc->open);
    memset(acc, 0, sizeof *acc);
}

static int find_open(kc_accum_t *acc, const char *topic, int32_t partition)
{
    for (int i = 0; i < acc->nopen; i++)
        if (acc->open[i].partition == partition && strcmp(acc->open[i].topic, topic) == 0) return i;
    kc_open_batch_t *v = realloc(acc->open, sizeof *v * (size_t)(acc->nopen + 1));
    if (!v) return K_ERR_NOMEM;
    acc->open = v;
    kc_open_batch_t *ob = &acc->open[acc->nopen];
    if (!(ob->topic = strdup(topic))) return K_ERR_NOMEM;
    ob->partition = partition;
    kp_batch_builder_init(&ob->bb, acc->codec);
    return acc->nopen++;
}

int kc_accum_add(kc_accum_t *acc, const char *topic, int32_t partition, int64_t ts, kp_bytes_t key,
                 kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders, bool *full,
                 int *idx)
{
    int i = find_open(acc, topic, partition);
    if (i < 0) return i;
    kp_batch_builder_t *bb = &acc->open[i].bb;
    int rc = kp_batch_builder_add(bb, ts, key, value, headers, nheaders);
    if (rc) return rc;
    *idx = i;
    *full = bb->records.len >= acc->batch_bytes;
    return 0;
}

static int drain_one(kc_accum_t *acc, int i, kc_ready_batch_t **ready, int *nready)
{
    kc_open_batch_t *ob = &acc->open[i];
    if (ob->bb.count == 0) return 0;
    kc_ready_batch_t *v = realloc(*ready, sizeof *v * (size_t)(*nready + 1));
    if (!v) return K_ERR_NOMEM;
    *ready = v;
    kc_ready_batch_t *rb = &v[*nready];
    memset(rb, 0, sizeof *rb);
    rb->partition = ob->partition;
    rb->nrecords = ob->bb.count;
    rb->base_offset = -1;
    kp_buf_t out;
    kp_buf_init(&out);
    int rc = kp_batch_builder_finish(&ob->bb, &out);
    if (rc || !(rb->topic = strdup(ob->topic))) {
        kp_buf_deinit(&out);
        return rc ? rc : K_ERR_NOMEM;
    }
    rb->bytes = kp_buf_detach(&out, &rb->len);
    (*nready)++;
    return 0;
}

int kc_accum_drain(kc_accum_t *acc, int idx, kc_ready_batch_t **ready, int *nready)
{
    if (idx >= 0) return drain_one(acc, idx, ready, nready);
    for (int i = 0; i < acc->nopen; i++) {
        int rc = drain_one(acc, i, ready, nready);
        if (rc) return rc;
    }
    return 0;
}

void kc_ready_free(kc_ready_batch_t *ready, int nready)
{
    for (int i = 0; i < nready; i++) {
        free(ready[i].topic);
        free(ready[i].bytes);
    }
    free(ready);
}

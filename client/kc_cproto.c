/*
 * Kafka's ConsumerProtocol, hand-written (it is not a request, so the generator does not know
 * it), and the range assignor a leader runs over it. Big-endian, classic (non-compact)
 * encodings; "str" = int16 length + bytes, "bytes" = int32 length + bytes (-1 = null):
 *
 *   Subscription: int16 version, [str topic], bytes user_data,
 *                 v1+: [str topic, [int32 partition]] owned_partitions,
 *                 v2+: int32 generation_id, v3+: nullable str rack_id
 *   Assignment:   int16 version, [str topic, [int32 partition]], bytes user_data
 *
 * A reader of a newer version than it knows reads the fields it knows and ignores the rest,
 * as Kafka's clients do, so any version decodes.
 */
#include <stdlib.h>
#include <string.h>

#include "client/kc_group.h"

static void put_parts(kp_buf_t *b, const kc_topic_parts_t *tp, int32_t n)
{
    kp_put_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        kp_put_string(b, tp[i].topic, false);
        kp_put_i32(b, tp[i].npartitions);
        for (int32_t k = 0; k < tp[i].npartitions; k++)
            kp_put_i32(b, tp[i].partitions[k]);
    }
}

int kc_subscription_encode(kp_buf_t *b, const kc_subscription_t *s)
{
    if (s->version < 0 || s->version > 3) return K_ERR_INVAL;
    kp_put_i16(b, s->version);
    kp_put_i32(b, s->ntopics);
    for (int32_t i = 0; i < s->ntopics; i++)
        kp_put_string(b, s->topics[i], false);
    kp_put_bytes(b, s->user_data, false);
    if (s->version >= 1) put_parts(b, s->owned, s->nowned);
    if (s->version >= 2) kp_put_i32(b, s->generation_id);
    if (s->version >= 3) kp_put_string(b, s->rack_id, false);
    return b->err;
}

int kc_assignment_encode(kp_buf_t *b, const kc_assignment_t *as)
{
    if (as->version < 0 || as->version > 3) return K_ERR_INVAL;
    kp_put_i16(b, as->version);
    put_parts(b, as->parts, as->nparts);
    kp_put_bytes(b, as->user_data, false);
    return b->err;
}

static kc_topic_parts_t *read_parts(kp_reader_t *r, kp_arena_t *a, int32_t *n)
{
    *n = 0;
    int32_t cnt = kp_read_array_len(r, false, 6);
    if (cnt <= 0) return NULL;
    kc_topic_parts_t *tp = kp_arena_array(a, r, cnt, sizeof *tp);
    for (int32_t i = 0; tp && i < cnt && !r->err; i++) {
        tp[i].topic = kp_read_string(r, false);
        int32_t np = kp_read_array_len(r, false, 4);
        tp[i].npartitions = np > 0 ? np : 0;
        tp[i].partitions = np > 0 ? kp_arena_array(a, r, np, sizeof(int32_t)) : NULL;
        for (int32_t k = 0; tp[i].partitions && k < np; k++)
            tp[i].partitions[k] = kp_read_i32(r);
    }
    if (!tp && !r->err) kp_reader_fail(r, K_ERR_NOMEM);
    if (!r->err) *n = cnt;
    return tp;
}

int kc_subscription_decode(const uint8_t *p, size_t n, kp_arena_t *a, kc_subscription_t *s)
{
    memset(s, 0, sizeof *s);
    s->generation_id = -1;
    s->user_data.len = -1;
    s->rack_id.len = -1;
    kp_reader_t r;
    kp_reader_init(&r, p, n);
    s->version = kp_read_i16(&r);
    int32_t nt = kp_read_array_len(&r, false, 2);
    if (nt > 0) {
        s->topics = kp_arena_array(a, &r, nt, sizeof *s->topics);
        for (int32_t i = 0; s->topics && i < nt; i++)
            s->topics[i] = kp_read_string(&r, false);
        s->ntopics = s->topics ? nt : 0;
    }
    s->user_data = kp_read_bytes(&r, false);
    if (s->version >= 1) s->owned = read_parts(&r, a, &s->nowned);
    if (s->version >= 2) s->generation_id = kp_read_i32(&r);
    if (s->version >= 3) s->rack_id = kp_read_string(&r, false);
    return r.err || s->version < 0 ? K_ERR_MALFORMED : 0;
}

int kc_assignment_decode(const uint8_t *p, size_t n, kp_arena_t *a, kc_assignment_t *as)
{
    memset(as, 0, sizeof *as);
    as->user_data.len = -1;
    if (n == 0) return 0;
    kp_reader_t r;
    kp_reader_init(&r, p, n);
    as->version = kp_read_i16(&r);
    as->parts = read_parts(&r, a, &as->nparts);
    as->user_data = kp_read_bytes(&r, false);
    return r.err || as->version < 0 ? K_ERR_MALFORMED : 0;
}

static int cmp_member(const void *x, const void *y)
{
    const kc_member_sub_t *a = *(const kc_member_sub_t *const *)x;
    const kc_member_sub_t *b = *(const kc_member_sub_t *const *)y;
    int32_t n = a->member_id.len < b->member_id.len ? a->member_id.len : b->member_id.len;
    int c = n > 0 ? memcmp(a->member_id.ptr, b->member_id.ptr, (size_t)n) : 0;
    return c ? c : (a->member_id.len > b->member_id.len) - (a->member_id.len < b->member_id.len);
}

static bool subscribes(const kc_subscription_t *s, const char *topic)
{
    for (int32_t i = 0; i < s->ntopics; i++)
        if (kp_str_eq(s->topics[i], topic)) return true;
    return false;
}

int kc_range_assign(kp_arena_t *a, const kc_member_sub_t *members, int nmembers,
                    const char *const *topics, const int32_t *topic_partitions, int ntopics,
                    kc_assignment_t *out)
{
    const kc_member_sub_t **sorted = calloc((size_t)nmembers + 1, sizeof *sorted);
    if (!sorted) return K_ERR_NOMEM;
    for (int i = 0; i < nmembers; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].user_data.len = -1;
        /* At most one entry per topic: room for ntopics. */
        out[i].parts = kp_arena_alloc(a, sizeof *out[i].parts * (size_t)(ntopics + 1));
        if (!out[i].parts) {
            free(sorted);
            return K_ERR_NOMEM;
        }
    }
    for (int k = 0; k < ntopics; k++) {
        int m = 0;
        for (int i = 0; i < nmembers; i++)
            if (subscribes(&members[i].sub, topics[k])) sorted[m++] = &members[i];
        if (m == 0 || topic_partitions[k] <= 0) continue;
        qsort(sorted, (size_t)m, sizeof *sorted, cmp_member);
        int32_t per = topic_partitions[k] / m, extra = topic_partitions[k] % m;
        for (int j = 0; j < m; j++) {
            int32_t start = per * j + (j < extra ? j : extra);
            int32_t len = per + (j < extra ? 1 : 0);
            if (len == 0) continue;
            kc_assignment_t *as = &out[sorted[j] - members];
            kc_topic_parts_t *tp = &as->parts[as->nparts++];
            tp->topic = kp_str(topics[k]);
            tp->npartitions = len;
            tp->partitions = kp_arena_alloc(a, sizeof(int32_t) * (size_t)len);
            if (!tp->partitions) {
                free(sorted);
                return K_ERR_NOMEM;
            }
            for (int32_t q = 0; q < len; q++)
                tp->partitions[q] = start + q;
        }
    }
    free(sorted);
    return 0;
}

/*
 * Where a partition resumes after a read-back of the central side.
 *
 * The read-back lists every source offset of the partition it found on the central side past
 * scan_from. Normally they continue the checkpoint's `acked` without a hole (one idempotent
 * producer session appends a prefix of what it sent), and the partition resumes after the
 * last one. If a failed batch left a hole (librdkafka reports a batch failed, e.g. timed out,
 * while later ones of the same session were appended), the partition resumes at the first
 * missing offset and skips the ones the central side already holds: every record arrives
 * exactly once; the resent ones arrive after their successors, and the log says so.
 *
 * On a hashed topic (fewer central partitions than local ones) one local partition spreads over
 * several central partitions, each of which holds a prefix of what the session sent it, so a
 * hole is the normal case after a crash: the same rule applies, and per key the order holds
 * (a key always goes to one central partition, and what is resent there comes after a prefix).
 *
 * scan_from: a central partition's records of ours below it are all covered by their local
 * partitions' acked. With one local partition per central partition, a delivery report moves
 * it past the acknowledged record. When several local partitions share a central partition and
 * one local partition spreads over several (hashed), an acknowledged record may lie beyond
 * its local partition's acked (an earlier record of that partition is still in flight to
 * another central partition); it keeps scan_from back until acked covers it, so a read-back
 * after a crash still sees it. The same holds for records a read-back found beyond the
 * resumed acked (the skip list).
 */
#include <inttypes.h>
#include <stdlib.h>

#include "broker/uplink/up_int.h"

int up_offsets_add(up_offsets_t *o, int64_t off)
{
    if (o->n == o->cap) {
        uint32_t cap = o->cap ? o->cap * 2 : 64;
        int64_t *v = realloc(o->v, cap * sizeof *v);
        if (!v) return K_ERR_NOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = off;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void up_resume(up_topic_t *t, up_part_t *p, up_offsets_t *found)
{
    int64_t acked = p->acked;
    free(p->skip.v);
    p->skip = (up_offsets_t){0};
    p->skip_i = 0;
    /* ascending, unique, at or above acked */
    if (found->n) qsort(found->v, found->n, sizeof *found->v, cmp64);
    uint32_t n = 0;
    for (uint32_t k = 0; k < found->n; k++)
        if (found->v[k] >= acked && (n == 0 || found->v[n - 1] != found->v[k]))
            found->v[n++] = found->v[k];
    found->n = n;
    uint32_t run = 0; /* how many continue acked without a hole */
    while (run < n && found->v[run] == acked + (int64_t)run)
        run++;
    p->readback_found += n;
    if (n) {
        kb_log(KB_LOG_INFO, "uplink: %s/%d: the central side holds %u records past the "
               "checkpoint (%" PRId64 "), up to offset %" PRId64 ": resuming after them",
               t->name, (int)p->partition, n, acked, found->v[n - 1]);
    }
    int64_t resume = acked + (int64_t)run;
    if (run < n) {
        /* expected on a hashed topic: the central partitions got different prefixes */
        kb_log(t->hashed ? KB_LOG_INFO : KB_LOG_WARN, "uplink: %s/%d: the central side lacks offsets from %" PRId64
               " but holds %u later ones (%s): sending the missing ones after them, "
               "skipping what is there", t->name, (int)p->partition, resume, n - run,
               t->hashed ? "keys spread over central partitions" : "a failed batch");
        /* found becomes the skip list: the part after the hole */
        for (uint32_t k = run; k < n; k++)
            found->v[k - run] = found->v[k];
        found->n = n - run;
        p->skip = *found;
        *found = (up_offsets_t){0};
    }
    p->acked = p->next_send = resume;
}

bool up_skip(up_part_t *p, int64_t off)
{
    while (p->skip_i < p->skip.n && p->skip.v[p->skip_i] < off)
        p->skip_i++;
    if (p->skip_i < p->skip.n && p->skip.v[p->skip_i] == off) {
        p->skip_i++;
        return true;
    }
    if (p->skip_i == p->skip.n && p->skip.n) { /* done with it */
        free(p->skip.v);
        p->skip = (up_offsets_t){0};
        p->skip_i = 0;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Key hash: Kafka's default partitioner                                                        */

int32_t up_murmur2(const void *key, size_t len)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *b = d + i * 4;
        uint32_t k = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *tail = d + n4 * 4;
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t up_key_partition(const void *key, size_t len, int32_t n)
{
    if (n <= 0) return 0;
    return (int32_t)(((uint32_t)up_murmur2(key, len) & 0x7fffffffu) % (uint32_t)n);
}

/* ------------------------------------------------------------------------------------------ */
/* scan_from bookkeeping                                                                        */

static bool covered(const up_topic_t *t, const up_pending_t *e)
{
    return e->lp < 0 || e->lp >= t->nparts || e->loff < t->parts[e->lp].acked;
}

static void pop_covered(up_topic_t *t, up_cpart_t *c)
{
    while (c->n && covered(t, &c->v[c->head])) {
        c->head = (c->head + 1) % c->cap;
        c->n--;
    }
    if (c->n == 0) c->head = 0;
}

int up_central_note(up_topic_t *t, int32_t q, int64_t coff, int32_t lp, int64_t loff)
{
    if (!t->cp || q < 0 || q >= t->ncentral) return 0;
    up_cpart_t *c = &t->cp[q];
    if (coff + 1 > c->end) c->end = coff + 1;
    up_pending_t e = {.coff = coff, .loff = loff, .lp = lp};
    pop_covered(t, c);
    if (c->n == 0 && covered(t, &e)) return 0; /* the common case: nothing to remember */
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        up_pending_t *v = malloc(cap * sizeof *v);
        if (!v) { /* scan_from stays at or below it until the next resolve */
            if (c->hold < 0 || coff < c->hold) c->hold = coff;
            return K_ERR_NOMEM;
        }
        for (uint32_t i = 0; i < c->n; i++)
            v[i] = c->v[(c->head + i) % c->cap];
        free(c->v);
        c->v = v;
        c->head = 0;
        c->cap = cap;
    }
    c->v[(c->head + c->n) % c->cap] = e;
    c->n++;
    return 0;
}

void up_scan_update(up_topic_t *t)
{
    if (!t->cp || !t->scan_from) return;
    for (int32_t q = 0; q < t->ncentral; q++) {
        up_cpart_t *c = &t->cp[q];
        pop_covered(t, c);
        int64_t s = c->n ? c->v[c->head].coff : c->end;
        t->scan_from[q] = c->hold >= 0 && c->hold < s ? c->hold : s;
    }
}

void up_central_free(up_topic_t *t)
{
    for (int32_t q = 0; t->cp && q < t->ncentral; q++)
        free(t->cp[q].v);
    free(t->cp);
    t->cp = NULL;
}

int up_central_reset(up_topic_t *t, const int64_t *hw, int32_t n)
{
    up_central_free(t);
    t->cp = calloc((size_t)n, sizeof *t->cp);
    if (!t->cp) return K_ERR_NOMEM;
    for (int32_t q = 0; q < n; q++) {
        t->cp[q].end = hw[q];
        t->cp[q].hold = -1;
    }
    return 0;
}

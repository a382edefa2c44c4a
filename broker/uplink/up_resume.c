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
        kb_log(KB_LOG_WARN, "uplink: %s/%d: the central side lacks offsets from %" PRId64
               " but holds %u later ones (a failed batch): sending the missing ones after them, "
               "skipping what is there", t->name, (int)p->partition, resume, n - run);
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

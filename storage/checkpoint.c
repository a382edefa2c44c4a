/*
 * Per log dir checkpoint files, in Kafka's OffsetCheckpoint text format:
 *
 *     0                      format version
 *     <n>                    number of lines that follow
 *     <topic> <partition> <offset>   n times
 *
 * recovery-point-offset-checkpoint: per partition, the first offset that recovery after an
 *   unclean stop must re-verify. It is the base of the first segment that is not both closed
 *   and fully fsynced (data, indexes, directory entry), or the log end after a clean close.
 *   Written on clean close and every checkpoint interval while it moves. Depot appends the
 *   tail mark of that segment when it has one (recovery.c), eight more numbers on the line:
 *       <topic> <partition> <offset> <pos> <next offset> <index bytes> <timeindex bytes>
 *               <bytes since index entry> <max timestamp> <its offset> <last timeindex ts>
 *   A reader that stops after the third field (Kafka's, Depot before the marks) still gets
 *   the recovery point; a line without them means "scan that segment from byte 0".
 * log-start-offset-checkpoint: per partition, the log start offset (DeleteRecords can put it
 *   inside a segment, so it is not derivable from file names). Written on DeleteRecords,
 *   topic deletion and close.
 *
 * Both are replaced atomically (tmp + fsync + rename + dir fsync). The periodic, DeleteRecords
 * and topic-deletion writes are queued for a flusher thread (ks_ckpt_queue: contents taken on
 * the loop, written without the store lock, one file at a time, a newer version replacing a
 * queued older one), so a slow flash write never stalls the loop; open, close and the
 * cleaner's swap write synchronously because they need the file durable. Missing entries mean
 * "unknown": recovery then scans the whole partition, and the log start is the first
 * segment's base.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ks_int.h"

static const ks_seg_t *rp_seg(const ks_part_t *p)
{
    for (int i = 0; i < p->nsegs; i++) {
        const ks_seg_t *seg = p->segs[i];
        if (!seg->closed || !ks_seg_synced(seg))
            return seg;
    }
    return NULL;
}

int64_t ks_part_recovery_point(const ks_part_t *p)
{
    const ks_seg_t *seg = rp_seg(p);
    return seg ? seg->base : p->log_end;
}

int64_t ks_part_ckpt_mark_pos(const ks_part_t *p)
{
    const ks_seg_t *seg = rp_seg(p);
    /* Only a mark of the segment recovery starts in is worth writing. */
    if (!seg || p->mark.base < 0 || seg != p->mark_seg || seg->base != p->mark.base)
        return -1;
    return p->mark.pos;
}

/* The file's text for log dir dir into b (the recovery points when rp, else log starts). */
static void ckpt_build(ks_store_t *s, int dir, bool rp, kp_buf_t *b)
{
    int n = 0;
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++)
            n += t->parts[j]->dir == dir;
    }
    char line[1024]; /* a 249-byte topic name and eleven numbers fit */
    int len = snprintf(line, sizeof line, "0\n%d\n", n);
    kp_put_raw(b, line, (size_t)len);
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (p->dir != dir)
                continue;
            int64_t off = rp ? ks_part_recovery_point(p) : p->log_start;
            int64_t mpos = rp ? ks_part_ckpt_mark_pos(p) : -1;
            const ks_mark_t *m = &p->mark;
            if (mpos >= 0)
                len = snprintf(line, sizeof line, "%s %d %" PRId64 " %" PRId64 " %" PRId64
                               " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                               " %" PRId64 "\n", t->name, j, off, m->pos, m->off, m->idx,
                               m->tidx, m->since_index, m->max_ts, m->max_ts_off,
                               m->tidx_last_ts);
            else
                len = snprintf(line, sizeof line, "%s %d %" PRId64 "\n", t->name, j, off);
            kp_put_raw(b, line, (size_t)len);
            if (rp) {
                p->rp_written = off;
                p->mark_written = mpos;
            }
        }
    }
}

static void drop_pending(ks_store_t *s, int dir, const char *name);

int ks_ckpt_write(ks_store_t *s, int dir, const char *name, bool rp)
{
    /* One writer per file at a time (they share the .tmp name), and a queued older version
     * must not land after this newer one. */
    while (s->ckpt_writing)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    drop_pending(s, dir, name);
    kp_buf_t b;
    kp_buf_init(&b);
    ckpt_build(s, dir, rp, &b);
    int rc = b.err ? K_ERR_NOMEM : ks_write_atomic(s, s->dirs[dir], name, b.data, b.len);
    kp_buf_deinit(&b);
    return rc;
}

struct ks_ckpt_job {
    struct ks_ckpt_job *next;
    int dir;
    const char *name; /* one of the KS_*_FILE constants */
    kp_buf_t text;
};

static void drop_pending(ks_store_t *s, int dir, const char *name)
{
    for (struct ks_ckpt_job **pp = &s->ckpt_jobs; *pp;) {
        struct ks_ckpt_job *j = *pp;
        if (j->dir == dir && strcmp(j->name, name) == 0) {
            *pp = j->next;
            kp_buf_deinit(&j->text);
            free(j);
        } else {
            pp = &j->next;
        }
    }
}

void ks_ckpt_queue(ks_store_t *s, int dir, const char *name, bool rp)
{
    struct ks_ckpt_job *j = calloc(1, sizeof *j); /* owned by s->ckpt_jobs until written */
    if (!j) {
        ks_ckpt_write(s, dir, name, rp); /* no memory for a job: write it here, as before */
        return;
    }
    j->dir = dir;
    j->name = name;
    kp_buf_init(&j->text);
    ckpt_build(s, dir, rp, &j->text);
    struct ks_ckpt_job **pp = &s->ckpt_jobs;
    while (*pp && !((*pp)->dir == dir && strcmp((*pp)->name, name) == 0))
        pp = &(*pp)->next;
    if (*pp) { /* the pending older version is never written */
        struct ks_ckpt_job *old = *pp;
        j->next = old->next;
        kp_buf_deinit(&old->text);
        free(old);
    }
    *pp = j;
    pthread_cond_signal(&s->cv);
}

void ks_ckpt_write_one(ks_store_t *s)
{
    struct ks_ckpt_job *j = s->ckpt_jobs;
    s->ckpt_jobs = j->next;
    s->ckpt_writing = true;
    pthread_mutex_unlock(&s->mu);
    /* NULL store: nothing in s is touched without mu (errors are counted below) */
    int rc = j->text.err ? K_ERR_NOMEM
                         : ks_write_atomic(NULL, s->dirs[j->dir], j->name, j->text.data,
                                           j->text.len);
    int e = errno;
    pthread_mutex_lock(&s->mu);
    s->ckpt_writing = false;
    if (rc) {
        s->st.io_errors++;
        ks_msgq_push(s, "%s/%s: writing the checkpoint failed: %s (%s); the next one retries",
                     s->dirs[j->dir], j->name, k_strerror(rc), strerror(e));
    }
    kp_buf_deinit(&j->text);
    free(j);
    pthread_cond_broadcast(&s->cv);      /* another thread may take the next job now */
    pthread_cond_broadcast(&s->idle_cv); /* a synchronous writer waits for this one */
}

void ks_ckpt_jobs_free(ks_store_t *s)
{
    while (s->ckpt_jobs) {
        struct ks_ckpt_job *j = s->ckpt_jobs;
        s->ckpt_jobs = j->next;
        kp_buf_deinit(&j->text);
        free(j);
    }
}

int ks_ckpt_write_all(ks_store_t *s)
{
    int rc = 0;
    for (int d = 0; d < s->ndirs; d++) {
        int r = ks_ckpt_write(s, d, KS_RP_FILE, true);
        if (r && !rc)
            rc = r;
        r = ks_ckpt_write(s, d, KS_LSO_FILE, false);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct ks_ckpt_ent *x = a, *y = b;
    size_t n = x->tlen < y->tlen ? x->tlen : y->tlen;
    int c = memcmp(x->topic, y->topic, n);
    if (c)
        return c;
    if (x->tlen != y->tlen)
        return x->tlen < y->tlen ? -1 : 1;
    return (x->part > y->part) - (x->part < y->part);
}

/* The optional tail-mark fields after the offset: all eight, or the mark is absent. */
static void parse_mark(const char *p, int64_t off, ks_mark_t *m)
{
    int64_t v[8];
    m->base = -1;
    for (int i = 0; i < 8; i++) {
        char *end;
        if (*p != ' ')
            return;
        errno = 0;
        v[i] = strtoll(p + 1, &end, 10);
        if (end == p + 1 || errno)
            return;
        p = end;
    }
    if (*p != '\0' && *p != '\r')
        return;
    *m = (ks_mark_t){.base = off, .pos = v[0], .off = v[1], .idx = v[2], .tidx = v[3],
                     .since_index = v[4], .max_ts = v[5], .max_ts_off = v[6],
                     .tidx_last_ts = v[7]};
}

int ks_ckpt_read(const char *dir, const char *name, ks_ckpt_t *c)
{
    char path[KS_PATH_MAX];
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    int rc = ks_read_small(path, &c->text, &len);
    if (rc)
        return rc;
    char *save, *tok = strtok_r(c->text, "\n", &save);
    if (!tok || strcmp(tok, "0") != 0)
        goto bad;
    tok = strtok_r(NULL, "\n", &save);
    long n = tok ? strtol(tok, NULL, 10) : -1;
    if (n < 0 || (size_t)n > len / 6) /* each line takes at least "t 0 0\n" */
        goto bad;
    c->ents = calloc((size_t)n + 1, sizeof *c->ents);
    if (!c->ents) {
        ks_ckpt_free(c);
        return K_ERR_NOMEM;
    }
    while ((tok = strtok_r(NULL, "\n", &save)) != NULL && c->n < n) {
        char *sp1 = strchr(tok, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp2)
            goto bad;
        struct ks_ckpt_ent *e = &c->ents[c->n++];
        e->topic = tok;
        e->tlen = (size_t)(sp1 - tok);
        e->part = (int32_t)strtol(sp1 + 1, NULL, 10);
        char *end;
        e->off = strtoll(sp2 + 1, &end, 10);
        parse_mark(end, e->off, &e->mark);
    }
    if (c->n != n)
        goto bad;
    qsort(c->ents, (size_t)c->n, sizeof *c->ents, ent_cmp);
    return 0;
bad:
    ks_ckpt_free(c);
    return K_ERR_CORRUPT;
}

int64_t ks_ckpt_find(const ks_ckpt_t *c, const char *topic, int32_t part, int64_t dflt)
{
    if (!c->ents)
        return dflt;
    struct ks_ckpt_ent key = {topic, strlen(topic), part, 0, {.base = -1}};
    struct ks_ckpt_ent *e = bsearch(&key, c->ents, (size_t)c->n, sizeof *c->ents, ent_cmp);
    return e ? e->off : dflt;
}

void ks_ckpt_find_mark(const ks_ckpt_t *c, const char *topic, int32_t part, ks_mark_t *m)
{
    m->base = -1;
    if (!c->ents)
        return;
    struct ks_ckpt_ent key = {topic, strlen(topic), part, 0, {.base = -1}};
    struct ks_ckpt_ent *e = bsearch(&key, c->ents, (size_t)c->n, sizeof *c->ents, ent_cmp);
    if (e)
        *m = e->mark;
}

void ks_ckpt_free(ks_ckpt_t *c)
{
    free(c->text);
    free(c->ents);
    memset(c, 0, sizeof *c);
}

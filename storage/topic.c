/*
 * Topics: creation, deletion, lookup and their persistence.
 *
 * A topic exists on disk iff <logdir>/<topic>-0/depot-topic.properties exists (in any log
 * dir). The file is written atomically (tmp + fsync + rename + dir fsync) after every other
 * partition directory was created, and its directory entry is made durable before
 * ks_topic_create returns (or, in three steps, before ks_topic_create_finish publishes it):
 *
 *     # depot topic metadata
 *     version=1
 *     name=<topic>
 *     id=<topic id, 22 chars base64url as Kafka prints it>
 *     partitions=<count>
 *     config.<key>=<value>      one line per override of the store's defaults
 *
 * Overrides are the keys whose value differed from the store defaults at creation; at load
 * they are applied on top of the defaults then in force, as Kafka does.
 *
 * Partition directories are <logdir>/<topic>-<partition>, spread over the log dirs (each new
 * partition goes to the dir holding the fewest). Deletion renames the partition 0 directory
 * away first (so the topic is gone at once), then the others, to <logdir>/<random>-delete,
 * fsyncs the log dirs (ks_topic_delete_sync: on any thread, without the lock) and only then
 * hands them to the flusher thread to remove (gigabytes of segments take a while to unlink;
 * the loop does not wait); leftovers of an interrupted delete (*-delete, and
 * partition dirs whose topic has no metadata) are removed at the next open.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/ks_int.h"

#define MAX_PARTITIONS 1000000

bool ks_topic_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > 249)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int name_cmp(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Index of the first topic whose name is >= name. */
static int name_pos(ks_store_t *s, const char *name, size_t len)
{
    int lo = 0, hi = s->ntopics;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (name_cmp(s->topics[mid]->name, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int id_pos(ks_store_t *s, kp_uuid_t id)
{
    int lo = 0, hi = s->ntopics;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (memcmp(s->by_id[mid]->id.b, id.b, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ks_topic_t *find_locked(ks_store_t *s, const char *name, size_t len)
{
    int i = name_pos(s, name, len);
    if (i < s->ntopics && name_cmp(s->topics[i]->name, name, len) == 0)
        return s->topics[i];
    return NULL;
}

static int insert(ks_store_t *s, ks_topic_t *t)
{
    if (s->ntopics == s->tcap) {
        int cap = s->tcap ? s->tcap * 2 : 16;
        ks_topic_t **a = realloc(s->topics, (size_t)cap * sizeof *a);
        if (!a)
            return K_ERR_NOMEM;
        s->topics = a;
        ks_topic_t **b = realloc(s->by_id, (size_t)cap * sizeof *b);
        if (!b)
            return K_ERR_NOMEM;
        s->by_id = b;
        s->tcap = cap;
    }
    int i = name_pos(s, t->name, strlen(t->name));
    memmove(s->topics + i + 1, s->topics + i, (size_t)(s->ntopics - i) * sizeof *s->topics);
    s->topics[i] = t;
    int j = id_pos(s, t->id);
    memmove(s->by_id + j + 1, s->by_id + j, (size_t)(s->ntopics - j) * sizeof *s->by_id);
    s->by_id[j] = t;
    s->ntopics++;
    return 0;
}

static void remove_topic(ks_store_t *s, ks_topic_t *t)
{
    for (int i = 0; i < s->ntopics; i++)
        if (s->topics[i] == t) {
            memmove(s->topics + i, s->topics + i + 1,
                    (size_t)(s->ntopics - i - 1) * sizeof *s->topics);
            break;
        }
    for (int i = 0; i < s->ntopics; i++)
        if (s->by_id[i] == t) {
            memmove(s->by_id + i, s->by_id + i + 1,
                    (size_t)(s->ntopics - i - 1) * sizeof *s->by_id);
            break;
        }
    s->ntopics--;
}

static kp_uuid_t random_id(void)
{
    kp_uuid_t id;
    char txt[24];
    do {
        ks_fill_random(id.b, 16);
        id.b[6] = (uint8_t)((id.b[6] & 0x0f) | 0x40); /* version 4, as Java's randomUUID */
        id.b[8] = (uint8_t)((id.b[8] & 0x3f) | 0x80);
        ks_base64url(id.b, 16, txt);
    } while (txt[0] == '-'); /* Kafka avoids ids whose text starts with '-' */
    return id;
}

ks_part_t *ks_topic_part_new(ks_topic_t *t, int32_t i)
{
    ks_part_t *p = calloc(1, sizeof *p); /* owned by whoever holds it in a parts array */
    if (!p)
        return NULL;
    p->topic = t;
    p->index = i;
    p->dir = -1;
    p->mark.base = p->cand.base = -1;
    p->mark_written = -1;
    return p;
}

/* Grows t->parts to n fresh, unplaced partitions (dir -1); old part pointers stay valid. */
static int parts_grow(ks_topic_t *t, int32_t n)
{
    ks_part_t **a = realloc(t->parts, (size_t)n * sizeof *a);
    if (!a)
        return K_ERR_NOMEM;
    t->parts = a;
    for (int32_t i = t->nparts; i < n; i++) {
        ks_part_t *p = ks_topic_part_new(t, i); /* owned by t->parts */
        if (!p)
            return K_ERR_NOMEM; /* t->nparts still counts the ones made */
        t->parts[i] = p;
        t->nparts = i + 1;
    }
    return 0;
}

static ks_topic_t *topic_new(ks_store_t *s, const char *name, size_t len, int32_t n)
{
    ks_topic_t *t = calloc(1, sizeof *t); /* owned by the store's topic arrays */
    if (!t)
        return NULL;
    t->s = s;
    t->name = strndup(name, len);
    if (!t->name || parts_grow(t, n) != 0) {
        ks_topic_free(s, t);
        return NULL;
    }
    return t;
}

/* Frees one partition's memory (not its files). */
static void part_free(ks_store_t *s, ks_part_t *p)
{
    for (int j = 0; j < p->nsegs; j++)
        ks_seg_free(s, p->segs[j]);
    free(p->segs);
    free(p->path);
    ks_pstate_free(&p->pstate);
    ks_part_fail_waiters(s, p, K_ERR_CLOSED);
    free(p);
}

void ks_topic_free(ks_store_t *s, ks_topic_t *t)
{
    if (!t)
        return;
    for (int32_t i = 0; i < t->nparts; i++)
        part_free(s, t->parts[i]);
    free(t->parts);
    free(t->name);
    free(t);
}

static int part_set_dir(ks_store_t *s, ks_part_t *p, int dir)
{
    char path[KS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s-%d", s->dirs[dir], p->topic->name, p->index);
    p->path = strdup(path);
    if (!p->path)
        return K_ERR_NOMEM;
    p->dir = dir;
    s->dir_parts[dir]++;
    return 0;
}

static int least_loaded_dir(ks_store_t *s)
{
    int best = 0;
    for (int d = 1; d < s->ndirs; d++)
        if (s->dir_parts[d] < s->dir_parts[best])
            best = d;
    return best;
}

int ks_topic_part_place(ks_store_t *s, ks_part_t *p)
{
    return part_set_dir(s, p, least_loaded_dir(s));
}

static int make_part_dir(ks_store_t *s, ks_part_t *p)
{
    if (ks_io.mkdir(p->path, 0755) != 0) {
        if (errno == EEXIST) {
            ks_log(s, KS_LOG_WARN, "%s: removing a leftover directory", p->path);
            ks_rm_rf(p->path);
            if (ks_io.mkdir(p->path, 0755) == 0)
                return 0;
        }
        int e = errno;
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: mkdir failed: %s", p->path, strerror(e));
        return ks_errno_status(e);
    }
    return 0;
}

void ks_topic_meta_render(const ks_topic_t *t, int32_t nparts, const ks_topic_config_t *cfg,
                          uint64_t mask, kp_buf_t *b)
{
    char line[512], id[24], val[KS_THROTTLED_MAX];
    ks_base64url(t->id.b, 16, id);
    int n = snprintf(line, sizeof line,
                     "# depot topic metadata\nversion=1\nname=%s\nid=%s\npartitions=%d\n",
                     t->name, id, nparts);
    kp_put_raw(b, line, (size_t)n);
    const char *const *keys = ks_topic_config_keys();
    for (int i = 0; keys[i]; i++) {
        if (!(mask & (UINT64_C(1) << i)))
            continue;
        ks_topic_config_get(cfg, keys[i], val, sizeof val);
        n = snprintf(line, sizeof line, "config.%s=%s\n", keys[i], val);
        kp_put_raw(b, line, (size_t)n);
    }
}

static int write_meta(ks_store_t *s, ks_topic_t *t)
{
    kp_buf_t b;
    kp_buf_init(&b);
    ks_topic_meta_render(t, t->nparts, &t->cfg, t->overrides, &b);
    int rc = b.err ? K_ERR_NOMEM : ks_write_atomic(s, t->parts[0]->path, KS_TOPIC_FILE, b.data,
                                                   b.len);
    kp_buf_deinit(&b);
    return rc;
}

/* Keys whose values differ: CreateTopics' configs become overrides. */
static uint64_t diff_mask(const ks_topic_config_t *a, const ks_topic_config_t *b)
{
    uint64_t m = 0;
    const char *const *keys = ks_topic_config_keys();
    for (int i = 0; keys[i]; i++) {
        char va[KS_THROTTLED_MAX], vb[KS_THROTTLED_MAX];
        ks_topic_config_get(a, keys[i], va, sizeof va);
        ks_topic_config_get(b, keys[i], vb, sizeof vb);
        if (strcmp(va, vb) != 0)
            m |= UINT64_C(1) << i;
    }
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* Creating: begin (reserve, loop) / write (files, any thread) / finish (publish, loop)          */

struct ks_topic_pending {
    ks_store_t *s;                 /* NULL once ks_store_close ran before finish */
    ks_topic_t *t;                 /* unpublished; owned here until finish publishes it */
    struct ks_topic_pending *next; /* s->pending, under s->mu */
    int status;                    /* write's; K_ERR_INVAL until it ran (finish rolls back) */
    int leftovers;                 /* leftover directories write removed (logged at finish) */
    int sync_errors;               /* log dir fsyncs that failed (logged at finish) */
    char err[KS_PATH_MAX + 64];    /* what failed: write runs off the loop, finish logs it */
};

static bool reserved_locked(ks_store_t *s, const char *name, size_t len)
{
    for (ks_topic_pending_t *pt = s->pending; pt; pt = pt->next)
        if (name_cmp(pt->t->name, name, len) == 0)
            return true;
    return ks_topic_change_reserved_locked(s, name, len);
}

/* The memory of a topic nobody else has seen (no segments, no waiters): needs no store. */
static void unpublished_free(ks_topic_t *t)
{
    for (int32_t i = 0; i < t->nparts; i++) {
        free(t->parts[i]->path);
        free(t->parts[i]);
    }
    free(t->parts);
    free(t->name);
    free(t);
}

int ks_topic_create_begin(ks_store_t *s, const char *name, int32_t partitions,
                          const ks_topic_config_t *cfg, ks_topic_pending_t **out)
{
    if (!s || !name || !out || !ks_topic_name_valid(name, strlen(name)) || partitions < 1 ||
        partitions > MAX_PARTITIONS)
        return K_ERR_INVAL;
    size_t len = strlen(name);
    ks_topic_pending_t *pt = calloc(1, sizeof *pt); /* owned by the caller until finish */
    if (!pt)
        return K_ERR_NOMEM;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    ks_topic_t *t = NULL;
    if (find_locked(s, name, len) || reserved_locked(s, name, len))
        rc = K_ERR_EXISTS;
    else if (!(t = topic_new(s, name, len, partitions)))
        rc = K_ERR_NOMEM;
    if (rc == 0) {
        t->cfg = cfg ? *cfg : s->o.defaults;
        t->overrides = diff_mask(&t->cfg, &s->o.defaults);
        t->id = random_id();
        for (int32_t i = partitions - 1; i >= 0 && rc == 0; i--)
            rc = part_set_dir(s, t->parts[i], least_loaded_dir(s));
        if (rc) {
            for (int32_t i = 0; i < partitions; i++)
                if (t->parts[i]->dir >= 0)
                    s->dir_parts[t->parts[i]->dir]--;
            unpublished_free(t);
        }
    }
    if (rc == 0) {
        pt->s = s;
        pt->t = t;
        pt->status = K_ERR_INVAL;
        pt->next = s->pending;
        s->pending = pt;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        free(pt);
        return rc;
    }
    *out = pt;
    return 0;
}

/* mkdir of a partition directory; a leftover of an interrupted create or delete is replaced.
 * -1 with errno on failure. */
static int mkdir_fresh(ks_topic_pending_t *pt, const char *path)
{
    if (ks_io.mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    pt->leftovers++;
    ks_rm_rf(path);
    return ks_io.mkdir(path, 0755);
}

void ks_topic_parent_dir(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf)
        *slash = '\0';
}

int ks_topic_create_write(ks_topic_pending_t *pt)
{
    ks_topic_t *t = pt->t;
    int32_t n = t->nparts, made = n;
    int rc = 0;
    /* Partition 0 last, then its metadata file: the topic exists on disk only once every
     * other directory does. */
    for (int32_t i = n - 1; i >= 0; i--) {
        if (mkdir_fresh(pt, t->parts[i]->path) != 0) {
            int e = errno;
            snprintf(pt->err, sizeof pt->err, "%s: mkdir failed: %s", t->parts[i]->path,
                     strerror(e));
            rc = ks_errno_status(e);
            break;
        }
        made = i;
    }
    if (rc == 0 && (rc = write_meta(NULL, t)) != 0)
        snprintf(pt->err, sizeof pt->err, "%s: writing %s failed: %s", t->parts[0]->path,
                 KS_TOPIC_FILE, k_strerror(rc));
    /* Each log dir once: their entries for the new directories become durable. A failure is
     * counted, not fatal: partition 0 and its metadata are durable already, and a partition
     * directory lost in a crash is recreated empty at the next open. */
    for (int32_t i = 0; rc == 0 && i < n; i++) {
        bool seen = false;
        for (int32_t j = 0; j < i && !seen; j++)
            seen = t->parts[j]->dir == t->parts[i]->dir;
        char dir[KS_PATH_MAX];
        ks_topic_parent_dir(t->parts[i]->path, dir, sizeof dir);
        if (!seen && ks_io.fsync_dir(dir) != 0)
            pt->sync_errors++;
    }
    if (rc)
        for (int32_t i = made; i < n; i++)
            ks_rm_rf(t->parts[i]->path);
    pt->status = rc;
    return rc;
}

int ks_topic_create_finish(ks_topic_pending_t *pt, ks_topic_t **out)
{
    if (!pt)
        return K_ERR_INVAL;
    ks_store_t *s = pt->s;
    ks_topic_t *t = pt->t;
    int rc = pt->status;
    if (!s) { /* closed under us: whatever write made is the next open's to judge */
        unpublished_free(t);
        free(pt);
        return K_ERR_CLOSED;
    }
    pthread_mutex_lock(&s->mu);
    for (ks_topic_pending_t **pp = &s->pending; *pp; pp = &(*pp)->next)
        if (*pp == pt) {
            *pp = pt->next;
            break;
        }
    if (rc == 0 && (rc = insert(s, t)) != 0)
        for (int32_t i = 0; i < t->nparts; i++)
            ks_rm_rf(t->parts[i]->path);
    if (rc) {
        for (int32_t i = 0; i < t->nparts; i++)
            s->dir_parts[t->parts[i]->dir]--;
    } else {
        s->st.partitions += t->nparts;
    }
    if (pt->status || pt->sync_errors)
        s->st.io_errors += (pt->status != 0) + pt->sync_errors;
    pthread_mutex_unlock(&s->mu);
    if (pt->leftovers)
        ks_log(s, KS_LOG_WARN, "topic %s: removed %d leftover directories", t->name,
               pt->leftovers);
    if (pt->sync_errors)
        ks_log(s, KS_LOG_ERROR, "topic %s: %d log dir fsyncs failed", t->name, pt->sync_errors);
    if (pt->status)
        ks_log(s, KS_LOG_ERROR, "%s", pt->err);
    if (rc == 0) {
        ks_log(s, KS_LOG_INFO, "created topic %s with %d partitions", t->name, t->nparts);
        if (out)
            *out = t;
    } else {
        unpublished_free(t);
    }
    free(pt);
    return rc;
}

int ks_topic_create(ks_store_t *s, const char *name, int32_t partitions,
                    const ks_topic_config_t *cfg, ks_topic_t **out)
{
    ks_topic_pending_t *pt;
    int rc = ks_topic_create_begin(s, name, partitions, cfg, &pt);
    if (rc)
        return rc;
    ks_topic_create_write(pt);
    return ks_topic_create_finish(pt, out);
}

/* A deletion between begin and finish: what its directory fsyncs and the flusher still need.
 * Every string is owned here. */
struct ks_topic_deleting {
    ks_store_t *s;                  /* NULL once ks_store_close ran before finish */
    struct ks_topic_deleting *next; /* s->deleting, under s->mu */
    char **sync_dirs;               /* log dirs whose entries (the renames) must be durable */
    int nsync;
    char **moved;                   /* renamed-away partition directories, for the flusher */
    int32_t nmoved;
    int sync_errors;
};

static void deleting_free(ks_topic_deleting_t *pd)
{
    for (int i = 0; i < pd->nsync; i++)
        free(pd->sync_dirs[i]);
    for (int32_t i = 0; i < pd->nmoved; i++)
        free(pd->moved[i]);
    free(pd->sync_dirs);
    free(pd->moved);
    free(pd);
}

/* Renames every partition directory away (partition 0 first: the topic is gone from disk at
 * once) and drops the topic from the tables. The directory fsyncs and the removal of the
 * files are left to pd (see ks_topic_delete_begin). */
static int delete_locked(ks_store_t *s, ks_topic_t *t, ks_topic_deleting_t *pd)
{
    pd->moved = calloc((size_t)t->nparts, sizeof *pd->moved);
    pd->sync_dirs = calloc((size_t)s->ndirs, sizeof *pd->sync_dirs);
    if (!pd->moved || !pd->sync_dirs)
        return K_ERR_NOMEM;
    pd->nmoved = t->nparts;
    for (int32_t i = 0; i < t->nparts; i++) {
        ks_part_t *p = t->parts[i];
        char dst[KS_PATH_MAX], rnd[8], hex[17];
        ks_part_wait_idle(s, p);
        ks_cleaner_forget(s, p);
        ks_fill_random(rnd, sizeof rnd);
        for (int j = 0; j < 8; j++)
            snprintf(hex + 2 * j, 3, "%02x", (uint8_t)rnd[j]);
        snprintf(dst, sizeof dst, "%s/%s-delete", s->dirs[p->dir], hex);
        if (ks_io.rename(p->path, dst) != 0) {
            int e = errno;
            ks_log(s, KS_LOG_ERROR, "%s: rename for delete failed: %s", p->path, strerror(e));
            if (i == 0)
                return ks_errno_status(e); /* nothing changed yet */
            continue; /* an orphan now: removed at the next open */
        }
        pd->moved[i] = strdup(dst);
    }
    bool *dirs = calloc((size_t)s->ndirs, sizeof *dirs);
    for (int32_t i = 0; i < t->nparts; i++) {
        ks_part_t *p = t->parts[i];
        s->dir_parts[p->dir]--;
        for (int j = 0; j < p->nsegs; j++) {
            ks_seg_t *seg = p->segs[j];
            s->st.bytes_on_disk -= seg->size + seg->idx_size + seg->tidx_size;
        }
        if (dirs && !dirs[p->dir]) {
            dirs[p->dir] = true;
            pd->sync_dirs[pd->nsync] = strdup(s->dirs[p->dir]);
            if (pd->sync_dirs[pd->nsync])
                pd->nsync++;
        }
    }
    ks_topic_change_detach_locked(t);
    remove_topic(s, t);
    s->st.partitions -= t->nparts;
    ks_log(s, KS_LOG_INFO, "deleted topic %s", t->name);
    ks_topic_free(s, t);
    /* Stale checkpoint lines would apply to a new topic of the same name. */
    for (int d = 0; dirs && d < s->ndirs; d++) {
        if (dirs[d]) { /* written by a flusher thread, off the loop */
            ks_ckpt_queue(s, d, KS_RP_FILE, true);
            ks_ckpt_queue(s, d, KS_LSO_FILE, false);
        }
    }
    free(dirs);
    return 0;
}

int ks_topic_delete_begin(ks_store_t *s, const char *name, ks_topic_deleting_t **out)
{
    if (!s || !name || !out)
        return K_ERR_INVAL;
    ks_topic_deleting_t *pd = calloc(1, sizeof *pd); /* owned by the caller until finish */
    if (!pd)
        return K_ERR_NOMEM;
    pthread_mutex_lock(&s->mu);
    ks_topic_t *t = find_locked(s, name, strlen(name));
    int rc = t ? delete_locked(s, t, pd) : K_ERR_NOENT;
    if (rc == 0) {
        pd->s = s;
        pd->next = s->deleting;
        s->deleting = pd;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        deleting_free(pd);
        return rc;
    }
    if (s->o.on_sync_ready)
        s->o.on_sync_ready(s->o.sync_ud); /* waiters of the deleted partitions completed */
    *out = pd;
    return 0;
}

void ks_topic_delete_sync(ks_topic_deleting_t *pd)
{
    for (int i = 0; i < pd->nsync; i++)
        if (ks_io.fsync_dir(pd->sync_dirs[i]) != 0)
            pd->sync_errors++;
}

void ks_topic_delete_finish(ks_topic_deleting_t *pd)
{
    if (!pd)
        return;
    ks_store_t *s = pd->s;
    if (s) {
        pthread_mutex_lock(&s->mu);
        for (ks_topic_deleting_t **pp = &s->deleting; *pp; pp = &(*pp)->next)
            if (*pp == pd) {
                *pp = pd->next;
                break;
            }
        s->st.io_errors += pd->sync_errors;
        /* Only now: the removal must not reach the disk before the renames do. */
        for (int32_t i = 0; i < pd->nmoved; i++)
            if (pd->moved[i]) {
                ks_trash_push(s, pd->moved[i], NULL); /* takes the string */
                pd->moved[i] = NULL;
            }
        pthread_mutex_unlock(&s->mu);
        if (pd->sync_errors)
            ks_log(s, KS_LOG_ERROR, "deleting a topic: %d log dir fsyncs failed",
                   pd->sync_errors);
    }
    deleting_free(pd); /* closed meanwhile: the *-delete directories go at the next open */
}

int ks_topic_delete(ks_store_t *s, const char *name)
{
    ks_topic_deleting_t *pd;
    int rc = ks_topic_delete_begin(s, name, &pd);
    if (rc)
        return rc;
    ks_topic_delete_sync(pd);
    ks_topic_delete_finish(pd);
    return 0;
}

/* Store close with creates or deletes between begin and finish: creates finish with
 * K_ERR_CLOSED, deletes leave their *-delete directories to the next open. */
void ks_topics_orphan_pending(ks_store_t *s)
{
    for (ks_topic_pending_t *pt = s->pending; pt; pt = pt->next)
        pt->s = NULL;
    s->pending = NULL;
    for (ks_topic_deleting_t *pd = s->deleting; pd; pd = pd->next)
        pd->s = NULL;
    s->deleting = NULL;
    ks_topic_changes_orphan(s);
}

ks_topic_t *ks_topic_find(ks_store_t *s, const char *name, size_t len)
{
    if (!s || !name)
        return NULL;
    pthread_mutex_lock(&s->mu);
    ks_topic_t *t = find_locked(s, name, len);
    pthread_mutex_unlock(&s->mu);
    return t;
}

ks_topic_t *ks_topic_find_by_id(ks_store_t *s, kp_uuid_t id)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    int i = id_pos(s, id);
    ks_topic_t *t = i < s->ntopics && memcmp(s->by_id[i]->id.b, id.b, 16) == 0 ? s->by_id[i]
                                                                              : NULL;
    pthread_mutex_unlock(&s->mu);
    return t;
}

ks_topic_t *ks_topic_next(ks_store_t *s, ks_topic_t *prev)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    ks_topic_t *t = NULL;
    if (!prev) {
        t = s->ntopics ? s->topics[0] : NULL;
    } else {
        /* By name, so iteration survives a deletion of prev's neighbours. */
        size_t len = strlen(prev->name);
        int i = name_pos(s, prev->name, len);
        if (i < s->ntopics && name_cmp(s->topics[i]->name, prev->name, len) == 0)
            i++;
        t = i < s->ntopics ? s->topics[i] : NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return t;
}

const char *ks_topic_name(const ks_topic_t *t)
{
    return t->name;
}

kp_uuid_t ks_topic_id(const ks_topic_t *t)
{
    return t->id;
}

int32_t ks_topic_partitions(const ks_topic_t *t)
{
    return t->nparts;
}

const ks_topic_config_t *ks_topic_config(const ks_topic_t *t)
{
    return &t->cfg;
}

ks_part_t *ks_topic_part(ks_topic_t *t, int32_t partition)
{
    if (!t || partition < 0 || partition >= t->nparts)
        return NULL;
    return t->parts[partition];
}

uint64_t ks_topic_overrides(const ks_topic_t *t)
{
    return t->overrides;
}

int ks_topic_set_config(ks_topic_t *t, const char *key, const char *value)
{
    int i = ks_topic_config_index(key);
    if (!t || !value)
        return K_ERR_INVAL;
    if (i < 0)
        return K_ERR_NOENT;
    ks_topic_config_t cfg = t->cfg;
    int rc = ks_topic_config_set(&cfg, key, value);
    return rc ? rc : ks_topic_set_configs(t->s, t, &cfg, t->overrides | (UINT64_C(1) << i));
}

int ks_topic_reset_config(ks_topic_t *t, const char *key)
{
    int i = ks_topic_config_index(key);
    if (!t)
        return K_ERR_INVAL;
    if (i < 0)
        return K_ERR_NOENT;
    return ks_topic_set_configs(t->s, t, &t->cfg, t->overrides & ~(UINT64_C(1) << i));
}

/* ------------------------------------------------------------------------------------------ */
/* Loading at open                                                                              */

typedef struct {
    int dir;
    char *topic; /* owned */
    int32_t part;
    bool used;
} found_t;

static int read_meta(ks_store_t *s, const found_t *f, ks_topic_t **out)
{
    char path[KS_PATH_MAX], val[KS_THROTTLED_MAX];
    char *text;
    *out = NULL;
    snprintf(path, sizeof path, "%s/%s-0/%s", s->dirs[f->dir], f->topic, KS_TOPIC_FILE);
    int rc = ks_read_small(path, &text, NULL);
    if (rc == K_ERR_NOENT)
        return 0; /* an interrupted create or delete: the directory is an orphan */
    if (rc)
        return rc;
    long n = 0;
    kp_uuid_t id;
    rc = K_ERR_CORRUPT;
    if (ks_props_get(text, "name", val, sizeof val) || strcmp(val, f->topic) != 0)
        goto out;
    if (ks_props_get(text, "partitions", val, sizeof val) || (n = strtol(val, NULL, 10)) < 1 ||
        n > MAX_PARTITIONS)
        goto out;
    if (ks_props_get(text, "id", val, sizeof val) || ks_base64url_decode(val, id.b, 16))
        goto out;
    ks_topic_t *t = topic_new(s, f->topic, strlen(f->topic), (int32_t)n);
    if (!t) {
        rc = K_ERR_NOMEM;
        goto out;
    }
    t->id = id;
    t->cfg = s->o.defaults;
    const char *const *keys = ks_topic_config_keys();
    for (int i = 0; keys[i]; i++) {
        char key[128];
        snprintf(key, sizeof key, "config.%s", keys[i]);
        if (ks_props_get(text, key, val, sizeof val) != 0)
            continue;
        if (ks_topic_config_set(&t->cfg, keys[i], val) != 0)
            ks_log(s, KS_LOG_WARN, "%s: ignoring bad %s=%s", path, key, val);
        else
            t->overrides |= UINT64_C(1) << i;
    }
    *out = t;
    rc = 0;
out:
    if (rc == K_ERR_CORRUPT)
        ks_log(s, KS_LOG_ERROR, "%s: unreadable topic metadata", path);
    free(text);
    return rc;
}

static int scan_dir(ks_store_t *s, int d, found_t **fs, int *n, int *cap)
{
    DIR *dh = opendir(s->dirs[d]);
    if (!dh) {
        ks_log(s, KS_LOG_ERROR, "%s: cannot list: %s", s->dirs[d], strerror(errno));
        return K_ERR_IO;
    }
    struct dirent *e;
    char path[KS_PATH_MAX];
    while ((e = readdir(dh)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        if (nm[0] == '.' || e->d_type != DT_DIR)
            continue;
        snprintf(path, sizeof path, "%s/%s", s->dirs[d], nm);
        if (len > 7 && strcmp(nm + len - 7, "-delete") == 0) {
            ks_rm_rf(path);
            continue;
        }
        const char *dash = strrchr(nm, '-');
        if (!dash || dash == nm || dash[1] == '\0' || strspn(dash + 1, "0123456789") !=
                                                         strlen(dash + 1) ||
            strlen(dash + 1) > 9 || !ks_topic_name_valid(nm, (size_t)(dash - nm)))
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            found_t *nf = realloc(*fs, (size_t)*cap * sizeof *nf);
            if (!nf) {
                closedir(dh);
                return K_ERR_NOMEM;
            }
            *fs = nf;
        }
        found_t *f = &(*fs)[(*n)++];
        f->dir = d;
        f->topic = strndup(nm, (size_t)(dash - nm));
        f->part = (int32_t)strtol(dash + 1, NULL, 10);
        f->used = false;
        if (!f->topic) {
            (*n)--;
            closedir(dh);
            return K_ERR_NOMEM;
        }
    }
    closedir(dh);
    return 0;
}

static int assign_dirs(ks_store_t *s, found_t *fs, int n)
{
    for (int i = 0; i < n; i++) {
        found_t *f = &fs[i];
        ks_topic_t *t = find_locked(s, f->topic, strlen(f->topic));
        char path[KS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s-%d", s->dirs[f->dir], f->topic, f->part);
        if (!t || f->part >= t->nparts) {
            ks_log(s, KS_LOG_WARN, "%s: no topic metadata for it; removing the leftover", path);
            ks_rm_rf(path);
            continue;
        }
        ks_part_t *p = t->parts[f->part];
        if (p->path) {
            ks_log(s, KS_LOG_ERROR, "%s: partition also found at %s", path, p->path);
            return K_ERR_CORRUPT;
        }
        int rc = part_set_dir(s, p, f->dir);
        if (rc)
            return rc;
    }
    for (int i = 0; i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        for (int32_t j = 0; j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            if (p->path)
                continue;
            int rc = part_set_dir(s, p, least_loaded_dir(s));
            if (rc == 0)
                rc = make_part_dir(s, p);
            if (rc)
                return rc;
            ks_log(s, KS_LOG_WARN, "%s: partition directory was missing; recreated empty",
                   p->path);
        }
    }
    return 0;
}

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int load_parts(ks_store_t *s)
{
    int64_t now_ms = wall_now_ms();
    ks_ckpt_t *rp = calloc((size_t)s->ndirs, sizeof *rp);
    ks_ckpt_t *lso = calloc((size_t)s->ndirs, sizeof *lso);
    int rc = rp && lso ? 0 : K_ERR_NOMEM;
    for (int d = 0; rc == 0 && d < s->ndirs; d++) {
        if (ks_ckpt_read(s->dirs[d], KS_RP_FILE, &rp[d]) == K_ERR_CORRUPT)
            ks_log(s, KS_LOG_WARN, "%s: bad %s; recovering whole partitions", s->dirs[d],
                   KS_RP_FILE);
        if (ks_ckpt_read(s->dirs[d], KS_LSO_FILE, &lso[d]) == K_ERR_CORRUPT)
            ks_log(s, KS_LOG_WARN, "%s: bad %s", s->dirs[d], KS_LSO_FILE);
    }
    for (int i = 0; rc == 0 && i < s->ntopics; i++) {
        ks_topic_t *t = s->topics[i];
        s->st.partitions += t->nparts;
        for (int32_t j = 0; rc == 0 && j < t->nparts; j++) {
            ks_part_t *p = t->parts[j];
            int d = p->dir;
            ks_mark_t m;
            ks_ckpt_find_mark(&rp[d], t->name, j, &m);
            rc = ks_part_load(s, p, s->dir_clean[d], ks_ckpt_find(&rp[d], t->name, j, -1), &m,
                              ks_ckpt_find(&lso[d], t->name, j, -1));
            if (rc == 0)
                rc = ks_pstate_load(s, p, now_ms);
            p->rp_written = ks_part_recovery_point(p);
            p->mark_written = ks_part_ckpt_mark_pos(p);
        }
    }
    /* After recovery the recovered segments are fsynced: record it now, so a crash loop does
     * not re-verify (and re-fsync) the same segments at every open. */
    for (int d = 0; rc == 0 && d < s->ndirs; d++)
        if (!s->dir_clean[d])
            ks_ckpt_write(s, d, KS_RP_FILE, true);
    for (int d = 0; d < s->ndirs; d++) {
        if (rp)
            ks_ckpt_free(&rp[d]);
        if (lso)
            ks_ckpt_free(&lso[d]);
    }
    free(rp);
    free(lso);
    return rc;
}

int ks_topics_load(ks_store_t *s)
{
    found_t *fs = NULL;
    int n = 0, cap = 0, rc = 0;
    for (int d = 0; rc == 0 && d < s->ndirs; d++)
        rc = scan_dir(s, d, &fs, &n, &cap);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (fs[i].part != 0)
            continue;
        ks_topic_t *t;
        rc = read_meta(s, &fs[i], &t);
        if (rc == 0 && t) {
            if (find_locked(s, t->name, strlen(t->name))) {
                ks_log(s, KS_LOG_ERROR, "topic %s found in two log dirs", t->name);
                ks_topic_free(s, t);
                rc = K_ERR_CORRUPT;
            } else if ((rc = insert(s, t)) != 0) {
                ks_topic_free(s, t);
            }
        }
    }
    if (rc == 0)
        rc = assign_dirs(s, fs, n);
    if (rc == 0)
        rc = load_parts(s);
    for (int i = 0; i < n; i++)
        free(fs[i].topic);
    free(fs);
    return rc;
}

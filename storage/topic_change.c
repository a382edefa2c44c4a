/*
 * Changes of an existing topic in three steps (ks.h): CreatePartitions (grow) and AlterConfigs
 * (configs). begin renders the new depot-topic.properties and places new partitions on the
 * loop under the lock; write makes the directories and rewrites the file on any thread without
 * the lock (a slow flash write stalls only the request that asked); finish applies it on the
 * loop.
 *
 * Crash safety: the metadata file's rename is the commit. A grow makes its partition
 * directories first, so a crash before the rename leaves directories <topic>-<n> with n at or
 * past the old count, which the next open removes as orphans (topic.c, assign_dirs); after the
 * rename the new count holds, and a directory whose entry was lost is recreated empty.
 *
 * One change per topic at a time (t->change): two writes of the same file in flight would
 * land in either order, and each rendered its file from the state before the other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ks_int.h"

#define MAX_PARTITIONS 1000000

struct ks_topic_change {
    ks_store_t *s;                /* NULL once ks_store_close ran before finish */
    ks_topic_t *t;                /* NULL once the topic was deleted before finish */
    struct ks_topic_change *next; /* s->changing, under s->mu */
    char *name;                   /* the topic's, owned: reserved while t is deleted */
    int32_t old_n, new_n;         /* partition counts; equal for a config change */
    ks_part_t **parts;            /* new_n - old_n new partitions, placed; owned until finish */
    bool configs;                 /* a config change: cfg and mask become the topic's */
    ks_topic_config_t cfg;
    uint64_t mask;
    char *meta_dir;               /* partition 0's directory, owned */
    kp_buf_t meta;                /* the new metadata file */
    int32_t made;                 /* new directories write made (removed if it fails) */
    int status;                   /* write's; K_ERR_INVAL until it ran (finish rolls back) */
    int leftovers, sync_errors;   /* logged at finish */
    char err[KS_PATH_MAX + 64];   /* what failed: write runs off the loop, finish logs it */
};

bool ks_topic_change_reserved_locked(ks_store_t *s, const char *name, size_t len)
{
    for (ks_topic_change_t *ch = s->changing; ch; ch = ch->next)
        if (!ch->t && strlen(ch->name) == len && memcmp(ch->name, name, len) == 0)
            return true;
    return false;
}

void ks_topic_change_detach_locked(ks_topic_t *t)
{
    if (t->change)
        t->change->t = NULL;
    t->change = NULL;
}

void ks_topic_changes_orphan(ks_store_t *s)
{
    for (ks_topic_change_t *ch = s->changing; ch; ch = ch->next)
        ch->s = NULL;
    s->changing = NULL;
}

/* Memory only: the new partitions have no segments and nobody else has seen them. */
static void change_free(ks_topic_change_t *ch)
{
    for (int32_t i = 0; ch->parts && i < ch->new_n - ch->old_n; i++) {
        if (ch->parts[i])
            free(ch->parts[i]->path);
        free(ch->parts[i]);
    }
    free(ch->parts);
    free(ch->name);
    free(ch->meta_dir);
    kp_buf_deinit(&ch->meta);
    free(ch);
}

/* Places the new partitions; on failure the placed ones are uncounted (ch frees them). */
static int place_new(ks_store_t *s, ks_topic_change_t *ch, ks_topic_t *t)
{
    int32_t add = ch->new_n - ch->old_n;
    ch->parts = calloc((size_t)add, sizeof *ch->parts);
    if (!ch->parts)
        return K_ERR_NOMEM;
    int rc = 0;
    for (int32_t i = 0; i < add && rc == 0; i++) {
        ch->parts[i] = ks_topic_part_new(t, ch->old_n + i);
        rc = ch->parts[i] ? ks_topic_part_place(s, ch->parts[i]) : K_ERR_NOMEM;
    }
    if (rc)
        for (int32_t i = 0; i < add; i++)
            if (ch->parts[i] && ch->parts[i]->dir >= 0)
                s->dir_parts[ch->parts[i]->dir]--;
    return rc;
}

/* The common part of both begins, under the lock: K_ERR_AGAIN while t has a change. */
static int begin_locked(ks_store_t *s, ks_topic_t *t, ks_topic_change_t *ch)
{
    if (t->change)
        return K_ERR_AGAIN;
    ch->name = strdup(t->name);
    ch->meta_dir = strdup(t->parts[0]->path);
    if (!ch->name || !ch->meta_dir)
        return K_ERR_NOMEM;
    if (ch->new_n > ch->old_n) {
        int rc = place_new(s, ch, t);
        if (rc)
            return rc;
    }
    ks_topic_meta_render(t, ch->new_n, ch->configs ? &ch->cfg : &t->cfg,
                         ch->configs ? ch->mask : t->overrides, &ch->meta);
    if (ch->meta.err) {
        for (int32_t i = 0; i < ch->new_n - ch->old_n; i++)
            s->dir_parts[ch->parts[i]->dir]--;
        return K_ERR_NOMEM;
    }
    ch->s = s;
    ch->t = t;
    ch->status = K_ERR_INVAL;
    ch->next = s->changing;
    s->changing = ch;
    t->change = ch;
    return 0;
}

static int begin(ks_store_t *s, ks_topic_t *t, ks_topic_change_t *ch, ks_topic_change_t **out)
{
    pthread_mutex_lock(&s->mu);
    ch->old_n = t->nparts;
    if (ch->new_n == 0)
        ch->new_n = t->nparts;
    int rc = ch->new_n < ch->old_n || (!ch->configs && ch->new_n == ch->old_n) ||
                     ch->new_n > MAX_PARTITIONS
                 ? K_ERR_INVAL
                 : begin_locked(s, t, ch);
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        change_free(ch); /* begin_locked uncounted whatever it placed */
        return rc;
    }
    *out = ch;
    return 0;
}

int ks_topic_grow_begin(ks_store_t *s, ks_topic_t *t, int32_t count, ks_topic_change_t **out)
{
    if (!s || !t || !out || count <= 0)
        return K_ERR_INVAL;
    ks_topic_change_t *ch = calloc(1, sizeof *ch); /* owned by the caller until finish */
    if (!ch)
        return K_ERR_NOMEM;
    kp_buf_init(&ch->meta);
    ch->new_n = count;
    return begin(s, t, ch, out);
}

int ks_topic_configs_begin(ks_store_t *s, ks_topic_t *t, const ks_topic_config_t *cfg,
                           uint64_t mask, ks_topic_change_t **out)
{
    if (!s || !t || !cfg || !out)
        return K_ERR_INVAL;
    ks_topic_change_t *ch = calloc(1, sizeof *ch); /* owned by the caller until finish */
    if (!ch)
        return K_ERR_NOMEM;
    kp_buf_init(&ch->meta);
    ch->configs = true;
    ch->cfg = s->o.defaults; /* keys outside mask follow the defaults */
    ks_topic_config_copy(&ch->cfg, cfg, mask);
    ch->mask = mask;
    return begin(s, t, ch, out);
}

/* mkdir of a new partition directory; an orphan of an interrupted grow is replaced. -1 with
 * errno on failure. */
static int mkdir_fresh(ks_topic_change_t *ch, const char *path)
{
    if (ks_io.mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    ch->leftovers++;
    ks_rm_rf(path);
    return ks_io.mkdir(path, 0755);
}

/* Each log dir holding a new directory once: their entries become durable. A failure is
 * counted, not fatal: the metadata is durable, and a directory lost in a crash is recreated
 * empty at the next open. */
static void sync_new_dirs(ks_topic_change_t *ch)
{
    int32_t add = ch->new_n - ch->old_n;
    for (int32_t i = 0; i < add; i++) {
        bool seen = false;
        for (int32_t j = 0; j < i && !seen; j++)
            seen = ch->parts[j]->dir == ch->parts[i]->dir;
        char dir[KS_PATH_MAX];
        ks_topic_parent_dir(ch->parts[i]->path, dir, sizeof dir);
        if (!seen && ks_io.fsync_dir(dir) != 0)
            ch->sync_errors++;
    }
}

int ks_topic_change_write(ks_topic_change_t *ch)
{
    int32_t add = ch->new_n - ch->old_n;
    int rc = 0;
    for (int32_t i = 0; i < add; i++) {
        if (mkdir_fresh(ch, ch->parts[i]->path) != 0) {
            int e = errno;
            snprintf(ch->err, sizeof ch->err, "%s: mkdir failed: %s", ch->parts[i]->path,
                     strerror(e));
            rc = ks_errno_status(e);
            break;
        }
        ch->made = i + 1;
    }
    /* The commit: before it the topic is the old one on disk, after it the new one. */
    if (rc == 0 &&
        (rc = ks_write_atomic(NULL, ch->meta_dir, KS_TOPIC_FILE, ch->meta.data, ch->meta.len)))
        snprintf(ch->err, sizeof ch->err, "%s: writing %s failed: %s", ch->meta_dir,
                 KS_TOPIC_FILE, k_strerror(rc));
    if (rc == 0)
        sync_new_dirs(ch);
    if (rc) {
        for (int32_t i = 0; i < ch->made; i++)
            ks_rm_rf(ch->parts[i]->path);
        ch->made = 0;
    }
    ch->status = rc;
    return rc;
}

/* Under the lock: the new partitions join t (their pointers move to t->parts). */
static int publish_parts(ks_store_t *s, ks_topic_t *t, ks_topic_change_t *ch)
{
    int32_t add = ch->new_n - ch->old_n;
    ks_part_t **a = realloc(t->parts, (size_t)ch->new_n * sizeof *a);
    if (!a)
        return K_ERR_NOMEM;
    t->parts = a;
    for (int32_t i = 0; i < add; i++) {
        t->parts[ch->old_n + i] = ch->parts[i];
        ch->parts[i] = NULL;
    }
    t->nparts = ch->new_n;
    s->st.partitions += add;
    return 0;
}

/* Under the lock: applies ch to t, or takes back what begin and write did. */
static int apply_locked(ks_store_t *s, ks_topic_t *t, ks_topic_change_t *ch, int rc)
{
    int32_t add = ch->new_n - ch->old_n;
    if (!t)
        rc = K_ERR_NOENT;
    if (rc == 0 && add > 0 && (rc = publish_parts(s, t, ch)) != 0)
        ch->status = rc; /* the file says new_n: the next open recreates what is missing */
    if (rc == 0 && ch->configs) {
        t->cfg = ch->cfg;
        t->overrides = ch->mask;
        if (ks_cleanup_compacts(ch->cfg.cleanup_policy))
            ks_cleaner_wake(s);
    }
    if (rc) {
        for (int32_t i = 0; i < add; i++) {
            if (!ch->parts[i])
                continue;
            if (ch->status == 0 && !t) /* written, but the topic went: orphans now */
                ks_rm_rf(ch->parts[i]->path);
            s->dir_parts[ch->parts[i]->dir]--;
        }
    }
    if (t)
        t->change = NULL;
    return rc;
}

int ks_topic_change_finish(ks_topic_change_t *ch)
{
    if (!ch)
        return K_ERR_INVAL;
    ks_store_t *s = ch->s;
    if (!s) { /* closed under us: whatever write made is the next open's to judge */
        change_free(ch);
        return K_ERR_CLOSED;
    }
    pthread_mutex_lock(&s->mu);
    for (ks_topic_change_t **pp = &s->changing; *pp; pp = &(*pp)->next)
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    ks_topic_t *t = ch->t;
    int rc = apply_locked(s, t, ch, ch->status);
    if (ch->status || ch->sync_errors)
        s->st.io_errors += (ch->status != 0 && ch->status != K_ERR_INVAL) + ch->sync_errors;
    pthread_mutex_unlock(&s->mu);
    if (ch->leftovers)
        ks_log(s, KS_LOG_WARN, "topic %s: removed %d leftover directories", ch->name,
               ch->leftovers);
    if (ch->sync_errors)
        ks_log(s, KS_LOG_ERROR, "topic %s: %d log dir fsyncs failed", ch->name, ch->sync_errors);
    if (ch->status && ch->status != K_ERR_INVAL)
        ks_log(s, KS_LOG_ERROR, "%s", ch->err);
    if (rc == 0 && ch->configs)
        ks_log(s, KS_LOG_INFO, "topic %s: configuration changed", ch->name);
    else if (rc == 0)
        ks_log(s, KS_LOG_INFO, "topic %s: %d partitions (was %d)", ch->name, ch->new_n,
               ch->old_n);
    change_free(ch);
    return rc;
}

int ks_topic_set_configs(ks_store_t *s, ks_topic_t *t, const ks_topic_config_t *cfg,
                         uint64_t mask)
{
    ks_topic_change_t *ch;
    int rc = ks_topic_configs_begin(s, t, cfg, mask, &ch);
    if (rc)
        return rc;
    ks_topic_change_write(ch);
    return ks_topic_change_finish(ch);
}

int ks_topic_add_partitions(ks_store_t *s, ks_topic_t *t, int32_t count)
{
    ks_topic_change_t *ch;
    int rc = ks_topic_grow_begin(s, t, count, &ch);
    if (rc)
        return rc;
    ks_topic_change_write(ch);
    return ks_topic_change_finish(ch);
}

/*
 * The fd cache: segment and index files across all partitions share opts.max_open_files
 * descriptors. Open files sit on one LRU list (most recent first); making room closes the
 * least recently used file that is not pinned. A file is pinned while someone is inside an
 * I/O call on its fd (refs > 0), so the flusher's fdatasync can never hit a closed or reused
 * descriptor. If every open file is pinned the cap is exceeded for that moment rather than
 * failing; pins last one call, so this is transient.
 *
 * Dirty data survives an fd close: the page cache belongs to the inode, and a later fsync
 * through a fresh fd writes it back (Linux also reports a writeback error that nobody has
 * seen yet to that fsync). The write/sync generations live in ks_file_t, not in the fd.
 *
 * All functions run under s->mu.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage/ks_int.h"

static const char *const suffix[3] = {".log", ".index", ".timeindex"};

void ks_file_init(ks_file_t *f, ks_seg_t *seg, int kind)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->kind = (uint8_t)kind;
    f->seg = seg;
}

void ks_file_path(const ks_file_t *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%020" PRId64 "%s", f->seg->part->path, f->seg->base, suffix[f->kind]);
}

static void lru_unlink(ks_file_t *f)
{
    f->lru_prev->lru_next = f->lru_next;
    f->lru_next->lru_prev = f->lru_prev;
    f->lru_prev = f->lru_next = NULL;
}

static void lru_push_front(ks_store_t *s, ks_file_t *f)
{
    f->lru_next = s->lru.lru_next;
    f->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = f;
    s->lru.lru_next = f;
}

static void do_close(ks_store_t *s, ks_file_t *f)
{
    lru_unlink(f);
    ks_io.close(f->fd);
    f->fd = -1;
    s->open_files--;
}

static int cap_of(const ks_store_t *s)
{
    return s->o.max_open_files > 0 ? s->o.max_open_files : 1024;
}

/* Closes unpinned files, least recently used first, until at most keep are open. */
static void trim(ks_store_t *s, int keep)
{
    for (ks_file_t *f = s->lru.lru_prev; f != &s->lru && s->open_files > keep;) {
        ks_file_t *prev = f->lru_prev;
        if (f->refs == 0)
            do_close(s, f);
        f = prev;
    }
}

static int open_file(ks_store_t *s, ks_file_t *f, int flags)
{
    char path[KS_PATH_MAX];
    trim(s, cap_of(s) - 1);
    ks_file_path(f, path, sizeof path);
    int fd = ks_io.open(path, O_RDWR | flags, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return K_ERR_NOENT; /* callers that expect the file report it */
        if (e == EMFILE || e == ENFILE || e == ENOMEM) /* a shortage, not a broken disk */
            return K_ERR_AGAIN;
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: open failed: %s", path, strerror(e));
        return ks_errno_status(e);
    }
    f->fd = fd;
    s->open_files++;
    lru_push_front(s, f);
    return 0;
}

int ks_file_acquire(ks_store_t *s, ks_file_t *f)
{
    if (f->fd < 0) {
        int rc = open_file(s, f, 0);
        if (rc)
            return rc;
    } else if (s->lru.lru_next != f) {
        lru_unlink(f);
        lru_push_front(s, f);
    }
    f->refs++;
    return 0;
}

int ks_file_create(ks_store_t *s, ks_file_t *f)
{
    if (f->fd >= 0)
        ks_file_close(s, f);
    int rc = open_file(s, f, O_CREAT | O_TRUNC);
    if (rc)
        return rc;
    f->refs++;
    return 0;
}

void ks_file_release(ks_store_t *s, ks_file_t *f)
{
    if (f->refs > 0 && --f->refs == 0 && s->open_files > cap_of(s))
        trim(s, cap_of(s)); /* opened over the cap while everything was pinned */
}

void ks_file_close(ks_store_t *s, ks_file_t *f)
{
    if (f->fd >= 0 && f->refs == 0)
        do_close(s, f);
}

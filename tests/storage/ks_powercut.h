/*
 * A power-cut model for storage tests, over the ks_io seam.
 *
 * Process death (kill -9) keeps every write that reached the kernel; a power cut keeps only
 * what was made durable. This header models the second, so a test can cut the power at any
 * I/O step of the engine and check what recovery makes of the files a disk may be left with.
 *
 *   1. pc_snapshot(root): the parent reads the tree under root; all of it counts as durable
 *      (the test closed the store cleanly, which fsyncs everything).
 *   2. In a forked child, pc_seam_install(log_fd, cut_at) routes ks_io through recorders:
 *      every call under root is performed and appended to a log file, and the cut_at-th
 *      mutating call (write, truncate, fsync, rename, unlink, mkdir, rmdir, directory fsync,
 *      syncfs, creating open) ends the process before it happens.
 *   3. The parent replays the log against the snapshot (pc_replay) and writes back one state
 *      the disk may hold after the cut (pc_materialize), chosen with a seeded random:
 *        file contents: fsync/fdatasync makes an inode's contents durable; for the writes and
 *        truncations after its last fsync, each file independently keeps none of them, all of
 *        them, or a prefix with the next write torn at a random byte, or that prefix with the
 *        next extending write's range left as zeros (the size reached the disk, the data not);
 *        names: a creating open, rename, unlink, mkdir and rmdir are durable once their
 *        directory is fsynced (rename: either directory; syncfs: all). Past that, a random
 *        prefix of the remaining name operations survives, in order (a journaling file
 *        system commits metadata in order). File fsync does not make its name durable.
 *
 * The child serializes recorded calls with a mutex, so the log's order is the order in which
 * the calls ran, also with the flusher thread. Reads are not recorded (the child's reads see
 * the real files, which hold everything it wrote, as the page cache would).
 * Ownership: pc_t owns every buffer it holds; pc_free releases them.
 */
#ifndef KS_POWERCUT_H
#define KS_POWERCUT_H

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/ks_io.h"

enum { PC_OPEN = 1, PC_CLOSE, PC_WRITE, PC_TRUNC, PC_FSYNC, PC_RENAME, PC_UNLINK, PC_MKDIR,
       PC_RMDIR, PC_FSYNC_DIR, PC_SYNCFS, PC_NOTE };

typedef struct {
    int32_t op, fd, flags, created;
    int64_t off, len;
    int32_t l1, l2; /* payload: l1 bytes (path or data), then l2 bytes (second path) */
} pc_rec_t;

/* ------------------------------------------------------------------------------------------ */
/* Child: the recording seam                                                                  */

static int pc_log_fd = -1;
static atomic_int pc_steps, pc_cut_at;
static pthread_mutex_t pc_mu = PTHREAD_MUTEX_INITIALIZER;

static void pc_log(pc_rec_t r, const void *p1, const void *p2)
{
    /* Records start 8-aligned: the parent reads them in place. */
    size_t n = (sizeof r + (size_t)r.l1 + (size_t)r.l2 + 7) & ~(size_t)7;
    char *buf = calloc(1, n);
    if (!buf)
        _exit(4);
    memcpy(buf, &r, sizeof r);
    if (r.l1)
        memcpy(buf + sizeof r, p1, (size_t)r.l1);
    if (r.l2)
        memcpy(buf + sizeof r + r.l1, p2, (size_t)r.l2);
    if (write(pc_log_fd, buf, n) != (ssize_t)n)
        _exit(4);
    free(buf);
}

/* A mutating call is about to run: the cut_at-th one never does. Called under pc_mu. */
static void pc_step(void)
{
    int n = atomic_fetch_add(&pc_steps, 1) + 1;
    if (n == atomic_load(&pc_cut_at))
        _exit(0);
}

static int pc_open(const char *path, int flags, mode_t mode)
{
    pthread_mutex_lock(&pc_mu);
    struct stat st;
    bool existed = stat(path, &st) == 0;
    if ((flags & O_CREAT && !existed) || (flags & O_TRUNC && existed))
        pc_step();
    int fd = open(path, flags, mode);
    if (fd >= 0) {
        pc_rec_t r = {.op = PC_OPEN, .fd = fd, .flags = flags,
                      .created = !existed && (flags & O_CREAT), .l1 = (int32_t)strlen(path)};
        pc_log(r, path, NULL);
    }
    pthread_mutex_unlock(&pc_mu);
    return fd;
}

static int pc_close(int fd)
{
    pthread_mutex_lock(&pc_mu);
    pc_rec_t r = {.op = PC_CLOSE, .fd = fd};
    pc_log(r, NULL, NULL);
    int rc = close(fd);
    pthread_mutex_unlock(&pc_mu);
    return rc;
}

static ssize_t pc_pwrite(int fd, const void *b, size_t n, off_t off)
{
    pthread_mutex_lock(&pc_mu);
    pc_step();
    ssize_t w = pwrite(fd, b, n, off);
    if (w > 0) {
        pc_rec_t r = {.op = PC_WRITE, .fd = fd, .off = off, .len = w, .l1 = (int32_t)w};
        pc_log(r, b, NULL);
    }
    pthread_mutex_unlock(&pc_mu);
    return w;
}

static int pc_ftruncate(int fd, off_t len)
{
    pthread_mutex_lock(&pc_mu);
    pc_step();
    int rc = ftruncate(fd, len);
    if (rc == 0)
        pc_log((pc_rec_t){.op = PC_TRUNC, .fd = fd, .len = len}, NULL, NULL);
    pthread_mutex_unlock(&pc_mu);
    return rc;
}

static int pc_sync_fd(int fd, int (*fn)(int))
{
    pthread_mutex_lock(&pc_mu);
    pc_step();
    int rc = fn(fd);
    if (rc == 0)
        pc_log((pc_rec_t){.op = PC_FSYNC, .fd = fd}, NULL, NULL);
    pthread_mutex_unlock(&pc_mu);
    return rc;
}
static int pc_fsync(int fd) { return pc_sync_fd(fd, fsync); }
static int pc_fdatasync(int fd) { return pc_sync_fd(fd, fdatasync); }

static int pc_path_op(int op, const char *a, const char *b)
{
    pthread_mutex_lock(&pc_mu);
    pc_step();
    int rc;
    switch (op) {
    case PC_RENAME: rc = rename(a, b); break;
    case PC_UNLINK: rc = unlink(a); break;
    case PC_MKDIR: rc = mkdir(a, 0755); break;
    case PC_RMDIR: rc = rmdir(a); break;
    case PC_FSYNC_DIR: rc = ks_io_posix.fsync_dir(a); break;
    default: rc = ks_io_posix.syncfs(a); break;
    }
    if (rc == 0) {
        pc_rec_t r = {.op = op, .l1 = (int32_t)strlen(a), .l2 = b ? (int32_t)strlen(b) : 0};
        pc_log(r, a, b);
    }
    pthread_mutex_unlock(&pc_mu);
    return rc;
}
static int pc_rename(const char *a, const char *b) { return pc_path_op(PC_RENAME, a, b); }
static int pc_unlink(const char *a) { return pc_path_op(PC_UNLINK, a, NULL); }
static int pc_mkdir(const char *a, mode_t m) { (void)m; return pc_path_op(PC_MKDIR, a, NULL); }
static int pc_rmdir(const char *a) { return pc_path_op(PC_RMDIR, a, NULL); }
static int pc_fsync_dir(const char *a) { return pc_path_op(PC_FSYNC_DIR, a, NULL); }
static int pc_syncfs(const char *a) { return pc_path_op(PC_SYNCFS, a, NULL); }

/* In the child: a note for the parent (e.g. "offsets below `value` were acknowledged");
 * pc_t.note ends up with the last one logged before the cut. */
static __attribute__((unused)) void pc_note(int64_t value)
{
    pthread_mutex_lock(&pc_mu);
    pc_log((pc_rec_t){.op = PC_NOTE, .off = value}, NULL, NULL);
    pthread_mutex_unlock(&pc_mu);
}

/* In the child: record into log_fd; the cut_at-th mutating call ends the process (0: never). */
static __attribute__((unused)) void pc_seam_install(int log_fd, int cut_at)
{
    pc_log_fd = log_fd;
    atomic_store(&pc_steps, 0);
    atomic_store(&pc_cut_at, cut_at);
    ks_io = ks_io_posix;
    ks_io.open = pc_open;
    ks_io.close = pc_close;
    ks_io.pwrite = pc_pwrite;
    ks_io.ftruncate = pc_ftruncate;
    ks_io.fsync = pc_fsync;
    ks_io.fdatasync = pc_fdatasync;
    ks_io.rename = pc_rename;
    ks_io.unlink = pc_unlink;
    ks_io.mkdir = pc_mkdir;
    ks_io.rmdir = pc_rmdir;
    ks_io.fsync_dir = pc_fsync_dir;
    ks_io.syncfs = pc_syncfs;
}

/* ------------------------------------------------------------------------------------------ */
/* Parent: the model                                                                          */

#define PC_DIR (-2)
#define PC_NONE (-1)

typedef struct {
    uint8_t *dur; /* durable contents */
    size_t dlen;
    int *pend; /* indexes into pc_t.recs of the writes/truncations since the last fsync */
    int npend, cpend;
} pc_ino_t;

typedef struct {
    char *path;
    int ino; /* PC_DIR, PC_NONE (removed) or an inode */
} pc_ent_t;

typedef struct {
    int op; /* 'c' create/set, 'u' remove, 'r' rename (path -> path2) */
    char *path, *path2;
    int ino;
    bool done; /* made durable by a directory fsync */
} pc_nsop_t;

typedef struct {
    char root[4096];
    pc_ino_t *inos;
    int nino, cino;
    pc_ent_t *cur, *dur; /* namespaces: as the child left it, and durable */
    int ncur, ccur, ndur, cdur;
    pc_nsop_t *ops;
    int nops, cops;
    uint8_t *log; /* the child's log, owned */
    size_t loglen;
    pc_rec_t **recs; /* pointers into log */
    int nrecs;
    int64_t note; /* the last pc_note, -1 if none */
    int fd_ino[4096];
} pc_t;

#define PC_GROW(arr, n, cap)                                                                  \
    do {                                                                                      \
        if ((n) == (cap)) {                                                                   \
            (cap) = (cap) ? 2 * (cap) : 16;                                                   \
            (arr) = realloc((arr), sizeof *(arr) * (size_t)(cap));                            \
            assert_non_null(arr);                                                             \
        }                                                                                     \
    } while (0)

static int pc_find(pc_ent_t *ns, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (ns[i].ino != PC_NONE && strcmp(ns[i].path, path) == 0)
            return i;
    return -1;
}

static void pc_set(pc_ent_t **ns, int *n, int *cap, const char *path, int ino)
{
    int i = pc_find(*ns, *n, path);
    if (i >= 0) {
        (*ns)[i].ino = ino;
        return;
    }
    if (ino == PC_NONE)
        return;
    PC_GROW(*ns, *n, *cap);
    (*ns)[*n].path = strdup(path);
    (*ns)[(*n)++].ino = ino;
}

static int pc_ns_get(pc_ent_t *ns, int n, const char *path)
{
    int i = pc_find(ns, n, path);
    return i < 0 ? PC_NONE : ns[i].ino;
}

static int pc_new_ino(pc_t *pc, const uint8_t *data, size_t len)
{
    PC_GROW(pc->inos, pc->nino, pc->cino);
    pc_ino_t *in = &pc->inos[pc->nino];
    memset(in, 0, sizeof *in);
    in->dur = malloc(len ? len : 1);
    if (len)
        memcpy(in->dur, data, len);
    in->dlen = len;
    return pc->nino++;
}

static void pc_ns_apply(pc_t *pc, pc_ent_t **ns, int *n, int *cap, const pc_nsop_t *o)
{
    (void)pc;
    if (o->op == 'c')
        pc_set(ns, n, cap, o->path, o->ino);
    else if (o->op == 'u')
        pc_set(ns, n, cap, o->path, PC_NONE);
    else {
        pc_set(ns, n, cap, o->path, PC_NONE);
        pc_set(ns, n, cap, o->path2, o->ino);
    }
}

static void pc_nsop(pc_t *pc, int op, const char *a, const char *b, int ino)
{
    PC_GROW(pc->ops, pc->nops, pc->cops);
    pc_nsop_t *o = &pc->ops[pc->nops++];
    *o = (pc_nsop_t){op, strdup(a), b ? strdup(b) : NULL, ino, false};
    pc_ns_apply(pc, &pc->cur, &pc->ncur, &pc->ccur, o);
}

static void pc_walk(pc_t *pc, const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    pc_set(&pc->dur, &pc->ndur, &pc->cdur, path, PC_DIR);
    pc_set(&pc->cur, &pc->ncur, &pc->ccur, path, PC_DIR);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            pc_walk(pc, p);
            continue;
        }
        uint8_t *buf = malloc((size_t)st.st_size + 1);
        int fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        assert_true(read(fd, buf, (size_t)st.st_size) == st.st_size);
        close(fd);
        int ino = pc_new_ino(pc, buf, (size_t)st.st_size);
        free(buf);
        pc_set(&pc->dur, &pc->ndur, &pc->cdur, p, ino);
        pc_set(&pc->cur, &pc->ncur, &pc->ccur, p, ino);
    }
    closedir(d);
}

/* Everything under root is durable now. */
static __attribute__((unused)) void pc_snapshot(pc_t *pc, const char *root)
{
    memset(pc, 0, sizeof *pc);
    snprintf(pc->root, sizeof pc->root, "%s", root);
    for (int i = 0; i < 4096; i++)
        pc->fd_ino[i] = PC_NONE;
    pc->note = -1;
    pc_walk(pc, root);
}

/* Applies writes/truncations recs[from .. to) to a copy of buf. */
static uint8_t *pc_apply(pc_t *pc, const pc_ino_t *in, int upto, size_t *len)
{
    size_t n = in->dlen, cap = n + 1;
    uint8_t *b = malloc(cap);
    memcpy(b, in->dur, n);
    for (int i = 0; i < upto; i++) {
        const pc_rec_t *r = pc->recs[in->pend[i]];
        size_t end = r->op == PC_WRITE ? (size_t)(r->off + r->len) : (size_t)r->len;
        if (end + 1 > cap) {
            cap = end + 1;
            b = realloc(b, cap);
        }
        if (end > n)
            memset(b + n, 0, end - n);
        if (r->op == PC_WRITE)
            memcpy(b + r->off, (const uint8_t *)(r + 1), (size_t)r->len);
        n = r->op == PC_WRITE ? (end > n ? end : n) : end;
    }
    *len = n;
    return b;
}

static void pc_commit_ino(pc_t *pc, int ino)
{
    pc_ino_t *in = &pc->inos[ino];
    size_t n;
    uint8_t *b = pc_apply(pc, in, in->npend, &n);
    free(in->dur);
    in->dur = b;
    in->dlen = n;
    in->npend = 0;
}

static void pc_commit_dir(pc_t *pc, const char *dir, bool all)
{
    size_t dl = strlen(dir);
    for (int i = 0; i < pc->nops; i++) {
        pc_nsop_t *o = &pc->ops[i];
        bool in_dir = false;
        for (const char *p = o->path; p && !in_dir; p = p == o->path ? o->path2 : NULL) {
            const char *slash = strrchr(p, '/');
            in_dir = slash && (size_t)(slash - p) == dl && strncmp(p, dir, dl) == 0;
        }
        if (!o->done && (all || in_dir)) {
            pc_ns_apply(pc, &pc->dur, &pc->ndur, &pc->cdur, o);
            o->done = true;
        }
    }
}

static bool pc_under_root(const pc_t *pc, const char *p)
{
    size_t n = strlen(pc->root);
    return strncmp(p, pc->root, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* Replays the child's log file against the snapshot. */
static __attribute__((unused)) void pc_replay(pc_t *pc, const char *log_path)
{
    int fd = open(log_path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    pc->loglen = (size_t)st.st_size;
    pc->log = aligned_alloc(8, (pc->loglen + 8) & ~(size_t)7);
    assert_true(read(fd, pc->log, pc->loglen) == (ssize_t)pc->loglen);
    close(fd);
    int cap = 0;
    for (size_t pos = 0; pos + sizeof(pc_rec_t) <= pc->loglen;) {
        pc_rec_t *r = (pc_rec_t *)(pc->log + pos);
        pos += (sizeof *r + (size_t)r->l1 + (size_t)r->l2 + 7) & ~(size_t)7;
        assert_true(pos <= pc->loglen);
        PC_GROW(pc->recs, pc->nrecs, cap);
        pc->recs[pc->nrecs++] = r;
    }
    for (int i = 0; i < pc->nrecs; i++) {
        pc_rec_t *r = pc->recs[i];
        char a[4096] = "", b[4096] = "";
        if (r->op != PC_WRITE && r->l1) {
            memcpy(a, r + 1, (size_t)r->l1);
            a[r->l1] = '\0';
            while (strlen(a) > 1 && a[strlen(a) - 1] == '/')
                a[strlen(a) - 1] = '\0';
        }
        if (r->l2) {
            memcpy(b, (char *)(r + 1) + r->l1, (size_t)r->l2);
            b[r->l2] = '\0';
        }
        if (r->op == PC_NOTE) {
            pc->note = r->off;
            continue;
        }
        bool mine = r->op == PC_WRITE || r->op == PC_TRUNC || r->op == PC_FSYNC ||
                    r->op == PC_CLOSE || r->op == PC_SYNCFS || pc_under_root(pc, a);
        if (!mine)
            continue;
        int ino = r->fd >= 0 && r->fd < 4096 ? pc->fd_ino[r->fd] : PC_NONE;
        switch (r->op) {
        case PC_OPEN:
            assert_true(r->fd < 4096);
            ino = pc_ns_get(pc->cur, pc->ncur, a);
            if (r->created || ino < 0) {
                ino = pc_new_ino(pc, NULL, 0);
                pc_nsop(pc, 'c', a, NULL, ino);
            } else if (r->flags & O_TRUNC) {
                pc_ino_t *in = &pc->inos[ino];
                PC_GROW(in->pend, in->npend, in->cpend);
                r->op = PC_TRUNC; /* the record becomes the truncation to 0 */
                r->len = 0;
                in->pend[in->npend++] = i;
            }
            pc->fd_ino[r->fd] = ino;
            break;
        case PC_CLOSE:
            if (r->fd >= 0 && r->fd < 4096)
                pc->fd_ino[r->fd] = PC_NONE;
            break;
        case PC_WRITE:
        case PC_TRUNC:
            if (ino >= 0) {
                pc_ino_t *in = &pc->inos[ino];
                PC_GROW(in->pend, in->npend, in->cpend);
                in->pend[in->npend++] = i;
            }
            break;
        case PC_FSYNC:
            if (ino >= 0)
                pc_commit_ino(pc, ino);
            break;
        case PC_RENAME:
            ino = pc_ns_get(pc->cur, pc->ncur, a);
            if (ino != PC_NONE)
                pc_nsop(pc, 'r', a, b, ino);
            break;
        case PC_UNLINK:
        case PC_RMDIR:
            pc_nsop(pc, 'u', a, NULL, PC_NONE);
            break;
        case PC_MKDIR:
            pc_nsop(pc, 'c', a, NULL, PC_DIR);
            break;
        case PC_FSYNC_DIR:
            pc_commit_dir(pc, a, false);
            break;
        case PC_SYNCFS:
            for (int k = 0; k < pc->nino; k++)
                pc_commit_ino(pc, k);
            pc_commit_dir(pc, "", true);
            break;
        }
    }
}

static int pc_cmp_ent(const void *a, const void *b)
{
    return strcmp(((const pc_ent_t *)a)->path, ((const pc_ent_t *)b)->path);
}

/* Writes one post-cut state under root (replacing what is there). Returns the number of
 * pending name operations and file changes that were dropped, for the caller's figures. */
static __attribute__((unused)) int pc_materialize(pc_t *pc, unsigned *seed)
{
    int lost = 0;
    /* Names: durable + a random prefix of the rest, in order. */
    int npend = 0;
    for (int i = 0; i < pc->nops; i++)
        npend += !pc->ops[i].done;
    int keep = npend ? (int)(rand_r(seed) % (unsigned)(npend + 1)) : 0;
    lost += npend - keep;
    for (int i = 0, k = 0; i < pc->nops && k < keep; i++)
        if (!pc->ops[i].done) {
            pc_ns_apply(pc, &pc->dur, &pc->ndur, &pc->cdur, &pc->ops[i]);
            k++;
        }
    t_rm_rf(pc->root);
    qsort(pc->dur, (size_t)pc->ndur, sizeof *pc->dur, pc_cmp_ent); /* parents first */
    for (int i = 0; i < pc->ndur; i++) {
        pc_ent_t *e = &pc->dur[i];
        if (e->ino == PC_NONE)
            continue;
        if (e->ino == PC_DIR) {
            if (mkdir(e->path, 0755) != 0)
                lost++; /* its parent did not survive */
            continue;
        }
        pc_ino_t *in = &pc->inos[e->ino];
        int mode = (int)(rand_r(seed) % 4), upto = in->npend;
        if (mode == 0)
            upto = 0;
        else if (mode >= 2 && in->npend)
            upto = (int)(rand_r(seed) % (unsigned)(in->npend + 1));
        size_t n;
        uint8_t *b = pc_apply(pc, in, upto, &n);
        if (upto < in->npend && pc->recs[in->pend[upto]]->op == PC_WRITE) {
            const pc_rec_t *r = pc->recs[in->pend[upto]];
            size_t end = (size_t)(r->off + r->len), torn = (size_t)r->off;
            if (mode == 2)
                torn += rand_r(seed) % (unsigned)(r->len + 1);
            else if (mode == 3)
                torn = end;
            if (torn > n) {
                b = realloc(b, torn);
                memset(b + n, 0, torn - n);
            }
            if (mode == 2)
                memcpy(b + r->off, (const uint8_t *)(r + 1), torn - (size_t)r->off);
            if (torn > n)
                n = torn;
        }
        lost += in->npend - upto;
        int fd = open(e->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            lost++; /* its directory did not survive */
        } else {
            assert_true(write(fd, b, n) == (ssize_t)n);
            close(fd);
        }
        free(b);
    }
    return lost;
}

static __attribute__((unused)) void pc_free(pc_t *pc)
{
    for (int i = 0; i < pc->nino; i++) {
        free(pc->inos[i].dur);
        free(pc->inos[i].pend);
    }
    for (int i = 0; i < pc->ncur; i++)
        free(pc->cur[i].path);
    for (int i = 0; i < pc->ndur; i++)
        free(pc->dur[i].path);
    for (int i = 0; i < pc->nops; i++) {
        free(pc->ops[i].path);
        free(pc->ops[i].path2);
    }
    free(pc->inos);
    free(pc->cur);
    free(pc->dur);
    free(pc->ops);
    free(pc->recs);
    free(pc->log);
}

#endif

/*
 * Shared helpers for the storage tests (header-only; each test binary includes it once).
 * Temp dirs, a store with test-friendly options, batch building, and the fault-injecting
 * I/O seam (compiled only into test binaries).
 */
#ifndef KS_TEST_H
#define KS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol/kp_batch.h"
#include "storage/ks.h"
#include "storage/ks_io.h"

/* ------------------------------------------------------------------------------------------ */
/* Logging and completions                                                                     */

static int t_log_errors, t_log_warns;
static int t_verbose = -1;

static __attribute__((unused)) void t_log(int level, const char *msg, void *ud)
{
    (void)ud;
    if (level == 0)
        t_log_errors++;
    if (level == 1)
        t_log_warns++;
    if (t_verbose < 0)
        t_verbose = getenv("KS_TEST_VERBOSE") != NULL;
    if (t_verbose)
        fprintf(stderr, "  [ks %d] %s\n", level, msg);
}

static atomic_int t_sync_ready;
static __attribute__((unused)) void t_on_sync_ready(void *ud)
{
    (void)ud;
    atomic_fetch_add(&t_sync_ready, 1);
}

typedef struct {
    int calls;
    int status;
} t_sync_t;

static __attribute__((unused)) void t_sync_cb(void *arg, int status)
{
    t_sync_t *w = arg;
    w->calls++;
    w->status = status;
}

/* Runs completions until every waiter in ws has been called (or 10 s pass). */
static __attribute__((unused)) void t_wait_syncs(ks_store_t *s, t_sync_t *ws, int n)
{
    for (int tries = 0; tries < 10000; tries++) {
        ks_store_run_completions(s);
        int done = 0;
        for (int i = 0; i < n; i++)
            done += ws[i].calls > 0;
        if (done == n)
            return;
        usleep(1000);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Directories                                                                                 */

static __attribute__((unused)) void t_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR)
            t_rm_rf(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

static const char *t_tmp_base = "/tmp";

static char *t_mkdtemp(void)
{
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/ks-test-XXXXXX", t_tmp_base);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* A live segment file (not one renamed to *.deleted for removal). */
static __attribute__((unused)) bool t_is_log(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".log") == 0;
}

static __attribute__((unused)) int64_t t_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Store                                                                                       */

typedef struct {
    char *dir;
    const char *dirs[1];
    ks_store_opts_t o;
    ks_store_t *s;
} t_env_t;

static __attribute__((unused)) void t_env_init(t_env_t *e)
{
    memset(e, 0, sizeof *e);
    e->dir = t_mkdtemp();
    e->dirs[0] = e->dir;
    e->o.dirs = e->dirs;
    e->o.n_dirs = 1;
    e->o.max_open_files = 64;
    e->o.node_id = 1;
    ks_topic_config_default(&e->o.defaults);
    e->o.log = t_log;
    e->o.on_sync_ready = t_on_sync_ready;
}

static __attribute__((unused)) void t_env_open(t_env_t *e)
{
    assert_int_equal(ks_store_open(&e->o, &e->s), 0);
}

static __attribute__((unused)) void t_env_close(t_env_t *e)
{
    ks_store_close(e->s);
    e->s = NULL;
}

static __attribute__((unused)) void t_env_reopen(t_env_t *e)
{
    t_env_close(e);
    t_env_open(e);
}

/* Simulates a crash after a clean close: the marker goes, so the next open recovers. */
static __attribute__((unused)) void t_env_unclean(t_env_t *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.depot-clean-shutdown", e->dir);
    assert_int_equal(unlink(path), 0);
}

static __attribute__((unused)) void t_env_deinit(t_env_t *e)
{
    if (e->s)
        t_env_close(e);
    t_rm_rf(e->dir);
    free(e->dir);
}

static __attribute__((unused)) ks_part_t *t_topic(t_env_t *e, const char *name, int32_t parts, ks_topic_config_t *cfg)
{
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e->s, name, parts, cfg, &t), 0);
    return ks_topic_part(t, 0);
}

static __attribute__((unused)) ks_part_t *t_part(t_env_t *e, const char *name, int32_t i)
{
    ks_topic_t *t = ks_topic_find(e->s, name, strlen(name));
    assert_non_null(t);
    return ks_topic_part(t, i);
}

/* ------------------------------------------------------------------------------------------ */
/* Batches                                                                                     */

/* One batch of nrec records with value "v<i>" padded to vsize bytes, timestamp ts. */
static __attribute__((unused)) void t_batch(kp_buf_t *out, int nrec, int64_t ts, size_t vsize)
{
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    char v[4096];
    if (vsize > sizeof v)
        vsize = sizeof v;
    for (int i = 0; i < nrec; i++) {
        memset(v, 'a' + i % 26, vsize);
        kp_bytes_t key = {NULL, -1};
        kp_bytes_t val = {(const uint8_t *)v, (int32_t)vsize};
        assert_int_equal(kp_batch_builder_add(&bb, ts, key, val, NULL, 0), 0);
    }
    assert_int_equal(kp_batch_builder_finish(&bb, out), 0);
    kp_batch_builder_deinit(&bb);
}

/* Appends one batch; returns its base offset. */
static __attribute__((unused)) int64_t t_append(ks_part_t *p, int nrec, int64_t ts, size_t vsize)
{
    kp_buf_t b;
    kp_buf_init(&b);
    t_batch(&b, nrec, ts, vsize);
    ks_append_result_t res;
    int rc = ks_part_append(p, b.data, b.len, ts, &res);
    kp_buf_deinit(&b);
    assert_int_equal(rc, 0);
    assert_int_equal(res.last_offset - res.base_offset + 1, nrec);
    return res.base_offset;
}

static __attribute__((unused)) int t_append_rc(ks_part_t *p, int nrec, int64_t ts, size_t vsize)
{
    kp_buf_t b;
    kp_buf_init(&b);
    t_batch(&b, nrec, ts, vsize);
    ks_append_result_t res;
    int rc = ks_part_append(p, b.data, b.len, ts, &res);
    kp_buf_deinit(&b);
    return rc;
}

/* Reads at offset; checks the result is whole valid batches, the first holding offset.
 * Returns the number of batches; *first_base gets the first batch's base offset. */
static __attribute__((unused)) int t_read_check(ks_part_t *p, int64_t offset, size_t max, bool min_one,
                        int64_t *first_base)
{
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, offset, max, min_one, &out), 0);
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    int n = 0, rc;
    int64_t expect = -1;
    kp_batch_iter_init(&it, out.data, out.len, true);
    while ((rc = kp_batch_iter_next(&it, &b, &blen)) == 1) {
        kp_batch_hdr_t h;
        assert_int_equal(kp_batch_validate(b, blen, &h), 0);
        if (n == 0) {
            assert_true(h.base_offset <= offset);
            assert_true(h.base_offset + h.last_offset_delta >= offset);
            if (first_base)
                *first_base = h.base_offset;
        } else {
            assert_true(h.base_offset == expect);
        }
        expect = h.base_offset + h.last_offset_delta + 1;
        n++;
    }
    assert_int_equal(rc, 0);
    kp_buf_deinit(&out);
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Fault injection through the seam                                                           */

enum { KF_PWRITE, KF_FDATASYNC, KF_FSYNC, KF_RENAME, KF_FTRUNCATE, KF_OPEN, KF_PREAD, KF_N };
static atomic_llong kf_pread_bytes;
static atomic_int kf_countdown[KF_N]; /* >0: the call that brings it to 0 fails */
static int kf_err[KF_N];
static bool kf_sticky[KF_N]; /* keep failing after the first failure until kf_clear */
static atomic_int kf_failing[KF_N];
static atomic_int kf_calls[KF_N];
static atomic_int kf_sync_delay_us;

static __attribute__((unused)) bool kf_hit(int op)
{
    atomic_fetch_add(&kf_calls[op], 1);
    if (atomic_load(&kf_failing[op]))
        return true;
    if (atomic_load(&kf_countdown[op]) > 0 && atomic_fetch_sub(&kf_countdown[op], 1) == 1) {
        if (kf_sticky[op])
            atomic_store(&kf_failing[op], 1);
        return true;
    }
    return false;
}

static __attribute__((unused)) ssize_t kf_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (kf_hit(KF_PWRITE)) {
        /* A disk that fills mid-write: half the bytes land, then the error. */
        if (n > 1)
            (void)pwrite(fd, buf, n / 2, off);
        errno = kf_err[KF_PWRITE];
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

static ssize_t kf_pread(int fd, void *buf, size_t n, off_t off)
{
    if (kf_hit(KF_PREAD)) {
        errno = kf_err[KF_PREAD];
        return -1;
    }
    ssize_t r = pread(fd, buf, n, off);
    if (r > 0)
        atomic_fetch_add(&kf_pread_bytes, r);
    return r;
}

static __attribute__((unused)) int kf_fdatasync(int fd)
{
    int d = atomic_load(&kf_sync_delay_us);
    if (d)
        usleep((useconds_t)d);
    if (kf_hit(KF_FDATASYNC)) {
        errno = kf_err[KF_FDATASYNC];
        return -1;
    }
    return fdatasync(fd);
}

static __attribute__((unused)) int kf_fsync(int fd)
{
    if (kf_hit(KF_FSYNC)) {
        errno = kf_err[KF_FSYNC];
        return -1;
    }
    return fsync(fd);
}

static __attribute__((unused)) int kf_rename(const char *a, const char *b)
{
    if (kf_hit(KF_RENAME)) {
        errno = kf_err[KF_RENAME];
        return -1;
    }
    return rename(a, b);
}

static __attribute__((unused)) int kf_ftruncate(int fd, off_t len)
{
    if (kf_hit(KF_FTRUNCATE)) {
        errno = kf_err[KF_FTRUNCATE];
        return -1;
    }
    return ftruncate(fd, len);
}

static __attribute__((unused)) int kf_open(const char *path, int flags, mode_t mode)
{
    if (kf_hit(KF_OPEN)) {
        errno = kf_err[KF_OPEN];
        return -1;
    }
    return ks_io_posix.open(path, flags, mode);
}

static __attribute__((unused)) void kf_clear(void)
{
    for (int i = 0; i < KF_N; i++) {
        atomic_store(&kf_countdown[i], 0);
        atomic_store(&kf_failing[i], 0);
        atomic_store(&kf_calls[i], 0);
        kf_sticky[i] = false;
    }
    atomic_store(&kf_sync_delay_us, 0);
    atomic_store(&kf_pread_bytes, 0);
}

static __attribute__((unused)) void kf_install(void)
{
    kf_clear();
    ks_io = ks_io_posix;
    ks_io.pwrite = kf_pwrite;
    ks_io.fdatasync = kf_fdatasync;
    ks_io.fsync = kf_fsync;
    ks_io.rename = kf_rename;
    ks_io.ftruncate = kf_ftruncate;
    ks_io.open = kf_open;
    ks_io.pread = kf_pread;
}

static __attribute__((unused)) void kf_uninstall(void)
{
    kf_clear();
    ks_io = ks_io_posix;
}

/* The nth call of op from now fails with err (sticky: and every call after it). */
static __attribute__((unused)) void kf_fail_nth(int op, int nth, int err, bool sticky)
{
    kf_err[op] = err;
    kf_sticky[op] = sticky;
    atomic_store(&kf_failing[op], 0);
    atomic_store(&kf_countdown[op], nth);
}

#endif

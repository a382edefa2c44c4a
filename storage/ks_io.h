/*
 * The storage I/O seam: every system call the storage engine makes on files and directories
 * goes through the function pointers in ks_io (SQLite's VFS habit), so tests can make any of
 * them fail (ENOSPC on the Nth write, EIO on an fsync, ...) and check what the engine does.
 *
 * Production uses the POSIX table as is. Fault injection is not compiled into the library:
 * a test installs its own wrappers (tests/storage/ks_fault.h) by assigning to ks_io before
 * ks_store_open and restores ks_io_posix afterwards.
 *
 * Threads: the table is read by the loop thread and the flusher thread; change it only while
 * no store is open. Each call keeps POSIX semantics: -1 and errno on failure.
 */
#ifndef KS_IO_H
#define KS_IO_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*fstat)(int fd, struct stat *st);
    int (*stat)(const char *path, struct stat *st);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*rmdir)(const char *path);
    int (*fsync_dir)(const char *path); /* open(O_DIRECTORY) + fsync + close */
    int (*syncfs)(const char *path);    /* syncfs(2) of the filesystem holding path */
} ks_io_t;

extern const ks_io_t ks_io_posix;
extern ks_io_t ks_io; /* the table in use; starts as a copy of ks_io_posix */

/* Whole-buffer helpers over the seam: loop on short transfers and EINTR. Return 0 or -1 with
 * errno set; a read that hits end of file sets errno to EIO (the caller asked for bytes that
 * must exist). */
int ks_io_pwrite_all(int fd, const void *buf, size_t n, off_t off);
int ks_io_pread_all(int fd, void *buf, size_t n, off_t off);

/* Tests only: every fsync and directory fsync through the seam sleeps ms first (a slow flash
 * chip; fdatasync, the flusher's, is left alone). The broker installs it when the environment
 * has DEPOT_TEST_SLOW_FSYNC_MS (broker/main.c), for the e2e latency tests. Call before any
 * store is open; ms <= 0 does nothing. */
void ks_io_slow_syncs(int ms);

#endif

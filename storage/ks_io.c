/* The POSIX implementation of the storage I/O seam (see ks_io.h). */
#include "storage/ks_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int posix_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags | O_CLOEXEC, mode);
}

static int posix_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int posix_syncfs(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int posix_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode);
}

const ks_io_t ks_io_posix = {
    .open = posix_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = ftruncate,
    .fstat = fstat,
    .stat = stat,
    .rename = rename,
    .unlink = unlink,
    .mkdir = posix_mkdir,
    .rmdir = rmdir,
    .fsync_dir = posix_fsync_dir,
    .syncfs = posix_syncfs,
};

ks_io_t ks_io = {
    .open = posix_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = ftruncate,
    .fstat = fstat,
    .stat = stat,
    .rename = rename,
    .unlink = unlink,
    .mkdir = posix_mkdir,
    .rmdir = rmdir,
    .fsync_dir = posix_fsync_dir,
    .syncfs = posix_syncfs,
};

int ks_io_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = ks_io.pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int ks_io_pread_all(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = ks_io.pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* A slow flash chip, for latency tests                                                         */

static int slow_ms;

static void slow_sleep(void)
{
    struct timespec ts = {slow_ms / 1000, (long)(slow_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int slow_fsync(int fd)
{
    slow_sleep();
    return fsync(fd);
}

static int slow_fsync_dir(const char *path)
{
    slow_sleep();
    return posix_fsync_dir(path);
}

void ks_io_slow_syncs(int ms)
{
    if (ms <= 0)
        return;
    slow_ms = ms;
    ks_io.fsync = slow_fsync;
    ks_io.fsync_dir = slow_fsync_dir;
}

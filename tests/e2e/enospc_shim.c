/*
 * Test-only LD_PRELOAD shim for test_fault_disk_full.py when no tmpfs can be mounted (not
 * root): while the file named by $DEPOT_ENOSPC_FLAG exists, every pwrite on a regular file
 * behaves like a filling disk: it writes half of what it was asked (a short write) and fails
 * with ENOSPC once asked for a single byte. Nothing of this is linked into Depot; the test
 * compiles it with cc into its temp dir.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static int full(int fd)
{
    const char *flag = getenv("DEPOT_ENOSPC_FLAG");
    struct stat st;
    if (!flag || access(flag, F_OK) != 0)
        return 0;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn real;
    if (!real)
        real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    if (n > 0 && full(fd)) {
        if (n == 1) {
            errno = ENOSPC;
            return -1;
        }
        return real(fd, buf, n / 2, off);
    }
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

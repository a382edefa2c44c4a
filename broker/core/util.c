/* Handler helpers behind util.h. */
#include "broker/core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "storage/ks_io.h"

bool kb_str_copy(kp_str_t s, char *buf, size_t len)
{
    if (s.len < 0 || (size_t)s.len >= len) return false;
    if (s.len) memcpy(buf, s.ptr, (size_t)s.len);
    buf[s.len] = 0;
    return true;
}

kp_str_t kb_arena_printf(kp_arena_t *a, const char *fmt, ...)
{
    kp_str_t out = {NULL, -1};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return out;
    char *p = kp_arena_alloc(a, (size_t)n + 1);
    if (!p) return out;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out.ptr = p;
    out.len = n;
    return out;
}

char *kb_arena_strdup(kp_arena_t *a, const char *s)
{
    size_t n = strlen(s);
    char *p = kp_arena_alloc(a, n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

bool kb_topic_internal(const char *name, size_t len)
{
    static const char *const internal[] = {KB_CONSUMER_OFFSETS_TOPIC, "_schemas", "__audit"};
    for (size_t i = 0; name && i < sizeof internal / sizeof internal[0]; i++)
        if (strlen(internal[i]) == len && memcmp(internal[i], name, len) == 0)
            return true;
    return false;
}

int kb_write_file_durably(const char *dir, const char *name, const void *data, size_t len,
                          int *err, const char **what)
{
    return kb_write_file_durably_mode(dir, name, data, len, 0644, err, what);
}

int kb_write_file_durably_mode(const char *dir, const char *name, const void *data, size_t len,
                               int mode, int *err, const char **what)
{
    char tmp[4200], dst[4200];
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        *err = ENAMETOOLONG;
        *what = "path";
        return K_ERR_INVAL;
    }
    *what = "create";
    int fd = ks_io.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) goto fail;
    *what = "write";
    bool ok = ks_io_pwrite_all(fd, data, len, 0) == 0;
    if (ok) *what = "fsync";
    ok = ok && ks_io.fsync(fd) == 0;
    int e = errno;
    ks_io.close(fd);
    errno = e;
    if (!ok) goto fail_tmp;
    *what = "rename";
    if (ks_io.rename(tmp, dst) != 0) goto fail_tmp;
    *what = "directory fsync";
    if (ks_io.fsync_dir(dir) != 0) goto fail;
    return 0;
fail_tmp:
    e = errno;
    ks_io.unlink(tmp);
    errno = e;
fail:
    *err = errno;
    return K_ERR_IO;
}

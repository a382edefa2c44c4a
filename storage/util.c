/*
 * Small-file helpers: atomic replace (write tmp + fsync + rename + dir fsync), whole-file
 * read, "key=value" lookup, recursive delete and base64url (Kafka's id text form).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/ks_int.h"

int ks_write_atomic(ks_store_t *s, const char *dir, const char *name, const void *data,
                    size_t len)
{
    char tmp[KS_PATH_MAX], dst[KS_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    const char *what = "open";
    int fd = ks_io.open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        goto fail;
    what = "write";
    if (ks_io_pwrite_all(fd, data, len, 0) != 0)
        goto fail_fd;
    what = "fsync";
    if (ks_io.fsync(fd) != 0)
        goto fail_fd;
    ks_io.close(fd);
    what = "rename";
    if (ks_io.rename(tmp, dst) != 0)
        goto fail;
    what = "fsync dir";
    if (ks_io.fsync_dir(dir) != 0)
        goto fail;
    return 0;
fail_fd: {
    int e = errno;
    ks_io.close(fd);
    errno = e;
}
fail: {
    int e = errno;
    if (s) {
        s->st.io_errors++;
        ks_log(s, KS_LOG_ERROR, "%s: %s failed: %s", dst, what, strerror(e));
    }
    if (strcmp(what, "rename") != 0 && strcmp(what, "fsync dir") != 0)
        ks_io.unlink(tmp);
    return ks_errno_status(e);
}
}

int ks_read_small(const char *path, char **data, size_t *len)
{
    int fd = ks_io.open(path, O_RDONLY, 0);
    if (fd < 0)
        return errno == ENOENT ? K_ERR_NOENT : K_ERR_IO;
    struct stat st;
    if (ks_io.fstat(fd, &st) != 0 || st.st_size > (64 << 20)) {
        ks_io.close(fd);
        return K_ERR_IO;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        ks_io.close(fd);
        return K_ERR_NOMEM;
    }
    if (ks_io_pread_all(fd, buf, (size_t)st.st_size, 0) != 0) {
        free(buf);
        ks_io.close(fd);
        return K_ERR_IO;
    }
    ks_io.close(fd);
    buf[st.st_size] = '\0';
    *data = buf;
    if (len)
        *len = (size_t)st.st_size;
    return 0;
}

int ks_props_get(const char *text, const char *key, char *val, size_t vlen)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > klen && line[0] != '#' && memcmp(line, key, klen) == 0 && line[klen] == '=') {
            size_t m = n - klen - 1;
            if (m > 0 && line[klen + 1 + m - 1] == '\r')
                m--;
            if (m >= vlen)
                return K_ERR_TOOLARGE;
            memcpy(val, line + klen + 1, m);
            val[m] = '\0';
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return K_ERR_NOENT;
}

int ks_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d && errno == ENOTDIR)
        return ks_io.unlink(path) == 0 || errno == ENOENT ? 0 : K_ERR_IO;
    if (!d)
        return errno == ENOENT ? 0 : K_ERR_IO;
    int rc = 0;
    struct dirent *e;
    char sub[KS_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR) {
            if (ks_rm_rf(sub) != 0)
                rc = K_ERR_IO;
        } else if (ks_io.unlink(sub) != 0 && errno != ENOENT) {
            rc = K_ERR_IO;
        }
    }
    closedir(d);
    if (ks_io.rmdir(path) != 0 && errno != ENOENT)
        rc = K_ERR_IO;
    return rc;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ks_base64url(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

int ks_base64url_decode(const char *in, uint8_t *out, size_t n)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        const char *q = strchr(b64, *p);
        if (!q)
            return K_ERR_INVAL;
        acc = (acc << 6) | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= n)
                return K_ERR_INVAL;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == n ? 0 : K_ERR_INVAL;
}

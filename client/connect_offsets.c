/*
 * The source connectors' offset file (offset.storage.file.filename). Text, one line per
 * (connector, source file):
 *
 *   <connector name> TAB <inode, decimal> TAB <byte position, decimal> TAB <file path> LF
 *
 * Names and paths with a tab or newline are not stored (the connector then keeps no offset,
 * and says so). Kafka's own file holds a Java-serialized map, which nothing outside a JVM can
 * write; this one is not compatible with it, and it does not need to be.
 *
 * A write replaces the whole file atomically: write "<file>.tmp", fsync, rename over the old
 * one, fsync the directory. A crash leaves either the old or the new file.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/connect.h"
#include "protocol/k_status.h"

static bool storable(const char *s)
{
    return s && !strpbrk(s, "\t\n\r");
}

/* Whole file into a NUL-terminated buffer (NULL + K_ERR_NOENT if there is none). */
static int slurp(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? K_ERR_NOENT : K_ERR_IO;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return K_ERR_NOMEM;
    buf[len] = 0;
    *out = buf;
    return 0;
}

/* Parses one line in place; true if it is well formed. */
static bool parse_line(char *line, char **name, uint64_t *inode, int64_t *pos, char **file)
{
    char *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = line;
        if (i < 3) {
            line = strchr(line, '\t');
            if (!line) return false;
            *line++ = 0;
        }
    }
    char *e1, *e2;
    *inode = strtoull(f[1], &e1, 10);
    *pos = strtoll(f[2], &e2, 10);
    *name = f[0];
    *file = f[3];
    return *f[1] && *f[2] && !*e1 && !*e2 && *pos >= 0;
}

int kc_offset_file_read(const char *path, const char *connector, const char *file, uint64_t *inode,
                        int64_t *position)
{
    char *buf;
    int rc = slurp(path, &buf);
    if (rc) return rc;
    rc = K_ERR_NOENT;
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *name, *f;
        uint64_t ino;
        int64_t pos;
        if (parse_line(line, &name, &ino, &pos, &f) && !strcmp(name, connector) &&
            !strcmp(f, file)) {
            *inode = ino;
            *position = pos;
            rc = 0;
        }
    }
    free(buf);
    return rc;
}

static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return K_ERR_NOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return K_ERR_IO;
    int rc = fsync(fd) ? K_ERR_IO : 0;
    close(fd);
    return rc;
}

int kc_offset_file_write(const char *path, const char *connector, const char *file, uint64_t inode,
                         int64_t position)
{
    if (!storable(connector) || !storable(file)) return K_ERR_INVAL;
    char *old;
    int rc = slurp(path, &old);
    if (rc && rc != K_ERR_NOENT) return rc;
    size_t tlen = strlen(path) + 5;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(old);
        return K_ERR_NOMEM;
    }
    snprintf(tmp, tlen, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    rc = f ? 0 : K_ERR_IO;
    for (char *line = old, *next; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *name, *fl;
        uint64_t ino;
        int64_t pos;
        if (!parse_line(line, &name, &ino, &pos, &fl)) continue;
        if (!strcmp(name, connector) && !strcmp(fl, file)) continue;
        fprintf(f, "%s\t%llu\t%lld\t%s\n", name, (unsigned long long)ino, (long long)pos, fl);
    }
    if (!rc) {
        fprintf(f, "%s\t%llu\t%lld\t%s\n", connector, (unsigned long long)inode,
                (long long)position, file);
        if (fflush(f) || fsync(fileno(f))) rc = K_ERR_IO;
    }
    if (f && fclose(f)) rc = K_ERR_IO;
    if (!rc && rename(tmp, path)) rc = K_ERR_IO;
    if (!rc) rc = fsync_dir(path);
    if (rc) unlink(tmp);
    free(tmp);
    free(old);
    return rc;
}

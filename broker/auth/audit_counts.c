/* The access counters that survive a kill -9 (see audit_counts.h). */
#include "broker/auth/audit_counts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker/kb.h"

#define MAGIC "DPTACNT1"
#define KEY_MAX 480
#define CTX_MAX 512

/* 1 KiB, at offset 1024 * (index + 1); the first KiB is the header (magic). Written in place
 * by the loop thread only; read back only at the next start. */
typedef struct {
    uint64_t count;  /* accesses since the last summary record */
    int64_t pending; /* offset of this slot's summary record while it is appended, else -1 */
    uint32_t used;   /* 1: in use */
    int32_t op, res;
    uint16_t key_len, ctx_len;
    char key[KEY_MAX];
    char ctx[CTX_MAX];
} slot_t;

_Static_assert(sizeof(slot_t) == 1024, "slot layout");

struct kb_acounts {
    int fd;
    uint8_t *map; /* KB_ACOUNTS_SLOTS + 1 KiB, MAP_SHARED */
    size_t len;
    int next_free; /* hint for alloc */
};

static slot_t *slot_at(kb_acounts_t *c, int i)
{
    return (slot_t *)(c->map + 1024 * (size_t)(i + 1));
}

int kb_acounts_open(const char *dir, kb_acounts_t **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, KB_ACOUNTS_FILE);
    size_t len = 1024 * (size_t)(KB_ACOUNTS_SLOTS + 1);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return K_ERR_IO;
    /* A new file, or one that is not ours, starts empty. ftruncate keeps it sparse: untouched
     * slots take no space on the flash. */
    char magic[8] = {0};
    bool ours = pread(fd, magic, 8, 0) == 8 && !memcmp(magic, MAGIC, 8);
    if ((!ours && ftruncate(fd, 0) != 0) || ftruncate(fd, (off_t)len) != 0) {
        close(fd);
        return K_ERR_IO;
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return K_ERR_NOMEM;
    }
    kb_acounts_t *c = calloc(1, sizeof *c); /* owned by the caller until kb_acounts_close */
    if (!c) {
        munmap(m, len);
        close(fd);
        return K_ERR_NOMEM;
    }
    c->fd = fd;
    c->map = m;
    c->len = len;
    if (!ours) memcpy(c->map, MAGIC, 8);
    *out = c;
    return 0;
}

void kb_acounts_close(kb_acounts_t *c)
{
    if (!c) return;
    munmap(c->map, c->len);
    close(c->fd);
    free(c);
}

int kb_acounts_recover(kb_acounts_t *c, int64_t log_end, kb_acounts_fn fn, void *ud)
{
    int n = 0;
    for (int i = 0; i < KB_ACOUNTS_SLOTS; i++) {
        slot_t *s = slot_at(c, i);
        if (!s->used) continue;
        bool written = s->pending >= 0 && log_end > s->pending; /* died after the append */
        if (!written && s->count > 0 && s->key_len <= KEY_MAX && s->ctx_len <= CTX_MAX) {
            char key[KEY_MAX + 1], ctx[CTX_MAX + 1];
            memcpy(key, s->key, s->key_len);
            key[s->key_len] = 0;
            memcpy(ctx, s->ctx, s->ctx_len);
            ctx[s->ctx_len] = 0;
            s->pending = log_end;
            int rc = fn(ud, s->op, s->res, key, ctx, s->count);
            if (rc < 0) {
                s->pending = -1; /* not written: left for the next start */
                return rc;
            }
            log_end++;
            n++;
        }
        memset(s, 0, sizeof *s);
    }
    return n;
}

int kb_acounts_alloc(kb_acounts_t *c, int op, int res, const char *key)
{
    size_t kl = strlen(key);
    if (!c || kl > KEY_MAX) return -1;
    for (int k = 0; k < KB_ACOUNTS_SLOTS; k++) {
        int i = (c->next_free + k) % KB_ACOUNTS_SLOTS;
        slot_t *s = slot_at(c, i);
        if (s->used) continue;
        s->count = 0;
        s->pending = -1;
        s->op = op;
        s->res = res;
        s->key_len = (uint16_t)kl;
        memcpy(s->key, key, kl);
        s->ctx_len = 0;
        s->used = 1; /* last: a slot is only read back once it is whole */
        c->next_free = (i + 1) % KB_ACOUNTS_SLOTS;
        return i;
    }
    return -1;
}

void kb_acounts_set(kb_acounts_t *c, int slot, uint64_t count, const char *ctx)
{
    if (!c || slot < 0) return;
    slot_t *s = slot_at(c, slot);
    size_t cl = strlen(ctx);
    if (cl > CTX_MAX) cl = CTX_MAX;
    memcpy(s->ctx, ctx, cl);
    s->ctx_len = (uint16_t)cl;
    s->count = count;
}

void kb_acounts_begin(kb_acounts_t *c, int slot, int64_t offset)
{
    if (c && slot >= 0) slot_at(c, slot)->pending = offset;
}

void kb_acounts_done(kb_acounts_t *c, int slot)
{
    if (!c || slot < 0) return;
    slot_t *s = slot_at(c, slot);
    s->count = 0;
    s->pending = -1;
}

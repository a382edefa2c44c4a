/*
 * FileStreamSource: tails a file and produces each complete line (without its "\n" or
 * "\r\n") as one record with a null key, acks=all.
 *
 * Delivery: a line's position goes into the offset file only after the broker acknowledged
 * it; after a restart reading resumes there, so lines acknowledged after the last offset write
 * are sent again (at-least-once; the re-sent lines are a contiguous run). A failed send
 * rewinds to the last acknowledged line and retries after a pause.
 *
 * Rotation and truncation are detected at end of file: another inode under the path (rotated:
 * the old file was read to its end, the new one is read from 0), or a size below the position
 * (truncated in place: read from 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/connect_int.h"

#define READ_CHUNK (256 * 1024)
#define RETRY_PAUSE_MS 500

static void save_offset(kc_task_t *t, bool force)
{
    if (!t->w->offset_file || t->acked_pos == t->saved_pos || !t->cfg.file) return;
    int64_t now = kc_now_ms();
    if (!force && now - t->last_save_ms < t->w->offset_flush_ms) return;
    int rc =
        kc_offset_file_write(t->w->offset_file, t->cfg.name, t->cfg.file, t->inode, t->acked_pos);
    if (rc) {
        if (!t->offsets_warned)
            fprintf(stderr, "connect: %s: cannot write offset file %s: %s\n", t->cfg.name,
                    t->w->offset_file, rc == K_ERR_IO ? strerror(errno) : k_strerror(rc));
        t->offsets_warned = true;
        return;
    }
    t->saved_pos = t->acked_pos;
    t->last_save_ms = now;
}

/* Opens the file if it exists now; resumes at the stored offset when the inode matches. */
static int open_file(kc_task_t *t, bool resume)
{
    int fd = t->cfg.file ? open(t->cfg.file, O_RDONLY | O_CLOEXEC) : dup(0);
    if (fd < 0) return 0; /* not there yet: Kafka's source waits for it too */
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return 0;
    }
    t->fd = fd;
    t->inode = (uint64_t)st.st_ino;
    t->acked_pos = 0;
    uint64_t ino;
    int64_t pos;
    if (resume && t->w->offset_file && t->cfg.file &&
        kc_offset_file_read(t->w->offset_file, t->cfg.name, t->cfg.file, &ino, &pos) == 0 &&
        ino == t->inode && pos <= st.st_size)
        t->acked_pos = pos;
    t->saved_pos = resume ? t->acked_pos : -1;
    t->buf_pos = t->acked_pos;
    t->blen = 0;
    if (t->cfg.file && lseek(fd, t->acked_pos, SEEK_SET) < 0) return -1;
    return 1;
}

int kc_source_open(kc_task_t *t)
{
    kc_producer_config_t pc;
    kc_producer_config_init(&pc); /* acks=all */
    pc.batch_bytes = 4u << 20;    /* a step's lines go out in one flush */
    t->fd = -1;
    t->prod = kc_producer_new(t->c, &pc);
    t->bcap = READ_CHUNK * 2;
    t->buf = malloc(t->bcap);
    if (!t->prod || !t->buf) {
        fprintf(stderr, "connect: %s: out of memory\n", t->cfg.name);
        return K_ERR_NOMEM;
    }
    t->last_save_ms = kc_now_ms();
    return open_file(t, true) < 0 ? K_ERR_IO : 0;
}

/* At end of file: reopen after rotation, rewind after truncation. */
static void check_rotation(kc_task_t *t)
{
    if (!t->cfg.file) return;
    struct stat st;
    if (stat(t->cfg.file, &st)) return; /* moved away, not yet recreated */
    int64_t pos = t->buf_pos + (int64_t)t->blen;
    if ((uint64_t)st.st_ino != t->inode) {
        close(t->fd);
        t->fd = -1;
        if (open_file(t, false) > 0) save_offset(t, true);
    } else if (st.st_size < pos) {
        lseek(t->fd, 0, SEEK_SET);
        t->buf_pos = t->acked_pos = 0;
        t->blen = 0;
        save_offset(t, true);
    }
}

/* Rewinds to the last acknowledged line after a failed send. */
static void rewind_to_acked(kc_task_t *t)
{
    if (t->cfg.file) lseek(t->fd, t->acked_pos, SEEK_SET);
    t->buf_pos = t->acked_pos;
    t->blen = 0;
    t->backoff_until = kc_now_ms() + RETRY_PAUSE_MS;
    /* Records still queued in the producer would go out again after the rewind: drop them. */
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    pc.batch_bytes = 4u << 20;
    kc_producer_t *fresh = kc_producer_new(t->c, &pc);
    if (fresh) {
        kc_producer_free(t->prod);
        t->prod = fresh;
    }
}

int kc_source_step(kc_task_t *t)
{
    if (kc_now_ms() < t->backoff_until) return 0;
    if (t->fd < 0 && open_file(t, true) <= 0) return 0;
    if (t->bcap - t->blen < READ_CHUNK) {
        char *nb = realloc(t->buf, t->blen + READ_CHUNK * 2);
        if (!nb) return K_ERR_NOMEM;
        t->buf = nb;
        t->bcap = t->blen + READ_CHUNK * 2;
    }
    ssize_t n = read(t->fd, t->buf + t->blen, READ_CHUNK);
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
        fprintf(stderr, "connect: %s: reading %s: %s\n", t->cfg.name,
                t->cfg.file ? t->cfg.file : "stdin", strerror(errno));
        return K_ERR_IO;
    }
    if (n > 0) t->blen += (size_t)n;
    /* Send the complete lines, at most batch.size of them. */
    size_t used = 0;
    int lines = 0;
    int rc = 0;
    while (!rc && lines < t->cfg.batch_size) {
        char *nl = memchr(t->buf + used, '\n', t->blen - used);
        if (!nl) break;
        size_t len = (size_t)(nl - (t->buf + used));
        if (len && t->buf[used + len - 1] == '\r') len--;
        kp_bytes_t v = {(const uint8_t *)t->buf + used, (int32_t)len};
        kp_buf_t env;
        kp_buf_init(&env);
        if (t->w->value_conv == KC_CONV_JSON_SCHEMA) { /* Connect's string envelope */
            kc_json_envelope_string(&env, v.ptr, len);
            v = (kp_bytes_t){env.data, (int32_t)env.len};
        }
        rc = env.err ? K_ERR_NOMEM
                     : kc_producer_send(t->prod, t->cfg.topic, -1, (kp_bytes_t){NULL, -1}, v,
                                        NULL, 0, -1);
        kp_buf_deinit(&env);
        used = (size_t)(nl - t->buf) + 1;
        lines++;
    }
    if (!rc && lines) rc = kc_producer_flush(t->prod);
    if (rc) {
        fprintf(stderr, "connect: %s: sending to %s: %s (will retry)\n", t->cfg.name, t->cfg.topic,
                kc_client_errmsg(t->c));
        rewind_to_acked(t);
        return 0;
    }
    if (lines) {
        memmove(t->buf, t->buf + used, t->blen - used);
        t->blen -= used;
        t->buf_pos += (int64_t)used;
        t->acked_pos = t->buf_pos;
        save_offset(t, false);
        return 1;
    }
    if (n == 0) check_rotation(t);
    save_offset(t, false);
    return n > 0;
}

int kc_source_close(kc_task_t *t)
{
    save_offset(t, true);
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
    kc_producer_free(t->prod);
    t->prod = NULL;
    free(t->buf);
    t->buf = NULL;
    return 0;
}

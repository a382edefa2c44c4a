/*
 * FileStreamSink: consumes its topics in group "connect-<name>" and appends each record's
 * value and "\n" to the file (a null value is written as "null", as Kafka's sink prints it).
 *
 * Delivery: a batch is written, fsynced, and only then are the group's offsets committed.
 * After a crash between the fsync and the commit the batch is consumed and written again
 * (at-least-once; the repeated lines are a contiguous run). The member is static
 * (group.instance.id "connect-<name>-0"), so a restarted worker takes its slot back without
 * waiting for the old member's session to expire.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/connect_int.h"
#include "protocol/kp_buf.h"

#define SINK_BATCH 2000

int kc_sink_open(kc_task_t *t)
{
    t->out_fd = t->cfg.file && *t->cfg.file
                    ? open(t->cfg.file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)
                    : dup(1);
    if (t->out_fd < 0) {
        fprintf(stderr, "connect: %s: cannot open %s: %s\n", t->cfg.name, t->cfg.file,
                strerror(errno));
        return K_ERR_IO;
    }
    char group[300], instance[310];
    snprintf(group, sizeof group, "connect-%s", t->cfg.name);
    snprintf(instance, sizeof instance, "%s-0", group);
    kc_group_config_t gc = {.group_id = group,
                            .topics = (const char *const *)t->cfg.topics,
                            .ntopics = t->cfg.ntopics,
                            .group_instance_id = instance,
                            .from_beginning = true}; /* Connect sinks: earliest */
    t->g = kc_group_new(t->c, &gc);
    if (!t->g) {
        fprintf(stderr, "connect: %s: out of memory\n", t->cfg.name);
        return K_ERR_NOMEM;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int kc_sink_step(kc_task_t *t, int wait_ms)
{
    kp_buf_t b;
    kp_buf_init(&b);
    int n = 0, rc = 0;
    while (n < SINK_BATCH) {
        kc_message_t m;
        rc = kc_group_poll(t->g, n ? 1 : wait_ms, &m);
        if (rc <= 0) break;
        if (m.value.len < 0) {
            kp_put_raw(&b, "null", 4);
        } else if (t->w->value_conv == KC_CONV_JSON_SCHEMA) {
            /* As Connect's JsonConverter: the envelope's payload, or the task fails. */
            if (kc_json_envelope_payload(m.value.ptr, (size_t)m.value.len, &b) < 0) {
                fprintf(stderr, "connect: %s: record %s-%d@%lld is not a JsonConverter envelope "
                        "(JsonConverter with schemas.enable requires \"schema\" and "
                        "\"payload\" fields); set value.converter.schemas.enable=false for "
                        "plain JSON or text\n", t->cfg.name, m.topic, m.partition, (long long)m.offset);
                kp_buf_deinit(&b);
                return K_ERR_MALFORMED;
            }
        } else {
            kp_put_raw(&b, m.value.ptr, (size_t)m.value.len);
        }
        kp_put_raw(&b, "\n", 1);
        n++;
    }
    if (rc < 0) {
        fprintf(stderr, "connect: %s: consuming: %s\n", t->cfg.name, kc_client_errmsg(t->c));
        kp_buf_deinit(&b);
        return rc;
    }
    if (b.err) {
        kp_buf_deinit(&b);
        return K_ERR_NOMEM;
    }
    if (n && (write_all(t->out_fd, b.data, b.len) || (t->cfg.file && fsync(t->out_fd)))) {
        fprintf(stderr, "connect: %s: writing %s: %s\n", t->cfg.name,
                t->cfg.file ? t->cfg.file : "stdout", strerror(errno));
        kp_buf_deinit(&b);
        return K_ERR_IO;
    }
    kp_buf_deinit(&b);
    /* A failed commit is retried with the next batch; the records may come again after a
     * rebalance, as documented. */
    if (n) t->dirty = true;
    if (t->dirty) {
        if (kc_group_commit(t->g) == 0)
            t->dirty = false;
        else if (n)
            fprintf(stderr, "connect: %s: committing: %s (will retry)\n", t->cfg.name,
                    kc_client_errmsg(t->c));
    }
    return n > 0;
}

int kc_sink_close(kc_task_t *t)
{
    if (t->g) (void)kc_group_commit(t->g);
    kc_group_close(t->g);
    t->g = NULL;
    if (t->out_fd >= 0) close(t->out_fd);
    t->out_fd = -1;
    return 0;
}

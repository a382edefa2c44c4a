/*
 * Internals of the standalone Connect worker (connect_worker.c) and its two tasks
 * (connect_source.c, connect_sink.c). Single-threaded: the worker's loop calls every task's
 * step in turn.
 */
#ifndef KC_CONNECT_INT_H
#define KC_CONNECT_INT_H

#include <sys/types.h>

#include "client/connect.h"
#include "client/kc.h"
#include "client/kc_group.h"

typedef struct {
    kc_props_t props; /* owns the strings cfg points to */
    kc_connector_config_t cfg;
    const kc_worker_config_t *w; /* the worker's, outlives the task */
    kc_client_t *c;              /* owned; one client (and connections) per task */
    /* source */
    kc_producer_t *prod;
    int fd; /* the file being tailed, -1 before it exists */
    uint64_t inode;
    int64_t buf_pos;   /* file position of buf[0] */
    int64_t acked_pos; /* end of the last line the broker acknowledged */
    int64_t saved_pos; /* what the offset file holds */
    int64_t last_save_ms;
    char *buf; /* owned: bytes read but not yet sent (a partial line at most) */
    size_t blen, bcap;
    bool offsets_warned;
    /* sink */
    kc_group_t *g;
    int out_fd;
    bool dirty; /* written but not yet committed */
    int64_t backoff_until;
} kc_task_t;

/* Each returns 1 if it moved data, 0 if idle, or a negative status for a fatal failure
 * (message on stderr). */
int kc_source_open(kc_task_t *t);
int kc_source_step(kc_task_t *t);
int kc_source_close(kc_task_t *t); /* flushes and records the offset */
int kc_sink_open(kc_task_t *t);
int kc_sink_step(kc_task_t *t, int wait_ms);
int kc_sink_close(kc_task_t *t);

/* JsonConverter with schemas enabled (connect_json.c). Appends the envelope of the string s
 * ({"schema":{"type":"string","optional":false},"payload":"..."}) exactly as Connect writes
 * it. */
void kc_json_envelope_string(kp_buf_t *b, const uint8_t *s, size_t n);
/* Appends the payload of an envelope (a string unescaped to its UTF-8 bytes; another value as
 * its JSON text). K_ERR_MALFORMED when p is not an envelope with "schema" and "payload". */
int kc_json_envelope_payload(const uint8_t *p, size_t n, kp_buf_t *out);

#endif

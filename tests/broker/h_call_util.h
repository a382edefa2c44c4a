/*
 * Handler tests without sockets: one in-process broker (real config, loop and store in a temp
 * dir, started but never run) and direct handler calls: encode a request with the codec, run
 * the handler, decode its response. Header-only with file-scope state, because each test binary
 * is one .c file and has one broker (`broker`, after tb_setup).
 */
#ifndef H_CALL_UTIL_H
#define H_CALL_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/kp_buf.h"

static char tb_dir[64];
static kb_config_t tb_cfg;
static uv_loop_t tb_loop;
static kb_broker_t *broker;

/* Starts the broker with log.dirs in a fresh /tmp/<prefix>XXXXXX and the given settings
 * (at most 30 "key=value" strings). 0 or -1. */
static inline int tb_setup(const char *prefix, const char *const *sets, int n)
{
    kb_log_set_level(KB_LOG_ERROR);
    snprintf(tb_dir, sizeof tb_dir, "/tmp/%sXXXXXX", prefix);
    if (!mkdtemp(tb_dir) || n > 30)
        return -1;
    char dirs[128];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", tb_dir);
    const char *all[31];
    all[0] = dirs;
    for (int i = 0; i < n; i++)
        all[i + 1] = sets[i];
    char err[256];
    if (kb_config_load(&tb_cfg, NULL, all, n + 1, err, sizeof err, NULL) < 0) {
        fprintf(stderr, "tb_setup: %s\n", err);
        return -1;
    }
    uv_loop_init(&tb_loop);
    if (kb_broker_new(&tb_cfg, &tb_loop, &broker) < 0 || kb_broker_start(broker) < 0)
        return -1;
    return 0;
}

/* Stops the broker, runs the loop dry, frees everything and removes the directory. */
static inline int tb_teardown(void)
{
    kb_broker_stop(broker);
    uv_run(&tb_loop, UV_RUN_DEFAULT);
    kb_broker_free(broker);
    broker = NULL;
    uv_loop_close(&tb_loop);
    kb_config_deinit(&tb_cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tb_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* One request/response exchange. The response body is decoded with the arena `out`. */
typedef struct {
    kb_req_t req;
    kp_buf_t body;
    kp_arena_t out;
} call_t;

static inline int call(call_t *c, kb_handler_fn fn, int16_t key, int16_t version,
                       const void *msg, kp_encode_fn enc)
{
    memset(c, 0, sizeof *c);
    kp_buf_init(&c->body);
    assert_int_equal(enc(&c->body, version, msg), 0);
    c->req.broker = broker;
    c->req.hdr.api_key = key;
    c->req.hdr.api_version = version;
    c->req.hdr.correlation_id = 1;
    c->req.hdr.client_id = kp_str("handler-test");
    c->req.frame = c->body.data; /* Produce rewrites batches inside the frame */
    c->req.frame_len = c->body.len;
    kp_reader_init(&c->req.body, c->body.data, c->body.len);
    kp_arena_init(&c->req.arena, NULL, 0, 0);
    kp_arena_init(&c->out, NULL, 0, 0);
    kp_buf_init(&c->req.resp);
    return fn(&c->req);
}

static inline void decode(call_t *c, int16_t version, void *resp, kp_decode_fn dec)
{
    kp_reader_t r;
    kp_reader_init(&r, c->req.resp.data, c->req.resp.len);
    assert_int_equal(dec(&r, version, &c->out, resp), 0);
    assert_int_equal(kp_remaining(&r), 0);
}

static inline void done(call_t *c)
{
    kp_buf_deinit(&c->body);
    kp_buf_deinit(&c->req.resp);
    kp_arena_deinit(&c->req.arena);
    kp_arena_deinit(&c->out);
}

/* Type-erasing wrappers for call() and decode() (the API table has them, but not for direct
 * use): WRAP(metadata) defines metadata_enc and metadata_dec. */
#define WRAP(api)                                                                                  \
    static int api##_enc(kp_buf_t *b, int16_t v, const void *m)                                    \
    {                                                                                              \
        return kp_##api##_req_encode(b, v, m);                                                     \
    }                                                                                              \
    static int api##_dec(kp_reader_t *r, int16_t v, kp_arena_t *a, void *m)                        \
    {                                                                                              \
        return kp_##api##_resp_decode(r, v, a, m);                                                 \
    }

#endif

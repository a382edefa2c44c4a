/*
 * A minimal Kafka-framed TCP connection for the lean generator, built on protocol/ only.
 *
 * The socket is non-blocking; the helpers poll, so callers can both block (send_all,
 * recv_frame) and drain what has already arrived (try_frame) to keep a pipeline full.
 * A frame returned by recv_frame/try_frame points into the connection's receive buffer and
 * stays valid until the next call that reads from the socket.
 *
 * Ownership: bench_conn_t owns its fd and buffer (bench_conn_close frees them). One thread.
 */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/kp_buf.h"

typedef struct {
    int fd;
    uint8_t *rbuf; /* owned */
    size_t rcap, rstart, rend;
    int16_t max_ver[64]; /* from ApiVersions; -1 = not offered */
} bench_conn_t;

/* Connects to "host:port" with TCP_NODELAY. 0 or -1 (message on stderr). */
int bench_conn_open(bench_conn_t *c, const char *hostport);
void bench_conn_close(bench_conn_t *c);
int bench_conn_send_all(bench_conn_t *c, const void *p, size_t n);
/* Blocks for the next response frame (without its size prefix). 0 or -1 on error/EOF. */
int bench_conn_recv_frame(bench_conn_t *c, const uint8_t **frame, size_t *len);
/* 1 with a frame if one is complete after reading what is available now, 0 if none, -1. */
int bench_conn_try_frame(bench_conn_t *c, const uint8_t **frame, size_t *len);
/* ApiVersions v0 round trip; fills max_ver. 0 or -1. */
int bench_conn_handshake(bench_conn_t *c);
/* The highest version of key both sides speak, capped at cap; -1 if none >= floor. */
int16_t bench_conn_pick(const bench_conn_t *c, int16_t key, int16_t floor, int16_t cap);

/* Starts a request frame in b (size placeholder + header v1/v2); bench_frame_end patches it. */
void bench_frame_begin(kp_buf_t *b, int16_t key, int16_t ver, int32_t corr);
void bench_frame_end(kp_buf_t *b);

#endif

/*
 * Connection limits: who may connect, how long a connection may sit, how much it may hold.
 *
 *   max.connections, max.connections.per.ip   admission (kb_net_admit): one more connection is
 *       accepted and closed at once, so the client sees a clean end instead of a hang in the
 *       backlog, and the refusals are logged (at most one line per 10 s, with a count).
 *   connections.max.idle.ms    no complete request and nothing pending or being written for
 *       this long: closed. Half-open connections (the client vanished) end this way too.
 *   socket.read.timeout.ms     a request frame must arrive completely within this long of its
 *       first byte (slowloris, 1 byte per second frames).
 *   socket.write.timeout.ms    responses queued in the transport must make progress within
 *       this long (a client that never reads).
 *   queued.max.request.bytes   bytes of requests read and not yet answered, broker-wide;
 *       above it every connection stops reading until answers free some (backpressure, as
 *       Kafka's memory pool mutes channels), never a close.
 * The deadlines are checked by one sweep timer over all connections (kb_conn_sweep), paced at a
 * quarter of the shortest limit (50 ms .. 1 s): 10,000 connections cost a few microseconds a
 * pass, and no connection carries a timer of its own. Clock: kb_mono_ms. After a wave of
 * closes (hundreds of clients gone, abandoned long polls released) the sweep gives freed heap
 * pages back to the system (malloc_trim), at most every 2 s, so RSS comes back down.
 *
 * Thread: loop thread only. State lives in the broker (kb_broker.net).
 */
#ifndef KB_LIMITS_H
#define KB_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "broker/kb.h"

/* An IP address as a hash key (4 or 16 bytes). */
typedef struct {
    uint8_t addr[16];
    uint8_t len; /* 0: unknown (counted under one shared key) */
} kb_ipkey_t;

typedef struct kb_ipnode kb_ipnode_t;

/* One max.connections.per.ip.overrides entry. */
typedef struct {
    kb_ipkey_t ip;
    int32_t max;
} kb_ip_override_t;

#define KB_MAX_IP_OVERRIDES 32

/* Why connections were refused or closed by a limit (counters for /metrics). */
enum { KB_REFUSED_MAX_CONNECTIONS, KB_REFUSED_MAX_PER_IP, KB_REFUSED_N };
enum { KB_CLOSED_IDLE, KB_CLOSED_READ_TIMEOUT, KB_CLOSED_WRITE_TIMEOUT, KB_CLOSED_N };

#define KB_IP_BUCKETS 256

typedef struct {
    int64_t queued_bytes;   /* request frames read, not yet freed */
    int n_pool_paused;      /* connections paused by queued.max.request.bytes */
    uv_timer_t sweep;       /* deadlines (kb_conn_sweep) */
    uv_timer_t pool_resume; /* resumes pool-paused connections once bytes are freed */
    bool timers_up;
    kb_ipnode_t *ip[KB_IP_BUCKETS]; /* connections per IP address */
    int closed_since_trim;          /* connections closed since memory was last given back */
    int64_t trimmed_ms;
    uint64_t refused_total[KB_REFUSED_N];            /* since start, by KB_REFUSED_* */
    uint64_t closed_total[KB_CLOSED_N];              /* closed by a deadline, by KB_CLOSED_* */
    kb_ip_override_t overrides[KB_MAX_IP_OVERRIDES]; /* max.connections.per.ip.overrides */
    int n_overrides;
    int64_t refused; /* refused since the last log line */
    int64_t refused_logged_ms;
    int64_t piece_fds;    /* descriptors held by responses' file pieces (pieces.c) */
    int64_t piece_fd_cap; /* a quarter of RLIMIT_NOFILE, read at first use; 0 = not yet */
} kb_net_t;

void kb_ipkey_from(const struct sockaddr_storage *ss, kb_ipkey_t *out);

/*
 * Parses max.connections.per.ip.overrides ("host:count,...", hosts resolved now) into
 * out[0..*n) (out may be NULL to only check it). Errors name the key and the entry in err.
 */
int kb_ip_overrides_parse(const char *v, kb_ip_override_t *out, int max, int *n, char *err,
                          size_t errlen);

/* Starts the timers; kb_net_close closes them (idempotent). */
int kb_net_start(kb_broker_t *b);
void kb_net_close(kb_broker_t *b);

/* May one more connection from ip come in? false: refuse it (and it is logged). */
bool kb_net_admit(kb_broker_t *b, const kb_ipkey_t *ip, const char *listener);
/* Counts a connection from ip in and out (conn.c, at accept and close). */
int kb_net_ip_add(kb_broker_t *b, const kb_ipkey_t *ip);
void kb_net_ip_del(kb_broker_t *b, const kb_ipkey_t *ip);
/* Connections open from ip now. */
int kb_net_ip_count(const kb_broker_t *b, const kb_ipkey_t *ip);

/* queued.max.request.bytes reached? */
bool kb_net_pool_full(const kb_broker_t *b);
/* Bytes left the pool: wake paused connections soon (from the loop, not from here). */
void kb_net_pool_freed(kb_broker_t *b);

/* conn.c: checks every connection's deadlines, closing the expired ones. */
void kb_conn_sweep(kb_broker_t *b, int64_t now);
/* conn.c: resumes connections paused only by the pool. */
void kb_conn_pool_resume(kb_broker_t *b);

#endif

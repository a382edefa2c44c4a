/*
 * Internals shared by the kc_*.c files (not a public interface). Single-threaded like kc.h.
 */
#ifndef KC_INT_H
#define KC_INT_H

#include <stdarg.h>

#include "client/kc.h"
#include "client/kc_group.h"
#include "protocol/kp_header.h"

#define KC_MAX_API_KEY 64
#define KC_MAX_FRAME (256u << 20) /* a response larger than this is refused */

typedef struct {
    int fd;          /* -1 when closed */
    void *ssl;       /* OpenSSL SSL * when the client speaks TLS (kc_tls.c), else NULL */
    int32_t node_id; /* -1 for a bootstrap connection */
    char host[256];
    int port;
    int32_t next_corr;
    int16_t ver[KC_MAX_API_KEY]; /* negotiated version per API key, -1 = not usable */
} kc_conn_t;

/* A decoded response's storage: its views point into frame, its arrays into arena. */
typedef struct {
    kp_buf_t frame;
    kp_arena_t arena;
} kc_rx_t;

struct kc_client {
    kc_config_t cfg;
    char *bootstrap, *client_id; /* owned copies behind cfg's pointers */
    kc_conn_t *boot;             /* owned; the connection that answered bootstrap */
    kc_conn_t **conns;           /* owned; one per broker node id */
    int nconns;
    kc_metadata_t **mds; /* owned; every metadata answer kept, newest last (lookups go newest
                            first, so pointers handed out stay valid until kc_client_free) */
    int nmds;
    int16_t kerr;
    char errmsg[512];
};

void kc_rx_init(kc_rx_t *rx);
void kc_rx_reset(kc_rx_t *rx);
void kc_rx_deinit(kc_rx_t *rx);

int kc_conn_open(kc_client_t *c, kc_conn_t *conn, const char *host, int port);
/* TLS on an open socket when cfg.ssl_ca_location is set (kc_tls.c): handshake, the broker's
 * certificate checked against the CA and the host name. */
int kc_tls_connect(kc_client_t *c, kc_conn_t *conn);
void kc_tls_close(kc_conn_t *conn);
/* Blocking I/O over TLS: 0, or -1 with errno set. */
int kc_tls_write_all(kc_conn_t *conn, const uint8_t *p, size_t n);
int kc_tls_read_all(kc_conn_t *conn, uint8_t *p, size_t n);
/* ApiVersions exchange; fills conn->ver. */
int kc_conn_negotiate(kc_client_t *c, kc_conn_t *conn);
/* SaslHandshake + SaslAuthenticate when cfg.sasl_mechanism is set (kc_sasl.c). */
int kc_sasl_authenticate(kc_client_t *c, kc_conn_t *conn);
/*
 * Sends req as api_key at the negotiated version and decodes the answer into resp (views into
 * rx). extra_wait_ms lengthens the socket timeout (Fetch long polls). resp NULL: send only
 * (acks=0 Produce has no response). A socket failure closes conn and returns K_ERR_IO.
 */
int kc_conn_call(kc_client_t *c, kc_conn_t *conn, int16_t api_key, const void *req, void *resp,
                 kc_rx_t *rx, int extra_wait_ms);
void kc_conn_close(kc_conn_t *conn);
/* The version negotiated for an API, picked from the broker's, the codec's and our ranges. */
int16_t kc_pick_version(int16_t api_key, int16_t broker_min, int16_t broker_max);

/* Connection to a broker node (opening it on first use), or to the bootstrap for -1. */
int kc_client_conn(kc_client_t *c, int32_t node_id, kc_conn_t **out);
/* Cached topic metadata; refresh forces a Metadata request. kc_client_topic lets the broker
 * auto-create the topic (as producers do); consumers and admin use _ex with false. */
int kc_client_topic(kc_client_t *c, const char *topic, bool refresh, const kc_topic_md_t **out);
int kc_client_topic_ex(kc_client_t *c, const char *topic, bool refresh, bool auto_create,
                       const kc_topic_md_t **out);
const kc_metadata_t *kc_client_md(const kc_client_t *c); /* newest, or NULL */

/* Records a local failure (kerr 0) or a Kafka error and returns rc. */
int kc_fail(kc_client_t *c, int rc, int16_t kerr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a Kafka error code in a response to a status and records it; 0 for no error. what
 * names the object ("topic T"); broker_msg (may be null) is the broker's own message. */
int kc_kafka_fail(kc_client_t *c, int16_t code, const char *what, kp_str_t broker_msg);
void kc_clear_error(kc_client_t *c);
void kc_sleep_ms(int ms);
/* Copies s into the arena as a C string; NULL for a null string or on failure. */
char *kc_arena_strdup(kp_arena_t *a, kp_str_t s);

/* Connection to the coordinator of a group (FindCoordinator, then that node), retrying while
 * the coordinator is not available. */
int kc_coordinator_conn(kc_client_t *c, const char *group, kc_conn_t **out);
/* True for the errors after which the coordinator must be looked up again. */
bool kc_coordinator_moved(int16_t code);

/* OffsetCommit in a generation (member_id/instance_id of the member) or outside one
 * (generation -1, member ""). The first per-partition error is recorded and returned. */
int kc_commit_ex(kc_client_t *c, const char *group, int32_t generation, const char *member_id,
                 const char *instance_id, const kc_offset_t *offs, int n);

/* Retry policy for a per-partition Kafka error (pure; unit-tested). */
typedef enum {
    KC_ACT_DONE,          /* no error */
    KC_ACT_RETRY,         /* retriable: resend after a backoff */
    KC_ACT_RETRY_REFRESH, /* retriable after refreshing metadata (leadership moved, ...) */
    KC_ACT_FAIL,          /* give up */
} kc_action_t;
kc_action_t kc_retry_action(int16_t error_code);

#endif

/* ---- producer internals (kc_accum.c, kc_produce.c) ---------------------------------------- */

/* An open batch for one partition. */
typedef struct {
    char *topic; /* owned */
    int32_t partition;
    kp_batch_builder_t bb;
} kc_open_batch_t;

/* A finished batch on its way to the broker; bytes are resent unchanged on retries. */
typedef struct {
    char *topic; /* owned */
    int32_t partition;
    uint8_t *bytes; /* owned */
    size_t len;
    int32_t nrecords;
    bool done;
    int16_t error_code; /* last answer */
    int64_t base_offset;
} kc_ready_batch_t;

/* Record accumulator: one open batch per partition. Owns everything inside. */
typedef struct {
    kc_open_batch_t *open;
    int nopen;
    int codec;
    size_t batch_bytes;
} kc_accum_t;

void kc_accum_init(kc_accum_t *acc, int codec, size_t batch_bytes);
void kc_accum_deinit(kc_accum_t *acc);
/* Adds a record; *full is set when that partition's batch reached batch_bytes (then *idx says
 * which open batch to drain). */
int kc_accum_add(kc_accum_t *acc, const char *topic, int32_t partition, int64_t ts, kp_bytes_t key,
                 kp_bytes_t value, const kp_record_header_t *headers, int32_t nheaders, bool *full,
                 int *idx);
/* Finishes open batch idx (or every non-empty one if idx < 0) and appends the results to
 * *ready (grown with realloc; the caller owns it and frees it with kc_ready_free). */
int kc_accum_drain(kc_accum_t *acc, int idx, kc_ready_batch_t **ready, int *nready);
void kc_ready_free(kc_ready_batch_t *ready, int nready);

/*
 * Broker-wide types shared by the server core and the request handlers.
 *
 * Threading: everything here runs on the single libuv loop thread, except where a comment
 * says a callback arrives from the storage flusher thread (hop back with uv_async).
 *
 * Request lifecycle: the connection reads one frame, decodes the request header, and makes a
 * kb_req_t. Before the handler runs, req->resp already holds the 4-byte size placeholder and
 * the response header for this API/version; the handler appends the response BODY to req->resp
 * (with the generated kp_*_resp_encode) and returns:
 *   KB_DONE         response complete now
 *   KB_PENDING      the handler keeps req and calls kb_req_complete(req) later (long-poll
 *                   fetch, acks=all produce, group joins); responses still leave in order
 *   KB_NO_RESPONSE  nothing is sent (produce acks=0)
 *   < 0             the request is malformed: the connection is closed
 * The frame, arena and req are freed by the core after the response is written (or dropped).
 * If the connection closes while a request is pending, req->closed becomes true; the handler
 * must still call kb_req_complete(req) (the core then just frees it).
 */
#ifndef KB_H
#define KB_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "protocol/kp_buf.h"
#include "protocol/kp_header.h"
#include "storage/ks.h"

enum { KB_DONE = 0, KB_PENDING = 1, KB_NO_RESPONSE = 2 };

enum { KB_LOG_ERROR = 0, KB_LOG_WARN = 1, KB_LOG_INFO = 2, KB_LOG_DEBUG = 3 };

typedef struct kb_broker kb_broker_t;
typedef struct kb_conn kb_conn_t;

/* Parsed configuration (broker/core/config.c owns parsing, defaults and validation). */
typedef struct {
    char listen_host[256];
    int listen_port;
    char advertised_host[256];
    int advertised_port;
    char *log_dirs[16]; /* owned by the config */
    int n_log_dirs;
    int32_t node_id;
    int32_t num_partitions;
    bool auto_create_topics_enable;
    bool delete_topic_enable;
    int32_t message_max_bytes;
    int32_t socket_request_max_bytes;
    int32_t fetch_max_bytes;
    int log_level;
    ks_topic_config_t topic_defaults; /* log.segment.bytes, log.retention.ms, ... */
    int64_t dirs_max_bytes;           /* log.dirs.max.bytes, 0 = no box budget */
    int full_policy;                  /* KS_FULL_REJECT / KS_FULL_DELETE_OLDEST */
    int max_open_files;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_initial_rebalance_delay_ms;
    int64_t offsets_retention_minutes;
    int64_t producer_id_expiration_ms;
    ks_cleaner_opts_t cleaner; /* log.cleaner.enable, .threads, .dedupe.buffer.size, ... */
} kb_config_t;

typedef struct kb_req {
    kb_broker_t *broker;
    kb_conn_t *conn;
    kp_req_header_t hdr;
    kp_reader_t body;   /* the request body, a view into frame */
    kp_arena_t arena;   /* for decoding; freed with the request */
    uint8_t *frame;     /* owned by the request */
    size_t frame_len;
    kp_buf_t resp;      /* size placeholder + response header, then the handler's body */
    bool closed;        /* connection went away while pending */
    bool done;          /* response ready to go */
    bool no_response;
    struct kb_req *next; /* connection's in-order queue */
    void *handler_data;  /* free for the handler's use while pending */
} kb_req_t;

typedef int (*kb_handler_fn)(kb_req_t *req);

/* Called by a handler that returned KB_PENDING, on the loop thread, exactly once. */
void kb_req_complete(kb_req_t *req);
/* Like kb_req_complete but nothing is sent (still keeps order). */
void kb_req_complete_no_response(kb_req_t *req);

/* Accessors the handlers use. */
uv_loop_t *kb_broker_loop(kb_broker_t *b);
ks_store_t *kb_broker_store(kb_broker_t *b);
const kb_config_t *kb_broker_config(kb_broker_t *b);
int64_t kb_now_ms(void);
/* The peer address of a connection ("ip:port"), for logs and (later) audit. */
const char *kb_conn_peer(const kb_conn_t *conn);

void kb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kb_log_set_level(int level);

/*
 * Handlers, one file per API family (broker/api/h_*.c). The dispatch table references them with
 * weak declarations, so a missing handler makes its API unsupported instead of breaking the
 * link while handlers are being built.
 */
int kb_handle_api_versions(kb_req_t *req);
int kb_handle_metadata(kb_req_t *req);
int kb_handle_produce(kb_req_t *req);
int kb_handle_fetch(kb_req_t *req);
int kb_handle_list_offsets(kb_req_t *req);
int kb_handle_create_topics(kb_req_t *req);
int kb_handle_delete_topics(kb_req_t *req);
int kb_handle_describe_configs(kb_req_t *req);
int kb_handle_describe_cluster(kb_req_t *req);
int kb_handle_delete_records(kb_req_t *req);
int kb_handle_init_producer_id(kb_req_t *req);
int kb_handle_offset_for_leader_epoch(kb_req_t *req);
int kb_handle_find_coordinator(kb_req_t *req);
int kb_handle_join_group(kb_req_t *req);
int kb_handle_sync_group(kb_req_t *req);
int kb_handle_heartbeat(kb_req_t *req);
int kb_handle_leave_group(kb_req_t *req);
int kb_handle_offset_commit(kb_req_t *req);
int kb_handle_offset_fetch(kb_req_t *req);
int kb_handle_list_groups(kb_req_t *req);
int kb_handle_describe_groups(kb_req_t *req);
int kb_handle_delete_groups(kb_req_t *req);
int kb_handle_offset_delete(kb_req_t *req);
int kb_handle_sasl_handshake(kb_req_t *req);
int kb_handle_sasl_authenticate(kb_req_t *req);

/* Hooks between handler families (defined in h_fetch.c / h_produce.c). */
/* Wakes long-poll fetches waiting on this partition (called after every append). */
void kb_fetch_notify(kb_broker_t *b, ks_part_t *part);
/* Called once at start/stop so handler families can set up loop state (timers, asyncs). */
int kb_handlers_init(kb_broker_t *b);
void kb_handlers_close(kb_broker_t *b);
/* Group coordinator hook (h_group.c): a topic was deleted, so its committed offsets go too (as
 * Kafka does). Weak: callers test it for NULL, so a build without the coordinator links. */
void kb_groups_topic_deleted(kb_broker_t *b, const char *topic) __attribute__((weak));

#endif

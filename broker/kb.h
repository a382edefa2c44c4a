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
 * If the connection closes while a request is pending, req->closed becomes true and
 * req->on_cancel (if the handler set it) runs; the handler must still call
 * kb_req_complete(req) exactly once (the core then just frees it).
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
enum { KB_LOG_FORMAT_TEXT = 0, KB_LOG_FORMAT_JSON = 1 };

typedef struct kb_broker kb_broker_t;
typedef struct kb_conn kb_conn_t;

#define KB_UPLINK_MAX_PRODUCER 64

/* Kafka's security protocols, numbered as Kafka's SecurityProtocol ids. */
enum { KB_SEC_PLAINTEXT = 0, KB_SEC_SSL = 1, KB_SEC_SASL_PLAINTEXT = 2, KB_SEC_SASL_SSL = 3 };

#define KB_MAX_LISTENERS 8
#define KB_LISTENER_NAME_MAX 32

/*
 * One Kafka listener (listeners / listener.security.protocol.map / advertised.listeners; the
 * parsing lives in broker/net/listener_config.c, the sockets in broker/net/listener.c).
 * Every connection belongs to one (kb_conn_listener) and Metadata, DescribeCluster and
 * FindCoordinator answer with that listener's advertised address.
 */
typedef struct {
    char name[KB_LISTENER_NAME_MAX]; /* "PLAINTEXT", "INTERNAL": upper case, [A-Z0-9_] */
    int security_protocol;           /* KB_SEC_* from listener.security.protocol.map */
    char host[256];                  /* bind host; "" = every interface */
    int port;                        /* bind port; 0 picks one, replaced by the bound port */
    char advertised_host[256];
    int advertised_port; /* 0 (listener port 0, not advertised) becomes the bound port */
} kb_listener_t;

/* One listener.security.protocol.map entry. */
typedef struct {
    char name[KB_LISTENER_NAME_MAX];
    int security_protocol;
} kb_protocol_map_entry_t;

/* Parsed configuration (broker/core/config.c owns parsing, defaults and validation). */
typedef struct {
    kb_listener_t listeners[KB_MAX_LISTENERS];
    int n_listeners;
    kb_protocol_map_entry_t protocol_map[KB_MAX_LISTENERS * 2];
    int n_protocol_map;
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
    int log_format;                  /* KB_LOG_FORMAT_TEXT / _JSON */
    char metrics_listeners[512];     /* "" = no metrics listener */
    ks_topic_config_t topic_defaults; /* log.segment.bytes, log.retention.ms, ... */
    int64_t dirs_max_bytes;           /* log.dirs.max.bytes, 0 = no box budget */
    int full_policy;                  /* KS_FULL_REJECT / KS_FULL_DELETE_OLDEST */
    int max_open_files;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_initial_rebalance_delay_ms;
    /* Consumer groups (KIP-848, broker/group/cgroup.h) */
    char group_rebalance_protocols[64];     /* group.coordinator.rebalance.protocols */
    int32_t group_consumer_session_timeout_ms;
    int32_t group_consumer_heartbeat_interval_ms;
    char group_consumer_assignors[256];     /* group.consumer.assignors */
    int64_t offsets_retention_minutes;
    int64_t producer_id_expiration_ms;
    int64_t checkpoint_interval_ms; /* log.flush.offset.checkpoint.interval.ms */
    /* Store-and-forward uplink (broker/uplink/, docs/uplink.md). Strings owned by the config. */
#define KB_UPLINK_EO_AUTO 0         /* transactions where the central cluster grants them */
#define KB_UPLINK_EO_TRANSACTIONS 1 /* required: a refusal is a link error */
#define KB_UPLINK_EO_READBACK 2     /* idempotent producer + read-back of the central tail */
    char *uplink_bootstrap;              /* uplink.bootstrap.servers; NULL or "" = off */
    char *uplink_topics;                 /* uplink.topics: POSIX extended regex, whole name */
    char *uplink_topic_prefix;           /* uplink.topic.prefix */
    int64_t uplink_max_bytes_per_second; /* 0 = no cap */
    bool uplink_retention_hold;          /* never delete what the central side lacks */
    bool uplink_topic_create;            /* create missing central topics */
    int64_t uplink_delivery_timeout_ms;  /* a send older than this restarts via read-back */
    char *uplink_producer[KB_UPLINK_MAX_PRODUCER]; /* "key=value", uplink.producer.<key> */
    int n_uplink_producer;
    int uplink_exactly_once;               /* KB_UPLINK_EO_*: uplink.exactly.once */
    char *uplink_transactional_id;         /* NULL or "" = depot-uplink-<cluster id> */
    int64_t uplink_transaction_max_bytes;  /* a transaction commits at this many record bytes */
    int64_t uplink_transaction_interval_ms; /* ... or after this long, whichever comes first */
    char *uplink_offsets_topic;            /* central topic of the committed source positions */
    /* connection limits (broker/net/, docs/configuration.md) */
    int32_t max_connections;
    int32_t max_connections_per_ip;
    char max_connections_per_ip_overrides[512]; /* "host:count,..." (limits.c parses it) */
    int64_t connections_max_idle_ms;  /* -1 = never */
    int64_t socket_read_timeout_ms;   /* a started request frame must complete within */
    int64_t socket_write_timeout_ms;  /* queued responses must make progress within */
    int64_t queued_max_request_bytes; /* -1 = no limit */
    int32_t fetch_max_wait_cap_ms;    /* fetch.long.poll.max.ms */
    /* Security (broker/auth/): strings as configured, parsed by the auth room at start. */
    char sasl_enabled_mechanisms[128];
    int64_t connections_max_reauth_ms;
    char authorizer_class_name[256];
    char super_users[2048];
    bool allow_everyone_if_no_acl_found;
    /* TLS (broker/net/tls.h): Kafka's PEM settings */
    char ssl_keystore_type[16], ssl_truststore_type[16];
    char ssl_keystore_location[1024], ssl_truststore_location[1024];
    char ssl_keystore_certificate_chain[16384], ssl_keystore_key[8192];
    char ssl_truststore_certificates[16384];
    char ssl_key_password[256];
    int ssl_client_auth; /* 0 none, 1 requested, 2 required */
    int64_t ssl_handshake_timeout_ms;
    /* client quotas (broker/quota/, docs/quotas.md) */
    int32_t quota_window_num;
    int32_t quota_window_size_seconds;
    int64_t quota_producer_default; /* INT64_MAX = unlimited */
    int64_t quota_consumer_default;
    bool audit_enabled; /* broker/auth/audit.c */
    char audit_event_types[128];
    int64_t audit_summary_interval_ms;
    int64_t audit_retention_ms;
    char schema_registry_listeners[512]; /* "" = no schema registry */
    int schema_registry_auth;            /* 0 NONE, 1 BASIC (broker users' passwords) */
    /* schema.registry.ssl.* (Confluent's names, KIP-651 PEM) for https:// registry listeners;
     * an unset key store or trust store falls back to the broker's ssl.* (net/tls.h). */
    char sr_ssl_keystore_type[16], sr_ssl_truststore_type[16];
    char sr_ssl_keystore_location[1024], sr_ssl_truststore_location[1024];
    char sr_ssl_keystore_certificate_chain[16384], sr_ssl_keystore_key[8192];
    char sr_ssl_truststore_certificates[16384];
    char sr_ssl_key_password[256];
    int sr_ssl_client_authentication; /* 0 NONE, 1 REQUESTED, 2 REQUIRED */
    ks_cleaner_opts_t cleaner; /* log.cleaner.enable, .threads, .dedupe.buffer.size, ... */
} kb_config_t;

/*
 * A file range sent in place of a hole in the response (zero-copy Fetch, broker/net/pieces.c):
 * the encoder left len bytes out at position `at` of resp (kp_buf_t holes), and the
 * connection sends them from fd (sendfile on TCP, read in bounded chunks on TLS). fd is
 * owned by the request and closed when it is freed, so the bytes stay readable until sent.
 */
typedef struct {
    size_t at;
    int fd;
    int64_t off;
    size_t len;
} kb_piece_t;

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
    /* Set by a handler that returned KB_PENDING and holds req somewhere (a long poll, a held
     * JoinGroup): called once, when the connection closes, so the handler lets go at once
     * (it calls kb_req_complete, which then frees req) instead of at its own deadline. */
    void (*on_cancel)(struct kb_req *req);
    bool done;          /* response ready to go */
    bool no_response;
    bool raw_sasl;       /* a bare SASL token (after SaslHandshake v0): no header either way */
    int holds;           /* kb_req_hold count: the answer waits until it is 0 (audit fsync) */
    struct kb_req *next; /* connection's in-order queue */
    void *handler_data;  /* free for the handler's use while pending */
    uint64_t start_us;   /* monotonic, when its header was decoded (counters.h) */
    int16_t error_code;  /* first Kafka error the handler reported (kb_req_error) */
    kb_piece_t *pieces;  /* in arena; fds owned (kb_req_add_file) */
    int npieces, pieces_cap, pieces_placed;
    /* The audit trail's (broker/auth/audit.h). audit_detail: what a change changes (offsets of
     * a group reset, ...), set by a handler before the kb_authorize that allows it; in the
     * arena or static, NUL-terminated, NULL for none. audit_state: the trail's own, in the
     * arena; non-NULL once a change intent was written, so the outcome record is due when the
     * request is done (kb_audit_request_done). */
    const char *audit_detail;
    void *audit_state;
} kb_req_t;

typedef int (*kb_handler_fn)(kb_req_t *req);

/* Called by a handler that returned KB_PENDING, on the loop thread, exactly once. */
void kb_req_complete(kb_req_t *req);
/*
 * Holds req's answer back, even after it is complete, until a matching kb_req_release (the
 * audit trail: an answer never overtakes the fsync of its audit record). release with
 * close_conn set closes the connection instead of answering. Loop thread; req stays valid
 * until the last release even if its connection closes meanwhile.
 */
void kb_req_hold(kb_req_t *req);
/*
 * A pending handler that no longer reads the frame (nothing in its answer points into it)
 * frees it now, and its bytes leave queued.max.request.bytes, instead of at the answer:
 * an acks=all Produce waiting for its fsync then holds its answer's few hundred bytes, not
 * its records (up to 1 MiB each from librdkafka, dozens pipelined). req->body and every
 * other view into the frame are invalid afterwards; hdr.client_id is moved into the arena.
 * Returns 0 or K_ERR_NOMEM (the frame is then kept).
 */
int kb_req_drop_frame(kb_req_t *req);
void kb_req_release(kb_req_t *req, bool close_conn);
/*
 * Runs req's handler again from the start of its body (the audit trail: a pass that wrote
 * change intents is dropped and run again once they are durable, broker/auth/audit.h). The
 * answer built so far is dropped; the caller holds req, which keeps its place in the
 * connection's answer order. Loop thread; not for a request whose connection closed.
 */
void kb_req_replay(kb_req_t *req);
/* The same for a request that waited (KB_PENDING, no effect) for something other than the
 * audit trail (the topic-change lane, an auto-creation, api/h_common.h): the connection's wait
 * for a held audit intent, if any, is left alone. */
void kb_req_rerun(kb_req_t *req);
/* Like kb_req_complete but nothing is sent (still keeps order). */
void kb_req_complete_no_response(kb_req_t *req);

/*
 * Zero-copy answers (broker/net/pieces.c). True when req's bytes go out through a
 * connection that can send file ranges (false for requests made by unit tests).
 * kb_req_add_file takes ownership of fd (closed on failure too) and queues a range for the
 * next hole the encoder leaves in req->resp (a bytes field with ptr KP_HOLE), in order;
 * kb_req_drop_pieces closes and forgets them all (a long poll re-reads later). 0 or K_ERR_*.
 */
bool kb_req_zero_copy(const kb_req_t *req);
/* False while the broker's file pieces hold their share of the descriptor limit: copy. */
bool kb_req_file_room(const kb_req_t *req);
int kb_req_add_file(kb_req_t *req, int fd, int64_t off, size_t len);
void kb_req_drop_pieces(kb_req_t *req);
/* Total response bytes after the size field: resp minus the size plus every piece. */
uint64_t kb_req_resp_size(const kb_req_t *req);

/* Accessors the handlers use. */
uv_loop_t *kb_broker_loop(kb_broker_t *b);
ks_store_t *kb_broker_store(kb_broker_t *b);
const kb_config_t *kb_broker_config(kb_broker_t *b);
/* The same, writable: only dynamic broker configs (broker/api/h_alter_configs.c) change it,
 * through kb_config_set_dynamic. Loop thread. */
kb_config_t *kb_broker_config_mut(kb_broker_t *b);
/* The peer address of a connection ("ip:port"), for logs and (later) audit. */
const char *kb_conn_peer(const kb_conn_t *conn);
/*
 * Client-quota throttling (KIP-219, broker/quota/): stops reading c's requests for ms (the
 * longest of overlapping throttles wins); with delay set (a Produce < v6 or Fetch < v8, whose
 * clients do not throttle themselves) delay's answer is also held back until then. The
 * connection's answers already queued still go out. Loop thread; no-op on a closing c.
 */
void kb_conn_throttle(kb_conn_t *c, int64_t ms, kb_req_t *delay);
/* The listener a connection came in on; never NULL for a live connection. */
const kb_listener_t *kb_conn_listener(const kb_conn_t *conn);
/* The listener of req's connection, or the broker's first listener when req has no connection
 * (handlers called directly by unit tests). What Metadata-like answers advertise. */
const kb_listener_t *kb_req_listener(const kb_req_t *req);
/* "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL" (or "?"). */
const char *kb_security_protocol_name(int security_protocol);

void kb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kb_log_set_level(int level);
/* KB_LOG_FORMAT_TEXT or KB_LOG_FORMAT_JSON (log.format); set once at start. */
void kb_log_set_format(int format);

/*
 * Handlers, one file per API family (broker/api/h_*.c), listed in the dispatch table
 * (broker/net/dispatch.c).
 */
int kb_handle_api_versions(kb_req_t *req);
int kb_handle_metadata(kb_req_t *req);
int kb_handle_produce(kb_req_t *req);
int kb_handle_fetch(kb_req_t *req);
int kb_handle_list_offsets(kb_req_t *req);
int kb_handle_create_topics(kb_req_t *req);
int kb_handle_delete_topics(kb_req_t *req);
int kb_handle_describe_configs(kb_req_t *req);
int kb_handle_alter_configs(kb_req_t *req);
int kb_handle_incremental_alter_configs(kb_req_t *req);
int kb_handle_create_partitions(kb_req_t *req);
int kb_handle_describe_cluster(kb_req_t *req);
int kb_handle_consumer_group_heartbeat(kb_req_t *req);
int kb_handle_consumer_group_describe(kb_req_t *req);
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
int kb_handle_describe_acls(kb_req_t *req);
int kb_handle_create_acls(kb_req_t *req);
int kb_handle_delete_acls(kb_req_t *req);
int kb_handle_describe_user_scram_credentials(kb_req_t *req);
int kb_handle_alter_user_scram_credentials(kb_req_t *req);
int kb_handle_describe_client_quotas(kb_req_t *req);
int kb_handle_alter_client_quotas(kb_req_t *req);

/* Hook between handler families (h_fetch.c): wakes long-poll fetches waiting on this
 * partition (called after every append). Per-broker state and start/stop live in the
 * subsystem table (broker/core/subsys.h). */
void kb_fetch_notify(kb_broker_t *b, ks_part_t *part);

#endif

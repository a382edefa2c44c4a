/*
 * Store-and-forward uplink internals (broker/uplink/). Operator view: docs/uplink.md.
 *
 *   uplink.c     the subsystem: topic discovery, the pump (local log -> librdkafka), delivery
 *                reports, the bandwidth token bucket, the link state machine, retention hold
 *   up_central.c librdkafka configuration, the producer, and the resolve job (a libuv
 *                threadpool task: metadata, CreateTopics, watermarks, read-back of the tail)
 *   up_state.c   the durable checkpoint file and the status file depotctl reads
 *   up_resume.c  where a partition resumes after a read-back
 *   up_txn.c     the transactional mode: position records, init_transactions and the read of
 *                the committed positions (in the resolve job), the commit cycle on the loop
 *
 * Exactly once, per local partition (the argument is in docs/uplink.md). Where the central
 * cluster grants transactions (uplink.exactly.once=auto|transactions) each producer session is
 * transactional: positions are committed with the records and a new session fences the old
 * one and resumes at the committed positions (up_txn.c). Otherwise (read-back mode):
 *   - every forwarded record carries the header depot.src = "<cluster-id>:<topic>:<p>:<offset>";
 *   - the checkpoint holds, per local partition, `acked` (every offset below it is on the
 *     central side) and, per central partition, `scan_from` (no record of ours that is not
 *     covered by `acked` sits below it). It is written atomically before the first record
 *     goes to a central partition and every second after;
 *   - on start, and whenever the producer is replaced (a delivery error, the delivery
 *     watchdog, a fatal idempotence error), the old producer is purged and destroyed first,
 *     then the resolve job reads every central partition from scan_from to its high watermark
 *     and each local partition resumes after what it found (at the first hole, skipping what
 *     is there, if a failed batch left one: up_resume.c);
 *   - within one producer, librdkafka's idempotence (enable.idempotence=true, at most 5 in
 *     flight, no internal timeouts, gapless) keeps retries duplicate-free and in order.
 *
 * Threads: everything here runs on the loop thread except the resolve job's work function,
 * which touches only its own up_job_t (inputs copied in, results copied out) and librdkafka
 * handles it creates or was handed to destroy. librdkafka's own threads only wake the loop
 * (uv_async); callbacks (delivery reports, errors, logs) are served by rd_kafka_poll on the loop.
 */
#ifndef KB_UP_INT_H
#define KB_UP_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "broker/http/http.h"
#include "broker/kb.h"

#define UP_SRC_HEADER "depot.src"
#define UP_CKPT_FILE "uplink.checkpoint"
#define UP_STATUS_FILE "uplink.status"
#define UP_WINDOW_BYTES (4 << 20)   /* record bytes handed to librdkafka, not yet acked */
#define UP_PART_READ_BYTES (256 << 10)

enum { UP_OFF = 0, UP_RESOLVING, UP_BACKOFF, UP_RUNNING, UP_DRAINING };
enum { UP_TXN_IDLE = 0, UP_TXN_OPEN, UP_TXN_FLUSH, UP_TXN_COMMIT }; /* up_txn.c */
#define UP_TXN_COORD_MS 30000 /* no transaction coordinator this long: not transactional */

typedef struct up_topic up_topic_t;

/* A growable list of offsets (the read-back's findings, a partition's skip list). */
typedef struct {
    int64_t *v;
    uint32_t n, cap;
} up_offsets_t;

/* A record of ours on a central partition that the local partitions' `acked` does not cover
 * yet (its local offset is at or above its partition's acked): scan_from may not pass it. */
typedef struct {
    int64_t coff; /* central offset */
    int64_t loff; /* local offset */
    int32_t lp;   /* local partition */
} up_pending_t;

/* Per central partition: the uncovered records of ours there, oldest first (a ring), and one
 * past the highest central offset known to hold something of ours or nothing of ours beyond.
 * scan_from = the oldest uncovered one's offset, or end when there is none. */
typedef struct {
    up_pending_t *v;
    uint32_t head, n, cap;
    int64_t end;
    int64_t hold; /* -1, or the lowest offset that could not be remembered (out of memory) */
} up_cpart_t;

typedef struct {
    up_topic_t *t;
    int32_t partition;
    int32_t central_part; /* -1 until the topic is resolved; keyless records when hashed */
    int64_t acked;        /* every offset below is on the central side */
    int64_t ckpt_acked;   /* acked as last written to the checkpoint (the retention hold) */
    int64_t next_send;    /* next local offset to hand to the producer */
    bool known;           /* acked came from the checkpoint or a read-back */
    bool sync_asked;      /* a ks_part_sync is pending to make more forwardable */
    /* In-flight records in send order (a ring): their offsets and record bytes. Delivery
     * reports of one central partition arrive in order, so the head is always the oldest. */
    int64_t *q_off;
    int32_t *q_bytes;
    int64_t *q_ts; /* loop time each was handed over: the delivery watchdog */
    uint32_t q_head, q_len, q_cap;
    int64_t inflight_bytes;
    int64_t fwd_records, fwd_bytes; /* acknowledged since start */
    int64_t dropped_records, dropped_ranges;
    int64_t readback_found; /* records found on the central side past the checkpoint */
    /* Offsets at or above next_send that the central side already holds although an earlier
     * one is missing (a gap left by a failed batch): sent around, never twice. Ascending. */
    up_offsets_t skip;
    uint32_t skip_i;
    /* transactional mode: sent in the open transaction, its position, what it delivered */
    bool touched;
    int64_t txn_pos;
    int64_t txn_records, txn_rec_bytes;
} up_part_t;

struct up_topic {
    up_topic_t *next;
    char *name;    /* local name, owned */
    char *central; /* prefix + name, owned */
    int32_t nparts;
    up_part_t *parts; /* [nparts], owned */
    int32_t ncentral;   /* central partitions; 0 = not resolved yet */
    /* Fewer central partitions than local ones: a keyed record goes where Kafka's default
     * partitioner puts its key (murmur2), a keyless one to p mod ncentral. */
    bool hashed;
    int64_t *scan_from; /* [ncentral], owned; -1 = unknown (nothing of ours there) */
    up_cpart_t *cp;     /* [ncentral], owned: what keeps scan_from back (up_resume.c) */
    int64_t *ckpt_scan; /* scan_from as loaded from the checkpoint, [ckpt_nscan] */
    int32_t ckpt_nscan;
    rd_kafka_topic_t *rkt; /* of the current producer, or NULL */
    bool gone;       /* deleted locally */
    bool blocked;    /* the central topic is missing and may not be created */
    bool resolving;  /* part of the running job */
    bool mapped_warned;
    char error[160];
};

typedef struct up_job up_job_t;

/* A committed source position read from the offsets topic. */
typedef struct {
    char *topic; /* owned */
    int32_t partition;
    int64_t next;
    kp_uuid_t id; /* the local topic's id when it was committed */
} up_committed_t;

/* The transactional part of a full resolve job: inputs copied in on the loop, the work
 * function fills the results. Freed by up_txn_job_free (rk is handed over, not freed). */
typedef struct {
    rd_kafka_conf_t *pconf; /* the transactional producer's; owned until rd_kafka_new */
    char txn_id[256];
    char topic[256]; /* uplink.offsets.topic */
    bool create;
    rd_kafka_t *rk; /* result: the producer, init_transactions done */
    up_committed_t *v;
    uint32_t n, cap;
    char reason[300]; /* why not transactional, or why it failed */
} up_txn_job_t;

typedef struct {
    kb_broker_t *b;
    const kb_config_t *cfg;
    ks_store_t *store;
    uv_loop_t *loop;
    regex_t re;
    bool re_ok;
    char cluster_id[64];
    char dir[1024]; /* log_dirs[0]: checkpoint and status files */
    int state;      /* UP_* */
    up_topic_t *topics;
    rd_kafka_t *rk; /* the producer, when RUNNING or DRAINING */
    uv_timer_t pump;
    uv_timer_t retry;
    uv_async_t wake;
    bool handles_up;
    bool stopping;
    up_job_t *job; /* the running resolve job, or NULL */
    bool job_full; /* a full resync is wanted (after the running job) */
    bool settled_once; /* a full job waited for the previous process's producer */
    int backoff_n;
    int64_t next_partial_ms; /* loop time of the next partial job attempt */
    int64_t drain_deadline;
    /* token bucket (record bytes), refilled from the monotonic clock */
    double tokens;
    int64_t tokens_ms;
    int64_t inflight_bytes;
    bool ckpt_dirty;
    bool ckpt_busy;    /* a background checkpoint write is running (u outlives it) */
    uint64_t ckpt_gen; /* number of the last checkpoint snapshot taken */
    /* status */
    char link[16];
    char last_error[512];
    /* The last error librdkafka reported (up_on_error) since the last acknowledgement: when
     * the producer is replaced for a symptom (a delivery timeout), last_error keeps it as the
     * cause, so `depotctl uplink status` says why (a wrong password, an untrusted CA). */
    char last_cause[256];
    int64_t last_success_ms; /* wall clock, 0 = never */
    int64_t resyncs;
    int64_t send_errors;
    /* transactional mode (up_txn.c) */
    pthread_t loop_thread; /* librdkafka callbacks elsewhere (a commit's flush) are ignored */
    char txn_id[256];
    bool txn;      /* the current producer session is transactional */
    bool prev_txn; /* the last session was (the checkpoint's m line at start) */
    int mode_logged; /* -1 none yet, 0 read-back, 1 transactions: the choice is logged once */
    int txn_phase;   /* UP_TXN_* */
    int64_t txn_start_ms; /* loop time the open transaction began */
    int64_t txn_bytes;
    int commit_retries;
    bool txn_busy;    /* a commit runs on the threadpool with rk */
    bool rk_orphaned; /* up_close left rk to the running commit */
    bool fenced;      /* the producer was fenced: a new one after a backoff */
    rd_kafka_t *dead_rk; /* a fenced producer, destroyed by the next resolve job */
    rd_kafka_t *new_rk;  /* the job's transactional producer, until up_job_finished takes it */
    rd_kafka_topic_t *off_rkt; /* the offsets topic, of the current producer */
    char mode_reason[300];
    int64_t last_commit_ms; /* wall clock, 0 = never */
    int64_t commits;
} up_t;

/* uplink.c */
up_topic_t *up_topic_find(up_t *u, const char *name);
void up_set_error(up_t *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void up_set_link(up_t *u, const char *s);
/* Ends the producer session (a delivery or commit error): purge, then a full resolve job. */
void up_restart(up_t *u, const char *why);

/* librdkafka callbacks, served by rd_kafka_poll on the loop */
void up_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
void up_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
/* The resolve job's results are applied; full says whether it was a full resync. */
void up_job_finished(up_t *u, bool ok, bool full);
/* A job (resolve or checkpoint) finished after the subsystem closed: frees u once its handles
 * are closed and no job is left. */
void up_job_orphaned(up_t *u);

/* up_resume.c: where a partition resumes after a read-back (the gap rule is there) */
int up_offsets_add(up_offsets_t *o, int64_t off);
void up_resume(up_topic_t *t, up_part_t *p, up_offsets_t *found);
/* True (and advances past it) when off is in p's skip list. */
bool up_skip(up_part_t *p, int64_t off);
/* Kafka's murmur2 of a key (Utils.murmur2, seed 0x9747b28c), and the partition the Java
 * producer's default partitioner picks for it: (murmur2 & 0x7fffffff) % n. */
int32_t up_murmur2(const void *key, size_t len);
int32_t up_key_partition(const void *key, size_t len, int32_t n);
/* A record of ours at central offset coff of central partition q is known (acknowledged, or
 * found by a read-back); remembered while its local partition's acked does not cover it. */
int up_central_note(up_topic_t *t, int32_t q, int64_t coff, int32_t lp, int64_t loff);
/* Drops what acked now covers and sets scan_from from what is left (before a checkpoint or a
 * read-back uses scan_from). */
void up_scan_update(up_topic_t *t);
/* New central partition bookkeeping after a resolve: end = hw, nothing uncovered. */
int up_central_reset(up_topic_t *t, const int64_t *hw, int32_t n);
void up_central_free(up_topic_t *t);

/* up_central.c */
/* A librdkafka configuration from the uplink settings: bootstrap, uplink.producer.<key>,
 * then the settings exactly-once depends on. NULL with err filled on a bad setting. */
rd_kafka_conf_t *up_conf_new(const up_t *u, bool producer, char *err, size_t errlen);
/* The producer's configuration with the uplink's callbacks (txn: transactional). */
rd_kafka_conf_t *up_producer_conf(up_t *u, bool txn, char *err, size_t errlen);
/* Creates the producer (u->rk) and the topic handles of resolved topics. */
int up_producer_start(up_t *u);
/* Makes rk (created elsewhere, e.g. by the resolve job) the producer: u->rk, topic handles. */
void up_producer_attach(up_t *u, rd_kafka_t *rk);
/* Blocking central calls, for the threadpool: partition count (0 = missing, < 0 failed) and
 * CreateTopics (compact: cleanup.policy=compact). */
int up_central_partitions(rd_kafka_t *rk, const char *name, char *err, size_t errlen);
int up_create_topic(rd_kafka_t *rk, const char *name, int32_t parts, bool compact, char *err,
                    size_t errlen);
/* Starts the resolve job for the topics with ncentral == 0 (or all, with full); old_rk (may be
 * NULL) is destroyed by the job before it reads anything. done runs on the loop. */
int up_job_start(up_t *u, bool full, rd_kafka_t *old_rk);
/* The process-wide wall clock for "last success". */
int64_t up_wall_ms(void);

/* up_state.c */
/* Loads the checkpoint into known topics' partitions (acked, scan_from); missing file = 0. */
int up_ckpt_load(up_t *u);
/* Writes the checkpoint atomically (temp file, fsync, rename, directory fsync), on the loop:
 * where it must be durable before going on (before producing to newly resolved partitions,
 * at close). Then the retention floor (ckpt_acked) follows. */
int up_ckpt_save(up_t *u);
/* The same on the threadpool (the once-a-second save): the contents are taken now; the floor
 * follows when the file is durable. Does nothing while the previous one runs. */
void up_ckpt_save_async(up_t *u);
/* Writes the status file (temp + rename; no fsync: it is rewritten every second). */
void up_status_write(up_t *u);
/* The same state as JSON (GET /uplink on the metrics HTTP listener). */
void up_status_json(up_t *u, FILE *f);
/* Prints the uplink's /metrics families (link state, lag, forwarded offsets and bytes). */
void up_prometheus(kb_http_req_t *req, up_t *u);

/* up_txn.c */
extern char up_txn_offsets_mark; /* the delivery opaque of position records */
/* Position record key "<txn id>/<topic>/<partition>" and value "<next> <topic id hex>";
 * the length written, or < 0 when buf is too small. */
int up_txn_key(char *buf, size_t len, const char *txn_id, const char *topic, int32_t part);
int up_txn_value(char *buf, size_t len, int64_t next, kp_uuid_t id);
/* 1 = a record of ours (fields filled), 0 = another transactional id's, < 0 = malformed. */
int up_txn_parse(const char *txn_id, const void *key, size_t klen, const void *val, size_t vlen,
                 char *topic, size_t topic_len, int32_t *part, int64_t *next, kp_uuid_t *id);
/* Where a partition resumes in a transactional session: the committed position (-1 = none;
 * same_topic false = committed for an older incarnation of the topic, ignored) or the
 * checkpoint's acked (known), the higher of both: every offset below either is on the central
 * side, committed (a read-back session before may have gone past the last commit). */
int64_t up_txn_resume(int64_t acked, bool known, int64_t committed, bool same_topic);
/* The committed next offset of (topic, part) for the incarnation id, -1 = none. */
int64_t up_txn_committed(const up_txn_job_t *tj, const char *topic, int32_t part, kp_uuid_t id,
                         bool *other_incarnation);
/* transactional.id, transaction.timeout.ms, message.timeout.ms on a producer conf. */
int up_txn_conf(const up_t *u, rd_kafka_conf_t *c, char *err, size_t errlen);
/* Threadpool: the offsets topic, the producer, init_transactions, the committed positions.
 * 1 = transactional (tj->rk), 0 = refused (tj->reason), < 0 = failed (tj->reason). */
int up_txn_job_run(up_txn_job_t *tj, rd_kafka_t *crk);
void up_txn_job_free(up_txn_job_t *tj);
/* Loop: the pump asks before sending (begins a transaction, or stops at its limits). */
bool up_txn_may_send(up_t *u);
/* Produces the position records of the open transaction and stops the pump until commit. */
int up_txn_end(up_t *u);
/* Every pump tick: queues the commit once every delivery report has been served. */
void up_txn_progress(up_t *u);
/* A fatal producer error: fenced ones are logged loudly and back off. */
void up_txn_fatal(up_t *u, int code, const char *why);
void up_txn_reset(up_t *u);
void up_txn_close(up_t *u);

#endif

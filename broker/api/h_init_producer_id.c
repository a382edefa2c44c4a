/*
 * InitProducerId (key 22), versions 0-5.
 *
 * Without a transactional id (idempotent producers, the Java default) every request gets a
 * fresh producer id with epoch 0, as Kafka does: it hands out a new id even when the request
 * names an existing one (v3+ epoch bump, KIP-360). Ids are never reused, across restarts too.
 *
 * With a transactional id: Depot has no transaction coordinator and authorizes no
 * transactional id, so it answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53), which Kafka
 * returns when the id is not authorized. Clients treat it as fatal and report it clearly,
 * instead of retrying forever as they would on COORDINATOR_NOT_AVAILABLE.
 *
 * If reserving ids fails (disk error), the answer is COORDINATOR_NOT_AVAILABLE, which clients
 * retry.
 *
 * On-disk format: <first log dir>/producer_id_block holds one line, the ASCII decimal of the
 * first id not yet reserved, then '\n' (e.g. "2000\n"). Ids below it may have been handed out.
 * Reserving a block of PID_BLOCK ids rewrites the file through producer_id_block.tmp: write,
 * fsync, rename, fsync the directory, so a crash leaves either the old or the new block and
 * an id is never handed out before its block is durable. The write runs on libuv's
 * threadpool (job_start) while the requests that need the block wait in arrival order. A missing file means no id was ever
 * handed out; an unreadable one is an error (guessing could reuse ids).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/api/h_common.h"
#include "broker/core/util.h"
#include "broker/auth/auth.h"
#include "protocol/gen/kp_init_producer_id.h"

#define PID_BLOCK 1000
#define PID_FILE "producer_id_block"

static int read_block_file(const char *path, int64_t *next)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *next = 0;
            return 0;
        }
        kb_log(KB_LOG_ERROR, "producer ids: open %s: %s", path, strerror(errno));
        return K_ERR_IO;
    }
    char line[32] = {0};
    char *end = NULL;
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    long long v = ok ? strtoll(line, &end, 10) : -1;
    if (!ok || end == line || *end != '\n' || v < 0) {
        kb_log(KB_LOG_ERROR, "producer ids: %s is not a decimal line; refusing to guess", path);
        return K_ERR_CORRUPT;
    }
    *next = v;
    return 0;
}

/* The text of the block file for limit; its length. */
static int block_text(int64_t limit, char *text, size_t len)
{
    return snprintf(text, len, "%" PRId64 "\n", limit);
}

/* Durably records that every id below limit may be in use (any thread; the caller logs). */
static int write_block_file(const char *dir, int64_t limit, int *err, const char **what)
{
    char text[32];
    int n = block_text(limit, text, sizeof text);
    return kb_write_file_durably(dir, PID_FILE, text, (size_t)n, err, what);
}

static void log_block_failure(const char *dir, int err, const char *what)
{
    kb_log(KB_LOG_ERROR, "producer ids: writing %s/%s: %s failed: %s", dir, PID_FILE, what,
           strerror(err));
}

/* Reads the block file on first use (small; on the loop). */
static int pid_load(kb_hstate_t *hs, const char *dir)
{
    if (hs->pid_path) return 0;
    size_t len = strlen(dir) + sizeof "/" PID_FILE;
    char *path = malloc(len); /* owned by hs, freed by kb_pid_close */
    if (!path) return K_ERR_NOMEM;
    snprintf(path, len, "%s/%s", dir, PID_FILE);
    int64_t next;
    int rc = read_block_file(path, &next);
    if (rc < 0) {
        free(path);
        return rc;
    }
    hs->pid_path = path;
    hs->pid_next = hs->pid_limit = next; /* nothing of the old block is trusted as free */
    return 0;
}

int kb_pid_next(kb_hstate_t *hs, const char *dir, int64_t *pid)
{
    int rc = pid_load(hs, dir);
    if (rc < 0) return rc;
    if (hs->pid_next >= hs->pid_limit) {
        int err = 0;
        const char *what = "";
        rc = write_block_file(dir, hs->pid_next + PID_BLOCK, &err, &what);
        if (rc < 0) {
            log_block_failure(dir, err, what);
            return rc;
        }
        hs->pid_limit = hs->pid_next + PID_BLOCK;
    }
    *pid = hs->pid_next++;
    return 0;
}

/*
 * A block reservation written on libuv's threadpool: the fsyncs of a slow flash chip stall
 * only the producers that need an id from it. Requests arriving meanwhile queue behind it and
 * get their ids in arrival order once it is durable. Heap, owned by itself: freed in
 * job_after. hs is NULL once the api subsystem closed under it (kb_pid_close).
 */
typedef struct kb_pid_job {
    uv_work_t work;
    kb_hstate_t *hs;
    char dir[4096];
    int64_t limit;
    int rc, err;
    const char *what;
    kb_req_t **reqs; /* waiting, in arrival order; grows */
    int n, cap;
} pid_job_t;

static int job_queue(pid_job_t *j, kb_req_t *req)
{
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 8;
        kb_req_t **a = realloc(j->reqs, sizeof *a * (size_t)cap);
        if (!a) return K_ERR_NOMEM;
        j->reqs = a;
        j->cap = cap;
    }
    j->reqs[j->n++] = req;
    return 0;
}

static void job_work(uv_work_t *w)
{
    pid_job_t *j = w->data;
    j->rc = write_block_file(j->dir, j->limit, &j->err, &j->what);
}

static void answer(kb_req_t *req, int64_t pid)
{
    kp_init_producer_id_resp_t resp;
    kp_init_producer_id_resp_init(&resp);
    resp.producer_id = pid;
    resp.producer_epoch = pid >= 0 ? 0 : -1;
    resp.error_code = pid >= 0 ? KP_ERR_NONE : KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (kp_init_producer_id_resp_encode(&req->resp, req->hdr.api_version, &resp) < 0)
        kb_log(KB_LOG_ERROR, "producer ids: encoding an answer failed");
    kb_req_complete(req);
}

static int job_start(kb_hstate_t *hs, const char *dir, kb_req_t **reqs, int n);

static void job_after(uv_work_t *w, int status)
{
    (void)status;
    pid_job_t *j = w->data;
    kb_hstate_t *hs = j->hs;
    if (j->rc < 0) log_block_failure(j->dir, j->err, j->what);
    if (hs) {
        hs->pid_job = NULL;
        if (j->rc == 0) hs->pid_limit = j->limit;
    }
    int i = 0;
    for (; i < j->n; i++) {
        if (!hs || j->rc < 0) {
            answer(j->reqs[i], -1);
        } else if (hs->pid_next < hs->pid_limit) {
            answer(j->reqs[i], hs->pid_next++);
        } else if (job_start(hs, j->dir, j->reqs + i, j->n - i) == 0) {
            break; /* more waiters than one block: the rest wait for the next */
        } else {
            answer(j->reqs[i], -1);
        }
    }
    free(j->reqs);
    free(j);
}

/* A new block for reqs (which then wait on it); 0 or a negative status. */
static int job_start(kb_hstate_t *hs, const char *dir, kb_req_t **reqs, int n)
{
    pid_job_t *j = calloc(1, sizeof *j); /* owned by itself until job_after */
    if (!j) return K_ERR_NOMEM;
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    j->hs = hs;
    j->limit = hs->pid_next + PID_BLOCK;
    j->work.data = j;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = job_queue(j, reqs[i]);
    if (rc == 0 &&
        uv_queue_work(kb_broker_loop(hs->broker), &j->work, job_work, job_after) != 0)
        rc = K_ERR_NOMEM;
    if (rc < 0) {
        free(j->reqs);
        free(j);
        return rc;
    }
    hs->pid_job = j;
    return 0;
}

/* An id for req: 0 and *pid, KB_PENDING (req waits for a block being written and is answered
 * from job_after), or a negative status. Requests without a connection (unit tests) write
 * here. */
static int pid_take(kb_req_t *req, kb_hstate_t *hs, const char *dir, int64_t *pid)
{
    int rc = pid_load(hs, dir);
    if (rc < 0) return rc;
    if (hs->pid_job) return job_queue(hs->pid_job, req) == 0 ? KB_PENDING : K_ERR_NOMEM;
    if (hs->pid_next < hs->pid_limit || !req->conn) return kb_pid_next(hs, dir, pid);
    return job_start(hs, dir, &req, 1) == 0 ? KB_PENDING : kb_pid_next(hs, dir, pid);
}

void kb_pid_close(kb_hstate_t *hs)
{
    if (hs->pid_job) hs->pid_job->hs = NULL; /* its waiters get COORDINATOR_NOT_AVAILABLE */
    hs->pid_job = NULL;
    free(hs->pid_path);
    hs->pid_path = NULL;
}

/* Kafka's rule for a producer without a transactional id: IDEMPOTENT_WRITE on the cluster,
 * or WRITE on some topic (authorizeByResourceType). A single node knows every topic, so
 * "some topic" is checked against the topics that exist. */
static bool may_write_idempotently(kb_req_t *req)
{
    if (kb_authorize_cluster(req, KB_OP_IDEMPOTENT_WRITE))
        return true;
    ks_store_t *s = kb_broker_store(req->broker);
    for (ks_topic_t *t = s ? ks_topic_next(s, NULL) : NULL; t; t = ks_topic_next(s, t)) {
        const char *name = ks_topic_name(t);
        if (kb_authorize(req, KB_OP_WRITE, KB_RES_TOPIC, name, strlen(name)))
            return true;
    }
    return false;
}

int kb_handle_init_producer_id(kb_req_t *req)
{
    kp_init_producer_id_req_t m;
    int rc = kp_init_producer_id_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    kp_init_producer_id_resp_t resp;
    kp_init_producer_id_resp_init(&resp);
    resp.producer_id = -1;
    resp.producer_epoch = -1;
    const kb_config_t *cfg = kb_broker_config(req->broker);
    kb_hstate_t *hs = kb_hstate(req->broker);
    if (m.transactional_id.len >= 0) {
        /* WRITE on the transactional id is what Kafka checks; Depot has no transaction
         * coordinator, so even an authorized transactional producer gets this answer. */
        resp.error_code = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (!may_write_idempotently(req)) {
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (!hs || !cfg || cfg->n_log_dirs < 1 ||
               (rc = pid_take(req, hs, cfg->log_dirs[0], &resp.producer_id)) < 0) {
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
        resp.producer_id = -1;
    } else if (rc == KB_PENDING) {
        return KB_PENDING; /* answered when its block is durable */
    } else {
        resp.producer_epoch = 0;
    }
    rc = kp_init_producer_id_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

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
 * an id is never handed out before its block is durable. A missing file means no id was ever
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

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Durably records that every id below limit may be in use. */
static int write_block_file(const char *dir, const char *path, int64_t limit)
{
    char tmp[4096], text[32];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return K_ERR_INVAL;
    int n = snprintf(text, sizeof text, "%" PRId64 "\n", limit);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        kb_log(KB_LOG_ERROR, "producer ids: create %s: %s", tmp, strerror(errno));
        return K_ERR_IO;
    }
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok || rename(tmp, path) < 0 || fsync_path(dir, O_RDONLY | O_DIRECTORY) < 0) {
        kb_log(KB_LOG_ERROR, "producer ids: writing %s: %s", path, strerror(ok ? errno : e));
        unlink(tmp);
        return K_ERR_IO;
    }
    return 0;
}

int kb_pid_next(kb_hstate_t *hs, const char *dir, int64_t *pid)
{
    if (!hs->pid_path) {
        size_t len = strlen(dir) + sizeof "/" PID_FILE;
        char *path = malloc(len); /* owned by hs, freed by kb_pid_close */
        if (!path)
            return K_ERR_NOMEM;
        snprintf(path, len, "%s/%s", dir, PID_FILE);
        int64_t next;
        int rc = read_block_file(path, &next);
        if (rc < 0) {
            free(path);
            return rc;
        }
        hs->pid_path = path;
        hs->pid_next = hs->pid_limit = next; /* nothing of the old block is trusted as free */
    }
    if (hs->pid_next >= hs->pid_limit) {
        int rc = write_block_file(dir, hs->pid_path, hs->pid_next + PID_BLOCK);
        if (rc < 0)
            return rc;
        hs->pid_limit = hs->pid_next + PID_BLOCK;
    }
    *pid = hs->pid_next++;
    return 0;
}

void kb_pid_close(kb_hstate_t *hs)
{
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
               kb_pid_next(hs, cfg->log_dirs[0], &resp.producer_id) < 0) {
        resp.error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
        resp.producer_id = -1;
    } else {
        resp.producer_epoch = 0;
    }
    rc = kp_init_producer_id_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* The ACL and SCRAM credential files written off the loop (see h_auth_writes.h). */
#include "broker/api/h_auth_writes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/util.h"

typedef struct kb_authw_job {
    uv_work_t work;
    kb_hstate_t *hs; /* NULL once the api subsystem closed under a running write */
    kb_req_t *req;
    kb_authw_t w;
    char dir[4096];
    int rc, err;
    const char *what;
    struct kb_authw_job *q_next;
} job_t;

void *kb_authw_latest(kb_broker_t *b, int file)
{
    kb_hstate_t *hs = kb_hstate_find(b);
    if (!hs || file < 0 || file >= KB_AUTHW_FILES || !hs->authw_tail[file]) return NULL;
    return hs->authw_tail[file]->w.next;
}

static void job_free(job_t *j)
{
    if (j->w.text) {
        memset(j->w.text, 0, j->w.len); /* the credential file's keys */
        free(j->w.text);
    }
    if (j->w.next) j->w.free_next(j->w.next);
    free(j);
}

static void job_work(uv_work_t *work)
{
    job_t *j = work->data;
    j->rc = kb_write_file_durably_mode(j->dir, j->w.name, j->w.text, j->w.len, 0600, &j->err,
                                       &j->what);
}

/* Completes req after done() built its answer (or closes the connection when it could not). */
static void answer(job_t *j, bool ok)
{
    kb_req_t *req = j->req;
    int rc = j->w.done(req, j->w.ud, ok);
    if (!req->conn) return; /* a direct call: the caller returns the result */
    if (rc < 0 && !req->closed) {
        kb_log(KB_LOG_ERROR, "answering api %d failed: %s", req->hdr.api_key, k_strerror(rc));
        kb_req_hold(req);
        kb_req_complete(req);
        kb_req_release(req, true);
        return;
    }
    kb_req_complete(req);
}

static void finish(job_t *j)
{
    if (j->rc < 0)
        kb_log(KB_LOG_ERROR, "%s/%s: cannot write: %s failed: %s", j->dir, j->w.name, j->what,
               strerror(j->err));
    else
        j->w.apply(j->req->broker, j->w.next);
}

static void job_after(uv_work_t *work, int status);

static void job_start(kb_hstate_t *hs, int file)
{
    job_t *j = hs->authw_head[file];
    if (!j) return;
    if (uv_queue_work(kb_broker_loop(hs->broker), &j->work, job_work, job_after) != 0) {
        j->rc = K_ERR_NOMEM;
        j->err = ENOMEM;
        j->what = "queueing the write";
        job_after(&j->work, 0);
    }
}

static void job_after(uv_work_t *work, int status)
{
    (void)status; /* never cancelled */
    job_t *j = work->data;
    kb_hstate_t *hs = j->hs;
    if (!hs) { /* the broker is stopping: the state apply() would change may be gone */
        if (j->req->closed) kb_req_complete(j->req);
        else kb_req_complete_no_response(j->req);
        job_free(j);
        return;
    }
    int file = j->w.file;
    hs->authw_head[file] = j->q_next;
    if (!hs->authw_head[file]) hs->authw_tail[file] = NULL;
    finish(j);
    answer(j, j->rc == 0);
    if (j->rc < 0) {
        /* Every change behind it was computed on top of it: they fail too. */
        for (job_t *n; (n = hs->authw_head[file]) != NULL;) {
            hs->authw_head[file] = n->q_next;
            answer(n, false);
            job_free(n);
        }
        hs->authw_tail[file] = NULL;
    }
    job_free(j);
    job_start(hs, file);
}

int kb_authw_submit(kb_req_t *req, const kb_authw_t *w)
{
    kb_hstate_t *hs = kb_hstate(req->broker);
    job_t *j = calloc(1, sizeof *j); /* owned by the queue until answered */
    if (!j) {
        kb_authw_t t = *w;
        free(t.text);
        if (t.next) t.free_next(t.next);
        return t.done(req, t.ud, false);
    }
    j->w = *w;
    j->req = req;
    j->hs = hs;
    j->work.data = j;
    snprintf(j->dir, sizeof j->dir, "%s", w->dir);
    int file = w->file;
    if (req->conn && hs && file >= 0 && file < KB_AUTHW_FILES) {
        if (hs->authw_tail[file]) { /* waits for the writes before it */
            hs->authw_tail[file]->q_next = j;
            hs->authw_tail[file] = j;
            return KB_PENDING;
        }
        if (uv_queue_work(kb_broker_loop(req->broker), &j->work, job_work, job_after) == 0) {
            hs->authw_head[file] = hs->authw_tail[file] = j;
            return KB_PENDING;
        }
    }
    /* A direct call (unit tests) or no threadpool: the write happens here. */
    job_work(&j->work);
    finish(j);
    int rc = j->w.done(req, j->w.ud, j->rc == 0);
    job_free(j);
    return rc;
}

void kb_authw_close(kb_hstate_t *hs)
{
    for (int f = 0; f < KB_AUTHW_FILES; f++) {
        job_t *j = hs->authw_head[f];
        if (!j) continue;
        j->hs = NULL; /* finishes on its own, unanswered */
        for (job_t *n = j->q_next; (j = n) != NULL;) {
            n = j->q_next;
            if (j->req->closed) kb_req_complete(j->req);
            else kb_req_complete_no_response(j->req);
            job_free(j);
        }
        hs->authw_head[f] = hs->authw_tail[f] = NULL;
    }
}

/*
 * Auto-created topics made off the loop (see h_common.h, kb_autocreate_start): Metadata with
 * allow_auto_topic_creation and Produce with auto.create.topics.enable reserve the name in
 * storage on the loop (ks_topic_create_begin), the directories and metadata are written and
 * fsynced on libuv's threadpool, and the topic is published back on the loop. The requests
 * that asked wait meanwhile (KB_PENDING, no effect of their own) and run again from the start
 * (kb_req_rerun) once it exists; every request that meets the creation in flight waits on the
 * same one. A failed creation is remembered for FAILED_MS so the replays answer its error
 * instead of starting it again at once. Loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/core/clock.h"

#define FAILED_MS 1000

struct kb_autocreate {
    uv_work_t work;
    kb_hstate_t *hs;              /* NULL once the api subsystem closed */
    struct kb_autocreate *next;   /* hs->autocreates */
    char name[256];
    ks_topic_pending_t *pt;       /* until finished */
    int status;                   /* 1 running, 0 created, < 0 failed */
    bool replaying;               /* its waiters are being run again: "just created" */
    int64_t failed_at_ms;         /* kb_mono_ms */
    kb_lane_wait_t *head, *tail;  /* waiting requests, nodes in their arenas */
};

static void unlink_job(kb_hstate_t *hs, kb_autocreate_t *j)
{
    for (kb_autocreate_t **pp = &hs->autocreates; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

static void job_work(uv_work_t *w)
{
    kb_autocreate_t *j = w->data;
    ks_topic_create_write(j->pt);
}

/* Runs every waiter again (or frees it when its client left). */
static void replay_waiters(kb_autocreate_t *j)
{
    j->replaying = true;
    while (j->head) {
        kb_lane_wait_t *w = j->head;
        j->head = w->next;
        if (!j->head)
            j->tail = NULL;
        if (w->req->closed)
            kb_req_complete(w->req);
        else if (!j->hs)
            kb_req_complete_no_response(w->req); /* shutdown: its connection closes next */
        else
            kb_req_rerun(w->req);
    }
    j->replaying = false;
}

static void job_after(uv_work_t *w, int status)
{
    (void)status; /* never cancelled */
    kb_autocreate_t *j = w->data;
    ks_topic_t *t = NULL;
    j->status = ks_topic_create_finish(j->pt, &t);
    j->pt = NULL;
    if (j->status == 0)
        kb_log(KB_LOG_INFO, "auto-created topic %s with %d partitions", j->name,
               ks_topic_partitions(t));
    else if (j->status != K_ERR_EXISTS && j->status != K_ERR_CLOSED)
        kb_log(KB_LOG_WARN, "auto-creating topic %s failed: %s", j->name,
               k_strerror(j->status));
    if (j->status < 0)
        j->failed_at_ms = kb_mono_ms();
    replay_waiters(j);
    if (j->hs && j->status < 0)
        return; /* remembered for FAILED_MS (kb_autocreate_start drops it) */
    if (j->hs)
        unlink_job(j->hs, j);
    free(j);
}

/* The job for name: running, replaying its waiters, or failed within FAILED_MS. Drops the
 * stale failures on the way. */
static kb_autocreate_t *find_job(kb_hstate_t *hs, const char *name)
{
    int64_t now = kb_mono_ms();
    for (kb_autocreate_t **pp = &hs->autocreates; *pp;) {
        kb_autocreate_t *j = *pp;
        if (j->status < 0 && !j->replaying && now - j->failed_at_ms >= FAILED_MS) {
            *pp = j->next;
            free(j);
            continue;
        }
        if (strcmp(j->name, name) == 0)
            return j;
        pp = &j->next;
    }
    return NULL;
}

int kb_autocreate_start(kb_req_t *req, const char *name, int32_t partitions, ks_topic_t **t,
                        kb_autocreate_t **job)
{
    ks_store_t *store = kb_broker_store(req->broker);
    kb_hstate_t *hs = kb_hstate(req->broker);
    *t = NULL;
    *job = NULL;
    kb_autocreate_t *j = hs ? find_job(hs, name) : NULL;
    if (j && j->status == 1) {
        *job = j;
        return 1;
    }
    if (j) { /* finished: replaying its waiters, or failed a moment ago */
        if (j->status < 0)
            return j->status;
        *t = ks_topic_find(store, name, strlen(name));
        return *t ? 0 : K_ERR_NOENT; /* deleted again since */
    }
    if (!hs || !req->conn) /* out of memory, or a unit test's direct call: at once */
        return ks_topic_create(store, name, partitions, NULL, t);
    j = calloc(1, sizeof *j); /* owned by hs->autocreates until its waiters ran */
    if (!j || strlen(name) >= sizeof j->name) {
        free(j);
        return ks_topic_create(store, name, partitions, NULL, t);
    }
    strcpy(j->name, name);
    int rc = ks_topic_create_begin(store, name, partitions, NULL, &j->pt);
    if (rc < 0) {
        free(j);
        return rc;
    }
    j->hs = hs;
    j->status = 1;
    j->work.data = j;
    if (uv_queue_work(kb_broker_loop(req->broker), &j->work, job_work, job_after) != 0) {
        ks_topic_create_write(j->pt); /* the pool refused: at once, on the loop */
        rc = ks_topic_create_finish(j->pt, t);
        free(j);
        return rc;
    }
    j->next = hs->autocreates;
    hs->autocreates = j;
    *job = j;
    return 1;
}

bool kb_autocreate_just_made(kb_req_t *req, const char *name)
{
    kb_hstate_t *hs = kb_hstate_find(req->broker);
    for (kb_autocreate_t *j = hs ? hs->autocreates : NULL; j; j = j->next)
        if (j->replaying && j->status == 0 && strcmp(j->name, name) == 0)
            return true;
    return false;
}

int kb_autocreate_wait(kb_req_t *req, kb_autocreate_t *job)
{
    kb_lane_wait_t *w = kp_arena_alloc(&req->arena, sizeof *w); /* lives as long as req */
    if (!w)
        return K_ERR_NOMEM;
    w->req = req;
    w->next = NULL;
    if (job->tail)
        job->tail->next = w;
    else
        job->head = w;
    job->tail = w;
    return KB_PENDING;
}

void kb_autocreate_close(kb_hstate_t *hs)
{
    while (hs->autocreates) {
        kb_autocreate_t *j = hs->autocreates;
        hs->autocreates = j->next;
        if (j->status == 1) {
            j->hs = NULL; /* job_after finishes the create, ends its waiters and frees it */
            continue;
        }
        free(j);
    }
}

/*
 * The data-path handlers' per-broker state and their subsystem (see h_common.h).
 * Loop thread only.
 */
#include "broker/api/h_common.h"
#include "broker/api/h_auth_writes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/ks_io.h"

kb_hstate_t *kb_hstate_find(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_api_subsys) : NULL;
    return slot ? *slot : NULL;
}

kb_hstate_t *kb_hstate(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_api_subsys) : NULL;
    if (!slot)
        return NULL;
    if (*slot)
        return *slot;
    kb_hstate_t *hs = calloc(1, sizeof *hs); /* owned by the broker's api slot until close */
    if (!hs)
        return NULL;
    hs->broker = b;
    *slot = hs;
    return hs;
}

static int api_init(kb_broker_t *b)
{
    return kb_hstate(b) ? 0 : K_ERR_NOMEM;
}

static void api_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_api_subsys);
    kb_hstate_t *hs = slot ? *slot : NULL;
    if (!hs)
        return;
    kb_fetch_close_all(hs); /* answers parked fetches; their timers close on the loop */
    kb_pid_close(hs);
    kb_topic_lane_close(hs);
    kb_autocreate_close(hs);
    kb_authw_close(hs);
    *slot = NULL;
    free(hs);
}

const kb_subsys_t kb_api_subsys = {
    .name = "api",
    .init = api_init,
    .close = api_close,
};

/* ------------------------------------------------------------------------------------------ */
/* Off-loop admin writes                                                                        */

static void offloop_work(uv_work_t *w)
{
    kb_offloop_t *o = w->data;
    o->run(o);
}

static void offloop_after(uv_work_t *w, int status)
{
    (void)status; /* never cancelled: nothing calls uv_cancel on these */
    kb_offloop_t *o = w->data;
    kb_req_t *req = o->req;
    int rc = o->done(o);
    if (rc == KB_PENDING)
        return; /* another part of the answer completes it */
    if (rc < 0 && !req->closed) {
        /* The answer cannot be built (out of memory): close instead of sending half of it. */
        kb_log(KB_LOG_ERROR, "answering api %d failed: %s", req->hdr.api_key, k_strerror(rc));
        kb_req_hold(req);
        kb_req_complete(req);
        kb_req_release(req, true);
        return;
    }
    kb_req_complete(req);
}

int kb_offloop_start(kb_req_t *req, kb_offloop_t *o)
{
    o->req = req;
    o->work.data = o;
    if (req->conn &&
        uv_queue_work(kb_broker_loop(req->broker), &o->work, offloop_work, offloop_after) == 0)
        return KB_PENDING;
    o->run(o);
    return o->done(o);
}

/* ------------------------------------------------------------------------------------------ */
/* The topic-change lane                                                                       */

bool kb_topic_lane_enter(kb_req_t *req)
{
    kb_hstate_t *hs = kb_hstate(req->broker);
    if (!hs)
        return true; /* out of memory: unserialized; storage still refuses a second change of
                      * one topic (K_ERR_AGAIN) */
    bool turn = hs->lane_granted == req || (!hs->lane_owner && !hs->lane_head);
    if (!turn && req->conn) {
        kb_lane_wait_t *w = kp_arena_alloc(&req->arena, sizeof *w); /* lives as long as req */
        if (w) {
            w->req = req;
            w->next = NULL;
            if (hs->lane_tail)
                hs->lane_tail->next = w;
            else
                hs->lane_head = w;
            hs->lane_tail = w;
            return false;
        }
    }
    if (hs->lane_granted == req)
        hs->lane_granted = NULL;
    if (!hs->lane_owner)
        hs->lane_owner = req;
    return true;
}

void kb_topic_lane_leave(kb_req_t *req)
{
    kb_hstate_t *hs = kb_hstate_find(req->broker);
    if (!hs || hs->lane_owner != req)
        return;
    hs->lane_owner = NULL;
    if (hs->lane_pumping)
        return; /* a replay below left: the loop there goes on */
    /* Replayed here, not from inside the replayed handler: a request that takes and leaves
     * the lane within its handler must not replay the next one nested in its own dispatch. */
    hs->lane_pumping = true;
    while (!hs->lane_owner && hs->lane_head) {
        kb_lane_wait_t *w = hs->lane_head;
        hs->lane_head = w->next;
        if (!hs->lane_head)
            hs->lane_tail = NULL;
        kb_req_t *next = w->req;
        if (next->closed) {
            kb_req_complete(next); /* the client left while it waited: freed unanswered */
            continue;
        }
        hs->lane_granted = next;
        kb_req_rerun(next);
        if (hs->lane_granted == next)
            hs->lane_granted = NULL;
    }
    hs->lane_pumping = false;
}

void kb_topic_lane_close(kb_hstate_t *hs)
{
    /* Shutdown past the drain: the waiting requests end unanswered (their connections close
     * next), so each is freed once. */
    while (hs->lane_head) {
        kb_lane_wait_t *w = hs->lane_head;
        hs->lane_head = w->next;
        if (w->req->closed)
            kb_req_complete(w->req);
        else
            kb_req_complete_no_response(w->req);
    }
    hs->lane_tail = NULL;
    hs->lane_owner = hs->lane_granted = NULL;
}

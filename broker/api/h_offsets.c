/*
 * Offset APIs: OffsetCommit (8), OffsetFetch (9, including the v8+ multi-group form) and
 * OffsetDelete (47).
 *
 * A commit is validated by the coordinator (generation, member, static instance), written to
 * the offsets log, applied to the in-memory state, and answered only once the log has fsynced
 * it. The in-memory state is updated at append time so that a snapshot taken meanwhile holds
 * it; if that fsync fails the client gets COORDINATOR_NOT_AVAILABLE (and retries) although the
 * offset is already visible to OffsetFetch.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_group.h"
#include "broker/group/cgroup.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"
#include "protocol/gen/kp_delete_groups.h"
#include "protocol/gen/kp_offset_commit.h"
#include "protocol/gen/kp_offset_delete.h"
#include "protocol/gen/kp_offset_fetch.h"
#include "protocol/kp_errors.h"

/* ------------------------------------------------------------------------------------------ */
/* Deferred answers (see h_group.h)                                                            */

typedef struct {
    kb_req_t *req;
    kb_gdefer_kind_t kind;
    void *resp;
    bool in_handler; /* the sync call has not returned yet */
    bool answered;
} defer_t;

static int16_t fail_code(int16_t err, int status)
{
    return status < 0 && err == KP_ERR_NONE ? KP_ERR_COORDINATOR_NOT_AVAILABLE : err;
}

int kb_gdefer_encode(kb_req_t *req, kb_gdefer_kind_t kind, void *resp, int status)
{
    int16_t v = req->hdr.api_version;
    switch (kind) {
    case KB_GDEFER_COMMIT: {
        kp_offset_commit_resp_t *r = resp;
        for (int32_t i = 0; i < r->topics_count; i++)
            for (int32_t j = 0; j < r->topics[i].partitions_count; j++)
                r->topics[i].partitions[j].error_code =
                    fail_code(r->topics[i].partitions[j].error_code, status);
        return kp_offset_commit_resp_encode(&req->resp, v, r);
    }
    case KB_GDEFER_DELETE_GROUPS: {
        kp_delete_groups_resp_t *r = resp;
        for (int32_t i = 0; i < r->results_count; i++)
            r->results[i].error_code = fail_code(r->results[i].error_code, status);
        return kp_delete_groups_resp_encode(&req->resp, v, r);
    }
    case KB_GDEFER_OFFSET_DELETE: {
        kp_offset_delete_resp_t *r = resp;
        r->error_code = fail_code(r->error_code, status);
        return kp_offset_delete_resp_encode(&req->resp, v, r);
    }
    }
    return K_ERR_INVAL;
}

static void on_synced(void *arg, int status)
{
    defer_t *d = arg;
    if (status < 0)
        kb_log(KB_LOG_WARN, "groups: fsync of %s failed: %s", KB_OFFSETS_TOPIC,
               k_strerror(status));
    kb_gdefer_encode(d->req, d->kind, d->resp, status);
    d->answered = true;
    if (!d->in_handler)
        kb_req_complete(d->req);
}

int kb_gdefer(kb_gstate_t *gs, kb_req_t *req, kb_gdefer_kind_t kind, void *resp, int64_t end)
{
    defer_t *d = kp_arena_alloc(&req->arena, sizeof *d); /* lives as long as the request */
    if (!d)
        return K_ERR_NOMEM;
    d->req = req;
    d->kind = kind;
    d->resp = resp;
    d->in_handler = true;
    int rc = kb_ostore_sync(gs->ostore, end, on_synced, d);
    d->in_handler = false;
    if (rc < 0) {
        rc = kb_gdefer_encode(req, kind, resp, rc);
        return rc < 0 ? rc : KB_DONE;
    }
    return d->answered ? KB_DONE : KB_PENDING;
}

/* ------------------------------------------------------------------------------------------ */
/* OffsetCommit                                                                                */

static bool partition_exists(ks_store_t *s, kp_str_t topic, int32_t partition)
{
    ks_topic_t *t = topic.len > 0 ? ks_topic_find(s, topic.ptr, (size_t)topic.len) : NULL;
    return t && ks_topic_part(t, partition) != NULL;
}

/* One OffsetCommit being worked through (all views into the request). */
typedef struct {
    kb_req_t *req;
    kb_gstate_t *gs;
    const kp_offset_commit_req_t *m;
    kb_gtime_t now; /* wall: commit times; mono: the member's session */
    kb_group_t *g;
    int16_t gerr;  /* group-level answer for every partition that gets that far */
    bool checked;  /* the group check ran */
    kb_ostore_rec_t *recs;
    int32_t nrec;
} commit_t;

/* One partition: its error code in pr, or a record to write in c->recs. */
static int commit_partition(commit_t *c, kp_str_t topic,
                            const kp_offset_commit_req_offset_commit_request_partition_t *rp,
                            kp_offset_commit_resp_offset_commit_response_partition_t *pr)
{
    int16_t v = c->req->hdr.api_version;
    kp_offset_commit_resp_offset_commit_response_partition_init(pr);
    pr->partition_index = rp->partition_index;
    if (c->gerr == KP_ERR_NONE &&
        !partition_exists(kb_broker_store(c->req->broker), topic, rp->partition_index)) {
        pr->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    if (c->gerr == KP_ERR_NONE && !c->checked) {
        /* The group check runs once, for the partitions that exist. */
        c->checked = true;
        c->gerr = kb_group_commit_check(c->gs->coord, c->m->group_id,
                                        c->m->generation_id_or_member_epoch, c->m->member_id,
                                        v >= 7 ? c->m->group_instance_id : (kp_str_t){NULL, -1},
                                        c->now, &c->g);
        /* Kafka: a consumer group's member commits with OffsetCommit v9+ (member epochs). */
        if (c->gerr == KP_ERR_NONE && c->g && c->g->cg && v < 9 &&
            c->m->generation_id_or_member_epoch >= 0)
            c->gerr = KP_ERR_UNSUPPORTED_VERSION;
    }
    if (c->gerr != KP_ERR_NONE) {
        pr->error_code = c->gerr;
        return 0;
    }
    kp_str_t md = rp->committed_metadata.len < 0 ? kp_str("") : rp->committed_metadata;
    if (md.len > KB_OFFSET_METADATA_MAX) {
        pr->error_code = KP_ERR_OFFSET_METADATA_TOO_LARGE;
        return 0;
    }
    char *mds = kp_arena_alloc(&c->req->arena, (size_t)md.len + 1);
    if (!mds)
        return K_ERR_NOMEM;
    memcpy(mds, md.ptr ? md.ptr : "", (size_t)md.len);
    mds[md.len] = 0;
    kb_ostore_rec_t *rec = &c->recs[c->nrec++];
    rec->topic = topic;
    rec->partition = rp->partition_index;
    rec->tombstone = false;
    rec->o.offset = rp->committed_offset;
    rec->o.leader_epoch = v >= 6 ? rp->committed_leader_epoch : -1;
    rec->o.metadata = mds;
    rec->o.metadata_len = md.len;
    rec->o.commit_ts = c->now.wall;
    rec->o.expire_ts =
        v <= 4 && c->m->retention_time_ms >= 0 ? c->now.wall + c->m->retention_time_ms : -1;
    return 0;
}

/* The response skeleton and the records to write; READ on each topic (Kafka: before
 * existence, TOPIC_AUTHORIZATION_FAILED). */
static int commit_build(commit_t *c, kp_offset_commit_resp_t *resp)
{
    const kp_offset_commit_req_t *m = c->m;
    kp_arena_t *a = &c->req->arena;
    int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
    resp->topics = nt ? kp_arena_alloc(a, sizeof *resp->topics * (size_t)nt) : NULL;
    if (nt && !resp->topics)
        return K_ERR_NOMEM;
    resp->topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const kp_offset_commit_req_offset_commit_request_topic_t *rt = &m->topics[i];
        kp_offset_commit_resp_offset_commit_response_topic_t *tr = &resp->topics[i];
        kp_offset_commit_resp_offset_commit_response_topic_init(tr);
        tr->name = rt->name;
        int32_t np = rt->partitions_count > 0 ? rt->partitions_count : 0;
        tr->partitions = np ? kp_arena_alloc(a, sizeof *tr->partitions * (size_t)np) : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        tr->partitions_count = np;
        bool denied = c->gerr != KP_ERR_GROUP_AUTHORIZATION_FAILED &&
                      !kb_authorize_str(c->req, KB_OP_READ, KB_RES_TOPIC, rt->name);
        for (int32_t j = 0; j < np; j++) {
            if (denied) {
                kp_offset_commit_resp_offset_commit_response_partition_init(&tr->partitions[j]);
                tr->partitions[j].partition_index = rt->partitions[j].partition_index;
                tr->partitions[j].error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            } else if (commit_partition(c, rt->name, &rt->partitions[j], &tr->partitions[j])) {
                return K_ERR_NOMEM;
            }
            kb_req_error(c->req, tr->partitions[j].error_code);
        }
    }
    return 0;
}

/* Logs the records, applies them, and answers once they are durable. */
static int commit_store(commit_t *c, kp_offset_commit_resp_t *resp)
{
    kb_gstate_t *gs = c->gs;
    int64_t end = 0;
    int rc = kb_ostore_append_offsets(gs->ostore, c->m->group_id, c->recs, c->nrec, c->now.wall,
                                      &end);
    if (rc == 0) {
        for (int32_t i = 0; i < c->nrec && rc == 0; i++)
            rc = kb_group_offset_put(gs->coord, c->m->group_id, c->recs[i].topic,
                                     c->recs[i].partition, &c->recs[i].o);
        if (rc)
            kb_log(KB_LOG_ERROR, "groups: out of memory applying a commit");
        kb_ostore_maybe_compact(gs->ostore, c->now.wall);
        kb_gstate_arm(gs);
        return kb_gdefer(gs, c->req, KB_GDEFER_COMMIT, resp, end);
    }
    kb_log(KB_LOG_WARN, "groups: appending to %s failed: %s", KB_OFFSETS_TOPIC, k_strerror(rc));
    int16_t err = rc == K_ERR_TOOLARGE ? KP_ERR_INVALID_COMMIT_OFFSET_SIZE
                                       : KP_ERR_COORDINATOR_NOT_AVAILABLE;
    for (int32_t i = 0; i < resp->topics_count; i++)
        for (int32_t j = 0; j < resp->topics[i].partitions_count; j++)
            if (resp->topics[i].partitions[j].error_code == KP_ERR_NONE)
                resp->topics[i].partitions[j].error_code = err;
    kb_gstate_arm(gs);
    rc = kb_gdefer_encode(c->req, KB_GDEFER_COMMIT, resp, 0);
    return rc < 0 ? rc : KB_DONE;
}

/*
 * The audit detail of an offsets change: "topic:partition=offset,..." (commit) or
 * "topic:partition,..." (delete), cut at 4 KiB with "..." (arena; NULL when out of memory).
 */
static const char *offsets_detail(kb_req_t *req, const kp_offset_commit_req_t *cm,
                                  const kp_offset_delete_req_t *dm)
{
    enum { CAP = 4096 };
    char *d = kp_arena_alloc(&req->arena, CAP);
    if (!d) return NULL;
    size_t n = 0;
    d[0] = 0;
    int32_t nt = cm ? cm->topics_count : dm->topics_count;
    for (int32_t i = 0; i < nt && n < CAP; i++) {
        kp_str_t t = cm ? cm->topics[i].name : dm->topics[i].name;
        int32_t np = cm ? cm->topics[i].partitions_count : dm->topics[i].partitions_count;
        for (int32_t j = 0; j < np && n < CAP; j++) {
            int w = cm ? snprintf(d + n, CAP - n, "%s%.*s:%d=%lld", n ? "," : "",
                                  (int)(t.len > 0 ? t.len : 0), t.ptr ? t.ptr : "",
                                  (int)cm->topics[i].partitions[j].partition_index,
                                  (long long)cm->topics[i].partitions[j].committed_offset)
                       : snprintf(d + n, CAP - n, "%s%.*s:%d", n ? "," : "",
                                  (int)(t.len > 0 ? t.len : 0), t.ptr ? t.ptr : "",
                                  (int)dm->topics[i].partitions[j].partition_index);
            n = w < 0 || (size_t)w >= CAP - n ? CAP : n + (size_t)w;
        }
    }
    if (n >= CAP) memcpy(d + CAP - 4, "...", 4);
    return d;
}

int kb_handle_offset_commit(kb_req_t *req)
{
    kp_offset_commit_req_t m;
    int rc = kp_offset_commit_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    if (kb_gstr_too_long(m.group_id))
        return K_ERR_MALFORMED;
    kp_offset_commit_resp_t *resp = kp_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return K_ERR_NOMEM;
    kp_offset_commit_resp_init(resp);
    commit_t c = {.req = req, .gs = kb_gstate(req->broker), .m = &m, .now = kb_gnow()};
    /* A commit from outside the group (generation -1, no member id) is how
     * kafka-consumer-groups --reset-offsets and AdminClient.alterConsumerGroupOffsets set a
     * group's offsets: the audit trail records it as a change (ALTER on the group), with the
     * offsets, before it is made. */
    if (m.generation_id_or_member_epoch < 0 && m.member_id.len <= 0)
        req->audit_detail = offsets_detail(req, &m, NULL);
    /* READ on the group first: a denied commit learns nothing else (Kafka) */
    if (!kb_authorize_str(req, KB_OP_READ, KB_RES_GROUP, m.group_id))
        c.gerr = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (!c.gs || !c.gs->ostore)
        c.gerr = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    int32_t total = 0;
    for (int32_t i = 0; i < m.topics_count; i++)
        total += m.topics[i].partitions_count > 0 ? m.topics[i].partitions_count : 0;
    c.recs = total ? kp_arena_alloc(&req->arena, sizeof *c.recs * (size_t)total) : NULL;
    if ((total && !c.recs) || commit_build(&c, resp) < 0)
        return K_ERR_NOMEM;
    if (c.nrec)
        return commit_store(&c, resp);
    if (c.gs)
        kb_gstate_arm(c.gs);
    rc = kb_gdefer_encode(req, KB_GDEFER_COMMIT, resp, 0);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* OffsetFetch                                                                                 */

typedef struct {
    kp_str_t name;
    const int32_t *parts;
    int32_t nparts;
} ftopic_t;

typedef struct {
    kp_str_t topic;
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kp_str_t metadata;
    int16_t err;
} frow_t;

static int row_cmp(const void *a, const void *b)
{
    const frow_t *x = a, *y = b;
    int32_t n = x->topic.len < y->topic.len ? x->topic.len : y->topic.len;
    int c = memcmp(x->topic.ptr, y->topic.ptr, (size_t)n);
    if (c)
        return c;
    if (x->topic.len != y->topic.len)
        return x->topic.len < y->topic.len ? -1 : 1;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static void row_fill(frow_t *r, const kb_group_t *g, kp_str_t topic, int32_t partition,
                     int16_t err)
{
    r->topic = topic;
    r->partition = partition;
    r->offset = -1;
    r->epoch = -1;
    r->metadata = kp_str("");
    r->err = err;
    const kb_offset_t *o = g && err == KP_ERR_NONE ? kb_group_offset_get(g, topic, partition)
                                                   : NULL;
    if (o) {
        r->offset = o->offset;
        r->epoch = o->leader_epoch;
        r->metadata = o->metadata ? (kp_str_t){o->metadata, o->metadata_len} : kp_str("");
    }
}

/*
 * Rows for one group: the requested partitions (topics != NULL), or every committed offset
 * sorted by topic and partition (topics == NULL). Views into the group's strings are only
 * used before anything else runs on the loop (the response is encoded right after).
 */
static bool may_describe_topic(kb_req_t *req, kp_str_t topic)
{
    return kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_TOPIC, topic);
}

static int fetch_rows(kb_req_t *req, const kb_group_t *g, const ftopic_t *topics, int32_t nt,
                      int16_t err, frow_t **out, int32_t *nout)
{
    int32_t n = 0;
    if (topics) {
        for (int32_t i = 0; i < nt; i++)
            n += topics[i].nparts > 0 ? topics[i].nparts : 0;
    } else {
        n = g ? (int32_t)g->offsets.count : 0;
    }
    frow_t *rows = n ? kp_arena_alloc(&req->arena, sizeof *rows * (size_t)n) : NULL;
    if (n && !rows)
        return K_ERR_NOMEM;
    int32_t k = 0;
    if (topics) {
        for (int32_t i = 0; i < nt; i++) {
            /* a topic the principal may not DESCRIBE: offset -1, TOPIC_AUTHORIZATION_FAILED */
            int16_t e = err == KP_ERR_NONE && !may_describe_topic(req, topics[i].name)
                            ? KP_ERR_TOPIC_AUTHORIZATION_FAILED
                            : err;
            for (int32_t j = 0; j < topics[i].nparts; j++)
                row_fill(&rows[k++], g, topics[i].name, topics[i].parts[j], e);
        }
    } else if (g) {
        for (kb_gmap_ent_t *e = kb_gmap_next(&g->offsets, NULL); e;
             e = kb_gmap_next(&g->offsets, e)) {
            kp_str_t topic;
            int32_t partition;
            kb_group_offset_key(e, &topic, &partition);
            if (may_describe_topic(req, topic)) /* all offsets: denied topics are left out */
                row_fill(&rows[k++], g, topic, partition, KP_ERR_NONE);
        }
        if (k > 1) /* rows is NULL for a group without offsets; qsort wants a real array */
            qsort(rows, (size_t)k, sizeof *rows, row_cmp);
    }
    *out = rows;
    *nout = k;
    return 0;
}

static bool run_starts(const frow_t *rows, int32_t i)
{
    return i == 0 || rows[i].topic.len != rows[i - 1].topic.len ||
           (rows[i].topic.len > 0 &&
            memcmp(rows[i].topic.ptr, rows[i - 1].topic.ptr, (size_t)rows[i].topic.len) != 0);
}

/* Number of topic runs in rows (requested topics keep their order; all-topics rows are sorted). */
static int32_t topic_runs(const frow_t *rows, int32_t n)
{
    int32_t t = 0;
    for (int32_t i = 0; i < n; i++)
        t += run_starts(rows, i);
    return t;
}

/* The same shape is emitted for v1-7 (..._topic_t/..._partition_t) and v8+
 * (..._topics_t/..._partitions_t). */
#define BUILD_TOPICS(A, ROWS, N, TT, PT, TINIT, PINIT, OUT, OUTN)                                \
    do {                                                                                      \
        int32_t nt_ = topic_runs(ROWS, N);                                                    \
        TT *ts_ = nt_ ? kp_arena_alloc(A, sizeof *ts_ * (size_t)nt_) : NULL;                  \
        PT *ps_ = (N) ? kp_arena_alloc(A, sizeof *ps_ * (size_t)(N)) : NULL;                  \
        if ((nt_ && !ts_) || ((N) && !ps_))                                                   \
            return K_ERR_NOMEM;                                                               \
        int32_t t_ = -1;                                                                      \
        for (int32_t i_ = 0; i_ < (N); i_++) {                                                \
            if (run_starts(ROWS, i_)) {                                                       \
                t_++;                                                                         \
                TINIT(&ts_[t_]);                                                              \
                ts_[t_].name = (ROWS)[i_].topic;                                              \
                ts_[t_].partitions = &ps_[i_];                                                \
            }                                                                                 \
            PT *p_ = &ps_[i_];                                                                \
            PINIT(p_);                                                                        \
            p_->partition_index = (ROWS)[i_].partition;                                       \
            p_->committed_offset = (ROWS)[i_].offset;                                         \
            p_->committed_leader_epoch = (ROWS)[i_].epoch;                                    \
            p_->metadata = (ROWS)[i_].metadata;                                               \
            p_->error_code = (ROWS)[i_].err;                                                  \
            ts_[t_].partitions_count++;                                                       \
        }                                                                                     \
        OUT = ts_;                                                                            \
        OUTN = nt_;                                                                           \
    } while (0)

static int16_t fetch_group_error(kb_req_t *req, kb_gstate_t *gs, kp_str_t group_id)
{
    if (!kb_authorize_str(req, KB_OP_DESCRIBE, KB_RES_GROUP, group_id))
        return KP_ERR_GROUP_AUTHORIZATION_FAILED;
    if (!gs || !gs->ostore)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (group_id.len < 0)
        return KP_ERR_INVALID_GROUP_ID;
    return KP_ERR_NONE;
}

static int fetch_v1_7(kb_req_t *req, kb_gstate_t *gs, const kp_offset_fetch_req_t *m,
                      kp_offset_fetch_resp_t *resp)
{
    int16_t v = req->hdr.api_version;
    int16_t gerr = fetch_group_error(req, gs, m->group_id);
    kb_req_error(req, gerr);
    if (gerr != KP_ERR_NONE && v >= 2) {
        resp->error_code = gerr;
        return 0;
    }
    const kb_group_t *g = gerr == KP_ERR_NONE ? kb_gcoord_find(gs->coord, m->group_id) : NULL;
    int32_t nt = m->topics_count;
    ftopic_t *ft = NULL;
    if (nt >= 0) {
        ft = kp_arena_alloc(&req->arena, sizeof *ft * (size_t)(nt ? nt : 1));
        if (!ft)
            return K_ERR_NOMEM;
        for (int32_t i = 0; i < nt; i++) {
            ft[i].name = m->topics[i].name;
            ft[i].parts = m->topics[i].partition_indexes;
            ft[i].nparts = m->topics[i].partition_indexes_count > 0
                               ? m->topics[i].partition_indexes_count
                               : 0;
        }
    }
    frow_t *rows;
    int32_t n;
    if (fetch_rows(req, g, ft, nt, gerr, &rows, &n))
        return K_ERR_NOMEM;
    BUILD_TOPICS(&req->arena, rows, n, kp_offset_fetch_resp_offset_fetch_response_topic_t,
                 kp_offset_fetch_resp_offset_fetch_response_partition_t,
                 kp_offset_fetch_resp_offset_fetch_response_topic_init,
                 kp_offset_fetch_resp_offset_fetch_response_partition_init, resp->topics,
                 resp->topics_count);
    return 0;
}

static int fetch_v8(kb_req_t *req, kb_gstate_t *gs, const kp_offset_fetch_req_t *m,
                    kp_offset_fetch_resp_t *resp)
{
    int32_t ng = m->groups_count > 0 ? m->groups_count : 0;
    resp->groups = ng ? kp_arena_alloc(&req->arena, sizeof *resp->groups * (size_t)ng) : NULL;
    if (ng && !resp->groups)
        return K_ERR_NOMEM;
    resp->groups_count = ng;
    for (int32_t gi = 0; gi < ng; gi++) {
        const kp_offset_fetch_req_offset_fetch_request_group_t *rg = &m->groups[gi];
        kp_offset_fetch_resp_offset_fetch_response_group_t *og = &resp->groups[gi];
        kp_offset_fetch_resp_offset_fetch_response_group_init(og);
        og->group_id = rg->group_id;
        og->error_code = fetch_group_error(req, gs, rg->group_id);
        const kb_group_t *g =
            og->error_code == KP_ERR_NONE ? kb_gcoord_find(gs->coord, rg->group_id) : NULL;
        /* v9+: a consumer group's member fetches at its current epoch (KIP-848). */
        if (g && req->hdr.api_version >= 9)
            og->error_code = kb_cgroup_fetch_check(g, rg->member_id, rg->member_epoch);
        kb_req_error(req, og->error_code);
        if (og->error_code != KP_ERR_NONE)
            continue;
        int32_t nt = rg->topics_count;
        ftopic_t *ft = NULL;
        if (nt >= 0) {
            ft = kp_arena_alloc(&req->arena, sizeof *ft * (size_t)(nt ? nt : 1));
            if (!ft)
                return K_ERR_NOMEM;
            for (int32_t i = 0; i < nt; i++) {
                ft[i].name = rg->topics[i].name;
                ft[i].parts = rg->topics[i].partition_indexes;
                ft[i].nparts = rg->topics[i].partition_indexes_count > 0
                                   ? rg->topics[i].partition_indexes_count
                                   : 0;
            }
        }
        frow_t *rows;
        int32_t n;
        if (fetch_rows(req, g, ft, nt, KP_ERR_NONE, &rows, &n))
            return K_ERR_NOMEM;
        BUILD_TOPICS(&req->arena, rows, n, kp_offset_fetch_resp_offset_fetch_response_topics_t,
                     kp_offset_fetch_resp_offset_fetch_response_partitions_t,
                     kp_offset_fetch_resp_offset_fetch_response_topics_init,
                     kp_offset_fetch_resp_offset_fetch_response_partitions_init, og->topics,
                     og->topics_count);
    }
    return 0;
}

int kb_handle_offset_fetch(kb_req_t *req)
{
    kp_offset_fetch_req_t m;
    int16_t v = req->hdr.api_version;
    int rc = kp_offset_fetch_req_decode(&req->body, v, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_offset_fetch_resp_t resp;
    kp_offset_fetch_resp_init(&resp);
    /* require_stable (v7+) needs no wait: without transactions no commit is ever pending. */
    rc = v >= 8 ? fetch_v8(req, gs, &m, &resp) : fetch_v1_7(req, gs, &m, &resp);
    if (rc < 0)
        return rc;
    rc = kp_offset_fetch_resp_encode(&req->resp, v, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* ------------------------------------------------------------------------------------------ */
/* OffsetDelete                                                                                */

/* The per-partition answers and the tombstones to write; READ on each topic (Kafka). */
static int delete_build(kb_req_t *req, const kp_offset_delete_req_t *m, const kb_group_t *g,
                        kp_offset_delete_resp_t *resp, kb_ostore_rec_t *recs, int32_t *nrec)
{
    ks_store_t *store = kb_broker_store(req->broker);
    int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
    resp->topics = nt ? kp_arena_alloc(&req->arena, sizeof *resp->topics * (size_t)nt) : NULL;
    if (nt && !resp->topics)
        return K_ERR_NOMEM;
    resp->topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const kp_offset_delete_req_offset_delete_request_topic_t *rt = &m->topics[i];
        kp_offset_delete_resp_offset_delete_response_topic_t *tr = &resp->topics[i];
        kp_offset_delete_resp_offset_delete_response_topic_init(tr);
        tr->name = rt->name;
        int32_t np = rt->partitions_count > 0 ? rt->partitions_count : 0;
        tr->partitions = np ? kp_arena_alloc(&req->arena, sizeof *tr->partitions * (size_t)np)
                            : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        tr->partitions_count = np;
        bool denied = !kb_authorize_str(req, KB_OP_READ, KB_RES_TOPIC, rt->name);
        int16_t terr = kb_group_offset_delete_check(g, rt->name);
        for (int32_t j = 0; j < np; j++) {
            kp_offset_delete_resp_offset_delete_response_partition_t *pr = &tr->partitions[j];
            kp_offset_delete_resp_offset_delete_response_partition_init(pr);
            int32_t part = rt->partitions[j].partition_index;
            pr->partition_index = part;
            if (denied)
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!partition_exists(store, rt->name, part))
                pr->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                pr->error_code = terr;
            kb_req_error(req, pr->error_code);
            if (pr->error_code != KP_ERR_NONE)
                continue;
            recs[*nrec] = (kb_ostore_rec_t){.topic = rt->name, .partition = part};
            recs[*nrec].tombstone = true;
            (*nrec)++;
        }
    }
    return 0;
}

/* Writes the tombstones, applies them, and answers once they are durable. */
static int delete_store(kb_req_t *req, kb_gstate_t *gs, kp_str_t group_id, kb_group_t *g,
                        kp_offset_delete_resp_t *resp, kb_ostore_rec_t *recs, int32_t nrec)
{
    int64_t now = kb_wall_ms(); /* the tombstones' timestamp */
    int64_t end = 0;
    int rc = kb_ostore_append_offsets(gs->ostore, group_id, recs, nrec, now, &end);
    if (rc < 0) {
        resp->error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
        resp->topics_count = 0;
        rc = kb_gdefer_encode(req, KB_GDEFER_OFFSET_DELETE, resp, 0);
        return rc < 0 ? rc : KB_DONE;
    }
    for (int32_t i = 0; i < nrec; i++)
        kb_group_offset_delete(gs->coord, group_id, recs[i].topic, recs[i].partition);
    /* An empty group left without offsets is gone, as after retention. */
    if (g->state == KB_GROUP_EMPTY && !g->offsets.count && !g->n_pending) {
        gs->appended = false;
        kb_group_delete(gs->coord, group_id);
        if (gs->appended)
            end = gs->last_end;
    }
    kb_ostore_maybe_compact(gs->ostore, now);
    kb_gstate_arm(gs);
    return kb_gdefer(gs, req, KB_GDEFER_OFFSET_DELETE, resp, end);
}

int kb_handle_offset_delete(kb_req_t *req)
{
    kp_offset_delete_req_t m;
    int rc = kp_offset_delete_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    kb_gstate_t *gs = kb_gstate(req->broker);
    kp_offset_delete_resp_t *resp = kp_arena_alloc(&req->arena, sizeof *resp);
    if (!resp)
        return K_ERR_NOMEM;
    kp_offset_delete_resp_init(resp);
    if (kb_gstr_too_long(m.group_id))
        return K_ERR_MALFORMED;
    kb_group_t *g = NULL;
    req->audit_detail = offsets_detail(req, NULL, &m); /* which offsets, for the trail */
    if (!kb_authorize_str(req, KB_OP_DELETE, KB_RES_GROUP, m.group_id))
        resp->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (!gs || !gs->ostore)
        resp->error_code = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    else
        resp->error_code = kb_group_offset_delete_group_check(gs->coord, m.group_id, &g);
    kb_req_error(req, resp->error_code);
    if (resp->error_code != KP_ERR_NONE) {
        rc = kb_gdefer_encode(req, KB_GDEFER_OFFSET_DELETE, resp, 0);
        return rc < 0 ? rc : KB_DONE;
    }
    int32_t total = 0;
    for (int32_t i = 0; i < m.topics_count; i++)
        total += m.topics[i].partitions_count > 0 ? m.topics[i].partitions_count : 0;
    kb_ostore_rec_t *recs = total ? kp_arena_alloc(&req->arena, sizeof *recs * (size_t)total)
                                  : NULL;
    int32_t nrec = 0;
    if ((total && !recs) || delete_build(req, &m, g, resp, recs, &nrec) < 0)
        return K_ERR_NOMEM;
    if (nrec)
        return delete_store(req, gs, m.group_id, g, resp, recs, nrec);
    rc = kb_gdefer_encode(req, KB_GDEFER_OFFSET_DELETE, resp, 0);
    return rc < 0 ? rc : KB_DONE;
}

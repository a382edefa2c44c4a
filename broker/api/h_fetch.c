/*
 * Fetch (key 1), versions 4-17, and the long poll that goes with it.
 *
 * Per partition: topics by name (< v13) or by topic id (v13+, unknown id -> UNKNOWN_TOPIC_ID);
 * an unknown topic or partition -> UNKNOWN_TOPIC_OR_PARTITION; current_leader_epoch checked
 * against 0 (h_common.h); fetch_offset outside [log_start, log_end] -> OFFSET_OUT_OF_RANGE
 * (fetching at log_end is an empty answer, not an error). A failed partition answers -1 for
 * its watermarks, as Kafka does. There are no transactions, so the last stable offset is the
 * high watermark and both isolation levels read up to it; aborted_transactions is null for
 * read_uncommitted and empty for read_committed (Kafka's shapes).
 *
 * Sizes (KIP-74): partitions are read in request order, each up to min(partition_max_bytes,
 * what is left of max_bytes); the first partition that returns data returns at least one whole
 * batch even when it is larger than either limit, so a consumer never sticks on a big batch.
 * max_bytes is also capped by the broker's fetch.max.bytes.
 *
 * No fetch sessions (KIP-227): every answer is a full response with session_id 0 and contains
 * exactly the partitions asked for. A request naming a session (session_id != 0, or an
 * epoch other than 0/-1) gets FETCH_SESSION_ID_NOT_FOUND, Kafka's answer for an unknown one.
 *
 * Long poll: when fewer than min_bytes are available, no partition failed and max_wait_ms > 0,
 * the request parks as a kb_fetch_waiter_t. kb_fetch_notify (called after every append)
 * estimates each waiter's available bytes from the growth of its partitions' sizes (capped
 * per partition at partition_max_bytes) and answers once the estimate reaches min_bytes; a
 * uv timer answers at max_wait_ms with whatever is there. The answer always re-reads the log,
 * so the estimate only decides when. Waiters are a plain list scanned on every append: a
 * factory box has a handful of consumers, and the scan is a few compares per waiter.
 * max_wait_ms is capped by fetch.long.poll.max.ms (30 s by default), and a waiter whose client
 * disconnects is retired at once through req->on_cancel, not at its deadline.
 *
 * Ownership: a waiter is heap-allocated, owned by its list while parked and by its timer's
 * close callback after the answer (libuv handles die only in their close callback). It never
 * dereferences a ks_part_t it saw earlier: partitions are re-resolved by name/id when
 * answering, and the remembered pointers are only compared, so a topic deleted meanwhile is
 * harmless. The read buffer is local to each answer and freed after encoding.
 *
 * Zero copy: on a real connection the record bytes are never read here. Each partition's
 * batches come back from storage as a file range (ks_part_read_slice: a dup'ed segment
 * descriptor, position, length), queued on the request (kb_req_add_file) and encoded as a
 * hole, so req->resp holds only the headers and the connection sends the ranges from the
 * files (broker/net/conn.c, transport write_file). What one Fetch stages in memory is its
 * headers, whatever max_bytes asks for. Only when no descriptor can be had (EMFILE) is a
 * partition copied as before.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/api/h_common.h"
#include "broker/auth/auth.h"
#include "broker/core/counters.h"

typedef struct {
    uintptr_t part_id; /* the partition's address at parking time, compared only */
    int64_t base_size; /* ks_part_size_bytes at parking time */
    int64_t growth;    /* bytes appended since, capped at max_bytes */
    int64_t max_bytes; /* partition_max_bytes */
} fetch_slot_t;

struct kb_fetch_waiter {
    kb_fetch_waiter_t *prev, *next;
    kb_hstate_t *hs;
    kb_req_t *req; /* NULL once answered */
    kp_fetch_req_t m;
    fetch_slot_t *slots; /* in req->arena */
    int nslots;
    int64_t have_bytes; /* what the first read found */
    uv_timer_t timer;
};

static const uint8_t no_bytes[1];

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                      */

static void part_error(kp_fetch_resp_partition_data_t *pd, int16_t err)
{
    pd->error_code = err;
    pd->high_watermark = -1;
    pd->last_stable_offset = -1;
    pd->log_start_offset = -1;
}

/* The topic of a fetch entry, by id (v13+) or name, if the principal may READ it (Kafka
 * checks READ before existence for names; an unknown id is UNKNOWN_TOPIC_ID first). */
static ks_topic_t *topic_resolve(const kb_fetch_ctx_t *ctx, const kp_fetch_req_fetch_topic_t *ft,
                                 int16_t *err)
{
    ks_topic_t *t;
    if (ctx->version >= 13) {
        t = ks_topic_find_by_id(ctx->store, ft->topic_id);
        *err = t ? KP_ERR_NONE : KP_ERR_UNKNOWN_TOPIC_ID;
        const char *name = t ? ks_topic_name(t) : NULL;
        if (t && ctx->req &&
            !kb_authorize(ctx->req, KB_OP_READ, KB_RES_TOPIC, name, strlen(name))) {
            *err = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            return NULL;
        }
    } else {
        if (ctx->req && !kb_authorize_str(ctx->req, KB_OP_READ, KB_RES_TOPIC, ft->topic)) {
            *err = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            return NULL;
        }
        t = kb_topic_find(ctx->store, ft->topic);
        *err = t ? KP_ERR_NONE : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return t;
}

/* Zero copy: the partition's batches as a file range queued on the request, the records left
 * as a hole. 1 when done so, 0 to copy instead (no descriptor to spare), < 0 on error. */
static int read_slice(const kb_fetch_ctx_t *ctx, int k, ks_part_t *p, int64_t offset,
                      size_t limit, bool min_one, kp_fetch_resp_partition_data_t *pd)
{
    ks_slice_t sl;
    if (!kb_req_file_room(ctx->req))
        return 0;
    int rc = ks_part_read_slice(p, offset, limit, min_one, &sl);
    if (rc == K_ERR_IO || rc == K_ERR_NOMEM)
        return 0;
    if (rc < 0)
        return rc;
    if (sl.len > 0) {
        if ((rc = kb_req_add_file(ctx->req, sl.fd, sl.pos, sl.len)) < 0)
            return rc;
        pd->records = (kp_bytes_t){KP_HOLE, (int32_t)sl.len};
        ctx->msgs[k] = sl.next_offset - sl.first_offset;
    }
    return 1;
}

/* Reads one partition (the k-th asked for) into data, or as a file range (zero copy); *len
 * gets the bytes returned. Returns the partition's error. */
static int16_t read_part(const kb_fetch_ctx_t *ctx, int k, ks_part_t *p,
                         const kp_fetch_req_fetch_partition_t *fp, int8_t isolation,
                         int64_t limit, bool min_one, kp_buf_t *data,
                         kp_fetch_resp_partition_data_t *pd, size_t *len)
{
    *len = 0;
    int16_t err = kb_leader_epoch_check(fp->current_leader_epoch);
    if (err != KP_ERR_NONE)
        return err;
    if (fp->fetch_offset < ks_part_log_start(p) || fp->fetch_offset > ks_part_log_end(p))
        return KP_ERR_OFFSET_OUT_OF_RANGE;
    size_t before = data->len;
    size_t max = (size_t)(limit > 0 ? limit : 0);
    int rc = ctx->zero_copy ? read_slice(ctx, k, p, fp->fetch_offset, max, min_one, pd) : 0;
    if (rc == 0)
        rc = ks_part_read(p, fp->fetch_offset, max, min_one, data);
    else if (rc == 1)
        rc = 0;
    if (rc < 0) {
        data->len = before; /* drop a partial read */
        if (rc != K_ERR_RANGE)
            kb_log(KB_LOG_WARN, "fetch: read of partition %d failed: %s", fp->partition,
                   k_strerror(rc));
        return kb_storage_error(rc);
    }
    if (data->err)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    *len = pd->records.ptr == KP_HOLE ? (size_t)pd->records.len : data->len - before;
    pd->high_watermark = ks_part_high_watermark(p);
    pd->last_stable_offset = pd->high_watermark;
    pd->log_start_offset = ks_part_log_start(p);
    pd->aborted_transactions_count = isolation == 1 ? 0 : -1;
    return KP_ERR_NONE;
}

int64_t kb_fetch_fill(const kb_fetch_ctx_t *ctx, const kp_fetch_req_t *m, kp_arena_t *a,
                      kp_fetch_resp_t *resp, kp_buf_t *data, ks_part_t **parts, bool *any_error)
{
    kp_fetch_resp_init(resp);
    *any_error = false;
    if (m->session_id != 0 || (m->session_epoch != 0 && m->session_epoch != -1)) {
        resp->error_code = KP_ERR_FETCH_SESSION_ID_NOT_FOUND;
        *any_error = true;
        return 0;
    }
    int64_t left = m->max_bytes;
    if (ctx->fetch_max_bytes > 0 && ctx->fetch_max_bytes < left)
        left = ctx->fetch_max_bytes;
    int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
    resp->responses_count = nt;
    resp->responses = nt ? kp_arena_alloc(a, sizeof *resp->responses * (size_t)nt) : NULL;
    if (nt && !resp->responses)
        return K_ERR_NOMEM;

    /* Record bytes are placed as offsets while data may still grow; pointers come last. */
    size_t *offs = NULL;
    int np_total = 0;
    for (int32_t i = 0; i < nt; i++)
        np_total += m->topics[i].partitions_count > 0 ? m->topics[i].partitions_count : 0;
    if (np_total && !(offs = kp_arena_alloc(a, sizeof *offs * (size_t)np_total)))
        return K_ERR_NOMEM;

    int64_t total = 0;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const kp_fetch_req_fetch_topic_t *ft = &m->topics[i];
        kp_fetch_resp_fetchable_topic_response_t *tr = &resp->responses[i];
        kp_fetch_resp_fetchable_topic_response_init(tr);
        tr->topic = ft->topic;
        tr->topic_id = ft->topic_id;
        int32_t np = ft->partitions_count > 0 ? ft->partitions_count : 0;
        tr->partitions_count = np;
        tr->partitions = np ? kp_arena_alloc(a, sizeof *tr->partitions * (size_t)np) : NULL;
        if (np && !tr->partitions)
            return K_ERR_NOMEM;
        int16_t terr;
        ks_topic_t *t = topic_resolve(ctx, ft, &terr);
        for (int32_t j = 0; j < np; j++, k++) {
            const kp_fetch_req_fetch_partition_t *fp = &ft->partitions[j];
            kp_fetch_resp_partition_data_t *pd = &tr->partitions[j];
            kp_fetch_resp_partition_data_init(pd);
            pd->partition_index = fp->partition;
            pd->records = (kp_bytes_t){no_bytes, 0};
            offs[k] = data->len;
            ks_part_t *p = t ? ks_topic_part(t, fp->partition) : NULL;
            if (parts)
                parts[k] = p;
            int16_t err = t ? (p ? KP_ERR_NONE : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION) : terr;
            size_t got = 0;
            if (err == KP_ERR_NONE) {
                int64_t limit = fp->partition_max_bytes < left ? fp->partition_max_bytes : left;
                err = read_part(ctx, k, p, fp, m->isolation_level, limit, total == 0, data, pd,
                                &got);
            }
            if (err != KP_ERR_NONE) {
                part_error(pd, err);
                *any_error = true;
                continue;
            }
            pd->records.len = (int32_t)got;
            total += (int64_t)got;
            left = left > (int64_t)got ? left - (int64_t)got : 0;
        }
    }
    if (data->err)
        return data->err;
    k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < resp->responses[i].partitions_count; j++, k++)
            if (resp->responses[i].partitions[j].records.len > 0 &&
                resp->responses[i].partitions[j].records.ptr != KP_HOLE)
                resp->responses[i].partitions[j].records.ptr = data->data + offs[k];
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* Answering                                                                                    */

/* msgs: one slot per requested partition (zero copy's message counts), or NULL. */
static kb_fetch_ctx_t ctx_of(kb_req_t *req, int64_t *msgs)
{
    const kb_config_t *cfg = kb_broker_config(req->broker);
    return (kb_fetch_ctx_t){
        .req = req,
        .store = kb_broker_store(req->broker),
        .fetch_max_bytes = cfg ? cfg->fetch_max_bytes : 0,
        .version = req->hdr.api_version,
        .zero_copy = msgs != NULL && kb_req_zero_copy(req),
        .msgs = msgs,
    };
}

/* Records in a run of record batches (a fetch answer's bytes), for the counters. */
static uint64_t batch_records(kp_bytes_t b)
{
    uint64_t n = 0;
    if (b.len <= 0)
        return 0;
    kp_batch_iter_t it;
    kp_batch_iter_init(&it, b.ptr, (size_t)b.len, false);
    const uint8_t *p;
    size_t len;
    kp_batch_hdr_t h;
    while (kp_batch_iter_next(&it, &p, &len) == 1)
        if (kp_batch_hdr_parse(p, len, &h) == 0 && h.records_count > 0)
            n += (uint64_t)h.records_count;
    return n;
}

/* Counts an answer that is about to leave: per-topic bytes/messages out and errors (topics
 * that exist only: parts[k] is the resolved partition of the k-th requested one, or NULL). */
static void count_answer(kb_req_t *req, const kp_fetch_resp_t *resp, ks_part_t **parts,
                         const int64_t *msgs)
{
    kb_req_error(req, resp->error_code);
    int k = 0;
    for (int32_t i = 0; i < resp->responses_count; i++) {
        const kp_fetch_resp_fetchable_topic_response_t *tr = &resp->responses[i];
        bool counted = false;
        for (int32_t j = 0; j < tr->partitions_count; j++, k++) {
            const kp_fetch_resp_partition_data_t *pd = &tr->partitions[j];
            kb_req_error(req, pd->error_code);
            ks_part_t *p = parts ? parts[k] : NULL;
            if (!p)
                continue;
            kp_str_t name = kp_str(ks_topic_name(ks_part_topic(p)));
            if (!counted)
                kb_counters_topic_request(req->broker, name, true);
            counted = true;
            uint64_t n = pd->records.ptr == KP_HOLE ? (uint64_t)msgs[k]
                                                    : batch_records(pd->records);
            kb_counters_topic_fetch(req->broker, name, pd->records.len > 0 ? pd->records.len : 0,
                                    n, pd->error_code);
        }
    }
}

static ks_part_t **parts_alloc(kb_req_t *req, const kp_fetch_req_t *m, int *n)
{
    *n = 0;
    for (int32_t i = 0; i < m->topics_count; i++)
        *n += m->topics[i].partitions_count > 0 ? m->topics[i].partitions_count : 0;
    return *n ? kp_arena_alloc(&req->arena, sizeof(ks_part_t *) * (size_t)*n) : NULL;
}

/* Message counts of a zero-copy answer, one per requested partition (zeroed), or NULL. */
static int64_t *msgs_alloc(kb_req_t *req, int n)
{
    return n ? kp_arena_alloc(&req->arena, sizeof(int64_t) * (size_t)n) : NULL;
}

/* Reads everything again and encodes the answer into req->resp. */
static int answer(kb_req_t *req, const kp_fetch_req_t *m)
{
    kp_fetch_resp_t resp;
    kp_buf_t data; /* record bytes, owned here until encoded */
    bool any_error;
    int nparts;
    ks_part_t **parts = parts_alloc(req, m, &nparts); /* NULL: nothing is counted per topic */
    int64_t *msgs = msgs_alloc(req, nparts);
    kb_fetch_ctx_t ctx = ctx_of(req, msgs);
    kp_buf_init(&data);
    int64_t rc = kb_fetch_fill(&ctx, m, &req->arena, &resp, &data, parts, &any_error);
    if (rc >= 0) {
        count_answer(req, &resp, parts, msgs);
        rc = kp_fetch_resp_encode(&req->resp, req->hdr.api_version, &resp);
    }
    kp_buf_deinit(&data);
    if (rc < 0)
        kb_log(KB_LOG_ERROR, "fetch: building the response failed: %s", k_strerror((int)rc));
    return rc < 0 ? (int)rc : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data); /* the waiter */
}

/* Answers a parked fetch (unless its connection is gone) and retires the waiter. */
static void waiter_finish(kb_fetch_waiter_t *w)
{
    kb_req_t *req = w->req;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->hs->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->req = NULL;
    req->handler_data = NULL;
    req->on_cancel = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
    if (!req->closed)
        (void)answer(req, &w->m);
    kb_req_complete(req);
}

/* The client went away: let go now, not at max_wait_ms (req->on_cancel). */
static void on_cancel(kb_req_t *req)
{
    kb_fetch_waiter_t *w = req->handler_data;
    if (w && w->req == req)
        waiter_finish(w);
}

static void on_timeout(uv_timer_t *t)
{
    kb_fetch_waiter_t *w = t->data;
    if (w->req)
        waiter_finish(w);
}

static bool waiter_has_enough(const kb_fetch_waiter_t *w)
{
    int64_t sum = w->have_bytes;
    for (int i = 0; i < w->nslots; i++)
        sum += w->slots[i].growth;
    return sum >= w->m.min_bytes;
}

void kb_fetch_notify(kb_broker_t *b, ks_part_t *part)
{
    kb_hstate_t *hs = kb_hstate_find(b); /* no waiters without a state */
    if (!hs)
        return;
    kb_fetch_waiter_t *next;
    for (kb_fetch_waiter_t *w = hs->waiters; w; w = next) {
        next = w->next;
        if (!w->req) /* answered by a nested call while we walked */
            continue;
        bool hit = false;
        for (int i = 0; i < w->nslots; i++) {
            fetch_slot_t *s = &w->slots[i];
            if (s->part_id != (uintptr_t)part)
                continue;
            int64_t g = ks_part_size_bytes(part) - s->base_size;
            s->growth = g < 0 ? 0 : (g > s->max_bytes ? s->max_bytes : g);
            hit = true;
        }
        if (hit && (w->req->closed || waiter_has_enough(w)))
            waiter_finish(w);
    }
}

void kb_fetch_close_all(kb_hstate_t *hs)
{
    while (hs->waiters)
        waiter_finish(hs->waiters);
}

/* Parks req until enough data arrives or max_wait_ms passes. */
static int park(kb_req_t *req, const kp_fetch_req_t *m, ks_part_t **parts, int nparts,
                int64_t have)
{
    kb_hstate_t *hs = kb_hstate(req->broker);
    kb_fetch_waiter_t *w = calloc(1, sizeof *w); /* owned by hs->waiters, then the timer */
    fetch_slot_t *slots = nparts ? kp_arena_alloc(&req->arena, sizeof *slots * (size_t)nparts)
                                 : NULL;
    if (!hs || !w || (nparts && !slots)) {
        free(w);
        return K_ERR_NOMEM;
    }
    int k = 0;
    for (int32_t i = 0; i < m->topics_count; i++)
        for (int32_t j = 0; j < m->topics[i].partitions_count; j++, k++) {
            slots[k].part_id = (uintptr_t)parts[k];
            slots[k].base_size = parts[k] ? ks_part_size_bytes(parts[k]) : 0;
            slots[k].growth = 0;
            slots[k].max_bytes = m->topics[i].partitions[j].partition_max_bytes;
        }
    w->hs = hs;
    w->req = req;
    w->m = *m;
    w->slots = slots;
    w->nslots = nparts;
    w->have_bytes = have;
    uv_timer_init(kb_broker_loop(req->broker), &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_timeout, (uint64_t)m->max_wait_ms, 0);
    req->handler_data = w;
    req->on_cancel = on_cancel;
    w->next = hs->waiters;
    if (w->next)
        w->next->prev = w;
    hs->waiters = w;
    return KB_PENDING;
}

int kb_handle_fetch(kb_req_t *req)
{
    kp_fetch_req_t m;
    int rc = kp_fetch_req_decode(&req->body, req->hdr.api_version, &req->arena, &m);
    if (rc < 0)
        return rc;
    /* Bound the long poll (fetch.long.poll.max.ms): a client asking for hours would pin its
     * state that long. */
    int32_t cap = kb_broker_config(req->broker)->fetch_max_wait_cap_ms;
    if (cap > 0 && m.max_wait_ms > cap)
        m.max_wait_ms = cap;
    int nparts;
    ks_part_t **parts = parts_alloc(req, &m, &nparts);
    if (nparts && !parts)
        return K_ERR_NOMEM;

    /* First look: answer now unless the request wants to wait for more bytes. */
    int64_t *msgs = msgs_alloc(req, nparts);
    kb_fetch_ctx_t ctx = ctx_of(req, msgs);
    kp_fetch_resp_t resp;
    kp_buf_t data;
    bool any_error;
    kp_buf_init(&data);
    int64_t have = kb_fetch_fill(&ctx, &m, &req->arena, &resp, &data, parts, &any_error);
    bool wait = have >= 0 && !any_error && m.max_wait_ms > 0 && have < m.min_bytes;
    if (wait)
        kb_req_drop_pieces(req); /* the answer re-reads the log; no descriptor held meanwhile */
    if (have >= 0 && !wait) {
        count_answer(req, &resp, parts, msgs);
        have = kp_fetch_resp_encode(&req->resp, req->hdr.api_version, &resp);
    }
    kp_buf_deinit(&data);
    if (have < 0) {
        kb_log(KB_LOG_ERROR, "fetch: building the response failed: %s", k_strerror((int)have));
        return (int)have;
    }
    return wait ? park(req, &m, parts, nparts, have) : KB_DONE;
}

/* The audit trail in __audit (see audit.h). */
#include "broker/auth/audit.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth/auth.h"
#include "broker/auth/acl.h"
#include "broker/auth/audit_counts.h"
#include "broker/core/clock.h"
#include "broker/core/server.h"
#include "protocol/gen/kp_create_topics.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_header.h"
#include "protocol/kp_errors.h"

enum { EV_AUTHN = 1, EV_AUTHZ = 2, EV_CHANGE = 4, EV_ACCESS = 8 };
#define BUCKETS 1024

typedef struct seen {
    struct seen *next;
    uint64_t count; /* accesses since the last summary record */
    int op, res;
    int slot;       /* its slot in the counter file (audit_counts.h), -1: memory only */
    char *key;      /* "principal\nname" (owned) */
    char ctx[512];  /* address, client id, listener, api of the latest access, \n-separated */
} seen_t;

typedef struct {
    kb_broker_t *b;
    ks_part_t *part;
    kb_authorizer_fn inner; /* the authorizer this one wraps; NULL allows everything */
    void *inner_ud;
    unsigned types;
    int64_t interval_ms, next_summary;
    seen_t *seen[BUCKETS];
    kb_acounts_t *counts; /* the counter file; NULL: counts in memory only */
    int64_t retention_tried; /* audit.retention.ms last tried and failed, else INT64_MIN */
    char crash_at[40]; /* DEPOT_AUDIT_CRASH_AT: a fault point for the power-cut test, or "" */
} audit_t;

/*
 * A change is made in two passes of its handler. The first pass writes the change intents
 * (appends only) and every change check answers "not allowed", so nothing is changed; the
 * request is then held (kb_req_hold) while the flusher makes the intents durable, and the
 * handler runs again from the start (kb_req_replay) with the real answers. So no change is
 * made before its intent is durable, and the loop never waits for an fsync. Each check a
 * request made is kept (akey_t) so a later pass writes and counts nothing twice.
 */
enum { KEY_RECORDED, KEY_INTENT, KEY_DURABLE, KEY_FAILED };
#define MAX_KEYS 256  /* kept checks other than changes (a Fetch of many topics) */
#define MAX_PASSES 4  /* a handler still asking for new changes after this is refused */

typedef struct akey {
    struct akey *next;
    int op, res;
    char *name; /* arena */
    size_t len;
    int pass;      /* the pass that made the check */
    int state;     /* KEY_* */
    bool ok;       /* what the authorizer answered */
} akey_t;

/* A request's audit state (req->audit_state, in the request's arena). */
typedef struct {
    int64_t first_offset; /* of the request's first intent record in __audit */
    int32_t n;            /* intent records written for it */
    const char *op, *res_type; /* static strings */
    char *principal, *name; /* the first intent's (arena) */
    size_t len;
    akey_t *keys;
    int nkeys;           /* kept checks other than changes */
    int pass;            /* 1 on the handler's first run */
    bool replay_due;     /* this pass wrote intents: its answer is dropped, the handler reruns */
    int64_t intents_end; /* __audit offset the intents written so far end at */
    const char *outcome_detail; /* static; NULL: no detail in the outcome record */
} areq_t;

static audit_t *state_of(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_audit_subsys) : NULL;
    return slot ? *slot : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                      */

static void json_str(kp_buf_t *o, const char *s, size_t n)
{
    kp_put_raw(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            kp_put_raw(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            kp_put_raw(o, esc, 6);
        } else {
            kp_put_raw(o, &s[i], 1);
        }
    }
    kp_put_raw(o, "\"", 1);
}

static void json_key(kp_buf_t *o, const char *k, bool first)
{
    if (!first) kp_put_raw(o, ",", 1);
    json_str(o, k, strlen(k));
    kp_put_raw(o, ":", 1);
}

static void iso_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* Request context: address (no port), client id, listener, api. */
typedef struct {
    char addr[80], client_id[256], listener[40], api[64];
} ctx_t;

static void ctx_of(kb_req_t *req, ctx_t *c)
{
    const char *peer = req ? kb_conn_peer(req->conn) : "";
    const char *s = peer, *e = strrchr(peer, ':');
    if (*s == '[') s++, e = strchr(s, ']');
    size_t n = e && e > s ? (size_t)(e - s) : strlen(s);
    snprintf(c->addr, sizeof c->addr, "%.*s", (int)(n < 79 ? n : 79), s);
    c->client_id[0] = 0;
    if (req && req->hdr.client_id.len > 0)
        snprintf(c->client_id, sizeof c->client_id, "%.*s",
                 (int)(req->hdr.client_id.len < 255 ? req->hdr.client_id.len : 255),
                 req->hdr.client_id.ptr);
    const kb_listener_t *l = req ? kb_conn_listener(req->conn) : NULL;
    snprintf(c->listener, sizeof c->listener, "%s", l ? l->name : "");
    const kp_api_t *api = req ? kp_api_get(req->hdr.api_key) : NULL;
    snprintf(c->api, sizeof c->api, "%s", api ? api->name : "?");
}

typedef struct {
    const char *principal;
    const char *op, *res_type;
    const char *name;
    size_t len;
    bool allowed;
    const char *error; /* Kafka error name or NULL */
    uint64_t count;
    const char *phase;     /* "intent", "outcome", "recovered" or NULL (no field) */
    const char *detail;    /* NULL: no field */
    int64_t intent_offset; /* outcome records: offset of the first intent, else -1 */
} event_t;

static int write_record(audit_t *a, const ctx_t *c, const event_t *ev, int64_t *end_offset)
{
    kp_buf_t j;
    kp_buf_init(&j);
    char ts[40];
    iso_time(kb_wall_ms(), ts, sizeof ts);
    kp_put_raw(&j, "{", 1);
    json_key(&j, "time", true), json_str(&j, ts, strlen(ts));
    json_key(&j, "principal", false), json_str(&j, ev->principal, strlen(ev->principal));
    json_key(&j, "client_address", false), json_str(&j, c->addr, strlen(c->addr));
    json_key(&j, "client_id", false), json_str(&j, c->client_id, strlen(c->client_id));
    json_key(&j, "listener", false), json_str(&j, c->listener, strlen(c->listener));
    json_key(&j, "api", false), json_str(&j, c->api, strlen(c->api));
    json_key(&j, "operation", false), json_str(&j, ev->op, strlen(ev->op));
    json_key(&j, "resource_type", false), json_str(&j, ev->res_type, strlen(ev->res_type));
    json_key(&j, "resource_name", false), json_str(&j, ev->name, ev->len);
    json_key(&j, "allowed", false), kp_put_raw(&j, ev->allowed ? "true" : "false",
                                               ev->allowed ? 4 : 5);
    json_key(&j, "error", false);
    if (ev->error)
        json_str(&j, ev->error, strlen(ev->error));
    else
        kp_put_raw(&j, "null", 4);
    char cnt[32];
    int cl = snprintf(cnt, sizeof cnt, "%llu", (unsigned long long)ev->count);
    json_key(&j, "count", false), kp_put_raw(&j, cnt, (size_t)cl);
    if (ev->phase) json_key(&j, "phase", false), json_str(&j, ev->phase, strlen(ev->phase));
    if (ev->detail) json_key(&j, "detail", false), json_str(&j, ev->detail, strlen(ev->detail));
    if (ev->intent_offset >= 0) {
        cl = snprintf(cnt, sizeof cnt, "%lld", (long long)ev->intent_offset);
        json_key(&j, "intent_offset", false), kp_put_raw(&j, cnt, (size_t)cl);
    }
    kp_put_raw(&j, "}", 1);
    int rc = j.err;
    kp_buf_t batch;
    kp_buf_init(&batch);
    if (!rc) {
        kp_batch_builder_t bb;
        kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
        rc = kp_batch_builder_add(&bb, kb_wall_ms(), (kp_bytes_t){NULL, -1},
                                  (kp_bytes_t){j.data, (int32_t)j.len}, NULL, 0);
        if (!rc) rc = kp_batch_builder_finish(&bb, &batch);
        kp_batch_builder_deinit(&bb);
    }
    ks_append_result_t res;
    if (!rc) rc = a->part ? ks_part_append(a->part, batch.data, batch.len, kb_wall_ms(), &res)
                          : K_ERR_CLOSED;
    if (!rc && end_offset) *end_offset = res.last_offset + 1;
    if (rc)
        kb_log(KB_LOG_ERROR, "audit: cannot append to %s: %s (the request fails)", KB_AUDIT_TOPIC,
               k_strerror(rc));
    kp_buf_deinit(&batch);
    kp_buf_deinit(&j);
    return rc;
}

static void on_synced(void *arg, int status)
{
    kb_req_t *req = arg;
    if (status < 0) {
        kb_log(KB_LOG_ERROR, "audit: fsync of %s failed: %s; closing the connection instead of "
               "answering", KB_AUDIT_TOPIC, k_strerror(status));
        kb_req_release(req, true);
        return;
    }
    kb_req_release(req, false);
}

static void on_synced_nowait(void *arg, int status)
{
    (void)arg;
    if (status < 0)
        kb_log(KB_LOG_ERROR, "audit: fsync of %s failed: %s", KB_AUDIT_TOPIC, k_strerror(status));
}

/* Appends and, when durable, holds req's answer until the record is fsynced. */
static int record(audit_t *a, kb_req_t *req, const event_t *ev, bool durable)
{
    ctx_t c;
    ctx_of(req, &c);
    int64_t end = 0;
    int rc = write_record(a, &c, ev, &end);
    if (rc || !durable || !req) return rc;
    kb_req_hold(req);
    rc = ks_part_sync(a->part, end, on_synced, req);
    if (rc < 0) {
        kb_req_release(req, true);
        return rc;
    }
    return 0;
}

/*
 * Test hook for the power-cut fault test (tests/e2e/test_audit_power_cut.py): at the named
 * point the broker reports how much of __audit is durable and dies by SIGKILL, so the test can
 * throw away every unsynced byte the way a power cut would. Unset in production.
 */
static void fault_point(audit_t *a, const char *point)
{
    if (!a->crash_at[0] || strcmp(a->crash_at, point)) return;
    fprintf(stderr, "audit fault point %s: %s durable below offset %lld\n", point,
            KB_AUDIT_TOPIC, (long long)ks_part_durable_end(a->part));
    fflush(stderr);
    raise(SIGKILL);
}

/* The request's audit state, made at its first kept check; NULL when out of memory. */
static areq_t *req_state(kb_req_t *req)
{
    if (!req->audit_state) {
        areq_t *st = kp_arena_alloc(&req->arena, sizeof *st); /* zeroed */
        if (!st) return NULL;
        st->pass = 1;
        st->first_offset = -1;
        req->audit_state = st;
    }
    return req->audit_state;
}

static akey_t *key_find(const areq_t *st, int op, int res, const char *name, size_t len)
{
    for (akey_t *k = st ? st->keys : NULL; k; k = k->next)
        if (k->op == op && k->res == res && k->len == len && !memcmp(k->name, name, len))
            return k;
    return NULL;
}

/* Keeps a check (changes always, others up to MAX_KEYS); NULL when out of memory or full. */
static akey_t *key_add(kb_req_t *req, areq_t *st, int op, int res, const char *name, size_t len,
                       bool ok, int state)
{
    if (!st || (state == KEY_RECORDED && st->nkeys >= MAX_KEYS)) return NULL;
    akey_t *k = kp_arena_alloc(&req->arena, sizeof *k);
    char *nm = kp_arena_alloc(&req->arena, len + 1);
    if (!k || !nm) return NULL;
    memcpy(nm, name, len);
    *k = (akey_t){st->keys, op, res, nm, len, st->pass, state, ok};
    st->keys = k;
    if (state == KEY_RECORDED) st->nkeys++;
    return k;
}

/* What a check already kept answers now: a change only once its intent is durable. */
static bool key_answer(const akey_t *k)
{
    return k->state == KEY_RECORDED || k->state == KEY_DURABLE ? k->ok : false;
}

/*
 * A change intent: appended and kept, and the check answers "not yet" (false): the handler's
 * pass makes no change, and the request runs again once the intent is durable (top). Fails
 * closed: an intent that cannot be appended, a request that cannot be run again (no
 * connection: handler unit tests) or one that keeps asking for new changes is refused.
 */
static bool change_intent(audit_t *a, kb_req_t *req, areq_t *st, event_t *ev, int op, int res)
{
    if (!st || !req->conn || st->pass > MAX_PASSES) {
        kb_log(KB_LOG_ERROR, "audit: cannot hold %s on %.*s until its intent is durable (%s); "
               "refused", ev->op, (int)ev->len, ev->name,
               !st ? "out of memory" : !req->conn ? "no connection" : "too many passes");
        return false;
    }
    ctx_t c;
    ctx_of(req, &c);
    ev->phase = "intent";
    ev->detail = req->audit_detail;
    int64_t end = 0;
    int rc = write_record(a, &c, ev, &end);
    akey_t *k = key_add(req, st, op, res, ev->name, ev->len, true, rc ? KEY_FAILED : KEY_INTENT);
    if (rc) return false; /* logged */
    if (!k) { /* could not keep it: the next pass would not know the intent was written */
        kb_log(KB_LOG_ERROR, "audit: out of memory holding a change on %.*s; refused",
               (int)ev->len, ev->name);
        return false;
    }
    if (st->first_offset < 0 &&
        (st->principal = kp_arena_alloc(&req->arena, strlen(ev->principal) + 1))) {
        strcpy(st->principal, ev->principal);
        st->first_offset = end - 1;
        st->op = ev->op;
        st->res_type = ev->res_type;
        st->name = k->name;
        st->len = k->len;
    }
    st->n++;
    st->replay_due = true;
    st->intents_end = end;
    return false;
}

void kb_audit_detail_add(kb_req_t *req, const char *fmt, ...)
{
    enum { CAP = 4096 };
    size_t have = req->audit_detail ? strlen(req->audit_detail) : 0;
    if (have >= CAP - 4) return; /* already cut */
    char item[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *d = kp_arena_alloc(&req->arena, CAP);
    if (!d) return;
    snprintf(d, CAP, "%s%s%s", have ? req->audit_detail : "", have ? "," : "", item);
    if (strlen(d) >= CAP - 4) memcpy(d + CAP - 4, "...", 4);
    req->audit_detail = d;
}

bool kb_audit_replay_due(const kb_req_t *req)
{
    const areq_t *st = req->audit_state;
    return st && st->replay_due;
}

/* The intents of a pass are durable (or failed): settle them and run the handler again. */
static void on_intents_synced(void *arg, int status)
{
    kb_req_t *req = arg;
    areq_t *st = req->audit_state;
    audit_t *a = state_of(req->broker);
    for (akey_t *k = st ? st->keys : NULL; k; k = k->next)
        if (k->state == KEY_INTENT) k->state = status < 0 ? KEY_FAILED : KEY_DURABLE;
    if (status < 0)
        kb_log(KB_LOG_ERROR, "audit: fsync of a change intent in %s failed: %s (the change is "
               "refused)", KB_AUDIT_TOPIC, k_strerror(status));
    else if (a && a->part)
        fault_point(a, "audit-intent-synced");
    if (st && !req->closed && a && a->part) {
        st->pass++;
        kb_req_replay(req); /* ends with kb_audit_request_done again: the outcome */
    } else if (st && a && a->part) {
        /* the client left while its intent was being made durable: the change is not made,
         * and the trail says so (an outcome with an error) */
        req->error_code = KP_ERR_NETWORK_EXCEPTION;
        st->outcome_detail = "not made: the client disconnected before its intent was durable";
        kb_audit_request_done(req);
    } else {
        req->audit_state = NULL;
    }
    kb_req_release(req, false);
}

int kb_audit_request_done(kb_req_t *req)
{
    areq_t *st = req->audit_state;
    audit_t *a = state_of(req->broker);
    if (!st || !a || !a->part) {
        req->audit_state = NULL;
        return 0;
    }
    if (st->replay_due) {
        st->replay_due = false;
        kb_req_hold(req); /* released by on_intents_synced, after the next pass */
        int rc = ks_part_sync(a->part, st->intents_end, on_intents_synced, req);
        if (rc == 0) return 1;
        kb_req_release(req, false);
        kb_log(KB_LOG_ERROR, "audit: cannot wait for the change intents in %s: %s (the change "
               "is refused)", KB_AUDIT_TOPIC, k_strerror(rc));
        /* this pass made no change and answered "not authorized": that answer goes out */
    }
    req->audit_state = NULL;
    if (!st->n || st->first_offset < 0) return 0; /* no intent (or no memory to say whose) */
    fault_point(a, "audit-change-made");
    ctx_t c;
    ctx_of(req, &c);
    event_t ev = {st->principal, st->op, st->res_type, st->name, st->len, true,
                  req->error_code ? kp_error_name(req->error_code) : NULL, (uint64_t)st->n,
                  "outcome", st->outcome_detail, st->first_offset};
    int64_t end = 0;
    if (write_record(a, &c, &ev, &end)) return 0; /* the intent stands; logged */
    fault_point(a, "audit-outcome-appended");
    if (req->closed) { /* nobody to answer: durable soon, nothing to hold */
        ks_part_sync(a->part, end, on_synced_nowait, NULL);
        return 0;
    }
    kb_req_hold(req);
    if (ks_part_sync(a->part, end, on_synced, req) < 0) kb_req_release(req, true);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* First access and summaries                                                                   */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* True the first time (principal, op, resource) is seen; counts every time. */
static bool first_access(audit_t *a, kb_req_t *req, const char *principal, int op, int res,
                         const char *name, size_t len)
{
    size_t pl = strlen(principal);
    char *key = malloc(pl + len + 2);
    if (!key) return true; /* out of memory: audit it durably rather than lose it */
    memcpy(key, principal, pl);
    key[pl] = '\n';
    memcpy(key + pl + 1, name, len);
    key[pl + 1 + len] = 0;
    uint64_t h = hash(key) ^ (uint64_t)(op * 31 + res);
    seen_t **head = &a->seen[h % BUCKETS];
    for (seen_t *s = *head; s; s = s->next)
        if (s->op == op && s->res == res && !strcmp(s->key, key)) {
            s->count++;
            ctx_t c;
            ctx_of(req, &c);
            snprintf(s->ctx, sizeof s->ctx, "%s\n%s\n%s\n%s", c.addr, c.client_id, c.listener,
                     c.api);
            kb_acounts_set(a->counts, s->slot, s->count, s->ctx); /* survives a kill -9 */
            free(key);
            return false;
        }
    seen_t *s = calloc(1, sizeof *s); /* owned by the table until close */
    if (!s) {
        free(key);
        return true;
    }
    s->key = key;
    s->op = op;
    s->res = res;
    s->slot = kb_acounts_alloc(a->counts, op, res, key);
    s->next = *head;
    *head = s;
    return true;
}

/* One summary record for key ("principal\nname") with ctx as first_access keeps it. */
static int write_summary(audit_t *a, const char *key, const char *ctxs, int op, int res,
                         uint64_t count, const char *phase)
{
    const char *nl = strchr(key, '\n');
    if (!nl) return K_ERR_INVAL;
    char principal[300];
    snprintf(principal, sizeof principal, "%.*s", (int)(nl - key), key);
    ctx_t c = {"", "", "", ""};
    sscanf(ctxs, "%79[^\n]\n%255[^\n]\n%39[^\n]\n%63[^\n]", c.addr, c.client_id, c.listener,
           c.api);
    const char *opn = kb_acl_op_name(op), *resn = kb_acl_res_name(res);
    event_t ev = {principal, opn ? opn : "?", resn ? resn : "?", nl + 1, strlen(nl + 1), true,
                  NULL, count, phase, NULL, -1};
    return write_record(a, &c, &ev, NULL);
}

static void summaries(audit_t *a)
{
    for (int i = 0; i < BUCKETS; i++)
        for (seen_t *s = a->seen[i]; s; s = s->next) {
            if (!s->count) continue;
            /* the counter file learns the record's offset first: a kill -9 after the append
             * but before the reset below must not count these accesses twice */
            kb_acounts_begin(a->counts, s->slot, a->part ? ks_part_log_end(a->part) : -1);
            if (write_summary(a, s->key, s->ctx, s->op, s->res, s->count, NULL) == 0) {
                s->count = 0;
                kb_acounts_done(a->counts, s->slot);
            } else {
                kb_acounts_begin(a->counts, s->slot, -1);
            }
        }
}

/* Counts an unclean stop left in the counter file: written as "recovered" summaries. */
static int recover_one(void *ud, int op, int res, const char *key, const char *ctx,
                       uint64_t count)
{
    return write_summary(ud, key, ctx, op, res, count, "recovered");
}

static void open_counts(audit_t *a, const char *dir)
{
    int rc = kb_acounts_open(dir, &a->counts);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "audit: cannot map %s/%s (%s): access counts since the last "
               "summary are lost if the broker is killed", dir, KB_ACOUNTS_FILE, k_strerror(rc));
        a->counts = NULL;
        return;
    }
    rc = kb_acounts_recover(a->counts, ks_part_log_end(a->part), recover_one, a);
    if (rc > 0) {
        kb_log(KB_LOG_WARN, "audit: %d summary records recovered after an unclean stop", rc);
        ks_part_sync(a->part, ks_part_log_end(a->part), on_synced_nowait, NULL);
    } else if (rc < 0) {
        kb_log(KB_LOG_ERROR, "audit: recovering access counts failed: %s (kept for the next "
               "start)", k_strerror(rc));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The wrapping authorizer                                                                      */

static bool protected_op(int op)
{
    return op == KB_OP_WRITE || op == KB_OP_CREATE || op == KB_OP_DELETE || op == KB_OP_ALTER ||
           op == KB_OP_ALTER_CONFIGS || op == KB_OP_IDEMPOTENT_WRITE;
}

static const char *denied_error(int res)
{
    return res == KB_RES_TOPIC              ? "TOPIC_AUTHORIZATION_FAILED"
           : res == KB_RES_GROUP            ? "GROUP_AUTHORIZATION_FAILED"
           : res == KB_RES_TRANSACTIONAL_ID ? "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
                                            : "CLUSTER_AUTHORIZATION_FAILED";
}

/*
 * CreateTopics allowed by CREATE on the cluster names no topic in the check; the trail should
 * say which topics were created. The request is decoded again from its frame (the handler's
 * decode already advanced req->body) and one intent per topic is written; the cluster check
 * is kept as the change it allows.
 */
static bool created_topics_intents(audit_t *a, kb_req_t *req, areq_t *st, event_t *ev)
{
    kp_reader_t r;
    kp_req_header_t h;
    kp_reader_init(&r, req->frame, req->frame_len);
    kp_create_topics_req_t m;
    kp_create_topics_req_init(&m);
    if (kp_req_header_decode(&r, &h) < 0 ||
        kp_create_topics_req_decode(&r, h.api_version, &req->arena, &m) < 0 ||
        m.topics_count <= 0 || !st)
        return change_intent(a, req, st, ev, KB_OP_CREATE, KB_RES_CLUSTER); /* cannot tell */
    const char *cluster = ev->name;
    size_t cluster_len = ev->len;
    ev->res_type = "TOPIC";
    bool all = true;
    for (int32_t i = 0; i < m.topics_count; i++) {
        const char *nm = m.topics[i].name.ptr ? m.topics[i].name.ptr : "";
        size_t nl = m.topics[i].name.len > 0 ? (size_t)m.topics[i].name.len : 0;
        if (key_find(st, KB_OP_CREATE, KB_RES_TOPIC, nm, nl)) continue; /* a duplicate name */
        ev->name = nm, ev->len = nl;
        change_intent(a, req, st, ev, KB_OP_CREATE, KB_RES_TOPIC);
        akey_t *k = key_find(st, KB_OP_CREATE, KB_RES_TOPIC, nm, nl);
        all = all && k && k->state == KEY_INTENT;
    }
    /* every intent written: the cluster check allows them all once durable; else it is
     * refused and the handler asks topic by topic (each answered by its own intent) */
    key_add(req, st, KB_OP_CREATE, KB_RES_CLUSTER, cluster, cluster_len, true,
            all ? KEY_INTENT : KEY_FAILED);
    return false;
}

static bool audit_authorize(void *ud, kb_req_t *req, const kb_principal_t *who, int op, int res,
                            const char *name, size_t len)
{
    audit_t *a = ud;
    bool ok = true;
    if (res == KB_RES_TOPIC && len == strlen(KB_AUDIT_TOPIC) &&
        !memcmp(name, KB_AUDIT_TOPIC, len) && protected_op(op))
        ok = false; /* the trail is not writable through the Kafka API, by anyone */
    else if (a->inner)
        ok = a->inner(a->inner_ud, req, who, op, res, name, len);
    if (a->b->authz_probe) return ok; /* authorized_operations: a question, not an action */
    char principal[300];
    snprintf(principal, sizeof principal, "%s:%s", who->type, who->name);
    /* A group offsets reset (OffsetCommit from outside the group, h_offsets.c) is checked as
     * READ on the group, as Kafka does, but it changes the group: recorded as ALTER */
    if (ok && op == KB_OP_READ && res == KB_RES_GROUP && req && req->audit_detail)
        op = KB_OP_ALTER;
    event_t ev = {principal, kb_acl_op_name(op) ? kb_acl_op_name(op) : "?",
                  kb_acl_res_name(res) ? kb_acl_res_name(res) : "?", name, len, ok,
                  ok ? NULL : denied_error(res), 1, NULL, NULL, -1};
    unsigned type = !ok                                         ? EV_AUTHZ
                    : op == KB_OP_CREATE || op == KB_OP_DELETE ||
                            op == KB_OP_ALTER || op == KB_OP_ALTER_CONFIGS
                        ? EV_CHANGE
                    : (op == KB_OP_WRITE || op == KB_OP_READ) &&
                            (res == KB_RES_TOPIC || res == KB_RES_GROUP)
                        ? EV_ACCESS
                        : 0;
    if (!(type & a->types)) return ok;
    areq_t *st = req ? req_state(req) : NULL;
    /* A check kept by an earlier pass is answered as then, silently (written and counted
     * once); so is a denial or change repeated within a pass. An access repeated within a
     * pass is counted again, as every access is. */
    akey_t *k = st && (st->pass > 1 || type != EV_ACCESS || st->nkeys < MAX_KEYS)
                    ? key_find(st, op, res, name, len)
                    : NULL;
    if (k && (k->pass < st->pass || type != EV_ACCESS)) return key_answer(k);
    if (type == EV_CHANGE)
        return op == KB_OP_CREATE && res == KB_RES_CLUSTER && !req->raw_sasl &&
                       req->hdr.api_key == KP_API_CREATE_TOPICS
                   ? created_topics_intents(a, req, st, &ev)
                   : change_intent(a, req, st, &ev, op, res);
    if (type == EV_ACCESS && !k) key_add(req, st, op, res, name, len, ok, KEY_RECORDED);
    if (type == EV_ACCESS && !first_access(a, req, principal, op, res, name, len)) return ok;
    int rc = record(a, req, &ev, true);
    if (!rc && type != EV_ACCESS) key_add(req, st, op, res, name, len, ok, KEY_RECORDED);
    return rc < 0 ? false : ok; /* fail-closed */
}

int kb_audit_authentication(kb_req_t *req, const char *mechanism, const char *user, bool ok,
                            const char *error)
{
    audit_t *a = state_of(req->broker);
    if (!a || !(a->types & EV_AUTHN)) return 0;
    char principal[300];
    snprintf(principal, sizeof principal, "User:%s", user && *user ? user : "ANONYMOUS");
    event_t ev = {principal, "AUTHENTICATE", "SASL", mechanism, strlen(mechanism), ok,
                  ok ? NULL : error, 1, NULL, NULL, -1};
    return record(a, req, &ev, true);
}

/* ------------------------------------------------------------------------------------------ */
/* Subsystem                                                                                    */

void kb_audit_connection_failure(kb_broker_t *b, const char *peer, const char *listener,
                                 const char *what, const char *error)
{
    audit_t *a = state_of(b);
    if (!a || !(a->types & EV_AUTHN)) return;
    ctx_t c;
    memset(&c, 0, sizeof c);
    const char *s = peer, *e = strrchr(peer, ':');
    if (*s == '[') s++, e = strchr(s, ']');
    size_t n = e && e > s ? (size_t)(e - s) : strlen(s);
    snprintf(c.addr, sizeof c.addr, "%.*s", (int)(n < 79 ? n : 79), s);
    snprintf(c.listener, sizeof c.listener, "%s", listener ? listener : "");
    snprintf(c.api, sizeof c.api, "none");
    event_t ev = {"User:ANONYMOUS", "AUTHENTICATE", "CONNECTION", what, strlen(what), false,
                  error, 1, NULL, NULL, -1};
    int64_t end = 0;
    if (write_record(a, &c, &ev, &end) == 0) ks_part_sync(a->part, end, on_synced_nowait, NULL);
}

static int parse_types(const char *v, unsigned *out)
{
    static const char *const names[] = {"authentication", "authorization", "change", "access"};
    unsigned t = 0;
    for (const char *p = v; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n) break;
        int k = 0;
        while (k < 4 && !(strlen(names[k]) == n && !memcmp(p, names[k], n)))
            k++;
        if (k == 4) {
            kb_log(KB_LOG_ERROR, "audit.event.types: unknown type '%.*s' (authentication, "
                   "authorization, change, access)", (int)n, p);
            return K_ERR_INVAL;
        }
        t |= 1u << k;
        p += n;
    }
    *out = t;
    return 0;
}

/*
 * audit.retention.ms is __audit's retention.ms: applied at start and, when it is changed as a
 * dynamic broker config, within a second (the tick). __audit's own topic configs cannot be
 * altered through the Kafka API, so this key is the only way to set them.
 */
static void apply_retention(audit_t *a)
{
    int64_t want = kb_broker_config(a->b)->audit_retention_ms;
    ks_topic_t *t = a->part ? ks_part_topic(a->part) : NULL;
    if (!t || ks_topic_config(t)->retention_ms == want || want == a->retention_tried) return;
    a->retention_tried = want; /* a failure is logged once per value, not every second */
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)want);
    int rc = ks_topic_set_config(t, "retention.ms", v);
    if (rc < 0)
        kb_log(KB_LOG_ERROR, "audit: cannot set retention.ms=%s on %s: %s", v, KB_AUDIT_TOPIC,
               k_strerror(rc));
    else
        kb_log(KB_LOG_INFO, "audit: %s retention.ms is now %s (audit.retention.ms)",
               KB_AUDIT_TOPIC, v);
    if (!rc) a->retention_tried = INT64_MIN; /* a later change back is applied too */
}

static int audit_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    if (!cfg->audit_enabled) return 0;
    audit_t *a = calloc(1, sizeof *a); /* owned by the slot until audit_close */
    if (!a) return K_ERR_NOMEM;
    a->b = b;
    int rc = parse_types(cfg->audit_event_types, &a->types);
    ks_store_t *s = kb_broker_store(b);
    ks_topic_t *t = rc ? NULL : ks_topic_find(s, KB_AUDIT_TOPIC, strlen(KB_AUDIT_TOPIC));
    if (!rc && !t) {
        ks_topic_config_t tc;
        ks_topic_config_default(&tc);
        tc.retention_ms = cfg->audit_retention_ms;
        tc.retention_bytes = -1;
        rc = ks_topic_create(s, KB_AUDIT_TOPIC, 1, &tc, &t);
    }
    if (!rc && !(a->part = ks_topic_part(t, 0))) rc = K_ERR_NOENT;
    if (rc) {
        kb_log(KB_LOG_ERROR, "audit: cannot open %s: %s", KB_AUDIT_TOPIC, k_strerror(rc));
        free(a);
        return rc;
    }
    a->retention_tried = INT64_MIN;
    apply_retention(a); /* changed in server.properties since __audit was created */
    open_counts(a, cfg->log_dirs[0]);
    const char *crash = getenv("DEPOT_AUDIT_CRASH_AT");
    snprintf(a->crash_at, sizeof a->crash_at, "%s", crash ? crash : "");
    a->interval_ms = cfg->audit_summary_interval_ms;
    a->next_summary = kb_mono_ms() + a->interval_ms;
    a->inner = b->authz;
    a->inner_ud = b->authz_ud;
    *kb_broker_slot(b, &kb_audit_subsys) = a;
    kb_auth_set_authorizer(b, audit_authorize, a);
    kb_log(KB_LOG_INFO, "audit trail on: %s (types %s, summaries every %lld ms)", KB_AUDIT_TOPIC,
           cfg->audit_event_types, (long long)a->interval_ms);
    return 0;
}

static void audit_tick(kb_broker_t *b, int64_t mono_ms)
{
    audit_t *a = state_of(b);
    if (a) apply_retention(a);
    if (!a || mono_ms < a->next_summary) return;
    a->next_summary = mono_ms + a->interval_ms;
    summaries(a);
}

static void audit_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_audit_subsys);
    audit_t *a = slot ? *slot : NULL;
    if (!a) return;
    summaries(a); /* counts since the last summary are not lost at a clean stop */
    kb_acounts_close(a->counts);
    kb_auth_set_authorizer(b, a->inner, a->inner_ud);
    for (int i = 0; i < BUCKETS; i++)
        for (seen_t *s = a->seen[i], *n; s; s = n) {
            n = s->next;
            free(s->key);
            free(s);
        }
    free(a);
    *slot = NULL;
}

static void audit_topic_deleted(kb_broker_t *b, const char *topic)
{
    audit_t *a = state_of(b);
    if (a && !strcmp(topic, KB_AUDIT_TOPIC)) a->part = NULL; /* cannot happen via the API */
}

const kb_subsys_t kb_audit_subsys = {
    .name = "audit",
    .init = audit_init,
    .tick = audit_tick,
    .close = audit_close,
    .topic_deleted = audit_topic_deleted,
};

/*
 * Counters (see counters.h). Per-broker state in the "counters" subsystem's slot: the per-API
 * array and a chained hash of topic counters keyed by name. Loop thread writes everything.
 */
#include "broker/core/counters.h"

#include <stdlib.h>
#include <string.h>

#include "broker/core/server.h"

const uint64_t kb_ctr_latency_bounds_us[KB_CTR_LAT_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    10000000,
};

typedef struct tctr {
    struct tctr *next;
    uint32_t hash;
    kb_topic_counters_t c;
    char name[]; /* NUL-terminated */
} tctr_t;

typedef struct {
    kb_api_counters_t api[KB_CTR_MAX_API];
    tctr_t **buckets; /* nbuckets is a power of two */
    size_t nbuckets, count;
} kb_counters_t;

static kb_counters_t *state(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_counters_subsys) : NULL;
    return slot ? *slot : NULL;
}

static uint32_t hash_name(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static tctr_t **find_slot(kb_counters_t *s, const char *p, size_t n, uint32_t h)
{
    tctr_t **pp = &s->buckets[h & (s->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strlen((*pp)->name) == n && memcmp((*pp)->name, p, n) == 0)
            break;
    return pp;
}

static void grow(kb_counters_t *s)
{
    size_t nb = s->nbuckets * 2;
    tctr_t **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < s->nbuckets; i++) {
        tctr_t *e = s->buckets[i];
        while (e) {
            tctr_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* The topic's counters, created on first use; NULL without state, name or memory. */
static kb_topic_counters_t *topic_get(kb_broker_t *b, kp_str_t topic)
{
    kb_counters_t *s = state(b);
    if (!s || topic.len <= 0)
        return NULL;
    size_t n = (size_t)topic.len;
    uint32_t h = hash_name(topic.ptr, n);
    tctr_t **pp = find_slot(s, topic.ptr, n, h);
    if (*pp)
        return &(*pp)->c;
    ks_store_t *store = kb_broker_store(b);
    if (!store || !ks_topic_find(store, topic.ptr, n))
        return NULL; /* only topics that exist get counters: random names cost nothing */
    tctr_t *e = calloc(1, sizeof *e + n + 1); /* owned by the table until the topic goes */
    if (!e)
        return NULL;
    e->hash = h;
    memcpy(e->name, topic.ptr, n);
    *pp = e;
    if (++s->count > s->nbuckets * 2)
        grow(s);
    return &e->c;
}

int kb_counters_latency_bucket(uint64_t us)
{
    int i = 0;
    while (i < KB_CTR_LAT_BUCKETS - 1 && us > kb_ctr_latency_bounds_us[i])
        i++;
    return i;
}

static int err_slot(int16_t code)
{
    return code >= 0 && code < KB_CTR_ERR_OTHER ? code : KB_CTR_ERR_OTHER;
}

static kb_api_counters_t *api_of(kb_req_t *req)
{
    kb_counters_t *s = state(req->broker);
    int16_t k = req->hdr.api_key;
    return s && k >= 0 && k < KB_CTR_MAX_API ? &s->api[k] : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks                                                                                       */

void kb_counters_request_start(kb_req_t *req)
{
    req->start_us = uv_hrtime() / 1000;
    kb_conn_counters_t *c = kb_conn_counters(req->conn);
    if (c) {
        kb_ctr_add(&c->requests, 1);
        kb_ctr_add(&c->bytes_in, req->frame_len + 4);
    }
    kb_api_counters_t *a = api_of(req);
    if (a)
        kb_ctr_add(&a->requests, 1);
}

void kb_counters_request_done(kb_req_t *req)
{
    kb_conn_counters_t *c = kb_conn_counters(req->conn);
    if (c && !req->no_response)
        kb_ctr_add(&c->bytes_out, kb_req_resp_size(req) + 4); /* with the file pieces */
    if (c && req->error_code)
        kb_ctr_add(&c->errors[err_slot(req->error_code)], 1);
    kb_api_counters_t *a = api_of(req);
    if (!a)
        return;
    if (req->error_code)
        kb_ctr_add(&a->errors[err_slot(req->error_code)], 1);
    uint64_t now = uv_hrtime() / 1000;
    uint64_t us = now > req->start_us ? now - req->start_us : 0;
    kb_ctr_add(&a->latency[kb_counters_latency_bucket(us)], 1);
    kb_ctr_add(&a->latency_sum_us, us);
}

void kb_counters_request_closed(kb_req_t *req)
{
    kb_conn_counters_t *c = kb_conn_counters(req->conn);
    if (c)
        kb_ctr_add(&c->closed, 1);
    kb_api_counters_t *a = api_of(req);
    if (a)
        kb_ctr_add(&a->closed, 1);
}

void kb_counters_topic_produce(kb_broker_t *b, kp_str_t topic, uint64_t bytes,
                               uint64_t messages, int16_t err)
{
    kb_topic_counters_t *t = topic_get(b, topic);
    if (!t)
        return;
    if (err) {
        kb_ctr_add(&t->errors, 1);
        return;
    }
    kb_ctr_add(&t->bytes_in, bytes);
    kb_ctr_add(&t->messages_in, messages);
}

void kb_counters_topic_fetch(kb_broker_t *b, kp_str_t topic, uint64_t bytes, uint64_t messages,
                             int16_t err)
{
    kb_topic_counters_t *t = topic_get(b, topic);
    if (!t)
        return;
    if (err) {
        kb_ctr_add(&t->errors, 1);
        return;
    }
    kb_ctr_add(&t->bytes_out, bytes);
    kb_ctr_add(&t->messages_out, messages);
}

void kb_counters_topic_request(kb_broker_t *b, kp_str_t topic, bool fetch)
{
    kb_topic_counters_t *t = topic_get(b, topic);
    if (t)
        kb_ctr_add(fetch ? &t->fetch_requests : &t->produce_requests, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                     */

const kb_api_counters_t *kb_counters_api(kb_broker_t *b, int16_t key)
{
    kb_counters_t *s = state(b);
    return s && key >= 0 && key < KB_CTR_MAX_API ? &s->api[key] : NULL;
}

const kb_topic_counters_t *kb_counters_topic(kb_broker_t *b, const char *topic)
{
    kb_counters_t *s = state(b);
    if (!s || !topic)
        return NULL;
    size_t n = strlen(topic);
    tctr_t *e = *find_slot(s, topic, n, hash_name(topic, n));
    return e ? &e->c : NULL;
}

void kb_counters_foreach_topic(kb_broker_t *b, kb_topic_counters_cb cb, void *ud)
{
    kb_counters_t *s = state(b);
    for (size_t i = 0; s && i < s->nbuckets; i++)
        for (tctr_t *e = s->buckets[i]; e; e = e->next)
            cb(ud, e->name, &e->c);
}

void kb_counters_conns(kb_broker_t *b, kb_conn_counters_cb cb, void *ud)
{
    for (kb_conn_t *c = b ? b->conns : NULL; c; c = kb_conn_next(c))
        cb(ud, c, kb_conn_counters(c));
}

/* ------------------------------------------------------------------------------------------ */
/* The subsystem                                                                               */

static int counters_init(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_counters_subsys);
    if (!slot)
        return K_ERR_INVAL;
    kb_counters_t *s = calloc(1, sizeof *s); /* owned by the slot until close */
    if (!s || !(s->buckets = calloc(64, sizeof *s->buckets))) {
        free(s);
        return K_ERR_NOMEM;
    }
    s->nbuckets = 64;
    *slot = s;
    return 0;
}

static void counters_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_counters_subsys);
    kb_counters_t *s = slot ? *slot : NULL;
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        tctr_t *e = s->buckets[i];
        while (e) {
            tctr_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    free(s);
    *slot = NULL;
}

static void counters_topic_deleted(kb_broker_t *b, const char *topic)
{
    kb_counters_t *s = state(b);
    if (!s || !topic)
        return;
    size_t n = strlen(topic);
    tctr_t **pp = find_slot(s, topic, n, hash_name(topic, n));
    tctr_t *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    s->count--;
    free(e);
}

const kb_subsys_t kb_counters_subsys = {
    .name = "counters",
    .init = counters_init,
    .close = counters_close,
    .topic_deleted = counters_topic_deleted,
};

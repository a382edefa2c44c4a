/*
 * The client object: bootstrap, connections per broker node, the metadata cache, and error
 * reporting.
 */
#include "client/kc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/gen/kp_metadata.h"
#include "protocol/kp_errors.h"

int64_t kc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

char *kc_arena_strdup(kp_arena_t *a, kp_str_t s)
{
    if (s.len < 0 || !s.ptr) return NULL;
    char *p = kp_arena_alloc(a, (size_t)s.len + 1);
    if (p) memcpy(p, s.ptr, (size_t)s.len); /* the arena zeroes: NUL-terminated */
    return p;
}

int kc_fail(kc_client_t *c, int rc, int16_t kerr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    c->kerr = kerr;
    return rc;
}

void kc_clear_error(kc_client_t *c)
{
    c->kerr = 0;
    c->errmsg[0] = 0;
}

int kc_kafka_fail(kc_client_t *c, int16_t code, const char *what, kp_str_t broker_msg)
{
    if (code == KP_ERR_NONE) return 0;
    int rc = K_ERR_INVAL;
    if (code == KP_ERR_UNKNOWN_TOPIC_OR_PARTITION || code == KP_ERR_UNKNOWN_TOPIC_ID)
        rc = K_ERR_NOENT;
    else if (code == KP_ERR_TOPIC_ALREADY_EXISTS)
        rc = K_ERR_EXISTS;
    else if (kp_error_retriable(code))
        rc = K_ERR_AGAIN;
    if (broker_msg.len > 0)
        return kc_fail(c, rc, code, "%s: %s: %.*s", what, kp_error_name(code), broker_msg.len,
                       broker_msg.ptr);
    return kc_fail(c, rc, code, "%s: %s: %s", what, kp_error_name(code), kp_error_message(code));
}

int16_t kc_client_kafka_error(const kc_client_t *c)
{
    return c->kerr;
}

const char *kc_client_errmsg(const kc_client_t *c)
{
    return c->errmsg;
}

kc_client_t *kc_client_new(const kc_config_t *cfg)
{
    kc_client_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    c->bootstrap = strdup(cfg->bootstrap ? cfg->bootstrap : "127.0.0.1:9092");
    c->client_id = strdup(cfg->client_id ? cfg->client_id : "depotctl");
    if (!c->bootstrap || !c->client_id) {
        kc_client_free(c);
        return NULL;
    }
    c->cfg.bootstrap = c->bootstrap;
    c->cfg.client_id = c->client_id;
    if (c->cfg.timeout_ms <= 0) c->cfg.timeout_ms = 30000;
    if (c->cfg.retries < 0) c->cfg.retries = 5;
    if (c->cfg.retry_backoff_ms <= 0) c->cfg.retry_backoff_ms = 100;
    return c;
}

static void conn_free(kc_conn_t *conn)
{
    if (!conn) return;
    kc_conn_close(conn);
    free(conn);
}

void kc_client_free(kc_client_t *c)
{
    if (!c) return;
    conn_free(c->boot);
    for (int i = 0; i < c->nconns; i++)
        conn_free(c->conns[i]);
    free(c->conns);
    for (int i = 0; i < c->nmds; i++)
        kc_metadata_free(c->mds[i]);
    free(c->mds);
    free(c->bootstrap);
    free(c->client_id);
    free(c);
}

/* Opens and negotiates a connection; *out is owned by the caller (conn_free). */
static int conn_new(kc_client_t *c, const char *host, int port, int32_t node_id, kc_conn_t **out)
{
    kc_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    conn->node_id = node_id;
    int rc = kc_conn_open(c, conn, host, port);
    if (!rc) rc = kc_conn_negotiate(c, conn);
    if (!rc) rc = kc_sasl_authenticate(c, conn);
    if (rc) {
        conn_free(conn);
        return rc;
    }
    *out = conn;
    return 0;
}

/* Splits "host:port" (or "[v6]:port"); 0 or K_ERR_INVAL. */
static int parse_hostport(const char *s, size_t n, char *host, size_t hcap, int *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':') colon = s + i;
    if (!colon || colon == s || (size_t)(colon - s) >= hcap) return K_ERR_INVAL;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
        memcpy(host, s + 1, hl - 2);
        host[hl - 2] = 0;
    } else {
        memcpy(host, s, hl);
        host[hl] = 0;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (end != s + n || p <= 0 || p > 65535) return K_ERR_INVAL;
    *port = (int)p;
    return 0;
}

int kc_client_connect(kc_client_t *c)
{
    kc_clear_error(c);
    int rc = kc_fail(c, K_ERR_INVAL, 0, "no bootstrap server given");
    for (const char *s = c->bootstrap; *s;) {
        size_t n = strcspn(s, ",");
        char host[256];
        int port;
        if (n && parse_hostport(s, n, host, sizeof host, &port) == 0) {
            rc = conn_new(c, host, port, -1, &c->boot);
            if (!rc) {
                kc_metadata_t *md;
                rc = kc_metadata_get(c, NULL, 0, false, &md);
                if (!rc) {
                    kc_metadata_free(md);
                    return 0;
                }
                conn_free(c->boot);
                c->boot = NULL;
            }
        } else if (n) {
            rc = kc_fail(c, K_ERR_INVAL, 0, "bad bootstrap address '%.*s' (want host:port)", (int)n,
                         s);
        }
        s += n;
        if (*s == ',') s++;
    }
    return rc;
}

int16_t kc_client_api_version(kc_client_t *c, int16_t api_key)
{
    if (!c->boot || api_key < 0 || api_key >= KC_MAX_API_KEY) return -1;
    return c->boot->ver[api_key];
}

const kc_metadata_t *kc_client_md(const kc_client_t *c)
{
    return c->nmds ? c->mds[c->nmds - 1] : NULL;
}

int kc_client_conn(kc_client_t *c, int32_t node_id, kc_conn_t **out)
{
    if (node_id < 0) {
        if (!c->boot) return kc_fail(c, K_ERR_IO, 0, "not connected (call kc_client_connect)");
        *out = c->boot;
        if (c->boot->fd < 0) {
            /* Reopen the bootstrap connection after an I/O failure. */
            kc_conn_t *fresh;
            int rc = conn_new(c, c->boot->host, c->boot->port, -1, &fresh);
            if (rc) return rc;
            conn_free(c->boot);
            c->boot = *out = fresh;
        }
        return 0;
    }
    int slot = -1;
    for (int i = 0; i < c->nconns; i++)
        if (c->conns[i]->node_id == node_id) {
            if (c->conns[i]->fd >= 0) {
                *out = c->conns[i];
                return 0;
            }
            slot = i;
        }
    const kc_metadata_t *md = kc_client_md(c);
    const kc_broker_md_t *b = NULL;
    for (int32_t i = 0; md && i < md->nbrokers; i++)
        if (md->brokers[i].node_id == node_id) b = &md->brokers[i];
    if (!b || !b->host)
        return kc_fail(c, K_ERR_NOENT, 0, "broker %d is not in the cluster metadata", node_id);
    kc_conn_t *conn;
    int rc = conn_new(c, b->host, b->port, node_id, &conn);
    if (rc) return rc;
    if (slot >= 0) {
        conn_free(c->conns[slot]);
        c->conns[slot] = conn;
    } else {
        kc_conn_t **v = realloc(c->conns, sizeof *v * (size_t)(c->nconns + 1));
        if (!v) {
            conn_free(conn);
            return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        }
        c->conns = v;
        c->conns[c->nconns++] = conn;
    }
    *out = conn;
    return 0;
}

/* ---- metadata ---------------------------------------------------------------------------- */

void kc_metadata_free(kc_metadata_t *md)
{
    if (!md) return;
    kp_arena_deinit(&md->arena);
    free(md);
}

const kc_topic_md_t *kc_metadata_topic(const kc_metadata_t *md, const char *name)
{
    for (int32_t i = 0; md && i < md->ntopics; i++)
        if (md->topics[i].name && strcmp(md->topics[i].name, name) == 0) return &md->topics[i];
    return NULL;
}

static int cmp_partition(const void *a, const void *b)
{
    const kc_partition_md_t *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static int32_t *copy_ids(kp_arena_t *a, const int32_t *ids, int32_t n)
{
    if (n <= 0) return NULL;
    int32_t *v = kp_arena_alloc(a, sizeof *v * (size_t)n);
    if (v) memcpy(v, ids, sizeof *v * (size_t)n);
    return v;
}

/* Copies a decoded response into an owned kc_metadata_t. */
static kc_metadata_t *md_copy(const kp_metadata_resp_t *r)
{
    kc_metadata_t *md = calloc(1, sizeof *md);
    if (!md) return NULL;
    kp_arena_t *a = &md->arena;
    kp_arena_init(a, NULL, 0, 0);
    md->controller_id = r->controller_id;
    md->cluster_id = kc_arena_strdup(a, r->cluster_id);
    md->nbrokers = r->brokers_count > 0 ? r->brokers_count : 0;
    md->brokers = kp_arena_alloc(a, sizeof *md->brokers * (size_t)(md->nbrokers + 1));
    md->ntopics = r->topics_count > 0 ? r->topics_count : 0;
    md->topics = kp_arena_alloc(a, sizeof *md->topics * (size_t)(md->ntopics + 1));
    if (!md->brokers || !md->topics) goto fail;
    for (int32_t i = 0; i < md->nbrokers; i++) {
        md->brokers[i].node_id = r->brokers[i].node_id;
        md->brokers[i].port = r->brokers[i].port;
        md->brokers[i].host = kc_arena_strdup(a, r->brokers[i].host);
    }
    for (int32_t i = 0; i < md->ntopics; i++) {
        const kp_metadata_resp_metadata_response_topic_t *rt = &r->topics[i];
        kc_topic_md_t *t = &md->topics[i];
        t->name = kc_arena_strdup(a, rt->name);
        t->error_code = rt->error_code;
        t->internal = rt->is_internal;
        t->topic_id = rt->topic_id;
        t->npartitions = rt->partitions_count > 0 ? rt->partitions_count : 0;
        t->partitions = kp_arena_alloc(a, sizeof *t->partitions * (size_t)(t->npartitions + 1));
        if (!t->partitions) goto fail;
        for (int32_t k = 0; k < t->npartitions; k++) {
            const kp_metadata_resp_metadata_response_partition_t *rp = &rt->partitions[k];
            kc_partition_md_t *p = &t->partitions[k];
            p->partition = rp->partition_index;
            p->error_code = rp->error_code;
            p->leader = rp->leader_id;
            p->leader_epoch = rp->leader_epoch;
            p->nreplicas = rp->replica_nodes_count > 0 ? rp->replica_nodes_count : 0;
            p->replicas = copy_ids(a, rp->replica_nodes, p->nreplicas);
            p->nisr = rp->isr_nodes_count > 0 ? rp->isr_nodes_count : 0;
            p->isr = copy_ids(a, rp->isr_nodes, p->nisr);
        }
        qsort(t->partitions, (size_t)t->npartitions, sizeof *t->partitions, cmp_partition);
    }
    return md;
fail:
    kc_metadata_free(md);
    return NULL;
}

static int md_remember(kc_client_t *c, kc_metadata_t *md)
{
    kc_metadata_t **v = realloc(c->mds, sizeof *v * (size_t)(c->nmds + 1));
    if (!v) return K_ERR_NOMEM;
    c->mds = v;
    c->mds[c->nmds++] = md;
    return 0;
}

/* Sends Metadata; the answer is both cached in c and, if out, copied for the caller. */
int kc_metadata_get(kc_client_t *c, const char *const *topics, int ntopics, bool auto_create,
                    kc_metadata_t **out)
{
    kc_conn_t *conn;
    int rc = kc_client_conn(c, -1, &conn);
    if (rc) return rc;
    kp_metadata_req_t req;
    kp_metadata_req_init(&req);
    kp_metadata_req_metadata_request_topic_t *rt = NULL;
    if (topics) {
        rt = calloc((size_t)ntopics + 1, sizeof *rt);
        if (!rt) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
        for (int i = 0; i < ntopics; i++) {
            kp_metadata_req_metadata_request_topic_init(&rt[i]);
            rt[i].name = kp_str(topics[i]);
        }
        req.topics = rt;
        req.topics_count = ntopics;
    } else {
        req.topics = NULL;
        req.topics_count = -1; /* null: all topics */
    }
    req.allow_auto_topic_creation = auto_create;
    kp_metadata_resp_t resp;
    kp_metadata_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_METADATA, &req, &resp, &rx, 0);
    free(rt);
    kc_metadata_t *md = NULL, *mine = NULL;
    if (!rc &&
        (!(md = md_copy(&resp)) || (out && !(mine = md_copy(&resp))) || md_remember(c, md))) {
        kc_metadata_free(md);
        kc_metadata_free(mine);
        rc = kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    }
    kc_rx_deinit(&rx);
    if (!rc && out) *out = mine;
    return rc;
}

static int topic_fetch(kc_client_t *c, const char *topic, bool auto_create,
                       const kc_topic_md_t **out)
{
    const char *one[1] = {topic};
    int rc = kc_metadata_get(c, one, 1, auto_create, NULL);
    if (rc) return rc;
    const kc_topic_md_t *t = kc_metadata_topic(kc_client_md(c), topic);
    if (!t)
        return kc_fail(c, K_ERR_NOENT, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                       "topic %s: UNKNOWN_TOPIC_OR_PARTITION: the broker did not return it", topic);
    char what[300];
    snprintf(what, sizeof what, "topic %s", topic);
    if (t->error_code) return kc_kafka_fail(c, t->error_code, what, (kp_str_t){NULL, -1});
    if (t->npartitions == 0)
        return kc_fail(c, K_ERR_AGAIN, KP_ERR_LEADER_NOT_AVAILABLE,
                       "%s: LEADER_NOT_AVAILABLE: it has no partitions yet", what);
    *out = t;
    return 0;
}

int kc_client_topic(kc_client_t *c, const char *topic, bool refresh, const kc_topic_md_t **out)
{
    return kc_client_topic_ex(c, topic, refresh, true, out);
}

int kc_client_topic_ex(kc_client_t *c, const char *topic, bool refresh, bool auto_create,
                       const kc_topic_md_t **out)
{
    if (!refresh)
        for (int i = c->nmds - 1; i >= 0; i--) {
            const kc_topic_md_t *t = kc_metadata_topic(c->mds[i], topic);
            if (t && t->error_code == 0 && t->npartitions > 0) {
                *out = t;
                return 0;
            }
        }
    /* A topic the broker just auto-created answers LEADER_NOT_AVAILABLE for a moment. */
    int rc = 0;
    for (int attempt = 0; attempt <= c->cfg.retries; attempt++) {
        if (attempt) kc_sleep_ms(c->cfg.retry_backoff_ms);
        if ((rc = topic_fetch(c, topic, auto_create, out)) != K_ERR_AGAIN) return rc;
    }
    return rc;
}

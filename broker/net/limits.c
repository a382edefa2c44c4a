/* Connection limits (rules in limits.h): admission, the per-IP count, the deadline sweep timer
 * and the queued-request-bytes pool. */
#include <ctype.h>
#include <inttypes.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/server.h"
#include "broker/net/limits.h"

struct kb_ipnode {
    kb_ipnode_t *next;
    kb_ipkey_t key;
    int count;
};

#define REFUSED_LOG_EVERY_MS 10000

void kb_ipkey_from(const struct sockaddr_storage *ss, kb_ipkey_t *out)
{
    memset(out, 0, sizeof *out);
    if (ss->ss_family == AF_INET) {
        memcpy(out->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        out->len = 4;
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        out->len = 16;
    }
}

/* host to an address key: an IP literal, else the first address it resolves to. */
static int resolve_host(const char *host, kb_ipkey_t *out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return K_ERR_INVAL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    kb_ipkey_from(&ss, out);
    return out->len ? 0 : K_ERR_INVAL;
}

/* One "host:count" (NUL-terminated, trimmed, modified in place) into *o. */
static int parse_override(char *item, kb_ip_override_t *o, char *err, size_t errlen)
{
    static const char key[] = "max.connections.per.ip.overrides";
    char *colon = strrchr(item, ':'), *end = NULL;
    long m = colon && colon[1] ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == item || !end || *end || m < 0 || m > INT32_MAX) {
        snprintf(err, errlen, "%s: '%s' is not host:count", key, item);
        return K_ERR_INVAL;
    }
    *colon = 0;
    char *host = item;
    if (host[0] == '[' && colon[-1] == ']') { /* [v6]:count */
        colon[-1] = 0;
        host++;
    }
    o->max = (int32_t)m;
    if (resolve_host(host, &o->ip) < 0) {
        snprintf(err, errlen, "%s: cannot resolve host '%s'", key, host);
        return K_ERR_INVAL;
    }
    return 0;
}

int kb_ip_overrides_parse(const char *v, kb_ip_override_t *out, int max, int *n, char *err,
                          size_t errlen)
{
    int count = 0;
    for (const char *p = v; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *next = comma ? comma + 1 : p + len;
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        char item[300];
        if (len >= sizeof item) {
            snprintf(err, errlen, "max.connections.per.ip.overrides: entry too long");
            return K_ERR_INVAL;
        }
        memcpy(item, p, len);
        item[len] = 0;
        p = next;
        if (!len) continue;
        kb_ip_override_t o;
        int rc = parse_override(item, &o, err, errlen);
        if (rc < 0) return rc;
        if (count == KB_MAX_IP_OVERRIDES) {
            snprintf(err, errlen, "max.connections.per.ip.overrides: at most %d entries",
                     KB_MAX_IP_OVERRIDES);
            return K_ERR_INVAL;
        }
        if (out && count < max) out[count] = o;
        count++;
    }
    if (n) *n = count;
    return 0;
}

static unsigned bucket(const kb_ipkey_t *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < k->len; i++)
        h = (h ^ k->addr[i]) * 16777619u;
    return h % KB_IP_BUCKETS;
}

static bool same(const kb_ipkey_t *a, const kb_ipkey_t *b)
{
    return a->len == b->len && !memcmp(a->addr, b->addr, a->len);
}

static kb_ipnode_t **find(kb_net_t *n, const kb_ipkey_t *k)
{
    kb_ipnode_t **pp = &n->ip[bucket(k)];
    while (*pp && !same(&(*pp)->key, k))
        pp = &(*pp)->next;
    return pp;
}

int kb_net_ip_count(const kb_broker_t *b, const kb_ipkey_t *ip)
{
    kb_ipnode_t **pp = find((kb_net_t *)&b->net, ip);
    return *pp ? (*pp)->count : 0;
}

int kb_net_ip_add(kb_broker_t *b, const kb_ipkey_t *ip)
{
    kb_ipnode_t **pp = find(&b->net, ip);
    if (!*pp) {
        kb_ipnode_t *node = calloc(1, sizeof *node); /* owned by the table until count is 0 */
        if (!node) return K_ERR_NOMEM;
        node->key = *ip;
        *pp = node;
    }
    (*pp)->count++;
    return 0;
}

void kb_net_ip_del(kb_broker_t *b, const kb_ipkey_t *ip)
{
    kb_ipnode_t **pp = find(&b->net, ip);
    kb_ipnode_t *node = *pp;
    if (!node) return;
    if (--node->count > 0) return;
    *pp = node->next;
    free(node);
}

static void log_refusal(kb_broker_t *b, const char *listener, const char *why, int limit)
{
    int64_t now = kb_mono_ms();
    b->net.refused++;
    if (b->net.refused_logged_ms && now - b->net.refused_logged_ms < REFUSED_LOG_EVERY_MS) return;
    kb_log(KB_LOG_WARN, "listener %s: refused %" PRId64 " connection(s) in the last %d s: %s (%d)",
           listener, b->net.refused, REFUSED_LOG_EVERY_MS / 1000, why, limit);
    b->net.refused = 0;
    b->net.refused_logged_ms = now;
}

bool kb_net_admit(kb_broker_t *b, const kb_ipkey_t *ip, const char *listener)
{
    if (b->n_conns >= b->cfg.max_connections) {
        b->net.refused_total[KB_REFUSED_MAX_CONNECTIONS]++;
        log_refusal(b, listener, "max.connections reached", b->cfg.max_connections);
        return false;
    }
    int32_t per_ip = b->cfg.max_connections_per_ip;
    for (int i = 0; i < b->net.n_overrides; i++)
        if (same(&b->net.overrides[i].ip, ip)) per_ip = b->net.overrides[i].max;
    if (kb_net_ip_count(b, ip) >= per_ip) {
        b->net.refused_total[KB_REFUSED_MAX_PER_IP]++;
        log_refusal(b, listener, "max.connections.per.ip reached", per_ip);
        return false;
    }
    return true;
}

bool kb_net_pool_full(const kb_broker_t *b)
{
    return b->cfg.queued_max_request_bytes > 0 &&
           b->net.queued_bytes >= b->cfg.queued_max_request_bytes;
}

static void on_pool_resume(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    if (b->net.n_pool_paused > 0 && !kb_net_pool_full(b)) kb_conn_pool_resume(b);
}

void kb_net_pool_freed(kb_broker_t *b)
{
    if (b->net.n_pool_paused > 0 && b->net.timers_up && !kb_net_pool_full(b) &&
        !uv_is_active((uv_handle_t *)&b->net.pool_resume))
        uv_timer_start(&b->net.pool_resume, on_pool_resume, 0, 0);
}

#define TRIM_AFTER_CLOSES 100
#define TRIM_EVERY_MS 2000

static void on_sweep(uv_timer_t *t)
{
    kb_broker_t *b = t->data;
    int64_t now = kb_mono_ms();
    kb_conn_sweep(b, now);
    if (b->net.closed_since_trim >= TRIM_AFTER_CLOSES && now - b->net.trimmed_ms >= TRIM_EVERY_MS) {
        malloc_trim(0); /* connections and their requests were freed by now (close is async) */
        b->net.closed_since_trim = 0;
        b->net.trimmed_ms = now;
    }
}

/* A quarter of the shortest deadline, within 50 ms .. 1 s. */
static uint64_t sweep_interval(const kb_config_t *cfg)
{
    int64_t m = cfg->socket_read_timeout_ms;
    if (cfg->socket_write_timeout_ms < m) m = cfg->socket_write_timeout_ms;
    if (cfg->connections_max_idle_ms > 0 && cfg->connections_max_idle_ms < m)
        m = cfg->connections_max_idle_ms;
    m /= 4;
    return (uint64_t)(m < 50 ? 50 : m > 1000 ? 1000 : m);
}

int kb_net_start(kb_broker_t *b)
{
    char err[256];
    int rc = kb_ip_overrides_parse(b->cfg.max_connections_per_ip_overrides, b->net.overrides,
                                   KB_MAX_IP_OVERRIDES, &b->net.n_overrides, err, sizeof err);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "%s", err);
        return rc;
    }
    uv_timer_init(b->loop, &b->net.sweep);
    uv_timer_init(b->loop, &b->net.pool_resume);
    b->net.sweep.data = b->net.pool_resume.data = b;
    b->net.timers_up = true;
    uint64_t every = sweep_interval(&b->cfg);
    return uv_timer_start(&b->net.sweep, on_sweep, every, every);
}

void kb_net_close(kb_broker_t *b)
{
    if (!b->net.timers_up) return;
    b->net.timers_up = false;
    uv_close((uv_handle_t *)&b->net.sweep, NULL);
    uv_close((uv_handle_t *)&b->net.pool_resume, NULL);
}

/*
 * Broker configuration, driven by the table in config_table.c: each row names a Kafka broker
 * key, its type, default, bounds and documentation, and where the parsed value lands in
 * kb_config_t. Parsing, validation, DescribeConfigs(BROKER) and docs/configuration.md
 * (build/depot --print-config-doc) all read the rows, so they cannot drift apart.
 */
#include "broker/core/config.h"
#include "broker/core/config_int.h"
#include "broker/net/limits.h"
#include "broker/net/listener.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define table kb_config_table
#define N_ENTRIES kb_config_table_n


int kb_config_count(void)
{
    return N_ENTRIES;
}

const kb_config_info_t *kb_config_info(int i)
{
    return i >= 0 && i < N_ENTRIES ? &table[i].info : NULL;
}

int kb_config_find(const char *name)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (!strcmp(table[i].info.name, name) || (table[i].alias && !strcmp(table[i].alias, name)))
            return i;
    return -1;
}

/* The T_PREFIX row whose family holds name ("uplink.producer.acks"), or -1. Such a row is
 * named "<family prefix><key>", e.g. "uplink.producer.<key>". */
static int find_prefix(const char *name)
{
    for (int i = 0; i < N_ENTRIES; i++) {
        size_t n = strcspn(table[i].info.name, "<");
        if (table[i].type == T_PREFIX && !strncmp(table[i].info.name, name, n) && name[n])
            return i;
    }
    return -1;
}

int kb_config_find_by_topic_key(const char *topic_key)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (table[i].info.topic_key && !strcmp(table[i].info.topic_key, topic_key)) return i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing one value                                                                            */

static void *field(kb_config_t *cfg, const entry_t *e)
{
    return (char *)cfg + e->off;
}

static const void *cfield(const kb_config_t *cfg, const entry_t *e)
{
    return (const char *)cfg + e->off;
}

static int parse_i64(const char *v, int64_t *out)
{
    if (!*v) return -1;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

static void store_int(kb_config_t *cfg, const entry_t *e, int64_t v)
{
    if (e->width == 8)
        *(int64_t *)field(cfg, e) = v;
    else
        *(int32_t *)field(cfg, e) = (int32_t)v;
}

static void free_dirs(kb_config_t *cfg)
{
    for (int i = 0; i < cfg->n_log_dirs; i++)
        free(cfg->log_dirs[i]);
    cfg->n_log_dirs = 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

static int parse_dirs(kb_config_t *cfg, const char *v, char *why, size_t whylen)
{
    free_dirs(cfg);
    char *copy = strdup(v);
    if (!copy) return K_ERR_NOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok) continue;
        if (cfg->n_log_dirs == (int)(sizeof cfg->log_dirs / sizeof cfg->log_dirs[0])) {
            snprintf(why, whylen, "at most %d directories",
                     (int)(sizeof cfg->log_dirs / sizeof cfg->log_dirs[0]));
            free(copy);
            return K_ERR_INVAL;
        }
        cfg->log_dirs[cfg->n_log_dirs] = strdup(tok);
        if (!cfg->log_dirs[cfg->n_log_dirs]) {
            free(copy);
            return K_ERR_NOMEM;
        }
        cfg->n_log_dirs++;
    }
    free(copy);
    if (cfg->n_log_dirs == 0) {
        snprintf(why, whylen, "no directory given");
        return K_ERR_INVAL;
    }
    return 0;
}

/* A double within [min, max] (max INT64_MAX: no upper bound). */
/* A heap string option (uplink.*): replaces the previous value; owned by the config. */
static int set_string(kb_config_t *cfg, const entry_t *e, const char *v)
{
    char **dst = field(cfg, e);
    char *copy = strdup(v);
    if (!copy) return K_ERR_NOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

static int parse_double(kb_config_t *cfg, const entry_t *e, const char *v, char *why,
                        size_t whylen)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= (double)e->min) ||
        (e->max != I64MAX && d > (double)e->max)) {
        if (e->max == I64MAX)
            snprintf(why, whylen, "must be a number >= %" PRId64, e->min);
        else
            snprintf(why, whylen, "must be a number between %" PRId64 " and %" PRId64, e->min,
                     e->max);
        return K_ERR_INVAL;
    }
    *(double *)field(cfg, e) = d;
    return 0;
}

/* Applies one value; on failure writes the reason (without the key) to why. */
static int apply(kb_config_t *cfg, const entry_t *e, const char *v, char *why, size_t whylen)
{
    int64_t x;
    switch (e->type) {
    case T_INT:
    case T_LONG:
        if (parse_i64(v, &x)) {
            snprintf(why, whylen, "not an integer");
            return K_ERR_INVAL;
        }
        if (x < e->min || x > e->max) {
            snprintf(why, whylen, "must be between %" PRId64 " and %" PRId64, e->min, e->max);
            return K_ERR_INVAL;
        }
        if (e->scale) {
            if (x < 0)
                x = -1; /* negative durations mean "forever" */
            else if (x > INT64_MAX / e->scale)
                x = INT64_MAX;
            else
                x *= e->scale;
        }
        store_int(cfg, e, x);
        return 0;
    case T_BOOL:
        if (!strcasecmp(v, "true"))
            *(bool *)field(cfg, e) = true;
        else if (!strcasecmp(v, "false"))
            *(bool *)field(cfg, e) = false;
        else {
            snprintf(why, whylen, "must be true or false");
            return K_ERR_INVAL;
        }
        return 0;
    case T_ENUM:
        for (int i = 0; e->choices[i]; i++)
            if (!strcasecmp(v, e->choices[i])) {
                *(int *)field(cfg, e) = i;
                return 0;
            }
        {
            size_t n = (size_t)snprintf(why, whylen, "must be one of");
            for (int i = 0; e->choices[i] && n < whylen; i++)
                n += (size_t)snprintf(why + n, whylen - n, "%s %s", i ? "," : "", e->choices[i]);
        }
        return K_ERR_INVAL;
    case T_DIRS:
        return parse_dirs(cfg, v, why, whylen);
    case T_DOUBLE:
        return parse_double(cfg, e, v, why, whylen);
    case T_STRING:
        return set_string(cfg, e, v);
    case T_PREFIX:
        return 0; /* the pairs are applied by apply_prefixed */
    case T_STR:
        if (strlen(v) >= (size_t)e->width) {
            snprintf(why, whylen, "longer than %d bytes", e->width - 1);
            return K_ERR_INVAL;
        }
        memcpy(field(cfg, e), v, strlen(v) + 1);
        return 0;
    case T_LISTENERS:
        return kb_listeners_parse(v, cfg->listeners, KB_MAX_LISTENERS, &cfg->n_listeners, why,
                                  whylen);
    case T_ADVERTISED: { /* checked here, merged into listeners[] by finish() */
        kb_listener_t scratch[KB_MAX_LISTENERS];
        int n = 0;
        return kb_listeners_parse(v, scratch, KB_MAX_LISTENERS, &n, why, whylen);
    }
    case T_PROTOMAP:
        return kb_protocol_map_parse(v, cfg->protocol_map,
                                     (int)(sizeof cfg->protocol_map / sizeof cfg->protocol_map[0]),
                                     &cfg->n_protocol_map, why, whylen);
    }
    return K_ERR_INVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Sources: the file, then --set                                                                */

#define MAX_PREFIXED 64

typedef struct {
    char *val[KB_CONFIG_MAX_ENTRIES]; /* the last value given per row (owned), NULL = not given */
    bool via_alias[KB_CONFIG_MAX_ENTRIES];
    int n_warnings;
    char *pre_key[MAX_PREFIXED], *pre_val[MAX_PREFIXED]; /* T_PREFIX keys in order (owned) */
    int n_pre;
} given_t;

static void given_free(given_t *g)
{
    for (int i = 0; i < N_ENTRIES; i++)
        free(g->val[i]);
    for (int i = 0; i < g->n_pre; i++) {
        free(g->pre_key[i]);
        free(g->pre_val[i]);
    }
}

/* Records one key of a T_PREFIX family; a repeated key replaces its earlier value. */
static int give_prefixed(given_t *g, const char *key, const char *value, const char *where)
{
    int k = 0;
    while (k < g->n_pre && strcmp(g->pre_key[k], key))
        k++;
    if (k == MAX_PREFIXED) {
        kb_log(KB_LOG_WARN, "config: more than %d prefixed keys, '%s' (%s) ignored",
               MAX_PREFIXED, key, where);
        g->n_warnings++;
        return 0;
    }
    char *v = strdup(value);
    char *kc = k < g->n_pre ? NULL : strdup(key);
    if (!v || (k == g->n_pre && !kc)) {
        free(v);
        free(kc);
        return K_ERR_NOMEM;
    }
    if (k == g->n_pre) {
        g->pre_key[g->n_pre++] = kc;
    } else {
        free(g->pre_val[k]);
    }
    g->pre_val[k] = v;
    return 0;
}

/* Copies the collected uplink.producer.<key> pairs into cfg as "key=value". */
static int apply_prefixed(kb_config_t *cfg, const given_t *g)
{
    for (int k = 0; k < g->n_pre; k++) {
        int i = find_prefix(g->pre_key[k]);
        if (i < 0 || table[i].off != OFF(uplink_producer)) continue;
        if (cfg->n_uplink_producer == KB_UPLINK_MAX_PRODUCER) return K_ERR_INVAL;
        const char *sub = g->pre_key[k] + strcspn(table[i].info.name, "<");
        size_t n = strlen(sub) + strlen(g->pre_val[k]) + 2;
        char *kv = malloc(n);
        if (!kv) return K_ERR_NOMEM;
        snprintf(kv, n, "%s=%s", sub, g->pre_val[k]);
        cfg->uplink_producer[cfg->n_uplink_producer++] = kv;
    }
    return 0;
}

/* Records key=value. The canonical name beats its alias whatever the order (Kafka: log.dirs
 * beats log.dir). */
static int give(given_t *g, const char *key, const char *value, const char *where)
{
    int i = kb_config_find(key);
    if (i >= 0 && table[i].type == T_PREFIX) i = -1; /* the family's bare name is no key */
    if (i < 0 && find_prefix(key) >= 0) return give_prefixed(g, key, value, where);
    if (i < 0) {
        kb_log(KB_LOG_WARN, "config: unknown key '%s' (%s) ignored", key, where);
        g->n_warnings++;
        return 0;
    }
    bool alias = strcmp(table[i].info.name, key) != 0;
    if (alias && g->val[i] && !g->via_alias[i]) return 0;
    char *copy = strdup(value);
    if (!copy) return K_ERR_NOMEM;
    free(g->val[i]);
    g->val[i] = copy;
    g->via_alias[i] = alias;
    return 0;
}

static int read_file(given_t *g, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return K_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        size_t k = strcspn(s, "=: \t");
        char *v = s + k;
        if (*v) {
            *v++ = 0;
            v = trim(v);
            if (*v == '=' || *v == ':') /* "key = value" */
                v = trim(v + 1);
        }
        char where[64];
        snprintf(where, sizeof where, "%.40s line %d", path, lineno);
        if ((rc = give(g, s, v, where)) < 0) break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

/* Each comma-separated word of list is one of words[] (NULL-terminated); *seen gets a bit
 * per word found. The first unknown one is copied to bad. */
static bool words_in(const char *list, const char *const *words, unsigned *seen, char *bad,
                     size_t badlen)
{
    *seen = 0;
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n)
            break;
        int hit = -1;
        for (int i = 0; words[i]; i++)
            if (strlen(words[i]) == n && !strncasecmp(p, words[i], n))
                hit = i;
        if (hit < 0) {
            snprintf(bad, badlen, "%.*s", (int)n, p);
            return false;
        }
        *seen |= 1u << hit;
        p += n;
    }
    return true;
}

/* group.coordinator.rebalance.protocols and group.consumer.assignors, as Kafka checks them. */
static int group_lists_check(const kb_config_t *cfg, char *err, size_t errlen)
{
    static const char *const protos[] = {"classic", "consumer", NULL};
    static const char *const assignors[] = {
        "uniform", "range", "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
        "org.apache.kafka.coordinator.group.assignor.RangeAssignor", NULL};
    char bad[64];
    unsigned seen;
    bool ok = words_in(cfg->group_rebalance_protocols, protos, &seen, bad, sizeof bad);
    if (!ok || !(seen & 1u)) {
        snprintf(err, errlen, "group.coordinator.rebalance.protocols: %s%s (a list of classic "
                 "and consumer that includes classic)", ok ? "classic missing" : "unknown ",
                 ok ? "" : bad);
        return K_ERR_INVAL;
    }
    ok = words_in(cfg->group_consumer_assignors, assignors, &seen, bad, sizeof bad);
    if (!ok || !seen) {
        snprintf(err, errlen, "group.consumer.assignors: %s%s (uniform, range)",
                 ok ? "empty" : "unknown assignor ", ok ? "" : bad);
        return K_ERR_INVAL;
    }
    return 0;
}

static int finish(kb_config_t *cfg, const given_t *g, char *err, size_t errlen)
{
    /* Protocols and advertised addresses per listener, now that all three keys are known. */
    int rc = kb_listeners_resolve(cfg, g->val[kb_config_find("advertised.listeners")], err, errlen);
    if (rc < 0) return rc;
    if (cfg->group_min_session_timeout_ms > cfg->group_max_session_timeout_ms) {
        snprintf(err, errlen,
                 "group.min.session.timeout.ms (%d) is larger than group.max.session.timeout.ms"
                 " (%d)",
                 cfg->group_min_session_timeout_ms, cfg->group_max_session_timeout_ms);
        return K_ERR_INVAL;
    }
    if ((rc = group_lists_check(cfg, err, errlen)) < 0)
        return rc;
    if (cfg->queued_max_request_bytes > 0 &&
        cfg->queued_max_request_bytes < cfg->socket_request_max_bytes) {
        snprintf(err, errlen,
                 "queued.max.request.bytes (%" PRId64 ") must be at least socket.request.max.bytes"
                 " (%d), or -1",
                 cfg->queued_max_request_bytes, cfg->socket_request_max_bytes);
        return K_ERR_INVAL;
    }
    if ((rc = kb_ip_overrides_parse(cfg->max_connections_per_ip_overrides, NULL, 0, NULL, err,
                                    errlen)) < 0)
        return rc;
    if (cfg->max_connections_per_ip == 0 && !cfg->max_connections_per_ip_overrides[0]) {
        snprintf(err, errlen,
                 "max.connections.per.ip is 0: set max.connections.per.ip.overrides for the "
                 "addresses that may connect (as Kafka requires)");
        return K_ERR_INVAL;
    }
    cfg->topic_defaults.max_message_bytes = cfg->message_max_bytes;
    return 0;
}

int kb_config_load(kb_config_t *cfg, const char *path, const char *const *sets, int n_sets,
                   char *err, size_t errlen, int *n_warnings)
{
    memset(cfg, 0, sizeof *cfg);
    ks_topic_config_default(&cfg->topic_defaults);
    if (n_warnings) *n_warnings = 0;
    given_t g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    if (path) rc = read_file(&g, path, err, errlen);
    for (int i = 0; rc == 0 && i < n_sets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) {
            snprintf(err, errlen, "--set %s: expected KEY=VALUE", sets[i]);
            rc = K_ERR_INVAL;
            break;
        }
        char key[256];
        size_t kl = (size_t)(eq - sets[i]);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, sets[i], kl);
        key[kl] = 0;
        char where[300];
        snprintf(where, sizeof where, "--set %s", key);
        rc = give(&g, trim(key), eq + 1, where);
    }
    for (int i = 0; rc == 0 && i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        const char *v = g.val[i] ? g.val[i] : e->def;
        if (!v) continue;
        char why[200] = "";
        int arc = apply(cfg, e, v, why, sizeof why);
        if (arc == K_ERR_NOMEM) {
            snprintf(err, errlen, "out of memory");
            rc = arc;
        } else if (arc < 0) {
            snprintf(err, errlen, "%s: invalid value '%.60s': %s", e->info.name, v, why);
            rc = K_ERR_INVAL;
        }
    }
    if (rc == 0 && (rc = apply_prefixed(cfg, &g)) < 0)
        snprintf(err, errlen, "uplink.producer.*: %s",
                 rc == K_ERR_NOMEM ? "out of memory" : "too many keys");
    if (rc == 0) rc = finish(cfg, &g, err, errlen);
    if (n_warnings) *n_warnings = g.n_warnings;
    given_free(&g);
    if (rc < 0) kb_config_deinit(cfg);
    return rc;
}

void kb_config_deinit(kb_config_t *cfg)
{
    free_dirs(cfg);
    for (int i = 0; i < N_ENTRIES; i++)
        if (table[i].type == T_STRING) {
            char **p = field(cfg, &table[i]);
            free(*p);
            *p = NULL;
        }
    for (int i = 0; i < cfg->n_uplink_producer; i++)
        free(cfg->uplink_producer[i]);
    cfg->n_uplink_producer = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering values back (DescribeConfigs) and the documentation                               */

static int64_t load_int(const kb_config_t *cfg, const entry_t *e)
{
    return e->width == 8 ? *(const int64_t *)cfield(cfg, e) : *(const int32_t *)cfield(cfg, e);
}

static void render(const kb_config_t *cfg, const entry_t *e, char *buf, size_t len)
{
    switch (e->type) {
    case T_INT:
    case T_LONG: {
        int64_t x = load_int(cfg, e);
        if (e->scale && x > 0) x /= e->scale;
        snprintf(buf, len, "%" PRId64, x);
        return;
    }
    case T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)cfield(cfg, e) ? "true" : "false");
        return;
    case T_DOUBLE:
        snprintf(buf, len, "%.17g", *(const double *)cfield(cfg, e));
        return;
    case T_ENUM: {
        int x = *(const int *)cfield(cfg, e);
        int n = 0;
        while (e->choices[n])
            n++;
        snprintf(buf, len, "%s", x >= 0 && x < n ? e->choices[x] : "");
        return;
    }
    case T_DIRS: {
        size_t n = 0;
        buf[0] = 0;
        for (int i = 0; i < cfg->n_log_dirs && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "," : "", cfg->log_dirs[i]);
        return;
    }
    case T_STR:
        snprintf(buf, len, "%s", (const char *)cfield(cfg, e));
        return;
    case T_LISTENERS:
    case T_ADVERTISED:
        kb_listeners_render(cfg->listeners, cfg->n_listeners, e->type == T_ADVERTISED, buf, len);
        return;
    case T_PROTOMAP:
        kb_protocol_map_render(cfg->protocol_map, cfg->n_protocol_map, buf, len);
        return;
    case T_STRING: {
        const char *const *p = cfield(cfg, e);
        snprintf(buf, len, "%s", *p ? *p : "");
        return;
    }
    case T_PREFIX: /* may hold passwords (sasl.password): only the keys are shown */
        buf[0] = 0;
        for (int i = 0, n = 0; i < cfg->n_uplink_producer && (size_t)n < len; i++)
            n += snprintf(buf + n, len - (size_t)n, "%s%.*s", i ? "," : "",
                          (int)strcspn(cfg->uplink_producer[i], "="), cfg->uplink_producer[i]);
        return;
    }
}

void kb_config_value(const kb_config_t *cfg, int i, char *buf, size_t len)
{
    if (len == 0) return;
    buf[0] = 0;
    if (i >= 0 && i < N_ENTRIES) render(cfg, &table[i], buf, len);
}

bool kb_config_is_default(const kb_config_t *cfg, int i)
{
    if (i < 0 || i >= N_ENTRIES) return false;
    const entry_t *e = &table[i];
    if (e->type == T_ADVERTISED) {
        for (int k = 0; k < cfg->n_listeners; k++) {
            const kb_listener_t *l = &cfg->listeners[k];
            if (strcmp(l->advertised_host, l->host) || l->advertised_port != l->port)
                return false;
        }
        return true;
    }
    if (e->type == T_PREFIX) return cfg->n_uplink_producer == 0;
    if (e->type == T_STRING && !e->def) return *(char *const *)cfield(cfg, e) == NULL;
    kb_config_t d;
    memset(&d, 0, sizeof d);
    ks_topic_config_default(&d.topic_defaults);
    char why[200];
    /* Rows without a default derive from a coarser row: compare that row's default. */
    const entry_t *src = e;
    while (!src->def && src > table && src[-1].off == e->off)
        src--;
    if (!src->def) return false;
    if (apply(&d, src, src->def, why, sizeof why) < 0) {
        kb_config_deinit(&d);
        return false;
    }
    char a[1024], b[1024];
    render(cfg, e, a, sizeof a);
    render(&d, e, b, sizeof b);
    kb_config_deinit(&d);
    return strcmp(a, b) == 0;
}

static const char *type_name(const entry_t *e)
{
    switch (e->type) {
    case T_INT:
        return "int";
    case T_LONG:
        return "long";
    case T_BOOL:
        return "boolean";
    case T_ENUM:
        return "string";
    case T_DIRS:
        return "list";
    case T_LISTENERS:
    case T_ADVERTISED:
        return "list";
    case T_PROTOMAP:
    case T_STR:
        return "string";
    case T_DOUBLE:
        return "double";
    case T_STRING:
        return "string";
    case T_PREFIX:
        return "prefix";
    }
    return "";
}

/* The topic-level keys (storage/config.c's table): every one a Kafka 4.1 broker accepts. */
static void print_topic_doc(FILE *out)
{
    ks_topic_config_t d;
    ks_topic_config_default(&d);
    fprintf(out, "\n## Topic-level configs\n\n"
                 "Every topic config a Kafka 4.1 broker accepts is accepted in CreateTopics, "
                 "AlterConfigs and IncrementalAlterConfigs, validated as Kafka validates it (an "
                 "unknown name or a bad value is refused with INVALID_CONFIG and Kafka's "
                 "message), persisted with the topic and reported by DescribeConfigs with its "
                 "source. The ones marked *accepted* change nothing on a single node. The broker "
                 "keys in the table above that have a topic key are dynamic: AlterConfigs on "
                 "broker `1` (or the cluster default) changes them without a restart, every "
                 "topic without its own override follows at once, and the change is kept in "
                 "`<first log dir>/depot-broker-configs.properties`.\n\n"
                 "| Topic key | Type | Kafka default | Kafka broker default key | On Depot |\n"
                 "|---|---|---|---|---|\n");
    for (const char *const *k = ks_topic_config_keys(); *k; k++) {
        char v[KS_THROTTLED_MAX];
        ks_topic_config_get(&d, *k, v, sizeof v);
        const char *bk = ks_topic_config_broker_key(*k);
        fprintf(out, "| `%s` | %s | `%s` | %s%s%s | %s |\n", *k, ks_topic_config_type(*k), v,
                bk ? "`" : "", bk ? bk : "", bk ? "`" : "", ks_topic_config_doc(*k));
    }
}

void kb_config_print_doc(FILE *out)
{
    fprintf(out, "# Configuration\n\n"
                 "<!-- Generated by `build/depot --print-config-doc` from the table in "
                 "broker/core/config.c; do not edit by hand. -->\n\n"
                 "Depot reads a Kafka-style `server.properties` file (`build/depot --config "
                 "FILE`): one `key=value` (or `key: value`) per line, `#` or `!` starts a "
                 "comment. `--set KEY=VALUE` (repeatable) overrides the file. A bad value stops "
                 "the broker with a message naming the key; an unknown key is logged as a "
                 "warning and ignored.\n\n"
                 "Per-topic overrides use Kafka's topic-level names (`retention.ms`, "
                 "`segment.bytes`, ...) in CreateTopics; the broker key they default from is "
                 "shown in the Topic key column.\n\n"
                 "| Key | Type | Default | Valid values | Topic key | Description |\n"
                 "|---|---|---|---|---|---|\n");
    for (int i = 0; i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        char range[160] = "";
        if (e->type == T_INT || e->type == T_LONG) {
            if (e->max == INT64_MAX)
                snprintf(range, sizeof range, "≥ %" PRId64, e->min);
            else
                snprintf(range, sizeof range, "%" PRId64 " … %" PRId64, e->min, e->max);
        } else if (e->type == T_ENUM) {
            size_t n = 0;
            for (int k = 0; e->choices[k] && n < sizeof range; k++)
                n += (size_t)snprintf(range + n, sizeof range - n, "%s`%s`", k ? ", " : "",
                                      e->choices[k]);
        } else if (e->type == T_BOOL) {
            snprintf(range, sizeof range, "`true`, `false`");
        } else if (e->type == T_DOUBLE) {
            if (e->max == INT64_MAX)
                snprintf(range, sizeof range, "≥ %" PRId64, e->min);
            else
                snprintf(range, sizeof range, "%" PRId64 " … %" PRId64, e->min, e->max);
        }
        fprintf(out, "| `%s`%s%s%s | %s | %s%s%s | %s | %s%s%s | %s |\n", e->info.name,
                e->alias ? " (`" : "", e->alias ? e->alias : "", e->alias ? "`)" : "", type_name(e),
                e->def ? "`" : "", e->def ? e->def : "(unset)", e->def ? "`" : "", range,
                e->info.topic_key ? "`" : "", e->info.topic_key ? e->info.topic_key : "",
                e->info.topic_key ? "`" : "", e->info.doc);
    }
    print_topic_doc(out);
}

/* ------------------------------------------------------------------------------------------ */
/* Dynamic updates (AlterConfigs on the broker)                                                 */

const char *kb_config_default_text(int i)
{
    return i >= 0 && i < N_ENTRIES ? table[i].def : NULL;
}

bool kb_config_is_dynamic(int i)
{
    if (i < 0 || i >= N_ENTRIES) return false;
    /* The topic defaults are read live (storage re-derives every topic from them) and so is
     * the log level and __audit's retention; everything else is wired at start (listeners, dirs, budgets). */
    return table[i].info.topic_key != NULL || table[i].off == OFF(log_level) ||
           table[i].off == OFF(audit_retention_ms); /* the audit tick applies it */
}

int kb_config_set_dynamic(kb_config_t *cfg, int i, const char *value, char *why, size_t whylen)
{
    if (!kb_config_is_dynamic(i)) {
        snprintf(why, whylen, "cannot be updated dynamically");
        return K_ERR_INVAL;
    }
    int rc = apply(cfg, &table[i], value, why, whylen);
    if (rc < 0) return rc;
    cfg->topic_defaults.max_message_bytes = cfg->message_max_bytes;
    if (table[i].off == OFF(log_level)) kb_log_set_level(cfg->log_level);
    return 0;
}

void kb_config_copy_value(kb_config_t *dst, const kb_config_t *src, int i)
{
    if (!kb_config_is_dynamic(i)) return;
    const entry_t *e = &table[i];
    size_t n = e->type == T_BOOL ? sizeof(bool) : e->type == T_ENUM ? sizeof(int) : (size_t)e->width;
    memcpy((char *)dst + e->off, (const char *)src + e->off, n);
    dst->topic_defaults.max_message_bytes = dst->message_max_bytes;
    if (e->off == OFF(log_level)) kb_log_set_level(dst->log_level);
}

/* Word-wraps text into "# " comment lines of at most ~96 columns. */
static void comment_wrapped(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t n = strlen(p);
        if (n > 94) {
            n = 94;
            while (n > 40 && p[n] != ' ')
                n--;
        }
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

void kb_config_print_properties(FILE *out, const char *const *active, int n_active)
{
    fprintf(out, "# Depot broker configuration (server.properties).\n"
                 "# Generated by `depot --print-config-properties` from the key table; every key\n"
                 "# is listed with its documentation and default, commented out. Uncomment and\n"
                 "# change what you need; restart the broker to apply.\n\n");
    if (n_active > 0) fprintf(out, "# ---- set for this installation ----\n");
    for (int i = 0; i < n_active; i++)
        fprintf(out, "%s\n", active[i]);
    fprintf(out, "\n# ---- every key, with its default ----\n");
    for (int i = 0; i < N_ENTRIES; i++) {
        const entry_t *e = &table[i];
        fprintf(out, "\n");
        comment_wrapped(out, e->info.doc);
        fprintf(out, "#%s=%s\n", e->info.name, e->def ? e->def : "");
    }
}

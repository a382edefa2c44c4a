/* Parsing and checking of listeners, listener.security.protocol.map and advertised.listeners
 * (rules in listener.h). Pure string work: no sockets, no loop. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker/net/listener.h"

static const char *const protocol_names[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
#define N_PROTOCOLS 4

int kb_security_protocol_parse(const char *s, size_t n)
{
    for (int i = 0; i < N_PROTOCOLS; i++)
        if (strlen(protocol_names[i]) == n && !strncasecmp(s, protocol_names[i], n)) return i;
    return -1;
}

const char *kb_security_protocol_name(int p)
{
    return p >= 0 && p < N_PROTOCOLS ? protocol_names[p] : "?";
}

/* Trims spaces off [*s, *e). */
static void trim_span(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* A listener name: 1..31 of [A-Za-z0-9_-], copied upper case (Kafka normalises the same way). */
static int take_name(const char *s, size_t n, char *out, char *why, size_t whylen)
{
    if (n == 0) {
        snprintf(why, whylen, "a listener name is missing");
        return K_ERR_INVAL;
    }
    if (n >= KB_LISTENER_NAME_MAX) {
        snprintf(why, whylen, "listener name '%.*s' is longer than %d characters", (int)n, s,
                 KB_LISTENER_NAME_MAX - 1);
        return K_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '_' && ch != '-') {
            snprintf(why, whylen, "listener name '%.*s' may only hold letters, digits, _ and -",
                     (int)n, s);
            return K_ERR_INVAL;
        }
        out[i] = (char)toupper(ch);
    }
    out[n] = 0;
    return 0;
}

static bool host_char_ok(unsigned char ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '%' || ch == ':';
}

/* "host:port" or "[v6]:port" (n bytes at s) into l->host / l->port. */
static int take_address(const char *s, size_t n, kb_listener_t *l, char *why, size_t whylen)
{
    const char *end = s + n, *hs = s, *he, *colon = NULL;
    if (n > 0 && *s == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb || rb + 1 >= end || rb[1] != ':') {
            snprintf(why, whylen, "bad IPv6 address in '%s://%.*s'", l->name, (int)n, s);
            return K_ERR_INVAL;
        }
        hs = s + 1;
        he = rb;
        colon = rb + 1;
    } else {
        for (const char *q = end; q > s; q--)
            if (q[-1] == ':') {
                colon = q - 1;
                break;
            }
        if (!colon) {
            snprintf(why, whylen, "'%s://%.*s' is missing :port", l->name, (int)n, s);
            return K_ERR_INVAL;
        }
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs))) {
            snprintf(why, whylen, "'%s://%.*s': write an IPv6 host in [brackets]", l->name, (int)n,
                     s);
            return K_ERR_INVAL;
        }
    }
    if ((size_t)(he - hs) >= sizeof l->host) {
        snprintf(why, whylen, "host name too long in listener %s", l->name);
        return K_ERR_INVAL;
    }
    for (const char *q = hs; q < he; q++)
        if (!host_char_ok((unsigned char)*q)) {
            snprintf(why, whylen, "bad character in host '%.*s' of listener %s", (int)(he - hs), hs,
                     l->name);
            return K_ERR_INVAL;
        }
    const char *ps = colon + 1;
    long port = 0;
    if (ps == end || end - ps > 5) port = -1;
    for (const char *q = ps; q < end && port >= 0; q++)
        port = isdigit((unsigned char)*q) ? port * 10 + (*q - '0') : -1;
    if (port < 0 || port > 65535) {
        snprintf(why, whylen, "bad port '%.*s' in listener %s (0 to 65535)", (int)(end - ps), ps,
                 l->name);
        return K_ERR_INVAL;
    }
    memcpy(l->host, hs, (size_t)(he - hs));
    l->host[he - hs] = 0;
    l->port = (int)port;
    return 0;
}

/* One "NAME://host:port" (n bytes at s). */
static int parse_one(const char *s, size_t n, kb_listener_t *l, char *why, size_t whylen)
{
    memset(l, 0, sizeof *l);
    l->security_protocol = -1;
    const char *sep = NULL;
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(s + i, "://", 3)) {
            sep = s + i;
            break;
        }
    if (!sep) {
        snprintf(why, whylen, "'%.*s' is not NAME://host:port", (int)n, s);
        return K_ERR_INVAL;
    }
    int rc = take_name(s, (size_t)(sep - s), l->name, why, whylen);
    if (rc < 0) return rc;
    return take_address(sep + 3, (size_t)(s + n - sep - 3), l, why, whylen);
}

int kb_listeners_parse(const char *v, kb_listener_t *out, int max, int *n, char *why, size_t whylen)
{
    *n = 0;
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *s = p, *e = comma ? comma : p + strlen(p);
        p = comma ? comma + 1 : e;
        trim_span(&s, &e);
        if (s == e) continue;
        if (*n == max) {
            snprintf(why, whylen, "at most %d listeners", max);
            return K_ERR_INVAL;
        }
        kb_listener_t *l = &out[*n];
        int rc = parse_one(s, (size_t)(e - s), l, why, whylen);
        if (rc < 0) return rc;
        for (int i = 0; i < *n; i++)
            if (!strcmp(out[i].name, l->name)) {
                snprintf(why, whylen, "listener name %s is given twice (each needs its own name)",
                         l->name);
                return K_ERR_INVAL;
            }
        (*n)++;
    }
    if (*n == 0) {
        snprintf(why, whylen, "no listener given");
        return K_ERR_INVAL;
    }
    return 0;
}

int kb_protocol_map_parse(const char *v, kb_protocol_map_entry_t *out, int max, int *n, char *why,
                          size_t whylen)
{
    *n = 0;
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *s = p, *e = comma ? comma : p + strlen(p);
        p = comma ? comma + 1 : e;
        trim_span(&s, &e);
        if (s == e) continue;
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (!colon) {
            snprintf(why, whylen, "'%.*s' is not NAME:PROTOCOL", (int)(e - s), s);
            return K_ERR_INVAL;
        }
        if (*n == max) {
            snprintf(why, whylen, "at most %d entries", max);
            return K_ERR_INVAL;
        }
        kb_protocol_map_entry_t *m = &out[*n];
        const char *ns = s, *ne = colon, *ps = colon + 1, *pe = e;
        trim_span(&ns, &ne);
        trim_span(&ps, &pe);
        int rc = take_name(ns, (size_t)(ne - ns), m->name, why, whylen);
        if (rc < 0) return rc;
        m->security_protocol = kb_security_protocol_parse(ps, (size_t)(pe - ps));
        if (m->security_protocol < 0) {
            snprintf(why, whylen,
                     "unknown security protocol '%.*s' for %s (PLAINTEXT, SSL, SASL_PLAINTEXT "
                     "or SASL_SSL)",
                     (int)(pe - ps), ps, m->name);
            return K_ERR_INVAL;
        }
        for (int i = 0; i < *n; i++)
            if (!strcmp(out[i].name, m->name)) {
                snprintf(why, whylen, "%s is mapped twice", m->name);
                return K_ERR_INVAL;
            }
        (*n)++;
    }
    return 0;
}

static bool wildcard(const char *host)
{
    return !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

/* Listener a and b would bind the same port (both fixed, and one host covers the other). */
static bool same_port(const kb_listener_t *a, const kb_listener_t *b)
{
    if (a->port == 0 || a->port != b->port) return false;
    return wildcard(a->host) || wildcard(b->host) || !strcasecmp(a->host, b->host);
}

static int give_protocols(kb_config_t *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_listeners; i++) {
        kb_listener_t *l = &cfg->listeners[i];
        l->security_protocol = -1;
        for (int k = 0; k < cfg->n_protocol_map; k++)
            if (!strcmp(cfg->protocol_map[k].name, l->name))
                l->security_protocol = cfg->protocol_map[k].security_protocol;
        if (l->security_protocol < 0) {
            snprintf(err, errlen,
                     "listeners: listener %s has no security protocol: add %s:PLAINTEXT (or SSL, "
                     "SASL_PLAINTEXT, SASL_SSL) to listener.security.protocol.map",
                     l->name, l->name);
            return K_ERR_INVAL;
        }
        char why[160];
        if (!kb_transport_for(l->security_protocol, why, sizeof why)) {
            snprintf(err, errlen, "listeners: listener %s (%s): %s", l->name,
                     kb_security_protocol_name(l->security_protocol), why);
            return K_ERR_INVAL;
        }
        for (int k = 0; k < i; k++)
            if (same_port(&cfg->listeners[k], l)) {
                snprintf(err, errlen, "listeners: %s and %s both use port %d",
                         cfg->listeners[k].name, l->name, l->port);
                return K_ERR_INVAL;
            }
    }
    return 0;
}

/* The default advertised address: the bind address, a wildcard host replaced by a name
 * clients can use. */
static void advertise_self(kb_listener_t *l)
{
    snprintf(l->advertised_host, sizeof l->advertised_host, "%s", l->host);
    l->advertised_port = l->port;
    if (wildcard(l->host) && (gethostname(l->advertised_host, sizeof l->advertised_host - 1) != 0 ||
                              !l->advertised_host[0]))
        snprintf(l->advertised_host, sizeof l->advertised_host, "127.0.0.1");
}

int kb_listeners_resolve(kb_config_t *cfg, const char *advertised, char *err, size_t errlen)
{
    int rc = give_protocols(cfg, err, errlen);
    if (rc < 0) return rc;
    for (int i = 0; i < cfg->n_listeners; i++)
        advertise_self(&cfg->listeners[i]);
    if (!advertised) return 0;
    kb_listener_t adv[KB_MAX_LISTENERS];
    int n = 0;
    char why[200];
    if (kb_listeners_parse(advertised, adv, KB_MAX_LISTENERS, &n, why, sizeof why) < 0) {
        snprintf(err, errlen, "advertised.listeners: %s", why);
        return K_ERR_INVAL;
    }
    for (int k = 0; k < n; k++) {
        kb_listener_t *l = NULL;
        for (int i = 0; i < cfg->n_listeners && !l; i++)
            if (!strcmp(cfg->listeners[i].name, adv[k].name)) l = &cfg->listeners[i];
        if (!l) {
            snprintf(err, errlen, "advertised.listeners: %s is not one of the listeners",
                     adv[k].name);
            return K_ERR_INVAL;
        }
        if (!adv[k].host[0]) {
            snprintf(err, errlen, "advertised.listeners: a host is required for %s", adv[k].name);
            return K_ERR_INVAL;
        }
        if (wildcard(adv[k].host)) {
            snprintf(err, errlen,
                     "advertised.listeners: %s advertises the wildcard %s, which clients cannot "
                     "connect to",
                     adv[k].name, adv[k].host);
            return K_ERR_INVAL;
        }
        memcpy(l->advertised_host, adv[k].host, sizeof l->advertised_host);
        l->advertised_port = adv[k].port;
    }
    return 0;
}

void kb_listeners_render(const kb_listener_t *l, int n, bool advertised, char *buf, size_t len)
{
    size_t k = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < n && k < len; i++) {
        const char *host = advertised ? l[i].advertised_host : l[i].host;
        int port = advertised ? l[i].advertised_port : l[i].port;
        bool v6 = strchr(host, ':') != NULL;
        k += (size_t)snprintf(buf + k, len - k, "%s%s://%s%s%s:%d", i ? "," : "", l[i].name,
                              v6 ? "[" : "", host, v6 ? "]" : "", port);
    }
}

void kb_protocol_map_render(const kb_protocol_map_entry_t *m, int n, char *buf, size_t len)
{
    size_t k = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s:%s", i ? "," : "", m[i].name,
                              kb_security_protocol_name(m[i].security_protocol));
}

/* The listening sockets (rules in listener.h): bind every configured listener, accept through
 * its transport factory, hand each connection to conn.c with its listener. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "broker/core/server.h"
#include "broker/net/listener.h"

const kb_listener_t *kb_req_listener(const kb_req_t *req)
{
    if (req->conn) return kb_conn_listener(req->conn);
    return &req->broker->cfg.listeners[0];
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    const char *h = host[0] ? host : "0.0.0.0";
    if (uv_ip4_addr(h, port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0) return 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res) return K_ERR_INVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000

static void on_connection(uv_stream_t *server, int status);

/* Takes the pending connection (if any) through the factory. Returns < 0 when accepting
 * failed for a reason that may pass (memory, descriptors): the caller retries later. */
static int accept_one(kb_listen_sock_t *ls)
{
    kb_broker_t *b = ls->broker;
    kb_transport_t *t = NULL;
    int rc = ls->factory->accept(ls->factory->ud, b->loop, (uv_stream_t *)&ls->tcp, &t);
    if (rc == UV_EAGAIN) return 0; /* nothing pending */
    if (rc < 0) return rc;
    struct sockaddr_storage ss;
    kb_ipkey_t ip;
    memset(&ss, 0, sizeof ss);
    t->ops->peer_addr(t, &ss);
    kb_ipkey_from(&ss, &ip);
    if (b->stopping || !kb_net_admit(b, &ip, ls->cfg->name)) {
        t->ops->close(t, t->ops->free); /* a clean close the client sees at once */
        return 0;
    }
    kb_conn_accept(b, ls->cfg, t);
    return 0;
}

/* After a failure libuv holds the pending connection and stops polling the socket; taking it
 * (or, if it is gone, listening again) resumes accepting. */
static void on_retry(uv_timer_t *timer)
{
    kb_listen_sock_t *ls = timer->data;
    if (ls->broker->stopping) return;
    int rc = accept_one(ls);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ls->tcp, 511, on_connection);
    if (rc < 0) {
        ls->retry_ms = ls->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ls->retry_ms * 2;
        uv_timer_start(&ls->retry, on_retry, (uint64_t)ls->retry_ms, 0);
        return;
    }
    kb_log(KB_LOG_INFO, "listener %s: accepting again", ls->cfg->name);
    ls->retry_ms = 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    kb_listen_sock_t *ls = server->data;
    if (status < 0) { /* libuv already shed the connection (EMFILE: its spare descriptor) */
        kb_log(KB_LOG_WARN, "listener %s: accept: %s", ls->cfg->name, uv_strerror(status));
        return;
    }
    if (ls->retry_ms) return; /* the retry timer owns the pending connection */
    int rc = accept_one(ls);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "listener %s: cannot accept (%s); trying again in %d ms", ls->cfg->name,
               k_strerror(rc), RETRY_FIRST_MS);
        ls->retry_ms = RETRY_FIRST_MS;
        uv_timer_start(&ls->retry, on_retry, RETRY_FIRST_MS, 0);
    }
}

static int bind_one(kb_broker_t *b, kb_listen_sock_t *ls)
{
    kb_listener_t *l = ls->cfg;
    char why[160];
    ls->factory = kb_transport_for(l->security_protocol, why, sizeof why);
    if (!ls->factory) {
        kb_log(KB_LOG_ERROR, "listener %s: %s", l->name, why);
        return K_ERR_INVAL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (resolve(l->host, l->port, &ss) < 0) {
        kb_log(KB_LOG_ERROR, "listener %s: cannot resolve host '%s'", l->name, l->host);
        return K_ERR_INVAL;
    }
    uv_tcp_init(b->loop, &ls->tcp);
    uv_timer_init(b->loop, &ls->retry);
    ls->tcp.data = ls->retry.data = ls;
    ls->open = true;
    /* Bound now, listening only at the end of start-up (kb_listeners_listen). libuv keeps a
     * bind's EADDRINUSE for later (the handle's delayed error) and getsockname returns it, so
     * a busy port still fails here, before log.dirs is touched. */
    int n = sizeof ss;
    int rc = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &n);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "listener %s: cannot listen on %s:%d: %s", l->name, l->host, l->port,
               uv_strerror(rc));
        return K_ERR_IO;
    }
    int port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (l->advertised_port == 0) /* listeners=...:0 without advertised.listeners */
        l->advertised_port = port;
    l->port = port;
    return 0;
}

int kb_listeners_bind(kb_broker_t *b)
{
    int rc = kb_net_start(b);
    if (rc < 0) return rc;
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        kb_listen_sock_t *ls = &b->socks[i];
        memset(ls, 0, sizeof *ls);
        ls->broker = b;
        ls->cfg = &b->cfg.listeners[i];
        if ((rc = bind_one(b, ls)) < 0) return rc;
    }
    return 0;
}

int kb_listeners_listen(kb_broker_t *b)
{
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        kb_listen_sock_t *ls = &b->socks[i];
        int rc = uv_listen((uv_stream_t *)&ls->tcp, 511, on_connection);
        if (rc < 0) {
            kb_log(KB_LOG_ERROR, "listener %s: cannot listen on %s:%d: %s", ls->cfg->name,
                   ls->cfg->host, ls->cfg->port, uv_strerror(rc));
            return K_ERR_IO;
        }
    }
    return 0;
}

void kb_listeners_close(kb_broker_t *b)
{
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        kb_listen_sock_t *ls = &b->socks[i];
        if (ls->open && !uv_is_closing((uv_handle_t *)&ls->tcp)) {
            uv_close((uv_handle_t *)&ls->tcp, NULL);
            uv_close((uv_handle_t *)&ls->retry, NULL);
        }
    }
    kb_net_close(b);
}

void kb_listeners_describe(const kb_broker_t *b, bool advertised, char *buf, size_t len)
{
    kb_listener_t shown[KB_MAX_LISTENERS];
    int n = b->cfg.n_listeners;
    memcpy(shown, b->cfg.listeners, sizeof shown[0] * (size_t)n);
    for (int i = 0; i < n; i++) /* the log has always said 0.0.0.0 for "every interface" */
        if (!shown[i].host[0]) snprintf(shown[i].host, sizeof shown[i].host, "0.0.0.0");
    kb_listeners_render(shown, n, advertised, buf, len);
}

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

static void on_connection(uv_stream_t *server, int status)
{
    kb_listen_sock_t *ls = server->data;
    kb_broker_t *b = ls->broker;
    if (status < 0) {
        kb_log(KB_LOG_WARN, "listener %s: accept: %s", ls->cfg->name, uv_strerror(status));
        return;
    }
    if (b->stopping) return;
    kb_transport_t *t = NULL;
    int rc = ls->factory->accept(ls->factory->ud, b->loop, server, &t);
    if (rc < 0) {
        kb_log(KB_LOG_WARN, "listener %s: accept: %s", ls->cfg->name, k_strerror(rc));
        return;
    }
    kb_conn_accept(b, ls->cfg, t);
}

static int start_one(kb_broker_t *b, kb_listen_sock_t *ls)
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
    ls->tcp.data = ls;
    ls->open = true;
    int rc = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ls->tcp, 511, on_connection);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "listener %s: cannot listen on %s:%d: %s", l->name, l->host,
               l->port, uv_strerror(rc));
        return K_ERR_IO;
    }
    int n = sizeof ss;
    if (uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &n) == 0) {
        int port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        if (l->advertised_port == 0) /* listeners=...:0 without advertised.listeners */
            l->advertised_port = port;
        l->port = port;
    }
    return 0;
}

int kb_listeners_start(kb_broker_t *b)
{
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        kb_listen_sock_t *ls = &b->socks[i];
        memset(ls, 0, sizeof *ls);
        ls->broker = b;
        ls->cfg = &b->cfg.listeners[i];
        int rc = start_one(b, ls);
        if (rc < 0) return rc;
    }
    return 0;
}

void kb_listeners_close(kb_broker_t *b)
{
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        kb_listen_sock_t *ls = &b->socks[i];
        if (ls->open && !uv_is_closing((uv_handle_t *)&ls->tcp))
            uv_close((uv_handle_t *)&ls->tcp, NULL);
    }
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

/*
 * The registry's HTTP glue: each HTTP request on the "registry" listener becomes a
 * kb_reg_request_t for the REST core (reg_api.c), whose answer (possibly after an fsync)
 * completes the HTTP request.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http/http.h"
#include "broker/registry/reg_int.h"

/* Bodies above this get 413 from the HTTP server before the registry sees them. */
#define REG_MAX_BODY (2 * 1024 * 1024)

static const char *http_query(void *ud, const char *name)
{
    return kb_http_query(ud, name);
}

/* The request being handled right now: an answer that arrives before on_request returns
 * (every read) makes it KB_DONE, a later one (a write after its fsync) KB_PENDING. */
static kb_http_req_t *answering;
static bool answered_now;

static void on_answer(void *ctx, int status, char *body, size_t len)
{
    kb_http_req_t *req = ctx;
    if (req == answering)
        answered_now = true;
    if (!body)
        status = 500;
    else if (!kb_http_closed(req))
        kb_http_write(req, body, len);
    free(body);
    kb_http_send(req, status, KB_REG_CONTENT_TYPE);
}

static int on_request(kb_http_req_t *req, void *ud)
{
    kb_registry_t *r = ud;
    size_t len = 0;
    const uint8_t *body = kb_http_body(req, &len);
    kb_reg_request_t rr = {kb_http_method(req), kb_http_path(req), http_query, req, body, len};
    answering = req;
    answered_now = false;
    kb_registry_call(r, &rr, on_answer, req);
    answering = NULL;
    return answered_now ? KB_DONE : KB_PENDING;
}

int reg_http_start(kb_broker_t *b, kb_registry_t *r, const char *urls)
{
    kb_http_opts_t opts = {.max_body_bytes = REG_MAX_BODY};
    kb_http_listener_t *l;
    int rc = kb_http_listen(b, "registry", urls, &opts, &l);
    if (rc == 0)
        rc = kb_http_route(l, NULL, "/*", on_request, r);
    return rc;
}

/*
 * The registry's HTTP glue. broker/http (the shared HTTP server) has not landed yet: until it
 * does, a broker started with schema.registry.listeners refuses to start with this message
 * rather than pretending to serve. The REST core is complete and tested without HTTP
 * (tests/broker/test_registry.c); plugging it in is reg_http_start on kb_http_listen.
 */
#include "broker/registry/reg_int.h"

int reg_http_start(kb_broker_t *b, kb_registry_t *r, const char *urls)
{
    (void)b, (void)r;
    kb_log(KB_LOG_ERROR, "schema.registry.listeners=%s: this build has no HTTP server yet", urls);
    return K_ERR_UNSUPPORTED;
}

/*
 * The registry's HTTP glue: each HTTP request on the "registry" listener becomes a
 * kb_reg_request_t for the REST core (reg_api.c), whose answer (possibly after an fsync)
 * completes the HTTP request.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/clock.h"

#include "broker/auth/sasl.h"
#include "broker/http/http.h"
#include "broker/registry/reg_int.h"

/* Bodies above this get 413 from the HTTP server before the registry sees them. */
#define REG_MAX_BODY (2 * 1024 * 1024)
#define REG_AUTH_CACHE 16
#define REG_AUTH_TTL_MS (60 * 1000)

/*
 * Basic auth against the broker's users: the password is checked against the user's SCRAM
 * credential (SHA-256 if the user has one, else SHA-512), as SASL/PLAIN does. That check is a
 * PBKDF2 of 4096+ iterations, milliseconds on the loop thread, and serializers send the header
 * with every request: a user whose password matched is remembered for a minute as a SHA-256 of
 * (salt, user, password) with a per-process random salt, so repeats cost one hash.
 */
typedef struct {
    char user[KB_SCRAM_MAX_USER + 1];
    uint8_t digest[32];
    int64_t until_ms;
} auth_seen_t;

static auth_seen_t auth_cache[REG_AUTH_CACHE];
static uint8_t auth_salt[16];
static bool auth_salted;

/* Fails (returns false) only when out of memory. */
static bool auth_digest(const char *user, const char *password, uint8_t out[32])
{
    if (!auth_salted) {
        auth_salted = RAND_bytes(auth_salt, sizeof auth_salt) == 1;
        if (!auth_salted)
            return false;
    }
    size_t ul = strlen(user) + 1, pl = strlen(password);
    uint8_t *buf = malloc(sizeof auth_salt + ul + pl);
    if (!buf)
        return false;
    memcpy(buf, auth_salt, sizeof auth_salt);
    memcpy(buf + sizeof auth_salt, user, ul);
    memcpy(buf + sizeof auth_salt + ul, password, pl);
    bool ok = SHA256(buf, sizeof auth_salt + ul + pl, out) != NULL;
    OPENSSL_cleanse(buf, sizeof auth_salt + ul + pl);
    free(buf);
    return ok;
}

static int check_basic(const char *user, const char *password, void *ud)
{
    kb_broker_t *b = ud;
    int64_t now = kb_mono_ms();
    uint8_t d[32];
    if (strlen(user) > KB_SCRAM_MAX_USER)
        return K_ERR_INVAL;
    bool cached = auth_digest(user, password, d);
    for (int i = 0; cached && i < REG_AUTH_CACHE; i++)
        if (auth_cache[i].until_ms > now && !strcmp(auth_cache[i].user, user) &&
            CRYPTO_memcmp(auth_cache[i].digest, d, sizeof d) == 0)
            return 0;
    kb_creds_t *creds = kb_sasl_creds(b);
    kb_scram_cred_t cred;
    int rc = creds ? kb_creds_find(creds, user, KB_SCRAM_SHA_256, &cred) : K_ERR_NOENT;
    if (rc < 0 && creds)
        rc = kb_creds_find(creds, user, KB_SCRAM_SHA_512, &cred);
    if (rc == 0 && !kb_scram_cred_check(&cred, password, strlen(password)))
        rc = K_ERR_INVAL;
    OPENSSL_cleanse(&cred, sizeof cred);
    if (rc < 0) {
        kb_log(KB_LOG_INFO, "registry: basic auth refused for user '%.64s'", user);
        return K_ERR_INVAL;
    }
    if (!cached)
        return 0;
    int slot = 0; /* the expired or oldest entry */
    for (int i = 1; i < REG_AUTH_CACHE; i++)
        if (auth_cache[i].until_ms < auth_cache[slot].until_ms)
            slot = i;
    snprintf(auth_cache[slot].user, sizeof auth_cache[slot].user, "%s", user);
    memcpy(auth_cache[slot].digest, d, sizeof d);
    auth_cache[slot].until_ms = now + REG_AUTH_TTL_MS;
    return 0;
}

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

int reg_http_start(kb_broker_t *b, kb_registry_t *r, const char *urls, bool basic_auth)
{
    /* https:// addresses take schema.registry.ssl.* (falling back to the broker's ssl.*) */
    kb_http_opts_t opts = {.max_body_bytes = REG_MAX_BODY, .tls_for = KB_HTTP_TLS_REGISTRY};
    kb_http_listener_t *l;
    int rc = kb_http_listen(b, "registry", urls, &opts, &l);
    if (rc == 0)
        rc = kb_http_route(l, NULL, "/*", on_request, r);
    if (rc == 0 && basic_auth)
        rc = kb_http_set_auth(l, "Depot schema registry", check_basic, b);
    return rc;
}

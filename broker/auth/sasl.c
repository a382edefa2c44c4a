/* SASL state machine per connection and the auth subsystem (see sasl.h). */
#include "broker/auth/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/auth/audit.h"
#include "broker/auth/auth.h"
#include "broker/core/clock.h"
#include "protocol/kp_errors.h"
#include "protocol/kp_header.h"

typedef struct plain_job plain_job_t;

/*
 * PLAIN checks waiting for, or running on, libuv's thread pool. At most `max` run at once
 * (the cores but one, at least one): the event loop keeps a core however many clients log in
 * together. Allocated apart from sasl_broker_t because jobs may outlive the subsystem (a stop
 * that does not wait): then `orphaned` is set and the last job frees it.
 */
typedef struct {
    uv_loop_t *loop;
    plain_job_t *head, *tail; /* waiting, oldest first */
    int inflight, max;
    bool orphaned;
} plain_pool_t;

typedef struct {
    kb_creds_t *creds; /* owned */
    unsigned mechs;
    int64_t reauth_ms;
    plain_pool_t *pool; /* owned; see plain_pool_t for when it outlives this */
} sasl_broker_t;

struct kb_sasl_conn {
    int state;
    int mech;         /* KB_MECH_* of the running exchange */
    bool raw;         /* tokens come without Kafka headers (SaslHandshake v0) */
    bool reauth;      /* the running exchange re-authenticates an authenticated session */
    int64_t expiry;   /* kb_mono_ms() after which the session is over; 0 = never */
    char user[KB_SCRAM_MAX_USER + 1]; /* authenticated user (kept across re-authentication) */
    kb_scram_server_t scram;
};

static sasl_broker_t *state_of(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_sasl_subsys) : NULL;
    return slot ? *slot : NULL;
}

kb_creds_t *kb_sasl_creds(kb_broker_t *b)
{
    sasl_broker_t *st = state_of(b);
    return st ? st->creds : NULL;
}

void kb_sasl_creds_reload(kb_broker_t *b)
{
    sasl_broker_t *st = state_of(b);
    kb_creds_t *fresh = NULL;
    char err[256];
    if (!st || kb_creds_open(kb_broker_config(b)->log_dirs[0], &fresh, err, sizeof err) < 0) {
        kb_log(KB_LOG_ERROR, "SCRAM credentials: reload failed, keeping memory: %s", err);
        return;
    }
    kb_creds_free(st->creds);
    st->creds = fresh;
}

unsigned kb_sasl_mechanisms(kb_broker_t *b)
{
    sasl_broker_t *st = state_of(b);
    return st ? st->mechs : 0;
}

int kb_sasl_parse_mechanisms(const char *list, unsigned *out, char *why, size_t whylen)
{
    unsigned m = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n) break;
        if (n == 5 && !memcmp(p, "PLAIN", 5))
            m |= KB_MECH_PLAIN;
        else if (kb_scram_mech_from_name(p, n) == KB_SCRAM_SHA_256)
            m |= KB_MECH_SCRAM_SHA_256;
        else if (kb_scram_mech_from_name(p, n) == KB_SCRAM_SHA_512)
            m |= KB_MECH_SCRAM_SHA_512;
        else {
            snprintf(why, whylen, "mechanism %.*s is not supported (PLAIN, SCRAM-SHA-256, "
                     "SCRAM-SHA-512 are)", (int)n, p);
            return K_ERR_UNSUPPORTED;
        }
        p += n;
    }
    *out = m;
    return 0;
}

static int sasl_init(kb_broker_t *b)
{
    const kb_config_t *cfg = kb_broker_config(b);
    sasl_broker_t *st = calloc(1, sizeof *st); /* owned by the slot until sasl_close */
    if (!st) return K_ERR_NOMEM;
    char why[256] = "";
    int rc = kb_sasl_parse_mechanisms(cfg->sasl_enabled_mechanisms, &st->mechs, why, sizeof why);
    if (rc < 0) {
        kb_log(KB_LOG_ERROR, "sasl.enabled.mechanisms: %s", why);
        free(st);
        return rc;
    }
    st->reauth_ms = cfg->connections_max_reauth_ms;
    if ((rc = kb_creds_open(cfg->log_dirs[0], &st->creds, why, sizeof why)) < 0) {
        kb_log(KB_LOG_ERROR, "SCRAM credentials: %s", why);
        free(st);
        return rc;
    }
    st->pool = calloc(1, sizeof *st->pool); /* owned by st, or by its last job (orphaned) */
    if (!st->pool) {
        kb_creds_free(st->creds);
        free(st);
        return K_ERR_NOMEM;
    }
    st->pool->loop = kb_broker_loop(b);
    unsigned cores = uv_available_parallelism();
    st->pool->max = cores > 2 ? (int)cores - 1 : 1;
    if (st->pool->max > 4) st->pool->max = 4; /* libuv's default pool size */
    *kb_broker_slot(b, &kb_sasl_subsys) = st;
    for (int i = 0; i < cfg->n_listeners; i++)
        if ((cfg->listeners[i].security_protocol == KB_SEC_SASL_PLAINTEXT ||
             cfg->listeners[i].security_protocol == KB_SEC_SASL_SSL) &&
            kb_creds_count(st->creds) == 0) {
            kb_log(KB_LOG_WARN, "SASL listener %s without any SCRAM credential: nobody can log "
                   "in (add one with depot --add-scram)", cfg->listeners[i].name);
            break;
        }
    return 0;
}

static void sasl_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_sasl_subsys);
    sasl_broker_t *st = slot ? *slot : NULL;
    if (!st) return;
    kb_creds_free(st->creds);
    if (st->pool->inflight || st->pool->head)
        st->pool->orphaned = true; /* the last job frees it */
    else
        free(st->pool);
    free(st);
    *slot = NULL;
}

const kb_subsys_t kb_sasl_subsys = {
    .name = "sasl",
    .init = sasl_init,
    .close = sasl_close,
};

/* ------------------------------------------------------------------------------------------ */

kb_sasl_conn_t *kb_sasl_conn(kb_conn_t *conn)
{
    kb_sasl_conn_t **slot = kb_conn_sasl_slot(conn);
    if (!*slot) *slot = calloc(1, sizeof **slot); /* owned by the connection */
    return *slot;
}

void kb_sasl_conn_free(kb_sasl_conn_t *sc)
{
    if (!sc) return;
    OPENSSL_cleanse(sc, sizeof *sc);
    free(sc);
}

int kb_sasl_state(const kb_sasl_conn_t *sc)
{
    return sc ? sc->state : KB_SASL_NEW;
}

bool kb_sasl_expects_raw(kb_conn_t *conn)
{
    kb_sasl_conn_t *sc = *kb_conn_sasl_slot(conn);
    return sc && sc->raw && sc->state == KB_SASL_HANDSHAKEN;
}

bool kb_sasl_gate(kb_req_t *req)
{
    if (!kb_conn_sasl_required(req->conn)) return true;
    int16_t key = req->hdr.api_key;
    kb_sasl_conn_t *sc = *kb_conn_sasl_slot(req->conn);
    int st = kb_sasl_state(sc);
    bool sasl_api = key == KP_API_SASL_HANDSHAKE || key == KP_API_SASL_AUTHENTICATE;
    if (st == KB_SASL_AUTHENTICATED && !sc->reauth) {
        if (sc->expiry && kb_mono_ms() > sc->expiry && key != KP_API_SASL_HANDSHAKE) {
            kb_log(KB_LOG_INFO, "%s (User:%s): session expired without re-authentication "
                   "(connections.max.reauth.ms): closing", kb_conn_peer(req->conn), sc->user);
            return false;
        }
        return true;
    }
    if (st == KB_SASL_AUTHENTICATED) return true; /* re-authenticating: the old session holds */
    if (key == KP_API_API_VERSIONS || (sasl_api && st != KB_SASL_FAILED)) return true;
    kb_log(KB_LOG_INFO, "%s sent api %d before authenticating on a SASL listener: closing",
           kb_conn_peer(req->conn), key);
    kb_audit_authentication(req, "none", "", false, "ILLEGAL_SASL_STATE");
    return false;
}

static int mech_bit(const char *m, size_t n)
{
    if (n == 5 && !memcmp(m, "PLAIN", 5)) return KB_MECH_PLAIN;
    int s = kb_scram_mech_from_name(m, n);
    return s == KB_SCRAM_SHA_256 ? KB_MECH_SCRAM_SHA_256
           : s == KB_SCRAM_SHA_512 ? KB_MECH_SCRAM_SHA_512
                                   : 0;
}

int16_t kb_sasl_handshake(kb_req_t *req, const char *mech, size_t len, bool raw)
{
    if (!kb_conn_sasl_required(req->conn)) return KP_ERR_ILLEGAL_SASL_STATE;
    kb_sasl_conn_t *sc = kb_sasl_conn(req->conn);
    if (!sc) return KP_ERR_ILLEGAL_SASL_STATE;
    bool reauth = sc->state == KB_SASL_AUTHENTICATED;
    if (sc->state == KB_SASL_HANDSHAKEN || sc->state == KB_SASL_FAILED || (reauth && raw))
        return KP_ERR_ILLEGAL_SASL_STATE;
    int bit = mech_bit(mech, len);
    if (!bit || !(kb_sasl_mechanisms(req->broker) & (unsigned)bit)) {
        kb_log(KB_LOG_INFO, "%s asked for SASL mechanism %.*s, not enabled",
               kb_conn_peer(req->conn), (int)(len > 64 ? 64 : len), mech);
        if (!reauth) sc->state = KB_SASL_FAILED;
        char m[65];
        snprintf(m, sizeof m, "%.*s", (int)(len > 64 ? 64 : len), mech);
        kb_audit_authentication(req, m, "", false, "UNSUPPORTED_SASL_MECHANISM");
        return KP_ERR_UNSUPPORTED_SASL_MECHANISM;
    }
    sc->mech = bit;
    sc->raw = raw;
    sc->reauth = reauth;
    if (!reauth) sc->state = KB_SASL_HANDSHAKEN;
    kb_scram_server_init(&sc->scram, bit == KB_MECH_SCRAM_SHA_256   ? KB_SCRAM_SHA_256
                                     : bit == KB_MECH_SCRAM_SHA_512 ? KB_SCRAM_SHA_512
                                                                    : KB_SCRAM_UNKNOWN);
    return KP_ERR_NONE;
}

static int lookup(void *ud, const char *user, int mech, kb_scram_cred_t *cred)
{
    return kb_creds_find(ud, user, mech, cred);
}

/* PLAIN is checked against the SCRAM credential (SHA-256 if the user has one, else 512). */
static int plain_check(kb_creds_t *creds, const uint8_t *in, size_t len, char *user,
                       size_t ucap)
{
    const char *pw;
    size_t pwl;
    if (kb_sasl_plain_parse(in, len, user, ucap, &pw, &pwl) < 0) return K_ERR_MALFORMED;
    kb_scram_cred_t cred;
    int rc = kb_creds_find(creds, user, KB_SCRAM_SHA_256, &cred);
    if (rc < 0) rc = kb_creds_find(creds, user, KB_SCRAM_SHA_512, &cred);
    if (rc == 0 && !kb_scram_cred_check(&cred, pw, pwl)) rc = K_ERR_INVAL;
    OPENSSL_cleanse(&cred, sizeof cred);
    return rc;
}

static int16_t token_failed(kb_req_t *req, kb_sasl_conn_t *sc, const char *user, char *why)
{
    const char *mech = sc->mech == KB_MECH_PLAIN ? "PLAIN" : kb_scram_mech_name(sc->scram.mech);
    kb_log(KB_LOG_INFO, "%s: SASL/%s authentication failed for user '%s': %s",
           kb_conn_peer(req->conn), mech, user && *user ? user : "?", why);
    kb_audit_authentication(req, mech, user, false, "SASL_AUTHENTICATION_FAILED");
    sc->state = KB_SASL_FAILED;
    sc->reauth = false;
    kb_scram_server_deinit(&sc->scram);
    kb_conn_close_when_flushed(req->conn);
    return KP_ERR_SASL_AUTHENTICATION_FAILED;
}

static int16_t succeeded(kb_req_t *req, kb_sasl_conn_t *sc, const char *user, bool *done,
                         int64_t *lifetime_ms, char *why, size_t whylen)
{
    if (sc->reauth && strcmp(user, sc->user)) {
        snprintf(why, whylen, "re-authentication must keep the principal User:%s", sc->user);
        return token_failed(req, sc, user, why);
    }
    if (kb_conn_set_principal(req->conn, "User", user) < 0) {
        snprintf(why, whylen, "user name too long");
        return token_failed(req, sc, user, why);
    }
    const char *mech = sc->mech == KB_MECH_PLAIN ? "PLAIN" : kb_scram_mech_name(sc->scram.mech);
    if (kb_audit_authentication(req, mech, user, true, NULL) < 0) { /* fail-closed */
        snprintf(why, whylen, "the audit trail cannot be written");
        kb_conn_set_principal(req->conn, "User", "ANONYMOUS");
        return token_failed(req, sc, user, why);
    }
    snprintf(sc->user, sizeof sc->user, "%s", user);
    sasl_broker_t *st = state_of(req->broker);
    int64_t life = st ? st->reauth_ms : 0;
    sc->state = KB_SASL_AUTHENTICATED;
    sc->reauth = false;
    sc->expiry = life > 0 ? kb_mono_ms() + life : 0;
    kb_scram_server_deinit(&sc->scram);
    *done = true;
    *lifetime_ms = life;
    kb_log(KB_LOG_INFO, "%s authenticated as User:%s", kb_conn_peer(req->conn), user);
    return KP_ERR_NONE;
}

/*
 * PLAIN off the loop. The token is parsed and the credential looked up on the loop (cheap);
 * the PBKDF2 behind kb_scram_cred_check runs on libuv's thread pool while the connection reads
 * nothing more (kb_conn_hold_reads). The job owns copies of everything it reads; the request
 * stays alive until kb_req_complete (also if its connection closes meanwhile: then the answer
 * is dropped and the connection's SASL state, already freed, is not touched).
 */
struct plain_job {
    uv_work_t work;
    plain_job_t *next; /* in the pool's queue */
    plain_pool_t *pool;
    kb_req_t *req;
    kb_sasl_plain_done_fn done;
    kb_scram_cred_t cred;
    char user[KB_SCRAM_MAX_USER + 1];
    char *pw; /* owned, cleansed before it is freed */
    size_t pwl;
    bool ok; /* written by the pool thread, read after it (uv orders the two) */
};

static void plain_work(uv_work_t *w)
{
    plain_job_t *j = w->data;
    j->ok = kb_scram_cred_check(&j->cred, j->pw, j->pwl);
}

static void plain_job_free(plain_job_t *j)
{
    if (j->pw) OPENSSL_cleanse(j->pw, j->pwl);
    free(j->pw);
    OPENSSL_cleanse(&j->cred, sizeof j->cred);
    free(j);
}

static void plain_pump(plain_pool_t *pool);

/* The job's outcome on the loop (status < 0: it never ran). */
static void plain_finish(plain_job_t *j, int status)
{
    kb_req_t *req = j->req;
    if (req->closed) { /* the client left: nobody to answer, no SASL state to update */
        plain_job_free(j);
        kb_req_complete(req);
        return;
    }
    kb_conn_hold_reads(req->conn, false);
    kb_sasl_conn_t *sc = kb_sasl_conn(req->conn);
    char why[256] = "";
    bool fin = false;
    int64_t life = 0;
    int16_t err;
    if (!sc) {
        snprintf(why, sizeof why, "out of memory");
        err = KP_ERR_SASL_AUTHENTICATION_FAILED;
    } else if (status < 0 || !j->ok) {
        snprintf(why, sizeof why, "Authentication failed: Invalid username or password");
        err = token_failed(req, sc, j->user, why);
    } else {
        err = succeeded(req, sc, j->user, &fin, &life, why, sizeof why);
    }
    kb_sasl_plain_done_fn done = j->done;
    plain_job_free(j);
    done(req, err, fin, life, why); /* answers and completes req */
}

static void plain_after(uv_work_t *w, int status)
{
    plain_job_t *j = w->data;
    plain_pool_t *pool = j->pool;
    pool->inflight--;
    plain_finish(j, status);
    plain_pump(pool);
}

/* Starts waiting jobs while there is room; the jobs of clients gone meanwhile are dropped
 * without running PBKDF2. May free an orphaned pool: callers do not touch it afterwards. */
static void plain_pump(plain_pool_t *pool)
{
    while (pool->inflight < pool->max && pool->head) {
        plain_job_t *j = pool->head;
        pool->head = j->next;
        if (!pool->head) pool->tail = NULL;
        j->next = NULL;
        if (j->req->closed) {
            plain_finish(j, 0);
            continue;
        }
        pool->inflight++;
        if (uv_queue_work(pool->loop, &j->work, plain_work, plain_after) < 0) {
            pool->inflight--;
            plain_finish(j, UV_EINVAL); /* answered as a failed login */
        }
    }
    if (pool->orphaned && !pool->inflight && !pool->head) free(pool);
}

int kb_sasl_plain_async(kb_req_t *req, const uint8_t *in, size_t len, kb_sasl_plain_done_fn done)
{
    kb_sasl_conn_t *sc = *kb_conn_sasl_slot(req->conn);
    sasl_broker_t *st = state_of(req->broker);
    if (!st || !sc || sc->mech != KB_MECH_PLAIN ||
        !(sc->state == KB_SASL_HANDSHAKEN || sc->reauth))
        return 0;
    plain_job_t *j = calloc(1, sizeof *j); /* owned by the job until plain_after */
    if (!j) return 0;
    const char *pw;
    size_t pwl;
    kb_creds_t *creds = kb_sasl_creds(req->broker);
    int rc = kb_sasl_plain_parse(in, len, j->user, sizeof j->user, &pw, &pwl);
    if (rc == 0) rc = kb_creds_find(creds, j->user, KB_SCRAM_SHA_256, &j->cred);
    if (rc < 0 && j->user[0]) rc = kb_creds_find(creds, j->user, KB_SCRAM_SHA_512, &j->cred);
    if (rc == 0 && !(j->pw = malloc(pwl ? pwl : 1))) rc = K_ERR_NOMEM;
    if (rc < 0) { /* malformed, unknown user: the synchronous path answers (no PBKDF2) */
        plain_job_free(j);
        return 0;
    }
    memcpy(j->pw, pw, pwl);
    j->pwl = pwl;
    j->req = req;
    j->done = done;
    j->work.data = j;
    j->pool = st->pool;
    kb_conn_hold_reads(req->conn, true);
    if (st->pool->tail)
        st->pool->tail->next = j;
    else
        st->pool->head = j;
    st->pool->tail = j;
    plain_pump(st->pool); /* never finishes j here: j is new, its client still there */
    return 1;
}

int16_t kb_sasl_token(kb_req_t *req, const uint8_t *in, size_t len, char *out, size_t cap,
                      size_t *out_len, bool *done, int64_t *lifetime_ms, char *why,
                      size_t whylen)
{
    *out_len = 0;
    *done = false;
    *lifetime_ms = 0;
    kb_sasl_conn_t *sc = *kb_conn_sasl_slot(req->conn);
    bool running = sc && (sc->state == KB_SASL_HANDSHAKEN || sc->reauth);
    if (!running) {
        snprintf(why, whylen, "SaslAuthenticate before a successful SaslHandshake");
        if (sc) sc->state = KB_SASL_FAILED;
        kb_conn_close_when_flushed(req->conn);
        return KP_ERR_ILLEGAL_SASL_STATE;
    }
    kb_creds_t *creds = kb_sasl_creds(req->broker);
    if (sc->mech == KB_MECH_PLAIN) {
        char user[KB_SCRAM_MAX_USER + 1] = "";
        int rc = plain_check(creds, in, len, user, sizeof user);
        if (rc < 0) {
            snprintf(why, whylen, "%s", rc == K_ERR_MALFORMED
                                            ? "malformed PLAIN token"
                                            : "Authentication failed: Invalid username or password");
            return token_failed(req, sc, user, why);
        }
        return succeeded(req, sc, user, done, lifetime_ms, why, whylen);
    }
    int rc = kb_scram_server_step(&sc->scram, lookup, creds, in, len, out, cap, out_len, why,
                                  whylen);
    if (rc < 0) return token_failed(req, sc, sc->scram.user, why);
    if (sc->scram.state != KB_SCRAM_S_DONE) return KP_ERR_NONE;
    char user[KB_SCRAM_MAX_USER + 1];
    memcpy(user, sc->scram.user, sizeof user);
    return succeeded(req, sc, user, done, lifetime_ms, why, whylen);
}

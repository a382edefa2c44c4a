/*
 * SaslHandshake (17) v0-1 and SaslAuthenticate (36) v0-2. The state machine is in
 * broker/auth/sasl.c; these handlers only move bytes between the wire and it.
 *
 * A raw token (req->raw_sasl, after SaslHandshake v0: kafka-python) has no Kafka header and
 * its answer is the bare server token. A failed raw exchange cannot carry an error, so the
 * connection is closed, as Kafka does.
 */
#include "broker/auth/sasl.h"
#include "broker/core/counters.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_sasl_authenticate.h"
#include "protocol/gen/kp_sasl_handshake.h"
#include "protocol/kp_errors.h"

int kb_handle_sasl_handshake(kb_req_t *req)
{
    kp_sasl_handshake_req_t m;
    kp_sasl_handshake_req_init(&m);
    if (kp_sasl_handshake_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) < 0 ||
        m.mechanism.len < 0)
        return K_ERR_MALFORMED;
    kp_sasl_handshake_resp_t resp;
    kp_sasl_handshake_resp_init(&resp);
    resp.error_code =
        kb_sasl_handshake(req, m.mechanism.ptr, (size_t)m.mechanism.len, req->hdr.api_version == 0);
    kb_req_error(req, resp.error_code); /* counted per API and code for /metrics */
    static kp_str_t names[3];
    names[0] = kp_str("SCRAM-SHA-256");
    names[1] = kp_str("SCRAM-SHA-512");
    names[2] = kp_str("PLAIN");
    static const unsigned bits[3] = {KB_MECH_SCRAM_SHA_256, KB_MECH_SCRAM_SHA_512, KB_MECH_PLAIN};
    kp_str_t *list = kp_arena_alloc(&req->arena, sizeof names);
    if (!list) return K_ERR_NOMEM;
    unsigned on = kb_sasl_mechanisms(req->broker);
    for (int i = 0; i < 3; i++)
        if (on & bits[i]) list[resp.mechanisms_count++] = names[i];
    resp.mechanisms = list;
    int rc = kp_sasl_handshake_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* The answer to a token: kb_sasl_token's (or the PLAIN job's) outcome, encoded. */
static int answer(kb_req_t *req, int16_t err, const char *out, size_t out_len, bool done,
                  int64_t life, const char *why)
{
    if (req->raw_sasl) {
        if (err) return K_ERR_CLOSED; /* no way to say why in the raw flow: close */
        kp_put_raw(&req->resp, out, out_len);
        return req->resp.err ? req->resp.err : KB_DONE;
    }
    kp_sasl_authenticate_resp_t resp;
    kp_sasl_authenticate_resp_init(&resp);
    resp.error_code = err;
    kb_req_error(req, err); /* failed authentications, counted for /metrics */
    if (err) {
        resp.error_message = kb_arena_printf(&req->arena, "%s", why);
        resp.auth_bytes = (kp_bytes_t){(const uint8_t *)"", 0};
    } else {
        resp.auth_bytes = (kp_bytes_t){(const uint8_t *)out, (int32_t)out_len};
        resp.session_lifetime_ms = done ? life : 0;
    }
    int rc = kp_sasl_authenticate_resp_encode(&req->resp, req->hdr.api_version, &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* The PLAIN check came back from the thread pool (sasl.c). */
static void plain_done(kb_req_t *req, int16_t err, bool fin, int64_t life, const char *why)
{
    int rc = answer(req, err, "", 0, fin, life, why);
    if (rc < 0) { /* raw flow failure, or no memory: close without an answer */
        kb_conn_close_when_flushed(req->conn);
        kb_req_complete_no_response(req);
        return;
    }
    kb_req_complete(req);
}

int kb_handle_sasl_authenticate(kb_req_t *req)
{
    kp_sasl_authenticate_req_t m;
    kp_sasl_authenticate_req_init(&m);
    const uint8_t *tok;
    size_t len;
    if (req->raw_sasl) {
        tok = req->body.p;
        len = kp_remaining(&req->body);
    } else {
        if (kp_sasl_authenticate_req_decode(&req->body, req->hdr.api_version, &req->arena, &m) <
                0 ||
            m.auth_bytes.len < 0)
            return K_ERR_MALFORMED;
        tok = m.auth_bytes.ptr;
        len = (size_t)m.auth_bytes.len;
    }
    char *out = kp_arena_alloc(&req->arena, 512);
    char why[256] = "";
    size_t out_len = 0;
    bool done = false;
    int64_t life = 0;
    if (!out) return K_ERR_NOMEM;
    /* PLAIN's PBKDF2 runs on the thread pool: the loop serves everyone else meanwhile */
    if (kb_sasl_plain_async(req, tok, len, plain_done)) return KB_PENDING;
    int16_t err = kb_sasl_token(req, tok, len, out, 512, &out_len, &done, &life, why, sizeof why);
    return answer(req, err, out, out_len, done, life, why);
}

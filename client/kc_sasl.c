/*
 * Client side of SASL for kc (depotctl): SaslHandshake v1 then SaslAuthenticate with PLAIN or
 * SCRAM-SHA-256/512 (RFC 5802 client: nonce, proof, and the server signature checked, so a
 * broker that does not know the password cannot pretend it does). OpenSSL does the hashing.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kc_int.h"
#include "protocol/gen/kp_sasl_authenticate.h"
#include "protocol/gen/kp_sasl_handshake.h"
#include "protocol/kp_errors.h"

static int b64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if ((n + 2) / 3 * 4 + 1 > cap) return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int unb64(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 || n / 4 * 3 > cap) return -1;
    int l = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (l < 0) return -1;
    while (n && in[n - 1] == '=')
        n--, l--; /* EVP_DecodeBlock counts padding as zero bytes */
    return l;
}

static int auth_step(kc_client_t *c, kc_conn_t *conn, const void *tok, size_t len, kc_rx_t *rx,
                     kp_bytes_t *answer)
{
    kp_sasl_authenticate_req_t q = {{(const uint8_t *)tok, (int32_t)len}};
    kp_sasl_authenticate_resp_t r;
    kp_sasl_authenticate_resp_init(&r);
    int rc = kc_conn_call(c, conn, KP_API_SASL_AUTHENTICATE, &q, &r, rx, 0);
    if (rc) return rc;
    if (r.error_code)
        return kc_kafka_fail(c, r.error_code, "SaslAuthenticate", r.error_message);
    *answer = r.auth_bytes;
    return 0;
}

/* Value of attribute a ("r", "s", "i", "v") in a SCRAM message, copied to out. */
static bool attr(const uint8_t *m, size_t n, char a, char *out, size_t cap)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if ((i == 0 || m[i - 1] == ',') && m[i] == (uint8_t)a && m[i + 1] == '=') {
            size_t s = i + 2, e = s;
            while (e < n && m[e] != ',')
                e++;
            if (e - s >= cap) return false;
            memcpy(out, m + s, e - s);
            out[e - s] = 0;
            return true;
        }
    }
    return false;
}

static int scram(kc_client_t *c, kc_conn_t *conn, kc_rx_t *rx, const EVP_MD *md)
{
    size_t dl = (size_t)EVP_MD_size(md);
    uint8_t rnd[18];
    char cnonce[32], first[600], final_np[600], auth[2000], proof64[128], final[800];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return kc_fail(c, K_ERR_IO, 0, "no randomness");
    b64(rnd, sizeof rnd, cnonce, sizeof cnonce);
    /* user names with ',' or '=' are escaped as RFC 5802 says */
    char user[300];
    size_t u = 0;
    for (const char *p = c->cfg.sasl_username; *p && u + 4 < sizeof user; p++) {
        if (*p == ',') memcpy(user + u, "=2C", 3), u += 3;
        else if (*p == '=') memcpy(user + u, "=3D", 3), u += 3;
        else user[u++] = *p;
    }
    user[u] = 0;
    snprintf(first, sizeof first, "n,,n=%s,r=%s", user, cnonce);
    kp_bytes_t sf;
    int rc = auth_step(c, conn, first, strlen(first), rx, &sf);
    if (rc) return rc;
    char snonce[200], salt64[200], iters[16];
    uint8_t salt[128];
    size_t sfl = sf.len > 0 ? (size_t)sf.len : 0;
    char server_first[600];
    if (sfl >= sizeof server_first || !attr(sf.ptr, sfl, 'r', snonce, sizeof snonce) ||
        !attr(sf.ptr, sfl, 's', salt64, sizeof salt64) ||
        !attr(sf.ptr, sfl, 'i', iters, sizeof iters) || strncmp(snonce, cnonce, strlen(cnonce)))
        return kc_fail(c, K_ERR_MALFORMED, 0, "bad SCRAM server-first message");
    memcpy(server_first, sf.ptr, sfl);
    server_first[sfl] = 0;
    int sl = unb64(salt64, strlen(salt64), salt, sizeof salt);
    int it = atoi(iters);
    if (sl <= 0 || it < 1 || it > 1000000)
        return kc_fail(c, K_ERR_MALFORMED, 0, "bad SCRAM salt or iterations");
    uint8_t salted[64], ck[64], sk[64], sig[64], srvk[64], ssig[64];
    unsigned int l;
    const char *pw = c->cfg.sasl_password;
    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sl, it, md, (int)dl, salted);
    HMAC(md, salted, (int)dl, (const uint8_t *)"Client Key", 10, ck, &l);
    EVP_Digest(ck, dl, sk, &l, md, NULL);
    snprintf(final_np, sizeof final_np, "c=biws,r=%s", snonce);
    snprintf(auth, sizeof auth, "%s,%s,%s", first + 3, server_first, final_np);
    HMAC(md, sk, (int)dl, (const uint8_t *)auth, strlen(auth), sig, &l);
    for (size_t i = 0; i < dl; i++)
        ck[i] ^= sig[i];
    b64(ck, dl, proof64, sizeof proof64);
    snprintf(final, sizeof final, "%s,p=%s", final_np, proof64);
    kp_bytes_t fin;
    rc = auth_step(c, conn, final, strlen(final), rx, &fin);
    HMAC(md, salted, (int)dl, (const uint8_t *)"Server Key", 10, srvk, &l);
    HMAC(md, srvk, (int)dl, (const uint8_t *)auth, strlen(auth), ssig, &l);
    OPENSSL_cleanse(salted, sizeof salted);
    if (rc) return rc;
    char v64[128], want[128];
    b64(ssig, dl, want, sizeof want);
    if (fin.len <= 0 || !attr(fin.ptr, (size_t)fin.len, 'v', v64, sizeof v64) || strcmp(v64, want))
        return kc_fail(c, K_ERR_INVAL, 0, "the broker's SCRAM signature does not match");
    return 0;
}

int kc_sasl_authenticate(kc_client_t *c, kc_conn_t *conn)
{
    const char *mech = c->cfg.sasl_mechanism;
    if (!mech) return 0;
    if (!c->cfg.sasl_username || !c->cfg.sasl_password)
        return kc_fail(c, K_ERR_INVAL, 0, "SASL needs a user name and a password");
    kc_rx_t rx;
    kc_rx_init(&rx);
    kp_sasl_handshake_req_t hq = {kp_str(mech)};
    kp_sasl_handshake_resp_t hr;
    kp_sasl_handshake_resp_init(&hr);
    int rc = kc_conn_call(c, conn, KP_API_SASL_HANDSHAKE, &hq, &hr, &rx, 0);
    if (!rc && hr.error_code)
        rc = kc_kafka_fail(c, hr.error_code, "SaslHandshake", (kp_str_t){NULL, -1});
    if (!rc) {
        if (!strcmp(mech, "PLAIN")) {
            char tok[600];
            int n = snprintf(tok, sizeof tok, "%c%s%c%s", 0, c->cfg.sasl_username, 0,
                             c->cfg.sasl_password);
            kp_bytes_t ans;
            rc = n > 0 && (size_t)n < sizeof tok ? auth_step(c, conn, tok, (size_t)n, &rx, &ans)
                                                 : kc_fail(c, K_ERR_INVAL, 0, "credentials too long");
            OPENSSL_cleanse(tok, sizeof tok);
        } else if (!strcmp(mech, "SCRAM-SHA-256")) {
            rc = scram(c, conn, &rx, EVP_sha256());
        } else if (!strcmp(mech, "SCRAM-SHA-512")) {
            rc = scram(c, conn, &rx, EVP_sha512());
        } else {
            rc = kc_fail(c, K_ERR_UNSUPPORTED, 0, "SASL mechanism %s is not supported", mech);
        }
    }
    kc_rx_deinit(&rx);
    return rc;
}

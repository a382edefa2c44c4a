/* SCRAM (RFC 5802/7677) server exchange, PLAIN parsing and the key derivations (see scram.h). */
#include "broker/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "protocol/k_status.h"

#define SERVER_NONCE_BYTES 24

int kb_scram_mech_from_name(const char *name, size_t len)
{
    if (len == 13 && !memcmp(name, "SCRAM-SHA-256", 13)) return KB_SCRAM_SHA_256;
    if (len == 13 && !memcmp(name, "SCRAM-SHA-512", 13)) return KB_SCRAM_SHA_512;
    return KB_SCRAM_UNKNOWN;
}

const char *kb_scram_mech_name(int mech)
{
    return mech == KB_SCRAM_SHA_256 ? "SCRAM-SHA-256"
           : mech == KB_SCRAM_SHA_512 ? "SCRAM-SHA-512"
                                      : "UNKNOWN";
}

size_t kb_scram_digest_len(int mech)
{
    return mech == KB_SCRAM_SHA_256 ? 32 : mech == KB_SCRAM_SHA_512 ? 64 : 0;
}

static const EVP_MD *md_of(int mech)
{
    return mech == KB_SCRAM_SHA_256 ? EVP_sha256() : mech == KB_SCRAM_SHA_512 ? EVP_sha512() : NULL;
}

static int hmac(int mech, const uint8_t *key, size_t klen, const void *msg, size_t mlen,
                uint8_t *out)
{
    unsigned int olen = 0;
    if (!HMAC(md_of(mech), key, (int)klen, msg, mlen, out, &olen)) return K_ERR_INVAL;
    return olen == kb_scram_digest_len(mech) ? 0 : K_ERR_INVAL;
}

static int digest(int mech, const uint8_t *in, size_t len, uint8_t *out)
{
    unsigned int olen = 0;
    if (!EVP_Digest(in, len, out, &olen, md_of(mech), NULL)) return K_ERR_INVAL;
    return 0;
}

int kb_scram_salted_password(int mech, const char *password, size_t pw_len, const uint8_t *salt,
                             size_t salt_len, int32_t iterations, uint8_t *out)
{
    size_t dl = kb_scram_digest_len(mech);
    if (!dl || iterations < 1 || pw_len > 65536 || salt_len > KB_SCRAM_MAX_SALT)
        return K_ERR_INVAL;
    if (!PKCS5_PBKDF2_HMAC(password, (int)pw_len, salt, (int)salt_len, iterations, md_of(mech),
                           (int)dl, out))
        return K_ERR_INVAL;
    return 0;
}

int kb_scram_cred_from_salted(int mech, const uint8_t *salt, size_t salt_len, int32_t iterations,
                              const uint8_t *salted, size_t salted_len, kb_scram_cred_t *cred)
{
    size_t dl = kb_scram_digest_len(mech);
    if (!dl || salted_len != dl || salt_len == 0 || salt_len > KB_SCRAM_MAX_SALT) return K_ERR_INVAL;
    uint8_t client_key[KB_SCRAM_MAX_DIGEST];
    memset(cred, 0, sizeof *cred);
    cred->mech = mech;
    cred->iterations = iterations;
    memcpy(cred->salt, salt, salt_len);
    cred->salt_len = salt_len;
    int rc = hmac(mech, salted, dl, "Client Key", 10, client_key);
    if (rc == 0) rc = digest(mech, client_key, dl, cred->stored_key);
    if (rc == 0) rc = hmac(mech, salted, dl, "Server Key", 10, cred->server_key);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return rc;
}

int kb_scram_cred_new(int mech, const char *password, int32_t iterations, kb_scram_cred_t *cred)
{
    uint8_t salt[32], salted[KB_SCRAM_MAX_DIGEST];
    if (RAND_bytes(salt, sizeof salt) != 1) return K_ERR_IO;
    int rc = kb_scram_salted_password(mech, password, strlen(password), salt, sizeof salt,
                                      iterations, salted);
    if (rc == 0)
        rc = kb_scram_cred_from_salted(mech, salt, sizeof salt, iterations, salted,
                                       kb_scram_digest_len(mech), cred);
    OPENSSL_cleanse(salted, sizeof salted);
    return rc;
}

bool kb_scram_cred_check(const kb_scram_cred_t *cred, const char *password, size_t pw_len)
{
    uint8_t salted[KB_SCRAM_MAX_DIGEST];
    kb_scram_cred_t mine;
    size_t dl = kb_scram_digest_len(cred->mech);
    bool ok = dl && kb_scram_salted_password(cred->mech, password, pw_len, cred->salt,
                                             cred->salt_len, cred->iterations, salted) == 0 &&
              kb_scram_cred_from_salted(cred->mech, cred->salt, cred->salt_len, cred->iterations,
                                        salted, dl, &mine) == 0 &&
              CRYPTO_memcmp(mine.stored_key, cred->stored_key, dl) == 0;
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(&mine, sizeof mine);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Base64                                                                                       */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int kb_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t need = (len + 2) / 3 * 4;
    if (need + 1 > cap) return K_ERR_TOOLARGE;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = 0;
    return (int)o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int kb_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4) return K_ERR_MALFORMED;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val(c)) < 0) {
                return K_ERR_MALFORMED; /* data after padding, or not base64 */
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap) return K_ERR_TOOLARGE;
        out[o++] = (uint8_t)(x >> 16);
        if (n > 1) out[o++] = (uint8_t)(x >> 8);
        if (n > 2) out[o++] = (uint8_t)x;
    }
    return (int)o;
}

/* ------------------------------------------------------------------------------------------ */
/* The exchange                                                                                 */

void kb_scram_server_init(kb_scram_server_t *s, int mech)
{
    memset(s, 0, sizeof *s);
    s->mech = mech;
    s->state = KB_SCRAM_S_FIRST;
}

void kb_scram_server_deinit(kb_scram_server_t *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}

/* saslname (RFC 5802 5.1): "=2C" is ',' and "=3D" is '='; any other '=' is an error. */
static int saslname_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '=') {
            if (i + 2 >= len) return K_ERR_MALFORMED;
            if (in[i + 1] == '2' && in[i + 2] == 'C')
                c = ',';
            else if (in[i + 1] == '3' && in[i + 2] == 'D')
                c = '=';
            else
                return K_ERR_MALFORMED;
            i += 2;
        } else if (c == ',' || c == 0) {
            return K_ERR_MALFORMED;
        }
        if (o + 1 >= cap) return K_ERR_TOOLARGE;
        out[o++] = c;
    }
    if (o == 0) return K_ERR_MALFORMED;
    out[o] = 0;
    return 0;
}

/* Next comma-separated attribute of msg[*pos, len): returns its length (0 at the end). */
static size_t next_attr(const char *msg, size_t len, size_t *pos, const char **attr)
{
    if (*pos > len) return 0;
    const char *start = msg + *pos;
    const char *comma = memchr(start, ',', len - *pos);
    size_t n = comma ? (size_t)(comma - start) : len - *pos;
    *attr = start;
    *pos += n + 1;
    return n;
}

static bool printable_nonce(const char *p, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',') return false;
    return true;
}

static int fail(kb_scram_server_t *s, char *why, size_t whylen, const char *reason, int rc)
{
    s->state = KB_SCRAM_S_FAILED;
    snprintf(why, whylen, "%s", reason);
    return rc;
}

static int client_first(kb_scram_server_t *s, kb_scram_lookup_fn lookup, void *ud,
                        const char *msg, size_t len, char *out, size_t cap, size_t *out_len,
                        char *why, size_t whylen)
{
    size_t pos = 0;
    const char *a;
    size_t n = next_attr(msg, len, &pos, &a);
    if (n != 1 || (a[0] != 'n' && a[0] != 'y'))
        return fail(s, why, whylen, "SCRAM: channel binding is not supported", K_ERR_MALFORMED);
    n = next_attr(msg, len, &pos, &a); /* authzid: empty or a=<name> (must equal the user) */
    char authzid[KB_SCRAM_MAX_USER + 1] = "";
    if (n > 0 && (n < 3 || a[0] != 'a' || a[1] != '=' ||
                  saslname_decode(a + 2, n - 2, authzid, sizeof authzid) < 0))
        return fail(s, why, whylen, "SCRAM: bad authorization id", K_ERR_MALFORMED);
    if (pos > len || pos >= sizeof s->gs2)
        return fail(s, why, whylen, "SCRAM: bad client-first message", K_ERR_MALFORMED);
    memcpy(s->gs2, msg, pos);
    s->gs2[pos] = 0;
    size_t bare_at = pos;
    n = next_attr(msg, len, &pos, &a);
    if (n < 3 || a[0] != 'n' || a[1] != '=' ||
        saslname_decode(a + 2, n - 2, s->user, sizeof s->user) < 0)
        return fail(s, why, whylen, "SCRAM: bad user name", K_ERR_MALFORMED);
    if (authzid[0] && strcmp(authzid, s->user))
        return fail(s, why, whylen, "SCRAM: authorization id differs from the user name",
                    K_ERR_INVAL);
    n = next_attr(msg, len, &pos, &a);
    if (n < 3 || a[0] != 'r' || a[1] != '=' || !printable_nonce(a + 2, n - 2) || n - 2 > 64)
        return fail(s, why, whylen, "SCRAM: bad client nonce", K_ERR_MALFORMED);
    size_t cn = n - 2;
    memcpy(s->nonce, a + 2, cn);
    /* Extensions (KIP-84): only tokenauth exists in Kafka; Depot has no delegation tokens. */
    while (pos <= len && (n = next_attr(msg, len, &pos, &a)) > 0)
        if (n >= 10 && !memcmp(a, "tokenauth=", 10) && !(n == 15 && !memcmp(a + 10, "false", 5)))
            return fail(s, why, whylen, "SCRAM: delegation tokens are not supported",
                        K_ERR_UNSUPPORTED);
    if (len - bare_at > KB_SCRAM_MAX_MSG)
        return fail(s, why, whylen, "SCRAM: message too long", K_ERR_TOOLARGE);
    memcpy(s->first_bare, msg + bare_at, len - bare_at);
    s->first_bare[len - bare_at] = 0;

    if (lookup(ud, s->user, s->mech, &s->cred) < 0)
        return fail(s, why, whylen,
                    "Authentication failed during authentication due to invalid credentials "
                    "with SASL mechanism SCRAM",
                    K_ERR_NOENT);
    if (s->fixed_server_nonce) {
        snprintf(s->nonce + cn, sizeof s->nonce - cn, "%s", s->fixed_server_nonce);
    } else {
        uint8_t rnd[SERVER_NONCE_BYTES];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return fail(s, why, whylen, "SCRAM: no randomness", K_ERR_IO);
        kb_b64_encode(rnd, sizeof rnd, s->nonce + cn, sizeof s->nonce - cn);
    }
    char salt64[KB_SCRAM_MAX_SALT * 2];
    kb_b64_encode(s->cred.salt, s->cred.salt_len, salt64, sizeof salt64);
    int w = snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt64,
                     (int)s->cred.iterations);
    if (w < 0 || (size_t)w >= sizeof s->server_first || (size_t)w > cap)
        return fail(s, why, whylen, "SCRAM: answer too long", K_ERR_TOOLARGE);
    memcpy(out, s->server_first, (size_t)w);
    *out_len = (size_t)w;
    s->state = KB_SCRAM_S_FINAL;
    return 0;
}

static int client_final(kb_scram_server_t *s, const char *msg, size_t len, char *out, size_t cap,
                        size_t *out_len, char *why, size_t whylen)
{
    static const char *const bad_proof =
        "Authentication failed during authentication due to invalid credentials with SASL "
        "mechanism SCRAM";
    size_t pos = 0, dl = kb_scram_digest_len(s->mech);
    const char *a;
    size_t n = next_attr(msg, len, &pos, &a);
    char cb[128];
    int cbl = kb_b64_encode((const uint8_t *)s->gs2, strlen(s->gs2), cb, sizeof cb);
    if (cbl < 0 || n != (size_t)cbl + 2 || memcmp(a, "c=", 2) || memcmp(a + 2, cb, (size_t)cbl))
        return fail(s, why, whylen, "SCRAM: channel binding does not match", K_ERR_MALFORMED);
    /* Kafka accepts a nonce that ends with the server's (endsWith): librdkafka sends its own
     * nonce again in front of the full one, and must keep working. */
    n = next_attr(msg, len, &pos, &a);
    size_t nl = strlen(s->nonce);
    if (n < nl + 2 || memcmp(a, "r=", 2) || memcmp(a + n - nl, s->nonce, nl) ||
        !printable_nonce(a + 2, n - 2))
        return fail(s, why, whylen, "SCRAM: nonce does not match", K_ERR_MALFORMED);
    /* The proof is the last attribute; extensions may sit before it. */
    size_t without_proof = 0;
    const char *proof = NULL;
    size_t proof_len = 0;
    while (pos <= len && (n = next_attr(msg, len, &pos, &a)) > 0) {
        if (n > 2 && !memcmp(a, "p=", 2)) {
            without_proof = (size_t)(a - msg) - 1;
            proof = a + 2;
            proof_len = n - 2;
            if (pos <= len) return fail(s, why, whylen, "SCRAM: data after the proof",
                                        K_ERR_MALFORMED);
        }
    }
    uint8_t client_proof[KB_SCRAM_MAX_DIGEST + 3];
    if (!proof || kb_b64_decode(proof, proof_len, client_proof, sizeof client_proof) != (int)dl)
        return fail(s, why, whylen, "SCRAM: bad proof", K_ERR_MALFORMED);

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char auth[KB_SCRAM_MAX_MSG * 2 + 400];
    int al = snprintf(auth, sizeof auth, "%s,%s,%.*s", s->first_bare, s->server_first,
                      (int)without_proof, msg);
    if (al < 0 || (size_t)al >= sizeof auth)
        return fail(s, why, whylen, "SCRAM: message too long", K_ERR_TOOLARGE);
    uint8_t sig[KB_SCRAM_MAX_DIGEST], key[KB_SCRAM_MAX_DIGEST], stored[KB_SCRAM_MAX_DIGEST];
    int rc = hmac(s->mech, s->cred.stored_key, dl, auth, (size_t)al, sig);
    for (size_t i = 0; i < dl; i++)
        key[i] = client_proof[i] ^ sig[i]; /* ClientKey = ClientProof XOR ClientSignature */
    if (rc == 0) rc = digest(s->mech, key, dl, stored);
    bool ok = rc == 0 && CRYPTO_memcmp(stored, s->cred.stored_key, dl) == 0;
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) return fail(s, why, whylen, bad_proof, K_ERR_INVAL);

    uint8_t server_sig[KB_SCRAM_MAX_DIGEST];
    if (hmac(s->mech, s->cred.server_key, dl, auth, (size_t)al, server_sig) < 0 || cap < 3)
        return fail(s, why, whylen, "SCRAM: internal error", K_ERR_INVAL);
    memcpy(out, "v=", 2);
    int vl = kb_b64_encode(server_sig, dl, out + 2, cap - 2);
    if (vl < 0) return fail(s, why, whylen, "SCRAM: answer too long", K_ERR_TOOLARGE);
    *out_len = 2 + (size_t)vl;
    s->state = KB_SCRAM_S_DONE;
    return 0;
}

int kb_scram_server_step(kb_scram_server_t *s, kb_scram_lookup_fn lookup, void *ud,
                         const uint8_t *in, size_t len, char *out, size_t cap, size_t *out_len,
                         char *why, size_t whylen)
{
    *out_len = 0;
    if (!kb_scram_digest_len(s->mech))
        return fail(s, why, whylen, "SCRAM: unknown mechanism", K_ERR_INVAL);
    if (!in || len == 0 || len > KB_SCRAM_MAX_MSG || memchr(in, 0, len))
        return fail(s, why, whylen, "SCRAM: bad message size", K_ERR_MALFORMED);
    const char *msg = (const char *)in;
    if (s->state == KB_SCRAM_S_FIRST)
        return client_first(s, lookup, ud, msg, len, out, cap, out_len, why, whylen);
    if (s->state == KB_SCRAM_S_FINAL)
        return client_final(s, msg, len, out, cap, out_len, why, whylen);
    return fail(s, why, whylen, "SCRAM: exchange already finished", K_ERR_INVAL);
}

int kb_sasl_plain_parse(const uint8_t *in, size_t len, char *user, size_t user_cap,
                        const char **pw, size_t *pw_len)
{
    if (!in || len < 3 || len > KB_SCRAM_MAX_MSG) return K_ERR_MALFORMED;
    const uint8_t *z1 = memchr(in, 0, len);
    if (!z1) return K_ERR_MALFORMED;
    const uint8_t *u = z1 + 1;
    const uint8_t *z2 = memchr(u, 0, (size_t)(in + len - u));
    if (!z2) return K_ERR_MALFORMED;
    size_t azl = (size_t)(z1 - in), ul = (size_t)(z2 - u);
    const uint8_t *p = z2 + 1;
    size_t pl = (size_t)(in + len - p);
    if (ul == 0 || pl == 0 || memchr(p, 0, pl)) return K_ERR_MALFORMED;
    if (ul >= user_cap) return K_ERR_TOOLARGE;
    if (azl && (azl != ul || memcmp(in, u, ul))) return K_ERR_INVAL;
    memcpy(user, u, ul);
    user[ul] = 0;
    *pw = (const char *)p;
    *pw_len = pl;
    return 0;
}

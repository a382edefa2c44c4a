/*
 * SASL mechanisms without I/O: SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as the server side of
 * the exchange, PLAIN (RFC 4616) parsing, and the key derivations both share.
 *
 * What is stored for a user (never the password): per mechanism the salt, the iteration
 * count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
 * HMAC(SaltedPassword, "Server Key"), with SaltedPassword = PBKDF2-HMAC-H(password, salt, i).
 * That is exactly what Kafka keeps, so AlterUserScramCredentials (which carries the salted
 * password, not the password) maps onto it.
 *
 * A server exchange (kb_scram_server_t) takes the client-first message, asks a lookup
 * callback for the user's credential, answers server-first, then checks the client-final
 * proof in constant time and answers server-final. Every message is bounds-checked; a
 * malformed or oversized message fails the exchange with a reason, never more.
 *
 * Thread: plain data; one exchange per connection, on the loop.
 */
#ifndef KB_SCRAM_H
#define KB_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kafka's ScramMechanism codes (DescribeUserScramCredentials / AlterUserScramCredentials). */
enum { KB_SCRAM_UNKNOWN = 0, KB_SCRAM_SHA_256 = 1, KB_SCRAM_SHA_512 = 2 };

#define KB_SCRAM_MIN_ITERATIONS 4096 /* Kafka's minimum */
#define KB_SCRAM_MAX_ITERATIONS 16384 /* Kafka's maximum */
#define KB_SCRAM_MAX_DIGEST 64
#define KB_SCRAM_MAX_SALT 64
#define KB_SCRAM_MAX_USER 255
#define KB_SCRAM_MAX_MSG 1024 /* a client message longer than this is refused */

typedef struct {
    int mech; /* KB_SCRAM_SHA_256 / KB_SCRAM_SHA_512 */
    int32_t iterations;
    uint8_t salt[KB_SCRAM_MAX_SALT];
    size_t salt_len;
    uint8_t stored_key[KB_SCRAM_MAX_DIGEST];
    uint8_t server_key[KB_SCRAM_MAX_DIGEST];
} kb_scram_cred_t;

/* "SCRAM-SHA-256" → KB_SCRAM_SHA_256; anything else KB_SCRAM_UNKNOWN. */
int kb_scram_mech_from_name(const char *name, size_t len);
const char *kb_scram_mech_name(int mech);
/* Digest length in bytes (32 or 64), 0 for an unknown mechanism. */
size_t kb_scram_digest_len(int mech);

/* SaltedPassword = PBKDF2(password, salt, iterations); out holds digest_len bytes. */
int kb_scram_salted_password(int mech, const char *password, size_t pw_len, const uint8_t *salt,
                             size_t salt_len, int32_t iterations, uint8_t *out);
/* Fills cred's stored_key and server_key from a salted password (mech, salt, iterations are
 * copied in too). */
int kb_scram_cred_from_salted(int mech, const uint8_t *salt, size_t salt_len, int32_t iterations,
                              const uint8_t *salted, size_t salted_len, kb_scram_cred_t *cred);
/* A new credential for password with a fresh random salt (32 bytes). */
int kb_scram_cred_new(int mech, const char *password, int32_t iterations, kb_scram_cred_t *cred);
/* Does password match cred? (PLAIN checks against the SCRAM credential this way.) Constant
 * time in the comparison. */
bool kb_scram_cred_check(const kb_scram_cred_t *cred, const char *password, size_t pw_len);

/* Base64 (standard alphabet, padded). Return the output length or a negative status. */
int kb_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
int kb_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Looks a user's credential up; returns 0 and fills *cred, or K_ERR_NOENT. */
typedef int (*kb_scram_lookup_fn)(void *ud, const char *user, int mech, kb_scram_cred_t *cred);

enum { KB_SCRAM_S_FIRST = 0, KB_SCRAM_S_FINAL, KB_SCRAM_S_DONE, KB_SCRAM_S_FAILED };

typedef struct {
    int mech;
    int state;
    char user[KB_SCRAM_MAX_USER + 1];
    kb_scram_cred_t cred;
    char gs2[64];            /* the client's GS2 header, echoed base64 in c= */
    char nonce[160];         /* client nonce + server nonce */
    char first_bare[KB_SCRAM_MAX_MSG + 1];
    char server_first[320];
    const char *fixed_server_nonce; /* tests only: instead of random bytes */
} kb_scram_server_t;

void kb_scram_server_init(kb_scram_server_t *s, int mech);
/* Wipes keys from memory. */
void kb_scram_server_deinit(kb_scram_server_t *s);

/*
 * Feeds one client message. On 0 *out (cap bytes) holds the server's answer of *out_len bytes:
 * server-first after the first call, server-final after the second (state becomes DONE and
 * s->user is the authenticated name). On failure returns a negative status with a reason for
 * the client in why (state FAILED); an unknown user and a wrong proof give the same reason.
 */
int kb_scram_server_step(kb_scram_server_t *s, kb_scram_lookup_fn lookup, void *ud,
                         const uint8_t *in, size_t len, char *out, size_t cap, size_t *out_len,
                         char *why, size_t whylen);

/*
 * PLAIN: "authzid NUL authcid NUL passwd". Copies the user name and points *pw at the password
 * inside in. The authzid must be empty or equal the user name (as in Kafka).
 */
int kb_sasl_plain_parse(const uint8_t *in, size_t len, char *user, size_t user_cap,
                        const char **pw, size_t *pw_len);

#endif

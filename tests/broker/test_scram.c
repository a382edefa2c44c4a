/* SCRAM (RFC 7677 test vector, failures, SHA-512 round trip), PLAIN parsing, and the
 * credential file (round trip, corruption, --add-scram syntax): broker/auth/scram.c, creds.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth/creds.h"
#include "broker/auth/scram.h"
#include "broker/kb.h"

/* RFC 7677 section 3 */
#define V_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define V_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define V_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define V_FIRST "n,,n=user,r=" V_CNONCE
#define V_SFIRST "r=" V_CNONCE V_SNONCE ",s=" V_SALT ",i=4096"
#define V_FINAL "c=biws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define V_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

typedef struct {
    const char *user;
    kb_scram_cred_t cred;
} one_user_t;

static int lookup_one(void *ud, const char *user, int mech, kb_scram_cred_t *cred)
{
    one_user_t *u = ud;
    if (strcmp(user, u->user) || mech != u->cred.mech) return K_ERR_NOENT;
    *cred = u->cred;
    return 0;
}

static void make_cred(int mech, const char *b64salt, const char *pw, int iter, kb_scram_cred_t *c)
{
    uint8_t salt[64], salted[64];
    int sl = kb_b64_decode(b64salt, strlen(b64salt), salt, sizeof salt);
    assert_true(sl > 0);
    assert_int_equal(kb_scram_salted_password(mech, pw, strlen(pw), salt, (size_t)sl, iter, salted),
                     0);
    assert_int_equal(kb_scram_cred_from_salted(mech, salt, (size_t)sl, iter, salted,
                                               kb_scram_digest_len(mech), c),
                     0);
}

static int step(kb_scram_server_t *s, one_user_t *u, const char *msg, char *out, size_t *ol)
{
    char why[256];
    int rc = kb_scram_server_step(s, lookup_one, u, (const uint8_t *)msg, strlen(msg), out, 512,
                                  ol, why, sizeof why);
    if (rc == 0) out[*ol] = 0;
    return rc;
}

static void test_rfc7677_vector(void **state)
{
    (void)state;
    one_user_t u = {"user", {0}};
    make_cred(KB_SCRAM_SHA_256, V_SALT, "pencil", 4096, &u.cred);
    kb_scram_server_t s;
    kb_scram_server_init(&s, KB_SCRAM_SHA_256);
    s.fixed_server_nonce = V_SNONCE;
    char out[520];
    size_t ol;
    assert_int_equal(step(&s, &u, V_FIRST, out, &ol), 0);
    assert_string_equal(out, V_SFIRST);
    assert_int_equal(step(&s, &u, V_FINAL, out, &ol), 0);
    assert_string_equal(out, V_SFINAL);
    assert_int_equal(s.state, KB_SCRAM_S_DONE);
    assert_string_equal(s.user, "user");
    /* PLAIN checks against the same credential */
    assert_true(kb_scram_cred_check(&u.cred, "pencil", 6));
    assert_false(kb_scram_cred_check(&u.cred, "pencil2", 7));
    kb_scram_server_deinit(&s);
}

static void test_failures(void **state)
{
    (void)state;
    one_user_t u = {"user", {0}};
    make_cred(KB_SCRAM_SHA_256, V_SALT, "pencil", 4096, &u.cred);
    char out[520];
    size_t ol;
    static const struct {
        const char *first, *final;
    } cases[] = {
        {"n,,n=nobody,r=abc", NULL},                  /* unknown user */
        {"p=tls-unique,,n=user,r=abc", NULL},         /* channel binding */
        {"n,,n=user", NULL},                          /* no nonce */
        {"n,,r=abc,n=user", NULL},                    /* order */
        {"n,a=other,n=user,r=abc", NULL},             /* authzid differs */
        {"n,,n=us=2Xer,r=abc", NULL},                 /* bad saslname escape */
        {"n,,n=user,r=abc,tokenauth=true", NULL},     /* delegation token */
        {"", NULL},
        {V_FIRST, "c=biws,r=" V_CNONCE "WRONG,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
        {V_FIRST, "c=eSws,r=" V_CNONCE V_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
        {V_FIRST, "c=biws,r=" V_CNONCE V_SNONCE ",p=AAAAZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
        {V_FIRST, "c=biws,r=" V_CNONCE V_SNONCE ",p=!!!"},
        {V_FIRST, "c=biws,r=" V_CNONCE V_SNONCE},
        {V_FIRST, V_FINAL ",x=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kb_scram_server_t s;
        kb_scram_server_init(&s, KB_SCRAM_SHA_256);
        s.fixed_server_nonce = V_SNONCE;
        int rc = step(&s, &u, cases[i].first, out, &ol);
        if (!cases[i].final) {
            assert_true(rc < 0);
        } else {
            assert_int_equal(rc, 0);
            assert_true(step(&s, &u, cases[i].final, out, &ol) < 0);
        }
        assert_int_equal(s.state, KB_SCRAM_S_FAILED);
        /* a failed exchange stays failed */
        assert_true(step(&s, &u, V_FINAL, out, &ol) < 0);
    }
}

/* A client side written here from RFC 5802, to run SHA-512 (no published vector) end to end. */
static void client_proof(int mech, const char *pw, const uint8_t *salt, size_t sl, int iter,
                         const char *auth, char *b64out)
{
    const EVP_MD *md = mech == KB_SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
    size_t dl = kb_scram_digest_len(mech);
    uint8_t salted[64], ck[64], sk[64], sig[64], proof[64];
    unsigned int l;
    assert_int_equal(kb_scram_salted_password(mech, pw, strlen(pw), salt, sl, iter, salted), 0);
    HMAC(md, salted, (int)dl, (const uint8_t *)"Client Key", 10, ck, &l);
    EVP_Digest(ck, dl, sk, &l, md, NULL);
    HMAC(md, sk, (int)dl, (const uint8_t *)auth, strlen(auth), sig, &l);
    for (size_t i = 0; i < dl; i++)
        proof[i] = ck[i] ^ sig[i];
    kb_b64_encode(proof, dl, b64out, 200);
}

static void test_sha512_round_trip(void **state)
{
    (void)state;
    one_user_t u = {"al,i=ce", {0}};
    assert_int_equal(kb_scram_cred_new(KB_SCRAM_SHA_512, "s3cret", 8192, &u.cred), 0);
    kb_scram_server_t s;
    kb_scram_server_init(&s, KB_SCRAM_SHA_512);
    char out[520], sfirst[520];
    size_t ol;
    assert_int_equal(step(&s, &u, "n,,n=al=2Ci=3Dce,r=clientnonce", out, &ol), 0);
    strcpy(sfirst, out);
    assert_memory_equal(out, "r=clientnonce", 13);
    char *comma = strchr(out, ',');
    *comma = 0;
    char final_np[600], auth[1600], proof[200], final[1000];
    snprintf(final_np, sizeof final_np, "c=biws,%s", out);
    snprintf(auth, sizeof auth, "n=al=2Ci=3Dce,r=clientnonce,%s,%s", sfirst, final_np);
    client_proof(KB_SCRAM_SHA_512, "s3cret", u.cred.salt, u.cred.salt_len, 8192, auth, proof);
    snprintf(final, sizeof final, "%s,p=%s", final_np, proof);
    assert_int_equal(step(&s, &u, final, out, &ol), 0);
    assert_memory_equal(out, "v=", 2);
    assert_string_equal(s.user, "al,i=ce");
}

static void test_plain_parse(void **state)
{
    (void)state;
    char user[64];
    const char *pw;
    size_t pl;
    assert_int_equal(kb_sasl_plain_parse((const uint8_t *)"\0bob\0pw", 7, user, sizeof user, &pw,
                                         &pl),
                     0);
    assert_string_equal(user, "bob");
    assert_int_equal(pl, 2);
    assert_int_equal(kb_sasl_plain_parse((const uint8_t *)"bob\0bob\0pw", 10, user, sizeof user,
                                         &pw, &pl),
                     0);
    assert_true(kb_sasl_plain_parse((const uint8_t *)"eve\0bob\0pw", 10, user, sizeof user, &pw,
                                    &pl) < 0);
    assert_true(kb_sasl_plain_parse((const uint8_t *)"\0bob\0", 5, user, sizeof user, &pw, &pl) <
                0);
    assert_true(kb_sasl_plain_parse((const uint8_t *)"\0\0pw", 4, user, sizeof user, &pw, &pl) <
                0);
    assert_true(kb_sasl_plain_parse((const uint8_t *)"bobpw", 5, user, sizeof user, &pw, &pl) < 0);
    assert_true(kb_sasl_plain_parse((const uint8_t *)"\0bob\0p\0w", 8, user, sizeof user, &pw,
                                    &pl) < 0);
}

/* ------------------------------------------------------------------------------------------ */

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kbscramXXXXXX");
    kb_log_set_level(KB_LOG_ERROR);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[16384];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_creds_round_trip_and_corruption(void **state)
{
    (void)state;
    char err[256], user[64], path[128];
    int mech;
    kb_creds_t *c;
    snprintf(path, sizeof path, "%s/%s", dir, KB_CREDS_FILE);
    assert_int_equal(kb_creds_open(dir, &c, err, sizeof err), 0); /* missing file: empty */
    assert_int_equal(kb_creds_count(c), 0);
    assert_int_equal(kb_creds_add_arg(c, "SCRAM-SHA-256=[name=admin,password=admin-secret]", user,
                                      sizeof user, &mech, err, sizeof err),
                     0);
    assert_string_equal(user, "admin");
    assert_int_equal(kb_creds_add_arg(c, "SCRAM-SHA-512=[name=\"o p\",password=\"a,b\","
                                         "iterations=8192]",
                                      user, sizeof user, &mech, err, sizeof err),
                     0);
    assert_int_equal(mech, KB_SCRAM_SHA_512);
    assert_true(kb_creds_add_arg(c, "SCRAM-SHA-256=[name=x,password=y,iterations=100]", user,
                                 sizeof user, &mech, err, sizeof err) < 0);
    assert_true(kb_creds_add_arg(c, "SCRAM-SHA-256=[name=x]", user, sizeof user, &mech, err,
                                 sizeof err) < 0);
    assert_true(kb_creds_add_arg(c, "MD5=[name=x,password=y]", user, sizeof user, &mech, err,
                                 sizeof err) < 0);
    assert_int_equal(kb_creds_save(c), 0);
    kb_creds_free(c);

    size_t len;
    char *text = slurp(path, &len);
    assert_null(strstr(text, "admin-secret")); /* never a password on disk */
    assert_non_null(strstr(text, "o%20p"));
    assert_int_equal(kb_creds_open(dir, &c, err, sizeof err), 0);
    assert_int_equal(kb_creds_count(c), 2);
    kb_scram_cred_t cred;
    assert_int_equal(kb_creds_find(c, "o p", KB_SCRAM_SHA_512, &cred), 0);
    assert_int_equal(cred.iterations, 8192);
    assert_true(kb_scram_cred_check(&cred, "a,b", 3));
    assert_int_equal(kb_creds_find(c, "o p", KB_SCRAM_SHA_256, &cred), K_ERR_NOENT);
    assert_int_equal(kb_creds_delete(c, "admin", KB_SCRAM_SHA_256), 0);
    assert_int_equal(kb_creds_delete(c, "admin", KB_SCRAM_SHA_256), K_ERR_NOENT);
    kb_creds_free(c);

    /* Every single-byte change inside a credential line is caught (CRC or format). */
    char orig[16384];
    memcpy(orig, text, len + 1);
    char *line = strchr(strstr(orig, "<user>"), '\n') + 1; /* first credential line */
    assert_non_null(line);
    size_t start = (size_t)(line - orig);
    size_t end = (size_t)(strchr(line, '\n') - orig);
    for (size_t i = start; i < end; i++) {
        char bad[16384];
        memcpy(bad, orig, len + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        spit(path, bad, len);
        int rc = kb_creds_open(dir, &c, err, sizeof err);
        assert_int_equal(rc, K_ERR_CORRUPT);
        assert_non_null(strstr(err, ":3:")); /* file:line */
    }
    /* A truncated file (power cut mid-write of a non-atomic copy) is refused too. */
    spit(path, orig, end - 5);
    assert_int_equal(kb_creds_open(dir, &c, err, sizeof err), K_ERR_CORRUPT);
    /* A duplicate line is corruption, not a silent override. */
    char dup[32768];
    snprintf(dup, sizeof dup, "%s%.*s\n", orig, (int)(end - start), orig + start);
    spit(path, dup, strlen(dup));
    assert_int_equal(kb_creds_open(dir, &c, err, sizeof err), K_ERR_CORRUPT);
    spit(path, orig, len);
    assert_int_equal(kb_creds_open(dir, &c, err, sizeof err), 0);
    kb_creds_free(c);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* the atomic write left no temp file */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_sha512_round_trip),
        cmocka_unit_test(test_plain_parse),
        cmocka_unit_test_setup_teardown(test_creds_round_trip_and_corruption, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

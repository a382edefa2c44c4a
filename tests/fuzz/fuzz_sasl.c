/*
 * libFuzzer target: the SASL parsers a client reaches before it is authenticated
 * (broker/auth/scram.c). The first byte picks the parser:
 *   0  PLAIN token
 *   1  SCRAM-SHA-256 exchange: the rest is client-first, '\n', client-final; the user "user"
 *      exists (RFC 7677's credential), so the fuzzer can reach the proof check
 *   2  SCRAM-SHA-512, same
 *   3  base64 decoding
 * Nothing may crash, read out of bounds or leak; an answer must fit the buffer it was given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/scram.h"

static int lookup(void *ud, const char *user, int mech, kb_scram_cred_t *cred)
{
    (void)ud;
    if (strcmp(user, "user")) return -6;
    static kb_scram_cred_t c[3];
    static int ready[3];
    if (!ready[mech]) {
        /* 4096 iterations per call would make the fuzzer crawl: 1 is fine for parsing. */
        static const uint8_t salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        uint8_t salted[64];
        kb_scram_salted_password(mech, "pencil", 6, salt, sizeof salt, 1, salted);
        kb_scram_cred_from_salted(mech, salt, sizeof salt, 1, salted, kb_scram_digest_len(mech),
                                  &c[mech]);
        ready[mech] = 1;
    }
    *cred = c[mech];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0] % 4;
    data++, size--;
    if (mode == 0) {
        char user[256];
        const char *pw;
        size_t pl;
        if (kb_sasl_plain_parse(data, size, user, sizeof user, &pw, &pl) == 0) {
            if (pw < (const char *)data || pw + pl > (const char *)data + size) abort();
            if (strlen(user) == 0) abort();
        }
    } else if (mode == 3) {
        uint8_t out[256];
        int n = kb_b64_decode((const char *)data, size, out, sizeof out);
        if (n > (int)sizeof out) abort();
    } else {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t first = nl ? (size_t)(nl - data) : size;
        kb_scram_server_t s;
        kb_scram_server_init(&s, mode == 1 ? KB_SCRAM_SHA_256 : KB_SCRAM_SHA_512);
        s.fixed_server_nonce = "SERVERNONCE";
        char out[512], why[256];
        size_t ol = 0;
        int rc = kb_scram_server_step(&s, lookup, NULL, data, first, out, sizeof out, &ol, why,
                                      sizeof why);
        if (ol > sizeof out) abort();
        if (rc == 0 && nl) {
            rc = kb_scram_server_step(&s, lookup, NULL, nl + 1, size - first - 1, out,
                                      sizeof out, &ol, why, sizeof why);
            if (ol > sizeof out) abort();
            if (rc == 0 && s.state != KB_SCRAM_S_DONE) abort();
        }
        kb_scram_server_deinit(&s);
    }
    return 0;
}

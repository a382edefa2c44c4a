/*
 * The uplink's transactional mode, pure parts (broker/uplink/up_txn.c): the position record
 * (key "<transactional.id>/<topic>/<partition>", value "<next> <topic id hex>") written and
 * read back, every malformed or foreign record refused without reading out of bounds, and the
 * resume decision of a transactional session (committed position vs. the checkpoint).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/uplink/up_int.h"

static kp_uuid_t uuid(uint8_t seed)
{
    kp_uuid_t id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(seed * 17 + i * 29);
    return id;
}

/* parse with lengths from strlen; the inputs are copied to exact-size heap buffers so a read
 * past either end shows under ASan/valgrind */
static int parse(const char *txn, const char *key, const char *val, char *topic, size_t tl,
                 int32_t *part, int64_t *next, kp_uuid_t *id)
{
    size_t kl = key ? strlen(key) : 0, vl = val ? strlen(val) : 0;
    char *k = key ? malloc(kl ? kl : 1) : NULL, *v = val ? malloc(vl ? vl : 1) : NULL;
    if (k) memcpy(k, key, kl);
    if (v) memcpy(v, val, vl);
    int r = up_txn_parse(txn, k, kl, v, vl, topic, tl, part, next, id);
    free(k);
    free(v);
    return r;
}

static void test_roundtrip(void **state)
{
    (void)state;
    char key[300], val[64], topic[256];
    kp_uuid_t id = uuid(3), got;
    int kn = up_txn_key(key, sizeof key, "depot-uplink-abc", "line1.temp", 7);
    int vn = up_txn_value(val, sizeof val, 123456789012LL, id);
    assert_int_equal(kn, (int)strlen("depot-uplink-abc/line1.temp/7"));
    assert_string_equal(key, "depot-uplink-abc/line1.temp/7");
    assert_int_equal(vn, 12 + 1 + 32);
    int32_t part = -1;
    int64_t next = -1;
    assert_int_equal(up_txn_parse("depot-uplink-abc", key, (size_t)kn, val, (size_t)vn, topic,
                                  sizeof topic, &part, &next, &got), 1);
    assert_string_equal(topic, "line1.temp");
    assert_int_equal(part, 7);
    assert_int_equal(next, 123456789012LL);
    assert_memory_equal(&got, &id, sizeof id);
    /* a transactional id with '/' in it still parses (the key is split from the right) */
    kn = up_txn_key(key, sizeof key, "plant/7", "t", 0);
    assert_int_equal(up_txn_parse("plant/7", key, (size_t)kn, val, (size_t)vn, topic,
                                  sizeof topic, &part, &next, &got), 1);
    assert_string_equal(topic, "t");
    assert_int_equal(part, 0);
    /* too small a buffer is refused, not truncated */
    assert_true(up_txn_key(key, 10, "depot-uplink-abc", "t", 0) < 0);
    assert_true(up_txn_value(val, 20, 1, id) < 0);
}

static void test_foreign_and_malformed(void **state)
{
    (void)state;
    char topic[16];
    int32_t part;
    int64_t next;
    kp_uuid_t id;
    const char *okv = "5 000102030405060708090a0b0c0d0e0f";
    /* other boxes' records: not ours, not errors */
    assert_int_equal(parse("box1", "box2/t/0", okv, topic, sizeof topic, &part, &next, &id), 0);
    assert_int_equal(parse("box1", "box10/t/0", okv, topic, sizeof topic, &part, &next, &id), 0);
    assert_int_equal(parse("box1", "box1", okv, topic, sizeof topic, &part, &next, &id), 0);
    assert_int_equal(parse("box1", "box1/", okv, topic, sizeof topic, &part, &next, &id), 0);
    assert_int_equal(parse("box1", NULL, okv, topic, sizeof topic, &part, &next, &id), 0);
    assert_int_equal(parse("box1", "box1/t/0", okv, topic, sizeof topic, &part, &next, &id), 1);
    /* ours, but broken keys */
    const char *bad_keys[] = {"box1/t/", "box1/t/x", "box1//0", "box1/t", "box1/a/b/0",
                              "box1/t/-1", "box1/t/2147483648", "box1/t/1234567890123456789",
                              "box1/a-topic-name-too-long-for-the-buffer/0", "box1/t/0 "};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
        assert_true(parse("box1", bad_keys[i], okv, topic, sizeof topic, &part, &next, &id) < 0);
    /* broken values: a tombstone, short, no space, bad digits, bad or upper-case hex, long */
    const char *bad_vals[] = {NULL, "", "5", "5 00", "5000102030405060708090a0b0c0d0e0f",
                              "x 000102030405060708090a0b0c0d0e0f",
                              "-5 000102030405060708090a0b0c0d0e0f",
                              " 000102030405060708090a0b0c0d0e0f",
                              "5 000102030405060708090a0b0c0d0e0g",
                              "5 000102030405060708090A0B0C0D0E0F",
                              "5 000102030405060708090a0b0c0d0e0f0",
                              "1234567890123456789 000102030405060708090a0b0c0d0e0f"};
    for (size_t i = 0; i < sizeof bad_vals / sizeof bad_vals[0]; i++)
        assert_true(parse("box1", "box1/t/0", bad_vals[i], topic, sizeof topic, &part, &next,
                          &id) < 0);
    /* a NUL inside the topic part is refused */
    const char nul_key[] = {'b', 'o', 'x', '1', '/', 't', 0, 'u', '/', '0'};
    assert_true(up_txn_parse("box1", nul_key, sizeof nul_key, okv, strlen(okv), topic,
                             sizeof topic, &part, &next, &id) < 0);
}

static void test_resume_decision(void **state)
{
    (void)state;
    /* nothing committed: the checkpoint (or the start of the log) */
    assert_int_equal(up_txn_resume(0, false, -1, true), 0);
    assert_int_equal(up_txn_resume(40, true, -1, true), 40);
    /* committed ahead of the checkpoint (the checkpoint is written after the commit) */
    assert_int_equal(up_txn_resume(40, true, 55, true), 55);
    assert_int_equal(up_txn_resume(0, false, 55, true), 55);
    /* checkpoint ahead (a read-back session forwarded more after the last commit) */
    assert_int_equal(up_txn_resume(70, true, 55, true), 70);
    /* a position of an earlier topic of that name does not count */
    assert_int_equal(up_txn_resume(3, true, 55, false), 3);
    assert_int_equal(up_txn_resume(0, false, 55, false), 0);
}

static void test_committed_lookup(void **state)
{
    (void)state;
    up_txn_job_t tj = {0};
    up_committed_t v[2] = {{.topic = "a", .partition = 0, .next = 9, .id = uuid(1)},
                           {.topic = "b", .partition = 1, .next = 4, .id = uuid(2)}};
    tj.v = v;
    tj.n = 2;
    bool other;
    assert_int_equal(up_txn_committed(&tj, "a", 0, uuid(1), &other), 9);
    assert_false(other);
    assert_int_equal(up_txn_committed(&tj, "a", 1, uuid(1), &other), -1);
    assert_false(other);
    assert_int_equal(up_txn_committed(&tj, "b", 1, uuid(3), &other), -1); /* recreated */
    assert_true(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_foreign_and_malformed),
        cmocka_unit_test(test_resume_decision),
        cmocka_unit_test(test_committed_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

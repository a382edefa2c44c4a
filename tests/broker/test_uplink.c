/*
 * The uplink's pure pieces: Kafka's murmur2 key hash (the Java producer's default partitioner,
 * against the vectors of Kafka's own UtilsTest and librdkafka's murmur2 partitioner), the resume
 * rule after a read-back (holes, skip list), and scan_from, which must never pass a record of
 * ours that the local partitions' acked does not cover (a hashed topic spreads one local
 * partition over several central partitions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/uplink/up_int.h"

static void test_murmur2_kafka_vectors(void **state)
{
    (void)state;
    /* Kafka's clients UtilsTest.testMurmur2 */
    assert_int_equal(up_murmur2("21", 2), -973932308);
    assert_int_equal(up_murmur2("foobar", 6), -790332482);
    assert_int_equal(up_murmur2("a-little-bit-long-string", 24), -985981536);
    assert_int_equal(up_murmur2("a-little-bit-longer-string", 26), -1486304829);
    const char *l = "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8";
    assert_int_equal(up_murmur2(l, strlen(l)), -58897971);
    assert_int_equal(up_murmur2("abc", 3), 479470107);
}

static void test_key_partition_matches_librdkafka(void **state)
{
    (void)state;
    char key[40];
    srand(7);
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand() % (int)sizeof key);
        for (size_t k = 0; k < n; k++)
            key[k] = (char)rand();
        int32_t parts = 1 + rand() % 13;
        int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, key, n, parts, NULL, NULL);
        assert_int_equal(up_key_partition(key, n, parts), want);
    }
}

/* A topic with nparts local and ncentral central partitions, resolved at high watermarks hw. */
static up_topic_t *topic(int32_t nparts, int32_t ncentral, const int64_t *hw)
{
    up_topic_t *t = calloc(1, sizeof *t);
    t->name = "t";
    t->nparts = nparts;
    t->parts = calloc((size_t)nparts, sizeof *t->parts);
    for (int32_t i = 0; i < nparts; i++) {
        t->parts[i].t = t;
        t->parts[i].partition = i;
    }
    t->scan_from = calloc((size_t)ncentral, sizeof *t->scan_from);
    assert_int_equal(up_central_reset(t, hw, ncentral), 0);
    t->ncentral = ncentral;
    t->hashed = ncentral < nparts;
    return t;
}

static void topic_free(up_topic_t *t)
{
    up_central_free(t);
    for (int32_t i = 0; i < t->nparts; i++)
        free(t->parts[i].skip.v);
    free(t->parts);
    free(t->scan_from);
    free(t);
}

/* Local partition 0 spreads over central 0 and 1: its offset 11 is acknowledged on central 1
 * while 10 is still in flight to central 0. scan_from[1] must stay at 11's central offset
 * until acked passes 11, although local partition 1's later records there are covered. */
static void test_scan_from_waits_for_cover(void **state)
{
    (void)state;
    int64_t hw[2] = {100, 200};
    up_topic_t *t = topic(2, 2, hw);
    t->parts[0].acked = 10;
    t->parts[1].acked = 51;
    up_scan_update(t);
    assert_int_equal(t->scan_from[0], 100);
    assert_int_equal(t->scan_from[1], 200);
    assert_int_equal(up_central_note(t, 1, 200, 0, 11), 0); /* 0/11 at central 1:200 */
    assert_int_equal(up_central_note(t, 1, 201, 1, 50), 0); /* 1/50, covered */
    up_scan_update(t);
    assert_int_equal(t->scan_from[1], 200);
    t->parts[0].acked = 11; /* 10 acknowledged on central 0 ... */
    assert_int_equal(up_central_note(t, 0, 100, 0, 10), 0);
    up_scan_update(t);
    assert_int_equal(t->scan_from[0], 101);
    assert_int_equal(t->scan_from[1], 200); /* ... but 11 is still not below acked */
    t->parts[0].acked = 12;
    up_scan_update(t);
    assert_int_equal(t->scan_from[1], 202);
    topic_free(t);
}

/* After a crash the read-back finds 0/{5,7} on central 0 and 0/{9} on central 1, acked 5:
 * resume at 6 with 7 and 9 skipped; the found records beyond acked hold scan_from back. */
static void test_resume_hole_and_scan_hold(void **state)
{
    (void)state;
    int64_t hw[2] = {40, 60};
    up_topic_t *t = topic(3, 2, hw);
    up_part_t *p = &t->parts[0];
    p->acked = p->next_send = 5;
    up_offsets_t found = {0};
    for (int64_t o = 9; o >= 5; o -= 2) /* unordered on purpose: 9, 7, 5 */
        assert_int_equal(up_offsets_add(&found, o), 0);
    up_resume(t, p, &found);
    assert_int_equal(p->acked, 6);
    assert_int_equal(p->next_send, 6);
    assert_int_equal(p->skip.n, 2);
    assert_true(!up_skip(p, 6));
    assert_true(up_skip(p, 7));
    assert_true(!up_skip(p, 8));
    free(found.v);
    /* as apply_topic notes them: 5 at 0:37, 7 at 0:38, 9 at 1:59 */
    up_central_note(t, 0, 37, 0, 5);
    up_central_note(t, 0, 38, 0, 7);
    up_central_note(t, 1, 59, 0, 9);
    up_scan_update(t);
    assert_int_equal(t->scan_from[0], 38);
    assert_int_equal(t->scan_from[1], 59);
    p->acked = 10; /* 6 and 8 sent and acknowledged; 7 and 9 were skipped */
    up_scan_update(t);
    assert_int_equal(t->scan_from[0], 40);
    assert_int_equal(t->scan_from[1], 60);
    topic_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_kafka_vectors),
        cmocka_unit_test(test_key_partition_matches_librdkafka),
        cmocka_unit_test(test_scan_from_waits_for_cover),
        cmocka_unit_test(test_resume_hole_and_scan_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

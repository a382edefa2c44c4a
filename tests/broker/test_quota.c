/*
 * broker/quota/: Kafka's sampled rate and throttle time (rate.c), the precedence of quota
 * entities and the quota file's text form (quota_store.c). Pure functions on given times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "broker/quota/quota.h"
#include "broker/quota/rate.h"

static const kb_rate_cfg_t kafka = {11, 1000}; /* quota.window.num, quota.window.size */

static void test_rate_first_bytes_spread_over_the_span(void **state)
{
    (void)state;
    kb_rate_t r;
    kb_rate_init(&r);
    kb_rate_record(&r, &kafka, 1000, 5000);
    /* one sample, 0 ms old: measured over num - 1 = 10 full windows (Kafka's burst) */
    assert_int_equal(kb_rate_window_ms(&r, &kafka, 5000), 10000);
    assert_true(fabs(kb_rate_measure(&r, &kafka, 5000) - 100.0) < 1e-9);
    /* half a window later the span is 10.5 s */
    assert_int_equal(kb_rate_window_ms(&r, &kafka, 5500), 10500);
}

static void test_rate_throttle_time_is_kafkas(void **state)
{
    (void)state;
    kb_rate_t r;
    kb_rate_init(&r);
    kb_rate_record(&r, &kafka, 2000, 0);
    /* 200/s against a bound of 100/s over a 10 s span: (200 - 100) / 100 * 10000 ms */
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 100, 0), 10000);
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 200, 0), 0); /* at the bound: none */
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 1000, 0), 0);
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 0, 0), 0); /* no bound: never */
    /* un-recording (a throttled fetch answered empty) takes it back */
    kb_rate_record(&r, &kafka, -2000, 1);
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 100, 1), 0);
}

static void test_rate_windows_slide(void **state)
{
    (void)state;
    kb_rate_t r;
    kb_rate_init(&r);
    for (int s = 0; s <= 20; s++)
        kb_rate_record(&r, &kafka, 100, (int64_t)s * 1000);
    /* 11 slots: windows starting at 10..20 s are live (the one of 9 s was reused), 10 s apart */
    assert_int_equal(r.n, 11);
    assert_int_equal(kb_rate_window_ms(&r, &kafka, 20000), 10000);
    assert_true(fabs(kb_rate_measure(&r, &kafka, 20000) - 110.0) < 1e-9);
    /* a record within the current window adds to it, no new sample */
    kb_rate_record(&r, &kafka, 50, 20999);
    assert_int_equal(r.n, 11);
    assert_true(fabs(kb_rate_measure(&r, &kafka, 20999) - 1150.0 / 10.999) < 1e-6);
}

static void test_rate_old_samples_expire(void **state)
{
    (void)state;
    kb_rate_t r;
    kb_rate_init(&r);
    kb_rate_record(&r, &kafka, 5000, 0);
    assert_true(kb_rate_measure(&r, &kafka, 10999) > 0);
    /* num * size after it began, a sample counts no more (Kafka's purgeObsoleteSamples) */
    assert_true(kb_rate_measure(&r, &kafka, 11000) == 0);
    assert_int_equal(kb_rate_throttle_ms(&r, &kafka, 1, 11000), 0);
}

static void test_rate_throughput_converges_to_bound(void **state)
{
    (void)state;
    /* A client that always has more to send, 10 kB per request, muted for the throttle time
     * after each one: over each whole 11 s span it gets the bound (the first span too, with
     * its burst at once). */
    kb_rate_t r;
    kb_rate_init(&r);
    const double bound = 100000;
    int64_t now = 0, span_bytes[4] = {0};
    while (now < 44000) {
        kb_rate_record(&r, &kafka, 10000, now);
        span_bytes[now / 11000] += 10000;
        int64_t t = kb_rate_throttle_ms(&r, &kafka, bound, now);
        now += t > 0 ? t : 1;
    }
    for (int i = 0; i < 4; i++)
        assert_true(span_bytes[i] >= 0.9 * bound * 11 && span_bytes[i] <= 1.1 * bound * 11);
}

/* ------------------------------------------------------------------------------------------ */

static kb_quota_entity_t ent(int8_t uk, const char *u, int8_t ck, const char *c)
{
    kb_quota_entity_t e;
    memset(&e, 0, sizeof e);
    e.user_kind = uk;
    e.client_kind = ck;
    if (u) strcpy(e.user, u);
    if (c) strcpy(e.client, c);
    return e;
}

static void test_precedence_most_specific_wins(void **state)
{
    (void)state;
    kb_qstore_t s;
    kb_qstore_init(&s);
    const int8_t N = KB_QE_NAME, D = KB_QE_DEFAULT, X = KB_QE_NONE;
    /* level -> entity, in Kafka's order */
    kb_quota_entity_t lv[9] = {
        {0},
        ent(N, "alice", N, "app"), ent(N, "alice", D, NULL), ent(N, "alice", X, NULL),
        ent(D, NULL, N, "app"),    ent(D, NULL, D, NULL),    ent(D, NULL, X, NULL),
        ent(X, NULL, N, "app"),    ent(X, NULL, D, NULL),
    };
    for (int l = 8; l >= 1; l--) /* inserted least specific first: order must not matter */
        assert_int_equal(kb_qstore_set(&s, &lv[l], KB_QK_PRODUCER_BYTE_RATE, l * 1000.0), 0);
    int level;
    bool su, sc;
    for (int l = 1; l <= 8; l++) {
        double v = kb_qstore_resolve(&s, KB_QK_PRODUCER_BYTE_RATE, "alice", "app", &level, &su,
                                     &sc);
        assert_int_equal(level, l);
        assert_true(v == l * 1000.0);
        /* user-only quotas are shared by the user's client-ids, client-only ones by users */
        assert_int_equal(su, l <= 6);
        assert_int_equal(sc, l != 3 && l != 6);
        assert_int_equal(kb_qstore_set(&s, &lv[l], KB_QK_PRODUCER_BYTE_RATE, NAN), 0);
    }
    assert_int_equal(s.n, 0);
    double v = kb_qstore_resolve(&s, KB_QK_PRODUCER_BYTE_RATE, "alice", "app", &level, &su, &sc);
    assert_int_equal(level, 0);
    assert_true(isnan(v));
    kb_qstore_deinit(&s);
}

static void test_precedence_other_names_and_keys(void **state)
{
    (void)state;
    kb_qstore_t s;
    kb_qstore_init(&s);
    kb_quota_entity_t a = ent(KB_QE_NAME, "alice", KB_QE_NONE, NULL);
    kb_quota_entity_t d = ent(KB_QE_NONE, NULL, KB_QE_DEFAULT, NULL);
    kb_qstore_set(&s, &a, KB_QK_PRODUCER_BYTE_RATE, 10);
    kb_qstore_set(&s, &d, KB_QK_PRODUCER_BYTE_RATE, 20);
    kb_qstore_set(&s, &d, KB_QK_CONSUMER_BYTE_RATE, 30);
    int level;
    bool su, sc;
    /* bob has no user quota: the default client-id one applies */
    assert_true(kb_qstore_resolve(&s, KB_QK_PRODUCER_BYTE_RATE, "bob", "x", &level, &su, &sc) ==
                20);
    assert_int_equal(level, 8);
    /* alice's user quota sets only the produce rate: fetch falls through to level 8 */
    assert_true(kb_qstore_resolve(&s, KB_QK_CONSUMER_BYTE_RATE, "alice", "x", &level, &su,
                                  &sc) == 30);
    assert_int_equal(level, 8);
    uint64_t gen = s.gen;
    kb_qstore_set(&s, &a, KB_QK_PRODUCER_BYTE_RATE, 11);
    assert_true(s.gen != gen); /* cached resolutions notice */
    assert_int_equal(kb_qstore_find(&s, &a), 0);
    kb_qstore_deinit(&s);
}

static void test_quota_file_round_trip_and_corruption(void **state)
{
    (void)state;
    kb_qstore_t s, back;
    kb_qstore_init(&s);
    kb_qstore_init(&back);
    kb_quota_entity_t odd = ent(KB_QE_NAME, "CN=line 2,O=\"plant\" %", KB_QE_NAME, "app-1");
    kb_quota_entity_t def = ent(KB_QE_DEFAULT, NULL, KB_QE_NONE, NULL);
    kb_qstore_set(&s, &odd, KB_QK_PRODUCER_BYTE_RATE, 1048576);
    kb_qstore_set(&s, &odd, KB_QK_REQUEST_PERCENTAGE, 12.5);
    kb_qstore_set(&s, &def, KB_QK_CONTROLLER_MUTATION_RATE, 0.1);
    char *text;
    size_t len;
    assert_int_equal(kb_qstore_format(&s, &text, &len), 0);
    char *copy = strdup(text);
    char err[256];
    assert_int_equal(kb_qstore_parse(&back, copy, err, sizeof err), 0);
    assert_int_equal(back.n, 2);
    int i = kb_qstore_find(&back, &odd);
    assert_true(i >= 0);
    assert_true(back.items[i].v[KB_QK_PRODUCER_BYTE_RATE] == 1048576);
    assert_true(back.items[i].v[KB_QK_REQUEST_PERCENTAGE] == 12.5);
    assert_true(isnan(back.items[i].v[KB_QK_CONSUMER_BYTE_RATE]));
    i = kb_qstore_find(&back, &def);
    assert_true(i >= 0 && back.items[i].v[KB_QK_CONTROLLER_MUTATION_RATE] == 0.1);
    free(copy);
    /* one flipped byte in a line: the load fails and names the line */
    char *p = strstr(text, "producer_byte_rate=");
    assert_non_null(p);
    p[strlen("producer_byte_rate=")] = '9';
    kb_qstore_t bad;
    kb_qstore_init(&bad);
    assert_int_equal(kb_qstore_parse(&bad, text, err, sizeof err), K_ERR_CORRUPT);
    assert_non_null(strstr(err, "line"));
    kb_qstore_deinit(&bad);
    free(text);
    kb_qstore_deinit(&back);
    kb_qstore_deinit(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_first_bytes_spread_over_the_span),
        cmocka_unit_test(test_rate_throttle_time_is_kafkas),
        cmocka_unit_test(test_rate_windows_slide),
        cmocka_unit_test(test_rate_old_samples_expire),
        cmocka_unit_test(test_rate_throughput_converges_to_bound),
        cmocka_unit_test(test_precedence_most_specific_wins),
        cmocka_unit_test(test_precedence_other_names_and_keys),
        cmocka_unit_test(test_quota_file_round_trip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

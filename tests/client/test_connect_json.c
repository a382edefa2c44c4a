/*
 * JsonConverter envelopes (client/connect_json.c): what Kafka Connect writes with
 * schemas.enable=true, byte for byte, and the payload read back from envelopes either side
 * wrote (escapes, \u sequences with surrogate pairs, key order, whitespace); non-envelopes are
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "client/connect_int.h"

static void test_envelope_bytes(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    const char line[] = "press 4: \"hot\" \\ 80\xc2\xb0" "C\ttab\x01";
    kc_json_envelope_string(&b, (const uint8_t *)line, sizeof line - 1);
    const char want[] = "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":"
                        "\"press 4: \\\"hot\\\" \\\\ 80\xc2\xb0" "C\\ttab\\u0001\"}";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kc_json_envelope_payload(b.data, b.len, &out), 0);
    assert_int_equal(out.len, sizeof line - 1);
    assert_memory_equal(out.data, line, sizeof line - 1);
    kp_buf_deinit(&out);
    kp_buf_deinit(&b);
}

static void expect_payload(const char *json, const char *want)
{
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kc_json_envelope_payload((const uint8_t *)json, strlen(json), &out), 0);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, strlen(want));
    kp_buf_deinit(&out);
}

static void expect_refused(const char *json)
{
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kc_json_envelope_payload((const uint8_t *)json, strlen(json), &out),
                     K_ERR_MALFORMED);
    kp_buf_deinit(&out);
}

static void test_payload_read_back(void **state)
{
    (void)state;
    expect_payload(" { \"payload\" : \"a\\u00e9\\ud83c\\udf21\\/\" , \"schema\" : "
                   "{\"type\":\"string\",\"optional\":true,\"x\":[1,2,{\"y\":null}]} }",
                   "a\xc3\xa9\xf0\x9f\x8c\xa1/");
    expect_payload("{\"schema\":{\"type\":\"int32\"},\"payload\":42}", "42");
    expect_payload("{\"schema\":null,\"payload\":null}", "null");
    expect_refused("plain text line");
    expect_refused("\"just a string\"");
    expect_refused("{\"payload\":\"x\"}");
    expect_refused("{\"schema\":{},\"payload\":\"unterminated}");
    expect_refused("{\"schema\":{},\"payload\":\"x\"");
    expect_refused("{}");
    expect_refused("{\"schema\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                   "[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
                   "\"payload\":\"x\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_bytes),
        cmocka_unit_test(test_payload_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

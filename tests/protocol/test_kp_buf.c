/* Primitive codec tests: round trips and bounds checks of kp_buf.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "protocol/kp_buf.h"

static void test_buf_roundtrip_fixed(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_put_i8(&b, -5);
    kp_put_i16(&b, -300);
    kp_put_i32(&b, 0x12345678);
    kp_put_i64(&b, -1234567890123LL);
    kp_put_f64(&b, 3.5);
    kp_put_cstr(&b, "hello", false);
    kp_put_cstr(&b, NULL, true);
    kp_put_cstr(&b, "x", true);
    assert_int_equal(b.err, 0);

    kp_reader_t r;
    kp_reader_init(&r, b.data, b.len);
    assert_int_equal(kp_read_i8(&r), -5);
    assert_int_equal(kp_read_i16(&r), -300);
    assert_int_equal(kp_read_i32(&r), 0x12345678);
    assert_true(kp_read_i64(&r) == -1234567890123LL);
    assert_true(kp_read_f64(&r) == 3.5);
    kp_str_t s = kp_read_string(&r, false);
    assert_true(kp_str_eq(s, "hello"));
    s = kp_read_string(&r, true);
    assert_int_equal(s.len, -1);
    s = kp_read_string(&r, true);
    assert_true(kp_str_eq(s, "x"));
    assert_int_equal(r.err, 0);
    assert_int_equal(kp_remaining(&r), 0);
    kp_buf_deinit(&b);
}

static void test_buf_varint_edges(void **state)
{
    (void)state;
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    kp_buf_t b;
    kp_buf_init(&b);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        kp_put_varlong(&b, vals[i]);
    kp_reader_t r;
    kp_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        assert_true(kp_read_varlong(&r) == vals[i]);
    assert_int_equal(r.err, 0);
    kp_buf_deinit(&b);
}

static void test_buf_truncation_is_error(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b);
    kp_put_cstr(&b, "abcdef", false);
    for (size_t n = 0; n < b.len; n++) {
        kp_reader_t r;
        kp_reader_init(&r, b.data, n);
        kp_str_t s = kp_read_string(&r, false);
        assert_int_equal(r.err, K_ERR_MALFORMED);
        assert_int_equal(s.len, -1);
    }
    kp_buf_deinit(&b);
}

static void test_buf_lying_array_count(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x7f, 0xff, 0xff, 0xff, 0, 0};
    kp_reader_t r;
    kp_reader_init(&r, bytes, sizeof bytes);
    assert_int_equal(kp_read_array_len(&r, false, 4), -1);
    assert_int_equal(r.err, K_ERR_MALFORMED);
}

static void test_buf_overlong_varint(void **state)
{
    (void)state;
    const uint8_t bytes[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kp_reader_t r;
    kp_reader_init(&r, bytes, sizeof bytes);
    (void)kp_read_uvarlong(&r);
    assert_int_equal(r.err, K_ERR_MALFORMED);
}

static void test_buf_arena_refuses_wrapping_sizes(void **state)
{
    (void)state;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    assert_null(kp_arena_alloc(&a, SIZE_MAX));
    assert_null(kp_arena_alloc(&a, SIZE_MAX - 3));
    kp_arena_init(&a, NULL, 0, 8192);
    assert_null(kp_arena_alloc(&a, 16384));
    assert_non_null(kp_arena_alloc(&a, 16));
    kp_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_roundtrip_fixed),
        cmocka_unit_test(test_buf_varint_edges),
        cmocka_unit_test(test_buf_truncation_is_error),
        cmocka_unit_test(test_buf_lying_array_count),
        cmocka_unit_test(test_buf_overlong_varint),
        cmocka_unit_test(test_buf_arena_refuses_wrapping_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

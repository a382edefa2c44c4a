/* CRC-32C: both paths against the RFC 3720 B.4 vectors and against each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocol/kp_crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static const crc_fn fns[] = {kp_crc32c, kp_crc32c_sw, kp_crc32c_hw};

static void check_all(const void *data, size_t len, uint32_t want)
{
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        assert_int_equal(fns[i](0, data, len), want);
}

static void test_crc32c_check_string(void **state)
{
    (void)state;
    check_all("123456789", 9, 0xE3069283u);
    check_all("", 0, 0);
}

static void test_crc32c_rfc3720_vectors(void **state)
{
    (void)state;
    uint8_t b[32];
    memset(b, 0, sizeof b);
    check_all(b, 32, 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    check_all(b, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    check_all(b, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    check_all(b, 32, 0x113FDB5Cu);
}

static void test_crc32c_chaining_equals_whole(void **state)
{
    (void)state;
    const char *s = "123456789";
    for (size_t cut = 0; cut <= 9; cut++)
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
            assert_int_equal(fns[i](fns[i](0, s, cut), s + cut, 9 - cut), 0xE3069283u);
}

static void test_crc32c_hw_matches_sw_every_alignment(void **state)
{
    (void)state;
    uint8_t buf[300 + 16];
    srand(12345);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 300; len++) {
            uint32_t sw = kp_crc32c_sw(0, buf + align, len);
            assert_int_equal(kp_crc32c_hw(0, buf + align, len), sw);
            assert_int_equal(kp_crc32c(0, buf + align, len), sw);
            assert_int_equal(kp_crc32c_hw(0x1234567u, buf + align, len),
                             kp_crc32c_sw(0x1234567u, buf + align, len));
        }
}

/* Inputs long enough for the three-lane path (3 x 4 KiB per step), every alignment, lengths
 * around the step boundaries, chained or whole: the same answer as the tables. */
static void test_crc32c_hw_matches_sw_long(void **state)
{
    (void)state;
    static uint8_t buf[100000 + 16];
    srand(777);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    size_t lens[] = {12287, 12288, 12289, 12295, 12296, 24575, 24576, 24583, 36871, 65536,
                     99999, 100000};
    for (size_t align = 0; align < 16; align += 3)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t len = lens[k];
            uint32_t sw = kp_crc32c_sw(0x9abcdefu, buf + align, len);
            assert_int_equal(kp_crc32c_hw(0x9abcdefu, buf + align, len), sw);
            size_t cut = len / 3 + align;
            assert_int_equal(kp_crc32c(kp_crc32c(0x9abcdefu, buf + align, cut), buf + align + cut,
                                       len - cut),
                             sw);
        }
    memset(buf, 0, sizeof buf); /* zeros and ones: the shift tables alone decide */
    assert_int_equal(kp_crc32c_hw(0, buf, 50000), kp_crc32c_sw(0, buf, 50000));
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(kp_crc32c_hw(0, buf, 50000), kp_crc32c_sw(0, buf, 50000));
}

static void test_crc32c_hw_flag_is_stable(void **state)
{
    (void)state;
    int a = kp_crc32c_hw_available();
    assert_true(a == 0 || a == 1);
    assert_int_equal(kp_crc32c_hw_available(), a);
}

/* scripts/cross sets DEPOT_EXPECT_CRC_HW=1 for arm64 under qemu (whose default CPU has the
 * CRC32 extension), so the run proves the ARMv8 instruction path was taken, not the table. */
static void test_crc32c_hw_path_as_expected(void **state)
{
    (void)state;
    const char *want = getenv("DEPOT_EXPECT_CRC_HW");
    print_message("crc32c: %s path\n", kp_crc32c_hw_available() ? "instruction" : "table");
    if (want && *want) assert_int_equal(kp_crc32c_hw_available(), atoi(want) ? 1 : 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_string),
        cmocka_unit_test(test_crc32c_rfc3720_vectors),
        cmocka_unit_test(test_crc32c_chaining_equals_whole),
        cmocka_unit_test(test_crc32c_hw_matches_sw_every_alignment),
        cmocka_unit_test(test_crc32c_hw_matches_sw_long),
        cmocka_unit_test(test_crc32c_hw_flag_is_stable),
        cmocka_unit_test(test_crc32c_hw_path_as_expected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

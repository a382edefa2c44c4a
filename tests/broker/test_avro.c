/* The registry's Avro model: parsing, canonical forms and the binary validator
 * (broker/registry/avro_*.c). The compatibility table is in test_avro_compat.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/registry/avro.h"
#include "protocol/k_status.h"

static kb_avro_schema_t *parse_ok(const char *text)
{
    kb_avro_schema_t *s = NULL;
    char err[256];
    int rc = kb_avro_parse(text, strlen(text), NULL, NULL, 0, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed (%d): %s for %s", rc, err, text);
    return s;
}

static int parse_err(const char *text, char *err, size_t errlen)
{
    kb_avro_schema_t *s = NULL;
    int rc = kb_avro_parse(text, strlen(text), NULL, NULL, 0, &s, err, errlen);
    assert_null(s);
    return rc;
}

static void expect_pcf(const char *text, const char *pcf)
{
    kb_avro_schema_t *s = parse_ok(text);
    char *got = kb_avro_pcf(s);
    assert_non_null(got);
    assert_string_equal(got, pcf);
    free(got);
    kb_avro_schema_free(s);
}

static void test_avro_pcf_primitives(void **state)
{
    (void)state;
    expect_pcf("\"int\"", "\"int\"");
    expect_pcf("{\"type\":\"int\"}", "\"int\"");
    expect_pcf("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\"");
    expect_pcf(" [ \"null\" , {\"type\":\"string\"} ] ", "[\"null\",\"string\"]");
    expect_pcf("{\"type\":\"array\",\"items\":\"int\",\"foo\":\"bar\"}",
               "{\"type\":\"array\",\"items\":\"int\"}");
    expect_pcf("{\"type\":\"map\",\"values\":{\"type\":\"bytes\"}}",
               "{\"type\":\"map\",\"values\":\"bytes\"}");
}

static void test_avro_pcf_named(void **state)
{
    (void)state;
    expect_pcf("{\"type\":\"fixed\",\"name\":\"foo\",\"size\":15}",
               "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}");
    expect_pcf("{\"symbols\":[\"A\",\"B\"],\"type\":\"enum\",\"name\":\"e\",\"namespace\":\"x\","
               "\"doc\":\"d\",\"default\":\"A\"}",
               "{\"name\":\"x.e\",\"type\":\"enum\",\"symbols\":[\"A\",\"B\"]}");
    /* Fields keep only name and type, names become fullnames, the second use is a name. */
    expect_pcf("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"doc\":\"x\","
               "\"fields\":[{\"name\":\"f\",\"doc\":\"y\",\"type\":{\"type\":\"fixed\","
               "\"name\":\"F\",\"size\":1}},{\"name\":\"g\",\"type\":\"F\",\"default\":\"\\u0000\"},"
               "{\"name\":\"h\",\"type\":{\"type\":\"enum\",\"name\":\"b.E\",\"symbols\":[\"X\"]}},"
               "{\"name\":\"i\",\"type\":\"b.E\"}]}",
               "{\"name\":\"a.R\",\"type\":\"record\",\"fields\":[{\"name\":\"f\",\"type\":{"
               "\"name\":\"a.F\",\"type\":\"fixed\",\"size\":1}},{\"name\":\"g\",\"type\":\"a.F\"}"
               ",{\"name\":\"h\",\"type\":{\"name\":\"b.E\",\"type\":\"enum\",\"symbols\":[\"X\"]}"
               "},{\"name\":\"i\",\"type\":\"b.E\"}]}");
    /* A recursive record: the inner use is the name. */
    expect_pcf("{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"next\",\"type\":"
               "[\"null\",\"Node\"]}]}",
               "{\"name\":\"Node\",\"type\":\"record\",\"fields\":[{\"name\":\"next\",\"type\":["
               "\"null\",\"Node\"]}]}");
}

static void test_avro_identity_keeps_defaults(void **state)
{
    (void)state;
    const char *a = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":"
                    "\"int\"}]}";
    const char *b = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":"
                    "\"int\",\"default\":3}]}";
    const char *c = "{\"fields\":[{\"type\":\"int\",\"name\":\"x\",\"default\":3,\"doc\":\"z\"}],"
                    "\"name\":\"R\",\"type\":\"record\"}";
    kb_avro_schema_t *sa = parse_ok(a), *sb = parse_ok(b), *sc = parse_ok(c);
    char *pa = kb_avro_pcf(sa), *pb = kb_avro_pcf(sb);
    char *ia = kb_avro_identity(sa), *ib = kb_avro_identity(sb), *ic = kb_avro_identity(sc);
    assert_string_equal(pa, pb); /* PCF strips defaults */
    assert_string_not_equal(ia, ib);
    assert_string_equal(ib, ic); /* order and doc do not matter */
    assert_non_null(strstr(ib, "\"default\":3"));
    free(pa), free(pb), free(ia), free(ib), free(ic);
    kb_avro_schema_free(sa), kb_avro_schema_free(sb), kb_avro_schema_free(sc);

    kb_avro_schema_t *d = parse_ok("{\"type\":\"bytes\",\"logicalType\":\"decimal\","
                                   "\"precision\":9,\"scale\":2}");
    char *id = kb_avro_identity(d);
    assert_string_equal(id, "{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,"
                            "\"scale\":2}");
    free(id);
    kb_avro_schema_free(d);
}

static void test_avro_parse_rejects(void **state)
{
    (void)state;
    char err[256];
    static const char *const bad[] = {
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[",            /* malformed JSON */
        "{\"type\":\"nosuch\"}",                                          /* unknown type */
        "\"Unknown\"",                                                    /* unknown name */
        "{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}",           /* bad name */
        "{\"type\":\"record\",\"name\":\"R\"}",                          /* no fields */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"a\",\"type\":\"int\"}]}",                            /* duplicate field */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":"
        "\"record\",\"name\":\"R\",\"fields\":[]}}]}",                   /* R defined twice */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"default\":\"x\"}]}",                                           /* default mismatch */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":[\"int\","
        "\"null\"],\"default\":null}]}",                                  /* not first branch */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"default\":4294967296}]}",                                      /* int out of range */
        "[\"int\",[\"null\"]]",                                           /* union in union */
        "[\"int\",\"int\"]",                                              /* repeated branch */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}",  /* repeated symbol */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",
        "{\"type\":\"fixed\",\"name\":\"int\",\"size\":1}",              /* primitive name */
        "{\"type\":\"array\"}",                                           /* no items */
        "42",
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a..b\",\"fields\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = parse_err(bad[i], err, sizeof err);
        if (rc != K_ERR_INVAL && rc != K_ERR_MALFORMED)
            fail_msg("case %zu parsed: %s", i, bad[i]);
        if (!err[0])
            fail_msg("case %zu: no reason given", i);
    }
    assert_int_equal(parse_err("{\"type\":", err, sizeof err), K_ERR_MALFORMED);
    assert_non_null(strstr(err, "JSON"));
}

static void test_avro_parse_deep_nesting_bounded(void **state)
{
    (void)state;
    char *text = malloc(200 * 40 + 16);
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(text + n, "{\"type\":\"array\",\"items\":");
    n += (size_t)sprintf(text + n, "\"int\"");
    for (int i = 0; i < 200; i++)
        text[n++] = '}';
    text[n] = '\0';
    char err[256];
    assert_int_equal(parse_err(text, err, sizeof err), K_ERR_INVAL);
    assert_non_null(strstr(err, "deeper"));
    free(text);
}

static void test_avro_parse_keeps_attributes(void **state)
{
    (void)state;
    kb_avro_schema_t *s = parse_ok(
        "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"plant\",\"aliases\":[\"Old\","
        "\"x.Older\"],\"fields\":[{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":"
        "\"timestamp-millis\"}},{\"name\":\"unit\",\"type\":\"string\",\"default\":\"C\","
        "\"aliases\":[\"u\"]},{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","
        "\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}}]}");
    const kb_avro_node_t *r = kb_avro_root(s);
    assert_int_equal(r->type, KB_AVRO_RECORD);
    assert_string_equal(r->fullname, "plant.Reading");
    assert_int_equal(r->n_aliases, 2);
    assert_string_equal(r->aliases[0], "plant.Old");
    assert_string_equal(r->aliases[1], "x.Older");
    assert_int_equal(r->n_fields, 3);
    assert_string_equal(r->fields[0].type->logical_type, "timestamp-millis");
    assert_string_equal(json_string_value(r->fields[1].default_value), "C");
    assert_string_equal(r->fields[1].aliases[0], "u");
    assert_non_null(kb_avro_find_named(s, "plant.Kind"));
    assert_string_equal(r->fields[2].type->enum_default, "A");
    kb_avro_schema_free(s);
    kb_avro_schema_free(NULL);
}

static void test_avro_parse_references(void **state)
{
    (void)state;
    const char *unit = "{\"type\":\"enum\",\"name\":\"Unit\",\"namespace\":\"plant\","
                       "\"symbols\":[\"C\",\"F\"]}";
    const char *main_text = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"plant\","
                            "\"fields\":[{\"name\":\"u\",\"type\":\"Unit\"}]}";
    const char *refs[] = {unit};
    size_t lens[] = {strlen(unit)};
    kb_avro_schema_t *s = NULL;
    char err[256];
    assert_int_equal(kb_avro_parse(main_text, strlen(main_text), refs, lens, 1, &s, err,
                                   sizeof err),
                     0);
    assert_int_equal(kb_avro_root(s)->fields[0].type->type, KB_AVRO_ENUM);
    kb_avro_schema_free(s);
    /* Without the reference the name is unknown. */
    assert_int_equal(parse_err(main_text, err, sizeof err), K_ERR_INVAL);
    assert_non_null(strstr(err, "Unit"));
}

/* ------------------------------------------------------------------------------------------ */
/* Binary validation                                                                            */

static const char *rec_schema =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"temp\",\"type\":\"float\"},{\"name\":\"tags\",\"type\":{\"type\":\"array\","
    "\"items\":\"string\"}},{\"name\":\"u\",\"type\":[\"null\",\"string\"]},{\"name\":\"k\","
    "\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\"]}},{\"name\":\"m\","
    "\"type\":{\"type\":\"map\",\"values\":\"long\"}},{\"name\":\"f\",\"type\":{\"type\":"
    "\"fixed\",\"name\":\"F\",\"size\":2}},{\"name\":\"b\",\"type\":\"boolean\"}]}";

/* id=1, temp=1.0f, tags=["a"], u="x", k=B, m={"z":-1} (as a negative-count block), f="hi",
 * b=true */
static const uint8_t good_value[] = {
    0x02, 0x00, 0x00, 0x80, 0x3f, 0x02, 0x02, 'a', 0x00, 0x02, 0x02, 'x', 0x02,
    0x01, 0x06, 0x02, 'z', 0x01, 0x00, 'h', 'i', 0x01};

static void test_avro_validate_good(void **state)
{
    (void)state;
    kb_avro_schema_t *s = parse_ok(rec_schema);
    char msg[256];
    assert_int_equal(kb_avro_validate(s, good_value, sizeof good_value, msg, sizeof msg), 0);
    kb_avro_schema_free(s);
}

static void test_avro_validate_bad(void **state)
{
    (void)state;
    kb_avro_schema_t *s = parse_ok(rec_schema);
    char msg[256];
    uint8_t v[sizeof good_value + 1];
    /* every truncation fails */
    for (size_t n = 0; n < sizeof good_value; n++)
        assert_int_equal(kb_avro_validate(s, good_value, n, msg, sizeof msg), K_ERR_MALFORMED);
    /* a trailing byte fails */
    memcpy(v, good_value, sizeof good_value);
    v[sizeof good_value] = 0;
    assert_int_equal(kb_avro_validate(s, v, sizeof v, msg, sizeof msg), K_ERR_MALFORMED);
    assert_non_null(strstr(msg, "left over"));
    /* union index 2 of 2 branches */
    memcpy(v, good_value, sizeof good_value);
    v[9] = 0x04;
    assert_int_equal(kb_avro_validate(s, v, sizeof good_value, msg, sizeof msg),
                     K_ERR_MALFORMED);
    assert_non_null(strstr(msg, "union"));
    /* enum index 2 of 2 symbols */
    memcpy(v, good_value, sizeof good_value);
    v[12] = 0x04;
    assert_int_equal(kb_avro_validate(s, v, sizeof good_value, msg, sizeof msg),
                     K_ERR_MALFORMED);
    assert_non_null(strstr(msg, "enum"));
    /* boolean 2 */
    memcpy(v, good_value, sizeof good_value);
    v[sizeof good_value - 1] = 2;
    assert_int_equal(kb_avro_validate(s, v, sizeof good_value, msg, sizeof msg),
                     K_ERR_MALFORMED);
    /* a string that is not UTF-8 */
    memcpy(v, good_value, sizeof good_value);
    v[7] = 0xff;
    assert_int_equal(kb_avro_validate(s, v, sizeof good_value, msg, sizeof msg),
                     K_ERR_MALFORMED);
    assert_non_null(strstr(msg, "UTF-8"));
    kb_avro_schema_free(s);
    /* a plain string is not a record */
    s = parse_ok(rec_schema);
    const char *plain = "hello world";
    assert_int_not_equal(kb_avro_validate(s, (const uint8_t *)plain, strlen(plain), msg,
                                          sizeof msg),
                         0);
    kb_avro_schema_free(s);
}

static void test_avro_validate_bounded(void **state)
{
    (void)state;
    kb_avro_schema_t *s = parse_ok("{\"type\":\"array\",\"items\":\"null\"}");
    char msg[256];
    /* count 2^61 of nulls, zero bytes each: refused quickly, not spun through */
    const uint8_t huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x00};
    assert_int_equal(kb_avro_validate(s, huge, sizeof huge, msg, sizeof msg), K_ERR_MALFORMED);
    const uint8_t three[] = {0x06, 0x00};
    assert_int_equal(kb_avro_validate(s, three, sizeof three, msg, sizeof msg), 0);
    kb_avro_schema_free(s);
    /* recursion over a recursive schema is bounded by depth */
    s = parse_ok("{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"n\",\"type\":"
                 "[\"null\",\"N\"]}]}");
    uint8_t deep[400];
    memset(deep, 0x02, sizeof deep);
    deep[sizeof deep - 1] = 0x00;
    assert_int_equal(kb_avro_validate(s, deep, sizeof deep, msg, sizeof msg), K_ERR_MALFORMED);
    const uint8_t shallow[] = {0x02, 0x02, 0x00};
    assert_int_equal(kb_avro_validate(s, shallow, sizeof shallow, msg, sizeof msg), 0);
    kb_avro_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_pcf_primitives),
        cmocka_unit_test(test_avro_pcf_named),
        cmocka_unit_test(test_avro_identity_keeps_defaults),
        cmocka_unit_test(test_avro_parse_rejects),
        cmocka_unit_test(test_avro_parse_deep_nesting_bounded),
        cmocka_unit_test(test_avro_parse_keeps_attributes),
        cmocka_unit_test(test_avro_parse_references),
        cmocka_unit_test(test_avro_validate_good),
        cmocka_unit_test(test_avro_validate_bad),
        cmocka_unit_test(test_avro_validate_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

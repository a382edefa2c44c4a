/*
 * Compatibility table: pairs of schemas (old version -> new version) x every level.
 *
 * For each pair the two facts come from the Avro specification's resolution rules, written
 * down by hand in the table (not computed):
 *   B = the NEW schema can read data written with the OLD one (reader = new, writer = old)
 *   F = the OLD schema can read data written with the NEW one (reader = old, writer = new)
 * and with one earlier version the levels mean (Confluent's definitions):
 *   NONE: always; BACKWARD(_TRANSITIVE): B; FORWARD(_TRANSITIVE): F; FULL(_TRANSITIVE): B && F.
 * The transitive levels with several versions are tested separately below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry/avro.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"plant\"," \
                    "\"fields\":[" fields "]}"
#define F_ID "{\"name\":\"id\",\"type\":\"int\"}"
#define F_TEMP "{\"name\":\"temp\",\"type\":\"float\"}"
#define ENUM(extra, syms) "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\"" extra \
                          ",\"symbols\":[" syms "]}}"

typedef struct {
    const char *what;
    const char *old_s, *new_s;
    bool b, f; /* from the resolution rules, see the top */
} pair_t;

static const pair_t pairs[] = {
    {"no change", REC(F_ID "," F_TEMP), REC(F_ID "," F_TEMP), true, true},
    /* new reader fills the missing field from its default; old reader skips the new field */
    {"added field with default", REC(F_ID),
     REC(F_ID ",{\"name\":\"unit\",\"type\":\"string\",\"default\":\"C\"}"), true, true},
    /* new reader has no value for unit in old data */
    {"added field without default", REC(F_ID), REC(F_ID ",{\"name\":\"unit\",\"type\":\"string\"}"),
     false, true},
    /* old reader needs temp, which new data lacks and old has no default for */
    {"removed field", REC(F_ID "," F_TEMP), REC(F_ID), true, false},
    {"removed field that had a default",
     REC(F_ID ",{\"name\":\"temp\",\"type\":\"float\",\"default\":0.0}"), REC(F_ID), true, true},
    /* promotions go one way: a wider reader reads a narrower writer */
    {"int -> long", REC(F_ID), REC("{\"name\":\"id\",\"type\":\"long\"}"), true, false},
    {"int -> float", REC(F_ID), REC("{\"name\":\"id\",\"type\":\"float\"}"), true, false},
    {"int -> double", REC(F_ID), REC("{\"name\":\"id\",\"type\":\"double\"}"), true, false},
    {"long -> float", REC("{\"name\":\"id\",\"type\":\"long\"}"),
     REC("{\"name\":\"id\",\"type\":\"float\"}"), true, false},
    {"long -> double", REC("{\"name\":\"id\",\"type\":\"long\"}"),
     REC("{\"name\":\"id\",\"type\":\"double\"}"), true, false},
    {"float -> double", REC(F_TEMP), REC("{\"name\":\"temp\",\"type\":\"double\"}"), true, false},
    {"long -> int (narrowing)", REC("{\"name\":\"id\",\"type\":\"long\"}"), REC(F_ID), false,
     true},
    {"string -> bytes", REC("{\"name\":\"s\",\"type\":\"string\"}"),
     REC("{\"name\":\"s\",\"type\":\"bytes\"}"), true, true},
    {"int -> string", REC(F_ID), REC("{\"name\":\"id\",\"type\":\"string\"}"), false, false},
    /* enums: a writer symbol the reader lacks fails unless the reader has a default */
    {"enum symbol added", REC(ENUM("", "\"A\",\"B\"")), REC(ENUM("", "\"A\",\"B\",\"C\"")), true,
     false},
    {"enum symbol added, enum default", REC(ENUM(",\"default\":\"A\"", "\"A\",\"B\"")),
     REC(ENUM(",\"default\":\"A\"", "\"A\",\"B\",\"C\"")), true, true},
    {"enum symbol removed", REC(ENUM("", "\"A\",\"B\",\"C\"")), REC(ENUM("", "\"A\",\"B\"")),
     false, true},
    /* unions: a reader union needs a branch per writer type; a writer union needs every
     * branch readable */
    {"int -> [null,int]", REC(F_ID),
     REC("{\"name\":\"id\",\"type\":[\"null\",\"int\"],\"default\":null}"), true, false},
    {"int -> [null,long]", REC(F_ID),
     REC("{\"name\":\"id\",\"type\":[\"null\",\"long\"],\"default\":null}"), true, false},
    {"union branch added", REC("{\"name\":\"v\",\"type\":[\"null\",\"int\"]}"),
     REC("{\"name\":\"v\",\"type\":[\"null\",\"int\",\"string\"]}"), true, false},
    {"union branch removed", REC("{\"name\":\"v\",\"type\":[\"null\",\"int\",\"string\"]}"),
     REC("{\"name\":\"v\",\"type\":[\"null\",\"int\"]}"), false, true},
    /* record names: the reader's aliases may name the writer */
    {"renamed record with alias", REC(F_ID),
     "{\"type\":\"record\",\"name\":\"SensorReading\",\"namespace\":\"plant\",\"aliases\":["
     "\"plant.Reading\"],\"fields\":[" F_ID "]}",
     true, false},
    {"renamed record without alias", REC(F_ID),
     "{\"type\":\"record\",\"name\":\"SensorReading\",\"namespace\":\"plant\",\"fields\":[" F_ID
     "]}",
     false, false},
    {"namespace changed (unqualified names match)", REC(F_ID),
     "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"line2\",\"fields\":[" F_ID "]}",
     true, true},
    {"renamed field with alias", REC(F_ID "," F_TEMP),
     REC(F_ID ",{\"name\":\"temperature\",\"type\":\"float\",\"aliases\":[\"temp\"]}"), true,
     false},
    {"fixed size changed",
     REC("{\"name\":\"mac\",\"type\":{\"type\":\"fixed\",\"name\":\"Mac\",\"size\":6}}"),
     REC("{\"name\":\"mac\",\"type\":{\"type\":\"fixed\",\"name\":\"Mac\",\"size\":8}}"), false,
     false},
    {"array items int -> long",
     REC("{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\"}}"),
     REC("{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"long\"}}"), true, false},
    {"map of records, field added with default",
     REC("{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"record\",\"name\":"
         "\"P\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}}}"),
     REC("{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"record\",\"name\":"
         "\"P\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\","
         "\"default\":0}]}}}"),
     true, true},
    {"array -> map", REC("{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\"}}"),
     REC("{\"name\":\"xs\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}"), false, false},
    {"logical type added (underlying type unchanged)", REC("{\"name\":\"ts\",\"type\":\"long\"}"),
     REC("{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}"),
     true, true},
};

static kb_avro_schema_t *parse(const char *text)
{
    kb_avro_schema_t *s = NULL;
    char err[256];
    if (kb_avro_parse(text, strlen(text), NULL, NULL, 0, &s, err, sizeof err) != 0)
        fail_msg("parse failed: %s: %s", err, text);
    return s;
}

static bool expected(kb_compat_t level, const pair_t *p)
{
    switch (level) {
    case KB_COMPAT_NONE: return true;
    case KB_COMPAT_BACKWARD:
    case KB_COMPAT_BACKWARD_TRANSITIVE: return p->b;
    case KB_COMPAT_FORWARD:
    case KB_COMPAT_FORWARD_TRANSITIVE: return p->f;
    case KB_COMPAT_FULL:
    case KB_COMPAT_FULL_TRANSITIVE: return p->b && p->f;
    }
    return false;
}

static void test_avro_compat_table(void **state)
{
    (void)state;
    int wrong = 0, checked = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        kb_avro_schema_t *o = parse(pairs[i].old_s), *n = parse(pairs[i].new_s);
        const kb_avro_schema_t *existing[] = {o};
        for (int l = KB_COMPAT_NONE; l <= KB_COMPAT_FULL_TRANSITIVE; l++) {
            char msg[512];
            bool got = kb_avro_compatible((kb_compat_t)l, n, existing, 1, msg, sizeof msg);
            checked++;
            if (got != expected((kb_compat_t)l, &pairs[i])) {
                printf("WRONG: %s under %s: got %s (%s)\n", pairs[i].what,
                       kb_compat_name((kb_compat_t)l), got ? "compatible" : "incompatible", msg);
                wrong++;
            } else if (!got && !msg[0]) {
                printf("WRONG: %s under %s: incompatible without a reason\n", pairs[i].what,
                       kb_compat_name((kb_compat_t)l));
                wrong++;
            }
        }
        kb_avro_schema_free(o);
        kb_avro_schema_free(n);
    }
    printf("compatibility table: %d answers checked, %d wrong\n", checked, wrong);
    assert_int_equal(wrong, 0);
}

/* v1 {id}, v2 {id, unit default "C"}, v3 {id, unit without default}:
 * v3 reads v2 (unit present) but not v1 (unit missing, no default); v1 and v2 read v3. */
static void test_avro_compat_transitive(void **state)
{
    (void)state;
    kb_avro_schema_t *v1 = parse(REC(F_ID));
    kb_avro_schema_t *v2 = parse(REC(F_ID ",{\"name\":\"unit\",\"type\":\"string\",\"default\":"
                                          "\"C\"}"));
    kb_avro_schema_t *v3 = parse(REC(F_ID ",{\"name\":\"unit\",\"type\":\"string\"}"));
    const kb_avro_schema_t *existing[] = {v1, v2};
    char msg[512];
    assert_true(kb_avro_compatible(KB_COMPAT_BACKWARD, v3, existing, 2, msg, sizeof msg));
    assert_false(kb_avro_compatible(KB_COMPAT_BACKWARD_TRANSITIVE, v3, existing, 2, msg,
                                    sizeof msg));
    assert_non_null(strstr(msg, "/unit"));
    assert_true(kb_avro_compatible(KB_COMPAT_FORWARD, v3, existing, 2, msg, sizeof msg));
    assert_true(kb_avro_compatible(KB_COMPAT_FORWARD_TRANSITIVE, v3, existing, 2, msg,
                                   sizeof msg));
    assert_true(kb_avro_compatible(KB_COMPAT_FULL, v3, existing, 2, msg, sizeof msg));
    assert_false(kb_avro_compatible(KB_COMPAT_FULL_TRANSITIVE, v3, existing, 2, msg, sizeof msg));
    assert_true(kb_avro_compatible(KB_COMPAT_NONE, v3, existing, 2, msg, sizeof msg));
    /* Nothing registered yet: everything is compatible. */
    assert_true(kb_avro_compatible(KB_COMPAT_FULL_TRANSITIVE, v3, NULL, 0, msg, sizeof msg));
    kb_avro_schema_free(v1), kb_avro_schema_free(v2), kb_avro_schema_free(v3);
}

static void test_avro_compat_recursive(void **state)
{
    (void)state;
    kb_avro_schema_t *a = parse("{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"v\","
                                "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}");
    kb_avro_schema_t *b = parse("{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"v\","
                                "\"type\":\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}");
    char msg[256];
    assert_true(kb_avro_can_read(b, a, msg, sizeof msg));
    assert_false(kb_avro_can_read(a, b, msg, sizeof msg));
    kb_avro_schema_free(a), kb_avro_schema_free(b);
}

static void test_avro_compat_names(void **state)
{
    (void)state;
    kb_compat_t c;
    assert_int_equal(kb_compat_parse("backward_transitive", &c), 0);
    assert_int_equal(c, KB_COMPAT_BACKWARD_TRANSITIVE);
    assert_string_equal(kb_compat_name(KB_COMPAT_FULL), "FULL");
    assert_int_not_equal(kb_compat_parse("SIDEWAYS", &c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_compat_table),
        cmocka_unit_test(test_avro_compat_transitive),
        cmocka_unit_test(test_avro_compat_recursive),
        cmocka_unit_test(test_avro_compat_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

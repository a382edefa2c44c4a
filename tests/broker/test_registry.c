/*
 * The registry's REST core (broker/registry/reg_*.c) against a real store, without HTTP:
 * Confluent's paths, bodies, error codes, the `_schemas` log and its replay after a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/kb.h"
#include "broker/registry/reg_produce.h"
#include "broker/registry/registry.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_errors.h"

typedef struct {
    char dir[64];
    ks_store_t *store;
    kb_registry_t *reg;
} env_t;

static env_t env;

static void env_open(void)
{
    const char *dirs[] = {env.dir};
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.n_dirs = 1;
    o.max_open_files = 64;
    o.node_id = 1;
    ks_topic_config_default(&o.defaults);
    assert_int_equal(ks_store_open(&o, &env.store), 0);
    assert_int_equal(kb_registry_open(env.store, &env.reg), 0);
}

static void env_close(void)
{
    kb_registry_close(env.reg);
    env.reg = NULL;
    ks_store_close(env.store);
    env.store = NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    kb_log_set_level(KB_LOG_ERROR);
    snprintf(env.dir, sizeof env.dir, "/tmp/depot-reg-test-XXXXXX");
    if (!mkdtemp(env.dir))
        return -1;
    env_open();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    env_close();
    nftw(env.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int status;
    char *body;
} reply_t;

static void on_reply(void *ctx, int status, char *body, size_t len)
{
    reply_t *r = ctx;
    (void)len;
    r->calls++;
    r->status = status;
    r->body = body;
}

static const char *query_get(void *ud, const char *name)
{
    static char val[256];
    const char *q = ud;
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        if (!strncmp(p, name, n) && p[n] == '=') {
            const char *e = strchr(p, '&');
            int len = e ? (int)(e - p - (long)n - 1) : (int)strlen(p + n + 1);
            snprintf(val, sizeof val, "%.*s", len, p + n + 1);
            return val;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return NULL;
}

/* Runs one request to its answer; returns the status and the parsed body in *out. */
static int call(const char *method, const char *path, const char *query, const char *body,
                json_t **out)
{
    kb_reg_request_t req = {method, path, query_get, (void *)(query ? query : ""),
                            (const uint8_t *)(body ? body : ""), body ? strlen(body) : 0};
    reply_t r = {0};
    kb_registry_call(env.reg, &req, on_reply, &r);
    for (int i = 0; i < 20000 && !r.calls; i++) {
        ks_store_run_completions(env.store);
        if (!r.calls)
            usleep(200);
    }
    assert_int_equal(r.calls, 1);
    assert_non_null(r.body);
    json_t *j = json_loads(r.body, JSON_DECODE_ANY, NULL);
    if (!j)
        fail_msg("reply is not JSON: %s", r.body);
    free(r.body);
    if (out)
        *out = j;
    else
        json_decref(j);
    return r.status;
}

static int error_code(json_t *j)
{
    assert_int_equal(json_object_size(j), 2); /* error_code and message, nothing else */
    assert_non_null(json_string_value(json_object_get(j, "message")));
    return (int)json_integer_value(json_object_get(j, "error_code"));
}

static char *schema_body(const char *schema)
{
    json_t *b = json_pack("{s:s}", "schema", schema);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static int register_schema(const char *subject, const char *schema, int *status)
{
    char path[256];
    snprintf(path, sizeof path, "/subjects/%s/versions", subject);
    char *body = schema_body(schema);
    json_t *j;
    *status = call("POST", path, NULL, body, &j);
    free(body);
    int id = -1;
    if (*status == 200) {
        assert_int_equal(json_object_size(j), 1); /* {"id":N} only */
        id = (int)json_integer_value(json_object_get(j, "id"));
    }
    json_decref(j);
    return id;
}

#define V1 "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":[{\"name\":\"id\",\"type\":\"int\"}]}"
#define V2 "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":[{\"name\":\"id\",\"type\":\"int\"}," \
           "{\"name\":\"unit\",\"type\":\"string\",\"default\":\"C\"}]}"
#define V2BAD "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":[{\"name\":\"id\",\"type\":" \
              "\"int\"},{\"name\":\"unit\",\"type\":\"string\"}]}"

static int64_t log_end(void)
{
    ks_topic_t *t = ks_topic_find(env.store, "_schemas", 8);
    assert_non_null(t);
    return ks_part_log_end(ks_topic_part(t, 0));
}

/* ------------------------------------------------------------------------------------------ */

static void test_registry_register_is_idempotent_and_global(void **state)
{
    (void)state;
    int st;
    assert_int_equal(register_schema("line1-value", V1, &st), 1);
    int64_t end = log_end();
    /* the same schema, spelled differently: same id, no new version, nothing written */
    assert_int_equal(register_schema("line1-value", "{\"fields\":[{\"type\":{\"type\":\"int\"},"
                                                    "\"name\":\"id\"}],\"type\":\"record\","
                                                    "\"name\":\"Reading\"}",
                                     &st),
                     1);
    assert_int_equal(log_end(), end);
    /* another subject: the global id is reused, the subject gets its own version 1 */
    assert_int_equal(register_schema("line2-value", V1, &st), 1);
    json_t *j;
    assert_int_equal(call("GET", "/subjects", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_array_get(j, 0)), "line1-value");
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/1", NULL, NULL, &j), 200);
    assert_int_equal(json_object_size(j), 1);
    assert_non_null(strstr(json_string_value(json_object_get(j, "schema")), "Reading"));
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/1/versions", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 2);
    assert_int_equal(json_object_size(json_array_get(j, 0)), 2);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/1/subjects", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/99", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40403);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 2); /* line1-value v1 and line2-value v1 */
    assert_int_equal(json_object_size(json_array_get(j, 0)), 4);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas", "subjectPrefix=line2", NULL, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/types", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_array_get(j, 0)), "AVRO");
    json_decref(j);
}

static void test_registry_versions_and_lookup(void **state)
{
    (void)state;
    int st;
    json_t *j;
    assert_int_equal(register_schema("s", V1, &st), 1);
    assert_int_equal(register_schema("s", V2, &st), 2);
    assert_int_equal(call("GET", "/subjects/s/versions", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/s/versions/latest", NULL, NULL, &j), 200);
    assert_int_equal(json_object_size(j), 4); /* subject, version, id, schema */
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "subject")), "s");
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/s/versions/1/schema", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Reading");
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/s/versions/abc", NULL, NULL, &j), 422);
    assert_int_equal(error_code(j), 42202);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/s/versions/0", NULL, NULL, &j), 422);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/s/versions/7", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40402);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/nope/versions", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40401);
    json_decref(j);
    /* look up */
    char *b1 = schema_body(V1), *bbad = schema_body(V2BAD);
    assert_int_equal(call("POST", "/subjects/s", NULL, b1, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_int_equal(json_object_size(j), 4);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/s", NULL, bbad, &j), 404);
    assert_int_equal(error_code(j), 40403);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/nope", NULL, b1, &j), 404);
    assert_int_equal(error_code(j), 40401);
    json_decref(j);
    free(b1), free(bbad);
}

static void test_registry_compatibility(void **state)
{
    (void)state;
    int st;
    json_t *j;
    assert_int_equal(register_schema("c", V1, &st), 1);
    int64_t end = log_end();
    assert_int_equal(register_schema("c", V2BAD, &st), -1); /* BACKWARD by default */
    assert_int_equal(st, 409);
    assert_int_equal(log_end(), end);
    char *bad = schema_body(V2BAD), *good = schema_body(V2);
    assert_int_equal(call("POST", "/compatibility/subjects/c/versions/latest", "verbose=true", bad,
                          &j),
                     200);
    assert_false(json_is_true(json_object_get(j, "is_compatible")));
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 1);
    json_decref(j);
    assert_int_equal(call("POST", "/compatibility/subjects/c/versions/1", NULL, good, &j), 200);
    assert_true(json_is_true(json_object_get(j, "is_compatible")));
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    /* subject-level config */
    assert_int_equal(call("GET", "/config/c", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40408);
    json_decref(j);
    assert_int_equal(call("GET", "/config/c", "defaultToGlobal=true", NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "compatibilityLevel")), "BACKWARD");
    json_decref(j);
    assert_int_equal(call("PUT", "/config/c", NULL, "{\"compatibility\":\"none\",\"x\":1}", &j),
                     200);
    assert_string_equal(json_string_value(json_object_get(j, "compatibility")), "NONE");
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    assert_int_equal(register_schema("c", V2BAD, &st), 2);
    assert_int_equal(call("PUT", "/config", NULL, "{\"compatibility\":\"SIDEWAYS\"}", &j), 422);
    assert_int_equal(error_code(j), 42203);
    json_decref(j);
    assert_int_equal(call("PUT", "/config", NULL, "{\"compatibility\":\"FULL\"}", &j), 200);
    json_decref(j);
    assert_int_equal(call("GET", "/config", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "compatibilityLevel")), "FULL");
    json_decref(j);
    assert_int_equal(call("DELETE", "/config/c", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "compatibilityLevel")), "NONE");
    json_decref(j);
    assert_int_equal(call("GET", "/config/c", NULL, NULL, &j), 404);
    json_decref(j);
    free(bad), free(good);
}

static void test_registry_delete_soft_then_permanent(void **state)
{
    (void)state;
    int st;
    json_t *j;
    assert_int_equal(register_schema("d", V1, &st), 1);
    assert_int_equal(register_schema("d", V2, &st), 2);
    assert_int_equal(call("DELETE", "/subjects/d/versions/2", "permanent=true", NULL, &j), 404);
    assert_int_equal(error_code(j), 40407);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d/versions/1", NULL, NULL, &j), 200);
    assert_int_equal(json_integer_value(j), 1);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d/versions/1", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40406);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/d/versions", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    /* soft-deleted schemas still resolve by id (consumers read old data) */
    assert_int_equal(call("GET", "/schemas/ids/1", NULL, NULL, &j), 200);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d", "permanent=true", NULL, &j), 404);
    assert_int_equal(error_code(j), 40405);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects", "deleted=true", NULL, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 40404);
    json_decref(j);
    /* a version after a soft delete numbers on */
    assert_int_equal(register_schema("d", V1, &st), 1);
    assert_int_equal(call("GET", "/subjects/d/versions", NULL, NULL, &j), 200);
    assert_int_equal(json_integer_value(json_array_get(j, 0)), 3);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d", NULL, NULL, &j), 200);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/d", "permanent=true", NULL, &j), 200);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects", "deleted=true", NULL, &j), 200);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/1", NULL, NULL, &j), 404);
    json_decref(j);
}

static void test_registry_survives_reopen(void **state)
{
    (void)state;
    int st;
    json_t *j;
    assert_int_equal(register_schema("a", V1, &st), 1);
    assert_int_equal(register_schema("a", V2, &st), 2);
    assert_int_equal(register_schema("b", V2, &st), 2);
    assert_int_equal(call("PUT", "/config/b", NULL, "{\"compatibility\":\"FULL_TRANSITIVE\"}", &j),
                     200);
    json_decref(j);
    assert_int_equal(call("DELETE", "/subjects/a/versions/1", NULL, NULL, &j), 200);
    json_decref(j);
    env_close();
    env_open();
    int64_t loaded, skipped;
    kb_registry_load_stats(env.reg, &loaded, &skipped);
    assert_int_equal(loaded, 5);
    assert_int_equal(skipped, 0);
    assert_int_equal(call("GET", "/subjects/a/versions", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(j), 1);
    assert_int_equal(json_integer_value(json_array_get(j, 0)), 2);
    json_decref(j);
    assert_int_equal(call("GET", "/config/b", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "compatibilityLevel")),
                        "FULL_TRANSITIVE");
    json_decref(j);
    assert_int_equal(register_schema("b", V2, &st), 2);
    assert_int_equal(register_schema("a", V1, &st), 1); /* soft-deleted: a new version, old id */
    assert_int_equal(register_schema("c", "\"string\"", &st), 3); /* ids continue */
}

static void test_registry_bad_input(void **state)
{
    (void)state;
    json_t *j;
    int64_t end = log_end();
    assert_int_equal(call("POST", "/subjects/x/versions", NULL, "{\"schema\":", &j), 400);
    assert_int_equal(error_code(j), 400);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/x/versions", NULL, "[1,2]", &j), 400);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/x/versions", NULL, "{\"schema\":\"{\\\"type\\\":"
                                                              "\\\"nosuch\\\"}\"}",
                          &j),
                     422);
    assert_int_equal(error_code(j), 42201);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/x/versions", NULL, "{\"schema\":\"not json\"}", &j),
                     422);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/x/versions", NULL,
                          "{\"schemaType\":\"JSON\",\"schema\":\"{}\"}", &j),
                     422);
    assert_int_equal(error_code(j), 42201);
    json_decref(j);
    assert_int_equal(call("POST", "/subjects/x/versions", NULL, "{\"other\":1}", &j), 422);
    json_decref(j);
    assert_int_equal(call("GET", "/nope", NULL, NULL, &j), 404);
    assert_int_equal(error_code(j), 404);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/a/b/c/d/e/f/g/h/i", NULL, NULL, &j), 404);
    json_decref(j);
    assert_int_equal(call("PUT", "/subjects", NULL, NULL, &j), 405);
    assert_int_equal(error_code(j), 405);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/%zz/versions", NULL, NULL, &j), 400);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/a%00b/versions", NULL, NULL, &j), 400);
    json_decref(j);
    assert_int_equal(log_end(), end); /* nothing stored */
    assert_int_equal(call("GET", "/mode", NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "READWRITE");
    json_decref(j);
}

static void test_registry_references(void **state)
{
    (void)state;
    int st;
    json_t *j;
    assert_int_equal(register_schema("unit", "{\"type\":\"enum\",\"name\":\"Unit\",\"namespace\":"
                                             "\"plant\",\"symbols\":[\"C\",\"F\"]}",
                                     &st),
                     1);
    const char *body = "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\","
                       "\\\"namespace\\\":\\\"plant\\\",\\\"fields\\\":[{\\\"name\\\":\\\"u\\\","
                       "\\\"type\\\":\\\"Unit\\\"}]}\",\"references\":[{\"name\":\"plant.Unit\","
                       "\"subject\":\"unit\",\"version\":1}]}";
    assert_int_equal(call("POST", "/subjects/r/versions", NULL, body, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
    json_decref(j);
    assert_int_equal(call("GET", "/schemas/ids/2", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "references")), 1);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/unit/versions/1/referencedby", NULL, NULL, &j), 200);
    assert_int_equal(json_integer_value(json_array_get(j, 0)), 2);
    json_decref(j);
    /* without the reference the type is unknown */
    assert_int_equal(call("POST", "/subjects/r2/versions", NULL,
                          "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\","
                          "\\\"fields\\\":[{\\\"name\\\":\\\"u\\\",\\\"type\\\":\\\"plant.Unit\\\""
                          "}]}\"}",
                          &j),
                     422);
    json_decref(j);
    env_close();
    env_open(); /* the referencing schema replays after what it references */
    assert_int_equal(call("GET", "/schemas/ids/2", NULL, NULL, &j), 200);
    json_decref(j);
}

static void test_registry_check_value(void **state)
{
    (void)state;
    int st;
    assert_int_equal(register_schema("t-value", V1, &st), 1);
    char msg[256];
    const uint8_t good[] = {0, 0, 0, 0, 1, 0x02};
    const uint8_t wrong_id[] = {0, 0, 0, 0, 9, 0x02};
    const uint8_t bad_body[] = {0, 0, 0, 0, 1, 0x02, 0x02};
    assert_int_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC, good,
                                             sizeof good, true, msg, sizeof msg),
                     0);
    assert_int_not_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC, wrong_id,
                                                 sizeof wrong_id, false, msg, sizeof msg),
                         0);
    assert_non_null(strstr(msg, "not registered"));
    assert_int_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC, bad_body,
                                             sizeof bad_body, false, msg, sizeof msg),
                     0);
    assert_int_not_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC, bad_body,
                                                 sizeof bad_body, true, msg, sizeof msg),
                         0);
    assert_int_not_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC,
                                                 (const uint8_t *)"plain", 5, false, msg,
                                                 sizeof msg),
                         0);
    assert_non_null(strstr(msg, "magic"));
    /* the key subject is a different one */
    assert_int_not_equal(kb_registry_check_value(env.reg, "t", true, KS_SUBJECT_TOPIC, good,
                                                 sizeof good, false, msg, sizeof msg),
                         0);
    /* record-name strategies: the subject is the record's full name (with the topic) */
    assert_int_not_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_RECORD, good,
                                                 sizeof good, false, msg, sizeof msg),
                         0);
    assert_int_equal(register_schema("Reading", V1, &st), 1);
    assert_int_equal(register_schema("t-Reading", V1, &st), 1);
    assert_int_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_RECORD, good,
                                             sizeof good, false, msg, sizeof msg),
                     0);
    assert_int_equal(kb_registry_check_value(env.reg, "t", false, KS_SUBJECT_TOPIC_RECORD, good,
                                             sizeof good, false, msg, sizeof msg),
                     0);
}

/* Produce's call: a batch (compressed or not) of good and bad records. */
static void check_batch(ks_topic_t *t, int codec, bool with_bad, int16_t want,
                        int32_t want_errors)
{
    const uint8_t good[] = {0, 0, 0, 0, 1, 0x02};
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, codec);
    for (int i = 0; i < 4; i++) {
        bool bad = with_bad && (i == 1 || i == 3);
        kp_bytes_t v = bad ? (kp_bytes_t){(const uint8_t *)"21.5 C", 6}
                           : (kp_bytes_t){good, (int32_t)sizeof good};
        assert_int_equal(kp_batch_builder_add(&bb, 1000 + i, (kp_bytes_t){NULL, -1}, v, NULL, 0),
                         0);
    }
    kp_buf_t buf;
    kp_buf_init(&buf);
    assert_int_equal(kp_batch_builder_finish(&bb, &buf), 0);
    kp_batch_builder_deinit(&bb);
    kp_arena_t arena;
    kp_arena_init(&arena, NULL, 0, 1 << 20);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    assert_int_equal(kb_registry_produce_check_r(env.reg, t, buf.data, buf.len, &arena, &out),
                     want);
    assert_int_equal(out.record_errors_count, want_errors);
    if (with_bad && want_errors == 2) {
        assert_int_equal(out.record_errors[0].batch_index, 1);
        assert_int_equal(out.record_errors[1].batch_index, 3);
        assert_non_null(strstr(out.error_message.ptr, "2 of 4 records"));
    }
    kp_arena_deinit(&arena);
    kp_buf_deinit(&buf);
}

static void test_registry_produce_check(void **state)
{
    (void)state;
    int st;
    assert_int_equal(register_schema("sensors-value", V1, &st), 1);
    ks_topic_config_t cfg;
    ks_topic_config_default(&cfg);
    assert_int_equal(ks_topic_config_set(&cfg, "confluent.value.schema.validation", "true"), 0);
    assert_int_equal(ks_topic_config_set(&cfg, "depot.value.schema.validation", "full"), 0);
    assert_int_equal(ks_topic_config_set(&cfg, "confluent.value.subject.name.strategy",
                                         "io.confluent.kafka.serializers.subject."
                                         "TopicNameStrategy"),
                     0);
    assert_int_not_equal(ks_topic_config_set(&cfg, "depot.value.schema.validation", "some"), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(env.store, "sensors", 1, &cfg, &t), 0);
    check_batch(t, KP_COMPRESSION_NONE, false, KP_ERR_NONE, 0);
    check_batch(t, KP_COMPRESSION_NONE, true, KP_ERR_INVALID_RECORD, 2);
    check_batch(t, KP_COMPRESSION_LZ4, true, KP_ERR_INVALID_RECORD, 2);
    check_batch(t, KP_COMPRESSION_ZSTD, false, KP_ERR_NONE, 0);
    /* no registry: everything refused */
    kb_registry_t *r = env.reg;
    env.reg = NULL;
    check_batch(t, KP_COMPRESSION_NONE, false, KP_ERR_INVALID_RECORD, 4);
    env.reg = r;
}

/* After compaction a referenced version's record can come after the schema referencing it
 * (its latest record is a later soft delete): the replay retries such records at the end. */
static void append_raw(const char *const *kv, int n)
{
    kb_registry_close(env.reg);
    env.reg = NULL;
    ks_topic_t *t = ks_topic_find(env.store, "_schemas", 8);
    assert_non_null(t);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    for (int i = 0; i < n; i++)
        assert_int_equal(kp_batch_builder_add(&bb, 1000,
                                              (kp_bytes_t){(const uint8_t *)kv[2 * i],
                                                           (int32_t)strlen(kv[2 * i])},
                                              (kp_bytes_t){(const uint8_t *)kv[2 * i + 1],
                                                           (int32_t)strlen(kv[2 * i + 1])},
                                              NULL, 0),
                         0);
    kp_buf_t buf;
    kp_buf_init(&buf);
    assert_int_equal(kp_batch_builder_finish(&bb, &buf), 0);
    kp_batch_builder_deinit(&bb);
    ks_append_result_t res;
    assert_int_equal(ks_part_append(ks_topic_part(t, 0), buf.data, buf.len, 1000, &res), 0);
    kp_buf_deinit(&buf);
    env_close();
    env_open();
}

static void test_registry_replay_reference_after_referrer(void **state)
{
    (void)state;
    const char *kv[] = {
        "{\"keytype\":\"SCHEMA\",\"subject\":\"r\",\"version\":1,\"magic\":1}",
        "{\"subject\":\"r\",\"version\":1,\"id\":2,\"schema\":\"{\\\"type\\\":"
        "\\\"record\\\",\\\"name\\\":\\\"R\\\",\\\"fields\\\":[{\\\"name\\\":"
        "\\\"u\\\",\\\"type\\\":\\\"Unit\\\"}]}\",\"references\":[{\"name\":"
        "\"Unit\",\"subject\":\"unit\",\"version\":1}],\"deleted\":false}",
        "{\"keytype\":\"SCHEMA\",\"subject\":\"unit\",\"version\":1,\"magic\":1}",
        "{\"subject\":\"unit\",\"version\":1,\"id\":1,\"schema\":\"{\\\"type\\\":"
        "\\\"enum\\\",\\\"name\\\":\\\"Unit\\\",\\\"symbols\\\":[\\\"C\\\"]}\","
        "\"deleted\":true}",
        "{\"keytype\":\"NOOP\",\"magic\":0}", "{}",
        "not json", "{}",
    };
    append_raw(kv, 4);
    int64_t loaded, skipped;
    kb_registry_load_stats(env.reg, &loaded, &skipped);
    assert_int_equal(loaded, 2);
    assert_int_equal(skipped, 2); /* the NOOP and the unreadable key */
    json_t *j;
    assert_int_equal(call("GET", "/schemas/ids/2", NULL, NULL, &j), 200);
    json_decref(j);
    assert_int_equal(call("GET", "/subjects/r/versions/1", NULL, NULL, &j), 200);
    json_decref(j);
    int st;
    assert_int_equal(register_schema("next", "\"long\"", &st), 3); /* ids continue */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry_register_is_idempotent_and_global, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_registry_versions_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_compatibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_delete_soft_then_permanent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_registry_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_check_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_produce_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_replay_reference_after_referrer, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

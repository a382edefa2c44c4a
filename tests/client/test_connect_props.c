/*
 * Connect property files: java.util.Properties syntax, worker and connector validation (the
 * textbook's files verbatim), and the source offset file (atomic replace, several entries).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/connect.h"
#include "protocol/k_status.h"

static kc_props_t parse(const char *text)
{
    kc_props_t p;
    assert_int_equal(kc_props_parse(&p, text, strlen(text)), 0);
    return p;
}

static void test_connect_props_java_syntax(void **state)
{
    (void)state;
    kc_props_t p = parse("# comment\n"
                         "! another comment\n"
                         "\n"
                         "  a=1\n"
                         "b : two words \n"
                         "c three\r\n"
                         "d = first \\\n"
                         "    second\n"
                         "e=tab\\there\\u00e9\n"
                         "f\\=g=h\n"
                         "empty=\n"
                         "novalue\n"
                         "a=overridden\n");
    assert_string_equal(kc_props_get(&p, "a"), "overridden");
    assert_string_equal(kc_props_get(&p, "b"), "two words ");
    assert_string_equal(kc_props_get(&p, "c"), "three");
    assert_string_equal(kc_props_get(&p, "d"), "first second");
    assert_string_equal(kc_props_get(&p, "e"), "tab\there\xc3\xa9");
    assert_string_equal(kc_props_get(&p, "f=g"), "h");
    assert_string_equal(kc_props_get(&p, "empty"), "");
    assert_string_equal(kc_props_get(&p, "novalue"), "");
    assert_null(kc_props_get(&p, "# comment"));
    assert_null(kc_props_get(&p, "missing"));
    kc_props_free(&p);
}

static void test_connect_config_textbook_files(void **state)
{
    (void)state;
    char err[256];
    kc_props_t w = parse("bootstrap.servers=localhost:9094\n"
                         "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
                         "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
                         "offset.storage.file.filename=/tmp/connect.offsets\n"
                         "offset.flush.interval.ms=10000\n");
    kc_worker_config_t wc;
    assert_int_equal(kc_worker_config(&w, &wc, err, sizeof err), 0);
    assert_string_equal(wc.bootstrap, "localhost:9094");
    assert_string_equal(wc.offset_file, "/tmp/connect.offsets");
    assert_int_equal(wc.offset_flush_ms, 10000);
    assert_int_equal(wc.value_conv, KC_CONV_STRING);

    kc_props_t src = parse("name=alert-source\nconnector.class=FileStreamSource\ntasks.max=1\n"
                           "file=alert.txt\ntopic=kinaction_alert_connect\n");
    kc_connector_config_t cc;
    assert_int_equal(kc_connector_config(&src, &cc, err, sizeof err), 0);
    assert_int_equal(cc.kind, KC_FILE_SOURCE);
    assert_string_equal(cc.name, "alert-source");
    assert_string_equal(cc.file, "alert.txt");
    assert_string_equal(cc.topic, "kinaction_alert_connect");
    assert_int_equal(cc.batch_size, 2000);
    kc_connector_config_deinit(&cc);

    kc_props_t sink =
        parse("name=alert-sink\n"
              "connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\n"
              "tasks.max=1\nfile=alert-sink.txt\ntopics=a, b ,,c\n");
    assert_int_equal(kc_connector_config(&sink, &cc, err, sizeof err), 0);
    assert_int_equal(cc.kind, KC_FILE_SINK);
    assert_int_equal(cc.ntopics, 3);
    assert_string_equal(cc.topics[1], "b");
    assert_string_equal(cc.topics[2], "c");
    kc_connector_config_deinit(&cc);
    kc_props_free(&w);
    kc_props_free(&src);
    kc_props_free(&sink);
}

static void expect_bad_connector(const char *text, const char *key)
{
    char err[256] = "";
    kc_props_t p = parse(text);
    kc_connector_config_t cc;
    assert_int_equal(kc_connector_config(&p, &cc, err, sizeof err), K_ERR_INVAL);
    assert_non_null(strstr(err, key));
    kc_connector_config_deinit(&cc);
    kc_props_free(&p);
}

static void test_connect_config_errors_name_the_key(void **state)
{
    (void)state;
    expect_bad_connector("connector.class=FileStreamSource\n", "name");
    expect_bad_connector("name=x\nconnector.class=JdbcSourceConnector\n", "connector.class");
    expect_bad_connector("name=x\nconnector.class=FileStreamSource\n", "topic");
    expect_bad_connector("name=x\nconnector.class=FileStreamSink\nfile=f\n", "topics");
    expect_bad_connector("name=x\nconnector.class=FileStreamSource\ntopic=t\ntasks.max=zero\n",
                         "tasks.max");
    expect_bad_connector("name=x\nconnector.class=FileStreamSource\ntopic=t\nbatch.size=-1\n",
                         "batch.size");
    char err[256];
    kc_worker_config_t wc;
    /* Kafka's stock connect-standalone.properties: JsonConverter, schemas enabled */
    kc_props_t w = parse("value.converter=org.apache.kafka.connect.json.JsonConverter\n"
                         "key.converter=org.apache.kafka.connect.json.JsonConverter\n"
                         "key.converter.schemas.enable=true\n");
    assert_int_equal(kc_worker_config(&w, &wc, err, sizeof err), 0);
    assert_int_equal(wc.value_conv, KC_CONV_JSON_SCHEMA);
    assert_int_equal(wc.key_conv, KC_CONV_JSON_SCHEMA);
    kc_props_free(&w);
    w = parse("value.converter=org.apache.kafka.connect.json.JsonConverter\n"
              "value.converter.schemas.enable=maybe\n");
    assert_int_equal(kc_worker_config(&w, &wc, err, sizeof err), K_ERR_INVAL);
    assert_non_null(strstr(err, "schemas.enable"));
    kc_props_free(&w);
    w = parse("value.converter=org.apache.kafka.connect.json.JsonConverter\n"
              "value.converter.schemas.enable=false\n"
              "key.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n");
    assert_int_equal(kc_worker_config(&w, &wc, err, sizeof err), 0);
    assert_int_equal(wc.value_conv, KC_CONV_JSON_PLAIN);
    assert_int_equal(wc.key_conv, KC_CONV_BYTES);
    kc_props_free(&w);
    w = parse("value.converter=io.confluent.connect.avro.AvroConverter\n");
    assert_int_equal(kc_worker_config(&w, &wc, err, sizeof err), K_ERR_INVAL);
    kc_props_free(&w);
}

static void test_connect_offset_file_replace(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-connect-offsets-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/connect.offsets", dir);
    uint64_t ino;
    int64_t pos;
    assert_int_equal(kc_offset_file_read(path, "a", "f", &ino, &pos), K_ERR_NOENT);
    assert_int_equal(kc_offset_file_write(path, "a", "f", 11, 100), 0);
    assert_int_equal(kc_offset_file_write(path, "b", "g", 12, 200), 0);
    assert_int_equal(kc_offset_file_write(path, "a", "f", 13, 300), 0);
    assert_int_equal(kc_offset_file_read(path, "a", "f", &ino, &pos), 0);
    assert_int_equal(ino, 13);
    assert_int_equal(pos, 300);
    assert_int_equal(kc_offset_file_read(path, "b", "g", &ino, &pos), 0);
    assert_int_equal(pos, 200);
    assert_int_equal(kc_offset_file_read(path, "a", "g", &ino, &pos), K_ERR_NOENT);
    assert_int_equal(kc_offset_file_write(path, "tab\tname", "f", 1, 1), K_ERR_INVAL);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* nothing left behind */
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_props_java_syntax),
        cmocka_unit_test(test_connect_config_textbook_files),
        cmocka_unit_test(test_connect_config_errors_name_the_key),
        cmocka_unit_test(test_connect_offset_file_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

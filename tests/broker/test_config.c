/* Configuration table: parsing, overrides, validation and warnings (broker/core/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/core/config.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kbcfgXXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    kb_log_set_level(KB_LOG_ERROR); /* keep expected warnings out of the test output */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/server.properties", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

static const char *write_props(const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/server.properties", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_config_defaults(void **state)
{
    (void)state;
    kb_config_t cfg;
    char err[256] = "";
    int warn = -1;
    assert_int_equal(kb_config_load(&cfg, NULL, NULL, 0, err, sizeof err, &warn), 0);
    assert_int_equal(warn, 0);
    assert_int_equal(cfg.n_listeners, 1);
    assert_string_equal(cfg.listeners[0].name, "PLAINTEXT");
    assert_int_equal(cfg.listeners[0].security_protocol, KB_SEC_PLAINTEXT);
    assert_string_equal(cfg.listeners[0].host, "127.0.0.1");
    assert_int_equal(cfg.listeners[0].port, 9092);
    assert_string_equal(cfg.listeners[0].advertised_host, "127.0.0.1");
    assert_int_equal(cfg.listeners[0].advertised_port, 9092);
    assert_int_equal(cfg.n_log_dirs, 1);
    assert_string_equal(cfg.log_dirs[0], "./data");
    assert_int_equal(cfg.num_partitions, 1);
    assert_true(cfg.auto_create_topics_enable);
    assert_true(cfg.delete_topic_enable);
    assert_int_equal(cfg.message_max_bytes, 1048588);
    assert_int_equal(cfg.topic_defaults.max_message_bytes, 1048588);
    assert_int_equal(cfg.socket_request_max_bytes, 104857600);
    assert_true(cfg.topic_defaults.segment_bytes == 1073741824);
    assert_true(cfg.topic_defaults.retention_ms == 168LL * 3600 * 1000);
    assert_true(cfg.topic_defaults.segment_ms == 168LL * 3600 * 1000);
    assert_true(cfg.topic_defaults.retention_bytes == -1);
    assert_int_equal(cfg.topic_defaults.timestamp_type, KS_TS_CREATE_TIME);
    assert_int_equal(cfg.full_policy, KS_FULL_REJECT);
    assert_int_equal(cfg.max_open_files, 1024);
    assert_int_equal(cfg.log_level, KB_LOG_INFO);
    assert_int_equal(cfg.group_min_session_timeout_ms, 6000);
    assert_true(cfg.offsets_retention_minutes == 10080);
    for (int i = 0; i < kb_config_count(); i++)
        assert_true(kb_config_is_default(&cfg, i));
    kb_config_deinit(&cfg);
}

static void test_config_file_parsing(void **state)
{
    (void)state;
    const char *path = write_props("# a comment\n"
                                   "! another comment\n"
                                   "\n"
                                   "  listeners = PLAINTEXT://0.0.0.0:19092  \n"
                                   "advertised.listeners: PLAINTEXT://box.local:29092\r\n"
                                   "log.dirs=/a, /b ,/c\n"
                                   "broker.id=7\n"
                                   "num.partitions 3\n"
                                   "auto.create.topics.enable=FALSE\n"
                                   "log.retention.minutes=5\n"
                                   "log.segment.bytes=1048576\n"
                                   "log.dirs.full.policy=delete-oldest\n"
                                   "log.message.timestamp.type=LogAppendTime\n"
                                   "log.level=debug\n");
    kb_config_t cfg;
    char err[256] = "";
    int warn = -1;
    assert_int_equal(kb_config_load(&cfg, path, NULL, 0, err, sizeof err, &warn), 0);
    assert_int_equal(warn, 0);
    assert_string_equal(cfg.listeners[0].host, "0.0.0.0");
    assert_int_equal(cfg.listeners[0].port, 19092);
    assert_string_equal(cfg.listeners[0].advertised_host, "box.local");
    assert_int_equal(cfg.listeners[0].advertised_port, 29092);
    assert_int_equal(cfg.n_log_dirs, 3);
    assert_string_equal(cfg.log_dirs[1], "/b");
    assert_int_equal(cfg.node_id, 7);
    assert_int_equal(cfg.num_partitions, 3);
    assert_false(cfg.auto_create_topics_enable);
    assert_true(cfg.topic_defaults.retention_ms == 5 * 60000);
    assert_true(cfg.topic_defaults.segment_bytes == 1048576);
    assert_int_equal(cfg.full_policy, KS_FULL_DELETE_OLDEST);
    assert_int_equal(cfg.topic_defaults.timestamp_type, KS_TS_LOG_APPEND_TIME);
    assert_int_equal(cfg.log_level, KB_LOG_DEBUG);
    assert_false(kb_config_is_default(&cfg, kb_config_find("log.retention.ms")));
    assert_true(kb_config_is_default(&cfg, kb_config_find("delete.topic.enable")));
    kb_config_deinit(&cfg);
}

static void test_config_overrides_apply_after_file(void **state)
{
    (void)state;
    const char *path = write_props("log.retention.ms=1000\nnode.id=2\nlog.dir=/old\n");
    const char *sets[] = {"node.id=9", "log.retention.hours=1", "message.max.bytes=2000"};
    kb_config_t cfg;
    char err[256] = "";
    assert_int_equal(kb_config_load(&cfg, path, sets, 3, err, sizeof err, NULL), 0);
    assert_int_equal(cfg.node_id, 9);
    /* log.retention.ms is the most specific key and wins over hours wherever it was set. */
    assert_true(cfg.topic_defaults.retention_ms == 1000);
    assert_int_equal(cfg.message_max_bytes, 2000);
    assert_int_equal(cfg.topic_defaults.max_message_bytes, 2000);
    assert_string_equal(cfg.log_dirs[0], "/old");
    kb_config_deinit(&cfg);

    /* log.dirs beats its alias log.dir in either order. */
    const char *sets2[] = {"log.dirs=/new", "log.dir=/other"};
    assert_int_equal(kb_config_load(&cfg, path, sets2, 2, err, sizeof err, NULL), 0);
    assert_int_equal(cfg.n_log_dirs, 1);
    assert_string_equal(cfg.log_dirs[0], "/new");
    kb_config_deinit(&cfg);
}

static void expect_refused(const char *set, const char *key)
{
    kb_config_t cfg;
    char err[256] = "";
    const char *sets[] = {set};
    assert_int_equal(kb_config_load(&cfg, NULL, sets, 1, err, sizeof err, NULL), K_ERR_INVAL);
    if (!strstr(err, key)) fail_msg("error '%s' does not name %s", err, key);
}

static void test_config_bad_values_name_the_key(void **state)
{
    (void)state;
    expect_refused("log.segment.bytes=abc", "log.segment.bytes");
    expect_refused("log.segment.bytes=10", "log.segment.bytes");
    expect_refused("num.partitions=0", "num.partitions");
    expect_refused("auto.create.topics.enable=yes", "auto.create.topics.enable");
    expect_refused("log.dirs.full.policy=panic", "log.dirs.full.policy");
    expect_refused("listeners=SSLX://host:9093", "listeners");
    expect_refused("listeners=PLAINTEXT://host", "listeners");
    expect_refused("listeners=PLAINTEXT://host:70000", "listeners");
    expect_refused("log.dirs= , ", "log.dirs");
    expect_refused("message.max.bytes=12x", "message.max.bytes");
    expect_refused("group.min.session.timeout.ms=999999999", "group.min.session.timeout.ms");
    expect_refused("log.level=verbose", "log.level");
    expect_refused("node.id", "node.id"); /* not KEY=VALUE */
}

static void test_config_unknown_keys_warn(void **state)
{
    (void)state;
    const char *path = write_props("zookeeper.connect=localhost:2181\nnum.partitions=2\n");
    const char *sets[] = {"no.such.key=1"};
    kb_config_t cfg;
    char err[256] = "";
    int warn = 0;
    assert_int_equal(kb_config_load(&cfg, path, sets, 1, err, sizeof err, &warn), 0);
    assert_int_equal(warn, 2);
    assert_int_equal(cfg.num_partitions, 2);
    kb_config_deinit(&cfg);
}

static void test_config_missing_file_refused(void **state)
{
    (void)state;
    kb_config_t cfg;
    char err[256] = "";
    assert_int_equal(
        kb_config_load(&cfg, "/nonexistent/server.properties", NULL, 0, err, sizeof err, NULL),
        K_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/server.properties"));
}

static void test_config_wildcard_listener_and_render(void **state)
{
    (void)state;
    const char *sets[] = {"listeners=PLAINTEXT://:0", "log.dirs=/x,/y"};
    kb_config_t cfg;
    char err[256] = "";
    assert_int_equal(kb_config_load(&cfg, NULL, sets, 2, err, sizeof err, NULL), 0);
    assert_string_equal(cfg.listeners[0].host, "");
    assert_int_equal(cfg.listeners[0].port, 0);
    assert_true(cfg.listeners[0].advertised_host[0] != 0); /* this machine's name */
    char buf[256];
    kb_config_value(&cfg, kb_config_find("log.dirs"), buf, sizeof buf);
    assert_string_equal(buf, "/x,/y");
    kb_config_value(&cfg, kb_config_find("log.retention.hours"), buf, sizeof buf);
    assert_string_equal(buf, "168");
    assert_int_equal(kb_config_find_by_topic_key("retention.ms"),
                     kb_config_find("log.retention.ms"));
    assert_int_equal(kb_config_find("broker.id"), kb_config_find("node.id"));
    kb_config_deinit(&cfg);
}

static void test_config_doc_lists_every_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    kb_config_print_doc(f);
    fclose(f);
    for (int i = 0; i < kb_config_count(); i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "| `%s`", kb_config_info(i)->name);
        assert_non_null(strstr(text, needle));
    }
    free(text);
}

static void test_config_uplink_keys(void **state)
{
    (void)state;
    kb_config_t cfg;
    char err[256] = "";
    const char *path = write_props("uplink.bootstrap.servers=hq:9092\n"
                                   "uplink.producer.security.protocol=SASL_SSL\n"
                                   "uplink.producer.sasl.password=secret\n"
                                   "uplink.producer.security.protocol=SSL\n");
    const char *sets[] = {"uplink.topic.prefix=plant7.", "uplink.producer.linger.ms=50",
                          "uplink.retention.hold=false"};
    int warn = -1;
    assert_int_equal(kb_config_load(&cfg, path, sets, 3, err, sizeof err, &warn), 0);
    assert_int_equal(warn, 0);
    assert_string_equal(cfg.uplink_bootstrap, "hq:9092");
    assert_string_equal(cfg.uplink_topic_prefix, "plant7.");
    assert_string_equal(cfg.uplink_topics, ".*");
    assert_false(cfg.uplink_retention_hold);
    assert_int_equal(cfg.n_uplink_producer, 3); /* the repeated key replaced its value */
    assert_string_equal(cfg.uplink_producer[0], "security.protocol=SSL");
    assert_string_equal(cfg.uplink_producer[1], "sasl.password=secret");
    assert_string_equal(cfg.uplink_producer[2], "linger.ms=50");
    /* DescribeConfigs never shows the passed-through values */
    char val[256];
    kb_config_value(&cfg, kb_config_find("uplink.producer.<key>"), val, sizeof val);
    assert_null(strstr(val, "secret"));
    assert_non_null(strstr(val, "sasl.password"));
    kb_config_deinit(&cfg);
    /* the bare family name is no key; an empty subkey is unknown */
    const char *bad[] = {"uplink.producer.=x"};
    assert_int_equal(kb_config_load(&cfg, NULL, bad, 1, err, sizeof err, &warn), 0);
    assert_int_equal(warn, 1);
    assert_int_equal(cfg.n_uplink_producer, 0);
    assert_null(cfg.uplink_bootstrap);
    kb_config_deinit(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_file_parsing),
        cmocka_unit_test(test_config_overrides_apply_after_file),
        cmocka_unit_test(test_config_bad_values_name_the_key),
        cmocka_unit_test(test_config_unknown_keys_warn),
        cmocka_unit_test(test_config_missing_file_refused),
        cmocka_unit_test(test_config_wildcard_listener_and_render),
        cmocka_unit_test(test_config_doc_lists_every_key),
        cmocka_unit_test(test_config_uplink_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Listener configuration: listeners, listener.security.protocol.map and advertised.listeners
 * parsed and checked together (broker/net/listener_config.c through broker/core/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/core/config.h"
#include "broker/net/listener.h"

static int setup(void **state)
{
    (void)state;
    kb_log_set_level(KB_LOG_ERROR);
    return 0;
}

/* Loads the --set values; returns the status and leaves the message in err. */
static int load(kb_config_t *cfg, char *err, size_t errlen, int n, const char *const *sets)
{
    err[0] = 0;
    return kb_config_load(cfg, NULL, sets, n, err, errlen, NULL);
}

static void expect_error(const char *const *sets, int n, const char *w1, const char *w2)
{
    kb_config_t cfg;
    char err[512];
    assert_int_equal(load(&cfg, err, sizeof err, n, sets), K_ERR_INVAL);
    if (!strstr(err, w1) || (w2 && !strstr(err, w2)))
        fail_msg("error '%s' should mention '%s'%s%s", err, w1, w2 ? " and " : "", w2 ? w2 : "");
}

static void test_listener_two_plaintext_listeners(void **state)
{
    (void)state;
    const char *sets[] = {
        "listeners=PLAINTEXT://127.0.0.1:0, internal://:19094",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:plaintext",
        "advertised.listeners=INTERNAL://box.local:29094",
    };
    kb_config_t cfg;
    char err[512];
    assert_int_equal(load(&cfg, err, sizeof err, 3, sets), 0);
    assert_int_equal(cfg.n_listeners, 2);
    const kb_listener_t *a = &cfg.listeners[0], *b = &cfg.listeners[1];
    assert_string_equal(a->name, "PLAINTEXT");
    assert_string_equal(a->host, "127.0.0.1");
    assert_int_equal(a->port, 0);
    assert_string_equal(a->advertised_host, "127.0.0.1"); /* not named: its own address */
    assert_int_equal(a->advertised_port, 0);              /* filled in when bound */
    assert_string_equal(b->name, "INTERNAL");             /* names are upper-cased */
    assert_int_equal(b->security_protocol, KB_SEC_PLAINTEXT);
    assert_string_equal(b->host, "");
    assert_int_equal(b->port, 19094);
    assert_string_equal(b->advertised_host, "box.local");
    assert_int_equal(b->advertised_port, 29094);

    char buf[512];
    kb_config_value(&cfg, kb_config_find("listeners"), buf, sizeof buf);
    assert_string_equal(buf, "PLAINTEXT://127.0.0.1:0,INTERNAL://:19094");
    kb_config_value(&cfg, kb_config_find("advertised.listeners"), buf, sizeof buf);
    assert_string_equal(buf, "PLAINTEXT://127.0.0.1:0,INTERNAL://box.local:29094");
    kb_config_value(&cfg, kb_config_find("listener.security.protocol.map"), buf, sizeof buf);
    assert_string_equal(buf, "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT");
    assert_false(kb_config_is_default(&cfg, kb_config_find("advertised.listeners")));
    kb_config_deinit(&cfg);
}

static void test_listener_ipv6_and_default_map(void **state)
{
    (void)state;
    const char *sets[] = {"listeners=PLAINTEXT://[::1]:9092"};
    kb_config_t cfg;
    char err[512];
    assert_int_equal(load(&cfg, err, sizeof err, 1, sets), 0);
    assert_string_equal(cfg.listeners[0].host, "::1");
    assert_int_equal(cfg.listeners[0].port, 9092);
    assert_int_equal(cfg.n_protocol_map, 4); /* Kafka's default: each protocol to itself */
    char buf[256];
    kb_config_value(&cfg, kb_config_find("listeners"), buf, sizeof buf);
    assert_string_equal(buf, "PLAINTEXT://[::1]:9092");
    assert_true(kb_config_is_default(&cfg, kb_config_find("listener.security.protocol.map")));
    kb_config_deinit(&cfg);
}

static void test_listener_bad_urls(void **state)
{
    (void)state;
    const char *s1[] = {"listeners=PLAINTEXT:/127.0.0.1:9092"};
    expect_error(s1, 1, "listeners", "NAME://host:port");
    const char *s2[] = {"listeners=PLAINTEXT://127.0.0.1"};
    expect_error(s2, 1, "listeners", ":port");
    const char *s3[] = {"listeners=PLAINTEXT://127.0.0.1:65536"};
    expect_error(s3, 1, "listeners", "bad port");
    const char *s4[] = {"listeners=PLAINTEXT://127.0.0.1:-1"};
    expect_error(s4, 1, "listeners", "bad port");
    const char *s5[] = {"listeners=://127.0.0.1:9092"};
    expect_error(s5, 1, "listeners", "name is missing");
    const char *s6[] = {"listeners=PLAIN TEXT://127.0.0.1:9092"};
    expect_error(s6, 1, "listeners", "letters, digits");
    const char *s7[] = {"listeners=PLAINTEXT://::1:9092"};
    expect_error(s7, 1, "listeners", "[brackets]");
    const char *s8[] = {"listeners=PLAINTEXT://[::1:9092"};
    expect_error(s8, 1, "listeners", "IPv6");
    const char *s9[] = {"listeners= , "};
    expect_error(s9, 1, "listeners", "no listener");
    const char *s10[] = {"listeners=PLAINTEXT://ho/st:9092"};
    expect_error(s10, 1, "listeners", "bad character");
    const char *s11[] = {
        "listeners=A://:1,B://:2,C://:3,D://:4,E://:5,F://:6,G://:7,H://:8,I://:9"};
    expect_error(s11, 1, "listeners", "at most 8");
}

static void test_listener_duplicates(void **state)
{
    (void)state;
    const char *s1[] = {"listeners=PLAINTEXT://:9092,plaintext://:9093"};
    expect_error(s1, 1, "listeners", "PLAINTEXT is given twice");
    const char *s2[] = {"listeners=PLAINTEXT://:9092,B://127.0.0.1:9092",
                        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,B:PLAINTEXT"};
    expect_error(s2, 2, "listeners", "both use port 9092");
    /* Port 0 twice is fine: each gets its own free port. */
    const char *s3[] = {"listeners=PLAINTEXT://127.0.0.1:0,B://127.0.0.1:0",
                        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,B:PLAINTEXT"};
    kb_config_t cfg;
    char err[512];
    assert_int_equal(load(&cfg, err, sizeof err, 2, s3), 0);
    kb_config_deinit(&cfg);
    const char *s4[] = {"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,plaintext:SSL"};
    expect_error(s4, 1, "listener.security.protocol.map", "mapped twice");
    const char *s5[] = {"advertised.listeners=PLAINTEXT://a:1,PLAINTEXT://b:2"};
    expect_error(s5, 1, "advertised.listeners", "given twice");
}

static void test_listener_unknown_protocol_and_map_mismatch(void **state)
{
    (void)state;
    const char *s1[] = {"listener.security.protocol.map=PLAINTEXT:TLS"};
    expect_error(s1, 1, "listener.security.protocol.map", "unknown security protocol 'TLS'");
    const char *s2[] = {"listener.security.protocol.map=PLAINTEXT"};
    expect_error(s2, 1, "listener.security.protocol.map", "NAME:PROTOCOL");
    /* A listener whose name is no protocol and has no map entry. */
    const char *s3[] = {"listeners=INTERNAL://:9094"};
    expect_error(s3, 1, "listener INTERNAL has no security protocol",
                 "listener.security.protocol.map");
    /* A map given replaces the default, so PLAINTEXT is no longer mapped. */
    const char *s4[] = {"listeners=PLAINTEXT://:9092,INTERNAL://:9094",
                        "listener.security.protocol.map=INTERNAL:PLAINTEXT"};
    expect_error(s4, 2, "listener PLAINTEXT has no security protocol", NULL);
    /* advertised.listeners may only name listeners. */
    const char *s5[] = {"advertised.listeners=EXTERNAL://box:9092"};
    expect_error(s5, 1, "advertised.listeners", "EXTERNAL is not one of the listeners");
    const char *s6[] = {"advertised.listeners=PLAINTEXT://0.0.0.0:9092"};
    expect_error(s6, 1, "advertised.listeners", "wildcard");
    const char *s7[] = {"advertised.listeners=PLAINTEXT://:9092"};
    expect_error(s7, 1, "advertised.listeners", "host is required");
}

/* Every security protocol is served now (certificates are checked when the tls subsystem
 * starts, not at configuration time). */
static void test_listener_security_protocols_are_served(void **state)
{
    (void)state;
    const char *s1[] = {"listeners=PLAINTEXT://:9092,SASL_SSL://:9093,SSL://:9094,"
                        "SASL_PLAINTEXT://:9095"};
    kb_config_t cfg;
    char err[512];
    assert_int_equal(load(&cfg, err, sizeof err, 1, s1), 0);
    assert_int_equal(cfg.n_listeners, 4);
    assert_int_equal(cfg.listeners[1].security_protocol, KB_SEC_SASL_SSL);
    assert_int_equal(cfg.listeners[2].security_protocol, KB_SEC_SSL);
    kb_config_deinit(&cfg);
}

static void test_listener_protocol_names(void **state)
{
    (void)state;
    assert_int_equal(kb_security_protocol_parse("sasl_ssl", 8), KB_SEC_SASL_SSL);
    assert_int_equal(kb_security_protocol_parse("SSL", 3), KB_SEC_SSL);
    assert_int_equal(kb_security_protocol_parse("SSLX", 4), -1);
    assert_string_equal(kb_security_protocol_name(KB_SEC_SASL_PLAINTEXT), "SASL_PLAINTEXT");
    assert_string_equal(kb_security_protocol_name(9), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_two_plaintext_listeners),
        cmocka_unit_test(test_listener_ipv6_and_default_map),
        cmocka_unit_test(test_listener_bad_urls),
        cmocka_unit_test(test_listener_duplicates),
        cmocka_unit_test(test_listener_unknown_protocol_and_map_mismatch),
        cmocka_unit_test(test_listener_security_protocols_are_served),
        cmocka_unit_test(test_listener_protocol_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

/* ACL semantics (broker/auth/acl.c): literal, prefixed and wildcard patterns, User:*, hosts,
 * implied operations, DENY over ALLOW, super users, allow.everyone.if.no.acl.found, filters,
 * and the __acls file (round trip, corruption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/acl.h"

static void add(kb_acls_t *a, int res, const char *name, int pat, const char *who,
                const char *host, int op, int perm)
{
    kb_acl_t b = {(int8_t)res, (int8_t)pat, (int8_t)op, (int8_t)perm, (char *)name, (char *)who,
                  (char *)host};
    char why[128];
    assert_int_equal(kb_acl_validate(&b, why, sizeof why), 0);
    assert_int_equal(kb_acls_add(a, &b), 0);
}

static bool can(const kb_acls_t *a, const char *who, const char *host, int op, int res,
                const char *name)
{
    return kb_acls_authorize(a, "User:root; User:CN=ops,OU=plant", false, who, host, op, res,
                             name, strlen(name));
}

static void test_matrix(void **state)
{
    (void)state;
    kb_acls_t *a = kb_acls_new();
    assert_non_null(a);
    add(a, KB_RES_TOPIC, "sensors.", KB_PAT_PREFIXED, "User:alice", "*", KB_OP_WRITE,
        KB_PERM_ALLOW);
    add(a, KB_RES_TOPIC, "sensors.secret", KB_PAT_LITERAL, "User:alice", "*", KB_OP_ALL,
        KB_PERM_DENY);
    add(a, KB_RES_TOPIC, "*", KB_PAT_LITERAL, "User:*", "*", KB_OP_READ, KB_PERM_ALLOW);
    add(a, KB_RES_TOPIC, "*", KB_PAT_LITERAL, "User:mallory", "*", KB_OP_READ, KB_PERM_DENY);
    add(a, KB_RES_GROUP, "g1", KB_PAT_LITERAL, "User:bob", "10.0.0.5", KB_OP_READ, KB_PERM_ALLOW);
    add(a, KB_RES_TOPIC, "cfg", KB_PAT_LITERAL, "User:bob", "*", KB_OP_ALTER_CONFIGS,
        KB_PERM_ALLOW);
    /* prefixed WRITE, and the DESCRIBE it implies */
    assert_true(can(a, "User:alice", "1.1.1.1", KB_OP_WRITE, KB_RES_TOPIC, "sensors.line1"));
    assert_true(can(a, "User:alice", "1.1.1.1", KB_OP_DESCRIBE, KB_RES_TOPIC, "sensors.line1"));
    assert_false(can(a, "User:alice", "1.1.1.1", KB_OP_WRITE, KB_RES_TOPIC, "sensor"));
    assert_false(can(a, "User:alice", "1.1.1.1", KB_OP_WRITE, KB_RES_TOPIC, "other"));
    assert_false(can(a, "User:alice", "1.1.1.1", KB_OP_DELETE, KB_RES_TOPIC, "sensors.x"));
    /* DENY ALL beats the prefixed ALLOW, and the wildcard READ */
    assert_false(can(a, "User:alice", "1.1.1.1", KB_OP_WRITE, KB_RES_TOPIC, "sensors.secret"));
    assert_false(can(a, "User:alice", "1.1.1.1", KB_OP_READ, KB_RES_TOPIC, "sensors.secret"));
    /* User:* READ on every topic, but not for mallory (DENY wins) */
    assert_true(can(a, "User:carol", "1.1.1.1", KB_OP_READ, KB_RES_TOPIC, "anything"));
    assert_false(can(a, "User:mallory", "1.1.1.1", KB_OP_READ, KB_RES_TOPIC, "anything"));
    /* implication widens ALLOW only: User:* READ implies DESCRIBE, mallory's READ DENY does
     * not deny DESCRIBE */
    assert_true(can(a, "User:mallory", "1.1.1.1", KB_OP_DESCRIBE, KB_RES_TOPIC, "anything"));
    assert_true(can(a, "User:carol", "1.1.1.1", KB_OP_DESCRIBE, KB_RES_TOPIC, "anything"));
    /* host matching */
    assert_true(can(a, "User:bob", "10.0.0.5", KB_OP_READ, KB_RES_GROUP, "g1"));
    assert_false(can(a, "User:bob", "10.0.0.6", KB_OP_READ, KB_RES_GROUP, "g1"));
    /* ALTER_CONFIGS implies DESCRIBE_CONFIGS, not the reverse */
    assert_true(can(a, "User:bob", "1.1.1.1", KB_OP_DESCRIBE_CONFIGS, KB_RES_TOPIC, "cfg"));
    assert_false(can(a, "User:bob", "1.1.1.1", KB_OP_ALTER, KB_RES_TOPIC, "cfg"));
    /* super users pass everything, even a DENY; names are exact */
    assert_true(can(a, "User:root", "1.1.1.1", KB_OP_DELETE, KB_RES_CLUSTER, "kafka-cluster"));
    assert_true(can(a, "User:CN=ops,OU=plant", "1.1.1.1", KB_OP_WRITE, KB_RES_TOPIC,
                    "sensors.secret"));
    assert_false(can(a, "User:roo", "1.1.1.1", KB_OP_DELETE, KB_RES_CLUSTER, "kafka-cluster"));
    /* no ACL on the resource at all: the allow.everyone.if.no.acl.found switch */
    assert_false(kb_acls_authorize(a, "", false, "User:x", "h", KB_OP_READ, KB_RES_GROUP, "g9", 2));
    assert_true(kb_acls_authorize(a, "", true, "User:x", "h", KB_OP_READ, KB_RES_GROUP, "g9", 2));
    /* ...but a resource with ACLs for someone else is denied even with the switch on */
    assert_false(kb_acls_authorize(a, "", true, "User:x", "h", KB_OP_READ, KB_RES_GROUP, "g1", 2));
    kb_acls_free(a);
}

static void test_filters_and_validation(void **state)
{
    (void)state;
    kb_acls_t *a = kb_acls_new();
    add(a, KB_RES_TOPIC, "sensors.", KB_PAT_PREFIXED, "User:alice", "*", KB_OP_WRITE,
        KB_PERM_ALLOW);
    add(a, KB_RES_TOPIC, "sensors.a", KB_PAT_LITERAL, "User:bob", "*", KB_OP_READ, KB_PERM_ALLOW);
    add(a, KB_RES_TOPIC, "*", KB_PAT_LITERAL, "User:*", "*", KB_OP_DESCRIBE, KB_PERM_ALLOW);
    add(a, KB_RES_GROUP, "g", KB_PAT_LITERAL, "User:bob", "*", KB_OP_READ, KB_PERM_ALLOW);
    add(a, KB_RES_GROUP, "g", KB_PAT_LITERAL, "User:bob", "*", KB_OP_READ, KB_PERM_ALLOW); /* dup */
    assert_int_equal(kb_acls_count(a), 4);
    int counts[5] = {0};
    kb_acl_filter_t any = {KB_RES_ANY, KB_PAT_ANY, KB_OP_ANY, KB_PERM_ANY, NULL, 0, NULL, 0, NULL, 0};
    kb_acl_filter_t match = {KB_RES_TOPIC, KB_PAT_MATCH, KB_OP_ANY, KB_PERM_ANY, "sensors.a", 9,
                             NULL, 0, NULL, 0};
    kb_acl_filter_t lit = {KB_RES_TOPIC, KB_PAT_LITERAL, KB_OP_ANY, KB_PERM_ANY, "sensors.", 8,
                           NULL, 0, NULL, 0};
    kb_acl_filter_t pre = {KB_RES_TOPIC, KB_PAT_PREFIXED, KB_OP_ANY, KB_PERM_ANY, "sensors.", 8,
                           NULL, 0, NULL, 0};
    kb_acl_filter_t who = {KB_RES_ANY, KB_PAT_ANY, KB_OP_READ, KB_PERM_ALLOW, NULL, 0, "User:bob",
                           8, NULL, 0};
    for (int i = 0; i < kb_acls_count(a); i++) {
        counts[0] += kb_acl_filter_matches(&any, kb_acls_at(a, i));
        counts[1] += kb_acl_filter_matches(&match, kb_acls_at(a, i));
        counts[2] += kb_acl_filter_matches(&lit, kb_acls_at(a, i));
        counts[3] += kb_acl_filter_matches(&pre, kb_acls_at(a, i));
        counts[4] += kb_acl_filter_matches(&who, kb_acls_at(a, i));
    }
    assert_int_equal(counts[0], 4);
    assert_int_equal(counts[1], 3); /* prefixed sensors., literal sensors.a, literal * */
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[3], 1);
    assert_int_equal(counts[4], 2);
    char why[128];
    kb_acl_t bad[] = {
        {KB_RES_ANY, KB_PAT_LITERAL, KB_OP_READ, KB_PERM_ALLOW, "t", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_MATCH, KB_OP_READ, KB_PERM_ALLOW, "t", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_LITERAL, KB_OP_ANY, KB_PERM_ALLOW, "t", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_LITERAL, KB_OP_READ, KB_PERM_ANY, "t", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_LITERAL, KB_OP_READ, KB_PERM_ALLOW, "t", "alice", "*"},
        {KB_RES_CLUSTER, KB_PAT_LITERAL, KB_OP_ALTER, KB_PERM_ALLOW, "c", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_PREFIXED, KB_OP_READ, KB_PERM_ALLOW, "*", "User:a", "*"},
        {KB_RES_TOPIC, KB_PAT_LITERAL, KB_OP_READ, KB_PERM_ALLOW, "", "User:a", "*"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(kb_acl_validate(&bad[i], why, sizeof why) < 0);
    kb_acls_free(a);
}

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void test_file(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kbaclXXXXXX");
    assert_non_null(mkdtemp(dir));
    kb_log_set_level(KB_LOG_ERROR);
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/%s", dir, KB_ACL_FILE);
    kb_acls_t *a;
    assert_int_equal(kb_acls_open(dir, &a, err, sizeof err), 0);
    add(a, KB_RES_TOPIC, "sensors. weird%name", KB_PAT_PREFIXED, "User:CN=x,OU=y", "*",
        KB_OP_WRITE, KB_PERM_ALLOW);
    add(a, KB_RES_CLUSTER, "kafka-cluster", KB_PAT_LITERAL, "User:ops", "10.1.1.1", KB_OP_ALTER,
        KB_PERM_DENY);
    assert_int_equal(kb_acls_save(a), 0);
    kb_acls_free(a);
    assert_int_equal(kb_acls_open(dir, &a, err, sizeof err), 0);
    assert_int_equal(kb_acls_count(a), 2);
    assert_string_equal(kb_acls_at(a, 0)->name, "sensors. weird%name");
    assert_string_equal(kb_acls_at(a, 0)->principal, "User:CN=x,OU=y");
    assert_int_equal(kb_acls_at(a, 1)->permission, KB_PERM_DENY);
    kb_acls_free(a);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    char *line2 = strchr(strchr(buf, '\n') + 1, '\n') + 1;
    line2[12] ^= 1; /* one bit in the second binding */
    rewind(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_int_equal(kb_acls_open(dir, &a, err, sizeof err), K_ERR_CORRUPT);
    assert_non_null(strstr(err, ":3:"));
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_filters_and_validation),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

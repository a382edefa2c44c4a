/*
 * The threaded paths of the admin handlers, through a real broker on its loop thread with the
 * audit trail on, so ThreadSanitizer (make test-tsan) sees them: CreateTopics and DeleteTopics
 * write on libuv's threadpool (kb_offloop_start) after their change intents were held until the
 * flusher thread made them durable (kb_req_hold / kb_req_replay); IncrementalAlterConfigs
 * writes the dynamic configs file there (kb_write_file_durably); InitProducerId reserves its id
 * block there; CreatePartitions and topic IncrementalAlterConfigs write there one request at a
 * time through the topic-change lane (queued requests replayed in turn); Metadata's
 * auto-created topics are written there while the requests that asked wait to be replayed;
 * CreateAcls and AlterUserScramCredentials write their files there, one at a time per file
 * (h_auth_writes.c; the authorizer is on, the plaintext principal a super user).
 * Several of each are in flight at once, from several connections. The handler tests
 * (test_h_admin, ...) call handlers without a connection, which runs all of this inline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "broker_thread.h"
#include "h_test_util.h"
#include "protocol/gen/kp_msgs.h"
#include "protocol/kp_errors.h"
#include "storage/ks_io.h"

#include <stdatomic.h>

/* dispatch.c references handlers weakly, and a weak reference does not pull an object out of
 * libkb.a: these strong references do. */
int (*const linked_handlers[])(kb_req_t *) = {kb_handle_create_topics, kb_handle_delete_topics,
                                             kb_handle_incremental_alter_configs,
                                             kb_handle_init_producer_id,
                                             kb_handle_create_partitions, kb_handle_metadata,
                                             kb_handle_create_acls,
                                             kb_handle_alter_user_scram_credentials};

#define CONNS 3

static tb_t tb;

/* fsync fault injection for the auth files only (the audit trail's and the store's fsyncs go
 * on): raised by the failure test, read on the threadpool. */
static atomic_bool fail_auth_syncs;

static int faulty_fsync(int fd)
{
    char link[64], path[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = atomic_load(&fail_auth_syncs) ? readlink(link, path, sizeof path - 1) : -1;
    if (n > 0 && (path[n] = 0, strstr(path, "__acls") || strstr(path, "__scram"))) {
        errno = EIO;
        return -1;
    }
    return ks_io_posix.fsync(fd);
}

static int setup(void **state)
{
    (void)state;
    static const char authz[] =
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    const char *sets[] = {"audit.enabled=true", authz, "super.users=User:ANONYMOUS"};
    ks_io.fsync = faulty_fsync; /* before the store opens */
    if (tb_open(&tb, "kboff", sets, 3) < 0) return -1;
    return tb_run(&tb);
}

static int teardown(void **state)
{
    (void)state;
    tb_close(&tb);
    ks_io = ks_io_posix;
    return 0;
}

static int client(void)
{
    int fd = tb_connect(&tb, 30); /* generous: TSan slows the threadpool work a lot */
    assert_true(fd >= 0);
    return fd;
}

static void send_req(int fd, int16_t key, int16_t version, int32_t corr, tb_enc_fn enc,
                     const void *msg)
{
    assert_int_equal(tb_send_req(fd, key, version, corr, enc, msg), 0);
}

/* One response frame (heap, caller frees), r left at the body. */
static uint8_t *recv_resp(int fd, int16_t key, int16_t version, int32_t corr, kp_reader_t *r)
{
    uint8_t *buf = tb_recv_resp(fd, key, version, corr, r);
    assert_non_null(buf);
    return buf;
}

static int enc_create(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_create_topics_req_encode(b, v, m);
}

static int enc_delete(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_delete_topics_req_encode(b, v, m);
}

static int enc_alter(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_incremental_alter_configs_req_encode(b, v, m);
}

static int enc_pid(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_init_producer_id_req_encode(b, v, m);
}

static void send_create(int fd, int32_t corr, const char *a, const char *b)
{
    kp_create_topics_req_creatable_topic_t t[2];
    for (int i = 0; i < 2; i++) {
        kp_create_topics_req_creatable_topic_init(&t[i]);
        t[i].name = kp_str(i ? b : a);
        t[i].num_partitions = 2;
        t[i].replication_factor = 1;
    }
    kp_create_topics_req_t m;
    kp_create_topics_req_init(&m);
    m.topics = t;
    m.topics_count = 2;
    m.timeout_ms = 30000;
    send_req(fd, KP_API_CREATE_TOPICS, 7, corr, enc_create, &m);
}

/* The two topics' error codes. */
static void recv_create(int fd, int32_t corr, int16_t errs[2])
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_CREATE_TOPICS, 7, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_create_topics_resp_t resp;
    assert_int_equal(kp_create_topics_resp_decode(&r, 7, &a, &resp), 0);
    assert_int_equal(resp.topics_count, 2);
    errs[0] = resp.topics[0].error_code;
    errs[1] = resp.topics[1].error_code;
    kp_arena_deinit(&a);
    free(buf);
}

static void topic_name(char *out, size_t n, int conn, int k)
{
    snprintf(out, n, "off-%d-%d", conn, k);
}

typedef void (*pair_send_fn)(int fd, int32_t corr, const char *a, const char *b);
typedef void (*pair_recv_fn)(int fd, int32_t corr, int16_t errs[2]);

/* CONNS connections each send two requests (two topics each) before reading any answer, so
 * the intents, the holds, the replays and the threadpool writes of all of them overlap; every
 * topic answers `first`. Then the same again, answering `again`. */
static void pairs_in_flight(pair_send_fn send_fn, pair_recv_fn recv_fn, int32_t corr,
                            int16_t first, int16_t again)
{
    int fds[CONNS];
    char a[32], b[32];
    for (int round = 0; round < 2; round++) {
        for (int c = 0; c < CONNS; c++) {
            fds[c] = client();
            for (int k = 0; k < 2; k++) {
                topic_name(a, sizeof a, c, 2 * k);
                topic_name(b, sizeof b, c, 2 * k + 1);
                send_fn(fds[c], corr + k, a, b);
            }
        }
        int16_t want = round ? again : first;
        for (int c = 0; c < CONNS; c++) {
            for (int k = 0; k < 2; k++) {
                int16_t errs[2];
                recv_fn(fds[c], corr + k, errs);
                assert_int_equal(errs[0], want);
                assert_int_equal(errs[1], want);
            }
            close(fds[c]);
        }
    }
}

/* CreateTopics from every connection at once; the second time TOPIC_ALREADY_EXISTS. */
static void test_create_topics_in_flight_together(void **state)
{
    (void)state;
    pairs_in_flight(send_create, recv_create, 100, KP_ERR_NONE, KP_ERR_TOPIC_ALREADY_EXISTS);
}

static void send_alter(int fd, int32_t corr, const char *retention_ms)
{
    kp_incremental_alter_configs_req_alterable_config_t c;
    kp_incremental_alter_configs_req_alterable_config_init(&c);
    c.name = kp_str("log.retention.ms");
    c.config_operation = 0; /* SET */
    c.value = kp_str(retention_ms);
    kp_incremental_alter_configs_req_alter_configs_resource_t res;
    kp_incremental_alter_configs_req_alter_configs_resource_init(&res);
    res.resource_type = 4; /* BROKER; "" is the cluster-wide default */
    res.resource_name = kp_str("");
    res.configs = &c;
    res.configs_count = 1;
    kp_incremental_alter_configs_req_t m;
    kp_incremental_alter_configs_req_init(&m);
    m.resources = &res;
    m.resources_count = 1;
    send_req(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, corr, enc_alter, &m);
}

static int16_t recv_alter(int fd, int32_t corr)
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_incremental_alter_configs_resp_t resp;
    assert_int_equal(kp_incremental_alter_configs_resp_decode(&r, 1, &a, &resp), 0);
    assert_int_equal(resp.responses_count, 1);
    int16_t err = resp.responses[0].error_code;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

/* Dynamic config changes from several connections at once: each answered after its file
 * write on the threadpool, and the file holds the value of the last one written. */
static void test_alter_configs_written_off_the_loop(void **state)
{
    (void)state;
    int fds[CONNS];
    char v[32];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = client();
        for (int k = 0; k < 3; k++) {
            snprintf(v, sizeof v, "%d", 3600000 + 10 * c + k);
            send_alter(fds[c], 200 + k, v);
        }
    }
    for (int c = 0; c < CONNS; c++) {
        for (int k = 0; k < 3; k++)
            assert_int_equal(recv_alter(fds[c], 200 + k), KP_ERR_NONE);
        close(fds[c]);
    }
    /* one more, alone: once it is answered, the file holds exactly its value */
    int fd = client();
    send_alter(fd, 210, "7200000");
    assert_int_equal(recv_alter(fd, 210), KP_ERR_NONE);
    close(fd);
    char path[128], text[4096];
    snprintf(path, sizeof path, "%s/depot-broker-configs.properties", tb.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    assert_non_null(strstr(text, "log.retention.ms=7200000\n"));
}

static int enc_acl(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_create_acls_req_encode(b, v, m);
}

static int enc_scram(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_alter_user_scram_credentials_req_encode(b, v, m);
}

/* CreateAcls v1 of one binding: User:alice may WRITE topic `topic`. */
static void send_acl(int fd, int32_t corr, const char *topic)
{
    kp_create_acls_req_acl_creation_t c;
    kp_create_acls_req_acl_creation_init(&c);
    c.resource_type = 2;         /* TOPIC */
    c.resource_pattern_type = 3; /* LITERAL */
    c.resource_name = kp_str(topic);
    c.principal = kp_str("User:alice");
    c.host = kp_str("*");
    c.operation = 4;       /* WRITE */
    c.permission_type = 3; /* ALLOW */
    kp_create_acls_req_t m;
    kp_create_acls_req_init(&m);
    m.creations = &c;
    m.creations_count = 1;
    send_req(fd, KP_API_CREATE_ACLS, 1, corr, enc_acl, &m);
}

static int16_t recv_acl(int fd, int32_t corr)
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_CREATE_ACLS, 1, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_create_acls_resp_t resp;
    assert_int_equal(kp_create_acls_resp_decode(&r, 1, &a, &resp), 0);
    assert_int_equal(resp.results_count, 1);
    int16_t err = resp.results[0].error_code;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

/* AlterUserScramCredentials v0: one SCRAM-SHA-256 upsertion for user. */
static void send_scram(int fd, int32_t corr, const char *user)
{
    uint8_t salt[16], salted[32]; /* any bytes of the right sizes */
    memset(salt, 's', sizeof salt);
    memset(salted, 'p', sizeof salted);
    kp_alter_user_scram_credentials_req_scram_credential_upsertion_t u;
    kp_alter_user_scram_credentials_req_scram_credential_upsertion_init(&u);
    u.name = kp_str(user);
    u.mechanism = 1; /* SCRAM-SHA-256 */
    u.iterations = 4096;
    u.salt = (kp_bytes_t){salt, sizeof salt};
    u.salted_password = (kp_bytes_t){salted, sizeof salted};
    kp_alter_user_scram_credentials_req_t m;
    kp_alter_user_scram_credentials_req_init(&m);
    m.upsertions = &u;
    m.upsertions_count = 1;
    send_req(fd, KP_API_ALTER_USER_SCRAM_CREDENTIALS, 0, corr, enc_scram, &m);
}

static int16_t recv_scram(int fd, int32_t corr)
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_ALTER_USER_SCRAM_CREDENTIALS, 0, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_alter_user_scram_credentials_resp_t resp;
    assert_int_equal(kp_alter_user_scram_credentials_resp_decode(&r, 0, &a, &resp), 0);
    assert_int_equal(resp.results_count, 1);
    int16_t err = resp.results[0].error_code;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

/* Lines of tb.dir/name that are not comments. */
static int data_lines(const char *name)
{
    char path[256], line[2048];
    snprintf(path, sizeof path, "%s/%s", tb.dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += line[0] != '#';
    fclose(f);
    return n;
}

/* ACL and credential changes from several connections at once, each answered after its file
 * write on the threadpool; once the last is answered, the files hold every one of them. */
static void test_acls_and_credentials_written_off_the_loop(void **state)
{
    (void)state;
    int fds[CONNS];
    char name[32];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = client();
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "acl-%d-%d", c, k);
            send_acl(fds[c], 600 + k, name);
        }
        snprintf(name, sizeof name, "user-%d", c);
        send_scram(fds[c], 602, name);
    }
    for (int c = 0; c < CONNS; c++) {
        for (int k = 0; k < 2; k++)
            assert_int_equal(recv_acl(fds[c], 600 + k), KP_ERR_NONE);
        assert_int_equal(recv_scram(fds[c], 602), KP_ERR_NONE);
        close(fds[c]);
    }
    int fd = client();
    send_acl(fd, 610, "acl-last");
    assert_int_equal(recv_acl(fd, 610), KP_ERR_NONE);
    close(fd);
    assert_int_equal(data_lines("__acls"), 2 * CONNS + 1);
    assert_int_equal(data_lines("__scram_credentials"), CONNS);
}

/* Failed writes (EIO from fsync) answer UNKNOWN_SERVER_ERROR and leave memory as the disk:
 * the next change written after them holds none of the failed ones. */
static void test_failed_auth_writes_change_nothing(void **state)
{
    (void)state;
    int acls = data_lines("__acls"), users = data_lines("__scram_credentials");
    atomic_store(&fail_auth_syncs, true);
    int fd = client();
    send_acl(fd, 700, "acl-failed-0");
    send_acl(fd, 701, "acl-failed-1");
    send_scram(fd, 702, "user-failed");
    assert_int_equal(recv_acl(fd, 700), KP_ERR_UNKNOWN_SERVER_ERROR);
    assert_int_equal(recv_acl(fd, 701), KP_ERR_UNKNOWN_SERVER_ERROR);
    assert_int_equal(recv_scram(fd, 702), KP_ERR_UNKNOWN_SERVER_ERROR);
    atomic_store(&fail_auth_syncs, false);
    send_acl(fd, 710, "acl-after");
    send_scram(fd, 711, "user-after");
    assert_int_equal(recv_acl(fd, 710), KP_ERR_NONE);
    assert_int_equal(recv_scram(fd, 711), KP_ERR_NONE);
    close(fd);
    assert_int_equal(data_lines("__acls"), acls + 1);
    assert_int_equal(data_lines("__scram_credentials"), users + 1);
}

static int enc_grow(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_create_partitions_req_encode(b, v, m);
}

static void send_grow(int fd, int32_t corr, const char *a, const char *b)
{
    kp_create_partitions_req_create_partitions_topic_t t[2];
    for (int i = 0; i < 2; i++) {
        t[i].name = kp_str(i ? b : a);
        t[i].count = 3;
        t[i].assignments = NULL;
        t[i].assignments_count = -1;
    }
    kp_create_partitions_req_t m;
    kp_create_partitions_req_init(&m);
    m.topics = t;
    m.topics_count = 2;
    m.timeout_ms = 30000;
    send_req(fd, KP_API_CREATE_PARTITIONS, 3, corr, enc_grow, &m);
}

static void recv_grow(int fd, int32_t corr, int16_t errs[2])
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_CREATE_PARTITIONS, 3, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_create_partitions_resp_t resp;
    assert_int_equal(kp_create_partitions_resp_decode(&r, 3, &a, &resp), 0);
    assert_int_equal(resp.results_count, 2);
    errs[0] = resp.results[0].error_code;
    errs[1] = resp.results[1].error_code;
    kp_arena_deinit(&a);
    free(buf);
}

/* CreatePartitions of the topics made above, from every connection at once: they pass the
 * lane one request at a time; the second round finds 3 already (INVALID_PARTITIONS). */
static void test_create_partitions_in_flight_together(void **state)
{
    (void)state;
    pairs_in_flight(send_grow, recv_grow, 500, KP_ERR_NONE, KP_ERR_INVALID_PARTITIONS);
}

static void send_topic_cfg(int fd, int32_t corr, const char *a, const char *b)
{
    kp_incremental_alter_configs_req_alterable_config_t c;
    kp_incremental_alter_configs_req_alterable_config_init(&c);
    c.name = kp_str("retention.ms");
    c.config_operation = 0; /* SET */
    c.value = kp_str("5400000");
    kp_incremental_alter_configs_req_alter_configs_resource_t res[2];
    for (int i = 0; i < 2; i++) {
        kp_incremental_alter_configs_req_alter_configs_resource_init(&res[i]);
        res[i].resource_type = 2; /* TOPIC */
        res[i].resource_name = kp_str(i ? b : a);
        res[i].configs = &c;
        res[i].configs_count = 1;
    }
    kp_incremental_alter_configs_req_t m;
    kp_incremental_alter_configs_req_init(&m);
    m.resources = res;
    m.resources_count = 2;
    send_req(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, corr, enc_alter, &m);
}

static void recv_topic_cfg(int fd, int32_t corr, int16_t errs[2])
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_incremental_alter_configs_resp_t resp;
    assert_int_equal(kp_incremental_alter_configs_resp_decode(&r, 1, &a, &resp), 0);
    assert_int_equal(resp.responses_count, 2);
    errs[0] = resp.responses[0].error_code;
    errs[1] = resp.responses[1].error_code;
    kp_arena_deinit(&a);
    free(buf);
}

/* Topic config changes (two topics a request) from every connection at once. */
static void test_topic_configs_in_flight_together(void **state)
{
    (void)state;
    pairs_in_flight(send_topic_cfg, recv_topic_cfg, 600, KP_ERR_NONE, KP_ERR_NONE);
}

static int enc_meta(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_metadata_req_encode(b, v, m);
}

static void send_meta(int fd, int32_t corr, const char *a, const char *b, bool create)
{
    kp_metadata_req_metadata_request_topic_t t[2];
    memset(t, 0, sizeof t);
    t[0].name = kp_str(a);
    t[1].name = kp_str(b);
    kp_metadata_req_t m;
    kp_metadata_req_init(&m);
    m.topics = t;
    m.topics_count = 2;
    m.allow_auto_topic_creation = create;
    send_req(fd, KP_API_METADATA, 7, corr, enc_meta, &m);
}

/* The two topics' error codes and partition counts. */
static void recv_meta(int fd, int32_t corr, int16_t errs[2], int32_t parts[2])
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_METADATA, 7, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_metadata_resp_t resp;
    assert_int_equal(kp_metadata_resp_decode(&r, 7, &a, &resp), 0);
    assert_int_equal(resp.topics_count, 2);
    for (int i = 0; i < 2; i++) {
        errs[i] = resp.topics[i].error_code;
        parts[i] = resp.topics[i].partitions_count;
    }
    kp_arena_deinit(&a);
    free(buf);
}

/* Metadata auto-creating new topics from every connection at once, every connection asking
 * for the same four: one creation each, shared by the requests that meet it in flight; each is
 * answered once the topic exists (LEADER_NOT_AVAILABLE for the one it waited for, as Kafka
 * answers a topic it just made). Then all four are there. */
static void test_auto_created_in_flight_together(void **state)
{
    (void)state;
    int fds[CONNS];
    int16_t errs[2];
    int32_t parts[2];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = client();
        for (int k = 0; k < 2; k++)
            send_meta(fds[c], 700 + k, k ? "auto-2" : "auto-0", k ? "auto-3" : "auto-1", true);
    }
    for (int c = 0; c < CONNS; c++) {
        for (int k = 0; k < 2; k++) {
            recv_meta(fds[c], 700 + k, errs, parts);
            for (int i = 0; i < 2; i++)
                assert_true(errs[i] == KP_ERR_NONE || errs[i] == KP_ERR_LEADER_NOT_AVAILABLE);
        }
        close(fds[c]);
    }
    int fd = client();
    for (int k = 0; k < 2; k++) {
        send_meta(fd, 710 + k, k ? "auto-2" : "auto-0", k ? "auto-3" : "auto-1", false);
        recv_meta(fd, 710 + k, errs, parts);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(errs[i], KP_ERR_NONE);
            assert_int_equal(parts[i], 1);
        }
    }
    close(fd);
}

static void send_pid(int fd, int32_t corr)
{
    kp_init_producer_id_req_t m;
    kp_init_producer_id_req_init(&m);
    m.transactional_id = (kp_str_t){NULL, -1};
    m.transaction_timeout_ms = 60000;
    send_req(fd, KP_API_INIT_PRODUCER_ID, 4, corr, enc_pid, &m);
}

static int64_t recv_pid(int fd, int32_t corr)
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_INIT_PRODUCER_ID, 4, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_init_producer_id_resp_t resp;
    assert_int_equal(kp_init_producer_id_resp_decode(&r, 4, &a, &resp), 0);
    assert_int_equal(resp.error_code, KP_ERR_NONE);
    int64_t pid = resp.producer_id;
    kp_arena_deinit(&a);
    free(buf);
    return pid;
}

/* The first ids wait for the id block written on the threadpool, all of them together:
 * every answer is a distinct id. */
static void test_producer_ids_wait_for_their_block(void **state)
{
    (void)state;
    enum { PER = 8 };
    int fds[CONNS];
    int64_t ids[CONNS * PER];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = client();
        for (int k = 0; k < PER; k++)
            send_pid(fds[c], 300 + k);
    }
    for (int c = 0; c < CONNS; c++) {
        for (int k = 0; k < PER; k++) {
            ids[c * PER + k] = recv_pid(fds[c], 300 + k);
            assert_true(ids[c * PER + k] >= 0);
            for (int j = 0; j < c * PER + k; j++)
                assert_true(ids[j] != ids[c * PER + k]);
        }
        close(fds[c]);
    }
}

static void send_delete(int fd, int32_t corr, const char *a, const char *b)
{
    kp_str_t names[2] = {kp_str(a), kp_str(b)};
    kp_delete_topics_req_t m;
    kp_delete_topics_req_init(&m);
    m.topic_names = names;
    m.topic_names_count = 2;
    m.timeout_ms = 30000;
    send_req(fd, KP_API_DELETE_TOPICS, 4, corr, enc_delete, &m);
}

static void recv_delete(int fd, int32_t corr, int16_t errs[2])
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_DELETE_TOPICS, 4, corr, &r);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_delete_topics_resp_t resp;
    assert_int_equal(kp_delete_topics_resp_decode(&r, 4, &a, &resp), 0);
    assert_int_equal(resp.responses_count, 2);
    errs[0] = resp.responses[0].error_code;
    errs[1] = resp.responses[1].error_code;
    kp_arena_deinit(&a);
    free(buf);
}

/* The topics made above deleted from every connection at once; a second delete finds none. */
static void test_delete_topics_in_flight_together(void **state)
{
    (void)state;
    pairs_in_flight(send_delete, recv_delete, 400, KP_ERR_NONE,
                    KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_topics_in_flight_together),
        cmocka_unit_test(test_create_partitions_in_flight_together),
        cmocka_unit_test(test_topic_configs_in_flight_together),
        cmocka_unit_test(test_auto_created_in_flight_together),
        cmocka_unit_test(test_alter_configs_written_off_the_loop),
        cmocka_unit_test(test_producer_ids_wait_for_their_block),
        cmocka_unit_test(test_delete_topics_in_flight_together),
        cmocka_unit_test(test_acls_and_credentials_written_off_the_loop),
        cmocka_unit_test(test_failed_auth_writes_change_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

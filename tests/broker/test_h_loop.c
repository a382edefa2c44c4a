/*
 * The data-path handlers' pending paths through a real broker on loopback: Produce acks=-1
 * answered after the fsync, Fetch long polls (timeout at log end, woken by a produce on another
 * connection), a client that vanishes while its fetch is parked, and acks=0 failures closing
 * the connection. Requests are built with the generated codec, as a client would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "broker_thread.h"
#include "h_test_util.h"
#include "storage/ks_io.h"

#include <errno.h>
#include <stdatomic.h>

/* fsync fault injection: the seam is installed before the store opens and consults this flag,
 * which the last test raises (the flusher thread reads it). */
static atomic_bool fail_syncs;

static int faulty_fdatasync(int fd)
{
    if (atomic_load(&fail_syncs)) {
        errno = EIO;
        return -1;
    }
    return ks_io_posix.fdatasync(fd);
}

static int faulty_fsync(int fd)
{
    if (atomic_load(&fail_syncs)) {
        errno = EIO;
        return -1;
    }
    return ks_io_posix.fsync(fd);
}

/* dispatch.c references handlers weakly, and a weak reference does not pull an object out of
 * libkb.a: these strong references do. */
int (*const linked_handlers[])(kb_req_t *) = {kb_handle_produce, kb_handle_fetch};

static tb_t tb;
static kp_uuid_t topic_id; /* of "t" */

static int setup(void **state)
{
    (void)state;
    ks_io.fdatasync = faulty_fdatasync;
    ks_io.fsync = faulty_fsync;
    if (tb_open(&tb, "kbloop", NULL, 0) < 0)
        return -1;
    /* topics are made before the loop thread runs: the store belongs to that thread after */
    ks_topic_t *t;
    if (ks_topic_create(kb_broker_store(tb.broker), "t", 2, NULL, &t) < 0)
        return -1;
    topic_id = ks_topic_id(t);
    return tb_run(&tb);
}

static int teardown(void **state)
{
    (void)state;
    tb_close(&tb);
    ks_io = ks_io_posix;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int client(void)
{
    int fd = tb_connect(&tb, 10);
    assert_true(fd >= 0);
    return fd;
}

static void send_req(int fd, int16_t key, int16_t version, int32_t corr, tb_enc_fn enc,
                     const void *msg)
{
    assert_int_equal(tb_send_req(fd, key, version, corr, enc, msg), 0);
}

/* One response frame (heap, caller frees), r left at the body; NULL at the end of the stream. */
static uint8_t *recv_resp(int fd, int16_t key, int16_t version, int32_t corr, kp_reader_t *r)
{
    uint8_t *buf = tb_recv_resp(fd, key, version, corr, r);
    if (!buf) assert_int_not_equal(errno, EPROTO); /* closed, not a wrong answer */
    return buf;
}

static int enc_produce(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_produce_req_encode(b, v, m);
}

static int enc_fetch(kp_buf_t *b, int16_t v, const void *m)
{
    return kp_fetch_req_encode(b, v, m);
}

/* Produce of one n-record batch; returns the partition's error and base offset (or -2 when
 * the connection closed instead of answering). */
static int16_t produce_v(int fd, int16_t version, int16_t acks, int32_t partition, int n,
                         int64_t *base)
{
    kp_buf_t batch;
    kp_buf_init(&batch);
    assert_int_equal(make_batch(&batch, KP_COMPRESSION_NONE, n, 1000, 16), 0);
    kp_produce_req_partition_produce_data_t pd;
    kp_produce_req_partition_produce_data_init(&pd);
    pd.index = partition;
    pd.records = (kp_bytes_t){batch.data, (int32_t)batch.len};
    kp_produce_req_topic_produce_data_t td;
    kp_produce_req_topic_produce_data_init(&td);
    td.name = kp_str("t");
    td.partition_data = &pd;
    td.partition_data_count = 1;
    kp_produce_req_t m;
    kp_produce_req_init(&m);
    m.acks = acks;
    m.timeout_ms = 5000;
    m.topic_data = &td;
    m.topic_data_count = 1;
    send_req(fd, KP_API_PRODUCE, version, 11, enc_produce, &m);
    kp_buf_deinit(&batch);
    if (acks == 0)
        return KP_ERR_NONE;
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_PRODUCE, version, 11, &r);
    if (!buf)
        return -2;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_produce_resp_t resp;
    assert_int_equal(kp_produce_resp_decode(&r, version, &a, &resp), 0);
    assert_int_equal(resp.responses_count, 1);
    assert_int_equal(resp.responses[0].partition_responses_count, 1);
    int16_t err = resp.responses[0].partition_responses[0].error_code;
    *base = resp.responses[0].partition_responses[0].base_offset;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

static int16_t produce(int fd, int16_t acks, int32_t partition, int n, int64_t *base)
{
    return produce_v(fd, 9, acks, partition, n, base);
}

static void send_fetch_v(int fd, int16_t version, int32_t corr, int64_t offset,
                         int32_t max_wait_ms)
{
    kp_fetch_req_fetch_partition_t fp;
    kp_fetch_req_fetch_partition_init(&fp);
    fp.partition = 1;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    kp_fetch_req_fetch_topic_t ft;
    kp_fetch_req_fetch_topic_init(&ft);
    ft.topic = kp_str("t");
    ft.topic_id = topic_id;
    ft.partitions = &fp;
    ft.partitions_count = 1;
    kp_fetch_req_t m;
    kp_fetch_req_init(&m);
    m.max_wait_ms = max_wait_ms;
    m.min_bytes = 1;
    m.max_bytes = 1 << 20;
    m.topics = &ft;
    m.topics_count = 1;
    send_req(fd, KP_API_FETCH, version, corr, enc_fetch, &m);
}

static void send_fetch(int fd, int32_t corr, int64_t offset, int32_t max_wait_ms)
{
    send_fetch_v(fd, 11, corr, offset, max_wait_ms);
}

/* Reads a fetch answer: the partition's error, high watermark and record bytes. */
static int16_t recv_fetch_v(int fd, int16_t version, int32_t corr, int64_t *hw,
                            int32_t *bytes)
{
    kp_reader_t r;
    uint8_t *buf = recv_resp(fd, KP_API_FETCH, version, corr, &r);
    assert_non_null(buf);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    kp_fetch_resp_t resp;
    assert_int_equal(kp_fetch_resp_decode(&r, version, &a, &resp), 0);
    assert_int_equal(resp.responses_count, 1);
    assert_int_equal(resp.responses[0].partitions_count, 1);
    kp_fetch_resp_partition_data_t *pd = &resp.responses[0].partitions[0];
    int16_t err = pd->error_code;
    *hw = pd->high_watermark;
    *bytes = pd->records.len;
    kp_arena_deinit(&a);
    free(buf);
    return err;
}

static int16_t recv_fetch(int fd, int32_t corr, int64_t *hw, int32_t *bytes)
{
    return recv_fetch_v(fd, 11, corr, hw, bytes);
}

static void test_loop_produce_acks_all_then_one(void **state)
{
    (void)state;
    int fd = client();
    int64_t base = -1;
    assert_int_equal(produce(fd, -1, 0, 5, &base), KP_ERR_NONE);
    assert_int_equal(base, 0);
    assert_int_equal(produce(fd, 1, 0, 3, &base), KP_ERR_NONE);
    assert_int_equal(base, 5);
    assert_int_equal(produce(fd, -1, 0, 2, &base), KP_ERR_NONE);
    assert_int_equal(base, 8);
    close(fd);
}

static void test_loop_fetch_at_end_waits_max_wait(void **state)
{
    (void)state;
    int fd = client();
    int64_t hw;
    int32_t bytes;
    double t0 = now_s();
    send_fetch(fd, 21, 0, 300); /* partition 1 is empty: offset 0 is its log end */
    assert_int_equal(recv_fetch(fd, 21, &hw, &bytes), KP_ERR_NONE);
    double took = now_s() - t0;
    assert_true(took >= 0.25 && took < 3.0);
    assert_int_equal(hw, 0);
    assert_int_equal(bytes, 0);
    close(fd);
}

static void test_loop_parked_fetch_woken_by_produce(void **state)
{
    (void)state;
    int fetcher = client(), producer = client();
    int64_t hw, base;
    int32_t bytes;
    double t0 = now_s();
    send_fetch(fetcher, 31, 0, 8000);
    usleep(100 * 1000);
    assert_int_equal(produce(producer, 1, 1, 4, &base), KP_ERR_NONE);
    assert_int_equal(base, 0);
    assert_int_equal(recv_fetch(fetcher, 31, &hw, &bytes), KP_ERR_NONE);
    assert_true(now_s() - t0 < 4.0);
    assert_int_equal(hw, 4);
    assert_true(bytes > KP_BATCH_HEADER_SIZE);
    /* past the end: an immediate error, even with a long max_wait */
    send_fetch(fetcher, 32, 9, 8000);
    assert_int_equal(recv_fetch(fetcher, 32, &hw, &bytes), KP_ERR_OFFSET_OUT_OF_RANGE);
    close(fetcher);
    close(producer);
}

static void test_loop_client_gone_while_parked(void **state)
{
    (void)state;
    int fd = client();
    send_fetch(fd, 41, 4, 400);
    usleep(50 * 1000);
    close(fd); /* the waiter must still finish its request at the timeout */
    usleep(600 * 1000);
    /* the broker still serves */
    fd = client();
    int64_t hw;
    int32_t bytes;
    send_fetch(fd, 42, 0, 0);
    assert_int_equal(recv_fetch(fd, 42, &hw, &bytes), KP_ERR_NONE);
    assert_true(bytes > 0);
    close(fd);
}

static void test_loop_acks0_failure_closes(void **state)
{
    (void)state;
    int fd = client();
    int64_t base;
    assert_int_equal(produce(fd, 0, 7, 1, &base), KP_ERR_NONE); /* no such partition */
    uint8_t byte;
    assert_int_equal(recv(fd, &byte, 1, 0), 0); /* closed, nothing sent */
    close(fd);
    fd = client();
    assert_int_equal(produce(fd, 0, 0, 1, &base), KP_ERR_NONE);
    assert_int_equal(produce(fd, 1, 0, 1, &base), KP_ERR_NONE); /* in step: no stray answer */
    assert_int_equal(base, 11);
    close(fd);
}

/* The newest versions: flexible encodings, Fetch by topic id (v13+). */
static void test_loop_flexible_versions(void **state)
{
    (void)state;
    int fd = client();
    int64_t base, hw;
    int32_t bytes;
    assert_int_equal(produce_v(fd, 11, -1, 1, 2, &base), KP_ERR_NONE);
    assert_int_equal(base, 4);
    assert_int_equal(produce_v(fd, 3, 1, 1, 1, &base), KP_ERR_NONE);
    assert_int_equal(base, 6);
    for (int16_t v = 12; v <= 17; v++) {
        send_fetch_v(fd, v, 50 + v, 0, 0);
        assert_int_equal(recv_fetch_v(fd, v, 50 + v, &hw, &bytes), KP_ERR_NONE);
        assert_int_equal(hw, 7);
        assert_true(bytes > 0);
    }
    close(fd);
}

/* acks=-1 whose fsync fails: the batch was appended but is not durable, so the partition
 * answers KAFKA_STORAGE_ERROR (retriable), never success. Runs last: the partition stays
 * failed. */
static void test_loop_acks_all_fsync_failure(void **state)
{
    (void)state;
    int fd = client();
    int64_t base = 0;
    atomic_store(&fail_syncs, true);
    assert_int_equal(produce(fd, -1, 0, 2, &base), KP_ERR_KAFKA_STORAGE_ERROR);
    assert_int_equal(base, -1);
    atomic_store(&fail_syncs, false);
    assert_int_equal(produce(fd, -1, 0, 1, &base), KP_ERR_KAFKA_STORAGE_ERROR);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_produce_acks_all_then_one),
        cmocka_unit_test(test_loop_fetch_at_end_waits_max_wait),
        cmocka_unit_test(test_loop_parked_fetch_woken_by_produce),
        cmocka_unit_test(test_loop_client_gone_while_parked),
        cmocka_unit_test(test_loop_acks0_failure_closes),
        cmocka_unit_test(test_loop_flexible_versions),
        cmocka_unit_test(test_loop_acks_all_fsync_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

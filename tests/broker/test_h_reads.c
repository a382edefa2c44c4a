/* Fetch size accounting and errors, ListOffsets, DeleteRecords, OffsetForLeaderEpoch and
 * producer id allocation, against a real store (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "h_test_util.h"

/* A one-topic fetch request over partitions [0, n). */
typedef struct {
    kp_fetch_req_t m;
    kp_fetch_req_fetch_topic_t topic;
    kp_fetch_req_fetch_partition_t parts[4];
} tfetch_t;

static void tfetch_init(tfetch_t *f, const char *topic, int n, int64_t offset, int32_t pmax,
                        int32_t max)
{
    kp_fetch_req_init(&f->m);
    kp_fetch_req_fetch_topic_init(&f->topic);
    f->topic.topic = kp_str(topic);
    f->topic.partitions = f->parts;
    f->topic.partitions_count = n;
    for (int i = 0; i < n; i++) {
        kp_fetch_req_fetch_partition_init(&f->parts[i]);
        f->parts[i].partition = i;
        f->parts[i].fetch_offset = offset;
        f->parts[i].partition_max_bytes = pmax;
    }
    f->m.topics = &f->topic;
    f->m.topics_count = 1;
    f->m.max_bytes = max;
    f->m.session_epoch = -1;
}

typedef struct {
    kp_arena_t arena;
    kp_buf_t data;
    kp_fetch_resp_t resp;
    bool any_error;
    int64_t total;
} tresult_t;

static void do_fetch(tstore_t *ts, tfetch_t *f, int16_t version, tresult_t *r)
{
    kp_arena_init(&r->arena, NULL, 0, 0);
    kp_buf_init(&r->data);
    kb_fetch_ctx_t ctx = {.store = ts->store, .version = version};
    r->total = kb_fetch_fill(&ctx, &f->m, &r->arena, &r->resp, &r->data, NULL, &r->any_error);
}

static void tresult_free(tresult_t *r)
{
    kp_buf_deinit(&r->data);
    kp_arena_deinit(&r->arena);
}

static ks_topic_t *topic_with(tstore_t *ts, const char *name, int parts, int batches, int n)
{
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts->store, name, parts, NULL, &t), 0);
    for (int p = 0; p < parts; p++)
        for (int b = 0; b < batches; b++)
            assert_int_equal(produce_n(ts, name, p, n, 1000 + 100 * b, NULL), KP_ERR_NONE);
    return t;
}

static void test_fetch_at_log_end_is_empty_not_error(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    topic_with(&ts, "t", 1, 2, 5);
    tfetch_t f;
    tfetch_init(&f, "t", 1, 10, 1 << 20, 1 << 20);
    tresult_t r;
    do_fetch(&ts, &f, 11, &r);
    assert_int_equal(r.total, 0);
    assert_false(r.any_error);
    kp_fetch_resp_partition_data_t *pd = &r.resp.responses[0].partitions[0];
    assert_int_equal(pd->error_code, KP_ERR_NONE);
    assert_int_equal(pd->high_watermark, 10);
    assert_int_equal(pd->last_stable_offset, 10);
    assert_int_equal(pd->log_start_offset, 0);
    assert_int_equal(pd->records.len, 0);
    assert_int_equal(pd->preferred_read_replica, -1);
    assert_int_equal(pd->aborted_transactions_count, -1);
    assert_int_equal(r.resp.session_id, 0);
    tresult_free(&r);
    tstore_close(&ts);
}

static void test_fetch_past_end_is_out_of_range(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    topic_with(&ts, "t", 1, 1, 5);
    tfetch_t f;
    tfetch_init(&f, "t", 1, 6, 1 << 20, 1 << 20);
    tresult_t r;
    do_fetch(&ts, &f, 11, &r);
    assert_true(r.any_error);
    kp_fetch_resp_partition_data_t *pd = &r.resp.responses[0].partitions[0];
    assert_int_equal(pd->error_code, KP_ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(pd->high_watermark, -1);
    tresult_free(&r);
    f.parts[0].fetch_offset = -1;
    do_fetch(&ts, &f, 11, &r);
    assert_int_equal(r.resp.responses[0].partitions[0].error_code, KP_ERR_OFFSET_OUT_OF_RANGE);
    tresult_free(&r);
    tstore_close(&ts);
}

static void test_fetch_reads_whole_batches_from_offset(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    topic_with(&ts, "t", 1, 3, 4); /* batches at 0, 4, 8 */
    tfetch_t f;
    tfetch_init(&f, "t", 1, 5, 1 << 20, 1 << 20);
    f.m.isolation_level = 1;
    tresult_t r;
    do_fetch(&ts, &f, 11, &r);
    assert_false(r.any_error);
    kp_fetch_resp_partition_data_t *pd = &r.resp.responses[0].partitions[0];
    assert_int_equal(pd->aborted_transactions_count, 0); /* read_committed: empty, not null */
    assert_int_equal(pd->records.len, r.total);
    /* the batch containing offset 5 (base 4) comes first, then the one at 8 */
    kp_batch_iter_t it;
    const uint8_t *b;
    size_t blen;
    kp_batch_hdr_t h;
    kp_batch_iter_init(&it, pd->records.ptr, (size_t)pd->records.len, true);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 1);
    assert_int_equal(kp_batch_validate(b, blen, &h), 0);
    assert_int_equal(h.base_offset, 4);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 1);
    assert_int_equal(kp_batch_validate(b, blen, &h), 0);
    assert_int_equal(h.base_offset, 8);
    assert_int_equal(kp_batch_iter_next(&it, &b, &blen), 0);
    tresult_free(&r);
    tstore_close(&ts);
}

/* KIP-74: the first partition with data returns one whole batch even over the limits; later
 * partitions share what is left of max_bytes. */
static void test_fetch_size_limits_kip74(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    topic_with(&ts, "t", 3, 2, 4);
    tfetch_t f;
    tfetch_init(&f, "t", 3, 0, 10, 1 << 20); /* partition_max_bytes far below a batch */
    tresult_t r;
    do_fetch(&ts, &f, 11, &r);
    kp_fetch_resp_partition_data_t *pd = r.resp.responses[0].partitions;
    int64_t one = kp_batch_size(pd[0].records.ptr, (size_t)pd[0].records.len);
    assert_true(one > 10);
    assert_int_equal(pd[0].records.len, one); /* exactly one whole batch */
    assert_int_equal(pd[1].records.len, 0);   /* later partitions keep their 10-byte limit */
    assert_int_equal(pd[2].records.len, 0);
    assert_int_equal(r.total, one);
    tresult_free(&r);

    /* response max_bytes: the first partition fills it, the others get nothing */
    tfetch_init(&f, "t", 3, 0, 1 << 20, 20);
    do_fetch(&ts, &f, 11, &r);
    pd = r.resp.responses[0].partitions;
    assert_true(pd[0].records.len > 20);
    assert_int_equal(pd[1].records.len, 0);
    assert_int_equal(pd[2].records.len, 0);
    assert_int_equal(pd[1].high_watermark, 8);
    tresult_free(&r);

    /* with room for everything, every partition returns both batches */
    tfetch_init(&f, "t", 3, 0, 1 << 20, 1 << 20);
    do_fetch(&ts, &f, 11, &r);
    pd = r.resp.responses[0].partitions;
    assert_int_equal(pd[1].records.len, pd[0].records.len);
    assert_int_equal(r.total, 3 * (int64_t)pd[0].records.len);
    tresult_free(&r);
    tstore_close(&ts);
}

static void test_fetch_unknown_topic_name_and_id(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t = topic_with(&ts, "t", 1, 1, 2);
    tfetch_t f;
    tfetch_init(&f, "nope", 1, 0, 100, 100);
    tresult_t r;
    do_fetch(&ts, &f, 12, &r);
    assert_int_equal(r.resp.responses[0].partitions[0].error_code,
                     KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    tresult_free(&r);
    kp_uuid_t bogus = {{1, 2, 3}};
    f.topic.topic_id = bogus;
    do_fetch(&ts, &f, 13, &r);
    assert_int_equal(r.resp.responses[0].partitions[0].error_code, KP_ERR_UNKNOWN_TOPIC_ID);
    tresult_free(&r);
    f.topic.topic_id = ks_topic_id(t); /* v13+ ignores the name */
    do_fetch(&ts, &f, 13, &r);
    assert_int_equal(r.resp.responses[0].partitions[0].error_code, KP_ERR_NONE);
    assert_true(r.total > 0);
    tresult_free(&r);
    tfetch_init(&f, "t", 2, 0, 100, 100); /* partition 1 does not exist */
    do_fetch(&ts, &f, 12, &r);
    assert_int_equal(r.resp.responses[0].partitions[1].error_code,
                     KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    tresult_free(&r);
    tstore_close(&ts);
}

static void test_fetch_leader_epoch_and_session_checks(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    topic_with(&ts, "t", 1, 1, 2);
    tfetch_t f;
    tfetch_init(&f, "t", 1, 0, 100, 100);
    tresult_t r;
    int32_t epochs[] = {-1, 0, 1, -5};
    int16_t want[] = {KP_ERR_NONE, KP_ERR_NONE, KP_ERR_UNKNOWN_LEADER_EPOCH,
                      KP_ERR_FENCED_LEADER_EPOCH};
    for (int i = 0; i < 4; i++) {
        f.parts[0].current_leader_epoch = epochs[i];
        do_fetch(&ts, &f, 11, &r);
        assert_int_equal(r.resp.responses[0].partitions[0].error_code, want[i]);
        tresult_free(&r);
    }
    f.parts[0].current_leader_epoch = -1;
    f.m.session_id = 7;
    do_fetch(&ts, &f, 11, &r);
    assert_int_equal(r.resp.error_code, KP_ERR_FETCH_SESSION_ID_NOT_FOUND);
    assert_int_equal(r.resp.responses_count, 0);
    tresult_free(&r);
    f.m.session_id = 0;
    f.m.session_epoch = 0; /* "start a session": answered sessionless */
    do_fetch(&ts, &f, 11, &r);
    assert_int_equal(r.resp.error_code, KP_ERR_NONE);
    assert_int_equal(r.resp.session_id, 0);
    tresult_free(&r);
    tstore_close(&ts);
}

static void test_list_offsets_resolution(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t = topic_with(&ts, "t", 1, 3, 4); /* ts 1000.., 1100.., 1200.. */
    ks_part_t *p = ks_topic_part(t, 0);
    int64_t off, fts;
    int32_t ep;
    assert_int_equal(kb_list_offsets_resolve(p, -1, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 12);
    assert_int_equal(fts, -1);
    assert_int_equal(ep, 0);
    assert_int_equal(kb_list_offsets_resolve(p, -2, 0, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 0);
    assert_int_equal(kb_list_offsets_resolve(p, 1100, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 4);
    assert_int_equal(fts, 1100);
    /* a time inside a batch: the first record at or after it, as Kafka answers */
    assert_int_equal(kb_list_offsets_resolve(p, 1102, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 6);
    assert_int_equal(fts, 1102);
    assert_int_equal(kb_list_offsets_resolve(p, 1050, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 4);
    assert_int_equal(fts, 1100);
    assert_int_equal(kb_list_offsets_resolve(p, 5000, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, -1);
    assert_int_equal(fts, -1);
    assert_int_equal(ep, -1);
    assert_int_equal(kb_list_offsets_resolve(p, -3, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(fts, 1203);
    assert_int_equal(off, 11);
    assert_int_equal(kb_list_offsets_resolve(p, -1, 3, &off, &fts, &ep),
                     KP_ERR_UNKNOWN_LEADER_EPOCH);
    assert_int_equal(off, -1);
    tstore_close(&ts);
}

static void test_list_offsets_inside_compressed_batch(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(ts.store, "z", 1, NULL, &t), 0);
    kp_buf_t b;
    kp_buf_init(&b);
    assert_int_equal(make_batch(&b, KP_COMPRESSION_GZIP, 20, 5000, 50), 0);
    kb_produce_ctx_t c = tctx(&ts, 9);
    kp_produce_resp_partition_produce_response_t out;
    kp_produce_resp_partition_produce_response_init(&out);
    ks_part_t *p;
    int64_t next, off, fts;
    int32_t ep;
    assert_int_equal(
        kb_produce_partition(&c, kp_str("z"), 0, b.data, (int32_t)b.len, &out, &p, &next),
        KP_ERR_NONE);
    assert_int_equal(kb_list_offsets_resolve(p, 5013, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 13);
    assert_int_equal(fts, 5013);
    assert_int_equal(kb_list_offsets_resolve(p, -3, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 19);
    assert_int_equal(fts, 5019);
    kp_buf_deinit(&b);
    tstore_close(&ts);
}

static void test_delete_records_moves_log_start(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t = topic_with(&ts, "t", 1, 3, 4);
    ks_part_t *p = ks_topic_part(t, 0);
    int64_t low;
    assert_int_equal(kb_delete_records_part(p, 13, &low), KP_ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(low, -1);
    assert_int_equal(kb_delete_records_part(p, -7, &low), KP_ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(kb_delete_records_part(p, 6, &low), KP_ERR_NONE);
    assert_int_equal(low, 6);
    assert_int_equal(ks_part_log_start(p), 6);
    assert_int_equal(kb_delete_records_part(p, 2, &low), KP_ERR_NONE); /* no going back */
    assert_int_equal(low, 6);
    assert_int_equal(kb_delete_records_part(p, -1, &low), KP_ERR_NONE); /* -1 = HW */
    assert_int_equal(low, 12);
    int64_t off, fts;
    int32_t ep;
    assert_int_equal(kb_list_offsets_resolve(p, -2, -1, &off, &fts, &ep), KP_ERR_NONE);
    assert_int_equal(off, 12);
    tstore_close(&ts);
}

static void test_epoch_end_offset(void **state)
{
    (void)state;
    tstore_t ts;
    assert_int_equal(tstore_open(&ts), 0);
    ks_topic_t *t = topic_with(&ts, "t", 1, 2, 3);
    ks_part_t *p = ks_topic_part(t, 0);
    int32_t ep;
    int64_t end;
    assert_int_equal(kb_epoch_end_offset(p, -1, 0, &ep, &end), KP_ERR_NONE);
    assert_int_equal(ep, 0);
    assert_int_equal(end, 6);
    assert_int_equal(kb_epoch_end_offset(p, 0, 4, &ep, &end), KP_ERR_NONE);
    assert_int_equal(ep, -1);
    assert_int_equal(end, -1);
    assert_int_equal(kb_epoch_end_offset(p, 2, 0, &ep, &end), KP_ERR_UNKNOWN_LEADER_EPOCH);
    tstore_close(&ts);
}

static void test_producer_ids_survive_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/depot-pid-XXXXXX";
    assert_non_null(mkdtemp(dir));
    kb_hstate_t hs;
    memset(&hs, 0, sizeof hs);
    int64_t a, b, c;
    assert_int_equal(kb_pid_next(&hs, dir, &a), 0);
    assert_int_equal(kb_pid_next(&hs, dir, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    kb_pid_close(&hs);
    memset(&hs, 0, sizeof hs); /* a restart: the reserved block is never reused */
    assert_int_equal(kb_pid_next(&hs, dir, &c), 0);
    assert_true(c > b);
    for (int i = 0; i < 2500; i++) { /* crosses block boundaries */
        int64_t d;
        assert_int_equal(kb_pid_next(&hs, dir, &d), 0);
        assert_int_equal(d, c + 1 + i);
    }
    kb_pid_close(&hs);
    char path[128];
    snprintf(path, sizeof path, "%s/producer_id_block", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("garbage", fp);
    fclose(fp);
    memset(&hs, 0, sizeof hs);
    assert_true(kb_pid_next(&hs, dir, &c) < 0); /* never guesses */
    kb_pid_close(&hs);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_at_log_end_is_empty_not_error),
        cmocka_unit_test(test_fetch_past_end_is_out_of_range),
        cmocka_unit_test(test_fetch_reads_whole_batches_from_offset),
        cmocka_unit_test(test_fetch_size_limits_kip74),
        cmocka_unit_test(test_fetch_unknown_topic_name_and_id),
        cmocka_unit_test(test_fetch_leader_epoch_and_session_checks),
        cmocka_unit_test(test_list_offsets_resolution),
        cmocka_unit_test(test_list_offsets_inside_compressed_batch),
        cmocka_unit_test(test_delete_records_moves_log_start),
        cmocka_unit_test(test_epoch_end_offset),
        cmocka_unit_test(test_producer_ids_survive_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

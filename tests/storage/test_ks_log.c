/* Storage: config table, topics, append/read round trips across segment rolls. */
#include "tests/storage/ks_test.h"

static void test_config_defaults_and_set(void **state)
{
    (void)state;
    ks_topic_config_t c;
    char buf[64];
    ks_topic_config_default(&c);
    assert_true(c.segment_bytes == 1073741824);
    assert_true(c.retention_ms == 604800000);
    assert_true(c.retention_bytes == -1);
    assert_true(c.flush_messages == INT64_MAX);
    assert_int_equal(c.index_interval_bytes, 4096);
    assert_int_equal(ks_topic_config_set(&c, "retention.ms", "1000"), 0);
    assert_true(c.retention_ms == 1000);
    assert_int_equal(ks_topic_config_set(&c, "retention.ms", "-2"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "retention.ms", "12x"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "segment.bytes", "3000000000"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "no.such.key", "1"), K_ERR_NOENT);
    assert_int_equal(ks_topic_config_set(&c, "message.timestamp.type", "LogAppendTime"), 0);
    assert_int_equal(c.timestamp_type, KS_TS_LOG_APPEND_TIME);
    assert_int_equal(ks_topic_config_get(&c, "message.timestamp.type", buf, sizeof buf), 0);
    assert_string_equal(buf, "LogAppendTime");
    assert_int_equal(ks_topic_config_get(&c, "retention.ms", buf, sizeof buf), 0);
    assert_string_equal(buf, "1000");
    int n = 0;
    for (const char *const *k = ks_topic_config_keys(); *k; k++, n++)
        assert_int_equal(ks_topic_config_get(&c, *k, buf, sizeof buf), 0);
    assert_int_equal(n, 38); /* every topic config Kafka 4.1 reports + 5 Confluent/Depot */
    assert_int_equal(ks_topic_config_set(&c, "compression.type", "zstd"), 0);
    assert_int_equal(c.compression_type, KS_COMPRESSION_ZSTD);
    assert_int_equal(ks_topic_config_set(&c, "compression.type", "brotli"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "cleanup.policy", "delete,compact"), 0);
    assert_int_equal(c.cleanup_policy, KS_CLEANUP_COMPACT_DELETE);
    assert_int_equal(ks_topic_config_get(&c, "cleanup.policy", buf, sizeof buf), 0);
    assert_string_equal(buf, "compact,delete");
    assert_int_equal(ks_topic_config_set(&c, "min.cleanable.dirty.ratio", "1.5"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "min.cleanable.dirty.ratio", "0.25"), 0);
    assert_int_equal(ks_topic_config_get(&c, "min.cleanable.dirty.ratio", buf, sizeof buf), 0);
    assert_string_equal(buf, "0.25");
    assert_int_equal(ks_topic_config_set(&c, "preallocate", "TRUE"), 0);
    assert_true(c.preallocate);
    assert_int_equal(ks_topic_config_set(&c, "remote.storage.enable", "true"), K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "leader.replication.throttled.replicas", "0:1,1:1"),
                     0);
    assert_int_equal(ks_topic_config_set(&c, "leader.replication.throttled.replicas", "0:"),
                     K_ERR_INVAL);
    assert_int_equal(ks_topic_config_set(&c, "min.insync.replicas", "0"), K_ERR_INVAL);
    char err[256];
    assert_int_equal(ks_topic_config_set_msg(&c, "retention.ms", "abc", err, sizeof err),
                     K_ERR_INVAL);
    assert_string_equal(err, "Invalid value abc for configuration retention.ms: Not a number "
                             "of type LONG");
    assert_int_equal(ks_topic_config_set(&c, "confluent.value.subject.name.strategy",
                                         "RecordNameStrategy"), 0);
    assert_int_equal(c.value_subject_strategy, KS_SUBJECT_RECORD);
    assert_int_equal(ks_topic_config_get(&c, "confluent.value.subject.name.strategy", buf,
                                         sizeof buf), 0);
    assert_string_equal(buf, "io.confluent.kafka.serializers.subject.RecordNameStrategy");
    assert_int_equal(ks_topic_config_set(&c, "confluent.value.schema.validation", "yes"),
                     K_ERR_INVAL);
}

static void test_topic_names(void **state)
{
    (void)state;
    assert_true(ks_topic_name_valid("a.b_c-D9", 8));
    assert_false(ks_topic_name_valid(".", 1));
    assert_false(ks_topic_name_valid("..", 2));
    assert_false(ks_topic_name_valid("", 0));
    assert_false(ks_topic_name_valid("a b", 3));
    assert_false(ks_topic_name_valid("a/b", 3));
    char big[251];
    memset(big, 'x', 250);
    big[250] = 0;
    assert_true(ks_topic_name_valid(big, 249));
    assert_false(ks_topic_name_valid(big, 250));
}

static void test_topic_create_find_delete(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t, *u;
    assert_int_equal(ks_topic_create(e.s, "b", 3, NULL, &t), 0);
    assert_int_equal(ks_topic_create(e.s, "a", 1, NULL, &u), 0);
    assert_int_equal(ks_topic_create(e.s, "b", 1, NULL, NULL), K_ERR_EXISTS);
    assert_int_equal(ks_topic_create(e.s, "bad/name", 1, NULL, NULL), K_ERR_INVAL);
    assert_int_equal(ks_topic_create(e.s, "z", 0, NULL, NULL), K_ERR_INVAL);
    assert_ptr_equal(ks_topic_find(e.s, "b", 1), t);
    assert_ptr_equal(ks_topic_find_by_id(e.s, ks_topic_id(t)), t);
    assert_null(ks_topic_find(e.s, "c", 1));
    assert_int_equal(ks_topic_partitions(t), 3);
    assert_non_null(ks_topic_part(t, 2));
    assert_null(ks_topic_part(t, 3));
    assert_ptr_equal(ks_topic_next(e.s, NULL), u);
    assert_ptr_equal(ks_topic_next(e.s, u), t);
    assert_null(ks_topic_next(e.s, t));
    kp_uuid_t zero = {{0}};
    assert_memory_not_equal(ks_topic_id(t).b, zero.b, 16);
    assert_int_equal(strlen(ks_store_cluster_id(e.s)), 22);
    t_append(ks_topic_part(t, 1), 3, 1000, 10);
    assert_int_equal(ks_topic_delete(e.s, "b"), 0);
    assert_null(ks_topic_find(e.s, "b", 1));
    assert_int_equal(ks_topic_delete(e.s, "b"), K_ERR_NOENT);
    char path[4096];
    snprintf(path, sizeof path, "%s/b-1", e.dir);
    assert_int_equal(t_file_size(path), -1);
    /* The renamed-away directories are removed by the flusher thread, soon. */
    int left = 1;
    for (int tries = 0; tries < 2000 && left; tries++) {
        left = 0;
        DIR *d = opendir(e.dir);
        for (struct dirent *de; (de = readdir(d));)
            left += strstr(de->d_name, "-delete") != NULL;
        closedir(d);
        if (left)
            usleep(1000);
    }
    assert_int_equal(left, 0);
    /* Same name again starts empty. */
    assert_int_equal(ks_topic_create(e.s, "b", 1, NULL, &t), 0);
    assert_true(ks_part_log_end(ks_topic_part(t, 0)) == 0);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_int_equal(st.partitions, 2);
    t_env_deinit(&e);
}

static void test_append_read_roundtrip_across_rolls(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 1000;
    c.index_interval_bytes = 100;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t expect = 0;
    for (int i = 0; i < 200; i++) {
        int n = 1 + i % 5;
        assert_true(t_append(p, n, 1000 + i, 20 + (size_t)(i % 7) * 10) == expect);
        expect += n;
    }
    assert_true(ks_part_log_end(p) == expect);
    assert_true(ks_part_high_watermark(p) == expect);
    assert_true(ks_part_log_start(p) == 0);
    /* Segment files exist with 20-digit names. */
    char path[4096];
    snprintf(path, sizeof path, "%s/t-0/00000000000000000000.log", e.dir);
    assert_true(t_file_size(path) > 0 && t_file_size(path) <= 1000);
    int segs = 0;
    snprintf(path, sizeof path, "%s/t-0", e.dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d));)
        segs += t_is_log(de->d_name);
    closedir(d);
    assert_true(segs > 10);
    /* Reading everything in order, batch after batch, gives every offset once. */
    int64_t off = 0;
    while (off < expect) {
        kp_buf_t out;
        kp_buf_init(&out);
        assert_int_equal(ks_part_read(p, off, 1 << 20, true, &out), 0);
        assert_true(out.len > 0);
        kp_batch_iter_t it;
        const uint8_t *b;
        size_t blen;
        kp_batch_iter_init(&it, out.data, out.len, true);
        while (kp_batch_iter_next(&it, &b, &blen) == 1) {
            kp_batch_hdr_t h;
            assert_int_equal(kp_batch_validate(b, blen, &h), 0);
            assert_true(h.base_offset == off);
            assert_int_equal(h.partition_leader_epoch, 0);
            off += h.last_offset_delta + 1;
        }
        kp_buf_deinit(&out);
    }
    assert_true(off == expect);
    t_env_deinit(&e);
}

static void test_read_limits_and_range(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_part_t *p = t_topic(&e, "t", 1, NULL);
    for (int i = 0; i < 10; i++)
        t_append(p, 2, 5000, 100);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, 21, 1000, true, &out), K_ERR_RANGE);
    assert_int_equal(ks_part_read(p, -1, 1000, true, &out), K_ERR_RANGE);
    assert_int_equal(ks_part_read(p, 20, 1000, true, &out), 0);
    assert_int_equal(out.len, 0);
    /* max_bytes smaller than one batch: nothing, or the whole first batch with min_one. */
    assert_int_equal(ks_part_read(p, 0, 10, false, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(t_read_check(p, 3, 10, true, NULL), 1);
    /* Whole batches only, up to max_bytes. */
    size_t one;
    assert_int_equal(ks_part_read(p, 0, 10, true, &out), 0);
    one = out.len;
    kp_buf_reset(&out);
    assert_int_equal(ks_part_read(p, 0, one * 3 + one / 2, false, &out), 0);
    assert_int_equal(out.len, one * 3);
    kp_buf_deinit(&out);
    int64_t base;
    assert_int_equal(t_read_check(p, 7, 1 << 20, false, &base), 7);
    assert_true(base == 6);
    t_env_deinit(&e);
}

static void test_append_rejects_bad_input(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.max_message_bytes = 200;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    uint8_t junk[100] = {0};
    ks_append_result_t res;
    assert_int_equal(ks_part_append(p, junk, sizeof junk, 0, &res), K_ERR_INVAL);
    assert_int_equal(t_append_rc(p, 5, 0, 100), K_ERR_TOOLARGE);
    assert_true(ks_part_log_end(p) == 0);
    t_env_deinit(&e);
}

static void test_append_multi_batch_and_log_append_time(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.timestamp_type = KS_TS_LOG_APPEND_TIME;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    kp_buf_t b;
    kp_buf_init(&b);
    t_batch(&b, 3, 111, 10);
    t_batch(&b, 4, 222, 10);
    ks_append_result_t res;
    assert_int_equal(ks_part_append(p, b.data, b.len, 99999, &res), 0);
    assert_true(res.base_offset == 0 && res.last_offset == 6);
    assert_true(res.log_append_time == 99999);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(ks_part_read(p, 0, 1 << 20, true, &out), 0);
    assert_int_equal(out.len, b.len);
    kp_batch_hdr_t h;
    size_t first = (size_t)kp_batch_size(out.data, out.len);
    assert_int_equal(kp_batch_validate(out.data, first, &h), 0);
    assert_true(h.max_timestamp == 99999);
    assert_true(h.attributes & KP_BATCH_ATTR_LOG_APPEND_TIME);
    assert_int_equal(kp_batch_validate(out.data + first, out.len - first, &h), 0);
    assert_true(h.base_offset == 3);
    kp_buf_deinit(&out);
    kp_buf_deinit(&b);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_and_set),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_topic_create_find_delete),
        cmocka_unit_test(test_append_read_roundtrip_across_rolls),
        cmocka_unit_test(test_read_limits_and_range),
        cmocka_unit_test(test_append_rejects_bad_input),
        cmocka_unit_test(test_append_multi_batch_and_log_append_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

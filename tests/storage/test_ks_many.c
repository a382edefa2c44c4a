/* Storage: 10,000 partitions under an fd cap of 256 (LRU across all segment/index files). */
#include "tests/storage/ks_test.h"

enum { NPART = 10000, CAP = 256 };

static void check_all(t_env_t *e)
{
    ks_topic_t *t = ks_topic_find(e->s, "many", 4);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), NPART);
    ks_stats_t st;
    for (int32_t i = 0; i < NPART; i++) {
        ks_part_t *p = ks_topic_part(t, i);
        assert_true(ks_part_log_end(p) == 2);
        int64_t first;
        assert_int_equal(t_read_check(p, 1, 1 << 16, true, &first), 1);
        assert_true(first == 0);
        if (i % 1000 == 0) {
            ks_store_stats(e->s, &st);
            assert_true(st.open_files <= CAP);
        }
    }
    ks_store_stats(e->s, &st);
    assert_true(st.open_files <= CAP);
    assert_int_equal(st.partitions, NPART);
}

static void test_many_partitions_fd_cap(void **state)
{
    (void)state;
    t_env_t e;
    /* tmpfs when there is one: this test is about the fd cache, and the disk here spends
     * milliseconds per create/unlink (ext4 with online discard). */
    struct stat st0;
    if (stat("/dev/shm", &st0) == 0 && access("/dev/shm", W_OK) == 0)
        t_tmp_base = "/dev/shm";
    t_env_init(&e);
    e.o.max_open_files = CAP;
    e.o.defaults.segment_bytes = 4096;
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "many", NPART, NULL, &t), 0);
    for (int32_t i = 0; i < NPART; i++)
        t_append(ks_topic_part(t, i), 2, 1000 + i, 8);
    ks_stats_t st;
    ks_store_stats(e.s, &st);
    assert_true(st.open_files <= CAP);
    assert_true(st.open_files > CAP / 2); /* the cache is used, not bypassed */
    check_all(&e);
    /* A second append to each partition reopens evicted active segments. */
    int64_t off, ts;
    assert_int_equal(ks_part_offset_for_time(ks_topic_part(t, 9999), 0, &off, &ts), 0);
    assert_true(ts == 1000 + 9999);
    t_env_reopen(&e);
    check_all(&e);
    /* Each open file descriptor the process holds is within the cap plus a few of its own. */
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; (de = readdir(d));)
        fds++;
    closedir(d);
    assert_true(fds < CAP + 32);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_partitions_fd_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

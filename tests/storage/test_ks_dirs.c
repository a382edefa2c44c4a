/* Storage: several log dirs, leftovers, clean-start cost, multi-segment recovery. */
#include "tests/storage/ks_test.h"

static void read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, len - 1);
    assert_true(n > 0);
    buf[n] = 0;
    close(fd);
}

static void test_two_log_dirs(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    char *d2 = t_mkdtemp();
    const char *dirs[2] = {e.dir, d2};
    e.o.dirs = dirs;
    e.o.n_dirs = 2;
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "x", 4, NULL, &t), 0);
    for (int i = 0; i < 4; i++)
        t_append(ks_topic_part(t, i), i + 1, 1000, 10);
    char path[4096];
    int in[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        for (int d = 0; d < 2; d++) {
            snprintf(path, sizeof path, "%s/x-%d", dirs[d], i);
            in[d] += t_file_size(path) >= 0;
        }
    }
    assert_int_equal(in[0], 2);
    assert_int_equal(in[1], 2);
    char m1[512], m2[512];
    snprintf(path, sizeof path, "%s/meta.properties", e.dir);
    read_text(path, m1, sizeof m1);
    snprintf(path, sizeof path, "%s/meta.properties", d2);
    read_text(path, m2, sizeof m2);
    assert_string_equal(m1, m2);
    assert_non_null(strstr(m1, ks_store_cluster_id(e.s)));
    assert_non_null(strstr(m1, "node.id=1\n"));
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "x", 1);
    for (int i = 0; i < 4; i++)
        assert_true(ks_part_log_end(ks_topic_part(t, i)) == i + 1);
    t_env_close(&e);
    /* A dir from another cluster is refused. */
    snprintf(path, sizeof path, "%s/meta.properties", d2);
    int fd = open(path, O_WRONLY | O_TRUNC);
    const char *other = "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\n";
    assert_true(write(fd, other, strlen(other)) == (ssize_t)strlen(other));
    close(fd);
    ks_store_t *s2;
    assert_int_equal(ks_store_open(&e.o, &s2), K_ERR_INVAL);
    t_rm_rf(d2);
    free(d2);
    t_env_deinit(&e);
}

static void test_leftovers_removed_and_missing_recreated(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "keep", 3, NULL, &t), 0);
    t_append(ks_topic_part(t, 0), 1, 1000, 10);
    t_env_close(&e);
    char path[4096];
    const char *junk[] = {"ghost-0", "ghost-1", "0123456789abcdef-delete", "keep-7"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", e.dir, junk[i]);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/%s/00000000000000000000.log", e.dir, junk[i]);
        close(open(path, O_CREAT | O_WRONLY, 0644));
    }
    snprintf(path, sizeof path, "%s/keep-2", e.dir);
    t_rm_rf(path);
    t_log_warns = 0;
    t_env_open(&e);
    assert_true(t_log_warns >= 4);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", e.dir, junk[i]);
        assert_int_equal(t_file_size(path), -1);
    }
    snprintf(path, sizeof path, "%s/keep-2", e.dir);
    assert_true(t_file_size(path) >= 0);
    t = ks_topic_find(e.s, "keep", 4);
    assert_true(ks_part_log_end(ks_topic_part(t, 0)) == 1);
    assert_true(t_append(ks_topic_part(t, 2), 1, 1000, 10) == 0);
    t_env_deinit(&e);
}

/* Opening after a clean stop reads a few bytes per segment, not the data. */
static void test_clean_start_does_not_scan(void **state)
{
    (void)state;
    kf_install();
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 20000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    for (int i = 0; i < 1000; i++) /* ~1.1 MB in ~55 segments */
        t_append(p, 1, 1000 + i, 1000);
    int64_t end = ks_part_log_end(p);
    t_env_close(&e);
    atomic_store(&kf_pread_bytes, 0);
    t_env_open(&e);
    long long clean = atomic_load(&kf_pread_bytes);
    assert_true(ks_part_log_end(t_part(&e, "t", 0)) == end);
    t_env_close(&e);
    t_env_unclean(&e);
    atomic_store(&kf_pread_bytes, 0);
    t_env_open(&e);
    long long unclean = atomic_load(&kf_pread_bytes);
    assert_true(ks_part_log_end(t_part(&e, "t", 0)) == end);
    /* Clean: headers and index entries only. Unclean after that clean close: the close left a
     * tail mark at the end of the active segment, so recovery checks the batches from its last
     * index entry to the mark and reads none of the rest (tests/storage/test_ks_tail.c). */
    assert_true(clean < 64 * 60 + 8000);
    assert_true(unclean < 64 * 60 + 8000);
    t_env_deinit(&e);
    kf_uninstall();
}

/* No recovery checkpoint and damage in a middle segment: later segments go too. */
static void test_unclean_damage_mid_log_drops_tail(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_config_t c = e.o.defaults;
    c.segment_bytes = 1000;
    ks_part_t *p = t_topic(&e, "t", 1, &c);
    int64_t bases[60];
    for (int i = 0; i < 60; i++)
        bases[i] = t_append(p, 1, 1000 + i, 100);
    t_env_close(&e);
    t_env_unclean(&e);
    char path[4096];
    snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", e.dir);
    assert_int_equal(unlink(path), 0);
    /* Batches are the same size, so batch 25 sits at a computable place: find its segment. */
    int64_t seg = -1;
    for (int i = 0; i <= 25; i++) {
        snprintf(path, sizeof path, "%s/t-0/%020lld.log", e.dir, (long long)bases[i]);
        if (t_file_size(path) >= 0)
            seg = bases[i];
    }
    snprintf(path, sizeof path, "%s/t-0/%020lld.log", e.dir, (long long)seg);
    int64_t bsz = t_file_size(path) / 1; /* whole segment: damage its last batch's CRC area */
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(pread(fd, &b, 1, bsz - 5) == 1);
    b ^= 0x55;
    assert_true(pwrite(fd, &b, 1, bsz - 5) == 1);
    close(fd);
    t_env_open(&e);
    p = t_part(&e, "t", 0);
    int64_t end = ks_part_log_end(p);
    assert_true(end < 60 && end > seg);
    /* Whatever is left reads back whole and valid, up to the end. */
    int64_t off = 0;
    while (off < end) {
        int64_t first;
        t_read_check(p, off, 1, true, &first);
        assert_true(first == off);
        off++;
    }
    assert_true(t_append(p, 1, 5000, 10) == end);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_log_dirs),
        cmocka_unit_test(test_leftovers_removed_and_missing_recreated),
        cmocka_unit_test(test_clean_start_does_not_scan),
        cmocka_unit_test(test_unclean_damage_mid_log_drops_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

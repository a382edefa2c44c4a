/*
 * Storage: CreatePartitions and AlterConfigs in three steps (ks.h: ks_topic_grow_begin /
 * ks_topic_configs_begin on the loop, ks_topic_change_write anywhere without the store lock,
 * ks_topic_change_finish on the loop): nothing sees the change before finish, one change per
 * topic at a time, failures, closes and a deletion in between roll back, the write holds no
 * lock, and a power cut at any I/O step leaves the old topic or the new one (ks_powercut.h).
 */
#include <pthread.h>
#include <sys/wait.h>

#include "tests/storage/ks_test.h"
#include "tests/storage/ks_powercut.h"

/* Directories named <topic>-<n> in dir. */
static int count_dirs(const char *dir, const char *topic)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    size_t len = strlen(topic);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, topic, len) == 0 && e->d_name[len] == '-' &&
            strcmp(e->d_name + len, "-delete") != 0)
            n++;
    closedir(d);
    return n;
}

static int64_t retention_ms(ks_topic_t *t)
{
    char v[64];
    assert_int_equal(ks_topic_config_get(ks_topic_config(t), "retention.ms", v, sizeof v), 0);
    return strtoll(v, NULL, 10);
}

/* cfg with retention.ms = ms, and the mask making it the topic's one override. */
static uint64_t retention_cfg(t_env_t *e, int64_t ms, ks_topic_config_t *cfg)
{
    char v[32];
    *cfg = *ks_store_defaults(e->s);
    snprintf(v, sizeof v, "%lld", (long long)ms);
    assert_int_equal(ks_topic_config_set(cfg, "retention.ms", v), 0);
    return UINT64_C(1) << ks_topic_config_index("retention.ms");
}

static void test_grow_split(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "g", 2, NULL, &t), 0);
    ks_part_t *p0 = ks_topic_part(t, 0);
    assert_true(t_append(p0, 3, 1000, 10) == 0);
    ks_topic_change_t *ch, *ch2;
    assert_int_equal(ks_topic_grow_begin(e.s, t, 2, &ch), K_ERR_INVAL); /* not larger */
    assert_int_equal(ks_topic_grow_begin(e.s, t, 5, &ch), 0);
    /* Nothing sees it yet; a second change of the topic waits its turn. */
    assert_int_equal(ks_topic_partitions(t), 2);
    assert_int_equal(count_dirs(e.dir, "g"), 2);
    assert_int_equal(ks_topic_grow_begin(e.s, t, 6, &ch2), K_ERR_AGAIN);
    assert_int_equal(ks_topic_add_partitions(e.s, t, 6), K_ERR_AGAIN);
    ks_topic_config_t cfg;
    uint64_t mask = retention_cfg(&e, 5000, &cfg);
    assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch2), K_ERR_AGAIN);
    assert_int_equal(ks_topic_set_configs(e.s, t, &cfg, mask), K_ERR_AGAIN);
    assert_int_equal(ks_topic_change_write(ch), 0);
    assert_int_equal(count_dirs(e.dir, "g"), 5);
    assert_int_equal(ks_topic_partitions(t), 2); /* written, not yet applied */
    assert_int_equal(ks_topic_change_finish(ch), 0);
    assert_int_equal(ks_topic_partitions(t), 5);
    assert_ptr_equal(ks_topic_part(t, 0), p0); /* old pointers stay valid */
    assert_true(t_append(ks_topic_part(t, 4), 2, 1000, 10) == 0);
    assert_int_equal(ks_topic_set_configs(e.s, t, &cfg, mask), 0); /* free again */
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "g", 1);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 5);
    assert_true(ks_part_log_end(ks_topic_part(t, 0)) == 3);
    assert_true(ks_part_log_end(ks_topic_part(t, 4)) == 2);
    assert_true(retention_ms(t) == 5000);
    t_env_deinit(&e);
}

static void test_configs_split(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "c", 1, NULL, &t), 0);
    int64_t dflt = retention_ms(t);
    ks_topic_config_t cfg;
    uint64_t mask = retention_cfg(&e, 7000, &cfg);
    ks_topic_change_t *ch;
    assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch), 0);
    assert_int_equal(ks_topic_change_write(ch), 0);
    assert_true(retention_ms(t) == dflt); /* durable, not yet live */
    assert_true(ks_topic_overrides(t) == 0);
    assert_int_equal(ks_topic_change_finish(ch), 0);
    assert_true(retention_ms(t) == 7000);
    assert_true(ks_topic_overrides(t) == mask);
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "c", 1);
    assert_true(retention_ms(t) == 7000);
    /* Back to no overrides: the default again, also after a reopen. */
    assert_int_equal(ks_topic_configs_begin(e.s, t, ks_store_defaults(e.s), 0, &ch), 0);
    assert_int_equal(ks_topic_change_write(ch), 0);
    assert_int_equal(ks_topic_change_finish(ch), 0);
    assert_true(retention_ms(t) == dflt);
    t_env_reopen(&e);
    assert_true(retention_ms(ks_topic_find(e.s, "c", 1)) == dflt);
    t_env_deinit(&e);
}

static void test_finish_without_write_rolls_back(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "r", 1, NULL, &t), 0);
    ks_topic_change_t *ch;
    assert_int_equal(ks_topic_grow_begin(e.s, t, 3, &ch), 0);
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_INVAL);
    assert_int_equal(ks_topic_partitions(t), 1);
    assert_int_equal(count_dirs(e.dir, "r"), 1);
    ks_topic_config_t cfg;
    uint64_t mask = retention_cfg(&e, 9000, &cfg);
    assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch), 0);
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_INVAL);
    assert_true(ks_topic_overrides(t) == 0);
    assert_int_equal(ks_topic_add_partitions(e.s, t, 2), 0); /* the topic is free again */
    assert_int_equal(ks_topic_partitions(t), 2);
    t_env_deinit(&e);
}

/* mkdir fails with ENOSPC from the fail_at-th call on; fsync fails with EIO while set. */
static atomic_int mk_calls, mk_fail_at;
static int failing_mkdir(const char *path, mode_t mode)
{
    if (atomic_fetch_add(&mk_calls, 1) + 1 >= atomic_load(&mk_fail_at)) {
        errno = ENOSPC;
        return -1;
    }
    return mkdir(path, mode);
}
static int failing_fsync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

static void test_write_failure_rolls_back(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "f", 1, NULL, &t), 0);
    ks_io.mkdir = failing_mkdir;
    atomic_store(&mk_calls, 0);
    atomic_store(&mk_fail_at, 3); /* two of four new directories made, then the disk is full */
    ks_topic_change_t *ch;
    assert_int_equal(ks_topic_grow_begin(e.s, t, 5, &ch), 0);
    t_log_errors = 0;
    assert_int_equal(ks_topic_change_write(ch), K_ERR_NOSPC);
    assert_int_equal(count_dirs(e.dir, "f"), 1); /* what it made is removed */
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_NOSPC);
    assert_true(t_log_errors >= 1); /* logged by finish, on the loop */
    assert_int_equal(ks_topic_partitions(t), 1);
    ks_io = ks_io_posix;
    /* The metadata rewrite fails: the config is not applied. */
    ks_topic_config_t cfg;
    uint64_t mask = retention_cfg(&e, 4000, &cfg);
    int64_t before = retention_ms(t);
    ks_io.fsync = failing_fsync;
    assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch), 0);
    assert_true(ks_topic_change_write(ch) < 0);
    assert_true(ks_topic_change_finish(ch) < 0);
    ks_io = ks_io_posix;
    assert_true(retention_ms(t) == before);
    assert_int_equal(ks_topic_add_partitions(e.s, t, 4), 0);
    assert_int_equal(count_dirs(e.dir, "f"), 4);
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "f", 1);
    assert_int_equal(ks_topic_partitions(t), 4);
    assert_true(retention_ms(t) == before);
    t_env_deinit(&e);
}

/* The topic is deleted between begin and finish: a new topic of the name waits for finish,
 * which takes back what write made. */
static void test_deleted_before_finish(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "d", 1, NULL, &t), 0);
    ks_topic_change_t *ch;
    assert_int_equal(ks_topic_grow_begin(e.s, t, 3, &ch), 0);
    assert_int_equal(ks_topic_change_write(ch), 0);
    assert_int_equal(ks_topic_delete(e.s, "d"), 0);
    assert_int_equal(ks_topic_create(e.s, "d", 2, NULL, NULL), K_ERR_EXISTS);
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_NOENT);
    assert_int_equal(count_dirs(e.dir, "d"), 0);
    assert_int_equal(ks_topic_create(e.s, "d", 2, NULL, &t), 0);
    /* A config change whose write runs after the delete finds no directory to write in. */
    ks_topic_config_t cfg;
    uint64_t mask = retention_cfg(&e, 4000, &cfg);
    assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch), 0);
    assert_int_equal(ks_topic_delete(e.s, "d"), 0);
    assert_true(ks_topic_change_write(ch) < 0);
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_NOENT);
    t_env_reopen(&e);
    assert_null(ks_topic_find(e.s, "d", 1));
    assert_int_equal(count_dirs(e.dir, "d"), 0);
    t_env_deinit(&e);
}

static void test_store_closed_before_finish(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "late", 1, NULL, &t), 0);
    ks_topic_change_t *ch;
    assert_int_equal(ks_topic_grow_begin(e.s, t, 3, &ch), 0);
    t_env_close(&e);
    /* The pool thread may still be writing when the broker shuts down. */
    assert_int_equal(ks_topic_change_write(ch), 0);
    assert_int_equal(ks_topic_change_finish(ch), K_ERR_CLOSED);
    t_env_open(&e); /* written whole before the process ended: the next open serves it */
    t = ks_topic_find(e.s, "late", 4);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 3);
    assert_true(t_append(ks_topic_part(t, 2), 1, 1000, 10) == 0);
    t_env_deinit(&e);
}

/* An fsync that blocks until the test lets it go: the flash chip that takes its time. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open, gate_entered;
static int gated_fsync(int fd)
{
    pthread_mutex_lock(&gate_mu);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return fsync(fd);
}

static void *write_thread(void *arg)
{
    ks_topic_change_write(arg);
    return NULL;
}

static void test_write_holds_no_store_lock(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t, *other;
    assert_int_equal(ks_topic_create(e.s, "slow", 1, NULL, &t), 0);
    assert_int_equal(ks_topic_create(e.s, "other", 1, NULL, &other), 0);
    for (int round = 0; round < 2; round++) {
        ks_topic_change_t *ch;
        ks_topic_config_t cfg;
        uint64_t mask = retention_cfg(&e, 3000, &cfg);
        if (round == 0)
            assert_int_equal(ks_topic_grow_begin(e.s, t, 3, &ch), 0);
        else
            assert_int_equal(ks_topic_configs_begin(e.s, t, &cfg, mask, &ch), 0);
        gate_open = gate_entered = false;
        ks_io.fsync = gated_fsync;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, write_thread, ch), 0);
        pthread_mutex_lock(&gate_mu);
        while (!gate_entered)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
        /* The write is stuck inside its fsync: every call below takes the store lock. */
        assert_ptr_equal(ks_topic_find(e.s, "other", 5), other);
        assert_int_equal(t_append_rc(ks_topic_part(t, 0), 2, 1000, 10), 0);
        ks_io.fsync = ks_io_posix.fsync; /* other topics' changes must not wait */
        assert_int_equal(ks_topic_add_partitions(e.s, other, 2 + round), 0);
        pthread_mutex_lock(&gate_mu);
        gate_open = true;
        pthread_cond_broadcast(&gate_cv);
        pthread_mutex_unlock(&gate_mu);
        pthread_join(th, NULL);
        assert_int_equal(ks_topic_change_finish(ch), 0);
    }
    assert_int_equal(ks_topic_partitions(t), 3);
    assert_true(retention_ms(t) == 3000);
    t_env_deinit(&e);
}

/* One change of "pc" (2 partitions, 5 records each, retention.ms default) in a forked child
 * under the power-cut seam: grow to 4, or (configs) retention.ms=3000, in three steps with the
 * write on another thread. The parent writes back one disk the cut may leave. Returns the
 * child's steps for cut_at 0, else -2 when the change was answered, -1 when not. */
static int pc_change_run(t_env_t *e, int cut_at, unsigned *seed, long *lost, bool configs)
{
    char logp[4200];
    pc_t pc;
    pc_snapshot(&pc, e->dir);
    snprintf(logp, sizeof logp, "%s.pclog", e->dir);
    int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    assert_true(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        e->o.log = NULL;
        pc_seam_install(lfd, cut_at);
        ks_store_t *s;
        if (ks_store_open(&e->o, &s) != 0)
            _exit(2);
        ks_topic_t *t = ks_topic_find(s, "pc", 2);
        ks_topic_change_t *ch;
        ks_topic_config_t cfg = *ks_store_defaults(s);
        if (!t || ks_topic_config_set(&cfg, "retention.ms", "3000") != 0)
            _exit(3);
        uint64_t mask = UINT64_C(1) << ks_topic_config_index("retention.ms");
        if ((configs ? ks_topic_configs_begin(s, t, &cfg, mask, &ch)
                     : ks_topic_grow_begin(s, t, 4, &ch)) != 0)
            _exit(3);
        pthread_t th; /* written on another thread, as the broker's pool does */
        if (pthread_create(&th, NULL, write_thread, ch) != 0)
            _exit(3);
        pthread_join(th, NULL);
        if (ks_topic_change_finish(ch) != 0)
            _exit(3);
        pc_note(1); /* the change was answered */
        int steps = atomic_load(&pc_steps);
        _exit(10 + (steps > 245 ? 245 : steps));
    }
    close(lfd);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) >= 10));
    pc_replay(&pc, logp);
    *lost += pc_materialize(&pc, seed);
    bool answered = pc.note == 1;
    pc_free(&pc);
    unlink(logp);
    return cut_at == 0 ? WEXITSTATUS(st) - 10 : (answered ? -2 : -1);
}

/* After the cut: the old topic or the new one, never a mix, every record kept; the new one
 * once the change was answered. Returns true for the new one. */
static bool check_after_cut(t_env_t *e, int r, bool configs, int64_t dflt)
{
    ks_topic_t *t = ks_topic_find(e->s, "pc", 2);
    assert_non_null(t);
    for (int i = 0; i < 2; i++)
        assert_true(ks_part_log_end(ks_topic_part(t, i)) == 5);
    bool changed;
    if (configs) {
        assert_int_equal(ks_topic_partitions(t), 2);
        changed = retention_ms(t) == 3000;
        assert_true(changed || retention_ms(t) == dflt);
    } else {
        int32_t n = ks_topic_partitions(t);
        assert_true(n == 2 || n == 4);
        changed = n == 4;
        assert_int_equal(count_dirs(e->dir, "pc"), n); /* no orphan left behind */
        for (int32_t i = 0; i < n; i++)
            assert_int_equal(t_append_rc(ks_topic_part(t, i), 1, 1000, 10), 0);
    }
    if (!changed)
        assert_true(r == -1); /* never lost once answered */
    return changed;
}

static void power_cut_every_step(bool configs)
{
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int variants = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 12 : 3;
    int total = 0, changed = 0, old = 0;
    long lost = 0;
    for (int n = 0; n == 0 || n <= total; n++) {
        for (int v = 0; v < (n ? variants : 1); v++) {
            unsigned vs = seed * 7919u + (unsigned)(n * 31 + v);
            t_env_t e;
            t_env_init(&e);
            t_env_open(&e);
            ks_topic_t *t;
            assert_int_equal(ks_topic_create(e.s, "pc", 2, NULL, &t), 0);
            int64_t dflt = retention_ms(t);
            for (int i = 0; i < 2; i++)
                assert_true(t_append(ks_topic_part(t, i), 5, 1000, 10) == 0);
            t_env_close(&e); /* durable */
            int r = pc_change_run(&e, n, &vs, &lost, configs);
            if (n == 0) {
                total = r;
                assert_true(total > 3 && total < 235);
            }
            t_env_open(&e);
            if (check_after_cut(&e, r, configs, dflt))
                changed++;
            else
                old++;
            t_env_deinit(&e);
        }
    }
    assert_true(changed > 0 && old > 0);
    printf("power cut during %s: %d steps x %d disks: %d changed, %d old (seed %u), %ld unsynced "
           "changes dropped\n", configs ? "alter configs" : "create partitions", total, variants,
           changed, old, seed, lost);
}

static void test_power_cut_at_every_grow_step(void **state)
{
    (void)state;
    power_cut_every_step(false);
}

static void test_power_cut_at_every_configs_step(void **state)
{
    (void)state;
    power_cut_every_step(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_split),
        cmocka_unit_test(test_configs_split),
        cmocka_unit_test(test_finish_without_write_rolls_back),
        cmocka_unit_test(test_write_failure_rolls_back),
        cmocka_unit_test(test_deleted_before_finish),
        cmocka_unit_test(test_store_closed_before_finish),
        cmocka_unit_test(test_write_holds_no_store_lock),
        cmocka_unit_test(test_power_cut_at_every_grow_step),
        cmocka_unit_test(test_power_cut_at_every_configs_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Storage: topic creation in three steps (ks.h: begin on the loop, write anywhere without the
 * store lock, finish on the loop): the name is reserved in between, nothing finds a half-made
 * topic, failures and store closes roll back, the write holds no lock, and a power cut at any
 * I/O step of a create leaves no topic or the whole topic (ks_powercut.h). Deletion likewise
 * (begin, sync of the log dirs, finish handing the files to the flusher).
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
        if (strncmp(e->d_name, topic, len) == 0 && e->d_name[len] == '-')
            n++;
    closedir(d);
    return n;
}

static void test_begin_reserves_the_name(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_pending_t *pt, *pt2;
    assert_int_equal(ks_topic_create_begin(e.s, "a", 3, NULL, &pt), 0);
    /* Reserved: a second create of the name, by either path, is told it exists. */
    assert_int_equal(ks_topic_create_begin(e.s, "a", 1, NULL, &pt2), K_ERR_EXISTS);
    assert_int_equal(ks_topic_create(e.s, "a", 1, NULL, NULL), K_ERR_EXISTS);
    /* Nothing finds it, lists it or deletes it before finish. */
    assert_null(ks_topic_find(e.s, "a", 1));
    assert_null(ks_topic_next(e.s, NULL));
    assert_int_equal(ks_topic_delete(e.s, "a"), K_ERR_NOENT);
    assert_int_equal(count_dirs(e.dir, "a"), 0); /* begin touched no file */
    assert_int_equal(ks_topic_create_write(pt), 0);
    assert_int_equal(count_dirs(e.dir, "a"), 3);
    assert_null(ks_topic_find(e.s, "a", 1)); /* written, not yet published */
    ks_topic_t *t = NULL;
    assert_int_equal(ks_topic_create_finish(pt, &t), 0);
    assert_ptr_equal(ks_topic_find(e.s, "a", 1), t);
    assert_int_equal(ks_topic_partitions(t), 3);
    assert_true(t_append(ks_topic_part(t, 2), 2, 1000, 10) == 0);
    assert_int_equal(ks_topic_create(e.s, "a", 1, NULL, NULL), K_ERR_EXISTS);
    /* Bad arguments never reserve anything. */
    assert_int_equal(ks_topic_create_begin(e.s, "..", 1, NULL, &pt2), K_ERR_INVAL);
    assert_int_equal(ks_topic_create_begin(e.s, "b", 0, NULL, &pt2), K_ERR_INVAL);
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "a", 1);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 3);
    assert_true(ks_part_log_end(ks_topic_part(t, 2)) == 2);
    t_env_deinit(&e);
}

static void test_finish_without_write_lets_go(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_pending_t *pt;
    assert_int_equal(ks_topic_create_begin(e.s, "gone", 4, NULL, &pt), 0);
    assert_int_equal(ks_topic_create_finish(pt, NULL), K_ERR_INVAL);
    assert_null(ks_topic_find(e.s, "gone", 4));
    assert_int_equal(count_dirs(e.dir, "gone"), 0);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "gone", 2, NULL, &t), 0); /* the name is free */
    t_env_deinit(&e);
}

/* mkdir fails with ENOSPC from the fail_at-th call on. */
static atomic_int mk_calls, mk_fail_at;
static int failing_mkdir(const char *path, mode_t mode)
{
    if (atomic_fetch_add(&mk_calls, 1) + 1 >= atomic_load(&mk_fail_at)) {
        errno = ENOSPC;
        return -1;
    }
    return mkdir(path, mode);
}

static void test_write_failure_rolls_back(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_io.mkdir = failing_mkdir;
    atomic_store(&mk_calls, 0);
    atomic_store(&mk_fail_at, 3); /* two of four directories made, then the disk is full */
    ks_topic_pending_t *pt;
    assert_int_equal(ks_topic_create_begin(e.s, "full", 4, NULL, &pt), 0);
    t_log_errors = 0;
    assert_int_equal(ks_topic_create_write(pt), K_ERR_NOSPC);
    assert_int_equal(count_dirs(e.dir, "full"), 0); /* what it made is removed */
    assert_int_equal(ks_topic_create_finish(pt, NULL), K_ERR_NOSPC);
    assert_true(t_log_errors >= 1); /* logged by finish, on the loop */
    assert_null(ks_topic_find(e.s, "full", 4));
    ks_io = ks_io_posix;
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "full", 4, NULL, &t), 0);
    assert_int_equal(count_dirs(e.dir, "full"), 4);
    t_env_reopen(&e);
    assert_non_null(ks_topic_find(e.s, "full", 4));
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
    ks_topic_create_write(arg);
    return NULL;
}

static void test_write_holds_no_store_lock(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *other;
    assert_int_equal(ks_topic_create(e.s, "other", 1, NULL, &other), 0);
    ks_topic_pending_t *pt;
    assert_int_equal(ks_topic_create_begin(e.s, "slow", 2, NULL, &pt), 0);
    gate_open = gate_entered = false;
    ks_io.fsync = gated_fsync;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_thread, pt), 0);
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    /* The write is stuck inside its fsync: every call below takes the store lock. */
    assert_ptr_equal(ks_topic_find(e.s, "other", 5), other);
    assert_null(ks_topic_find(e.s, "slow", 4));
    assert_true(t_append(ks_topic_part(other, 0), 3, 1000, 10) == 0);
    ks_topic_t *t2;
    ks_io.fsync = ks_io_posix.fsync; /* this create's own metadata fsync must not wait */
    assert_int_equal(ks_topic_create(e.s, "meanwhile", 1, NULL, &t2), 0);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    pthread_join(th, NULL);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create_finish(pt, &t), 0);
    assert_int_equal(ks_topic_partitions(t), 2);
    t_env_deinit(&e);
}

static void test_store_closed_before_finish(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_pending_t *pt;
    assert_int_equal(ks_topic_create_begin(e.s, "late", 2, NULL, &pt), 0);
    t_env_close(&e);
    /* The pool thread may still be writing when the broker shuts down. */
    assert_int_equal(ks_topic_create_write(pt), 0);
    assert_int_equal(ks_topic_create_finish(pt, NULL), K_ERR_CLOSED);
    /* Written whole before the process ended: the next open serves it. */
    t_env_open(&e);
    ks_topic_t *t = ks_topic_find(e.s, "late", 4);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 2);
    t_env_deinit(&e);
}

/* One create in a forked child under the power-cut seam, from a durable store: open, create
 * "pc" (3 partitions) in three steps, close; the cut_at-th mutating call cuts the power (0:
 * none). The parent writes back one disk the cut may leave. Returns the child's steps. */
static void *delete_sync_thread(void *arg)
{
    ks_topic_delete_sync(arg);
    return NULL;
}

/* In the child: delete "pc" in three steps, the sync on another thread. */
static void child_delete(ks_store_t *s)
{
    ks_topic_deleting_t *pd;
    if (ks_topic_delete_begin(s, "pc", &pd) != 0)
        _exit(3);
    pthread_t th;
    if (pthread_create(&th, NULL, delete_sync_thread, pd) != 0)
        _exit(3);
    pthread_join(th, NULL);
    ks_topic_delete_finish(pd);
}

static int pc_create_run(t_env_t *e, int cut_at, unsigned *seed, long *lost, bool del)
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
        if (del) {
            child_delete(s);
        } else {
            ks_topic_pending_t *pt;
            if (ks_topic_create_begin(s, "pc", 3, NULL, &pt) != 0)
                _exit(3);
            pthread_t th; /* written on another thread, as the broker's pool does */
            if (pthread_create(&th, NULL, write_thread, pt) != 0)
                _exit(3);
            pthread_join(th, NULL);
            if (ks_topic_create_finish(pt, NULL) != 0)
                _exit(3);
        }
        pc_note(1); /* the create (delete) was answered */
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

/* A power cut at every I/O step of a create (and the store open before it): for each step,
 * three disks the cut may leave. The store must then open with no topic "pc" and none of its
 * directories, or with all three partitions writable; a create that was answered is there. */
static void test_power_cut_at_every_create_step(void **state)
{
    (void)state;
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int variants = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 12 : 3;
    int total = 0, whole = 0, none = 0;
    long lost = 0;
    for (int n = 0; n == 0 || n <= total; n++) {
        for (int v = 0; v < (n ? variants : 1); v++) {
            unsigned vs = seed * 7919u + (unsigned)(n * 31 + v);
            t_env_t e;
            t_env_init(&e);
            t_env_open(&e);
            t_env_close(&e); /* durable: meta.properties, the clean marker */
            int r = pc_create_run(&e, n, &vs, &lost, false);
            if (n == 0) {
                total = r;
                assert_true(total > 5 && total < 235);
            }
            t_env_open(&e);
            ks_topic_t *t = ks_topic_find(e.s, "pc", 2);
            if (t) {
                whole++;
                assert_int_equal(ks_topic_partitions(t), 3);
                for (int i = 0; i < 3; i++)
                    assert_true(t_append(ks_topic_part(t, i), 1, 1000, 10) == 0);
            } else {
                none++;
                assert_true(r == -1); /* never lost once answered */
                assert_int_equal(count_dirs(e.dir, "pc"), 0);
                assert_int_equal(ks_topic_create(e.s, "pc", 3, NULL, &t), 0);
            }
            t_env_deinit(&e);
        }
    }
    assert_true(whole > 0 && none > 0);
    printf("power cut during create: %d steps x %d disks: %d whole topics, %d none (seed %u), "
           "%ld unsynced changes dropped\n", total, variants, whole, none, seed, lost);
}

/* The same for a delete of a topic holding records: the store then opens with the whole topic
 * (every record) or none of it, and none once the delete was answered. */
static void test_power_cut_at_every_delete_step(void **state)
{
    (void)state;
    unsigned seed = (unsigned)(getenv("DEPOT_SEED") ? atoi(getenv("DEPOT_SEED")) : time(NULL));
    int variants = getenv("DEPOT_LONG") && !strcmp(getenv("DEPOT_LONG"), "1") ? 12 : 3;
    int total = 0, whole = 0, none = 0;
    long lost = 0;
    for (int n = 0; n == 0 || n <= total; n++) {
        for (int v = 0; v < (n ? variants : 1); v++) {
            unsigned vs = seed * 7919u + (unsigned)(n * 31 + v);
            t_env_t e;
            t_env_init(&e);
            t_env_open(&e);
            ks_topic_t *t;
            assert_int_equal(ks_topic_create(e.s, "pc", 3, NULL, &t), 0);
            for (int i = 0; i < 3; i++)
                assert_true(t_append(ks_topic_part(t, i), 5, 1000, 10) == 0);
            t_env_close(&e); /* durable */
            int r = pc_create_run(&e, n, &vs, &lost, true);
            if (n == 0) {
                total = r;
                assert_true(total > 3 && total < 235);
            }
            t_env_open(&e);
            t = ks_topic_find(e.s, "pc", 2);
            if (t) {
                whole++;
                assert_true(r == -1); /* never back once answered */
                for (int i = 0; i < 3; i++)
                    assert_true(ks_part_log_end(ks_topic_part(t, i)) == 5);
            } else {
                none++;
                assert_int_equal(count_dirs(e.dir, "pc"), 0);
            }
            t_env_deinit(&e);
        }
    }
    assert_true(whole > 0 && none > 0);
    printf("power cut during delete: %d steps x %d disks: %d whole topics, %d none (seed %u), "
           "%ld unsynced changes dropped\n", total, variants, whole, none, seed, lost);
}

static void test_delete_split(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_open(&e);
    ks_topic_t *t;
    assert_int_equal(ks_topic_create(e.s, "d", 2, NULL, &t), 0);
    assert_true(t_append(ks_topic_part(t, 1), 4, 1000, 10) == 0);
    ks_topic_deleting_t *pd;
    assert_int_equal(ks_topic_delete_begin(e.s, "nope", &pd), K_ERR_NOENT);
    assert_int_equal(ks_topic_delete_begin(e.s, "d", &pd), 0);
    /* Gone at once: a new topic of the name can be made before the old one's fsyncs ran. */
    assert_null(ks_topic_find(e.s, "d", 1));
    assert_int_equal(ks_topic_create(e.s, "d", 1, NULL, &t), 0);
    ks_topic_delete_sync(pd);
    ks_topic_delete_finish(pd);
    t_env_reopen(&e);
    t = ks_topic_find(e.s, "d", 1);
    assert_non_null(t);
    assert_int_equal(ks_topic_partitions(t), 1);
    assert_true(ks_part_log_end(ks_topic_part(t, 0)) == 0);
    /* Closed between begin and finish: the leftovers go at the next open. */
    assert_int_equal(ks_topic_delete_begin(e.s, "d", &pd), 0);
    t_env_close(&e);
    ks_topic_delete_sync(pd);
    ks_topic_delete_finish(pd);
    t_env_open(&e);
    assert_null(ks_topic_find(e.s, "d", 1));
    assert_int_equal(count_dirs(e.dir, "d"), 0);
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_reserves_the_name),
        cmocka_unit_test(test_finish_without_write_lets_go),
        cmocka_unit_test(test_write_failure_rolls_back),
        cmocka_unit_test(test_write_holds_no_store_lock),
        cmocka_unit_test(test_store_closed_before_finish),
        cmocka_unit_test(test_power_cut_at_every_create_step),
        cmocka_unit_test(test_delete_split),
        cmocka_unit_test(test_power_cut_at_every_delete_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Storage: SIGKILL in the middle of acks=all appends loses nothing that was acknowledged. */
#include <signal.h>
#include <sys/wait.h>

#include "tests/storage/ks_test.h"

static volatile int child_ready;
static void child_on_ready(void *ud)
{
    (void)ud;
    child_ready = 1;
}

/* Child: append + sync in a loop, reporting each acknowledged end offset on fd. */
static void child_main(t_env_t *e, int fd)
{
    e->o.log = NULL;
    e->o.on_sync_ready = child_on_ready;
    ks_store_t *s;
    if (ks_store_open(&e->o, &s) != 0)
        _exit(2);
    ks_topic_t *t = ks_topic_find(s, "c", 1);
    if (!t)
        _exit(3);
    ks_part_t *p = ks_topic_part(t, 0);
    kp_buf_t tmpl, b;
    kp_buf_init(&tmpl);
    kp_buf_init(&b);
    t_batch(&tmpl, 3, 1000, 200);
    kp_buf_reserve(&b, tmpl.len);
    for (;;) {
        memcpy(b.data, tmpl.data, tmpl.len);
        ks_append_result_t res;
        if (ks_part_append(p, b.data, tmpl.len, 1000, &res) != 0)
            _exit(4);
        t_sync_t w = {0, 0};
        ks_part_sync(p, res.last_offset + 1, t_sync_cb, &w);
        while (!w.calls) {
            ks_store_run_completions(s);
            if (!w.calls)
                usleep(50);
        }
        if (w.status != 0)
            _exit(5);
        int64_t acked = res.last_offset + 1;
        if (write(fd, &acked, sizeof acked) != sizeof acked)
            _exit(6);
    }
}

static void test_sigkill_keeps_acknowledged(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.o.defaults.segment_bytes = 4000; /* rolls happen during the run */
    t_env_open(&e);
    t_topic(&e, "c", 1, NULL);
    t_env_close(&e);
    int64_t prev_end = 0;
    for (int round = 0; round < 4; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(&e, fds[1]);
        }
        close(fds[1]);
        int64_t acked = -1, v;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long limit_ms = 150 + 80 * round;
        for (;;) {
            if (read(fds[0], &v, sizeof v) != sizeof v)
                break;
            acked = v;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > limit_ms)
                break;
        }
        kill(pid, SIGKILL);
        /* Acks that were in the pipe already count too. */
        while (read(fds[0], &v, sizeof v) == sizeof v)
            acked = v;
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        assert_true(acked > prev_end);
        t_env_open(&e);
        ks_part_t *p = t_part(&e, "c", 0);
        int64_t end = ks_part_log_end(p);
        assert_true(end >= acked);
        for (int64_t off = 0; off < end; off += 3) {
            int64_t first;
            t_read_check(p, off, 1, true, &first);
            assert_true(first == off);
        }
        prev_end = end;
        t_env_close(&e);
    }
    t_env_deinit(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_keeps_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

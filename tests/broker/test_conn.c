/* Framing without a socket (broker/frame.c): split points, size limits, backpressure stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/net/frame.h"
#include "protocol/k_status.h"

typedef struct {
    int n;
    size_t lens[64];
    uint8_t first[64];
    int stop_after; /* return 1 after this many frames, 0 = never */
    int fail_at;    /* return K_ERR_INVAL at this frame (1-based), 0 = never */
} sink_t;

static int on_frame(void *ud, uint8_t *frame, size_t len)
{
    sink_t *s = ud;
    s->lens[s->n] = len;
    s->first[s->n] = frame[0];
    s->n++;
    free(frame);
    if (s->fail_at && s->n == s->fail_at) return K_ERR_INVAL;
    return s->stop_after && s->n % s->stop_after == 0 ? 1 : 0;
}

/* Three frames of 1, 5 and 70000 bytes (the last bigger than the first buffer). */
static uint8_t *make_stream(size_t *len)
{
    size_t sizes[3] = {1, 5, 70000};
    size_t total = 0;
    for (int i = 0; i < 3; i++)
        total += 4 + sizes[i];
    uint8_t *p = malloc(total), *q = p;
    for (int i = 0; i < 3; i++) {
        uint32_t n = (uint32_t)sizes[i];
        q[0] = (uint8_t)(n >> 24);
        q[1] = (uint8_t)(n >> 16);
        q[2] = (uint8_t)(n >> 8);
        q[3] = (uint8_t)n;
        memset(q + 4, 'a' + i, sizes[i]);
        q += 4 + sizes[i];
    }
    *len = total;
    return p;
}

static void test_framer_whole_stream(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = make_stream(&len);
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    size_t used = 0;
    assert_int_equal(kb_framer_feed(&f, data, len, &used, on_frame, &s), 0);
    assert_int_equal(used, len);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.lens[0], 1);
    assert_int_equal(s.lens[1], 5);
    assert_int_equal(s.lens[2], 70000);
    assert_int_equal(s.first[2], 'c');
    kb_framer_deinit(&f);
    free(data);
}

static void test_framer_byte_by_byte(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = make_stream(&len);
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    for (size_t i = 0; i < len; i++) {
        size_t used = 0;
        assert_int_equal(kb_framer_feed(&f, data + i, 1, &used, on_frame, &s), 0);
        assert_int_equal(used, 1);
    }
    assert_int_equal(s.n, 3);
    assert_int_equal(s.lens[2], 70000);
    assert_int_equal(s.first[1], 'b');
    kb_framer_deinit(&f);
    free(data);
}

static void test_framer_stop_keeps_the_rest(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = make_stream(&len);
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    s.stop_after = 1;
    size_t used = 0;
    assert_int_equal(kb_framer_feed(&f, data, len, &used, on_frame, &s), 1);
    assert_int_equal(used, 5); /* exactly the first frame */
    assert_int_equal(s.n, 1);
    size_t pos = used;
    assert_int_equal(kb_framer_feed(&f, data + pos, len - pos, &used, on_frame, &s), 1);
    assert_int_equal(used, 9);
    pos += used;
    assert_int_equal(kb_framer_feed(&f, data + pos, len - pos, &used, on_frame, &s), 1);
    assert_int_equal(pos + used, len);
    assert_int_equal(s.n, 3);
    kb_framer_deinit(&f);
    free(data);
}

static void test_framer_rejects_bad_sizes(void **state)
{
    (void)state;
    kb_framer_t f;
    sink_t s = {0};
    size_t used;
    const uint8_t zero[4] = {0, 0, 0, 0};
    kb_framer_init(&f, 100);
    assert_int_equal(kb_framer_feed(&f, zero, 4, &used, on_frame, &s), K_ERR_MALFORMED);
    kb_framer_deinit(&f);

    const uint8_t negative[4] = {0xff, 0xff, 0xff, 0xfe};
    kb_framer_init(&f, 100);
    assert_int_equal(kb_framer_feed(&f, negative, 4, &used, on_frame, &s), K_ERR_MALFORMED);
    kb_framer_deinit(&f);

    const uint8_t big[6] = {0, 0, 0, 101, 1, 2};
    kb_framer_init(&f, 100);
    assert_int_equal(kb_framer_feed(&f, big, 6, &used, on_frame, &s), K_ERR_TOOLARGE);
    kb_framer_deinit(&f);

    const uint8_t exact[4] = {0, 0, 0, 100};
    kb_framer_init(&f, 100);
    assert_int_equal(kb_framer_feed(&f, exact, 4, &used, on_frame, &s), 0);
    kb_framer_deinit(&f); /* frees the partial frame */
    assert_int_equal(s.n, 0);
}

static void test_framer_callback_error_stops(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = make_stream(&len);
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    s.fail_at = 2;
    size_t used = 0;
    assert_int_equal(kb_framer_feed(&f, data, len, &used, on_frame, &s), K_ERR_INVAL);
    assert_int_equal(s.n, 2);
    assert_int_equal(used, 14);
    kb_framer_deinit(&f);
    free(data);
}

/* Direct reads: after the size and a first chunk, the rest of a frame is read straight into
 * its buffer, which is allocated once (it never moves) for frames up to 1 MiB. */
static uint8_t *last_frame;
static int on_frame_keep(void *ud, uint8_t *frame, size_t len)
{
    sink_t *s = ud;
    s->lens[s->n++] = len;
    last_frame = frame;
    return 0;
}

static void test_framer_direct_reads_into_one_buffer(void **state)
{
    (void)state;
    const size_t len = 600000;
    uint8_t *wire = malloc(4 + len);
    wire[0] = 0, wire[1] = (uint8_t)(len >> 16), wire[2] = (uint8_t)(len >> 8), wire[3] = (uint8_t)len;
    for (size_t i = 0; i < len; i++)
        wire[4 + i] = (uint8_t)(i * 13);
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    size_t used = 0;
    uint8_t *p;
    size_t n;
    assert_int_equal(kb_framer_direct(&f, &p, &n), 0); /* nothing in progress */
    assert_int_equal(n, 0);
    assert_int_equal(kb_framer_feed(&f, wire, 1000, &used, on_frame_keep, &s), 0);
    assert_int_equal(used, 1000);
    uint8_t *buf0 = f.frame;
    size_t at = 1000;
    while (s.n == 0) {
        assert_int_equal(kb_framer_direct(&f, &p, &n), 0);
        assert_true(n > 0 && n <= 4 + len - at);
        assert_ptr_equal(f.frame, buf0); /* allocated once: never moved */
        size_t take = n < 70000 ? n : 70000; /* the socket gives what it has */
        memcpy(p, wire + at, take);
        at += take;
        assert_int_equal(kb_framer_commit(&f, take, on_frame_keep, &s), 0);
    }
    assert_int_equal(at, 4 + len);
    assert_int_equal(s.lens[0], len);
    assert_ptr_equal(last_frame, buf0);
    assert_memory_equal(last_frame, wire + 4, len);
    free(last_frame);
    kb_framer_deinit(&f);
    free(wire);
}

/* A frame of 16 KiB..1 MiB has room past its end: the read that completes it may go on into
 * the next frame's first bytes, which stay in place for the caller to move; small frames have
 * none. */
static void test_framer_slack_past_the_frame(void **state)
{
    (void)state;
    const size_t len = 100000;
    uint8_t hdr[4] = {0, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    kb_framer_t f;
    kb_framer_init(&f, 1 << 20);
    sink_t s = {0};
    size_t used = 0;
    uint8_t *p, *slack = NULL;
    size_t n;
    assert_int_equal(kb_framer_slack(&f, &slack), 0); /* nothing in progress */
    assert_int_equal(kb_framer_feed(&f, hdr, 4, &used, on_frame_keep, &s), 0);
    assert_int_equal(kb_framer_direct(&f, &p, &n), 0);
    assert_int_equal(n, len);
    size_t room = kb_framer_slack(&f, &slack);
    assert_true(room >= 16);
    assert_ptr_equal(slack, p + len);
    for (size_t i = 0; i < len + 16; i++)
        p[i] = (uint8_t)(i * 7); /* the frame, then 16 bytes of whatever follows it */
    uint8_t next[16];
    memcpy(next, slack, 16);
    assert_int_equal(kb_framer_commit(&f, len, on_frame_keep, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.lens[0], len);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(last_frame[i], (uint8_t)(i * 7));
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(next[i], (uint8_t)((len + i) * 7));
    free(last_frame);
    assert_int_equal(kb_framer_slack(&f, &slack), 0); /* handed over: nothing in progress */
    uint8_t small[4] = {0, 0, 0x10, 0}; /* 4 KiB: read with others through the read buffer */
    assert_int_equal(kb_framer_feed(&f, small, 4, &used, on_frame_keep, &s), 0);
    assert_int_equal(kb_framer_slack(&f, &slack), 0);
    kb_framer_deinit(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_whole_stream),
        cmocka_unit_test(test_framer_direct_reads_into_one_buffer),
        cmocka_unit_test(test_framer_slack_past_the_frame),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_stop_keeps_the_rest),
        cmocka_unit_test(test_framer_rejects_bad_sizes),
        cmocka_unit_test(test_framer_callback_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

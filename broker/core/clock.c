/* The broker's two clocks (see clock.h). */
#include "broker/core/clock.h"

#include <stdatomic.h>
#include <time.h>

/* Test offsets: written by a test hook (possibly from a signal-free control path on the loop),
 * read everywhere; relaxed atomics are enough, nothing else is ordered by them. */
static _Atomic int64_t wall_offset_ms, mono_offset_ms;

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kb_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC) + atomic_load_explicit(&mono_offset_ms, memory_order_relaxed);
}

int64_t kb_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME) + atomic_load_explicit(&wall_offset_ms, memory_order_relaxed);
}

void kb_clock_test_step_wall(int64_t delta_ms)
{
    atomic_fetch_add_explicit(&wall_offset_ms, delta_ms, memory_order_relaxed);
}

void kb_clock_test_step_mono(int64_t delta_ms)
{
    atomic_fetch_add_explicit(&mono_offset_ms, delta_ms, memory_order_relaxed);
}

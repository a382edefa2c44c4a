/*
 * Two clocks, never mixed:
 *   kb_mono_ms()  CLOCK_MONOTONIC, for every deadline and interval (session timeouts,
 *                 long-poll waits, linger, drain, retention/cleaner ticks' pacing). It never
 *                 jumps, so an NTP step on a box that boots without a clock neither expires
 *                 every group member nor freezes a long-poll.
 *   kb_wall_ms()  CLOCK_REALTIME, only for timestamps written into data or compared with data
 *                 (record timestamps, commit timestamps, retention.ms against a segment's
 *                 largest timestamp, audit times).
 * libuv's uv_now() is monotonic too; timers on the loop keep using it.
 *
 * Test hook: kb_clock_test_step_wall(delta) shifts what kb_wall_ms() returns (never the
 * system clock), so a test can step the wall clock under a running broker and check that
 * deadlines do not move. kb_clock_test_step_mono exists for unit tests of deadline logic.
 */
#ifndef KB_CLOCK_H
#define KB_CLOCK_H

#include <stdint.h>

int64_t kb_mono_ms(void);
int64_t kb_wall_ms(void);

void kb_clock_test_step_wall(int64_t delta_ms);
void kb_clock_test_step_mono(int64_t delta_ms);

#endif

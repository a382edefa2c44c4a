"""Idempotent producer (librdkafka enable.idempotence) exactly-once across a broker crash.
Run with /usr/bin/python3.

Before the broker checked producer sequences this stored a retried batch twice (500-1500
duplicates in 40,000 with five kills); it must recognise them after recovery from the log."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Producer  # noqa: E402

from test_confluent_paths import create_topic, read_from, value  # noqa: E402


def test_idempotent_producer_kill9_mid_stream_no_duplicates():
    """kill -9 while an idempotent producer has batches in flight: after the restart it
    retries them, and the broker must recognise the ones it already wrote (from the log) so
    every message is stored exactly once, in order."""
    n = 40_000
    with Broker() as b:
        create_topic(b.bootstrap, "idem-kill", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                      "linger.ms": 2, "batch.num.messages": 500})
        acked = [0]
        errors = []

        def cb(err, msg):
            if err is None:
                acked[0] += 1
            else:
                errors.append(err)

        # Kill -9 five times while batches are in flight (written but not yet acknowledged
        # is the window that matters: acks=all answers after the fsync). The kills are spread
        # over the production itself: with everything queued up front, a fast broker acked the
        # last kills' share in one burst after a restart and no batch was left to be in flight.
        kills = 0
        in_flight_at_kill = []
        deadline = time.monotonic() + 90
        for i in range(n):
            while True:
                try:
                    p.produce("idem-kill", key=b"%d" % i, value=value(i), partition=0,
                              on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 500 == 0:
                p.poll(0)
            if kills < 5 and i + 1 == (kills + 1) * n // 6:
                # let the producer get going, then kill with the newest batches unanswered
                while acked[0] < i + 1 - 2000 and time.monotonic() < deadline:
                    p.poll(0.001)
                check(time.monotonic() < deadline, "kill %d never reached (%d acked)",
                      kills + 1, acked[0])
                in_flight_at_kill.append(i + 1 - acked[0])
                b.restart(hard=True)
                kills += 1
        # a kill with nothing outstanding proves nothing about retries: every one must have had
        # messages unanswered (as the test asked before its kills were spread)
        print("    messages outstanding at the five kills: %s" % in_flight_at_kill)
        check(len(in_flight_at_kill) == 5 and all(k > 0 for k in in_flight_at_kill),
              "messages outstanding at each kill: %s", in_flight_at_kill)
        check(p.flush(120) == 0, "undelivered after restart")
        check(not errors, "delivery errors: %s", errors[:3])
        ms = read_from(b.bootstrap, "idem-kill", OFFSET_BEGINNING, n + 1000, timeout=60)
        got = [int(m.key()) for m in ms]
        dups = len(got) - len(set(got))
        check(got == list(range(n)), "%d stored for %d produced, %d duplicates, first mismatch "
              "at %s", len(got), n, dups, next((k for k, v in enumerate(got) if v != k), None))
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

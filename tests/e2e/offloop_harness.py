"""What the off-the-loop admin tests share (test_admin_offloop.py,
test_admin_offloop_topics.py): a broker with every fsync slowed, kafka-python's admin client,
and a producer in its own process whose round trips must stay below the slowed fsync."""

import multiprocessing
import os
import threading
import time

from depot_harness import Broker, check, sanitized_build

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

# Each admin change fsyncs at least twice (file, directory), so on the loop it stalls every
# client for 2 x SLOW_MS or more; off the loop a round trip stays below SLOW_MS. An ASan broker
# (make test-asan) runs a few times slower on a shared machine: more room there.
SLOW_MS = 500 if sanitized_build() else 300


def slow_broker():
    os.environ["DEPOT_TEST_SLOW_FSYNC_MS"] = str(SLOW_MS)
    try:
        return Broker(name="offloop")
    finally:
        del os.environ["DEPOT_TEST_SLOW_FSYNC_MS"]


def admin(b):
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, api_version=(2, 5, 0),
                            request_timeout_ms=60000)


def create(b, name, parts=1):
    """The topic's error code from one CreateTopics (0 = created)."""
    a = admin(b)
    try:
        resp = a.create_topics([NewTopic(name, parts, 1)], timeout_ms=60000)
        return resp.topic_errors[0][1]
    except Exception as e:  # kafka-python versions that raise on a topic error
        return getattr(e, "errno", -1)
    finally:
        a.close()


def _probe(bootstrap, topic, stop, ready, out, extra):
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0, api_version=(2, 5, 0),
                      **extra)
    for _ in range(20):  # warm: connection, metadata, the first segment
        p.send(topic, b"warm").get(30)
    ready.set()
    rtts = []
    while not stop.is_set():
        t0 = time.monotonic()
        p.send(topic, b"x" * 100).get(30)
        rtts.append((time.monotonic() - t0) * 1000)
    p.close()
    out.put(rtts)


class Prober:
    """An acks=1 producer sending one small record at a time, round trips in ms. In a process
    of its own: the test's admin threads must not hold its interpreter lock and be counted as
    broker latency."""

    def __init__(self, b, topic="probe", extra=None):
        ctx = multiprocessing.get_context("fork")
        self.stop, ready, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_probe, args=(b.bootstrap, topic, self.stop, ready,
                                                     self.out, extra or {}))
        self.proc.start()
        check(ready.wait(60), "the probe producer did not start")
        time.sleep(0.3)

    def finish(self, what):
        self.stop.set()
        d = sorted(self.out.get(timeout=60))
        self.proc.join(30)
        check(len(d) >= 10, "too few produce round trips during %s: %d", what, len(d))
        p99 = d[min(len(d) - 1, int(len(d) * 0.99))]
        print("%s: %d produce round trips meanwhile: median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (what, len(d), d[len(d) // 2], p99, d[-1]))
        # Before the change each of these fsynced on the loop (twice or more, SLOW_MS each, and
        # the requests queued behind one another) and every round trip that met one waited
        # for it. The max gets room for a scheduling hiccup of this shared machine.
        check(p99 < SLOW_MS and d[-1] < 2 * SLOW_MS,
              "produce round trips during %s: p99 %.1f ms, max %.1f ms (fsync delay %d ms)",
              what, p99, d[-1], SLOW_MS)


def partition_counts(b, names):
    a = admin(b)
    try:
        return {t["topic"]: len(t["partitions"]) for t in a.describe_topics(names)
                if t["error_code"] == 0}
    finally:
        a.close()


def side_by_side(fn, items, go=None):
    """fn(item) for every item, each in a thread of its own, all at once; with go (an Event)
    set only once every thread has started, so they meet the broker together. Seconds taken."""
    ts = [threading.Thread(target=fn, args=(x,)) for x in items]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    if go is not None:
        go.set()
    for t in ts:
        t.join(120)
    return time.monotonic() - t0

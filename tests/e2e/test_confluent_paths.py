"""confluent-kafka (librdkafka) through the broker's less travelled paths: many small segments
with seeks and time lookups across them (and recovery of them after kill -9), the idempotent
producer across a broker restart, acks=0, and long-poll fetch wake-ups. Run with
/usr/bin/python3."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, fetch_v4_batches, run_tests  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError,  # noqa: E402
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BASE_TS = int(time.time() * 1000) - 600_000


def create_topic(bootstrap, name, parts, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                                  config=config or {})])[name].result(30)


def value(i):
    return b"v%08d-" % i + b"x" * (i % 200)


def produce_seq(p, topic, lo, hi, partition=0):
    """Produces messages lo..hi-1 (value(i), timestamp BASE_TS + 10*i) and waits for all."""
    errors = []
    for i in range(lo, hi):
        while True:
            try:
                p.produce(topic, value=value(i), key=b"%d" % i, partition=partition,
                          timestamp=BASE_TS + 10 * i,
                          on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
    check(p.flush(60) == 0, "undelivered messages after flush")
    check(not errors, "delivery errors: %s", errors[:3])


def consumer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": "e2e-paths", "enable.auto.commit": False,
            "enable.partition.eof": True}
    conf.update(extra)
    return Consumer(conf)


def read_from(bootstrap, topic, offset, count, partition=0, timeout=30):
    """count messages of partition starting at offset (fewer if EOF comes first)."""
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            check(time.monotonic() < deadline, "read_from %d timed out with %d", offset, len(out))
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError("consume error %s" % m.error())
            out.append(m)
        return out
    finally:
        c.close()


def check_seeks(bootstrap, topic, n):
    for off in (0, 1, 777, n // 3, n // 2 + 13, n - 1):
        ms = read_from(bootstrap, topic, off, 3)
        check(ms and ms[0].offset() == off, "seek to %d: first message at %s", off,
              ms[0].offset() if ms else None)
        for m in ms:
            i = m.offset()
            check(m.value() == value(i) and m.timestamp()[1] == BASE_TS + 10 * i,
                  "seek to %d: message %d differs", off, i)
    # offsets_for_times across segments: exact record, also between two timestamps
    c = consumer(bootstrap)
    try:
        for i in (0, 5, n // 4 + 1, n - 2):
            for delta in (0, -3):  # exactly record i's time, and a time just before it
                tp = c.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 10 * i + delta)],
                                         timeout=10)[0]
                check(tp.error is None and tp.offset == i, "offsets_for_times(%d%+d): %s", i,
                      delta, tp)
        tp = c.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 10 * n + 5)], timeout=10)[0]
        check(tp.offset in (-1, n), "time after the last record: offset %s", tp.offset)
    finally:
        c.close()


def test_small_segments_seek_and_recover():
    n = 30_000
    with Broker({"log.segment.bytes": 65536, "log.index.interval.bytes": 1024}) as b:
        create_topic(b.bootstrap, "segs", 1)
        # small batches, so each segment holds many and seeks land inside segments
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                      "batch.num.messages": 50})
        produce_seq(p, "segs", 0, n)
        segs = [f for _, _, fs in os.walk(b.data_dir) for f in fs if f.endswith(".log")]
        check(len(segs) > 20, "expected many segments with log.segment.bytes=65536, found %d",
              len(segs))
        print("    %d segment files" % len(segs))
        check_seeks(b.bootstrap, "segs", n)
        b.restart(hard=True)  # kill -9: recovery of the active segment, indexes rebuilt
        check_seeks(b.bootstrap, "segs", n)
        produce_seq(p, "segs", n, n + 1000)  # appends continue at the right offset
        ms = read_from(b.bootstrap, "segs", n - 1, 3)
        check([m.offset() for m in ms] == [n - 1, n, n + 1] and ms[1].value() == value(n),
              "after recovery: %s", [(m.offset(), m.value()[:10]) for m in ms])
        b.stop()


def test_idempotent_producer_across_restart():
    with Broker() as b:
        create_topic(b.bootstrap, "idem", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                      "linger.ms": 5})
        produce_seq(p, "idem", 0, 20_000)
        b.restart()  # same producer id and sequences continue on the new broker process
        produce_seq(p, "idem", 20_000, 30_000)
        b.restart(hard=True)
        produce_seq(p, "idem", 30_000, 35_000)
        ms = read_from(b.bootstrap, "idem", OFFSET_BEGINNING, 40_000, timeout=60)
        err, _, batches = fetch_v4_batches(b.port, "idem", 0)
        check(err == 0 and batches and all(x["producer_id"] >= 0 for x in batches),
              "idempotent batches without a producer id: %s", batches[:1])
        check(batches[0]["base_sequence"] == 0, "first batch sequence %d", batches[0]["base_sequence"])
        got = [int(m.key()) for m in ms]
        check(got == list(range(35_000)), "idempotent replay: %d messages, first mismatch at %s",
              len(got), next((k for k, v in enumerate(got) if v != k), None))
        b.stop()


def test_acks_zero():
    with Broker() as b:
        create_topic(b.bootstrap, "acks0", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": 0, "linger.ms": 5})
        produce_seq(p, "acks0", 0, 5_000)
        # acks=0 gets no answer; wait until the broker has them all (event: high watermark)
        c = consumer(b.bootstrap)
        deadline = time.monotonic() + 20
        while c.get_watermark_offsets(TopicPartition("acks0", 0), timeout=5)[1] < 5_000:
            check(time.monotonic() < deadline, "acks=0 messages did not all arrive")
            time.sleep(0.05)
        c.close()
        ms = read_from(b.bootstrap, "acks0", OFFSET_BEGINNING, 5_001)
        check([m.value() for m in ms] == [value(i) for i in range(5_000)], "acks=0 replay differs")
        # the connection stays in step: an acks=all producer on the same broker still works
        p2 = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        produce_seq(p2, "acks0", 5_000, 5_010)
        b.stop()


def test_long_poll_fetch_wakes_on_produce():
    """A consumer waiting at the end (fetch.wait.max.ms=5000) gets a new message right away:
    the produce must wake the parked fetch instead of letting it run out its wait."""
    with Broker() as b:
        create_topic(b.bootstrap, "wake", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": 1, "linger.ms": 0})
        p.list_topics(timeout=10)  # connected before the clock starts
        c = consumer(b.bootstrap, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
        c.assign([TopicPartition("wake", 0, 0)])  # the topic is empty: offset 0 is its end
        c.poll(0.5)
        latencies = []
        for i in range(5):
            time.sleep(0.3)  # let the next long-poll fetch park on the broker
            sent = time.monotonic()
            p.produce("wake", value=b"wake-%d" % i, partition=0)
            p.flush(10)
            while True:
                m = c.poll(0.05)
                check(time.monotonic() - sent < 10, "message %d not received in 10 s", i)
                if m is not None and not m.error():
                    check(m.value() == b"wake-%d" % i, "got %r", m.value())
                    latencies.append(time.monotonic() - sent)
                    break
        c.close()
        print("    produce-to-consume latencies: %s" % ["%.3f" % x for x in latencies])
        # Without a wake-up each message waits out most of fetch.wait.max.ms (5 s).
        check(sorted(latencies)[2] < 1.0, "median produce-to-consume latency %.2fs with "
              "fetch.wait.max.ms=5000: parked fetches are not woken", sorted(latencies)[2])
        b.stop()


def ride_through(restarts, n=20_000):
    """A consumer keeps its position and a producer keeps producing while the broker restarts
    under them at the given consumed counts; returns the consumed keys."""
    with Broker() as b:
        create_topic(b.bootstrap, "ride", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 2,
                      "batch.num.messages": 200, "max.in.flight.requests.per.connection": 5})
        c = consumer(b.bootstrap, **{"enable.partition.eof": False})
        c.assign([TopicPartition("ride", 0, 0)])
        got, errors, sent = [], [], 0
        restarts = list(restarts)
        deadline = time.monotonic() + 120
        while len(set(got)) < n:
            check(time.monotonic() < deadline, "stalled: %d sent, %d consumed", sent, len(got))
            if sent < n:
                for i in range(sent, min(n, sent + 500)):
                    try:
                        p.produce("ride", key=b"%d" % i, value=value(i), partition=0,
                                  on_delivery=lambda err, msg: err and errors.append(err))
                        sent += 1
                    except BufferError:
                        break
            p.poll(0)
            for m in c.consume(1000, 0.05):
                if not m.error():
                    got.append(int(m.key()))
            if restarts and len(got) >= restarts[0][1]:
                kind, _ = restarts.pop(0)
                b.restart(hard=(kind == "kill"))
        check(p.flush(60) == 0 and not errors, "producer: errors %s", errors[:3])
        got += [int(m.key()) for m in c.consume(1000, 0.5) if not m.error()]
        c.close()
        b.stop()
        return got


def test_consumer_and_producer_ride_through_sigterm_restarts():
    """Clean restarts drain: whatever the broker wrote it also acknowledged, so even a
    non-idempotent producer's retries make no duplicates: exactly once, in order."""
    n = 20_000
    got = ride_through([("term", n // 4), ("term", n // 2)], n)
    check(got == list(range(n)), "consumed %d, first mismatch at %s", len(got),
          next((k for k, v in enumerate(got) if v != k), None))


def test_consumer_and_producer_ride_through_kill9():
    """kill -9 may leave batches written but unacknowledged; a non-idempotent producer
    retries them (at-least-once), so duplicates are allowed, but nothing is lost and first
    occurrences keep the produce order."""
    n = 20_000
    got = ride_through([("kill", n // 4), ("kill", n // 2)], n)
    first = list(dict.fromkeys(got))
    check(first == list(range(n)), "lost or reordered: %d distinct of %d", len(first), n)
    dups = len(got) - n
    print("    %d duplicates from retried in-flight batches" % dups)
    # at most what was in flight at the two kills: 5 requests of one 200-message batch each
    check(dups <= 2 * 5 * 200, "%d duplicates: more than two kills' in-flight windows", dups)


def test_concurrent_producers_one_partition():
    """Four producers (own connections) append to one partition at once; every message is
    stored exactly once and each producer's messages keep their order."""
    with Broker() as b:
        create_topic(b.bootstrap, "many", 1)
        per = 5_000
        errs = []

        def run(k):
            try:
                p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 1})
                for i in range(per):
                    while True:
                        try:
                            p.produce("many", key=b"%d" % k, value=b"%d:%d" % (k, i), partition=0)
                            break
                        except BufferError:
                            p.poll(0.05)
                check(p.flush(60) == 0, "producer %d: undelivered", k)
            except Exception as e:  # reported by the main thread
                errs.append(e)

        ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        check(not errs, "producer errors: %s", errs)
        ms = read_from(b.bootstrap, "many", OFFSET_BEGINNING, 4 * per + 1, timeout=60)
        check(len(ms) == 4 * per, "stored %d of %d", len(ms), 4 * per)
        check([m.offset() for m in ms] == list(range(4 * per)), "offsets not contiguous")
        seqs = {k: [] for k in range(4)}
        for m in ms:
            k, i = m.value().split(b":")
            seqs[int(k)].append(int(i))
        for k, s in seqs.items():
            check(s == list(range(per)), "producer %d: %d messages, order kept: %s", k, len(s),
                  s == sorted(s))
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

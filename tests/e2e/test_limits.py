"""Size limits and edges with confluent-kafka: 1 MiB messages round trip, an empty topic
replays nothing and ends, message.max.bytes (broker and topic level) is enforced with
MESSAGE_TOO_LARGE and the producer carries on. Run with /usr/bin/python3."""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

MIB = 1 << 20
BROKER_MAX = 2_000_000


def create_topic(bootstrap, name, parts, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                                        config=config or {})], operation_timeout=10)
    fut[name].result(timeout=30)


def big_producer(bootstrap):
    # The client-side limit is raised well above the broker's so the broker is what enforces.
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 10_000_000,
                     "compression.type": "none"})


def deliver(p, topic, value, key=None, partition=0):
    """Produces one message and waits for its delivery report; returns (err, offset)."""
    out = []
    p.produce(topic, value=value, key=key, partition=partition,
              on_delivery=lambda err, msg: out.append((err, msg.offset())))
    p.flush(60)
    check(len(out) == 1, "no delivery report within 60 s")
    return out[0]


def drain(bootstrap, topic, parts, timeout=60, conf=None):
    """All messages of topic from the beginning, stopping at partition EOF on every partition."""
    c = Consumer(dict({"bootstrap.servers": bootstrap, "group.id": "e2e-limits",
                       "enable.auto.commit": False, "enable.partition.eof": True}, **(conf or {})))
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
        msgs, eof = [], set()
        deadline = time.monotonic() + timeout
        while len(eof) < parts:
            check(time.monotonic() < deadline, "no partition EOF on %s within %ds (eof %s, %d msgs)",
                  topic, timeout, sorted(eof), len(msgs))
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                check(m.error().code() == KafkaError._PARTITION_EOF, "consume error %s", m.error())
                eof.add(m.partition())
            else:
                msgs.append(m)
        wm = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(parts)]
        return msgs, wm
    finally:
        c.close()


def test_one_mib_messages_round_trip():
    n = 12
    with Broker({"message.max.bytes": BROKER_MAX}) as b:
        create_topic(b.bootstrap, "big", 1)
        p = big_producer(b.bootstrap)
        values = [os.urandom(MIB) for _ in range(n)]
        for i, v in enumerate(values):
            err, off = deliver(p, "big", v, key=b"big-%d" % i)
            check(err is None, "1 MiB message %d failed: %s", i, err)
            check(off == i, "1 MiB message %d got offset %d", i, off)
        # The consumer keeps max.partition.fetch.bytes at its 1 MiB default: each batch is a
        # little larger, so the broker must still return it whole (KIP-74).
        msgs, wm = drain(b.bootstrap, "big", 1)
        check(len(msgs) == n, "replayed %d of %d 1 MiB messages", len(msgs), n)
        for i, m in enumerate(msgs):
            check(m.offset() == i and m.key() == b"big-%d" % i, "message %d: offset %d key %r", i,
                  m.offset(), m.key())
            check(hashlib.sha256(m.value()).digest() == hashlib.sha256(values[i]).digest(),
                  "1 MiB message %d content differs (len %d)", i, len(m.value()))
        check(wm == [(0, n)], "watermarks %s", wm)
        b.restart()
        msgs, _ = drain(b.bootstrap, "big", 1)
        check([hashlib.sha256(m.value()).digest() for m in msgs] ==
              [hashlib.sha256(v).digest() for v in values], "1 MiB messages differ after restart")
        b.stop()


def test_empty_topic_replays_nothing_and_ends():
    with Broker() as b:
        create_topic(b.bootstrap, "empty", 4)
        t0 = time.monotonic()
        msgs, wm = drain(b.bootstrap, "empty", 4, timeout=30)
        check(msgs == [], "empty topic returned %d messages", len(msgs))
        check(wm == [(0, 0)] * 4, "empty topic watermarks %s", wm)
        print("    all 4 partitions reached EOF in %.2fs" % (time.monotonic() - t0))
        b.stop()


def test_message_max_bytes_enforced():
    with Broker({"message.max.bytes": BROKER_MAX}) as b:
        create_topic(b.bootstrap, "limit", 1)
        p = big_producer(b.bootstrap)
        err, off = deliver(p, "limit", b"s" * 1000)
        check(err is None and off == 0, "small message: %s %s", err, off)
        err, _ = deliver(p, "limit", os.urandom(BROKER_MAX + 100_000))
        check(err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE,
              "message over message.max.bytes: expected MESSAGE_TOO_LARGE, got %s", err)
        # Just under the limit still goes through, on the same producer/connection.
        err, off = deliver(p, "limit", os.urandom(BROKER_MAX - 10_000))
        check(err is None and off == 1, "message under the limit: %s offset %s", err, off)
        err, off = deliver(p, "limit", b"after")
        check(err is None and off == 2, "producer after the rejection: %s offset %s", err, off)

        # Topic-level max.message.bytes overrides the broker default.
        create_topic(b.bootstrap, "limit-topic", 1, {"max.message.bytes": "50000"})
        err, _ = deliver(p, "limit-topic", os.urandom(60_000))
        check(err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE,
              "60 kB to a topic with max.message.bytes=50000: got %s", err)
        err, off = deliver(p, "limit-topic", os.urandom(40_000))
        check(err is None and off == 0, "40 kB to the 50 kB topic: %s offset %s", err, off)

        msgs, wm = drain(b.bootstrap, "limit", 1,
                         conf={"fetch.max.bytes": 10_000_000, "receive.message.max.bytes": 20_000_000})
        check([len(m.value()) for m in msgs] == [1000, BROKER_MAX - 10_000, 5],
              "stored messages sizes %s", [len(m.value()) for m in msgs])
        check(wm == [(0, 3)], "watermarks %s: the rejected message must not be stored", wm)
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

"""kafka-python (pure Python client, ApiVersions v0 + version inference) round trips through
the real broker with its defaults, across a clean restart. Run with /usr/bin/python3."""

import functools
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import LONG, Broker, check, check_codec, fetch_v4_batches, run_tests  # noqa: E402

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

logging.basicConfig(level=logging.ERROR)
logging.getLogger("kafka.consumer.fetcher").setLevel(logging.CRITICAL)  # "Cancelled" at close

N = 100_000 if LONG else 20_000
PARTS = 3
BASE_TS = int(time.time() * 1000) - 7_200_000


@functools.lru_cache(maxsize=None)
def message(i):
    """(key, value, headers, timestamp_ms): some null keys/values, some without headers."""
    key = None if i % 500 == 499 else b"kp-%d" % (i % 101)
    value = None if i % 40 == 9 else (b"val-%d:" % i) + bytes((i + j) % 256 for j in range(i % 48))
    headers = [] if i % 10 == 1 else [("seq", b"%d" % i), ("lib", b"kafka-python")]
    return key, value, headers, BASE_TS + i


def create_topic(bootstrap, name, parts):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        res = admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)],
                                  timeout_ms=10000)
        for t, code, *_ in res.topic_errors:
            check(code == 0, "CreateTopics %s error %d", t, code)
    finally:
        admin.close()


def produce(bootstrap, topic, n, **extra):
    """Sends 0..n-1 with the producer's defaults; returns {partition: [i in offset order]}."""
    p = KafkaProducer(bootstrap_servers=bootstrap, **extra)
    futs = []
    for i in range(n):
        key, value, headers, ts = message(i)
        futs.append(p.send(topic, value=value, key=key, headers=headers, timestamp_ms=ts))
    p.flush(timeout=120)
    placed = {}
    for i, f in enumerate(futs):
        md = f.get(timeout=30)  # raises the broker's error, if any
        placed[(md.partition, md.offset)] = i
    p.close(timeout=10)
    check(len(placed) == n, "%d distinct (partition, offset) for %d messages", len(placed), n)
    out = {}
    for (part, off), i in sorted(placed.items()):
        out.setdefault(part, []).append((off, i))
    for part, lst in out.items():
        check([o for o, _ in lst] == list(range(len(lst))), "p%d: offsets not contiguous", part)
        seq = [i for _, i in lst]
        check(all(a < b for a, b in zip(seq, seq[1:])), "p%d: offsets out of produce order", part)
        out[part] = seq
    return out


def replay(bootstrap, topic, expected, parts, timeout=180):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(parts)]
        c.assign(tps)
        c.seek_to_beginning()
        want = {p: len(expected.get(p, [])) for p in range(parts)}
        ends = c.end_offsets(tps)
        check({tp.partition: o for tp, o in ends.items()} == want, "end offsets %s, expected %s",
              ends, want)
        check(all(o == 0 for o in c.beginning_offsets(tps).values()), "beginning offsets not 0")
        got = {p: 0 for p in range(parts)}
        deadline = time.monotonic() + timeout
        while got != want:
            check(time.monotonic() < deadline, "replay timed out: got %s, want %s", got, want)
            for tp, recs in c.poll(timeout_ms=1000, max_records=5000).items():
                for m in recs:
                    part = m.partition
                    check(m.offset == got[part], "p%d: offset %d, expected %d", part, m.offset,
                          got[part])
                    check(got[part] < want[part], "p%d: more messages than produced", part)
                    key, value, headers, ts = message(expected[part][got[part]])
                    check(m.key == key, "p%d@%d key %r != %r", part, m.offset, m.key, key)
                    check(m.value == value, "p%d@%d value differs", part, m.offset)
                    check(list(m.headers or []) == headers, "p%d@%d headers %r != %r", part,
                          m.offset, m.headers, headers)
                    check(m.timestamp == ts and m.timestamp_type == 0,
                          "p%d@%d timestamp %r type %r, expected %r create-time", part,
                          m.offset, m.timestamp, m.timestamp_type, ts)
                    got[part] += 1
        # nothing beyond what was produced
        extra = c.poll(timeout_ms=300)
        check(not any(extra.values()), "extra records after the end: %s", extra)
        return sum(got.values())
    finally:
        c.close()


def test_roundtrip_defaults_and_restart():
    with Broker() as b:
        create_topic(b.bootstrap, "kp-rt", PARTS)
        t0 = time.monotonic()
        exp = produce(b.bootstrap, "kp-rt", N)
        print("    produced %d in %.1fs" % (N, time.monotonic() - t0))
        check(len(exp) == PARTS, "messages landed in %d of %d partitions", len(exp), PARTS)
        check(replay(b.bootstrap, "kp-rt", exp, PARTS) == N, "replay count")
        b.restart()
        check(replay(b.bootstrap, "kp-rt", exp, PARTS) == N, "replay after restart")
        b.stop()


def test_gzip_and_acks_all():
    n = 5_000
    with Broker() as b:
        create_topic(b.bootstrap, "kp-gzip", 1)
        exp = produce(b.bootstrap, "kp-gzip", n, compression_type="gzip", acks="all")
        check(replay(b.bootstrap, "kp-gzip", exp, 1) == n, "gzip replay count")
        err, hw, batches = fetch_v4_batches(b.port, "kp-gzip", 0)
        check(err == 0 and hw == n, "fetch err %d hw %d", err, hw)
        check_codec(batches, 1, "kafka-python gzip")
        b.stop()


def test_auto_created_topic():
    # The producer's first Metadata for an unknown topic auto-creates it (num.partitions).
    with Broker({"num.partitions": 2, "auto.create.topics.enable": "true"}) as b:
        exp = produce(b.bootstrap, "kp-auto", 1000)
        check(sorted(exp) == [0, 1], "auto-created topic partitions used: %s", sorted(exp))
        check(replay(b.bootstrap, "kp-auto", exp, 2) == 1000, "auto topic replay")
        b.stop()


def test_cross_client_null_header_value():
    # librdkafka writes a null header value (length -1); kafka-python must read it back as None.
    from confluent_kafka import Producer
    with Broker() as b:
        create_topic(b.bootstrap, "kp-cross", 1)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        want = []
        for i in range(100):
            hdrs = [("nil", None), ("empty", b""), ("n", b"%d" % i)]
            p.produce("kp-cross", value=b"x%d" % i, key=None, headers=hdrs, partition=0)
            want.append((b"x%d" % i, hdrs))
        check(p.flush(30) == 0, "librdkafka producer did not deliver")
        c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            c.assign([TopicPartition("kp-cross", 0)])
            c.seek_to_beginning()
            got = []
            deadline = time.monotonic() + 60
            while len(got) < 100 and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=500).values():
                    got += [(m.value, list(m.headers)) for m in recs]
        finally:
            c.close()
        check(got == want, "cross-client replay differs: first got %r, want %r", got[:1], want[:1])
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

"""Several listeners (issue 11): one broker with two PLAINTEXT listeners on two ports, each
advertised under its own address (127.0.0.1:P1 and localhost:P2). A client that bootstraps on
either must be told that listener's address (Metadata, FindCoordinator, DescribeCluster), and
producing and consuming must work through both. Real clients: confluent-kafka (librdkafka)
and kafka-python; raw requests where a library hides the field. Run with /usr/bin/python3."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, Reader, check, connect, frame, free_port, i32,  # noqa: E402
                           kstr, recv_frame, run_tests)

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402


class TwoListenerBroker(Broker):
    """PLAINTEXT on 127.0.0.1:port (advertised as such), INTERNAL on 127.0.0.1:port2 advertised
    as localhost:port2."""

    port2 = None

    def _args(self):
        if self.port2 is None:
            self.port2 = free_port()
        return super()._args() + [
            "--set", "listeners=PLAINTEXT://127.0.0.1:%d,INTERNAL://127.0.0.1:%d"
            % (self.port, self.port2),
            "--set", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
            "--set", "advertised.listeners=INTERNAL://localhost:%d" % self.port2,
        ]

    def expected(self):
        """bootstrap -> the (host, port) that listener advertises."""
        return {"127.0.0.1:%d" % self.port: ("127.0.0.1", self.port),
                "localhost:%d" % self.port2: ("localhost", self.port2)}


def raw_metadata_v0(port):
    """[(node_id, host, port)] from a Metadata v0 answer on that port."""
    s = connect(port)
    try:
        s.sendall(frame(3, 0, 11, i32(0)))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 11, "metadata: wrong correlation id")
    return [(r.i32(), r.str(), r.i32()) for _ in range(r.i32())]


def raw_find_coordinator_v0(port, group):
    s = connect(port)
    try:
        s.sendall(frame(10, 0, 12, kstr(group)))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 12, "find coordinator: wrong correlation id")
    err, node, host, p = r.i16(), r.i32(), r.str(), r.i32()
    check(err == 0, "find coordinator: error %d", err)
    return node, host, p


def uvarint(r):
    shift = v = 0
    while True:
        b = r.take(1)[0]
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v
        shift += 7


def compact_str(r):
    n = uvarint(r) - 1
    return None if n < 0 else r.take(n).decode()


def raw_describe_cluster_v0(port):
    """[(broker_id, host, port)] from DescribeCluster v0 (flexible: header v2, tagged fields)."""
    payload = (b"\x00\x3c" + b"\x00\x00" + i32(13) + kstr("depot-e2e") + b"\x00"  # header v2
               + b"\x00" + b"\x00")  # include_cluster_authorized_operations, tagged fields
    s = connect(port)
    try:
        s.sendall(i32(len(payload)) + payload)
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 13, "describe cluster: wrong correlation id")
    uvarint(r)  # response header tagged fields
    r.i32()  # throttle
    err = r.i16()
    check(err == 0, "describe cluster: error %d", err)
    compact_str(r)  # error message
    compact_str(r)  # cluster id
    r.i32()  # controller
    brokers = []
    for _ in range(uvarint(r) - 1):
        bid, host, p = r.i32(), compact_str(r), r.i32()
        compact_str(r)  # rack
        uvarint(r)
        brokers.append((bid, host, p))
    return brokers


def test_each_listener_advertises_itself_raw():
    with TwoListenerBroker(name="listeners-raw") as b:
        for port, host in ((b.port, "127.0.0.1"), (b.port2, "localhost")):
            md = raw_metadata_v0(port)
            check(md == [(1, host, port)], "Metadata on port %d: %r, expected %s:%d", port, md,
                  host, port)
            fc = raw_find_coordinator_v0(port, "g-raw")
            check(fc == (1, host, port), "FindCoordinator on port %d: %r", port, fc)
            dc = raw_describe_cluster_v0(port)
            check(dc == [(1, host, port)], "DescribeCluster on port %d: %r", port, dc)
        # the start line names both listeners with their bound ports
        log = open(b.log_path).read()
        want = "listening on PLAINTEXT://127.0.0.1:%d,INTERNAL://127.0.0.1:%d, advertised as " \
               "PLAINTEXT://127.0.0.1:%d,INTERNAL://localhost:%d" % (b.port, b.port2, b.port,
                                                                      b.port2)
        check(want in log, "start log does not say %r:\n%s", want, b.log_tail(5))
        b.stop()


def test_real_clients_bootstrap_on_either_listener():
    with TwoListenerBroker(name="listeners-clients") as b:
        for bootstrap, (host, port) in b.expected().items():
            # librdkafka: the broker list it learned from Metadata
            admin = AdminClient({"bootstrap.servers": bootstrap})
            md = admin.list_topics(timeout=20)
            got = sorted((m.id, m.host, m.port) for m in md.brokers.values())
            check(got == [(1, host, port)], "confluent-kafka via %s saw brokers %r", bootstrap, got)
            # kafka-python: its cluster view after bootstrapping
            c = KafkaConsumer(bootstrap_servers=bootstrap)
            try:
                c.topics()
                kb = sorted((m.nodeId, m.host, m.port) for m in c._client.cluster.brokers())
            finally:
                c.close()
            check(kb == [(1, host, port)], "kafka-python via %s saw brokers %r", bootstrap, kb)
        b.stop()


def produce_confluent(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    for i in range(n):
        p.produce(topic, value=b"%s-%d" % (topic.encode(), i),
                  on_delivery=lambda err, msg: err and errors.append(err))
    left = p.flush(30)
    check(left == 0 and not errors, "produce via %s: %d unsent, errors %r", bootstrap, left, errors)


def consume_confluent_group(bootstrap, topic, group, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    got = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append(m.value())
        c.commit(asynchronous=False)
    finally:
        c.close()
    return got


def consume_kafka_python(bootstrap, topic, n):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=20000)
    try:
        got = []
        for m in c:
            got.append(m.value)
            if len(got) == n:
                break
        return got
    finally:
        c.close()


def test_produce_and_consume_through_both_listeners():
    n = 500
    with TwoListenerBroker(name="listeners-data") as b:
        b1, b2 = sorted(b.expected())  # "127.0.0.1:P1", "localhost:P2"
        admin = AdminClient({"bootstrap.servers": b2})
        for f in admin.create_topics([NewTopic(t, 2, 1) for t in ("via-one", "via-two")]).values():
            f.result(30)
        produce_confluent(b1, "via-one", n)
        # kafka-python producer through the second listener
        kp = KafkaProducer(bootstrap_servers=b2, acks="all")
        for i in range(n):
            kp.send("via-two", value=b"via-two-%d" % i)
        kp.flush(30)
        kp.close(10)
        # each topic read back through the other listener, with a consumer group (its
        # coordinator is found through FindCoordinator on that listener) and without
        for topic, bootstrap in (("via-one", b2), ("via-two", b1)):
            want = sorted(b"%s-%d" % (topic.encode(), i) for i in range(n))
            got = consume_confluent_group(bootstrap, topic, "g-" + topic, n)
            check(sorted(got) == want, "group consumer via %s read %d of %d from %s",
                  bootstrap, len(got), n, topic)
            got = consume_kafka_python(bootstrap, topic, n)
            check(sorted(got) == want, "kafka-python via %s read %d of %d from %s", bootstrap,
                  len(got), n, topic)
        b.restart()  # same ports after a restart
        check(raw_metadata_v0(b.port2) == [(1, "localhost", b.port2)], "after restart")
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

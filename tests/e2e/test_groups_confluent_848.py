"""KIP-848 consumer groups through confluent-kafka 2.x (librdkafka 2.x, pinned by
scripts/fetch-pyclients in build/pyclients) with group.protocol=consumer: a group of three on a
6-partition topic, started one after another, then one leaves; every record consumed exactly
once (each member commits synchronously after each message it handled, retrying a commit that
raced a new member epoch), no partition assigned to two members at once (on_assign/on_revoke
keep a shared map), the group listed as a consumer group; and the same client with the classic
protocol in a group beside it.
run.sh starts this file with /usr/bin/python3; it re-executes itself with the venv's Python,
or skips with a message when the venv cannot be built (no registry)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pyclients import use_venv  # noqa: E402

use_venv(__file__, "confluent-kafka 2.x")

import threading  # noqa: E402
import time  # noqa: E402

from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from pyclients import consumer, create_topic, producer  # noqa: E402

HALF = 1500
SETTINGS = {"group.consumer.heartbeat.interval.ms": 500, "group.initial.rebalance.delay.ms": 0}


class Group:
    """Members of one group, the records they saw and who owns which partition."""

    def __init__(self, bs, topic, group, protocol):
        self.bs, self.topic, self.group, self.protocol = bs, topic, group, protocol
        self.lock = threading.Lock()
        self.owner = {}
        self.violations = []
        self.seen = {}
        self.retries = 0
        self.errors = []
        self.members = []

    def _assigned(self, name, parts):
        with self.lock:
            for tp in parts:
                prev = self.owner.get(tp.partition)
                if prev is not None and prev != name:
                    self.violations.append("%d given to %s while %s owns it" %
                                           (tp.partition, name, prev))
                self.owner[tp.partition] = name

    def _released(self, name, parts):
        with self.lock:
            for tp in parts:
                if self.owner.get(tp.partition) == name:
                    del self.owner[tp.partition]

    def _commit(self, c, msg):
        for _ in range(50):
            try:
                c.commit(message=msg, asynchronous=False)
                return
            except KafkaException as e:
                code = e.args[0].code()
                if code not in (KafkaError.STALE_MEMBER_EPOCH, KafkaError.REBALANCE_IN_PROGRESS,
                                KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR):
                    raise
                with self.lock:
                    self.retries += 1
                time.sleep(0.1)

    def _run(self, name, stop):
        conf = {"client.id": name, "group.protocol": self.protocol, "enable.auto.commit": False}
        if self.protocol == "classic":
            conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        c = consumer(self.bs, self.group, conf)
        c.subscribe([self.topic],
                    on_assign=lambda _c, parts: self._assigned(name, parts),
                    on_revoke=lambda _c, parts: self._released(name, parts),
                    on_lost=lambda _c, parts: self._released(name, parts))
        try:
            while not stop.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self.errors.append("%s: %s" % (name, msg.error()))
                    continue
                with self.lock:
                    v = msg.value().decode()
                    self.seen[v] = self.seen.get(v, 0) + 1
                self._commit(c, msg)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("%s: %r" % (name, e))
        finally:
            c.close()  # leaves the group
            with self.lock:
                for p in [p for p, o in self.owner.items() if o == name]:
                    del self.owner[p]

    def start(self, name):
        stop = threading.Event()
        t = threading.Thread(target=self._run, args=(name, stop), daemon=True)
        t.start()
        self.members.append((name, stop, t))

    def leave(self, name):
        for n, stop, t in self.members:
            if n == name:
                stop.set()
                t.join(30)

    def wait(self, cond, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if cond():
                    return True
            time.sleep(0.1)
        with self.lock:
            return cond()


def produce(bs, topic, start, end):
    p = producer(bs)
    for i in range(start, end):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    check(p.flush(30) == 0, "produced %d-%d", start, end - 1)


def group_type(admin, group):
    for g in admin.list_consumer_groups().result(30).valid:
        if g.group_id == group:
            return str(getattr(g, "type", "?"))
    return "missing"


def run_group(protocol):
    with Broker(SETTINGS) as b:
        bs = b.bootstrap
        topic, group = "ck848." + protocol, "ck848.g." + protocol
        admin = create_topic(bs, topic, 6)
        produce(bs, topic, 0, HALF)
        g = Group(bs, topic, group, protocol)
        for name in ("m0", "m1", "m2"):
            g.start(name)
            time.sleep(1.5)
        check(g.wait(lambda: len(g.seen) >= HALF), "%s: three members consumed %d of %d",
              protocol, len(g.seen), HALF)
        check(g.wait(lambda: len(g.owner) == 6 and len(set(g.owner.values())) == 3, 30),
              "%s: 6 partitions over 3 members %s", protocol, g.owner)
        gt = group_type(admin, group)
        check(protocol in gt.lower(), "%s: list_consumer_groups type %s", protocol, gt)
        g.leave("m2")
        produce(bs, topic, HALF, 2 * HALF)
        check(g.wait(lambda: len(g.seen) >= 2 * HALF), "%s: after m2 left, consumed %d of %d",
              protocol, len(g.seen), 2 * HALF)
        check(g.wait(lambda: len(g.owner) == 6 and len(set(g.owner.values())) == 2, 30),
              "%s: 6 partitions over the 2 left %s", protocol, g.owner)
        g.leave("m0")
        g.leave("m1")
        dup = sum(1 for n in g.seen.values() if n != 1)
        check(len(g.seen) == 2 * HALF and dup == 0,
              "%s: every record exactly once (%d distinct, %d more than once)", protocol,
              len(g.seen), dup)
        check(not g.violations, "%s: no partition owned twice %s", protocol, g.violations[:3])
        check(not g.errors, "%s: no member errors %s", protocol, g.errors[:3])
        print("    %s: %d commits retried after STALE_MEMBER_EPOCH" % (protocol, g.retries))


def test_confluent2_consumer_protocol_group():
    run_group("consumer")


def test_confluent2_classic_protocol_group():
    run_group("classic")


if __name__ == "__main__":
    run_tests(globals())

"""Consumer groups with confluent-kafka (librdkafka): partition split, failover after a killed
member's session times out, resume from committed offsets across consumer and broker restarts
(kill -9 included), incremental cooperative-sticky rebalances, and a bounded offsets log.

Consumers that must die abruptly run as subprocesses of this file (--consumer mode) and report
what they see as JSON lines on stdout; waits are event-driven (poll until a condition holds).
"""

import json
import os
import signal
import subprocess
import sys
import time

from depot_harness import Broker, check, run_tests

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

SETTINGS = {
    "group.min.session.timeout.ms": 1000,
    "group.initial.rebalance.delay.ms": 0,
    "auto.create.topics.enable": "false",
}


def wait_for(cond, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for f in fs.values():
        f.result(15)


def produce(bootstrap, topic, partitions, per_partition, tag="m"):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=("%s-%d-%d" % (tag, part, i)).encode(), partition=part)
    check(p.flush(30) == 0, "producer did not flush")


def consumer_conf(bootstrap, group, **extra):
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 3000,
        "heartbeat.interval.ms": 300,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    c.update(extra)
    return c


# ------------------------------------------------------------------------------------------
# Subprocess consumer: prints {"assigned": [...]} on each assignment and
# {"p": partition, "o": offset} for each message, committing after each one.


def consumer_main(bootstrap, group, topic, instance=None):
    out = sys.stdout

    def emit(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    extra = {"group.instance.id": instance} if instance else {}
    c = Consumer(consumer_conf(bootstrap, group, **extra))

    def on_assign(cons, parts):
        emit({"assigned": sorted(p.partition for p in parts)})

    def on_revoke(cons, parts):
        emit({"revoked": sorted(p.partition for p in parts)})

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    signal.signal(signal.SIGTERM, lambda *_: (c.close(), os._exit(0)))
    while True:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                emit({"error": str(m.error())})
            continue
        emit({"p": m.partition(), "o": m.offset()})
        c.commit(message=m, asynchronous=False)


class Proc:
    """A consumer subprocess and the events it reported so far."""

    def __init__(self, bootstrap, group, topic, instance=None):
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--consumer", bootstrap, group, topic] +
            ([instance] if instance else []),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        os.set_blocking(self.p.stdout.fileno(), False)
        self.buf = ""
        self.events = []

    def pump(self):
        try:
            chunk = self.p.stdout.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            self.buf += chunk
            while "\n" in self.buf:
                line, self.buf = self.buf.split("\n", 1)
                if line.strip():
                    self.events.append(json.loads(line))
        return self.events

    def assignment(self):
        cur = []
        for e in self.pump():
            if "assigned" in e:
                cur = e["assigned"]
            if "revoked" in e:
                cur = []
        return cur

    def seen(self):
        return {(e["p"], e["o"]) for e in self.pump() if "p" in e}

    def kill(self):
        self.p.kill()
        self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def test_three_consumers_split_then_failover():
    with Broker(SETTINGS) as b:
        topic = "g3"
        create_topic(b.bootstrap, topic, 6)
        procs = [Proc(b.bootstrap, "grp3", topic) for _ in range(3)]
        try:
            def split():
                a = [p.assignment() for p in procs]
                return all(len(x) == 2 for x in a) and sorted(sum(a, [])) == list(range(6))
            wait_for(split, 40, "3 consumers with 2 partitions each")
            # produce only now, so that each member's share reaches that member
            produce(b.bootstrap, topic, 6, 20, "a")
            victim = procs[0]
            wait_for(lambda: len({p for p, _ in victim.seen()}) == 2, 20,
                     "victim consuming its partitions")
            victim.kill()  # no LeaveGroup: the group notices only through the session timeout
            produce(b.bootstrap, topic, 6, 20, "b")
            rest = procs[1:]

            def taken_over():
                a = [p.assignment() for p in rest]
                return sorted(sum(a, [])) == list(range(6))
            t0 = time.monotonic()
            wait_for(taken_over, 40, "survivors taking over all 6 partitions")
            check(time.monotonic() - t0 < 30, "takeover took too long")

            def all_seen():
                seen = set()
                for p in procs:
                    seen |= p.seen()
                return all((part, off) in seen for part in range(6) for off in range(40))
            wait_for(all_seen, 40, "every message consumed at least once")
        finally:
            for p in procs:
                p.stop()


def test_broker_kill9_under_running_group():
    with Broker(SETTINGS) as b:
        topic = "k9"
        create_topic(b.bootstrap, topic, 4)
        procs = [Proc(b.bootstrap, "grp-k9", topic) for _ in range(2)]
        try:
            def split():
                x = [p.assignment() for p in procs]
                return all(len(y) == 2 for y in x) and sorted(sum(x, [])) == list(range(4))
            wait_for(split, 40, "two members with 2 partitions each")
            produce(b.bootstrap, topic, 4, 25, "a")

            def seen_all(n):
                def cond():
                    seen = set()
                    for p in procs:
                        seen |= p.seen()
                    return all((part, off) in seen for part in range(4) for off in range(n))
                return cond
            wait_for(seen_all(25), 30, "first batch consumed")
            b.restart(hard=True)  # the group comes back from the offsets log
            produce(b.bootstrap, topic, 4, 25, "b")
            wait_for(seen_all(50), 60, "every message of both batches consumed, none skipped")
            for p in procs:
                check(p.p.poll() is None, "a consumer died")
        finally:
            for p in procs:
                p.stop()


def test_static_member_restart_keeps_assignment_without_rebalance():
    with Broker(SETTINGS) as b:
        topic = "static"
        create_topic(b.bootstrap, topic, 4)
        a = Proc(b.bootstrap, "grp-static", topic, "inst-a")
        c = Proc(b.bootstrap, "grp-static", topic, "inst-b")
        procs = [a, c]
        try:
            def split():
                x = [p.assignment() for p in procs]
                return all(len(y) == 2 for y in x) and sorted(sum(x, [])) == list(range(4))
            wait_for(split, 40, "two static members with 2 partitions each")
            mine = a.assignment()
            events_b = len(c.pump())
            a.kill()  # a static member sends no LeaveGroup; it comes back under the same id
            a2 = Proc(b.bootstrap, "grp-static", topic, "inst-a")
            procs.append(a2)
            wait_for(lambda: a2.assignment() == mine, 20, "restarted static member's partitions")
            time.sleep(1.0)
            check(len(c.pump()) == events_b,
                  "the other member saw a rebalance: %r", c.events[events_b:])
        finally:
            for p in procs:
                p.stop()


def consume_n(c, n, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        got.append(m)
    check(len(got) == n, "consumed %d of %d", len(got), n)
    return got


def test_resume_from_commits_across_restarts():
    with Broker(SETTINGS) as b:
        topic = "resume"
        create_topic(b.bootstrap, topic, 2)
        produce(b.bootstrap, topic, 2, 50)
        c = Consumer(consumer_conf(b.bootstrap, "grp-r"))
        c.subscribe([topic])
        got = consume_n(c, 60)  # more than one partition holds: both partitions advanced
        last = {}
        for m in got:
            last[m.partition()] = m.offset()
        c.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()],
                 asynchronous=False)
        c.close()

        for hard in (False, True):
            b.restart(hard=hard)
            c = Consumer(consumer_conf(b.bootstrap, "grp-r"))
            committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 15)
            got_c = {tp.partition: tp.offset for tp in committed}
            check(got_c == {p: o + 1 for p, o in last.items()},
                  "committed after restart(hard=%s): %r", hard, got_c)
            c.subscribe([topic])
            first = consume_n(c, 1)[0]
            check(first.offset() == last[first.partition()] + 1,
                  "resumed at %d, expected %d", first.offset(), last[first.partition()] + 1)
            c.close()


def test_cooperative_sticky_moves_partitions_incrementally():
    with Broker(SETTINGS) as b:
        topic = "coop"
        create_topic(b.bootstrap, topic, 6)
        events = {1: [], 2: []}

        def mk(i):
            c = Consumer(consumer_conf(b.bootstrap, "grp-coop",
                                       **{"partition.assignment.strategy": "cooperative-sticky"}))

            def on_assign(cons, parts):
                events[i].append(("assign", sorted(p.partition for p in parts)))

            def on_revoke(cons, parts):
                events[i].append(("revoke", sorted(p.partition for p in parts)))
            c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
            return c

        c1 = mk(1)

        def owned(i):
            cur = set()
            for kind, parts in events[i]:
                cur = cur | set(parts) if kind == "assign" else cur - set(parts)
            return cur

        def poll_until(cons, cond, timeout, what):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for c in cons:
                    c.poll(0.05)
                if cond():
                    return
            raise AssertionError("timed out waiting for " + what)

        poll_until([c1], lambda: len(owned(1)) == 6, 30, "c1 owning all partitions")
        c2 = mk(2)
        poll_until([c1, c2], lambda: len(owned(1)) == 3 and len(owned(2)) == 3, 40,
                   "a 3/3 split")
        revokes = [p for k, p in events[1] if k == "revoke"]
        check(revokes and all(len(r) < 6 for r in revokes),
              "c1 should give up only some partitions, got %r", events[1])
        check(owned(1) | owned(2) == set(range(6)), "split covers all partitions")
        c2.close()
        poll_until([c1], lambda: len(owned(1)) == 6, 30, "c1 taking everything back")
        c1.close()


def _dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def thousand_commits(cleaner):
    """1000 commits stay in a bounded offsets log and survive kill -9: bounded by the log
    cleaner (compaction; nothing trimmed) or, with log.cleaner.enable=false, by the offsets
    store's snapshot + DeleteRecords trim."""
    settings = dict(SETTINGS)
    settings["log.segment.bytes"] = 16384
    settings["log.cleaner.enable"] = "true" if cleaner else "false"
    settings["log.cleaner.backoff.ms"] = 100
    with Broker(settings) as b:
        topic = "many"
        create_topic(b.bootstrap, topic, 3)
        produce(b.bootstrap, topic, 3, 5)
        # a simple consumer: assign() + commits with generation -1 and no member id
        c = Consumer(consumer_conf(b.bootstrap, "grp-simple"))
        c.assign([TopicPartition(topic, p) for p in range(3)])
        for i in range(1000):
            c.commit(offsets=[TopicPartition(topic, i % 3, i)], asynchronous=False)
        c.close()
        odir = [d for d in os.listdir(b.data_dir) if d.startswith("__consumer_offsets")]
        check(len(odir) == 1, "offsets topic dir: %r", odir)
        deadline = time.monotonic() + (20 if cleaner else 0)
        while True:  # the cleaner works in the background; the trim is done at once
            size = _dir_bytes(os.path.join(b.data_dir, odir[0]))
            if size < 96 * 1024 or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        check(size < 96 * 1024, "offsets log not bounded: %d bytes", size)
        b.restart(hard=True)
        c = Consumer(consumer_conf(b.bootstrap, "grp-simple"))
        got = {tp.partition: tp.offset
               for tp in c.committed([TopicPartition(topic, p) for p in range(3)], 15)}
        check(got == {0: 999, 1: 997, 2: 998}, "offsets after restart: %r", got)
        lo, hi = c.get_watermark_offsets(TopicPartition("__consumer_offsets", 0), 10)
        if cleaner:
            check(lo == 0, "compaction trims nothing (low watermark %d, high %d)", lo, hi)
        else:
            check(lo > 0, "the offsets log was never trimmed (low watermark %d, high %d)", lo,
                  hi)
        c.close()


def test_thousand_commits_bounded_log_and_restart():
    thousand_commits(cleaner=True)


def test_thousand_commits_bounded_without_cleaner():
    thousand_commits(cleaner=False)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--consumer":
        consumer_main(*sys.argv[2:])
    else:
        run_tests(globals())

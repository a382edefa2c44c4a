"""depotctl's consumer-group commands against the real broker, cross-checked with
confluent-kafka (librdkafka) consumers:

- consume --from-beginning (plain and --group) after a broker restart;
- groups --describe shows committed offset, log end and lag after a confluent consumer
  commits, and that consumer as the member while it is alive; groups --list;
- reset-offsets: refused while the group has members (NON_EMPTY_GROUP), a dry run changes
  nothing, --execute --to-earliest makes a confluent consumer re-read everything,
  --to-offset is clamped to the log;
- a depotctl member and a librdkafka member share one group: each decodes the other's
  ConsumerProtocol bytes and the partitions are split between them.
"""

import os
import re
import subprocess
import time

from depot_harness import Broker, check, run_tests

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depotctl"))
SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000}
TOPIC = "ctl-groups"


def ctl(b, *args, ok=True, timeout=60):
    r = subprocess.run([CTL, args[0], "--bootstrap-server", b.bootstrap] + list(args[1:]),
                       capture_output=True, timeout=timeout)
    if ok:
        check(r.returncode == 0, "depotctl %s failed (%d): %s", " ".join(args), r.returncode,
              r.stderr.decode(errors="replace"))
    return r


def setup(b):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
    for f in fs.values():
        f.result(15)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(90):
        p.produce(TOPIC, value=b"v%d" % i, partition=i % 3)
    check(p.flush(30) == 0, "producer did not flush")


def consumer(b, group, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


def consume_n(c, n, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m)
    return got


def describe_rows(out):
    """{(topic, partition): (current, end, lag, consumer_id)} from groups --describe."""
    rows = {}
    for ln in out.decode().splitlines():
        f = ln.split()
        if len(f) >= 7 and f[0] != "GROUP" and re.fullmatch(r"\d+", f[2]):
            rows[(f[1], int(f[2]))] = (f[3], f[4], f[5], f[6])
    return rows


def test_from_beginning_after_restart():
    with Broker(SETTINGS) as b:
        setup(b)
        b.restart()
        r = ctl(b, "consume", "--topic", TOPIC, "--from-beginning", "--max-messages", "90",
                "--timeout-ms", "10000")
        check(sorted(r.stdout.split()) == sorted(b"v%d" % i for i in range(90)),
              "plain consume after restart: %d records", len(r.stdout.split()))
        b.restart(hard=True)
        r = ctl(b, "consume", "--topic", TOPIC, "--group", "cg", "--from-beginning",
                "--max-messages", "90", "--timeout-ms", "10000")
        check(sorted(r.stdout.split()) == sorted(b"v%d" % i for i in range(90)),
              "group consume after kill -9: %d records", len(r.stdout.split()))
        # The group committed: a second run starts after the 90 and sees only new records.
        p = Producer({"bootstrap.servers": b.bootstrap})
        p.produce(TOPIC, value=b"new", partition=1)
        p.flush(10)
        r = ctl(b, "consume", "--topic", TOPIC, "--group", "cg", "--from-beginning",
                "--timeout-ms", "3000")
        check(r.stdout.split() == [b"new"], "resume from the commit: %r", r.stdout[:200])
        check(b"cg" in ctl(b, "groups", "--list").stdout.split(), "groups --list lacks cg")


def test_describe_lag_and_reset():
    with Broker(SETTINGS) as b:
        setup(b)
        c = consumer(b, "pyg")
        c.subscribe([TOPIC])
        got = consume_n(c, 40)
        check(len(got) == 40, "confluent consumer got %d of 40", len(got))
        c.commit(asynchronous=False)
        committed = {}
        for m in got:
            committed[m.partition()] = max(committed.get(m.partition(), 0), m.offset() + 1)
        r = ctl(b, "groups", "--describe", "--group", "pyg")
        rows = describe_rows(r.stdout)
        check(len(rows) == 3, "describe shows %d partitions: %s", len(rows), r.stdout)
        for p in range(3):
            cur, end, lag, member = rows[(TOPIC, p)]
            want = committed.get(p)
            check(end == "30", "partition %d: log end %s", p, end)
            check(cur == (str(want) if want is not None else "-"), "partition %d: current %s, "
                  "committed %r", p, cur, want)
            if want is not None:
                check(lag == str(30 - want), "partition %d: lag %s", p, lag)
            check(member != "-", "partition %d: no member shown while the consumer lives", p)
        check(b"rdkafka" in r.stdout, "the librdkafka client id is not shown:\n%s", r.stdout)
        # Resetting a group with a live member is refused.
        r = ctl(b, "groups", "--reset-offsets", "--group", "pyg", "--topic", TOPIC,
                "--to-earliest", "--execute", ok=False)
        check(r.returncode != 0 and b"NON_EMPTY_GROUP" in r.stderr, "reset of a live group: %r",
              r.stderr)
        c.close()
        # Lag with no members: the sum is what is left.
        rows = describe_rows(ctl(b, "groups", "--describe", "--group", "pyg").stdout)
        check(sum(int(v[2]) for v in rows.values() if v[2] != "-") ==
              sum(30 - o for o in committed.values()), "lag sum differs: %r", rows)
        check(all(v[3] == "-" for v in rows.values()), "members shown after close: %r", rows)
        # Dry run changes nothing.
        r = ctl(b, "groups", "--reset-offsets", "--group", "pyg", "--topic", TOPIC,
                "--to-earliest")
        check(b"NEW-OFFSET" in r.stdout, "dry run printed no plan")
        rows2 = describe_rows(ctl(b, "groups", "--describe", "--group", "pyg").stdout)
        check(rows2 == rows, "a dry run changed offsets")
        ctl(b, "groups", "--reset-offsets", "--group", "pyg", "--topic", TOPIC, "--to-earliest",
            "--execute")
        c = consumer(b, "pyg", **{"auto.offset.reset": "latest"})
        c.subscribe([TOPIC])
        again = consume_n(c, 90)
        check(sorted(m.value() for m in again) == sorted(b"v%d" % i for i in range(90)),
              "after --to-earliest the consumer re-read %d of 90", len(again))
        c.close()
        # --to-offset beyond the end is clamped to the log end.
        ctl(b, "groups", "--reset-offsets", "--group", "pyg", "--topic", TOPIC, "--to-offset",
            "1000", "--execute")
        rows = describe_rows(ctl(b, "groups", "--describe", "--group", "pyg").stdout)
        check(all(v[0] == "30" and v[2] == "0" for v in rows.values()), "clamped: %r", rows)
        ctl(b, "groups", "--reset-offsets", "--group", "pyg", "--topic", TOPIC, "--to-offset",
            "25", "--execute")
        c = consumer(b, "pyg", **{"auto.offset.reset": "latest"})
        c.subscribe([TOPIC])
        tail = consume_n(c, 15)
        check(len(tail) == 15 and all(m.offset() >= 25 for m in tail),
              "after --to-offset 25: %d records", len(tail))
        c.close()
        r = ctl(b, "groups", "--describe", "--group", "nosuch", ok=False)
        check(r.returncode != 0 and b"GROUP_ID_NOT_FOUND" in r.stderr, "missing group: %r",
              r.stderr)


def test_mixed_group_with_librdkafka():
    with Broker(SETTINGS) as b:
        setup(b)
        # depotctl joins first (it leads: decodes librdkafka's subscription, assigns with range)
        proc = subprocess.Popen([CTL, "consume", "--bootstrap-server", b.bootstrap, "--topic",
                                 TOPIC, "--group", "mix", "--from-beginning", "--timeout-ms",
                                 "12000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            c = consumer(b, "mix", **{"partition.assignment.strategy": "range"})
            c.subscribe([TOPIC])
            deadline = time.monotonic() + 20
            assigned = []
            while time.monotonic() < deadline and not assigned:
                c.poll(0.2)
                assigned = c.assignment()
            check(assigned, "the librdkafka member got no partitions")
            d = ctl(b, "groups", "--describe", "--group", "mix").stdout
            members = {v[3] for v in describe_rows(d).values()}
            check(len(members) == 2 and "-" not in members,
                  "partitions not split over two members:\n%s", d)
            c.close()
        finally:
            out, err = proc.communicate(timeout=40)
        check(proc.returncode == 0, "depotctl consume --group failed: %s", err)


if __name__ == "__main__":
    run_tests(globals())

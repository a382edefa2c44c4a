"""Consumer groups with kafka-python 2.0.2 (older protocol versions: JoinGroup v0-2,
OffsetCommit v2, OffsetFetch v1-3): join, consume, commit, leave, rejoin from the committed
offset; two members split partitions; the admin client lists and describes the group."""

import threading
import time

from depot_harness import Broker, check, run_tests

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

SETTINGS = {
    "group.min.session.timeout.ms": 1000,
    "group.initial.rebalance.delay.ms": 0,
}


def setup(b, topic, partitions, n):
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=b.bootstrap)
    for i in range(n):
        p.send(topic, value=b"v%d" % i, partition=i % partitions)
    p.flush(30)
    p.close()


def consumer(b, group, topic=None, **kw):
    args = dict(bootstrap_servers=b.bootstrap, group_id=group, auto_offset_reset="earliest",
                enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                max_poll_records=5)
    args.update(kw)
    return KafkaConsumer(topic, **args) if topic else KafkaConsumer(**args)


def take(c, n, timeout=30):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=200, max_records=n - len(out)).values():
            out.extend(recs)
    check(len(out) == n, "got %d of %d records", len(out), n)
    return out


def test_join_commit_leave_rejoin_resumes():
    with Broker(SETTINGS) as b:
        setup(b, "kp1", 1, 30)
        c = consumer(b, "kpg", "kp1")
        recs = take(c, 10)
        check([r.offset for r in recs] == list(range(10)), "first offsets %r",
              [r.offset for r in recs])
        c.commit()
        tp = TopicPartition("kp1", 0)
        check(c.committed(tp) == 10, "committed %r", c.committed(tp))
        c.close()  # LeaveGroup

        c = consumer(b, "kpg", "kp1")
        recs = take(c, 5)
        check(recs[0].offset == 10, "rejoined at offset %d, expected 10", recs[0].offset)
        c.commit()
        c.close()

        b.restart(hard=True)
        c = consumer(b, "kpg", "kp1")
        recs = take(c, 1)
        check(recs[0].offset == 15, "after kill -9 resumed at %d, expected 15", recs[0].offset)
        c.close()


def test_two_members_split_and_admin_views():
    with Broker(SETTINGS) as b:
        setup(b, "kp2", 4, 40)
        # kafka-python joins inside poll() and blocks there until the rebalance completes, so
        # each member needs its own thread (as in a real application).
        c1 = consumer(b, "kpg2", "kp2", max_poll_interval_ms=10000)
        c2 = consumer(b, "kpg2", "kp2", max_poll_interval_ms=10000)
        stop = threading.Event()

        def loop(c):
            while not stop.is_set():
                c.poll(timeout_ms=100)
        threads = [threading.Thread(target=loop, args=(c,)) for c in (c1, c2)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if len(c1.assignment()) == 2 and len(c2.assignment()) == 2:
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join()
        check(len(c1.assignment()) == 2 and len(c2.assignment()) == 2,
              "assignments %r / %r", c1.assignment(), c2.assignment())
        check(not (c1.assignment() & c2.assignment()), "overlapping assignments")

        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        groups = [g[0] for g in admin.list_consumer_groups()]
        check("kpg2" in groups, "list_consumer_groups: %r", groups)
        d = admin.describe_consumer_groups(["kpg2"])[0]
        check(d.state == "Stable", "state %r", d.state)
        check(len(d.members) == 2, "members %r", d.members)
        c1.close()
        c2.close()
        d = admin.describe_consumer_groups(["kpg2"])[0]
        check(d.state == "Empty", "state after both left %r", d.state)
        admin.close()


if __name__ == "__main__":
    run_tests(globals())

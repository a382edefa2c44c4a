"""Admin operations and storage behaviour seen through confluent-kafka: retention by time and by
size (and consumers below the new log start), delete and recreate a topic across a restart,
topic/broker configs that persist, many partitions under a small open-file cap, several log
dirs. Run with /usr/bin/python3."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,  # noqa: E402
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

NOW = int(time.time() * 1000)


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name, parts, config=None):
    a = admin(bootstrap)  # must outlive the future
    a.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                              config=config or {})])[name].result(30)


def produce(bootstrap, topic, items, **conf):
    """items: (partition, key, value, timestamp) tuples, or (topic, partition, ...) when topic
    is None; waits for every acknowledgement."""
    c = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2}
    c.update(conf)
    p = Producer(c)
    errors = []
    for item in items:
        t, (part, key, val, ts) = (topic, item) if topic else (item[0], item[1:])
        while True:
            try:
                p.produce(t, key=key, value=val, partition=part, timestamp=ts,
                          on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
    check(p.flush(60) == 0, "undelivered messages")
    check(not errors, "delivery errors %s", errors[:3])


def watermarks(bootstrap, topic, part=0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
    finally:
        c.close()


def drain_many(bootstrap, tps, offset=OFFSET_BEGINNING, timeout=60):
    """{(topic, partition): [messages]} from offset to the end of each, with one consumer
    (auto.offset.reset=earliest)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-admin",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(t, p, offset) for t, p in tps])
        out = {tp: [] for tp in tps}
        eof = set()
        deadline = time.monotonic() + timeout
        while len(eof) < len(tps):
            check(time.monotonic() < deadline, "no EOF on %s in %ds", sorted(set(tps) - eof),
                  timeout)
            for m in c.consume(500, 0.5):
                tp = (m.topic(), m.partition())
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(tp)
                        continue
                    raise AssertionError("consume error %s" % m.error())
                out[tp].append(m)
        return out
    finally:
        c.close()


def drain(bootstrap, topic, part=0, offset=OFFSET_BEGINNING, timeout=30):
    return drain_many(bootstrap, [(topic, part)], offset, timeout)[(topic, part)]


def wait_for(what, cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        check(time.monotonic() < deadline, "timed out waiting for %s", what)
        time.sleep(0.1)


def test_retention_by_time_and_size():
    with Broker() as b:
        # time: 2000 records stamped two hours ago, then 10 fresh ones; retention 1 hour
        create_topic(b.bootstrap, "ret-ms", 1, {"retention.ms": "3600000", "segment.bytes": "16384"})
        old = [(0, b"o%d" % i, b"old-%06d" % i + b"." * 80, NOW - 7_200_000 + i) for i in range(2000)]
        new = [(0, b"n%d" % i, b"new-%06d" % i, NOW + i) for i in range(10)]
        produce(b.bootstrap, "ret-ms", old, **{"batch.num.messages": 20})
        produce(b.bootstrap, "ret-ms", new)
        lo, hi = wait_for("retention.ms to delete old segments",
                          lambda: (lambda w: w if w[0] > 0 else None)(watermarks(b.bootstrap, "ret-ms")))
        check(hi == 2010, "high watermark %d after retention, expected 2010", hi)
        ms = drain(b.bootstrap, "ret-ms")
        check(ms and ms[0].offset() == lo, "replay from the beginning starts at %s, log start %d",
              ms[0].offset() if ms else None, lo)
        check([m.offset() for m in ms] == list(range(lo, hi)), "offsets after retention")
        check([m.value() for m in ms[-10:]] == [v for _, _, v, _ in new], "fresh records lost")
        # a consumer positioned below the log start is reset to it (OFFSET_OUT_OF_RANGE)
        ms0 = drain(b.bootstrap, "ret-ms", offset=0)
        check(ms0 and ms0[0].offset() >= lo, "consumer at offset 0 below log start %d got %s",
              lo, ms0[0].offset() if ms0 else None)

        # size: 200 kB into a partition with retention.bytes 50 kB
        create_topic(b.bootstrap, "ret-bytes", 1, {"retention.bytes": "50000", "segment.bytes": "16384"})
        produce(b.bootstrap, "ret-bytes",
                [(0, None, b"%06d" % i + b"#" * 94, NOW + i) for i in range(2000)],
                **{"batch.num.messages": 20})  # many batches, so many segments
        lo, hi = wait_for("retention.bytes to delete old segments",
                          lambda: (lambda w: w if w[0] > 0 else None)(watermarks(b.bootstrap, "ret-bytes")))
        kept = hi - lo
        check(hi == 2000 and 350 <= kept < 1000, "retention.bytes=50000 kept %d records (%d..%d)",
              kept, lo, hi)
        b.restart()
        lo2, hi2 = watermarks(b.bootstrap, "ret-bytes")
        check(lo2 >= lo and hi2 == hi, "after restart watermarks %s, before %s", (lo2, hi2), (lo, hi))
        ms = drain(b.bootstrap, "ret-bytes")
        check([int(m.value()[:6]) for m in ms] == list(range(lo2, hi2)), "records after restart")
        b.stop()


def test_delete_and_recreate_topic():
    with Broker() as b:
        create_topic(b.bootstrap, "gone", 3)
        produce(b.bootstrap, "gone", [(i % 3, None, b"first-%d" % i, NOW) for i in range(300)])
        a = admin(b.bootstrap)
        a.delete_topics(["gone"], operation_timeout=10)["gone"].result(30)
        wait_for("topic to disappear from metadata",
                 lambda: "gone" not in a.list_topics(timeout=10).topics)
        try:
            a.delete_topics(["never-was"])["never-was"].result(30)
            raise AssertionError("deleting an unknown topic succeeded")
        except KafkaException as e:
            check(e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART,
                  "deleting an unknown topic: %s", e)
        create_topic(b.bootstrap, "gone", 2)
        for p in (0, 1):
            check(watermarks(b.bootstrap, "gone", p) == (0, 0), "recreated partition %d not empty", p)
        produce(b.bootstrap, "gone", [(0, None, b"second-%d" % i, NOW) for i in range(10)])
        b.restart()
        md = admin(b.bootstrap).list_topics(timeout=10).topics["gone"]
        check(sorted(md.partitions) == [0, 1], "after restart partitions %s", sorted(md.partitions))
        check([m.value() for m in drain(b.bootstrap, "gone")] == [b"second-%d" % i for i in range(10)],
              "recreated topic content after restart")
        check(drain(b.bootstrap, "gone", 1) == [], "partition 1 of the recreated topic not empty")
        b.stop()


def describe(bootstrap, rtype, name):
    res = ConfigResource(rtype, name)
    a = admin(bootstrap)  # must outlive the future
    out = a.describe_configs([res])[res].result(30)
    return {k: v.value for k, v in out.items()}


def test_topic_and_broker_configs_persist():
    with Broker({"message.max.bytes": 3000000, "log.retention.hours": 48}) as b:
        create_topic(b.bootstrap, "cfg", 1, {"retention.ms": "123456", "max.message.bytes": "200000"})
        for round_ in ("live", "after restart"):
            cfg = describe(b.bootstrap, ConfigResource.Type.TOPIC, "cfg")
            check(cfg.get("retention.ms") == "123456", "%s: retention.ms %r", round_,
                  cfg.get("retention.ms"))
            check(cfg.get("max.message.bytes") == "200000", "%s: max.message.bytes %r", round_,
                  cfg.get("max.message.bytes"))
            check("segment.bytes" in cfg, "%s: segment.bytes not described", round_)
            brk = describe(b.bootstrap, ConfigResource.Type.BROKER, "1")
            check(brk.get("message.max.bytes") == "3000000", "%s: broker message.max.bytes %r",
                  round_, brk.get("message.max.bytes"))
            if round_ == "live":
                b.restart()
        b.stop()


def test_many_partitions_small_fd_cap():
    topics, parts, per = 10, 8, 40
    with Broker({"max.open.files": 16, "log.segment.bytes": 4096}) as b:
        for t in range(topics):
            create_topic(b.bootstrap, "fd-%d" % t, parts)
        produce(b.bootstrap, None,
                [("fd-%d" % t, p, None, b"t%d-p%d-%03d" % (t, p, i) + b"_" * 100, NOW)
                 for i in range(per) for t in range(topics) for p in range(parts)],
                **{"batch.num.messages": 10})
        for rnd in ("live", "after kill -9"):
            got = drain_many(b.bootstrap, [("fd-%d" % t, p) for t in range(topics)
                                           for p in range(parts)])
            for (topic, p), ms in got.items():
                t = int(topic[3:])
                vals = [m.value() for m in ms]
                check(vals == [b"t%d-p%d-%03d" % (t, p, i) + b"_" * 100 for i in range(per)],
                      "%s: %s[%d] replay differs (%d records)", rnd, topic, p, len(vals))
            in_data = [f for f in open_files(b.proc.pid) if f.startswith(b.data_dir)]
            print("    %s: %d fds open under the data dir" % (rnd, len(in_data)))
            check(len(in_data) <= 16 + 4, "%d files open under the data dir with max.open.files=16",
                  len(in_data))
            if rnd == "live":
                b.restart(hard=True)
        b.stop()


def open_files(pid):
    """Targets of the process's open fds; an fd closed between the listing and its readlink
    (the broker keeps working meanwhile) is skipped."""
    out = []
    for f in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, f)))
        except FileNotFoundError:
            pass
    return out


def test_several_log_dirs():
    b = Broker(start=False)
    with b:
        dirs = [os.path.join(b.tmp, d) for d in ("flash-a", "flash-b")]
        b.settings["log.dirs"] = ",".join(dirs)
        b.start()
        for t in range(4):
            create_topic(b.bootstrap, "multi-%d" % t, 2)
        produce(b.bootstrap, None, [("multi-%d" % t, i % 2, None, b"m%d-%d" % (t, i), NOW)
                                    for t in range(4) for i in range(100)])
        used = [d for d in dirs if any(n.startswith("multi-") for n in os.listdir(d))]
        check(len(used) == 2, "partitions not spread across log dirs: %s",
              {d: os.listdir(d) for d in dirs})
        b.restart()
        got = drain_many(b.bootstrap, [("multi-%d" % t, p) for t in range(4) for p in (0, 1)])
        for t in range(4):
            vals = sorted(m.value() for p in (0, 1) for m in got[("multi-%d" % t, p)])
            check(vals == sorted(b"m%d-%d" % (t, i) for i in range(100)), "multi-%d after restart", t)
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

"""Topic changes stay off the loop thread (issue #19), beside test_admin_offloop.py: with
every fsync slowed (DEPOT_TEST_SLOW_FSYNC_MS), a producer's acks=1 round trips stay below the
injected delay while 20 CreatePartitions or 20 topic AlterConfigs from kafka-python's admin
client run beside it; concurrent CreatePartitions of one topic run one after another (one
success, INVALID_PARTITIONS for the rest), concurrent IncrementalAlterConfigs of one topic each
apply on top of the one before; partition counts, records in the new partitions and topic
configs are there after a restart. Run with /usr/bin/python3."""

import threading

from depot_harness import Reader, check, connect, frame, i8, i32, kstr, recv_frame, run_tests
from offloop_harness import (SLOW_MS, Prober, admin, create, partition_counts, side_by_side,
                             slow_broker)

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic


def grow(b, name, count):
    """The topic's error code from one CreatePartitions (0 = grown)."""
    a = admin(b)
    try:
        resp = a.create_partitions({name: NewPartitions(count)}, timeout_ms=60000)
        return resp.topic_errors[0][1]
    except Exception as e:  # kafka-python versions that raise on a topic error
        return getattr(e, "errno", -1)
    finally:
        a.close()


def test_create_partitions_off_the_loop():
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        names = ["grow-%02d" % i for i in range(20)]
        a = admin(b)
        a.create_topics([NewTopic(n, 1, 1) for n in names + ["same"]], timeout_ms=60000)
        a.close()
        pr = Prober(b)
        codes = {}

        def one(i):
            codes[i] = grow(b, names[i], 3)

        took = side_by_side(one, range(20))
        pr.finish("20 CreatePartitions to 3, fsync slowed by %d ms (%.2f s)" % (SLOW_MS, took))
        check(all(codes.get(i) == 0 for i in range(20)), "grows failed: %s", codes)
        # One topic, six requests at once: they run one after another, so the first grows it
        # and the others find it at 4 already (Kafka's INVALID_PARTITIONS, 37).
        same, go = [None] * 6, threading.Event()

        def same_one(i):
            go.wait()
            same[i] = grow(b, "same", 4)

        side_by_side(same_one, range(6), go)
        print("6 concurrent CreatePartitions of one topic to 4 answered %s" % same)
        check(same.count(0) == 1 and same.count(37) == 5,
              "want one success and INVALID_PARTITIONS (37) for the rest: %s", same)
        want = dict({n: 3 for n in names}, same=4)
        got = partition_counts(b, names + ["same"])
        check(got == want, "partition counts %s", got)
        # The new partitions take records (acks=all: on disk before the answer).
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", api_version=(2, 5, 0))
        for n in names[:3]:
            p.send(n, b"in-2", partition=2).get(30)
        p.close()
        b.restart()
        got = partition_counts(b, names + ["same"])
        check(got == want, "partition counts after a restart %s", got)


def topic_configs(b, names, key):
    a = admin(b)
    try:
        out = {}
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        for r in res:
            for rs in r.resources:
                out[rs[3]] = {c[0]: c[1] for c in rs[4]}.get(key)
        return out
    finally:
        a.close()


def incremental_set(port, topic, key, value):
    """One IncrementalAlterConfigs v0 SET of topic's key: the resource's error code."""
    body = (i32(1) + i8(2) + kstr(topic) + i32(1) + kstr(key) + i8(0) + kstr(value)
            + i8(0))
    sock = connect(port)
    try:
        sock.sendall(frame(44, 0, 5, body))
        r = Reader(recv_frame(sock))
        check(r.i32() == 5, "correlation id")
        r.i32()  # throttle_time_ms
        check(r.i32() == 1, "one resource answered")
        return r.i16()
    finally:
        sock.close()


def test_topic_configs_off_the_loop():
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        names = ["cfg-%02d" % i for i in range(20)]
        a = admin(b)
        a.create_topics([NewTopic(n, 1, 1) for n in names + ["many"]], timeout_ms=60000)
        a.close()
        pr = Prober(b)
        errors = {}

        def alter(i):
            a = admin(b)
            try:
                r = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, names[i],
                                                    configs={"retention.ms": str(1000000 + i)})])
                errors[i] = r.resources[0][0]
            except Exception as e:
                errors[i] = getattr(e, "errno", -1)
            finally:
                a.close()

        took = side_by_side(alter, range(20))
        pr.finish("20 topic AlterConfigs (%.2f s)" % took)
        check(all(errors.get(i) == 0 for i in range(20)), "alters failed: %s", errors)
        # Six incremental changes of one topic at once, each a different key: they run one
        # after another, each on top of the one before, so every key is set in the end.
        keys = {"retention.ms": "7200000", "segment.ms": "3600000", "max.message.bytes": "65536",
                "retention.bytes": "1048576", "delete.retention.ms": "60000",
                "min.compaction.lag.ms": "1000"}
        res, go = {}, threading.Event()

        def inc(k):
            go.wait()
            res[k] = incremental_set(b.port, "many", k, keys[k])

        side_by_side(inc, keys, go)
        check(all(v == 0 for v in res.values()) and len(res) == 6, "incremental: %s", res)
        want = {n: str(1000000 + i) for i, n in enumerate(names)}

        def many():
            return {k: topic_configs(b, ["many"], k)["many"] for k in keys}

        check(topic_configs(b, names, "retention.ms") == want, "retention.ms %s",
              topic_configs(b, names, "retention.ms"))
        check(many() == keys, "the incremental changes left %s", many())
        b.restart()
        check(topic_configs(b, names, "retention.ms") == want, "after a restart: %s",
              topic_configs(b, names, "retention.ms"))
        check(many() == keys, "after a restart the incremental changes left %s", many())


if __name__ == "__main__":
    run_tests(globals())

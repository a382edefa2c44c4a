"""Admin writes stay off the loop thread (issue #19): with every fsync made slow
(DEPOT_TEST_SLOW_FSYNC_MS=200, a flash chip that takes its time; storage/ks_io.h), a producer's
acks=1 round trips stay below the injected delay while beside it run 20 CreateTopics from
kafka-python's admin client, 20 DeleteTopics, 10 concurrent broker config changes from
confluent-kafka's admin client, or 3,500 InitProducerId requests (four producer-id blocks
written); concurrent
creates of one name give exactly one success and TOPIC_ALREADY_EXISTS for the others; what
was answered is there after a restart (topics, the last broker config, ids never reused).
Run with /usr/bin/python3."""

import os
import threading
import time

from depot_harness import (Broker, Reader, check, connect, frame, i16, i32, recv_frame,
                           run_tests)

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

SLOW_MS = 200


def slow_broker():
    os.environ["DEPOT_TEST_SLOW_FSYNC_MS"] = str(SLOW_MS)
    try:
        return Broker(name="offloop")
    finally:
        del os.environ["DEPOT_TEST_SLOW_FSYNC_MS"]


def admin(b):
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, api_version=(2, 5, 0),
                            request_timeout_ms=60000)


def create(b, name, parts=1):
    """The topic's error code from one CreateTopics (0 = created)."""
    a = admin(b)
    try:
        resp = a.create_topics([NewTopic(name, parts, 1)], timeout_ms=60000)
        return resp.topic_errors[0][1]
    except Exception as e:  # kafka-python versions that raise on a topic error
        return getattr(e, "errno", -1)
    finally:
        a.close()


def test_produce_round_trips_stay_small_while_topics_are_created():
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=0,
                          api_version=(2, 5, 0))
        for _ in range(20):  # warm: connection, metadata, the first segment
            p.send("probe", b"warm").get(30)
        rtts, stop = [], threading.Event()

        def probe():
            while not stop.is_set():
                t0 = time.monotonic()
                p.send("probe", b"x" * 100).get(30)
                rtts.append((time.monotonic() - t0) * 1000)

        results = {}

        def creator(i):
            results[i] = create(b, "made-%02d" % i, 3)

        pt = threading.Thread(target=probe)
        pt.start()
        time.sleep(0.3)
        before = len(rtts)
        t0 = time.monotonic()
        cs = [threading.Thread(target=creator, args=(i,)) for i in range(20)]
        for c in cs:
            c.start()
        for c in cs:
            c.join(120)
        took = time.monotonic() - t0
        stop.set()
        pt.join(30)
        p.close()
        during = sorted(rtts[before:])
        check(len(during) >= 20, "too few produce round trips during the creates: %d", len(during))
        med = during[len(during) // 2]
        p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
        print("20 CreateTopics (3 partitions) with fsync slowed by %d ms took %.2f s; %d produce "
              "round trips meanwhile: median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (SLOW_MS, took, len(during), med, p99, during[-1]))
        check(all(results.get(i) == 0 for i in range(20)), "creates failed: %s", results)
        # Before the change each create fsynced on the loop (three fsyncs, 600 ms here) and
        # every round trip that met one waited for it.
        check(during[-1] < SLOW_MS, "a produce round trip took %.1f ms (fsync delay %d ms)",
              during[-1], SLOW_MS)
        a = admin(b)
        names = set(a.list_topics())
        a.close()
        check(all("made-%02d" % i in names for i in range(20)), "topics missing: %s", names)
        b.restart()
        a = admin(b)
        names = set(a.list_topics())
        a.close()
        check(all("made-%02d" % i in names for i in range(20)),
              "topics missing after a restart: %s", names)


def test_concurrent_creates_of_one_name():
    with slow_broker() as b:
        for rnd in range(3):
            name = "same-%d" % rnd
            codes = [None] * 8
            go = threading.Event()

            def one(i):
                go.wait()
                codes[i] = create(b, name, 2)

            ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
            for t in ts:
                t.start()
            go.set()
            for t in ts:
                t.join(120)
            print("round %d: 8 concurrent creates of %s answered %s" % (rnd, name, codes))
            check(codes.count(0) == 1, "want exactly one success: %s", codes)
            check(codes.count(36) == 7, "want TOPIC_ALREADY_EXISTS (36) for the rest: %s",
                  codes)
        a = admin(b)
        meta = a.describe_topics(["same-0", "same-1", "same-2"])
        a.close()
        for t in meta:
            check(t["error_code"] == 0 and len(t["partitions"]) == 2, "bad topic %s", t)


class Prober:
    """An acks=1 producer sending one small record at a time, round trips in ms."""

    def __init__(self, b, topic="probe"):
        self.p = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=0,
                               api_version=(2, 5, 0))
        for _ in range(20):  # warm: connection, metadata, the first segment
            self.p.send(topic, b"warm").get(30)
        self.topic, self.rtts, self.stop = topic, [], threading.Event()
        self.t = threading.Thread(target=self._run)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            self.p.send(self.topic, b"x" * 100).get(30)
            self.rtts.append((time.monotonic() - t0) * 1000)

    def mark(self):
        return len(self.rtts)

    def finish(self, since, what):
        self.stop.set()
        self.t.join(30)
        self.p.close()
        d = sorted(self.rtts[since:])
        check(len(d) >= 10, "too few produce round trips during %s: %d", what, len(d))
        print("%s: %d produce round trips meanwhile: median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (what, len(d), d[len(d) // 2], d[min(len(d) - 1, int(len(d) * 0.99))], d[-1]))
        check(d[-1] < SLOW_MS, "a produce round trip took %.1f ms during %s (fsync delay %d ms)",
              d[-1], what, SLOW_MS)


def init_pids(port, n, window=50):
    """n InitProducerId v0 requests (no transactional id) pipelined window at a time on one
    connection: the (error_code, producer_id) answers in order."""
    out, sock, corr = [], connect(port), 0
    try:
        while len(out) < n:
            k = min(window, n - len(out))
            body = i16(-1) + i32(60000)
            sock.sendall(b"".join(frame(22, 0, corr + i, body) for i in range(k)))
            for i in range(k):
                r = Reader(recv_frame(sock))
                check(r.i32() == corr + i, "answers out of order")
                r.i32()  # throttle_time_ms
                ec, pid = r.i16(), r.i64()
                out.append((ec, pid))
            corr += k
    finally:
        sock.close()
    return out


def test_init_producer_id_blocks_written_off_the_loop():
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        pr = Prober(b)
        time.sleep(0.3)
        since = pr.mark()
        t0 = time.monotonic()
        got = init_pids(b.port, 3500)
        took = time.monotonic() - t0
        pr.finish(since, "3500 InitProducerId (4 blocks, %.2f s)" % took)
        check(all(ec == 0 for ec, _ in got), "errors: %s", [g for g in got if g[0]][:5])
        ids = [pid for _, pid in got]
        check(ids == sorted(set(ids)), "ids not distinct and increasing")
        b.restart()
        more = init_pids(b.port, 1)
        check(more[0][0] == 0 and more[0][1] > ids[-1],
              "id %s after a restart reuses one below %d", more, ids[-1])


def test_broker_configs_written_off_the_loop():
    from confluent_kafka.admin import AdminClient, ConfigResource
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        pr = Prober(b)
        time.sleep(0.3)
        since = pr.mark()
        errors = []

        def alter(i):
            res = ConfigResource(ConfigResource.Type.BROKER, "1",
                                 set_config={"log.retention.ms": str(1000000 + i)})
            try:
                a.alter_configs([res])[res].result(60)
            except Exception as e:
                errors.append(e)

        ts = [threading.Thread(target=alter, args=(i,)) for i in range(10)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        pr.finish(since, "10 concurrent broker config changes (%.2f s)" % (time.monotonic() - t0))
        check(not errors, "alter errors: %s", errors)

        def live():
            res = ConfigResource(ConfigResource.Type.BROKER, "1")
            c = AdminClient({"bootstrap.servers": b.bootstrap})
            return c.describe_configs([res])[res].result(30)["log.retention.ms"].value

        before = live()
        check(before is not None and 1000000 <= int(before) < 1000010, "live value %s", before)
        b.restart()
        after = live()
        check(after == before, "the file kept %s, the broker served %s before the restart",
              after, before)


def test_delete_topics_off_the_loop():
    with slow_broker() as b:
        check(create(b, "probe") == 0, "probe topic not created")
        a = admin(b)
        a.create_topics([NewTopic("gone-%02d" % i, 2, 1) for i in range(20)], timeout_ms=60000)
        a.close()
        pr = Prober(b)
        time.sleep(0.3)
        since = pr.mark()
        codes = {}

        def delete(i):
            a = admin(b)
            try:
                r = a.delete_topics(["gone-%02d" % i], timeout_ms=60000)
                codes[i] = r.topic_error_codes[0][1]
            except Exception as e:
                codes[i] = getattr(e, "errno", -1)
            finally:
                a.close()

        ts = [threading.Thread(target=delete, args=(i,)) for i in range(20)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        pr.finish(since, "20 DeleteTopics (%.2f s)" % (time.monotonic() - t0))
        check(all(codes.get(i) == 0 for i in range(20)), "deletes failed: %s", codes)
        b.restart()
        a = admin(b)
        left = [t for t in a.list_topics() if t.startswith("gone-")]
        a.close()
        check(not left, "deleted topics back after a restart: %s", left)


if __name__ == "__main__":
    run_tests(globals())

"""Data-path handlers end to end: acks 0/1/all round trips, the Fetch long poll (waits about
max_wait at log end, wakes on a produce), OFFSET_OUT_OF_RANGE past the log end (raw and as
librdkafka's auto.offset.reset=error sees it), ListOffsets through the client, Produce v0-2
refused, an acks=0 failure closing the connection, idempotent producers getting a producer id,
raw DeleteRecords / ListOffsets v0 / OffsetForLeaderEpoch / InitProducerId requests, the flash
budget's reject policy (KAFKA_STORAGE_ERROR) and LogAppendTime topics.
Run with /usr/bin/python3."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, Reader, check, connect, frame, i8, i16, i32, i64,  # noqa: E402
                           kstr, produce_v3, record_batch, recv_frame, run_tests)

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def create_topic(bootstrap, name, parts=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                                        config=config or {})], operation_timeout=10)
    fut[name].result(timeout=30)


def produce_v5(port, topic, partition, batch, acks=1):
    """Raw Produce v5: (error, base_offset, log_append_time_ms, log_start_offset)."""
    body = (kstr(None) + i16(acks) + i32(10000) + i32(1) + kstr(topic) + i32(1) + i32(partition) +
            i32(len(batch)) + batch)
    s = connect(port)
    try:
        s.sendall(frame(0, 5, 51, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 51, "produce: wrong correlation id")
    check(r.i32() == 1 and r.str() == topic and r.i32() == 1 and r.i32() == partition, "shape")
    return r.i16(), r.i64(), r.i64(), r.i64()


def fetch_v4(port, topic, partition, offset, max_wait_ms=0, min_bytes=1, sock=None):
    """Raw Fetch v4 of one partition: (error_code, high_watermark, records bytes, seconds)."""
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(1 << 20) + i8(0) +
            i32(1) + kstr(topic) + i32(1) + i32(partition) + i64(offset) + i32(1 << 20))
    s = sock or connect(port, timeout=30)
    t0 = time.monotonic()
    try:
        s.sendall(frame(1, 4, 5, body))
        r = Reader(recv_frame(s))
    finally:
        if sock is None:
            s.close()
    took = time.monotonic() - t0
    check(r.i32() == 5, "fetch: wrong correlation id")
    r.i32()  # throttle
    check(r.i32() == 1, "fetch: expected one topic")
    check(r.str() == topic, "fetch: wrong topic")
    check(r.i32() == 1, "fetch: expected one partition")
    check(r.i32() == partition, "fetch: wrong partition")
    err, hw = r.i16(), r.i64()
    r.i64()  # last stable offset
    for _ in range(max(r.i32(), 0)):
        r.i64(), r.i64()
    return err, hw, r.bytes() or b"", took


def consume_all(bootstrap, topic, n, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + topic,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        check(m.error() is None, "consumer error %s", m.error())
        got.append((m.offset(), m.value()))
    c.close()
    return got


def test_acks_0_1_all_round_trip():
    with Broker() as b:
        create_topic(b.bootstrap, "acks")
        sent = []
        for acks in ("0", "1", "all"):
            p = Producer({"bootstrap.servers": b.bootstrap, "acks": acks, "linger.ms": 5})
            errors = []
            for i in range(200):
                v = ("acks=%s #%d" % (acks, i)).encode()
                sent.append(v)
                p.produce("acks", v, partition=0,
                          on_delivery=lambda e, m: errors.append(e) if e else None)
            check(p.flush(30) == 0, "acks=%s: messages left unflushed", acks)
            check(not errors, "acks=%s: delivery errors %s", acks, errors[:3])
        got = consume_all(b.bootstrap, "acks", len(sent))
        check([v for _, v in got] == sent, "replayed %d of %d, or out of order", len(got),
              len(sent))
        check([o for o, _ in got] == list(range(len(sent))), "offsets not dense from 0")
        b.stop()


def test_fetch_at_log_end_waits_then_returns_empty():
    with Broker() as b:
        create_topic(b.bootstrap, "poll")
        err, base = produce_v3(b.port, "poll", 0, record_batch([b"a", b"b"]))
        check(err == 0 and base == 0, "produce: err %d base %d", err, base)
        err, hw, recs, took = fetch_v4(b.port, "poll", 0, 2, max_wait_ms=700)
        check(err == 0 and hw == 2 and recs == b"", "at log end: err %d hw %d %d bytes", err, hw,
              len(recs))
        check(0.6 <= took < 3.0, "long poll answered after %.2fs, wanted ~0.7s", took)
        # max_wait 0 answers at once
        err, hw, recs, took = fetch_v4(b.port, "poll", 0, 2, max_wait_ms=0)
        check(err == 0 and recs == b"" and took < 0.5, "max_wait 0 took %.2fs", took)
        b.stop()


def test_fetch_long_poll_wakes_on_produce():
    with Broker() as b:
        create_topic(b.bootstrap, "wake")
        out = {}

        def waiter():
            out["r"] = fetch_v4(b.port, "wake", 0, 0, max_wait_ms=10000)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.4)
        err, _ = produce_v3(b.port, "wake", 0, record_batch([b"x"]), acks=1)
        check(err == 0, "produce err %d", err)
        t.join(15)
        check("r" in out, "fetch never returned")
        err, hw, recs, took = out["r"]
        check(err == 0 and hw == 1 and len(recs) > 61, "woken fetch: err %d hw %d %d bytes",
              err, hw, len(recs))
        check(took < 3.0, "woken after %.2fs, not at the produce", took)
        b.stop()


def test_fetch_past_end_is_offset_out_of_range():
    with Broker() as b:
        create_topic(b.bootstrap, "oor")
        produce_v3(b.port, "oor", 0, record_batch([b"a", b"b", b"c"]))
        err, hw, recs, _ = fetch_v4(b.port, "oor", 0, 10)
        check(err == 1, "fetch past end: error %d, wanted OFFSET_OUT_OF_RANGE (1)", err)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "oor",
                      "auto.offset.reset": "error", "enable.auto.commit": False})
        c.assign([TopicPartition("oor", 0, 10)])
        seen = None
        deadline = time.monotonic() + 20
        while seen is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                seen = m.error()
        c.close()
        check(seen is not None, "consumer never reported the out-of-range offset")
        check(seen.code() == KafkaError._AUTO_OFFSET_RESET, "consumer error %s", seen)
        b.stop()


def test_list_offsets_through_client():
    with Broker() as b:
        create_topic(b.bootstrap, "lo")
        p = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(10):
            p.produce("lo", b"v%d" % i, partition=0, timestamp=1_700_000_000_000 + i * 1000)
            p.flush(10)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "lo"})
        lo, hi = c.get_watermark_offsets(TopicPartition("lo", 0), timeout=10)
        check((lo, hi) == (0, 10), "watermarks %r", (lo, hi))
        tps = c.offsets_for_times([TopicPartition("lo", 0, 1_700_000_004_500)], timeout=10)
        check(tps[0].error is None and tps[0].offset == 5, "offset for time: %r", tps[0])
        tps = c.offsets_for_times([TopicPartition("lo", 0, 1_800_000_000_000)], timeout=10)
        check(tps[0].offset == -1, "time past the end: %r", tps[0])
        c.close()
        b.stop()


def test_produce_v2_is_unsupported_version():
    with Broker() as b:
        create_topic(b.bootstrap, "old")
        body = (i16(1) + i32(5000) + i32(1) + kstr("old") + i32(1) + i32(0) + i32(0))
        s = connect(b.port)
        try:
            s.sendall(frame(0, 2, 11, body))
            r = Reader(recv_frame(s))
        finally:
            s.close()
        check(r.i32() == 11, "wrong correlation id")
        check(r.i32() == 1 and r.str() == "old" and r.i32() == 1 and r.i32() == 0, "shape")
        err = r.i16()
        check(err == 35, "produce v2: error %d, wanted UNSUPPORTED_VERSION (35)", err)
        b.stop()


def test_acks0_failure_closes_connection():
    with Broker() as b:
        create_topic(b.bootstrap, "a0")
        body = (kstr(None) + i16(0) + i32(5000) + i32(1) + kstr("a0") + i32(1) + i32(7) +
                i32(len(record_batch([b"x"]))) + record_batch([b"x"]))
        s = connect(b.port, timeout=5)
        try:
            s.sendall(frame(0, 3, 12, body))
            try:
                data = s.recv(100)
            except socket.timeout:
                data = None
            check(data == b"", "acks=0 to a missing partition: connection not closed (%r)", data)
        finally:
            s.close()
        check(b.alive(), "broker died")
        b.stop()


def test_idempotent_producer_gets_an_id():
    with Broker() as b:
        create_topic(b.bootstrap, "idem")
        p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
        errors = []
        for i in range(50):
            p.produce("idem", b"%d" % i, partition=0,
                      on_delivery=lambda e, m: errors.append(e) if e else None)
        check(p.flush(30) == 0 and not errors, "idempotent produce failed: %s", errors[:3])
        check(len(consume_all(b.bootstrap, "idem", 50)) == 50, "not all replayed")
        b.stop()


def test_stop_with_a_parked_fetch():
    """A graceful stop answers (or drops) a long-polling fetch and exits 0 promptly."""
    with Broker() as b:
        create_topic(b.bootstrap, "park")
        out = {}

        def waiter():
            try:
                out["r"] = fetch_v4(b.port, "park", 0, 0, max_wait_ms=20000)
            except Exception as e:  # the connection may be closed instead
                out["r"] = e

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        b.stop()
        check(time.monotonic() - t0 < 8, "stop took %.1fs", time.monotonic() - t0)
        t.join(10)
        check("r" in out, "the parked fetch neither answered nor closed")


def test_flash_budget_reject_is_storage_error():
    with Broker({"log.dirs.max.bytes": 300000, "log.dirs.full.policy": "reject"}) as b:
        create_topic(b.bootstrap, "full")
        big = record_batch([b"y" * 10000])
        errs = []
        for _ in range(60):
            errs.append(produce_v5(b.port, "full", 0, big)[0])
            if errs[-1]:
                break
        check(errs[-1] == 56, "at the budget: errors %s, wanted KAFKA_STORAGE_ERROR (56)", errs)
        check(len(errs) > 5, "rejected too early: %s", errs)
        # v3 predates KAFKA_STORAGE_ERROR: Kafka answers NOT_LEADER_OR_FOLLOWER there
        err, _ = produce_v3(b.port, "full", 0, big, acks=1)
        check(err == 6, "v3 at the budget: %d", err)
        err, hw, recs, _ = fetch_v4(b.port, "full", 0, 0)
        check(err == 0 and hw == len(errs) - 1 and recs, "the log stays readable: %d %d", err, hw)
        b.stop()


def test_log_append_time_topic():
    with Broker() as b:
        create_topic(b.bootstrap, "lat", config={"message.timestamp.type": "LogAppendTime"})
        create_topic(b.bootstrap, "ct")
        before = int(time.time() * 1000)
        err, base, lat, start = produce_v5(b.port, "lat", 0, record_batch([b"a", b"b"]))
        check(err == 0 and base == 0 and start == 0, "produce: %r", (err, base, start))
        check(before - 5000 <= lat <= before + 60000, "log_append_time_ms %d, now %d", lat, before)
        err, _, recs, _ = fetch_v4(b.port, "lat", 0, 0)
        check(err == 0 and len(recs) > 61, "fetch: %d, %d bytes", err, len(recs))
        attrs = int.from_bytes(recs[21:23], "big")
        check(attrs & 8, "stored batch attributes 0x%x lack LogAppendTime", attrs)
        err, base, lat, _ = produce_v5(b.port, "ct", 0, record_batch([b"a"]))
        check(err == 0 and lat == -1, "CreateTime topic: log_append_time_ms %d", lat)
        b.stop()


def raw(port, api_key, version, body, cid=41):
    s = connect(port)
    try:
        s.sendall(frame(api_key, version, cid, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == cid, "api %d: wrong correlation id", api_key)
    return r


def test_raw_delete_records_list_offsets_v0_epochs():
    with Broker() as b:
        create_topic(b.bootstrap, "dr")
        for _ in range(3):
            produce_v3(b.port, "dr", 0, record_batch([b"a", b"b"]))

        def delete_records(offset):
            r = raw(b.port, 21, 0, i32(1) + kstr("dr") + i32(1) + i32(0) + i64(offset) + i32(5000))
            r.i32()  # throttle
            check(r.i32() == 1 and r.str() == "dr" and r.i32() == 1 and r.i32() == 0, "shape")
            low, err = r.i64(), r.i16()
            return err, low

        check(delete_records(99) == (1, -1), "past the HW: %r", delete_records(99))
        check(delete_records(3) == (0, 3), "delete to 3")
        check(delete_records(-1) == (0, 6), "delete to the HW")

        # ListOffsets v0: the old array shape; earliest is now the new log start
        def list_v0(ts):
            r = raw(b.port, 2, 0, i32(-1) + i32(1) + kstr("dr") + i32(1) + i32(0) + i64(ts) + i32(5))
            check(r.i32() == 1 and r.str() == "dr" and r.i32() == 1 and r.i32() == 0, "shape")
            err = r.i16()
            return err, [r.i64() for _ in range(r.i32())]

        check(list_v0(-2) == (0, [6]), "earliest v0: %r", list_v0(-2))
        check(list_v0(-1) == (0, [6]), "latest v0: %r", list_v0(-1))
        err, _, _, _ = fetch_v4(b.port, "dr", 0, 2)
        check(err == 1, "fetch below the new log start: %d", err)

        # OffsetForLeaderEpoch v2: epoch 0 ends at the log end; others are unknown; fencing
        def epoch_end(current, epoch):
            r = raw(b.port, 23, 2, i32(1) + kstr("dr") + i32(1) + i32(0) + i32(current) + i32(epoch))
            r.i32()
            check(r.i32() == 1 and r.str() == "dr" and r.i32() == 1, "shape")
            err, part, ep, end = r.i16(), r.i32(), r.i32(), r.i64()
            return err, ep, end

        check(epoch_end(-1, 0) == (0, 0, 6), "epoch 0: %r", epoch_end(-1, 0))
        check(epoch_end(0, 3) == (0, -1, -1), "epoch 3: %r", epoch_end(0, 3))
        check(epoch_end(1, 0)[0] == 75, "current epoch 1: %r", epoch_end(1, 0))
        b.stop()


def test_raw_init_producer_id():
    with Broker() as b:
        def init_pid(txn_id):
            r = raw(b.port, 22, 1, kstr(txn_id) + i32(60000))
            r.i32()
            return r.i16(), r.i64(), r.i16()

        e1, p1, ep1 = init_pid(None)
        e2, p2, _ = init_pid(None)
        check(e1 == 0 and e2 == 0 and ep1 == 0 and p2 > p1 >= 0, "ids %r %r", (e1, p1), (e2, p2))
        check(init_pid("txn")[0] == 53, "transactional id: %r", init_pid("txn"))
        b.restart()
        e3, p3, _ = init_pid(None)
        check(e3 == 0 and p3 > p2, "after restart id %d, before %d", p3, p2)
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

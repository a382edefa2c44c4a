"""Hostile and broken input over raw sockets while a confluent-kafka producer keeps producing
to another topic in a thread. After each input the broker must still answer a fresh ApiVersions
request and the producer must keep getting successful deliveries; the broker process must be
alive at the end and shut down cleanly. Run with /usr/bin/python3."""

import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, Reader, api_versions, check, connect, fetch_v4_batches,  # noqa: E402
                           frame, i8, i16, i32, kstr, produce_v3, record_batch, recv_frame,
                           run_tests)

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

UNSUPPORTED_VERSION = 35


def create_topic(bootstrap, name, parts):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])[name].result(30)


class SteadyProducer(threading.Thread):
    """Produces to 'steady' continuously; counts acknowledged and failed deliveries."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
        self.ok = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()

    def _cb(self, err, msg):
        with self.lock:
            if err is None:
                self.ok += 1
            else:
                self.errors.append(str(err))

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            try:
                self.p.produce("steady", value=b"steady-%d" % i, key=b"%d" % (i % 8),
                               on_delivery=self._cb)
                i += 1
            except BufferError:
                pass
            self.p.poll(0.002)
        self.p.flush(30)

    def acked(self):
        with self.lock:
            return self.ok, list(self.errors)

    def wait_progress(self, more=20, timeout=20.0):
        """Waits until `more` further messages were acknowledged; fails on any delivery error."""
        start, _ = self.acked()
        deadline = time.monotonic() + timeout
        while True:
            ok, errors = self.acked()
            check(not errors, "producer got delivery errors: %s", errors[:3])
            if ok >= start + more:
                return
            check(time.monotonic() < deadline, "producer stalled: %d acks in %.0fs", ok - start,
                  timeout)
            time.sleep(0.01)


def closed_or_answered(sock, timeout=5.0):
    """'closed' if the broker closes the connection, 'answered' if it sends anything, within
    timeout; fails if it does neither (a hung connection would leak resources)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        raise AssertionError("broker neither answered nor closed within %.0fs" % timeout)
    except ConnectionResetError:
        return "closed"
    return "answered" if data else "closed"


def assert_healthy(b, prod, what):
    check(b.alive(), "broker died after: %s", what)
    err, keys = api_versions(b.port)
    check(err == 0, "ApiVersions after %s: error %d", what, err)
    for k in (0, 1, 3, 18):
        check(k in keys, "ApiVersions after %s lacks api key %d", what, k)
    prod.wait_progress()


def api_versions_v3_request(version, cid):
    """ApiVersions at a flexible version: request header v2 (client_id + empty tag section),
    body = client_software_name, client_software_version (compact strings) + tag section."""
    name, ver = b"depot-e2e", b"1.0"
    body = bytes([len(name) + 1]) + name + bytes([len(ver) + 1]) + ver + b"\x00"
    payload = i16(18) + i16(version) + i32(cid) + kstr("depot-e2e") + b"\x00" + body
    return i32(len(payload)) + payload


def test_bad_input_keeps_broker_and_producer_healthy():
    with Broker({"num.partitions": 2, "auto.create.topics.enable": "true"}) as b:
        create_topic(b.bootstrap, "steady", 2)
        prod = SteadyProducer(b.bootstrap)
        prod.start()
        try:
            prod.wait_progress(100)
            rnd = random.Random(1234)

            # 1. random bytes, several shapes
            for n in (1, 3, 7, 64, 4096, 100_000):
                s = connect(b.port)
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(n)))
                s.close()
            assert_healthy(b, prod, "random bytes")

            # 2. a 2 GB length prefix (and a negative one): the broker must close, not allocate
            #    or wait for 2 GB.
            for prefix in (0x7FFFFFF0, 0x80000000, 0xFFFFFFFF):
                s = connect(b.port)
                s.sendall(prefix.to_bytes(4, "big") + b"\x00\x12\x00\x00\x00\x00\x00\x01")
                check(closed_or_answered(s) == "closed",
                      "length prefix 0x%08x: connection not closed", prefix)
                s.close()
            assert_healthy(b, prod, "2 GB length prefix")

            # 3. truncated frames, then close: in the size, in the header, in the body
            full = frame(3, 1, 5, i32(-1))
            for cut in (2, 4, 6, 9, len(full) - 1):
                s = connect(b.port)
                s.sendall(full[:cut])
                time.sleep(0.01)
                s.close()
            s = connect(b.port)
            s.sendall(i32(1000) + b"\x00\x03\x00\x01" + b"\x00" * 50)
            s.shutdown(socket.SHUT_WR)
            check(closed_or_answered(s) == "closed", "half-closed truncated frame: not closed")
            s.close()
            assert_healthy(b, prod, "truncated frames")

            # 4. unknown API key: Kafka closes the connection; at least never hang or crash
            outcomes = []
            for key in (9999, 32767, -1):
                s = connect(b.port)
                s.sendall(frame(key, 0, 11))
                outcomes.append(closed_or_answered(s))
                s.close()
            print("    unknown api keys: %s" % outcomes)
            assert_healthy(b, prod, "unknown api key")

            # 5. ApiVersions v99: UNSUPPORTED_VERSION in the v0 layout with the api_keys list
            #    (KIP-511), and the connection stays usable.
            s = connect(b.port)
            s.sendall(api_versions_v3_request(99, 4242))
            r = Reader(recv_frame(s))
            check(r.i32() == 4242, "ApiVersions v99: wrong correlation id")
            err = r.i16()
            check(err == UNSUPPORTED_VERSION, "ApiVersions v99: error %d, expected 35", err)
            n = r.i32()
            check(0 < n < 200, "ApiVersions v99: api_keys count %d", n)
            keys = {}
            for _ in range(n):
                k, lo, hi = r.i16(), r.i16(), r.i16()
                keys[k] = (lo, hi)
            check(18 in keys and keys[18][0] == 0, "ApiVersions v99 reply: key 18 %s",
                  keys.get(18))
            check(0 in keys and 1 in keys and 3 in keys, "ApiVersions v99 reply keys %s",
                  sorted(keys))
            # same connection: retry at the advertised max, as librdkafka/Java do
            hi = keys[18][1]
            if hi >= 3:
                s.sendall(api_versions_v3_request(hi, 4243))
                cid = Reader(recv_frame(s)).i32()
            else:
                s.sendall(frame(18, hi, 4243))
                cid = Reader(recv_frame(s)).i32()
            check(cid == 4243, "retry on the same connection: correlation id %d", cid)
            err0, keys0 = api_versions(b.port, 0, 4244, sock=s)
            check(err0 == 0 and keys0 == keys, "ApiVersions v0 after v99 on the same connection")
            s.close()
            assert_healthy(b, prod, "ApiVersions v99")

            # 6. valid headers with garbage bodies: close or error, never crash or hang
            garbage = [
                frame(3, 1, 21, b"\x7f\xff\xff\xff"),            # Metadata: 2^31-1 topics
                frame(3, 4, 22, i32(3) + kstr("a") + b"\xff"),  # Metadata: truncated array
                frame(0, 7, 23, kstr(None) + i16(-1) + i32(1000) + i32(1) + kstr("steady") +
                      i32(1) + i32(0) + i32(500) + b"\x00" * 61),  # Produce: bogus batch
                frame(0, 3, 24, b"\xff" * 40),                  # Produce: nonsense
                frame(1, 4, 25, i32(-1) + i32(100) + i32(1) + i32(1 << 20) + i8(0) +
                      i32(0x10000000)),                         # Fetch: 2^28 topics
                frame(19, 2, 26, i32(0x7fffffff)),              # CreateTopics: huge count
                frame(2, 1, 27, i32(-1) + i32(2) + kstr("x")),  # ListOffsets: truncated
                frame(18, 0, 28, b"trailing junk"),             # ApiVersions v0 + junk
            ]
            outcomes = []
            for g in garbage:
                s = connect(b.port)
                s.sendall(g)
                outcomes.append(closed_or_answered(s))
                s.close()
            print("    garbage bodies: %s" % outcomes)
            assert_healthy(b, prod, "garbage bodies")

            # 7. 200 pipelined requests abandoned unread must not upset the broker.
            s = connect(b.port)
            for j in range(200):
                s.sendall(frame(18, 0, 1000 + j))
            s.close()
            assert_healthy(b, prod, "abandoned pipelined requests")
        finally:
            prod.stop_ev.set()
            prod.join(60)
        ok, errors = prod.acked()
        check(not errors and ok > 100, "producer: %d ok, errors %s", ok, errors[:3])
        check(b.alive(), "broker died")
        b.stop()


def test_corrupt_batch_rejected_not_stored():
    """A RecordBatch whose CRC-32C does not match gets CORRUPT_MESSAGE (2) and is not stored;
    the same batch with the right CRC is accepted at the next offset."""
    with Broker() as b:
        create_topic(b.bootstrap, "crc", 1)
        vals = [b"one", b"two", b"three"]
        err, base = produce_v3(b.port, "crc", 0, record_batch(vals))
        check(err == 0 and base == 0, "good batch: error %d base %d", err, base)
        err, _ = produce_v3(b.port, "crc", 0, record_batch(vals, bad_crc=True))
        check(err == 2, "batch with a bad CRC: error %d, expected CORRUPT_MESSAGE (2)", err)
        err, base = produce_v3(b.port, "crc", 0, record_batch(vals))
        check(err == 0 and base == 3, "good batch after a bad one: error %d base %d", err, base)
        err, hw, batches = fetch_v4_batches(b.port, "crc", 0)
        check(err == 0 and hw == 6, "after the bad batch: error %d high watermark %d", err, hw)
        check([x["base_offset"] for x in batches] == [0, 3], "stored batches %s", batches)
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

"""Retry dedup: lost Produce responses never turn into duplicates.

A TCP proxy between the client and the broker (the broker advertises the proxy's address, so
every client connection goes through it) parses Kafka frames in both directions, and drops
about one Produce response in five: it closes the client's connection instead of forwarding
the answer. The batch was appended, but the idempotent producer (confluent-kafka,
acks=all, max 5 in flight) does not know; it reconnects and sends the same batches again,
which the broker must answer as duplicates with their original offsets. At the end the log
holds every message exactly once, at the offset its delivery report gave.
"""

import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_harness import Depot, consume_all, create_topic, free_port, long_mode, run  # noqa: E402

TOPIC = "retry"
PARTS = 2


def read_exact(sock, n):
    b = b""
    while len(b) < n:
        c = sock.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def read_frame(sock):
    h = read_exact(sock, 4)
    if h is None:
        return None
    (n,) = struct.unpack(">i", h)
    body = read_exact(sock, n)
    return None if body is None else h + body


class DropProxy:
    """Forwards 127.0.0.1:port to the broker; drops Produce responses with probability p."""

    def __init__(self, backend_port, p, max_drops, seed):
        self.backend = backend_port
        self.port = free_port()
        self.p = p
        self.max_drops = max_drops
        self.rnd = random.Random(seed)
        self.drops = 0
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(64)
        self.stopped = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.backend))
            except OSError:
                c.close()
                continue
            pending = {}  # correlation id -> api key
            threading.Thread(target=self.up, args=(c, b, pending), daemon=True).start()
            threading.Thread(target=self.down, args=(c, b, pending), daemon=True).start()

    def up(self, c, b, pending):
        try:
            while True:
                f = read_frame(c)
                if f is None:
                    break
                api_key, _ver, corr = struct.unpack(">hhi", f[4:12])
                pending[corr] = api_key
                b.sendall(f)
        except OSError:
            pass
        self.close_both(c, b)

    def down(self, c, b, pending):
        try:
            while True:
                f = read_frame(b)
                if f is None:
                    break
                (corr,) = struct.unpack(">i", f[4:8])
                if pending.pop(corr, None) == 0 and self.drop():
                    break  # the answer is lost with the connection
                c.sendall(f)
        except OSError:
            pass
        self.close_both(c, b)

    def drop(self):
        with self.lock:
            if self.drops < self.max_drops and self.rnd.random() < self.p:
                self.drops += 1
                return True
        return False

    @staticmethod
    def close_both(c, b):
        for s in (c, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self):
        self.stopped = True
        self.ls.close()


def test_retry_dedup():
    from confluent_kafka import Producer
    n_msgs = 100000 if long_mode() else 20000
    seed = int(os.environ.get("DEPOT_SEED", str(int(time.time()))))
    port = free_port()
    proxy = DropProxy(port, 0.2, 400 if long_mode() else 60, seed)
    d = Depot(port=port, settings={"advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % proxy.port})
    d.start()
    try:
        boot = "127.0.0.1:%d" % proxy.port
        create_topic(boot, TOPIC, PARTS)
        acked = {}
        failed = []

        def on_delivery(err, msg):
            if err is None:
                acked[msg.value().decode()] = (msg.partition(), msg.offset())
            else:
                failed.append(str(err))

        p = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 5, "batch.num.messages": 200, "message.timeout.ms": 300000,
                      "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100,
                      "retry.backoff.ms": 10, "log_level": 1})
        t0 = time.time()
        for i in range(n_msgs):
            while True:
                try:
                    p.produce(TOPIC, value=b"r%d" % i, partition=i % PARTS,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        left = p.flush(240)
        with open(d.log_path, "rb") as f:
            dup_answers = f.read().count(b": duplicate (answered")
        log = consume_all("127.0.0.1:%d" % port, TOPIC, PARTS)  # straight to the broker
        counts = {}
        where = {}
        for part, recs in log.items():
            for off, val in recs:
                v = val.decode()
                counts[v] = counts.get(v, 0) + 1
                where[v] = (part, off)
        dups = sum(1 for c in counts.values() if c > 1)
        lost = [v for v in acked if v not in counts]
        moved = [v for v in acked if v in where and where[v] != acked[v]]
        print("retry dedup: produce responses dropped=%d answered as duplicates=%d "
              "acknowledged=%d lost=%d duplicated=%d offset-mismatch=%d failed=%d "
              "unflushed=%d (%.1fs)" % (proxy.drops, dup_answers, len(acked), len(lost), dups,
                                        len(moved), len(failed), left, time.time() - t0),
              flush=True)
        assert proxy.drops > 0, "the proxy dropped nothing"
        assert dup_answers > 0, "no retry reached the broker as a duplicate"
        assert left == 0 and not failed and len(acked) == n_msgs, "not every message acked"
        assert not lost and dups == 0 and not moved
        assert d.stop() == 0
    except Exception:
        print(d.log_tail(40))
        raise
    finally:
        proxy.stop()
        d.cleanup()


if __name__ == "__main__":
    run([test_retry_dedup])

"""Client quotas with real clients (docs/quotas.md): confluent-kafka 2.x (pinned by
scripts/fetch-pyclients in build/pyclients) producing and consuming above a client-id byte
rate, throttled to it by Kafka's sampled rate with throttle_time_ms reported to the client
(throttle_cb) while an unthrottled client keeps its pace; the quotas survive a restart; the
throttle counters on /metrics. The quota admin APIs are driven with raw AlterClientQuotas /
DescribeClientQuotas v0 requests here and with Kafka's own kafka-configs in
test_quota_kafka_configs.py. run.sh starts this file with /usr/bin/python3; it re-executes
itself with the venv's Python, or skips with a message when the venv cannot be built."""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pyclients import use_venv  # noqa: E402

use_venv(__file__, "confluent-kafka 2.x")

import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

from sasl_harness import SaslBroker  # noqa: E402
from depot_harness import (Broker, Reader, api_versions, check, connect, free_port,  # noqa: E402
                           frame, i8, i32, kstr, recv_frame, run_tests)

from pyclients import consumer, producer  # noqa: E402

# Kafka's rate is a sum over quota.window.num (11) windows of quota.window.size.seconds (1):
# a client that starts from idle may send the whole span's allowance at once, and a
# backlogged client then gets that same shape again every span (the burst's sample expires
# after 11 s). So the throttled rate is measured over one whole span, the second one after the
# client's first answer: [first + 10.5 s, first + 21.5 s), edges half a second before the
# expected bursts.
SPAN_S = 11.0
MEASURE_FROM = SPAN_S - 0.5
RUN_S = 2 * SPAN_S + 1.0


# ---- raw quota admin (v0, classic encoding) ------------------------------------------------

def alter_quotas(port, entries, validate_only=False):
    """entries: [([(entity_type, name or None)], [(key, value, remove)])].
    Returns [(error_code, message)] per entry."""
    body = i32(len(entries))
    for entity, ops in entries:
        body += i32(len(entity))
        for t, n in entity:
            body += kstr(t) + kstr(n)
        body += i32(len(ops))
        for k, v, rm in ops:
            body += kstr(k) + struct.pack(">d", float(v)) + i8(1 if rm else 0)
    body += i8(1 if validate_only else 0)
    s = connect(port)
    try:
        s.sendall(frame(49, 0, 1, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 1, "correlation id")
    r.i32()  # throttle
    out = []
    for _ in range(r.i32()):
        err, msg = r.i16(), r.str()
        for _ in range(r.i32()):
            r.str(), r.str()
        out.append((err, msg))
    return out


def describe_quotas(port, components, strict=False):
    """components: [(entity_type, match_type, match)]. Returns (error, {entity: {key: value}})
    with entity a tuple of (type, name) pairs."""
    body = i32(len(components))
    for t, mt, m in components:
        body += kstr(t) + i8(mt) + kstr(m)
    body += i8(1 if strict else 0)
    s = connect(port)
    try:
        s.sendall(frame(48, 0, 2, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 2, "correlation id")
    r.i32()
    err, _msg = r.i16(), r.str()
    found = {}
    for _ in range(max(r.i32(), 0)):
        entity = tuple((r.str(), r.str()) for _ in range(r.i32()))
        vals = {}
        for _ in range(r.i32()):
            k = r.str()
            vals[k] = struct.unpack(">d", r.take(8))[0]
        found[entity] = vals
    return err, found


def set_client_quota(port, client_id, key, value):
    res = alter_quotas(port, [([("client-id", client_id)], [(key, value, False)])])
    check(res == [(0, None)], "AlterClientQuotas: %s", res)


# ---- clients --------------------------------------------------------------------------------

class Flow:
    """One confluent-kafka producer in a thread, counting delivered payload bytes over time and
    throttle events (throttle_cb). rate: bytes/s to offer (None = as fast as it can)."""

    def __init__(self, bootstrap, client_id, topic, seconds, rate=None, size=1000, extra=None):
        self.deliveries = []  # (monotonic time, bytes)
        self.throttles = []   # throttle_time ms
        self.errors = []
        self.t0 = None
        self.stopping = False
        conf = {"client.id": client_id, "acks": 1, "linger.ms": 5, "batch.size": 16384, "compression.type": "none",
                "queue.buffering.max.kbytes": 4096,
                "throttle_cb": lambda ev: self.throttles.append(ev.throttle_time)}
        conf.update(extra or {})
        self.p = producer(bootstrap, conf)
        self.args = (topic, seconds, rate, size)
        self.th = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        if err is not None:
            if not self.stopping:  # purged at the end of a throttled run: not a failure
                self.errors.append(str(err))
        else:
            self.deliveries.append((time.monotonic(), len(msg.value())))

    def _run(self):
        topic, seconds, rate, size = self.args
        payload = b"q" * size
        sent = 0
        while time.monotonic() - self.t0 < seconds:
            if rate is not None:
                wait = self.t0 + sent / rate - time.monotonic()
                if wait > 0:
                    self.p.poll(min(0.01, wait))  # never negative: that waits forever
                    continue
            try:
                self.p.produce(topic, payload, on_delivery=self._cb)
                sent += size
            except BufferError:
                self.p.poll(0.05)
            self.p.poll(0)
        if rate is None:  # what a throttled producer still holds would take its quota's time
            self.stopping = True
            self.p.purge()
        self.p.flush(30)

    def start(self, t0):
        self.t0 = t0
        self.th.start()

    def join(self):
        self.th.join(60)

    def rate_between(self, a, b):
        n = sum(sz for t, sz in self.deliveries if self.t0 + a <= t < self.t0 + b)
        return n / (b - a)


def metrics_text(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def metric(text, name_and_labels):
    for line in text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return None


# ---- tests ----------------------------------------------------------------------------------

def test_produce_quota_throttles_to_rate_and_spares_others():
    mport = free_port()
    with Broker({"metrics.listeners": "http://127.0.0.1:%d" % mport}) as b:
        quota = 256000
        set_client_quota(b.port, "flood", "producer_byte_rate", quota)
        flood = Flow(b.bootstrap, "flood", "q.flood", RUN_S)
        calm_rate = 400000  # above the flood's quota: only the quota can explain a shortfall
        calm = Flow(b.bootstrap, "calm", "q.calm", RUN_S, rate=calm_rate)
        t0 = time.monotonic()
        flood.start(t0)
        calm.start(t0)
        flood.join()
        calm.join()
        check(not flood.errors and not calm.errors, "delivery errors: %s %s",
              flood.errors[:3], calm.errors[:3])
        check(flood.deliveries, "the throttled producer delivered nothing")
        first = flood.deliveries[0][0] - t0
        got = flood.rate_between(first + MEASURE_FROM, first + MEASURE_FROM + SPAN_S)
        calm_got = calm.rate_between(first + MEASURE_FROM, first + MEASURE_FROM + SPAN_S)
        # and over a few seconds inside the span, for the unthrottled one
        calm_short = calm.rate_between(first + MEASURE_FROM + 2, first + MEASURE_FROM + 7)
        print("    produce quota %d B/s: measured %.0f B/s (%.1f%%) over an %.0f s span, %d "
              "throttle events (max %.0f ms); unthrottled client offering %d B/s got %.0f B/s "
              "(%.0f B/s over 5 s), %d throttles"
              % (quota, got, 100.0 * got / quota, SPAN_S, len(flood.throttles),
                 1000 * max(flood.throttles or [0]), calm_rate, calm_got, calm_short,
                 len(calm.throttles)))
        check(0.85 * quota <= got <= 1.15 * quota, "throttled rate %.0f not within 15%% of %d",
              got, quota)
        check(len(flood.throttles) > 0, "the throttled producer saw no throttle_time_ms")
        check(not calm.throttles, "the unthrottled producer was throttled: %s",
              calm.throttles[:5])
        check(min(calm_got, calm_short) >= 0.85 * calm_rate,
              "the unthrottled producer got %.0f (%.0f) of %d B/s", calm_got, calm_short,
              calm_rate)
        text = metrics_text(mport)
        n = metric(text, 'depot_quota_throttled_total{type="produce"}')
        check(n is not None and n > 0, "/metrics throttled count: %s", n)
        lim = metric(text, 'depot_quota_limit_bytes_per_second{type="produce",user="",'
                           'client_id="flood"}')
        check(lim == quota, "/metrics limit of the flood's rate: %s", lim)


def test_fetch_quota_throttles_consumer():
    with Broker() as b:
        quota = 300000
        total = int(quota * (RUN_S + 10))  # more than the consumer may read in the run
        fill = Flow(b.bootstrap, "filler", "q.fetch", 120, size=1000)
        fill.t0 = time.monotonic()
        payload = b"f" * 1000
        for _ in range(total // 1000):
            while True:
                try:
                    fill.p.produce("q.fetch", payload, on_delivery=fill._cb)
                    break
                except BufferError:
                    fill.p.poll(0.05)
            fill.p.poll(0)
        check(fill.p.flush(60) == 0 and not fill.errors, "filling failed: %s", fill.errors[:3])
        set_client_quota(b.port, "slowreader", "consumer_byte_rate", quota)
        throttles = []
        c = consumer(b.bootstrap, "gq", {"client.id": "slowreader", "enable.auto.commit": False,
                                         "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
        c.subscribe(["q.fetch"])
        got = []  # (time, bytes)
        t0 = None
        try:
            while t0 is None or time.monotonic() - t0 < RUN_S:
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                now = time.monotonic()
                if t0 is None:
                    t0 = now
                got.append((now, len(m.value())))
        finally:
            c.close()
        a = t0 + MEASURE_FROM
        n = sum(sz for t, sz in got if a <= t < a + SPAN_S)
        rate = n / SPAN_S
        print("    fetch quota %d B/s: measured %.0f B/s (%.1f%%) over an %.0f s span, %d "
              "throttle events, %d bytes read in all" % (quota, rate, 100.0 * rate / quota,
                                                         SPAN_S, len(throttles),
                                                         sum(sz for _, sz in got)))
        check(sum(sz for _, sz in got) < total, "the consumer read everything: no throttling")
        check(0.85 * quota <= rate <= 1.15 * quota, "consumer rate %.0f not within 15%% of %d",
              rate, quota)
        check(throttles, "the consumer saw no throttle_time_ms")


def test_quotas_survive_restart_and_still_apply():
    with Broker() as b:
        set_client_quota(b.port, "burst", "producer_byte_rate", 100000)
        res = alter_quotas(b.port, [([("user", None)], [("consumer_byte_rate", 5e6, False)]),
                                    ([("user", "alice"), ("client-id", None)],
                                     [("request_percentage", 50, False)])])
        check(res == [(0, None), (0, None)], "alter: %s", res)
        b.restart()
        err, found = describe_quotas(b.port, [])
        want = {(("client-id", "burst"),): {"producer_byte_rate": 100000.0},
                (("user", None),): {"consumer_byte_rate": 5e6},
                (("user", "alice"), ("client-id", None)): {"request_percentage": 50.0}}
        check(err == 0 and found == want, "after restart: %s %s", err, found)
        # 100 kB/s over 11 one-second windows allows ~1 MB at once; 2 MB must be throttled.
        flows = [Flow(b.bootstrap, cid, "q.restart", 60) for cid in ("burst", "free")]
        burst(flows, "q.restart")
        print("    after restart: %d throttle events for the quota'd client-id, %d for the "
              "other" % (len(flows[0].throttles), len(flows[1].throttles)))
        check(flows[0].throttles, "the restarted quota did not throttle")
        check(not flows[1].throttles, "a client-id without a quota was throttled")


def burst(flows, topic, n=2000):
    """Each flow offers n 1 kB messages at once and waits for them."""
    for f in flows:
        f.t0 = time.monotonic()
        for _ in range(n):
            while True:
                try:
                    f.p.produce(topic, b"r" * 1000, on_delivery=f._cb)
                    break
                except BufferError:
                    f.p.poll(0.05)
            f.p.poll(0)
    for f in flows:
        f.p.flush(60)


def test_sasl_user_quota():
    """A user quota follows the SASL principal, whatever its client-id."""
    with SaslBroker() as sb:
        api_versions(sb.port)  # answered: the broker is up (a SIGTERM during start kills it)
        sb.stop()
        # the quota file lives in the data dir: set it through a plaintext broker on it
        with Broker({"log.dirs": sb.data_dir}, name="admin") as admin:
            res = alter_quotas(admin.port, [([("user", "alice")],
                                             [("producer_byte_rate", 100000, False)])])
            check(res == [(0, None)], "alter: %s", res)
        sb.start()
        flows = [Flow(sb.bootstrap, "same-app", "q.sasl", 60, extra={
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": u, "sasl.password": pw}) for u, pw in (("alice", "alice-pw"),
                                                                    ("bob", "bob-pw"))]
        burst(flows, "q.sasl")
        print("    SASL user quota: alice %d throttle events, bob (same client-id) %d"
              % (len(flows[0].throttles), len(flows[1].throttles)))
        check(not flows[0].errors and not flows[1].errors, "errors: %s %s",
              flows[0].errors[:3], flows[1].errors[:3])
        check(flows[0].throttles, "alice's user quota did not throttle her")
        check(not flows[1].throttles, "bob was throttled by alice's quota")


def test_alter_validation_and_describe_filters():
    with Broker() as b:
        res = alter_quotas(b.port, [
            ([("user", "u1")], [("producer_byte_rate", 1.5, False)]),     # not a Long
            ([("user", "u1")], [("no_such_key", 1, False)]),
            ([("ip", "10.0.0.1")], [("connection_creation_rate", 1, False)]),
            ([("user", "u1"), ("user", "u2")], [("producer_byte_rate", 1, False)]),
            ([("user", "u1")], [("producer_byte_rate", -5, False)]),
            ([("user", "u1")], [("producer_byte_rate", 1000, False)]),
        ])
        check([e for e, _ in res] == [42, 42, 42, 42, 42, 0], "validation: %s", res)
        res = alter_quotas(b.port, [([("user", "u9")], [("producer_byte_rate", 7, False)])],
                           validate_only=True)
        check(res == [(0, None)], "validate_only: %s", res)
        alter_quotas(b.port, [([("user", "u2"), ("client-id", "c2")],
                               [("producer_byte_rate", 2000, False)]),
                              ([("client-id", None)], [("consumer_byte_rate", 3000, False)])])
        _, found = describe_quotas(b.port, [("user", 0, "u9")])
        check(found == {}, "validate_only stored something: %s", found)
        _, found = describe_quotas(b.port, [("user", 2, None)])
        check(set(found) == {(("user", "u1"),), (("user", "u2"), ("client-id", "c2"))},
              "user specified, not strict: %s", found)
        _, found = describe_quotas(b.port, [("user", 2, None)], strict=True)
        check(set(found) == {(("user", "u1"),)}, "user specified, strict: %s", found)
        _, found = describe_quotas(b.port, [("client-id", 1, None)])
        check(found == {(("client-id", None),): {"consumer_byte_rate": 3000.0}},
              "client-id default: %s", found)
        err, _ = describe_quotas(b.port, [("nope", 2, None)])
        check(err == 42, "unknown entity type: %d", err)
        res = alter_quotas(b.port, [([("user", "u1")], [("producer_byte_rate", 0, True)])])
        _, found = describe_quotas(b.port, [("user", 0, "u1")])
        check(res == [(0, None)] and found == {}, "remove: %s %s", res, found)


if __name__ == "__main__":
    run_tests(globals())

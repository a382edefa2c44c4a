#!/usr/bin/python3
"""Uplink benchmark: backlog drain rate and the bandwidth cap, against the same link without
Depot in the path (docs/uplink.md, docs/benchmarks.md).

The "link" is a loopback TCP proxy (tests/e2e/tcp_proxy.py) in front of a central Depot, or
with --central kafka an Apache Kafka 4.x broker (tests/e2e/kafka_dist.py, advertising the
proxy's address), where the uplink runs in transactions mode. Three measurements, each in MB/s
of record bytes (keys + values + headers) arriving centrally (for Kafka: visible to a
read_committed consumer, i.e. committed):
  direct   a librdkafka producer (confluent-kafka, idempotent, acks=all, zstd, linger 20 ms)
           sends the same records straight to the central cluster through the proxy: the link
           without Depot in the path;
  drain    a box Depot holds a backlog built while the link was refused; the link opens and
           the uplink drains it (no cap);
  capped   the same drain with uplink.max.bytes.per.second=CAP: the rate over the drain and
           its deviation from the cap.
Usage: bench/uplink.py [--central depot|kafka] [MB] [CAP_BYTES_PER_S]
       (defaults depot, or $UPLINK_BENCH_CENTRAL; 64 MB; 4000000)
Needs build/depot and Debian's python3-confluent-kafka; run with /usr/bin/python3. Kafka needs
its jars in build/kafka (scripts/fetch-kafka) and a JDK; one Kafka serves all three runs.
Prints one line per measurement and a JSON summary on the last line.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/e2e"))
os.environ.setdefault("DEPOT_BIN", os.path.join(HERE, "../build/depot"))
from depot_harness import Broker, free_port  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

ARGS = sys.argv[1:]
CENTRAL = os.environ.get("UPLINK_BENCH_CENTRAL", "depot")
if ARGS[:1] == ["--central"] and len(ARGS) > 1:
    CENTRAL, ARGS = ARGS[1], ARGS[2:]
elif ARGS and ARGS[0].startswith("--central="):
    CENTRAL, ARGS = ARGS[0].split("=", 1)[1], ARGS[1:]
if CENTRAL not in ("depot", "kafka"):
    sys.exit("bench/uplink.py: --central depot|kafka, not %r" % CENTRAL)
MB = float(ARGS[0]) if len(ARGS) > 0 else 64.0
CAP = int(ARGS[1]) if len(ARGS) > 1 else 4_000_000
VAL = 1000
PARTS = 3


def records():
    n = int(MB * 1e6 / VAL)
    body = (b"0123456789abcdef" * (VAL // 16 + 1))[:VAL - 8]
    return n, [b"%08d" % i + body for i in range(n)]


KAFKA = {}  # with --central kafka: the one Kafka ("k") and its proxy ("proxy"), for all runs


def central():
    """(proxy, release): a central cluster behind a proxy in "pass" mode. A fresh Depot per
    measurement; Kafka (~10 s to start) once, its runs kept apart by topic names."""
    if CENTRAL == "kafka":
        if not KAFKA:
            import tempfile
            import kafka_dist as kd
            from test_uplink import kafka_behind_proxy
            ok, why = kd.available()
            if not ok:
                sys.exit("bench/uplink.py --central kafka: %s" % why)
            KAFKA["tmp"] = tempfile.mkdtemp(prefix="depot-bench-uplink-kafka-")
            KAFKA["proxy"] = TcpProxy("127.0.0.1", 0)
            KAFKA["k"] = kafka_behind_proxy(KAFKA["tmp"], KAFKA["proxy"])
        KAFKA["proxy"].mode("pass")
        return KAFKA["proxy"], lambda: None
    port = free_port()
    proxy = TcpProxy("127.0.0.1", port)
    c = Broker(settings={"advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % proxy.port},
               name="bench-central", start=False)
    c.port = port
    c.start()

    def release():
        proxy.close()
        c.cleanup()
    return proxy, release


def kafka_stop():
    if KAFKA:
        import shutil
        KAFKA["k"].stop()
        KAFKA["proxy"].close()
        shutil.rmtree(KAFKA["tmp"], ignore_errors=True)
        KAFKA.clear()


def produce(bs, topic, vals, extra=None):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bs, "acks": "all", "enable.idempotence": True,
            "compression.type": "zstd", "linger.ms": 20, "log_level": 0,
            "queue.buffering.max.kbytes": 1 << 20}
    conf.update(extra or {})
    p = Producer(conf)
    t0 = time.time()
    for i, v in enumerate(vals):
        while True:
            try:
                p.produce(topic, v, key=b"k%d" % (i % 7), partition=i % PARTS,
                          headers=[("seq", b"%d" % i)])
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(600)
    return time.time() - t0


def rec_bytes(vals):
    return sum(len(v) + 3 + 3 + 8 for v in vals)  # value, key, header name + value


def direct(vals):
    proxy, release = central()
    try:
        # the topic exists first, as the uplink's does
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % proxy.port, "log_level": 0})
        a.create_topics([NewTopic("direct", PARTS, 1)])["direct"].result(20)
        dt = produce("127.0.0.1:%d" % proxy.port, "direct", vals)
        return rec_bytes(vals) / dt / 1e6
    finally:
        release()


def status(box):
    link, parts = {}, []
    try:
        with open(os.path.join(box.data_dir, "uplink.status")) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                kv = dict(x.split("=", 1) for x in fields[1:] if "=" in x)
                if fields[0] == "uplink":
                    link = kv
                else:
                    parts.append(kv)
    except OSError:
        pass
    return link, parts


def drain(vals, cap, prefix):
    """Backlog built with the link refused, then drained. Returns (MB/s of the producer's
    record bytes over the whole drain, MB/s as the uplink counts record bytes incl. depot.src,
    over the steady middle of the drain, from the status file's own clock, the uplink line of
    the status at the end)."""
    proxy, release = central()
    settings = {"uplink.bootstrap.servers": "127.0.0.1:%d" % proxy.port,
                "uplink.topic.prefix": prefix, "num.partitions": PARTS}
    if cap:
        settings["uplink.max.bytes.per.second"] = cap
    box = Broker(settings=settings, name="bench-box")
    try:
        proxy.mode("refuse")
        produce(box.bootstrap, "sensors", vals, {"compression.type": "none"})
        deadline = time.time() + 60
        while time.time() < deadline:  # the status file shows the whole backlog
            _, parts = status(box)
            if sum(int(p.get("lag_records", 0)) for p in parts
                   if p.get("topic") == "sensors") >= len(vals):
                break
            time.sleep(0.2)
        proxy.mode("pass")
        # The central side's end offsets every 50 ms: from the first record that arrives to
        # the last (the reconnect backoff after the outage is not the drain's rate). A
        # read_committed consumer's end offset is the last stable offset: a transactional
        # drain counts as arrived when committed. Against Kafka the end offsets also count
        # the transactions' commit markers, so the drain's end is the first sample at the
        # final end offsets, taken once the status shows everything forwarded (committed).
        from confluent_kafka import Consumer, TopicPartition
        cons = Consumer({"bootstrap.servers": "127.0.0.1:%d" % proxy.port, "group.id": "b",
                         "log_level": 0, "isolation.level": "read_committed"})
        t0 = time.time()
        n = len(vals)
        samples = set()  # (status updated_ms, forwarded_bytes): the uplink's own count
        ends = []  # (time, sum of the central end offsets)
        while True:
            link, parts = status(box)
            mine = [p for p in parts if p.get("topic") == "sensors"]
            samples.add((int(link.get("updated_ms", 0)) / 1000.0,
                         sum(int(p.get("forwarded_bytes", 0)) for p in mine)))
            got = 0
            for q in range(PARTS):
                try:
                    got += cons.get_watermark_offsets(TopicPartition(prefix + "sensors", q),
                                                      timeout=5)[1]
                except Exception:
                    pass
            now = time.time()
            ends.append((now, got))
            if got >= n and sum(int(p.get("forwarded", 0)) for p in mine) >= n:
                break
            if now - t0 > 900:
                raise RuntimeError("drain did not finish")
            time.sleep(0.05)
        cons.close()
        t_first, n_first = next((t, g) for t, g in ends if g > 0)
        t_last = next(t for t, g in ends if g >= got)
        dt = max(t_last - t_first, 1e-3)
        steady = rec_bytes(vals) * (n - min(n_first, n)) / n / dt / 1e6
        if cap:  # the middle of the drain by the status file's clock (1 s samples)
            mid = sorted(x for x in samples if x[1] > 0)[1:-1]
            if len(mid) >= 2:
                # least squares over every sample, not the two ends: in transactions mode
                # forwarded_bytes moves per commit (200 ms of bytes at a time), so either end
                # alone may be off by up to a transaction
                tm = sum(t for t, _ in mid) / len(mid)
                bm = sum(b for _, b in mid) / len(mid)
                steady = (sum((t - tm) * (b - bm) for t, b in mid) /
                          sum((t - tm) ** 2 for t, _ in mid) / 1e6)
        return rec_bytes(vals) / (t_last - t0) / 1e6, steady, status(box)[0]
    finally:
        box.cleanup()
        release()


def main():
    n, vals = records()
    out = {"central": CENTRAL, "records": n, "mb": MB, "cap_bytes_per_s": CAP}
    try:
        run(vals, n, out)
    finally:
        kafka_stop()
    print(json.dumps(out))


def run(vals, n, out):
    out["direct_mb_s"] = direct(vals)
    print("uplink bench: central %s; %d records of %d bytes, %.0f MB" % (CENTRAL, n, VAL, MB),
          flush=True)
    print("uplink bench: direct librdkafka producer through the link: %.1f MB/s"
          % out["direct_mb_s"], flush=True)
    out["drain_incl_reconnect_mb_s"], out["drain_mb_s"], link = drain(vals, 0, "hq.")
    out["mode"], out["commits"] = link.get("mode"), int(link.get("commits", "0"))
    print("uplink bench: uplink mode %s, %d commits" % (out["mode"], out["commits"]), flush=True)
    if out["mode"] != ("transactions" if CENTRAL == "kafka" else "read-back"):
        raise RuntimeError("unexpected uplink mode against %s: %s" % (CENTRAL, link))
    print("uplink bench: backlog drain through Depot's uplink: %.1f MB/s from the first record "
          "to the last (%.0f%% of direct); %.1f MB/s counting the reconnect after the outage"
          % (out["drain_mb_s"], 100 * out["drain_mb_s"] / out["direct_mb_s"],
             out["drain_incl_reconnect_mb_s"]), flush=True)
    capped_vals = vals[:max(1000, int(CAP * 12 / VAL))]  # ~12 s at the cap
    _, out["capped_mb_s"], _ = drain(capped_vals, CAP, "hqcap.")
    out["cap_error_pct"] = 100.0 * (out["capped_mb_s"] * 1e6 - CAP) / CAP
    print("uplink bench: capped drain %.3f MB/s against uplink.max.bytes.per.second=%d: %+.1f%%"
          % (out["capped_mb_s"], CAP, out["cap_error_pct"]), flush=True)


if __name__ == "__main__":
    main()

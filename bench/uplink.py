#!/usr/bin/python3
"""Uplink benchmark: backlog drain rate and the bandwidth cap, against the same link without
Depot in the path (docs/uplink.md, docs/benchmarks.md).

The "link" is a loopback TCP proxy (tests/e2e/tcp_proxy.py) in front of a central Depot. Three
measurements, each in MB/s of record bytes (keys + values + headers) arriving centrally:
  direct   a librdkafka producer (confluent-kafka, idempotent, acks=all, zstd, linger 20 ms)
           sends the same records straight to the central Depot through the proxy: the link
           without Depot in the path;
  drain    a box Depot holds a backlog built while the link was refused; the link opens and
           the uplink drains it (no cap);
  capped   the same drain with uplink.max.bytes.per.second=CAP: the rate over the drain and
           its deviation from the cap.
Usage: bench/uplink.py [MB] [CAP_BYTES_PER_S]   (defaults 64 MB and 4000000)
Needs build/depot and Debian's python3-confluent-kafka; run with /usr/bin/python3.
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

MB = float(sys.argv[1]) if len(sys.argv) > 1 else 64.0
CAP = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000_000
VAL = 1000
PARTS = 3


def records():
    n = int(MB * 1e6 / VAL)
    body = (b"0123456789abcdef" * (VAL // 16 + 1))[:VAL - 8]
    return n, [b"%08d" % i + body for i in range(n)]


def central():
    port = free_port()
    proxy = TcpProxy("127.0.0.1", port)
    c = Broker(settings={"advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % proxy.port},
               name="bench-central", start=False)
    c.port = port
    c.start()
    return c, proxy


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
    c, proxy = central()
    try:
        # the topic exists first, as the uplink's does
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % proxy.port, "log_level": 0})
        a.create_topics([NewTopic("direct", PARTS, 1)])["direct"].result(20)
        dt = produce("127.0.0.1:%d" % proxy.port, "direct", vals)
        return rec_bytes(vals) / dt / 1e6
    finally:
        proxy.close()
        c.cleanup()


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


def drain(vals, cap):
    """Backlog built with the link refused, then drained. Returns (MB/s of the producer's
    record bytes over the whole drain, MB/s as the uplink counts record bytes incl. depot.src,
    over the steady middle of the drain, from the status file's own clock)."""
    c, proxy = central()
    settings = {"uplink.bootstrap.servers": "127.0.0.1:%d" % proxy.port,
                "uplink.topic.prefix": "hq.", "num.partitions": PARTS}
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
        # The central side's watermarks every 50 ms: from the first record that arrives to
        # the last (the reconnect backoff after the outage is not the drain's rate).
        from confluent_kafka import Consumer, TopicPartition
        cons = Consumer({"bootstrap.servers": "127.0.0.1:%d" % proxy.port, "group.id": "b",
                         "log_level": 0})
        t0 = time.time()
        t_first = None
        n = len(vals)
        samples = set()  # (status updated_ms, forwarded_bytes): the uplink's own count
        while True:
            link, parts = status(box)
            samples.add((int(link.get("updated_ms", 0)) / 1000.0,
                         sum(int(p.get("forwarded_bytes", 0)) for p in parts
                             if p.get("topic") == "sensors")))
            got = 0
            for q in range(PARTS):
                try:
                    got += cons.get_watermark_offsets(TopicPartition("hq.sensors", q),
                                                      timeout=5)[1]
                except Exception:
                    pass
            now = time.time()
            if got and t_first is None:
                t_first, n_first = now, got
            if got >= n:
                break
            if now - t0 > 900:
                raise RuntimeError("drain did not finish")
            time.sleep(0.05)
        cons.close()
        dt = max(now - t_first, 1e-3)
        steady = rec_bytes(vals) * (n - n_first) / n / dt / 1e6
        if cap:  # the middle of the drain by the status file's clock (1 s samples)
            mid = sorted(x for x in samples if x[1] > 0)
            if len(mid) >= 4:
                (ta, ba), (tb, bb) = mid[1], mid[-2]
                steady = (bb - ba) / (tb - ta) / 1e6
        dt = now - t0
        return rec_bytes(vals) / dt / 1e6, steady
    finally:
        proxy.close()
        box.cleanup()
        c.cleanup()


def main():
    n, vals = records()
    out = {"records": n, "mb": MB, "cap_bytes_per_s": CAP}
    out["direct_mb_s"] = direct(vals)
    print("uplink bench: %d records of %d bytes, %.0f MB" % (n, VAL, MB), flush=True)
    print("uplink bench: direct librdkafka producer through the link: %.1f MB/s"
          % out["direct_mb_s"], flush=True)
    out["drain_incl_reconnect_mb_s"], out["drain_mb_s"] = drain(vals, 0)
    print("uplink bench: backlog drain through Depot's uplink: %.1f MB/s from the first record "
          "to the last (%.0f%% of direct); %.1f MB/s counting the reconnect after the outage"
          % (out["drain_mb_s"], 100 * out["drain_mb_s"] / out["direct_mb_s"],
             out["drain_incl_reconnect_mb_s"]), flush=True)
    capped_vals = vals[:max(1000, int(CAP * 12 / VAL))]  # ~12 s at the cap
    _, out["capped_mb_s"] = drain(capped_vals, CAP)
    out["cap_error_pct"] = 100.0 * (out["capped_mb_s"] * 1e6 - CAP) / CAP
    print("uplink bench: capped drain %.3f MB/s against uplink.max.bytes.per.second=%d: %+.1f%%"
          % (out["capped_mb_s"], CAP, out["cap_error_pct"]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

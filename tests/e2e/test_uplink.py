"""Store and forward (docs/uplink.md): a box Depot forwards its topics to a central cluster
through a TCP proxy that passes, stalls, resets, black-holes and refuses traffic, while
sensors keep producing with acks=all, the box is killed with SIGKILL at random moments and the
central broker restarts. The central cluster is a second Depot (always) and Apache Kafka 4.x
(where its jars can be had; skipped with a message otherwise).

At the end every acknowledged record must be on the central side exactly once, in order per
partition, at the same partition number, with its key, headers and CreateTime timestamp; the
central side must hold exactly the box's log (nothing the box does not have, nothing twice).
Counts are printed: sent, acknowledged, forwarded, duplicated, missing.

CI mode storms for ~25 s; DEPOT_LONG=1 for 5 minutes. DEPOT_SEED fixes the random script.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import LONG, Broker, BrokerError, check, free_port, run_tests  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

TOPIC = "sensors"
PREFIX = "plant7."
PARTS = 3


def producer_main(bootstrap, ack_path, stop_path, rate):
    """Sends records "v<n>" with key "k<n % 7>", a header seq=<n> and an explicit timestamp to
    partition n % PARTS until stop_path exists; logs every acknowledged record."""
    from confluent_kafka import Producer
    acks = open(ack_path, "a")
    errors = {"n": 0, "last": ""}

    def on_delivery(err, msg):
        if err is None:
            acks.write("%s %d %d %d\n" % (msg.value().decode(), msg.partition(), msg.offset(),
                                          msg.timestamp()[1]))
            acks.flush()
        else:
            errors["n"] += 1
            errors["last"] = str(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": int(os.environ.get("UP_MSG_TMO", "600000")),
                  "log_level": 0, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                  "retry.backoff.ms": 20, "socket.connection.setup.timeout.ms": 2000,
                  "topic.metadata.refresh.interval.ms": 1000})
    n = 0
    t0 = time.time()
    ts0 = int(time.time() * 1000)  # recent: retention.ms must not interfere
    while not os.path.exists(stop_path):
        if n > (time.time() - t0) * rate:
            p.poll(0.01)
            continue
        try:
            p.produce(TOPIC, value=b"v%d" % n, key=b"k%d" % (n % 7), partition=n % PARTS,
                      headers=[("seq", str(n).encode()), ("empty", b"")],
                      timestamp=ts0 + n, on_delivery=on_delivery)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        p.poll(0)
    left = p.flush(120)
    acks.close()
    print(json.dumps({"sent": n, "unflushed": left, "failed": errors["n"],
                      "last_error": errors["last"]}), flush=True)


def read_all(bootstrap, topic, parts, timeout=60, isolation="read_uncommitted"):
    """{partition: [(offset, key, value, headers list, timestamp)]} from the beginning to the
    high watermark of every partition. read_committed (a transactional central side) stops at
    the partition's end as the consumer reports it (EOF at the last stable offset, past
    control records and aborted transactions), which must reach the high watermark taken
    first: a read that ends early fails the test instead of passing short."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "uplink-check",
                  "enable.auto.commit": False, "log_level": 0, "enable.partition.eof": True,
                  "isolation.level": isolation})
    out = {}
    try:
        for q in range(parts):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, q), timeout=20)
            out[q] = []
            if hi <= lo:
                continue
            c.assign([TopicPartition(topic, q, lo)])
            deadline = time.time() + timeout
            done = False
            while not done:
                check(time.time() < deadline, "%s/%d: the %s read did not reach %d in %ds",
                      topic, q, isolation, hi, timeout)
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= hi:
                        done = True
                    continue
                out[q].append((m.offset(), m.key(), m.value(), m.headers() or [],
                               m.timestamp()[1]))
                done = m.offset() >= hi - 1
            c.unassign()
    finally:
        c.close()
    return out


def status(box):
    """The uplink status file (what depotctl uplink status prints), parsed."""
    path = os.path.join(box.data_dir, "uplink.status")
    link, parts = {}, []
    try:
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                kv = dict(x.split("=", 1) for x in fields[1:] if "=" in x)
                if fields[0] == "uplink":
                    link = kv
                elif fields[0] == "part":
                    parts.append(kv)
    except OSError:
        pass
    return link, parts


def wait_drained(box, topic, timeout):
    """Until every partition of topic reports lag 0 with nothing in flight."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        link, parts = status(box)
        mine = [p for p in parts if p.get("topic") == topic]
        if mine and all(p["lag_records"] == "0" and p["inflight"] == "0" for p in mine):
            return link, mine
        time.sleep(0.5)
    raise AssertionError("uplink did not drain within %ds: %s" % (timeout, status(box)))


def verify(box_bs, central_bs, acked, sent, label, isolation="read_uncommitted"):
    """Central == box log (by depot.src), every acked record there once; prints the counts.
    A transactional central side is read as its consumers must read it: read_committed."""
    local = read_all(box_bs, TOPIC, PARTS)
    central = read_all(central_bs, PREFIX + TOPIC, PARTS, isolation=isolation)
    dup = missing = bad_order = bad_fields = wrong_part = 0
    forwarded = 0
    by_src = {}
    for q, recs in central.items():
        last = -1
        for off, key, val, hdrs, ts in recs:
            forwarded += 1
            src = dict(hdrs).get("depot.src", b"").decode()
            parts = src.split(":")
            check(len(parts) == 4 and parts[1] == TOPIC, "central record without depot.src: %r",
                  hdrs)
            lp, lo = int(parts[2]), int(parts[3])
            if lp != q:
                wrong_part += 1
            if (lp, lo) in by_src:
                dup += 1
            by_src[(lp, lo)] = (key, val, hdrs, ts)
            if lo <= last:
                bad_order += 1
            last = lo
    local_n = 0
    for q, recs in local.items():
        for off, key, val, hdrs, ts in recs:
            local_n += 1
            c = by_src.get((q, off))
            if c is None:
                missing += 1
                continue
            ckey, cval, chdrs, cts = c
            want_h = list(hdrs) + []
            got_h = [h for h in chdrs if h[0] != "depot.src"]
            if (ckey, cval, cts) != (key, val, ts) or got_h != [(k, v or b"") for k, v in want_h]:
                bad_fields += 1
    central_vals = {}
    for (lp, lo), (key, val, hdrs, ts) in by_src.items():
        central_vals[val] = ts
    acked_missing = [v for v in acked if v.encode() not in central_vals]
    bad_ts = [v for v, ts in acked.items() if central_vals.get(v.encode(), ts) != ts]
    extra = len(by_src) - (local_n - missing)
    print("uplink %s: sent=%d acknowledged=%d local=%d forwarded=%d duplicated=%d missing=%d "
          "(acknowledged but not central: %d) extra=%d out-of-order=%d wrong-partition=%d "
          "field-mismatch=%d" % (label, sent, len(acked), local_n, forwarded, dup, missing,
                                 len(acked_missing), extra, bad_order, wrong_part, bad_fields),
          flush=True)
    check(len(acked) > 0, "nothing was acknowledged")
    check(dup == 0, "%d records arrived twice on the central side", dup)
    check(missing == 0 and not acked_missing, "missing on the central side: %d of the log, "
          "acknowledged: %s", missing, acked_missing[:5])
    check(extra == 0, "%d central records the box does not have", extra)
    check(bad_order == 0, "per-partition order broken %d times", bad_order)
    check(wrong_part == 0, "%d records in another partition number", wrong_part)
    check(bad_fields == 0 and not bad_ts, "%d records with changed key/value/headers/timestamp",
          bad_fields + len(bad_ts))
    return forwarded


def aborted_visible(central_bs, committed, label, topic=PREFIX + TOPIC, parts=PARTS):
    """What a read_uncommitted consumer sees beyond read_committed: the records of aborted
    transactions (a kill -9 or an outage mid-transaction), resent and committed later. Every
    committed record must be among them (nothing read_committed shows is invisible to it)."""
    raw = read_all(central_bs, topic, parts)
    n_raw = sum(len(v) for v in raw.values())
    raw_offsets = {(q, r[0]) for q, v in raw.items() for r in v}
    n_committed = sum(len(v) for v in committed.values())
    lost = sum(1 for q, v in committed.items() for r in v if (q, r[0]) not in raw_offsets)
    print("uplink %s: read_uncommitted shows %d records, read_committed %d: %d from aborted "
          "transactions" % (label, n_raw, n_committed, n_raw - n_committed), flush=True)
    check(lost == 0 and n_raw >= n_committed, "read_committed shows %d records "
          "read_uncommitted does not", lost)
    return n_raw - n_committed


def central_behind_proxy():
    """A central Depot that advertises the proxy's address, so every connection of the
    uplink (not just the bootstrap) goes through the proxy."""
    proxy = TcpProxy("127.0.0.1", 0)  # upstream set once the central has its port
    # The central side forgets idle producer ids after 6 s, so outages in the storm outlast
    # them (the uplink's delivery watchdog, 4 s here, must start over before that).
    central = Broker(settings={"advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % proxy.port,
                               "producer.id.expiration.ms": 6000},
                     name="central", start=False)
    start_behind(central, proxy)
    return central, proxy


def start_behind(central, proxy):
    """(Re)starts the central Depot behind proxy. The box knows only the proxy's address, so
    when another process took the central's port while it was down, the central moves to a
    fresh one and the proxy follows it."""
    try:
        central.start()
    except BrokerError:
        if central.port is None or "in use" not in central.log_tail(5).lower():
            raise
        print("    central: port %d was taken while it was down; moved" % central.port, flush=True)
        central.port = None
        central.start()
    proxy.set_upstream(central.port)


def restart_central(central, proxy, hard):
    if hard:
        central.kill()
    else:
        central.stop()
    start_behind(central, proxy)


def restart_kafka_behind(k, proxy):
    """Restarts Kafka behind proxy, on fresh ports if one of its own was taken while it was
    down (the box knows only the proxy; the data and the cluster id stay)."""
    import kafka_dist as kd
    k.stop()
    try:
        k.start()
    except kd.PortTaken:
        old = (k.port, k.controller_port)
        k.port, k.controller_port = kd._free_ports(2)
        with open(k.props_path) as f:
            props = f.read()
        for a, b in zip(old, (k.port, k.controller_port)):
            props = re.sub(r"127\.0\.0\.1:%d\b" % a, "127.0.0.1:%d" % b, props)
        with open(k.props_path, "w") as f:
            f.write(props)
        print("    kafka: port %d or %d was taken while it was down; moved to %d, %d"
              % (old + (k.port, k.controller_port)), flush=True)
        k.start()
    proxy.set_upstream(k.port)


class Storm:
    """The producer subprocess plus the failure script."""

    def __init__(self, box, rate):
        self.box = box
        self.ack_path = os.path.join(box.tmp, "acks")
        self.stop_path = os.path.join(box.tmp, "stop")
        self.prod = subprocess.Popen([sys.executable, os.path.abspath(__file__), "producer",
                                      box.bootstrap, self.ack_path, self.stop_path, str(rate)],
                                     stdout=subprocess.PIPE)

    def finish(self):
        open(self.stop_path, "w").close()
        out, _ = self.prod.communicate(timeout=180)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        acked = {}
        with open(self.ack_path) as f:
            for line in f:
                v, part, off, ts = line.split()
                acked[v] = int(ts)
        return summary, acked

    def kill(self):
        if self.prod.poll() is None:
            self.prod.send_signal(signal.SIGKILL)
            self.prod.wait()


def box_settings(proxy_port, **extra):
    s = {"uplink.bootstrap.servers": "127.0.0.1:%d" % proxy_port,
         "uplink.topic.prefix": PREFIX, "uplink.topics": "sensors|other.*",
         "uplink.delivery.timeout.ms": 4000, "num.partitions": PARTS,
         "log.segment.bytes": 65536}
    s.update(extra)
    return s


def run_storm(proxy, central_restart, label, seconds, kills=True, mode="read-back"):
    """The central cluster listens behind proxy and advertises the proxy's address. mode: how
    the uplink must keep exactly once against it (the status file's mode=)."""
    seed = int(os.environ.get("DEPOT_SEED", str(int(time.time()))))
    print("uplink %s: DEPOT_SEED=%d" % (label, seed), flush=True)
    rnd = random.Random(seed)
    central_bs = lambda: "127.0.0.1:%d" % proxy.port  # noqa: E731
    box = Broker(settings=box_settings(proxy.port), name="box")
    storm = Storm(box, rate=400)
    actions = {"stall": 0, "reset": 0, "blackhole": 0, "refuse": 0, "kill_box": 0,
               "restart_central": 0}
    try:
        t_end = time.time() + seconds
        while time.time() < t_end:
            time.sleep(rnd.uniform(0.5, 2.0))
            a = rnd.choice(["stall", "reset", "blackhole", "refuse", "kill_box",
                            "restart_central", "pass"])
            if a == "kill_box" and not kills:
                a = "reset"
            if a == "stall":
                proxy.mode("stall")
                time.sleep(rnd.uniform(0.5, 3))
            elif a == "reset":
                proxy.reset()
            elif a == "blackhole":
                proxy.mode("blackhole")
                time.sleep(rnd.uniform(1, 9))  # often past the watchdog and the id expiry
            elif a == "refuse":
                proxy.mode("refuse")
                time.sleep(rnd.uniform(0.5, 3))
            elif a == "kill_box":
                time.sleep(rnd.uniform(0, 0.3))
                box.kill()
                box.start()
            elif a == "restart_central":
                central_restart()
            if a != "pass":
                actions[a] += 1
            proxy.mode("pass")
        if kills and actions["kill_box"] == 0:  # at least one kill -9 (mid-transaction, likely)
            box.kill()
            box.start()
            actions["kill_box"] += 1
        summary, acked = storm.finish()
        check(summary["unflushed"] == 0, "the producer could not deliver everything: %s", summary)
        link, parts = wait_drained(box, TOPIC, 120)
        print("uplink %s: storm actions %s; link %s, resyncs=%s, records found by read-back "
              "past the checkpoint=%d" % (label, actions, link.get("state"), link.get("resyncs"),
                                          sum(int(p["readback_found"]) for p in parts)),
              flush=True)
        check(link.get("mode") == mode, "uplink mode %r (%s), want %r", link.get("mode"),
              link.get("mode_reason"), mode)
        if mode == "transactions":
            check(int(link.get("commits", "0")) > 0 and int(link.get("last_commit_ms", "0")) > 0,
                  "no committed transaction in the status: %s", link)
        else:
            check("TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in link.get("mode_reason", ""),
                  "read-back without the central refusal as the reason: %s", link)
        isolation = "read_committed" if mode == "transactions" else "read_uncommitted"
        forwarded = verify(box.bootstrap, central_bs(), acked, summary["sent"], label, isolation)
        if mode == "transactions":
            committed = read_all(central_bs(), PREFIX + TOPIC, PARTS, isolation=isolation)
            aborted_visible(central_bs(), committed, label)
        # depotctl shows the same state
        ctl = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/depotctl"))
        if True:
            r = subprocess.run([ctl, "uplink", "status", "--data-dir", box.data_dir],
                               capture_output=True, text=True, timeout=20)
            check(r.returncode == 0 and "sensors" in r.stdout and
                  ("Mode: %s" % mode) in r.stdout, "depotctl uplink status: %s %s",
                  r.stdout, r.stderr)
            if mode == "transactions":
                check("Last commit: never" not in r.stdout, "depotctl: no last commit: %s",
                      r.stdout)
            print(r.stdout, flush=True)
        box.stop()
        return forwarded
    finally:
        storm.kill()
        proxy.close()


def test_storm_depot_central():
    seconds = 300 if LONG else 25
    central, proxy = central_behind_proxy()
    run_storm(proxy, lambda: restart_central(central, proxy, random.random() < 0.5),
              "depot-central", seconds)
    central.stop()


def test_flash_budget_pushback():
    """Link down, box at its flash budget: producers get the retriable storage error and
    nothing unforwarded is deleted; when the link returns the box drains and accepts again."""
    central, proxy = central_behind_proxy()
    box = Broker(settings=box_settings(proxy.port, **{
        "log.dirs.max.bytes": 1_500_000, "log.dirs.full.policy": "delete-oldest",
        "log.retention.bytes": 200_000, "log.segment.bytes": 65536}), name="box")
    from confluent_kafka import Producer
    try:
        # a first record so the central topic exists and the uplink runs, then cut the link
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0,
                      "message.timeout.ms": 3000, "retry.backoff.ms": 100,
                      "batch.size": 16384})
        p.produce(TOPIC, b"first", partition=0)
        check(p.flush(10) == 0, "first record not delivered")
        wait_drained(box, TOPIC, 30)
        proxy.mode("blackhole")
        proxy.reset()
        acked, failed = [], {}

        def dr(err, msg):
            if err is None:
                acked.append(msg.value())
            else:
                failed[err.name()] = failed.get(err.name(), 0) + 1

        val = b"x" * 1000
        for i in range(4000):
            try:
                p.produce(TOPIC, val[:-8] + b"%08d" % i, partition=i % PARTS, on_delivery=dr)
            except BufferError:
                p.poll(0.1)
            p.poll(0)
        p.flush(30)
        print("flash budget: link down: acknowledged=%d failed=%s" % (len(acked), failed),
              flush=True)
        with open(box.log_path) as f:
            rejected = f.read().count("rejected: store holds")
        check(rejected > 0 and sum(failed.values()) > 0,
              "the box never pushed back (budget rejections logged: %d): %s", rejected, failed)
        link, parts = status(box)
        check(all(p["dropped_records"] == "0" for p in parts), "records dropped: %s", parts)
        check(all(int(p["local_start"]) == 0 for p in parts if p["topic"] == TOPIC),
              "unforwarded segments were deleted: %s", parts)
        proxy.mode("pass")
        wait_drained(box, TOPIC, 90)
        # accepted again once forwarded segments can go
        again = []
        deadline = time.time() + 30
        while not again and time.time() < deadline:
            p.produce(TOPIC, b"after", partition=1,
                      on_delivery=lambda e, m: again.append(e) if e is None else None)
            p.flush(5)
        check(again, "the box does not accept writes after draining")
        wait_drained(box, TOPIC, 30)
        central_recs = read_all("127.0.0.1:%d" % proxy.port, PREFIX + TOPIC, PARTS)
        vals = {}
        for q, recs in central_recs.items():
            for r in recs:
                vals[r[2]] = vals.get(r[2], 0) + 1
        miss = [v for v in acked if vals.get(v, 0) != 1]
        print("flash budget: after the link returned: forwarded=%d missing-or-duplicated=%d"
              % (sum(vals.values()), len(miss)), flush=True)
        check(not miss, "acknowledged records not exactly once on the central side: %d", len(miss))
    finally:
        proxy.close()


def test_retention_hold_false_counts_drops():
    """uplink.retention.hold=false: the budget deletes unforwarded records, and every dropped
    range is logged and counted in the status."""
    central, proxy = central_behind_proxy()
    box = Broker(settings=box_settings(proxy.port, **{
        "log.dirs.max.bytes": 600_000, "log.dirs.full.policy": "delete-oldest",
        "uplink.retention.hold": "false", "log.segment.bytes": 32768}), name="box")
    from confluent_kafka import Producer
    try:
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0,
                      "batch.size": 16384})
        p.produce(TOPIC, b"first", partition=0)
        check(p.flush(10) == 0, "first record not delivered")
        wait_drained(box, TOPIC, 30)
        proxy.mode("refuse")
        for i in range(3000):
            try:
                p.produce(TOPIC, b"y" * 900, partition=0)
            except BufferError:
                p.poll(0.1)
            p.poll(0)
        check(p.flush(30) == 0, "writes were refused although hold=false deletes the oldest")
        proxy.mode("pass")
        deadline = time.time() + 60
        dropped = 0
        while time.time() < deadline and not dropped:
            _, parts = status(box)
            dropped = sum(int(x["dropped_records"]) for x in parts if x["topic"] == TOPIC)
            time.sleep(0.5)
        with open(box.log_path) as f:
            logged = f.read().count("were deleted locally before the central cluster had them")
        print("hold=false: dropped records=%d, ranges logged=%d" % (dropped, logged), flush=True)
        check(dropped > 0 and logged > 0, "dropped ranges not counted (%d) or logged (%d)",
              dropped, logged)
        wait_drained(box, TOPIC, 60)
    finally:
        proxy.close()


def test_transactions_required_against_depot():
    """uplink.exactly.once=transactions against a central Depot (no transactions: it answers
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED): a link error in the status and in depotctl,
    nothing forwarded, no offsets topic created; after a restart with auto the records go
    over by read-back, exactly once."""
    from confluent_kafka import Producer
    central, proxy = central_behind_proxy()
    box = Broker(settings=box_settings(proxy.port, **{"uplink.exactly.once": "transactions"}),
                 name="box")
    try:
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0})
        for i in range(300):
            p.produce(TOPIC, b"r%d" % i, partition=i % PARTS)
        check(p.flush(10) == 0, "local produce failed")
        deadline = time.time() + 30
        link = {}
        while time.time() < deadline:
            link, parts = status(box)
            # the link retries with backoff, so it moves between down and resync (keeping the
            # error): wait for a down moment rather than judging the first status with the error
            if (link.get("state") == "down" and
                    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in link.get("last_error", "")):
                break
            time.sleep(0.5)
        print("transactions required, central Depot: link %s, last error: %s"
              % (link.get("state"), link.get("last_error")), flush=True)
        check(link.get("state") == "down" and
              "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in link.get("last_error", ""),
              "a refused transactional id is not a link error: %s", link)
        _, parts = status(box)
        check(all(x["forwarded"] == "0" for x in parts if x["topic"] == TOPIC),
              "forwarded without transactions although they are required: %s", parts)
        ctl = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/depotctl"))
        deadline = time.time() + 30
        while True:  # the same down/resync cycle as above
            r = subprocess.run([ctl, "uplink", "status", "--data-dir", box.data_dir],
                               capture_output=True, text=True, timeout=20)
            if "Link: down" in r.stdout or time.time() > deadline:
                break
            time.sleep(0.3)
        check("Link: down" in r.stdout and "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in r.stdout,
              "depotctl uplink status: %s", r.stdout)
        from confluent_kafka.admin import AdminClient
        names = AdminClient({"bootstrap.servers": central.bootstrap}).list_topics(
            timeout=10).topics
        check("depot-uplink-offsets" not in names, "the offsets topic was created on a central "
              "that refuses transactions: %s", sorted(names))
        box.stop()
        box.settings["uplink.exactly.once"] = "auto"
        box.start()
        link, _ = wait_drained(box, TOPIC, 60)
        check(link.get("mode") == "read-back", "auto against Depot: mode %r", link.get("mode"))
        got = read_all(central.bootstrap, PREFIX + TOPIC, PARTS)
        vals = sorted(r[2] for v in got.values() for r in v)
        check(vals == sorted(b"r%d" % i for i in range(300)),
              "after auto: %d central records, want the 300 once", len(vals))
    finally:
        proxy.close()
        central.stop()


def test_missing_central_topic_then_fewer_partitions():
    """uplink.topic.create=false and no central topic: the box keeps working (retention still
    runs around the unresolved topic) and the status names the problem; once the topic is
    created with fewer partitions than the box has, local partition p goes to p mod n, each
    local partition in order, exactly once."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    central, proxy = central_behind_proxy()
    box = Broker(settings=box_settings(proxy.port, **{"uplink.topic.create": "false",
                                                       "log.retention.bytes": 100000}),
                 name="box")
    try:
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0,
                      "batch.size": 16384})
        for i in range(3000):
            p.produce(TOPIC, b"m%d" % i, key=b"k", partition=i % PARTS)
            p.poll(0)
        check(p.flush(30) == 0, "produce to the box failed")
        time.sleep(2.5)  # retention ticks run with the topic unresolved
        deadline = time.time() + 20  # the first resolve waits for a previous producer (2 s)
        _, parts = status(box)
        while time.time() < deadline and not (parts and all(
                "does not exist" in x.get("error", "") for x in parts)):
            time.sleep(0.5)
            _, parts = status(box)
        check(parts and all("does not exist" in x.get("error", "") for x in parts),
              "status does not name the missing central topic: %s", parts)
        check(all(x["local_start"] == "0" for x in parts), "unforwarded data deleted: %s", parts)
        p.produce(TOPIC, b"m3000", key=b"k", partition=0)
        check(p.flush(10) == 0, "the box stopped answering while the central topic was missing")
        a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % proxy.port, "log_level": 0})
        a.create_topics([NewTopic(PREFIX + TOPIC, 1, 1)])[PREFIX + TOPIC].result(20)
        wait_drained(box, TOPIC, 60)
        recs = read_all("127.0.0.1:%d" % proxy.port, PREFIX + TOPIC, 1)[0]
        seen, last, bad = set(), {}, 0
        for off, key, val, hdrs, ts in recs:
            lp, lo = [int(x) for x in dict(hdrs)["depot.src"].decode().split(":")[2:]]
            bad += (lp, lo) in seen or lo <= last.get(lp, -1)
            seen.add((lp, lo))
            last[lp] = lo
        print("fewer central partitions: central records=%d (box 3001), duplicated or "
              "out of order=%d" % (len(recs), bad), flush=True)
        check(len(recs) == 3001 and bad == 0, "central holds %d records, %d bad", len(recs), bad)
        with open(box.log_path) as f:
            check("murmur2 mod 1" in f.read(), "the mapping was not logged")
    finally:
        proxy.close()


def test_bandwidth_cap():
    """uplink.max.bytes.per.second holds within 10% while a backlog drains."""
    from confluent_kafka import Producer
    cap = 300_000
    central, proxy = central_behind_proxy()
    mport = free_port()
    box = Broker(settings=box_settings(proxy.port, **{
        "uplink.max.bytes.per.second": cap,
        "metrics.listeners": "http://127.0.0.1:%d" % mport}), name="box")
    try:
        proxy.mode("refuse")
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0})
        for i in range(3000):
            p.produce(TOPIC, b"%08d" % i + b"v" * 992, key=b"k%d" % (i % 7), partition=i % PARTS)
            p.poll(0)
        check(p.flush(30) == 0, "backlog not accepted")
        proxy.mode("pass")

        def fwd_bytes():  # the status file's own clock, not when we happened to read it
            link, parts = status(box)
            return (sum(int(x.get("forwarded_bytes", 0)) for x in parts),
                    int(link.get("updated_ms", 0)) / 1000.0)

        deadline = time.time() + 30
        while fwd_bytes()[0] == 0 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # past the start (resolve, the first burst)
        b0, t0 = fwd_bytes()
        time.sleep(6.0)
        b1, t1 = fwd_bytes()
        rate = (b1 - b0) / (t1 - t0)
        print("bandwidth cap: %.0f bytes/s forwarded with uplink.max.bytes.per.second=%d "
              "(%+.1f%%)" % (rate, cap, 100.0 * (rate - cap) / cap), flush=True)
        check(abs(rate - cap) <= 0.1 * cap, "the cap did not hold within 10%%: %.0f B/s", rate)
        # the same state over HTTP, on the metrics listener
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/uplink" % mport, timeout=10) as r:
            doc = json.loads(r.read().decode())
        check(doc["link"]["state"] in ("up", "down", "resync") and
              len([x for x in doc["partitions"] if x["topic"] == TOPIC]) == PARTS,
              "GET /uplink: %s", doc)
        # and on /metrics for Prometheus: link state, per-partition lag and forwarded bytes
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
            prom = r.read().decode()
        lag = [ln for ln in prom.splitlines()
               if ln.startswith('depot_uplink_lag_records{topic="%s"' % TOPIC)]
        fwd = [ln for ln in prom.splitlines()
               if ln.startswith('depot_uplink_forwarded_bytes_total{topic="%s"' % TOPIC)]
        states = [ln for ln in prom.splitlines() if ln.startswith("depot_uplink_link_state{")]
        check(len(lag) == PARTS and len(fwd) == PARTS and
              sum(float(x.split()[-1]) for x in fwd) > 0 and
              sum(float(x.split()[-1]) for x in states) == 1,
              "/metrics uplink families: lag=%s fwd=%s states=%s", lag, fwd, states)
    finally:
        proxy.close()


def test_replaced_producer_keeps_cause():
    """The delivery watchdog replaces the producer when the central side stops answering; the
    last error then names the connection error librdkafka reported as its cause, not only
    that nothing was acknowledged (`depotctl uplink status` shows last_error)."""
    from confluent_kafka import Producer
    central, proxy = central_behind_proxy()
    box = Broker(settings=box_settings(proxy.port), name="box")
    try:
        p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0})

        def send(start):
            for i in range(start, start + 30):
                p.produce(TOPIC, b"v%d" % i, key=b"k%d" % (i % 7), partition=i % PARTS)
                p.poll(0)
            check(p.flush(30) == 0, "the box did not accept the records")

        send(0)
        deadline = time.time() + 60  # running: the first 30 records are on the central side
        while sum(int(x.get("forwarded", 0)) for x in status(box)[1]) < 30:
            check(time.time() < deadline, "the first records were not forwarded: %s", status(box))
            time.sleep(0.2)
        proxy.mode("refuse")  # live connections reset, new ones closed at once
        send(30)
        pat = re.compile(r"no acknowledgement for \d+ ms: starting over [^\n]*; cause: \S[^\n]*")
        seen, found, deadline = set(), None, time.time() + 40
        while found is None and time.time() < deadline:
            seen.add(status(box)[0].get("last_error", ""))
            with open(box.log_path, errors="replace") as f:
                found = pat.search(f.read())
            time.sleep(0.2)
        print("replaced producer: logged %r; last_error values seen: %s"
              % (found and found.group(0), sorted(seen)), flush=True)
        check(found is not None, "the watchdog's restart was not logged with a cause")
        check(any(pat.search(e) for e in seen),
              "the status never showed the restart with its cause: %s", sorted(seen))
        proxy.mode("pass")
        link, parts = wait_drained(box, TOPIC, 90)
        check(sum(int(x["forwarded"]) for x in parts) >= 60, "not all forwarded after: %s", parts)
        box.stop()
    finally:
        proxy.close()


def kafka_behind_proxy(tmp, proxy):
    """Apache Kafka (kafka_dist) advertising proxy's address, so every connection of the uplink
    goes through the proxy; like the central Depot, it forgets idle producer ids after 6 s."""
    import kafka_dist as kd
    k = kd.start_kafka(tmp, settings={
        "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % proxy.port,
        "producer.id.expiration.ms": 6000,
        "producer.id.expiration.check.interval.ms": 1000})
    proxy.set_upstream(k.port)
    return k


def test_storm_kafka_central():
    import kafka_dist as kd
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_storm_kafka_central", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-uplink-kafka-")
    state = {}
    proxy = TcpProxy("127.0.0.1", 0)  # upstream set once Kafka has its port
    try:
        state["k"] = kafka_behind_proxy(tmp, proxy)

        def restart():
            restart_kafka_behind(state["k"], proxy)

        run_storm(proxy, restart, "kafka-central", 300 if LONG else 25, mode="transactions")
        state["k"].stop()
    finally:
        if "k" in state:
            try:
                state["k"].kill()
            except Exception:
                pass
        proxy.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "producer":
        producer_main(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        run_tests(globals())

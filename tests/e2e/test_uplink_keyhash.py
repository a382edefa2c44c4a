"""Store and forward to a central topic with fewer partitions than the box's (docs/uplink.md):
a keyed record goes to the central partition Kafka's default partitioner (murmur2) picks for
its key, a keyless one of local partition p to p mod n, and the broker log says so once.

The box (3 partitions) forwards to a central Depot whose topic has 2, through the TCP fault
proxy, while a producer with acks=all keeps sending keyed records (partitioned by the same
murmur2, so each key lives in one local partition) and some keyless ones, and the script resets,
stalls and black-holes the link and kills the box with SIGKILL. At the end: every acknowledged
record is on the central side exactly once, the central side holds exactly the box's log, every
keyed record sits in murmur2(key) mod 2 and every keyless one in p mod 2, per key the records
are in local order, and per local partition the keyless ones are. Counts are printed.

CI mode ~25 s of storm; DEPOT_LONG=1 for 3 minutes. DEPOT_SEED fixes the script.
"""

import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import LONG, Broker, check, run_tests  # noqa: E402
from test_uplink import (PREFIX, box_settings, central_behind_proxy, read_all,  # noqa: E402
                         status, wait_drained)

CENTRAL_TOPIC = PREFIX + "sensors"

TOPIC = "sensors"
LOCAL_PARTS = 3
CENTRAL_PARTS = 2
KEYS = 40


def murmur2(data):
    """Kafka's Utils.murmur2 (what the Java producer's default partitioner hashes keys with)."""
    m, h = 0x5bd1e995, (0x9747b28c ^ len(data)) & 0xffffffff
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    tail = data[4 * n4:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def key_partition(key, n):
    return (murmur2(key) & 0x7fffffff) % n


def producer_main(bootstrap, ack_path, stop_path, rate):
    """Every 10th record keyless to partition n % LOCAL_PARTS; the others keyed "key-<n % KEYS>"
    and partitioned by the client's murmur2 (Java-compatible), value "v<n>"."""
    from confluent_kafka import Producer
    acks = open(ack_path, "a")
    errors = {"n": 0}

    def on_delivery(err, msg):
        if err is None:
            acks.write("%s\n" % msg.value().decode())
            acks.flush()
        else:
            errors["n"] += 1

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "partitioner": "murmur2_random", "linger.ms": 5,
                  "message.timeout.ms": 600000, "log_level": 0, "reconnect.backoff.ms": 20,
                  "reconnect.backoff.max.ms": 200, "retry.backoff.ms": 20,
                  "socket.connection.setup.timeout.ms": 2000,
                  "topic.metadata.refresh.interval.ms": 1000})
    n, t0 = 0, time.time()
    while not os.path.exists(stop_path):
        if n > (time.time() - t0) * rate:
            p.poll(0.01)
            continue
        try:
            if n % 10 == 0:
                p.produce(TOPIC, value=b"v%d" % n, partition=n % LOCAL_PARTS,
                          on_delivery=on_delivery)
            else:
                p.produce(TOPIC, value=b"v%d" % n, key=b"key-%d" % (n % KEYS),
                          on_delivery=on_delivery)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        p.poll(0)
    left = p.flush(120)
    acks.close()
    print(json.dumps({"sent": n, "unflushed": left, "failed": errors["n"]}), flush=True)


def verify(box, central_bs, acked, sent, label, isolation="read_uncommitted"):
    """Central == box log (by depot.src), mapped and ordered as the mapping says; returns the
    central records as read (read_committed from a transactional central side)."""
    local = read_all(box.bootstrap, TOPIC, LOCAL_PARTS)
    central = read_all(central_bs, PREFIX + TOPIC, CENTRAL_PARTS, isolation=isolation)
    by_src, dup, wrong_part, bad_fields = {}, 0, 0, 0
    last_by_key, last_keyless, key_order, keyless_order = {}, {}, 0, 0
    forwarded = 0
    for q, recs in central.items():
        for off, key, val, hdrs, ts in recs:
            forwarded += 1
            src = dict(hdrs).get("depot.src", b"").decode().split(":")
            check(len(src) == 4 and src[1] == TOPIC, "central record without depot.src: %r", hdrs)
            lp, lo = int(src[2]), int(src[3])
            dup += (lp, lo) in by_src
            by_src[(lp, lo)] = (key, val, ts)
            want = key_partition(key, CENTRAL_PARTS) if key is not None else lp % CENTRAL_PARTS
            wrong_part += want != q
            if key is not None:
                key_order += lo <= last_by_key.get(key, -1)
                last_by_key[key] = lo
            else:
                keyless_order += lo <= last_keyless.get(lp, -1)
                last_keyless[lp] = lo
    local_n = missing = 0
    for lp, recs in local.items():
        for off, key, val, hdrs, ts in recs:
            local_n += 1
            c = by_src.get((lp, off))
            if c is None:
                missing += 1
            elif c != (key, val, ts):
                bad_fields += 1
    central_vals = {v[1] for v in by_src.values()}
    acked_missing = [v for v in acked if v.encode() not in central_vals]
    extra = len(by_src) - (local_n - missing)
    print("uplink %s: sent=%d acknowledged=%d local=%d forwarded=%d duplicated=%d missing=%d "
          "(acknowledged but not central: %d) extra=%d wrong-partition=%d per-key-order=%d "
          "keyless-order=%d field-mismatch=%d keys=%d" % (
              label, sent, len(acked), local_n, forwarded, dup, missing, len(acked_missing),
              extra, wrong_part, key_order, keyless_order, bad_fields, len(last_by_key)),
          flush=True)
    check(len(acked) > 1000, "too little was acknowledged: %d", len(acked))
    check(dup == 0, "%d records arrived twice", dup)
    check(missing == 0 and not acked_missing, "missing: %d of the log, acknowledged: %s",
          missing, acked_missing[:5])
    check(extra == 0, "%d central records the box does not have", extra)
    check(wrong_part == 0, "%d records not where murmur2(key) / p mod n puts them", wrong_part)
    check(key_order == 0 and keyless_order == 0, "order broken: per key %d, keyless %d",
          key_order, keyless_order)
    check(bad_fields == 0, "%d records with a changed key/value/timestamp", bad_fields)
    keys = len({n % KEYS for n in range(KEYS * 10) if n % 10})  # keyless every 10th
    check(len(last_by_key) == keys and all(central[q] for q in central),
          "keys not spread over both central partitions")
    return central


def check_murmur2():
    # Kafka's own vectors (UtilsTest.testMurmur2): the checker's hash is Kafka's
    check(murmur2(b"21") == -973932308 and murmur2(b"foobar") == -790332482 and
          murmur2(b"a-little-bit-longer-string") == -1486304829 and murmur2(b"abc") == 479470107,
          "the test's murmur2 is not Kafka's")


def keyhash_storm(proxy, label, seconds, mode):
    """The storm against the central cluster behind proxy (which advertises the proxy's
    address); mode: the status file's mode= the uplink must run in ("read-back" against a
    Depot, "transactions" against Kafka, read_committed then). At least one kill -9 of the box
    lands while the link is up and records flow, so mid-transaction in transactions mode.
    Returns the central records as verify read them, and the storm's counts."""
    from confluent_kafka.admin import AdminClient, NewTopic
    seed = int(os.environ.get("DEPOT_SEED", str(int(time.time()))))
    print("uplink %s: DEPOT_SEED=%d" % (label, seed), flush=True)
    rnd = random.Random(seed)
    central_bs = "127.0.0.1:%d" % proxy.port
    a = AdminClient({"bootstrap.servers": central_bs, "log_level": 0})
    a.create_topics([NewTopic(CENTRAL_TOPIC, CENTRAL_PARTS, 1)])[CENTRAL_TOPIC].result(20)
    box = Broker(settings=box_settings(proxy.port, **{"num.partitions": LOCAL_PARTS}),
                 name="box")
    prod = None
    try:
        ack_path = os.path.join(box.tmp, "acks")
        stop_path = os.path.join(box.tmp, "stop")
        prod = subprocess.Popen([sys.executable, os.path.abspath(__file__), "producer",
                                 box.bootstrap, ack_path, stop_path, "400"],
                                stdout=subprocess.PIPE)
        actions = {"stall": 0, "reset": 0, "blackhole": 0, "kill_box": 0}
        started = time.time()  # the box process's start (the status holds wall-clock ms)
        t_end = time.time() + seconds
        while time.time() < t_end:
            time.sleep(rnd.uniform(0.5, 2.0))
            act = rnd.choice(["stall", "reset", "reset", "blackhole", "kill_box", "kill_box",
                              "pass"])
            if act == "stall":
                proxy.mode("stall")
                time.sleep(rnd.uniform(0.5, 3))
            elif act == "reset":
                proxy.reset()
            elif act == "blackhole":
                proxy.mode("blackhole")
                time.sleep(rnd.uniform(1, 7))
            elif act == "kill_box":
                time.sleep(rnd.uniform(0, 0.3))
                box.kill()
                started = time.time()
                box.start()
            if act != "pass":
                actions[act] += 1
            proxy.mode("pass")
        # one kill -9 with the link up and (in transactions mode) this process committing,
        # records still flowing: mid-transaction. The status file must be this process's: a
        # killed one's last file says up too.
        deadline = time.time() + 60
        while True:
            link = status(box)[0]
            mark = "last_commit_ms" if mode == "transactions" else "updated_ms"
            if link.get("state") == "up" and int(link.get(mark, "0")) / 1000.0 > started:
                break
            check(time.time() < deadline, "the link did not come up after the storm: %s", link)
            time.sleep(0.2)
        time.sleep(rnd.uniform(0, 0.2))
        box.kill()
        box.start()
        actions["kill_box"] += 1
        open(stop_path, "w").close()
        out, _ = prod.communicate(timeout=180)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        check(summary["unflushed"] == 0, "the producer could not deliver everything: %s", summary)
        with open(ack_path) as f:
            acked = {ln.strip(): 1 for ln in f if ln.strip()}
        link, parts = wait_drained(box, TOPIC, 120)
        print("uplink %s: storm actions %s; link %s, mode %s, commits=%s, resyncs=%s, found by "
              "read-back=%d" % (label, actions, link.get("state"), link.get("mode"),
                                link.get("commits"), link.get("resyncs"),
                                sum(int(p["readback_found"]) for p in parts)), flush=True)
        check(link.get("mode") == mode, "uplink mode %r (%s), want %r", link.get("mode"),
              link.get("mode_reason"), mode)
        if mode == "transactions":
            check(int(link.get("commits", "0")) > 0, "no committed transaction: %s", link)
        check(all(p["hashed"] == "1" for p in parts),
              "status does not show the key-hash mapping: %s", parts)
        isolation = "read_committed" if mode == "transactions" else "read_uncommitted"
        central = verify(box, central_bs, acked, summary["sent"], label, isolation)
        with open(box.log_path) as f:
            log = f.read()
        check("murmur2 mod %d" % CENTRAL_PARTS in log, "the key-hash mapping was not logged")
        box.stop()
        return central, actions
    finally:
        if prod and prod.poll() is None:
            prod.kill()
            prod.wait()
        box.kill()


def test_keyhash_storm():
    check_murmur2()
    central, proxy = central_behind_proxy()
    try:
        keyhash_storm(proxy, "keyhash", 180 if LONG else 25, "read-back")
    finally:
        proxy.close()
        central.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "producer":
        producer_main(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        run_tests(globals())

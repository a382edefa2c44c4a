"""Log compaction (cleanup.policy=compact) with real clients. Run with /usr/bin/python3.

The broker runs its cleaner thread with small knobs (backoff 100 ms, small segments, a
max.compaction.lag.ms that rolls the active segment after 2 s idle, delete.retention.ms 3 s),
so a whole compaction cycle takes seconds."""

import glob
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, fetch_v4_batches, run_tests  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLEANER = {"log.cleaner.backoff.ms": 100, "log.cleaner.threads": 1}
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "16384",
           "min.cleanable.dirty.ratio": "0.01", "max.compaction.lag.ms": "2000",
           "delete.retention.ms": "3000"}


def create(bootstrap, name, config):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(30)


def val(k, r):
    return b"value-of-%05d-round-%03d-" % (k, r) + b"p" * 40


class Model:
    """What was acknowledged: offset -> (key, value) and key -> latest offset."""

    def __init__(self):
        self.at = {}
        self.latest = {}
        self.errors = []

    def cb(self, err, msg):
        if err is not None:
            self.errors.append(err)
            return
        self.at[msg.offset()] = (msg.key(), msg.value())
        k = msg.key()
        if k not in self.latest or self.latest[k] < msg.offset():
            self.latest[k] = msg.offset()

    def live(self):
        return {k: o for k, o in self.latest.items() if self.at[o][1] is not None}


def produce(p, topic, items, model):
    for k, v in items:
        while True:
            try:
                p.produce(topic, key=k, value=v, partition=0, on_delivery=model.cb)
                break
            except BufferError:
                p.poll(0.01)
    check(p.flush(60) == 0, "undelivered messages")
    check(not model.errors, "delivery errors: %s", model.errors[:3])


def read_all(bootstrap, topic, start=OFFSET_BEGINNING, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-%d" % random.randrange(1 << 30),
                  "enable.partition.eof": True, "enable.auto.commit": False,
                  "check.crcs": True})
    try:
        c.assign([TopicPartition(topic, 0, start)])
        out = []
        deadline = time.monotonic() + timeout
        while True:
            check(time.monotonic() < deadline, "read_all %s timed out", topic)
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError("consume error %s" % m.error())
            out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()


def all_batches(b, topic):
    """Every batch header of partition 0, by raw Fetch v4 (one segment per fetch)."""
    off, out = 0, []
    while True:
        err, hw, batches = fetch_v4_batches(b.port, topic, 0, off)
        check(err == 0, "fetch error %d", err)
        if not batches:
            return out
        out += batches
        off = batches[-1]["base_offset"] + batches[-1]["last_offset_delta"] + 1
        if off >= hw:
            return out


def dir_bytes(b, topic):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(b.data_dir, topic + "-0", "*"))
               if not f.endswith(".snapshot"))


def wait_compacted(b, topic, model, tombstones_gone=False, timeout=40):
    """Until a read from the start holds exactly each key's latest record (and no tombstone
    once tombstones_gone), at the originally assigned offsets."""
    live = model.live()
    want = live if tombstones_gone else model.latest
    deadline = time.monotonic() + timeout
    while True:
        recs = read_all(b.bootstrap, topic)
        offs = [o for o, _, _ in recs]
        check(offs == sorted(set(offs)), "offsets not strictly increasing")
        for o, k, v in recs:
            check(model.at.get(o) == (k, v), "offset %d holds %r/%r, produced %r", o, k, v,
                  model.at.get(o))
        got = {k: o for o, k, _ in recs}
        if len(recs) == len(want) and got == want:
            return recs
        if not tombstones_gone and len(recs) == len(live) and got == live:
            return recs  # the tombstones' horizon passed already
        check(time.monotonic() < deadline, "not compacted after %ds: %d records, want %d",
              timeout, len(recs), len(want))
        time.sleep(0.5)


def test_latest_values_offsets_tombstones_and_size():
    """1,000 keys x 50 updates + 100 tombstones: a consumer from the start sees exactly the
    latest value of each live key at its original offset, tombstones go after
    delete.retention.ms, the partition shrinks ~50x against the same data uncompacted, a
    consumer parked at a removed offset continues at the next kept one, and a consumer reading
    while the cleaner works never sees an offset twice or a record that was not produced."""
    with Broker(CLEANER) as b:
        create(b.bootstrap, "sensors", COMPACT)
        create(b.bootstrap, "plain", {"segment.bytes": "16384"})
        m, plain = Model(), Model()
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all"})
        items = [(b"sensor-%05d" % k, val(k, r)) for r in range(50) for k in range(1000)]
        items += [(b"sensor-%05d" % k, None) for k in range(0, 1000, 10)]
        stop, seen_scans, bad = threading.Event(), [0], []

        def reader():  # reads during the cleans: each scan must be ordered and true
            while not stop.is_set():
                try:
                    recs = read_all(b.bootstrap, "sensors")
                except AssertionError as e:
                    bad.append(str(e))
                    return
                offs = [o for o, _, _ in recs]
                if offs != sorted(set(offs)):
                    bad.append("duplicate or unordered offset in a scan")
                seen_scans[0] += 1
                seen_scans.append(recs)
        t = threading.Thread(target=reader)
        t.start()
        t0 = time.monotonic()
        produce(p, "sensors", items, m)
        produce(p, "plain", items, plain)
        recs = wait_compacted(b, "sensors", m)
        stop.set()
        t.join()
        check(not bad, "reader: %s", bad[:2])
        for recs_scan in seen_scans[1:]:
            for o, k, v in recs_scan:
                check(m.at.get(o) == (k, v), "a scan during cleaning read a wrong record at %d", o)
        print("    %d scans during cleaning, compacted after %.1fs; %d records, %d live keys"
              % (seen_scans[0], time.monotonic() - t0, len(recs), len(m.live())))
        tombs = sum(1 for _, _, v in recs if v is None)
        check(tombs in (0, 100), "%d tombstones", tombs)  # kept until their horizon, or gone
        recs = wait_compacted(b, "sensors", m, tombstones_gone=True, timeout=30)
        # Parked at an offset compacted away: the next kept offset comes next (the log is
        # stable now: every key once, no tombstone left).
        kept = sorted(o for o, _, _ in recs)
        for parked in (0, 12345, kept[len(kept) // 2] - 1, kept[-1] - 1):
            nxt = min(o for o in kept if o >= parked)
            got = read_all(b.bootstrap, "sensors", start=parked)
            check(got and got[0][0] == nxt, "parked at %d: continued at %s, want %d", parked,
                  got[0][0] if got else None, nxt)
        before, after = dir_bytes(b, "plain"), dir_bytes(b, "sensors")
        print("    %d keys x 50 updates: %d bytes uncompacted, %d compacted (%.0fx)"
              % (1000, before, after, before / after))
        check(after * 20 < before, "only %.1fx smaller", before / after)
        b.restart(hard=True)  # the cleaned log recovers as it is
        wait_compacted(b, "sensors", m, tombstones_gone=True, timeout=10)


def _pyclients_python():
    """build/pyclients' Python (kafka-python 3.x with its snappy, lz4 and zstd libraries,
    pinned by scripts/fetch-pyclients), fetching it once if missing; None without a registry."""
    fetch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts/fetch-pyclients")
    r = subprocess.run([fetch, "--print-python"], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run([fetch], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run([fetch, "--print-python"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def kp_decode_main(bootstrap, topic, n):
    """Run by the venv's Python: every record of partition 0 from the start, as JSON lines."""
    import json
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=5000, check_crcs=True)
    c.assign([KTP(topic, 0)])
    c.seek_to_beginning()
    got = 0
    for msg in c:
        print(json.dumps([msg.key.decode("latin-1") if msg.key is not None else None, msg.offset,
                          msg.value.decode("latin-1") if msg.value is not None else None,
                          msg.timestamp]))
        got += 1
        if got >= int(n):
            break
    c.close()


def decode_kafka_python(bootstrap, topic, n, codec, with_ts=False):
    """{key: (offset, value)} as kafka-python 3.x reads the topic (run in build/pyclients),
    (offset, value, timestamp) with with_ts, or None (skipped, with a message) when that venv
    cannot be built here."""
    import json
    py = _pyclients_python()
    if not py:
        print("    kafka-python 3.x venv not available (scripts/fetch-pyclients could not reach "
              "the Python registry; see build/fetch-pyclients.log): skipped (kafka-python %s "
              "check)" % codec)
        return None
    out = subprocess.run([py, os.path.abspath(__file__), "kp-decode", bootstrap, topic, str(n)],
                         capture_output=True, timeout=120)
    check(out.returncode == 0, "kafka-python %s decode failed: %s", codec, out.stderr[-600:])
    got = {}
    for line in out.stdout.decode().splitlines():
        k, o, v, ts = json.loads(line)
        got[k.encode("latin-1") if k is not None else None] = (
            o, v.encode("latin-1") if v is not None else None) + ((ts,) if with_ts else ())
    return got


def decode_kcat(bootstrap, topic, with_ts=False):
    """{key: (offset, value)} as kcat reads the topic, (offset, value, timestamp) with
    with_ts; None (skipped, with a message) without kcat. A null value reads as b""."""
    if not shutil.which("kcat"):
        print("    kcat not installed: skipped (kcat check)")
        return None
    out = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                          "-q", "-f", "%o %T %k %s\\n"], capture_output=True, timeout=60)
    check(out.returncode == 0, "kcat failed: %s", out.stderr[-300:])
    got = {}
    for line in out.stdout.splitlines():
        if line:
            o, ts, k, v = line.split(b" ", 3)
            got[k] = (int(o), v) + ((int(ts),) if with_ts else ())
    return got


def test_every_codec_compacted_and_decodes():
    """gzip, snappy, lz4 and zstd batches are rewritten with their codec and still decode in
    confluent-kafka (librdkafka), kafka-python and kcat, with the original offsets."""
    with Broker(CLEANER) as b:
        models = {}
        for codec in ("gzip", "snappy", "lz4", "zstd"):  # all produced first: cleans overlap
            topic = "codec-" + codec
            create(b.bootstrap, topic, COMPACT)
            models[codec] = Model()
            p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5,
                          "compression.type": codec})
            produce(p, topic, [(b"k%04d" % k, val(k, r)) for r in range(10) for k in range(300)],
                    models[codec])
        for codec, m in models.items():
            topic = "codec-" + codec
            wait_compacted(b, topic, m)
            batches = all_batches(b, topic)
            check(all(x["codec"] == {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
                      for x in batches if x["records"]), "%s: a batch changed codec", codec)
            want = {k: (o, m.at[o][1]) for k, o in m.latest.items()}
            kp = decode_kafka_python(b.bootstrap, topic, len(want), codec)
            check(kp is None or kp == want, "%s: kafka-python read %d keys differently", codec,
                  len(kp or {}))
            kc = decode_kcat(b.bootstrap, topic)
            check(kc is None or kc == want, "%s: kcat read %d keys differently", codec,
                  len(kc or {}))
            print("    %s: %d keys compacted, decoded by confluent-kafka%s%s" % (
                codec, len(want), ", kafka-python" if kp else "", ", kcat" if kc else ""))


def test_idempotent_producer_across_cleans():
    """An idempotent producer keeps producing while its batches are compacted: no
    OUT_OF_ORDER_SEQUENCE_NUMBER. When another producer overwrote every key, the idempotent
    producer's last batch stays as an empty batch (Kafka's rule), which confluent-kafka,
    kafka-python and kcat all step over."""
    with Broker(CLEANER) as b:
        create(b.bootstrap, "idem", COMPACT)
        m = Model()
        p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                      "linger.ms": 2})
        for r in range(30):
            produce(p, "idem", [(b"k%03d" % k, val(k, r)) for k in range(200)], m)
            time.sleep(0.05)
        other = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 2})
        produce(other, "idem", [(b"k%03d" % k, val(k, 50)) for k in range(200)], m)
        wait_compacted(b, "idem", m)
        empty = [x for x in all_batches(b, "idem") if x["records"] == 0]
        check(len(empty) == 1 and empty[0]["producer_id"] >= 0,
              "want the idempotent producer's last batch kept empty: %s", empty)
        want = {k: (o, m.at[o][1]) for k, o in m.latest.items()}
        kp = decode_kafka_python(b.bootstrap, "idem", len(want), "gzip")
        check(kp is None or kp == want, "kafka-python read the compacted log differently")
        kc = decode_kcat(b.bootstrap, "idem")
        check(kc is None or kc == want, "kcat read the compacted log differently")
        produce(p, "idem", [(b"k%03d" % k, val(k, 99)) for k in range(200)], m)
        check(not m.errors, "errors: %s", m.errors[:3])
        wait_compacted(b, "idem", m)


def produce_ts(p, topic, items, model):
    """items: (key, value or None, timestamp ms); model.ts keeps each offset's timestamp."""
    for k, v, ts in items:
        while True:
            try:
                p.produce(topic, key=k, value=v, partition=0, timestamp=ts, on_delivery=model.cb)
                break
            except BufferError:
                p.poll(0.01)
    check(p.flush(60) == 0, "undelivered messages")
    check(not model.errors, "delivery errors: %s", model.errors[:3])


def read_ts(bootstrap, topic):
    """offset -> timestamp ms as confluent-kafka reads partition 0 from the start."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ts-%d" % random.randrange(1 << 30),
                  "enable.partition.eof": True, "enable.auto.commit": False, "check.crcs": True})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError("consume error %s" % msg.error())
            out[msg.offset()] = msg.timestamp()[1]
        raise AssertionError("read_ts %s timed out" % topic)
    finally:
        c.close()


def test_tombstone_horizon_survives_restart():
    """KIP-534: the first clean that keeps a tombstone stamps its batch with the delete horizon
    (attribute bit 6, the horizon in baseTimestamp, record timestamp deltas rebased). The
    horizon is on disk, so after a restart the tombstones still go at the original horizon,
    not one delete.retention.ms after the restart. The stamped batches decode in
    confluent-kafka, kafka-python 3.x and kcat with every record's original timestamp."""
    ret = 20000
    with Broker(CLEANER) as b:
        create(b.bootstrap, "hz", dict(COMPACT, **{"delete.retention.ms": str(ret)}))
        m = Model()
        stamps = {}
        orig_cb = m.cb

        def cb(err, msg):
            orig_cb(err, msg)
            if err is None:
                stamps[msg.offset()] = msg.timestamp()[1]
        m.cb = cb
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all"})
        t0 = int(time.time() * 1000) - 3600000  # an hour old: far from any horizon
        items = [(b"k%03d" % k, val(k, r), t0 + r * 1000 + k) for r in range(5)
                 for k in range(200)]
        items += [(b"k%03d" % k, None, t0 + 9000 + k) for k in range(0, 200, 4)]
        produce_ts(p, "hz", items, m)
        deadline = time.monotonic() + 40
        while True:
            stamped = [x for x in all_batches(b, "hz") if x["attributes"] & 0x40]
            if stamped:
                break
            check(time.monotonic() < deadline, "no batch stamped with a delete horizon")
            time.sleep(0.2)
        stamped_at = int(time.time() * 1000)
        horizon = max(x["base_timestamp"] for x in stamped)
        check(stamped_at - 2000 <= horizon - ret <= stamped_at,
              "horizon %d is not stamp time + delete.retention.ms (stamped ~%d)", horizon,
              stamped_at)
        recs = wait_compacted(b, "hz", m)
        tombs = [o for o, _, v in recs if v is None]
        check(len(tombs) == 50, "%d tombstones before the horizon, want 50", len(tombs))
        # Every record keeps its timestamp in every client, stamped batches included.
        ts = read_ts(b.bootstrap, "hz")
        check(all(ts[o] == stamps[o] for o, _, _ in recs), "confluent-kafka: timestamps moved")
        kp = decode_kafka_python(b.bootstrap, "hz", len(recs), "none", with_ts=True)
        check(kp is None or all(kp[k][2] == stamps[kp[k][0]] for k in kp) and len(kp) == 200,
              "kafka-python: timestamps moved or records missing")
        kc = decode_kcat(b.bootstrap, "hz", with_ts=True)
        check(kc is None or all(kc[k][2] == stamps[kc[k][0]] for k in kc) and len(kc) == 200,
              "kcat: timestamps moved or records missing")
        # Restart half-way to the horizon; a restarted clock would keep them ret ms longer.
        while int(time.time() * 1000) < horizon - ret // 2:
            time.sleep(0.1)
        b.restart()
        restarted = int(time.time() * 1000)
        last_seen = gone = None
        while gone is None:
            before = int(time.time() * 1000)
            recs = read_all(b.bootstrap, "hz")
            after = int(time.time() * 1000)
            if any(v is None for _, _, v in recs):
                last_seen = before
            else:
                gone = after
            check(after < horizon + 5000, "tombstones still there 5 s after the original "
                  "horizon (restarted %d ms before it)", horizon - restarted)
            time.sleep(0.2)
        print("    horizon = first clean + %.0fs; restart %.1fs before it; tombstones read until "
              "%.1fs before it, gone %.1fs after it (a clock restarted with the broker: %.1fs "
              "after)" % (ret / 1000, (horizon - restarted) / 1000, (horizon - last_seen) / 1000,
                          (gone - horizon) / 1000, (restarted + ret - horizon) / 1000))
        check(last_seen is not None and last_seen >= horizon - 5000,
              "tombstones went before their horizon (last read %s)", last_seen)
        wait_compacted(b, "hz", m, tombstones_gone=True, timeout=5)


def test_keyless_record_refused_with_record_errors():
    """Produce v8+ to a compacted topic: a record without a key fails the batch with
    INVALID_RECORD and nothing of it is written."""
    with Broker(CLEANER) as b:
        create(b.bootstrap, "keys", COMPACT)
        errs = []
        # Both records must travel in one batch: metadata first (a record queued before
        # librdkafka knows the partition's leader can leave alone) and a long linger that
        # keeps the first queued until flush() sends them together.
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5000, "retries": 0})
        p.list_topics("keys", timeout=10)
        p.produce("keys", key=b"a", value=b"1", partition=0,
                  on_delivery=lambda e, _m: errs.append(("keyed", e)))
        p.produce("keys", value=b"no key", partition=0,
                  on_delivery=lambda e, _m: errs.append(("keyless", e)))
        p.flush(30)
        codes = dict((who, e.code() if e is not None else None) for who, e in errs)
        check(codes == {"keyed": KafkaError.INVALID_RECORD, "keyless": KafkaError.INVALID_RECORD},
              "the batch with a keyless record: %s", errs)
        check(read_all(b.bootstrap, "keys") == [], "part of the refused batch was written")
        check("without a key refused" in open(b.log_path).read(), "no log line")


def tear(path, rnd):
    """Leaves a file the way a power cut may leave one that was never fsynced: cut short at a
    random byte, with a few bits flipped, or its tail zero-filled (the size reached the disk,
    the data did not). Returns what was done."""
    size = os.path.getsize(path)
    mode = rnd.randrange(3)
    with open(path, "r+b") as f:
        if mode == 0:
            f.truncate(rnd.randint(0, size))
            return "cut"
        if mode == 1 and size:
            for _ in range(3):
                at = rnd.randrange(size)
                f.seek(at)
                b = f.read(1)[0]
                f.seek(at)
                f.write(bytes([b ^ (1 << rnd.randrange(8))]))
            return "flipped"
        at = rnd.randint(0, size)
        f.seek(at)
        f.write(b"\0" * (size - at))
        return "zeroed"


def test_kill9_during_cleans_loses_nothing():
    """kill -9 at random points while the cleaner rewrites (slowed by the I/O cap): every
    key's latest acknowledged value survives and every batch decodes. When the kill lands
    mid-pass (cleaned segments written beside the log, no swap journal yet: nothing of them
    was promised durable), they are also torn as a power cut may leave them; recovery must
    discard them. At the end confluent-kafka (check.crcs), kafka-python 3.x and kcat read the
    whole partition and agree with the model."""
    with Broker(dict(CLEANER, **{"log.cleaner.io.max.bytes.per.second": 400000})) as b:
        create(b.bootstrap, "crash", COMPACT)
        m = Model()
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all"})
        rnd = random.Random(int(os.environ.get("DEPOT_SEED", "7")))
        torn = []
        for round_ in range(4):
            produce(p, "crash", [(b"k%04d" % k, val(k, round_ * 10 + r))
                                 for r in range(10) for k in range(500)], m)
            part = os.path.join(b.data_dir, "crash-0")
            if round_ % 2:  # a random moment
                time.sleep(rnd.uniform(0.3, 1.5))
            else:  # a moment in a pass: its first cleaned file is being written
                deadline = time.monotonic() + 5
                while not glob.glob(os.path.join(part, "*.cleaned")) and \
                        time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(rnd.uniform(0, 0.2))
            b.kill()
            cleaned = glob.glob(os.path.join(part, "*.cleaned"))
            journal = os.path.exists(os.path.join(part, "cleaner-swap"))
            if not journal:
                torn += [tear(f, rnd) for f in cleaned]
            b.start()
            print("    kill -9 #%d: %d cleaned files beside the log%s" % (
                round_ + 1, len(cleaned), ", swap journal present" if journal else
                ", torn: %s" % ",".join(torn[-len(cleaned):]) if cleaned else ""))
        wait_compacted(b, "crash", m, timeout=40)
        want = {k: (o, m.at[o][1]) for k, o in m.latest.items()}
        kp = decode_kafka_python(b.bootstrap, "crash", len(want), "none")
        check(kp is None or kp == want, "kafka-python read the recovered log differently")
        kc = decode_kcat(b.bootstrap, "crash")
        check(kc is None or kc == want, "kcat read the recovered log differently")
        print("    %d cleaned files torn before recovery; %d keys read back by confluent-kafka%s%s"
              % (len(torn), len(want), ", kafka-python" if kp else "", ", kcat" if kc else ""))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "kp-decode":
        kp_decode_main(*sys.argv[2:5])
    else:
        run_tests(globals())

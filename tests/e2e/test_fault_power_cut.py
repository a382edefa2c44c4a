"""Power cut: what was not fsynced is thrown away, torn or bit-flipped; acks=all data survives.

An idempotent acks=all producer (its own process, running across every cut) writes numbered
messages to 3 partitions. Each cycle the broker is SIGKILLed and the files are damaged the way
a power cut may leave them: in every segment that is not known durable, the bytes after the
durable point are thrown away, at random one of three ways: cut exactly at the durable point,
cut at a random position after it (a torn tail, possibly mid-batch), or torn and with random
bits flipped between the durable point and the cut. The durable point of a partition
is the end of the batch holding its highest acknowledged offset (acks=all answers only after
fsync); segments wholly below the recovery-point checkpoint are durable too and left alone,
and so are the bytes below the tail mark the checkpoint carries for the recovery point's
segment (Depot fdatasyncs them before it writes the mark; docs/storage.md, "Recovery").
Then the broker restarts on the same dir. 5 cycles (50 with DEPOT_LONG=1). A second,
acks=1 producer adds bulk that is answered before any fsync, so every cut has unsynced bytes
to throw away; its values are not checked beyond being served intact.

At the end every partition is read from the beginning with CRC checks on: every acknowledged
message is there exactly once at its acknowledged offset, in order, no value appears twice,
and no corrupt batch is ever served (the consumer would fail on a CRC mismatch).
"""

import glob
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_harness import Depot, consume_all, create_topic, long_mode, run  # noqa: E402

TOPIC = "power"
PARTS = 3


def producer_main(bootstrap, ack_path, stop_path):
    from confluent_kafka import Producer
    acks = open(ack_path, "a")
    failed = {"n": 0}

    def on_delivery(err, msg):
        if err is None:
            acks.write("%s %d %d\n" % (msg.value().decode(), msg.partition(), msg.offset()))
            acks.flush()
        else:
            failed["n"] += 1

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 600000, "log_level": 1,
                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                  "retry.backoff.ms": 20})
    n = 0
    while not os.path.exists(stop_path):
        try:
            p.produce(TOPIC, value=b"w%d" % n, partition=n % PARTS, on_delivery=on_delivery)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        p.poll(0)
        if n % 20 == 0:
            time.sleep(0.001)  # keep the log small enough to walk every cycle
    left = p.flush(120)
    acks.close()
    print(json.dumps({"sent": n, "unflushed": left, "failed": failed["n"]}), flush=True)


def noise_main(bootstrap, stop_path):
    """acks=1, not idempotent: bulk that is answered before any fsync, so every kill leaves
    an unsynced tail worth tearing. Its values ("n...") are not checked, only served."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "enable.idempotence": False,
                  "linger.ms": 5, "message.timeout.ms": 600000, "log_level": 0,
                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200})
    n = 0
    pad = b"." * 400
    while not os.path.exists(stop_path):
        try:
            p.produce(TOPIC, value=b"n%d" % n + pad, partition=n % PARTS)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        p.poll(0)
        if n % 10 == 0:
            time.sleep(0.001)
    p.flush(60)


def read_acks(path):
    acked = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                acked[parts[0]] = (int(parts[1]), int(parts[2]))
    return acked


def recovery_points(data_dir):
    """(topic, partition) -> (recovery point, tail mark position in its segment or None)."""
    rp = {}
    try:
        with open(os.path.join(data_dir, "recovery-point-offset-checkpoint")) as f:
            lines = f.read().split("\n")[2:]
        for line in lines:
            t = line.split()
            if len(t) == 3:
                rp[(t[0], int(t[1]))] = (int(t[2]), None)
            elif len(t) == 11:  # offset, then the tail mark: its byte position first
                rp[(t[0], int(t[1]))] = (int(t[2]), int(t[3]))
    except OSError:
        pass
    return rp


def batch_end_after(path, offset):
    """Byte position just after the batch holding `offset` in the segment, or None."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        base, blen = struct.unpack(">qi", data[pos:pos + 12])
        if blen < 49 or pos + 12 + blen > len(data):
            return None
        last = base + struct.unpack(">i", data[pos + 23:pos + 27])[0]
        pos += 12 + blen
        if base <= offset <= last:
            return pos
    return None


def damage(part_dir, durable_end_off, rp_mark, rnd, stats):
    """Cuts/flips every segment byte that is not known durable."""
    rp, mark = rp_mark
    segs = sorted(glob.glob(os.path.join(part_dir, "*.log")))
    bases = [int(os.path.basename(s)[:20]) for s in segs]
    for i, seg in enumerate(segs):
        nxt = bases[i + 1] if i + 1 < len(bases) else None
        if nxt is not None and nxt <= rp:
            continue  # closed and fsynced before the checkpoint moved past it
        size = os.path.getsize(seg)
        lo = 0
        if durable_end_off > bases[i]:
            if nxt is not None and durable_end_off >= nxt:
                continue  # wholly below the last acknowledged offset: durable
            lo = batch_end_after(seg, durable_end_off - 1)
            assert lo is not None, "acked offset %d not found in %s" % (durable_end_off - 1, seg)
        if mark is not None and bases[i] == rp:
            lo = max(lo, mark)  # fdatasynced before the checkpoint named it
        if lo >= size:
            continue
        mode = rnd.randrange(3)  # 0: exactly the durable length, 1: torn, 2: torn + flips
        cut = lo if mode == 0 else rnd.randint(lo, size)
        with open(seg, "r+b") as f:
            if mode == 2 and cut > lo:
                for _ in range(rnd.randint(1, 3)):
                    at = rnd.randrange(lo, cut)
                    f.seek(at)
                    b = f.read(1)[0]
                    f.seek(at)
                    f.write(bytes([b ^ (1 << rnd.randrange(8))]))
                    stats["flips"] += 1
            f.truncate(cut)
        stats["cut_bytes"] += size - cut
        stats["segments_damaged"] += 1


def test_power_cut():
    cycles = 50 if long_mode() else 5
    seed = int(os.environ.get("DEPOT_SEED", str(int(time.time()))))
    rnd = random.Random(seed)
    d = Depot(settings={"log.segment.bytes": 32768})
    d.start()
    ack_path = os.path.join(d.tmp, "acks")
    stop_path = os.path.join(d.tmp, "stop")
    prod = noise = None
    stats = {"flips": 0, "cut_bytes": 0, "segments_damaged": 0}
    try:
        create_topic(d.bootstrap, TOPIC, PARTS)
        prod = subprocess.Popen([sys.executable, os.path.abspath(__file__), "producer",
                                 d.bootstrap, ack_path, stop_path], stdout=subprocess.PIPE)
        noise = subprocess.Popen([sys.executable, os.path.abspath(__file__), "noise",
                                  d.bootstrap, stop_path])
        for c in range(cycles):
            time.sleep(rnd.uniform(0.3, 1.0))
            d.kill()
            time.sleep(0.5)  # answers already in the producer's socket become acks now
            acked = read_acks(ack_path) if os.path.exists(ack_path) else {}
            ends = {p: 0 for p in range(PARTS)}
            for part, off in acked.values():
                ends[part] = max(ends[part], off + 1)
            rps = recovery_points(d.data_dir)
            for p in range(PARTS):
                damage(os.path.join(d.data_dir, "%s-%d" % (TOPIC, p)), ends[p],
                       rps.get((TOPIC, p), (0, None)), rnd, stats)
            d.start()
        time.sleep(1.0)
        open(stop_path, "w").close()
        out, _ = prod.communicate(timeout=180)
        noise.wait(timeout=120)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        acked = read_acks(ack_path)
        log = consume_all(d.bootstrap, TOPIC, PARTS)
        counts, where, order_bad = {}, {}, 0
        for part, recs in log.items():
            last = -1
            for off, val in recs:
                if val.startswith(b"n"):
                    continue  # acks=1 bulk: may be lost or doubled; it only has to be valid
                v = val.decode()
                counts[v] = counts.get(v, 0) + 1
                where[v] = (part, off)
                n = int(v[1:])
                order_bad += n <= last
                last = n
        lost = [v for v in acked if v not in counts]
        dups = sum(1 for v in counts.values() if v > 1)
        moved = [v for v in acked if v in where and where[v] != acked[v]]
        print("power cut: cycles=%d seed=%d acknowledged=%d lost=%d duplicated=%d "
              "offset-mismatch=%d out-of-order=%d segments damaged=%d bytes cut=%d "
              "bits flipped=%d sent=%d failed=%d unflushed=%d"
              % (cycles, seed, len(acked), len(lost), dups, len(moved), order_bad,
                 stats["segments_damaged"], stats["cut_bytes"], stats["flips"],
                 summary["sent"], summary["failed"], summary["unflushed"]), flush=True)
        assert len(acked) > 0
        assert not lost, "lost acknowledged messages: %s" % lost[:10]
        assert dups == 0 and not moved and order_bad == 0
        assert summary["failed"] == 0 and summary["unflushed"] == 0
        assert d.stop() == 0
    except Exception:
        print("seed=%d" % seed)
        print(d.log_tail(60))
        raise
    finally:
        for proc in (prod, noise):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        d.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "producer":
        producer_main(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "noise":
        noise_main(*sys.argv[2:4])
    else:
        run([test_power_cut])

"""Crash loop: nothing acknowledged is ever lost or duplicated across kill -9.

A confluent-kafka producer (acks=all, enable.idempotence=true), in its own process, sends
numbered messages to 3 partitions while the broker is SIGKILLed at random moments and
restarted on the same data dir and port: 50 cycles (1,000 with DEPOT_LONG=1). Some kills land
during startup (recovery interrupted). The producer records every message whose delivery
report said success, with its offset. At the end every partition is read from the beginning
with assign(): every acknowledged message must be there exactly once, at the offset its
delivery report gave, in per-partition send order, and no message may appear twice at all.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_harness import Depot, consume_all, create_topic, long_mode, run  # noqa: E402

TOPIC = "crash"
PARTS = 3


def producer_main(bootstrap, ack_path, stop_path):
    """Sends "m<n>" to partition n % PARTS until stop_path exists, then flushes."""
    from confluent_kafka import Producer
    acks = open(ack_path, "a")
    errors = {"n": 0}

    def on_delivery(err, msg):
        if err is None:
            acks.write("%s %d %d\n" % (msg.value().decode(), msg.partition(), msg.offset()))
            acks.flush()
        else:
            errors["n"] += 1

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 600000, "log_level": 1,
                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                  "retry.backoff.ms": 20, "socket.connection.setup.timeout.ms": 2000,
                  "topic.metadata.refresh.interval.ms": 1000})
    n = 0
    while not os.path.exists(stop_path):
        try:
            p.produce(TOPIC, value=b"m%d" % n, partition=n % PARTS, on_delivery=on_delivery)
            n += 1
        except BufferError:
            p.poll(0.05)
            continue
        if n % 50 == 0:
            p.poll(0.005)
        else:
            p.poll(0)
    left = p.flush(120)
    acks.close()
    print(json.dumps({"sent": n, "unflushed": left, "failed": errors["n"]}), flush=True)


def test_crash_loop():
    cycles = 1000 if long_mode() else int(os.environ.get("DEPOT_CRASH_CYCLES", "50"))
    rnd = random.Random(int(os.environ.get("DEPOT_SEED", str(int(time.time())))))
    d = Depot(settings={"log.segment.bytes": 65536,  # rolls: snapshots + replay get exercised
                        "log.level": os.environ.get("DEPOT_LOG_LEVEL", "info")})
    d.start()
    ack_path = os.path.join(d.tmp, "acks")
    stop_path = os.path.join(d.tmp, "stop")
    prod = None
    try:
        create_topic(d.bootstrap, TOPIC, PARTS)
        prod = subprocess.Popen([sys.executable, os.path.abspath(__file__), "producer",
                                 d.bootstrap, ack_path, stop_path], stdout=subprocess.PIPE)
        t0 = time.time()
        for i in range(cycles):
            if rnd.random() < 0.1:
                time.sleep(rnd.uniform(0, 0.02))  # a kill during startup/recovery
            else:
                time.sleep(rnd.uniform(0.05, 0.5))
            d.kill()
            d.start(wait=False)
            try:
                d.wait_up()
            except RuntimeError:
                # A lost race for the port right after the kill: one more try.
                time.sleep(0.2)
                d.start()
        time.sleep(1.0)
        open(stop_path, "w").close()
        out, _ = prod.communicate(timeout=180)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        elapsed = time.time() - t0

        acked = {}
        with open(ack_path) as f:
            for line in f:
                v, part, off = line.split()
                acked[v] = (int(part), int(off))
        log = consume_all(d.bootstrap, TOPIC, PARTS)
        where = {}
        dup_any = 0
        order_bad = 0
        for part, recs in log.items():
            last = -1
            for off, val in recs:
                v = val.decode()
                if v in where:
                    dup_any += 1
                where[v] = (part, off)
                n = int(v[1:])
                if n <= last:
                    order_bad += 1
                last = n
        lost = [v for v in acked if v not in where]
        moved = [v for v in acked if v in where and where[v] != acked[v]]
        dups = 0
        seen = {}
        for part, recs in log.items():
            for off, val in recs:
                seen[val] = seen.get(val, 0) + 1
        dups = sum(1 for v in acked if seen.get(v.encode(), 0) > 1)
        with open(d.log_path, "rb") as f:
            dup_answers = f.read().count(b": duplicate (answered")
        print("crash loop: retried batches answered as duplicates=%d" % dup_answers)
        print("crash loop: cycles=%d acknowledged=%d lost=%d duplicated=%d (any value twice: %d)"
              " offset-mismatch=%d out-of-order=%d sent=%d in-log=%d unflushed=%d "
              "failed=%d elapsed=%.1fs" % (cycles, len(acked), len(lost), dups, dup_any,
                                          len(moved), order_bad, summary["sent"],
                                          len(where), summary["unflushed"],
                                          summary["failed"], elapsed), flush=True)
        assert len(acked) > cycles, "producer made too little progress"
        assert not lost, "lost acknowledged messages: %s" % lost[:10]
        assert dups == 0 and dup_any == 0, "duplicates in the log"
        assert not moved, "acknowledged offsets differ from the log: %s" % moved[:5]
        assert order_bad == 0, "per-partition order broken"
        d.stop()
    except Exception:
        print(d.log_tail(60))
        raise
    finally:
        if prod and prod.poll() is None:
            prod.send_signal(signal.SIGKILL)
            prod.wait()
        d.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "producer":
        producer_main(*sys.argv[2:5])
    else:
        run([test_crash_loop])

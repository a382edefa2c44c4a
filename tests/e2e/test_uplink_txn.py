"""The uplink's transactional mode against Apache Kafka 4.x (docs/uplink.md "Transactions"),
the cases the storm in test_uplink.py does not reach:

- read-back to transactions: a box forwards with uplink.exactly.once=readback (mode read-back,
  the reason says so), is killed with SIGKILL mid-send, and restarts with auto: its first
  transactional session reads the central tail back once more (the idempotent producer's
  records past the checkpoint are not in the committed positions), then commits; everything
  arrives exactly once for a read_committed consumer;
- fencing: a second box with the same uplink.transactional.id starts; the first box's next
  transaction is fenced (FENCED in its log, link state fenced in its status), and once the
  second is gone the first forwards the rest, exactly once, read_committed;
- expiry: against a Kafka that forgets idle transactional ids and producer ids after 2 s,
  a box that stays up but idle longer than that (its producer's id is gone when it sends
  again), and a box that is down longer than that, both resume exactly once; Kafka's own
  kafka-transactions tool shows the id was really forgotten.

Skipped with a message where Kafka's jars or a JDK cannot be had.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402
from test_uplink import read_all, status, wait_drained  # noqa: E402

PARTS = 2


def wait_forwarded(box, topic, n, timeout):
    """Until the status shows topic's partitions forwarded up to n records in all (and no
    lag): a fresh status file may list the topic before its records."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        link, parts = status(box)
        mine = [p for p in parts if p.get("topic") == topic]
        if mine and sum(int(p["forwarded"]) for p in mine) >= n:
            return wait_drained(box, topic, max(1, deadline - time.time()))
        time.sleep(0.3)
    raise AssertionError("%s: %d records not forwarded within %ds: %s"
                         % (topic, n, timeout, status(box)))


def produce(box, topic, first, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0,
                  "linger.ms": 5})
    for i in range(first, first + n):
        while True:
            try:
                p.produce(topic, b"%s-%d" % (topic.encode(), i), partition=i % PARTS)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    check(p.flush(30) == 0, "local produce to %s failed", topic)


def exactly_once(bootstrap, central_topic, topic, n, label):
    """read_committed: each of the n values once, in local order per partition."""
    got = read_all(bootstrap, central_topic, PARTS, isolation="read_committed")
    vals = [r[2] for q in sorted(got) for r in got[q]]
    want = {b"%s-%d" % (topic.encode(), i) for i in range(n)}
    dup = len(vals) - len(set(vals))
    missing = len(want - set(vals))
    order_ok = all([int(r[2].split(b"-")[-1]) for r in got[q]] ==
                   sorted(int(r[2].split(b"-")[-1]) for r in got[q]) for q in got)
    raw = read_all(bootstrap, central_topic, PARTS)
    print("uplink-txn %s: sent=%d forwarded=%d duplicated=%d missing=%d (read_uncommitted "
          "sees %d)" % (label, n, len(vals), dup, missing, sum(len(v) for v in raw.values())),
          flush=True)
    check(dup == 0 and missing == 0 and len(vals) == n and order_ok,
          "%s: not exactly once in order: %d records, %d duplicated, %d missing", label,
          len(vals), dup, missing)


def settings(kafka_bs, prefix, **extra):
    s = {"uplink.bootstrap.servers": kafka_bs, "uplink.topic.prefix": prefix,
         "num.partitions": PARTS, "uplink.delivery.timeout.ms": 4000}
    s.update(extra)
    return s


def readback_then_transactions(k):
    # a thin link (about 250 records/s), so the kill lands while records past the checkpoint
    # (written every second) are on the central side
    box = Broker(settings=settings(k.bootstrap, "rb.", **{"uplink.exactly.once": "readback",
                                                          "uplink.max.bytes.per.second": 20000}),
                 name="box-rb")
    try:
        produce(box, "rbt", 0, 1000)
        link, _ = wait_forwarded(box, "rbt", 1000, 60)
        check(link.get("mode") == "read-back" and "readback" in link.get("mode_reason", ""),
              "uplink.exactly.once=readback: mode %r (%s)", link.get("mode"),
              link.get("mode_reason"))
        with open(os.path.join(box.data_dir, "uplink.checkpoint")) as f:
            check("m read-back" in f.read(), "the checkpoint does not record the mode")
        produce(box, "rbt", 1000, 2000)
        deadline = time.time() + 30
        while sum(int(p["forwarded"]) for p in status(box)[1] if p["topic"] == "rbt") < 1300:
            check(time.time() < deadline, "the second batch is not being forwarded")
            time.sleep(0.1)
        time.sleep(0.5)
        box.kill()  # mid-send, with records past the checkpoint on the central side
        box.settings["uplink.exactly.once"] = "auto"
        box.start()
        link, _ = wait_forwarded(box, "rbt", 3000, 90)
        check(link.get("mode") == "transactions", "auto against Kafka: mode %r (%s)",
              link.get("mode"), link.get("mode_reason"))
        produce(box, "rbt", 3000, 1000)
        link, _ = wait_forwarded(box, "rbt", 4000, 60)
        check(int(link.get("commits", "0")) > 0, "no commit after the switch: %s", link)
        found = sum(int(p["readback_found"]) for p in status(box)[1] if p["topic"] == "rbt")
        print("uplink-txn read-back then transactions: the first transactional session read "
              "back %d records past the checkpoint" % found, flush=True)
        check(found > 0, "the kill left nothing past the checkpoint: the switch's read-back "
              "was not exercised")
        with open(box.log_path) as f:
            log = f.read()
        check("exactly once by transactions" in log, "the mode switch is not logged")
        exactly_once(k.bootstrap, "rb.rbt", "rbt", 4000, "read-back then transactions")
        box.stop()
    finally:
        box.kill()


def fenced(k):
    same = {"uplink.transactional.id": "depot-uplink-shared-by-mistake",
            "uplink.transaction.interval.ms": 100}
    a = Broker(settings=settings(k.bootstrap, "fa.", **same), name="box-a")
    b = None
    try:
        produce(a, "ta", 0, 1000)
        link, _ = wait_forwarded(a, "ta", 1000, 90)
        check(link.get("mode") == "transactions", "box a: mode %r (%s)", link.get("mode"),
              link.get("mode_reason"))
        b = Broker(settings=settings(k.bootstrap, "fb.", **same), name="box-b")
        produce(b, "tb", 0, 300)
        wait_forwarded(b, "tb", 300, 90)  # b's init_transactions fenced a's producer epoch
        deadline = time.time() + 60
        seen_fenced = False
        i = 1000
        while time.time() < deadline and not seen_fenced:
            produce(a, "ta", i, 50)  # a's next transaction meets the fence
            i += 50
            for _ in range(10):
                link, _ = status(a)
                seen_fenced |= link.get("state") == "fenced"
                time.sleep(0.1)
            with open(a.log_path) as f:
                seen_fenced &= "FENCED: another process uses transactional.id" in f.read()
        check(seen_fenced, "box a was not fenced by box b (status %s)", status(a)[0])
        print("uplink-txn fenced: box a fenced after box b started with the same "
              "transactional.id (status state=fenced, FENCED logged)", flush=True)
        b.stop()
        b = None
        produce(a, "ta", i, 200)
        i += 200
        link, _ = wait_forwarded(a, "ta", i, 120)  # a backs off, fences b's epoch in turn, resumes
        check(link.get("mode") == "transactions" and link.get("state") == "up",
              "box a did not recover: %s", link)
        exactly_once(k.bootstrap, "fa.ta", "ta", i, "fenced box a")
        exactly_once(k.bootstrap, "fb.tb", "tb", 300, "fencing box b")
        a.stop()
    finally:
        a.kill()
        if b:
            b.kill()


EXPIRY = {"transactional.id.expiration.ms": 2000,
          "transaction.remove.expired.transaction.cleanup.interval.ms": 500,
          "producer.id.expiration.ms": 2000,
          "producer.id.expiration.check.interval.ms": 500}


def txn_id_known(k, tid):
    """Asks Kafka's own kafka-transactions tool whether the coordinator still has tid."""
    import kafka_dist as kd
    r = kd.run_tool("org.apache.kafka.tools.TransactionsCommand",
                    ["--bootstrap-server", k.bootstrap, "describe", "--transactional-id", tid])
    out = r.stdout + r.stderr
    if r.returncode == 0 and tid in out:
        return True
    check("could not be found" in out or "TransactionalIdNotFound" in out,
          "kafka-transactions describe %s: unexpected answer (rc %d): %s", tid, r.returncode,
          out[-600:])
    return False


def wait_forgotten(k, tid, timeout=30):
    deadline = time.time() + timeout
    while txn_id_known(k, tid):
        check(time.time() < deadline, "Kafka never forgot %s (expiry 2 s)", tid)
        time.sleep(1)


def expiry(k):
    tid = "depot-uplink-expiry"
    box = Broker(settings=settings(k.bootstrap, "ex.", **{"uplink.transactional.id": tid,
                                                          "uplink.transaction.interval.ms": 100}),
                 name="box-ex")
    try:
        produce(box, "tx", 0, 500)
        link, _ = wait_forwarded(box, "tx", 500, 90)
        check(link.get("mode") == "transactions", "mode %r (%s)", link.get("mode"),
              link.get("mode_reason"))
        check(txn_id_known(k, tid), "Kafka does not know %s while the box forwards", tid)
        # up and idle past the expiry: the running producer's id and epoch are forgotten
        wait_forgotten(k, tid)
        produce(box, "tx", 500, 500)
        wait_forwarded(box, "tx", 1000, 90)
        exactly_once(k.bootstrap, "ex.tx", "tx", 1000, "idle past the id expiry")
        with open(box.log_path) as f:
            after = [ln.strip() for ln in f if "uplink:" in ln and "CONFWARN" not in ln]
        met = [ln for ln in after if "INVALID_PRODUCER_ID_MAPPING" in ln or "starting over" in ln]
        check(met, "the running producer never met its forgotten id: %s", after[-6:])
        print("uplink-txn idle past the id expiry: the box met it as: %s" % met[0][25:200],
              flush=True)
        # down past the expiry: a new process, a new producer id, the positions still there
        box.stop()
        wait_forgotten(k, tid)
        box.start()
        produce(box, "tx", 1000, 500)
        link, _ = wait_forwarded(box, "tx", 1500, 90)
        check(link.get("mode") == "transactions", "after the restart: mode %r (%s)",
              link.get("mode"), link.get("mode_reason"))
        exactly_once(k.bootstrap, "ex.tx", "tx", 1500, "down past the id expiry")
        box.stop()
    finally:
        box.kill()


def with_kafka(name, cases, settings=None):
    """Runs cases (functions of the started Kafka) against one Kafka 4.x started for them, or
    prints SKIP with the reason where its jars or a JDK cannot be had."""
    import kafka_dist as kd
    ok, why = kd.available()
    if not ok:
        return kd.skip(name, why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-uplink-txn-")
    k = None
    try:
        k = kd.start_kafka(tmp, settings=settings)
        for case in cases:
            case(k)
        k.stop()
        k = None
    finally:
        if k:
            k.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_transactions_kafka():
    with_kafka("test_transactions_kafka", [readback_then_transactions, fenced])


def test_transactional_id_expiry_kafka():
    with_kafka("test_transactional_id_expiry_kafka", [expiry], settings=EXPIRY)


if __name__ == "__main__":
    run_tests(globals())

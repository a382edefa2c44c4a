"""The uplink to a central cluster over SASL_SSL (docs/uplink.md), with certificates made here
with openssl: a central Depot with SCRAM-SHA-512 (always), and Apache Kafka 4.x (skipped with a
message where its jars cannot be had) with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (SCRAM where
the librdkafka linked into depot can do SCRAM against Kafka 4.x: >= 2.6.1, as the pinned 2.12.1
of the default build is; skipped with a message with RDKAFKA=system on Debian 12's 2.0.2).

The box starts with a wrong password; `depotctl uplink status` shows the link down
and the authentication error, and nothing is forwarded while the box keeps accepting records.
Restarted with the right password, it forwards everything exactly once. Then the same with a
CA that did not sign the central certificate (the TLS error shows), and fixed again. At the end
the central topic holds every acknowledged record exactly once with key, value, headers and
timestamp (compared by depot.src with the box's log); counts are printed.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, free_port, run_tests  # noqa: E402
from test_tls import TlsBroker  # noqa: E402
from test_uplink import PREFIX, read_all, status, wait_drained  # noqa: E402
from tls_certs import make_all, make_ca  # noqa: E402

TOPIC = "sensors"
PARTS = 3
USER, PASSWORD = "admin", "admin-secret"


def depotctl_status(box):
    ctl = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/depotctl"))
    r = subprocess.run([ctl, "uplink", "status", "--data-dir", box.data_dir],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 0, "depotctl uplink status: %s", r.stderr)
    return r.stdout


def produce(box, start, n):
    """n records v<start..> with keys, a header and explicit timestamps; returns the acked."""
    from confluent_kafka import Producer
    acked = []
    p = Producer({"bootstrap.servers": box.bootstrap, "acks": "all", "log_level": 0,
                  "linger.ms": 5})
    ts0 = int(time.time() * 1000)
    for i in range(start, start + n):
        p.produce(TOPIC, value=b"v%d" % i, key=b"k%d" % (i % 11), partition=i % PARTS,
                  headers=[("seq", b"%d" % i)], timestamp=ts0 + i,
                  on_delivery=lambda e, m: acked.append(m.value()) if e is None else None)
        p.poll(0)
    check(p.flush(30) == 0, "the box did not accept the records")
    return acked


def wait_error(box, pattern, local_end, timeout=60):
    """Until the status shows the link down with last_error matching pattern, and the box's
    log end (local_end records in all) in the partition lines."""
    deadline = time.time() + timeout
    link = {}
    while time.time() < deadline:
        link, parts = status(box)
        ends = sum(int(p["local_end"]) for p in parts if p.get("topic") == TOPIC)
        if link.get("state") == "down" and re.search(pattern, link.get("last_error", ""), re.I) \
                and ends == local_end:
            return link, parts
        time.sleep(0.5)
    raise AssertionError("status never showed the link down with /%s/: %s" % (pattern, link))


def log_bytes_from(box, part, offset):
    """Bytes of the box's log of TOPIC/part from the batch holding offset to the end, parsed
    from the segment files (baseOffset int64 at 0, batchLength int32 at 8, lastOffsetDelta
    int32 at 23; a batch takes 12 + batchLength bytes)."""
    d = os.path.join(box.data_dir, "%s-%d" % (TOPIC, part))
    total, found = 0, False
    for name in sorted(n for n in os.listdir(d) if n.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 27 <= len(data):
            base = int.from_bytes(data[pos:pos + 8], "big")
            blen = int.from_bytes(data[pos + 8:pos + 12], "big")
            last = base + int.from_bytes(data[pos + 23:pos + 27], "big")
            if blen <= 0 or pos + 12 + blen > len(data):
                break
            found = found or last >= offset
            if found:
                total += 12 + blen
            pos += 12 + blen
    return total


def check_lag_bytes(box, parts, label):
    """lag_bytes is exact: the log's bytes from the first unforwarded offset's batch on."""
    for p in parts:
        want = log_bytes_from(box, int(p["partition"]), int(p["forwarded"]))
        check(int(p["lag_bytes"]) == want and want > 0, "%s: partition %s lag_bytes=%s, the "
              "log holds %d bytes from offset %s", label, p["partition"], p["lag_bytes"], want,
              p["forwarded"])
    print("uplink %s: lag_bytes exact: %s" % (label, [(p["forwarded"], p["lag_bytes"])
                                                    for p in parts]), flush=True)


def verify(box, central_read_bs, acked, label, prefix=PREFIX, isolation="read_uncommitted"):
    local = read_all(box.bootstrap, TOPIC, PARTS)
    central = read_all(central_read_bs, prefix + TOPIC, PARTS, isolation=isolation)
    by_src, dup, forwarded = {}, 0, 0
    for q, recs in central.items():
        for off, key, val, hdrs, ts in recs:
            forwarded += 1
            src = dict(hdrs).get("depot.src", b"").decode().split(":")
            check(len(src) == 4, "central record without depot.src: %r", hdrs)
            k = (int(src[2]), int(src[3]))
            dup += k in by_src
            by_src[k] = (key, val, [h for h in hdrs if h[0] != "depot.src"], ts)
    missing = bad = local_n = 0
    for lp, recs in local.items():
        for off, key, val, hdrs, ts in recs:
            local_n += 1
            c = by_src.get((lp, off))
            if c is None:
                missing += 1
            elif c != (key, val, [(h, v or b"") for h, v in hdrs], ts):
                bad += 1
    vals = {c[1] for c in by_src.values()}
    acked_missing = [v for v in acked if v not in vals]
    print("uplink %s: sent=%d acknowledged=%d local=%d forwarded=%d duplicated=%d missing=%d "
          "(acknowledged but not central: %d) field-mismatch=%d"
          % (label, len(acked), len(acked), local_n, forwarded, dup, missing, len(acked_missing),
             bad), flush=True)
    check(dup == 0 and missing == 0 and not acked_missing and bad == 0 and
          forwarded == local_n, "%s: not exactly once", label)


def secure_cycle(central_port, ca, read_bs, label, mechanism="SCRAM-SHA-512", prefix=PREFIX,
                 mode="read-back"):
    """Wrong password, fixed; wrong CA, fixed; nothing lost, nothing twice. mode: how exactly
    once must be kept over the secured link (a transactional central is read committed)."""
    iso = "read_committed" if mode == "transactions" else "read_uncommitted"
    base = {"uplink.bootstrap.servers": "127.0.0.1:%d" % central_port,
            "uplink.topic.prefix": prefix, "uplink.topics": TOPIC, "num.partitions": PARTS,
            "uplink.producer.security.protocol": "SASL_SSL",
            "uplink.producer.sasl.mechanism": mechanism,
            "uplink.producer.sasl.username": USER,
            "uplink.producer.sasl.password": "not-" + PASSWORD,
            "uplink.producer.ssl.ca.location": ca}
    box = Broker(settings=base, name="box")
    acked = []
    try:
        acked += produce(box, 0, 300)
        link, parts = wait_error(box, r"auth", 300)
        out = depotctl_status(box)
        print("uplink %s: wrong password:\n%s" % (label, out), flush=True)
        check("Link: down" in out and re.search(r"auth", out, re.I),
              "depotctl does not show the authentication error: %s", out)
        check(all(p["forwarded"] == "0" and p["lag_records"] == p["local_end"] for p in parts),
              "forwarded with a wrong password? %s", parts)
        check_lag_bytes(box, parts, label + " nothing forwarded")
        box.stop()
        box.settings["uplink.producer.sasl.password"] = PASSWORD
        box.start()
        acked += produce(box, 300, 300)
        wait_drained(box, TOPIC, 60)
        verify(box, read_bs, acked, label + " after the password was fixed", prefix, iso)

        other = tempfile.mkdtemp(prefix="depot-e2e-otherca-")
        try:
            box.stop()
            box.settings["uplink.producer.ssl.ca.location"] = make_ca(other)
            box.start()
            acked += produce(box, 600, 300)
            link, parts = wait_error(box, r"ssl|certificate|handshake", 900)
            out = depotctl_status(box)
            print("uplink %s: wrong CA:\n%s" % (label, out), flush=True)
            check("Link: down" in out and re.search(r"ssl|certificate", out, re.I),
                  "depotctl does not show the TLS error: %s", out)
            check(sum(int(p["lag_records"]) for p in parts) == 300,
                  "the 300 records of the wrong-CA phase are not held back: %s", parts)
            check_lag_bytes(box, parts, label + " partly forwarded")
        finally:
            shutil.rmtree(other, ignore_errors=True)
        box.stop()
        box.settings["uplink.producer.ssl.ca.location"] = ca
        box.start()
        wait_drained(box, TOPIC, 60)
        verify(box, read_bs, acked, label + " after the CA was fixed", prefix, iso)
        link, _ = status(box)
        check(link.get("state") == "up", "link not up at the end: %s", link)
        check(link.get("mode") == mode, "%s: mode %r (%s), want %r", label, link.get("mode"),
              link.get("mode_reason"), mode)
        box.stop()
    finally:
        box.kill()


def clean_cycle(central_port, ca, read_bs, label, mechanism, prefix):
    """The right settings from the start: everything forwarded exactly once (the error
    phases of secure_cycle run for the other mechanisms; this one only has to authenticate)."""
    box = Broker(settings={"uplink.bootstrap.servers": "127.0.0.1:%d" % central_port,
                           "uplink.topic.prefix": prefix, "uplink.topics": TOPIC,
                           "num.partitions": PARTS,
                           "uplink.producer.security.protocol": "SASL_SSL",
                           "uplink.producer.sasl.mechanism": mechanism,
                           "uplink.producer.sasl.username": USER,
                           "uplink.producer.sasl.password": PASSWORD,
                           "uplink.producer.ssl.ca.location": ca}, name="box")
    try:
        acked = produce(box, 0, 300)
        # (lag 0 alone can be the status from before the uplink saw the records)
        deadline = time.time() + 60
        while sum(int(p.get("forwarded", 0)) for p in status(box)[1]) < len(acked):
            check(time.time() < deadline, "not forwarded within 60 s: %s", status(box))
            time.sleep(0.2)
        wait_drained(box, TOPIC, 60)
        verify(box, read_bs, acked, label, prefix)
        link, _ = status(box)
        check(link.get("state") == "up", "link not up at the end: %s", link)
        box.stop()
    finally:
        box.kill()


def test_uplink_sasl_ssl_depot_central():
    with TlsBroker(name="central") as central:  # SASL_SSL on port, PLAINTEXT on port3
        secure_cycle(central.port, central.certs["ca"], "127.0.0.1:%d" % central.port3,
                     "sasl_ssl depot-central")


def librdkafka_version():
    """(text, (major, minor, patch)) of the librdkafka the broker binary runs with, from
    `depot --version` ("depot 0.1.0 (librdkafka 2.12.1)"; the library's own run-time answer,
    so right for the static pinned build and for RDKAFKA=system alike)."""
    exe = os.environ.get("DEPOT_REAL_BIN") or os.environ.get("DEPOT_BIN") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/depot"))
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
    m = re.search(r"\(librdkafka (\d+)\.(\d+)\.(\d+)[^)]*\)", r.stdout)
    check(r.returncode == 0 and m is not None, "depot --version: %r %r", r.stdout, r.stderr)
    return m.group(0)[1:-1], tuple(int(x) for x in m.groups())


def test_uplink_sasl_ssl_kafka_central():
    """Apache Kafka 4.x with a SASL_SSL listener (PEM keystore made here, SCRAM credentials
    from `kafka-storage format --add-scram`, PLAIN users in the listener's JAAS): the same
    cycle with SASL PLAIN, and with SCRAM-SHA-512 where librdkafka can do SCRAM against Kafka
    4.x at all (>= 2.6.1: older versions repeat the client nonce in the client-final-message,
    which Kafka 4.x rejects as invalid credentials; librdkafka#4895)."""
    import base64
    import uuid

    import kafka_dist as kd
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_uplink_sasl_ssl_kafka_central", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-uplink-kafka-sasl-")
    k = None
    try:
        certs = make_all(os.path.join(tmp, "certs"))
        plain, secure = free_port(), free_port()
        k = kd.KafkaBroker(tmp, plain, settings={
            "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,"
                         "CONTROLLER://127.0.0.1:1" % (plain, secure),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d"
                                    % (plain, secure),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,"
                                              "CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                "user_%s=\"%s\";" % (USER, PASSWORD),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": certs["server_pem"],
        })
        # the controller listener must be on the port the quorum voters name
        with open(k.props_path) as f:
            props = re.sub(r"CONTROLLER://127\.0\.0\.1:1\b",
                           "CONTROLLER://127.0.0.1:%d" % k.controller_port, f.read())
        with open(k.props_path, "w") as f:
            f.write(props)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        r = subprocess.run(kd.java_cmd(kd.STORAGE, [
            "format", "--cluster-id=" + cluster_id, "-c", k.props_path,
            "--add-scram", "SCRAM-SHA-256=[name=%s,password=%s]" % (USER, PASSWORD),
            "--add-scram", "SCRAM-SHA-512=[name=%s,password=%s]" % (USER, PASSWORD)],
            log4j=k.log4j), capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "kafka-storage format --add-scram: %s%s", r.stdout, r.stderr)
        k.start()
        secure_cycle(secure, certs["ca"], "127.0.0.1:%d" % plain, "sasl_ssl(PLAIN) kafka-central",
                     mechanism="PLAIN", prefix="plain.", mode="transactions")
        text, ver = librdkafka_version()
        if ver < (2, 6, 1):
            print("  SKIP SCRAM-SHA-256/512 to Kafka 4.x: depot runs %s < 2.6.1, which cannot "
                  "authenticate with SCRAM against Kafka 4.x (librdkafka#4895; build with the "
                  "default RDKAFKA=pinned)" % text, flush=True)
        else:
            print("  depot runs %s: SCRAM-SHA-256 and SCRAM-SHA-512 to Kafka 4.x" % text,
                  flush=True)
            clean_cycle(secure, certs["ca"], "127.0.0.1:%d" % plain,
                        "sasl_ssl(SCRAM-SHA-256) kafka-central", "SCRAM-SHA-256", "scram256.")
            secure_cycle(secure, certs["ca"], "127.0.0.1:%d" % plain,
                         "sasl_ssl(SCRAM-SHA-512) kafka-central", prefix="scram.",
                         mode="transactions")
        k.stop()
    finally:
        if k is not None:
            k.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())

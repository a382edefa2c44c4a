"""depotctl connect-standalone with Kafka Connect's file connectors, from the textbook's
unmodified property files (alert-source / alert-sink on topic kinaction_alert_connect).

1. Lines appended to alert.txt while both connectors run arrive in alert-sink.txt in order and
   byte-identical, and kcat (an independent client) sees them on the topic.
2. Chaos: the connector process or the broker is killed with SIGKILL at random points, 20
   times, while lines keep being appended. Afterwards no line is missing from alert-sink.txt,
   and every duplicate is a re-delivery of a contiguous run (the documented at-least-once
   cases), i.e. dropping lines already seen gives back the input exactly.
3. SIGTERM: the worker exits 0 and a restart sends nothing twice.
"""

import os
import random
import re
import signal
import subprocess
import threading
import time

from depot_harness import Broker, check, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depotctl"))
SETTINGS = {"group.initial.rebalance.delay.ms": 0}
TOPIC = "kinaction_alert_connect"

SOURCE = """name=alert-source
connector.class=FileStreamSource
tasks.max=1
file=alert.txt
topic=kinaction_alert_connect
"""

SINK = """name=alert-sink
connector.class=FileStreamSink
tasks.max=1
file=alert-sink.txt
topics=kinaction_alert_connect
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def setup(b, flush_ms=1000):
    d = os.path.join(b.tmp, "connect")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "worker.properties"),
          "bootstrap.servers=%s\n"
          "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
          "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
          "key.converter.schemas.enable=false\n"
          "value.converter.schemas.enable=false\n"
          "offset.storage.file.filename=%s/connect.offsets\n"
          "offset.flush.interval.ms=%d\n" % (b.bootstrap, d, flush_ms))
    write(os.path.join(d, "alert-source.properties"), SOURCE)
    write(os.path.join(d, "alert-sink.properties"), SINK)
    open(os.path.join(d, "alert.txt"), "w").close()
    return d


class Worker:
    def __init__(self, d):
        self.d = d
        self.proc = None
        self.log = open(os.path.join(d, "connect.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [CTL, "connect-standalone", "worker.properties", "alert-source.properties",
             "alert-sink.properties"], cwd=self.d, stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def term(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.proc = None
        return rc


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def kcat_values(bootstrap):
    out = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", TOPIC, "-o", "beginning", "-e",
                          "-q", "-f", "%s\n"], capture_output=True, timeout=60, check=True)
    return out.stdout


def test_textbook_roundtrip():
    with Broker(SETTINGS) as b:
        d = setup(b)
        w = Worker(d)
        w.start()
        try:
            src = os.path.join(d, "alert.txt")
            lines = b"".join(b"kinaction alert %d: line temperature %d.5 C \xe2\x9c\x93\n" % (i, i)
                             for i in range(300))
            with open(src, "ab") as f:
                for i in range(0, len(lines), 997):  # appended in pieces, lines cut anywhere
                    f.write(lines[i:i + 997])
                    f.flush()
                    time.sleep(0.01)
            sink = os.path.join(d, "alert-sink.txt")
            wait_for(lambda: len(read(sink)) >= len(lines), 30, "the sink file")
            time.sleep(0.5)
            check(read(sink) == lines, "alert-sink.txt differs from alert.txt (%d vs %d bytes)",
                  len(read(sink)), len(lines))
            check(kcat_values(b.bootstrap) == lines, "kcat sees other records on the topic")
            # Truncation: the source starts over at the new content.
            write(src, "after truncation\n")
            wait_for(lambda: read(sink).endswith(b"after truncation\n"), 20, "truncated line")
            # Rotation: a new file under the same name is read from its start.
            os.rename(src, src + ".1")
            write(src, "rotated 1\nrotated 2\n")
            wait_for(lambda: read(sink).endswith(b"rotated 1\nrotated 2\n"), 20, "rotated lines")
            check(w.term() == 0, "worker did not exit 0 on SIGTERM")
            before = read(sink)
            with open(src, "a") as f:
                f.write("after restart\n")
            w.start()
            wait_for(lambda: read(sink).endswith(b"after restart\n"), 20, "line after restart")
            check(read(sink) == before + b"after restart\n",
                  "a clean restart re-sent lines: %r", read(sink)[len(before):][:200])
        finally:
            w.kill()


def check_redelivery(out, n):
    """out: sink lines; n: lines appended. Every line is 'alert <i>'. Walks the output: a line
    is either the next new one (max+1) or continues a re-delivered run (previous+1) that
    started at or below max."""
    nums = []
    for ln in out.split(b"\n")[:-1]:
        m = re.fullmatch(rb"alert (\d+) x+", ln)
        check(m is not None, "unexpected sink line %r", ln[:80])
        nums.append(int(m.group(1)))
    top, prev, dups = -1, None, 0
    for i, v in enumerate(nums):
        if v == top + 1:
            top = v
        else:
            check(v <= top, "line %d: alert %d arrived before alert %d (a line is missing)",
                  i, v, top + 1)
            check(prev is not None and (v == prev + 1 or v <= prev),
                  "line %d: alert %d is a duplicate outside a contiguous run", i, v)
            dups += 1
        prev = v
    check(top == n - 1, "sink has lines up to alert %d of %d", top, n - 1)
    return dups


def test_kill9_chaos():
    rnd = random.Random(int(os.environ.get("CONNECT_SEED", "0")) or None)
    with Broker(SETTINGS) as b:
        d = setup(b)
        w = Worker(d)
        w.start()
        src, sink = os.path.join(d, "alert.txt"), os.path.join(d, "alert-sink.txt")
        count = [0]
        stop = threading.Event()

        def appender():
            with open(src, "ab", buffering=0) as f:
                while not stop.is_set():
                    for _ in range(5):
                        f.write(b"alert %d %s\n" % (count[0], b"x" * (count[0] % 50 + 1)))
                        count[0] += 1
                    time.sleep(0.01)

        t = threading.Thread(target=appender)
        t.start()
        kills = {"connector": 0, "broker": 0}
        try:
            for _ in range(20):
                time.sleep(rnd.uniform(0.3, 2.0))
                if rnd.random() < 0.5:
                    w.kill()
                    kills["connector"] += 1
                    time.sleep(rnd.uniform(0, 0.3))
                    w.start()
                else:
                    b.kill()
                    kills["broker"] += 1
                    time.sleep(rnd.uniform(0, 0.3))
                    b.start()
            time.sleep(1)
        finally:
            stop.set()
            t.join()
        n = count[0]
        try:
            def done():
                tail = read(sink)[-200:].split(b"\n")
                return len(tail) > 1 and tail[-2].startswith(b"alert %d " % (n - 1))
            wait_for(done, 45, "the last line (alert %d) in the sink" % (n - 1))
            time.sleep(1)
            dups = check_redelivery(read(sink), n)
            print("    %d lines, %d kills of the connector, %d of the broker, %d re-delivered"
                  % (n, kills["connector"], kills["broker"], dups))
            check(w.term() == 0, "worker did not exit 0 on SIGTERM")
        except Exception:
            print(open(os.path.join(d, "connect.log"), "rb").read().decode(errors="replace")[-3000:])
            raise
        finally:
            w.kill()


def test_bad_config():
    with Broker(SETTINGS) as b:
        d = setup(b)
        write(os.path.join(d, "bad.properties"), "name=x\nconnector.class=JdbcSource\n")
        r = subprocess.run([CTL, "connect-standalone", "worker.properties", "bad.properties"],
                           cwd=d, capture_output=True, timeout=30)
        check(r.returncode != 0, "a bad connector.class was accepted")
        check(b"connector.class" in r.stderr, "no sentence naming the key: %r", r.stderr)


if __name__ == "__main__":
    run_tests(globals())

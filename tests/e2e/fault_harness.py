"""Small helpers for Depot's fault tests (tests/e2e/test_fault_*.py, run with /usr/bin/python3).

A Depot is one broker process on a fixed loopback port and a data dir that outlives it, so a
test can SIGKILL it, damage its files and start it again on the same dir and port. Clients
(confluent-kafka) reconnect by themselves.

DEPOT_LONG=1 selects the long mode (more cycles); `long_mode()` tells a test which.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEPOT_BIN = os.environ.get("DEPOT_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depot"))


def long_mode():
    return os.environ.get("DEPOT_LONG", "0") == "1"


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_accepts(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class Depot:
    """A broker on 127.0.0.1:port with data in data_dir (created under a temp dir if None)."""

    def __init__(self, data_dir=None, port=None, settings=None, env=None):
        self.tmp = tempfile.mkdtemp(prefix="depot-fault-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = os.path.join(self.tmp, "broker.log")
        self.starts = 0

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self, wait=True):
        args = [DEPOT_BIN, "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--set", "log.dirs=%s" % self.data_dir]
        for k, v in self.settings.items():
            args += ["--set", "%s=%s" % (k, v)]
        log = open(self.log_path, "ab")
        log.write(b"==== start %d\n" % self.starts)
        log.flush()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.starts += 1
        if wait:
            self.wait_up()

    def wait_up(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                # A bind race after a kill: the old socket may linger for a moment.
                raise RuntimeError("depot exited with %s; log tail:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if port_accepts(self.port):
                return
            time.sleep(0.02)
        raise RuntimeError("depot did not come up; log tail:\n" + self.log_tail())

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout)
            self.proc = None
            return rc
        self.proc = None
        return 0

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def create_topic(bootstrap, topic, partitions, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(topic, partitions, 1, config=config or {})])
    fs[topic].result(20)


def consume_all(bootstrap, topic, partitions, timeout=60):
    """Every record of the topic, from the log start to the high watermark, as a dict
    partition -> [(offset, value bytes)], read with assign() (no group)."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "fault-check",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 100, "check.crcs": True})
    highs = {}
    for p in range(partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        highs[p] = hi
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    done = {p for p in range(partitions) if highs[p] == 0}
    deadline = time.time() + timeout
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                if m.offset() >= highs[m.partition()]:
                    done.add(m.partition())
                continue
            raise RuntimeError("consume error: %s" % m.error())
        out[m.partition()].append((m.offset(), m.value()))
        if m.offset() + 1 >= highs[m.partition()]:
            done.add(m.partition())
    c.close()
    if len(done) < partitions:
        raise RuntimeError("consume timed out; high watermarks %s, got %s"
                           % (highs, {p: len(v) for p, v in out.items()}))
    return out


def run(tests):
    """Runs test functions in order; prints PASS/FAIL; exits 1 on any failure."""
    failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            print("PASS %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
        except Exception:
            import traceback
            traceback.print_exc()
            print("FAIL %s" % t.__name__, flush=True)
            failed += 1
    sys.exit(1 if failed else 0)

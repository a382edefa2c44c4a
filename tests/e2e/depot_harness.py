"""Shared helpers for Depot's end-to-end tests (run with /usr/bin/python3).

Each test starts the real broker binary ($DEPOT_BIN, default ../../build/depot relative to this
file) on a free loopback port with a fresh temp data dir, and drives it with real clients.
Nothing here mocks the broker; the raw-protocol helpers at the bottom only build requests the
way a client would, so tests can look at bytes the client libraries hide (batch attributes,
error codes, malformed frames).

Usage:
    from depot_harness import Broker, run_tests
    def test_something():
        with Broker() as b:          # started; stopped and cleaned up on exit
            ... b.bootstrap ...
            b.restart()              # SIGTERM, expect exit 0, start on the same dir/port
            b.restart(hard=True)     # kill -9, start again (recovery)
    if __name__ == "__main__":
        run_tests(globals())

On a failing test, run_tests prints the traceback and the tail of the log of every broker the
test started. Temp dirs are removed when the test passes and kept (path printed) when it fails.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
DEPOT_BIN = os.environ.get("DEPOT_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depot"))
LONG = os.environ.get("DEPOT_LONG", "0") == "1"

_started = []  # brokers started by the current test (for log tails on failure)


def sanitized_build():
    """An ASan build (make test-asan): its shadow memory and the quarantine of freed blocks
    make RSS figures meaningless, so RSS bounds are then reported, not asserted."""
    try:
        with open(DEPOT_BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class BrokerError(Exception):
    pass


def free_port():
    """A port that was free a moment ago (bind port 0). Broker.start retries on a lost race."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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


def owns_port(pid, port):
    """True when process pid holds a socket listening on TCP port (its descriptors' socket
    inodes against the listening entries of /proc/net/tcp and tcp6)."""
    try:
        mine = {os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)}
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for r in rows:
            c = r.split()
            if (c[3] == "0A" and int(c[1].rsplit(":", 1)[1], 16) == port
                    and "socket:[%s]" % c[9] in mine):
                return True
    return False


class Broker:
    """One depot process on 127.0.0.1:<free port> with its own temp data dir.

    settings: extra server.properties keys, e.g. {"message.max.bytes": 2000000}.
    """

    def __init__(self, settings=None, name="depot", start=True):
        self.settings = dict(settings or {})
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="depot-e2e-%s-" % name)
        self.data_dir = os.path.join(self.tmp, "data")
        os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.tmp, "broker.log")
        self.port = None
        self.proc = None
        self.starts = 0
        _started.append(self)
        if start:
            self.start()

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def _args(self):
        args = [DEPOT_BIN, "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port]
        if "log.dirs" not in self.settings:  # a test may pass its own (dirs under self.tmp)
            args += ["--set", "log.dirs=%s" % self.data_dir]
        for k, v in self.settings.items():
            args += ["--set", "%s=%s" % (k, v)]
        return args

    def start(self, timeout=20.0):
        """Starts the broker and returns once its port accepts connections.

        A new broker picks a free port; a restart reuses the previous one (clients keep their
        bootstrap). Raises BrokerError("broker did not start ...") if it exits or never listens.
        """
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running")
        if not os.path.exists(DEPOT_BIN):
            raise BrokerError("broker did not start: %s does not exist (make all)" % DEPOT_BIN)
        fixed = self.port is not None
        attempts = 1 if fixed else 3
        last = ""
        for _ in range(attempts):
            if not fixed:
                self.port = free_port()
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(("\n=== start #%d on port %d: %s\n" %
                           (self.starts, self.port, " ".join(self._args()))).encode())
                log.flush()
                self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, close_fds=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    last = "exited with status %d" % rc
                    break
                # a process that took the port meanwhile accepts too (ours is then on its way
                # out, "in use"): the listening socket must be our broker's
                if port_accepts(self.port) and owns_port(self.proc.pid, self.port):
                    return self
                time.sleep(0.02)
            else:
                self.kill()
                raise BrokerError("broker did not start: port %d not accepting after %.0fs"
                                  % (self.port, timeout))
            # exited early: retry with a fresh port only if someone took ours
            if fixed or "in use" not in self.log_tail(5).lower():
                break
        raise BrokerError("broker did not start (%s); log %s" % (last, self.log_path))

    def stop(self, timeout=30.0):
        """SIGTERM and wait; the broker must exit with status 0 (clean shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            self.proc = None
            raise BrokerError("broker was not running at stop (exit status %r)" % rc)
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BrokerError("broker did not exit within %.0fs of SIGTERM" % timeout)
        self.proc = None
        if rc != 0:
            raise BrokerError("broker exited with status %d after SIGTERM" % rc)

    def kill(self):
        """kill -9 (no chance to flush or close anything)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, hard=False):
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no broker log)"
        return "\n".join("    | " + l for l in lines[-n:])

    def cleanup(self, keep=False):
        self.kill()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.cleanup(keep=et is not None)
        return False


def _on_term(signum, _frame):
    for b in _started:
        b.kill()
    sys.stderr.write("depot_harness: signal %d, brokers killed\n" % signum)
    os._exit(128 + signum)


def run_tests(namespace, argv=None):
    """Runs every test_* function in namespace (or those named on the command line).
    Exit status 0 only if all pass. Prints each test's duration."""
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _on_term)
    names = [n for n in sorted(namespace) if n.startswith("test_") and callable(namespace[n])]
    if argv:
        names = [n for n in names if n in argv]
    failed = []
    for n in names:
        del _started[:]
        t0 = time.monotonic()
        try:
            namespace[n]()
            print("  PASS %-45s %6.1fs" % (n, time.monotonic() - t0), flush=True)
        except Exception:
            print("  FAIL %-45s %6.1fs" % (n, time.monotonic() - t0), flush=True)
            traceback.print_exc()
            for b in _started:
                print("  broker log %s (kept: %s):\n%s" % (b.log_path, b.tmp, b.log_tail()))
            failed.append(n)
        finally:
            for b in _started:
                b.kill()
            sys.stdout.flush()
    if failed:
        print("FAILED: " + " ".join(failed))
    sys.exit(1 if failed else 0)


def check(cond, msg, *args):
    """assert that survives python -O and formats lazily."""
    if not cond:
        raise AssertionError(msg % args if args else msg)


# ------------------------------------------------------------------------------------------
# Raw Kafka protocol (classic, non-flexible encodings only): just enough to send requests a
# client library would not send, and to read fields a client library hides.

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def kstr(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def frame(api_key, api_version, correlation_id, body=b"", client_id="depot-e2e"):
    """A complete request frame with a v1 (non-flexible) request header."""
    payload = i16(api_key) + i16(api_version) + i32(correlation_id) + kstr(client_id) + body
    return i32(len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(sock):
    """One response frame's payload (correlation id first)."""
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    if n < 4 or n > 256 << 20:
        raise ValueError("bad response size %d" % n)
    return recv_exact(sock, n)


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise ValueError("short response: need %d at %d of %d" % (n, self.p, len(self.b)))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def str(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def left(self):
        return len(self.b) - self.p


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def parse_api_versions_v0(payload):
    """(correlation_id, error_code, {api_key: (min, max)}) from a v0-layout reply."""
    r = Reader(payload)
    cid = r.i32()
    err = r.i16()
    n = r.i32()
    if n < 0 or n > 1000:
        raise ValueError("bad api_keys count %d" % n)
    keys = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        keys[k] = (lo, hi)
    return cid, err, keys


def api_versions(port, version=0, correlation_id=7, sock=None):
    """Sends ApiVersions (v0-2 request bodies are empty) and parses the v0 prefix of the reply.
    Returns (error_code, {key: (min, max)})."""
    own = sock is None
    s = connect(port) if own else sock
    try:
        s.sendall(frame(18, version, correlation_id))
        cid, err, keys = parse_api_versions_v0(recv_frame(s))
        if cid != correlation_id:
            raise ValueError("correlation id %d, sent %d" % (cid, correlation_id))
        return err, keys
    finally:
        if own:
            s.close()


def fetch_v4_batches(port, topic, partition, offset=0, max_bytes=1 << 20):
    """Fetch v4 of one partition; returns (error_code, high_watermark, [batch header dicts]).
    Each dict has base_offset, last_offset_delta, attributes, codec (attributes & 7), records.
    A partial trailing batch is dropped, as clients do."""
    body = (i32(-1) + i32(0) + i32(1) + i32(max_bytes) + i8(0) +
            i32(1) + kstr(topic) + i32(1) + i32(partition) + i64(offset) + i32(max_bytes))
    s = connect(port)
    try:
        s.sendall(frame(1, 4, 99, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 99, "fetch: wrong correlation id")
    r.i32()  # throttle
    check(r.i32() == 1, "fetch: expected one topic")
    r.str()
    check(r.i32() == 1, "fetch: expected one partition")
    check(r.i32() == partition, "fetch: wrong partition")
    err = r.i16()
    hw = r.i64()
    r.i64()  # last stable offset
    na = r.i32()
    for _ in range(max(na, 0)):
        r.i64(), r.i64()
    records = r.bytes() or b""
    batches = []
    q = Reader(records)
    while q.left() >= 61:
        base = q.i64()
        blen = q.i32()
        if blen > q.left():
            break
        body = Reader(q.take(blen))
        body.i32()  # partition leader epoch
        magic = body.i8()
        body.take(4)  # crc
        attrs = body.i16()
        lod = body.i32()
        base_ts, max_ts, pid, epoch, seq = body.i64(), body.i64(), body.i64(), body.i16(), body.i32()
        nrec = body.i32()
        batches.append({"base_offset": base, "magic": magic, "attributes": attrs,
                        "codec": attrs & 7, "last_offset_delta": lod, "records": nrec,
                        "base_timestamp": base_ts, "max_timestamp": max_ts, "producer_id": pid,
                        "producer_epoch": epoch, "base_sequence": seq})
    return err, hw, batches


def _crc32c_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = _CRC32C[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)  # zigzag
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def record_batch(values, base_ts=1_700_000_000_000, bad_crc=False):
    """An uncompressed RecordBatch v2 (magic 2) with null keys and no headers."""
    recs = b""
    for i, v in enumerate(values):
        body = (i8(0) + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0))
        recs += varint(len(body)) + body
    after_crc = (i16(0) + i32(len(values) - 1) + i64(base_ts) + i64(base_ts) + i64(-1) + i16(-1) +
                 i32(-1) + i32(len(values)) + recs)
    crc = crc32c(after_crc) ^ (1 if bad_crc else 0)
    tail = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(tail)) + tail


def produce_v3(port, topic, partition, batch, acks=-1, correlation_id=31):
    """One Produce v3 request; returns (error_code, base_offset) of the partition."""
    body = (kstr(None) + i16(acks) + i32(10000) + i32(1) + kstr(topic) + i32(1) + i32(partition) +
            i32(len(batch)) + batch)
    s = connect(port)
    try:
        s.sendall(frame(0, 3, correlation_id, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == correlation_id, "produce: wrong correlation id")
    check(r.i32() == 1, "produce: expected one topic")
    check(r.str() == topic, "produce: wrong topic")
    check(r.i32() == 1, "produce: expected one partition")
    check(r.i32() == partition, "produce: wrong partition")
    err = r.i16()
    base = r.i64()
    return err, base


def advertises(port, api_key, version):
    """True if the broker's ApiVersions range for api_key includes version."""
    err, keys = api_versions(port)
    check(err == 0, "ApiVersions error %d", err)
    lo, hi = keys.get(api_key, (1, 0))
    return lo <= version <= hi


def lz4_usable_by_librdkafka(port):
    """librdkafka (<= 2.11) enables LZ4 only if the broker advertises FindCoordinator v0
    (its 'LZ4' feature uses that API as a proxy for broker >= 0.8.2, rdkafka_feature.c);
    without it the client silently sends lz4 batches uncompressed."""
    return advertises(port, 10, 0)


def check_codec(batches, codec_id, what):
    """The stored batches were really compressed with codec_id. Clients send a batch
    uncompressed when compressing would not make it smaller (librdkafka, kafka-python), which
    happens to small batches, so: codecs used are {none, codec_id} and most records sit in
    codec_id batches (codec_id 0: everything uncompressed)."""
    check(batches, "%s: no batches fetched", what)
    codecs = {x["codec"] for x in batches}
    total = sum(x["last_offset_delta"] + 1 for x in batches)
    inside = sum(x["last_offset_delta"] + 1 for x in batches if x["codec"] == codec_id)
    check(codecs <= {0, codec_id} and inside * 2 > total,
          "%s: stored batch codecs %s, %d of %d records in codec-%d batches", what,
          sorted(codecs), inside, total, codec_id)

"""Connection limits and abandoned requests (issue 19), against the real broker binary.

- 10,000 idle connections held (this process raises its own descriptor limit; the broker
  raises its own) with the broker's RSS reported, while a producer and a consumer keep
  working; the connection beyond max.connections is refused cleanly (accepted and closed).
- A slowloris client and 1-byte-per-second frames are cut off by socket.read.timeout.ms, idle
  and half-open connections by connections.max.idle.ms, a client that never reads its
  responses by socket.write.timeout.ms; the others are served meanwhile.
- 1,000 abandoned long polls are released as soon as their clients disconnect (RSS reported;
  queued.max.request.bytes turns "still held" into a request that is not served).
Run with /usr/bin/python3."""

import os
import resource
import selectors
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, sanitized_build, check, connect, frame, free_port, i8,  # noqa: E402
                           i32, i64, kstr, recv_frame, run_tests)

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

N_IDLE = 10_000


SANITIZED = sanitized_build()


def metric(port, line_prefix):
    """The value of the /metrics line starting with line_prefix."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    for line in text.decode().splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    check(False, "no metric %s", line_prefix)


def rss_kb(b):
    with open("/proc/%d/status" % b.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and (hard == resource.RLIM_INFINITY or hard >= need):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                    else need, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def api_versions_frame(cid=1, client_id="depot-e2e"):
    return frame(18, 0, cid, client_id=client_id)


def served(sock, timeout=5.0):
    """Sends ApiVersions: True if answered, False if the connection ended, None on timeout."""
    sock.settimeout(timeout)
    try:
        sock.sendall(api_versions_frame())
        recv_frame(sock)
        return True
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return False
    except socket.timeout:
        return None


def ended_within(sock, seconds):
    """Seconds until the broker ended the connection (EOF/reset), or None if it did not."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


def make_topic(b, name, parts=1):
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        admin.create_topics([NewTopic(name, parts, 1)])
    finally:
        admin.close()


def produce_and_consume(b, topic, n=200):
    """A producer and a consumer through the broker; returns the values read back."""
    p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all")
    for i in range(n):
        p.send(topic, value=b"m-%d" % i)
    p.flush(30)
    p.close(10)
    c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=15000)
    try:
        got = []
        for m in c:
            got.append(m.value)
            if len(got) >= n:
                break
        return got
    finally:
        c.close()


def open_and_serve(port, n):
    """n connections, each answered one ApiVersions (pipelined through a selector)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    req = api_versions_frame()
    sel = selectors.DefaultSelector()
    for s in socks:
        s.sendall(req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b""])
    pending, deadline = n, time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            buf = key.data
            chunk = key.fileobj.recv(65536)
            check(chunk, "connection %d of %d ended before its ApiVersions answer",
                  n - pending, n)
            buf[0] += chunk
            if len(buf[0]) >= 4 and len(buf[0]) >= 4 + int.from_bytes(buf[0][:4], "big"):
                sel.unregister(key.fileobj)
                pending -= 1
    sel.close()
    check(pending == 0, "%d of %d connections were not answered", pending, n)
    for s in socks:
        s.setblocking(True)
    return socks


def test_ten_thousand_idle_connections():
    limit = raise_nofile(N_IDLE + 500)
    if limit < N_IDLE + 100:
        print("    SKIP: descriptor limit %d < %d (hard limit too low)" % (limit, N_IDLE + 100))
        return
    max_conns = N_IDLE + 16  # room for the producer and consumer beside the idle ones
    mport = free_port()
    with Broker({"max.connections": max_conns,
                 "metrics.listeners": "http://127.0.0.1:%d" % mport}, name="idle10k") as b:
        make_topic(b, "busy")
        base = rss_kb(b)
        t0 = time.monotonic()
        idle = open_and_serve(b.port, N_IDLE)
        held = rss_kb(b)
        print("    %d connections opened and answered in %.1fs; broker RSS %d kB -> %d kB "
              "(%.0f bytes per connection)" % (N_IDLE, time.monotonic() - t0, base, held,
                                               (held - base) * 1024.0 / N_IDLE))
        if SANITIZED:
            print("    (sanitizer build: RSS reported, not checked)")
        else:
            check(held - base < 64 * 1024, "RSS grew by %d kB for %d idle connections",
                  held - base, N_IDLE)
        got = produce_and_consume(b, "busy")
        check(len(got) == 200, "with %d idle connections the consumer read %d of 200", N_IDLE,
              len(got))
        # more until one is refused: it must end at once, cleanly, within the limit
        extra, refused_at = [], None
        for i in range(64):
            s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            r = served(s)
            if r is True:
                extra.append(s)
                continue
            check(r is False, "connection %d beyond the idle ones hung instead of being "
                  "refused", i)
            refused_at = N_IDLE + i
            s.close()
            break
        check(refused_at is not None and refused_at <= max_conns,
              "no connection refused up to %d (max.connections=%d)", N_IDLE + 64, max_conns)
        print("    connection #%d refused (max.connections=%d, the rest used by clients)"
              % (refused_at + 1, max_conns))
        check(all(served(s) for s in idle[::1000]), "held idle connections no longer served")
        idle.pop().close()  # room for one: a new connection is served again
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        check(served(s) is True, "a connection after one closed was not served")
        s.close()
        print("    broker RSS with %d connections: %d kB" % (N_IDLE + len(extra), rss_kb(b)))
        for s in idle + extra:
            s.close()
        check("max.connections reached" in open(b.log_path).read(), "refusal not logged")
        refused = metric(mport, 'depot_connections_refused_total{reason="max.connections"}')
        check(refused >= 1, "depot_connections_refused_total is %s", refused)
        b.stop()


def test_slow_senders_are_cut_off():
    with Broker({"socket.read.timeout.ms": 2000}, name="slowloris") as b:
        make_topic(b, "ok")
        req = api_versions_frame(client_id="a-client-id-long-enough-to-take-a-while")
        stalled = connect(b.port)
        stalled.sendall(req[:7])  # size, api key, half a version: then nothing (slowloris)
        dribble = connect(b.port)
        t0 = time.monotonic()
        closed_at = None
        for i in range(len(req)):  # 1 byte per 0.5 s: the frame would take ~25 s
            try:
                dribble.sendall(req[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            if ended_within(dribble, 0.5) is not None:
                closed_at = time.monotonic() - t0
                break
        check(closed_at is not None and closed_at < 6,
              "a 1-byte-per-0.5s frame was not cut off (%r s)", closed_at)
        dt = ended_within(stalled, 3)
        check(dt is not None, "a stalled half frame was not cut off")
        print("    dribbling frame cut after %.1fs, stalled frame too" % closed_at)
        # the others are served meanwhile
        got = produce_and_consume(b, "ok", 50)
        check(len(got) == 50, "consumer read %d of 50", len(got))
        check("socket.read.timeout.ms" in open(b.log_path).read(), "cut-off not logged")
        b.stop()


def test_idle_and_half_open_connections_are_closed():
    mport = free_port()
    with Broker({"connections.max.idle.ms": 1500,
                 "metrics.listeners": "http://127.0.0.1:%d" % mport}, name="idle") as b:
        silent = connect(b.port)  # never sends a byte (a half-open peer looks the same)
        once = connect(b.port)
        check(served(once) is True, "first request not served")
        half = connect(b.port)
        half.shutdown(socket.SHUT_WR)  # half-closed: the broker ends it at once
        check(ended_within(half, 1.0) is not None, "half-closed connection kept open")
        busy = connect(b.port)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:  # a request every 0.5 s: never idle
            check(served(busy) is True, "a busy connection was closed")
            time.sleep(0.5)
        check(ended_within(silent, 0.1) is not None, "silent connection not closed by now")
        check(ended_within(once, 0.1) is not None, "connection idle after one request open")
        # a long poll longer than the idle limit is not idle: it gets its (empty) answer
        make_topic(b, "lp")
        lp = connect(b.port)
        body = (i32(-1) + i32(3000) + i32(1) + i32(1 << 20) + i8(0) +
                i32(1) + kstr("lp") + i32(1) + i32(0) + i64(0) + i32(1 << 20))
        t0 = time.monotonic()
        lp.sendall(frame(1, 4, 3, body))
        lp.settimeout(10)
        recv_frame(lp)
        dt = time.monotonic() - t0
        check(2.5 < dt < 6, "long poll of 3 s answered after %.1fs", dt)
        for s in (silent, once, half, busy, lp):
            s.close()
        check("connections.max.idle.ms" in open(b.log_path).read(), "idle close not logged")
        idle = metric(mport, 'depot_connections_expired_total{reason="idle"}')
        check(idle >= 2, "depot_connections_expired_total{reason=\"idle\"} is %s", idle)
        b.stop()


def fetch_body(topic, max_wait=0, min_bytes=0, max_bytes=1 << 20):
    return (i32(-1) + i32(max_wait) + i32(min_bytes) + i32(max_bytes) + i8(0) +
            i32(1) + kstr(topic) + i32(1) + i32(0) + i64(0) + i32(max_bytes))


def test_client_that_never_reads_is_cut_off():
    with Broker({"socket.write.timeout.ms": 2000}, name="noread") as b:
        make_topic(b, "big")
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=20,
                          batch_size=256 * 1024, max_request_size=4 << 20)
        for i in range(4000):
            p.send("big", value=b"%06d" % i + b"x" * 1000)
        p.flush(60)
        p.close(10)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", b.port))
        req = frame(1, 4, 1, fetch_body("big"))
        for _ in range(100):  # 100 answers of ~1 MB each, never read
            s.sendall(req)
        # meanwhile another consumer reads the whole topic
        c = KafkaConsumer("big", bootstrap_servers=b.bootstrap, group_id=None,
                          auto_offset_reset="earliest", consumer_timeout_ms=15000)
        n = sum(1 for _ in c)
        c.close()
        check(n == 4000, "the other consumer read %d of 4000", n)
        # a slow but steady reader (about 1 MB/s, 8 answers of ~1 MB) is not a stalled one
        slow = socket.create_connection(("127.0.0.1", b.port))
        for _ in range(8):
            slow.sendall(req)
        slow_got = []

        def read_slowly():
            slow.settimeout(20)
            buf = b""
            try:
                while True:
                    chunk = slow.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                        buf = buf[4 + int.from_bytes(buf[:4], "big"):]
                        slow_got.append(1)
                    if len(slow_got) == 8:
                        break
                    time.sleep(0.05)
            except OSError:
                pass

        th = threading.Thread(target=read_slowly)
        th.start()
        time.sleep(4)
        # now read: the broker must have ended the connection before all 100 answers
        s.settimeout(10)
        answers = 0
        try:
            while answers < 100:
                recv_frame(s)
                answers += 1
        except (EOFError, ConnectionResetError):
            pass
        except socket.timeout:
            check(False, "the connection was neither closed nor answered (%d answers)", answers)
        check(answers < 100, "all 100 answers arrived: the non-reading client was not cut off")
        th.join(30)
        check(len(slow_got) == 8, "a slow steady reader got %d of 8 answers (cut off?)",
              len(slow_got))
        slow.close()
        print("    non-reading client cut off after %d of 100 answers" % answers)
        s.close()
        check("socket.write.timeout.ms" in open(b.log_path).read(), "cut-off not logged")
        b.stop()


def park_long_polls(port, n, topic, client_id="depot-e2e"):
    req = frame(1, 4, 2, fetch_body(topic, max_wait=25000, min_bytes=1), client_id=client_id)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        socks.append(s)
    return socks


def test_abandoned_long_polls_are_released():
    with Broker(name="longpolls") as b:
        make_topic(b, "lp")
        time.sleep(0.5)
        base = rss_kb(b)
        socks = park_long_polls(b.port, 1000, "lp")
        time.sleep(1.0)
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        check(not sel.select(timeout=0.2), "long polls answered early: nothing to wait for?")
        sel.close()
        parked = rss_kb(b)
        for s in socks:
            s.close()
        time.sleep(1.5)  # the sweep (1 s) gives freed pages back after a wave of closes
        after = rss_kb(b)
        print("    broker RSS: %d kB idle, %d kB with 1000 long polls, %d kB 1.5 s after their "
              "clients left" % (base, parked, after))
        if SANITIZED:
            print("    (sanitizer build: RSS reported, not checked)")
        else:
            check(after < parked - (parked - base) // 2,
                  "RSS did not come back down after the long polls were abandoned")
        s = connect(b.port)
        check(served(s) is True, "broker not serving after the abandoned long polls")
        s.close()
        b.stop()
    # Each long poll holds ~1 KB of request; 300 KB of queued.max.request.bytes fill up, so a
    # new request is not read until some are released: it must be read the moment their
    # clients leave, not 25 s later when the polls would have expired.
    pad = "c" * 1000
    with Broker({"socket.request.max.bytes": 300000, "queued.max.request.bytes": 300000},
                name="longpolls-pool") as b:
        make_topic(b, "lp")
        socks = park_long_polls(b.port, 1000, "lp", client_id=pad)
        time.sleep(1.0)
        probe = connect(b.port)
        check(served(probe, timeout=1.0) is None,
              "a new request was served while 1000 long polls held the request bytes")
        t0 = time.monotonic()
        for s in socks:
            s.close()
        probe.settimeout(5)
        recv_frame(probe)  # the ApiVersions answer, now that the bytes are free
        dt = time.monotonic() - t0
        check(dt < 2, "request bytes released %.1fs after the clients left", dt)
        print("    queued.max.request.bytes freed %.2fs after 1000 clients left" % dt)
        probe.close()
        b.stop()


if __name__ == "__main__":
    run_tests(globals())

"""PLAIN logins do not stall the event loop.

A PLAIN password is checked against the stored SCRAM credential: PBKDF2 with the credential's
iterations (here 16384, four times Kafka's minimum and the most --add-scram takes),
milliseconds of CPU per login. The broker runs that on libuv's thread pool (at most the cores
but one at once) with the connection paused, not on the event loop. Measured here: an
unrelated client (its own process, authenticated once) sends small acks=1 Produce requests
back to back on one connection and records each round trip, while 200 connections log in with
PLAIN at once (raw SaslHandshake v1 + SaslAuthenticate v0 frames, every authenticate sent
before any answer is read), and 20 more log in with a wrong password. Every right password
succeeds, every wrong one gets SASL_AUTHENTICATION_FAILED and its connection is closed, and the
unrelated client's worst round trip during the burst stays well below the PBKDF2 time of the
burst (which is what it was when PBKDF2 ran on the loop: 2963 ms for a 2779 ms burst).
"""

import hashlib
import json
import multiprocessing
import os
import socket
import time

from depot_harness import (Reader, check, frame, i16, i32, kstr, record_batch, recv_frame,
                           run_tests)
from sasl_harness import SaslBroker

ITER = 16384
N_OK, N_BAD = 200, 20


def kbytes(b):
    return i32(len(b)) + b


def plain_login(sock, user, pw, cid=1):
    """SaslHandshake v1 (PLAIN) then SaslAuthenticate v0; returns the error code."""
    sock.sendall(frame(17, 1, cid, kstr("PLAIN")))
    r = Reader(recv_frame(sock))
    r.i32()
    check(r.i16() == 0, "handshake refused")
    sock.sendall(frame(36, 0, cid + 1, kbytes(b"\0" + user.encode() + b"\0" + pw.encode())))
    r = Reader(recv_frame(sock))
    r.i32()
    return r.i16()


def probe_main(port, topic, out_path, stop_path):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    err = plain_login(s, "admin", "admin-secret")
    rtts = []
    batch = record_batch([b"p"])
    body = (kstr(None) + i16(1) + i32(10000) + i32(1) + kstr(topic) + i32(1) + i32(0) +
            i32(len(batch)) + batch)
    cid = 100
    while not os.path.exists(stop_path):
        cid += 1
        t0 = time.monotonic()
        s.sendall(frame(0, 3, cid, body))
        r = Reader(recv_frame(s))
        rtts.append((t0, time.monotonic() - t0))
        check(r.i32() == cid, "probe: wrong correlation id")
        r.i32(), r.str(), r.i32(), r.i32()
        check(r.i16() == 0, "probe: produce failed")
    with open(out_path, "w") as f:
        json.dump({"login": err, "rtts": rtts}, f)


def burst(port):
    """N_OK right and N_BAD wrong PLAIN logins at once. Returns (ok, failed, closed, seconds)."""
    socks = []
    for i in range(N_OK + N_BAD):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(60)
        s.sendall(frame(17, 1, 1, kstr("PLAIN")))
        socks.append(s)
    for s in socks:
        r = Reader(recv_frame(s))
        r.i32()
        check(r.i16() == 0, "handshake refused")
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        pw = "alice-pw" if i < N_OK else "wrong-%d" % i
        s.sendall(frame(36, 0, 2, kbytes(b"\0alice\0" + pw.encode())))
    ok = failed = closed = 0
    for i, s in enumerate(socks):
        r = Reader(recv_frame(s))
        check(r.i32() == 2, "wrong correlation id")
        err = r.i16()
        if i < N_OK:
            check(err == 0, "login %d failed with %d", i, err)
            ok += 1
        else:
            check(err == 58, "wrong password answered %d, not SASL_AUTHENTICATION_FAILED", err)
            failed += 1
            s.settimeout(5)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
    took = time.monotonic() - t0
    for s in socks:
        s.close()
    return ok, failed, closed, took


def test_concurrent_plain_logins_do_not_stall_others():
    settings = {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"}
    with SaslBroker(settings=settings, iterations=ITER) as b:
        from kafka.admin import NewTopic
        from test_audit import admin
        a = admin(b)
        a.create_topics([NewTopic("probe", 1, 1)])
        a.close()
        t0 = time.monotonic()
        for _ in range(5):
            hashlib.pbkdf2_hmac("sha256", b"alice-pw", b"0123456789abcdef", ITER)
        one = (time.monotonic() - t0) / 5
        out, stop = os.path.join(b.tmp, "probe.json"), os.path.join(b.tmp, "probe.stop")
        p = multiprocessing.get_context("fork").Process(target=probe_main,
                                                        args=(b.port, "probe", out, stop))
        p.start()
        time.sleep(1.0)  # baseline
        start = time.monotonic()
        ok, failed, closed, took = burst(b.port)
        end = time.monotonic()
        time.sleep(0.5)
        open(stop, "w").close()
        p.join(30)
        check(p.exitcode == 0, "probe exited with %r", p.exitcode)
        with open(out) as f:
            res = json.load(f)
        check(res["login"] == 0, "probe login failed")
        base = [rtt for t, rtt in res["rtts"] if t < start - 0.1]
        during = [rtt for t, rtt in res["rtts"] if start <= t <= end]
        check(base and during, "probe measured nothing (%d/%d)", len(base), len(during))
        check(ok == N_OK and failed == N_BAD and closed == N_BAD,
              "ok %d failed %d closed %d", ok, failed, closed)
        worst, total_pbkdf2 = max(during), one * (N_OK + N_BAD)
        print("  %d PLAIN logins + %d wrong passwords in %.2fs (PBKDF2 %d iterations: %.1f ms "
              "each, %.0f ms for the burst); unrelated client: %d round trips during the burst, "
              "worst %.1f ms, median %.2f ms (baseline before the burst: worst %.1f ms)"
              % (ok, failed, took, ITER, one * 1000, total_pbkdf2 * 1000, len(during),
                 worst * 1000, sorted(during)[len(during) // 2] * 1000, max(base) * 1000))
        if os.environ.get("PLAIN_STALL_NO_CHECK") != "1":
            check(worst < max(0.5 * total_pbkdf2, 0.05),
                  "an unrelated client stalled %.0f ms during %d PLAIN logins (PBKDF2 total "
                  "%.0f ms): is PBKDF2 on the event loop?", worst * 1000, N_OK + N_BAD,
                  total_pbkdf2 * 1000)


def test_clients_leaving_during_the_check():
    """Connections that close while their PLAIN check runs on the thread pool: the broker drops
    the answers, touches no freed state (the suite also runs under ASan) and serves the next
    client."""
    settings = {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"}
    with SaslBroker(settings=settings, iterations=ITER) as b:
        for rnd in range(3):
            socks = []
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", b.port))
                s.sendall(frame(17, 1, 1, kstr("PLAIN")))
                socks.append(s)
            for s in socks:
                recv_frame(s)
            for i, s in enumerate(socks):
                s.sendall(frame(36, 0, 2, kbytes(b"\0alice\0" +
                                                 (b"alice-pw" if i % 2 else b"bad"))))
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                s.close()  # RST while the check runs
        time.sleep(1)
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(30)
        check(plain_login(s, "alice", "alice-pw") == 0, "login after the leavers failed")
        s.close()
        check(b.alive(), "broker died")
        b.stop()  # exits 0: nothing leaked or left pending
        print("  150 clients left during their PLAIN check; the next login worked, clean stop")


if __name__ == "__main__":
    run_tests(globals())

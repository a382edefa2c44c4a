"""Start-up order (broker/core/server.c): SIGTERM and SIGINT are held from main's first line and
handled by the loop, every subsystem is up before the Kafka port listens. So a SIGTERM at any
moment of start-up stops the broker cleanly (exit 0, store closed cleanly, the next start
recovers nothing), and the first request on a port that just began to accept meets a whole
broker. SIGHUP (the TLS certificate reload) is held from the same line: one during start-up,
or on a broker without TLS, is not fatal. Run with /usr/bin/python3.

Moments are counted from when the process has SIGTERM in hand (its /proc status shows it
blocked or caught: main's first line), not from the spawn: before that the dynamic loader
runs, and a SIGTERM there takes the default action in any program."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, api_versions, check, fetch_v4_batches, free_port,  # noqa: E402
                           produce_v3, record_batch, run_tests)
from tls_certs import make_all  # noqa: E402

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
UNCLEAN = "not cleanly shut down"
# settings that bring more subsystems up during start-up (audit trail, an HTTP listener for
# /metrics), so the window between the first instruction and the port is as wide as it gets
SETTINGS = {"audit.enabled": "true", "num.partitions": "8"}


def sigterm_in_hand(pid):
    """True once the process blocks or catches SIGTERM (or has gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    except OSError:
        return True
    return bool((int(st["SigBlk"], 16) | int(st["SigCgt"], 16)) & SIGTERM_BIT)


def connects(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def spawn(b):
    with open(b.log_path, "ab") as log:
        log.write(b"\n=== start (signal test) on port %d\n" % b.port)
        log.flush()
        return subprocess.Popen(b._args(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                close_fds=True)


def log_size(b):
    return os.path.getsize(b.log_path)


def log_since(b, pos):
    with open(b.log_path, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")


def wait_exit(proc, what):
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("%s: no exit within 30 s of SIGTERM" % what)
    check(rc == 0, "%s: exit status %d after SIGTERM (want 0, a clean stop)", what, rc)


def produce_some(b, n):
    for _ in range(100):  # the first produce may create the topic
        err, _ = produce_v3(b.port, "early", 0, record_batch([b"v%d" % i for i in range(n)]))
        if err == 0:
            return
        time.sleep(0.05)
    raise AssertionError("produce kept failing: error %d" % err)


def test_sigterm_at_every_moment_of_start_up_is_a_clean_stop():
    with Broker(settings=SETTINGS, name="sigstart") as b:
        produce_some(b, 5)
        b.stop()
        moments = [("in hand +0 ms", 0.0), ("in hand +1 ms", 0.001), ("in hand +3 ms", 0.003),
                   ("in hand +10 ms", 0.010), ("in hand +30 ms", 0.030), ("port accepts", None),
                   ("port accepts +20 ms", "accept+0.02")]
        seen = []
        for what, delay in moments:
            pos = log_size(b)
            t0 = time.monotonic()
            proc = spawn(b)
            if isinstance(delay, float):
                while not sigterm_in_hand(proc.pid):
                    pass
                t_hand = time.monotonic()
                while time.monotonic() - t_hand < delay:
                    pass
            else:  # polled from the spawn on: the port must not accept before SIGTERM is in hand
                s = None
                deadline = time.monotonic() + 20
                while s is None and proc.poll() is None and time.monotonic() < deadline:
                    s = connects(b.port)
                check(s is not None, "%s: the port never accepted", what)
                s.close()
                if delay == "accept+0.02":
                    time.sleep(0.02)
            t_sig = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            wait_exit(proc, what)
            out = log_since(b, pos)
            check(UNCLEAN not in out, "%s: this start found the last one unclean:\n%s", what, out)
            check("store closed cleanly" in out, "%s: no 'store closed cleanly':\n%s", what, out)
            seen.append("%s (%.1f ms after spawn)" % (what, (t_sig - t0) * 1000))
        # the restart after the last one: nothing to recover, the records are all there
        pos = log_size(b)
        b.start()
        out = log_since(b, pos)
        check(UNCLEAN not in out, "restart found an unclean store:\n%s", out)
        err, hw, batches = fetch_v4_batches(b.port, "early", 0)
        check(err == 0 and hw == 5, "after the restarts: fetch error %d, high watermark %d (want 5)",
              err, hw)
        b.stop()
        print("    %d SIGTERMs during start-up, each exit 0 and a clean store: %s"
              % (len(seen), "; ".join(seen)))


def test_sigint_during_start_up_is_a_clean_stop():
    with Broker(settings=SETTINGS, name="sigint", start=False) as b:
        b.port = free_port()
        proc = spawn(b)
        while not sigterm_in_hand(proc.pid):
            pass
        proc.send_signal(signal.SIGINT)
        wait_exit(proc, "SIGINT in hand +0 ms")
        out = log_since(b, 0)
        check("received SIGINT" in out and "store closed cleanly" in out,
              "SIGINT during start-up: no clean stop in the log:\n%s", out)


def test_first_request_when_the_port_accepts_is_answered_fully():
    """ApiVersions sent on the very first connection the port accepts gets the same full answer
    as one sent to the settled broker."""
    with Broker(settings=SETTINGS, name="firstreq", start=False) as b:
        b.port = free_port()
        proc = spawn(b)
        s = None
        deadline = time.monotonic() + 20
        while s is None and proc.poll() is None and time.monotonic() < deadline:
            s = connects(b.port)
        check(s is not None, "the port never accepted (status %r)", proc.poll())
        s.settimeout(10)
        err, first = api_versions(b.port, sock=s)
        s.close()
        check(err == 0, "first ApiVersions: error %d", err)
        err, settled = api_versions(b.port)
        check(first == settled and len(first) >= 20,
              "first ApiVersions answered %d APIs, the settled broker %d", len(first), len(settled))

        proc.send_signal(signal.SIGTERM)
        wait_exit(proc, "SIGTERM after the first requests")
        print("    first connection's ApiVersions: %d APIs, as the settled broker's" % len(first))


def tls_handshake(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


def test_sighup_during_start_up_is_not_fatal():
    """SIGHUP at moments of start-up (before the TLS watchers exist, and after), with a TLS
    listener and without one: the broker comes up, serves TLS with the certificates it read,
    and stops cleanly on SIGTERM. A SIGHUP used to take the default action until the TLS
    subsystem was up (and on a broker without TLS, always): the process was gone."""
    with Broker(settings=SETTINGS, name="sighup", start=False) as b:
        certs = make_all(os.path.join(b.tmp, "certs"))
        open(b.log_path, "ab").close()
        moments = [("in hand +0 ms", 0.0), ("in hand +1 ms", 0.001), ("in hand +3 ms", 0.003),
                   ("in hand +10 ms", 0.010), ("in hand +30 ms", 0.030), ("port accepts", None)]
        tls = dict(SETTINGS, **{"ssl.keystore.location": certs["server_pem"],
                                "ssl.truststore.location": certs["ca"]})
        seen = []
        for with_tls in (True, False):
            for what, delay in moments:
                b.port, tls_port = free_port(), free_port()
                b.settings = dict(tls) if with_tls else dict(SETTINGS)
                if with_tls:
                    b.settings["listeners"] = ("PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d"
                                               % (b.port, tls_port))
                label = "%s, %s" % (what, "TLS" if with_tls else "no TLS")
                pos = log_size(b)
                proc = spawn(b)
                if delay is not None:
                    while not sigterm_in_hand(proc.pid):
                        pass
                    t_hand = time.monotonic()
                    while time.monotonic() - t_hand < delay:
                        pass
                else:
                    s = None
                    deadline = time.monotonic() + 20
                    while s is None and proc.poll() is None and time.monotonic() < deadline:
                        s = connects(b.port)
                    check(s is not None, "%s: the port never accepted", label)
                    s.close()
                proc.send_signal(signal.SIGHUP)
                s = None
                deadline = time.monotonic() + 20
                while s is None and proc.poll() is None and time.monotonic() < deadline:
                    s = connects(b.port)
                check(s is not None and proc.poll() is None,
                      "%s: the broker did not survive a SIGHUP (status %r):\n%s",
                      label, proc.poll(), log_since(b, pos))
                s.close()
                err, apis = api_versions(b.port)
                check(err == 0 and len(apis) >= 20, "%s: ApiVersions error %d", label, err)
                if with_tls:
                    v = tls_handshake(tls_port, certs["ca"])
                    check(v is not None, "%s: no TLS handshake", label)
                proc.send_signal(signal.SIGTERM)
                wait_exit(proc, label)
                out = log_since(b, pos)
                check("store closed cleanly" in out, "%s: no 'store closed cleanly':\n%s",
                      label, out)
                seen.append(label)
        print("    %d SIGHUPs during start-up, each survived (TLS served where configured) and "
              "a clean stop after" % len(seen))


if __name__ == "__main__":
    if os.path.basename(os.environ.get("DEPOT_BIN", "")) == "valgrind-depot":
        # memcheck catches every signal from before the broker's main runs, so the moment the
        # broker has them in hand cannot be seen from /proc; and a signal to it is one to
        # valgrind first
        print("  SKIP test_startup_signals.py: not under valgrind (valgrind owns the signal "
              "dispositions from before main)")
        sys.exit(0)
    run_tests(globals())

"""SASL on a SASL_PLAINTEXT listener with real clients: kcat (librdkafka), confluent-kafka and
kafka-python (its SaslHandshake v0 raw-token flow) each authenticate with SCRAM-SHA-256,
SCRAM-SHA-512 and PLAIN, produce and consume. Wrong password, unknown user, unknown
mechanism and requests before authentication end in a clean error and a closed connection
while the broker keeps serving others. Credentials come from depot --add-scram and are never
stored in plain text. KIP-368 session lifetime is checked on the wire."""

import os
import socket
import struct
import subprocess
import time

from depot_harness import (DEPOT_BIN, check, connect, frame, free_port, i32, kstr,
                           recv_frame, run_tests)
from sasl_harness import SaslBroker

MECHS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


def kcat(b, *args, user="admin", pw="admin-secret", mech="SCRAM-SHA-256", stdin=None,
         timeout=30):
    cmd = ["kcat", "-b", b.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
           "-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + user,
           "-X", "sasl.password=" + pw] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


def test_add_scram_stores_no_password():
    with SaslBroker() as b:
        path = os.path.join(b.data_dir, "__scram_credentials")
        text = open(path).read()
        for pw in b.users.values():
            check(pw not in text, "plaintext password %r in the credential file", pw)
        check(text.count("SCRAM-SHA-256 4096") == 3 and text.count("SCRAM-SHA-512 4096") == 3,
              "expected 3 users x 2 mechanisms:\n%s", text)
        r = subprocess.run([DEPOT_BIN, "--set", "log.dirs=%s" % b.data_dir, "--add-scram",
                            "SCRAM-SHA-256=[name=x,password=y,iterations=10]"],
                           capture_output=True, text=True)
        check(r.returncode == 2 and "iterations" in r.stderr, "bad iterations: %r", r)


def test_kcat_all_mechanisms():
    with SaslBroker() as b:
        for mech in MECHS:
            r = kcat(b, "-P", "-t", "kc", mech=mech, stdin="via-%s\n" % mech)
            check(r.returncode == 0, "kcat produce %s: %s", mech, r.stderr)
        r = kcat(b, "-C", "-t", "kc", "-o", "beginning", "-e", "-q", mech="SCRAM-SHA-512",
                 user="alice", pw="alice-pw")
        check(r.returncode == 0, "kcat consume: %s", r.stderr)
        got = sorted(r.stdout.split())
        check(got == sorted("via-" + m for m in MECHS), "consumed %r", got)


def test_confluent_kafka_all_mechanisms():
    from confluent_kafka import Consumer, Producer
    with SaslBroker() as b:
        for mech in MECHS:
            conf = {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": mech, "sasl.username": "bob", "sasl.password": "bob-pw"}
            p = Producer(dict(conf))
            errors = []
            for i in range(10):
                p.produce("ck-" + mech.lower(), ("%s-%d" % (mech, i)).encode(),
                          on_delivery=lambda e, m: e and errors.append(e))
            left = p.flush(30)
            check(left == 0 and not errors, "%s: %d undelivered, errors %r", mech, left, errors)
            c = Consumer(dict(conf, **{"group.id": "g-" + mech, "auto.offset.reset": "earliest"}))
            c.subscribe(["ck-" + mech.lower()])
            got, deadline = [], time.time() + 30
            while len(got) < 10 and time.time() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m.value().decode())
            c.close()
            check(sorted(got) == sorted("%s-%d" % (mech, i) for i in range(10)),
                  "%s consumed %r", mech, got)


def test_kafka_python_all_mechanisms():
    from kafka import KafkaConsumer, KafkaProducer
    with SaslBroker() as b:
        for mech in MECHS:
            conf = dict(bootstrap_servers=b.bootstrap, security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism=mech, sasl_plain_username="alice",
                        sasl_plain_password="alice-pw", api_version=(2, 0, 0))
            topic = "kp-" + mech.lower()
            p = KafkaProducer(**conf)
            for i in range(5):
                p.send(topic, b"kp-%d" % i).get(timeout=30)
            p.close()
            c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=8000,
                              **conf)
            got = []
            for m in c:
                got.append(m.value)
                if len(got) == 5:
                    break
            c.close()
            check(sorted(got) == [b"kp-%d" % i for i in range(5)], "%s consumed %r", mech, got)
        check("authenticated as User:alice" in b.log_tail(400), "no success in the log")


def test_failures_close_cleanly_and_others_are_served():
    with SaslBroker(settings={"audit.enabled": "true"}) as b:
        r = kcat(b, "-L", "-m", "5", pw="wrong", timeout=20)
        check(r.returncode != 0 and "Authentication failed" in r.stderr,
              "wrong password: rc %d %s", r.returncode, r.stderr[-500:])
        r = kcat(b, "-L", "-m", "5", user="mallory", pw="x", mech="SCRAM-SHA-512", timeout=20)
        check(r.returncode != 0 and "Authentication failed" in r.stderr,
              "unknown user: %s", r.stderr[-500:])
        r = kcat(b, "-L", "-m", "5", user="mallory", pw="x", mech="PLAIN", timeout=20)
        check(r.returncode != 0 and "Authentication failed" in r.stderr,
              "unknown user PLAIN: %s", r.stderr[-500:])
        # A client without SASL on the SASL port: its Metadata closes the connection.
        r = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-m", "3"], capture_output=True,
                           text=True, timeout=20)
        check(r.returncode != 0, "plaintext client got metadata: %s", r.stdout)
        # Unknown mechanism: error 33 with the enabled list, then the connection closes.
        s = connect(b.port)
        s.sendall(frame(17, 1, 5, kstr("GSSAPI")))
        body = recv_frame(s)
        err = struct.unpack(">h", body[4:6])[0]
        check(err == 33 and b"SCRAM-SHA-256" in body, "handshake GSSAPI: %r", body)
        s.sendall(frame(3, 1, 6, i32(-1)))
        check(_closed(s), "connection open after a refused mechanism")
        # Wrong PLAIN password through SaslAuthenticate v1: error 58, then closed.
        s = connect(b.port)
        _handshake(s, "PLAIN")
        s.sendall(frame(36, 1, 9, _bytes(b"\0admin\0nope")))
        body = recv_frame(s)
        check(struct.unpack(">h", body[4:6])[0] == 58, "bad password answer %r", body)
        check(_closed(s), "connection open after failed authentication")
        # Metadata before authenticating: closed without an answer.
        s = connect(b.port)
        s.sendall(frame(3, 1, 10, i32(-1)))
        check(_closed(s), "metadata served before authentication")
        # ...and everyone else is still served.
        r = kcat(b, "-L")
        check(r.returncode == 0, "good client after failures: %s", r.stderr)
        log = b.log_tail(400)
        check("authentication failed for user 'mallory'" in log, "no failure logged:\n%s", log)
        # every failure has its audit record
        import json
        r = kcat(b, "-C", "-t", "__audit", "-o", "beginning", "-e", "-q")
        recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        fails = [(x["principal"], x["resource_name"], x["error"]) for x in recs
                 if x["operation"] == "AUTHENTICATE" and not x["allowed"]]
        for want in [("User:admin", "SCRAM-SHA-256", "SASL_AUTHENTICATION_FAILED"),
                     ("User:mallory", "SCRAM-SHA-512", "SASL_AUTHENTICATION_FAILED"),
                     ("User:mallory", "PLAIN", "SASL_AUTHENTICATION_FAILED"),
                     ("User:admin", "PLAIN", "SASL_AUTHENTICATION_FAILED"),
                     ("User:ANONYMOUS", "GSSAPI", "UNSUPPORTED_SASL_MECHANISM")]:
            check(want in fails, "no audit record %r in %r", want, fails)
        check([f for f in fails if f[2] == "ILLEGAL_SASL_STATE"],
              "request before authentication not audited: %r", fails)


def _bytes(b):
    return i32(len(b)) + b


def _handshake(s, mech, corr=8):
    s.sendall(frame(17, 1, corr, kstr(mech)))
    body = recv_frame(s)
    check(struct.unpack(">h", body[4:6])[0] == 0, "handshake %s: %r", mech, body)


def _closed(s, timeout=5.0):
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def _plain_auth(s, corr):
    s.sendall(frame(36, 1, corr, _bytes(b"\0admin\0admin-secret")))
    body = recv_frame(s)
    err = struct.unpack(">h", body[4:6])[0]
    check(err == 0, "PLAIN auth: error %d", err)
    return struct.unpack(">q", body[-8:])[0]  # session_lifetime_ms (v1)


def test_session_lifetime_and_reauthentication():
    with SaslBroker(settings={"connections.max.reauth.ms": 1500}) as b:
        s = connect(b.port)
        _handshake(s, "PLAIN")
        life = _plain_auth(s, 11)
        check(life == 1500, "session_lifetime_ms %d", life)
        time.sleep(1.0)
        _handshake(s, "PLAIN", corr=12)  # KIP-368 re-authentication before expiry
        _plain_auth(s, 13)
        time.sleep(1.0)  # 2 s after the first login, 1 s after the second: still valid
        s.sendall(frame(3, 1, 14, i32(-1)))
        check(len(recv_frame(s)) > 8, "metadata after re-authentication")
        time.sleep(1.8)  # now past the second session's end
        s.sendall(frame(3, 1, 15, i32(-1)))
        check(_closed(s), "expired session still served")


class MixedBroker(SaslBroker):
    """SASL_PLAINTEXT on port, plus an anonymous PLAINTEXT listener named INTERNAL on port2."""
    port2 = None

    def _args(self):
        if self.port2 is None:
            self.port2 = free_port()
        return super()._args() + [
            "--set", "listeners=SASL_PLAINTEXT://127.0.0.1:%d,INTERNAL://127.0.0.1:%d"
            % (self.port, self.port2),
            "--set", "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "INTERNAL:PLAINTEXT"]


def test_sasl_is_per_listener():
    with MixedBroker() as b:
        r = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % b.port2, "-L", "-m", "5"],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0, "PLAINTEXT listener needs no SASL: %s", r.stderr)
        s = connect(b.port2)  # SaslHandshake on a listener without SASL: ILLEGAL_SASL_STATE
        s.sendall(frame(17, 1, 3, kstr("PLAIN")))
        body = recv_frame(s)
        check(struct.unpack(">h", body[4:6])[0] == 34, "handshake on PLAINTEXT: %r", body)
        s = connect(b.port)
        s.sendall(frame(3, 1, 4, i32(-1)))
        check(_closed(s), "SASL listener served metadata without authentication")
        r = kcat(b, "-L", "-m", "5")
        check(r.returncode == 0, "SASL listener with SCRAM: %s", r.stderr)


if __name__ == "__main__":
    run_tests(globals())

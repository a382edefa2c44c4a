"""TLS with real clients and certificates made here with openssl: kcat, confluent-kafka and
kafka-python over SASL_SSL with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN (produce + consume);
mutual TLS on an SSL listener gives the principal User:CN=client,OU=plant,O=acme (checked
through an ACL); a TLS client on the plaintext port, a plaintext client on the TLS port and a
handshake that stalls end cleanly while others are served; certificates are re-read on
SIGHUP (a new connection sees the new certificate)."""

import os
import signal
import socket
import subprocess
import time

from depot_harness import check, free_port, run_tests
from sasl_harness import SaslBroker
from tls_certs import make_all, make_cert

MECHS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


class TlsBroker(SaslBroker):
    """SASL_SSL on port, SSL (client certificates requested) on port2, PLAINTEXT on port3."""
    port2 = port3 = None

    def __init__(self, settings=None, **kw):
        self.certdir = None
        super().__init__(settings=settings, **kw)

    def _args(self):
        if self.port2 is None:
            self.port2, self.port3 = free_port(), free_port()
        if self.certdir is None:
            self.certdir = os.path.join(self.tmp, "certs")
            self.certs = make_all(self.certdir)
        return super()._args() + [
            "--set", "listeners=SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d"
            % (self.port, self.port2, self.port3),
            "--set", "ssl.keystore.location=" + self.certs["server_pem"],
            "--set", "ssl.truststore.location=" + self.certs["ca"],
            "--set", "ssl.client.auth=requested", "--set", "ssl.handshake.timeout.ms=1500"]


def kcat(b, *args, mech="SCRAM-SHA-256", user="admin", pw="admin-secret", stdin=None, port=None):
    cmd = ["kcat", "-b", "127.0.0.1:%d" % (port or b.port), "-X", "security.protocol=SASL_SSL",
           "-X", "ssl.ca.location=" + b.certs["ca"], "-X", "sasl.mechanisms=" + mech,
           "-X", "sasl.username=" + user, "-X", "sasl.password=" + pw, "-m", "8"] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=40)


def test_sasl_ssl_kcat_confluent_kafka_python():
    from confluent_kafka import Consumer, Producer
    from kafka import KafkaConsumer, KafkaProducer
    with TlsBroker() as b:
        for mech in MECHS:
            r = kcat(b, "-P", "-t", "tk", mech=mech, stdin="kcat-%s\n" % mech)
            check(r.returncode == 0, "kcat %s: %s", mech, r.stderr)
        r = kcat(b, "-C", "-t", "tk", "-o", "beginning", "-e", "-q", user="alice", pw="alice-pw")
        check(sorted(r.stdout.split()) == sorted("kcat-" + m for m in MECHS), "kcat: %r", r)
        for mech in MECHS:
            conf = {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_SSL",
                    "ssl.ca.location": b.certs["ca"], "sasl.mechanism": mech,
                    "sasl.username": "bob", "sasl.password": "bob-pw"}
            p = Producer(dict(conf))
            p.produce("tc-" + mech.lower(), b"ck")
            check(p.flush(30) == 0, "confluent-kafka %s produce", mech)
            c = Consumer(dict(conf, **{"group.id": "g" + mech, "auto.offset.reset": "earliest"}))
            c.subscribe(["tc-" + mech.lower()])
            got, end = None, time.time() + 30
            while got is None and time.time() < end:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got = m.value()
            c.close()
            check(got == b"ck", "confluent-kafka %s consume: %r", mech, got)
            kconf = dict(bootstrap_servers=b.bootstrap, security_protocol="SASL_SSL",
                         ssl_cafile=b.certs["ca"], ssl_check_hostname=True, sasl_mechanism=mech,
                         sasl_plain_username="alice", sasl_plain_password="alice-pw",
                         api_version=(2, 0, 0))
            kp = KafkaProducer(**kconf)
            kp.send("tp-" + mech.lower(), b"kp").get(timeout=30)
            kp.close()
            kc = KafkaConsumer("tp-" + mech.lower(), auto_offset_reset="earliest",
                               consumer_timeout_ms=8000, **kconf)
            got = None
            for m in kc:
                got = m.value
                break
            kc.close()
            check(got == b"kp", "kafka-python %s: %r", mech, got)


def test_mtls_principal_from_the_client_certificate():
    settings = {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                "super.users": "User:admin"}
    with TlsBroker(settings=settings) as b:
        from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                                 KafkaAdminClient, NewTopic, ResourcePattern, ResourceType)
        a = KafkaAdminClient(bootstrap_servers=b.bootstrap, security_protocol="SASL_SSL",
                             ssl_cafile=b.certs["ca"], sasl_mechanism="SCRAM-SHA-256",
                             sasl_plain_username="admin", sasl_plain_password="admin-secret",
                             api_version=(2, 5, 0))
        a.create_topics([NewTopic("mtls", 1, 1)])
        res = a.create_acls([ACL("User:CN=client,OU=plant,O=acme", "*", op,
                                 ACLPermissionType.ALLOW,
                                 ResourcePattern(ResourceType.TOPIC, "mtls",
                                                 ACLResourcePatternType.LITERAL))
                             for op in (ACLOperation.WRITE, ACLOperation.READ)])
        check(not res["failed"], "acls: %r", res)
        a.close()
        ssl = ["-b", "127.0.0.1:%d" % b.port2, "-X", "security.protocol=SSL",
               "-X", "ssl.ca.location=" + b.certs["ca"], "-m", "8"]
        cert = ["-X", "ssl.certificate.location=" + b.certs["client_crt"],
                "-X", "ssl.key.location=" + b.certs["client_key"]]
        r = subprocess.run(["kcat"] + ssl + cert + ["-P", "-t", "mtls"], input="by-cert\n",
                           capture_output=True, text=True, timeout=40)
        check(r.returncode == 0, "mTLS produce: %s", r.stderr)
        r = subprocess.run(["kcat"] + ssl + cert + ["-C", "-t", "mtls", "-o", "beginning", "-e",
                                                    "-q"], capture_output=True, text=True,
                           timeout=40)
        check(r.stdout.strip() == "by-cert", "mTLS consume: %r", r)
        # Without a certificate the principal is ANONYMOUS: no ACL, no write.
        r = subprocess.run(["kcat"] + ssl + ["-P", "-t", "mtls"], input="anon\n",
                           capture_output=True, text=True, timeout=40)
        check(r.returncode != 0 or "authoriz" in r.stderr.lower(), "anonymous wrote: %r", r)
        check("principal User:CN=client,OU=plant,O=acme" in b.log_tail(300), "principal not logged")


def _closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_wrong_protocol_and_stalled_handshake():
    with TlsBroker(settings={"audit.enabled": "true"}) as b:
        # TLS client on the plaintext port
        r = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % b.port3, "-X", "security.protocol=SSL",
                            "-X", "ssl.ca.location=" + b.certs["ca"], "-L", "-m", "4"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "TLS client got metadata from the plaintext port")
        # plaintext client on the TLS port
        r = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % b.port2, "-L", "-m", "4"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "plaintext client got metadata from the TLS port")
        # a client that connects and never says hello: closed at the deadline (1.5 s)
        s = socket.create_connection(("127.0.0.1", b.port))
        t0 = time.time()
        check(_closed_within(s, 6), "stalled handshake never closed")
        check(time.time() - t0 < 5, "closed only after %.1fs", time.time() - t0)
        # raw garbage on the TLS port: closed at once
        s = socket.create_connection(("127.0.0.1", b.port2))
        s.sendall(b"\x00\x00\x00\x10not a tls hello!")
        check(_closed_within(s, 3), "garbage on TLS port not closed")
        r = kcat(b, "-L")
        check(r.returncode == 0, "others are still served: %s", r.stderr)
        log = b.log_tail(300)
        check("TLS handshake did not finish in time" in log and "TLS handshake failed" in log,
              "handshake failures not logged")
        time.sleep(0.3)
        r = kcat(b, "-C", "-t", "__audit", "-o", "beginning", "-e", "-q")
        import json
        recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        errs = {(x["resource_name"], x["error"], x["listener"]) for x in recs if not x["allowed"]}
        for want in (("KAFKA", "INVALID_REQUEST", "PLAINTEXT"),
                     ("TLS", "SSL_HANDSHAKE_FAILED", "SSL"),
                     ("TLS", "SSL_HANDSHAKE_TIMEOUT", "SASL_SSL")):
            check(want in errs, "no audit record %r in %r", want, errs)


def _server_serial(port, ca):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca,
                        "-servername", "localhost"], input="", capture_output=True, text=True,
                       timeout=20)
    p = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout,
                       capture_output=True, text=True)
    return p.stdout.strip()


def test_certificates_reloaded_on_sighup():
    with TlsBroker() as b:
        before = _server_serial(b.port2, b.certs["ca"])
        check(before.startswith("serial="), "no serial: %r", before)
        _, _, pem = make_cert(b.certdir, "server2", "/CN=localhost", server=True)
        os.replace(pem, b.certs["server_pem"])
        b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        after = _server_serial(b.port2, b.certs["ca"])
        check(after.startswith("serial=") and after != before, "serial %s -> %s", before, after)
        check(b.alive(), "broker died on SIGHUP")
        r = kcat(b, "-L")
        check(r.returncode == 0, "SASL_SSL after reload: %s", r.stderr)


def test_depotctl_over_sasl_ssl():
    """depotctl with a Java-style client properties file (SASL_SSL, PEM truststore): users add /
    list, then produce and consume as the new user over TLS; a wrong CA fails the handshake."""
    depotctl = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/depotctl"))
    with TlsBroker() as b:
        def conf(name, user, pw, ca):
            path = os.path.join(b.tmp, name)
            with open(path, "w") as f:
                f.write("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                        "ssl.truststore.type=PEM\nssl.truststore.location=%s\n"
                        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                        "required username=\"%s\" password=\"%s\";\n" % (ca, user, pw))
            return path

        def ctl(cfgfile, *args, stdin=None):
            return subprocess.run([depotctl] + list(args) + ["--bootstrap-server", b.bootstrap,
                                                             "--command-config", cfgfile],
                                  input=stdin, capture_output=True, text=True, timeout=60)
        admin = conf("admin.properties", "admin", "admin-secret", b.certs["ca"])
        r = ctl(admin, "users", "add", "--user", "frank", "--password", "frank-pw")
        check(r.returncode == 0, "users add over TLS: %s", r.stderr)
        r = ctl(admin, "users", "list")
        check(r.returncode == 0 and "frank\tSCRAM-SHA-512" in r.stdout, "users list: %r", r)
        frank = conf("frank.properties", "frank", "frank-pw", b.certs["ca"])
        r = ctl(frank, "produce", "--topic", "ctl-tls", stdin="f1\nf2\n")
        check(r.returncode == 0, "depotctl produce over SASL_SSL: %s", r.stderr)
        r = ctl(frank, "consume", "--topic", "ctl-tls", "--from-beginning", "--max-messages", "2",
                "--timeout-ms", "10000")
        check(r.returncode == 0 and r.stdout.split() == ["f1", "f2"], "consume: %r", r)
        other_ca = os.path.join(b.tmp, "other")
        os.makedirs(other_ca)
        from tls_certs import make_ca
        bad = conf("bad.properties", "admin", "admin-secret", make_ca(other_ca))
        r = ctl(bad, "users", "list")
        check(r.returncode != 0 and "TLS handshake" in r.stderr, "wrong CA accepted: %r", r)


if __name__ == "__main__":
    run_tests(globals())

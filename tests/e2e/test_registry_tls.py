"""The schema registry (and the metrics listener) over https://, with certificates made here
with openssl: curl with the CA, confluent-kafka's SchemaRegistryClient with ssl.ca.location
(and its AvroSerializer/AvroDeserializer round trip where a venv with fastavro exists), a
client with the wrong CA refused, a plain HTTP request on the TLS port closed without an
answer, a stalled handshake closed at ssl.handshake.timeout.ms while others are served, the
certificates re-read on SIGHUP, schema.registry.ssl.* of its own beside the broker's ssl.*
(with client certificates REQUIRED), and basic auth over TLS (good password 200, bad 401)."""

import json
import os
import signal
import socket
import subprocess
import time

from depot_harness import DEPOT_BIN, Broker, check, free_port, port_accepts, run_tests
from tls_certs import make_all, make_ca, make_cert

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
V1 = {"type": "record", "name": "Reading", "namespace": "plant",
      "fields": [{"name": "sensor", "type": "string"}, {"name": "temp", "type": "double"}]}
CT = "application/vnd.schemaregistry.v1+json"
# requests lets these override a session's verify= (what ssl.ca.location sets in
# SchemaRegistryClient): with them set, the client would check our server against the system
# CAs instead of the test's CA.
for _v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_v, None)


class TlsRegistry(Broker):
    """A broker whose registry listens on https:// (reg_port) and http:// (reg_plain), and whose
    metrics listener is https:// (met_port); certificates under tmp/certs. extra: more
    settings, or a function of the broker returning them (to name certificates it made)."""

    def __init__(self, extra=None, users=None):
        super().__init__(name="depot-regtls", start=False)
        self.certdir = os.path.join(self.tmp, "certs")
        self.certs = make_all(self.certdir)
        self.reg_port, self.reg_plain, self.met_port = free_port(), free_port(), free_port()
        self.url = "https://127.0.0.1:%d" % self.reg_port
        self.settings.update({
            "schema.registry.listeners": "%s,http://127.0.0.1:%d" % (self.url, self.reg_plain),
            "metrics.listeners": "https://127.0.0.1:%d" % self.met_port,
            "ssl.keystore.location": self.certs["server_pem"],
            "ssl.handshake.timeout.ms": "1500"})
        self.settings.update((extra(self) if callable(extra) else extra) or {})
        for u, pw in (users or {}).items():
            r = subprocess.run([DEPOT_BIN, "--set", "log.dirs=%s" % self.data_dir, "--add-scram",
                                "SCRAM-SHA-256=[name=%s,password=%s]" % (u, pw)],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode == 0, "--add-scram: %s", r.stderr)
        self.start()
        deadline = time.monotonic() + 10
        while not (port_accepts(self.reg_port) and port_accepts(self.met_port)):
            check(time.monotonic() < deadline, "https listeners never listened:\n%s",
                  self.log_tail())
            time.sleep(0.05)


def curl(*args, data=None):
    cmd = ["curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}"] + list(args)
    if data is not None:
        cmd += ["-X", "POST", "-H", "Content-Type: " + CT, "--data-binary", json.dumps(data)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code or 0), body, r.stderr


def serial(port, ca):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca,
                        "-servername", "localhost"], input="", capture_output=True, text=True,
                       timeout=20)
    p = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout,
                       capture_output=True, text=True)
    return p.stdout.strip()


def closed_within(s, seconds):
    """True when the peer closes s (EOF or reset) within seconds; the bytes it sent first
    are returned in closed_within.got."""
    s.settimeout(seconds)
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except socket.timeout:
        closed_within.got = got
        return False
    except ConnectionResetError:
        pass
    closed_within.got = got
    return True


def test_curl_https_wrong_ca_and_metrics():
    with TlsRegistry() as b:
        ca = b.certs["ca"]
        rc, code, body, err = curl("--cacert", ca, b.url + "/subjects/t-value/versions",
                                   data={"schema": json.dumps(V1)})
        check(rc == 0 and code == 200 and json.loads(body) == {"id": 1},
              "register over https: rc %d %d %r %s", rc, code, body, err)
        rc, code, body, err = curl("--cacert", ca, b.url + "/subjects")
        check(rc == 0 and code == 200 and json.loads(body) == ["t-value"], "subjects: %r %s",
              body, err)
        # the plain address of the same listener serves the same registry
        rc, code, body, _ = curl("http://127.0.0.1:%d/schemas/ids/1" % b.reg_plain)
        check(code == 200 and "Reading" in body, "http:// beside https://: %d %r", code, body)
        # another CA: curl refuses the server's certificate (exit 60), nothing is answered
        other = os.path.join(b.tmp, "other")
        os.makedirs(other)
        rc, code, body, err = curl("--cacert", make_ca(other), b.url + "/subjects")
        check(rc == 60 and code == 0, "wrong CA accepted: rc %d code %d %s", rc, code, err)
        rc, code, _, err = curl(b.url + "/subjects")  # the system CAs do not know ours either
        check(rc == 60, "no CA: rc %d %s", rc, err)
        # metrics.listeners=https:// with the broker's ssl.*
        rc, code, body, err = curl("--cacert", ca, "https://127.0.0.1:%d/healthz" % b.met_port)
        check(rc == 0 and code == 200, "metrics over https: rc %d %d %s", rc, code, err)
        rc, code, body, err = curl("--cacert", ca, "https://127.0.0.1:%d/metrics" % b.met_port)
        check(code == 200 and "depot_" in body, "metrics over https: %d", code)
        check(b.alive(), "broker died")


def test_confluent_schema_registry_client_https():
    """SchemaRegistryClient (Debian's confluent-kafka, requests underneath) with https:// and
    ssl.ca.location; the wrong CA is refused; the Avro serializer round trip runs in the venv
    that has fastavro (scripts/install-deps --test), or says why it cannot."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    with TlsRegistry() as b:
        sr = SchemaRegistryClient({"url": b.url, "ssl.ca.location": b.certs["ca"]})
        sid = sr.register_schema("py-value", Schema(json.dumps(V1), "AVRO"))
        check(sid == 1, "register: id %r", sid)
        check(sr.get_subjects() == ["py-value"], "subjects: %r", sr.get_subjects())
        check(json.loads(sr.get_schema(1).schema_str)["name"] == "Reading", "get_schema(1)")
        other = os.path.join(b.tmp, "other")
        os.makedirs(other)
        bad = SchemaRegistryClient({"url": b.url, "ssl.ca.location": make_ca(other)})
        try:
            bad.get_subjects()
            refused = None
        except Exception as e:  # requests.exceptions.SSLError
            refused = e
        check(refused is not None and "certificate" in str(refused).lower(),
              "the wrong CA was not refused: %r", refused)
        print("  PASS SchemaRegistryClient over https (and the wrong CA refused)")
        avro_round_trip(b)


AVRO_CODE = r"""
import json, sys
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
url, ca, schema = sys.argv[1], sys.argv[2], sys.argv[3]
sr = SchemaRegistryClient({"url": url, "ssl.ca.location": ca})
ctx = SerializationContext("avro-tls", MessageField.VALUE)
data = AvroSerializer(sr, schema)({"sensor": "s1", "temp": 21.5}, ctx)
assert data[0] == 0, data[:5]
sid = int.from_bytes(data[1:5], "big")
fresh = SchemaRegistryClient({"url": url, "ssl.ca.location": ca})
back = AvroDeserializer(fresh)(data, ctx)
print(json.dumps({"id": sid, "back": back, "subjects": fresh.get_subjects()}))
"""


def avro_round_trip(b):
    cands = [os.path.join(ROOT, "build/venv-registry/bin/python3"),
             os.path.join(ROOT, "build/venv/bin/python3")]
    py = next((p for p in cands if os.path.exists(p) and subprocess.run(
        [p, "-c", "import fastavro, confluent_kafka.schema_registry.avro"],
        capture_output=True).returncode == 0), None)
    if py is None:
        print("  SKIP AvroSerializer over https: no venv with fastavro (build/venv-registry or "
              "build/venv; scripts/install-deps --test makes them where PyPI is reachable)")
        return
    r = subprocess.run([py, "-c", AVRO_CODE, b.url, b.certs["ca"], json.dumps(V1)],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "AvroSerializer over https (%s): %s", py, r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    check(out["back"] == {"sensor": "s1", "temp": 21.5}, "round trip: %r", out)
    check("avro-tls-value" in out["subjects"], "subject not registered: %r", out)
    print("  PASS AvroSerializer/AvroDeserializer over https with %s (id %d)"
          % (os.path.relpath(py, ROOT), out["id"]))


def test_plaintext_on_tls_port_and_stalled_handshake():
    with TlsRegistry({"audit.enabled": "true"}) as b:
        ca = b.certs["ca"]
        # plain HTTP on the TLS port: closed, no HTTP answer (and no hang)
        s = socket.create_connection(("127.0.0.1", b.reg_port))
        s.sendall(b"GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.time()
        check(closed_within(s, 3), "plain HTTP on the TLS port not closed")
        check(time.time() - t0 < 2.5, "closed only after %.1fs", time.time() - t0)
        check(b"HTTP/" not in closed_within.got, "answered in plaintext: %r", closed_within.got)
        s.close()
        # curl speaking http:// to the https:// port gets an empty reply (exit 52), not a hang
        rc, _, _, err = curl("http://127.0.0.1:%d/subjects" % b.reg_port)
        check(rc in (52, 56), "plain curl on the TLS port: rc %d %s", rc, err)
        # a client that connects and never says hello: closed at the deadline (1.5 s) ...
        stalled = [socket.create_connection(("127.0.0.1", p)) for p in (b.reg_port, b.met_port)]
        t0 = time.time()
        # ... while others are served meanwhile
        rc, code, _, err = curl("--cacert", ca, b.url + "/subjects")
        check(rc == 0 and code == 200, "served during a stalled handshake: %d %s", code, err)
        for s in stalled:
            check(closed_within(s, 6), "stalled handshake never closed")
            s.close()
        check(time.time() - t0 < 5, "closed only after %.1fs", time.time() - t0)
        check(time.time() - t0 > 1.0, "closed before the deadline (%.1fs)", time.time() - t0)
        rc, code, _, err = curl("--cacert", ca, b.url + "/subjects")
        check(rc == 0 and code == 200, "served after: %d %s", code, err)
        log = b.log_tail(400)
        check("registry: 127.0.0.1: TLS handshake did not finish in time" in log and
              "metrics: 127.0.0.1: TLS handshake did not finish in time" in log and
              "TLS handshake failed: http request" in log, "failures not logged:\n%s", log)
        check(b.alive(), "broker died")


def test_certificates_reloaded_on_sighup():
    with TlsRegistry() as b:
        ca = b.certs["ca"]
        before = [serial(p, ca) for p in (b.reg_port, b.met_port)]
        check(all(x.startswith("serial=") for x in before), "no serial: %r", before)
        _, _, pem = make_cert(b.certdir, "server2", "/CN=localhost", server=True)
        os.replace(pem, b.certs["server_pem"])
        b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        after = [serial(p, ca) for p in (b.reg_port, b.met_port)]
        check(after[0] != before[0] and after[1] != before[1] and after[0] == after[1],
              "serials %r -> %r", before, after)
        rc, code, _, err = curl("--cacert", ca, b.url + "/subjects")
        check(rc == 0 and code == 200, "after reload: %d %s", code, err)
        # a broken file keeps the old certificates (and the broker)
        with open(b.certs["server_pem"], "w") as f:
            f.write("not a pem\n")
        b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        check(b.alive(), "broker died on a bad reload")
        check(serial(b.reg_port, ca) == after[0], "a bad file replaced the certificate")
        check("registry: TLS certificates not reloaded" in b.log_tail(100), "not logged")


def test_registry_certificates_of_its_own_and_client_auth_required():
    """schema.registry.ssl.keystore.location beside the broker's ssl.keystore.location: the
    registry serves its own certificate, metrics the broker's; with
    schema.registry.ssl.client.authentication=REQUIRED a client without a certificate signed
    by schema.registry.ssl.truststore.location is refused."""
    def own(b):
        _, _, pem = make_cert(b.certdir, "registry", "/CN=localhost", server=True)
        return {"schema.registry.ssl.keystore.location": pem,
                "schema.registry.ssl.truststore.location": b.certs["ca"],
                "schema.registry.ssl.client.authentication": "REQUIRED"}

    with TlsRegistry(own) as b:
        ca = b.certs["ca"]
        check(serial(b.reg_port, ca) != serial(b.met_port, ca), "registry uses ssl.* keystore")
        rc, code, _, err = curl("--cacert", ca, b.url + "/subjects")
        check(rc != 0 and code == 0, "no client certificate accepted: rc %d %d", rc, code)
        rc, code, body, err = curl("--cacert", ca, "--cert", b.certs["client_crt"], "--key",
                                   b.certs["client_key"], b.url + "/subjects")
        check(rc == 0 and code == 200, "client certificate refused: rc %d %d %s", rc, code, err)
        # metrics keeps the broker's ssl.client.auth (none): no certificate needed there
        rc, code, _, err = curl("--cacert", ca, "https://127.0.0.1:%d/healthz" % b.met_port)
        check(rc == 0 and code == 200, "metrics: %d %s", code, err)


def test_basic_auth_over_tls():
    users = {"alice": "alice-pw"}
    with TlsRegistry({"schema.registry.authentication.method": "BASIC"}, users=users) as b:
        ca = b.certs["ca"]
        rc, code, _, _ = curl("--cacert", ca, "-u", "alice:alice-pw", b.url + "/subjects",
                              data=None)
        check(rc == 0 and code == 200, "good password over TLS: %d", code)
        rc, code, body, _ = curl("--cacert", ca, "-u", "alice:alice-pw",
                                 b.url + "/subjects/a-value/versions",
                                 data={"schema": json.dumps(V1)})
        check(code == 200 and json.loads(body) == {"id": 1}, "register: %d %r", code, body)
        for who in ("alice:wrong", "mallory:alice-pw"):
            rc, code, _, _ = curl("--cacert", ca, "-u", who, b.url + "/subjects")
            check(code == 401, "%s over TLS: %d", who, code)
        rc, code, _, _ = curl("--cacert", ca, b.url + "/subjects")
        check(code == 401, "no credentials over TLS: %d", code)
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.error import SchemaRegistryError
        sr = SchemaRegistryClient({"url": b.url, "ssl.ca.location": ca,
                                   "basic.auth.user.info": "alice:alice-pw"})
        check(sr.get_subjects() == ["a-value"], "SchemaRegistryClient with basic auth")
        bad = SchemaRegistryClient({"url": b.url, "ssl.ca.location": ca,
                                    "basic.auth.user.info": "alice:nope"})
        try:
            bad.get_subjects()
            st = None
        except SchemaRegistryError as e:
            st = e.http_status_code
        check(st == 401, "bad password through SchemaRegistryClient: %r", st)


if __name__ == "__main__":
    run_tests(globals())

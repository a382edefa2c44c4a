"""Depot's schema registry over HTTP (schema.registry.listeners), spoken to exactly as
Confluent's serializers and tools speak to a Confluent Schema Registry: paths, bodies, error
codes, durability across kill -9, bad input, and validation at the door (Produce refuses what
is not framed with a registered schema id).

Only the standard library is used for HTTP, so what is checked is the bytes on the wire.
"""

import http.client
import json
import socket
import struct
import time

from depot_harness import (Broker, Reader, check, connect, free_port, frame, i16, i32, kstr,
                           port_accepts, recv_frame, record_batch, run_tests)

CT = "application/vnd.schemaregistry.v1+json"

V1 = {"type": "record", "name": "Reading", "namespace": "plant",
      "fields": [{"name": "id", "type": "int"}, {"name": "temp", "type": "float"}]}
V2 = {"type": "record", "name": "Reading", "namespace": "plant",
      "fields": [{"name": "id", "type": "int"}, {"name": "temp", "type": "float"},
                 {"name": "unit", "type": "string", "default": "C"}]}
V2_NO_DEFAULT = {"type": "record", "name": "Reading", "namespace": "plant",
                 "fields": [{"name": "id", "type": "int"}, {"name": "temp", "type": "float"},
                            {"name": "unit", "type": "string"}]}


class Registry:
    def __init__(self, broker):
        self.port = broker.reg_port
        deadline = time.monotonic() + 10
        while not port_accepts(self.port):
            check(time.monotonic() < deadline, "registry port %d never accepted", self.port)
            time.sleep(0.05)

    def call(self, method, path, body=None, raw=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": CT, "Accept": CT}
        h.update(headers or {})
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        ctype = r.getheader("Content-Type")
        c.close()
        try:
            j = json.loads(text) if text else None
        except ValueError:
            j = text
        return r.status, j, ctype

    def register(self, subject, schema, **extra):
        body = {"schema": json.dumps(schema)}
        body.update(extra)
        return self.call("POST", "/subjects/%s/versions" % subject, body)


def start(settings=None):
    reg_port = free_port()
    s = {"schema.registry.listeners": "http://127.0.0.1:%d" % reg_port}
    s.update(settings or {})
    b = Broker(s)
    b.reg_port = reg_port
    return b


def expect_error(resp, status, code):
    st, j, _ = resp
    check(st == status, "status %s, want %s: %r", st, status, j)
    check(isinstance(j, dict) and set(j) == {"error_code", "message"},
          "error body has other fields: %r", j)
    check(j["error_code"] == code, "error_code %s, want %s: %r", j["error_code"], code, j)


def test_register_lookup_and_config():
    with start() as b:
        r = Registry(b)
        st, j, ctype = r.register("line1-value", V1)
        check(st == 200 and j == {"id": 1}, "register: %s %r", st, j)
        check(ctype == CT, "content type %r", ctype)
        # the same schema again: same id, no new version; another subject: same global id
        check(r.register("line1-value", V1)[1] == {"id": 1}, "re-register changed the id")
        check(r.register("line2-value", V1)[1] == {"id": 1}, "ids are not global")
        st, j, _ = r.call("GET", "/subjects/line1-value/versions")
        check(j == [1], "versions %r", j)
        st, j, _ = r.call("GET", "/schemas/ids/1")
        check(st == 200 and set(j) == {"schema"} and json.loads(j["schema"]) == V1,
              "schema by id %r", j)
        st, j, _ = r.call("GET", "/subjects/line1-value/versions/latest")
        check(set(j) == {"subject", "version", "id", "schema"} and j["version"] == 1, "%r", j)
        st, j, _ = r.call("POST", "/subjects/line1-value", {"schema": json.dumps(V1)})
        check(st == 200 and j["id"] == 1 and j["version"] == 1, "lookup %s %r", st, j)
        expect_error(r.call("POST", "/subjects/line1-value", {"schema": json.dumps(V2)}), 404,
                     40403)
        expect_error(r.call("GET", "/subjects/nosuch/versions"), 404, 40401)
        expect_error(r.call("GET", "/subjects/line1-value/versions/9"), 404, 40402)
        expect_error(r.call("GET", "/subjects/line1-value/versions/x"), 422, 42202)
        expect_error(r.call("GET", "/schemas/ids/77"), 404, 40403)
        # config: 40408 until the subject has its own, defaultToGlobal falls back
        expect_error(r.call("GET", "/config/line1-value"), 404, 40408)
        st, j, _ = r.call("GET", "/config/line1-value?defaultToGlobal=true")
        check(j == {"compatibilityLevel": "BACKWARD"}, "defaultToGlobal %r", j)
        st, j, _ = r.call("PUT", "/config/line1-value", {"compatibility": "FULL"})
        check(j == {"compatibility": "FULL"}, "PUT config %r", j)
        st, j, _ = r.call("GET", "/config/line1-value")
        check(j == {"compatibilityLevel": "FULL"}, "GET config %r", j)
        st, j, _ = r.call("GET", "/mode")
        check(j == {"mode": "READWRITE"}, "mode %r", j)
        st, j, _ = r.call("GET", "/schemas/types")
        check(j == ["AVRO"], "types %r", j)
        # compatibility: BACKWARD refuses a new field without a default, FULL accepts a default
        expect_error(r.register("line2-value", V2_NO_DEFAULT), 409, 409)
        st, j, _ = r.call("POST", "/compatibility/subjects/line1-value/versions/latest",
                          {"schema": json.dumps(V2)})
        check(j == {"is_compatible": True}, "compatibility %r", j)
        check(r.register("line1-value", V2)[1] == {"id": 2}, "v2 not registered")
        # soft delete, then permanent
        expect_error(r.call("DELETE", "/subjects/line2-value?permanent=true"), 404, 40405)
        st, j, _ = r.call("DELETE", "/subjects/line2-value")
        check(st == 200 and j == [1], "soft delete %s %r", st, j)
        st, j, _ = r.call("GET", "/subjects")
        check(j == ["line1-value"], "subjects after delete %r", j)
        st, j, _ = r.call("DELETE", "/subjects/line2-value?permanent=true")
        check(st == 200 and j == [1], "permanent delete %s %r", st, j)
        st, j, _ = r.call("GET", "/subjects?deleted=true")
        check(j == ["line1-value"], "subjects %r", j)


def test_schemas_survive_kill9():
    with start() as b:
        r = Registry(b)
        ids = {}
        for i in range(5):
            s = {"type": "record", "name": "R%d" % i, "fields": [{"name": "x", "type": "long"}]}
            st, j, _ = r.register("s%d-value" % i, s)
            check(st == 200, "register %d: %s %r", i, st, j)
            ids[i] = (s, j["id"])
        r.call("PUT", "/config/s0-value", {"compatibility": "NONE"})
        r.call("DELETE", "/subjects/s1-value")
        b.restart(hard=True)  # kill -9: everything answered must be on disk
        r = Registry(b)
        for i, (s, sid) in ids.items():
            st, j, _ = r.call("GET", "/schemas/ids/%d" % sid)
            check(st == 200 and json.loads(j["schema"]) == s, "id %d after kill -9: %r", sid, j)
            check(r.register("s%d-value" % i, s)[1] == {"id": sid} or i == 1,
                  "id of s%d changed after kill -9", i)
        st, j, _ = r.call("GET", "/config/s0-value")
        check(j == {"compatibilityLevel": "NONE"}, "config after kill -9 %r", j)
        st, j, _ = r.register("new-value", "string")
        check(j == {"id": 6}, "ids do not continue after kill -9: %r", j)
        b.restart()  # and a clean restart serves the same
        r = Registry(b)
        check(r.call("GET", "/schemas/ids/6")[0] == 200, "id 6 lost on restart")


def test_bad_input_changes_nothing():
    with start() as b:
        r = Registry(b)
        expect_error(r.call("POST", "/subjects/x/versions", raw=b'{"schema": '), 400, 400)
        expect_error(r.call("POST", "/subjects/x/versions", {"schema": "{\"type\": \"nosuch\"}"}),
                     422, 42201)
        expect_error(r.call("POST", "/subjects/x/versions", {"schema": "not json at all"}), 422,
                     42201)
        expect_error(r.call("POST", "/subjects/x/versions",
                            {"schema": "{\"type\": \"object\"}", "schemaType": "JSON"}), 422,
                     42201)
        expect_error(r.call("GET", "/no/such/path"), 404, 404)
        expect_error(r.call("DELETE", "/schemas/types"), 405, 405)
        # 10 MB body: refused before it is parsed
        st, j, _ = r.call("POST", "/subjects/x/versions", raw=b"{" + b" " * (10 << 20) + b"}")
        check(st == 413, "10 MB body: status %s", st)
        # slow client: half a request, then nothing; others are served meanwhile
        slow = socket.create_connection(("127.0.0.1", r.port), timeout=30)
        slow.sendall(b"POST /subjects/x/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        t0 = time.monotonic()
        st, j, _ = r.call("GET", "/subjects")
        check(st == 200 and j == [], "served beside a slow client: %s %r", st, j)
        check(time.monotonic() - t0 < 2, "a slow client delayed another")
        data = b""
        try:
            while True:
                chunk = slow.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        slow.close()
        check(data == b"" or data.startswith(b"HTTP/1.1 408"), "slow client got %r", data[:60])
        check(time.monotonic() - t0 < 29, "slow client was never cut off")
        # nothing was stored and the broker still serves Kafka
        st, j, _ = r.call("GET", "/subjects?deleted=true")
        check(j == [], "bad input stored something: %r", j)
        check(r.register("x", V1)[1] == {"id": 1}, "registry unusable after bad input")
        err, base = produce_v8(b.port, "after-bad-input", record_batch([b"ok"]))[:2]
        check(err == 0, "broker's Kafka side affected: error %d", err)


def test_basic_auth_with_broker_users():
    """schema.registry.authentication.method=BASIC: the broker's users (depot --add-scram) and
    their passwords; anything else is 401 and changes nothing."""
    import base64
    import subprocess
    from depot_harness import DEPOT_BIN
    reg_port = free_port()
    b = Broker({"schema.registry.listeners": "http://127.0.0.1:%d" % reg_port,
                "schema.registry.authentication.method": "BASIC"}, start=False)
    b.reg_port = reg_port
    with b:
        r = subprocess.run([DEPOT_BIN, "--set", "log.dirs=%s" % b.data_dir, "--add-scram",
                            "SCRAM-SHA-256=[name=alice,password=alice-pw]"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "--add-scram: %s", r.stderr)
        b.start()
        reg = Registry(b)

        def auth(user, pw):
            return {"Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % (user, pw)).encode()).decode()}
        st, _, _ = reg.call("GET", "/subjects")
        check(st == 401, "no credentials: %s", st)
        st, _, _ = reg.call("POST", "/subjects/x/versions", {"schema": json.dumps(V1)},
                            headers=auth("alice", "wrong"))
        check(st == 401, "wrong password: %s", st)
        st, _, _ = reg.call("GET", "/subjects", headers=auth("mallory", "alice-pw"))
        check(st == 401, "unknown user: %s", st)
        for _ in range(3):  # the second and third are answered from the cache
            st, j, _ = reg.call("GET", "/subjects", headers=auth("alice", "alice-pw"))
            check(st == 200 and j == [], "alice: %s %r", st, j)
        st, j, _ = reg.call("POST", "/subjects/x/versions", {"schema": json.dumps(V1)},
                            headers=auth("alice", "alice-pw"))
        check(st == 200 and j == {"id": 1}, "alice registers: %s %r", st, j)
        st, _, _ = reg.call("GET", "/schemas/ids/1", headers=auth("alice", "alice-pw-"))
        check(st == 401, "a cached user with another password: %s", st)


# ------------------------------------------------------------------------------------------
# Validation at the door

def produce_v8(port, topic, batch):
    """Produce v8 (non-flexible, KIP-467 record errors); returns (error_code, base_offset,
    [(batch_index, message)], error_message)."""
    body = (kstr(None) + i16(-1) + i32(10000) + i32(1) + kstr(topic) + i32(1) + i32(0) +
            i32(len(batch)) + batch)
    s = connect(port)
    try:
        s.sendall(frame(0, 8, 41, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    check(r.i32() == 41, "produce: wrong correlation id")
    check(r.i32() == 1 and r.str() == topic and r.i32() == 1, "produce: response shape")
    check(r.i32() == 0, "produce: wrong partition")
    err, base = r.i16(), r.i64()
    r.i64(), r.i64()
    recs = [(r.i32(), r.str()) for _ in range(r.i32())]
    return err, base, recs, r.str()


def create_topic(port, name, configs):
    """CreateTopics v2 (raw) with configs; returns the error code."""
    cfg = b"".join(kstr(k) + kstr(v) for k, v in configs.items())
    body = (i32(1) + kstr(name) + i32(1) + i16(1) + i32(0) + i32(len(configs)) + cfg +
            i32(10000) + struct.pack(">?", False))
    s = connect(port)
    try:
        s.sendall(frame(19, 2, 5, body))
        r = Reader(recv_frame(s))
    finally:
        s.close()
    r.i32(), r.i32()  # correlation id, throttle
    check(r.i32() == 1 and r.str() == name, "create topics: response shape")
    return r.i16()


def framed(sid, payload):
    return b"\x00" + struct.pack(">I", sid) + payload


def test_validation_at_the_door():
    with start() as b:
        r = Registry(b)
        check(create_topic(b.port, "sensors", {"confluent.value.schema.validation": "true"}) == 0,
              "create validated topic")
        check(create_topic(b.port, "sensors-full", {
            "confluent.value.schema.validation": "true",
            "depot.value.schema.validation": "full"}) == 0, "create fully validated topic")
        check(create_topic(b.port, "bad", {"depot.value.schema.validation": "maybe"}) != 0,
              "a bad validation value was accepted")
        sid = r.register("sensors-value", V1)[1]["id"]
        check(r.register("sensors-full-value", V1)[1]["id"] == sid, "same schema, other id")
        other = r.register("elsewhere-value", "string")[1]["id"]
        # id 1, temp 21.5 (float, little-endian)
        good = framed(sid, b"\x02" + struct.pack("<f", 21.5))
        err, base, recs, msg = produce_v8(b.port, "sensors", record_batch([b"21.5 C"]))
        check(err == 87, "plain string: error %d (want INVALID_RECORD 87)", err)
        check(recs and recs[0][0] == 0 and "magic byte" in recs[0][1], "record errors %r", recs)
        check(msg and "schema validation" in msg, "error message %r", msg)
        err, base, recs, msg = produce_v8(b.port, "sensors", record_batch([good, good]))
        check(err == 0 and base == 0, "registered id refused: %d %r %r", err, recs, msg)
        err, _, recs, msg = produce_v8(b.port, "sensors", record_batch([good, framed(other, b"\x02a"),
                                                                         good]))
        check(err == 87 and [i for i, _ in recs] == [1], "wrong id: %d %r", err, recs)
        check("not registered under subject sensors-value" in recs[0][1], "message %r", recs[0][1])
        # id-only validation does not decode; full does
        truncated = framed(sid, b"\x02")
        check(produce_v8(b.port, "sensors", record_batch([truncated]))[0] == 0,
              "id-only validation decoded the value")
        err, _, recs, _ = produce_v8(b.port, "sensors-full", record_batch([truncated]))
        check(err == 87 and "does not decode" in recs[0][1], "full validation: %d %r", err, recs)
        check(produce_v8(b.port, "sensors-full", record_batch([good]))[0] == 0,
              "full validation refused a good value")
        # topics without validation are untouched
        check(produce_v8(b.port, "free", record_batch([b"anything"]))[0] == 0, "free topic")


def test_validation_with_librdkafka():
    """A real producer (confluent-kafka / librdkafka) sees INVALID_RECORD as a delivery error."""
    from confluent_kafka import KafkaError, Producer
    with start() as b:
        r = Registry(b)
        check(create_topic(b.port, "lines", {"confluent.value.schema.validation": "true"}) == 0,
              "create topic")
        sid = r.register("lines-value", V1)[1]["id"]
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0,
                      "message.send.max.retries": 0})
        results = []
        p.produce("lines", b"temp=21.5", callback=lambda e, m: results.append(e))
        p.produce("lines", framed(sid, b"\x02" + struct.pack("<f", 1.0)),
                  callback=lambda e, m: results.append(e))
        p.flush(20)
        check(len(results) == 2, "delivery reports %r", results)
        bad = [e for e in results if e is not None]
        check(len(bad) >= 1 and bad[0].code() == KafkaError.INVALID_RECORD,
              "plain string not refused with INVALID_RECORD: %r", results)


if __name__ == "__main__":
    run_tests(globals())

"""confluent-kafka's AvroSerializer / AvroDeserializer (the Python serializers of Confluent's
client) through Depot's built-in schema registry and broker: auto-registration, a validated
topic (full decoding at the door), consumption with a deserializer that fetches the writer
schema by id, the client's compatibility calls, and the same ids after kill -9.

Debian's python3-confluent-kafka lacks fastavro; scripts/install-deps --test puts it into
build/venv (pinned). Without it this test re-runs itself there, or skips saying why.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PY = os.path.normpath(os.path.join(HERE, "../../build/venv/bin/python3"))

try:
    import fastavro  # noqa: F401
    import requests  # noqa: F401
except ImportError as e:
    if os.path.exists(VENV_PY) and os.environ.get("DEPOT_REG_VENV") != "1":
        os.environ["DEPOT_REG_VENV"] = "1"
        os.execv(VENV_PY, [VENV_PY] + sys.argv)
    print("SKIP test_registry_confluent: %s (scripts/install-deps --test installs fastavro "
          "into build/venv; PyPI was not reachable or it was not run)" % e)
    sys.exit(0)

from confluent_kafka import DeserializingConsumer, KafkaError, SerializingProducer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: E402

from depot_harness import Broker, check, free_port, port_accepts, run_tests  # noqa: E402

import json  # noqa: E402
import time  # noqa: E402

READING = json.dumps({
    "type": "record", "name": "Reading", "namespace": "plant",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "temp", "type": "double"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["OK", "ALARM"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ]})


def start():
    reg_port = free_port()
    b = Broker({"schema.registry.listeners": "http://127.0.0.1:%d" % reg_port})
    b.reg_url = "http://127.0.0.1:%d" % reg_port
    deadline = time.monotonic() + 10
    while not port_accepts(reg_port):
        check(time.monotonic() < deadline, "registry never listened")
        time.sleep(0.05)
    return b


def consume_all(b, topic, n, sr, group):
    c = DeserializingConsumer({
        "bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "value.deserializer": AvroDeserializer(sr)})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        v = m.value()
        # fastavro hands timestamp-millis back as an aware datetime (the logical type was kept)
        check(hasattr(v["ts"], "timestamp"), "logicalType lost: ts is %r", v["ts"])
        v["ts"] = round(v["ts"].timestamp() * 1000)
        got.append(v)
    c.close()
    return got


def test_avro_serializer_round_trip():
    with start() as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        fs = admin.create_topics([NewTopic("plant.readings", 1, 1, config={
            "confluent.value.schema.validation": "true",
            "depot.value.schema.validation": "full"})])
        for f in fs.values():
            f.result(15)
        sr = SchemaRegistryClient({"url": b.reg_url})
        p = SerializingProducer({"bootstrap.servers": b.bootstrap, "linger.ms": 5,
                                 "value.serializer": AvroSerializer(sr, READING)})
        sent, errors = [], []
        for i in range(50):
            v = {"sensor": "t%d" % (i % 5), "temp": 20.0 + i / 8, "ts": 1700000000000 + i,
                 "state": "ALARM" if i % 7 == 0 else "OK", "note": None if i % 2 else "n%d" % i}
            sent.append(v)
            p.produce("plant.readings", value=v,
                      on_delivery=lambda e, m: errors.append(e) if e else None)
        p.flush(30)
        check(not errors, "delivery errors through a validated topic: %r", errors[:3])
        latest = sr.get_latest_version("plant.readings-value")
        check(latest.version == 1 and latest.schema_id == 1, "latest %r", latest)
        check(sr.get_subjects() == ["plant.readings-value"], "subjects %r", sr.get_subjects())
        got = consume_all(b, "plant.readings", 50, sr, "g1")
        check(got == sent, "round trip: %d records, first %r", len(got), got[:1])
        print("  PASS 50 records: AvroSerializer -> validated topic -> AvroDeserializer")

        # compatibility through the client: BACKWARD refuses a field without a default
        bad = json.loads(READING)
        bad["fields"].append({"name": "site", "type": "string"})
        check(not sr.test_compatibility("plant.readings-value", Schema(json.dumps(bad), "AVRO")),
              "an incompatible schema tested compatible")
        try:
            sr.register_schema("plant.readings-value", Schema(json.dumps(bad), "AVRO"))
            check(False, "an incompatible schema was registered")
        except SchemaRegistryError as e:
            check(e.http_status_code == 409, "incompatible: %r", e)
        sr.set_compatibility("plant.readings-value", "NONE")
        check(sr.get_compatibility("plant.readings-value") == "NONE", "compatibility not set")
        print("  PASS compatibility calls (test, 409 on register, set/get level)")

        # kill -9: a fresh client reads the old records through the same ids
        b.restart(hard=True)
        sr2 = SchemaRegistryClient({"url": b.reg_url})
        deadline = time.monotonic() + 10
        while True:
            try:
                check(sr2.get_schema(1).schema_str is not None, "schema 1 gone")
                break
            except requests.exceptions.ConnectionError:
                check(time.monotonic() < deadline, "registry did not come back")
                time.sleep(0.1)
        got = consume_all(b, "plant.readings", 50, sr2, "g2")
        check(got == sent, "after kill -9: %d records", len(got))
        p = SerializingProducer({"bootstrap.servers": b.bootstrap,
                                 "value.serializer": AvroSerializer(sr2, READING)})
        res = []
        p.produce("plant.readings", value=sent[0], on_delivery=lambda e, m: res.append(e))
        p.flush(20)
        check(res == [None], "produce after kill -9: %r", res)
        check(sr2.get_latest_version("plant.readings-value").schema_id == 1, "id changed")
        print("  PASS after kill -9: same id, old records decode, new ones go in")


def test_plain_bytes_refused():
    with start() as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.create_topics([NewTopic("plant.strict", 1, 1, config={
                "confluent.value.schema.validation": "true"})]).values():
            f.result(15)
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": b.bootstrap, "message.send.max.retries": 0})
        res = []
        p.produce("plant.strict", b"temp=21.5", on_delivery=lambda e, m: res.append(e))
        p.flush(20)
        check(len(res) == 1 and res[0] is not None and res[0].code() == KafkaError.INVALID_RECORD,
              "plain bytes: %r", res)


if __name__ == "__main__":
    run_tests(globals())

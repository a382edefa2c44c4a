"""Topic configs that change what Produce does, through real clients (confluent-kafka and
kafka-python from Debian): compression.type recompresses on the broker (the stored batches are
read back raw to see their codec, and every client still decodes them), changed at run time
with AlterConfigs; message.timestamp.after/before.max.ms refuse records outside the window
with INVALID_TIMESTAMP; min.insync.replicas=2 fails acks=all with NOT_ENOUGH_REPLICAS on a
one-node broker, as Kafka does for a replication factor of 1, and acks=1 still works.
Run with /usr/bin/python3."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, fetch_v4_batches, run_tests  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def create(bs, name, config):
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(30)
    return a


def produce(bs, topic, values, extra=None, timestamp=None):
    """Produces values; returns the list of delivery errors (None for delivered)."""
    conf = {"bootstrap.servers": bs, "linger.ms": 5, "message.timeout.ms": 5000}
    conf.update(extra or {})
    p = Producer(conf)
    results = []
    for v in values:
        kw = {"timestamp": timestamp} if timestamp is not None else {}
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: results.append(e), **kw)
    p.flush(30)
    check(len(results) == len(values), "%d of %d delivery reports", len(results), len(values))
    return results


def consume_confluent(bs, topic, n):
    c = Consumer({"bootstrap.servers": bs, "group.id": "g-" + topic,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 30
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m.value())
    c.close()
    return out


def consume_kafka_python(bs, topic, n):
    import kafka
    tp = kafka.TopicPartition(topic, 0)
    c = kafka.KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                            auto_offset_reset="earliest", consumer_timeout_ms=10000)
    c.assign([tp])
    c.seek(tp, 0)
    out = []
    for m in c:
        out.append(m.value)
        if len(out) >= n:
            break
    c.close()
    return out


def test_compression_type_recompresses():
    with Broker() as b:
        values = [("reading-%04d " % i).encode() * 20 for i in range(300)]
        for codec in ("zstd", "gzip", "uncompressed"):
            topic = "rc-" + codec
            create(b.bootstrap, topic, {"compression.type": codec})
            # The producer compresses with snappy (or not at all): the broker rewrites.
            errs = produce(b.bootstrap, topic, values, {"compression.type": "snappy"})
            check(not any(errs), "%s: delivery errors %s", topic, [e for e in errs if e][:2])
            err, hw, batches = fetch_v4_batches(b.port, topic, 0)
            check(err == 0 and hw == 300, "%s: fetch err %d hw %d", topic, err, hw)
            codecs = {x["codec"] for x in batches}
            check(codecs == {CODECS[codec]}, "%s: stored codecs %s", topic, sorted(codecs))
            got = consume_confluent(b.bootstrap, topic, 300)
            check(got == values, "%s: confluent-kafka read %d values back", topic, len(got))
            if codec != "zstd":  # Debian's kafka-python has no zstd module
                got = consume_kafka_python(b.bootstrap, topic, 300)
                check(got == values, "%s: kafka-python read %d values back", topic, len(got))
        # Changed at run time: later batches take the new codec, earlier ones stay.
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        res = ConfigResource(ConfigResource.Type.TOPIC, "rc-zstd",
                             set_config={"compression.type": "gzip"})
        a.alter_configs([res])[res].result(30)
        errs = produce(b.bootstrap, "rc-zstd", values[:50])
        check(not any(errs), "after alter: delivery errors")
        _, hw, batches = fetch_v4_batches(b.port, "rc-zstd", 0)
        check(hw == 350, "after alter: hw %d", hw)
        tail = [x["codec"] for x in batches if x["base_offset"] >= 300]
        check(tail and set(tail) == {1}, "after alter: codecs of new batches %s", tail)
        got = consume_confluent(b.bootstrap, "rc-zstd", 350)
        check(got == values + values[:50], "after alter: %d values read back", len(got))
        # Survives a restart (the topic config is durable, batches decode after recovery).
        b.restart(hard=True)
        got = consume_confluent(b.bootstrap, "rc-gzip", 300)
        check(got == values, "after kill -9: %d values", len(got))


def test_timestamp_bounds():
    with Broker() as b:
        create(b.bootstrap, "ts", {"message.timestamp.after.max.ms": "60000",
                                   "message.timestamp.before.max.ms": "3600000"})
        now = int(time.time() * 1000)
        errs = produce(b.bootstrap, "ts", [b"future"], timestamp=now + 2 * 3600 * 1000)
        check(errs[0] is not None and errs[0].code() == KafkaError.INVALID_TIMESTAMP,
              "future timestamp: %s", errs[0])
        errs = produce(b.bootstrap, "ts", [b"past"], timestamp=now - 2 * 3600 * 1000)
        check(errs[0] is not None and errs[0].code() == KafkaError.INVALID_TIMESTAMP,
              "past timestamp: %s", errs[0])
        errs = produce(b.bootstrap, "ts", [b"now"], timestamp=now)
        check(errs[0] is None, "current timestamp refused: %s", errs[0])
        _, hw, _ = fetch_v4_batches(b.port, "ts", 0)
        check(hw == 1, "only the in-window record stored, hw %d", hw)
        # The broker default (Kafka 4: one hour ahead) applies to a topic without its own.
        create(b.bootstrap, "ts-default", {})
        errs = produce(b.bootstrap, "ts-default", [b"x"], timestamp=now + 2 * 3600 * 1000)
        check(errs[0] is not None and errs[0].code() == KafkaError.INVALID_TIMESTAMP,
              "default after.max.ms: %s", errs[0])
        errs = produce(b.bootstrap, "ts-default", [b"x"], timestamp=now - 30 * 86400 * 1000)
        check(errs[0] is None, "default before.max.ms is unlimited: %s", errs[0])
        # LogAppendTime topics take the broker's clock and check nothing.
        create(b.bootstrap, "ts-lat", {"message.timestamp.type": "LogAppendTime",
                                       "message.timestamp.after.max.ms": "1000"})
        errs = produce(b.bootstrap, "ts-lat", [b"x"], timestamp=now + 2 * 3600 * 1000)
        check(errs[0] is None, "LogAppendTime refused a producer timestamp: %s", errs[0])


def test_min_insync_replicas():
    with Broker() as b:
        create(b.bootstrap, "isr", {"min.insync.replicas": "2"})
        # No retries, so the client reports the broker's answer rather than a timeout.
        errs = produce(b.bootstrap, "isr", [b"a", b"b"], {"acks": "all",
                                                          "message.send.max.retries": 0})
        check(all(e is not None and e.code() == KafkaError.NOT_ENOUGH_REPLICAS for e in errs),
              "acks=all with min.insync.replicas=2: %s", errs)
        _, hw, _ = fetch_v4_batches(b.port, "isr", 0)
        check(hw == 0, "acks=all records were written, hw %d", hw)
        errs = produce(b.bootstrap, "isr", [b"c"], {"acks": "1"})
        check(errs[0] is None, "acks=1 refused: %s", errs[0])
        # Back to 1: acks=all works again.
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        res = ConfigResource(ConfigResource.Type.TOPIC, "isr",
                             set_config={"min.insync.replicas": "1"})
        a.alter_configs([res])[res].result(30)
        errs = produce(b.bootstrap, "isr", [b"d"], {"acks": "all"})
        check(errs[0] is None, "acks=all after min.insync.replicas=1: %s", errs[0])
        _, hw, _ = fetch_v4_batches(b.port, "isr", 0)
        check(hw == 2, "hw %d", hw)


if __name__ == "__main__":
    run_tests(globals())

"""Admin APIs through real Python clients (Debian's confluent-kafka and kafka-python):
CreatePartitions (validate_only, errors; a producer and a running consumer group pick the new
partitions up), AlterConfigs for topics and the broker (a retention change takes effect on the
next retention tick, also through a broker default), DescribeConfigs with Kafka's sources and
synonyms, every Kafka 4.1 topic config accepted, INVALID_CONFIG for unknown names and bad
values, and dynamic configs that survive a restart. Run with /usr/bin/python3."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,  # noqa: E402
                                   NewTopic)

SCHEMA_KEYS = {"confluent.key.schema.validation", "confluent.value.schema.validation",
               "confluent.key.subject.name.strategy", "confluent.value.subject.name.strategy",
               "depot.value.schema.validation"}

# ConfigSource values on the wire (DescribeConfigsResponse).
DYNAMIC_TOPIC, DYNAMIC_BROKER, STATIC_BROKER, DEFAULT = 1, 2, 4, 5

# Every topic config a Kafka 4.1 broker reports, with Kafka's default values (from
# `kafka-configs --describe --all` against a real Kafka 4.1.1).
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete", "compression.gzip.level": "-1", "compression.lz4.level": "9",
    "compression.type": "producer", "compression.zstd.level": "3",
    "delete.retention.ms": "86400000", "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807", "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "", "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "", "local.retention.bytes": "-2",
    "local.retention.ms": "-2", "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588", "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime", "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0", "min.insync.replicas": "1", "preallocate": "false",
    "remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false", "retention.bytes": "-1", "retention.ms": "604800000",
    "segment.bytes": "1073741824", "segment.index.bytes": "10485760", "segment.jitter.ms": "0",
    "segment.ms": "604800000", "unclean.leader.election.enable": "false",
}


def admin(bs):
    return AdminClient({"bootstrap.servers": bs})


def create(a, name, parts, config=None):
    a.create_topics([NewTopic(name, parts, 1, config=config or {})])[name].result(30)


def describe(a, rtype, name):
    res = ConfigResource(rtype, name)
    return a.describe_configs([res])[res].result(30)


def alter(a, rtype, name, configs):
    res = ConfigResource(rtype, name, set_config=configs)
    return a.alter_configs([res])[res].result(30)


def kafka_error(fn):
    try:
        fn()
    except KafkaException as e:
        return e.args[0]
    raise AssertionError("expected a Kafka error")


def produce(bs, topic, items):
    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 1})
    errors = []
    for part, value in items:
        p.produce(topic, value=value, partition=part, on_delivery=lambda e, m: e and errors.append(e))
    check(p.flush(30) == 0, "undelivered messages")
    check(not errors, "delivery errors %s", errors[:3])


def test_create_partitions_producer_and_group_pick_up():
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
        a = admin(b.bootstrap)
        create(a, "grow", 2)
        # validate_only changes nothing
        a.create_partitions([NewPartitions("grow", 4)], validate_only=True)["grow"].result(30)
        check(len(a.list_topics("grow", timeout=10).topics["grow"].partitions) == 2,
              "validate_only added partitions")
        for count, want in ((2, "already has 2"), (1, "higher than the requested 1")):
            err = kafka_error(lambda: a.create_partitions([NewPartitions("grow", count)])["grow"]
                              .result(30))
            check(err.name() == "INVALID_PARTITIONS" and want in err.str(), "count %d: %s",
                  count, err)
        err = kafka_error(lambda: a.create_partitions([NewPartitions("nope", 3)])["nope"]
                          .result(30))
        check(err.name() == "UNKNOWN_TOPIC_OR_PART", "unknown topic: %s", err)

        # A consumer group is running on the 2 partitions when the topic grows.
        seen, stop = {}, threading.Event()
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "grow-g",
                      "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500})
        c.subscribe(["grow"])

        def loop():
            while not stop.is_set():
                m = c.poll(0.2)
                if m is not None and not m.error():
                    seen.setdefault(m.partition(), []).append(m.value())
        th = threading.Thread(target=loop)
        th.start()
        try:
            produce(b.bootstrap, "grow", [(0, b"p0-a"), (1, b"p1-a")])
            deadline = time.time() + 30
            while time.time() < deadline and len(seen) < 2:
                time.sleep(0.1)
            check(sorted(seen) == [0, 1], "group before growth saw partitions %s", sorted(seen))
            a.create_partitions([NewPartitions("grow", 4)])["grow"].result(30)
            check(len(a.list_topics("grow", timeout=10).topics["grow"].partitions) == 4,
                  "metadata does not show 4 partitions")
            # A producer that learns the new count produces to them...
            produce(b.bootstrap, "grow", [(2, b"p2-a"), (3, b"p3-a")])
            # ...and the running group is rebalanced onto them and consumes.
            deadline = time.time() + 45
            while time.time() < deadline and len(seen) < 4:
                time.sleep(0.1)
            check(sorted(seen) == [0, 1, 2, 3], "group after growth saw partitions %s",
                  sorted(seen))
            check(seen[2] == [b"p2-a"] and seen[3] == [b"p3-a"], "new partitions held %s",
                  {k: seen[k] for k in (2, 3) if k in seen})
        finally:
            stop.set()
            th.join()
            c.close()
        b.restart()
        check(len(admin(b.bootstrap).list_topics("grow", timeout=10).topics["grow"].partitions)
              == 4, "partition count not kept across a restart")


def test_retention_change_takes_effect_on_next_tick():
    with Broker() as b:
        a = admin(b.bootstrap)
        # small segments so there are closed segments to delete; one topic overrides
        # retention, the other follows the broker default
        create(a, "ret.topic", 1, {"segment.bytes": "1024"})
        create(a, "ret.broker", 1, {"segment.bytes": "1024"})
        old = int(time.time() * 1000) - 60000
        for t in ("ret.topic", "ret.broker"):
            p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
            for i in range(40):
                p.produce(t, value=b"x" * 200, partition=0, timestamp=old)
                p.flush(10)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "wm"})

        def low(t):
            return c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)[0]
        check(low("ret.topic") == 0 and low("ret.broker") == 0, "retention ran too early")
        alter(a, ConfigResource.Type.TOPIC, "ret.topic", {"segment.bytes": "1024",
                                                          "retention.ms": "1000"})
        deadline = time.time() + 15
        while time.time() < deadline and low("ret.topic") == 0:
            time.sleep(0.2)
        check(low("ret.topic") > 0, "topic retention.ms change did not delete segments")
        check(low("ret.broker") == 0, "the other topic lost data")
        # broker default: topics without an override follow it at once
        alter(a, ConfigResource.Type.BROKER, "1", {"log.retention.ms": "1000"})
        deadline = time.time() + 15
        while time.time() < deadline and low("ret.broker") == 0:
            time.sleep(0.2)
        check(low("ret.broker") > 0, "dynamic log.retention.ms did not reach the topic")
        c.close()
        cfg = describe(a, ConfigResource.Type.TOPIC, "ret.broker")
        check(cfg["retention.ms"].value == "1000" and cfg["retention.ms"].source == DYNAMIC_BROKER,
              "retention.ms from the dynamic broker default: %s", cfg["retention.ms"])


def test_describe_sources_and_synonyms():
    with Broker({"log.retention.bytes": 5000000}) as b:
        a = admin(b.bootstrap)
        create(a, "src", 1, {"retention.ms": "123456", "compression.type": "zstd",
                             "min.insync.replicas": "1"})
        cfg = describe(a, ConfigResource.Type.TOPIC, "src")
        # Kafka 4.1's keys, plus the schema-validation keys (Confluent Server's names and
        # Depot's, docs/schema-registry.md), which Kafka itself does not have.
        check(set(cfg) == set(KAFKA_TOPIC_DEFAULTS) | SCHEMA_KEYS, "topic keys differ from "
              "Kafka 4.1's: missing %s, extra %s",
              set(KAFKA_TOPIC_DEFAULTS) | SCHEMA_KEYS - set(cfg),
              set(cfg) - set(KAFKA_TOPIC_DEFAULTS) - SCHEMA_KEYS)
        for key, dflt in KAFKA_TOPIC_DEFAULTS.items():
            if key in ("retention.ms", "compression.type", "retention.bytes"):
                continue
            check(cfg[key].value == dflt and cfg[key].source == DEFAULT,
                  "%s: %r source %d, Kafka's default is %r", key, cfg[key].value,
                  cfg[key].source, dflt)
        e = cfg["retention.ms"]
        check(e.value == "123456" and e.source == DYNAMIC_TOPIC, "retention.ms %s", e)
        e = cfg["retention.bytes"]
        check(e.value == "5000000" and e.source == STATIC_BROKER, "retention.bytes %s", e)
        # Kafka lists every layer (STATIC_BROKER 5000000, then DEFAULT -1); librdkafka keys
        # synonyms by name, so only the name is checked here (test_java_tools compares the
        # full lists with a real Kafka's).
        check("log.retention.bytes" in e.synonyms, "synonyms %s", list(e.synonyms))
        e = cfg["cleanup.policy"]
        syn = [(s.name, s.value, s.source) for s in e.synonyms.values()]
        check(syn == [("log.cleanup.policy", "delete", DEFAULT)], "cleanup.policy synonyms %s",
              syn)
        brk = describe(a, ConfigResource.Type.BROKER, "1")
        check(brk["log.retention.bytes"].source == STATIC_BROKER and
              not brk["log.retention.bytes"].is_read_only, "broker %s", brk["log.retention.bytes"])
        check(brk["listeners"].is_read_only, "listeners should be read-only")


def test_every_kafka_topic_config_accepted_and_bad_ones_refused():
    with Broker() as b:
        a = admin(b.bootstrap)
        create(a, "all.keys", 1, dict(KAFKA_TOPIC_DEFAULTS, **{"remote.storage.enable": "false"}))
        cfg = describe(a, ConfigResource.Type.TOPIC, "all.keys")
        check(all(cfg[k].value == v for k, v in KAFKA_TOPIC_DEFAULTS.items()),
              "values changed: %s", {k: cfg[k].value for k in KAFKA_TOPIC_DEFAULTS
                                     if cfg[k].value != KAFKA_TOPIC_DEFAULTS[k]})
        alter(a, ConfigResource.Type.TOPIC, "all.keys", {
            "compression.type": "lz4", "cleanup.policy": "compact,delete",
            "min.cleanable.dirty.ratio": "0.25", "preallocate": "true",
            "leader.replication.throttled.replicas": "0:1", "message.timestamp.type":
            "LogAppendTime"})
        cfg = describe(a, ConfigResource.Type.TOPIC, "all.keys")
        got = {k: cfg[k].value for k in ("compression.type", "cleanup.policy",
                                         "min.cleanable.dirty.ratio", "preallocate",
                                         "message.timestamp.type")}
        check(got == {"compression.type": "lz4", "cleanup.policy": "compact,delete",
                      "min.cleanable.dirty.ratio": "0.25", "preallocate": "true",
                      "message.timestamp.type": "LogAppendTime"}, "after alter: %s", got)
        # AlterConfigs replaces the overrides: retention.ms was not named, so it is default
        check(cfg["retention.ms"].source == DEFAULT, "retention.ms kept an override")
        cases = [
            ({"bogus.key": "1"}, "Unknown topic config name: bogus.key"),
            ({"retention.ms": "abc"},
             "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
            ({"compression.type": "brotli"}, "compression.type"),
            ({"min.insync.replicas": "0"}, "min.insync.replicas"),
            ({"remote.storage.enable": "true"}, "remote.storage.enable"),
            ({"min.cleanable.dirty.ratio": "2"}, "min.cleanable.dirty.ratio"),
        ]
        for conf, want in cases:
            err = kafka_error(lambda: alter(a, ConfigResource.Type.TOPIC, "all.keys", conf))
            check(err.name() == "INVALID_CONFIG" and want in err.str(), "%s: %s", conf, err)
            err = kafka_error(lambda: create(a, "bad.%d" % len(want), 1, conf))
            check(err.name() == "INVALID_CONFIG" and want in err.str(), "create %s: %s", conf,
                  err)
        err = kafka_error(lambda: alter(a, ConfigResource.Type.BROKER, "1", {"listeners": "x"}))
        check(err.name() == "INVALID_REQUEST" and "dynamically" in err.str(), "listeners: %s", err)
        err = kafka_error(lambda: alter(a, ConfigResource.Type.BROKER, "1",
                                        {"log.retention.ms": "-5"}))
        check(err.name() == "INVALID_CONFIG", "bad broker value: %s", err)
        # validate_only changes nothing
        res = ConfigResource(ConfigResource.Type.TOPIC, "all.keys",
                             set_config={"retention.ms": "777"})
        a.alter_configs([res], validate_only=True)[res].result(30)
        check(describe(a, ConfigResource.Type.TOPIC, "all.keys")["retention.ms"].value
              == "604800000", "validate_only altered the topic")


def test_dynamic_configs_persist_across_restart():
    with Broker() as b:
        a = admin(b.bootstrap)
        create(a, "keep", 1)
        alter(a, ConfigResource.Type.TOPIC, "keep", {"retention.ms": "86400000",
                                                     "cleanup.policy": "compact"})
        alter(a, ConfigResource.Type.BROKER, "1", {"log.segment.bytes": "2000000"})
        for rnd in ("live", "restart", "kill -9"):
            a = admin(b.bootstrap)
            cfg = describe(a, ConfigResource.Type.TOPIC, "keep")
            got = (cfg["retention.ms"].value, cfg["retention.ms"].source,
                   cfg["cleanup.policy"].value, cfg["segment.bytes"].value,
                   cfg["segment.bytes"].source)
            check(got == ("86400000", DYNAMIC_TOPIC, "compact", "2000000", DYNAMIC_BROKER),
                  "%s: %s", rnd, got)
            if rnd == "live":
                b.restart()
            elif rnd == "restart":
                b.restart(hard=True)


def test_kafka_python_admin():
    from kafka.admin import (ConfigResource as KPConfigResource, ConfigResourceType,
                             KafkaAdminClient, NewPartitions as KPNewPartitions,
                             NewTopic as KPNewTopic)
    from kafka.errors import InvalidPartitionsError
    with Broker() as b:
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
        try:
            ka.create_topics([KPNewTopic("kp.t", 1, 1, topic_configs={"compression.type": "gzip"})])
            r = ka.create_partitions({"kp.t": KPNewPartitions(3)}, validate_only=True)
            check(r.topic_errors[0][1] == 0, "validate_only: %s", r.topic_errors)
            r = ka.create_partitions({"kp.t": KPNewPartitions(3)})
            check(r.topic_errors[0][1] == 0, "create_partitions: %s", r.topic_errors)
            try:
                ka.create_partitions({"kp.t": KPNewPartitions(2)})
                raise AssertionError("shrinking a topic was not refused")
            except InvalidPartitionsError as e:
                check("higher than the requested 2" in str(e), "shrink: %s", e)
            r = ka.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp.t",
                                                   configs={"retention.ms": "3600000"})])
            check(r.resources[0][0] == 0, "alter_configs: %s", r.resources)
            r = ka.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp.t",
                                                   configs={"no.such": "1"})])
            check(r.resources[0][0] == 40 and "no.such" in r.resources[0][1], "bad key: %s",
                  r.resources)
            r = ka.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp.t")],
                                    include_synonyms=True)
            entries = {e[0]: e for e in r[0].resources[0][4]}
            check(entries["retention.ms"][1] == "3600000" and entries["retention.ms"][3] ==
                  DYNAMIC_TOPIC, "retention.ms %s", entries["retention.ms"])
            check(entries["compression.type"][1] == "producer" and
                  entries["compression.type"][3] == DEFAULT, "AlterConfigs kept compression.type"
                  " override: %s", entries["compression.type"])
            md = ka.describe_topics(["kp.t"])
            check(len(md[0]["partitions"]) == 3, "partitions %s", md[0]["partitions"])
        finally:
            ka.close()


if __name__ == "__main__":
    run_tests(globals())

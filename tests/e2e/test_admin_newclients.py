"""Admin APIs through the newer Python clients (confluent-kafka 2.x, kafka-python 3.x, pinned
by scripts/fetch-pyclients in build/pyclients): IncrementalAlterConfigs SET / DELETE / APPEND /
SUBTRACT on topics and the broker, a retention change through it reaching the next retention
tick, DescribeConfigs sources and synonyms, CreatePartitions, and consumer-group admin.
run.sh starts this file with /usr/bin/python3; it re-executes itself with the venv's Python,
or skips with a message when the venv cannot be built (no registry)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pyclients import use_venv  # noqa: E402

use_venv(__file__, "confluent-kafka 2.x / kafka-python 3.x")

import time  # noqa: E402

from depot_harness import Broker, check, run_tests  # noqa: E402

from confluent_kafka import KafkaException, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,  # noqa: E402
                                   ConfigSource, NewPartitions)
from pyclients import consumer, create_topic, producer  # noqa: E402

SET, DELETE, APPEND, SUBTRACT = (AlterConfigOpType.SET, AlterConfigOpType.DELETE,
                                 AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT)


def incremental(a, rtype, name, ops):
    res = ConfigResource(rtype, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, op, v in ops])
    return a.incremental_alter_configs([res])[res].result(30)


def describe(a, rtype, name):
    res = ConfigResource(rtype, name)
    return a.describe_configs([res])[res].result(30)


def test_confluent2_incremental_alter_configs():
    with Broker() as b:
        a = create_topic(b.bootstrap, "inc")
        incremental(a, ConfigResource.Type.TOPIC, "inc", [
            ("retention.ms", SET, "3600000"), ("cleanup.policy", APPEND, "compact"),
            ("leader.replication.throttled.replicas", APPEND, "0:1")])
        cfg = describe(a, ConfigResource.Type.TOPIC, "inc")
        check(cfg["retention.ms"].value == "3600000" and
              cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              "SET: %s", cfg["retention.ms"])
        check(cfg["cleanup.policy"].value == "compact,delete", "APPEND: %s",
              cfg["cleanup.policy"].value)
        incremental(a, ConfigResource.Type.TOPIC, "inc", [
            ("cleanup.policy", SUBTRACT, "delete"), ("retention.ms", DELETE, None),
            ("leader.replication.throttled.replicas", APPEND, "1:1")])
        cfg = describe(a, ConfigResource.Type.TOPIC, "inc")
        got = (cfg["cleanup.policy"].value, cfg["retention.ms"].value,
               cfg["retention.ms"].source, cfg["leader.replication.throttled.replicas"].value)
        check(got == ("compact", "604800000", ConfigSource.DEFAULT_CONFIG.value, "0:1,1:1"),
              "SUBTRACT/DELETE/APPEND: %s", got)
        # APPEND on a non-list key, unknown key, bad value: INVALID_CONFIG with the reason
        for ops, want in ((("retention.ms", APPEND, "5"), "append is not allowed"),
                          (("nope.key", SET, "1"), "Unknown topic config name: nope.key"),
                          (("segment.bytes", SET, "1"), "segment.bytes")):
            try:
                incremental(a, ConfigResource.Type.TOPIC, "inc", [ops])
                raise AssertionError("%s accepted" % (ops,))
            except KafkaException as e:
                err = e.args[0]
                check(err.name() == "INVALID_CONFIG" and want in err.str(), "%s: %s", ops, err)
        # the broker: dynamic default, then back to the static value
        incremental(a, ConfigResource.Type.BROKER, "1", [("log.retention.bytes", SET, "777777")])
        cfg = describe(a, ConfigResource.Type.TOPIC, "inc")
        e = cfg["retention.bytes"]
        check(e.value == "777777" and e.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value,
              "topic follows the dynamic broker default: %s", e)
        incremental(a, ConfigResource.Type.BROKER, "1", [("log.retention.bytes", DELETE, None)])
        e = describe(a, ConfigResource.Type.TOPIC, "inc")["retention.bytes"]
        check(e.value == "-1" and e.source == ConfigSource.DEFAULT_CONFIG.value,
              "after DELETE on the broker: %s", e)


def test_confluent2_retention_and_partitions():
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
        a = create_topic(b.bootstrap, "ret2", config={"segment.bytes": "1024"})
        p = producer(b.bootstrap, {"linger.ms": 0})
        old = int(time.time() * 1000) - 60000
        for i in range(30):
            p.produce("ret2", value=b"y" * 200, partition=0, timestamp=old)
            p.flush(10)
        c = consumer(b.bootstrap, "ret2.g")
        low = lambda: c.get_watermark_offsets(TopicPartition("ret2", 0), timeout=10)[0]  # noqa
        check(low() == 0, "retention ran early")
        incremental(a, ConfigResource.Type.TOPIC, "ret2", [("retention.ms", SET, "1000")])
        deadline = time.time() + 15
        while time.time() < deadline and low() == 0:
            time.sleep(0.2)
        check(low() > 0, "incremental retention.ms did not delete at the next tick")
        a.create_partitions([NewPartitions("ret2", 3)])["ret2"].result(30)
        md = a.list_topics("ret2", timeout=10).topics["ret2"]
        check(len(md.partitions) == 3, "partitions %d", len(md.partitions))
        c.subscribe(["ret2"])
        deadline = time.time() + 30
        while time.time() < deadline and len(c.assignment()) < 3:
            c.poll(0.2)
        check(len(c.assignment()) == 3, "group assignment %s", c.assignment())
        c.close()


def test_kafka_python3_admin():
    from kafka.admin import (AlterConfigOp, ConfigResource as KPRes, ConfigResourceType,
                             KafkaAdminClient, NewPartitions as KPNewPartitions,
                             NewTopic as KPNewTopic)
    with Broker() as b:
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=20000)
        try:
            ka.create_topics([KPNewTopic("kp3", 1, 1)])
            ka.create_partitions({"kp3": KPNewPartitions(4)})
            md = ka.describe_topics(["kp3"])
            check(len(md[0]["partitions"]) == 4, "partitions %s", md[0]["partitions"])
            ka.alter_configs([KPRes(ConfigResourceType.TOPIC, "kp3", configs={
                "retention.ms": (AlterConfigOp.SET, "7200000"),
                "cleanup.policy": (AlterConfigOp.APPEND, "compact")})], incremental=True)
            r = ka.describe_configs([KPRes(ConfigResourceType.TOPIC, "kp3")])
            text = repr(r)
            check("7200000" in text and "compact,delete" in text, "describe: %s", text[:600])
        finally:
            ka.close()


if __name__ == "__main__":
    run_tests(globals())

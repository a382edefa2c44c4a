"""Client strings come back byte for byte: committed-offset metadata with an embedded NUL and
non-ASCII (live and after a restart, i.e. through the offsets log), and client ids with an
embedded NUL and non-ASCII in DescribeGroups, with kafka-python; non-ASCII client ids and
client ids from a static member (group.instance.id set) through librdkafka, which cannot send a NUL. Run with /usr/bin/python3."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

METADATA = "ckpt\x00line-2 temp=21.5\u00b0C \u6e29\u5ea6 \U0001f321 end\x00"
CLIENT_ID = "sensor\x00reader-\u00e9\u00e8"


def test_commit_metadata_and_client_id_byte_for_byte():
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
        p = KafkaProducer(bootstrap_servers=b.bootstrap)
        for i in range(5):
            p.send("bytes.t", b"v%d" % i, partition=0)
        p.flush()
        p.close()
        c = KafkaConsumer("bytes.t", bootstrap_servers=b.bootstrap, group_id="bytes.g",
                          client_id=CLIENT_ID, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=10000)
        got = []
        for m in c:
            got.append(m.value)
            if len(got) == 5:
                break
        check(len(got) == 5, "consumed %d", len(got))
        tp = TopicPartition("bytes.t", 0)
        c.commit({tp: OffsetAndMetadata(5, METADATA)})
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            desc = ka.describe_consumer_groups(["bytes.g"])[0]
            ids = [m.client_id for m in desc.members]
            check(ids == [CLIENT_ID], "client ids %r, want %r", ids, CLIENT_ID)
            off = ka.list_consumer_group_offsets("bytes.g")[tp]
            check(off.offset == 5 and off.metadata == METADATA, "live: %r", off)
        finally:
            ka.close()
        c.close()
        for rnd in ("restart", "kill -9"):
            b.restart(hard=rnd == "kill -9")
            ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
            try:
                deadline = time.time() + 20
                off = None
                while time.time() < deadline:
                    off = ka.list_consumer_group_offsets("bytes.g").get(tp)
                    if off is not None:
                        break
                    time.sleep(0.2)
                check(off is not None and off.offset == 5 and off.metadata == METADATA,
                      "%s: %r", rnd, off)
            finally:
                ka.close()


def test_librdkafka_non_ascii_ids():
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap})  # must outlive the future
        a.create_topics([NewTopic("na.t", 1, 1)])["na.t"].result(30)
        cid, inst = "l\u00ednea-3-\u6e29", "inst-\u00e9-1"
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "na.g", "client.id": cid,
                      "group.instance.id": inst, "auto.offset.reset": "earliest"})
        c.subscribe(["na.t"])
        deadline = time.time() + 30
        members = []
        while time.time() < deadline:
            c.poll(0.2)
            groups = a.list_groups("na.g", timeout=10)
            members = groups[0].members if groups else []
            if members and groups[0].state == "Stable":
                break
        check([m.client_id for m in members] == [cid], "client ids %r",
              [m.client_id for m in members])
        c.close()


if __name__ == "__main__":
    run_tests(globals())

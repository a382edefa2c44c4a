"""Power cut between a change and its audit record: the record always wins.

A change (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, CreateAcls, DeleteAcls,
an offsets reset through OffsetCommit, and with Kafka's own tools AlterUserScramCredentials,
DeleteRecords, OffsetDelete) writes an intent record to __audit and fsyncs it before the
change is made; an outcome record follows (docs/security.md). The broker is told, through the
test hook DEPOT_AUDIT_CRASH_AT, to die by SIGKILL at one point between the two:

  audit-intent-synced     the intent is durable, the change not made yet
  audit-change-made       the handler made the change (and its answer is built)
  audit-outcome-appended  the outcome record is appended but not fsynced

and to print how far __audit was fsynced. The test then does what a power cut does (the model
of test_fault_power_cut.py): every __audit byte after the fsynced point is thrown away (cut
exactly there, or torn at a random point after it, or torn with random bits flipped), while the
change's own files are left as they are (the worst case for the trail: the change survived).
After a restart, every change that is in effect has its intent record, with its principal.
"""

import glob
import os
import random
import re
import struct
import sys
import multiprocessing
import time

from depot_harness import check, run_tests
from sasl_harness import SaslBroker
import kafka_dist as kd
from test_audit import SETTINGS, admin, has, kcat, read_audit

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, ConfigResource, ConfigResourceType, NewPartitions,
                         NewTopic, ResourcePattern, ResourceType)
from kafka.structs import OffsetAndMetadata

POINTS = ["audit-intent-synced", "audit-change-made", "audit-outcome-appended"]
RND = random.Random(int(os.environ.get("SEED", "0")) or None)


def batch_end_after(data, offset):
    """Byte position just after the batch holding `offset`, or None."""
    pos = 0
    while pos + 12 <= len(data):
        base, blen = struct.unpack(">qi", data[pos:pos + 12])
        if blen < 49 or pos + 12 + blen > len(data):
            return None
        last = base + struct.unpack(">i", data[pos + 23:pos + 27])[0]
        pos += 12 + blen
        if base <= offset <= last:
            return pos
    return None


def power_cut_audit(b, durable):
    """Throws away what a power cut may throw away in __audit: bytes past offset `durable`."""
    segs = sorted(glob.glob(os.path.join(b.data_dir, "__audit-0", "*.log")))
    check(segs, "no __audit segment in %s", b.data_dir)
    cut_bytes = 0
    for seg in segs:
        base = int(os.path.basename(seg)[:20])
        with open(seg, "rb") as f:
            data = f.read()
        if durable <= base:
            lo = 0
        else:
            lo = batch_end_after(data, durable - 1)
            if lo is None:
                continue  # the durable point is past this segment: wholly durable
        if lo >= len(data):
            continue
        mode = RND.randrange(3)  # exactly at the durable point, torn, torn + flipped bits
        cut = lo if mode == 0 else RND.randint(lo, len(data))
        out = bytearray(data[:cut])
        if mode == 2:
            for _ in range(RND.randint(1, 8)):
                if cut > lo:
                    i = RND.randrange(lo, cut)
                    out[i] ^= 1 << RND.randrange(8)
        with open(seg, "wb") as f:
            f.write(out)
            f.flush()
            os.fsync(f.fileno())
        cut_bytes += len(data) - lo
    return cut_bytes


def crash_at(b, point, action, start_tool=None):
    """Starts b with the fault point armed, runs action (in a thread: it may never get its
    answer), waits for the SIGKILL and applies the power cut. Returns the bytes thrown away."""
    os.environ["DEPOT_AUDIT_CRASH_AT"] = point
    try:
        b.start()
    finally:
        del os.environ["DEPOT_AUDIT_CRASH_AT"]
    err = []

    def run():
        try:
            action()
        except Exception as e:  # the broker died under it: expected
            err.append(e)

    # its own process, killed once the broker is gone: a client retrying must not reach the
    # next start (where another fault point is armed)
    if start_tool:  # a JVM tool: its own process already
        t = start_tool()
        t.join = lambda timeout: t.wait(timeout)
    else:
        t = multiprocessing.get_context("fork").Process(target=run, daemon=True)
        t.start()
    try:
        b.proc.wait(60)
    except Exception:
        t.kill()
        check(False, "the broker did not reach fault point %s\n%s", point, b.log_tail())
    t.kill()
    t.join(10)
    b.proc = None
    with open(b.log_path) as f:
        hits = re.findall(r"audit fault point (\S+): __audit durable below offset (\d+)", f.read())
    check(hits and hits[-1][0] == point, "fault point %s not reported\n%s", point, b.log_tail())
    return power_cut_audit(b, int(hits[-1][1]))


def intents(recs, **want):
    return [r for r in has(recs, **want) if r.get("phase") == "intent"]


def test_power_cut_between_change_and_audit_record():
    with SaslBroker(settings=SETTINGS) as b:
        a = admin(b)
        a.create_topics([NewTopic("base", 2, 1), NewTopic("offs", 2, 1)])
        a.close()
        r = kcat(b, "admin", "admin-secret", "-P", "-t", "offs", "-p", "0", stdin="a\nb\nc\n")
        check(r.returncode == 0, "produce: %s", r.stderr)
        b.kill()
        cases = []  # (point, what, check of the trail after the restart)
        n = 0
        for point in POINTS:
            n += 1
            topic, gone, grp = "pc%d" % n, "del%d" % n, "grp%d" % n
            # set up what the changes work on (no fault point armed)
            b.start()
            a = admin(b)
            a.create_topics([NewTopic(gone, 1, 1)])
            a.close()
            b.kill()

            def ops(topic=topic, gone=gone, grp=grp, point=point):
                def create():
                    admin(b).create_topics([NewTopic(topic, 1, 1)])

                def delete():
                    admin(b).delete_topics([gone])

                def partitions():
                    admin(b).create_partitions({"base": NewPartitions(2 + n)})

                def configs():
                    admin(b).alter_configs([ConfigResource(
                        ConfigResourceType.TOPIC, "base", configs={"retention.ms": str(1000 * n)})])

                def acl_add():
                    admin(b).create_acls([ACL(
                        "User:bob", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                        ResourcePattern(ResourceType.TOPIC, "acl%d" % n,
                                        ACLResourcePatternType.LITERAL))])

                def acl_del():
                    admin(b).delete_acls([ACLFilter(
                        "User:bob", "*", ACLOperation.ANY, ACLPermissionType.ANY,
                        ResourcePattern(ResourceType.TOPIC, "acl%d" % (n - 1),
                                        ACLResourcePatternType.LITERAL))])

                def reset():
                    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=grp,
                                      security_protocol="SASL_PLAINTEXT",
                                      sasl_mechanism="SCRAM-SHA-256",
                                      sasl_plain_username="admin",
                                      sasl_plain_password="admin-secret",
                                      enable_auto_commit=False, api_version=(2, 5, 0))
                    c.assign([TopicPartition("offs", 0)])
                    c.commit({TopicPartition("offs", 0): OffsetAndMetadata(2, "")})
                    c.close()

                return [("CreateTopics", create,
                         dict(operation="CREATE", resource_type="TOPIC", resource_name=topic)),
                        ("DeleteTopics", delete,
                         dict(operation="DELETE", resource_type="TOPIC", resource_name=gone)),
                        ("CreatePartitions", partitions,
                         dict(operation="ALTER", resource_type="TOPIC", resource_name="base")),
                        ("AlterConfigs", configs,
                         dict(operation="ALTER_CONFIGS", resource_type="TOPIC",
                              resource_name="base")),
                        ("CreateAcls", acl_add,
                         dict(api="CreateAcls", operation="ALTER", resource_type="CLUSTER")),
                        ("DeleteAcls", acl_del,
                         dict(api="DeleteAcls", operation="ALTER", resource_type="CLUSTER")),
                        ("OffsetCommit", reset,
                         dict(api="OffsetCommit", operation="ALTER", resource_type="GROUP",
                              resource_name=grp))]

            for api, action, want in ops():
                if api == "DeleteAcls" and n == 1:
                    continue  # nothing of ours to delete yet
                cut = crash_at(b, point, action)
                cases.append((point, api, want, cut))
        b.start()
        recs = read_audit(b)
        a = admin(b)
        topics = set(a.list_topics())
        a.close()
        cut_total = 0
        for point, api, want, cut in cases:
            cut_total += cut
            got = intents(recs, principal="User:admin", allowed=True, **want)
            check(got, "%s at %s: no intent record %r survived the power cut (%d bytes cut)\n%r",
                  api, point, want, cut, [r for r in recs if r.get("api") == api])
        # the changes made before a crash are in effect: the test is not vacuous
        for i, point in enumerate(POINTS, 1):
            if point != "audit-intent-synced":
                check("pc%d" % i in topics, "pc%d (created at %s) is missing", i, point)
                check("del%d" % i not in topics, "del%d (deleted at %s) is back", i, point)
        resets = intents(recs, api="OffsetCommit", operation="ALTER", resource_type="GROUP")
        check(all(r.get("detail") == "offs:0=2" for r in resets), "reset detail: %r", resets)
        outcomes = [r for r in recs if r.get("phase") == "outcome"]
        by_off = {r.get("intent_offset") for r in outcomes}
        check(outcomes, "no outcome record at all")
        print("  %d crashes at %d fault points, %d bytes of unsynced __audit thrown away; every "
              "change has its intent (%d outcome records survived, %d intents)"
              % (len(cases), len(POINTS), cut_total, len(by_off),
                 len([r for r in recs if r.get("phase") == "intent"])))


def test_power_cut_with_kafka_tools():
    """AlterUserScramCredentials, DeleteRecords and OffsetDelete as Kafka's own tools send
    them, each cut at the point where the change is made but its outcome is not written."""
    ok, why = kd.available()
    if not ok:
        kd.skip("test_power_cut_with_kafka_tools", why)
        return
    with SaslBroker(settings=SETTINGS) as b:
        cfg = os.path.join(b.tmp, "admin.properties")
        with open(cfg, "w") as f:
            f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                    "required username=\"admin\" password=\"admin-secret\";\n")
        a = admin(b)
        a.create_topics([NewTopic("recs", 1, 1)])
        a.close()
        r = kcat(b, "admin", "admin-secret", "-P", "-t", "recs", "-p", "0", stdin="a\nb\nc\nd\n")
        check(r.returncode == 0, "produce: %s", r.stderr)
        c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="tools",
                          security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                          sasl_plain_username="admin", sasl_plain_password="admin-secret",
                          enable_auto_commit=False, api_version=(2, 5, 0))
        c.assign([TopicPartition("recs", 0)])
        c.commit({TopicPartition("recs", 0): OffsetAndMetadata(1, "")})
        c.close()
        offsets = os.path.join(b.tmp, "offsets.json")
        with open(offsets, "w") as f:
            f.write('{"partitions":[{"topic":"recs","partition":0,"offset":2}],"version":1}')
        bs = ["--bootstrap-server", b.bootstrap]
        b.kill()
        tools = [
            ("AlterUserScramCredentials", kd.CONFIGS,
             bs + ["--command-config", cfg, "--alter", "--add-config",
                   "SCRAM-SHA-256=[iterations=4096,password=carol-pw]", "--entity-type", "users",
                   "--entity-name", "carol"],
             dict(operation="ALTER", resource_type="CLUSTER")),
            ("DeleteRecords", "org.apache.kafka.tools.DeleteRecordsCommand",
             bs + ["--command-config", cfg, "--offset-json-file", offsets],
             dict(operation="DELETE", resource_type="TOPIC", resource_name="recs")),
            ("OffsetDelete", kd.CONSUMER_GROUPS,
             bs + ["--command-config", cfg, "--delete-offsets", "--group", "tools", "--topic",
                   "recs"],
             dict(operation="DELETE", resource_type="GROUP", resource_name="tools")),
        ]
        for api, main, args, want in tools:
            crash_at(b, "audit-change-made", None,
                     start_tool=lambda main=main, args=args: kd.start_tool(main, args))
        b.start()
        recs = read_audit(b)
        for api, _, _, want in tools:
            got = intents(recs, principal="User:admin", api=api, allowed=True, **want)
            check(got, "%s: no intent record survived: %r", api,
                  [r for r in recs if r.get("api") == api])
        sc = intents(recs, api="AlterUserScramCredentials")
        check("upsert carol mechanism 1" in sc[0].get("detail", ""), "SCRAM detail: %r", sc)
        od = intents(recs, api="OffsetDelete")
        check(od[0].get("detail") == "recs:0", "OffsetDelete detail: %r", od)
        print("  3 changes by Kafka's tools, each cut after the change: every intent survived")


if __name__ == "__main__":
    run_tests(globals())

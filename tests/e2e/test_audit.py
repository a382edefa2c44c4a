"""The audit trail in __audit with real clients: after a scripted session of several users
(SCRAM logins, a wrong password, ACL and topic changes, produce/consume, denials, attempts on
__audit itself) every denial, change, authentication and first access is there as one JSON
object with the right principal; repeated accesses are summarised with a count; nobody (not
even a super user) may write, delete or reconfigure __audit. Fault test: kill -9 while
CreateTopics requests are in flight never leaves a created topic without its audit record."""

import json
import random
import subprocess
import threading
import time

from depot_harness import check, run_tests
from sasl_harness import SaslBroker

from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, NewTopic, ResourcePattern, ResourceType)

SETTINGS = {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": "User:admin", "audit.enabled": "true",
            "audit.summary.interval.ms": "1000"}


def kcat(b, user, pw, *args, stdin=None, mech="SCRAM-SHA-256"):
    cmd = ["kcat", "-b", b.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
           "-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + user,
           "-X", "sasl.password=" + pw, "-X", "client.id=cid-" + user, "-m", "5"] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=40)


def admin(b):
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="admin",
                            sasl_plain_password="admin-secret", api_version=(2, 5, 0))


def read_audit(b):
    r = kcat(b, "admin", "admin-secret", "-C", "-t", "__audit", "-o", "beginning", "-e", "-q")
    check(r.returncode == 0, "reading __audit: %s", r.stderr)
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    for rec in recs:
        for k in ("time", "principal", "client_address", "client_id", "listener", "api",
                  "operation", "resource_type", "resource_name", "allowed", "error", "count"):
            check(k in rec, "field %s missing in %r", k, rec)
    return recs


def has(recs, **want):
    return [r for r in recs if all(r.get(k) == v for k, v in want.items())]


def test_scripted_session_is_in_the_trail():
    with SaslBroker(settings=SETTINGS) as b:
        a = admin(b)
        a.create_topics([NewTopic("sensors.line1", 1, 1), NewTopic("orders", 1, 1)])
        a.create_acls([ACL("User:alice", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                           ResourcePattern(ResourceType.TOPIC, "sensors.",
                                           ACLResourcePatternType.PREFIXED)),
                       ACL("User:bob", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                           ResourcePattern(ResourceType.TOPIC, "orders",
                                           ACLResourcePatternType.LITERAL))])
        a.close()
        for i in range(3):
            r = kcat(b, "alice", "alice-pw", "-P", "-t", "sensors.line1", stdin="v%d\n" % i)
            check(r.returncode == 0, "alice produce: %s", r.stderr)
        kcat(b, "alice", "alice-pw", "-P", "-t", "orders", stdin="no\n")  # denied
        kcat(b, "alice", "alice-pw", "-P", "-t", "__audit", stdin="forged\n")  # denied
        kcat(b, "admin", "admin-secret", "-P", "-t", "__audit", stdin="forged\n")  # denied too
        kcat(b, "bob", "wrong-pw", "-L")  # authentication failure
        kcat(b, "admin", "admin-secret", "-P", "-t", "orders", stdin="o1\n")
        r = kcat(b, "bob", "bob-pw", "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
        check(r.returncode == 0 and "o1" in r.stdout, "bob consume: %r", r)
        a = admin(b)
        try:
            a.delete_topics(["__audit"])
        except Exception:
            pass
        a.close()
        time.sleep(2.5)  # a summary interval passes
        recs = read_audit(b)
        check(has(recs, principal="User:admin", operation="CREATE", resource_type="TOPIC",
                  resource_name="orders", allowed=True), "no CreateTopics record")
        check(has(recs, principal="User:admin", api="CreateAcls", operation="ALTER",
                  resource_type="CLUSTER", allowed=True), "no CreateAcls record")
        acl = has(recs, api="CreateAcls", phase="intent")
        check(acl and "add User:alice ALLOW WRITE TOPIC:PREFIXED:sensors. from *" in
              acl[0].get("detail", "") and "add User:bob ALLOW READ TOPIC:LITERAL:orders from *"
              in acl[0].get("detail", ""), "CreateAcls intent without its bindings: %r", acl)
        first = has(recs, principal="User:alice", operation="WRITE", resource_name="sensors.line1",
                    allowed=True)
        check(first and first[0]["count"] == 1 and first[0]["client_id"] == "cid-alice" and
              first[0]["listener"] == "SASL_PLAINTEXT" and first[0]["client_address"] == "127.0.0.1",
              "first access: %r", first)
        check(sum(r["count"] for r in first) == 3, "alice's 3 produces counted: %r", first)
        # kcat asks Metadata for the topic first: the denial is DESCRIBE (or WRITE)
        check(has(recs, principal="User:alice", resource_name="orders", allowed=False,
                  error="TOPIC_AUTHORIZATION_FAILED"), "no denial for orders")
        check(has(recs, principal="User:alice", resource_name="__audit", allowed=False),
              "no denial of alice on __audit")
        check(has(recs, principal="User:admin", operation="WRITE", resource_name="__audit",
                  allowed=False), "super user wrote __audit: %r",
              has(recs, principal="User:admin", resource_name="__audit"))
        check(has(recs, principal="User:admin", operation="DELETE", resource_name="__audit",
                  allowed=False), "no denial of deleting __audit")
        check(has(recs, principal="User:bob", operation="AUTHENTICATE", allowed=False,
                  error="SASL_AUTHENTICATION_FAILED"), "no failed login for bob")
        check(has(recs, principal="User:alice", operation="AUTHENTICATE", allowed=True,
                  resource_name="SCRAM-SHA-256"), "no login for alice")
        check(has(recs, principal="User:bob", operation="READ", resource_name="orders",
                  allowed=True), "no first READ by bob")
        check(not any("forged" in json.dumps(r) for r in recs), "a forged record got in")
        # alice's metadata hides orders: that denial is in the trail too
        check(has(recs, principal="User:alice", operation="DESCRIBE", resource_name="orders",
                  allowed=False), "hidden topic not audited")


def test_kill_during_changes_never_loses_an_audit_record():
    with SaslBroker(settings=SETTINGS) as b:
        made = 0
        for round_ in range(4):
            stop = threading.Event()

            def creator(n=round_):
                i = 0
                while not stop.is_set():
                    a = None
                    try:
                        a = admin(b)
                        a.create_topics([NewTopic("k%d-%d" % (n, i), 1, 1)], timeout_ms=2000)
                    except Exception:
                        return
                    finally:
                        if a is not None:
                            a.close()
                    i += 1

            t = threading.Thread(target=creator, daemon=True)  # never holds up the exit
            t.start()
            time.sleep(0.5 + random.random() * 0.5)
            b.kill()
            stop.set()
            t.join(30)
            b.start()
        r = kcat(b, "admin", "admin-secret", "-L", "-J")
        topics = [x["topic"] for x in json.loads(r.stdout)["topics"] if x["topic"].startswith("k")]
        recs = read_audit(b)
        for tp in topics:
            check(has(recs, principal="User:admin", operation="CREATE", resource_type="TOPIC",
                      resource_name=tp, allowed=True), "topic %s exists without audit record", tp)
        made = len(topics)
        check(made > 0, "no topic was created at all")
        print("  %d topics created across 4 kill -9s, every one audited" % made)


def test_offsets_reset_is_audited_as_a_change():
    """kafka-consumer-groups --reset-offsets --execute (AdminClient.alterConsumerGroupOffsets:
    an OffsetCommit from outside the group) and --delete-offsets are changes: ALTER / DELETE on
    the group with the offsets, as intent + outcome, not a READ. Without Kafka's jars the same
    commit is sent by kafka-python from outside the group (assign(), generation -1)."""
    import kafka_dist as kd
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    with SaslBroker(settings=SETTINGS) as b:
        a = admin(b)
        a.create_topics([NewTopic("meter", 2, 1)])
        a.close()
        r = kcat(b, "admin", "admin-secret", "-P", "-t", "meter", "-p", "0", stdin="a\nb\nc\n")
        check(r.returncode == 0, "produce: %s", r.stderr)
        ok, why = kd.available()
        if ok:
            cfg = b.tmp + "/admin.properties"
            with open(cfg, "w") as f:
                f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule"
                        " required username=\"admin\" password=\"admin-secret\";\n")
            bs = ["--bootstrap-server", b.bootstrap, "--command-config", cfg]
            r = kd.run_tool(kd.CONSUMER_GROUPS, bs + ["--reset-offsets", "--group", "etl",
                                                      "--topic", "meter:0", "--to-offset", "2",
                                                      "--execute"])
            check(r.returncode == 0 and "etl" in r.stdout, "reset-offsets: %s %s", r.stdout,
                  r.stderr)
            r = kd.run_tool(kd.CONSUMER_GROUPS, bs + ["--delete-offsets", "--group", "etl",
                                                      "--topic", "meter"])
            check(r.returncode == 0, "delete-offsets: %s %s", r.stdout, r.stderr)
            how = "Kafka %s kafka-consumer-groups" % kd.kafka_version()
        else:
            kd.skip("kafka-consumer-groups part", why + "; kafka-python's commit instead")
            c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="etl",
                              security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                              sasl_plain_username="admin", sasl_plain_password="admin-secret",
                              enable_auto_commit=False, api_version=(2, 5, 0))
            c.assign([TopicPartition("meter", 0)])
            c.commit({TopicPartition("meter", 0): OffsetAndMetadata(2, "")})
            c.close()
            how = "kafka-python assign()+commit"
        recs = read_audit(b)
        grp = [x for x in recs if x["resource_type"] == "GROUP" and x["resource_name"] == "etl"]
        check(not [x for x in grp if x["operation"] == "READ"], "reset audited as READ: %r", grp)
        alter = [x for x in grp if x["operation"] == "ALTER" and x["api"] == "OffsetCommit"]
        check([x for x in alter if x.get("phase") == "intent" and x.get("detail") == "meter:0=2"
               and x["principal"] == "User:admin"], "no ALTER intent with the offsets: %r", grp)
        out = [x for x in alter if x.get("phase") == "outcome"]
        check(out and out[0]["error"] is None and
              out[0]["intent_offset"] in [i for i, x in enumerate(recs)
                                          if x.get("phase") == "intent"
                                          and x["api"] == "OffsetCommit"],
              "no outcome linked to the intent: %r", out)
        if ok:
            dl = [x for x in grp if x["operation"] == "DELETE" and x["api"] == "OffsetDelete"]
            check([x for x in dl if x.get("phase") == "intent" and x.get("detail") == "meter:0,meter:1"],
                  "no OffsetDelete intent with the partition: %r", dl)
            check([x for x in dl if x.get("phase") == "outcome" and x["error"] is None],
                  "no OffsetDelete outcome: %r", dl)
        print("  offsets reset by %s: ALTER intent %r + outcome" % (how, alter[0]["detail"]))


def test_summary_counts_survive_kill_9():
    """Accesses counted since the last summary record live in a MAP_SHARED counter file: a
    kill -9 does not lose them; the next start writes them as "recovered" summaries. Every
    Produce request made is counted exactly once in __audit (first access + summaries)."""
    from depot_harness import Broker, api_versions, produce_v3, record_batch
    from fault_harness import create_topic
    rnd = random.Random()
    with Broker(settings={"audit.enabled": "true", "audit.summary.interval.ms": "1000"}) as b:
        create_topic(b.bootstrap, "cnt", 1)
        made = kills = 0
        for _ in range(6):
            for _ in range(rnd.randint(5, 60)):
                err, _ = produce_v3(b.port, "cnt", 0, record_batch([b"x"]))
                check(err == 0, "produce error %d", err)
                made += 1
                if rnd.random() < 0.05:
                    time.sleep(1.1)  # a summary interval passes mid-round
            b.kill()
            kills += 1
            b.start()
        api_versions(b.port)  # serving (the port accepts only once start-up is done)
        b.restart()  # a clean stop writes what is left
        r = subprocess.run(["kcat", "-b", b.bootstrap, "-C", "-t", "__audit", "-o", "beginning",
                            "-e", "-q"], capture_output=True, text=True, timeout=40)
        recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        w = [x for x in recs if x["operation"] == "WRITE" and x["resource_name"] == "cnt"]
        total = sum(x["count"] for x in w)
        rec = [x for x in w if x.get("phase") == "recovered"]
        check(total == made, "%d Produce requests made, %d counted in __audit: %r", made, total, w)
        check(rec, "no recovered summary after %d kill -9s: %r", kills, w)
        print("  %d Produce requests across %d kill -9s: %d counted (%d records, %d recovered)"
              % (made, kills, total, len(w), len(rec)))


def test_audit_retention_follows_the_config():
    """audit.retention.ms is __audit's retention.ms: changed in server.properties it applies at
    the next start; changed as a dynamic broker config it applies within a second and stays
    across a restart."""
    from confluent_kafka.admin import AdminClient, ConfigResource
    from depot_harness import Broker

    def audit_retention(b):
        a = AdminClient({"bootstrap.servers": b.bootstrap, "log_level": 0})
        fs = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "__audit")])
        cfg = list(fs.values())[0].result(20)
        return cfg["retention.ms"].value

    with Broker(settings={"audit.enabled": "true"}) as b:
        check(audit_retention(b) == "-1", "default: %r", audit_retention(b))
        b.stop()
        b.settings["audit.retention.ms"] = "3600000"
        b.start()
        check(audit_retention(b) == "3600000", "server.properties change not applied at start: "
              "%r", audit_retention(b))
        a = AdminClient({"bootstrap.servers": b.bootstrap, "log_level": 0})
        fs = a.alter_configs([ConfigResource(ConfigResource.Type.BROKER, "1",
                                             set_config={"audit.retention.ms": "7200000"})])
        for f in fs.values():
            f.result(20)
        deadline = time.time() + 5
        while audit_retention(b) != "7200000" and time.time() < deadline:
            time.sleep(0.2)
        check(audit_retention(b) == "7200000", "dynamic change not applied: %r",
              audit_retention(b))
        b.restart()
        check(audit_retention(b) == "7200000", "dynamic value lost at restart: %r",
              audit_retention(b))
        print("  __audit retention.ms: -1, then 3600000 (server.properties), then 7200000 "
              "(dynamic), kept across a restart")


if __name__ == "__main__":
    run_tests(globals())

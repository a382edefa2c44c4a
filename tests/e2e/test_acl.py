"""ACLs with real clients on a SASL_PLAINTEXT listener (authorizer.class.name set to Kafka's
StandardAuthorizer class, super.users=User:admin): ACLs created and listed with kafka-python's
admin client and depotctl; an ACL matrix checked with kcat and kafka-python (WRITE on prefix
sensors. produces there and nowhere else, cannot read, sees only its topics in Metadata; DENY
wins over ALLOW; the super user passes; nothing without an ACL); the same ACLs after a restart;
DeleteAcls; SECURITY_DISABLED without an authorizer."""

import os
import subprocess

from depot_harness import check, run_tests
from sasl_harness import SaslBroker

from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, KafkaAdminClient, NewTopic, ResourcePattern,
                         ResourcePatternFilter, ResourceType)

HERE = os.path.dirname(os.path.abspath(__file__))
DEPOTCTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(
    os.path.join(HERE, "../../build/depotctl"))
AUTHZ = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
         "super.users": "User:admin"}


def kcat(b, user, pw, *args, stdin=None):
    cmd = ["kcat", "-b", b.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
           "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=" + user,
           "-X", "sasl.password=" + pw, "-m", "5"] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=40)


def admin(b, user="admin", pw="admin-secret"):
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                            sasl_plain_password=pw, api_version=(2, 5, 0))


def produce(b, user, pw, topic):
    r = kcat(b, user, pw, "-P", "-t", topic, stdin="x\n")
    return r.returncode == 0 and "authorization failed" not in r.stderr.lower(), r.stderr


def topics_seen(b, user, pw):
    r = kcat(b, user, pw, "-L", "-J")
    import json
    check(r.returncode == 0, "metadata for %s: %s", user, r.stderr)
    return sorted(t["topic"] for t in json.loads(r.stdout)["topics"])


def ctl(b, *args):
    conf = os.path.join(b.tmp, "admin.properties")
    with open(conf, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                "required username=\"admin\" password=\"admin-secret\";\n")
    return subprocess.run([DEPOTCTL] + list(args[:1]) + list(args[1:]) +
                          ["--bootstrap-server", b.bootstrap, "--command-config", conf],
                          capture_output=True, text=True, timeout=30)


def setup_acls(b):
    a = admin(b)
    a.create_topics([NewTopic("sensors.line1", 1, 1), NewTopic("sensors.secret", 1, 1),
                     NewTopic("orders", 1, 1)])
    alice_write = ACL("User:alice", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                      ResourcePattern(ResourceType.TOPIC, "sensors.",
                                      ACLResourcePatternType.PREFIXED))
    deny_secret = ACL("User:alice", "*", ACLOperation.WRITE, ACLPermissionType.DENY,
                      ResourcePattern(ResourceType.TOPIC, "sensors.secret",
                                      ACLResourcePatternType.LITERAL))
    res = a.create_acls([alice_write, deny_secret])
    check(not res["failed"] and len(res["succeeded"]) == 2, "create_acls: %r", res)
    # bob reads orders with group g-bob, through depotctl (kafka-acls flags)
    r = ctl(b, "acls", "--add", "--allow-principal", "User:bob", "--operation", "Read",
            "--operation", "Describe", "--topic", "orders")
    check(r.returncode == 0, "depotctl acls --add: %s %s", r.stdout, r.stderr)
    r = ctl(b, "acls", "--add", "--allow-principal", "User:bob", "--operation", "Read",
            "--group", "g-bob")
    check(r.returncode == 0, "depotctl acls --add group: %s", r.stderr)
    a.close()


def check_matrix(b):
    ok, err = produce(b, "alice", "alice-pw", "sensors.line1")
    check(ok, "alice WRITE sensors.line1: %s", err)
    ok, err = produce(b, "alice", "alice-pw", "orders")
    check(not ok, "alice wrote to orders")
    ok, err = produce(b, "alice", "alice-pw", "sensors.secret")
    check(not ok, "DENY did not win on sensors.secret")
    r = kcat(b, "alice", "alice-pw", "-C", "-t", "sensors.line1", "-o", "beginning", "-e")
    check(r.returncode != 0 or "authoriz" in r.stderr.lower(), "alice could read: %r", r)
    seen = topics_seen(b, "alice", "alice-pw")
    check(seen == ["sensors.line1", "sensors.secret"], "alice sees %r", seen)
    seen = topics_seen(b, "bob", "bob-pw")
    check(seen == ["orders"], "bob sees %r", seen)
    ok, _ = produce(b, "bob", "bob-pw", "orders")
    check(not ok, "bob (READ only) produced to orders")
    ok, err = produce(b, "admin", "admin-secret", "orders")
    check(ok, "super user produce: %s", err)
    r = kcat(b, "bob", "bob-pw", "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
    check(r.returncode == 0 and r.stdout.split() and set(r.stdout.split()) == {"x"},
          "bob reads orders: %r", r)
    seen = topics_seen(b, "admin", "admin-secret")
    check({"orders", "sensors.line1", "sensors.secret"} <= set(seen), "admin sees %r", seen)


def test_acl_matrix_survives_restart():
    with SaslBroker(settings=AUTHZ) as b:
        setup_acls(b)
        check_matrix(b)
        a = admin(b)
        acls, err = a.describe_acls(ACLFilter(None, None, ACLOperation.ANY,
                                              ACLPermissionType.ANY,
                                              ResourcePatternFilter(ResourceType.ANY, None,
                                                                    ACLResourcePatternType.ANY)))
        check(len(acls) == 5, "describe_acls: %r %r", acls, err)
        a.close()
        r = ctl(b, "acls", "--list")
        check(r.returncode == 0 and "User:bob" in r.stdout and "Prefixed:sensors." in r.stdout,
              "depotctl acls --list: %s %s", r.stdout, r.stderr)
        b.restart()
        check_matrix(b)  # the same ACLs from the data dir
        # alice (no ALTER on the cluster) may not change ACLs
        a = admin(b, "alice", "alice-pw")
        res = a.create_acls([ACL("User:alice", "*", ACLOperation.ALL, ACLPermissionType.ALLOW,
                                 ResourcePattern(ResourceType.TOPIC, "orders",
                                                 ACLResourcePatternType.LITERAL))])
        check(res["failed"], "alice created an ACL: %r", res)
        a.close()
        # delete the DENY: alice can write sensors.secret now
        a = admin(b)
        res = a.delete_acls([ACLFilter("User:alice", None, ACLOperation.WRITE,
                                       ACLPermissionType.DENY,
                                       ResourcePatternFilter(ResourceType.TOPIC, "sensors.secret",
                                                             ACLResourcePatternType.LITERAL))])
        check(len(res) == 1 and len(res[0][1]) == 1, "delete_acls: %r", res)
        a.close()
        ok, err = produce(b, "alice", "alice-pw", "sensors.secret")
        check(ok, "after DeleteAcls: %s", err)


def test_no_acl_no_access_and_everyone_switch():
    with SaslBroker(settings=AUTHZ) as b:
        a = admin(b)
        a.create_topics([NewTopic("open", 1, 1)])
        a.close()
        ok, _ = produce(b, "bob", "bob-pw", "open")
        check(not ok, "bob produced without any ACL")
    with SaslBroker(settings=dict(AUTHZ, **{"allow.everyone.if.no.acl.found": "true"})) as b:
        a = admin(b)
        a.create_topics([NewTopic("open", 1, 1)])
        a.close()
        ok, err = produce(b, "bob", "bob-pw", "open")
        check(ok, "allow.everyone.if.no.acl.found: %s", err)


def test_security_disabled_without_authorizer():
    with SaslBroker() as b:
        r = ctl(b, "acls", "--list")
        check(r.returncode != 0 and "SECURITY_DISABLED" in r.stderr, "acls without authorizer: %r",
              r)


def test_users_through_the_kafka_api():
    """DescribeUserScramCredentials / AlterUserScramCredentials via depotctl users: a user
    added at runtime logs in with both SCRAM mechanisms and PLAIN; deleted, it cannot."""
    with SaslBroker(settings=AUTHZ) as b:
        r = ctl(b, "users", "add", "--user", "dave", "--password", "dave-pw", "--iterations",
                "8192")
        check(r.returncode == 0, "users add: %s %s", r.stdout, r.stderr)
        r = ctl(b, "users", "list")
        check(r.returncode == 0 and "dave\tSCRAM-SHA-256\titerations=8192" in r.stdout and
              "dave\tSCRAM-SHA-512" in r.stdout and "admin\tSCRAM-SHA-256" in r.stdout,
              "users list: %s %s", r.stdout, r.stderr)
        with open(os.path.join(b.data_dir, "__scram_credentials")) as f:
            check("dave-pw" not in f.read(), "password on disk")
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"):
            r = subprocess.run(["kcat", "-b", b.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                                "-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=dave",
                                "-X", "sasl.password=dave-pw", "-L", "-m", "5"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, "dave via %s: %s", mech, r.stderr)
        # alice is not allowed to alter users (ALTER on the cluster)
        conf = os.path.join(b.tmp, "alice.properties")
        with open(conf, "w") as f:
            f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                    "sasl.username=alice\nsasl.password=alice-pw\n")
        r = subprocess.run([DEPOTCTL, "users", "delete", "--user", "dave", "--bootstrap-server",
                            b.bootstrap, "--command-config", conf],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "CLUSTER_AUTHORIZATION_FAILED" in r.stderr,
              "alice deleted a user: %r", r)
        r = ctl(b, "users", "delete", "--user", "dave")
        check(r.returncode == 0, "users delete: %s", r.stderr)
        b.restart()
        r = subprocess.run(["kcat", "-b", b.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                            "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=dave",
                            "-X", "sasl.password=dave-pw", "-L", "-m", "5"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "deleted user still logs in")


if __name__ == "__main__":
    run_tests(globals())

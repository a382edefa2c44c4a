"""Kafka's own Java tools (4.1.1) against Depot's security over SASL_SSL: kafka-configs adds
a SCRAM user (AlterUserScramCredentials), kafka-acls
adds and lists ACLs, the console producer and consumer authenticate as the new user with
SCRAM-SHA-512 over TLS (PEM truststore, KIP-651) and are held to the ACLs."""

import os

import kafka_dist as kd
from depot_harness import check, run_tests
from test_tls import TlsBroker


def props(b, path, user, pw, mech="SCRAM-SHA-512"):
    with open(path, "w") as f:
        f.write("security.protocol=SASL_SSL\n"
                "ssl.truststore.type=PEM\nssl.truststore.location=%s\n"
                "sasl.mechanism=%s\n"
                "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                "required username=\"%s\" password=\"%s\";\n" % (b.certs["ca"], mech, user, pw))
    return path


def test_kafka_tools_over_sasl_ssl():
    ok, why = kd.available()
    if not ok:
        kd.skip("test_kafka_tools_over_sasl_ssl", why)
        return
    settings = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:admin"}
    with TlsBroker(settings=settings) as b:
        admin = props(b, os.path.join(b.tmp, "admin.properties"), "admin", "admin-secret",
                      "SCRAM-SHA-256")
        bs = ["--bootstrap-server", b.bootstrap]
        r = kd.run_tool(kd.CONFIGS, bs + ["--command-config", admin, "--alter", "--add-config",
                                          "SCRAM-SHA-512=[iterations=8192,password=eve-pw]",
                                          "--entity-type", "users", "--entity-name", "eve"])
        check(r.returncode == 0, "kafka-configs add user: %s %s", r.stdout, r.stderr)
        # (kafka-configs --describe --entity-type users also needs DescribeClientQuotas, which
        # Depot does not serve; eve logging in below is the proof that the credential works.)
        r = kd.run_tool(kd.TOPICS, bs + ["--command-config", admin, "--create", "--topic",
                                         "java.sec", "--partitions", "1"])
        check(r.returncode == 0, "kafka-topics create: %s", r.stderr)
        r = kd.run_tool(kd.ACLS, bs + ["--command-config", admin, "--add", "--allow-principal",
                                       "User:eve", "--operation", "Write", "--operation", "Read",
                                       "--topic", "java.sec"])
        check(r.returncode == 0, "kafka-acls add: %s %s", r.stdout, r.stderr)
        r = kd.run_tool(kd.ACLS, bs + ["--command-config", admin, "--add", "--allow-principal",
                                       "User:eve", "--operation", "Read", "--group", "java-g"])
        check(r.returncode == 0, "kafka-acls add group: %s", r.stderr)
        r = kd.run_tool(kd.ACLS, bs + ["--command-config", admin, "--list", "--topic",
                                       "java.sec"])
        check(r.returncode == 0 and "User:eve" in r.stdout and "WRITE" in r.stdout,
              "kafka-acls list: %s %s", r.stdout, r.stderr)
        eve = props(b, os.path.join(b.tmp, "eve.properties"), "eve", "eve-pw")
        r = kd.run_tool(kd.CONSOLE_PRODUCER, bs + ["--producer.config", eve, "--topic",
                                                   "java.sec"], input="j1\nj2\n", timeout=120)
        check(r.returncode == 0, "console producer as eve: %s", r.stderr[-2000:])
        r = kd.run_tool(kd.CONSOLE_CONSUMER, bs + ["--consumer.config", eve, "--topic",
                                                   "java.sec", "--group", "java-g",
                                                   "--from-beginning", "--max-messages", "2",
                                                   "--timeout-ms", "30000"], timeout=120)
        check(r.returncode == 0 and r.stdout.split() == ["j1", "j2"],
              "console consumer as eve: %r %s", r.stdout, r.stderr[-2000:])
        # eve may not write elsewhere (TOPIC_AUTHORIZATION_FAILED)
        r = kd.run_tool(kd.CONSOLE_PRODUCER, bs + ["--producer.config", eve, "--topic",
                                                   "java.other"], input="x\n", timeout=120)
        check("TopicAuthorizationException" in r.stderr or "Not authorized" in r.stderr,
              "eve wrote to java.other: %s", r.stderr[-2000:])


if __name__ == "__main__":
    run_tests(globals())

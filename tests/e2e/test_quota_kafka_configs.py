"""Client quotas through Apache Kafka's own kafka-configs (kafka.admin.ConfigCommand, jars from
scripts/fetch-kafka; skipped with a message where they cannot be fetched): --alter with
--add-config / --delete-config for --entity-type users and clients, names, --entity-default
and user + client-id pairs, --describe, the quotas after a restart, a value Kafka refuses,
and, with an authorizer on a SASL listener, ALTER_CONFIGS / DESCRIBE_CONFIGS on the cluster
checked as Kafka checks them. Run with /usr/bin/python3."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_dist as kd  # noqa: E402
from depot_harness import Broker, check, run_tests  # noqa: E402
from sasl_harness import SaslBroker  # noqa: E402

CONFIGS = "kafka.admin.ConfigCommand"


def configs(bs, args, command_config=None, ok=True):
    extra = ["--command-config", command_config] if command_config else []
    r = kd.run_tool(CONFIGS, ["--bootstrap-server", bs] + extra + args)
    if ok:
        check(r.returncode == 0, "kafka-configs %s: exit %d\n%s%s", " ".join(args),
              r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    return r


def test_kafka_configs_users_and_clients():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_kafka_configs_users_and_clients", why)
    with Broker() as b:
        bs = b.bootstrap
        configs(bs, ["--alter", "--entity-type", "users", "--entity-name", "alice",
                     "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152"])
        configs(bs, ["--alter", "--entity-type", "clients", "--entity-default",
                     "--add-config", "producer_byte_rate=65536"])
        configs(bs, ["--alter", "--entity-type", "users", "--entity-name", "alice",
                     "--entity-type", "clients", "--entity-name", "scada",
                     "--add-config", "request_percentage=50,controller_mutation_rate=10"])
        out = configs(bs, ["--describe", "--entity-type", "users", "--entity-name",
                           "alice"]).stdout
        check("consumer_byte_rate=2097152.0" in out and "producer_byte_rate=1048576.0" in out,
              "describe alice: %s", out)
        out = configs(bs, ["--describe", "--entity-type", "clients"]).stdout
        check("default client-id" in out and "producer_byte_rate=65536.0" in out,
              "describe clients: %s", out)
        out = configs(bs, ["--describe", "--entity-type", "users", "--entity-name", "alice",
                           "--entity-type", "clients", "--entity-name", "scada"]).stdout
        check("request_percentage=50.0" in out and "controller_mutation_rate=10.0" in out,
              "describe alice/scada: %s", out)
        configs(bs, ["--alter", "--entity-type", "users", "--entity-name", "alice",
                     "--delete-config", "consumer_byte_rate"])
        r = configs(bs, ["--alter", "--entity-type", "users", "--entity-name", "bob",
                         "--add-config", "producer_byte_rate=1.5"], ok=False)
        check(r.returncode != 0 and "InvalidRequestException" in r.stderr,
              "a non-Long byte rate: exit %d %s", r.returncode, r.stderr[-800:])
        b.restart()
        out = configs(bs, ["--describe", "--entity-type", "users", "--entity-name",
                           "alice"]).stdout
        check("producer_byte_rate=1048576.0" in out and "consumer_byte_rate" not in out,
              "after restart: %s", out)
        out = configs(bs, ["--describe", "--entity-type", "clients"]).stdout
        check("producer_byte_rate=65536.0" in out, "clients after restart: %s", out)
        print("    kafka-configs: users/clients/defaults/pairs set, described, deleted, kept "
              "across a restart; 1.5 refused")


def test_kafka_configs_authorization():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_kafka_configs_authorization", why)
    with SaslBroker({"authorizer.class.name":
                     "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                     "super.users": "User:admin"}) as b:
        tmp = tempfile.mkdtemp(prefix="depot-e2e-qcfg-")
        cc = {}
        for user, pw in (("admin", "admin-secret"), ("alice", "alice-pw")):
            cc[user] = os.path.join(tmp, user + ".properties")
            with open(cc[user], "w") as f:
                f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                        "sasl.jaas.config=org.apache.kafka.common.security.scram."
                        "ScramLoginModule required username=\"%s\" password=\"%s\";\n"
                        % (user, pw))
        alter = ["--alter", "--entity-type", "clients", "--entity-name", "line2",
                 "--add-config", "producer_byte_rate=4096"]
        r = configs(b.bootstrap, alter, cc["alice"], ok=False)
        check(r.returncode != 0 and "ClusterAuthorization" in r.stderr,
              "alice may not alter quotas: exit %d %s", r.returncode, r.stderr[-800:])
        r = configs(b.bootstrap, ["--describe", "--entity-type", "clients"], cc["alice"],
                    ok=False)
        check(r.returncode != 0 and "ClusterAuthorization" in r.stderr,
              "alice may not describe quotas: exit %d %s", r.returncode, r.stderr[-800:])
        configs(b.bootstrap, alter, cc["admin"])
        out = configs(b.bootstrap, ["--describe", "--entity-type", "clients"],
                      cc["admin"]).stdout
        check("producer_byte_rate=4096.0" in out, "admin's describe: %s", out)


if __name__ == "__main__":
    run_tests(globals())

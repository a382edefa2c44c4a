"""KIP-848 consumer groups (group.protocol=consumer) with Apache Kafka's own Java client and
tools (jars from scripts/fetch-kafka via kafka_dist.py; skipped with a message where they
cannot be fetched):
  - tests/java/src/DepotConsumerGroupCheck.java: three consumers join one after another, one
    leaves; every record consumed exactly once with commits, no partition owned by two
    members at once, describeConsumerGroups/listGroups see a consumer group; once with the
    server assignor uniform, once with range;
  - kafka-consumer-groups --describe (and --members, --state) on a live consumer group whose
    member is Kafka's console consumer with group.protocol=consumer;
  - the classic protocol on a group id held by a consumer group is refused
    (INCONSISTENT_GROUP_PROTOCOL), and a broker without "consumer" in
    group.coordinator.rebalance.protocols does not serve ConsumerGroupHeartbeat.
Run with /usr/bin/python3."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_dist as kd  # noqa: E402
from depot_harness import Broker, check, run_tests  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_SRC = os.path.normpath(os.path.join(HERE, "../java/src/DepotConsumerGroupCheck.java"))
FAST = {"group.consumer.heartbeat.interval.ms": 500, "group.initial.rebalance.delay.ms": 0}


def tool(main_class, bs, args, **kw):
    r = kd.run_tool(main_class, ["--bootstrap-server", bs] + args, **kw)
    check(r.returncode == 0, "%s %s: exit %d\n%s%s", main_class.split(".")[-1], " ".join(args),
          r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    return r.stdout


def test_java_consumer_group_rebalances():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_java_consumer_group_rebalances", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-j848-")
    try:
        classes = kd.compile_java([JAVA_SRC], tmp)
        with Broker(FAST) as b:
            for assignor in ("uniform", "range"):
                t0 = time.time()
                r = kd.run_tool("DepotConsumerGroupCheck", [b.bootstrap, assignor],
                                classpath=[classes], timeout=240)
                for line in r.stdout.splitlines():
                    print("    java %s: %s" % (assignor, line))
                check(r.returncode == 0 and "ALL OK" in r.stdout,
                      "DepotConsumerGroupCheck %s exit %d\n%s", assignor, r.returncode,
                      r.stderr[-3000:])
                print("    %s: %.1f s" % (assignor, time.time() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wait_describe(bs, group, want, timeout=60):
    end = time.time() + timeout
    out = ""
    while time.time() < end:
        r = kd.run_tool(kd.CONSUMER_GROUPS, ["--bootstrap-server", bs, "--describe", "--group",
                                             group], timeout=60)
        out = r.stdout + r.stderr
        if want(out):
            return out
        time.sleep(1)
    return out


def committed(out):
    """Sum of CURRENT-OFFSET over the --describe rows (those with a number)."""
    rows = [l.split() for l in out.splitlines() if l.startswith("cg.cli.g ")]
    return sum(int(r[3]) for r in rows if len(r) > 3 and r[3].isdigit())


def test_cli_describe_consumer_group():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_cli_describe_consumer_group", why)
    with Broker(FAST) as b:
        bs = b.bootstrap
        tool(kd.TOPICS, bs, ["--create", "--topic", "cg.cli", "--partitions", "3"])
        lines = ["line-%d" % i for i in range(30)]
        tool(kd.CONSOLE_PRODUCER, bs, ["--topic", "cg.cli"], input="\n".join(lines) + "\n",
             timeout=90)
        p = kd.start_tool(kd.CONSOLE_CONSUMER, ["--bootstrap-server", bs, "--topic", "cg.cli",
                                                "--group", "cg.cli.g", "--from-beginning",
                                                "--consumer-property", "group.protocol=consumer"])
        try:
            # The console consumer commits every 5 s (auto commit): wait for all 30 committed.
            out = wait_describe(bs, "cg.cli.g", lambda o: committed(o) == 30)
            rows = [l.split() for l in out.splitlines() if l.startswith("cg.cli.g ")]
            check(len(rows) == 3 and committed(out) == 30 and all(r[5] == "0" for r in rows) and
                  all(r[8] == "console-consumer" for r in rows),
                  "--describe on a consumer group:\n%s", out)
            out = tool(kd.CONSUMER_GROUPS, bs, ["--describe", "--group", "cg.cli.g", "--members"])
            check("console-consumer" in out and "cg.cli.g" in out, "--members:\n%s", out)
            out = tool(kd.CONSUMER_GROUPS, bs, ["--describe", "--group", "cg.cli.g", "--state"])
            check("Stable" in out and "uniform" in out, "--state:\n%s", out)
            out = tool(kd.CONSUMER_GROUPS, bs, ["--list", "--type"])
            check(any(l.split()[:2] == ["cg.cli.g", "Consumer"] for l in out.splitlines()
                      if l.strip()), "--list --type:\n%s", out)
            # A classic member cannot join a group id held by a consumer group.
            r = kd.run_tool(kd.CONSOLE_CONSUMER, ["--bootstrap-server", bs, "--topic", "cg.cli",
                                                  "--group", "cg.cli.g", "--max-messages", "1",
                                                  "--timeout-ms", "15000"], timeout=90)
            check("InconsistentGroupProtocol" in r.stdout + r.stderr and not r.stdout.strip(),
                  "classic join on a consumer group: exit %d\n%s", r.returncode,
                  r.stderr[-1500:])
        finally:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_consumer_protocol_disabled():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_consumer_protocol_disabled", why)
    with Broker({"group.coordinator.rebalance.protocols": "classic"}) as b:
        out = tool(kd.BROKER_API_VERSIONS, b.bootstrap, [])
        check("ConsumerGroupHeartbeat(68): UNSUPPORTED" in out and
              "JoinGroup(11)" in out, "ApiVersions without consumer:\n%s", out[-3000:])
    with Broker({}) as b:
        out = tool(kd.BROKER_API_VERSIONS, b.bootstrap, [])
        check("ConsumerGroupHeartbeat(68): 0 to 1 [usable: 1]" in out and
              "ConsumerGroupDescribe(69): 0 to 1 [usable: 1]" in out, "ApiVersions:\n%s", out[-3000:])


if __name__ == "__main__":
    run_tests(globals())

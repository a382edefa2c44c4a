"""The shared Apache Kafka distribution (kafka_dist.py) works: a real Kafka 4.x broker starts
and stops cleanly, and Kafka's own console producer and consumer (Java, by main class) move
records through Depot. Skips with a message where the Kafka jars cannot be fetched."""

import os
import tempfile
import shutil

import kafka_dist as kd
from depot_harness import Broker, check, run_tests


def test_real_kafka_starts_and_stops():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_real_kafka_starts_and_stops", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-kafka-")
    try:
        with kd.start_kafka(tmp) as k:
            r = kd.run_tool(kd.TOPICS, ["--bootstrap-server", k.bootstrap, "--create",
                                        "--topic", "dist.t", "--partitions", "2"])
            check(r.returncode == 0, "kafka-topics --create on real Kafka: %s", r.stderr)
            r = kd.run_tool(kd.TOPICS, ["--bootstrap-server", k.bootstrap, "--describe",
                                        "--topic", "dist.t"])
            check("PartitionCount: 2" in r.stdout, "describe on real Kafka: %r", r.stdout)
        check(k.stopped_cleanly, "real Kafka exited %r after SIGTERM:\n%s", k.returncode,
              k.log_tail())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_console_producer_consumer_against_depot():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_console_producer_consumer_against_depot", why)
    with Broker() as b:
        lines = ["line-%d" % i for i in range(50)] + ["temp=21.5 \u00b0C"]
        r = kd.run_tool(kd.CONSOLE_PRODUCER,
                        ["--bootstrap-server", b.bootstrap, "--topic", "java.console",
                         "--producer-property", "acks=all"],
                        input="\n".join(lines) + "\n", timeout=90)
        check(r.returncode == 0, "console producer exit %d: %s", r.returncode, r.stderr[-2000:])
        r = kd.run_tool(kd.CONSOLE_CONSUMER,
                        ["--bootstrap-server", b.bootstrap, "--topic", "java.console",
                         "--from-beginning", "--max-messages", str(len(lines)),
                         "--timeout-ms", "20000", "--group", "java.console.g"], timeout=90)
        got = r.stdout.splitlines()
        check(got == lines, "console consumer got %d lines (exit %d), first %r; stderr %s",
              len(got), r.returncode, got[:3], r.stderr[-2000:])


if __name__ == "__main__":
    run_tests(globals())

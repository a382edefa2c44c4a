"""Apache Kafka's own Java client and tools against Depot (jars from scripts/fetch-kafka, run by
kafka_dist.py; skipped with a message where they cannot be fetched):
  - a Java program (tests/java/src/DepotClientCheck.java, compiled with javac against the same
    jars): admin (create topic and partitions, incremental alter configs, describe configs),
    an idempotent producer (the Java default), a consumer group that commits with metadata;
  - Kafka's CLI tools by main class, with their usual flags: kafka-topics, the console producer
    and consumer (--from-beginning), kafka-consumer-groups --describe / --reset-offsets,
    kafka-configs;
  - Kafka's connect-standalone with the stock worker settings (JsonConverter, schemas enabled)
    and FileStreamSource / FileStreamSink moving alert.txt through a topic into alert-sink.txt.
Run with /usr/bin/python3."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_dist as kd  # noqa: E402
from depot_harness import Broker, check, free_port, run_tests  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_SRC = os.path.normpath(os.path.join(HERE, "../java/src/DepotClientCheck.java"))


def tool(main_class, bs, args, **kw):
    r = kd.run_tool(main_class, ["--bootstrap-server", bs] + args, **kw)
    check(r.returncode == 0, "%s %s: exit %d\n%s%s", main_class.split(".")[-1], " ".join(args),
          r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    return r.stdout


def test_java_client_program():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_java_client_program", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-javac-")
    try:
        classes = kd.compile_java([JAVA_SRC], tmp)
        with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
            r = kd.run_tool("DepotClientCheck", [b.bootstrap], classpath=[classes], timeout=180)
            for line in r.stdout.splitlines():
                print("    java: " + line)
            check(r.returncode == 0 and "ALL OK" in r.stdout, "DepotClientCheck exit %d\n%s",
                  r.returncode, r.stderr[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def group_rows(out, topic):
    """kafka-consumer-groups --describe rows for topic: {partition: (current, end, lag)}."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == topic and f[2].isdigit():
            num = lambda s: int(s) if s.lstrip("-").isdigit() else None  # noqa: E731
            rows[int(f[2])] = (num(f[3]), num(f[4]), num(f[5]))
    return rows


def test_cli_tools():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_cli_tools", why)
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
        bs = b.bootstrap
        tool(kd.TOPICS, bs, ["--create", "--topic", "cli.t", "--partitions", "2",
                             "--config", "retention.ms=86400000"])
        check("cli.t" in tool(kd.TOPICS, bs, ["--list"]).split(), "kafka-topics --list")
        tool(kd.TOPICS, bs, ["--alter", "--topic", "cli.t", "--partitions", "3"])
        out = tool(kd.TOPICS, bs, ["--describe", "--topic", "cli.t"])
        check("PartitionCount: 3" in out and "retention.ms=86400000" in out,
              "kafka-topics --describe:\n%s", out)

        lines = ["k%d:reading-%d" % (i % 5, i) for i in range(30)]
        tool(kd.CONSOLE_PRODUCER, bs, ["--topic", "cli.t", "--property", "parse.key=true",
                                       "--property", "key.separator=:"],
             input="\n".join(lines) + "\n", timeout=90)
        consume = ["--topic", "cli.t", "--from-beginning", "--group", "cli.g",
                   "--max-messages", "30", "--timeout-ms", "20000", "--property", "print.key=true",
                   "--property", "key.separator=:"]
        got = tool(kd.CONSOLE_CONSUMER, bs, consume, timeout=90).splitlines()
        check(sorted(got) == sorted(lines), "console consumer got %d lines: %s", len(got), got[:3])

        out = tool(kd.CONSUMER_GROUPS, bs, ["--describe", "--group", "cli.g"])
        rows = group_rows(out, "cli.t")
        check(len(rows) == 3 and sum(r[0] for r in rows.values()) == 30 and
              all(r[2] == 0 for r in rows.values()), "--describe after consuming:\n%s", out)
        out = tool(kd.CONSUMER_GROUPS, bs, ["--reset-offsets", "--group", "cli.g", "--topic",
                                            "cli.t", "--to-earliest", "--execute"])
        check(len(re.findall(r"cli\.t\s+\d+\s+0\b", out)) == 3, "--reset-offsets:\n%s", out)
        out = tool(kd.CONSUMER_GROUPS, bs, ["--describe", "--group", "cli.g"])
        rows = group_rows(out, "cli.t")
        check(len(rows) == 3 and all(r[0] == 0 for r in rows.values()) and
              sum(r[2] for r in rows.values()) == 30, "--describe after reset:\n%s", out)
        got = tool(kd.CONSOLE_CONSUMER, bs, consume, timeout=90).splitlines()
        check(sorted(got) == sorted(lines), "re-read after reset: %d lines", len(got))

        cfg = ["--entity-type", "topics", "--entity-name", "cli.t"]
        tool(kd.CONFIGS, bs, ["--alter"] + cfg + ["--add-config",
                                                  "retention.ms=1000,cleanup.policy=[delete,compact]"])
        out = tool(kd.CONFIGS, bs, ["--describe"] + cfg)
        check("retention.ms=1000" in out and "cleanup.policy=compact,delete" in out and
              "DYNAMIC_TOPIC_CONFIG:retention.ms=1000" in out, "kafka-configs --describe:\n%s", out)
        tool(kd.CONFIGS, bs, ["--alter"] + cfg + ["--delete-config", "retention.ms"])
        out = tool(kd.CONFIGS, bs, ["--describe", "--all"] + cfg)
        check("retention.ms=604800000" in out and "segment.jitter.ms=0" in out,
              "kafka-configs --describe --all after delete:\n%s", out)
        r = kd.run_tool(kd.CONFIGS, ["--bootstrap-server", bs, "--alter"] + cfg +
                        ["--add-config", "bogus.key=1"])
        check(r.returncode != 0 and "Unknown topic config name: bogus.key" in r.stdout + r.stderr,
              "bad key not refused: %s", r.stderr[-500:])
        tool(kd.CONFIGS, bs, ["--alter", "--entity-type", "brokers", "--entity-name", "1",
                              "--add-config", "log.retention.ms=7200000"])
        out = tool(kd.CONFIGS, bs, ["--describe", "--entity-type", "brokers", "--entity-name", "1"])
        check("log.retention.ms=7200000" in out and "DYNAMIC_BROKER_CONFIG" in out,
              "broker configs:\n%s", out)


def test_describe_all_matches_real_kafka():
    """kafka-configs --describe --all on a topic with one override prints the same lines for
    Depot as for a real Kafka 4.1 broker: every topic config, value, source and synonyms (Kafka's
    KRaft bootstrap adds a DYNAMIC_DEFAULT_BROKER_CONFIG min.insync.replicas=1, dropped here;
    Depot's own schema-validation keys are left out)."""
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_describe_all_matches_real_kafka", why)

    def describe_all(bs):
        # A just-started Kafka may still be settling its metadata: retry a little.
        for _ in range(5):
            r = kd.run_tool(kd.TOPICS, ["--bootstrap-server", bs, "--create", "--topic", "same",
                                        "--config", "retention.ms=1000",
                                        "--config", "cleanup.policy=compact,delete"])
            if r.returncode == 0 or "already exists" in r.stdout + r.stderr:
                break
            time.sleep(1)
        for _ in range(5):
            out = tool(kd.CONFIGS, bs, ["--describe", "--all", "--entity-type", "topics",
                                        "--entity-name", "same"])
            if "retention.ms=1000" in out:
                break
            time.sleep(1)
        # Depot's schema-validation keys (Confluent Server's confluent.* names and depot.*)
        # are extensions Apache Kafka does not have.
        return sorted(l.replace("DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=1, ", "")
                      for l in out.splitlines()
                      if "=" in l and not l.strip().startswith(("confluent.", "depot.")))
    tmp = tempfile.mkdtemp(prefix="depot-e2e-kafka-")
    try:
        with kd.start_kafka(tmp) as k:
            want = describe_all(k.bootstrap)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with Broker() as b:
        # Depot also reports the schema-validation topic keys (Confluent Server's names and
        # Depot's, docs/schema-registry.md); Kafka has no such keys, so they are left out here.
        got = [l for l in describe_all(b.bootstrap)
               if not l.lstrip().startswith(("confluent.", "depot."))]
    check(len(want) >= 33, "real Kafka described %d configs", len(want))
    check(got == want, "differs from Kafka:\n  only Kafka: %s\n  only Depot: %s",
          sorted(set(want) - set(got)), sorted(set(got) - set(want)))


STOCK_WORKER = """# Kafka's config/connect-standalone.properties, with the bootstrap and files of this test
bootstrap.servers={bs}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename={dir}/connect.offsets
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:{rest}
"""


def test_connect_standalone_file_connectors():
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_connect_standalone_file_connectors", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-connect-")
    proc = None
    try:
        with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
            src, sink = os.path.join(tmp, "alert.txt"), os.path.join(tmp, "alert-sink.txt")
            alerts = ["line 2 press 4: oil temp %d C" % (80 + i) for i in range(20)]
            with open(src, "w") as f:
                f.write("\n".join(alerts) + "\n")
            files = {
                "worker.properties": STOCK_WORKER.format(bs=b.bootstrap, dir=tmp,
                                                         rest=free_port()),
                "source.properties": "name=local-file-source\nconnector.class=FileStreamSource\n"
                                     "tasks.max=1\nfile=%s\ntopic=connect-test\n" % src,
                "sink.properties": "name=local-file-sink\nconnector.class=FileStreamSink\n"
                                   "tasks.max=1\nfile=%s\ntopics=connect-test\n" % sink,
            }
            for name, text in files.items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            log = open(os.path.join(tmp, "connect.log"), "w")
            proc = kd.start_tool(kd.CONNECT_STANDALONE,
                                 [os.path.join(tmp, n) for n in files], heap="384m",
                                 stdout=log, stderr=log)
            deadline = time.time() + 90
            got = []
            while time.time() < deadline and proc.poll() is None:
                if os.path.exists(sink):
                    with open(sink) as f:
                        got = f.read().splitlines()
                    if len(got) >= len(alerts):
                        break
                time.sleep(0.3)
            log.flush()
            check(got == alerts, "alert-sink.txt has %d/%d lines (connect %s):\n%s", len(got),
                  len(alerts), "running" if proc.poll() is None else "exited",
                  open(os.path.join(tmp, "connect.log")).read()[-3000:])
            # What Connect wrote to the topic: the JsonConverter envelope with the schema.
            from kafka import KafkaConsumer
            c = KafkaConsumer("connect-test", bootstrap_servers=b.bootstrap,
                              auto_offset_reset="earliest", consumer_timeout_ms=5000)
            first = next(iter(c))
            c.close()
            env = json.loads(first.value)
            check(env == {"schema": {"type": "string", "optional": False},
                          "payload": alerts[0]}, "record value %r", first.value)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


CTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depotctl"))


def wait_lines(path, n, procs, timeout=90):
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                got = f.read().splitlines()
            if len(got) >= n:
                break
        time.sleep(0.3)
    return got


def test_connect_json_envelopes_interoperate_with_depotctl():
    """Both workers with Kafka's stock converter settings (JsonConverter, schemas enabled):
    Kafka's FileStreamSource -> topic -> depotctl's sink, and depotctl's source -> topic ->
    Kafka's FileStreamSink; quotes, backslashes, tabs and non-ASCII survive both ways."""
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_connect_json_envelopes_interoperate_with_depotctl", why)
    tmp = tempfile.mkdtemp(prefix="depot-e2e-connect-json-")
    procs = []
    try:
        with Broker({"group.initial.rebalance.delay.ms": 0}) as b:
            lines = ['alarm "press 4" \\ temp=81\u00b0C\tline-%d \u6e29\u5ea6' % i
                     for i in range(10)]
            P = lambda *a: os.path.join(tmp, *a)  # noqa: E731
            for name in ("from-kafka.txt", "from-depot.txt"):
                with open(P(name), "w", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
            def props(name, text):
                with open(P(name), "w") as f:
                    f.write(text)
                return P(name)
            kw = props("kafka-worker.properties", STOCK_WORKER.format(
                bs=b.bootstrap, dir=tmp, rest=free_port()).replace("connect.offsets",
                                                                  "kafka.offsets"))
            dw = props("depot-worker.properties", STOCK_WORKER.format(
                bs=b.bootstrap, dir=tmp, rest=0).replace("connect.offsets", "depot.offsets"))
            ksrc = props("k-src.properties", "name=k-src\nconnector.class=FileStreamSource\n"
                         "tasks.max=1\nfile=%s\ntopic=json.k2d\n" % P("from-kafka.txt"))
            ksink = props("k-sink.properties", "name=k-sink\nconnector.class=FileStreamSink\n"
                          "tasks.max=1\nfile=%s\ntopics=json.d2k\n" % P("kafka-sink.txt"))
            dsrc = props("d-src.properties", "name=d-src\nconnector.class=FileStreamSource\n"
                         "tasks.max=1\nfile=%s\ntopic=json.d2k\n" % P("from-depot.txt"))
            dsink = props("d-sink.properties", "name=d-sink\nconnector.class=FileStreamSink\n"
                          "tasks.max=1\nfile=%s\ntopics=json.k2d\n" % P("depot-sink.txt"))
            klog = open(P("kafka-connect.log"), "w")
            dlog = open(P("depotctl.log"), "w")
            procs.append(kd.start_tool(kd.CONNECT_STANDALONE, [kw, ksrc, ksink], heap="384m",
                                       stdout=klog, stderr=klog))
            procs.append(subprocess.Popen([CTL, "connect-standalone", dw, dsrc, dsink],
                                          stdout=dlog, stderr=dlog, stdin=subprocess.DEVNULL))
            got = wait_lines(P("depot-sink.txt"), len(lines), procs)
            check(got == lines, "Kafka source -> depotctl sink: %r\n%s", got[:2],
                  open(P("depotctl.log")).read()[-2000:])
            got = wait_lines(P("kafka-sink.txt"), len(lines), procs)
            check(got == lines, "depotctl source -> Kafka sink: %r\n%s", got[:2],
                  open(P("kafka-connect.log")).read()[-2000:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())

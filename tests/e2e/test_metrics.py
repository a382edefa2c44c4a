"""The metrics listener against real clients and a real Prometheus server.

- /metrics (Prometheus text format) after confluent-kafka produced and a group committed:
  log end offset and size per partition, consumer-group lag = log end - committed, the
  fsync histogram, connections per listener, process figures; every line parses;
- /api/overview (the dashboard's JSON), /healthz, /readyz, 404/405 on the listener, and the
  listener staying off without metrics.listeners;
- depotctl status prints the overview (topic, group lag) and fails on an unreachable broker;
- log.format=json gives one JSON object per line with ts, level and msg;
- per-topic counters (bytes/messages in and out) and per-API requests, errors by name and the
  latency histogram;
- failed SASL authentications (kcat with a wrong SCRAM password) are counted, a good one not;
- a real Prometheus (Debian's /usr/bin/prometheus) scrapes Depot every second; its HTTP API
  shows the topic's bytes-in and messages-in counters, the bytes appended and the log end
  offset moving with what the producer sent.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from depot_harness import Broker, check, free_port, produce_v3, record_batch, run_tests

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depotctl"))
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000}


def metrics_broker(extra=None):
    port = free_port()
    s = dict(GROUP_SETTINGS)
    s["metrics.listeners"] = "http://127.0.0.1:%d" % port
    s.update(extra or {})
    b = Broker(s, name="metrics")
    b.metrics_url = "http://127.0.0.1:%d" % port
    wait_http(b.metrics_url)
    return b


def wait_http(url, timeout=20):
    """The Kafka port accepts before the store and the subsystems are up (listeners bind
    first), so wait for the metrics listener itself."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(url + "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        check(time.monotonic() < deadline, "metrics listener %s never answered", url)
        time.sleep(0.05)


def get(url, timeout=10):
    """(status, headers, body text) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; fails on any line that is not valid exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = LINE.match(line)
        check(m, "bad exposition line: %r", line)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(ms, name, **labels):
    key = (name, frozenset((k, str(v)) for k, v in labels.items()))
    check(key in ms, "metric %s%s missing", name, labels)
    return ms[key]


def produce(bootstrap, topic, n, size, key_prefix="k"):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=("%s%d" % (key_prefix, i)).encode(), value=b"x" * size)
    check(p.flush(30) == 0, "producer did not deliver everything")


def create_topic(bootstrap, topic, partitions=1):
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def commit_at(bootstrap, group, topic, offset):
    """A confluent consumer in group reads from the start and commits `offset` on partition 0."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        got = 0
        while got < offset and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        check(got >= offset, "consumer read %d of %d", got, offset)
        c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        c.close()


def test_metrics_endpoints():
    with metrics_broker() as b:
        create_topic(b.bootstrap, "m.sensors")
        produce(b.bootstrap, "m.sensors", 50, 100)
        commit_at(b.bootstrap, "m.readers", "m.sensors", 30)
        st, hdrs, text = get(b.metrics_url + "/metrics")
        check(st == 200, "/metrics status %d", st)
        check(hdrs["Content-Type"].startswith("text/plain; version=0.0.4"), "content type %s",
              hdrs["Content-Type"])
        ms = parse_metrics(text)
        check(metric(ms, "kafka_log_log_logendoffset", topic="m.sensors", partition=0) == 50,
              "log end offset")
        check(metric(ms, "kafka_log_log_logstartoffset", topic="m.sensors", partition=0) == 0,
              "log start offset")
        size = metric(ms, "kafka_log_log_size", topic="m.sensors", partition=0)
        check(5000 <= size < 5000 + 50 * 80, "log size %d for 50 x 100 bytes", size)
        check(metric(ms, "kafka_consumergroup_current_offset", consumergroup="m.readers",
                     topic="m.sensors", partition=0) == 30, "committed offset")
        check(metric(ms, "kafka_consumergroup_lag", consumergroup="m.readers", topic="m.sensors",
                     partition=0) == 20, "lag")
        check(metric(ms, "kafka_topic_partitions", topic="m.sensors") == 1, "partitions")
        # Counters: batches are stored as they came, so bytes in is the log's size, except that
        # the size also counts the sparse offset/time index entries (8 + 12 bytes per
        # log.index.interval.bytes = 4096 of log), well under 1%.
        check(metric(ms, "kafka_server_brokertopicmetrics_messagesin_total",
                     topic="m.sensors") == 50, "messages in")
        bytes_in = metric(ms, "kafka_server_brokertopicmetrics_bytesin_total", topic="m.sensors")
        check(abs(bytes_in - size) <= max(64, size / 100), "bytes in %d vs log size %d",
              bytes_in, size)
        check(metric(ms, "kafka_server_brokertopicmetrics_messagesout_total",
                     topic="m.sensors") >= 30, "messages out (the consumer read 30+)")
        check(metric(ms, "kafka_server_brokertopicmetrics_bytesout_total",
                     topic="m.sensors") > 0, "bytes out")
        produces = metric(ms, "kafka_network_requestmetrics_requests_total", request="Produce")
        check(produces >= 1, "Produce requests")
        check(metric(ms, "kafka_network_requestmetrics_totaltime_seconds_count",
                     request="Produce") == produces, "latency count == requests")
        check(metric(ms, "kafka_network_requestmetrics_totaltime_seconds_bucket",
                     request="Produce", le="+Inf") == produces, "+Inf bucket")
        # A Produce to a partition that does not exist is counted under its error name.
        r = produce_v3(b.port, "m.sensors", 7, record_batch([b"v"]), acks=1)
        check(r[0] == 3, "produce to partition 7: %r", r)
        ms = parse_metrics(get(b.metrics_url + "/metrics")[2])
        check(metric(ms, "kafka_network_requestmetrics_errors_total", request="Produce",
                     error="UNKNOWN_TOPIC_OR_PARTITION") == 1, "error counted (%r)", r)
        check(metric(ms, "depot_log_bytes_appended_total") >= size, "bytes appended")
        fs = metric(ms, "depot_log_fsyncs_total")
        count = metric(ms, "depot_log_fsync_duration_seconds_count")
        check(0 < count <= fs, "fsync histogram count %d vs fsyncs %d", count, fs)
        check(metric(ms, "depot_log_fsync_duration_seconds_bucket", le="+Inf") == count,
              "+Inf bucket equals the count")
        # The acks=all producer's waits, split by stage: every wait counted in each stage.
        waits = metric(ms, "depot_log_sync_wait_stage_seconds_count", stage="total")
        check(waits > 0, "acks=all waits counted")
        for st in ("queue", "pass", "wake"):
            check(metric(ms, "depot_log_sync_wait_stage_seconds_count", stage=st) == waits,
                  "stage %s counts every wait", st)
            check(metric(ms, "depot_log_sync_wait_stage_seconds_bucket", stage=st, le="+Inf")
                  == waits, "stage %s: +Inf bucket equals the count", st)
        check(metric(ms, "kafka_server_socketservermetrics_connection_count",
                     listener="PLAINTEXT") >= 0, "connections per listener")
        check(metric(ms, "process_resident_memory_bytes") > 1 << 20, "RSS")
        check(metric(ms, "process_cpu_seconds_total") > 0, "CPU")
        check(metric(ms, "depot_flash_free_bytes") > 0, "flash free")
        check(metric(ms, "depot_log_cleaner_cleans_total") == 0, "no compaction ran")
        check(metric(ms, "depot_http_connections", listener="metrics") >= 1, "http conns")

        st, hdrs, body = get(b.metrics_url + "/api/overview")
        check(st == 200 and hdrs["Content-Type"] == "application/json", "overview %d", st)
        o = json.loads(body)
        topics = {t["name"]: t for t in o["topics"]}
        check(topics["m.sensors"]["records"] == 50, "overview records %r", topics)
        groups = {g["group"]: g for g in o["groups"]}
        check(groups["m.readers"]["lag"] == 20, "overview lag %r", groups)
        check(o["ready"] is True and o["flash"]["used_bytes"] >= size, "overview flash")
        check(len(o["history"]["t_ms"]) >= 1, "history has samples")

        # depotctl status: the same overview in the terminal.
        out = subprocess.run([CTL, "status", "--metrics-url", b.metrics_url], capture_output=True,
                             text=True, timeout=30)
        check(out.returncode == 0, "depotctl status: %d %s", out.returncode, out.stderr)
        check(re.search(r"^m\.sensors\s+1\s+[\d.]+ KiB\s+50$", out.stdout, re.M),
              "status topic line: %s", out.stdout)
        check(re.search(r"^m\.readers\s+Empty\s+0\s+20$", out.stdout, re.M) and
              "m.sensors[0] committed 30, end 50, lag 20" in out.stdout, "status group: %s",
              out.stdout)
        bad = subprocess.run([CTL, "status", "--metrics-url", "http://127.0.0.1:%d" % free_port()],
                             capture_output=True, text=True, timeout=30)
        check(bad.returncode == 1 and "cannot connect" in bad.stderr, "unreachable: %r", bad)

        check(get(b.metrics_url + "/healthz")[0] == 200, "healthz")
        check(get(b.metrics_url + "/readyz")[:3:2] == (200, "ready\n"), "readyz")
        check(get(b.metrics_url + "/nope")[0] == 404, "unknown path")
        req = urllib.request.Request(b.metrics_url + "/metrics", data=b"x", method="POST")
        try:
            urllib.request.urlopen(req, timeout=5)
            check(False, "POST /metrics answered 2xx")
        except urllib.error.HTTPError as e:
            check(e.code == 405 and e.headers["Allow"] == "GET", "POST: %d %s", e.code,
                  e.headers["Allow"])
        st, _, page = get(b.metrics_url + "/")
        check(st == 200 and "<title>Depot</title>" in page and "api/overview" in page,
              "dashboard page")
        check(not re.search(r'(src|href)\s*=\s*"(https?:)?//', page) and "import " not in page,
              "the page loads nothing from elsewhere")


def test_metrics_off_and_json_logs():
    with Broker({"log.format": "json"}, name="nometrics") as b:
        create_topic(b.bootstrap, "j.t")
        b.stop()
        with open(b.log_path, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l and not l.startswith("===")]
        check(len(lines) >= 4, "too few log lines: %r", lines)
        for l in lines:
            o = json.loads(l)
            check(set(o) == {"ts", "level", "msg"}, "keys %r", o)
            check(o["level"] in ("error", "warn", "info", "debug"), "level %r", o)
            check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["ts"]), "ts %r", o)
        check(not any("http metrics" in json.loads(l)["msg"] for l in lines),
              "metrics listener started without metrics.listeners")
        check(any("created topic j.t" in json.loads(l)["msg"] for l in lines), "topic event")


def test_failed_authentications_counted():
    from sasl_harness import SaslBroker
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    with SaslBroker(settings={"metrics.listeners": url}) as b:
        wait_http(url)
        ms = parse_metrics(get(url + "/metrics")[2])
        check(metric(ms, "kafka_server_socketservermetrics_failed_authentication_total") == 0,
              "no failures yet")
        bad = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-m", "3",
                              "-X", "security.protocol=SASL_PLAINTEXT",
                              "-X", "sasl.mechanisms=SCRAM-SHA-256",
                              "-X", "sasl.username=alice", "-X", "sasl.password=wrong"],
                             capture_output=True, text=True, timeout=60)
        check(bad.returncode != 0, "kcat with a wrong password succeeded")
        ok = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-m", "10",
                             "-X", "security.protocol=SASL_PLAINTEXT",
                             "-X", "sasl.mechanisms=SCRAM-SHA-256",
                             "-X", "sasl.username=alice", "-X", "sasl.password=alice-pw"],
                            capture_output=True, text=True, timeout=60)
        check(ok.returncode == 0, "kcat with the right password: %s", ok.stderr)
        ms = parse_metrics(get(url + "/metrics")[2])
        failed = metric(ms, "kafka_server_socketservermetrics_failed_authentication_total")
        check(failed >= 1, "failed authentications %d", failed)
        check(metric(ms, "kafka_network_requestmetrics_errors_total", request="SaslAuthenticate",
                     error="SASL_AUTHENTICATION_FAILED") == failed, "by error name")


def prom_query(base, q):
    st, _, body = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    check(st == 200, "prometheus query %s: %d %s", q, st, body[:200])
    res = json.loads(body)["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def wait_prom(base, q, pred, timeout=30):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = prom_query(base, q)
        if v is not None and pred(v):
            return v
        time.sleep(0.5)
    raise AssertionError("prometheus: %s stayed at %r" % (q, v))


def test_prometheus_scrapes_depot():
    if not os.path.exists(PROMETHEUS):
        print("  SKIP test_prometheus_scrapes_depot: %s not installed "
              "(scripts/install-deps --test installs Debian's prometheus)" % PROMETHEUS)
        return
    with metrics_broker() as b:
        tmp = tempfile.mkdtemp(prefix="depot-e2e-prom-")
        port = free_port()
        target = b.metrics_url.split("//")[1]
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: depot\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        base = "http://127.0.0.1:%d" % port
        ok = False
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if get(base + "/-/ready", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            else:
                raise AssertionError("prometheus did not become ready")
            up = wait_prom(base, 'up{job="depot"}', lambda v: v == 1)
            check(up == 1, "target up")
            before = wait_prom(base, "depot_log_bytes_appended_total", lambda v: True)
            create_topic(b.bootstrap, "prom.t")
            produce(b.bootstrap, "prom.t", 200, 500)
            bytes_in = wait_prom(base,
                                 'kafka_server_brokertopicmetrics_bytesin_total{topic="prom.t"}',
                                 lambda v: v >= 200 * 500)
            check(bytes_in < 200 * 500 * 1.5, "bytes in %d for 100000 sent", bytes_in)
            wait_prom(base, 'kafka_server_brokertopicmetrics_messagesin_total{topic="prom.t"}',
                      lambda v: v == 200)
            # 200 records of 500 bytes: at least 100 kB more bytes appended, and the log end
            # offset of the topic at exactly 200, as Prometheus scraped them.
            after = wait_prom(base, "depot_log_bytes_appended_total",
                              lambda v: v - before >= 200 * 500)
            check(after - before < 200 * 500 * 1.5, "bytes grew by %d for 100000 sent",
                  after - before)
            wait_prom(base, 'kafka_log_log_logendoffset{topic="prom.t"}', lambda v: v == 200)
            size = wait_prom(base, 'sum(kafka_log_log_size{topic="prom.t"})',
                             lambda v: v >= 200 * 500)
            check(size < 200 * 500 * 1.5, "size %d", size)
            ok = True
        finally:
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
            log.close()
            if ok:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                print("  prometheus files kept in %s" % tmp)


if __name__ == "__main__":
    run_tests(globals())

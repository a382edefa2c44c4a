"""Apache Kafka itself, for tests and benchmarks: a real single-node Kafka 4.x broker, Kafka's
CLI tools by main class, and javac/java against the same jars.

The jars are pinned in tests/java/pom.xml and fetched by scripts/fetch-kafka (called from
`scripts/install-deps --test`, offline after the first run) into build/kafka/<version>/libs.
If they are missing, this module runs scripts/fetch-kafka once; if that cannot reach the
registry, available() says why and tests skip with a printed message.

Usage:
    import kafka_dist as kd

    ok, why = kd.available()
    if not ok:
        kd.skip("test_x", why); return             # prints "  SKIP test_x: <why>"

    # A real Kafka broker (KRaft combined mode, one node, ~5-10 s to start, 768 MB heap):
    with kd.start_kafka(tmpdir, port) as k:       # port=None picks a free one
        k.bootstrap                                 # "127.0.0.1:<port>"
        ...                                         # k.stop(): SIGTERM, controlled shutdown
    k.stopped_cleanly                               # exit 0 or 143 after SIGTERM

    # Kafka's CLI tools by main class (kd.TOPICS, kd.CONSOLE_PRODUCER, kd.CONSOLE_CONSUMER,
    # kd.CONSUMER_GROUPS, kd.CONFIGS, kd.ACLS, kd.CONNECT_STANDALONE, ...):
    r = kd.run_tool(kd.TOPICS, ["--bootstrap-server", bs, "--list"])
    r.returncode, r.stdout, r.stderr                # subprocess.CompletedProcess, text
    kd.run_tool(kd.CONSOLE_PRODUCER, [...], input="a\\nb\\n", timeout=60)

    # A Java program of our own (tests/java/src/...), compiled against the same jars:
    classes = kd.compile_java(["tests/java/src/DepotClientCheck.java"], outdir)
    kd.run_tool("DepotClientCheck", [bs], classpath=[classes])

Each JVM costs ~1-2 s of start-up: batch what one invocation can do. Environment:
    KAFKA_LIBS   use this libs/ folder instead of build/kafka/<version>/libs
    JAVA_HOME    java/javac from here instead of PATH (Kafka 4.x needs Java 17+)
"""

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))

# Main classes of the tools Kafka's bin/*.sh scripts run (Kafka 4.1).
TOPICS = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIGS = "kafka.admin.ConfigCommand"
ACLS = "org.apache.kafka.tools.AclCommand"
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
BROKER_API_VERSIONS = "org.apache.kafka.tools.BrokerApiVersionsCommand"
CONNECT_STANDALONE = "org.apache.kafka.connect.cli.ConnectStandalone"
STORAGE = "kafka.tools.StorageTool"
KAFKA = "kafka.Kafka"

_libs = None
_why = None


def kafka_version():
    with open(os.path.join(ROOT, "tests/java/pom.xml")) as f:
        for line in f:
            if "<kafka.version>" in line:
                return line.split("<kafka.version>")[1].split("<")[0].strip()
    return "?"


def _java(tool="java"):
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", tool)):
        return os.path.join(home, "bin", tool)
    return shutil.which(tool)


def available():
    """(True, libs_dir) when Kafka's jars and a JDK are here, else (False, reason)."""
    global _libs, _why
    if _libs:
        return True, _libs
    if _why:
        return False, _why
    if not _java("java") or not _java("javac"):
        _why = "no JDK (java/javac) on PATH or in JAVA_HOME"
        return False, _why
    libs = os.environ.get("KAFKA_LIBS")
    if not libs:
        fetch = os.path.join(ROOT, "scripts/fetch-kafka")
        r = subprocess.run([fetch, "--print-dir"], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run([fetch], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=960)
            r = subprocess.run([fetch, "--print-dir"], capture_output=True, text=True)
        libs = r.stdout.strip() if r.returncode == 0 else ""
    if not libs or not os.path.isdir(libs):
        _why = ("Apache Kafka %s jars not available (scripts/fetch-kafka could not fetch "
                "them; see build/fetch-kafka.log)" % kafka_version())
        return False, _why
    _libs = libs
    return True, _libs


def skip(test_name, why):
    print("  SKIP %s: %s" % (test_name, why), flush=True)


def _classpath(extra=()):
    ok, libs = available()
    if not ok:
        raise RuntimeError(libs)
    return os.pathsep.join(list(extra) + [os.path.join(libs, "*")])


def _log4j_config(path, level, root_level="WARN", loggers=()):
    """A log4j2 properties file: root at root_level to stderr, plus named loggers."""
    lines = [
        "status = error",
        "appender.err.type = Console",
        "appender.err.name = err",
        "appender.err.target = SYSTEM_ERR",
        "appender.err.layout.type = PatternLayout",
        "appender.err.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = %s" % root_level,
        "rootLogger.appenderRef.err.ref = err",
    ]
    for i, name in enumerate(loggers):
        lines += ["logger.l%d.name = %s" % (i, name), "logger.l%d.level = %s" % (i, level)]
    # written aside and renamed: two e2e files run at once, and a JVM of the other one may be
    # reading this path right now
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


_TOOL_LOG4J = None


def java_cmd(main_class, args, classpath=(), heap="256m", log4j=None, jvm_opts=(),
             server=False):
    """The java command line for main_class. Short-lived tools get a small serial-GC,
    C1-only JVM (starts faster); server=True gets G1 and a fixed heap, as Kafka's scripts."""
    global _TOOL_LOG4J
    if log4j is None:
        if _TOOL_LOG4J is None or not os.path.exists(_TOOL_LOG4J):
            os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
            _TOOL_LOG4J = _log4j_config(os.path.join(ROOT, "build/kafka-tools-log4j2.properties"),
                                        "WARN")
        log4j = _TOOL_LOG4J
    gc = (["-Xms" + heap, "-XX:+UseG1GC"] if server else
          ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
    return ([_java("java"), "-Xmx" + heap] + gc + ["-Djava.awt.headless=true",
             "-Dlog4j2.configurationFile=" + log4j] + list(jvm_opts) +
            ["-cp", _classpath(classpath), main_class] + [str(a) for a in args])


def run_tool(main_class, args, input=None, timeout=120, classpath=(), heap="256m", env=None,
             jvm_opts=()):
    """Runs one of Kafka's tools (or any main class on the Kafka classpath) to completion.
    Returns subprocess.CompletedProcess with text stdout/stderr. Raises
    subprocess.TimeoutExpired after timeout seconds (the JVM is killed)."""
    return subprocess.run(java_cmd(main_class, args, classpath, heap, jvm_opts=jvm_opts),
                          input=input, capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=None if input is not None else subprocess.DEVNULL)


def start_tool(main_class, args, classpath=(), heap="256m", stdout=None, stderr=None,
               stdin=subprocess.DEVNULL, jvm_opts=()):
    """Starts a long-running tool (console consumer, connect-standalone); returns the Popen."""
    return subprocess.Popen(java_cmd(main_class, args, classpath, heap, jvm_opts=jvm_opts),
                            stdin=stdin, stdout=stdout or subprocess.PIPE,
                            stderr=stderr or subprocess.PIPE, text=True)


def compile_java(sources, outdir):
    """javac sources against Kafka's jars into outdir; returns outdir. Raises on error."""
    os.makedirs(outdir, exist_ok=True)
    r = subprocess.run([_java("javac"), "-nowarn", "-d", outdir, "-cp", _classpath()] +
                       list(sources), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("javac failed:\n" + r.stdout + r.stderr)
    return outdir


def _free_ports(n):
    """n distinct ports that were free a moment ago: all bound at once, then released (two
    one-at-a-time picks can return the same port). Another process may still take one before
    Kafka binds it: start_kafka starts again on fresh ports when that happens."""
    ss = [socket.socket() for _ in range(n)]
    try:
        for s in ss:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in ss]
    finally:
        for s in ss:
            s.close()


def _free_port():
    return _free_ports(1)[0]


class PortTaken(RuntimeError):
    """Kafka exited at start because a port it was given was taken meanwhile."""


class KafkaBroker:
    """A real Kafka broker process (KRaft combined mode, one node). Use start_kafka()."""

    def __init__(self, tmpdir, port, settings=None, heap="768m"):
        self.tmpdir = tmpdir
        if port:
            self.port, self.controller_port = port, _free_port()
        else:
            self.port, self.controller_port = _free_ports(2)
        self.data_dir = os.path.join(tmpdir, "kafka-data")
        self.props_path = os.path.join(tmpdir, "server.properties")
        self.log_path = os.path.join(tmpdir, "kafka.log")
        self.heap = heap
        self.proc = None
        self.returncode = None  # exit status of the last stop()
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": "1@127.0.0.1:%d" % self.controller_port,
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d"
                         % (self.port, self.controller_port),
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update({k: str(v) for k, v in (settings or {}).items()})
        with open(self.props_path, "w") as f:
            for k, v in props.items():
                f.write("%s=%s\n" % (k, v))
        self.log4j = _log4j_config(os.path.join(tmpdir, "kafka-log4j2.properties"), "INFO",
                                   loggers=["kafka.server.KafkaRaftServer"])

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def format(self):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # "--cluster-id=<id>", not "-t <id>": a random id may start with "-" (1 in 64), which
        # the storage tool's parser then takes for an option and refuses.
        r = subprocess.run(java_cmd(STORAGE, ["format", "--cluster-id=" + cluster_id,
                                              "-c", self.props_path],
                                    log4j=self.log4j),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("kafka storage format failed:\n%s%s" % (r.stdout, r.stderr))

    def start(self, timeout=90):
        """Starts Kafka and returns once its log says "Kafka Server started". Raises PortTaken
        if it exited on a BindException (a port taken meanwhile), RuntimeError on any other
        exit or after timeout seconds (the log tail and the time waited in the message)."""
        if not os.path.exists(os.path.join(self.data_dir, "meta.properties")):
            self.format()
        log = open(self.log_path, "ab")
        start_at = log.tell()
        cmd = java_cmd(KAFKA, [self.props_path], heap=self.heap, log4j=self.log4j, server=True)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     close_fds=True)
        log.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with open(self.log_path, "rb") as f:
                f.seek(start_at)
                out = f.read()
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                why = "kafka exited with %d after %.1fs:\n%s" % (rc, time.monotonic() - t0,
                                                                 self.log_tail())
                if b"BindException" in out and b"Address already in use" in out:
                    raise PortTaken(why)
                raise RuntimeError(why)
            if b"Kafka Server started" in out:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("kafka did not start within %ds (load average %s):\n%s"
                           % (timeout, " ".join("%.1f" % x for x in os.getloadavg()),
                              self.log_tail()))

    def stop(self, timeout=60):
        """SIGTERM (Kafka's controlled shutdown); kill -9 if it takes longer than timeout."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode, self.proc = self.proc.returncode, None
        return self.returncode

    @property
    def stopped_cleanly(self):
        """The JVM exits 143 (128 + SIGTERM) after its shutdown hooks ran: that is clean."""
        return self.returncode in (0, 143)

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no kafka log)"

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.stop()
        return False


def start_kafka(tmpdir, port=None, settings=None, heap="768m", timeout=90, attempts=3):
    """Formats tmpdir/kafka-data and starts Kafka on 127.0.0.1:port; returns the started
    KafkaBroker (a context manager that stops it). settings: extra server.properties keys.
    When a port it was given is taken before Kafka binds it (another test on this box picked
    the same free port), it starts again on fresh ones (a given port is kept; the controller's
    changes), at most attempts times; every other failure is raised at once."""
    for attempt in range(1, attempts + 1):
        k = KafkaBroker(tmpdir, port, settings, heap)
        try:
            return k.start(timeout)
        except PortTaken:
            if attempt == attempts:
                raise
            print("    kafka: a port was taken at start (%d, controller %d); again on fresh ports"
                  % (k.port, k.controller_port), flush=True)
            shutil.rmtree(k.data_dir, ignore_errors=True)  # formatted for the old quorum

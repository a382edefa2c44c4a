"""The newer Python clients (confluent-kafka 2.x, kafka-python 3.x) for e2e tests.

They live in a venv that scripts/fetch-pyclients pins under build/pyclients, not in the system
Python run.sh starts tests with. A test calls use_venv() before importing them: the first time
it re-executes the test file with the venv's Python (DEPOT_PYCLIENTS=1 marks the second pass);
when the venv cannot be built (no registry) the test prints SKIP and exits 0, never passing
silently. Then the factories give clients with the test's bootstrap and the usual settings.

Usage:
    from pyclients import use_venv
    use_venv(__file__, "confluent-kafka 2.x")
    from pyclients import admin, consumer, create_topic, producer
    with Broker() as b:
        create_topic(b.bootstrap, "t", 3)
        p = producer(b.bootstrap, {"linger.ms": 0})
        c = consumer(b.bootstrap, "g", {"client.id": "me"})
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))


def fetched(script, print_flag):
    """What scripts/<script> --<print_flag> prints (a path it pinned and built under build/),
    running the script once first if it has nothing yet; None when that cannot be done."""
    fetch = os.path.join(ROOT, "scripts", script)
    r = subprocess.run([fetch, print_flag], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run([fetch], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run([fetch, print_flag], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def venv_python():
    """The venv's python (fetched on first use), or None when it cannot be built."""
    return fetched("fetch-pyclients", "--print-python")


def use_venv(test_file, what):
    """Returns when running in the venv; otherwise re-executes test_file there (does not
    return) or, without a venv, prints SKIP naming what is missing and exits 0."""
    if os.environ.get("DEPOT_PYCLIENTS") == "1":
        return
    py = venv_python()
    if not py:
        print("  SKIP %s: %s not available (scripts/fetch-pyclients could not fetch it; see "
              "build/fetch-pyclients.log)" % (os.path.basename(test_file), what))
        sys.exit(0)
    os.environ["DEPOT_PYCLIENTS"] = "1"
    os.execv(py, [py, os.path.abspath(test_file)] + sys.argv[1:])


def producer(bootstrap, conf=None):
    """A confluent-kafka Producer on bootstrap; conf adds or overrides settings."""
    from confluent_kafka import Producer
    return Producer(dict({"bootstrap.servers": bootstrap}, **(conf or {})))


def consumer(bootstrap, group, conf=None):
    """A confluent-kafka Consumer in group, reading from the earliest offset unless conf
    says otherwise."""
    from confluent_kafka import Consumer
    return Consumer(dict({"bootstrap.servers": bootstrap, "group.id": group,
                          "auto.offset.reset": "earliest"}, **(conf or {})))


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap_or_admin, name, partitions=1, config=None, timeout=30):
    """Creates a topic (replication factor 1) and waits for the answer; returns the admin."""
    from confluent_kafka.admin import NewTopic
    a = admin(bootstrap_or_admin) if isinstance(bootstrap_or_admin, str) else bootstrap_or_admin
    a.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout)
    return a

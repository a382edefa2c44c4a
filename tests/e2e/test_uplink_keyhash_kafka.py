"""The key-hash mapping storm of test_uplink_keyhash.py against Apache Kafka 4.1.1 as the
central cluster, where the uplink runs in transactions mode (docs/uplink.md "Key-hash mapping",
"Transactions"): the box has 3 partitions, the central topic 2; keyed records must land in
murmur2(key) mod 2, keyless ones of local partition p in p mod 2, exactly once, per key in
order, for a read_committed consumer, while the link is reset, stalled and black-holed and the
box is killed with SIGKILL (at least once with the link up and committing: mid-transaction).
The status must say mode=transactions with commits. Counts are printed, and what a
read_uncommitted consumer sees beyond read_committed (records of aborted transactions).

CI mode ~25 s of storm (plus ~10 s for Kafka to start); DEPOT_LONG=1 for 3 minutes. DEPOT_SEED
fixes the script. Skipped with a message where Kafka's jars or a JDK cannot be had.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import LONG, check, run_tests  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402
from test_uplink import aborted_visible, kafka_behind_proxy  # noqa: E402
from test_uplink_keyhash import (CENTRAL_PARTS, CENTRAL_TOPIC, check_murmur2,  # noqa: E402
                                 keyhash_storm)


def test_keyhash_storm_kafka():
    import kafka_dist as kd
    ok, why = kd.available()
    if not ok:
        return kd.skip("test_keyhash_storm_kafka", why)
    check_murmur2()
    tmp = tempfile.mkdtemp(prefix="depot-e2e-uplink-keyhash-kafka-")
    proxy = TcpProxy("127.0.0.1", 0)  # upstream set once Kafka has its port
    k = None
    try:
        k = kafka_behind_proxy(tmp, proxy)
        label = "keyhash kafka-central"
        committed, actions = keyhash_storm(proxy, label, 180 if LONG else 25, "transactions")
        check(actions["kill_box"] > 0, "no kill -9 of the box: %s", actions)
        aborted_visible("127.0.0.1:%d" % proxy.port, committed, label, topic=CENTRAL_TOPIC,
                        parts=CENTRAL_PARTS)
        k.stop()
        k = None
    finally:
        if k:
            k.kill()
        proxy.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())

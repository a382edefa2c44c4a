"""franz-go (github.com/twmb/franz-go, pinned in tests/go/franzcheck/go.mod) against Depot: a
small Go program (tests/go/franzcheck/main.go, built by scripts/fetch-goclients into
build/franzcheck, module cache in build/gomod) produces, then consumes in a group of three that
rebalances when one leaves, under both group protocols: classic (client-side
cooperative-sticky) and consumer (KIP-848, kgo.ServerSideBalancer). Every record exactly once,
no partition owned by two members at once, ListGroups v5 reports the group's type. Skips with
a message when Go or the Go module proxy is not available."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import Broker, check, run_tests  # noqa: E402
from pyclients import fetched  # noqa: E402

SETTINGS = {"group.consumer.heartbeat.interval.ms": 500, "group.initial.rebalance.delay.ms": 0}


def franzcheck():
    return fetched("fetch-goclients", "--print-bin")


def run(protocol):
    binary = franzcheck()
    if not binary:
        print("  SKIP franz-go %s: franzcheck could not be built (no Go toolchain or Go module "
              "proxy; see build/fetch-goclients.log)" % protocol)
        return
    with Broker(SETTINGS) as b:
        r = subprocess.run([binary, b.bootstrap, protocol], capture_output=True, text=True,
                           timeout=240)
        for line in r.stdout.splitlines():
            print("    franz-go %s: %s" % (protocol, line))
        check(r.returncode == 0 and "ALL OK" in r.stdout, "franzcheck %s exit %d\n%s",
              protocol, r.returncode, r.stderr[-3000:])


def test_franz_go_consumer_protocol_group():
    run("consumer")


def test_franz_go_classic_protocol_group():
    run("classic")


if __name__ == "__main__":
    run_tests(globals())

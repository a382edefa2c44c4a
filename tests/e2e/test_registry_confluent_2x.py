"""test_registry_confluent.py again, with confluent-kafka 2.x (its schema-registry client and
Avro serializers, as PEERS.md lists them) instead of Debian's 1.7: the newer client sends and
parses more of the REST API. scripts/install-deps --test builds build/venv-registry from the
pins in requirements-registry.txt; without it this test skips saying why."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PY = os.path.normpath(os.path.join(HERE, "../../build/venv-registry/bin/python"))

if __name__ == "__main__":
    if not os.path.exists(PY):
        print("SKIP test_registry_confluent_2x: %s missing (scripts/install-deps --test builds "
              "it from tests/e2e/requirements-registry.txt; PyPI was not reachable or it was "
              "not run)" % PY)
        sys.exit(0)
    os.environ["DEPOT_REG_VENV"] = "1"
    target = os.path.join(HERE, "test_registry_confluent.py")
    os.execv(PY, [PY, target] + sys.argv[1:])

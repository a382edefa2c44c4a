"""depotctl schemas list|get|register|check against Depot's built-in schema registry: what an
operator types, what it prints, and its exit statuses (0 ok, 1 registry said no, 2 usage)."""

import json
import os
import subprocess
import tempfile
import time

from depot_harness import Broker, check, free_port, port_accepts, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.environ.get("DEPOTCTL_BIN") or os.path.normpath(os.path.join(HERE, "../../build/depotctl"))

V1 = {"type": "record", "name": "Reading", "namespace": "plant",
      "fields": [{"name": "id", "type": "int"}]}
V2 = {"type": "record", "name": "Reading", "namespace": "plant",
      "fields": [{"name": "id", "type": "int"}, {"name": "unit", "type": "string", "default": "C"}]}
BAD = {"type": "record", "name": "Reading", "namespace": "plant",
       "fields": [{"name": "id", "type": "string"}]}


def ctl(url, *args):
    p = subprocess.run([CTL, "schemas"] + list(args) + ["--registry", url], capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_depotctl_schemas():
    reg_port = free_port()
    url = "http://127.0.0.1:%d" % reg_port
    with Broker({"schema.registry.listeners": url}) as b, \
            tempfile.NamedTemporaryFile("w", suffix=".avsc", delete=False) as f:
        deadline = time.monotonic() + 10
        while not port_accepts(reg_port):
            check(time.monotonic() < deadline, "registry never listened")
            time.sleep(0.05)
        json.dump(V1, f)
        f.close()
        rc, out, err = ctl(url, "register", "--subject", "line 1/value", "--schema-file", f.name)
        check(rc == 0 and out.strip() == "1", "register: %d %r %r", rc, out, err)
        rc, out, err = ctl(url, "register", "--subject", "line 1/value", "--schema",
                           json.dumps(V2))
        check(rc == 0 and out.strip() == "2", "register v2: %d %r %r", rc, out, err)
        rc, out, err = ctl(url, "list")
        check(rc == 0 and out.splitlines() == ["line 1/value"], "list: %d %r %r", rc, out, err)
        rc, out, err = ctl(url, "get", "--subject", "line 1/value")
        check(rc == 0 and json.loads(out) == V2 and "version 2 id 2" in err, "get: %r %r", out, err)
        rc, out, err = ctl(url, "get", "--subject", "line 1/value", "--version", "1")
        check(rc == 0 and json.loads(out) == V1, "get v1: %r %r", out, err)
        rc, out, err = ctl(url, "get", "--id", "2")
        check(rc == 0 and json.loads(out) == V2, "get id: %r %r", out, err)
        rc, out, err = ctl(url, "check", "--subject", "line 1/value", "--schema", json.dumps(BAD))
        check(rc == 1 and out.startswith("incompatible:") and "string" in out,
              "check bad: %d %r %r", rc, out, err)
        rc, out, err = ctl(url, "check", "--subject", "line 1/value", "--schema", json.dumps(V2))
        check(rc == 0 and out.strip() == "compatible", "check good: %d %r %r", rc, out, err)
        rc, out, err = ctl(url, "get", "--subject", "nosuch")
        check(rc == 1 and "HTTP 404 (40401)" in err, "missing subject: %d %r", rc, err)
        rc, out, err = ctl(url, "register", "--subject", "x", "--schema", "{\"type\":\"nope\"}")
        check(rc == 1 and "42201" in err, "invalid schema: %d %r", rc, err)
        rc, out, err = ctl(url, "frobnicate")
        check(rc == 2, "unknown action exit %d", rc)
        rc, out, err = ctl("http://127.0.0.1:1", "list")
        check(rc == 1 and "cannot connect" in err, "unreachable registry: %d %r", rc, err)
        os.unlink(f.name)


if __name__ == "__main__":
    run_tests(globals())

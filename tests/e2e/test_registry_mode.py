"""Confluent's registry modes on Depot's registry, over its REST API: READONLY refuses
registering and deleting with 42205 while reads go on, a subject's own mode overrides the
global one (GET /mode/{s} is 40409 without one, ?defaultToGlobal=true falls back), DELETE
/mode/{s} returns to the global mode; IMPORT needs an empty registry (42205, or ?force=true),
registers with the id and version given (no compatibility check; another schema under a taken
id or version is 42207), and new ids continue after the imported ones once back in READWRITE;
an id in READWRITE is 42205, an unknown mode 42204; modes survive kill -9; confluent-kafka's
SchemaRegistryClient (2.x, where its venv exists) sets and reads them."""

import json
import os
import subprocess

from depot_harness import check, run_tests
from test_registry import V1, V2, V2_NO_DEFAULT, Registry, expect_error, start

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_2X = os.path.normpath(os.path.join(HERE, "../../build/venv-registry/bin/python3"))


def mode(r, m, subject=None, force=False):
    path = "/mode" + ("/" + subject if subject else "") + ("?force=true" if force else "")
    return r.call("PUT", path, {"mode": m})


def test_readonly_and_subject_override():
    with start() as b:
        r = Registry(b)
        check(r.register("a-value", V1)[1] == {"id": 1}, "register before READONLY")
        check(mode(r, "READONLY")[:2] == (200, {"mode": "READONLY"}), "PUT /mode READONLY")
        check(r.call("GET", "/mode")[:2] == (200, {"mode": "READONLY"}), "GET /mode")
        expect_error(r.register("a-value", V2), 422, 42205)
        expect_error(r.register("b-value", V1), 422, 42205)  # the same schema: no new version
        expect_error(r.call("DELETE", "/subjects/a-value"), 422, 42205)
        expect_error(r.call("DELETE", "/subjects/a-value/versions/1"), 422, 42205)
        st, j, _ = r.call("GET", "/subjects/a-value/versions/latest")
        check(st == 200 and j["id"] == 1, "reads in READONLY: %s %r", st, j)
        st, j, _ = r.call("POST", "/subjects/a-value", {"schema": json.dumps(V1)})
        check(st == 200 and j["version"] == 1, "lookup in READONLY: %s %r", st, j)
        st, j, _ = r.call("POST", "/compatibility/subjects/a-value/versions/latest",
                          {"schema": json.dumps(V2)})
        check(st == 200 and j["is_compatible"] is True, "compatibility test: %s %r", st, j)
        check(r.call("PUT", "/config", {"compatibility": "FULL"})[0] == 200, "config changes")
        # a subject of its own
        expect_error(r.call("GET", "/mode/a-value"), 404, 40409)
        st, j, _ = r.call("GET", "/mode/a-value?defaultToGlobal=true")
        check((st, j) == (200, {"mode": "READONLY"}), "defaultToGlobal: %s %r", st, j)
        check(mode(r, "READWRITE", "a-value")[:2] == (200, {"mode": "READWRITE"}), "subject")
        check(r.call("GET", "/mode/a-value")[:2] == (200, {"mode": "READWRITE"}), "GET subject")
        st, j, _ = r.register("a-value", V2)
        check((st, j) == (200, {"id": 2}), "READWRITE subject under a READONLY registry: %s %r",
              st, j)
        expect_error(r.register("c-value", V2), 422, 42205)
        st, j, _ = r.call("DELETE", "/mode/a-value")
        check((st, j) == (200, {"mode": "READWRITE"}), "DELETE /mode/a-value: %s %r", st, j)
        expect_error(r.call("DELETE", "/mode/a-value"), 404, 40409)
        expect_error(r.register("a-value", V2_NO_DEFAULT), 422, 42205)
        expect_error(mode(r, "READMOSTLY"), 422, 42204)
        # modes are durable
        mode(r, "READONLY", "pinned-value")
        b.restart(hard=True)
        r = Registry(b)
        check(r.call("GET", "/mode")[1] == {"mode": "READONLY"}, "global mode after kill -9")
        check(r.call("GET", "/mode/pinned-value")[1] == {"mode": "READONLY"},
              "subject mode after kill -9")
        check(r.call("GET", "/subjects")[1] == ["a-value"], "a mode alone makes no subject")
        check(mode(r, "READWRITE")[0] == 200, "back to READWRITE")
        st, j, _ = r.register("a-value", {"type": "record", "name": "Reading",
                                          "namespace": "plant", "fields": V2["fields"][:2] + [
                                              {"name": "unit", "type": "string",
                                               "default": "C"},
                                              {"name": "loc", "type": "string", "default": ""}]})
        check(st == 200 and j == {"id": 3}, "READWRITE again: %s %r", st, j)
        expect_error(r.register("a-value", V1, id=7), 422, 42205)


def test_import_keeps_ids_and_versions():
    with start() as b:
        r = Registry(b)
        check(r.register("old-value", V2)[1] == {"id": 1}, "a subject exists")
        expect_error(mode(r, "IMPORT"), 422, 42205)
        check(r.call("DELETE", "/subjects/old-value")[0] == 200, "soft delete")
        check(mode(r, "IMPORT")[1] == {"mode": "IMPORT"}, "IMPORT once nothing is live")
        check(r.call("GET", "/mode")[1] == {"mode": "IMPORT"}, "GET /mode IMPORT")
        st, j, _ = r.register("imp-value", V1, id=100, version=3)
        check((st, j) == (200, {"id": 100}), "import with id 100 v3: %s %r", st, j)
        st, j, _ = r.register("imp-value", V1, id=100, version=3)
        check((st, j) == (200, {"id": 100}), "the same import again: %s %r", st, j)
        # no compatibility check in IMPORT: V2 without a default after V1
        st, j, _ = r.register("imp-value", V2_NO_DEFAULT, id=101, version=4)
        check((st, j) == (200, {"id": 101}), "incompatible history imported: %s %r", st, j)
        v3 = dict(V1, fields=V1["fields"] + [{"name": "site", "type": "string", "default": ""}])
        expect_error(r.register("imp-value", v3, id=100, version=5), 422, 42207)  # id taken
        expect_error(r.register("imp-value", v3, id=102, version=3), 422, 42207)  # version
        # one schema, one id (Depot's model): the same schema under another id is refused
        expect_error(r.register("other-value", V2_NO_DEFAULT, id=105), 422, 42207)
        check(r.call("GET", "/subjects/imp-value/versions")[1] == [3, 4], "versions kept")
        st, j, _ = r.call("GET", "/schemas/ids/100")
        check(st == 200 and json.loads(j["schema"])["name"] == "Reading", "id 100: %r", j)
        st, j, _ = r.call("GET", "/subjects/imp-value/versions/4")
        check(st == 200 and j["id"] == 101 and j["version"] == 4, "v4: %r", j)
        b.restart(hard=True)
        r = Registry(b)
        check(r.call("GET", "/mode")[1] == {"mode": "IMPORT"}, "IMPORT after kill -9")
        check(r.call("GET", "/subjects/imp-value/versions")[1] == [3, 4], "after kill -9")
        check(mode(r, "READWRITE")[0] == 200, "READWRITE")
        st, j, _ = r.register("imp-value", V2_NO_DEFAULT | {"fields": V2_NO_DEFAULT["fields"] + [
            {"name": "loc", "type": "string", "default": ""}]})
        check((st, j) == (200, {"id": 102}), "new ids continue after the imported: %s %r", st, j)
        check(r.call("GET", "/subjects/imp-value/versions")[1] == [3, 4, 5], "v5 next")
        # IMPORT on a subject: refused while it has versions, allowed with ?force=true
        expect_error(mode(r, "IMPORT", "imp-value"), 422, 42205)
        check(mode(r, "IMPORT", "imp-value", force=True)[0] == 200, "force")
        check(mode(r, "IMPORT", "fresh-value")[0] == 200, "an empty subject")
        st, j, _ = r.register("fresh-value", V2, id=1)
        check((st, j) == (200, {"id": 1}), "import the schema id 1 already has: %s %r", st, j)
        expect_error(r.register("plain-value", V1, id=1), 422, 42205)  # global READWRITE


CLIENT_CODE = r"""
import sys
from confluent_kafka.schema_registry import SchemaRegistryClient
sr = SchemaRegistryClient({"url": sys.argv[1]})
print(sr.update_global_mode("READONLY"))
print(sr.get_global_mode())
print(sr.update_mode("s-value", "READWRITE"))
print(sr.get_mode("s-value"))
print(sr.delete_mode("s-value"))
print(sr.update_global_mode("IMPORT", force=True))
"""


def test_confluent_client_modes():
    if not os.path.exists(VENV_2X):
        print("  SKIP confluent-kafka update_mode/get_mode: no build/venv-registry "
              "(scripts/install-deps --test makes it where PyPI is reachable)")
        return
    with start() as b:
        Registry(b)
        r = subprocess.run([VENV_2X, "-c", CLIENT_CODE, "http://127.0.0.1:%d" % b.reg_port],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "client: %s", r.stderr[-2000:])
        out = r.stdout.split()
        check(out == ["READONLY", "READONLY", "READWRITE", "READWRITE", "READWRITE", "IMPORT"],
              "client said %r", out)
        print("  PASS confluent-kafka 2.x update/get/delete mode")


if __name__ == "__main__":
    run_tests(globals())

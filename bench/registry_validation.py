#!/usr/bin/env python3
"""What validation at the door costs the broker (docs/schema-registry.md).

Starts build/depot with the schema registry, registers one Avro schema, creates three topics
(no validation; confluent.value.schema.validation=true; and with
depot.value.schema.validation=full) and sends the same Produce v8 requests (acks=1, one batch
of RECORDS Confluent-framed Avro values each, uncompressed) to each, REQUESTS times. Reports
the broker's CPU time (utime+stime from /proc) per record for each topic, and the difference
to the unvalidated topic. Not part of `make test` or `make bench`; run by hand:

    /usr/bin/python3 bench/registry_validation.py [REQUESTS] [RECORDS]
"""

import json
import os
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/e2e"))
from depot_harness import (Broker, Reader, connect, free_port, frame, i16, i32, kstr,  # noqa
                           port_accepts, recv_frame, record_batch)

SCHEMA = {"type": "record", "name": "Reading", "namespace": "plant",
          "fields": [{"name": "sensor", "type": "string"}, {"name": "temp", "type": "double"},
                     {"name": "ts", "type": "long"}, {"name": "ok", "type": "boolean"}]}


def zigzag(v):
    v = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def value(sid, i):
    s = ("line1-t%03d" % (i % 1000)).encode()
    body = zigzag(len(s)) + s + struct.pack("<d", 20 + i / 100) + zigzag(1700000000000 + i) + b"\x01"
    return b"\x00" + struct.pack(">I", sid) + body


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(sock, topic, batch, cid):
    body = (kstr(None) + i16(1) + i32(10000) + i32(1) + kstr(topic) + i32(1) + i32(0) +
            i32(len(batch)) + batch)
    sock.sendall(frame(0, 8, cid, body))
    r = Reader(recv_frame(sock))
    r.i32(), r.i32(), r.str(), r.i32(), r.i32()
    return r.i16()


def create(port, name, configs):
    cfg = b"".join(kstr(k) + kstr(v) for k, v in configs.items())
    body = (i32(1) + kstr(name) + i32(1) + i16(1) + i32(0) + i32(len(configs)) + cfg +
            i32(10000) + b"\x00")
    s = connect(port)
    s.sendall(frame(19, 2, 1, body))
    recv_frame(s)
    s.close()


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    reg_port = free_port()
    with Broker({"schema.registry.listeners": "http://127.0.0.1:%d" % reg_port}) as b:
        while not port_accepts(reg_port):
            time.sleep(0.05)
        topics = {"plain": {}, "id": {"confluent.value.schema.validation": "true"},
                  "full": {"confluent.value.schema.validation": "true",
                           "depot.value.schema.validation": "full"}}
        sid = None
        for t, cfg in topics.items():
            create(b.port, "bench-" + t, cfg)
            req = urllib.request.Request(
                "http://127.0.0.1:%d/subjects/bench-%s-value/versions" % (reg_port, t),
                data=json.dumps({"schema": json.dumps(SCHEMA)}).encode(), method="POST",
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
            sid = json.load(urllib.request.urlopen(req))["id"]
        batch = record_batch([value(sid, i) for i in range(records)])
        results = {}
        for t in topics:
            s = connect(b.port)
            for _ in range(20):  # warm-up
                produce(s, "bench-" + t, batch, 2)
            c0, w0 = cpu_seconds(b.proc.pid), time.monotonic()
            for k in range(requests):
                err = produce(s, "bench-" + t, batch, 3 + k)
                assert err == 0, "topic %s: error %d" % (t, err)
            c1, w1 = cpu_seconds(b.proc.pid), time.monotonic()
            s.close()
            n = requests * records
            results[t] = (c1 - c0) / n * 1e9, n / (w1 - w0)
        base = results["plain"][0]
        print("records of %d bytes, %d per batch, %d batches per topic"
              % (len(value(sid, 0)), records, requests))
        for t, (ns, rate) in results.items():
            print("  %-6s broker CPU %7.0f ns/record (%+6.0f vs none)  %9.0f records/s"
                  % (t, ns, ns - base, rate))


if __name__ == "__main__":
    main()

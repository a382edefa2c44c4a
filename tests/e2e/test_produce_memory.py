"""An acks=all Produce waiting for its fsync does not hold its records in memory (issue 18,
peak RSS): the frame is freed once the batch is appended (kb_req_drop_frame), so 48 pipelined
1 MiB acks=all requests do not make the broker hold 48 MiB until their fsyncs end. Measured as
the growth of the broker's peak RSS (VmHWM, reset through /proc/<pid>/clear_refs); the answers
are checked too (in order, no error, consecutive offsets, the records readable afterwards).
Run with /usr/bin/python3."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from depot_harness import (Broker, Reader, check, fetch_v4_batches, frame, i16, i32,  # noqa: E402
                           kstr, record_batch, recv_frame, run_tests, sanitized_build)

MB = 1 << 20
REQUESTS = 48
VALUE = 64 * 1024
PER_BATCH = 15  # 15 x 64 KiB values: just under message.max.bytes, as librdkafka fills a batch
BOUND = 8 * MB  # growth of peak RSS allowed (+1 MB measured); holding frames until their fsync: +20 MB


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def reset_peak(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def test_acks_all_frames_not_held_until_fsync():
    with Broker({"num.partitions": 1}) as b:
        topic = "durable"
        batch = record_batch([bytes([i]) * VALUE for i in range(PER_BATCH)])
        body = (kstr(None) + i16(-1) + i32(30000) + i32(1) + kstr(topic) + i32(1) + i32(0) +
                i32(len(batch)) + batch)
        # The topic exists (auto-created) before the measured burst.
        s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
        s.sendall(frame(0, 3, 1, body))
        r = Reader(recv_frame(s))
        check(r.i32() == 1, "first produce: wrong correlation id")
        check(r.i32() == 1 and r.str() == topic and r.i32() == 1 and r.i32() == 0,
              "first produce: wrong topic or partition")
        err = r.i16()
        check(err == 0, "first produce: error %d", err)
        pid = b.proc.pid
        time.sleep(0.3)
        if not reset_peak(pid):
            print("    SKIP: /proc/<pid>/clear_refs not writable here; cannot reset the peak")
            s.close()
            return
        base = status_kb(pid, "VmRSS") * 1024
        s.sendall(b"".join(frame(0, 3, 100 + k, body) for k in range(REQUESTS)))
        bases = []
        for k in range(REQUESTS):
            r = Reader(recv_frame(s))
            check(r.i32() == 100 + k, "answer %d out of order", k)
            check(r.i32() == 1 and r.str() == topic, "answer %d: wrong topic", k)
            check(r.i32() == 1 and r.i32() == 0, "answer %d: wrong partition", k)
            err = r.i16()
            check(err == 0, "answer %d: error %d", k, err)
            bases.append(r.i64())
        s.close()
        grew = status_kb(pid, "VmHWM") * 1024 - base
        check(bases == [PER_BATCH * (k + 1) for k in range(REQUESTS)],
              "base offsets not consecutive: %s", bases[:4])
        err, hw, _ = fetch_v4_batches(b.port, topic, 0, PER_BATCH * REQUESTS, max_bytes=4 * MB)
        check(err == 0 and hw == PER_BATCH * (REQUESTS + 1), "fetch: error %d, high watermark %d",
              err, hw)
        print("    broker RSS %.1f MB before, +%.1f MB at the peak over %d pipelined 1 MiB "
              "acks=all requests" % (base / MB, grew / MB, REQUESTS))
        if sanitized_build():  # ASan's quarantine keeps freed frames resident
            print("    (sanitizer build: RSS reported, not checked)")
            return
        check(grew < BOUND, "peak RSS grew %.1f MB (bound %d MB)", grew / MB, BOUND // MB)


if __name__ == "__main__":
    run_tests(globals())

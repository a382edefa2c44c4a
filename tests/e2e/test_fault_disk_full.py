"""Disk full: retriable errors while full, reads keep working, production resumes by itself.

The broker's log dir is a small tmpfs (8 MiB; needs root to mount; the test is skipped with a
message otherwise). A filler file takes most of it; an idempotent acks=all producer then
writes until the disk is full and the broker answers KAFKA_STORAGE_ERROR, which the client
retries by itself. While full, a consumer reads everything stored so far. Then the filler is
deleted: the stuck messages go through without any help, and at the end every message is in
the log exactly once, at its acknowledged offset.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_harness import Depot, consume_all, create_topic, run  # noqa: E402

TOPIC = "full"


def mount_tmpfs(size):
    mnt = tempfile.mkdtemp(prefix="depot-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        os.rmdir(mnt)
        return None, r.stdout.decode().strip()
    return mnt, None


def umount(mnt):
    subprocess.run(["umount", "-l", mnt])
    shutil.rmtree(mnt, ignore_errors=True)


def test_disk_full():
    from confluent_kafka import Producer
    mnt, why = mount_tmpfs("8m")
    if not mnt:
        print("SKIP test_disk_full: cannot mount a tmpfs (%s)" % why)
        return
    d = None
    try:
        data = os.path.join(mnt, "data")
        d = Depot(data_dir=data, settings={"log.segment.bytes": 1 << 20})
        d.start()
        create_topic(d.bootstrap, TOPIC, 1)
        filler = os.path.join(mnt, "filler")
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        with open(filler, "wb") as f:
            f.write(b"\0" * (free - (2 << 20)))  # leave 2 MiB
        acked = {}
        errors = []
        lock = threading.Lock()

        def on_delivery(err, msg):
            with lock:
                if err is None:
                    acked[msg.value()[:12].decode().strip()] = msg.offset()
                else:
                    errors.append(str(err))

        p = Producer({"bootstrap.servers": d.bootstrap, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": 300000, "retry.backoff.ms": 100,
                      "log_level": 1})
        n_msgs = 6000  # ~6 MiB of 1 KiB values: well past the 2 MiB left
        for i in range(n_msgs):
            v = (b"f%-11d" % i) + b"x" * 1012
            while True:
                try:
                    p.produce(TOPIC, value=v, partition=0, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        # Wait until the disk is full: acks stop, the broker reports the storage error.
        deadline = time.time() + 60
        stalled_at = None
        while stalled_at is None and time.time() < deadline:
            p.poll(0.2)
            with open(d.log_path, "rb") as f:
                if b"no space" in f.read():
                    stalled_at = len(acked)
        assert stalled_at is not None, "the disk never filled up"
        p.poll(2.0)
        stuck = len(acked)
        assert stuck < n_msgs, "everything fit; the test did not fill the disk"
        assert not errors, "the client gave up: %s" % errors[:3]
        # Reads keep working while the disk is full.
        before = consume_all(d.bootstrap, TOPIC, 1)[0]
        assert len(before) >= stuck
        # Free the space: production resumes by itself.
        os.unlink(filler)
        left = p.flush(120)
        log = consume_all(d.bootstrap, TOPIC, 1)[0]
        counts = {}
        where = {}
        for off, val in log:
            k = val[:12].decode().strip()
            counts[k] = counts.get(k, 0) + 1
            where[k] = off
        dups = sum(1 for c in counts.values() if c > 1)
        lost = [k for k in acked if k not in counts]
        moved = [k for k in acked if k in where and where[k] != acked[k]]
        print("disk full: acknowledged before full=%d, while full served=%d, after freeing: "
              "acknowledged=%d lost=%d duplicated=%d offset-mismatch=%d failed=%d unflushed=%d"
              % (stuck, len(before), len(acked), len(lost), dups, len(moved), len(errors),
                 left), flush=True)
        assert left == 0 and not errors and len(acked) == n_msgs
        assert not lost and dups == 0 and not moved
        assert d.stop() == 0
    except Exception:
        if d:
            print(d.log_tail(40))
        raise
    finally:
        if d:
            d.cleanup()
        umount(mnt)


if __name__ == "__main__":
    run([test_disk_full])

"""Disk full: retriable errors while full, reads keep working, production resumes by itself.

Two ways to fill the disk, each a test:
  - tmpfs: the broker's log dir is an 8 MiB tmpfs (mounting needs root; skipped with a
    message otherwise) and a filler file takes all but 2 MiB of it;
  - shim: a test-only LD_PRELOAD library (enospc_shim.c, compiled here with cc) makes every
    pwrite a short write and then ENOSPC while a flag file exists. Nothing of it is in Depot.
An idempotent acks=all producer writes until the disk is full and the broker answers
KAFKA_STORAGE_ERROR, which the client retries by itself. While full, a consumer reads
everything stored so far. Then the space is freed (filler deleted / flag removed): the stuck
messages go through without any help, and at the end every message is in the log exactly
once, at its acknowledged offset.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_harness import HERE, Depot, consume_all, create_topic, run  # noqa: E402

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


def fill_and_recover(d, fill, free, n_msgs, fill_after=0):
    """Produces n_msgs 1 KiB messages, calling fill() after the first fill_after; waits for the
    broker to report no space; checks reads; free(); checks every message exactly once."""
    from confluent_kafka import Producer
    acked = {}
    errors = []
    lock = threading.Lock()

    def on_delivery(err, msg):
        with lock:
            if err is None:
                acked[msg.value()[:12].decode().strip()] = msg.offset()
            else:
                errors.append(str(err))

    p = Producer({"bootstrap.servers": d.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 300000, "retry.backoff.ms": 100,
                  "log_level": 1})
    for i in range(n_msgs):
        if i == fill_after:
            p.flush(60)  # the first ones are stored before the disk fills
            fill()
        v = (b"f%-11d" % i) + b"x" * 1012
        while True:
            try:
                p.produce(TOPIC, value=v, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    deadline = time.time() + 60
    full = False
    while not full and time.time() < deadline:
        p.poll(0.2)
        with open(d.log_path, "rb") as f:
            full = b"no space" in f.read()
    assert full, "the disk never filled up"
    p.poll(2.0)
    stuck = len(acked)
    assert stuck < n_msgs, "everything fit; the test did not fill the disk"
    assert not errors, "the client gave up: %s" % errors[:3]
    before = consume_all(d.bootstrap, TOPIC, 1)[0]  # reads keep working while full
    assert len(before) >= stuck
    free()
    left = p.flush(120)
    log = consume_all(d.bootstrap, TOPIC, 1)[0]
    counts, where = {}, {}
    for off, val in log:
        k = val[:12].decode().strip()
        counts[k] = counts.get(k, 0) + 1
        where[k] = off
    dups = sum(1 for c in counts.values() if c > 1)
    lost = [k for k in acked if k not in counts]
    moved = [k for k in acked if k in where and where[k] != acked[k]]
    print("acknowledged before full=%d, read while full=%d, after freeing: acknowledged=%d "
          "lost=%d duplicated=%d offset-mismatch=%d failed=%d unflushed=%d"
          % (stuck, len(before), len(acked), len(lost), dups, len(moved), len(errors), left),
          flush=True)
    assert left == 0 and not errors and len(acked) == n_msgs
    assert not lost and dups == 0 and not moved
    assert d.stop() == 0


def test_disk_full_tmpfs():
    mnt, why = mount_tmpfs("8m")
    if not mnt:
        print("SKIP test_disk_full_tmpfs: cannot mount a tmpfs (%s); the shim test covers it"
              % why)
        return
    d = None
    try:
        d = Depot(data_dir=os.path.join(mnt, "data"), settings={"log.segment.bytes": 1 << 20})
        d.start()
        create_topic(d.bootstrap, TOPIC, 1)
        filler = os.path.join(mnt, "filler")

        def fill():
            st = os.statvfs(mnt)
            with open(filler, "wb") as f:
                f.write(b"\0" * (st.f_bavail * st.f_frsize - (2 << 20)))  # leave 2 MiB

        sys.stdout.write("disk full (tmpfs): ")
        fill_and_recover(d, fill, lambda: os.unlink(filler), 6000)
    except Exception:
        if d:
            print(d.log_tail(40))
        raise
    finally:
        if d:
            d.cleanup()
        umount(mnt)


def test_disk_full_shim():
    tmp = tempfile.mkdtemp(prefix="depot-shim-")
    d = None
    try:
        so = os.path.join(tmp, "enospc_shim.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", so,
                        os.path.join(HERE, "enospc_shim.c"), "-ldl"], check=True)
        flag = os.path.join(tmp, "full")
        d = Depot(settings={"log.segment.bytes": 1 << 20},
                  env={"LD_PRELOAD": so, "DEPOT_ENOSPC_FLAG": flag})
        d.start()
        create_topic(d.bootstrap, TOPIC, 1)
        sys.stdout.write("disk full (shim): ")
        fill_and_recover(d, lambda: open(flag, "w").close(), lambda: os.unlink(flag), 4000,
                         fill_after=1500)
    except Exception:
        if d:
            print(d.log_tail(40))
        raise
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run([test_disk_full_tmpfs, test_disk_full_shim])

"""Group and offset APIs spoken by hand, for versions and answers the client libraries here do not
exercise: FindCoordinator v4 (batched keys, flexible), OffsetFetch v8 (several groups at once),
OffsetDelete, DeleteGroups, DescribeGroups of an unknown group, and exact error codes from
JoinGroup/Heartbeat/SyncGroup/OffsetCommit."""

import signal
import struct
import time

from depot_harness import (Broker, Reader, check, connect, frame, i8, i16, i32, i64, kstr,
                           recv_frame, run_tests)

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

SETTINGS = {"group.initial.rebalance.delay.ms": 0}


# ---- flexible (compact) encodings --------------------------------------------------------

def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def cstr(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def carr(items):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


TAGS = b"\x00"


def flex_frame(api_key, version, cid, body):
    payload = i16(api_key) + i16(version) + i32(cid) + kstr("raw") + TAGS + body
    return i32(len(payload)) + payload


class FReader(Reader):
    def uvarint(self):
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def cstr(self):
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def carr_len(self):
        return self.uvarint() - 1

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def call(sock, api_key, version, body, flexible=False, cid=1):
    sock.sendall(flex_frame(api_key, version, cid, body) if flexible
                 else frame(api_key, version, cid, body))
    payload = recv_frame(sock)
    r = FReader(payload)
    check(r.i32() == cid, "correlation id")
    if flexible:
        r.tags()
    return r


def setup(b):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic("rt", num_partitions=2, replication_factor=1)]).values():
        f.result(15)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "raw-g",
                  "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("rt", 0, 5), TopicPartition("rt", 1, 7)], asynchronous=False)
    c.close()


def test_find_coordinator_v4_batched_and_v0():
    with Broker(SETTINGS) as b:
        s = connect(b.port)
        r = call(s, 10, 4, i8(0) + carr([cstr("a"), cstr("b")]) + TAGS, flexible=True)
        r.i32()  # throttle
        n = r.carr_len()
        check(n == 2, "coordinators %d", n)
        for key in ("a", "b"):
            check(r.cstr() == key, "key order")
            node, host, port, err = r.i32(), r.cstr(), r.i32(), r.i16()
            msg = r.cstr()
            r.tags()
            check(err == 0 and host == "127.0.0.1" and port == b.port and node >= 0,
                  "coordinator %r", (node, host, port, err, msg))
        r = call(s, 10, 0, kstr("grp"))
        err, node, host, port = r.i16(), r.i32(), r.str(), r.i32()
        check((err, host, port) == (0, "127.0.0.1", b.port), "v0 %r", (err, node, host, port))
        # transactions: not coordinated here
        r = call(s, 10, 4, i8(1) + carr([cstr("tx")]) + TAGS, flexible=True)
        r.i32()
        r.carr_len()
        r.cstr()
        r.i32(), r.cstr(), r.i32()
        check(r.i16() == 53, "transaction key should get TRANSACTIONAL_ID_AUTHORIZATION_FAILED")
        s.close()


def test_offset_fetch_v8_many_groups():
    with Broker(SETTINGS) as b:
        setup(b)
        s = connect(b.port)
        groups = [cstr("raw-g") + carr(None) + TAGS,
                  cstr("nobody") + carr([cstr("rt") + carr([i32(0)]) + TAGS]) + TAGS]
        r = call(s, 9, 8, carr(groups) + b"\x00" + TAGS, flexible=True)
        r.i32()
        check(r.carr_len() == 2, "groups")
        res = {}
        for _ in range(2):
            gid = r.cstr()
            parts = {}
            for _ in range(r.carr_len()):
                t = r.cstr()
                for _ in range(r.carr_len()):
                    p, off, epoch, md, err = r.i32(), r.i64(), r.i32(), r.cstr(), r.i16()
                    r.tags()
                    parts[(t, p)] = (off, err)
                r.tags()
            gerr = r.i16()
            r.tags()
            res[gid] = (gerr, parts)
        check(res["raw-g"] == (0, {("rt", 0): (5, 0), ("rt", 1): (7, 0)}), "raw-g %r", res)
        check(res["nobody"] == (0, {("rt", 0): (-1, 0)}), "nobody %r", res)
        s.close()


def test_offset_delete_and_delete_groups():
    with Broker(SETTINGS) as b:
        setup(b)
        s = connect(b.port)
        # OffsetDelete v0: one known partition, one unknown topic
        body = kstr("raw-g") + i32(2) + kstr("rt") + i32(1) + i32(0) + kstr("zz") + i32(1) + i32(0)
        r = call(s, 47, 0, body)
        err, _ = r.i16(), r.i32()
        check(err == 0, "offset delete error %d", err)
        got = {}
        for _ in range(r.i32()):
            t = r.str()
            for _ in range(r.i32()):
                p = r.i32()
                got[(t, p)] = r.i16()
        check(got == {("rt", 0): 0, ("zz", 0): 3}, "offset delete %r", got)
        r = call(s, 47, 0, kstr("none") + i32(0))
        check(r.i16() == 69, "unknown group: GROUP_ID_NOT_FOUND")
        # OffsetFetch v1 shows partition 0 gone, 1 kept
        r = call(s, 9, 1, kstr("raw-g") + i32(1) + kstr("rt") + i32(2) + i32(0) + i32(1))
        offs = {}
        for _ in range(r.i32()):
            r.str()
            for _ in range(r.i32()):
                p, off, _md, _err = r.i32(), r.i64(), r.str(), r.i16()
                offs[p] = off
        check(offs == {0: -1, 1: 7}, "after delete %r", offs)
        # DeleteGroups v0
        r = call(s, 42, 0, i32(2) + kstr("raw-g") + kstr("ghost"))
        r.i32()
        res = {}
        for _ in range(r.i32()):
            gid = r.str()
            res[gid] = r.i16()
        check(res == {"raw-g": 0, "ghost": 69}, "delete groups %r", res)
        # DescribeGroups v0 of a group that is gone: Dead, no error
        r = call(s, 15, 0, i32(1) + kstr("raw-g"))
        check(r.i32() == 1, "one group")
        err, gid, state = r.i16(), r.str(), r.str()
        check((err, gid, state) == (0, "raw-g", "Dead"), "describe %r", (err, gid, state))
        s.close()
        b.restart()
        s = connect(b.port)
        r = call(s, 9, 1, kstr("raw-g") + i32(1) + kstr("rt") + i32(1) + i32(1))
        r.i32()
        r.str()
        r.i32()
        p, off = r.i32(), r.i64()
        check(off == -1, "deleted group's offsets came back after restart: %d", off)
        s.close()


def test_deleted_topic_takes_its_offsets():
    with Broker(SETTINGS) as b:
        setup(b)
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.delete_topics(["rt"]).values():
            f.result(15)
        for f in admin.create_topics([NewTopic("rt", num_partitions=2,
                                               replication_factor=1)]).values():
            f.result(15)
        s = connect(b.port)
        r = call(s, 9, 1, kstr("raw-g") + i32(1) + kstr("rt") + i32(1) + i32(1))
        r.i32()
        r.str()
        r.i32()
        p, off = r.i32(), r.i64()
        check(off == -1, "offset of a deleted topic survived into its successor: %d", off)
        s.close()


def test_shutdown_answers_held_join():
    # The join is held for the initial rebalance delay, longer than the broker's drain time:
    # stopping must answer it (COORDINATOR_NOT_AVAILABLE) and still exit cleanly.
    with Broker({"group.initial.rebalance.delay.ms": 60000}) as b:
        s = connect(b.port)
        s.sendall(frame(11, 0, 5, join_v0("held", "", 10000)))
        time.sleep(0.2)
        b.proc.send_signal(signal.SIGTERM)
        r = Reader(recv_frame(s))
        check(r.i32() == 5, "correlation id")
        check(r.i16() == 15, "held join answered COORDINATOR_NOT_AVAILABLE at shutdown")
        check(b.proc.wait(30) == 0, "clean exit")
        b.proc = None
        s.close()


def join_v0(group, member, session_ms, protocol_type="consumer"):
    return (kstr(group) + i32(session_ms) + kstr(member) + kstr(protocol_type) + i32(1) +
            kstr("range") + i32(0))


def test_error_codes():
    with Broker(SETTINGS) as b:
        s = connect(b.port)
        check(call(s, 11, 0, join_v0("g", "", 10)).i16() == 26, "INVALID_SESSION_TIMEOUT")
        check(call(s, 11, 0, join_v0("", "", 10000)).i16() == 24, "INVALID_GROUP_ID")
        check(call(s, 11, 0, join_v0("g", "who", 10000)).i16() == 25, "UNKNOWN_MEMBER_ID")
        check(call(s, 12, 0, kstr("g") + i32(1) + kstr("who")).i16() == 25, "heartbeat unknown")
        # JoinGroup v4 with no member id: MEMBER_ID_REQUIRED and an id to come back with
        body = (kstr("g4") + i32(10000) + i32(10000) + kstr("") + kstr("consumer") + i32(1) +
                kstr("range") + i32(0))
        r = call(s, 11, 4, body)
        r.i32()
        err, gen, proto, leader, mid = r.i16(), r.i32(), r.str(), r.str(), r.str()
        check(err == 79 and mid.startswith("depot-e2e-"), "member id required %r", (err, mid))
        r = call(s, 11, 4, body.replace(kstr("") + kstr("consumer"), kstr(mid) + kstr("consumer")))
        r.i32()
        err, gen, proto, leader, mid2 = r.i16(), r.i32(), r.str(), r.str(), r.str()
        check((err, gen, proto, leader, mid2) == (0, 1, "range", mid, mid), "joined %r",
              (err, gen, proto, leader, mid2))
        # SyncGroup v0 with a wrong generation, then the right one
        sync = lambda gen_: kstr("g4") + i32(gen_) + kstr(mid) + i32(1) + kstr(mid) + i32(2) + b"AB"
        check(call(s, 14, 0, sync(9)).i16() == 22, "ILLEGAL_GENERATION")
        r = call(s, 14, 0, sync(1))
        check(r.i16() == 0 and r.bytes() == b"AB", "assignment back")
        # OffsetCommit v2: a simple commit while the group has members is refused
        oc = lambda gen_, m: (kstr("g4") + i32(gen_) + kstr(m) + i64(-1) + i32(1) + kstr("rtx") +
                              i32(1) + i32(0) + i64(3) + kstr(""))
        r = call(s, 8, 2, oc(-1, ""))
        r.i32(), r.str(), r.i32(), r.i32()
        check(r.i16() == 3, "unknown topic first")
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.create_topics([NewTopic("rtx", 1, 1)]).values():
            f.result(15)

        def commit_err(gen_, m):
            r = call(s, 8, 2, oc(gen_, m))
            r.i32(), r.str(), r.i32(), r.i32()
            return r.i16()
        check(commit_err(-1, "") == 25, "simple commit into a live group: UNKNOWN_MEMBER_ID")
        check(commit_err(0, mid) == 22, "stale generation: ILLEGAL_GENERATION")
        check(commit_err(1, mid) == 0, "member commit")
        s.close()


if __name__ == "__main__":
    run_tests(globals())

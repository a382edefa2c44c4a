"""Depot against Apache Kafka 4.x and against the two physical references (issue 18).

Run by bench/run.py as the group `kafka` (BENCH_ONLY=kafka,... or the default set). Every
comparison alternates run by run (Depot, Kafka, Kafka with flush.messages=1, the reference,
then again), so a load change on the shared box hits every side alike; results are recorded
as <side>.kx_<scenario>.<metric> and the targets compare medians of the same run.

Sides:
  depot       a fresh Depot on the same data disk (BENCH_DIR)
  kafka       a single-node KRaft Kafka (tests/e2e/kafka_dist.py: the pinned 4.x jars from
              the Java package registry, cached under build/), 1 GB heap, defaults otherwise;
              topics with Kafka's defaults (flush by the OS; acks=all on one node answers
              after the append, with no fsync)
  kafka_fm1   the same broker, topics created with flush.messages=1 (fsync per append: the
              like-for-like durable row for acks=all)
  sink        bench/ref_stream sink: receive a TCP stream, append it to a file in the data dir
              with the lean producer's write size (256 KiB); sink_sync: fdatasync per MiB
  source      bench/ref_stream source: sendfile a file of the replay's size to a TCP reader

When Kafka's jars or a JDK are not here, the Kafka rows say why (EXTRA['kafka']).
Sizes: SZK below; BENCH_LONG=1 fills 10 GiB for the kill -9 recovery (default 1 GiB, quick
64 MiB).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'e2e'))
import kafka_dist as kd  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
LONG = os.environ.get('BENCH_LONG') == '1'
KAFKA_E2E_RATE = 1000.0  # msg/s
# Kafka with flush.messages=1 fsyncs every append in the request path, one partition at a time:
# with linger 0 every message is an append, and at 1,000 msg/s it falls behind on this disk
# (its queue, not its latency, is then measured). The acks=all rows are also taken at this rate,
# which it sustains (docs/benchmarks.md, "Kafka's acks=all latency").
KAFKA_E2E_FM1_RATE = 200.0  # msg/s
KAFKA_E2E_WARM_SECS = 15  # acks=all e2e before the latency rows, not counted (JIT warm-up)


def sizes(quick):
    if quick:
        return dict(lean=32 * MiB, lean_all=16 * MiB, rd=16 * MiB, backlog=64 * MiB,
                    e2e_secs=2, recover=64 * MiB, tail=16 * MiB, parts_10k=10000)
    return dict(lean=256 * MiB, lean_all=128 * MiB, rd=128 * MiB, backlog=512 * MiB,
                e2e_secs=6, recover=(10 * GiB if LONG else 1 * GiB), tail=64 * MiB,
                parts_10k=10000)


class Kafka:
    """Apache Kafka for the bench: the same interface as run.py's Depot and Mock."""
    name = 'kafka'

    def __init__(self, R, workdir):
        self.R = R
        self.tmp = tempfile.mkdtemp(prefix='kafka-', dir=workdir)
        self.k = kd.KafkaBroker(self.tmp, None, settings={'num.partitions': '1'}, heap='1g')
        self.k.format()
        self.start_secs = self._start()

    def _start(self):
        t0 = time.time()
        self.k.start(timeout=300)
        secs = time.time() - t0
        self.addr = self.k.bootstrap
        self.pid = self.k.proc.pid
        return secs

    def create(self, topic, parts, configs=()):
        args = ['create', '-b', self.addr, '-t', topic, '-p', parts]
        for c in configs:
            args += ['--config', c]
        self.R.loadgen(*args, timeout=120)
        # Kafka answers CreateTopics before its partitions have a leader (the lean client
        # does not retry NOT_LEADER_OR_FOLLOWER): one 1 KB message per partition through
        # librdkafka, which waits and retries, makes the topic ready.
        self.R.loadgen('produce', '-b', self.addr, '-t', topic, '-p', parts, '-n',
                       1024 * parts, '-s', 1024, '--acks', '1', timeout=120)

    def delete(self, topic):
        # Kafka unlinks a deleted topic's segments file.delete.delay.ms (60 s) later: its
        # default, left alone.
        self.R.loadgen('delete', '-b', self.addr, '-t', topic, timeout=120)

    def kill9_restart(self):
        self.k.kill()
        # start() waits for "Kafka Server started" in its log: keep the first start's apart.
        os.replace(self.k.log_path, self.k.log_path + '.before-kill')
        return self._start()

    def stop(self):
        self.k.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class KafkaFm1:
    """The Kafka broker seen through topics with flush.messages=1 (fsync per append)."""
    name = 'kafka_fm1'

    def __init__(self, k):
        self.k = k
        self.addr, self.pid = k.addr, k.pid

    def create(self, topic, parts):
        self.k.create(topic, parts, configs=['flush.messages=1'])

    def delete(self, topic):
        self.k.delete(topic)


class Ref:
    """A reference program in the alternation: run() does one measurement."""

    def __init__(self, name, fn):
        self.name, self.run = name, fn


def ref_stream(R, workdir, mode, size, *extra):
    d = tempfile.mkdtemp(prefix='ref-stream-', dir=workdir)
    try:
        return R.tool([os.path.join(R.BB, 'ref_stream'), mode, d, str(size)] + list(extra),
                      timeout=900)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def lean_side(R, key, parts, size, acks):
    """One lean produce run on a broker side, or the reference's run."""
    def one(b, i):
        if isinstance(b, Ref):
            o = b.run()
            return {'mbps': o['mbps'], 'cpu_s_per_gb': o['cpu_s_per_gb']}
        topic = '%s-%d' % (key, i)
        b.create(topic, parts)
        out, m = R.lean_produce(b, topic, parts, size, 1024, acks)
        R.recycle(b, topic)
        return R.produce_metrics(out, m, wire=True)
    return one


def produce_suite(R, sides, kafka, workdir, S):
    depot = sides[0]
    sink = Ref('sink', lambda: ref_stream(R, workdir, 'sink', S['lean']))
    sink_sync = Ref('sink_sync', lambda: ref_stream(R, workdir, 'sink', S['lean_all'],
                                                    '--sync-mib'))
    R.runs_ab(sides + [sink], 'kx_lean_a1', 'produce 1 KB acks=1, 4 partitions (lean)',
              lean_side(R, 'kx-lean-a1', 4, S['lean'], '1'))
    fm1 = [KafkaFm1(kafka)] if kafka else []
    R.runs_ab([depot] + fm1 + sides[1:] + [sink_sync], 'kx_lean_all',
              'produce 1 KB acks=all, 1 partition (lean)',
              lean_side(R, 'kx-lean-all', 1, S['lean_all'], 'all'))

    def rd(b, i):
        out, m = R.rd_produce(b, 'kx-rd-a1-%d' % i, 4, S['rd'], 1024, '1')
        R.recycle(b, 'kx-rd-a1-%d' % i)
        return R.produce_metrics(out, m)
    R.runs_ab(sides, 'kx_rd_a1', 'produce 1 KB acks=1, 4 partitions (librdkafka)', rd)


def replay_suite(R, sides, workdir, S):
    ok = []
    for b in sides:
        R.PROG.show('%s: fill the %d MB replay backlog' % (b.name, S['backlog'] // 10**6))
        try:
            b.create('kx-backlog', 4)
            R.lean_produce(b, 'kx-backlog', 4, S['backlog'], 1024, '1')
            ok.append(b)
        except R.ToolError as e:
            R.ERRORS.append('%s.kx backlog fill: %s' % (b.name, e))
    source = Ref('source', lambda: ref_stream(R, workdir, 'source', S['backlog']))

    def one(b, i):
        if isinstance(b, Ref):
            o = b.run()
            return {'mbps': o['mbps'], 'cpu_s_per_gb': o['cpu_s_per_gb']}
        with R.Measure(b) as m:
            out = R.lean('fetch', '-b', b.addr, '-t', 'kx-backlog', '-p', 4, '--max', '1M')
        return {'mbps': out['mbps'], 'cpu_s_per_gb': m.cpu / R.gb(out['bytes']),
                'rss_peak_mb': m.peak / 1024}
    R.runs_ab(ok + [source], 'kx_replay', 'replay a 4-partition backlog from offset 0 (lean '
              'fetch, 1 MiB per partition)', one)


def e2e_one_for(R, S, acks, r):
    """One librdkafka produce->consume run (1 KB, linger 0) on a broker side, or a Ref's run."""
    def one(b, i):
        if isinstance(b, Ref):
            return b.run()
        topic = 'kx-e2e-%s-%.0f-%d' % (acks, r, i)
        b.create(topic, 1)
        # A first e2e on a fresh Kafka topic sees ~3 s of latency however long it runs
        # (its clients wait for the new partition's metadata); one second of the same
        # load first, not counted, on every side alike.
        R.loadgen('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % r, '-d', 1, '-s',
                  1024, '--acks', acks, '--linger', 0, timeout=120)
        R.settle()
        with R.Measure(b) as m:
            out = R.loadgen('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % r,
                            '-d', S['e2e_secs'], '-s', 1024, '--acks', acks,
                            '--linger', 0, timeout=180)
        R.recycle(b, topic)  # ~1 GB at Depot's 10 % rate: the next run reuses its pages
        if out['samples'] == 0:
            raise R.ToolError('no latency samples')
        return {'p50_ms': out['p50_ms'], 'p99_ms': out['p99_ms'],
                'rss_peak_mb': m.peak / 1024}
    return one


def e2e_target(R, depot, workdir, S, rate):
    """The target row: Depot at 10 % of its acks=all peak, alternated with a lone 4 KiB fsync
    measured just before each run. Run before Kafka starts: it has no Kafka side, and an idle
    JVM on a 2-core box (its GC, its deferred deletes of the produce runs' topics) put p99s of
    1.7-8 ms on the lean client here where the same runs without it gave ~1 ms."""
    def fsync_ref():
        R.settle()
        o = R.ref_disk(workdir, 16 * MiB, 300)
        return {'sync4k_p50_ms': o['sync4k_p50_us'] / 1000,
                'sync4k_p99_ms': o['sync4k_p99_us'] / 1000}

    def lean_e2e(acks):
        # The lean client: one thread, one long-poll Fetch always outstanding, so its p99 is
        # the broker's path; librdkafka's own threads add a tail of their own at this rate,
        # acks=1 as much as acks=all (the depot_a1 side shows it).
        def run():
            topic = 'kx-e2e-lean-%s-%d' % (acks, time.time_ns())
            depot.create(topic, 1)
            R.settle()
            out = R.lean('e2e', '-b', depot.addr, '-t', topic, '--rate', '%.0f' % rate, '-d',
                         S['e2e_secs'], '-s', 1024, '--acks', acks, timeout=180)
            R.recycle(depot, topic)
            return {'p50_ms': out['p50_ms'], 'p99_ms': out['p99_ms']}
        return run

    def group_commit():
        # The same rate through nothing but write and fdatasync back to back: what the disk
        # allows at this load (docs/benchmarks.md, "The acks=all p99 against the disk at the
        # same load"). Not an issue target; the row beside it says how far the lone fsync is
        # from what any persisting broker can reach here.
        R.settle()
        o = R.ref_group_commit(workdir, rate, S['e2e_secs'])
        return {'p50_ms': o['durable_p50_ms'], 'p99_ms': o['durable_p99_ms'],
                'fsync_p99_ms': o['fsync_p99_ms'], 'bytes_per_fsync': o['bytes_per_fsync']}
    rdk_a1 = e2e_one_for(R, S, '1', rate)
    R.runs_ab([Ref('disk', fsync_ref), depot, Ref('depot_lean', lean_e2e('-1')),
               Ref('depot_a1', lambda: rdk_a1(depot, time.time_ns() % 100000)),
               Ref('group_commit', group_commit)], 'kx_e2e_all',
              'produce->consume at %.0f msg/s (10%% of peak), 1 KB acks=all: librdkafka '
              '(depot), lean (depot_lean), librdkafka acks=1 (depot_a1); disk: a lone 4 KiB '
              'append+fdatasync; group_commit: an ideal group commit at the same rate, '
              'append->durable' % rate, e2e_one_for(R, S, 'all', rate))


def e2e_only(R, workdir):
    """The target pairing on a Depot of its own (alone with BENCH_ONLY=e2e), at BENCH_E2E_RATE
    msg/s (default: 10 % of the acks=all peak the depot group measured). Returns the rate."""
    S = sizes(R.QUICK)
    rate = float(os.environ.get('BENCH_E2E_RATE') or R.EXTRA.get('e2e_rate') or 2000.0)
    R.EXTRA['kx_e2e_rate'] = rate
    d = R.Depot(workdir, tag='depot-e2e')
    try:
        e2e_target(R, d, workdir, S, rate)
    finally:
        d.stop()
    return rate


def e2e_suite(R, sides, kafka, workdir, S, rate):
    """produce->consume latency against Kafka (librdkafka, 1 KB, linger 0) at KAFKA_E2E_RATE,
    a rate Kafka sustains on this box (at Depot's 10 % rate it falls behind and its latency is
    queueing), at acks=1 and acks=all."""
    def one_for(acks, r):
        return e2e_one_for(R, S, acks, r)
    fm1 = [KafkaFm1(kafka)] if kafka else []
    kr = KAFKA_E2E_RATE
    # A fresh JVM answers its first ~10,000 acks=all requests slowly (measured: p50 1.3-1.5 s
    # in the first 4 s at 1,000 msg/s, 0.5 s and 20 ms in the next runs, 0.4 ms after): one
    # untimed acks=all run per broker, Depot included, before any latency row.
    for b in sides:
        if isinstance(b, Ref):
            continue
        topic = 'kx-e2e-warm-%s' % b.name
        b.create(topic, 1)
        R.loadgen('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % kr, '-d',
                  KAFKA_E2E_WARM_SECS if kafka else 1, '-s', 1024, '--acks', 'all',
                  '--linger', 0, timeout=300)
    R.runs_ab(sides, 'kx_e2e_k_a1', 'produce->consume at %.0f msg/s, 1 KB acks=1 (librdkafka)'
              % kr, one_for('1', kr))
    R.runs_ab([sides[0]] + fm1 + sides[1:], 'kx_e2e_k_all', 'produce->consume at %.0f msg/s, '
              '1 KB acks=all (librdkafka)' % kr, one_for('all', kr))
    fr = KAFKA_E2E_FM1_RATE
    R.runs_ab([sides[0]] + fm1 + sides[1:], 'kx_e2e_k200_all', 'produce->consume at %.0f '
              'msg/s, 1 KB acks=all (librdkafka): a rate Kafka with flush.messages=1 sustains'
              % fr, one_for('all', fr))


def startup_10k(R, workdir, S):
    """Depot with 10,000 partitions: clean stop, then time until it accepts connections."""
    d = R.Depot(workdir, tag='depot-10k')
    try:
        R.PROG.show('depot: create 10,000 partitions')
        d.create('kx-10k', S['parts_10k'])
        port = int(d.addr.rsplit(':', 1)[1])
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(120)
        for i in range(R.RUNS):
            R.PROG.show('depot: start-up after a clean stop, 10,000 partitions (run %d)' % (i + 1))
            t0 = time.time()
            d.proc = subprocess.Popen(d.cmd, stdout=d.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, preexec_fn=R.raise_nofile)
            wait_port_fine(port, d.proc)
            secs = time.time() - t0
            st = R.ProcStat(d.proc.pid).status()
            R.record('depot.kx_start_10k.secs', 'start-up after a clean stop, 10,000 '
                     'partitions (exec to accepting)', secs, os.getloadavg()[0])
            R.record('depot.kx_start_10k.rss_mb', 'start-up after a clean stop, 10,000 '
                     'partitions (exec to accepting)', st['VmRSS'] / 1024, os.getloadavg()[0])
            d.proc.send_signal(signal.SIGTERM)
            d.proc.wait(120)
    except (R.ToolError, subprocess.TimeoutExpired, OSError) as e:
        R.ERRORS.append('depot.kx_start_10k: %s' % e)
    finally:
        d.stop()


def wait_port_fine(port, proc, secs=120):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise OSError('broker exited with %d at start' % proc.returncode)
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.005)
    raise OSError('broker did not listen on %d' % port)


# log.flush.offset.checkpoint.interval.ms for the recovery rows: long enough that no tick
# falls between "the checkpoint carries the marks" and the kill -9 (the tail takes ~1 s).
REC_CKPT_MS = 10000
NEVER_MS = 2147483647


def _marked(datadir, topic, parts):
    """True once Depot's recovery-point checkpoint carries a tail mark (the eight fields after
    the offset, docs/storage.md) for every partition of topic."""
    try:
        with open(os.path.join(datadir, 'recovery-point-offset-checkpoint')) as f:
            lines = f.read().split('\n')[2:]
    except OSError:
        return False
    return sum(1 for ln in lines if ln.startswith(topic + ' ') and len(ln.split()) == 11) == parts


def recovery(R, workdir, S, kafka):
    """kill -9 and time the restart to accepting, three ways for Depot:
      kx_recover            S['recover'] at acks=all, then (once the checkpoint carries the
                            tail marks, as one checkpoint interval after the writes would) an
                            S['tail'] acks=1 tail: a large log with a small unflushed tail
      kx_recover_tail       the S['tail'] tail alone on a fresh dir
      kx_recover_unflushed  S['recover'] + S['tail'] at acks=1 with no checkpoint since: a
                            large log that is all unflushed tail (what every kill -9 cost
                            before the tail marks, whatever was flushed)
    Proportional to the unflushed tail means kx_recover is close to kx_recover_tail and far
    below kx_recover_unflushed. Kafka gets the same bytes as kx_recover (its acks=all does not
    fsync; what it recovers is its own business: the time is what an operator waits)."""
    def fill(b, big, acks, wait_marks):
        if big:
            b.create('kx-rec', 4)
            R.PROG.show('%s: fill %.1f GB for the kill -9 recovery' % (b.name,
                                                                     S['recover'] / 1e9))
            R.lean_produce(b, 'kx-rec', 4, S['recover'], 1024, acks)
        if wait_marks:
            # Marked, and the checkpoint unchanged for more than an interval: a due tick has
            # passed with nothing left to mark, so the marks sit at the end of the fill (a
            # long fill is marked part-way first).
            ck = os.path.join(b.datadir, 'recovery-point-offset-checkpoint')
            t_end = time.time() + 6 * REC_CKPT_MS / 1000.0
            while not (_marked(b.datadir, 'kx-rec', 4) and
                       time.time() - os.path.getmtime(ck) > REC_CKPT_MS / 1000.0 + 1.5):
                if time.time() > t_end:
                    raise OSError('no settled tail marks in the checkpoint after %d ms'
                                  % (6 * REC_CKPT_MS))
                time.sleep(0.1)
        b.create('kx-tail', 4)
        R.lean_produce(b, 'kx-tail', 4, S['tail'], 1024, '1')
    runs = (('kx_recover_tail', False, '1', False, REC_CKPT_MS,
             'restart after kill -9 with only the %d MB unflushed tail' % (S['tail'] // 10**6)),
            ('kx_recover', True, 'all', True, REC_CKPT_MS,
             'restart after kill -9 with %.1f GB on disk + %d MB unflushed tail'
             % (S['recover'] / 1e9, S['tail'] // 10**6)),
            ('kx_recover_unflushed', True, '1', False, NEVER_MS,
             'restart after kill -9 with %.1f GB on disk, all of it unflushed (no checkpoint '
             'since)' % ((S['recover'] + S['tail']) / 1e9)))
    def read_mb(pid):
        """MB the process read through read/pread so far (/proc/PID/io rchar: page cache
        included): what recovery re-read, immune to the box's scheduling noise."""
        try:
            with open('/proc/%d/io' % pid) as f:
                for ln in f:
                    if ln.startswith('rchar:'):
                        return int(ln.split()[1]) / 1e6
        except OSError:
            pass
        return None
    for _ in range(R.RUNS):  # the three alternated, so a load change hits each alike
        for key, big, acks, wait_marks, ckpt_ms, label in runs:
            d = R.Depot(workdir, tag='depot-rec',
                        sets=['log.flush.offset.checkpoint.interval.ms=%d' % ckpt_ms])
            try:
                fill(d, big, acks, wait_marks)
                port = int(d.addr.rsplit(':', 1)[1])
                d.proc.kill()
                d.proc.wait()
                t0 = time.time()
                d.proc = subprocess.Popen(d.cmd, stdout=d.log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, preexec_fn=R.raise_nofile)
                wait_port_fine(port, d.proc, secs=1800)
                load = os.getloadavg()[0]
                R.record('depot.%s.secs' % key, label, time.time() - t0, load)
                R.record('depot.%s.read_mb' % key, label + ': MB read until listening '
                         '(/proc rchar)', read_mb(d.proc.pid), load)
            except (R.ToolError, subprocess.TimeoutExpired, OSError) as e:
                R.ERRORS.append('depot.%s: %s' % (key, e))
            finally:
                d.pid = d.proc.pid
                d.stop()
    if kafka:
        try:
            fill(kafka, True, 'all', False)
            time.sleep(2.0)
            R.PROG.show('kafka: kill -9 and restart')
            secs = kafka.kill9_restart()
            R.record('kafka.kx_recover.secs', runs[1][5] + ' (to "Kafka Server started")', secs,
                     os.getloadavg()[0])
        except (R.ToolError, RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            R.ERRORS.append('kafka.kx_recover: %s' % e)


def suite(R, workdir):
    S = sizes(R.QUICK)
    R.EXTRA['kafka_sizes'] = S
    rate = e2e_only(R, workdir)  # before Kafka starts (see e2e_target)
    ok, why = kd.available()
    kafka = None
    if ok:
        R.PROG.show('kafka: start Apache Kafka %s (KRaft, 1 GB heap)' % kd.kafka_version())
        try:
            kafka = Kafka(R, workdir)
            R.record('kafka.kx_start.secs', 'start-up, fresh data dir (exec to "Kafka Server '
                     'started")', kafka.start_secs, os.getloadavg()[0])
            R.EXTRA['kafka'] = 'Apache Kafka %s, libs %s' % (kd.kafka_version(), why)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            R.EXTRA['kafka'] = 'Apache Kafka did not start: %s' % str(e)[-300:]
            R.ERRORS.append('kafka: ' + R.EXTRA['kafka'])
    else:
        R.EXTRA['kafka'] = 'not measured: %s' % why
    t0 = time.time()
    depot = R.Depot(workdir, tag='depot-kx')
    R.record('depot.kx_start.secs', 'start-up, fresh data dir (exec to accepting, 50 ms polls)',
             time.time() - t0, os.getloadavg()[0])
    sides = [depot] + ([kafka] if kafka else [])
    try:
        produce_suite(R, sides, kafka, workdir, S)
        replay_suite(R, sides, workdir, S)
        e2e_suite(R, sides, kafka, workdir, S, rate)
        for b in sides:
            st = R.ProcStat(b.pid).status()
            R.record('%s.kx_final.hwm_mb' % b.name, 'peak RSS (VmHWM) over the comparison',
                     st['VmHWM'] / 1024, os.getloadavg()[0])
        depot.stop()
        depot = None
        startup_10k(R, workdir, S)
        recovery(R, workdir, S, kafka)
    finally:
        if depot:
            depot.stop()
        if kafka:
            kafka.stop()


def targets(R, add):
    """The issue-18 targets, as ratios of same-run medians."""
    med = R.med
    kafka_note = R.EXTRA.get('kafka', 'kafka group not run')

    def vs_kafka(row, kside, label):
        basis = 'medians, runs alternated' if med('%s.%s.mbps' % (kside, row)) else kafka_note
        k = med('%s.%s.mbps' % (kside, row))
        add('%s: Depot >= 2x Kafka MB/s' % label, med('depot.%s.mbps' % row),
            2 * k if k else None, '>=', 'MB/s, ' + basis, label + ' vs Kafka MB/s')
        k = med('%s.%s.cpu_s_per_gb' % (kside, row))
        add('%s: Depot CPU per GB <= 1/4 of Kafka' % label, med('depot.%s.cpu_s_per_gb' % row),
            k / 4 if k else None, '<=', 'CPU-s/GB of the broker process, ' + basis,
            label + ' vs Kafka CPU/GB')
        k = med('%s.%s.rss_peak_mb' % (kside, row))
        add('%s: Depot peak RSS <= 1/20 of Kafka' % label, med('depot.%s.rss_peak_mb' % row),
            k / 20 if k else None, '<=', 'MB, VmRSS sampled every 50 ms, ' + basis,
            label + ' vs Kafka RSS')
    vs_kafka('kx_lean_a1', 'kafka', 'produce acks=1')
    vs_kafka('kx_lean_all', 'kafka_fm1', 'produce acks=all vs Kafka flush.messages=1')
    vs_kafka('kx_replay', 'kafka', 'replay')

    def vs_ref(row, ref, label):
        r = med('%s.%s.mbps' % (ref, row))
        add('%s >= 0.9x %s MB/s' % (label, ref), med('depot.%s.mbps' % row),
            0.9 * r if r else None, '>=', 'MB/s, medians, runs alternated', label + ' vs ' + ref)
        r = med('%s.%s.cpu_s_per_gb' % (ref, row))
        add('%s CPU per GB <= 1.25x %s' % (label, ref), med('depot.%s.cpu_s_per_gb' % row),
            1.25 * r if r else None, '<=', 'CPU-s/GB, medians', label + ' CPU vs ' + ref)
    vs_ref('kx_lean_a1', 'sink', 'lean produce acks=1')
    vs_ref('kx_lean_all', 'sink_sync', 'lean produce acks=all')
    vs_ref('kx_replay', 'source', 'replay')
    f = med('disk.kx_e2e_all.sync4k_p99_ms')
    add('p99 produce->consume acks=all <= 2x a lone 4 KiB fdatasync p99 (lean client)',
        med('depot_lean.kx_e2e_all.p99_ms'), 2 * f if f else None, '<=',
        'ms, medians; the fsync measured just before each run', 'p99 a=all vs fsync')
    a1 = med('depot_a1.kx_e2e_all.p99_ms')
    add('p99 produce->consume acks=all <= 2x a lone 4 KiB fdatasync p99 (librdkafka)',
        med('depot.kx_e2e_all.p99_ms'), 2 * f if f else None, '<=',
        'ms, medians; the same client at acks=1, no fsync: %s ms' %
        ('%.3g' % a1 if a1 else '-'), 'p99 a=all vs fsync (rdkafka)')
    g = med('group_commit.kx_e2e_all.p99_ms')
    add('(reference, not an issue target) p99 produce->consume acks=all (lean) <= an ideal '
        'group commit\'s append->durable p99 at the same rate',
        med('depot_lean.kx_e2e_all.p99_ms'), g, '<=',
        'ms, medians; bench/ref_group_commit.c alternated with the runs',
        'p99 a=all vs group commit')
    add('start-up after a clean stop with 10,000 partitions < 1 s',
        med('depot.kx_start_10k.secs'), 1.0, '<=', 's, exec to accepting', 'start-up 10k parts')
    t = med('depot.kx_recover_tail.secs')
    add('recovery after kill -9 with %.1f GB on disk <= 2x the tail-only recovery'
        % (sizes(R.QUICK)['recover'] / 1e9), med('depot.kx_recover.secs'),
        2 * t if t else None, '<=', 's, exec to accepting; same unflushed tail in both',
        'recovery vs tail')
    u = med('depot.kx_recover_unflushed.secs')
    add('recovery after kill -9, large log + small unflushed tail <= 1/2 of the same log all '
        'unflushed', med('depot.kx_recover.secs'), u / 2 if u else None, '<=',
        's, exec to accepting', 'recovery vs unflushed')


SWING_ROWS = ('depot.lean_1k_a1', 'depot.rd_1k_a1', 'depot.kx_lean_a1', 'depot.kx_rd_a1',
              'kafka.kx_lean_a1')
SWING_COLS = (('cpu_s_per_gb', 'CPU-s/GB'), ('mbps', 'MB/s'), ('sys_share_ratio', 'sys share'),
              ('sleeps_per_mb', 'broker sleeps per MB'),
              ('dirty_at_start_mb', 'dirty at start MB'),
              ('cached_at_start_mb', 'page cache at start MB'),
              ('reclaim_mb_per_gb', 'reclaimed MB/GB'),
              ('direct_reclaim_mb_per_gb', 'direct reclaim MB/GB'),
              ('writeback_mb_per_gb', 'written back MB/GB'), ('host_busy_pct', 'box busy %'),
              ('host_steal_pct', 'steal %'))


def swing_table(R):
    """Every run of the acks=1 produce scenarios with what the box did meanwhile: the
    material for explaining the run-to-run swing of CPU per GB."""
    out = ['| run | ' + ' | '.join(c[1] for c in SWING_COLS) + ' | load |',
           '|---|' + '---:|' * (len(SWING_COLS) + 1)]
    n = 0
    for row in SWING_ROWS:
        base = R.RESULTS.get(row + '.cpu_s_per_gb')
        if not base:
            continue
        for i in range(len(base['runs'])):
            cells = []
            for col, _ in SWING_COLS:
                r = R.RESULTS.get('%s.%s' % (row, col))
                cells.append(R.fmt(r['runs'][i]) if r and i < len(r['runs']) else '-')
            out.append('| `%s` #%d | %s | %.1f |' % (row, i + 1, ' | '.join(cells),
                                                     base['loads'][i]))
            n += 1
    return out if n else []


SUMMARY = (
    ('kx_lean_a1', 'produce 1 KB acks=1, lean', ('depot', 'kafka', 'sink'),
     ('mbps', 'cpu_s_per_gb', 'rss_peak_mb')),
    ('kx_rd_a1', 'produce 1 KB acks=1, librdkafka', ('depot', 'kafka'),
     ('mbps', 'cpu_s_per_gb', 'rss_peak_mb')),
    ('kx_lean_all', 'produce 1 KB acks=all, lean, 1 partition',
     ('depot', 'kafka_fm1', 'kafka', 'sink_sync'), ('mbps', 'cpu_s_per_gb', 'rss_peak_mb')),
    ('kx_replay', 'replay, lean fetch', ('depot', 'kafka', 'source'),
     ('mbps', 'cpu_s_per_gb', 'rss_peak_mb')),
    ('kx_e2e_k_a1', 'produce->consume, acks=1', ('depot', 'kafka'), ('p50_ms', 'p99_ms')),
    ('kx_e2e_k_all', 'produce->consume, acks=all', ('depot', 'kafka_fm1', 'kafka'),
     ('p50_ms', 'p99_ms')),
    ('kx_e2e_k200_all', 'produce->consume, acks=all at %.0f msg/s' % KAFKA_E2E_FM1_RATE,
     ('depot', 'kafka_fm1', 'kafka'), ('p50_ms', 'p99_ms')),
    ('kx_e2e_all', 'produce->consume, acks=all, 10% of peak; disk = lone 4 KiB fdatasync; '
     'depot_lean = lean client; depot_a1 = librdkafka at acks=1; group_commit = an ideal group '
     'commit at the same rate (append->durable)',
     ('depot', 'depot_lean', 'depot_a1', 'disk', 'group_commit'), ('p50_ms', 'p99_ms')),
    ('kx_start', 'start-up, fresh data dir', ('depot', 'kafka'), ('secs',)),
    ('kx_start_10k', 'start-up after clean stop, 10,000 partitions', ('depot',), ('secs',)),
    ('kx_recover', 'restart after kill -9, large data dir + tail', ('depot', 'kafka'),
     ('secs', 'read_mb')),
    ('kx_recover_tail', 'restart after kill -9, tail only', ('depot',), ('secs', 'read_mb')),
    ('kx_recover_unflushed', 'restart after kill -9, large log all unflushed', ('depot',),
     ('secs', 'read_mb')),
    ('kx_final', 'VmHWM over the comparison', ('depot', 'kafka'), ('hwm_mb',)),
)


def summary_table(R):
    """Depot, Kafka and the references side by side: median (min-max) of the alternated runs."""
    out = ['| scenario | side | ' + 'value (median, min–max over runs) |', '|---|---|---|']
    n = 0
    for row, label, who, metrics in SUMMARY:
        for side in who:
            cells = []
            for mtr in metrics:
                r = (R.RESULTS.get('%s.%s.%s' % (side, row, mtr)) or
                     R.RESULTS.get('%s.%s.sync4k_%s' % (side, row, mtr)))
                if r and r['runs']:
                    v = sorted(r['runs'])
                    med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] +
                                                               v[len(v) // 2]) / 2
                    cells.append('%s %s (%s–%s)' % (R.fmt(med), r['unit'], R.fmt(v[0]),
                                                    R.fmt(v[-1])))
            if cells:
                out.append('| %s | %s | %s |' % (label.replace('->', '→'), side,
                                                 '; '.join(cells)))
                n += 1
    return out if n else []

#!/usr/bin/env python3
"""Depot benchmark suite: runs the bench programs against Depot and librdkafka's mock broker,
next to same-run hardware references, and writes a table, a JSON file and plots.

Called by bench/run.sh (`make bench`); environment knobs are described there. Everything the
suite measures is explained in docs/benchmarks.md. MB = 10^6 bytes throughout.
"""
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BUILD = os.path.abspath(os.environ.get('BUILD', os.path.join(ROOT, 'build')))
BB = os.path.join(BUILD, 'bench')
DEPOT = os.environ.get('DEPOT_BIN', os.path.join(BUILD, 'depot'))
QUICK = os.environ.get('BENCH_QUICK') == '1'
RUNS = 1 if QUICK else max(1, int(os.environ.get('BENCH_RUNS', '3')))
ONLY = set(x for x in os.environ.get('BENCH_ONLY', '').split(',') if x)
PROFILE = os.environ.get('BENCH_PROFILE', '0' if QUICK else '1') == '1'
MiB = 1 << 20
WINDOW_PARTS = 32  # the consumer comparison's topic: 4 MiB per partition fits the mock
CLK_TCK = os.sysconf('SC_CLK_TCK')

if QUICK:
    SZ = dict(disk=32 * MiB, disk_ops=50, tcp=256 * MiB, rd_1k=16 * MiB, rd_100=4 * MiB,
              rd_all_1k=8 * MiB, rd_all_100=1 * MiB, lean=64 * MiB, lean_all=16 * MiB,
              backlog=128 * MiB, backlog1=64 * MiB, rd_replay=64 * MiB, window=32 * MiB,
              pc=32 * MiB, e2e_secs=2, p1000=16 * MiB, fsync=16 * MiB, disk_paired=16 * MiB,
              tcp_paired=128 * MiB)
else:
    SZ = dict(disk=256 * MiB, disk_ops=500, tcp=2048 * MiB, rd_1k=256 * MiB, rd_100=48 * MiB,
              rd_all_1k=128 * MiB, rd_all_100=16 * MiB, lean=512 * MiB, lean_all=256 * MiB,
              backlog=2048 * MiB, backlog1=512 * MiB, rd_replay=512 * MiB, window=128 * MiB,
              pc=256 * MiB, e2e_secs=8, p1000=256 * MiB, fsync=128 * MiB, disk_paired=96 * MiB,
              tcp_paired=512 * MiB)

# Metric units by name, for the table and the JSON.
UNITS = {'mbps': 'MB/s', 'wire_mbps': 'MB/s', 'msgs_per_s': 'msg/s', 'cpu_s_per_gb': 'CPU-s/GB',
         'wamp': 'x', 'rss_mb': 'MB', 'rss_peak_mb': 'MB', 'hwm_mb': 'MB', 'p50_ms': 'ms',
         'p99_ms': 'ms', 'p999_ms': 'ms', 'max_ms': 'ms', 'secs': 's', 'per_s': '/s',
         'us': 'us', 'count': '', 'ratio': 'x', 'rate': 'msg/s', 'mb_per_gb': 'MB/GB',
         'start_mb': 'MB', 'pct': '%'}


def unit_of(metric):
    for k in sorted(UNITS, key=len, reverse=True):
        if metric == k or metric.endswith('_' + k) or metric.endswith(k):
            return UNITS[k]
    return ''


# ---------------------------------------------------------------------------------------------
# Progress and results

class Progress:
    def __init__(self):
        self.step = 0
        self.total = 0
        self.tty = sys.stderr.isatty()
        self.t0 = time.time()

    def show(self, label):
        self.step += 1
        line = '[%3d/%3d %4.0fs load %4.1f] %s' % (self.step, max(self.total, self.step),
                                                    time.time() - self.t0, os.getloadavg()[0],
                                                    label)
        if self.tty:
            sys.stderr.write('\r\033[K' + line[:150])
        else:
            sys.stderr.write(line + '\n')
        sys.stderr.flush()

    def note(self, msg):
        sys.stderr.write(('\r\033[K' if self.tty else '') + msg + '\n')
        sys.stderr.flush()


PROG = Progress()
DEPOT_PID = [0]  # the main Depot instance, for the VmHWM trail
RESULTS = {}   # id -> {label, unit, runs[], loads[]}
ERRORS = []
EXTRA = {}     # free-form facts (rates chosen, versions, profile files)


def record(rid, label, value, load):
    if value is None:
        return
    r = RESULTS.setdefault(rid, {'label': label, 'unit': unit_of(rid.split('.')[-1]),
                                 'runs': [], 'loads': []})
    r['runs'].append(round(float(value), 6))
    r['loads'].append(round(load, 2))


def med(rid):
    r = RESULTS.get(rid)
    return statistics.median(r['runs']) if r and r['runs'] else None


def worst(rid, hi=True):
    r = RESULTS.get(rid)
    if not r or not r['runs']:
        return None
    return max(r['runs']) if hi else min(r['runs'])


# ---------------------------------------------------------------------------------------------
# Processes

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ToolError(Exception):
    pass


def tool(args, timeout=600, stdin=None):
    """Runs a bench program; returns its JSON line as a dict."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       input=stdin, text=True, preexec_fn=raise_nofile)
    lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
    if p.returncode != 0 or not lines:
        raise ToolError('%s exited %d: %s %s' % (os.path.basename(args[0]) + ' ' + args[1],
                                                 p.returncode, p.stderr.strip()[-400:],
                                                 p.stdout.strip()[-200:]))
    return json.loads(lines[-1])


def loadgen(*args, **kw):
    return tool([os.path.join(BB, 'loadgen')] + [str(a) for a in args], **kw)


def lean(*args, **kw):
    return tool([os.path.join(BB, 'lean')] + [str(a) for a in args], **kw)


class ProcStat:
    """Reads a process's memory, CPU time and disk writes from /proc."""

    def __init__(self, pid):
        self.pid = pid

    def status(self):
        out = {}
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in ('VmRSS', 'VmHWM'):
                    out[k] = int(v.split()[0])  # kB
        return out

    def cpu_s(self):
        return sum(self.cpu_split())

    def cpu_split(self):
        with open('/proc/%d/stat' % self.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime

    def wakeups(self):
        """Voluntary context switches of all the process's threads (each is a sleep)."""
        n = 0
        for t in os.listdir('/proc/%d/task' % self.pid):
            try:
                with open('/proc/%d/task/%s/status' % (self.pid, t)) as f:
                    for line in f:
                        if line.startswith('voluntary_ctxt_switches:'):
                            n += int(line.split()[1])
            except OSError:
                pass
        return n

    def write_bytes(self):
        with open('/proc/%d/io' % self.pid) as f:
            for line in f:
                if line.startswith('write_bytes:'):
                    return int(line.split()[1])
        return 0


def host_counters():
    """System-wide counters behind the run-to-run swing of CPU per GB (docs/benchmarks.md):
    reclaim, writeback, dirty and cached pages from /proc/vmstat, steal and busy jiffies from
    /proc/stat."""
    out = {}
    try:
        with open('/proc/vmstat') as f:
            for line in f:
                k, v = line.split()
                if k in ('pgsteal_kswapd', 'pgsteal_direct', 'pgscan_kswapd', 'pgscan_direct',
                         'nr_written', 'nr_dirty', 'nr_writeback', 'allocstall_normal',
                         'pgfault', 'nr_file_pages'):
                    out[k] = int(v)
        with open('/proc/stat') as f:
            cpu = f.readline().split()[1:]
        j = [int(x) for x in cpu]
        out['steal'] = j[7] if len(j) > 7 else 0
        out['busy'] = sum(j) - j[3] - j[4]
        out['all'] = sum(j)
    except (OSError, ValueError, IndexError):
        pass
    return out


class Measure:
    """Broker-side cost of one piece of load: CPU seconds, bytes written, peak RSS."""

    def __init__(self, broker):
        self.ps = ProcStat(broker.pid)
        self.peak = 0
        self.stop = threading.Event()

    def _sample(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.ps.status().get('VmRSS', 0))
            except OSError:
                return
            self.stop.wait(0.05)

    def __enter__(self):
        self.host0 = host_counters()
        self.split0 = self.ps.cpu_split()
        self.wake0 = self.ps.wakeups()
        self.cpu0 = self.ps.cpu_s()
        self.wb0 = self.ps.write_bytes()
        self.th = threading.Thread(target=self._sample, daemon=True)
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()
        self.cpu = self.ps.cpu_s() - self.cpu0
        split = self.ps.cpu_split()
        self.wakes = self.ps.wakeups() - self.wake0
        self.sys_s = split[1] - self.split0[1]
        h1 = host_counters()
        self.host = {k: h1[k] - self.host0.get(k, 0) for k in h1}
        self.host['dirty0'] = self.host0.get('nr_dirty', 0)
        self.host['file0'] = self.host0.get('nr_file_pages', 0)
        self.wb = self.ps.write_bytes() - self.wb0
        st = self.ps.status()
        self.peak = max(self.peak, st.get('VmRSS', 0))
        self.hwm = st.get('VmHWM', 0)
        return False


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, secs=20):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise ToolError('broker exited with %d at start' % proc.returncode)
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ToolError('broker did not listen on %d' % port)


class Depot:
    name = 'depot'

    def __init__(self, workdir, wrap=None, tag='depot', env=None, sets=()):
        self.datadir = tempfile.mkdtemp(prefix=tag + '-data-', dir=workdir)
        self.logpath = os.path.join(workdir, tag + '.log')
        port = free_port()
        cmd = [DEPOT, '--set', 'listeners=PLAINTEXT://127.0.0.1:%d' % port,
               '--set', 'log.dirs=' + self.datadir, '--set', 'log.level=warn']
        for kv in sets:  # extra broker settings (key=value)
            cmd += ['--set', kv]
        self.log = open(self.logpath, 'w')
        self.cmd = (wrap or []) + cmd  # vs_kafka.py restarts it on the same data dir
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=raise_nofile,
                                     env=dict(os.environ, **(env or {})))
        wait_port(port, self.proc)
        self.addr = '127.0.0.1:%d' % port
        self.pid = self.proc.pid
        if wrap:  # the broker is the tracer's child
            self.pid = self._child_pid()

    def _child_pid(self):
        for _ in range(100):
            try:
                with open('/proc/%d/task/%d/children' % (self.proc.pid, self.proc.pid)) as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.05)
        return self.proc.pid

    def create(self, topic, parts):
        loadgen('create', '-b', self.addr, '-t', topic, '-p', parts, timeout=60)

    def stop(self):
        if self.pid != self.proc.pid:  # under strace: SIGTERM to the tracer alone left the
            try:                       # broker running after the bench
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.datadir, ignore_errors=True)


class Mock:
    """librdkafka's mock cluster; it cannot create topics over the wire, so all are named up
    front (TOPICS below)."""
    name = 'mock'

    def __init__(self, topics):
        self.topics = dict(topics)
        self.proc = subprocess.Popen([os.path.join(BB, 'mock_broker')] +
                                     ['%s:%d' % kv for kv in self.topics.items()],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addr = self.proc.stdout.readline().strip().split(',')[0]
        if not self.addr:
            raise ToolError('mock_broker printed no address')
        self.pid = self.proc.pid

    def create(self, topic, parts):
        if self.topics.get(topic) != parts:
            raise ToolError('mock topic %s:%d was not declared' % (topic, parts))

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------
# Scenarios. Each returns {metric: value} for one run; runs() repeats it and records.

def runs(broker_name, key, label, fn, n=RUNS):
    for i in range(n):
        if not run_once(broker_name, key, label, lambda: fn(i), i, n):
            return


def run_once(broker_name, key, label, call, i, n):
    PROG.show('%s: %s%s' % (broker_name, label, ' (run %d/%d)' % (i + 1, n) if n > 1 else ''))
    load = os.getloadavg()[0]
    try:
        out = call()
    except (ToolError, subprocess.TimeoutExpired, OSError) as e:
        ERRORS.append('%s.%s: %s' % (broker_name, key, e))
        PROG.note('FAILED %s %s: %s' % (broker_name, key, e))
        return False
    for metric, v in out.items():
        record('%s.%s.%s' % (broker_name, key, metric), label, v, load)
    if broker_name == 'depot' and DEPOT_PID[0]:
        # VmHWM only grows: this trail shows which scenario raised the peak.
        try:
            hwm = ProcStat(DEPOT_PID[0]).status()['VmHWM'] / 1024
            EXTRA.setdefault('depot_hwm_trail_mb', []).append([key, i, round(hwm, 2)])
        except OSError:
            pass
    return True


def runs_ab(brokers, key, label, fn, n=RUNS):
    """Alternates the brokers run by run (A B A B ...), so that a load change on the shared
    machine hits both sides of a comparison alike. fn(broker, i) -> metrics."""
    failed = set()
    for i in range(n):
        for b in brokers:
            if b.name not in failed and not run_once(b.name, key, label,
                                                     lambda: fn(b, i), i, n):
                failed.add(b.name)


def gb(nbytes):
    return max(nbytes, 1) / 1e9


def rd_produce(b, topic, parts, size, msg, acks, linger=5, batch=None):
    b.create(topic, parts)
    args = ['produce', '-b', b.addr, '-t', topic, '-p', parts, '-n', size, '-s', msg,
            '--acks', acks, '--linger', linger]
    if batch:
        args += ['--batch', batch]
    with Measure(b) as m:
        out = loadgen(*args)
    return out, m


def produce_metrics(out, m, wire=False):
    r = {'mbps': out['mbps'], 'msgs_per_s': out['msgs_per_s'],
         'cpu_s_per_gb': m.cpu / gb(out['bytes']), 'rss_peak_mb': m.peak / 1024}
    if wire:
        r['wire_mbps'] = out['wire_mbps']
    if m.wb:
        r['wamp'] = m.wb / out['bytes']
    r.update(swing_metrics(m, out['bytes']))
    return r


def swing_metrics(m, nbytes):
    """What the box did around one run, to explain the swing of CPU per GB: the broker's
    system-time share, page-cache reclaim and writeback per GB, dirty and cached memory at the
    start, steal and busy shares of the whole machine."""
    h, pg = m.host, 4096 / 1e6
    allj = max(h.get('all', 0), 1)
    return {'sys_share_ratio': m.sys_s / m.cpu if m.cpu else 0,
            'sleeps_per_mb': m.wakes / (nbytes / 1e6) if nbytes else 0,
            'reclaim_mb_per_gb': (h.get('pgsteal_kswapd', 0) + h.get('pgsteal_direct', 0)) * pg
            / gb(nbytes),
            'direct_reclaim_mb_per_gb': h.get('pgsteal_direct', 0) * pg / gb(nbytes),
            'writeback_mb_per_gb': h.get('nr_written', 0) * pg / gb(nbytes),
            'dirty_at_start_mb': h.get('dirty0', 0) * pg,
            'cached_at_start_mb': h.get('file0', 0) * pg,
            'host_busy_pct': 100.0 * h.get('busy', 0) / allj,
            'host_steal_pct': 100.0 * h.get('steal', 0) / allj}


def lean_produce(b, topic, parts, size, msg, acks, batch='256k', inflight=8, ppr=1):
    with Measure(b) as m:
        out = lean('produce', '-b', b.addr, '-t', topic, '-p', parts, '-n', size, '-s', msg,
                   '--acks', acks, '--batch', batch, '--inflight', inflight, '--ppr', ppr)
    return out, m


def ref_disk(workdir, size, ops):
    d = tempfile.mkdtemp(prefix='ref-disk-', dir=workdir)
    try:
        return tool([os.path.join(BB, 'ref_disk'), d, str(size), str(ops)])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ref_tcp(size):
    return tool([os.path.join(BB, 'ref_tcp'), str(size)])['mbps']


# Topics each mock needs (it cannot create topics over the wire).
def mock_topics():
    t = {'window': WINDOW_PARTS}
    for i in range(RUNS):
        for k in ('rd_1k_a1', 'rd_100_a1', 'lean_1k_a1'):
            t['%s-%d' % (k, i)] = 4
    return t


def produce_ab(brokers, diag=None):
    def rd(key, label, size, msg, acks, parts=4, on=None):
        def one(b, i):
            out, m = rd_produce(b, '%s-%d' % (key, i), parts, size, msg, acks)
            return produce_metrics(out, m)
        runs_ab(on or brokers, key, label, one)

    def ln(key, label, size, acks, parts=4, on=None):
        def one(b, i):
            topic = '%s-%d' % (key, i)
            b.create(topic, parts)
            out, m = lean_produce(b, topic, parts, size, 1024, acks)
            return produce_metrics(out, m, wire=True)
        runs_ab(on or brokers, key, label, one)

    depot = brokers[:1]
    all3 = brokers
    brokers = [b for b in brokers if b.name != 'depot_malloc']
    rd('rd_1k_a1', 'produce 1 KB acks=1 (librdkafka)', SZ['rd_1k'], 1024, '1', on=all3)
    rd('rd_100_a1', 'produce 100 B acks=1 (librdkafka)', SZ['rd_100'], 100, '1')
    ln('lean_1k_a1', 'produce 1 KB acks=1 (lean)', SZ['lean'], '1')
    runs_ab(depot, 'rd_1k_all', 'produce 1 KB acks=all (librdkafka)',
            lambda b, i: produce_metrics(*rd_produce(b, 'rd_1k_all-%d' % i, 4, SZ['rd_all_1k'],
                                                     1024, 'all')))
    runs_ab(depot, 'rd_100_all', 'produce 100 B acks=all (librdkafka)',
            lambda b, i: produce_metrics(*rd_produce(b, 'rd_100_all-%d' % i, 4,
                                                     SZ['rd_all_100'], 100, 'all')))
    ln('lean_1k_all_4p', 'produce 1 KB acks=all to 4 partitions (lean)', SZ['lean_all'], 'all',
       on=depot)


def acks_all_vs_disk(b, workdir):
    """acks=all to one partition (one file, like the reference) right after a disk reference,
    run by run, so both see the same disk and the same neighbours."""
    def one(i):
        d = ref_disk(workdir, SZ['disk_paired'], 20)
        record('ref.disk_paired.seq_sync1m_mbps', 'data disk, fdatasync per MiB, just before',
               d['seq_sync1m_mbps'], os.getloadavg()[0])
        topic = 'lean_1k_all-%d' % i
        b.create(topic, 1)
        out, m = lean_produce(b, topic, 1, SZ['lean_all'], 1024, 'all')
        r = produce_metrics(out, m, wire=True)
        r['vs_disk_ratio'] = out['wire_mbps'] / d['seq_sync1m_mbps']
        return r
    runs('depot', 'lean_1k_all', 'produce 1 KB acks=all to 1 partition (lean)', one)


def replay_suite(b):
    PROG.show('depot: fill the %d MB backlog' % (SZ['backlog'] // 10**6))
    b.create('backlog', 4)
    out, m = lean_produce(b, 'backlog', 4, SZ['backlog'], 1024, '1')
    EXTRA['depot.backlog_fill_mbps'] = out['mbps']
    EXTRA['depot.backlog_bytes'] = out['batch_bytes_total']

    def replay(i):
        tcp = ref_tcp(SZ['tcp_paired'])
        record('ref.tcp_paired.mbps', 'loopback TCP, just before', tcp, os.getloadavg()[0])
        with Measure(b) as m:
            out = lean('fetch', '-b', b.addr, '-t', 'backlog', '-p', 4, '--max', '1M')
        return {'mbps': out['mbps'], 'cpu_s_per_gb': m.cpu / gb(out['bytes']),
                'rss_peak_mb': m.peak / 1024, 'vs_tcp_ratio': out['mbps'] / tcp}
    runs('depot', 'lean_replay', 'replay the backlog from offset 0 (lean fetch)', replay)

    PROG.show('depot: fill a %d MB one-partition backlog' % (SZ['backlog1'] // 10**6))
    b.create('backlog1', 1)
    lean_produce(b, 'backlog1', 1, SZ['backlog1'], 1024, '1')

    def replay1(i):
        with Measure(b) as m:
            out = lean('fetch', '-b', b.addr, '-t', 'backlog1', '-p', 1, '--max', '1M')
        return {'mbps': out['mbps'], 'cpu_s_per_gb': m.cpu / gb(out['bytes'])}
    runs('depot', 'lean_replay_1p', 'replay a one-partition backlog (lean fetch)', replay1)

    def replay_rd(i):
        with Measure(b) as m:
            out = loadgen('consume', '-b', b.addr, '-t', 'backlog', '-p', 4, '-n',
                          SZ['rd_replay'])
        return {'mbps': out['mbps'], 'cpu_s_per_gb': m.cpu / gb(out['bytes'])}
    runs('depot', 'rd_replay', 'replay the backlog from offset 0 (librdkafka)', replay_rd)


def window_ab(brokers):
    """A hot window both brokers can hold (the mock keeps ~5 MB per partition): 32
    partitions, SZ['window'] in total, read once from the beginning by the librdkafka consumer
    (seeking back instead would measure librdkafka's seeks)."""
    ok = []
    for b in brokers:
        PROG.show('%s: fill the consumer window' % b.name)
        try:
            out, _ = rd_produce(b, 'window', WINDOW_PARTS, SZ['window'], 1024, '1', linger=50,
                                batch='1M')
            EXTRA['%s.window_fill_mbps' % b.name] = out['mbps']
            ok.append(b)
        except ToolError as e:
            ERRORS.append('%s.window fill: %s' % (b.name, e))

    def one(b, i):
        with Measure(b) as m:
            out = loadgen('consume', '-b', b.addr, '-t', 'window', '-p', WINDOW_PARTS)
        return {'mbps': out['mbps'], 'cpu_s_per_gb': m.cpu / gb(out['bytes']),
                'rss_peak_mb': m.peak / 1024}
    runs_ab(ok, 'rd_window', 'consume a hot %d-partition topic from the start (librdkafka)'
            % WINDOW_PARTS, one)


def e2e_ab(brokers, rate, acks='all'):
    key = 'e2e' if acks == 'all' else 'e2e_a' + acks

    def one(b, i):
        topic = '%s-%d' % (key.replace('_', '-'), i)
        b.create(topic, 1)
        with Measure(b) as m:
            out = loadgen('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % rate, '-d',
                          SZ['e2e_secs'], '-s', 1024, '--acks', acks, '--linger', 0,
                          timeout=120)
        if out['samples'] == 0:
            raise ToolError('no latency samples')
        return {'p50_ms': out['p50_ms'], 'p99_ms': out['p99_ms'], 'p999_ms': out['p999_ms'],
                'max_ms': out['max_ms'], 'rss_peak_mb': m.peak / 1024}
    runs_ab(brokers, key, 'produce->consume latency, 1 KB acks=%s at %.0f msg/s' % (acks, rate),
            one)


def e2e_lean(b, rate, acks):
    key = 'e2e_lean' if acks == '-1' else 'e2e_lean_a1'

    def one(i):
        topic = '%s-%d' % (key.replace('_', '-'), i)
        b.create(topic, 1)
        out = lean('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % rate, '-d',
                   SZ['e2e_secs'], '-s', 1024, '--acks', acks, timeout=120)
        if out['errors']:
            EXTRA.setdefault('e2e_lean_produce_errors', []).append(
                [acks, i, out['errors'], out['first_error']])
        return {'p50_ms': out['p50_ms'], 'p99_ms': out['p99_ms'], 'p999_ms': out['p999_ms'],
                'max_ms': out['max_ms'], 'produce_errors_count': out['errors']}
    runs('depot', key, 'produce->consume latency, 1 KB acks=%s at %.0f msg/s (lean)'
         % ('all' if acks == '-1' else acks, rate), one)


def produce_consume(b):
    def pc(i):
        topic = 'pc-%d' % i
        b.create(topic, 4)
        cons = subprocess.Popen([os.path.join(BB, 'loadgen'), 'consume', '-b', b.addr,
                                 '-t', topic, '-p', '4', '-n', str(SZ['pc'])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        try:
            with Measure(b) as m:
                pout = loadgen('produce', '-b', b.addr, '-t', topic, '-p', 4, '-n', SZ['pc'],
                               '-s', 1024, '--acks', '1')
                cout_s, cerr = cons.communicate(timeout=300)
        finally:
            if cons.poll() is None:
                cons.kill()
                cons.wait()
        lines = [l for l in cout_s.splitlines() if l.startswith('{')]
        if cons.returncode != 0 or not lines:
            raise ToolError('consumer: ' + cerr[-300:])
        cout = json.loads(lines[-1])
        return {'produce_mbps': pout['mbps'], 'consume_mbps': cout['mbps'],
                'cpu_s_per_gb': m.cpu / gb(pout['bytes']), 'rss_peak_mb': m.peak / 1024}
    runs('depot', 'pc', 'produce + consume at once, 1 KB acks=1 (librdkafka)', pc)


def scale_suite(b):
    PROG.show('depot: create a 1,000-partition topic')
    t0 = time.time()
    hwm0 = ProcStat(b.pid).status()['VmHWM']
    with Measure(b) as m:
        b.create('p1000', 1000)
    record('depot.p1000.create_secs', 'create a 1,000-partition topic', time.time() - t0,
           os.getloadavg()[0])
    record('depot.p1000.create_rss_peak_mb', 'create a 1,000-partition topic', m.peak / 1024,
           os.getloadavg()[0])
    record('depot.p1000.create_hwm_mb', 'VmHWM after creating 1,000 partitions',
           max(hwm0, m.hwm) / 1024, os.getloadavg()[0])

    def p1000(i):
        out, m = lean_produce(b, 'p1000', 1000, SZ['p1000'], 1024, '1', batch='16k', ppr=100)
        r = produce_metrics(out, m, wire=True)
        st = ProcStat(b.pid).status()
        r['rss_mb'] = st['VmRSS'] / 1024
        r['hwm_mb'] = st['VmHWM'] / 1024
        return r
    runs('depot', 'p1000', 'produce 1 KB acks=1 over 1,000 partitions (lean, 100 per request)',
         p1000)

    def conns(i):
        with Measure(b) as m:
            p = subprocess.Popen([os.path.join(BB, 'lean'), 'conns', '-b', b.addr, '-c', '1000'],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 preexec_fn=raise_nofile)
            line = p.stdout.readline()
            try:
                ready = json.loads(line)['ready'] if line.startswith('{') else 0
                if ready != 1000:
                    raise ToolError('only %d of 1000 connections opened' % ready)
                time.sleep(0.5)
                st = ProcStat(b.pid).status()
            finally:
                p.stdin.close()
                p.wait(30)
        # rss_mb: settled, all 1,000 open; rss_peak_mb: sampled while they were being opened.
        return {'rss_mb': st['VmRSS'] / 1024, 'rss_peak_mb': m.peak / 1024,
                'hwm_mb': st['VmHWM'] / 1024}
    runs('depot', 'conns', '1,000 idle connections (+ the 1,000-partition topic)', conns)


MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=536870912'


def brokers_suite(workdir, with_mock, with_diag):
    """Depot and the mock side by side; comparisons alternate between them run by run. With
    the diagnosis on, a second Depot (same binary, glibc told to keep big buffers in the heap
    instead of a fresh mmap per multi-MB request or response) joins the alternation for the
    librdkafka produce and consumer comparisons."""
    depot = Depot(workdir)
    DEPOT_PID[0] = depot.pid
    mock = dm = None
    try:
        if with_mock:
            mock = Mock(mock_topics())
        if with_diag:
            dm = Depot(workdir, tag='depot-malloc', env={'GLIBC_TUNABLES': MALLOC_TUNABLES})
            dm.name = 'depot_malloc'
        both = [depot] + ([mock] if mock else [])
        three = both + ([dm] if dm else [])
        PROG.show('idle brokers')
        time.sleep(1.0)
        for b in both:
            st = ProcStat(b.pid).status()
            record('%s.idle.rss_mb' % b.name, 'idle broker', st['VmRSS'] / 1024,
                   os.getloadavg()[0])
            record('%s.idle.hwm_mb' % b.name, 'idle broker', st['VmHWM'] / 1024,
                   os.getloadavg()[0])
        produce_ab(three)
        acks_all_vs_disk(depot, workdir)
        replay_suite(depot)
        window_ab(three)
        if dm:
            dm.stop()
            dm = None
        produce_consume(depot)
        peak = med('depot.rd_1k_all.msgs_per_s')
        rate = max(100.0, 0.1 * peak) if peak else 1000.0
        EXTRA['e2e_rate'] = rate
        EXTRA['e2e_peak_basis'] = 'depot.rd_1k_all.msgs_per_s median = %s' % peak
        if mock:  # the mock holds its data in memory; done with it
            mock.stop()
            mock = None
        # The mock is left out here: it does not wake long polls early (its consumer sees
        # each message up to fetch.wait.max.ms late) and keeps only ~5 MB per partition, so a
        # consumer that falls behind at this rate gets OFFSET_OUT_OF_RANGE.
        e2e_ab([depot], rate)
        e2e_ab([depot], rate, acks='1')  # without fsync in the path, for the diagnosis
        e2e_lean(depot, rate, '-1')
        e2e_lean(depot, rate, '1')
        scale_suite(depot)
        st = ProcStat(depot.pid).status()
        record('depot.final.hwm_mb', 'peak RSS over the whole Depot run', st['VmHWM'] / 1024,
               os.getloadavg()[0])
        if PROFILE:
            profile_suite(depot, workdir)
    finally:
        if mock:
            mock.stop()
        if dm:
            dm.stop()
        depot.stop()


MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=536870912'


def refs_suite(workdir):
    def disk_metrics(i):
        o = ref_disk(workdir, SZ['disk'], SZ['disk_ops'])
        return {k: o[k] for k in ('seq_sync1m_mbps', 'seq_nosync_mbps', 'seq_flush_mbps',
                                  'sync4k_per_s', 'sync4k_p50_us', 'sync4k_p99_us')}
    runs('ref', 'disk', 'data disk: 1 MiB appends, 4 KiB append+fdatasync', disk_metrics)

    def tcp(i):
        return {'mbps': ref_tcp(SZ['tcp'])}
    runs('ref', 'tcp', 'loopback TCP, 1 MiB writes', tcp)


def fsync_suite(workdir):
    """fsync counting under strace (seccomp filter: only the two syscalls stop the broker)."""
    trace = os.path.join(workdir, 'fsync.strace')
    if not shutil.which('strace'):
        ERRORS.append('fsync: strace not installed')
        return
    wrap = ['strace', '-f', '--seccomp-bpf', '-e', 'trace=fdatasync,fsync', '-ttt', '-o', trace]
    b = Depot(workdir, wrap=wrap, tag='depot-strace')
    windows = {}
    try:
        b.create('fs', 4)
        b.create('fs1', 1)
        PROG.show('fsync: idle broker, 2 s')
        t0 = time.time()
        time.sleep(2.0)
        windows['idle'] = (t0, time.time(), None)
        for name, topic, parts, acks in (('a1', 'fs', 4, '1'), ('aall', 'fs1', 1, '-1'),
                                         ('aall_4p', 'fs', 4, '-1')):
            PROG.show('fsync: produce 1 KB acks=%s to %d partition(s) (lean, 8 in flight), '
                      'under strace' % (acks, parts))
            t0 = time.time()
            out = lean('produce', '-b', b.addr, '-t', topic, '-p', parts, '-n', SZ['fsync'], '-s',
                       1024, '--acks', acks, '--batch', '64k', '--inflight', 8)
            windows[name] = (t0, time.time(), out)
        PROG.show('fsync: produce 100 B acks=all (librdkafka), under strace')
        b.create('fs100', 1)
        t0 = time.time()
        out = loadgen('produce', '-b', b.addr, '-t', 'fs100', '-p', 1, '-n', SZ['rd_all_100'],
                      '-s', 100, '--acks', 'all')
        windows['rd100'] = (t0, time.time(), out)
    except ToolError as e:
        ERRORS.append('fsync: %s' % e)
    finally:
        b.stop()
    stamps = []
    try:
        with open(trace) as f:
            for line in f:
                parts = line.split(None, 2)
                if len(parts) == 3 and (parts[2].startswith('fdatasync(') or
                                        parts[2].startswith('fsync(')):
                    stamps.append(float(parts[1]))
    except OSError as e:
        ERRORS.append('fsync: no trace: %s' % e)
        return
    load = os.getloadavg()[0]
    for name, (a, z, out) in windows.items():
        n = sum(1 for s in stamps if a <= s <= z)
        record('fsync.%s.count' % name, 'fsync+fdatasync calls', n, load)
        record('fsync.%s.per_s' % name, 'fsyncs per second', n / max(z - a, 1e-9), load)
        if out and 'requests' in out:
            record('fsync.%s.requests' % name, 'Produce requests', out['requests'], load)
            record('fsync.%s.req_per_fsync_ratio' % name, 'Produce requests per fsync',
                   out['requests'] / max(n, 1), load)
        if out and name == 'rd100':
            record('fsync.rd100.msgs_per_fsync_ratio', '100 B messages per fsync',
                   out['msgs'] / max(n, 1), load)


def profile_suite(b, workdir):
    """perf cpu-clock profiles of the broker under three loads, kept next to the results."""
    if not shutil.which('perf'):
        EXTRA['profile'] = 'perf not installed'
        return
    jobs = [
        ('produce-rd-1k-a1', lambda: rd_produce(b, 'prof-rd', 4, SZ['rd_1k'], 1024, '1')),
        ('produce-lean-1k-all', lambda: lean_produce(b, 'prof-all', 4, SZ['lean_all'], 1024,
                                                     'all')),
        ('replay-lean', lambda: lean('fetch', '-b', b.addr, '-t', 'backlog', '-p', 4, '--max',
                                     '1M', '-n', SZ['rd_1k'])),
        ('consume-rd-32-partitions', lambda: loadgen('consume', '-b', b.addr, '-t', 'window',
                                                     '-p', WINDOW_PARTS)),
    ]
    b.create('prof-all', 4)
    EXTRA['profiles'] = {}
    for name, fn in jobs:
        PROG.show('profile: %s (perf record -e cpu-clock)' % name)
        data = os.path.join(workdir, name + '.perf')
        # DWARF unwinding: the build keeps no frame pointers, and the broker's own frames are
        # what tells where the time goes.
        perf = subprocess.Popen(['perf', 'record', '-q', '-e', 'cpu-clock', '-F', '500',
                                 '--call-graph', 'dwarf,16384', '-p', str(b.pid), '-o', data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            fn()
        except ToolError as e:
            ERRORS.append('profile %s: %s' % (name, e))
        perf.send_signal(signal.SIGINT)
        try:
            perf.wait(60)
        except subprocess.TimeoutExpired:
            perf.kill()
        rep = subprocess.run(['perf', 'report', '-i', data, '--stdio', '--children', '--sort',
                              'symbol', '-g', 'none', '--percent-limit', '3'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=300)
        # Inclusive time per user-space function, without unresolved addresses.
        lines = [' '.join(l.split()[:4]) for l in rep.stdout.splitlines()
                 if l.strip() and not l.startswith('#') and '[.]' in l and '0x0000' not in l]
        EXTRA['profiles'][name] = lines[:30]
        os.unlink(data)


# ---------------------------------------------------------------------------------------------
# Targets, table, JSON, plots

def targets():
    """(name, measured, limit, direction, basis). Ratio = measured / limit."""
    T = []

    def add(name, value, limit, direction, basis, short):
        T.append({'name': name, 'value': value, 'limit': limit, 'direction': direction,
                  'basis': basis, 'short': short})

    mock_1k = med('mock.rd_1k_a1.mbps')
    add('produce 1 KB acks=1 (librdkafka) >= 0.9x mock', med('depot.rd_1k_a1.mbps'),
        0.9 * mock_1k if mock_1k else None, '>=', 'MB/s, medians, runs alternated with the mock',
        'produce 1KB a=1 vs mock')
    mock_cpu = med('mock.rd_1k_a1.cpu_s_per_gb')
    add('broker CPU per GB, produce 1 KB acks=1 <= 1.5x mock', med('depot.rd_1k_a1.cpu_s_per_gb'),
        1.5 * mock_cpu if mock_cpu else None, '<=', 'CPU-s/GB, medians',
        'CPU/GB vs mock')
    disk = med('ref.disk_paired.seq_sync1m_mbps')
    add('produce acks=all (lean, 1 partition) >= 80% of fdatasync-per-MiB sequential write',
        med('depot.lean_1k_all.wire_mbps'), 0.8 * disk if disk else None, '>=',
        'record-batch MB/s vs the disk measured just before each run, medians',
        'acks=all vs disk fdatasync')
    tcp = med('ref.tcp_paired.mbps')
    add('replay, 4 partitions (lean fetch) >= 70% of loopback TCP', med('depot.lean_replay.mbps'),
        0.7 * tcp if tcp else None, '>=', 'MB/s vs loopback TCP measured just before each run, '
        'medians',
        'replay vs loopback TCP')
    mock_c = med('mock.rd_window.mbps')
    add('librdkafka consumer >= 0.9x mock', med('depot.rd_window.mbps'),
        0.9 * mock_c if mock_c else None, '>=', 'MB/s on the same hot window, medians',
        'rdkafka consumer vs mock')
    add('p99 produce->consume <= 2 ms at 10% of peak, acks=all (librdkafka)',
        med('depot.e2e.p99_ms'), 2.0, '<=', 'ms, median of the runs\' p99',
        'e2e p99 (librdkafka)')
    add('p99 produce->consume <= 2 ms at 10% of peak, acks=all (lean)',
        med('depot.e2e_lean.p99_ms'), 2.0, '<=', 'ms, median of the runs\' p99',
        'e2e p99 (lean)')
    add('RSS idle <= 10 MB', med('depot.idle.rss_mb'), 10.0, '<=', 'VmRSS',
        'RSS idle')
    add('RSS with 1,000 partitions + 1,000 connections <= 64 MB', worst('depot.conns.rss_mb'),
        64.0, '<=', 'VmRSS, worst run',
        'RSS 1k parts + 1k conns')
    add('peak RSS over the whole run <= 32 MB', med('depot.final.hwm_mb'), 32.0, '<=',
        'VmHWM (includes the 2 GB replay)',
        'peak RSS (VmHWM)')
    add('write amplification, 1 KB acks=1 (librdkafka) <= 1.05', med('depot.rd_1k_a1.wamp'),
        1.05, '<=', 'write_bytes / value bytes',
        'write amp acks=1')
    add('write amplification, 1 KB acks=all (lean) <= 1.05', med('depot.lean_1k_all.wamp'),
        1.05, '<=', 'write_bytes / value bytes',
        'write amp acks=all')
    add('fsyncs coalesce: Produce requests per fsync, acks=all, 1 partition, 8 in flight >= 2',
        med('fsync.aall.req_per_fsync_ratio'), 2.0, '>=', 'strace count',
        'requests per fsync')
    if 'kafka_sizes' in EXTRA:
        import vs_kafka
        vs_kafka.targets(sys.modules[__name__], add)
    for t in T:
        v, l = t['value'], t['limit']
        t['ratio'] = (v / l) if (v is not None and l) else None
        if t['ratio'] is None:
            t['pass'] = None
        elif t['direction'] == '>=':
            t['pass'] = t['ratio'] >= 1.0
        else:
            t['pass'] = t['ratio'] <= 1.0
    return T


def fmt(v):
    if v is None:
        return '-'
    a = abs(v)
    if a >= 1000:
        return '%.0f' % v
    if a >= 100:
        return '%.1f' % v
    if a >= 1:
        return '%.2f' % v
    return '%.3g' % v


def table_text(T):
    out = []
    out.append('%-44s %10s %10s %10s %-9s %5s' % ('result (median of runs)', 'median', 'min', 'max',
                                                  'unit', 'load'))
    for rid in sorted(RESULTS):
        r = RESULTS[rid]
        out.append('%-44s %10s %10s %10s %-9s %5.1f' % (
            rid[:44], fmt(statistics.median(r['runs'])), fmt(min(r['runs'])), fmt(max(r['runs'])),
            r['unit'], statistics.mean(r['loads'])))
    out.append('')
    out.append('%-72s %9s %9s %7s  %s' % ('target', 'measured', 'limit', 'ratio', ''))
    for t in T:
        verdict = {True: 'met', False: 'MISSED', None: 'n/a'}[t['pass']]
        out.append('%-72s %9s %9s %7s  %s' % (t['name'][:72], fmt(t['value']), fmt(t['limit']),
                                              (fmt(t['ratio']) + 'x') if t['ratio'] else '-',
                                              verdict))
    return '\n'.join(out)


def table_markdown(T, doc):
    m = doc['machine']
    out = ['Run of %s (%s mode, %d run(s) per scenario, %.0f s), commit `%s`%s.' % (
        doc['date'], doc['mode'], doc['runs_per_scenario'], doc['duration_s'], m['commit'],
        ' with local changes' if m['dirty'] else ''),
        '', 'Machine: %d CPUs (%s), %.1f GB RAM, kernel %s, data disk %s; librdkafka %s; %s.' % (
            m['nproc'], m['cpu'], m['mem_gb'], m['kernel'], m['disk'], m['librdkafka'],
            m['cc']),
        '', 'Load average (1 min) at start %.1f, at end %.1f; the load during each result is in '
        'the last column. **The box was shared with other jobs while this ran.**' % (
            doc['loadavg_start'][0], doc['loadavg_end'][0]), '']
    if EXTRA.get('e2e_rate'):
        out += ['Latency runs at %.0f msg/s (10%% of the median acks=all librdkafka peak).'
                % EXTRA['e2e_rate'], '']
    out += ['| target | measured | limit | ratio | | basis |', '|---|---:|---:|---:|---|---|']
    for t in T:
        verdict = {True: 'met', False: '**missed**', None: 'n/a'}[t['pass']]
        out.append('| %s | %s | %s | %s | %s | %s |' % (
            t['name'].replace('<=', '≤').replace('>=', '≥').replace('->', '→'), fmt(t['value']),
            fmt(t['limit']), (fmt(t['ratio']) + '×') if t['ratio'] else '-', verdict,
            t['basis']))
    import vs_kafka
    summ = vs_kafka.summary_table(sys.modules[__name__])
    if summ:
        out += ['', 'Depot against Apache Kafka and the references (runs alternated; Kafka: %s):'
                % EXTRA.get('kafka', '?'), ''] + summ
    out += ['', '| result | median | min | max | unit | runs | load avg |',
            '|---|---:|---:|---:|---|---:|---:|']
    for rid in sorted(RESULTS):
        r = RESULTS[rid]
        out.append('| `%s` %s | %s | %s | %s | %s | %d | %.1f |' % (
            rid, r['label'].replace('->', '→'), fmt(statistics.median(r['runs'])),
            fmt(min(r['runs'])), fmt(max(r['runs'])), r['unit'], len(r['runs']),
            statistics.mean(r['loads'])))
    swing = vs_kafka.swing_table(sys.modules[__name__])
    if swing:
        out += ['', 'Run-to-run swing of CPU per GB: each acks=1 produce run with what the box '
                'did meanwhile (system-wide reclaim/writeback/steal from /proc):', ''] + swing
    for name, lines in sorted(EXTRA.get('profiles', {}).items()):
        out += ['', 'Profile `%s` (perf cpu-clock, inclusive %% of broker samples, user-space '
                'frames):' % name, '', '```'] + lines[:18] + ['```']
    if ERRORS:
        out += ['', 'Errors:', ''] + ['- ' + e for e in ERRORS]
    return '\n'.join(out)


def machine():
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
        with open('/proc/meminfo') as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        mem_kb = 0
    df = subprocess.run(['df', '-T', os.environ.get('BENCH_DIR', tempfile.gettempdir())],
                        stdout=subprocess.PIPE, text=True).stdout.splitlines()
    dev = df[-1].split() if len(df) > 1 else ['?', '?']
    rot = '?'
    try:
        base = os.path.basename(dev[0]).rstrip('0123456789') or dev[0]
        with open('/sys/block/%s/queue/rotational' % base) as f:
            rot = 'rotational' if f.read().strip() == '1' else 'non-rotational'
    except OSError:
        pass

    def cmd(*a):
        try:
            return subprocess.run(a, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip()
        except OSError:
            return ''
    return {'nproc': os.cpu_count(), 'cpu': cpu, 'mem_gb': round(mem_kb / 1048576, 1),
            'kernel': platform.release(), 'disk': '%s (%s, %s)' % (dev[0], dev[1], rot),
            'librdkafka': cmd('dpkg-query', '-W', '-f=${Version}\n',
                              'librdkafka1').split('\n')[0],  # one line per architecture
            'cc': cmd('cc', '--version').splitlines()[0] if cmd('cc', '--version') else '',
            'commit': cmd('git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'),
            'dirty': bool(cmd('git', '-C', ROOT, 'status', '--porcelain', '--untracked-files=no'))}


def plots(outdir, workdir, T):
    if not shutil.which('gnuplot'):
        PROG.note('gnuplot not found: no plots (apt-get install gnuplot-nox)')
        return []
    os.makedirs(outdir, exist_ok=True)
    made = []

    def bars(name, title, ylabel, rows, extra=''):
        rows = [r for r in rows if r[1] is not None]
        if not rows:
            return
        dat = os.path.join(workdir, name + '.dat')
        with open(dat, 'w') as f:
            for label, m, lo, hi in rows:
                f.write('"%s" %g %g %g\n' % (label, m, lo, hi))
        png = os.path.join(outdir, name + '.png')
        script = '''set terminal pngcairo size 1000,560 font "sans,10"
set output "%s"
set title "%s"
set ylabel "%s"
set style fill solid 0.6 border -1
set boxwidth 0.7
set xtics rotate by -30 left
set grid ytics
set yrange [0:*]
set bmargin 10
set rmargin 14
%s
plot "%s" using 0:2:xtic(1) with boxes lc rgb "#4a7bb7" notitle, \\
     "" using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 title "min..max"
''' % (png, title, ylabel, extra, dat)
        subprocess.run(['gnuplot'], input=script, text=True, check=False)
        if os.path.exists(png):
            made.append(png)

    def row(label, rid):
        r = RESULTS.get(rid)
        if not r:
            return (label, None, 0, 0)
        return (label, statistics.median(r['runs']), min(r['runs']), max(r['runs']))

    bars('throughput', 'Throughput (median of runs, whiskers = min..max)', 'MB/s', [
        row('disk seq, fdatasync/MiB', 'ref.disk_paired.seq_sync1m_mbps'),
        row('disk seq, page cache', 'ref.disk.seq_nosync_mbps'),
        row('loopback TCP', 'ref.tcp_paired.mbps'),
        row('mock: produce 1KB a=1 (rdk)', 'mock.rd_1k_a1.mbps'),
        row('Depot: produce 1KB a=1 (rdk)', 'depot.rd_1k_a1.mbps'),
        row('Depot: produce 1KB a=all (rdk)', 'depot.rd_1k_all.mbps'),
        row('mock: produce 1KB a=1 (lean)', 'mock.lean_1k_a1.mbps'),
        row('Depot: produce 1KB a=1 (lean)', 'depot.lean_1k_a1.mbps'),
        row('Depot: produce 1KB a=all 1 part (lean)', 'depot.lean_1k_all.wire_mbps'),
        row('Depot: produce 1KB a=all 4 parts (lean)', 'depot.lean_1k_all_4p.wire_mbps'),
        row('Depot: replay 4 parts (lean)', 'depot.lean_replay.mbps'),
        row('Depot: replay 1 part (lean)', 'depot.lean_replay_1p.mbps'),
        row('Depot: replay (rdk)', 'depot.rd_replay.mbps'),
        row('mock: hot window (rdk)', 'mock.rd_window.mbps'),
        row('Depot: hot window (rdk)', 'depot.rd_window.mbps'),
        row('Depot+malloc tun.: produce 1KB a=1 (rdk)', 'depot_malloc.rd_1k_a1.mbps'),
        row('Depot+malloc tun.: 32 parts (rdk)', 'depot_malloc.rd_window.mbps'),
    ], extra='set logscale y\nset yrange [5:*]\nset ylabel "MB/s (log scale)"')
    bars('latency', 'Depot produce->consume latency, 1 KB at 10%% of peak (%.0f msg/s)'
         % EXTRA.get('e2e_rate', 0), 'ms (log scale)', [
             row('rdk a=all p50', 'depot.e2e.p50_ms'), row('rdk a=all p99', 'depot.e2e.p99_ms'),
             row('rdk a=all p99.9', 'depot.e2e.p999_ms'),
             row('rdk a=1 p50', 'depot.e2e_a1.p50_ms'), row('rdk a=1 p99', 'depot.e2e_a1.p99_ms'),
             row('lean a=all p50', 'depot.e2e_lean.p50_ms'),
             row('lean a=all p99', 'depot.e2e_lean.p99_ms'),
             row('lean a=all p99.9', 'depot.e2e_lean.p999_ms'),
             row('lean a=1 p50', 'depot.e2e_lean_a1.p50_ms'),
             row('lean a=1 p99', 'depot.e2e_lean_a1.p99_ms')],
         extra='set logscale y\nset yrange [0.01:*]\nset arrow from graph 0, first 2 to '
               'graph 1, first 2 nohead lc rgb "red" dt 2\nset label "2 ms target" at graph '
               '0.02, first 2.4 tc rgb "red"')
    bars('memory', 'Depot resident memory (VmRSS)', 'MB', [
        row('idle', 'depot.idle.rss_mb'),
        row('produce 1KB a=1 (peak)', 'depot.rd_1k_a1.rss_peak_mb'),
        row('produce 1KB a=all lean (peak)', 'depot.lean_1k_all.rss_peak_mb'),
        row('replay lean (peak)', 'depot.lean_replay.rss_peak_mb'),
        row('rdk consumer, 32 parts (peak)', 'depot.rd_window.rss_peak_mb'),
        row('produce+consume (peak)', 'depot.pc.rss_peak_mb'),
        row('1,000 partitions', 'depot.p1000.rss_mb'),
        row('+1,000 connections', 'depot.conns.rss_mb'),
        row('+1,000 conns (peak while opening)', 'depot.conns.rss_peak_mb'),
        row('VmHWM whole run', 'depot.final.hwm_mb'),
        row('mock idle', 'mock.idle.rss_mb')],
         extra='unset key\nset arrow from graph 0, first 10 to graph 1, first 10 nohead lc rgb "orange" '
               'dt 2\nset arrow from graph 0, first 64 to graph 1, first 64 nohead lc rgb '
               '"red" dt 2\nset label "10 MB idle" at graph 0.02, first 12 tc rgb "orange"\n'
               'set label "64 MB" at graph 0.02, first 66 tc rgb "red"')
    # Target margins: >1 means met, whichever way the target points.
    rows = []
    for t in T:
        if t['ratio']:
            m = t['ratio'] if t['direction'] == '>=' else 1.0 / t['ratio']
            rows.append((t['short'], m, m, m))
    bars('targets', 'Margin against each target (>1 = met)', 'margin (x)', rows,
         extra='set logscale y\nset yrange [0.01:*]\nunset key\nset arrow from graph 0, first 1 to '
               'graph 1, first 1 nohead lc rgb "red" dt 2')
    return made


def update_doc(md):
    """Rewrites the generated section of docs/benchmarks.md (between the markers)."""
    path = os.path.join(ROOT, 'docs', 'benchmarks.md')
    begin, end = '<!-- bench:results:begin -->', '<!-- bench:results:end -->'
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return False
    a, z = text.find(begin), text.find(end)
    if a < 0 or z < a:
        return False
    with open(path, 'w') as f:
        f.write(text[:a + len(begin)] + '\n' + md + '\n' + text[z:])
    return True


def main():
    for p in ('ref_disk', 'ref_tcp', 'ref_stream', 'mock_broker', 'loadgen', 'lean'):
        if not os.access(os.path.join(BB, p), os.X_OK):
            sys.exit('bench: %s missing; run `make bench` (it builds build/bench/*)' % p)
    groups = ONLY or {'refs', 'depot', 'mock', 'fsync', 'profile', 'diag', 'kafka'}
    if 'mock' in groups and 'depot' not in groups:
        sys.exit('bench: the mock runs side by side with Depot; add depot to BENCH_ONLY')
    if 'depot' in groups and not os.access(DEPOT, os.X_OK):
        sys.exit('bench: %s missing; run `make all`' % DEPOT)
    global PROFILE
    PROFILE = PROFILE and 'profile' in groups
    base = os.environ.get('BENCH_DIR', tempfile.gettempdir())
    workdir = tempfile.mkdtemp(prefix='depot-bench-', dir=base)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    # Rough plan for the progress counter: one step per scenario run.
    PROG.total = (('refs' in groups) * 2 * RUNS + ('depot' in groups) * (21 * RUNS + 8) +
                  ('mock' in groups) * (4 * RUNS + 1) + ('fsync' in groups) * 5 +
                  ('diag' in groups) * (2 * RUNS + 1) + ('kafka' in groups) * (19 * RUNS + 12) +
                  PROFILE * 4)
    load0 = os.getloadavg()
    sys.stderr.write('Depot bench: %s mode, %d run(s) per scenario, work dir %s\n'
                     % ('quick' if QUICK else 'full', RUNS, workdir))
    try:
        if 'refs' in groups:
            refs_suite(workdir)
        if 'depot' in groups:
            brokers_suite(workdir, 'mock' in groups, 'diag' in groups)
        if 'kafka' in groups:  # after depot: it reuses the latency rate chosen there
            import vs_kafka
            vs_kafka.suite(sys.modules[__name__], workdir)
        elif 'recovery' in groups:  # the kill -9 recovery rows alone (part of kafka)
            import vs_kafka
            EXTRA['kafka_sizes'] = vs_kafka.sizes(QUICK)
            EXTRA['kafka'] = 'not measured: BENCH_ONLY=recovery'
            vs_kafka.recovery(sys.modules[__name__], workdir, EXTRA['kafka_sizes'], None)
        if 'fsync' in groups:
            fsync_suite(workdir)
    except KeyboardInterrupt:
        ERRORS.append('interrupted')
    PROG.note('done in %.0f s' % (time.time() - PROG.t0))

    T = targets()
    print(table_text(T))
    if ERRORS:
        print('\nerrors:\n  ' + '\n  '.join(ERRORS))

    if os.environ.get('BENCH_OUT'):
        resdir = plotdir = os.path.abspath(os.environ['BENCH_OUT'])
    elif QUICK:
        resdir = plotdir = os.path.join(BB, 'out')
    else:
        resdir, plotdir = os.path.join(ROOT, 'bench', 'results'), os.path.join(ROOT, 'docs',
                                                                               'bench')
    os.makedirs(resdir, exist_ok=True)
    name = stamp.strftime('%Y-%m-%d') + ('-quick' if QUICK else '')
    pngs = plots(plotdir, workdir, T)
    doc = {'date': stamp.isoformat(timespec='seconds'), 'mode': 'quick' if QUICK else 'full',
           'runs_per_scenario': RUNS, 'sizes': SZ, 'machine': machine(),
           'loadavg_start': load0, 'loadavg_end': os.getloadavg(),
           'note': 'shared machine: other jobs ran during the benchmark; see loads per result',
           'results': RESULTS, 'targets': T, 'extra': EXTRA, 'errors': ERRORS,
           'plots': [os.path.relpath(p, ROOT) for p in pngs],
           'duration_s': round(time.time() - PROG.t0, 1)}
    out = os.path.join(resdir, name + '.json')
    with open(out, 'w') as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    print('\nresults: %s' % os.path.relpath(out, ROOT))
    for p in pngs:
        print('plot:    %s' % os.path.relpath(p, ROOT))
    md = table_markdown(T, doc)
    with open(os.path.join(resdir, name + '.md'), 'w') as f:
        f.write(md + '\n')
    if not QUICK and not os.environ.get('BENCH_OUT') and not ONLY:
        if update_doc(md):
            print('updated: docs/benchmarks.md (generated section)')
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if ERRORS else 0


if __name__ == '__main__':
    sys.exit(main())

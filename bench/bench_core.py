"""Benchmark plumbing shared by bench/run.py's modules: settings from the environment, sizes,
progress and the results table, the bench programs (loadgen, lean, references), /proc
counters, and the Depot and mock broker processes. MB = 10^6 bytes throughout."""
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
# After every produce run its topic is deleted (every broker side alike; the sink reference
# unlinks its file): the next run then writes into page-cache pages just freed, as a broker under
# retention does, instead of into memory the VM has not backed yet. BENCH_RECYCLE=0 keeps every
# run's data, which is how runs met that memory cost before (docs/benchmarks.md, "the swing").
RECYCLE = os.environ.get('BENCH_RECYCLE', '1') == '1'
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


def recycle(b, topic):
    """After a produce run, outside its measurement: drop the run's data (see RECYCLE)."""
    if RECYCLE:
        b.delete(topic)


def settle():
    """Before a latency run, outside its measurement, on every side alike: write back what
    earlier steps left dirty (gigabytes after the acks=1 runs), which a box at 10% acks=all
    load does not carry, so that the run's fdatasyncs do not queue behind that writeback."""
    os.sync()


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

    def delete(self, topic):
        """DeleteTopics, then wait until the flusher thread has unlinked the renamed-away
        partition dirs, so their page-cache pages are free before the next run."""
        loadgen('delete', '-b', self.addr, '-t', topic, timeout=60)
        deadline = time.time() + 20
        while time.time() < deadline:
            names = os.listdir(self.datadir)
            if not any(n.endswith('-delete') or n.startswith(topic + '-') for n in names):
                return
            time.sleep(0.02)
        raise ToolError('%s: the deleted topic %s is still on disk after 20 s' % (self.name,
                                                                                 topic))

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

    def delete(self, topic):
        pass  # its messages live in its own memory, not in the page cache

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait()

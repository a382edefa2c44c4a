"""The benchmark scenarios and suites (see docs/benchmarks.md): each scenario returns
{metric: value} for one run; runs()/runs_ab() repeat it and record the results in bench_core."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import bench_core
from bench_core import *  # noqa: F401,F403 (the shared settings, results and processes)

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


def ref_group_commit(workdir, rate, secs):
    """An ideal group commit at rate 1 KB msg/s (bench/ref_group_commit.c): the disk's own
    append->durable latency at the load the acks=all p99 target runs at."""
    d = tempfile.mkdtemp(prefix='ref-gc-', dir=workdir)
    try:
        return tool([os.path.join(BB, 'ref_group_commit'), d, '%.0f' % rate, str(secs)])
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
            topic = '%s-%d' % (key, i)
            out, m = rd_produce(b, topic, parts, size, msg, acks)
            recycle(b, topic)
            return produce_metrics(out, m)
        runs_ab(on or brokers, key, label, one)

    def ln(key, label, size, acks, parts=4, on=None):
        def one(b, i):
            topic = '%s-%d' % (key, i)
            b.create(topic, parts)
            out, m = lean_produce(b, topic, parts, size, 1024, acks)
            recycle(b, topic)
            return produce_metrics(out, m, wire=True)
        runs_ab(on or brokers, key, label, one)

    depot = brokers[:1]
    all3 = brokers
    brokers = [b for b in brokers if b.name != 'depot_malloc']
    rd('rd_1k_a1', 'produce 1 KB acks=1 (librdkafka)', SZ['rd_1k'], 1024, '1', on=all3)
    rd('rd_100_a1', 'produce 100 B acks=1 (librdkafka)', SZ['rd_100'], 100, '1')
    ln('lean_1k_a1', 'produce 1 KB acks=1 (lean)', SZ['lean'], '1')
    rd('rd_1k_all', 'produce 1 KB acks=all (librdkafka)', SZ['rd_all_1k'], 1024, 'all',
       on=depot)
    rd('rd_100_all', 'produce 100 B acks=all (librdkafka)', SZ['rd_all_100'], 100, 'all',
       on=depot)
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
        recycle(b, topic)
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
        settle()
        with Measure(b) as m:
            out = loadgen('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % rate, '-d',
                          SZ['e2e_secs'], '-s', 1024, '--acks', acks, '--linger', 0,
                          timeout=120)
        recycle(b, topic)
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
        settle()
        out = lean('e2e', '-b', b.addr, '-t', topic, '--rate', '%.0f' % rate, '-d',
                   SZ['e2e_secs'], '-s', 1024, '--acks', acks, timeout=120)
        recycle(b, topic)
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
        if bench_core.PROFILE:
            profile_suite(depot, workdir)
    finally:
        if mock:
            mock.stop()
        if dm:
            dm.stop()
        depot.stop()


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

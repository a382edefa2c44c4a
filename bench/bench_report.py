"""What a benchmark run leaves: the targets and their verdicts, the text and markdown tables,
the machine description, the gnuplot plots and the generated section of docs/benchmarks.md."""
import os
import platform
import shutil
import subprocess
import sys

from bench_core import *  # noqa: F401,F403 (results, settings, fmt helpers' inputs)

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
        'the last column (the bench itself reaches 2-4 on 2 cores).%s' % (
            doc['loadavg_start'][0], doc['loadavg_end'][0],
            # Other jobs show as load before the bench starts its own.
            ' **The box was shared with other jobs while this ran.**'
            if doc['loadavg_start'][0] >= m['nproc'] / 2 else ''), '']
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

"""Before/after comparison for the copy-free data path (issue 18), alternated run by run on the
same machine: two Depot binaries (DP_OLD, DP_NEW) and librdkafka's in-memory mock as the
ceiling. Scenarios from bench/run.py: lean produce 1 KB acks=1 to 4 partitions, the
librdkafka consumer on a hot 32-partition topic, and a lean replay (fetch) of a 4-partition
backlog beside the loopback TCP reference. Prints one JSON line per run and a summary.

    DP_OLD=/path/to/old/depot DP_NEW=build/depot DP_RUNS=3 /usr/bin/python3 bench/datapath_ab.py
    (DP_SCEN=produce,consume,replay picks scenarios; DP_LEAN_MB, DP_BACKLOG_MB sizes)
"""
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

MiB = 1 << 20
RUNS = int(os.environ.get('DP_RUNS', '3'))
LEAN = int(os.environ.get('DP_LEAN_MB', '256')) * MiB
WINDOW = 128 * MiB
BACKLOG = int(os.environ.get('DP_BACKLOG_MB', '512')) * MiB
SCEN = set(os.environ.get('DP_SCEN', 'produce,consume,replay').split(','))
rows = {}


def note(name, key, r):
    rows.setdefault((key, name), []).append(r)
    print(json.dumps({'broker': name, 'scenario': key, **r}), flush=True)


def main():
    work = tempfile.mkdtemp(prefix='dp-ab-', dir=os.environ.get('BENCH_DIR', '/tmp'))
    brokers = []
    for tag, binary in (('old', os.environ['DP_OLD']), ('new', os.environ['DP_NEW'])):
        R.DEPOT = binary
        d = R.Depot(work, tag=tag)
        d.name = tag
        brokers.append(d)
    topics = {'window': 32}
    topics.update({'lean-%d' % i: 4 for i in range(RUNS)})
    allb = list(brokers)
    try:
        allb.append(R.Mock(topics))
        for i in range(RUNS if 'produce' in SCEN else 0):
            for b in allb:
                b.create('lean-%d' % i, 4)
                out, m = R.lean_produce(b, 'lean-%d' % i, 4, LEAN, 1024, '1')
                note(b.name, 'lean_produce_1k_a1', {'mbps': out['mbps'],
                     'cpu_s_per_gb': m.cpu / R.gb(out['bytes']), 'rss_peak_mb': m.peak / 1024})
        for b in allb if 'consume' in SCEN else []:
            R.rd_produce(b, 'window', 32, WINDOW, 1024, '1', linger=50, batch='1M')
        for i in range(RUNS if 'consume' in SCEN else 0):
            for b in allb:
                with R.Measure(b) as m:
                    out = R.loadgen('consume', '-b', b.addr, '-t', 'window', '-p', 32)
                note(b.name, 'rd_consume_hot32', {'mbps': out['mbps'],
                     'cpu_s_per_gb': m.cpu / R.gb(out['bytes']), 'rss_peak_mb': m.peak / 1024})
        for b in brokers if 'replay' in SCEN else []:
            b.create('backlog', 4)
            R.lean_produce(b, 'backlog', 4, BACKLOG, 1024, '1')
        for i in range(RUNS if 'replay' in SCEN else 0):
            tcp = R.ref_tcp(BACKLOG)
            note('ref_tcp', 'lean_replay', {'mbps': tcp})
            for b in brokers:
                with R.Measure(b) as m:
                    out = R.lean('fetch', '-b', b.addr, '-t', 'backlog', '-p', 4, '--max', '1M')
                note(b.name, 'lean_replay', {'mbps': out['mbps'],
                     'cpu_s_per_gb': m.cpu / R.gb(out['bytes']), 'rss_peak_mb': m.peak / 1024,
                     'vs_tcp': out['mbps'] / tcp})
    finally:
        for b in allb:
            b.stop()
    print('\nscenario              broker   MB/s (runs)                 CPU-s/GB (runs)')
    for (key, name), rs in sorted(rows.items()):
        mb = [round(r['mbps']) for r in rs]
        cpu = [round(r['cpu_s_per_gb'], 2) for r in rs if 'cpu_s_per_gb' in r]
        print('%-21s %-8s %-27s %s' % (key, name, '%s med %s' % (mb, statistics.median(mb)),
                                       '%s med %s' % (cpu, statistics.median(cpu)) if cpu else ''))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Where the acks=all produce->consume tail goes (issue 18), against the disk's own fsync.

    bench/acks_tail.py [--rounds N] [--rate MSGS_S] [--secs S] [--dir DIR] [--depot BIN]

Starts one Depot (metrics listener on) and runs rounds of, interleaved within seconds:
  disk   ref_disk: 1,000 x (4 KiB append + fdatasync) in DIR (the broker's filesystem)
  lean   lean e2e at acks=-1 and acks=1 (one thread, a long-poll Fetch always outstanding)
  rdk    loadgen e2e (librdkafka) at acks=all and acks=1, linger 0
each on a fresh one-partition topic, 1 KB values. Around every acks=all run it reads
depot_log_sync_wait_stage_seconds from /metrics: the broker's own split of each acks=all wait
into queue (until the covering flusher pass starts), pass (the fdatasync), wake (until the loop
runs the answer). Prints one line per round and a summary of the ratios p99 / disk p99; writes
every round as JSON to --out. A measurement, never an assertion: on a shared box the ratios
move with the load, which is printed with each round.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BB = os.path.join(ROOT, 'build', 'bench')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(*a, timeout=180):
    out = subprocess.run([str(x) for x in a], capture_output=True, text=True, timeout=timeout)
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError('%s: no output: %s' % (a[0], out.stderr[-500:]))
    return json.loads(lines[-1])


def stages(url):
    """{stage: [cumulative counts per bucket]}, bounds, from the metrics text."""
    txt = urllib.request.urlopen(url, timeout=10).read().decode()
    hist, bounds = {}, []
    for line in txt.splitlines():
        if not line.startswith('depot_log_sync_wait_stage_seconds_bucket'):
            continue
        lab, val = line.rsplit(' ', 1)
        st = lab.split('stage="')[1].split('"')[0]
        le = lab.split('le="')[1].split('"')[0]
        hist.setdefault(st, []).append(int(val))
        if st == 'queue':
            bounds.append(float('inf') if le == '+Inf' else float(le) * 1e3)
    return hist, bounds


def quant(cum, bounds, q):
    """Upper bound (ms) of the bucket holding quantile q of a cumulative histogram delta."""
    n = cum[-1]
    if n <= 0:
        return None
    for c, b in zip(cum, bounds):
        if c >= q * n:
            return b
    return bounds[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--rate', type=float, default=10000)
    ap.add_argument('--secs', type=int, default=4)
    ap.add_argument('--dir', default=os.environ.get('BENCH_DIR', '/tmp'))
    ap.add_argument('--depot', default=os.path.join(ROOT, 'build', 'depot'))
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix='depot-acks-tail-', dir=a.dir)
    port, mport = free_port(), free_port()
    addr = '127.0.0.1:%d' % port
    murl = 'http://127.0.0.1:%d/metrics' % mport
    log = open(os.path.join(work, 'depot.log'), 'w')
    broker = subprocess.Popen([a.depot, '--set', 'listeners=PLAINTEXT://' + addr,
                               '--set', 'log.dirs=' + os.path.join(work, 'data'),
                               '--set', 'metrics.listeners=http://127.0.0.1:%d' % mport],
                              stdout=log, stderr=subprocess.STDOUT)
    rows = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        n = 0
        for r in range(a.rounds):
            row = {'load': float(open('/proc/loadavg').read().split()[0])}
            d = run(os.path.join(BB, 'ref_disk'), work, 1 << 20, 1000)
            row['disk_p50_ms'] = d['sync4k_p50_us'] / 1e3
            row['disk_p99_ms'] = d['sync4k_p99_us'] / 1e3
            row['disk_tw_p99_ms'] = d['sync4k_tw_p99_us'] / 1e3
            for kind, acks in (('lean', '-1'), ('rdk', 'all'), ('lean', '1'), ('rdk', '1')):
                n += 1
                topic = 'tail-%d-%d' % (os.getpid(), n)
                run(os.path.join(BB, 'loadgen'), 'create', '-b', addr, '-t', topic, '-p', 1)
                h0, bounds = stages(murl)
                if kind == 'lean':
                    o = run(os.path.join(BB, 'lean'), 'e2e', '-b', addr, '-t', topic, '--rate',
                            '%.0f' % a.rate, '-d', a.secs, '-s', 1024, '--acks', acks)
                else:
                    o = run(os.path.join(BB, 'loadgen'), 'e2e', '-b', addr, '-t', topic,
                            '--rate', '%.0f' % a.rate, '-d', a.secs, '-s', 1024, '--acks',
                            acks, '--linger', 0, '-p', 1)
                key = '%s_%s' % (kind, 'all' if acks in ('-1', 'all') else 'a1')
                row[key + '_p50_ms'] = o['p50_ms']
                row[key + '_p99_ms'] = o['p99_ms']
                if acks in ('-1', 'all'):
                    h1, _ = stages(murl)
                    for st in h1:
                        cum = [y - x for x, y in zip(h0[st], h1[st])]
                        row['%s_%s_p50_ms' % (key, st)] = quant(cum, bounds, 0.5)
                        row['%s_%s_p99_ms' % (key, st)] = quant(cum, bounds, 0.99)
                # Drop the run's data, as make bench does (BENCH_RECYCLE): kept, later runs
                # write into memory the VM has not backed (docs/benchmarks.md).
                run(os.path.join(BB, 'loadgen'), 'delete', '-b', addr, '-t', topic)
            rows.append(row)
            f = row['disk_p99_ms']
            print('round %d load %.1f | disk fsync p50 %.2f p99 %.2f time-weighted p99 %.2f ms | '
                  'lean all p50 %.2f p99 %.2f (%.1fx) a1 p99 %.2f | '
                  'rdk all p50 %.2f p99 %.2f (%.1fx) a1 p99 %.2f | stages p99 (lean) '
                  'queue<=%s pass<=%s wake<=%s total<=%s ms'
                  % (r + 1, row['load'], row['disk_p50_ms'], f, row['disk_tw_p99_ms'],
                     row['lean_all_p50_ms'],
                     row['lean_all_p99_ms'], row['lean_all_p99_ms'] / f, row['lean_a1_p99_ms'],
                     row['rdk_all_p50_ms'], row['rdk_all_p99_ms'], row['rdk_all_p99_ms'] / f,
                     row['rdk_a1_p99_ms'], row.get('lean_all_queue_p99_ms'),
                     row.get('lean_all_pass_p99_ms'), row.get('lean_all_wake_p99_ms'),
                     row.get('lean_all_total_p99_ms')), flush=True)
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    if rows:
        def med(k, ref):
            v = sorted(x[k] / x[ref] for x in rows)
            return v[len(v) // 2], v[0], v[-1]
        for ref in ('disk_p99_ms', 'disk_tw_p99_ms'):
            for k in ('lean_all_p99_ms', 'rdk_all_p99_ms', 'lean_a1_p99_ms', 'rdk_a1_p99_ms'):
                m, lo, hi = med(k, ref)
                print('%s / %s: median %.2fx (%.2f-%.2f) over %d rounds'
                      % (k, ref, m, lo, hi, len(rows)))
    if a.out:
        with open(a.out, 'w') as f:
            json.dump({'rate': a.rate, 'secs': a.secs, 'rounds': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

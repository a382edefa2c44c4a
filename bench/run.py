#!/usr/bin/env python3
"""Depot benchmark suite: runs the bench programs against Depot and librdkafka's mock broker,
next to same-run hardware references, and writes a table, a JSON file and plots.

Called by bench/run.sh (`make bench`); environment knobs are described there. Everything the
suite measures is explained in docs/benchmarks.md. MB = 10^6 bytes throughout.

Modules: bench_core.py (settings, results, processes), bench_scenarios.py (what is measured),
bench_report.py (targets, tables, plots); this file runs the groups asked for and writes the
results. Every name of the three is also a name of this module (datapath_ab.py and
vs_kafka.py take it as their R).
"""
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_core  # noqa: E402
from bench_core import *  # noqa: E402,F401,F403
from bench_scenarios import *  # noqa: E402,F401,F403
from bench_report import *  # noqa: E402,F401,F403


def main():
    for p in ('ref_disk', 'ref_group_commit', 'ref_tcp', 'ref_stream', 'mock_broker', 'loadgen',
              'lean'):
        if not os.access(os.path.join(BB, p), os.X_OK):
            sys.exit('bench: %s missing; run `make bench` (it builds build/bench/*)' % p)
    groups = ONLY or {'refs', 'depot', 'mock', 'fsync', 'profile', 'diag', 'kafka'}
    if 'mock' in groups and 'depot' not in groups:
        sys.exit('bench: the mock runs side by side with Depot; add depot to BENCH_ONLY')
    if 'depot' in groups and not os.access(DEPOT, os.X_OK):
        sys.exit('bench: %s missing; run `make all`' % DEPOT)
    bench_core.PROFILE = bench_core.PROFILE and 'profile' in groups
    base = os.environ.get('BENCH_DIR', tempfile.gettempdir())
    workdir = tempfile.mkdtemp(prefix='depot-bench-', dir=base)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    # Rough plan for the progress counter: one step per scenario run.
    PROG.total = (('refs' in groups) * 2 * RUNS + ('depot' in groups) * (21 * RUNS + 8) +
                  ('mock' in groups) * (4 * RUNS + 1) + ('fsync' in groups) * 5 +
                  ('diag' in groups) * (2 * RUNS + 1) + ('kafka' in groups) * (19 * RUNS + 12) +
                  bench_core.PROFILE * 4)
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
        elif 'e2e' in groups:  # the acks=all p99 target pairing alone (BENCH_E2E_RATE)
            import vs_kafka
            vs_kafka.e2e_only(sys.modules[__name__], workdir)
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

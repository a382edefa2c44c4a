#!/usr/bin/env bash
# Runs the benchmark suite (see docs/benchmarks.md). Called by `make bench` after the build.
#   BENCH_QUICK=1   small sizes, one run each: checks that the scripts work (~1-2 minutes)
#   BENCH_RUNS=N    runs per scenario in full mode (default 3)
#   BENCH_DIR=DIR   where the broker's data dir and the disk reference go (default /tmp);
#                   must be on the disk you want to measure
#   BENCH_OUT=DIR   where results/plots go (default: bench/results + docs/bench in full mode,
#                   build/bench/out in quick mode, so a quick run never overwrites them)
#   BENCH_ONLY=a,b  run only the named groups: refs, depot, mock, fsync, profile, diag, kafka,
#                   recovery (the kill -9 recovery rows alone; kafka includes them)
#                   (mock and diag run side by side with depot, so they need it too; kafka
#                   runs Apache Kafka, the sink/source references and start-up/recovery)
#   BENCH_LONG=1    the kill -9 recovery fills 10 GiB (default 1 GiB; quick mode 64 MiB)
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/run.py "$@"

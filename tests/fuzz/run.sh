#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer binary (clang, ASan + UBSan) and runs it.
#
#   run.sh [SECONDS]          campaign: each target for SECONDS (default 60)
#   run.sh --smoke [SECONDS]  smoke (`make fuzz-smoke`, part of `make test`): each target
#                             replays its committed corpus, then fuzzes SECONDS (default 10)
#                             of new inputs; nothing is written into the repo
#
# FUZZ_TARGETS="fuzz_x ..." picks some targets; FUZZ_TIMEOUT (default 30 s) is libFuzzer's
# -timeout for one input: fuzz_handlers waits up to 20 s for an answer on a busy shared box,
# and a run under `nice -n 19` there must not report a slow input as a hang. The product is built once for all targets
# (protocol, storage and broker as build/fuzz/lib/lib{kp,ks,kb}.a, through the Makefile, with
# -fsanitize=fuzzer-no-link so libFuzzer sees their coverage; `make -j2`); each target links
# what it uses from those archives. fuzz_request is also seeded with the golden request bodies
# (tests/protocol/fixtures), and any target may keep seeds in tests/fuzz/seeds/<target>/.
#
# Campaign: each target reads the corpus kept in the repo, tests/fuzz/corpus/<target>/, and
# writes what it finds to build/fuzz/<target>/corpus; FUZZ_MERGE=1 afterwards folds the finds
# into the repo corpus, minimized (-merge=1). Crashes are left in build/fuzz/<target>/ (smoke:
# build/fuzz-smoke/<target>/) as crash-*, leak-* or timeout-* files. The script exits non-zero
# if a target fails to build, crashes, leaks or hangs.
set -eu
smoke=0
if [ "${1:-}" = --smoke ]; then
    smoke=1
    shift
    SECONDS_EACH=${1:-10}
else
    SECONDS_EACH=${1:-60}
fi
TIMEOUT=${FUZZ_TIMEOUT:-30}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/fuzz"
cd "$ROOT"
mkdir -p "$OUT/bin"

command -v clang >/dev/null || { echo "run.sh: clang not found (scripts/install-deps --test)" >&2; exit 1; }

SANS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
LIB="build/fuzz/lib"
# The Makefile's own flags (-Wall -Wextra -Werror included) with the sanitizers; -j2 at most
# (a shared 2-core box). Command-line variables here override any a calling make passed down.
# shellcheck disable=SC2086
${MAKE:-make} -s -j2 --no-print-directory BUILD="$LIB" CC=clang OPT="-O1 -g" \
    SAN="-fsanitize=fuzzer-no-link $SANS" "$LIB/libkb.a" "$LIB/libks.a" "$LIB/libkp.a"

PKGS="libuv libzstd libxxhash liblz4 snappy jansson libssl libcrypto"
CFLAGS="-std=gnu11 -Wall -Wextra -Werror -g -O1 -I. -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
    $(pkg-config --cflags $PKGS)"
# libkb.a holds the uplink: the Makefile's link line for the broker brings librdkafka (the
# pinned static build, which the libkb.a build above made, or Debian's with RDKAFKA=system).
# shellcheck disable=SC2086
LIBS="$LIB/libkb.a $LIB/libks.a $LIB/libkp.a \
    $(${MAKE:-make} -s --no-print-directory BUILD="$LIB" print-broker-ldlibs)"

fail=0
targets=$(ls tests/fuzz/fuzz_*.c)
if [ -n "${FUZZ_TARGETS:-}" ]; then
    targets=$(for t in $FUZZ_TARGETS; do echo "tests/fuzz/$t.c"; done)
fi
for src in $targets; do
    name=$(basename "$src" .c)
    bin="$OUT/bin/$name"
    echo "== $name: build"
    # shellcheck disable=SC2086
    if ! clang $CFLAGS -fsanitize=fuzzer $SANS -o "$bin" "$src" $LIBS; then
        echo "FAIL: $name does not build"
        fail=1
        continue
    fi
    if [ $smoke = 1 ]; then
        work="$ROOT/build/fuzz-smoke/$name"
        rm -rf "$work"
    else
        work="$OUT/$name"
    fi
    corpus="$work/corpus"
    mkdir -p "$corpus"
    if [ "$name" = fuzz_request ]; then
        # shellcheck disable=SC2086
        clang $CFLAGS $SANS -o "$OUT/bin/seed_request" tests/fuzz/seed_request.c $LIBS
        "$OUT/bin/seed_request" "$corpus"
    fi
    if [ -d "tests/fuzz/seeds/$name" ]; then
        cp "tests/fuzz/seeds/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    kept="$ROOT/tests/fuzz/corpus/$name"
    mkdir -p "$kept"
    if [ $smoke = 1 ]; then
        # Replay first (the committed corpus, no mutation: -runs=0), timed, so the fuzzing
        # after it gets SECONDS of new inputs whatever the replay took.
        t0=$(date +%s)
        if ! (cd "$work" && "$bin" -runs=0 -timeout="$TIMEOUT" -rss_limit_mb=2048 corpus "$kept" \
                >replay.log 2>&1); then
            tail -40 "$work/replay.log"
            echo "FAIL: $name over its corpus (see $work/replay.log and the crash-*, leak-* or timeout-* file there)"
            fail=1
            continue
        fi
        replay=$(($(date +%s) - t0))
        if ! (cd "$work" && "$bin" -max_total_time=$((replay + SECONDS_EACH)) -timeout="$TIMEOUT" \
                -rss_limit_mb=2048 -print_final_stats=1 corpus "$kept" >fuzz.log 2>&1); then
            tail -40 "$work/fuzz.log"
            echo "FAIL: $name (see $work/fuzz.log and the crash-*, leak-* or timeout-* file there)"
            fail=1
            continue
        fi
        echo "== $name: ok: $(ls "$kept" | wc -l) corpus inputs replayed in ${replay}s," \
            "$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log") runs in all"
        continue
    fi
    echo "== $name: run ${SECONDS_EACH}s"
    if ! (cd "$work" && "$bin" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" \
            -rss_limit_mb=2048 -print_final_stats=1 corpus "$kept"); then
        echo "FAIL: $name (see $work/crash-*)"
        fail=1
    elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
        (cd "$work" && "$bin" -merge=1 "$kept" corpus >/dev/null 2>&1) ||
            echo "warning: $name: merge into $kept failed"
        echo "== $name: repo corpus $(ls "$kept" | wc -l) inputs"
    fi
done
exit $fail

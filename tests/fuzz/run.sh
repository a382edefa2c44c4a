#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer binary (clang, ASan + UBSan) over the
# protocol and storage sources (fuzz_avro_* also over broker/registry/avro_*.c and jansson;
# fuzz_handlers over the whole broker with libuv, OpenSSL, jansson and http-parser) and runs
# each for $1 seconds (default 60; FUZZ_TARGETS="fuzz_x ..." picks some). Each target reads
# the corpus kept in the repo, tests/fuzz/corpus/<target>/, and writes what it finds to
# build/fuzz/<target>/corpus; FUZZ_MERGE=1 afterwards folds the finds into the repo corpus,
# minimized (-merge=1). fuzz_request is also seeded with the golden request bodies
# (tests/protocol/fixtures), and any target may keep seeds in tests/fuzz/seeds/<target>/.
# Crashes are left in build/fuzz/<target>/ as crash-* files; the script exits non-zero if a
# target fails.
set -eu
SECONDS_EACH=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/build/fuzz"
cd "$ROOT"
mkdir -p "$OUT/bin"

LIBS="$(pkg-config --libs libzstd libxxhash liblz4 snappy 2>/dev/null || true) -lz -lm -lpthread"
CFLAGS="-std=gnu11 -g -O1 -I. -D_GNU_SOURCE -fno-omit-frame-pointer"
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
SRCS="$(ls protocol/*.c protocol/gen/*.c storage/*.c)"

BROKER_LIBS="$(pkg-config --libs libuv jansson libssl libcrypto rdkafka 2>/dev/null) -lhttp_parser"
fail=0
targets=$(ls tests/fuzz/fuzz_*.c)
if [ -n "${FUZZ_TARGETS:-}" ]; then
    targets=$(for t in $FUZZ_TARGETS; do echo "tests/fuzz/$t.c"; done)
fi
for src in $targets; do
    name=$(basename "$src" .c)
    bin="$OUT/bin/$name"
    echo "== $name: build"
    extra=""
    case "$name" in
    fuzz_avro_*) extra="$(ls broker/registry/avro_*.c) -ljansson" ;;
    fuzz_sasl) extra="broker/auth/scram.c -lssl -lcrypto" ;; # auth room parsers need OpenSSL
    fuzz_handlers) extra="$(ls broker/*.c broker/*/*.c | grep -v '^broker/main.c$') $BROKER_LIBS" ;;
    esac
    # shellcheck disable=SC2086
    clang $CFLAGS $SAN -o "$bin" "$src" $SRCS $extra $LIBS
    corpus="$OUT/$name/corpus"
    mkdir -p "$corpus"
    if [ "$name" = fuzz_request ]; then
        # shellcheck disable=SC2086
        clang $CFLAGS -o "$OUT/bin/seed_request" tests/fuzz/seed_request.c $SRCS $LIBS
        "$OUT/bin/seed_request" "$corpus"
    fi
    if [ -d "tests/fuzz/seeds/$name" ]; then
        cp "tests/fuzz/seeds/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    kept="$ROOT/tests/fuzz/corpus/$name"
    mkdir -p "$kept"
    echo "== $name: run ${SECONDS_EACH}s"
    if ! (cd "$OUT/$name" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 corpus "$kept"); then
        echo "FAIL: $name (see $OUT/$name/crash-*)"
        fail=1
    elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
        (cd "$OUT/$name" && "$bin" -merge=1 "$kept" corpus >/dev/null 2>&1) ||
            echo "warning: $name: merge into $kept failed"
        echo "== $name: repo corpus $(ls "$kept" | wc -l) inputs"
    fi
done
exit $fail

#!/usr/bin/env bash
# End-to-end suite: each test starts $DEPOT_BIN on a free loopback port with a fresh temp data
# dir and drives it with real, unmodified Kafka clients (kcat, confluent-kafka, kafka-python,
# kafkajs). Usage: tests/e2e/run.sh [test_file ...]   (default: every test_* file here)
#   DEPOT_BIN       broker binary (default ../../build/depot)
#   DEPOT_LONG=1    bigger message counts
#   E2E_TIMEOUT     seconds per test file (default 300)
#   E2E_ALL=1       also run the files listed in PENDING
#   E2E_JOBS        test files run at a time (default 2; 1 = one after the other, output live)
# PENDING lists test files (one per line, "file  reason") that wait on a broker feature still
# being built; they are skipped by default and named in the output, so main stays green.
set -eu
cd "$(dirname "$0")"
export DEPOT_BIN=${DEPOT_BIN:-$(cd ../.. && pwd)/build/depot}
per_test=${E2E_TIMEOUT:-300}
[ "${DEPOT_LONG:-0}" = 1 ] && per_test=${E2E_TIMEOUT:-1800}

if [ $# -gt 0 ]; then tests=("$@"); else tests=(test_*.sh test_*.py test_*.js); fi

# kafkajs, @kafkajs/confluent-schema-registry and @platformatic/kafka are pinned in package.json/package-lock.json;
# fetch them once per checkout.
need_node=0
for t in "${tests[@]}"; do case "$t" in *.js) need_node=1 ;; esac; done
if [ "$need_node" = 1 ] && { [ ! -d node_modules/kafkajs ] ||
    [ ! -d node_modules/@kafkajs/confluent-schema-registry ] ||
    [ ! -d node_modules/@platformatic/kafka ]; }; then
    echo "== npm ci (kafkajs, @platformatic/kafka)"
    npm ci --no-audit --no-fund --loglevel=error || { echo "FAIL: npm ci"; exit 1; }
fi

fail=0
failed=()
present=()
for t in "${tests[@]}"; do
    [ -e "$t" ] || continue
    if [ $# -eq 0 ] && [ "${E2E_ALL:-0}" != 1 ] && [ -f PENDING ] &&
        reason=$(awk -v t="$t" '$1 == t { $1 = ""; print; found = 1 } END { exit !found }' PENDING); then
        echo "== skip $t (pending:$reason)"
        continue
    fi
    present+=("$t")
done
tests=("${present[@]}")

# Two at a time by default (E2E_JOBS): every test owns its broker, port and temp dir, and most
# of a test's time is spent waiting on clients and JVMs, so two share the CI box's 2 cores
# without stepping on each other. Longest first (the times of the last run in this checkout,
# build/e2e-times, else the list below) so the two queues end together. E2E_JOBS=1 runs them
# one after the other with their output live.
jobs=${E2E_JOBS:-2}
times=../../build/e2e-times
heavy="test_admin_offloop.py test_admin_offloop_topics.py test_uplink.py test_fault_crash_loop.py
       test_uplink_txn.py test_java_tools.py test_security_java.py test_audit_power_cut.py
       test_fault_power_cut.py test_kafka_dist.py test_uplink_keyhash_kafka.py
       test_java_consumer_group.py test_uplink_sasl.py test_audit.py test_quota_kafka_configs.py"
if [ "$jobs" -gt 1 ] && [ "${#tests[@]}" -gt 1 ]; then
    mapfile -t tests < <(for t in "${tests[@]}"; do
        w=$(awk -v t="$t" '$1 == t { print $2 }' "$times" 2>/dev/null | tail -n 1)
        if [ -z "$w" ]; then
            w=0
            i=1000
            for h in $heavy; do [ "$h" = "$t" ] && w=$i; i=$((i - 1)); done
        fi
        echo "$w $t"
    done | sort -s -k1,1 -rn | awk '{ print $2 }')
    # a client a test fetches on first use is fetched here once, not by two tests at a time
    for f in "fetch-kafka --print-dir" "fetch-pyclients --print-python" \
             "fetch-goclients --print-bin" "fetch-node-codecs --print-dir"; do
        read -r script flag <<<"$f"
        ../../scripts/"$script" "$flag" >/dev/null 2>&1 ||
            ../../scripts/"$script" >/dev/null 2>&1 || true
    done
fi

# Always called in a subshell (a background job's, or an explicit one), which `exec` turns
# into `timeout` itself: the pid the runner knows is then the timeout's, and a signal to it
# reaches the test's whole process group (the cleanup below), where killing a subshell had
# left the timeout and its test running.
run_one() { # test file; the status is the test's
    case "$1" in
    *.py) exec timeout --kill-after=10 "$per_test" /usr/bin/python3 "$1" ;;
    *.js) exec timeout --kill-after=10 "$per_test" node "$1" ;;
    *) exec timeout --kill-after=10 "$per_test" bash "$1" ;;
    esac
}

fail=0
failed=()
declare -A started=() logs=() names=()
new_times=$(mktemp)
outdir=$(mktemp -d)
# set -e holds in the trap too: a kill with no job left must not turn a pass into status 2
cleanup() {
    [ "${#names[@]}" = 0 ] || kill "${!names[@]}" 2>/dev/null || true
    rm -rf "$outdir" "$new_times"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

finish() { # test, status, seconds
    if [ "$2" = 0 ]; then
        echo "== ok   $1 (${3}s)"
    else
        [ "$2" = 124 ] && echo "   (timed out after ${per_test}s)"
        echo "FAIL: $1 (status $2, ${3}s)"
        fail=1
        failed+=("$1")
    fi
    echo "$1 $3" >>"$new_times"
}

t_all=$EPOCHREALTIME
if [ "$jobs" -le 1 ]; then
    for t in "${tests[@]}"; do
        echo "== e2e $t"
        t0=$EPOCHREALTIME
        rc=0
        (run_one "$t") || rc=$?
        finish "$t" "$rc" "$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t0}")"
    done
else
    next=0
    while [ "$next" -lt "${#tests[@]}" ] || [ "${#names[@]}" -gt 0 ]; do
        while [ "${#names[@]}" -lt "$jobs" ] && [ "$next" -lt "${#tests[@]}" ]; do
            t=${tests[$next]}
            next=$((next + 1))
            log=$outdir/$t.log
            run_one "$t" >"$log" 2>&1 &
            names[$!]=$t
            logs[$!]=$log
            started[$!]=$EPOCHREALTIME
        done
        rc=0
        wait -n -p pid "${!names[@]}" || rc=$?
        t=${names[$pid]}
        echo "== e2e $t"
        cat "${logs[$pid]}"
        finish "$t" "$rc" "$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - ${started[$pid]}}")"
        unset "names[$pid]" "logs[$pid]" "started[$pid]"
    done
fi
echo "e2e: $((${#tests[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
echo "== e2e total $(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t_all}")s"
[ "$fail" = 0 ] || echo "== e2e FAILED: ${failed[*]}"
# the times of this run order the next one (a partial run updates only its own tests)
mkdir -p ../../build
{ [ -f "$times" ] && awk 'NR == FNR { seen[$1] = 1; next } !($1 in seen)' "$new_times" "$times"
  cat "$new_times"; } >"$times.new" 2>/dev/null && mv "$times.new" "$times"
exit $fail

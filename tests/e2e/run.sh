#!/usr/bin/env bash
# End-to-end suite: each test starts $DEPOT_BIN on a free loopback port and drives it with
# real clients. Populated as the broker lands.
set -eu
cd "$(dirname "$0")"
fail=0
for t in test_*.sh test_*.py test_*.js; do
    [ -e "$t" ] || continue
    echo "== e2e $t"
    case "$t" in
    *.py) /usr/bin/python3 "$t" || { echo "FAIL: $t"; fail=1; } ;;
    *.js) node "$t" || { echo "FAIL: $t"; fail=1; } ;;
    *) bash "$t" || { echo "FAIL: $t"; fail=1; } ;;
    esac
done
exit $fail

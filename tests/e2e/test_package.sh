#!/usr/bin/env bash
# The Debian package (make deb): contents, conffile, control fields; `systemd-analyze verify`
# on the unit inside an extracted root; and the packaged binary, started from that root with
# the packaged server.properties, says READY=1 on $NOTIFY_SOCKET (Type=notify), answers Kafka
# Metadata and /readyz, and stops cleanly on SIGTERM.
# The maintainer scripts run in a private mount namespace (unshare -m) over copies of /etc and
# an empty /var/lib, so the depot user, /var/lib/depot, upgrade, remove and purge are checked
# without touching this machine (systemctl is skipped: no /run/systemd/system there).
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh  # depot_free_ports
ROOT=$(cd ../.. && pwd)
tmp=$(mktemp -d /tmp/depot-e2e-deb-XXXXXX)
pid=""
listener=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    [ -n "$listener" ] && kill "$listener" 2>/dev/null || true
    rm -rf "$tmp" "${DEPOT_TMP:-}"  # lib.sh's temp dir: its EXIT trap is replaced here
}
trap cleanup EXIT
fail() { echo "  FAIL $*"; exit 1; }
pass() { echo "  PASS $*"; }

for tool in dpkg-deb systemd-analyze kcat python3; do
    command -v "$tool" >/dev/null || { echo "  SKIP test_package: $tool not installed"; exit 0; }
done

# The binaries under test (DEPOT_BIN's build dir: build/ or build/asan/), packaged by the script
# `make deb` runs.
bdir=$(dirname "${DEPOT_BIN:-$ROOT/build/depot}")
deb=$(cd "$ROOT" && BUILD="$bdir" scripts/build-deb | tail -1)
[ -f "$deb" ] || fail "scripts/build-deb did not produce a package ($deb)"
pass "make deb (scripts/build-deb): $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = depot ] || fail "Package field"
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libuv1' <<<"$depends" || fail "Depends lacks libuv1: $depends"
contents=$(dpkg-deb -c "$deb")
# librdkafka is linked in statically unless the build chose RDKAFKA=system (docs/operations.md)
if grep -q 'librdkafka\.so' <<<"$(ldd "$bdir/depot")"; then
    grep -q 'librdkafka1' <<<"$depends" || fail "depot loads librdkafka.so, Depends lacks librdkafka1"
else
    ! grep -q 'librdkafka' <<<"$depends" || fail "static librdkafka, yet Depends names it: $depends"
    grep -q ' ./usr/share/doc/depot/librdkafka/LICENSE$' <<<"$contents" ||
        fail "package lacks librdkafka's LICENSE under /usr/share/doc/depot/librdkafka/"
fi
for f in ./usr/bin/depot ./usr/bin/depotctl ./etc/depot/server.properties \
    ./lib/systemd/system/depot.service ./usr/share/man/man8/depot.8.gz \
    ./usr/share/doc/depot/operations.md; do
    grep -q " $f\$" <<<"$contents" || fail "package lacks $f"
done
# (here-strings, not pipes into grep -q: with pipefail, grep exiting at its first match can
# SIGPIPE the writer and fail the pipeline)
line=$(grep ' ./usr/bin/depot$' <<<"$contents")
grep -q '^-rwxr-xr-x root/root' <<<"$line" || fail "depot mode/owner: $line"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/depot/server.properties <<<"$conffiles" || fail "server.properties is not a conffile"
pass "contents, Depends, conffiles"

dpkg-deb -x "$deb" "$tmp/root"
props="$tmp/root/etc/depot/server.properties"
grep -qx 'log.dirs=/var/lib/depot' "$props" || fail "conffile does not set log.dirs"
grep -qx '#log.retention.hours=168' "$props" || fail "conffile lacks the commented defaults"
unit="$tmp/root/lib/systemd/system/depot.service"
grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify"
grep -q '^LimitNOFILE=' "$unit" || fail "unit sets no LimitNOFILE"
# verify resolves ExecStart, User and the targets the unit names inside the extracted root: give
# it the host's targets and slices and a depot user (postinst creates the real one). Man pages
# are checked above (depot.8.gz), not through man(1) inside the root.
cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$tmp/root/lib/systemd/system/"
mkdir -p "$tmp/root/etc"
echo 'depot:x:999:999::/var/lib/depot:/usr/sbin/nologin' >> "$tmp/root/etc/passwd"
echo 'depot:x:999:' >> "$tmp/root/etc/group"
out=$(systemd-analyze verify --man=no --root="$tmp/root" /lib/systemd/system/depot.service 2>&1) ||
    fail "systemd-analyze verify: $out"
echo "$out" | grep -i 'depot.service' && fail "systemd-analyze verify complained: $out"
pass "systemd-analyze verify depot.service"

if unshare -m true 2>/dev/null; then
    dpkg-deb -e "$deb" "$tmp/ctrl"
    cat > "$tmp/scripts.sh" <<'NS'
set -eu
t=$1; ctrl=$2
mount --make-rprivate /
cp -a /etc "$t/etc-copy"
mount --bind "$t/etc-copy" /etc
mkdir -p "$t/varlib"
mount --bind "$t/varlib" /var/lib
sh "$ctrl/postinst" configure "" >/dev/null 2>&1
getent passwd depot >/dev/null || { echo "postinst: no depot user"; exit 1; }
mode=$(stat -c '%U:%G %a' /var/lib/depot)
[ "$mode" = "depot:depot 750" ] || { echo "postinst: /var/lib/depot is $mode"; exit 1; }
echo data > /var/lib/depot/keep
sh "$ctrl/prerm" upgrade 0.1.0
sh "$ctrl/postinst" configure 0.0.9 >/dev/null 2>&1
[ -f /var/lib/depot/keep ] || { echo "upgrade lost the data"; exit 1; }
sh "$ctrl/prerm" remove
sh "$ctrl/postrm" remove
[ -f /var/lib/depot/keep ] || { echo "remove lost the data"; exit 1; }
getent passwd depot >/dev/null || { echo "remove dropped the user"; exit 1; }
mkdir -p /etc/depot && touch /etc/depot/server.properties
sh "$ctrl/postrm" purge
[ ! -e /var/lib/depot ] || { echo "purge kept /var/lib/depot"; exit 1; }
[ ! -e /etc/depot ] || { echo "purge kept /etc/depot"; exit 1; }
NS
    out=$(unshare -m bash "$tmp/scripts.sh" "$tmp" "$tmp/ctrl" 2>&1) || fail "maintainer scripts: $out"
    getent passwd depot >/dev/null && fail "the depot user leaked out of the namespace"
    pass "maintainer scripts: user + /var/lib/depot, upgrade and remove keep data, purge deletes"
else
    echo "  SKIP maintainer scripts: unshare -m not permitted here"
fi

# Start the packaged binary with the packaged configuration (paths redirected into $tmp). The
# two ports are picked as depot_harness does (bound to port 0, then released); another test may
# take one before the broker binds it, so a start that ends with "address already in use" is
# tried again with fresh ports (3 tries). Any other failure to start fails the test.
start_packaged() {  # $1: attempt number; 0 = READY=1 received, 2 = a port was taken, 1 = other
    read -r port mport <<<"$(depot_free_ports 2)"
    log="$tmp/depot.$1.log"
    rm -f "$tmp/notify" "$tmp/notified"
    python3 - "$tmp/notify" "$tmp/notified" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "wb") as f:
    f.write(s.recv(4096))
PY
    listener=$!
    for _ in $(seq 100); do [ -S "$tmp/notify" ] && break; sleep 0.1; done
    rm -rf "$tmp/data" && mkdir "$tmp/data"
    NOTIFY_SOCKET="$tmp/notify" "$tmp/root/usr/bin/depot" --config "$props" \
        --set "log.dirs=$tmp/data" --set "listeners=PLAINTEXT://127.0.0.1:$port" \
        --set "metrics.listeners=http://127.0.0.1:$mport" > "$log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do  # 60 s: a loaded box, an ASan build
        [ -s "$tmp/notified" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$tmp/notified" ] && return 0
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    kill "$listener" 2>/dev/null || true
    listener=""
    grep -qi 'address already in use' "$log" && return 2
    return 1
}
for attempt in 1 2 3; do
    rc=0
    start_packaged "$attempt" || rc=$?
    [ "$rc" = 2 ] && [ "$attempt" -lt 3 ] && { echo "    a port was taken meanwhile; trying others"; continue; }
    break
done
[ "$rc" = 0 ] || fail "no READY=1 on NOTIFY_SOCKET (start $attempt): $(cat "$log")"
grep -q '^READY=1' "$tmp/notified" || fail "NOTIFY_SOCKET got $(cat "$tmp/notified"), not READY=1"
md=$(kcat -b "127.0.0.1:$port" -L -m 10) || fail "kcat -L against the packaged broker"
grep -q 'broker 1 at' <<<"$md" || fail "Metadata from the packaged broker: $md"
ready=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())' "http://127.0.0.1:$mport/readyz")
[ "$ready" = ready ] || fail "/readyz: $ready"
pass "packaged depot: READY=1, Metadata, /readyz"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q 'Depot stopped' "$log" || fail "no clean stop in the log"
pass "SIGTERM: clean stop"

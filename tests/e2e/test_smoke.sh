#!/usr/bin/env bash
# Smoke test: start depot (config file + --set) on a free loopback port with a temp data dir,
# list metadata with kcat, auto-create a topic (by producing when Produce is served, else via
# Metadata) with num.partitions from the file, and
# check that SIGTERM stops it with exit status 0 within a few seconds.
set -u
DEPOT_BIN=${DEPOT_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/depot}
PY=/usr/bin/python3
dir=$(mktemp -d /tmp/depot-smoke.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && tail -20 "$dir/log"; exit 1; }

# docs/configuration.md is generated from the config table: keep them in sync.
"$DEPOT_BIN" --print-config-doc | diff -q - "$(dirname "$0")/../../docs/configuration.md" >/dev/null ||
    fail "docs/configuration.md is stale: regenerate with build/depot --print-config-doc"

# A bad value refuses to start and names the key.
out=$("$DEPOT_BIN" --set log.dirs="$dir/data" --set num.partitions=zero 2>&1) && fail "bad config accepted"
echo "$out" | grep -q num.partitions || fail "config error does not name the key: $out"

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/server.properties" <<PROPS
# smoke test broker
listeners=PLAINTEXT://127.0.0.1:$port
log.dirs: $dir/data
num.partitions = 2
zookeeper.connect=ignored:2181
PROPS
"$DEPOT_BIN" --config "$dir/server.properties" --set log.retention.hours=1 >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
    sleep 0.1
done

md=$(kcat -b 127.0.0.1:$port -L -m 5 2>&1) || fail "kcat -L: $md"
echo "$md" | grep -q "broker 1 at 127.0.0.1:$port" || fail "metadata does not name the broker: $md"

# Which APIs are served? (ApiVersions v0 over a raw socket)
apis=$($PY - "$port" <<'PYEOF'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
body = struct.pack(">hhih", 18, 0, 1, 5) + b"smoke"
s.sendall(struct.pack(">i", len(body)) + body)
def rd(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("closed")
        b += c
    return b
n = struct.unpack(">i", rd(4))[0]
d = rd(n)
cnt = struct.unpack(">i", d[6:10])[0]
print(" ".join(str(struct.unpack(">h", d[10 + 6 * i:12 + 6 * i])[0]) for i in range(cnt)))
PYEOF
) || fail "ApiVersions probe"
has() { case " $apis " in *" $1 "*) return 0 ;; esac; return 1; }

if has 0; then
    echo "hello depot" | timeout 20 kcat -b 127.0.0.1:$port -P -t smoke || fail "kcat -P"
else
    kcat -b 127.0.0.1:$port -L -t smoke -m 5 >/dev/null 2>&1 # Metadata auto-creates it
fi
md=$(kcat -b 127.0.0.1:$port -L -m 5 2>&1)
echo "$md" | grep -q 'topic "smoke" with 2 partitions' || fail "auto-created topic not listed: $md"
if has 0 && has 1; then
    got=$(timeout 20 kcat -b 127.0.0.1:$port -C -t smoke -o beginning -c 1 -e 2>/dev/null)
    [ "$got" = "hello depot" ] || fail "consumed '$got'"
fi

kill -TERM "$pid"
for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 5 s after SIGTERM"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q "cluster id" "$dir/log" || fail "start-up log lacks the cluster id"
grep -q "unknown key 'zookeeper.connect'" "$dir/log" || fail "unknown key not warned about"
echo "ok: smoke (apis: $apis)"

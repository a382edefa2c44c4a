# Shared helpers for Depot's bash end-to-end tests. Source it:  . "$(dirname "$0")/lib.sh"
#
#   depot_start [key=value ...]   start $DEPOT_BIN on a free loopback port with a fresh temp data
#                                 dir; sets DEPOT_PORT, DEPOT_BOOTSTRAP, DEPOT_TMP, DEPOT_DATA,
#                                 DEPOT_LOG, DEPOT_PID. Fails with "broker did not start".
#   depot_free_ports N            N distinct free loopback ports, space-separated
#   depot_stop                    SIGTERM, wait, require exit status 0
#   depot_kill                    kill -9
#   depot_restart [hard]          stop (or kill -9 with "hard") and start on the same dir/port
#   fail MESSAGE                  print MESSAGE and exit 1 (the EXIT trap prints the log tail)
#
# An EXIT trap always kills the broker; on failure it prints the broker log tail and keeps
# the temp dir, on success it removes it.

set -eu
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export E2E_DIR
DEPOT_BIN=${DEPOT_BIN:-$E2E_DIR/../../build/depot}
PY=/usr/bin/python3
DEPOT_PID=
DEPOT_PORT=
DEPOT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/depot-e2e-sh.XXXXXX")
DEPOT_DATA=$DEPOT_TMP/data
DEPOT_LOG=$DEPOT_TMP/broker.log
DEPOT_SETTINGS=()
mkdir -p "$DEPOT_DATA"

_depot_exit() {
    local rc=$?
    if [ -n "$DEPOT_PID" ] && kill -0 "$DEPOT_PID" 2>/dev/null; then
        kill -9 "$DEPOT_PID" 2>/dev/null || true
        wait "$DEPOT_PID" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ]; then
        echo "  broker log $DEPOT_LOG (kept: $DEPOT_TMP):"
        tail -n 40 "$DEPOT_LOG" 2>/dev/null | sed 's/^/    | /'
    else
        rm -rf "$DEPOT_TMP"
    fi
    exit "$rc"
}
trap _depot_exit EXIT
trap 'exit 143' TERM INT

fail() {
    echo "  FAIL: $*" >&2
    exit 1
}

depot_free_port() {
    depot_free_ports 1
}

# N distinct ports that were free a moment ago (all N bound at once, then released, as
# depot_harness.free_port does for one). Another process may still take one before the broker
# binds it: callers retry on "address already in use".
depot_free_ports() {
    $PY -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

_depot_port_accepts() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when process $1 holds a socket listening on TCP port $2 (/proc: its descriptors' socket
# inodes against the listening entries of /proc/net/tcp and tcp6).
_depot_owns_port() {
    $PY -c 'import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
try:
    mine = {os.readlink("/proc/%s/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%s/fd" % pid)}
except OSError:
    sys.exit(1)
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for r in rows:
        f = r.split()
        if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port \
                and "socket:[%s]" % f[9] in mine:
            sys.exit(0)
sys.exit(1)' "$1" "$2"
}

# One start on $DEPOT_PORT. Returns 0 once the port accepts, 1 if the broker exited (its status
# in _DEPOT_RC, the log since this start in _DEPOT_OUT), and fails the test if the port still
# does not accept after 20 s.
_depot_launch_once() {
    [ -x "$DEPOT_BIN" ] || fail "broker did not start: $DEPOT_BIN missing (make all)"
    local args=(--set "listeners=PLAINTEXT://127.0.0.1:$DEPOT_PORT" --set "log.dirs=$DEPOT_DATA")
    local kv
    for kv in "${DEPOT_SETTINGS[@]+"${DEPOT_SETTINGS[@]}"}"; do args+=(--set "$kv"); done
    touch "$DEPOT_LOG"
    local from
    from=$(($(stat -c %s "$DEPOT_LOG") + 1))
    echo "=== start on port $DEPOT_PORT: $DEPOT_BIN ${args[*]}" >>"$DEPOT_LOG"
    "$DEPOT_BIN" "${args[@]}" </dev/null >>"$DEPOT_LOG" 2>&1 &
    DEPOT_PID=$!
    local i
    for i in $(seq 1 1000); do  # 20 s in 20 ms steps
        if ! kill -0 "$DEPOT_PID" 2>/dev/null; then
            _DEPOT_RC=0
            wait "$DEPOT_PID" 2>/dev/null || _DEPOT_RC=$?
            DEPOT_PID=
            _DEPOT_OUT=$(tail -c +"$from" "$DEPOT_LOG")
            return 1
        fi
        # a process that took the port meanwhile accepts too (our broker is then on its way
        # out, "in use"): the listening socket must be our broker's
        if _depot_port_accepts "$DEPOT_PORT" && _depot_owns_port "$DEPOT_PID" "$DEPOT_PORT"; then
            return 0
        fi
        sleep 0.02
    done
    fail "broker did not start: port $DEPOT_PORT not accepting after 20 s"
}

# A restart keeps its port (clients keep their bootstrap): one attempt.
_depot_launch() {
    _depot_launch_once && return 0
    fail "broker did not start (exited with status $_DEPOT_RC)"
}

# A new broker picks a free port; if another process took it before the broker bound it
# ("address already in use"), it starts again on a fresh one, three attempts in all, as
# depot_harness.Broker.start does.
depot_start() {
    DEPOT_SETTINGS=("$@")
    local attempt
    for attempt in 1 2 3; do
        DEPOT_PORT=$(depot_free_port)
        DEPOT_BOOTSTRAP=127.0.0.1:$DEPOT_PORT
        _depot_launch_once && return 0
        case "$_DEPOT_OUT" in
            *"in use"* | *"In use"*)
                echo "  port $DEPOT_PORT was taken at start; again on a fresh one" ;;
            *) break ;;
        esac
    done
    fail "broker did not start (exited with status $_DEPOT_RC)"
}

depot_stop() {
    [ -n "$DEPOT_PID" ] || fail "depot_stop: broker not running"
    kill -TERM "$DEPOT_PID"
    local rc=0 i
    for i in $(seq 1 1500); do  # 30 s
        kill -0 "$DEPOT_PID" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$DEPOT_PID" 2>/dev/null && fail "broker did not exit within 30 s of SIGTERM"
    wait "$DEPOT_PID" || rc=$?
    DEPOT_PID=
    [ "$rc" = 0 ] || fail "broker exited with status $rc after SIGTERM"
}

depot_kill() {
    [ -n "$DEPOT_PID" ] || return 0
    kill -9 "$DEPOT_PID" 2>/dev/null || true
    wait "$DEPOT_PID" 2>/dev/null || true
    DEPOT_PID=
}

depot_restart() {
    if [ "${1:-}" = hard ]; then depot_kill; else depot_stop; fi
    _depot_launch
}

# Runs a command with a timeout so a hung client fails the test instead of the suite.
with_timeout() {
    local secs=$1
    shift
    timeout --kill-after=5 "$secs" "$@"
}

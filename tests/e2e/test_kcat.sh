#!/usr/bin/env bash
# kcat (librdkafka) against the real broker: keyed produce/replay byte for byte, metadata
# listing, and every compression codec (checking the stored batches really are compressed).
. "$(dirname "$0")/lib.sh"

T0=$EPOCHREALTIME
step() { printf '  PASS %-45s %6.1fs\n' "$1" "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")"; }

depot_start num.partitions=4 auto.create.topics.enable=true
B=$DEPOT_BOOTSTRAP
KC=(kcat -b "$B" -X socket.timeout.ms=10000)

# Input: keyed lines, values with the delimiter inside, tabs, UTF-8, an empty value, a long line.
IN=$DEPOT_TMP/in.txt
{
    for i in $(seq 1 500); do printf 'key-%d:value %d with: colons\tand a tab\n' $((i % 17)) "$i"; done
    printf 'k\xc3\xa9y:v\xc3\xa4lue \xe2\x9c\x93\n'
    printf 'empty-value:\n'
    printf 'long:%s\n' "$(head -c 12000 /dev/zero | tr '\0' x)"
    for i in $(seq 501 1000); do printf 'key-%d:value-%d\n' $((i % 5)) "$i"; done
} >"$IN"

# 1. keyed produce to a new (auto-created) topic, all into partition 0 so order is total;
#    replay all partitions from the beginning until EOF: byte-identical.
with_timeout 60 "${KC[@]}" -P -t kcat-roundtrip -p 0 -K: -l "$IN" || fail "kcat produce failed"
OUT=$DEPOT_TMP/out.txt
with_timeout 60 "${KC[@]}" -C -t kcat-roundtrip -o beginning -e -K: -q >"$OUT" ||
    fail "kcat consume failed"
cmp "$IN" "$OUT" || {
    diff <(head -c 2000 "$IN") <(head -c 2000 "$OUT") | head -20
    fail "replay differs from input ($(wc -l <"$IN") lines in, $(wc -l <"$OUT") out)"
}
step "keyed round trip ($(wc -l <"$IN") lines)"

# The replay must also carry each message's partition/offset as produced: offsets 0..n-1.
n=$(wc -l <"$IN")
with_timeout 60 "${KC[@]}" -C -t kcat-roundtrip -p 0 -o beginning -e -q -f '%o\n' >"$DEPOT_TMP/offs"
[ "$(cat "$DEPOT_TMP/offs")" = "$(seq 0 $((n - 1)))" ] ||
    fail "offsets are not 0..$((n - 1)): $(head -3 "$DEPOT_TMP/offs" | tr '\n' ' ')..."
step "offsets contiguous"

# 2. kcat -L: the broker with its advertised host:port, the topic with its 4 partitions.
META=$DEPOT_TMP/meta.txt
with_timeout 30 "${KC[@]}" -L -t kcat-roundtrip >"$META" || fail "kcat -L failed"
grep -Eq "broker [0-9]+ at 127\.0\.0\.1:$DEPOT_PORT" "$META" ||
    { cat "$META"; fail "kcat -L does not list the broker at 127.0.0.1:$DEPOT_PORT"; }
grep -q 'topic "kcat-roundtrip" with 4 partitions' "$META" ||
    { cat "$META"; fail "kcat -L does not list kcat-roundtrip with 4 partitions"; }
for p in 0 1 2 3; do
    grep -Eq "partition $p, leader [0-9]+, replicas: [0-9]+, isrs: [0-9]+$" "$META" ||
        { cat "$META"; fail "kcat -L: partition $p missing or has no leader/isr"; }
done
grep -qi 'err' "$META" && { cat "$META"; fail "kcat -L reports an error"; }
step "kcat -L"

# 3. Each codec: produce, replay intact, and the stored batches carry that codec.
codec_id() { case $1 in gzip) echo 1 ;; snappy) echo 2 ;; lz4) echo 3 ;; zstd) echo 4 ;; esac; }
for z in gzip snappy lz4 zstd; do
    t=kcat-$z
    IN2=$DEPOT_TMP/in-$z.txt
    for i in $(seq 1 2000); do printf 'k%d:%s compressible payload %d %s\n' $((i % 7)) "$z" "$i" \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done >"$IN2"
    with_timeout 60 "${KC[@]}" -P -t "$t" -p 0 -K: -z "$z" -l "$IN2" || fail "kcat -z $z produce failed"
    with_timeout 60 "${KC[@]}" -C -t "$t" -o beginning -e -K: -q >"$DEPOT_TMP/out-$z.txt" ||
        fail "kcat consume ($z) failed"
    cmp -s "$IN2" "$DEPOT_TMP/out-$z.txt" ||
        fail "$z replay differs ($(wc -l <"$DEPOT_TMP/out-$z.txt") of 2000 lines back)"
    $PY - "$DEPOT_PORT" "$t" "$(codec_id $z)" <<'EOF' || fail "$z: stored batches are not $z-compressed"
import sys
import os
sys.path.insert(0, os.environ["E2E_DIR"])
from depot_harness import check_codec, fetch_v4_batches, lz4_usable_by_librdkafka
port, topic, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if want == 3 and not lz4_usable_by_librdkafka(port):
    print("  SKIP lz4 codec check: broker does not advertise FindCoordinator v0, which "
          "librdkafka requires before it compresses with lz4")
    want = 0
err, hw, batches = fetch_v4_batches(port, topic, 0)
assert err == 0, "fetch error %d" % err
assert hw == 2000, "high watermark %d, expected 2000" % hw
check_codec(batches, want, topic)
EOF
    step "compression $z"
done

depot_stop
step "clean shutdown"

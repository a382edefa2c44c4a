#!/usr/bin/env bash
# depotctl against the real broker: topic create/describe/list/delete, a keyed produce/consume
# round trip (checked also through kcat, an independent client), every compression codec,
# --partition/--offset, and the error paths (Kafka error name + sentence, non-zero exit).
. "$(dirname "$0")/lib.sh"

CTL=${DEPOTCTL_BIN:-$E2E_DIR/../../build/depotctl}
[ -x "$CTL" ] || fail "$CTL missing (make all)"
T0=$EPOCHREALTIME
step() { printf '  PASS %-45s %6.1fs\n' "$1" "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")"; }

depot_start auto.create.topics.enable=true
B=(--bootstrap-server "$DEPOT_BOOTSTRAP")
ctl() { with_timeout 60 "$CTL" "$@"; }
ERR=$DEPOT_TMP/err.txt

# 1. create with partitions and a config; a second create fails with the Kafka error name.
ctl topics "${B[@]}" --create --topic ctl-t --partitions 3 --config retention.ms=3600000 \
    >"$DEPOT_TMP/create.txt" || fail "topics --create failed"
grep -q 'Created topic ctl-t' "$DEPOT_TMP/create.txt" || fail "no 'Created topic' line"
if ctl topics "${B[@]}" --create --topic ctl-t 2>"$ERR"; then fail "duplicate create succeeded"; fi
grep -q 'TOPIC_ALREADY_EXISTS' "$ERR" || { cat "$ERR"; fail "duplicate create: no TOPIC_ALREADY_EXISTS"; }
step "create, duplicate create refused"

# 2. describe and list.
D=$DEPOT_TMP/describe.txt
ctl topics "${B[@]}" --describe --topic ctl-t >"$D" || fail "topics --describe failed"
grep -q 'PartitionCount: 3' "$D" || { cat "$D"; fail "describe: not 3 partitions"; }
grep -q 'retention.ms=3600000' "$D" || { cat "$D"; fail "describe: config not shown"; }
[ "$(grep -c 'Partition: [0-9]' "$D")" = 3 ] || { cat "$D"; fail "describe: not 3 partition lines"; }
ctl topics "${B[@]}" --list | grep -qx 'ctl-t' || fail "list does not show ctl-t"
step "describe, list"

# 3. keyed round trip: values contain the separator; all partitions consumed from the start.
IN=$DEPOT_TMP/in.txt
for i in $(seq 1 600); do printf 'key-%d:value %d: with colon\n' $((i % 13)) "$i"; done >"$IN"
ctl produce "${B[@]}" --topic ctl-t --property parse.key=true --property key.separator=: <"$IN" ||
    fail "produce failed"
OUT=$DEPOT_TMP/out.txt
ctl consume "${B[@]}" --topic ctl-t --from-beginning --max-messages 600 --timeout-ms 10000 \
    --property print.key=true --property key.separator=: >"$OUT" 2>"$ERR" || {
    cat "$ERR"
    fail "consume failed"
}
cmp <(sort "$IN") <(sort "$OUT") || fail "consumed records differ from produced ($(wc -l <"$OUT") lines)"
# Each key lives in one partition, so its values keep the produced order.
cmp <(grep '^key-7:' "$IN") <(grep '^key-7:' "$OUT") || fail "order of key-7 not preserved"
grep -q 'Processed a total of 600 messages' "$ERR" || fail "no message count on stderr"
step "keyed produce/consume round trip (600)"

# 4. kcat reads what depotctl wrote, and depotctl reads what kcat wrote.
with_timeout 60 kcat -b "$DEPOT_BOOTSTRAP" -C -t ctl-t -o beginning -e -q -K: >"$DEPOT_TMP/kcat.txt" ||
    fail "kcat consume failed"
cmp <(sort "$IN") <(sort "$DEPOT_TMP/kcat.txt") || fail "kcat sees different records"
seq 1 100 | sed 's/^/kk:/' | with_timeout 60 kcat -b "$DEPOT_BOOTSTRAP" -P -t ctl-from-kcat -K: -z lz4 ||
    fail "kcat produce failed"
ctl consume "${B[@]}" --topic ctl-from-kcat --from-beginning --max-messages 100 --timeout-ms 10000 \
    --property print.key=true --property key.separator=: >"$DEPOT_TMP/fromkcat.txt" 2>/dev/null ||
    fail "consume of kcat's records failed"
cmp <(seq 1 100 | sed 's/^/kk:/') "$DEPOT_TMP/fromkcat.txt" || fail "depotctl misreads kcat's lz4 records"
step "interop with kcat"

# 4b. headers both ways: parse.headers in, kcat and print.headers out.
printf 'h1:v1,h2\tk1:val1\n\tk2:val2\n' | ctl produce "${B[@]}" --topic ctl-hdr \
    --property parse.headers=true --property parse.key=true --property key.separator=: ||
    fail "produce with headers failed"
with_timeout 60 kcat -b "$DEPOT_BOOTSTRAP" -C -t ctl-hdr -e -q -f '%h|%k|%s\n' >"$DEPOT_TMP/h.txt" ||
    fail "kcat consume of headers failed"
[ "$(cat "$DEPOT_TMP/h.txt")" = "$(printf 'h1=v1,h2=NULL|k1|val1\n|k2|val2')" ] ||
    { cat "$DEPOT_TMP/h.txt"; fail "kcat sees different headers"; }
ctl consume "${B[@]}" --topic ctl-hdr --from-beginning --max-messages 2 --timeout-ms 10000 \
    --property print.headers=true --property print.offset=true >"$DEPOT_TMP/h2.txt" 2>/dev/null ||
    fail "consume with print.headers failed"
[ "$(cat "$DEPOT_TMP/h2.txt")" = "$(printf 'Offset:0\th1:v1,h2:null\tval1\nOffset:1\tNO_HEADERS\tval2')" ] ||
    { cat "$DEPOT_TMP/h2.txt"; fail "print.headers output differs"; }
step "record headers"

# 5. every compression codec, one partition so order is total.
for z in none gzip snappy lz4 zstd; do
    ctl topics "${B[@]}" --create --topic "ctl-$z" --partitions 1 >/dev/null || fail "create ctl-$z"
    seq 1 3000 | sed "s/^/$z-/" | ctl produce "${B[@]}" --topic "ctl-$z" --compression-codec "$z" ||
        fail "produce with $z failed"
    ctl consume "${B[@]}" --topic "ctl-$z" --from-beginning --max-messages 3000 --timeout-ms 10000 \
        >"$DEPOT_TMP/z.txt" 2>/dev/null || fail "consume of $z failed"
    cmp <(seq 1 3000 | sed "s/^/$z-/") "$DEPOT_TMP/z.txt" || fail "codec $z: records differ"
done
step "codecs none/gzip/snappy/lz4/zstd"

# 5b. kafka-python (its own record decoder) reads the gzip batches depotctl built.
with_timeout 60 $PY - "$DEPOT_BOOTSTRAP" >"$DEPOT_TMP/kpy.txt" <<'PYEOF' || fail "kafka-python consume failed"
import sys
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=sys.argv[1], enable_auto_commit=False, group_id=None,
                  consumer_timeout_ms=5000)
tp = TopicPartition("ctl-gzip", 0)
c.assign([tp])
c.seek_to_beginning(tp)
for n, m in enumerate(c, 1):
    print(m.value.decode())
    if n == 3000:
        break
PYEOF
cmp <(seq 1 3000 | sed 's/^/gzip-/') "$DEPOT_TMP/kpy.txt" || fail "kafka-python reads different records"
step "kafka-python reads depotctl's gzip batches"

# 6. --partition/--offset starts exactly there (inside a compressed batch too).
ctl consume "${B[@]}" --topic ctl-zstd --partition 0 --offset 1500 --max-messages 3 \
    --timeout-ms 10000 >"$DEPOT_TMP/off.txt" 2>/dev/null || fail "consume at offset failed"
[ "$(cat "$DEPOT_TMP/off.txt")" = "$(printf 'zstd-1501\nzstd-1502\nzstd-1503')" ] ||
    { cat "$DEPOT_TMP/off.txt"; fail "consume --offset 1500 did not start at the 1501st record"; }
step "--partition/--offset"

# 7. errors: unknown topic, out-of-range offset, a line without the key separator.
if ctl consume "${B[@]}" --topic ctl-missing --timeout-ms 1000 2>"$ERR" >/dev/null; then
    fail "consume of a missing topic succeeded"
fi
grep -q 'UNKNOWN_TOPIC_OR_PARTITION' "$ERR" || { cat "$ERR"; fail "missing topic: wrong error"; }
if ctl consume "${B[@]}" --topic ctl-none --partition 0 --offset 999999 --timeout-ms 3000 \
    2>"$ERR" >/dev/null; then fail "out-of-range offset accepted"; fi
grep -q 'OFFSET_OUT_OF_RANGE' "$ERR" || { cat "$ERR"; fail "out of range: wrong error"; }
if echo 'no separator here' | ctl produce "${B[@]}" --topic ctl-t --property parse.key=true \
    --property key.separator=: 2>"$ERR"; then fail "line without separator accepted"; fi
step "errors name the Kafka error, exit non-zero"

# 8. delete: gone from describe and list.
ctl topics "${B[@]}" --delete --topic ctl-t >/dev/null || fail "topics --delete failed"
if ctl topics "${B[@]}" --describe --topic ctl-t 2>"$ERR" >/dev/null; then
    fail "describe of a deleted topic succeeded"
fi
grep -q 'UNKNOWN_TOPIC_OR_PARTITION' "$ERR" || { cat "$ERR"; fail "deleted topic: wrong error"; }
if ctl topics "${B[@]}" --list | grep -qx 'ctl-t'; then fail "deleted topic still listed"; fi
step "delete"

# 9. no broker: a plain sentence and a non-zero exit.
depot_stop
if ctl topics "${B[@]}" --list 2>"$ERR"; then fail "list without a broker succeeded"; fi
grep -q 'cannot connect' "$ERR" || { cat "$ERR"; fail "no broker: wrong message"; }
step "no broker"
